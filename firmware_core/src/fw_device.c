/*
 * fw_device.c - the scanner's state machine (public API: fw/fw_device.h).
 *
 * Event-driven and single-threaded: every fw_device_*() call updates the state, marks the
 * screen dirty when something visible changed, and ends by presenting the frame at most
 * once. Nothing here blocks or allocates; time comes from the clock port (events) or the
 * tick argument, so tests run on a fake clock.
 *
 * Sections: helpers, configuration, connection and back-off, outbox flushing, inbound
 * messages, lifecycle, observation. What the device keeps in flash: fw_device_flash.c;
 * the operator's tags and buttons: fw_input.c.
 */
#include "fw/fw_device.h"

#include <stddef.h>
#include <string.h>

#include "fw/fw_codec.h"
#include "fw_device_internal.h"
#include "fw_outbox.h"
#include "fw_store.h"
#include "fw_util.h"

#define STATUS_ONLINE "online"
#define STATUS_OFFLINE "offline"

/* ================================================================ helpers */

static uint64_t device__now(const struct fw_device *d)
{
    return d->ports.clock_ms(d->ports.ctx);
}

/* One log line "<id>: a b c" (NULL parts skipped); the log port is optional. */
void fw_device__log(struct fw_device *d, enum fw_log_level level, const char *a,
                        const char *b, const char *c)
{
    if (d->ports.log == NULL && level < FW_LOG_WARN)
        return;
    char line[FW_LOG_MAX];
    struct fw_text t;
    fw_text__init(&t, line, sizeof line);
    fw_text__str(&t, d->device_id);
    fw_text__str(&t, ":");
    const char *parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        if (parts[i] != NULL) {
            fw_text__char(&t, ' ');
            fw_text__str(&t, parts[i]);
        }
    }
    if (level >= FW_LOG_WARN) {
        /* Without the "<id>: " prefix, for the status command. */
        struct fw_text e;
        fw_text__init(&e, d->last_error, sizeof d->last_error);
        fw_text__str(&e, line + strlen(d->device_id) + 2);
    }
    if (d->ports.log != NULL)
        d->ports.log(d->ports.ctx, level, line);
}

void fw_device__dirty(struct fw_device *d)
{
    d->dirty = true;
}

/* Render and flush once, if anything changed and someone looks. Headless devices (no
   display_flush) never render here: fw_device_framebuffer() renders on demand. */
void fw_device__present(struct fw_device *d)
{
    if (!d->dirty || d->ports.display_flush == NULL)
        return;
    fw_screens__render(d, d->fb);
    d->dirty = false;
    d->ports.display_flush(d->ports.ctx, d->fb);
}

void fw_device__notice(struct fw_device *d, enum fw_notice notice)
{
    d->notice = (uint8_t)notice;
    d->notice_until_ms = device__now(d) + FW_NOTICE_MS;
    fw_device__dirty(d);
}

static uint32_t device__random(struct fw_device *d)
{
    /* xorshift32: tiny, and enough to spread reconnects of a fleet. */
    uint32_t x = d->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d->rng = x;
    return x;
}

void fw_device__tag_hex(const struct fw_tag_uid *tag, char out[FW_TAG_HEX_MAX])
{
    if (fw_tag_to_hex(tag->bytes, tag->len, out, FW_TAG_HEX_MAX) < 0)
        out[0] = '\0';
}

static void device__reset_ram(struct fw_device *d);
static void device__publish_offline(struct fw_device *d);

/* ========================================================== configuration */

void fw_device_config_defaults(struct fw_device_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->layout = FW_LAYOUT_SEED;
    cfg->clean_session = false;
    cfg->keepalive_s = FW_KEEPALIVE_S;
    cfg->qos = 1;
}

/* Printable ASCII without the MQTT wildcards and the level separator: the id is also
   the client id and is spliced into topics and JSON. */
static bool device__id_valid(const char *id)
{
    if (id == NULL)
        return false;
    size_t n = strlen(id);
    if (n == 0 || n >= FW_DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (c < 0x20 || c > 0x7E || c == '+' || c == '#' || c == '/')
            return false;
    }
    return true;
}

/* Expands "{id}" in tmpl into out (FW_TOPIC_MAX). Topics are exact names: wildcards are
   refused so that an incoming topic can be matched with strcmp. */
