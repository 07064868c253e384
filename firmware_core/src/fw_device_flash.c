/*
 * fw_device_flash.c - what a scanner keeps in flash and reads back at start: the outbox,
 * the sequence number, the settings, the recent command ids and the pending items
 * (formats: fw_outbox.h, fw_store.h; docs/protocol.md). Every record is encoded in the
 * device's scratch buffer; a record that does not decode is reported and never trusted.
 */
#include <stddef.h>
#include <string.h>

#include "fw/fw_device.h"
#include "fw_device_internal.h"
#include "fw_outbox.h"
#include "fw_store.h"
#include "fw_util.h"

/* Stored sequence number: 'S', version, seq (u32 LE), CRC-32 of the first 6 bytes. */
#define SEQ_RECORD_LEN 10
#define SEQ_VERSION 1u

_Static_assert(FW_SCRATCH_MAX >= FW_REPLY_MAX && FW_SCRATCH_MAX >= FW_OUTBOX_STORE_MAX &&
                   FW_SCRATCH_MAX >= FW_PENDING_STORE_MAX && FW_SCRATCH_MAX >= FW_CMDIDS_STORE_LEN,
               "FW_SCRATCH_MAX must hold a command reply and every flash record");


static void device__storage_error(struct fw_device *d, const char *what, int rc)
{
    d->stats.storage_errors++;
    fw_device__log(d, FW_LOG_ERROR, what, "failed:", fw_strerror(rc));
}

/* Writes an encoded record (n: its length, or a negative fw_err from its encoder) under key;
   counts and logs a failure. Remembers the size for the status command. */
int fw_device__store(struct fw_device *d, enum fw_store_key key, const void *buf, int n)
{
    static const char *const keys[FW_STORE_KEYS] = {"outbox", "seq", "settings", "cmdids",
                                                     "pending"};
    int rc = n < 0 ? n : d->ports.storage_write(d->ports.ctx, keys[key], buf, (size_t)n);
    if (rc < 0) {
        d->stats.storage_errors++;
        fw_device__log(d, FW_LOG_ERROR, "writing", keys[key], fw_strerror(rc));
        return rc;
    }
    d->flash_len[key] = (uint16_t)n;
    return FW_OK;
}

void fw_device__save_outbox(struct fw_device *d)
{
    uint8_t *buf = d->scratch;
    fw_device__store(d, FW_STORE_OUTBOX, buf, fw_outbox__encode(&d->outbox, buf, FW_SCRATCH_MAX));
}

/* Kept in flash as they change, so a reboot or a power cut loses no accepted item. */
void fw_device__save_pending(struct fw_device *d)
{
    uint8_t *buf = d->scratch;
    fw_device__store(d, FW_STORE_PENDING, buf,
                     fw_store__encode_pending(d->pending, d->pending_head, d->pending_count,
                                              buf, FW_SCRATCH_MAX));
}

int fw_device__save_settings(struct fw_device *d)
{
    uint8_t buf[FW_SETTINGS_STORE_LEN];
    struct fw_settings s = d->settings;
    /* 0 stands for "the default": a changed default then applies to a device never
       configured by command. */
    if (s.keepalive_s == d->keepalive_default_s)
        s.keepalive_s = 0;
    if (s.inventory_timeout_s == FW_INVENTORY_TIMEOUT_MS / 1000)
        s.inventory_timeout_s = 0;
    return fw_device__store(d, FW_STORE_SETTINGS, buf,
                            fw_store__encode_settings(&s, buf, sizeof buf));
}

/* Reads a record under key into buf; FW_ERR_NOT_FOUND quietly, other failures counted. */
static int device__load(struct fw_device *d, const char *key, uint8_t *buf, size_t cap,
                        size_t *len)
{
    *len = 0;
    int rc = d->ports.storage_read(d->ports.ctx, key, buf, cap, len);
    if (rc < 0 && rc != FW_ERR_NOT_FOUND) {
        d->stats.storage_errors++;
        fw_device__log(d, FW_LOG_ERROR, "reading", key, fw_strerror(rc));
    }
    else if (rc == FW_OK && *len > cap)
        rc = FW_ERR_TOO_BIG;
    return rc;
}

static void device__corrupt(struct fw_device *d, const char *what)
{
    d->stats.storage_errors++;
    fw_device__log(d, FW_LOG_ERROR, "stored", what, "is corrupt, ignored");
}

static void device__load_pending(struct fw_device *d)
{
    uint8_t *buf = d->scratch;
    size_t len;
    d->pending_head = 0;
    d->pending_count = 0;
    if (device__load(d, "pending", buf, FW_SCRATCH_MAX, &len) != FW_OK)
        return;
    d->flash_len[FW_STORE_PENDING] = (uint16_t)len;
    if (fw_store__decode_pending(d->pending, &d->pending_count, buf, len) != FW_OK)
        device__corrupt(d, "pending items");
}

