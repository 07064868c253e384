/*
 * test_fw_trace.c - the trace codec, the recorder and the replayer (label unit).
 *
 * A device on the test doubles of fw_test_platform.h is driven through the traced calls
 * into a buffer; the buffer is read back, replayed, and then damaged on purpose: a changed
 * answer must make the replay differ and say where, a cut or garbled file must be refused
 * with its offset.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fw/fw_replay.h"
#include "fw/fw_trace.h"
#include "fw/fw_trace_recorder.h"
#include "fw_test_platform.h"

/* ================================================================ fixtures */

static uint8_t trace[64 * 1024];
static struct fw_trace_buf tb;
static struct fwt_platform plat;
static struct fw_device dev;
static struct fw_trace_recorder rec;
static struct fw_replay rp;
static char printed[16 * 1024];

/* A short session: start, connect, an item, a tag, confirm, the ack, an offline tick. */
static void record_session(void)
{
    char item[128];
    tb = (struct fw_trace_buf){trace, sizeof trace, 0, false};
    fwt_init(&plat, true);
    fw_trace_recorder_init(&rec, fw_trace_buf_write, &tb);
    struct fw_device_config cfg;
    fw_device_config_defaults(&cfg);
    cfg.device_id = "trace-1";
    ck_assert_int_eq(fw_traced_init(&rec, &dev, &cfg, &plat.ports), FW_OK);
    fw_traced_start(&rec, &dev);
    fw_traced_on_connected(&rec, &dev, false);
    for (int i = 0; i < plat.nsubs; i++)
        fw_traced_on_subscribed(&rec, &dev, plat.sub_token[i], 1);
    fwt_item_json(item, sizeof item, 42, "Drill", 1);
    fw_traced_on_message(&rec, &dev, "item_registration", item, strlen(item), 1, false);
    const uint8_t uid[4] = {0x04, 0xA1, 0xB2, 0xC3};
    ck_assert_int_eq(fw_traced_on_tag(&rec, &dev, uid, sizeof uid), FW_OK);
    fw_traced_on_button(&rec, &dev, FW_BUTTON_CONFIRM);
    const struct fwt_pub *reg = fwt_last_pub(&plat, "item_registered");
    ck_assert_ptr_nonnull(reg);
    fw_traced_on_published(&rec, &dev, reg->token);
    fw_traced_on_connection_lost(&rec, &dev, "gone");
    plat.now += 5000;
    fw_traced_tick(&rec, &dev, plat.now);
    ck_assert(!tb.overflow);
}

static void collect(void *ctx, const char *line)
{
    (void)ctx;
    strncat(printed, line, sizeof printed - strlen(printed) - 2);
    strcat(printed, "\n");
}

static int replay(size_t len, struct fw_replay_result *res)
{
    struct fw_replay_mem m = {trace, len, 0};
    struct fw_replay_source src = {fw_replay_mem_read, &m};
    struct fw_replay_hooks hooks = {NULL, NULL, NULL, NULL, collect};
    printed[0] = '\0';
    return fw_replay_run(&rp, &src, &hooks, res);
}

/* Offset of the first record of type at or after from; 0 if none. */
static size_t find_record(unsigned type, size_t from)
{
    size_t pos = FW_TRACE_HEADER_LEN;
    struct fw_trace_rec r;
    struct fw_trace_error err;
    while (pos < tb.len) {
        long n = fw_trace_read(trace + pos, tb.len - pos, pos, &r, &err);
        ck_assert_int_gt(n, 0);
        if (r.type == type && pos >= from)
            return pos;
        pos += (size_t)n;
    }
    return 0;
}

/* ================================================================ codec */

