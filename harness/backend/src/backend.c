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
#include "hx/backend.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/clock.h"
#include "sim/mqtt.h"

#define BACKEND_PAYLOAD_MAX 4096   /* registrations/queries above this are malformed */
#define BACKEND_DEVICE_ID_MAX 64
#define BACKEND_NAME_MAX 32
#define BACKEND_SESSION_EXPIRY_S 3600
#define BACKEND_RETRY_MIN_MS 200   /* reconnect back-off: first wait after a failure */
#define BACKEND_RETRY_MAX_MS 2000  /* ... doubling up to this */
#define BACKEND_MIDS 65536         /* MQTT packet ids: 1..65535 */
#define BACKEND_COMMIT_MS 50        /* the ledger commits at least this often under load */
#define BACKEND_BATCH_US 2000       /* the backend thread takes its queue at most this often */
#define BACKEND_SUB_CHUNK 200       /* topics per SUBSCRIBE when subscribing device by device */
/* QoS 2 items in flight at once under MQTT 3.1.1, which has no Receive Maximum: mosquitto
   takes at most max_inflight_messages (20 by default) QoS 2 publishes of a client awaiting
   PUBREL and answers the rest with a PUBREC whose reason (0x97, quota exceeded) 3.1.1
   cannot carry: the publisher sees an accepted message that is dropped. */
#define BACKEND_QOS2_WINDOW_311 20

/* ---------------------------------------------------------------- types */

enum backend__kind { MSG_REGISTRATION, MSG_QUERY, MSG_ITEM };

/* One unit of work for the backend thread. */
struct backend__msg {
    struct backend__msg *next;
    enum backend__kind kind;
    int64_t at_us;       /* monotonic arrival (or publish) time */
    int64_t wall_ms;     /* wall clock, for the SQL rows */
    int32_t item_id;     /* MSG_ITEM */
    int32_t tag_quantity;
    char *topic;         /* points into data */
    char *device_id;     /* MSG_ITEM target, or NULL; points into data */
    char *name;          /* MSG_ITEM; points into data */
    size_t len;          /* payload length */
    char data[];         /* payload (NUL-terminated), then topic / strings */
};

/* An inventory answer, sent by the backend thread after it lets go of the ledger lock (the
   edge's handlers take that lock while Paho holds its own: never call the edge under it). */
struct backend__reply {
    struct backend__reply *next;
    size_t len;
    char topic[BACKEND_DEVICE_ID_MAX + 40];
    char payload[256];
};

/* An item publish whose PUBACK has not come (in publish order). */
struct backend__pend {
    struct backend__pend *prev, *next;
    int32_t item_id;
    uint64_t sent_gen;   /* handle generation it went out on; 0 = not sent yet */
    int token;           /* the mid of that send (its packet id); 0 = not known yet */
    size_t len;
    char topic[BACKEND_DEVICE_ID_MAX + 40];
    char payload[256];
};

/* Handler context of one MQTT client: handlers of an older client are ignored. Kept until
   free (a handler may still be returning while its client is destroyed). */
struct backend__conn {
    struct backend__conn *next;
    struct hx_backend *b;
    struct sim_mqtt *client; /* the client it serves (freed before the context) */
    uint64_t gen;
};

enum backend__link_state {
    LINK_IDLE,       /* not started, or stopped */
    LINK_WANT,       /* (re)connect at retry_at_us */
    LINK_CONNECTING, /* a connect is under way */
    LINK_FRESH,      /* connected: subscribe and re-send due */
    LINK_UP,         /* open: publishers send directly */
};

/* What the ledger knows about one item id, in memory. */
struct backend__item {
    int32_t item_id;
    int32_t tag_quantity;
    bool published;
    bool acked;            /* the broker acknowledged a copy of it (PUBACK) */
    uint32_t keys;         /* distinct idempotency keys stored */
    int64_t published_us;  /* monotonic */
    int64_t first_reg_us;  /* monotonic arrival of the first stored registration; 0 none */
    struct backend__pend *pend; /* its unacked publish, or NULL */
    bool refused;          /* the broker refused its publish (MQTT 5 PUBACK >= 0x80) */
    char name[BACKEND_NAME_MAX + 1];
    char target[BACKEND_DEVICE_ID_MAX + 1]; /* the device it was published to; "" = all */
    /* who registered it with which tag: the first and the latest registration, for the
       dashboard's item list (hx_backend_items) */
    char reg_device[2][BACKEND_DEVICE_ID_MAX + 1];
    char reg_tag[2][24];
};

