/*
 * describe.c - the scenario language printed back: enum names, one-line step descriptions
 * for the runner's timeline, diagnostics as "file:line:col: message", device ids, and the
 * seeded random draws behind `random k devices`.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scn_internal.h"

/* ================================================================ names */

#define NAME_OF(table, v) \
    (((size_t)(v) < sizeof(table) / sizeof(table[0]) && table[(size_t)(v)]) ? table[(size_t)(v)] : "?")

const char *scn_strerror(int err)
{
    switch (err) {
    case SCN_OK:
        return "success";
    case SCN_ERR_SYNTAX:
        return "syntax error in a scenario";
    case SCN_ERR_IO:
        return "cannot read a scenario file";
    case SCN_ERR_NOMEM:
        return "out of memory";
    case SCN_ERR_INVAL:
        return "bad argument";
    default:
        return "unknown error";
    }
}

const char *scn_cmp_name(enum scn_cmp cmp)
{
    static const char *const t[] = {"==", "!=", "<", "<=", ">", ">="};
    return NAME_OF(t, cmp);
}

bool scn_cmp_holds(enum scn_cmp cmp, int64_t actual, int64_t expected)
{
    switch (cmp) {
    case SCN_CMP_EQ:
        return actual == expected;
    case SCN_CMP_NE:
        return actual != expected;
    case SCN_CMP_LT:
        return actual < expected;
    case SCN_CMP_LE:
        return actual <= expected;
    case SCN_CMP_GT:
        return actual > expected;
    case SCN_CMP_GE:
        return actual >= expected;
    }
    return false;
}

const char *scn_selector_kind_name(enum scn_selector_kind kind)
{
    static const char *const t[] = {"none", "device", "devices", "all devices", "random",
                                    "group"};
    return NAME_OF(t, kind);
}

const char *scn_broker_kind_name(enum scn_broker_kind k)
{
    static const char *const t[] = {"mosquitto", "rabbitmq"};
    return NAME_OF(t, k);
}

const char *scn_broker_variant_name(enum scn_broker_variant v)
{
    static const char *const t[] = {"plain", "password", "acl", "tls", "mtls"};
    return NAME_OF(t, v);
}

const char *scn_session_name(enum scn_session s)
{
    static const char *const t[] = {"persistent", "clean"};
    return NAME_OF(t, s);
}

const char *scn_mqtt_name(enum scn_mqtt m)
{
    static const char *const t[] = {"3.1.1", "5"};
    return NAME_OF(t, m);
}

const char *scn_layout_name(enum scn_layout l)
{
    static const char *const t[] = {"seed", "per-device"};
    return NAME_OF(t, l);
}

const char *scn_link_name(enum scn_link l)
{
    static const char *const t[] = {"direct", "proxy"};
    return NAME_OF(t, l);
}

const char *scn_operator_mode_name(enum scn_operator_mode m)
{
    static const char *const t[] = {"auto", "manual"};
    return NAME_OF(t, m);
}

const char *scn_reject_name(enum scn_reject r)
{
    static const char *const t[] = {"oversize", "not_utf8", "invalid_json", "trailing_garbage",
                                    "not_object", "missing_field", "wrong_type", "out_of_range",
                                    "name_too_long", "too_deep", "unknown_topic"};
    return NAME_OF(t, r);
}

const char *scn_timing_name(enum scn_timing t)
{
    static const char *const n[] = {"at", "after", "wait", "wait until", "then"};
    return NAME_OF(n, t);
}

const char *scn_packet_name(enum scn_packet p)
{
    static const char *const t[] = {"all", "CONNECT", "CONNACK", "PUBLISH", "PUBACK",
                                    "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
                                    "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
                                    "DISCONNECT", "AUTH"};
    return NAME_OF(t, p);
}

const char *scn_direction_name(enum scn_direction d)
{
    static const char *const t[] = {"to broker", "to device", "both ways"};
    return NAME_OF(t, d);
}

const char *scn_frame_name(enum scn_frame f)
{
    static const char *const t[] = {"bad_length", "truncated", "oversize", "reserved_type"};
    return NAME_OF(t, f);
}

