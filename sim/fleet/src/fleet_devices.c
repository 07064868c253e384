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
#include "sim/fleet_devices.h"
#include "sim/fleet_identity.h"

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

/* Operator flags (struct fleet_dev.flags). */
#define FD_STARTED 0x01u     /* powered on */
#define FD_READY 0x02u       /* in the loop's ready list */
#define FD_THOUGHT 0x04u     /* think time for think_item is over */
#define FD_CANCEL 0x08u      /* decided: cancel think_item */
#define FD_WRONG 0x10u       /* decided: scan a wrong tag first */
#define FD_INVENTORY 0x20u   /* wants an inventory look-up */
#define FD_CONNECTED 0x40u   /* connected now (observer's view) */
#define FD_EVER 0x80u        /* connected at least once */

struct fleet_loop;

/* One device and its operator (~64 bytes beside the sim_device). */
struct fleet_dev {
    struct sim_device *dev;
    struct fleet_loop *fl;
    struct fleet_dev *ready_next;
    uint64_t due_ms;        /* operator timer (valid while heap_pos != 0) */
    uint64_t think_until;   /* end of the think time for think_item */
    uint32_t heap_pos;      /* index + 1 in the loop's heap; 0 = no timer */
    uint32_t index;         /* position in the fleet */
    uint32_t rng;           /* xorshift32 state */
    int32_t think_item;     /* head item the operator is working on */
    int32_t last_item;      /* last item registered (inventory looks it up) */
    uint32_t flags;
    uint64_t last_seen_ms;  /* last message received (monotonic; 0 = none) */
};

struct fleet_loop {
    struct fleet *f;
    struct sim_loop *loop;
    struct sim_loop_target op_target; /* ticks the operator timers */
    bool op_attached;
    struct fleet_dev **devs;          /* devices on this loop */
    size_t n_devs;
    struct fleet_dev **heap;          /* timers, min-heap on due_ms */
    size_t heap_n;
    struct fleet_dev *ready;          /* ready list (LIFO; order does not matter) */
    bool ready_posted;                /* a closure to serve it is queued */
    bool closing;                     /* no more operator work */
    uint64_t next_sum_ms;
    pthread_mutex_t sum_mu;
    struct fleet_figures sum;         /* device counters of this loop, refreshed 1/s */
    struct fleet_row *rows;           /* keep_rows: one per device of this loop, 1/s */
    int create_rc;                    /* result of the creating thread */
    size_t start_next;                /* next device of this loop to start */
};

struct fleet {
    struct fleet_opts o;
    char *id_prefix, *flash_dir, *trace_dir, *uri;
    char *uris[FLEET_URIS_MAX];       /* copies of o.uris */
    char *binds[FLEET_BINDS_MAX];     /* copies of o.binds */
    struct fleet_identity *ident;     /* per-device credentials, or NULL */
    struct sim_device_observer obs;
    struct fleet_loop *loops;
    int n_loops;
    struct fleet_dev *devs;           /* all devices, index order */
    int n_devs;
    atomic_int started;               /* devices handed a start (written by the main thread) */
    atomic_int connected, ever_connected, created;
    atomic_uint_fast64_t all_connected_ms; /* 0 until every device connected once */
    uint64_t start_ms;                /* first start */
    uint64_t stopped_ms;              /* fleet_stop returned (0 = not stopped) */
    uint64_t peak_pss_kib;            /* highest PSS sampled by fleet_figures */
    pthread_mutex_t words_mu;
    char last_failure[FW_DEVICE_ID_MAX + 2 + SIM_WORDS_MAX];
};

/* After a clean power-off, how long Paho gets to send "offline" and DISCONNECT before
   the handles are dropped: its disconnect time-out (1 s, sim/transport.h) and a margin. */
#define FLEET_DRAIN_MS 1500

#define LOOP_OF(t) ((struct fleet_loop *)((char *)(t) - offsetof(struct fleet_loop, op_target)))

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

