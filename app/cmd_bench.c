/*
 * cmd_bench.c - `scansim bench`: how close does a fleet of real-firmware scanners get to
 * what the broker can do at all?
 *
 * One broker (the embedded mosquitto, or --broker) for everything:
 *   (a) the raw ceiling: one Paho publisher (here) and one Paho subscriber (a child
 *       process, so each has its own Paho threads) push QoS 1 messages through it as fast
 *       as the protocol allows (a window of --raw-window messages in flight, with MQTT 5
 *       no more than the broker's Receive Maximum; with MQTT 3.1.1 Nagle's algorithm on,
 *       which is faster here), messages per second at the subscriber from the first
 *       arrival to the last;
 *   (b) `scansim run` (this same program, as a child process, so each point gets a fresh
 *       process and its own peak RSS) with each --devices N, --items-per-device items each
 *       (at least --min-items in all), think time 0, connecting as fast as possible.
 * --repeat rounds (default 3) each run (a) and then every (b) point, so that a slow
 * stretch of a shared machine weighs on both sides; medians over the rounds are quoted. A
 * registration is two QoS 1 messages through the broker (item in, registration out), so a
 * point's registrations per second are compared with half of the same round's raw ceiling.
 * Every run also reports the CPU time each process spent per message or registration.
 *
 * Not a test: it takes minutes and its figures depend on the machine (ci/bench.sh runs it).
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "cli.h"
#include "dash.h"
#include "sim/fleet_devices.h"
#include "sim/clock.h"
#include "sim/err.h"
#include "sim/mqtt.h"
#include "sim/transport.h"

const char scansim_cmd_bench_summary[] =
    "benchmark: broker ceiling vs. 1,000 to 19,000 simulated scanners, both client libraries (minutes)";

#define CMD "bench"
#define BENCH_MAX_POINTS 8
#define BENCH_MAX_SERIES (BENCH_MAX_POINTS * 2) /* points x client libraries */

struct bench_opts {
    struct scansim_cli_common c;
    long points[BENCH_MAX_POINTS];
    int n_points;
    long items_per_device;
    long min_items;          /* a point publishes at least this many items */
    long repeat;
    long raw_messages;
    long raw_window;
    long workers;            /* 0 = auto: one per 1,000 devices */
    long per_worker;         /* devices per worker for auto */
    const char *json_path;
    const char *report_path;
    bool skip_raw;
    enum sim_mqtt_kind kinds[2]; /* the client libraries compared: --transport, else both */
    int n_kinds;
    const char *raw_sub_topic; /* hidden --raw-subscriber TOPIC: be the subscriber process */
};

static const char bench_help[] =
    "usage: scansim bench [options]\n"
    "\n"
    "Measure on one broker (a) the raw ceiling: one publisher to one subscriber, QoS 1, a\n"
    "window of messages in flight, with each client library (libmosquitto and Paho; the\n"
    "faster is the ceiling); (b) `scansim run` with N devices, per-device items at full\n"
    "speed, on each client library (--transport: only that one). --repeat rounds each run\n"
    "(a) then every (b); medians over the rounds are printed, ratios taken within each\n"
    "round.\n"
    "\n"
    "  --devices LIST          fleet sizes, comma-separated (default 1000,10000,19000)\n"
    "  --items-per-device N    items each device registers (default 10)\n"
    "  --min-items N           but at least N items in all (default 50000), so that\n"
    "                          starting and draining the pipeline weigh little\n"
    "  --repeat N              rounds (default 3)\n"
    "  --raw-messages N        messages per raw-ceiling run (default 200000)\n"
    "  --raw-window N          QoS 1 messages in flight in the raw run (default 1000)\n"
    "  --workers K             worker processes for each run (default: scansim run's\n"
    "                          --workers auto)\n"
    "  --per-worker N          or one worker per N devices\n"
    "  --skip-raw              do not measure the raw ceiling\n"
    "  --json FILE             write all figures as JSON\n"
    "  --report FILE.html      write one self-contained HTML report (the rounds as charts,\n"
    "                          the figures as a table) that opens offline\n"
    "\n";

