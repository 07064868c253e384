/*
 * fw_codec.h - strict decoding and encoding of the scanner's MQTT payloads.
 *
 * The one place where bytes from the network become typed values (docs/protocol.md,
 * "Payloads"). Decoders take a payload that is NOT NUL-terminated, check its size before
 * parsing, validate UTF-8 themselves, parse with cJSON and check every field's presence,
 * type and range. Encoders write JSON into a caller's buffer, snprintf-style.
 *
 * Memory: decoders use cJSON's heap for the parse only and free it before they return,
 * on every path; the results are copied into the caller's struct (no pointer into the
 * payload or the JSON tree survives). Encoders allocate nothing. Fuzz targets call these
 * functions directly.
 *
 * Return convention of the decoders: FW_DECODE_OK (0) when the payload is accepted,
 * otherwise FW_DECODE_REJECTED(reason), a positive number; fw_decode_reason() turns it back
 * into an enum fw_reject. A NULL payload with len > 0 or a NULL out is FW_ERR_INVAL.
 */
#ifndef FW_CODEC_H
#define FW_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_config.h"
#include "fw/fw_device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FW_DECODE_OK 0
#define FW_DECODE_REJECTED(reason) (1 + (int)(reason))

/* The enum fw_reject of a positive decoder result. */
static inline enum fw_reject fw_decode_reason(int rc)
{
    return (enum fw_reject)(rc - 1);
}

/* Item limits (docs/protocol.md). */
#define FW_ITEM_ID_MIN 1
#define FW_ITEM_ID_MAX 2147483647
#define FW_TAG_QUANTITY_MIN 1
#define FW_TAG_QUANTITY_MAX 100000

/* Characters of the hex form of the longest UID, with the NUL. */
#define FW_TAG_HEX_MAX (2 * FW_TAG_UID_MAX + 1)

/* An item to register, as sent by the backend. */
struct fw_item {
    int32_t item_id;
    int32_t tag_quantity;
    char item_name[FW_ITEM_NAME_MAX]; /* 1..FW_ITEM_NAME_MAX-1 bytes of UTF-8, NUL-terminated */
};

/* The backend's answer to an inventory query. item_id / item_name only when found. */
struct fw_inventory_reply {
    char tag[FW_TAG_HEX_MAX]; /* upper-case hex of a 4, 7 or 10 byte UID */
    bool found;
    int32_t item_id;
    char item_name[FW_ITEM_NAME_MAX];
};

/* A registration as published (the idempotency key is device_id + seq). */
struct fw_registration {
    int32_t item_id;
    int32_t tag_quantity;
    const char *tag_hex;
    const char *device_id;
    uint32_t seq;
};

/* Is buf[0..len) well-formed UTF-8 (no overlongs, surrogates, code points > U+10FFFF or
   truncated sequences)? */
bool fw_utf8_valid(const void *buf, size_t len);

/* Decode an item {"item_id":int,"item_name":string,"tag_quantity":int}. Unknown fields
   are ignored. Returns FW_DECODE_OK or FW_DECODE_REJECTED(reason). */
int fw_decode_item(const void *payload, size_t len, struct fw_item *out);

/* Decode an inventory answer {"tag":hex,"found":bool[,"item_id":int,"item_name":string]}.
   A tag that is not the upper-case hex of a 4, 7 or 10 byte UID is out of range.
   Returns FW_DECODE_OK or FW_DECODE_REJECTED(reason). */
int fw_decode_inventory_reply(const void *payload, size_t len, struct fw_inventory_reply *out);

/* Encode a registration into buf (cap bytes, NUL-terminated). Returns the length without
   the NUL, FW_ERR_TOO_BIG when it does not fit, FW_ERR_INVAL on a NULL argument. Strings
   are JSON-escaped. */
int fw_encode_registration(char *buf, size_t cap, const struct fw_registration *reg);

/* Encode an inventory query {"tag":..,"device_id":..,"seq":..}; as fw_encode_registration. */
int fw_encode_inventory_query(char *buf, size_t cap, const char *tag_hex,
                              const char *device_id, uint32_t seq);

#ifdef __cplusplus
}
#endif

#endif /* FW_CODEC_H */
