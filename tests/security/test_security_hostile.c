/*
 * test_security_hostile.c - a broker side that sends garbage: the fault proxy (hx_proxy)
 * injects malformed MQTT toward a simulated scanner (sim_device: firmware_core + Paho):
 * a 5-byte remaining length, a PUBLISH cut short then closed, an oversize packet
 * (268,435,455 bytes announced), the reserved packet type 0.
 *
 * The device side must survive (no crash, no sanitizer report), drop the link, reconnect by
 * itself (connection_losses and connects grow), and register a later item end to end.
 * The link goes through the proxy in plain TCP: bytes cannot be injected into a TLS stream
 * (that is what TLS is for); the broker and the backend are the usual private ones.
 * One tcase per malformed kind; CTest runs each as its own test (CK_RUN_CASE).
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hx/proxy.h"
#include "sec_util.h"

struct hostile_env {
    struct hx_broker *broker;
    struct hx_backend *backend;
    struct hx_proxy_hub *hub;
    struct hx_proxy *proxy;
    struct sec_fleet fleet;
    struct sim_device *dev;
};

static void env_up(struct hostile_env *e, uint16_t keepalive_s)
{
    memset(e, 0, sizeof *e);
    struct hx_broker_opts bo = {0};
    ck_assert_msg(hx_broker_start(&bo, &e->broker) == 0, "broker: %s", hx_broker_last_error());
    struct hx_backend_opts o = {0};
    o.uri = hx_broker_uri(e->broker);
    o.layout = HX_BACKEND_LAYOUT_PER_DEVICE;
    o.connect_timeout_ms = SEC_WAIT_MS;
    ck_assert_int_eq(hx_backend_create(&o, &e->backend), 0);
    ck_assert_msg(hx_backend_start(e->backend) == 0, "backend: %s", hx_backend_last_error());

    struct hx_proxy_hub_opts ho = {0};
    ho.log_stderr = true;
    ck_assert_msg(hx_proxy_hub_create(&ho, &e->hub) == 0, "hub: %s", hx_proxy_last_error());
    ck_assert_int_eq(hx_proxy_hub_start(e->hub), 0);
    ck_assert_msg(hx_proxy_add(e->hub, "127.0.0.1", hx_broker_port(e->broker), 0, &e->proxy) == 0,
                  "proxy: %s", hx_proxy_last_error());
    hx_proxy_set_name(e->proxy, "scanner-1");

    char uri[64];
    snprintf(uri, sizeof uri, "tcp://127.0.0.1:%u", (unsigned)hx_proxy_port(e->proxy));
    sec_fleet_init(&e->fleet);
    struct sim_device_opts d;
    sec_device_opts(&d, "scanner-1", uri, NULL, NULL, NULL);
    d.fw.keepalive_s = keepalive_s;
    e->dev = sec_fleet_add(&e->fleet, &d);
    ck_assert_msg(sec_wait_connected(e->dev, SEC_WAIT_MS), "no connection through the proxy");
}

static void env_down(struct hostile_env *e)
{
    sec_fleet_free(&e->fleet);
    hx_proxy_hub_free(e->hub);
    hx_backend_free(e->backend);
    hx_broker_free(e->broker);
}

/* Inject, then: the link drops, the device reconnects, an item still registers.
   must_drop false: Paho 1.3.12 skips a packet of an unknown type (MQTTPacket_Factory only
   logs it) instead of closing the connection as MQTT 3.1.1 section 4.8 / MQTT 5 section
   4.13 require; the device must survive either way, and the test says which happened. */
