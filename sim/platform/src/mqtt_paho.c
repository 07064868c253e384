/*
 * mqtt_paho.c - the MQTT edge on Eclipse Paho MQTTAsync (sim/mqtt.h, kind SIM_MQTT_PAHO).
 *
 * Paho runs its own send and receive threads and calls back on one of them while holding
 * its library mutex, so the handlers of sim/mqtt.h run there. Paho's costs that this file
 * does not hide (docs/performance.md): every client of a process shares Paho's command
 * queue and socket list; TCP_NODELAY cannot be set (Paho has no option); and Paho 1.3.12's
 * receive thread polls for up to 1 s over the sockets it knew when the poll began, so in a
 * quiet process a new connect waits up to ~2 s, and a request (a SUBSCRIBE after CONNACK,
 * a publish) waits for the poll to end: about 1 s a step, measured in a capture. Incoming
 * traffic ends the poll, so a busy process does not pay it. Paho's API has no way to end
 * the poll: a client that publishes to wake it waits for the same poll (tried).
 *
 * Library lifetime: Paho 1.3.12 tears itself down when the last client of a process is
 * destroyed (MQTTAsync_destroy -> MQTTAsync_terminate) without waiting for its threads,
 * which then write into freed trace memory (paho.mqtt.c #323, #1669). One idle client,
 * never connected and never destroyed, keeps that tear-down from ever running.
 *
 * A fresh Paho handle after every loss, unless keep_session_state asks to keep it for a
 * persistent session: an earlier transport saw Paho 1.3.12 re-send its in-flight QoS 1
 * publishes on reconnect from freed memory (wrong topic or payload on the wire,
 * reconnect_storm, 2026-11-25), so by default the next connect after a loss starts from a
 * new handle and the callers re-send what they need (the firmware its outbox, with the
 * same idempotency key). QoS 2 exactly once needs the handshake completed with the same
 * packet id, so devices at QoS 2 keep the handle; the whole scenario library, the
 * 1,000-device reconnect storm included, passed with it kept (also under ASan).
 *
 * Locking: `swap` is a read-write lock around the handle pointer. Calls that use the
 * handle hold it for reading (a handler may publish: Paho allows that); only the connect
 * that replaces a handle and destroy take it for writing, and they call MQTTAsync_destroy
 * after releasing it, so a handler that publishes meanwhile cannot deadlock with them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#include "mqtt_internal.h"
#include "sim/err.h"

#define PAHO_SUBS_TRACKED 16 /* SUBSCRIBEs of one client awaiting their SUBACK */
#define PAHO_MAX_QUEUED 1000000 /* publishes one client may have in Paho's command queue */

struct paho_client {
    struct sim_mqtt base;
    MQTTAsync client;                /* NULL before the first connect (under swap) */
    pthread_rwlock_t swap;
    struct sim_mqtt_handlers h;
    void *ctx;
    char *client_id, *username, *password, *cafile, *certfile, *keyfile;
    uint32_t session_expiry_s;
    int connect_timeout_s;
    int max_inflight;
    bool insecure;
    atomic_bool connected, connecting, disconnecting;
    atomic_bool fresh_needed;        /* a connection was lost: next connect, new handle */
    bool keep_session_state;         /* keep the handle across a loss of a persistent session */
    atomic_bool persistent;          /* the connection asked for a persistent session */
    pthread_mutex_t mu;              /* tls_reason, sub_n */
    char tls_reason[64];             /* OpenSSL's reason for this attempt's TLS failure */
    /* The filter counts of SUBSCRIBEs not yet answered, oldest first: Paho's 3.1.1
       onSuccess gives a list of granted QoS without its length, and SUBACKs come back in
       the order of the SUBSCRIBEs. */
    int sub_n[PAHO_SUBS_TRACKED];
    unsigned sub_head, sub_len;
};

static atomic_int paho__clients;

/* ------------------------------------------------------------------ library lifetime */

static pthread_once_t paho__once = PTHREAD_ONCE_INIT;
static MQTTAsync paho__idle; /* written once, under paho__once */

