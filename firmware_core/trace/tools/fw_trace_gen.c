/*
 * fw_trace_gen.c - a seeded random run of one device, recorded as a trace.
 *
 *   fw_trace_gen --seed N --events N --out FILE
 *
 * Drives firmware_core directly (no MQTT, no threads) with a small platform of its own: a
 * clock that moves only on ticks, a network that connects when the generator says so and
 * hands out publish tokens, an in-memory flash that sometimes refuses a write. The events
 * are drawn from a seeded generator: items (valid, repeated, hostile), inventory answers,
 * tags and buttons, SUBACKs (granted, refused, lost) of outstanding subscribes,
 * acknowledgements and refusals of outstanding publishes, connects, failures, losses and
 * reboots. The same seed gives the same trace, byte for byte; the ARM
 * image replays it (docs/trace.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_device.h"
#include "fw/fw_trace_recorder.h"

#define GEN_TOKENS 64
#define GEN_KEYS 4
#define GEN_VALUE_MAX 1024

struct gen {
    uint64_t rng;
    uint64_t now;
    bool connecting, online;
    uint32_t next_token;
    uint32_t tokens[GEN_TOKENS]; /* outstanding QoS 1 publishes */
    int ntokens;
    uint32_t subs[GEN_TOKENS];   /* subscribes awaiting their SUBACK */
    int nsubs;
    struct {
        char key[16];
        uint8_t value[GEN_VALUE_MAX];
        size_t len;
    } kv[GEN_KEYS];
    char reply_tag[24]; /* the last inventory query's tag, so answers can match */
    FILE *out;
};

/* ================================================================ randomness */

static uint32_t gen_rand(struct gen *g)
{
    /* xorshift64*: seeded, the same on every machine. */
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return (uint32_t)((g->rng * 2685821657736338717ull) >> 32);
}

static uint32_t pick(struct gen *g, uint32_t n)
{
    return gen_rand(g) % n;
}

/* ================================================================ the platform */

static int p_connect(void *ctx, const struct fw_connect_params *p)
{
    struct gen *g = ctx;
    (void)p;
    if (pick(g, 20) == 0)
        return FW_ERR_IO; /* no route to the broker */
    g->connecting = true;
    return 0;
}

static int p_publish(void *ctx, const struct fw_publish *m, uint32_t *token)
{
    struct gen *g = ctx;
    if (!g->online)
        return FW_ERR_OFFLINE;
    *token = ++g->next_token;
    if (m->qos > 0 && g->ntokens < GEN_TOKENS)
        g->tokens[g->ntokens++] = *token;
    /* Remember the tag of an inventory query so a later answer can be the awaited one. */
    const char *p = m->payload;
    if (m->len > 9 && memcmp(p, "{\"tag\":\"", 8) == 0) {
        const char *end = memchr(p + 8, '"', m->len - 8);
        size_t n = end ? (size_t)(end - (p + 8)) : 0;
        if (n < sizeof g->reply_tag) {
            memcpy(g->reply_tag, p + 8, n);
            g->reply_tag[n] = '\0';
        }
    }
    return 0;
}

static int p_subscribe(void *ctx, const char *filter, int qos, uint32_t *token)
{
    struct gen *g = ctx;
    (void)filter;
    (void)qos;
    if (!g->online)
        return FW_ERR_OFFLINE;
    *token = ++g->next_token;
    if (g->nsubs < GEN_TOKENS)
        g->subs[g->nsubs++] = *token;
    return 0;
}

/* The network forgets what was in flight: publishes and subscribes. */
static void gen_forget(struct gen *g)
{
    g->ntokens = 0;
    g->nsubs = 0;
}

static void p_disconnect(void *ctx)
{
    struct gen *g = ctx;
    g->online = g->connecting = false;
    gen_forget(g);
}

static void p_flush(void *ctx, const uint8_t *fb)
{
    (void)ctx;
    (void)fb;
}

static uint64_t p_clock(void *ctx)
{
    return ((struct gen *)ctx)->now;
}

static int gen_key(struct gen *g, const char *key, bool create)
{
    for (int i = 0; i < GEN_KEYS; i++)
        if (strcmp(g->kv[i].key, key) == 0)
            return i;
    for (int i = 0; create && i < GEN_KEYS; i++)
        if (g->kv[i].key[0] == '\0' && strlen(key) < sizeof g->kv[i].key) {
            memcpy(g->kv[i].key, key, strlen(key) + 1);
            return i;
        }
    return -1;
}

