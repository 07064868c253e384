/*
 * fw_device.h - the scanner device: public API of firmware_core.
 *
 * A device is one struct fw_device, allocated by the caller (statically on a board, in a
 * pool in the fleet) and initialised with fw_device_init(). It allocates nothing after
 * that: all its state lives inside the struct, sized by fw_config.h. The only dynamic
 * memory is cJSON's, taken and freed within one fw_device_on_message() call (a board can
 * route it to a static pool with cJSON_InitHooks).
 *
 * Threading: the firmware is single-threaded and never blocks. Exactly one thread owns a
 * device and makes every call below; platform callbacks from other threads must be queued
 * and replayed on that thread.
 *
 * Ownership: every pointer passed in is borrowed for the duration of the call. Pointers
 * returned (stats, framebuffer, names) point into the device and stay valid until the
 * next call on that device.
 *
 * Protocol (topics, payloads, idempotency key): docs/protocol.md.
 */
#ifndef FW_DEVICE_H
#define FW_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_config.h"
#include "fw/fw_ports.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

enum fw_err {
    FW_OK = 0,
    FW_ERR_INVAL = -1,     /* bad argument */
    FW_ERR_FULL = -2,      /* queue or outbox full */
    FW_ERR_NOT_FOUND = -3, /* storage key absent */
    FW_ERR_IO = -4,        /* storage or network port failed */
    FW_ERR_STATE = -5,     /* not possible in the current state */
    FW_ERR_OFFLINE = -6,   /* no connection */
    FW_ERR_TOO_BIG = -7,   /* does not fit a fixed-size buffer */
};

/* A short English description of an fw_err ("queue or outbox full"). Never NULL. */
const char *fw_strerror(int err);

/* ------------------------------------------------- rejected input reasons */

enum fw_reject {
    FW_REJECT_OVERSIZE = 0,    /* payload larger than FW_INBOUND_MAX */
    FW_REJECT_NOT_UTF8,        /* payload is not valid UTF-8 */
    FW_REJECT_INVALID_JSON,    /* not parseable JSON */
    FW_REJECT_TRAILING_GARBAGE,/* JSON value followed by more than whitespace */
    FW_REJECT_NOT_OBJECT,      /* top-level value is not an object */
    FW_REJECT_MISSING_FIELD,   /* a required field is absent */
    FW_REJECT_WRONG_TYPE,      /* a field has the wrong JSON type (or a fractional number) */
    FW_REJECT_OUT_OF_RANGE,    /* a number is zero, negative or too large */
    FW_REJECT_NAME_TOO_LONG,   /* item_name longer than FW_ITEM_NAME_MAX - 1 bytes (or empty) */
    FW_REJECT_TOO_DEEP,        /* arrays/objects nested deeper than FW_JSON_DEPTH_MAX */
    FW_REJECT_UNKNOWN_TOPIC,   /* message on a topic the device did not subscribe to */
    FW_REJECT_COUNT
};

/* Stable snake_case name of a reason ("missing_field"), for logs and reports. */
const char *fw_reject_name(enum fw_reject reason);

/* Words for an MQTT 5 reason code a broker refuses a publish with ("not authorized" for
   0x87). Never NULL: "unknown reason" for codes it does not know. */
const char *fw_reason_code_name(int reason_code);

/* ------------------------------------------------------------- inputs */

enum fw_button {
    FW_BUTTON_CONFIRM = 0, /* register the scanned tag / acknowledge a screen */
    FW_BUTTON_CANCEL,      /* skip the head item / leave a mode */
    FW_BUTTON_MODE,        /* toggle inventory look-up mode */
};

