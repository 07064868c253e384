/*
 * runner.c - runs one scenario (hx/runner.h): set-up, time zero, the steps on their
 * timeline, tear-down, and the timeline report.
 *
 * Set-up order (runner_env.c): work folder, broker, watcher, backend, proxy hub + one proxy
 * per proxied device, loops, devices (powered on). Then "time zero", here, once every device
 * is online and its retained `online` reached the watcher. The device publishes `online`
 * only once the broker has granted every subscription by its SUBACK, so its `online`
 * arriving proves its subscriptions are in place on any broker: an item published after
 * time zero cannot miss a device. The backend load starts at time zero. On a broker the
 * runner did not start (hx_runner_opts.broker_uri) set-up first clears what an earlier run
 * left there for the scenario's device ids (runner_broker.c).
 *
 * Steps run in file order on this thread. Each step's selector is resolved once, when the
 * step runs; actions are carried out by runner_actions.c, expectations evaluated by
 * runner_expect.c. Every step leaves one timeline entry, and a failed run ends with the
 * figures that explain it.
 */
#include "runner_internal.h"
#include "sim/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ================================================================ small helpers */

int64_t runner_now_ms(void)
{
    return (int64_t)sim_clock_ms();
}

void runner_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t runner_mix(uint64_t a, uint64_t b)
{
    uint64_t st = a ^ (b * 0x9E3779B97F4A7C15ull);
    return scn_rng_next(&st);
}

static void tl_append(struct runner *r, const char *line)
{
    size_t n = strlen(line);
    if (r->tl_len + n + 2 > r->tl_cap) {
        size_t ncap = (r->tl_cap + n + 2) * 2;
        char *nb = realloc(r->timeline, ncap);
        if (!nb)
            return;
        r->timeline = nb;
        r->tl_cap = ncap;
    }
    memcpy(r->timeline + r->tl_len, line, n);
    r->tl_len += n;
    r->timeline[r->tl_len++] = '\n';
    r->timeline[r->tl_len] = '\0';
}

void runner_note(struct runner *r, const char *outcome, const struct scn_pos *pos,
                 const char *text, const char *detail)
{
    char where[64] = "";
    if (pos && pos->line)
        snprintf(where, sizeof where, "line %u", pos->line);
    char line[2048];
    snprintf(line, sizeof line, "  [%8.3fs] %-6s %-9s %s%s%s", (double)(runner_now_ms() - r->t_start) / 1000.0,
             outcome, where, text, detail && *detail ? "  -> " : "", detail ? detail : "");
    tl_append(r, line);
    if (r->opts.progress) {
        fprintf(r->opts.progress, "%s: %s\n", r->s->name, line + 2);
        fflush(r->opts.progress);
    }
}

void runner_fail(struct runner *r, const struct scn_pos *pos, const char *text,
                 const char *detail)
{
    runner_note(r, "FAILED", pos, text, detail);
    if (!r->failed) {
        r->failed = true;
        char buf[2048];
        if (pos && pos->line)
            snprintf(buf, sizeof buf, "%s:%u:%u: %s: %s", pos->file ? pos->file : r->s->file,
                     pos->line, pos->col, text, detail ? detail : "");
        else
            snprintf(buf, sizeof buf, "%s: %s: %s", r->s->file, text, detail ? detail : "");
        free(r->failure);
        r->failure = strdup(buf);
    }
}

/* A platform code (sim/err.h) in the harness's enum (hx/err.h): what the runner returns is
   only ever an hx_err, whichever layer failed. */
int runner_hx_err(int sim_rc)
{
    switch (sim_rc) {
    case SIM_OK: return HX_OK;
    case SIM_ERR_INVAL: return HX_ERR_INVAL;
    case SIM_ERR_NOMEM: return HX_ERR_NOMEM;
    case SIM_ERR_TIMEOUT: return HX_ERR_TIMEOUT;
    case SIM_ERR_MQTT:
    case SIM_ERR_OFFLINE: return HX_ERR_PROTO;
    default: return HX_ERR_SYS; /* IO, STATE, NOT_FOUND, TOO_BIG: the system under us */
    }
}