static void survives(enum hx_proxy_malformed what, uint16_t keepalive_s, bool must_drop)
{
    struct hostile_env e;
    env_up(&e, keepalive_s);
    /* First an item before the attack: the link works. */
    sec_register_item(e.backend, e.dev, 1, 0x0101);
    ck_assert_int_eq(hx_backend_wait_registered(e.backend, 1, SEC_WAIT_MS), 0);
    struct sim_device_snapshot before = sec_snap(e.dev);

    ck_assert_int_eq(hx_proxy_inject(e.proxy, what), 1);
    uint64_t t_inject = sec_now_ms(), t_loss = 0;
    /* An oversize packet leaves Paho waiting for 256 MiB that never come: only the
       keep-alive (no PINGRESP gets through) ends that link. */
    int loss_wait = must_drop ? SEC_WAIT_MS + 3 * keepalive_s * 1000 : 3 * keepalive_s * 1000;
    uint64_t end = sec_now_ms() + (uint64_t)loss_wait;
    struct sim_device_snapshot s;
    do {
        s = sec_snap(e.dev);
        if (!t_loss && s.stats.connection_losses > before.stats.connection_losses)
            t_loss = sec_now_ms();
        if (s.stats.connection_losses > before.stats.connection_losses &&
            s.stats.connects > before.stats.connects && s.connected)
            break;
        sec_nap_ms(50);
    } while (sec_now_ms() < end);
    fprintf(stderr, "%s: losses %u -> %u (%lld ms after the injection, keep-alive %u s), "
            "connects %u -> %u, words: %s\n", tcase_name(), before.stats.connection_losses,
            s.stats.connection_losses, t_loss ? (long long)(t_loss - t_inject) : -1LL,
            (unsigned)keepalive_s, before.stats.connects, s.stats.connects, s.last_words);
    struct hx_proxy_counters pc;
    ck_assert_int_eq(hx_proxy_counters(e.proxy, &pc), 0);
    ck_assert_uint_ge(pc.injected, 1);
    if (must_drop || s.stats.connection_losses > before.stats.connection_losses) {
        ck_assert_msg(s.stats.connection_losses > before.stats.connection_losses,
                      "the device did not drop the link after the malformed packet");
        ck_assert_msg(s.stats.connects > before.stats.connects && s.connected,
                      "the device did not reconnect (%s)", s.last_words);
        ck_assert_uint_ge(pc.links_accepted, 2);
    } else {
        fprintf(stderr, "%s: the link stayed up: Paho ignored the packet (3 keep-alives "
                "watched)\n", tcase_name());
        ck_assert_msg(s.connected, "the device is neither connected nor did it reconnect");
        ck_assert_uint_eq(pc.links_accepted, 1);
    }

    /* A later item still registers, exactly once. */
    sec_register_item(e.backend, e.dev, 2, 0x0202);
    ck_assert_int_eq(hx_backend_wait_registered(e.backend, 2, SEC_WAIT_MS), 0);
    ck_assert_int_eq(hx_backend_sync(e.backend, SEC_WAIT_MS), 0);
    struct hx_ledger_report r;
    hx_backend_report(e.backend, &r);
    ck_assert_uint_eq(r.registered_once, 2);
    ck_assert_uint_eq(r.registered_twice, 0);
    ck_assert_uint_eq(r.lost, 0);
    env_down(&e);
}

START_TEST(a_bad_remaining_length_drops_the_link_and_the_device_recovers)
{
    survives(HX_PROXY_BAD_REMAINING_LENGTH, 5, true);
}
END_TEST

START_TEST(a_truncated_packet_drops_the_link_and_the_device_recovers)
{
    survives(HX_PROXY_TRUNCATED_THEN_CLOSE, 5, true);
}
END_TEST

START_TEST(an_oversize_packet_drops_the_link_and_the_device_recovers)
{
    survives(HX_PROXY_OVERSIZE, 2, true);
}
END_TEST

START_TEST(an_unknown_packet_type_drops_the_link_and_the_device_recovers)
{
    survives(HX_PROXY_UNKNOWN_TYPE0, 2, false);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("security_hostile");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"bad_remaining_length", a_bad_remaining_length_drops_the_link_and_the_device_recovers},
        {"truncated", a_truncated_packet_drops_the_link_and_the_device_recovers},
        {"oversize", an_oversize_packet_drops_the_link_and_the_device_recovers},
        {"unknown_type", an_unknown_packet_type_drops_the_link_and_the_device_recovers},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 100);
        _tcase_add_test(tc, cases[i].test, 0, 0, 0, 1);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hostile_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
