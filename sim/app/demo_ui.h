/*
 * demo_ui.h - what `scansim demo` shows: the model behind the screen and its drawing.
 *
 * struct demo_view holds everything on screen: the last OLED frame, the device's figures
 * (a sim_device_snapshot), the backend's ledger figures and newest rows, a ring of log
 * lines (MQTT traffic, connection changes, firmware log, the operator's actions), the
 * tag prompt and a notice line. cmd_demo.c fills it on the main thread (the device's
 * observer runs there too, since the main thread owns the device's loop) and calls
 * demo_ui_draw(), which lays out the panels for the terminal's size and refreshes once.
 *
 * Ownership: the view is the caller's (usually static or on the stack); strings in the
 * "fixed" part are borrowed for the view's life.
 */
#ifndef DEMO_UI_H
#define DEMO_UI_H

#include <stdbool.h>
#include <stdint.h>

#include "fw/fw_device.h"
#include "hx/backend.h"
#include "sim/device.h"

#define DEMO_LOG_LINES 256     /* log lines kept (the panel shows the newest that fit) */
#define DEMO_LOG_WIDTH 300     /* bytes kept per log line */
#define DEMO_BACKEND_ROWS 24   /* ledger rows kept for the backend panel */
#define DEMO_TAG_HEX_MAX 20    /* 10-byte UID */

enum demo_log_kind {
    DEMO_LOG_IN = 0, /* MQTT received by the device */
    DEMO_LOG_OUT,    /* MQTT sent by the device */
    DEMO_LOG_STATE,  /* connection changes */
    DEMO_LOG_FW,     /* the firmware's log port */
    DEMO_LOG_UI,     /* what the operator did (keys), backend and proxy actions */
    DEMO_LOG_ERROR,
};

struct demo_view {
    /* fixed at start */
    const char *device_id;
    const char *broker_uri;       /* what the backend and mosquitto_sub use */
    const char *device_uri;       /* what the device connects to (the proxy, or the broker) */
    const char *item_topic;       /* where items go (for the --no-backend hint) */
    const char *registered_topic; /* where registrations go (for the mosquitto_sub hint) */
    int proxy_port;               /* 0 = direct connection, no network cut */
    bool backend_on;              /* false with --no-backend */
    bool force_ascii;             /* --ascii */
    const char *protocol;         /* "3.1.1" / "5" */
    int qos;

    /* the device */
    uint8_t fb[FW_FB_BYTES];
    bool have_frame;
    struct sim_device_snapshot snap;
    bool have_snap;
    uint64_t now_ms;              /* sim_clock_ms() at the snapshot, for "next connect in" */
    char last_tag[DEMO_TAG_HEX_MAX + 1]; /* the last tag presented, hex */
    bool net_cut;                 /* the link is cut by the proxy */

    /* the backend */
    struct hx_ledger_report report;
    struct hx_backend_row rows[DEMO_BACKEND_ROWS];
    int nrows;
    bool backend_connected;

    /* log ring */
    struct {
        enum demo_log_kind kind;
        char text[DEMO_LOG_WIDTH];
    } log[DEMO_LOG_LINES];
    unsigned log_head;            /* next slot to write */
    unsigned log_count;

    /* operator's line */
    bool prompt_active;           /* typing a tag UID */
    char prompt[DEMO_TAG_HEX_MAX + 1];
    char notice[200];             /* last notice (bad input, what a key did) */
    bool notice_error;
    bool stopping;                /* powering off: shown in the help line */
};

/** Append a log line (printf-style); a time stamp is added in front. */
void demo_log(struct demo_view *v, enum demo_log_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Forget the newest log line if it is of kind and contains words (a duplicate about to
 *  be replaced by a clearer line). */
void demo_log_drop_last_if(struct demo_view *v, enum demo_log_kind kind, const char *words);

/** Append one MQTT message to the log: direction, topic, QoS, DUP, retain, payload (escaped). */
void demo_log_traffic(struct demo_view *v, const struct sim_traffic *t);

/** Set the notice line (printf-style). */
void demo_notice(struct demo_view *v, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Lay out and draw every panel for the current terminal size, then refresh once. */
void demo_ui_draw(const struct demo_view *v);

#endif /* DEMO_UI_H */
