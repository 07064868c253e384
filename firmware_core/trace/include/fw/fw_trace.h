/*
 * fw_trace.h - the trace format: what one device got and did, record by record.
 *
 * A trace is everything that crossed a device's boundary, in order: the events the
 * platform handed to firmware_core (init, start, tick, connected, message, ...) and, inside
 * each event, every port call the firmware made with what it asked (a publish's topic and
 * payload, a log line, a frame's CRC) and what the platform answered (the publish token,
 * the clock's time, a stored value). Recorded on Linux (fw_trace_recorder.h) and replayed
 * on another build of the same firmware (fw_replay.h), the answers are fed back and the
 * calls must come out byte for byte the same. Layout, versioning: docs/trace.md.
 *
 * The codec is table-driven: each record type has a field layout (fw_trace_layout()), a
 * record is encoded from and decoded into an array of struct fw_trace_field. Decoding
 * never trusts a length: every error names the offset where the bytes went wrong.
 *
 * Ownership: decoded fields point into the caller's buffer and live as long as it does.
 * Portable C11 like firmware_core (it runs on the ARM test image too); allocates nothing.
 */
#ifndef FW_TRACE_H
#define FW_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FW_TRACE_MAGIC "FWTR"
#define FW_TRACE_VERSION 1u
#define FW_TRACE_HEADER_LEN 8u  /* magic, version u8, 3 reserved zero bytes */
#define FW_TRACE_REC_HEAD 5u    /* type u8, body length u32 LE */
#define FW_TRACE_FIELDS_MAX 12
/* Inbound payloads are kept up to this size; beyond it only the length on the wire is
   kept (firmware_core rejects anything above FW_INBOUND_MAX unread). */
#define FW_TRACE_PAYLOAD_MAX 4096u

/* INIT's ports field: which optional ports the platform supplied, and what its MQTT
   client does (fw_device_config.resume_in_flight). */
#define FW_TRACE_PORT_DISPLAY 0x01u
#define FW_TRACE_PORT_LOG 0x02u
#define FW_TRACE_PORT_RESUME 0x04u

enum fw_trace_type {
    /* events: calls into the device (0x01..0x3F) */
    FW_TR_INIT = 0x01,
    FW_TR_START = 0x02,
    FW_TR_STOP = 0x03,
    FW_TR_TICK = 0x04,
    FW_TR_CONNECTED = 0x05,
    FW_TR_CONNECT_FAILED = 0x06,
    FW_TR_CONNECTION_LOST = 0x07,
    FW_TR_MESSAGE = 0x08,
    FW_TR_PUBLISHED = 0x09,
    FW_TR_PUBLISH_REFUSED = 0x0A,
    FW_TR_TAG = 0x0B,
    FW_TR_BUTTON = 0x0C,
    FW_TR_SUBSCRIBED = 0x0D, /* SUBACK: token, granted QoS (or refusal / loss) */
    /* port calls: the device calls out (0x40..0x7F) */
    FW_TR_CONNECT = 0x40,
    FW_TR_PUBLISH = 0x41,
    FW_TR_SUBSCRIBE = 0x42,
    FW_TR_DISCONNECT = 0x43,
    FW_TR_FLUSH = 0x44,
    FW_TR_CLOCK = 0x45,
    FW_TR_STORAGE_READ = 0x46,
    FW_TR_STORAGE_WRITE = 0x47,
    FW_TR_LOG = 0x48,
    FW_TR_RESULT = 0x49, /* what the event call returned (init, tag) */
};

static inline bool fw_trace_is_event(unsigned type)
{
    return type >= 0x01 && type < 0x40;
}

/*
 * One field. Layout letters: 'b' u8, 'h' u16, 'w' u32, 'i' i32, 'q' u64 (all in num,
 * little-endian on disk; 'i' sign-extended), 's' bytes (u32 length + bytes: ptr, len),
 * 'o' optional bytes (u8 present, then 's' if present). A '|' in a layout separates what
 * the firmware asked from what the platform answered (the reply, fed back on replay).
 */
struct fw_trace_field {
    int64_t num;
    const uint8_t *ptr;
    uint32_t len;
    bool present;
};

struct fw_trace_layout {
    uint8_t type;
    const char *name;    /* "publish" */
    const char *fields;  /* "ssbb|iw" */
    const char *names;   /* "topic payload qos retain rc token" */
};

/* The layout of a record type, or NULL for an unknown type. */
const struct fw_trace_layout *fw_trace_layout(unsigned type);

/* How many fields of a layout belong to the request (before the '|'), and in all. */
int fw_trace_request_fields(const struct fw_trace_layout *l);
int fw_trace_field_count(const struct fw_trace_layout *l);

/* ------------------------------------------------------------------ writing */

/* Where encoded bytes go: a buffer (fw_trace_buf_write) or a file the platform owns. */
typedef void (*fw_trace_write_fn)(void *ctx, const void *buf, size_t len);

struct fw_trace_buf {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow; /* a write did not fit: len stays at the last whole write */
};
void fw_trace_buf_write(void *buf, const void *data, size_t len); /* ctx: fw_trace_buf */

/* The 8-byte file header. */
void fw_trace_write_header(fw_trace_write_fn write, void *ctx);

/* Encode one record of a known type from its fields (count = fw_trace_field_count).
   Returns the record's size in bytes, or -1 for an unknown type or a field too long. */
long fw_trace_write(fw_trace_write_fn write, void *ctx, unsigned type,
                    const struct fw_trace_field *fields);

/* ------------------------------------------------------------------ reading */

struct fw_trace_rec {
    uint8_t type;
    const struct fw_trace_layout *layout;
    const uint8_t *raw;  /* the whole record, header included */
    uint32_t size;       /* FW_TRACE_REC_HEAD + body length */
    struct fw_trace_field f[FW_TRACE_FIELDS_MAX];
};

/* What went wrong where: offset is counted from the start of the file. */
struct fw_trace_error {
    uint64_t offset;
    char what[96];
};

/* Check the header of buf (len bytes). 0, or -1 with err filled. */
int fw_trace_check_header(const uint8_t *buf, size_t len, struct fw_trace_error *err);

/*
 * Decode the record at buf (avail bytes; base = its offset in the file, for errors).
 * Returns its size, 0 when avail holds only part of it (read more, or at the end of the
 * file: truncated), or -1 with err filled (unknown type, a field overrunning the body,
 * bytes left over in the body).
 */
long fw_trace_read(const uint8_t *buf, size_t avail, uint64_t base, struct fw_trace_rec *out,
                   struct fw_trace_error *err);

/* One line for people: `publish topic="a/b" payload="{..}" qos=1 retain=0 | rc=0 token=3`,
   with " and \\ after a backslash and other non-printable bytes as \xNN, cut to cap
   (always NUL-terminated). Returns out. */
char *fw_trace_format(const struct fw_trace_rec *r, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* FW_TRACE_H */
