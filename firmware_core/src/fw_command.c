/*
 * fw_command.c - remote commands: decode, remember by cmd_id, execute, reply
 * (docs/protocol.md, "Commands"; internal API in fw_device_internal.h).
 *
 * A command is answered exactly once per cmd_id: the ring of recent ids and outcomes is
 * written to flash before the reply goes out, so a redelivery (also after a reboot) is
 * answered again from memory and never executed twice.
 */
#include <string.h>

#include "fw/fw_codec.h"
#include "fw_device_internal.h"
#include "fw_store.h"
#include "fw_util.h"

/* The data object of a reply, built in a fixed buffer. */
struct cmd_data {
    struct fw_text t;
    char buf[FW_REPLY_MAX - 192]; /* the envelope takes the rest */
    bool first;
};

static void data__init(struct cmd_data *w)
{
    fw_text__init(&w->t, w->buf, sizeof w->buf);
    fw_text__char(&w->t, '{');
    w->first = true;
}

static void data__key(struct cmd_data *w, const char *key)
{
    if (!w->first)
        fw_text__char(&w->t, ',');
    w->first = false;
    fw_text__json_str(&w->t, key);
    fw_text__char(&w->t, ':');
}

static void data__u32(struct cmd_data *w, const char *key, uint32_t v)
{
    data__key(w, key);
    fw_text__u32(&w->t, v);
}

static void data__bool(struct cmd_data *w, const char *key, bool v)
{
    data__key(w, key);
    fw_text__str(&w->t, v ? "true" : "false");
}

static void data__str(struct cmd_data *w, const char *key, const char *v)
{
    data__key(w, key);
    fw_text__json_str(&w->t, v);
}

static const char *data__end(struct cmd_data *w)
{
    fw_text__char(&w->t, '}');
    return w->t.overflow ? NULL : w->buf;
}

/* ------------------------------------------------------------- memory */

static const struct fw_cmd_memo *cmd__remembered(const struct fw_device *d, const char *id)
{
    for (unsigned i = 0; i < d->cmd_count; i++)
        if (strcmp(d->cmd_ids[i].id, id) == 0)
            return &d->cmd_ids[i];
    return NULL;
}

static void cmd__remember(struct fw_device *d, const struct fw_command *c)
{
    struct fw_cmd_memo *m = &d->cmd_ids[d->cmd_next];
    memcpy(m->id, c->cmd_id, sizeof m->id);
    m->reason = c->reason;
    m->detail = c->reject;
    d->cmd_next = (uint8_t)((d->cmd_next + 1) % FW_CMD_IDS);
    if (d->cmd_count < FW_CMD_IDS)
        d->cmd_count++;
    uint8_t buf[FW_CMDIDS_STORE_LEN];
    fw_device__store(d, FW_STORE_CMDIDS, buf,
                     fw_store__encode_cmdids(d->cmd_ids, d->cmd_count, d->cmd_next, buf,
                                             sizeof buf));
}

/* ------------------------------------------------------------ replies */

/* Publishes the reply; returns its token (0 for QoS 0 or a failure). */
static uint32_t cmd__reply(struct fw_device *d, const struct fw_command *c, const char *data)
{
    const char *reason = fw_cmd_reason_name((enum fw_cmd_reason)c->reason,
                                            (enum fw_reject)c->reject);
    char payload[FW_REPLY_MAX];
    struct fw_command_reply r = {c->has_cmd_id ? c->cmd_id : NULL, d->device_id, reason, data};
    int n = fw_encode_command_reply(payload, sizeof payload, &r);
    if (n < 0) {
        r.data = NULL; /* cannot happen with the sizes of fw_config.h; still answer */
        n = fw_encode_command_reply(payload, sizeof payload, &r);
    }
    uint32_t token = 0;
    struct fw_publish msg = {d->topic_cmd_reply, payload, (size_t)(n < 0 ? 0 : n), d->qos, false};
    int rc = n < 0 ? n : d->ports.net_publish(d->ports.ctx, &msg, &token);
    if (rc < 0) {
        d->stats.publish_errors++;
        fw_device__log(d, FW_LOG_WARN, "command reply failed:", fw_strerror(rc), NULL);
        return 0;
    }
    return token;
}

