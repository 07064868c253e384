/*
 * fleet_devices.c - the fleet: N sim_devices on a few loops, each with a scripted operator
 * (fleet_devices.h).
 *
 * Per loop (struct fleet_loop): its devices, a min-heap of operator timers, a list of
 * devices that received a message since the operator last looked ("ready"), and the
 * figures summed once a second. Everything in a fleet_loop except `sum` (under sum_mu) is
 * touched only by the loop's thread. The operator is woken
 *   - when a message reached its device: the traffic observer (called on the owner thread
 *     before the firmware handles the message) queues the device as ready and posts one
 *     closure per batch, which runs after the firmware handled the message;
 *   - when its timer is due: an extra loop target (`op_target`) pops due timers each tick.
 * So there is no scan of all devices per tick, and no allocation per item (one closure per
 * batch of messages).
 */
#include "fleet_internal.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sim/clock.h"
#include "sim/err.h"
#include "sim/loop.h"

void fleet_opts_defaults(struct fleet_opts *o)
{
    memset(o, 0, sizeof(*o));
    sim_transport_opts_defaults(&o->transport);
    o->devices = 1;
    o->id_prefix = "scanner-";
    o->id_start = 1;
    o->threads = 1;
    o->tick_ms = 50;
    o->layout = FW_LAYOUT_PER_DEVICE;
    o->keepalive_s = 30;
    o->qos = 1;
}

uint64_t fleet_peak_rss_kib(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss;
}

uint64_t fleet_pss_kib(void)
{
    FILE *fp = fopen("/proc/self/smaps_rollup", "r");
    char line[128];
    unsigned long long kib = 0;

    if (!fp)
        return 0;
    while (fgets(line, sizeof(line), fp))
        if (sscanf(line, "Pss: %llu kB", &kib) == 1)
            break;
    fclose(fp);
    return kib;
}

uint64_t fleet_proc_cpu_ms(int pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *fp;
    size_t n;
    char *p;

    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/stat");
    if (!(fp = fopen(path, "r")))
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* after the command name (which may hold spaces or parentheses): state is field 3,
       utime and stime are fields 14 and 15 */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2 ||
        hz <= 0)
        return 0;
    return (uint64_t)((ut + st) * 1000ull / (unsigned long long)hz);
}

/* Refresh the devices' rows (owner thread, under sum_mu): the dashboard's view. */
static void loop_rows(struct fleet_loop *fl)
{
    for (size_t i = 0; i < fl->n_devs; i++) {
        struct fleet_dev *d = fl->devs[i];
        struct fleet_row *r = &fl->rows[i];
        const struct fw_device *fw = sim_device_fw(d->dev);
        struct fw_status st;
        fw_device_status(fw, &st);
        snprintf(r->id, sizeof(r->id), "%s", sim_device_id(d->dev));
        r->index = d->index;
        r->online = (d->flags & FD_CONNECTED) != 0;
        r->powered = (d->flags & FD_STARTED) != 0;
        r->stats = *fw_device_stats(fw);
        r->pending = st.pending;
        r->last_seen_ms = d->last_seen_ms;
        memcpy(r->fb, fw_device_framebuffer(fw), FW_FB_BYTES);
    }
}

void fleet_figures_add_stats(struct fleet_figures *s, const struct fw_stats *st)
{
    s->items_received += st->items_received;
    s->items_queued += st->items_queued;
    s->duplicates_suppressed += st->duplicates_suppressed;
    s->queue_full += st->queue_full;
    s->registrations_confirmed += st->registrations_confirmed;
    s->registrations_acked += st->registrations_acked;
    s->registrations_resent += st->registrations_resent;
    s->outbox_full += st->outbox_full;
    s->cancels += st->cancels;
    s->wrong_tags += st->wrong_tags;
    s->rejects += st->rejects_total;
    s->inventory_queries += st->inventory_queries;
    s->inventory_answers += st->inventory_answers;
    s->inventory_timeouts += st->inventory_timeouts;
    s->connects += st->connects;
    s->connect_failures += st->connect_failures;
    s->connection_losses += st->connection_losses;
    s->publish_errors += st->publish_errors;
    s->storage_errors += st->storage_errors;
}