static int p_read(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    struct gen *g = ctx;
    int i = gen_key(g, key, false);
    if (i < 0)
        return FW_ERR_NOT_FOUND;
    if (g->kv[i].len > cap)
        return FW_ERR_TOO_BIG;
    memcpy(buf, g->kv[i].value, g->kv[i].len);
    *len = g->kv[i].len;
    return 0;
}

static int p_write(void *ctx, const char *key, const void *buf, size_t len)
{
    struct gen *g = ctx;
    int i = gen_key(g, key, true);
    if (i < 0 || len > GEN_VALUE_MAX || pick(g, 100) == 0)
        return FW_ERR_IO; /* a worn flash page */
    memcpy(g->kv[i].value, buf, len);
    g->kv[i].len = len;
    return 0;
}

static void p_log(void *ctx, enum fw_log_level level, const char *line)
{
    (void)ctx;
    (void)level;
    (void)line;
}

static void file_write(void *ctx, const void *buf, size_t len)
{
    struct gen *g = ctx;
    (void)fwrite(buf, 1, len, g->out); /* a short write shows in ferror() at the end */
}

/* ================================================================ events */

/* Payloads a hostile or broken backend sends: each must be rejected the same way on
   every target (the numbers probe 32-bit long and soft-float conversions). */
static const char *const hostile[] = {
    "{\"item_id\":3000000000,\"item_name\":\"big\",\"tag_quantity\":1}",
    "{\"item_id\":1e10,\"item_name\":\"exp\",\"tag_quantity\":1}",
    "{\"item_id\":1e999,\"item_name\":\"inf\",\"tag_quantity\":1}",
    "{\"item_id\":-2147483649,\"item_name\":\"neg\",\"tag_quantity\":1}",
    "{\"item_id\":12.5,\"item_name\":\"frac\",\"tag_quantity\":1}",
    "{\"item_id\":7,\"item_name\":\"qty\",\"tag_quantity\":100001}",
    "{\"item_id\":\"7\",\"item_name\":\"str\",\"tag_quantity\":1}",
    "{\"item_id\":7,\"item_name\":\"a name that is far too long to fit the device\",\"tag_quantity\":1}",
    "{\"item_id\":7,\"tag_quantity\":1}",
    "[1,2,3]",
    "{\"item_id\":7,\"item_name\":\"x\",\"tag_quantity\":1} trailing",
    "{\"item_id\":7,\"item_name\":\"\xC3\x28\",\"tag_quantity\":1}",
    "{\"item_id\":7,",
    "",
    "{\"item_id\":4294967297,\"item_name\":\"wrap\",\"tag_quantity\":1}",
    "{\"item_id\":2147483647,\"item_name\":\"max\",\"tag_quantity\":100000}",
};

static void gen_item(struct gen *g, char *buf, size_t cap, size_t *len)
{
    uint32_t kind = pick(g, 10);
    if (kind < 6) {
        /* Ids from a small range, so redeliveries and duplicates happen. */
        snprintf(buf, cap, "{\"item_id\":%" PRIu32 ",\"item_name\":\"Item %" PRIu32
                 " \xC3\xA9t\xC3\xA9\",\"tag_quantity\":%" PRIu32 "}",
                 1 + pick(g, 300), pick(g, 1000), 1 + pick(g, 5));
    } else if (kind < 9) {
        snprintf(buf, cap, "%s", hostile[pick(g, sizeof hostile / sizeof hostile[0])]);
    } else {
        /* Oversize, or an array of zeros up to the limit: the heaviest parse accepted. */
        size_t n = pick(g, 2) ? 1500 : 1000;
        int w = snprintf(buf, cap, "{\"item_id\":%" PRIu32 ",\"item_name\":\"z\","
                         "\"tag_quantity\":1,\"pad\":[0", 1 + pick(g, 300));
        while ((size_t)w + 4 < n)
            w += snprintf(buf + w, cap - (size_t)w, ",0");
        snprintf(buf + w, cap - (size_t)w, "]}");
    }
    *len = strlen(buf);
}

/* A remote command: mostly valid ones (a few cmd_ids, so repeats are answered from
   memory), some refused, and now and then a reboot. */
