/*
 * runner_expect.c - the scenario's expectations: evaluating a condition once, or polling it
 * within its time (runner_expect_run).
 *
 * A condition reads the ledger (hx_backend_report after hx_backend_sync), the devices'
 * figures (copied on their owning threads: runner_refresh), the watcher's status events
 * (Wills, retained status), the command replies (runner_command.c), or the ledger file
 * itself (registration order). What it observed is written out for the timeline, whether
 * it held or not.
 */
#include "runner_internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ devices' figures */

static int64_t counter_value(const struct runner_dev *d, enum scn_counter c, enum scn_reject why)
{
    const struct fw_stats *s = &d->stats;
    switch (c) {
    case SCN_CTR_ITEMS_RECEIVED: return s->items_received;
    case SCN_CTR_ITEMS_QUEUED: return s->items_queued;
    case SCN_CTR_DUPLICATES_SUPPRESSED: return s->duplicates_suppressed;
    case SCN_CTR_QUEUE_FULL: return s->queue_full;
    case SCN_CTR_REGISTRATIONS_CONFIRMED: return s->registrations_confirmed;
    case SCN_CTR_REGISTRATIONS_SENT: return s->registrations_sent;
    case SCN_CTR_REGISTRATIONS_ACKED: return s->registrations_acked;
    case SCN_CTR_REGISTRATIONS_RESENT: return s->registrations_resent;
    case SCN_CTR_OUTBOX_FULL: return s->outbox_full;
    case SCN_CTR_CANCELS: return s->cancels;
    case SCN_CTR_WRONG_TAGS: return s->wrong_tags;
    case SCN_CTR_REJECTS_TOTAL: return s->rejects_total;
    case SCN_CTR_REJECTS: return (unsigned)why < FW_REJECT_COUNT ? s->rejects[why] : 0;
    case SCN_CTR_INVENTORY_QUERIES: return s->inventory_queries;
    case SCN_CTR_INVENTORY_ANSWERS: return s->inventory_answers;
    case SCN_CTR_INVENTORY_TIMEOUTS: return s->inventory_timeouts;
    case SCN_CTR_CONNECTS: return s->connects;
    case SCN_CTR_SESSIONS_PRESENT: return s->sessions_present;
    case SCN_CTR_CONNECT_FAILURES: return s->connect_failures;
    case SCN_CTR_CONNECTION_LOSSES: return s->connection_losses;
    case SCN_CTR_PUBLISH_ERRORS: return s->publish_errors;
    case SCN_CTR_STORAGE_ERRORS: return s->storage_errors;
    case SCN_CTR_PUBLISHES_REFUSED: return s->publishes_refused;
    case SCN_CTR_SUBSCRIPTIONS_REFUSED: return s->subscriptions_refused;
    case SCN_CTR_COMMANDS_RECEIVED: return s->commands_received;
    case SCN_CTR_COMMANDS_OK: return s->commands_ok;
    case SCN_CTR_COMMANDS_REFUSED: return s->commands_refused;
    case SCN_CTR_COMMANDS_DUPLICATE: return s->commands_duplicate;
    case SCN_CTR_ITEMS_CLEARED: return s->items_cleared;
    case SCN_CTR_LOCKED_REFUSALS: return s->locked_refusals;
    case SCN_CTR_REBOOTS: return s->reboots;
    case SCN_CTR_BOOTS: return s->boots;
    case SCN_CTR_RECONNECTS: return s->connects > 0 ? (int64_t)s->connects - 1 : 0;
    case SCN_CTR_ONLINE: return d->status.online;
    case SCN_CTR_SESSION_PRESENT: return d->status.session_present;
    case SCN_CTR_PENDING: return d->status.pending;
    case SCN_CTR_OUTBOX: return d->status.outbox;
    case SCN_CTR_OUTBOX_IN_FLIGHT: return d->status.outbox_in_flight;
    case SCN_CTR_SCREEN: return (int64_t)d->status.screen;
    case SCN_CTR_BOOT_COUNT: return d->status.boot_count;
    case SCN_CTR_LOCKED: return d->status.locked;
    case SCN_CTR_COUNT: break;
    }
    return 0;
}

static void counter_label(const struct scn_expect *e, char *buf, size_t cap)
{
    if (e->counter == SCN_CTR_REJECTS)
        snprintf(buf, cap, "rejects %s", scn_reject_name(e->reason));
    else
        snprintf(buf, cap, "%s", scn_counter_name(e->counter));
}

