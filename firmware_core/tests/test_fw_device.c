/*
 * test_fw_device.c - the scanner as a whole, driven through its ports: registration flow,
 * cancel, inventory look-up, duplicates, bounded queue and outbox, offline registrations
 * and restarts, resends after a loss, sequence numbers, reconnect back-off, status and
 * Last Will, rejects, topic layouts and device id rules.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_codec.h"
#include "fw_test_platform.h"

static struct fwt_platform P;
static struct fw_device D;
static const uint8_t TAG1[4] = {0x04, 0xA1, 0xB2, 0xC3};
static const uint8_t TAG2[7] = {0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
static const uint8_t TAG10[10] = {0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29};

/* ---------------------------------------------------------------- helpers */

static void config(struct fw_device_config *cfg)
{
    fw_device_config_defaults(cfg);
    cfg->device_id = "scanner-1";
}

static void setup(void)
{
    fwt_init(&P, true);
    struct fw_device_config cfg;
    config(&cfg);
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
}

/* A new device instance on the same storage, as after a power cycle. */
static void restart(void)
{
    fw_device_stop(&D);
    struct fw_device_config cfg;
    config(&cfg);
    memset(&D, 0xA5, sizeof D); /* nothing may survive in RAM */
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
}

static void online(void)
{
    fw_device_start(&D);
    fwt_online(&P, &D, false);
}

static void item(int id, const char *name, int qty, bool dup)
{
    char buf[256];
    fwt_item_json(buf, sizeof buf, id, name, qty);
    fw_device_on_message(&D, fw_device_topic_item_registration(&D), buf, strlen(buf), 1, dup);
}

static enum fw_screen screen(void)
{
    struct fw_status st;
    fw_device_status(&D, &st);
    return st.screen;
}

static struct fw_status status(void)
{
    struct fw_status st;
    fw_device_status(&D, &st);
    return st;
}

static void register_head(const uint8_t *uid, size_t len)
{
    ck_assert_int_eq(fw_device_on_tag(&D, uid, len), FW_OK);
    ck_assert_int_eq(screen(), FW_SCREEN_CONFIRM);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM);
}

static void pass_time(uint64_t ms)
{
    uint64_t end = P.now + ms;
    while (P.now < end) {
        P.now += 10;
        fw_device_tick(&D, P.now);
    }
}

/* 4-byte UID number i, distinct for each i. */
static void uid_of(int i, uint8_t out[4])
{
    out[0] = 0x08;
    out[1] = (uint8_t)(i >> 16);
    out[2] = (uint8_t)(i >> 8);
    out[3] = (uint8_t)i;
}

#define REGISTERED_TOPIC "item_registered"

/* -------------------------------------------------------- registration */

START_TEST(an_item_scanned_and_confirmed_is_published_with_its_idempotency_key)
{
    online();
    ck_assert_int_eq(screen(), FW_SCREEN_IDLE);
    item(17, "Pallet jack", 2, false);
    ck_assert_int_eq(screen(), FW_SCREEN_ITEM);
    ck_assert_int_eq(status().head_item_id, 17);
    ck_assert_str_eq(status().head_item_name, "Pallet jack");
    register_head(TAG1, sizeof TAG1);
    ck_assert_int_eq(screen(), FW_SCREEN_REGISTERED);

    const struct fwt_pub *pub = fwt_last_pub(&P, REGISTERED_TOPIC);
    ck_assert_ptr_nonnull(pub);
    ck_assert_str_eq(pub->payload, "{\"item_id\":17,\"tag_quantity\":2,\"tag\":\"04A1B2C3\","
                                   "\"device_id\":\"scanner-1\",\"seq\":1}");
    ck_assert_int_eq(pub->qos, 1);
    ck_assert(!pub->retain);
    ck_assert_uint_eq(status().outbox, 1);
    ck_assert_uint_eq(status().outbox_in_flight, 1);

    fw_device_on_published(&D, pub->token);
    const struct fw_stats *s = fw_device_stats(&D);
    ck_assert_uint_eq(status().outbox, 0);
    ck_assert_uint_eq(s->items_received, 1);
    ck_assert_uint_eq(s->items_queued, 1);
    ck_assert_uint_eq(s->registrations_confirmed, 1);
    ck_assert_uint_eq(s->registrations_sent, 1);
    ck_assert_uint_eq(s->registrations_acked, 1);
    ck_assert_uint_eq(s->registrations_resent, 0);
    /* The notice times out back to idle. */
    pass_time(FW_NOTICE_MS);
    ck_assert_int_eq(screen(), FW_SCREEN_IDLE);
}
END_TEST

START_TEST(a_ten_byte_tag_is_published_as_twenty_hex_characters)
{
    online();
    item(3, "Crate", 1, false);
    register_head(TAG10, sizeof TAG10);
    const struct fwt_pub *pub = fwt_last_pub(&P, REGISTERED_TOPIC);
    ck_assert_ptr_nonnull(pub);
    ck_assert_ptr_nonnull(strstr(pub->payload, "\"tag\":\"04A1B2C3D4E5F6071829\""));
}
END_TEST

START_TEST(items_are_shown_in_arrival_order_one_after_the_other)
{
    online();
    item(1, "One", 1, false);
    item(2, "Two", 1, false);
    ck_assert_uint_eq(status().pending, 2);
    register_head(TAG1, sizeof TAG1);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM); /* acknowledge the notice */
    ck_assert_int_eq(status().head_item_id, 2);
    register_head(TAG2, sizeof TAG2);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 2);
    ck_assert_ptr_nonnull(strstr(fwt_nth_pub(&P, REGISTERED_TOPIC, 0)->payload, "\"item_id\":1,"));
    ck_assert_ptr_nonnull(strstr(fwt_nth_pub(&P, REGISTERED_TOPIC, 1)->payload, "\"item_id\":2,"));
}
END_TEST

START_TEST(cancel_skips_the_head_item_without_publishing)
{
    online();
    item(1, "One", 1, false);
    item(2, "Two", 1, false);
    fw_device_on_button(&D, FW_BUTTON_CANCEL);
    ck_assert_int_eq(screen(), FW_SCREEN_CANCELLED);
    ck_assert_uint_eq(fw_device_stats(&D)->cancels, 1);
    pass_time(FW_NOTICE_MS);
    ck_assert_int_eq(status().head_item_id, 2);
    /* Cancel after a scan skips the item too. */
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK);
    fw_device_on_button(&D, FW_BUTTON_CANCEL);
    ck_assert_uint_eq(fw_device_stats(&D)->cancels, 2);
    ck_assert_uint_eq(status().pending, 0);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 0);
}
END_TEST

START_TEST(a_tag_of_a_wrong_length_is_a_wrong_tag_shown_and_counted)
{
    online();
    item(1, "One", 1, false);
    const uint8_t five[5] = {1, 2, 3, 4, 5};
    ck_assert_int_eq(fw_device_on_tag(&D, five, 5), FW_ERR_INVAL);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert_uint_eq(fw_device_stats(&D)->wrong_tags, 1);
    ck_assert_int_eq(fw_device_on_tag(&D, five, 0), FW_ERR_INVAL);
    ck_assert_uint_eq(fw_device_stats(&D)->wrong_tags, 2);
    pass_time(FW_NOTICE_MS);
    ck_assert_int_eq(screen(), FW_SCREEN_ITEM);
}
END_TEST

START_TEST(a_tag_registered_recently_is_refused_as_a_wrong_tag)
{
    online();
    item(1, "One", 1, false);
    item(2, "Two", 1, false);
    register_head(TAG1, sizeof TAG1);
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert_uint_eq(fw_device_stats(&D)->wrong_tags, 1);
    pass_time(FW_NOTICE_MS);
    ck_assert_int_eq(screen(), FW_SCREEN_ITEM); /* still waiting for a good tag */
    register_head(TAG2, sizeof TAG2);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 2);
}
END_TEST

