/*
 * run_commands.h - `scansim run --command-rate R`: while the items go out, the backend side
 * also sends R remote commands a second (run_command_mix.h: status, identify, message,
 * config) to random devices of the run, each device on its broker, and tracks the replies
 * (docs/protocol.md, "Commands"): answered ok, refused, unanswered, duplicates, and the
 * time from publish to reply. One command_link per broker.
 *
 * Order in a run: start once the backend is up (the links are subscribed to the replies
 * before any command goes), pump from the publishing loop, finish after publishing and
 * before the devices are powered off (outstanding replies get a few seconds), report.
 *
 * Memory: 16 bytes per command sent, kept until free. Ownership: run_commands_start keeps
 * pointers to the options (they outlive it); a report is a plain value.
 */
#ifndef SCANSIM_RUN_COMMANDS_H
#define SCANSIM_RUN_COMMANDS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "run_opts.h"

#define RUN_COMMANDS_RATE_MAX 100000.0 /* --command-rate: commands per second at most */
#define RUN_COMMANDS_FINISH_MS 5000    /* wait for outstanding replies after publishing */

struct run_commands_report {
    bool on;                   /* --command-rate was given */
    double rate;               /* commands a second (this shard's) */
    uint64_t sent;             /* published (handed to the client) */
    uint64_t ok, refused;      /* first replies: result ok / error */
    uint64_t unanswered;       /* no reply yet (at the end: none within the wait) */
    uint64_t duplicates;       /* further replies to a cmd_id already answered */
    uint64_t publish_failed;   /* could not be published, or refused by the broker */
    char first_refusal[64];    /* "<cmd>: <reason>" of the first refusal, "" if none */
    char link_problem[400];    /* a command link lost or a publish refused, "" if none */
    double p50_ms, p99_ms, max_ms; /* publish -> reply, over the answered */
};

struct run_commands;

/** Connect one command link per broker (uris[j] serves the devices fleet_broker_of puts on
 *  it) and subscribe. *out = NULL when o->command_rate is 0. SCANSIM_EXIT_OK, or the exit code
 *  after saying what happened (command_link.h). */
int run_commands_start(const struct run_opts *o, const char *const *uris, int n_uris,
                       struct run_commands **out);
/** Send what is due at the rate by now_ms (sim_clock_ms). NULL is fine. */
void run_commands_pump(struct run_commands *rc, uint64_t now_ms);
/** Stop sending and wait up to wait_ms for the outstanding replies. NULL is fine. */
void run_commands_finish(struct run_commands *rc, uint64_t wait_ms);
/** The figures so far (r->on false for NULL). */
void run_commands_report(struct run_commands *rc, struct run_commands_report *r);
/** Close the links and free. NULL is fine. */
void run_commands_free(struct run_commands *rc);

/** A refusal, a silence or a publish that failed: these commands are valid, so the run failed. */
bool run_commands_failed(const struct run_commands_report *r);
/** The summary table's line, and why the run failed when it did. Nothing when off. */
void run_commands_print(const struct run_commands_report *r);
/** A "commands" object into j. Nothing when off. */
void run_commands_json(const struct run_commands_report *r, cJSON *j);

#endif
