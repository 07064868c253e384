/*
 * transport.c - the network port on the MQTT edge (sim/transport.h).
 *
 * The edge's handlers run on libmosquitto's io loop (here the device's own loop) or on
 * Paho's callback thread; each only copies what it was given into one struct sim_event and
 * pushes it onto the owning loop, where the firmware gets it. Nothing here calls the
 * firmware, or blocks, from a handler.
 *
 * Per-device memory is kept small (10,000 devices in one process): the edge client, a few
 * flags and copies of the option strings; no buffers.
 *
 * Connect window: at most `connect_limit` connects are outstanding in the process (issued,
 * no outcome yet); the others wait in their transport (a small malloc'ed copy of the
 * parameters) and are issued from sim_transport_poll(), which the device calls on every
 * tick, or at once when an outcome frees a slot on the waiter's own loop thread. A burst of
 * thousands of connects otherwise overflows the broker's listen backlog.
 *
 * Generations: a power cut destroys the edge client; events of the old client still queued
 * on the loop carry the old generation and are dropped by sim_transport_handle_event.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_device.h"
#include "sim/err.h"
#include "sim/transport.h"

struct sim_transport {
    struct sim_mqtt *mqtt;          /* NULL before the first connect and after a power cut */
    struct sim_loop *loop;
    struct sim_loop_target *target;
    char *uri, *client_id, *username, *password, *cafile, *certfile, *keyfile;
    char *bind_address;             /* source address, or NULL */
    bool keep_session_state;        /* sim_transport_opts */
    int mqtt_version;               /* 3 or 5 */
    uint32_t session_expiry_s;
    int connect_timeout_s;
    bool insecure;
    bool tcp_nodelay;
    enum sim_mqtt_kind kind;
    bool connected;                 /* owner's view, from handled events */
    atomic_uint generation;         /* stamped on events; bumped by a power cut */
    atomic_bool connect_outstanding;/* counted in g_connects_in_flight until its outcome */
    struct pending_connect *pending;/* waiting for a window slot, or NULL */
    struct sim_transport *wait_prev, *wait_next; /* in g_waiting while pending (g_wait_mu) */
    bool waiting;
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

/* Process-wide: connects issued and not yet answered, and the cap. */
static atomic_int g_connects_in_flight;
static atomic_int g_connect_limit = 64;

/* Transports waiting for a slot, oldest first. When an outcome frees a slot on a loop's
   thread (libmosquitto's handlers run there), the oldest waiter of that loop is issued at
   once instead of at its next tick: a tick of 50 ms would cap a process at 64 connects
   per tick. */
static pthread_mutex_t g_wait_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sim_transport *g_wait_head, *g_wait_tail;

static void wait_enqueue(struct sim_transport *t)
{
    pthread_mutex_lock(&g_wait_mu);
    if (!t->waiting) {
        t->waiting = true;
        t->wait_next = NULL;
        t->wait_prev = g_wait_tail;
        if (g_wait_tail)
            g_wait_tail->wait_next = t;
        else
            g_wait_head = t;
        g_wait_tail = t;
    }
    pthread_mutex_unlock(&g_wait_mu);
}

static void wait_unlink_locked(struct sim_transport *t)
{
    if (!t->waiting)
        return;
    if (t->wait_prev)
        t->wait_prev->wait_next = t->wait_next;
    else
        g_wait_head = t->wait_next;
    if (t->wait_next)
        t->wait_next->wait_prev = t->wait_prev;
    else
        g_wait_tail = t->wait_prev;
    t->wait_prev = t->wait_next = NULL;
    t->waiting = false;
}

static void wait_dequeue(struct sim_transport *t)
{
    pthread_mutex_lock(&g_wait_mu);
    wait_unlink_locked(t);
    pthread_mutex_unlock(&g_wait_mu);
}

/* The oldest waiter owned by the calling thread's loop, taken off the list; NULL if none
   (e.g. on Paho's callback thread, which owns no loop). */
static struct sim_transport *wait_take_local(void)
{
    struct sim_transport *w;

    pthread_mutex_lock(&g_wait_mu);
    for (w = g_wait_head; w; w = w->wait_next)
        if (sim_loop_on_owner_thread(w->loop))
            break;
    if (w)
        wait_unlink_locked(w);
    pthread_mutex_unlock(&g_wait_mu);
    return w;
}

void sim_transport_set_connect_limit(int limit)
{
    atomic_store(&g_connect_limit, limit > 0 ? limit : 1);
}

int sim_transport_connects_in_flight(void)
{
    return atomic_load(&g_connects_in_flight);
}

/* The outcome of an issued connect arrived, or never will (destroyed): free the slot
   exactly once. Any thread. */
