/*
 * runner_internal.h - the runner's shared state (harness/runner/src only).
 *
 * runner.c runs a scenario's steps on its timeline and writes the report; runner_env.c
 * sets up and tears down what it runs in (work folder, broker, backend, proxies, loops,
 * devices); runner_actions.c carries out the action steps, runner_expect.c evaluates the
 * expectations. runner_watch.c is the status watcher (an MQTT client on sim/mqtt.h),
 * runner_load.c the backend's load and malformed payloads, runner_operator.c the scripted
 * operators that run on the devices' owning threads.
 */
#ifndef RUNNER_INTERNAL_H
#define RUNNER_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fw/fw_device.h"
#include "hx/backend.h"
#include "hx/broker.h"
#include "hx/proxy.h"
#include "hx/runner.h"
#include "hx/scenario.h"
#include "sim/device.h"
#include "sim/err.h"
#include "sim/fleet_operator.h"
#include "sim/loop.h"

#define RUNNER_PATH_MAX 1024
/* How often conditions are polled while waiting. */
#define RUNNER_POLL_MS 50

/* One simulated device and everything the runner keeps about it. */
struct runner_dev {
    uint32_t num;                 /* global device number, 1-based */
    char id[SCN_NAME_MAX + 12];
    const struct scn_group *group;
    struct sim_device *dev;
    struct runner_loop *loop;
    struct hx_proxy *proxy;       /* NULL for `link direct` */
    char password[64];            /* password / acl brokers */

    struct fleet_operator op;     /* the scripted operator (owner thread only) */
    atomic_bool op_paused;        /* `operator pause` (any thread) */

    atomic_bool powered;          /* the runner's view: on unless a step powered it off */
    /* Set (runner thread) before a clean power-off, cleared (watcher) by the next live
       `online`: an `offline` arriving in between is the device's own, not its Will. */
    atomic_bool clean_off;

    /* figures, copied on the owning thread by runner_refresh() */
    struct fw_stats stats;
    struct fw_status status;
};

/* A cmd_id this run sent, and what it asked for. */
struct runner_cmd_sent {
    char id[SCN_CMD_ID_MAX];
    enum scn_command cmd;
};

/* One command reply the watcher saw for a cmd_id this run sent. */
struct runner_reply {
    uint32_t dev;     /* device number */
    bool ok;          /* result "ok" (else "error") */
    bool duplicate;   /* data.duplicate: answered again from memory, not executed */
    char reason[SCN_CMD_KEY_MAX];
};

/* One event loop (thread) and the devices it owns. */
struct runner_loop {
    struct runner *r;
    struct sim_loop *loop;
    struct sim_loop_target op_target; /* ticks the scripted operators */
    bool op_attached;
    struct runner_dev **devs;
    size_t n_devs, cap_devs;
};

/* One status message as the watcher saw it. */
struct runner_status_event {
    int64_t t_ms;    /* ms since the run started (monotonic) */
    uint32_t dev;    /* device number */
    bool online;     /* payload "online" (else "offline") */
    bool retain;     /* delivered as a stored retained message (on subscribe) */
    bool will;       /* a live "offline" while the device was not powered off cleanly */
};

struct runner {
    const struct scn_scenario *s;
    struct hx_runner_opts opts;
    uint64_t seed;
    uint64_t rng;                 /* selectors and `scan random tag` (runner thread) */
    char dir[RUNNER_PATH_MAX];    /* work folder: flash, ledger (the keep dir, or a temp) */
    bool remove_dir;
    char ledger_path[RUNNER_PATH_MAX];
    char pki[RUNNER_PATH_MAX];    /* tls / mtls: the throw-away PKI (ci/make-pki.sh), or "" */

    struct hx_broker *broker;     /* the broker the runner started; NULL with opts.broker_uri */
    char broker_uri[256];         /* whichever broker the scenario runs against */
    char broker_host[128];
    uint16_t broker_port;
    struct hx_broker_user *users;
    int n_users;
    char *acl;
    struct hx_backend *backend;
    struct hx_proxy_hub *hub;

    struct runner_dev *devs;      /* devs[num - 1] */
    uint32_t n_devs;
    struct runner_loop *loops;
    size_t n_loops;
    struct sim_device_observer observer;
    FILE *devlog;                 /* devices.log (keep only) */
    pthread_mutex_t devlog_lock;

    /* watcher (runner_watch.c) */
    void *watch;                  /* struct watch (runner_watch.c) */
    pthread_mutex_t wlock;
    struct runner_status_event *ev;
    size_t n_ev, cap_ev;
    int8_t *status_last;          /* per device: -1 none, 0 offline, 1 online (under wlock) */
    atomic_bool watch_subscribed;
    atomic_int watch_failures;
    char **sorted_ids;            /* for topic -> device number (bsearch) */

    /* commands (runner_command.c): ids and replies under wlock */
    struct runner_cmd_sent *cmd_ids; /* every cmd_id this run sent */
    size_t n_cmd_ids, cap_cmd_ids;
    struct runner_reply *replies;
    size_t n_replies, cap_replies;
    unsigned cmd_steps;           /* made cmd_ids so far (runner thread) */
    uint64_t run_tag;             /* this run's part of made cmd_ids: clock and pid mixed */
    unsigned forged_refused;      /* forged publishes the broker refused (runner thread) */
    unsigned forged_accepted;     /* ... and acknowledged */

