/*
 * backend_link.c - the backend role's MQTT link: sending, the unacked item publishes and
 * their outcomes, the edge's handlers (which only queue) and the link thread that makes a
 * fresh client after a loss, reconnects, re-subscribes and re-sends.
 */
#include "backend_internal.h"

/* ---------------------------------------------------------------- publishing */

/* Hand one message to the edge; the caller holds hlock for reading. *mid (if given) gets the
   mid of a QoS > 0 publish, which its outcome (backend__on_published) carries. Returns the
   edge's code (sim/err.h). */
int backend__mqtt_send(struct hx_backend *b, const char *topic, const void *payload,
                              size_t len, int qos, int *mid)
{
    if (mid)
        *mid = 0;
    return b->client ? sim_mqtt_publish(b->client, topic, payload, len, qos, false, mid)
                     : SIM_ERR_OFFLINE;
}

/* Publish anything not tracked (answers, raw): fails while disconnected. */
int backend__send(struct hx_backend *b, const char *topic, const void *payload,
                         size_t len, int qos)
{
    pthread_rwlock_rdlock(&b->hlock);
    int rc = backend__mqtt_send(b, topic, payload, len, qos, NULL);
    pthread_rwlock_unlock(&b->hlock);
    if (rc != SIM_OK) {
        backend__set_error("cannot publish to %s on %s: %s; is the backend started and the "
                           "broker reachable?", topic, b->uri, sim_strerror(rc));
        return HX_ERR_PROTO;
    }
    return HX_OK;
}

/* ---------------------------------------------------------------- unacked item publishes */

/* The mid table forgets p's mid (under the ledger lock). */
static void backend__mid_forget(struct hx_backend *b, struct backend__pend *p)
{
    if (b->mids && p->token > 0 && p->token < BACKEND_MIDS && b->mids[p->token].pend == p)
        b->mids[p->token].pend = NULL;
    p->token = 0;
}

void backend__pend_unlink(struct hx_backend *b, struct backend__pend *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        b->pend_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        b->pend_tail = p->prev;
    p->prev = p->next = NULL;
    backend__mid_forget(b, p);
    b->n_pend--;
    if (p->sent_gen == b->gen)
        b->inflight--;
    else
        b->backlog--;
    if (b->backlog && b->link == LINK_UP)
        pthread_cond_signal(&b->link_cond); /* room for the backlog (backend__pump) */
}

void backend__pend_append(struct hx_backend *b, struct backend__pend *p)
{
    p->next = NULL;
    p->prev = b->pend_tail;
    if (b->pend_tail)
        b->pend_tail->next = p;
    else
        b->pend_head = p;
    b->pend_tail = p;
    b->n_pend++;
    if (p->sent_gen == b->gen) {
        if (++b->inflight > b->r.peak_inflight)
            b->r.peak_inflight = b->inflight;
    } else {
        b->backlog++;
    }
}

/* An entry goes out on the current handle (under the ledger lock): its mid there is not
   known yet (an older client's mid means nothing on this one). */
static void backend__pend_sent(struct hx_backend *b, struct backend__pend *p)
{
    if (p->sent_gen != b->gen) {
        backend__mid_forget(b, p);
        p->sent_gen = b->gen;
        b->backlog--;
        if (++b->inflight > b->r.peak_inflight)
            b->r.peak_inflight = b->inflight;
    }
}

/* How many more item publishes may be in flight now. */
uint64_t backend__room(const struct hx_backend *b)
{
    if (b->recv_max <= 0)
        return UINT64_MAX;
    return b->inflight < (uint64_t)b->recv_max ? (uint64_t)b->recv_max - b->inflight : 0;
}


/* The broker acknowledged an item publish (PUBACK): the entry leaves the unacked list.
   Under the ledger lock. */
