/*
 * fw_outbox.c - ordered, bounded outbox and its flash format (see fw_outbox.h).
 *
 * Small enough (FW_OUTBOX_LEN entries) that an array with memmove on removal is simpler
 * and as fast as a ring, and keeps "oldest first" trivially true for resends.
 */
#include "fw_outbox.h"

#include <string.h>

#include "fw/fw_codec.h"
#include "fw_util.h"

void fw_outbox__clear(struct fw_outbox *o)
{
    memset(o, 0, sizeof *o);
}

int fw_outbox__push(struct fw_outbox *o, const struct fw_outbox_entry *e)
{
    if (o->count >= FW_OUTBOX_LEN)
        return FW_ERR_FULL;
    o->entries[o->count] = *e;
    o->entries[o->count].flags &= (uint8_t)~FW_OUTBOX_IN_FLIGHT;
    o->count++;
    return FW_OK;
}

int fw_outbox__find_token(const struct fw_outbox *o, uint32_t token)
{
    for (int i = 0; i < o->count; i++) {
        const struct fw_outbox_entry *e = &o->entries[i];
        if ((e->flags & FW_OUTBOX_IN_FLIGHT) && e->token == token)
            return i;
    }
    return -1;
}

void fw_outbox__remove(struct fw_outbox *o, int i)
{
    if (i < 0 || i >= o->count)
        return;
    memmove(&o->entries[i], &o->entries[i + 1],
            (size_t)(o->count - i - 1) * sizeof o->entries[0]);
    o->count--;
    memset(&o->entries[o->count], 0, sizeof o->entries[0]);
}

unsigned fw_outbox__requeue(struct fw_outbox *o)
{
    unsigned n = 0;
    for (int i = 0; i < o->count; i++) {
        struct fw_outbox_entry *e = &o->entries[i];
        if (e->flags & FW_OUTBOX_IN_FLIGHT) {
            e->flags &= (uint8_t)~FW_OUTBOX_IN_FLIGHT;
            e->token = 0;
            n++;
        }
    }
    return n;
}

unsigned fw_outbox__in_flight(const struct fw_outbox *o)
{
    unsigned n = 0;
    for (int i = 0; i < o->count; i++)
        n += (o->entries[i].flags & FW_OUTBOX_IN_FLIGHT) ? 1u : 0u;
    return n;
}

bool fw_outbox__has_item(const struct fw_outbox *o, int32_t item_id)
{
    for (int i = 0; i < o->count; i++)
        if (o->entries[i].item_id == item_id)
            return true;
    return false;
}

uint32_t fw_outbox__max_seq(const struct fw_outbox *o)
{
    uint32_t max = 0;
    for (int i = 0; i < o->count; i++)
        if (o->entries[i].seq > max)
            max = o->entries[i].seq;
    return max;
}

/* ------------------------------------------------------------ flash format */

int fw_outbox__encode(const struct fw_outbox *o, uint8_t *buf, size_t cap)
{
    size_t need = 4 + (size_t)o->count * FW_OUTBOX_RECORD + 4;
    if (cap < need)
        return FW_ERR_TOO_BIG;
    uint8_t *p = buf;
    *p++ = 'O';
    *p++ = 'B';
    *p++ = FW_OUTBOX_VERSION;
    *p++ = o->count;
    for (int i = 0; i < o->count; i++) {
        const struct fw_outbox_entry *e = &o->entries[i];
        fw_put_u32le(p, (uint32_t)e->item_id);
        fw_put_u32le(p + 4, (uint32_t)e->tag_quantity);
        fw_put_u32le(p + 8, e->seq);
        /* In flight is a property of one connection, not of the record. */
        p[12] = (uint8_t)(e->flags & FW_OUTBOX_SENT_BEFORE);
        p[13] = e->tag.len;
        memcpy(p + 14, e->tag.bytes, FW_TAG_UID_MAX);
        p += FW_OUTBOX_RECORD;
    }
    fw_put_u32le(p, fw_crc32(buf, (size_t)(p - buf)));
    return (int)need;
}

static bool outbox__uid_len_valid(uint8_t n)
{
    return n == 4 || n == 7 || n == 10;
}

int fw_outbox__decode(struct fw_outbox *o, const uint8_t *buf, size_t len)
{
    fw_outbox__clear(o);
    if (buf == NULL || len < 8 || buf[0] != 'O' || buf[1] != 'B' ||
        buf[2] != FW_OUTBOX_VERSION || buf[3] > FW_OUTBOX_LEN)
        return FW_ERR_INVAL;
    size_t count = buf[3];
    if (len != 4 + count * FW_OUTBOX_RECORD + 4)
        return FW_ERR_INVAL;
    if (fw_crc32(buf, len - 4) != fw_get_u32le(buf + len - 4))
        return FW_ERR_INVAL;

    struct fw_outbox tmp;
    fw_outbox__clear(&tmp);
    const uint8_t *p = buf + 4;
    for (size_t i = 0; i < count; i++, p += FW_OUTBOX_RECORD) {
        struct fw_outbox_entry e;
        memset(&e, 0, sizeof e);
        uint32_t id = fw_get_u32le(p), qty = fw_get_u32le(p + 4);
        /* A record that passes the CRC but breaks the protocol's limits was written by
           something else: refuse it rather than publish nonsense. */
        if (id < FW_ITEM_ID_MIN || id > FW_ITEM_ID_MAX || qty < FW_TAG_QUANTITY_MIN ||
            qty > FW_TAG_QUANTITY_MAX || !outbox__uid_len_valid(p[13]))
            return FW_ERR_INVAL;
        e.item_id = (int32_t)id;
        e.tag_quantity = (int32_t)qty;
        e.seq = fw_get_u32le(p + 8);
        e.flags = (uint8_t)(p[12] & FW_OUTBOX_SENT_BEFORE);
        e.tag.len = p[13];
        memcpy(e.tag.bytes, p + 14, FW_TAG_UID_MAX);
        fw_outbox__push(&tmp, &e);
    }
    *o = tmp;
    return FW_OK;
}
