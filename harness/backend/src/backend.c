/*
 * backend.c - the backend role (hx/backend.h): an MQTT client on the MQTT edge (sim/mqtt.h)
 * + SQLite ledger.
 *
 * Flow: the edge's callback thread copies each arriving message into a FIFO (queue lock only,
 * never blocks long) and returns. The backend thread takes the whole FIFO at once and
 * processes it as one batch inside one SQL transaction: strict parse (cJSON), INSERT into
 * tags with the UNIQUE idempotency key (a constraint violation = the device's own duplicate),
 * counters and latencies in memory, inventory answers published from this thread. Items are
 * recorded in memory by hx_backend_publish_item() before they are sent, and their SQL row goes
 * through the same FIFO, so a registration can never overtake its item.
 *
 * Connection (link thread): the edge never reconnects and never buffers by itself, and no
 * client library re-sends here (Paho 1.3.12 would re-send its in-flight QoS 1 publishes from
 * freed memory; paho.mqtt.c #1592). After a loss the link thread destroys the client (never
 * inside one of its handlers), makes a fresh one (same client id, persistent session),
 * reconnects with back-off, re-subscribes, and re-publishes in order every item whose PUBACK
 * never came (the unacked list, item id -> topic + payload; an entry leaves on its PUBACK, or
 * on an MQTT 5 PUBACK that refuses it: the item counts as refused and is not re-sent). Both
 * are found by the publish's mid on the current client. publish_item while the link is not
 * open only appends to that list. Devices drop a second copy of an item by its id, so a
 * re-send is harmless.
 *
 * Window (MQTT 5): at most the broker's Receive Maximum (from the CONNACK) item publishes are
 * in flight; the entries beyond it wait in the list, in order (publish_item appends behind
 * them), and the link thread sends them as PUBACKs make room (backend__pump, which also does
 * the re-send after a connect). Paho would queue them itself and send from that queue only
 * about every 50 ms.
 *
 * PUBACK before mid: the outcome of a publish may arrive before the call that sent it has
 * returned its mid (the edge's thread runs meanwhile). An outcome whose mid matches no entry
 * is kept in the mid table (`mids`) with its time, and applied when the send records its mid,
 * if it came after that send started.
 *
 * Locks: handle lock (rwlock: read = calling the edge with b->client, write = replacing it),
 * ledger lock (counters, item table, unacked list, mid table, link state, recent rows, SQL)
 * and queue lock; the nesting is handle -> ledger -> queue. The edge's handlers take the
 * ledger or queue lock only, and nobody calls the edge under them (its Paho implementation
 * calls back while holding Paho's own lock). SQLite is used by the backend thread only.
 */
#include "backend_internal.h"

/* ---------------------------------------------------------------- errors, clocks */

static _Thread_local char backend__err[512];

void backend__set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(backend__err, sizeof backend__err, fmt, ap);
    va_end(ap);
}

const char *hx_backend_last_error(void)
{
    return backend__err[0] ? backend__err : "no error";
}

int64_t backend__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The link state moved: wake the link thread and anyone waiting for the connection (under
   lock). Counters have only `changed`, so the link thread sleeps through the traffic. */
void backend__link_changed(struct hx_backend *b)
{
    pthread_cond_broadcast(&b->link_cond);
    pthread_cond_broadcast(&b->changed);
}

static char *backend__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---------------------------------------------------------------- API */

