/*
 * test_scenario.c - Check suite of the scenario language (harness/scenario).
 *
 * Every construct parses to the expected syntax tree; every scenarios/<name>.scn in the library
 * parses cleanly; each deliberately wrong file in tests/bad gives its file:line:column and
 * message; random and mangled input never crashes or leaks (run under ASan for that); steps
 * print back as the runner's timeline shows them.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, ftruncate */
#include <check.h>
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hx/scenario.h"

/* ================================================================ helpers */

static const char HEADER[] = "scenario t\n"
                             "timeout 10s\n"
                             "group fleet of 10 devices\n"
                             "  link proxy\n"
                             "  layout per-device\n"
                             "  keepalive 4s\n";

/* Parse text, copied into a buffer of exactly its length (no NUL after it, so ASan sees any
   read past the end). */
static int parse_exact(const char *text, size_t len, struct scn_scenario **s, struct scn_diag *d)
{
    char *buf = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, text, len);
    int rc = scn_parse_buffer("t.scn", buf, len, s, d);
    free(buf);
    return rc;
}

/* Parse HEADER + steps; the scenario must be valid. */
static struct scn_scenario *parse_ok(const char *steps)
{
    char text[8192];
    snprintf(text, sizeof text, "%s%s", HEADER, steps);
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    int rc = parse_exact(text, strlen(text), &s, &d);
    if (rc != SCN_OK) {
        char msg[512];
        scn_diag_format(&d, msg, sizeof msg);
        ck_abort_msg("unexpected parse error: %s\n--- text:\n%s", msg, text);
    }
    return s;
}

/* Parse a whole text that must fail at line:col with a message containing want. */
static void check_error(const char *text, uint32_t line, uint32_t col, const char *want)
{
    struct scn_scenario *s = (struct scn_scenario *)1;
    struct scn_diag d;
    int rc = parse_exact(text, strlen(text), &s, &d);
    char msg[512];
    scn_diag_format(&d, msg, sizeof msg);
    ck_assert_msg(rc == SCN_ERR_SYNTAX, "expected a syntax error for:\n%s", text);
    ck_assert_ptr_null(s);
    ck_assert_msg(d.line == line && d.col == col, "expected %u:%u, got %s", line, col, msg);
    ck_assert_msg(strstr(d.message, want), "expected '%s' in: %s", want, msg);
}

/* Parse one step and compare its description. */
static void check_describe(const char *step, const char *want)
{
    struct scn_scenario *s = parse_ok(step);
    ck_assert_uint_eq(s->n_steps, 1);
    char buf[512];
    int n = scn_step_describe(&s->steps[0], buf, sizeof buf);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(n, (int)strlen(want));
    scn_free(s);
}

/* ================================================================ declarations */

START_TEST(test_a_full_header_fills_every_setting)
{
    static const char text[] =
        "# comment line\n"
        "scenario full_header   # trailing comment\n"
        "description First part,\n"
        "description   second part.\n"
        "seed 18446744073709551615\n"
        "timeout 1.5min\n"
        "broker mtls\n"
        "  persistence on\n"
        "  autosave_interval 1\n"
        "  autosave_on_changes on\n"
        "  max_queued_messages 500\n"
        "group front of 3 devices\n"
        "  id_prefix door-\n"
        "  session clean\n"
        "  qos 0\n"
        "  mqtt 5\n"
        "  keepalive 15s\n"
        "  layout per-device\n"
        "  link proxy\n"
        "  flash off\n"
        "  operator auto think 200ms..1s wrong_tags 5% cancels 2.5%\n"
        "\n"
        "group back of 1 device\n"
        "\toperator manual\r\n"
        "backend\n"
        "  items 20 per device\n"
        "  rate 50/s\n"
        "  malformed 6 invalid_json, missing_field,oversize\n";
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    ck_assert_int_eq(parse_exact(text, sizeof text - 1, &s, &d), SCN_OK);
    ck_assert_str_eq(s->file, "t.scn");
    ck_assert_str_eq(s->name, "full_header");
    ck_assert_str_eq(s->description, "First part, second part.");
    ck_assert(s->seed == UINT64_MAX);
    ck_assert_int_eq(s->timeout_ms, 90000);
    ck_assert_int_eq(s->broker.variant, SCN_BROKER_MTLS);
    ck_assert(s->broker.persistence && s->broker.autosave_on_changes);
    ck_assert_uint_eq(s->broker.autosave_interval, 1);
    ck_assert_uint_eq(s->broker.max_queued_messages, 500);
    ck_assert_uint_eq(s->broker.pos.line, 7);
    ck_assert_uint_eq(s->n_groups, 2);
    ck_assert_uint_eq(s->n_devices, 4);
    const struct scn_group *g = &s->groups[0];
    ck_assert_str_eq(g->name, "front");
    ck_assert_str_eq(g->id_prefix, "door-");
    ck_assert_uint_eq(g->count, 3);
    ck_assert_uint_eq(g->first, 1);
    ck_assert_int_eq(g->session, SCN_SESSION_CLEAN);
    ck_assert_int_eq(g->qos, 0);
    ck_assert_int_eq(g->mqtt, SCN_MQTT_5);
    ck_assert_uint_eq(g->keepalive_s, 15);
    ck_assert_int_eq(g->layout, SCN_LAYOUT_PER_DEVICE);
    ck_assert_int_eq(g->link, SCN_LINK_PROXY);
    ck_assert(!g->flash);
    ck_assert_int_eq(g->op.mode, SCN_OPERATOR_AUTO);
    ck_assert_int_eq(g->op.think_min_ms, 200);
    ck_assert_int_eq(g->op.think_max_ms, 1000);
    ck_assert_uint_eq(g->op.wrong_tag_bp, 500);
    ck_assert_uint_eq(g->op.cancel_bp, 250);
    ck_assert_uint_eq(g->pos.line, 12);
    g = &s->groups[1];
    ck_assert_str_eq(g->id_prefix, "back-");
    ck_assert_uint_eq(g->first, 4);
    ck_assert_int_eq(g->op.mode, SCN_OPERATOR_MANUAL);
    ck_assert_uint_eq(s->backend.items, 20);
    ck_assert(s->backend.per_device);
    ck_assert_uint_eq(s->backend.rate_per_s, 50);
    ck_assert_uint_eq(s->backend.malformed, 6);
    ck_assert_uint_eq(s->backend.malformed_kinds, (1u << SCN_REJECT_INVALID_JSON) |
                                                      (1u << SCN_REJECT_MISSING_FIELD) |
                                                      (1u << SCN_REJECT_OVERSIZE));
    ck_assert_uint_eq(s->n_steps, 0);
    char id[32];
    ck_assert_int_eq(scn_device_id(s, 3, id, sizeof id), 6);
    ck_assert_str_eq(id, "door-3");
    scn_device_id(s, 4, id, sizeof id);
    ck_assert_str_eq(id, "back-1");
    ck_assert_int_eq(scn_device_id(s, 5, id, sizeof id), -1);
    ck_assert_ptr_eq(scn_device_group(s, 4), &s->groups[1]);
    ck_assert_ptr_null(scn_device_group(s, 0));
    scn_free(s);
}
END_TEST

START_TEST(test_unwritten_settings_take_the_documented_defaults)
{
    static const char text[] = "scenario d\ntimeout 5s\ngroup g of 2 devices\n";
    struct scn_scenario *s = NULL;
    ck_assert_int_eq(parse_exact(text, sizeof text - 1, &s, NULL), SCN_OK);
    ck_assert_str_eq(s->description, "");
    ck_assert(s->seed == 1);
    ck_assert_int_eq(s->broker.variant, SCN_BROKER_PLAIN);
    ck_assert(s->broker.persistence && !s->broker.autosave_on_changes);
    ck_assert_uint_eq(s->broker.max_queued_messages, 0);
    ck_assert_uint_eq(s->broker.pos.line, 0);
    const struct scn_group *g = &s->groups[0];
    ck_assert_str_eq(g->id_prefix, "scanner-");
    ck_assert_int_eq(g->session, SCN_SESSION_PERSISTENT);
    ck_assert_int_eq(g->qos, 1);
    ck_assert_int_eq(g->mqtt, SCN_MQTT_311);
    ck_assert_uint_eq(g->keepalive_s, 30);
    ck_assert_int_eq(g->layout, SCN_LAYOUT_SEED);
    ck_assert_int_eq(g->link, SCN_LINK_DIRECT);
    ck_assert(g->flash);
    ck_assert_int_eq(g->op.mode, SCN_OPERATOR_AUTO);
    ck_assert_int_eq(g->op.think_min_ms, 100);
    ck_assert_int_eq(g->op.think_max_ms, 300);
    ck_assert_uint_eq(s->backend.items, 0);
    scn_free(s);
}
END_TEST