/* ================================================================ steps */

static int sel_resolve(struct runner *r, const struct scn_selector *sel, bool none_means_all,
                       struct runner_sel *out)
{
    struct scn_selector all = {.kind = SCN_SEL_ALL, .first = 1, .last = r->n_devs,
                               .count = r->n_devs, .group = -1};
    if (sel->kind == SCN_SEL_NONE) {
        if (!none_means_all) {
            out->n = 0;
            return 0;
        }
        sel = &all;
    }
    out->num = malloc(sizeof *out->num * (r->n_devs ? r->n_devs : 1));
    if (!out->num)
        return HX_ERR_NOMEM;
    out->n = scn_selector_resolve(r->s, sel, &r->rng, out->num, r->n_devs);
    return 0;
}

/* Which selector-less steps mean "all devices". */
static bool none_means_all(enum scn_action a)
{
    return a != SCN_ACT_PUBLISH_ITEMS && a != SCN_ACT_PUBLISH_MALFORMED && a != SCN_ACT_NOTHING &&
           a != SCN_ACT_BROKER_STOP && a != SCN_ACT_BROKER_KILL && a != SCN_ACT_BROKER_RESTART;
}

/* Sleep until t (monotonic ms); false when the scenario's deadline comes first. */
static bool sleep_until(struct runner *r, int64_t t)
{
    if (t > r->deadline) {
        runner_sleep_ms(r->deadline - runner_now_ms());
        return false;
    }
    runner_sleep_ms(t - runner_now_ms());
    return true;
}

static void run_steps(struct runner *r)
{
    const struct scn_scenario *s = r->s;
    r->since = r->t_zero;
    for (size_t i = 0; i < s->n_steps; i++) {
        const struct scn_step *st = &s->steps[i];
        char text[512], obs[1024] = "", err[512] = "", info[512] = "";
        scn_step_describe(st, text, sizeof text);
        bool in_time = true;
        switch (st->timing) {
        case SCN_AT: in_time = sleep_until(r, r->t_zero + st->time_ms); break;
        case SCN_AFTER:
        case SCN_WAIT: in_time = sleep_until(r, runner_now_ms() + st->time_ms); break;
        case SCN_WAIT_UNTIL:
        case SCN_THEN: break;
        }
        if (!in_time || runner_now_ms() > r->deadline) {
            snprintf(err, sizeof err, "the scenario's timeout (%.3fs) ran out before this step",
                     (double)s->timeout_ms / 1000.0);
            runner_fail(r, &st->pos, text, err);
            return;
        }
        r->steps_run++;
        struct runner_sel sel = {NULL, 0};
        if (sel_resolve(r, &st->sel, st->action != SCN_ACT_EXPECT && none_means_all(st->action), &sel) != 0) {
            runner_fail(r, &st->pos, text, "out of memory");
            return;
        }
        if (st->action == SCN_ACT_EXPECT) {
            if (st->sel.kind == SCN_SEL_NONE && sel.n == 0) {
                free(sel.num);
                sel.num = NULL;
                sel_resolve(r, &st->sel, true, &sel); /* `<counter> ...` alone: all devices */
            }
            bool ok = runner_expect_run(r, st, &sel, obs, sizeof obs);
            free(sel.num);
            if (ok) {
                runner_note(r, "ok", &st->pos, text, obs);
                continue;
            }
            r->exp_failed++;
            runner_fail(r, &st->pos, text, obs);
            if (st->timing == SCN_WAIT_UNTIL)
                return; /* later steps depend on it */
            continue;
        }
        if (st->action != SCN_ACT_NOTHING)
            r->since = runner_now_ms();
        int rc = runner_action_run(r, st, &sel, info, err, sizeof err);
        if (st->sel.kind == SCN_SEL_RANDOM && sel.n > 0) {
            size_t l = strlen(info);
            l += (size_t)snprintf(info + l, sizeof info - l, "%sdrew", l ? "; " : "");
            for (size_t k = 0; k < sel.n && l < sizeof info - 16; k++)
                l += (size_t)snprintf(info + l, sizeof info - l, " %s", r->devs[sel.num[k] - 1].id);
        }
        free(sel.num);
        if (rc != 0) {
            runner_fail(r, &st->pos, text, err);
            return; /* an action that did not happen makes the rest meaningless */
        }
        runner_note(r, "ok", &st->pos, text, info);
    }
}