/* ------------------------------------------------------------------ randomness */

static uint32_t rng_next(struct fleet_dev *d)
{
    uint32_t x = d->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d->rng = x;
    return x;
}

/* true with probability p */
static bool rng_chance(struct fleet_dev *d, double p)
{
    if (p <= 0.0)
        return false;
    return (double)rng_next(d) / 4294967296.0 < p;
}

static uint64_t think_ms(struct fleet_dev *d)
{
    const struct fleet_opts *o = &d->fl->f->o;

    if (o->think_max_ms <= o->think_min_ms)
        return o->think_min_ms;
    return o->think_min_ms + rng_next(d) % (o->think_max_ms - o->think_min_ms + 1);
}

/* ------------------------------------------------------------------ timer heap */

static void heap_swap(struct fleet_loop *fl, size_t a, size_t b)
{
    struct fleet_dev *t = fl->heap[a];

    fl->heap[a] = fl->heap[b];
    fl->heap[b] = t;
    fl->heap[a]->heap_pos = (uint32_t)a + 1;
    fl->heap[b]->heap_pos = (uint32_t)b + 1;
}

static void heap_up(struct fleet_loop *fl, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (fl->heap[p]->due_ms <= fl->heap[i]->due_ms)
            break;
        heap_swap(fl, p, i);
        i = p;
    }
}

static void heap_down(struct fleet_loop *fl, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < fl->heap_n && fl->heap[l]->due_ms < fl->heap[m]->due_ms)
            m = l;
        if (r < fl->heap_n && fl->heap[r]->due_ms < fl->heap[m]->due_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(fl, i, m);
        i = m;
    }
}

/* Set (or move) the device's one timer. The heap has room for every device of the loop. */
static void timer_set(struct fleet_dev *d, uint64_t due)
{
    struct fleet_loop *fl = d->fl;

    d->due_ms = due;
    if (d->heap_pos == 0) {
        fl->heap[fl->heap_n] = d;
        d->heap_pos = (uint32_t)++fl->heap_n;
        heap_up(fl, fl->heap_n - 1);
    } else {
        heap_up(fl, d->heap_pos - 1);
        heap_down(fl, d->heap_pos - 1);
    }
}

static struct fleet_dev *heap_pop_due(struct fleet_loop *fl, uint64_t now)
{
    struct fleet_dev *d;

    if (fl->heap_n == 0 || fl->heap[0]->due_ms > now)
        return NULL;
    d = fl->heap[0];
    heap_swap(fl, 0, fl->heap_n - 1);
    fl->heap_n--;
    d->heap_pos = 0;
    if (fl->heap_n > 0)
        heap_down(fl, 0);
    return d;
}

/* ------------------------------------------------------------------ the operator */

/* The tag a person finds on item item_id at device n: unique per device and item (the
   fleet-wide device number, so several runs or workers never share one). 10-byte UID. */
static void item_tag(const struct fleet_dev *d, int32_t item_id, uint8_t uid[10])
{
    uint32_t n = (uint32_t)(d->fl->f->o.id_start + d->index);

    uid[0] = 0xE0;
    uid[1] = (uint8_t)(n >> 24);
    uid[2] = (uint8_t)(n >> 16);
    uid[3] = (uint8_t)(n >> 8);
    uid[4] = (uint8_t)n;
    uid[5] = (uint8_t)((uint32_t)item_id >> 24);
    uid[6] = (uint8_t)((uint32_t)item_id >> 16);
    uid[7] = (uint8_t)((uint32_t)item_id >> 8);
    uid[8] = (uint8_t)item_id;
    uid[9] = 0x5C;
}

/* What the operator does after acting on a screen. */
enum op_next {
    OP_LOOK_AGAIN, /* pressed or scanned: look at the screen again */
    OP_STOP,       /* nothing to do now (a message or the timer wakes it) */
};