static const struct option bench_long[] = {
    {"devices", required_argument, 0, 0x3001},
    {"items-per-device", required_argument, 0, 0x3002},
    {"min-items", required_argument, 0, 0x300b},
    {"repeat", required_argument, 0, 0x3003},
    {"raw-messages", required_argument, 0, 0x3004},
    {"raw-window", required_argument, 0, 0x3005},
    {"workers", required_argument, 0, 0x3006},
    {"per-worker", required_argument, 0, 0x3007},
    {"json", required_argument, 0, 0x3008},
    {"report", required_argument, 0, 0x300c},
    {"skip-raw", no_argument, 0, 0x3009},
    {"raw-subscriber", required_argument, 0, 0x300a}, /* hidden: the raw run's subscriber */
    {"help", no_argument, 0, 'h'},
    SCANSIM_CLI_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

/* The options that are a plain value of struct bench_opts, parsed by kind (cli.h). */
#define BENCH_FIELD(opt, kind, flag, field, min, max) \
    SCANSIM_CLI_FIELD(struct bench_opts, opt, kind, flag, field, min, max)

static const struct scansim_cli_field bench_fields[] = {
    BENCH_FIELD(0x3002, INT, "--items-per-device", items_per_device, 1, 100000),
    BENCH_FIELD(0x3003, INT, "--repeat", repeat, 1, 99),
    BENCH_FIELD(0x3004, INT, "--raw-messages", raw_messages, 1000, 100000000),
    BENCH_FIELD(0x3005, INT, "--raw-window", raw_window, 1, 65535),
    BENCH_FIELD(0x3006, INT, "--workers", workers, 1, 256),
    BENCH_FIELD(0x3007, INT, "--per-worker", per_worker, 1, 100000),
    BENCH_FIELD(0x300b, INT, "--min-items", min_items, 1, 100000000),
    BENCH_FIELD(0x3008, TEXT, "--json", json_path, 0, 0),
    BENCH_FIELD(0x300a, TEXT, "--raw-subscriber", raw_sub_topic, 0, 0),
    BENCH_FIELD(0x3009, FLAG, "--skip-raw", skip_raw, 0, 0),
};

/* 1 when opt is a table field (set, or -1 when its value is wrong), 0 when it is not one. */
static int bench_parse_field(struct bench_opts *o, int opt, const char *arg)
{
    return scansim_cli_parse_field(CMD, bench_fields, sizeof bench_fields / sizeof bench_fields[0],
                                   o, opt, arg);
}

/* --devices LIST: the fleet sizes, comma-separated. */
static int bench_parse_devices(struct bench_opts *o, const char *arg)
{
    char buf[256], *save = NULL, *tok;

    snprintf(buf, sizeof(buf), "%s", arg);
    o->n_points = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->n_points == BENCH_MAX_POINTS) {
            scansim_cli_error(CMD, "--devices: at most %d sizes", BENCH_MAX_POINTS);
            return -1;
        }
        if (scansim_cli_parse_int(CMD, "--devices", tok, 1, 1000000, &o->points[o->n_points]))
            return -1;
        o->n_points++;
    }
    if (o->n_points == 0) {
        scansim_cli_error(CMD, "--devices: expected sizes such as 1000,10000, got '%s'", arg);
        return -1;
    }
    return 0;
}

static void bench_defaults(struct bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    scansim_cli_common_defaults(&o->c);
    o->points[0] = 1000;
    o->points[1] = 10000;
    o->points[2] = 19000; /* one mosquitto here holds about 20,000 connections */
    o->n_points = 3;
    o->items_per_device = 10;
    o->min_items = 50000;
    o->repeat = 3;
    o->raw_messages = 200000;
    o->raw_window = 1000;
    o->per_worker = 0; /* 0: let scansim run choose (--workers auto) */
}

/* One option of getopt_long (not --help): 0, -1 with the error said. */
static int bench_parse_option(struct bench_opts *o, int opt, char **argv)
{
    int r = bench_parse_field(o, opt, optarg);
    if (r != 0)
        return r < 0 ? -1 : 0;
    switch (opt) {
    case 0x3001:
        return bench_parse_devices(o, optarg);
    case 0x300c: {
        size_t len;
        o->report_path = optarg;
        if (!dash_chart_js(&len))
            return -1; /* said: better now than after minutes of rounds */
        return 0;
    }
    case '?':
        scansim_cli_error(CMD, "unknown option '%s' or it needs a value (see scansim bench --help)",
                      argv[optind - 1]);
        return -1;
    default:
        r = scansim_cli_common_option(CMD, &o->c, opt, optarg);
        if (r == 0)
            scansim_cli_error(CMD, "unexpected option (see scansim bench --help)");
        return r > 0 ? 0 : -1;
    }
}

static int bench_parse(int argc, char **argv, struct bench_opts *o)
{
    int opt;

    bench_defaults(o);
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h" SCANSIM_CLI_COMMON_SHORT, bench_long, NULL)) != -1) {
        if (opt == 'h') {
            fputs(bench_help, stdout);
            fputs(scansim_cli_common_help, stdout);
            return 1;
        }
        if (bench_parse_option(o, opt, argv) != 0)
            return -1;
    }
    if (optind < argc) {
        scansim_cli_error(CMD, "unexpected argument '%s' (see scansim bench --help)", argv[optind]);
        return -1;
    }
    /* the client libraries compared: --transport's, else both */
    if (o->c.transport != SIM_MQTT_DEFAULT) {
        o->kinds[0] = (enum sim_mqtt_kind)o->c.transport;
        o->n_kinds = 1;
    } else {
        o->kinds[0] = SIM_MQTT_MOSQUITTO;
        o->kinds[1] = SIM_MQTT_PAHO;
        o->n_kinds = 2;
    }
    return scansim_cli_common_check(CMD, &o->c) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ (a) raw ceiling */

struct raw_ctx {
    atomic_long sent_ok;      /* PUBACKs at the publisher */
    atomic_long received;     /* messages at the subscriber */
    atomic_int connected;     /* clients connected */
    atomic_int subscribed;
    atomic_int failed;
    atomic_uint_fast64_t first_rx_ns;
    atomic_uint_fast64_t last_rx_ns;
};

static void raw_on_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct raw_ctx *r = ctx;
    uint64_t now = sim_clock_ns();

    (void)m;
    if (atomic_fetch_add(&r->received, 1) == 0)
        atomic_store(&r->first_rx_ns, now);
    atomic_store(&r->last_rx_ns, now);
}

static void raw_on_connected(void *ctx, bool session_present)
{
    (void)session_present;
    atomic_fetch_add(&((struct raw_ctx *)ctx)->connected, 1);
}

