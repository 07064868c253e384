/*
 * sim_test_util.h - helpers for the broker tests of sim/platform: a watcher (the tests' MQTT
 * client, sim/test_mqtt.h, subscribed), running mosquitto_pub, and reading the broker's
 * log.
 */
#ifndef SIM_TEST_UTIL_H
#define SIM_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Generous: the machine may be loaded (ctest -j2 on 2 cores, sanitizers). */
#define WAIT_MS 15000

/* A watcher is the tests' MQTT client (sim/test_mqtt.h): clean session, MQTT 3.1.1, the
   process's default client library, as the code under test uses. */
struct tmq;

/* Connect to uri and subscribe to filter (and the sync markers) at QoS 1; returns once the
   SUBACKs came (or NULL after WAIT_MS). Free with tmq_free. Its messages: tmq_count_on,
   tmq_wait_count_on, tmq_find (sim/test_mqtt.h). */
struct tmq *watcher_start(const char *uri, const char *client_id, const char *filter);
/* Publish through the watcher (QoS 1) and wait until it comes back through the broker:
   everything the broker sent us before is then in. */
bool watcher_sync(struct tmq *w, const char *marker_topic);

/* Run mosquitto_pub -L url... returns its exit status. */
int run_mosquitto_pub(const char *uri, const char *topic, const char *payload, int qos,
                      bool retain);

/* Does the file contain needle? / Wait until it does. */
bool file_contains(const char *path, const char *needle);
bool wait_file_contains(const char *path, const char *needle, int timeout_ms);

/* Sleep a little (polling step of waits). */
void nap_ms(int ms);
uint64_t now_ms(void);

#endif