START_TEST(a_publish_record_reads_back_field_by_field)
{
    uint8_t buf[256];
    struct fw_trace_buf b = {buf, sizeof buf, 0, false};
    struct fw_trace_field f[] = {{0, (const uint8_t *)"a/b", 3, true},
                                 {0, (const uint8_t *)"{}", 2, true},
                                 {1, NULL, 0, true},
                                 {0, NULL, 0, true},
                                 {-6, NULL, 0, true},
                                 {77, NULL, 0, true}};
    long n = fw_trace_write(fw_trace_buf_write, &b, FW_TR_PUBLISH, f);
    ck_assert_int_eq(n, (long)b.len);
    struct fw_trace_rec r;
    struct fw_trace_error err;
    ck_assert_int_eq(fw_trace_read(buf, b.len, 0, &r, &err), n);
    ck_assert_int_eq(r.type, FW_TR_PUBLISH);
    ck_assert_int_eq(r.f[0].len, 3);
    ck_assert_mem_eq(r.f[0].ptr, "a/b", 3);
    ck_assert_int_eq(r.f[4].num, -6);
    ck_assert_int_eq(r.f[5].num, 77);
    char line[128];
    ck_assert_str_eq(fw_trace_format(&r, line, sizeof line),
                     "publish topic=\"a/b\" payload=\"{}\" qos=1 retain=0 | rc=-6 token=77");
    /* One byte short of the record: not yet complete, not an error. */
    ck_assert_int_eq(fw_trace_read(buf, b.len - 1, 0, &r, &err), 0);
}
END_TEST

START_TEST(a_field_running_past_its_record_is_refused_with_its_offset)
{
    /* A log record whose line claims 50 bytes in a 7-byte body. */
    const uint8_t bad[] = {FW_TR_LOG, 7, 0, 0, 0, 1, 50, 0, 0, 0, 'h', 'i'};
    struct fw_trace_rec r;
    struct fw_trace_error err;
    ck_assert_int_eq(fw_trace_read(bad, sizeof bad, 1000, &r, &err), -1);
    ck_assert_uint_eq(err.offset, 1006);
    ck_assert_ptr_nonnull(strstr(err.what, "past the end"));
}
END_TEST

START_TEST(an_unknown_record_type_or_version_is_refused)
{
    const uint8_t unknown[] = {0x3F, 0, 0, 0, 0};
    struct fw_trace_rec r;
    struct fw_trace_error err;
    ck_assert_int_eq(fw_trace_read(unknown, sizeof unknown, 12, &r, &err), -1);
    ck_assert_uint_eq(err.offset, 12);
    ck_assert_str_eq(err.what, "unknown record type");
    const uint8_t v2[8] = {'F', 'W', 'T', 'R', 2, 0, 0, 0};
    ck_assert_int_eq(fw_trace_check_header(v2, sizeof v2, &err), -1);
    ck_assert_uint_eq(err.offset, 4);
}
END_TEST

/* ================================================================ replay */

START_TEST(a_recorded_session_replays_with_identical_calls)
{
    record_session();
    struct fw_replay_result res;
    ck_assert_int_eq(replay(tb.len, &res), FW_REPLAY_MATCH);
    ck_assert_uint_eq(res.events, 9 + FW_SUBSCRIPTIONS); /* one per SUBACK */
    ck_assert_uint_gt(res.records, 20);
    ck_assert_str_eq(printed, "");
}
END_TEST

START_TEST(a_different_log_line_makes_the_replay_name_the_event_and_both_sides)
{
    record_session();
    /* The device logs "trace-1: connected"; pretend Linux logged "connectes". */
    size_t at = find_record(FW_TR_LOG, 0);
    ck_assert_uint_gt(at, 0);
    uint8_t *line = memmem(trace + at, 64, "connected", 9);
    ck_assert_ptr_nonnull(line);
    line[8] = 's';
    struct fw_replay_result res;
    ck_assert_int_eq(replay(tb.len, &res), FW_REPLAY_DIFFER);
    ck_assert_uint_eq(res.events, 3); /* init, start, connected */
    ck_assert_ptr_nonnull(strstr(printed, "first difference at event 3"));
    ck_assert_ptr_nonnull(strstr(printed, "connected session_present=0"));
    ck_assert_ptr_nonnull(strstr(printed, "recorded: log level=1 line=\"trace-1: connectes\""));
    ck_assert_ptr_nonnull(strstr(printed, "replayed: log level=1 line=\"trace-1: connected\""));
}
END_TEST

