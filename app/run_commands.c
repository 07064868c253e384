/*
 * run_commands.c - remote commands under load for `scansim run --command-rate` (run_commands.h).
 *
 * Sections: state; replies (the links' threads); sending (the run's thread); the report.
 *
 * Every command sent gets a record, found again from its cmd_id (<base>-<n hex>, n the
 * record's index). Replies come on the links' threads (one per broker, each under its own
 * link lock), so the records sit under rc->lock; a publish is made without it (the edge
 * may wait for its own lock, which a reply handler holds while it waits for ours).
 */
#include "run_commands.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "command_link.h"
#include "sim/fleet_devices.h"
#include "latency_hist.h"
#include "run_command_mix.h"
#include "sim/clock.h"
#include "sim/err.h"
#include "sim/mqtt.h"

#define CMD "run"
#define RUN_COMMANDS_PAYLOAD_MAX 256

/* ---- state --------------------------------------------------------------------------- */

enum rc_state { RC_WAITING = 0, RC_OK, RC_REFUSED, RC_FAILED };

struct rc_record {
    uint64_t sent_us;   /* sim_clock_us at the publish */
    uint32_t device;    /* k: the device <prefix><id_start + k> */
    uint8_t state;      /* enum rc_state */
    uint8_t kind;       /* index into the mix's words, for the first refusal */
};

struct run_commands {
    pthread_mutex_t lock;          /* guards the records and the figures below */
    const struct run_opts *o;
    struct command_link *links[SCANSIM_CLI_BROKERS_MAX];
    const char *uris[SCANSIM_CLI_BROKERS_MAX];
    int n_links;
    bool link_dead[SCANSIM_CLI_BROKERS_MAX]; /* a publish failed: no more on that broker */
    char base[24];                 /* cmd_id prefix: r<shard hex>-<pid hex>-<time hex> */
    struct run_command_rng rng;    /* seeded by --seed (the run's thread only) */
    double credit;                 /* commands that may go now */
    uint64_t last_pump_ms;         /* 0 = not yet */
    bool finished;                 /* no more commands */
    struct rc_record *rec;         /* one per command sent, by n */
    size_t n_rec, cap_rec;
    struct run_commands_report fig; /* counters kept as replies come (percentiles: report) */
    struct latency_hist hist;      /* publish -> first reply, ms */
};

/* ---- replies ------------------------------------------------------------------------- */

/* The record of cmd_id sent to device id, or NULL when it is not ours. Under rc->lock. */
static struct rc_record *rc__record_of(struct run_commands *rc, const char *id, const char *cmd_id)
{
    size_t bl = strlen(rc->base);
    if (strncmp(cmd_id, rc->base, bl) != 0 || cmd_id[bl] != '-')
        return NULL;
    char *end;
    unsigned long long n = strtoull(cmd_id + bl + 1, &end, 16);
    if (*end || end == cmd_id + bl + 1 || n >= rc->n_rec)
        return NULL;
    struct rc_record *r = &rc->rec[n];
    char want[COMMAND_LINK_ID_MAX];
    snprintf(want, sizeof want, "%s%ld", rc->o->id_prefix, rc->o->id_start + (long)r->device);
    return strcmp(want, id) == 0 ? r : NULL;
}

