/*
 * test_mqtt.c - the MQTT edge (sim/mqtt.h) against a real mosquitto (hx_broker), run once per
 * implementation linked (kinds[]): connect and sessions, refusals with their codes and
 * words, publish / subscribe / messages, a publish from inside a handler, the Will on a
 * power cut, keep-alive, 2,000 clients on one io loop, and source (bind) addresses.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hx/broker.h"
#include "sim/clock.h"
#include "sim/err.h"
#include "sim/loop.h"
#include "sim/mqtt.h"

/* The kinds whose implementation is linked; add SIM_MQTT_PAHO when it lands. */
static const enum sim_mqtt_kind kinds[] = { SIM_MQTT_MOSQUITTO };
#define N_KINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))
#define WAIT_MS 15000

/* ------------------------------------------------------------------ a recorder */

struct rec {
    pthread_mutex_t mu;
    atomic_int connected, failed, lost, disconnected, published, subscribed, messages;
    atomic_bool session_present;
    int fail_code, pub_mid, pub_code, sub_mid, sub_n, sub_codes[8];
    char words[SIM_MQTT_WORDS_MAX];
    char topic[128], payload[256];
    int qos;
    bool retain;
    const char *echo_topic;       /* publish a reply from inside the message handler */
    struct sim_mqtt *client;
};

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
}

static void h_connected(void *ctx, bool sp)
{
    struct rec *r = ctx;
    atomic_store(&r->session_present, sp);
    atomic_fetch_add(&r->connected, 1);
}

static void h_failed(void *ctx, int code, const char *words)
{
    struct rec *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->fail_code = code;
    snprintf(r->words, sizeof(r->words), "%s", words);
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->failed, 1);
}

static void h_lost(void *ctx, const char *words)
{
    struct rec *r = ctx;
    pthread_mutex_lock(&r->mu);
    snprintf(r->words, sizeof(r->words), "%s", words);
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->lost, 1);
}

static void h_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct rec *r = ctx;
    pthread_mutex_lock(&r->mu);
    snprintf(r->topic, sizeof(r->topic), "%s", m->topic);
    snprintf(r->payload, sizeof(r->payload), "%.*s", (int)m->len, (const char *)m->payload);
    r->qos = m->qos;
    r->retain = m->retain;
    pthread_mutex_unlock(&r->mu);
    if (r->echo_topic)
        sim_mqtt_publish(r->client, r->echo_topic, "echo", 4, 1, false, NULL);
    atomic_fetch_add(&r->messages, 1);
}

static void h_published(void *ctx, int mid, int code)
{
    struct rec *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->pub_mid = mid;
    r->pub_code = code;
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->published, 1);
}

static void h_subscribed(void *ctx, int mid, int n, const int *codes)
{
    struct rec *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->sub_mid = mid;
    r->sub_n = n;
    for (int i = 0; i < n && i < 8; i++)
        r->sub_codes[i] = codes[i];
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->subscribed, 1);
}

static void h_disconnected(void *ctx)
{
    atomic_fetch_add(&((struct rec *)ctx)->disconnected, 1);
}

static const struct sim_mqtt_handlers handlers = {
    h_connected, h_failed, h_lost, h_message, h_published, h_subscribed, h_disconnected,
};

static bool wait_for(atomic_int *v, int n, int ms)
{
    uint64_t end = sim_clock_ms() + (uint64_t)ms;
    while (atomic_load(v) < n && sim_clock_ms() < end)
        usleep(2000);
    return atomic_load(v) >= n;
}

/* ------------------------------------------------------------------ fixture */

static struct hx_broker *broker_start(const struct hx_broker_opts *bo)
{
    struct hx_broker_opts def = { 0 };
    struct hx_broker *b = NULL;

    ck_assert_msg(hx_broker_start(bo ? bo : &def, &b) == 0, "broker: %s",
                  hx_broker_last_error());
    return b;
}