START_TEST(a_different_answer_is_fed_back_so_the_outputs_follow_it)
{
    record_session();
    /* Linux said the registration's publish failed: this build then logs a failure the
       recording does not have, and the replay must say so at that confirm. */
    size_t at = find_record(FW_TR_BUTTON, 0);
    size_t pub = find_record(FW_TR_PUBLISH, at);
    struct fw_trace_rec r;
    struct fw_trace_error err;
    ck_assert_int_gt(fw_trace_read(trace + pub, tb.len - pub, pub, &r, &err), 0);
    uint8_t *rc = (uint8_t *)r.raw + r.size - 8; /* rc i32, then token u32 */
    rc[0] = 0xFA;                                /* -6: offline */
    rc[1] = rc[2] = rc[3] = 0xFF;
    struct fw_replay_result res;
    ck_assert_int_eq(replay(tb.len, &res), FW_REPLAY_DIFFER);
    ck_assert_ptr_nonnull(strstr(printed, "button button=0"));
    ck_assert_ptr_nonnull(strstr(printed, "publishing a registration failed"));
}
END_TEST

START_TEST(a_trace_cut_inside_a_record_is_refused_with_the_offset)
{
    record_session();
    size_t at = find_record(FW_TR_MESSAGE, 0);
    struct fw_replay_result res;
    ck_assert_int_eq(replay(at + 9, &res), FW_REPLAY_BAD_TRACE);
    ck_assert_uint_eq(res.err.offset, at);
    ck_assert_ptr_nonnull(strstr(res.err.what, "truncated"));
}
END_TEST

START_TEST(a_port_record_before_any_event_is_refused)
{
    record_session();
    /* Drop the init record: the result record that followed it is now first. */
    size_t result = find_record(FW_TR_RESULT, 0);
    memmove(trace + FW_TRACE_HEADER_LEN, trace + result, tb.len - result);
    struct fw_replay_result res;
    ck_assert_int_eq(replay(tb.len - (result - FW_TRACE_HEADER_LEN), &res),
                     FW_REPLAY_BAD_TRACE);
    ck_assert_uint_eq(res.err.offset, FW_TRACE_HEADER_LEN);
    ck_assert_ptr_nonnull(strstr(res.err.what, "outside an event"));
}
END_TEST

START_TEST(an_event_without_a_successful_init_before_it_is_refused)
{
    /* A start with no init: the device was never initialised, so nothing may call it. */
    const uint8_t start_only[] = {'F', 'W', 'T', 'R', 1, 0, 0, 0, FW_TR_START, 0, 0, 0, 0};
    memcpy(trace, start_only, sizeof start_only);
    struct fw_replay_result res;
    ck_assert_int_eq(replay(sizeof start_only, &res), FW_REPLAY_BAD_TRACE);
    ck_assert_uint_eq(res.err.offset, FW_TRACE_HEADER_LEN);
    ck_assert_str_eq(res.err.what, "event 'start' cannot be replayed: no successful init before it");
}
END_TEST

START_TEST(a_file_that_is_not_a_trace_is_refused_at_offset_0)
{
    memcpy(trace, "PK\3\4 not a trace", 17);
    struct fw_replay_result res;
    ck_assert_int_eq(replay(17, &res), FW_REPLAY_BAD_TRACE);
    ck_assert_uint_eq(res.err.offset, 0);
    ck_assert_ptr_nonnull(strstr(res.err.what, "FWTR"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fw_trace");
    TCase *codec = tcase_create("codec");
    tcase_add_test(codec, a_publish_record_reads_back_field_by_field);
    tcase_add_test(codec, a_field_running_past_its_record_is_refused_with_its_offset);
    tcase_add_test(codec, an_unknown_record_type_or_version_is_refused);
    suite_add_tcase(s, codec);
    TCase *rep = tcase_create("replay");
    tcase_add_test(rep, a_recorded_session_replays_with_identical_calls);
    tcase_add_test(rep, a_different_log_line_makes_the_replay_name_the_event_and_both_sides);
    tcase_add_test(rep, a_different_answer_is_fed_back_so_the_outputs_follow_it);
    tcase_add_test(rep, a_trace_cut_inside_a_record_is_refused_with_the_offset);
    tcase_add_test(rep, a_port_record_before_any_event_is_refused);
    tcase_add_test(rep, an_event_without_a_successful_init_before_it_is_refused);
    tcase_add_test(rep, a_file_that_is_not_a_trace_is_refused_at_offset_0);
    suite_add_tcase(s, rep);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