struct hx_backend {
    /* options (copies) */
    char *uri, *client_id, *username, *password, *cafile, *certfile, *keyfile, *db_path;
    bool insecure;
    int mqtt_version;
    enum hx_backend_layout layout;
    bool clean_session;
    int keepalive_s;
    int qos;                       /* 1 or 2: subscriptions, items, answers */
    int connect_timeout_ms;
    char topic_registered[64];
    char topic_query[64];
    /* what the backend subscribes to: the layout's two wildcard topics, or (opts.devices)
       the registration and query topic of each of its own devices; in SUBSCRIBEs of up to
       BACKEND_SUB_CHUNK topics, each answered into its own context */
    char **sub_topics;
    int n_sub_topics;
    struct backend__subctx { struct hx_backend *b; int first, n; } *sub_ctx;
    int n_sub_chunks;
    int sub_waiting;               /* SUBACKs still due for the current round (under lock) */

    pthread_rwlock_t hlock;        /* guards the handle: read to use, write to replace */
    struct sim_mqtt *client;
    bool client_used;              /* a connect was made on it: replace before the next */
    struct backend__conn *conns;   /* contexts of every handle made (under hlock write) */

    /* ledger: all below under lock */
    pthread_mutex_t lock;
    pthread_cond_t changed;        /* counters moved / connection state changed */
    pthread_cond_t link_cond;      /* the link thread's: link state changed (not counters,
                                      which move with every message) */
    struct backend__item *items;   /* dense array */
    size_t n_items, cap_items;
    uint32_t *slots;               /* hash item_id -> index + 1 (0 = empty) */
    size_t cap_slots;              /* power of two */
    int32_t max_item_id;
    struct hx_ledger_report r;     /* counters (latencies filled on report) */
    /* published items with one / several keys stored, kept as they change so that a report
       does not walk the items */
    uint64_t reg_once, reg_twice;
    /* publish -> first registration of each item registered after its publish, in ms:
       lat[0..lat_sorted) sorted, the rest in arrival order until a report merges them in
       (so a report per second sorts one second's worth, not the whole run) */
    double *lat, *lat_tmp;
    size_t n_lat, cap_lat, lat_sorted;
    double lat_sum_ms;
    struct hx_backend_row *recent; /* ring */
    int recent_cap, recent_len, recent_head;
    uint64_t done;                 /* messages processed */
    bool connected, subscribed, sub_failed, connect_failed, disconnected;
    int connections;
    char fail_msg[256];
    /* link (under lock) */
    enum backend__link_state link;
    uint64_t gen;                  /* generation of the current handle */
    int64_t retry_at_us;
    int backoff_ms;
    bool link_stop;
    pthread_t linker;
    bool link_running;
    struct backend__pend *pend_head, *pend_tail;
    uint64_t n_pend;
    /* n_pend = inflight (sent on the current handle, PUBACK not in) + backlog (not sent on
       it yet). MQTT 5: at most recv_max in flight, the broker's Receive Maximum (mosquitto:
       max_inflight_messages, 20); MQTT 3.1.1: no limit (0) at QoS 1, and
       BACKEND_QOS2_WINDOW_311 at QoS 2. */
    uint64_t inflight, backlog;
    int recv_max;
    /* by mid (BACKEND_MIDS, made on the first connect): the entry sent with it on client
       `gen`, or an outcome that came before its send recorded the mid (early_us != 0) */
    struct backend__mid {
        struct backend__pend *pend; /* valid only while gen == b->gen */
        uint64_t gen;
        int64_t early_us;           /* when the early outcome arrived; 0 = none */
        uint64_t early_gen;
        int early_code;             /* 0 = PUBACK, >= 0x80 = refused */
    } *mids;

    /* queue: under qlock */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct backend__msg *head, *tail;
    uint64_t enqueued;
    bool stopping;

    pthread_t worker;
    bool worker_running;
    bool started;

    /* SQLite: backend thread (and create/free) only */
    sqlite3 *db;
    sqlite3_stmt *st_item, *st_tag, *st_key, *st_find, *st_begin, *st_commit;
    struct backend__reply *replies, **replies_tail; /* answers of the current batch */
};

/* ---------------------------------------------------------------- errors, clocks */

static _Thread_local char backend__err[512];

static void backend__set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void backend__set_error(const char *fmt, ...)
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

static int64_t backend__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t backend__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The link state moved: wake the link thread and anyone waiting for the connection (under
   lock). Counters have only `changed`, so the link thread sleeps through the traffic. */
static void backend__link_changed(struct hx_backend *b)
{
    pthread_cond_broadcast(&b->link_cond);
    pthread_cond_broadcast(&b->changed);
}

static char *backend__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---------------------------------------------------------------- validation, JSON */

static bool backend__valid_device_id(const char *s, size_t len)
{
    if (len == 0 || len > BACKEND_DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '+' || c == '#')
            return false;
    }
    return true;
}

