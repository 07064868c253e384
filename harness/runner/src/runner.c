/*
 * runner.c - runs one scenario: set-up, time zero, the steps on their timeline, the
 * expectations, tear-down, and the timeline report (hx/runner.h).
 *
 * Set-up order: work folder, broker, watcher, backend, proxy hub + one proxy per proxied
 * device, loops, devices (powered on), then "time zero" once every device is online and its
 * retained `online` reached the watcher. The device publishes `online` only once the broker
 * has granted every subscription by its SUBACK, so its `online` arriving proves its
 * subscriptions are in place on any broker: an item published after time zero cannot miss
 * a device. The backend load starts at time zero. On a broker the runner did not start
 * (hx_runner_opts.broker_uri) it first clears what an earlier run left there for the
 * scenario's device ids (runner_broker.c).
 *
 * Steps run in file order on this thread. Actions go where they belong: faults to the
 * device's proxy, broker actions to hx_broker, operator / device actions onto the device's
 * owning thread (sim_device_post_* / sim_device_stop / start), backend actions to
 * hx_backend. Expectations read the ledger (hx_backend_report after hx_backend_sync), the
 * devices' figures (copied on their owning threads: runner_refresh), the watcher's status
 * events, or the ledger file (registration order). Every step leaves one timeline entry.
 */
#include "runner_internal.h"
#include "sim/clock.h"

#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often conditions are polled while waiting. */
#define POLL_MS 50
/* Devices per event loop, and the most loops: a bounded number of threads. */
#define DEVS_PER_LOOP 250
#define MAX_LOOPS 4

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

