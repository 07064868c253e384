/*
 * fleet_workers.h - split a fleet over K processes (`scansim run --workers K`).
 *
 * Paho's threads serve every client of a process (its maintainers advise about 1,000
 * clients a process) and a process has 20,000 file descriptors here, so a large fleet is
 * split: the parent fork+execs K workers (`run ... --worker-index I`, a hidden flag) with
 * their own --devices / --id-start and the parent's --broker list. A shard is scansim-worker (the devices
 * only, no TLS library) for a plain broker, scansim itself for a TLS one. A shard runs its
 * devices only (no backend) and writes its figures as one JSON line a second on its
 * stdout, a pipe to the parent; it stops cleanly on SIGTERM (or when the parent dies) and
 * writes a last line. The parent runs the backend and adds the shards' latest figures.
 *
 *
 * Supervision: a worker that ends while nobody asked it to (killed, crashed, exited) is
 * noticed when its pipe closes, reaped, and reported once by fleet_workers_next_death with
 * its number, its devices and the cause; from then on its devices count as offline in the
 * figures (connected 0; what they did before still counts).
 *
 * One thread (the caller's) uses these functions.
 */
#ifndef SCANSIM_FLEET_WORKERS_H
#define SCANSIM_FLEET_WORKERS_H

#include <stdbool.h>

#include "sim/fleet_devices.h"

struct fleet_workers;

/**
 * Start k shards. args/n_args: the user's `run` arguments (passed through; later flags
 * override them). devices are split as evenly as possible, ids continue from id_start.
 * 0 or -1 after printing why.
 */
/* password (may be NULL): handed to each worker in SCANSIM_MQTT_PASSWORD, never on its
   command line (-P/--password and their values are left out of the passed-through args). */
/* uris/n_uris: every broker (a worker spreads its devices over them by id); id_prefix
   names the devices in messages. rows_fd >= 0: the dashboard's shared device rows
   (fleet_shared_rows.h), which each worker inherits and fills with its slice. */
int fleet_workers_spawn(int k, char **args, int n_args, int devices, long id_start,
                        const char *id_prefix, const char *const *uris, int n_uris,
                        const char *password, int rows_fd, struct fleet_workers **out);

/* A worker that died unasked. */
struct fleet_worker_death {
    int worker;          /* 1-based, as people count them */
    long first_index;    /* its first device, as an index into the run's devices */
    long devices;        /* how many it ran */
    char who[96];        /* "worker 2 (scanner-1001..2000)" */
    char cause[96];      /* "killed by signal 9 (SIGKILL)", "exited with code 4" */
};

/** The next worker death not reported yet: true and *out filled, or false. */
bool fleet_workers_next_death(struct fleet_workers *w, struct fleet_worker_death *out);

/** Workers that died unasked so far. */
int fleet_workers_dead(const struct fleet_workers *w);

/** Read whatever the shards wrote, waiting up to timeout_ms. */
void fleet_workers_poll(struct fleet_workers *w, int timeout_ms);

/** The sum of the shards' latest figures. connect_seconds < 0 until every shard had all
 *  its devices connected. */
void fleet_workers_figures(struct fleet_workers *w, struct fleet_figures *out);

/** The program the shards run: "scansim-worker" or "scansim". */
const char *fleet_workers_program(const struct fleet_workers *w);

/** CPU time (ms, user + system) the running shards have used so far, added up. */
uint64_t fleet_workers_cpu_ms(const struct fleet_workers *w);

/** Is the worker that runs device `index` (of the run's) alive? */
bool fleet_workers_device_alive(const struct fleet_workers *w, long index);

/** Shards still running. */
int fleet_workers_alive(struct fleet_workers *w);

/** SIGTERM every shard, read their last figures (up to timeout_ms), reap them. */
void fleet_workers_stop(struct fleet_workers *w, int timeout_ms);

/** Stop if needed and free. NULL is fine. */
void fleet_workers_free(struct fleet_workers *w);

#endif /* SCANSIM_FLEET_WORKERS_H */
