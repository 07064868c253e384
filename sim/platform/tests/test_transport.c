/*
 * test_transport.c - the device transport on the MQTT edge against a real mosquitto
 * (hx_broker), on the client library SCANSIM_TRANSPORT names (CTest runs it once per
 * library): connect,
 * publish tokens, received messages, session present (3.1.1 and MQTT 5 with session
 * expiry), refused passwords and unreachable brokers described in words without the
 * password, and what a power cut does on the wire.
 *
 * No firmware here: a recording target stands in for the device, on a caller-driven
 * loop pumped by the test thread.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_device.h"
#include "hx/broker.h"
#include "sim/err.h"
#include "sim/loop.h"
#include "sim/mqtt.h"
#include "sim/transport.h"
#include "sim/test_mqtt.h"
#include "sim_test_util.h"

struct rec {
    struct sim_loop_target t;
    struct sim_transport *tr;
    int connected, failed, lost, messages, published, subscribed;
    int granted; /* the last SUBACK's code */
    uint32_t sub_token;
    bool session_present;
    int code;
    char words[FW_LOG_MAX];
    char topic[128], payload[256];
    int qos;
    bool dup;
    uint32_t token;
};

static void rec_event(struct sim_loop_target *t, const struct sim_event *ev)
{
    struct rec *r = (struct rec *)t;

    if (!sim_transport_handle_event(r->tr, ev))
        return;
    switch (ev->kind) {
    case SIM_EV_CONNECTED:
        r->connected++;
        r->session_present = ev->session_present;
        break;
    case SIM_EV_CONNECT_FAILED:
        r->failed++;
        r->code = ev->code;
        snprintf(r->words, sizeof(r->words), "%s", ev->words);
        break;
    case SIM_EV_CONNECTION_LOST:
        r->lost++;
        snprintf(r->words, sizeof(r->words), "%s", ev->words);
        break;
    case SIM_EV_MESSAGE:
        r->messages++;
        snprintf(r->topic, sizeof(r->topic), "%s", ev->topic);
        snprintf(r->payload, sizeof(r->payload), "%s", (const char *)ev->payload);
        r->qos = ev->qos;
        r->dup = ev->dup;
        break;
    case SIM_EV_PUBLISHED:
        r->published++;
        r->token = ev->token;
        break;
    case SIM_EV_SUBSCRIBED:
        r->subscribed++;
        r->granted = ev->code;
        r->sub_token = ev->token;
        break;
    default:
        break;
    }
}

/* Pump the loop until *counter reaches n. */
static bool pump_until(struct sim_loop *loop, const int *counter, int n)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (*counter < n) {
        if (now_ms() >= end)
            return false;
        sim_loop_run_once(loop, 20);
    }
    return true;
}

struct fixture {
    struct hx_broker *broker;
    struct sim_loop *loop;
    struct rec rec;
};

static void setup(struct fixture *f, const struct hx_broker_opts *bo, int version,
                  const char *user, const char *password, const char *uri_override,
                  const char *client_id)
{
    struct sim_transport_opts o;

    memset(f, 0, sizeof(*f));
    if (!uri_override)
        ck_assert_msg(hx_broker_start(bo, &f->broker) == 0, "broker: %s",
                      hx_broker_last_error());
    ck_assert_int_eq(sim_loop_create(NULL, &f->loop), SIM_OK);
    f->rec.t.on_event = rec_event;
    ck_assert_int_eq(sim_loop_attach(f->loop, &f->rec.t), SIM_OK);
    sim_transport_opts_defaults(&o);
    o.uri = uri_override ? uri_override : hx_broker_uri(f->broker);
    o.mqtt_version = version;
    o.username = user;
    o.password = password;
    o.connect_timeout_s = 5;
    ck_assert_int_eq(sim_transport_create(&o, client_id, f->loop, &f->rec.t, &f->rec.tr),
                     SIM_OK);
}

static void teardown(struct fixture *f)
{
    sim_transport_destroy(f->rec.tr);
    sim_loop_detach(f->loop, &f->rec.t);
    sim_loop_free(f->loop);
    hx_broker_free(f->broker);
}

