/*
 * transport_paho.c - the network port on Eclipse Paho MQTTAsync (sim/transport.h).
 *
 * Paho runs its own send/receive threads and calls back on them while holding its library
 * mutex. So every callback here only copies what it was given into one struct sim_event
 * and pushes it onto the owning loop; the owner thread then passes it to the firmware.
 * Nothing here calls the firmware, blocks, or calls back into Paho from a callback.
 *
 * Per-device memory is kept small (the fleet runs 10,000 devices in one process): the
 * handle, a few flags and copies of the option strings; no buffers.
 *
 * Connect throttle: Paho keeps one command queue for all clients of the process and scans
 * it per command, so thousands of simultaneous connects (each followed by subscribes and a
 * publish) make it quadratic: measured 10,000 devices reaching only 2,500 online after
 * 120 s. At most `connect_limit` connects are therefore outstanding in the process; the
 * others wait in their transport (a small malloc'ed copy of the parameters) and are issued
 * from sim_transport_poll(), which the device calls on every tick.
 *
 * Published tokens: the response options of MQTTAsync_sendMessage carry onSuccess
 * (3.1.1) or onSuccess5 (MQTT 5) with the transport as context; response->token is the
 * token MQTTAsync_sendMessage returned, which we hand the firmware. One mechanism for
 * both versions (MQTTAsync_setDeliveryCompleted would also do for 3.1.1).
 *
 * Refused publishes: an MQTT 5 broker may answer a QoS 1 PUBLISH with a PUBACK reason
 * code >= 0x80 (mosquitto: 0x87 when the ACL denies the topic); Paho then calls
 * onFailure5 with that reasonCode. Without an onFailure5 it is dropped silently and the
 * firmware would wait for an ack that never comes, so onFailure5 / onFailure become a
 * SIM_EV_PUBLISH_REFUSED: the reason code when the broker gave one, FW_ERR_IO when Paho
 * only lost the publish (handle destroyed or disconnected with it in flight).
 *
 * TLS failures: Paho reports every failed TCP or TLS session as "TCP/TLS connect
 * failure". MQTTAsync_SSLOptions.ssl_error_cb gets OpenSSL's error lines (on Paho's
 * thread); the first reason of an attempt is kept per transport under a mutex and named
 * in the failure words, so an untrusted broker certificate says so.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#include "fw/fw_device.h"
#include "sim/err.h"
#include "sim/paho.h"
#include "sim/transport.h"

struct sim_transport {
    MQTTAsync client;               /* NULL before the first connect and after a power cut */
    struct sim_loop *loop;
    struct sim_loop_target *target;
    char *uri, *client_id, *username, *password, *cafile, *certfile, *keyfile;
    int mqtt_version;               /* 3 or 5 */
    uint32_t session_expiry_s;
    int connect_timeout_s;
    bool insecure;
    bool connected;                 /* owner's view, from handled events */
    atomic_uint generation;         /* stamped on events; bumped by a power cut */
    atomic_bool disconnecting;      /* a clean disconnect is in progress */
    atomic_bool connect_outstanding;/* counted in g_connects_in_flight until its outcome */
    struct pending_connect *pending;/* waiting for a throttle slot, or NULL */
    /* OpenSSL's reason for the current attempt's TLS failure ("certificate verify
       failed"), written by ssl_error_cb on Paho's thread, read when the attempt fails. */
    pthread_mutex_t tls_mu;
    char tls_reason[64];
};

/* A connect waiting for a slot: the firmware's parameters, copied (they are borrowed). */
struct pending_connect {
    bool clean_session;
    bool will_retain;
    uint16_t keepalive_s;
    int will_qos;
    size_t will_len;
    char *will_topic;   /* NULL = no will */
    char will_payload[]; /* will_len bytes */
};

/* Process-wide: connects issued to Paho and not yet answered, and the cap. */
static atomic_int g_connects_in_flight;
static atomic_int g_connect_limit = 64;

void sim_transport_set_connect_limit(int limit)
{
    atomic_store(&g_connect_limit, limit > 0 ? limit : 1);
}

int sim_transport_connects_in_flight(void)
{
    return atomic_load(&g_connects_in_flight);
}

/* The outcome of an issued connect arrived, or it never will (destroyed): free the slot
   exactly once. Safe on Paho's threads. */
static void release_slot(struct sim_transport *t)
{
    if (atomic_exchange(&t->connect_outstanding, false))
        atomic_fetch_sub(&g_connects_in_flight, 1);
}

