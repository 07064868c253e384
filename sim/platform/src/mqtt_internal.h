/*
 * mqtt_internal.h - what the MQTT edge's common code (mqtt.c) and its implementations
 * (mqtt_mosq.c, mqtt_paho.c) share: one table of functions per kind, and the header every
 * client starts with so that mqtt.c can dispatch and answer uri / version / kind.
 */
#ifndef SIM_MQTT_INTERNAL_H
#define SIM_MQTT_INTERNAL_H

#include "sim/mqtt.h"

struct sim_mqtt_impl { /* one per kind */
    int (*create)(const struct sim_mqtt_opts *o, const struct sim_mqtt_handlers *h, void *ctx,
                  struct sim_mqtt **out);
    void (*destroy)(struct sim_mqtt *c);
    int (*connect)(struct sim_mqtt *c, const struct sim_mqtt_connect_params *p);
    int (*publish)(struct sim_mqtt *c, const char *topic, const void *payload, size_t len,
                   int qos, bool retain, int *mid);
    int (*subscribe)(struct sim_mqtt *c, int n, const char *const *filters, const int *qos,
                     int *mid);
    void (*disconnect)(struct sim_mqtt *c);
    bool (*is_connected)(const struct sim_mqtt *c);
    bool (*is_disconnecting)(const struct sim_mqtt *c);
    void (*stats)(struct sim_mqtt_stats *out);
};

extern const struct sim_mqtt_impl sim_mqtt__mosquitto; /* mqtt_mosq.c */
extern const struct sim_mqtt_impl sim_mqtt__paho;      /* mqtt_paho.c */

/* Every client starts with this header so the common code can dispatch and answer
   uri/version/kind. */
struct sim_mqtt {
    const struct sim_mqtt_impl *impl;
    enum sim_mqtt_kind kind;
    char *uri;
    int mqtt_version;
};

#endif /* SIM_MQTT_INTERNAL_H */
