/*
 * worker/main.c - scansim-worker, the program `scansim run --workers K` starts for each
 * shard of a fleet when the broker is not TLS (fleet_workers.c picks it).
 *
 * It runs the shard loop of `scansim run` (run_opts.c) and holds only the devices: the
 * firmware, the Linux platform and Paho's library without TLS. Not the backend and its
 * SQLite, the fault proxy and its libpcap, the demo's ncurses or OpenSSL, which every one
 * of K workers would otherwise map and partly touch (megabytes of RSS per process; see
 * docs/performance.md). For a TLS broker the worker is scansim itself.
 *
 * usage (by scansim run only): scansim-worker run <run's options> --worker-index I
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "run_opts.h"

int main(int argc, char **argv)
{
    struct run_opts o;
    int rc;

    if (argc < 2 || strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "scansim-worker: runs one shard of `scansim run --workers K` and is "
                        "started by it (usage: scansim-worker run <options> --worker-index I)\n");
        return SCANSIM_EXIT_USAGE;
    }
    rc = run_parse(argc - 1, argv + 1, &o);
    if (rc != 0)
        return rc > 0 ? SCANSIM_EXIT_OK : SCANSIM_EXIT_USAGE;
    if (o.worker_index < 0 || !o.c.broker_uri) {
        fprintf(stderr, "scansim-worker: needs --worker-index I and --broker URI (it is started by "
                        "`scansim run --workers K`; run that instead)\n");
        return SCANSIM_EXIT_USAGE;
    }
    run_raise_fd_limit();
    run_install_signals(true);
    return run_worker(&o);
}