static void raw_on_failed(void *ctx, int code, const char *words)
{
    (void)code;
    fprintf(stderr, "scansim bench: raw ceiling: %s\n", words);
    atomic_fetch_add(&((struct raw_ctx *)ctx)->failed, 1);
}

static void raw_on_lost(void *ctx, const char *words)
{
    fprintf(stderr, "scansim bench: raw ceiling: %s\n", words);
    atomic_fetch_add(&((struct raw_ctx *)ctx)->failed, 1);
}

/* A refused publish (MQTT 5 PUBACK >= 0x80) or a lost one counts as a failure, so the raw
   run stops instead of hanging. */
static void raw_on_published(void *ctx, int mid, int code)
{
    (void)mid;
    if (code == 0)
        atomic_fetch_add(&((struct raw_ctx *)ctx)->sent_ok, 1);
    else
        atomic_fetch_add(&((struct raw_ctx *)ctx)->failed, 1);
}

static void raw_on_subscribed(void *ctx, int mid, int n, const int *codes)
{
    (void)mid;
    if (n >= 1 && codes[0] >= 0 && codes[0] < 0x80)
        atomic_store(&((struct raw_ctx *)ctx)->subscribed, 1);
    else
        atomic_fetch_add(&((struct raw_ctx *)ctx)->failed, 1);
}

static const struct sim_mqtt_handlers raw_handlers = {
    .connected = raw_on_connected,
    .connect_failed = raw_on_failed,
    .connection_lost = raw_on_lost,
    .message = raw_on_message,
    .published = raw_on_published,
    .subscribed = raw_on_subscribed,
};

/* The QoS 1 messages in flight of a raw run. MQTT 5: never more than the broker's Receive
   Maximum (mosquitto's max_inflight_messages, 20 by default): Paho holds the excess in its
   queue and its send thread picks it up only every ~50 ms (403 msg/s with a window of 1,000
   against 15,056 with 20, measured side by side). */
static long raw_window_of(const struct bench_opts *o)
{
    return o->c.protocol_version == 5 && o->raw_window > 20 ? 20 : o->raw_window;
}

static bool raw_wait(atomic_int *v, int want, atomic_int *failed, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 5) {
        if (atomic_load(v) >= want)
            return true;
        if (atomic_load(failed))
            return false;
        usleep(5000);
    }
    return false;
}

/* TCP for the raw pair: MQTT 3.1.1 leaves Nagle on, so the publisher's window of 1,000
   fills whole segments (measured 15-25 % faster than TCP_NODELAY with Paho); MQTT 5's
   window of 20 makes every round trip count, and Nagle with the delayed ACK stretches each
   to about 50 ms: TCP_NODELAY there, as the fleet uses, unless --nagle. Paho cannot set it. */
static int raw_connect(struct sim_mqtt **c, const struct bench_opts *o, enum sim_mqtt_kind kind,
                       const char *uri, const char *id, struct raw_ctx *r)
{
    struct sim_mqtt_opts mo;
    struct sim_mqtt_connect_params cp = { 30, true, NULL };

    scansim_cli_mqtt_opts(&o->c, uri, id, &mo);
    mo.kind = kind;
    mo.max_inflight = (int)raw_window_of(o);
    mo.tcp_nodelay = o->c.protocol_version == 5 && !o->c.nagle;
    if (sim_mqtt_create(&mo, &raw_handlers, r, c) != SIM_OK)
        return -1;
    if (sim_mqtt_connect(*c, &cp) != SIM_OK || !raw_wait(&r->connected, 1, &r->failed, 10000))
        return -1;
    return 0;
}

/*
 * The subscriber of a raw run, in its own process (its own client library threads, as a
 * separate consumer would be): subscribe, say "ready", count `raw_messages` messages, print
 * "done FIRST_NS LAST_NS" (CLOCK_MONOTONIC, comparable across processes).
 */
static int raw_subscriber(const struct bench_opts *o)
{
    struct sim_mqtt *sub = NULL;
    struct raw_ctx r;
    char id[64];
    int rc = SCANSIM_EXIT_BROKER, qos = 1;
    const char *topic = o->raw_sub_topic;
    uint64_t deadline = sim_clock_ns() + 180ull * 1000000000ull;

    memset(&r, 0, sizeof(r));
    snprintf(id, sizeof(id), "bench-sub-%d", (int)getpid());
    if (raw_connect(&sub, o, (enum sim_mqtt_kind)o->c.transport, o->c.broker_uri, id, &r) != 0)
        goto out;
    if (sim_mqtt_subscribe(sub, 1, &topic, &qos, NULL) != SIM_OK ||
        !raw_wait(&r.subscribed, 1, &r.failed, 10000))
        goto out;
    printf("ready\n");
    fflush(stdout);
    while (atomic_load(&r.received) < o->raw_messages && sim_clock_ns() < deadline &&
           !atomic_load(&r.failed))
        usleep(1000);
    printf("done %" PRIu64 " %" PRIu64 " %ld\n", (uint64_t)atomic_load(&r.first_rx_ns),
           (uint64_t)atomic_load(&r.last_rx_ns), atomic_load(&r.received));
    fflush(stdout);
    rc = atomic_load(&r.received) >= o->raw_messages ? SCANSIM_EXIT_OK : SCANSIM_EXIT_FAILED;
out:
    if (sub)
        sim_mqtt_disconnect(sub);
    sim_mqtt_destroy(sub);
    return rc;
}