static struct fw_connect_params params(const char *id, bool clean)
{
    struct fw_connect_params p = { 0 };
    p.client_id = id;
    p.clean_session = clean;
    p.keepalive_s = 30;
    return p;
}

static void publish_and_receive(int version)
{
    struct fixture f;
    struct fw_connect_params p = params("t-pub", true);
    struct fw_publish msg = { "sim-test/echo", "hello", 5, 1, false };
    uint32_t token = 0;

    setup(&f, NULL, version, NULL, NULL, NULL, "t-pub");
    /* Offline publish is refused, not queued. */
    ck_assert_int_eq(sim_transport_publish(f.rec.tr, &msg, &token), FW_ERR_OFFLINE);
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.connected, 1));
    ck_assert(!f.rec.session_present);
    ck_assert(sim_transport_connected(f.rec.tr));
    ck_assert_int_eq(sim_transport_subscribe(f.rec.tr, "sim-test/echo", 1, &token), FW_OK);
    ck_assert_uint_ne(token, 0);
    /* The subscription exists when its SUBACK says so. */
    ck_assert(pump_until(f.loop, &f.rec.subscribed, 1));
    ck_assert_uint_eq(f.rec.sub_token, token);
    ck_assert_int_eq(f.rec.granted, 1);
    ck_assert_int_eq(sim_transport_publish(f.rec.tr, &msg, &token), FW_OK);
    ck_assert_uint_ne(token, 0);
    ck_assert(pump_until(f.loop, &f.rec.published, 1));
    ck_assert_uint_eq(f.rec.token, token);
    ck_assert(pump_until(f.loop, &f.rec.messages, 1));
    ck_assert_str_eq(f.rec.topic, "sim-test/echo");
    ck_assert_str_eq(f.rec.payload, "hello");
    ck_assert_int_eq(f.rec.qos, 1);
    ck_assert(!f.rec.dup);
    teardown(&f);
}

START_TEST(mqtt311_publish_reports_its_token_on_puback_and_a_subscribed_message_arrives)
{
    publish_and_receive(3);
}
END_TEST

START_TEST(mqtt5_publish_reports_its_token_on_puback_and_a_subscribed_message_arrives)
{
    publish_and_receive(5);
}
END_TEST

/* mosquitto 2.0 grants a subscription that its ACL file denies and filters at delivery
   instead (docs/brokers.md): the SUBACK reports what the broker granted, nothing more. */
static void acl_denied_subscription(int version, int want)
{
    static const struct hx_broker_user users[] = { { "dev", "pw" } };
    struct hx_broker_opts bo = { 0 };
    struct fixture f;
    struct fw_connect_params p = params("t-acl", true);
    uint32_t token = 0;

    bo.users = users;
    bo.n_users = 1;
    bo.acl = "user dev\ntopic readwrite sim-test/allowed\n";
    setup(&f, &bo, version, "dev", "pw", NULL, "t-acl");
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert_msg(pump_until(f.loop, &f.rec.connected, 1), "%s", f.rec.words);
    ck_assert_int_eq(sim_transport_subscribe(f.rec.tr, "sim-test/denied", 1, &token), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.subscribed, 1));
    ck_assert_uint_eq(f.rec.sub_token, token);
    ck_assert_int_eq(f.rec.granted, want);
    ck_assert_int_eq(sim_transport_subscribe(f.rec.tr, "sim-test/allowed", 1, &token), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.subscribed, 2));
    ck_assert_int_eq(f.rec.granted, 1);
    teardown(&f);
}

START_TEST(mqtt311_the_suback_reports_what_mosquitto_grants_even_for_a_filter_its_acl_denies)
{
    acl_denied_subscription(3, 1);
}
END_TEST

START_TEST(mqtt5_the_suback_reports_what_mosquitto_grants_even_for_a_filter_its_acl_denies)
{
    acl_denied_subscription(5, 1);
}
END_TEST

