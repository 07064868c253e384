/*
 * proxy_test_util.h - what the proxy's broker tests share: a real mosquitto (hx_broker), a
 * hub, and a Paho MQTTClient wrapper whose callbacks record messages and connection loss so
 * tests can wait for them with time-outs.
 */
#ifndef PROXY_TEST_UTIL_H
#define PROXY_TEST_UTIL_H

#include <MQTTClient.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hx/broker.h"
#include "hx/proxy.h"
#include <stddef.h>

#define TMSG_MAX 512

struct tmsg {
    char topic[128];
    char payload[128];
    size_t len;
    int qos, dup;
    int64_t t_ms;
};

struct tclient {
    MQTTClient c;
    char uri[64];
    char id[64];
    pthread_mutex_t mu;
    struct tmsg msgs[TMSG_MAX];
    int n_msgs;
    int lost; /* connection-lost callbacks */
};

struct tclient_opts {
    bool clean;         /* CleanSession */
    int keepalive;      /* 0 = 30 s */
    const char *will_topic;
    const char *will_payload;
};

int64_t t_now_ms(void);

/* Poll cond(arg) every 10 ms until true or timeout_ms passes. */
bool t_wait(bool (*cond)(void *), void *arg, int timeout_ms);

/* A client to 127.0.0.1:port, connected. NULL opts = clean session, keep-alive 30. */
struct tclient *tc_connect(uint16_t port, const char *id, const struct tclient_opts *o);
/* Connect again (after a loss) with the same options. */
int tc_reconnect(struct tclient *t, const struct tclient_opts *o);
int tc_subscribe(struct tclient *t, const char *topic, int qos);
/* Publish and (qos > 0) return the token in *tok; 0 or a Paho error. */
int tc_publish(struct tclient *t, const char *topic, const void *payload, int len, int qos,
               MQTTClient_deliveryToken *tok);
int tc_count(struct tclient *t);
struct tmsg tc_msg(struct tclient *t, int i);
int tc_lost(struct tclient *t);
bool tc_wait_count(struct tclient *t, int n, int timeout_ms);
bool tc_wait_lost(struct tclient *t, int timeout_ms);
void tc_free(struct tclient *t);

/* Counters helpers */
struct hx_proxy_counters t_counters(struct hx_proxy *p);
/* Wait until *field_of(counters) >= min. */
bool t_wait_counter(struct hx_proxy *p, size_t offset, uint64_t min, int timeout_ms);
#define T_OFF(member) offsetof(struct hx_proxy_counters, member)

/* An open-files count (/proc/self/fd) and resident set size in KiB. */
int t_open_fds(void);
long t_rss_kib(void);

#endif
