/*
 * test_loop.c - the event loop: ordering, posting from other threads, calls, ticks,
 * detaching, and both ways of running it (own thread, caller-driven with the fd).
 */
#include <sched.h>
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "sim/clock.h"
#include "sim/err.h"
#include "sim/loop.h"

/* A target that records the tokens of PUBLISHED events in order, and counts ticks. */
struct recorder {
    struct sim_loop_target t;
    uint32_t seen[4096];
    size_t n;
    atomic_int ticks;
    pthread_t owner;
};

static void rec_event(struct sim_loop_target *t, const struct sim_event *ev)
{
    struct recorder *r = (struct recorder *)t;

    r->owner = pthread_self();
    if (r->n < 4096)
        r->seen[r->n++] = ev->token;
}

static void rec_tick(struct sim_loop_target *t, uint64_t now)
{
    (void)now;
    atomic_fetch_add(&((struct recorder *)t)->ticks, 1);
}

static void push_token(struct sim_loop *loop, struct recorder *r, uint32_t token)
{
    struct sim_event *ev = sim_event_new(SIM_EV_PUBLISHED, &r->t, NULL, NULL, 0, NULL);
    ck_assert_ptr_nonnull(ev);
    ev->token = token;
    sim_loop_push(loop, ev);
}

static void snapshot_count(void *arg)
{
    struct recorder *r = arg;
    r->seen[4095] = (uint32_t)r->n; /* read on the owner: no race */
}

START_TEST(events_from_one_producer_are_handled_in_the_order_pushed)
{
    struct sim_loop *loop;
    struct recorder r = { .t = { rec_event, rec_tick, NULL, 0 } };

    ck_assert_int_eq(sim_loop_create(NULL, &loop), SIM_OK);
    ck_assert_int_eq(sim_loop_attach(loop, &r.t), SIM_OK);
    for (uint32_t i = 1; i <= 1000; i++)
        push_token(loop, &r, i);
    ck_assert_int_eq(sim_loop_run_once(loop, 0), 1000);
    ck_assert_uint_eq(r.n, 1000);
    for (uint32_t i = 0; i < 1000; i++)
        ck_assert_uint_eq(r.seen[i], i + 1);
    sim_loop_detach(loop, &r.t);
    sim_loop_free(loop);
}
END_TEST

struct producer {
    struct sim_loop *loop;
    struct recorder *r;
    uint32_t base;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (uint32_t i = 0; i < 1000; i++)
        push_token(p->loop, p->r, p->base + i);
    return NULL;
}

