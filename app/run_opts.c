/*
 * run_opts.c - `scansim run`'s options and its shard loop (run_opts.h), shared by scansim
 * and the worker program scansim-worker.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "run_opts.h"
#include "sim/fleet_shared_rows.h"
#include "sim/clock.h"
#include "sim/err.h"
#include "sim/mqtt.h"

#define CMD "run"

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
    "  --shard I/N             run shard I (0..N-1) of a fleet split over N runs, on other\n"
    "                          machines maybe: --devices and --items are the whole fleet's,\n"
    "                          this run takes its contiguous part of the ids and a backend\n"
    "                          for exactly those devices (per-device layout, --broker needed).\n"
    "                          Shards share nothing but the broker; 'scansim merge' adds\n"
    "                          their --json files up\n"
    "  --shards N              the same, with I from JOB_COMPLETION_INDEX (as a Kubernetes\n"
    "                          Indexed Job sets it)\n"
    "  --threads N             event-loop threads owning the devices (default: one per core)\n"
    "  --workers K|auto        split the fleet over K processes; the backend runs in this\n"
    "                          one (--workers 1: one process). auto (the default): the\n"
    "                          fewest that fit - with libmosquitto as many devices a\n"
    "                          process as its file descriptors allow (3 a device); with\n"
    "                          Paho, whose cost per message grows with the clients of a\n"
    "                          process, one per 1,000 devices (at least 2 from 100 on)\n"
    "  --flash DIR             keep each device's flash in DIR/<id>/ (default: memory)\n"
    "  --trace DIR             record each device's trace as DIR/<id>.fwtrace\n"
    "                          (docs/trace.md; replay with fw_trace_replay)\n"
    "Identities (per device; for brokers with per-device ACLs, 'pattern ... %u' / '%c'):\n"
    "  --cert-dir DIR          each device's client certificate DIR/<id>.crt and key\n"
    "                          DIR/<id>.key (ssl:// broker); every file is checked at start;\n"
    "                          --cert/--key are then the backend's alone\n"
    "  --password-file FILE    'id:password' lines, one per device (never printed)\n"
    "  --id-as-username        each device's MQTT user name is its id (default: -u, or none)\n"
    "Brokers:\n"
    "  --broker URI            given several times: devices are spread round-robin over the\n"
    "                          brokers by id (cluster nodes, or separate brokers: the backend\n"
    "                          then has one client on each, for that broker's devices)\n"
    "  --bind ADDR,...         connect the devices from these local (source) addresses,\n"
    "                          round-robin by id, e.g. 127.0.0.2,127.0.0.3 (all of 127/8\n"
    "                          is loopback on Linux): each address has its own ephemeral\n"
    "                          ports (~28,000; connects stay fast up to ~14,000 devices\n"
    "                          an address), so one machine passes 64,000 connections.\n"
    "                          libmosquitto only: Paho has no source-address option\n"
    "  --connect-rate N/s      power on at most N devices a second (default 2000/s)\n"
    "  --connect-timeout DUR   give up waiting for connections after DUR (default 60s);\n"
    "                          no device connected by then exits 3\n"
    "  --event-batch DUR       each device thread handles the messages that reached its\n"
    "                          devices at most every DUR (0: each at once). One wake-up\n"
    "                          then serves many: at 10,000 devices 15-25 % less CPU per\n"
    "                          registration, but up to DUR more latency per message.\n"
    "                          Default 10ms at full speed, 0 with --item-rate (a paced run\n"
    "                          is for latency: it then is the broker's and the backend's)\n"
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
    "  --max-in-flight N       unfinished items in all (default 1000; 0: only --window\n"
    "                          limits). More does not register faster, it only queues:\n"
    "                          latency grows with it; the backend's one Paho client slows\n"
    "                          down with very many messages in flight\n"
    "  --command-rate R/s      also send R remote commands a second (up to 100000) to\n"
    "                          random devices while publishing: status, identify 1 s, a\n"
    "                          message (the operators dismiss it), config contrast; each\n"
    "                          must be answered ok (a refusal or no reply within 5 s exits\n"
    "                          1). The whole fleet's rate, as --item-rate; seeded by --seed\n"
    "  --db FILE               keep the SQLite ledger in FILE (default: in memory)\n"
    "  --no-backend            do not publish items: your own backend drives the devices;\n"
    "                          no ledger figures, devices still count what they did\n"
    "Output:\n"
    "  --json FILE             write the figures as JSON to FILE\n"
    "  --report FILE.html      write one self-contained HTML report (charts over time, a\n"
    "                          latency histogram, the summary) that opens offline\n"
    "  --http ADDR:PORT        serve the dashboard (items, devices with their live OLEDs,\n"
    "                          charts) and Prometheus /metrics, e.g. 127.0.0.1:8080\n"
    "  --http-token T          require this token (Bearer, ?token= or its cookie); on an\n"
    "                          address other than loopback one is generated if not given\n"
    "  --broker-pid PID        a broker on this machine: count its CPU time in the CPU per\n"
    "                          registration figures (the embedded broker always counts)\n"
    "  A progress line once a second (rewritten in place on a terminal), a summary at the\n"
    "  end. Ctrl-C stops publishing and waits a short grace; a second Ctrl-C stops at once.\n"
    "  The default topic layout of run is per-device; --layout seed sends every item to\n"
    "  every device (as the seed did), so items are registered by several devices.\n"
    "\n"
    "Supervision: a worker process or the embedded broker that dies is named at once with\n"
    "its cause; a dead worker's devices count as offline and their unfinished items go to\n"
    "live devices (or count as lost, with that reason). 'online' is now, 'ever connected'\n"
    "is since the start; an item counts as published once the broker acknowledged it.\n"
    "\n"
    "Exit codes: 0 every item registered exactly once; 1 items lost (beyond the operators'\n"
    "cancels) or registered twice, or a worker process died; 2 usage (a bad --shard, a\n"
    "missing certificate or password); 3 broker unreachable or refused (no device connected\n"
    "within --connect-timeout, the backend could not connect, the embedded broker died, or\n"
    "the broker was unreachable for --connect-timeout during the run); 4 internal.\n"
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
    {"trace", required_argument, 0, 0x2040},
    {"think", required_argument, 0, 0x200a},
    {"wrong-tag-rate", required_argument, 0, 0x200b},
    {"cancel-rate", required_argument, 0, 0x200c},
    {"inventory-rate", required_argument, 0, 0x200d},
    {"connect-rate", required_argument, 0, 0x200e},
    {"connect-timeout", required_argument, 0, 0x200f},
    {"window", required_argument, 0, 0x2010},
    {"max-in-flight", required_argument, 0, 0x2016},
    {"command-rate", required_argument, 0, 0x2070},
    {"seed", required_argument, 0, 0x2011},
    {"db", required_argument, 0, 0x2012},
    {"json", required_argument, 0, 0x2013},
    {"http", required_argument, 0, 0x2050},
    {"http-token", required_argument, 0, 0x2051},
    {"report", required_argument, 0, 0x2052},
    {"no-backend", no_argument, 0, 0x2014},
    {"worker-index", required_argument, 0, 0x2015},
    {"rows-fd", required_argument, 0, 0x2060},
    {"shard", required_argument, 0, 0x2017},
    {"shards", required_argument, 0, 0x2018},
    {"cert-dir", required_argument, 0, 0x2019},
    {"password-file", required_argument, 0, 0x201a},
    {"id-as-username", no_argument, 0, 0x201b},
    {"broker-pid", required_argument, 0, 0x2030},
    {"event-batch", required_argument, 0, 0x2031},
    {"bind", required_argument, 0, 0x2032},
    {"help", no_argument, 0, 'h'},
    SCANSIM_CLI_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

/* ------------------------------------------------------------------ signals */

