/*
 * hx/broker.h - a private broker for the demo, the fleet and every test: mosquitto (the
 * default) or RabbitMQ with its MQTT plugin (opts.kind).
 *
 * hx_broker_start() writes a generated config into a fresh temporary folder (its own
 * persistence / data folder, log file, and for mosquitto optional password file / ACL / TLS
 * files), picks a free loopback port (or uses the one asked for), starts the broker as a child
 * process, and returns once the port answers MQTT. The broker can be stopped gracefully
 * (SIGTERM: persistence written), killed with SIGKILL (what was not saved is lost) and
 * restarted on the same port and persistence. hx_broker_free() stops it if it runs and
 * removes the folder (unless keep_dir is set).
 *
 * Kinds differ in what they honour (hx_broker_kind_supports); an option the chosen kind cannot
 * honour makes hx_broker_start fail with HX_ERR_INVAL and words naming the option and the
 * kind, never silently ignored. RabbitMQ runs as the user 'rabbitmq' when the caller is root.
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

/* Which broker program runs; zero (the default) is mosquitto. */
enum hx_broker_kind {
    HX_BROKER_MOSQUITTO = 0,
    HX_BROKER_RABBITMQ,     /* RabbitMQ 3.10 + rabbitmq_mqtt (Debian rabbitmq-server) */
};

/* What a caller may ask of a kind (hx_broker_kind_supports). */
enum hx_broker_feature {
    HX_BROKER_FEATURE_PERSISTENCE,   /* retained messages and sessions kept across a restart */
    HX_BROKER_FEATURE_TLS,           /* cafile/certfile/keyfile, require_certificate,
                                        use_identity_as_username */
    HX_BROKER_FEATURE_USERS,         /* users (a password file) */
    HX_BROKER_FEATURE_ACL,           /* acl */
    HX_BROKER_FEATURE_AUTOSAVE,      /* autosave_interval_s, autosave_on_changes */
    HX_BROKER_FEATURE_MAX_QUEUED,    /* max_queued_messages other than 0 (unlimited) */
    HX_BROKER_FEATURE_EXTRA_CONFIG,  /* extra_config (mosquitto.conf text) */
    HX_BROKER_FEATURE_MQTT5,         /* MQTT 5 clients are accepted */
    HX_BROKER_FEATURE_QOS2,          /* QoS 2 kept end to end (RabbitMQ downgrades it to 1) */
};

/* One user of the password file. */
struct hx_broker_user {
    const char *username;
    const char *password;
};

/* The device rules of a per-device ACL (deploy/mosquitto/per-device.acl, whose device
   part this is; %u the device's user name): each device reads and writes only its own
   topics and reads its commands, but may send none. */
#define HX_ACL_PER_DEVICE_RULES                                                            \
    "pattern read scanners/%u/item_registration\n"                                         \
    "pattern write scanners/%u/item_registered\n"                                          \
    "pattern write scanners/%u/inventory/query\n"                                          \
    "pattern read scanners/%u/inventory/reply\n"                                           \
    "pattern write scanners/%u/status\n"                                                   \
    "pattern read scanners/%u/command\n"                                                   \
    "pattern write scanners/%u/command/reply\n"                                            \
    "pattern read command/all\n"

struct hx_broker_opts {
    uint16_t port;                 /* 0 = pick a free loopback port */
    const char *mosquitto_path;    /* NULL = $SCANSIM_MOSQUITTO, then /usr/sbin/mosquitto */
    bool persistence;              /* persistence true + its own persistence file (on when opts
                                      is NULL; in a zeroed struct it is off: set it). RabbitMQ
                                      always writes its data folder; off, a restart empties it */
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
    enum hx_broker_kind kind;      /* 0 = mosquitto; see hx_broker_kind_supports for what
                                      the others honour */
};

struct hx_broker;

/* "mosquitto", "rabbitmq"; "unknown" for a value outside the enum. */
const char *hx_broker_kind_name(enum hx_broker_kind kind);
/* The kind named by word (as hx_broker_kind_name spells it): 0, or HX_ERR_INVAL with the
   words in hx_broker_last_error(). */
int hx_broker_kind_parse(const char *word, enum hx_broker_kind *out);
/* Can a broker of this kind honour feature? (false for an unknown kind or feature) */
bool hx_broker_kind_supports(enum hx_broker_kind kind, enum hx_broker_feature feature);

/* Start a broker. opts may be NULL (defaults: free port, persistence, anonymous, plain TCP). */
int hx_broker_start(const struct hx_broker_opts *opts, struct hx_broker **out);

uint16_t hx_broker_port(const struct hx_broker *b);
/* "tcp://127.0.0.1:PORT" (or "ssl://..." with TLS); valid until hx_broker_free. */
const char *hx_broker_uri(const struct hx_broker *b);
const char *hx_broker_dir(const struct hx_broker *b);      /* the temporary folder */
const char *hx_broker_log_path(const struct hx_broker *b); /* the broker's own log file */
enum hx_broker_kind hx_broker_kind(const struct hx_broker *b);
/* The broker process (RabbitMQ: the Erlang VM, beam.smp); 0 when not running. */
pid_t hx_broker_pid(const struct hx_broker *b);
bool hx_broker_running(struct hx_broker *b);
/* Did the broker process end without hx_broker_stop or hx_broker_kill (a crash, someone's
   kill -9)? Then true, its pid in *pid and the cause in words ("killed by signal 9
   (SIGKILL)", "exited with code 1"); false while it runs, and after a stop, kill or
   restart. pid and words may be NULL. */
bool hx_broker_death(struct hx_broker *b, pid_t *pid, char *words, size_t n);

/* SIGTERM and wait (a broker saves its state on a clean stop). */
int hx_broker_stop(struct hx_broker *b);
/* SIGKILL and wait: a crash; unsaved state is lost. */
int hx_broker_kill(struct hx_broker *b);
/* Start again on the same port, config and persistence; waits until ready. */
int hx_broker_restart(struct hx_broker *b);
/* Stop if running, remove the folder unless keep_dir, free. NULL is fine. */
void hx_broker_free(struct hx_broker *b);

/* The last error message of this thread, in words. */
const char *hx_broker_last_error(void);

/* Wait until host:port accepts a TCP connection, up to timeout_ms. 0 or HX_ERR_TIMEOUT. */
int hx_wait_port(const char *host, uint16_t port, int timeout_ms);
/* Run cmd with /bin/sh -c and wait, as system() does, except that the child inherits no
   descriptor above 2: a broker a user's command starts must not hold the caller's MQTT
   sockets open (its connections would outlive their close, and the caller's epoll set
   would keep reporting sockets it had closed). HX_OK with the wait status, or HX_ERR_SYS. */
int hx_run_shell(const char *cmd, int *status);
/* A free TCP port on 127.0.0.1 (bound and released), or 0. */
uint16_t hx_free_port(void);

#ifdef __cplusplus
}
#endif

#endif /* HX_BROKER_H */
