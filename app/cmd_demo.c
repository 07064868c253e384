/*
 * cmd_demo.c - `scansim demo`: scanners running the real firmware in a terminal.
 *
 * What a newcomer runs first and a firmware developer runs to see and drive the device as
 * an operator would: each scanner's 128x64 OLED drawn in the terminal (display_ncurses.c),
 * its state and counters, the MQTT traffic, and the backend's ledger (demo_ui.c, laid out
 * for any terminal from 80x24 by demo_layout.c). The keyboard stands in for the RFID reader
 * and the buttons of the chosen scanner (demo_input.c); `n` takes that scanner's network
 * away through its own harness fault proxy (demo_net.c) and gives it back. With several
 * scanners in the seed layout every scanner gets every item, so two operators can register
 * one item twice: the seed's own race, on screen.
 *
 * This file: options, set-up, the loop, tear-down. Threads: the main thread owns the
 * scanners' loop (sim_loop_fd + poll together with the keyboard), so their observer
 * (demo_watch.c) runs on the same thread as curses and needs no lock. The backend
 * (hx_backend) and the proxy hubs run their own threads.
 *
 * Start-up failures are printed before the screen opens, with scansim's exit codes.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo_app.h"
#include "demo_keys.h"
#include "sim/display_ncurses.h"
#include "sim/clock.h"
#include "sim/err.h"
#include "sim/fs.h"

const char scansim_cmd_demo_summary[] =
    "scanners in the terminal: OLEDs, state, MQTT log, ledger; keys for tags and buttons";

#define DEMO_REDRAW_MS 250   /* at least this often (countdowns, backend figures) */

enum {
    DEMO_OPT_ID = 0x2001,
    DEMO_OPT_NO_BACKEND,
    DEMO_OPT_FLASH,
    DEMO_OPT_DIRECT,
    DEMO_OPT_ASCII,
    DEMO_OPT_SEED,
    DEMO_OPT_OLED_DUMP,
    DEMO_OPT_DEVICES,
    DEMO_OPT_TRACE,
    DEMO_OPT_HTTP,
    DEMO_OPT_HTTP_TOKEN,
};

static const char demo_help[] =
    "usage: scansim demo [options]\n"
    "\n"
    "Runs simulated scanners - the real firmware - in this terminal, against a real\n"
    "broker: each one's 128x64 OLED (pixel-true: braille from 80x24 on, half blocks\n"
    "on a UTF-8 terminal of 160x44 or more), its state, a log of the MQTT traffic,\n"
    "and the backend's ledger (each item pending, registered, twice, or lost once\n"
    "the broker refused it). A smaller terminal drops panels, never the OLED. By\n"
    "default a private mosquitto is started on a free loopback port (its URI is on\n"
    "the top line, so you can watch with: mosquitto_sub -h 127.0.0.1 -p PORT -t\n"
    "item_registered -v) and the harness backend publishes items and records\n"
    "registrations.\n"
    "\n"
    "Keys (the RFID reader and the buttons of the chosen scanner):\n";