/* Registered, cancelled or an error: acknowledge only when there is more to do. */
static enum op_next op_on_notice(struct fleet_dev *d, const struct fw_status *st)
{
    if (st->pending == 0 && !(d->flags & FD_INVENTORY))
        return OP_STOP; /* the notice goes away by itself */
    sim_device_press(d->dev, FW_BUTTON_CONFIRM); /* acknowledge, look again */
    return OP_LOOK_AGAIN;
}

/* Has the operator thought long enough about the head item? Decides, once per item, the
   think time and whether to cancel it or scan a wrong tag first; false: a timer is set. */
static bool op_thought(struct fleet_dev *d, const struct fw_status *st, uint64_t now)
{
    const struct fleet_opts *o = &d->fl->f->o;

    if (st->head_item_id != d->think_item) {
        uint64_t t = think_ms(d);
        d->think_item = st->head_item_id;
        d->flags &= ~(FD_THOUGHT | FD_CANCEL | FD_WRONG);
        if (rng_chance(d, o->cancel_rate))
            d->flags |= FD_CANCEL;
        else if (rng_chance(d, o->wrong_tag_rate))
            d->flags |= FD_WRONG;
        d->think_until = now + t;
        if (t > 0) {
            timer_set(d, d->think_until);
            return false;
        }
        d->flags |= FD_THOUGHT;
    }
    if (!(d->flags & FD_THOUGHT)) {
        if (now < d->think_until) {
            if (d->heap_pos == 0)
                timer_set(d, d->think_until);
            return false;
        }
        d->flags |= FD_THOUGHT;
    }
    return true;
}

/* An item to register: leave for a look-up, or think, then cancel, scan a wrong tag or
   scan the item's tag. */
static enum op_next op_on_item(struct fleet_dev *d, const struct fw_status *st, uint64_t now)
{
    uint8_t uid[10];

    if (d->flags & FD_INVENTORY) {
        d->flags &= ~FD_INVENTORY;
        sim_device_press(d->dev, FW_BUTTON_MODE);
        return OP_LOOK_AGAIN;
    }
    if (!op_thought(d, st, now))
        return OP_STOP;
    if (d->flags & FD_CANCEL) {
        d->flags &= ~FD_CANCEL;
        sim_device_press(d->dev, FW_BUTTON_CANCEL);
        return OP_LOOK_AGAIN;
    }
    if (d->flags & FD_WRONG) {
        static const uint8_t wrong[3] = { 0xBA, 0xD0, 0x01 }; /* no reader gives 3 bytes */
        d->flags &= ~FD_WRONG;
        (void)sim_device_scan(d->dev, wrong, sizeof(wrong));
        return OP_LOOK_AGAIN;
    }
    item_tag(d, st->head_item_id, uid);
    (void)sim_device_scan(d->dev, uid, sizeof(uid));
    return OP_LOOK_AGAIN;
}

/* Confirm the registration; a full outbox is retried a tick later. */
static enum op_next op_on_confirm(struct fleet_dev *d, struct fw_device *fw,
                                  const struct fw_status *st, uint64_t now)
{
    const struct fleet_opts *o = &d->fl->f->o;
    uint32_t full = fw_device_stats(fw)->outbox_full;
    uint32_t done = fw_device_stats(fw)->registrations_confirmed;
    int32_t item = st->head_item_id;

    sim_device_press(d->dev, FW_BUTTON_CONFIRM);
    if (fw_device_stats(fw)->outbox_full != full) {
        /* waiting for acknowledgements: try again a tick later */
        timer_set(d, now + o->tick_ms);
        return OP_STOP;
    }
    if (fw_device_stats(fw)->registrations_confirmed != done) {
        d->last_item = item;
        if (rng_chance(d, o->inventory_rate))
            d->flags |= FD_INVENTORY;
    }
    return OP_LOOK_AGAIN;
}

/* The look-up scans the last item registered, else any tag. */
static enum op_next op_on_inventory_scan(struct fleet_dev *d)
{
    uint8_t uid[10];

