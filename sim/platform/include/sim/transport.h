/*
 * sim/transport.h - the network port on Linux: a device's MQTT client on the MQTT edge
 * (sim/mqtt.h: libmosquitto on the device's own loop, or Paho MQTTAsync).
 *
 * One struct sim_transport per device. It implements the net_* functions of fw_ports.h:
 * connect (asynchronous), publish, subscribe, clean disconnect. The edge's handlers only
 * copy what they got into a struct sim_event and push it onto the owning device's loop
 * (sim/loop.h): SIM_EV_CONNECTED, SIM_EV_CONNECT_FAILED (code + words),
 * SIM_EV_CONNECTION_LOST (words), SIM_EV_MESSAGE, SIM_EV_PUBLISHED (token),
 * SIM_EV_PUBLISH_REFUSED (token + the broker's reason code, or FW_ERR_IO),
 * SIM_EV_SUBSCRIBED (token + the granted QoS, the broker's refusal, or FW_ERR_IO). The owner
 * thread hands them to firmware_core (sim/device.h does that). With libmosquitto the
 * device's loop also drives the socket, so nothing crosses a thread.
 *
 * Reconnects: the firmware owns the policy (back-off + jitter). net_connect may be called
 * again after a loss or a failure; the edge's automatic reconnect is never used.
 *
 * Words: connect failures and losses are described for people (sim_mqtt_describe_failure),
 * e.g. "connection to tcp://127.0.0.1:1883 refused: bad user name or password (CONNACK 4) -
 * check the user name and password". A password never appears in any text.
 *
 * Threading: every function below is for the owning thread only (the one running the
 * device's loop), except sim_transport_opts_defaults and the connect-limit functions.
 *
 * Ownership: strings in the options are copied at create; pointers passed to the
 * functions are borrowed for the call.
 */
#ifndef SIM_TRANSPORT_H
#define SIM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_ports.h"
#include "sim/loop.h"
#include "sim/mqtt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Room for the words of a failure or a loss (what, to what, why, what to do), larger than
   the firmware's log line (FW_LOG_MAX) so that the advice is never cut mid-word; the
   firmware's own log keeps FW_LOG_MAX. */
#define SIM_WORDS_MAX SIM_MQTT_WORDS_MAX

#define SIM_TRANSPORT_OPTS_VERSION 4 /* 3: bind_address; 4: keep_session_state */

struct sim_transport_opts {
    int version;               /* SIM_TRANSPORT_OPTS_VERSION */
    const char *uri;           /* "tcp://host:port" or "ssl://host:port"; required */
    const char *username;      /* NULL = none */
    const char *password;      /* NULL = none; never logged, never in any message */
    const char *cafile;        /* TLS: CA bundle to verify the broker (PEM); NULL = system */
    const char *certfile;      /* TLS client certificate (PEM), NULL = none */
    const char *keyfile;       /* its private key (PEM), NULL = the certfile holds it */
    bool insecure;             /* TLS: do not verify the broker's certificate or host name */
    int mqtt_version;          /* 3 = MQTT 3.1.1 (default), 5 = MQTT 5 */
    uint32_t session_expiry_s; /* MQTT 5, persistent sessions (clean_session false): the
                                  Session Expiry Interval; 0 = 3600. MQTT 3.1.1 ignores it. */
    int connect_timeout_s;     /* give up a connect attempt after this; 0 = 10 s */
    enum sim_mqtt_kind kind;   /* client library; SIM_MQTT_DEFAULT = the process's */
    bool tcp_nodelay;          /* Nagle off (see sim_mqtt_set_default_nodelay) */
    const char *bind_address;  /* local (source) address, numeric; NULL = the system's
                                  choice (sim/mqtt.h: libmosquitto only) */
    bool keep_session_state;   /* sim/mqtt.h: the client completes its unacknowledged
                                  publishes after a reconnect of a persistent session */
};

/** Fill opts with defaults: MQTT 3.1.1, session expiry 3600 s, 10 s connect time-out,
 *  the process's client library and Nagle setting, uri NULL (the caller must set it). */
void sim_transport_opts_defaults(struct sim_transport_opts *opts);

struct sim_transport;

/**
 * Create a transport for client_id whose events go to target on loop. Does not connect.
 * 0, SIM_ERR_INVAL (no uri, bad scheme, bad version, empty client id), SIM_ERR_NOMEM,
 * SIM_ERR_MQTT (the client library refused the options).
 */
int sim_transport_create(const struct sim_transport_opts *opts, const char *client_id,
                         struct sim_loop *loop, struct sim_loop_target *target,
                         struct sim_transport **out);

/** Destroy (a clean disconnect under way is finished first); frees. No event for this
 *  transport is pushed after it returns. NULL is fine. */