static void release_slot(struct sim_transport *t)
{
    if (atomic_exchange(&t->connect_outstanding, false))
        atomic_fetch_sub(&g_connects_in_flight, 1);
}

static void issue_pending(struct sim_transport *t);

/* An outcome came: hand the freed slot to a waiter of this thread's loop, now. */
static void pass_slot_on(void)
{
    struct sim_transport *w;

    if (atomic_load(&g_connects_in_flight) >= atomic_load(&g_connect_limit))
        return;
    if ((w = wait_take_local()))
        issue_pending(w);
}

void sim_transport_opts_defaults(struct sim_transport_opts *opts)
{
    struct sim_mqtt_opts m;

    sim_mqtt_opts_defaults(&m);
    memset(opts, 0, sizeof(*opts));
    opts->version = SIM_TRANSPORT_OPTS_VERSION;
    opts->mqtt_version = 3;
    opts->session_expiry_s = 3600;
    opts->connect_timeout_s = 10;
    opts->kind = SIM_MQTT_DEFAULT;
    opts->tcp_nodelay = m.tcp_nodelay;
}

/* ------------------------------------------------------------------ handlers (edge side) */

/* Stamp and push; an event lost to a failed allocation is reported nowhere else, so the
   firmware would wait: its own time-outs (keep-alive, back-off) recover from that. */
static void push(struct sim_transport *t, struct sim_event *ev)
{
    if (!ev)
        return;
    ev->generation = atomic_load_explicit(&t->generation, memory_order_relaxed);
    sim_loop_push(t->loop, ev);
}

static void on_connected(void *ctx, bool session_present)
{
    struct sim_transport *t = ctx;
    struct sim_event *ev = sim_event_new(SIM_EV_CONNECTED, t->target, NULL, NULL, 0, NULL);

    release_slot(t);
    if (ev)
        ev->session_present = session_present;
    push(t, ev);
    pass_slot_on();
}

static void on_connect_failed(void *ctx, int code, const char *words)
{
    struct sim_transport *t = ctx;
    struct sim_event *ev = sim_event_new(SIM_EV_CONNECT_FAILED, t->target, NULL, NULL, 0,
                                         words);

    release_slot(t);
    if (ev)
        ev->code = code > 0 ? code : FW_ERR_IO;
    push(t, ev);
    pass_slot_on();
}

static void on_connection_lost(void *ctx, const char *words)
{
    struct sim_transport *t = ctx;

    push(t, sim_event_new(SIM_EV_CONNECTION_LOST, t->target, NULL, NULL, 0, words));
}

static void on_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct sim_transport *t = ctx;
    struct sim_event *ev = sim_event_new(SIM_EV_MESSAGE, t->target, m->topic,
                                         m->payload ? m->payload : "", m->len, NULL);

    if (!ev)
        return;
    ev->qos = m->qos;
    ev->dup = m->dup;
    ev->retain = m->retain;
    push(t, ev);
}

static void on_published(void *ctx, int mid, int code)
{
    struct sim_transport *t = ctx;
    struct sim_event *ev = sim_event_new(code == 0 ? SIM_EV_PUBLISHED : SIM_EV_PUBLISH_REFUSED,
                                         t->target, NULL, NULL, 0, NULL);

    if (!ev)
        return;
    ev->token = (uint32_t)mid;
    ev->code = code >= 0x80 ? code : code < 0 ? FW_ERR_IO : 0;
    push(t, ev);
}

/* One event per filter, in order, with the SUBSCRIBE's token (fw_ports.h). */
static void on_subscribed(void *ctx, int mid, int n, const int *codes)
{
    struct sim_transport *t = ctx;

    for (int i = 0; i < (n < 1 ? 1 : n); i++) {
        struct sim_event *ev = sim_event_new(SIM_EV_SUBSCRIBED, t->target, NULL, NULL, 0, NULL);
        if (!ev)
            return;
        ev->token = (uint32_t)mid;
        ev->code = n < 1 || codes[i] < 0 ? FW_ERR_IO : codes[i];
        push(t, ev);
    }
}

static const struct sim_mqtt_handlers transport_handlers = {
    .connected = on_connected,
    .connect_failed = on_connect_failed,
    .connection_lost = on_connection_lost,
    .message = on_message,
    .published = on_published,
    .subscribed = on_subscribed,
};

/* ------------------------------------------------------------------ create / destroy */