const char *scn_action_name(enum scn_action a)
{
    static const char *const t[] = {
        [SCN_ACT_NOTHING] = "nothing",
        [SCN_ACT_DROP] = "drop",
        [SCN_ACT_DELAY] = "delay",
        [SCN_ACT_DUPLICATE] = "duplicate",
        [SCN_ACT_CUT] = "cut link",
        [SCN_ACT_BLACKHOLE] = "blackhole link",
        [SCN_ACT_THROTTLE] = "throttle",
        [SCN_ACT_REFUSE] = "refuse connections",
        [SCN_ACT_HEAL] = "heal",
        [SCN_ACT_INJECT] = "inject malformed",
        [SCN_ACT_BROKER_STOP] = "broker stop",
        [SCN_ACT_BROKER_KILL] = "broker kill",
        [SCN_ACT_BROKER_RESTART] = "broker restart",
        [SCN_ACT_PUBLISH_ITEMS] = "publish items",
        [SCN_ACT_PUBLISH_MALFORMED] = "publish malformed",
        [SCN_ACT_SCAN_TAG] = "scan tag",
        [SCN_ACT_SCAN_RANDOM] = "scan random tag",
        [SCN_ACT_SCAN_WRONG] = "scan wrong tag",
        [SCN_ACT_CONFIRM] = "confirm",
        [SCN_ACT_CANCEL] = "cancel",
        [SCN_ACT_MODE] = "mode",
        [SCN_ACT_OPERATOR_PAUSE] = "operator pause",
        [SCN_ACT_OPERATOR_RESUME] = "operator resume",
        [SCN_ACT_POWER_OFF] = "power off",
        [SCN_ACT_POWER_ON] = "power on",
        [SCN_ACT_RESTART] = "restart",
        [SCN_ACT_NETWORK_DOWN] = "network down",
        [SCN_ACT_NETWORK_UP] = "network up",
        [SCN_ACT_POWER_CUT] = "power cut",
        [SCN_ACT_COMMAND] = "command",
        [SCN_ACT_FORGE_COMMAND] = "publishes command",
        [SCN_ACT_EXPECT] = "expect",
    };
    return NAME_OF(t, a);
}

const char *scn_expect_kind_name(enum scn_expect_kind k)
{
    static const char *const t[] = {"ledger", "counter", "will", "no will", "retained status",
                                    "order", "command replies", "forged commands"};
    return NAME_OF(t, k);
}

const char *scn_command_name(enum scn_command c)
{
    static const char *const t[] = {"identify", "message", "status", "config", "reboot",
                                    "lock", "unlock", "clear_queue"};
    return NAME_OF(t, c);
}

const char *scn_reply_result_name(enum scn_reply_result r)
{
    static const char *const t[] = {"", "ok", "error"};
    return NAME_OF(t, r);
}

const char *scn_ledger_field_name(enum scn_ledger_field f)
{
    static const char *const t[] = {"published", "registered", "registered_once",
                                    "registered_twice", "lost", "duplicate_deliveries",
                                    "malformed", "latency_p50", "latency_p99", "latency_max",
                                    "unknown_items", "latency_p90"};
    return NAME_OF(t, f);
}

bool scn_ledger_field_is_duration(enum scn_ledger_field f)
{
    return f == SCN_LEDGER_LATENCY_P50 || f == SCN_LEDGER_LATENCY_P90 ||
           f == SCN_LEDGER_LATENCY_P99 || f == SCN_LEDGER_LATENCY_MAX;
}

/* The words of the language for counters and screens, in enum order (NULL-terminated for
   the parser's matcher). */
const char *const scn__counter_words[SCN_CTR_COUNT + 1] = {
    "items_received", "items_queued", "duplicates_suppressed", "queue_full",
    "registrations_confirmed", "registrations_sent", "registrations_acked",
    "registrations_resent", "outbox_full", "cancels", "wrong_tags", "rejects_total",
    "rejects", "inventory_queries", "inventory_answers", "inventory_timeouts", "connects",
    "sessions_present", "connect_failures", "connection_losses", "publish_errors",
    "storage_errors", "publishes_refused", "subscriptions_refused", "commands_received",
    "commands_ok", "commands_refused", "commands_duplicate", "items_cleared",
    "locked_refusals", "reboots", "boots", "reconnects", "online", "session_present",
    "pending", "outbox", "outbox_in_flight", "screen", "boot_count", "locked", NULL};