/* Sum this loop's device counters (owner thread). */
static void loop_sum(struct fleet_loop *fl)
{
    struct fleet_figures s;

    memset(&s, 0, sizeof(s));
    for (size_t i = 0; i < fl->n_devs; i++)
        fleet_figures_add_stats(&s, fw_device_stats(sim_device_fw(fl->devs[i]->dev)));
    pthread_mutex_lock(&fl->sum_mu);
    fl->sum = s;
    if (fl->rows)
        loop_rows(fl);
    pthread_mutex_unlock(&fl->sum_mu);
}

static void loop_sum_call(void *arg)
{
    loop_sum(arg);
}

static void op_on_tick(struct sim_loop_target *t, uint64_t now)
{
    struct fleet_loop *fl = LOOP_OF(t);
    struct fleet_dev *d;

    if (fl->closing)
        return;
    while ((d = fleet__heap_pop_due(fl, now)))
        fleet__op_step(d, now);
    if (now >= fl->next_sum_ms) {
        fl->next_sum_ms = now + 1000;
        loop_sum(fl);
    }
}

static void op_on_event(struct sim_loop_target *t, const struct sim_event *ev)
{
    (void)t;
    (void)ev; /* nothing is addressed to the operator target */
}

/* ------------------------------------------------------------------ observer (owner thread) */

static void obs_traffic(void *ctx, struct sim_device *dev, const struct sim_traffic *t)
{
    struct fleet_dev *d = sim_device_user(dev);
    struct fleet_loop *fl = d->fl;

    (void)ctx;
    if (t->dir == SIM_TRAFFIC_IN)
        d->last_seen_ms = sim_clock_ms();
    if (t->dir != SIM_TRAFFIC_IN || (d->flags & FD_READY) || fl->closing)
        return;
    d->flags |= FD_READY;
    d->ready_next = fl->ready;
    fl->ready = d;
    if (!fl->ready_posted && sim_loop_post(fl->loop, fleet__op_serve_ready, fl) == SIM_OK)
        fl->ready_posted = true;
}

static void obs_state(void *ctx, struct sim_device *dev, const struct sim_state_change *s)
{
    struct fleet *f = ctx;
    struct fleet_dev *d = sim_device_user(dev);

    if (s->state == SIM_CONN_CONNECTED) {
        if (!(d->flags & FD_CONNECTED)) {
            d->flags |= FD_CONNECTED;
            atomic_fetch_add(&f->connected, 1);
        }
        if (!(d->flags & FD_EVER)) {
            d->flags |= FD_EVER;
            if (atomic_fetch_add(&f->ever_connected, 1) + 1 == f->n_devs)
                atomic_store(&f->all_connected_ms, sim_clock_ms());
        }
        /* a session may hold items already: look at the screen soon */
        fleet__op_step(d, sim_clock_ms());
        return;
    }
    if (s->state == SIM_CONN_CONNECTING || s->state == SIM_CONN_SUBSCRIBING)
        return;
    if (d->flags & FD_CONNECTED) {
        d->flags &= ~FD_CONNECTED;
        atomic_fetch_sub(&f->connected, 1);
    }
    if (s->state == SIM_CONN_FAILED || s->state == SIM_CONN_LOST) {
        pthread_mutex_lock(&f->words_mu);
        snprintf(f->last_failure, sizeof(f->last_failure), "%s: %s", sim_device_id(dev),
                 s->words);
        pthread_mutex_unlock(&f->words_mu);
    }
}

static void obs_log(void *ctx, struct sim_device *dev, enum fw_log_level level, const char *line)
{
    struct fleet *f = ctx;

    if (f->o.verbose >= 2 && level >= FW_LOG_WARN)
        fprintf(stderr, "[%s] %s\n", sim_device_id(dev), line);
}