static void backend__destroy(struct hx_backend *b)
{
    sim_mqtt_destroy(b->client);
    b->client = NULL;
    free(b->mids);
    while (b->conns) {
        struct backend__conn *next = b->conns->next;
        free(b->conns);
        b->conns = next;
    }
    while (b->pend_head) {
        struct backend__pend *next = b->pend_head->next;
        free(b->pend_head);
        b->pend_head = next;
    }
    backend__sql_close(b);
    struct backend__msg *m = b->head;
    while (m) {
        struct backend__msg *next = m->next;
        free(m);
        m = next;
    }
    pthread_rwlock_destroy(&b->hlock);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->qlock);
    pthread_cond_destroy(&b->changed);
    pthread_cond_destroy(&b->link_cond);
    pthread_cond_destroy(&b->qcond);
    for (int i = 0; b->sub_topics && i < b->n_sub_topics; i++)
        free(b->sub_topics[i]);
    free(b->sub_topics);
    free(b->sub_ctx);
    free(b->items);
    free(b->lat);
    free(b->lat_tmp);
    free(b->slots);
    free(b->recent);
    free(b->uri);
    free(b->client_id);
    free(b->username);
    if (b->password) {
        memset(b->password, 0, strlen(b->password));
        free(b->password);
    }
    free(b->cafile);
    free(b->certfile);
    free(b->keyfile);
    free(b->db_path);
    free(b);
}

/* The options that need no allocation: HX_OK, or HX_ERR_INVAL with the reason set. */
static int backend__check_opts(const struct hx_backend_opts *o)
{
    if (o->mqtt_version != 0 && o->mqtt_version != 4 && o->mqtt_version != 5) {
        backend__set_error("hx_backend_create: MQTT version %d is not supported; use 4 "
                           "(3.1.1) or 5", o->mqtt_version);
        return HX_ERR_INVAL;
    }
    if (o->layout != HX_BACKEND_LAYOUT_SEED && o->layout != HX_BACKEND_LAYOUT_PER_DEVICE) {
        backend__set_error("hx_backend_create: unknown topic layout %d", (int)o->layout);
        return HX_ERR_INVAL;
    }
    if (o->devices && o->n_devices > 0 && o->layout == HX_BACKEND_LAYOUT_SEED) {
        backend__set_error("a backend for a list of devices needs the per-device layout (in "
                           "the seed layout every device shares one topic)");
        return HX_ERR_INVAL;
    }
    for (int i = 0; o->devices && i < o->n_devices; i++)
        if (!o->devices[i] || !*o->devices[i] || strlen(o->devices[i]) > BACKEND_DEVICE_ID_MAX ||
            strpbrk(o->devices[i], "+#/")) {
            backend__set_error("device %d of the backend's list is not a device id", i);
            return HX_ERR_INVAL;
        }
    return HX_OK;
}

static void backend__init_locks(struct hx_backend *b)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    /* writer first: a steady stream of publishers must not starve the handle's replacement
       (nobody takes it twice for reading, so this cannot deadlock) */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&b->hlock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->qlock, NULL);
    pthread_cond_init(&b->changed, &ca);
    pthread_cond_init(&b->link_cond, &ca);
    pthread_cond_init(&b->qcond, &ca);
    pthread_condattr_destroy(&ca);
}

/* Copy the options into b, with their defaults and the layout's topics; HX_ERR_NOMEM. */
static int backend__take_opts(struct hx_backend *b, const struct hx_backend_opts *o)
{
    char default_id[64];
    snprintf(default_id, sizeof default_id, "scansim-backend-%d", (int)getpid());
    b->uri = strdup(o->uri);
    b->client_id = strdup(o->client_id ? o->client_id : default_id);
    b->username = backend__strdup(o->username);
    b->password = backend__strdup(o->password);
    b->cafile = backend__strdup(o->cafile);
    b->certfile = backend__strdup(o->certfile);
    b->keyfile = backend__strdup(o->keyfile);
    b->insecure = o->insecure;
    b->db_path = backend__strdup(o->db_path);
    b->mqtt_version = o->mqtt_version == 5 ? 5 : 4;
    b->layout = o->layout;
    b->clean_session = o->clean_session;
    b->keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : 30;
    b->qos = o->qos == 2 ? 2 : 1;
    b->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    b->recent_cap = o->recent_rows > 0 ? o->recent_rows : 32;
    b->recent = calloc((size_t)b->recent_cap, sizeof *b->recent);
    if (b->layout == HX_BACKEND_LAYOUT_SEED) {
        snprintf(b->topic_registered, sizeof b->topic_registered, "item_registered");
        snprintf(b->topic_query, sizeof b->topic_query, "inventory/query");
    } else {
        snprintf(b->topic_registered, sizeof b->topic_registered, "scanners/+/item_registered");
        snprintf(b->topic_query, sizeof b->topic_query, "scanners/+/inventory/query");
    }
    if (!b->uri || !b->client_id || !b->recent || (o->username && !b->username) ||
        (o->password && !b->password) || (o->cafile && !b->cafile) ||
        (o->certfile && !b->certfile) || (o->keyfile && !b->keyfile) ||
        (o->db_path && !b->db_path) || backend__sub_plan(b, o->devices, o->n_devices) != HX_OK) {
        backend__set_error("out of memory creating the backend");
        return HX_ERR_NOMEM;
    }
    return HX_OK;
}

