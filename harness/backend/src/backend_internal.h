/*
 * backend_internal.h - what the files of the backend role share (not installed): its
 * limits, struct hx_backend and the functions one file offers the others.
 *
 *   backend.c         the API (hx/backend.h): create, start, stop, publish, reports
 *   backend_codec.c   strict validation of payloads and JSON helpers
 *   backend_ledger.c  the item table, latencies, the SQLite ledger and the backend thread
 *                     that processes what arrives
 *   backend_link.c    the MQTT link: publishing, the unacked list, the edge's handlers and
 *                     the link thread that reconnects
 *
 * How they fit together (flow, locks): backend.c's opening comment.
 */
#ifndef BACKEND_INTERNAL_H
#define BACKEND_INTERNAL_H

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


/* backend.c: errors, clocks */
void backend__link_changed(struct hx_backend *b);
void backend__set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t backend__wall_ms(void);

/* backend_codec.c: validation, JSON */
int backend__json_escape(char *out, size_t cap, const char *s);
bool backend__json_int(const cJSON *obj, const char *name, double min, double max, int64_t *out);
const char *backend__json_str(const cJSON *obj, const char *name);
cJSON *backend__parse_object(const char *payload, size_t len);
bool backend__valid_device_id(const char *s, size_t len);
bool backend__valid_tag(const char *s);
bool backend__valid_text(const char *s, size_t n);

/* backend_ledger.c: item table, SQL, processing */
void backend__add_latency(struct hx_backend *b, const struct backend__item *it);
void backend__count_item(struct hx_backend *b, const struct backend__item *it, int sign);
void backend__enqueue(struct hx_backend *b, struct backend__msg *m);
struct backend__item *backend__find_item(struct hx_backend *b, int32_t id);
struct backend__item *backend__item(struct hx_backend *b, int32_t id);
void backend__settle_latencies(struct hx_backend *b);
void backend__sql_close(struct hx_backend *b);
int backend__sql_open(struct hx_backend *b);
void *backend__worker(void *arg);

/* backend_link.c: publishing, the link */
void backend__link_join(struct hx_backend *b);
void *backend__link_thread(void *arg);
int backend__mqtt_send(struct hx_backend *b, const char *topic, const void *payload, size_t len, int qos, int *mid);
int backend__new_client(struct hx_backend *b);
void backend__pend_append(struct hx_backend *b, struct backend__pend *p);
void backend__pend_unlink(struct hx_backend *b, struct backend__pend *p);
uint64_t backend__room(const struct hx_backend *b);
int backend__send(struct hx_backend *b, const char *topic, const void *payload, size_t len, int qos);
int backend__sub_plan(struct hx_backend *b, const char *const *devices, int n_devices);
void backend__token_known(struct hx_backend *b, struct backend__pend *e, uint64_t gen, int token, int64_t sent_us);

#endif