START_TEST(test_malformed_without_kinds_uses_every_payload_kind)
{
    static const char text[] = "scenario d\ntimeout 5s\ngroup g of 2 devices\nbackend\n"
                               "  malformed 18\n";
    struct scn_scenario *s = NULL;
    ck_assert_int_eq(parse_exact(text, sizeof text - 1, &s, NULL), SCN_OK);
    ck_assert_uint_eq(s->backend.malformed_kinds, 0x3ffu); /* all ten but unknown_topic */
    scn_free(s);
}
END_TEST

/* ================================================================ steps and timing */

START_TEST(test_timings_at_after_wait_and_expect_keep_positions)
{
    struct scn_scenario *s = parse_ok("at 2s power off device 1\n"
                                      "after 500ms power on device 1\n"
                                      "wait 1.25s\n"
                                      "  # an indented comment is fine\n"
                                      "wait until online == true on device 1 within 10s\n"
                                      "expect ledger lost == 0\n");
    ck_assert_uint_eq(s->n_steps, 5);
    ck_assert_int_eq(s->steps[0].timing, SCN_AT);
    ck_assert_int_eq(s->steps[0].time_ms, 2000);
    ck_assert_int_eq(s->steps[0].action, SCN_ACT_POWER_OFF);
    ck_assert_str_eq(s->steps[0].pos.file, "t.scn");
    ck_assert_uint_eq(s->steps[0].pos.line, 7);
    ck_assert_uint_eq(s->steps[0].pos.col, 1);
    ck_assert_int_eq(s->steps[1].timing, SCN_AFTER);
    ck_assert_int_eq(s->steps[1].time_ms, 500);
    ck_assert_int_eq(s->steps[2].timing, SCN_WAIT);
    ck_assert_int_eq(s->steps[2].action, SCN_ACT_NOTHING);
    ck_assert_int_eq(s->steps[2].time_ms, 1250);
    ck_assert_int_eq(s->steps[3].timing, SCN_WAIT_UNTIL);
    ck_assert_int_eq(s->steps[3].action, SCN_ACT_EXPECT);
    ck_assert(s->steps[3].u.expect.has_within);
    ck_assert_int_eq(s->steps[3].u.expect.within.resolved_ms, 10000);
    ck_assert_uint_eq(s->steps[3].pos.line, 11);
    ck_assert_int_eq(s->steps[4].timing, SCN_THEN);
    ck_assert_uint_eq(s->steps[4].pos.line, 12);
    scn_free(s);
}
END_TEST

START_TEST(test_durations_accept_every_unit_and_decimals)
{
    struct scn_scenario *s = parse_ok("at 250ms heal\nat 1.5s heal\nat 2min heal\nat 1h heal\n"
                                      "after 0.001s heal\n");
    ck_assert_int_eq(s->steps[0].time_ms, 250);
    ck_assert_int_eq(s->steps[1].time_ms, 1500);
    ck_assert_int_eq(s->steps[2].time_ms, 120000);
    ck_assert_int_eq(s->steps[3].time_ms, 3600000);
    ck_assert_int_eq(s->steps[4].time_ms, 1);
    scn_free(s);
}
END_TEST

/* ================================================================ actions */

START_TEST(test_fault_actions_parse_to_their_fields)
{
    struct scn_scenario *s = parse_ok(
        "at 1s drop next 3 puback to broker on device 3\n"
        "at 1s drop all PUBLISH to device\n"
        "at 1s delay all both ways by 300ms on devices 2..4\n"
        "at 1s duplicate next 1 PUBLISH to device on device scanner-7\n"
        "at 1s cut link fin on random 2 devices\n"
        "at 1s throttle 1.5KiB/s on group fleet\n"
        "at 1s inject malformed bad_length to device 2\n");
    const struct scn_step *st = s->steps;
    ck_assert_int_eq(st[0].action, SCN_ACT_DROP);
    ck_assert_uint_eq(st[0].u.fault.count, 3);
    ck_assert_int_eq(st[0].u.fault.packet, SCN_PKT_PUBACK);
    ck_assert_int_eq(st[0].u.fault.dir, SCN_DIR_TO_BROKER);
    ck_assert_int_eq(st[0].sel.kind, SCN_SEL_DEVICE);
    ck_assert_uint_eq(st[0].sel.first, 3);
    ck_assert_uint_eq(st[1].u.fault.count, 0);
    ck_assert_int_eq(st[1].u.fault.dir, SCN_DIR_TO_DEVICE);
    ck_assert_int_eq(st[1].sel.kind, SCN_SEL_ALL);
    ck_assert_uint_eq(st[1].sel.count, 10);
    ck_assert_int_eq(st[2].u.fault.packet, SCN_PKT_ANY);
    ck_assert_int_eq(st[2].u.fault.dir, SCN_DIR_BOTH);
    ck_assert_int_eq(st[2].u.fault.delay_ms, 300);
    ck_assert_int_eq(st[2].sel.kind, SCN_SEL_RANGE);
    ck_assert_uint_eq(st[2].sel.first, 2);
    ck_assert_uint_eq(st[2].sel.last, 4);
    ck_assert_uint_eq(st[2].sel.count, 3);
    ck_assert_int_eq(st[3].action, SCN_ACT_DUPLICATE);
    ck_assert_uint_eq(st[3].sel.first, 7);
    ck_assert_str_eq(st[3].sel.id, "scanner-7");
    ck_assert_int_eq(st[4].action, SCN_ACT_CUT);
    ck_assert(!st[4].u.rst);
    ck_assert_int_eq(st[4].sel.kind, SCN_SEL_RANDOM);
    ck_assert_uint_eq(st[4].sel.count, 2);
    ck_assert_uint_eq(st[5].u.bytes_per_s, 1536);
    ck_assert_int_eq(st[5].sel.kind, SCN_SEL_GROUP);
    ck_assert_int_eq(st[5].sel.group, 0);
    ck_assert_int_eq(st[6].action, SCN_ACT_INJECT);
    ck_assert_int_eq(st[6].u.frame, SCN_FRAME_BAD_LENGTH);
    ck_assert_uint_eq(st[6].sel.first, 2);
    scn_free(s);
}
END_TEST

START_TEST(test_backend_operator_and_device_actions_parse_to_their_fields)
{
    struct scn_scenario *s = parse_ok("at 1s publish 20 items to device 2\n"
                                      "at 1s publish 5 items\n"
                                      "at 1s publish malformed not_utf8\n"
                                      "at 1s scan tag 04a1b2c3d4e5f6 on device 1\n"
                                      "at 1s scan random tag\n"
                                      "at 1s inventory on device 1\n"
                                      "at 1s broker kill\n"
                                      "at 1s network down devices 1..2\n");
    const struct scn_step *st = s->steps;
    ck_assert_int_eq(st[0].action, SCN_ACT_PUBLISH_ITEMS);
    ck_assert_uint_eq(st[0].u.publish.count, 20);
    ck_assert_int_eq(st[0].sel.kind, SCN_SEL_DEVICE);
    ck_assert_int_eq(st[1].sel.kind, SCN_SEL_NONE);
    ck_assert_int_eq(st[2].action, SCN_ACT_PUBLISH_MALFORMED);
    ck_assert_uint_eq(st[2].u.publish.count, 1);
    ck_assert_int_eq(st[2].u.publish.kind, SCN_REJECT_NOT_UTF8);
    ck_assert_int_eq(st[3].action, SCN_ACT_SCAN_TAG);
    ck_assert_uint_eq(st[3].u.tag.len, 7);
    ck_assert_uint_eq(st[3].u.tag.uid[0], 0x04);
    ck_assert_uint_eq(st[3].u.tag.uid[6], 0xf6);
    ck_assert_int_eq(st[4].action, SCN_ACT_SCAN_RANDOM);
    ck_assert_int_eq(st[4].sel.kind, SCN_SEL_ALL);
    ck_assert_int_eq(st[5].action, SCN_ACT_MODE);
    ck_assert_int_eq(st[6].action, SCN_ACT_BROKER_KILL);
    ck_assert_int_eq(st[6].sel.kind, SCN_SEL_NONE);
    ck_assert_int_eq(st[7].action, SCN_ACT_NETWORK_DOWN);
    ck_assert_int_eq(st[7].sel.kind, SCN_SEL_RANGE);
    scn_free(s);
}
END_TEST