/* RFID UID: 4, 7 or 10 bytes as upper-case hex. */
static bool backend__valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (n != 8 && n != 14 && n != 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* Well-formed UTF-8 without control characters. */
static bool backend__valid_text(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        int more;
        uint32_t cp;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            more = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + (size_t)more >= n)
            return false;
        for (int k = 1; k <= more; k++) {
            unsigned char cc = (unsigned char)s[i + (size_t)k];
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += (size_t)more + 1;
    }
    return true;
}

/* Append s as a JSON string body (no quotes) into out; returns bytes written or -1. */
static int backend__json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s; s++) {
        char c = *s;
        if (o + 3 >= cap)
            return -1;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = c;
        } else {
            out[o++] = c; /* control characters were refused before */
        }
    }
    out[o] = '\0';
    return (int)o;
}

/* A strict integer field: a JSON number without fraction, within [min, max]. */
static bool backend__json_int(const cJSON *obj, const char *name, double min, double max,
                              int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= min && d <= max) || d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

static const char *backend__json_str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* Parse a whole payload as one JSON object (nothing after it but whitespace). */
static cJSON *backend__parse_object(const char *payload, size_t len)
{
    if (len == 0 || len > BACKEND_PAYLOAD_MAX || memchr(payload, '\0', len))
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(payload, len, &end, false);
    if (!root)
        return NULL;
    for (const char *p = end; p && p < payload + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ---------------------------------------------------------------- item table */

static struct backend__item *backend__find_item(struct hx_backend *b, int32_t id)
{
    if (b->cap_slots == 0)
        return NULL;
    size_t mask = b->cap_slots - 1, i = ((uint32_t)id * 2654435761u) & mask;
    while (b->slots[i]) {
        struct backend__item *it = &b->items[b->slots[i] - 1];
        if (it->item_id == id)
            return it;
        i = (i + 1) & mask;
    }
    return NULL;
}

static int backend__grow_slots(struct hx_backend *b)
{
    size_t cap = b->cap_slots ? b->cap_slots * 2 : 1024;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return HX_ERR_NOMEM;
    for (size_t k = 0; k < b->n_items; k++) {
        size_t i = ((uint32_t)b->items[k].item_id * 2654435761u) & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)(k + 1);
    }
    free(b->slots);
    b->slots = slots;
    b->cap_slots = cap;
    return HX_OK;
}

/* Find or add item id (under lock). NULL when out of memory. */
static struct backend__item *backend__item(struct hx_backend *b, int32_t id)
{
    struct backend__item *it = backend__find_item(b, id);
    if (it)
        return it;
    if (b->n_items == b->cap_items) {
        size_t cap = b->cap_items ? b->cap_items * 2 : 1024;
        struct backend__item *items = realloc(b->items, cap * sizeof *items);
        if (!items)
            return NULL;
        b->items = items;
        b->cap_items = cap;
    }
    if ((b->n_items + 1) * 2 > b->cap_slots && backend__grow_slots(b) != HX_OK)
        return NULL;
    it = &b->items[b->n_items++];
    memset(it, 0, sizeof *it);
    it->item_id = id;
    size_t mask = b->cap_slots - 1, i = ((uint32_t)id * 2654435761u) & mask;
    while (b->slots[i])
        i = (i + 1) & mask;
    b->slots[i] = (uint32_t)b->n_items;
    if (id > b->max_item_id)
        b->max_item_id = id;
    return it;
}

/* The once/twice counters without (sign -1) or with (+1) item it as it stands (under lock). */
static void backend__count_item(struct hx_backend *b, const struct backend__item *it, int sign)
{
    if (!it->published || it->keys == 0)
        return;
    uint64_t *c = it->keys == 1 ? &b->reg_once : &b->reg_twice;
    *c = sign > 0 ? *c + 1 : *c - 1;
}

/* Record its latency once both its publish and its first registration are known, the
   registration after the publish (under lock). */
static void backend__add_latency(struct hx_backend *b, const struct backend__item *it)
{
    if (!it->published || it->keys != 1 || it->first_reg_us < it->published_us)
        return;
    if (b->n_lat == b->cap_lat) {
        size_t cap = b->cap_lat ? b->cap_lat * 2 : 1024;
        double *lat = realloc(b->lat, cap * sizeof *lat);
        if (!lat) {
            b->r.sql_errors++; /* out of memory: counted, the percentiles miss it */
            return;
        }
        b->lat = lat;
        b->cap_lat = cap;
    }
    double ms = (double)(it->first_reg_us - it->published_us) / 1000.0;
    b->lat[b->n_lat++] = ms;
    b->lat_sum_ms += ms;
}

static int backend__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sort the latencies that came since the last report into the sorted part (under lock).
   Out of memory: counted, and the sorted part stays as it was (readers see the older part). */
static void backend__settle_latencies(struct hx_backend *b)
{
    size_t old = b->lat_sorted, n = b->n_lat;
    if (old == n)
        return;
    qsort(b->lat + old, n - old, sizeof *b->lat, backend__cmp_double);
    if (old == 0) {
        b->lat_sorted = n;
        return;
    }
    double *out = realloc(b->lat_tmp, b->cap_lat * sizeof *out);
    if (!out) {
        b->r.sql_errors++;
        return;
    }
    b->lat_tmp = out;
    size_t i = 0, j = old, k = 0;
    while (i < old && j < n)
        out[k++] = b->lat[j] < b->lat[i] ? b->lat[j++] : b->lat[i++];
    while (i < old)
        out[k++] = b->lat[i++];
    while (j < n)
        out[k++] = b->lat[j++];
    b->lat_tmp = b->lat;
    b->lat = out;
    b->lat_sorted = n;
}

/* ---------------------------------------------------------------- SQL */

static const char backend__schema[] =
    "DROP TABLE IF EXISTS tags;"
    "DROP TABLE IF EXISTS items;"
    "CREATE TABLE items(item_id INTEGER PRIMARY KEY, name TEXT, tag_quantity INTEGER,"
    " device_id TEXT, published_ms INTEGER);"
    "CREATE TABLE tags(id INTEGER PRIMARY KEY, idem_key TEXT UNIQUE, item_id INTEGER,"
    " tag TEXT, device_id TEXT, seq INTEGER, registered_ms INTEGER);"
    "CREATE INDEX tags_tag ON tags(tag);";

static int backend__sql_open(struct hx_backend *b)
{
    const char *path = b->db_path ? b->db_path : ":memory:";
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &b->db, flags, NULL) != SQLITE_OK) {
        backend__set_error("cannot open the ledger database %s: %s; check the folder exists "
                           "and is writable", path, b->db ? sqlite3_errmsg(b->db) : "no memory");
        return HX_ERR_SQL;
    }
    sqlite3_busy_timeout(b->db, 5000);
    const char *pragmas = b->db_path ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                     : "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;";
    char *msg = NULL;
    if (sqlite3_exec(b->db, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(b->db, backend__schema, NULL, NULL, &msg) != SQLITE_OK) {
        backend__set_error("cannot set up the ledger tables in %s: %s; is it a SQLite file "
                           "in use by another program?", path, msg ? msg : "?");
        sqlite3_free(msg);
        return HX_ERR_SQL;
    }
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&b->st_item, "INSERT OR REPLACE INTO items(item_id, name, tag_quantity, device_id,"
                      " published_ms) VALUES(?,?,?,?,?)"},
        {&b->st_tag, "INSERT INTO tags(idem_key, item_id, tag, device_id, seq, registered_ms)"
                     " VALUES(?,?,?,?,?,?)"},
        {&b->st_key, "SELECT item_id, tag FROM tags WHERE idem_key = ?"},
        {&b->st_find, "SELECT t.item_id, i.name FROM tags t JOIN items i ON i.item_id ="
                      " t.item_id WHERE t.tag = ? ORDER BY t.id LIMIT 1"},
        {&b->st_begin, "BEGIN"},
        {&b->st_commit, "COMMIT"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        if (sqlite3_prepare_v2(b->db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK) {
            backend__set_error("cannot prepare a ledger statement: %s", sqlite3_errmsg(b->db));
            return HX_ERR_SQL;
        }
    }
    return HX_OK;
}

