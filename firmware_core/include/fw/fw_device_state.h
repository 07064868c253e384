/*
 * fw_device_state.h - the layout of struct fw_device.
 *
 * Included by fw_device.h only so that callers can allocate a device statically or in a
 * pool (the fleet keeps thousands in one array). Every field is private to firmware_core:
 * read the device through fw_device_status(), fw_device_stats() and the getters, never
 * through these fields, which may change between versions.
 *
 * Everything is sized at compile time by fw_config.h; sizeof(struct fw_device) is about
 * 6 KB with the defaults (ci/cross-arm.sh prints the figure for the RP2040).
 */
#ifndef FW_DEVICE_STATE_H
#define FW_DEVICE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_config.h"
#include "fw/fw_ports.h"

/* Topic filters the device subscribes to: items, inventory replies, its command topic and
   the all-devices command topic. */
#define FW_SUBSCRIPTIONS 4

/* An RFID UID as read: 4, 7 or 10 bytes. */
struct fw_tag_uid {
    uint8_t bytes[FW_TAG_UID_MAX];
    uint8_t len;
};

/* One item waiting in the pending queue. */
struct fw_pending_item {
    int32_t item_id;
    int32_t tag_quantity;
    char name[FW_ITEM_NAME_MAX]; /* copied out of the JSON: never points into a payload */
};

/* One confirmed registration waiting for the broker's acknowledgement. */
struct fw_outbox_entry {
    int32_t item_id;
    int32_t tag_quantity;
    uint32_t seq;      /* idempotency key with the device id; fixed at confirm time */
    uint32_t token;    /* the network port's token while in flight */
    struct fw_tag_uid tag;
    uint8_t flags;     /* FW_OUTBOX_* bits (fw_outbox.h) */
};

/* The bounded outbox, oldest first; mirrored to storage under the key "outbox". */
struct fw_outbox {
    struct fw_outbox_entry entries[FW_OUTBOX_LEN];
    uint8_t count;
};

/* A command id remembered with its outcome (idempotency across redeliveries and reboots). */
struct fw_cmd_memo {
    char id[FW_CMD_ID_MAX];
    uint8_t reason;   /* enum fw_cmd_reason of fw_command.h; 0 = ok */
    uint8_t detail;   /* the enum fw_reject of a bad payload */
};

/* Settings the `config` and `lock` commands change, persisted under the key "settings". */
struct fw_settings {
    uint16_t keepalive_s;
    uint8_t inventory_timeout_s;
    uint8_t contrast;
    bool locked;
    uint32_t boot_count;
};

struct fw_device {
    /* --- what the device is: set by fw_device_init, kept by a reboot --- */
    struct fw_ports ports;                 /* copied at init */
    char device_id[FW_DEVICE_ID_MAX];
    char topic_item[FW_TOPIC_MAX];         /* item_registration (subscribed) */
    char topic_registered[FW_TOPIC_MAX];   /* item_registered (published) */
    char topic_query[FW_TOPIC_MAX];        /* inventory query (published) */
    char topic_reply[FW_TOPIC_MAX];        /* inventory reply (subscribed) */
    char topic_status[FW_TOPIC_MAX];       /* online / offline, retained */
    char topic_cmd[FW_TOPIC_MAX];          /* commands to this device (subscribed) */
    char topic_cmd_all[FW_TOPIC_MAX];      /* commands to every device (subscribed) */
    char topic_cmd_reply[FW_TOPIC_MAX];    /* command replies (published) */
    bool clean_session;
    uint8_t qos;
    bool resume_in_flight;                 /* the config's: see fw_device_config */
    uint16_t keepalive_default_s;          /* the config's, until a `config` command */
    uint32_t rng_seed;
    /* The counters: a host keeps them across a reboot so that a run's figures add up. */
    struct fw_stats stats;

    /* --- RAM state: a reboot forgets everything from here on (fw_device.c) --- */
    uint8_t conn;                          /* first field of the RAM state */
    struct fw_settings settings;           /* loaded from flash at start */
    uint64_t boot_ms;                      /* when the device last started */

    /* connection: FW_CONN_* of fw_device_internal.h */
    bool session_present;
    uint32_t backoff_ms;                   /* base of the next reconnect delay */
    uint32_t rng;                          /* xorshift32 state for the jitter */
    uint64_t next_connect_ms;              /* when conn == waiting */

    /* subscriptions: all granted (SUBACK) before the device announces itself online */
    uint32_t sub_token[FW_SUBSCRIPTIONS];  /* the network token of each awaited SUBACK */
    uint8_t subs_granted;                  /* bit i: subscription i granted */
    uint8_t subs_awaited;                  /* bit i: SUBSCRIBE sent, no SUBACK yet */
    uint32_t sub_backoff_ms;               /* base of the next re-subscribe delay */
    uint64_t sub_retry_ms;                 /* when refused ones are asked again; 0 = never */

    /* user interface */
    uint8_t mode;                          /* registration or inventory */
    uint8_t notice;                        /* transient screen shown over the base screen */
    bool has_scanned;                      /* a tag waits for confirm (CONFIRM screen) */
    bool dirty;                            /* framebuffer older than the state */
    uint64_t notice_until_ms;
    struct fw_tag_uid scanned;
    int32_t refused_reason;                /* reason code shown by the "refused" notice */

    /* inventory look-up */
    uint8_t inv_state;                     /* none, waiting, answered, timed out */
    bool inv_found;
    struct fw_tag_uid inv_tag;
    uint64_t inv_deadline_ms;
    uint32_t inv_token;                    /* the network token of the awaited query */
    int32_t inv_item_id;
    char inv_item_name[FW_ITEM_NAME_MAX];

    /* pending items: a ring, head shown on screen */
    struct fw_pending_item pending[FW_PENDING_ITEMS];
    uint16_t pending_head;
    uint16_t pending_count;

    /* item ids seen recently (duplicate suppression), a ring */
    int32_t seen[FW_SEEN_ITEMS];
    uint16_t seen_next;
    uint16_t seen_count;

    /* tags registered recently (wrong-tag check), a ring */
    struct fw_tag_uid used_tags[FW_USED_TAGS];
    uint16_t used_next;
    uint16_t used_count;

    struct fw_outbox outbox;
    uint32_t seq;                          /* last sequence number used (persisted first) */

    /* remote commands (fw_command.c) */
    struct fw_cmd_memo cmd_ids[FW_CMD_IDS];/* ring of recent ids, mirrored to "cmdids" */
    uint8_t cmd_next;
    uint8_t cmd_count;
    char message[FW_MESSAGE_MAX];          /* shown while non-empty (MESSAGE screen) */
    uint64_t identify_until_ms;            /* 0 = not identifying */
    uint64_t identify_flip_ms;             /* next inversion */
    bool identify_inverted;
    uint8_t reboot;                        /* FW_REBOOT_* of fw_device_internal.h */
    uint32_t reboot_token;                 /* the reboot reply's network token */
    uint64_t reboot_at_ms;                 /* when the next reboot step is due */
    char last_error[48];                   /* the last warning or error logged */
    uint16_t flash_len[5];                 /* bytes last stored under each key */
    /* A reply or a flash record being encoded or read: used by one call at a time, never
       held across a port call's return (fw_device.c, fw_command.c). */
    uint8_t scratch[FW_SCRATCH_MAX];

    uint8_t fb[FW_FB_BYTES];               /* the SSD1306 frame */
};

#endif /* FW_DEVICE_STATE_H */
