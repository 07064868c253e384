/*
 * fw_test_platform.c - the recording test doubles of fw_test_platform.h.
 */
#include "fw_test_platform.h"

#include <stdio.h>
#include <string.h>

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int t_connect(void *ctx, const struct fw_connect_params *params)
{
    struct fwt_platform *p = ctx;
    p->connect_calls++;
    p->net_calls++;
    copy_str(p->client_id, sizeof p->client_id, params->client_id);
    p->clean_session = params->clean_session;
    p->keepalive_s = params->keepalive_s;
    copy_str(p->will_topic, sizeof p->will_topic, params->will_topic);
    size_t n = params->will_len < sizeof p->will_payload - 1 ? params->will_len
                                                              : sizeof p->will_payload - 1;
    memcpy(p->will_payload, params->will_payload, n);
    p->will_payload[n] = '\0';
    p->will_qos = params->will_qos;
    p->will_retain = params->will_retain;
    return p->connect_rc;
}

static int t_publish(void *ctx, const struct fw_publish *msg, uint32_t *token)
{
    struct fwt_platform *p = ctx;
    p->net_calls++;
    if (p->publish_rc != 0)
        return p->publish_rc;
    if (p->npubs >= FWT_MAX_PUBS)
        return FW_ERR_IO;
    struct fwt_pub *r = &p->pubs[p->npubs++];
    copy_str(r->topic, sizeof r->topic, msg->topic);
    r->len = msg->len;
    size_t keep = msg->len < FWT_PAYLOAD_CAP ? msg->len : FWT_PAYLOAD_CAP;
    memcpy(r->payload, msg->payload, keep);
    r->payload[keep] = '\0';
    r->qos = msg->qos;
    r->retain = msg->retain;
    r->token = ++p->next_token;
    r->order = p->net_calls;
    *token = r->token;
    return 0;
}

static int t_subscribe(void *ctx, const char *filter, int qos, uint32_t *token)
{
    struct fwt_platform *p = ctx;
    p->net_calls++;
    if (p->subscribe_rc != 0)
        return p->subscribe_rc;
    *token = ++p->next_token;
    if (p->nsubs < FWT_MAX_SUBS) {
        copy_str(p->subs[p->nsubs], FW_TOPIC_MAX, filter);
        p->sub_token[p->nsubs] = *token;
        p->sub_acked[p->nsubs] = false;
        p->sub_qos[p->nsubs++] = qos;
    }
    return 0;
}

static void t_disconnect(void *ctx)
{
    struct fwt_platform *p = ctx;
    p->disconnect_calls++;
    p->disconnect_order = ++p->net_calls;
}

static void t_flush(void *ctx, const uint8_t *fb)
{
    struct fwt_platform *p = ctx;
    memcpy(p->frame, fb, FW_FB_BYTES);
    p->flushes++;
}

static uint64_t t_clock(void *ctx)
{
    return ((struct fwt_platform *)ctx)->now;
}

static int find_key(const struct fwt_platform *p, const char *key)
{
    for (int i = 0; i < FWT_MAX_KEYS; i++)
        if (p->kv[i].used && strcmp(p->kv[i].key, key) == 0)
            return i;
    return -1;
}

static int t_read(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    struct fwt_platform *p = ctx;
    int i = find_key(p, key);
    if (i < 0)
        return FW_ERR_NOT_FOUND;
    if (p->kv[i].len > cap)
        return FW_ERR_TOO_BIG;
    memcpy(buf, p->kv[i].value, p->kv[i].len);
    *len = p->kv[i].len;
    return 0;
}

static int t_write(void *ctx, const char *key, const void *buf, size_t len)
{
    struct fwt_platform *p = ctx;
    if (p->storage_write_rc != 0)
        return p->storage_write_rc;
    p->storage_writes++;
    fwt_storage_put(p, key, buf, len);
    return 0;
}

/* Records each filter as t_subscribe does, all under one token. */
static int t_subscribe_many(void *ctx, const char *const *filters, int n, int qos,
                            uint32_t *token)
{
    struct fwt_platform *p = ctx;
    p->net_calls++;
    p->subscribe_many_calls++;
    if (p->subscribe_rc != 0)
        return p->subscribe_rc;
    *token = ++p->next_token;
    for (int i = 0; i < n && p->nsubs < FWT_MAX_SUBS; i++) {
        copy_str(p->subs[p->nsubs], FW_TOPIC_MAX, filters[i]);
        p->sub_token[p->nsubs] = *token;
        p->sub_acked[p->nsubs] = false;
        p->sub_qos[p->nsubs++] = qos;
    }
    return 0;
}

void fwt_use_subscribe_many(struct fwt_platform *p)
{
    p->ports.net_subscribe_many = t_subscribe_many;
}

