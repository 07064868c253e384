/*
 * test_hx_runner.c - what hx_runner_run returns when a scenario cannot be set up: only
 * hx_err codes (hx/err.h), whichever layer failed, with the reason for people. The
 * platform's codes overlap the harness's numerically (SIM_ERR_IO is -3, HX_ERR_TIMEOUT is
 * -3), so an untranslated code would read as another failure. Label broker: the runner
 * starts a private mosquitto before the devices.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "hx/err.h"
#include "hx/runner.h"
#include "hx/scenario.h"

static struct scn_scenario *parse(const char *text)
{
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    ck_assert_int_eq(scn_parse_buffer("setup.scn", text, strlen(text), &s, &d), SCN_OK);
    return s;
}

/* The devices' trace folder cannot be made: the platform says SIM_ERR_IO; the runner
   must say HX_ERR_SYS, and name the device and the cause. */
START_TEST(device_setup_failure_is_an_hx_err)
{
    struct scn_scenario *s = parse("scenario setup_error\n"
                                   "timeout 20s\n"
                                   "group fleet of 1 device\n"
                                   "expect online == true on all devices\n");
    struct hx_runner_opts o = {0};
    o.trace_dir = "/proc/self/no-such-folder/traces";
    struct hx_runner_result res;
    int rc = hx_runner_run(s, &o, &res);
    ck_assert_msg(rc == HX_ERR_SYS, "hx_runner_run returned %d (%s), expected HX_ERR_SYS; %s", rc,
                  hx_strerror(rc), res.failure);
    ck_assert(!res.passed);
    ck_assert_msg(strstr(res.failure, "scanner-1 could not be created") != NULL, "%s", res.failure);
    hx_runner_result_free(&res);
    scn_free(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("hx_runner");
    TCase *tc = tcase_create("setup");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, device_setup_failure_is_an_hx_err);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