START_TEST(events_pushed_from_other_threads_run_on_the_loop_thread_in_each_producers_order)
{
    struct sim_loop *loop;
    struct recorder r = { .t = { rec_event, NULL, NULL, 0 } };
    pthread_t th[3];
    struct producer p[3];
    uint32_t last[3] = { 0, 0, 0 };
    uint64_t deadline;

    ck_assert_int_eq(sim_loop_create(NULL, &loop), SIM_OK);
    ck_assert_int_eq(sim_loop_attach(loop, &r.t), SIM_OK);
    ck_assert_int_eq(sim_loop_start_thread(loop), SIM_OK);
    for (int i = 0; i < 3; i++) {
        p[i] = (struct producer){ loop, &r, (uint32_t)(i + 1) * 100000u };
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    deadline = sim_clock_ms() + 10000;
    do {
        sim_loop_call(loop, snapshot_count, &r);
        if (r.seen[4095] >= 3000)
            break;
        usleep(5000);
    } while (sim_clock_ms() < deadline);
    ck_assert_int_eq(sim_loop_stop(loop), SIM_OK);
    ck_assert_uint_eq(r.n, 3000);
    ck_assert(!pthread_equal(r.owner, pthread_self()));
    for (size_t i = 0; i < r.n; i++) {
        int k = (int)(r.seen[i] / 100000u) - 1;
        ck_assert_int_ge(k, 0);
        ck_assert_int_lt(k, 3);
        ck_assert_uint_gt(r.seen[i], last[k]); /* per producer: increasing */
        last[k] = r.seen[i];
    }
    sim_loop_detach(loop, &r.t);
    sim_loop_free(loop);
}
END_TEST

struct where {
    pthread_t ran_on;
    atomic_int runs;
};

static void note_thread(void *arg)
{
    struct where *w = arg;
    w->ran_on = pthread_self();
    atomic_fetch_add(&w->runs, 1);
}

START_TEST(a_posted_closure_runs_on_the_owner_thread_and_a_call_waits_for_it)
{
    struct sim_loop *loop;
    struct where posted = { 0 }, called = { 0 };

    ck_assert_int_eq(sim_loop_create(NULL, &loop), SIM_OK);
    ck_assert_int_eq(sim_loop_start_thread(loop), SIM_OK);
    ck_assert_int_eq(sim_loop_post(loop, note_thread, &posted), SIM_OK);
    ck_assert_int_eq(sim_loop_call(loop, note_thread, &called), SIM_OK);
    /* The call returned: it ran, on the loop thread, after the post (FIFO). */
    ck_assert_int_eq(atomic_load(&called.runs), 1);
    ck_assert_int_eq(atomic_load(&posted.runs), 1);
    ck_assert(!pthread_equal(called.ran_on, pthread_self()));
    ck_assert(pthread_equal(called.ran_on, posted.ran_on));
    ck_assert_int_eq(sim_loop_stop(loop), SIM_OK);
    /* Stopped: a call now runs directly on the caller. */
    ck_assert_int_eq(sim_loop_call(loop, note_thread, &called), SIM_OK);
    ck_assert(pthread_equal(called.ran_on, pthread_self()));
    sim_loop_free(loop);
}
END_TEST

static void stamp(void *arg)
{
    atomic_store((_Atomic uint64_t *)arg, sim_clock_us());
}

/* With batch_us, a loop thread drains at most once per batch_us: an event that comes right
   after a drain waits for the next one. A thread blocked in sim_loop_call is not held: its
   drain comes at once and takes what waits with it. */
START_TEST(a_batching_loop_handles_events_at_most_once_per_batch_but_never_holds_a_call)
{
    struct sim_loop_opts o;
    struct sim_loop *loop;
    _Atomic uint64_t first = 0, second = 0, third = 0, fourth = 0;
    uint64_t asked, end;

    sim_loop_opts_defaults(&o);
    o.batch_us = 200000;
    ck_assert_int_eq(sim_loop_create(&o, &loop), SIM_OK);
    ck_assert_int_eq(sim_loop_start_thread(loop), SIM_OK);
    /* the first drain of an idle loop comes at once */
    ck_assert_int_eq(sim_loop_call(loop, stamp, &first), SIM_OK);
    /* a posted event right after it waits for the next drain, 200 ms after the first */
    ck_assert_int_eq(sim_loop_post(loop, stamp, &second), SIM_OK);
    end = sim_clock_us() + 2000000;
    while (atomic_load(&second) == 0 && sim_clock_us() < end)
        usleep(1000);
    ck_assert_msg(atomic_load(&second) >= atomic_load(&first) + 190000,
                  "posted event handled %llu us after the first drain, expected >= 190000",
                  (unsigned long long)(atomic_load(&second) - atomic_load(&first)));
    /* a call right after that drain is not held for the next one; an event posted before
       it goes in the same drain */
    ck_assert_int_eq(sim_loop_post(loop, stamp, &third), SIM_OK);
    asked = sim_clock_us();
    ck_assert_int_eq(sim_loop_call(loop, stamp, &fourth), SIM_OK);
    ck_assert_msg(atomic_load(&fourth) < asked + 100000,
                  "a call waited %llu us for the batch",
                  (unsigned long long)(atomic_load(&fourth) - asked));
    ck_assert_uint_ne(atomic_load(&third), 0);
    ck_assert_uint_le(atomic_load(&third), atomic_load(&fourth));
    ck_assert_int_eq(sim_loop_stop(loop), SIM_OK);
    sim_loop_free(loop);
}
END_TEST

START_TEST(the_fd_is_readable_while_events_wait_and_run_once_drains_them)
{
    struct sim_loop *loop;
    struct where w = { 0 };
    struct pollfd pfd;

    ck_assert_int_eq(sim_loop_create(NULL, &loop), SIM_OK);
    pfd = (struct pollfd){ .fd = sim_loop_fd(loop), .events = POLLIN };
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    ck_assert_int_eq(sim_loop_post(loop, note_thread, &w), SIM_OK);
    ck_assert_int_eq(poll(&pfd, 1, 0), 1);
    ck_assert_int_eq(sim_loop_run_once(loop, 0), 1);
    ck_assert_int_eq(atomic_load(&w.runs), 1);
    ck_assert(pthread_equal(w.ran_on, pthread_self()));
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    /* A threaded loop refuses to be driven by a caller as well. */
    ck_assert_int_eq(sim_loop_start_thread(loop), SIM_OK);
    ck_assert_int_eq(sim_loop_run_once(loop, 0), SIM_ERR_STATE);
    ck_assert_int_eq(sim_loop_start_thread(loop), SIM_ERR_STATE);
    ck_assert_int_eq(sim_loop_stop(loop), SIM_OK);
    sim_loop_free(loop);
}
END_TEST

START_TEST(targets_are_ticked_at_the_set_interval)
{
    struct sim_loop_opts o;
    struct sim_loop *loop;
    struct recorder r = { .t = { rec_event, rec_tick, NULL, 0 } };
    struct sim_loop_stats st;
    uint64_t start, elapsed;
    int ticks;

    sim_loop_opts_defaults(&o);
    o.tick_ms = 20;
    ck_assert_int_eq(sim_loop_create(&o, &loop), SIM_OK);
    ck_assert_int_eq(sim_loop_attach(loop, &r.t), SIM_OK);
    start = sim_clock_ms();
    while (atomic_load(&r.ticks) < 10 && sim_clock_ms() - start < 10000)
        sim_loop_run_once(loop, -1);
    elapsed = sim_clock_ms() - start;
    ticks = atomic_load(&r.ticks);
    ck_assert_int_eq(ticks, 10);
    /* 10 ticks at 20 ms cannot take less than ~180 ms (the first is due 20 ms after
       create), and on a loaded machine stay well under 10 s. */
    ck_assert_uint_ge(elapsed, 170);
    sim_loop_stats(loop, &st);
    ck_assert_uint_eq(st.ticks, 10);
    ck_assert_uint_eq(st.targets, 1);
    sim_loop_detach(loop, &r.t);
    sim_loop_free(loop);
}
END_TEST

START_TEST(detaching_a_target_drops_its_queued_events_but_not_others)
{
    struct sim_loop *loop;
    struct recorder a = { .t = { rec_event, NULL, NULL, 0 } };
    struct recorder b = { .t = { rec_event, NULL, NULL, 0 } };

    ck_assert_int_eq(sim_loop_create(NULL, &loop), SIM_OK);
    ck_assert_int_eq(sim_loop_attach(loop, &a.t), SIM_OK);
    ck_assert_int_eq(sim_loop_attach(loop, &b.t), SIM_OK);
    push_token(loop, &a, 1);
    push_token(loop, &b, 2);
    push_token(loop, &a, 3);
    sim_loop_detach(loop, &a.t);
    ck_assert_int_eq(sim_loop_run_once(loop, 0), 1);
    ck_assert_uint_eq(a.n, 0);
    ck_assert_uint_eq(b.n, 1);
    ck_assert_uint_eq(b.seen[0], 2);
    sim_loop_detach(loop, &b.t);
    sim_loop_free(loop);
}
END_TEST

static void free_arg(void *arg)
{
    free(arg);
}

START_TEST(closures_still_queued_when_the_loop_is_freed_are_run_not_leaked)
{
    struct sim_loop *loop;

    ck_assert_int_eq(sim_loop_create(NULL, &loop), SIM_OK);
    ck_assert_int_eq(sim_loop_post(loop, free_arg, malloc(32)), SIM_OK);
    sim_loop_free(loop); /* ASan reports a leak if the closure did not run */
}
END_TEST

/* A bare target for the benchmark: only counts its ticks. */
struct ticker {
    struct sim_loop_target t;
    atomic_int ticks;
};

static void ticker_tick(struct sim_loop_target *t, uint64_t now)
{
    (void)now;
    atomic_fetch_add(&((struct ticker *)t)->ticks, 1);
}

/* Ticking many targets is cheap: the loop's own overhead per target per tick. */
START_TEST(ticking_ten_thousand_targets_costs_microseconds_per_tick)
{
    enum { N = 10000 };
    struct sim_loop_opts o;
    struct sim_loop *loop;
    struct ticker *r = calloc(N, sizeof(*r));
    struct sim_loop_stats st;
    uint64_t start;

    ck_assert_ptr_nonnull(r);
    sim_loop_opts_defaults(&o);
    o.tick_ms = 5;
    ck_assert_int_eq(sim_loop_create(&o, &loop), SIM_OK);
    for (int i = 0; i < N; i++) {
        r[i].t.on_tick = ticker_tick;
        ck_assert_int_eq(sim_loop_attach(loop, &r[i].t), SIM_OK);
    }
    start = sim_clock_ms();
    do
        sim_loop_run_once(loop, -1);
    while (sim_loop_stats(loop, &st), st.ticks < 20 && sim_clock_ms() - start < 20000);
    ck_assert_uint_eq(st.ticks, 20);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&r[i].ticks), 20);
    fprintf(stderr, "loop overhead: %.1f us per tick of %d targets\n",
            (double)st.tick_ns_total / (double)st.ticks / 1000.0, N);
    for (int i = 0; i < N; i++)
        sim_loop_detach(loop, &r[i].t);
    sim_loop_stats(loop, &st);
    ck_assert_uint_eq(st.targets, 0);
    sim_loop_free(loop);
    free(r);
}
END_TEST

