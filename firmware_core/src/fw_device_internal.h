/*
 * fw_device_internal.h - states and services of the device shared by fw_device.c,
 * fw_command.c and fw_screens.c (internal).
 */
#ifndef FW_DEVICE_INTERNAL_H
#define FW_DEVICE_INTERNAL_H

#include "fw/fw_codec.h"
#include "fw/fw_device.h"

enum fw_conn {
    FW_CONN_IDLE = 0,   /* initialised, not started */
    FW_CONN_CONNECTING, /* net_connect called, outcome pending */
    FW_CONN_ONLINE,     /* connected and every subscription granted */
    FW_CONN_WAITING,    /* back-off: next attempt at next_connect_ms */
    FW_CONN_STOPPED,
    FW_CONN_SUBSCRIBING,/* connected, waiting for SUBACKs (or to ask a refused one again) */
};

enum fw_mode { FW_MODE_REGISTER = 0, FW_MODE_INVENTORY };

/* Transient screens shown over the base screen for FW_NOTICE_MS. */
enum fw_notice {
    FW_NOTICE_NONE = 0,
    FW_NOTICE_REGISTERED_SENT,
    FW_NOTICE_REGISTERED_QUEUED, /* offline: kept in the outbox */
    FW_NOTICE_CANCELLED,
    FW_NOTICE_QUEUE_FULL,
    FW_NOTICE_OUTBOX_FULL,
    FW_NOTICE_BAD_TAG,           /* UID not 4, 7 or 10 bytes */
    FW_NOTICE_TAG_USED,          /* registered recently */
    FW_NOTICE_OFFLINE,           /* inventory look-up needs a connection */
    FW_NOTICE_FLASH_ERROR,       /* sequence number could not be persisted */
    FW_NOTICE_REFUSED,           /* the broker refused a publish (refused_reason) */
    FW_NOTICE_SUB_REFUSED,       /* the broker refused a subscription (refused_reason) */
};

enum fw_inv { FW_INV_NONE = 0, FW_INV_WAITING, FW_INV_ANSWERED, FW_INV_TIMED_OUT };

/* A reboot by command: the reply goes out first, then the device is down for a moment. */
enum fw_reboot {
    FW_REBOOT_NONE = 0,
    FW_REBOOT_REPLYING, /* waiting for the reply's ack (or FW_REBOOT_REPLY_WAIT_MS) */
    FW_REBOOT_DOWN,     /* powered off; starts again at reboot_at_ms */
};

/* The storage keys, indexes of struct fw_device.flash_len. */
enum fw_store_key {
    FW_STORE_OUTBOX = 0,
    FW_STORE_SEQ,
    FW_STORE_SETTINGS,
    FW_STORE_CMDIDS,
    FW_STORE_PENDING,
    FW_STORE_KEYS
};

/* --- fw_device.c, for the other files of the device --- */
/* One log line "<id>: a b c" (NULL parts skipped); warnings also become last_error. */
void fw_device__log(struct fw_device *d, enum fw_log_level level, const char *a,
                    const char *b, const char *c);
void fw_device__dirty(struct fw_device *d);
/* Render and flush once if the frame changed and a display is attached. */
void fw_device__present(struct fw_device *d);

/* --- fw_device_flash.c: the records kept in flash --- */
/* Writes an encoded record (n: its length or a negative fw_err); FW_OK or the failure,
   counted and logged. */
int fw_device__store(struct fw_device *d, enum fw_store_key key, const void *buf, int n);
int fw_device__save_settings(struct fw_device *d);
void fw_device__save_outbox(struct fw_device *d);
void fw_device__save_pending(struct fw_device *d);
/* The next idempotency sequence number, persisted before it is used; FW_ERR_IO when the
   flash refused it (nothing consumed). */
int fw_device__next_seq(struct fw_device *d, uint32_t *out);
/* Everything that survives a power cut, read back at start. */
void fw_device__load(struct fw_device *d);
/* A transient notice screen for FW_NOTICE_MS. */
void fw_device__notice(struct fw_device *d, enum fw_notice notice);
/* Upper-case hex of a UID ("" if it cannot be written). */
void fw_device__tag_hex(const struct fw_tag_uid *tag, char out[FW_TAG_HEX_MAX]);
/* Hands every unsent outbox entry to the network, oldest first. */
void fw_device__flush_outbox(struct fw_device *d);

/* --- fw_input.c --- */
/* Drops every pending item (saved); returns how many. */
unsigned fw_device__clear_pending(struct fw_device *d);
/* Power off as for a reboot (offline, disconnect) and forget the RAM state. */
void fw_device__power_off(struct fw_device *d);
/* Topic filter of subscription i (0..FW_SUBSCRIPTIONS-1). */
const char *fw_device__sub_topic(const struct fw_device *d, int i);

/* --- fw_command.c --- */
/* A message on the device's command topic or the all-devices one. */
void fw_command__on_message(struct fw_device *d, const void *payload, size_t len);
/* Identify blinking and the reboot steps. */
void fw_command__tick(struct fw_device *d, uint64_t now_ms);
/* Is token the reboot reply's? Then the reboot may go ahead. */
void fw_command__on_published(struct fw_device *d, uint32_t token);

/* The screen the state calls for (notice first, then mode and queue). */
enum fw_screen fw_device__screen(const struct fw_device *d);

/* Draws the current screen into fb (FW_FB_BYTES). */
void fw_screens__render(const struct fw_device *d, uint8_t *fb);

#endif /* FW_DEVICE_INTERNAL_H */