static void t_contrast(void *ctx, uint8_t level)
{
    struct fwt_platform *p = ctx;
    p->contrast = level;
}

static void t_log(void *ctx, enum fw_log_level level, const char *line)
{
    struct fwt_platform *p = ctx;
    (void)level;
    copy_str(p->logs[p->nlogs % FWT_MAX_LOGS], FW_LOG_MAX, line);
    p->nlogs++;
}

void fwt_init(struct fwt_platform *p, bool with_display)
{
    memset(p, 0, sizeof *p);
    p->now = 1000000; /* any origin: the clock is monotonic, not zero-based */
    p->ports.ctx = p;
    p->ports.net_connect = t_connect;
    p->ports.net_publish = t_publish;
    p->ports.net_subscribe = t_subscribe;
    p->ports.net_disconnect = t_disconnect;
    p->ports.display_flush = with_display ? t_flush : NULL;
    p->ports.clock_ms = t_clock;
    p->ports.storage_read = t_read;
    p->ports.storage_write = t_write;
    p->ports.log = t_log;
    p->ports.display_contrast = with_display ? t_contrast : NULL;
    p->contrast = -1;
}

/* granted < 0 with as_asked: each at the QoS it asked for. */
static int suback_all(struct fwt_platform *p, struct fw_device *d, int granted, bool as_asked)
{
    int n = 0;
    for (int i = 0; i < p->nsubs; i++) {
        if (p->sub_acked[i])
            continue;
        p->sub_acked[i] = true;
        fw_device_on_subscribed(d, p->sub_token[i], as_asked ? p->sub_qos[i] : granted);
        n++;
    }
    return n;
}

int fwt_suback_all(struct fwt_platform *p, struct fw_device *d, int granted_qos)
{
    return suback_all(p, d, granted_qos, false);
}

void fwt_online(struct fwt_platform *p, struct fw_device *d, bool session_present)
{
    fw_device_on_connected(d, session_present);
    suback_all(p, d, 0, true);
}

void fwt_clear_calls(struct fwt_platform *p)
{
    p->npubs = 0;
    p->nsubs = 0;
    p->nlogs = 0;
}

int fwt_count_pubs(const struct fwt_platform *p, const char *topic)
{
    int n = 0;
    for (int i = 0; i < p->npubs; i++)
        n += strcmp(p->pubs[i].topic, topic) == 0;
    return n;
}

const struct fwt_pub *fwt_nth_pub(const struct fwt_platform *p, const char *topic, int n)
{
    for (int i = 0; i < p->npubs; i++)
        if (strcmp(p->pubs[i].topic, topic) == 0 && n-- == 0)
            return &p->pubs[i];
    return NULL;
}

const struct fwt_pub *fwt_last_pub(const struct fwt_platform *p, const char *topic)
{
    for (int i = p->npubs - 1; i >= 0; i--)
        if (strcmp(p->pubs[i].topic, topic) == 0)
            return &p->pubs[i];
    return NULL;
}

bool fwt_log_contains(const struct fwt_platform *p, const char *needle)
{
    int n = p->nlogs < FWT_MAX_LOGS ? p->nlogs : FWT_MAX_LOGS;
    for (int i = 0; i < n; i++)
        if (strstr(p->logs[i], needle) != NULL)
            return true;
    return false;
}

void fwt_storage_put(struct fwt_platform *p, const char *key, const void *buf, size_t len)
{
    int i = find_key(p, key);
    for (int k = 0; i < 0 && k < FWT_MAX_KEYS; k++)
        if (!p->kv[k].used)
            i = k;
    if (i < 0 || len > FWT_VALUE_MAX)
        return;
    p->kv[i].used = true;
    copy_str(p->kv[i].key, sizeof p->kv[i].key, key);
    memcpy(p->kv[i].value, buf, len);
    p->kv[i].len = len;
}

uint8_t *fwt_storage_get(struct fwt_platform *p, const char *key, size_t *len)
{
    int i = find_key(p, key);
    if (i < 0)
        return NULL;
    *len = p->kv[i].len;
    return p->kv[i].value;
}

void fwt_ascii(const uint8_t *fb, int x, int y, int w, int h, char *out)
{
    for (int row = 0; row < h; row++) {
        for (int col = 0; col < w; col++)
            *out++ = fw_fb_pixel(fb, x + col, y + row) ? '#' : '.';
        *out++ = '\n';
    }
    *out = '\0';
}

const char *fwt_item_json(char *buf, size_t cap, int item_id, const char *name, int qty)
{
    snprintf(buf, cap, "{\"item_id\":%d,\"item_name\":\"%s\",\"tag_quantity\":%d}", item_id,
             name, qty);
    return buf;
}
