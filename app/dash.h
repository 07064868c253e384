/*
 * dash.h - the dashboard of `scansim demo` / `run` (--http) and the offline report
 * (--report): the seed's pages (items, devices with their live OLEDs, management, charts)
 * and Prometheus /metrics.
 *
 * How it fits: the command's own thread (the one that owns the demo's devices, or the
 * run's main loop) copies what it knows into a struct dash_model about once a second
 * (devices' rows, items, the run's figures, one sample of the charts). The HTTP server
 * (dash_http.c, libmicrohttpd's threads) reads only the model, under the model's lock, and
 * pushes changes to pages over Server-Sent Events; it never calls into a device thread, so
 * page views cost the fleet nothing but CPU. Creating an item goes to the backend role
 * (hx_backend, thread-safe) through struct dash_actions.
 *
 * Files: dash_form.c (input rules), dash_model.c (the model and its JSON),
 * dash_metrics.c (the Prometheus text), dash_http.c (the server), dash_assets.c (the
 * pages, built in, and the chart library read from Debian's libjs-chart.js),
 * dash_report.c (the offline HTML report), dash_buf.c (a growing text buffer).
 *
 * Ownership: the model copies everything handed to it; the server borrows the model and
 * the actions, which must outlive dash_http_stop().
 */
#ifndef SCANSIM_DASH_H
#define SCANSIM_DASH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dash_form.h"
#include "sim/fleet_devices.h"
#include "fw/fw_config.h"
#include "fw/fw_device.h"
#include "hx/backend.h"

/* ------------------------------------------------------------------ text buffer */

/* A growing NUL-terminated text; after an allocation failure `failed` stays set and
   further appends do nothing. Free p with free(). */
struct dash_buf {
    char *p;
    size_t len, cap;
    bool failed;
};

