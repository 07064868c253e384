/*
 * mqtt_internal.h - between the MQTT edge's common part (mqtt.c: dispatch, kinds, words)
 * and its implementations (mqtt_mosq.c on libmosquitto, mqtt_paho.c on Paho MQTTAsync).
 */
#ifndef SIM_MQTT_INTERNAL_H
#define SIM_MQTT_INTERNAL_H

#include "sim/mqtt.h"

/* One per kind: what sim_mqtt_* dispatch to. */
struct sim_mqtt_impl {
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

/* Every client starts with this header (the implementation's struct embeds it first), so
   the common code can dispatch and answer uri, version and kind. */
struct sim_mqtt {
    const struct sim_mqtt_impl *impl;
    enum sim_mqtt_kind kind;
    char *uri;
    int mqtt_version; /* 3 or 5 */
    /* MQTT 5: the last CONNACK's Receive Maximum, 0 = none given (or 3.1.1). Stored by the
       implementation before it calls connected(). */
    _Atomic int receive_maximum;
};

/* Words for an established connection that ended: "connection to URI lost: WHY" or, with
   an MQTT 5 DISCONNECT reason code >= 0x80 from the broker, "... closed by the broker:
   WHAT (reason code 0xNN)". cause NULL = the usual suspects. */
void sim_mqtt__describe_loss(char *out, size_t cap, const char *uri, int reason5,
                             const char *cause);

/* OpenSSL's error line "TID:error:CODE:LIB:FUNC:REASON:FILE:LINE:..." -> "reason", lower
   case and printable ("" when the line has none). */
void sim_mqtt__ssl_reason_of(const char *line, size_t len, char *out, size_t cap);

/* Copy s (NULL stays NULL); clears *ok when out of memory. */
char *sim_mqtt__strdup(const char *s, bool *ok);
/* Overwrite and free a secret. */
void sim_mqtt__free_secret(char *s);

#endif