    if (d->last_item > 0)
        item_tag(d, d->last_item, uid);
    else
        item_tag(d, (int32_t)(rng_next(d) & 0x7fffffff), uid);
    (void)sim_device_scan(d->dev, uid, sizeof(uid));
    return OP_LOOK_AGAIN;
}

/* One look at the screen and what the operator does about it. */
static enum op_next op_on_screen(struct fleet_dev *d, struct fw_device *fw,
                                 const struct fw_status *st, uint64_t now)
{
    switch (st->screen) {
    case FW_SCREEN_REGISTERED:
    case FW_SCREEN_CANCELLED:
    case FW_SCREEN_ERROR:
        return op_on_notice(d, st);
    case FW_SCREEN_IDLE:
        if (!(d->flags & FD_INVENTORY))
            return OP_STOP;
        d->flags &= ~FD_INVENTORY;
        sim_device_press(d->dev, FW_BUTTON_MODE);
        return OP_LOOK_AGAIN;
    case FW_SCREEN_ITEM:
        return op_on_item(d, st, now);
    case FW_SCREEN_CONFIRM:
        return op_on_confirm(d, fw, st, now);
    case FW_SCREEN_INVENTORY_SCAN:
        return op_on_inventory_scan(d);
    case FW_SCREEN_INVENTORY_WAIT:
        /* the answer arrives as a message (ready again); the time-out needs a timer */
        timer_set(d, now + FW_INVENTORY_TIMEOUT_MS + d->fl->f->o.tick_ms);
        return OP_STOP;
    case FW_SCREEN_INVENTORY_RESULT:
        sim_device_press(d->dev, FW_BUTTON_MODE); /* leave the look-up mode */
        return OP_LOOK_AGAIN;
    case FW_SCREEN_MESSAGE:
        sim_device_press(d->dev, FW_BUTTON_CONFIRM); /* read at once, dismissed */
        return OP_LOOK_AGAIN;
    case FW_SCREEN_LOCKED:
        return OP_STOP; /* nothing to do until the backend unlocks it (a message wakes us) */
    default:
        return OP_STOP;
    }
}

/*
 * Look at the screen and act until there is nothing to do now: acknowledge notices,
 * think, scan, confirm, look up. Runs on the owner thread only. Bounded: a device that
 * keeps refusing (outbox full) is retried by timer, never in a tight loop.
 */
static void op_step(struct fleet_dev *d, uint64_t now)
{
    struct fleet_loop *fl = d->fl;
    struct fw_device *fw = sim_device_fw(d->dev);
    struct fw_status st;

    if (!(d->flags & FD_STARTED) || fl->closing)
        return;
    for (int guard = 0; guard < 64; guard++) {
        fw_device_status(fw, &st);
        if (op_on_screen(d, fw, &st, now) == OP_STOP)
            return;
    }
    timer_set(d, now + fl->f->o.tick_ms); /* still busy: look again next tick */
}

/* Serve the ready list (a closure posted by the observer; owner thread). */
static void op_serve_ready(void *arg)
{
    struct fleet_loop *fl = arg;
    uint64_t now = sim_clock_ms();
    struct fleet_dev *d;

    fl->ready_posted = false;
    while ((d = fl->ready)) {
        fl->ready = d->ready_next;
        d->ready_next = NULL;
        d->flags &= ~FD_READY;
        op_step(d, now);
    }
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
    while ((d = heap_pop_due(fl, now)))
        op_step(d, now);
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
    if (!fl->ready_posted && sim_loop_post(fl->loop, op_serve_ready, fl) == SIM_OK)
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
        op_step(d, sim_clock_ms());
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
        d->rng = (uint32_t)(k + 1) * 2654435761u ^ (f->o.seed ? f->o.seed : 0x5eed5eedu);
        if (d->rng == 0)
            d->rng = 1;
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
