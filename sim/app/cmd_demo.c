/*
 * cmd_demo.c - `scansim demo`: one scanner running the real firmware in a terminal.
 *
 * What a firmware developer runs to see and drive the device as an operator would: the
 * firmware's 128x64 OLED drawn in the terminal (display_ncurses.c), its state and counters,
 * the MQTT traffic it sends and receives, and the backend's ledger (demo_ui.c). The keyboard
 * stands in for the RFID reader and the buttons; `n` takes the network away through the
 * harness fault proxy (demo_net.c) and gives it back.
 *
 * Threads: the main thread owns the device's loop (sim_loop_fd + poll together with the
 * keyboard), so the device's observer - frames, traffic, state changes - runs on the same
 * thread as curses and needs no lock. Keys reach the firmware as loop events
 * (sim_device_post_tag / sim_device_post_button). The backend (hx_backend) and the proxy
 * hub run their own threads; the main thread only calls their thread-safe functions.
 *
 * Start-up failures are printed before the screen opens, with scansim's exit codes.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "demo_net.h"
#include "demo_ui.h"
#include "display_ncurses.h"
#include "fw/fw_device.h"
#include "hx/backend.h"
#include "sim/clock.h"
#include "sim/device.h"
#include "sim/display.h"
#include "sim/err.h"
#include "sim/loop.h"

const char scansim_cmd_demo_summary[] =
    "one scanner in the terminal: its OLED, state, MQTT log; keys for tags and buttons";

#define DEMO_CMD "demo"
#define DEMO_REDRAW_MS 250   /* at least this often (countdowns, backend figures) */

enum {
    DEMO_OPT_ID = 0x2001,
    DEMO_OPT_NO_BACKEND,
    DEMO_OPT_FLASH,
    DEMO_OPT_DIRECT,
    DEMO_OPT_ASCII,
    DEMO_OPT_SEED,
    DEMO_OPT_OLED_DUMP,
    DEMO_OPT_TRACE,
};

static const char demo_help[] =
    "usage: scansim demo [options]\n"
    "\n"
    "Runs one simulated scanner - the real firmware - in this terminal, against a real broker:\n"
    "its 128x64 OLED (pixel-true with half blocks on a UTF-8 terminal of 160x43 or more),\n"
    "its state and counters, a log of its MQTT traffic, and the backend's ledger. By default a\n"
    "private mosquitto is started on a free loopback port (its URI is on the top line, so you\n"
    "can watch with: mosquitto_sub -h 127.0.0.1 -p PORT -t item_registered -v) and the\n"
    "harness backend publishes items and records registrations.\n"
    "\n"
    "Keys (the RFID reader and the buttons):\n"
    "  a       the backend creates the next item and publishes it\n"
    "  t       present a random RFID tag (4, 7 or 10 byte UID)\n"
    "  T       type a tag UID in hex (Enter sends, Esc cancels)\n"
    "  Enter   CONFIRM button (register the scanned tag, acknowledge a screen)\n"
    "  c       CANCEL button (skip the item, leave a mode)\n"
    "  i       MODE button: inventory look-up (scan a tag, the backend answers)\n"
    "  n       cut the device's network link / restore it (a fault proxy between device and\n"
    "          broker: the device goes offline, the broker publishes its Will, and it\n"
    "          reconnects by its own back-off once restored; needs a tcp:// broker: with\n"
    "          ssl:// the proxy cannot read the MQTT frames and the device connects directly)\n"
    "  q       quit: clean power-off (retained \"offline\", DISCONNECT); Ctrl-C does the same\n"
    "\n"
    "Demo options:\n"
    "  --id ID          device id, also the MQTT client id (default scanner-1)\n"
    "  --no-backend     do not start the harness backend: your backend publishes the items\n"
    "  --flash DIR      keep the device's flash (outbox, sequence number) in DIR/<id>, so it\n"
    "                   survives a restart (default: a temporary folder removed on exit)\n"
    "  --trace DIR      record the device's trace as DIR/<id>.fwtrace (docs/trace.md)\n"
    "  --direct         connect the device straight to the broker (no proxy; n is disabled)\n"
    "  --ascii          draw the OLED in ASCII even on a UTF-8 terminal\n"
    "  --seed N         seed for the random tags (default: from the clock)\n"
    "  -v               also show the firmware's info and debug log lines in the log panel\n"
    "  --oled-dump FILE write every OLED frame to FILE as text (half blocks, 32 lines of\n"
    "                   128; replaced atomically): for scripts that check the pixels\n"
    "  -h, --help       this help\n"
    "\n";