volatile sig_atomic_t run_signals; /* SIGINT/SIGTERM count */

static void run_on_signal(int sig)
{
    (void)sig;
    run_signals++;
}

void run_install_signals(bool worker)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = run_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    if (worker) {
        /* Ctrl-C reaches the whole process group: the parent decides for its shards */
        signal(SIGINT, SIG_IGN);
    } else {
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------ helpers */

void run_raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

long run_fd_limit(void)
{
    struct rlimit rl;

    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : 1024;
}

void run_nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL); /* EINTR (a signal) just ends the nap early */
}

/* ------------------------------------------------------------------ options */

/* --shard / --shards: the combination, and the index from the environment. */
static int run_check_shard(struct run_opts *o, long shards)
{
    char why[200];

    if (o->worker_index >= 0)
        return 0; /* a worker of a run: the run applied the shard already */
    if (shards && o->shard.count) {
        scansim_cli_error(CMD, "--shard I/N and --shards N: give one (--shards takes I from "
                           "JOB_COMPLETION_INDEX)");
        return -1;
    }
    if (shards) {
        int r = shard_from_env(getenv("JOB_COMPLETION_INDEX"), shards, &o->shard, why, sizeof why);
        if (r > 0) {
            scansim_cli_error(CMD, "--shards %ld: JOB_COMPLETION_INDEX is not set (a Kubernetes "
                               "Indexed Job sets it); elsewhere give --shard I/%ld", shards, shards);
            return -1;
        }
        if (r < 0) {
            scansim_cli_error(CMD, "--shards: %s", why);
            return -1;
        }
    }
    if (!o->shard.count || o->worker_index >= 0)
        return 0;
    if (!o->c.broker_uri) {
        scansim_cli_error(CMD, "--shard needs --broker URI: shards share one broker (or cluster), "
                           "which an embedded broker of each shard would not be");
        return -1;
    }
    if (o->c.layout == SCANSIM_LAYOUT_SEED) {
        scansim_cli_error(CMD, "--shard needs the per-device layout: in the seed layout every "
                           "device shares one topic, so one shard's backend would see the others'");
        return -1;
    }
    if (o->shard.count > o->devices) {
        scansim_cli_error(CMD, "--shard %ld/%ld: more shards than --devices %ld (the whole fleet's)",
                      o->shard.index, o->shard.count, o->devices);
        return -1;
    }
    if (o->items && o->items < o->shard.count) {
        scansim_cli_error(CMD, "--shard %ld/%ld: --items %ld is the whole fleet's, fewer than one "
                           "per shard", o->shard.index, o->shard.count, o->items);
        return -1;
    }
    return 0;
}

