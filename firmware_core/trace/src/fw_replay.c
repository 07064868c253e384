/*
 * fw_replay.c - trace replay and comparison (fw/fw_replay.h).
 *
 * The device under replay gets recording ports (fw_trace_recorder.c, the same code that
 * wrote the trace) whose inner ports answer from the trace: so both sides' records come
 * from one encoder, and "the same calls" means the same bytes.
 *
 * Sections: reading the window, answering ports, events, the report, the run.
 */
#include "fw/fw_replay.h"

#include <stdio.h>
#include <string.h>

/* ================================================================ reading the window */

/* Keeps the unread part [from, in_len) and fills the window up from the source. */
static int replay__refill(struct fw_replay *rp, const struct fw_replay_source *src,
                          size_t from, struct fw_trace_error *err)
{
    memmove(rp->in, rp->in + from, rp->in_len - from);
    rp->in_len -= from;
    rp->in_base += from;
    while (!rp->eof && rp->in_len < sizeof rp->in) {
        long n = src->read(src->ctx, rp->in + rp->in_len, sizeof rp->in - rp->in_len);
        if (n < 0) {
            err->offset = rp->in_base + rp->in_len;
            snprintf(err->what, sizeof err->what, "read error");
            return -1;
        }
        if (n == 0)
            rp->eof = true;
        rp->in_len += (size_t)n;
    }
    return 0;
}

long fw_replay_mem_read(void *ctx, void *buf, size_t cap)
{
    struct fw_replay_mem *m = ctx;
    size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (long)n;
}

/* Decodes the record at in[pos]; its size, or -1 with err (truncated included). */
static long replay__record(struct fw_replay *rp, size_t pos, struct fw_trace_rec *r,
                           struct fw_trace_error *err)
{
    long n = fw_trace_read(rp->in + pos, rp->in_len - pos, rp->in_base + pos, r, err);
    if (n != 0)
        return n;
    err->offset = rp->in_base + pos;
    snprintf(err->what, sizeof err->what,
             rp->eof ? "truncated record at the end of the trace"
                     : "event with its port records larger than %u bytes",
             (unsigned)FW_REPLAY_GROUP_MAX);
    return -1;
}

/* The event at in[0] and its port records: up to the next event or the end. */
static long replay__group(struct fw_replay *rp, struct fw_trace_rec *ev,
                          struct fw_trace_error *err)
{
    long n = replay__record(rp, 0, ev, err);
    if (n < 0)
        return -1;
    if (!fw_trace_is_event(ev->type)) {
        err->offset = rp->in_base;
        snprintf(err->what, sizeof err->what, "port record '%s' outside an event",
                 ev->layout->name);
        return -1;
    }
    size_t pos = (size_t)n;
    while (pos < rp->in_len && !fw_trace_is_event(rp->in[pos])) {
        struct fw_trace_rec r;
        long m = replay__record(rp, pos, &r, err);
        if (m < 0)
            return -1;
        pos += (size_t)m;
    }
    if (pos > FW_REPLAY_GROUP_MAX) {
        err->offset = rp->in_base;
        snprintf(err->what, sizeof err->what, "event with its port records larger than %u bytes",
                 (unsigned)FW_REPLAY_GROUP_MAX);
        return -1;
    }
    rp->ports_start = (size_t)n;
    rp->group_end = pos;
    for (size_t i = 0; i < sizeof rp->cursor / sizeof rp->cursor[0]; i++)
        rp->cursor[i] = rp->ports_start;
    return (long)pos;
}

/* ================================================================ answering ports */

/* The next recorded call of this kind in the current event, or NULL (answers default). */
static const struct fw_trace_rec *replay__take(struct fw_replay *rp, unsigned type)
{
    size_t *pos = &rp->cursor[type - 0x40];
    while (*pos < rp->group_end) {
        long n = fw_trace_read(rp->in + *pos, rp->group_end - *pos, 0, &rp->taken, NULL);
        if (n <= 0)
            break; /* checked when the group was read */
        *pos += (size_t)n;
        if (rp->taken.type == type)
            return &rp->taken;
    }
    return NULL;
}

static int32_t reply_i(const struct fw_trace_rec *t, int field, int32_t fallback)
{
    return t ? (int32_t)t->f[field].num : fallback;
}

static int ans_connect(void *ctx, const struct fw_connect_params *p)
{
    (void)p;
    return reply_i(replay__take(ctx, FW_TR_CONNECT), 7, FW_OK);
}

