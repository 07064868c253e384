/*
 * test_fw_outbox.c - the bounded outbox and its flash format: order, bounds, requeue after
 * a connection loss, and a stored copy that is damaged in any way being refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fw_outbox.h"

static struct fw_outbox_entry entry(int32_t id, uint32_t seq, uint8_t uid_len)
{
    struct fw_outbox_entry e;
    memset(&e, 0, sizeof e);
    e.item_id = id;
    e.tag_quantity = 1 + id % 7;
    e.seq = seq;
    e.tag.len = uid_len;
    for (int i = 0; i < uid_len; i++)
        e.tag.bytes[i] = (uint8_t)(id * 31 + i);
    return e;
}

static void fill(struct fw_outbox *o, int n)
{
    fw_outbox__clear(o);
    const uint8_t lens[3] = {4, 7, 10};
    for (int i = 0; i < n; i++) {
        struct fw_outbox_entry e = entry(100 + i, 10 + (uint32_t)i, lens[i % 3]);
        ck_assert_int_eq(fw_outbox__push(o, &e), FW_OK);
    }
}

START_TEST(entries_stay_in_the_order_they_were_added_when_one_leaves)
{
    struct fw_outbox o;
    fill(&o, 4);
    fw_outbox__remove(&o, 1);
    ck_assert_int_eq(o.count, 3);
    ck_assert_int_eq(o.entries[0].item_id, 100);
    ck_assert_int_eq(o.entries[1].item_id, 102);
    ck_assert_int_eq(o.entries[2].item_id, 103);
    fw_outbox__remove(&o, 7); /* out of range: nothing happens */
    ck_assert_int_eq(o.count, 3);
}
END_TEST

START_TEST(a_full_outbox_refuses_one_more_entry)
{
    struct fw_outbox o;
    fill(&o, FW_OUTBOX_LEN);
    struct fw_outbox_entry e = entry(999, 999, 4);
    ck_assert_int_eq(fw_outbox__push(&o, &e), FW_ERR_FULL);
    ck_assert_int_eq(o.count, FW_OUTBOX_LEN);
    ck_assert(!fw_outbox__has_item(&o, 999));
}
END_TEST

START_TEST(in_flight_entries_are_found_by_token_and_requeued_after_a_loss)
{
    struct fw_outbox o;
    fill(&o, 3);
    o.entries[0].flags |= FW_OUTBOX_IN_FLIGHT | FW_OUTBOX_SENT_BEFORE;
    o.entries[0].token = 7;
    o.entries[2].flags |= FW_OUTBOX_IN_FLIGHT | FW_OUTBOX_SENT_BEFORE;
    o.entries[2].token = 9;
    ck_assert_int_eq(fw_outbox__find_token(&o, 9), 2);
    ck_assert_int_eq(fw_outbox__find_token(&o, 8), -1);
    ck_assert_uint_eq(fw_outbox__in_flight(&o), 2);
    ck_assert_uint_eq(fw_outbox__requeue(&o), 2);
    ck_assert_uint_eq(fw_outbox__in_flight(&o), 0);
    /* A late acknowledgement of the old connection no longer matches. */
    ck_assert_int_eq(fw_outbox__find_token(&o, 9), -1);
    ck_assert(o.entries[2].flags & FW_OUTBOX_SENT_BEFORE);
}
END_TEST

START_TEST(the_stored_form_reads_back_equal_without_in_flight_state)
{
    struct fw_outbox o, back;
    fill(&o, FW_OUTBOX_LEN);
    o.entries[3].flags |= FW_OUTBOX_IN_FLIGHT | FW_OUTBOX_SENT_BEFORE;
    o.entries[3].token = 77;
    uint8_t buf[FW_OUTBOX_STORE_MAX];
    int n = fw_outbox__encode(&o, buf, sizeof buf);
    ck_assert_int_eq(n, FW_OUTBOX_STORE_MAX);
    ck_assert_int_eq(fw_outbox__decode(&back, buf, (size_t)n), FW_OK);
    ck_assert_int_eq(back.count, FW_OUTBOX_LEN);
    for (int i = 0; i < FW_OUTBOX_LEN; i++) {
        ck_assert_int_eq(back.entries[i].item_id, o.entries[i].item_id);
        ck_assert_int_eq(back.entries[i].tag_quantity, o.entries[i].tag_quantity);
        ck_assert_uint_eq(back.entries[i].seq, o.entries[i].seq);
        ck_assert_int_eq(back.entries[i].tag.len, o.entries[i].tag.len);
        ck_assert_mem_eq(back.entries[i].tag.bytes, o.entries[i].tag.bytes, o.entries[i].tag.len);
        ck_assert_uint_eq(back.entries[i].flags & FW_OUTBOX_IN_FLIGHT, 0);
    }
    ck_assert(back.entries[3].flags & FW_OUTBOX_SENT_BEFORE);
    ck_assert_uint_eq(fw_outbox__max_seq(&back), 10 + FW_OUTBOX_LEN - 1);

    fill(&o, 0);
    n = fw_outbox__encode(&o, buf, sizeof buf);
    ck_assert_int_eq(n, 8);
    ck_assert_int_eq(fw_outbox__decode(&back, buf, (size_t)n), FW_OK);
    ck_assert_int_eq(back.count, 0);
}
END_TEST

