/*
 * broker_test_util.h - what the broker suites share: the tests' MQTT client (sim/test_mqtt.h)
 * against an hx_broker (connect with a fresh id, publish that fails the test unless
 * acknowledged, receive into buffers, read a retained message), a mosquitto_pub run, and a
 * start that fails the test with the broker's words.
 */
#ifndef BROKER_TEST_UTIL_H
#define BROKER_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hx/broker.h"

#define WAIT_MS 8000

/* The tests' MQTT client (sim/test_mqtt.h). */
struct tmq;

int64_t now_ms(void);
/* Connect a client with a fresh client id and a clean session; 0, or the connect failure's
   code (a CONNACK code > 0, or negative: not reached, sim/mqtt.h). *out set on success
   (NULL otherwise). */
int client_connect(const struct hx_broker *b, const char *user, const char *pass,
                   struct tmq **out);
/* The same with a given client id and clean-session flag (persistent sessions). */
int client_connect_as(const struct hx_broker *b, const char *id, bool clean_session,
                      const char *user, const char *pass, struct tmq **out);
void client_close(struct tmq **c);
/* Subscribe and wait for the SUBACK; 0 when granted, else the refusal or the edge's code. */
int client_subscribe(struct tmq *c, const char *topic, int qos);
/* The same, with the QoS the broker granted in *granted. */
int client_subscribe_granted(struct tmq *c, const char *topic, int qos, int *granted);
/* Publish and wait for its completion (PUBACK for QoS 1). */
void client_publish(struct tmq *c, const char *topic, const char *text, int qos,
                    bool retained);
/* Receive one message within timeout_ms; false on time-out. */
bool client_receive(struct tmq *c, int timeout_ms, char *topic, size_t tn, char *text,
                    size_t n);
struct hx_broker *start_or_fail(const struct hx_broker_opts *o);
/* Retained message on topic, or "" when none arrives within timeout_ms. */
void read_retained(struct hx_broker *b, const char *topic, int timeout_ms, char *text,
                   size_t n);
/* mosquitto_pub (QoS 1, topic t) against b with extra arguments; its exit code. */
int cli_pub(const struct hx_broker *b, const char *args);

#endif /* BROKER_TEST_UTIL_H */
