/*
 * hx/mqtt_frame.h - a pure reader of MQTT fixed headers (3.1.1 and 5), one packet at a time.
 *
 * The fault proxy reads every byte stream packet by packet with hx_mqtt_frame_parse(); the
 * function touches nothing but its arguments (no allocation, no globals, no I/O), so a
 * libFuzzer target can call it directly. It reads the fixed header (type, flags: DUP, QoS,
 * RETAIN; the remaining-length varint) and, once the whole packet is in the buffer, the
 * packet identifier of the packets that carry one (PUBLISH with QoS > 0, PUBACK, PUBREC,
 * PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK).
 *
 * Ownership: the caller owns buf and the frame; nothing is kept between calls.
 */
#ifndef HX_MQTT_FRAME_H
#define HX_MQTT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* MQTT control packet types (fixed header bits 7..4). 0 is reserved (malformed). */
enum hx_mqtt_type {
    HX_MQTT_RESERVED = 0,
    HX_MQTT_CONNECT = 1,
    HX_MQTT_CONNACK = 2,
    HX_MQTT_PUBLISH = 3,
    HX_MQTT_PUBACK = 4,
    HX_MQTT_PUBREC = 5,
    HX_MQTT_PUBREL = 6,
    HX_MQTT_PUBCOMP = 7,
    HX_MQTT_SUBSCRIBE = 8,
    HX_MQTT_SUBACK = 9,
    HX_MQTT_UNSUBSCRIBE = 10,
    HX_MQTT_UNSUBACK = 11,
    HX_MQTT_PINGREQ = 12,
    HX_MQTT_PINGRESP = 13,
    HX_MQTT_DISCONNECT = 14,
    HX_MQTT_AUTH = 15, /* MQTT 5 only; reserved in 3.1.1, accepted here */
};
#define HX_MQTT_TYPE_COUNT 16

/* The largest remaining length MQTT can express (4 varint bytes): 268,435,455. */
#define HX_MQTT_MAX_REMAINING 268435455u
/* The longest fixed header: 1 type byte + 4 varint bytes. */
#define HX_MQTT_MAX_HEADER 5u

/* What hx_mqtt_frame_parse() found at the start of the buffer. */
enum hx_mqtt_parse_result {
    HX_MQTT_FRAME_COMPLETE = 1,  /* a whole packet: frame filled, total_len bytes long */
    HX_MQTT_FRAME_NEED_MORE = 0, /* a valid prefix: read more bytes and call again */
    HX_MQTT_FRAME_MALFORMED = -1 /* not MQTT framing: frame->error says why */
};

/* Why a frame is malformed. */
enum hx_mqtt_frame_error {
    HX_MQTT_FRAME_OK = 0,
    HX_MQTT_FRAME_ERR_TYPE0,        /* packet type 0 is reserved */
    HX_MQTT_FRAME_ERR_VARINT,       /* remaining length needs a 5th byte (continuation bit on the 4th) */
    HX_MQTT_FRAME_ERR_FLAGS,        /* fixed-header flags not allowed for this type (incl. QoS 3) */
    HX_MQTT_FRAME_ERR_SHORT,        /* remaining length too short for the packet id / topic it must hold */
};

struct hx_mqtt_frame {
    uint8_t type;            /* enum hx_mqtt_type */
    uint8_t flags;           /* low nibble of byte 0 */
    bool dup;                /* PUBLISH only: DUP flag */
    uint8_t qos;             /* PUBLISH only: 0..2 */
    bool retain;             /* PUBLISH only: RETAIN flag */
    uint32_t remaining_len;  /* from the varint */
    uint8_t header_len;      /* 2..5: type byte + varint bytes */
    size_t total_len;        /* header_len + remaining_len: the packet's size on the wire */
    bool has_packet_id;      /* set when COMPLETE and the type carries an id */
    uint16_t packet_id;
    uint16_t topic_len;      /* PUBLISH only (when COMPLETE): length of the topic name */
    size_t topic_off;        /* PUBLISH only (when COMPLETE): offset of the topic in buf */
    enum hx_mqtt_frame_error error; /* set when MALFORMED */
};

/**
 * Read the MQTT packet at the start of buf[0..len).
 *
 * @return HX_MQTT_FRAME_COMPLETE when buf holds the whole packet (frame->total_len bytes,
 *         possibly fewer than len: the rest belongs to the next packet);
 *         HX_MQTT_FRAME_NEED_MORE when buf is a valid but incomplete prefix (len 0 included).
 *         Once the fixed header is complete, frame->type/flags/remaining_len/header_len/
 *         total_len are already filled, so a caller can refuse an oversize packet early;
 *         HX_MQTT_FRAME_MALFORMED when the bytes cannot be MQTT; frame->error says why.
 * Never reads beyond buf[len-1]; buf may be NULL when len is 0. frame must not be NULL.
 */
int hx_mqtt_frame_parse(const uint8_t *buf, size_t len, struct hx_mqtt_frame *frame);

/** "PUBLISH", "PUBACK", ... ("RESERVED" for 0, "?" outside 0..15). Static strings. */
const char *hx_mqtt_type_name(int type);

/** A short text for a frame error ("remaining length longer than 4 bytes", ...). */
const char *hx_mqtt_frame_strerror(enum hx_mqtt_frame_error error);

/**
 * Encode a remaining length as an MQTT varint into out (at least 4 bytes).
 * @return the number of bytes written (1..4), or 0 when value > HX_MQTT_MAX_REMAINING.
 */
size_t hx_mqtt_varint_encode(uint32_t value, uint8_t out[4]);

#ifdef __cplusplus
}
#endif

#endif /* HX_MQTT_FRAME_H */
