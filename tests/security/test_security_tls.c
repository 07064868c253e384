/*
 * test_security_tls.c - simulated scanners (sim_device: firmware_core + the MQTT edge)
 * against a private mosquitto that speaks TLS, with passwords, client certificates and a
 * per-device ACL, each test with its own throw-away PKI (ci/make-pki.sh).
 *
 * What a real deployment does to a device, and what the user must see:
 *   - TLS + password, mutual TLS: every device connects and registers an item end to end
 *     through the backend role (which also speaks TLS);
 *   - a wrong password, an expired certificate, a certificate from a foreign CA, plain TCP
 *     on the TLS port: the connect fails with words that say what and what to do, the
 *     device backs off (connection attempts counted in the broker's log over a window)
 *     and no password is ever printed;
 *   - a device publishing under another device's topics is refused by the ACL (MQTT 3.1.1:
 *     the message never reaches the backend; MQTT 5: PUBACK reason 0x87, which the device
 *     counts (publishes_refused), logs in words and drops from its outbox) and the ledger
 *     is unharmed.
 * Each case is a Check tcase; CTest runs them as separate tests (CK_RUN_CASE) so they run
 * in parallel.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sec_util.h"
#include "sim/err.h"
#include "sim/test_mqtt.h"

/* Attempts allowed in the window: back-off 1 s doubling (+-25 %) gives about 4 in 8 s;
   a device hammering the broker would make dozens. */
#define BACKOFF_WINDOW_MS 8000
#define BACKOFF_MAX_ATTEMPTS 6

static char pki[256];

static void setup(void)
{
    sec_pki_make(pki, sizeof pki);
}

static void teardown(void)
{
    sec_rm_rf(pki);
}

/* Does text hold the words (case-sensitive)? Prints the text on failure. */
#define assert_has(text, words)                                                          \
    ck_assert_msg(strstr((text), (words)) != NULL, "expected \"%s\" in:\n%s", (words), (text))
#define assert_lacks(text, words)                                                        \
    ck_assert_msg(strstr((text), (words)) == NULL, "\"%s\" must not appear in:\n%s", (words), \
                  (text))

/* ------------------------------------------------------------ working set-ups */

static void every_device_registers(enum sec_broker_kind kind)
{
    struct hx_broker *b = sec_broker_start(kind, pki);
    const char *uri = hx_broker_uri(b);
    struct hx_backend *be = sec_backend_start(kind, pki, uri);
    struct sec_fleet f;
    sec_fleet_init(&f);
    struct sim_device *d[SEC_DEVICES];
    for (int k = 1; k <= SEC_DEVICES; k++) {
        char id[32], crt[32], key[32];
        snprintf(id, sizeof id, "scanner-%d", k);
        snprintf(crt, sizeof crt, "scanner-%d.crt", k);
        snprintf(key, sizeof key, "scanner-%d.key", k);
        struct sim_device_opts o;
        if (kind == SEC_BROKER_MTLS) {
            sec_device_opts(&o, id, uri, sec_path(pki, "ca.crt"), sec_path(pki, crt),
                            sec_path(pki, key));
        } else {
            sec_device_opts(&o, id, uri, sec_path(pki, "ca.crt"), NULL, NULL);
            o.transport.username = id;
            o.transport.password = sec_device_password(k);
        }
        d[k - 1] = sec_fleet_add(&f, &o);
    }
    for (int k = 0; k < SEC_DEVICES; k++)
        ck_assert_msg(sec_wait_connected(d[k], SEC_WAIT_MS), "%s did not connect over TLS: %s",
                      sim_device_id(d[k]), sec_snap(d[k]).last_words);
    for (int k = 0; k < SEC_DEVICES; k++)
        sec_register_item(be, d[k], 100 + k, 0x1000u + (uint32_t)k);
    ck_assert_msg(hx_backend_wait_registered(be, SEC_DEVICES, SEC_WAIT_MS) == 0,
                  "registrations did not reach the backend: %s", hx_backend_last_error());
    ck_assert_int_eq(hx_backend_sync(be, SEC_WAIT_MS), 0);
    struct hx_ledger_report r;
    hx_backend_report(be, &r);
    ck_assert_uint_eq(r.published, SEC_DEVICES);
    ck_assert_uint_eq(r.registered_once, SEC_DEVICES);
    ck_assert_uint_eq(r.registered_twice, 0);
    ck_assert_uint_eq(r.lost, 0);
    ck_assert_uint_eq(r.unknown_items, 0);
    for (int k = 0; k < SEC_DEVICES; k++) {
        ck_assert_int_eq(hx_backend_item_registrations(be, 100 + k), 1);
        struct sim_device_snapshot s = sec_snap(d[k]);
        ck_assert_uint_eq(s.stats.connect_failures, 0);
        ck_assert_uint_ge(s.stats.connects, 1);
    }
    /* The broker saw TLS identities, not anonymous clients. */
    char *text = sec_fleet_text(&f);
    for (int k = 1; k <= SEC_DEVICES && kind == SEC_BROKER_TLS_PASSWORD; k++)
        assert_lacks(text, sec_device_password(k));
    free(text);
    ck_assert(!sec_file_contains(hx_broker_log_path(b), SEC_BACKEND_PASSWORD));
    sec_fleet_free(&f);
    hx_backend_free(be);
    hx_broker_free(b);
}

