/*
 * mqtt_frame.c - the pure MQTT fixed-header reader behind the fault proxy (hx/mqtt_frame.h).
 *
 * No allocation, no globals, no I/O: a libFuzzer target can call hx_mqtt_frame_parse() on
 * any bytes. The proxy calls it on the start of each direction's input buffer and forwards
 * (or drops, delays, duplicates) exactly total_len bytes per COMPLETE result.
 */
#include "hx/mqtt_frame.h"

static const char *const type_names[HX_MQTT_TYPE_COUNT] = {
    "RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
    "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT",
    "AUTH",
};

const char *hx_mqtt_type_name(int type)
{
    if (type < 0 || type >= HX_MQTT_TYPE_COUNT)
        return "?";
    return type_names[type];
}

const char *hx_mqtt_frame_strerror(enum hx_mqtt_frame_error error)
{
    switch (error) {
    case HX_MQTT_FRAME_OK: return "no error";
    case HX_MQTT_FRAME_ERR_TYPE0: return "reserved packet type 0";
    case HX_MQTT_FRAME_ERR_VARINT: return "remaining length longer than 4 bytes";
    case HX_MQTT_FRAME_ERR_FLAGS: return "fixed-header flags not allowed for this packet type";
    case HX_MQTT_FRAME_ERR_SHORT: return "remaining length too short for the packet's fields";
    }
    return "unknown frame error";
}

size_t hx_mqtt_varint_encode(uint32_t value, uint8_t out[4])
{
    size_t n = 0;

    if (value > HX_MQTT_MAX_REMAINING)
        return 0;
    do {
        uint8_t b = (uint8_t)(value % 128u);
        value /= 128u;
        if (value > 0)
            b |= 0x80u;
        out[n++] = b;
    } while (value > 0);
    return n;
}

/* Flags the fixed header must carry for each type (MQTT 3.1.1 table 2.2, same in 5.0);
   PUBLISH (-1) carries DUP/QoS/RETAIN and is checked separately. */
static const int required_flags[HX_MQTT_TYPE_COUNT] = {
    0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0,
};

static int malformed(struct hx_mqtt_frame *f, enum hx_mqtt_frame_error e)
{
    f->error = e;
    return HX_MQTT_FRAME_MALFORMED;
}

static uint16_t read_u16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

int hx_mqtt_frame_parse(const uint8_t *buf, size_t len, struct hx_mqtt_frame *f)
{
    uint32_t value = 0;
    uint32_t mult = 1;
    size_t i;

    *f = (struct hx_mqtt_frame){0};
    if (len == 0 || buf == NULL)
        return HX_MQTT_FRAME_NEED_MORE;

    f->type = (uint8_t)(buf[0] >> 4);
    f->flags = (uint8_t)(buf[0] & 0x0fu);
    if (f->type == HX_MQTT_RESERVED)
        return malformed(f, HX_MQTT_FRAME_ERR_TYPE0);
    if (f->type == HX_MQTT_PUBLISH) {
        f->dup = (f->flags & 0x08u) != 0;
        f->qos = (uint8_t)((f->flags >> 1) & 0x03u);
        f->retain = (f->flags & 0x01u) != 0;
        if (f->qos == 3)
            return malformed(f, HX_MQTT_FRAME_ERR_FLAGS);
    } else if (f->flags != required_flags[f->type]) {
        return malformed(f, HX_MQTT_FRAME_ERR_FLAGS);
    }

    /* Remaining length: 1..4 bytes, 7 bits each, least significant first. */
    for (i = 1;; i++) {
        uint8_t b;
        if (i > 4)
            return malformed(f, HX_MQTT_FRAME_ERR_VARINT);
        if (i >= len)
            return HX_MQTT_FRAME_NEED_MORE;
        b = buf[i];
        value += (uint32_t)(b & 0x7fu) * mult;
        mult *= 128u;
        if ((b & 0x80u) == 0)
            break;
    }
    f->remaining_len = value;
    f->header_len = (uint8_t)(i + 1);
    f->total_len = (size_t)f->header_len + value;

    /* Minimum sizes for what the proxy must read: the topic and packet id of PUBLISH, the
       packet id of the acknowledgement and subscription packets. */
    switch (f->type) {
    case HX_MQTT_PUBLISH:
        if (value < 2u + (f->qos > 0 ? 2u : 0u))
            return malformed(f, HX_MQTT_FRAME_ERR_SHORT);
        break;
    case HX_MQTT_PUBACK: case HX_MQTT_PUBREC: case HX_MQTT_PUBREL: case HX_MQTT_PUBCOMP:
    case HX_MQTT_SUBACK: case HX_MQTT_UNSUBACK:
        if (value < 2u)
            return malformed(f, HX_MQTT_FRAME_ERR_SHORT);
        break;
    case HX_MQTT_SUBSCRIBE: case HX_MQTT_UNSUBSCRIBE:
        /* packet id + at least one topic filter (2-byte length) */
        if (value < 4u)
            return malformed(f, HX_MQTT_FRAME_ERR_SHORT);
        break;
    case HX_MQTT_CONNECT:
        /* protocol name length + at least "MQTT"/"MQIsdp" bytes would be stricter; a
           CONNECT shorter than its fixed fields (2+4+1+1+2) cannot be one. */
        if (value < 10u)
            return malformed(f, HX_MQTT_FRAME_ERR_SHORT);
        break;
    case HX_MQTT_CONNACK:
        if (value < 2u)
            return malformed(f, HX_MQTT_FRAME_ERR_SHORT);
        break;
    default:
        break;
    }

    if (len < f->total_len)
        return HX_MQTT_FRAME_NEED_MORE;

    {
        const uint8_t *body = buf + f->header_len;
        switch (f->type) {
        case HX_MQTT_PUBLISH:
            f->topic_len = read_u16(body);
            f->topic_off = (size_t)f->header_len + 2u;
            if ((uint32_t)f->topic_len + 2u + (f->qos > 0 ? 2u : 0u) > value)
                return malformed(f, HX_MQTT_FRAME_ERR_SHORT);
            if (f->qos > 0) {
                f->has_packet_id = true;
                f->packet_id = read_u16(body + 2u + f->topic_len);
            }
            break;
        case HX_MQTT_PUBACK: case HX_MQTT_PUBREC: case HX_MQTT_PUBREL: case HX_MQTT_PUBCOMP:
        case HX_MQTT_SUBSCRIBE: case HX_MQTT_SUBACK:
        case HX_MQTT_UNSUBSCRIBE: case HX_MQTT_UNSUBACK:
            f->has_packet_id = true;
            f->packet_id = read_u16(body);
            break;
        default:
            break;
        }
    }
    return HX_MQTT_FRAME_COMPLETE;
}
