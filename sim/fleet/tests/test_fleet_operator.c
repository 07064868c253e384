/*
 * test_fleet_operator.c - the scripted operator (sim/fleet_operator.h) on one real device
 * that never reaches a broker: items and commands are handed to its firmware on the owner
 * thread, and the operator is stepped there with a made-up `now`, so every wait is exact.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fw/fw_device.h"
#include "sim/clock.h"
#include "sim/device.h"
#include "sim/fleet_operator.h"
#include "sim/loop.h"

#define NUM 42u /* the device's fleet-wide number */
#define ID "op-test-42"

static struct sim_loop *loop;
static struct sim_device *dev;
static struct fleet_operator op;
static struct fleet_operator_params params;

static void setup(void)
{
    struct sim_loop_opts lo;
    struct sim_device_opts o;

    sim_loop_opts_defaults(&lo);
    ck_assert_int_eq(sim_loop_create(&lo, &loop), 0);
    ck_assert_int_eq(sim_loop_start_thread(loop), 0);
    sim_device_opts_defaults(&o, ID, "tcp://127.0.0.1:1"); /* nobody listens: offline */
    o.fw.layout = FW_LAYOUT_PER_DEVICE; /* items on scanners/<id>/item_registration */
    o.log_level = FW_LOG_ERROR;
    ck_assert_int_eq(sim_device_create(loop, &o, &dev), 0);
    ck_assert_int_eq(sim_device_start(dev), 0);
    fleet_operator_params_defaults(&params);
    params.think_min_ms = params.think_max_ms = 100;
    fleet_operator_init(&op, 7);
}

static void teardown(void)
{
    sim_device_destroy(dev);
    sim_loop_free(loop);
}

/* ------------------------------------------------------------------ on the owner thread */

struct call {
    const char *topic_suffix; /* deliver payload on scanners/<id>/<suffix>, or NULL */
    const char *payload;
    uint64_t now;             /* step the operator at this time, unless 0 */
    uint64_t due;             /* what the step returned */
    const uint8_t *tag;       /* scan this tag, then press confirm, unless NULL */
    struct fw_status st;      /* the screen afterwards */
    struct fw_stats stats;
};

static void on_owner(struct sim_device *d, struct fw_device *fw, void *arg)
{
    struct call *c = arg;
    char topic[128];

    if (c->topic_suffix) {
        snprintf(topic, sizeof topic, "scanners/%s/%s", ID, c->topic_suffix);
        fw_device_on_message(fw, topic, c->payload, strlen(c->payload), 1, false);
    }
    if (c->tag) {
        sim_device_scan(d, c->tag, FLEET_OPERATOR_TAG_LEN);
        sim_device_press(d, FW_BUTTON_CONFIRM);
    }
    if (c->now)
        c->due = fleet_operator_step(&op, &params, d, NUM, c->now);
    fw_device_status(fw, &c->st);
    c->stats = *fw_device_stats(fw);
}

static struct call run(struct call c)
{
    ck_assert_int_eq(sim_device_with(dev, on_owner, &c), 0);
    return c;
}

static void deliver_item(int id)
{
    char payload[96];

    snprintf(payload, sizeof payload, "{\"item_id\":%d,\"item_name\":\"x\",\"tag_quantity\":1}", id);
    run((struct call){ .topic_suffix = "item_registration", .payload = payload });
}

static struct call step_at(uint64_t now)
{
    return run((struct call){ .now = now });
}

/* ------------------------------------------------------------------ tests */

