/*
 * loop.c - the event loop that owns devices (sim/loop.h).
 *
 * A FIFO of heap events under one mutex, an eventfd that is readable while the FIFO is
 * not empty, and a list of targets ticked every tick_ms. Producers (Paho's threads, a UI,
 * the harness) only append; the owning thread takes the whole FIFO at once and handles it
 * outside the mutex, so a Paho callback never waits for firmware work.
 *
 * Who is the owner: the loop's own thread (sim_loop_start_thread), or whoever is inside
 * sim_loop_run_once / a direct sim_loop_call. The `exec` mutex is held while owner-side
 * code runs, which keeps two callers of a caller-driven loop from running it at once.
 *
 * File descriptors (watches): one epoll set holds the eventfd and every watched fd, so one
 * wait covers both and sim_loop_fd() (the epoll fd) serves a caller's poll(). A round blocks
 * on the epoll fd, then, with exec held, collects readiness with a zero time-out into an
 * owner-only batch and runs the watches before the drain. Collecting under exec means a
 * watch removed before that moment cannot appear; one removed during the round is nulled
 * out of the batch. batch_us delays only the queue's drain, and only when the queue is what
 * woke us: ready sockets are read at once.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "sim/clock.h"
#include "sim/err.h"
#include "sim/loop.h"

/* Completion of a sim_loop_call that was posted (lives on the caller's stack). */
struct call_done {
    bool done;
};

/* Readiness collected per round (more waits for the next round: level-triggered). */
#define LOOP_BATCH_MAX 256

struct sim_loop {
    pthread_mutex_t mu;            /* guards the FIFO, owner_active/owner, signalled */
    pthread_cond_t cond;           /* sim_loop_call completions */
    pthread_cond_t batch_cv;       /* cuts a batch wait short when a caller arrives
                                      (CLOCK_MONOTONIC) */
    struct sim_event *head, *tail; /* the FIFO */
    bool signalled;                /* the eventfd counter is non-zero */
    int efd;
    int epfd;                      /* epoll over efd and the watches */

    pthread_mutex_t exec;          /* held while owner-side code runs */
    /* Keeps a watch's `armed` equal to what epoll has: a set from another thread and the
       owner's set-back must not interleave between the check, epoll_ctl and the store
       (a stale `armed` would skip a needed change and leave EPOLLOUT armed or lost). */
    pthread_mutex_t watch_mu;
    bool owner_active;             /* a thread is running the loop now (under mu) */

    pthread_t thread;              /* sim_loop_start_thread */
    bool thread_running;           /* set/cleared by start/stop (controller side) */
    atomic_bool stop_requested;
    atomic_int callers_waiting;    /* threads blocked in sim_loop_call on this loop */

    /* owner-only */
    struct sim_event *proc_head;   /* events taken from the FIFO, being handled */
    struct sim_loop_target **targets;
    size_t n_targets, cap_targets;
    uint64_t next_tick;
    unsigned tick_ms;
    unsigned batch_us;
    struct epoll_event ready[LOOP_BATCH_MAX]; /* this round's readiness; data.ptr = the
                                                 watch, &efd for the queue, NULL dropped */
    int n_ready, i_ready;

    atomic_uint_fast64_t ticks, events, tick_ns;
    atomic_size_t n_targets_pub;
    char name[16];
};

/* The loop the calling thread is running right now, if any. */
static _Thread_local struct sim_loop *tl_current;

/* ------------------------------------------------------------------ events */

struct sim_event *sim_event_new(enum sim_event_kind kind, struct sim_loop_target *target,
                                const char *topic, const void *payload, size_t len,
                                const char *words)
{
    size_t tlen = topic ? strlen(topic) + 1 : 0;
    size_t plen = payload ? len + 1 : 0;
    size_t wlen = words ? strlen(words) + 1 : 0;
    struct sim_event *ev = calloc(1, sizeof(*ev) + tlen + plen + wlen);
    char *p;

    if (!ev)
        return NULL;
    ev->kind = kind;
    ev->target = target;
    p = ev->data;
    if (topic) {
        memcpy(p, topic, tlen);
        ev->topic = p;
        p += tlen;
    }
    if (payload) {
        memcpy(p, payload, len);
        p[len] = '\0'; /* convenience for text payloads; len excludes it */
        ev->payload = p;
        ev->len = len;
        p += plen;
    }
    if (words) {
        memcpy(p, words, wlen);
        ev->words = p;
    }
    return ev;
}