/* CPU per message of a raw run, microseconds (NAN = not known), and the window used. */
struct raw_cpu {
    double pub, sub, broker;
    long window;
};

/* The subscriber process of a raw run, as raw_once sees it. */
struct raw_sub {
    pid_t pid;   /* > 0 once forked: the caller stops and reaps it */
    FILE *from;  /* its stdout: "ready", then "done ..." */
};

/* Start `scansim bench --raw-subscriber TOPIC` on uri with the client library kind and wait
   for its "ready"; 0, or -1 (s->pid may still need stopping). */
static int raw_start_subscriber(const struct bench_opts *o, enum sim_mqtt_kind kind,
                                const char *uri, const char *topic, struct raw_sub *s)
{
    char nmsg[24], nwin[24], line[256], cbuf[24];
    int p[2] = { -1, -1 };
    size_t a = 10;
    struct scansim_cli_common child = o->c;

    snprintf(nmsg, sizeof(nmsg), "%ld", o->raw_messages);
    snprintf(nwin, sizeof(nwin), "%ld", o->raw_window);
    if (pipe(p) != 0)
        return -1;
    char *argv[32] = { "scansim", "bench", "--broker", (char *)uri, "--raw-messages", nmsg,
                       "--raw-window", nwin, "--raw-subscriber", (char *)topic };
    child.transport = kind;
    if (scansim_cli_connection_args(&child, argv, &a, 32, cbuf) != 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    s->pid = fork();
    if (s->pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv("/proc/self/exe", argv);
        _exit(4);
    }
    close(p[1]);
    if (s->pid < 0 || !(s->from = fdopen(p[0], "r"))) {
        close(p[0]);
        return -1;
    }
    if (!fgets(line, sizeof(line), s->from) || strncmp(line, "ready", 5) != 0) {
        scansim_cli_error(CMD, "raw ceiling: the subscriber did not start on %s", uri);
        return -1;
    }
    return 0;
}

/* Publish o->raw_messages QoS 1 messages on topic, keeping `window` of them in flight;
   0, or -1 when one was refused or lost (said). */
static int raw_publish_all(struct sim_mqtt *pub, const struct bench_opts *o, const char *uri,
                           const char *topic, long window, struct raw_ctx *r)
{
    static const char payload[] = "{\"item_id\":123456,\"item_name\":\"Item 123456\",\"tag_quantity\":1}";
    long sent = 0;

    while (sent < o->raw_messages) {
        if (atomic_load(&r->failed)) { /* refused (MQTT 5) or lost with the connection */
            scansim_cli_error(CMD, "raw ceiling: a publish to %s failed after %ld of %ld (refused "
                          "by the broker or lost with the connection)", uri, sent, o->raw_messages);
            return -1;
        }
        /* keep the window full: sent - acknowledged < window */
        while (sent < o->raw_messages && sent - atomic_load(&r->sent_ok) < window) {
            if (sim_mqtt_publish(pub, topic, payload, sizeof(payload) - 1, 1, false, NULL) !=
                SIM_OK)
                break;
            sent++;
        }
        usleep(200);
    }
    return 0;
}

/* CPU times (ms) of the raw run's parties when publishing starts. */
struct raw_cpu_mark {
    uint64_t pub, sub, broker;
};

static void raw_cpu_start(struct raw_cpu_mark *m, pid_t sub_pid, int broker_pid)
{
    m->pub = fleet_proc_cpu_ms(0);
    m->sub = fleet_proc_cpu_ms((int)sub_pid);
    m->broker = broker_pid > 0 ? fleet_proc_cpu_ms(broker_pid) : 0;
}

/* Read the subscriber's "done FIRST LAST GOT": messages per second from the first to the
   last arrival and *cpu per message since mark, or -1 (said) when it missed some. */
static double raw_tally(const struct bench_opts *o, FILE *from, pid_t sub_pid, int broker_pid,
                        const struct raw_cpu_mark *mark, struct raw_cpu *cpu)
{
    char line[256];
    uint64_t first = 0, last = 0;
    long got = 0;

    if (!fgets(line, sizeof(line), from) ||
        sscanf(line, "done %" SCNu64 " %" SCNu64 " %ld", &first, &last, &got) != 3 || got < o->raw_messages ||
        last <= first) {
        scansim_cli_error(CMD, "raw ceiling: the subscriber got %ld of %ld messages", got, o->raw_messages);
        return -1;
    }
    cpu->pub = (double)(fleet_proc_cpu_ms(0) - mark->pub) * 1000.0 / (double)o->raw_messages;
    cpu->sub = (double)(fleet_proc_cpu_ms((int)sub_pid) - mark->sub) * 1000.0 / (double)o->raw_messages;
    if (broker_pid > 0)
        cpu->broker = (double)(fleet_proc_cpu_ms(broker_pid) - mark->broker) * 1000.0 / (double)o->raw_messages;
    return (double)(o->raw_messages - 1) * 1e9 / (double)(last - first);
}

/* One raw run: a subscriber process (raw_subscriber) and this process publishing with a
   full window. Messages per second from the first to the last arrival, or < 0; *cpu gets
   the CPU time each party used per message while publishing. */
static double raw_once(const struct bench_opts *o, enum sim_mqtt_kind kind, const char *uri,
                       int run, int broker_pid, struct raw_cpu *cpu)
{
    struct sim_mqtt *pub = NULL;
    struct raw_ctx r;
    struct raw_sub sub = { -1, NULL };
    struct raw_cpu_mark mark;
    char id[64], topic[64];
    double result = -1;

    cpu->pub = cpu->sub = cpu->broker = NAN;
    cpu->window = o->raw_window;
    memset(&r, 0, sizeof(r));
    snprintf(topic, sizeof(topic), "bench/raw/%d/%d", (int)getpid(), run);
    if (raw_start_subscriber(o, kind, uri, topic, &sub) != 0)
        goto out;
    snprintf(id, sizeof(id), "bench-pub-%d-%d", (int)getpid(), run);
    if (raw_connect(&pub, o, kind, uri, id, &r) != 0) {
        scansim_cli_error(CMD, "raw ceiling: could not connect to %s", uri);
        goto out;
    }
    long window = raw_window_of(o);
    cpu->window = window;
    raw_cpu_start(&mark, sub.pid, broker_pid);
    if (raw_publish_all(pub, o, uri, topic, window, &r) != 0)
        goto out;
    result = raw_tally(o, sub.from, sub.pid, broker_pid, &mark, cpu);
out:
    if (pub)
        sim_mqtt_disconnect(pub);
    sim_mqtt_destroy(pub);
    if (sub.from)
        fclose(sub.from);
    if (sub.pid > 0) {
        int st;
        kill(sub.pid, SIGTERM);
        waitpid(sub.pid, &st, 0);
    }
    return result;
}

/* ------------------------------------------------------------------ (b) fleet runs */

struct run_fig {
    bool ok;
    int exit_code;
    double connect_s, reg_per_s, p50, p99, rss_per_dev, pss_per_dev, rss_all_per_dev, lost, twice;
    double cpu_all, cpu_backend, cpu_devices, cpu_broker; /* us per registration, NAN = unknown */
    double cpu_one;          /* backend and devices in one process (no workers), else NAN */
};

static double json_num(const cJSON *o, const char *path)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, path);

    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* "backend B, devices D, broker K", or one figure for backend and devices together when
   the fleet ran in one process (no workers). */
