/*
 * hx/runner.h - the scenario runner: executes one parsed scenario (hx/scenario.h) against
 * a private mosquitto and reports a per-step timeline.
 *
 * One hx_runner_run() call starts everything a scenario declares, each on its own:
 *   - a private mosquitto (hx_broker) with the scenario's variant, persistence, autosave and
 *     max_queued_messages, on a free port in a temporary folder;
 *   - a watcher (an MQTT client on sim/mqtt.h) subscribed to scanners/+/status that
 *     records every status message with its arrival time and retain flag (Will and
 *     retained-status checks);
 *   - the backend role (hx_backend) with an SQLite ledger, and the `backend` load;
 *   - a fault proxy hub (hx_proxy), one proxy per device of a `link proxy` group;
 *   - the devices (sim_device) on a bounded number of event loops, and a scripted operator
 *     per device that runs on the device's owning thread;
 * then waits for "time zero" (every device online: its SUBACKs granted), runs the steps in file
 * order and tears everything down. Randomness (random selectors, operators' think times,
 * wrong tags and cancels, reconnect jitter, random tags) is drawn from the scenario's seed,
 * or opts.seed when set, so a failure replays exactly.
 *
 * Failure policy (scenarios/README.md, "How a scenario runs"): a failing `expect` is
 * recorded and the run goes on, so one run shows every broken expectation; a failing
 * `wait until`, a step that cannot be carried out (e.g. the broker does not restart) or the
 * scenario's timeout stops the run, which then tears down cleanly.
 *
 * Ownership: the result's strings are malloc'ed; free them with hx_runner_result_free().
 * Threads: hx_runner_run() uses the calling thread for the steps and starts its own (loops,
 * the proxy hub, the backend load); separate scenarios may run on separate threads, but
 * `scansim test` runs each in its own process for isolation.
 */
#ifndef HX_RUNNER_H
#define HX_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hx/scenario.h"

#ifdef __cplusplus
extern "C" {
#endif

struct hx_runner_opts {
    bool seed_set;        /* use seed instead of the scenario's `seed` */
    uint64_t seed;
    const char *keep_dir; /* NULL = no artefacts; else the scenario's own folder (created):
                             broker config + log, ledger.sqlite, timeline.txt, status.log,
                             devices.log, pcap/ (with pcap) */
    bool pcap;            /* with keep_dir: record every proxied device link as a pcap */
    FILE *progress;       /* NULL = quiet; else each timeline entry as it happens */
    /* A broker the runner does not start (the user's, or one shared by a whole `scansim
       test`): every scenario connects to it, after hx_runner_skip_reason() said it can.
       Before the devices start, the runner clears what an earlier run left there for the
       scenario's device ids (their sessions and retained status). */
    const char *broker_uri;       /* NULL = start the scenario's own broker */
    const char *broker_stop_cmd;  /* shell commands run for `broker stop|kill|restart` */
    const char *broker_kill_cmd;  /*   on that broker; NULL = the scenario is skipped */
    const char *broker_start_cmd; /*   (restart: the command, then wait for the port) */
    /* The broker the runner starts when the scenario names none (`broker mosquitto` or
       `broker rabbitmq` in the file wins): SCN_BROKER_MOSQUITTO by default. */
    enum scn_broker_kind broker_kind;
    const char *trace_dir; /* NULL = no traces; else each device records its trace as
                              trace_dir/<device id>.fwtrace (docs/trace.md) */
};

struct hx_runner_result {
    bool passed;
    int64_t duration_ms;  /* start-up to tear-down */
    uint64_t seed;        /* the seed used (print it for a replay) */
    size_t steps_run;
    size_t expectations_failed;
    char *failure;        /* the first failure in one line ("file:line: step: observed ..."),
                             "" when passed */
    char *timeline;       /* every step with time, text and outcome, one per line */
};

/**
 * Run scenario s (parsed and validated by scn_parse_*). opts may be NULL. Fills *out
 * (always, also on failure: then failure says why). Returns 0 when the scenario ran to a
 * verdict (passed or failed, see out->passed), or a negative hx_err when it could not be
 * run at all (out->failure says why; the caller reports it as a failure too).
 */
int hx_runner_run(const struct scn_scenario *s, const struct hx_runner_opts *opts,
                  struct hx_runner_result *out);

/**
 * Can s run with opts? false when it can; true with the reason in why (one line, for
 * people; counted as skipped, never as passed) when it configures a broker it would not
 * start (a variant or a setting on an external broker), stops or kills a broker without
 * the command for it, or asks of RabbitMQ what it cannot do (MQTT 5).
 */
bool hx_runner_skip_reason(const struct scn_scenario *s, const struct hx_runner_opts *opts,
                           char *why, size_t cap);

/** Free the result's strings (the struct itself is the caller's). NULL is fine. */
void hx_runner_result_free(struct hx_runner_result *r);

#ifdef __cplusplus
}
#endif

#endif /* HX_RUNNER_H */