static void paho__make_idle(void)
{
    /* OpenSSL (3.x) initialises itself when a TLS connection first needs it; Paho's own
       initialisation (all algorithms, all error strings) would make every fleet worker
       touch megabytes of libcrypto even when no device speaks TLS. */
    MQTTAsync_init_options init = MQTTAsync_init_options_initializer;

    init.do_openssl_init = 0;
    MQTTAsync_global_init(&init);
    /* Never connected: the address is only parsed. MQTTAsync_create, unlike
       ..._createWithOptions, also seeds rand() for Paho's reconnect jitter. */
    if (MQTTAsync_create(&paho__idle, "tcp://127.0.0.1:1", "scansim-paho-idle",
                         MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTASYNC_SUCCESS)
        paho__idle = NULL; /* then clients work, with Paho's tear-down */
}

static struct paho_client *paho__of(const struct sim_mqtt *c)
{
    return (struct paho_client *)c;
}

/* ------------------------------------------------------------------ callbacks (Paho thread) */

static void paho__on_connected(struct paho_client *p, bool session_present)
{
    atomic_store(&p->connecting, false);
    atomic_store(&p->connected, true);
    if (p->h.connected)
        p->h.connected(p->ctx, session_present);
}

static void paho__cb_connect_ok(void *ctx, MQTTAsync_successData *r)
{
    atomic_store(&((struct paho_client *)ctx)->base.receive_maximum, 0);
    paho__on_connected(ctx, r && r->alt.connect.sessionPresent);
}

static void paho__cb_connect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
    struct paho_client *p = ctx;
    int rm = 0;

    if (r && MQTTProperties_hasProperty(&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM))
        rm = MQTTProperties_getNumericValue(&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
    atomic_store(&p->base.receive_maximum, rm > 0 ? rm : 0);
    paho__on_connected(p, r && r->alt.connect.sessionPresent);
}

/* Paho's generic texts only repeat the code; a few codes deserve their own words. */
static const char *paho__detail(int code, const char *msg, char *buf, size_t cap)
{
    switch (code) {
    case MQTTASYNC_SSL_NOT_SUPPORTED:
        return "this Paho has no TLS";
    case MQTTASYNC_OPERATION_INCOMPLETE:
        return "interrupted: the client was disconnected or destroyed meanwhile";
    default:
        break;
    }
    if (msg && (strcmp(msg, "TCP/TLS connect failure") == 0 ||
                strcmp(msg, "TCP connect completion failure") == 0))
        msg = NULL;
    if (msg && *msg)
        snprintf(buf, cap, "%s, code %d", msg, code);
    else
        snprintf(buf, cap, "code %d", code);
    return buf;
}

static void paho__on_connect_failed(struct paho_client *p, int code, const char *msg)
{
    char words[SIM_MQTT_WORDS_MAX], detail[96], tls[sizeof(p->tls_reason)];

    pthread_mutex_lock(&p->mu);
    memcpy(tls, p->tls_reason, sizeof(tls));
    p->tls_reason[0] = '\0';
    pthread_mutex_unlock(&p->mu);
    if (code < 0)
        msg = paho__detail(code, msg, detail, sizeof(detail));
    sim_mqtt_describe_failure(words, sizeof(words), p->base.uri, code, msg, tls);
    atomic_store(&p->connecting, false);
    if (p->h.connect_failed)
        p->h.connect_failed(p->ctx, code > 0 ? code : SIM_ERR_OFFLINE, words);
}

static void paho__cb_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
    paho__on_connect_failed(ctx, r ? r->code : MQTTASYNC_FAILURE, r ? r->message : NULL);
}

static void paho__cb_connect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    /* A CONNACK refusal carries the broker's reason code; a TCP/TLS failure only Paho's
       negative code. */
    int code = !r ? MQTTASYNC_FAILURE : (int)r->reasonCode >= 0x80 ? (int)r->reasonCode
                                                                    : r->code;

    paho__on_connect_failed(ctx, code, r ? r->message : NULL);
}

/* OpenSSL prints its error queue here, oldest (the cause) first; 1 = go on. */
static int paho__cb_ssl_error(const char *str, size_t len, void *u)
{
    struct paho_client *p = u;
    char reason[sizeof(p->tls_reason)];

    if (!p || !str)
        return 1;
    sim_mqtt__ssl_reason_of(str, len, reason, sizeof(reason));
    pthread_mutex_lock(&p->mu);
    if (reason[0] && !p->tls_reason[0])
        memcpy(p->tls_reason, reason, sizeof(reason));
    pthread_mutex_unlock(&p->mu);
    return 1;
}

