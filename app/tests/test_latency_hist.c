/*
 * test_latency_hist.c - the mergeable latency histogram (latency_hist.h) and the shard
 * arithmetic (shard_range.h): what `scansim merge` relies on to add shards up.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "latency_hist.h"
#include "shard_range.h"

START_TEST(a_value_falls_into_the_bucket_whose_edges_hold_it)
{
    double v[] = { 0.01001, 0.5, 1.0, 7.3, 100.0, 2500.0, 999999.0 };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int b = latency_hist_bucket(v[i]);
        ck_assert_double_le(v[i], latency_hist_upper_ms(b));
        ck_assert_double_gt(v[i], latency_hist_upper_ms(b - 1));
    }
    ck_assert_int_eq(latency_hist_bucket(-1), 0);
    ck_assert_int_eq(latency_hist_bucket(NAN), 0);
    ck_assert_int_eq(latency_hist_bucket(1e12), LATENCY_HIST_BUCKETS - 1);
}
END_TEST

START_TEST(a_percentile_from_the_histogram_is_within_one_bucket_of_the_exact_one)
{
    struct latency_hist h;
    double exact[1000];
    latency_hist_init(&h);
    for (int i = 0; i < 1000; i++) {
        exact[i] = 0.5 + i * 0.37; /* sorted */
        latency_hist_add(&h, exact[i]);
    }
    double qs[] = { 0.5, 0.9, 0.99 };
    for (size_t k = 0; k < 3; k++) {
        double want = exact[(size_t)(999 * qs[k] + 0.5)];
        double got = latency_hist_quantile(&h, qs[k]);
        ck_assert_double_ge(got, want);
        ck_assert_double_le(got, want * pow(10.0, 1.0 / LATENCY_HIST_PER_DECADE) + 1e-9);
    }
    ck_assert_double_eq(latency_hist_quantile(&h, 1.0), exact[999]);
}
END_TEST

START_TEST(two_merged_histograms_equal_one_made_from_all_the_values)
{
    struct latency_hist a, b, all;
    latency_hist_init(&a);
    latency_hist_init(&b);
    latency_hist_init(&all);
    for (int i = 0; i < 5000; i++) {
        double v = 0.02 * (i % 977) + (i % 3) * 40.0;
        latency_hist_add(i % 2 ? &a : &b, v);
        latency_hist_add(&all, v);
    }
    latency_hist_merge(&a, &b);
    ck_assert_mem_eq(a.count, all.count, sizeof a.count);
    ck_assert_uint_eq(a.total, all.total);
    ck_assert_double_eq(a.max_ms, all.max_ms);
    ck_assert_double_eq(latency_hist_quantile(&a, 0.99), latency_hist_quantile(&all, 0.99));
}
END_TEST

START_TEST(a_histogram_survives_its_json_and_a_doctored_one_is_refused)
{
    struct latency_hist h, back;
    char why[160];
    latency_hist_init(&h);
    for (int i = 1; i <= 300; i++)
        latency_hist_add(&h, i * 1.5);
    cJSON *j = latency_hist_to_json(&h);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(latency_hist_from_json(j, &back, why, sizeof why), 0);
    ck_assert_mem_eq(h.count, back.count, sizeof h.count);
    ck_assert_uint_eq(back.total, 300);
    /* the count no longer matches the buckets */
    cJSON_ReplaceItemInObject(j, "count", cJSON_CreateNumber(301));
    ck_assert_int_eq(latency_hist_from_json(j, &back, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "add up"));
    /* another scheme */
    cJSON_ReplaceItemInObject(j, "count", cJSON_CreateNumber(300));
    cJSON_ReplaceItemInObject(j, "scheme", cJSON_CreateString("linear 1 ms"));
    ck_assert_int_eq(latency_hist_from_json(j, &back, why, sizeof why), -1);
    /* a bucket index out of range */
    cJSON_ReplaceItemInObject(j, "scheme", cJSON_CreateString(latency_hist_scheme));
    cJSON *pair = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "buckets"), 0);
    cJSON_ReplaceItemInArray(pair, 0, cJSON_CreateNumber(LATENCY_HIST_BUCKETS));
    ck_assert_int_eq(latency_hist_from_json(j, &back, why, sizeof why), -1);
    cJSON_Delete(j);
}
END_TEST

START_TEST(the_shards_of_a_fleet_cover_every_device_once_in_order)
{
    long totals[] = { 1, 7, 100, 100000, 99999 };
    long counts[] = { 1, 2, 3, 7, 10 };
    for (size_t t = 0; t < 5; t++)
        for (size_t c = 0; c < 5; c++) {
            long next = 0, min = totals[t], max = 0;
            if (counts[c] > totals[t])
                continue;
            for (long i = 0; i < counts[c]; i++) {
                long off, n;
                shard_part(totals[t], i, counts[c], &off, &n);
                ck_assert_int_eq(off, next); /* contiguous, no gap, no overlap */
                next = off + n;
                if (n < min)
                    min = n;
                if (n > max)
                    max = n;
            }
            ck_assert_int_eq(next, totals[t]);
            ck_assert_int_le(max - min, 1); /* as even as it gets */
        }
}
END_TEST

START_TEST(a_wrong_shard_is_refused_with_its_reason)
{
    struct shard_spec s;
    char why[200];
    ck_assert_int_eq(shard_parse("3/10", &s, why, sizeof why), 0);
    ck_assert_int_eq(s.index, 3);
    ck_assert_int_eq(s.count, 10);
    const char *bad[] = { "10/10", "-1/3", "1/0", "a/b", "1/", "/3", "1/3x", "", "1 /3", "3" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(shard_parse(bad[i], &s, why, sizeof why) == -1, "'%s' taken", bad[i]);
    ck_assert_int_eq(shard_parse("10/10", &s, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "counted from 0"));
    ck_assert_int_eq(shard_from_env(NULL, 3, &s, why, sizeof why), 1);
    ck_assert_int_eq(shard_from_env("2", 3, &s, why, sizeof why), 0);
    ck_assert_int_eq(s.index, 2);
    ck_assert_int_eq(shard_from_env("3", 3, &s, why, sizeof why), -1);
    ck_assert_int_eq(shard_from_env("x", 3, &s, why, sizeof why), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("latency_hist");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, a_value_falls_into_the_bucket_whose_edges_hold_it);
    tcase_add_test(tc, a_percentile_from_the_histogram_is_within_one_bucket_of_the_exact_one);
    tcase_add_test(tc, two_merged_histograms_equal_one_made_from_all_the_values);
    tcase_add_test(tc, a_histogram_survives_its_json_and_a_doctored_one_is_refused);
    tcase_add_test(tc, the_shards_of_a_fleet_cover_every_device_once_in_order);
    tcase_add_test(tc, a_wrong_shard_is_refused_with_its_reason);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
