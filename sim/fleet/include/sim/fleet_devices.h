/*
 * fleet_devices.h - N simulated scanners in one process, each with a scripted operator.
 *
 * A fleet owns `threads` event loops (sim/loop.h); device i lives on loop i % threads and
 * every call into its firmware happens on that loop's thread. Devices share nothing: each
 * is its own sim_device (firmware_core instance, Paho client, flash). The operator of a
 * device (sim/fleet_operator.h) runs on the same thread: it reads the device's status
 * (fw_device_status: screen, head item) and acts as a person would (wait the think time,
 * present the item's tag, confirm), woken when a message arrived for the device or when
 * the time it asked for is due (a per-loop min-heap of due times: no scan of all devices
 * per tick).
 *
 * Figures: each loop sums its devices' fw_stats once a second (O(devices) a second, not
 * a tick); fleet_figures() adds the loops' sums and the connection counters, which the
 * state observer keeps exactly.
 *
 * Ownership: the fleet copies the strings of fleet_opts. One thread (the caller's) drives
 * the fleet: create, start, pump, figures, stop, free.
 */
#ifndef SIM_FLEET_DEVICES_H
#define SIM_FLEET_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "fw/fw_device.h"
#include "sim/device.h"

struct fleet;

#define FLEET_URIS_MAX 16
#define FLEET_BINDS_MAX 64 /* --bind: source addresses */

struct fleet_opts {
    const char *uri;             /* broker */
    /* several brokers (n_uris > 1): device number k (id_start + index) uses uris[k % n];
       uri is then ignored */
    const char *uris[FLEET_URIS_MAX];
    int n_uris;
    /* source addresses (n_binds > 0): device number k connects from binds[k % n], so
       each address has its own ephemeral ports (~28,000 with Linux's default range) */
    const char *binds[FLEET_BINDS_MAX];
    int n_binds;
    const char *cert_dir;        /* per-device certificates (fleet_identity.h), or NULL */
    const char *password_file;   /* per-device passwords, or NULL */
    bool id_as_username;         /* user name = device id */
    struct sim_transport_opts transport; /* uri ignored (above); credentials, TLS, version */
    int devices;                 /* how many */
    const char *id_prefix;       /* "scanner-" */
    long id_start;               /* first number: ids are prefix + (id_start + i) */
    int threads;                 /* event loops (threads) owning devices */
    unsigned tick_ms;            /* loop tick: firmware timers and think-time resolution */
    unsigned batch_us;           /* each loop handles its events at most this often (sim/loop.h) */
    const char *flash_dir;       /* NULL = memory flash; else one folder per device below */
    const char *trace_dir;       /* NULL = no traces; else DIR/<id>.fwtrace per device */
    enum fw_layout layout;
    bool clean_session;
    int keepalive_s;
    int qos;
    uint64_t think_min_ms, think_max_ms; /* operator think time before scanning an item */
    double wrong_tag_rate;       /* probability of a wrong scan before the right one */
    double cancel_rate;          /* probability of cancelling an item instead of registering */
    double inventory_rate;       /* probability of an inventory look-up after a registration */
    uint32_t seed;               /* operator randomness (0 = fixed default) */
    bool keep_rows;              /* keep every device's row (fleet_rows) for a dashboard */
    int verbose;                 /* >= 2: firmware warnings to stderr */
};

/* Fleet-wide figures, summed over devices (device-side view). */
struct fleet_figures {
    uint64_t devices;             /* requested */
    uint64_t created;             /* sim_device_create succeeded */
    uint64_t started;             /* powered on (connect attempted) */
    uint64_t connected;           /* connected now */
    uint64_t ever_connected;      /* devices that connected at least once */
    uint64_t items_received;
    uint64_t items_queued;
    uint64_t duplicates_suppressed;
    uint64_t queue_full;
    uint64_t registrations_confirmed;
    uint64_t registrations_acked;
    uint64_t registrations_resent;
    uint64_t outbox_full;
    uint64_t cancels;
    uint64_t wrong_tags;
    uint64_t rejects;
    uint64_t inventory_queries;
    uint64_t inventory_answers;
    uint64_t inventory_timeouts;
    uint64_t connects;            /* successful connections, all devices */
    uint64_t connect_failures;
    uint64_t connection_losses;
    uint64_t publish_errors;
    uint64_t storage_errors;
    double connect_seconds;       /* start -> all devices connected once; < 0 if not yet */
    uint64_t peak_rss_kib;        /* this process (or the sum over shards): ru_maxrss, which
                                     counts shared library pages in every process */
    uint64_t peak_pss_kib;        /* the highest proportional set size seen (shared pages
                                     divided among the processes sharing them) */
    char last_failure[FW_DEVICE_ID_MAX + 2 + SIM_WORDS_MAX]; /* "<id>: <words>" of a recent connect failure, "" if none */
};

