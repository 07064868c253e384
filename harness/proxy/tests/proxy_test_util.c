/*
 * proxy_test_util.c - shared helpers of the proxy's broker tests (see proxy_test_util.h).
 */
#include "proxy_test_util.h"
#include "sim/clock.h"

#include <dirent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t t_now_ms(void)
{
    return (int64_t)sim_clock_ms();
}

bool t_wait(bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t end = t_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (t_now_ms() > end)
            return false;
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTClient_message *m)
{
    struct tclient *t = ctx;
    pthread_mutex_lock(&t->mu);
    if (t->n_msgs < TMSG_MAX) {
        struct tmsg *x = &t->msgs[t->n_msgs++];
        size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
        size_t pl = (size_t)m->payloadlen;
        if (tl >= sizeof(x->topic))
            tl = sizeof(x->topic) - 1;
        memcpy(x->topic, topic, tl);
        x->topic[tl] = '\0';
        x->len = pl;
        if (pl >= sizeof(x->payload))
            pl = sizeof(x->payload) - 1;
        memcpy(x->payload, m->payload, pl);
        x->payload[pl] = '\0';
        x->qos = m->qos;
        x->dup = m->dup;
        x->t_ms = t_now_ms();
    }
    pthread_mutex_unlock(&t->mu);
    MQTTClient_freeMessage(&m);
    MQTTClient_free(topic);
    return 1;
}

static void on_lost(void *ctx, char *cause)
{
    struct tclient *t = ctx;
    (void)cause;
    pthread_mutex_lock(&t->mu);
    t->lost++;
    pthread_mutex_unlock(&t->mu);
}

int tc_reconnect(struct tclient *t, const struct tclient_opts *o)
{
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    MQTTClient_willOptions wo = MQTTClient_willOptions_initializer;

    co.cleansession = o != NULL ? o->clean : 1;
    co.keepAliveInterval = (o != NULL && o->keepalive > 0) ? o->keepalive : 30;
    co.connectTimeout = 10;
    if (o != NULL && o->will_topic != NULL) {
        wo.topicName = o->will_topic;
        wo.message = o->will_payload;
        wo.qos = 1;
        co.will = &wo;
    }
    return MQTTClient_connect(t->c, &co);
}

/* Paho's MQTTClient library, like its MQTTAsync one (sim/platform/src/mqtt_paho.c), tears
   itself down when the last client of a process is destroyed, racing with its own
   background thread; a client whose link the proxy cut is destroyed while that thread still
   runs. One idle client for the life of the test process keeps the tear-down from running. */
static pthread_once_t tc_idle_once = PTHREAD_ONCE_INIT;
static MQTTClient tc_idle;

static void tc_make_idle(void)
{
    if (MQTTClient_create(&tc_idle, "tcp://127.0.0.1:1", "proxy-test-idle",
                          MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTCLIENT_SUCCESS)
        tc_idle = NULL;
}

struct tclient *tc_connect(uint16_t port, const char *id, const struct tclient_opts *o)
{
    struct tclient *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    pthread_once(&tc_idle_once, tc_make_idle);
    pthread_mutex_init(&t->mu, NULL);
    snprintf(t->uri, sizeof(t->uri), "tcp://127.0.0.1:%u", port);
    snprintf(t->id, sizeof(t->id), "%s", id);
    if (MQTTClient_create(&t->c, t->uri, t->id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
            MQTTCLIENT_SUCCESS ||
        MQTTClient_setCallbacks(t->c, t, on_lost, on_message, NULL) != MQTTCLIENT_SUCCESS ||
        tc_reconnect(t, o) != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "client %s cannot connect to %s\n", id, t->uri);
        tc_free(t);
        return NULL;
    }
    return t;
}

int tc_subscribe(struct tclient *t, const char *topic, int qos)
{
    return MQTTClient_subscribe(t->c, topic, qos);
}

int tc_publish(struct tclient *t, const char *topic, const void *payload, int len, int qos,
               MQTTClient_deliveryToken *tok)
{
    MQTTClient_deliveryToken dt = 0;
    int rc = MQTTClient_publish(t->c, topic, len, payload, qos, 0, &dt);
    if (tok != NULL)
        *tok = dt;
    return rc;
}

int tc_count(struct tclient *t)
{
    pthread_mutex_lock(&t->mu);
    int n = t->n_msgs;
    pthread_mutex_unlock(&t->mu);
    return n;
}

struct tmsg tc_msg(struct tclient *t, int i)
{
    struct tmsg m;
    pthread_mutex_lock(&t->mu);
    m = t->msgs[i];
    pthread_mutex_unlock(&t->mu);
    return m;
}

int tc_lost(struct tclient *t)
{
    pthread_mutex_lock(&t->mu);
    int n = t->lost;
    pthread_mutex_unlock(&t->mu);
    return n;
}

struct wait_n { struct tclient *t; int n; };
static bool count_reached(void *arg)
{
    struct wait_n *w = arg;
    return tc_count(w->t) >= w->n;
}
static bool lost_reached(void *arg)
{
    struct wait_n *w = arg;
    return tc_lost(w->t) >= w->n;
}

bool tc_wait_count(struct tclient *t, int n, int timeout_ms)
{
    struct wait_n w = { t, n };
    return t_wait(count_reached, &w, timeout_ms);
}

bool tc_wait_lost(struct tclient *t, int timeout_ms)
{
    struct wait_n w = { t, 1 };
    return t_wait(lost_reached, &w, timeout_ms);
}

void tc_free(struct tclient *t)
{
    if (t == NULL)
        return;
    if (t->c != NULL) {
        if (MQTTClient_isConnected(t->c))
            MQTTClient_disconnect(t->c, 1000);
        MQTTClient_destroy(&t->c);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

struct hx_proxy_counters t_counters(struct hx_proxy *p)
{
    struct hx_proxy_counters c;
    hx_proxy_counters(p, &c);
    return c;
}

struct wait_c { struct hx_proxy *p; size_t off; uint64_t min; };
static bool counter_reached(void *arg)
{
    struct wait_c *w = arg;
    struct hx_proxy_counters c = t_counters(w->p);
    uint64_t v;
    memcpy(&v, (const char *)&c + w->off, sizeof(v));
    return v >= w->min;
}

bool t_wait_counter(struct hx_proxy *p, size_t offset, uint64_t min, int timeout_ms)
{
    struct wait_c w = { p, offset, min };
    return t_wait(counter_reached, &w, timeout_ms);
}

int t_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 2;
}

long t_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}