static int device__expand_topic(char *out, const char *tmpl, const char *id)
{
    struct fw_text t;
    fw_text__init(&t, out, FW_TOPIC_MAX);
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{id}", 4) == 0) {
            fw_text__str(&t, id);
            p += 4;
        } else {
            fw_text__char(&t, *p++);
        }
    }
    if (t.overflow || t.len == 0 || strpbrk(out, "+#") != NULL)
        return FW_ERR_INVAL;
    return FW_OK;
}

static bool device__ports_valid(const struct fw_ports *p)
{
    return p != NULL && p->net_connect && p->net_publish && p->net_subscribe &&
           p->net_disconnect && p->clock_ms && p->storage_read && p->storage_write;
}

int fw_device_init(struct fw_device *d, const struct fw_device_config *cfg,
                   const struct fw_ports *ports)
{
    if (d == NULL || cfg == NULL || !device__ports_valid(ports) ||
        !device__id_valid(cfg->device_id) || cfg->qos < 0 || cfg->qos > 2 ||
        (cfg->layout != FW_LAYOUT_SEED && cfg->layout != FW_LAYOUT_PER_DEVICE))
        return FW_ERR_INVAL;

    memset(d, 0, sizeof *d);
    d->ports = *ports;
    memcpy(d->device_id, cfg->device_id, strlen(cfg->device_id) + 1);

    bool seed = cfg->layout == FW_LAYOUT_SEED;
    struct {
        char *out;
        const char *override;
        const char *fallback;
    } topics[] = {
        {d->topic_item, cfg->topic_item_registration,
         seed ? "item_registration" : "scanners/{id}/item_registration"},
        {d->topic_registered, cfg->topic_item_registered,
         seed ? "item_registered" : "scanners/{id}/item_registered"},
        {d->topic_query, cfg->topic_inventory_query,
         seed ? "inventory/query" : "scanners/{id}/inventory/query"},
        {d->topic_reply, cfg->topic_inventory_reply, "scanners/{id}/inventory/reply"},
        {d->topic_status, cfg->topic_status, "scanners/{id}/status"},
        {d->topic_cmd, cfg->topic_command, "scanners/{id}/command"},
        {d->topic_cmd_all, cfg->topic_command_all, "command/all"},
        {d->topic_cmd_reply, cfg->topic_command_reply, "scanners/{id}/command/reply"},
    };
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        const char *tmpl = topics[i].override ? topics[i].override : topics[i].fallback;
        if (device__expand_topic(topics[i].out, tmpl, d->device_id) != FW_OK)
            return FW_ERR_INVAL;
    }
    /* The inbound topics must differ, or a message could not be told apart. */
    for (int i = 0; i < FW_SUBSCRIPTIONS; i++)
        for (int j = i + 1; j < FW_SUBSCRIPTIONS; j++)
            if (strcmp(fw_device__sub_topic(d, i), fw_device__sub_topic(d, j)) == 0)
                return FW_ERR_INVAL;

    d->clean_session = cfg->clean_session;
    d->keepalive_default_s = cfg->keepalive_s;
    d->qos = (uint8_t)cfg->qos;
    d->resume_in_flight = cfg->resume_in_flight;
    d->rng_seed = cfg->seed ? cfg->seed : fw_fnv1a(d->device_id);
    if (d->rng_seed == 0)
        d->rng_seed = 0x9E3779B9u; /* xorshift must not start at 0 */
    device__reset_ram(d);
    return FW_OK;
}

/* The state of a device just powered on: what a reboot goes back to. */
static void device__reset_ram(struct fw_device *d)
{
    size_t from = offsetof(struct fw_device, conn);
    memset((uint8_t *)d + from, 0, sizeof *d - from);
    d->rng = d->rng_seed;
    d->backoff_ms = FW_RECONNECT_MIN_MS;
    d->conn = FW_CONN_IDLE;
    d->settings.keepalive_s = d->keepalive_default_s;
    d->settings.inventory_timeout_s = FW_INVENTORY_TIMEOUT_MS / 1000;
    d->settings.contrast = FW_CONTRAST;
    d->dirty = true;
}

/* ===================================================== connection, back-off */

static void device__connect(struct fw_device *d);
static void device__reason_words(char *out, size_t cap, int reason_code);

/* When the next try is due: after *base_ms +/- 25 %; the base then doubles up to the cap. */
static uint64_t device__backoff(struct fw_device *d, uint32_t *base_ms)
{
    uint32_t base = *base_ms;
    uint32_t quarter = base / 4;
    uint32_t delay = base - quarter + device__random(d) % (2 * quarter + 1);
    *base_ms = base >= FW_RECONNECT_MAX_MS / 2 ? FW_RECONNECT_MAX_MS : base * 2;
    return device__now(d) + delay;
}