/* ------------------------------------------------------------------ watches */

struct pipe_watch {
    struct sim_loop_watch w;
    struct sim_loop *loop;
    int fds[2];
    atomic_int runs;
    atomic_uint last_events;
    atomic_bool on_owner;
    atomic_int set_backs; /* EPOLLOUT runs that have set the watch back to EPOLLIN */
    struct pipe_watch *victim; /* removed (and its pipe drained) from this on_ready */
};

static void pipe_on_ready(struct sim_loop_watch *w, uint32_t events)
{
    struct pipe_watch *p = (struct pipe_watch *)w;
    char buf[64];

    atomic_store(&p->on_owner, sim_loop_on_owner_thread(p->loop));
    atomic_store(&p->last_events, events);
    atomic_fetch_add(&p->runs, 1);
    if (events & EPOLLIN)
        while (read(p->fds[0], buf, sizeof(buf)) > 0) {
        }
    if (p->victim) {
        sim_loop_watch_remove(p->loop, &p->victim->w);
        p->victim = NULL;
    }
    if (events & EPOLLOUT) { /* once is enough */
        sim_loop_watch_set(p->loop, w, EPOLLIN);
        atomic_fetch_add(&p->set_backs, 1);
    }
}

static void pipe_watch_init(struct pipe_watch *p, struct sim_loop *loop, bool write_end)
{
    memset(p, 0, sizeof(*p));
    ck_assert_int_eq(pipe2(p->fds, O_NONBLOCK | O_CLOEXEC), 0);
    p->loop = loop;
    p->w.fd = write_end ? p->fds[1] : p->fds[0];
    p->w.on_ready = pipe_on_ready;
}

