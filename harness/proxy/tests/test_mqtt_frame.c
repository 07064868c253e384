/*
 * test_mqtt_frame.c - unit tests of hx_mqtt_frame_parse() on golden byte vectors.
 *
 * Vectors marked "captured" were recorded from mosquitto_pub / mosquitto_sub 2.0.11 talking
 * to a TCP listener that printed what it received (a Python socket that answered CONNACK);
 * the others are built by hand from the MQTT 3.1.1 specification, section noted.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "hx/mqtt_frame.h"

/* captured: mosquitto_pub -i dev-1 -t item_registration -m '{"id":7}' -q 1 (CONNECT, 3.1.1,
   clean session, keep-alive 60) */
static const uint8_t connect_dev1[] = {
    0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x05,
    'd', 'e', 'v', '-', '1',
};
/* captured: the PUBLISH of the same command (QoS 1, packet id 1) */
static const uint8_t publish_qos1[] = {
    0x32, 0x1d, 0x00, 0x11, 'i', 't', 'e', 'm', '_', 'r', 'e', 'g', 'i', 's', 't', 'r', 'a',
    't', 'i', 'o', 'n', 0x00, 0x01, '{', '"', 'i', 'd', '"', ':', '7', '}',
};
/* captured: mosquitto_pub -t item_registration -m '{"id":7}' -q 0 (PUBLISH then DISCONNECT) */
static const uint8_t publish_qos0_then_disconnect[] = {
    0x30, 0x1b, 0x00, 0x11, 'i', 't', 'e', 'm', '_', 'r', 'e', 'g', 'i', 's', 't', 'r', 'a',
    't', 'i', 'o', 'n', '{', '"', 'i', 'd', '"', ':', '7', '}', 0xe0, 0x00,
};
/* captured: mosquitto_sub -i dev-2 -t item_registered -q 1 (SUBSCRIBE, packet id 1) */
static const uint8_t subscribe_qos1[] = {
    0x82, 0x14, 0x00, 0x01, 0x00, 0x0f, 'i', 't', 'e', 'm', '_', 'r', 'e', 'g', 'i', 's', 't',
    'e', 'r', 'e', 'd', 0x01,
};
/* spec 3.4: PUBACK for packet id 7 */
static const uint8_t puback_7[] = { 0x40, 0x02, 0x00, 0x07 };
/* spec 3.6: PUBREL for packet id 0x1234 (flags must be 0010) */
static const uint8_t pubrel_1234[] = { 0x62, 0x02, 0x12, 0x34 };
/* spec 3.12: PINGREQ, remaining length 0 */
static const uint8_t pingreq[] = { 0xc0, 0x00 };

static struct hx_mqtt_frame fr;

static int parse(const uint8_t *b, size_t n)
{
    return hx_mqtt_frame_parse(b, n, &fr);
}

START_TEST(a_captured_connect_is_one_complete_frame)
{
    ck_assert_int_eq(parse(connect_dev1, sizeof(connect_dev1)), HX_MQTT_FRAME_COMPLETE);
    ck_assert_int_eq(fr.type, HX_MQTT_CONNECT);
    ck_assert_uint_eq(fr.remaining_len, 17);
    ck_assert_uint_eq(fr.header_len, 2);
    ck_assert_uint_eq(fr.total_len, sizeof(connect_dev1));
    ck_assert(!fr.has_packet_id);
}
END_TEST

START_TEST(a_qos1_publish_yields_its_topic_and_packet_id)
{
    ck_assert_int_eq(parse(publish_qos1, sizeof(publish_qos1)), HX_MQTT_FRAME_COMPLETE);
    ck_assert_int_eq(fr.type, HX_MQTT_PUBLISH);
    ck_assert_int_eq(fr.qos, 1);
    ck_assert(!fr.dup);
    ck_assert(!fr.retain);
    ck_assert(fr.has_packet_id);
    ck_assert_uint_eq(fr.packet_id, 1);
    ck_assert_uint_eq(fr.topic_len, 17);
    ck_assert_int_eq(memcmp(publish_qos1 + fr.topic_off, "item_registration", 17), 0);
}
END_TEST

