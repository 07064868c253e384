/*
 * mqtt_mosq_internal.h - between the libmosquitto client (mqtt_mosq.c) and what drives it
 * from a sim_loop (mqtt_mosq_io.c): the client's state, and the calls each makes into the
 * other. Everything here runs on the client's io loop thread unless it says otherwise.
 */
#ifndef SIM_MQTT_MOSQ_INTERNAL_H
#define SIM_MQTT_MOSQ_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_internal.h"
#include "sim/loop.h"

struct mosquitto;

enum conn_state { ST_IDLE, ST_CONNECTING, ST_CONNECTED, ST_DISCONNECTING };

struct outstanding {   /* a QoS > 0 publish or a subscribe waiting for its answer */
    int mid;
    int n_filters;     /* 0 = a publish */
};

struct io;

struct mosq_client {
    struct sim_mqtt base;          /* first: the common code's header */
    struct mosquitto *m;
    struct io *io;
    size_t io_index;               /* position in io->clients */
    struct sim_loop_watch watch;
    bool watching;
    struct sim_mqtt_handlers h;
    void *ctx;
    char *host, *client_id, *username, *password, *cafile, *certfile, *keyfile;
    char *bind_address;            /* local (source) address, numeric; NULL = any */
    int port;
    bool tls, insecure, tcp_nodelay, clean;
    uint32_t session_expiry_s;
    int connect_timeout_s;
    _Atomic int state;             /* enum conn_state, read from any thread */
    uint64_t connect_deadline_ms;  /* also the end of a clean disconnect's 1 s */
    char tls_reason[96];           /* OpenSSL's first reason of this attempt, lower case */
    struct outstanding *out;
    int n_out, cap_out;
    bool disconnect_deferred;      /* DISCONNECT waits for the outstanding acks (owner) */
    bool closing;                  /* being destroyed: no watch again (owner) */
    /* Destroyed: only this shell is left, kept a while for the epoll registration a forked
       child can keep alive (see mosq__bury); its events are ignored. */
    bool dead;
    uint64_t dead_at_ms;
    struct mosq_client *grave_next;
};

/* One per sim_loop that drives clients. */
struct io {
    struct sim_loop *loop;
    struct sim_loop_target target; /* on_tick: loop_misc and time-outs, a slice a tick */
    struct mosq_client **clients;
    size_t n, cap, cursor;
    uint64_t last_ms;
    struct mosq_client *graveyard; /* destroyed clients' shells, oldest last */
    struct io *next;
};

/* mqtt_mosq_io.c: the io loops and the watch */

/* The process-wide io loop (made with its thread on first use), or NULL when it could not
   start. Any thread. */
struct sim_loop *mosq__shared_loop(void);
/* The io record of loop (made and attached on first use). Any thread. */
struct io *mosq__io_of(struct sim_loop *loop);
/* Put c in / take c out of the clients the io's tick walks. */
int mosq__io_add(struct io *io, struct mosq_client *c);
void mosq__io_remove(struct io *io, struct mosq_client *c);
/* Make the watch follow libmosquitto's socket and its want_write. */
void mosq__sync_watch(struct mosq_client *c);
/* Stop watching while the socket is still open (before libmosquitto closes it). */
void mosq__unwatch_open(struct mosq_client *c);
/* Keep the shell of destroyed client c (libmosquitto's part is freed) for a few seconds. */
void mosq__bury(struct io *io, struct mosq_client *c, uint64_t now_ms);

/* mqtt_mosq.c: what the driving calls back */

/* Keep-alive and the connect time-out, about once a second (from the io's tick). */
void mosq__client_misc(struct mosq_client *c, uint64_t now_ms);
/* End a connect attempt: state idle, connect_failed with words for people. */
void mosq__fail_connect(struct mosq_client *c, int code, const char *detail, const char *tls);
/* The TLS reason of this attempt, or NULL. */
const char *mosq__tls_reason(struct mosq_client *c);

#endif /* SIM_MQTT_MOSQ_INTERNAL_H */