static const char demo_help_options[] =
    "\n"
    "n puts a fault proxy between each scanner and the broker: cut, the scanner goes offline,\n"
    "the broker publishes its Will, and it reconnects by its own back-off once restored; it\n"
    "needs a tcp:// broker (with ssl:// the proxy cannot read the MQTT frames and the\n"
    "scanners connect directly).\n"
    "\n"
    "Demo options:\n"
    "  --devices N      N scanners (1 to 9, default 1), their OLEDs side by side as the\n"
    "                   terminal allows; Tab or 1-9 choose the one the keys drive. With\n"
    "                   several the topic layout defaults to per-device (a goes to the chosen\n"
    "                   scanner); --layout seed gives every item to every scanner, so two\n"
    "                   operators can register one item with two tags (\"twice\" in the ledger)\n"
    "  --id ID          device id, also the MQTT client id (default scanner-1); with\n"
    "                   --devices N the scanners are ID-1 .. ID-N (default scanner-1 ..)\n"
    "  --no-backend     do not start the harness backend: your backend publishes the items\n"
    "  --flash DIR      keep each device's flash (outbox, sequence number) in DIR/<id>, so it\n"
    "                   survives a restart (default: a temporary folder removed on exit)\n"
    "  --trace DIR      record each scanner's trace as DIR/<id>.fwtrace (docs/trace.md)\n"
    "  --direct         connect the devices straight to the broker (no proxy; n is disabled)\n"
    "  --ascii          draw the OLED in ASCII even on a UTF-8 terminal\n"
    "  --seed N         seed for the random tags (default: from the clock)\n"
    "  -v               also show the firmware's info and debug log lines in the log panel\n"
    "  --oled-dump FILE write every OLED frame of the first scanner to FILE as text (half\n"
    "                   blocks, 32 lines of 128; replaced atomically): for scripts that check\n"
    "                   the pixels\n"
    "  --http ADDR:PORT serve the dashboard in a browser, e.g. --http 127.0.0.1:8080: create\n"
    "                   items, see them registered, every scanner's OLED live, charts, and\n"
    "                   Prometheus /metrics (loopback needs no token)\n"
    "  --http-token T   require this token (on an address other than loopback one is\n"
    "                   generated and printed if not given)\n"
    "  -h, --help       this help\n"
    "\n";

static const char demo_help_tail[] =
    "\n"
    "Needs a terminal (stdin and stdout a TTY) of at least 66x22 (80x24 is fine); for a\n"
    "script, run it in tmux: tmux new-session -d -x 160 -y 50 'scansim demo'.\n"
    "\n"
    "Exit codes: 0 quit cleanly (q, Ctrl-C, SIGTERM); 2 bad option or not a terminal;\n"
    "3 broker unreachable, refused, or the embedded broker did not start; 4 internal error.\n";

/* ------------------------------------------------------------------ small helpers */

/* A valid device id: 1..47 printable ASCII bytes without '+', '#', '/' (docs/protocol.md). */
static bool demo__valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= FW_DEVICE_ID_MAX)
        return false;
    for (const char *p = id; *p; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '+' || *p == '#' || *p == '/')
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ the loop */

static void demo__draw(struct demo *d)
{
    demo_refresh_model(d);
    demo_dash_tick(d);
    demo_ui_draw(&d->view);
    d->dirty = false;
    d->last_draw_ms = sim_clock_ms();
}

static int demo__run(struct demo *d)
{
    while (!d->quit && !scansim_cli_stop_requested) {
        struct pollfd pfd[2] = { { STDIN_FILENO, POLLIN, 0 }, { sim_loop_fd(d->loop), POLLIN, 0 } };
        int timeout = sim_loop_timeout_ms(d->loop);
        uint64_t now = sim_clock_ms();
        int until_draw = (int)(d->last_draw_ms + DEMO_REDRAW_MS > now
                                   ? d->last_draw_ms + DEMO_REDRAW_MS - now : 0);

        if (d->dirty)
            until_draw = 0;
        if (until_draw < timeout)
            timeout = until_draw;
        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            demo_notice(&d->view, true, "poll failed: %s", strerror(errno));
            return SCANSIM_EXIT_INTERNAL;
        }
        int handled = sim_loop_run_once(d->loop, 0);
        if (handled < 0)
            return SCANSIM_EXIT_INTERNAL;
        if (handled > 0)
            d->dirty = true; /* e.g. a PUBACK: no frame, but the counters moved */
        if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL))
            d->quit = true; /* the terminal went away: power off as on q */
        /* getch() also after a wake-up without input: a SIGWINCH interrupts poll() and
           curses reports it as KEY_RESIZE from the next getch(). */
        for (int ch; !d->quit && (ch = getch()) != ERR;)
            demo_key(d, ch);
        if (d->dirty || sim_clock_ms() >= d->last_draw_ms + DEMO_REDRAW_MS)
            demo__draw(d);
    }
    return SCANSIM_EXIT_OK;
}

/* ------------------------------------------------------------------ set-up and tear-down */