enum fw_screen {
    FW_SCREEN_IDLE = 0,        /* status: online/offline, pending, outbox, device id */
    FW_SCREEN_ITEM,            /* head item shown, waiting for a tag */
    FW_SCREEN_CONFIRM,         /* tag scanned, waiting for confirm or cancel */
    FW_SCREEN_REGISTERED,      /* transient: registration accepted (sent or queued offline) */
    FW_SCREEN_INVENTORY_SCAN,  /* inventory mode: waiting for a tag */
    FW_SCREEN_INVENTORY_WAIT,  /* query sent, waiting for the backend */
    FW_SCREEN_INVENTORY_RESULT,/* answer or time-out shown */
    FW_SCREEN_ERROR,           /* transient error screen (full queue, bad tag, ...) */
    FW_SCREEN_CANCELLED,       /* transient: the head item was skipped with cancel */
    FW_SCREEN_MESSAGE,         /* a `message` command's text, until a button dismisses it */
    FW_SCREEN_LOCKED,          /* locked by the `lock` command: tags and buttons refused */
};

/* Stable snake_case name of a screen ("inventory_wait"). */
const char *fw_screen_name(enum fw_screen screen);

/* ------------------------------------------------------------- config */

enum fw_layout {
    FW_LAYOUT_SEED = 0,   /* shared item_registration / item_registered (seed-compatible) */
    FW_LAYOUT_PER_DEVICE, /* scanners/<device-id>/... */
};

struct fw_device_config {
    const char *device_id;  /* also the MQTT client id; copied; 1..FW_DEVICE_ID_MAX-1 bytes,
                               no '+', '#', '/' */
    enum fw_layout layout;
    bool clean_session;     /* false = persistent session (the default) */
    uint16_t keepalive_s;
    int qos;                /* QoS for subscriptions and publishes: 0, 1 (default) or 2 */
    /* The platform's MQTT client keeps the QoS 2 publishes it has not completed across a
       reconnect and completes them itself (PUBLISH again with DUP, or PUBREL, with the
       same packet id) when the broker resumes the session. At QoS 2 with a persistent
       session the device then leaves an unacknowledged registration to it rather than
       publishing it again: what makes a registration arrive exactly once through a cut in
       the middle of the handshake. false (the default) for a client that forgets them,
       such as lwIP's; the device then publishes them again, as at QoS 1, and the backend's
       idempotency key catches the copy (docs/protocol.md, "QoS 2"). */
    bool resume_in_flight;
    uint32_t seed;          /* seeds the reconnect jitter; 0 = derived from device_id */
    /* Topic overrides; NULL = the layout's default. "{id}" is replaced by the device id.
       See docs/protocol.md for the defaults. */
    const char *topic_item_registration;
    const char *topic_item_registered;
    const char *topic_inventory_query;
    const char *topic_inventory_reply;
    const char *topic_status;
    const char *topic_command;       /* commands to this device */
    const char *topic_command_all;   /* commands to every device */
    const char *topic_command_reply; /* the device's replies to commands */
};

/* Fill cfg with defaults: seed layout, persistent session, FW_KEEPALIVE_S, QoS 1, no
   resume_in_flight. */
void fw_device_config_defaults(struct fw_device_config *cfg);

/* ------------------------------------------------------- figures */

