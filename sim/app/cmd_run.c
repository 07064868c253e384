/*
 * cmd_run.c - `scansim run`: N simulated scanners running the real firmware against a
 * broker, the backend role publishing items and checking the ledger, live figures, a
 * summary, a JSON report and an exit code that says whether anything was lost.
 *
 * Pieces: fleet_devices.c (the devices and their scripted operators), fleet_driver.c
 * (which item goes where and when), fleet_workers.c (--workers: shards in other processes,
 * figures over pipes), fleet_figures.c (adding and carrying figures), hx_backend (the
 * backend role and its SQLite ledger). This file parses flags, runs the phases
 * (connect, publish, grace, stop) and reports.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fleet_devices.h"
#include "fleet_driver.h"
#include "fleet_workers.h"
#include "hx/backend.h"
#include "sim/clock.h"
#include "sim/err.h"

const char scansim_cmd_run_summary[] =
    "run N simulated scanners against a broker, check every item registered once";

#define CMD "run"
#define RUN_PER_WORKER 1000 /* devices per worker process with --workers auto */

struct run_opts {
    struct sim_cli_common c;
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
    uint64_t think_min_ms, think_max_ms;
    double wrong_tag_rate, cancel_rate, inventory_rate;
    double connect_rate;      /* devices per second; 0 = no limit */
    uint64_t connect_timeout_ms;
    long window;
    long max_in_flight;       /* unfinished items in all; 0 = only the windows */
    long seed;
    const char *db_path;
    const char *json_path;
    bool no_backend;
    long shard;               /* -1 = not a shard */
};

static const char run_help[] =
    "usage: scansim run [options]\n"
    "\n"
    "Start N simulated scanners, each running the real firmware with its own MQTT client,\n"
    "flash and a scripted operator; the backend role publishes items round-robin to them\n"
    "and checks in its ledger that every item was registered exactly once, and how fast.\n"
    "\n"
    "Fleet:\n"
    "  -n, --devices N         scanners to run (default 10)\n"
    "  --id-prefix TEXT        client id prefix (default scanner-); ids are TEXT<number>\n"
    "  --id-start N            number of the first device (default 1), so several machines\n"
    "                          or runs never collide\n"
    "  --threads N             event-loop threads owning the devices (default: one per core)\n"
    "  --workers K|auto        split the fleet over K processes; the backend runs in this\n"
    "                          one. Paho serves every client of a process from one thread,\n"
    "                          and its cost per message grows with the clients, so auto\n"
    "                          (the default) starts one worker per 1,000 devices (at\n"
    "                          least 2 from 500 devices on; --workers 1: one process)\n"
    "  --flash DIR             keep each device's flash in DIR/<id>/ (default: memory)\n"
    "  --connect-rate N/s      power on at most N devices a second (default 2000/s)\n"
    "  --connect-timeout DUR   give up waiting for connections after DUR (default 60s);\n"
    "                          no device connected by then exits 3\n"
    "Operator (per device):\n"
    "  --think MIN-MAX         time to look at an item before scanning it, e.g. 1s-3s\n"
    "                          (default 0: full speed, the load-test setting)\n"
    "  --wrong-tag-rate P      probability of scanning a wrong tag first (default 0)\n"
    "  --cancel-rate P         probability of cancelling an item instead (default 0)\n"
    "  --inventory-rate P      probability of an inventory look-up after a registration\n"
    "  --seed N                operator randomness (default fixed: runs repeat)\n"
    "Backend role:\n"
    "  --items N               items to publish in total (default 10 per device)\n"
    "  --item-rate R/s         publish at this rate instead of as fast as possible\n"
    "  --duration DUR          stop publishing after DUR (e.g. 60s, 5m)\n"
    "  --grace DUR             after publishing, wait this long without progress for the\n"
    "                          last registrations before counting the rest lost (default 10s)\n"
    "  --window N              unfinished items per device (1..16, default 2; the device\n"
    "                          queues 16 and refuses more; more only adds latency)\n"
    "  --max-in-flight N       unfinished items in all (default 2000; 0: only --window\n"
    "                          limits). The backend's one Paho client slows down with many\n"
    "                          messages in flight (10,000 devices: 3,900 registrations/s at\n"
    "                          2000, 2,900 with no limit)\n"
    "  --db FILE               keep the SQLite ledger in FILE (default: in memory)\n"
    "  --no-backend            do not publish items: your own backend drives the devices;\n"
    "                          no ledger figures, devices still count what they did\n"
    "Output:\n"
    "  --json FILE             write the figures as JSON to FILE\n"
    "  A progress line once a second (rewritten in place on a terminal), a summary at the\n"
    "  end. Ctrl-C stops publishing and waits a short grace; a second Ctrl-C stops at once.\n"
    "  The default topic layout of run is per-device; --layout seed sends every item to\n"
    "  every device (as the seed did), so items are registered by several devices.\n"
    "\n"
    "Exit codes: 0 every item registered exactly once; 1 items lost (beyond the operators'\n"
    "cancels) or registered twice; 2 usage; 3 broker unreachable or refused (no device\n"
    "connected within --connect-timeout, or the backend could not connect); 4 internal.\n"
    "\n";