void sim_transport_opts_defaults(struct sim_transport_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->version = SIM_TRANSPORT_OPTS_VERSION;
    opts->mqtt_version = 3;
    opts->session_expiry_s = 3600;
    opts->connect_timeout_s = 10;
}

/* ------------------------------------------------------------------ words */

struct reason {
    int code;
    const char *what;
    const char *todo;
};

static const struct reason connack3[] = {
    { 1, "unacceptable protocol version", "the broker does not speak MQTT 3.1.1: try MQTT 5" },
    { 2, "client identifier rejected", "use a shorter device id of letters and digits" },
    { 3, "server unavailable", "the broker cannot serve now: try again later" },
    { 4, "bad user name or password", "check the user name and password" },
    /* mosquitto answers a wrong password with this code too, hence the first hint. */
    { 5, "not authorised", "check the user name and password, and the user's rights (ACL)" },
};

static const struct reason reason5[] = {
    { 0x80, "unspecified error", "see the broker's log" },
    { 0x81, "malformed packet", "see the broker's log" },
    { 0x82, "protocol error", "see the broker's log" },
    { 0x83, "implementation specific error", "see the broker's log" },
    { 0x84, "unsupported protocol version", "the broker does not speak MQTT 5: try 3.1.1" },
    { 0x85, "client identifier not valid", "use a shorter device id of letters and digits" },
    { 0x86, "bad user name or password", "check the user name and password" },
    { 0x87, "not authorized", "check the user name and password, and the user's rights (ACL)" },
    { 0x88, "server unavailable", "try again later" },
    { 0x89, "server busy", "try again later" },
    { 0x8A, "banned", "ask the broker's administrator" },
    { 0x8B, "server shutting down", "try again later" },
    { 0x8C, "bad authentication method", "check the authentication settings" },
    { 0x8D, "keep alive timeout", "the device was silent too long; check the link" },
    { 0x8E, "session taken over", "another client connected with the same id" },
    { 0x95, "packet too large", "send smaller messages" },
    { 0x97, "quota exceeded", "slow down" },
    { 0x9C, "use another server", "connect to the server the broker names" },
    { 0x9D, "server moved", "connect to the server the broker names" },
    { 0x9F, "connection rate exceeded", "connect less often" },
};

static const struct reason *find_reason(const struct reason *tab, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (tab[i].code == code)
            return &tab[i];
    return NULL;
}

/* Does the lower-case OpenSSL reason hold any of the words? */
static bool reason_has(const char *reason, const char *const *words)
{
    for (; *words; words++)
        if (strstr(reason, *words))
            return true;
    return false;
}

/* Words for a TLS failure OpenSSL named; false when the reason says nothing useful. */
static bool describe_tls_reason(char *out, size_t cap, const char *uri, const char *reason)
{
    static const char *const not_tls[] = { "wrong version number", "unknown protocol",
                                           "packet length too long", "http request", NULL };
    static const char *const cert_refused[] = { "alert bad certificate", "alert unknown ca",
                                                "alert certificate", "alert decrypt error",
                                                "alert access denied", NULL };
    static const char *const files[] = { "no such file", "system lib", "no start line",
                                         "pem lib", "key values mismatch", "bad end line",
                                         "ca md too weak", "ee key too small", NULL };

    if (!reason || !*reason)
        return false;
    if (strstr(reason, "certificate verify failed"))
        snprintf(out, cap, "connection to %s failed: the broker's certificate was not trusted "
                 "(%s) - check --cafile and the name and dates in the broker's certificate",
                 uri, reason);
    else if (reason_has(reason, not_tls))
        snprintf(out, cap, "connection to %s failed: the server did not answer in TLS (%s) - "
                 "is it a plain MQTT port? use tcp:// there, or the TLS port", uri, reason);
    else if (reason_has(reason, cert_refused))
        snprintf(out, cap, "connection to %s failed: the broker refused the device's "
                 "certificate (%s) - check --cert/--key, the CA that signed them and their "
                 "dates", uri, reason);
    else if (reason_has(reason, files))
        snprintf(out, cap, "connection to %s failed: the TLS files could not be used (%s) - "
                 "check that --cafile, --cert and --key exist, are PEM and that the key "
                 "matches", uri, reason);
    else
        snprintf(out, cap, "connection to %s failed: TLS handshake failed (%s) - check "
                 "--cafile, --cert/--key and their dates", uri, reason);
    return true;
}

void sim_transport_describe_failure(char *out, size_t cap, const char *uri, int code,
                                    const char *paho_message)
{
    sim_transport_describe_failure_tls(out, cap, uri, code, paho_message, NULL);
}