START_TEST(every_device_registers_over_tls_with_a_password)
{
    every_device_registers(SEC_BROKER_TLS_PASSWORD);
}
END_TEST

START_TEST(every_device_registers_over_mutual_tls)
{
    every_device_registers(SEC_BROKER_MTLS);
}
END_TEST

/* ------------------------------------------------------------ refused devices */

/* The whole advice of a failed TLS session, to its last word. */
#define TLS_ADVICE "- check host, port, that the broker runs, --cafile, --cert/--key and their dates"
struct refusal {
    enum sec_broker_kind broker;
    const char *scheme_override; /* "tcp" to knock on the TLS port in plain text, or NULL */
    const char *password;        /* NULL = no password */
    const char *cert, *key;      /* NULL = none */
    const char *cafile;          /* NULL = the test CA */
    const char *words[3];        /* must all be in the device's failure words */
    const char *broker_log;      /* what the broker's log says about it, or NULL */
};

/* Start one misconfigured device, watch it for the window, check words, back-off, silence. */
static void refused(const struct refusal *c)
{
    struct hx_broker *b = sec_broker_start(c->broker, pki);
    char uri[80];
    snprintf(uri, sizeof uri, "%s", hx_broker_uri(b));
    if (c->scheme_override)
        snprintf(uri, sizeof uri, "%s://127.0.0.1:%u", c->scheme_override,
                 (unsigned)hx_broker_port(b));
    struct sec_fleet f;
    sec_fleet_init(&f);
    struct sim_device_opts o;
    sec_device_opts(&o, "scanner-1", uri, sec_path(pki, c->cafile ? c->cafile : "ca.crt"),
                    c->cert ? sec_path(pki, c->cert) : NULL,
                    c->key ? sec_path(pki, c->key) : NULL);
    if (c->password) {
        o.transport.username = "scanner-1";
        o.transport.password = c->password;
    }
    int before = sec_log_connections(b);
    uint64_t t0 = sec_now_ms();
    struct sim_device *d = sec_fleet_add(&f, &o);
    ck_assert_msg(sec_wait_failures(d, 1, SEC_WAIT_MS), "no connect failure reported");
    /* The measurement window: a fixed span on purpose (we count what happens in it). */
    while (sec_now_ms() < t0 + BACKOFF_WINDOW_MS)
        sec_nap_ms(50);
    /* Attempts as the device counts them (each one failed), and connections as the broker
       logged them: the log can also hold hx_broker's start-up probe, logged late. */
    int seen = sec_log_connections(b) - before;
    struct sim_device_snapshot s = sec_snap(d);
    int attempts = (int)s.stats.connect_failures;
    char *text = sec_fleet_text(&f);
    fprintf(stderr, "%s: %d connection attempts in %d ms (%d connections in the broker's "
            "log); device words: %s\n", tcase_name(), attempts, BACKOFF_WINDOW_MS, seen,
            s.last_words);

    ck_assert_uint_eq(s.stats.connects, 0);
    ck_assert_msg(!s.connected, "the device must not be connected");
    ck_assert_int_eq(s.conn_state, SIM_CONN_FAILED);
    /* Whole, in what was said and in the device's last words: never cut mid-advice. */
    for (int i = 0; i < 3 && c->words[i]; i++) {
        assert_has(text, c->words[i]);
        assert_has(s.last_words, c->words[i]);
    }
    assert_has(text, uri); /* to what */
    if (c->broker_log)
        ck_assert_msg(sec_file_contains(hx_broker_log_path(b), c->broker_log),
                      "the broker log does not say \"%s\"", c->broker_log);
    ck_assert_msg(attempts >= 2, "the device gave up: %d attempts in %d ms", attempts,
                  BACKOFF_WINDOW_MS);
    ck_assert_msg(attempts <= BACKOFF_MAX_ATTEMPTS,
                  "the device hammers the broker: %d attempts in %d ms", attempts,
                  BACKOFF_WINDOW_MS);
    ck_assert_msg(seen >= attempts, "the broker logged %d connections for %d attempts", seen,
                  attempts);
    if (c->password) {
        assert_lacks(text, c->password);
        assert_lacks(s.last_words, c->password);
        ck_assert(!sec_file_contains(hx_broker_log_path(b), c->password));
    }
    free(text);
    sec_fleet_free(&f);
    hx_broker_free(b);
}