static const char demo_help_tail[] =
    "\n"
    "Needs a terminal (stdin and stdout a TTY) of at least 96x27; for a script, run it in\n"
    "tmux: tmux new-session -d -x 160 -y 50 'scansim demo'.\n"
    "\n"
    "Exit codes: 0 quit cleanly (q, Ctrl-C, SIGTERM); 2 bad option or not a terminal;\n"
    "3 broker unreachable, refused, or the embedded broker did not start; 4 internal error.\n";

/* Names the backend gives the items it creates (cycled). */
static const char *const demo_item_names[] = {
    "Pallet jack", "Cordless drill", "Safety helmet", "Label printer", "Hand truck",
    "Torque wrench", "Laser level", "Ladder 3m", "Tool case", "Fire extinguisher",
};

struct demo {
    struct sim_cli_common common;
    const char *id;
    bool no_backend;
    const char *flash_dir;        /* --flash, or tmp_flash */
    char tmp_flash[64];           /* temporary flash folder, removed on exit */
    bool direct;
    const char *oled_dump;        /* --oled-dump FILE, or NULL */
    const char *trace_dir;        /* --trace DIR, or NULL */
    bool oled_dump_failed;        /* said once; not retried */
    uint64_t rng;                 /* xorshift64 state for random tags and quantities */

    struct hx_broker *broker;     /* embedded mosquitto, or NULL */
    const char *broker_uri;
    struct hx_backend *backend;
    struct demo_net *net;
    struct sim_loop *loop;
    struct sim_device *dev;
    struct sim_device_observer observer;
    char item_topic[FW_TOPIC_MAX];
    char registered_topic[FW_TOPIC_MAX];

    bool quit;
    bool dirty;                   /* something on screen changed */
    uint64_t last_draw_ms;
    struct demo_view view;        /* big: the log ring; this struct is heap-allocated */
};

/* ------------------------------------------------------------------ small helpers */

static uint64_t demo__rand(struct demo *d)
{
    uint64_t x = d->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d->rng = x;
    return x;
}

static int demo__rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

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

/* ------------------------------------------------------------------ observer (owner thread) */

/* --oled-dump: the frame as sim_display_ascii() writes it, into FILE.tmp, renamed over FILE
   so a reader never sees half a frame. */
static void demo__dump_frame(struct demo *d, const uint8_t *fb)
{
    char text[(FW_FB_HEIGHT / 2) * (FW_FB_WIDTH * 3 + 1) + 1];
    char tmp[4096];
    FILE *f;
    int n = sim_display_ascii(fb, SIM_ASCII_HALFBLOCK, text, sizeof(text));
    bool ok;

    if (d->oled_dump_failed || n < 0)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", d->oled_dump);
    f = fopen(tmp, "w");
    ok = f && fwrite(text, 1, (size_t)n, f) == (size_t)n;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, d->oled_dump) != 0) {
        demo_notice(&d->view, true, "--oled-dump: cannot write %s: %s (no more dumps)",
                    d->oled_dump, strerror(errno));
        d->oled_dump_failed = true;
    }
}

static void demo__on_frame(void *ctx, struct sim_device *dev, const uint8_t *fb)
{
    struct demo *d = ctx;

    (void)dev;
    memcpy(d->view.fb, fb, FW_FB_BYTES);
    d->view.have_frame = true;
    d->dirty = true;
    if (d->oled_dump)
        demo__dump_frame(d, fb);
}

static void demo__on_log(void *ctx, struct sim_device *dev, enum fw_log_level level,
                         const char *line)
{
    struct demo *d = ctx;
    static const char *const names[] = { "debug", "info", "warn", "error" };

    (void)dev;
    demo_log(&d->view, level >= FW_LOG_WARN ? DEMO_LOG_ERROR : DEMO_LOG_FW, "fw %s: %s",
             (unsigned)level < 4 ? names[level] : "?", line);
    d->dirty = true;
}

static void demo__on_traffic(void *ctx, struct sim_device *dev, const struct sim_traffic *t)
{
    struct demo *d = ctx;

    (void)dev;
    demo_log_traffic(&d->view, t);
    d->dirty = true;
}

