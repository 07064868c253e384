/*
 * cmd_run.c - `scansim run`: N simulated scanners running the real firmware against a
 * broker, the backend role publishing items and checking the ledger, live figures, a
 * summary, a JSON report and an exit code that says whether anything was lost.
 *
 * Pieces: run_opts.c (the options and a worker's shard loop, shared with scansim-worker),
 * fleet_devices.c (the devices and their scripted operators), fleet_driver.c
 * (which item goes where and when), fleet_workers.c (--workers: shards in other processes,
 * figures over pipes), fleet_figures.c (adding and carrying figures), run_backends.c (the
 * backend role, one hx_backend and its SQLite ledger per broker), run_supervise.c (worker
 * and broker deaths), run_shard_json.c (what a shard adds to its JSON for `scansim merge`).
 * This file parses flags, runs the phases (connect, publish, grace, stop) and reports.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "sim/fleet_devices.h"
#include "fleet_driver.h"
#include "fleet_workers.h"
#include "hx/backend.h"
#include "latency_hist.h"
#include "run_backends.h"
#include "run_commands.h"
#include "run_dash.h"
#include "run_opts.h"
#include "run_shard_json.h"
#include "run_supervise.h"
#include "sim/clock.h"
#include "sim/err.h"

const char scansim_cmd_run_summary[] =
    "run N simulated scanners against a broker, check every item registered once";

#define CMD "run"

/* ------------------------------------------------------------------ reporting */

struct run_state {
    const struct run_opts *o;
    bool tty;
    uint64_t t_start, t_pub_start, t_pub_end, t_last_progress, t_end;
    struct fleet_figures fig;
    struct hx_ledger_report led;
    bool have_ledger;
    uint64_t last_registered;
    uint64_t reg_at_last_line;   /* registrations at the last progress line */
    uint64_t last_rate_ms;
    double rate_now;
    uint64_t published, publish_failed, gate_skips;
    uint64_t self_rss_kib;
    uint64_t self_pss_kib;       /* this process's highest sampled PSS (with workers) */
    bool connect_gave_up;
    const char *worker_program;  /* the shards' program, NULL without workers */
    /* CPU used while publishing (from the first item to the end of the registrations), ms:
       this process (the backend; with the devices when there are no workers), the worker
       processes, the embedded broker; < 0 = not known */
    double cpu_self_ms, cpu_workers_ms, cpu_broker_ms;
    struct run_watch watch;      /* deaths of workers and of the broker */
    uint64_t online_at_end;      /* devices online when publishing ended, before power-off */
    uint64_t reassigned, orphaned; /* items of dead workers' devices (fleet_driver.h) */
    struct latency_hist hist;    /* every registered item's latency (for merges) */
    struct run_commands_report cmds; /* --command-rate's figures (cmds.on false without) */
};

/* CPU counters at one moment (struct run_state's cpu_*_ms are differences of two). */
struct run_cpu {
    uint64_t self, workers, broker;
};

static void run_cpu_sample(struct run_cpu *c, struct fleet_workers *w, int broker_pid)
{
    c->self = fleet_proc_cpu_ms(0);
    c->workers = w ? fleet_workers_cpu_ms(w) : 0;
    c->broker = broker_pid > 0 ? fleet_proc_cpu_ms(broker_pid) : 0;
}

/* CPU used while publishing by every process counted (ms; the unknown parts count 0). */
static double cpu_all_ms(const struct run_state *s)
{
    return s->cpu_self_ms + (s->cpu_workers_ms > 0 ? s->cpu_workers_ms : 0) +
           (s->cpu_broker_ms > 0 ? s->cpu_broker_ms : 0);
}

/* CPU microseconds per registration, or < 0 when unknown. */
static double cpu_per_reg(const struct run_state *s, double ms)
{
    uint64_t reg = s->have_ledger ? s->led.registered : s->fig.registrations_acked;

    return ms >= 0 && reg > 0 ? ms * 1000.0 / (double)reg : -1;
}

static void progress_line(struct run_state *s)
{
    const struct fleet_figures *g = &s->fig;
    char line[512];
    double secs = (double)(sim_clock_ms() - s->t_start) / 1000.0;
    uint64_t reconnects = g->connects > g->ever_connected ? g->connects - g->ever_connected : 0;
    uint64_t errors = g->connect_failures + g->publish_errors + g->rejects + g->storage_errors +
                      (s->have_ledger ? s->led.publish_refused : 0) +
                      (uint64_t)s->watch.workers_dead + (s->watch.broker_gone ? 1 : 0);
    int n;

    if (s->have_ledger)
        n = snprintf(line, sizeof(line),
                     "[%5.0fs] online %" PRIu64 "/%" PRIu64 " | items %" PRIu64 " published, %"
                     PRIu64 " registered, %.0f/s | p50 %.0f ms p99 %.0f ms | dup suppressed %" PRIu64
                     " | reconnects %" PRIu64 " | errors %" PRIu64,
                     secs, g->connected, g->devices, s->led.acknowledged, s->led.registered, s->rate_now,
                     s->led.latency_p50_ms, s->led.latency_p99_ms, g->duplicates_suppressed,
                     reconnects, errors);
    else
        n = snprintf(line, sizeof(line),
                     "[%5.0fs] online %" PRIu64 "/%" PRIu64 " | items %" PRIu64 " received, %" PRIu64
                     " registered, %.0f/s | dup suppressed %" PRIu64 " | reconnects %" PRIu64
                     " | errors %" PRIu64,
                     secs, g->connected, g->devices, g->items_received, g->registrations_acked,
                     s->rate_now, g->duplicates_suppressed, reconnects, errors);
    if (s->cmds.on && n > 0 && (size_t)n < sizeof(line))
        snprintf(line + n, sizeof(line) - (size_t)n, " | cmds %" PRIu64 "/%" PRIu64,
                 s->cmds.ok + s->cmds.refused, s->cmds.sent);
    if (s->tty)
        fprintf(stdout, "\r%s\033[K", line);
    else
        fprintf(stdout, "%s\n", line);
    fflush(stdout);
}

