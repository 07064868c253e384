/*
 * test_fw_command.c - remote commands through the device's ports (docs/protocol.md,
 * "Commands"): every command and its reply, strict validation, idempotency by cmd_id also
 * across a reboot, reboot and power cut keeping pending items, outbox, settings and the
 * lock, and the flash records refusing corruption.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_codec.h"
#include "fw_store.h"
#include "fw_test_platform.h"

static struct fwt_platform P;
static struct fw_device D;
static const uint8_t TAG1[4] = {0x04, 0xA1, 0xB2, 0xC3};
static const uint8_t TAG2[4] = {0x04, 0xA1, 0xB2, 0xC4};

#define CMD_TOPIC "scanners/scanner-1/command"
#define REPLY_TOPIC "scanners/scanner-1/command/reply"

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

static void online(void)
{
    fw_device_start(&D);
    fwt_online(&P, &D, false);
}

/* The process dies and starts again on the same flash: no fw_device_stop(), nothing of
   RAM survives. */
static void power_cut_and_on(void)
{
    struct fw_device_config cfg;
    config(&cfg);
    memset(&D, 0x5A, sizeof D);
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
    fwt_clear_calls(&P);
    online();
}

static void send_on(const char *topic, const char *json)
{
    fw_device_on_message(&D, topic, json, strlen(json), 1, false);
}

static void send(const char *json) { send_on(CMD_TOPIC, json); }

static const char *reply(void)
{
    const struct fwt_pub *r = fwt_last_pub(&P, REPLY_TOPIC);
    ck_assert_ptr_nonnull(r);
    ck_assert(!r->retain);
    ck_assert_uint_le(r->len, FW_REPLY_MAX);
    return r->payload;
}

static int replies(void) { return fwt_count_pubs(&P, REPLY_TOPIC); }

static struct fw_status status(void)
{
    struct fw_status st;
    fw_device_status(&D, &st);
    return st;
}

static void item(int id, const char *name)
{
    char buf[256];
    fwt_item_json(buf, sizeof buf, id, name, 1);
    fw_device_on_message(&D, fw_device_topic_item_registration(&D), buf, strlen(buf), 1, false);
}

static void pass_time(uint64_t ms)
{
    uint64_t end = P.now + ms;
    while (P.now < end) {
        P.now += 10;
        fw_device_tick(&D, P.now);
    }
}

static const struct fw_stats *stats(void) { return fw_device_stats(&D); }

#define ck_assert_reply_has(needle) ck_assert_ptr_nonnull(strstr(reply(), needle))

/* ---------------------------------------------------------------- commands */

