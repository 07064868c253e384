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

/* What a reply's data object says, decided while the command runs and written only
   when the reply is built (in the device's scratch buffer, after any flash write). */
enum cmd_data_kind {
    DATA_EMPTY = 0, /* {} */
    DATA_SECONDS,   /* {"seconds":n} */
    DATA_STATUS,
    DATA_SETTINGS,
    DATA_LOCKED,
    DATA_CLEARED,   /* {"cleared":n} */
    DATA_DUPLICATE, /* {"duplicate":true} */
    DATA_FIELD      /* {"field":"..."} of a refusal */
};

struct cmd_data {
    struct fw_text *t;
    bool first;
};

static void data__key(struct cmd_data *w, const char *key)
{
    if (!w->first)
        fw_text__char(w->t, ',');
    w->first = false;
    fw_text__json_str(w->t, key);
    fw_text__char(w->t, ':');
}

static void data__u32(struct cmd_data *w, const char *key, uint32_t v)
{
    data__key(w, key);
    fw_text__u32(w->t, v);
}

static void data__bool(struct cmd_data *w, const char *key, bool v)
{
    data__key(w, key);
    fw_text__str(w->t, v ? "true" : "false");
}

static void data__str(struct cmd_data *w, const char *key, const char *v)
{
    data__key(w, key);
    fw_text__json_str(w->t, v);
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
    fw_device__store(d, FW_STORE_CMDIDS, d->scratch,
                     fw_store__encode_cmdids(d->cmd_ids, d->cmd_count, d->cmd_next,
                                             d->scratch, FW_SCRATCH_MAX));
}

/* ----------------------------------------------------------- commands */

/* The outcome of a command beyond its reason: what its reply's data says. */
struct cmd_out {
    enum cmd_data_kind kind;
    uint32_t n;
};

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

/* The data object of a reply into t. */
static void cmd__data(struct fw_device *d, const struct fw_command *c,
                      const struct cmd_out *out, struct fw_text *t)
{
    struct cmd_data w = {t, true};
    fw_text__char(t, '{');
    switch (out->kind) {
    case DATA_EMPTY: break;
    case DATA_SECONDS: data__u32(&w, "seconds", out->n); break;
    case DATA_STATUS: cmd__status(d, &w); break;
    case DATA_SETTINGS:
        data__u32(&w, "keepalive", d->settings.keepalive_s);
        data__u32(&w, "inventory_timeout", d->settings.inventory_timeout_s);
        data__u32(&w, "contrast", d->settings.contrast);
        break;
    case DATA_LOCKED: data__bool(&w, "locked", d->settings.locked); break;
    case DATA_CLEARED: data__u32(&w, "cleared", out->n); break;
    case DATA_DUPLICATE: data__bool(&w, "duplicate", true); break;
    case DATA_FIELD: data__str(&w, "field", c->field); break;
    }
    fw_text__char(t, '}');
}

/* Builds the reply in the scratch buffer, the data object right after the head, and
   publishes it; returns its token (0 for QoS 0 or a failure). */
