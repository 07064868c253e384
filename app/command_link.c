/*
 * command_link.c - a command client: connect, subscribe to the replies, publish, hand replies
 * over (command_link.h).
 *
 * Sections: state; handlers (the edge's thread); waiting (the caller's thread); open and
 * close.
 *
 * The handlers run on the edge's thread (libmosquitto's io loop or Paho's callback
 * thread): they only parse, record under l->lock and signal; the caller's thread waits on
 * l->cond with a monotonic deadline.
 */
#include "command_link.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/mqtt.h"
#include "sim/clock.h"

#define COMMAND_LINK_CONNECT_TIMEOUT_S 10
#define COMMAND_LINK_SUBACK_TIMEOUT_MS 10000

/* ---- state --------------------------------------------------------------------------- */

enum command_link_state { LINK_CONNECTING, LINK_CONNECTED, LINK_SUBSCRIBED, LINK_FAILED, LINK_LOST };

struct command_link {
    pthread_mutex_t lock;           /* guards everything below, and the callback's data */
    pthread_cond_t cond;            /* signalled on every change */
    struct sim_mqtt *mq;
    const char *cmd;                /* for messages (a string literal) */
    char uri[256];
    int qos;                        /* of the commands */
    command_link_reply_fn reply;
    void *ctx;
    enum command_link_state state;
    int sub_code;                   /* the SUBACK's code */
    int refused;                    /* publishes the broker refused */
    int refused_code;               /* the last such reason code */
    char words[SIM_MQTT_WORDS_MAX]; /* why the connection failed or ended */
};

bool command_link_reply_topic(const char *topic, char *id)
{
    static const char pre[] = "scanners/", post[] = "/command/reply";
    size_t tl = strlen(topic), pl = sizeof pre - 1, sl = sizeof post - 1;
    if (tl <= pl + sl || memcmp(topic, pre, pl) != 0 || strcmp(topic + tl - sl, post) != 0 ||
        tl - pl - sl >= COMMAND_LINK_ID_MAX)
        return false;
    memcpy(id, topic + pl, tl - pl - sl);
    id[tl - pl - sl] = '\0';
    return strchr(id, '/') == NULL;
}

/* ---- handlers ------------------------------------------------------------------------ */