static void backend__acked(struct hx_backend *b, struct backend__pend *e)
{
    struct backend__item *it = backend__find_item(b, e->item_id);
    if (it && it->published && !it->acked) {
        it->acked = true; /* any copy's PUBACK: the broker has the item */
        b->r.acknowledged++;
    }
    if (it && it->pend == e)
        it->pend = NULL;
    backend__pend_unlink(b, e);
    free(e);
    pthread_cond_broadcast(&b->changed);
}

/* The broker refused an item publish (MQTT 5 PUBACK reason code >= 0x80: not authorized,
   quota exceeded, ...). A re-send would be refused again, so the entry leaves the unacked
   list, the item counts as refused (and, never registered, as lost). Under the ledger lock. */
static void backend__refuse(struct hx_backend *b, struct backend__pend *e, int code)
{
    struct backend__item *it = backend__find_item(b, e->item_id);
    if (it && it->pend == e) {
        it->pend = NULL;
        it->refused = true;
    }
    backend__pend_unlink(b, e);
    free(e);
    b->r.publish_refused++;
    b->r.refused_reason = code;
    pthread_cond_broadcast(&b->changed);
}

static void backend__outcome(struct hx_backend *b, struct backend__pend *e, int code)
{
    if (code == 0)
        backend__acked(b, e);
    else
        backend__refuse(b, e, code);
}

/* A send on client `gen` that started at sent_us got its mid: an outcome that came first is
   applied now, otherwise the entry waits in the mid table for it. Under the ledger lock. */
void backend__token_known(struct hx_backend *b, struct backend__pend *e, uint64_t gen,
                                 int token, int64_t sent_us)
{
    e->token = token;
    if (!b->mids || token <= 0 || token >= BACKEND_MIDS)
        return;
    struct backend__mid *m = &b->mids[token];
    if (m->early_us && m->early_gen == gen && m->early_us >= sent_us) {
        int code = m->early_code;
        m->early_us = 0;
        backend__outcome(b, e, code);
        return;
    }
    m->pend = e;
    m->gen = gen;
}

/* The outcome of a QoS 1 publish of client c (edge thread). A loss (code < 0) changes
   nothing: the entry stays for the re-send on the next client. */
