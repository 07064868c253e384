/*
 * sim/loop.h - the event loop that owns devices: one thread, a queue, a tick.
 *
 * Paho calls back on its own threads, a keyboard or a scripted operator runs on theirs;
 * firmware_core must only ever be called from the one thread that owns a device. A
 * struct sim_loop is that thread's inbox: any thread pushes events (transport outcomes,
 * received messages, closures) onto a mutex-protected FIFO; the owning thread drains it
 * and, every tick_ms, ticks every attached target (a device). One loop drives any number
 * of devices (the fleet: one loop per core with thousands of devices each; the demo: one
 * loop driven from its ncurses main thread).
 *
 * Two ways to run a loop:
 *   - sim_loop_start_thread() / sim_loop_stop(): the loop has its own thread;
 *   - sim_loop_fd() + sim_loop_timeout_ms() + sim_loop_run_once(): the caller's thread is
 *     the owner; poll() the fd (readable when events are queued) together with stdin.
 *
 * Ordering: events are handled in the order they were pushed (FIFO across all producers;
 * per producer, in its order), so a device sees its transport's events in order.
 *
 * Ownership: the loop owns queued events and frees them after handling (handlers borrow the
 * event for the call). Targets are owned by their creator and must be detached (which also
 * drops their queued events) before they are freed. Closures' args belong to the poster.
 */
#ifndef SIM_LOOP_H
#define SIM_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sim_loop;
struct sim_loop_target;

/* ------------------------------------------------------------- events */

enum sim_event_kind {
    SIM_EV_CONNECTED = 0,   /* session_present */
    SIM_EV_CONNECT_FAILED,  /* code, words */
    SIM_EV_CONNECTION_LOST, /* words */
    SIM_EV_MESSAGE,         /* topic, payload, len, qos, dup, retain */
    SIM_EV_PUBLISHED,       /* token */
    SIM_EV_CALL,            /* fn(arg) on the owning thread (internal: sim_loop_post) */
    SIM_EV_TAG,             /* payload = RFID UID, len bytes (sim_device_post_tag) */
    SIM_EV_BUTTON,          /* code = enum fw_button (sim_device_post_button) */
    SIM_EV_PUBLISH_REFUSED, /* token, code: the broker's reason code (>= 0x80, MQTT 5
                               PUBACK) or a negative fw_err when the publish was lost */
    SIM_EV_SUBSCRIBED,      /* token, code: the SUBACK's granted QoS (0..2), its refusal
                               (>= 0x80) or a negative fw_err when the request was lost */
};

typedef void (*sim_loop_fn)(void *arg);

/* One queued event. Allocated with sim_event_new() (strings and payload inline, one
   allocation), handed to the loop with sim_loop_push(), freed by the loop. */
struct sim_event {
    struct sim_event *next;          /* queue link (loop-private) */
    struct sim_loop_target *target;  /* who handles it; NULL for SIM_EV_CALL */
    enum sim_event_kind kind;
    uint32_t generation;             /* producer-defined (the transport drops stale ones) */
    bool session_present;            /* CONNECTED */
    bool dup;                        /* MESSAGE */
    bool retain;                     /* MESSAGE */
    int qos;                         /* MESSAGE */
    int code;                        /* CONNECT_FAILED: CONNACK / reason code or negative
                                        fw_err; PUBLISH_REFUSED: reason code or negative
                                        fw_err; SUBSCRIBED: granted QoS, refusal or
                                        negative fw_err; BUTTON: the button */
    uint32_t token;                  /* PUBLISHED, PUBLISH_REFUSED, SUBSCRIBED */
    const char *topic;               /* MESSAGE: NUL-terminated, inside this allocation */
    const void *payload;             /* MESSAGE: len bytes (+ a NUL for convenience) */
    size_t len;
    const char *words;               /* CONNECT_FAILED / CONNECTION_LOST: for people */
    sim_loop_fn fn;                  /* CALL */
    void *arg;                       /* CALL */
    void *done;                      /* CALL: loop-private completion for sim_loop_call */
    char data[];                     /* topic, payload, words */
};

/**
 * Allocate an event with room for a topic, a payload and words (any may be NULL / 0),
 * copied inline. Callable from any thread (Paho callbacks use it). NULL when out of memory.
 */
struct sim_event *sim_event_new(enum sim_event_kind kind, struct sim_loop_target *target,
                                const char *topic, const void *payload, size_t len,
                                const char *words);

/* A consumer of events, attached to one loop: a device. Embed it in your object. */
struct sim_loop_target {
    /* Handle one event on the owning thread. */
    void (*on_event)(struct sim_loop_target *t, const struct sim_event *ev);
    /* Let time pass (called every tick_ms on the owning thread), may be NULL. */
    void (*on_tick)(struct sim_loop_target *t, uint64_t now_ms);
    /* loop-private */
    struct sim_loop *loop;
    size_t index; /* position in the loop's tick list */
};

/* ------------------------------------------------------------- the loop */

#define SIM_LOOP_OPTS_VERSION 1

struct sim_loop_opts {
    int version;      /* SIM_LOOP_OPTS_VERSION */
    unsigned tick_ms; /* how often targets are ticked; 0 = 50 ms */
    const char *name; /* for the thread name and logs ("loop-0"); copied; may be NULL */
    /* A loop thread (sim_loop_start_thread) handles its events at most once every
       batch_us: events that arrive meanwhile wait and are handled together. A loop that
       was idle for batch_us handles the first event at once. Under load one wake-up of the
       loop, and of Paho's send thread for the publishes it makes, serves many events
       instead of one each. A sim_loop_call is not held: its drain comes at once, with
       whatever waits. 0 (the default): handle every event as soon as it comes. */
    unsigned batch_us;
};