static const struct option run_long[] = {
    {"devices", required_argument, 0, 'n'},
    {"items", required_argument, 0, 0x2001},
    {"item-rate", required_argument, 0, 0x2002},
    {"duration", required_argument, 0, 0x2003},
    {"grace", required_argument, 0, 0x2004},
    {"id-prefix", required_argument, 0, 0x2005},
    {"id-start", required_argument, 0, 0x2006},
    {"threads", required_argument, 0, 0x2007},
    {"workers", required_argument, 0, 0x2008},
    {"flash", required_argument, 0, 0x2009},
    {"think", required_argument, 0, 0x200a},
    {"wrong-tag-rate", required_argument, 0, 0x200b},
    {"cancel-rate", required_argument, 0, 0x200c},
    {"inventory-rate", required_argument, 0, 0x200d},
    {"connect-rate", required_argument, 0, 0x200e},
    {"connect-timeout", required_argument, 0, 0x200f},
    {"window", required_argument, 0, 0x2010},
    {"max-in-flight", required_argument, 0, 0x2016},
    {"seed", required_argument, 0, 0x2011},
    {"db", required_argument, 0, 0x2012},
    {"json", required_argument, 0, 0x2013},
    {"no-backend", no_argument, 0, 0x2014},
    {"shard", required_argument, 0, 0x2015},
    {"help", no_argument, 0, 'h'},
    SIM_CLI_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

/* ------------------------------------------------------------------ signals */

static volatile sig_atomic_t run_signals; /* SIGINT/SIGTERM count */

static void run_on_signal(int sig)
{
    (void)sig;
    run_signals++;
}

static void run_install_signals(bool shard)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = run_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    if (shard) {
        /* Ctrl-C reaches the whole process group: the parent decides for its shards */
        signal(SIGINT, SIG_IGN);
    } else {
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------ helpers */

static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static long fd_limit(void)
{
    struct rlimit rl;

    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : 1024;
}

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL); /* EINTR (a signal) just ends the nap early */
}

static int parse_probability(const char *flag, const char *arg, double *out)
{
    return sim_cli_parse_double(CMD, flag, arg, 0.0, 1.0, out);
}

/* ------------------------------------------------------------------ options */

static int run_parse(int argc, char **argv, struct run_opts *o)
{
    bool workers_given = false;
    long v;
    int opt;

    memset(o, 0, sizeof(*o));
    sim_cli_common_defaults(&o->c);
    o->c.layout = SIM_LAYOUT_PER_DEVICE; /* run's default (cli.h: layout_set tells) */
    o->devices = 10;
    o->grace_ms = 10000;
    o->id_prefix = "scanner-";
    o->id_start = 1;
    o->workers = 0; /* auto */
    o->connect_rate = 2000;
    o->connect_timeout_ms = 60000;
    o->window = 2;
    o->max_in_flight = 2000;
    o->shard = -1;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "hn:" SIM_CLI_COMMON_SHORT, run_long, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(run_help, stdout);
            fputs(sim_cli_common_help, stdout);
            return 1;
        case 'n':
            if (sim_cli_parse_int(CMD, "--devices", optarg, 1, 1000000, &o->devices))
                return -1;
            break;
        case 0x2001:
            if (sim_cli_parse_int(CMD, "--items", optarg, 1, 2000000000L, &o->items))
                return -1;
            break;
        case 0x2002:
            if (sim_cli_parse_rate(CMD, "--item-rate", optarg, &o->item_rate))
                return -1;
            break;
        case 0x2003:
            if (sim_cli_parse_duration_ms(CMD, "--duration", optarg, &o->duration_ms))
                return -1;
            if (o->duration_ms == 0) {
                sim_cli_error(CMD, "--duration: expected a positive duration such as 30s, got '%s'", optarg);
                return -1;
            }
            break;
        case 0x2004:
            if (sim_cli_parse_duration_ms(CMD, "--grace", optarg, &o->grace_ms))
                return -1;
            break;
        case 0x2005:
            if (!*optarg || strpbrk(optarg, "+#/") || strlen(optarg) > 30) {
                sim_cli_error(CMD, "--id-prefix: expected up to 30 printable characters without "
                                   "'+', '#' or '/', got '%s'", optarg);
                return -1;
            }
            o->id_prefix = optarg;
            break;
        case 0x2006:
            if (sim_cli_parse_int(CMD, "--id-start", optarg, 0, 1000000000L, &o->id_start))
                return -1;
            break;
        case 0x2007:
            if (sim_cli_parse_int(CMD, "--threads", optarg, 1, 256, &o->threads))
                return -1;
            break;
        case 0x2008:
            if (strcmp(optarg, "auto") == 0)
                o->workers = 0;
            else if (sim_cli_parse_int(CMD, "--workers", optarg, 1, 256, &o->workers))
                return -1;
            workers_given = o->workers > 0;
            break;
        case 0x2009:
            o->flash_dir = optarg;
            break;
        case 0x200a:
            if (sim_cli_parse_range_ms(CMD, "--think", optarg, &o->think_min_ms, &o->think_max_ms))
                return -1;
            break;
        case 0x200b:
            if (parse_probability("--wrong-tag-rate", optarg, &o->wrong_tag_rate))
                return -1;
            break;
        case 0x200c:
            if (parse_probability("--cancel-rate", optarg, &o->cancel_rate))
                return -1;
            break;
        case 0x200d:
            if (parse_probability("--inventory-rate", optarg, &o->inventory_rate))
                return -1;
            break;
        case 0x200e:
            if (strcmp(optarg, "0") == 0 || strcmp(optarg, "unlimited") == 0)
                o->connect_rate = 0;
            else if (sim_cli_parse_rate(CMD, "--connect-rate", optarg, &o->connect_rate))
                return -1;
            break;
        case 0x200f:
            if (sim_cli_parse_duration_ms(CMD, "--connect-timeout", optarg, &o->connect_timeout_ms))
                return -1;
            break;
        case 0x2010:
            if (sim_cli_parse_int(CMD, "--window", optarg, 1, FW_PENDING_ITEMS, &o->window))
                return -1;
            break;
        case 0x2016:
            if (sim_cli_parse_int(CMD, "--max-in-flight", optarg, 0, 100000000L, &o->max_in_flight))
                return -1;
            break;
        case 0x2011:
            if (sim_cli_parse_int(CMD, "--seed", optarg, 0, 0xffffffffL, &o->seed))
                return -1;
            break;
        case 0x2012:
            o->db_path = optarg;
            break;
        case 0x2013:
            o->json_path = optarg;
            break;
        case 0x2014:
            o->no_backend = true;
            break;
        case 0x2015:
            if (sim_cli_parse_int(CMD, "--shard", optarg, 0, 255, &o->shard))
                return -1;
            break;
        case '?':
            if (optopt)
                sim_cli_error(CMD, "unknown option '-%c' or it needs a value (see scansim run --help)", optopt);
            else
                sim_cli_error(CMD, "unknown option '%s' or it needs a value (see scansim run --help)",
                              argv[optind - 1]);
            return -1;
        default: {
            int r = sim_cli_common_option(CMD, &o->c, opt, optarg);
            if (r < 0)
                return -1;
            if (r == 0) {
                sim_cli_error(CMD, "unexpected option (see scansim run --help)");
                return -1;
            }
        }
        }
    }
    if (optind < argc) {
        sim_cli_error(CMD, "unexpected argument '%s' (run takes options only; see scansim run --help)",
                      argv[optind]);
        return -1;
    }
    if (sim_cli_common_check(CMD, &o->c) != 0)
        return -1;
    /* auto: about 1,000 clients a process, as Paho's maintainers advise, and at least two
       processes from 500 devices on (measured: 1,000 devices in one process register ~6x
       slower than in two) */
    if (o->workers == 0)
        o->workers = o->devices < 500 ? 1 : (o->devices + RUN_PER_WORKER - 1) / RUN_PER_WORKER;
    if (o->workers == 1 && o->devices >= 500 && !workers_given)
        o->workers = 2;
    if (o->workers > 256)
        o->workers = 256;
    if (o->workers > o->devices && o->shard < 0) {
        sim_cli_error(CMD, "--workers %ld is more than --devices %ld: use at most one worker per device",
                      o->workers, o->devices);
        return -1;
    }
    if (o->no_backend && (o->items || o->item_rate > 0 || o->db_path)) {
        sim_cli_error(CMD, "--no-backend publishes nothing: --items, --item-rate and --db need the "
                           "backend role (drop --no-backend or those flags)");
        return -1;
    }
    if (o->id_start + o->devices - 1 > 2147483647L) {
        sim_cli_error(CMD, "--id-start %ld + --devices %ld runs past 2147483647", o->id_start, o->devices);
        return -1;
    }
    (void)v;
    return 0;
}