static double rate_final(const struct run_state *s)
{
    uint64_t reg = s->have_ledger ? s->led.registered : s->fig.registrations_acked;
    uint64_t t0 = s->t_pub_start ? s->t_pub_start : s->t_start;
    uint64_t t1 = s->t_last_progress > t0 ? s->t_last_progress : s->t_end;

    if (t1 <= t0)
        return 0;
    return (double)reg * 1000.0 / (double)(t1 - t0);
}

/* ru_maxrss of the processes that run devices: the worker processes with --workers (the
   backend and its ledger live in this one), else this process, backend included. */
static uint64_t run_device_rss(const struct run_state *s)
{
    return s->o->workers > 1 ? s->fig.peak_rss_kib : s->self_rss_kib;
}

/* Proportional set size: this process's peak plus the workers' peaks (an upper bound of
   the peak of the sum). */
static uint64_t run_pss(const struct run_state *s)
{
    return s->o->workers > 1 ? s->self_pss_kib + s->fig.peak_pss_kib : s->fig.peak_pss_kib;
}

static void print_summary(const struct run_state *s, int exit_code)
{
    const struct fleet_figures *g = &s->fig;
    const struct run_opts *o = s->o;
    uint64_t reconnects = g->connects > g->ever_connected ? g->connects - g->ever_connected : 0;
    uint64_t rss = s->self_rss_kib + (o->workers > 1 ? g->peak_rss_kib : 0);

    if (s->tty)
        fputc('\n', stdout);
    printf("\nscansim run: %ld devices (%s layout), %ld worker process%s, %.1f s\n", o->devices,
           o->c.layout == SCANSIM_LAYOUT_SEED ? "seed" : "per-device", o->workers,
           o->workers == 1 ? "" : "es", (double)(s->t_end - s->t_start) / 1000.0);
    printf("  %-34s %" PRIu64 " of %" PRIu64 "\n", "devices ever connected", g->ever_connected,
           g->devices);
    printf("  %-34s %" PRIu64 " of %" PRIu64 "%s\n", "devices online at the end", s->online_at_end,
           g->devices, s->watch.devices_lost ? " (a worker process died)" : "");
    if (g->connect_seconds >= 0)
        printf("  %-34s %.2f s\n", "time to connect all", g->connect_seconds);
    else
        printf("  %-34s not all connected\n", "time to connect all");
    if (s->have_ledger) {
        printf("  %-34s %" PRIu64 "\n", "items published (broker acked)", s->led.acknowledged);
        if (s->led.published > s->led.acknowledged)
            printf("  %-34s %" PRIu64 "\n", "items sent, never acknowledged",
                   s->led.published - s->led.acknowledged);
        printf("  %-34s %" PRIu64 "\n", "items registered", s->led.registered);
        printf("  %-34s %" PRIu64 "%s\n", "items lost", s->led.lost,
               g->cancels ? " (includes items the operators cancelled)" : "");
        if (s->reassigned)
            printf("  %-34s %" PRIu64 " (their device's worker died)\n",
                   "items moved to live devices", s->reassigned);
        if (s->orphaned)
            printf("  %-34s %" PRIu64 " (their device's worker died, no live device left)\n",
                   "items lost with dead workers", s->orphaned);
        if (s->led.publish_refused)
            printf("  %-34s %" PRIu64 " (MQTT 5 reason code 0x%02X, %s): the broker does not let "
                   "the backend publish items - check its ACL for the backend's user\n",
                   "items refused by the broker", s->led.publish_refused, s->led.refused_reason,
                   fw_reason_code_name((int)s->led.refused_reason));
        if (o->c.layout == SCANSIM_LAYOUT_SEED)
            printf("  %-34s %" PRIu64 " (expected: every device sees every item)\n",
                   "items registered by several devices", s->led.registered_twice);
        else
            printf("  %-34s %" PRIu64 "\n", "items registered twice", s->led.registered_twice);
        printf("  %-34s %.0f /s\n", "registrations per second", rate_final(s));
        printf("  %-34s p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms\n", "latency publish->registration",
               s->led.latency_p50_ms, s->led.latency_p90_ms, s->led.latency_p99_ms, s->led.latency_max_ms);
        printf("  %-34s %" PRIu64 "\n", "device re-sends dropped by ledger", s->led.duplicate_deliveries);
    } else {
        printf("  %-34s (no backend: --no-backend)\n", "ledger");
    }
    printf("  %-34s %" PRIu64 " received, %" PRIu64 " registered, %" PRIu64 " acknowledged\n",
           "device side", g->items_received, g->registrations_confirmed, g->registrations_acked);
    printf("  %-34s %" PRIu64 "\n", "duplicates suppressed (devices)", g->duplicates_suppressed);
    printf("  %-34s %" PRIu64 " cancels, %" PRIu64 " wrong tags, %" PRIu64 " look-ups\n", "operators",
           g->cancels, g->wrong_tags, g->inventory_queries);
    printf("  %-34s %" PRIu64 " reconnects, %" PRIu64 " connect failures, %" PRIu64 " losses\n",
           "connections", reconnects, g->connect_failures, g->connection_losses);
    printf("  %-34s %" PRIu64 " queue full, %" PRIu64 " outbox full, %" PRIu64 " rejects, %" PRIu64
           " publish errors\n", "device errors", g->queue_full, g->outbox_full, g->rejects,
           g->publish_errors);
    printf("  %-34s %" PRIu64 " KiB, %.1f KiB per device%s\n", "peak RSS (ru_maxrss)", rss,
           o->devices ? (double)run_device_rss(s) / (double)o->devices : 0.0,
           o->workers > 1 ? " (device processes)" : " (backend included)");
    printf("  %-34s %" PRIu64 " KiB, %.1f KiB per device\n", "peak PSS (shared pages split)",
           run_pss(s), o->devices ? (double)run_pss(s) / (double)o->devices : 0.0);
    if (cpu_per_reg(s, s->cpu_self_ms) >= 0) {
        printf("  %-34s %.0f us: %s %.0f", "CPU per registration", cpu_per_reg(s, cpu_all_ms(s)),
               o->workers > 1 ? "backend" : "scansim", cpu_per_reg(s, s->cpu_self_ms));
        if (o->workers > 1)
            printf(", devices %.0f", cpu_per_reg(s, s->cpu_workers_ms));
        if (s->cpu_broker_ms >= 0)
            printf(", broker %.0f", cpu_per_reg(s, s->cpu_broker_ms));
        printf("\n");
    }
    run_commands_print(&s->cmds);
    if (g->last_failure[0] && (g->connect_failures || g->connection_losses))
        printf("  %-34s %s\n", "last connection problem", g->last_failure);
    run_watch_print(&s->watch);
    printf("  %-34s %d\n", "exit code", exit_code);
    fflush(stdout);
}

