/*
 * sim/device.h - one simulated scanner: firmware_core + the Linux ports, on a loop.
 *
 * A struct sim_device bundles one struct fw_device with its transport (Paho), storage
 * (none / memory / a directory), display (none / headless), the clock and the log, and is
 * attached to a struct sim_loop whose thread owns it: every firmware call happens there.
 * Create it from a struct sim_device_opts, start it (power on: load flash, connect), stop
 * it (clean power-off: retained "offline", DISCONNECT), cut its power (no DISCONNECT from
 * the firmware), destroy it.
 *
 * Watching: a struct sim_device_observer (shared by many devices, borrowed) gets frames,
 * log lines, MQTT traffic in both directions and connection state changes, always on the
 * owning thread: a UI copies what it needs and returns quickly. Other threads read figures
 * with sim_device_snapshot() and inject tags and buttons with sim_device_post_tag() /
 * sim_device_post_button(), which go through the loop.
 *
 * Threading: functions marked "any thread" may be called from any thread except a Paho
 * callback; "owner" ones only on the loop's owning thread (e.g. inside an observer or a
 * closure run by sim_loop_post / sim_device_with).
 *
 * Ownership: options' strings are copied at create (the observer struct is borrowed and
 * must outlive the device). Pointers given to observers are valid for the call only.
 */
#ifndef SIM_DEVICE_H
#define SIM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_device.h"
#include "sim/display.h"
#include "sim/loop.h"
#include "sim/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sim_device;

enum sim_storage_kind {
    SIM_STORAGE_NONE = 0, /* nothing survives a restart */
    SIM_STORAGE_MEMORY,   /* survives sim_device_stop/start, not the process */
    SIM_STORAGE_FILE,     /* storage_dir/<device id>/<key>: survives the process */
};

enum sim_traffic_dir { SIM_TRAFFIC_IN = 0, SIM_TRAFFIC_OUT };

/* One MQTT message that passed, as the demo's MQTT log panel shows it. */
struct sim_traffic {
    enum sim_traffic_dir dir;
    const char *topic;
    const void *payload; /* len bytes, not NUL-terminated in general */
    size_t len;
    int qos;
    bool dup;    /* inbound only */
    bool retain;
    int result;  /* outbound: what net_publish returned (0 or a negative fw_err) */
    uint32_t token;
};

enum sim_conn_state {
    SIM_CONN_CONNECTING = 0, /* net_connect called */
    SIM_CONN_CONNECTED,      /* connected and every subscription granted: the firmware has
                                announced "online"; session_present valid */
    SIM_CONN_FAILED,         /* code and words valid */
    SIM_CONN_LOST,           /* words valid */
    SIM_CONN_DISCONNECTED,   /* clean disconnect by the firmware */
    SIM_CONN_POWER_CUT,      /* sim_device_power_cut */
    SIM_CONN_SUBSCRIBING,    /* CONNACK accepted, SUBACKs awaited; session_present valid */
};

/* Stable snake_case name of a state ("connect_failed"... see device.c). */
const char *sim_conn_state_name(enum sim_conn_state s);

struct sim_state_change {
    enum sim_conn_state state;
    bool session_present;
    int code;          /* FAILED: CONNACK / reason code, or a negative fw_err */
    const char *words; /* FAILED / LOST: for people; "" otherwise */
};

/* Observer hooks, each may be NULL; all run on the owning thread. */
struct sim_device_observer {
    void *ctx; /* shared by every device using this observer */
    void (*on_frame)(void *ctx, struct sim_device *dev, const uint8_t *fb);
    void (*on_log)(void *ctx, struct sim_device *dev, enum fw_log_level level,
                   const char *line);
    void (*on_traffic)(void *ctx, struct sim_device *dev, const struct sim_traffic *t);
    void (*on_state)(void *ctx, struct sim_device *dev, const struct sim_state_change *s);
};

#define SIM_DEVICE_OPTS_VERSION 1

struct sim_device_opts {
    int version;                      /* SIM_DEVICE_OPTS_VERSION */
    struct fw_device_config fw;       /* device id (= client id), layout, session, qos... */
    struct sim_transport_opts transport;
    enum sim_storage_kind storage;
    const char *storage_dir;          /* FILE: parent folder; the device uses <dir>/<id> */
    bool storage_fsync;               /* FILE: fsync each write (see sim/storage.h) */
    unsigned display_frames;          /* headless frames kept; 0 = no headless display */
    enum fw_log_level log_level;      /* lines below this level are dropped */
    bool log_stderr;                  /* with no on_log observer: "[id] LEVEL line" to stderr */
    const struct sim_device_observer *observer; /* borrowed; may be NULL */
    void *user;                       /* yours: sim_device_user() */
    const char *trace_dir;            /* non-NULL: record the device's trace as
                                         trace_dir/<device id>.fwtrace (docs/trace.md) */
};