START_TEST(a_wrong_password_is_refused_with_words_and_back_off)
{
    struct refusal c = {.broker = SEC_BROKER_TLS_PASSWORD,
                        .password = "Wr0ng-Secret-4711",
                        /* mosquitto 2.0 answers a bad password with CONNACK 5 */
                        .words = {"refused: not authorised (CONNACK 5)",
                                  "check the user name and password"}};
    refused(&c);
}
END_TEST

START_TEST(an_expired_client_certificate_is_refused)
{
    /* TLS 1.3: the broker rejects the certificate after the client's handshake ended, so
       the client only sees the session fail; the broker's log says why. */
    struct refusal c = {.broker = SEC_BROKER_MTLS, .cert = "expired.crt", .key = "expired.key",
                        .words = {"failed: ", "--cert/--key"},
                        .broker_log = "certificate verify failed"};
    refused(&c);
}
END_TEST

START_TEST(a_certificate_from_a_foreign_ca_is_refused)
{
    struct refusal c = {.broker = SEC_BROKER_MTLS, .cert = "foreign.crt", .key = "foreign.key",
                        /* TLS 1.3: the broker's alert comes after the client's handshake
                           ended, so libmosquitto names it or only sees the session fail */
                        .words = {"failed: ", "--cert/--key"},
                        .broker_log = "certificate verify failed"};
    refused(&c);
}
END_TEST

START_TEST(a_broker_certificate_from_an_untrusted_ca_is_refused_by_the_device)
{
    /* The device trusts only the foreign CA: the broker's certificate does not verify. */
    struct refusal c = {.broker = SEC_BROKER_TLS_PASSWORD,
                        .cafile = "foreign-ca.crt",
                        .password = sec_device_password(1),
                        /* OpenSSL's reason, caught with ssl_error_cb, names the cause */
                        .words = {"failed: the broker's certificate was not trusted "
                                  "(certificate verify failed)",
                                  "- check --cafile and the name and dates in the broker's "
                                  "certificate"}};
    refused(&c);
}
END_TEST

START_TEST(insecure_skips_the_broker_certificate_check)
{
    /* The same untrusted broker certificate, with insecure: the device connects (the
       counter-test of the one above: the check, not something else, refused it). */
    struct hx_broker *b = sec_broker_start(SEC_BROKER_TLS_PASSWORD, pki);
    struct sec_fleet f;
    sec_fleet_init(&f);
    struct sim_device_opts o;
    sec_device_opts(&o, "scanner-1", hx_broker_uri(b), sec_path(pki, "foreign-ca.crt"), NULL,
                    NULL);
    o.transport.username = "scanner-1";
    o.transport.password = sec_device_password(1);
    o.transport.insecure = true;
    struct sim_device *d = sec_fleet_add(&f, &o);
    ck_assert_msg(sec_wait_connected(d, SEC_WAIT_MS), "insecure did not connect: %s",
                  sec_snap(d).last_words);
    sec_fleet_free(&f);
    hx_broker_free(b);
}
END_TEST