/* ----------------------------------------------------------- commands */

static void cmd__status(struct fw_device *d, struct cmd_data *w)
{
    uint64_t now = d->ports.clock_ms(d->ports.ctx);
    struct fw_status st;
    fw_device_status(d, &st);
    uint32_t flash = 0;
    for (int i = 0; i < FW_STORE_KEYS; i++)
        flash += d->flash_len[i];
    data__str(w, "version", FW_VERSION);
    data__u32(w, "uptime_s", (uint32_t)((now - d->boot_ms) / 1000u));
    data__u32(w, "boot_count", d->settings.boot_count);
    data__bool(w, "online", st.online);
    data__str(w, "screen", fw_screen_name(st.screen));
    data__bool(w, "locked", d->settings.locked);
    data__u32(w, "pending", d->pending_count);
    data__u32(w, "pending_capacity", FW_PENDING_ITEMS);
    data__u32(w, "outbox", d->outbox.count);
    data__u32(w, "outbox_capacity", FW_OUTBOX_LEN);
    data__u32(w, "flash_bytes", flash);
    data__u32(w, "keepalive", d->settings.keepalive_s);
    data__u32(w, "inventory_timeout", d->settings.inventory_timeout_s);
    data__u32(w, "contrast", d->settings.contrast);
    data__str(w, "last_error", d->last_error);
    data__u32(w, "items_received", d->stats.items_received);
    data__u32(w, "registrations_acked", d->stats.registrations_acked);
    data__u32(w, "duplicates_suppressed", d->stats.duplicates_suppressed);
    data__u32(w, "rejects_total", d->stats.rejects_total);
    data__u32(w, "connection_losses", d->stats.connection_losses);
    data__u32(w, "commands_received", d->stats.commands_received);
}

static void cmd__settings(const struct fw_device *d, struct cmd_data *w)
{
    data__u32(w, "keepalive", d->settings.keepalive_s);
    data__u32(w, "inventory_timeout", d->settings.inventory_timeout_s);
    data__u32(w, "contrast", d->settings.contrast);
}

/* Persists changed settings; on a flash failure nothing changes. */
static bool cmd__apply_settings(struct fw_device *d, const struct fw_settings *next)
{
    struct fw_settings before = d->settings;
    d->settings = *next;
    if (fw_device__save_settings(d) != FW_OK) {
        d->settings = before;
        return false;
    }
    if (next->contrast != before.contrast && d->ports.display_contrast != NULL)
        d->ports.display_contrast(d->ports.ctx, next->contrast);
    fw_device__dirty(d);
    return true;
}

/* Runs a decoded command; sets c->reason when it refuses, fills the reply's data. */
static void cmd__execute(struct fw_device *d, struct fw_command *c, struct cmd_data *w)
{
    uint64_t now = d->ports.clock_ms(d->ports.ctx);
    struct fw_settings next = d->settings;
    bool busy = d->has_scanned && !c->force;
    switch (c->kind) {
    case FW_CMD_IDENTIFY:
        d->identify_until_ms = now + (uint64_t)c->seconds * 1000u;
        d->identify_flip_ms = now + FW_IDENTIFY_BLINK_MS;
        d->identify_inverted = true;
        fw_device__dirty(d);
        data__u32(w, "seconds", c->seconds);
        break;
    case FW_CMD_MESSAGE:
        memcpy(d->message, c->text, sizeof d->message);
        fw_device__dirty(d);
        break;
    case FW_CMD_STATUS: cmd__status(d, w); break;
    case FW_CMD_CONFIG:
        if (c->set_keepalive)
            next.keepalive_s = c->keepalive_s;
        if (c->set_inventory_timeout)
            next.inventory_timeout_s = c->inventory_timeout_s;
        if (c->set_contrast)
            next.contrast = c->contrast;
        if (!cmd__apply_settings(d, &next))
            c->reason = FW_CMD_FLASH_ERROR;
        cmd__settings(d, w);
        break;
    case FW_CMD_REBOOT:
        if (busy) {
            c->reason = FW_CMD_BUSY;
            break;
        }
        d->reboot = FW_REBOOT_REPLYING;
        d->reboot_at_ms = now + FW_REBOOT_REPLY_WAIT_MS;
        break;
    case FW_CMD_LOCK:
    case FW_CMD_UNLOCK:
        next.locked = c->kind == FW_CMD_LOCK;
        if (!cmd__apply_settings(d, &next))
            c->reason = FW_CMD_FLASH_ERROR;
        data__bool(w, "locked", d->settings.locked);
        break;
    case FW_CMD_CLEAR_QUEUE: {
        if (busy) {
            c->reason = FW_CMD_BUSY;
            break;
        }
        unsigned n = fw_device__clear_pending(d);
        d->stats.items_cleared += n;
        data__u32(w, "cleared", n);
        break;
    }
    case FW_CMD_KIND_COUNT: break;
    }
}