static int ans_publish(void *ctx, const struct fw_publish *m, uint32_t *token)
{
    (void)m;
    const struct fw_trace_rec *t = replay__take(ctx, FW_TR_PUBLISH);
    *token = t ? (uint32_t)t->f[5].num : 0;
    return reply_i(t, 4, FW_ERR_OFFLINE);
}

static int ans_subscribe(void *ctx, const char *filter, int qos, uint32_t *token)
{
    (void)filter;
    (void)qos;
    const struct fw_trace_rec *t = replay__take(ctx, FW_TR_SUBSCRIBE);
    *token = t ? (uint32_t)t->f[3].num : 0;
    return reply_i(t, 2, FW_OK);
}

static void ans_disconnect(void *ctx)
{
    (void)replay__take(ctx, FW_TR_DISCONNECT);
}

static void ans_flush(void *ctx, const uint8_t *fb)
{
    (void)fb;
    (void)replay__take(ctx, FW_TR_FLUSH);
}

static uint64_t ans_clock(void *ctx)
{
    struct fw_replay *rp = ctx;
    const struct fw_trace_rec *t = replay__take(rp, FW_TR_CLOCK);
    if (t != NULL)
        rp->last_clock = (uint64_t)t->f[0].num;
    return rp->last_clock;
}

static int ans_read(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    (void)key;
    const struct fw_trace_rec *t = replay__take(ctx, FW_TR_STORAGE_READ);
    *len = 0;
    if (t == NULL)
        return FW_ERR_NOT_FOUND;
    size_t n = t->f[3].len < cap ? t->f[3].len : cap;
    if (n > 0)
        memcpy(buf, t->f[3].ptr, n);
    *len = t->f[3].len; /* as the platform said: a length beyond cap is the firmware's to catch */
    return (int)t->f[2].num;
}

static int ans_write(void *ctx, const char *key, const void *buf, size_t len)
{
    (void)key;
    (void)buf;
    (void)len;
    return reply_i(replay__take(ctx, FW_TR_STORAGE_WRITE), 2, FW_OK);
}

static void ans_log(void *ctx, enum fw_log_level level, const char *line)
{
    (void)level;
    (void)line;
    (void)replay__take(ctx, FW_TR_LOG);
}

/* ================================================================ timed ports */

/* Each forwards to the recording port between the hook's enter and leave. */
#define TIMED(rp, call)                                                                   \
    do {                                                                                  \
        (rp)->hooks->port((rp)->hooks->ctx, true);                                        \
        call;                                                                             \
        (rp)->hooks->port((rp)->hooks->ctx, false);                                       \
    } while (0)

static int timed_connect(void *ctx, const struct fw_connect_params *p)
{
    struct fw_replay *rp = ctx;
    int rc;
    TIMED(rp, rc = rp->rec.ports.net_connect(rp->rec.ports.ctx, p));
    return rc;
}

static int timed_publish(void *ctx, const struct fw_publish *m, uint32_t *token)
{
    struct fw_replay *rp = ctx;
    int rc;
    TIMED(rp, rc = rp->rec.ports.net_publish(rp->rec.ports.ctx, m, token));
    return rc;
}

static int timed_subscribe(void *ctx, const char *filter, int qos, uint32_t *token)
{
    struct fw_replay *rp = ctx;
    int rc;
    TIMED(rp, rc = rp->rec.ports.net_subscribe(rp->rec.ports.ctx, filter, qos, token));
    return rc;
}

static void timed_disconnect(void *ctx)
{
    struct fw_replay *rp = ctx;
    TIMED(rp, rp->rec.ports.net_disconnect(rp->rec.ports.ctx));
}

static void timed_flush(void *ctx, const uint8_t *fb)
{
    struct fw_replay *rp = ctx;
    TIMED(rp, rp->rec.ports.display_flush(rp->rec.ports.ctx, fb));
}

static uint64_t timed_clock(void *ctx)
{
    struct fw_replay *rp = ctx;
    uint64_t ms;
    TIMED(rp, ms = rp->rec.ports.clock_ms(rp->rec.ports.ctx));
    return ms;
}

static int timed_read(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    struct fw_replay *rp = ctx;
    int rc;
    TIMED(rp, rc = rp->rec.ports.storage_read(rp->rec.ports.ctx, key, buf, cap, len));
    return rc;
}

static int timed_write(void *ctx, const char *key, const void *buf, size_t len)
{
    struct fw_replay *rp = ctx;
    int rc;
    TIMED(rp, rc = rp->rec.ports.storage_write(rp->rec.ports.ctx, key, buf, len));
    return rc;
}

