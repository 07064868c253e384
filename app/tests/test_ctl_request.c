/*
 * test_ctl_request.c - what `scansim ctl` works out before it connects (ctl_request.h):
 * selectors, args, cmd_ids and payloads. scansim_cli_error is replaced here, so each test can
 * read the message a person would see.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctl_request.h"

static char said[512];

void scansim_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(said, sizeof said, "scansim %s: ", cmd ? cmd : "");
    va_start(ap, fmt);
    vsnprintf(said + n, sizeof said - (size_t)n, fmt, ap);
    va_end(ap);
}

static int parse(struct ctl_request *r, const char *cmd, const char *sel, int n, ...)
{
    static char *args[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        args[i] = va_arg(ap, char *);
    va_end(ap);
    said[0] = '\0';
    return ctl_request_parse(r, cmd, sel, args, n, false);
}

START_TEST(a_range_and_a_list_name_each_device_once_in_the_order_given)
{
    struct ctl_request r;
    ck_assert_int_eq(parse(&r, "status", "scanner-3..5,scanner-1,scanner-4,pump", 0), 0);
    ck_assert_uint_eq(r.n_ids, 5);
    const char *want[] = {"scanner-3", "scanner-4", "scanner-5", "scanner-1", "pump"};
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(r.ids[i], want[i]);
    ck_assert(!r.all);
    ctl_request_free(&r);
    ck_assert_int_eq(parse(&r, "status", "scanner-1..scanner-100", 0), 0);
    ck_assert_uint_eq(r.n_ids, 100);
    ck_assert_str_eq(r.ids[99], "scanner-100");
    ctl_request_free(&r);
    ck_assert_int_eq(parse(&r, "status", "s-08..10", 0), 0);
    ck_assert_str_eq(r.ids[0], "s-08");
    ck_assert_str_eq(r.ids[2], "s-10");
    ctl_request_free(&r);
}
END_TEST

START_TEST(all_stands_alone_and_addresses_no_device_by_name)
{
    struct ctl_request r;
    ck_assert_int_eq(parse(&r, "identify", "all", 1, "seconds=10"), 0);
    ck_assert(r.all);
    ck_assert_uint_eq(r.n_ids, 0);
    ctl_request_free(&r);
    ck_assert_int_eq(parse(&r, "identify", "scanner-1,all", 0), -1);
    ck_assert_ptr_nonnull(strstr(said, "'all' stands alone"));
    ctl_request_free(&r);
}
END_TEST

START_TEST(a_malformed_selector_is_refused_with_what_was_expected)
{
    const char *bad[] = {"scanner-5..1", "scanner..5", "a..b", "x-1..y-3", "a/b", "s+", "#",
                         "a,,b", "", "scanner-1..200000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ctl_request r;
        ck_assert_msg(parse(&r, "status", bad[i], 0) == -1, "'%s' accepted", bad[i]);
        ck_assert_msg(said[0] != '\0', "'%s' refused without a word", bad[i]);
        ctl_request_free(&r);
    }
}
END_TEST

START_TEST(an_unknown_command_is_refused_with_the_list_of_commands)
{
    struct ctl_request r;
    ck_assert_int_eq(parse(&r, "explode", "scanner-1", 0), -1);
    ck_assert_str_eq(said, "scansim ctl: unknown command 'explode': expected one of identify, "
                           "message, status, config, reboot, lock, unlock, clear_queue");
    ctl_request_free(&r);
}
END_TEST

START_TEST(args_become_numbers_booleans_or_strings_and_the_message_text_is_positional)
{
    struct ctl_request r;
    ck_assert_int_eq(parse(&r, "config", "s-1", 3, "keepalive=20", "contrast=-1.5e1", "x=0x10"), 0);
    ck_assert_str_eq(r.args_json, "{\"keepalive\":20,\"contrast\":-15,\"x\":\"0x10\"}");
    ctl_request_free(&r);
    ck_assert_int_eq(parse(&r, "message", "s-1", 2, "Go to \"dock\" 3", "flag=true"), 0);
    ck_assert_str_eq(r.args_json, "{\"text\":\"Go to \\\"dock\\\" 3\",\"flag\":true}");
    ctl_request_free(&r);
    ck_assert_int_eq(parse(&r, "config", "s-1", 1, "keepalive"), -1);
    ck_assert_ptr_nonnull(strstr(said, "expected key=value"));
    ctl_request_free(&r);
    ck_assert_int_eq(parse(&r, "config", "s-1", 2, "contrast=1", "contrast=2"), -1);
    ck_assert_ptr_nonnull(strstr(said, "given twice"));
    ctl_request_free(&r);
    ck_assert_int_eq(parse(&r, "message", "s-1", 0), -1);
    ctl_request_free(&r);
}
END_TEST

START_TEST(force_goes_into_args_only_for_the_commands_that_take_it)
{
    struct ctl_request r;
    ck_assert_int_eq(ctl_request_parse(&r, "reboot", "s-1", NULL, 0, true), 0);
    ck_assert_str_eq(r.args_json, "{\"force\":true}");
    ctl_request_free(&r);
    ck_assert_int_eq(ctl_request_parse(&r, "lock", "s-1", NULL, 0, true), -1);
    ctl_request_free(&r);
}
END_TEST

START_TEST(each_device_gets_its_own_cmd_id_and_only_ours_match)
{
    struct ctl_request r;
    char id[CTL_CMD_ID_MAX], payload[256];
    ck_assert_int_eq(parse(&r, "status", "s-1..300", 0), 0);
    ctl_request_cmd_id(&r, 299, id);
    ck_assert_uint_le(strlen(id), 32);
    size_t i = 0;
    ck_assert_int_eq(ctl_request_match(&r, id, &i), 0);
    ck_assert_uint_eq(i, 299);
    char other[CTL_CMD_ID_MAX];
    ctl_request_cmd_id(&r, 300, other); /* one past the last device */
    ck_assert_int_eq(ctl_request_match(&r, other, &i), -1);
    ck_assert_int_eq(ctl_request_match(&r, "p1", &i), -1);
    snprintf(other, sizeof other, "%s-12x", r.cmd_id_base);
    ck_assert_int_eq(ctl_request_match(&r, other, &i), -1);
    size_t n = ctl_request_payload(&r, id, payload, sizeof payload);
    ck_assert_uint_gt(n, 0);
    char want[256];
    snprintf(want, sizeof want, "{\"cmd_id\":\"%s\",\"cmd\":\"status\",\"args\":{}}", id);
    ck_assert_str_eq(payload, want);
    ck_assert_uint_eq(ctl_request_payload(&r, id, payload, 10), 0);
    ctl_request_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ctl_request");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, a_range_and_a_list_name_each_device_once_in_the_order_given);
    tcase_add_test(tc, all_stands_alone_and_addresses_no_device_by_name);
    tcase_add_test(tc, a_malformed_selector_is_refused_with_what_was_expected);
    tcase_add_test(tc, an_unknown_command_is_refused_with_the_list_of_commands);
    tcase_add_test(tc, args_become_numbers_booleans_or_strings_and_the_message_text_is_positional);
    tcase_add_test(tc, force_goes_into_args_only_for_the_commands_that_take_it);
    tcase_add_test(tc, each_device_gets_its_own_cmd_id_and_only_ours_match);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
