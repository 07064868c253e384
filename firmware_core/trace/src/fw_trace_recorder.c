/*
 * fw_trace_recorder.c - recording ports and traced event calls (fw/fw_trace_recorder.h).
 *
 * Every port call is one record written after the platform answered, so the record holds
 * the request and the reply together, in the order the firmware made the calls. Events
 * are written before the call into the device, so the port records that follow an event
 * are the ones it caused.
 *
 * Sections: fields, recording ports, traced events.
 */
#include "fw/fw_trace_recorder.h"

#include <string.h>

#include "fw_util.h"

/* ================================================================ fields */

static struct fw_trace_field num(int64_t v)
{
    return (struct fw_trace_field){v, NULL, 0, true};
}

static struct fw_trace_field bytes(const void *p, size_t n)
{
    return (struct fw_trace_field){0, p, (uint32_t)n, p != NULL};
}

static struct fw_trace_field str(const char *s)
{
    return bytes(s, s ? strlen(s) : 0);
}

static void rec(struct fw_trace_recorder *r, unsigned type, const struct fw_trace_field *f)
{
    (void)fw_trace_write(r->write, r->write_ctx, type, f);
}

/* ================================================================ recording ports */

static int rec_connect(void *ctx, const struct fw_connect_params *p)
{
    struct fw_trace_recorder *r = ctx;
    int rc = r->inner.net_connect(r->inner.ctx, p);
    struct fw_trace_field f[] = {str(p->client_id), num(p->clean_session),
                                 num(p->keepalive_s), str(p->will_topic),
                                 bytes(p->will_payload, p->will_len), num(p->will_qos),
                                 num(p->will_retain), num(rc)};
    rec(r, FW_TR_CONNECT, f);
    return rc;
}

static int rec_publish(void *ctx, const struct fw_publish *m, uint32_t *token)
{
    struct fw_trace_recorder *r = ctx;
    int rc = r->inner.net_publish(r->inner.ctx, m, token);
    struct fw_trace_field f[] = {str(m->topic),  bytes(m->payload, m->len), num(m->qos),
                                 num(m->retain), num(rc),                   num(*token)};
    rec(r, FW_TR_PUBLISH, f);
    return rc;
}

static int rec_subscribe(void *ctx, const char *filter, int qos, uint32_t *token)
{
    struct fw_trace_recorder *r = ctx;
    int rc = r->inner.net_subscribe(r->inner.ctx, filter, qos, token);
    struct fw_trace_field f[] = {str(filter), num(qos), num(rc), num(*token)};
    rec(r, FW_TR_SUBSCRIBE, f);
    return rc;
}

static void rec_disconnect(void *ctx)
{
    struct fw_trace_recorder *r = ctx;
    r->inner.net_disconnect(r->inner.ctx);
    rec(r, FW_TR_DISCONNECT, NULL);
}

static void rec_flush(void *ctx, const uint8_t *fb)
{
    struct fw_trace_recorder *r = ctx;
    struct fw_trace_field f[] = {num(fw_crc32(fb, FW_FB_BYTES))};
    rec(r, FW_TR_FLUSH, f);
    r->inner.display_flush(r->inner.ctx, fb);
}

static uint64_t rec_clock(void *ctx)
{
    struct fw_trace_recorder *r = ctx;
    uint64_t ms = r->inner.clock_ms(r->inner.ctx);
    struct fw_trace_field f[] = {num((int64_t)ms)};
    rec(r, FW_TR_CLOCK, f);
    return ms;
}

static int rec_read(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    struct fw_trace_recorder *r = ctx;
    size_t n = 0;
    int rc = r->inner.storage_read(r->inner.ctx, key, buf, cap, &n);
    *len = n;
    struct fw_trace_field f[] = {str(key), num((int64_t)cap), num(rc),
                                 bytes(buf, rc == 0 && n <= cap ? n : 0)};
    rec(r, FW_TR_STORAGE_READ, f);
    return rc;
}