static void demo__print_help(void)
{
    fputs(demo_help, stdout);
    demo_keys_print(stdout);
    fputs(demo_help_options, stdout);
    fputs(scansim_cli_common_help, stdout);
    fputs(demo_help_tail, stdout);
}

/* One demo option; 0, or -1 after saying what is wrong. */
static int demo__option(struct demo *d, int opt, const char *arg)
{
    long v;

    switch (opt) {
    case DEMO_OPT_ID:
        if (!demo__valid_id(arg)) {
            scansim_cli_error(DEMO_CMD, "--id: expected 1 to %d printable ASCII characters "
                          "without '+', '#' or '/' (it is the MQTT client id and part of "
                          "topics), got '%s'", FW_DEVICE_ID_MAX - 1, arg);
            return -1;
        }
        d->id = arg;
        d->id_set = true;
        return 0;
    case DEMO_OPT_DEVICES:
        if (scansim_cli_parse_int(DEMO_CMD, "--devices", arg, 1, DEMO_DEVICES_MAX, &v))
            return -1;
        d->ndev = (int)v;
        return 0;
    case DEMO_OPT_NO_BACKEND: d->no_backend = true; return 0;
    case DEMO_OPT_FLASH: d->flash_dir = arg; return 0;
    case DEMO_OPT_TRACE: d->trace_dir = arg; return 0;
    case DEMO_OPT_DIRECT: d->direct = true; return 0;
    case DEMO_OPT_ASCII: d->view.force_ascii = true; return 0;
    case DEMO_OPT_OLED_DUMP: d->oled_dump = arg; return 0;
    case DEMO_OPT_HTTP: d->http_listen = arg; return 0;
    case DEMO_OPT_HTTP_TOKEN: d->http_token = arg; return 0;
    case DEMO_OPT_SEED:
        if (scansim_cli_parse_int(DEMO_CMD, "--seed", arg, 1, 2147483647L, &v))
            return -1;
        d->rng = (uint64_t)v;
        return 0;
    default: {
        int rc = scansim_cli_common_option(DEMO_CMD, &d->common, opt, arg);
        if (rc == 0)
            scansim_cli_error(DEMO_CMD, "unknown option");
        return rc > 0 ? 0 : -1;
    }
    }
}

/* The scanners' ids: --id as given for one, ID-1 .. ID-N for several. 0 or -1. */
static int demo__name_units(struct demo *d)
{
    const char *prefix = d->id_set ? d->id : "scanner";

    for (int k = 0; k < d->ndev; k++) {
        struct demo_unit *u = &d->units[k];
        int n = d->ndev == 1 && d->id_set
                    ? snprintf(u->id, sizeof(u->id), "%s", d->id)
                    : snprintf(u->id, sizeof(u->id), "%s-%d", prefix, k + 1);
        u->index = k;
        if (n < 0 || (size_t)n >= sizeof(u->id)) {
            scansim_cli_error(DEMO_CMD, "--id: '%s' is too long for %d scanners: '%s-%d' must stay "
                          "under %d characters", d->id, d->ndev, d->id, d->ndev, FW_DEVICE_ID_MAX);
            return -1;
        }
    }
    return 0;
}