static void timed_log(void *ctx, enum fw_log_level level, const char *line)
{
    struct fw_replay *rp = ctx;
    TIMED(rp, rp->rec.ports.log(rp->rec.ports.ctx, level, line));
}

/* The ports the device under replay gets: the recording ones, timed if asked. */
static const struct fw_ports *replay__device_ports(struct fw_replay *rp)
{
    if (rp->hooks->port == NULL)
        return &rp->rec.ports;
    const struct fw_ports *r = &rp->rec.ports;
    rp->timed = (struct fw_ports){rp,
                                  timed_connect,
                                  timed_publish,
                                  timed_subscribe,
                                  timed_disconnect,
                                  r->display_flush ? timed_flush : NULL,
                                  timed_clock,
                                  timed_read,
                                  timed_write,
                                  r->log ? timed_log : NULL,
                                  NULL, NULL};
    return &rp->timed;
}

/* ================================================================ events */

/* A byte field as a C string in out (FW_REPLAY_STR_MAX); NULL when absent. */
static const char *replay__cstr(const struct fw_trace_field *f, char *out, size_t cap,
                                bool *ok)
{
    if (!f->present)
        return NULL;
    if (f->len >= cap || memchr(f->ptr, 0, f->len) != NULL) {
        *ok = false;
        return NULL;
    }
    memcpy(out, f->ptr, f->len);
    out[f->len] = '\0';
    return out;
}

static int replay__init(struct fw_replay *rp, const struct fw_trace_rec *ev)
{
    bool ok = true;
    struct fw_device_config cfg;
    fw_device_config_defaults(&cfg);
    cfg.device_id = replay__cstr(&ev->f[0], rp->strs[0], FW_REPLAY_STR_MAX, &ok);
    cfg.layout = (enum fw_layout)ev->f[1].num;
    cfg.clean_session = ev->f[2].num != 0;
    cfg.keepalive_s = (uint16_t)ev->f[3].num;
    cfg.qos = (int)ev->f[4].num;
    cfg.seed = (uint32_t)ev->f[5].num;
    const char **topics[5] = {&cfg.topic_item_registration, &cfg.topic_item_registered,
                              &cfg.topic_inventory_query, &cfg.topic_inventory_reply,
                              &cfg.topic_status};
    for (int i = 0; i < 5; i++)
        *topics[i] = replay__cstr(&ev->f[7 + i], rp->strs[1 + i], FW_REPLAY_STR_MAX, &ok);
    if (!ok) {
        rp->why = "a device id or topic too long or with a NUL";
        return -1;
    }
    unsigned have = (unsigned)ev->f[6].num;
    rp->answers.display_flush = have & FW_TRACE_PORT_DISPLAY ? ans_flush : NULL;
    rp->answers.log = have & FW_TRACE_PORT_LOG ? ans_log : NULL;
    cfg.resume_in_flight = (have & FW_TRACE_PORT_RESUME) != 0;
    fw_trace_recorder_wrap(&rp->rec, &rp->answers);
    int rc = fw_device_init(&rp->dev, &cfg, replay__device_ports(rp));
    rp->ready = rc == FW_OK;
    fw_trace_recorder_result(&rp->rec, rc);
    return 0;
}

/* The C strings and bytes an event hands over, copied out of the trace: the bytes into an
   aligned buffer of their own, as a network stack's would be. -1 when they do not fit. */
static int replay__args(struct fw_replay *rp, const struct fw_trace_rec *ev,
                        const char **topic, const char **why)
{
    const struct fw_trace_field *f = ev->f;
    bool ok = true;
    *topic = *why = NULL;
    if (ev->type == FW_TR_MESSAGE || ev->type == FW_TR_TAG) {
        const struct fw_trace_field *b = &f[ev->type == FW_TR_MESSAGE ? 2 : 0];
        if (b->len > sizeof rp->payload)
            return -1;
        if (b->len > 0)
            memcpy(rp->payload, b->ptr, b->len);
        if (ev->type == FW_TR_MESSAGE)
            *topic = replay__cstr(&f[0], rp->topic, sizeof rp->topic, &ok);
    }
    if (ev->type == FW_TR_CONNECT_FAILED || ev->type == FW_TR_CONNECTION_LOST)
        *why = replay__cstr(&f[ev->type == FW_TR_CONNECT_FAILED ? 1 : 0], rp->topic,
                            sizeof rp->topic, &ok);
    return ok ? 0 : -1;
}