void sim_transport_describe_failure_tls(char *out, size_t cap, const char *uri, int code,
                                        const char *paho_message, const char *tls_reason)
{
    const struct reason *r;
    bool tls = sim_paho_uri_is_tls(uri);
    char detail[96];

    if (!uri)
        uri = "(no uri)";
    if (code > 0 && code < 0x80) {
        r = find_reason(connack3, sizeof(connack3) / sizeof(connack3[0]), code);
        snprintf(out, cap, "connection to %s refused: %s (CONNACK %d) - %s", uri,
                 r ? r->what : "unknown reason", code, r ? r->todo : "see the broker's log");
        return;
    }
    if (code >= 0x80) {
        r = find_reason(reason5, sizeof(reason5) / sizeof(reason5[0]), code);
        snprintf(out, cap, "connection to %s refused: %s (reason code 0x%02X) - %s", uri,
                 r ? r->what : "unknown reason", (unsigned)code,
                 r ? r->todo : "see the broker's log");
        return;
    }
    switch (code) {
    case MQTTASYNC_BAD_PROTOCOL:
        snprintf(out, cap, "connection to %s impossible: unknown scheme - use tcp:// or ssl://",
                 uri);
        return;
    case MQTTASYNC_SSL_NOT_SUPPORTED:
        snprintf(out, cap, "connection to %s impossible: this Paho has no TLS - "
                 "use tcp:// or a Paho built with SSL", uri);
        return;
    case MQTTASYNC_OPERATION_INCOMPLETE:
        snprintf(out, cap, "connection to %s interrupted: the client was disconnected or "
                 "destroyed meanwhile - try again", uri);
        return;
    default:
        break;
    }
    if (code < 0 && describe_tls_reason(out, cap, uri, tls_reason))
        return;
    /* Paho's generic texts only repeat the code: leave them out, the advice matters. */
    if (paho_message && (strcmp(paho_message, "TCP/TLS connect failure") == 0 ||
                         strcmp(paho_message, "TCP connect completion failure") == 0))
        paho_message = NULL;
    if (paho_message && *paho_message)
        snprintf(detail, sizeof(detail), "%s, code %d", paho_message, code);
    else
        snprintf(detail, sizeof(detail), "code %d", code);
    if (tls)
        snprintf(out, cap, "connection to %s failed: no TCP or TLS session (%s) - check host, "
                 "port, that the broker runs, --cafile, --cert/--key and their dates", uri,
                 detail);
    else
        snprintf(out, cap, "connection to %s failed: the broker cannot be reached (%s) - "
                 "check host and port and that the broker runs", uri, detail);
}

/* ------------------------------------------------------------------ callbacks (Paho threads) */

/* Stamp and push; an event lost to a failed allocation is reported nowhere else, so the
   firmware would wait: its own time-outs (keep-alive, back-off) recover from that. */
static void push(struct sim_transport *t, struct sim_event *ev)
{
    if (!ev)
        return;
    ev->generation = atomic_load_explicit(&t->generation, memory_order_relaxed);
    sim_loop_push(t->loop, ev);
}

static void on_connected_common(struct sim_transport *t, bool session_present)
{
    release_slot(t);
    struct sim_event *ev = sim_event_new(SIM_EV_CONNECTED, t->target, NULL, NULL, 0, NULL);

    if (ev)
        ev->session_present = session_present;
    push(t, ev);
}

/* OpenSSL's line "TID:error:CODE:LIBRARY:FUNCTION:REASON:FILE:LINE:..." -> "REASON",
   lower case, printable, into out ("" when the line has no such field). */
static void ssl_reason_of(const char *line, size_t len, char *out, size_t cap)
{
    const char *end = line + len;
    const char *p = NULL;
    size_t n = 0;

    for (const char *q = line; q + 6 <= end; q++) {
        if (memcmp(q, "error:", 6) == 0) {
            p = q + 6;
            break;
        }
    }
    for (int colons = 0; p && p < end && colons < 3; p++)
        if (*p == ':')
            colons++;
    while (p && p < end && *p != ':' && *p != '\n' && n + 1 < cap) {
        unsigned char c = (unsigned char)*p++;
        out[n++] = isprint(c) ? (char)tolower(c) : ' ';
    }
    out[n] = '\0';
}

/* Paho's thread: OpenSSL prints its error queue here, oldest (the cause) first. Returns
   1 so OpenSSL goes on with the next line. */