/** Defaults: fw_device_config_defaults() with device_id, sim_transport_opts_defaults()
 *  with uri, memory storage, 1 headless frame, FW_LOG_INFO, no stderr. Both strings are
 *  borrowed until sim_device_create copies them. */
void sim_device_opts_defaults(struct sim_device_opts *opts, const char *device_id,
                              const char *uri);

/**
 * Create a device attached to loop (any thread). Initialises the firmware (checks the
 * config) but does not power it on. 0, SIM_ERR_INVAL (bad id or config; details logged),
 * SIM_ERR_NOMEM, SIM_ERR_IO (storage folder), SIM_ERR_MQTT.
 */
int sim_device_create(struct sim_loop *loop, const struct sim_device_opts *opts,
                      struct sim_device **out);

/** Power on (any thread; waits until done on the owner): after a stop or power cut the
 *  firmware is initialised anew (RAM lost, flash kept), then fw_device_start(). 0 or
 *  SIM_ERR_STATE (already on). */
int sim_device_start(struct sim_device *dev);

/** Clean power-off (any thread; waits): fw_device_stop() - retained "offline", then
 *  DISCONNECT after in-flight messages (no Will). The device stops ticking. */
int sim_device_stop(struct sim_device *dev);

/** Power cut (any thread; waits): the firmware is not told; the transport is destroyed
 *  without a DISCONNECT call (see sim_transport_power_cut for what Paho does on the wire).
 *  The device stops ticking until sim_device_start(). */
int sim_device_power_cut(struct sim_device *dev);

/** Detach from the loop, destroy the transport (Paho DISCONNECTs if still connected), free
 *  (any thread; NULL is fine). The loop must not be freed before. */
void sim_device_destroy(struct sim_device *dev);

/** Present a tag (RFID UID, copied) to the device, asynchronously (any thread). 0,
 *  SIM_ERR_INVAL (len 0 or > FW_TAG_UID_MAX), SIM_ERR_NOMEM. */
int sim_device_post_tag(struct sim_device *dev, const uint8_t *uid, size_t len);

/** Press a button, asynchronously (any thread). 0 or SIM_ERR_NOMEM. */
int sim_device_post_button(struct sim_device *dev, enum fw_button button);

/** Present a tag / press a button now (owner): for operators that already run on the
 *  owning thread. Use these rather than fw_device_on_tag/_button on sim_device_fw(), so a
 *  traced device records the event. sim_device_scan returns what fw_device_on_tag does. */
int sim_device_scan(struct sim_device *dev, const uint8_t *uid, size_t len);
void sim_device_press(struct sim_device *dev, enum fw_button button);

/** Run fn(dev, fw, arg) on the owning thread and wait (any thread): direct access to the
 *  firmware for harnesses (calls into it are not traced: use the functions above for
 *  events). 0 or SIM_ERR_NOMEM. */
int sim_device_with(struct sim_device *dev,
                    void (*fn)(struct sim_device *dev, struct fw_device *fw, void *arg),
                    void *arg);

/* A consistent copy of a device's figures. */
struct sim_device_snapshot {
    struct fw_stats stats;
    struct fw_status status;             /* status.head_item_name points into this struct */
    char head_item_name[FW_ITEM_NAME_MAX];
    bool powered;                        /* started and not stopped / cut */
    bool connected;                      /* transport's view */
    bool disconnecting;                  /* a clean disconnect is still under way */
    uint64_t frames;                     /* frames flushed */
    uint64_t traffic_in, traffic_out;    /* messages received / handed to publish */
    enum sim_conn_state conn_state;      /* last state change */
    int last_failure_code;               /* last connect failure code, 0 if none */
    char last_words[SIM_WORDS_MAX];      /* last failure / loss words, "" if none */
    uint32_t inbound_held;               /* items received while the firmware queue was
                                            full, waiting for room (back-pressure) */
    uint64_t inbound_held_total;         /* items that ever had to wait */
};

/** Take a snapshot on the owning thread and wait for it (any thread). 0 or SIM_ERR_NOMEM. */
int sim_device_snapshot(struct sim_device *dev, struct sim_device_snapshot *out);

/* ---- accessors ---- */
const char *sim_device_id(const struct sim_device *dev);             /* any thread */
void *sim_device_user(const struct sim_device *dev);                 /* any thread */
struct sim_loop *sim_device_loop(const struct sim_device *dev);      /* any thread */
struct sim_display *sim_device_display(const struct sim_device *dev);/* any; NULL if none */
struct fw_device *sim_device_fw(struct sim_device *dev);             /* owner */
struct sim_transport *sim_device_transport(struct sim_device *dev);  /* owner */

/** The fw_ports this device hands its firmware (ctx = dev): for tests of the ports. */
const struct fw_ports *sim_device_ports(const struct sim_device *dev);

#ifdef __cplusplus
}
#endif

#endif /* SIM_DEVICE_H */
