/*
 * test_dash.c - the dashboard's request rules, its push JSON and its Prometheus text
 * (app/dash_form.c, dash_model.c, dash_metrics.c, dash_buf.c), without a server.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"

/* ------------------------------------------------------------------ urlencoded fields */

START_TEST(a_field_is_decoded_with_plus_and_percent_escapes)
{
    char out[64];
    const char *body = "a=1&name=box+of+%C3%A9clairs&z";
    ck_assert_int_eq(dash_form_field(body, strlen(body), "name", out, sizeof(out)), 15);
    ck_assert_str_eq(out, "box of \xc3\xa9" "clairs");
    ck_assert_int_eq(dash_form_field(body, strlen(body), "z", out, sizeof(out)), 0);
    ck_assert_int_eq(dash_form_field(body, strlen(body), "nam", out, sizeof(out)), DASH_FIELD_ABSENT);
}
END_TEST

START_TEST(a_bad_escape_a_nul_or_a_value_too_long_is_refused)
{
    char out[8];
    ck_assert_int_eq(dash_form_field("k=%4", 4, "k", out, sizeof(out)), DASH_ERR_INVAL);
    ck_assert_int_eq(dash_form_field("k=%zz", 5, "k", out, sizeof(out)), DASH_ERR_INVAL);
    ck_assert_int_eq(dash_form_field("k=a%00b", 7, "k", out, sizeof(out)), DASH_ERR_INVAL);
    ck_assert_int_eq(dash_form_field("k=12345678", 10, "k", out, sizeof(out)), DASH_ERR_INVAL);
    ck_assert_int_eq(dash_form_field("k=1234567", 9, "k", out, sizeof(out)), 7);
}
END_TEST

/* ------------------------------------------------------------------ the item form */

static int parse(const char *body, struct dash_item_form *f, char *why)
{
    return dash_item_form_parse(body, strlen(body), f, why, DASH_WHY_MAX);
}

START_TEST(a_valid_item_form_gives_name_quantity_and_device)
{
    struct dash_item_form f;
    char why[DASH_WHY_MAX] = "";
    ck_assert_int_eq(parse("name=pallet+7&quantity=100000&device=scanner-3", &f, why), DASH_OK);
    ck_assert_str_eq(f.name, "pallet 7");
    ck_assert_int_eq(f.tag_quantity, 100000);
    ck_assert_str_eq(f.device, "scanner-3");
    ck_assert_int_eq(parse("name=x&quantity=1&device=all", &f, why), DASH_OK);
    ck_assert_str_eq(f.device, "");
    ck_assert_int_eq(parse("name=x&quantity=1", &f, why), DASH_OK);
    ck_assert_str_eq(f.device, "");
}
END_TEST

/* A field that is there but malformed is told as such: never taken as absent (a device
   field with a bad escape would otherwise send the item to every device). */
START_TEST(a_malformed_field_is_not_taken_for_a_missing_one)
{
    struct dash_item_form f;
    char why[DASH_WHY_MAX] = "";
    ck_assert_int_eq(parse("name=bad%zz&quantity=1", &f, why), DASH_ERR_INVAL);
    ck_assert_msg(strstr(why, "%-escape"), "%s", why);
    ck_assert_int_eq(parse("name=x&quantity=1&device=scanner%2", &f, why), DASH_ERR_INVAL);
    ck_assert_msg(strstr(why, "device:"), "%s", why);
    ck_assert_int_eq(parse("quantity=1", &f, why), DASH_ERR_INVAL);
    ck_assert_str_eq(why, "name: missing");
}
END_TEST

START_TEST(names_follow_the_firmware_one_to_32_bytes_of_printable_utf8)
{
    struct dash_item_form f;
    char why[DASH_WHY_MAX], body[128];
    char name[40];
    memset(name, 'n', sizeof(name));
    name[FW_ITEM_NAME_MAX - 1] = '\0'; /* 32 bytes: the firmware's most */
    snprintf(body, sizeof(body), "name=%s&quantity=1", name);
    ck_assert_int_eq(parse(body, &f, why), DASH_OK);
    name[FW_ITEM_NAME_MAX - 1] = 'n';
    name[FW_ITEM_NAME_MAX] = '\0';     /* 33 */
    snprintf(body, sizeof(body), "name=%s&quantity=1", name);
    ck_assert_int_eq(parse(body, &f, why), DASH_ERR_INVAL);
    ck_assert_str_eq(why, "name: 1 to 32 bytes (the firmware's limit), got 33");
    ck_assert_int_eq(parse("name=&quantity=1", &f, why), DASH_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(why, "got 0"));
    ck_assert_int_eq(parse("quantity=1", &f, why), DASH_ERR_INVAL);
    ck_assert_str_eq(why, "name: missing");
    ck_assert_int_eq(parse("name=%C3%28&quantity=1", &f, why), DASH_ERR_INVAL);
    ck_assert_str_eq(why, "name: not valid UTF-8");
    ck_assert_int_eq(parse("name=a%0Ab&quantity=1", &f, why), DASH_ERR_INVAL);
    ck_assert_str_eq(why, "name: control characters are not allowed");
}
END_TEST