static void value_text(const struct scn_expect *e, int64_t v, char *buf, size_t cap)
{
    if (e->kind == SCN_EXP_COUNTER && e->counter == SCN_CTR_SCREEN && !e->sum)
        snprintf(buf, cap, "%s", (uint64_t)v < SCN_SCREEN_COUNT ? scn_screen_name((enum scn_screen)v) : "?");
    else if (e->kind == SCN_EXP_COUNTER && scn_counter_is_bool(e->counter) && !e->sum)
        snprintf(buf, cap, "%s", v ? "true" : "false");
    else if (e->kind == SCN_EXP_LEDGER && scn_ledger_field_is_duration(e->ledger))
        snprintf(buf, cap, "%lldms", (long long)v);
    else
        snprintf(buf, cap, "%lld", (long long)v);
}

/* ================================================================ ledger */

static int64_t ledger_value(const struct hx_ledger_report *rep, enum scn_ledger_field f)
{
    switch (f) {
    case SCN_LEDGER_PUBLISHED: return (int64_t)rep->published;
    case SCN_LEDGER_REGISTERED: return (int64_t)rep->registered;
    case SCN_LEDGER_REGISTERED_ONCE: return (int64_t)rep->registered_once;
    case SCN_LEDGER_REGISTERED_TWICE: return (int64_t)rep->registered_twice;
    case SCN_LEDGER_LOST: return (int64_t)rep->lost;
    case SCN_LEDGER_DUPLICATE_DELIVERIES: return (int64_t)rep->duplicate_deliveries;
    case SCN_LEDGER_MALFORMED: return (int64_t)rep->malformed;
    case SCN_LEDGER_LATENCY_P50: return (int64_t)(rep->latency_p50_ms + 0.5);
    case SCN_LEDGER_LATENCY_P90: return (int64_t)(rep->latency_p90_ms + 0.5);
    case SCN_LEDGER_LATENCY_P99: return (int64_t)(rep->latency_p99_ms + 0.5);
    case SCN_LEDGER_LATENCY_MAX: return (int64_t)(rep->latency_max_ms + 0.5);
    case SCN_LEDGER_UNKNOWN_ITEMS: return (int64_t)rep->unknown_items;
    }
    return 0;
}

/* Do device num's registrations stand in the ledger in the order of their seq? The tags
   table keeps rows in arrival order (id); only the first copy of a key is stored. */
