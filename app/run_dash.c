/*
 * run_dash.c - `scansim run --http / --report` (run_dash.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_dash.h"
#include "sim/device.h"

#define RUN_DASH_ITEMS 100   /* newest items on the items page */
#define RUN_DASH_ID_BASE 1000000000 /* the page's item ids: above the driver's 1..--items */

struct run_dash {
    struct dash_model *model;
    struct dash_http *http;
    struct dash_backend_items items;
    struct fleet *fleet;
    struct fleet_shared_rows *shared; /* the workers' rows instead of a fleet's */
    struct fleet_workers *workers;
    struct hx_backend *backends[DASH_BACKENDS_MAX]; /* one per broker; n 0 = none */
    int n_backends;
    struct fleet_row *rows;      /* fleet_rows' copy, then the model's */
    struct hx_backend_item *newest, *each; /* the page's items; one backend's */
    int n_devices;
    char command[8];
};

int run_dash_start(const struct run_opts *o, struct fleet *fleet,
                   struct fleet_shared_rows *shared, struct fleet_workers *workers,
                   struct hx_backend *const *backends, int n_backends,
                   struct run_dash **out)
{
    struct run_dash *d;
    int rc = DASH_ERR_NOMEM;

    *out = NULL;
    if (!o->http_listen && !o->report_path)
        return DASH_OK;
    if (o->report_path) {
        size_t len;
        if (!dash_chart_js(&len))
            return DASH_ERR_MISSING; /* said; better now than after the run */
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        goto fail;
    d->fleet = fleet;
    d->shared = shared;
    d->workers = workers;
    d->n_backends = n_backends < DASH_BACKENDS_MAX ? n_backends : DASH_BACKENDS_MAX;
    for (int k = 0; k < d->n_backends; k++)
        d->backends[k] = backends[k];
    d->n_devices = (int)o->devices;
    bool listed = fleet || shared;
    d->rows = listed ? calloc((size_t)o->devices, sizeof(*d->rows)) : NULL;
    d->newest = calloc(RUN_DASH_ITEMS, sizeof(*d->newest));
    d->each = d->n_backends > 1 ? calloc((size_t)RUN_DASH_ITEMS * (size_t)d->n_backends,
                                         sizeof(*d->each))
                                : NULL; /* one backend's items go to newest directly */
    if ((listed && !d->rows) || !d->newest || (d->n_backends > 1 && !d->each) ||
        dash_model_create(listed ? (int)o->devices : 0,
                          o->c.layout == SCANSIM_LAYOUT_SEED ? "seed" : "per-device", &d->model))
        goto fail;
    if (!listed) /* --report alone with --workers: no rows are kept */
        dash_model_set_remote_devices(d->model, "The devices run in worker processes "
                                      "and this run keeps no rows of them.");
    d->items.backend = d->n_backends ? d->backends[0] : NULL;
    d->items.n_more = d->n_backends > 1 ? d->n_backends - 1 : 0;
    for (int k = 1; k < d->n_backends; k++)
        d->items.more[k - 1] = d->backends[k];
    d->items.id_start = o->id_start;
    d->items.model = d->model;
    d->items.per_device = o->c.layout != SCANSIM_LAYOUT_SEED;
    d->items.id_base = RUN_DASH_ID_BASE;
    if (o->http_listen) {
        struct dash_http_opts ho = { .listen = o->http_listen, .token = o->http_token,
                                     .command = "run" };
        struct dash_actions a = { .ctx = &d->items,
                                  .create_item = d->n_backends ? dash_backend_create_item
                                                               : NULL };
        rc = dash_http_start(&ho, d->model, &a, &d->http);
        if (rc != DASH_OK)
            goto fail;
    }
    *out = d;
    return DASH_OK;
fail:
    run_dash_free(d);
    return rc;
}

static void run_dash__rows(struct run_dash *d)
{
    struct dash_device_row r;

    if (d->fleet)
        fleet_rows(d->fleet, d->rows, d->n_devices);
    else
        fleet_shared_rows_get(d->shared, d->rows, d->n_devices);
    for (int i = 0; i < d->n_devices; i++) {
        const struct fleet_row *f = &d->rows[i];
        if (!f->id[0])
            continue;
        /* A dead worker's rows stay as it last wrote them: its devices are gone. */
        bool gone = d->workers && !fleet_workers_device_alive(d->workers, i);
        bool online = f->online && !gone;
        dash_row_from(&r, f->id, online,
                      gone ? "worker died" : online ? "online" : f->powered ? "offline" : "off",
                      &f->stats, f->pending, f->last_seen_ms, f->fb);
        dash_model_set_device(d->model, i, &r);
    }
}

/* The newest items of filter f of every backend, interleaved (each list is newest first; the
   backends keep no common clock of their items), the first RUN_DASH_ITEMS of them. */
static int run_dash__items(struct run_dash *d, enum hx_items_filter f, uint64_t *total)
{
    int got[DASH_BACKENDS_MAX], n = 0;
    uint64_t t;

    if (d->n_backends == 1)
        return hx_backend_items_matching(d->backends[0], f, d->newest, RUN_DASH_ITEMS, total);
    *total = 0;
    for (int k = 0; k < d->n_backends; k++) {
        got[k] = hx_backend_items_matching(d->backends[k], f, d->each + k * RUN_DASH_ITEMS,
                                           RUN_DASH_ITEMS, &t);
        *total += t;
    }
    for (int i = 0; i < RUN_DASH_ITEMS && n < RUN_DASH_ITEMS; i++)
        for (int k = 0; k < d->n_backends && n < RUN_DASH_ITEMS; k++)
            if (i < got[k])
                d->newest[n++] = d->each[k * RUN_DASH_ITEMS + i];
    return n;
}

/* The latency histogram of all backends together. */
static void run_dash__latency(struct run_dash *d, struct dash_summary *s)
{
    uint64_t counts[DASH_LAT_BOUNDS + 1];
    double sum;

    for (int k = 0; k < d->n_backends; k++) {
        hx_backend_latency_histogram(d->backends[k], dash_latency_bounds_ms, DASH_LAT_BOUNDS,
                                     counts, &sum);
        for (int b = 0; b <= DASH_LAT_BOUNDS; b++)
            s->lat_counts[b] += counts[b];
        s->lat_sum_ms += sum;
    }
}

void run_dash_tick(struct run_dash *d, const struct fleet_figures *fig,
                   const struct hx_ledger_report *led, double rate, double t_s)
{
    struct dash_summary s;
    struct dash_sample p;

    if (!d)
        return;
    memset(&s, 0, sizeof(s));
    snprintf(s.command, sizeof(s.command), "run");
    s.fig = *fig;
    if (led) {
        s.led = *led;
        s.have_ledger = true;
        run_dash__latency(d, &s);
        for (int f = 0; f < HX_ITEMS_FILTERS; f++) {
            uint64_t total;
            int n = run_dash__items(d, (enum hx_items_filter)f, &total);
            dash_model_set_items_of(d->model, (enum hx_items_filter)f, d->newest, n, total);
        }
    }
    s.registrations_per_second = rate;
    s.uptime_s = t_s;
    dash_model_set_summary(d->model, &s);
    dash_sample_from(&p, &s);
    p.t_s = t_s;
    p.registrations_per_second = rate;
    dash_model_add_sample(d->model, &p);
    if ((d->fleet || d->shared) && d->http)
        run_dash__rows(d);
    dash_model_publish(d->model);
}

uint64_t run_dash_items_created(struct run_dash *d)
{
    return d ? (uint64_t)atomic_load(&d->items.created) : 0;
}

int run_dash_report(struct run_dash *d, const char *path, const char *summary_json)
{
    struct dash_buf b = { 0 };
    int rc;

    if (!d)
        return DASH_ERR_INVAL;
    dash_buf_lit(&b, "{\"kind\":\"run\",\"table\":");
    dash_buf_add(&b, summary_json, strlen(summary_json));
    dash_buf_lit(&b, ",\"model\":");
    dash_model_report_json(d->model, &b);
    dash_buf_lit(&b, "}");
    rc = b.failed ? DASH_ERR_NOMEM : dash_report_write(path, "scansim run", b.p);
    free(b.p);
    return rc;
}

void run_dash_free(struct run_dash *d)
{
    if (!d)
        return;
    dash_http_stop(d->http);
    dash_model_free(d->model);
    free(d->rows);
    free(d->newest);
    free(d->each);
    free(d);
}
