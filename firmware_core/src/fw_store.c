/*
 * fw_store.c - codecs of the settings, command-id and pending-item records (fw_store.h).
 */
#include "fw_store.h"

#include <string.h>

#include "fw/fw_codec.h"
#include "fw_util.h"

/* strlen bounded by max (strnlen is POSIX, not C11). */
static size_t store__len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0')
        n++;
    return n;
}

/* Appends the CRC of buf[0..n) and returns the record's length. */
static int store__seal(uint8_t *buf, size_t n)
{
    fw_put_u32le(buf + n, fw_crc32(buf, n));
    return (int)(n + 4);
}

static bool store__intact(const uint8_t *buf, size_t len, uint8_t magic)
{
    return len >= 6 && buf[0] == magic && buf[1] == FW_STORE_VERSION &&
           fw_crc32(buf, len - 4) == fw_get_u32le(buf + len - 4);
}

/* ---------------------------------------------------------------- settings */

int fw_store__encode_settings(const struct fw_settings *s, uint8_t *buf, size_t cap)
{
    if (cap < FW_SETTINGS_STORE_LEN)
        return FW_ERR_TOO_BIG;
    buf[0] = 'C';
    buf[1] = FW_STORE_VERSION;
    buf[2] = (uint8_t)(s->keepalive_s & 0xFF);
    buf[3] = (uint8_t)(s->keepalive_s >> 8);
    buf[4] = s->inventory_timeout_s;
    buf[5] = s->contrast;
    buf[6] = s->locked ? 1 : 0;
    fw_put_u32le(buf + 7, s->boot_count);
    return store__seal(buf, FW_SETTINGS_STORE_LEN - 4);
}

int fw_store__decode_settings(struct fw_settings *s, const uint8_t *buf, size_t len)
{
    memset(s, 0, sizeof *s);
    if (len != FW_SETTINGS_STORE_LEN || !store__intact(buf, len, 'C') || buf[6] > 1 ||
        buf[4] > 60)
        return FW_ERR_INVAL;
    s->keepalive_s = (uint16_t)(buf[2] | buf[3] << 8);
    s->inventory_timeout_s = buf[4];
    s->contrast = buf[5];
    s->locked = buf[6] == 1;
    s->boot_count = fw_get_u32le(buf + 7);
    return FW_OK;
}

/* ------------------------------------------------------------- command ids */

int fw_store__encode_cmdids(const struct fw_cmd_memo *ids, uint8_t count, uint8_t next,
                            uint8_t *buf, size_t cap)
{
    if (cap < FW_CMDIDS_STORE_LEN)
        return FW_ERR_TOO_BIG;
    buf[0] = 'I';
    buf[1] = FW_STORE_VERSION;
    buf[2] = count;
    buf[3] = next;
    uint8_t *p = buf + 4;
    for (int i = 0; i < FW_CMD_IDS; i++, p += FW_CMDIDS_SLOT) {
        size_t n = store__len(ids[i].id, FW_CMD_ID_MAX - 1);
        memset(p, 0, FW_CMDIDS_SLOT);
        p[0] = (uint8_t)n;
        memcpy(p + 1, ids[i].id, n);
        p[FW_CMD_ID_MAX] = ids[i].reason;
        p[FW_CMD_ID_MAX + 1] = ids[i].detail;
    }
    return store__seal(buf, FW_CMDIDS_STORE_LEN - 4);
}

int fw_store__decode_cmdids(struct fw_cmd_memo *ids, uint8_t *count, uint8_t *next,
                            const uint8_t *buf, size_t len)
{
    memset(ids, 0, FW_CMD_IDS * sizeof ids[0]);
    *count = 0;
    *next = 0;
    if (len != FW_CMDIDS_STORE_LEN || !store__intact(buf, len, 'I') || buf[2] > FW_CMD_IDS ||
        buf[3] >= FW_CMD_IDS)
        return FW_ERR_INVAL;
    const uint8_t *p = buf + 4;
    for (int i = 0; i < FW_CMD_IDS; i++, p += FW_CMDIDS_SLOT) {
        if (p[0] > FW_CMD_ID_MAX - 1) {
            memset(ids, 0, FW_CMD_IDS * sizeof ids[0]);
            return FW_ERR_INVAL;
        }
        memcpy(ids[i].id, p + 1, p[0]);
        ids[i].id[p[0]] = '\0';
        ids[i].reason = p[FW_CMD_ID_MAX];
        ids[i].detail = p[FW_CMD_ID_MAX + 1];
    }
    *count = buf[2];
    *next = buf[3];
    return FW_OK;
}

/* ----------------------------------------------------------- pending items */

int fw_store__encode_pending(const struct fw_pending_item *items, uint16_t head,
                             uint16_t count, uint8_t *buf, size_t cap)
{
    if (count > FW_PENDING_ITEMS || cap < 3)
        return FW_ERR_TOO_BIG;
    buf[0] = 'P';
    buf[1] = FW_STORE_VERSION;
    buf[2] = (uint8_t)count;
    size_t n = 3;
    for (unsigned i = 0; i < count; i++) {
        const struct fw_pending_item *it = &items[(head + i) % FW_PENDING_ITEMS];
        size_t name = store__len(it->name, FW_ITEM_NAME_MAX - 1);
        if (n + 9 + name + 4 > cap)
            return FW_ERR_TOO_BIG;
        fw_put_u32le(buf + n, (uint32_t)it->item_id);
        fw_put_u32le(buf + n + 4, (uint32_t)it->tag_quantity);
        buf[n + 8] = (uint8_t)name;
        memcpy(buf + n + 9, it->name, name);
        n += 9 + name;
    }
    if (n + 4 > cap)
        return FW_ERR_TOO_BIG;
    return store__seal(buf, n);
}

int fw_store__decode_pending(struct fw_pending_item *items, uint16_t *count,
                             const uint8_t *buf, size_t len)
{
    memset(items, 0, FW_PENDING_ITEMS * sizeof items[0]);
    *count = 0;
    if (len < 7 || !store__intact(buf, len, 'P') || buf[2] > FW_PENDING_ITEMS)
        return FW_ERR_INVAL;
    size_t n = 3, end = len - 4;
    unsigned want = buf[2];
    for (unsigned i = 0; i < want; i++) {
        if (end - n < 9 || buf[n + 8] == 0 || buf[n + 8] > FW_ITEM_NAME_MAX - 1 ||
            end - n - 9 < buf[n + 8])
            goto corrupt;
        int32_t id = (int32_t)fw_get_u32le(buf + n);
        int32_t qty = (int32_t)fw_get_u32le(buf + n + 4);
        if (id < FW_ITEM_ID_MIN || qty < FW_TAG_QUANTITY_MIN || qty > FW_TAG_QUANTITY_MAX ||
            !fw_utf8_valid(buf + n + 9, buf[n + 8]) || memchr(buf + n + 9, 0, buf[n + 8]))
            goto corrupt;
        items[i].item_id = id;
        items[i].tag_quantity = qty;
        memcpy(items[i].name, buf + n + 9, buf[n + 8]);
        items[i].name[buf[n + 8]] = '\0';
        n += 9 + buf[n + 8];
    }
    if (n != end)
        goto corrupt;
    *count = (uint16_t)want;
    return FW_OK;
corrupt:
    memset(items, 0, FW_PENDING_ITEMS * sizeof items[0]);
    return FW_ERR_INVAL;
}