static void backend__sql_close(struct hx_backend *b)
{
    sqlite3_finalize(b->st_item);
    sqlite3_finalize(b->st_tag);
    sqlite3_finalize(b->st_key);
    sqlite3_finalize(b->st_find);
    sqlite3_finalize(b->st_begin);
    sqlite3_finalize(b->st_commit);
    b->st_item = b->st_tag = b->st_key = b->st_find = b->st_begin = b->st_commit = NULL;
    if (b->db)
        sqlite3_close(b->db);
    b->db = NULL;
}

/* Run a prepared statement that returns no rows (BEGIN, COMMIT). */
static void backend__sql_run(struct hx_backend *b, sqlite3_stmt *st)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        b->r.sql_errors++;
    sqlite3_reset(st);
}

/* ---------------------------------------------------------------- publishing */

/* Hand one message to the edge; the caller holds hlock for reading. *mid (if given) gets the
   mid of a QoS > 0 publish, which its outcome (backend__on_published) carries. Returns the
   edge's code (sim/err.h). */
static int backend__mqtt_send(struct hx_backend *b, const char *topic, const void *payload,
                              size_t len, int qos, int *mid)
{
    if (mid)
        *mid = 0;
    return b->client ? sim_mqtt_publish(b->client, topic, payload, len, qos, false, mid)
                     : SIM_ERR_OFFLINE;
}

