/*
 * test_run_command_mix.c - what `scansim run --command-rate` sends and when
 * (run_command_mix.h): the mix, the devices picked, the seed, the pace.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "run_command_mix.h"

START_TEST(the_same_seed_sends_the_same_commands_to_the_same_devices)
{
    struct run_command_rng a, b;
    run_command_rng_seed(&a, 7);
    run_command_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++) {
        char pa[256], pb[256];
        ck_assert_int_eq(run_command_pick_device(&a, 50), run_command_pick_device(&b, 50));
        run_command_payload(&a, "c-1", pa, sizeof pa, NULL);
        run_command_payload(&b, "c-1", pb, sizeof pb, NULL);
        ck_assert_str_eq(pa, pb);
    }
}
END_TEST

START_TEST(every_device_of_the_run_is_picked_and_none_outside_it)
{
    struct run_command_rng r;
    int seen[10] = {0};
    run_command_rng_seed(&r, 1);
    for (int i = 0; i < 2000; i++) {
        long k = run_command_pick_device(&r, 10);
        ck_assert(k >= 0 && k < 10);
        seen[k]++;
    }
    for (int k = 0; k < 10; k++)
        ck_assert_int_gt(seen[k], 100);
}
END_TEST

/* Every command of the mix is valid JSON the firmware takes, and none is one that would
   disturb a registration (reboot, lock, clear_queue). */
START_TEST(the_mix_is_status_identify_message_and_config_with_valid_args)
{
    struct run_command_rng r;
    int kinds[RUN_COMMAND_KINDS] = {0};
    run_command_rng_seed(&r, 42);
    for (int i = 0; i < 400; i++) {
        char p[256];
        int kind = -1;
        size_t len = run_command_payload(&r, "r0-1-2-3f", p, sizeof p, &kind);
        ck_assert_uint_gt(len, 0);
        ck_assert_uint_eq(len, strlen(p));
        ck_assert(kind >= 0 && kind < RUN_COMMAND_KINDS);
        kinds[kind]++;
        cJSON *j = cJSON_Parse(p);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "cmd_id")->valuestring, "r0-1-2-3f");
        const char *cmd = cJSON_GetObjectItem(j, "cmd")->valuestring;
        ck_assert_str_eq(cmd, run_command_kinds[kind]);
        const cJSON *args = cJSON_GetObjectItem(j, "args");
        if (strcmp(cmd, "identify") == 0)
            ck_assert_int_eq(cJSON_GetObjectItem(args, "seconds")->valueint, 1);
        if (strcmp(cmd, "config") == 0) {
            int c = cJSON_GetObjectItem(args, "contrast")->valueint;
            ck_assert(c >= 0 && c <= 255);
            ck_assert_int_eq(cJSON_GetArraySize(args), 1);
        }
        if (strcmp(cmd, "message") == 0) {
            size_t n = strlen(cJSON_GetObjectItem(args, "text")->valuestring);
            ck_assert(n >= 1 && n <= 64);
        }
        cJSON_Delete(j);
    }
    for (int k = 0; k < RUN_COMMAND_KINDS; k++)
        ck_assert_int_gt(kinds[k], 50);
}
END_TEST

START_TEST(a_payload_that_does_not_fit_is_refused)
{
    struct run_command_rng r;
    char p[16];
    run_command_rng_seed(&r, 0);
    ck_assert_uint_eq(run_command_payload(&r, "r0-1-2-3f", p, sizeof p, NULL), 0);
}
END_TEST

START_TEST(the_credit_grows_with_time_at_the_rate)
{
    double c = run_command_credit(0, 200, 10);
    ck_assert_double_eq_tol(c, 2.0, 1e-9);
    c = run_command_credit(0, 0.5, 1000);
    ck_assert_double_eq_tol(c, 0.5, 1e-9);
    c = run_command_credit(c, 0.5, 1000);
    ck_assert_double_eq_tol(c, 1.0, 1e-9);
}
END_TEST

START_TEST(a_stall_is_followed_by_at_most_one_second_of_commands)
{
    ck_assert_double_eq_tol(run_command_credit(0, 200, 60000), 200.0, 1e-9);
    ck_assert_double_eq_tol(run_command_credit(150, 200, 1000), 200.0, 1e-9);
    /* a slow rate still gets its one command */
    ck_assert_double_eq_tol(run_command_credit(0, 0.1, 60000), 1.0, 1e-9);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("run_command_mix");
    TCase *tc = tcase_create("mix");
    tcase_add_test(tc, the_same_seed_sends_the_same_commands_to_the_same_devices);
    tcase_add_test(tc, every_device_of_the_run_is_picked_and_none_outside_it);
    tcase_add_test(tc, the_mix_is_status_identify_message_and_config_with_valid_args);
    tcase_add_test(tc, a_payload_that_does_not_fit_is_refused);
    tcase_add_test(tc, the_credit_grows_with_time_at_the_rate);
    tcase_add_test(tc, a_stall_is_followed_by_at_most_one_second_of_commands);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
