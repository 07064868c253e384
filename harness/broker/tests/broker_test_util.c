/*
 * broker_test_util.c - synchronous MQTT clients on the MQTT edge for the broker suites
 * (broker_test_util.h). The edge is asynchronous: each client keeps what its handlers
 * report (the connect's outcome, the last SUBACK or PUBACK, an inbox of messages) and the
 * calls here wait for it.
 */
#include "broker_test_util.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/mqtt.h"
#include "sim/clock.h"

#define BCLIENT_INBOX 256

struct bclient {
    struct sim_mqtt *c;
    pthread_mutex_t mu;     /* everything below */
    int state;              /* 0 connecting, 1 connected, 2 failed */
    int fail_code;          /* connect_failed's code */
    int answers;            /* SUBACKs and PUBACKs seen */
    int answer_code;        /* the last one's code (granted QoS, 0, or a refusal) */
    int n, head;            /* inbox: n messages from head (a ring) */
    struct { char topic[128]; char text[512]; } inbox[BCLIENT_INBOX];
};

int64_t now_ms(void)
{
    return (int64_t)sim_clock_ms();
}

static void nap_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ handlers (edge thread) */

static void on_connected(void *ctx, bool session_present)
{
    struct bclient *k = ctx;
    (void)session_present;
    pthread_mutex_lock(&k->mu);
    k->state = 1;
    pthread_mutex_unlock(&k->mu);
}

static void on_connect_failed(void *ctx, int code, const char *words)
{
    struct bclient *k = ctx;
    fprintf(stderr, "test client: %s\n", words);
    pthread_mutex_lock(&k->mu);
    k->state = 2;
    k->fail_code = code ? code : SIM_ERR_MQTT;
    pthread_mutex_unlock(&k->mu);
}

static void on_answer(struct bclient *k, int code)
{
    pthread_mutex_lock(&k->mu);
    k->answers++;
    k->answer_code = code;
    pthread_mutex_unlock(&k->mu);
}

static void on_published(void *ctx, int mid, int code)
{
    (void)mid;
    on_answer(ctx, code);
}

static void on_subscribed(void *ctx, int mid, int n, const int *codes)
{
    (void)mid;
    on_answer(ctx, n >= 1 ? codes[0] : 0x80);
}

static void on_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct bclient *k = ctx;
    pthread_mutex_lock(&k->mu);
    if (k->n < BCLIENT_INBOX) {
        int i = (k->head + k->n++) % BCLIENT_INBOX;
        snprintf(k->inbox[i].topic, sizeof k->inbox[i].topic, "%s", m->topic);
        snprintf(k->inbox[i].text, sizeof k->inbox[i].text, "%.*s", (int)m->len,
                 (const char *)m->payload);
    }
    pthread_mutex_unlock(&k->mu);
}

static const struct sim_mqtt_handlers bclient_handlers = {
    .connected = on_connected,
    .connect_failed = on_connect_failed,
    .message = on_message,
    .published = on_published,
    .subscribed = on_subscribed,
};

/* ------------------------------------------------------------------ calls */

static int client_state(struct bclient *k, int *fail_code)
{
    pthread_mutex_lock(&k->mu);
    int st = k->state;
    *fail_code = k->fail_code;
    pthread_mutex_unlock(&k->mu);
    return st;
}