/* ------------------------------------------------------------ inventory */

START_TEST(an_inventory_look_up_publishes_a_query_and_shows_the_answer)
{
    online();
    fw_device_on_button(&D, FW_BUTTON_MODE);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_SCAN);
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_WAIT);
    const struct fwt_pub *q = fwt_last_pub(&P, "inventory/query");
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->payload, "{\"tag\":\"04A1B2C3\",\"device_id\":\"scanner-1\",\"seq\":1}");

    const char *other = "{\"tag\":\"0411223344556F\",\"found\":false}";
    fw_device_on_message(&D, "scanners/scanner-1/inventory/reply", other, strlen(other), 1, false);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_WAIT); /* not the tag asked about */

    const char *ans = "{\"tag\":\"04A1B2C3\",\"found\":true,\"item_id\":17,\"item_name\":\"Jack\"}";
    fw_device_on_message(&D, "scanners/scanner-1/inventory/reply", ans, strlen(ans), 1, false);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_RESULT);
    ck_assert_uint_eq(fw_device_stats(&D)->inventory_queries, 1);
    ck_assert_uint_eq(fw_device_stats(&D)->inventory_answers, 1);
    /* The answer stays until the operator moves on, then the next scan can follow. */
    pass_time(3 * FW_INVENTORY_TIMEOUT_MS);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_RESULT);
    ck_assert_uint_eq(fw_device_stats(&D)->inventory_timeouts, 0);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_SCAN);
    fw_device_on_button(&D, FW_BUTTON_MODE);
    ck_assert_int_eq(screen(), FW_SCREEN_IDLE);
}
END_TEST

START_TEST(an_inventory_look_up_without_answer_times_out_and_ignores_a_late_one)
{
    online();
    fw_device_on_button(&D, FW_BUTTON_MODE);
    fw_device_on_tag(&D, TAG1, sizeof TAG1);
    pass_time(FW_INVENTORY_TIMEOUT_MS - 20);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_WAIT);
    pass_time(30);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_RESULT);
    ck_assert_uint_eq(fw_device_stats(&D)->inventory_timeouts, 1);
    const char *ans = "{\"tag\":\"04A1B2C3\",\"found\":false}";
    fw_device_on_message(&D, "scanners/scanner-1/inventory/reply", ans, strlen(ans), 1, false);
    ck_assert_uint_eq(fw_device_stats(&D)->inventory_answers, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->rejects_total, 0); /* ignored, not malformed */
}
END_TEST

START_TEST(an_inventory_look_up_while_offline_shows_an_error_and_sends_nothing)
{
    fw_device_start(&D); /* never connected */
    fw_device_on_button(&D, FW_BUTTON_MODE);
    fw_device_on_tag(&D, TAG1, sizeof TAG1);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert_int_eq(P.npubs, 0);
    ck_assert_uint_eq(status().seq, 0); /* no key consumed */
}
END_TEST

/* ----------------------------------------------------------- duplicates */

START_TEST(a_redelivered_item_is_queued_once_with_or_without_the_dup_flag)
{
    online();
    item(9, "Nine", 1, false);
    item(9, "Nine", 1, false); /* QoS 1 redelivery without DUP (after a PUBACK was lost) */
    item(9, "Nine", 1, true);  /* and with DUP */
    ck_assert_uint_eq(status().pending, 1);
    ck_assert_uint_eq(fw_device_stats(&D)->duplicates_suppressed, 2);
    ck_assert_uint_eq(fw_device_stats(&D)->items_received, 3);
    ck_assert_uint_eq(fw_device_stats(&D)->items_queued, 1);
}
END_TEST

START_TEST(an_item_redelivered_after_its_registration_is_not_registered_again)
{
    online();
    item(9, "Nine", 1, false);
    register_head(TAG1, sizeof TAG1);
    item(9, "Nine", 1, true); /* still in the outbox */
    ck_assert_uint_eq(status().pending, 0);
    fw_device_on_published(&D, fwt_last_pub(&P, REGISTERED_TOPIC)->token);
    item(9, "Nine", 1, false); /* acknowledged, remembered in the seen ring */
    ck_assert_uint_eq(status().pending, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->duplicates_suppressed, 2);
}
END_TEST

START_TEST(an_item_still_in_the_restored_outbox_is_a_duplicate_after_a_restart)
{
    fw_device_start(&D);
    item(9, "Nine", 1, false);
    register_head(TAG1, sizeof TAG1); /* offline: kept in the outbox */
    restart();
    fw_device_start(&D);
    item(9, "Nine", 1, true);
    ck_assert_uint_eq(status().pending, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->duplicates_suppressed, 1);
}
END_TEST

/* --------------------------------------------------------------- bounds */

START_TEST(a_full_queue_refuses_an_item_on_screen_and_in_the_figures)
{
    online();
    for (int i = 1; i <= FW_PENDING_ITEMS; i++)
        item(i, "Item", 1, false);
    ck_assert_int_eq(screen(), FW_SCREEN_ITEM);
    item(1000, "One too many", 1, false);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert_uint_eq(status().pending, FW_PENDING_ITEMS);
    ck_assert_uint_eq(fw_device_stats(&D)->queue_full, 1);
    ck_assert(fwt_log_contains(&P, "queue full"));
    pass_time(FW_NOTICE_MS);
    ck_assert_int_eq(screen(), FW_SCREEN_ITEM);
    /* Once there is room, the refused item is welcome when the backend sends it again. */
    fw_device_on_button(&D, FW_BUTTON_CANCEL);
    item(1000, "One too many", 1, false);
    ck_assert_uint_eq(status().pending, FW_PENDING_ITEMS);
    ck_assert_uint_eq(fw_device_stats(&D)->duplicates_suppressed, 0);
}
END_TEST

START_TEST(a_full_outbox_refuses_the_confirm_and_keeps_the_item)
{
    fw_device_start(&D); /* offline: nothing leaves the outbox */
    uint8_t uid[4];
    for (int i = 1; i <= FW_OUTBOX_LEN; i++) {
        item(i, "Item", 1, false);
        uid_of(i, uid);
        register_head(uid, 4);
        fw_device_on_button(&D, FW_BUTTON_CONFIRM); /* acknowledge the notice */
    }
    ck_assert_uint_eq(status().outbox, FW_OUTBOX_LEN);
    item(500, "Late", 1, false);
    uid_of(500, uid);
    register_head(uid, 4);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert_uint_eq(fw_device_stats(&D)->outbox_full, 1);
    ck_assert_uint_eq(status().outbox, FW_OUTBOX_LEN);
    ck_assert_int_eq(status().head_item_id, 500);
    /* After the broker acknowledged one, the same confirm goes through. */
    fwt_online(&P, &D, false);
    fw_device_on_published(&D, fwt_nth_pub(&P, REGISTERED_TOPIC, 0)->token);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM); /* acknowledge the error */
    ck_assert_int_eq(screen(), FW_SCREEN_CONFIRM);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM);
    ck_assert_int_eq(screen(), FW_SCREEN_REGISTERED);
    ck_assert_uint_eq(status().pending, 0);
}
END_TEST

/* ----------------------------------------------------- offline, restart */

