/*
 * fw_store.h - the flash records beside the outbox: settings, command ids, pending items
 * (internal).
 *
 * Pure codecs, like fw_outbox.h: the device does the storage I/O. Formats (little-endian;
 * each record ends with a CRC-32 of everything before it; docs/protocol.md, "Commands"):
 *   "settings": 'C' version keepalive(u16) inventory_timeout(u8) contrast(u8) locked(u8)
 *               boot_count(u32). keepalive or inventory_timeout 0: the config's default.
 *   "cmdids":   'I' version count next, then FW_CMD_IDS slots of
 *               id_len(u8) id[FW_CMD_ID_MAX - 1] reason(u8) detail(u8).
 *   "pending":  'P' version count, then count items of
 *               item_id(u32) tag_quantity(u32) name_len(u8) name[name_len], oldest first.
 * A decoder returns FW_ERR_INVAL for anything it does not trust (magic, version, length,
 * CRC, a value out of range) and leaves its output zeroed.
 */
#ifndef FW_STORE_H
#define FW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fw/fw_device.h"

#define FW_STORE_VERSION 1u
#define FW_SETTINGS_STORE_LEN (2 + 2 + 1 + 1 + 1 + 4 + 4)
#define FW_CMDIDS_SLOT (1 + (FW_CMD_ID_MAX - 1) + 1 + 1)
#define FW_CMDIDS_STORE_LEN (4 + FW_CMD_IDS * FW_CMDIDS_SLOT + 4)
#define FW_PENDING_STORE_MAX (3 + FW_PENDING_ITEMS * (4 + 4 + 1 + (FW_ITEM_NAME_MAX - 1)) + 4)

int fw_store__encode_settings(const struct fw_settings *s, uint8_t *buf, size_t cap);
int fw_store__decode_settings(struct fw_settings *s, const uint8_t *buf, size_t len);

/* The ring of remembered command ids: ids[FW_CMD_IDS], count used, next slot to write. */
int fw_store__encode_cmdids(const struct fw_cmd_memo *ids, uint8_t count, uint8_t next,
                            uint8_t *buf, size_t cap);
int fw_store__decode_cmdids(struct fw_cmd_memo *ids, uint8_t *count, uint8_t *next,
                            const uint8_t *buf, size_t len);

/* The pending ring items[FW_PENDING_ITEMS] from head, count items; decoded oldest first
   into items[0..count). */
int fw_store__encode_pending(const struct fw_pending_item *items, uint16_t head,
                             uint16_t count, uint8_t *buf, size_t cap);
int fw_store__decode_pending(struct fw_pending_item *items, uint16_t *count,
                             const uint8_t *buf, size_t len);

#endif /* FW_STORE_H */
