/*
 * run_dash.h - `scansim run`'s dashboard (--http) and report (--report): the glue between
 * the run's once-a-second figures and the dashboard's model (dash.h).
 *
 * The run's main thread calls run_dash_tick() once a second: it copies the fleet's rows
 * (fleet_rows: the loops' own once-a-second copies, no device thread is called), the
 * newest items, the figures and one chart sample into the model. Items created on the
 * page go through the backend role and are counted, so the run waits for them too.
 */
#ifndef SCANSIM_RUN_DASH_H
#define SCANSIM_RUN_DASH_H

#include <stdint.h>

#include "dash.h"
#include "sim/fleet_devices.h"
#include "sim/fleet_shared_rows.h"
#include "fleet_workers.h"
#include "hx/backend.h"
#include "run_opts.h"

struct run_dash;

/** Make the model, and start the server with --http. The devices' rows come from the
 *  fleet in this process, or (--workers) from the workers' shared rows, with the dead
 *  workers' devices shown offline. backends: one per broker (n 0: none); the page's
 *  items go through the one on their device's broker, and the items list and the
 *  latency histogram are those of all. Returns 0 (also with neither
 *  option: *out NULL then) or a negative dash_err after saying what failed. */
int run_dash_start(const struct run_opts *o, struct fleet *fleet,
                   struct fleet_shared_rows *shared, struct fleet_workers *workers,
                   struct hx_backend *const *backends, int n_backends,
                   struct run_dash **out);
/** Once a second: the figures now (led NULL without a ledger), the current rate. */
void run_dash_tick(struct run_dash *d, const struct fleet_figures *fig,
                   const struct hx_ledger_report *led, double rate, double t_s);
/** Items the page published (NULL d: 0). */
uint64_t run_dash_items_created(struct run_dash *d);
/** Write --report with the run's JSON summary (summary_json) as its table. 0 or < 0. */
int run_dash_report(struct run_dash *d, const char *path, const char *summary_json);
/** Stop the server, free. NULL is fine. */
void run_dash_free(struct run_dash *d);

#endif /* SCANSIM_RUN_DASH_H */