/* run_json's parts each add to the object j, in the order the report has always had. */
#define NUM(k, v) cJSON_AddNumberToObject(j, k, (double)(v))

/* The backend's figures: the ledger's, or nulls with --no-backend. */
static void run_json_ledger(const struct run_state *s, cJSON *j)
{
    const struct run_opts *o = s->o;
    cJSON *lat;

    if (!s->have_ledger) {
        cJSON_AddNullToObject(j, "items_published");
        cJSON_AddNullToObject(j, "items_registered");
        cJSON_AddNullToObject(j, "items_lost");
        cJSON_AddNullToObject(j, "duplicate_registrations");
        cJSON_AddNullToObject(j, "latency_ms");
        NUM("registrations_per_second", rate_final(s));
        return;
    }
    NUM("items_published", s->led.acknowledged);
    NUM("items_sent", s->led.published);
    NUM("items_reassigned", s->reassigned);
    NUM("items_lost_with_dead_workers", s->orphaned);
    NUM("items_registered", s->led.registered);
    NUM("items_lost", s->led.lost);
    NUM("duplicate_registrations", o->c.layout == SCANSIM_LAYOUT_SEED ? 0 : s->led.registered_twice);
    NUM("items_registered_by_several_devices", s->led.registered_twice);
    NUM("ledger_duplicate_deliveries", s->led.duplicate_deliveries);
    NUM("ledger_malformed", s->led.malformed);
    NUM("ledger_unknown_items", s->led.unknown_items);
    NUM("publish_failed", s->led.publish_failed + s->publish_failed);
    NUM("items_refused", s->led.publish_refused);
    NUM("refused_reason_code", s->led.refused_reason);
    NUM("window_skips", s->gate_skips);
    NUM("registrations_per_second", rate_final(s));
    lat = cJSON_AddObjectToObject(j, "latency_ms");
    if (lat) {
        cJSON_AddNumberToObject(lat, "p50", s->led.latency_p50_ms);
        cJSON_AddNumberToObject(lat, "p90", s->led.latency_p90_ms);
        cJSON_AddNumberToObject(lat, "p99", s->led.latency_p99_ms);
        cJSON_AddNumberToObject(lat, "max", s->led.latency_max_ms);
    }
}