START_TEST(status_answers_ok_with_the_documented_fields)
{
    online();
    item(1, "Drill");
    send("{\"cmd_id\":\"c-1\",\"cmd\":\"status\"}");
    ck_assert_int_eq(replies(), 1);
    const char *r = reply();
    ck_assert_ptr_eq(strstr(r, "{\"cmd_id\":\"c-1\",\"device_id\":\"scanner-1\",\"result\":\"ok\","
                               "\"reason\":\"\",\"data\":{\"version\":\"" FW_VERSION "\""),
                     r);
    static const char *const fields[] = {
        "\"uptime_s\":0",          "\"boot_count\":1",      "\"online\":true",
        "\"screen\":\"item\"",     "\"locked\":false",      "\"pending\":1",
        "\"pending_capacity\":16", "\"outbox\":0",          "\"outbox_capacity\":16",
        "\"flash_bytes\":",        "\"keepalive\":30",      "\"inventory_timeout\":5",
        "\"contrast\":127",        "\"last_error\":\"\"",   "\"items_received\":1",
        "\"registrations_acked\":0", "\"duplicates_suppressed\":0", "\"rejects_total\":0",
        "\"connection_losses\":0", "\"commands_received\":1"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ck_assert_msg(strstr(r, fields[i]) != NULL, "%s missing in %s", fields[i], r);
    ck_assert_uint_eq(stats()->commands_ok, 1);
    ck_assert_int_eq(fwt_last_pub(&P, REPLY_TOPIC)->qos, 1);
}
END_TEST

/* The longest status: a 47-byte id, a 32-byte cmd_id, every counter at its widest, the
   longest last error. It must fit FW_REPLY_MAX whole, with its data. */
START_TEST(the_largest_status_reply_fits_the_reply_buffer)
{
    fwt_init(&P, true);
    struct fw_device_config cfg;
    fw_device_config_defaults(&cfg);
    cfg.device_id = "d-234567890123456789012345678901234567890123456";
    ck_assert_uint_eq(strlen(cfg.device_id), FW_DEVICE_ID_MAX - 1);
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
    fw_device_start(&D);
    fwt_online(&P, &D, false);
    memset(&D.stats, 0xFF, sizeof D.stats);
    D.stats.commands_received = UINT32_MAX - 1; /* this command makes it UINT32_MAX */
    D.settings.boot_count = UINT32_MAX;
    memset(D.last_error, 'x', sizeof D.last_error - 1);
    char json[160];
    snprintf(json, sizeof json, "{\"cmd_id\":\"%.32s\",\"cmd\":\"status\"}",
             "0123456789abcdef0123456789abcdef");
    fw_device_on_message(&D, fw_device_topic_command(&D), json, strlen(json), 1, false);
    char topic[FW_TOPIC_MAX];
    snprintf(topic, sizeof topic, "scanners/%s/command/reply", cfg.device_id);
    const struct fwt_pub *r = fwt_last_pub(&P, topic);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_le(r->len, FW_REPLY_MAX);
    ck_assert_msg(strstr(r->payload, "\"commands_received\":4294967295}}") != NULL, "%s", r->payload);
    ck_assert_ptr_nonnull(strstr(r->payload, "\"result\":\"ok\""));
}
END_TEST

START_TEST(identify_inverts_the_display_for_its_seconds_then_stops)
{
    online();
    pass_time(100);
    uint8_t normal[FW_FB_BYTES];
    memcpy(normal, P.frame, sizeof normal);
    send("{\"cmd_id\":\"i-1\",\"cmd\":\"identify\",\"args\":{\"seconds\":2}}");
    ck_assert_reply_has("\"result\":\"ok\",\"reason\":\"\",\"data\":{\"seconds\":2}}");
    ck_assert_uint_eq(P.frame[0], (uint8_t)~normal[0]);
    ck_assert_uint_eq(P.frame[FW_FB_BYTES / 2], (uint8_t)~normal[FW_FB_BYTES / 2]);
    pass_time(FW_IDENTIFY_BLINK_MS);
    ck_assert_mem_eq(P.frame, normal, sizeof normal);
    pass_time(FW_IDENTIFY_BLINK_MS);
    ck_assert_uint_eq(P.frame[0], (uint8_t)~normal[0]);
    pass_time(2000);
    ck_assert_mem_eq(P.frame, normal, sizeof normal);
    /* The default is 5 s; 61 is out of range. */
    send("{\"cmd_id\":\"i-2\",\"cmd\":\"identify\"}");
    ck_assert_reply_has("\"data\":{\"seconds\":5}");
    send("{\"cmd_id\":\"i-3\",\"cmd\":\"identify\",\"args\":{\"seconds\":61}}");
    ck_assert_reply_has("\"result\":\"error\",\"reason\":\"out_of_range\","
                        "\"data\":{\"field\":\"seconds\"}");
}
END_TEST

START_TEST(a_message_is_shown_until_a_button_and_tags_are_ignored_meanwhile)
{
    online();
    item(7, "Ladder");
    send("{\"cmd_id\":\"m-1\",\"cmd\":\"message\",\"args\":{\"text\":\"Go to dock 3\"}}");
    ck_assert_reply_has("\"result\":\"ok\",\"reason\":\"\",\"data\":{}}");
    ck_assert_int_eq(status().screen, FW_SCREEN_MESSAGE);
    fw_device_on_tag(&D, TAG1, sizeof TAG1);
    ck_assert_int_eq(status().screen, FW_SCREEN_MESSAGE);
    ck_assert(!D.has_scanned);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM);
    ck_assert_int_eq(status().screen, FW_SCREEN_ITEM); /* dismissed, nothing registered */
    ck_assert_int_eq(fwt_count_pubs(&P, "item_registered"), 0);
    send("{\"cmd_id\":\"m-2\",\"cmd\":\"message\",\"args\":{\"text\":\"\"}}");
    ck_assert_reply_has("\"reason\":\"out_of_range\",\"data\":{\"field\":\"text\"}");
    send("{\"cmd_id\":\"m-3\",\"cmd\":\"message\"}");
    ck_assert_reply_has("\"reason\":\"missing_arg\",\"data\":{\"field\":\"text\"}");
    send("{\"cmd_id\":\"m-4\",\"cmd\":\"message\",\"args\":{\"text\":7}}");
    ck_assert_reply_has("\"reason\":\"wrong_type\",\"data\":{\"field\":\"text\"}");
}
END_TEST