/* 0 go on, 1 help printed, -1 usage error (said). */
static int demo__parse(struct demo *d, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"id", required_argument, 0, DEMO_OPT_ID},
        {"devices", required_argument, 0, DEMO_OPT_DEVICES},
        {"no-backend", no_argument, 0, DEMO_OPT_NO_BACKEND},
        {"flash", required_argument, 0, DEMO_OPT_FLASH},
        {"direct", no_argument, 0, DEMO_OPT_DIRECT},
        {"ascii", no_argument, 0, DEMO_OPT_ASCII},
        {"seed", required_argument, 0, DEMO_OPT_SEED},
        {"oled-dump", required_argument, 0, DEMO_OPT_OLED_DUMP},
        {"trace", required_argument, 0, DEMO_OPT_TRACE},
        {"http", required_argument, 0, DEMO_OPT_HTTP},
        {"http-token", required_argument, 0, DEMO_OPT_HTTP_TOKEN},
        {"help", no_argument, 0, 'h'},
        SCANSIM_CLI_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    int opt;

    opterr = 1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h" SCANSIM_CLI_COMMON_SHORT, longopts, NULL)) != -1) {
        if (opt == 'h') {
            demo__print_help();
            return 1;
        }
        if (opt == '?')
            return -1; /* getopt_long said what */
        if (demo__option(d, opt, optarg))
            return -1;
    }
    if (optind < argc) {
        scansim_cli_error(DEMO_CMD, "unexpected argument '%s' (see scansim demo --help)", argv[optind]);
        return -1;
    }
    if (scansim_cli_common_check(DEMO_CMD, &d->common))
        return -1;
    /* Several scanners: each gets its own items unless the seed layout is asked for, as in
       `scansim run`; one scanner keeps the seed's topics. */
    if (d->ndev > 1 && !d->common.layout_set)
        d->common.layout = SCANSIM_LAYOUT_PER_DEVICE;
    return demo__name_units(d);
}

static int demo__start_backend(struct demo *d)
{
    struct hx_backend_opts o;

    memset(&o, 0, sizeof(o));
    o.uri = d->broker_uri;
    o.username = d->common.username;
    o.password = d->common.password;
    o.cafile = d->common.cafile;
    o.certfile = d->common.cert;
    o.keyfile = d->common.key;
    o.insecure = d->common.insecure;
    o.mqtt_version = d->common.protocol_version == 5 ? 5 : 4;
    o.layout = d->common.layout == SCANSIM_LAYOUT_PER_DEVICE ? HX_BACKEND_LAYOUT_PER_DEVICE
                                                         : HX_BACKEND_LAYOUT_SEED;
    o.keepalive_s = d->common.keepalive_s > 0 ? d->common.keepalive_s : 30;
    o.qos = d->common.qos;
    if (hx_backend_create(&o, &d->backend) != HX_OK) {
        scansim_cli_error(DEMO_CMD, "could not create the backend: %s", hx_backend_last_error());
        return SCANSIM_EXIT_INTERNAL;
    }
    if (hx_backend_start(d->backend) != HX_OK) {
        /* The backend's words name the URI, the client id and what to check. */
        scansim_cli_error(DEMO_CMD, "%s (or run with --no-backend and use your own backend)",
                      hx_backend_last_error());
        return SCANSIM_EXIT_BROKER;
    }
    return SCANSIM_EXIT_OK;
}

/* The first log line: the command that shows the registrations beside the demo. */
static void demo__log_watch_hint(struct demo *d)
{
    char host[256];
    unsigned port;

    char plain[512];
    bool tls = strncmp(d->broker_uri, "ssl://", 6) == 0;

    /* ssl://host:port has the same shape as tcp://host:port; mosquitto_sub wants -h/-p. */
    snprintf(plain, sizeof(plain), "tcp://%s", d->broker_uri + (tls ? 6 : 0));
    if (demo_net_parse_uri(tls ? plain : d->broker_uri, host, sizeof(host), &port) == 0)
        demo_log(&d->view, DEMO_LOG_UI, "watch the registrations: mosquitto_sub -h %s -p %u%s%s "
                 "-t '%s' -v%s", host, port, tls && d->common.cafile ? " --cafile " : "",
                 tls && d->common.cafile ? d->common.cafile : "", d->registered_topic,
                 tls && d->common.cert ? " (and --cert/--key)" : "");
}