static int cb_ssl_error(const char *str, size_t len, void *u)
{
    struct sim_transport *t = u;
    char reason[sizeof(t->tls_reason)];

    if (!t || !str)
        return 1;
    ssl_reason_of(str, len, reason, sizeof(reason));
    if (!reason[0])
        return 1;
    pthread_mutex_lock(&t->tls_mu);
    if (!t->tls_reason[0])
        memcpy(t->tls_reason, reason, sizeof(reason));
    pthread_mutex_unlock(&t->tls_mu);
    return 1;
}

/* Take (and forget) the attempt's TLS reason; any thread. */
static void take_tls_reason(struct sim_transport *t, char *out, size_t cap)
{
    pthread_mutex_lock(&t->tls_mu);
    snprintf(out, cap, "%s", t->tls_reason);
    t->tls_reason[0] = '\0';
    pthread_mutex_unlock(&t->tls_mu);
}

static void on_connect_failed_common(struct sim_transport *t, int code, const char *msg)
{
    char words[SIM_WORDS_MAX];
    char tls_reason[sizeof(t->tls_reason)];
    struct sim_event *ev;

    release_slot(t);
    take_tls_reason(t, tls_reason, sizeof(tls_reason));
    sim_transport_describe_failure_tls(words, sizeof(words), t->uri, code, msg, tls_reason);
    ev = sim_event_new(SIM_EV_CONNECT_FAILED, t->target, NULL, NULL, 0, words);
    if (ev)
        ev->code = code > 0 ? code : FW_ERR_IO;
    push(t, ev);
}

static void cb_connect_ok(void *ctx, MQTTAsync_successData *r)
{
    on_connected_common(ctx, r && r->alt.connect.sessionPresent);
}

static void cb_connect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
    on_connected_common(ctx, r && r->alt.connect.sessionPresent);
}

static void cb_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
    on_connect_failed_common(ctx, r ? r->code : MQTTASYNC_FAILURE, r ? r->message : NULL);
}

static void cb_connect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    int code = MQTTASYNC_FAILURE;

    if (r) {
        /* A CONNACK refusal carries the broker's reason code; a TCP/TLS failure only
           Paho's negative code. */
        code = (int)r->reasonCode >= 0x80 ? (int)r->reasonCode : r->code;
    }
    on_connect_failed_common(ctx, code, r ? r->message : NULL);
}

static void cb_connection_lost(void *ctx, char *cause)
{
    struct sim_transport *t = ctx;
    char words[SIM_WORDS_MAX];

    snprintf(words, sizeof(words), "connection to %s lost: %s", t->uri,
             cause && *cause ? cause : "network failure, keep-alive time-out or broker gone");
    push(t, sim_event_new(SIM_EV_CONNECTION_LOST, t->target, NULL, NULL, 0, words));
}

static void cb_disconnected5(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    struct sim_transport *t = ctx;
    const struct reason *r = find_reason(reason5, sizeof(reason5) / sizeof(reason5[0]), rc);
    char words[SIM_WORDS_MAX];

    (void)props;
    snprintf(words, sizeof(words), "connection to %s closed by the broker: %s (reason code "
             "0x%02X)", t->uri, r ? r->what : "no reason given", (unsigned)rc);
    push(t, sim_event_new(SIM_EV_CONNECTION_LOST, t->target, NULL, NULL, 0, words));
}

static int cb_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct sim_transport *t = ctx;
    struct sim_event *ev;
    char small[256];
    char *name = topic;

    /* topic_len 0 means NUL-terminated; otherwise it may hold NULs and is not terminated. */
    if (topic_len > 0 && topic[topic_len] != '\0') {
        name = (size_t)topic_len < sizeof(small) ? small : malloc((size_t)topic_len + 1);
        if (!name)
            return 0; /* keep it: Paho offers it again */
        memcpy(name, topic, (size_t)topic_len);
        name[topic_len] = '\0';
    }
    ev = sim_event_new(SIM_EV_MESSAGE, t->target, name, m->payload ? m->payload : "",
                       m->payloadlen > 0 ? (size_t)m->payloadlen : 0, NULL);
    if (name != topic && name != small)
        free(name);
    if (!ev)
        return 0; /* out of memory: Paho keeps the message and offers it again */
    ev->qos = m->qos;
    ev->dup = m->dup != 0;
    ev->retain = m->retained != 0;
    push(t, ev);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_published_common(struct sim_transport *t, MQTTAsync_token token)
{
    struct sim_event *ev = sim_event_new(SIM_EV_PUBLISHED, t->target, NULL, NULL, 0, NULL);

    if (ev)
        ev->token = (uint32_t)token;
    push(t, ev);
}