static void session_present(int version)
{
    struct fixture f;
    char id[32];
    struct fw_connect_params persistent, clean;

    snprintf(id, sizeof(id), "t-sess-%d", version);
    persistent = params(id, false);
    clean = params(id, true);
    setup(&f, NULL, version, NULL, NULL, NULL, id);
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &persistent), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.connected, 1));
    ck_assert_msg(!f.rec.session_present, "a first connection has no session");
    ck_assert_int_eq(sim_transport_subscribe(f.rec.tr, "sim-test/s", 1, NULL), FW_OK);
    sim_transport_disconnect(f.rec.tr);
    ck_assert(!sim_transport_connected(f.rec.tr));
    /* Reconnect on the same handle: the broker kept the session. */
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &persistent), FW_OK);
    ck_assert_msg(pump_until(f.loop, &f.rec.connected, 2), "failed %d: %s", f.rec.failed,
                  f.rec.words);
    ck_assert_msg(f.rec.session_present, "the persistent session was resumed");
    sim_transport_disconnect(f.rec.tr);
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &clean), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.connected, 3));
    ck_assert_msg(!f.rec.session_present, "a clean session never resumes");
    teardown(&f);
}

START_TEST(mqtt311_persistent_session_is_present_on_reconnect_and_clean_session_is_not)
{
    session_present(3);
}
END_TEST

START_TEST(mqtt5_session_expiry_keeps_the_session_for_a_reconnect_and_clean_start_drops_it)
{
    session_present(5);
}
END_TEST

static void refused_password(int version, int want_code, const char *want_words)
{
    static const struct hx_broker_user users[] = { { "alice", "right-secret" } };
    struct hx_broker_opts bo = { 0 };
    struct fixture f;
    struct fw_connect_params p = params("t-auth", true);

    bo.users = users;
    bo.n_users = 1;
    setup(&f, &bo, version, "alice", "Wr0ngPa55word", NULL, "t-auth");
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.failed, 1));
    ck_assert_int_eq(f.rec.connected, 0);
    ck_assert_int_eq(f.rec.code, want_code);
    ck_assert_msg(strstr(f.rec.words, want_words), "words: %s", f.rec.words);
    ck_assert_msg(strstr(f.rec.words, hx_broker_uri(f.broker)), "words: %s", f.rec.words);
    ck_assert_msg(strstr(f.rec.words, "check the user name and password"), "words: %s",
                  f.rec.words);
    ck_assert_msg(!strstr(f.rec.words, "Wr0ngPa55word"), "password leaked: %s", f.rec.words);
    ck_assert_msg(!strstr(f.rec.words, "right-secret"), "password leaked: %s", f.rec.words);
    teardown(&f);
}

/* mosquitto 2.0 answers a wrong password with "not authorised" (CONNACK 5 / 0x87), not
   with "bad user name or password" (4 / 0x86): the words follow what the broker said. */
START_TEST(mqtt311_refused_password_is_described_with_the_connack_code_and_without_the_password)
{
    refused_password(3, 5, "refused: not authorised (CONNACK 5)");
}
END_TEST

START_TEST(mqtt5_refused_password_is_described_with_the_reason_code_and_without_the_password)
{
    refused_password(5, 0x87, "refused: not authorized (reason code 0x87)");
}
END_TEST

START_TEST(an_unreachable_broker_is_described_with_its_uri_and_what_to_check)
{
    struct fixture f;
    struct fw_connect_params p = params("t-unreach", true);
    char uri[64];
    uint16_t port = hx_free_port();

    ck_assert_uint_ne(port, 0);
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%u", port); /* nobody listens there */
    setup(&f, NULL, 3, "bob", "S3cretPass", uri, "t-unreach");
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.failed, 1));
    ck_assert_int_eq(f.rec.code, FW_ERR_IO);
    ck_assert_msg(strstr(f.rec.words, uri), "words: %s", f.rec.words);
    ck_assert_msg(strstr(f.rec.words, "cannot be reached"), "words: %s", f.rec.words);
    ck_assert_msg(strstr(f.rec.words, "check host and port"), "words: %s", f.rec.words);
    ck_assert_msg(!strstr(f.rec.words, "S3cretPass"), "password leaked: %s", f.rec.words);
    /* The firmware may try again on the same handle: the second attempt reports too. */
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.failed, 2));
    teardown(&f);
}
END_TEST

