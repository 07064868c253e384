/*
 * dash_metrics.c - the run's figures as Prometheus metrics (text exposition format 0.0.4)
 * and the small derived figures the charts share with the progress line.
 *
 * Every figure of `scansim run --json` is here: counters (_total) for what only grows,
 * gauges for what goes up and down, and the publish -> registration latency as a
 * histogram in seconds (Prometheus' base unit) with the ledger's own percentiles beside
 * it. Labels: command (run / demo) and layout (seed / per-device) on every series.
 *
 * A table of {name, type, help, field} keeps each metric's words beside its value.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dash.h"

const double dash_latency_bounds_ms[DASH_LAT_BOUNDS] = {
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000,
};

uint64_t dash_reconnects(const struct dash_summary *s)
{
    const struct fleet_figures *g = &s->fig;
    return g->connects > g->ever_connected ? g->connects - g->ever_connected : 0;
}

uint64_t dash_errors(const struct dash_summary *s)
{
    const struct fleet_figures *g = &s->fig;
    return g->connect_failures + g->publish_errors + g->rejects + g->storage_errors +
           (s->have_ledger ? s->led.publish_refused : 0);
}

void dash_sample_from(struct dash_sample *out, const struct dash_summary *s)
{
    out->online = (double)s->fig.connected;
    out->p50_ms = s->have_ledger ? s->led.latency_p50_ms : 0;
    out->p99_ms = s->have_ledger ? s->led.latency_p99_ms : 0;
    out->reconnects = (double)dash_reconnects(s);
    out->errors = (double)dash_errors(s);
}

/* ------------------------------------------------------------------ the table */

enum dash_src { SRC_FIG, SRC_LED };

struct dash_metric {
    const char *name;   /* without the scansim_ prefix */
    const char *type;   /* "counter" or "gauge" */
    const char *help;
    enum dash_src src;
    size_t off;         /* of a uint64_t in struct fleet_figures / hx_ledger_report */
};

#define FIG(f) SRC_FIG, offsetof(struct fleet_figures, f)
#define LED(f) SRC_LED, offsetof(struct hx_ledger_report, f)

static const struct dash_metric dash_metrics[] = {
    { "devices_requested", "gauge", "Devices the run was asked for.", FIG(devices) },
    { "devices_online", "gauge", "Devices online now (every subscription granted).", FIG(connected) },
    { "devices_ever_connected", "gauge", "Devices that were online at least once.", FIG(ever_connected) },
    { "device_items_received_total", "counter", "Items the devices received.", FIG(items_received) },
    { "device_items_queued_total", "counter", "Items the devices queued for an operator.", FIG(items_queued) },
    { "device_duplicates_suppressed_total", "counter", "Redelivered items the devices dropped.", FIG(duplicates_suppressed) },
    { "device_queue_full_total", "counter", "Items refused by a full device queue.", FIG(queue_full) },
    { "device_registrations_confirmed_total", "counter", "Registrations the operators confirmed.", FIG(registrations_confirmed) },
    { "device_registrations_acked_total", "counter", "Registrations the broker acknowledged.", FIG(registrations_acked) },
    { "device_registrations_resent_total", "counter", "Registrations the devices sent again.", FIG(registrations_resent) },
    { "device_outbox_full_total", "counter", "Registrations refused by a full outbox.", FIG(outbox_full) },
    { "device_cancels_total", "counter", "Items the operators cancelled.", FIG(cancels) },
    { "device_wrong_tags_total", "counter", "Wrong tags the operators scanned.", FIG(wrong_tags) },
    { "device_rejects_total", "counter", "Messages the firmware rejected.", FIG(rejects) },
    { "device_inventory_queries_total", "counter", "Inventory look-ups sent.", FIG(inventory_queries) },
    { "device_inventory_answers_total", "counter", "Inventory answers received.", FIG(inventory_answers) },
    { "device_inventory_timeouts_total", "counter", "Inventory look-ups that timed out.", FIG(inventory_timeouts) },
    { "device_connects_total", "counter", "Successful device connections.", FIG(connects) },
    { "device_connect_failures_total", "counter", "Failed device connects.", FIG(connect_failures) },
    { "device_connection_losses_total", "counter", "Device connections lost.", FIG(connection_losses) },
    { "device_publish_errors_total", "counter", "Device publishes that failed.", FIG(publish_errors) },
    { "device_storage_errors_total", "counter", "Flash writes that failed.", FIG(storage_errors) },
    { "items_published_total", "counter", "Distinct items the backend published.", LED(published) },
    { "items_registered_total", "counter", "Published items registered at least once.", LED(registered) },
    { "items_registered_once", "gauge", "Items with exactly one registration.", LED(registered_once) },
    { "items_registered_twice", "gauge", "Items registered by two or more keys (a conflict).", LED(registered_twice) },
    { "items_lost", "gauge", "Items published and not registered (yet).", LED(lost) },
    { "items_refused_total", "counter", "Items the broker refused.", LED(publish_refused) },
    { "items_unacked", "gauge", "Item publishes waiting for their PUBACK.", LED(unacked) },
    { "ledger_duplicate_deliveries_total", "counter", "Device re-sends the ledger dropped.", LED(duplicate_deliveries) },
    { "ledger_malformed_total", "counter", "Registrations that failed the parse.", LED(malformed) },
    { "ledger_unknown_items_total", "counter", "Registrations of items never published.", LED(unknown_items) },
    { "ledger_registrations_received_total", "counter", "Messages on a registration topic.", LED(registrations_received) },
    { "ledger_inventory_answered_total", "counter", "Inventory queries answered.", LED(inventory_answered) },
    { "ledger_sql_errors_total", "counter", "Unexpected SQLite failures.", LED(sql_errors) },
    { "backend_reconnects_total", "counter", "Backend connections after the first.", LED(reconnects) },
    { "backend_republished_total", "counter", "Items the backend sent again.", LED(republished) },
};