static void cb_published(void *ctx, MQTTAsync_successData *r)
{
    on_published_common(ctx, r ? r->token : 0);
}

static void cb_published5(void *ctx, MQTTAsync_successData5 *r)
{
    on_published_common(ctx, r ? r->token : 0);
}

static void on_publish_failed_common(struct sim_transport *t, MQTTAsync_token token, int code)
{
    struct sim_event *ev = sim_event_new(SIM_EV_PUBLISH_REFUSED, t->target, NULL, NULL, 0,
                                         NULL);

    if (ev) {
        ev->token = (uint32_t)token;
        ev->code = code;
    }
    push(t, ev);
}

static void cb_publish_failed(void *ctx, MQTTAsync_failureData *r)
{
    /* 3.1.1 has no refusal on the wire: this is Paho losing the publish. */
    on_publish_failed_common(ctx, r ? r->token : 0, FW_ERR_IO);
}

static void cb_publish_failed5(void *ctx, MQTTAsync_failureData5 *r)
{
    int reason = r ? (int)r->reasonCode : 0;

    on_publish_failed_common(ctx, r ? r->token : 0, reason >= 0x80 ? reason : FW_ERR_IO);
}

/* SUBACK: code = the granted QoS (0..2), the broker's refusal (>= 0x80), or a negative
   fw_err when Paho lost the request. Paho reports a refusal through onFailure or, in
   some versions, as a granted "QoS" of 0x80 through onSuccess: both end up the same. */
static void on_subscribed_common(struct sim_transport *t, MQTTAsync_token token, int code)
{
    struct sim_event *ev = sim_event_new(SIM_EV_SUBSCRIBED, t->target, NULL, NULL, 0, NULL);

    if (ev) {
        ev->token = (uint32_t)token;
        ev->code = code;
    }
    push(t, ev);
}

static void cb_subscribed(void *ctx, MQTTAsync_successData *r)
{
    on_subscribed_common(ctx, r ? r->token : 0, r ? r->alt.qos : FW_ERR_IO);
}

static void cb_subscribed5(void *ctx, MQTTAsync_successData5 *r)
{
    /* For one filter the SUBACK's reason code is the granted QoS (0..2) or a refusal. */
    on_subscribed_common(ctx, r ? r->token : 0, r ? (int)r->reasonCode : FW_ERR_IO);
}

static void cb_subscribe_failed(void *ctx, MQTTAsync_failureData *r)
{
    int code = r && r->code == MQTT_BAD_SUBSCRIBE ? MQTT_BAD_SUBSCRIBE : FW_ERR_IO;

    on_subscribed_common(ctx, r ? r->token : 0, code);
}

static void cb_subscribe_failed5(void *ctx, MQTTAsync_failureData5 *r)
{
    int reason = r ? (int)r->reasonCode : 0;

    on_subscribed_common(ctx, r ? r->token : 0, reason >= 0x80 ? reason : FW_ERR_IO);
}

static void cb_disconnect_done(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    atomic_store(&((struct sim_transport *)ctx)->disconnecting, false);
}

static void cb_disconnect_done5(void *ctx, MQTTAsync_successData5 *r)
{
    (void)r;
    atomic_store(&((struct sim_transport *)ctx)->disconnecting, false);
}

static void cb_disconnect_fail(void *ctx, MQTTAsync_failureData *r)
{
    (void)r;
    atomic_store(&((struct sim_transport *)ctx)->disconnecting, false);
}

static void cb_disconnect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)r;
    atomic_store(&((struct sim_transport *)ctx)->disconnecting, false);
}

/* ------------------------------------------------------------------ owner side */

static char *dup_or_null(const char *s, bool *ok)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

int sim_transport_create(const struct sim_transport_opts *opts, const char *client_id,
                         struct sim_loop *loop, struct sim_loop_target *target,
                         struct sim_transport **out)
{
    struct sim_transport *t;
    bool ok = true;