/* A reply (a link's thread, under its lock): counted, never kept. */
static bool rc__on_reply(void *ctx, const char *id, cJSON *reply)
{
    struct run_commands *rc = ctx;
    const char *cmd_id = cJSON_GetObjectItemCaseSensitive(reply, "cmd_id")->valuestring;
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(reply, "result");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(reply, "reason");
    uint64_t now = sim_clock_us();
    pthread_mutex_lock(&rc->lock);
    struct rc_record *r = rc__record_of(rc, id, cmd_id); /* NULL: another shard's, a ctl's */
    if (!r) {
        pthread_mutex_unlock(&rc->lock);
        return false;
    }
    if (r->state != RC_WAITING) {
        rc->fig.duplicates++;
    } else if (cJSON_IsString(result) && strcmp(result->valuestring, "ok") == 0) {
        r->state = RC_OK;
        rc->fig.ok++;
        latency_hist_add(&rc->hist, (double)(now - r->sent_us) / 1000.0);
    } else {
        r->state = RC_REFUSED;
        rc->fig.refused++;
        latency_hist_add(&rc->hist, (double)(now - r->sent_us) / 1000.0);
        if (!rc->fig.first_refusal[0])
            snprintf(rc->fig.first_refusal, sizeof rc->fig.first_refusal, "%s: %s",
                     run_command_kinds[r->kind], cJSON_IsString(reason) ? reason->valuestring : "?");
    }
    pthread_mutex_unlock(&rc->lock);
    return false;
}

/* ---- sending ------------------------------------------------------------------------- */

int run_commands_start(const struct run_opts *o, const char *const *uris, int n_uris,
                       struct run_commands **out)
{
    *out = NULL;
    if (o->command_rate <= 0)
        return SCANSIM_EXIT_OK;
    struct run_commands *rc = calloc(1, sizeof *rc);
    if (!rc) {
        scansim_cli_error(CMD, "out of memory");
        return SCANSIM_EXIT_INTERNAL;
    }
    pthread_mutex_init(&rc->lock, NULL);
    rc->o = o;
    rc->fig.on = true;
    rc->fig.rate = o->command_rate;
    latency_hist_init(&rc->hist);
    run_command_rng_seed(&rc->rng, (uint64_t)o->seed);
    snprintf(rc->base, sizeof rc->base, "r%lx-%lx-%lx", o->shard.count ? (unsigned long)o->shard.index : 0ul,
             (unsigned long)getpid(), (unsigned long)time(NULL) & 0xffffffful);
    rc->credit = 1; /* the first command at once: a short run sends some too */
    for (int j = 0; j < n_uris; j++) {
        char cid[64];
        snprintf(cid, sizeof cid, "scansim-cmds-%s-%d", rc->base, j);
        struct command_link_opts lo = {.cmd = CMD, .c = &o->c, .uri = uris[j], .client_id = cid,
                                       .reply = rc__on_reply, .ctx = rc};
        int er = command_link_open(&lo, &rc->links[j]);
        if (er != SCANSIM_EXIT_OK) {
            scansim_cli_error(CMD, "--command-rate: the command client could not start");
            run_commands_free(rc);
            return er;
        }
        rc->uris[j] = uris[j];
        rc->n_links = j + 1;
    }
    *out = rc;
    return SCANSIM_EXIT_OK;
}

/* Record command n (the next one: only this thread adds) for device k. False when out of
   memory. */
static bool rc__add_record(struct run_commands *rc, long k, int kind)
{
    bool ok = true;
    pthread_mutex_lock(&rc->lock);
    if (rc->n_rec == rc->cap_rec) {
        size_t ncap = rc->cap_rec ? rc->cap_rec * 2 : 1024;
        void *nv = realloc(rc->rec, ncap * sizeof *rc->rec);
        ok = nv != NULL;
        if (ok) {
            rc->rec = nv;
            rc->cap_rec = ncap;
        }
    }
    if (ok) {
        rc->rec[rc->n_rec++] = (struct rc_record){.sent_us = sim_clock_us(), .device = (uint32_t)k,
                                                  .state = RC_WAITING, .kind = (uint8_t)kind};
        rc->fig.sent++;
    }
    pthread_mutex_unlock(&rc->lock);
    return ok;
}

/* A publish that failed: counted, and that broker gets no more (its link does not come
   back). */
static void rc__publish_failed(struct run_commands *rc, size_t n, int j)
{
    pthread_mutex_lock(&rc->lock);
    rc->rec[n].state = RC_FAILED;
    rc->fig.publish_failed++;
    if (!rc->fig.link_problem[0])
        snprintf(rc->fig.link_problem, sizeof rc->fig.link_problem,
                 "could not publish a command on %s (said above)", rc->uris[j]);
    pthread_mutex_unlock(&rc->lock);
    rc->link_dead[j] = true;
}