/* --cert-dir / --password-file / --id-as-username: what goes with what. The files
   themselves are read when the fleet is made (fleet_identity.c), device by device. */
static int run_check_identity(const struct run_opts *o)
{
    if (o->cert_dir && !sim_mqtt_uri_is_tls(o->c.broker_uri)) {
        scansim_cli_error(CMD, "--cert-dir needs an ssl:// broker (--broker ssl://host:8883): a "
                           "client certificate is presented in the TLS handshake");
        return -1;
    }
    if ((o->password_file || o->id_as_username) && !o->c.broker_uri) {
        scansim_cli_error(CMD, "--password-file and --id-as-username need --broker: the embedded "
                           "broker is anonymous");
        return -1;
    }
    if (o->password_file && !o->id_as_username && !o->c.username) {
        scansim_cli_error(CMD, "--password-file needs a user name: --id-as-username (each device "
                           "logs in as its id) or -u NAME");
        return -1;
    }
    return 0;
}

/* --bind ADDR,...: numeric IPv4 or IPv6 addresses (given several times, they add up). */
static int run_parse_bind(struct run_opts *o, const char *arg)
{
    size_t n = strlen(arg);
    char *word, *save = NULL;

    if (o->bind_used + n + 1 > sizeof(o->bind_text)) {
        scansim_cli_error(CMD, "--bind: too many addresses (at most %d)", FLEET_BINDS_MAX);
        return -1;
    }
    if (n == 0 || arg[0] == ',' || arg[n - 1] == ',' || strstr(arg, ",,")) {
        scansim_cli_error(CMD, "--bind: expected addresses separated by commas, such as "
                           "127.0.0.2,127.0.0.3, got '%s'", arg);
        return -1;
    }
    word = memcpy(o->bind_text + o->bind_used, arg, n + 1);
    o->bind_used += n + 1;
    for (word = strtok_r(word, ",", &save); word; word = strtok_r(NULL, ",", &save)) {
        unsigned char addr[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, word, addr) != 1 && inet_pton(AF_INET6, word, addr) != 1) {
            scansim_cli_error(CMD, "--bind: '%s' is not a numeric IPv4 or IPv6 address (such as "
                               "127.0.0.2)", word);
            return -1;
        }
        if (o->n_binds == FLEET_BINDS_MAX) {
            scansim_cli_error(CMD, "--bind: too many addresses (at most %d)", FLEET_BINDS_MAX);
            return -1;
        }
        o->binds[o->n_binds++] = word;
    }
    return 0;
}