/* After a failure: the figures at the end, so the timeline explains itself (a full
   queue, losses, rejects...). Sums over the fleet, then the devices that differ. */
static void note_figures(struct runner *r)
{
    char line[1024];
    struct hx_ledger_report rep;
    hx_backend_sync(r->backend, 2000);
    hx_backend_report(r->backend, &rep);
    snprintf(line, sizeof line, "  figures: ledger published %llu, registered once %llu, twice %llu, "
             "lost %llu, duplicate deliveries %llu, malformed %llu, unknown items %llu",
             (unsigned long long)rep.published, (unsigned long long)rep.registered_once,
             (unsigned long long)rep.registered_twice, (unsigned long long)rep.lost,
             (unsigned long long)rep.duplicate_deliveries, (unsigned long long)rep.malformed,
             (unsigned long long)rep.unknown_items);
    tl_append(r, line);
    if (runner_refresh(r) != 0)
        return;
    struct fw_stats sum = {0};
    uint32_t online = 0, outbox = 0, pending = 0;
    for (uint32_t i = 0; i < r->n_devs; i++) {
        const struct runner_dev *d = &r->devs[i];
        sum.items_received += d->stats.items_received;
        sum.duplicates_suppressed += d->stats.duplicates_suppressed;
        sum.queue_full += d->stats.queue_full;
        sum.registrations_confirmed += d->stats.registrations_confirmed;
        sum.registrations_resent += d->stats.registrations_resent;
        sum.rejects_total += d->stats.rejects_total;
        sum.connection_losses += d->stats.connection_losses;
        sum.connect_failures += d->stats.connect_failures;
        online += d->status.online;
        outbox += d->status.outbox;
        pending += d->status.pending;
    }
    snprintf(line, sizeof line, "  figures: devices online %u/%u; items received %u, duplicates "
             "suppressed %u, queue full %u, confirmed %u, resent %u, rejects %u, connection losses "
             "%u, connect failures %u; pending %u, outbox %u", online, r->n_devs, sum.items_received,
             sum.duplicates_suppressed, sum.queue_full, sum.registrations_confirmed,
             sum.registrations_resent, sum.rejects_total, sum.connection_losses,
             sum.connect_failures, pending, outbox);
    tl_append(r, line);
    unsigned shown = 0;
    for (uint32_t i = 0; i < r->n_devs && shown < 5; i++) {
        const struct runner_dev *d = &r->devs[i];
        if (d->stats.queue_full || d->stats.outbox_full || !d->status.online || d->status.outbox ||
            d->stats.publish_errors || d->stats.storage_errors) {
            snprintf(line, sizeof line, "  figures: %s: %s, screen %s, pending %u, outbox %u, "
                     "queue full %u, outbox full %u, publish errors %u, storage errors %u", d->id,
                     d->status.online ? "online" : "offline", fw_screen_name(d->status.screen),
                     d->status.pending, d->status.outbox, d->stats.queue_full, d->stats.outbox_full,
                     d->stats.publish_errors, d->stats.storage_errors);
            tl_append(r, line);
            shown++;
        }
    }
}

/* ================================================================ entry point */

/* Time zero: every device online and its `online` seen by the watcher. */
static int wait_time_zero(struct runner *r, char *err, size_t cap)
{
    for (;;) {
        uint32_t online = 0, heard = 0;
        if (runner_refresh(r) != 0) {
            snprintf(err, cap, "could not read the devices' figures");
            return HX_ERR_SYS;
        }
        const struct runner_dev *waiting = NULL;
        for (uint32_t i = 0; i < r->n_devs; i++) {
            bool on = r->devs[i].status.online;
            bool h = runner_status_of(r, i + 1) == 1;
            online += on;
            heard += h;
            if ((!on || !h) && !waiting)
                waiting = &r->devs[i];
        }
        if (!waiting)
            return 0;
        if (runner_now_ms() >= r->deadline) {
            snprintf(err, cap, "%u of %u devices online, %u announced online, when the scenario's "
                     "timeout ran out (first waiting: %s, %u connect failures)", online, r->n_devs,
                     heard, waiting->id, waiting->stats.connect_failures);
            return HX_ERR_TIMEOUT;
        }
        runner_sleep_ms(RUNNER_POLL_MS);
    }
}