static void demo__on_state(void *ctx, struct sim_device *dev, const struct sim_state_change *s)
{
    struct demo *d = ctx;

    (void)dev;
    switch (s->state) {
    case SIM_CONN_CONNECTING:
        if (d->net)
            demo_log(&d->view, DEMO_LOG_STATE, "connecting to %s (the proxy to %s)",
                     d->view.device_uri, d->broker_uri);
        else
            demo_log(&d->view, DEMO_LOG_STATE, "connecting to %s", d->view.device_uri);
        break;
    case SIM_CONN_CONNECTED:
        demo_log(&d->view, DEMO_LOG_STATE, "connected (session %s)",
                 s->session_present ? "present" : "new");
        break;
    case SIM_CONN_FAILED:
    case SIM_CONN_LOST:
        /* The firmware has just logged the same words: keep one line, the clearer one. */
        demo_log_drop_last_if(&d->view, DEMO_LOG_ERROR, s->words);
        demo_log(&d->view, DEMO_LOG_ERROR, "%s: %s",
                 s->state == SIM_CONN_LOST ? "connection lost" : "connect failed", s->words);
        break;
    default:
        demo_log(&d->view, DEMO_LOG_STATE, "%s", sim_conn_state_name(s->state));
        break;
    }
    d->dirty = true;
}

/* ------------------------------------------------------------------ keys */

static void demo__present_tag(struct demo *d, const uint8_t *uid, size_t len, const char *how)
{
    char hex[DEMO_TAG_HEX_MAX + 1];
    int rc;

    fw_tag_to_hex(uid, len, hex, sizeof(hex));
    rc = sim_device_post_tag(d->dev, uid, len);
    if (rc) {
        demo_notice(&d->view, true, "could not present tag %s: %s", hex, sim_strerror(rc));
        return;
    }
    snprintf(d->view.last_tag, sizeof(d->view.last_tag), "%s", hex);
    demo_log(&d->view, DEMO_LOG_UI, "tag %s presented (%s, %zu bytes)", hex, how, len);
    demo_notice(&d->view, false, "tag %s presented", hex);
}

static void demo__random_tag(struct demo *d)
{
    static const size_t lens[] = { 4, 7, 10 };
    uint8_t uid[FW_TAG_UID_MAX];
    size_t len = lens[demo__rand(d) % 3];

    for (size_t i = 0; i < len; i++)
        uid[i] = (uint8_t)demo__rand(d);
    if (len == 7)
        uid[0] = 0x04; /* NXP's manufacturer code, as on most 7-byte NTAG/Ultralight UIDs */
    demo__present_tag(d, uid, len, "random");
}

/* The typed tag: hex digits, an even number of them, 1 to 10 bytes. Other lengths than 4,
   7 and 10 are sent on purpose: they exercise the firmware's wrong-tag screen. */
static void demo__prompt_submit(struct demo *d)
{
    uint8_t uid[FW_TAG_UID_MAX];
    size_t n = strlen(d->view.prompt);

    d->view.prompt_active = false;
    if (n == 0) {
        demo_notice(&d->view, false, "no tag typed");
        return;
    }
    if (n % 2) {
        demo_notice(&d->view, true, "tag '%s' has an odd number of hex digits: two per byte "
                    "(e.g. 04A1B2C3), press T to try again", d->view.prompt);
        return;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        sscanf(d->view.prompt + 2 * i, "%2x", &v);
        uid[i] = (uint8_t)v;
    }
    demo__present_tag(d, uid, n / 2, "typed");
}

static void demo__prompt_key(struct demo *d, int ch)
{
    size_t n = strlen(d->view.prompt);

    if (ch == 27) { /* Esc */
        d->view.prompt_active = false;
        demo_notice(&d->view, false, "tag entry cancelled");
    } else if (ch == '\r' || ch == '\n' || ch == KEY_ENTER) {
        demo__prompt_submit(d);
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
        if (n)
            d->view.prompt[n - 1] = '\0';
    } else if (ch > 0 && ch < 256 && strchr("0123456789abcdefABCDEF", ch)) {
        if (n < DEMO_TAG_HEX_MAX) {
            d->view.prompt[n] = (char)(ch >= 'a' ? ch - 32 : ch);
            d->view.prompt[n + 1] = '\0';
            d->view.notice[0] = '\0';
        } else {
            demo_notice(&d->view, true, "a UID has at most 10 bytes (20 hex digits)");
        }
    } else if (ch != KEY_RESIZE) {
        demo_notice(&d->view, true, "only hex digits 0-9 A-F in a tag UID (Esc cancels)");
    }
}