START_TEST(failure_words_cover_each_connack_code_and_unknown_codes)
{
    char w[FW_LOG_MAX];
    static const char *const what[] = { "unacceptable protocol version",
                                        "client identifier rejected", "server unavailable",
                                        "bad user name or password", "not authorised" };

    for (int c = 1; c <= 5; c++) {
        char tag[16];
        sim_mqtt_describe_failure(w, sizeof(w), "tcp://h:1", c, NULL, NULL);
        snprintf(tag, sizeof(tag), "(CONNACK %d)", c);
        ck_assert_msg(strstr(w, what[c - 1]) && strstr(w, tag), "%d: %s", c, w);
    }
    sim_mqtt_describe_failure(w, sizeof(w), "tcp://h:1", 0x87, NULL, NULL);
    ck_assert_msg(strstr(w, "not authorized (reason code 0x87)"), "%s", w);
    sim_mqtt_describe_failure(w, sizeof(w), "tcp://h:1", 0xEE, NULL, NULL);
    ck_assert_msg(strstr(w, "unknown reason (reason code 0xEE)"), "%s", w);
    sim_mqtt_describe_failure(w, sizeof(w), "ssl://h:1", -1, "TLS handshake failed", NULL);
    ck_assert_msg(strstr(w, "TLS handshake failed") && strstr(w, "--cafile"), "%s", w);
}
END_TEST

START_TEST(failure_words_end_with_their_whole_advice)
{
    /* The longest usual case, a TLS failure to a five-digit port: the advice must be
       there to its last word, and short enough for a firmware log line as well. */
    char w[SIM_WORDS_MAX];
    const char *advice = "check host, port, that the broker runs, --cafile, --cert/--key and "
                         "their dates";

    sim_mqtt_describe_failure(w, sizeof(w), "ssl://127.0.0.1:65535", -1, "code -1", NULL);
    ck_assert_msg(strlen(w) > strlen(advice) &&
                  strcmp(w + strlen(w) - strlen(advice), advice) == 0, "%s", w);
    ck_assert_msg(strlen(w) < FW_LOG_MAX, "%zu bytes: %s", strlen(w), w);
    ck_assert_msg(strstr(w, "(code -1)"), "%s", w);
    sim_mqtt_describe_failure(w, sizeof(w), "tcp://127.0.0.1:65535", -1,
                              "Connection refused", NULL);
    ck_assert_msg(strstr(w, "cannot be reached (Connection refused) - check host and port and "
                            "that the broker runs"), "%s", w);
    ck_assert_msg(strlen(w) < FW_LOG_MAX, "%zu bytes: %s", strlen(w), w);
    /* No detail at all: the advice alone. */
    sim_mqtt_describe_failure(w, sizeof(w), "tcp://127.0.0.1:1", -1, NULL, NULL);
    ck_assert_msg(strstr(w, "cannot be reached - check host"), "%s", w);
}
END_TEST