START_TEST(encoding_into_a_buffer_too_small_is_refused)
{
    struct fw_outbox o;
    fill(&o, 2);
    uint8_t buf[FW_OUTBOX_STORE_MAX];
    ck_assert_int_eq(fw_outbox__encode(&o, buf, 4 + 2 * FW_OUTBOX_RECORD + 3), FW_ERR_TOO_BIG);
    ck_assert_int_eq(fw_outbox__encode(&o, buf, 4 + 2 * FW_OUTBOX_RECORD + 4),
                     4 + 2 * FW_OUTBOX_RECORD + 4);
}
END_TEST

START_TEST(any_single_flipped_bit_in_the_stored_form_is_detected)
{
    struct fw_outbox o, back;
    fill(&o, 5);
    uint8_t buf[FW_OUTBOX_STORE_MAX];
    int n = fw_outbox__encode(&o, buf, sizeof buf);
    for (int i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            ck_assert_msg(fw_outbox__decode(&back, buf, (size_t)n) == FW_ERR_INVAL,
                          "byte %d bit %d", i, bit);
            ck_assert_int_eq(back.count, 0);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(fw_outbox__decode(&back, buf, (size_t)n), FW_OK);
}
END_TEST

START_TEST(every_truncated_or_overlong_stored_form_is_refused_without_overreading)
{
    struct fw_outbox o, back;
    fill(&o, 3);
    uint8_t buf[FW_OUTBOX_STORE_MAX + 8];
    int n = fw_outbox__encode(&o, buf, sizeof buf);
    for (int len = 0; len <= n + 8; len++) {
        if (len == n)
            continue;
        uint8_t *copy = malloc((size_t)len + 1);
        memcpy(copy, buf, (size_t)len);
        ck_assert_int_eq(fw_outbox__decode(&back, copy, (size_t)len), FW_ERR_INVAL);
        free(copy);
    }
    ck_assert_int_eq(fw_outbox__decode(&back, NULL, 0), FW_ERR_INVAL);
}
END_TEST

START_TEST(a_stored_form_with_a_valid_checksum_but_impossible_content_is_refused)
{
    struct fw_outbox o, back;
    uint8_t buf[FW_OUTBOX_STORE_MAX];
    /* A UID of 5 bytes, re-checksummed as a different writer would. */
    fill(&o, 1);
    o.entries[0].tag.len = 5;
    int n = fw_outbox__encode(&o, buf, sizeof buf);
    ck_assert_int_eq(fw_outbox__decode(&back, buf, (size_t)n), FW_ERR_INVAL);
    /* An item id of zero. */
    fill(&o, 1);
    o.entries[0].item_id = 0;
    n = fw_outbox__encode(&o, buf, sizeof buf);
    ck_assert_int_eq(fw_outbox__decode(&back, buf, (size_t)n), FW_ERR_INVAL);
    /* A future version. */
    fill(&o, 1);
    n = fw_outbox__encode(&o, buf, sizeof buf);
    buf[2] = FW_OUTBOX_VERSION + 1;
    ck_assert_int_eq(fw_outbox__decode(&back, buf, (size_t)n), FW_ERR_INVAL);
}
END_TEST

static Suite *outbox_suite(void)
{
    Suite *s = suite_create("fw_outbox");
    TCase *t = tcase_create("outbox");
    tcase_add_test(t, entries_stay_in_the_order_they_were_added_when_one_leaves);
    tcase_add_test(t, a_full_outbox_refuses_one_more_entry);
    tcase_add_test(t, in_flight_entries_are_found_by_token_and_requeued_after_a_loss);
    tcase_add_test(t, the_stored_form_reads_back_equal_without_in_flight_state);
    tcase_add_test(t, encoding_into_a_buffer_too_small_is_refused);
    tcase_add_test(t, any_single_flipped_bit_in_the_stored_form_is_detected);
    tcase_add_test(t, every_truncated_or_overlong_stored_form_is_refused_without_overreading);
    tcase_add_test(t, a_stored_form_with_a_valid_checksum_but_impossible_content_is_refused);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(outbox_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