START_TEST(a_dup_retain_qos2_publish_sets_every_flag)
{
    uint8_t b[sizeof(publish_qos1)];
    memcpy(b, publish_qos1, sizeof(b));
    b[0] = 0x3d; /* DUP | QoS 2 | RETAIN */
    ck_assert_int_eq(parse(b, sizeof(b)), HX_MQTT_FRAME_COMPLETE);
    ck_assert(fr.dup);
    ck_assert_int_eq(fr.qos, 2);
    ck_assert(fr.retain);
    ck_assert_uint_eq(fr.packet_id, 1);
}
END_TEST

START_TEST(a_qos0_publish_has_no_packet_id_and_the_next_frame_follows)
{
    const uint8_t *b = publish_qos0_then_disconnect;
    size_t n = sizeof(publish_qos0_then_disconnect);
    ck_assert_int_eq(parse(b, n), HX_MQTT_FRAME_COMPLETE);
    ck_assert(!fr.has_packet_id);
    ck_assert_uint_eq(fr.total_len, 29);
    ck_assert_int_eq(parse(b + 29, n - 29), HX_MQTT_FRAME_COMPLETE);
    ck_assert_int_eq(fr.type, HX_MQTT_DISCONNECT);
    ck_assert_uint_eq(fr.total_len, 2);
}
END_TEST

START_TEST(acknowledgements_and_subscribe_carry_packet_ids)
{
    ck_assert_int_eq(parse(subscribe_qos1, sizeof(subscribe_qos1)), HX_MQTT_FRAME_COMPLETE);
    ck_assert_int_eq(fr.type, HX_MQTT_SUBSCRIBE);
    ck_assert_uint_eq(fr.packet_id, 1);
    ck_assert_int_eq(parse(puback_7, sizeof(puback_7)), HX_MQTT_FRAME_COMPLETE);
    ck_assert_int_eq(fr.type, HX_MQTT_PUBACK);
    ck_assert_uint_eq(fr.packet_id, 7);
    ck_assert_int_eq(parse(pubrel_1234, sizeof(pubrel_1234)), HX_MQTT_FRAME_COMPLETE);
    ck_assert_uint_eq(fr.packet_id, 0x1234);
}
END_TEST

START_TEST(a_zero_length_packet_is_complete_in_two_bytes)
{
    ck_assert_int_eq(parse(pingreq, sizeof(pingreq)), HX_MQTT_FRAME_COMPLETE);
    ck_assert_int_eq(fr.type, HX_MQTT_PINGREQ);
    ck_assert_uint_eq(fr.remaining_len, 0);
    ck_assert_uint_eq(fr.total_len, 2);
}
END_TEST

START_TEST(an_empty_buffer_needs_more)
{
    ck_assert_int_eq(parse(NULL, 0), HX_MQTT_FRAME_NEED_MORE);
    ck_assert_int_eq(parse(pingreq, 1), HX_MQTT_FRAME_NEED_MORE);
}
END_TEST

START_TEST(every_split_of_a_packet_needs_more_until_the_last_byte)
{
    for (size_t n = 0; n < sizeof(publish_qos1); n++)
        ck_assert_int_eq(parse(publish_qos1, n), HX_MQTT_FRAME_NEED_MORE);
    ck_assert_int_eq(parse(publish_qos1, sizeof(publish_qos1)), HX_MQTT_FRAME_COMPLETE);
}
END_TEST

START_TEST(the_header_is_known_before_the_body_arrives)
{
    /* spec 2.2.3: 0x7f = 127, the largest 1-byte length */
    const uint8_t b[] = { 0x30, 0x7f, 0x00, 0x01 };
    ck_assert_int_eq(parse(b, sizeof(b)), HX_MQTT_FRAME_NEED_MORE);
    ck_assert_uint_eq(fr.remaining_len, 127);
    ck_assert_uint_eq(fr.total_len, 129);
}
END_TEST

