/*
 * probe_mps2.c - what the ARM test image measures around each replayed event
 * (fw_probe.h), on QEMU's mps2-an385 board.
 *
 * - Instructions: SysTick on the core clock (25 MHz) while QEMU runs with
 *   `-icount shift=6`, i.e. every instruction takes 64 ns of virtual time: one tick is
 *   40 ns, so instructions = ticks * 40 / 64, exact to a tick. The cost of the probe's own
 *   calls is measured once and subtracted, and so is the time spent in port calls (the
 *   replay platform records and compares there; a board's ports cost what they cost).
 * - Stack: the stack below the caller is painted with a pattern before the event and the
 *   deepest overwritten word found after it (a painted stack, as on a board).
 * - cJSON heap: cJSON_InitHooks routes cJSON to a static pool, as a board would; a bump
 *   allocator that starts over when the last block is freed (cJSON's trees live within one
 *   message), so its high-water mark is the heap one message needs.
 * - RAM per device: sizeof(struct fw_device) as this compiler lays it out.
 * Before the traces, the codec's heaviest payloads are decoded once each, so
 * the worst case is known even if no trace carries it. The core is set to fault on
 * unaligned loads and stores, as the RP2040's Cortex-M0+ does (the M3 would allow them).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fw/fw_codec.h"
#include "fw/fw_device.h"
#include "fw/fw_trace.h"
#include "fw_probe.h"

void mps2__trap_unaligned(void); /* startup_mps2.c */

#define REG(addr) (*(volatile uint32_t *)(addr))
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define TICK_NS 40u   /* SysTick on the 25 MHz core clock */
#define INSN_NS 64u   /* -icount shift=6 */

#define PAINT 0xC0FFEE5Au
#define STACK_WATCHED (48u * 1024u) /* painted below the caller; a deeper stack shows as this */
#define POOL_BYTES (96u * 1024u)

/* ================================================================ figures */

struct figure {
    uint32_t count;
    uint64_t insn_sum;
    uint32_t insn_max, stack_max, heap_max;
};

static struct figure figures[0x40];  /* per event type */
static uint32_t overhead_ticks;
static uintptr_t sp_ref;
static uint32_t *watch_lo;           /* lowest watched word */
static uint32_t t_start;
static uint32_t last_insn, last_stack, last_heap;
static uint32_t port_t0, port_ticks, port_calls, port_overhead_ticks;

/* ================================================================ cJSON's pool */

static uint64_t pool[POOL_BYTES / 8];
static size_t pool_top, pool_peak, pool_live;
static uint32_t pool_refusals;

static void *pool_malloc(size_t n)
{
    size_t need = (n + 7u) & ~(size_t)7u;
    if (need > sizeof pool - pool_top) {
        pool_refusals++; /* cJSON then fails the parse: the replay would show it */
        return NULL;
    }
    void *p = (uint8_t *)pool + pool_top;
    pool_top += need;
    pool_live++;
    if (pool_top > pool_peak)
        pool_peak = pool_top;
    return p;
}

static void pool_free(void *p)
{
    if (p != NULL && pool_live > 0 && --pool_live == 0)
        pool_top = 0;
}

/* ================================================================ stack */

