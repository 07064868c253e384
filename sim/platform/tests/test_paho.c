/*
 * test_paho.c - sim_paho_create (sim/paho.h) against a real mosquitto (hx_broker) and the
 * real Paho: once a process has made a client through it, destroying the last connected
 * client leaves Paho's library and its two threads up, so Paho's racy tear-down
 * (MQTTAsync_terminate) never runs; clients made afterwards connect as before.
 *
 * A plain MQTTAsync_create is pinned too: there Paho stops its threads when the last
 * client goes. That is the tear-down sim_paho exists to avoid; a Paho upgrade that changes
 * it is noticed here. Check runs each test in a process of its own, so the two do not mix.
 *
 * And the connect latency that src/paho_socket.c removes: with one client connected and
 * quiet, Paho 1.3.12 alone takes 1.8 s to connect a second one (its receive thread waits
 * out a 1 s poll twice); through paho_socket.c about 1 ms.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hx/broker.h"
#include "sim/paho.h"
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

/* Wait until Paho's thread count is want; true if it got there within timeout_ms. */
static bool wait_paho_threads(int want, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (paho_threads() != want) {
        if (now_ms() >= end)
            return false;
        nap_ms(10);
    }
    return true;
}

struct outcome {
    pthread_mutex_t mu;
    int ok, failed;
};

static void on_ok(void *ctx, MQTTAsync_successData *d)
{
    struct outcome *o = ctx;
    (void)d;
    pthread_mutex_lock(&o->mu);
    o->ok++;
    pthread_mutex_unlock(&o->mu);
}

static void on_fail(void *ctx, MQTTAsync_failureData *d)
{
    struct outcome *o = ctx;
    (void)d;
    pthread_mutex_lock(&o->mu);
    o->failed++;
    pthread_mutex_unlock(&o->mu);
}

/* Connect c to the broker and wait for its CONNACK; true if it came. */
static bool connect_and_wait(MQTTAsync c)
{
    static struct outcome o = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    uint64_t end = now_ms() + WAIT_MS;
    int ok_before, done = 0;

    pthread_mutex_lock(&o.mu);
    ok_before = o.ok + o.failed;
    pthread_mutex_unlock(&o.mu);
    co.cleansession = 1;
    co.keepAliveInterval = 30;
    co.onSuccess = on_ok;
    co.onFailure = on_fail;
    co.context = &o;
    if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS)
        return false;
    while (!done && now_ms() < end) {
        nap_ms(5);
        pthread_mutex_lock(&o.mu);
        done = o.ok + o.failed > ok_before;
        pthread_mutex_unlock(&o.mu);
    }
    return done && MQTTAsync_isConnected(c);
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
    MQTTAsync c = NULL;
    MQTTAsync_createOptions opts = MQTTAsync_createOptions_initializer;

    ck_assert_int_eq(paho_threads(), 0);
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(sim_paho_create(&c, hx_broker_uri(b), "paho-kept", &opts),
                         MQTTASYNC_SUCCESS);
        ck_assert_ptr_nonnull(c);
        ck_assert_msg(connect_and_wait(c), "round %d: no CONNACK", round);
        ck_assert_int_eq(paho_threads(), 2);
        MQTTAsync_destroy(&c);
        ck_assert_ptr_null(c);
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

/* Without paho_socket.c each of these connects waits for Paho's 1 s read poll to time out,
   at least once (1.8 s measured); the bound leaves the loaded CI machine a wide margin. */
START_TEST(a_client_connects_at_once_while_another_of_the_process_is_connected_and_quiet)
{
    struct hx_broker *b = broker();
    MQTTAsync quiet = NULL, c = NULL;
    uint64_t ms[5];

    ck_assert_int_eq(sim_paho_create(&quiet, hx_broker_uri(b), "paho-quiet", NULL),
                     MQTTASYNC_SUCCESS);
    ck_assert(connect_and_wait(quiet));
    for (int i = 0; i < 5; i++) {
        uint64_t t0;
        nap_ms(200); /* Paho's receive thread is back in its long poll */
        ck_assert_int_eq(sim_paho_create(&c, hx_broker_uri(b), "paho-second", NULL),
                         MQTTASYNC_SUCCESS);
        t0 = now_ms();
        ck_assert_msg(connect_and_wait(c), "connect %d: no CONNACK", i);
        ms[i] = now_ms() - t0;
        MQTTAsync_destroy(&c);
    }
    qsort(ms, 5, sizeof ms[0], cmp_u64);
    ck_assert_msg(ms[2] < 500, "median connect %llu ms (min %llu, max %llu): Paho's receive "
                  "thread did not see the new socket", (unsigned long long)ms[2],
                  (unsigned long long)ms[0], (unsigned long long)ms[4]);
    MQTTAsync_destroy(&quiet);
    hx_broker_free(b);
}
END_TEST

START_TEST(a_failed_create_leaves_no_handle)
{
    MQTTAsync c = (MQTTAsync)&c; /* anything but NULL */

    ck_assert_int_eq(sim_paho_create(&c, "nosuch://127.0.0.1:1", "paho-bad", NULL),
                     MQTTASYNC_BAD_PROTOCOL);
    ck_assert_ptr_null(c);
}
END_TEST

/* The behaviour sim_paho works around, pinned: a plain Paho client, alone in its process,
   takes Paho's threads with it when it is destroyed. */
START_TEST(a_plain_paho_client_alone_takes_pahos_threads_down_when_destroyed)
{
    struct hx_broker *b = broker();
    MQTTAsync c = NULL;

    ck_assert_int_eq(MQTTAsync_create(&c, hx_broker_uri(b), "paho-plain",
                                      MQTTCLIENT_PERSISTENCE_NONE, NULL),
                     MQTTASYNC_SUCCESS);
    ck_assert(connect_and_wait(c));
    ck_assert_int_eq(paho_threads(), 2);
    MQTTAsync_destroy(&c);
    ck_assert_msg(wait_paho_threads(0, WAIT_MS), "Paho 1.3.12 stopped its threads here; "
                  "%d still run - has Paho's tear-down changed?", paho_threads());
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
    tcase_add_test(tc, a_client_connects_at_once_while_another_of_the_process_is_connected_and_quiet);
    tcase_add_test(tc, a_failed_create_leaves_no_handle);
    tcase_add_test(tc, a_plain_paho_client_alone_takes_pahos_threads_down_when_destroyed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