static void device__schedule_reconnect(struct fw_device *d)
{
    d->next_connect_ms = device__backoff(d, &d->backoff_ms);
    d->conn = FW_CONN_WAITING;
    fw_device__dirty(d);
}

static void device__connect_failed(struct fw_device *d, int reason, const char *why)
{
    char code[12];
    struct fw_text t;
    fw_text__init(&t, code, sizeof code);
    fw_text__i32(&t, reason);
    d->stats.connect_failures++;
    fw_device__log(d, FW_LOG_WARN, "connect failed, code", code, why ? why : "");
    device__schedule_reconnect(d);
}

static void device__connect(struct fw_device *d)
{
    struct fw_connect_params p = {
        .client_id = d->device_id,
        .clean_session = d->clean_session,
        .keepalive_s = d->settings.keepalive_s,
        .will_topic = d->topic_status,
        .will_payload = STATUS_OFFLINE,
        .will_len = sizeof STATUS_OFFLINE - 1,
        .will_qos = d->qos,
        .will_retain = true,
    };
    /* Set before the call: a platform may report the outcome from inside it. */
    d->conn = FW_CONN_CONNECTING;
    fw_device__dirty(d);
    int rc = d->ports.net_connect(d->ports.ctx, &p);
    if (rc < 0 && d->conn == FW_CONN_CONNECTING)
        device__connect_failed(d, rc, fw_strerror(rc));
}

/* =========================================================== outbox flush */

/* Hands every unsent outbox entry to the network, oldest first. Stops at the first
   refusal so order is kept; the rest goes on the next connection. */
void fw_device__flush_outbox(struct fw_device *d)
{
    bool removed = false;
    for (int i = 0; i < d->outbox.count && d->conn == FW_CONN_ONLINE;) {
        struct fw_outbox_entry *e = &d->outbox.entries[i];
        if (e->flags & FW_OUTBOX_IN_FLIGHT) {
            i++;
            continue;
        }
        char hex[FW_TAG_HEX_MAX];
        char payload[FW_PAYLOAD_MAX];
        fw_device__tag_hex(&e->tag, hex);
        struct fw_registration reg = {e->item_id, e->tag_quantity, hex, d->device_id, e->seq};
        int n = fw_encode_registration(payload, sizeof payload, &reg);
        uint32_t token = 0;
        int rc = n;
        if (n >= 0) {
            struct fw_publish msg = {d->topic_registered, payload, (size_t)n, d->qos, false};
            rc = d->ports.net_publish(d->ports.ctx, &msg, &token);
        }
        if (rc < 0) {
            d->stats.publish_errors++;
            fw_device__log(d, FW_LOG_WARN, "publishing a registration failed:", fw_strerror(rc),
                        "(kept in the outbox)");
            break;
        }
        d->stats.registrations_sent++;
        if (e->flags & FW_OUTBOX_SENT_BEFORE)
            d->stats.registrations_resent++;
        if (d->qos == 0) {
            /* No acknowledgement will come: handing over is all QoS 0 offers. */
            d->stats.registrations_acked++;
            fw_outbox__remove(&d->outbox, i);
            removed = true;
            continue;
        }
        e->flags |= FW_OUTBOX_IN_FLIGHT | FW_OUTBOX_SENT_BEFORE;
        e->token = token;
        i++;
    }
    if (removed)
        fw_device__save_outbox(d);
    fw_device__dirty(d);
}

/* ====================================================== network events */

/* ======================================================= subscriptions */

const char *fw_device__sub_topic(const struct fw_device *d, int i)
{
    switch (i) {
    case 0: return d->topic_item;
    case 1: return d->topic_reply;
    case 2: return d->topic_cmd;
    default: return d->topic_cmd_all;
    }
}

/* A subscription was refused or lost: counted, logged, shown, asked again later. */
static void device__subscribe_failed(struct fw_device *d, int i, int code)
{
    char words[48];
    struct fw_text t;
    fw_text__init(&t, words, sizeof words);
    fw_text__str(&t, "refused: ");
    if (code >= 0x80 && code <= 0xFF)
        device__reason_words(words + t.len, sizeof words - t.len, code);
    else
        fw_text__str(&t, fw_strerror(code < 0 ? code : FW_ERR_IO));
    d->stats.subscriptions_refused++;
    fw_device__log(d, FW_LOG_ERROR, "subscription to", fw_device__sub_topic(d, i), words);
    if (d->sub_retry_ms == 0)
        d->sub_retry_ms = device__backoff(d, &d->sub_backoff_ms);
    d->refused_reason = code;
    fw_device__notice(d, FW_NOTICE_SUB_REFUSED);
}