/* ------------------------------------------------------------------ create */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Create the devices of one loop (runs on its own thread so loops fill in parallel). */
static void *loop_create_devices(void *arg)
{
    struct fleet_loop *fl = arg;
    struct fleet *f = fl->f;
    char id[FW_DEVICE_ID_MAX];

    fl->create_rc = SIM_OK;
    for (size_t k = 0; k < fl->n_devs; k++) {
        struct fleet_dev *d = fl->devs[k];
        struct sim_device_opts so;
        int n = snprintf(id, sizeof(id), "%s%ld", f->id_prefix, f->o.id_start + (long)d->index);
        if (n < 0 || (size_t)n >= sizeof(id)) {
            fprintf(stderr, "scansim run: device id '%s%ld' is longer than %d bytes - use a "
                    "shorter --id-prefix\n", f->id_prefix, f->o.id_start + (long)d->index,
                    FW_DEVICE_ID_MAX - 1);
            fl->create_rc = SIM_ERR_INVAL;
            return NULL;
        }
        const char *uri = f->o.n_uris > 1
            ? f->uris[fleet_broker_of(f->o.id_start + (long)d->index, f->o.n_uris)] : f->uri;
        char crt[PATH_MAX], key[PATH_MAX];
        sim_device_opts_defaults(&so, id, uri);
        so.transport = f->o.transport;
        so.transport.uri = uri;
        so.transport.bind_address = f->o.n_binds > 0
            ? f->binds[fleet_bind_of(f->o.id_start + (long)d->index, f->o.n_binds)] : NULL;
        if (fleet_identity_apply(f->ident, id, &so.transport, crt, key, sizeof crt) != SIM_OK) {
            fl->create_rc = SIM_ERR_INVAL;
            return NULL;
        }
        so.fw.layout = f->o.layout;
        so.fw.clean_session = f->o.clean_session;
        so.fw.keepalive_s = (uint16_t)f->o.keepalive_s;
        so.fw.qos = f->o.qos;
        so.storage = f->flash_dir ? SIM_STORAGE_FILE : SIM_STORAGE_MEMORY;
        so.storage_dir = f->flash_dir;
        so.trace_dir = f->trace_dir;
        so.display_frames = 0; /* headless fleet: frames are rendered only on demand */
        so.log_level = f->o.verbose >= 2 ? FW_LOG_WARN : FW_LOG_ERROR;
        so.observer = &f->obs;
        so.user = d;
        int rc = sim_device_create(fl->loop, &so, &d->dev);
        if (rc != SIM_OK) {
            fprintf(stderr, "scansim run: could not create device %s: %s%s\n", id,
                    sim_strerror(rc),
                    rc == SIM_ERR_IO ? " (check that --flash and --trace name writable folders)" :
                    rc == SIM_ERR_INVAL ? " (check --id-prefix: printable, no '+', '#', '/')" : "");
            fl->create_rc = rc;
            return NULL;
        }
        atomic_fetch_add(&f->created, 1);
    }
    return NULL;
}

/* The fleet's own copies of the options' strings, its identities and its settled options;
   SIM_OK or the error. */
static int fleet_copy_opts(struct fleet *f, const struct fleet_opts *o)
{
    int rc;

    f->id_prefix = strdup(o->id_prefix ? o->id_prefix : "scanner-");
    f->uri = strdup(o->uri);
    f->flash_dir = dup_or_null(o->flash_dir);
    f->trace_dir = dup_or_null(o->trace_dir);
    for (int i = 0; i < o->n_uris && i < FLEET_URIS_MAX; i++)
        if (!(f->uris[i] = strdup(o->uris[i])))
            return SIM_ERR_NOMEM;
    if (f->o.n_binds > FLEET_BINDS_MAX)
        f->o.n_binds = FLEET_BINDS_MAX;
    for (int i = 0; i < f->o.n_binds; i++)
        if (!(f->binds[i] = strdup(o->binds[i])))
            return SIM_ERR_NOMEM;
    if ((rc = fleet_identity_load(o->cert_dir, o->password_file, o->id_as_username,
                                  &f->ident)) != SIM_OK)
        return rc;
    if (!f->id_prefix || !f->uri || (o->flash_dir && !f->flash_dir) ||
        (o->trace_dir && !f->trace_dir))
        return SIM_ERR_NOMEM;
    f->o.id_prefix = f->id_prefix;
    f->o.flash_dir = f->flash_dir;
    f->o.trace_dir = f->trace_dir;
    f->o.uri = f->uri;
    f->o.transport.uri = f->uri;
    if (f->o.tick_ms == 0)
        f->o.tick_ms = 50;
    fleet_operator_params_defaults(&f->op_params);
    f->op_params.think_min_ms = f->o.think_min_ms;
    f->op_params.think_max_ms = f->o.think_max_ms;
    f->op_params.wrong_tag_rate = f->o.wrong_tag_rate;
    f->op_params.cancel_rate = f->o.cancel_rate;
    f->op_params.inventory_rate = f->o.inventory_rate;
    f->op_params.retry_ms = f->o.tick_ms;
    f->obs = (struct sim_device_observer){ .ctx = f, .on_traffic = obs_traffic,
                                           .on_state = obs_state, .on_log = obs_log };
    return SIM_OK;
}

