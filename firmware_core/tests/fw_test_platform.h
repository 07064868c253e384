/*
 * fw_test_platform.h - test doubles of the platform for firmware_core's unit tests.
 *
 * One struct fwt_platform stands for everything outside the device: a fake clock the
 * test moves by hand, a recording network port (connects, publishes with their tokens,
 * subscribes, disconnects, in call order) whose results the test can set, an in-memory
 * key-value storage that can be made to fail, a display that keeps the last frame, and a
 * log recorder. The device under test calls it through the struct fw_ports it exposes.
 */
#ifndef FW_TEST_PLATFORM_H
#define FW_TEST_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_device.h"

#define FWT_MAX_PUBS 512
#define FWT_MAX_SUBS 16
#define FWT_MAX_LOGS 256
#define FWT_MAX_KEYS 8
#define FWT_VALUE_MAX 1024
/* The largest publish the device makes: a command reply. */
#define FWT_PAYLOAD_CAP (FW_REPLY_MAX > FW_PAYLOAD_MAX ? FW_REPLY_MAX : FW_PAYLOAD_MAX)

struct fwt_pub {
    char topic[FW_TOPIC_MAX];
    char payload[FWT_PAYLOAD_CAP + 1]; /* NUL added by the double for easy comparisons */
    size_t len;                        /* as published (payload keeps the first CAP bytes) */
    int qos;
    bool retain;
    uint32_t token;
    int order; /* position among all network calls */
};

struct fwt_platform {
    struct fw_ports ports;
    uint64_t now;

    /* network */
    int connect_calls;
    int connect_rc;                      /* what net_connect returns */
    char client_id[FW_DEVICE_ID_MAX];
    bool clean_session;
    uint16_t keepalive_s;
    char will_topic[FW_TOPIC_MAX];
    char will_payload[32];
    int will_qos;
    bool will_retain;
    int publish_rc;                      /* what net_publish returns */
    uint32_t next_token;
    struct fwt_pub pubs[FWT_MAX_PUBS];
    int npubs;
    char subs[FWT_MAX_SUBS][FW_TOPIC_MAX];
    int sub_qos[FWT_MAX_SUBS];
    uint32_t sub_token[FWT_MAX_SUBS];    /* tokens share the publish counter */
    bool sub_acked[FWT_MAX_SUBS];        /* a SUBACK was delivered for it */
    int nsubs;
    int subscribe_rc;                    /* what net_subscribe(_many) returns */
    int subscribe_many_calls;            /* net_subscribe_many, when fwt_use_subscribe_many */
    int disconnect_calls;
    int disconnect_order;
    int net_calls;

    /* display */
    uint8_t frame[FW_FB_BYTES];
    int flushes;
    int contrast;                        /* last display_contrast value, -1 before any */

    /* storage */
    struct {
        char key[16];
        uint8_t value[FWT_VALUE_MAX];
        size_t len;
        bool used;
    } kv[FWT_MAX_KEYS];
    int storage_write_rc;                /* non-zero: every write fails with it */
    int storage_writes;

    /* log */
    char logs[FWT_MAX_LOGS][FW_LOG_MAX];
    int nlogs;
};

/* Resets p and fills p->ports; with_display = false leaves display_flush NULL (headless). */
void fwt_init(struct fwt_platform *p, bool with_display);
/* Offer net_subscribe_many (one SUBSCRIBE for several filters) from now on. */
void fwt_use_subscribe_many(struct fwt_platform *p);
/* Forget the calls recorded so far (publishes, subscribes, logs), keep storage. */
void fwt_clear_calls(struct fwt_platform *p);

/* Delivers a SUBACK with granted_qos (0..2, >= 0x80 refused, < 0 lost) for every recorded
   subscribe that has none yet; returns how many. */
int fwt_suback_all(struct fwt_platform *p, struct fw_device *d, int granted_qos);
/* The broker accepts the connection and grants every subscription at the QoS asked. */
void fwt_online(struct fwt_platform *p, struct fw_device *d, bool session_present);

/* Publishes recorded on topic; the last one (NULL if none). */
int fwt_count_pubs(const struct fwt_platform *p, const char *topic);
const struct fwt_pub *fwt_last_pub(const struct fwt_platform *p, const char *topic);
/* The n-th (0-based) publish on topic, or NULL. */
const struct fwt_pub *fwt_nth_pub(const struct fwt_platform *p, const char *topic, int n);
bool fwt_log_contains(const struct fwt_platform *p, const char *needle);

void fwt_storage_put(struct fwt_platform *p, const char *key, const void *buf, size_t len);
/* Pointer to the stored value of key (len set) or NULL. */
uint8_t *fwt_storage_get(struct fwt_platform *p, const char *key, size_t *len);

/* ASCII art of a framebuffer region: w x h pixels from (x, y), '#' lit, '.' dark, one
   line per pixel row ending in '\n'. out needs (w + 1) * h + 1 bytes. */
void fwt_ascii(const uint8_t *fb, int x, int y, int w, int h, char *out);

/* A JSON item payload in buf. */
const char *fwt_item_json(char *buf, size_t cap, int item_id, const char *name, int qty);

#endif /* FW_TEST_PLATFORM_H */
