/*
 * fw_trace_recorder.h - record a device's trace while it runs (format: fw/fw_trace.h).
 *
 * A recorder stands between a device and the platform's ports: the firmware gets the
 * recorder's ports, which write one record per call (what was asked, what the platform
 * answered) and forward to the platform's. The platform makes its calls into the device
 * through the fw_traced_*() functions below, which write the event record first. With a
 * NULL recorder they are plain fw_device_*() calls, so a platform calls them always and
 * tracing costs nothing when it is off.
 *
 * Ownership: the recorder copies the platform's ports at fw_traced_init(); it borrows the
 * sink (write, ctx) for its whole life. It allocates nothing.
 */
#ifndef FW_TRACE_RECORDER_H
#define FW_TRACE_RECORDER_H

#include "fw/fw_device.h"
#include "fw/fw_trace.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fw_trace_recorder {
    struct fw_ports inner;   /* the platform's ports */
    struct fw_ports ports;   /* the recording ones, handed to the firmware */
    fw_trace_write_fn write; /* where the bytes go */
    void *write_ctx;
};

/* Start a trace: writes the file header through write(ctx, ...). */
void fw_trace_recorder_init(struct fw_trace_recorder *r, fw_trace_write_fn write, void *ctx);

/* Make r's recording ports forward to inner (copied); fw_traced_init() does this. */
void fw_trace_recorder_wrap(struct fw_trace_recorder *r, const struct fw_ports *inner);

/* Write a RESULT record: what an event call returned (fw_traced_init, fw_traced_on_tag). */
void fw_trace_recorder_result(struct fw_trace_recorder *r, int rc);

/* The traced calls: r may be NULL (no tracing). fw_traced_init records the configuration
   and which optional ports exist, then initialises d with the recording ports. */
int fw_traced_init(struct fw_trace_recorder *r, struct fw_device *d,
                   const struct fw_device_config *cfg, const struct fw_ports *ports);
void fw_traced_start(struct fw_trace_recorder *r, struct fw_device *d);
void fw_traced_stop(struct fw_trace_recorder *r, struct fw_device *d);
void fw_traced_tick(struct fw_trace_recorder *r, struct fw_device *d, uint64_t now_ms);
void fw_traced_on_connected(struct fw_trace_recorder *r, struct fw_device *d,
                            bool session_present);
void fw_traced_on_subscribed(struct fw_trace_recorder *r, struct fw_device *d,
                             uint32_t token, int granted_qos);
void fw_traced_on_connect_failed(struct fw_trace_recorder *r, struct fw_device *d,
                                 int reason_code, const char *why);
void fw_traced_on_connection_lost(struct fw_trace_recorder *r, struct fw_device *d,
                                  const char *why);
void fw_traced_on_message(struct fw_trace_recorder *r, struct fw_device *d, const char *topic,
                          const void *payload, size_t len, int qos, bool dup);
void fw_traced_on_published(struct fw_trace_recorder *r, struct fw_device *d, uint32_t token);
void fw_traced_on_publish_refused(struct fw_trace_recorder *r, struct fw_device *d,
                                  uint32_t token, int reason_code);
int fw_traced_on_tag(struct fw_trace_recorder *r, struct fw_device *d, const uint8_t *uid,
                     size_t len);
void fw_traced_on_button(struct fw_trace_recorder *r, struct fw_device *d,
                         enum fw_button button);

#ifdef __cplusplus
}
#endif

#endif /* FW_TRACE_RECORDER_H */