/* Loop i: its device, heap and row arrays, and its thread running; SIM_OK or the error. */
static int fleet_start_loop(struct fleet *f, int i)
{
    struct fleet_loop *fl = &f->loops[i];
    struct sim_loop_opts lo;
    char name[24];
    size_t cap = (size_t)(f->n_devs / f->n_loops + 1);
    int rc;

    fl->f = f;
    pthread_mutex_init(&fl->sum_mu, NULL);
    fl->devs = calloc(cap, sizeof(*fl->devs));
    fl->heap = calloc(cap, sizeof(*fl->heap));
    if (f->o.keep_rows)
        fl->rows = calloc(cap, sizeof(*fl->rows));
    if (!fl->devs || !fl->heap || (f->o.keep_rows && !fl->rows))
        return SIM_ERR_NOMEM;
    sim_loop_opts_defaults(&lo);
    lo.tick_ms = f->o.tick_ms;
    lo.batch_us = f->o.batch_us;
    snprintf(name, sizeof(name), "fleet-%d", i);
    lo.name = name;
    if ((rc = sim_loop_create(&lo, &fl->loop)) != SIM_OK)
        return rc;
    return sim_loop_start_thread(fl->loop);
}

/* Deal the devices round-robin over the loops, each with its operator's seed. */
static void fleet_deal_devices(struct fleet *f)
{
    for (int k = 0; k < f->n_devs; k++) {
        struct fleet_dev *d = &f->devs[k];
        struct fleet_loop *fl = &f->loops[k % f->n_loops];
        d->index = (uint32_t)k;
        d->fl = fl;
        /* a distinct, non-zero operator seed per device */
        uint32_t seed = (uint32_t)(k + 1) * 2654435761u ^ (f->o.seed ? f->o.seed : 0x5eed5eedu);
        fleet_operator_init(&d->op, seed ? seed : 1);
        fl->devs[fl->n_devs++] = d;
    }
}

/* Create every loop's devices, one thread per loop (th: room for n_loops); SIM_OK or the
   error of a loop that failed. */
static int fleet_create_devices(struct fleet *f, pthread_t *th)
{
    int rc = SIM_OK;

    for (int i = 0; i < f->n_loops; i++) {
        if (pthread_create(&th[i], NULL, loop_create_devices, &f->loops[i]) != 0) {
            for (int j = 0; j < i; j++)
                pthread_join(th[j], NULL);
            return SIM_ERR_IO;
        }
    }
    for (int i = 0; i < f->n_loops; i++) {
        pthread_join(th[i], NULL);
        if (f->loops[i].create_rc != SIM_OK)
            rc = f->loops[i].create_rc;
    }
    return rc;
}

/* The operator target last: its tick reads every device, so they must all exist. */
static int fleet_attach_operators(struct fleet *f)
{
    int rc;

    for (int i = 0; i < f->n_loops; i++) {
        struct fleet_loop *fl = &f->loops[i];
        fl->op_target.on_event = op_on_event;
        fl->op_target.on_tick = op_on_tick;
        if ((rc = sim_loop_attach(fl->loop, &fl->op_target)) != SIM_OK)
            return rc;
        fl->op_attached = true;
    }
    return SIM_OK;
}

int fleet_create(const struct fleet_opts *o, struct fleet **out)
{
    struct fleet *f;
    int rc = SIM_ERR_NOMEM;
    pthread_t *th = NULL;

    *out = NULL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return SIM_ERR_NOMEM;
    f->o = *o;
    pthread_mutex_init(&f->words_mu, NULL);
    if ((rc = fleet_copy_opts(f, o)) != SIM_OK)
        goto fail;
    rc = SIM_ERR_NOMEM;
    f->n_devs = o->devices;
    f->n_loops = o->threads < 1 ? 1 : o->threads;
    if (f->n_loops > f->n_devs && f->n_devs > 0)
        f->n_loops = f->n_devs;
    f->devs = calloc((size_t)(f->n_devs ? f->n_devs : 1), sizeof(*f->devs));
    f->loops = calloc((size_t)f->n_loops, sizeof(*f->loops));
    th = calloc((size_t)f->n_loops, sizeof(*th));
    if (!f->devs || !f->loops || !th)
        goto fail;
    for (int i = 0; i < f->n_loops; i++)
        if ((rc = fleet_start_loop(f, i)) != SIM_OK)
            goto fail;
    fleet_deal_devices(f);
    if ((rc = fleet_create_devices(f, th)) != SIM_OK)
        goto fail;
    if ((rc = fleet_attach_operators(f)) != SIM_OK)
        goto fail;
    free(th);
    *out = f;
    return SIM_OK;
fail:
    free(th);
    fleet_free(f);
    return rc;
}