/* Send one command to a random device of the run. False when nothing more can go. */
static bool rc__send_one(struct run_commands *rc)
{
    const struct run_opts *o = rc->o;
    long k = run_command_pick_device(&rc->rng, o->devices);
    long number = o->id_start + k;
    int j = fleet_broker_of(number, rc->n_links), kind;
    char topic[96], cmd_id[40], payload[RUN_COMMANDS_PAYLOAD_MAX];
    size_t n = rc->n_rec; /* read without the lock: only this thread changes it */
    snprintf(cmd_id, sizeof cmd_id, "%s-%zx", rc->base, n);
    size_t len = run_command_payload(&rc->rng, cmd_id, payload, sizeof payload, &kind);
    if (rc->link_dead[j])
        return true; /* said once already; the other brokers' devices still get theirs */
    if (!rc__add_record(rc, k, kind))
        return false;
    snprintf(topic, sizeof topic, "scanners/%s%ld/command", o->id_prefix, number);
    if (len == 0 || command_link_publish(rc->links[j], topic, payload, len) != SCANSIM_EXIT_OK)
        rc__publish_failed(rc, n, j);
    return true;
}

void run_commands_pump(struct run_commands *rc, uint64_t now_ms)
{
    if (!rc || rc->finished)
        return;
    if (rc->last_pump_ms)
        rc->credit = run_command_credit(rc->credit, rc->o->command_rate, now_ms - rc->last_pump_ms);
    rc->last_pump_ms = now_ms;
    while (rc->credit >= 1.0) {
        rc->credit -= 1.0;
        if (!rc__send_one(rc)) {
            rc->finished = true; /* out of memory: what was sent still counts */
            return;
        }
    }
}

static bool rc__all_answered(void *ctx)
{
    struct run_commands *rc = ctx;
    pthread_mutex_lock(&rc->lock);
    bool done = rc->fig.ok + rc->fig.refused + rc->fig.publish_failed >= rc->fig.sent;
    pthread_mutex_unlock(&rc->lock);
    return done;
}

void run_commands_finish(struct run_commands *rc, uint64_t wait_ms)
{
    if (!rc)
        return;
    rc->finished = true;
    int64_t deadline = (int64_t)sim_clock_ms() + (int64_t)wait_ms;
    /* every link's replies land in the same records: waiting on one link's signal with
       short slices sees the others' too. A second Ctrl-C stops at once, as in the run. */
    while (!rc__all_answered(rc) && (int64_t)sim_clock_ms() < deadline && run_signals < 2) {
        command_link_lock(rc->links[0]);
        int64_t slice = (int64_t)sim_clock_ms() + 50;
        command_link_wait(rc->links[0], rc__all_answered, rc, slice < deadline ? slice : deadline);
        command_link_unlock(rc->links[0]);
    }
}

/* ---- the report ---------------------------------------------------------------------- */

void run_commands_report(struct run_commands *rc, struct run_commands_report *r)
{
    memset(r, 0, sizeof *r);
    if (!rc)
        return;
    for (int j = 0; j < rc->n_links; j++) {
        char why[SIM_MQTT_WORDS_MAX];
        int code = 0, refused;
        command_link_lock(rc->links[j]);
        bool lost = command_link_lost(rc->links[j], why, sizeof why);
        refused = command_link_refused(rc->links[j], &code);
        command_link_unlock(rc->links[j]);
        pthread_mutex_lock(&rc->lock);
        if (lost && !rc->fig.link_problem[0])
            snprintf(rc->fig.link_problem, sizeof rc->fig.link_problem,
                     "the command client lost its connection: %.320s", why);
        if (refused && !rc->fig.link_problem[0])
            snprintf(rc->fig.link_problem, sizeof rc->fig.link_problem,
                     "the broker refused %d command publishes (MQTT 5 reason code 0x%02X): check "
                     "the ACL of the backend's user for scanners/+/command", refused, code);
        pthread_mutex_unlock(&rc->lock);
    }
    pthread_mutex_lock(&rc->lock);
    *r = rc->fig;
    r->unanswered = r->sent - r->ok - r->refused - r->publish_failed;
    r->p50_ms = latency_hist_quantile(&rc->hist, 0.50);
    r->p99_ms = latency_hist_quantile(&rc->hist, 0.99);
    r->max_ms = rc->hist.max_ms;
    pthread_mutex_unlock(&rc->lock);
}

