/*
 * test_mqtt.c - the tests' synchronous MQTT client on the MQTT edge (sim/test_mqtt.h).
 *
 * The edge is asynchronous: its handlers (on the edge's threads) record what happened in
 * the client's one struct under its lock and wake the waiters; the calls start a request
 * and sleep on the condition variable until its outcome is recorded.
 *
 * Sections: state, handlers, waiting, connection, subscribe and publish, messages.
 */
#include "sim/test_mqtt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/clock.h"
#include "sim/err.h"

/* ------------------------------------------------------------------ state */

/* SUBACKs and PUBACKs kept for their waiters; a waiter looks only at those after its own
   request, so a slot is reused long after anyone could wait for it. */
#define TMQ_OUTCOMES 1024
#define TMQ_CODES 8

enum { OUTCOME_PUBLISHED, OUTCOME_SUBSCRIBED };

struct tmq__outcome {
    uint64_t seq;   /* 1, 2, ... in arrival order */
    int what;       /* OUTCOME_* */
    int mid;
    int n;          /* codes */
    int codes[TMQ_CODES];
};

/* A message and, in the same block, its topic and payload. */
struct tmq__held {
    struct tmq_msg m;
    bool taken;     /* by tmq_next / tmq_next_on */
    char data[];
};

struct tmq {
    struct sim_mqtt *c;
    struct sim_mqtt_connect_params cp; /* every connect's */
    struct sim_mqtt_will will;         /* cp.will points here when there is one */
    char *will_topic;
    void *will_payload;
    char client_id[128];
    int wait_ms;
    bool quiet;
    int start_rc;                      /* the last connect start's (the caller's thread) */
    int attempts_before;               /* attempts when it started */

    pthread_mutex_t mu;                /* everything below */
    pthread_cond_t cond;               /* broadcast on every change */
    int attempts;                      /* connect outcomes (accepted or failed) */
    int fail_code;                     /* the last attempt's: 0 = accepted */
    int lost;
    int disconnects;                   /* clean disconnects finished */
    uint64_t outcomes;                 /* recorded so far */
    struct tmq__outcome outcome[TMQ_OUTCOMES];
    struct tmq__held **msgs;
    int n_msgs, cap_msgs;
};

/* ------------------------------------------------------------------ handlers (edge threads) */

static void tmq__changed(struct tmq *k)
{
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->mu);
}

static void on_connected(void *ctx, bool session_present)
{
    struct tmq *k = ctx;
    pthread_mutex_lock(&k->mu);
    k->attempts++;
    k->fail_code = 0;
    (void)session_present;
    tmq__changed(k);
}

static void on_connect_failed(void *ctx, int code, const char *words)
{
    struct tmq *k = ctx;
    if (!k->quiet)
        fprintf(stderr, "test client %s: %s\n", k->client_id, words);
    pthread_mutex_lock(&k->mu);
    k->attempts++;
    k->fail_code = code ? code : SIM_ERR_MQTT;
    tmq__changed(k);
}

static void on_lost(void *ctx, const char *words)
{
    struct tmq *k = ctx;
    pthread_mutex_lock(&k->mu);
    (void)words;
    k->lost++;
    tmq__changed(k);
}

static void on_disconnected(void *ctx)
{
    struct tmq *k = ctx;
    pthread_mutex_lock(&k->mu);
    k->disconnects++;
    tmq__changed(k);
}

static void tmq__record(struct tmq *k, int what, int mid, int n, const int *codes)
{
    pthread_mutex_lock(&k->mu);
    struct tmq__outcome *o = &k->outcome[k->outcomes % TMQ_OUTCOMES];
    o->seq = ++k->outcomes;
    o->what = what;
    o->mid = mid;
    o->n = n < TMQ_CODES ? n : TMQ_CODES;
    for (int i = 0; i < o->n; i++)
        o->codes[i] = codes[i];
    tmq__changed(k);
}

static void on_published(void *ctx, int mid, int code)
{
    tmq__record(ctx, OUTCOME_PUBLISHED, mid, 1, &code);
}

static void on_subscribed(void *ctx, int mid, int n, const int *codes)
{
    tmq__record(ctx, OUTCOME_SUBSCRIBED, mid, n, codes);
}