static int demo__create_device(struct demo *d, struct demo_unit *u)
{
    struct sim_device_opts o;
    int rc;

    sim_device_opts_defaults(&o, u->id, d->view.devs[u->index].device_uri);
    o.fw.layout = d->common.layout == SCANSIM_LAYOUT_PER_DEVICE ? FW_LAYOUT_PER_DEVICE : FW_LAYOUT_SEED;
    o.fw.clean_session = d->common.session == SCANSIM_SESSION_CLEAN;
    o.fw.keepalive_s = (uint16_t)d->common.keepalive_s;
    o.fw.qos = d->common.qos;
    o.transport.username = d->common.username;
    o.transport.password = d->common.password;
    o.transport.cafile = d->common.cafile;
    o.transport.certfile = d->common.cert;
    o.transport.keyfile = d->common.key;
    o.transport.insecure = d->common.insecure;
    o.transport.mqtt_version = d->common.protocol_version == 5 ? 5 : 3;
    o.transport.session_expiry_s = (uint32_t)d->common.session_expiry_s;
    o.storage = SIM_STORAGE_FILE;
    o.storage_dir = d->flash_dir;
    o.display_frames = 0; /* the observer gets every frame; no headless copy needed */
    o.log_level = d->common.verbose ? FW_LOG_DEBUG : FW_LOG_WARN;
    o.observer = &d->observer;
    o.user = u;
    o.trace_dir = d->trace_dir;
    rc = sim_device_create(d->loop, &o, &u->dev);
    if (rc == SIM_ERR_IO && d->trace_dir) {
        scansim_cli_error(DEMO_CMD, "--flash '%s' or --trace '%s': not a writable folder (the "
                      "line above names the file) - pick another folder", d->flash_dir,
                      d->trace_dir);
        return SCANSIM_EXIT_USAGE;
    }
    if (rc == SIM_ERR_IO) {
        scansim_cli_error(DEMO_CMD, "--flash: cannot use '%s/%s' as the device's flash (not a "
                      "writable folder?) - pick another folder", d->flash_dir, u->id);
        return SCANSIM_EXIT_USAGE;
    }
    if (rc) {
        scansim_cli_error(DEMO_CMD, "could not create the device '%s': %s", u->id, sim_strerror(rc));
        return rc == SIM_ERR_INVAL ? SCANSIM_EXIT_USAGE : SCANSIM_EXIT_INTERNAL;
    }
    return SCANSIM_EXIT_OK;
}

/* Scanner k's link: its own proxy (so n cuts only this one), or the broker itself. */
static int demo__open_link(struct demo *d, struct demo_unit *u)
{
    struct demo_view_dev *dv = &d->view.devs[u->index];
    char err[512];
    int nrc;

    dv->id = u->id;
    dv->device_uri = d->broker_uri;
    if (d->direct)
        return SCANSIM_EXIT_OK;
    nrc = demo_net_open(d->broker_uri, &u->net, err, sizeof(err));
    if (nrc < 0) {
        scansim_cli_error(DEMO_CMD, "%s", err);
        return SCANSIM_EXIT_INTERNAL;
    }
    if (nrc == 0) {
        dv->device_uri = demo_net_device_uri(u->net);
        dv->proxy_port = demo_net_port(u->net);
    } else if (u->index == 0) {
        demo_log(&d->view, DEMO_LOG_UI, "%s", err); /* why n is off: once, not per scanner */
    }
    return SCANSIM_EXIT_OK;
}

/* The per-device layout puts the id in the topic; to watch every scanner, the hint
   names the level with '+' instead ("scanners/+/item_registered"). */
static void demo__topic_for_all(char *topic, size_t cap, const char *id, int ndev)
{
    char *at = strstr(topic, id);
    char rest[FW_TOPIC_MAX];

    if (ndev < 2 || !at)
        return;
    snprintf(rest, sizeof(rest), "%s", at + strlen(id));
    snprintf(at, cap - (size_t)(at - topic), "+%s", rest);
}

static int demo__create_scanners(struct demo *d)
{
    struct sim_loop_opts lo;
    int rc;

    sim_loop_opts_defaults(&lo);
    lo.name = "demo";
    if ((rc = sim_loop_create(&lo, &d->loop))) {
        scansim_cli_error(DEMO_CMD, "could not create the event loop: %s", sim_strerror(rc));
        return SCANSIM_EXIT_INTERNAL;
    }
    d->observer = demo_observer_hooks;
    d->observer.ctx = d;
    for (int k = 0; k < d->ndev; k++) {
        if ((rc = demo__open_link(d, &d->units[k])) != SCANSIM_EXIT_OK ||
            (rc = demo__create_device(d, &d->units[k])) != SCANSIM_EXIT_OK)
            return rc;
    }
    struct fw_device *fw = sim_device_fw(d->units[0].dev);
    snprintf(d->item_topic, sizeof(d->item_topic), "%s", fw_device_topic_item_registration(fw));
    snprintf(d->registered_topic, sizeof(d->registered_topic), "%s",
             fw_device_topic_item_registered(fw));
    demo__topic_for_all(d->registered_topic, sizeof(d->registered_topic), d->units[0].id,
                        d->ndev);
    return SCANSIM_EXIT_OK;
}