/** The broker of device number k (its id's number) among n brokers: round-robin by id, so
 *  every process of a fleet, and every shard, puts a device on the same one. */
static inline int fleet_broker_of(long k, int n)
{
    return n > 1 ? (int)(k % n) : 0;
}
/** The source address of device number k among n (--bind): the same round-robin by id. */
static inline int fleet_bind_of(long k, int n)
{
    return fleet_broker_of(k, n);
}
/* One device as a dashboard shows it (keep_rows), refreshed once a second with the sums. */
struct fleet_row {
    char id[FW_DEVICE_ID_MAX];    /* "" until its loop summed once */
    uint32_t index;               /* in the fleet */
    bool online;                  /* connected and subscribed (observer's view) */
    bool powered;
    struct fw_stats stats;
    uint32_t pending;             /* items waiting on the device */
    uint64_t last_seen_ms;        /* last message received (monotonic); 0 = none */
    uint8_t fb[FW_FB_BYTES];      /* its OLED */
};

/** Fill opts with defaults (1 device, "scanner-", id 1, 1 thread, memory flash, per-device
 *  layout, persistent session, keep-alive 30 s, QoS 1, full speed, no faults). */
void fleet_opts_defaults(struct fleet_opts *o);

/** Create the loops and all devices (not powered on). 0, or a negative sim_err after
 *  printing what failed to stderr. */
int fleet_create(const struct fleet_opts *o, struct fleet **out);

/** Power on devices not started yet, up to `count` of them (asynchronously, on their
 *  loops). Returns how many were started by this call. */
int fleet_start_some(struct fleet *f, int count);

/** Devices not started yet. */
int fleet_unstarted(struct fleet *f);

/** Sum the figures (any time after create). */
void fleet_figures(struct fleet *f, struct fleet_figures *out);

/** Copy the rows of keep_rows into out[index] (max entries), under each loop's lock and
 *  never calling into a device thread. Returns how many were copied. */
int fleet_rows(struct fleet *f, struct fleet_row *out, int max);

/** Sum every loop's counters now (waits for each loop), instead of the once-a-second sums. */
void fleet_refresh(struct fleet *f);

/** Clean power-off of every device (retained "offline", DISCONNECT), loops in parallel;
 *  refreshes the figures first so fleet_figures() afterwards gives the final ones. */
void fleet_stop(struct fleet *f);

/** Destroy devices and loops, free. NULL is fine. */
void fleet_free(struct fleet *f);

/** Peak resident set size of this process, KiB (getrusage). */
uint64_t fleet_peak_rss_kib(void);

/** Proportional set size of this process now, KiB (/proc/self/smaps_rollup; 0 if unknown). */
uint64_t fleet_pss_kib(void);

/** CPU time (user + system, all threads) process pid has used so far, in ms; pid 0 = this
 *  process. 0 when it cannot be read (/proc/PID/stat). */
uint64_t fleet_proc_cpu_ms(int pid);

/** Add one device's counters into s (the device-side figures). */
void fleet_figures_add_stats(struct fleet_figures *s, const struct fw_stats *st);

/** Add b's counters into a (used to merge the figures of worker processes). */
void fleet_figures_add(struct fleet_figures *a, const struct fleet_figures *b);

/** Encode the figures as one line of JSON (no newline) into buf. Returns the length or -1. */
int fleet_figures_to_json(const struct fleet_figures *f, char *buf, size_t cap);
/** Decode a line made by fleet_figures_to_json. 0 or -1. */
int fleet_figures_from_json(const char *line, struct fleet_figures *out);

#endif /* SIM_FLEET_DEVICES_H */
