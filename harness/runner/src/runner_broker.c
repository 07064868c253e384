/*
 * runner_broker.c - the broker a scenario runs against when the runner does not start it:
 * whether a scenario can run there (hx_runner_skip_reason), the user's commands for
 * `broker stop|kill|restart`, and clearing what an earlier run left on it for this
 * scenario's device ids.
 *
 * Why clear: a broker shared by several scenarios (or the user's, used before) keeps the
 * persistent sessions of client ids such as scanner-1 (with items queued for them) and
 * their retained status. A scenario that found them would see items it never published
 * and an "online" before its devices said so. So before the devices start, the runner
 * connects once with every device id and a clean session (the broker drops the stored
 * session), and publishes an empty retained message on every status topic (the broker
 * drops the retained one).
 */
#include "runner_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hx/broker.h"
#include "sim/err.h"
#include "sim/mqtt.h"

/* ------------------------------------------------------------------ can it run here? */

static const char *broker_action_name(enum scn_action a)
{
    return a == SCN_ACT_BROKER_STOP ? "broker stop"
           : a == SCN_ACT_BROKER_KILL ? "broker kill" : "broker restart";
}

static bool has_action(const struct scn_scenario *s, enum scn_action a)
{
    for (size_t i = 0; i < s->n_steps; i++)
        if (s->steps[i].action == a)
            return true;
    return false;
}

static bool needs_cmd(const struct scn_scenario *s, enum scn_action a, const char *cmd,
                      const char *flag, char *why, size_t cap)
{
    if (!has_action(s, a) || (cmd && *cmd))
        return false;
    snprintf(why, cap, "it runs '%s' on a broker scansim did not start: give %s CMD",
             broker_action_name(a), flag);
    return true;
}

/* "variant acl" or "the setting on line 13". */
static void broker_config_words(const struct scn_broker *b, char *out, size_t cap)
{
    if (b->variant != SCN_BROKER_PLAIN)
        snprintf(out, cap, "variant %s on line %u", scn_broker_variant_name(b->variant),
                 b->pos.line);
    else
        snprintf(out, cap, "the setting on line %u", b->settings_line);
}

/* RabbitMQ 3.10 has no QoS 2: a group that speaks it cannot run there. */
static bool qos2_skip_reason(const struct scn_scenario *s, enum scn_broker_kind kind,
                             char *why, size_t cap)
{
    for (size_t g = 0; g < s->n_groups; g++) {
        const struct scn_group *gr = &s->groups[g];
        if (gr->qos != 2)
            continue;
        if (kind == SCN_BROKER_RABBITMQ) {
            snprintf(why, cap, "group '%s' (line %u) speaks QoS 2, which RabbitMQ 3.10 "
                     "downgrades to QoS 1", gr->name, gr->pos.line);
            return true;
        }
    }
    return false;
}