/* Each line form, parsed and printed back. */
static const struct {
    const char *step;
    const char *described;
} FORMS[] = {
    {"at 2s drop next 1 PUBACK to broker on device 3",
     "at 2.000s: drop next 1 PUBACK to broker on device 3"},
    {"at 2s drop all PINGRESP to device on devices 1..3",
     "at 2.000s: drop all PINGRESP to device on devices 1..3"},
    {"after 500ms delay PUBLISH to device by 300ms on all devices",
     "after 0.500s: delay PUBLISH to device by 0.300s on all devices"},
    {"at 0s duplicate next 2 publish to broker on device scanner-2",
     "at 0.000s: duplicate next 2 PUBLISH to broker on device scanner-2"},
    {"at 1s cut link rst on device 1", "at 1.000s: cut link rst on device 1"},
    {"at 1s blackhole link on random 3 devices",
     "at 1.000s: blackhole link on random 3 devices"},
    {"at 1s throttle 10kB/s on group fleet", "at 1.000s: throttle 10000B/s on group fleet"},
    {"at 1s refuse connections on device 4", "at 1.000s: refuse connections on device 4"},
    {"at 1s heal", "at 1.000s: heal on all devices"},
    {"at 1s inject malformed reserved_type to device 2",
     "at 1.000s: inject malformed reserved_type to device 2"},
    {"at 1s inject malformed oversize", "at 1.000s: inject malformed oversize to all devices"},
    {"at 1s broker stop", "at 1.000s: broker stop"},
    {"at 1s broker restart", "at 1.000s: broker restart"},
    {"at 1s publish 20 items to devices 1..2", "at 1.000s: publish 20 items to devices 1..2"},
    {"at 1s publish 1 item", "at 1.000s: publish 1 item"},
    {"at 1s publish 3 malformed missing_field to device 1",
     "at 1.000s: publish 3 malformed missing_field to device 1"},
    {"at 1s scan tag 04A1B2C3 on device 1", "at 1.000s: scan tag 04A1B2C3 on device 1"},
    {"at 1s scan wrong tag on device 1", "at 1.000s: scan wrong tag on device 1"},
    {"at 1s confirm on device 1", "at 1.000s: confirm on device 1"},
    {"at 1s cancel on device 1", "at 1.000s: cancel on device 1"},
    {"at 1s mode on device 1", "at 1.000s: mode on device 1"},
    {"at 1s operator pause on all devices", "at 1.000s: operator pause on all devices"},
    {"at 1s operator resume", "at 1.000s: operator resume on all devices"},
    {"at 1s power off device 3", "at 1.000s: power off device 3"},
    {"at 1s power on on device 3", "at 1.000s: power on device 3"},
    {"at 1s restart random 1 device", "at 1.000s: restart random 1 device"},
    {"at 1s network up devices 2..5", "at 1.000s: network up devices 2..5"},
    {"wait 2s", "wait 2.000s"},
    {"expect ledger registered_once == 200", "then: expect ledger registered_once == 200"},
    {"expect ledger latency_p99 < 1.5s", "then: expect ledger latency_p99 < 1.500s"},
    {"expect ledger latency_p90 <= 900ms", "then: expect ledger latency_p90 <= 0.900s"},
    {"expect ledger unknown_items == 0", "then: expect ledger unknown_items == 0"},
    {"at 3s expect duplicates_suppressed >= 1 on device 2",
     "at 3.000s: expect duplicates_suppressed >= 1 on device 2"},
    {"expect sum rejects missing_field == 3 on all devices",
     "then: expect sum rejects missing_field == 3 on all devices"},
    {"expect session_present == yes on device 1",
     "then: expect session_present == true on device 1"},
    {"expect sum online == 10", "then: expect sum online == 10 on all devices"},
    {"wait until screen == confirm on device 2 within 1s",
     "wait until screen == confirm on device 2 within 1.000s"},
    {"expect screen != inventory_wait", "then: expect screen != inventory_wait on all devices"},
    {"expect outbox == 0 within 5s", "then: expect outbox == 0 on all devices within 5.000s"},
    {"expect will published for device 1 within 1.5 * keepalive + 1s",
     "then: expect will published for device 1 within 7.000s (1.5 x keepalive + 1.000s)"},
    {"expect no will for devices 2..3 within keepalive * 2 - 500ms",
     "then: expect no will for devices 2..3 within 7.500s (2 x keepalive - 0.500s)"},
    {"expect retained status of device 1 == offline",
     "then: expect retained status of device 1 == offline"},
    {"expect registrations of device 1 arrive in order",
     "then: expect registrations of device 1 arrive in order"},
    {"wait until ledger lost == 0 within 2 * 500ms + keepalive",
     "wait until ledger lost == 0 within 5.000s (1 x keepalive + 1.000s)"},
    {"wait until reconnects>=1 on device 1 within 10s",
     "wait until reconnects >= 1 on device 1 within 10.000s"},
    {"wait until reconnects >= 1 on all devices within 5s + 2 * startup",
     "wait until reconnects >= 1 on all devices within 5.000s + 2 x startup"},
    {"expect no will for device 2 within keepalive + 1s + startup * 0.5",
     "then: expect no will for device 2 within 5.000s (1 x keepalive + 1.000s) + 0.5 x startup"},
    {"at 1s power cut device 2", "at 1.000s: power cut device 2"},
    {"at 1s command status", "at 1.000s: command status to all devices"},
    {"at 1s command reboot force=true to device 1 as r-1",
     "at 1.000s: command reboot force=true as r-1 to device 1"},
    {"at 1s command message text=\"Go to dock 3 # now\" to devices 1..3",
     "at 1.000s: command message text=\"Go to dock 3 # now\" to devices 1..3"},
    {"at 1s command config keepalive=60 contrast=200 as c-9 to group fleet",
     "at 1.000s: command config keepalive=60 contrast=200 as c-9 to group fleet"},
    {"at 1s command identify seconds = 3 to random 2 devices",
     "at 1.000s: command identify seconds=3 to random 2 devices"},
    {"at 1s device 2 publishes command lock to device 1",
     "at 1.000s: device 2 publishes command lock to device 1"},
    {"expect command replies ok == 10 within 5s",
     "then: expect command replies ok == 10 from all devices within 5.000s"},
    {"wait until command replies error reason out_of_range >= 1 from device 3 within 2s",
     "wait until command replies error reason out_of_range >= 1 from device 3 within 2.000s"},
    {"expect command replies duplicate == 1 on device 1",
     "then: expect command replies duplicate == 1 from device 1"},
    {"expect forged commands refused == 2", "then: expect forged commands refused == 2"},
    {"expect boot_count == 2 on device 1", "then: expect boot_count == 2 on device 1"},
    {"expect locked == true on device 1", "then: expect locked == true on device 1"},
};

START_TEST(test_each_line_form_prints_back_as_the_timeline_shows_it)
{
    check_describe(FORMS[_i].step, FORMS[_i].described);
}
END_TEST

START_TEST(test_expectations_parse_to_their_fields)
{
    struct scn_scenario *s = parse_ok(
        "expect sum rejects wrong_type != 0 on group fleet\n"
        "expect online == false on device 2\n"
        "expect will published for device 3 within 1.5 * keepalive + 1s\n"
        "expect ledger latency_max <= 2s\n"
        "expect retained status of all devices == online\n");
    const struct scn_expect *e = &s->steps[0].u.expect;
    ck_assert_int_eq(e->kind, SCN_EXP_COUNTER);
    ck_assert(e->sum);
    ck_assert_int_eq(e->counter, SCN_CTR_REJECTS);
    ck_assert_int_eq(e->reason, SCN_REJECT_WRONG_TYPE);
    ck_assert_int_eq(e->cmp, SCN_CMP_NE);
    ck_assert(!e->has_within);
    e = &s->steps[1].u.expect;
    ck_assert(!e->sum);
    ck_assert_int_eq(e->counter, SCN_CTR_ONLINE);
    ck_assert_int_eq(e->value, 0);
    e = &s->steps[2].u.expect;
    ck_assert_int_eq(e->kind, SCN_EXP_WILL);
    ck_assert_int_eq(e->within.ms, 1000);
    ck_assert_int_eq(e->within.keepalive_milli, 1500);
    ck_assert_int_eq(e->within.resolved_ms, 7000);
    ck_assert_int_eq(e->within.startup_milli, 0);
    e = &s->steps[3].u.expect;
    ck_assert_int_eq(e->kind, SCN_EXP_LEDGER);
    ck_assert_int_eq(e->ledger, SCN_LEDGER_LATENCY_MAX);
    ck_assert_int_eq(e->value, 2000);
    e = &s->steps[4].u.expect;
    ck_assert_int_eq(e->kind, SCN_EXP_RETAINED);
    ck_assert(e->online);
    scn_free(s);
}
END_TEST