static struct sim_mqtt *client(enum sim_mqtt_kind kind, const char *uri, const char *id,
                               int version, struct rec *r, const char *user, const char *pw)
{
    struct sim_mqtt_opts o;
    struct sim_mqtt *c = NULL;

    sim_mqtt_opts_defaults(&o);
    o.kind = kind;
    o.uri = uri;
    o.client_id = id;
    o.mqtt_version = version;
    o.username = user;
    o.password = pw;
    o.connect_timeout_s = 5;
    ck_assert_int_eq(sim_mqtt_create(&o, &handlers, r, &c), 0);
    r->client = c;
    return c;
}

static void connect_ok(struct sim_mqtt *c, struct rec *r, bool clean, int keepalive)
{
    struct sim_mqtt_connect_params p = { keepalive, clean, NULL };
    int before = atomic_load(&r->connected);

    ck_assert_int_eq(sim_mqtt_connect(c, &p), 0);
    ck_assert_msg(wait_for(&r->connected, before + 1, WAIT_MS), "no connect: %s", r->words);
    ck_assert(sim_mqtt_is_connected(c));
}

static void disconnect_ok(struct sim_mqtt *c, struct rec *r)
{
    int before = atomic_load(&r->disconnected);

    sim_mqtt_disconnect(c);
    ck_assert(wait_for(&r->disconnected, before + 1, WAIT_MS));
    ck_assert(!sim_mqtt_is_connected(c));
}

/* ------------------------------------------------------------------ tests */

START_TEST(a_client_connects_and_reports_whether_its_session_was_kept)
{
    struct hx_broker *b = broker_start(NULL);

    for (int v = 3; v <= 5; v += 2) {
        struct rec r;
        char id[32];
        rec_init(&r);
        snprintf(id, sizeof(id), "sess-%d", v);
        struct sim_mqtt *c = client(kinds[_i], hx_broker_uri(b), id, v, &r, NULL, NULL);
        ck_assert_int_eq(sim_mqtt_kind_of(c), kinds[_i]);
        ck_assert_int_eq(sim_mqtt_version(c), v);
        connect_ok(c, &r, true, 30);
        ck_assert(!atomic_load(&r.session_present));
        disconnect_ok(c, &r);
        connect_ok(c, &r, false, 30); /* a new persistent session */
        ck_assert(!atomic_load(&r.session_present));
        disconnect_ok(c, &r);
        connect_ok(c, &r, false, 30); /* the stored one */
        ck_assert_msg(atomic_load(&r.session_present), "MQTT %d: no session present", v);
        disconnect_ok(c, &r);
        sim_mqtt_destroy(c);
    }
    hx_broker_free(b);
}
END_TEST

/* A program started meanwhile (a broker, a hook: fork + exec) inherits none of the
   client's sockets: it would keep the connection up after the client closed it, and keep
   the socket's epoll registration alive, so its events would reach a freed client. */
static int sockets_a_started_program_holds(void)
{
    char line[512];
    int sockets = 0;
    FILE *ls = popen("ls -l /proc/self/fd/", "r");

    ck_assert_ptr_nonnull(ls);
    while (fgets(line, sizeof line, ls))
        sockets += strstr(line, "socket:") != NULL;
    ck_assert_int_eq(pclose(ls), 0);
    return sockets;
}

START_TEST(a_program_started_while_connected_holds_none_of_its_sockets)
{
    struct hx_broker *b = broker_start(NULL);
    struct rec r;

    rec_init(&r);
    struct sim_mqtt *c = client(kinds[_i], hx_broker_uri(b), "cloexec", 3, &r, NULL, NULL);
    /* libmosquitto 2.0.11's wake-up socket pair (no option turns it off, none shows its
       descriptors) is there before the connect: only the connection's socket counts. */
    int before = sockets_a_started_program_holds();
    connect_ok(c, &r, true, 30);
    int after = sockets_a_started_program_holds();
    ck_assert_msg(after == before, "the started program holds %d socket(s) more after the "
                  "connect", after - before);
    disconnect_ok(c, &r);
    sim_mqtt_destroy(c);
    hx_broker_free(b);
}
END_TEST

