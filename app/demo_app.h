/*
 * demo_app.h - the state of one `scansim demo` run, shared by its files: cmd_demo.c (options,
 * set-up, the loop, tear-down), demo_input.c (what each key does) and demo_watch.c (the
 * devices' observer and the model behind the screen). Internal to the demo.
 *
 * Threads: everything here runs on the main thread, which owns the devices' loop; the
 * backend and the proxies run their own threads and are only called through their
 * thread-safe functions.
 */
#ifndef DEMO_APP_H
#define DEMO_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "dash.h"
#include "demo_net.h"
#include "demo_ui.h"
#include "fw/fw_device.h"
#include "hx/backend.h"
#include "sim/device.h"
#include "sim/loop.h"

#define DEMO_CMD "demo"

/* One scanner: its device and its own cuttable link. */
struct demo_unit {
    int index;                    /* in demo.units and view.devs */
    char id[FW_DEVICE_ID_MAX];
    struct sim_device *dev;
    struct demo_net *net;         /* NULL: direct connection */
};

/* --http: the dashboard's model and server (demo_dash.c). */
struct demo_dash {
    struct dash_model *model;     /* NULL without --http */
    struct dash_http *http;
    struct dash_backend_items items;
    uint64_t t0_ms, last_ms, sample_ms;
    uint64_t registered;          /* at the last sample */
    double rate;
    uint32_t rx[DEMO_DEVICES_MAX];      /* items received, to see when each last heard */
    uint64_t seen_ms[DEMO_DEVICES_MAX];
};

struct demo {
    struct scansim_cli_common common;
    const char *id;               /* --id: the id (one scanner) or the prefix (several) */
    bool id_set;
    int ndev;                     /* --devices */
    bool no_backend;
    const char *flash_dir;        /* --flash, or tmp_flash */
    char tmp_flash[64];           /* temporary flash folder, removed on exit */
    bool direct;
    const char *oled_dump;        /* --oled-dump FILE (the first scanner), or NULL */
    const char *trace_dir;        /* --trace DIR, or NULL */
    const char *http_listen;      /* --http ADDR:PORT, or NULL */
    const char *http_token;       /* --http-token */
    struct demo_dash dash;
    bool oled_dump_failed;        /* said once; not retried */
    uint64_t rng;                 /* xorshift64 state for random tags and quantities */
    unsigned commands_sent;       /* for unique cmd_ids */
    unsigned messages_sent;       /* the M key's next canned message */

    struct hx_broker *broker;     /* embedded mosquitto, or NULL */
    const char *broker_uri;
    struct hx_backend *backend;
    struct sim_loop *loop;        /* one loop, on the main thread, for every scanner */
    struct demo_unit units[DEMO_DEVICES_MAX];
    struct sim_device_observer observer;
    char item_topic[FW_TOPIC_MAX];      /* the first scanner's */
    char registered_topic[FW_TOPIC_MAX];

    bool quit;
    bool dirty;                   /* something on screen changed */
    uint64_t last_draw_ms;
    struct demo_view view;        /* big: the log ring; this struct is heap-allocated */
};

/* demo_input.c */
void demo_key(struct demo *d, int ch);
/* The command keys (I S M R L, demo_commands.c): true when ch was one of them. */
bool demo_command_key(struct demo *d, int ch);

/* demo_dash.c: 0 or a negative dash_err (said); tick is cheap between its intervals */
int demo_dash_start(struct demo *d);
void demo_dash_tick(struct demo *d);
void demo_dash_stop(struct demo *d);

/* demo_watch.c */
extern const struct sim_device_observer demo_observer_hooks; /* ctx is set per run */
void demo_refresh_model(struct demo *d);
/** "scanner-2 " when there are several scanners, "" for one: the log's prefix. */
const char *demo_who(const struct demo *d, int k);

#endif /* DEMO_APP_H */