static int mkdir_p(const char *path)
{
    char tmp[RUNNER_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return;
    FILE *out = fopen(to, "wb");
    if (out) {
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(out);
    }
    fclose(in);
}

/* ================================================================ devices' figures */

static void refresh_on_owner(void *arg)
{
    struct runner_loop *l = arg;
    for (size_t i = 0; i < l->n_devs; i++) {
        struct runner_dev *d = l->devs[i];
        struct fw_device *fw = sim_device_fw(d->dev);
        d->stats = *fw_device_stats(fw);
        fw_device_status(fw, &d->status);
        d->status.head_item_name = NULL; /* points into the device: not ours to keep */
        if (!atomic_load(&d->powered)) {
            /* After a power cut the firmware was not told: its RAM still says online. */
            d->status.online = false;
            d->status.connected = false;
        }
    }
}

int runner_refresh(struct runner *r)
{
    for (size_t i = 0; i < r->n_loops; i++) {
        int rc = sim_loop_call(r->loops[i].loop, refresh_on_owner, &r->loops[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

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

/* Selected devices of a step: resolved once, when the step runs. */
struct runner_sel {
    uint32_t *num;
    size_t n;
};

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

static int status_of(struct runner *r, uint32_t num)
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
            int v = status_of(r, sel->num[i]);
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
static bool run_expect(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
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
            runner_sleep_ms(POLL_MS);
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
        runner_sleep_ms(POLL_MS);
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

/* ================================================================ actions */

static int proxy_dirs(enum scn_direction d, enum hx_proxy_dir *out)
{
    if (d == SCN_DIR_TO_BROKER) {
        out[0] = HX_PROXY_TO_BROKER;
        return 1;
    }
    if (d == SCN_DIR_TO_DEVICE) {
        out[0] = HX_PROXY_TO_DEVICE;
        return 1;
    }
    out[0] = HX_PROXY_TO_BROKER;
    out[1] = HX_PROXY_TO_DEVICE;
    return 2;
}

static int fault_one(const struct scn_step *st, struct runner_dev *d, char *err, size_t cap)
{
    struct hx_proxy *p = d->proxy;
    enum hx_proxy_dir dirs[2];
    int nd, rc = 0;
    if (!p) {
        snprintf(err, cap, "%s is not behind a fault proxy (its group needs 'link proxy')", d->id);
        return HX_ERR_INVAL;
    }
    switch (st->action) {
    case SCN_ACT_DROP:
        nd = proxy_dirs(st->u.fault.dir, dirs);
        for (int i = 0; i < nd && rc == 0; i++)
            rc = hx_proxy_drop(p, dirs[i], (int)st->u.fault.packet,
                               st->u.fault.count ? (int)st->u.fault.count : -1);
        break;
    case SCN_ACT_DELAY:
        nd = proxy_dirs(st->u.fault.dir, dirs);
        for (int i = 0; i < nd && rc == 0; i++)
            rc = hx_proxy_delay(p, dirs[i], (int)st->u.fault.packet, (uint32_t)st->u.fault.delay_ms);
        break;
    case SCN_ACT_DUPLICATE:
        nd = proxy_dirs(st->u.fault.dir, dirs);
        for (int i = 0; i < nd && rc == 0; i++)
            rc = hx_proxy_duplicate(p, dirs[i], (int)st->u.fault.count);
        break;
    case SCN_ACT_CUT:
        rc = hx_proxy_cut(p, st->u.rst ? HX_PROXY_CUT_RST : HX_PROXY_CUT_FIN);
        rc = rc < 0 ? rc : 0;
        break;
    case SCN_ACT_BLACKHOLE:
    case SCN_ACT_NETWORK_DOWN: /* the network is gone: nothing passes, no FIN, no RST */
        rc = hx_proxy_blackhole(p, true);
        break;
    case SCN_ACT_NETWORK_UP:
        rc = hx_proxy_blackhole(p, false);
        break;
    case SCN_ACT_THROTTLE: {
        uint32_t bps = st->u.bytes_per_s > UINT32_MAX ? UINT32_MAX : (uint32_t)st->u.bytes_per_s;
        rc = hx_proxy_throttle(p, HX_PROXY_TO_BROKER, bps);
        if (rc == 0)
            rc = hx_proxy_throttle(p, HX_PROXY_TO_DEVICE, bps);
        break;
    }
    case SCN_ACT_REFUSE:
        rc = hx_proxy_down(p, HX_PROXY_DOWN_RESET);
        break;
    case SCN_ACT_HEAL:
        rc = hx_proxy_heal(p);
        break;
    case SCN_ACT_INJECT:
        rc = hx_proxy_inject(p, (enum hx_proxy_malformed)st->u.frame);
        if (rc == 0) {
            snprintf(err, cap, "%s has no open link to inject into", d->id);
            return HX_ERR_INVAL;
        }
        rc = rc < 0 ? rc : 0;
        break;
    default:
        break;
    }
    if (rc != 0)
        snprintf(err, cap, "proxy of %s: %s", d->id, hx_proxy_last_error());
    return rc;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The broker's log from byte offset on (malloc'ed, NUL-terminated), or NULL. */
static char *log_tail(const char *path, long offset)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long end = 0;
    if (fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) >= offset && fseek(f, offset, SEEK_SET) == 0) {
        buf = malloc((size_t)(end - offset) + 1);
        if (buf) {
            size_t n = fread(buf, 1, (size_t)(end - offset), f);
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/*
 * Clean power-off of the selected devices, finished only when the broker has seen each one
 * go. The firmware publishes "offline" and asks for a DISCONNECT, but Paho sends it only
 * after in-flight messages completed (up to 1 s; sim/transport.h): until then the broker
 * still delivers to the old connection, whose QoS 1 messages Paho acknowledges and the
 * stopped firmware never sees. A scenario that publishes right after `power off` means
 * "while it is off", so the step waits for mosquitto's "Client <id> disconnected." (a
 * notice, always logged) of every device that was online; on a broker the runner did not
 * start (no log to read), for the device's client to have sent its DISCONNECT. All devices
 * are stopped first, then waited for together.
 */
static int power_off_set(struct runner *r, const struct runner_sel *sel, char *info, size_t cap)
{
    const char *log = r->broker && hx_broker_running(r->broker) ? hx_broker_log_path(r->broker)
                                                                : NULL;
    long offset = log ? file_size(log) : 0;
    if (runner_refresh(r) != 0)
        return SIM_ERR_NOMEM;
    bool *wait = calloc(sel->n ? sel->n : 1, sizeof *wait);
    if (!wait)
        return SIM_ERR_NOMEM;
    size_t waiting = 0;
    int rc = 0;
    for (size_t i = 0; i < sel->n && rc == 0; i++) {
        struct runner_dev *d = &r->devs[sel->num[i] - 1];
        bool was_online = d->status.online;
        atomic_store(&d->clean_off, true); /* before: its own "offline" is not a Will */
        atomic_store(&d->powered, false);
        rc = sim_device_stop(d->dev);
        if (rc == SIM_ERR_STATE)
            rc = 0; /* already off */
        else if (rc == 0 && was_online) {
            wait[i] = true;
            waiting++;
        }
    }
    int64_t end = runner_now_ms() + 3000 + 5 * (int64_t)waiting;
    while (rc == 0 && waiting > 0) {
        char *tail = log ? log_tail(log, offset) : NULL;
        for (size_t i = 0; i < sel->n; i++) {
            struct runner_dev *d = &r->devs[sel->num[i] - 1];
            char needle[SCN_NAME_MAX + 32];
            snprintf(needle, sizeof needle, "Client %s disconnected", d->id);
            struct sim_device_snapshot snap;
            bool gone = log ? tail && strstr(tail, needle)
                            : sim_device_snapshot(d->dev, &snap) == 0 && !snap.disconnecting;
            if (wait[i] && gone) {
                wait[i] = false;
                waiting--;
            }
        }
        free(tail);
        if (waiting == 0)
            break;
        if (runner_now_ms() >= end) {
            snprintf(info, cap, "%s the disconnect of %zu device%s within %.1f s",
                     log ? "the broker did not log" : "the client did not finish", waiting,
                     waiting == 1 ? "" : "s", (double)(3000 + 5 * (int64_t)waiting) / 1000.0);
            break;
        }
        runner_sleep_ms(20);
    }
    free(wait);
    return rc;
}

static int power_on(struct runner *r, struct runner_dev *d)
{
    (void)r;
    int rc = sim_device_start(d->dev);
    if (rc == 0 || rc == SIM_ERR_STATE)
        atomic_store(&d->powered, true);
    return rc == SIM_ERR_STATE ? 0 : rc;
}

/* publish N items | malformed: to each selected device, or as the layout goes. */
static int publish_step(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                        char *err, size_t cap)
{
    int rc = 0;
    uint32_t n = st->u.publish.count;
    if (sel->n == 0) {
        /* As the layout goes: round-robin over per-device devices, else the shared topic. */
        for (uint32_t k = 0; k < n && rc == 0; k++) {
            uint32_t num = (uint32_t)(k % r->n_devs) + 1;
            if (r->devs[num - 1].group->layout != SCN_LAYOUT_PER_DEVICE)
                num = 0;
            rc = st->action == SCN_ACT_PUBLISH_ITEMS
                     ? runner_publish_item(r, num)
                     : runner_publish_malformed(r, num, st->u.publish.kind);
        }
    } else {
        /* N to each selected device. */
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            for (uint32_t k = 0; k < n && rc == 0; k++)
                rc = st->action == SCN_ACT_PUBLISH_ITEMS
                         ? runner_publish_item(r, sel->num[i])
                         : runner_publish_malformed(r, sel->num[i], st->u.publish.kind);
    }
    if (rc != 0)
        snprintf(err, cap, "the backend could not publish: %s", hx_backend_last_error());
    return rc;
}

/* scan tag | random tag | wrong tag on each selected device. */
static int scan_step(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                     char *info, size_t cap)
{
    int rc = 0;
    for (size_t i = 0; i < sel->n && rc == 0; i++) {
        uint8_t uid[SCN_TAG_MAX];
        size_t len;
        if (st->action == SCN_ACT_SCAN_TAG) {
            len = st->u.tag.len;
            memcpy(uid, st->u.tag.uid, len);
        } else if (st->action == SCN_ACT_SCAN_RANDOM) {
            uint64_t a = scn_rng_next(&r->rng), b = scn_rng_next(&r->rng);
            len = 10;
            uid[0] = 0x04;
            memcpy(uid + 1, &a, 8);
            uid[9] = (uint8_t)b;
        } else {
            len = 3;
            uid[0] = 0x04;
            uid[1] = 0xBA;
            uid[2] = 0xD0;
        }
        if (st->action == SCN_ACT_SCAN_RANDOM && sel->n == 1) {
            char hex[32];
            fw_tag_to_hex(uid, len, hex, sizeof hex);
            snprintf(info, cap, "tag %s", hex);
        }
        rc = sim_device_post_tag(r->devs[sel->num[i] - 1].dev, uid, len);
    }
    return rc;
}

/*
 * A power cut: the connection drops without DISCONNECT (the broker publishes the Will);
 * the firmware is not told, and comes back from flash at the next power on. Behind a
 * proxy the link is reset first, because Paho's MQTTAsync_destroy still writes a
 * DISCONNECT on an idle socket (sim/mqtt.h), which a board losing power never sends; on a
 * direct link with Paho the broker usually gets that DISCONNECT and publishes no Will.
 */
static int power_cut(struct runner_dev *d)
{
    atomic_store(&d->powered, false); /* clean_off stays clear: its "offline" is the Will */
    if (d->proxy)
        hx_proxy_cut(d->proxy, HX_PROXY_CUT_RST);
    int rc = sim_device_power_cut(d->dev);
    return rc == SIM_ERR_STATE ? 0 : rc;
}

/* Carry out an action step. Returns 0, or negative with err filled in. */
static int run_action(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                      char *info, char *err, size_t cap)
{
    int rc = 0;
    switch (st->action) {
    case SCN_ACT_NOTHING:
    case SCN_ACT_EXPECT:
        return 0;
    case SCN_ACT_DROP: case SCN_ACT_DELAY: case SCN_ACT_DUPLICATE: case SCN_ACT_CUT:
    case SCN_ACT_BLACKHOLE: case SCN_ACT_THROTTLE: case SCN_ACT_REFUSE: case SCN_ACT_HEAL:
    case SCN_ACT_INJECT: case SCN_ACT_NETWORK_DOWN: case SCN_ACT_NETWORK_UP:
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = fault_one(st, &r->devs[sel->num[i] - 1], err, cap);
        return rc;
    case SCN_ACT_BROKER_STOP:
    case SCN_ACT_BROKER_KILL:
    case SCN_ACT_BROKER_RESTART:
        if (!r->broker)
            return runner_broker_command(r, st->action, err, cap);
        rc = st->action == SCN_ACT_BROKER_STOP   ? hx_broker_stop(r->broker)
             : st->action == SCN_ACT_BROKER_KILL ? hx_broker_kill(r->broker)
                                                 : hx_broker_restart(r->broker);
        break;
    case SCN_ACT_PUBLISH_ITEMS:
    case SCN_ACT_PUBLISH_MALFORMED:
        return publish_step(r, st, sel, err, cap);
    case SCN_ACT_SCAN_TAG: case SCN_ACT_SCAN_RANDOM: case SCN_ACT_SCAN_WRONG:
        rc = scan_step(r, st, sel, info, cap);
        break;
    case SCN_ACT_CONFIRM: case SCN_ACT_CANCEL: case SCN_ACT_MODE: {
        enum fw_button b = st->action == SCN_ACT_CONFIRM  ? FW_BUTTON_CONFIRM
                           : st->action == SCN_ACT_CANCEL ? FW_BUTTON_CANCEL
                                                          : FW_BUTTON_MODE;
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = sim_device_post_button(r->devs[sel->num[i] - 1].dev, b);
        break;
    }
    case SCN_ACT_OPERATOR_PAUSE:
    case SCN_ACT_OPERATOR_RESUME:
        for (size_t i = 0; i < sel->n; i++)
            atomic_store(&r->devs[sel->num[i] - 1].op_paused, st->action == SCN_ACT_OPERATOR_PAUSE);
        return 0;
    case SCN_ACT_POWER_OFF:
        rc = power_off_set(r, sel, info, cap);
        break;
    case SCN_ACT_POWER_ON:
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = power_on(r, &r->devs[sel->num[i] - 1]);
        break;
    case SCN_ACT_POWER_CUT:
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = power_cut(&r->devs[sel->num[i] - 1]);
        break;
    case SCN_ACT_COMMAND:
    case SCN_ACT_FORGE_COMMAND:
        return runner_command_step(r, st, sel->num, sel->n, info, err, cap);
    case SCN_ACT_RESTART:
        rc = power_off_set(r, sel, info, cap);
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = power_on(r, &r->devs[sel->num[i] - 1]);
        break;
    }
    if (rc != 0 && !*err) {
        if (st->action == SCN_ACT_BROKER_STOP || st->action == SCN_ACT_BROKER_KILL ||
            st->action == SCN_ACT_BROKER_RESTART)
            snprintf(err, cap, "%s", hx_broker_last_error());
        else
            snprintf(err, cap, "%s", sim_strerror(rc));
    }
    return rc;
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
            bool ok = run_expect(r, st, &sel, obs, sizeof obs);
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
        int rc = run_action(r, st, &sel, info, err, sizeof err);
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

/* ================================================================ set-up */

static void obs_log(void *ctx, struct sim_device *dev, enum fw_log_level level, const char *line)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    struct runner *r = ctx;
    if (!r->devlog)
        return;
    pthread_mutex_lock(&r->devlog_lock);
    fprintf(r->devlog, "%8.3fs [%s] %s %s\n", (double)(runner_now_ms() - r->t_start) / 1000.0,
            sim_device_id(dev), names[level <= FW_LOG_ERROR ? level : 0], line);
    pthread_mutex_unlock(&r->devlog_lock);
}

static void obs_state(void *ctx, struct sim_device *dev, const struct sim_state_change *s)
{
    struct runner *r = ctx;
    if (!r->devlog)
        return;
    pthread_mutex_lock(&r->devlog_lock);
    fprintf(r->devlog, "%8.3fs [%s] STATE %s%s%s\n", (double)(runner_now_ms() - r->t_start) / 1000.0,
            sim_device_id(dev), sim_conn_state_name(s->state), s->words && *s->words ? ": " : "",
            s->words ? s->words : "");
    pthread_mutex_unlock(&r->devlog_lock);
}

#ifndef SCANSIM_MAKE_PKI
#define SCANSIM_MAKE_PKI "ci/make-pki.sh"
#endif

/*
 * tls / mtls brokers: a throw-away PKI in the work folder made by ci/make-pki.sh
 * ($SCANSIM_MAKE_PKI overrides the path): a CA, the broker's certificate, and for mTLS one
 * client certificate per device whose CN is the device id (the script names them
 * scanner-1..N, so mTLS needs the default id prefix), plus the backend's.
 */
static int make_pki(struct runner *r, char *err, size_t cap)
{
    const struct scn_scenario *s = r->s;
    bool mtls = s->broker.variant == SCN_BROKER_MTLS;
    for (size_t g = 0; g < s->n_groups; g++) {
        if (s->groups[g].link == SCN_LINK_PROXY) {
            snprintf(err, cap, "group '%s' has 'link proxy', but the fault proxy reads MQTT and "
                     "cannot see inside TLS: use 'link direct' with broker %s",
                     s->groups[g].name, scn_broker_variant_name(s->broker.variant));
            return HX_ERR_INVAL;
        }
    }
    for (uint32_t i = 0; mtls && i < r->n_devs; i++) {
        char want[32];
        snprintf(want, sizeof want, "scanner-%u", i + 1);
        if (strcmp(r->devs[i].id, want) != 0) {
            snprintf(err, cap, "broker mtls gives devices certificates named scanner-1..N, but device "
                     "%u is '%s': use the default id_prefix in a single group", i + 1, r->devs[i].id);
            return HX_ERR_INVAL;
        }
    }
    const char *script = getenv("SCANSIM_MAKE_PKI");
    if (!script || !*script)
        script = SCANSIM_MAKE_PKI;
    snprintf(r->pki, sizeof r->pki, "%s/pki", r->dir);
    char cmd[3 * RUNNER_PATH_MAX];
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' %u >'%s.log' 2>&1", script, r->pki,
             mtls ? r->n_devs : 1u, r->pki); /* the script wants at least one */
    int rc = -1;
    if (hx_run_shell(cmd, &rc) != HX_OK || rc != 0) {
        snprintf(err, cap, "could not make the test PKI with %s (status %d; see %s.log); set "
                 "SCANSIM_MAKE_PKI to the path of ci/make-pki.sh", script, rc, r->pki);
        return HX_ERR_SYS;
    }
    return 0;
}

/* The broker's address, for the devices, proxies, watcher and backend. */
static int broker_address(struct runner *r, const char *uri, char *err, size_t cap)
{
    const char *hp = strstr(uri, "://");
    hp = hp ? hp + 3 : uri;
    const char *colon = strrchr(hp, ':');
    unsigned port = 0;
    if (!colon || (size_t)(colon - hp) >= sizeof r->broker_host || sscanf(colon + 1, "%u", &port) != 1 ||
        port == 0 || port > 65535) {
        snprintf(err, cap, "broker %s: expected tcp://HOST:PORT", uri);
        return HX_ERR_INVAL;
    }
    snprintf(r->broker_uri, sizeof r->broker_uri, "%s", uri);
    snprintf(r->broker_host, sizeof r->broker_host, "%.*s", (int)(colon - hp), hp);
    r->broker_port = (uint16_t)port;
    return 0;
}

static int setup_broker(struct runner *r, char *err, size_t cap)
{
    const struct scn_broker *sb = &r->s->broker;
    struct hx_broker_opts o = {0};
    if (r->opts.broker_uri) {
        int rc = broker_address(r, r->opts.broker_uri, err, cap);
        return rc != 0 ? rc : runner_broker_wipe(r, err, cap);
    }
    o.kind = sb->kind_written ? (enum hx_broker_kind)sb->kind
                              : (enum hx_broker_kind)r->opts.broker_kind;
    o.persistence = sb->persistence;
    o.autosave_interval_s = (int)sb->autosave_interval;
    o.autosave_on_changes = sb->autosave_on_changes;
    o.max_queued_messages = sb->max_queued_messages;
    o.verbose_log = r->opts.keep_dir != NULL;
    char ca[RUNNER_PATH_MAX + 32], crt[RUNNER_PATH_MAX + 32], key[RUNNER_PATH_MAX + 32];
    if (sb->variant == SCN_BROKER_TLS || sb->variant == SCN_BROKER_MTLS) {
        int rc = make_pki(r, err, cap);
        if (rc != 0)
            return rc;
        snprintf(ca, sizeof ca, "%s/ca.crt", r->pki);
        snprintf(crt, sizeof crt, "%s/server.crt", r->pki);
        snprintf(key, sizeof key, "%s/server.key", r->pki);
        o.cafile = ca;
        o.certfile = crt;
        o.keyfile = key;
        /* mTLS: the certificate's CN is the user name (the device id; "backend" for the
           backend and the watcher). */
        o.require_certificate = sb->variant == SCN_BROKER_MTLS;
        o.use_identity_as_username = sb->variant == SCN_BROKER_MTLS;
    }
    if (sb->variant == SCN_BROKER_PASSWORD || sb->variant == SCN_BROKER_ACL) {
        /* One user per device (its id, a password derived from the seed), plus the harness
           (backend and watcher), which may use every topic. */
        r->users = calloc(r->n_devs + 1, sizeof *r->users);
        if (!r->users)
            return HX_ERR_NOMEM;
        for (uint32_t i = 0; i < r->n_devs; i++) {
            snprintf(r->devs[i].password, sizeof r->devs[i].password, "pw-%016llx",
                     (unsigned long long)runner_mix(r->seed, i + 1));
            r->users[i].username = r->devs[i].id;
            r->users[i].password = r->devs[i].password;
        }
        r->users[r->n_devs].username = "harness";
        r->users[r->n_devs].password = "harness-pw";
        r->n_users = (int)r->n_devs + 1;
        o.users = r->users;
        o.n_users = r->n_users;
        if (sb->variant == SCN_BROKER_ACL) {
            /* Each device only its own per-device topics (reading its commands, never
               sending them) and the shared seed topics; the harness everything. */
            o.acl = HX_ACL_PER_DEVICE_RULES
                    "pattern read item_registration\n"
                    "pattern write item_registered\n"
                    "pattern write inventory/query\n"
                    "user harness\n"
                    "topic readwrite #\n";
        }
    }
    int rc = hx_broker_start(&o, &r->broker);
    if (rc != 0) {
        snprintf(err, cap, "the broker did not start: %s", hx_broker_last_error());
        return rc;
    }
    return broker_address(r, hx_broker_uri(r->broker), err, cap);
}

/* The fault proxy hub (when a group has `link proxy`) and the event loops, started. */
static int setup_loops(struct runner *r, char *err, size_t cap)
{
    const struct scn_scenario *s = r->s;
    bool any_proxy = false;
    for (size_t g = 0; g < s->n_groups; g++)
        any_proxy |= s->groups[g].link == SCN_LINK_PROXY;
    if (any_proxy) {
        char pcap_dir[RUNNER_PATH_MAX];
        struct hx_proxy_hub_opts ho = {0};
        if (r->opts.keep_dir && r->opts.pcap) {
            snprintf(pcap_dir, sizeof pcap_dir, "%s/pcap", r->dir);
            mkdir_p(pcap_dir);
            ho.pcap_dir = pcap_dir;
        }
        int rc = hx_proxy_hub_create(&ho, &r->hub);
        if (rc == 0)
            rc = hx_proxy_hub_start(r->hub);
        if (rc != 0) {
            snprintf(err, cap, "the fault proxy hub did not start: %s", hx_proxy_last_error());
            return rc;
        }
    }

    r->n_loops = (r->n_devs + DEVS_PER_LOOP - 1) / DEVS_PER_LOOP;
    if (r->n_loops > MAX_LOOPS)
        r->n_loops = MAX_LOOPS;
    if (r->n_loops == 0)
        r->n_loops = 1;
    r->loops = calloc(r->n_loops, sizeof *r->loops);
    if (!r->loops)
        return HX_ERR_NOMEM;
    for (size_t i = 0; i < r->n_loops; i++) {
        struct runner_loop *l = &r->loops[i];
        l->r = r;
        l->cap_devs = r->n_devs / r->n_loops + 1;
        l->devs = calloc(l->cap_devs, sizeof *l->devs);
        struct sim_loop_opts lo;
        sim_loop_opts_defaults(&lo);
        lo.tick_ms = r->n_devs > 200 ? 50 : 20;
        char name[32];
        snprintf(name, sizeof name, "scn-loop-%zu", i);
        lo.name = name;
        if (!l->devs || sim_loop_create(&lo, &l->loop) != 0 || sim_loop_start_thread(l->loop) != 0) {
            snprintf(err, cap, "could not start event loop %zu", i);
            return HX_ERR_SYS;
        }
        l->op_target.on_event = runner_operator_event;
        l->op_target.on_tick = runner_operator_tick;
    }

    return 0;
}

/* Every device created on its loop, the operators attached, every device powered on. */
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

static int setup_devices(struct runner *r, char *err, size_t cap)
{
    int rc0 = setup_loops(r, err, cap);
    if (rc0 != 0)
        return rc0;
    r->observer.ctx = r;
    r->observer.on_log = obs_log;
    r->observer.on_state = obs_state;
    char flash[RUNNER_PATH_MAX];
    snprintf(flash, sizeof flash, "%s/flash", r->dir);
    const char *broker_host = r->broker_host;
    for (uint32_t i = 0; i < r->n_devs; i++) {
        struct runner_dev *d = &r->devs[i];
        struct runner_loop *l = &r->loops[i % r->n_loops];
        d->loop = l;
        l->devs[l->n_devs++] = d;
        char uri[128];
        snprintf(uri, sizeof uri, "%s", r->broker_uri);
        if (d->group->link == SCN_LINK_PROXY) {
            int rc = hx_proxy_add(r->hub, broker_host, r->broker_port, 0, &d->proxy);
            if (rc != 0) {
                snprintf(err, cap, "proxy for %s: %s", d->id, hx_proxy_last_error());
                return rc;
            }
            hx_proxy_set_name(d->proxy, d->id);
            snprintf(uri, sizeof uri, "tcp://127.0.0.1:%u", (unsigned)hx_proxy_port(d->proxy));
        }
        struct sim_device_opts o;
        sim_device_opts_defaults(&o, d->id, uri);
        o.fw.layout = d->group->layout == SCN_LAYOUT_PER_DEVICE ? FW_LAYOUT_PER_DEVICE : FW_LAYOUT_SEED;
        o.fw.clean_session = d->group->session == SCN_SESSION_CLEAN;
        o.fw.keepalive_s = (uint16_t)d->group->keepalive_s;
        o.fw.qos = d->group->qos;
        o.fw.seed = (uint32_t)runner_mix(r->seed, 0x5eed0000u + d->num) | 1u; /* jitter */
        o.transport.mqtt_version = d->group->mqtt == SCN_MQTT_5 ? 5 : 3;
        o.transport.connect_timeout_s = 5;
        if (d->password[0]) {
            o.transport.username = d->id;
            o.transport.password = d->password;
        }
        char ca[RUNNER_PATH_MAX + 32], crt[RUNNER_PATH_MAX + 64], key[RUNNER_PATH_MAX + 64];
        if (r->pki[0]) {
            snprintf(ca, sizeof ca, "%s/ca.crt", r->pki);
            o.transport.cafile = ca;
            if (r->s->broker.variant == SCN_BROKER_MTLS) {
                snprintf(crt, sizeof crt, "%s/%s.crt", r->pki, d->id);
                snprintf(key, sizeof key, "%s/%s.key", r->pki, d->id);
                o.transport.certfile = crt;
                o.transport.keyfile = key;
            }
        }
        o.storage = d->group->flash ? SIM_STORAGE_FILE : SIM_STORAGE_NONE;
        o.storage_dir = flash;
        o.display_frames = 0; /* headless: screens are read from fw_device_status */
        o.log_level = r->devlog ? FW_LOG_INFO : FW_LOG_ERROR;
        o.observer = &r->observer;
        o.user = d;
        o.trace_dir = r->opts.trace_dir;
        d->op_rng = runner_mix(r->seed, 0x0be7a70000ull + d->num);
        int rc = sim_device_create(l->loop, &o, &d->dev);
        if (rc != 0) {
            snprintf(err, cap, "device %s could not be created: %s", d->id, sim_strerror(rc));
            return runner_hx_err(rc);
        }
    }
    for (size_t i = 0; i < r->n_loops; i++) {
        if (sim_loop_attach(r->loops[i].loop, &r->loops[i].op_target) != 0)
            return HX_ERR_NOMEM;
        r->loops[i].op_attached = true;
    }
    for (uint32_t i = 0; i < r->n_devs; i++) {
        int rc = power_on(r, &r->devs[i]);
        if (rc != 0) {
            snprintf(err, cap, "device %s did not power on: %s", r->devs[i].id, sim_strerror(rc));
            return runner_hx_err(rc);
        }
    }
    return 0;
}

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
            bool h = status_of(r, i + 1) == 1;
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
        runner_sleep_ms(POLL_MS);
    }
}

/* ================================================================ tear-down */

static void teardown(struct runner *r)
{
    runner_load_stop(r);
    /* Operators first (they tick devices), then the devices (their Paho clients), then
       the loops. */
    for (size_t i = 0; r->loops && i < r->n_loops; i++)
        if (r->loops[i].op_attached) {
            sim_loop_detach(r->loops[i].loop, &r->loops[i].op_target);
            r->loops[i].op_attached = false;
        }
    if (r->devs)
        for (uint32_t i = 0; i < r->n_devs; i++)
            if (r->devs[i].dev) {
                atomic_store(&r->devs[i].clean_off, true);
                sim_device_destroy(r->devs[i].dev);
                r->devs[i].dev = NULL;
            }
    for (size_t i = 0; r->loops && i < r->n_loops; i++) {
        struct runner_loop *l = &r->loops[i];
        if (l->loop) {
            sim_loop_stop(l->loop);
            sim_loop_free(l->loop);
        }
        free(l->devs);
    }
    free(r->loops);
    r->loops = NULL;
    hx_proxy_hub_free(r->hub);
    r->hub = NULL;
    if (r->backend) {
        hx_backend_stop(r->backend);
        hx_backend_free(r->backend);
        r->backend = NULL;
    }
    runner_watch_stop(r);
    if (r->broker) {
        if (r->opts.keep_dir) {
            char to[RUNNER_PATH_MAX + 32], from[RUNNER_PATH_MAX + 32];
            bool mosq = hx_broker_kind(r->broker) == HX_BROKER_MOSQUITTO;
            snprintf(from, sizeof from, "%s/mosquitto.conf", hx_broker_dir(r->broker));
            snprintf(to, sizeof to, "%s/mosquitto.conf", r->dir);
            if (mosq)
                copy_file(from, to);
            snprintf(to, sizeof to, "%s/%s.log", r->dir, mosq ? "mosquitto" : "rabbitmq");
            if (hx_broker_running(r->broker))
                hx_broker_stop(r->broker); /* flush the log */
            copy_file(hx_broker_log_path(r->broker), to);
        }
        hx_broker_free(r->broker);
        r->broker = NULL;
    }
    if (r->opts.keep_dir) {
        char path[RUNNER_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/status.log", r->dir);
        FILE *f = fopen(path, "w");
        if (f) {
            runner_watch_dump(r, f);
            fclose(f);
        }
        snprintf(path, sizeof path, "%s/commands.log", r->dir);
        if (r->n_cmd_ids > 0 && (f = fopen(path, "w")) != NULL) {
            runner_command_dump(r, f);
            fclose(f);
        }
    }
    if (r->devlog) {
        fclose(r->devlog);
        r->devlog = NULL;
    }
}

/* ================================================================ entry point */

struct backend_start {
    struct hx_backend *b;
    int rc;
    char err[512];
};

static void *backend_start_main(void *arg)
{
    struct backend_start *bs = arg;
    bs->rc = hx_backend_start(bs->b);
    if (bs->rc != 0) /* the words are thread-local: copy them here */
        snprintf(bs->err, sizeof bs->err, "%s", hx_backend_last_error());
    return NULL;
}

/* Devices and their ids, and the work folder (the keep dir, or a temporary one). */
static int setup_work(struct runner *r, char *err, size_t cap)
{
    const struct scn_scenario *s = r->s;
    int rc = 0;
    /* Devices and their ids. */
    r->n_devs = s->n_devices;
    r->devs = calloc(r->n_devs ? r->n_devs : 1, sizeof *r->devs);
    r->status_last = malloc(r->n_devs ? r->n_devs : 1);
    if (!r->devs || !r->status_last) {
        rc = HX_ERR_NOMEM;
        snprintf(err, cap, "out of memory for %u devices", r->n_devs);
        return rc;
    }
    memset(r->status_last, -1, r->n_devs);
    for (uint32_t i = 0; i < r->n_devs; i++) {
        struct runner_dev *d = &r->devs[i];
        d->num = i + 1;
        d->group = scn_device_group(s, d->num);
        scn_device_id(s, d->num, d->id, sizeof d->id);
        atomic_init(&d->op_paused, false);
        atomic_init(&d->powered, false);
        atomic_init(&d->clean_off, false);
    }
    if ((rc = runner_ids_index(r)) != 0) {
        snprintf(err, cap, "out of memory");
        return rc;
    }

    /* Work folder: the keep dir, or a temporary one removed at the end. */
    if (r->opts.keep_dir) {
        snprintf(r->dir, sizeof r->dir, "%s", r->opts.keep_dir);
        if (mkdir_p(r->dir) != 0) {
            rc = HX_ERR_SYS;
            snprintf(err, cap, "cannot create %s: %s", r->dir, strerror(errno));
            return rc;
        }
        char path[RUNNER_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/devices.log", r->dir);
        r->devlog = fopen(path, "w");
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(r->dir, sizeof r->dir, "%s/scansim-scn-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(r->dir)) {
            rc = HX_ERR_SYS;
            snprintf(err, cap, "cannot create a temporary folder: %s", strerror(errno));
            return rc;
        }
        r->remove_dir = true;
    }
    snprintf(r->ledger_path, sizeof r->ledger_path, "%s/ledger.sqlite", r->dir);
    runner_note(r, "start", NULL, s->name, NULL);
    return 0;
}

/* The broker, the watcher, the backend role and the devices, up to time zero. */
static int setup_harness(struct runner *r, char *err, size_t cap)
{
    const struct scn_scenario *s = r->s;
    int rc = 0;
    if ((rc = setup_broker(r, err, cap)) != 0)
        return rc;
    const char *h_user = r->users ? "harness" : NULL, *h_pw = r->users ? "harness-pw" : NULL;
    char h_ca[RUNNER_PATH_MAX + 32], h_crt[RUNNER_PATH_MAX + 32], h_key[RUNNER_PATH_MAX + 32];
    const char *ca = NULL, *crt = NULL, *key = NULL;
    if (r->pki[0]) {
        snprintf(h_ca, sizeof h_ca, "%s/ca.crt", r->pki);
        ca = h_ca;
        if (s->broker.variant == SCN_BROKER_MTLS) {
            snprintf(h_crt, sizeof h_crt, "%s/backend.crt", r->pki);
            snprintf(h_key, sizeof h_key, "%s/backend.key", r->pki);
            crt = h_crt;
            key = h_key;
        }
    }
    if ((rc = runner_watch_start(r, r->broker_uri, h_user, h_pw, ca, crt, key)) != 0) {
        snprintf(err, cap, "the status watcher could not subscribe to %s", r->broker_uri);
        return rc;
    }
    bool any_per_device = false, any_qos2 = false;
    for (size_t g = 0; g < s->n_groups; g++) {
        any_per_device |= s->groups[g].layout == SCN_LAYOUT_PER_DEVICE;
        any_qos2 |= s->groups[g].qos == 2;
    }
    bool any_seed = false;
    for (size_t g = 0; g < s->n_groups; g++)
        any_seed |= s->groups[g].layout == SCN_LAYOUT_SEED;
    if (any_per_device && any_seed) {
        rc = HX_ERR_INVAL;
        snprintf(err, cap, "groups mix the seed and per-device layouts; the backend "
                 "role serves one layout: give every group the same layout");
        return rc;
    }
    struct hx_backend_opts bo = {0};
    bo.uri = r->broker_uri;
    bo.layout = any_per_device ? HX_BACKEND_LAYOUT_PER_DEVICE : HX_BACKEND_LAYOUT_SEED;
    bo.qos = any_qos2 ? 2 : 1; /* exactly once end to end when a group speaks QoS 2 */
    bo.db_path = r->ledger_path;
    bo.username = h_user;
    bo.password = h_pw;
    bo.cafile = ca;
    bo.certfile = crt;
    bo.keyfile = key;
    if ((rc = hx_backend_create(&bo, &r->backend)) != 0) {
        snprintf(err, cap, "the backend role could not be made: %s", hx_backend_last_error());
        return rc;
    }
    /* The backend connects while the devices power on (each connect takes Paho a second or
       two); it is subscribed before time zero, and nothing registers before time zero. */
    struct backend_start bs = {r->backend, 0, ""};
    pthread_t bt;
    bool bt_started = pthread_create(&bt, NULL, backend_start_main, &bs) == 0;
    if (!bt_started)
        backend_start_main(&bs);
    rc = setup_devices(r, err, cap);
    if (bt_started)
        pthread_join(bt, NULL);
    if (rc != 0)
        return rc;
    if ((rc = bs.rc) != 0) {
        snprintf(err, cap, "the backend role did not start: %s", bs.err);
        return rc;
    }
    return 0;
}

/* The result, the timeline for --keep, and everything freed (r included). */
static void finish_run(struct runner *r, struct hx_runner_result *out)
{
    teardown(r);
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
    if (r->remove_dir)
        nftw(r->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
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

    if ((rc = setup_work(r, err, sizeof err)) != 0 ||
        (rc = setup_harness(r, err, sizeof err)) != 0)
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