START_TEST(quantities_follow_the_codec_range_and_are_whole_numbers)
{
    struct dash_item_form f;
    char why[DASH_WHY_MAX];
    const char *bad[] = { "0", "100001", "-1", "1e3", "1.5", "abc", "", " 1", "99999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[64];
        snprintf(body, sizeof(body), "name=x&quantity=%s", bad[i]);
        ck_assert_msg(parse(body, &f, why) == DASH_ERR_INVAL, "quantity '%s' accepted", bad[i]);
        ck_assert_str_eq(why, "quantity: a whole number from 1 to 100000");
    }
    ck_assert_int_eq(parse("name=x", &f, why), DASH_ERR_INVAL);
    ck_assert_int_eq(parse("name=x&quantity=1", &f, why), DASH_OK);
}
END_TEST

START_TEST(a_device_id_with_a_wildcard_or_slash_is_refused)
{
    struct dash_item_form f;
    char why[DASH_WHY_MAX];
    ck_assert_int_eq(parse("name=x&quantity=1&device=a%2Fb", &f, why), DASH_ERR_INVAL);
    ck_assert_int_eq(parse("name=x&quantity=1&device=%23", &f, why), DASH_ERR_INVAL);
    ck_assert_int_eq(parse("name=x&quantity=1&device=a+b", &f, why), DASH_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(why, "device:"));
}
END_TEST

/* ------------------------------------------------------------------ paging, token, address */

START_TEST(paging_parameters_are_checked_with_a_reason)
{
    struct dash_page_query q;
    char why[DASH_WHY_MAX];
    ck_assert_int_eq(dash_page_query_parse(NULL, NULL, NULL, &q, why, sizeof(why)), DASH_OK);
    ck_assert_int_eq(q.per, DASH_PER_PAGE_DEFAULT);
    ck_assert_int_eq(dash_page_query_parse("scanner-9", "3", "200", &q, why, sizeof(why)), DASH_OK);
    ck_assert_int_eq(q.page, 3);
    ck_assert_int_eq(dash_page_query_parse(NULL, "-1", NULL, &q, why, sizeof(why)), DASH_ERR_INVAL);
    ck_assert_int_eq(dash_page_query_parse(NULL, NULL, "201", &q, why, sizeof(why)), DASH_ERR_INVAL);
    ck_assert_str_eq(why, "per: a whole number from 1 to 200");
    ck_assert_int_eq(dash_page_query_parse(NULL, NULL, "0", &q, why, sizeof(why)), DASH_ERR_INVAL);
    char longq[80];
    memset(longq, 'q', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    ck_assert_int_eq(dash_page_query_parse(longq, NULL, NULL, &q, why, sizeof(why)), DASH_ERR_INVAL);
}
END_TEST

START_TEST(a_token_matches_only_itself)
{
    ck_assert(dash_token_equal("0123456789abcdef", "0123456789abcdef"));
    ck_assert(!dash_token_equal("0123456789abcde", "0123456789abcdef"));
    ck_assert(!dash_token_equal("0123456789abcdefX", "0123456789abcdef"));
    ck_assert(!dash_token_equal("", "0123456789abcdef"));
    ck_assert(!dash_token_equal(NULL, "0123456789abcdef"));
}
END_TEST

START_TEST(listen_addresses_split_into_host_and_port)
{
    char host[64], why[DASH_WHY_MAX];
    int port;
    ck_assert_int_eq(dash_parse_listen("127.0.0.1:8080", host, sizeof(host), &port, why, sizeof(why)), DASH_OK);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 8080);
    ck_assert(dash_host_is_loopback(host));
    ck_assert_int_eq(dash_parse_listen("[::1]:0", host, sizeof(host), &port, why, sizeof(why)), DASH_OK);
    ck_assert_str_eq(host, "::1");
    ck_assert(dash_host_is_loopback(host));
    ck_assert_int_eq(dash_parse_listen("0.0.0.0:80", host, sizeof(host), &port, why, sizeof(why)), DASH_OK);
    ck_assert(!dash_host_is_loopback(host));
    ck_assert_int_eq(dash_parse_listen("8080", host, sizeof(host), &port, why, sizeof(why)), DASH_ERR_INVAL);
    ck_assert_int_eq(dash_parse_listen(":80", host, sizeof(host), &port, why, sizeof(why)), DASH_ERR_INVAL);
    ck_assert_int_eq(dash_parse_listen("1.2.3.4:65536", host, sizeof(host), &port, why, sizeof(why)), DASH_ERR_INVAL);
    ck_assert_int_eq(dash_parse_listen("[::1]80", host, sizeof(host), &port, why, sizeof(why)), DASH_ERR_INVAL);
}
END_TEST

