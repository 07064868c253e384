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
#include <MQTTAsync.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
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
#include "fleet_devices.h"
#include "sim/clock.h"
#include "sim/paho.h"
#include "sim/transport.h"

const char scansim_cmd_bench_summary[] =
    "benchmark: broker ceiling vs. 1,000 and 10,000 simulated scanners (minutes)";

#define CMD "bench"
#define BENCH_MAX_POINTS 8

struct bench_opts {
    struct sim_cli_common c;
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
    const char *raw_sub_topic; /* hidden --raw-subscriber TOPIC: be the subscriber process */
};

static const char bench_help[] =
    "usage: scansim bench [options]\n"
    "\n"
    "Measure on one broker (a) the raw ceiling: one Paho publisher to one Paho subscriber,\n"
    "QoS 1, a window of messages in flight; (b) `scansim run` with N devices, per-device\n"
    "items at full speed. --repeat rounds each run (a) then every (b); medians over the\n"
    "rounds are printed, ratios taken within each round.\n"
    "\n"
    "  --devices LIST          fleet sizes, comma-separated (default 1000,10000)\n"
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
    SIM_CLI_COMMON_OPTIONS,
    {0, 0, 0, 0},
};

static int bench_parse(int argc, char **argv, struct bench_opts *o)
{
    int opt;

    memset(o, 0, sizeof(*o));
    sim_cli_common_defaults(&o->c);
    o->points[0] = 1000;
    o->points[1] = 10000;
    o->n_points = 2;
    o->items_per_device = 10;
    o->min_items = 50000;
    o->repeat = 3;
    o->raw_messages = 200000;
    o->raw_window = 1000;
    o->per_worker = 0; /* 0: let scansim run choose (--workers auto) */
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h" SIM_CLI_COMMON_SHORT, bench_long, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(bench_help, stdout);
            fputs(sim_cli_common_help, stdout);
            return 1;
        case 0x3001: {
            char buf[256], *save = NULL, *tok;
            snprintf(buf, sizeof(buf), "%s", optarg);
            o->n_points = 0;
            for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o->n_points == BENCH_MAX_POINTS) {
                    sim_cli_error(CMD, "--devices: at most %d sizes", BENCH_MAX_POINTS);
                    return -1;
                }
                if (sim_cli_parse_int(CMD, "--devices", tok, 1, 1000000, &o->points[o->n_points]))
                    return -1;
                o->n_points++;
            }
            if (o->n_points == 0) {
                sim_cli_error(CMD, "--devices: expected sizes such as 1000,10000, got '%s'", optarg);
                return -1;
            }
            break;
        }
        case 0x3002:
            if (sim_cli_parse_int(CMD, "--items-per-device", optarg, 1, 100000, &o->items_per_device))
                return -1;
            break;
        case 0x3003:
            if (sim_cli_parse_int(CMD, "--repeat", optarg, 1, 99, &o->repeat))
                return -1;
            break;
        case 0x3004:
            if (sim_cli_parse_int(CMD, "--raw-messages", optarg, 1000, 100000000, &o->raw_messages))
                return -1;
            break;
        case 0x3005:
            if (sim_cli_parse_int(CMD, "--raw-window", optarg, 1, 65535, &o->raw_window))
                return -1;
            break;
        case 0x3006:
            if (sim_cli_parse_int(CMD, "--workers", optarg, 1, 256, &o->workers))
                return -1;
            break;
        case 0x3007:
            if (sim_cli_parse_int(CMD, "--per-worker", optarg, 1, 100000, &o->per_worker))
                return -1;
            break;
        case 0x3008:
            o->json_path = optarg;
            break;
        case 0x300c: {
            size_t len;
            o->report_path = optarg;
            if (!dash_chart_js(&len))
                return -1; /* said: better now than after minutes of rounds */
            break;
        }
        case 0x3009:
            o->skip_raw = true;
            break;
        case 0x300a:
            o->raw_sub_topic = optarg;
            break;
        case 0x300b:
            if (sim_cli_parse_int(CMD, "--min-items", optarg, 1, 100000000, &o->min_items))
                return -1;
            break;
        case '?':
            sim_cli_error(CMD, "unknown option '%s' or it needs a value (see scansim bench --help)",
                          argv[optind - 1]);
            return -1;
        default: {
            int r = sim_cli_common_option(CMD, &o->c, opt, optarg);
            if (r <= 0) {
                if (r == 0)
                    sim_cli_error(CMD, "unexpected option (see scansim bench --help)");
                return -1;
            }
        }
        }
    }
    if (optind < argc) {
        sim_cli_error(CMD, "unexpected argument '%s' (see scansim bench --help)", argv[optind]);
        return -1;
    }
    return sim_cli_common_check(CMD, &o->c) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ (a) raw ceiling */