START_TEST(test_command_steps_parse_to_their_fields)
{
    struct scn_scenario *s = parse_ok(
        "at 1s command message text=\"Go to dock 3\" to device 2\n"
        "at 1s command reboot force=true as reboot-1 to all devices\n"
        "at 1s command config keepalive=60 contrast=7 name=dock\n"
        "at 1s device scanner-3 publishes command status to device 1 as f-1\n"
        "at 1s power cut devices 1..2\n"
        "expect command replies error duplicate reason busy < 2 from device 4\n"
        "wait until forged commands accepted == 0 within 1s\n");
    const struct scn_step *st = s->steps;
    ck_assert_int_eq(st[0].action, SCN_ACT_COMMAND);
    ck_assert_int_eq(st[0].u.command.cmd, SCN_CMD_MESSAGE);
    ck_assert_uint_eq(st[0].u.command.n_args, 1);
    ck_assert_str_eq(st[0].u.command.args[0].key, "text");
    ck_assert_str_eq(st[0].u.command.args[0].value, "Go to dock 3");
    ck_assert_int_eq(st[0].u.command.args[0].type, SCN_ARG_STRING);
    ck_assert_str_eq(st[0].u.command.cmd_id, "");
    ck_assert_int_eq(st[0].sel.kind, SCN_SEL_DEVICE);
    ck_assert_uint_eq(st[0].sel.first, 2);
    ck_assert_int_eq(st[1].u.command.cmd, SCN_CMD_REBOOT);
    ck_assert_int_eq(st[1].u.command.args[0].type, SCN_ARG_BOOL);
    ck_assert_str_eq(st[1].u.command.cmd_id, "reboot-1");
    ck_assert_int_eq(st[1].sel.kind, SCN_SEL_ALL);
    ck_assert_uint_eq(st[2].u.command.n_args, 3);
    ck_assert_int_eq(st[2].u.command.args[0].type, SCN_ARG_NUMBER);
    ck_assert_str_eq(st[2].u.command.args[1].value, "7");
    ck_assert_int_eq(st[2].u.command.args[2].type, SCN_ARG_STRING);
    ck_assert_int_eq(st[2].sel.kind, SCN_SEL_ALL); /* no selector: every device */
    ck_assert_int_eq(st[3].action, SCN_ACT_FORGE_COMMAND);
    ck_assert_uint_eq(st[3].u.command.from, 3);
    ck_assert_int_eq(st[3].u.command.cmd, SCN_CMD_STATUS);
    ck_assert_str_eq(st[3].u.command.cmd_id, "f-1");
    ck_assert_uint_eq(st[3].sel.first, 1);
    ck_assert_int_eq(st[4].action, SCN_ACT_POWER_CUT);
    ck_assert_int_eq(st[4].sel.kind, SCN_SEL_RANGE);
    const struct scn_expect *e = &st[5].u.expect;
    ck_assert_int_eq(e->kind, SCN_EXP_REPLIES);
    ck_assert_int_eq(e->reply, SCN_REPLY_ERROR);
    ck_assert(e->reply_duplicate);
    ck_assert_str_eq(e->reply_reason, "busy");
    ck_assert_int_eq(e->cmp, SCN_CMP_LT);
    ck_assert_int_eq(e->value, 2);
    ck_assert_uint_eq(st[5].sel.first, 4);
    e = &st[6].u.expect;
    ck_assert_int_eq(st[6].timing, SCN_WAIT_UNTIL);
    ck_assert_int_eq(e->kind, SCN_EXP_FORGED);
    ck_assert(!e->forged_refused);
    ck_assert(e->has_within);
    ck_assert_int_eq(st[6].sel.kind, SCN_SEL_NONE);
    scn_free(s);
}
END_TEST

START_TEST(test_a_stray_quote_outside_a_command_stays_an_ordinary_word)
{
    static const char text[] = "scenario q\ntimeout 9s\n"
                               "description the \"offline\" Will and a stray \" quote\n"
                               "group a of 1 device\n";
    struct scn_scenario *s = NULL;
    ck_assert_int_eq(parse_exact(text, sizeof text - 1, &s, NULL), SCN_OK);
    ck_assert_str_eq(s->description, "the \"offline\" Will and a stray \" quote");
    scn_free(s);
}
END_TEST

START_TEST(test_keepalive_resolves_to_the_largest_of_the_selected_groups)
{
    static const char text[] = "scenario k\ntimeout 9s\n"
                               "group a of 2 devices\n  keepalive 2s\n"
                               "group b of 2 devices\n  keepalive 10s\n"
                               "expect will published for device 1 within 2 * keepalive\n"
                               "expect will published for devices 1..3 within 2 * keepalive\n"
                               "expect ledger lost == 0 within keepalive\n";
    struct scn_scenario *s = NULL;
    ck_assert_int_eq(parse_exact(text, sizeof text - 1, &s, NULL), SCN_OK);
    ck_assert_int_eq(s->steps[0].u.expect.within.resolved_ms, 4000);
    ck_assert_int_eq(s->steps[1].u.expect.within.resolved_ms, 20000);
    ck_assert_int_eq(s->steps[2].u.expect.within.resolved_ms, 10000);
    scn_free(s);
}
END_TEST

START_TEST(test_a_device_id_names_the_device_of_its_group)
{
    static const char text[] = "scenario k\ntimeout 9s\n"
                               "group a of 2 devices\n"
                               "group b of 3 devices\n  id_prefix dock_\n"
                               "at 1s power off device dock_3\n"
                               "at 1s power off device scanner-2\n"
                               "at 1s power off group b\n";
    struct scn_scenario *s = NULL;
    ck_assert_int_eq(parse_exact(text, sizeof text - 1, &s, NULL), SCN_OK);
    ck_assert_uint_eq(s->steps[0].sel.first, 5);
    ck_assert_uint_eq(s->steps[1].sel.first, 2);
    ck_assert_uint_eq(s->steps[2].sel.first, 3);
    ck_assert_uint_eq(s->steps[2].sel.last, 5);
    scn_free(s);
}
END_TEST

/* ================================================================ errors */