static void dash__head(struct dash_buf *o, const char *name, const char *type, const char *help)
{
    dash_buf_printf(o, "# HELP scansim_%s %s\n# TYPE scansim_%s %s\n", name, help, name, type);
}

static void dash__value(struct dash_buf *o, const char *name, const char *labels, double v)
{
    dash_buf_printf(o, "scansim_%s{%s} %.17g\n", name, labels, v);
}

/* The latency histogram: cumulative buckets in seconds, _sum and _count. */
static void dash__histogram(const struct dash_summary *s, const char *labels, struct dash_buf *o)
{
    uint64_t cum = 0;

    dash__head(o, "registration_latency_seconds", "histogram",
               "Item publish to its first registration, as the ledger measured it.");
    for (int k = 0; k <= DASH_LAT_BOUNDS; k++) {
        cum += s->lat_counts[k];
        if (k < DASH_LAT_BOUNDS)
            dash_buf_printf(o, "scansim_registration_latency_seconds_bucket{%s,le=\"%g\"} %" PRIu64 "\n",
                            labels, dash_latency_bounds_ms[k] / 1000.0, cum);
        else
            dash_buf_printf(o, "scansim_registration_latency_seconds_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n",
                            labels, cum);
    }
    dash_buf_printf(o, "scansim_registration_latency_seconds_sum{%s} %.17g\n", labels,
                    s->lat_sum_ms / 1000.0);
    dash_buf_printf(o, "scansim_registration_latency_seconds_count{%s} %" PRIu64 "\n", labels, cum);
}

/* The ledger's nearest-rank percentiles, as a gauge per quantile. */
static void dash__quantiles(const struct dash_summary *s, const char *labels, struct dash_buf *o)
{
    const double q[4] = { s->led.latency_p50_ms, s->led.latency_p90_ms, s->led.latency_p99_ms,
                          s->led.latency_max_ms };
    const char *qn[4] = { "0.5", "0.9", "0.99", "1" };

    dash__head(o, "registration_latency_quantile_seconds", "gauge",
               "The ledger's latency percentiles (nearest rank; 1 = the maximum).");
    for (int k = 0; k < 4; k++)
        dash_buf_printf(o, "scansim_registration_latency_quantile_seconds{%s,quantile=\"%s\"} %.17g\n",
                        labels, qn[k], q[k] / 1000.0);
}

void dash_metrics_text(const struct dash_summary *s, struct dash_buf *o)
{
    char labels[64];

    snprintf(labels, sizeof(labels), "command=\"%s\",layout=\"%s\"", s->command, s->layout);
    for (size_t i = 0; i < sizeof(dash_metrics) / sizeof(dash_metrics[0]); i++) {
        const struct dash_metric *m = &dash_metrics[i];
        const char *base = m->src == SRC_FIG ? (const char *)&s->fig : (const char *)&s->led;
        uint64_t v;
        if (m->src == SRC_LED && !s->have_ledger)
            continue; /* --no-backend: no ledger, no ledger series */
        memcpy(&v, base + m->off, sizeof(v));
        dash__head(o, m->name, m->type, m->help);
        dash__value(o, m->name, labels, (double)v);
    }
    dash__head(o, "reconnects_total", "counter", "Device connections after each device's first.");
    dash__value(o, "reconnects_total", labels, (double)dash_reconnects(s));
    dash__head(o, "errors_total", "counter", "Connect failures, publish errors, rejects, storage errors, refusals.");
    dash__value(o, "errors_total", labels, (double)dash_errors(s));
    dash__head(o, "registrations_per_second", "gauge", "Registrations per second over the last second.");
    dash__value(o, "registrations_per_second", labels, s->registrations_per_second);
    dash__head(o, "connect_seconds", "gauge", "Start to every device connected once; -1 = not yet.");
    dash__value(o, "connect_seconds", labels, s->fig.connect_seconds);
    dash__head(o, "peak_rss_bytes", "gauge", "Peak resident set size (ru_maxrss) of the device processes.");
    dash__value(o, "peak_rss_bytes", labels, (double)s->fig.peak_rss_kib * 1024.0);
    dash__head(o, "uptime_seconds", "gauge", "Seconds since the command started.");
    dash__value(o, "uptime_seconds", labels, s->uptime_s);
    if (s->have_ledger) {
        dash__histogram(s, labels, o);
        dash__quantiles(s, labels, o);
    }
}
