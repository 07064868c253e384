/*
 * sim/test_mqtt.h - the tests' one MQTT client (library sim_test_mqtt): the MQTT edge
 * (sim/mqtt.h) used synchronously. Connect and wait for the CONNACK, subscribe and wait for
 * the SUBACK, publish and wait for the acknowledgement (or the broker's refusal), and every
 * message received kept in order, to be waited for, looked up or taken one by one.
 *
 * Either implementation of the edge (opts.kind; SIM_MQTT_DEFAULT = the process's, that is
 * SCANSIM_TRANSPORT). Nothing here asserts: every call returns 0 or a code, and the test
 * decides (ck_assert_int_eq(tmq_publish(...), 0)).
 *
 * Codes, as the edge's handlers report them (sim/mqtt.h): a connect gives 1..5 (a 3.1.1
 * CONNACK code) or >= 0x80 (an MQTT 5 reason code) when refused, negative when the broker
 * was not reached; a publish >= 0x80 when refused; a subscribe the refusal >= 0x80. Waiting
 * too long gives SIM_ERR_TIMEOUT; a call the edge refused gives the edge's code (sim/err.h).
 *
 * Threading: any thread may call any function; the edge's threads only add to the client's
 * state under its lock. A waiter sleeps on a condition variable, no polling.
 *
 * Ownership: option strings (and the Will) are copied at create. A message returned
 * (const struct tmq_msg *) belongs to the client and stays valid until tmq_free/tmq_close.
 */
#ifndef SIM_TEST_MQTT_H
#define SIM_TEST_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/mqtt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the waits of connect, subscribe, publish and disconnect allow by default: generous,
   the machine may be loaded (ctest -j2 on 2 cores, sanitizers). */
#ifndef TMQ_WAIT_MS
#define TMQ_WAIT_MS 15000
#endif
/* Messages one client keeps; beyond, new ones are not kept. */
#ifndef TMQ_MAX_MSGS
#define TMQ_MAX_MSGS 65536
#endif

struct tmq_opts {
    enum sim_mqtt_kind kind;   /* SIM_MQTT_DEFAULT after tmq_opts_defaults */
    const char *uri;           /* required */
    const char *client_id;     /* required */
    bool persistent;           /* false: a clean session; true: CleanSession 0 / Clean
                                  Start 0 */
    bool keep_session_state;   /* keep the library's unacknowledged publishes across a loss,
                                  so that a reconnect re-sends them (sim/mqtt.h) */
    int mqtt_version;          /* 3 = MQTT 3.1.1 (default), 5 = MQTT 5 */
    uint32_t session_expiry_s; /* MQTT 5 persistent sessions; default 3600 */
    const char *username;      /* NULL = none */
    const char *password;      /* NULL = none */
    const char *cafile;        /* TLS files (PEM), NULL = none / the system's CA */
    const char *certfile;
    const char *keyfile;
    bool insecure;             /* TLS: do not check the broker's certificate */
    int keepalive_s;           /* 0 = 30 */
    int connect_timeout_s;     /* 0 = the edge's (10 s) */
    const struct sim_mqtt_will *will; /* NULL = none */
    int wait_ms;               /* connect, subscribe, publish, disconnect; 0 = TMQ_WAIT_MS */
    bool quiet;                /* do not print a failed connect's words on stderr */
};

/** Defaults: kind SIM_MQTT_DEFAULT, clean session, MQTT 3.1.1, keep-alive 30 s. */
void tmq_opts_defaults(struct tmq_opts *o);

/** One received message. topic and payload are NUL-terminated copies (len excludes the
 *  NUL; a payload with a NUL inside is still whole up to len). */
struct tmq_msg {
    const char *topic;
    const char *payload;
    size_t len;
    int qos;
    bool retain;
    bool dup;
    int64_t t_ms; /* sim_clock_ms() when it arrived */
};

struct tmq;

/* ------------------------------------------------------------------ connection */

/** Create a client (not connected). 0, or the edge's code (SIM_ERR_INVAL, SIM_ERR_NOMEM,
 *  SIM_ERR_MQTT). */
int tmq_create(const struct tmq_opts *o, struct tmq **out);
/** Connect (again, after a loss or a failure: same options) and wait for the outcome:
 *  0 = CONNACK accepted; a connect failure's code; SIM_ERR_TIMEOUT; SIM_ERR_STATE (already
 *  connected or connecting). The failure's words go to stderr unless quiet. */