/* ------------------------------------------------------------------ create / free */

void sim_loop_opts_defaults(struct sim_loop_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->version = SIM_LOOP_OPTS_VERSION;
    opts->tick_ms = 50;
}

int sim_loop_create(const struct sim_loop_opts *opts, struct sim_loop **out)
{
    struct sim_loop_opts defaults;
    struct sim_loop *loop;

    *out = NULL;
    if (!opts) {
        sim_loop_opts_defaults(&defaults);
        opts = &defaults;
    }
    loop = calloc(1, sizeof(*loop));
    if (!loop)
        return SIM_ERR_NOMEM;
    loop->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->efd < 0 || loop->epfd < 0)
        goto fail;
    struct epoll_event ee = { .events = EPOLLIN, .data.ptr = &loop->efd };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->efd, &ee) < 0)
        goto fail;
    pthread_mutex_init(&loop->mu, NULL);
    pthread_mutex_init(&loop->exec, NULL);
    pthread_mutex_init(&loop->watch_mu, NULL);
    pthread_cond_init(&loop->cond, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&loop->batch_cv, &ca);
    pthread_condattr_destroy(&ca);
    loop->tick_ms = opts->tick_ms ? opts->tick_ms : 50;
    loop->batch_us = opts->batch_us;
    loop->next_tick = sim_clock_ms() + loop->tick_ms;
    atomic_init(&loop->stop_requested, false);
    atomic_init(&loop->callers_waiting, 0);
    atomic_init(&loop->ticks, 0);
    atomic_init(&loop->events, 0);
    atomic_init(&loop->tick_ns, 0);
    atomic_init(&loop->n_targets_pub, 0);
    strncpy(loop->name, opts->name ? opts->name : "sim-loop", sizeof(loop->name) - 1);
    *out = loop;
    return SIM_OK;

fail:
    if (loop->efd >= 0)
        close(loop->efd);
    if (loop->epfd >= 0)
        close(loop->epfd);
    free(loop);
    return SIM_ERR_IO;
}

static void handle_event(struct sim_loop *loop, struct sim_event *ev);

void sim_loop_free(struct sim_loop *loop)
{
    struct sim_event *ev;

    if (!loop)
        return;
    if (loop->thread_running)
        sim_loop_stop(loop);
    /* Run the closures still queued (their args may own memory); drop the rest: their
       targets are detached by now. */
    pthread_mutex_lock(&loop->exec);
    tl_current = loop;
    pthread_mutex_lock(&loop->mu);
    loop->proc_head = loop->head;
    loop->head = loop->tail = NULL;
    pthread_mutex_unlock(&loop->mu);
    while ((ev = loop->proc_head)) {
        loop->proc_head = ev->next;
        if (ev->kind == SIM_EV_CALL)
            handle_event(loop, ev);
        else
            free(ev);
    }
    tl_current = NULL;
    pthread_mutex_unlock(&loop->exec);
    close(loop->efd);
    close(loop->epfd);
    pthread_cond_destroy(&loop->cond);
    pthread_cond_destroy(&loop->batch_cv);
    pthread_mutex_destroy(&loop->watch_mu);
    pthread_mutex_destroy(&loop->exec);
    pthread_mutex_destroy(&loop->mu);
    free(loop->targets);
    free(loop);
}

/* ------------------------------------------------------------------ producers */