int hx_backend_create(const struct hx_backend_opts *o, struct hx_backend **out)
{
    backend__err[0] = '\0';
    if (!out || !o || !o->uri || !*o->uri) {
        backend__set_error("hx_backend_create: options with a broker uri are needed");
        return HX_ERR_INVAL;
    }
    *out = NULL;
    int rc = backend__check_opts(o);
    if (rc != HX_OK)
        return rc;
    struct hx_backend *b = calloc(1, sizeof *b);
    if (!b) {
        backend__set_error("out of memory creating the backend");
        return HX_ERR_NOMEM;
    }
    backend__init_locks(b);
    if ((rc = backend__take_opts(b, o)) != HX_OK || (rc = backend__sql_open(b)) != HX_OK)
        goto exit;
    b->backoff_ms = BACKEND_RETRY_MIN_MS;
    int prc = backend__new_client(b); /* made here so that a bad uri is an error at once */
    if (prc != SIM_OK) {
        backend__set_error("cannot create the MQTT client for %s: %s; check the uri "
                           "(tcp://host:port or ssl://host:port)", b->uri, sim_strerror(prc));
        rc = HX_ERR_INVAL;
        goto exit;
    }
    if (pthread_create(&b->worker, NULL, backend__worker, b) != 0) {
        backend__set_error("cannot start the backend thread: %s", strerror(errno));
        rc = HX_ERR_SYS;
        goto exit;
    }
    b->worker_running = true;
    *out = b;
    b = NULL;
exit:
    if (b)
        backend__destroy(b);
    return rc;
}