static void fleet_opts_from(const struct run_opts *o, const char *uri, struct fleet_opts *fo)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    fleet_opts_defaults(fo);
    fo->uri = uri;
    fo->transport.uri = uri;
    fo->transport.username = o->c.username;
    fo->transport.password = o->c.password;
    fo->transport.cafile = o->c.cafile;
    fo->transport.certfile = o->c.cert;
    fo->transport.keyfile = o->c.key;
    fo->transport.insecure = o->c.insecure;
    fo->transport.mqtt_version = o->c.protocol_version == 5 ? 5 : 3;
    fo->transport.session_expiry_s = (uint32_t)o->c.session_expiry_s;
    fo->devices = (int)o->devices;
    fo->id_prefix = o->id_prefix;
    fo->id_start = o->id_start;
    fo->threads = (int)(o->threads ? o->threads : (ncpu > 0 ? ncpu : 1));
    if (!o->threads && o->shard >= 0 && o->workers > 1)
        fo->threads = (int)((ncpu > o->workers ? ncpu / o->workers : 1));
    fo->tick_ms = 50;
    fo->flash_dir = o->flash_dir;
    fo->layout = o->c.layout == SIM_LAYOUT_SEED ? FW_LAYOUT_SEED : FW_LAYOUT_PER_DEVICE;
    fo->clean_session = o->c.session == SIM_SESSION_CLEAN;
    fo->keepalive_s = o->c.keepalive_s;
    fo->qos = o->c.qos;
    fo->think_min_ms = o->think_min_ms;
    fo->think_max_ms = o->think_max_ms;
    fo->wrong_tag_rate = o->wrong_tag_rate;
    fo->cancel_rate = o->cancel_rate;
    fo->inventory_rate = o->inventory_rate;
    fo->seed = (uint32_t)o->seed;
    fo->verbose = o->c.verbose;
}

/* ------------------------------------------------------------------ shard mode */