static void backend__on_published(void *ctx, int mid, int code)
{
    struct backend__conn *c = ctx;
    struct hx_backend *b = c->b;
    if (code < 0 || mid <= 0 || mid >= BACKEND_MIDS)
        return;
    pthread_mutex_lock(&b->lock);
    struct backend__mid *m = b->mids ? &b->mids[mid] : NULL;
    if (m && c->gen == b->gen && m->gen == c->gen && m->pend && m->pend->token == mid &&
        m->pend->sent_gen == c->gen) {
        struct backend__pend *e = m->pend;
        m->pend = NULL;
        backend__outcome(b, e, code);
    } else if (m && c->gen == b->gen) {
        /* an answer's PUBACK, or one that overtook its send's return: kept for that send */
        m->early_us = (int64_t)sim_clock_us();
        m->early_gen = c->gen;
        m->early_code = code;
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---------------------------------------------------------------- MQTT handlers (edge thread) */

/* Copy a message into the FIFO (called on the edge's thread: quick, never blocks long). */
static void backend__take(struct hx_backend *b, const char *topic, size_t tl, const void *payload,
                          size_t len)
{
    struct backend__msg *m = malloc(sizeof *m + len + 1 + tl + 1);
    if (!m)
        return; /* dropped: nothing sane to do on the edge's thread */
    memset(m, 0, sizeof *m);
    m->at_us = (int64_t)sim_clock_us();
    m->wall_ms = backend__wall_ms();
    m->len = len;
    if (len)
        memcpy(m->data, payload, len);
    m->data[len] = '\0';
    m->topic = m->data + len + 1;
    memcpy(m->topic, topic, tl);
    m->topic[tl] = '\0';
    bool query = b->layout == HX_BACKEND_LAYOUT_SEED
                     ? strcmp(m->topic, b->topic_query) == 0
                     : (tl >= 16 && strcmp(m->topic + tl - 16, "/inventory/query") == 0);
    m->kind = query ? MSG_QUERY : MSG_REGISTRATION;
    backend__enqueue(b, m);
}

static void backend__on_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct hx_backend *b = ((struct backend__conn *)ctx)->b;
    backend__take(b, m->topic, strlen(m->topic), m->payload, m->len);
}

int hx_backend_inject(struct hx_backend *b, const char *topic, const void *payload, size_t len)
{
    if (!b || !topic || (!payload && len)) {
        backend__set_error("hx_backend_inject: a backend, a topic and a payload are needed");
        return HX_ERR_INVAL;
    }
    backend__take(b, topic, strlen(topic), payload, len);
    return HX_OK;
}

/* A loss of the current client's connection: the link thread replaces the client. An old
   client's report is stale, and so is a second one: both are ignored. */
static void backend__on_lost(void *ctx, const char *words)
{
    struct backend__conn *c = ctx;
    struct hx_backend *b = c->b;
    (void)words;
    pthread_mutex_lock(&b->lock);
    if (c->gen == b->gen && (b->link == LINK_FRESH || b->link == LINK_UP)) {
        b->connected = false;
        b->link = LINK_WANT;
        b->retry_at_us = (int64_t)sim_clock_us(); /* at once; back-off after a failed attempt */
        backend__link_changed(b);
    }
    pthread_mutex_unlock(&b->lock);
}

static void backend__sub_result(struct hx_backend *b, bool ok, const char *why)
{
    pthread_mutex_lock(&b->lock);
    if (ok) {
        if (--b->sub_waiting <= 0)
            b->subscribed = true;
    } else {
        b->sub_failed = true;
        snprintf(b->fail_msg, sizeof b->fail_msg, "%s", why);
    }
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
}

/* A SUBACK (or the loss of a SUBSCRIBE) of one chunk of the backend's topics. */
static void backend__on_subscribed(void *ctx, int mid, int n, const int *codes)
{
    struct backend__conn *c = ctx;
    bool ok = true, lost = false;
    (void)mid;
    for (int i = 0; i < n; i++) {
        if (codes[i] < 0)
            lost = true;
        else if (codes[i] >= 0x80)
            ok = false;
    }
    if (lost)
        backend__sub_result(c->b, false, "the subscribe request failed");
    else
        backend__sub_result(c->b, ok, "the broker refused a subscription (ACL?)");
}

/* Every (re)connection of the current client: the link thread subscribes and re-sends. MQTT
   5: the broker's Receive Maximum bounds the item publishes in flight (Paho queues any more
   and its send thread takes them up only about every 50 ms: 1,000 devices registered 137
   items/s against 6,086 with MQTT 3.1.1 before the backend kept to it). */
static void backend__on_connected(void *ctx, bool session_present)
{
    struct backend__conn *c = ctx;
    struct hx_backend *b = c->b;
    (void)session_present;
    int rm = b->mqtt_version == 5 ? sim_mqtt_receive_maximum(c->client) : 0;
    pthread_mutex_lock(&b->lock);
    if (c->gen == b->gen && b->link == LINK_CONNECTING) {
        b->recv_max = rm > 0 ? rm : b->qos == 2 ? BACKEND_QOS2_WINDOW_311 : 0;
        b->connected = true;
        if (b->connections++ > 0)
            b->r.reconnects++;
        b->link = LINK_FRESH;
        b->backoff_ms = BACKEND_RETRY_MIN_MS;
        backend__link_changed(b);
    }
    pthread_mutex_unlock(&b->lock);
}

/* A connect attempt of client c ended without a session: the link thread tries again after
   the back-off. words are the edge's, for people. */
static void backend__connect_failed(void *ctx, int code, const char *words)
{
    struct backend__conn *c = ctx;
    struct hx_backend *b = c->b;
    (void)code;
    pthread_mutex_lock(&b->lock);
    if (c->gen != b->gen || b->link != LINK_CONNECTING) {
        pthread_mutex_unlock(&b->lock);
        return;
    }
    b->link = LINK_WANT;
    b->retry_at_us = (int64_t)sim_clock_us() + (int64_t)b->backoff_ms * 1000;
    b->backoff_ms = b->backoff_ms * 2 < BACKEND_RETRY_MAX_MS ? b->backoff_ms * 2
                                                              : BACKEND_RETRY_MAX_MS;
    b->connect_failed = true;
    snprintf(b->fail_msg, sizeof b->fail_msg, "%s", words ? words : "connect failed");
    backend__link_changed(b);
    pthread_mutex_unlock(&b->lock);
}

static void backend__disconnected(struct hx_backend *b)
{
    pthread_mutex_lock(&b->lock);
    b->disconnected = true;
    b->connected = false;
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
}

static void backend__on_disconnected(void *ctx)
{
    struct backend__conn *c = ctx;
    backend__disconnected(c->b);
}

static const struct sim_mqtt_handlers backend__handlers = {
    .connected = backend__on_connected,
    .connect_failed = backend__connect_failed,
    .connection_lost = backend__on_lost,
    .message = backend__on_message,
    .published = backend__on_published,
    .subscribed = backend__on_subscribed,
    .disconnected = backend__on_disconnected,
};

/* ---------------------------------------------------------------- link thread */

/*
 * A fresh MQTT client (same client id, no buffering while disconnected) in place of the old
 * one, which is destroyed here, never inside one of its handlers. Called by the link thread
 * or create only. Returns the edge's code (sim/err.h).
 */
int backend__new_client(struct hx_backend *b)
{
    struct backend__conn *c = calloc(1, sizeof *c);
    if (!c)
        return SIM_ERR_NOMEM;
    c->b = b;
    struct sim_mqtt_opts o;
    sim_mqtt_opts_defaults(&o);
    o.uri = b->uri;
    o.client_id = b->client_id;
    o.username = b->username;
    o.password = b->password;
    o.cafile = b->cafile;
    o.certfile = b->certfile;
    o.keyfile = b->keyfile;
    o.insecure = b->insecure;
    o.mqtt_version = b->mqtt_version == 5 ? 5 : 3;
    o.session_expiry_s = BACKEND_SESSION_EXPIRY_S;
    o.connect_timeout_s = (b->connect_timeout_ms + 999) / 1000;
    pthread_rwlock_wrlock(&b->hlock);
    sim_mqtt_destroy(b->client);
    b->client = NULL;
    b->client_used = false;
    pthread_mutex_lock(&b->lock);
    c->gen = ++b->gen; /* handlers of the old client are stale from now on */
    b->inflight = 0;   /* nothing is sent on the new client yet */
    b->backlog = b->n_pend;
    b->recv_max = 0;   /* until its CONNACK says */
    pthread_mutex_unlock(&b->lock);
    c->next = b->conns;
    b->conns = c;
    int rc = sim_mqtt_create(&o, &backend__handlers, c, &b->client);
    c->client = b->client;
    pthread_rwlock_unlock(&b->hlock);
    return rc;
}

/* Start one connect on the current client (a fresh one if this one was used). The mid
   table is made on the first connect (64 Ki entries, touched only as mids are used). */
static int backend__connect(struct hx_backend *b)
{
    if (b->client_used || !b->client) {
        int rc = backend__new_client(b);
        if (rc != SIM_OK)
            return rc;
    }
    if (!b->mids) {
        struct backend__mid *mids = calloc(BACKEND_MIDS, sizeof *mids);
        if (!mids)
            return SIM_ERR_NOMEM;
        pthread_mutex_lock(&b->lock);
        b->mids = mids;
        pthread_mutex_unlock(&b->lock);
    }
    struct sim_mqtt_connect_params cp = {.keepalive_s = b->keepalive_s,
                                         .clean_session = b->clean_session};
    pthread_rwlock_rdlock(&b->hlock);
    b->client_used = true;
    int rc = sim_mqtt_connect(b->client, &cp);
    pthread_rwlock_unlock(&b->hlock);
    return rc;
}

static void backend__subscribe(struct hx_backend *b)
{
    int qos[BACKEND_SUB_CHUNK];
    pthread_mutex_lock(&b->lock);
    b->sub_waiting = b->n_sub_chunks;
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < BACKEND_SUB_CHUNK; i++)
        qos[i] = b->qos;
    for (int c = 0; c < b->n_sub_chunks; c++) {
        struct backend__subctx *sc = &b->sub_ctx[c];
        pthread_rwlock_rdlock(&b->hlock);
        int rc = b->client ? sim_mqtt_subscribe(b->client, sc->n,
                                                (const char *const *)b->sub_topics + sc->first,
                                                qos, NULL)
                           : SIM_ERR_OFFLINE;
        pthread_rwlock_unlock(&b->hlock);
        if (rc != SIM_OK) {
            backend__sub_result(b, false, "the subscribe request could not be sent");
            return;
        }
    }
}

