/*
 * fleet_internal.h - what the files of the fleet share (sim/fleet/src only): the device,
 * loop and fleet structs, and the operator timers' calls. fleet_devices.c creates, starts,
 * sums and stops the devices; fleet_timers.c wakes each device's scripted operator
 * (sim/fleet_operator.h) from a timer heap and a ready list.
 */
#ifndef SIM_FLEET_INTERNAL_H
#define SIM_FLEET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "sim/fleet_devices.h"
#include "sim/fleet_identity.h"
#include "sim/fleet_operator.h"

/* Device flags (struct fleet_dev.flags). */
#define FD_STARTED 0x01u     /* powered on */
#define FD_READY 0x02u       /* in the loop's ready list */
#define FD_CONNECTED 0x04u   /* connected now (observer's view) */
#define FD_EVER 0x08u        /* connected at least once */

struct fleet_loop;

/* One device and its operator (~100 bytes beside the sim_device). */
struct fleet_dev {
    struct sim_device *dev;
    struct fleet_loop *fl;
    struct fleet_dev *ready_next;
    uint64_t due_ms;        /* operator timer (valid while heap_pos != 0) */
    uint32_t heap_pos;      /* index + 1 in the loop's heap; 0 = no timer */
    uint32_t index;         /* position in the fleet */
    uint32_t flags;
    uint64_t last_seen_ms;  /* last message received (monotonic; 0 = none) */
    struct fleet_operator op;
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
    struct fleet_operator_params op_params; /* from o: think time, rates, retry a tick */
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

/* fleet_timers.c (owner thread only) */
void fleet__op_step(struct fleet_dev *d, uint64_t now);
void fleet__op_serve_ready(void *arg);
struct fleet_dev *fleet__heap_pop_due(struct fleet_loop *fl, uint64_t now);

#endif