START_TEST(a_wrong_port_fails_with_a_negative_code_and_words_naming_the_uri)
{
    struct rec r;
    struct sim_mqtt_connect_params p = { 30, true, NULL };
    struct sim_mqtt *c;

    rec_init(&r);
    c = client(kinds[_i], "tcp://127.0.0.1:1", "wrong-port", 3, &r, NULL, NULL);
    sim_mqtt_connect(c, &p);
    ck_assert(wait_for(&r.failed, 1, WAIT_MS));
    ck_assert_int_lt(r.fail_code, 0);
    ck_assert_msg(strstr(r.words, "tcp://127.0.0.1:1"), "%s", r.words);
    ck_assert(!sim_mqtt_is_connected(c));
    sim_mqtt_destroy(c);
}
END_TEST

START_TEST(a_refused_password_gives_the_connack_code_and_words)
{
    static const struct hx_broker_user users[] = { { "dev", "pw" } };
    struct hx_broker_opts bo = { 0 };
    struct hx_broker *b;

    bo.users = users;
    bo.n_users = 1;
    b = broker_start(&bo);
    for (int v = 3; v <= 5; v += 2) {
        struct rec r;
        struct sim_mqtt_connect_params p = { 30, true, NULL };
        rec_init(&r);
        struct sim_mqtt *c = client(kinds[_i], hx_broker_uri(b), "badpw", v, &r, "dev", "nope");
        ck_assert_int_eq(sim_mqtt_connect(c, &p), 0);
        ck_assert(wait_for(&r.failed, 1, WAIT_MS));
        if (v == 3)
            ck_assert_int_eq(r.fail_code, 5);
        else
            ck_assert_msg(r.fail_code == 0x86 || r.fail_code == 0x87, "code 0x%x", r.fail_code);
        ck_assert_msg(strstr(r.words, "password") && !strstr(r.words, "nope"), "%s", r.words);
        usleep(200 * 1000);
        ck_assert_int_eq(atomic_load(&r.failed), 1); /* once, not again at the close */
        sim_mqtt_destroy(c);
    }
    hx_broker_free(b);
}
END_TEST

START_TEST(publishes_subscribes_and_messages_carry_their_codes_and_fields)
{
    struct hx_broker *b = broker_start(NULL);
    struct rec rs, rp;
    const char *filters[] = { "t/a/#", "t/b" };
    const int qos[] = { 1, 1 };
    int mid = 0;

    rec_init(&rs);
    rec_init(&rp);
    struct sim_mqtt *s = client(kinds[_i], hx_broker_uri(b), "sub", 3, &rs, NULL, NULL);
    struct sim_mqtt *p = client(kinds[_i], hx_broker_uri(b), "pub", 3, &rp, NULL, NULL);
    connect_ok(s, &rs, true, 30);
    connect_ok(p, &rp, true, 30);
    ck_assert_int_eq(sim_mqtt_subscribe(s, 2, filters, qos, &mid), 0);
    ck_assert(wait_for(&rs.subscribed, 1, WAIT_MS));
    ck_assert_int_eq(rs.sub_mid, mid);
    ck_assert_int_eq(rs.sub_n, 2);
    ck_assert_int_eq(rs.sub_codes[0], 1);
    ck_assert_int_eq(rs.sub_codes[1], 1);
    ck_assert_int_eq(sim_mqtt_publish(p, "t/a/x", "hello", 5, 1, true, &mid), 0);
    ck_assert_int_gt(mid, 0);
    ck_assert(wait_for(&rp.published, 1, WAIT_MS));
    ck_assert_int_eq(rp.pub_mid, mid);
    ck_assert_int_eq(rp.pub_code, 0);
    ck_assert(wait_for(&rs.messages, 1, WAIT_MS));
    ck_assert_str_eq(rs.topic, "t/a/x");
    ck_assert_str_eq(rs.payload, "hello");
    ck_assert_int_eq(rs.qos, 1);
    ck_assert(!rs.retain); /* live delivery */
    ck_assert_int_eq(sim_mqtt_publish(p, "t/a/x", "", 0, 1, true, NULL), 0); /* clear it */
    ck_assert(wait_for(&rp.published, 2, WAIT_MS));
    sim_mqtt_destroy(s);
    sim_mqtt_destroy(p);
    hx_broker_free(b);
}
END_TEST

