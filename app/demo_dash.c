/*
 * demo_dash.c - `scansim demo --http`: the demo's scanners and ledger on the dashboard.
 *
 * Runs on the demo's main thread, which owns the scanners' loop: demo_dash_tick() reads
 * each scanner's firmware directly (figures, OLED) and the backend's newest items, and
 * copies them into the dashboard's model (dash.h) at most every DEMO_DASH_MS; the HTTP
 * threads read only the model. An item made on the page goes through the backend role,
 * with the backend's next id, as the demo's `a` key does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_app.h"
#include "sim/clock.h"

#define DEMO_DASH_MS 250     /* rows and items at most this often */
#define DEMO_DASH_ITEMS 100

int demo_dash_start(struct demo *d)
{
    struct demo_dash *x = &d->dash;
    struct dash_http_opts ho = { .listen = d->http_listen, .token = d->http_token,
                                 .command = DEMO_CMD };
    struct dash_actions a = { .ctx = &x->items, .create_item = NULL };
    int rc;

    if (!d->http_listen)
        return DASH_OK;
    rc = dash_model_create(d->ndev, d->common.layout == SCANSIM_LAYOUT_SEED ? "seed" : "per-device",
                           &x->model);
    if (rc != DASH_OK)
        return rc;
    x->items.backend = d->backend;
    x->items.model = x->model;
    x->items.per_device = d->common.layout != SCANSIM_LAYOUT_SEED;
    if (d->backend)
        a.create_item = dash_backend_create_item;
    x->t0_ms = sim_clock_ms();
    demo_dash_tick(d); /* the ids are there before the first page asks */
    return dash_http_start(&ho, x->model, &a, &x->http);
}

/* The scanners' rows and the summed figures. */
static void demo_dash__devices(struct demo *d, struct dash_summary *s, uint64_t now)
{
    struct demo_dash *x = &d->dash;
    struct dash_device_row row;

    for (int k = 0; k < d->ndev; k++) {
        struct sim_device *dev = d->units[k].dev;
        if (!dev)
            continue;
        struct fw_device *fw = sim_device_fw(dev);
        const struct fw_stats *st = fw_device_stats(fw);
        struct fw_status status;
        fw_device_status(fw, &status);
        if (st->items_received != x->rx[k]) {
            x->rx[k] = st->items_received;
            x->seen_ms[k] = now;
        }
        dash_row_from(&row, d->units[k].id, status.online,
                      status.online ? "online" : status.connected ? "subscribing" : "offline", st,
                      status.pending, x->seen_ms[k], fw_device_framebuffer(fw));
        dash_model_set_device(x->model, k, &row);
        fleet_figures_add_stats(&s->fig, st);
        s->fig.connected += status.online;
        s->fig.ever_connected += st->connects > 0;
    }
}

void demo_dash_tick(struct demo *d)
{
    struct demo_dash *x = &d->dash;
    uint64_t now = sim_clock_ms();
    struct dash_summary s;
    struct hx_backend_item items[DEMO_DASH_ITEMS];

    if (!x->model || (x->last_ms && now - x->last_ms < DEMO_DASH_MS))
        return;
    memset(&s, 0, sizeof(s));
    snprintf(s.command, sizeof(s.command), "%s", DEMO_CMD);
    s.fig.devices = (uint64_t)d->ndev;
    s.fig.connect_seconds = -1;
    demo_dash__devices(d, &s, now);
    if (d->backend) {
        hx_backend_report(d->backend, &s.led);
        s.have_ledger = true;
        hx_backend_latency_histogram(d->backend, dash_latency_bounds_ms, DASH_LAT_BOUNDS,
                                     s.lat_counts, &s.lat_sum_ms);
        dash_model_set_items(x->model, items, hx_backend_items(d->backend, items, DEMO_DASH_ITEMS));
    }
    s.uptime_s = (double)(now - x->t0_ms) / 1000.0;
    if (!x->sample_ms || now - x->sample_ms >= 1000) {
        /* one chart sample a second, its rate over that second */
        double dt = x->sample_ms ? (double)(now - x->sample_ms) / 1000.0 : 1.0;
        x->rate = (double)(s.led.registered - x->registered) / dt;
        x->registered = s.led.registered;
        x->sample_ms = now;
        struct dash_sample p;
        s.registrations_per_second = x->rate;
        dash_sample_from(&p, &s);
        p.t_s = s.uptime_s;
        p.registrations_per_second = x->rate;
        dash_model_add_sample(x->model, &p);
    }
    s.registrations_per_second = x->rate;
    dash_model_set_summary(x->model, &s);
    dash_model_publish(x->model);
    x->last_ms = now;
}

void demo_dash_stop(struct demo *d)
{
    dash_http_stop(d->dash.http);
    dash_model_free(d->dash.model);
    d->dash.http = NULL;
    d->dash.model = NULL;
}
