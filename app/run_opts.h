/*
 * run_opts.h - what `scansim run` and its worker processes share: the options, their
 * parser, the fleet options they make, the signal count and the shard (worker) loop.
 *
 * run_opts.c holds all of it, so the worker program (worker_main.c, scansim-worker) links
 * the devices without the backend, its SQLite ledger, the fault proxy or ncurses.
 */
#ifndef SCANSIM_RUN_OPTS_H
#define SCANSIM_RUN_OPTS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "sim/fleet_devices.h"
#include "shard_range.h"

#define RUN_PER_WORKER 1000      /* devices per worker process with --workers auto */
#define RUN_MIN_WORKERS_FROM 100 /* --workers auto on Paho: from this many devices on, 2 workers or more */
#define RUN_FD_RESERVE 512       /* --workers auto: file descriptors a process keeps for other uses */

/* --event-batch not given: 10 ms at full speed, none with --item-rate (run_parse). */
#define RUN_EVENT_BATCH_AUTO UINT64_MAX
#define RUN_EVENT_BATCH_FULL_SPEED_MS 10

struct run_opts {
    struct scansim_cli_common c;
    long devices;
    long items;               /* 0 = not given */
    double item_rate;         /* 0 = full speed */
    uint64_t duration_ms;     /* 0 = not given */
    uint64_t grace_ms;
    const char *id_prefix;
    long id_start;
    long threads;             /* 0 = one per core */
    long workers;
    const char *flash_dir;
    const char *trace_dir;    /* --trace: NULL = no traces */
    uint64_t think_min_ms, think_max_ms;
    double wrong_tag_rate, cancel_rate, inventory_rate;
    double connect_rate;      /* devices per second; 0 = no limit */
    uint64_t connect_timeout_ms;
    long window;
    long max_in_flight;       /* unfinished items in all; 0 = only the windows */
    double command_rate;      /* --command-rate: remote commands a second while publishing
                                 (run_commands.h); 0 = none */
    long seed;
    const char *db_path;
    const char *json_path;
    const char *http_listen;  /* --http ADDR:PORT: the dashboard (NULL = none) */
    const char *http_token;   /* --http-token */
    const char *report_path;  /* --report FILE.html */
    bool no_backend;
    long worker_index;        /* --worker-index: a worker process of a run; -1 = not one */
    int rows_fd;              /* --rows-fd FD:FIRST (a worker, with --http): the shared
                                 device rows (fleet_shared_rows.h); -1 = none */
    long rows_first;          /* this worker's first device among the run's */
    struct shard_spec shard;  /* --shard I/N (or --shards N + JOB_COMPLETION_INDEX);
                                 count 0 = the whole fleet */
    const char *cert_dir;     /* --cert-dir: DIR/<id>.crt and DIR/<id>.key per device */
    const char *password_file;/* --password-file: "id:password" lines */
    bool id_as_username;      /* --id-as-username: each device's user name is its id */
    long broker_pid;          /* --broker-pid: a local broker whose CPU is counted; 0 = none */
    uint64_t event_batch_ms;  /* --event-batch: a device loop handles events at most this often */
    /* --bind ADDR,...: the devices' source addresses, round-robin by id (fleet_bind_of);
       they point into bind_text, a copy (the arguments pass unchanged to the workers) */
    const char *binds[FLEET_BINDS_MAX];
    int n_binds;
    char bind_text[FLEET_BINDS_MAX * 48];
    size_t bind_used;
};


/* SIGINT/SIGTERM/SIGHUP seen (a worker ignores SIGINT: the parent decides for it). */
extern volatile sig_atomic_t run_signals;
void run_install_signals(bool worker);

/* Parse `run`'s arguments (argv[0] is "run"). 0 = go on, 1 = help printed, -1 = usage error
   (said on stderr). */
int run_parse(int argc, char **argv, struct run_opts *o);
/* The fleet options for these run options and broker URI. */
void run_fleet_opts(const struct run_opts *o, const char *uri, struct fleet_opts *fo);
/* A worker process (--worker-index): run the devices, one JSON figures line a second on
   stdout, until SIGTERM; then power off and a last line. Returns an exit code. */
int run_worker(const struct run_opts *o);
/* --shard: narrow the options to this shard's devices and items (ids, counts, rate). */
void run_apply_shard(struct run_opts *o);

void run_raise_fd_limit(void);
long run_fd_limit(void);
/* --workers auto for this many devices on the process's client library (run_opts.c). */
long run_auto_workers(long devices);
void run_nap_ms(int ms); /* a signal ends it early */

#endif