/* One report per lost connection: MQTT 5 may say it twice (the broker's DISCONNECT, then
   the socket closing). */
static void paho__lost(struct paho_client *p, int reason5, const char *cause)
{
    char words[SIM_MQTT_WORDS_MAX];

    if (!atomic_exchange(&p->connected, false))
        return;
    atomic_store(&p->fresh_needed, !(p->keep_session_state && atomic_load(&p->persistent)));
    sim_mqtt__describe_loss(words, sizeof(words), p->base.uri, reason5, cause);
    if (p->h.connection_lost)
        p->h.connection_lost(p->ctx, words);
}

static void paho__cb_connection_lost(void *ctx, char *cause)
{
    paho__lost(ctx, 0, cause);
}

static void paho__cb_disconnected5(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    (void)props;
    paho__lost(ctx, (int)rc >= 0x80 ? (int)rc : 0x80, NULL);
}

static int paho__cb_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct paho_client *p = ctx;
    struct sim_mqtt_message msg;
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
    msg = (struct sim_mqtt_message){
        .topic = name,
        .payload = m->payload ? m->payload : "",
        .len = m->payloadlen > 0 ? (size_t)m->payloadlen : 0,
        .qos = m->qos,
        .dup = m->dup != 0,
        .retain = m->retained != 0,
    };
    if (p->h.message)
        p->h.message(p->ctx, &msg);
    if (name != topic && name != small)
        free(name);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void paho__published(struct paho_client *p, MQTTAsync_token token, int code)
{
    if (p->h.published)
        p->h.published(p->ctx, (int)token, code);
}

static void paho__cb_published(void *ctx, MQTTAsync_successData *r)
{
    paho__published(ctx, r ? r->token : 0, 0);
}

static void paho__cb_published5(void *ctx, MQTTAsync_successData5 *r)
{
    paho__published(ctx, r ? r->token : 0, 0);
}

static void paho__cb_publish_failed(void *ctx, MQTTAsync_failureData *r)
{
    /* 3.1.1 has no refusal on the wire: this is Paho losing the publish. */
    paho__published(ctx, r ? r->token : 0, SIM_ERR_OFFLINE);
}

static void paho__cb_publish_failed5(void *ctx, MQTTAsync_failureData5 *r)
{
    int reason = r ? (int)r->reasonCode : 0;

    paho__published(ctx, r ? r->token : 0, reason >= 0x80 ? reason : SIM_ERR_OFFLINE);
}