/* The devices' own counters. */
static void run_json_devices(const struct run_state *s, cJSON *j)
{
    const struct fleet_figures *g = &s->fig;
    uint64_t reconnects = g->connects > g->ever_connected ? g->connects - g->ever_connected : 0;

    NUM("items_received", g->items_received);
    NUM("items_queued", g->items_queued);
    NUM("registrations_confirmed", g->registrations_confirmed);
    NUM("registrations_acked", g->registrations_acked);
    NUM("registrations_resent", g->registrations_resent);
    NUM("duplicates_suppressed", g->duplicates_suppressed);
    NUM("items_cancelled", g->cancels);
    NUM("wrong_tags", g->wrong_tags);
    NUM("inventory_queries", g->inventory_queries);
    NUM("inventory_answers", g->inventory_answers);
    NUM("inventory_timeouts", g->inventory_timeouts);
    NUM("queue_full", g->queue_full);
    NUM("outbox_full", g->outbox_full);
    NUM("rejects", g->rejects);
    NUM("reconnects", reconnects);
    NUM("connect_failures", g->connect_failures);
    NUM("connection_losses", g->connection_losses);
    NUM("publish_errors", g->publish_errors);
}

/* Time, memory and CPU. */
static void run_json_resources(const struct run_state *s, cJSON *j)
{
    const struct fleet_figures *g = &s->fig;
    const struct run_opts *o = s->o;
    uint64_t rss = s->self_rss_kib + (o->workers > 1 ? g->peak_rss_kib : 0);

    if (g->connect_seconds >= 0)
        NUM("connect_seconds", g->connect_seconds);
    else
        cJSON_AddNullToObject(j, "connect_seconds");
    NUM("duration_seconds", (double)(s->t_end - s->t_start) / 1000.0);
    NUM("peak_rss_kib", rss);
    NUM("peak_rss_device_processes_kib", run_device_rss(s));
    NUM("peak_rss_per_device_kib", o->devices ? (double)run_device_rss(s) / (double)o->devices : 0.0);
    NUM("peak_pss_kib", run_pss(s));
    NUM("peak_pss_per_device_kib", o->devices ? (double)run_pss(s) / (double)o->devices : 0.0);
    if (cpu_per_reg(s, s->cpu_self_ms) >= 0) {
        /* CPU time while publishing, per registration: who the machine works for */
        cJSON *cpu = cJSON_AddObjectToObject(j, "cpu_us_per_registration");
        if (cpu) {
            cJSON_AddNumberToObject(cpu, o->workers > 1 ? "backend_process" : "scansim_process",
                                    cpu_per_reg(s, s->cpu_self_ms));
            if (o->workers > 1)
                cJSON_AddNumberToObject(cpu, "device_processes", cpu_per_reg(s, s->cpu_workers_ms));
            if (s->cpu_broker_ms >= 0)
                cJSON_AddNumberToObject(cpu, "broker", cpu_per_reg(s, s->cpu_broker_ms));
            cJSON_AddNumberToObject(cpu, "all", cpu_per_reg(s, cpu_all_ms(s)));
        }
    }
}

/* The summary as JSON (--json, and the table of --report); NULL when out of memory. */
static cJSON *run_json(const struct run_state *s, int exit_code)
{
    const struct fleet_figures *g = &s->fig;
    const struct run_opts *o = s->o;
    cJSON *j = cJSON_CreateObject();

    if (!j)
        return NULL;
    NUM("devices_requested", o->devices);
    NUM("devices_connected", g->ever_connected);
    NUM("devices_online_at_end", s->online_at_end);
    cJSON_AddStringToObject(j, "layout", o->c.layout == SCANSIM_LAYOUT_SEED ? "seed" : "per-device");
    NUM("workers", o->workers);
    if (s->worker_program)
        cJSON_AddStringToObject(j, "worker_program", s->worker_program);
    cJSON_AddBoolToObject(j, "backend", !o->no_backend);
    run_json_ledger(s, j);
    run_json_devices(s, j);
    run_json_resources(s, j);
    run_commands_json(&s->cmds, j);
    run_watch_json(&s->watch, j);
    if (s->have_ledger)
        cJSON_AddItemToObject(j, "latency_histogram", latency_hist_to_json(&s->hist));
    run_shard_json(o, j);
    cJSON_AddBoolToObject(j, "interrupted", run_signals > 0);
    NUM("exit_code", exit_code);
    return j;
}
#undef NUM

static int write_json(const struct run_state *s, int exit_code)
{
    const struct run_opts *o = s->o;
    cJSON *j = run_json(s, exit_code);
    char *text = j ? cJSON_Print(j) : NULL;
    FILE *fp;
    int rc = -1;

    if (!text)
        goto out;
    fp = fopen(o->json_path, "w");
    if (!fp) {
        scansim_cli_error(CMD, "--json: cannot write %s: %s", o->json_path, strerror(errno));
        goto out;
    }
    fputs(text, fp);
    fputc('\n', fp);
    rc = fclose(fp) == 0 ? 0 : -1;
    if (rc)
        scansim_cli_error(CMD, "--json: cannot write %s: %s", o->json_path, strerror(errno));
out:
    free(text);
    cJSON_Delete(j);
    return rc;
}

/* ------------------------------------------------------------------ the run */