struct fw_stats {
    uint32_t items_received;         /* valid item messages seen (incl. duplicates) */
    uint32_t items_queued;
    uint32_t duplicates_suppressed;  /* redelivered items dropped (DUP flag or not) */
    uint32_t queue_full;             /* items refused because the pending queue was full */
    uint32_t registrations_confirmed;/* confirm pressed with a valid tag */
    uint32_t registrations_sent;     /* handed to the network (re-sends included) */
    uint32_t registrations_acked;    /* acknowledged by the broker, removed from the outbox */
    uint32_t registrations_resent;   /* sent again after a connection loss */
    uint32_t outbox_full;            /* confirms refused because the outbox was full */
    uint32_t cancels;
    uint32_t wrong_tags;             /* bad UID length, or a tag already registered */
    uint32_t rejects_total;
    uint32_t rejects[FW_REJECT_COUNT];
    uint32_t inventory_queries;
    uint32_t inventory_answers;
    uint32_t inventory_timeouts;
    uint32_t connects;               /* successful connections */
    uint32_t sessions_present;       /* connections that resumed a session */
    uint32_t connect_failures;
    uint32_t connection_losses;
    uint32_t publish_errors;
    uint32_t storage_errors;
    /* Appended last so that existing readers keep their offsets. */
    uint32_t publishes_refused;      /* publishes the broker answered with a reason code
                                        >= 0x80 (MQTT 5 PUBACK, e.g. 0x87 not authorized) */
    uint32_t subscriptions_refused;  /* SUBACKs that refused (0x80, or an MQTT 5 reason
                                        code), or subscribes the platform lost */
    /* Remote commands (docs/protocol.md, "Commands"). */
    uint32_t commands_received;      /* command messages, valid or not, duplicates included */
    uint32_t commands_ok;            /* executed and answered ok */
    uint32_t commands_refused;       /* answered with an error (bad payload, range, busy...) */
    uint32_t commands_duplicate;     /* a remembered cmd_id: answered again, not executed */
    uint32_t items_cleared;          /* pending items dropped by clear_queue */
    uint32_t locked_refusals;        /* tags and buttons refused while locked */
    uint32_t reboots;                /* reboots by command */
    uint32_t boots;                  /* starts from flash: power-ons and reboots */
};

/* A snapshot for status panels and expectations. */
struct fw_status {
    bool online;               /* connected and every subscription granted: the device has
                                  announced "online" and can receive items */
    bool session_present;
    enum fw_screen screen;
    uint32_t pending;          /* items waiting in the queue (head included) */
    uint32_t outbox;           /* registrations not yet acknowledged */
    uint32_t outbox_in_flight; /* of those, handed to the network */
    int32_t head_item_id;      /* item shown, or 0 */
    const char *head_item_name;/* "" when none */
    uint64_t next_connect_ms;  /* when offline: when the next connect attempt is due */
    uint32_t seq;              /* last sequence number used in an idempotency key */
    bool connected;            /* MQTT connection up (online, or still awaiting SUBACKs) */
    bool locked;               /* locked by the `lock` command */
    bool rebooting;            /* a `reboot` command is under way (replying, or down) */
    uint32_t boot_count;       /* starts from this flash, persisted */
};

/* ------------------------------------------------------------- device */

/* The device's state. Its fields are private to firmware_core (fw_device_state.h); it is
   complete here only so callers can allocate it statically. */
#include "fw/fw_device_state.h"

/* Initialise d from cfg and ports (both copied as needed; ports must stay valid).
   Allocates nothing. Returns FW_OK or FW_ERR_INVAL (bad id, missing port, bad qos). */
int fw_device_init(struct fw_device *d, const struct fw_device_config *cfg,
                   const struct fw_ports *ports);

/* Power on: load outbox and sequence number from storage, draw the idle screen, start
   connecting. */
void fw_device_start(struct fw_device *d);

/* Let time pass: reconnects, inventory time-outs, transient screens. Call often (e.g.
   every 10-100 ms) with the clock port's time. */
void fw_device_tick(struct fw_device *d, uint64_t now_ms);

/* Power off cleanly: retained "offline" status, clean disconnect (no Will).
   A power cut is the platform dropping the connection without this call (the broker then
   publishes the Will) and calling fw_device_init() and fw_device_start() again on the
   same storage: everything the device keeps in flash comes back (docs/protocol.md). */
void fw_device_stop(struct fw_device *d);

/* --- events from the network --- */
/* CONNACK accepted: the device subscribes to its topics and waits for their SUBACKs
   (fw_device_on_subscribed) before it announces "online" and sends its outbox. */
void fw_device_on_connected(struct fw_device *d, bool session_present);
/* The SUBACK of the subscribe that returned token (for net_subscribe_many, one call per
   filter, in order, with the same token). granted_qos 0..2: granted (once every
   subscription is, the device publishes its retained "online", flushes the outbox and
   counts as online); >= 0x80: refused by the broker (3.1.1 0x80, an MQTT 5 reason code);
   a negative fw_err: the platform lost the request. A refusal is counted
   (subscriptions_refused), logged in words, shown on the error screen and asked again
   after a back-off while the connection lasts. Unknown tokens are ignored. */