START_TEST(registrations_made_offline_are_sent_in_order_once_on_reconnect)
{
    fw_device_start(&D);
    uint8_t uid[4];
    for (int i = 1; i <= 3; i++) {
        item(i, "Item", i, false);
        uid_of(i, uid);
        register_head(uid, 4);
        ck_assert_int_eq(screen(), FW_SCREEN_REGISTERED);
    }
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 0);
    ck_assert_uint_eq(status().outbox, 3);

    fwt_online(&P, &D, false);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 3);
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"seq\":%d}", i + 1);
        ck_assert_ptr_nonnull(strstr(fwt_nth_pub(&P, REGISTERED_TOPIC, i)->payload, want));
    }
    for (int i = 0; i < 3; i++)
        fw_device_on_published(&D, fwt_nth_pub(&P, REGISTERED_TOPIC, i)->token);
    ck_assert_uint_eq(status().outbox, 0);
    /* Another connection sends nothing again. */
    fw_device_on_connection_lost(&D, "test");
    P.now = status().next_connect_ms;
    fw_device_tick(&D, P.now);
    fwt_online(&P, &D, true);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 3);
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_sent, 3);
}
END_TEST

START_TEST(the_outbox_survives_a_restart_and_is_sent_with_the_same_keys)
{
    fw_device_start(&D);
    item(1, "One", 1, false);
    register_head(TAG1, sizeof TAG1);
    item(2, "Two", 1, false);
    register_head(TAG2, sizeof TAG2);
    restart();
    online();
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 2);
    ck_assert_str_eq(fwt_nth_pub(&P, REGISTERED_TOPIC, 0)->payload,
                     "{\"item_id\":1,\"tag_quantity\":1,\"tag\":\"04A1B2C3\","
                     "\"device_id\":\"scanner-1\",\"seq\":1}");
    ck_assert_str_eq(fwt_nth_pub(&P, REGISTERED_TOPIC, 1)->payload,
                     "{\"item_id\":2,\"tag_quantity\":1,\"tag\":\"04112233445566\","
                     "\"device_id\":\"scanner-1\",\"seq\":2}");
    ck_assert(fwt_log_contains(&P, "restored 2"));
}
END_TEST

START_TEST(a_corrupt_stored_outbox_is_reported_and_ignored)
{
    fwt_storage_put(&P, "outbox", "\x4f\x42\x01\x01garbage", 11);
    online();
    ck_assert_uint_eq(status().outbox, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->storage_errors, 1);
    ck_assert(fwt_log_contains(&P, "corrupt"));
    item(1, "One", 1, false);
    register_head(TAG1, sizeof TAG1);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 1);
}
END_TEST

START_TEST(a_registration_in_flight_at_a_connection_loss_is_resent_with_the_same_seq)
{
    online();
    item(1, "One", 1, false);
    register_head(TAG1, sizeof TAG1);
    const struct fwt_pub *first = fwt_last_pub(&P, REGISTERED_TOPIC);
    char payload[FW_PAYLOAD_MAX + 1];
    memcpy(payload, first->payload, sizeof payload);
    uint32_t old_token = first->token;

    fw_device_on_connection_lost(&D, "cable pulled");
    ck_assert_uint_eq(status().outbox_in_flight, 0);
    ck_assert_uint_eq(status().outbox, 1);
    fw_device_on_published(&D, old_token); /* late ack of the dead connection: ignored */
    ck_assert_uint_eq(status().outbox, 1);

    P.now = status().next_connect_ms;
    fw_device_tick(&D, P.now);
    fwt_online(&P, &D, true);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 2);
    const struct fwt_pub *again = fwt_last_pub(&P, REGISTERED_TOPIC);
    ck_assert_str_eq(again->payload, payload);
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_resent, 1);
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_sent, 2);
    fw_device_on_published(&D, again->token);
    ck_assert_uint_eq(status().outbox, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_acked, 1);
}
END_TEST

/* QoS 2 on a client that completes its own handshakes across a reconnect. */
static void qos2_device(bool resume)
{
    fwt_init(&P, true);
    struct fw_device_config cfg;
    config(&cfg);
    cfg.qos = 2;
    cfg.resume_in_flight = resume;
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
    online();
    for (int i = 0; i < P.nsubs; i++)
        ck_assert_int_eq(P.sub_qos[i], 2);
    ck_assert_int_eq(P.will_qos, 2);
    item(1, "One", 1, false);
    register_head(TAG1, sizeof TAG1);
    ck_assert_int_eq(fwt_last_pub(&P, REGISTERED_TOPIC)->qos, 2);
    fw_device_on_connection_lost(&D, "cut after PUBREL");
    P.now = status().next_connect_ms;
    fw_device_tick(&D, P.now);
}

START_TEST(at_qos_2_a_resuming_client_completes_the_registration_and_the_device_waits)
{
    qos2_device(true);
    uint32_t token = fwt_last_pub(&P, REGISTERED_TOPIC)->token;
    ck_assert_uint_eq(status().outbox_in_flight, 1); /* still the client's */
    fwt_online(&P, &D, true);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 1); /* not published again */
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_resent, 0);
    fw_device_on_published(&D, token); /* the client's PUBCOMP, same packet id */
    ck_assert_uint_eq(status().outbox, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_acked, 1);
}
END_TEST

START_TEST(at_qos_2_a_broker_without_the_session_gets_the_registration_again)
{
    qos2_device(true);
    fwt_online(&P, &D, false); /* the broker lost the session: the client's resends are moot */
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 2);
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_resent, 1);
}
END_TEST

START_TEST(at_qos_2_a_client_that_forgets_its_handshakes_gets_the_registration_again)
{
    qos2_device(false);
    ck_assert_uint_eq(status().outbox_in_flight, 0);
    fwt_online(&P, &D, true);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 2);
    ck_assert_str_eq(fwt_nth_pub(&P, REGISTERED_TOPIC, 0)->payload,
                     fwt_nth_pub(&P, REGISTERED_TOPIC, 1)->payload); /* same idempotency key */
}
END_TEST

START_TEST(a_refused_publish_keeps_the_registration_for_the_next_connection)
{
    online();
    item(1, "One", 1, false);
    P.publish_rc = FW_ERR_OFFLINE;
    register_head(TAG1, sizeof TAG1);
    ck_assert_uint_eq(fw_device_stats(&D)->publish_errors, 1);
    ck_assert_uint_eq(status().outbox, 1);
    ck_assert_uint_eq(status().outbox_in_flight, 0);
    P.publish_rc = 0;
    fw_device_on_connection_lost(&D, "gone");
    P.now = status().next_connect_ms;
    fw_device_tick(&D, P.now);
    fwt_online(&P, &D, false);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 1);
}
END_TEST

START_TEST(a_registration_refused_by_the_broker_leaves_the_outbox_and_unblocks_the_rest)
{
    online();
    uint8_t uid[4];
    for (int i = 1; i <= 3; i++) {
        item(i, "Item", i, false);
        uid_of(i, uid);
        register_head(uid, 4);
    }
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 3);
    ck_assert_uint_eq(status().outbox_in_flight, 3);
    /* The broker's ACL refuses the first one (MQTT 5 PUBACK 0x87). */
    fw_device_on_publish_refused(&D, fwt_nth_pub(&P, REGISTERED_TOPIC, 0)->token, 0x87);
    ck_assert_uint_eq(fw_device_stats(&D)->publishes_refused, 1);
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_acked, 0);
    ck_assert_uint_eq(status().outbox, 2);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert_msg(fwt_log_contains(&P, "not authorized (0x87)"), "reason not logged in words");
    ck_assert(fwt_log_contains(&P, "registration of item 1 refused by the broker"));
    /* A repeated or unknown token changes nothing. */
    fw_device_on_publish_refused(&D, fwt_nth_pub(&P, REGISTERED_TOPIC, 0)->token, 0x87);
    ck_assert_uint_eq(status().outbox, 2);
    /* The ones behind it are acknowledged as usual. */
    fw_device_on_published(&D, fwt_nth_pub(&P, REGISTERED_TOPIC, 1)->token);
    fw_device_on_published(&D, fwt_nth_pub(&P, REGISTERED_TOPIC, 2)->token);
    ck_assert_uint_eq(status().outbox, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->registrations_acked, 2);
    /* The error screen is transient, like the others. */
    pass_time(FW_NOTICE_MS + 10);
    ck_assert_int_eq(screen(), FW_SCREEN_IDLE);
    /* Dropped for good: neither a reconnect nor a restart sends it again. */
    restart();
    online();
    ck_assert_uint_eq(status().outbox, 0);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 3);
}
END_TEST

