/*
 * hx/broker.h - a private mosquitto for the demo, the fleet and every test.
 *
 * hx_broker_start() writes a generated mosquitto.conf into a fresh temporary folder (its
 * own persistence file, log file, and optional password file / ACL / TLS files), picks a
 * free loopback port (or uses the one asked for), starts /usr/sbin/mosquitto as a child
 * process, and returns once the port accepts TCP connections. The broker can be stopped
 * gracefully (SIGTERM: persistence written), killed with SIGKILL (what was not saved is
 * lost) and restarted on the same port and persistence file. hx_broker_free() stops it if
 * it runs and removes the folder (unless keep_dir is set).
 *
 * Ownership: the caller owns the struct hx_broker returned by hx_broker_start() and frees
 * it with hx_broker_free(). Strings in hx_broker_opts are copied.
 *
 * Errors: functions return 0 or a negative hx_err; hx_broker_last_error() describes the
 * last failure in words (what, to what, and what to do).
 *
 * Lifetime: the broker gets PR_SET_PDEATHSIG, which Linux fires when the *thread* that started
 * it exits: start (and restart) brokers from a thread that outlives them, e.g. the main thread.
 */
#ifndef HX_BROKER_H
#define HX_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hx/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Errors: enum hx_err in hx/err.h. */

/* One user of the password file. */
struct hx_broker_user {
    const char *username;
    const char *password;
};

struct hx_broker_opts {
    uint16_t port;                 /* 0 = pick a free loopback port */
    const char *mosquitto_path;    /* NULL = $SCANSIM_MOSQUITTO, then /usr/sbin/mosquitto */
    bool persistence;              /* persistence true + its own persistence file (on when opts
                                      is NULL; in a zeroed struct it is off: set it) */
    int autosave_interval_s;       /* 0 = mosquitto default (1800 s) */
    bool autosave_on_changes;      /* autosave_interval counts changes instead of seconds */
    uint32_t max_queued_messages;  /* 0 = unlimited (the harness default: nothing dropped;
                                      written as INT_MAX, see broker.c) */
    const char *extra_config;      /* appended verbatim to the generated config, or NULL */
    /* Authentication: with users, allow_anonymous false and a password file made with
       mosquitto_passwd. With acl, an acl_file with that text. */
    const struct hx_broker_user *users;
    int n_users;
    const char *acl;
    /* TLS: with cafile+certfile+keyfile the listener speaks TLS only. */
    const char *cafile;
    const char *certfile;
    const char *keyfile;
    bool require_certificate;
    bool use_identity_as_username;
    bool verbose_log;              /* log_type all (otherwise errors, warnings, notices) */
    bool keep_dir;                 /* keep the temporary folder on free (artefacts) */
};

struct hx_broker;

/* Start a broker. opts may be NULL (defaults: free port, persistence, anonymous, plain TCP). */
int hx_broker_start(const struct hx_broker_opts *opts, struct hx_broker **out);

uint16_t hx_broker_port(const struct hx_broker *b);
/* "tcp://127.0.0.1:PORT" (or "ssl://..." with TLS); valid until hx_broker_free. */
const char *hx_broker_uri(const struct hx_broker *b);
const char *hx_broker_dir(const struct hx_broker *b);      /* the temporary folder */
const char *hx_broker_log_path(const struct hx_broker *b); /* mosquitto's log file */
pid_t hx_broker_pid(const struct hx_broker *b);            /* 0 when not running */
bool hx_broker_running(struct hx_broker *b);

/* SIGTERM and wait (mosquitto saves persistence on a clean stop). */
int hx_broker_stop(struct hx_broker *b);
/* SIGKILL and wait: a crash; unsaved state is lost. */
int hx_broker_kill(struct hx_broker *b);
/* Start again on the same port, config and persistence file; waits until ready. */
int hx_broker_restart(struct hx_broker *b);
/* Stop if running, remove the folder unless keep_dir, free. NULL is fine. */
void hx_broker_free(struct hx_broker *b);

/* The last error message of this thread, in words. */
const char *hx_broker_last_error(void);

/* Wait until host:port accepts a TCP connection, up to timeout_ms. 0 or HX_ERR_TIMEOUT. */
int hx_wait_port(const char *host, uint16_t port, int timeout_ms);
/* A free TCP port on 127.0.0.1 (bound and released), or 0. */
uint16_t hx_free_port(void);

#ifdef __cplusplus
}
#endif

#endif /* HX_BROKER_H */