START_TEST(a_two_byte_varint_is_read_as_captured)
{
    /* captured: mosquitto_pub -t t -s -q 0 with 200 bytes of 'a': 30 cb 01 = 203 */
    uint8_t b[206];
    b[0] = 0x30; b[1] = 0xcb; b[2] = 0x01; b[3] = 0x00; b[4] = 0x01; b[5] = 't';
    memset(b + 6, 'a', 200);
    ck_assert_int_eq(parse(b, sizeof(b)), HX_MQTT_FRAME_COMPLETE);
    ck_assert_uint_eq(fr.remaining_len, 203);
    ck_assert_uint_eq(fr.header_len, 3);
    ck_assert_uint_eq(fr.total_len, 206);
}
END_TEST

START_TEST(the_spec_boundary_lengths_decode_exactly)
{
    /* spec 2.2.3 table 2.4: the first and last value of each varint size */
    static const struct { uint8_t b[5]; size_t n; uint32_t v; } t[] = {
        { { 0xd0, 0x00 }, 2, 0 },
        { { 0xd0, 0x7f }, 2, 127 },
        { { 0xd0, 0x80, 0x01 }, 3, 128 },
        { { 0xd0, 0xff, 0x7f }, 3, 16383 },
        { { 0xd0, 0x80, 0x80, 0x01 }, 4, 16384 },
        { { 0xd0, 0xff, 0xff, 0x7f }, 4, 2097151 },
        { { 0xd0, 0x80, 0x80, 0x80, 0x01 }, 5, 2097152 },
        { { 0xd0, 0xff, 0xff, 0xff, 0x7f }, 5, 268435455 },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int r = parse(t[i].b, t[i].n);
        ck_assert_int_eq(r, t[i].v == 0 ? HX_MQTT_FRAME_COMPLETE : HX_MQTT_FRAME_NEED_MORE);
        ck_assert_uint_eq(fr.remaining_len, t[i].v);
        ck_assert_uint_eq(fr.header_len, t[i].n);
    }
}
END_TEST

START_TEST(the_maximum_varint_announces_256_mib)
{
    const uint8_t b[] = { 0x30, 0xff, 0xff, 0xff, 0x7f };
    ck_assert_int_eq(parse(b, sizeof(b)), HX_MQTT_FRAME_NEED_MORE);
    ck_assert_uint_eq(fr.remaining_len, HX_MQTT_MAX_REMAINING);
    ck_assert_uint_eq(fr.total_len, (size_t)HX_MQTT_MAX_REMAINING + 5);
}
END_TEST

START_TEST(a_five_byte_varint_is_malformed)
{
    const uint8_t b[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x01 };
    ck_assert_int_eq(parse(b, sizeof(b)), HX_MQTT_FRAME_MALFORMED);
    ck_assert_int_eq(fr.error, HX_MQTT_FRAME_ERR_VARINT);
    /* known as soon as the 4th length byte has its continuation bit */
    ck_assert_int_eq(parse(b, 5), HX_MQTT_FRAME_MALFORMED);
    ck_assert_int_eq(parse(b, 4), HX_MQTT_FRAME_NEED_MORE);
}
END_TEST

START_TEST(packet_type_zero_is_malformed)
{
    const uint8_t b[] = { 0x00, 0x00 };
    ck_assert_int_eq(parse(b, 1), HX_MQTT_FRAME_MALFORMED);
    ck_assert_int_eq(fr.error, HX_MQTT_FRAME_ERR_TYPE0);
}
END_TEST

START_TEST(forbidden_flags_are_malformed)
{
    const uint8_t qos3[] = { 0x36, 0x04, 0x00, 0x01, 't', 0x00 };
    const uint8_t pubrel_flags0[] = { 0x60, 0x02, 0x00, 0x01 };
    const uint8_t puback_flags[] = { 0x41, 0x02, 0x00, 0x01 };
    ck_assert_int_eq(parse(qos3, sizeof(qos3)), HX_MQTT_FRAME_MALFORMED);
    ck_assert_int_eq(fr.error, HX_MQTT_FRAME_ERR_FLAGS);
    ck_assert_int_eq(parse(pubrel_flags0, sizeof(pubrel_flags0)), HX_MQTT_FRAME_MALFORMED);
    ck_assert_int_eq(parse(puback_flags, sizeof(puback_flags)), HX_MQTT_FRAME_MALFORMED);
}
END_TEST