void fw_command__on_message(struct fw_device *d, const void *payload, size_t len)
{
    struct fw_command c;
    struct cmd_data w;
    data__init(&w);
    d->stats.commands_received++;
    fw_decode_command(payload, len, &c);

    const struct fw_cmd_memo *seen = c.has_cmd_id ? cmd__remembered(d, c.cmd_id) : NULL;
    if (seen != NULL) {
        /* A redelivery or a repeat: the first outcome, not a second execution. */
        d->stats.commands_duplicate++;
        c.reason = seen->reason;
        c.reject = seen->detail;
        data__bool(&w, "duplicate", true);
        cmd__reply(d, &c, data__end(&w));
        fw_device__log(d, FW_LOG_INFO, "command", c.cmd_id, "already done, answered again");
        return;
    }
    if (c.reason == FW_CMD_OK)
        cmd__execute(d, &c, &w);
    if (c.reason != FW_CMD_OK && c.field[0] != '\0')
        data__str(&w, "field", c.field);
    if (c.reason == FW_CMD_OK) {
        d->stats.commands_ok++;
        fw_device__log(d, FW_LOG_INFO, "command", fw_cmd_kind_name(c.kind), "done");
    } else {
        d->stats.commands_refused++;
        fw_device__log(d, FW_LOG_WARN, "command refused:",
                       fw_cmd_reason_name((enum fw_cmd_reason)c.reason,
                                          (enum fw_reject)c.reject),
                       c.field[0] ? c.field : NULL);
    }
    if (c.has_cmd_id)
        cmd__remember(d, &c);
    uint32_t token = cmd__reply(d, &c, data__end(&w));
    if (d->reboot == FW_REBOOT_REPLYING) {
        d->reboot_token = token;
        if (token == 0 || d->qos == 0)
            d->reboot_at_ms = d->ports.clock_ms(d->ports.ctx); /* no ack will come */
    }
}

void fw_command__on_published(struct fw_device *d, uint32_t token)
{
    if (token != 0 && token == d->reboot_token)
        d->reboot_at_ms = 0; /* due at the next tick */
}

void fw_command__tick(struct fw_device *d, uint64_t now_ms)
{
    if (d->identify_until_ms != 0) {
        if (now_ms >= d->identify_until_ms) {
            d->identify_until_ms = 0;
            d->identify_inverted = false;
            fw_device__dirty(d);
        } else if (now_ms >= d->identify_flip_ms) {
            d->identify_inverted = !d->identify_inverted;
            d->identify_flip_ms = now_ms + FW_IDENTIFY_BLINK_MS;
            fw_device__dirty(d);
        }
    }
    if (d->reboot == FW_REBOOT_REPLYING && now_ms >= d->reboot_at_ms) {
        d->stats.reboots++;
        fw_device__log(d, FW_LOG_INFO, "rebooting by command", NULL, NULL);
        fw_device__power_off(d);
        d->reboot = FW_REBOOT_DOWN;
        d->reboot_at_ms = now_ms + FW_REBOOT_DOWN_MS;
        fw_device__dirty(d);
    } else if (d->reboot == FW_REBOOT_DOWN && now_ms >= d->reboot_at_ms) {
        d->reboot = FW_REBOOT_NONE;
        fw_device_start(d);
    }
}