void run_commands_free(struct run_commands *rc)
{
    if (!rc)
        return;
    for (int j = 0; j < rc->n_links; j++)
        command_link_close(rc->links[j]); /* no reply after this */
    pthread_mutex_destroy(&rc->lock);
    free(rc->rec);
    free(rc);
}

bool run_commands_failed(const struct run_commands_report *r)
{
    return r->on && (r->refused || r->unanswered || r->publish_failed || r->link_problem[0]);
}

void run_commands_print(const struct run_commands_report *r)
{
    char label[64];
    if (!r->on)
        return;
    snprintf(label, sizeof label, "commands (--command-rate %g/s)", r->rate);
    printf("  %-34s %" PRIu64 " sent, %" PRIu64 " ok, %" PRIu64 " refused, %" PRIu64
           " unanswered; reply p50 %.1f p99 %.1f max %.1f ms\n", label, r->sent, r->ok,
           r->refused, r->unanswered, r->p50_ms, r->p99_ms, r->max_ms);
    if (r->duplicates)
        printf("  %-34s %" PRIu64 "\n", "duplicate command replies", r->duplicates);
    if (r->refused)
        printf("  %-34s %" PRIu64 " refused by the devices, the first %s: these commands are "
               "valid, so the run failed\n", "commands failed", r->refused, r->first_refusal);
    if (r->unanswered)
        printf("  %-34s %" PRIu64 " without a reply within %.0f s after publishing ended: "
               "the run failed\n", "commands failed", r->unanswered,
               RUN_COMMANDS_FINISH_MS / 1000.0);
    if (r->publish_failed || r->link_problem[0])
        printf("  %-34s %" PRIu64 " not published; %s\n", "commands failed", r->publish_failed,
               r->link_problem[0] ? r->link_problem : "");
}

void run_commands_json(const struct run_commands_report *r, cJSON *j)
{
    if (!r->on)
        return;
    cJSON *c = cJSON_AddObjectToObject(j, "commands");
    if (!c)
        return;
    cJSON_AddNumberToObject(c, "rate", r->rate);
    cJSON_AddNumberToObject(c, "sent", (double)r->sent);
    cJSON_AddNumberToObject(c, "ok", (double)r->ok);
    cJSON_AddNumberToObject(c, "refused", (double)r->refused);
    cJSON_AddNumberToObject(c, "unanswered", (double)r->unanswered);
    cJSON_AddNumberToObject(c, "duplicates", (double)r->duplicates);
    cJSON_AddNumberToObject(c, "publish_failed", (double)r->publish_failed);
    if (r->first_refusal[0])
        cJSON_AddStringToObject(c, "first_refusal", r->first_refusal);
    else
        cJSON_AddNullToObject(c, "first_refusal");
    if (r->link_problem[0])
        cJSON_AddStringToObject(c, "link_problem", r->link_problem);
    cJSON *lat = cJSON_AddObjectToObject(c, "latency_ms");
    if (lat) {
        cJSON_AddNumberToObject(lat, "p50", r->p50_ms);
        cJSON_AddNumberToObject(lat, "p99", r->p99_ms);
        cJSON_AddNumberToObject(lat, "max", r->max_ms);
    }
}