START_TEST(tags_differ_by_device_item_and_generation)
{
    uint8_t a[FLEET_OPERATOR_TAG_LEN], b[FLEET_OPERATOR_TAG_LEN];

    ck_assert_uint_eq(fleet_operator_tag(1, 7, 0, a), FLEET_OPERATOR_TAG_LEN);
    fleet_operator_tag(2, 7, 0, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    fleet_operator_tag(1, 8, 0, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    fleet_operator_tag(1, 7, 1, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    fleet_operator_tag(1, 7, 0, b);
    ck_assert(memcmp(a, b, sizeof a) == 0);
}
END_TEST

START_TEST(an_item_is_thought_about_then_scanned_and_confirmed)
{
    uint64_t t0 = sim_clock_ms();
    struct call c;

    deliver_item(11);
    c = step_at(t0);
    ck_assert_uint_eq(c.due, t0 + 100);
    ck_assert_int_eq(c.st.screen, FW_SCREEN_ITEM);
    c = step_at(t0 + 60); /* early: nothing happens */
    ck_assert_uint_eq(c.due, t0 + 100);
    ck_assert_uint_eq(c.stats.registrations_confirmed, 0);
    c = step_at(t0 + 100);
    ck_assert_uint_eq(c.stats.registrations_confirmed, 1);
    ck_assert_uint_eq(c.stats.wrong_tags, 0);
    ck_assert_uint_eq(c.st.pending, 0);
    ck_assert_uint_eq(c.due, FLEET_OPERATOR_IDLE);
}
END_TEST

START_TEST(a_message_is_read_for_a_think_time_then_dismissed)
{
    uint64_t t0 = sim_clock_ms();
    struct call c;

    run((struct call){ .topic_suffix = "command",
                       .payload = "{\"cmd_id\":\"m1\",\"cmd\":\"message\",\"args\":{\"text\":\"Dock 3\"}}" });
    c = step_at(t0);
    ck_assert_int_eq(c.st.screen, FW_SCREEN_MESSAGE);
    ck_assert_uint_eq(c.due, t0 + 100);
    c = step_at(t0 + 99);
    ck_assert_int_eq(c.st.screen, FW_SCREEN_MESSAGE);
    c = step_at(t0 + 100);
    ck_assert_int_ne(c.st.screen, FW_SCREEN_MESSAGE);
}
END_TEST

START_TEST(a_locked_device_is_left_alone)
{
    uint64_t t0 = sim_clock_ms();
    struct call c;

    run((struct call){ .topic_suffix = "command", .payload = "{\"cmd_id\":\"l1\",\"cmd\":\"lock\"}" });
    deliver_item(12);
    c = step_at(t0);
    c = step_at(t0 + 1000);
    ck_assert_int_eq(c.st.screen, FW_SCREEN_LOCKED);
    ck_assert_uint_eq(c.due, FLEET_OPERATOR_IDLE);
    ck_assert_uint_eq(c.stats.locked_refusals, 0);
    ck_assert_uint_eq(c.stats.registrations_confirmed, 0);
}
END_TEST

START_TEST(a_tag_the_device_already_registered_is_replaced_by_a_fresh_one)
{
    uint64_t t0 = sim_clock_ms();
    uint8_t taken[FLEET_OPERATOR_TAG_LEN];
    struct call c;

    /* item 13 registered, by hand, under the tag the operator would use for item 14 */
    fleet_operator_tag(NUM, 14, 0, taken);
    deliver_item(13);
    c = run((struct call){ .tag = taken });
    ck_assert_uint_eq(c.stats.registrations_confirmed, 1);
    deliver_item(14);
    step_at(t0);
    c = step_at(t0 + 100);
    ck_assert_uint_eq(c.stats.wrong_tags, 1); /* refused once, then the next generation */
    ck_assert_uint_eq(c.stats.registrations_confirmed, 2);
    ck_assert_uint_eq(c.st.pending, 0);
}
END_TEST

static Suite *operator_suite(void)
{
    Suite *s = suite_create("fleet_operator");
    TCase *t = tcase_create("operator");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, tags_differ_by_device_item_and_generation);
    tcase_add_test(t, an_item_is_thought_about_then_scanned_and_confirmed);
    tcase_add_test(t, a_message_is_read_for_a_think_time_then_dismissed);
    tcase_add_test(t, a_locked_device_is_left_alone);
    tcase_add_test(t, a_tag_the_device_already_registered_is_replaced_by_a_fresh_one);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(operator_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
