/*
 * fw_device_internal.h - states of the device shared by fw_device.c and fw_screens.c
 * (internal).
 */
#ifndef FW_DEVICE_INTERNAL_H
#define FW_DEVICE_INTERNAL_H

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

/* The screen the state calls for (notice first, then mode and queue). */
enum fw_screen fw_device__screen(const struct fw_device *d);

/* Draws the current screen into fb (FW_FB_BYTES). */
void fw_screens__render(const struct fw_device *d, uint8_t *fb);

#endif /* FW_DEVICE_INTERNAL_H */