static int rec_write(void *ctx, const char *key, const void *buf, size_t len)
{
    struct fw_trace_recorder *r = ctx;
    int rc = r->inner.storage_write(r->inner.ctx, key, buf, len);
    struct fw_trace_field f[] = {str(key), bytes(buf, len), num(rc)};
    rec(r, FW_TR_STORAGE_WRITE, f);
    return rc;
}

static void rec_log(void *ctx, enum fw_log_level level, const char *line)
{
    struct fw_trace_recorder *r = ctx;
    struct fw_trace_field f[] = {num(level), str(line)};
    rec(r, FW_TR_LOG, f);
    r->inner.log(r->inner.ctx, level, line);
}

void fw_trace_recorder_init(struct fw_trace_recorder *r, fw_trace_write_fn write, void *ctx)
{
    memset(r, 0, sizeof *r);
    r->write = write;
    r->write_ctx = ctx;
    fw_trace_write_header(write, ctx);
}

/* The recording ports mirror the platform's: an optional port stays absent. */
void fw_trace_recorder_wrap(struct fw_trace_recorder *r, const struct fw_ports *inner)
{
    r->inner = *inner;
    r->ports = (struct fw_ports){
        .ctx = r,
        .net_connect = inner->net_connect ? rec_connect : NULL,
        .net_publish = inner->net_publish ? rec_publish : NULL,
        .net_subscribe = inner->net_subscribe ? rec_subscribe : NULL,
        .net_disconnect = inner->net_disconnect ? rec_disconnect : NULL,
        .display_flush = inner->display_flush ? rec_flush : NULL,
        .clock_ms = inner->clock_ms ? rec_clock : NULL,
        .storage_read = inner->storage_read ? rec_read : NULL,
        .storage_write = inner->storage_write ? rec_write : NULL,
        .log = inner->log ? rec_log : NULL,
    };
}

/* ================================================================ traced events */

void fw_trace_recorder_result(struct fw_trace_recorder *r, int rc)
{
    struct fw_trace_field f[] = {num(rc)};
    rec(r, FW_TR_RESULT, f);
}

int fw_traced_init(struct fw_trace_recorder *r, struct fw_device *d,
                   const struct fw_device_config *cfg, const struct fw_ports *ports)
{
    if (r == NULL || cfg == NULL || ports == NULL)
        return fw_device_init(d, cfg, ports);
    fw_trace_recorder_wrap(r, ports);
    unsigned have = (ports->display_flush ? FW_TRACE_PORT_DISPLAY : 0u) |
                    (ports->log ? FW_TRACE_PORT_LOG : 0u) |
                    (cfg->resume_in_flight ? FW_TRACE_PORT_RESUME : 0u);
    struct fw_trace_field f[] = {
        str(cfg->device_id), num(cfg->layout), num(cfg->clean_session),
        num(cfg->keepalive_s), num(cfg->qos), num(cfg->seed), num(have),
        str(cfg->topic_item_registration), str(cfg->topic_item_registered),
        str(cfg->topic_inventory_query), str(cfg->topic_inventory_reply),
        str(cfg->topic_status)};
    rec(r, FW_TR_INIT, f);
    int rc = fw_device_init(d, cfg, &r->ports);
    fw_trace_recorder_result(r, rc);
    return rc;
}

void fw_traced_start(struct fw_trace_recorder *r, struct fw_device *d)
{
    if (r != NULL)
        rec(r, FW_TR_START, NULL);
    fw_device_start(d);
}

void fw_traced_stop(struct fw_trace_recorder *r, struct fw_device *d)
{
    if (r != NULL)
        rec(r, FW_TR_STOP, NULL);
    fw_device_stop(d);
}