/* After the transport is known: Paho cannot choose a source address. */
static int run_check_bind(const struct run_opts *o)
{
    if (o->n_binds && sim_mqtt_default_kind() == SIM_MQTT_PAHO) {
        scansim_cli_error(CMD, "--bind needs --transport mosquitto: Paho MQTTAsync has no option "
                           "for a connection's source address, so with Paho every device "
                           "connects from the system's choice (one address, ~28,000 ports)");
        return -1;
    }
    return 0;
}

/* --bind with more devices an address than half the ephemeral range: a note (not an
   error). Linux's bind() with port 0 takes the even ports of ip_local_port_range first and
   then searches the rest one by one: measured here, 50,000 devices on 3 addresses (16,667
   each) connected in 97 s with 100 s of kernel CPU and 29 time-outs, on 4 (12,500 each)
   in 33 s with none (docs/distributed.md). */
static void run_note_bind_ports(const struct run_opts *o)
{
    long lo = 32768, hi = 60999, off, n = o->devices, per;
    FILE *f;

    if (!o->n_binds || o->worker_index >= 0)
        return;
    if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r"))) {
        if (fscanf(f, "%ld %ld", &lo, &hi) != 2)
            lo = 32768, hi = 60999;
        fclose(f);
    }
    if (o->shard.count)
        shard_part(o->devices, o->shard.index, o->shard.count, &off, &n);
    per = (n + o->n_binds - 1) / o->n_binds;
    if (hi > lo && per > (hi - lo + 1) / 2)
        fprintf(stderr, "scansim run: note: %ld devices a source address (--bind) is more than "
                "half of the %ld ephemeral ports (%ld-%ld); Linux then finds ports for bind() "
                "slowly and connects slow down several times: give %ld addresses or more\n",
                per, hi - lo + 1, lo, hi, (n + (hi - lo + 1) / 2 - 1) / ((hi - lo + 1) / 2));
}

static int run_check_fds(const struct run_opts *o);

/* The options that are a plain value of struct run_opts, parsed by kind (cli.h). */
#define RUN_FIELD(opt, kind, flag, field, min, max) \
    SCANSIM_CLI_FIELD(struct run_opts, opt, kind, flag, field, min, max)

static const struct scansim_cli_field run_fields[] = {
    RUN_FIELD('n', INT, "--devices", devices, 1, 1000000),
    RUN_FIELD(0x2001, INT, "--items", items, 1, 2000000000L),
    RUN_FIELD(0x2002, RATE, "--item-rate", item_rate, 0, 0),
    RUN_FIELD(0x2004, DURATION, "--grace", grace_ms, 0, 0),
    RUN_FIELD(0x2006, INT, "--id-start", id_start, 0, 1000000000L),
    RUN_FIELD(0x2007, INT, "--threads", threads, 1, 256),
    RUN_FIELD(0x2009, TEXT, "--flash", flash_dir, 0, 0),
    RUN_FIELD(0x2040, TEXT, "--trace", trace_dir, 0, 0),
    RUN_FIELD(0x200b, PROBABILITY, "--wrong-tag-rate", wrong_tag_rate, 0, 0),
    RUN_FIELD(0x200c, PROBABILITY, "--cancel-rate", cancel_rate, 0, 0),
    RUN_FIELD(0x200d, PROBABILITY, "--inventory-rate", inventory_rate, 0, 0),
    RUN_FIELD(0x200f, DURATION, "--connect-timeout", connect_timeout_ms, 0, 0),
    RUN_FIELD(0x2010, INT, "--window", window, 1, FW_PENDING_ITEMS),
    RUN_FIELD(0x2016, INT, "--max-in-flight", max_in_flight, 0, 100000000L),
    RUN_FIELD(0x2011, INT, "--seed", seed, 0, 0xffffffffL),
    RUN_FIELD(0x2012, TEXT, "--db", db_path, 0, 0),
    RUN_FIELD(0x2013, TEXT, "--json", json_path, 0, 0),
    RUN_FIELD(0x2050, TEXT, "--http", http_listen, 0, 0),
    RUN_FIELD(0x2051, TEXT, "--http-token", http_token, 0, 0),
    RUN_FIELD(0x2052, TEXT, "--report", report_path, 0, 0),
    RUN_FIELD(0x2014, FLAG, "--no-backend", no_backend, 0, 0),
    RUN_FIELD(0x2015, INT, "--worker-index", worker_index, 0, 255),
    RUN_FIELD(0x2019, TEXT, "--cert-dir", cert_dir, 0, 0),
    RUN_FIELD(0x201a, TEXT, "--password-file", password_file, 0, 0),
    RUN_FIELD(0x201b, FLAG, "--id-as-username", id_as_username, 0, 0),
};