/* Publish anything not tracked (answers, raw): fails while disconnected. */
static int backend__send(struct hx_backend *b, const char *topic, const void *payload,
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

static void backend__pend_unlink(struct hx_backend *b, struct backend__pend *p)
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

static void backend__pend_append(struct hx_backend *b, struct backend__pend *p)
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
static uint64_t backend__room(const struct hx_backend *b)
{
    if (b->recv_max <= 0)
        return UINT64_MAX;
    return b->inflight < (uint64_t)b->recv_max ? (uint64_t)b->recv_max - b->inflight : 0;
}

static struct backend__item *backend__find_item(struct hx_backend *b, int32_t id);

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
static void backend__token_known(struct hx_backend *b, struct backend__pend *e, uint64_t gen,
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
        m->early_us = backend__mono_us();
        m->early_gen = c->gen;
        m->early_code = code;
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---------------------------------------------------------------- processing (backend thread) */

static void backend__remember_row(struct hx_backend *b, const struct backend__item *it,
                                  const char *tag, const char *device_id, int64_t wall_ms)
{
    struct hx_backend_row *row = &b->recent[b->recent_head];
    b->recent_head = (b->recent_head + 1) % b->recent_cap;
    if (b->recent_len < b->recent_cap)
        b->recent_len++;
    memset(row, 0, sizeof *row);
    row->item_id = it->item_id;
    snprintf(row->item_name, sizeof row->item_name, "%s", it->name);
    snprintf(row->tag, sizeof row->tag, "%s", tag);
    snprintf(row->device_id, sizeof row->device_id, "%s", device_id);
    row->count = it->keys;
    row->registered_ms = wall_ms;
}

/* The device id a per-device topic names ("scanners/<id>/..."), or NULL for the seed layout. */
static bool backend__topic_device(const struct hx_backend *b, const char *topic,
                                  const char **id, size_t *len)
{
    *id = NULL;
    *len = 0;
    if (b->layout != HX_BACKEND_LAYOUT_PER_DEVICE)
        return true;
    if (strncmp(topic, "scanners/", 9) != 0)
        return false;
    const char *s = topic + 9, *slash = strchr(s, '/');
    if (!slash)
        return false;
    *id = s;
    *len = (size_t)(slash - s);
    return true;
}

static void backend__process_registration(struct hx_backend *b, const struct backend__msg *m)
{
    b->r.registrations_received++;
    cJSON *root = backend__parse_object(m->data, m->len);
    int64_t item_id, tag_quantity, seq;
    const char *tag, *device_id;
    const char *topic_id;
    size_t topic_id_len;
    if (!root || !backend__json_int(root, "item_id", 1, INT32_MAX, &item_id) ||
        !backend__json_int(root, "tag_quantity", 1, 100000, &tag_quantity) ||
        !backend__json_int(root, "seq", 0, UINT32_MAX, &seq) ||
        !(tag = backend__json_str(root, "tag")) || !backend__valid_tag(tag) ||
        !(device_id = backend__json_str(root, "device_id")) ||
        !backend__valid_device_id(device_id, strlen(device_id)) ||
        !backend__topic_device(b, m->topic, &topic_id, &topic_id_len) ||
        (topic_id && (topic_id_len != strlen(device_id) ||
                      memcmp(topic_id, device_id, topic_id_len) != 0))) {
        b->r.malformed++;
        cJSON_Delete(root);
        return;
    }
    char key[BACKEND_DEVICE_ID_MAX + 16];
    snprintf(key, sizeof key, "%s:%" PRId64, device_id, seq);
    sqlite3_stmt *st = b->st_tag;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, item_id);
    sqlite3_bind_text(st, 3, tag, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, device_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, seq);
    sqlite3_bind_int64(st, 6, m->wall_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT) {
        /* the key is known: the device's own re-send, or (same key, other content) a bug */
        bool same = false;
        sqlite3_stmt *q = b->st_key;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, key, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW)
            same = sqlite3_column_int64(q, 0) == item_id &&
                   strcmp((const char *)sqlite3_column_text(q, 1), tag) == 0;
        sqlite3_reset(q);
        if (same)
            b->r.duplicate_deliveries++;
        else
            b->r.key_reused++;
        cJSON_Delete(root);
        return;
    }
    if (rc != SQLITE_DONE) {
        b->r.sql_errors++;
        cJSON_Delete(root);
        return;
    }
    b->r.rows_stored++;
    struct backend__item *it = backend__item(b, (int32_t)item_id);
    if (!it) {
        b->r.sql_errors++; /* out of memory: counted, nothing else to do */
        cJSON_Delete(root);
        return;
    }
    if (!it->published)
        b->r.unknown_items++;
    backend__count_item(b, it, -1);
    it->keys++;
    backend__count_item(b, it, +1);
    int slot = it->keys == 1 ? 0 : 1;
    snprintf(it->reg_device[slot], sizeof it->reg_device[slot], "%s", device_id);
    snprintf(it->reg_tag[slot], sizeof it->reg_tag[slot], "%s", tag);
    if (it->keys == 1) {
        it->first_reg_us = m->at_us;
        if (it->published)
            b->r.registered++;
        backend__add_latency(b, it);
    }
    backend__remember_row(b, it, tag, device_id, m->wall_ms);
    cJSON_Delete(root);
}