static const struct {
    const char *steps;
    uint32_t line, col;
    const char *message;
} STEP_ERRORS[] = {
    {"at soon heal\n", 1, 4, "expected a duration such as 500ms or 2s, found 'soon'"},
    {"at 5 heal\n", 1, 4, "expected a duration such as 500ms or 2s, found '5'"},
    {"at 0.5ms heal\n", 1, 4, "expected a duration"},
    {"at 25h heal\n", 1, 4, "expected a duration"},
    {"at 1s\n", 1, 6, "expected an action (drop, delay"},
    /* the hint is made from the action table: every start word, the last ones too */
    {"at 1s\n", 1, 6, "mode, inventory, operator, power, restart, network, command, device) or 'expect'"},
    {"at 1s dropp next 1 PUBACK to broker\n", 1, 7, "did you mean 'drop'?"},
    {"at 1s drop next 1 PUBAK to broker\n", 1, 19, "did you mean 'PUBACK'?"},
    {"at 1s drop next 0 PUBACK to broker\n", 1, 17, "(at least 1)"},
    {"at 1s drop next 1 PUBACK to server\n", 1, 29, "expected 'broker' or 'device' after 'to'"},
    {"at 1s drop next 1 PUBACK\n", 1, 25, "expected a direction"},
    {"at 1s delay all to device by 0ms\n", 1, 30, "expected a positive duration"},
    {"at 1s cut link\n", 1, 15, "expected 'rst' (reset) or 'fin'"},
    {"at 1s duplicate next 2 PUBACK to broker\n", 1, 24, "duplicates PUBLISH packets only"},
    {"at 1s inject malformed garbage\n", 1, 24, "expected a malformed frame kind"},
    {"at 1s heal on device 11\n", 1, 22, "there is no device 11: the scenario declares devices 1..10"},
    {"at 1s heal on devices 3..2\n", 1, 23, "1 <= first <= last"},
    {"at 1s heal on random 11 devices\n", 1, 22, "cannot draw 11 devices"},
    {"at 1s heal on group nope\n", 1, 21, "expected the name of a declared group, found 'nope'"},
    {"at 1s heal on everything\n", 1, 15, "expected a selector"},
    {"at 1s heal on device 1 please\n", 1, 24, "expected end of line, found 'please'"},
    {"at 1s throttle 10kbps\n", 1, 16, "expected a positive byte rate such as 10kB/s"},
    {"at 1s scan tag 04A1B2CZ\n", 1, 16, "expected an RFID tag UID"},
    {"at 1s publish items\n", 1, 15, "expected how many items before 'items'"},
    {"at 1s publish 2 malformed unknown_topic\n", 1, 27, "unknown_topic is not a payload"},
    {"at 1s broker crash\n", 1, 14, "expected 'stop', 'kill' or 'restart'"},
    {"wait until ledger lost == 0\n", 1, 28, "expected 'within <duration>'"},
    {"wait soon\n", 1, 6, "expected a duration such as 2s, or 'until"},
    {"expect ledger lots == 0\n", 1, 15, "did you mean 'lost'?"},
    {"expect ledger lost = 0\n", 1, 20, "write '==' to compare"},
    {"expect ledger lost == many\n", 1, 23, "expected a number, found 'many'"},
    {"expect ledger latency_p50 < 5\n", 1, 29, "expected a duration"},
    {"expect duplicates_supressed >= 1\n", 1, 8, "did you mean 'duplicates_suppressed'?"},
    {"expect rejects_total >= 1 on device 0\n", 1, 37, "(at least 1)"},
    {"expect rejects >= 1\n", 1, 16, "a reject reason such as missing_field"},
    {"expect screen >= item\n", 1, 15, "a screen compares with == or != only"},
    {"expect screen == itme\n", 1, 18, "did you mean 'item'?"},
    {"expect sum screen == item\n", 1, 12, "'sum screen' has no meaning"},
    {"expect will published for device 1 within 3\n", 1, 43, "found a number without a unit"},
    {"expect will published for device 1 within keepalive - 5s\n", 1, 43,
     "must be positive, but this comes to -1000ms"},
    {"expect will published for device 1 within 1.5 * * keepalive\n", 1, 49,
     "a duration, 'keepalive' or 'startup' after '*'"},
    {"expect retained status of device 1 == gone\n", 1, 39, "expected 'online' or 'offline'"},
    {"expect registrations of device 1 arrive\n", 1, 40, "expected 'in'"},
    {"at 2s heal\nat 1s heal\n", 2, 4, "must not go backwards"},
    {"heal on device 1\n", 1, 1, "a step starts with its timing: write 'at 2s heal"},
    {"  at 1s heal\n", 1, 3, "expected a group setting"},
    {"at 1s heal\n  expect ledger lost == 0\n", 2, 3, "no 'broker', 'group' or 'backend' block is open"},
    {"at 1s heal\ngroup more of 2 devices\n", 2, 1, "must come before the first step"},
    {"at 1s heal\nseed 4\n", 2, 1, "must come before the first step"},
    {"at 1s command rebot to device 1\n", 1, 15, "did you mean 'reboot'?"},
    {"at 1s command identify seconds to device 1\n", 1, 32,
     "expected '=' and a value after the argument 'seconds'"},
    {"at 1s command message text=\"Go to dock 3 to device 1\n", 1, 28,
     "quoted text needs a closing '\"'"},
    {"at 1s command reboot as \"x y\" to device 1\n", 1, 25, "a cmd_id is 1..32 printable"},
    {"at 1s command reboot as abcdefghijabcdefghijabcdefghijabc\n", 1, 25,
     "a cmd_id is 1..32 printable"},
    {"at 1s command status to device 11\n", 1, 32, "there is no device 11"},
    {"at 1s command config a=1 b=2 c=3 d=4 e=5 to device 1\n", 1, 38, "at most 4 arguments"},
    {"at 1s command identify seconds=1 seconds=2\n", 1, 34, "'seconds' is given twice"},
    {"at 1s command message text=\"a\x01-b\"\n", 1, 30, "control byte 0x01 in quoted text"},
    {"at 1s command status to device 1 now\n", 1, 34, "expected end of line, found 'now'"},
    {"at 1s power cutt device 1\n", 1, 13, "did you mean 'cut'?"},
    {"at 1s device 2 publishes status to device 1\n", 1, 26, "expected 'command'"},
    {"at 1s device 12 publishes command status\n", 1, 14, "there is no device 12"},
    {"expect command replies fine == 1\n", 1, 24, "expected a comparison"},
    {"expect command replies ok reason busy == 1\n", 1, 34, "an ok reply has no reason"},
    {"expect command replies error reason bussy == 1\n", 1, 37, "did you mean 'busy'?"},
    {"expect command replies ok == 1 from nobody\n", 1, 37, "expected a selector"},
    {"expect forged commands rejected == 1\n", 1, 24, "expected 'refused'"},
    {"at 1s heal\x01\n", 1, 11, "unexpected control byte 0x01"},
    {"at 1s heal\n\x00\n", 2, 1, "unexpected control byte 0x00"},
};

START_TEST(test_each_step_error_names_line_column_and_what_was_expected)
{
    char text[8192];
    size_t hl = strlen(HEADER);
    memcpy(text, HEADER, hl);
    /* STEP_ERRORS may hold a NUL byte: copy through the last newline by hand */
    const char *src = STEP_ERRORS[_i].steps;
    size_t n = strlen(src);
    if (n == 11 && strncmp(src, "at 1s heal\n", 11) == 0)
        n = 13; /* "at 1s heal\n\0\n" */
    memcpy(text + hl, src, n);
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    int rc = parse_exact(text, hl + n, &s, &d);
    char msg[512];
    scn_diag_format(&d, msg, sizeof msg);
    ck_assert_msg(rc == SCN_ERR_SYNTAX, "no error for %s", src);
    ck_assert_msg(d.line == STEP_ERRORS[_i].line + 6 && d.col == STEP_ERRORS[_i].col,
                  "expected %u:%u, got %s", STEP_ERRORS[_i].line + 6, STEP_ERRORS[_i].col, msg);
    ck_assert_msg(strstr(d.message, STEP_ERRORS[_i].message), "expected '%s' in %s",
                  STEP_ERRORS[_i].message, msg);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_declaration_errors_name_line_column_and_what_was_expected)
{
    check_error("timeout 1s\ngroup g of 1 device\n", 1, 1, "no 'scenario <name>' line");
    check_error("scenario x\ntimeout 1s\n", 1, 1, "declares no devices");
    check_error("scenario x\nscenario y\n", 2, 1, "already given on line 1");
    check_error("scenario 9lives\n", 1, 10, "expected a scenario name");
    check_error("scenario x\ntimeout 0s\n", 2, 9, "expected a positive duration");
    check_error("scenario x\nseed 18446744073709551616\n", 2, 6, "number is too large");
    check_error("scenario x\nseed -1\n", 2, 6, "expected a seed");
    check_error("scenario x\ndescription\n", 2, 12, "expected a description");
    check_error("scenario x\nbroker mqtts\n", 2, 8, "did you mean 'mtls'?");
    check_error("scenario x\nbroker\n  autosave 1\n", 3, 3, "expected a broker setting");
    check_error("scenario x\ntimeout 1s\nbroker\n  persistence off\n  autosave_interval 1\n"
                "group g of 1 device\n", 3, 1, "need 'persistence on'");
    check_error("scenario x\ntimeout 1s\nbroker\n  autosave_on_changes on\ngroup g of 1 device\n",
                3, 1, "autosave_on_changes needs autosave_interval");
    check_error("scenario x\ngroup g 10 devices\n", 2, 9, "expected 'of', found '10'");
    check_error("scenario x\ngroup g of 0 devices\n", 2, 12, "(at least 1)");
    check_error("scenario x\ngroup g of 2 device\n", 2, 14, "expected 'devices'");
    check_error("scenario x\ngroup g of 200000 devices\n", 2, 12, "number is too large");
    check_error("scenario x\ngroup g of 1 device\ngroup g of 1 device\n", 3, 7,
                "already declared on line 2");
    check_error("scenario x\ngroup g of 1 device\n  qos 3\n", 3, 7, "expected QoS 0, 1 or 2");
    check_error("scenario x\ngroup g of 1 device\n  qos 1\n  qos 0\n", 4, 3, "set twice");
    check_error("scenario x\ngroup g of 1 device\n  mqtt 3.1\n", 3, 8, "expected an MQTT version");
    check_error("scenario x\ngroup g of 1 device\n  keepalive 1.5s\n", 3, 13,
                "expected a keep-alive in whole seconds");
    check_error("scenario x\ngroup g of 1 device\n  sesion clean\n", 3, 3,
                "did you mean 'session'?");
    check_error("scenario x\ngroup g of 1 device\n  id_prefix dev1\n", 3, 13,
                "must not end with a digit");
    check_error("scenario x\ngroup g of 1 device\n  id_prefix a/b-\n", 3, 13,
                "expected an id prefix");
    check_error("scenario x\ngroup g of 1 device\ngroup h of 1 device\n  id_prefix scanner-\n",
                4, 13, "already uses the id prefix 'scanner-'");
    check_error("scenario x\ntimeout 1s\ngroup g of 1 device\n  id_prefix ab-\n"
                "group h of 1 device\n  id_prefix ab-c-\n",
                5, 1, "starts with the prefix 'ab-' of group 'g'");
    check_error("scenario x\ngroup g of 1 device\n  operator manual think 1s..2s\n", 3, 19,
                "a manual operator has no settings");
    check_error("scenario x\ngroup g of 1 device\n  operator auto think 2s..1s\n", 3, 23,
                "runs backwards");
    check_error("scenario x\ngroup g of 1 device\n  operator auto wrong_tags 101%\n", 3, 28,
                "expected a percentage");
    check_error("scenario x\ngroup g of 1 device\n  operator auto cancels 1% cancels 2%\n", 3,
                28, "set twice on this line");
    check_error("scenario x\nbackend\n  rate fast\n", 3, 8, "expected a rate such as 50/s");
    check_error("scenario x\nbackend\n  malformed 3 invalid_json,\n", 3, 28,
                "a malformed item kind after ','");
    check_error("scenario x\nbackend\n  items 5 per group\n", 3, 15, "expected 'device'");
    check_error("  persistence on\n", 1, 3, "no 'broker', 'group' or 'backend' block is open");
    check_error("scenari x\n", 1, 1, "did you mean 'scenario'?");
    check_error("scenario x\ntimeout 1s\nat 1s heal\n", 3, 1, "steps need devices");
}
END_TEST