static void demo__fill_view(struct demo *d)
{
    d->view.ndev = d->ndev;
    d->view.broker_uri = d->broker_uri;
    d->view.item_topic = d->item_topic;
    d->view.registered_topic = d->registered_topic;
    d->view.backend_on = d->backend != NULL;
    d->view.seed_layout = d->common.layout == SCANSIM_LAYOUT_SEED;
    d->view.protocol = d->common.protocol_version == 5 ? "5" : "3.1.1";
    d->view.qos = d->common.qos;
}

/* The temporary flash folder when no --flash is given. 0 or -1 (said). */
static int demo__flash_folder(struct demo *d)
{
    if (d->flash_dir)
        return 0;
    snprintf(d->tmp_flash, sizeof(d->tmp_flash), "/tmp/scansim-demo-XXXXXX");
    if (!mkdtemp(d->tmp_flash)) {
        scansim_cli_error(DEMO_CMD, "could not make a temporary flash folder in /tmp: %s",
                      strerror(errno));
        d->tmp_flash[0] = '\0';
        return -1;
    }
    d->flash_dir = d->tmp_flash;
    return 0;
}

/* Everything before the screen opens: broker, backend, links, scanners. */
static int demo__set_up(struct demo *d)
{
    int rc;

    if (demo__flash_folder(d))
        return SCANSIM_EXIT_INTERNAL;
    scansim_cli_transport_setup(&d->common);
    if (scansim_cli_broker_up(DEMO_CMD, &d->common, &d->broker, &d->broker_uri))
        return SCANSIM_EXIT_BROKER;
    if (!d->no_backend && (rc = demo__start_backend(d)) != SCANSIM_EXIT_OK)
        return rc;
    if ((rc = demo__create_scanners(d)) != SCANSIM_EXIT_OK)
        return rc;
    if ((rc = demo_dash_start(d)) != DASH_OK)
        return rc == DASH_ERR_NOMEM ? SCANSIM_EXIT_INTERNAL : SCANSIM_EXIT_USAGE;
    demo__fill_view(d);
    return SCANSIM_EXIT_OK;
}

/* Power every scanner on; the loop; then the clean power-off of each. */
/* The demo's loop is driven by this thread, and with libmosquitto it also drives the
   devices' sockets: keep it turning until every clean disconnect (the retained "offline",
   its PUBACK, then DISCONNECT) is done, at most 2 s. */
static void demo__finish_disconnects(struct demo *d)
{
    uint64_t end = sim_clock_ms() + 2000;

    while (sim_clock_ms() < end) {
        bool busy = false;
        for (int k = 0; k < d->ndev; k++) {
            struct sim_device_snapshot snap;
            if (sim_device_snapshot(d->units[k].dev, &snap) == SIM_OK && snap.disconnecting)
                busy = true;
        }
        if (!busy)
            return;
        sim_loop_run_once(d->loop, 20);
    }
}

static int demo__screen(struct demo *d, bool *was_online)
{
    int rc;

    demo__log_watch_hint(d);
    for (int k = 0; k < d->ndev; k++)
        if (sim_device_start(d->units[k].dev))
            return SCANSIM_EXIT_INTERNAL;
    if (d->dash.http)
        demo_notice(&d->view, false, "dashboard: http://%.*s:%d/ (--http)",
                    (int)(strrchr(d->http_listen, ':') - d->http_listen), d->http_listen,
                    dash_http_port(d->dash.http));
    demo__draw(d);
    rc = demo__run(d);
    /* Clean power-off: the firmware publishes its retained "offline" and disconnects. */
    d->view.stopping = true;
    demo__draw(d);
    for (int k = 0; k < d->ndev; k++) {
        was_online[k] = d->view.devs[k].snap.status.online;
        sim_device_stop(d->units[k].dev);
    }
    demo__finish_disconnects(d);
    return rc;
}