START_TEST(config_checks_every_value_applies_them_together_and_persists_them)
{
    online();
    send("{\"cmd_id\":\"k-1\",\"cmd\":\"config\",\"args\":{\"keepalive\":20,\"contrast\":9}}");
    ck_assert_reply_has("\"result\":\"ok\",\"reason\":\"\",\"data\":{\"keepalive\":20,"
                        "\"inventory_timeout\":5,\"contrast\":9}}");
    ck_assert_int_eq(P.contrast, 9);
    /* One bad value refuses all. */
    send("{\"cmd_id\":\"k-2\",\"cmd\":\"config\",\"args\":{\"contrast\":1,\"keepalive\":2}}");
    ck_assert_reply_has("\"result\":\"error\",\"reason\":\"out_of_range\","
                        "\"data\":{\"field\":\"keepalive\"}}");
    ck_assert_int_eq(P.contrast, 9);
    send("{\"cmd_id\":\"k-3\",\"cmd\":\"config\",\"args\":{\"brightness\":1}}");
    ck_assert_reply_has("\"reason\":\"unknown_arg\",\"data\":{\"field\":\"brightness\"}");
    send("{\"cmd_id\":\"k-4\",\"cmd\":\"config\",\"args\":{\"inventory_timeout\":\"5\"}}");
    ck_assert_reply_has("\"reason\":\"wrong_type\",\"data\":{\"field\":\"inventory_timeout\"}");
    send("{\"cmd_id\":\"k-5\",\"cmd\":\"config\",\"args\":{\"inventory_timeout\":61}}");
    ck_assert_reply_has("\"reason\":\"out_of_range\"");
    ck_assert_uint_eq(stats()->commands_ok, 1);
    ck_assert_uint_eq(stats()->commands_refused, 4);
    /* The keep-alive applies from the next connection, also after a power cut. */
    power_cut_and_on();
    ck_assert_int_eq(P.keepalive_s, 20);
    ck_assert_int_eq(P.contrast, 9);
    send("{\"cmd_id\":\"k-6\",\"cmd\":\"status\"}");
    ck_assert_reply_has("\"keepalive\":20,\"inventory_timeout\":5,\"contrast\":9");
}
END_TEST

START_TEST(a_setting_that_cannot_be_persisted_changes_nothing)
{
    online();
    P.storage_write_rc = FW_ERR_IO;
    send("{\"cmd_id\":\"f-1\",\"cmd\":\"config\",\"args\":{\"keepalive\":60}}");
    ck_assert_reply_has("\"result\":\"error\",\"reason\":\"flash_error\","
                        "\"data\":{\"keepalive\":30,");
    P.storage_write_rc = 0;
    send("{\"cmd_id\":\"f-2\",\"cmd\":\"status\"}");
    ck_assert_reply_has("\"keepalive\":30");
    ck_assert_ptr_nonnull(strstr(reply(), "\"last_error\":\"writing "));
}
END_TEST