bool hx_runner_skip_reason(const struct scn_scenario *s, const struct hx_runner_opts *o,
                           char *why, size_t cap)
{
    enum scn_broker_kind kind = s->broker.kind_written ? s->broker.kind : o->broker_kind;
    if (qos2_skip_reason(s, kind, why, cap))
        return true;
    if (o->broker_uri) {
        if (s->broker.settings_written) {
            char what[64];
            broker_config_words(&s->broker, what, sizeof what);
            snprintf(why, cap, "it configures its broker (%s), which scansim can do only for "
                     "a broker it starts", what);
            return true;
        }
        return needs_cmd(s, SCN_ACT_BROKER_STOP, o->broker_stop_cmd, "--broker-stop", why, cap) ||
               needs_cmd(s, SCN_ACT_BROKER_KILL, o->broker_kill_cmd, "--broker-kill", why, cap) ||
               needs_cmd(s, SCN_ACT_BROKER_RESTART, o->broker_start_cmd, "--broker-start", why,
                         cap);
    }
    if (kind != SCN_BROKER_RABBITMQ)
        return false;
    if (s->broker.settings_written) {
        char what[64];
        broker_config_words(&s->broker, what, sizeof what);
        snprintf(why, cap, "it configures mosquitto (%s), which RabbitMQ cannot honour", what);
        return true;
    }
    for (size_t g = 0; g < s->n_groups; g++) {
        if (s->groups[g].mqtt == SCN_MQTT_5) {
            snprintf(why, cap, "group '%s' (line %u) speaks MQTT 5; RabbitMQ 3.10 speaks "
                     "3.1.1 only", s->groups[g].name, s->groups[g].pos.line);
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ the user's commands */

int runner_broker_command(struct runner *r, enum scn_action a, char *err, size_t cap)
{
    const char *cmd = a == SCN_ACT_BROKER_STOP   ? r->opts.broker_stop_cmd
                      : a == SCN_ACT_BROKER_KILL ? r->opts.broker_kill_cmd
                                                 : r->opts.broker_start_cmd;
    if (!cmd) {
        snprintf(err, cap, "no command for '%s' on %s", broker_action_name(a), r->broker_uri);
        return HX_ERR_INVAL;
    }
    fflush(NULL);
    int st = -1;
    if (hx_run_shell(cmd, &st) != HX_OK || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(err, cap, "'%s' for '%s' failed (status %d)", cmd, broker_action_name(a), st);
        return HX_ERR_SYS;
    }
    if (a == SCN_ACT_BROKER_RESTART &&
        hx_wait_port(r->broker_host, r->broker_port, 30000) != 0) {
        snprintf(err, cap, "after '%s', %s:%u did not accept connections within 30 s", cmd,
                 r->broker_host, (unsigned)r->broker_port);
        return HX_ERR_TIMEOUT;
    }
    return 0;
}

/* ------------------------------------------------------------------ clearing old state */

struct wipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;   /* connects that ended (success or failure) */
    int failed;
};

static void wipe_end(struct wipe *w, bool ok)
{
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->failed += !ok;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The probe clients' outcomes: a connect, or a publish's PUBACK, counts as one done. */
static void wipe_connected(void *ctx, bool session_present)
{
    (void)session_present;
    wipe_end(ctx, true);
}

static void wipe_connect_failed(void *ctx, int code, const char *words)
{
    (void)code;
    (void)words;
    wipe_end(ctx, false);
}

static void wipe_published(void *ctx, int mid, int code)
{
    (void)mid;
    wipe_end(ctx, code == 0);
}

static const struct sim_mqtt_handlers wipe_handlers = {
    .connected = wipe_connected,
    .connect_failed = wipe_connect_failed,
    .published = wipe_published,
};

/* A probe client of id on the broker, connecting with a clean session; NULL when it could
   not be made or started (a start that fails counts as done through connect_failed). */
static struct sim_mqtt *wipe_connect(struct runner *r, const char *id, int keepalive_s,
                                     struct wipe *w)
{
    struct sim_mqtt_opts o;
    struct sim_mqtt_connect_params cp = {.keepalive_s = keepalive_s, .clean_session = true};
    struct sim_mqtt *c = NULL;

    sim_mqtt_opts_defaults(&o);
    o.uri = r->broker_uri;
    o.client_id = id;
    o.connect_timeout_s = 10;
    if (sim_mqtt_create(&o, &wipe_handlers, w, &c) != SIM_OK)
        return NULL;
    if (sim_mqtt_connect(c, &cp) != SIM_OK) {
        sim_mqtt_destroy(c);
        return NULL;
    }
    return c;
}

/* Wait until done reaches n or the time is up. */
static bool wipe_wait(struct wipe *w, int n, int64_t until_ms)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < n && runner_now_ms() < until_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    bool all = w->done >= n;
    pthread_mutex_unlock(&w->mu);
    return all;
}

/* Clean DISCONNECT (when connected), a bounded wait for it, then free the client. */
static void wipe_close(struct sim_mqtt **c)
{
    if (!*c)
        return;
    sim_mqtt_disconnect(*c);
    int64_t end = runner_now_ms() + 2000;
    while (sim_mqtt_is_disconnecting(*c) && runner_now_ms() < end) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    sim_mqtt_destroy(*c);
    *c = NULL;
}

/* Connect every id in [from, to) with a clean session at once, then disconnect. */
static int wipe_batch(struct runner *r, uint32_t from, uint32_t to, char *err, size_t cap)
{
    struct wipe w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    struct sim_mqtt **c = calloc(to - from, sizeof *c);
    int started = 0, rc = 0;
    if (!c)
        return HX_ERR_NOMEM;
    for (uint32_t i = from; i < to; i++) {
        if (!(c[i - from] = wipe_connect(r, r->devs[i].id, 10, &w)))
            break;
        started++;
    }
    if (started < (int)(to - from) || !wipe_wait(&w, started, runner_now_ms() + 15000) ||
        w.failed) {
        snprintf(err, cap, "clearing the sessions of earlier runs on %s: %d of %u clean "
                 "connects failed or did not finish", r->broker_uri,
                 w.failed + (int)(to - from) - w.done, to - from);
        rc = HX_ERR_SYS;
    }
    for (uint32_t i = 0; i < to - from; i++)
        wipe_close(&c[i]);
    free(c);
    return rc;
}

/* Empty retained messages on every status topic, from one client. */
static int wipe_retained(struct runner *r, char *err, size_t cap)
{
    struct wipe w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    struct sim_mqtt *c = NULL;
    char cid[64];
    int rc = 0;
    snprintf(cid, sizeof cid, "scansim-wipe-%d", (int)getpid());
    /* Keep-alive 60 s, Paho's default, as before. */
    if (!(c = wipe_connect(r, cid, 60, &w)) || !wipe_wait(&w, 1, runner_now_ms() + 15000) ||
        w.failed) {
        snprintf(err, cap, "clearing retained status on %s: could not connect", r->broker_uri);
        rc = HX_ERR_SYS;
        goto out;
    }
    for (uint32_t i = 0; i < r->n_devs && rc == 0; i++) {
        char topic[FW_TOPIC_MAX + 16];
        snprintf(topic, sizeof topic, "scanners/%s/status", r->devs[i].id);
        if (sim_mqtt_publish(c, topic, "", 0, 1, true, NULL) != SIM_OK)
            rc = HX_ERR_SYS;
    }
    if (rc == 0 && (!wipe_wait(&w, 1 + (int)r->n_devs, runner_now_ms() + 15000) || w.failed))
        rc = HX_ERR_SYS;
    if (rc != 0)
        snprintf(err, cap, "clearing retained status on %s: %d publishes failed",
                 r->broker_uri, w.failed);
out:
    wipe_close(&c);
    return rc;
}

int runner_broker_wipe(struct runner *r, char *err, size_t cap)
{
    /* At most 64 connects in flight: a broker's listen backlog is small (mosquitto: 100). */
    for (uint32_t from = 0; from < r->n_devs; from += 64) {
        uint32_t to = from + 64 < r->n_devs ? from + 64 : r->n_devs;
        int rc = wipe_batch(r, from, to, err, cap);
        if (rc != 0)
            return rc;
    }
    return wipe_retained(r, err, cap);
}
