/*
 * run_backends.h - the backend role of `scansim run`: one hx_backend per broker.
 *
 * One broker (the usual case): one backend, subscribed to every device's topics
 * ('scanners/+/...'), or, for a shard (--shard I/N), to its own devices' topics only, so
 * that shards sharing a broker never see each other's registrations. Several brokers
 * (--broker given more than once): one backend on each, for the devices on that broker
 * (fleet_broker_of). Their ledgers are added up for the figures; the latency histogram is
 * filled from all of them.
 *
 * One thread (the caller's) uses these; the backends inside are thread-safe as ever.
 */
#ifndef SCANSIM_RUN_BACKENDS_H
#define SCANSIM_RUN_BACKENDS_H

#include <stdbool.h>

#include "fleet_driver.h"
#include "hx/backend.h"
#include "latency_hist.h"
#include "run_opts.h"

struct run_backends {
    struct hx_backend *b[FLEET_DRIVER_BACKENDS_MAX];
    int n;
};

/* Create and start one backend per broker in uris. 0, or an exit code (enum scansim_exit)
   after saying why on stderr. */
int run_backends_start(struct run_backends *rb, const struct run_opts *o,
                       const char *const *uris, int n_uris);
/* The ledgers added up; percentiles exact for one backend, from the histogram for more. */
void run_backends_report(struct run_backends *rb, struct hx_ledger_report *r);
/* Every registered item's latency, into h. */
void run_backends_histogram(struct run_backends *rb, struct latency_hist *h);
/* hx_backend_wait_registered over all (count: the items of all together). */
bool run_backends_all_registered(struct run_backends *rb, uint64_t count, int timeout_ms);
/* Sync and stop every backend. */
void run_backends_stop(struct run_backends *rb, int sync_ms);
/* Is any backend connected? */
bool run_backends_connected(struct run_backends *rb);
void run_backends_free(struct run_backends *rb);

#endif