/* The topics to subscribe (struct hx_backend's sub_topics) and their SUBSCRIBE chunks. */
int backend__sub_plan(struct hx_backend *b, const char *const *devices, int n_devices)
{
    int n = devices && n_devices > 0 ? 2 * n_devices : 2;
    b->sub_topics = calloc((size_t)n, sizeof *b->sub_topics);
    b->n_sub_chunks = (n + BACKEND_SUB_CHUNK - 1) / BACKEND_SUB_CHUNK;
    b->sub_ctx = calloc((size_t)b->n_sub_chunks, sizeof *b->sub_ctx);
    if (!b->sub_topics || !b->sub_ctx)
        return HX_ERR_NOMEM;
    b->n_sub_topics = n;
    for (int i = 0; i < n; i++) {
        char t[BACKEND_DEVICE_ID_MAX + 32];
        if (n == 2 && !(devices && n_devices > 0))
            snprintf(t, sizeof t, "%s", i == 0 ? b->topic_registered : b->topic_query);
        else
            snprintf(t, sizeof t, i % 2 == 0 ? "scanners/%s/item_registered"
                                             : "scanners/%s/inventory/query", devices[i / 2]);
        if (!(b->sub_topics[i] = strdup(t)))
            return HX_ERR_NOMEM;
    }
    for (int c = 0; c < b->n_sub_chunks; c++) {
        b->sub_ctx[c].b = b;
        b->sub_ctx[c].first = c * BACKEND_SUB_CHUNK;
        b->sub_ctx[c].n = n - c * BACKEND_SUB_CHUNK < BACKEND_SUB_CHUNK ? n - c * BACKEND_SUB_CHUNK
                                                                       : BACKEND_SUB_CHUNK;
    }
    return HX_OK;
}