START_TEST(lengths_too_short_for_their_fields_are_malformed)
{
    const uint8_t puback_short[] = { 0x40, 0x01, 0x00 };
    const uint8_t publish_topic_overrun[] = { 0x32, 0x04, 0x00, 0x09, 'a', 'b' };
    ck_assert_int_eq(parse(puback_short, sizeof(puback_short)), HX_MQTT_FRAME_MALFORMED);
    ck_assert_int_eq(fr.error, HX_MQTT_FRAME_ERR_SHORT);
    ck_assert_int_eq(parse(publish_topic_overrun, sizeof(publish_topic_overrun)),
                     HX_MQTT_FRAME_MALFORMED);
}
END_TEST

START_TEST(varint_encoding_round_trips_through_the_parser)
{
    static const uint32_t v[] = { 0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455 };
    uint8_t b[5], out[4];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = hx_mqtt_varint_encode(v[i], out);
        ck_assert_uint_gt(n, 0);
        b[0] = 0xd0;
        memcpy(b + 1, out, n);
        parse(b, n + 1);
        ck_assert_uint_eq(fr.remaining_len, v[i]);
    }
    ck_assert_uint_eq(hx_mqtt_varint_encode(268435456u, out), 0);
}
END_TEST

START_TEST(random_bytes_never_read_past_the_buffer)
{
    /* A smoke fuzz under ASan: every prefix of pseudo-random buffers. */
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand_r(&seed) % 12);
        uint8_t *b = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            b[i] = (uint8_t)rand_r(&seed);
        int r = hx_mqtt_frame_parse(b, n, &fr);
        ck_assert(r == HX_MQTT_FRAME_COMPLETE || r == HX_MQTT_FRAME_NEED_MORE ||
                  r == HX_MQTT_FRAME_MALFORMED);
        if (r == HX_MQTT_FRAME_COMPLETE)
            ck_assert_uint_le(fr.total_len, n);
        free(b);
    }
}
END_TEST

START_TEST(type_names_cover_every_type)
{
    ck_assert_str_eq(hx_mqtt_type_name(HX_MQTT_PUBACK), "PUBACK");
    ck_assert_str_eq(hx_mqtt_type_name(HX_MQTT_AUTH), "AUTH");
    ck_assert_str_eq(hx_mqtt_type_name(16), "?");
    ck_assert_str_eq(hx_mqtt_type_name(-1), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mqtt_frame");
    TCase *tc = tcase_create("parse");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, a_captured_connect_is_one_complete_frame);
    tcase_add_test(tc, a_qos1_publish_yields_its_topic_and_packet_id);
    tcase_add_test(tc, a_dup_retain_qos2_publish_sets_every_flag);
    tcase_add_test(tc, a_qos0_publish_has_no_packet_id_and_the_next_frame_follows);
    tcase_add_test(tc, acknowledgements_and_subscribe_carry_packet_ids);
    tcase_add_test(tc, a_zero_length_packet_is_complete_in_two_bytes);
    tcase_add_test(tc, an_empty_buffer_needs_more);
    tcase_add_test(tc, every_split_of_a_packet_needs_more_until_the_last_byte);
    tcase_add_test(tc, the_header_is_known_before_the_body_arrives);
    tcase_add_test(tc, a_two_byte_varint_is_read_as_captured);
    tcase_add_test(tc, the_spec_boundary_lengths_decode_exactly);
    tcase_add_test(tc, the_maximum_varint_announces_256_mib);
    tcase_add_test(tc, a_five_byte_varint_is_malformed);
    tcase_add_test(tc, packet_type_zero_is_malformed);
    tcase_add_test(tc, forbidden_flags_are_malformed);
    tcase_add_test(tc, lengths_too_short_for_their_fields_are_malformed);
    tcase_add_test(tc, varint_encoding_round_trips_through_the_parser);
    tcase_add_test(tc, random_bytes_never_read_past_the_buffer);
    tcase_add_test(tc, type_names_cover_every_type);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