/* Every missing filter in one SUBSCRIBE, where the platform can; true when it was asked. */
static bool device__subscribe_together(struct fw_device *d)
{
    const char *filters[FW_SUBSCRIPTIONS];
    int idx[FW_SUBSCRIPTIONS], n = 0;
    if (d->ports.net_subscribe_many == NULL)
        return false;
    for (int i = 0; i < FW_SUBSCRIPTIONS; i++)
        if (!((d->subs_granted | d->subs_awaited) & (1u << i))) {
            idx[n] = i;
            filters[n++] = fw_device__sub_topic(d, i);
        }
    if (n < 2)
        return false;
    uint32_t token = 0;
    int rc = d->ports.net_subscribe_many(d->ports.ctx, filters, n, d->qos, &token);
    for (int k = 0; k < n && d->conn == FW_CONN_SUBSCRIBING; k++) {
        if (rc < 0) {
            device__subscribe_failed(d, idx[k], rc);
            continue;
        }
        d->sub_token[idx[k]] = token; /* the SUBACK's codes come back in this order */
        d->subs_awaited |= (uint8_t)(1u << idx[k]);
    }
    return true;
}

/* Asks for every subscription neither granted nor awaited. */
static void device__subscribe_missing(struct fw_device *d)
{
    if (device__subscribe_together(d))
        return;
    for (int i = 0; i < FW_SUBSCRIPTIONS && d->conn == FW_CONN_SUBSCRIBING; i++) {
        uint8_t bit = (uint8_t)(1u << i);
        if ((d->subs_granted | d->subs_awaited) & bit)
            continue;
        uint32_t token = 0;
        int rc = d->ports.net_subscribe(d->ports.ctx, fw_device__sub_topic(d, i), d->qos, &token);
        if (rc < 0) {
            device__subscribe_failed(d, i, rc);
            continue;
        }
        d->sub_token[i] = token;
        d->subs_awaited |= bit;
    }
}

/* Every subscription granted: only now can items reach the device, so only now does it
   say "online" (the backend and the fleet start from that), and send its outbox. */
static void device__ready(struct fw_device *d)
{
    d->conn = FW_CONN_ONLINE;
    d->sub_backoff_ms = FW_RECONNECT_MIN_MS;
    d->sub_retry_ms = 0;
    fw_device__log(d, FW_LOG_INFO, "subscriptions granted, online", NULL, NULL);
    fw_device__dirty(d);
    uint32_t token = 0;
    struct fw_publish online = {d->topic_status, STATUS_ONLINE, sizeof STATUS_ONLINE - 1,
                                d->qos, true};
    if (d->ports.net_publish(d->ports.ctx, &online, &token) < 0)
        d->stats.publish_errors++;
    fw_device__flush_outbox(d);
}

void fw_device_on_subscribed(struct fw_device *d, uint32_t token, int granted_qos)
{
    if (d == NULL || d->conn != FW_CONN_SUBSCRIBING)
        return; /* stale: from an earlier connection */
    int i = 0;
    while (i < FW_SUBSCRIPTIONS && !((d->subs_awaited >> i) & 1u && d->sub_token[i] == token))
        i++;
    if (i == FW_SUBSCRIPTIONS)
        return;
    d->subs_awaited &= (uint8_t)~(1u << i);
    if (granted_qos >= 0 && granted_qos <= 2) {
        d->subs_granted |= (uint8_t)(1u << i);
        if (granted_qos < d->qos)
            fw_device__log(d, FW_LOG_WARN, "subscription granted at a lower QoS:",
                        fw_device__sub_topic(d, i), NULL);
        if (d->subs_granted == (1u << FW_SUBSCRIPTIONS) - 1)
            device__ready(d);
    } else {
        device__subscribe_failed(d, i, granted_qos);
    }
    fw_device__present(d);
}

/* ====================================================== network events */

/* Will the MQTT client itself complete the unacknowledged registrations after a
   reconnect that resumes the session? (fw_device_config.resume_in_flight) */
static bool device__client_resumes(const struct fw_device *d)
{
    return d->resume_in_flight && d->qos == 2 && !d->clean_session;
}