/*
 * Send, in publish order, unacked items not sent on this handle yet, as many as the window
 * allows (re-sends of items sent on an older handle are counted as republished). After a
 * connect (`fresh`) the link then opens to publishers, even with a backlog left: while there
 * is one, publishers only append and the link thread sends it as PUBACKs make room. Called
 * (and returns) with the ledger lock held; drops it to send.
 */
static void backend__pump(struct hx_backend *b, uint64_t gen, bool fresh)
{
    for (;;) {
        if (b->gen != gen || b->link != (fresh ? LINK_FRESH : LINK_UP))
            return; /* lost again: the next connection re-sends */
        uint64_t room = backend__room(b);
        size_t n = 0;
        for (struct backend__pend *p = b->pend_head; p && n < room; p = p->next)
            if (p->sent_gen != gen)
                n++;
        if (n == 0) {
            if (fresh) {
                b->link = LINK_UP;
                pthread_cond_broadcast(&b->changed);
            }
            return;
        }
        struct backend__pend *copy = malloc(n * sizeof *copy);
        if (!copy) {
            pthread_mutex_unlock(&b->lock);
            nanosleep(&(struct timespec){0, 10000000L}, NULL); /* out of memory: retry */
            pthread_mutex_lock(&b->lock);
            continue;
        }
        size_t k = 0;
        for (struct backend__pend *p = b->pend_head; p && k < n; p = p->next) {
            if (p->sent_gen == gen)
                continue;
            if (p->sent_gen != 0)
                b->r.republished++;
            backend__pend_sent(b, p);
            copy[k++] = *p;
        }
        pthread_mutex_unlock(&b->lock);
        pthread_rwlock_rdlock(&b->hlock);
        int64_t sent_us = (int64_t)sim_clock_us();
        size_t sent = 0;
        for (; sent < k; sent++)
            if (backend__mqtt_send(b, copy[sent].topic, copy[sent].payload, copy[sent].len,
                                   b->qos, &copy[sent].token) != SIM_OK)
                break; /* the loss will be reported; the entries stay for the next client */
        pthread_rwlock_unlock(&b->hlock);
        pthread_mutex_lock(&b->lock);
        for (size_t i = 0; i < sent; i++) {
            struct backend__item *it = backend__find_item(b, copy[i].item_id);
            if (it && it->pend && it->pend->sent_gen == gen && it->pend->token == 0)
                backend__token_known(b, it->pend, gen, copy[i].token, sent_us);
        }
        free(copy);
        if (sent < k)
            return;
    }
}

