/*
 * cli.h - what every scansim subcommand shares: the broker and transport flags (named as
 * the mosquitto clients name them), the embedded default broker, exit codes and messages.
 *
 * A subcommand builds its getopt_long table from its own options plus
 * SCANSIM_CLI_COMMON_OPTIONS, passes every option it does not know to scansim_cli_common_option(),
 * and calls scansim_cli_broker_up() to get a broker URI: the user's --broker, or a private
 * mosquitto that lives until scansim_cli_broker_down().
 */
#ifndef SCANSIM_CLI_H
#define SCANSIM_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hx/broker.h"

/* Exit codes of scansim (documented in README.md and every --help). */
enum scansim_exit {
    SCANSIM_EXIT_OK = 0,      /* success: everything registered once, scenarios passed */
    SCANSIM_EXIT_FAILED = 1,  /* the run or test failed: items lost, registered twice, expectation unmet */
    SCANSIM_EXIT_USAGE = 2,   /* bad flag, bad value, bad scenario file */
    SCANSIM_EXIT_BROKER = 3,  /* broker unreachable, refused, or the embedded broker did not start */
    SCANSIM_EXIT_INTERNAL = 4 /* out of memory, a system call failed */
};

enum scansim_cli_session { SCANSIM_SESSION_PERSISTENT = 0, SCANSIM_SESSION_CLEAN };
enum scansim_cli_layout { SCANSIM_LAYOUT_SEED = 0, SCANSIM_LAYOUT_PER_DEVICE };

/* The broker and transport settings shared by demo, run and bench. Strings point into
   argv (or are NULL); nothing here is freed. */
#define SCANSIM_CLI_BROKERS_MAX 16

struct scansim_cli_common {
    const char *broker_uri;   /* --broker URI (the first one); NULL = embedded private mosquitto */
    /* every --broker given, in order (run spreads its devices over them) */
    const char *broker_uris[SCANSIM_CLI_BROKERS_MAX];
    int n_brokers;
    const char *username;     /* -u/--username */
    const char *password;     /* -P/--password (never printed) */
    const char *cafile;       /* --cafile */
    const char *cert;         /* --cert (client certificate) */
    const char *key;          /* --key (client key) */
    bool insecure;            /* --insecure: do not check the broker's certificate nor host name */
    int keepalive_s;          /* -k/--keepalive, seconds */
    int protocol_version;     /* -V/--protocol-version: 311 (default) or 5 */
    int qos;                  /* -q/--qos: 0, 1 or 2 (default 1) */
    enum scansim_cli_session session; /* --session clean|persistent */
    int session_expiry_s;     /* --session-expiry (MQTT 5 persistent sessions), seconds */
    enum scansim_cli_layout layout;   /* --layout seed|per-device */
    bool layout_set;          /* --layout was given (run defaults to per-device) */
    const char *broker_log;   /* --broker-log FILE: keep the embedded broker's log there */
    int broker_type;          /* --broker-type: the embedded broker's enum hx_broker_kind */
    bool nagle;               /* --nagle: leave Nagle's algorithm on (default TCP_NODELAY) */
    int transport;            /* --transport: enum sim_mqtt_kind (SIM_MQTT_DEFAULT = not given) */
    int verbose;              /* -v (repeatable) */
};

/* The environment variable that may carry the MQTT password instead of -P (used with -u;
   also how `run` hands the password to its worker processes, off their command line). */
#define SCANSIM_CLI_PASSWORD_ENV "SCANSIM_MQTT_PASSWORD"

/* Long options for getopt_long; append to a subcommand's table before its {0} end. */
#define SCANSIM_CLI_COMMON_OPTIONS                                          \
    {"broker", required_argument, 0, 0x1001},                           \
    {"username", required_argument, 0, 'u'},                            \
    {"password", required_argument, 0, 'P'},                            \
    {"cafile", required_argument, 0, 0x1002},                           \
    {"cert", required_argument, 0, 0x1003},                             \
    {"key", required_argument, 0, 0x1004},                              \
    {"insecure", no_argument, 0, 0x1005},                               \
    {"keepalive", required_argument, 0, 'k'},                           \
    {"protocol-version", required_argument, 0, 'V'},                    \
    {"qos", required_argument, 0, 'q'},                                 \
    {"session", required_argument, 0, 0x1006},                          \
    {"session-expiry", required_argument, 0, 0x1007},                   \
    {"layout", required_argument, 0, 0x1008},                           \
    {"broker-log", required_argument, 0, 0x1009},                       \
    {"nagle", no_argument, 0, 0x100a},                                  \
    {"broker-type", required_argument, 0, 0x100b},                      \
    {"transport", required_argument, 0, 0x100c},                        \
    {"verbose", no_argument, 0, 'v'}

/* Short option letters of the common options, for getopt_long's optstring. */
#define SCANSIM_CLI_COMMON_SHORT "u:P:k:V:q:v"

/* The common options' help text, for a subcommand's --help. */
extern const char scansim_cli_common_help[];

/* Defaults: embedded broker, keep-alive 30 s, MQTT 3.1.1, QoS 1, persistent session
   (expiry 3600 s on MQTT 5), seed layout. */