START_TEST(a_refused_registration_stays_dropped_after_a_restart_while_others_wait)
{
    fw_device_start(&D); /* offline: both wait in the outbox */
    uint8_t uid[4];
    for (int i = 1; i <= 2; i++) {
        item(i, "Item", i, false);
        uid_of(i, uid);
        register_head(uid, 4);
    }
    fwt_online(&P, &D, false);
    fw_device_on_publish_refused(&D, fwt_nth_pub(&P, REGISTERED_TOPIC, 1)->token, 0x97);
    ck_assert(fwt_log_contains(&P, "quota exceeded (0x97)"));
    ck_assert_uint_eq(status().outbox, 1);
    restart();
    online();
    /* Only item 1 comes back (seq 1), item 2 (refused) does not. */
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 3);
    ck_assert_ptr_nonnull(strstr(fwt_nth_pub(&P, REGISTERED_TOPIC, 2)->payload, "\"seq\":1}"));
}
END_TEST

START_TEST(a_publish_lost_by_the_platform_is_kept_and_sent_again)
{
    online();
    item(1, "One", 1, false);
    register_head(TAG1, sizeof TAG1);
    const struct fwt_pub *first = fwt_last_pub(&P, REGISTERED_TOPIC);
    fw_device_on_publish_refused(&D, first->token, FW_ERR_IO);
    ck_assert_uint_eq(fw_device_stats(&D)->publishes_refused, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->publish_errors, 1);
    ck_assert_uint_eq(status().outbox, 1);
    ck_assert_uint_eq(status().outbox_in_flight, 0);
    /* The next connection sends it again with the same key. */
    fw_device_on_connection_lost(&D, "gone");
    P.now = status().next_connect_ms;
    fw_device_tick(&D, P.now);
    fwt_online(&P, &D, true);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 2);
    ck_assert_str_eq(fwt_nth_pub(&P, REGISTERED_TOPIC, 0)->payload,
                     fwt_nth_pub(&P, REGISTERED_TOPIC, 1)->payload);
}
END_TEST

START_TEST(an_inventory_query_refused_by_the_broker_ends_the_wait_with_an_error)
{
    online();
    fw_device_on_button(&D, FW_BUTTON_MODE);
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_WAIT);
    const struct fwt_pub *q = fwt_last_pub(&P, "inventory/query");
    ck_assert_ptr_nonnull(q);
    uint8_t before[FW_FB_BYTES];
    memcpy(before, P.frame, sizeof before);
    fw_device_on_publish_refused(&D, q->token, 0x87);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert_msg(memcmp(before, P.frame, sizeof before) != 0, "the display did not change");
    ck_assert_uint_eq(fw_device_stats(&D)->publishes_refused, 1);
    ck_assert(fwt_log_contains(&P, "inventory query refused by the broker: not authorized (0x87)"));
    /* No time-out follows: the wait is over. */
    pass_time(2 * FW_INVENTORY_TIMEOUT_MS);
    ck_assert_uint_eq(fw_device_stats(&D)->inventory_timeouts, 0);
    ck_assert_int_eq(screen(), FW_SCREEN_INVENTORY_SCAN);
}
END_TEST

START_TEST(a_refused_status_publish_is_counted_and_logged_only)
{
    online();
    const struct fwt_pub *st = fwt_last_pub(&P, "scanners/scanner-1/status");
    ck_assert_ptr_nonnull(st);
    fw_device_on_publish_refused(&D, st->token, 0x87);
    ck_assert_uint_eq(fw_device_stats(&D)->publishes_refused, 1);
    ck_assert(fwt_log_contains(&P, "publish refused by the broker: not authorized (0x87)"));
    ck_assert_int_eq(screen(), FW_SCREEN_IDLE);
    ck_assert_str_eq(fw_reason_code_name(0x87), "not authorized");
    ck_assert_str_eq(fw_reason_code_name(0x42), "unknown reason");
}
END_TEST

START_TEST(the_sequence_number_is_persisted_and_never_reused_after_a_restart)
{
    online();
    fw_device_on_button(&D, FW_BUTTON_MODE);
    fw_device_on_tag(&D, TAG1, sizeof TAG1); /* query: seq 1 */
    fw_device_on_button(&D, FW_BUTTON_MODE);
    item(1, "One", 1, false);
    register_head(TAG2, sizeof TAG2); /* registration: seq 2 */
    ck_assert_uint_eq(status().seq, 2);
    restart();
    online();
    ck_assert_uint_eq(status().seq, 2);
    fw_device_on_button(&D, FW_BUTTON_MODE);
    fw_device_on_tag(&D, TAG10, sizeof TAG10);
    ck_assert_ptr_nonnull(strstr(fwt_last_pub(&P, "inventory/query")->payload, "\"seq\":3}"));
}
END_TEST

START_TEST(a_sequence_number_that_cannot_be_persisted_is_not_used)
{
    online();
    item(1, "One", 1, false);
    P.storage_write_rc = FW_ERR_IO;
    register_head(TAG1, sizeof TAG1);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 0);
    ck_assert_uint_eq(status().pending, 1);
    ck_assert_uint_eq(status().seq, 0);
    ck_assert_uint_eq(fw_device_stats(&D)->storage_errors, 1);
}
END_TEST

/* ----------------------------------------------------------- connection */

START_TEST(start_connects_with_a_retained_offline_last_will)
{
    fw_device_start(&D);
    ck_assert_int_eq(P.connect_calls, 1);
    ck_assert_str_eq(P.client_id, "scanner-1");
    ck_assert(!P.clean_session);
    ck_assert_int_eq(P.keepalive_s, FW_KEEPALIVE_S);
    ck_assert_str_eq(P.will_topic, "scanners/scanner-1/status");
    ck_assert_str_eq(P.will_payload, "offline");
    ck_assert_int_eq(P.will_qos, 1);
    ck_assert(P.will_retain);
}
END_TEST

START_TEST(on_connect_the_device_subscribes_and_announces_online_retained)
{
    online();
    ck_assert_int_eq(P.nsubs, FW_SUBSCRIPTIONS);
    ck_assert_str_eq(P.subs[0], "item_registration");
    ck_assert_str_eq(P.subs[1], "scanners/scanner-1/inventory/reply");
    ck_assert_str_eq(P.subs[2], "scanners/scanner-1/command");
    ck_assert_str_eq(P.subs[3], "command/all");
    for (int i = 0; i < FW_SUBSCRIPTIONS; i++)
        ck_assert_int_eq(P.sub_qos[i], 1);
    const struct fwt_pub *st = fwt_last_pub(&P, "scanners/scanner-1/status");
    ck_assert_ptr_nonnull(st);
    ck_assert_str_eq(st->payload, "online");
    ck_assert(st->retain);
    ck_assert(status().online);
    ck_assert_uint_eq(fw_device_stats(&D)->connects, 1);
}
END_TEST

/* A broker may complete SUBSCRIBE after it has answered later packets (RabbitMQ binds a
   queue): an item published on "online" before the SUBACK would reach nobody. */