static void gen_command(struct gen *g, char *buf, size_t cap, size_t *len)
{
    static const char *const bodies[] = {
        "\"cmd\":\"status\"",
        "\"cmd\":\"identify\",\"args\":{\"seconds\":1}",
        "\"cmd\":\"config\",\"args\":{\"contrast\":200,\"inventory_timeout\":3}",
        "\"cmd\":\"config\",\"args\":{\"keepalive\":2}",
        "\"cmd\":\"message\",\"args\":{\"text\":\"Go to dock 3\"}",
        "\"cmd\":\"lock\"",
        "\"cmd\":\"unlock\"",
        "\"cmd\":\"unlock\"",
        "\"cmd\":\"clear_queue\"",
        "\"cmd\":\"reboot\"",
        "\"cmd\":\"selfdestruct\"",
        "\"cmd\":7"};
    uint32_t k = pick(g, sizeof bodies / sizeof bodies[0]);
    if (k == 9 && pick(g, 4))
        k = 0; /* reboots are rarer */
    snprintf(buf, cap, "{\"cmd_id\":\"g-%" PRIu32 "\",%s}", pick(g, 24), bodies[k]);
    *len = strlen(buf);
}

static void gen_message(struct gen *g, struct fw_trace_recorder *r, struct fw_device *d)
{
    char buf[2048];
    size_t len;
    const char *topic = fw_device_topic_item_registration(d);
    uint32_t kind = pick(g, 12);
    if (kind >= 10) {
        gen_command(g, buf, sizeof buf, &len);
        topic = pick(g, 8) ? fw_device_topic_command(d) : fw_device_topic_command_all(d);
    } else if (kind < 7) {
        gen_item(g, buf, sizeof buf, &len);
    } else if (kind < 9) {
        topic = fw_device_topic_inventory_reply(d);
        const char *tag = g->reply_tag[0] && pick(g, 4) ? g->reply_tag : "04A1B2C3";
        snprintf(buf, sizeof buf, pick(g, 2)
                 ? "{\"tag\":\"%s\",\"found\":true,\"item_id\":%u,\"item_name\":\"Box\"}"
                 : "{\"tag\":\"%s\",\"found\":false}", tag, 1 + pick(g, 300));
        len = strlen(buf);
    } else {
        topic = "somebody/else";
        snprintf(buf, sizeof buf, "{}");
        len = 2;
    }
    fw_traced_on_message(r, d, topic, buf, len, (int)pick(g, 2), pick(g, 4) == 0);
}

static void gen_tag(struct gen *g, struct fw_trace_recorder *r, struct fw_device *d)
{
    static const size_t lens[] = {4, 7, 10, 4, 7, 3, 12};
    uint8_t uid[12];
    size_t n = lens[pick(g, sizeof lens / sizeof lens[0])];
    for (size_t i = 0; i < n; i++)
        uid[i] = (uint8_t)(i == 0 ? 0x04 : pick(g, 4) * 0x11); /* a small pool: reuse */
    (void)fw_traced_on_tag(r, d, uid, n);
}

/* An acknowledgement or refusal of an outstanding publish; false when none is out. */
static bool gen_ack(struct gen *g, struct fw_trace_recorder *r, struct fw_device *d,
                    bool refuse)
{
    if (g->ntokens == 0)
        return false;
    int i = (int)pick(g, (uint32_t)g->ntokens);
    uint32_t token = g->tokens[i];
    g->tokens[i] = g->tokens[--g->ntokens];
    if (!refuse)
        fw_traced_on_published(r, d, token);
    else
        fw_traced_on_publish_refused(r, d, token, pick(g, 2) ? 0x87 : FW_ERR_IO);
    return true;
}