START_TEST(lock_refuses_tags_and_buttons_survives_a_power_cut_and_unlock_resumes)
{
    online();
    item(3, "Crate");
    send("{\"cmd_id\":\"l-1\",\"cmd\":\"lock\"}");
    ck_assert_reply_has("\"data\":{\"locked\":true}}");
    ck_assert_int_eq(status().screen, FW_SCREEN_LOCKED);
    ck_assert(status().locked);
    fw_device_on_tag(&D, TAG1, sizeof TAG1);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM);
    ck_assert_uint_eq(stats()->locked_refusals, 2);
    ck_assert(!D.has_scanned);
    power_cut_and_on();
    ck_assert(status().locked);
    ck_assert_int_eq(status().screen, FW_SCREEN_LOCKED);
    ck_assert_uint_eq(status().pending, 1);
    send("{\"cmd_id\":\"l-2\",\"cmd\":\"unlock\"}");
    ck_assert_reply_has("\"data\":{\"locked\":false}}");
    ck_assert_int_eq(status().screen, FW_SCREEN_ITEM);
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM);
    ck_assert_int_eq(fwt_count_pubs(&P, "item_registered"), 1);
}
END_TEST

START_TEST(clear_queue_drops_and_counts_the_pending_items_and_busy_needs_force)
{
    online();
    item(1, "A");
    item(2, "B");
    item(3, "C");
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK); /* confirm waits */
    send("{\"cmd_id\":\"q-1\",\"cmd\":\"clear_queue\"}");
    ck_assert_reply_has("\"result\":\"error\",\"reason\":\"busy\"");
    ck_assert_uint_eq(status().pending, 3);
    send("{\"cmd_id\":\"q-2\",\"cmd\":\"clear_queue\",\"args\":{\"force\":true}}");
    ck_assert_reply_has("\"result\":\"ok\",\"reason\":\"\",\"data\":{\"cleared\":3}}");
    ck_assert_uint_eq(status().pending, 0);
    ck_assert_uint_eq(stats()->items_cleared, 3);
    ck_assert_int_eq(status().screen, FW_SCREEN_IDLE);
    power_cut_and_on();
    ck_assert_uint_eq(status().pending, 0);
}
END_TEST

/* ------------------------------------------------------------ validation */