START_TEST(the_device_announces_online_only_when_every_subscription_is_granted)
{
    fw_device_start(&D);
    fw_device_on_connected(&D, false);
    ck_assert_int_eq(P.nsubs, FW_SUBSCRIPTIONS);
    ck_assert_int_eq(fwt_count_pubs(&P, "scanners/scanner-1/status"), 0);
    ck_assert(!status().online);
    ck_assert(status().connected);
    for (int i = FW_SUBSCRIPTIONS - 1; i >= 1; i--) {
        fw_device_on_subscribed(&D, P.sub_token[i], 1);
        P.sub_acked[i] = true;
        ck_assert_int_eq(fwt_count_pubs(&P, "scanners/scanner-1/status"), 0);
        ck_assert(!status().online);
    }
    fw_device_on_subscribed(&D, P.sub_token[0], 1);
    P.sub_acked[0] = true;
    const struct fwt_pub *st = fwt_last_pub(&P, "scanners/scanner-1/status");
    ck_assert_ptr_nonnull(st);
    ck_assert_str_eq(st->payload, "online");
    ck_assert(status().online);
    /* A repeated or unknown SUBACK changes nothing. */
    fw_device_on_subscribed(&D, P.sub_token[0], 1);
    fw_device_on_subscribed(&D, 9999, 0x80);
    ck_assert_int_eq(fwt_count_pubs(&P, "scanners/scanner-1/status"), 1);
    ck_assert_uint_eq(fw_device_stats(&D)->subscriptions_refused, 0);
}
END_TEST

/* A platform that can put several filters in one SUBSCRIBE gets them all at once; the
   SUBACK's codes come back in order under the one token. */
START_TEST(all_filters_go_in_one_subscribe_where_the_platform_can)
{
    fwt_use_subscribe_many(&P);
    ck_assert_int_eq(fw_device_init(&D, &(struct fw_device_config){.device_id = "scanner-1",
                                                                    .qos = 1},
                                    &P.ports), FW_OK);
    fw_device_start(&D);
    fw_device_on_connected(&D, false);
    ck_assert_int_eq(P.subscribe_many_calls, 1);
    ck_assert_int_eq(P.nsubs, FW_SUBSCRIPTIONS);
    ck_assert_str_eq(P.subs[0], "item_registration");
    ck_assert_str_eq(P.subs[3], "command/all");
    for (int i = 1; i < FW_SUBSCRIPTIONS; i++)
        ck_assert_uint_eq(P.sub_token[i], P.sub_token[0]);
    /* The second code refuses: the others count, that one is asked again alone. */
    fw_device_on_subscribed(&D, P.sub_token[0], 1);
    fw_device_on_subscribed(&D, P.sub_token[0], 0x80);
    fw_device_on_subscribed(&D, P.sub_token[0], 1);
    fw_device_on_subscribed(&D, P.sub_token[0], 1);
    for (int i = 0; i < FW_SUBSCRIPTIONS; i++)
        P.sub_acked[i] = true;
    ck_assert(!status().online);
    ck_assert_uint_eq(fw_device_stats(&D)->subscriptions_refused, 1);
    ck_assert(fwt_log_contains(&P, "subscription to scanners/scanner-1/inventory/reply refused"));
    P.now += FW_RECONNECT_MIN_MS * 5 / 4;
    fw_device_tick(&D, P.now);
    ck_assert_int_eq(P.nsubs, FW_SUBSCRIPTIONS + 1);
    ck_assert_int_eq(P.subscribe_many_calls, 1); /* one filter: a plain subscribe */
    ck_assert_str_eq(P.subs[FW_SUBSCRIPTIONS], "scanners/scanner-1/inventory/reply");
    ck_assert_int_eq(fwt_suback_all(&P, &D, 1), 1);
    ck_assert(status().online);
    /* A platform that cannot send it: every filter counted refused, asked again later. */
    fw_device_on_connection_lost(&D, "cut");
    P.subscribe_rc = FW_ERR_IO;
    P.now = status().next_connect_ms;
    fw_device_tick(&D, P.now);
    fw_device_on_connected(&D, true);
    ck_assert_uint_eq(fw_device_stats(&D)->subscriptions_refused, 1 + FW_SUBSCRIPTIONS);
}
END_TEST

START_TEST(a_refused_subscription_is_shown_counted_and_asked_again_after_a_back_off)
{
    fw_device_start(&D);
    fw_device_on_connected(&D, false);
    fw_device_on_subscribed(&D, P.sub_token[0], 1);
    fw_device_on_subscribed(&D, P.sub_token[1], 0x80);
    fw_device_on_subscribed(&D, P.sub_token[2], 1);
    fw_device_on_subscribed(&D, P.sub_token[3], 1);
    P.sub_acked[0] = P.sub_acked[1] = P.sub_acked[2] = P.sub_acked[3] = true;
    ck_assert_uint_eq(fw_device_stats(&D)->subscriptions_refused, 1);
    ck_assert_int_eq(screen(), FW_SCREEN_ERROR);
    ck_assert(fwt_log_contains(&P, "subscription to scanners/scanner-1/inventory/reply refused: "
                                   "unspecified error (0x80)"));
    ck_assert_int_eq(fwt_count_pubs(&P, "scanners/scanner-1/status"), 0);
    ck_assert(!status().online);
    /* Not before three quarters of the first back-off; by five quarters, only that one. */
    P.now += FW_RECONNECT_MIN_MS * 3 / 4 - 1;
    fw_device_tick(&D, P.now);
    ck_assert_int_eq(P.nsubs, 4);
    P.now += FW_RECONNECT_MIN_MS / 2 + 2;
    fw_device_tick(&D, P.now);
    ck_assert_int_eq(P.nsubs, 5);
    ck_assert_str_eq(P.subs[4], "scanners/scanner-1/inventory/reply");
    /* Refused again: the next wait is about twice as long. */
    fw_device_on_subscribed(&D, P.sub_token[4], 0x87);
    P.sub_acked[4] = true;
    ck_assert_uint_eq(fw_device_stats(&D)->subscriptions_refused, 2);
    P.now += FW_RECONNECT_MIN_MS * 5 / 4;
    fw_device_tick(&D, P.now);
    ck_assert_int_eq(P.nsubs, 5);
    P.now += FW_RECONNECT_MIN_MS * 5 / 4;
    fw_device_tick(&D, P.now);
    ck_assert_int_eq(P.nsubs, 6);
    ck_assert_int_eq(fwt_suback_all(&P, &D, 1), 1);
    ck_assert(status().online);
    ck_assert_int_eq(fwt_count_pubs(&P, "scanners/scanner-1/status"), 1);
}
END_TEST

START_TEST(a_subscribe_the_port_refuses_is_counted_and_asked_again)
{
    fw_device_start(&D);
    P.subscribe_rc = FW_ERR_IO;
    fw_device_on_connected(&D, false);
    ck_assert_uint_eq(fw_device_stats(&D)->subscriptions_refused, FW_SUBSCRIPTIONS);
    ck_assert_int_eq(P.nsubs, 0);
    P.subscribe_rc = 0;
    P.now += FW_RECONNECT_MIN_MS * 5 / 4;
    fw_device_tick(&D, P.now);
    ck_assert_int_eq(P.nsubs, FW_SUBSCRIPTIONS);
    fwt_suback_all(&P, &D, 1);
    ck_assert(status().online);
}
END_TEST