/** Fill opts with defaults (50 ms tick). */
void sim_loop_opts_defaults(struct sim_loop_opts *opts);

/** Create a loop (no thread yet). opts may be NULL. 0 or SIM_ERR_NOMEM / SIM_ERR_IO
 *  (eventfd failed). */
int sim_loop_create(const struct sim_loop_opts *opts, struct sim_loop **out);

/** Stop the thread if running, run closures still queued (on the calling thread), drop
 *  other events, free. Targets must have been detached. NULL is fine. */
void sim_loop_free(struct sim_loop *loop);

/** Push an event (from sim_event_new) onto the queue; any thread, never blocks for long
 *  (one mutex, no allocation). The loop takes ownership. Safe inside Paho callbacks. */
void sim_loop_push(struct sim_loop *loop, struct sim_event *ev);

/** Run fn(arg) on the owning thread, asynchronously (at the next drain). Any thread.
 *  0 or SIM_ERR_NOMEM. This is how a keyboard, a scripted operator or the harness inject
 *  tags and buttons into a device safely. */
int sim_loop_post(struct sim_loop *loop, sim_loop_fn fn, void *arg);

/**
 * Run fn(arg) on the owning thread and wait until it returned. Runs it directly when the
 * caller is the owning thread, or when no thread is running the loop at this moment (then
 * the loop's execution lock keeps a later sim_loop_run_once() out until fn returned).
 * Never call it from a Paho callback. 0 or SIM_ERR_NOMEM.
 */
int sim_loop_call(struct sim_loop *loop, sim_loop_fn fn, void *arg);

/** Attach a target (it will be ticked and receive events), on the owning thread (uses
 *  sim_loop_call). 0 or SIM_ERR_NOMEM. */
int sim_loop_attach(struct sim_loop *loop, struct sim_loop_target *t);

/** Detach a target and drop its queued events (uses sim_loop_call). Destroy whatever
 *  pushes events for it (its transport) first. */
void sim_loop_detach(struct sim_loop *loop, struct sim_loop_target *t);

/** Start a thread that owns the loop until sim_loop_stop(). 0, SIM_ERR_STATE (already
 *  running or driven by a caller), SIM_ERR_IO. */
int sim_loop_start_thread(struct sim_loop *loop);

/** Ask the loop thread to finish its current drain and join it. 0 or SIM_ERR_STATE. */
int sim_loop_stop(struct sim_loop *loop);

/** An fd that is readable while events are queued (an eventfd), for poll(). */
int sim_loop_fd(const struct sim_loop *loop);

/** Milliseconds until the next tick is due (0 if overdue): the poll() time-out to use. */
int sim_loop_timeout_ms(const struct sim_loop *loop);

/**
 * Caller-driven loop: wait up to timeout_ms (0 = do not wait, < 0 = until the next tick)
 * for events, then handle all queued events and tick the targets if a tick is due. The
 * calling thread is the owner for the duration. Returns the number of events handled
 * (>= 0), or SIM_ERR_STATE when the loop runs its own thread.
 */
int sim_loop_run_once(struct sim_loop *loop, int timeout_ms);

/** Is the calling thread the one running this loop right now? */
bool sim_loop_on_owner_thread(const struct sim_loop *loop);

/* ------------------------------------------------------------- file descriptors */

/* A file descriptor the loop's thread waits on beside its queue (the mosquitto MQTT edge's
   sockets). The loop waits with epoll; sim_loop_fd() is then the epoll fd, so a
   caller-driven loop polls one fd for both. Embed it in your object. */
struct sim_loop_watch {
    int fd;
    /* The fd is ready: events are EPOLLIN / EPOLLOUT / EPOLLERR / EPOLLHUP bits. Runs on
       the owning thread before the queue's drain of the same round. */
    void (*on_ready)(struct sim_loop_watch *w, uint32_t events);
    /* loop-private */
    uint32_t armed;
};

/** Start waiting for events (EPOLLIN and/or EPOLLOUT) on w->fd; any thread. 0 or
 *  SIM_ERR_IO (epoll_ctl failed; errno kept). */
int sim_loop_watch_add(struct sim_loop *loop, struct sim_loop_watch *w, uint32_t events);

/** Change the events waited for (a no-op when they are the same); any thread. 0 or
 *  SIM_ERR_IO. */
int sim_loop_watch_set(struct sim_loop *loop, struct sim_loop_watch *w, uint32_t events);

/** Stop waiting on w->fd, before it is closed; on the owning thread only (a readiness
 *  already reported in the round under way is dropped). */
void sim_loop_watch_remove(struct sim_loop *loop, struct sim_loop_watch *w);

/** Figures for benchmarks: ticks done, events handled, and the time spent ticking. */
struct sim_loop_stats {
    uint64_t ticks;
    uint64_t events;
    uint64_t tick_ns_total; /* time spent inside on_tick calls */
    size_t targets;
};
/** A copy of the figures; any thread (values may lag by one tick). */
void sim_loop_stats(struct sim_loop *loop, struct sim_loop_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* SIM_LOOP_H */