/* What the network does next; false when it has nothing to say. */
static bool gen_network(struct gen *g, struct fw_trace_recorder *r, struct fw_device *d)
{
    if (g->connecting) {
        g->connecting = false;
        if (pick(g, 4) == 0) {
            fw_traced_on_connect_failed(r, d, pick(g, 2) ? 5 : 0x87, "not authorised");
        } else {
            g->online = true;
            fw_traced_on_connected(r, d, pick(g, 2) == 0);
        }
    } else if (g->online && g->nsubs > 0 && pick(g, 4) != 0) {
        /* A SUBACK: mostly granted, sometimes refused (0x80), rarely lost on the way. */
        int i = (int)pick(g, (uint32_t)g->nsubs);
        uint32_t token = g->subs[i];
        g->subs[i] = g->subs[--g->nsubs];
        uint32_t x = pick(g, 20);
        fw_traced_on_subscribed(r, d, token, x < 16 ? 1 : x < 19 ? 0x80 : FW_ERR_IO);
    } else if (g->online && pick(g, 3) == 0) {
        g->online = false;
        gen_forget(g);
        fw_traced_on_connection_lost(r, d, "keep-alive timeout");
    } else {
        return false;
    }
    return true;
}

/* A clean power-off or a power cut, then power on: 3 or 2 events. */
static int gen_reboot(struct gen *g, struct fw_trace_recorder *r, struct fw_device *d,
                      const struct fw_device_config *cfg, const struct fw_ports *ports)
{
    bool clean = pick(g, 2);
    if (clean)
        fw_traced_stop(r, d);
    g->online = g->connecting = false;
    gen_forget(g);
    (void)fw_traced_init(r, d, cfg, ports);
    fw_traced_start(r, d);
    return clean ? 3 : 2;
}

/* One step; returns the events it recorded. room: events still wanted. */
static int gen_step(struct gen *g, struct fw_trace_recorder *r, struct fw_device *d,
                    const struct fw_device_config *cfg, const struct fw_ports *ports,
                    uint64_t room)
{
    static const enum fw_button buttons[] = {FW_BUTTON_CONFIRM, FW_BUTTON_CONFIRM,
                                             FW_BUTTON_CANCEL, FW_BUTTON_MODE};
    uint32_t x = pick(g, 1000);
    if (x >= 820 && x < 930 && gen_ack(g, r, d, x >= 910))
        return 1;
    if (x >= 930 && x < 995 && gen_network(g, r, d))
        return 1;
    if (x >= 995 && room >= 3)
        return gen_reboot(g, r, d, cfg, ports);
    if (x < 330 || x >= 820) {
        g->now += 1 + pick(g, 400);
        fw_traced_tick(r, d, g->now);
    } else if (x < 560) {
        gen_message(g, r, d);
    } else if (x < 680) {
        gen_tag(g, r, d);
    } else if (x < 820) {
        fw_traced_on_button(r, d, buttons[pick(g, 4)]);
    }
    return 1;
}

/* ================================================================ main */

static int usage(const char *why)
{
    fprintf(stderr, "fw_trace_gen: %s\nusage: fw_trace_gen --seed N --events N --out FILE\n",
            why);
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, events = 10000;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--seed") == 0 && v && parse_u64(v, &seed))
            i++;
        else if (strcmp(argv[i], "--events") == 0 && v && parse_u64(v, &events))
            i++;
        else if (strcmp(argv[i], "--out") == 0 && v)
            path = argv[++i];
        else
            return usage(v ? "bad option or value" : "option without its value");
    }
    if (path == NULL)
        return usage("--out FILE is required");

    static struct gen g;
    static struct fw_device dev;
    static struct fw_trace_recorder rec;
    g.rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    g.now = 1000000;
    g.out = fopen(path, "wb");
    if (g.out == NULL) {
        fprintf(stderr, "fw_trace_gen: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct fw_ports ports = {&g,      p_connect, p_publish, p_subscribe, p_disconnect,
                             p_flush, p_clock,   p_read,    p_write,     p_log,     NULL, NULL};
    struct fw_device_config cfg;
    fw_device_config_defaults(&cfg);
    cfg.device_id = "gen-1";
    cfg.seed = (uint32_t)seed;
    fw_trace_recorder_init(&rec, file_write, &g);
    if (fw_traced_init(&rec, &dev, &cfg, &ports) != FW_OK) {
        fprintf(stderr, "fw_trace_gen: the device configuration was refused\n");
        return 1;
    }
    fw_traced_start(&rec, &dev);
    for (uint64_t n = 2; n < events;) /* init and start are the first two */
        n += (uint64_t)gen_step(&g, &rec, &dev, &cfg, &ports, events - n);
    if (ferror(g.out) || fclose(g.out) != 0) {
        fprintf(stderr, "fw_trace_gen: %s: write failed\n", path);
        return 1;
    }
    return 0;
}
