/*
 * demo_ui.h - what `scansim demo` shows: the model behind the screen and its drawing.
 *
 * struct demo_view holds everything on screen: per scanner its last OLED frame, its figures
 * (a sim_device_snapshot) and its link; the backend's ledger figures and the items it
 * published with what became of them; a ring of log lines (MQTT traffic, connection
 * changes, firmware log, the operator's actions); the tag prompt, a notice line and the
 * help overlay. cmd_demo.c fills it on the main thread (the devices' observer runs there
 * too, since the main thread owns the devices' loop) and calls demo_ui_draw(), which lays
 * out the panels for the terminal's size (demo_layout.h) and refreshes once.
 *
 * Ownership: the view is the caller's (heap: the log ring is big); strings in the "fixed"
 * parts are borrowed for the view's life.
 */
#ifndef DEMO_UI_H
#define DEMO_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_device.h"
#include "hx/backend.h"
#include "sim/device.h"

#define DEMO_DEVICES_MAX 9     /* --devices; the digit keys choose one */
#define DEMO_LOG_LINES 256     /* log lines kept (the panel shows the newest that fit) */
#define DEMO_LOG_WIDTH 300     /* bytes kept per log line */
#define DEMO_BACKEND_ROWS 24   /* newest registrations read for the ledger panel */
#define DEMO_ITEMS_SHOWN 16    /* newest published items the ledger panel can list */
#define DEMO_TAG_HEX_MAX 20    /* 10-byte UID */

enum demo_log_kind {
    DEMO_LOG_IN = 0, /* MQTT received by a device */
    DEMO_LOG_OUT,    /* MQTT sent by a device */
    DEMO_LOG_STATE,  /* connection changes */
    DEMO_LOG_FW,     /* the firmware's log port */
    DEMO_LOG_UI,     /* what the operator did (keys), backend and proxy actions */
    DEMO_LOG_ERROR,
};

/* Why a scanner's last connection ended (or never began), as its observer saw it. */
enum demo_offline_why {
    DEMO_WHY_NONE = 0,  /* not offline yet, or connected */
    DEMO_WHY_GONE,      /* connection lost, or no answer: the broker (or the way to it) is gone */
    DEMO_WHY_REFUSED,   /* the broker answered and refused (CONNACK reason code) */
};

/* One scanner on screen. */
struct demo_view_dev {
    const char *id;               /* fixed: device id */
    const char *device_uri;       /* fixed: what it connects to (its proxy, or the broker) */
    int proxy_port;               /* fixed: 0 = direct connection, no network cut */
    uint8_t fb[FW_FB_BYTES];
    bool have_frame;
    struct sim_device_snapshot snap;
    bool have_snap;
    char last_tag[DEMO_TAG_HEX_MAX + 1]; /* the last tag presented, hex */
    bool net_cut;                 /* its link is cut by the demo (n) */
    enum demo_offline_why why;    /* what the last connection change said */
    int refused_code;             /* DEMO_WHY_REFUSED: the broker's CONNACK reason code */
};

/* One item the backend published, as the ledger panel shows it. */
struct demo_view_item {
    int32_t id;
    char name[33];
    int registrations;            /* distinct registrations in the ledger (live) */
    bool finished;                /* the backend is done with it (registered or refused) */
};

struct demo_view {
    /* fixed at start */
    const char *broker_uri;       /* what the backend and mosquitto_sub use */
    const char *item_topic;       /* where items go (for the --no-backend hint) */
    const char *registered_topic; /* where registrations go (for the mosquitto_sub hint) */
    bool backend_on;              /* false with --no-backend */
    bool force_ascii;             /* --ascii */
    bool seed_layout;             /* every scanner sees every item */
    const char *protocol;         /* "3.1.1" / "5" */
    int qos;

    /* the scanners */
    struct demo_view_dev devs[DEMO_DEVICES_MAX];
    int ndev;
    int chosen;                   /* the scanner the keys drive (index) */
    uint64_t now_ms;              /* sim_clock_ms() at the snapshots, for "next connect in" */

    /* the backend */
    struct hx_ledger_report report;
    struct hx_backend_row rows[DEMO_BACKEND_ROWS];
    int nrows;
    struct demo_view_item items[DEMO_ITEMS_SHOWN]; /* newest first */
    int nitems;
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
    bool show_help;               /* the ? overlay */
    bool stopping;                /* powering off: shown in the key line */
};

/** Append a log line (printf-style); a time stamp is added in front. */
void demo_log(struct demo_view *v, enum demo_log_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Forget the newest log line if it is of kind and contains words (a duplicate about to
 *  be replaced by a clearer line). */
void demo_log_drop_last_if(struct demo_view *v, enum demo_log_kind kind, const char *words);

/** Append one MQTT message to the log: who ("" or "scanner-2 "), direction, topic, QoS, DUP,
 *  retain, payload (escaped). */
void demo_log_traffic(struct demo_view *v, const char *who, const struct sim_traffic *t);

/** Set the notice line (printf-style). */
void demo_notice(struct demo_view *v, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Why a scanner is offline, in a few words ("cut by the demo (n)", "broker gone", "refused
 *  by the broker (code 5)", "connecting", ...) into out; "" when it is online. */
const char *demo_offline_reason(const struct demo_view_dev *dv, char *out, size_t cap);

/** Lay out and draw every panel for the current terminal size, then refresh once. */
void demo_ui_draw(const struct demo_view *v);

#endif /* DEMO_UI_H */