void sim_loop_push(struct sim_loop *loop, struct sim_event *ev)
{
    static const uint64_t one = 1;

    ev->next = NULL;
    pthread_mutex_lock(&loop->mu);
    if (loop->tail)
        loop->tail->next = ev;
    else
        loop->head = ev;
    loop->tail = ev;
    if (!loop->signalled) {
        /* Written under the mutex so that a drain cannot reset the counter between our
           append and our write (which would leave a wake-up for an empty queue). */
        loop->signalled = true;
        ssize_t n = write(loop->efd, &one, sizeof(one));
        (void)n; /* EAGAIN only when the counter is at its maximum: still readable */
    }
    pthread_mutex_unlock(&loop->mu);
}

int sim_loop_post(struct sim_loop *loop, sim_loop_fn fn, void *arg)
{
    struct sim_event *ev = sim_event_new(SIM_EV_CALL, NULL, NULL, NULL, 0, NULL);

    if (!ev)
        return SIM_ERR_NOMEM;
    ev->fn = fn;
    ev->arg = arg;
    sim_loop_push(loop, ev);
    return SIM_OK;
}

bool sim_loop_on_owner_thread(const struct sim_loop *loop)
{
    return tl_current == loop;
}

int sim_loop_call(struct sim_loop *loop, sim_loop_fn fn, void *arg)
{
    struct call_done done = { false };
    struct sim_event *ev;
    struct sim_loop *saved;

    if (tl_current == loop) {
        fn(arg);
        return SIM_OK;
    }
    pthread_mutex_lock(&loop->mu);
    if (!loop->owner_active) {
        pthread_mutex_unlock(&loop->mu);
        /* Nobody runs the loop: run here, holding exec so that nobody starts meanwhile. */
        pthread_mutex_lock(&loop->exec);
        saved = tl_current;
        tl_current = loop;
        fn(arg);
        tl_current = saved;
        pthread_mutex_unlock(&loop->exec);
        return SIM_OK;
    }
    pthread_mutex_unlock(&loop->mu);

    ev = sim_event_new(SIM_EV_CALL, NULL, NULL, NULL, 0, NULL);
    if (!ev)
        return SIM_ERR_NOMEM;
    ev->fn = fn;
    ev->arg = arg;
    ev->done = &done;
    atomic_fetch_add(&loop->callers_waiting, 1);
    sim_loop_push(loop, ev);
    pthread_mutex_lock(&loop->mu);
    pthread_cond_signal(&loop->batch_cv); /* a batch wait already begun ends now */
    while (!done.done)
        pthread_cond_wait(&loop->cond, &loop->mu);
    pthread_mutex_unlock(&loop->mu);
    atomic_fetch_sub(&loop->callers_waiting, 1);
    return SIM_OK;
}

/* ------------------------------------------------------------------ targets */

struct attach_args {
    struct sim_loop *loop;
    struct sim_loop_target *t;
    int rc;
};

static void attach_on_owner(void *arg)
{
    struct attach_args *a = arg;
    struct sim_loop *loop = a->loop;

    if (loop->n_targets == loop->cap_targets) {
        size_t cap = loop->cap_targets ? loop->cap_targets * 2 : 16;
        struct sim_loop_target **nt = realloc(loop->targets, cap * sizeof(*nt));
        if (!nt) {
            a->rc = SIM_ERR_NOMEM;
            return;
        }
        loop->targets = nt;
        loop->cap_targets = cap;
    }
    a->t->loop = loop;
    a->t->index = loop->n_targets;
    loop->targets[loop->n_targets++] = a->t;
    atomic_store_explicit(&loop->n_targets_pub, loop->n_targets, memory_order_relaxed);
    a->rc = SIM_OK;
}

int sim_loop_attach(struct sim_loop *loop, struct sim_loop_target *t)
{
    struct attach_args a = { loop, t, SIM_ERR_NOMEM };
    int rc = sim_loop_call(loop, attach_on_owner, &a);

    return rc ? rc : a.rc;
}

/* Remove every event for t from a list; returns the new head, fixes *tail if given. */
static struct sim_event *purge(struct sim_event *head, struct sim_event **tail,
                               const struct sim_loop_target *t)
{
    struct sim_event **pp = &head, *ev, *last = NULL;

    while ((ev = *pp)) {
        if (ev->target == t) {
            *pp = ev->next;
            free(ev);
        } else {
            last = ev;
            pp = &ev->next;
        }
    }
    if (tail)
        *tail = last;
    return head;
}