void dash_buf_printf(struct dash_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dash_buf_add(struct dash_buf *b, const void *data, size_t n);
/** Append a string literal (its length counted by the compiler). */
#define dash_buf_lit(b, lit) dash_buf_add((b), "" lit, sizeof(lit) - 1)
/** A JSON string literal (quotes included) of s. */
void dash_buf_json_str(struct dash_buf *b, const char *s);
/** Base64 of n bytes (the OLED frames in JSON). */
void dash_buf_base64(struct dash_buf *b, const uint8_t *data, size_t n);

/* ------------------------------------------------------------------ figures */

/* Upper bounds of the latency histogram, ms (Prometheus buckets, the report's bars). */
#define DASH_LAT_BOUNDS 16
extern const double dash_latency_bounds_ms[DASH_LAT_BOUNDS];

/* Everything the run's JSON summary says, now. */
struct dash_summary {
    char command[8];                /* "run", "demo" */
    char layout[12];                /* "seed" / "per-device" */
    struct fleet_figures fig;
    struct hx_ledger_report led;
    bool have_ledger;
    double registrations_per_second; /* over the last sample */
    double uptime_s;
    uint64_t lat_counts[DASH_LAT_BOUNDS + 1]; /* not cumulative; [DASH_LAT_BOUNDS] = +Inf */
    double lat_sum_ms;
};

/* One point of the live charts. */
struct dash_sample {
    double t_s;                     /* since the start */
    double online, registrations_per_second, p50_ms, p99_ms, reconnects, errors;
};

/** Fill the derived figures of a sample from a summary (t_s and the rate are the caller's). */
void dash_sample_from(struct dash_sample *out, const struct dash_summary *s);
/** Reconnects and errors as the run's progress line counts them. */
uint64_t dash_reconnects(const struct dash_summary *s);
uint64_t dash_errors(const struct dash_summary *s);

/** Prometheus text exposition format (version 0.0.4) of a summary, appended to out. */
void dash_metrics_text(const struct dash_summary *s, struct dash_buf *out);

/* ------------------------------------------------------------------ the model */

/* One device as the devices page shows it. */
struct dash_device_row {
    char id[FW_DEVICE_ID_MAX];
    bool online;
    char state[24];                 /* sim_conn_state_name() or "off" */
    uint64_t items_received, registrations_acked, duplicates_suppressed, connects,
        connection_losses, rejects;
    uint32_t queue;                 /* items waiting on the device */
    uint64_t last_seen_ms;          /* monotonic ms of the last message; 0 = never */
    bool has_fb;
    uint8_t fb[FW_FB_BYTES];
};

/** Fill a row from a device's figures (fb may be NULL: no frame). */
void dash_row_from(struct dash_device_row *r, const char *id, bool online, const char *state,
                   const struct fw_stats *st, uint32_t pending, uint64_t last_seen_ms,
                   const uint8_t *fb);

struct dash_model;

int dash_model_create(int n_devices, const char *layout, struct dash_model **out);
void dash_model_free(struct dash_model *m);

/* Writers (the command's thread). */
void dash_model_set_device(struct dash_model *m, int index, const struct dash_device_row *row);
/** The items page's list (the newest first; the demo's: all of them). */
void dash_model_set_items(struct dash_model *m, const struct hx_backend_item *items, int n);
/** The list of one filter, and how many items match it in all. */
void dash_model_set_items_of(struct dash_model *m, enum hx_items_filter f,
                             const struct hx_backend_item *items, int n, uint64_t total);
void dash_model_set_summary(struct dash_model *m, const struct dash_summary *s);
void dash_model_add_sample(struct dash_model *m, const struct dash_sample *s);
/** Tell waiting pages that something changed (after a round of the setters). */
void dash_model_publish(struct dash_model *m);
/** The run's devices live in worker processes: the devices page says so. */
void dash_model_set_remote_devices(struct dash_model *m, const char *why);

/* Readers (any thread). */
/** Wait until the model's version differs from seen (or timeout_ms); the version now. */
uint64_t dash_model_wait(struct dash_model *m, uint64_t seen, int timeout_ms);

/* A condition variable timed on CLOCK_MONOTONIC (a wall-clock step cannot stretch a wait);
   its deadlines come from sim_clock_deadline. */
void dash_cond_init(pthread_cond_t *c);
int dash_model_devices(const struct dash_model *m);
bool dash_model_has_device(struct dash_model *m, const char *id);
/** The index of device id, or -1. */
int dash_model_device_index(struct dash_model *m, const char *id);
bool dash_model_per_device(const struct dash_model *m);
/** Copy the device ids (n = dash_model_devices(); ids[i] FW_DEVICE_ID_MAX bytes each). */
void dash_model_device_ids(struct dash_model *m, char (*ids)[FW_DEVICE_ID_MAX], int n);
void dash_model_summary(struct dash_model *m, struct dash_summary *out);

/* Per page connection: which frames it has seen (so only changed OLEDs are sent). */
struct dash_view {
    struct dash_page_query q;
    uint64_t items_version;         /* last items sent */
    uint64_t sample_count;          /* samples sent */
    int n_sent;
    int sent_index[DASH_PER_PAGE_MAX];
    uint64_t sent_fb_version[DASH_PER_PAGE_MAX];
};

/** The JSON of one push to a page: summary, new chart samples, items if changed, the
 *  page of devices (with the frames that changed since the view last saw them). */
void dash_model_push_json(struct dash_model *m, struct dash_view *v, struct dash_buf *out);
/** Every chart sample, the summary and the histogram: the report's data. */
void dash_model_report_json(struct dash_model *m, struct dash_buf *out);

/* ------------------------------------------------------------------ the server */

/* What the page may ask of the command. */
struct dash_actions {
    void *ctx;
    /** Create an item (the form was checked); 0, or DASH_ERR_INVAL with the reason. */
    int (*create_item)(void *ctx, const struct dash_item_form *f, char *why, size_t cap);
};

/* The usual create_item: through the backend role (ctx = struct dash_backend_items). With
   several brokers (n_more > 0) there is a backend on each: an item for device k (the
   model's index) goes through backend[fleet_broker_of(id_start + k, 1 + n_more)], the one
   on that device's broker (backend itself is index 0); a seed-layout item goes to each. */
#define DASH_BACKENDS_MAX 16
struct dash_backend_items {
    struct hx_backend *backend;
    struct hx_backend *more[DASH_BACKENDS_MAX - 1];
    int n_more;
    long id_start;                  /* the number of the model's device 0 */
    struct dash_model *model;
    bool per_device;
    int32_t id_base;                /* 0: ids from hx_backend_next_item_id; else base + 1,
                                       base + 2... (a run's driver numbers its own 1..N) */
    atomic_uint_fast64_t created;   /* items published from the page */
};
int dash_backend_create_item(void *ctx, const struct dash_item_form *f, char *why, size_t cap);

struct dash_http_opts {
    const char *listen;             /* "ADDR:PORT" */
    const char *token;              /* NULL: none on loopback, generated elsewhere */
    const char *command;            /* for the log line */
};

struct dash_http;

/** Start the server; prints its URL (and the token when one is needed) to stderr.
 *  0, DASH_ERR_INVAL (bad address), DASH_ERR_MISSING (no chart library), DASH_ERR_HTTP. */
int dash_http_start(const struct dash_http_opts *o, struct dash_model *m,
                    const struct dash_actions *a, struct dash_http **out);
/** The port it listens on. */
int dash_http_port(const struct dash_http *h);
/** Stop (pages get an end event) and free. NULL is fine. */
void dash_http_stop(struct dash_http *h);

/* ------------------------------------------------------------------ assets and report */

/** The chart library's text (Chart.js from libjs-chart.js, or $SCANSIM_CHARTJS), read
 *  once and kept; NULL with the reason on stderr when it is not installed. */
const char *dash_chart_js(size_t *len);
extern const char dash_asset_page_html[];
extern const char dash_asset_page_js[];
extern const char dash_asset_charts_js[];
extern const char dash_asset_report_js[];
extern const char dash_asset_style_css[];

/** Write the offline report: a title and a JSON document (dash_model_report_json, or the
 *  test runner's) made into one HTML file with the chart library inlined. 0, DASH_ERR_IO,
 *  DASH_ERR_MISSING (said on stderr). */
int dash_report_write(const char *path, const char *title, const char *data_json);

#endif /* SCANSIM_DASH_H */