/* 1 when opt is a table field (set, or -1 when its value is wrong), 0 when it is not one. */
static int run_parse_field(struct run_opts *o, int opt, const char *arg)
{
    return scansim_cli_parse_field(CMD, run_fields, sizeof run_fields / sizeof run_fields[0], o,
                                   opt, arg);
}

/* --rows-fd FD:FIRST, given by the parent run to its workers only. */
static int run_parse_rows_fd(struct run_opts *o, const char *arg)
{
    char *colon = strchr(arg, ':'), *end;
    long fd = colon ? strtol(arg, &end, 10) : -1;
    if (!colon || end != colon || fd < 3 || fd > INT32_MAX ||
        scansim_cli_parse_int(CMD, "--rows-fd", colon + 1, 0, LONG_MAX / 2, &o->rows_first)) {
        scansim_cli_error(CMD, "--rows-fd: FD:FIRST (set by scansim run for its workers)");
        return -1;
    }
    o->rows_fd = (int)fd;
    return 0;
}

/* The run's options whose values need more than the table's kinds; 0, -1 on a wrong
 * value, 1 when opt is none of them. */
static int run_parse_special(struct run_opts *o, int opt, const char *arg, long *shards,
                             bool *workers_given)
{
    char why[160];
    switch (opt) {
    case 0x2003:
        if (scansim_cli_parse_duration_ms(CMD, "--duration", arg, &o->duration_ms))
            return -1;
        if (o->duration_ms == 0) {
            scansim_cli_error(CMD, "--duration: expected a positive duration such as 30s, got '%s'", arg);
            return -1;
        }
        return 0;
    case 0x2005:
        if (!*arg || strpbrk(arg, "+#/") || strlen(arg) > 30) {
            scansim_cli_error(CMD, "--id-prefix: expected up to 30 printable characters without "
                               "'+', '#' or '/', got '%s'", arg);
            return -1;
        }
        o->id_prefix = arg;
        return 0;
    case 0x2008:
        if (strcmp(arg, "auto") == 0)
            o->workers = 0;
        else if (scansim_cli_parse_int(CMD, "--workers", arg, 1, 256, &o->workers))
            return -1;
        *workers_given = o->workers > 0;
        return 0;
    case 0x200a:
        return scansim_cli_parse_range_ms(CMD, "--think", arg, &o->think_min_ms, &o->think_max_ms) ? -1 : 0;
    case 0x200e:
        if (strcmp(arg, "0") == 0 || strcmp(arg, "unlimited") == 0)
            o->connect_rate = 0;
        else if (scansim_cli_parse_rate(CMD, "--connect-rate", arg, &o->connect_rate))
            return -1;
        return 0;
    case 0x2070:
        if (scansim_cli_parse_rate(CMD, "--command-rate", arg, &o->command_rate))
            return -1;
        if (o->command_rate > 100000.0) {
            scansim_cli_error(CMD, "--command-rate %s: at most 100000/s", arg);
            return -1;
        }
        return 0;
    case 0x2060:
        return run_parse_rows_fd(o, arg);
    case 0x2017:
        if (shard_parse(arg, &o->shard, why, sizeof why) != 0) {
            scansim_cli_error(CMD, "--shard: %s", why);
            return -1;
        }
        return 0;
    case 0x2018:
        return scansim_cli_parse_int(CMD, "--shards", arg, 1, SHARD_MAX, shards) ? -1 : 0;
    case 0x2031:
        if (scansim_cli_parse_duration_ms(CMD, "--event-batch", arg, &o->event_batch_ms))
            return -1;
        if (o->event_batch_ms > 1000) {
            scansim_cli_error(CMD, "--event-batch %s: at most 1s", arg);
            return -1;
        }
        return 0;
    case 0x2032:
        return run_parse_bind(o, arg) ? -1 : 0;
    case 0x2030:
        if (scansim_cli_parse_int(CMD, "--broker-pid", arg, 1, 2147483647L, &o->broker_pid))
            return -1;
        if (kill((pid_t)o->broker_pid, 0) != 0 && errno == ESRCH) {
            scansim_cli_error(CMD, "--broker-pid %ld: no such process", o->broker_pid);
            return -1;
        }
        return 0;
    default:
        return 1;
    }
}