static void backend__process_query(struct hx_backend *b, const struct backend__msg *m)
{
    cJSON *root = backend__parse_object(m->data, m->len);
    int64_t seq;
    const char *tag, *device_id;
    const char *topic_id;
    size_t topic_id_len;
    if (!root || !(tag = backend__json_str(root, "tag")) || !backend__valid_tag(tag) ||
        !(device_id = backend__json_str(root, "device_id")) ||
        !backend__valid_device_id(device_id, strlen(device_id)) ||
        !backend__json_int(root, "seq", 0, UINT32_MAX, &seq) ||
        !backend__topic_device(b, m->topic, &topic_id, &topic_id_len) ||
        (topic_id && (topic_id_len != strlen(device_id) ||
                      memcmp(topic_id, device_id, topic_id_len) != 0))) {
        b->r.malformed_queries++;
        cJSON_Delete(root);
        return;
    }
    char name[2 * BACKEND_NAME_MAX + 2];
    struct backend__reply *rep = calloc(1, sizeof *rep);
    if (!rep) {
        b->r.sql_errors++; /* out of memory: counted */
        cJSON_Delete(root);
        return;
    }
    snprintf(rep->topic, sizeof rep->topic, "scanners/%s/inventory/reply", device_id);
    sqlite3_stmt *q = b->st_find;
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, tag, -1, SQLITE_TRANSIENT);
    int n;
    if (sqlite3_step(q) == SQLITE_ROW &&
        backend__json_escape(name, sizeof name, (const char *)sqlite3_column_text(q, 1)) >= 0)
        n = snprintf(rep->payload, sizeof rep->payload,
                     "{\"tag\":\"%s\",\"found\":true,\"item_id\":%" PRId64
                     ",\"item_name\":\"%s\"}", tag, (int64_t)sqlite3_column_int64(q, 0), name);
    else
        n = snprintf(rep->payload, sizeof rep->payload, "{\"tag\":\"%s\",\"found\":false}",
                     tag);
    sqlite3_reset(q);
    rep->len = (size_t)n;
    *b->replies_tail = rep;
    b->replies_tail = &rep->next;
    cJSON_Delete(root);
}

static void backend__process_item(struct hx_backend *b, const struct backend__msg *m)
{
    sqlite3_stmt *st = b->st_item;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, m->item_id);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, m->tag_quantity);
    if (m->device_id)
        sqlite3_bind_text(st, 4, m->device_id, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, m->wall_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        b->r.sql_errors++;
    sqlite3_reset(st);
}

/*
 * The backend thread. The ledger keeps one transaction open for up to BACKEND_COMMIT_MS
 * while batches keep coming: a commit per message would cap a file ledger at a few thousand
 * a second, and even in memory a commit per batch cost more than the inserts. Counters are
 * updated at once; the statements of the one connection see their own open transaction;
 * stop commits what is open.
 */