/* A worker process: run the devices, report figures on stdout once a second. */
static int run_shard(const struct run_opts *o)
{
    struct fleet_opts fo;
    struct fleet *f = NULL;
    struct fleet_figures fig;
    char line[4096];
    uint64_t next_report = 0, last_start = sim_clock_ms();
    double rate = o->connect_rate > 0 ? o->connect_rate / (double)o->workers : 0;
    double credit = 0;

    fleet_opts_from(o, o->c.broker_uri, &fo);
    if (fleet_create(&fo, &f) != SIM_OK)
        return SIM_EXIT_INTERNAL;
    while (!run_signals) {
        uint64_t now = sim_clock_ms();
        if (fleet_unstarted(f) > 0) {
            if (rate <= 0) {
                fleet_start_some(f, fleet_unstarted(f));
            } else {
                credit += rate * (double)(now - last_start) / 1000.0;
                if (credit > rate)
                    credit = rate;
                int n = (int)credit;
                credit -= fleet_start_some(f, n);
            }
        }
        last_start = now;
        if (now >= next_report) {
            next_report = now + 1000;
            fleet_figures(f, &fig);
            if (fleet_figures_to_json(&fig, line, sizeof(line)) > 0) {
                fputs(line, stdout);
                fputc('\n', stdout);
                fflush(stdout);
            }
        }
        nap_ms(10);
    }
    uint64_t t0 = sim_clock_ms();
    fleet_stop(f);
    uint64_t t1 = sim_clock_ms();
    fleet_figures(f, &fig);
    if (fleet_figures_to_json(&fig, line, sizeof(line)) > 0) {
        fputs(line, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    fleet_free(f);
    if (o->c.verbose)
        fprintf(stderr, "scansim run: shard %ld: power-off %.1f s, teardown %.1f s\n", o->shard,
                (double)(t1 - t0) / 1000.0, (double)(sim_clock_ms() - t1) / 1000.0);
    return SIM_EXIT_OK;
}

/* ------------------------------------------------------------------ reporting */

struct run_state {
    const struct run_opts *o;
    bool tty;
    uint64_t t_start, t_pub_start, t_pub_end, t_last_progress, t_end;
    struct fleet_figures fig;
    struct hx_ledger_report led;
    bool have_ledger;
    uint64_t last_registered;
    uint64_t reg_at_last_line;   /* registrations at the last progress line */
    uint64_t last_rate_ms;
    double rate_now;
    uint64_t published, publish_failed, gate_skips;
    uint64_t self_rss_kib;
    uint64_t self_pss_kib;       /* this process's highest sampled PSS (with workers) */
    bool connect_gave_up;
};

static void progress_line(struct run_state *s)
{
    const struct fleet_figures *g = &s->fig;
    char line[512];
    double secs = (double)(sim_clock_ms() - s->t_start) / 1000.0;
    uint64_t reconnects = g->connects > g->ever_connected ? g->connects - g->ever_connected : 0;
    uint64_t errors = g->connect_failures + g->publish_errors + g->rejects + g->storage_errors;
    int n;

    if (s->have_ledger)
        n = snprintf(line, sizeof(line),
                     "[%5.0fs] connected %" PRIu64 "/%" PRIu64 " | items %" PRIu64 " published, %"
                     PRIu64 " registered, %.0f/s | p50 %.0f ms p99 %.0f ms | dup suppressed %" PRIu64
                     " | reconnects %" PRIu64 " | errors %" PRIu64,
                     secs, g->connected, g->devices, s->led.published, s->led.registered, s->rate_now,
                     s->led.latency_p50_ms, s->led.latency_p99_ms, g->duplicates_suppressed,
                     reconnects, errors);
    else
        n = snprintf(line, sizeof(line),
                     "[%5.0fs] connected %" PRIu64 "/%" PRIu64 " | items %" PRIu64 " received, %" PRIu64
                     " registered, %.0f/s | dup suppressed %" PRIu64 " | reconnects %" PRIu64
                     " | errors %" PRIu64,
                     secs, g->connected, g->devices, g->items_received, g->registrations_acked,
                     s->rate_now, g->duplicates_suppressed, reconnects, errors);
    (void)n;
    if (s->tty)
        fprintf(stdout, "\r%s\033[K", line);
    else
        fprintf(stdout, "%s\n", line);
    fflush(stdout);
}

static double rate_final(const struct run_state *s)
{
    uint64_t reg = s->have_ledger ? s->led.registered : s->fig.registrations_acked;
    uint64_t t0 = s->t_pub_start ? s->t_pub_start : s->t_start;
    uint64_t t1 = s->t_last_progress > t0 ? s->t_last_progress : s->t_end;

    if (t1 <= t0)
        return 0;
    return (double)reg * 1000.0 / (double)(t1 - t0);
}

/* ru_maxrss of the processes that run devices: the worker processes with --workers (the
   backend and its ledger live in this one), else this process, backend included. */
static uint64_t run_device_rss(const struct run_state *s)
{
    return s->o->workers > 1 ? s->fig.peak_rss_kib : s->self_rss_kib;
}

/* Proportional set size: this process's peak plus the workers' peaks (an upper bound of
   the peak of the sum). */
static uint64_t run_pss(const struct run_state *s)
{
    return s->o->workers > 1 ? s->self_pss_kib + s->fig.peak_pss_kib : s->fig.peak_pss_kib;
}

static void print_summary(const struct run_state *s, int exit_code)
{
    const struct fleet_figures *g = &s->fig;
    const struct run_opts *o = s->o;
    uint64_t reconnects = g->connects > g->ever_connected ? g->connects - g->ever_connected : 0;
    uint64_t rss = s->self_rss_kib + (o->workers > 1 ? g->peak_rss_kib : 0);

    if (s->tty)
        fputc('\n', stdout);
    printf("\nscansim run: %ld devices (%s layout), %ld worker process%s, %.1f s\n", o->devices,
           o->c.layout == SIM_LAYOUT_SEED ? "seed" : "per-device", o->workers,
           o->workers == 1 ? "" : "es", (double)(s->t_end - s->t_start) / 1000.0);
    printf("  %-34s %" PRIu64 " of %" PRIu64 "\n", "devices connected", g->ever_connected, g->devices);
    if (g->connect_seconds >= 0)
        printf("  %-34s %.2f s\n", "time to connect all", g->connect_seconds);
    else
        printf("  %-34s not all connected\n", "time to connect all");
    if (s->have_ledger) {
        printf("  %-34s %" PRIu64 "\n", "items published", s->led.published);
        printf("  %-34s %" PRIu64 "\n", "items registered", s->led.registered);
        printf("  %-34s %" PRIu64 "%s\n", "items lost", s->led.lost,
               g->cancels ? " (includes items the operators cancelled)" : "");
        if (o->c.layout == SIM_LAYOUT_SEED)
            printf("  %-34s %" PRIu64 " (expected: every device sees every item)\n",
                   "items registered by several devices", s->led.registered_twice);
        else
            printf("  %-34s %" PRIu64 "\n", "items registered twice", s->led.registered_twice);
        printf("  %-34s %.0f /s\n", "registrations per second", rate_final(s));
        printf("  %-34s p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms\n", "latency publish->registration",
               s->led.latency_p50_ms, s->led.latency_p90_ms, s->led.latency_p99_ms, s->led.latency_max_ms);
        printf("  %-34s %" PRIu64 "\n", "device re-sends dropped by ledger", s->led.duplicate_deliveries);
    } else {
        printf("  %-34s (no backend: --no-backend)\n", "ledger");
    }
    printf("  %-34s %" PRIu64 " received, %" PRIu64 " registered, %" PRIu64 " acknowledged\n",
           "device side", g->items_received, g->registrations_confirmed, g->registrations_acked);
    printf("  %-34s %" PRIu64 "\n", "duplicates suppressed (devices)", g->duplicates_suppressed);
    printf("  %-34s %" PRIu64 " cancels, %" PRIu64 " wrong tags, %" PRIu64 " look-ups\n", "operators",
           g->cancels, g->wrong_tags, g->inventory_queries);
    printf("  %-34s %" PRIu64 " reconnects, %" PRIu64 " connect failures, %" PRIu64 " losses\n",
           "connections", reconnects, g->connect_failures, g->connection_losses);
    printf("  %-34s %" PRIu64 " queue full, %" PRIu64 " outbox full, %" PRIu64 " rejects, %" PRIu64
           " publish errors\n", "device errors", g->queue_full, g->outbox_full, g->rejects,
           g->publish_errors);
    printf("  %-34s %" PRIu64 " KiB, %.1f KiB per device%s\n", "peak RSS (ru_maxrss)", rss,
           o->devices ? (double)run_device_rss(s) / (double)o->devices : 0.0,
           o->workers > 1 ? " (device processes)" : " (backend included)");
    printf("  %-34s %" PRIu64 " KiB, %.1f KiB per device\n", "peak PSS (shared pages split)",
           run_pss(s), o->devices ? (double)run_pss(s) / (double)o->devices : 0.0);
    if (g->last_failure[0] && (g->connect_failures || g->connection_losses))
        printf("  %-34s %s\n", "last connection problem", g->last_failure);
    printf("  %-34s %d\n", "exit code", exit_code);
    fflush(stdout);
}

static int write_json(const struct run_state *s, int exit_code)
{
    const struct fleet_figures *g = &s->fig;
    const struct run_opts *o = s->o;
    uint64_t reconnects = g->connects > g->ever_connected ? g->connects - g->ever_connected : 0;
    uint64_t rss = s->self_rss_kib + (o->workers > 1 ? g->peak_rss_kib : 0);
    cJSON *j = cJSON_CreateObject(), *lat;
    char *text = NULL;
    FILE *fp;
    int rc = -1;

    if (!j)
        return -1;
#define NUM(k, v) cJSON_AddNumberToObject(j, k, (double)(v))
    NUM("devices_requested", o->devices);
    NUM("devices_connected", g->ever_connected);
    NUM("devices_connected_at_end", g->connected);
    cJSON_AddStringToObject(j, "layout", o->c.layout == SIM_LAYOUT_SEED ? "seed" : "per-device");
    NUM("workers", o->workers);
    cJSON_AddBoolToObject(j, "backend", !o->no_backend);
    if (s->have_ledger) {
        NUM("items_published", s->led.published);
        NUM("items_registered", s->led.registered);
        NUM("items_lost", s->led.lost);
        NUM("duplicate_registrations", o->c.layout == SIM_LAYOUT_SEED ? 0 : s->led.registered_twice);
        NUM("items_registered_by_several_devices", s->led.registered_twice);
        NUM("ledger_duplicate_deliveries", s->led.duplicate_deliveries);
        NUM("ledger_malformed", s->led.malformed);
        NUM("ledger_unknown_items", s->led.unknown_items);
        NUM("publish_failed", s->led.publish_failed + s->publish_failed);
        NUM("window_skips", s->gate_skips);
        NUM("registrations_per_second", rate_final(s));
        lat = cJSON_AddObjectToObject(j, "latency_ms");
        if (lat) {
            cJSON_AddNumberToObject(lat, "p50", s->led.latency_p50_ms);
            cJSON_AddNumberToObject(lat, "p90", s->led.latency_p90_ms);
            cJSON_AddNumberToObject(lat, "p99", s->led.latency_p99_ms);
            cJSON_AddNumberToObject(lat, "max", s->led.latency_max_ms);
        }
    } else {
        cJSON_AddNullToObject(j, "items_published");
        cJSON_AddNullToObject(j, "items_registered");
        cJSON_AddNullToObject(j, "items_lost");
        cJSON_AddNullToObject(j, "duplicate_registrations");
        cJSON_AddNullToObject(j, "latency_ms");
        NUM("registrations_per_second", rate_final(s));
    }
    NUM("items_received", g->items_received);
    NUM("items_queued", g->items_queued);
    NUM("registrations_confirmed", g->registrations_confirmed);
    NUM("registrations_acked", g->registrations_acked);
    NUM("registrations_resent", g->registrations_resent);
    NUM("duplicates_suppressed", g->duplicates_suppressed);
    NUM("items_cancelled", g->cancels);
    NUM("wrong_tags", g->wrong_tags);
    NUM("inventory_queries", g->inventory_queries);
    NUM("inventory_answers", g->inventory_answers);
    NUM("inventory_timeouts", g->inventory_timeouts);
    NUM("queue_full", g->queue_full);
    NUM("outbox_full", g->outbox_full);
    NUM("rejects", g->rejects);
    NUM("reconnects", reconnects);
    NUM("connect_failures", g->connect_failures);
    NUM("connection_losses", g->connection_losses);
    NUM("publish_errors", g->publish_errors);
    if (g->connect_seconds >= 0)
        NUM("connect_seconds", g->connect_seconds);
    else
        cJSON_AddNullToObject(j, "connect_seconds");
    NUM("duration_seconds", (double)(s->t_end - s->t_start) / 1000.0);
    NUM("peak_rss_kib", rss);
    NUM("peak_rss_device_processes_kib", run_device_rss(s));
    NUM("peak_rss_per_device_kib", o->devices ? (double)run_device_rss(s) / (double)o->devices : 0.0);
    NUM("peak_pss_kib", run_pss(s));
    NUM("peak_pss_per_device_kib", o->devices ? (double)run_pss(s) / (double)o->devices : 0.0);
    cJSON_AddBoolToObject(j, "interrupted", run_signals > 0);
    NUM("exit_code", exit_code);
#undef NUM
    text = cJSON_Print(j);
    if (!text)
        goto out;
    fp = fopen(o->json_path, "w");
    if (!fp) {
        sim_cli_error(CMD, "--json: cannot write %s: %s", o->json_path, strerror(errno));
        goto out;
    }
    fputs(text, fp);
    fputc('\n', fp);
    rc = fclose(fp) == 0 ? 0 : -1;
    if (rc)
        sim_cli_error(CMD, "--json: cannot write %s: %s", o->json_path, strerror(errno));
out:
    free(text);
    cJSON_Delete(j);
    return rc;
}

/* ------------------------------------------------------------------ the run */

struct run_ctx {
    struct run_opts *o;
    struct fleet *fleet;             /* in-process devices (workers == 1) */
    struct fleet_workers *workers;   /* or shards */
    struct hx_backend *backend;
    struct fleet_driver *driver;
    double credit;
    uint64_t last_start_ms;
};

static void gather(struct run_ctx *c, struct run_state *s, bool ledger)
{
    if (c->workers) {
        uint64_t pss = fleet_pss_kib();
        fleet_workers_poll(c->workers, 0);
        fleet_workers_figures(c->workers, &s->fig);
        s->fig.devices = (uint64_t)c->o->devices;
        if (pss > s->self_pss_kib)
            s->self_pss_kib = pss;
    } else {
        fleet_figures(c->fleet, &s->fig);
    }
    if (c->backend && ledger) {
        hx_backend_report(c->backend, &s->led);
        s->have_ledger = true;
    }
    if (c->driver) {
        s->published = fleet_driver_published(c->driver);
        s->publish_failed = fleet_driver_failed(c->driver);
        s->gate_skips = fleet_driver_gate_skips(c->driver);
    }
}

/* Power on more devices as the connect rate allows (in-process fleet only). */
static void start_devices(struct run_ctx *c, uint64_t now)
{
    if (!c->fleet || fleet_unstarted(c->fleet) == 0)
        return;
    if (c->o->connect_rate <= 0) {
        fleet_start_some(c->fleet, fleet_unstarted(c->fleet));
        return;
    }
    if (c->last_start_ms == 0)
        c->credit = c->o->connect_rate / 100.0 + 1; /* a first small batch at once */
    else
        c->credit += c->o->connect_rate * (double)(now - c->last_start_ms) / 1000.0;
    if (c->credit > c->o->connect_rate)
        c->credit = c->o->connect_rate;
    c->last_start_ms = now;
    c->credit -= fleet_start_some(c->fleet, (int)c->credit);
}

static uint64_t registered_now(struct run_ctx *c, struct run_state *s)
{
    (void)c;
    return s->have_ledger ? s->led.registered : s->fig.registrations_acked;
}

int scansim_cmd_run(int argc, char **argv)
{
    struct run_opts o;
    struct run_ctx c;
    struct run_state s;
    struct hx_broker *embedded = NULL;
    const char *uri = NULL;
    int rc, exit_code = SIM_EXIT_INTERNAL;
    uint64_t next_progress, next_ledger = 0;

    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    rc = run_parse(argc, argv, &o);
    if (rc > 0)
        return SIM_EXIT_OK;
    if (rc < 0)
        return SIM_EXIT_USAGE;
    raise_fd_limit();
    run_install_signals(o.shard >= 0);
    if (o.shard >= 0)
        return run_shard(&o);

    if (!o.items && !o.item_rate && !o.duration_ms && !o.no_backend)
        o.items = 10 * o.devices;
    c.o = &o;
    s.o = &o;
    s.tty = isatty(STDOUT_FILENO);
    if (o.workers == 1 && o.devices + 64 > fd_limit())
        fprintf(stderr, "scansim run: warning: %ld devices need about %ld file descriptors, the "
                "limit is %ld: use --workers K or raise 'ulimit -n'\n", o.devices, o.devices + 64,
                fd_limit());

    if (sim_cli_broker_up(CMD, &o.c, &embedded, &uri) != 0)
        return SIM_EXIT_BROKER;
    s.t_start = sim_clock_ms();

    /* the devices first (created, not powered on): the fleet's first Paho client (its
       waker) must be the process's first, see fleet_devices.c */
    if (o.workers > 1) {
        if (fleet_workers_spawn((int)o.workers, argv + 1, argc - 1, (int)o.devices, o.id_start, uri,
                                o.c.password,
                                &c.workers) != 0)
            goto out;
    } else {
        struct fleet_opts fo;
        fleet_opts_from(&o, uri, &fo);
        rc = fleet_create(&fo, &c.fleet);
        if (rc != SIM_OK) {
            exit_code = rc == SIM_ERR_INVAL || rc == SIM_ERR_IO ? SIM_EXIT_USAGE : SIM_EXIT_INTERNAL;
            goto out;
        }
    }
    /* then the backend: its subscriptions exist before any device is powered on */
    if (!o.no_backend) {
        struct hx_backend_opts bo;
        char cid[64];
        memset(&bo, 0, sizeof(bo));
        snprintf(cid, sizeof(cid), "scansim-backend-%ld", (long)getpid());
        bo.uri = uri;
        bo.client_id = cid;
        bo.username = o.c.username;
        bo.password = o.c.password;
        bo.cafile = o.c.cafile;
        bo.certfile = o.c.cert;
        bo.keyfile = o.c.key;
        bo.mqtt_version = o.c.protocol_version == 5 ? 5 : 4;
        bo.layout = o.c.layout == SIM_LAYOUT_SEED ? HX_BACKEND_LAYOUT_SEED : HX_BACKEND_LAYOUT_PER_DEVICE;
        bo.clean_session = true; /* a run's ledger starts empty: so does its session */
        bo.keepalive_s = o.c.keepalive_s ? o.c.keepalive_s : 30;
        bo.db_path = o.db_path;
        bo.connect_timeout_ms = (int)(o.connect_timeout_ms < 10000 ? o.connect_timeout_ms : 10000);
        if (hx_backend_create(&bo, &c.backend) != HX_OK) {
            sim_cli_error(CMD, "backend: %s", hx_backend_last_error());
            exit_code = o.db_path ? SIM_EXIT_USAGE : SIM_EXIT_INTERNAL;
            goto out;
        }
        if (hx_backend_start(c.backend) != HX_OK) {
            sim_cli_error(CMD, "backend could not connect: %s", hx_backend_last_error());
            exit_code = SIM_EXIT_BROKER;
            goto out;
        }
        struct fleet_driver_opts dopt = {
            .backend = c.backend, .devices = (int)o.devices, .id_prefix = o.id_prefix,
            .id_start = o.id_start, .per_device = o.c.layout != SIM_LAYOUT_SEED,
            .items = (uint64_t)o.items, .rate = o.item_rate, .window = (int)o.window,
            .max_open = (uint64_t)o.max_in_flight,
            .gate_timeout_ms = 5000 + 4 * o.think_max_ms,
        };
        if (fleet_driver_create(&dopt, &c.driver) != 0) {
            sim_cli_error(CMD, "out of memory");
            goto out;
        }
    }

    if (!s.tty)
        printf("scansim run: %ld devices on %s (%s layout)\n", o.devices, uri,
               o.c.layout == SIM_LAYOUT_SEED ? "seed" : "per-device");

    /* phase 1: connect (publishing waits: an item for a device without a session is
       dropped by the broker) */
    next_progress = sim_clock_ms() + 1000;
    for (;;) {
        uint64_t now = sim_clock_ms();
        start_devices(&c, now);
        gather(&c, &s, false);
        if (s.fig.ever_connected >= (uint64_t)o.devices)
            break;
        if (run_signals)
            break;
        if (now - s.t_start >= o.connect_timeout_ms) {
            if (s.fig.ever_connected == 0) {
                sim_cli_error(CMD, "no device connected to %s within %.0f s%s%s - check the broker "
                                   "URI, that it runs, and the credentials", uri,
                              (double)o.connect_timeout_ms / 1000.0,
                              s.fig.last_failure[0] ? ": " : "", s.fig.last_failure);
                s.connect_gave_up = true;
                break;
            }
            fprintf(stderr, "scansim run: only %" PRIu64 " of %ld devices connected within %.0f s; "
                    "going on with them\n", s.fig.ever_connected, o.devices,
                    (double)o.connect_timeout_ms / 1000.0);
            break;
        }
        if (now >= next_progress) {
            next_progress = now + 1000;
            progress_line(&s);
        }
        if (c.workers)
            fleet_workers_poll(c.workers, 20);
        else
            nap_ms(10);
    }

    /* phase 2: publish (or, without a backend, let the user's backend drive) */
    s.t_pub_start = sim_clock_ms();
    s.t_last_progress = s.t_pub_start;
    if (!s.connect_gave_up) {
        uint64_t grace_from = 0, grace_ms = o.grace_ms;
        int seen_signals = 0;
        for (;;) {
            uint64_t now = sim_clock_ms();
            start_devices(&c, now);
            if (c.driver && !fleet_driver_done_publishing(c.driver)) {
                bool stop = run_signals > 0 ||
                            (o.duration_ms && now - s.t_pub_start >= o.duration_ms);
                if (stop)
                    fleet_driver_close(c.driver);
                else
                    fleet_driver_pump(c.driver, now, 5000);
            }
            if (!c.driver && (run_signals || (o.duration_ms && now - s.t_pub_start >= o.duration_ms)))
                break; /* --no-backend: the user's backend drove; stop now */
            if (run_signals != seen_signals) {
                seen_signals = run_signals;
                if (seen_signals >= 2)
                    break; /* second Ctrl-C: at once */
                grace_ms = o.grace_ms < 3000 ? o.grace_ms : 3000;
                if (s.tty)
                    fputc('\n', stdout);
                fprintf(stderr, "scansim run: stopping: publishing stopped, waiting up to %.0f s for "
                        "registrations (Ctrl-C again to stop at once)\n", (double)grace_ms / 1000.0);
            }
            if (now >= next_ledger) {
                /* the ledger report walks and sorts every item's latency: once a second
                   (the end of the run is caught by hx_backend_wait_registered below) */
                next_ledger = now + 1000;
                gather(&c, &s, true);
                uint64_t reg = registered_now(&c, &s);
                if (reg != s.last_registered) {
                    s.t_last_progress = now;
                    if (grace_from)
                        grace_from = now;
                }
                if (now >= next_progress) {
                    double dt = (double)(now - (s.last_rate_ms ? s.last_rate_ms : s.t_pub_start)) / 1000.0;
                    s.rate_now = dt > 0 ? (double)(reg - s.reg_at_last_line) / dt : 0;
                    s.reg_at_last_line = reg;
                    s.last_rate_ms = now;
                    next_progress = now + 1000;
                    progress_line(&s);
                }
                s.last_registered = reg;
                if (c.driver && fleet_driver_done_publishing(c.driver)) {
                    if (!grace_from)
                        grace_from = now;
                    if (s.led.registered >= s.led.published && s.led.published == s.published &&
                        (o.c.layout != SIM_LAYOUT_SEED ||
                         s.fig.registrations_acked >= s.fig.ever_connected * s.published))
                        break; /* everything registered (seed: by every device) */
                    if (o.c.layout != SIM_LAYOUT_SEED && s.fig.cancels > 0 &&
                        s.led.registered + s.fig.cancels >= s.published)
                        break; /* the rest were cancelled by the operators: nothing to wait for */
                    if (now - grace_from >= grace_ms)
                        break; /* no progress for the grace period */
                }
            }
            /* per-device layout: done when the ledger has every item (the seed layout waits
               for the other devices' registrations: the grace rule above) */
            if (c.driver && o.c.layout != SIM_LAYOUT_SEED && fleet_driver_done_publishing(c.driver) &&
                fleet_driver_published(c.driver) > 0 &&
                hx_backend_wait_registered(c.backend, fleet_driver_published(c.driver),
                                           c.workers ? 0 : 5) == HX_OK) {
                s.t_last_progress = sim_clock_ms(); /* the moment the last item registered */
                break;
            }
            if (c.workers)
                fleet_workers_poll(c.workers, 2);
            else
                nap_ms(2);
        }
    }
    s.t_pub_end = sim_clock_ms();

    /* phase 3: stop the devices (clean power-off), then settle the ledger */
    if (c.workers)
        fleet_workers_stop(c.workers, 30000);
    else if (c.fleet)
        fleet_stop(c.fleet);
    if (o.c.verbose)
        fprintf(stderr, "scansim run: devices stopped in %.1f s\n",
                (double)(sim_clock_ms() - s.t_pub_end) / 1000.0);
    if (c.backend) {
        (void)hx_backend_sync(c.backend, 5000);
        (void)hx_backend_stop(c.backend);
    }
    gather(&c, &s, true);
    s.t_end = sim_clock_ms();
    s.self_rss_kib = fleet_peak_rss_kib();
    if (!c.workers && c.fleet)
        s.fig.peak_rss_kib = 0; /* self_rss_kib counts it */

    if (s.connect_gave_up)
        exit_code = SIM_EXIT_BROKER;
    else if (s.have_ledger &&
             (s.led.lost > (o.c.layout == SIM_LAYOUT_SEED ? 0 : s.fig.cancels) ||
              (o.c.layout != SIM_LAYOUT_SEED && s.led.registered_twice > 0) ||
              s.led.published < s.published))
        exit_code = SIM_EXIT_FAILED;
    else
        exit_code = SIM_EXIT_OK;
    print_summary(&s, exit_code);
    if (o.json_path && write_json(&s, exit_code) != 0 && exit_code == SIM_EXIT_OK)
        exit_code = SIM_EXIT_INTERNAL;

out:
    fleet_workers_free(c.workers);
    {
        uint64_t t0 = sim_clock_ms();
        fleet_free(c.fleet);
        if (o.c.verbose && c.fleet)
            fprintf(stderr, "scansim run: teardown %.1f s\n", (double)(sim_clock_ms() - t0) / 1000.0);
    }
    fleet_driver_free(c.driver);
    hx_backend_free(c.backend);
    sim_cli_broker_down(&o.c, embedded);
    return exit_code;
}