void fw_device_on_connected(struct fw_device *d, bool session_present)
{
    if (d == NULL || (d->conn != FW_CONN_CONNECTING && d->conn != FW_CONN_WAITING))
        return; /* stale (stopped, or already online) */
    d->conn = FW_CONN_SUBSCRIBING;
    d->session_present = session_present;
    d->backoff_ms = FW_RECONNECT_MIN_MS;
    d->sub_backoff_ms = FW_RECONNECT_MIN_MS;
    d->sub_retry_ms = 0;
    d->subs_granted = 0;
    d->subs_awaited = 0;
    d->stats.connects++;
    if (session_present)
        d->stats.sessions_present++;
    else if (device__client_resumes(d))
        /* The broker has no session: the client's resends would be new messages to it
           (and a PUBREL alone none at all), so send the registrations again. */
        fw_outbox__requeue(&d->outbox);
    fw_device__log(d, FW_LOG_INFO, "connected", session_present ? "(session resumed)" : NULL,
                NULL);
    /* Subscribe even with a resumed session: cheap, and right if the broker lost it. */
    device__subscribe_missing(d);
    fw_device__dirty(d);
    fw_device__present(d);
}

void fw_device_on_connect_failed(struct fw_device *d, int reason_code, const char *why)
{
    if (d == NULL || d->conn != FW_CONN_CONNECTING)
        return;
    device__connect_failed(d, reason_code, why);
    fw_device__present(d);
}

void fw_device_on_connection_lost(struct fw_device *d, const char *why)
{
    if (d == NULL)
        return;
    if (d->conn == FW_CONN_CONNECTING) {
        fw_device_on_connect_failed(d, FW_ERR_IO, why);
        return;
    }
    if (d->conn != FW_CONN_ONLINE && d->conn != FW_CONN_SUBSCRIBING)
        return;
    d->stats.connection_losses++;
    d->session_present = false;
    bool resumes = device__client_resumes(d);
    unsigned back = resumes ? fw_outbox__in_flight(&d->outbox) : fw_outbox__requeue(&d->outbox);
    fw_device__log(d, FW_LOG_WARN, "connection lost:", why ? why : "", NULL);
    if (back > 0)
        fw_device__log(d, FW_LOG_INFO, "unacknowledged registrations will be",
                       resumes ? "completed by the client if the session resumes" : "re-sent",
                       NULL);
    device__schedule_reconnect(d);
    fw_device__present(d);
}

void fw_device_on_published(struct fw_device *d, uint32_t token)
{
    if (d == NULL)
        return;
    if (d->reboot == FW_REBOOT_REPLYING)
        fw_command__on_published(d, token);
    int i = fw_outbox__find_token(&d->outbox, token);
    if (i < 0)
        return; /* status, query, or an ack from a previous connection */
    fw_outbox__remove(&d->outbox, i);
    d->stats.registrations_acked++;
    fw_device__save_outbox(d);
    fw_device__dirty(d);
    fw_device__present(d);
}

/* "not authorized (0x87)" into out. */
static void device__reason_words(char *out, size_t cap, int reason_code)
{
    static const char hex[] = "0123456789ABCDEF";
    struct fw_text t;
    fw_text__init(&t, out, cap);
    fw_text__str(&t, fw_reason_code_name(reason_code));
    fw_text__str(&t, " (0x");
    fw_text__char(&t, hex[(reason_code >> 4) & 0xF]);
    fw_text__char(&t, hex[reason_code & 0xF]);
    fw_text__char(&t, ')');
}

void fw_device_on_publish_refused(struct fw_device *d, uint32_t token, int reason_code)
{
    if (d == NULL)
        return;
    int i = fw_outbox__find_token(&d->outbox, token);
    bool query = i < 0 && d->qos > 0 && d->inv_state == FW_INV_WAITING &&
                 token == d->inv_token;
    if (reason_code < 0x80 || reason_code > 0xFF) {
        /* Lost on the way, not refused: a later send may well succeed. */
        if (i < 0)
            return;
        d->outbox.entries[i].flags &= (uint8_t)~FW_OUTBOX_IN_FLIGHT;
        d->stats.publish_errors++;
        fw_device__log(d, FW_LOG_WARN, "publishing a registration failed:",
                    fw_strerror(reason_code < 0 ? reason_code : FW_ERR_IO),
                    "(kept in the outbox)");
        fw_device__dirty(d);
        fw_device__present(d);
        return;
    }
    char words[48];
    device__reason_words(words, sizeof words, reason_code);
    d->stats.publishes_refused++;
    if (i >= 0) {
        /* The broker will refuse it again however often it is sent, and the entries
           behind it must not wait for it: drop it, loudly. */
        char what[64];
        struct fw_text t;
        fw_text__init(&t, what, sizeof what);
        fw_text__str(&t, "registration of item ");
        fw_text__i32(&t, d->outbox.entries[i].item_id);
        fw_text__str(&t, " refused by the broker:");
        fw_outbox__remove(&d->outbox, i);
        fw_device__save_outbox(d);
        fw_device__log(d, FW_LOG_ERROR, what, words, "- dropped from the outbox");
    } else if (query) {
        d->inv_state = FW_INV_NONE;
        fw_device__log(d, FW_LOG_ERROR, "inventory query refused by the broker:", words, NULL);
    } else {
        /* The status announcement, or a publish of an earlier connection. */
        fw_device__log(d, FW_LOG_WARN, "publish refused by the broker:", words, NULL);
        fw_device__present(d);
        return;
    }
    d->refused_reason = reason_code;
    fw_device__notice(d, FW_NOTICE_REFUSED);
    fw_device__present(d);
}