static const char *cpu_split(char *buf, size_t n, double be, double dev, double one, double brk)
{
    if (!isnan(one) && isnan(be))
        snprintf(buf, n, "backend and devices in one process %.0f, broker %.0f", one, brk);
    else
        snprintf(buf, n, "backend %.0f, devices %.0f, broker %.0f", be, dev, brk);
    return buf;
}

/* Run `scansim run` as a child; its report goes to a temporary JSON file. */
static struct run_fig fleet_once(const struct bench_opts *o, const char *uri, int broker_pid,
                                 long devices, enum sim_mqtt_kind kind, int rep)
{
    struct run_fig f = { 0 };
    char json[] = "/tmp/scansim-bench-XXXXXX";
    char ndev[24], nitems[24], nwork[24], prefix[48], bpid[24];
    long workers = o->workers ? o->workers : o->per_worker ? (devices + o->per_worker - 1) / o->per_worker : 0;
    int fd = mkstemp(json), st = 0;
    pid_t pid;

    if (fd < 0) {
        scansim_cli_error(CMD, "cannot make a temporary file: %s", strerror(errno));
        return f;
    }
    close(fd);
    if (workers > devices)
        workers = devices;
    snprintf(ndev, sizeof(ndev), "%ld", devices);
    /* long enough that filling the pipeline at the start and draining it at the end (about
       one latency each) weigh little against the run, as in the raw run's 200,000 messages */
    snprintf(nitems, sizeof(nitems), "%ld",
             devices * o->items_per_device > o->min_items ? devices * o->items_per_device : o->min_items);
    if (workers)
        snprintf(nwork, sizeof(nwork), "%ld", workers);
    else
        snprintf(nwork, sizeof(nwork), "auto"); /* scansim run decides (see run --help) */
    /* each run its own ids: sessions of earlier runs stay at the broker untouched */
    snprintf(prefix, sizeof(prefix), "b%d-%ld-%c%d-", (int)getpid(), devices,
             sim_mqtt_kind_name(kind)[0], rep);
    snprintf(bpid, sizeof(bpid), "%d", broker_pid);
    char *argv[44] = { "scansim", "run", "--broker", (char *)uri, "--devices", ndev, "--items", nitems,
                       "--workers", nwork, "--connect-rate", "0", "--id-prefix", prefix,
                       "--json", json, "--grace", "20s" };
    size_t a = 18;
    char cbuf[24];
    struct scansim_cli_common child = o->c;
    child.transport = kind;
    if (scansim_cli_connection_args(&child, argv, &a, 40, cbuf) != 0)
        return f;
    if (broker_pid > 0) {
        argv[a++] = "--broker-pid";
        argv[a++] = bpid;
    }
    argv[a] = NULL;
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1); /* the child's progress lines; errors still reach stderr */
        execv("/proc/self/exe", argv);
        _exit(4);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        scansim_cli_error(CMD, "cannot run scansim run: %s", strerror(errno));
        unlink(json);
        return f;
    }
    f.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    FILE *fp = fopen(json, "r");
    if (fp) {
        char buf[16384];
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        buf[n] = '\0';
        fclose(fp);
        cJSON *j = cJSON_Parse(buf);
        if (j) {
            const cJSON *lat = cJSON_GetObjectItemCaseSensitive(j, "latency_ms");
            f.connect_s = json_num(j, "connect_seconds");
            f.reg_per_s = json_num(j, "registrations_per_second");
            f.rss_per_dev = json_num(j, "peak_rss_per_device_kib");
            f.pss_per_dev = json_num(j, "peak_pss_per_device_kib");
            f.rss_all_per_dev = json_num(j, "peak_rss_kib") / (double)devices;
            f.lost = json_num(j, "items_lost");
            f.twice = json_num(j, "duplicate_registrations");
            const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(j, "cpu_us_per_registration");
            f.cpu_all = json_num(cpu, "all");
            f.cpu_backend = json_num(cpu, "backend_process");
            f.cpu_devices = json_num(cpu, "device_processes");
            f.cpu_broker = json_num(cpu, "broker");
            f.cpu_one = json_num(cpu, "scansim_process");
            f.p50 = json_num(lat, "p50");
            f.p99 = json_num(lat, "p99");
            f.ok = true;
            cJSON_Delete(j);
        }
    }
    unlink(json);
    return f;
}