/* Start a backend over TLS with a password; 0 or hx_backend_start's error. */
static int backend_tls(struct hx_broker *b, const char *cafile, bool insecure)
{
    struct hx_backend_opts o = {0};
    struct hx_backend *be = NULL;
    int rc;

    o.uri = hx_broker_uri(b);
    o.cafile = cafile;
    o.insecure = insecure;
    o.username = "backend";
    o.password = SEC_BACKEND_PASSWORD;
    o.connect_timeout_ms = 5000;
    ck_assert_int_eq(hx_backend_create(&o, &be), 0);
    rc = hx_backend_start(be);
    hx_backend_free(be);
    return rc;
}

/* The backend role checks the broker as a device does: against --cafile, or without it
   against the system's store (which does not hold the test CA), unless insecure. */
START_TEST(the_backend_checks_the_brokers_certificate_unless_insecure)
{
    struct hx_broker *b = sec_broker_start(SEC_BROKER_TLS_PASSWORD, pki);

    ck_assert_int_ne(backend_tls(b, sec_path(pki, "foreign-ca.crt"), false), 0);
    ck_assert_int_ne(backend_tls(b, NULL, false), 0);
    ck_assert_msg(backend_tls(b, NULL, true) == 0, "insecure: %s", hx_backend_last_error());
    ck_assert_msg(backend_tls(b, sec_path(pki, "ca.crt"), false) == 0, "with the CA: %s",
                  hx_backend_last_error());
    hx_broker_free(b);
}
END_TEST

START_TEST(plain_tcp_on_the_tls_port_fails)
{
    struct refusal c = {.broker = SEC_BROKER_TLS_PASSWORD,
                        .scheme_override = "tcp",
                        .password = sec_device_password(1),
                        .words = {"failed: the broker cannot be reached",
                                  "- check host and port and that the broker runs"},
                        .broker_log = "wrong version number"};
    refused(&c);
}
END_TEST

START_TEST(tls_to_a_plain_tcp_port_fails_with_words)
{
    /* The mirror image of the case above: ssl:// pointed at a broker that speaks plain
       MQTT. Whatever OpenSSL makes of the answer, the device says what failed and what
       to do, in whole words, and backs off. */
    struct hx_broker_opts bo = {0};
    struct hx_broker *b = NULL;
    ck_assert_msg(hx_broker_start(&bo, &b) == 0, "broker: %s", hx_broker_last_error());
    char uri[80];
    snprintf(uri, sizeof uri, "ssl://127.0.0.1:%u", (unsigned)hx_broker_port(b));
    struct sec_fleet f;
    sec_fleet_init(&f);
    struct sim_device_opts o;
    sec_device_opts(&o, "scanner-1", uri, sec_path(pki, "ca.crt"), NULL, NULL);
    struct sim_device *d = sec_fleet_add(&f, &o);
    ck_assert_msg(sec_wait_failures(d, 2, SEC_WAIT_MS), "no second connect failure reported");
    struct sim_device_snapshot s = sec_snap(d);
    fprintf(stderr, "%s: device words: %s\n", tcase_name(), s.last_words);
    ck_assert_uint_eq(s.stats.connects, 0);
    assert_has(s.last_words, uri);
    assert_has(s.last_words, " failed: ");
    /* The words end with advice that names the TLS options, not cut. */
    assert_has(s.last_words, "--cafile");
    size_t n = strlen(s.last_words);
    ck_assert_msg(n > 0 && n + 1 < sizeof s.last_words, "words fill the buffer: %s",
                  s.last_words);
    sec_fleet_free(&f);
    hx_broker_free(b);
}
END_TEST

/* ------------------------------------------------------------ ACL */