/* ==================================================== inbound messages */

static void device__reject(struct fw_device *d, int rc, const char *topic)
{
    enum fw_reject reason = rc > 0 ? fw_decode_reason(rc) : FW_REJECT_INVALID_JSON;
    if ((unsigned)reason >= FW_REJECT_COUNT)
        reason = FW_REJECT_INVALID_JSON;
    d->stats.rejects_total++;
    d->stats.rejects[reason]++;
    fw_device__log(d, FW_LOG_WARN, "rejected payload on", topic ? topic : "(no topic)",
                fw_reject_name(reason));
}

static bool device__seen(const struct fw_device *d, int32_t item_id)
{
    for (unsigned i = 0; i < d->seen_count; i++)
        if (d->seen[i] == item_id)
            return true;
    for (unsigned i = 0; i < d->pending_count; i++)
        if (d->pending[(d->pending_head + i) % FW_PENDING_ITEMS].item_id == item_id)
            return true;
    return fw_outbox__has_item(&d->outbox, item_id);
}

static void device__remember_item(struct fw_device *d, int32_t item_id)
{
    d->seen[d->seen_next] = item_id;
    d->seen_next = (uint16_t)((d->seen_next + 1) % FW_SEEN_ITEMS);
    if (d->seen_count < FW_SEEN_ITEMS)
        d->seen_count++;
}

static void device__on_item(struct fw_device *d, const char *topic, const void *payload,
                            size_t len)
{
    struct fw_item item;
    int rc = fw_decode_item(payload, len, &item);
    if (rc != FW_DECODE_OK) {
        device__reject(d, rc, topic);
        return;
    }
    d->stats.items_received++;
    /* Keyed on the item id, never on the DUP flag: a redelivery may come without it. */
    if (device__seen(d, item.item_id)) {
        d->stats.duplicates_suppressed++;
        fw_device__log(d, FW_LOG_DEBUG, "duplicate item dropped", NULL, NULL);
        return;
    }
    if (d->pending_count >= FW_PENDING_ITEMS) {
        /* Not remembered as seen: a later redelivery may still find room. */
        d->stats.queue_full++;
        fw_device__log(d, FW_LOG_WARN, "item queue full, item refused:", item.item_name, NULL);
        fw_device__notice(d, FW_NOTICE_QUEUE_FULL);
        return;
    }
    struct fw_pending_item *slot =
        &d->pending[(d->pending_head + d->pending_count) % FW_PENDING_ITEMS];
    slot->item_id = item.item_id;
    slot->tag_quantity = item.tag_quantity;
    memcpy(slot->name, item.item_name, sizeof slot->name);
    d->pending_count++;
    device__remember_item(d, item.item_id);
    fw_device__save_pending(d);
    d->stats.items_queued++;
    fw_device__dirty(d);
}

static void device__on_reply(struct fw_device *d, const char *topic, const void *payload,
                             size_t len)
{
    struct fw_inventory_reply reply;
    int rc = fw_decode_inventory_reply(payload, len, &reply);
    if (rc != FW_DECODE_OK) {
        device__reject(d, rc, topic);
        return;
    }
    char hex[FW_TAG_HEX_MAX];
    fw_device__tag_hex(&d->inv_tag, hex);
    if (d->mode != FW_MODE_INVENTORY || d->inv_state != FW_INV_WAITING ||
        strcmp(reply.tag, hex) != 0) {
        fw_device__log(d, FW_LOG_DEBUG, "inventory answer not awaited, ignored:", reply.tag,
                    NULL);
        return;
    }
    d->inv_state = FW_INV_ANSWERED;
    d->inv_found = reply.found;
    d->inv_item_id = reply.found ? reply.item_id : 0;
    memcpy(d->inv_item_name, reply.item_name, sizeof d->inv_item_name);
    d->stats.inventory_answers++;
    fw_device__dirty(d);
}

