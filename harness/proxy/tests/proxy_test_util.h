/*
 * proxy_test_util.h - what the proxy's broker tests share: a real mosquitto (hx_broker), a
 * hub, the tests' MQTT client (sim/test_mqtt.h) to a port, waits for the proxy's counters,
 * and the process's open files and memory.
 */
#ifndef PROXY_TEST_UTIL_H
#define PROXY_TEST_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hx/broker.h"
#include "hx/proxy.h"
#include "sim/test_mqtt.h"

/* How the tests' clients differ (the rest: tc_opts). */
struct tclient_opts {
    bool clean;         /* CleanSession */
    bool resend;        /* keep unacknowledged publishes across a cut and re-send them on
                           the reconnect: a libmosquitto client (see tc_opts) */
    int keepalive;      /* 0 = 30 s */
    const char *will_topic;
    const char *will_payload;
};

int64_t t_now_ms(void);

/* Poll cond(arg) every 10 ms until true or timeout_ms passes. */
bool t_wait(bool (*cond)(void *), void *arg, int timeout_ms);

/* Options for a client to 127.0.0.1:port (uri is the caller's, 64 bytes; will is filled
   when o has one). NULL o = clean session, keep-alive 30. */
void tc_opts(struct tmq_opts *to, char *uri, uint16_t port, const char *id,
             const struct tclient_opts *o, struct sim_mqtt_will *will);
/* A client to 127.0.0.1:port, connected (NULL on failure, with the words on stderr). */
struct tmq *tc_connect(uint16_t port, const char *id, const struct tclient_opts *o);
/* The same, its connect only started (NULL when it could not start): wait for it with
   tmq_wait_connect. Paho connects a client next to idle ones on its 1 s poll, so many
   clients connect in parallel or take a second each (sim/platform/src/mqtt_paho.c). */
struct tmq *tc_connect_start(uint16_t port, const char *id, const struct tclient_opts *o);

/* Counters helpers */
struct hx_proxy_counters t_counters(struct hx_proxy *p);
/* Wait until *field_of(counters) >= min. */
bool t_wait_counter(struct hx_proxy *p, size_t offset, uint64_t min, int timeout_ms);
#define T_OFF(member) offsetof(struct hx_proxy_counters, member)

/* An open-files count (/proc/self/fd) and resident set size in KiB. */
int t_open_fds(void);
long t_rss_kib(void);

#endif