struct raw_ctx {
    atomic_long sent_ok;      /* PUBACKs at the publisher */
    atomic_long received;     /* messages at the subscriber */
    atomic_int connected;     /* clients connected */
    atomic_int subscribed;
    atomic_int failed;
    atomic_long receive_max;  /* MQTT 5: the broker's Receive Maximum (CONNACK); 0 = none */
    atomic_uint_fast64_t first_rx_ns;
    atomic_uint_fast64_t last_rx_ns;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int raw_on_message(void *ctx, char *topic, int len, MQTTAsync_message *m)
{
    struct raw_ctx *r = ctx;

    (void)len;
    uint64_t now = mono_ns();
    if (atomic_fetch_add(&r->received, 1) == 0)
        atomic_store(&r->first_rx_ns, now);
    atomic_store(&r->last_rx_ns, now);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void raw_on_connected(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    atomic_fetch_add(&((struct raw_ctx *)ctx)->connected, 1);
}

static void raw_on_failure(void *ctx, MQTTAsync_failureData *d)
{
    (void)d;
    atomic_fetch_add(&((struct raw_ctx *)ctx)->failed, 1);
}

static void raw_on_subscribed(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    atomic_store(&((struct raw_ctx *)ctx)->subscribed, 1);
}

static void raw_on_sent(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    atomic_fetch_add(&((struct raw_ctx *)ctx)->sent_ok, 1);
}

/* The same for MQTT 5 (-V 5): Paho calls the ...5 callbacks of an MQTT 5 client. A refused
   publish (PUBACK >= 0x80) counts as a failure, so the raw run stops instead of hanging. */
static void raw_on_connected5(void *ctx, MQTTAsync_successData5 *d)
{
    struct raw_ctx *r = ctx;

    if (d && MQTTProperties_hasProperty(&d->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM))
        atomic_store(&r->receive_max, (long)MQTTProperties_getNumericValue(
                                          &d->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM));
    atomic_fetch_add(&r->connected, 1);
}

static void raw_on_failure5(void *ctx, MQTTAsync_failureData5 *d)
{
    (void)d;
    atomic_fetch_add(&((struct raw_ctx *)ctx)->failed, 1);
}

static void raw_on_subscribed5(void *ctx, MQTTAsync_successData5 *d)
{
    if (d && d->reasonCode >= 0x80)
        atomic_fetch_add(&((struct raw_ctx *)ctx)->failed, 1);
    else
        atomic_store(&((struct raw_ctx *)ctx)->subscribed, 1);
}

static void raw_on_sent5(void *ctx, MQTTAsync_successData5 *d)
{
    (void)d;
    atomic_fetch_add(&((struct raw_ctx *)ctx)->sent_ok, 1);
}

/* TCP for the raw pair. MQTT 3.1.1: Nagle left on, as Paho leaves it: the publisher's window
   of 1,000 fills whole segments, measured 15-25 % faster than TCP_NODELAY. MQTT 5: the
   broker's Receive Maximum (mosquitto: max_inflight_messages, 20) bounds the publisher's
   window, so every round trip counts, and Nagle with the delayed ACK stretched each to about
   50 ms (404 msg/s measured): TCP_NODELAY, as the fleet uses, unless --nagle. */
static void raw_tcp_setup(const struct bench_opts *o)
{
    (void)o; /* Paho cannot set TCP_NODELAY */
}

/* Response callbacks for the protocol version of the run. */
static void raw_response(MQTTAsync_responseOptions *ro, const struct bench_opts *o, void *ctx,
                         MQTTAsync_onSuccess *ok3, MQTTAsync_onSuccess5 *ok5)
{
    ro->context = ctx;
    if (o->c.protocol_version == 5) {
        ro->onSuccess5 = ok5;
        ro->onFailure5 = raw_on_failure5;
    } else {
        ro->onSuccess = ok3;
        ro->onFailure = raw_on_failure;
    }
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

static int raw_connect(MQTTAsync *c, const struct bench_opts *o, const char *uri, const char *id,
                       struct raw_ctx *r, bool subscriber)
{
    MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;

    cr.maxBufferedMessages = (int)o->raw_window + 16;
    if (o->c.protocol_version == 5)
        cr.MQTTVersion = MQTTVERSION_5;
    if (sim_paho_create(c, uri, id, &cr) != MQTTASYNC_SUCCESS)
        return -1;
    if (subscriber)
        MQTTAsync_setCallbacks(*c, r, NULL, raw_on_message, NULL);
    if (o->c.protocol_version == 5) {
        co.MQTTVersion = MQTTVERSION_5;
        co.cleanstart = 1;
        co.cleansession = 0;
        co.onSuccess5 = raw_on_connected5;
        co.onFailure5 = raw_on_failure5;
    } else {
        co.cleansession = 1;
        co.onSuccess = raw_on_connected;
        co.onFailure = raw_on_failure;
    }
    co.keepAliveInterval = 30;
    co.maxInflight = (int)o->raw_window;
    co.context = r;
    co.username = o->c.username;
    co.password = o->c.password;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    sim_paho_tls(&co, &ssl, uri, o->c.cafile, o->c.cert, o->c.key, !o->c.insecure);
    if (MQTTAsync_connect(*c, &co) != MQTTASYNC_SUCCESS || !raw_wait(&r->connected, 1, &r->failed, 10000))
        return -1;
    return 0;
}

/*
 * The subscriber of a raw run, in its own process (its own Paho threads, as a separate
 * consumer would be): subscribe, say "ready", count `raw_messages` messages, print
 * "done FIRST_NS LAST_NS" (CLOCK_MONOTONIC, comparable across processes).
 */
static int raw_subscriber(const struct bench_opts *o)
{
    MQTTAsync sub = NULL;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    struct raw_ctx r;
    char id[64];
    int rc = SIM_EXIT_BROKER;
    uint64_t deadline = mono_ns() + 180ull * 1000000000ull;

    memset(&r, 0, sizeof(r));
    raw_tcp_setup(o);
    snprintf(id, sizeof(id), "bench-sub-%d", (int)getpid());
    if (raw_connect(&sub, o, o->c.broker_uri, id, &r, true) != 0)
        goto out;
    raw_response(&ro, o, &r, raw_on_subscribed, raw_on_subscribed5);
    if (MQTTAsync_subscribe(sub, o->raw_sub_topic, 1, &ro) != MQTTASYNC_SUCCESS ||
        !raw_wait(&r.subscribed, 1, &r.failed, 10000))
        goto out;
    printf("ready\n");
    fflush(stdout);
    while (atomic_load(&r.received) < o->raw_messages && mono_ns() < deadline)
        usleep(1000);
    printf("done %" PRIu64 " %" PRIu64 " %ld\n", (uint64_t)atomic_load(&r.first_rx_ns),
           (uint64_t)atomic_load(&r.last_rx_ns), atomic_load(&r.received));
    fflush(stdout);
    rc = atomic_load(&r.received) >= o->raw_messages ? SIM_EXIT_OK : SIM_EXIT_FAILED;
out:
    if (sub) {
        MQTTAsync_disconnect(sub, NULL);
        MQTTAsync_destroy(&sub);
    }
    return rc;
}

/* CPU per message of a raw run, microseconds (NAN = not known), and the window used. */
struct raw_cpu {
    double pub, sub, broker;
    long window;
};

/* One raw run: a subscriber process (raw_subscriber) and this process publishing with a
   full window. Messages per second from the first to the last arrival, or < 0; *cpu gets
   the CPU time each party used per message while publishing. */
static double raw_once(const struct bench_opts *o, const char *uri, int run, int broker_pid,
                       struct raw_cpu *cpu)
{
    uint64_t c_pub = 0, c_sub = 0, c_brk = 0;

    cpu->pub = cpu->sub = cpu->broker = NAN;
    cpu->window = o->raw_window;
    MQTTAsync pub = NULL;
    struct raw_ctx r;
    char id[64], topic[64], nmsg[24], nwin[24], line[256];
    static const char payload[] = "{\"item_id\":123456,\"item_name\":\"Item 123456\",\"tag_quantity\":1}";
    double result = -1;
    long sent = 0;
    int p[2] = { -1, -1 };
    pid_t pid = -1;
    FILE *from = NULL;
    uint64_t first = 0, last = 0;
    long got = 0;

    memset(&r, 0, sizeof(r));
    snprintf(topic, sizeof(topic), "bench/raw/%d/%d", (int)getpid(), run);
    snprintf(nmsg, sizeof(nmsg), "%ld", o->raw_messages);
    snprintf(nwin, sizeof(nwin), "%ld", o->raw_window);
    if (pipe(p) != 0)
        goto out;
    char *argv[32] = { "scansim", "bench", "--broker", (char *)uri, "--raw-messages", nmsg,
                       "--raw-window", nwin, "--raw-subscriber", topic };
    char cbuf[24];
    size_t a = 10;
    if (sim_cli_connection_args(&o->c, argv, &a, 32, cbuf) != 0)
        goto out;
    pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv("/proc/self/exe", argv);
        _exit(4);
    }
    close(p[1]);
    p[1] = -1;
    if (pid < 0 || !(from = fdopen(p[0], "r")))
        goto out;
    p[0] = -1;
    if (!fgets(line, sizeof(line), from) || strncmp(line, "ready", 5) != 0) {
        sim_cli_error(CMD, "raw ceiling: the subscriber did not start on %s", uri);
        goto out;
    }
    snprintf(id, sizeof(id), "bench-pub-%d-%d", (int)getpid(), run);
    raw_tcp_setup(o);
    if (raw_connect(&pub, o, uri, id, &r, false) != 0) {
        sim_cli_error(CMD, "raw ceiling: could not connect to %s", uri);
        goto out;
    }
    /* MQTT 5: never more in flight than the broker's Receive Maximum (mosquitto: 20). Paho
       holds the excess in its queue and its send thread picks it up only every ~50 ms:
       403 msg/s with a window of 1,000 against 15,056 with 20, measured side by side. */
    long window = o->raw_window, receive_max = atomic_load(&r.receive_max);
    if (receive_max > 0 && receive_max < window)
        window = receive_max;
    cpu->window = window;
    c_pub = fleet_proc_cpu_ms(0);
    c_sub = fleet_proc_cpu_ms((int)pid);
    c_brk = broker_pid > 0 ? fleet_proc_cpu_ms(broker_pid) : 0;
    while (sent < o->raw_messages) {
        if (atomic_load(&r.failed)) { /* refused (MQTT 5) or lost with the connection */
            sim_cli_error(CMD, "raw ceiling: a publish to %s failed after %ld of %ld (refused "
                          "by the broker or lost with the connection)", uri, sent, o->raw_messages);
            goto out;
        }
        /* keep the window full: sent - acknowledged < window */
        while (sent < o->raw_messages && sent - atomic_load(&r.sent_ok) < window) {
            MQTTAsync_message m = MQTTAsync_message_initializer;
            MQTTAsync_responseOptions so = MQTTAsync_responseOptions_initializer;
            m.payload = (void *)payload;
            m.payloadlen = (int)sizeof(payload) - 1;
            m.qos = 1;
            raw_response(&so, o, &r, raw_on_sent, raw_on_sent5);
            if (MQTTAsync_sendMessage(pub, topic, &m, &so) != MQTTASYNC_SUCCESS)
                break;
            sent++;
        }
        usleep(200);
    }
    if (!fgets(line, sizeof(line), from) ||
        sscanf(line, "done %" SCNu64 " %" SCNu64 " %ld", &first, &last, &got) != 3 || got < o->raw_messages ||
        last <= first) {
        sim_cli_error(CMD, "raw ceiling: the subscriber got %ld of %ld messages", got, o->raw_messages);
        goto out;
    }
    result = (double)(o->raw_messages - 1) * 1e9 / (double)(last - first);
    cpu->pub = (double)(fleet_proc_cpu_ms(0) - c_pub) * 1000.0 / (double)o->raw_messages;
    cpu->sub = (double)(fleet_proc_cpu_ms((int)pid) - c_sub) * 1000.0 / (double)o->raw_messages;
    if (broker_pid > 0)
        cpu->broker = (double)(fleet_proc_cpu_ms(broker_pid) - c_brk) * 1000.0 / (double)o->raw_messages;
out:
    if (pub) {
        MQTTAsync_disconnect(pub, NULL);
        MQTTAsync_destroy(&pub);
    }
    if (from)
        fclose(from);
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    if (pid > 0) {
        int st;
        kill(pid, SIGTERM);
        waitpid(pid, &st, 0);
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
                                 long devices, int rep)
{
    struct run_fig f = { 0 };
    char json[] = "/tmp/scansim-bench-XXXXXX";
    char ndev[24], nitems[24], nwork[24], prefix[48], bpid[24];
    long workers = o->workers ? o->workers : o->per_worker ? (devices + o->per_worker - 1) / o->per_worker : 0;
    int fd = mkstemp(json), st = 0;
    pid_t pid;

    if (fd < 0) {
        sim_cli_error(CMD, "cannot make a temporary file: %s", strerror(errno));
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
    snprintf(prefix, sizeof(prefix), "b%d-%ld-%d-", (int)getpid(), devices, rep);
    snprintf(bpid, sizeof(bpid), "%d", broker_pid);
    char *argv[44] = { "scansim", "run", "--broker", (char *)uri, "--devices", ndev, "--items", nitems,
                       "--workers", nwork, "--connect-rate", "0", "--id-prefix", prefix,
                       "--json", json, "--grace", "20s" };
    size_t a = 18;
    char cbuf[24];
    if (sim_cli_connection_args(&o->c, argv, &a, 40, cbuf) != 0)
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
        sim_cli_error(CMD, "cannot run scansim run: %s", strerror(errno));
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
                        struct run_fig (*figs)[99])
{
    static double reg[BENCH_MAX_POINTS * 99], p99[BENCH_MAX_POINTS * 99];
    char *text = cJSON_PrintUnformatted(jout);
    int rc;

    for (int p = 0; p < o->n_points; p++)
        for (int i = 0; i < o->repeat; i++) {
            const struct run_fig *f = &figs[p][i];
            reg[p * o->repeat + i] = f->ok ? f->reg_per_s : NAN;
            p99[p * o->repeat + i] = f->ok ? f->p99 : NAN;
        }
    rc = text ? bench_report_write(o->report_path, text, (int)o->repeat, raw, o->n_points,
                                   o->points, reg, p99)
              : DASH_ERR_NOMEM;
    if (rc == DASH_OK)
        printf("report: %s\n", o->report_path);
    free(text);
    return rc;
}

int scansim_cmd_bench(int argc, char **argv)
{
    struct bench_opts o;
    struct hx_broker *embedded = NULL;
    const char *uri;
    struct rlimit rl;
    double raw_med = NAN;
    int rc = bench_parse(argc, argv, &o), exit_code = SIM_EXIT_OK;
    cJSON *jout = cJSON_CreateObject(), *jpoints = jout ? cJSON_AddArrayToObject(jout, "points") : NULL;

    if (rc != 0) {
        cJSON_Delete(jout);
        return rc > 0 ? SIM_EXIT_OK : SIM_EXIT_USAGE;
    }
    if (o.raw_sub_topic) {
        cJSON_Delete(jout);
        if (!o.c.broker_uri) {
            sim_cli_error(CMD, "--raw-subscriber needs --broker");
            return SIM_EXIT_USAGE;
        }
        return raw_subscriber(&o);
    }
    /* every device is a socket here and in the broker (a child: it inherits the limit) */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (sim_cli_broker_up(CMD, &o.c, &embedded, &uri) != 0) {
        cJSON_Delete(jout);
        return SIM_EXIT_BROKER;
    }
    /* No sim_cli_transport_setup here: the raw pair chooses its own TCP setting
       (raw_tcp_setup: Nagle on with MQTT 3.1.1, where it measured 15-25 % faster, so the
       fleet's ratio is not flattered; TCP_NODELAY with MQTT 5). The fleet runs are
       `scansim run` processes, which set their own. */
    printf("scansim bench: broker %s%s, fd limit %ld, %ld cores\n", uri, embedded ? " (embedded mosquitto)" : "",
           (long)rl.rlim_cur, sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);

    /*
     * Rounds: each round measures the raw ceiling and then every fleet point, one after the
     * other, so that a slower or busier stretch of a shared machine falls on both sides of a
     * ratio. The ratio of a point is taken per round (its registrations per second over half
     * of the same round's raw ceiling) and the median over the rounds is quoted.
     */
    static double raw[99], cpu_msg[99], cpu_pub[99], cpu_sub[99], cpu_brk[99];
    static struct run_fig figs[BENCH_MAX_POINTS][99];
    int broker_pid = embedded ? (int)hx_broker_pid(embedded) : 0;
    for (int i = 0; i < o.repeat; i++) {
        printf("round %d of %ld\n", i + 1, o.repeat);
        raw[i] = cpu_msg[i] = cpu_pub[i] = cpu_sub[i] = cpu_brk[i] = NAN;
        if (!o.skip_raw) {
            struct raw_cpu rc1 = { NAN, NAN, NAN, o.raw_window };
            raw[i] = raw_once(&o, uri, i, broker_pid, &rc1);
            if (raw[i] <= 0)
                raw[i] = NAN;
            cpu_pub[i] = rc1.pub;
            cpu_sub[i] = rc1.sub;
            cpu_brk[i] = rc1.broker;
            cpu_msg[i] = rc1.pub + rc1.sub + (isnan(rc1.broker) ? 0 : rc1.broker);
            printf("  raw ceiling: %.0f msg/s (QoS 1, window %ld, %ld messages), CPU per message "
                   "%.0f us: publisher %.0f, subscriber %.0f, broker %.0f\n", raw[i], rc1.window,
                   o.raw_messages, cpu_msg[i], rc1.pub, rc1.sub, rc1.broker);
            fflush(stdout);
        }
        for (int p = 0; p < o.n_points; p++) {
            struct run_fig f = fleet_once(&o, uri, broker_pid, o.points[p], i);
            char split[128];
            figs[p][i] = f;
            printf("  %ld devices: exit %d, connect %.2f s, %.0f reg/s (%.2f x raw ceiling / 2), p50 "
                   "%.1f ms, p99 %.1f ms, RSS %.1f KiB/device (%.1f with the backend), PSS %.1f "
                   "KiB/device, lost %.0f, twice %.0f, CPU per registration %.0f us (%s)\n",
                   o.points[p], f.exit_code, f.connect_s, f.reg_per_s, f.reg_per_s / (raw[i] / 2),
                   f.p50, f.p99, f.rss_per_dev, f.rss_all_per_dev, f.pss_per_dev, f.lost, f.twice,
                   f.cpu_all, cpu_split(split, sizeof split, f.cpu_backend, f.cpu_devices,
                                        f.cpu_one, f.cpu_broker));
            fflush(stdout);
        }
    }
    printf("\nmedians of %ld rounds\n", o.repeat);
    if (!o.skip_raw) {
        double tmp[99];
        memcpy(tmp, raw, sizeof(tmp));
        raw_med = bench_median(tmp, (int)o.repeat);
        printf("raw ceiling: %.0f msg/s; a registration is 2 messages: %.0f reg/s | CPU per message "
               "%.0f us: publisher %.0f, subscriber %.0f, broker %.0f\n", raw_med, raw_med / 2,
               bench_median(cpu_msg, (int)o.repeat), bench_median(cpu_pub, (int)o.repeat),
               bench_median(cpu_sub, (int)o.repeat), bench_median(cpu_brk, (int)o.repeat));
        if (jout) {
            cJSON_AddNumberToObject(jout, "raw_ceiling_msg_per_s", raw_med);
            cJSON_AddNumberToObject(jout, "raw_window", (double)o.raw_window);
            cJSON_AddNumberToObject(jout, "raw_cpu_us_per_message", bench_median(cpu_msg, (int)o.repeat));
            cJSON_AddNumberToObject(jout, "raw_cpu_us_per_message_broker", bench_median(cpu_brk, (int)o.repeat));
        }
    }
    for (int p = 0; p < o.n_points; p++) {
        long n = o.points[p];
        double con[99], reg[99], ratio[99], p50[99], p99[99], rss[99], pss[99], rall[99];
        double c_all[99], c_be[99], c_dev[99], c_brk[99], c_one[99];
        char split[128];
        int ok = 0;
        bool clean = true;
        for (int i = 0; i < o.repeat; i++) {
            const struct run_fig *f = &figs[p][i];
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
            ok++;
        }
        if (!clean)
            exit_code = SIM_EXIT_FAILED;
        double mreg = bench_median(reg, ok), mratio = bench_median(ratio, ok);
        double mrss = bench_median(rss, ok), mpss = bench_median(pss, ok), mall = bench_median(rall, ok);
        printf("%ld devices: connect all %.2f s | %.0f registrations/s = %.2f x (raw ceiling / 2, "
               "per round) | p50 %.1f ms p99 %.1f ms | peak RSS %.1f KiB/device (%.1f with the "
               "backend), PSS %.1f KiB/device | CPU per registration %.0f us: %s%s\n",
               n, bench_median(con, ok), mreg, mratio, bench_median(p50, ok), bench_median(p99, ok),
               mrss, mall, mpss, bench_median(c_all, ok),
               cpu_split(split, sizeof split, bench_median(c_be, ok), bench_median(c_dev, ok),
                         bench_median(c_one, ok), bench_median(c_brk, ok)),
               clean ? "" : "  (SOME RUNS FAILED)");
        fflush(stdout);
        if (jpoints) {
            cJSON *jp = cJSON_CreateObject();
            if (jp) {
                cJSON_AddNumberToObject(jp, "devices", (double)n);
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
                cJSON_AddItemToArray(jpoints, jp);
            }
        }
    }
    if (o.json_path && jout) {
        char *text = cJSON_Print(jout);
        FILE *fp = fopen(o.json_path, "w");
        if (!text || !fp || fputs(text, fp) < 0) {
            sim_cli_error(CMD, "--json: cannot write %s: %s", o.json_path, strerror(errno));
            exit_code = SIM_EXIT_INTERNAL;
        }
        if (fp)
            fclose(fp);
        free(text);
    }
    if (o.report_path && jout && bench_report(&o, jout, raw, figs) != 0)
        exit_code = SIM_EXIT_INTERNAL;
    cJSON_Delete(jout);
    sim_cli_broker_down(&o.c, embedded);
    return exit_code;
}