START_TEST(the_outbox_waits_for_the_subscriptions_and_a_reconnect_waits_again)
{
    fw_device_start(&D);
    item(300, "Widget", 1, false);
    register_head(TAG1, 4); /* offline: kept in the outbox */
    ck_assert_uint_eq(status().outbox, 1);
    fw_device_on_connected(&D, false);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 0);
    fwt_suback_all(&P, &D, 1);
    ck_assert_int_eq(fwt_count_pubs(&P, REGISTERED_TOPIC), 1);
    uint32_t old_token = P.sub_token[0];

    fw_device_on_connection_lost(&D, "link cut");
    ck_assert(!status().connected);
    fwt_clear_calls(&P);
    P.now = status().next_connect_ms;
    fw_device_tick(&D, P.now);
    fw_device_on_connected(&D, true);
    ck_assert_int_eq(P.nsubs, FW_SUBSCRIPTIONS);
    /* A SUBACK of the previous connection does not count for this one. */
    fw_device_on_subscribed(&D, old_token, 1);
    ck_assert(!status().online);
    fwt_suback_all(&P, &D, 1);
    ck_assert(status().online);
    ck_assert_int_eq(fwt_count_pubs(&P, "scanners/scanner-1/status"), 1);
}
END_TEST

START_TEST(stop_publishes_offline_retained_before_a_clean_disconnect)
{
    online();
    fw_device_stop(&D);
    const struct fwt_pub *st = fwt_last_pub(&P, "scanners/scanner-1/status");
    ck_assert_str_eq(st->payload, "offline");
    ck_assert(st->retain);
    ck_assert_int_eq(P.disconnect_calls, 1);
    ck_assert_int_lt(st->order, P.disconnect_order);
    ck_assert(!status().online);
    /* Stopped: time passing does not reconnect. */
    pass_time(2 * FW_RECONNECT_MAX_MS);
    ck_assert_int_eq(P.connect_calls, 1);
}
END_TEST

START_TEST(reconnect_delays_double_with_jitter_up_to_the_cap_and_reset_after_success)
{
    fw_device_start(&D);
    uint32_t base = FW_RECONNECT_MIN_MS;
    bool saw_non_base = false;
    for (int attempt = 1; attempt <= 10; attempt++) {
        ck_assert_int_eq(P.connect_calls, attempt);
        fw_device_on_connect_failed(&D, 5, "not authorised");
        struct fw_status st = status();
        uint64_t delay = st.next_connect_ms - P.now;
        ck_assert_msg(delay >= base - base / 4 && delay <= base + base / 4,
                      "attempt %d: delay %llu for base %u", attempt, (unsigned long long)delay,
                      base);
        saw_non_base |= delay != base;
        /* Not before it is due... */
        P.now = st.next_connect_ms - 1;
        fw_device_tick(&D, P.now);
        ck_assert_int_eq(P.connect_calls, attempt);
        /* ...and on time. */
        P.now++;
        fw_device_tick(&D, P.now);
        base = base * 2 > FW_RECONNECT_MAX_MS ? FW_RECONNECT_MAX_MS : base * 2;
    }
    ck_assert_msg(saw_non_base, "no jitter at all");
    ck_assert_uint_eq(fw_device_stats(&D)->connect_failures, 10);
    /* Success resets the back-off: a loss waits about the first delay again. */
    fwt_online(&P, &D, false);
    fw_device_on_connection_lost(&D, "keep-alive timeout");
    uint64_t delay = status().next_connect_ms - P.now;
    ck_assert(delay >= FW_RECONNECT_MIN_MS * 3 / 4 && delay <= FW_RECONNECT_MIN_MS * 5 / 4);
    ck_assert_uint_eq(fw_device_stats(&D)->connection_losses, 1);
}
END_TEST

START_TEST(devices_with_different_seeds_spread_their_reconnects)
{
    /* Jitter exists so a fleet does not reconnect in lockstep. */
    uint64_t first = 0;
    bool differ = false;
    for (uint32_t seed = 1; seed <= 8; seed++) {
        fwt_init(&P, false);
        struct fw_device_config cfg;
        config(&cfg);
        cfg.seed = seed;
        ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
        fw_device_start(&D);
        fw_device_on_connect_failed(&D, -4, "refused");
        uint64_t at = status().next_connect_ms;
        if (seed == 1)
            first = at;
        differ |= at != first;
    }
    ck_assert(differ);
}
END_TEST

START_TEST(a_connect_refused_by_the_port_is_retried_later)
{
    P.connect_rc = FW_ERR_IO;
    fw_device_start(&D);
    ck_assert_uint_eq(fw_device_stats(&D)->connect_failures, 1);
    ck_assert_uint_ne(status().next_connect_ms, 0);
    P.connect_rc = 0;
    P.now = status().next_connect_ms;
    fw_device_tick(&D, P.now);
    ck_assert_int_eq(P.connect_calls, 2);
    fwt_online(&P, &D, false);
    ck_assert(status().online);
}
END_TEST

START_TEST(a_clean_session_and_qos_0_are_passed_on_as_configured)
{
    struct fw_device_config cfg;
    config(&cfg);
    cfg.clean_session = true;
    cfg.qos = 0;
    cfg.keepalive_s = 7;
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
    online();
    ck_assert(P.clean_session);
    ck_assert_int_eq(P.keepalive_s, 7);
    ck_assert_int_eq(P.sub_qos[0], 0);
    item(1, "One", 1, false);
    register_head(TAG1, sizeof TAG1);
    ck_assert_int_eq(fwt_last_pub(&P, REGISTERED_TOPIC)->qos, 0);
    /* No acknowledgement comes for QoS 0: handed over is done. */
    ck_assert_uint_eq(status().outbox, 0);
}
END_TEST

/* -------------------------------------------------------------- rejects */

START_TEST(every_malformed_message_is_counted_by_reason_logged_and_survived)
{
    static char big[FW_INBOUND_MAX + 1];
    memset(big, ' ', sizeof big);
    const struct {
        const char *payload;
        size_t len;
        enum fw_reject reason;
    } cases[] = {
        {big, sizeof big, FW_REJECT_OVERSIZE},
        {"{\"item_id\":\"\xc0\xaf\"}", 16, FW_REJECT_NOT_UTF8},
        {"{oops", 5, FW_REJECT_INVALID_JSON},
        {"{} {}", 5, FW_REJECT_TRAILING_GARBAGE},
        {"[]", 2, FW_REJECT_NOT_OBJECT},
        {"{}", 2, FW_REJECT_MISSING_FIELD},
        {"{\"item_id\":1.5,\"item_name\":\"a\",\"tag_quantity\":1}", 48, FW_REJECT_WRONG_TYPE},
        {"{\"item_id\":0,\"item_name\":\"a\",\"tag_quantity\":1}", 46, FW_REJECT_OUT_OF_RANGE},
        {"{\"item_id\":1,\"item_name\":\"\",\"tag_quantity\":1}", 45, FW_REJECT_NAME_TOO_LONG},
    };
    online();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_uint_eq(cases[i].len == sizeof big ? sizeof big : strlen(cases[i].payload),
                          cases[i].len);
        fw_device_on_message(&D, "item_registration", cases[i].payload, cases[i].len, 1, false);
        ck_assert_msg(fw_device_stats(&D)->rejects[cases[i].reason] == 1, "case %zu", i);
        ck_assert_msg(fwt_log_contains(&P, fw_reject_name(cases[i].reason)), "case %zu", i);
    }
    fw_device_on_message(&D, "somewhere/else", "{}", 2, 1, false);
    ck_assert_uint_eq(fw_device_stats(&D)->rejects[FW_REJECT_UNKNOWN_TOPIC], 1);
    const char *bad_reply = "{\"tag\":1,\"found\":false}";
    fw_device_on_message(&D, "scanners/scanner-1/inventory/reply", bad_reply, strlen(bad_reply), 1,
                         false);
    ck_assert_uint_eq(fw_device_stats(&D)->rejects[FW_REJECT_WRONG_TYPE], 2);
    ck_assert_uint_eq(fw_device_stats(&D)->rejects_total, sizeof cases / sizeof cases[0] + 2);
    ck_assert_uint_eq(fw_device_stats(&D)->items_received, 0);
    /* And the device carries on. */
    item(1, "Still here", 1, false);
    ck_assert_uint_eq(status().pending, 1);
}
END_TEST

