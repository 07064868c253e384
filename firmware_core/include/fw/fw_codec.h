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

/* Remote commands (docs/protocol.md, "Commands"). */
enum fw_cmd_kind {
    FW_CMD_IDENTIFY = 0,
    FW_CMD_MESSAGE,
    FW_CMD_STATUS,
    FW_CMD_CONFIG,
    FW_CMD_REBOOT,
    FW_CMD_LOCK,
    FW_CMD_UNLOCK,
    FW_CMD_CLEAR_QUEUE,
    FW_CMD_KIND_COUNT
};

/* Why a command was refused; FW_CMD_OK when it was not. */
enum fw_cmd_reason {
    FW_CMD_OK = 0,
    FW_CMD_BAD_PAYLOAD,     /* the payload's own reason: struct fw_command.reject */
    FW_CMD_BAD_CMD_ID,      /* cmd_id empty, too long, or not printable ASCII */
    FW_CMD_UNKNOWN_COMMAND,
    FW_CMD_MISSING_ARG,
    FW_CMD_WRONG_ARG_TYPE,
    FW_CMD_OUT_OF_RANGE,
    FW_CMD_UNKNOWN_ARG,
    FW_CMD_BUSY,            /* reboot / clear_queue while a tag waits for confirm */
    FW_CMD_FLASH_ERROR,     /* a setting could not be persisted */
    FW_CMD_REASON_COUNT
};

/* Argument limits. */
#define FW_IDENTIFY_S_MIN 1
#define FW_IDENTIFY_S_MAX 60
#define FW_IDENTIFY_S_DEFAULT 5
#define FW_CFG_KEEPALIVE_MIN 5
#define FW_CFG_KEEPALIVE_MAX 3600
#define FW_CFG_INV_TIMEOUT_MIN 1
#define FW_CFG_INV_TIMEOUT_MAX 60

/* A decoded command. When reason is not FW_CMD_OK the other fields but cmd_id may be
   unset; has_cmd_id says whether cmd_id could be read (the reply carries null if not). */
struct fw_command {
    bool has_cmd_id;
    char cmd_id[FW_CMD_ID_MAX];
    enum fw_cmd_kind kind;
    uint8_t reason;            /* enum fw_cmd_reason */
    uint8_t reject;            /* enum fw_reject, for FW_CMD_BAD_PAYLOAD */
    char field[24];            /* the field or argument a refusal is about, or "" */
    bool force;                /* reboot, clear_queue */
    uint8_t seconds;           /* identify */
    char text[FW_MESSAGE_MAX]; /* message */
    bool set_keepalive, set_inventory_timeout, set_contrast; /* config */
    uint16_t keepalive_s;
    uint8_t inventory_timeout_s;
    uint8_t contrast;
};

/* A reply; data is the JSON text of an object (NULL: {}), cmd_id NULL: null. */
struct fw_command_reply {
    const char *cmd_id;
    const char *device_id;
    const char *reason;        /* "" when ok */
    const char *data;
};

/* Stable names: "clear_queue"; "out_of_range" (for FW_CMD_BAD_PAYLOAD the payload's
   reason, e.g. "invalid_json"). */
const char *fw_cmd_kind_name(enum fw_cmd_kind kind);
const char *fw_cmd_reason_name(enum fw_cmd_reason reason, enum fw_reject reject);

/* Decode {"cmd_id":..,"cmd":..,"args":{..}} strictly. Returns FW_DECODE_OK when the command
   can run, otherwise a positive number with out->reason (and reject, field) saying why;
   FW_ERR_INVAL for a NULL out or payload with len > 0. */
int fw_decode_command(const void *payload, size_t len, struct fw_command *out);

/* Encode {"cmd_id","device_id","result","reason","data"} into buf; as
   fw_encode_registration. */
int fw_encode_command_reply(char *buf, size_t cap, const struct fw_command_reply *r);

/* The reply up to and including "data": (r->data unused), for a caller that writes the
   data object and the closing brace itself; as fw_encode_registration. At most
   FW_REPLY_HEAD_MAX bytes for any valid cmd_id and device id. */
#define FW_REPLY_HEAD_MAX 224
int fw_encode_command_reply_head(char *buf, size_t cap, const struct fw_command_reply *r);

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