struct run_ctx {
    struct run_opts *o;
    struct fleet *fleet;             /* in-process devices (workers == 1) */
    struct fleet_workers *workers;   /* or worker processes */
    struct fleet_shared_rows *rows;  /* their device rows, with --http */
    struct run_backends rb;          /* the backend role, one per broker; rb.n 0 = none */
    struct fleet_driver *driver;
    struct run_commands *cmds;       /* --command-rate, or NULL */
    struct run_dash *dash;           /* --http / --report, or NULL */
    double credit;
    uint64_t last_start_ms;
    /* the brokers: the first (or the embedded one) and the others of --broker */
    const char *uri;
    const char *uris[SCANSIM_CLI_BROKERS_MAX];
    int n_uris;
    struct hx_broker *embedded;
    int broker_pid;                  /* its CPU counts in the figures; 0 = none known */
    struct run_cpu cpu0, cpu1;       /* at the start and the end of publishing */
    uint64_t next_progress, next_ledger;
};

static void gather(struct run_ctx *c, struct run_state *s, bool ledger)
{
    if (c->workers) {
        uint64_t pss = fleet_pss_kib();
        fleet_workers_poll(c->workers, 0);
        fleet_workers_figures(c->workers, &s->fig);
        s->fig.devices = (uint64_t)c->o->devices;
        if (pss > s->self_pss_kib)
            s->self_pss_kib = pss;
    } else {
        fleet_figures(c->fleet, &s->fig);
    }
    if (c->rb.n && ledger) {
        run_backends_report(&c->rb, &s->led);
        s->have_ledger = true;
    }
    if (c->driver) {
        s->published = fleet_driver_published(c->driver) + run_dash_items_created(c->dash);
        s->publish_failed = fleet_driver_failed(c->driver);
        s->gate_skips = fleet_driver_gate_skips(c->driver);
        s->reassigned = fleet_driver_reassigned(c->driver);
        s->orphaned = fleet_driver_orphaned(c->driver);
    }
    run_commands_report(c->cmds, &s->cmds);
}

/* Power on more devices as the connect rate allows (in-process fleet only). */
static void start_devices(struct run_ctx *c, uint64_t now)
{
    if (!c->fleet || fleet_unstarted(c->fleet) == 0)
        return;
    if (c->o->connect_rate <= 0) {
        fleet_start_some(c->fleet, fleet_unstarted(c->fleet));
        return;
    }
    if (c->last_start_ms == 0)
        c->credit = c->o->connect_rate / 100.0 + 1; /* a first small batch at once */
    else
        c->credit += c->o->connect_rate * (double)(now - c->last_start_ms) / 1000.0;
    if (c->credit > c->o->connect_rate)
        c->credit = c->o->connect_rate;
    c->last_start_ms = now;
    c->credit -= fleet_start_some(c->fleet, (int)c->credit);
}

static uint64_t registered_now(struct run_ctx *c, struct run_state *s)
{
    (void)c;
    return s->have_ledger ? s->led.registered : s->fig.registrations_acked;
}

/* --report: the final figures as one more sample, then the file. */
static int write_report(struct run_ctx *c, struct run_state *s, int exit_code)
{
    cJSON *j = run_json(s, exit_code);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    int rc = -1;

    run_dash_tick(c->dash, &s->fig, s->have_ledger ? &s->led : NULL, rate_final(s),
                  (double)(s->t_end - s->t_start) / 1000.0);
    if (text)
        rc = run_dash_report(c->dash, s->o->report_path, text);
    if (rc == 0)
        printf("  %-34s %s\n", "report", s->o->report_path);
    free(text);
    cJSON_Delete(j);
    return rc;
}

/* The devices (in process or in workers), the backend role with its driver and command
   sender, the dashboard. SCANSIM_EXIT_OK, or the exit code of what failed (said). */