/* --------------------------------------------------- topics and ids */

START_TEST(the_seed_layout_uses_the_shared_topics)
{
    ck_assert_str_eq(fw_device_id(&D), "scanner-1");
    ck_assert_str_eq(fw_device_topic_item_registration(&D), "item_registration");
    ck_assert_str_eq(fw_device_topic_item_registered(&D), "item_registered");
    ck_assert_str_eq(fw_device_topic_inventory_query(&D), "inventory/query");
    ck_assert_str_eq(fw_device_topic_inventory_reply(&D), "scanners/scanner-1/inventory/reply");
    ck_assert_str_eq(fw_device_topic_status(&D), "scanners/scanner-1/status");
}
END_TEST

START_TEST(the_per_device_layout_puts_every_topic_under_the_device)
{
    struct fw_device_config cfg;
    config(&cfg);
    cfg.layout = FW_LAYOUT_PER_DEVICE;
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
    ck_assert_str_eq(fw_device_topic_item_registration(&D), "scanners/scanner-1/item_registration");
    ck_assert_str_eq(fw_device_topic_item_registered(&D), "scanners/scanner-1/item_registered");
    ck_assert_str_eq(fw_device_topic_inventory_query(&D), "scanners/scanner-1/inventory/query");
    ck_assert_str_eq(fw_device_topic_inventory_reply(&D), "scanners/scanner-1/inventory/reply");
    ck_assert_str_eq(fw_device_topic_status(&D), "scanners/scanner-1/status");
    online();
    ck_assert_str_eq(P.subs[0], "scanners/scanner-1/item_registration");
}
END_TEST

START_TEST(topic_overrides_replace_the_layout_and_expand_every_id_placeholder)
{
    struct fw_device_config cfg;
    config(&cfg);
    cfg.topic_item_registration = "plant/{id}/in/{id}";
    cfg.topic_status = "fixed/status";
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
    ck_assert_str_eq(fw_device_topic_item_registration(&D), "plant/scanner-1/in/scanner-1");
    ck_assert_str_eq(fw_device_topic_status(&D), "fixed/status");
    ck_assert_str_eq(fw_device_topic_item_registered(&D), "item_registered");
    online();
    const char *json = "{\"item_id\":1,\"item_name\":\"a\",\"tag_quantity\":1}";
    /* On the default topic: not subscribed, rejected. */
    fw_device_on_message(&D, "item_registration", json, strlen(json), 1, false);
    ck_assert_uint_eq(fw_device_stats(&D)->rejects[FW_REJECT_UNKNOWN_TOPIC], 1);
    fw_device_on_message(&D, "plant/scanner-1/in/scanner-1", json, strlen(json), 1, false);
    ck_assert_uint_eq(status().pending, 1);
}
END_TEST

START_TEST(bad_device_ids_topics_ports_and_qos_are_refused_at_init)
{
    struct fw_device_config cfg;
    char long_id[FW_DEVICE_ID_MAX + 1];
    memset(long_id, 'a', sizeof long_id);
    long_id[FW_DEVICE_ID_MAX] = '\0';
    const char *bad_ids[] = {NULL, "", "a/b", "a+b", "a#b", "tab\there", long_id};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        config(&cfg);
        cfg.device_id = bad_ids[i];
        ck_assert_msg(fw_device_init(&D, &cfg, &P.ports) == FW_ERR_INVAL, "id %zu", i);
    }
    long_id[FW_DEVICE_ID_MAX - 1] = '\0'; /* the longest that fits */
    config(&cfg);
    cfg.device_id = long_id;
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);

    /* An id that fits but makes a topic too long. */
    cfg.layout = FW_LAYOUT_PER_DEVICE;
    cfg.topic_status = "{id}/{id}/{id}";
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_ERR_INVAL);

    const char *bad_topics[] = {"", "items/#", "items/+/x"};
    for (size_t i = 0; i < sizeof bad_topics / sizeof bad_topics[0]; i++) {
        config(&cfg);
        cfg.topic_item_registration = bad_topics[i];
        ck_assert_msg(fw_device_init(&D, &cfg, &P.ports) == FW_ERR_INVAL, "topic %zu", i);
    }
    config(&cfg);
    cfg.topic_item_registration = "same";
    cfg.topic_inventory_reply = "same";
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_ERR_INVAL);
    config(&cfg);
    cfg.qos = 3;
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_ERR_INVAL);
    cfg.qos = -1;
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_ERR_INVAL);
    config(&cfg);
    struct fw_ports ports = P.ports;
    ports.clock_ms = NULL;
    ck_assert_int_eq(fw_device_init(&D, &cfg, &ports), FW_ERR_INVAL);
    ck_assert_int_eq(fw_device_init(&D, NULL, &P.ports), FW_ERR_INVAL);
}
END_TEST

START_TEST(config_defaults_are_the_seed_layout_persistent_session_and_qos_1)
{
    struct fw_device_config cfg;
    memset(&cfg, 0x7f, sizeof cfg);
    fw_device_config_defaults(&cfg);
    ck_assert_int_eq(cfg.layout, FW_LAYOUT_SEED);
    ck_assert(!cfg.clean_session);
    ck_assert_int_eq(cfg.keepalive_s, FW_KEEPALIVE_S);
    ck_assert_int_eq(cfg.qos, 1);
    ck_assert(!cfg.resume_in_flight);
    ck_assert_ptr_null(cfg.device_id);
    ck_assert_ptr_null(cfg.topic_status);
    ck_assert_uint_eq(cfg.seed, 0);
}
END_TEST

START_TEST(screen_names_are_stable_snake_case)
{
    ck_assert_str_eq(fw_screen_name(FW_SCREEN_IDLE), "idle");
    ck_assert_str_eq(fw_screen_name(FW_SCREEN_INVENTORY_WAIT), "inventory_wait");
    ck_assert_str_eq(fw_screen_name(FW_SCREEN_CANCELLED), "cancelled");
    ck_assert_str_eq(fw_screen_name((enum fw_screen)99), "unknown");
}
END_TEST

START_TEST(a_device_struct_stays_within_its_memory_budget)
{
    /* 10,000 devices in one process, 32 KiB on the board: keep it small. */
    ck_assert_uint_le(sizeof(struct fw_device), 8 * 1024);
}
END_TEST

/* ------------------------------------------------------- random events */

static uint32_t rnd_state;
static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 1664525u + 1013904223u;
    return (rnd_state >> 8) % n;
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static uint32_t seq_of(const char *payload)
{
    const char *p = strstr(payload, "\"seq\":");
    ck_assert_ptr_nonnull(p);
    return (uint32_t)strtoul(p + 6, NULL, 10);
}

/* Thousands of seeded random events from the network, the operator and the clock: the
   bounds hold, nothing crashes or leaks (ASan), and a seq is never reused for different
   content - re-sends repeat the registration byte for byte. */