START_TEST(tls_failure_words_name_what_openssl_said)
{
    char w[SIM_WORDS_MAX];
    static const struct {
        const char *reason, *want;
    } cases[] = {
        { "certificate verify failed", "failed: the broker's certificate was not trusted "
          "(certificate verify failed) - check --cafile" },
        { "wrong version number", "failed: the server did not answer in TLS (wrong version "
          "number) - is it a plain MQTT port? use tcp:// there, or the TLS port" },
        { "tlsv13 alert certificate required", "failed: the broker refused the device's "
          "certificate (tlsv13 alert certificate required) - check --cert/--key" },
        { "sslv3 alert bad certificate", "the broker refused the device's certificate" },
        { "no such file or directory", "the TLS files could not be used (no such file or "
          "directory) - check that --cafile, --cert and --key exist" },
        { "unsafe legacy renegotiation disabled", "failed: TLS handshake failed (unsafe "
          "legacy renegotiation disabled) - check --cafile, --cert/--key and their dates" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sim_mqtt_describe_failure(w, sizeof(w), "ssl://127.0.0.1:8883", -1, NULL,
                                  cases[i].reason);
        ck_assert_msg(strstr(w, cases[i].want), "%s -> %s", cases[i].reason, w);
        ck_assert_msg(strstr(w, "connection to ssl://127.0.0.1:8883 "), "%s", w);
        ck_assert_msg(strlen(w) + 1 < sizeof(w), "%s", w);
    }
    /* No reason: the generic words; a broker's refusal code wins over a TLS reason. */
    sim_mqtt_describe_failure(w, sizeof(w), "ssl://h:1", -1, NULL, "");
    ck_assert_msg(strstr(w, "no TCP or TLS session - check"), "%s", w);
    sim_mqtt_describe_failure(w, sizeof(w), "ssl://h:1", 5, NULL, "whatever");
    ck_assert_msg(strstr(w, "refused: not authorised (CONNACK 5)"), "%s", w);
}
END_TEST

/* What sim_transport_power_cut does on the wire. libmosquitto closes the socket: the broker
   sees a lost link and publishes the Will, as after a real power cut. Paho 1.3.12's
   MQTTAsync_destroy closes the session with a DISCONNECT packet when the socket has
   nothing pending, so the broker logs a clean disconnect and does not publish the Will.
   Both pinned here so that a library upgrade that changes either is noticed. */
START_TEST(a_power_cut_sends_the_will_on_libmosquitto_and_a_disconnect_on_paho)
{
    struct fixture f;
    struct hx_broker_opts bo = { 0 };
    struct fw_connect_params p = params("t-cut", true);
    struct tmq *w;

    bo.verbose_log = true;
    p.will_topic = "sim-test/cut/status";
    p.will_payload = "will";
    p.will_len = 4;
    p.will_qos = 1;
    p.will_retain = false;
    setup(&f, &bo, 3, NULL, NULL, NULL, "t-cut");
    w = watcher_start(hx_broker_uri(f.broker), "t-cut-watch", "sim-test/cut/#");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.connected, 1));
    sim_transport_power_cut(f.rec.tr);
    ck_assert(!sim_transport_connected(f.rec.tr));
    if (sim_transport_kind(f.rec.tr) == SIM_MQTT_PAHO) {
        ck_assert_msg(wait_file_contains(hx_broker_log_path(f.broker),
                                         "Client t-cut disconnected", WAIT_MS),
                      "the broker did not log a clean DISCONNECT from t-cut");
        ck_assert(!file_contains(hx_broker_log_path(f.broker), "t-cut closed its connection"));
        /* Everything the broker sent before this marker has arrived: no Will among it. */
        ck_assert(watcher_sync(w, "cut"));
        ck_assert_int_eq(tmq_count_on(w, "sim-test/cut/status", "will"), 0);
    } else {
        ck_assert_msg(tmq_wait_count_on(w, "sim-test/cut/status", "will", 1, WAIT_MS),
                      "no Will after a power cut on libmosquitto");
        ck_assert(!file_contains(hx_broker_log_path(f.broker), "Client t-cut disconnected."));
    }
    /* The transport is usable again: a fresh handle connects. */
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.connected, 2));
    tmq_free(w);
    teardown(&f);
}
END_TEST

/* The broker dies: one loss event in words naming the broker. A reconnect attempt then
   fails; its failure event comes after anything Paho reported about the loss (one thread,
   FIFO), so a duplicate loss would be counted by then. */
static void broker_killed(int version)
{
    struct fixture f;
    struct fw_connect_params p = params(version == 5 ? "t-lost-5" : "t-lost-3", false);

    setup(&f, NULL, version, NULL, NULL, NULL, p.client_id);
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.connected, 1));
    ck_assert_int_eq(hx_broker_kill(f.broker), 0);
    ck_assert(pump_until(f.loop, &f.rec.lost, 1));
    ck_assert(!sim_transport_connected(f.rec.tr));
    ck_assert_msg(strstr(f.rec.words, "lost") && strstr(f.rec.words, hx_broker_uri(f.broker)),
                  "words: %s", f.rec.words);
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.failed, 1));
    ck_assert_int_eq(f.rec.lost, 1);
    /* And back: the broker restarts, the same handle connects again. Like the firmware,
       try again after a failed attempt (a broker just restarted may refuse the first). */
    ck_assert_int_eq(hx_broker_restart(f.broker), 0);
    {
        uint64_t end = now_ms() + WAIT_MS;
        int attempts = 0;
        while (f.rec.connected < 2 && now_ms() < end) {
            int failed_before = f.rec.failed;
            attempts++;
            ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
            while (f.rec.connected < 2 && f.rec.failed == failed_before && now_ms() < end)
                sim_loop_run_once(f.loop, 20);
        }
        ck_assert_msg(f.rec.connected == 2, "no reconnect after %d attempts: %s", attempts,
                      f.rec.words);
        if (attempts > 1)
            fprintf(stderr, "reconnect after restart took %d attempts (last: %s)\n", attempts,
                    f.rec.words);
    }
    teardown(&f);
}