/* ------------------------------------------------------------------ start / stop */

static void start_on_owner(void *arg)
{
    struct fleet_dev *d = arg;

    if (d->fl->closing)
        return;
    if (sim_device_start(d->dev) == SIM_OK) /* direct: we are the owner */
        d->flags |= FD_STARTED;
}

int fleet_start_some(struct fleet *f, int count)
{
    int n = 0;

    int started = atomic_load(&f->started);

    if (started == 0)
        f->start_ms = sim_clock_ms();
    /* devices alternate between loops, so every thread gets work from the first second */
    while (n < count && started < f->n_devs) {
        struct fleet_dev *d = &f->devs[started];
        if (sim_loop_post(d->fl->loop, start_on_owner, d) != SIM_OK)
            break;
        started++;
        n++;
    }
    atomic_store(&f->started, started);
    return n;
}

int fleet_unstarted(struct fleet *f)
{
    return f->n_devs - atomic_load(&f->started);
}

void fleet_figures(struct fleet *f, struct fleet_figures *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < f->n_loops; i++) {
        struct fleet_figures s;
        pthread_mutex_lock(&f->loops[i].sum_mu);
        s = f->loops[i].sum;
        pthread_mutex_unlock(&f->loops[i].sum_mu);
        fleet_figures_add(out, &s);
    }
    out->devices = (uint64_t)f->n_devs;
    out->created = (uint64_t)atomic_load(&f->created);
    out->started = (uint64_t)atomic_load(&f->started);
    out->connected = (uint64_t)atomic_load(&f->connected);
    out->ever_connected = (uint64_t)atomic_load(&f->ever_connected);
    uint64_t all = atomic_load(&f->all_connected_ms);
    out->connect_seconds = all && f->start_ms ? (double)(all - f->start_ms) / 1000.0 : -1.0;
    out->peak_rss_kib = fleet_peak_rss_kib();
    uint64_t pss = fleet_pss_kib(); /* sampled when figures are taken: about once a second */
    if (pss > f->peak_pss_kib)
        f->peak_pss_kib = pss;
    out->peak_pss_kib = f->peak_pss_kib;
    pthread_mutex_lock(&f->words_mu);
    memcpy(out->last_failure, f->last_failure, sizeof(out->last_failure));
    pthread_mutex_unlock(&f->words_mu);
}

/* Stop (clean power-off) every device of one loop, on its thread. */
static void stop_on_owner(void *arg)
{
    struct fleet_loop *fl = arg;

    loop_sum(fl); /* the final figures, before the power-off resets nothing but screens */
    fl->closing = true;
    for (size_t k = 0; k < fl->n_devs; k++) {
        struct fleet_dev *d = fl->devs[k];
        if (d->dev && (d->flags & FD_STARTED)) {
            (void)sim_device_stop(d->dev);
            d->flags &= ~FD_STARTED;
        }
    }
}

static void *stop_thread(void *arg)
{
    struct fleet_loop *fl = arg;

    sim_loop_call(fl->loop, stop_on_owner, fl);
    return NULL;
}

void fleet_stop(struct fleet *f)
{
    pthread_t *th = calloc((size_t)f->n_loops, sizeof(*th));

    for (int i = 0; i < f->n_loops; i++) {
        if (!f->loops[i].loop)
            continue;
        if (!th || pthread_create(&th[i], NULL, stop_thread, &f->loops[i]) != 0) {
            sim_loop_call(f->loops[i].loop, stop_on_owner, &f->loops[i]);
            if (th)
                th[i] = 0;
        }
    }
    for (int i = 0; th && i < f->n_loops; i++)
        if (th[i])
            pthread_join(th[i], NULL);
    free(th);
    f->stopped_ms = sim_clock_ms();
}