    *out = NULL;
    if (!opts || !opts->uri || !client_id || !*client_id || !loop || !target)
        return SIM_ERR_INVAL;
    if (strncmp(opts->uri, "tcp://", 6) != 0 && strncmp(opts->uri, "ssl://", 6) != 0 &&
        strncmp(opts->uri, "mqtt://", 7) != 0 && strncmp(opts->uri, "mqtts://", 8) != 0)
        return SIM_ERR_INVAL;
    if (opts->mqtt_version != 3 && opts->mqtt_version != 4 && opts->mqtt_version != 5)
        return SIM_ERR_INVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return SIM_ERR_NOMEM;
    pthread_mutex_init(&t->tls_mu, NULL);
    t->loop = loop;
    t->target = target;
    t->mqtt_version = opts->mqtt_version == 5 ? 5 : 3;
    t->session_expiry_s = opts->session_expiry_s ? opts->session_expiry_s : 3600;
    t->connect_timeout_s = opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 10;
    t->insecure = opts->insecure;
    atomic_init(&t->generation, 0);
    atomic_init(&t->disconnecting, false);
    atomic_init(&t->connect_outstanding, false);
    t->uri = dup_or_null(opts->uri, &ok);
    t->client_id = dup_or_null(client_id, &ok);
    t->username = dup_or_null(opts->username, &ok);
    t->password = dup_or_null(opts->password, &ok);
    t->cafile = dup_or_null(opts->cafile, &ok);
    t->certfile = dup_or_null(opts->certfile, &ok);
    t->keyfile = dup_or_null(opts->keyfile, &ok);
    if (!ok) {
        sim_transport_destroy(t);
        return SIM_ERR_NOMEM;
    }
    *out = t;
    return SIM_OK;
}

/* Create the Paho handle (once; again after a power cut). 0 or an MQTTASYNC_* code. */
static int ensure_client(struct sim_transport *t)
{
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    int rc;

    if (t->client)
        return MQTTASYNC_SUCCESS;
    co.MQTTVersion = t->mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    rc = sim_paho_create(&t->client, t->uri, t->client_id, &co);
    if (rc != MQTTASYNC_SUCCESS)
        return rc;
    rc = MQTTAsync_setCallbacks(t->client, t, cb_connection_lost, cb_message, NULL);
    if (rc == MQTTASYNC_SUCCESS && t->mqtt_version == 5)
        rc = MQTTAsync_setDisconnected(t->client, t, cb_disconnected5);
    if (rc != MQTTASYNC_SUCCESS) {
        MQTTAsync_destroy(&t->client);
        t->client = NULL;
    }
    return rc;
}

/* Wait (owner thread, teardown only) for a clean disconnect to finish, so that the
   "offline" publish and the DISCONNECT queued before it are on the wire before the handle
   goes: MQTTAsync_destroy drops queued commands. */
static void wait_disconnect(struct sim_transport *t, int timeout_ms)
{
    struct timespec ts = { 0, 2 * 1000 * 1000 };

    for (int waited = 0; atomic_load(&t->disconnecting) && waited < timeout_ms; waited += 2)
        nanosleep(&ts, NULL);
}

void sim_transport_destroy(struct sim_transport *t)
{
    if (!t)
        return;
    if (t->client) {
        wait_disconnect(t, 3000);
        MQTTAsync_destroy(&t->client);
    }
    release_slot(t); /* no callback comes after MQTTAsync_destroy */
    free(t->pending);
    free(t->uri);
    free(t->client_id);
    free(t->username);
    if (t->password) {
        /* Do not leave the secret in freed heap memory. */
        volatile char *p = t->password;
        while (*p)
            *p++ = '\0';
        free(t->password);
    }
    free(t->cafile);
    free(t->certfile);
    free(t->keyfile);
    pthread_mutex_destroy(&t->tls_mu);
    free(t);
}

/* Hand a connect to Paho now (a throttle slot is ours). */
static int issue_connect(struct sim_transport *t, const struct fw_connect_params *p)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions *o;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty prop;
    int rc;

    atomic_fetch_add(&g_connects_in_flight, 1);
    atomic_store(&t->connect_outstanding, true);
    take_tls_reason(t, NULL, 0); /* a reason left from an earlier attempt is not this one's */
    rc = ensure_client(t);
    if (rc != MQTTASYNC_SUCCESS)
        goto refused;
    /* A loss may have raced a clean disconnect; whatever Paho thinks, start afresh. */
    t->connected = false;
    if (t->mqtt_version == 5) {
        o = &co5;
        o->MQTTVersion = MQTTVERSION_5;
        o->cleanstart = p->clean_session;
        if (!p->clean_session) {
            prop.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
            prop.value.integer4 = t->session_expiry_s;
            MQTTProperties_add(&props, &prop);
            o->connectProperties = &props;
        }
        o->onSuccess5 = cb_connect_ok5;
        o->onFailure5 = cb_connect_fail5;
    } else {
        o = &co;
        o->MQTTVersion = MQTTVERSION_3_1_1; /* not DEFAULT: no silent fall-back to 3.1 */
        o->cleansession = p->clean_session;
        o->onSuccess = cb_connect_ok;
        o->onFailure = cb_connect_fail;
    }
    o->context = t;
    o->keepAliveInterval = p->keepalive_s;
    o->connectTimeout = t->connect_timeout_s;
    o->automaticReconnect = 0; /* the firmware owns reconnects */
    o->username = t->username;
    o->password = t->password;
    if (p->will_topic) {
        will.struct_version = 1;
        will.topicName = p->will_topic;
        will.payload.data = p->will_payload;
        will.payload.len = (int)p->will_len;
        will.qos = p->will_qos;
        will.retained = p->will_retain;
        o->will = &will;
    }
    if (sim_paho_tls(o, &ssl, t->uri, t->cafile, t->certfile, t->keyfile, !t->insecure)) {
        ssl.ssl_error_cb = cb_ssl_error; /* struct_version 5 of 1.3.12 has it (>= 3) */
        ssl.ssl_error_context = t;
    }
    rc = MQTTAsync_connect(t->client, o);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS)
        goto refused;
    return FW_OK;