int hx_backend_start(struct hx_backend *b)
{
    if (!b) {
        backend__set_error("hx_backend_start: no backend given");
        return HX_ERR_INVAL;
    }
    if (b->started)
        return HX_OK;
    if (!b->worker_running) { /* started again after a stop */
        b->stopping = false;
        if (pthread_create(&b->worker, NULL, backend__worker, b) != 0) {
            backend__set_error("cannot start the backend thread: %s", strerror(errno));
            return HX_ERR_SYS;
        }
        b->worker_running = true;
    }
    pthread_mutex_lock(&b->lock);
    b->subscribed = b->sub_failed = b->connect_failed = b->disconnected = false;
    b->fail_msg[0] = '\0';
    b->link = LINK_WANT;
    b->retry_at_us = 0;
    b->backoff_ms = BACKEND_RETRY_MIN_MS;
    b->link_stop = false;
    pthread_mutex_unlock(&b->lock);
    if (pthread_create(&b->linker, NULL, backend__link_thread, b) != 0) {
        backend__set_error("cannot start the backend's connection thread: %s", strerror(errno));
        pthread_mutex_lock(&b->lock);
        b->link = LINK_IDLE;
        pthread_mutex_unlock(&b->lock);
        return HX_ERR_SYS;
    }
    b->link_running = true;

    /* the first connect must work: a refusal or no answer is an error, not a retry. Started
       means open to publishers: subscribed, and the link thread has opened the link (until
       then an item would wait in the list and count as held offline) */
    struct timespec dl;
    sim_clock_deadline(&dl, b->connect_timeout_ms);
    int wrc = 0;
    pthread_mutex_lock(&b->lock);
    while (!(b->subscribed && b->link == LINK_UP) && !b->sub_failed && !b->connect_failed &&
           wrc == 0)
        wrc = pthread_cond_timedwait(&b->changed, &b->lock, &dl);
    bool ok = b->subscribed;
    char why[256];
    snprintf(why, sizeof why, "%s", b->fail_msg[0] ? b->fail_msg : "no answer in time");
    pthread_mutex_unlock(&b->lock);
    if (ok) {
        b->started = true;
        return HX_OK;
    }
    backend__set_error("the backend could not connect and subscribe to %s as '%s' within %d "
                       "ms: %s; check the broker runs, the uri, user name and password",
                       b->uri, b->client_id, b->connect_timeout_ms, why);
    backend__link_join(b);
    pthread_mutex_lock(&b->lock);
    b->link = LINK_IDLE;
    b->connected = false;
    pthread_mutex_unlock(&b->lock);
    pthread_rwlock_rdlock(&b->hlock);
    sim_mqtt_disconnect(b->client);
    pthread_rwlock_unlock(&b->hlock);
    return wrc ? HX_ERR_TIMEOUT : HX_ERR_PROTO;
}

int hx_backend_stop(struct hx_backend *b)
{
    if (!b) {
        backend__set_error("hx_backend_stop: no backend given");
        return HX_ERR_INVAL;
    }
    int rc = HX_OK;
    if (b->started) {
        b->started = false;
        backend__link_join(b); /* no reconnect from here on */
        pthread_mutex_lock(&b->lock);
        b->disconnected = false;
        b->link = LINK_IDLE; /* publish_item queues until the next start */
        pthread_mutex_unlock(&b->lock);
        pthread_rwlock_rdlock(&b->hlock);
        sim_mqtt_disconnect(b->client); /* disconnected() follows when one is under way */
        bool waiting = sim_mqtt_is_disconnecting(b->client);
        pthread_rwlock_unlock(&b->hlock);
        if (waiting) {
            struct timespec dl;
            sim_clock_deadline(&dl, 5000);
            int wrc = 0;
            pthread_mutex_lock(&b->lock);
            while (!b->disconnected && wrc == 0)
                wrc = pthread_cond_timedwait(&b->changed, &b->lock, &dl);
            pthread_mutex_unlock(&b->lock);
        }
    }
    if (b->worker_running) {
        pthread_mutex_lock(&b->qlock);
        b->stopping = true;
        pthread_cond_signal(&b->qcond);
        pthread_mutex_unlock(&b->qlock);
        pthread_join(b->worker, NULL);
        b->worker_running = false;
    }
    return rc;
}

void hx_backend_free(struct hx_backend *b)
{
    if (!b)
        return;
    hx_backend_stop(b);
    backend__destroy(b);
}

int32_t hx_backend_next_item_id(struct hx_backend *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    int32_t id = b->max_item_id < INT32_MAX ? b->max_item_id + 1 : 0;
    if (id > 0)
        b->max_item_id = id; /* reserved: two callers never get the same id */
    pthread_mutex_unlock(&b->lock);
    return id;
}