int tmq_connect(struct tmq *c);
/** tmq_connect in two steps, to connect many clients at once: start (0 or the edge's
 *  code), then wait for that attempt's outcome (tmq_connect's codes). */
int tmq_connect_start(struct tmq *c);
int tmq_wait_connect(struct tmq *c, int timeout_ms);
/** tmq_create and tmq_connect. On failure nothing is left: *out is NULL. */
int tmq_open(const struct tmq_opts *o, struct tmq **out);
/** Connected as far as the edge knows. */
bool tmq_is_connected(struct tmq *c);
/** Connections lost (without a disconnect asked for) so far; wait until n are. */
int tmq_lost(struct tmq *c);
bool tmq_wait_lost(struct tmq *c, int n, int timeout_ms);

/** Clean disconnect (DISCONNECT: the broker discards the Will) and wait until done; the
 *  client may connect again. 0 (also when not connected), SIM_ERR_TIMEOUT. */
int tmq_disconnect(struct tmq *c);
/** Free without DISCONNECT (a power cut: the broker sends the Will, see sim_mqtt_destroy).
 *  NULL is fine. */
void tmq_free(struct tmq *c);
/** tmq_disconnect when connected, then tmq_free; tmq_disconnect's code. NULL is fine. */
int tmq_close(struct tmq *c);

/* ------------------------------------------------------------------ subscribe, publish */

/** Subscribe n filters in one SUBSCRIBE and wait for the SUBACK; granted (may be NULL) gets
 *  the n codes. 0 when all were granted, else the first refusal (>= 0x80) or a negative
 *  code (the edge's, SIM_ERR_TIMEOUT). */
int tmq_subscribe_many(struct tmq *c, int n, const char *const *filters, const int *qos,
                       int *granted);
/** One filter; *granted (may be NULL) = the granted QoS or the refusal. */
int tmq_subscribe(struct tmq *c, const char *filter, int qos, int *granted);

/** Identifies a publish under way (tmq_publish_start) for tmq_wait_published. */
struct tmq_token {
    int mid;
    uint64_t after; /* outcomes the client had seen before it */
};
/** Publish without waiting. 0 or the edge's code; *tok (may be NULL) for QoS > 0. */
int tmq_publish_start(struct tmq *c, const char *topic, const void *payload, size_t len,
                      int qos, bool retain, struct tmq_token *tok);
/** Wait for that publish's acknowledgement (PUBACK / PUBCOMP): 0, the broker's refusal
 *  (>= 0x80), negative = lost with the connection, SIM_ERR_TIMEOUT. */
int tmq_wait_published(struct tmq *c, const struct tmq_token *tok, int timeout_ms);
/** Publish and wait (QoS 0: only that the edge took it). */
int tmq_publish(struct tmq *c, const char *topic, const void *payload, size_t len, int qos,
                bool retain);
/** The same with a NUL-terminated text. */
int tmq_publish_text(struct tmq *c, const char *topic, const char *text, int qos,
                     bool retain);

/* ------------------------------------------------------------------ messages received */

/** Messages received and kept so far. */
int tmq_count(struct tmq *c);
/** Wait until n messages were received; false on time-out. */
bool tmq_wait_count(struct tmq *c, int n, int timeout_ms);
/** The i-th message received (0-based), or NULL; waiting for it up to timeout_ms. */
const struct tmq_msg *tmq_msg(struct tmq *c, int i);
const struct tmq_msg *tmq_wait_msg(struct tmq *c, int i, int timeout_ms);
/** Messages on topic (exactly that name) with payload (NULL = any); wait until n. */
int tmq_count_on(struct tmq *c, const char *topic, const char *payload);
bool tmq_wait_count_on(struct tmq *c, const char *topic, const char *payload, int n,
                       int timeout_ms);
/** The k-th message on topic (0-based), or NULL. */
const struct tmq_msg *tmq_find(struct tmq *c, const char *topic, int k);
/** Take the oldest message not taken yet (a queue), waiting up to timeout_ms; NULL on
 *  time-out. */
const struct tmq_msg *tmq_next(struct tmq *c, int timeout_ms);
/** The same for the oldest not taken on topic; the others stay for tmq_next. */
const struct tmq_msg *tmq_next_on(struct tmq *c, const char *topic, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* SIM_TEST_MQTT_H */