refused:
    /* Report it like any other failed attempt so that the firmware gets the words (it
       treats our 0 as "attempt started" and waits for the outcome). */
    on_connect_failed_common(t, rc, NULL);
    return FW_OK;
}

int sim_transport_connect(struct sim_transport *t, const struct fw_connect_params *p)
{
    struct pending_connect *pc;
    size_t tlen;

    if (!t || !p)
        return FW_ERR_INVAL;
    /* Paho silently drops a connect issued while its clean disconnect is still running
       (seen with 1.3.12: no callback at all). A disconnect only precedes a connect when a
       device is powered on again right after a stop, so a short bounded wait here is
       cheaper than queueing the connect. */
    wait_disconnect(t, 3000);
    free(t->pending); /* a newer request replaces a waiting one */
    t->pending = NULL;
    if (atomic_load(&g_connects_in_flight) < atomic_load(&g_connect_limit))
        return issue_connect(t, p);
    tlen = p->will_topic ? strlen(p->will_topic) + 1 : 0;
    pc = malloc(sizeof(*pc) + p->will_len + tlen);
    if (!pc)
        return FW_ERR_IO;
    pc->clean_session = p->clean_session;
    pc->keepalive_s = p->keepalive_s;
    pc->will_qos = p->will_qos;
    pc->will_retain = p->will_retain;
    pc->will_len = p->will_topic ? p->will_len : 0;
    if (pc->will_len)
        memcpy(pc->will_payload, p->will_payload, pc->will_len);
    pc->will_topic = NULL;
    if (tlen) {
        pc->will_topic = pc->will_payload + pc->will_len;
        memcpy(pc->will_topic, p->will_topic, tlen);
    }
    t->pending = pc;
    return FW_OK;
}

void sim_transport_poll(struct sim_transport *t)
{
    struct fw_connect_params p;
    struct pending_connect *pc = t->pending;

    if (!pc || atomic_load(&g_connects_in_flight) >= atomic_load(&g_connect_limit))
        return;
    t->pending = NULL;
    p = (struct fw_connect_params){
        .client_id = t->client_id,
        .clean_session = pc->clean_session,
        .keepalive_s = pc->keepalive_s,
        .will_topic = pc->will_topic,
        .will_payload = pc->will_payload,
        .will_len = pc->will_len,
        .will_qos = pc->will_qos,
        .will_retain = pc->will_retain,
    };
    (void)issue_connect(t, &p);
    free(pc);
}

int sim_transport_publish(struct sim_transport *t, const struct fw_publish *msg,
                          uint32_t *token)
{
    MQTTAsync_message m = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc;

    if (token)
        *token = 0;
    if (!t || !msg || !msg->topic || msg->qos < 0 || msg->qos > 2 || msg->len > INT32_MAX)
        return FW_ERR_INVAL;
    if (!t->client || !t->connected)
        return FW_ERR_OFFLINE;
    m.payload = (void *)msg->payload;
    m.payloadlen = (int)msg->len;
    m.qos = msg->qos;
    m.retained = msg->retain;
    if (msg->qos > 0) {
        ro.context = t;
        if (t->mqtt_version == 5) {
            ro.onSuccess5 = cb_published5;
            ro.onFailure5 = cb_publish_failed5;
        } else {
            ro.onSuccess = cb_published;
            ro.onFailure = cb_publish_failed;
        }
    }
    rc = MQTTAsync_sendMessage(t->client, msg->topic, &m, &ro);
    if (rc == MQTTASYNC_DISCONNECTED)
        return FW_ERR_OFFLINE;
    if (rc == MQTTASYNC_BAD_QOS || rc == MQTTASYNC_BAD_UTF8_STRING ||
        rc == MQTTASYNC_NULL_PARAMETER)
        return FW_ERR_INVAL;
    if (rc != MQTTASYNC_SUCCESS)
        return FW_ERR_IO; /* e.g. MQTTASYNC_MAX_MESSAGES_INFLIGHT */
    if (token && msg->qos > 0)
        *token = (uint32_t)ro.token;
    return FW_OK;
}