/* The arguments of hx_backend_publish_item: HX_OK, or HX_ERR_INVAL with the reason set. */
static int backend__check_item(const struct hx_backend *b, const char *device_id, int32_t item_id,
                               const char *name, int32_t tag_quantity)
{
    if (!b || item_id < 1 || !name || tag_quantity < 1 || tag_quantity > 100000) {
        backend__set_error("hx_backend_publish_item: item_id >= 1, a name and tag_quantity "
                           "1..100000 are needed");
        return HX_ERR_INVAL;
    }
    size_t nl = strlen(name);
    if (nl < 1 || nl > BACKEND_NAME_MAX || !backend__valid_text(name, nl)) {
        backend__set_error("item %" PRId32 ": the name must be 1..%d bytes of UTF-8 without "
                           "control characters (use hx_backend_publish_raw for hostile input)",
                           item_id, BACKEND_NAME_MAX);
        return HX_ERR_INVAL;
    }
    bool per_device = b->layout == HX_BACKEND_LAYOUT_PER_DEVICE;
    size_t dl = device_id ? strlen(device_id) : 0;
    if (per_device ? !backend__valid_device_id(device_id ? device_id : "", dl)
                   : device_id != NULL) {
        backend__set_error("item %" PRId32 ": %s", item_id,
                           per_device ? "the per-device layout needs a device id (1..64 "
                                        "printable characters, no '/', '+', '#')"
                                      : "the seed layout takes no device id (pass NULL)");
        return HX_ERR_INVAL;
    }
    return HX_OK;
}

/* The item's row for the backend thread (its SQL goes through the FIFO, so a registration
   never overtakes it) and its unacked-list entry with topic and payload; HX_ERR_NOMEM. */
static int backend__item_make(const char *device_id, int32_t item_id, const char *name,
                              int32_t tag_quantity, struct backend__msg **mo,
                              struct backend__pend **eo)
{
    size_t nl = strlen(name), dl = device_id ? strlen(device_id) : 0;
    struct backend__msg *m = malloc(sizeof *m + nl + 1 + dl + 1);
    struct backend__pend *e = calloc(1, sizeof *e);
    if (!m || !e) {
        free(m);
        free(e);
        backend__set_error("out of memory publishing item %" PRId32, item_id);
        return HX_ERR_NOMEM;
    }
    memset(m, 0, sizeof *m);
    m->kind = MSG_ITEM;
    m->item_id = item_id;
    m->tag_quantity = tag_quantity;
    m->wall_ms = backend__wall_ms();
    m->name = m->data;
    memcpy(m->name, name, nl + 1);
    if (device_id) {
        m->device_id = m->data + nl + 1;
        memcpy(m->device_id, device_id, dl + 1);
    }
    char esc[2 * BACKEND_NAME_MAX + 2];
    e->item_id = item_id;
    if (device_id)
        snprintf(e->topic, sizeof e->topic, "scanners/%s/item_registration", device_id);
    else
        snprintf(e->topic, sizeof e->topic, "item_registration");
    backend__json_escape(esc, sizeof esc, name);
    int n = snprintf(e->payload, sizeof e->payload,
                     "{\"item_id\":%" PRId32 ",\"item_name\":\"%s\",\"tag_quantity\":%" PRId32
                     "}", item_id, esc, tag_quantity);
    e->len = (size_t)n;
    *mo = m;
    *eo = e;
    return HX_OK;
}

/* Under the ledger lock: record the item (first publish) or count a re-publish, and put e
   into the unacked list (a re-published id replaces its older entry, at the end). True when
   the caller sends it now: the link is up, nothing waits before it, the window has room;
   otherwise the link thread sends it. NULL item: out of memory, nothing taken. */
