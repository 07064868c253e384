/*
 * broker_internal.h - what broker.c shares with its drivers (broker_mosquitto.c,
 * broker_rabbitmq.c) and the helpers they all use (broker_util.c, broker_proc.c,
 * broker_net.c). Not installed; nothing outside harness/broker/src includes it.
 *
 * broker.c owns the struct hx_broker, its folder and its port; a driver owns what it keeps
 * in b->priv and the processes it starts. Each driver is one table of functions (a port, as
 * in fw_ports.h), chosen by opts.kind at start.
 */
#ifndef HX_BROKER_INTERNAL_H
#define HX_BROKER_INTERNAL_H

#include "hx/broker.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Internal result of one launch: the port was taken by someone else (never returned to
   callers of the public API). */
#define BROKER__PORT_TAKEN 1
/* How long a helper program or a graceful stop may take before SIGKILL. */
#define HX_BROKER_STOP_MS 10000

struct broker__driver;

struct hx_broker {
    const struct broker__driver *driver;
    enum hx_broker_kind kind;
    char *dir;          /* the temporary folder */
    char *log_path;     /* the broker's own log file (set by the driver's prepare) */
    char uri[64];       /* tcp:// or ssl://127.0.0.1:PORT */
    uint16_t port;      /* the MQTT port */
    bool port_fixed;    /* the caller asked for this port: never move to another */
    bool tls;
    bool keep_dir;
    pid_t pid;          /* the broker process (for RabbitMQ the Erlang VM); 0 when not running */
    /* The process ended without hx_broker_stop/kill (seen by the driver's running()):
       its pid and wait status, for hx_broker_death. Cleared by a launch. */
    bool died;
    pid_t died_pid;
    int died_status;
    void *priv;         /* the driver's own state */
};

/* One broker kind. Every function sets the error words (broker__set_error) on failure. */
struct broker__driver {
    const char *name; /* "mosquitto", "rabbitmq": the word of hx_broker_kind_name */
    unsigned features; /* bit (1u << enum hx_broker_feature) per feature it honours */
    /* Refuse options the kind cannot honour, write the config into b->dir, set b->log_path
       and b->priv. b->port is not chosen yet. */
    int (*prepare)(struct hx_broker *b, const struct hx_broker_opts *o);
    /* Start once on b->port (and fresh helper ports when !b->port_fixed) and wait until it
       answers MQTT; BROKER__PORT_TAKEN when the port was taken by someone else. */
    int (*launch)(struct hx_broker *b);
    bool (*running)(struct hx_broker *b);
    int (*stop)(struct hx_broker *b);  /* graceful; 0 when it was not running */
    int (*kill)(struct hx_broker *b);  /* SIGKILL: a crash */
    void (*release)(struct hx_broker *b); /* after stop: stop helpers, free b->priv */
};

extern const struct broker__driver broker__mosquitto_driver;
extern const struct broker__driver broker__rabbitmq_driver;

/* ---------------------------------------------------------------- broker_util.c */

void broker__set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void broker__clear_error(void);
void broker__sleep_ms(int ms);
char *broker__join(const char *dir, const char *name); /* malloc'd "dir/name" or NULL */
int broker__write_file(const char *path, const char *text, mode_t mode);
off_t broker__file_size(const char *path);
/* The text of path from offset on (at most the last max bytes), newlines as ';'. */
void broker__read_tail(const char *path, off_t from, char *out, size_t max);
/* Does a line of path after offset from contain needle? */
bool broker__file_has(const char *path, off_t from, const char *needle);
bool broker__bad_text(const char *s); /* NULL or holds a newline */

/* ---------------------------------------------------------------- broker_proc.c */

struct broker__spawn_opts {
    const char *out_path; /* stdin /dev/null, stdout and stderr appended here; NULL: the
                             caller's own three */
    bool own_group;       /* own process group and PR_SET_PDEATHSIG(SIGTERM) */
    bool switch_user;     /* setgid/setuid to uid/gid before anything else */
    uid_t uid;
    gid_t gid;
    char *const *envp;    /* NULL = inherit the environment */
    const char *cwd;      /* NULL = inherit the working folder */
};

/* fork/exec argv with stdin from /dev/null; the pid or -1 (errno set). */
pid_t broker__spawn(char *const argv[], const struct broker__spawn_opts *so);
/* waitpid with a time-out; true when the child was reaped (status in *status). */
bool broker__wait_child(pid_t pid, int timeout_ms, int *status);
void broker__describe_status(int status, char *out, size_t n);
/* Run a helper program to completion; its output goes to out_path (quoted in errors). */
int broker__run_tool(char *const argv[], const char *out_path, const char *what);
/* Has the child *pid exited (reaped now)? Clears *pid then. */
bool broker__child_gone(pid_t *pid);
/* The same for the broker's own process: a death it reaps here is noted in b->died*, since
   nobody asked for it (stop and kill reap their child themselves). */
bool broker__main_child_gone(struct hx_broker *b, pid_t *pid);

/* ---------------------------------------------------------------- broker_net.c */

bool broker__try_connect(uint16_t port); /* something accepts TCP on 127.0.0.1:port */
/* Send an MQTT 3.1.1 CONNECT to 127.0.0.1:port; true when a CONNACK with return code 0
   comes back within timeout_ms (then DISCONNECT). */
bool broker__mqtt_accepts(uint16_t port, int timeout_ms);

#endif /* HX_BROKER_INTERNAL_H */