void fw_device_on_message(struct fw_device *d, const char *topic, const void *payload,
                          size_t len, int qos, bool dup)
{
    (void)qos;
    (void)dup; /* deliberately unused: duplicates are recognised by content */
    if (d == NULL)
        return;
    if (payload == NULL && len > 0)
        len = 0; /* a broken platform call: treat as an empty payload */
    if (topic != NULL && strcmp(topic, d->topic_item) == 0)
        device__on_item(d, topic, payload, len);
    else if (topic != NULL && strcmp(topic, d->topic_reply) == 0)
        device__on_reply(d, topic, payload, len);
    else if (topic != NULL &&
             (strcmp(topic, d->topic_cmd) == 0 || strcmp(topic, d->topic_cmd_all) == 0))
        fw_command__on_message(d, payload, len);
    else
        device__reject(d, FW_DECODE_REJECTED(FW_REJECT_UNKNOWN_TOPIC), topic);
    fw_device__present(d);
}

/* ================================================================ screens */

enum fw_screen fw_device__screen(const struct fw_device *d)
{
    /* The lock and a message from the backend come over everything else. */
    if (d->settings.locked)
        return FW_SCREEN_LOCKED;
    if (d->message[0] != '\0')
        return FW_SCREEN_MESSAGE;
    switch ((enum fw_notice)d->notice) {
    case FW_NOTICE_NONE: break;
    case FW_NOTICE_REGISTERED_SENT:
    case FW_NOTICE_REGISTERED_QUEUED: return FW_SCREEN_REGISTERED;
    case FW_NOTICE_CANCELLED: return FW_SCREEN_CANCELLED;
    default: return FW_SCREEN_ERROR;
    }
    if (d->mode == FW_MODE_INVENTORY) {
        if (d->inv_state == FW_INV_WAITING)
            return FW_SCREEN_INVENTORY_WAIT;
        if (d->inv_state == FW_INV_NONE)
            return FW_SCREEN_INVENTORY_SCAN;
        return FW_SCREEN_INVENTORY_RESULT;
    }
    if (d->pending_count == 0)
        return FW_SCREEN_IDLE;
    return d->has_scanned ? FW_SCREEN_CONFIRM : FW_SCREEN_ITEM;
}

/* ============================================================ lifecycle */

void fw_device_start(struct fw_device *d)
{
    if (d == NULL || (d->conn != FW_CONN_IDLE && d->conn != FW_CONN_STOPPED) ||
        d->reboot != FW_REBOOT_NONE)
        return;
    /* Everything that survives a power cut comes back from flash. */
    fw_device__load(d);
    d->settings.boot_count++;
    d->stats.boots++;
    fw_device__save_settings(d);
    d->rng ^= d->settings.boot_count * 0x9E3779B9u; /* a rebooted fleet spreads out anew */
    if (d->rng == 0)
        d->rng = d->rng_seed;
    d->boot_ms = device__now(d);
    if (d->ports.display_contrast != NULL)
        d->ports.display_contrast(d->ports.ctx, d->settings.contrast);
    d->backoff_ms = FW_RECONNECT_MIN_MS;
    fw_device__dirty(d);
    device__connect(d);
    fw_device__present(d);
}

void fw_device__power_off(struct fw_device *d)
{
    if (d->conn != FW_CONN_IDLE && d->conn != FW_CONN_STOPPED) {
        if (d->conn == FW_CONN_ONLINE || d->conn == FW_CONN_SUBSCRIBING)
            device__publish_offline(d);
        d->ports.net_disconnect(d->ports.ctx);
    }
    device__reset_ram(d);
}