static bool backend__item_record(struct hx_backend *b, struct backend__item *it,
                                 struct backend__msg *m, struct backend__pend *e,
                                 const char *device_id, const char *name, int32_t tag_quantity)
{
    if (it->published) {
        b->r.republished++;
        free(m);
    } else {
        it->published = true;
        it->published_us = (int64_t)sim_clock_us();
        it->tag_quantity = tag_quantity;
        snprintf(it->name, sizeof it->name, "%s", name);
        snprintf(it->target, sizeof it->target, "%s", device_id ? device_id : "");
        b->r.published++;
        if (it->keys > 0)
            b->r.registered++; /* registered before we published it: odd, but counted */
        backend__count_item(b, it, +1);
        backend__add_latency(b, it);
        backend__enqueue(b, m);
    }
    it->refused = false;
    if (it->pend) {
        backend__pend_unlink(b, it->pend);
        free(it->pend);
    }
    it->pend = e;
    bool up = b->link == LINK_UP;
    bool open = up && b->backlog == 0 && backend__room(b) > 0;
    if (open)
        e->sent_gen = b->gen;
    backend__pend_append(b, e);
    if (!up)
        b->r.held_offline++; /* the link thread sends it after the (re)connect */
    else if (!open)
        pthread_cond_signal(&b->link_cond);
    return open;
}

int hx_backend_publish_item(struct hx_backend *b, const char *device_id, int32_t item_id,
                            const char *name, int32_t tag_quantity)
{
    struct backend__msg *m;
    struct backend__pend *e;
    int rc = backend__check_item(b, device_id, item_id, name, tag_quantity);
    if (rc != HX_OK || (rc = backend__item_make(device_id, item_id, name, tag_quantity, &m, &e)) != HX_OK)
        return rc;
    /* the send's own copy: once in the list, e may be replaced by a re-publish of the id */
    char topic[sizeof e->topic], payload[sizeof e->payload];
    size_t len = e->len;
    memcpy(topic, e->topic, sizeof topic);
    memcpy(payload, e->payload, len);
    /* record first (a registration must never find its item missing), then send; handle
       before ledger lock: the handle cannot be replaced between the check that the link is
       open and the send */
    pthread_rwlock_rdlock(&b->hlock);
    pthread_mutex_lock(&b->lock);
    struct backend__item *it = backend__item(b, item_id);
    if (!it) {
        pthread_mutex_unlock(&b->lock);
        pthread_rwlock_unlock(&b->hlock);
        free(m);
        free(e);
        backend__set_error("out of memory recording item %" PRId32, item_id);
        return HX_ERR_NOMEM;
    }
    bool open = backend__item_record(b, it, m, e, device_id, name, tag_quantity);
    uint64_t gen = b->gen;
    pthread_mutex_unlock(&b->lock);
    int token = 0;
    int64_t sent_us = (int64_t)sim_clock_us();
    int prc = open ? backend__mqtt_send(b, topic, payload, len, b->qos, &token) : SIM_OK;
    pthread_rwlock_unlock(&b->hlock);
    if (open && prc == SIM_OK) {
        /* its outcome (PUBACK, or an MQTT 5 refusal) finds the entry by this mid */
        pthread_mutex_lock(&b->lock);
        struct backend__item *cur = backend__find_item(b, item_id);
        if (cur && cur->pend == e && e->sent_gen == gen)
            backend__token_known(b, e, gen, token, sent_us);
        pthread_mutex_unlock(&b->lock);
    }
    /* OFFLINE: the loss is being reported; the item goes out on the next connection */
    if (prc == SIM_OK || prc == SIM_ERR_OFFLINE)
        return HX_OK;
    pthread_mutex_lock(&b->lock);
    b->r.publish_failed++;
    struct backend__item *cur = backend__find_item(b, item_id);
    if (cur && cur->pend == e) {
        backend__pend_unlink(b, e);
        cur->pend = NULL;
        free(e);
    }
    pthread_mutex_unlock(&b->lock);
    backend__set_error("cannot publish item %" PRId32 " to %s on %s: %s", item_id, topic,
                       b->uri, sim_strerror(prc));
    return HX_ERR_PROTO;
}

int hx_backend_publish_raw(struct hx_backend *b, const char *topic, const void *payload,
                           size_t len, int qos)
{
    if (!b || !topic || !*topic || (!payload && len) || qos < 0 || qos > 2 || len > INT32_MAX) {
        backend__set_error("hx_backend_publish_raw: a topic, a payload and qos 0..2 are needed");
        return HX_ERR_INVAL;
    }
    return backend__send(b, topic, len ? payload : "", len, qos);
}