static void demo__add_item(struct demo *d)
{
    if (!d->backend) {
        demo_notice(&d->view, true, "no backend (--no-backend): publish an item yourself, e.g. "
                    "mosquitto_pub -t %s -q 1 -m '{\"item_id\":1,\"item_name\":\"Drill\",\"tag_quantity\":1}'",
                    d->item_topic);
        return;
    }
    int32_t id = hx_backend_next_item_id(d->backend);
    const char *name = demo_item_names[(size_t)(id - 1) % (sizeof(demo_item_names) /
                                                              sizeof(demo_item_names[0]))];
    int32_t qty = 1 + (int32_t)(demo__rand(d) % 3);
    bool per_device = d->common.layout == SIM_LAYOUT_PER_DEVICE;
    int rc = hx_backend_publish_item(d->backend, per_device ? d->id : NULL, id, name, qty);

    if (rc) {
        demo_notice(&d->view, true, "the backend could not publish item %d: %s", (int)id,
                    hx_backend_last_error());
        return;
    }
    demo_log(&d->view, DEMO_LOG_UI, "backend publishes item %d \"%s\" (tag_quantity %d)",
             (int)id, name, (int)qty);
    demo_notice(&d->view, false, "item %d \"%s\" published", (int)id, name);
}

static void demo__toggle_net(struct demo *d)
{
    char err[256];

    if (!d->net) {
        demo_notice(&d->view, true, "no network cut: the device connects directly (%s)",
                    d->direct ? "--direct" : "the broker URI cannot be proxied");
        return;
    }
    if (!demo_net_is_cut(d->net)) {
        int n = demo_net_cut(d->net, err, sizeof(err));
        if (n < 0) {
            demo_notice(&d->view, true, "%s", err);
            return;
        }
        demo_log(&d->view, DEMO_LOG_UI, "network cut: proxy refuses connections, %d link(s) reset", n);
        demo_notice(&d->view, false, "network cut (press n to restore)");
    } else {
        if (demo_net_restore(d->net, err, sizeof(err)) < 0) {
            demo_notice(&d->view, true, "%s", err);
            return;
        }
        demo_log(&d->view, DEMO_LOG_UI, "network restored: the device reconnects at its next attempt");
        demo_notice(&d->view, false, "network restored");
    }
    d->view.net_cut = demo_net_is_cut(d->net);
}

static void demo__button(struct demo *d, enum fw_button b, const char *name)
{
    int rc = sim_device_post_button(d->dev, b);

    if (rc) {
        demo_notice(&d->view, true, "could not press %s: %s", name, sim_strerror(rc));
        return;
    }
    demo_log(&d->view, DEMO_LOG_UI, "button %s", name);
    demo_notice(&d->view, false, "%s pressed", name);
}

static void demo__key(struct demo *d, int ch)
{
    d->dirty = true;
    if (ch == KEY_RESIZE)
        return; /* curses updated LINES/COLS; the next draw lays out again */
    if (d->view.prompt_active) {
        demo__prompt_key(d, ch);
        return;
    }
    switch (ch) {
    case 'a': demo__add_item(d); break;
    case 't': demo__random_tag(d); break;
    case 'T':
        d->view.prompt_active = true;
        d->view.prompt[0] = '\0';
        d->view.notice[0] = '\0';
        break;
    case '\r':
    case '\n':
    case KEY_ENTER: demo__button(d, FW_BUTTON_CONFIRM, "CONFIRM"); break;
    case 'c': demo__button(d, FW_BUTTON_CANCEL, "CANCEL"); break;
    case 'i': demo__button(d, FW_BUTTON_MODE, "MODE"); break;
    case 'n': demo__toggle_net(d); break;
    case 'q':
    case 'Q': d->quit = true; break;
    case 12: /* Ctrl-L: repaint everything */
        clearok(stdscr, TRUE);
        break;
    default:
        if (ch >= 0x20 && ch < 0x7f)
            demo_notice(&d->view, true, "key '%c' does nothing: the keys are on the bottom line", ch);
        break;
    }
}

/* ------------------------------------------------------------------ the loop */

