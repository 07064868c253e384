/*
 * broker_test_util.h - what the broker suites share: real Paho MQTTClient clients against
 * an hx_broker (connect, publish and wait for the acknowledgement, receive with a time-out,
 * read a retained message), a mosquitto_pub run, and a start that fails the test with the
 * broker's words.
 */
#ifndef BROKER_TEST_UTIL_H
#define BROKER_TEST_UTIL_H

#include <MQTTClient.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hx/broker.h"

#define WAIT_MS 8000

int64_t now_ms(void);
/* Connect a Paho client with a fresh client id and a clean session; returns the connect rc,
   *out set on success (NULL otherwise). */
int client_connect(const struct hx_broker *b, const char *user, const char *pass,
                   MQTTClient *out);
/* The same with a given client id and clean-session flag (persistent sessions). */
int client_connect_as(const struct hx_broker *b, const char *id, bool clean_session,
                      const char *user, const char *pass, MQTTClient *out);
void client_close(MQTTClient *c);
/* Publish and wait for its completion (PUBACK for QoS 1). */
void client_publish(MQTTClient c, const char *topic, const char *text, int qos, bool retained);
/* Receive one message within timeout_ms; false on time-out. */
bool client_receive(MQTTClient c, int timeout_ms, char *topic, size_t tn, char *text,
                    size_t n);
struct hx_broker *start_or_fail(const struct hx_broker_opts *o);
/* Retained message on topic, or "" when none arrives within timeout_ms. */
void read_retained(struct hx_broker *b, const char *topic, int timeout_ms, char *text,
                   size_t n);
/* mosquitto_pub (QoS 1, topic t) against b with extra arguments; its exit code. */
int cli_pub(const struct hx_broker *b, const char *args);

#endif /* BROKER_TEST_UTIL_H */