static int run_setup(struct run_ctx *c, struct run_state *s, int argc, char **argv)
{
    struct run_opts *o = c->o;
    int rc;

    if (o->workers > 1) {
        if (o->http_listen &&
            fleet_shared_rows_create((int)o->devices, (int)o->workers, &c->rows) != 0)
            return SCANSIM_EXIT_INTERNAL;
        if (fleet_workers_spawn((int)o->workers, argv + 1, argc - 1, (int)o->devices,
                                o->id_start, o->id_prefix, c->uris, c->n_uris, o->c.password,
                                fleet_shared_rows_fd(c->rows), &c->workers) != 0)
            return SCANSIM_EXIT_INTERNAL;
        s->worker_program = fleet_workers_program(c->workers);
    } else {
        struct fleet_opts fo;
        run_fleet_opts(o, c->uri, &fo);
        rc = fleet_create(&fo, &c->fleet);
        if (rc != SIM_OK)
            return rc == SIM_ERR_INVAL || rc == SIM_ERR_IO ? SCANSIM_EXIT_USAGE : SCANSIM_EXIT_INTERNAL;
    }
    /* then the backend: its subscriptions exist before any device is powered on */
    if (!o->no_backend) {
        int brc = run_backends_start(&c->rb, o, c->uris, c->n_uris);
        if (brc != SCANSIM_EXIT_OK)
            return brc;
        struct fleet_driver_opts dopt = {
            .backend = c->rb.b[0], .n_backends = c->rb.n, .devices = (int)o->devices,
            .id_prefix = o->id_prefix,
            .id_start = o->id_start, .per_device = o->c.layout != SCANSIM_LAYOUT_SEED,
            .items = (uint64_t)o->items, .rate = o->item_rate, .window = (int)o->window,
            .max_open = (uint64_t)o->max_in_flight,
            .gate_timeout_ms = 5000 + 4 * o->think_max_ms,
        };
        for (int j = 0; j < c->rb.n; j++)
            dopt.backends[j] = c->rb.b[j];
        if (fleet_driver_create(&dopt, &c->driver) != 0) {
            scansim_cli_error(CMD, "out of memory");
            return SCANSIM_EXIT_INTERNAL;
        }
        if ((rc = run_commands_start(o, c->uris, c->n_uris, &c->cmds)) != SCANSIM_EXIT_OK)
            return rc;
    }
    /* The dashboard creates items through the backend on their device's broker, and
       shows the ledgers of all. */
    rc = run_dash_start(o, c->fleet, c->rows, c->workers, c->rb.b, c->rb.n, &c->dash);
    if (rc != DASH_OK)
        return rc == DASH_ERR_NOMEM ? SCANSIM_EXIT_INTERNAL : SCANSIM_EXIT_USAGE;
    if (!s->tty)
        printf("scansim run: %ld devices on %s%s (%s layout)\n", o->devices, c->uri,
               c->n_uris > 1 ? " and more brokers" : "",
               o->c.layout == SCANSIM_LAYOUT_SEED ? "seed" : "per-device");
    if (o->shard.count)
        printf("scansim run: shard %ld of %ld: devices %s%ld..%ld\n", o->shard.index,
               o->shard.count, o->id_prefix, o->id_start, o->id_start + o->devices - 1);
    return SCANSIM_EXIT_OK;
}

/* Phase 1: connect (publishing waits: an item for a device without a session is dropped
   by the broker). Ends when every device connected, a death, a signal or the time-out. */
static void run_connect_phase(struct run_ctx *c, struct run_state *s)
{
    const struct run_opts *o = c->o;

    c->next_progress = sim_clock_ms() + 1000;
    for (;;) {
        uint64_t now = sim_clock_ms();
        start_devices(c, now);
        gather(c, s, false);
        if (run_watch_check(&s->watch, c->workers, c->driver, true, now))
            break;
        if (s->fig.ever_connected + (uint64_t)s->watch.devices_lost >= (uint64_t)o->devices)
            break;
        if (run_signals)
            break;
        if (now - s->t_start >= o->connect_timeout_ms) {
            if (s->fig.ever_connected == 0) {
                scansim_cli_error(CMD, "no device connected to %s within %.0f s%s%s - check the broker "
                                   "URI, that it runs, and the credentials", c->uri,
                              (double)o->connect_timeout_ms / 1000.0,
                              s->fig.last_failure[0] ? ": " : "", s->fig.last_failure);
                s->connect_gave_up = true;
                break;
            }
            fprintf(stderr, "scansim run: only %" PRIu64 " of %ld devices connected within %.0f s; "
                    "going on with them\n", s->fig.ever_connected, o->devices,
                    (double)o->connect_timeout_ms / 1000.0);
            break;
        }
        if (now >= c->next_progress) {
            c->next_progress = now + 1000;
            progress_line(s);
            run_dash_tick(c->dash, &s->fig, NULL, 0, (double)(now - s->t_start) / 1000.0);
        }
        if (c->workers)
            fleet_workers_poll(c->workers, 20);
        else
            run_nap_ms(10);
    }
}

/* Once a second while publishing: the ledger, the progress line, and whether publishing is
   over (true): everything registered, nothing left to wait for, or no progress for grace_ms
   since *grace_from. */
static bool run_ledger_second(struct run_ctx *c, struct run_state *s, uint64_t now,
                              uint64_t *grace_from, uint64_t grace_ms)
{
    const struct run_opts *o = c->o;

    /* the ledger report walks and sorts every item's latency: once a second (the end of
       the run is caught by run_backends_all_registered in the loop) */
    c->next_ledger = now + 1000;
    gather(c, s, true);
    uint64_t reg = registered_now(c, s);
    if (reg != s->last_registered) {
        s->t_last_progress = now;
        if (*grace_from)
            *grace_from = now;
    }
    if (now >= c->next_progress) {
        double dt = (double)(now - (s->last_rate_ms ? s->last_rate_ms : s->t_pub_start)) / 1000.0;
        s->rate_now = dt > 0 ? (double)(reg - s->reg_at_last_line) / dt : 0;
        s->reg_at_last_line = reg;
        s->last_rate_ms = now;
        c->next_progress = now + 1000;
        progress_line(s);
        run_dash_tick(c->dash, &s->fig, s->have_ledger ? &s->led : NULL, s->rate_now,
                      (double)(now - s->t_start) / 1000.0);
    }
    s->last_registered = reg;
    if (!c->driver || !fleet_driver_done_publishing(c->driver))
        return false;
    if (!*grace_from)
        *grace_from = now;
    if (s->led.registered >= s->led.published && s->led.published == s->published &&
        (o->c.layout != SCANSIM_LAYOUT_SEED ||
         s->fig.registrations_acked >= s->fig.ever_connected * s->published))
        return true; /* everything registered (seed: by every device) */
    if (o->c.layout != SCANSIM_LAYOUT_SEED && (s->fig.cancels > 0 || s->led.publish_refused > 0) &&
        s->led.registered + s->fig.cancels + s->led.publish_refused >= s->published)
        return true; /* the rest were cancelled by the operators or refused by the broker */
    return now - *grace_from >= grace_ms; /* no progress for the grace period */
}