static void on_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct tmq *k = ctx;
    size_t tl = strlen(m->topic);
    struct tmq__held *h = malloc(sizeof *h + tl + 1 + m->len + 1);

    if (h) {
        char *topic = h->data, *payload = h->data + tl + 1;
        memcpy(topic, m->topic, tl + 1);
        if (m->len)
            memcpy(payload, m->payload, m->len);
        payload[m->len] = '\0';
        h->m = (struct tmq_msg){ .topic = topic, .payload = payload, .len = m->len,
                                 .qos = m->qos, .retain = m->retain, .dup = m->dup,
                                 .t_ms = (int64_t)sim_clock_ms() };
        h->taken = false;
    }
    pthread_mutex_lock(&k->mu);
    if (h && k->n_msgs == k->cap_msgs && k->cap_msgs < TMQ_MAX_MSGS) {
        int cap = k->cap_msgs ? 2 * k->cap_msgs : 64;
        struct tmq__held **grown = realloc(k->msgs, (size_t)cap * sizeof *grown);
        if (grown) {
            k->msgs = grown;
            k->cap_msgs = cap;
        }
    }
    if (h && k->n_msgs < k->cap_msgs) {
        k->msgs[k->n_msgs++] = h;
        h = NULL;
    }
    tmq__changed(k);
    free(h);
}

static const struct sim_mqtt_handlers tmq_handlers = {
    .connected = on_connected,
    .connect_failed = on_connect_failed,
    .connection_lost = on_lost,
    .message = on_message,
    .published = on_published,
    .subscribed = on_subscribed,
    .disconnected = on_disconnected,
};

/* ------------------------------------------------------------------ waiting */

/* With mu held: sleep until done(k, arg) or timeout_ms passed; done's last answer. */
static bool tmq__wait(struct tmq *k, bool (*done)(struct tmq *, const void *),
                      const void *arg, int timeout_ms)
{
    struct timespec deadline;
    sim_clock_deadline(&deadline, timeout_ms > 0 ? timeout_ms : 0);
    while (!done(k, arg))
        if (pthread_cond_timedwait(&k->cond, &k->mu, &deadline) != 0)
            return done(k, arg);
    return true;
}

static bool more_than(struct tmq *k, const void *arg)
{
    const int *const *pair = arg; /* { counter, value } */
    (void)k;
    return *pair[0] > *pair[1];
}

/* With mu held: wait until *counter > before. */
static bool tmq__wait_more(struct tmq *k, const int *counter, int before, int timeout_ms)
{
    const int *pair[2] = { counter, &before };
    return tmq__wait(k, more_than, pair, timeout_ms);
}

struct outcome_query {
    int what, mid;
    uint64_t after;
    const struct tmq__outcome *found;
};

static bool outcome_found(struct tmq *k, const void *arg)
{
    struct outcome_query *q = (struct outcome_query *)arg;
    uint64_t first = k->outcomes > TMQ_OUTCOMES ? k->outcomes - TMQ_OUTCOMES : 0;
    for (uint64_t s = q->after > first ? q->after : first; s < k->outcomes; s++) {
        const struct tmq__outcome *o = &k->outcome[s % TMQ_OUTCOMES];
        if (o->what == q->what && o->mid == q->mid) {
            q->found = o;
            return true;
        }
    }
    return false;
}

static uint64_t tmq__outcomes(struct tmq *k)
{
    pthread_mutex_lock(&k->mu);
    uint64_t n = k->outcomes;
    pthread_mutex_unlock(&k->mu);
    return n;
}

/* ------------------------------------------------------------------ connection */

void tmq_opts_defaults(struct tmq_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = SIM_MQTT_DEFAULT;
    o->mqtt_version = 3;
    o->session_expiry_s = 3600;
    o->keepalive_s = 30;
}

static int tmq__copy_will(struct tmq *k, const struct sim_mqtt_will *w)
{
    if (!w)
        return SIM_OK;
    k->will_topic = strdup(w->topic);
    k->will_payload = malloc(w->len ? w->len : 1);
    if (!k->will_topic || !k->will_payload)
        return SIM_ERR_NOMEM;
    memcpy(k->will_payload, w->payload, w->len);
    k->will = *w;
    k->will.topic = k->will_topic;
    k->will.payload = k->will_payload;
    k->cp.will = &k->will;
    return SIM_OK;
}