/* The link thread: (re)connects with back-off, subscribes and re-sends after each connect. */
void *backend__link_thread(void *arg)
{
    struct hx_backend *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        if (b->link_stop)
            break;
        if (b->link == LINK_FRESH) {
            uint64_t gen = b->gen;
            pthread_mutex_unlock(&b->lock);
            backend__subscribe(b);
            pthread_mutex_lock(&b->lock);
            backend__pump(b, gen, true);
            continue;
        }
        if (b->link == LINK_UP && b->backlog > 0 && backend__room(b) > 0) {
            backend__pump(b, b->gen, false);
            continue;
        }
        if (b->link == LINK_WANT) {
            int64_t left_us = b->retry_at_us - (int64_t)sim_clock_us();
            if (left_us <= 0) {
                b->link = LINK_CONNECTING;
                pthread_mutex_unlock(&b->lock);
                int rc = backend__connect(b);
                pthread_mutex_lock(&b->lock);
                /* SIM_ERR_MQTT: connect_failed has had its words already */
                if (rc != SIM_OK && b->link == LINK_CONNECTING) {
                    b->link = LINK_WANT;
                    b->retry_at_us = (int64_t)sim_clock_us() + (int64_t)b->backoff_ms * 1000;
                    b->backoff_ms = b->backoff_ms * 2 < BACKEND_RETRY_MAX_MS
                                        ? b->backoff_ms * 2 : BACKEND_RETRY_MAX_MS;
                    b->connect_failed = true;
                    snprintf(b->fail_msg, sizeof b->fail_msg, "the MQTT client could not "
                             "start a connect (%s)", sim_strerror(rc));
                    pthread_cond_broadcast(&b->changed);
                }
                continue;
            }
            struct timespec dl;
            sim_clock_deadline(&dl, (int)((left_us + 999) / 1000));
            pthread_cond_timedwait(&b->link_cond, &b->lock, &dl);
            continue;
        }
        pthread_cond_wait(&b->link_cond, &b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* Stop the link thread (start failed, or stop). */
void backend__link_join(struct hx_backend *b)
{
    if (!b->link_running)
        return;
    pthread_mutex_lock(&b->lock);
    b->link_stop = true;
    backend__link_changed(b);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->linker, NULL);
    b->link_running = false;
}
