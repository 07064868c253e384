/*
 * hx/backend.h - the cloud backend role with a SQLite ledger.
 *
 * The seed's backend, reused by the demo (one device), the fleet (thousands of devices) and
 * the scenarios. It publishes items (QoS 1), consumes registrations, answers inventory
 * queries, and keeps a ledger of which item got which tag from which device, so that a run can
 * check exactly-once effects at the business level: items registered once, twice (a conflict),
 * never (lost); QoS 1 duplicates of the device's own publishes (same idempotency key
 * "<device_id>:<seq>") are counted and stored once.
 *
 * Topics and payloads: docs/protocol.md (seed layout or per-device layout).
 *
 * Threads: one MQTT client on the MQTT edge (sim/mqtt.h, Paho or libmosquitto as the process
 * chooses); its handlers only copy the message into a queue; one backend thread drains the
 * queue in batches (one SQL transaction a batch), updates the counters, and answers queries.
 * Every function here may be called from any thread, except that hx_backend_free() must not
 * race with the others.
 *
 * Ownership: the caller owns the struct hx_backend from hx_backend_create() and frees it with
 * hx_backend_free(). Strings in hx_backend_opts are copied at create. Results written into
 * caller structs (report, rows) are plain values, nothing to free.
 *
 * Ledger (SQLite; in memory unless opts.db_path names a file, which is emptied at create and
 * can be opened with sqlite3 after a run):
 *   items(item_id INTEGER PRIMARY KEY, name, tag_quantity, device_id, published_ms)
 *   tags(id INTEGER PRIMARY KEY, idem_key TEXT UNIQUE, item_id, tag, device_id, seq,
 *        registered_ms)
 * published_ms / registered_ms are wall-clock ms since the epoch (for people); latencies are
 * measured on the monotonic clock, kept in memory.
 *
 * Errors: 0 or a negative enum hx_err (hx/err.h); hx_backend_last_error() gives the words.
 */
#ifndef HX_BACKEND_H
#define HX_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hx/err.h"