START_TEST(a_retained_message_arrives_with_its_retain_flag)
{
    struct hx_broker *b = broker_start(NULL);
    struct rec rs, rp;
    const char *filters[] = { "r/x" };
    const int qos[] = { 0 };

    rec_init(&rs);
    rec_init(&rp);
    struct sim_mqtt *p = client(kinds[_i], hx_broker_uri(b), "rpub", 5, &rp, NULL, NULL);
    connect_ok(p, &rp, true, 30);
    ck_assert_int_eq(sim_mqtt_publish(p, "r/x", "kept", 4, 1, true, NULL), 0);
    ck_assert(wait_for(&rp.published, 1, WAIT_MS));
    struct sim_mqtt *s = client(kinds[_i], hx_broker_uri(b), "rsub", 5, &rs, NULL, NULL);
    connect_ok(s, &rs, true, 30);
    ck_assert_int_eq(sim_mqtt_subscribe(s, 1, filters, qos, NULL), 0);
    ck_assert(wait_for(&rs.messages, 1, WAIT_MS));
    ck_assert_str_eq(rs.payload, "kept");
    ck_assert(rs.retain);
    ck_assert_int_eq(rs.qos, 0);
    sim_mqtt_destroy(s);
    sim_mqtt_destroy(p);
    hx_broker_free(b);
}
END_TEST

START_TEST(a_publish_made_inside_the_message_handler_goes_out)
{
    struct hx_broker *b = broker_start(NULL);
    struct rec re, rw;
    const char *f_in[] = { "ping" }, *f_out[] = { "pong" };
    const int qos[] = { 1 };

    rec_init(&re);
    rec_init(&rw);
    re.echo_topic = "pong";
    struct sim_mqtt *e = client(kinds[_i], hx_broker_uri(b), "echo", 3, &re, NULL, NULL);
    struct sim_mqtt *w = client(kinds[_i], hx_broker_uri(b), "watch", 3, &rw, NULL, NULL);
    connect_ok(e, &re, true, 30);
    connect_ok(w, &rw, true, 30);
    ck_assert_int_eq(sim_mqtt_subscribe(e, 1, f_in, qos, NULL), 0);
    ck_assert_int_eq(sim_mqtt_subscribe(w, 1, f_out, qos, NULL), 0);
    ck_assert(wait_for(&re.subscribed, 1, WAIT_MS) && wait_for(&rw.subscribed, 1, WAIT_MS));
    ck_assert_int_eq(sim_mqtt_publish(w, "ping", "x", 1, 1, false, NULL), 0);
    ck_assert(wait_for(&rw.messages, 1, WAIT_MS));
    ck_assert_str_eq(rw.topic, "pong");
    ck_assert(wait_for(&re.published, 1, WAIT_MS)); /* its PUBACK came back too */
    sim_mqtt_destroy(e);
    sim_mqtt_destroy(w);
    hx_broker_free(b);
}
END_TEST

START_TEST(the_will_is_published_after_a_power_cut_and_not_after_a_disconnect)
{
    struct hx_broker *b = broker_start(NULL);
    struct sim_mqtt_will will = { "will/dev", "gone", 4, 1, false };
    struct sim_mqtt_connect_params p = { 30, true, &will };
    const char *filters[] = { "will/#" };
    const int qos[] = { 1 };
    struct rec rw, rd;

    rec_init(&rw);
    rec_init(&rd);
    struct sim_mqtt *w = client(kinds[_i], hx_broker_uri(b), "willwatch", 3, &rw, NULL, NULL);
    connect_ok(w, &rw, true, 30);
    ck_assert_int_eq(sim_mqtt_subscribe(w, 1, filters, qos, NULL), 0);
    ck_assert(wait_for(&rw.subscribed, 1, WAIT_MS));

    struct sim_mqtt *d = client(kinds[_i], hx_broker_uri(b), "willdev", 3, &rd, NULL, NULL);
    ck_assert_int_eq(sim_mqtt_connect(d, &p), 0);
    ck_assert(wait_for(&rd.connected, 1, WAIT_MS));
    disconnect_ok(d, &rd);
    usleep(500 * 1000);
    ck_assert_int_eq(atomic_load(&rw.messages), 0);
    ck_assert_int_eq(sim_mqtt_connect(d, &p), 0);
    ck_assert(wait_for(&rd.connected, 2, WAIT_MS));
    sim_mqtt_destroy(d);
    ck_assert(wait_for(&rw.messages, 1, WAIT_MS));
    ck_assert_str_eq(rw.topic, "will/dev");
    ck_assert_str_eq(rw.payload, "gone");
    sim_mqtt_destroy(w);
    hx_broker_free(b);
}
END_TEST