static void run_defaults(struct run_opts *o)
{
    memset(o, 0, sizeof(*o));
    scansim_cli_common_defaults(&o->c);
    o->c.layout = SCANSIM_LAYOUT_PER_DEVICE; /* run's default (cli.h: layout_set tells) */
    o->devices = 10;
    o->grace_ms = 10000;
    o->id_prefix = "scanner-";
    o->id_start = 1;
    o->workers = 0; /* auto */
    o->connect_rate = 2000;
    o->connect_timeout_ms = 60000;
    o->window = 2;
    o->max_in_flight = 1000;
    o->event_batch_ms = RUN_EVENT_BATCH_AUTO;
    o->worker_index = -1;
    o->rows_fd = -1;
}

/* One option of getopt_long: 0, -1 with the error said. */
static int run_parse_option(struct run_opts *o, int opt, char **argv, long *shards,
                            bool *workers_given)
{
    int r = run_parse_field(o, opt, optarg);
    if (r != 0)
        return r < 0 ? -1 : 0;
    if ((r = run_parse_special(o, opt, optarg, shards, workers_given)) <= 0)
        return r;
    if (opt == '?') {
        if (optopt)
            scansim_cli_error(CMD, "unknown option '-%c' or it needs a value (see scansim run --help)", optopt);
        else
            scansim_cli_error(CMD, "unknown option '%s' or it needs a value (see scansim run --help)",
                          argv[optind - 1]);
        return -1;
    }
    r = scansim_cli_common_option(CMD, &o->c, opt, optarg);
    if (r == 0)
        scansim_cli_error(CMD, "unexpected option (see scansim run --help)");
    return r > 0 ? 0 : -1;
}

/* The worker count: --workers auto sized from the transport and the fd limit. */
static int run_settle_workers(struct run_opts *o, bool workers_given)
{
    if (o->workers == 0)
        o->workers = run_auto_workers(o->devices);
    else if (o->workers == 1 && o->devices >= RUN_MIN_WORKERS_FROM && !workers_given &&
             sim_mqtt_default_kind() == SIM_MQTT_PAHO)
        o->workers = 2;
    if (o->workers == 1 && o->worker_index < 0 && run_check_fds(o) != 0)
        return -1;
    if (o->workers > 256)
        o->workers = 256;
    if (o->workers > o->devices && o->worker_index < 0 && o->shard.count == 0) {
        scansim_cli_error(CMD, "--workers %ld is more than --devices %ld: use at most one worker per device",
                      o->workers, o->devices);
        return -1;
    }
    return 0;
}

/* Checks between options, once all are read. */
static int run_check_combinations(const struct run_opts *o)
{
    if (o->no_backend && (o->items || o->item_rate > 0 || o->db_path)) {
        scansim_cli_error(CMD, "--no-backend publishes nothing: --items, --item-rate and --db need the "
                           "backend role (drop --no-backend or those flags)");
        return -1;
    }
    if (o->no_backend && o->command_rate > 0) {
        scansim_cli_error(CMD, "--command-rate is the backend's: with --no-backend your own backend "
                           "sends the commands (drop one of the two)");
        return -1;
    }
    if (o->id_start + o->devices - 1 > 2147483647L) {
        scansim_cli_error(CMD, "--id-start %ld + --devices %ld runs past 2147483647", o->id_start, o->devices);
        return -1;
    }
    return 0;
}