static void detach_on_owner(void *arg)
{
    struct attach_args *a = arg;
    struct sim_loop *loop = a->loop;
    struct sim_loop_target *t = a->t;
    size_t i = t->index;

    if (t->loop == loop && i < loop->n_targets && loop->targets[i] == t) {
        loop->targets[i] = loop->targets[--loop->n_targets];
        loop->targets[i]->index = i;
        atomic_store_explicit(&loop->n_targets_pub, loop->n_targets, memory_order_relaxed);
    }
    t->loop = NULL;
    /* The events being handled right now (we may be inside one) and the queued ones. */
    loop->proc_head = purge(loop->proc_head, NULL, t);
    pthread_mutex_lock(&loop->mu);
    loop->head = purge(loop->head, &loop->tail, t);
    pthread_mutex_unlock(&loop->mu);
}

void sim_loop_detach(struct sim_loop *loop, struct sim_loop_target *t)
{
    struct attach_args a = { loop, t, 0 };

    sim_loop_call(loop, detach_on_owner, &a);
}

/* ------------------------------------------------------------------ the owner side */

static void handle_event(struct sim_loop *loop, struct sim_event *ev)
{
    if (ev->kind == SIM_EV_CALL) {
        ev->fn(ev->arg);
        if (ev->done) {
            pthread_mutex_lock(&loop->mu);
            ((struct call_done *)ev->done)->done = true;
            pthread_cond_broadcast(&loop->cond);
            pthread_mutex_unlock(&loop->mu);
        }
    } else if (ev->target && ev->target->on_event) {
        ev->target->on_event(ev->target, ev);
    }
    free(ev);
}

/* Handle what is queued now (not what handlers queue meanwhile), then tick if due.
   Called with exec held and tl_current == loop. */
static int drain_and_tick(struct sim_loop *loop)
{
    struct sim_event *ev;
    uint64_t now;
    int n = 0;

    pthread_mutex_lock(&loop->mu);
    loop->proc_head = loop->head;
    loop->head = loop->tail = NULL;
    if (loop->signalled) {
        uint64_t v;
        ssize_t r = read(loop->efd, &v, sizeof(v));
        (void)r;
        loop->signalled = false;
    }
    pthread_mutex_unlock(&loop->mu);

    while ((ev = loop->proc_head)) {
        loop->proc_head = ev->next;
        handle_event(loop, ev);
        n++;
    }
    atomic_fetch_add_explicit(&loop->events, (uint64_t)n, memory_order_relaxed);

    now = sim_clock_ms();
    if (now >= loop->next_tick) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        /* n_targets is re-read: a tick may detach a target (swap-remove). */
        for (size_t i = 0; i < loop->n_targets; i++) {
            struct sim_loop_target *t = loop->targets[i];
            if (t->on_tick)
                t->on_tick(t, now);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        atomic_fetch_add_explicit(&loop->tick_ns,
                                  (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL +
                                             (b.tv_nsec - a.tv_nsec)),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&loop->ticks, 1, memory_order_relaxed);
        loop->next_tick += loop->tick_ms;
        if (loop->next_tick <= now) /* we were late: do not try to catch up in a burst */
            loop->next_tick = now + loop->tick_ms;
    }
    return n;
}

int sim_loop_timeout_ms(const struct sim_loop *loop)
{
    uint64_t now = sim_clock_ms();

    return loop->next_tick > now ? (int)(loop->next_tick - now) : 0;
}

int sim_loop_fd(const struct sim_loop *loop)
{
    return loop->epfd;
}

/* Block until the epoll fd is readable, up to timeout_ms (bounded by the next tick). Only
   blocks: the readiness itself is collected under exec (collect_ready). */