void sim_transport_destroy(struct sim_transport *t);

/* ---- the fw_ports net_* functions (owner thread) ---- */

/** Start connecting with the firmware's parameters (client id from create, clean session,
 *  keep-alive, will). The outcome arrives as SIM_EV_CONNECTED / SIM_EV_CONNECT_FAILED.
 *  0 or a negative fw_err (FW_ERR_IO when Paho refused to start; the words go out as a
 *  SIM_EV_CONNECT_FAILED event as well, so the firmware always hears an outcome). */
int sim_transport_connect(struct sim_transport *t, const struct fw_connect_params *p);

/** Publish. For QoS > 0 *token identifies it in the later SIM_EV_PUBLISHED (broker's
 *  PUBACK); for QoS 0 *token is 0 and no event follows. 0, FW_ERR_OFFLINE, FW_ERR_INVAL,
 *  FW_ERR_IO. */
int sim_transport_publish(struct sim_transport *t, const struct fw_publish *msg,
                          uint32_t *token);

/** Subscribe to a filter at a QoS. *token identifies it in the later SIM_EV_SUBSCRIBED
 *  (the broker's SUBACK: granted QoS, or a refusal). 0, FW_ERR_OFFLINE, FW_ERR_IO. */
int sim_transport_subscribe(struct sim_transport *t, const char *filter, int qos,
                            uint32_t *token);

/** n filters (1..SIM_TRANSPORT_SUBSCRIBE_MAX) at one QoS in one SUBSCRIBE; its SUBACK comes
 *  as n SIM_EV_SUBSCRIBED events with *token, one per filter in order. As above, and
 *  FW_ERR_INVAL for a bad n or filter. */
#define SIM_TRANSPORT_SUBSCRIBE_MAX 8
int sim_transport_subscribe_many(struct sim_transport *t, const char *const *filters, int n,
                                 int qos, uint32_t *token);

/** Clean disconnect: DISCONNECT after the queued packets are written (up to 1 s), so the
 *  broker does not publish the Will. No event follows. */
void sim_transport_disconnect(struct sim_transport *t);

/* ---- extras ---- */

/**
 * Issue a connect that waits for a throttle slot, if a slot is free (owner thread; the
 * device calls it on every tick). See sim_transport_set_connect_limit.
 */
void sim_transport_poll(struct sim_transport *t);

/**
 * Cap the connects outstanding in the whole process (issued, no CONNACK or failure yet);
 * default 64. A broker's listen backlog (mosquitto: 100) overflows in a burst of thousands
 * of connects and the kernel retries the SYNs after 1 s, 3 s...; Paho also scans one
 * process-wide command queue per command. Beyond the cap net_connect keeps the request (a
 * small copy of the parameters) and sim_transport_poll issues it when a slot frees. Any
 * thread.
 */
void sim_transport_set_connect_limit(int limit);

/** Connects outstanding in the process right now (for figures and tests). Any thread. */
int sim_transport_connects_in_flight(void);

/**
 * "Power cut": destroy the client without DISCONNECT, forget its session state, and create
 * a fresh one at the next connect. No event follows. What the broker sees depends on the
 * library (tests/test_transport.c): libmosquitto closes the socket, so the broker publishes
 * the Will; Paho 1.3.12's MQTTAsync_destroy still writes a DISCONNECT when its socket has
 * no pending writes, so the broker treats it as a clean disconnect and does NOT publish the
 * Will. For a network failure on either, use the harness proxy's link cut, or kill -9 a
 * process running the device (both tested).
 */
void sim_transport_power_cut(struct sim_transport *t);

/** Connected as far as the owner thread has been told (SIM_EV_CONNECTED handled and no
 *  loss / disconnect since). Call sim_transport_handle_event() for the events first. */
bool sim_transport_connected(const struct sim_transport *t);

/**
 * Let the transport see an event addressed to its target before the firmware does: it
 * keeps its connected state and drops stale events (from before a power cut, or a loss
 * report when it was not connected). Returns true when the event should be passed on.
 */
bool sim_transport_handle_event(struct sim_transport *t, const struct sim_event *ev);

/** A clean disconnect asked for is still under way (DISCONNECT not yet written and the
 *  socket not closed). Owner thread. */
bool sim_transport_disconnecting(const struct sim_transport *t);

/** The broker URI (for messages and panels). */
const char *sim_transport_uri(const struct sim_transport *t);

/** MQTT version in use: 3 (3.1.1) or 5. */
int sim_transport_mqtt_version(const struct sim_transport *t);

/** The client library in use. */
enum sim_mqtt_kind sim_transport_kind(const struct sim_transport *t);

#ifdef __cplusplus
}
#endif

#endif /* SIM_TRANSPORT_H */