START_TEST(mqtt311_a_killed_broker_is_one_connection_loss_in_words_and_reconnect_works)
{
    broker_killed(3);
}
END_TEST

START_TEST(mqtt5_a_killed_broker_is_one_connection_loss_in_words_and_reconnect_works)
{
    broker_killed(5);
}
END_TEST

/* Three transports, room for one connect at a time: each waits its turn (issued from
   sim_transport_poll on the tick), the cap is never exceeded, and all get connected. */
struct polled {
    struct rec r;
    int max_seen;
};

/* TCP_NODELAY of this process's TCP connections to port: 1 or 0 each, in *on and *off. */
static void count_nodelay(uint16_t port, int *on, int *off)
{
    *on = *off = 0;
    for (int fd = 0; fd < 4096; fd++) {
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        int type = 0, nd = 0;
        socklen_t tl = sizeof type, nl = sizeof nd;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
            getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 || peer.sin_family != AF_INET ||
            ntohs(peer.sin_port) != port ||
            getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, &nl) != 0)
            continue;
        if (nd)
            (*on)++;
        else
            (*off)++;
    }
}

/* libmosquitto sets TCP_NODELAY when asked and leaves Nagle on otherwise; Paho has no
   option for it, so its connections keep Nagle on either way (docs/performance.md). */
static void nodelay_as_set(bool nodelay)
{
    struct fixture f;
    struct fw_connect_params p = params("t-nodelay", true);
    struct sim_transport_opts o;
    int on, off;

    memset(&f, 0, sizeof(f));
    ck_assert_msg(hx_broker_start(NULL, &f.broker) == 0, "broker: %s", hx_broker_last_error());
    ck_assert_int_eq(sim_loop_create(NULL, &f.loop), SIM_OK);
    f.rec.t.on_event = rec_event;
    ck_assert_int_eq(sim_loop_attach(f.loop, &f.rec.t), SIM_OK);
    sim_transport_opts_defaults(&o);
    o.uri = hx_broker_uri(f.broker);
    o.tcp_nodelay = nodelay;
    ck_assert_int_eq(sim_transport_create(&o, "t-nodelay", f.loop, &f.rec.t, &f.rec.tr),
                     SIM_OK);
    ck_assert_int_eq(sim_transport_connect(f.rec.tr, &p), FW_OK);
    ck_assert(pump_until(f.loop, &f.rec.connected, 1));
    count_nodelay(hx_broker_port(f.broker), &on, &off);
    ck_assert_int_eq(on + off, 1);
    if (sim_transport_kind(f.rec.tr) == SIM_MQTT_PAHO)
        ck_assert_int_eq(on, 0);
    else
        ck_assert_int_eq(on, (nodelay ? 1 : 0));
    teardown(&f);
}

START_TEST(with_tcp_nodelay_asked_for_libmosquitto_turns_nagle_off_and_paho_cannot)
{
    nodelay_as_set(true);
}
END_TEST

START_TEST(without_tcp_nodelay_the_connection_keeps_nagle_on)
{
    nodelay_as_set(false);
}
END_TEST

static void polled_tick(struct sim_loop_target *t, uint64_t now)
{
    struct polled *p = (struct polled *)t;
    int n = sim_transport_connects_in_flight();
    (void)now;
    sim_transport_poll(p->r.tr);
    if (n > p->max_seen)
        p->max_seen = n;
}