/* The one call into the device; *rc: what it returned (init, tag). -1: no such call. */
static int replay__call(struct fw_replay *rp, const struct fw_trace_rec *ev, const char *topic,
                        const char *why, int *rc)
{
    const struct fw_trace_field *f = ev->f;
    struct fw_device *d = &rp->dev;
    switch ((enum fw_trace_type)ev->type) {
    case FW_TR_INIT: return replay__init(rp, ev);
    case FW_TR_START: fw_device_start(d); break;
    case FW_TR_STOP: fw_device_stop(d); break;
    case FW_TR_TICK: fw_device_tick(d, (uint64_t)f[0].num); break;
    case FW_TR_CONNECTED: fw_device_on_connected(d, f[0].num != 0); break;
    case FW_TR_CONNECT_FAILED: fw_device_on_connect_failed(d, (int)f[0].num, why); break;
    case FW_TR_CONNECTION_LOST: fw_device_on_connection_lost(d, why); break;
    case FW_TR_MESSAGE:
        fw_device_on_message(d, topic, rp->payload, f[2].len, (int)f[3].num, f[4].num != 0);
        break;
    case FW_TR_SUBSCRIBED: fw_device_on_subscribed(d, (uint32_t)f[0].num, (int)f[1].num); break;
    case FW_TR_PUBLISHED: fw_device_on_published(d, (uint32_t)f[0].num); break;
    case FW_TR_PUBLISH_REFUSED:
        fw_device_on_publish_refused(d, (uint32_t)f[0].num, (int)f[1].num);
        break;
    case FW_TR_TAG: *rc = fw_device_on_tag(d, (const uint8_t *)rp->payload, f[0].len); break;
    case FW_TR_BUTTON: fw_device_on_button(d, (enum fw_button)f[0].num); break;
    default: rp->why = "this firmware has no such call"; return -1;
    }
    return 0;
}

/* Makes the event's call into the device, between the hooks. -1 when it cannot be
   replayed. */
static int replay__event(struct fw_replay *rp, const struct fw_trace_rec *ev,
                         const struct fw_replay_hooks *h)
{
    const char *topic, *why;
    int rc = 0;
    if (ev->type != FW_TR_INIT && !rp->ready) {
        /* A platform calls nothing but init on a device that was never initialised. */
        rp->why = "no successful init before it";
        return -1;
    }
    if (replay__args(rp, ev, &topic, &why) != 0) {
        rp->why = "a string too long or with a NUL";
        return -1;
    }
    if (h->before)
        h->before(h->ctx, ev->type);
    int bad = replay__call(rp, ev, topic, why, &rc);
    if (h->after)
        h->after(h->ctx, ev->type);
    if (ev->type == FW_TR_TAG)
        fw_trace_recorder_result(&rp->rec, rc);
    return bad;
}

/* ================================================================ the report */

static void replay__print(const struct fw_replay_hooks *h, const char *line)
{
    if (h->print)
        h->print(h->ctx, line);
}

/* The n-th record of [buf, end) formatted into out, or "" past the end; its raw bytes. */
static const uint8_t *replay__nth(const uint8_t *buf, size_t len, unsigned n, char *out,
                                  size_t cap, uint32_t *size)
{
    struct fw_trace_rec r;
    size_t pos = 0;
    out[0] = '\0';
    *size = 0;
    for (unsigned i = 0; pos < len; i++) {
        long m = fw_trace_read(buf + pos, len - pos, 0, &r, NULL);
        if (m <= 0)
            return NULL;
        if (i == n) {
            fw_trace_format(&r, out, cap);
            *size = r.size;
            return buf + pos;
        }
        pos += (size_t)m;
    }
    return NULL;
}