/* The result, the timeline for --keep, and everything freed (r included). */
static void finish_run(struct runner *r, struct hx_runner_result *out)
{
    runner_teardown(r);
    out->passed = !r->failed;
    out->duration_ms = runner_now_ms() - r->t_start;
    out->seed = r->seed;
    out->steps_run = r->steps_run;
    out->expectations_failed = r->exp_failed;
    {
        char line[128];
        snprintf(line, sizeof line, "  [%8.3fs] %s", (double)out->duration_ms / 1000.0,
                 out->passed ? "passed" : "FAILED");
        tl_append(r, line);
    }
    out->failure = r->failure ? r->failure : strdup("");
    out->timeline = r->timeline ? r->timeline : strdup("");
    if (r->opts.keep_dir) {
        char path[RUNNER_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/timeline.txt", r->dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(out->timeline, f);
            fclose(f);
        }
    }
    runner_remove_dir(r);
    runner_ids_free(r);
    free(r->status_last);
    free(r->ev);
    runner_command_free(r);
    free(r->devs);
    free(r->users);
    pthread_mutex_destroy(&r->wlock);
    pthread_mutex_destroy(&r->devlog_lock);
    free(r);
}

int hx_runner_run(const struct scn_scenario *s, const struct hx_runner_opts *opts,
                  struct hx_runner_result *out)
{
    memset(out, 0, sizeof *out);
    struct runner *r = calloc(1, sizeof *r);
    if (!r) {
        out->failure = strdup("out of memory");
        out->timeline = strdup("");
        return HX_ERR_NOMEM;
    }
    int rc = 0;
    char err[1024] = "";
    r->s = s;
    if (opts)
        r->opts = *opts;
    r->seed = r->opts.seed_set ? r->opts.seed : s->seed;
    r->rng = r->seed;
    r->t_start = runner_now_ms();
    r->deadline = r->t_start + s->timeout_ms;
    r->run_tag = runner_mix((uint64_t)time(NULL) ^ (uint64_t)r->t_start, (uint64_t)getpid());
    pthread_mutex_init(&r->wlock, NULL);
    pthread_mutex_init(&r->devlog_lock, NULL);

    if ((rc = runner_setup_work(r, err, sizeof err)) != 0 ||
        (rc = runner_setup_harness(r, err, sizeof err)) != 0)
        goto fail;
    char info[256];
    snprintf(info, sizeof info, "broker %s, %u device%s, seed %llu", r->broker_uri,
             r->n_devs, r->n_devs == 1 ? "" : "s", (unsigned long long)r->seed);
    runner_note(r, "ok", NULL, "set up", info);
    if ((rc = wait_time_zero(r, err, sizeof err)) != 0)
        goto fail;
    r->t_zero = runner_now_ms();
    snprintf(info, sizeof info, "every device online and subscribed after %.3fs",
             (double)(r->t_zero - r->t_start) / 1000.0);
    runner_note(r, "ok", NULL, "time zero", info);
    if ((rc = runner_load_start(r)) != 0) {
        snprintf(err, sizeof err, "the backend load did not start");
        goto fail;
    }
    run_steps(r);
    if (r->failed)
        note_figures(r);
    goto done;

fail:
    runner_fail(r, NULL, "set-up", err);
done:
    finish_run(r, out);
    return rc;
}

void hx_runner_result_free(struct hx_runner_result *r)
{
    if (!r)
        return;
    free(r->failure);
    free(r->timeline);
    r->failure = NULL;
    r->timeline = NULL;
}