/* libmosquitto refuses a keep-alive under 5 s: 5 s, and 9 s of silence (the broker drops
   a silent client after 1.5 keep-alives). */
START_TEST(keep_alive_holds_a_silent_connection)
{
    struct hx_broker *b = broker_start(NULL);
    struct rec r;

    rec_init(&r);
    struct sim_mqtt *c = client(kinds[_i], hx_broker_uri(b), "silent", 3, &r, NULL, NULL);
    connect_ok(c, &r, true, 5);
    sleep(9);
    ck_assert_int_eq(atomic_load(&r.lost), 0);
    ck_assert(sim_mqtt_is_connected(c));
    sim_mqtt_destroy(c);
    hx_broker_free(b);
}
END_TEST

START_TEST(two_thousand_clients_on_one_io_loop_connect)
{
    enum { N = 2000, WINDOW = 64 };
    struct hx_broker *b = broker_start(NULL);
    struct sim_loop *io;
    struct sim_loop_opts lo;
    struct sim_mqtt **cs = calloc(N, sizeof(*cs));
    struct rec *r = calloc(1, sizeof(*r));
    struct sim_mqtt_connect_params p = { 60, true, NULL };
    struct sim_mqtt_opts o;
    uint64_t t0;
    long rss0, rss1;
    struct rusage ru;

    rec_init(r);
    sim_loop_opts_defaults(&lo);
    ck_assert_int_eq(sim_loop_create(&lo, &io), 0);
    ck_assert_int_eq(sim_loop_start_thread(io), 0);
    getrusage(RUSAGE_SELF, &ru);
    rss0 = ru.ru_maxrss;
    t0 = sim_clock_ms();
    for (int i = 0; i < N; i++) {
        char id[32];
        while (i - atomic_load(&r->connected) - atomic_load(&r->failed) >= WINDOW)
            usleep(200);
        snprintf(id, sizeof(id), "many-%d", i);
        sim_mqtt_opts_defaults(&o);
        o.kind = kinds[_i];
        o.uri = hx_broker_uri(b);
        o.client_id = id;
        o.io = io;
        ck_assert_int_eq(sim_mqtt_create(&o, &handlers, r, &cs[i]), 0);
        ck_assert_int_eq(sim_mqtt_connect(cs[i], &p), 0);
    }
    ck_assert_msg(wait_for(&r->connected, N, 60000), "%d of %d connected, %d failed: %s",
                  atomic_load(&r->connected), N, atomic_load(&r->failed), r->words);
    getrusage(RUSAGE_SELF, &ru);
    rss1 = ru.ru_maxrss;
    printf("%s: %d clients connected in %.2f s, max RSS grew %ld KB (%.1f KB a client)\n",
           sim_mqtt_kind_name(kinds[_i]), N, (double)(sim_clock_ms() - t0) / 1000.0,
           rss1 - rss0, (double)(rss1 - rss0) / N);
    ck_assert_int_eq(atomic_load(&r->failed), 0);
    for (int i = 0; i < N; i++)
        sim_mqtt_destroy(cs[i]);
    sim_loop_stop(io);
    sim_loop_free(io);
    free(cs);
    free(r);
    hx_broker_free(b);
}
END_TEST

