/*
 * sim/mqtt.h - scansim's MQTT edge: the one interface every MQTT client of the project uses,
 * and the only code that includes a client library's header (src/mqtt_*.c).
 *
 * Two implementations, chosen per client at create (or for the whole process with
 * sim_mqtt_set_default_kind, which `--transport` sets):
 *   - SIM_MQTT_MOSQUITTO: libmosquitto, driven by a struct sim_loop's own thread (epoll on
 *     the client's socket, sim/loop.h): no thread per client, no global client list. The
 *     handlers run on that loop's thread, inside its drain.
 *   - SIM_MQTT_PAHO: Eclipse Paho MQTTAsync with its own threads; the handlers run on
 *     Paho's callback thread while it holds Paho's library lock.
 * Either way a handler must not block, and must not call sim_mqtt_destroy on its client.
 * MQTT 3.1.1 and 5 are folded together: a handler sees one set of codes.
 *
 * Codes the handlers see:
 *   connect_failed: 1..5 = a 3.1.1 CONNACK return code, >= 0x80 = an MQTT 5 reason code,
 *                   negative = the broker was not reached (TCP, TLS, time-out, DNS);
 *   published:      0 = acknowledged (PUBACK / PUBCOMP), >= 0x80 = refused by the broker
 *                   (MQTT 5 reason code), negative = lost with the connection;
 *   subscribed:     per filter 0..2 = granted QoS, >= 0x80 = refused, negative = lost.
 * The words handed to connect_failed and connection_lost are for people: what happened, to
 * which broker, and what to do (see sim_mqtt_describe_failure). A password never appears in
 * any text this module produces.
 *
 * Threading: every function may be called from any thread except inside this client's own
 * handlers where noted; calls on one client from several threads at once are serialised by
 * the implementation. The mosquitto implementation is cheapest when called on its io loop's
 * thread (a device transport's case).
 *
 * Ownership: option strings are copied at create; everything passed to a function or a
 * handler is borrowed for the call (a handler that needs a message later copies it).
 */
#ifndef SIM_MQTT_H
#define SIM_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Room for a failure's words (what, to what, why, what to do). */
#define SIM_MQTT_WORDS_MAX 320

enum sim_mqtt_kind {
    SIM_MQTT_DEFAULT = -1, /* the process's default (sim_mqtt_default_kind) */
    SIM_MQTT_MOSQUITTO = 0,
    SIM_MQTT_PAHO = 1,
};

/** "mosquitto" / "paho". */
const char *sim_mqtt_kind_name(enum sim_mqtt_kind kind);
/** Parse "mosquitto" or "paho"; 0 or SIM_ERR_INVAL. */
int sim_mqtt_kind_parse(const char *s, enum sim_mqtt_kind *out);
/** The kind a client with SIM_MQTT_DEFAULT gets: the one set, else the environment's
 *  SCANSIM_TRANSPORT (mosquitto|paho), else SIM_MQTT_MOSQUITTO. Set it before the first
 *  client is created (start-up). */
void sim_mqtt_set_default_kind(enum sim_mqtt_kind kind);
enum sim_mqtt_kind sim_mqtt_default_kind(void);
/** Whether sim_mqtt_opts_defaults turns Nagle off (TCP_NODELAY); true until set (`--nagle`
 *  sets false). Nagle holds a small write until the broker's delayed ACK of the one before
 *  (up to 40 ms), latency that is neither the broker's nor the backend's. */
void sim_mqtt_set_default_nodelay(bool on);

#define SIM_MQTT_OPTS_VERSION 3 /* 2: bind_address; 3: keep_session_state */