/* The files in tests/bad, each wrong in one way. */
static const struct {
    const char *file;
    uint32_t line, col;
    const char *message;
} BAD_FILES[] = {
    {"duration_word.scn", 7, 4, "expected a duration such as 500ms or 2s, found 'soon'"},
    {"misspelt_action.scn", 7, 7, "found 'blackhol'; did you mean 'blackhole'?"},
    {"selector_out_of_range.scn", 6, 25, "the range 1..12 goes past the last device"},
    {"fault_without_proxy.scn", 7, 7, "drop needs a fault proxy, but group 'fleet' (line 4)"},
    {"keepalive_off.scn", 9, 49, "'keepalive' is not defined here: group 'fleet' has keep-alive off"},
    {"at_backwards.scn", 7, 4, "must not go backwards"},
    {"startup_negative.scn", 8, 56, "'startup' can only be added"},
    {"rabbitmq_setting.scn", 5, 3, "broker rabbitmq cannot honour"},
    {"rabbitmq_mqtt5.scn", 4, 1, "speaks MQTT 3.1.1 only"},
    {"missing_timeout.scn", 1, 1, "no 'timeout <duration>' line"},
    {"setting_not_indented.scn", 5, 1, "'qos' is a block setting: indent it"},
    {"bad_tag.scn", 7, 16, "found '04A1B2C'"},
    {"single_equals.scn", 6, 20, "write '==' to compare"},
    {"publish_to_seed_layout.scn", 8, 23, "needs 'layout per-device'"},
    {"unknown_device_id.scn", 6, 22, "there is no device scanner-11: group 'fleet' has scanner-1..scanner-10"},
    {"group_after_steps.scn", 7, 1, "'group' must come before the first step (line 6)"},
};

START_TEST(test_each_bad_file_gives_its_file_line_column_and_message)
{
    char path[512], want[600], got[600];
    snprintf(path, sizeof path, "%s/%s", SCN_BAD_DIR, BAD_FILES[_i].file);
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    ck_assert_int_eq(scn_parse_file(path, &s, &d), SCN_ERR_SYNTAX);
    ck_assert_ptr_null(s);
    scn_diag_format(&d, got, sizeof got);
    snprintf(want, sizeof want, "%s:%u:%u: ", path, BAD_FILES[_i].line, BAD_FILES[_i].col);
    ck_assert_msg(strncmp(got, want, strlen(want)) == 0, "expected %s..., got %s", want, got);
    ck_assert_msg(strstr(got, BAD_FILES[_i].message), "expected '%s' in %s",
                  BAD_FILES[_i].message, got);
}
END_TEST

START_TEST(test_every_bad_file_is_listed_in_the_test_table)
{
    DIR *dir = opendir(SCN_BAD_DIR);
    ck_assert_ptr_nonnull(dir);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".scn") != 0)
            continue;
        bool listed = false;
        for (size_t k = 0; k < sizeof BAD_FILES / sizeof BAD_FILES[0]; k++)
            listed |= strcmp(BAD_FILES[k].file, e->d_name) == 0;
        ck_assert_msg(listed, "%s is not in BAD_FILES", e->d_name);
        n++;
    }
    closedir(dir);
    ck_assert_uint_eq(n, sizeof BAD_FILES / sizeof BAD_FILES[0]);
}
END_TEST

START_TEST(test_a_missing_file_is_an_io_error_naming_the_file)
{
    struct scn_scenario *s = (struct scn_scenario *)1;
    struct scn_diag d;
    ck_assert_int_eq(scn_parse_file("/nonexistent/x.scn", &s, &d), SCN_ERR_IO);
    ck_assert_ptr_null(s);
    char buf[512];
    scn_diag_format(&d, buf, sizeof buf);
    ck_assert_str_eq(buf, "/nonexistent/x.scn: cannot read the scenario file: No such file or "
                          "directory");
    ck_assert_int_eq(scn_parse_buffer("x", NULL, 5, &s, &d), SCN_ERR_INVAL);
    ck_assert_int_eq(scn_parse_buffer("x", "", 0, NULL, &d), SCN_ERR_INVAL);
    ck_assert_str_eq(scn_strerror(SCN_ERR_IO), "cannot read a scenario file");
}
END_TEST

START_TEST(test_a_directory_or_a_file_over_16_mib_is_refused_as_unreadable)
{
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    ck_assert_int_eq(scn_parse_file(SCN_BAD_DIR, &s, &d), SCN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.message, "Is a directory"));
    char path[] = "/tmp/scn_unit_big_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (16 << 20) + 1), 0);
    close(fd);
    ck_assert_int_eq(scn_parse_file(path, &s, &d), SCN_ERR_IO);
    unlink(path);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(d.message, "(at most 16 MiB)"));
}
END_TEST

START_TEST(test_a_diagnostic_formats_as_file_line_column_message)
{
    struct scn_diag d;
    memset(&d, 0, sizeof d);
    snprintf(d.file, sizeof d.file, "scenarios/x.scn");
    d.line = 12;
    d.col = 9;
    snprintf(d.message, sizeof d.message, "expected a duration such as 500ms or 2s, found 'soon'");
    char buf[128];
    int n = scn_diag_format(&d, buf, sizeof buf);
    ck_assert_str_eq(buf, "scenarios/x.scn:12:9: expected a duration such as 500ms or 2s, "
                          "found 'soon'");
    ck_assert_int_eq(n, (int)strlen(buf));
    char small[8];
    ck_assert_int_eq(scn_diag_format(&d, small, sizeof small), n);
    ck_assert_str_eq(small, "scenari");
}
END_TEST

/* ================================================================ the library */

static char *read_all(const char *path, size_t *len);

START_TEST(test_every_scenario_in_the_library_parses_cleanly)
{
    DIR *dir = opendir(SCN_LIBRARY_DIR);
    ck_assert_ptr_nonnull(dir);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".scn") != 0)
            continue;
        char path[512], msg[600];
        snprintf(path, sizeof path, "%s/%s", SCN_LIBRARY_DIR, e->d_name);
        struct scn_scenario *s = NULL;
        struct scn_diag d;
        int rc = scn_parse_file(path, &s, &d);
        scn_diag_format(&d, msg, sizeof msg);
        ck_assert_msg(rc == SCN_OK, "%s", msg);
        /* the scenario is named after its file, explains itself and expects something */
        ck_assert_msg(strncmp(s->name, e->d_name, len - 4) == 0 && strlen(s->name) == len - 4,
                      "%s: scenario name '%s' differs from the file name", path, s->name);
        ck_assert_msg(strlen(s->description) > 40, "%s: describe the scenario", path);
        /* RabbitMQ alone takes 10-20 s to start, and about as long again to restart */
        ck_assert_msg(s->timeout_ms <= (s->broker.kind == SCN_BROKER_RABBITMQ ? 120000u : 60000u),
                      "%s: library scenarios must be fast", path);
        size_t expects = 0;
        for (size_t k = 0; k < s->n_steps; k++) {
            char line[512];
            expects += s->steps[k].action == SCN_ACT_EXPECT;
            ck_assert_int_gt(scn_step_describe(&s->steps[k], line, sizeof line), 0);
        }
        ck_assert_msg(expects >= 2, "%s: a scenario states what it expects", path);
        scn_free(s);
        n++;
    }
    closedir(dir);
    ck_assert_uint_ge(n, 12);
}
END_TEST

START_TEST(test_the_tutorial_in_the_reference_parses_as_explained)
{
    char path[512];
    snprintf(path, sizeof path, "%s/README.md", SCN_LIBRARY_DIR);
    size_t len;
    char *text = read_all(path, &len);
    text[len < (1u << 16) ? len : len - 1] = '\0';
    const char *from = strstr(text, "```sh\n");
    ck_assert_ptr_nonnull(from);
    from += 6;
    const char *to = strstr(from, "```");
    ck_assert_ptr_nonnull(to);
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    int rc = scn_parse_buffer("README.md", from, (size_t)(to - from), &s, &d);
    char msg[600];
    scn_diag_format(&d, msg, sizeof msg);
    ck_assert_msg(rc == SCN_OK, "%s", msg);
    ck_assert_str_eq(s->name, "first_look");
    ck_assert_uint_eq(s->n_devices, 2);
    ck_assert_uint_eq(s->n_steps, 4);
    ck_assert_int_eq(s->steps[1].u.expect.within.resolved_ms, 4000); /* 1.5 x 2 s + 1 s */
    scn_free(s);
    free(text);
}
END_TEST