START_TEST(the_connect_throttle_holds_connects_beyond_the_limit_and_issues_them_in_turn)
{
    struct hx_broker *b;
    struct sim_loop_opts lo;
    struct sim_loop *loop;
    struct sim_transport_opts o;
    struct polled p[3];
    int total = 0, max_seen = 0;
    uint64_t end;

    ck_assert_msg(hx_broker_start(NULL, &b) == 0, "broker: %s", hx_broker_last_error());
    sim_loop_opts_defaults(&lo);
    lo.tick_ms = 10;
    ck_assert_int_eq(sim_loop_create(&lo, &loop), SIM_OK);
    sim_transport_set_connect_limit(1);
    sim_transport_opts_defaults(&o);
    o.uri = hx_broker_uri(b);
    memset(p, 0, sizeof(p));
    for (int i = 0; i < 3; i++) {
        char id[16];
        struct fw_connect_params cp;
        snprintf(id, sizeof(id), "t-throttle-%d", i);
        cp = params(id, true);
        p[i].r.t.on_event = rec_event;
        p[i].r.t.on_tick = polled_tick;
        ck_assert_int_eq(sim_loop_attach(loop, &p[i].r.t), SIM_OK);
        ck_assert_int_eq(sim_transport_create(&o, id, loop, &p[i].r.t, &p[i].r.tr), SIM_OK);
        ck_assert_int_eq(sim_transport_connect(p[i].r.tr, &cp), FW_OK);
        ck_assert_int_le(sim_transport_connects_in_flight(), 1);
    }
    end = now_ms() + WAIT_MS;
    while (total < 3 && now_ms() < end) {
        sim_loop_run_once(loop, 20);
        total = p[0].r.connected + p[1].r.connected + p[2].r.connected;
    }
    ck_assert_int_eq(total, 3);
    for (int i = 0; i < 3; i++)
        max_seen = p[i].max_seen > max_seen ? p[i].max_seen : max_seen;
    ck_assert_int_le(max_seen, 1);
    ck_assert_int_eq(sim_transport_connects_in_flight(), 0);
    for (int i = 0; i < 3; i++) {
        sim_transport_destroy(p[i].r.tr);
        sim_loop_detach(loop, &p[i].r.t);
    }
    sim_transport_set_connect_limit(64);
    sim_loop_free(loop);
    hx_broker_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_transport");
    TCase *tc = tcase_create("transport");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, failure_words_cover_each_connack_code_and_unknown_codes);
    tcase_add_test(tc, failure_words_end_with_their_whole_advice);
    tcase_add_test(tc, tls_failure_words_name_what_openssl_said);
    tcase_add_test(tc, mqtt311_publish_reports_its_token_on_puback_and_a_subscribed_message_arrives);
    tcase_add_test(tc, mqtt5_publish_reports_its_token_on_puback_and_a_subscribed_message_arrives);
    tcase_add_test(tc, mqtt311_the_suback_reports_what_mosquitto_grants_even_for_a_filter_its_acl_denies);
    tcase_add_test(tc, mqtt5_the_suback_reports_what_mosquitto_grants_even_for_a_filter_its_acl_denies);
    tcase_add_test(tc, mqtt311_persistent_session_is_present_on_reconnect_and_clean_session_is_not);
    tcase_add_test(tc, mqtt5_session_expiry_keeps_the_session_for_a_reconnect_and_clean_start_drops_it);
    tcase_add_test(tc, mqtt311_refused_password_is_described_with_the_connack_code_and_without_the_password);
    tcase_add_test(tc, mqtt5_refused_password_is_described_with_the_reason_code_and_without_the_password);
    tcase_add_test(tc, an_unreachable_broker_is_described_with_its_uri_and_what_to_check);
    tcase_add_test(tc, mqtt311_a_killed_broker_is_one_connection_loss_in_words_and_reconnect_works);
    tcase_add_test(tc, mqtt5_a_killed_broker_is_one_connection_loss_in_words_and_reconnect_works);
    tcase_add_test(tc, the_connect_throttle_holds_connects_beyond_the_limit_and_issues_them_in_turn);
    tcase_add_test(tc, a_power_cut_sends_the_will_on_libmosquitto_and_a_disconnect_on_paho);
    tcase_add_test(tc, with_tcp_nodelay_asked_for_libmosquitto_turns_nagle_off_and_paho_cannot);
    tcase_add_test(tc, without_tcp_nodelay_the_connection_keeps_nagle_on);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