START_TEST(a_malformed_command_gets_an_error_reply_and_the_device_carries_on)
{
    online();
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"cmd_id\":", "{\"cmd_id\":null,\"device_id\":\"scanner-1\",\"result\":\"error\","
                         "\"reason\":\"invalid_json\",\"data\":{}}"},
        {"[1]", "\"cmd_id\":null,\"device_id\":\"scanner-1\",\"result\":\"error\",\"reason\":\"not_object\""},
        {"{\"cmd\":\"status\"}", "\"cmd_id\":null,\"device_id\":\"scanner-1\",\"result\":\"error\",\"reason\":\"missing_field\",\"data\":{\"field\":\"cmd_id\"}"},
        {"{\"cmd_id\":5,\"cmd\":\"status\"}", "\"reason\":\"wrong_type\",\"data\":{\"field\":\"cmd_id\"}"},
        {"{\"cmd_id\":\"\",\"cmd\":\"status\"}", "\"reason\":\"bad_cmd_id\""},
        {"{\"cmd_id\":\"a b\",\"cmd\":\"status\"}", "\"reason\":\"bad_cmd_id\""},
        {"{\"cmd_id\":\"123456789012345678901234567890123\",\"cmd\":\"status\"}",
         "\"reason\":\"bad_cmd_id\""},
        {"{\"cmd_id\":\"v-1\"}", "\"cmd_id\":\"v-1\",\"device_id\":\"scanner-1\",\"result\":\"error\",\"reason\":\"missing_field\",\"data\":{\"field\":\"cmd\"}"},
        {"{\"cmd_id\":\"v-2\",\"cmd\":\"selfdestruct\"}", "\"cmd_id\":\"v-2\",\"device_id\":\"scanner-1\",\"result\":\"error\",\"reason\":\"unknown_command\""},
        {"{\"cmd_id\":\"v-3\",\"cmd\":\"status\",\"args\":[]}", "\"reason\":\"wrong_type\",\"data\":{\"field\":\"args\"}"},
        {"{\"cmd_id\":\"v-4\",\"cmd\":\"reboot\",\"args\":{\"force\":1}}", "\"reason\":\"wrong_type\",\"data\":{\"field\":\"force\"}"},
        {"{\"cmd_id\":\"v-5\",\"cmd\":\"lock\",\"args\":{\"x\":1}}", "\"reason\":\"unknown_arg\",\"data\":{\"field\":\"x\"}"},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        send(cases[i].json);
        ck_assert_int_eq(replies(), i + 1);
        ck_assert_msg(strstr(reply(), cases[i].want) != NULL, "case %d: %s", i, reply());
    }
    /* Not valid UTF-8, and over the inbound limit. */
    send("{\"cmd_id\":\"v-6\",\"cmd\":\"message\",\"args\":{\"text\":\"\xff\"}}");
    ck_assert_reply_has("\"reason\":\"not_utf8\"");
    static char big[FW_INBOUND_MAX + 2];
    memset(big, ' ', sizeof big - 1);
    send(big);
    ck_assert_reply_has("\"cmd_id\":null,\"device_id\":\"scanner-1\",\"result\":\"error\","
                        "\"reason\":\"oversize\"");
    ck_assert_uint_eq(stats()->commands_received, (uint32_t)n + 2);
    ck_assert_uint_eq(stats()->commands_refused, (uint32_t)n + 2);
    ck_assert_uint_eq(stats()->commands_ok, 0);
    ck_assert(status().online);
    ck_assert_int_eq(fwt_count_pubs(&P, "scanners/scanner-1/status"), 1);
    send("{\"cmd_id\":\"v-7\",\"cmd\":\"status\"}");
    ck_assert_reply_has("\"result\":\"ok\"");
}
END_TEST

START_TEST(a_broadcast_command_is_answered_on_the_device_own_reply_topic)
{
    online();
    send_on("command/all", "{\"cmd_id\":\"all-1\",\"cmd\":\"identify\",\"args\":{\"seconds\":1}}");
    ck_assert_int_eq(replies(), 1);
    ck_assert_reply_has("\"cmd_id\":\"all-1\",\"device_id\":\"scanner-1\",\"result\":\"ok\"");
}
END_TEST

/* ------------------------------------------------------------ idempotency */

START_TEST(a_repeated_cmd_id_is_answered_again_and_not_executed_again)
{
    online();
    item(1, "A");
    item(2, "B");
    send("{\"cmd_id\":\"r-1\",\"cmd\":\"clear_queue\"}");
    ck_assert_reply_has("\"data\":{\"cleared\":2}}");
    item(3, "C");
    /* The QoS 1 redelivery comes without or with DUP: keyed on cmd_id only. */
    const char *again = "{\"cmd_id\":\"r-1\",\"cmd\":\"clear_queue\"}";
    fw_device_on_message(&D, CMD_TOPIC, again, strlen(again), 1, true);
    ck_assert_int_eq(replies(), 2);
    ck_assert_reply_has("\"cmd_id\":\"r-1\",\"device_id\":\"scanner-1\",\"result\":\"ok\","
                        "\"reason\":\"\",\"data\":{\"duplicate\":true}}");
    ck_assert_uint_eq(status().pending, 1); /* item 3 stays */
    ck_assert_uint_eq(stats()->commands_duplicate, 1);
    ck_assert_uint_eq(stats()->items_cleared, 2);
    /* A refusal is remembered as a refusal. */
    send("{\"cmd_id\":\"r-2\",\"cmd\":\"config\",\"args\":{\"keepalive\":1}}");
    send("{\"cmd_id\":\"r-2\",\"cmd\":\"config\",\"args\":{\"keepalive\":10}}");
    ck_assert_reply_has("\"cmd_id\":\"r-2\",\"device_id\":\"scanner-1\",\"result\":\"error\","
                        "\"reason\":\"out_of_range\",\"data\":{\"duplicate\":true}}");
}
END_TEST