static uintptr_t sp_now(void)
{
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Paints from the lowest watched word up to just below the current frame. */
static void stack_paint(void)
{
    uint32_t *top = (uint32_t *)(sp_ref - 16u);
    for (uint32_t *w = watch_lo; w < top; w++)
        *w = PAINT;
}

static uint32_t stack_used(void)
{
    uint32_t *w = watch_lo;
    uint32_t *top = (uint32_t *)(sp_ref - 16u);
    while (w < top && *w == PAINT)
        w++;
    return (uint32_t)(sp_ref - (uintptr_t)w);
}

/* ================================================================ the probe */

void fw_probe_before(unsigned type)
{
    (void)type;
    sp_ref = sp_now();
    watch_lo = (uint32_t *)(sp_ref - STACK_WATCHED);
    stack_paint();
    pool_peak = 0;
    port_ticks = port_calls = 0;
    t_start = SYST_CVR; /* last: the count covers the event, not the painting */
}

void fw_probe_after(unsigned type)
{
    uint32_t t_end = SYST_CVR;
    uint32_t ticks = (t_start - t_end) & 0xFFFFFFu; /* SysTick counts down, 24 bits */
    uint32_t platform = overhead_ticks + port_ticks + port_calls * port_overhead_ticks;
    ticks = ticks > platform ? ticks - platform : 0;
    last_insn = (uint32_t)((uint64_t)ticks * TICK_NS / INSN_NS);
    last_stack = stack_used();
    last_heap = (uint32_t)pool_peak;
    struct figure *f = &figures[type & 0x3Fu];
    f->count++;
    f->insn_sum += last_insn;
    if (last_insn > f->insn_max)
        f->insn_max = last_insn;
    if (last_stack > f->stack_max)
        f->stack_max = last_stack;
    if (last_heap > f->heap_max)
        f->heap_max = last_heap;
}

void fw_probe_port(bool enter)
{
    uint32_t t = SYST_CVR;
    if (enter) {
        port_t0 = t;
        return;
    }
    port_ticks += (port_t0 - t) & 0xFFFFFFu;
    port_calls++;
}

/* The least ticks of an empty event, with or without one empty port call inside. */
static uint32_t probe_least(bool with_port)
{
    uint32_t least = 0xFFFFFFu;
    for (int i = 0; i < 8; i++) {
        fw_probe_before(0);
        if (with_port) {
            fw_probe_port(true);
            fw_probe_port(false);
        }
        fw_probe_after(0);
        uint32_t t = (uint32_t)((uint64_t)last_insn * INSN_NS / TICK_NS);
        least = t < least ? t : least;
    }
    return least;
}

/* The probe's own cost, measured the same way: an empty event, an empty port call. */
static void probe_calibrate(void)
{
    overhead_ticks = port_overhead_ticks = 0;
    overhead_ticks = probe_least(false);
    port_overhead_ticks = probe_least(true);
    memset(&figures[0], 0, sizeof figures[0]);
}

/* An item payload of len bytes (at most one less) with an unknown field: an array of
   zeros (the most cJSON nodes, accepted) or nested arrays (refused as too_deep before
   parsing beyond FW_JSON_DEPTH_MAX). */
static size_t payload_pad(char *buf, size_t len, bool nested)
{
    /* The shortest valid item leaves the most bytes to the pad. */
    size_t at = (size_t)snprintf(buf, len + 1, "{\"item_id\":1,\"item_name\":\"z\","
                                 "\"tag_quantity\":1,\"p\":");
    size_t room = len - at - 1; /* the closing brace */
    if (nested) {
        size_t k = room / 2;
        memset(buf + at, '[', k);
        memset(buf + at + k, ']', k);
        at += 2 * k;
    } else {
        memcpy(buf + at, "[0", 2);
        at += 2;
        for (size_t k = (room - 3) / 2; k > 0; k--, at += 2)
            memcpy(buf + at, ",0", 2);
        buf[at++] = ']';
    }
    buf[at++] = '}';
    buf[at] = '\0';
    return at;
}

static void codec_case(const char *what, const char *payload, size_t len)
{
    struct fw_item item;
    fw_probe_before(0);
    int rc = fw_decode_item(payload, len, &item);
    fw_probe_after(0);
    printf("  %-44s %4u B  %-9s heap %6u B  stack %5u B  %7u insns\n", what, (unsigned)len,
           rc == FW_DECODE_OK ? "accepted" : fw_reject_name(fw_decode_reason(rc)),
           (unsigned)last_heap, (unsigned)last_stack, (unsigned)last_insn);
}

void fw_probe_init(void)
{
    static char buf[FW_INBOUND_MAX + 1];
    static cJSON_Hooks hooks = {pool_malloc, pool_free};
    cJSON_InitHooks(&hooks);
    mps2__trap_unaligned();
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enabled, core clock, no interrupt */
    probe_calibrate();
    printf("== target: Cortex-M0+ code on QEMU mps2-an385, cJSON %d.%d.%d\n",
           CJSON_VERSION_MAJOR, CJSON_VERSION_MINOR, CJSON_VERSION_PATCH);
    printf("  sizeof(struct fw_device) = %u B (RAM per device)\n",
           (unsigned)sizeof(struct fw_device));
    printf("== codec, heaviest payloads (fw_decode_item)\n");
    size_t n = (size_t)snprintf(buf, sizeof buf, "{\"item_id\":2147483647,\"item_name\":"
                                "\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"tag_quantity\":100000}");
    codec_case("largest item, no extra fields", buf, n);
    n = payload_pad(buf, FW_INBOUND_MAX, false);
    codec_case("1 KiB, an array of zeros (most nodes)", buf, n);
    n = (size_t)snprintf(buf, sizeof buf, "{\"item_id\":1,\"item_name\":\"z\",\"tag_quantity\":1,"
                         "\"p\":");
    memset(buf + n, '[', FW_JSON_DEPTH_MAX - 1);
    memset(buf + n + FW_JSON_DEPTH_MAX - 1, ']', FW_JSON_DEPTH_MAX - 1);
    n += 2 * (FW_JSON_DEPTH_MAX - 1);
    buf[n++] = '}';
    buf[n] = '\0';
    codec_case("nested as deep as accepted (deepest parse)", buf, n);
    n = payload_pad(buf, FW_INBOUND_MAX, true);
    codec_case("1 KiB, nested arrays (refused unparsed)", buf, n);
    memset(figures, 0, sizeof figures);
}

void fw_probe_report(void)
{
    printf("== per event type (instructions under -icount, painted stack, cJSON heap)\n");
    printf("  %-16s %7s %10s %10s %9s %9s\n", "event", "count", "insns avg", "insns max",
           "stack max", "heap max");
    for (unsigned t = 1; t < 0x40; t++) {
        const struct figure *f = &figures[t];
        if (f->count == 0)
            continue;
        printf("  %-16s %7u %10u %10u %7u B %7u B\n", fw_trace_layout(t)->name,
               (unsigned)f->count, (unsigned)(f->insn_sum / f->count), (unsigned)f->insn_max,
               (unsigned)f->stack_max, (unsigned)f->heap_max);
    }
    if (pool_refusals > 0)
        printf("  cJSON pool of %u B refused %u allocations\n", (unsigned)POOL_BYTES,
               (unsigned)pool_refusals);
}