/* After the screen closed: one line per scanner, what it took with it. */
static void demo__summary(const struct demo *d, const bool *was_online)
{
    for (int k = 0; k < d->ndev; k++) {
        const struct sim_device_snapshot *s = &d->view.devs[k].snap;
        bool kept = s->status.outbox && !d->tmp_flash[0];
        printf("scansim demo: %s powered off %s: %u registrations acked, %u left in the "
               "outbox%s%s\n", d->units[k].id,
               was_online[k] ? "cleanly (retained offline, DISCONNECT)"
                             : "while offline (the broker keeps its Will)",
               (unsigned)s->stats.registrations_acked, (unsigned)s->status.outbox,
               s->status.outbox ? (kept ? " kept in " : " (lost with the temporary flash: "
                                                        "keep it with --flash DIR)")
                                : "",
               kept ? d->flash_dir : "");
    }
}

static void demo__tear_down(struct demo *d, bool screen_open)
{
    if (screen_open)
        demo_refresh_model(d);
    demo_dash_stop(d); /* before the devices and the backend it reads */
    for (int k = 0; k < d->ndev; k++)
        sim_device_destroy(d->units[k].dev);
    sim_loop_free(d->loop);
    for (int k = 0; k < d->ndev; k++)
        demo_net_free(d->units[k].net);
    if (d->backend) {
        hx_backend_stop(d->backend);
        hx_backend_free(d->backend);
    }
    scansim_cli_broker_down(&d->common, d->broker);
    if (d->tmp_flash[0])
        sim_fs_remove_tree(d->tmp_flash);
    sim_ncurses_close();
}

int scansim_cmd_demo(int argc, char **argv)
{
    struct demo *d = calloc(1, sizeof(*d));
    int rc = SCANSIM_EXIT_INTERNAL;
    bool screen_open = false;
    bool was_online[DEMO_DEVICES_MAX] = { false }; /* at power-off: could it say goodbye? */

    if (!d) {
        scansim_cli_error(DEMO_CMD, "out of memory");
        return SCANSIM_EXIT_INTERNAL;
    }
    scansim_cli_common_defaults(&d->common);
    d->ndev = 1;
    switch (demo__parse(d, argc, argv)) {
    case 1: rc = SCANSIM_EXIT_OK; goto out;
    case -1: rc = SCANSIM_EXIT_USAGE; goto out;
    default: break;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        scansim_cli_error(DEMO_CMD, "needs a terminal: %s is not a TTY. Run it in a terminal, or "
                      "detached in tmux: tmux new-session -d -x 160 -y 50 'scansim demo'",
                      !isatty(STDIN_FILENO) ? "stdin" : "stdout");
        rc = SCANSIM_EXIT_USAGE;
        goto out;
    }
    setlocale(LC_ALL, "");
    if (!d->rng)
        d->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ull;
    scansim_cli_install_signals();
    if ((rc = demo__set_up(d)) != SCANSIM_EXIT_OK)
        goto out;
    if (sim_ncurses_open() != 0) {
        scansim_cli_error(DEMO_CMD, "cannot drive this terminal (TERM=%s): set TERM to your "
                      "terminal's type, e.g. TERM=xterm-256color", getenv("TERM") ? getenv("TERM") : "");
        rc = SCANSIM_EXIT_USAGE;
        goto out;
    }
    screen_open = true;
    rc = demo__screen(d, was_online);
out:
    demo__tear_down(d, screen_open);
    if (screen_open && rc == SCANSIM_EXIT_OK)
        demo__summary(d, was_online);
    else if (screen_open)
        fprintf(stderr, "scansim demo: %s\n", d->view.notice[0] ? d->view.notice : "stopped on an error");
    free(d);
    return rc;
}