int tmq_create(const struct tmq_opts *o, struct tmq **out)
{
    struct tmq *k = calloc(1, sizeof *k);
    struct sim_mqtt_opts so;
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (!k)
        return SIM_ERR_NOMEM;
    pthread_mutex_init(&k->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cond, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(k->client_id, sizeof k->client_id, "%s", o->client_id ? o->client_id : "");
    k->wait_ms = o->wait_ms > 0 ? o->wait_ms : TMQ_WAIT_MS;
    k->quiet = o->quiet;
    k->cp.keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : 30;
    k->cp.clean_session = !o->persistent;
    rc = tmq__copy_will(k, o->will);
    if (rc != SIM_OK)
        goto fail;

    sim_mqtt_opts_defaults(&so);
    so.kind = o->kind;
    so.uri = o->uri;
    so.client_id = o->client_id;
    so.username = o->username;
    so.password = o->password;
    so.cafile = o->cafile;
    so.certfile = o->certfile;
    so.keyfile = o->keyfile;
    so.insecure = o->insecure;
    so.mqtt_version = o->mqtt_version == 5 ? 5 : 3;
    if (o->session_expiry_s)
        so.session_expiry_s = o->session_expiry_s;
    if (o->connect_timeout_s > 0)
        so.connect_timeout_s = o->connect_timeout_s;
    so.keep_session_state = o->keep_session_state;
    rc = sim_mqtt_create(&so, &tmq_handlers, k, &k->c);
    if (rc != SIM_OK)
        goto fail;
    *out = k;
    return SIM_OK;
fail:
    tmq_free(k);
    return rc;
}

int tmq_connect_start(struct tmq *c)
{
    pthread_mutex_lock(&c->mu);
    c->attempts_before = c->attempts;
    pthread_mutex_unlock(&c->mu);
    /* A start that fails comes to connect_failed as well (sim/mqtt.h). */
    c->start_rc = sim_mqtt_connect(c->c, &c->cp);
    return c->start_rc;
}

int tmq_wait_connect(struct tmq *c, int timeout_ms)
{
    int rc = c->start_rc;
    if (rc == SIM_ERR_STATE)
        return rc;
    pthread_mutex_lock(&c->mu);
    if (tmq__wait_more(c, &c->attempts, c->attempts_before, timeout_ms))
        rc = c->fail_code;
    else if (rc == SIM_OK)
        rc = SIM_ERR_TIMEOUT;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int tmq_connect(struct tmq *c)
{
    tmq_connect_start(c);
    return tmq_wait_connect(c, c->wait_ms);
}

int tmq_open(const struct tmq_opts *o, struct tmq **out)
{
    int rc = tmq_create(o, out);
    if (rc != SIM_OK)
        return rc;
    rc = tmq_connect(*out);
    if (rc != SIM_OK) {
        tmq_free(*out);
        *out = NULL;
    }
    return rc;
}


bool tmq_is_connected(struct tmq *c)
{
    return sim_mqtt_is_connected(c->c);
}


int tmq_lost(struct tmq *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->lost;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool tmq_wait_lost(struct tmq *c, int n, int timeout_ms)
{
    pthread_mutex_lock(&c->mu);
    bool ok = tmq__wait_more(c, &c->lost, n - 1, timeout_ms);
    pthread_mutex_unlock(&c->mu);
    return ok;
}


/* The clean disconnect finished, or the connection was lost before it could. */
static bool disconnect_over(struct tmq *k, const void *arg)
{
    const int *before = arg; /* { disconnects, lost } */
    return k->disconnects > before[0] || k->lost > before[1];
}

int tmq_disconnect(struct tmq *c)
{
    if (!sim_mqtt_is_connected(c->c) && !sim_mqtt_is_disconnecting(c->c))
        return SIM_OK;
    pthread_mutex_lock(&c->mu);
    const int before[2] = { c->disconnects, c->lost };
    pthread_mutex_unlock(&c->mu);
    sim_mqtt_disconnect(c->c);
    pthread_mutex_lock(&c->mu);
    bool ok = tmq__wait(c, disconnect_over, before, c->wait_ms);
    pthread_mutex_unlock(&c->mu);
    return ok ? SIM_OK : SIM_ERR_TIMEOUT;
}

void tmq_free(struct tmq *c)
{
    if (!c)
        return;
    sim_mqtt_destroy(c->c); /* no handler runs after it */
    for (int i = 0; i < c->n_msgs; i++)
        free(c->msgs[i]);
    free(c->msgs);
    free(c->will_topic);
    free(c->will_payload);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int tmq_close(struct tmq *c)
{
    if (!c)
        return SIM_OK;
    int rc = tmq_disconnect(c);
    tmq_free(c);
    return rc;
}

/* ------------------------------------------------------------------ subscribe, publish */

int tmq_subscribe_many(struct tmq *c, int n, const char *const *filters, const int *qos,
                       int *granted)
{
    struct outcome_query q = { .what = OUTCOME_SUBSCRIBED, .after = tmq__outcomes(c) };
    int rc = sim_mqtt_subscribe(c->c, n, filters, qos, &q.mid);
    if (rc != SIM_OK)
        return rc;
    pthread_mutex_lock(&c->mu);
    if (!tmq__wait(c, outcome_found, &q, c->wait_ms)) {
        rc = SIM_ERR_TIMEOUT;
    } else {
        for (int i = 0; i < n; i++) {
            int code = i < q.found->n ? q.found->codes[i] : 0x80;
            if (granted)
                granted[i] = code;
            if (rc == SIM_OK && (code < 0 || code >= 0x80))
                rc = code;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int tmq_subscribe(struct tmq *c, const char *filter, int qos, int *granted)
{
    return tmq_subscribe_many(c, 1, &filter, &qos, granted);
}

int tmq_publish_start(struct tmq *c, const char *topic, const void *payload, size_t len,
                      int qos, bool retain, struct tmq_token *tok)
{
    struct tmq_token t = { .after = tmq__outcomes(c) };
    int rc = sim_mqtt_publish(c->c, topic, payload, len, qos, retain, &t.mid);
    if (tok)
        *tok = t;
    return rc;
}

int tmq_wait_published(struct tmq *c, const struct tmq_token *tok, int timeout_ms)
{
    struct outcome_query q = { .what = OUTCOME_PUBLISHED, .mid = tok->mid,
                               .after = tok->after };
    int rc;
    pthread_mutex_lock(&c->mu);
    rc = tmq__wait(c, outcome_found, &q, timeout_ms) ? q.found->codes[0] : SIM_ERR_TIMEOUT;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int tmq_publish(struct tmq *c, const char *topic, const void *payload, size_t len, int qos,
                bool retain)
{
    struct tmq_token tok;
    int rc = tmq_publish_start(c, topic, payload, len, qos, retain, &tok);
    if (rc != SIM_OK || qos == 0)
        return rc;
    return tmq_wait_published(c, &tok, c->wait_ms);
}

int tmq_publish_text(struct tmq *c, const char *topic, const char *text, int qos,
                     bool retain)
{
    return tmq_publish(c, topic, text, strlen(text), qos, retain);
}

/* ------------------------------------------------------------------ messages received */

int tmq_count(struct tmq *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->n_msgs;
    pthread_mutex_unlock(&c->mu);
    return n;
}


bool tmq_wait_count(struct tmq *c, int n, int timeout_ms)
{
    pthread_mutex_lock(&c->mu);
    bool ok = tmq__wait_more(c, &c->n_msgs, n - 1, timeout_ms);
    pthread_mutex_unlock(&c->mu);
    return ok;
}

const struct tmq_msg *tmq_msg(struct tmq *c, int i)
{
    return tmq_wait_msg(c, i, 0);
}

const struct tmq_msg *tmq_wait_msg(struct tmq *c, int i, int timeout_ms)
{
    const struct tmq_msg *m = NULL;
    if (i < 0)
        return NULL;
    pthread_mutex_lock(&c->mu);
    if (tmq__wait_more(c, &c->n_msgs, i, timeout_ms))
        m = &c->msgs[i]->m;
    pthread_mutex_unlock(&c->mu);
    return m;
}

/* With mu held. */
static bool msg_matches(const struct tmq__held *h, const char *topic, const char *payload)
{
    return (!topic || strcmp(h->m.topic, topic) == 0) &&
           (!payload || strcmp(h->m.payload, payload) == 0);
}

struct match_query {
    const char *topic, *payload;
    int n;
};

static bool enough_matches(struct tmq *k, const void *arg)
{
    const struct match_query *q = arg;
    int n = 0;
    for (int i = 0; i < k->n_msgs && n < q->n; i++)
        n += msg_matches(k->msgs[i], q->topic, q->payload);
    return n >= q->n;
}

int tmq_count_on(struct tmq *c, const char *topic, const char *payload)
{
    int n = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n_msgs; i++)
        n += msg_matches(c->msgs[i], topic, payload);
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool tmq_wait_count_on(struct tmq *c, const char *topic, const char *payload, int n,
                       int timeout_ms)
{
    struct match_query q = { topic, payload, n };
    pthread_mutex_lock(&c->mu);
    bool ok = tmq__wait(c, enough_matches, &q, timeout_ms);
    pthread_mutex_unlock(&c->mu);
    return ok;
}

const struct tmq_msg *tmq_find(struct tmq *c, const char *topic, int k)
{
    const struct tmq_msg *m = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n_msgs && !m; i++)
        if (msg_matches(c->msgs[i], topic, NULL) && k-- == 0)
            m = &c->msgs[i]->m;
    pthread_mutex_unlock(&c->mu);
    return m;
}

struct take_query {
    const char *topic;
    struct tmq__held *found;
};

static bool untaken_found(struct tmq *k, const void *arg)
{
    struct take_query *q = (struct take_query *)arg;
    for (int i = 0; i < k->n_msgs; i++) {
        if (!k->msgs[i]->taken && msg_matches(k->msgs[i], q->topic, NULL)) {
            q->found = k->msgs[i];
            return true;
        }
    }
    return false;
}

const struct tmq_msg *tmq_next_on(struct tmq *c, const char *topic, int timeout_ms)
{
    struct take_query q = { topic, NULL };
    pthread_mutex_lock(&c->mu);
    if (tmq__wait(c, untaken_found, &q, timeout_ms))
        q.found->taken = true;
    pthread_mutex_unlock(&c->mu);
    return q.found ? &q.found->m : NULL;
}

const struct tmq_msg *tmq_next(struct tmq *c, int timeout_ms)
{
    return tmq_next_on(c, NULL, timeout_ms);
}