static void pipe_watch_close(struct pipe_watch *p)
{
    close(p->fds[0]);
    close(p->fds[1]);
}

static bool wait_runs(struct pipe_watch *p, int n, int ms)
{
    for (int i = 0; i < ms && atomic_load(&p->runs) < n; i++)
        usleep(1000);
    return atomic_load(&p->runs) >= n;
}

START_TEST(a_readable_pipe_runs_its_watch_on_the_loop_thread)
{
    struct sim_loop *loop;
    struct pipe_watch p;

    ck_assert_int_eq(sim_loop_create(NULL, &loop), 0);
    pipe_watch_init(&p, loop, false);
    ck_assert_int_eq(sim_loop_start_thread(loop), 0);
    ck_assert_int_eq(sim_loop_watch_add(loop, &p.w, EPOLLIN), 0);
    ck_assert_int_eq(atomic_load(&p.runs), 0);
    ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
    ck_assert(wait_runs(&p, 1, 2000));
    ck_assert(atomic_load(&p.on_owner));
    ck_assert(atomic_load(&p.last_events) & EPOLLIN);
    sim_loop_stop(loop);
    sim_loop_watch_remove(loop, &p.w);
    pipe_watch_close(&p);
    sim_loop_free(loop);
}
END_TEST

START_TEST(a_watch_set_to_epollout_reports_a_writable_pipe)
{
    struct sim_loop *loop;
    struct pipe_watch p;

    ck_assert_int_eq(sim_loop_create(NULL, &loop), 0);
    pipe_watch_init(&p, loop, true);
    ck_assert_int_eq(sim_loop_watch_add(loop, &p.w, EPOLLIN), 0);
    ck_assert_int_eq(sim_loop_start_thread(loop), 0);
    usleep(100 * 1000);
    ck_assert_int_eq(atomic_load(&p.runs), 0); /* the write end is never readable */
    ck_assert_int_eq(sim_loop_watch_set(loop, &p.w, EPOLLIN | EPOLLOUT), 0);
    ck_assert(wait_runs(&p, 1, 2000));
    ck_assert(atomic_load(&p.last_events) & EPOLLOUT);
    usleep(100 * 1000);
    ck_assert_int_eq(atomic_load(&p.runs), 1); /* set back to EPOLLIN by the handler */
    sim_loop_stop(loop);
    sim_loop_watch_remove(loop, &p.w);
    pipe_watch_close(&p);
    sim_loop_free(loop);
}
END_TEST