static void *backend__worker(void *arg)
{
    struct hx_backend *b = arg;
    const int64_t commit_us = BACKEND_COMMIT_MS * 1000;
    bool in_txn = false;
    int64_t txn_start = 0;
    for (;;) {
        pthread_mutex_lock(&b->qlock);
        while (!b->head && !b->stopping && in_txn) {
            struct timespec dl;
            int64_t left_us = txn_start + commit_us - backend__mono_us();
            if (left_us <= 0)
                break;
            sim_clock_deadline(&dl, (int)((left_us + 999) / 1000));
            if (pthread_cond_timedwait(&b->qcond, &b->qlock, &dl) != 0)
                break;
        }
        while (!b->head && !b->stopping && !in_txn)
            pthread_cond_wait(&b->qcond, &b->qlock);
        struct backend__msg *batch = b->head;
        b->head = b->tail = NULL;
        bool stopping = b->stopping;
        pthread_mutex_unlock(&b->qlock);

        uint64_t n = 0;
        pthread_mutex_lock(&b->lock);
        b->replies = NULL;
        b->replies_tail = &b->replies;
        int64_t t0 = backend__mono_us();
        if (batch && !in_txn) {
            backend__sql_run(b, b->st_begin);
            in_txn = true;
            txn_start = t0;
        }
        for (struct backend__msg *m = batch; m; m = m->next, n++) {
            switch (m->kind) {
            case MSG_REGISTRATION: backend__process_registration(b, m); break;
            case MSG_QUERY: backend__process_query(b, m); break;
            case MSG_ITEM: backend__process_item(b, m); break;
            }
        }
        if (in_txn && (stopping || !batch || backend__mono_us() - txn_start >= commit_us)) {
            backend__sql_run(b, b->st_commit);
            in_txn = false;
            b->r.ledger_batches++;
        }
        b->r.ledger_busy_ms += (double)(backend__mono_us() - t0) / 1000.0;
        struct backend__reply *replies = b->replies;
        b->replies = NULL;
        if (!replies) {
            b->done += n;
            pthread_cond_broadcast(&b->changed);
        }
        pthread_mutex_unlock(&b->lock);
        if (replies) {
            uint64_t sent = 0;
            while (replies) {
                struct backend__reply *next = replies->next;
                if (backend__send(b, replies->topic, replies->payload, replies->len, b->qos) ==
                    HX_OK)
                    sent++;
                free(replies);
                replies = next;
            }
            pthread_mutex_lock(&b->lock);
            b->r.inventory_answered += sent;
            b->done += n;
            pthread_cond_broadcast(&b->changed);
            pthread_mutex_unlock(&b->lock);
        }
        while (batch) {
            struct backend__msg *next = batch->next;
            free(batch);
            batch = next;
        }
        if (stopping && !in_txn) {
            pthread_mutex_lock(&b->qlock);
            bool empty = !b->head;
            pthread_mutex_unlock(&b->qlock);
            if (empty)
                break;
        }
        /* Under load, messages come faster than one wake-up each can pay for: let them
           gather for the rest of BACKEND_BATCH_US (an idle thread still takes the first at
           once). Fewer wake-ups of this thread, and of the edge's thread signalling it. */
        int64_t rest_us = t0 + BACKEND_BATCH_US - backend__mono_us();
        if (n > 0 && !stopping && rest_us > 0)
            nanosleep(&(struct timespec){0, (long)rest_us * 1000L}, NULL);
    }
    return NULL;
}