START_TEST(the_last_eight_ids_are_remembered_and_the_ninth_oldest_forgotten)
{
    online();
    char json[96];
    for (int i = 0; i <= FW_CMD_IDS; i++) {
        snprintf(json, sizeof json, "{\"cmd_id\":\"n-%d\",\"cmd\":\"status\"}", i);
        send(json);
    }
    send("{\"cmd_id\":\"n-1\",\"cmd\":\"status\"}");
    ck_assert_reply_has("\"duplicate\":true");
    send("{\"cmd_id\":\"n-0\",\"cmd\":\"status\"}"); /* pushed out by n-8 */
    ck_assert_ptr_null(strstr(reply(), "\"duplicate\":true"));
    ck_assert_uint_eq(stats()->commands_duplicate, 1);
}
END_TEST

/* ------------------------------------------------------------ reboot */

START_TEST(reboot_replies_then_restarts_from_flash_keeping_items_and_outbox)
{
    online();
    item(1, "A");
    item(2, "B");
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM); /* item 1 in the outbox, unacknowledged */
    ck_assert_uint_eq(status().outbox, 1);
    int connects = P.connect_calls;
    send("{\"cmd_id\":\"b-1\",\"cmd\":\"reboot\"}");
    ck_assert_reply_has("\"cmd_id\":\"b-1\",\"device_id\":\"scanner-1\",\"result\":\"ok\","
                        "\"reason\":\"\",\"data\":{}}");
    ck_assert(status().rebooting);
    ck_assert_int_eq(P.disconnect_calls, 0); /* not before the reply's PUBACK */
    fw_device_on_published(&D, fwt_last_pub(&P, REPLY_TOPIC)->token);
    fw_device_tick(&D, P.now);
    ck_assert_int_eq(P.disconnect_calls, 1);
    ck_assert_str_eq(fwt_last_pub(&P, "scanners/scanner-1/status")->payload, "offline");
    ck_assert(!status().connected);
    pass_time(FW_REBOOT_DOWN_MS - 20);
    ck_assert_int_eq(P.connect_calls, connects);
    pass_time(40);
    ck_assert_int_eq(P.connect_calls, connects + 1);
    ck_assert(!status().rebooting);
    fwt_clear_calls(&P);
    fwt_online(&P, &D, false);
    ck_assert_uint_eq(status().pending, 1);
    ck_assert_int_eq(status().head_item_id, 2);
    ck_assert_int_eq(fwt_count_pubs(&P, "item_registered"), 1); /* the outbox goes out again */
    ck_assert_uint_eq(stats()->reboots, 1);
    ck_assert_uint_eq(stats()->boots, 2);
    send("{\"cmd_id\":\"b-2\",\"cmd\":\"status\"}");
    ck_assert_reply_has("\"boot_count\":2");
}
END_TEST

START_TEST(a_reboot_whose_reply_is_never_acknowledged_still_happens_after_a_second)
{
    online();
    send("{\"cmd_id\":\"b-1\",\"cmd\":\"reboot\"}");
    pass_time(FW_REBOOT_REPLY_WAIT_MS - 20);
    ck_assert_int_eq(P.disconnect_calls, 0);
    pass_time(40);
    ck_assert_int_eq(P.disconnect_calls, 1);
}
END_TEST