/* How many filters the oldest unanswered SUBSCRIBE had (and forget it). */
static int paho__sub_count(struct paho_client *p, MQTTAsync_token token)
{
    int n = 1;

    (void)token;
    pthread_mutex_lock(&p->mu);
    if (p->sub_len) {
        n = p->sub_n[p->sub_head];
        p->sub_head = (p->sub_head + 1) % PAHO_SUBS_TRACKED;
        p->sub_len--;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Room for n codes: small on the stack, more (the backend subscribes to hundreds of
   filters at once) on the heap; NULL when out of memory. Free with paho__codes_free. */
#define PAHO_CODES_ON_STACK 64
static int *paho__codes(int n, int *stack)
{
    return n <= PAHO_CODES_ON_STACK ? stack : malloc((size_t)n * sizeof(int));
}

static void paho__codes_free(int *codes, int *stack)
{
    if (codes != stack)
        free(codes);
}

/* Every filter of a SUBSCRIBE of n filters gets the same code (a refusal or a loss). */
static void paho__subscribed_n(struct paho_client *p, MQTTAsync_token token, int n, int code)
{
    int stack[PAHO_CODES_ON_STACK], *codes = paho__codes(n, stack);

    if (!codes) {
        codes = stack;
        n = PAHO_CODES_ON_STACK; /* out of memory: the first ones at least */
    }
    for (int i = 0; i < n; i++)
        codes[i] = code;
    if (p->h.subscribed)
        p->h.subscribed(p->ctx, (int)token, n, codes);
    paho__codes_free(codes, stack);
}

static void paho__subscribed_all(struct paho_client *p, MQTTAsync_token token, int code)
{
    paho__subscribed_n(p, token, paho__sub_count(p, token), code);
}

static void paho__cb_subscribed(void *ctx, MQTTAsync_successData *r)
{
    struct paho_client *p = ctx;
    int n = paho__sub_count(p, r ? r->token : 0);
    int stack[PAHO_CODES_ON_STACK], *codes = paho__codes(n, stack);

    if (!r || !codes) {
        paho__codes_free(codes, stack);
        paho__subscribed_n(p, r ? r->token : 0, n, SIM_ERR_OFFLINE);
        return;
    }
    for (int i = 0; i < n; i++)
        codes[i] = n == 1 ? r->alt.qos : r->alt.qosList ? r->alt.qosList[i] : 0x80;
    if (p->h.subscribed)
        p->h.subscribed(p->ctx, (int)r->token, n, codes);
    paho__codes_free(codes, stack);
}

static void paho__cb_subscribed5(void *ctx, MQTTAsync_successData5 *r)
{
    struct paho_client *p = ctx;
    int n = paho__sub_count(p, r ? r->token : 0);
    int stack[PAHO_CODES_ON_STACK], *codes = paho__codes(n, stack);

    if (!r || !codes) {
        paho__codes_free(codes, stack);
        paho__subscribed_n(p, r ? r->token : 0, n, SIM_ERR_OFFLINE);
        return;
    }
    /* One filter: the SUBACK's code is reasonCode (alt.sub is only filled for several). */
    for (int i = 0; i < n; i++)
        codes[i] = n == 1 || !r->alt.sub.reasonCodes || i >= r->alt.sub.reasonCodeCount
                       ? (int)r->reasonCode
                       : (int)r->alt.sub.reasonCodes[i];
    if (p->h.subscribed)
        p->h.subscribed(p->ctx, (int)r->token, n, codes);
    paho__codes_free(codes, stack);
}

static void paho__cb_subscribe_failed(void *ctx, MQTTAsync_failureData *r)
{
    int code = r && r->code == MQTT_BAD_SUBSCRIBE ? 0x80 : SIM_ERR_OFFLINE;

    paho__subscribed_all(ctx, r ? r->token : 0, code);
}

static void paho__cb_subscribe_failed5(void *ctx, MQTTAsync_failureData5 *r)
{
    int reason = r ? (int)r->reasonCode : 0;

    paho__subscribed_all(ctx, r ? r->token : 0, reason >= 0x80 ? reason : SIM_ERR_OFFLINE);
}

static void paho__disconnect_done(struct paho_client *p)
{
    atomic_store(&p->connected, false);
    if (atomic_exchange(&p->disconnecting, false) && p->h.disconnected)
        p->h.disconnected(p->ctx);
}

static void paho__cb_disconnect_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    paho__disconnect_done(ctx);
}

static void paho__cb_disconnect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
    (void)r;
    paho__disconnect_done(ctx);
}

static void paho__cb_disconnect_fail(void *ctx, MQTTAsync_failureData *r)
{
    (void)r;
    paho__disconnect_done(ctx);
}

static void paho__cb_disconnect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
    (void)r;
    paho__disconnect_done(ctx);
}

/* ------------------------------------------------------------------ create / destroy */

static int paho__create(const struct sim_mqtt_opts *o, const struct sim_mqtt_handlers *h,
                        void *ctx, struct sim_mqtt **out)
{
    struct paho_client *p;
    bool ok = true;

    /* MQTTAsync (1.3.12, and the releases after it) has no local address in its create
       or connect options, and redefining the C library's bind() is not our way: refused. */
    if (o->bind_address)
        return SIM_ERR_INVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return SIM_ERR_NOMEM;
    p->base.impl = &sim_mqtt__paho;
    p->base.kind = SIM_MQTT_PAHO;
    p->base.mqtt_version = o->mqtt_version;
    pthread_rwlock_init(&p->swap, NULL);
    pthread_mutex_init(&p->mu, NULL);
    p->h = *h;
    p->ctx = ctx;
    p->session_expiry_s = o->session_expiry_s;
    p->keep_session_state = o->version >= 3 && o->keep_session_state;
    p->connect_timeout_s = o->connect_timeout_s;
    p->max_inflight = o->max_inflight;
    p->insecure = o->insecure;
    p->base.uri = sim_mqtt__strdup(o->uri, &ok);
    p->client_id = sim_mqtt__strdup(o->client_id, &ok);
    p->username = sim_mqtt__strdup(o->username, &ok);
    p->password = sim_mqtt__strdup(o->password, &ok);
    p->cafile = sim_mqtt__strdup(o->cafile, &ok);
    p->certfile = sim_mqtt__strdup(o->certfile, &ok);
    p->keyfile = sim_mqtt__strdup(o->keyfile, &ok);
    atomic_fetch_add(&paho__clients, 1);
    if (!ok) {
        sim_mqtt__paho.destroy(&p->base);
        return SIM_ERR_NOMEM;
    }
    *out = &p->base;
    return SIM_OK;
}