static void backend__enqueue(struct hx_backend *b, struct backend__msg *m)
{
    pthread_mutex_lock(&b->qlock);
    m->next = NULL;
    bool was_empty = !b->head;
    if (b->tail)
        b->tail->next = m;
    else
        b->head = m;
    b->tail = m;
    b->enqueued++;
    if (was_empty)
        pthread_cond_signal(&b->qcond);
    pthread_mutex_unlock(&b->qlock);
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
    m->at_us = backend__mono_us();
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
        b->retry_at_us = backend__mono_us(); /* at once; back-off after a failed attempt */
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
    b->retry_at_us = backend__mono_us() + (int64_t)b->backoff_ms * 1000;
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
static int backend__new_client(struct hx_backend *b)
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
static int backend__sub_plan(struct hx_backend *b, const char *const *devices, int n_devices)
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
        int64_t sent_us = backend__mono_us();
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
static void *backend__link_thread(void *arg)
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
            int64_t left_us = b->retry_at_us - backend__mono_us();
            if (left_us <= 0) {
                b->link = LINK_CONNECTING;
                pthread_mutex_unlock(&b->lock);
                int rc = backend__connect(b);
                pthread_mutex_lock(&b->lock);
                /* SIM_ERR_MQTT: connect_failed has had its words already */
                if (rc != SIM_OK && b->link == LINK_CONNECTING) {
                    b->link = LINK_WANT;
                    b->retry_at_us = backend__mono_us() + (int64_t)b->backoff_ms * 1000;
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
static void backend__link_join(struct hx_backend *b)
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

int hx_backend_create(const struct hx_backend_opts *o, struct hx_backend **out)
{
    backend__err[0] = '\0';
    if (!out || !o || !o->uri || !*o->uri) {
        backend__set_error("hx_backend_create: options with a broker uri are needed");
        return HX_ERR_INVAL;
    }
    *out = NULL;
    if (o->mqtt_version != 0 && o->mqtt_version != 4 && o->mqtt_version != 5) {
        backend__set_error("hx_backend_create: MQTT version %d is not supported; use 4 "
                           "(3.1.1) or 5", o->mqtt_version);
        return HX_ERR_INVAL;
    }
    if (o->layout != HX_BACKEND_LAYOUT_SEED && o->layout != HX_BACKEND_LAYOUT_PER_DEVICE) {
        backend__set_error("hx_backend_create: unknown topic layout %d", (int)o->layout);
        return HX_ERR_INVAL;
    }
    struct hx_backend *b = calloc(1, sizeof *b);
    if (!b) {
        backend__set_error("out of memory creating the backend");
        return HX_ERR_NOMEM;
    }
    int rc = HX_OK;
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
    if (!b->uri || !b->client_id || !b->recent || (o->username && !b->username) ||
        (o->password && !b->password) || (o->cafile && !b->cafile) ||
        (o->certfile && !b->certfile) || (o->keyfile && !b->keyfile) ||
        (o->db_path && !b->db_path)) {
        backend__set_error("out of memory creating the backend");
        rc = HX_ERR_NOMEM;
        goto exit;
    }
    if (b->layout == HX_BACKEND_LAYOUT_SEED) {
        snprintf(b->topic_registered, sizeof b->topic_registered, "item_registered");
        snprintf(b->topic_query, sizeof b->topic_query, "inventory/query");
    } else {
        snprintf(b->topic_registered, sizeof b->topic_registered, "scanners/+/item_registered");
        snprintf(b->topic_query, sizeof b->topic_query, "scanners/+/inventory/query");
    }
    if (o->devices && o->n_devices > 0 && b->layout == HX_BACKEND_LAYOUT_SEED) {
        backend__set_error("a backend for a list of devices needs the per-device layout (in "
                           "the seed layout every device shares one topic)");
        rc = HX_ERR_INVAL;
        goto exit;
    }
    for (int i = 0; o->devices && i < o->n_devices; i++)
        if (!o->devices[i] || !*o->devices[i] || strlen(o->devices[i]) > BACKEND_DEVICE_ID_MAX ||
            strpbrk(o->devices[i], "+#/")) {
            backend__set_error("device %d of the backend's list is not a device id", i);
            rc = HX_ERR_INVAL;
            goto exit;
        }
    if ((rc = backend__sub_plan(b, o->devices, o->n_devices)) != HX_OK) {
        backend__set_error("out of memory creating the backend");
        goto exit;
    }
    if ((rc = backend__sql_open(b)) != HX_OK)
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

    /* the first connect must work: a refusal or no answer is an error, not a retry */
    struct timespec dl;
    sim_clock_deadline(&dl, b->connect_timeout_ms);
    int wrc = 0;
    pthread_mutex_lock(&b->lock);
    while (!b->subscribed && !b->sub_failed && !b->connect_failed && wrc == 0)
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

int hx_backend_publish_item(struct hx_backend *b, const char *device_id, int32_t item_id,
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
    char topic[BACKEND_DEVICE_ID_MAX + 40], payload[256], esc[2 * BACKEND_NAME_MAX + 2];
    if (per_device)
        snprintf(topic, sizeof topic, "scanners/%s/item_registration", device_id);
    else
        snprintf(topic, sizeof topic, "item_registration");
    backend__json_escape(esc, sizeof esc, name);
    int n = snprintf(payload, sizeof payload,
                     "{\"item_id\":%" PRId32 ",\"item_name\":\"%s\",\"tag_quantity\":%" PRId32
                     "}", item_id, esc, tag_quantity);

    /* record first (a registration must never find its item missing), then send */
    struct backend__msg *m = malloc(sizeof *m + nl + 1 + dl + 1);
    if (!m) {
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
    struct backend__pend *e = calloc(1, sizeof *e);
    if (!e) {
        free(m);
        backend__set_error("out of memory publishing item %" PRId32, item_id);
        return HX_ERR_NOMEM;
    }
    e->item_id = item_id;
    snprintf(e->topic, sizeof e->topic, "%s", topic);
    memcpy(e->payload, payload, (size_t)n);
    e->len = (size_t)n;
    /* handle before ledger lock: the handle cannot be replaced between the check that the
       link is open and the send */
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
    if (it->published) {
        b->r.republished++;
        free(m);
        m = NULL;
    } else {
        it->published = true;
        it->published_us = backend__mono_us();
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
    /* into the unacked list (a re-published id replaces its older entry, at the end) */
    it->refused = false;
    if (it->pend) {
        backend__pend_unlink(b, it->pend);
        free(it->pend);
    }
    it->pend = e;
    uint64_t gen = b->gen;
    bool up = b->link == LINK_UP;
    /* in order and within the window, or the link thread sends it */
    bool open = up && b->backlog == 0 && backend__room(b) > 0;
    if (open)
        e->sent_gen = gen;
    backend__pend_append(b, e);
    if (!up)
        b->r.held_offline++; /* the link thread sends it after the (re)connect */
    else if (!open)
        pthread_cond_signal(&b->link_cond);
    pthread_mutex_unlock(&b->lock);
    int token = 0;
    int64_t sent_us = backend__mono_us();
    int prc = open ? backend__mqtt_send(b, topic, payload, (size_t)n, b->qos, &token) : SIM_OK;
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