int sim_transport_subscribe(struct sim_transport *t, const char *filter, int qos,
                            uint32_t *token)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc;

    if (token)
        *token = 0;
    if (!t || !filter || qos < 0 || qos > 2)
        return FW_ERR_INVAL;
    if (!t->client || !t->connected)
        return FW_ERR_OFFLINE;
    ro.context = t;
    if (t->mqtt_version == 5) {
        ro.onSuccess5 = cb_subscribed5;
        ro.onFailure5 = cb_subscribe_failed5;
    } else {
        ro.onSuccess = cb_subscribed;
        ro.onFailure = cb_subscribe_failed;
    }
    rc = MQTTAsync_subscribe(t->client, filter, qos, &ro);
    if (rc == MQTTASYNC_DISCONNECTED)
        return FW_ERR_OFFLINE;
    if (rc != MQTTASYNC_SUCCESS)
        return FW_ERR_IO;
    if (token)
        *token = (uint32_t)ro.token;
    return FW_OK;
}

void sim_transport_disconnect(struct sim_transport *t)
{
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_disconnectOptions *o;

    if (!t)
        return;
    free(t->pending); /* a connect still waiting for a slot is simply not made */
    t->pending = NULL;
    if (!t->client)
        return;
    t->connected = false;
    if (t->mqtt_version == 5) {
        o = &d5;
        o->onSuccess5 = cb_disconnect_done5;
        o->onFailure5 = cb_disconnect_fail5;
    } else {
        o = &d;
        o->onSuccess = cb_disconnect_done;
        o->onFailure = cb_disconnect_fail;
    }
    o->context = t;
    o->timeout = 1000; /* let in-flight QoS 1 ("offline") complete first */
    atomic_store(&t->disconnecting, true);
    if (MQTTAsync_disconnect(t->client, o) != MQTTASYNC_SUCCESS)
        atomic_store(&t->disconnecting, false); /* not connected: nothing to wait for */
}

void sim_transport_power_cut(struct sim_transport *t)
{
    if (!t)
        return;
    free(t->pending);
    t->pending = NULL;
    if (!t->client)
        return;
    /* Events already queued belong to the old connection: the owner drops them. */
    atomic_fetch_add(&t->generation, 1);
    MQTTAsync_destroy(&t->client);
    release_slot(t);
    t->client = NULL;
    t->connected = false;
    atomic_store(&t->disconnecting, false);
}

bool sim_transport_connected(const struct sim_transport *t)
{
    return t && t->connected;
}

bool sim_transport_handle_event(struct sim_transport *t, const struct sim_event *ev)
{
    if (ev->generation != atomic_load(&t->generation))
        return false;
    switch (ev->kind) {
    case SIM_EV_CONNECTED:
        t->connected = true;
        return true;
    case SIM_EV_CONNECTION_LOST:
        /* Paho may report one loss twice (MQTT 5: DISCONNECT from the broker, then the
           socket closing); pass on the first only. */
        if (!t->connected)
            return false;
        t->connected = false;
        /* A fresh Paho handle after every loss: Paho 1.3.12 re-sends its own in-flight
           QoS 1 publishes on reconnect from freed memory (wrong topic / payload on the
           wire); the firmware re-sends its outbox itself, with the same idempotency key. */
        if (t->client) {
            atomic_fetch_add(&t->generation, 1);
            MQTTAsync_destroy(&t->client);
            release_slot(t);
            t->client = NULL;
        }
        return true;
    case SIM_EV_CONNECT_FAILED:
        t->connected = false;
        return true;
    default:
        return true;
    }
}

bool sim_transport_disconnecting(const struct sim_transport *t)
{
    return t && atomic_load(&((struct sim_transport *)t)->disconnecting);
}

const char *sim_transport_uri(const struct sim_transport *t)
{
    return t->uri;
}

int sim_transport_mqtt_version(const struct sim_transport *t)
{
    return t->mqtt_version;
}