/* Let a clean disconnect finish (up to timeout_ms), so that what was queued before it is
   on the wire: MQTTAsync_destroy drops queued commands. */
static void paho__wait_disconnect(struct paho_client *p, int timeout_ms)
{
    struct timespec ts = { 0, 2 * 1000 * 1000 };

    for (int waited = 0; atomic_load(&p->disconnecting) && waited < timeout_ms; waited += 2)
        nanosleep(&ts, NULL);
}

/* Take the handle out (under the write lock) and destroy it outside the lock. */
static void paho__drop_handle(struct paho_client *p)
{
    MQTTAsync old;

    pthread_rwlock_wrlock(&p->swap);
    old = p->client;
    p->client = NULL;
    pthread_rwlock_unlock(&p->swap);
    if (old)
        MQTTAsync_destroy(&old);
}

static void paho__destroy(struct sim_mqtt *c)
{
    struct paho_client *p = paho__of(c);

    paho__wait_disconnect(p, 3000);
    paho__drop_handle(p);
    free(p->base.uri);
    free(p->client_id);
    free(p->username);
    sim_mqtt__free_secret(p->password);
    free(p->cafile);
    free(p->certfile);
    free(p->keyfile);
    pthread_mutex_destroy(&p->mu);
    pthread_rwlock_destroy(&p->swap);
    atomic_fetch_sub(&paho__clients, 1);
    free(p);
}

/* A handle for the next connect: kept, or new when none or after a loss. */
static int paho__ensure_handle(struct paho_client *p)
{
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    MQTTAsync fresh = NULL;
    int rc;

    if (atomic_exchange(&p->fresh_needed, false)) {
        paho__drop_handle(p);
        pthread_mutex_lock(&p->mu);
        p->sub_len = 0; /* no SUBACK comes for the old handle's SUBSCRIBEs */
        pthread_mutex_unlock(&p->mu);
    }
    if (p->client)
        return MQTTASYNC_SUCCESS;
    pthread_once(&paho__once, paho__make_idle);
    co.MQTTVersion = p->base.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    /* Paho counts the publishes in its command queue against this even when connected
       (default 100): a burst from a backend would fail. Nothing is buffered while
       disconnected (sendWhileDisconnected stays 0). */
    co.maxBufferedMessages = PAHO_MAX_QUEUED;
    rc = MQTTAsync_createWithOptions(&fresh, p->base.uri, p->client_id,
                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS)
        return rc;
    rc = MQTTAsync_setCallbacks(fresh, p, paho__cb_connection_lost, paho__cb_message, NULL);
    if (rc == MQTTASYNC_SUCCESS && p->base.mqtt_version == 5)
        rc = MQTTAsync_setDisconnected(fresh, p, paho__cb_disconnected5);
    if (rc != MQTTASYNC_SUCCESS) {
        MQTTAsync_destroy(&fresh);
        return rc;
    }
    pthread_rwlock_wrlock(&p->swap);
    p->client = fresh;
    pthread_rwlock_unlock(&p->swap);
    return MQTTASYNC_SUCCESS;
}

/* ------------------------------------------------------------------ connect */