static void wait_events(struct sim_loop *loop, int timeout_ms)
{
    struct pollfd pfd = { .fd = loop->epfd, .events = POLLIN };
    int until_tick = sim_loop_timeout_ms(loop);

    if (timeout_ms < 0 || timeout_ms > until_tick)
        timeout_ms = until_tick;
    if (timeout_ms > 0)
        (void)poll(&pfd, 1, timeout_ms); /* EINTR: just go round */
}

/* Collect what is ready now and run the ready watches. Owner side, exec held. Returns
   whether the queue's eventfd was among them. */
static bool run_ready_watches(struct sim_loop *loop)
{
    bool queue_ready = false;
    int n = epoll_wait(loop->epfd, loop->ready, LOOP_BATCH_MAX, 0);

    loop->n_ready = n > 0 ? n : 0;
    for (loop->i_ready = 0; loop->i_ready < loop->n_ready; loop->i_ready++) {
        struct epoll_event *e = &loop->ready[loop->i_ready];
        if (e->data.ptr == &loop->efd) {
            queue_ready = true;
        } else if (e->data.ptr) {
            struct sim_loop_watch *w = e->data.ptr;
            w->on_ready(w, e->events);
        }
    }
    loop->n_ready = loop->i_ready = 0;
    return queue_ready;
}

/* ------------------------------------------------------------------ watches */

/* Under watch_mu. */
static int watch_ctl(struct sim_loop *loop, int op, struct sim_loop_watch *w, uint32_t events)
{
    struct epoll_event ee = { .events = events, .data.ptr = w };

    if (epoll_ctl(loop->epfd, op, w->fd, &ee) < 0)
        return SIM_ERR_IO;
    w->armed = events;
    return SIM_OK;
}

int sim_loop_watch_add(struct sim_loop *loop, struct sim_loop_watch *w, uint32_t events)
{
    pthread_mutex_lock(&loop->watch_mu);
    int rc = watch_ctl(loop, EPOLL_CTL_ADD, w, events);
    pthread_mutex_unlock(&loop->watch_mu);
    return rc;
}

int sim_loop_watch_set(struct sim_loop *loop, struct sim_loop_watch *w, uint32_t events)
{
    int rc = SIM_OK;

    pthread_mutex_lock(&loop->watch_mu);
    if (w->armed != events)
        rc = watch_ctl(loop, EPOLL_CTL_MOD, w, events);
    pthread_mutex_unlock(&loop->watch_mu);
    return rc;
}

void sim_loop_watch_remove(struct sim_loop *loop, struct sim_loop_watch *w)
{
    pthread_mutex_lock(&loop->watch_mu);
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->armed = 0;
    pthread_mutex_unlock(&loop->watch_mu);
    /* A readiness of this round not yet handled must not reach a freed watch. */
    for (int i = loop->i_ready; i < loop->n_ready; i++)
        if (loop->ready[i].data.ptr == w)
            loop->ready[i].data.ptr = NULL;
}

/* ------------------------------------------------------------------ running */

int sim_loop_run_once(struct sim_loop *loop, int timeout_ms)
{
    int n;

    if (tl_current == loop)
        return SIM_ERR_STATE; /* re-entered from a handler */
    pthread_mutex_lock(&loop->mu);
    if (loop->thread_running) {
        pthread_mutex_unlock(&loop->mu);
        return SIM_ERR_STATE;
    }
    pthread_mutex_unlock(&loop->mu);

    wait_events(loop, timeout_ms);
    pthread_mutex_lock(&loop->exec);
    pthread_mutex_lock(&loop->mu);
    loop->owner_active = true;
    pthread_mutex_unlock(&loop->mu);
    tl_current = loop;
    (void)run_ready_watches(loop);
    n = drain_and_tick(loop);
    tl_current = NULL;
    pthread_mutex_lock(&loop->mu);
    loop->owner_active = false;
    pthread_mutex_unlock(&loop->mu);
    pthread_mutex_unlock(&loop->exec);
    return n;
}

/* Until until_us (sim_clock_us), unless a thread waits in sim_loop_call or comes to: the
   caller signals batch_cv under mu after counting itself, so none is missed. */