struct sim_mqtt_opts {
    int version;               /* SIM_MQTT_OPTS_VERSION */
    enum sim_mqtt_kind kind;   /* SIM_MQTT_DEFAULT after sim_mqtt_opts_defaults */
    const char *uri;           /* "tcp://host:port", "mqtt://", "ssl://", "mqtts://"; required */
    const char *client_id;     /* required, non-empty */
    const char *username;      /* NULL = none */
    const char *password;      /* NULL = none; never logged, never in any message */
    const char *cafile;        /* TLS: CA bundle for the broker (PEM); NULL = the system's */
    const char *certfile;      /* TLS client certificate (PEM), NULL = none */
    const char *keyfile;       /* its private key (PEM), NULL = the certfile holds it */
    bool insecure;             /* TLS: do not verify the broker's certificate or host name */
    int mqtt_version;          /* 3 = MQTT 3.1.1 (default), 5 = MQTT 5 */
    uint32_t session_expiry_s; /* MQTT 5 persistent sessions: Session Expiry Interval */
    int connect_timeout_s;     /* give up a connect attempt after this; 0 = 10 s */
    int max_inflight;          /* QoS > 0 publishes in flight at once (beyond: queued in
                                  the library); 0 = the library's default (libmosquitto 20,
                                  Paho unbounded) */
    bool tcp_nodelay;          /* Nagle off (mosquitto: MOSQ_OPT_TCP_NODELAY; Paho has no
                                  such option: ignored, see docs/performance.md) */
    struct sim_loop *io;       /* mosquitto: the loop whose thread drives the socket; NULL =
                                  a process-wide io loop with its own thread. Paho: unused. */
    const char *bind_address;  /* the connection's local (source) address, numeric (e.g.
                                  127.0.0.2); NULL = the system's choice. mosquitto only
                                  (mosquitto_connect_bind_async): Paho MQTTAsync has no
                                  such option, its create refuses one (SIM_ERR_INVAL). */
    bool keep_session_state;   /* keep the library's unacknowledged publishes across the
                                  loss of a persistent session's connection, so that the
                                  reconnect completes them with their packet ids (PUBLISH
                                  with DUP, or PUBREL): what exactly once at QoS 2 needs.
                                  libmosquitto always keeps them. Paho only with this set;
                                  without it a fresh handle after every loss (mqtt_paho.c) */
};

/** Defaults: kind SIM_MQTT_DEFAULT, MQTT 3.1.1, session expiry 3600 s, 10 s time-out,
 *  TCP_NODELAY as sim_mqtt_set_default_nodelay says (on), io NULL. uri and client_id must be set by the caller. */
void sim_mqtt_opts_defaults(struct sim_mqtt_opts *opts);

struct sim_mqtt_message {
    const char *topic;   /* NUL-terminated */
    const void *payload;
    size_t len;
    int qos;
    bool dup;
    bool retain;
};

struct sim_mqtt_handlers {
    /* CONNACK accepted. */
    void (*connected)(void *ctx, bool session_present);
    /* A connect attempt ended without a session (see the codes above). */
    void (*connect_failed)(void *ctx, int code, const char *words);
    /* An established connection ended without sim_mqtt_disconnect. */
    void (*connection_lost)(void *ctx, const char *words);
    /* A message arrived (a QoS 1/2 one is acknowledged by the library). */
    void (*message)(void *ctx, const struct sim_mqtt_message *m);
    /* The outcome of a QoS > 0 publish: mid from sim_mqtt_publish, code as above. */
    void (*published)(void *ctx, int mid, int code);
    /* SUBACK (or loss) for mid from sim_mqtt_subscribe: n codes, one per filter. */
    void (*subscribed)(void *ctx, int mid, int n, const int *codes);
    /* A clean disconnect asked for has finished (DISCONNECT sent, socket closed). */
    void (*disconnected)(void *ctx);
};

struct sim_mqtt_will {
    const char *topic;
    const void *payload;
    size_t len;
    int qos;
    bool retain;
};

struct sim_mqtt_connect_params {
    int keepalive_s;                  /* 0 = off; libmosquitto refuses 1..4 s: raised to 5 */
    bool clean_session;               /* 3.1.1 CleanSession / MQTT 5 Clean Start */
    const struct sim_mqtt_will *will; /* NULL = none */
};

struct sim_mqtt;

/**
 * Create a client. Does not connect. Handlers may be NULL one by one.
 * 0, SIM_ERR_INVAL (no uri or client id, bad scheme, bad version), SIM_ERR_NOMEM,
 * SIM_ERR_MQTT (the library refused the options).
 */