START_TEST(only_a_host_header_naming_loopback_passes_without_a_token)
{
    static const char *const ok[] = { "127.0.0.1", "127.0.0.1:8080", "127.1.2.3:1",
                                      "localhost:8080", "LOCALHOST", "[::1]:8080", "[::1]" };
    static const char *const refused[] = { "evil.example:8080", "127.evil.example:8080",
                                           "127.0.0.1.nip.io", "10.0.0.1:8080", "[::2]:80",
                                           "[::1", "[::1]x", "127.0.0.1:", "127.0.0.1:80a",
                                           "localhost.evil", "", "::1" };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(dash_host_header_is_loopback(ok[i]), "%s", ok[i]);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        ck_assert_msg(!dash_host_header_is_loopback(refused[i]), "%s", refused[i]);
    ck_assert(!dash_host_header_is_loopback(NULL));
    ck_assert(!dash_host_is_loopback("127.evil.example"));
}
END_TEST

/* ------------------------------------------------------------------ buffer and metrics */

START_TEST(json_strings_escape_quotes_controls_and_the_start_of_a_tag)
{
    struct dash_buf b = { 0 };
    dash_buf_json_str(&b, "a\"b\\c\n</script>");
    ck_assert_str_eq(b.p, "\"a\\\"b\\\\c\\u000a\\u003c/script>\"");
    free(b.p);
    struct dash_buf c = { 0 };
    dash_buf_base64(&c, (const uint8_t *)"scan", 4);
    ck_assert_str_eq(c.p, "c2Nhbg==");
    free(c.p);
}
END_TEST

static struct dash_summary a_summary(void)
{
    struct dash_summary s;
    memset(&s, 0, sizeof(s));
    strcpy(s.command, "run");
    strcpy(s.layout, "seed");
    s.fig.devices = 10;
    s.fig.connected = 9;
    s.have_ledger = true;
    s.led.published = 42;
    s.led.registered = 40;
    s.lat_counts[0] = 1;  /* <= 1 ms */
    s.lat_counts[1] = 2;  /* <= 2.5 ms */
    s.lat_counts[DASH_LAT_BOUNDS] = 3;  /* above every bound */
    s.lat_sum_ms = 2000;
    return s;
}

