/*
 * run_supervise.h - `scansim run` watches what it started and what it depends on.
 *
 * - A worker process that dies is named at once, with its devices and cause
 *   ("worker 2 (scanner-1001..2000) killed by signal 9 (SIGKILL)"); the driver stops giving
 *   its devices items and moves their unfinished ones to live devices.
 * - The embedded broker that dies is named at once ("the embedded mosquitto (pid N) exited:
 *   killed by signal 9 (SIGKILL)"): nothing can reach it again, the run stops, exit 3.
 * - A broker of the user's that no backend and no device has reached for the connect
 *   time-out is given up the same way.
 * Everything said is also kept for the summary and the JSON report.
 */
#ifndef SCANSIM_RUN_SUPERVISE_H
#define SCANSIM_RUN_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "fleet_driver.h"
#include "fleet_workers.h"
#include "hx/broker.h"

#define RUN_WATCH_NOTES 8

struct run_watch {
    struct hx_broker *embedded;   /* or NULL */
    const char *uri;
    uint64_t give_up_ms;          /* unreachable this long: the broker is gone */
    uint64_t unreachable_since;   /* 0 = reachable */
    uint64_t next_broker_check;
    bool broker_gone;             /* stop the run: exit 3 */
    char broker_words[320];       /* why, for the summary */
    int workers_dead;
    long devices_lost;            /* devices of dead workers */
    char notes[RUN_WATCH_NOTES][320]; /* "worker 2 (...) killed by signal 9 (SIGKILL)" */
    int n_notes;
};

void run_watch_init(struct run_watch *w, struct hx_broker *embedded, const char *uri,
                    uint64_t give_up_ms);
/* Look at the workers and the broker now: report and act on what died. reachable: a
   backend is connected or some device is online. Returns true when the run must stop. */
bool run_watch_check(struct run_watch *w, struct fleet_workers *workers,
                     struct fleet_driver *driver, bool reachable, uint64_t now_ms);
/* The summary's lines about it (nothing when all was well). */
void run_watch_print(const struct run_watch *w);
/* {"workers_dead": N, "devices_lost": N, "broker_gone": bool, "notes": [...]} into j. */
void run_watch_json(const struct run_watch *w, cJSON *j);

#endif