static char *strdup_or_null(const char *s, bool *ok)
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
    if (strncmp(opts->uri, "tcp://", 6) != 0 && strncmp(opts->uri, "mqtt://", 7) != 0 &&
        !sim_mqtt_uri_is_tls(opts->uri))
        return SIM_ERR_INVAL;
    if (opts->mqtt_version != 3 && opts->mqtt_version != 4 && opts->mqtt_version != 5)
        return SIM_ERR_INVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return SIM_ERR_NOMEM;
    t->loop = loop;
    t->target = target;
    t->mqtt_version = opts->mqtt_version == 5 ? 5 : 3;
    t->session_expiry_s = opts->session_expiry_s ? opts->session_expiry_s : 3600;
    t->connect_timeout_s = opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 10;
    t->insecure = opts->insecure;
    t->tcp_nodelay = opts->version >= 2 ? opts->tcp_nodelay : true;
    t->kind = opts->version >= 2 ? opts->kind : SIM_MQTT_DEFAULT;
    if (t->kind == SIM_MQTT_DEFAULT)
        t->kind = sim_mqtt_default_kind();
    atomic_init(&t->generation, 0);
    atomic_init(&t->connect_outstanding, false);
    t->uri = strdup_or_null(opts->uri, &ok);
    t->client_id = strdup_or_null(client_id, &ok);
    t->username = strdup_or_null(opts->username, &ok);
    t->password = strdup_or_null(opts->password, &ok);
    t->cafile = strdup_or_null(opts->cafile, &ok);
    t->certfile = strdup_or_null(opts->certfile, &ok);
    t->keyfile = strdup_or_null(opts->keyfile, &ok);
    t->bind_address = strdup_or_null(opts->version >= 3 ? opts->bind_address : NULL, &ok);
    t->keep_session_state = opts->version >= 4 && opts->keep_session_state;
    if (!ok) {
        sim_transport_destroy(t);
        return SIM_ERR_NOMEM;
    }
    *out = t;
    return SIM_OK;
}

void sim_transport_destroy(struct sim_transport *t)
{
    if (!t)
        return;
    wait_dequeue(t);
    sim_mqtt_destroy(t->mqtt); /* finishes a clean disconnect under way */
    release_slot(t);           /* no handler runs after sim_mqtt_destroy */
    free(t->pending);
    free(t->uri);
    free(t->client_id);
    free(t->username);
    if (t->password) {
        /* Do not leave the secret in freed heap memory. */
        for (volatile char *p = t->password; *p; p++)
            *p = '\0';
        free(t->password);
    }
    free(t->cafile);
    free(t->certfile);
    free(t->keyfile);
    free(t->bind_address);
    free(t);
}

/* The edge client (once; again after a power cut). 0 or a sim_err. */
static int ensure_client(struct sim_transport *t)
{
    struct sim_mqtt_opts o;

    if (t->mqtt)
        return SIM_OK;
    sim_mqtt_opts_defaults(&o);
    o.kind = t->kind;
    o.uri = t->uri;
    o.client_id = t->client_id;
    o.username = t->username;
    o.password = t->password;
    o.cafile = t->cafile;
    o.certfile = t->certfile;
    o.keyfile = t->keyfile;
    o.insecure = t->insecure;
    o.mqtt_version = t->mqtt_version;
    o.session_expiry_s = t->session_expiry_s;
    o.connect_timeout_s = t->connect_timeout_s;
    o.tcp_nodelay = t->tcp_nodelay;
    o.bind_address = t->bind_address;
    o.keep_session_state = t->keep_session_state;
    o.io = t->loop; /* libmosquitto: the device's own loop drives the socket */
    return sim_mqtt_create(&o, &transport_handlers, t, &t->mqtt);
}

/* ------------------------------------------------------------------ connect */

/* Hand a connect to the edge now (a window slot is ours). */
static int issue_connect(struct sim_transport *t, const struct fw_connect_params *p)
{
    struct sim_mqtt_will will = { p->will_topic, p->will_payload, p->will_len, p->will_qos,
                                  p->will_retain };
    struct sim_mqtt_connect_params cp = { p->keepalive_s, p->clean_session,
                                          p->will_topic ? &will : NULL };
    char words[SIM_WORDS_MAX];
    int rc;

    atomic_fetch_add(&g_connects_in_flight, 1);
    atomic_store(&t->connect_outstanding, true);
    t->connected = false; /* a loss may have raced a clean disconnect: start afresh */
    rc = ensure_client(t);
    if (rc != SIM_OK) {
        /* Report it like any other failed attempt so that the firmware gets the words (it
           treats our 0 as "attempt started" and waits for the outcome). */
        snprintf(words, sizeof(words), "connection to %s impossible: the MQTT client could "
                 "not be created (%s)", t->uri, sim_strerror(rc));
        on_connect_failed(t, FW_ERR_IO, words);
        return FW_OK;
    }
    /* SIM_ERR_MQTT: the edge has reported the failure itself, with words. */
    if (sim_mqtt_connect(t->mqtt, &cp) == SIM_ERR_STATE) {
        snprintf(words, sizeof(words), "connection to %s not started: the previous one is "
                 "still open or opening", t->uri);
        on_connect_failed(t, FW_ERR_IO, words);
    }
    return FW_OK;
}