int run_parse(int argc, char **argv, struct run_opts *o)
{
    bool workers_given = false;
    long shards = 0;
    int opt;

    run_defaults(o);
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "hn:" SCANSIM_CLI_COMMON_SHORT, run_long, NULL)) != -1) {
        if (opt == 'h') {
            fputs(run_help, stdout);
            fputs(scansim_cli_common_help, stdout);
            return 1;
        }
        if (run_parse_option(o, opt, argv, &shards, &workers_given) != 0)
            return -1;
    }
    if (optind < argc) {
        scansim_cli_error(CMD, "unexpected argument '%s' (run takes options only; see scansim run --help)",
                      argv[optind]);
        return -1;
    }
    if (scansim_cli_common_check(CMD, &o->c) != 0)
        return -1;
    if (run_check_shard(o, shards) != 0 || run_check_identity(o) != 0)
        return -1;
    scansim_cli_transport_setup(&o->c); /* --workers auto depends on the client library */
    if (run_check_bind(o) != 0)
        return -1;
    run_note_bind_ports(o);
    if (run_settle_workers(o, workers_given) != 0)
        return -1;
    if (o->event_batch_ms == RUN_EVENT_BATCH_AUTO)
        o->event_batch_ms = o->item_rate > 0 ? 0 : RUN_EVENT_BATCH_FULL_SPEED_MS;
    return run_check_combinations(o);
}

/* One process for the whole fleet: refuse at once, with the way out, what its file
   descriptors cannot hold (the run would otherwise fail connect after connect). */
static int run_check_fds(const struct run_opts *o)
{
    struct rlimit rl;
    struct sim_mqtt_stats st;
    long limit, per, need;

    sim_mqtt_stats(sim_mqtt_default_kind(), &st);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY)
        return 0;
    limit = (long)rl.rlim_max;
    per = st.fds_per_client > 0 ? st.fds_per_client : 1;
    need = o->devices * per + RUN_FD_RESERVE;
    if (need <= limit)
        return 0;
    scansim_cli_error(CMD, "%ld devices in one process need about %ld file descriptors (%ld a "
                  "device), more than its limit of %ld: give --workers %ld or more (or auto), "
                  "or raise the limit (ulimit -n)", o->devices, need, per, limit,
                  (o->devices * per + limit - RUN_FD_RESERVE - 1) / (limit - RUN_FD_RESERVE));
    return -1;
}

/*
 * --workers auto: the fewest processes the fleet fits in.
 * - libmosquitto: no per-client thread or global list, so one process serves any number of
 *   clients at the same cost per message; what bounds a process is its file descriptors
 *   (mosquitto 2.0: 3 a client, its socket pair included). Devices per process =
 *   (fd limit - RUN_FD_RESERVE) / fds per client: one process up to ~6,500 devices here.
 * - Paho: about 1,000 clients a process, as Paho's maintainers advise, and at least two
 *   worker processes from RUN_MIN_WORKERS_FROM devices on. Measured (think time 0): the
 *   backend's client in one Paho process with the devices pays for all of them, so 400
 *   devices in one process register 1,400/s and in two workers 6,700/s.
 */
long run_auto_workers(long devices)
{
    struct sim_mqtt_stats st;
    struct rlimit rl;
    long per, fd_limit = 1024;

    if (sim_mqtt_default_kind() == SIM_MQTT_PAHO) {
        if (devices < RUN_MIN_WORKERS_FROM)
            return 1;
        per = (devices + RUN_PER_WORKER - 1) / RUN_PER_WORKER;
        return per < 2 ? 2 : per;
    }
    sim_mqtt_stats(SIM_MQTT_MOSQUITTO, &st);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        fd_limit = rl.rlim_max == RLIM_INFINITY ? 1048576 : (long)rl.rlim_max;
    per = (fd_limit - RUN_FD_RESERVE) / (st.fds_per_client > 0 ? st.fds_per_client : 3);
    if (per < 1)
        per = 1;
    return (devices + per - 1) / per;
}

void run_apply_shard(struct run_opts *o)
{
    long off, n;

    if (!o->shard.count)
        return;
    shard_part(o->devices, o->shard.index, o->shard.count, &off, &n);
    o->id_start += off;
    o->devices = n;
    if (o->items) {
        shard_part(o->items, o->shard.index, o->shard.count, &off, &n);
        o->items = n;
    }
    o->item_rate /= (double)o->shard.count;
    o->connect_rate /= (double)o->shard.count;
    o->command_rate /= (double)o->shard.count;
}