/* scanner-1 is configured to publish its registrations under scanner-2's topic. */
static void foreign_topic_publish(int mqtt_version)
{
    struct hx_broker *b = sec_broker_start(SEC_BROKER_MTLS, pki);
    const char *uri = hx_broker_uri(b);
    struct hx_backend *be = sec_backend_start(SEC_BROKER_MTLS, pki, uri);
    struct sec_fleet f;
    sec_fleet_init(&f);
    struct sim_device_opts o;
    sec_device_opts(&o, "scanner-1", uri, sec_path(pki, "ca.crt"),
                    sec_path(pki, "scanner-1.crt"), sec_path(pki, "scanner-1.key"));
    o.fw.topic_item_registered = "scanners/scanner-2/item_registered";
    o.transport.mqtt_version = mqtt_version;
    struct sim_device *rogue = sec_fleet_add(&f, &o);
    sec_device_opts(&o, "scanner-2", uri, sec_path(pki, "ca.crt"),
                    sec_path(pki, "scanner-2.crt"), sec_path(pki, "scanner-2.key"));
    o.transport.mqtt_version = mqtt_version;
    struct sim_device *honest = sec_fleet_add(&f, &o);
    ck_assert(sec_wait_connected(rogue, SEC_WAIT_MS));
    ck_assert(sec_wait_connected(honest, SEC_WAIT_MS));

    sec_register_item(be, rogue, 7, 0x777);
    /* The rogue registration went out; 3.1.1: mosquitto acknowledges and drops it. */
    uint64_t end = sec_now_ms() + SEC_WAIT_MS;
    while (sec_snap(rogue).stats.registrations_sent < 1 && sec_now_ms() < end)
        sec_nap_ms(20);
    ck_assert_uint_ge(sec_snap(rogue).stats.registrations_sent, 1);
    if (mqtt_version == 3) {
        end = sec_now_ms() + SEC_WAIT_MS;
        while (sec_snap(rogue).stats.registrations_acked < 1 && sec_now_ms() < end)
            sec_nap_ms(20);
        ck_assert_uint_eq(sec_snap(rogue).stats.registrations_acked, 1);
    }
    /* The honest device registers after it: once its registration is in the ledger, the
       rogue one (sent earlier on the same broker) would be too, had it passed. */
    sec_register_item(be, honest, 8, 0x888);
    ck_assert_int_eq(hx_backend_wait_registered(be, 1, SEC_WAIT_MS), 0);
    ck_assert_int_eq(hx_backend_sync(be, SEC_WAIT_MS), 0);
    struct hx_ledger_report r;
    hx_backend_report(be, &r);
    ck_assert_uint_eq(r.registrations_received, 1);
    ck_assert_uint_eq(r.registered, 1);
    ck_assert_int_eq(hx_backend_item_registrations(be, 7), 0);
    ck_assert_int_eq(hx_backend_item_registrations(be, 8), 1);
    ck_assert_uint_eq(r.unknown_items, 0);
    ck_assert_uint_eq(r.malformed, 0);
    ck_assert_uint_eq(r.registered_twice, 0);
    struct hx_backend_row rows[4];
    int n = hx_backend_recent(be, rows, 4);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(rows[0].device_id, "scanner-2");
    ck_assert_int_eq(rows[0].item_id, 8);
    if (mqtt_version == 5) {
        /* MQTT 5: PUBACK 0x87 reaches the firmware, which drops the registration from its
           outbox (retrying cannot help), counts it and says why. */
        end = sec_now_ms() + SEC_WAIT_MS;
        while ((sec_snap(rogue).stats.publishes_refused < 1 || sec_snap(rogue).status.outbox) &&
               sec_now_ms() < end)
            sec_nap_ms(20);
        struct sim_device_snapshot rs = sec_snap(rogue);
        ck_assert_uint_eq(rs.stats.publishes_refused, 1);
        ck_assert_uint_eq(rs.status.outbox, 0);
        ck_assert_uint_eq(rs.stats.registrations_acked, 0);
        ck_assert_uint_eq(sec_snap(honest).stats.publishes_refused, 0);
        char *text = sec_fleet_text(&f);
        assert_has(text, "registration of item 7 refused by the broker: not authorized (0x87)");
        free(text);
    } else {
        /* 3.1.1 has no refusal on the wire: nothing to report, nothing refused. */
        ck_assert_uint_eq(sec_snap(rogue).stats.publishes_refused, 0);
    }
    struct sim_device_snapshot s = sec_snap(rogue);
    fprintf(stderr, "%s: rogue device after the denied publish: sent %u, acked %u, outbox %u, "
            "publish_errors %u, publishes_refused %u\n", tcase_name(),
            s.stats.registrations_sent, s.stats.registrations_acked, s.status.outbox,
            s.stats.publish_errors, s.stats.publishes_refused);
    sec_fleet_free(&f);
    hx_backend_free(be);
    hx_broker_free(b);
}