/* Another thread arms EPOLLOUT while the owner's handler sets it back, over and over: the
   loop's record of what is armed must never drift from epoll's. Drift shows as a set that
   is skipped (no run comes: the write readiness is lost) or as a handler that runs again
   and again (EPOLLOUT stays armed). */
START_TEST(watch_sets_from_another_thread_and_the_owner_never_lose_or_leave_epollout)
{
    enum { ROUNDS = 20000 };
    struct sim_loop *loop;
    struct pipe_watch p;

    ck_assert_int_eq(sim_loop_create(NULL, &loop), 0);
    pipe_watch_init(&p, loop, true);
    ck_assert_int_eq(sim_loop_watch_add(loop, &p.w, EPOLLIN), 0);
    ck_assert_int_eq(sim_loop_start_thread(loop), 0);
    for (int i = 0; i < ROUNDS; i++) {
        ck_assert_int_eq(sim_loop_watch_set(loop, &p.w, EPOLLIN | EPOLLOUT), 0);
        int waited = 0;
        while (atomic_load(&p.set_backs) <= i && waited++ < 2000000)
            sched_yield();
        ck_assert_msg(atomic_load(&p.set_backs) > i, "round %d: EPOLLOUT armed, never reported", i);
        ck_assert_msg(atomic_load(&p.runs) == i + 1, "round %d: %d runs, expected %d", i,
                      atomic_load(&p.runs), i + 1);
    }
    usleep(50 * 1000);
    ck_assert_int_eq(atomic_load(&p.runs), ROUNDS);
    sim_loop_stop(loop);
    sim_loop_watch_remove(loop, &p.w);
    pipe_watch_close(&p);
    sim_loop_free(loop);
}
END_TEST