void run_fleet_opts(const struct run_opts *o, const char *uri, struct fleet_opts *fo)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    fleet_opts_defaults(fo);
    fo->keep_rows = (o->http_listen != NULL && o->worker_index < 0) || o->rows_fd >= 0;
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
    if (!o->threads && o->worker_index >= 0 && o->workers > 1)
        fo->threads = (int)((ncpu > o->workers ? ncpu / o->workers : 1));
    fo->tick_ms = 50;
    fo->batch_us = (unsigned)(o->event_batch_ms * 1000u);
    fo->flash_dir = o->flash_dir;
    fo->trace_dir = o->trace_dir;
    fo->layout = o->c.layout == SCANSIM_LAYOUT_SEED ? FW_LAYOUT_SEED : FW_LAYOUT_PER_DEVICE;
    fo->clean_session = o->c.session == SCANSIM_SESSION_CLEAN;
    fo->keepalive_s = o->c.keepalive_s;
    fo->qos = o->c.qos;
    fo->think_min_ms = o->think_min_ms;
    fo->think_max_ms = o->think_max_ms;
    fo->wrong_tag_rate = o->wrong_tag_rate;
    fo->cancel_rate = o->cancel_rate;
    fo->inventory_rate = o->inventory_rate;
    fo->seed = (uint32_t)o->seed;
    fo->verbose = o->c.verbose;
    fo->cert_dir = o->cert_dir;
    fo->password_file = o->password_file;
    fo->id_as_username = o->id_as_username;
    for (int i = 0; i < o->c.n_brokers; i++)
        fo->uris[i] = o->c.broker_uris[i];
    fo->n_uris = o->c.n_brokers;
    for (int i = 0; i < o->n_binds; i++)
        fo->binds[i] = o->binds[i];
    fo->n_binds = o->n_binds;
}

/* ------------------------------------------------------------------ shard mode */

/* A worker process: run the devices, report figures on stdout once a second. */
int run_worker(const struct run_opts *o)
{
    struct fleet_opts fo;
    struct fleet *f = NULL;
    struct fleet_figures fig;
    char line[4096];
    uint64_t next_report = 0, last_start = sim_clock_ms();
    /* --connect-rate is the whole fleet's: this worker's share of its shard's share (the
       devices and ids it runs are given to it explicitly instead). */
    double rate = o->connect_rate > 0 ? o->connect_rate / (double)o->workers /
                                            (double)(o->shard.count ? o->shard.count : 1)
                                      : 0;
    double credit = 0;

    struct fleet_shared_rows *rows = NULL;

    scansim_cli_transport_setup(&o->c);
    if (o->c.verbose)
        fprintf(stderr, "scansim run: worker %ld: %ld devices from id %ld, connect rate %.1f/s\n",
                o->worker_index, o->devices, o->id_start, rate);
    if (o->rows_fd >= 0 && fleet_shared_rows_attach(o->rows_fd, &rows) != 0)
        return SCANSIM_EXIT_USAGE;
    run_fleet_opts(o, o->c.broker_uri, &fo);
    int frc = fleet_create(&fo, &f);
    if (frc != SIM_OK) {
        fleet_shared_rows_free(rows);
        return frc == SIM_ERR_INVAL || frc == SIM_ERR_IO ? SCANSIM_EXIT_USAGE : SCANSIM_EXIT_INTERNAL;
    }
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
            fleet_shared_rows_put(rows, (int)o->worker_index, o->rows_first, f, (int)o->devices);
            if (fleet_figures_to_json(&fig, line, sizeof(line)) > 0) {
                fputs(line, stdout);
                fputc('\n', stdout);
                fflush(stdout);
            }
        }
        run_nap_ms(10);
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
    fleet_shared_rows_put(rows, (int)o->worker_index, o->rows_first, f, (int)o->devices);
    fleet_shared_rows_free(rows);
    fleet_free(f);
    if (o->c.verbose)
        fprintf(stderr, "scansim run: worker %ld: power-off %.1f s, teardown %.1f s\n", o->worker_index,
                (double)(t1 - t0) / 1000.0, (double)(sim_clock_ms() - t1) / 1000.0);
    return SCANSIM_EXIT_OK;
}