static void client_free(struct bclient *k)
{
    sim_mqtt_destroy(k->c);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

int client_connect_as(const struct hx_broker *b, const char *id, bool clean_session,
                      const char *user, const char *pass, struct bclient **out)
{
    struct bclient *k = calloc(1, sizeof *k);
    struct sim_mqtt_opts o;
    struct sim_mqtt_connect_params cp = {.keepalive_s = 30, .clean_session = clean_session};
    int st = 0, code = 0;

    ck_assert_ptr_nonnull(k);
    pthread_mutex_init(&k->mu, NULL);
    sim_mqtt_opts_defaults(&o);
    o.uri = hx_broker_uri(b);
    o.client_id = id;
    o.username = user;
    o.password = pass;
    o.connect_timeout_s = 5;
    ck_assert_int_eq(sim_mqtt_create(&o, &bclient_handlers, k, &k->c), SIM_OK);
    sim_mqtt_connect(k->c, &cp); /* a start that fails comes to connect_failed as well */
    for (int64_t end = now_ms() + WAIT_MS; (st = client_state(k, &code)) == 0 &&
                                           now_ms() < end;)
        nap_ms(2);
    if (st != 1) {
        client_free(k);
        *out = NULL;
        return st == 2 ? code : SIM_ERR_TIMEOUT;
    }
    *out = k;
    return 0;
}

static int client_seq;

int client_connect(const struct hx_broker *b, const char *user, const char *pass,
                   struct bclient **out)
{
    char id[64];
    snprintf(id, sizeof id, "t-%d-%d", (int)getpid(), client_seq++);
    return client_connect_as(b, id, true, user, pass, out);
}

void client_close(struct bclient **c)
{
    if (!*c)
        return;
    sim_mqtt_disconnect((*c)->c); /* destroy lets the DISCONNECT finish (up to 1 s) */
    client_free(*c);
    *c = NULL;
}

/* Wait for the answer after `before` answers; its code, or SIM_ERR_TIMEOUT. */
static int client_answer(struct bclient *c, int before)
{
    for (int64_t end = now_ms() + WAIT_MS; now_ms() < end; nap_ms(2)) {
        pthread_mutex_lock(&c->mu);
        int n = c->answers, code = c->answer_code;
        pthread_mutex_unlock(&c->mu);
        if (n > before)
            return code;
    }
    return SIM_ERR_TIMEOUT;
}

int client_subscribe_granted(struct bclient *c, const char *topic, int qos, int *granted)
{
    pthread_mutex_lock(&c->mu);
    int before = c->answers;
    pthread_mutex_unlock(&c->mu);
    int rc = sim_mqtt_subscribe(c->c, 1, &topic, &qos, NULL);
    if (rc != SIM_OK)
        return rc;
    int code = client_answer(c, before);
    if (granted)
        *granted = code;
    return code >= 0 && code < 0x80 ? 0 : code;
}

int client_subscribe(struct bclient *c, const char *topic, int qos)
{
    return client_subscribe_granted(c, topic, qos, NULL);
}

void client_publish(struct bclient *c, const char *topic, const char *text, int qos,
                    bool retained)
{
    pthread_mutex_lock(&c->mu);
    int before = c->answers;
    pthread_mutex_unlock(&c->mu);
    ck_assert_int_eq(sim_mqtt_publish(c->c, topic, text, strlen(text), qos, retained, NULL),
                     SIM_OK);
    if (qos > 0)
        ck_assert_int_eq(client_answer(c, before), 0);
}

bool client_receive(struct bclient *c, int timeout_ms, char *topic, size_t tn, char *text,
                    size_t n)
{
    for (int64_t deadline = now_ms() + timeout_ms; now_ms() < deadline; nap_ms(2)) {
        pthread_mutex_lock(&c->mu);
        bool got = c->n > 0;
        if (got) {
            snprintf(topic, tn, "%s", c->inbox[c->head].topic);
            snprintf(text, n, "%s", c->inbox[c->head].text);
            c->head = (c->head + 1) % BCLIENT_INBOX;
            c->n--;
        }
        pthread_mutex_unlock(&c->mu);
        if (got)
            return true;
    }
    return false;
}

struct hx_broker *start_or_fail(const struct hx_broker_opts *o)
{
    struct hx_broker *b = NULL;
    int rc = hx_broker_start(o, &b);
    ck_assert_msg(rc == HX_OK, "hx_broker_start: %s (%s)", hx_strerror(rc),
                  hx_broker_last_error());
    ck_assert_ptr_nonnull(b);
    return b;
}

void read_retained(struct hx_broker *b, const char *topic, int timeout_ms, char *text, size_t n)
{
    struct bclient *c;
    ck_assert_int_eq(client_connect(b, NULL, NULL, &c), 0);
    ck_assert_int_eq(client_subscribe(c, topic, 1), 0);
    char t[128];
    text[0] = '\0';
    if (!client_receive(c, timeout_ms, t, sizeof t, text, n))
        text[0] = '\0';
    client_close(&c);
}

int cli_pub(const struct hx_broker *b, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 20 %s -h 127.0.0.1 -p %u -q 1 -t t -m m %s "
             ">/dev/null 2>&1", MOSQUITTO_PUB, (unsigned)hx_broker_port(b), args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
