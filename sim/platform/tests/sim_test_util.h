/*
 * sim_test_util.h - helpers for the broker tests of sim/platform: a watcher (a plain Paho
 * client that records what it receives), waiting for conditions with time-outs, running
 * mosquitto_pub, and reading the broker's log.
 */
#ifndef SIM_TEST_UTIL_H
#define SIM_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Generous: the machine may be loaded (ctest -j2 on 2 cores, sanitizers). */
#define WAIT_MS 15000

struct watched {
    char topic[128];
    char payload[512];
    size_t len;
    bool retained;
    int qos;
};

struct watcher;

/* Connect an MQTT edge client (clean session, MQTT 3.1.1) to uri and subscribe to filter at
   QoS 1; returns once SUBACK came (or NULL after WAIT_MS). */
struct watcher *watcher_start(const char *uri, const char *client_id, const char *filter);
void watcher_stop(struct watcher *w);
/* Messages seen so far on topic with payload (payload NULL = any). */
int watcher_count(struct watcher *w, const char *topic, const char *payload);
/* Wait until watcher_count(...) >= n; true if reached within timeout_ms. */
bool watcher_wait(struct watcher *w, const char *topic, const char *payload, int n,
                  int timeout_ms);
/* Copy the i-th message seen on topic; false if none. */
bool watcher_get(struct watcher *w, const char *topic, int i, struct watched *out);
/* Publish through the watcher (QoS 1) and wait until it comes back through the broker:
   everything the broker sent us before is then in. */
bool watcher_sync(struct watcher *w, const char *marker_topic);

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