/* Phase 2: publish (or, without a backend, let the user's backend drive) until every item
   is registered, a death, the duration, Ctrl-C, or no progress for the grace period. */
static void run_publish_phase(struct run_ctx *c, struct run_state *s)
{
    const struct run_opts *o = c->o;
    uint64_t grace_from = 0, grace_ms = o->grace_ms;
    int seen_signals = 0;

    for (;;) {
        uint64_t now = sim_clock_ms();
        bool over = o->duration_ms && now - s->t_pub_start >= o->duration_ms;
        start_devices(c, now);
        if (run_watch_check(&s->watch, c->workers, c->driver,
                            s->fig.connected > 0 || run_backends_connected(&c->rb), now)) {
            if (c->driver)
                fleet_driver_close(c->driver);
            return;
        }
        if (c->driver && !fleet_driver_done_publishing(c->driver)) {
            if (run_signals > 0 || over)
                fleet_driver_close(c->driver);
            else
                fleet_driver_pump(c->driver, now, 5000);
        }
        if (!run_signals)
            run_commands_pump(c->cmds, now);
        if (!c->driver && (run_signals || over))
            return; /* --no-backend: the user's backend drove; stop now */
        if (run_signals != seen_signals) {
            seen_signals = run_signals;
            if (seen_signals >= 2)
                return; /* second Ctrl-C: at once */
            grace_ms = o->grace_ms < 3000 ? o->grace_ms : 3000;
            if (s->tty)
                fputc('\n', stdout);
            fprintf(stderr, "scansim run: stopping: publishing stopped, waiting up to %.0f s for "
                    "registrations (Ctrl-C again to stop at once)\n", (double)grace_ms / 1000.0);
        }
        if (now >= c->next_ledger && run_ledger_second(c, s, now, &grace_from, grace_ms))
            return;
        /* per-device layout: done when the ledger has every item (the seed layout waits
           for the other devices' registrations: the grace rule) */
        if (c->driver && o->c.layout != SCANSIM_LAYOUT_SEED && fleet_driver_done_publishing(c->driver) &&
            fleet_driver_published(c->driver) > 0 &&
            run_backends_all_registered(&c->rb, fleet_driver_published(c->driver) +
                                        run_dash_items_created(c->dash),
                                        c->workers ? 0 : 5)) {
            s->t_last_progress = sim_clock_ms(); /* the moment the last item registered */
            return;
        }
        if (c->workers)
            fleet_workers_poll(c->workers, 2);
        else
            run_nap_ms(2);
    }
}

/* After publishing: outstanding command replies, the figures of the end (online, CPU),
   then phase 3: the devices powered off cleanly and the ledger settled. */
static void run_finish(struct run_ctx *c, struct run_state *s)
{
    const struct run_opts *o = c->o;

    s->t_pub_end = sim_clock_ms();
    /* the devices still run: outstanding replies can come (not from a broker that died) */
    run_commands_finish(c->cmds, s->watch.broker_gone ? 0 : RUN_COMMANDS_FINISH_MS);
    gather(c, s, false);
    /* a broker that went away takes its devices with it: give the workers' once-a-second
       figures time to say so, so that "online at the end" is not a second old */
    for (uint64_t until = sim_clock_ms() + 1500;
         s->watch.broker_gone && s->fig.connected > 0 && sim_clock_ms() < until;) {
        if (c->workers)
            fleet_workers_poll(c->workers, 50);
        else
            run_nap_ms(50);
        gather(c, s, false);
    }
    s->online_at_end = s->fig.connected; /* before the power-off below takes every device off */
    run_cpu_sample(&c->cpu1, c->workers, c->broker_pid);
    s->cpu_self_ms = (double)(c->cpu1.self - c->cpu0.self);
    s->cpu_workers_ms = c->workers ? (double)(c->cpu1.workers - c->cpu0.workers) : -1;
    s->cpu_broker_ms = c->broker_pid > 0 ? (double)(c->cpu1.broker - c->cpu0.broker) : -1;
    if (c->cpu1.self == 0 || (c->workers && c->cpu1.workers < c->cpu0.workers) ||
        c->cpu1.broker < c->cpu0.broker)
        s->cpu_self_ms = -1; /* not readable, or a worker went away meanwhile: say nothing */

    if (c->workers)
        fleet_workers_stop(c->workers, 30000);
    else if (c->fleet)
        fleet_stop(c->fleet);
    if (o->c.verbose)
        fprintf(stderr, "scansim run: devices stopped in %.1f s\n",
                (double)(sim_clock_ms() - s->t_pub_end) / 1000.0);
    (void)run_watch_check(&s->watch, c->workers, NULL, true, sim_clock_ms()); /* said at once */
    run_backends_stop(&c->rb, s->watch.broker_gone ? 500 : 5000);
    gather(c, s, true);
    if (c->rb.n)
        run_backends_histogram(&c->rb, &s->hist);
    s->t_end = sim_clock_ms();
    s->self_rss_kib = fleet_peak_rss_kib();
    if (!c->workers && c->fleet)
        s->fig.peak_rss_kib = 0; /* self_rss_kib counts it */
}