static void paho__fill_connect(struct paho_client *p, MQTTAsync_connectOptions *o,
                               const struct sim_mqtt_connect_params *cp,
                               MQTTAsync_willOptions *will, MQTTProperties *props)
{
    MQTTProperty prop;

    if (p->base.mqtt_version == 5) {
        o->MQTTVersion = MQTTVERSION_5;
        o->cleanstart = cp->clean_session;
        if (!cp->clean_session) {
            prop.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
            prop.value.integer4 = p->session_expiry_s;
            MQTTProperties_add(props, &prop);
            o->connectProperties = props;
        }
        o->onSuccess5 = paho__cb_connect_ok5;
        o->onFailure5 = paho__cb_connect_fail5;
    } else {
        o->MQTTVersion = MQTTVERSION_3_1_1; /* not DEFAULT: no silent fall-back to 3.1 */
        o->cleansession = cp->clean_session;
        o->onSuccess = paho__cb_connect_ok;
        o->onFailure = paho__cb_connect_fail;
    }
    o->context = p;
    atomic_store(&p->persistent, !cp->clean_session);
    o->keepAliveInterval = cp->keepalive_s;
    o->connectTimeout = p->connect_timeout_s;
    o->automaticReconnect = 0; /* the callers own reconnects */
    if (p->max_inflight > 0)
        o->maxInflight = p->max_inflight;
    o->username = p->username;
    o->password = p->password;
    if (cp->will) {
        will->struct_version = 1;
        will->topicName = cp->will->topic;
        will->payload.data = cp->will->payload;
        will->payload.len = (int)cp->will->len;
        will->qos = cp->will->qos;
        will->retained = cp->will->retain;
        o->will = will;
    }
}

static int paho__connect(struct sim_mqtt *c, const struct sim_mqtt_connect_params *cp)
{
    struct paho_client *p = paho__of(c);
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions *o = p->base.mqtt_version == 5 ? &co5 : &co;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    int rc;

    if (atomic_load(&p->connected) || atomic_exchange(&p->connecting, true))
        return SIM_ERR_STATE;
    /* Paho silently drops a connect issued while its clean disconnect still runs. */
    paho__wait_disconnect(p, 3000);
    pthread_mutex_lock(&p->mu);
    p->tls_reason[0] = '\0';
    pthread_mutex_unlock(&p->mu);
    rc = paho__ensure_handle(p);
    if (rc != MQTTASYNC_SUCCESS)
        goto refused;
    paho__fill_connect(p, o, cp, &will, &props);
    if (sim_mqtt_uri_is_tls(p->base.uri)) {
        ssl.trustStore = p->cafile;
        ssl.keyStore = p->certfile;
        ssl.privateKey = p->keyfile;
        ssl.enableServerCertAuth = !p->insecure;
        ssl.verify = !p->insecure;
        ssl.ssl_error_cb = paho__cb_ssl_error;
        ssl.ssl_error_context = p;
        o->ssl = &ssl;
    }
    pthread_rwlock_rdlock(&p->swap);
    rc = MQTTAsync_connect(p->client, o);
    pthread_rwlock_unlock(&p->swap);
    MQTTProperties_free(&props);
    if (rc == MQTTASYNC_SUCCESS)
        return SIM_OK;
refused:
    paho__on_connect_failed(p, rc, NULL);
    return SIM_ERR_MQTT;
}

/* ------------------------------------------------------------------ publish / subscribe */

static int paho__rc(int rc)
{
    switch (rc) {
    case MQTTASYNC_SUCCESS:
        return SIM_OK;
    case MQTTASYNC_DISCONNECTED:
        return SIM_ERR_OFFLINE;
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_NULL_PARAMETER:
        return SIM_ERR_INVAL;
    default:
        return SIM_ERR_MQTT; /* e.g. MQTTASYNC_MAX_MESSAGES_INFLIGHT */
    }
}

static int paho__publish(struct sim_mqtt *c, const char *topic, const void *payload,
                         size_t len, int qos, bool retain, int *mid)
{
    struct paho_client *p = paho__of(c);
    MQTTAsync_message m = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc = MQTTASYNC_DISCONNECTED;

    if (!atomic_load(&p->connected))
        return SIM_ERR_OFFLINE;
    m.payload = (void *)payload;
    m.payloadlen = (int)len;
    m.qos = qos;
    m.retained = retain;
    if (qos > 0) {
        ro.context = p;
        if (p->base.mqtt_version == 5) {
            ro.onSuccess5 = paho__cb_published5;
            ro.onFailure5 = paho__cb_publish_failed5;
        } else {
            ro.onSuccess = paho__cb_published;
            ro.onFailure = paho__cb_publish_failed;
        }
    }
    pthread_rwlock_rdlock(&p->swap);
    if (p->client)
        rc = MQTTAsync_sendMessage(p->client, topic, &m, &ro);
    pthread_rwlock_unlock(&p->swap);
    if (rc == MQTTASYNC_SUCCESS && mid && qos > 0)
        *mid = (int)ro.token;
    return paho__rc(rc);
}