START_TEST(metrics_are_prometheus_text_with_types_labels_and_values)
{
    struct dash_summary s = a_summary();
    struct dash_buf b = { 0 };
    regex_t sample, comment;
    dash_metrics_text(&s, &b);
    ck_assert(!b.failed);
    ck_assert_ptr_nonnull(strstr(b.p, "# TYPE scansim_items_published_total counter\n"
                                      "scansim_items_published_total{command=\"run\",layout=\"seed\"} 42\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "# TYPE scansim_devices_online gauge\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "scansim_devices_online{command=\"run\",layout=\"seed\"} 9\n"));
    /* every line is a comment or "name{labels} value" */
    ck_assert_int_eq(regcomp(&sample, "^scansim_[a-z_]+\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\} "
                             "-?[0-9.e+]+$", REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_int_eq(regcomp(&comment, "^# (HELP|TYPE) scansim_[a-z_]+ ", REG_EXTENDED | REG_NOSUB), 0);
    for (char *line = strtok(b.p, "\n"); line; line = strtok(NULL, "\n"))
        ck_assert_msg(regexec(&sample, line, 0, NULL, 0) == 0 ||
                      regexec(&comment, line, 0, NULL, 0) == 0, "bad line: %s", line);
    regfree(&sample);
    regfree(&comment);
    free(b.p);
}
END_TEST

START_TEST(the_latency_histogram_is_cumulative_in_seconds)
{
    struct dash_summary s = a_summary();
    struct dash_buf b = { 0 };
    dash_metrics_text(&s, &b);
    ck_assert_ptr_nonnull(strstr(b.p, "# TYPE scansim_registration_latency_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "_bucket{command=\"run\",layout=\"seed\",le=\"0.001\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "_bucket{command=\"run\",layout=\"seed\",le=\"0.0025\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "_bucket{command=\"run\",layout=\"seed\",le=\"120\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "_bucket{command=\"run\",layout=\"seed\",le=\"+Inf\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "scansim_registration_latency_seconds_count{command=\"run\",layout=\"seed\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(b.p, "scansim_registration_latency_seconds_sum{command=\"run\",layout=\"seed\"} 2\n"));
    free(b.p);
}
END_TEST

START_TEST(without_a_ledger_no_ledger_series_are_written)
{
    struct dash_summary s = a_summary();
    struct dash_buf b = { 0 };
    s.have_ledger = false;
    dash_metrics_text(&s, &b);
    ck_assert_ptr_null(strstr(b.p, "scansim_items_"));
    ck_assert_ptr_null(strstr(b.p, "latency"));
    ck_assert_ptr_nonnull(strstr(b.p, "scansim_devices_online"));
    free(b.p);
}
END_TEST

/* ------------------------------------------------------------------ the model's pushes */

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void a_device(struct dash_model *m, int i, uint8_t pixel)
{
    struct dash_device_row r;
    struct fw_stats st;
    uint8_t fb[FW_FB_BYTES] = { pixel };
    char id[24]; /* "scanner-" and any int */
    memset(&st, 0, sizeof(st));
    snprintf(id, sizeof(id), "scanner-%d", i + 1);
    dash_row_from(&r, id, true, "online", &st, 0, 0, fb);
    dash_model_set_device(m, i, &r);
}

/* The items list by state: a view asks for one filter and gets that list and its total;
   a bad filter is refused with the choices. */
START_TEST(the_items_list_follows_the_views_filter)
{
    struct dash_model *m;
    struct dash_view v;
    struct dash_buf b = { 0 };
    struct hx_backend_item it[4];
    char why[DASH_WHY_MAX] = "";
    memset(it, 0, sizeof(it));
    for (int i = 0; i < 4; i++) {
        it[i].item_id = 40 - i;
        snprintf(it[i].name, sizeof(it[i].name), "item %d", 40 - i);
        it[i].latency_ms = -1;
    }
    it[0].registrations = 2; /* 40: twice */
    it[1].registrations = 1; /* 39: registered */
    it[3].refused = true;    /* 37: lost; 38 pending */
    ck_assert_int_eq(dash_model_create(0, "per-device", &m), DASH_OK);
    dash_model_set_items(m, it, 4);
    memset(&v, 0, sizeof(v));
    v.q.per = 10;
    ck_assert_int_eq(dash_items_filter_parse("twice", &v.q.items, why, sizeof(why)), DASH_OK);
    dash_model_push_json(m, &v, &b);
    ck_assert_ptr_nonnull(strstr(b.p, "\"items_filter\":\"twice\",\"items_total\":1,"));
    ck_assert_int_eq(count(b.p, "\"state\":"), 1);
    ck_assert_ptr_nonnull(strstr(b.p, "{\"id\":40,"));
    struct dash_view all;
    memset(&all, 0, sizeof(all));
    all.q.per = 10;
    b.len = 0;
    dash_model_push_json(m, &all, &b);
    ck_assert_ptr_nonnull(strstr(b.p, "\"items_filter\":\"all\",\"items_total\":4,"));
    ck_assert_int_eq(count(b.p, "\"state\":"), 4);
    ck_assert_int_eq(count(b.p, "\"state\":\"lost\""), 1);
    ck_assert_int_eq(count(b.p, "\"state\":\"pending\""), 1);
    /* an item that changes state moves lists: the twice view gets its list again */
    it[1].registrations = 2;
    dash_model_set_items(m, it, 4);
    b.len = 0;
    dash_model_push_json(m, &v, &b);
    ck_assert_ptr_nonnull(strstr(b.p, "\"items_filter\":\"twice\",\"items_total\":2,"));
    ck_assert_int_eq(dash_items_filter_parse("broken", &v.q.items, why, sizeof(why)), DASH_ERR_INVAL);
    ck_assert_str_eq(why, "items: all, pending, registered, twice or lost");
    ck_assert_int_eq(dash_items_filter_parse(NULL, &v.q.items, why, sizeof(why)), DASH_OK);
    ck_assert_int_eq(v.q.items, HX_ITEMS_ALL);
    free(b.p);
    dash_model_free(m);
}
END_TEST

START_TEST(a_page_gets_an_oled_again_only_when_its_pixels_changed)
{
    struct dash_model *m;
    struct dash_view v;
    struct dash_buf b = { 0 };
    ck_assert_int_eq(dash_model_create(3, "per-device", &m), DASH_OK);
    for (int i = 0; i < 3; i++)
        a_device(m, i, 1);
    memset(&v, 0, sizeof(v));
    v.q.per = 10;
    dash_model_push_json(m, &v, &b);
    ck_assert_int_eq(count(b.p, "\"fb\":"), 3);
    ck_assert_int_eq(count(b.p, "\"items\":"), 1);
    b.len = 0;
    dash_model_push_json(m, &v, &b);
    ck_assert_int_eq(count(b.p, "\"fb\":"), 0);
    ck_assert_int_eq(count(b.p, "\"items\":"), 0); /* unchanged: not sent again */
    a_device(m, 1, 1);                              /* same pixels */
    a_device(m, 2, 3);                              /* new pixels */
    b.len = 0;
    dash_model_push_json(m, &v, &b);
    ck_assert_int_eq(count(b.p, "\"fb\":"), 1);
    ck_assert_ptr_nonnull(strstr(b.p, "{\"i\":2,\"id\":\"scanner-3\""));
    free(b.p);
    dash_model_free(m);
}
END_TEST

START_TEST(search_and_paging_pick_the_matching_devices)
{
    struct dash_model *m;
    struct dash_view v;
    struct dash_buf b = { 0 };
    ck_assert_int_eq(dash_model_create(25, "seed", &m), DASH_OK);
    for (int i = 0; i < 25; i++)
        a_device(m, i, 1);
    memset(&v, 0, sizeof(v));
    snprintf(v.q.q, sizeof(v.q.q), "scanner-1");  /* 1, 10..19 */
    v.q.per = 4;
    v.q.page = 2;
    dash_model_push_json(m, &v, &b);
    ck_assert_ptr_nonnull(strstr(b.p, "\"total\":25,\"matches\":11,\"page\":2,\"per\":4"));
    ck_assert_int_eq(count(b.p, "{\"i\":"), 3);   /* 17, 18, 19 */
    ck_assert_ptr_nonnull(strstr(b.p, "\"scanner-19\""));
    ck_assert(dash_model_has_device(m, "scanner-25"));
    ck_assert(!dash_model_has_device(m, "scanner-26"));
    free(b.p);
    dash_model_free(m);
}
END_TEST

static Suite *dash_suite(void)
{
    Suite *s = suite_create("dash");
    TCase *form = tcase_create("form"), *out = tcase_create("output");
    tcase_add_test(form, a_field_is_decoded_with_plus_and_percent_escapes);
    tcase_add_test(form, the_items_list_follows_the_views_filter);
    tcase_add_test(form, only_a_host_header_naming_loopback_passes_without_a_token);
    tcase_add_test(form, a_bad_escape_a_nul_or_a_value_too_long_is_refused);
    tcase_add_test(form, a_valid_item_form_gives_name_quantity_and_device);
    tcase_add_test(form, a_malformed_field_is_not_taken_for_a_missing_one);
    tcase_add_test(form, names_follow_the_firmware_one_to_32_bytes_of_printable_utf8);
    tcase_add_test(form, quantities_follow_the_codec_range_and_are_whole_numbers);
    tcase_add_test(form, a_device_id_with_a_wildcard_or_slash_is_refused);
    tcase_add_test(form, paging_parameters_are_checked_with_a_reason);
    tcase_add_test(form, a_token_matches_only_itself);
    tcase_add_test(form, listen_addresses_split_into_host_and_port);
    tcase_add_test(out, json_strings_escape_quotes_controls_and_the_start_of_a_tag);
    tcase_add_test(out, metrics_are_prometheus_text_with_types_labels_and_values);
    tcase_add_test(out, the_latency_histogram_is_cumulative_in_seconds);
    tcase_add_test(out, without_a_ledger_no_ledger_series_are_written);
    tcase_add_test(out, a_page_gets_an_oled_again_only_when_its_pixels_changed);
    tcase_add_test(out, search_and_paging_pick_the_matching_devices);
    suite_add_tcase(s, form);
    suite_add_tcase(s, out);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