static void link__set_state(struct command_link *l, enum command_link_state st, const char *words)
{
    pthread_mutex_lock(&l->lock);
    l->state = st;
    if (words)
        snprintf(l->words, sizeof l->words, "%s", words);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static void link__on_connected(void *ctx, bool session_present)
{
    (void)session_present;
    link__set_state(ctx, LINK_CONNECTED, NULL);
}

static void link__on_connect_failed(void *ctx, int code, const char *words)
{
    (void)code;
    link__set_state(ctx, LINK_FAILED, words);
}

static void link__on_lost(void *ctx, const char *words)
{
    link__set_state(ctx, LINK_LOST, words);
}

static void link__on_subscribed(void *ctx, int mid, int n, const int *codes)
{
    struct command_link *l = ctx;
    (void)mid;
    pthread_mutex_lock(&l->lock);
    l->sub_code = n >= 1 ? codes[0] : -1;
    if (l->state == LINK_CONNECTED)
        l->state = (l->sub_code >= 0 && l->sub_code < 0x80) ? LINK_SUBSCRIBED : LINK_FAILED;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static void link__on_published(void *ctx, int mid, int code)
{
    struct command_link *l = ctx;
    (void)mid;
    if (code < 0x80)
        return; /* acknowledged, or lost with the connection (connection_lost says so) */
    pthread_mutex_lock(&l->lock);
    l->refused++;
    l->refused_code = code;
    pthread_mutex_unlock(&l->lock);
}

static void link__on_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct command_link *l = ctx;
    char id[COMMAND_LINK_ID_MAX];
    if (!command_link_reply_topic(m->topic, id))
        return;
    cJSON *reply = cJSON_ParseWithLength(m->payload, m->len);
    const cJSON *cmd_id = cJSON_GetObjectItemCaseSensitive(reply, "cmd_id");
    if (!cJSON_IsObject(reply) || !cJSON_IsString(cmd_id)) {
        cJSON_Delete(reply);
        return; /* not a reply to anything we sent */
    }
    pthread_mutex_lock(&l->lock);
    if (l->reply(l->ctx, id, reply))
        reply = NULL;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    cJSON_Delete(reply);
}

static const struct sim_mqtt_handlers link_handlers = {
    .connected = link__on_connected,
    .connect_failed = link__on_connect_failed,
    .connection_lost = link__on_lost,
    .message = link__on_message,
    .published = link__on_published,
    .subscribed = link__on_subscribed,
};

/* ---- waiting ------------------------------------------------------------------------- */

void command_link_lock(struct command_link *l) { pthread_mutex_lock(&l->lock); }
void command_link_unlock(struct command_link *l) { pthread_mutex_unlock(&l->lock); }

bool command_link_wait(struct command_link *l, bool (*done)(void *ctx), void *ctx, int64_t deadline_ms)
{
    while (!done(ctx) && l->state != LINK_FAILED && l->state != LINK_LOST &&
           !scansim_cli_stop_requested) {
        int64_t left = deadline_ms - (int64_t)sim_clock_ms();
        if (left <= 0)
            break;
        if (left > 100)
            left = 100; /* look at scansim_cli_stop_requested now and then */
        struct timespec ts;
        sim_clock_deadline(&ts, (int)left);
        pthread_cond_timedwait(&l->cond, &l->lock, &ts);
    }
    return done(ctx);
}

bool command_link_lost(struct command_link *l, char *why, size_t cap)
{
    if (l->state != LINK_LOST)
        return false;
    if (why && cap)
        snprintf(why, cap, "%s", l->words);
    return true;
}

int command_link_refused(struct command_link *l, int *code)
{
    if (code)
        *code = l->refused_code;
    return l->refused;
}

static bool link__connected(void *ctx)
{
    const struct command_link *l = ctx;
    return l->state == LINK_CONNECTED || l->state == LINK_SUBSCRIBED;
}

static bool link__subscribed(void *ctx)
{
    return ((const struct command_link *)ctx)->state == LINK_SUBSCRIBED;
}

/* ---- open and close ------------------------------------------------------------------ */

static int link__create(const struct command_link_opts *lo, struct command_link *l)
{
    struct sim_mqtt_opts o;
    scansim_cli_mqtt_opts(lo->c, lo->uri, lo->client_id, &o);
    o.connect_timeout_s = COMMAND_LINK_CONNECT_TIMEOUT_S;
    /* mosquitto drops QoS 2 publishes beyond max_inflight_messages (20) awaiting PUBREL,
       which MQTT 3.1.1 cannot say: the library queues the rest. */
    o.max_inflight = 20;
    int rc = sim_mqtt_create(&o, &link_handlers, l, &l->mq);
    if (rc != SIM_OK) {
        scansim_cli_error(l->cmd, "cannot make an MQTT client for %s: %s", lo->uri, sim_strerror(rc));
        return rc == SIM_ERR_NOMEM ? SCANSIM_EXIT_INTERNAL : SCANSIM_EXIT_USAGE;
    }
    return SCANSIM_EXIT_OK;
}

/* Connected and subscribed (SUBACK seen), or SCANSIM_EXIT_BROKER after saying why. */
static int link__connect_and_subscribe(struct command_link *l, const struct scansim_cli_common *c)
{
    struct sim_mqtt_connect_params cp = {.keepalive_s = c->keepalive_s, .clean_session = true};
    const char *filter = COMMAND_LINK_REPLY_FILTER;
    int qos = 1, rc = SCANSIM_EXIT_OK;
    sim_mqtt_connect(l->mq, &cp); /* a failure to start comes to connect_failed as well */
    pthread_mutex_lock(&l->lock);
    if (!command_link_wait(l, link__connected, l,
                       (int64_t)sim_clock_ms() + (COMMAND_LINK_CONNECT_TIMEOUT_S + 2) * 1000)) {
        scansim_cli_error(l->cmd, "%s", l->state == LINK_CONNECTING
                      ? "no answer from the broker within the connect time-out" : l->words);
        if (!strstr(l->words, l->uri))
            scansim_cli_error(l->cmd, "(broker %s)", l->uri);
        rc = SCANSIM_EXIT_BROKER;
        goto out;
    }
    pthread_mutex_unlock(&l->lock);
    int sr = sim_mqtt_subscribe(l->mq, 1, &filter, &qos, NULL);
    pthread_mutex_lock(&l->lock);
    if (sr != SIM_OK || !command_link_wait(l, link__subscribed, l,
                                       (int64_t)sim_clock_ms() + COMMAND_LINK_SUBACK_TIMEOUT_MS)) {
        if (l->state == LINK_LOST)
            scansim_cli_error(l->cmd, "%s", l->words);
        else
            scansim_cli_error(l->cmd, "the broker %s did not grant the subscription to %s (%s %d): "
                          "check that this user may read it (ACL)", l->uri, COMMAND_LINK_REPLY_FILTER,
                          sr != SIM_OK ? sim_strerror(sr) : "SUBACK code", l->sub_code);
        rc = SCANSIM_EXIT_BROKER;
    }
out:
    pthread_mutex_unlock(&l->lock);
    return rc;
}

int command_link_open(const struct command_link_opts *o, struct command_link **out)
{
    *out = NULL;
    struct command_link *l = calloc(1, sizeof *l);
    if (!l) {
        scansim_cli_error(o->cmd, "out of memory");
        return SCANSIM_EXIT_INTERNAL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&l->lock, NULL);
    l->cmd = o->cmd;
    snprintf(l->uri, sizeof l->uri, "%s", o->uri);
    l->qos = o->c->qos;
    l->reply = o->reply;
    l->ctx = o->ctx;
    l->state = LINK_CONNECTING;
    l->sub_code = -1;
    int rc = link__create(o, l);
    if (rc == SCANSIM_EXIT_OK)
        rc = link__connect_and_subscribe(l, o->c);
    if (rc != SCANSIM_EXIT_OK) {
        command_link_close(l);
        return rc;
    }
    *out = l;
    return SCANSIM_EXIT_OK;
}

int command_link_publish(struct command_link *l, const char *topic, const char *payload, size_t len)
{
    int rc = sim_mqtt_publish(l->mq, topic, payload, len, l->qos, false, NULL);
    if (rc == SIM_OK)
        return SCANSIM_EXIT_OK;
    scansim_cli_error(l->cmd, "could not publish to %s on %s: %s", topic, l->uri, sim_strerror(rc));
    return rc == SIM_ERR_OFFLINE ? SCANSIM_EXIT_BROKER : SCANSIM_EXIT_INTERNAL;
}

void command_link_close(struct command_link *l)
{
    if (!l)
        return;
    if (l->mq && sim_mqtt_is_connected(l->mq)) {
        sim_mqtt_disconnect(l->mq);
        for (int64_t end = (int64_t)sim_clock_ms() + 1000;
             sim_mqtt_is_disconnecting(l->mq) && (int64_t)sim_clock_ms() < end;)
            usleep(5000);
    }
    sim_mqtt_destroy(l->mq); /* no handler runs after this */
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