/* ------------------------------------------------------------------ main */

/* --report: the rounds' figures flattened for bench_report_write. */
static int bench_report(const struct bench_opts *o, const cJSON *jout, const double *raw,
                        struct run_fig (*figs)[99], int n_series)
{
    static double reg[BENCH_MAX_SERIES * 99], p99[BENCH_MAX_SERIES * 99];
    static char names[BENCH_MAX_SERIES][48];
    const char *labels[BENCH_MAX_SERIES];
    char *text = cJSON_PrintUnformatted(jout);
    int rc;

    for (int s = 0; s < n_series; s++) {
        snprintf(names[s], sizeof(names[s]), "%ld devices, %s", o->points[s / o->n_kinds],
                 sim_mqtt_kind_name(o->kinds[s % o->n_kinds]));
        labels[s] = names[s];
        for (int i = 0; i < o->repeat; i++) {
            const struct run_fig *f = &figs[s][i];
            reg[s * o->repeat + i] = f->ok ? f->reg_per_s : NAN;
            p99[s * o->repeat + i] = f->ok ? f->p99 : NAN;
        }
    }
    rc = text ? bench_report_write(o->report_path, text, (int)o->repeat, raw, n_series, labels,
                                   reg, p99)
              : DASH_ERR_NOMEM;
    if (rc == DASH_OK)
        printf("report: %s\n", o->report_path);
    free(text);
    return rc;
}

/* Per round and client library: the raw run's rate and CPU per message. */
struct raw_round {
    double rate, cpu_msg, cpu_pub, cpu_sub, cpu_brk;
    long window;
};

/* One round of raw runs, one per client library; returns the best rate (NAN = none). */
static double raw_round(const struct bench_opts *o, const char *uri, int i, int broker_pid,
                        struct raw_round rr[2])
{
    double best = NAN;

    for (int k = 0; k < o->n_kinds; k++) {
        struct raw_cpu c = { NAN, NAN, NAN, o->raw_window };
        struct raw_round *r = &rr[k];
        r->rate = raw_once(o, o->kinds[k], uri, i * 2 + k, broker_pid, &c);
        if (r->rate <= 0)
            r->rate = NAN;
        r->cpu_pub = c.pub;
        r->cpu_sub = c.sub;
        r->cpu_brk = c.broker;
        r->window = c.window;
        r->cpu_msg = c.pub + c.sub + (isnan(c.broker) ? 0 : c.broker);
        if (!isnan(r->rate) && (isnan(best) || r->rate > best))
            best = r->rate;
        printf("  raw ceiling, %s: %.0f msg/s (QoS 1, window %ld, %ld messages), CPU per "
               "message %.0f us: publisher %.0f, subscriber %.0f, broker %.0f\n",
               sim_mqtt_kind_name(o->kinds[k]), r->rate, r->window, o->raw_messages, r->cpu_msg,
               r->cpu_pub, r->cpu_sub, r->cpu_brk);
        fflush(stdout);
    }
    return best;
}

/* The medians of the raw runs, per client library and best, printed and into jout. */
static double raw_summary(const struct bench_opts *o, const double *raw,
                          struct raw_round (*rr)[2], cJSON *jout)
{
    double tmp[99], best;
    cJSON *by = jout ? cJSON_AddObjectToObject(jout, "raw_ceiling_by_transport") : NULL;

    memcpy(tmp, raw, sizeof(tmp));
    best = bench_median(tmp, (int)o->repeat);
    for (int k = 0; k < o->n_kinds; k++) {
        double rate[99], msg[99], pub[99], sub[99], brk[99];
        for (int i = 0; i < o->repeat; i++) {
            rate[i] = rr[i][k].rate;
            msg[i] = rr[i][k].cpu_msg;
            pub[i] = rr[i][k].cpu_pub;
            sub[i] = rr[i][k].cpu_sub;
            brk[i] = rr[i][k].cpu_brk;
        }
        double mrate = bench_median(rate, (int)o->repeat);
        printf("raw ceiling, %s: %.0f msg/s | CPU per message %.0f us: publisher %.0f, "
               "subscriber %.0f, broker %.0f\n", sim_mqtt_kind_name(o->kinds[k]), mrate,
               bench_median(msg, (int)o->repeat), bench_median(pub, (int)o->repeat),
               bench_median(sub, (int)o->repeat), bench_median(brk, (int)o->repeat));
        if (by)
            cJSON_AddNumberToObject(by, sim_mqtt_kind_name(o->kinds[k]), mrate);
    }
    printf("raw ceiling (the faster per round): %.0f msg/s; a registration is 2 messages: "
           "%.0f reg/s\n", best, best / 2);
    if (jout) {
        cJSON_AddNumberToObject(jout, "raw_ceiling_msg_per_s", best);
        cJSON_AddNumberToObject(jout, "raw_window", (double)o->raw_window);
    }
    return best;
}