/* Note n before SUBSCRIBE goes out (push), or take it back when it did not (unpush). */
static void paho__note_sub(struct paho_client *p, int n, bool push)
{
    pthread_mutex_lock(&p->mu);
    if (push && p->sub_len < PAHO_SUBS_TRACKED)
        p->sub_n[(p->sub_head + p->sub_len++) % PAHO_SUBS_TRACKED] = n;
    else if (!push && p->sub_len)
        p->sub_len--;
    pthread_mutex_unlock(&p->mu);
}

static int paho__subscribe(struct sim_mqtt *c, int n, const char *const *filters,
                           const int *qos, int *mid)
{
    struct paho_client *p = paho__of(c);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc = MQTTASYNC_DISCONNECTED;

    if (!atomic_load(&p->connected))
        return SIM_ERR_OFFLINE;
    ro.context = p;
    if (p->base.mqtt_version == 5) {
        ro.onSuccess5 = paho__cb_subscribed5;
        ro.onFailure5 = paho__cb_subscribe_failed5;
    } else {
        ro.onSuccess = paho__cb_subscribed;
        ro.onFailure = paho__cb_subscribe_failed;
    }
    paho__note_sub(p, n, true); /* before: the SUBACK may come before the call returns */
    pthread_rwlock_rdlock(&p->swap);
    if (p->client)
        rc = MQTTAsync_subscribeMany(p->client, n, (char *const *)filters, (int *)qos, &ro);
    pthread_rwlock_unlock(&p->swap);
    if (rc != MQTTASYNC_SUCCESS)
        paho__note_sub(p, n, false);
    if (rc == MQTTASYNC_SUCCESS && mid)
        *mid = (int)ro.token;
    return paho__rc(rc);
}

/* ------------------------------------------------------------------ disconnect, state */

static void paho__disconnect(struct sim_mqtt *c)
{
    struct paho_client *p = paho__of(c);
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_disconnectOptions *o = p->base.mqtt_version == 5 ? &d5 : &d;
    int rc = MQTTASYNC_DISCONNECTED;

    if (p->base.mqtt_version == 5) {
        o->onSuccess5 = paho__cb_disconnect_ok5;
        o->onFailure5 = paho__cb_disconnect_fail5;
    } else {
        o->onSuccess = paho__cb_disconnect_ok;
        o->onFailure = paho__cb_disconnect_fail;
    }
    o->context = p;
    o->timeout = 1000; /* let in-flight QoS 1 (an "offline" status) complete first */
    atomic_store(&p->disconnecting, true);
    pthread_rwlock_rdlock(&p->swap);
    if (p->client && (atomic_load(&p->connected) || atomic_load(&p->connecting)))
        rc = MQTTAsync_disconnect(p->client, o);
    pthread_rwlock_unlock(&p->swap);
    atomic_store(&p->connected, false);
    atomic_store(&p->connecting, false);
    if (rc != MQTTASYNC_SUCCESS)
        atomic_store(&p->disconnecting, false); /* not connected: nothing to wait for */
}

static bool paho__is_connected(const struct sim_mqtt *c)
{
    return atomic_load(&paho__of(c)->connected);
}

static bool paho__is_disconnecting(const struct sim_mqtt *c)
{
    return atomic_load(&paho__of(c)->disconnecting);
}

static void paho__stats(struct sim_mqtt_stats *out)
{
    out->clients = atomic_load(&paho__clients);
    out->fds_per_client = 1;
}

const struct sim_mqtt_impl sim_mqtt__paho = {
    .create = paho__create,
    .destroy = paho__destroy,
    .connect = paho__connect,
    .publish = paho__publish,
    .subscribe = paho__subscribe,
    .disconnect = paho__disconnect,
    .is_connected = paho__is_connected,
    .is_disconnecting = paho__is_disconnecting,
    .stats = paho__stats,
};