const char *const scn__screen_words[SCN_SCREEN_COUNT + 1] = {
    "idle", "item", "confirm", "registered", "inventory_scan", "inventory_wait",
    "inventory_result", "error", "cancelled", "message", "locked", NULL};

const char *scn_counter_name(enum scn_counter c)
{
    return (unsigned)c < SCN_CTR_COUNT ? scn__counter_words[c] : "?";
}

const char *scn_screen_name(enum scn_screen s)
{
    return (unsigned)s < SCN_SCREEN_COUNT ? scn__screen_words[s] : "?";
}

bool scn_counter_is_bool(enum scn_counter c)
{
    return c == SCN_CTR_ONLINE || c == SCN_CTR_SESSION_PRESENT || c == SCN_CTR_LOCKED;
}

/* ================================================================ printing */

/* A bounded appender: keeps counting what it wanted once the buffer is full. */
struct out {
    char *buf;
    size_t cap;
    size_t len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *at = o->len < o->cap ? o->buf + o->len : NULL;
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(at, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static void put_ms(struct out *o, int64_t ms)
{
    const char *sign = ms < 0 ? "-" : "";
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    put(o, "%s%" PRIu64 ".%03" PRIu64 "s", sign, a / 1000, a % 1000);
}

static void put_milli(struct out *o, int64_t milli)
{
    /* a factor x 1000, shortest form: 1.5, 2, 0.25 */
    uint64_t a = milli < 0 ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
    put(o, "%" PRIu64, a / 1000);
    if (a % 1000) {
        char frac[5];
        snprintf(frac, sizeof frac, "%03u", (unsigned)(a % 1000));
        for (int k = 2; k > 0 && frac[k] == '0'; k--)
            frac[k] = '\0';
        put(o, ".%s", frac);
    }
}

static void put_selector(struct out *o, const char *prep, const struct scn_selector *sel)
{
    /* prep "" for device actions: "power off device 3" */
    const char *sp = prep[0] ? " " : "";
    switch (sel->kind) {
    case SCN_SEL_NONE:
        return;
    case SCN_SEL_DEVICE:
        if (sel->id[0])
            put(o, " %s%sdevice %s", prep, sp, sel->id);
        else
            put(o, " %s%sdevice %" PRIu32, prep, sp, sel->first);
        return;
    case SCN_SEL_RANGE:
        put(o, " %s%sdevices %" PRIu32 "..%" PRIu32, prep, sp, sel->first, sel->last);
        return;
    case SCN_SEL_ALL:
        put(o, " %s%sall devices", prep, sp);
        return;
    case SCN_SEL_RANDOM:
        put(o, " %s%srandom %" PRIu32 " device%s", prep, sp, sel->count,
            sel->count == 1 ? "" : "s");
        return;
    case SCN_SEL_GROUP:
        put(o, " %s%sgroup %s", prep, sp, sel->id);
        return;
    }
}

static void put_time_expr(struct out *o, const struct scn_time_expr *te)
{
    put(o, " within ");
    put_ms(o, te->resolved_ms);
    if (te->keepalive_milli) {
        put(o, " (");
        put_milli(o, te->keepalive_milli);
        put(o, " x keepalive");
        if (te->ms > 0) {
            put(o, " + ");
            put_ms(o, te->ms);
        } else if (te->ms < 0) {
            put(o, " - ");
            put_ms(o, -te->ms);
        }
        put(o, ")");
    }
    if (te->startup_milli) {
        put(o, " + ");
        put_milli(o, te->startup_milli);
        put(o, " x startup");
    }
}

static void put_expect(struct out *o, const struct scn_step *st)
{
    const struct scn_expect *e = &st->u.expect;
    switch (e->kind) {
    case SCN_EXP_LEDGER:
        put(o, "ledger %s %s ", scn_ledger_field_name(e->ledger), scn_cmp_name(e->cmp));
        if (scn_ledger_field_is_duration(e->ledger))
            put_ms(o, e->value);
        else
            put(o, "%" PRId64, e->value);
        break;
    case SCN_EXP_COUNTER:
        put(o, "%s%s", e->sum ? "sum " : "", scn_counter_name(e->counter));
        if (e->counter == SCN_CTR_REJECTS)
            put(o, " %s", scn_reject_name(e->reason));
        put(o, " %s ", scn_cmp_name(e->cmp));
        if (scn_counter_is_bool(e->counter) && !e->sum)
            put(o, "%s", e->value ? "true" : "false");
        else if (e->counter == SCN_CTR_SCREEN)
            put(o, "%s", scn_screen_name((enum scn_screen)e->value));
        else
            put(o, "%" PRId64, e->value);
        put_selector(o, "on", &st->sel);
        break;
    case SCN_EXP_WILL:
        put(o, "will published");
        put_selector(o, "for", &st->sel);
        break;
    case SCN_EXP_NO_WILL:
        put(o, "no will");
        put_selector(o, "for", &st->sel);
        break;
    case SCN_EXP_RETAINED:
        put(o, "retained status");
        put_selector(o, "of", &st->sel);
        put(o, " == %s", e->online ? "online" : "offline");
        break;
    case SCN_EXP_ORDER:
        put(o, "registrations");
        put_selector(o, "of", &st->sel);
        put(o, " arrive in order");
        break;
    case SCN_EXP_REPLIES:
        put(o, "command replies");
        if (e->reply != SCN_REPLY_ANY)
            put(o, " %s", scn_reply_result_name(e->reply));
        if (e->reply_duplicate)
            put(o, " duplicate");
        if (e->reply_reason[0])
            put(o, " reason %s", e->reply_reason);
        put(o, " %s %" PRId64, scn_cmp_name(e->cmp), e->value);
        put_selector(o, "from", &st->sel);
        break;
    case SCN_EXP_FORGED:
        put(o, "forged commands %s %s %" PRId64, e->forged_refused ? "refused" : "accepted",
            scn_cmp_name(e->cmp), e->value);
        break;
    }
    if (e->has_within)
        put_time_expr(o, &e->within);
}

/* command <cmd> [k=v ...] [as <id>] */
static void put_command(struct out *o, const struct scn_step *st)
{
    const struct scn_command_step *c = &st->u.command;
    put(o, "command %s", scn_command_name(c->cmd));
    for (uint32_t k = 0; k < c->n_args && k < SCN_CMD_ARGS_MAX; k++)
        put(o, c->args[k].type == SCN_ARG_STRING ? " %s=\"%s\"" : " %s=%s", c->args[k].key,
            c->args[k].value);
    if (c->cmd_id[0])
        put(o, " as %s", c->cmd_id);
}

static void put_action(struct out *o, const struct scn_step *st)
{
    const char *name = scn_action_name(st->action);
    switch (st->action) {
    case SCN_ACT_DROP:
    case SCN_ACT_DUPLICATE:
        if (st->u.fault.count)
            put(o, "%s next %" PRIu32 " %s %s", name, st->u.fault.count,
                scn_packet_name(st->u.fault.packet), scn_direction_name(st->u.fault.dir));
        else
            put(o, "%s all %s %s", name, scn_packet_name(st->u.fault.packet),
                scn_direction_name(st->u.fault.dir));
        break;
    case SCN_ACT_DELAY:
        put(o, "delay %s %s by ", scn_packet_name(st->u.fault.packet),
            scn_direction_name(st->u.fault.dir));
        put_ms(o, st->u.fault.delay_ms);
        break;
    case SCN_ACT_CUT:
        put(o, "cut link %s", st->u.rst ? "rst" : "fin");
        break;
    case SCN_ACT_THROTTLE:
        put(o, "throttle %" PRIu64 "B/s", st->u.bytes_per_s);
        break;
    case SCN_ACT_INJECT:
        put(o, "inject malformed %s", scn_frame_name(st->u.frame));
        put_selector(o, "to", &st->sel);
        return;
    case SCN_ACT_PUBLISH_ITEMS:
        put(o, "publish %" PRIu32 " item%s", st->u.publish.count,
            st->u.publish.count == 1 ? "" : "s");
        put_selector(o, "to", &st->sel);
        return;
    case SCN_ACT_PUBLISH_MALFORMED:
        put(o, "publish %" PRIu32 " malformed %s", st->u.publish.count,
            scn_reject_name(st->u.publish.kind));
        put_selector(o, "to", &st->sel);
        return;
    case SCN_ACT_SCAN_TAG:
        put(o, "scan tag ");
        for (uint32_t k = 0; k < st->u.tag.len && k < SCN_TAG_MAX; k++)
            put(o, "%02X", st->u.tag.uid[k]);
        break;
    case SCN_ACT_EXPECT:
        put(o, "expect ");
        put_expect(o, st);
        return;
    case SCN_ACT_COMMAND:
        put_command(o, st);
        put_selector(o, "to", &st->sel);
        return;
    case SCN_ACT_FORGE_COMMAND:
        put(o, "device %" PRIu32 " publishes ", st->u.command.from);
        put_command(o, st);
        put_selector(o, "to", &st->sel);
        return;
    case SCN_ACT_POWER_CUT:
    case SCN_ACT_POWER_OFF:
    case SCN_ACT_POWER_ON:
    case SCN_ACT_RESTART:
    case SCN_ACT_NETWORK_DOWN:
    case SCN_ACT_NETWORK_UP:
        put(o, "%s", name);
        put_selector(o, "", &st->sel);
        return;
    default:
        put(o, "%s", name);
        break;
    }
    put_selector(o, "on", &st->sel);
}

int scn_step_describe(const struct scn_step *step, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    if (buf && cap)
        buf[0] = '\0';
    else
        o.cap = 0;
    if (!step)
        return 0;
    switch (step->timing) {
    case SCN_AT:
    case SCN_AFTER:
        put(&o, "%s ", scn_timing_name(step->timing));
        put_ms(&o, step->time_ms);
        put(&o, ": ");
        put_action(&o, step);
        break;
    case SCN_WAIT:
        put(&o, "wait ");
        put_ms(&o, step->time_ms);
        break;
    case SCN_WAIT_UNTIL:
        put(&o, "wait until ");
        put_expect(&o, step);
        break;
    case SCN_THEN:
        put(&o, "then: ");
        put_action(&o, step);
        break;
    }
    return o.len > INT32_MAX ? INT32_MAX : (int)o.len;
}

int scn_diag_format(const struct scn_diag *d, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    if (buf && cap)
        buf[0] = '\0';
    else
        o.cap = 0;
    if (!d)
        return 0;
    if (d->line)
        put(&o, "%s:%" PRIu32 ":%" PRIu32 ": %s", d->file, d->line, d->col, d->message);
    else
        put(&o, "%s: %s", d->file, d->message);
    return (int)o.len;
}

/* ================================================================ devices */

const struct scn_group *scn_device_group(const struct scn_scenario *s, uint32_t n)
{
    if (!s || n < 1 || n > s->n_devices)
        return NULL;
    size_t lo = 0, hi = s->n_groups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct scn_group *g = &s->groups[mid];
        if (n < g->first)
            hi = mid;
        else if (n >= g->first + g->count)
            lo = mid + 1;
        else
            return g;
    }
    return NULL;
}

int scn_device_id(const struct scn_scenario *s, uint32_t n, char *buf, size_t cap)
{
    const struct scn_group *g = scn_device_group(s, n);
    if (!g) {
        if (buf && cap)
            buf[0] = '\0';
        return -1;
    }
    return snprintf(buf, buf ? cap : 0, "%s%" PRIu32, g->id_prefix, n - g->first + 1);
}

uint64_t scn_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A uniform draw in [0, n), without modulo bias. */
static uint64_t rng_below(uint64_t *state, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do
        r = scn_rng_next(state);
    while (r >= limit);
    return r % n;
}

size_t scn_selector_resolve(const struct scn_scenario *s, const struct scn_selector *sel,
                            uint64_t *rng, uint32_t *out, size_t cap)
{
    if (!s || !sel || sel->kind == SCN_SEL_NONE || sel->first < 1 || sel->last < sel->first)
        return 0;
    size_t n = 0;
    if (sel->kind != SCN_SEL_RANDOM) {
        for (uint32_t d = sel->first; d <= sel->last; d++) {
            if (n < cap && out)
                out[n] = d;
            n++;
        }
        return n;
    }
    /* Selection sampling (Knuth, algorithm S): one pass, ascending, no extra memory. */
    uint64_t pool = (uint64_t)sel->last - sel->first + 1;
    uint64_t want = sel->count < pool ? sel->count : pool;
    uint64_t seed_state = 0, *st = rng ? rng : &seed_state;
    for (uint64_t k = 0; k < pool && n < want; k++) {
        if (rng_below(st, pool - k) < want - n) {
            if (n < cap && out)
                out[n] = (uint32_t)(sel->first + k);
            n++;
        }
    }
    return n;
}