START_TEST(removing_a_watch_ready_in_the_same_round_drops_its_readiness)
{
    struct sim_loop *loop;
    struct pipe_watch a, b;

    ck_assert_int_eq(sim_loop_create(NULL, &loop), 0);
    pipe_watch_init(&a, loop, false);
    pipe_watch_init(&b, loop, false);
    a.victim = &b;
    b.victim = &a;
    ck_assert_int_eq(sim_loop_watch_add(loop, &a.w, EPOLLIN), 0);
    ck_assert_int_eq(sim_loop_watch_add(loop, &b.w, EPOLLIN), 0);
    ck_assert_int_eq(write(a.fds[1], "x", 1), 1);
    ck_assert_int_eq(write(b.fds[1], "x", 1), 1);
    /* Both are ready in one batch: whichever runs first removes the other. */
    sim_loop_run_once(loop, 100);
    ck_assert_int_eq(atomic_load(&a.runs) + atomic_load(&b.runs), 1);
    sim_loop_run_once(loop, 50);
    ck_assert_int_eq(atomic_load(&a.runs) + atomic_load(&b.runs), 1);
    if (atomic_load(&a.runs))
        sim_loop_watch_remove(loop, &a.w);
    else
        sim_loop_watch_remove(loop, &b.w);
    pipe_watch_close(&a);
    pipe_watch_close(&b);
    sim_loop_free(loop);
}
END_TEST

START_TEST(a_caller_driven_loop_sees_a_watch_through_its_fd_and_run_once)
{
    struct sim_loop *loop;
    struct pipe_watch p;
    struct pollfd pfd;

    ck_assert_int_eq(sim_loop_create(NULL, &loop), 0);
    pipe_watch_init(&p, loop, false);
    ck_assert_int_eq(sim_loop_watch_add(loop, &p.w, EPOLLIN), 0);
    pfd.fd = sim_loop_fd(loop);
    pfd.events = POLLIN;
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    ck_assert_int_eq(write(p.fds[1], "x", 1), 1);
    ck_assert_int_eq(poll(&pfd, 1, 1000), 1);
    sim_loop_run_once(loop, 0);
    ck_assert_int_eq(atomic_load(&p.runs), 1);
    ck_assert(atomic_load(&p.on_owner));
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    sim_loop_watch_remove(loop, &p.w);
    pipe_watch_close(&p);
    sim_loop_free(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_loop");
    TCase *tc = tcase_create("loop");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, events_from_one_producer_are_handled_in_the_order_pushed);
    tcase_add_test(tc, events_pushed_from_other_threads_run_on_the_loop_thread_in_each_producers_order);
    tcase_add_test(tc, a_posted_closure_runs_on_the_owner_thread_and_a_call_waits_for_it);
    tcase_add_test(tc, a_batching_loop_handles_events_at_most_once_per_batch_but_never_holds_a_call);
    tcase_add_test(tc, the_fd_is_readable_while_events_wait_and_run_once_drains_them);
    tcase_add_test(tc, targets_are_ticked_at_the_set_interval);
    tcase_add_test(tc, detaching_a_target_drops_its_queued_events_but_not_others);
    tcase_add_test(tc, closures_still_queued_when_the_loop_is_freed_are_run_not_leaked);
    tcase_add_test(tc, ticking_ten_thousand_targets_costs_microseconds_per_tick);
    tcase_add_test(tc, a_readable_pipe_runs_its_watch_on_the_loop_thread);
    tcase_add_test(tc, a_watch_set_to_epollout_reports_a_writable_pipe);
    tcase_add_test(tc, watch_sets_from_another_thread_and_the_owner_never_lose_or_leave_epollout);
    tcase_add_test(tc, removing_a_watch_ready_in_the_same_round_drops_its_readiness);
    tcase_add_test(tc, a_caller_driven_loop_sees_a_watch_through_its_fd_and_run_once);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
