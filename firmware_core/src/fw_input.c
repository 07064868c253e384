/*
 * fw_input.c - the operator's side of the scanner: a tag presented (register, inventory
 * look-up, refusals while locked or a message is shown) and the three buttons (confirm,
 * cancel, mode). Public API in fw/fw_device.h; screens in fw_screens.c.
 */
#include <stddef.h>
#include <string.h>

#include "fw/fw_codec.h"
#include "fw/fw_device.h"
#include "fw_device_internal.h"
#include "fw_outbox.h"
#include "fw_util.h"

static bool tag_uid_len_valid(size_t len)
{
    return len == 4 || len == 7 || len == 10;
}

static bool tag_equal(const struct fw_tag_uid *a, const struct fw_tag_uid *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

static bool device__tag_used(const struct fw_device *d, const struct fw_tag_uid *tag)
{
    for (unsigned i = 0; i < d->used_count; i++)
        if (tag_equal(&d->used_tags[i], tag))
            return true;
    for (int i = 0; i < d->outbox.count; i++)
        if (tag_equal(&d->outbox.entries[i].tag, tag))
            return true;
    return false;
}

static void device__pop_item(struct fw_device *d)
{
    if (d->pending_count == 0)
        return;
    memset(&d->pending[d->pending_head], 0, sizeof d->pending[0]);
    d->pending_head = (uint16_t)((d->pending_head + 1) % FW_PENDING_ITEMS);
    d->pending_count--;
    d->has_scanned = false;
    fw_device__save_pending(d);
    fw_device__dirty(d);
}

unsigned fw_device__clear_pending(struct fw_device *d)
{
    unsigned n = d->pending_count;
    memset(d->pending, 0, sizeof d->pending);
    d->pending_head = 0;
    d->pending_count = 0;
    d->has_scanned = false;
    fw_device__save_pending(d);
    fw_device__dirty(d);
    return n;
}

static void device__wrong_tag(struct fw_device *d, enum fw_notice why)
{
    d->stats.wrong_tags++;
    fw_device__log(d, FW_LOG_WARN, "wrong tag:",
                why == FW_NOTICE_BAD_TAG ? "UID is not 4, 7 or 10 bytes" : "already registered",
                NULL);
    fw_device__notice(d, why);
}

static void device__inventory_query(struct fw_device *d, const struct fw_tag_uid *tag)
{
    if (d->conn != FW_CONN_ONLINE) {
        fw_device__notice(d, FW_NOTICE_OFFLINE);
        return;
    }
    uint32_t seq;
    if (fw_device__next_seq(d, &seq) != FW_OK) {
        fw_device__notice(d, FW_NOTICE_FLASH_ERROR);
        return;
    }
    char hex[FW_TAG_HEX_MAX];
    char payload[FW_PAYLOAD_MAX];
    fw_device__tag_hex(tag, hex);
    int n = fw_encode_inventory_query(payload, sizeof payload, hex, d->device_id, seq);
    uint32_t token = 0;
    int rc = n;
    if (n >= 0) {
        struct fw_publish msg = {d->topic_query, payload, (size_t)n, d->qos, false};
        rc = d->ports.net_publish(d->ports.ctx, &msg, &token);
    }
    if (rc < 0) {
        d->stats.publish_errors++;
        fw_device__log(d, FW_LOG_WARN, "inventory query failed:", fw_strerror(rc), NULL);
        fw_device__notice(d, FW_NOTICE_OFFLINE);
        return;
    }
    d->stats.inventory_queries++;
    d->inv_token = token;
    d->inv_tag = *tag;
    d->inv_state = FW_INV_WAITING;
    d->inv_deadline_ms = d->ports.clock_ms(d->ports.ctx) + (uint64_t)d->settings.inventory_timeout_s * 1000u;
    fw_device__dirty(d);
}

int fw_device_on_tag(struct fw_device *d, const uint8_t *uid, size_t len)
{
    if (d == NULL || (uid == NULL && len > 0))
        return FW_ERR_INVAL;
    if (d->settings.locked) {
        d->stats.locked_refusals++;
        fw_device__log(d, FW_LOG_INFO, "locked: tag refused", NULL, NULL);
        return FW_ERR_STATE;
    }
    if (d->message[0] != '\0') {
        fw_device__log(d, FW_LOG_DEBUG, "tag ignored: a message is shown", NULL, NULL);
        return FW_ERR_STATE;
    }
    /* A tag acts on the screen underneath a notice: scanning is how people move on. */
    if (d->notice != FW_NOTICE_NONE) {
        d->notice = FW_NOTICE_NONE;
        fw_device__dirty(d);
    }
    int rc = FW_OK;
    struct fw_tag_uid tag;
    memset(&tag, 0, sizeof tag);
    if (!tag_uid_len_valid(len)) {
        device__wrong_tag(d, FW_NOTICE_BAD_TAG);
        rc = FW_ERR_INVAL;
        goto out;
    }
    memcpy(tag.bytes, uid, len);
    tag.len = (uint8_t)len;

    switch (fw_device__screen(d)) {
    case FW_SCREEN_ITEM:
    case FW_SCREEN_CONFIRM:
        if (device__tag_used(d, &tag)) {
            device__wrong_tag(d, FW_NOTICE_TAG_USED);
            break;
        }
        d->scanned = tag; /* a second scan replaces the first */
        d->has_scanned = true;
        fw_device__dirty(d);
        break;
    case FW_SCREEN_INVENTORY_SCAN:
    case FW_SCREEN_INVENTORY_WAIT:
    case FW_SCREEN_INVENTORY_RESULT:
        device__inventory_query(d, &tag);
        break;
    default:
        fw_device__log(d, FW_LOG_DEBUG, "tag ignored: no item to register", NULL, NULL);
        break;
    }
out:
    fw_device__present(d);
    return rc;
}

static void device__register(struct fw_device *d)
{
    const struct fw_pending_item *item = &d->pending[d->pending_head];
    if (d->outbox.count >= FW_OUTBOX_LEN) {
        /* Item and tag stay: confirm again once acknowledgements made room. */
        d->stats.outbox_full++;
        fw_device__log(d, FW_LOG_WARN, "outbox full, registration refused", NULL, NULL);
        fw_device__notice(d, FW_NOTICE_OUTBOX_FULL);
        return;
    }
    struct fw_outbox_entry e;
    memset(&e, 0, sizeof e);
    if (fw_device__next_seq(d, &e.seq) != FW_OK) {
        fw_device__notice(d, FW_NOTICE_FLASH_ERROR);
        return;
    }
    e.item_id = item->item_id;
    e.tag_quantity = item->tag_quantity;
    e.tag = d->scanned;
    fw_outbox__push(&d->outbox, &e);
    fw_device__save_outbox(d);

    d->used_tags[d->used_next] = d->scanned;
    d->used_next = (uint16_t)((d->used_next + 1) % FW_USED_TAGS);
    if (d->used_count < FW_USED_TAGS)
        d->used_count++;
    d->stats.registrations_confirmed++;
    device__pop_item(d);
    bool online = d->conn == FW_CONN_ONLINE;
    fw_device__flush_outbox(d);
    fw_device__notice(d, online ? FW_NOTICE_REGISTERED_SENT : FW_NOTICE_REGISTERED_QUEUED);
}

void fw_device_on_button(struct fw_device *d, enum fw_button button)
{
    if (d == NULL)
        return;
    if (d->settings.locked) {
        d->stats.locked_refusals++;
        fw_device__log(d, FW_LOG_INFO, "locked: button refused", NULL, NULL);
        return;
    }
    /* Any button dismisses a message; it does nothing else. */
    if (d->message[0] != '\0') {
        d->message[0] = '\0';
        fw_device__dirty(d);
        fw_device__present(d);
        return;
    }
    /* Any button over a notice only acknowledges it, so a press meant for the notice
       never registers or skips an item the person has not looked at. */
    if (d->notice != FW_NOTICE_NONE) {
        d->notice = FW_NOTICE_NONE;
        fw_device__dirty(d);
        fw_device__present(d);
        return;
    }
    enum fw_screen screen = fw_device__screen(d);
    switch (button) {
    case FW_BUTTON_CONFIRM:
        if (screen == FW_SCREEN_CONFIRM) {
            device__register(d);
        } else if (screen == FW_SCREEN_INVENTORY_RESULT) {
            d->inv_state = FW_INV_NONE;
            fw_device__dirty(d);
        }
        break;
    case FW_BUTTON_CANCEL:
        if (screen == FW_SCREEN_ITEM || screen == FW_SCREEN_CONFIRM) {
            d->stats.cancels++;
            device__pop_item(d);
            fw_device__notice(d, FW_NOTICE_CANCELLED);
        } else if (d->mode == FW_MODE_INVENTORY) {
            d->mode = FW_MODE_REGISTER;
            d->inv_state = FW_INV_NONE;
            fw_device__dirty(d);
        }
        break;
    case FW_BUTTON_MODE:
        d->mode = d->mode == FW_MODE_INVENTORY ? FW_MODE_REGISTER : FW_MODE_INVENTORY;
        d->inv_state = FW_INV_NONE;
        fw_device__dirty(d);
        break;
    }
    fw_device__present(d);
}