void scansim_cli_common_defaults(struct scansim_cli_common *c);

/* Handle one option returned by getopt_long. Returns 1 if it was a common option and
   valid, 0 if it is not a common option, -1 (after printing "scansim CMD: ..." to stderr)
   if its value is invalid. */
int scansim_cli_common_option(const char *cmd, struct scansim_cli_common *c, int opt, const char *arg);

/* Check the combination (e.g. --cert without --key). 0 or -1 after printing why. */
int scansim_cli_common_check(const char *cmd, const struct scansim_cli_common *c);

/* The broker to use: the user's --broker, or start the embedded private mosquitto
   (*embedded is set; stop it with scansim_cli_broker_down). Returns 0 and the URI in *uri
   (valid until scansim_cli_broker_down), or -1 after printing why to stderr. */
int scansim_cli_broker_up(const char *cmd, const struct scansim_cli_common *c, struct hx_broker **embedded,
                      const char **uri);
/* How a child scansim process reaches the same broker the same way: appends to argv, from
   index *n (at most max entries in all), the user name, TLS files, --insecure, keep-alive,
   protocol version, --transport and --nagle (not --broker: the caller gives the URI it resolved). The
   password is not in argv: the child finds it in SCANSIM_CLI_PASSWORD_ENV, which this sets.
   Numbers are written into buf (room for 2 x 12 bytes). 0, or -1 when max is too small. */
int scansim_cli_connection_args(const struct scansim_cli_common *c, char **argv, size_t *n, size_t max,
                            char buf[24]);

/* Apply the process-wide transport settings (the client library of --transport, TCP_NODELAY
   unless --nagle) before any
   connection of the simulator opens: run, its workers and demo call it. The benchmark's raw
   pair does not (it chooses by protocol version, raw_tcp_setup in cmd_bench.c). */
void scansim_cli_transport_setup(const struct scansim_cli_common *c);

struct sim_mqtt_opts;
/* An MQTT edge client's options from the common flags: its broker and client id, the
   credentials, TLS files and protocol version; the rest as sim_mqtt_opts_defaults. */
void scansim_cli_mqtt_opts(const struct scansim_cli_common *c, const char *uri, const char *client_id,
                       struct sim_mqtt_opts *o);
/* Stop the embedded broker (NULL is fine), copying its log to --broker-log first. */
void scansim_cli_broker_down(const struct scansim_cli_common *c, struct hx_broker *embedded);

/* Parse helpers: all print "scansim CMD: --flag: expected ..., got '...'" and return -1
   on error, 0 on success. */
int scansim_cli_parse_int(const char *cmd, const char *flag, const char *arg, long min, long max, long *out);
int scansim_cli_parse_double(const char *cmd, const char *flag, const char *arg, double min, double max,
                         double *out);
/* "250ms", "2s", "1.5s", "3m", or a bare number of seconds. */
int scansim_cli_parse_duration_ms(const char *cmd, const char *flag, const char *arg, uint64_t *out_ms);
/* "100/s", "100" (per second), "6000/m". */
int scansim_cli_parse_rate(const char *cmd, const char *flag, const char *arg, double *per_second);
/* "MIN-MAX" durations, e.g. "200ms-2s", or one duration for both. */
int scansim_cli_parse_range_ms(const char *cmd, const char *flag, const char *arg, uint64_t *min_ms,
                           uint64_t *max_ms);

/* An option that is one plain value of a command's options struct, parsed by its kind: a
   command lists them in a table and hands each getopt result to scansim_cli_parse_field. */
enum scansim_cli_kind {
    SCANSIM_CLI_INT,         /* long, min..max */
    SCANSIM_CLI_RATE,        /* double, per second */
    SCANSIM_CLI_DURATION,    /* uint64_t milliseconds */
    SCANSIM_CLI_PROBABILITY, /* double, 0..1 */
    SCANSIM_CLI_TEXT,        /* const char *, the argument itself */
    SCANSIM_CLI_FLAG,        /* bool, set */
};

struct scansim_cli_field {
    int opt;                 /* getopt_long's value */
    enum scansim_cli_kind kind;
    const char *flag;        /* "--devices", for the messages */
    size_t off;              /* offsetof(options struct, the field) */
    long min, max;           /* SCANSIM_CLI_INT */
};

#define SCANSIM_CLI_FIELD(type, opt, kind, flag, field, min, max) \
    {opt, SCANSIM_CLI_##kind, flag, offsetof(type, field), min, max}

/* 1 when opt is one of the n fields (set in the struct at base), -1 when its value is wrong
   (said), 0 when opt is none of them. */
int scansim_cli_parse_field(const char *cmd, const struct scansim_cli_field *fields, size_t n,
                            void *base, int opt, const char *arg);

/* Print "scansim CMD: message" to stderr, printf-style, with a newline. */
void scansim_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set by SIGINT/SIGTERM once scansim_cli_install_signals() ran; loops poll it. */
extern volatile int scansim_cli_stop_requested;
void scansim_cli_install_signals(void);

#endif /* SCANSIM_CLI_H */
