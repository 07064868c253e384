/*
 * fw_outbox.h - the bounded outbox of confirmed registrations (internal).
 *
 * An ordered array, oldest first, of at most FW_OUTBOX_LEN entries; the device mirrors it to
 * storage ("outbox") after every change so a restart resends what the broker never
 * acknowledged. Storage format (little-endian), version 1:
 *   'O' 'B' version count, then count records of FW_OUTBOX_RECORD bytes
 *   (item_id u32, tag_quantity u32, seq u32, flags u8, uid_len u8, uid[10]),
 *   then a CRC-32 of everything before it.
 * Tokens are not stored: after a restart nothing is in flight.
 */
#ifndef FW_OUTBOX_H
#define FW_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "fw/fw_device.h"

#define FW_OUTBOX_IN_FLIGHT 0x01u /* handed to the network, token valid */
#define FW_OUTBOX_SENT_BEFORE 0x02u /* sent at least once: the next send is a re-send */

#define FW_OUTBOX_VERSION 1u
#define FW_OUTBOX_RECORD (4 + 4 + 4 + 1 + 1 + FW_TAG_UID_MAX)
#define FW_OUTBOX_STORE_MAX (4 + FW_OUTBOX_LEN * FW_OUTBOX_RECORD + 4)

void fw_outbox__clear(struct fw_outbox *o);
/* Appends e (copied, in-flight flag cleared). FW_OK or FW_ERR_FULL. */
int fw_outbox__push(struct fw_outbox *o, const struct fw_outbox_entry *e);
/* Index of the in-flight entry carrying token, or -1. */
int fw_outbox__find_token(const struct fw_outbox *o, uint32_t token);
/* Removes entry i, keeping the order of the rest. */
void fw_outbox__remove(struct fw_outbox *o, int i);
/* After a connection loss: every in-flight entry becomes unsent again. Returns how many. */
unsigned fw_outbox__requeue(struct fw_outbox *o);
/* Entries handed to the network. */
unsigned fw_outbox__in_flight(const struct fw_outbox *o);
/* Has an entry for item_id? */
bool fw_outbox__has_item(const struct fw_outbox *o, int32_t item_id);
/* Largest seq in the outbox (0 when empty). */
uint32_t fw_outbox__max_seq(const struct fw_outbox *o);

/* Serialises into buf (cap >= FW_OUTBOX_STORE_MAX for a full outbox). Returns the length
   or FW_ERR_TOO_BIG. */
int fw_outbox__encode(const struct fw_outbox *o, uint8_t *buf, size_t cap);
/* Parses a stored outbox. FW_OK, or FW_ERR_INVAL when corrupt (o is then left empty). */
int fw_outbox__decode(struct fw_outbox *o, const uint8_t *buf, size_t len);

#endif /* FW_OUTBOX_H */