int sim_transport_connect(struct sim_transport *t, const struct fw_connect_params *p)
{
    struct pending_connect *pc;
    size_t tlen;

    if (!t || !p)
        return FW_ERR_INVAL;
    free(t->pending); /* a newer request replaces a waiting one */
    t->pending = NULL;
    wait_dequeue(t);
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
    wait_enqueue(t);
    return FW_OK;
}

void sim_transport_poll(struct sim_transport *t)
{
    if (!t->pending || atomic_load(&g_connects_in_flight) >= atomic_load(&g_connect_limit))
        return;
    wait_dequeue(t);
    issue_pending(t);
}

/* Issue t's waiting connect (owner thread; t is off the waiting list). */
static void issue_pending(struct sim_transport *t)
{
    struct fw_connect_params p;
    struct pending_connect *pc = t->pending;

    if (!pc)
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

/* ------------------------------------------------------------------ publish, subscribe */

static int fw_code(int rc)
{
    switch (rc) {
    case SIM_OK:
        return FW_OK;
    case SIM_ERR_OFFLINE:
        return FW_ERR_OFFLINE;
    case SIM_ERR_INVAL:
        return FW_ERR_INVAL;
    default:
        return FW_ERR_IO;
    }
}

int sim_transport_publish(struct sim_transport *t, const struct fw_publish *msg,
                          uint32_t *token)
{
    int mid = 0;
    int rc;

    if (token)
        *token = 0;
    if (!t || !msg || !msg->topic || msg->qos < 0 || msg->qos > 2 || msg->len > INT32_MAX)
        return FW_ERR_INVAL;
    if (!t->mqtt || !t->connected)
        return FW_ERR_OFFLINE;
    rc = sim_mqtt_publish(t->mqtt, msg->topic, msg->payload, msg->len, msg->qos, msg->retain,
                          &mid);
    if (rc == SIM_OK && token)
        *token = (uint32_t)mid;
    return fw_code(rc);
}

int sim_transport_subscribe_many(struct sim_transport *t, const char *const *filters, int n,
                                 int qos, uint32_t *token)
{
    int mid = 0, qoss[SIM_TRANSPORT_SUBSCRIBE_MAX];
    int rc;

    if (token)
        *token = 0;
    if (!t || !filters || n < 1 || n > SIM_TRANSPORT_SUBSCRIBE_MAX || qos < 0 || qos > 2)
        return FW_ERR_INVAL;
    for (int i = 0; i < n; i++) {
        if (!filters[i])
            return FW_ERR_INVAL;
        qoss[i] = qos;
    }
    if (!t->mqtt || !t->connected)
        return FW_ERR_OFFLINE;
    rc = sim_mqtt_subscribe(t->mqtt, n, filters, qoss, &mid);
    if (rc == SIM_OK && token)
        *token = (uint32_t)mid;
    return fw_code(rc);
}

int sim_transport_subscribe(struct sim_transport *t, const char *filter, int qos,
                            uint32_t *token)
{
    return sim_transport_subscribe_many(t, &filter, 1, qos, token);
}

/* ------------------------------------------------------------------ disconnect, power */

void sim_transport_disconnect(struct sim_transport *t)
{
    if (!t)
        return;
    free(t->pending); /* a connect still waiting for a slot is simply not made */
    t->pending = NULL;
    wait_dequeue(t);
    t->connected = false;
    sim_mqtt_disconnect(t->mqtt);
}

void sim_transport_power_cut(struct sim_transport *t)
{
    if (!t)
        return;
    free(t->pending);
    t->pending = NULL;
    wait_dequeue(t);
    if (!t->mqtt)
        return;
    /* Events already queued belong to the old client: the owner drops them. */
    atomic_fetch_add(&t->generation, 1);
    sim_mqtt_destroy(t->mqtt);
    t->mqtt = NULL;
    release_slot(t);
    t->connected = false;
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
        if (!t->connected)
            return false; /* a loss reported twice, or after a disconnect */
        t->connected = false;
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
    return t && sim_mqtt_is_disconnecting(t->mqtt);
}

const char *sim_transport_uri(const struct sim_transport *t)
{
    return t->uri;
}

int sim_transport_mqtt_version(const struct sim_transport *t)
{
    return t->mqtt_version;
}

enum sim_mqtt_kind sim_transport_kind(const struct sim_transport *t)
{
    return t->kind;
}