static void demo__refresh_model(struct demo *d)
{
    uint32_t acked = d->view.snap.stats.registrations_acked;

    if (sim_device_snapshot(d->dev, &d->view.snap) == 0)
        d->view.have_snap = true;
    /* PUBACKs do not pass the traffic hook; say in the log when the broker took one. */
    if (d->view.have_snap && d->view.snap.stats.registrations_acked > acked)
        demo_log(&d->view, DEMO_LOG_STATE, "broker acknowledged %u registration(s): %u acked, "
                 "%u still in the outbox", (unsigned)(d->view.snap.stats.registrations_acked - acked),
                 (unsigned)d->view.snap.stats.registrations_acked,
                 (unsigned)d->view.snap.status.outbox);
    d->view.snap.status.head_item_name = d->view.snap.head_item_name;
    d->view.now_ms = sim_clock_ms();
    if (d->backend) {
        hx_backend_report(d->backend, &d->view.report);
        d->view.nrows = hx_backend_recent(d->backend, d->view.rows, DEMO_BACKEND_ROWS);
        if (d->view.nrows < 0)
            d->view.nrows = 0;
        d->view.backend_connected = hx_backend_connected(d->backend);
    }
}

static void demo__draw(struct demo *d)
{
    demo__refresh_model(d);
    demo_ui_draw(&d->view);
    d->dirty = false;
    d->last_draw_ms = sim_clock_ms();
}

static int demo__run(struct demo *d)
{
    while (!d->quit && !sim_cli_stop_requested) {
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
            return SIM_EXIT_INTERNAL;
        }
        int handled = sim_loop_run_once(d->loop, 0);
        if (handled < 0)
            return SIM_EXIT_INTERNAL;
        if (handled > 0)
            d->dirty = true; /* e.g. a PUBACK: no frame, but the counters moved */
        if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL))
            d->quit = true; /* the terminal went away: power off as on q */
        /* getch() also after a wake-up without input: a SIGWINCH interrupts poll() and
           curses reports it as KEY_RESIZE from the next getch(). */
        for (int ch; !d->quit && (ch = getch()) != ERR;)
            demo__key(d, ch);
        if (d->dirty || sim_clock_ms() >= d->last_draw_ms + DEMO_REDRAW_MS)
            demo__draw(d);
    }
    return SIM_EXIT_OK;
}

/* ------------------------------------------------------------------ set-up and tear-down */

static int demo__parse(struct demo *d, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"id", required_argument, 0, DEMO_OPT_ID},
        {"no-backend", no_argument, 0, DEMO_OPT_NO_BACKEND},
        {"flash", required_argument, 0, DEMO_OPT_FLASH},
        {"direct", no_argument, 0, DEMO_OPT_DIRECT},
        {"ascii", no_argument, 0, DEMO_OPT_ASCII},
        {"seed", required_argument, 0, DEMO_OPT_SEED},
        {"oled-dump", required_argument, 0, DEMO_OPT_OLED_DUMP},
        {"trace", required_argument, 0, DEMO_OPT_TRACE},
        {"help", no_argument, 0, 'h'},
        SIM_CLI_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    int opt;
    long v;

    opterr = 1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h" SIM_CLI_COMMON_SHORT, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(demo_help, stdout);
            fputs(sim_cli_common_help, stdout);
            fputs(demo_help_tail, stdout);
            return 1;
        case DEMO_OPT_ID:
            if (!demo__valid_id(optarg)) {
                sim_cli_error(DEMO_CMD, "--id: expected 1 to %d printable ASCII characters "
                              "without '+', '#' or '/' (it is the MQTT client id and part of "
                              "topics), got '%s'", FW_DEVICE_ID_MAX - 1, optarg);
                return -1;
            }
            d->id = optarg;
            break;
        case DEMO_OPT_NO_BACKEND: d->no_backend = true; break;
        case DEMO_OPT_FLASH: d->flash_dir = optarg; break;
        case DEMO_OPT_TRACE: d->trace_dir = optarg; break;
        case DEMO_OPT_DIRECT: d->direct = true; break;
        case DEMO_OPT_ASCII: d->view.force_ascii = true; break;
        case DEMO_OPT_OLED_DUMP: d->oled_dump = optarg; break;
        case DEMO_OPT_SEED:
            if (sim_cli_parse_int(DEMO_CMD, "--seed", optarg, 1, 2147483647L, &v))
                return -1;
            d->rng = (uint64_t)v;
            break;
        case '?':
            return -1; /* getopt_long said what */
        default: {
            int rc = sim_cli_common_option(DEMO_CMD, &d->common, opt, optarg);
            if (rc < 0)
                return -1;
            if (rc == 0) {
                sim_cli_error(DEMO_CMD, "unknown option");
                return -1;
            }
        }
        }
    }
    if (optind < argc) {
        sim_cli_error(DEMO_CMD, "unexpected argument '%s' (see scansim demo --help)", argv[optind]);
        return -1;
    }
    if (sim_cli_common_check(DEMO_CMD, &d->common))
        return -1;
    return 0;
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
    o.layout = d->common.layout == SIM_LAYOUT_PER_DEVICE ? HX_BACKEND_LAYOUT_PER_DEVICE
                                                         : HX_BACKEND_LAYOUT_SEED;
    o.keepalive_s = d->common.keepalive_s > 0 ? d->common.keepalive_s : 30;
    if (hx_backend_create(&o, &d->backend) != HX_OK) {
        sim_cli_error(DEMO_CMD, "could not create the backend: %s", hx_backend_last_error());
        return SIM_EXIT_INTERNAL;
    }
    if (hx_backend_start(d->backend) != HX_OK) {
        /* The backend's words name the URI, the client id and what to check. */
        sim_cli_error(DEMO_CMD, "%s (or run with --no-backend and use your own backend)",
                      hx_backend_last_error());
        return SIM_EXIT_BROKER;
    }
    return SIM_EXIT_OK;
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