static void replay__report(struct fw_replay *rp, const struct fw_trace_rec *ev,
                           const struct fw_replay_hooks *h, uint32_t index)
{
    char line[640], a[512], b[512], evs[200];
    snprintf(line, sizeof line, "first difference at event %u (offset %llu): %s",
             (unsigned)index, (unsigned long long)rp->in_base, fw_trace_format(ev, evs, sizeof evs));
    replay__print(h, line);
    snprintf(line, sizeof line, "  #   %-64s | %s", "recorded (Linux)", "replayed (this build)");
    replay__print(h, line);
    const uint8_t *rec = rp->in + rp->ports_start;
    size_t rec_len = rp->group_end - rp->ports_start;
    bool first = true;
    char fa[512] = "", fb[512] = "";
    for (unsigned i = 0;; i++) {
        uint32_t sa, sb;
        const uint8_t *ra = replay__nth(rec, rec_len, i, a, sizeof a, &sa);
        const uint8_t *rb = replay__nth(rp->out, rp->outb.len, i, b, sizeof b, &sb);
        if (ra == NULL && rb == NULL)
            break;
        bool same = ra && rb && sa == sb && memcmp(ra, rb, sa) == 0;
        /* A differing row starts near its first differing character, so the columns show it. */
        size_t skip = 0;
        while (!same && a[skip] && a[skip] == b[skip])
            skip++;
        skip = skip > 40 ? skip - 40 : 0;
        snprintf(line, sizeof line, "%3u %c %s%-*.*s | %s%.64s", i + 1, same ? '=' : '!',
                 skip ? "..." : "", skip ? 61 : 64, skip ? 61 : 64, a + skip,
                 skip ? "..." : "", b + skip);
        replay__print(h, line);
        if (!same && first) {
            first = false;
            memcpy(fa, a, sizeof fa);
            memcpy(fb, b, sizeof fb);
        }
    }
    if (rp->outb.overflow)
        replay__print(h, "  (this build's calls overflowed the comparison buffer)");
    snprintf(line, sizeof line, "  recorded: %s", fa[0] ? fa : "(nothing)");
    replay__print(h, line);
    snprintf(line, sizeof line, "  replayed: %s", fb[0] ? fb : "(nothing)");
    replay__print(h, line);
}

/* ================================================================ the run */

/* Did this build make the recorded calls? Counts the records compared when it did. */
static bool replay__same(struct fw_replay *rp, struct fw_replay_result *res)
{
    size_t want = rp->group_end - rp->ports_start;
    if (rp->outb.overflow || rp->outb.len != want ||
        memcmp(rp->out, rp->in + rp->ports_start, want) != 0)
        return false;
    for (size_t pos = rp->ports_start; pos < rp->group_end; res->records++) {
        struct fw_trace_rec r;
        pos += (size_t)fw_trace_read(rp->in + pos, rp->group_end - pos, 0, &r, NULL);
    }
    return true;
}

static int replay__bad(struct fw_replay_result *res)
{
    res->outcome = FW_REPLAY_BAD_TRACE;
    return res->outcome;
}

int fw_replay_run(struct fw_replay *rp, const struct fw_replay_source *src,
                  const struct fw_replay_hooks *hooks, struct fw_replay_result *res)
{
    static const struct fw_replay_hooks none = {0};
    const struct fw_replay_hooks *h = hooks ? hooks : &none;
    memset(res, 0, sizeof *res);
    memset(rp, 0, sizeof *rp);
    rp->hooks = h;
    rp->answers = (struct fw_ports){rp, ans_connect, ans_publish, ans_subscribe,
                                    ans_disconnect, ans_flush, ans_clock, ans_read,
                                    ans_write, ans_log, NULL, NULL};
    rp->rec.write = fw_trace_buf_write;
    rp->rec.write_ctx = &rp->outb;
    if (replay__refill(rp, src, 0, &res->err) != 0 ||
        fw_trace_check_header(rp->in, rp->in_len, &res->err) != 0)
        return replay__bad(res);
    size_t from = FW_TRACE_HEADER_LEN;
    for (;;) {
        if (replay__refill(rp, src, from, &res->err) != 0)
            return replay__bad(res);
        if (rp->in_len == 0)
            break;
        struct fw_trace_rec ev;
        long n = replay__group(rp, &ev, &res->err);
        if (n < 0)
            return replay__bad(res);
        rp->outb = (struct fw_trace_buf){rp->out, sizeof rp->out, 0, false};
        res->events++;
        if (replay__event(rp, &ev, h) != 0) {
            res->err.offset = rp->in_base;
            snprintf(res->err.what, sizeof res->err.what, "event '%s' cannot be replayed: %s",
                     ev.layout->name, rp->why ? rp->why : "unknown reason");
            return replay__bad(res);
        }
        if (!replay__same(rp, res)) {
            res->outcome = FW_REPLAY_DIFFER;
            res->event_offset = rp->in_base;
            replay__report(rp, &ev, h, res->events);
            return res->outcome;
        }
        from = (size_t)n;
    }
    res->outcome = FW_REPLAY_MATCH;
    return res->outcome;
}