/* The medians of one series (a fleet size on a client library), printed and into jpoints;
   false when a run failed. */
/* "0.66 x (raw ceiling / 2<what>)", or words saying the ceiling was not measured. */
static const char *ratio_words(char *out, size_t n, double ratio, const char *what)
{
    if (isnan(ratio))
        snprintf(out, n, "raw ceiling not measured (--skip-raw)");
    else
        snprintf(out, n, "%.2f x (raw ceiling / 2%s)", ratio, what);
    return out;
}

static bool series_summary(const struct bench_opts *o, int series, const double *raw,
                           const struct run_fig *figs, cJSON *jpoints)
{
    long n = o->points[series / o->n_kinds];
    const char *kind = sim_mqtt_kind_name(o->kinds[series % o->n_kinds]);
    double con[99], reg[99], ratio[99], p50[99], p99[99], rss[99], pss[99], rall[99];
    double c_all[99], c_be[99], c_dev[99], c_brk[99], c_one[99], lost = 0, twice = 0;
    char split[128];
    int ok = 0;
    bool clean = true;

    for (int i = 0; i < o->repeat; i++) {
        const struct run_fig *f = &figs[i];
        if (!f->ok || f->exit_code != 0)
            clean = false;
        if (!f->ok)
            continue;
        con[ok] = f->connect_s;
        reg[ok] = f->reg_per_s;
        ratio[ok] = isnan(raw[i]) ? NAN : f->reg_per_s / (raw[i] / 2);
        p50[ok] = f->p50;
        p99[ok] = f->p99;
        rss[ok] = f->rss_per_dev;
        pss[ok] = f->pss_per_dev;
        rall[ok] = f->rss_all_per_dev;
        c_all[ok] = f->cpu_all;
        c_be[ok] = f->cpu_backend;
        c_dev[ok] = f->cpu_devices;
        c_brk[ok] = f->cpu_broker;
        c_one[ok] = f->cpu_one;
        lost += isnan(f->lost) ? 0 : f->lost;
        twice += isnan(f->twice) ? 0 : f->twice;
        ok++;
    }
    double mreg = bench_median(reg, ok), mratio = bench_median(ratio, ok);
    double mrss = bench_median(rss, ok), mpss = bench_median(pss, ok), mall = bench_median(rall, ok);
    char ratio_s[64];
    printf("%ld devices, %s: connect all %.2f s | %.0f registrations/s = %s | p50 %.1f ms "
           "p99 %.1f ms | peak RSS %.1f KiB/device (%.1f with the backend), PSS %.1f KiB/device "
           "| CPU per registration %.0f us: %s | lost %.0f, twice %.0f in all rounds%s\n",
           n, kind, bench_median(con, ok), mreg,
           ratio_words(ratio_s, sizeof ratio_s, mratio, ", per round"), bench_median(p50, ok),
           bench_median(p99, ok), mrss, mall, mpss, bench_median(c_all, ok),
           cpu_split(split, sizeof split, bench_median(c_be, ok), bench_median(c_dev, ok),
                     bench_median(c_one, ok), bench_median(c_brk, ok)),
           lost, twice, clean ? "" : "  (SOME RUNS FAILED)");
    fflush(stdout);
    cJSON *jp = jpoints ? cJSON_CreateObject() : NULL;
    if (!jp)
        return clean;
    cJSON_AddNumberToObject(jp, "devices", (double)n);
    cJSON_AddStringToObject(jp, "transport", kind);
    cJSON_AddNumberToObject(jp, "runs_ok", ok);
    cJSON_AddBoolToObject(jp, "all_clean", clean);
    cJSON_AddNumberToObject(jp, "connect_seconds", bench_median(con, ok));
    cJSON_AddNumberToObject(jp, "registrations_per_second", mreg);
    cJSON_AddNumberToObject(jp, "ratio_to_half_ceiling", isnan(mratio) ? 0 : mratio);
    cJSON_AddNumberToObject(jp, "latency_p50_ms", bench_median(p50, ok));
    cJSON_AddNumberToObject(jp, "latency_p99_ms", bench_median(p99, ok));
    cJSON_AddNumberToObject(jp, "peak_rss_per_device_kib", mrss);
    cJSON_AddNumberToObject(jp, "peak_rss_with_backend_per_device_kib", mall);
    cJSON_AddNumberToObject(jp, "peak_pss_per_device_kib", mpss);
    cJSON_AddNumberToObject(jp, "cpu_us_per_registration", bench_median(c_all, ok));
    cJSON_AddNumberToObject(jp, "cpu_us_per_registration_backend", bench_median(c_be, ok));
    cJSON_AddNumberToObject(jp, "cpu_us_per_registration_devices", bench_median(c_dev, ok));
    cJSON_AddNumberToObject(jp, "cpu_us_per_registration_broker", bench_median(c_brk, ok));
    cJSON_AddNumberToObject(jp, "items_lost_all_rounds", lost);
    cJSON_AddNumberToObject(jp, "registered_twice_all_rounds", twice);
    cJSON_AddItemToArray(jpoints, jp);
    return clean;
}