static int demo__create_device(struct demo *d)
{
    struct sim_device_opts o;
    struct sim_loop_opts lo;
    int rc;

    sim_loop_opts_defaults(&lo);
    lo.name = "demo";
    if ((rc = sim_loop_create(&lo, &d->loop))) {
        sim_cli_error(DEMO_CMD, "could not create the event loop: %s", sim_strerror(rc));
        return SIM_EXIT_INTERNAL;
    }
    sim_device_opts_defaults(&o, d->id, d->view.device_uri);
    o.fw.layout = d->common.layout == SIM_LAYOUT_PER_DEVICE ? FW_LAYOUT_PER_DEVICE : FW_LAYOUT_SEED;
    o.fw.clean_session = d->common.session == SIM_SESSION_CLEAN;
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
    o.trace_dir = d->trace_dir;
    rc = sim_device_create(d->loop, &o, &d->dev);
    if (rc == SIM_ERR_IO && d->trace_dir) {
        sim_cli_error(DEMO_CMD, "--flash '%s' or --trace '%s': not a writable folder (the "
                      "line above names the file) - pick another folder", d->flash_dir,
                      d->trace_dir);
        return SIM_EXIT_USAGE;
    }
    if (rc == SIM_ERR_IO) {
        sim_cli_error(DEMO_CMD, "--flash: cannot use '%s/%s' as the device's flash (not a "
                      "writable folder?) - pick another folder", d->flash_dir, d->id);
        return SIM_EXIT_USAGE;
    }
    if (rc) {
        sim_cli_error(DEMO_CMD, "could not create the device '%s': %s", d->id, sim_strerror(rc));
        return rc == SIM_ERR_INVAL ? SIM_EXIT_USAGE : SIM_EXIT_INTERNAL;
    }
    snprintf(d->item_topic, sizeof(d->item_topic), "%s",
             fw_device_topic_item_registration(sim_device_fw(d->dev)));
    snprintf(d->registered_topic, sizeof(d->registered_topic), "%s",
             fw_device_topic_item_registered(sim_device_fw(d->dev)));
    return SIM_EXIT_OK;
}