void hx_backend_report(struct hx_backend *b, struct hx_ledger_report *r)
{
    if (!r)
        return;
    memset(r, 0, sizeof *r);
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    backend__settle_latencies(b);
    *r = b->r;
    r->unacked = b->n_pend;
    r->receive_maximum = b->recv_max;
    r->registered_once = b->reg_once;
    r->registered_twice = b->reg_twice;
    r->lost = r->published - r->registered;
    size_t n = b->lat_sorted;
    if (n > 0) {
        /* nearest rank */
        const double *lat = b->lat;
        r->latency_p50_ms = lat[(size_t)((double)(n - 1) * 0.50 + 0.5)];
        r->latency_p90_ms = lat[(size_t)((double)(n - 1) * 0.90 + 0.5)];
        r->latency_p99_ms = lat[(size_t)((double)(n - 1) * 0.99 + 0.5)];
        r->latency_max_ms = lat[n - 1];
    }
    pthread_mutex_unlock(&b->lock);
}

size_t hx_backend_latencies(struct hx_backend *b, double **out)
{
    *out = NULL;
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    backend__settle_latencies(b);
    size_t n = b->lat_sorted;
    double *lat = n ? malloc(n * sizeof *lat) : NULL;
    if (lat)
        memcpy(lat, b->lat, n * sizeof *lat);
    pthread_mutex_unlock(&b->lock);
    *out = lat;
    return lat ? n : 0;
}

int hx_backend_wait_registered(struct hx_backend *b, uint64_t count, int timeout_ms)
{
    if (!b)
        return HX_ERR_INVAL;
    struct timespec dl;
    sim_clock_deadline(&dl, timeout_ms);
    int wrc = 0;
    pthread_mutex_lock(&b->lock);
    while (b->r.registered < count && wrc == 0)
        wrc = pthread_cond_timedwait(&b->changed, &b->lock, &dl);
    bool ok = b->r.registered >= count;
    uint64_t have = b->r.registered;
    pthread_mutex_unlock(&b->lock);
    if (ok)
        return HX_OK;
    backend__set_error("only %" PRIu64 " of %" PRIu64 " items were registered within %d ms",
                       have, count, timeout_ms);
    return HX_ERR_TIMEOUT;
}

int hx_backend_sync(struct hx_backend *b, int timeout_ms)
{
    if (!b)
        return HX_ERR_INVAL;
    pthread_mutex_lock(&b->qlock);
    uint64_t target = b->enqueued;
    pthread_mutex_unlock(&b->qlock);
    struct timespec dl;
    sim_clock_deadline(&dl, timeout_ms);
    int wrc = 0;
    pthread_mutex_lock(&b->lock);
    while (b->done < target && wrc == 0)
        wrc = pthread_cond_timedwait(&b->changed, &b->lock, &dl);
    bool ok = b->done >= target;
    pthread_mutex_unlock(&b->lock);
    if (ok)
        return HX_OK;
    backend__set_error("the backend did not process its queue within %d ms", timeout_ms);
    return HX_ERR_TIMEOUT;
}

int hx_backend_item_registrations(struct hx_backend *b, int32_t item_id)
{
    if (!b)
        return HX_ERR_INVAL;
    pthread_mutex_lock(&b->lock);
    const struct backend__item *it = backend__find_item(b, item_id);
    int n = it ? (int)it->keys : 0;
    pthread_mutex_unlock(&b->lock);
    return n;
}

bool hx_backend_item_finished(struct hx_backend *b, int32_t item_id)
{
    if (!b)
        return false;
    pthread_mutex_lock(&b->lock);
    const struct backend__item *it = backend__find_item(b, item_id);
    bool done = it && (it->keys > 0 || it->refused);
    pthread_mutex_unlock(&b->lock);
    return done;
}