/* What the run's figures say about it (docs: scansim run --help, "Exit codes"). */
static int run_exit_code(const struct run_opts *o, const struct run_state *s)
{
    if (s->connect_gave_up || s->watch.broker_gone)
        return SCANSIM_EXIT_BROKER;
    if (s->watch.workers_dead > 0)
        return SCANSIM_EXIT_FAILED; /* part of the fleet died: the run is not what was asked */
    if (s->have_ledger &&
        (s->led.lost > (o->c.layout == SCANSIM_LAYOUT_SEED ? 0 : s->fig.cancels) ||
         (o->c.layout != SCANSIM_LAYOUT_SEED && s->led.registered_twice > 0) ||
         s->led.published < s->published))
        return SCANSIM_EXIT_FAILED;
    if (run_commands_failed(&s->cmds))
        return SCANSIM_EXIT_FAILED; /* valid commands refused or unanswered (the summary says) */
    return SCANSIM_EXIT_OK;
}

static void run_teardown(struct run_ctx *c)
{
    run_dash_free(c->dash); /* the server first: it reads the fleet's rows */
    fleet_workers_free(c->workers);
    fleet_shared_rows_free(c->rows);
    uint64_t t0 = sim_clock_ms();
    fleet_free(c->fleet);
    if (c->o->c.verbose && c->fleet)
        fprintf(stderr, "scansim run: teardown %.1f s\n", (double)(sim_clock_ms() - t0) / 1000.0);
    fleet_driver_free(c->driver);
    run_commands_free(c->cmds);
    run_backends_free(&c->rb);
    scansim_cli_broker_down(&c->o->c, c->embedded);
}

int scansim_cmd_run(int argc, char **argv)
{
    struct run_opts o;
    struct run_ctx c;
    struct run_state s;
    int rc, exit_code;

    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    s.cpu_self_ms = s.cpu_workers_ms = s.cpu_broker_ms = -1;
    rc = run_parse(argc, argv, &o);
    if (rc > 0)
        return SCANSIM_EXIT_OK;
    if (rc < 0)
        return SCANSIM_EXIT_USAGE;
    run_raise_fd_limit();
    run_install_signals(o.worker_index >= 0);
    if (o.worker_index >= 0)
        return run_worker(&o);
    run_apply_shard(&o);

    if (!o.items && !o.item_rate && !o.duration_ms && !o.no_backend)
        o.items = 10 * o.devices;
    c.o = &o;
    s.o = &o;
    s.tty = isatty(STDOUT_FILENO);
    if (o.workers == 1 && o.devices + 64 > run_fd_limit())
        fprintf(stderr, "scansim run: warning: %ld devices need about %ld file descriptors, the "
                "limit is %ld: use --workers K or raise 'ulimit -n'\n", o.devices, o.devices + 64,
                run_fd_limit());

    scansim_cli_transport_setup(&o.c);
    if (scansim_cli_broker_up(CMD, &o.c, &c.embedded, &c.uri) != 0)
        return SCANSIM_EXIT_BROKER;
    s.t_start = sim_clock_ms();
    c.uris[0] = c.uri;
    c.n_uris = o.c.n_brokers > 1 ? o.c.n_brokers : 1;
    for (int j = 1; j < c.n_uris; j++)
        c.uris[j] = o.c.broker_uris[j];
    run_watch_init(&s.watch, c.embedded, c.uri, o.connect_timeout_ms);

    exit_code = run_setup(&c, &s, argc, argv);
    if (exit_code == SCANSIM_EXIT_OK) {
        run_connect_phase(&c, &s);
        s.t_pub_start = sim_clock_ms();
        c.broker_pid = c.embedded ? (int)hx_broker_pid(c.embedded) : (int)o.broker_pid;
        run_cpu_sample(&c.cpu0, c.workers, c.broker_pid);
        s.t_last_progress = s.t_pub_start;
        if (!s.connect_gave_up && !s.watch.broker_gone)
            run_publish_phase(&c, &s);
        run_finish(&c, &s);
        exit_code = run_exit_code(&o, &s);
        print_summary(&s, exit_code);
        if (o.json_path && write_json(&s, exit_code) != 0 && exit_code == SCANSIM_EXIT_OK)
            exit_code = SCANSIM_EXIT_INTERNAL;
        if (o.report_path && write_report(&c, &s, exit_code) != 0 && exit_code == SCANSIM_EXIT_OK)
            exit_code = SCANSIM_EXIT_INTERNAL;
    }
    run_teardown(&c);
    return exit_code;
}