    /* backend load (runner_load.c) */
    pthread_t load_thread;
    bool load_started;
    atomic_bool load_stop;
    atomic_uint_fast64_t load_published;

    /* time (monotonic ms) */
    int64_t t_start;
    int64_t t_zero;
    int64_t deadline;
    int64_t since;                /* when the last action step began (Will checks) */

    /* report */
    char *timeline;
    size_t tl_len, tl_cap;
    char *failure;
    bool failed;
    size_t exp_failed;
    size_t steps_run;
};

/* Selected devices of a step: resolved once, when the step runs. */
struct runner_sel {
    uint32_t *num;
    size_t n;
};

int64_t runner_now_ms(void);

/* runner_broker.c: a broker the runner did not start. */
int runner_broker_command(struct runner *r, enum scn_action a, char *err, size_t cap);
int runner_broker_wipe(struct runner *r, char *err, size_t cap);
void runner_sleep_ms(int64_t ms);
uint64_t runner_mix(uint64_t a, uint64_t b);

/* Append a timeline line "[  t.ttts] OUTCOME where: text[: detail]" (and to progress). */
void runner_note(struct runner *r, const char *outcome, const struct scn_pos *pos,
                 const char *text, const char *detail);
/* Record a failure (the first one becomes result.failure). */
void runner_fail(struct runner *r, const struct scn_pos *pos, const char *text,
                 const char *detail);

/* Copy every device's figures on its owning thread. 0 or a negative sim_err. */
int runner_refresh(struct runner *r);
/* A platform code (sim/err.h) as an hx_err (hx/err.h). */
int runner_hx_err(int sim_rc);

/* runner_env.c */
/* Devices and their ids, and the work folder (the keep dir, or a temporary one). */
int runner_setup_work(struct runner *r, char *err, size_t cap);
/* The broker, the watcher, the backend role and the devices, up to time zero. */
int runner_setup_harness(struct runner *r, char *err, size_t cap);
/* Everything set-up started, stopped and freed; what --keep keeps, written. */
void runner_teardown(struct runner *r);
/* Remove the work folder when it is a temporary one. */
void runner_remove_dir(struct runner *r);

/* runner_actions.c */
/* Carry out an action step on the selected devices. 0, or negative with err filled in. */
int runner_action_run(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                      char *info, char *err, size_t cap);
/* Power device d on (already on is fine). 0 or a negative sim_err. */
int runner_power_on(struct runner *r, struct runner_dev *d);

/* runner_expect.c */
/* Run an expectation step: once, or polled within its time. True when it held; obs says
   what was observed, always. */
bool runner_expect_run(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                       char *obs, size_t cap);
/* Device num's last status seen by the watcher: -1 none, 0 offline, 1 online. */
int runner_status_of(struct runner *r, uint32_t num);

/* runner_watch.c */
/* Connect and subscribe; TLS when uri is ssl:// (cafile, and certfile/keyfile for mTLS). */
int runner_watch_start(struct runner *r, const char *uri, const char *user, const char *pw,
                       const char *cafile, const char *certfile, const char *keyfile);
void runner_watch_stop(struct runner *r);
/* Device number of a device id, 0 when unknown. */
uint32_t runner_dev_by_id(const struct runner *r, const char *id, size_t len);
int runner_ids_index(struct runner *r);
void runner_ids_free(struct runner *r);
/* Status write-up for --keep. */
void runner_watch_dump(struct runner *r, FILE *f);

/* runner_load.c */
int runner_load_start(struct runner *r);
void runner_load_stop(struct runner *r);
/* Publish one good item to device num (0: the shared seed topic). 0 or negative hx_err. */
int runner_publish_item(struct runner *r, uint32_t num);
/* Publish one malformed item of kind to device num (0: the shared seed topic). */
int runner_publish_malformed(struct runner *r, uint32_t num, enum scn_reject kind);

/* runner_operator.c */
void runner_operator_tick(struct sim_loop_target *t, uint64_t now_ms);
void runner_operator_event(struct sim_loop_target *t, const struct sim_event *ev);

/* runner_command.c */
/* Send a `command` / forge a `device N publishes command` step to devices num[0..n). */
int runner_command_step(struct runner *r, const struct scn_step *st, const uint32_t *num,
                        size_t n, char *info, char *err, size_t cap);
/* A reply on scanners/<id>/command/reply of device num (watcher thread). */
void runner_command_reply(struct runner *r, uint32_t num, const void *payload, size_t len);
/* Evaluate SCN_EXP_REPLIES over devices num[0..n), or SCN_EXP_FORGED. */
bool runner_command_eval(struct runner *r, const struct scn_expect *e, const uint32_t *num,
                         size_t n, char *obs, size_t cap);
/* The commands sent and replies seen, for --keep (commands.log). */
void runner_command_dump(struct runner *r, FILE *f);
void runner_command_free(struct runner *r);

#endif /* RUNNER_INTERNAL_H */