void fw_device_tick(struct fw_device *d, uint64_t now_ms)
{
    if (d == NULL)
        return;
    /* Three comparisons when nothing is due: cheap for a fleet of thousands. */
    if (d->conn == FW_CONN_WAITING && now_ms >= d->next_connect_ms)
        device__connect(d);
    if (d->conn == FW_CONN_SUBSCRIBING && d->sub_retry_ms != 0 && now_ms >= d->sub_retry_ms) {
        d->sub_retry_ms = 0;
        device__subscribe_missing(d);
    }
    if (d->inv_state == FW_INV_WAITING && now_ms >= d->inv_deadline_ms) {
        d->inv_state = FW_INV_TIMED_OUT;
        d->stats.inventory_timeouts++;
        fw_device__log(d, FW_LOG_INFO, "inventory look-up timed out", NULL, NULL);
        fw_device__dirty(d);
    }
    if (d->notice != FW_NOTICE_NONE && now_ms >= d->notice_until_ms) {
        d->notice = FW_NOTICE_NONE;
        fw_device__dirty(d);
    }
    if (d->reboot != FW_REBOOT_NONE || d->identify_until_ms != 0)
        fw_command__tick(d, now_ms);
    fw_device__present(d);
}

static void device__publish_offline(struct fw_device *d)
{
    uint32_t token = 0;
    struct fw_publish off = {d->topic_status, STATUS_OFFLINE, sizeof STATUS_OFFLINE - 1,
                             d->qos, true};
    if (d->ports.net_publish(d->ports.ctx, &off, &token) < 0)
        d->stats.publish_errors++;
}

void fw_device_stop(struct fw_device *d)
{
    if (d == NULL)
        return;
    if (d->reboot == FW_REBOOT_DOWN) {
        d->reboot = FW_REBOOT_NONE; /* powered off in the middle of a reboot: stays off */
        d->conn = FW_CONN_STOPPED;
        return;
    }
    d->reboot = FW_REBOOT_NONE;
    if (d->conn == FW_CONN_IDLE || d->conn == FW_CONN_STOPPED)
        return;
    if (d->conn == FW_CONN_ONLINE || d->conn == FW_CONN_SUBSCRIBING)
        device__publish_offline(d);
    d->ports.net_disconnect(d->ports.ctx);
    d->conn = FW_CONN_STOPPED;
    d->session_present = false;
    fw_outbox__requeue(&d->outbox);
    fw_device__dirty(d);
    fw_device__present(d);
}

/* ========================================================== observation */

const struct fw_stats *fw_device_stats(const struct fw_device *d)
{
    return &d->stats;
}

void fw_device_status(const struct fw_device *d, struct fw_status *out)
{
    if (d == NULL || out == NULL)
        return;
    memset(out, 0, sizeof *out);
    out->online = d->conn == FW_CONN_ONLINE;
    out->session_present = d->session_present;
    out->screen = fw_device__screen(d);
    out->pending = d->pending_count;
    out->outbox = d->outbox.count;
    out->outbox_in_flight = fw_outbox__in_flight(&d->outbox);
    if (d->pending_count > 0) {
        out->head_item_id = d->pending[d->pending_head].item_id;
        out->head_item_name = d->pending[d->pending_head].name;
    } else {
        out->head_item_name = "";
    }
    out->next_connect_ms = d->conn == FW_CONN_WAITING ? d->next_connect_ms : 0;
    out->seq = d->seq;
    out->connected = d->conn == FW_CONN_ONLINE || d->conn == FW_CONN_SUBSCRIBING;
    out->locked = d->settings.locked;
    out->rebooting = d->reboot != FW_REBOOT_NONE;
    out->boot_count = d->settings.boot_count;
}

/* Headless devices render here, on demand, only when the state changed since the last
   frame. The frame is a cache of the state, so refreshing it through a const pointer
   does not change what the device is (the device object itself is never const). */
const uint8_t *fw_device_framebuffer(const struct fw_device *d)
{
    struct fw_device *m = (struct fw_device *)(uintptr_t)d;
    if (m->dirty) {
        fw_screens__render(m, m->fb);
        /* With a display attached, the next present still owes it this frame. */
        if (m->ports.display_flush == NULL)
            m->dirty = false;
    }
    return d->fb;
}

const char *fw_device_id(const struct fw_device *d) { return d->device_id; }
const char *fw_device_topic_item_registration(const struct fw_device *d) { return d->topic_item; }
const char *fw_device_topic_item_registered(const struct fw_device *d) { return d->topic_registered; }
const char *fw_device_topic_inventory_query(const struct fw_device *d) { return d->topic_query; }
const char *fw_device_topic_inventory_reply(const struct fw_device *d) { return d->topic_reply; }
const char *fw_device_topic_status(const struct fw_device *d) { return d->topic_status; }
const char *fw_device_topic_command(const struct fw_device *d) { return d->topic_cmd; }
const char *fw_device_topic_command_all(const struct fw_device *d) { return d->topic_cmd_all; }
const char *fw_device_topic_command_reply(const struct fw_device *d) { return d->topic_cmd_reply; }