static void close_on_owner(void *arg)
{
    ((struct fleet_loop *)arg)->closing = true;
}

/* Drop every Paho handle of one loop at once (owner thread). The devices were powered off
   cleanly before (fleet_stop) and had FLEET_DRAIN_MS to get "offline" and DISCONNECT on the
   wire. Destroying a transport whose clean disconnect Paho never confirmed waits up to 3 s
   for it (sim_transport_destroy); with thousands of devices a few such waits add up to
   minutes, so the handles go the power-cut way, which does not wait. */
static void cut_on_owner(void *arg)
{
    struct fleet_loop *fl = arg;

    for (size_t k = 0; k < fl->n_devs; k++)
        if (fl->devs[k]->dev)
            (void)sim_device_power_cut(fl->devs[k]->dev);
}

/* Destroy one loop's devices (its own thread, so loops tear down in parallel). */
static void *destroy_thread(void *arg)
{
    struct fleet_loop *fl = arg;

    sim_loop_call(fl->loop, cut_on_owner, fl);
    for (size_t k = 0; k < fl->n_devs; k++) {
        sim_device_destroy(fl->devs[k]->dev);
        fl->devs[k]->dev = NULL;
    }
    return NULL;
}

void fleet_free(struct fleet *f)
{
    pthread_t *th;

    if (!f)
        return;
    if (f->stopped_ms) { /* let Paho finish the clean disconnects fleet_stop started */
        uint64_t since = sim_clock_ms() - f->stopped_ms;
        if (since < FLEET_DRAIN_MS)
            usleep((useconds_t)(FLEET_DRAIN_MS - since) * 1000u);
    }
    th = calloc((size_t)(f->n_loops ? f->n_loops : 1), sizeof(*th));
    for (int i = 0; f->loops && i < f->n_loops; i++)
        if (f->loops[i].loop)
            sim_loop_call(f->loops[i].loop, close_on_owner, &f->loops[i]);
    for (int i = 0; f->loops && i < f->n_loops; i++) {
        if (!f->loops[i].loop)
            continue;
        if (!th || pthread_create(&th[i], NULL, destroy_thread, &f->loops[i]) != 0) {
            destroy_thread(&f->loops[i]);
            if (th)
                th[i] = 0;
        }
    }
    for (int i = 0; th && f->loops && i < f->n_loops; i++)
        if (th[i])
            pthread_join(th[i], NULL);
    free(th);
    for (int i = 0; f->loops && i < f->n_loops; i++) {
        struct fleet_loop *fl = &f->loops[i];
        if (fl->op_attached)
            sim_loop_detach(fl->loop, &fl->op_target);
        sim_loop_free(fl->loop); /* runs a queued ready-closure: it sees closing */
        pthread_mutex_destroy(&fl->sum_mu);
        free(fl->devs);
        free(fl->heap);
        free(fl->rows);
    }
    pthread_mutex_destroy(&f->words_mu);
    free(f->loops);
    free(f->devs);
    free(f->id_prefix);
    free(f->uri);
    for (int i = 0; i < FLEET_URIS_MAX; i++)
        free(f->uris[i]);
    for (int i = 0; i < FLEET_BINDS_MAX; i++)
        free(f->binds[i]);
    fleet_identity_free(f->ident);
    free(f->flash_dir);
    free(f->trace_dir);
    free(f);
}

int fleet_rows(struct fleet *f, struct fleet_row *out, int max)
{
    int n = 0;

    for (int i = 0; i < f->n_loops; i++) {
        struct fleet_loop *fl = &f->loops[i];
        if (!fl->rows)
            continue;
        pthread_mutex_lock(&fl->sum_mu);
        for (size_t k = 0; k < fl->n_devs; k++) {
            uint32_t at = fl->rows[k].index;
            if ((int)at < max && fl->rows[k].id[0]) {
                out[at] = fl->rows[k];
                n++;
            }
        }
        pthread_mutex_unlock(&fl->sum_mu);
    }
    return n;
}

void fleet_refresh(struct fleet *f)
{
    for (int i = 0; i < f->n_loops; i++)
        sim_loop_call(f->loops[i].loop, loop_sum_call, &f->loops[i]);
}