START_TEST(random_events_keep_every_bound_and_every_key_unique)
{
    enum { STEPS = 20000, MAX_SEQ = 20000 };
    static uint32_t content_of_seq[MAX_SEQ + 1];
    static uint32_t tokens[64];
    int ntokens = 0;
    memset(content_of_seq, 0, sizeof content_of_seq);
    rnd_state = 12345u + (uint32_t)_i;
    fw_device_start(&D);
    for (int step = 0; step < STEPS; step++) {
        uint8_t uid[10] = {0x04, (uint8_t)rnd(40), 1, 2, 3, 4, 5, 6, 7, 8};
        const size_t lens[5] = {4, 7, 10, 4, 5};
        switch (rnd(12)) {
        case 0: case 1:
            item(1 + (int)rnd(60), "Random item", 1 + (int)rnd(5), rnd(2));
            break;
        case 2: case 3:
            (void)fw_device_on_tag(&D, uid, lens[rnd(5)]);
            break;
        case 4: case 5:
            fw_device_on_button(&D, (enum fw_button)rnd(3));
            break;
        case 6:
            /* A SUBACK may also refuse: the device then asks again on a later tick. */
            fw_device_on_connected(&D, rnd(2));
            fwt_suback_all(&P, &D, rnd(4) == 0 ? 0x80 : 1);
            break;
        case 7:
            if (rnd(3) == 0)
                fw_device_on_connection_lost(&D, "random");
            else
                fw_device_on_connect_failed(&D, (int)rnd(6), "random");
            break;
        case 8:
            if (ntokens > 0) {
                int k = (int)rnd((uint32_t)ntokens);
                fw_device_on_published(&D, tokens[k]);
                tokens[k] = tokens[--ntokens];
            }
            break;
        case 9: case 10:
            P.now += rnd(3000);
            fw_device_tick(&D, P.now);
            break;
        case 11:
            if (rnd(20) == 0) {
                fw_device_stop(&D);
                fw_device_start(&D);
            }
            break;
        }
        for (int i = 0; i < P.npubs; i++) {
            const struct fwt_pub *pub = &P.pubs[i];
            if (strcmp(pub->topic, REGISTERED_TOPIC) != 0)
                continue;
            uint32_t seq = seq_of(pub->payload);
            ck_assert_uint_le(seq, MAX_SEQ);
            uint32_t h = hash_str(pub->payload);
            ck_assert_msg(content_of_seq[seq] == 0 || content_of_seq[seq] == h,
                          "seq %u reused for different content", seq);
            content_of_seq[seq] = h;
            if (ntokens < 64)
                tokens[ntokens++] = pub->token;
        }
        fwt_clear_calls(&P);
        struct fw_status st = status();
        ck_assert_uint_le(st.pending, FW_PENDING_ITEMS);
        ck_assert_uint_le(st.outbox, FW_OUTBOX_LEN);
        ck_assert_uint_le(st.outbox_in_flight, st.outbox);
        const struct fw_stats *s = fw_device_stats(&D);
        ck_assert_uint_le(s->registrations_acked, s->registrations_confirmed);
        ck_assert_uint_le(s->registrations_resent, s->registrations_sent);
    }
    ck_assert_uint_gt(fw_device_stats(&D)->registrations_confirmed, 0);
    ck_assert_uint_gt(fw_device_stats(&D)->registrations_acked, 0);
}
END_TEST

static Suite *device_suite(void)
{
    Suite *s = suite_create("fw_device");
    TCase *t = tcase_create("device");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_add_test(t, an_item_scanned_and_confirmed_is_published_with_its_idempotency_key);
    tcase_add_test(t, a_ten_byte_tag_is_published_as_twenty_hex_characters);
    tcase_add_test(t, items_are_shown_in_arrival_order_one_after_the_other);
    tcase_add_test(t, cancel_skips_the_head_item_without_publishing);
    tcase_add_test(t, a_tag_of_a_wrong_length_is_a_wrong_tag_shown_and_counted);
    tcase_add_test(t, a_tag_registered_recently_is_refused_as_a_wrong_tag);
    tcase_add_test(t, an_inventory_look_up_publishes_a_query_and_shows_the_answer);
    tcase_add_test(t, an_inventory_look_up_without_answer_times_out_and_ignores_a_late_one);
    tcase_add_test(t, an_inventory_look_up_while_offline_shows_an_error_and_sends_nothing);
    tcase_add_test(t, a_redelivered_item_is_queued_once_with_or_without_the_dup_flag);
    tcase_add_test(t, an_item_redelivered_after_its_registration_is_not_registered_again);
    tcase_add_test(t, an_item_still_in_the_restored_outbox_is_a_duplicate_after_a_restart);
    tcase_add_test(t, a_full_queue_refuses_an_item_on_screen_and_in_the_figures);
    tcase_add_test(t, a_full_outbox_refuses_the_confirm_and_keeps_the_item);
    tcase_add_test(t, registrations_made_offline_are_sent_in_order_once_on_reconnect);
    tcase_add_test(t, the_outbox_survives_a_restart_and_is_sent_with_the_same_keys);
    tcase_add_test(t, a_corrupt_stored_outbox_is_reported_and_ignored);
    tcase_add_test(t, a_registration_in_flight_at_a_connection_loss_is_resent_with_the_same_seq);
    tcase_add_test(t, at_qos_2_a_resuming_client_completes_the_registration_and_the_device_waits);
    tcase_add_test(t, at_qos_2_a_broker_without_the_session_gets_the_registration_again);
    tcase_add_test(t, at_qos_2_a_client_that_forgets_its_handshakes_gets_the_registration_again);
    tcase_add_test(t, a_refused_publish_keeps_the_registration_for_the_next_connection);
    tcase_add_test(t, a_registration_refused_by_the_broker_leaves_the_outbox_and_unblocks_the_rest);
    tcase_add_test(t, a_refused_registration_stays_dropped_after_a_restart_while_others_wait);
    tcase_add_test(t, a_publish_lost_by_the_platform_is_kept_and_sent_again);
    tcase_add_test(t, an_inventory_query_refused_by_the_broker_ends_the_wait_with_an_error);
    tcase_add_test(t, a_refused_status_publish_is_counted_and_logged_only);
    tcase_add_test(t, the_sequence_number_is_persisted_and_never_reused_after_a_restart);
    tcase_add_test(t, a_sequence_number_that_cannot_be_persisted_is_not_used);
    tcase_add_test(t, start_connects_with_a_retained_offline_last_will);
    tcase_add_test(t, on_connect_the_device_subscribes_and_announces_online_retained);
    tcase_add_test(t, the_device_announces_online_only_when_every_subscription_is_granted);
    tcase_add_test(t, all_filters_go_in_one_subscribe_where_the_platform_can);
    tcase_add_test(t, a_refused_subscription_is_shown_counted_and_asked_again_after_a_back_off);
    tcase_add_test(t, a_subscribe_the_port_refuses_is_counted_and_asked_again);
    tcase_add_test(t, the_outbox_waits_for_the_subscriptions_and_a_reconnect_waits_again);
    tcase_add_test(t, stop_publishes_offline_retained_before_a_clean_disconnect);
    tcase_add_test(t, reconnect_delays_double_with_jitter_up_to_the_cap_and_reset_after_success);
    tcase_add_test(t, devices_with_different_seeds_spread_their_reconnects);
    tcase_add_test(t, a_connect_refused_by_the_port_is_retried_later);
    tcase_add_test(t, a_clean_session_and_qos_0_are_passed_on_as_configured);
    tcase_add_test(t, every_malformed_message_is_counted_by_reason_logged_and_survived);
    tcase_add_test(t, the_seed_layout_uses_the_shared_topics);
    tcase_add_test(t, the_per_device_layout_puts_every_topic_under_the_device);
    tcase_add_test(t, topic_overrides_replace_the_layout_and_expand_every_id_placeholder);
    tcase_add_test(t, bad_device_ids_topics_ports_and_qos_are_refused_at_init);
    tcase_add_test(t, config_defaults_are_the_seed_layout_persistent_session_and_qos_1);
    tcase_add_test(t, screen_names_are_stable_snake_case);
    tcase_add_test(t, a_device_struct_stays_within_its_memory_budget);
    tcase_add_loop_test(t, random_events_keep_every_bound_and_every_key_unique, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(device_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