START_TEST(a_lost_connection_is_reported_with_what_was_outstanding_and_the_client_reconnects)
{
    struct hx_broker_opts bo = { 0 };
    struct hx_broker *b;
    struct rec r;

    bo.port = hx_free_port();
    b = broker_start(&bo);
    rec_init(&r);
    struct sim_mqtt *c = client(kinds[_i], hx_broker_uri(b), "lossy", 3, &r, NULL, NULL);
    connect_ok(c, &r, true, 30);
    /* A stopped broker answers nothing: the publish and the subscribe stay outstanding. */
    const char *filters[] = { "x/#" };
    const int qos[] = { 1 };
    int pmid = 0, smid = 0;
    ck_assert_int_eq(kill(hx_broker_pid(b), SIGSTOP), 0);
    ck_assert_int_eq(sim_mqtt_publish(c, "x/y", "z", 1, 1, false, &pmid), 0);
    ck_assert_int_eq(sim_mqtt_subscribe(c, 1, filters, qos, &smid), 0);
    usleep(100 * 1000);
    ck_assert_int_eq(hx_broker_kill(b), 0);
    ck_assert(wait_for(&r.lost, 1, WAIT_MS));
    ck_assert(wait_for(&r.published, 1, WAIT_MS));
    ck_assert_int_eq(r.pub_mid, pmid);
    ck_assert_int_lt(r.pub_code, 0);
    ck_assert(wait_for(&r.subscribed, 1, WAIT_MS));
    ck_assert_int_eq(r.sub_mid, smid);
    ck_assert_int_lt(r.sub_codes[0], 0);
    ck_assert_msg(strstr(r.words, hx_broker_uri(b)), "%s", r.words);
    ck_assert(!sim_mqtt_is_connected(c));
    ck_assert_int_eq(atomic_load(&r.disconnected), 0);
    ck_assert_int_eq(hx_broker_restart(b), 0);
    connect_ok(c, &r, true, 30);
    sim_mqtt_destroy(c);
    hx_broker_free(b);
}
END_TEST

/* ci/make-pki.sh into a fresh folder; returns the folder (static). */
static const char *make_pki(void)
{
    static char dir[64];
    char cmd[512];

    snprintf(dir, sizeof(dir), "/tmp/sim-mqtt-pki-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "bash '%s/ci/make-pki.sh' '%s' 1 >/dev/null", SCANSIM_SOURCE_DIR,
             dir);
    ck_assert_int_eq(system(cmd), 0);
    return dir;
}

static struct sim_mqtt *tls_client(enum sim_mqtt_kind kind, const char *uri, const char *id, const char *cafile,
                                   bool insecure, struct rec *r)
{
    struct sim_mqtt_opts o;
    struct sim_mqtt *c = NULL;

    sim_mqtt_opts_defaults(&o);
    o.kind = kind;
    o.uri = uri;
    o.client_id = id;
    o.cafile = cafile;
    o.insecure = insecure;
    o.connect_timeout_s = 5;
    ck_assert_int_eq(sim_mqtt_create(&o, &handlers, r, &c), 0);
    return c;
}