int scansim_cmd_demo(int argc, char **argv)
{
    struct demo *d = calloc(1, sizeof(*d));
    char err[512];
    int rc = SIM_EXIT_INTERNAL;
    bool screen_open = false;
    bool was_online = false; /* at power-off: could it say goodbye on the wire? */

    if (!d) {
        sim_cli_error(DEMO_CMD, "out of memory");
        return SIM_EXIT_INTERNAL;
    }
    sim_cli_common_defaults(&d->common);
    d->id = "scanner-1";
    switch (demo__parse(d, argc, argv)) {
    case 1: rc = SIM_EXIT_OK; goto out;
    case -1: rc = SIM_EXIT_USAGE; goto out;
    default: break;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        sim_cli_error(DEMO_CMD, "needs a terminal: %s is not a TTY. Run it in a terminal, or "
                      "detached in tmux: tmux new-session -d -x 160 -y 50 'scansim demo'",
                      !isatty(STDIN_FILENO) ? "stdin" : "stdout");
        rc = SIM_EXIT_USAGE;
        goto out;
    }
    setlocale(LC_ALL, "");
    if (!d->rng)
        d->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ull;
    sim_cli_install_signals();

    if (!d->flash_dir) {
        snprintf(d->tmp_flash, sizeof(d->tmp_flash), "/tmp/scansim-demo-XXXXXX");
        if (!mkdtemp(d->tmp_flash)) {
            sim_cli_error(DEMO_CMD, "could not make a temporary flash folder in /tmp: %s",
                          strerror(errno));
            d->tmp_flash[0] = '\0';
            goto out;
        }
        d->flash_dir = d->tmp_flash;
    }
    sim_cli_transport_setup(&d->common);
    if (sim_cli_broker_up(DEMO_CMD, &d->common, &d->broker, &d->broker_uri)) {
        rc = SIM_EXIT_BROKER;
        goto out;
    }
    if (!d->no_backend && (rc = demo__start_backend(d)) != SIM_EXIT_OK)
        goto out;
    d->view.device_uri = d->broker_uri;
    if (!d->direct) {
        int nrc = demo_net_open(d->broker_uri, &d->net, err, sizeof(err));
        if (nrc < 0) {
            sim_cli_error(DEMO_CMD, "%s", err);
            rc = SIM_EXIT_INTERNAL;
            goto out;
        }
        if (nrc == 0) {
            d->view.device_uri = demo_net_device_uri(d->net);
            d->view.proxy_port = demo_net_port(d->net);
        } else {
            demo_log(&d->view, DEMO_LOG_UI, "%s", err);
        }
    }
    d->observer = (struct sim_device_observer){ d, demo__on_frame, demo__on_log,
                                                demo__on_traffic, demo__on_state };
    if ((rc = demo__create_device(d)) != SIM_EXIT_OK)
        goto out;
    d->view.device_id = d->id;
    d->view.broker_uri = d->broker_uri;
    d->view.item_topic = d->item_topic;
    d->view.registered_topic = d->registered_topic;
    d->view.backend_on = d->backend != NULL;
    d->view.protocol = d->common.protocol_version == 5 ? "5" : "3.1.1";
    d->view.qos = d->common.qos;

    if (sim_ncurses_open() != 0) {
        sim_cli_error(DEMO_CMD, "cannot drive this terminal (TERM=%s): set TERM to your "
                      "terminal's type, e.g. TERM=xterm-256color", getenv("TERM") ? getenv("TERM") : "");
        rc = SIM_EXIT_USAGE;
        goto out;
    }
    screen_open = true;
    demo__log_watch_hint(d);
    if (sim_device_start(d->dev)) {
        rc = SIM_EXIT_INTERNAL;
        goto out;
    }
    demo__draw(d);
    rc = demo__run(d);

    /* Clean power-off: the firmware publishes its retained "offline" and disconnects. */
    d->view.stopping = true;
    demo__draw(d);
    was_online = d->view.snap.status.online;
    sim_device_stop(d->dev);

out:
    if (d->dev) {
        if (screen_open)
            demo__refresh_model(d);
        sim_device_destroy(d->dev);
    }
    sim_loop_free(d->loop);
    demo_net_free(d->net);
    if (d->backend) {
        hx_backend_stop(d->backend);
        hx_backend_free(d->backend);
    }
    sim_cli_broker_down(&d->common, d->broker);
    if (d->tmp_flash[0])
        nftw(d->tmp_flash, demo__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    sim_ncurses_close();
    if (screen_open && rc == SIM_EXIT_OK)
        printf("scansim demo: %s powered off %s: %u registrations acked, %u left in the "
               "outbox%s%s\n",
               d->id, was_online ? "cleanly (retained offline, DISCONNECT)"
                                 : "while offline (the broker keeps its Will)",
               (unsigned)d->view.snap.stats.registrations_acked,
               (unsigned)d->view.snap.status.outbox,
               d->view.snap.status.outbox ? (d->tmp_flash[0] ? " (lost with the temporary flash: "
                                                               "keep it with --flash DIR)"
                                                             : " kept in ")
                                          : "",
               d->view.snap.status.outbox && !d->tmp_flash[0] ? d->flash_dir : "");
    else if (screen_open)
        fprintf(stderr, "scansim demo: %s\n", d->view.notice[0] ? d->view.notice : "stopped on an error");
    free(d);
    return rc;
}
