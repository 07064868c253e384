/*
 * fleet_shared_rows.h - the devices' rows (struct fleet_row: counters, state, OLED) of a
 * fleet split over worker processes (`scansim run --workers K --http`), in one shared
 * memory region, so that the parent's dashboard lists every device of every worker.
 *
 * The parent makes the region (a memfd: nothing to clean up in /dev/shm, gone with the last
 * process) before it starts the workers, and each worker inherits its descriptor (passed
 * as the hidden flag --rows-fd FD:FIRST). Once a second a worker copies its rows into its
 * slice [FIRST, FIRST + its devices) under its own process-shared robust mutex; the parent
 * copies all slices under each mutex in turn. A worker that dies holding its mutex leaves
 * it to be made consistent by the next locker (its rows are then whatever it last wrote;
 * the parent marks a dead worker's devices offline itself).
 *
 * Sizes: one struct fleet_row (about 1.2 KB, most of it the OLED) a device, shared: 12 MB
 * for 10,000 devices, and only with --http.
 */
#ifndef SIM_FLEET_SHARED_ROWS_H
#define SIM_FLEET_SHARED_ROWS_H

#include "sim/fleet_devices.h"

struct fleet_shared_rows;

/** The parent: a region for n_devices rows in n_shards slices. 0, or -1 after saying why. */
int fleet_shared_rows_create(int n_devices, int n_shards, struct fleet_shared_rows **out);
/** Its descriptor, for a worker to inherit (close-on-exec is cleared in the worker's child
 *  only, by the spawn). */
int fleet_shared_rows_fd(const struct fleet_shared_rows *s);

/** A worker: map the region behind an inherited descriptor and check that it is one (its
 *  header's size and version). 0, or -1 after saying why. */
int fleet_shared_rows_attach(int fd, struct fleet_shared_rows **out);
/** A worker: copy this shard's rows in (fleet_rows of its fleet, at its slice). */
void fleet_shared_rows_put(struct fleet_shared_rows *s, int shard, long first, struct fleet *f,
                           int n);

/** The parent: copy every row (out: n_devices rows; a row never written has id ""). */
void fleet_shared_rows_get(struct fleet_shared_rows *s, struct fleet_row *out, int n);

/** Unmap (and close). NULL is fine. */
void fleet_shared_rows_free(struct fleet_shared_rows *s);

#endif /* SIM_FLEET_SHARED_ROWS_H */