/* ================================================================ robustness */

static uint64_t test_rng = 42;

static uint32_t rnd(uint32_t below)
{
    return (uint32_t)(scn_rng_next(&test_rng) % below);
}

/* Parse; must either succeed or give a diagnostic with a line and a message. */
static void survive(const char *buf, size_t len)
{
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    int rc = parse_exact(buf, len, &s, &d);
    if (rc == SCN_OK) {
        char line[256];
        for (size_t k = 0; k < s->n_steps; k++)
            scn_step_describe(&s->steps[k], line, sizeof line);
        scn_free(s);
    } else {
        ck_assert_int_eq(rc, SCN_ERR_SYNTAX);
        ck_assert_ptr_null(s);
        ck_assert_uint_gt(d.line, 0);
        ck_assert_uint_gt(strlen(d.message), 0);
    }
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = malloc(1 << 16);
    ck_assert_ptr_nonnull(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

START_TEST(test_random_bytes_never_crash_the_parser)
{
    char buf[512];
    for (int round = 0; round < 20000; round++) {
        size_t len = rnd(sizeof buf);
        for (size_t k = 0; k < len; k++)
            buf[k] = (char)rnd(256);
        survive(buf, len);
    }
}
END_TEST

START_TEST(test_random_words_of_the_language_never_crash_the_parser)
{
    static const char *const words[] = {
        "scenario", "x", "timeout", "10s", "group", "g", "of", "3", "devices", "  link",
        "proxy", "\n", "\n  ", "at", "after", "wait", "until", "within", "expect", "ledger",
        "lost", "==", ">=", "1.5", "*", "keepalive", "+", "-", "1s", "drop", "next", "PUBACK",
        "to", "broker", "device", "on", "all", "random", "devices", "1..3", "sum", "rejects",
        "missing_field", "will", "published", "for", "no", "retained", "status", "online",
        "publish", "items", "malformed", "scan", "tag", "04A1B2C3", "cut", "rst", "heal",
        "#", ",", "operator", "auto", "think", "1ms..2ms", "backend", "  items", "per",
        "broker", "  persistence", "off", "0", "99999999999999999999", "..", "%", "/s"};
    char buf[2048];
    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        if (round % 2)
            len = (size_t)snprintf(buf, sizeof buf, "scenario x\ntimeout 10s\ngroup g of 3 "
                                                    "devices\n  link proxy\n");
        int n = (int)rnd(40);
        for (int k = 0; k < n; k++) {
            const char *w = words[rnd(sizeof words / sizeof words[0])];
            size_t wl = strlen(w);
            if (len + wl + 1 >= sizeof buf)
                break;
            memcpy(buf + len, w, wl);
            len += wl;
            if (rnd(3))
                buf[len++] = ' ';
        }
        survive(buf, len);
    }
}
END_TEST

START_TEST(test_every_prefix_and_mutation_of_a_real_scenario_is_handled)
{
    char path[512];
    snprintf(path, sizeof path, "%s/keepalive_will.scn", SCN_LIBRARY_DIR);
    size_t len;
    char *text = read_all(path, &len);
    for (size_t cut = 0; cut <= len; cut++)
        survive(text, cut);
    char *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    for (int round = 0; round < 5000; round++) {
        memcpy(copy, text, len);
        int flips = 1 + (int)rnd(4);
        for (int k = 0; k < flips; k++)
            copy[rnd((uint32_t)len)] = (char)rnd(256);
        survive(copy, len);
    }
    free(copy);
    free(text);
}
END_TEST

START_TEST(test_long_lines_many_words_and_many_steps_are_bounded)
{
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t hl = strlen(HEADER);
    memcpy(buf, HEADER, hl);
    /* a line over the limit */
    memset(buf + hl, 'a', 5000);
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    ck_assert_int_eq(parse_exact(buf, hl + 5000, &s, &d), SCN_ERR_SYNTAX);
    ck_assert_uint_eq(d.line, 7);
    ck_assert_uint_eq(d.col, SCN_MAX_LINE + 1);
    ck_assert_ptr_nonnull(strstr(d.message, "longer than 4096 bytes"));
    /* a long description line is fine, and so is a long word in an error */
    size_t n = hl;
    n += (size_t)sprintf(buf + n, "description ");
    memset(buf + n, 'x', 3000);
    n += 3000;
    buf[n++] = '\n';
    ck_assert_int_eq(parse_exact(buf, n, &s, &d), SCN_OK);
    ck_assert_uint_eq(strlen(s->description), 3000);
    scn_free(s);
    memset(buf + hl, 'y', 3000);
    ck_assert_int_eq(parse_exact(buf, hl + 3000, &s, &d), SCN_ERR_SYNTAX);
    ck_assert_ptr_nonnull(strstr(d.message, "...'"));
    /* too many words */
    n = hl;
    for (int k = 0; k < 70; k++)
        n += (size_t)sprintf(buf + n, "w ");
    ck_assert_int_eq(parse_exact(buf, n, &s, &d), SCN_ERR_SYNTAX);
    ck_assert_ptr_nonnull(strstr(d.message, "more than 64 words"));
    /* the step limit, reached in linear time */
    n = hl;
    for (int k = 0; k <= SCN_MAX_STEPS; k++)
        n += (size_t)sprintf(buf + n, "wait 1ms\n");
    ck_assert_int_eq(parse_exact(buf, n, &s, &d), SCN_ERR_SYNTAX);
    ck_assert_uint_eq(d.line, 7 + SCN_MAX_STEPS);
    ck_assert_ptr_nonnull(strstr(d.message, "too many steps"));
    ck_assert_int_eq(parse_exact(buf, n - strlen("wait 1ms\n"), &s, &d), SCN_OK);
    ck_assert_uint_eq(s->n_steps, SCN_MAX_STEPS);
    scn_free(s);
    /* many description lines grow the text geometrically, not quadratically */
    n = hl;
    for (int k = 0; k < 20000 && n + 64 < cap; k++)
        n += (size_t)sprintf(buf + n, "description word%d\n", k);
    ck_assert_int_eq(parse_exact(buf, n, &s, &d), SCN_OK);
    ck_assert_ptr_nonnull(strstr(s->description, "word19999"));
    scn_free(s);
    free(buf);
}
END_TEST

START_TEST(test_an_empty_buffer_reports_the_missing_name)
{
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    ck_assert_int_eq(scn_parse_buffer(NULL, "", 0, &s, &d), SCN_ERR_SYNTAX);
    ck_assert_str_eq(d.file, "<buffer>");
    ck_assert_uint_eq(d.line, 1);
    ck_assert_ptr_nonnull(strstr(d.message, "no 'scenario <name>' line"));
}
END_TEST

/* ================================================================ helpers for the runner */

START_TEST(test_random_selectors_draw_distinct_devices_repeatably_from_the_seed)
{
    struct scn_scenario *s = parse_ok("at 1s heal on random 4 devices\nat 1s heal on devices 3..5\n");
    uint32_t a[10], b[10];
    uint64_t r1 = 7, r2 = 7, r3 = 8;
    ck_assert_uint_eq(scn_selector_resolve(s, &s->steps[0].sel, &r1, a, 10), 4);
    ck_assert_uint_eq(scn_selector_resolve(s, &s->steps[0].sel, &r2, b, 10), 4);
    ck_assert_mem_eq(a, b, sizeof(uint32_t) * 4);
    for (int k = 0; k < 4; k++) {
        ck_assert_uint_ge(a[k], 1);
        ck_assert_uint_le(a[k], 10);
        if (k)
            ck_assert_uint_gt(a[k], a[k - 1]);
    }
    bool differs = false;
    for (int round = 0; round < 10 && !differs; round++) {
        scn_selector_resolve(s, &s->steps[0].sel, &r3, b, 10);
        differs = memcmp(a, b, sizeof(uint32_t) * 4) != 0;
    }
    ck_assert_msg(differs, "another seed should give another draw");
    ck_assert_uint_eq(scn_selector_resolve(s, &s->steps[1].sel, NULL, a, 2), 3);
    ck_assert_uint_eq(a[0], 3);
    ck_assert_uint_eq(a[1], 4);
    scn_free(s);
}
END_TEST

START_TEST(test_comparisons_hold_as_their_names_say)
{
    ck_assert(scn_cmp_holds(SCN_CMP_EQ, 3, 3) && !scn_cmp_holds(SCN_CMP_EQ, 3, 4));
    ck_assert(scn_cmp_holds(SCN_CMP_NE, 3, 4) && !scn_cmp_holds(SCN_CMP_NE, 3, 3));
    ck_assert(scn_cmp_holds(SCN_CMP_LT, 3, 4) && !scn_cmp_holds(SCN_CMP_LT, 4, 4));
    ck_assert(scn_cmp_holds(SCN_CMP_LE, 4, 4) && !scn_cmp_holds(SCN_CMP_LE, 5, 4));
    ck_assert(scn_cmp_holds(SCN_CMP_GT, 5, 4) && !scn_cmp_holds(SCN_CMP_GT, 4, 4));
    ck_assert(scn_cmp_holds(SCN_CMP_GE, 4, 4) && !scn_cmp_holds(SCN_CMP_GE, 3, 4));
    ck_assert_str_eq(scn_cmp_name(SCN_CMP_LE), "<=");
    ck_assert_str_eq(scn_counter_name(SCN_CTR_DUPLICATES_SUPPRESSED), "duplicates_suppressed");
    ck_assert_str_eq(scn_counter_name(SCN_CTR_COUNT), "?");
    ck_assert_str_eq(scn_reject_name(SCN_REJECT_MISSING_FIELD), "missing_field");
    ck_assert_str_eq(scn_packet_name(SCN_PKT_PINGRESP), "PINGRESP");
    ck_assert_int_eq(SCN_PKT_PINGRESP, 13); /* the MQTT type number */
    ck_assert_str_eq(scn_action_name(SCN_ACT_BROKER_KILL), "broker kill");
    ck_assert_str_eq(scn_timing_name(SCN_WAIT_UNTIL), "wait until");
    ck_assert_str_eq(scn_layout_name(SCN_LAYOUT_PER_DEVICE), "per-device");
    ck_assert_str_eq(scn_screen_name(SCN_SCREEN_CANCELLED), "cancelled");
}
END_TEST

START_TEST(test_a_description_that_does_not_fit_is_cut_and_still_terminated)
{
    struct scn_scenario *s = parse_ok("at 2s drop next 1 PUBACK to broker on device 3\n");
    char buf[10];
    int want = scn_step_describe(&s->steps[0], buf, sizeof buf);
    ck_assert_int_eq(want, (int)strlen("at 2.000s: drop next 1 PUBACK to broker on device 3"));
    ck_assert_str_eq(buf, "at 2.000s");
    ck_assert_int_eq(scn_step_describe(&s->steps[0], NULL, 0), want);
    scn_free(s);
}
END_TEST

/* ================================================================ the firmware's names */

#ifdef SCN_WITH_FW
#include "fw/fw_codec.h"
#include "fw/fw_device.h"

/* The language names firmware figures by the firmware's own names, in the same order, so a
   runner can index struct fw_stats and compare screens directly. */
START_TEST(test_reject_screen_and_counter_names_match_the_firmware)
{
    ck_assert_int_eq(SCN_REJECT_COUNT, FW_REJECT_COUNT);
    for (int r = 0; r < FW_REJECT_COUNT; r++)
        ck_assert_str_eq(scn_reject_name((enum scn_reject)r), fw_reject_name((enum fw_reject)r));
    for (int k = 0; k < SCN_SCREEN_COUNT; k++)
        ck_assert_str_eq(scn_screen_name((enum scn_screen)k), fw_screen_name((enum fw_screen)k));
    ck_assert_int_eq(SCN_SCREEN_CANCELLED, FW_SCREEN_CANCELLED);
    ck_assert_int_eq(SCN_SCREEN_COUNT, FW_SCREEN_LOCKED + 1);
    ck_assert_int_eq(SCN_CMD_COUNT, FW_CMD_KIND_COUNT);
    for (int k = 0; k < SCN_CMD_COUNT; k++)
        ck_assert_str_eq(scn_command_name((enum scn_command)k),
                         fw_cmd_kind_name((enum fw_cmd_kind)k));
    /* fw_stats: the uint32_t counters through boots, with rejects[] in place
       of SCN_CTR_REJECTS; any field added to fw_stats must be added here too */
    ck_assert_uint_eq(sizeof(struct fw_stats),
                      sizeof(uint32_t) * (SCN_CTR_BOOTS + FW_REJECT_COUNT));
    ck_assert_uint_eq(offsetof(struct fw_stats, commands_received),
                      sizeof(uint32_t) * (SCN_CTR_COMMANDS_RECEIVED - 1 + FW_REJECT_COUNT));
    ck_assert_uint_eq(offsetof(struct fw_stats, boots),
                      sizeof(uint32_t) * (SCN_CTR_BOOTS - 1 + FW_REJECT_COUNT));
    ck_assert_uint_eq(offsetof(struct fw_stats, subscriptions_refused),
                      sizeof(uint32_t) * (SCN_CTR_SUBSCRIPTIONS_REFUSED - 1 + FW_REJECT_COUNT));
    ck_assert_uint_eq(offsetof(struct fw_stats, publishes_refused),
                      sizeof(uint32_t) * (SCN_CTR_PUBLISHES_REFUSED - 1 + FW_REJECT_COUNT));
    ck_assert_uint_eq(offsetof(struct fw_stats, rejects),
                      sizeof(uint32_t) * SCN_CTR_REJECTS);
    ck_assert_uint_eq(offsetof(struct fw_stats, storage_errors),
                      sizeof(uint32_t) * (SCN_CTR_STORAGE_ERRORS - 1 + FW_REJECT_COUNT));
    ck_assert_uint_eq(offsetof(struct fw_stats, duplicates_suppressed),
                      sizeof(uint32_t) * SCN_CTR_DUPLICATES_SUPPRESSED);
}
END_TEST
#endif

/* ================================================================ suite */

static Suite *scenario_suite(void)
{
    Suite *s = suite_create("scenario");
    TCase *tc = tcase_create("language");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_a_full_header_fills_every_setting);
    tcase_add_test(tc, test_unwritten_settings_take_the_documented_defaults);
    tcase_add_test(tc, test_malformed_without_kinds_uses_every_payload_kind);
    tcase_add_test(tc, test_timings_at_after_wait_and_expect_keep_positions);
    tcase_add_test(tc, test_durations_accept_every_unit_and_decimals);
    tcase_add_test(tc, test_fault_actions_parse_to_their_fields);
    tcase_add_test(tc, test_backend_operator_and_device_actions_parse_to_their_fields);
    tcase_add_loop_test(tc, test_each_line_form_prints_back_as_the_timeline_shows_it, 0,
                        (int)(sizeof FORMS / sizeof FORMS[0]));
    tcase_add_test(tc, test_expectations_parse_to_their_fields);
    tcase_add_test(tc, test_command_steps_parse_to_their_fields);
    tcase_add_test(tc, test_a_stray_quote_outside_a_command_stays_an_ordinary_word);
    tcase_add_test(tc, test_keepalive_resolves_to_the_largest_of_the_selected_groups);
    tcase_add_test(tc, test_a_device_id_names_the_device_of_its_group);
    tcase_add_loop_test(tc, test_each_step_error_names_line_column_and_what_was_expected, 0,
                        (int)(sizeof STEP_ERRORS / sizeof STEP_ERRORS[0]));
    tcase_add_test(tc, test_declaration_errors_name_line_column_and_what_was_expected);
    tcase_add_loop_test(tc, test_each_bad_file_gives_its_file_line_column_and_message, 0,
                        (int)(sizeof BAD_FILES / sizeof BAD_FILES[0]));
    tcase_add_test(tc, test_every_bad_file_is_listed_in_the_test_table);
    tcase_add_test(tc, test_a_missing_file_is_an_io_error_naming_the_file);
    tcase_add_test(tc, test_a_directory_or_a_file_over_16_mib_is_refused_as_unreadable);
    tcase_add_test(tc, test_a_diagnostic_formats_as_file_line_column_message);
    tcase_add_test(tc, test_every_scenario_in_the_library_parses_cleanly);
    tcase_add_test(tc, test_the_tutorial_in_the_reference_parses_as_explained);
    tcase_add_test(tc, test_random_selectors_draw_distinct_devices_repeatably_from_the_seed);
    tcase_add_test(tc, test_comparisons_hold_as_their_names_say);
    tcase_add_test(tc, test_a_description_that_does_not_fit_is_cut_and_still_terminated);
#ifdef SCN_WITH_FW
    tcase_add_test(tc, test_reject_screen_and_counter_names_match_the_firmware);
#endif
    suite_add_tcase(s, tc);
    TCase *rob = tcase_create("robustness");
    tcase_set_timeout(rob, 300);
    tcase_add_test(rob, test_random_bytes_never_crash_the_parser);
    tcase_add_test(rob, test_random_words_of_the_language_never_crash_the_parser);
    tcase_add_test(rob, test_every_prefix_and_mutation_of_a_real_scenario_is_handled);
    tcase_add_test(rob, test_long_lines_many_words_and_many_steps_are_bounded);
    tcase_add_test(rob, test_an_empty_buffer_reports_the_missing_name);
    suite_add_tcase(s, rob);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(scenario_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