int hx_backend_recent(struct hx_backend *b, struct hx_backend_row *rows, int max)
{
    if (!b || !rows || max <= 0)
        return 0;
    pthread_mutex_lock(&b->lock);
    int n = b->recent_len < max ? b->recent_len : max;
    for (int i = 0; i < n; i++) {
        int idx = (b->recent_head - 1 - i + 2 * b->recent_cap) % b->recent_cap;
        rows[i] = b->recent[idx];
    }
    pthread_mutex_unlock(&b->lock);
    return n;
}

static bool backend__item_matches(const struct backend__item *it, enum hx_items_filter f)
{
    switch (f) {
    case HX_ITEMS_PENDING: return it->keys == 0 && !it->refused;
    case HX_ITEMS_REGISTERED: return it->keys == 1;
    case HX_ITEMS_TWICE: return it->keys >= 2;
    case HX_ITEMS_LOST: return it->keys == 0 && it->refused;
    default: return true;
    }
}

int hx_backend_items(struct hx_backend *b, struct hx_backend_item *out, int max)
{
    return hx_backend_items_matching(b, HX_ITEMS_ALL, out, max, NULL);
}

int hx_backend_items_matching(struct hx_backend *b, enum hx_items_filter f,
                              struct hx_backend_item *out, int max, uint64_t *total)
{
    uint64_t all = 0;
    if (total)
        *total = 0;
    if (!b || !out || max <= 0)
        return 0;
    int n = 0;
    pthread_mutex_lock(&b->lock);
    /* the dense array grows in first-seen order: its tail holds the newest items */
    for (size_t i = b->n_items; i > 0 && (n < max || total); i--) {
        const struct backend__item *it = &b->items[i - 1];
        if (!it->published || !backend__item_matches(it, f))
            continue;
        all++;
        if (n >= max)
            continue;
        struct hx_backend_item *o = &out[n++];
        memset(o, 0, sizeof *o);
        o->item_id = it->item_id;
        o->tag_quantity = it->tag_quantity;
        snprintf(o->name, sizeof o->name, "%s", it->name);
        snprintf(o->target, sizeof o->target, "%s", it->target);
        o->registrations = it->keys;
        o->refused = it->refused;
        for (int k = 0; k < 2; k++) {
            snprintf(o->reg_device[k], sizeof o->reg_device[k], "%s", it->reg_device[k]);
            snprintf(o->reg_tag[k], sizeof o->reg_tag[k], "%s", it->reg_tag[k]);
        }
        o->latency_ms = it->first_reg_us >= it->published_us && it->keys
                            ? (double)(it->first_reg_us - it->published_us) / 1000.0 : -1;
    }
    pthread_mutex_unlock(&b->lock);
    if (total)
        *total = all;
    return n;
}

/* How many of the n sorted values are <= x. */
static size_t backend__count_le(const double *v, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void hx_backend_latency_histogram(struct hx_backend *b, const double *bounds_ms, int n_bounds,
                                  uint64_t *counts, double *sum_ms)
{
    for (int k = 0; k <= n_bounds; k++)
        counts[k] = 0;
    *sum_ms = 0;
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    backend__settle_latencies(b);
    size_t n = b->lat_sorted, below = 0;
    for (int k = 0; k < n_bounds; k++) {
        size_t le = backend__count_le(b->lat, n, bounds_ms[k]);
        counts[k] = le > below ? le - below : 0;
        below = le > below ? le : below;
    }
    counts[n_bounds] = n - below;
    *sum_ms = b->lat_sum_ms;
    pthread_mutex_unlock(&b->lock);
}

bool hx_backend_connected(struct hx_backend *b)
{
    if (!b)
        return false;
    pthread_mutex_lock(&b->lock);
    bool c = b->connected;
    pthread_mutex_unlock(&b->lock);
    return c;
}