START_TEST(a_device_cannot_publish_under_another_device_mqtt311)
{
    foreign_topic_publish(3);
}
END_TEST

START_TEST(a_device_cannot_publish_under_another_device_mqtt5_ledger_unharmed)
{
    foreign_topic_publish(5);
}
END_TEST

/* A raw MQTT 5 client (the tests' MQTT client on the edge, sim/test_mqtt.h) with scanner-1's
   certificate gets PUBACK reason 0x87. */
START_TEST(mqtt5_puback_reports_not_authorized_0x87)
{
    struct hx_broker *b = sec_broker_start(SEC_BROKER_MTLS, pki);
    struct tmq *c = NULL;
    struct tmq_opts o;
    tmq_opts_defaults(&o);
    o.uri = hx_broker_uri(b);
    o.client_id = "scanner-1";
    o.mqtt_version = 5;
    o.cafile = sec_path(pki, "ca.crt"); /* sec_path's buffers outlive the create */
    o.certfile = sec_path(pki, "scanner-1.crt");
    o.keyfile = sec_path(pki, "scanner-1.key");
    o.keepalive_s = 60;
    o.wait_ms = SEC_WAIT_MS;
    ck_assert_int_eq(tmq_create(&o, &c), SIM_OK);
    int rc = tmq_connect(c);
    ck_assert_int_ne(rc, SIM_ERR_TIMEOUT);
    ck_assert_msg(rc == 0, "mutual TLS connect failed: %d", rc);

    /* Each publish: QoS 1, and its outcome (the PUBACK's reason code) awaited. */
    int reason = tmq_publish_text(c, "scanners/scanner-1/item_registered", "{}", 1, false);
    ck_assert_int_ne(reason, SIM_ERR_TIMEOUT);
    ck_assert_int_eq(reason, 0); /* own topic: success */
    reason = tmq_publish_text(c, "scanners/scanner-2/item_registered", "{}", 1, false);
    ck_assert_int_ne(reason, SIM_ERR_TIMEOUT);
    fprintf(stderr, "foreign-topic publish: %s, reason code 0x%02X\n",
            reason != 0 ? "failed" : "succeeded", (unsigned)reason);
    ck_assert_int_eq(reason, 0x87); /* not authorized */
    ck_assert_int_ne(reason, 0);    /* reported as a refused publish */
    tmq_close(c);
    hx_broker_free(b);
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *security_suite(void)
{
    Suite *s = suite_create("security_tls");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"tls_password", every_device_registers_over_tls_with_a_password},
        {"mtls", every_device_registers_over_mutual_tls},
        {"wrong_password", a_wrong_password_is_refused_with_words_and_back_off},
        {"expired_certificate", an_expired_client_certificate_is_refused},
        {"foreign_ca", a_certificate_from_a_foreign_ca_is_refused},
        {"plain_tcp_on_tls_port", plain_tcp_on_the_tls_port_fails},
        {"untrusted_broker", a_broker_certificate_from_an_untrusted_ca_is_refused_by_the_device},
        {"insecure", insecure_skips_the_broker_certificate_check},
        {"backend_verifies", the_backend_checks_the_brokers_certificate_unless_insecure},
        {"tls_to_plain_port", tls_to_a_plain_tcp_port_fails_with_words},
        {"acl_mqtt311", a_device_cannot_publish_under_another_device_mqtt311},
        {"acl_mqtt5", a_device_cannot_publish_under_another_device_mqtt5_ledger_unharmed},
        {"acl_mqtt5_puback", mqtt5_puback_reports_not_authorized_0x87},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        /* Unchecked: runs in the runner process, so the PKI is removed even when a failed
           assertion ends the test's own process early. */
        tcase_add_unchecked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 90);
        _tcase_add_test(tc, cases[i].test, 0, 0, 0, 1);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(security_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