START_TEST(tls_connects_with_the_ca_refuses_an_untrusted_broker_and_insecure_skips_the_check)
{
    const char *dir = make_pki();
    char ca[128], crt[128], key[128];
    struct hx_broker_opts bo = { 0 };
    struct sim_mqtt_connect_params p = { 30, true, NULL };
    struct rec r1, r2, r3;
    struct hx_broker *b;

    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(crt, sizeof(crt), "%s/server.crt", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    bo.cafile = ca;
    bo.certfile = crt;
    bo.keyfile = key;
    b = broker_start(&bo);
    ck_assert(sim_mqtt_uri_is_tls(hx_broker_uri(b)));
    rec_init(&r1);
    rec_init(&r2);
    rec_init(&r3);
    struct sim_mqtt *good = tls_client(kinds[_i], hx_broker_uri(b), "tls-good", ca, false, &r1);
    struct sim_mqtt *bad = tls_client(kinds[_i], hx_broker_uri(b), "tls-bad", NULL, false, &r2);
    struct sim_mqtt *ins = tls_client(kinds[_i], hx_broker_uri(b), "tls-ins", NULL, true, &r3);
    connect_ok(good, &r1, true, 30);
    sim_mqtt_connect(bad, &p);
    ck_assert(wait_for(&r2.failed, 1, WAIT_MS));
    ck_assert_int_lt(r2.fail_code, 0);
    ck_assert_msg(strstr(r2.words, "certificate verify failed"), "%s", r2.words);
    connect_ok(ins, &r3, true, 30);
    sim_mqtt_destroy(good);
    sim_mqtt_destroy(bad);
    sim_mqtt_destroy(ins);
    hx_broker_free(b);
}
END_TEST

START_TEST(stats_count_the_clients_of_a_kind)
{
    struct sim_mqtt_stats st0, st1;
    struct rec r;

    rec_init(&r);
    sim_mqtt_stats(kinds[_i], &st0);
    struct sim_mqtt *c = client(kinds[_i], "tcp://127.0.0.1:1", "counted", 3, &r, NULL, NULL);
    sim_mqtt_stats(kinds[_i], &st1);
    ck_assert_int_eq(st1.clients, st0.clients + 1);
    ck_assert_int_ge(st1.fds_per_client, 1);
    sim_mqtt_destroy(c);
    sim_mqtt_stats(kinds[_i], &st1);
    ck_assert_int_eq(st1.clients, st0.clients);
}
END_TEST

/* A listener that never answers: the kernel completes the TCP handshake, no CONNACK comes. */
START_TEST(a_broker_that_never_answers_fails_the_attempt_at_the_connect_time_out)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    struct sim_mqtt_connect_params p = { 30, true, NULL };
    struct sim_mqtt_opts o;
    struct sim_mqtt *c = NULL;
    char uri[64];
    struct rec r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint64_t t0;

    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    rec_init(&r);
    sim_mqtt_opts_defaults(&o);
    o.kind = kinds[_i];
    o.uri = uri;
    o.client_id = "silent-broker";
    o.connect_timeout_s = 1;
    ck_assert_int_eq(sim_mqtt_create(&o, &handlers, &r, &c), 0);
    t0 = sim_clock_ms();
    ck_assert_int_eq(sim_mqtt_connect(c, &p), 0);
    ck_assert(wait_for(&r.failed, 1, WAIT_MS));
    ck_assert_int_lt(r.fail_code, 0);
    ck_assert_int_lt(sim_clock_ms() - t0, 4000);
    ck_assert_msg(strstr(r.words, uri), "%s", r.words);
    ck_assert_int_eq(sim_mqtt_connect(c, &p), 0); /* may try again */
    sim_mqtt_destroy(c);
    close(fd);
}
END_TEST

/* --bind: the connection leaves from the address given (all of 127/8 is loopback). */
START_TEST(a_bind_address_is_the_connections_source_address)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sockaddr_in peer;
    socklen_t alen = sizeof(a), plen = sizeof(peer);
    struct sim_mqtt_connect_params p = { 30, true, NULL };
    struct sim_mqtt_opts o;
    struct sim_mqtt *c = NULL;
    char uri[64], from[INET_ADDRSTRLEN];
    struct rec r;
    int fd = socket(AF_INET, SOCK_STREAM, 0), conn;

    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    rec_init(&r);
    sim_mqtt_opts_defaults(&o);
    o.kind = kinds[_i];
    o.uri = uri;
    o.client_id = "bound";
    o.bind_address = "127.0.0.9";
    ck_assert_int_eq(sim_mqtt_create(&o, &handlers, &r, &c), 0);
    ck_assert_int_eq(sim_mqtt_connect(c, &p), 0);
    conn = accept(fd, (struct sockaddr *)&peer, &plen);
    ck_assert_int_ge(conn, 0);
    ck_assert_str_eq(inet_ntop(AF_INET, &peer.sin_addr, from, sizeof from), "127.0.0.9");
    sim_mqtt_destroy(c);
    close(conn);
    close(fd);
}
END_TEST

