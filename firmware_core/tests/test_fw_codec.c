/*
 * test_fw_codec.c - the strict payload codec: every accept and reject rule of
 * docs/protocol.md, the encoders, and the seed's codec defects that must not come back.
 *
 * Payloads are copied into heap buffers of their exact length (no NUL after them), so
 * under ASan any read past the end fails the test. cJSON's allocator is hooked to count
 * live allocations, so a leak or a double free also fails the plain (non-ASan) build.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fw/fw_codec.h"

/* ----------------------------------------------- cJSON allocation counting */

static long live_allocs;
static long frees_without_alloc;

static void *count_malloc(size_t n)
{
    live_allocs++;
    return malloc(n);
}

static void count_free(void *p)
{
    if (p == NULL)
        return;
    if (--live_allocs < 0)
        frees_without_alloc++;
    free(p);
}

static void hooks_setup(void)
{
    cJSON_Hooks hooks = {count_malloc, count_free};
    cJSON_InitHooks(&hooks);
    live_allocs = 0;
    frees_without_alloc = 0;
}

static void hooks_teardown(void)
{
    cJSON_InitHooks(NULL);
}

/* Decodes bytes from an exact-size heap copy; checks that cJSON's memory is all back. */
static int decode_item_bytes(const void *bytes, size_t len, struct fw_item *out)
{
    void *copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);
    int rc = fw_decode_item(copy, len, out);
    free(copy);
    ck_assert_int_eq(live_allocs, 0);
    ck_assert_int_eq(frees_without_alloc, 0);
    return rc;
}

static int decode_item(const char *text, struct fw_item *out)
{
    return decode_item_bytes(text, strlen(text), out);
}

static int decode_reply(const char *text, struct fw_inventory_reply *out)
{
    size_t len = strlen(text);
    void *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    int rc = fw_decode_inventory_reply(copy, len, out);
    free(copy);
    ck_assert_int_eq(live_allocs, 0);
    return rc;
}

#define REJ(r) FW_DECODE_REJECTED(FW_REJECT_##r)

/* --------------------------------------------------------------- items */

START_TEST(a_valid_item_is_decoded_with_all_fields)
{
    struct fw_item it;
    ck_assert_int_eq(decode_item("{\"item_id\":17,\"item_name\":\"Pallet jack\","
                                 "\"tag_quantity\":2}", &it), FW_DECODE_OK);
    ck_assert_int_eq(it.item_id, 17);
    ck_assert_int_eq(it.tag_quantity, 2);
    ck_assert_str_eq(it.item_name, "Pallet jack");
}
END_TEST

START_TEST(unknown_fields_whitespace_and_integral_exponents_are_accepted)
{
    struct fw_item it;
    ck_assert_int_eq(decode_item(" \r\n{ \"x\":[1,{}], \"item_id\" : 1e2, \"item_name\":"
                                 "\"K\\u00e4se \xe2\x82\xac\", \"tag_quantity\":100000.0 }\n\t ",
                                 &it), FW_DECODE_OK);
    ck_assert_int_eq(it.item_id, 100);
    ck_assert_int_eq(it.tag_quantity, 100000);
    ck_assert_str_eq(it.item_name, "K\xc3\xa4se \xe2\x82\xac");
}
END_TEST

START_TEST(the_limits_of_every_range_are_accepted)
{
    struct fw_item it;
    ck_assert_int_eq(decode_item("{\"item_id\":2147483647,\"item_name\":\"x\",\"tag_quantity\":1}",
                                 &it), FW_DECODE_OK);
    ck_assert_int_eq(it.item_id, 2147483647);
    ck_assert_int_eq(decode_item("{\"item_id\":1,\"item_name\":\"x\",\"tag_quantity\":100000}",
                                 &it), FW_DECODE_OK);
    ck_assert_int_eq(it.item_id, 1);
}
END_TEST

