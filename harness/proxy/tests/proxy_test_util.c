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

/* Paho (the edge's MQTTAsync implementation), whatever SCANSIM_TRANSPORT says: these tests
   measure how Paho's packet reader takes malformed input (their names say so), and their
   figures assume Paho's one file descriptor per client (libmosquitto 2.0 holds three).
   Except a client that must re-send its own unacknowledged publishes after a cut: it is
   libmosquitto's, which keeps that state always. The edge's Paho keeps it only in a kept
   handle (keep_session_state), and a kept handle's first connects after a cut fail
   (measured, Paho 1.3.12: "socket error", then a TCP connect time-out; the third attempt
   connects), where these tests reconnect once. (A client that must see the DUP flag is
   Paho's: libmosquitto does not report it.) */
void tc_opts(struct tmq_opts *to, char *uri, uint16_t port, const char *id,
             const struct tclient_opts *o, struct sim_mqtt_will *will)
{
    snprintf(uri, 64, "tcp://127.0.0.1:%u", port);
    tmq_opts_defaults(to);
    to->uri = uri;
    to->client_id = id;
    to->persistent = o != NULL && !o->clean;
    to->kind = o != NULL && o->resend ? SIM_MQTT_MOSQUITTO : SIM_MQTT_PAHO;
    to->keepalive_s = (o != NULL && o->keepalive > 0) ? o->keepalive : 30;
    to->connect_timeout_s = 10;
    if (o != NULL && o->will_topic != NULL) {
        *will = (struct sim_mqtt_will){ .topic = o->will_topic, .payload = o->will_payload,
                                        .len = strlen(o->will_payload), .qos = 1 };
        to->will = will;
    }
}

struct tmq *tc_connect_start(uint16_t port, const char *id, const struct tclient_opts *o)
{
    struct tmq_opts to;
    struct sim_mqtt_will will;
    struct tmq *t = NULL;
    char uri[64];

    tc_opts(&to, uri, port, id, o, &will);
    if (tmq_create(&to, &t) != 0 || tmq_connect_start(t) != 0) {
        fprintf(stderr, "client %s cannot start connecting to %s\n", id, uri);
        tmq_free(t);
        return NULL;
    }
    return t;
}

struct tmq *tc_connect(uint16_t port, const char *id, const struct tclient_opts *o)
{
    struct tmq *t = tc_connect_start(port, id, o);
    if (t != NULL && tmq_wait_connect(t, TMQ_WAIT_MS) != 0) {
        fprintf(stderr, "client %s cannot connect to port %u\n", id, port);
        tmq_free(t);
        t = NULL;
    }
    return t;
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