void fw_traced_tick(struct fw_trace_recorder *r, struct fw_device *d, uint64_t now_ms)
{
    if (r != NULL) {
        struct fw_trace_field f[] = {num((int64_t)now_ms)};
        rec(r, FW_TR_TICK, f);
    }
    fw_device_tick(d, now_ms);
}

void fw_traced_on_connected(struct fw_trace_recorder *r, struct fw_device *d,
                            bool session_present)
{
    if (r != NULL) {
        struct fw_trace_field f[] = {num(session_present)};
        rec(r, FW_TR_CONNECTED, f);
    }
    fw_device_on_connected(d, session_present);
}

void fw_traced_on_connect_failed(struct fw_trace_recorder *r, struct fw_device *d,
                                 int reason_code, const char *why)
{
    if (r != NULL) {
        struct fw_trace_field f[] = {num(reason_code), str(why)};
        rec(r, FW_TR_CONNECT_FAILED, f);
    }
    fw_device_on_connect_failed(d, reason_code, why);
}

void fw_traced_on_connection_lost(struct fw_trace_recorder *r, struct fw_device *d,
                                  const char *why)
{
    if (r != NULL) {
        struct fw_trace_field f[] = {str(why)};
        rec(r, FW_TR_CONNECTION_LOST, f);
    }
    fw_device_on_connection_lost(d, why);
}

void fw_traced_on_message(struct fw_trace_recorder *r, struct fw_device *d, const char *topic,
                          const void *payload, size_t len, int qos, bool dup)
{
    if (r != NULL) {
        /* Beyond FW_TRACE_PAYLOAD_MAX only the length is kept (docs/trace.md). */
        size_t kept = len < FW_TRACE_PAYLOAD_MAX ? len : FW_TRACE_PAYLOAD_MAX;
        struct fw_trace_field f[] = {str(topic), num(len > UINT32_MAX ? UINT32_MAX : len),
                                     bytes(payload ? payload : "", payload ? kept : 0),
                                     num(qos), num(dup)};
        rec(r, FW_TR_MESSAGE, f);
    }
    fw_device_on_message(d, topic, payload, len, qos, dup);
}

void fw_traced_on_subscribed(struct fw_trace_recorder *r, struct fw_device *d,
                             uint32_t token, int granted_qos)
{
    if (r != NULL) {
        struct fw_trace_field f[] = {num(token), num(granted_qos)};
        rec(r, FW_TR_SUBSCRIBED, f);
    }
    fw_device_on_subscribed(d, token, granted_qos);
}

void fw_traced_on_published(struct fw_trace_recorder *r, struct fw_device *d, uint32_t token)
{
    if (r != NULL) {
        struct fw_trace_field f[] = {num(token)};
        rec(r, FW_TR_PUBLISHED, f);
    }
    fw_device_on_published(d, token);
}

void fw_traced_on_publish_refused(struct fw_trace_recorder *r, struct fw_device *d,
                                  uint32_t token, int reason_code)
{
    if (r != NULL) {
        struct fw_trace_field f[] = {num(token), num(reason_code)};
        rec(r, FW_TR_PUBLISH_REFUSED, f);
    }
    fw_device_on_publish_refused(d, token, reason_code);
}

int fw_traced_on_tag(struct fw_trace_recorder *r, struct fw_device *d, const uint8_t *uid,
                     size_t len)
{
    if (r == NULL)
        return fw_device_on_tag(d, uid, len);
    struct fw_trace_field f[] = {bytes(uid ? (const void *)uid : "", uid ? len : 0)};
    rec(r, FW_TR_TAG, f);
    int rc = fw_device_on_tag(d, uid, len);
    fw_trace_recorder_result(r, rc);
    return rc;
}

void fw_traced_on_button(struct fw_trace_recorder *r, struct fw_device *d,
                         enum fw_button button)
{
    if (r != NULL) {
        struct fw_trace_field f[] = {num(button)};
        rec(r, FW_TR_BUTTON, f);
    }
    fw_device_on_button(d, button);
}