#ifdef __cplusplus
extern "C" {
#endif

enum hx_backend_layout {
    HX_BACKEND_LAYOUT_SEED = 0,       /* item_registration / item_registered / inventory/query */
    HX_BACKEND_LAYOUT_PER_DEVICE = 1, /* scanners/<id>/... */
};

struct hx_backend_opts {
    const char *uri;          /* tcp://host:port or ssl://host:port (required) */
    const char *client_id;    /* NULL = "scansim-backend-<pid>" */
    const char *username;     /* NULL = none */
    const char *password;     /* NULL = none; never logged */
    const char *cafile;       /* TLS: CA to verify the broker (ssl:// URIs); NULL = system */
    const char *certfile;     /* TLS client certificate, or NULL */
    const char *keyfile;      /* its private key, or NULL */
    bool insecure;            /* TLS: do not verify the broker's certificate or host name */
    int mqtt_version;         /* 0 or 4 = MQTT 3.1.1, 5 = MQTT 5 */
    enum hx_backend_layout layout;
    bool clean_session;       /* false (default) = persistent session (MQTT 5: expiry 1 h) */
    int keepalive_s;          /* 0 = 30 */
    int qos;                  /* of its subscriptions, items and answers: 2, else 1 */
    const char *db_path;      /* NULL = in-memory ledger; else a file (WAL, emptied at create) */
    int recent_rows;          /* length of the "recent registrations" list; 0 = 32 */
    int connect_timeout_ms;   /* hx_backend_start waits this long; 0 = 10000 */
    /* Per-device layout only: subscribe to these devices' topics alone instead of every
       device's ('scanners/+/...'), so several backends (shards of one fleet) share a broker
       without seeing each other's registrations. NULL = every device. Copied at create. */
    const char *const *devices;
    int n_devices;
};

/* What the ledger says. Counts of items are over items this backend published. */
struct hx_ledger_report {
    uint64_t published;            /* distinct items published (sent to the broker) */
    uint64_t acknowledged;         /* distinct items the broker acknowledged (a PUBACK for
                                      a copy of each) */
    uint64_t registered;           /* published items with >= 1 registration */
    uint64_t registered_once;      /* exactly one idempotency key */
    uint64_t registered_twice;     /* two or more keys: a conflict (seed race or device bug) */
    uint64_t lost;                 /* published, never registered */
    uint64_t duplicate_deliveries; /* same key again (the device's own QoS 1 re-sends) */
    uint64_t malformed;            /* registrations that failed the strict parse */
    uint64_t unknown_items;        /* registrations (new keys) for items never published */
    uint64_t inventory_answered;   /* queries answered (found or not) */
    double latency_p50_ms;         /* publish -> first registration, monotonic clock */
    double latency_p90_ms;
    double latency_p99_ms;
    double latency_max_ms;
    /* more detail */
    uint64_t registrations_received; /* every message on a registration topic */
    uint64_t rows_stored;            /* rows in tags */
    uint64_t key_reused;             /* a known key with another item/tag: not stored */
    uint64_t malformed_queries;      /* inventory queries that failed the parse */
    uint64_t republished;            /* publish_item of an id already published, plus the
                                        backend's own re-sends of unacked items after a
                                        connection loss */
    uint64_t publish_failed;         /* items the MQTT client library refused to send */
    uint64_t publish_refused;        /* items the broker refused (MQTT 5 PUBACK reason code
                                        >= 0x80, e.g. 0x87 not authorized by its ACL): not
                                        re-sent, and counted in lost */
    int refused_reason;              /* the reason code of the last refusal; 0 = none */
    uint64_t held_offline;           /* publish_item while not connected: sent after connect */
    uint64_t unacked;                /* item publishes whose PUBACK has not come (now) */
    uint64_t peak_inflight;          /* most item publishes in flight at once on one
                                        connection */
    int receive_maximum;             /* MQTT 5: the broker's Receive Maximum, which bounds
                                        the item publishes in flight (the rest wait, in
                                        order); 0 = no bound (MQTT 3.1.1) */
    uint64_t sql_errors;             /* unexpected SQLite failures */
    uint64_t reconnects;             /* connections after the first */
    uint64_t ledger_batches;         /* SQL commits (a batch; a file ledger: <= 50 ms each) */
    double ledger_busy_ms;           /* time the backend thread spent processing batches */
};

/* One row of the demo panel: a stored registration. */
struct hx_backend_row {
    int32_t item_id;
    char item_name[33];  /* "" for an item this backend never published */
    char tag[24];
    char device_id[65];
    uint32_t count;      /* registrations (distinct keys) of this item so far */
    int64_t registered_ms; /* wall clock */
};

/* One published item as the dashboard lists it. */
struct hx_backend_item {
    int32_t item_id;
    int32_t tag_quantity;
    char name[33];
    char target[65];         /* the device it went to (per-device layout); "" = every device */
    uint32_t registrations;  /* distinct keys: 0 pending (or lost if refused), 1, 2+ twice */
    bool refused;            /* the broker refused its publish: lost */
    char reg_device[2][65];  /* the first and the latest registration's device... */
    char reg_tag[2][24];     /* ...and tag ([1] is "" below two registrations) */
    double latency_ms;       /* publish -> first registration; < 0 if none */
};

struct hx_backend;

/* Make a backend (client and ledger; not connected). opts->uri is required. */
int hx_backend_create(const struct hx_backend_opts *opts, struct hx_backend **out);
/* Connect, subscribe the layout's registration and query topics, return once subscribed.
   After a connection loss the backend makes a fresh MQTT client (never letting a client
   library re-send anything itself: Paho 1.3.12 corrupts its own re-sends), reconnects with
   back-off (0.2 s doubling to 2 s), re-subscribes and re-publishes, in order, every item
   whose PUBACK never came (counted in republished). */
int hx_backend_start(struct hx_backend *b);
/* Disconnect and drain: every message received before is in the ledger afterwards. */
int hx_backend_stop(struct hx_backend *b);
/* Stop if needed, close the ledger, free. NULL is fine. */
void hx_backend_free(struct hx_backend *b);

/* An item id not used yet by this backend (1, 2, ...). */
int32_t hx_backend_next_item_id(struct hx_backend *b);
/*
 * Record the item and its publish time in the ledger, then publish it with QoS 1 to the
 * layout's item topic: device_id names the device in the per-device layout (NULL in the seed
 * layout). Ranges as in docs/protocol.md (name 1..32 bytes, tag_quantity 1..100000).
 * Publishing an id again re-sends it (counted as republished; the first time counts).
 * While the backend is not connected (an outage, or not started) the item is kept and sent
 * after the connect, in order (held_offline); 0 then. Devices drop a second copy by item id.
 */
int hx_backend_publish_item(struct hx_backend *b, const char *device_id, int32_t item_id,
                            const char *name, int32_t tag_quantity);
/* Publish anything (hostile payloads); not recorded as an item. qos 0..2. */
int hx_backend_publish_raw(struct hx_backend *b, const char *topic, const void *payload,
                           size_t len, int qos);

void hx_backend_report(struct hx_backend *b, struct hx_ledger_report *r);
/* Latency publish -> first registration of every registered item, ms, ascending: a
   malloc'd array in *out (the caller frees it; NULL when there is none), its length
   returned. For figures that add up across runs (histograms). */
size_t hx_backend_latencies(struct hx_backend *b, double **out);
/* Wait until `registered` reaches count. 0 or HX_ERR_TIMEOUT. */
int hx_backend_wait_registered(struct hx_backend *b, uint64_t count, int timeout_ms);
/* Wait until every message received so far has been processed into the ledger. */
int hx_backend_sync(struct hx_backend *b, int timeout_ms);
/* Distinct registrations (keys) stored for item_id: 0, 1, 2, ... */
int hx_backend_item_registrations(struct hx_backend *b, int32_t item_id);
/* The item is done with: registered at least once, or its publish refused by the broker. */
bool hx_backend_item_finished(struct hx_backend *b, int32_t item_id);
/* The newest registrations, newest first; returns how many were written (<= max). */
int hx_backend_recent(struct hx_backend *b, struct hx_backend_row *rows, int max);
bool hx_backend_connected(struct hx_backend *b);
/* The newest published items, newest first, with their registrations; returns how many
   were written (<= max). O(items seen) under the ledger's lock: call it about once a
   second, not per page view. */
int hx_backend_items(struct hx_backend *b, struct hx_backend_item *out, int max);
/* Which items hx_backend_items_matching lists: all, or those in one state now. */
enum hx_items_filter {
    HX_ITEMS_ALL,
    HX_ITEMS_PENDING,        /* published, not registered yet (nor refused) */
    HX_ITEMS_REGISTERED,     /* registered once */
    HX_ITEMS_TWICE,          /* registered with two or more distinct keys */
    HX_ITEMS_LOST,           /* the broker refused its publish */
    HX_ITEMS_FILTERS
};
/* The newest published items that match f, newest first (<= max written, returned);
   *total (may be NULL): how many match in all. O(items seen), as hx_backend_items. */
int hx_backend_items_matching(struct hx_backend *b, enum hx_items_filter f,
                              struct hx_backend_item *out, int max, uint64_t *total);
/* Latency (publish -> first registration) of every registered item as a histogram:
   counts[k] for bounds_ms[k-1] < ms <= bounds_ms[k], counts[n_bounds] above the last bound
   (n_bounds + 1 counters, not cumulative); *sum_ms their sum. bounds_ms ascending.
   O(n_bounds log items). */
void hx_backend_latency_histogram(struct hx_backend *b, const double *bounds_ms, int n_bounds,
                                  uint64_t *counts, double *sum_ms);

/*
 * Feed one message as if it had arrived from the broker on topic (a registration or query
 * topic of the layout); for benchmarks and broker-less checks. Works without start.
 */
int hx_backend_inject(struct hx_backend *b, const char *topic, const void *payload, size_t len);

/* The last error message of this thread, in words. */
const char *hx_backend_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* HX_BACKEND_H */