/* An address this machine does not have: the attempt fails with words naming it. */
START_TEST(a_bind_address_of_another_machine_fails_the_connect_naming_it)
{
    struct sim_mqtt_connect_params p = { 30, true, NULL };
    struct sim_mqtt_opts o;
    struct sim_mqtt *c = NULL;
    struct rec r;

    rec_init(&r);
    sim_mqtt_opts_defaults(&o);
    o.kind = kinds[_i];
    o.uri = "tcp://127.0.0.1:1";
    o.client_id = "bound-elsewhere";
    o.bind_address = "192.0.2.1"; /* TEST-NET-1 */
    ck_assert_int_eq(sim_mqtt_create(&o, &handlers, &r, &c), 0);
    sim_mqtt_connect(c, &p);
    ck_assert(wait_for(&r.failed, 1, WAIT_MS));
    ck_assert_int_lt(r.fail_code, 0);
    ck_assert_msg(strstr(r.words, "the source address 192.0.2.1 is not one of this machine's"),
                  "%s", r.words);
    sim_mqtt_destroy(c);
}
END_TEST

/* Paho MQTTAsync has no source-address option: a client asking for one is refused. */
START_TEST(paho_refuses_a_bind_address)
{
    struct sim_mqtt_opts o;
    struct sim_mqtt *c = NULL;
    struct rec r;

    rec_init(&r);
    sim_mqtt_opts_defaults(&o);
    o.kind = SIM_MQTT_PAHO;
    o.uri = "tcp://127.0.0.1:1";
    o.client_id = "paho-bound";
    o.bind_address = "127.0.0.2";
    ck_assert_int_eq(sim_mqtt_create(&o, &handlers, &r, &c), SIM_ERR_INVAL);
    ck_assert_ptr_null(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_mqtt");
    TCase *tc = tcase_create("mqtt");
    SRunner *sr;
    struct rlimit rl;
    int failed;

    /* 2,000 clients hold 3 fds each here, and the broker (a child) as many again. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, a_client_connects_and_reports_whether_its_session_was_kept, 0, N_KINDS);
    tcase_add_loop_test(tc, a_program_started_while_connected_holds_none_of_its_sockets, 0, N_KINDS);
    tcase_add_loop_test(tc, a_wrong_port_fails_with_a_negative_code_and_words_naming_the_uri, 0, N_KINDS);
    tcase_add_loop_test(tc, a_refused_password_gives_the_connack_code_and_words, 0, N_KINDS);
    tcase_add_loop_test(tc, publishes_subscribes_and_messages_carry_their_codes_and_fields, 0, N_KINDS);
    tcase_add_loop_test(tc, a_retained_message_arrives_with_its_retain_flag, 0, N_KINDS);
    tcase_add_loop_test(tc, a_publish_made_inside_the_message_handler_goes_out, 0, N_KINDS);
    tcase_add_loop_test(tc, the_will_is_published_after_a_power_cut_and_not_after_a_disconnect, 0, N_KINDS);
    tcase_add_loop_test(tc, keep_alive_holds_a_silent_connection, 0, N_KINDS);
    tcase_add_loop_test(tc, a_lost_connection_is_reported_with_what_was_outstanding_and_the_client_reconnects, 0, N_KINDS);
    tcase_add_loop_test(tc, tls_connects_with_the_ca_refuses_an_untrusted_broker_and_insecure_skips_the_check, 0, N_KINDS);
    tcase_add_loop_test(tc, stats_count_the_clients_of_a_kind, 0, N_KINDS);
    tcase_add_loop_test(tc, a_broker_that_never_answers_fails_the_attempt_at_the_connect_time_out, 0, N_KINDS);
    tcase_add_loop_test(tc, two_thousand_clients_on_one_io_loop_connect, 0, N_KINDS);
    tcase_add_loop_test(tc, a_bind_address_is_the_connections_source_address, 0, N_KINDS);
    tcase_add_loop_test(tc, a_bind_address_of_another_machine_fails_the_connect_naming_it, 0, N_KINDS);
    tcase_add_test(tc, paho_refuses_a_bind_address);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