START_TEST(a_redelivered_reboot_reboots_once_also_after_the_reboot)
{
    online();
    const char *cmd = "{\"cmd_id\":\"b-9\",\"cmd\":\"reboot\"}";
    send(cmd);
    send(cmd); /* before the reboot */
    ck_assert_reply_has("\"duplicate\":true");
    pass_time(FW_REBOOT_REPLY_WAIT_MS + FW_REBOOT_DOWN_MS + 50);
    fwt_online(&P, &D, true);
    ck_assert_uint_eq(stats()->reboots, 1);
    send(cmd); /* the broker redelivers it to the new connection */
    ck_assert_reply_has("\"cmd_id\":\"b-9\",\"device_id\":\"scanner-1\",\"result\":\"ok\","
                        "\"reason\":\"\",\"data\":{\"duplicate\":true}}");
    ck_assert(!status().rebooting);
    pass_time(FW_REBOOT_REPLY_WAIT_MS + FW_REBOOT_DOWN_MS + 50);
    ck_assert_uint_eq(stats()->reboots, 1);
    ck_assert_uint_eq(stats()->commands_duplicate, 2);
    /* And after a power cut too. */
    power_cut_and_on();
    send(cmd);
    ck_assert_reply_has("\"duplicate\":true");
}
END_TEST

START_TEST(reboot_during_a_registration_is_busy_unless_forced)
{
    online();
    item(1, "A");
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK);
    send("{\"cmd_id\":\"x-1\",\"cmd\":\"reboot\"}");
    ck_assert_reply_has("\"result\":\"error\",\"reason\":\"busy\",\"data\":{}}");
    ck_assert(!status().rebooting);
    /* status, config, message and lock go through and keep the scanned tag. */
    send("{\"cmd_id\":\"x-2\",\"cmd\":\"config\",\"args\":{\"contrast\":3}}");
    ck_assert_reply_has("\"result\":\"ok\"");
    ck_assert(D.has_scanned);
    send("{\"cmd_id\":\"x-3\",\"cmd\":\"reboot\",\"args\":{\"force\":true}}");
    ck_assert_reply_has("\"result\":\"ok\"");
    ck_assert(status().rebooting);
}
END_TEST

/* ------------------------------------------------------------ power cut and flash */

START_TEST(a_power_cut_keeps_every_accepted_item)
{
    online();
    for (int i = 1; i <= 5; i++)
        item(i, "Box");
    ck_assert_int_eq(fw_device_on_tag(&D, TAG1, sizeof TAG1), FW_OK);
    fw_device_on_button(&D, FW_BUTTON_CONFIRM); /* item 1 registered */
    ck_assert_int_eq(fw_device_on_tag(&D, TAG2, sizeof TAG2), FW_OK); /* item 2 scanned */
    power_cut_and_on();
    ck_assert_uint_eq(status().pending, 4);
    ck_assert_int_eq(status().head_item_id, 2);
    ck_assert(!D.has_scanned); /* a scan in RAM is gone: scan again */
    /* A redelivery of an item already held is a duplicate, not a second copy. */
    item(3, "Box");
    ck_assert_uint_eq(status().pending, 4);
    ck_assert_uint_eq(stats()->boots, 1); /* stats live in RAM: a cut forgets them */
}
END_TEST

START_TEST(a_corrupt_flash_record_is_reported_and_never_trusted)
{
    static const char *const keys[] = {"pending", "settings", "cmdids"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        setup();
        online();
        item(1, "A");
        send("{\"cmd_id\":\"z-1\",\"cmd\":\"lock\"}");
        size_t len;
        uint8_t *rec = fwt_storage_get(&P, keys[k], &len);
        ck_assert_ptr_nonnull(rec);
        rec[len / 2] ^= 0x40;
        power_cut_and_on();
        ck_assert_msg(fw_device_stats(&D)->storage_errors == 1, "%s", keys[k]);
        ck_assert(fwt_log_contains(&P, "is corrupt, ignored"));
        if (k == 0)
            ck_assert_uint_eq(status().pending, 0);
        if (k == 1)
            ck_assert(!status().locked);
        if (k == 2) {
            send("{\"cmd_id\":\"z-1\",\"cmd\":\"lock\"}");
            ck_assert_ptr_null(strstr(reply(), "\"duplicate\":true"));
        }
    }
}
END_TEST

