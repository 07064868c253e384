/*
 * fw_ports.h - everything outside the scanner, as the firmware sees it.
 *
 * The platform (sim/ on Linux, a board support package on an RP2040, a test double in
 * firmware_core/tests) fills one struct fw_ports with function pointers and a context
 * pointer, and hands it to fw_device_init(). The firmware calls out through these; the
 * platform calls back in through the fw_device_on_*() functions of fw_device.h, always
 * from the one thread that owns the device.
 *
 * Ownership: every pointer the firmware passes to a port is valid only for the duration
 * of that call; a port that needs the data later copies it. Pointers the platform passes
 * into fw_device_on_*() are likewise only borrowed for the call.
 */
#ifndef FW_PORTS_H
#define FW_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_config.h"

#ifdef __cplusplus
extern "C" {
#endif

enum fw_log_level { FW_LOG_DEBUG = 0, FW_LOG_INFO, FW_LOG_WARN, FW_LOG_ERROR };

/* What the firmware asks of a connection. Strings are borrowed for the call. */
struct fw_connect_params {
    const char *client_id;
    bool clean_session;      /* MQTT 5: clean start + session expiry 0 */
    uint16_t keepalive_s;
    const char *will_topic;  /* Last Will: retained "offline" on the status topic */
    const void *will_payload;
    size_t will_len;
    int will_qos;
    bool will_retain;
};

/* One outgoing message. Strings and payload are borrowed for the call. */
struct fw_publish {
    const char *topic;
    const void *payload;
    size_t len;
    int qos;
    bool retain;
};

struct fw_ports {
    void *ctx; /* passed back as the first argument of every port function */

    /* --- network (an MQTT client) ---
     * connect: start connecting (asynchronously). The platform reports the outcome with
     *   fw_device_on_connected() or fw_device_on_connect_failed(). The firmware owns the
     *   reconnect policy: the platform does not reconnect by itself.
     * publish: hand a message to the client. For QoS > 0 set *token to an id that the
     *   platform later passes to fw_device_on_published() when the broker acknowledged it.
     *   Returns 0 or a negative fw_err (FW_ERR_OFFLINE when there is no connection).
     * subscribe: subscribe to a topic filter at a QoS; 0 or a negative fw_err.
     * disconnect: clean disconnect (sends DISCONNECT, so no Will is published). */
    int (*net_connect)(void *ctx, const struct fw_connect_params *params);
    int (*net_publish)(void *ctx, const struct fw_publish *msg, uint32_t *token);
    int (*net_subscribe)(void *ctx, const char *topic_filter, int qos, uint32_t *token);
    void (*net_disconnect)(void *ctx);

    /* --- display ---
     * Show a full frame: FW_FB_BYTES bytes in SSD1306 page order, i.e. byte
     * fb[(y / 8) * FW_FB_WIDTH + x], bit (y % 8), 1 = lit. Called only when the frame changed. */
    void (*display_flush)(void *ctx, const uint8_t *fb);

    /* --- clock --- monotonic milliseconds (any origin). */
    uint64_t (*clock_ms)(void *ctx);

    /* --- storage: a small key-value "flash" ---
     * read: copy the value of key into buf (at most cap bytes), set *len; 0, or
     *   FW_ERR_NOT_FOUND, or another negative fw_err. write: replace the value; 0 or
     *   negative. Keys are short ASCII names ("outbox", "seq"). */
    int (*storage_read)(void *ctx, const char *key, void *buf, size_t cap, size_t *len);
    int (*storage_write)(void *ctx, const char *key, const void *buf, size_t len);

    /* --- log --- one line, no trailing newline. May be NULL. */
    void (*log)(void *ctx, enum fw_log_level level, const char *line);

    /* --- display contrast --- (an optional port, after the ones every platform has)
     * Set the panel's contrast (SSD1306 command 0x81, 0..255): at start and when the
     * `config` command changes it. May be NULL. */
    void (*display_contrast)(void *ctx, uint8_t contrast);

    /* --- several filters in one SUBSCRIBE --- May be NULL (then net_subscribe, once per
     * filter, as lwIP's client offers). Subscribe to n filters at one QoS in one packet:
     * one *token for all; its SUBACK comes back as n fw_device_on_subscribed() calls with
     * that token, one per filter in the order given. 0 or a negative fw_err. */
    int (*net_subscribe_many)(void *ctx, const char *const *topic_filters, int n, int qos,
                              uint32_t *token);
};

#ifdef __cplusplus
}
#endif

#endif /* FW_PORTS_H */