static int write_json(const char *path, const cJSON *jout)
{
    char *text = cJSON_Print(jout);
    FILE *fp = fopen(path, "w");
    int rc = SCANSIM_EXIT_OK;

    if (!text || !fp || fputs(text, fp) < 0) {
        scansim_cli_error(CMD, "--json: cannot write %s: %s", path, strerror(errno));
        rc = SCANSIM_EXIT_INTERNAL;
    }
    if (fp)
        fclose(fp);
    free(text);
    return rc;
}

int scansim_cmd_bench(int argc, char **argv)
{
    struct bench_opts o;
    struct hx_broker *embedded = NULL;
    const char *uri;
    struct rlimit rl;
    int rc = bench_parse(argc, argv, &o), exit_code = SCANSIM_EXIT_OK;
    cJSON *jout = cJSON_CreateObject(), *jpoints = jout ? cJSON_AddArrayToObject(jout, "points") : NULL;

    if (rc != 0) {
        cJSON_Delete(jout);
        return rc > 0 ? SCANSIM_EXIT_OK : SCANSIM_EXIT_USAGE;
    }
    if (o.raw_sub_topic) {
        cJSON_Delete(jout);
        if (!o.c.broker_uri) {
            scansim_cli_error(CMD, "--raw-subscriber needs --broker");
            return SCANSIM_EXIT_USAGE;
        }
        return raw_subscriber(&o);
    }
    /* every device is a socket here and in the broker (a child: it inherits the limit) */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (scansim_cli_broker_up(CMD, &o.c, &embedded, &uri) != 0) {
        cJSON_Delete(jout);
        return SCANSIM_EXIT_BROKER;
    }
    /* No scansim_cli_transport_setup here: the raw pair chooses its own TCP setting
       (raw_connect), and the fleet runs are `scansim run` processes, which set their own. */
    printf("scansim bench: broker %s%s, fd limit %ld, %ld cores\n", uri, embedded ? " (embedded mosquitto)" : "",
           (long)rl.rlim_cur, sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);

    /*
     * Rounds: each round measures the raw ceiling (once per client library) and then every
     * fleet point on every library, one after the other, so that a slower or busier stretch
     * of a shared machine falls on both sides of a ratio. The ratio of a point is taken per
     * round (its registrations per second over half of the same round's best raw ceiling)
     * and the median over the rounds is quoted.
     */
    static double raw[99];
    static struct raw_round rr[99][2];
    static struct run_fig figs[BENCH_MAX_SERIES][99];
    int n_series = o.n_points * o.n_kinds;
    int broker_pid = embedded ? (int)hx_broker_pid(embedded) : 0;
    for (int i = 0; i < o.repeat; i++) {
        printf("round %d of %ld\n", i + 1, o.repeat);
        raw[i] = o.skip_raw ? NAN : raw_round(&o, uri, i, broker_pid, rr[i]);
        for (int s = 0; s < n_series; s++) {
            long devices = o.points[s / o.n_kinds];
            enum sim_mqtt_kind kind = o.kinds[s % o.n_kinds];
            struct run_fig f = fleet_once(&o, uri, broker_pid, devices, kind, i);
            char split[128];
            figs[s][i] = f;
            char ratio[64];
            printf("  %ld devices, %s: exit %d, connect %.2f s, %.0f reg/s (%s), p50 %.1f ms, p99 %.1f ms, RSS %.1f KiB/device (%.1f with the "
                   "backend), PSS %.1f KiB/device, lost %.0f, twice %.0f, CPU per registration "
                   "%.0f us (%s)\n",
                   devices, sim_mqtt_kind_name(kind), f.exit_code, f.connect_s, f.reg_per_s,
                   ratio_words(ratio, sizeof ratio, f.reg_per_s / (raw[i] / 2), ""), f.p50, f.p99, f.rss_per_dev, f.rss_all_per_dev,
                   f.pss_per_dev, f.lost, f.twice, f.cpu_all,
                   cpu_split(split, sizeof split, f.cpu_backend, f.cpu_devices, f.cpu_one,
                             f.cpu_broker));
            fflush(stdout);
        }
    }
    printf("\nmedians of %ld rounds\n", o.repeat);
    if (!o.skip_raw)
        raw_summary(&o, raw, rr, jout);
    for (int s = 0; s < n_series; s++)
        if (!series_summary(&o, s, raw, figs[s], jpoints))
            exit_code = SCANSIM_EXIT_FAILED;
    if (o.json_path && jout && write_json(o.json_path, jout) != SCANSIM_EXIT_OK)
        exit_code = SCANSIM_EXIT_INTERNAL;
    if (o.report_path && jout && bench_report(&o, jout, raw, figs, n_series) != 0)
        exit_code = SCANSIM_EXIT_INTERNAL;
    cJSON_Delete(jout);
    scansim_cli_broker_down(&o.c, embedded);
    return exit_code;
}