int sim_mqtt_create(const struct sim_mqtt_opts *opts, const struct sim_mqtt_handlers *h,
                    void *ctx, struct sim_mqtt **out);

/** Free the client. A clean disconnect under way is finished first (its DISCONNECT
 *  written). Otherwise a connected client is closed without DISCONNECT: a power cut, the
 *  broker sends the Will (mosquitto; Paho's MQTTAsync_destroy still writes a DISCONNECT when
 *  its socket is idle, so there the broker usually does not). No handler runs after it
 *  returns. Not from this client's handlers. NULL is fine. */
void sim_mqtt_destroy(struct sim_mqtt *c);

/** Start connecting; the outcome comes to connected / connect_failed. May be called again
 *  after a loss or a failure (a reconnect, same client id). 0, SIM_ERR_STATE (connected or
 *  connecting), SIM_ERR_MQTT (could not start: connect_failed is called as well, with words). */
int sim_mqtt_connect(struct sim_mqtt *c, const struct sim_mqtt_connect_params *p);

/** Publish. For QoS > 0 *mid (if given) identifies it in published(); QoS 0 gives 0.
 *  0, SIM_ERR_OFFLINE (not connected), SIM_ERR_INVAL (bad topic or QoS), SIM_ERR_NOMEM,
 *  SIM_ERR_MQTT (the library refused it). */
int sim_mqtt_publish(struct sim_mqtt *c, const char *topic, const void *payload, size_t len,
                     int qos, bool retain, int *mid);

/** Subscribe n filters at their QoS in one SUBSCRIBE; *mid identifies it in subscribed().
 *  0, SIM_ERR_OFFLINE, SIM_ERR_INVAL, SIM_ERR_NOMEM, SIM_ERR_MQTT. */
int sim_mqtt_subscribe(struct sim_mqtt *c, int n, const char *const *filters, const int *qos,
                       int *mid);

/** Clean disconnect: DISCONNECT once the packets queued now are written (up to 1 s); the
 *  broker discards the Will. disconnected() follows. No-op when not connected. */
void sim_mqtt_disconnect(struct sim_mqtt *c);

/** Connected as far as the client knows (CONNACK seen, no loss or disconnect since). */
bool sim_mqtt_is_connected(const struct sim_mqtt *c);
/** A clean disconnect was asked for and has not finished. */
bool sim_mqtt_is_disconnecting(const struct sim_mqtt *c);

/** MQTT 5: the Receive Maximum of the last CONNACK (how many QoS > 0 publishes the broker
 *  takes in flight at once); 0 when it gave none, for MQTT 3.1.1, or when the
 *  implementation does not read it. Set before connected() runs; may be called inside a
 *  handler. */
int sim_mqtt_receive_maximum(const struct sim_mqtt *c);

enum sim_mqtt_kind sim_mqtt_kind_of(const struct sim_mqtt *c);
const char *sim_mqtt_uri(const struct sim_mqtt *c);
int sim_mqtt_version(const struct sim_mqtt *c);

/** Is uri a TLS address (ssl:// or mqtts://)? NULL is not. */
bool sim_mqtt_uri_is_tls(const char *uri);

/**
 * Words for a connect failure: "connection to URI refused: WHAT (CONNACK n) - WHAT TO DO"
 * for a code > 0; for a negative code (not reached) the words come from detail (the
 * library's or the system's text, or NULL) and tls_reason (OpenSSL's reason in lower case,
 * e.g. "certificate verify failed", or NULL), e.g. "the broker's certificate was not
 * trusted (...) - check --cafile ...", "the broker cannot be reached (...) - check host and
 * port and that the broker runs".
 */
void sim_mqtt_describe_failure(char *out, size_t cap, const char *uri, int code,
                               const char *detail, const char *tls_reason);

/** Figures of the process's clients of one kind, for benchmarks and tests. */
struct sim_mqtt_stats {
    int clients;            /* created and not destroyed */
    int fds_per_client;     /* file descriptors a connected client holds (mosquitto 2.0: 3,
                               its socket pair included; Paho: 1) */
};
void sim_mqtt_stats(enum sim_mqtt_kind kind, struct sim_mqtt_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* SIM_MQTT_H */