void fw_device_on_subscribed(struct fw_device *d, uint32_t token, int granted_qos);
/* reason_code: the broker's CONNACK code (3.1.1: 1..5, MQTT 5: >= 0x80) or a negative
   fw_err for a transport failure; why: words for people (never a password). */
void fw_device_on_connect_failed(struct fw_device *d, int reason_code, const char *why);
void fw_device_on_connection_lost(struct fw_device *d, const char *why);
void fw_device_on_message(struct fw_device *d, const char *topic, const void *payload,
                          size_t len, int qos, bool dup);
void fw_device_on_published(struct fw_device *d, uint32_t token);
/* A publish did not succeed. reason_code >= 0x80: the broker refused it (MQTT 5 PUBACK
   reason code, e.g. 0x87 not authorized); retrying cannot change that, so a refused
   registration leaves the outbox (it must not block the entries behind it), an awaited
   inventory query ends its wait, and both are counted (publishes_refused), logged with
   the reason in words and shown on the error screen. reason_code < 0x80 (a negative
   fw_err: the platform lost the publish, e.g. MQTT 3.1.1 onFailure): the registration
   stays in the outbox and is sent again on the next flush (next connection or next
   confirm), with the same idempotency key. Unknown tokens are ignored. */
void fw_device_on_publish_refused(struct fw_device *d, uint32_t token, int reason_code);

/* --- events from the RFID reader and the buttons --- */
/* A tag was presented. Returns FW_OK or FW_ERR_INVAL (UID not 4, 7 or 10 bytes: shown as a
   wrong tag and counted). Buttons over a transient screen only acknowledge it; tags act on
   the screen underneath (docs/protocol.md, "The operator's side"). */
int fw_device_on_tag(struct fw_device *d, const uint8_t *uid, size_t len);
void fw_device_on_button(struct fw_device *d, enum fw_button button);

/* --- observation --- */
const struct fw_stats *fw_device_stats(const struct fw_device *d);
void fw_device_status(const struct fw_device *d, struct fw_status *out);
/* The current frame, FW_FB_BYTES in SSD1306 page order. Rendering is lazy: with a
   display_flush port the device renders and flushes at most once per event or tick, only
   when something visible changed; without one (headless fleets) it never renders by
   itself, and this call renders on demand if the state changed since the last frame. */
const uint8_t *fw_device_framebuffer(const struct fw_device *d);
const char *fw_device_id(const struct fw_device *d);
/* The device's resolved topics (layout defaults or overrides, "{id}" expanded). */
const char *fw_device_topic_item_registration(const struct fw_device *d);
const char *fw_device_topic_item_registered(const struct fw_device *d);
const char *fw_device_topic_inventory_query(const struct fw_device *d);
const char *fw_device_topic_inventory_reply(const struct fw_device *d);
const char *fw_device_topic_status(const struct fw_device *d);
const char *fw_device_topic_command(const struct fw_device *d);
const char *fw_device_topic_command_all(const struct fw_device *d);
const char *fw_device_topic_command_reply(const struct fw_device *d);

/* Format a UID as upper-case hex into out (cap >= 2 * len + 1). Returns the number of
   characters written (without NUL) or FW_ERR_TOO_BIG / FW_ERR_INVAL. */
int fw_tag_to_hex(const uint8_t *uid, size_t len, char *out, size_t cap);

/* Is a pixel of a framebuffer lit? */
static inline bool fw_fb_pixel(const uint8_t *fb, int x, int y)
{
    return (fb[(y / 8) * FW_FB_WIDTH + x] >> (y % 8)) & 1u;
}

#ifdef __cplusplus
}
#endif

#endif /* FW_DEVICE_H */