static void batch_wait(struct sim_loop *loop, uint64_t until_us)
{
    pthread_mutex_lock(&loop->mu);
    while (atomic_load(&loop->callers_waiting) == 0 && !atomic_load(&loop->stop_requested)) {
        uint64_t now = sim_clock_us();
        if (now >= until_us)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (until_us - now) * 1000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&loop->batch_cv, &loop->mu, &ts);
    }
    pthread_mutex_unlock(&loop->mu);
}

static void *loop_thread(void *arg)
{
    struct sim_loop *loop = arg;
    uint64_t last_drain_us = 0;

    pthread_setname_np(pthread_self(), loop->name);
    tl_current = loop;
    while (!atomic_load(&loop->stop_requested)) {
        wait_events(loop, -1);
        pthread_mutex_lock(&loop->exec);
        bool queue_ready = run_ready_watches(loop);
        /* At most one drain per batch_us: what arrives meanwhile joins this one. Not while a
           thread waits in sim_loop_call: it is no load to gather, and holding it would cost
           every create, start, stop and destroy of a device a batch (10 ms in a fleet:
           1,000 devices took 5 s to create and as long to destroy). */
        if (loop->batch_us && queue_ready) {
            pthread_mutex_unlock(&loop->exec);
            batch_wait(loop, last_drain_us + loop->batch_us);
            last_drain_us = sim_clock_us();
            pthread_mutex_lock(&loop->exec);
        }
        drain_and_tick(loop);
        pthread_mutex_unlock(&loop->exec);
    }
    /* From here on sim_loop_call runs directly; serve the calls posted before that. */
    pthread_mutex_lock(&loop->exec);
    pthread_mutex_lock(&loop->mu);
    loop->owner_active = false;
    pthread_mutex_unlock(&loop->mu);
    drain_and_tick(loop);
    pthread_mutex_unlock(&loop->exec);
    tl_current = NULL;
    return NULL;
}

int sim_loop_start_thread(struct sim_loop *loop)
{
    int rc;

    pthread_mutex_lock(&loop->mu);
    if (loop->thread_running || loop->owner_active) {
        pthread_mutex_unlock(&loop->mu);
        return SIM_ERR_STATE;
    }
    /* owner_active before the thread exists: from now on calls are posted to it. */
    loop->owner_active = true;
    loop->thread_running = true;
    atomic_store(&loop->stop_requested, false);
    pthread_mutex_unlock(&loop->mu);
    rc = pthread_create(&loop->thread, NULL, loop_thread, loop);
    if (rc != 0) {
        pthread_mutex_lock(&loop->mu);
        loop->owner_active = false;
        loop->thread_running = false;
        pthread_mutex_unlock(&loop->mu);
        return SIM_ERR_IO;
    }
    return SIM_OK;
}

int sim_loop_stop(struct sim_loop *loop)
{
    static const uint64_t one = 1;
    ssize_t n;

    pthread_mutex_lock(&loop->mu);
    if (!loop->thread_running) {
        pthread_mutex_unlock(&loop->mu);
        return SIM_ERR_STATE;
    }
    atomic_store(&loop->stop_requested, true);
    loop->signalled = true;
    n = write(loop->efd, &one, sizeof(one)); /* wake it from poll() */
    (void)n;
    pthread_mutex_unlock(&loop->mu);
    pthread_join(loop->thread, NULL);
    pthread_mutex_lock(&loop->mu);
    loop->thread_running = false;
    pthread_mutex_unlock(&loop->mu);
    return SIM_OK;
}

void sim_loop_stats(struct sim_loop *loop, struct sim_loop_stats *out)
{
    out->ticks = atomic_load_explicit(&loop->ticks, memory_order_relaxed);
    out->events = atomic_load_explicit(&loop->events, memory_order_relaxed);
    out->tick_ns_total = atomic_load_explicit(&loop->tick_ns, memory_order_relaxed);
    out->targets = atomic_load_explicit(&loop->n_targets_pub, memory_order_relaxed);
}