static void device__load_settings(struct fw_device *d)
{
    uint8_t buf[FW_SETTINGS_STORE_LEN + 1];
    size_t len;
    struct fw_settings s;
    int rc = device__load(d, "settings", buf, sizeof buf, &len);
    if (rc == FW_OK && fw_store__decode_settings(&s, buf, len) != FW_OK) {
        device__corrupt(d, "settings");
        rc = FW_ERR_INVAL;
    }
    if (rc != FW_OK)
        return; /* the defaults of device__reset_ram */
    d->settings.boot_count = s.boot_count;
    d->settings.locked = s.locked;
    d->settings.contrast = s.contrast;
    if (s.keepalive_s != 0)
        d->settings.keepalive_s = s.keepalive_s;
    if (s.inventory_timeout_s != 0)
        d->settings.inventory_timeout_s = s.inventory_timeout_s;
}

static void device__load_cmdids(struct fw_device *d)
{
    uint8_t *buf = d->scratch;
    size_t len;
    if (device__load(d, "cmdids", buf, FW_SCRATCH_MAX, &len) != FW_OK)
        return;
    d->flash_len[FW_STORE_CMDIDS] = (uint16_t)len;
    if (fw_store__decode_cmdids(d->cmd_ids, &d->cmd_count, &d->cmd_next, buf, len) != FW_OK)
        device__corrupt(d, "command ids");
}

static void device__load_outbox(struct fw_device *d)
{
    uint8_t *buf = d->scratch;
    size_t len = 0;
    int rc = d->ports.storage_read(d->ports.ctx, "outbox", buf, FW_SCRATCH_MAX, &len);
    fw_outbox__clear(&d->outbox);
    if (rc == FW_ERR_NOT_FOUND)
        return;
    if (rc < 0) {
        device__storage_error(d, "reading the outbox", rc);
        return;
    }
    if (len > FW_OUTBOX_STORE_MAX || fw_outbox__decode(&d->outbox, buf, len) != FW_OK) {
        /* Better to lose unsent registrations than to publish garbage or crash. */
        d->stats.storage_errors++;
        fw_device__log(d, FW_LOG_ERROR, "stored outbox is corrupt,", "ignored", NULL);
        fw_outbox__clear(&d->outbox);
        return;
    }
    if (d->outbox.count > 0) {
        char n[12];
        struct fw_text t;
        fw_text__init(&t, n, sizeof n);
        fw_text__u32(&t, d->outbox.count);
        fw_device__log(d, FW_LOG_INFO, "restored", n, "unsent registrations");
    }
}

static void device__load_seq(struct fw_device *d)
{
    uint8_t rec[SEQ_RECORD_LEN];
    size_t len = 0;
    int rc = d->ports.storage_read(d->ports.ctx, "seq", rec, sizeof rec, &len);
    d->seq = 0;
    if (rc == FW_OK && len == SEQ_RECORD_LEN && rec[0] == 'S' && rec[1] == SEQ_VERSION &&
        fw_crc32(rec, 6) == fw_get_u32le(rec + 6)) {
        d->seq = fw_get_u32le(rec + 2);
    } else if (rc != FW_ERR_NOT_FOUND) {
        d->stats.storage_errors++;
        fw_device__log(d, FW_LOG_ERROR, "stored sequence number unreadable,",
                    "continuing after the outbox's highest", NULL);
    }
    /* Never below a key already handed out and still waiting in the outbox. */
    uint32_t max = fw_outbox__max_seq(&d->outbox);
    if (max > d->seq)
        d->seq = max;
}

/* The next idempotency sequence number, persisted before it is used so that a restart can
   never hand it out again. FW_ERR_IO when the flash refused it (nothing is consumed). */
int fw_device__next_seq(struct fw_device *d, uint32_t *out)
{
    uint32_t next = d->seq + 1;
    uint8_t rec[SEQ_RECORD_LEN];
    rec[0] = 'S';
    rec[1] = SEQ_VERSION;
    fw_put_u32le(rec + 2, next);
    fw_put_u32le(rec + 6, fw_crc32(rec, 6));
    if (fw_device__store(d, FW_STORE_SEQ, rec, sizeof rec) < 0)
        return FW_ERR_IO;
    d->seq = next;
    *out = next;
    return FW_OK;
}

void fw_device__load(struct fw_device *d)
{
    device__load_settings(d);
    device__load_cmdids(d);
    device__load_outbox(d);
    device__load_seq(d); /* after the outbox: never below a key it holds */
    device__load_pending(d);
}