START_TEST(store_codecs_round_trip_and_refuse_every_truncation)
{
    struct fw_settings s = {0}, out;
    s.keepalive_s = 3600;
    s.inventory_timeout_s = 60;
    s.contrast = 255;
    s.locked = true;
    s.boot_count = 0xA1B2C3D4u;
    uint8_t buf[FW_PENDING_STORE_MAX];
    int n = fw_store__encode_settings(&s, buf, sizeof buf);
    ck_assert_int_eq(n, FW_SETTINGS_STORE_LEN);
    ck_assert_int_eq(fw_store__decode_settings(&out, buf, (size_t)n), FW_OK);
    ck_assert_mem_eq(&out, &s, sizeof s);
    for (int len = 0; len < n; len++)
        ck_assert_int_eq(fw_store__decode_settings(&out, buf, (size_t)len), FW_ERR_INVAL);

    struct fw_pending_item items[FW_PENDING_ITEMS] = {{0}}, back[FW_PENDING_ITEMS];
    for (int i = 0; i < FW_PENDING_ITEMS; i++) {
        items[i].item_id = 100 + i;
        items[i].tag_quantity = (uint32_t)i + 1;
        memset(items[i].name, 'a' + i, FW_ITEM_NAME_MAX - 1);
    }
    n = fw_store__encode_pending(items, 5, FW_PENDING_ITEMS, buf, sizeof buf);
    ck_assert_int_eq(n, FW_PENDING_STORE_MAX);
    uint16_t count = 0;
    ck_assert_int_eq(fw_store__decode_pending(back, &count, buf, (size_t)n), FW_OK);
    ck_assert_uint_eq(count, FW_PENDING_ITEMS);
    ck_assert_int_eq(back[0].item_id, 105); /* oldest first from the ring's head */
    ck_assert_int_eq(back[FW_PENDING_ITEMS - 1].item_id, 104);
    for (int len = 0; len < n; len += 7)
        ck_assert_int_eq(fw_store__decode_pending(back, &count, buf, (size_t)len), FW_ERR_INVAL);
    ck_assert_int_eq(fw_store__encode_pending(items, 0, 2, buf, 10), FW_ERR_TOO_BIG);
}
END_TEST

static Suite *command_suite(void)
{
    Suite *s = suite_create("command");
    TCase *t = tcase_create("command");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_add_test(t, status_answers_ok_with_the_documented_fields);
    tcase_add_test(t, the_largest_status_reply_fits_the_reply_buffer);
    tcase_add_test(t, identify_inverts_the_display_for_its_seconds_then_stops);
    tcase_add_test(t, a_message_is_shown_until_a_button_and_tags_are_ignored_meanwhile);
    tcase_add_test(t, config_checks_every_value_applies_them_together_and_persists_them);
    tcase_add_test(t, a_setting_that_cannot_be_persisted_changes_nothing);
    tcase_add_test(t, lock_refuses_tags_and_buttons_survives_a_power_cut_and_unlock_resumes);
    tcase_add_test(t, clear_queue_drops_and_counts_the_pending_items_and_busy_needs_force);
    tcase_add_test(t, a_malformed_command_gets_an_error_reply_and_the_device_carries_on);
    tcase_add_test(t, a_broadcast_command_is_answered_on_the_device_own_reply_topic);
    tcase_add_test(t, a_repeated_cmd_id_is_answered_again_and_not_executed_again);
    tcase_add_test(t, the_last_eight_ids_are_remembered_and_the_ninth_oldest_forgotten);
    tcase_add_test(t, reboot_replies_then_restarts_from_flash_keeping_items_and_outbox);
    tcase_add_test(t, a_reboot_whose_reply_is_never_acknowledged_still_happens_after_a_second);
    tcase_add_test(t, a_redelivered_reboot_reboots_once_also_after_the_reboot);
    tcase_add_test(t, reboot_during_a_registration_is_busy_unless_forced);
    tcase_add_test(t, a_power_cut_keeps_every_accepted_item);
    tcase_add_test(t, a_corrupt_flash_record_is_reported_and_never_trusted);
    tcase_add_test(t, store_codecs_round_trip_and_refuse_every_truncation);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(command_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
