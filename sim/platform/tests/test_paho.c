/*
 * test_paho.c - what the MQTT edge's Paho implementation (src/mqtt_paho.c) relies on and
 * what it costs, against a real mosquitto (hx_broker) and the real Paho 1.3.12:
 *
 * - destroying the last connected client leaves Paho's library and its two threads up
 *   (the idle client), so Paho's racy tear-down (MQTTAsync_terminate) never runs, and the
 *   next client connects;
 * - Paho's late connect, pinned as a cost: with one client of the process connected and
 *   quiet, Paho's receive thread notices a new connect only after its 1 s poll. The
 *   demo's device (next to its backend) and every reconnect of a quiet process pay it on
 *   this transport; the libmosquitto one does not (docs/performance.md). If Paho fixes it
 *   (upstream PR #1642), this test says so and the docs can drop the caveat.
 */
#include <check.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hx/broker.h"
#include "sim/err.h"
#include "sim/mqtt.h"
#include "sim_test_util.h"

/* Threads of this process named name (Paho names its own "MQTTAsync_send" and
   "MQTTAsync_rcv"). */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d))) {
        char path[300], comm[64];
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        if (!(f = fopen(path, "r")))
            continue; /* the thread has just ended */
        if (fgets(comm, sizeof comm, f)) {
            comm[strcspn(comm, "\n")] = '\0';
            n += strcmp(comm, name) == 0;
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

static int paho_threads(void)
{
    return threads_named("MQTTAsync_send") + threads_named("MQTTAsync_rcv");
}

static atomic_int connected_count, failed_count;

static void on_connected(void *ctx, bool session_present)
{
    (void)ctx;
    (void)session_present;
    atomic_fetch_add(&connected_count, 1);
}

static void on_failed(void *ctx, int code, const char *words)
{
    (void)ctx;
    (void)code;
    (void)words;
    atomic_fetch_add(&failed_count, 1);
}

static const struct sim_mqtt_handlers handlers = { .connected = on_connected,
                                                   .connect_failed = on_failed };

static struct sim_mqtt *paho_client(struct hx_broker *b, const char *id)
{
    struct sim_mqtt_opts o;
    struct sim_mqtt *c = NULL;

    sim_mqtt_opts_defaults(&o);
    o.kind = SIM_MQTT_PAHO;
    o.uri = hx_broker_uri(b);
    o.client_id = id;
    ck_assert_int_eq(sim_mqtt_create(&o, &handlers, NULL, &c), SIM_OK);
    return c;
}

/* Connect and wait for the outcome; true if connected. */
static bool connect_and_wait(struct sim_mqtt *c)
{
    struct sim_mqtt_connect_params p = { 30, true, NULL };
    int before = atomic_load(&connected_count) + atomic_load(&failed_count);
    uint64_t end = now_ms() + WAIT_MS;

    if (sim_mqtt_connect(c, &p) != SIM_OK)
        return false;
    while (atomic_load(&connected_count) + atomic_load(&failed_count) == before &&
           now_ms() < end)
        nap_ms(1);
    return sim_mqtt_is_connected(c);
}

static struct hx_broker *broker(void)
{
    struct hx_broker *b = NULL;
    ck_assert_msg(hx_broker_start(NULL, &b) == 0, "broker: %s", hx_broker_last_error());
    return b;
}

START_TEST(after_the_last_client_goes_paho_keeps_its_threads_and_the_next_client_connects)
{
    struct hx_broker *b = broker();

    ck_assert_int_eq(paho_threads(), 0);
    for (int round = 0; round < 3; round++) {
        struct sim_mqtt *c = paho_client(b, "paho-kept");
        ck_assert_msg(connect_and_wait(c), "round %d: no CONNACK", round);
        ck_assert_int_eq(paho_threads(), 2);
        sim_mqtt_destroy(c);
        /* Nothing to wait for: with the idle client, destroy does not stop Paho. A short
           grace catches a tear-down that would only finish a moment later. */
        nap_ms(300);
        ck_assert_msg(paho_threads() == 2, "round %d: Paho's threads went with the last "
                      "client (%d left)", round, paho_threads());
    }
    hx_broker_free(b);
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(a_paho_client_next_to_a_quiet_one_waits_for_pahos_one_second_poll_to_connect)
{
    struct hx_broker *b = broker();
    struct sim_mqtt *quiet = paho_client(b, "paho-quiet");
    uint64_t ms[5];

    ck_assert(connect_and_wait(quiet));
    for (int i = 0; i < 5; i++) {
        struct sim_mqtt *c = paho_client(b, "paho-second");
        uint64_t t0;
        nap_ms(200); /* Paho's receive thread is back in its long poll */
        t0 = now_ms();
        ck_assert_msg(connect_and_wait(c), "connect %d: no CONNACK", i);
        ms[i] = now_ms() - t0;
        sim_mqtt_destroy(c);
    }
    qsort(ms, 5, sizeof ms[0], cmp_u64);
    fprintf(stderr, "paho: connect next to a quiet client: median %llu ms (min %llu, max "
            "%llu)\n", (unsigned long long)ms[2], (unsigned long long)ms[0],
            (unsigned long long)ms[4]);
    ck_assert_msg(ms[2] >= 500, "median connect %llu ms: Paho's receive thread now sees a "
                  "new socket at once - drop the caveat in docs/performance.md",
                  (unsigned long long)ms[2]);
    sim_mqtt_destroy(quiet);
    hx_broker_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_paho");
    TCase *tc = tcase_create("paho");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, after_the_last_client_goes_paho_keeps_its_threads_and_the_next_client_connects);
    tcase_add_test(tc, a_paho_client_next_to_a_quiet_one_waits_for_pahos_one_second_poll_to_connect);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