static bool ledger_in_order(struct runner *r, uint32_t num, char *obs, size_t cap)
{
    sqlite3 *db = NULL;
    bool ok = false;
    if (sqlite3_open_v2(r->ledger_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(obs, cap, "cannot open the ledger %s: %s", r->ledger_path, sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM tags WHERE device_id = ?1 ORDER BY id", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(obs, cap, "ledger query failed: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(st, 1, r->devs[num - 1].id, -1, SQLITE_STATIC);
    int64_t prev = -1, n = 0;
    char seqs[256] = "";
    size_t sl = 0;
    ok = true;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        if (sl < sizeof seqs - 16)
            sl += (size_t)snprintf(seqs + sl, sizeof seqs - sl, "%s%lld", n ? "," : "", (long long)seq);
        if (seq <= prev)
            ok = false;
        prev = seq;
        n++;
    }
    sqlite3_finalize(st);
    snprintf(obs, cap, "%s: %lld registrations, seq %s%s", r->devs[num - 1].id, (long long)n,
             n ? seqs : "-", ok ? "" : " (out of order)");
out:
    sqlite3_close(db);
    return ok;
}


/* ================================================================ conditions */

static bool will_seen(struct runner *r, uint32_t num, int64_t since_rel)
{
    bool seen = false;
    pthread_mutex_lock(&r->wlock);
    for (size_t i = r->n_ev; i-- > 0;) {
        const struct runner_status_event *e = &r->ev[i];
        if (e->t_ms < since_rel)
            break;
        if (e->dev == num && e->will) {
            seen = true;
            break;
        }
    }
    pthread_mutex_unlock(&r->wlock);
    return seen;
}

int runner_status_of(struct runner *r, uint32_t num)
{
    pthread_mutex_lock(&r->wlock);
    int v = r->status_last[num - 1];
    pthread_mutex_unlock(&r->wlock);
    return v;
}

/* A counter over the selected devices: every one (or the sum) compares true. */
static bool counter_eval(struct runner *r, const struct scn_expect *e, const struct runner_sel *sel,
                         char *obs, size_t cap)
{
    char a[64], b[64], label[64];
    if (runner_refresh(r) != 0) {
        snprintf(obs, cap, "could not read the devices' figures");
        return false;
    }
    counter_label(e, label, sizeof label);
    value_text(e, e->value, b, sizeof b);
    if (e->sum) {
        int64_t sum = 0;
        for (size_t i = 0; i < sel->n; i++)
            sum += counter_value(&r->devs[sel->num[i] - 1], e->counter, e->reason);
        snprintf(obs, cap, "sum %s = %lld over %zu devices, expected %s %s", label,
                 (long long)sum, sel->n, scn_cmp_name(e->cmp), b);
        return scn_cmp_holds(e->cmp, sum, e->value);
    }
    size_t bad = 0;
    const struct runner_dev *first_bad = NULL;
    int64_t first_v = 0, min = INT64_MAX, max = INT64_MIN;
    for (size_t i = 0; i < sel->n; i++) {
        const struct runner_dev *d = &r->devs[sel->num[i] - 1];
        int64_t v = counter_value(d, e->counter, e->reason);
        if (v < min)
            min = v;
        if (v > max)
            max = v;
        if (!scn_cmp_holds(e->cmp, v, e->value)) {
            if (!bad++) {
                first_bad = d;
                first_v = v;
            }
        }
    }
    if (bad) {
        value_text(e, first_v, a, sizeof a);
        snprintf(obs, cap, "%s = %s on %s, expected %s %s (%zu of %zu devices fail)", label, a,
                 first_bad->id, scn_cmp_name(e->cmp), b, bad, sel->n);
        return false;
    }
    value_text(e, min, a, sizeof a);
    char c[64];
    value_text(e, max, c, sizeof c);
    if (sel->n == 1)
        snprintf(obs, cap, "%s = %s on %s", label, a, r->devs[sel->num[0] - 1].id);
    else if (min == max)
        snprintf(obs, cap, "%s = %s on all %zu devices", label, a, sel->n);
    else
        snprintf(obs, cap, "%s %s..%s over %zu devices", label, a, c, sel->n);
    return true;
}

/*
 * Evaluate an expectation once. Returns true when it holds; obs describes what was
 * observed (for the timeline), always.
 */
static bool cond_eval(struct runner *r, const struct scn_expect *e, const struct runner_sel *sel,
                      char *obs, size_t cap)
{
    char a[64], b[64];
    int64_t since_rel = r->since - r->t_start;
    switch (e->kind) {
    case SCN_EXP_LEDGER: {
        hx_backend_sync(r->backend, 2000);
        struct hx_ledger_report rep;
        hx_backend_report(r->backend, &rep);
        int64_t v = ledger_value(&rep, e->ledger);
        value_text(e, v, a, sizeof a);
        value_text(e, e->value, b, sizeof b);
        bool holds = scn_cmp_holds(e->cmp, v, e->value);
        if (holds)
            snprintf(obs, cap, "ledger %s = %s", scn_ledger_field_name(e->ledger), a);
        else /* the whole picture helps to read a failure */
            snprintf(obs, cap, "ledger %s = %s, expected %s %s (published %llu, registered %llu, "
                     "once %llu, twice %llu, lost %llu, duplicate deliveries %llu, malformed %llu)",
                     scn_ledger_field_name(e->ledger), a, scn_cmp_name(e->cmp), b,
                     (unsigned long long)rep.published, (unsigned long long)rep.registered,
                     (unsigned long long)rep.registered_once,
                     (unsigned long long)rep.registered_twice, (unsigned long long)rep.lost,
                     (unsigned long long)rep.duplicate_deliveries,
                     (unsigned long long)rep.malformed);
        return holds;
    }
    case SCN_EXP_COUNTER:
        return counter_eval(r, e, sel, obs, cap);
    case SCN_EXP_WILL: {
        size_t missing = 0;
        const char *first = NULL;
        for (size_t i = 0; i < sel->n; i++)
            if (!will_seen(r, sel->num[i], since_rel) && !missing++)
                first = r->devs[sel->num[i] - 1].id;
        if (missing) {
            snprintf(obs, cap, "no Will from %s since %.3fs (%zu of %zu devices without one)",
                     first, (double)since_rel / 1000.0, missing, sel->n);
            return false;
        }
        snprintf(obs, cap, "Will (retained offline) published for %zu device%s", sel->n,
                 sel->n == 1 ? "" : "s");
        return true;
    }
    case SCN_EXP_NO_WILL: {
        size_t seen = 0;
        const char *first = NULL;
        for (size_t i = 0; i < sel->n; i++)
            if (will_seen(r, sel->num[i], since_rel) && !seen++)
                first = r->devs[sel->num[i] - 1].id;
        if (seen) {
            snprintf(obs, cap, "the broker published the Will of %s since %.3fs (%zu devices)",
                     first, (double)since_rel / 1000.0, seen);
            return false;
        }
        snprintf(obs, cap, "no Will from %zu device%s since %.3fs", sel->n, sel->n == 1 ? "" : "s",
                 (double)since_rel / 1000.0);
        return true;
    }
    case SCN_EXP_RETAINED: {
        size_t bad = 0;
        const char *first = NULL;
        int first_v = -1;
        for (size_t i = 0; i < sel->n; i++) {
            int v = runner_status_of(r, sel->num[i]);
            if (v != (e->online ? 1 : 0) && !bad++) {
                first = r->devs[sel->num[i] - 1].id;
                first_v = v;
            }
        }
        if (bad) {
            snprintf(obs, cap, "retained status of %s is %s, expected %s (%zu of %zu devices)", first,
                     first_v < 0 ? "(none)" : first_v ? "online" : "offline",
                     e->online ? "online" : "offline", bad, sel->n);
            return false;
        }
        snprintf(obs, cap, "retained status %s on %zu device%s", e->online ? "online" : "offline",
                 sel->n, sel->n == 1 ? "" : "s");
        return true;
    }
    case SCN_EXP_REPLIES:
    case SCN_EXP_FORGED:
        return runner_command_eval(r, e, sel->num, sel->n, obs, cap);
    case SCN_EXP_ORDER: {
        hx_backend_sync(r->backend, 2000);
        for (size_t i = 0; i < sel->n; i++)
            if (!ledger_in_order(r, sel->num[i], obs, cap))
                return false;
        if (sel->n != 1)
            snprintf(obs, cap, "registrations of %zu devices in seq order", sel->n);
        return true;
    }
    }
    snprintf(obs, cap, "unknown expectation");
    return false;
}

/* Run an expectation step: once, or polled within its time. Returns true when it held. */
bool runner_expect_run(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                       char *obs, size_t cap)
{
    const struct scn_expect *e = &st->u.expect;
    if (!e->has_within)
        return cond_eval(r, e, sel, obs, cap);
    int64_t start = runner_now_ms();
    int64_t startup_ms = r->t_zero - r->t_start;
    int64_t window = e->within.resolved_ms + e->within.startup_milli * startup_ms / 1000;
    int64_t end = start + (window > 0 ? window : 0);
    bool capped = end > r->deadline;
    if (capped)
        end = r->deadline;
    if (e->kind == SCN_EXP_NO_WILL) {
        /* Watch for the whole time: fail as soon as a Will shows. */
        for (;;) {
            if (!cond_eval(r, e, sel, obs, cap))
                return false;
            if (runner_now_ms() >= end)
                break;
            runner_sleep_ms(RUNNER_POLL_MS);
        }
        if (capped) {
            snprintf(obs + strlen(obs), cap - strlen(obs), " (watch cut short by the scenario timeout)");
            return false;
        }
        return true;
    }
    for (;;) {
        if (cond_eval(r, e, sel, obs, cap)) {
            size_t l = strlen(obs);
            snprintf(obs + l, cap - l, " after %.3fs", (double)(runner_now_ms() - start) / 1000.0);
            return true;
        }
        if (runner_now_ms() >= end)
            break;
        runner_sleep_ms(RUNNER_POLL_MS);
    }
    size_t l = strlen(obs);
    snprintf(obs + l, cap - l, "; still not so after %.3fs%s", (double)(runner_now_ms() - start) / 1000.0,
             capped ? " (the scenario timeout came first)" : "");
    if (e->within.startup_milli) {
        l = strlen(obs);
        snprintf(obs + l, cap - l, " (window %.3fs with startup %.3fs)", (double)window / 1000.0,
                 (double)startup_ms / 1000.0);
    }
    return false;
}