/* One payload per rejection rule of docs/protocol.md. */
static const struct {
    const char *payload;
    int expect;
} reject_cases[] = {
    {"", REJ(INVALID_JSON)},
    {"{", REJ(INVALID_JSON)},
    {"{\"item_id\":1,}", REJ(INVALID_JSON)},
    {"nul", REJ(INVALID_JSON)},
    {"{\"item_id\":1,\"item_name\":\"a\",\"tag_quantity\":1} x", REJ(TRAILING_GARBAGE)},
    {"{\"item_id\":1,\"item_name\":\"a\",\"tag_quantity\":1}{}", REJ(TRAILING_GARBAGE)},
    {"[1,2]", REJ(NOT_OBJECT)},
    {"\"item\"", REJ(NOT_OBJECT)},
    {"17", REJ(NOT_OBJECT)},
    {"null", REJ(NOT_OBJECT)},
    {"{\"item_name\":\"a\",\"tag_quantity\":1}", REJ(MISSING_FIELD)},
    {"{\"item_id\":1,\"tag_quantity\":1}", REJ(MISSING_FIELD)},
    {"{\"item_id\":1,\"item_name\":\"a\"}", REJ(MISSING_FIELD)},
    {"{\"ITEM_ID\":1,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(MISSING_FIELD)},
    {"{\"item_id\":\"1\",\"item_name\":\"a\",\"tag_quantity\":1}", REJ(WRONG_TYPE)},
    {"{\"item_id\":1.5,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(WRONG_TYPE)},
    {"{\"item_id\":1,\"item_name\":\"a\",\"tag_quantity\":0.25}", REJ(WRONG_TYPE)},
    {"{\"item_id\":1e999,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(WRONG_TYPE)},
    {"{\"item_id\":true,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(WRONG_TYPE)},
    {"{\"item_id\":null,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(WRONG_TYPE)},
    {"{\"item_id\":1,\"item_name\":7,\"tag_quantity\":1}", REJ(WRONG_TYPE)},
    {"{\"item_id\":1,\"item_name\":[\"a\"],\"tag_quantity\":1}", REJ(WRONG_TYPE)},
    {"{\"item_id\":0,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(OUT_OF_RANGE)},
    {"{\"item_id\":-5,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(OUT_OF_RANGE)},
    {"{\"item_id\":2147483648,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(OUT_OF_RANGE)},
    {"{\"item_id\":1e300,\"item_name\":\"a\",\"tag_quantity\":1}", REJ(OUT_OF_RANGE)},
    {"{\"item_id\":1,\"item_name\":\"a\",\"tag_quantity\":0}", REJ(OUT_OF_RANGE)},
    {"{\"item_id\":1,\"item_name\":\"a\",\"tag_quantity\":100001}", REJ(OUT_OF_RANGE)},
    {"{\"item_id\":1,\"item_name\":\"\",\"tag_quantity\":1}", REJ(NAME_TOO_LONG)},
    {"{\"item_id\":1,\"item_name\":\"123456789012345678901234567890123\",\"tag_quantity\":1}",
     REJ(NAME_TOO_LONG)},
    {"{\"item_id\":1,\"item_name\":\"\xff\",\"tag_quantity\":1}", REJ(NOT_UTF8)},
    {"{\"item_id\":1,\"item_name\":\"\\ud800\",\"tag_quantity\":1}", REJ(INVALID_JSON)},
};

START_TEST(each_malformed_item_is_rejected_with_its_reason)
{
    struct fw_item it;
    for (size_t i = 0; i < sizeof reject_cases / sizeof reject_cases[0]; i++) {
        memset(&it, 0x5a, sizeof it);
        int rc = decode_item(reject_cases[i].payload, &it);
        ck_assert_msg(rc == reject_cases[i].expect, "case %zu '%s': got %d (%s), want %d", i,
                      reject_cases[i].payload, rc,
                      rc > 0 ? fw_reject_name(fw_decode_reason(rc)) : "?",
                      reject_cases[i].expect);
        ck_assert_msg(it.item_id == 0x5a5a5a5a, "case %zu: output written on reject", i);
    }
}
END_TEST

START_TEST(a_name_of_exactly_32_bytes_fits_and_33_do_not)
{
    struct fw_item it;
    ck_assert_int_eq(decode_item("{\"item_id\":1,\"item_name\":\"12345678901234567890123456789012\","
                                 "\"tag_quantity\":1}", &it), FW_DECODE_OK);
    ck_assert_uint_eq(strlen(it.item_name), 32);
    /* 31 ASCII bytes and one 2-byte character: 33 bytes although 32 characters. */
    ck_assert_int_eq(decode_item("{\"item_id\":1,\"item_name\":\"1234567890123456789012345678901"
                                 "\xc3\xa4\",\"tag_quantity\":1}", &it), REJ(NAME_TOO_LONG));
}
END_TEST

START_TEST(a_payload_over_the_inbound_limit_is_rejected_before_parsing)
{
    static char big[FW_INBOUND_MAX + 2];
    const char *json = "{\"item_id\":1,\"item_name\":\"a\",\"tag_quantity\":1}";
    struct fw_item it;
    /* Valid JSON padded with whitespace to exactly the limit: accepted. */
    memset(big, ' ', sizeof big);
    memcpy(big, json, strlen(json));
    ck_assert_int_eq(decode_item_bytes(big, FW_INBOUND_MAX, &it), FW_DECODE_OK);
    /* One byte more: oversize, even though it would parse. */
    ck_assert_int_eq(decode_item_bytes(big, FW_INBOUND_MAX + 1, &it), REJ(OVERSIZE));
    /* Oversize wins over everything else, even bytes that are not UTF-8. */
    memset(big, 0xff, sizeof big);
    ck_assert_int_eq(decode_item_bytes(big, FW_INBOUND_MAX + 1, &it), REJ(OVERSIZE));
}
END_TEST

/* The parser recurses once per level: a board's stack must not be at a payload's mercy. */
START_TEST(nesting_deeper_than_the_limit_is_rejected_before_parsing)
{
    static char buf[FW_INBOUND_MAX + 1];
    struct fw_item it;
    int head = snprintf(buf, sizeof buf, "{\"item_id\":1,\"item_name\":\"a\",\"tag_quantity\":1,\"p\":");
    /* The object is one level: FW_JSON_DEPTH_MAX - 1 arrays inside it still parse. */
    for (int levels = FW_JSON_DEPTH_MAX - 1; levels <= FW_JSON_DEPTH_MAX; levels++) {
        int n = head;
        memset(buf + n, '[', (size_t)levels);
        memset(buf + n + levels, ']', (size_t)levels);
        n += 2 * levels;
        buf[n++] = '}';
        ck_assert_int_eq(decode_item_bytes(buf, (size_t)n, &it),
                         levels < FW_JSON_DEPTH_MAX ? FW_DECODE_OK : REJ(TOO_DEEP));
    }
    /* The heaviest: 1 KiB of '[', never handed to the parser (it is also not valid JSON). */
    memset(buf + head, '[', FW_INBOUND_MAX - (size_t)head);
    ck_assert_int_eq(decode_item_bytes(buf, FW_INBOUND_MAX, &it), REJ(TOO_DEEP));
    /* Brackets inside strings, quotes escaped or not, do not count. */
    int n = snprintf(buf, sizeof buf, "{\"item_id\":1,\"item_name\":\"[[[[[[[[[[\\\"{{{{{{{{{{\","
                                      "\"tag_quantity\":1}");
    ck_assert_int_eq(decode_item_bytes(buf, (size_t)n, &it), FW_DECODE_OK);
    ck_assert_str_eq(it.item_name, "[[[[[[[[[[\"{{{{{{{{{{");
}
END_TEST

START_TEST(a_payload_that_is_not_nul_terminated_is_read_within_its_length)
{
    /* The valid item followed, in the same buffer, by garbage outside len. */
    const char *text = "{\"item_id\":3,\"item_name\":\"ab\",\"tag_quantity\":4}GARBAGE";
    size_t len = strlen(text) - strlen("GARBAGE");
    struct fw_item it;
    ck_assert_int_eq(decode_item_bytes(text, len, &it), FW_DECODE_OK);
    ck_assert_int_eq(it.item_id, 3);
    /* Every truncation of the valid item is rejected, never read past its end. */
    for (size_t n = 0; n < len; n++)
        ck_assert_int_ne(decode_item_bytes(text, n, &it), FW_DECODE_OK);
}
END_TEST

START_TEST(a_nul_byte_inside_the_payload_is_invalid_json)
{
    const char text[] = "{\"item_id\":3,\"item_name\":\"a\0b\",\"tag_quantity\":4}";
    struct fw_item it;
    ck_assert_int_eq(decode_item_bytes(text, sizeof text - 1, &it), REJ(INVALID_JSON));
}
END_TEST

/* ---------------------------------------------------------------- UTF-8 */

START_TEST(utf8_validation_accepts_well_formed_text)
{
    const char *ok[] = {"", "plain", "\xc3\xa4", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                        "\xf4\x8f\xbf\xbf" /* U+10FFFF */, "\xed\x9f\xbf" /* U+D7FF */,
                        "\xee\x80\x80" /* U+E000 */};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_assert_msg(fw_utf8_valid(ok[i], strlen(ok[i])), "case %zu", i);
}
END_TEST

START_TEST(utf8_validation_refuses_overlongs_surrogates_big_code_points_and_truncation)
{
    const char *bad[] = {
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xf0\x80\x80\xaf", /* overlong, 4 bytes */
        "\xed\xa0\x80",     /* U+D800, a surrogate */
        "\xed\xbf\xbf",     /* U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80", /* lead byte beyond Unicode */
        "\xff",
        "\x80",             /* stray continuation */
        "a\xe2\x82",        /* truncated at the end */
        "\xe2\x28\xa1",     /* bad continuation */
        "\xc3",             /* truncated */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!fw_utf8_valid(bad[i], strlen(bad[i])), "case %zu", i);
        char payload[96];
        int n = snprintf(payload, sizeof payload,
                         "{\"item_id\":1,\"item_name\":\"%s\",\"tag_quantity\":1}", bad[i]);
        struct fw_item it;
        ck_assert_int_eq(decode_item_bytes(payload, (size_t)n, &it), REJ(NOT_UTF8));
    }
}
END_TEST

/* ----------------------------------------------------- inventory replies */

START_TEST(an_inventory_answer_found_and_not_found_are_decoded)
{
    struct fw_inventory_reply r;
    ck_assert_int_eq(decode_reply("{\"tag\":\"04A1B2C3\",\"found\":true,\"item_id\":17,"
                                  "\"item_name\":\"Pallet jack\"}", &r), FW_DECODE_OK);
    ck_assert(r.found);
    ck_assert_str_eq(r.tag, "04A1B2C3");
    ck_assert_int_eq(r.item_id, 17);
    ck_assert_str_eq(r.item_name, "Pallet jack");
    ck_assert_int_eq(decode_reply("{\"tag\":\"04A1B2C3D4E5F6\",\"found\":false}", &r),
                     FW_DECODE_OK);
    ck_assert(!r.found);
    ck_assert_str_eq(r.tag, "04A1B2C3D4E5F6");
}
END_TEST

START_TEST(a_malformed_inventory_answer_is_rejected_with_its_reason)
{
    struct fw_inventory_reply r;
    ck_assert_int_eq(decode_reply("{\"found\":false}", &r), REJ(MISSING_FIELD));
    ck_assert_int_eq(decode_reply("{\"tag\":\"04A1B2C3\"}", &r), REJ(MISSING_FIELD));
    ck_assert_int_eq(decode_reply("{\"tag\":\"04A1B2C3\",\"found\":1}", &r), REJ(WRONG_TYPE));
    ck_assert_int_eq(decode_reply("{\"tag\":4,\"found\":false}", &r), REJ(WRONG_TYPE));
    ck_assert_int_eq(decode_reply("{\"tag\":\"04a1b2c3\",\"found\":false}", &r),
                     REJ(OUT_OF_RANGE));
    ck_assert_int_eq(decode_reply("{\"tag\":\"04A1B2\",\"found\":false}", &r),
                     REJ(OUT_OF_RANGE));
    ck_assert_int_eq(decode_reply("{\"tag\":\"04A1B2C3\",\"found\":true}", &r),
                     REJ(MISSING_FIELD));
    ck_assert_int_eq(decode_reply("{\"tag\":\"04A1B2C3\",\"found\":true,\"item_id\":0,"
                                  "\"item_name\":\"a\"}", &r), REJ(OUT_OF_RANGE));
    ck_assert_int_eq(decode_reply("[]", &r), REJ(NOT_OBJECT));
}
END_TEST

/* -------------------------------------------------------------- encoders */

START_TEST(a_registration_is_encoded_as_the_protocol_shows_it)
{
    char buf[FW_PAYLOAD_MAX];
    struct fw_registration reg = {17, 2, "04A1B2C3", "scanner-1", 42};
    const char *want = "{\"item_id\":17,\"tag_quantity\":2,\"tag\":\"04A1B2C3\","
                       "\"device_id\":\"scanner-1\",\"seq\":42}";
    ck_assert_int_eq(fw_encode_registration(buf, sizeof buf, &reg), (int)strlen(want));
    ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(an_inventory_query_is_encoded_with_its_idempotency_key)
{
    char buf[FW_PAYLOAD_MAX];
    const char *want = "{\"tag\":\"04A1B2C3\",\"device_id\":\"scanner-1\",\"seq\":4294967295}";
    ck_assert_int_eq(fw_encode_inventory_query(buf, sizeof buf, "04A1B2C3", "scanner-1",
                                               4294967295u), (int)strlen(want));
    ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(quotes_backslashes_and_control_characters_in_ids_are_escaped)
{
    char buf[FW_PAYLOAD_MAX];
    ck_assert_int_gt(fw_encode_inventory_query(buf, sizeof buf, "04A1B2C3", "a\"b\\c\x01", 1), 0);
    ck_assert_str_eq(buf, "{\"tag\":\"04A1B2C3\",\"device_id\":\"a\\\"b\\\\c\\u0001\",\"seq\":1}");
    /* And what we write, we can read back as JSON. */
    cJSON *j = cJSON_Parse(buf);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "device_id")->valuestring, "a\"b\\c\x01");
    cJSON_Delete(j);
}
END_TEST

START_TEST(an_encoder_refuses_every_buffer_too_small_and_fills_an_exact_one)
{
    struct fw_registration reg = {2147483647, 100000, "0102030405060708090A", "scanner-1", 7};
    char ref[FW_PAYLOAD_MAX];
    int len = fw_encode_registration(ref, sizeof ref, &reg);
    ck_assert_int_gt(len, 0);
    for (size_t cap = 0; cap <= (size_t)len; cap++) {
        char *buf = malloc(cap ? cap : 1);
        ck_assert_int_eq(fw_encode_registration(cap ? buf : buf, cap, &reg), FW_ERR_TOO_BIG);
        free(buf);
    }
    char *exact = malloc((size_t)len + 1);
    ck_assert_int_eq(fw_encode_registration(exact, (size_t)len + 1, &reg), len);
    ck_assert_str_eq(exact, ref);
    free(exact);
    ck_assert_int_eq(fw_encode_registration(NULL, 10, &reg), FW_ERR_INVAL);
}
END_TEST

/* ------------------------------------------------ the seed's defects */

/* Seed defect: cJSON_Delete on the child items as well as the root (double free). The
   allocation hooks count frees; ASan would also abort on the second free. */
START_TEST(seed_defect_decoding_frees_the_json_tree_exactly_once)
{
    struct fw_item it;
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(decode_item("{\"item_id\":5,\"item_name\":\"Crate\",\"tag_quantity\":3,"
                                     "\"extra\":{\"nested\":[1,2,3]}}", &it), FW_DECODE_OK);
        ck_assert_int_eq(frees_without_alloc, 0);
    }
}
END_TEST

/* Seed defect: the item kept a pointer to the name inside the freed JSON tree. */
START_TEST(seed_defect_the_name_survives_the_payload_being_overwritten_and_freed)
{
    const char *text = "{\"item_id\":5,\"item_name\":\"Forklift battery\",\"tag_quantity\":3}";
    size_t len = strlen(text);
    char *payload = malloc(len);
    memcpy(payload, text, len);
    struct fw_item it;
    ck_assert_int_eq(fw_decode_item(payload, len, &it), FW_DECODE_OK);
    memset(payload, 'X', len);
    free(payload);
    /* A leftover pointer into the payload or the tree would now read 'X' or freed memory. */
    ck_assert_str_eq(it.item_name, "Forklift battery");
    ck_assert_int_eq(live_allocs, 0);
}
END_TEST

/* Seed defect: a 5-byte buffer for the hex of a 4-byte tag. */
START_TEST(seed_defect_tag_hex_needs_two_chars_per_byte_and_a_nul)
{
    const uint8_t uid[10] = {0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29};
    char out[21];
    ck_assert_int_eq(fw_tag_to_hex(uid, 4, out, 5), FW_ERR_TOO_BIG); /* the seed's buffer */
    ck_assert_int_eq(fw_tag_to_hex(uid, 4, out, 8), FW_ERR_TOO_BIG);
    ck_assert_int_eq(fw_tag_to_hex(uid, 4, out, 9), 8);
    ck_assert_str_eq(out, "04A1B2C3");
    ck_assert_int_eq(fw_tag_to_hex(uid, 7, out, 14), FW_ERR_TOO_BIG);
    ck_assert_int_eq(fw_tag_to_hex(uid, 7, out, 15), 14);
    ck_assert_str_eq(out, "04A1B2C3D4E5F6");
    ck_assert_int_eq(fw_tag_to_hex(uid, 10, out, 20), FW_ERR_TOO_BIG);
    ck_assert_int_eq(fw_tag_to_hex(uid, 10, out, 21), 20);
    ck_assert_str_eq(out, "04A1B2C3D4E5F6071829");
    ck_assert_int_eq(fw_tag_to_hex(NULL, 4, out, 21), FW_ERR_INVAL);
    ck_assert_int_eq(fw_tag_to_hex(uid, 0, out, 21), FW_ERR_INVAL);
}
END_TEST

/* Seed defect: the item was leaked on every parse error. Every reject class, many times;
   the hooks see any allocation left behind (and LSan does in the sanitizer build). */
START_TEST(seed_defect_no_reject_class_leaks_memory)
{
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof reject_cases / sizeof reject_cases[0]; i++) {
            struct fw_item it;
            (void)decode_item(reject_cases[i].payload, &it);
            ck_assert_int_eq(live_allocs, 0);
        }
    }
}
END_TEST

START_TEST(every_reject_reason_and_error_has_a_distinct_name)
{
    for (int i = 0; i < FW_REJECT_COUNT; i++) {
        ck_assert_str_ne(fw_reject_name((enum fw_reject)i), "unknown");
        for (int k = 0; k < i; k++)
            ck_assert_str_ne(fw_reject_name((enum fw_reject)i), fw_reject_name((enum fw_reject)k));
    }
    for (int e = FW_OK; e >= FW_ERR_TOO_BIG; e--)
        ck_assert_str_ne(fw_strerror(e), "unknown error");
    ck_assert_str_eq(fw_strerror(-99), "unknown error");
    ck_assert_str_eq(fw_reject_name(FW_REJECT_MISSING_FIELD), "missing_field");
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("fw_codec");
    TCase *t = tcase_create("codec");
    tcase_add_checked_fixture(t, hooks_setup, hooks_teardown);
    tcase_add_test(t, a_valid_item_is_decoded_with_all_fields);
    tcase_add_test(t, unknown_fields_whitespace_and_integral_exponents_are_accepted);
    tcase_add_test(t, the_limits_of_every_range_are_accepted);
    tcase_add_test(t, each_malformed_item_is_rejected_with_its_reason);
    tcase_add_test(t, a_name_of_exactly_32_bytes_fits_and_33_do_not);
    tcase_add_test(t, a_payload_over_the_inbound_limit_is_rejected_before_parsing);
    tcase_add_test(t, nesting_deeper_than_the_limit_is_rejected_before_parsing);
    tcase_add_test(t, a_payload_that_is_not_nul_terminated_is_read_within_its_length);
    tcase_add_test(t, a_nul_byte_inside_the_payload_is_invalid_json);
    tcase_add_test(t, utf8_validation_accepts_well_formed_text);
    tcase_add_test(t, utf8_validation_refuses_overlongs_surrogates_big_code_points_and_truncation);
    tcase_add_test(t, an_inventory_answer_found_and_not_found_are_decoded);
    tcase_add_test(t, a_malformed_inventory_answer_is_rejected_with_its_reason);
    tcase_add_test(t, a_registration_is_encoded_as_the_protocol_shows_it);
    tcase_add_test(t, an_inventory_query_is_encoded_with_its_idempotency_key);
    tcase_add_test(t, quotes_backslashes_and_control_characters_in_ids_are_escaped);
    tcase_add_test(t, an_encoder_refuses_every_buffer_too_small_and_fills_an_exact_one);
    tcase_add_test(t, seed_defect_decoding_frees_the_json_tree_exactly_once);
    tcase_add_test(t, seed_defect_the_name_survives_the_payload_being_overwritten_and_freed);
    tcase_add_test(t, seed_defect_tag_hex_needs_two_chars_per_byte_and_a_nul);
    tcase_add_test(t, seed_defect_no_reject_class_leaks_memory);
    tcase_add_test(t, every_reject_reason_and_error_has_a_distinct_name);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