static uint32_t cmd__reply(struct fw_device *d, const struct fw_command *c,
                           const struct cmd_out *out)
{
    const char *reason = fw_cmd_reason_name((enum fw_cmd_reason)c->reason,
                                            (enum fw_reject)c->reject);
    struct fw_command_reply r = {c->has_cmd_id ? c->cmd_id : NULL, d->device_id, reason, NULL};
    char head[FW_REPLY_HEAD_MAX];
    int hl = fw_encode_command_reply_head(head, sizeof head, &r);
    char *body = (char *)d->scratch + FW_REPLY_HEAD_MAX;
    struct fw_text t;
    fw_text__init(&t, body, FW_REPLY_MAX - FW_REPLY_HEAD_MAX);
    cmd__data(d, c, out, &t);
    fw_text__char(&t, '}');
    if (t.overflow) { /* cannot happen with the sizes of fw_config.h; still answer */
        fw_text__init(&t, body, FW_REPLY_MAX - FW_REPLY_HEAD_MAX);
        fw_text__str(&t, "{}}");
    }
    int rc = hl;
    uint32_t token = 0;
    if (hl >= 0) {
        char *payload = body - hl;
        memcpy(payload, head, (size_t)hl);
        struct fw_publish msg = {d->topic_cmd_reply, payload, (size_t)hl + t.len, d->qos, false};
        rc = d->ports.net_publish(d->ports.ctx, &msg, &token);
    }
    if (rc < 0) {
        d->stats.publish_errors++;
        fw_device__log(d, FW_LOG_WARN, "command reply failed:", fw_strerror(rc), NULL);
        return 0;
    }
    return token;
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

/* Runs a decoded command; sets c->reason when it refuses, and out for the reply. */
static void cmd__execute(struct fw_device *d, struct fw_command *c, struct cmd_out *out)
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
        *out = (struct cmd_out){DATA_SECONDS, c->seconds};
        break;
    case FW_CMD_MESSAGE:
        memcpy(d->message, c->text, sizeof d->message);
        fw_device__dirty(d);
        break;
    case FW_CMD_STATUS: out->kind = DATA_STATUS; break;
    case FW_CMD_CONFIG:
        if (c->set_keepalive)
            next.keepalive_s = c->keepalive_s;
        if (c->set_inventory_timeout)
            next.inventory_timeout_s = c->inventory_timeout_s;
        if (c->set_contrast)
            next.contrast = c->contrast;
        if (!cmd__apply_settings(d, &next))
            c->reason = FW_CMD_FLASH_ERROR;
        out->kind = DATA_SETTINGS;
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
        out->kind = DATA_LOCKED;
        break;
    case FW_CMD_CLEAR_QUEUE:
        if (busy) {
            c->reason = FW_CMD_BUSY;
            break;
        }
        out->n = fw_device__clear_pending(d);
        out->kind = DATA_CLEARED;
        d->stats.items_cleared += out->n;
        break;
    case FW_CMD_KIND_COUNT: break;
    }
}

static void cmd__count(struct fw_device *d, const struct fw_command *c)
{
    if (c->reason == FW_CMD_OK) {
        d->stats.commands_ok++;
        fw_device__log(d, FW_LOG_INFO, "command", fw_cmd_kind_name(c->kind), "done");
    } else {
        d->stats.commands_refused++;
        fw_device__log(d, FW_LOG_WARN, "command refused:",
                       fw_cmd_reason_name((enum fw_cmd_reason)c->reason,
                                          (enum fw_reject)c->reject),
                       c->field[0] ? c->field : NULL);
    }
}

void fw_command__on_message(struct fw_device *d, const void *payload, size_t len)
{
    struct fw_command c;
    struct cmd_out out = {DATA_EMPTY, 0};
    d->stats.commands_received++;
    fw_decode_command(payload, len, &c);

    const struct fw_cmd_memo *seen = c.has_cmd_id ? cmd__remembered(d, c.cmd_id) : NULL;
    if (seen != NULL) {
        /* A redelivery or a repeat: the first outcome, not a second execution. */
        d->stats.commands_duplicate++;
        c.reason = seen->reason;
        c.reject = seen->detail;
        out.kind = DATA_DUPLICATE;
        cmd__reply(d, &c, &out);
        fw_device__log(d, FW_LOG_INFO, "command", c.cmd_id, "already done, answered again");
        return;
    }
    if (c.reason == FW_CMD_OK)
        cmd__execute(d, &c, &out);
    if (c.reason != FW_CMD_OK && c.field[0] != '\0')
        out.kind = DATA_FIELD;
    cmd__count(d, &c);
    if (c.has_cmd_id)
        cmd__remember(d, &c); /* in flash before the reply goes out */
    uint32_t token = cmd__reply(d, &c, &out);
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
