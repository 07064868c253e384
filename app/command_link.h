/*
 * command_link.h - the backend's side of remote commands (docs/protocol.md, "Commands"), through
 * the MQTT edge (sim/mqtt.h): one client connected to one broker and subscribed to
 * scanners/+/command/reply, the SUBACK seen before anything is published (a reply that beat
 * the subscription would be lost); a publish; every reply handed to a callback.
 * `scansim ctl` (ctl_session.c) and `scansim run --command-rate` (run_commands.c) use it.
 *
 * Threading: the reply callback runs on the edge's thread, under the link's lock; the
 * caller's thread takes the same lock (command_link_lock) to read what the callback recorded,
 * and waits on it with command_link_wait. command_link_publish must be called without the lock.
 *
 * Ownership: the reply (cJSON) is handed to the callback: it returns true when it kept it
 * (and frees it later), false when the link should free it. The device id is borrowed for
 * the call. Options and their strings are borrowed for command_link_open.
 */
#ifndef COMMAND_LINK_H
#define COMMAND_LINK_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

#define COMMAND_LINK_REPLY_FILTER "scanners/+/command/reply"
#define COMMAND_LINK_ID_MAX 64 /* bytes of a device id taken from a reply topic, NUL included */

/* A reply on scanners/<device_id>/command/reply: an object with a string cmd_id. Under the
   link's lock. True = the callback keeps reply. */
typedef bool (*command_link_reply_fn)(void *ctx, const char *device_id, cJSON *reply);

struct command_link_opts {
    const char *cmd;                 /* "ctl", "run": the prefix of messages for people */
    const struct scansim_cli_common *c;  /* credentials, TLS, MQTT version, keep-alive */
    const char *uri;                 /* the broker */
    const char *client_id;
    command_link_reply_fn reply;
    void *ctx;
};

struct command_link;

/** Connect and subscribe, waiting for the CONNACK (connect time-out + 2 s) and the SUBACK
 *  (10 s). SCANSIM_EXIT_OK and *out; or, after saying what happened, to which broker and what
 *  to do: SCANSIM_EXIT_BROKER (unreachable, refused, subscription refused, lost),
 *  SCANSIM_EXIT_USAGE (the options), SCANSIM_EXIT_INTERNAL (memory). */
int command_link_open(const struct command_link_opts *o, struct command_link **out);

/** Publish payload on topic at the QoS of the options. SCANSIM_EXIT_OK, or after saying why
 *  SCANSIM_EXIT_BROKER (not connected) or SCANSIM_EXIT_INTERNAL. Not under the lock. */
int command_link_publish(struct command_link *l, const char *topic, const char *payload, size_t len);

void command_link_lock(struct command_link *l);
void command_link_unlock(struct command_link *l);

/** Under the lock: wait until done(ctx) holds (checked under the lock, after every reply),
 *  the connection is lost, SIGINT/SIGTERM (scansim_cli_stop_requested), or deadline_ms
 *  (sim_clock_ms). True when done(ctx) holds. */
bool command_link_wait(struct command_link *l, bool (*done)(void *ctx), void *ctx, int64_t deadline_ms);

/** Under the lock: the connection was lost (words into why[SIM_MQTT_WORDS_MAX] if given). */
bool command_link_lost(struct command_link *l, char *why, size_t cap);

/** Under the lock: QoS > 0 publishes the broker refused (MQTT 5 reason >= 0x80), and the
 *  last such code in *code. */
int command_link_refused(struct command_link *l, int *code);

/** Disconnect cleanly (up to 1 s) and free. No callback runs after it returns. NULL is fine. */
void command_link_close(struct command_link *l);

/** scanners/<id>/command/reply: copy <id> into id[COMMAND_LINK_ID_MAX]; false for any other topic. */
bool command_link_reply_topic(const char *topic, char *id);

#endif /* COMMAND_LINK_H */
