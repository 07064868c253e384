/*
 * ctl_session.c - connect, subscribe, publish, collect: the MQTT side of `scansim ctl`.
 *
 * Sections: state; handlers (the edge's thread); waiting (the caller's thread); the run.
 *
 * The handlers run on the edge's thread (libmosquitto's io loop or Paho's callback
 * thread): they only parse, record under s->lock and signal; the caller's thread waits on
 * s->cond with a monotonic deadline. A reply counts when its topic is
 * scanners/<id>/command/reply, its cmd_id is one this invocation sent to that <id>, and it
 * is the first for that device: a duplicate, or a reply to someone else's command, is
 * dropped.
 */
#include "ctl_session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/mqtt.h"

#define CMD "ctl"
#define CTL_REPLY_FILTER "scanners/+/command/reply"
#define CTL_CONNECT_TIMEOUT_S 10
#define CTL_PAYLOAD_MAX 1024

/* ---- state --------------------------------------------------------------------------- */

enum ctl_link { CTL_CONNECTING, CTL_CONNECTED, CTL_SUBSCRIBED, CTL_FAILED, CTL_LOST };

struct ctl_session {
    pthread_mutex_t lock;          /* guards everything below */
    pthread_cond_t cond;           /* signalled on every change */
    const struct ctl_request *req;
    struct ctl_answers *out;       /* the entries replies land in */
    size_t cap;                    /* room in out->v (`all` grows it) */
    size_t answered;               /* devices with a reply */
    enum ctl_link link;
    int sub_code;                  /* the SUBACK's code */
    char words[SIM_MQTT_WORDS_MAX]; /* why the connection failed or ended */
};

static int64_t ctl__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- handlers ------------------------------------------------------------------------ */

static void ctl__set_link(struct ctl_session *s, enum ctl_link link, const char *words)
{
    pthread_mutex_lock(&s->lock);
    s->link = link;
    if (words)
        snprintf(s->words, sizeof s->words, "%s", words);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void ctl__on_connected(void *ctx, bool session_present)
{
    (void)session_present;
    ctl__set_link(ctx, CTL_CONNECTED, NULL);
}

static void ctl__on_connect_failed(void *ctx, int code, const char *words)
{
    (void)code;
    ctl__set_link(ctx, CTL_FAILED, words);
}

static void ctl__on_lost(void *ctx, const char *words)
{
    ctl__set_link(ctx, CTL_LOST, words);
}

static void ctl__on_subscribed(void *ctx, int mid, int n, const int *codes)
{
    struct ctl_session *s = ctx;
    (void)mid;
    pthread_mutex_lock(&s->lock);
    s->sub_code = n >= 1 ? codes[0] : -1;
    if (s->link == CTL_CONNECTED)
        s->link = (s->sub_code >= 0 && s->sub_code < 0x80) ? CTL_SUBSCRIBED : CTL_FAILED;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void ctl__on_published(void *ctx, int mid, int code)
{
    struct ctl_session *s = ctx;
    (void)mid;
    if (code < 0x80)
        return; /* acknowledged, or lost with the connection (connection_lost says so) */
    pthread_mutex_lock(&s->lock);
    s->out->publish_refused++;
    s->out->publish_code = code;
    pthread_mutex_unlock(&s->lock);
}

/* The entry for a reply from device id with cmd_id, or NULL when it is not ours or not
   the first. Under s->lock. */
static struct ctl_answer *ctl__entry_for(struct ctl_session *s, const char *id, const char *cmd_id)
{
    size_t i;
    if (ctl_request_match(s->req, cmd_id, &i) != 0)
        return NULL;
    struct ctl_answers *a = s->out;
    if (!s->req->all)
        return (strcmp(a->v[i].id, id) == 0 && !a->v[i].reply) ? &a->v[i] : NULL;
    for (size_t k = 0; k < a->n; k++)
        if (strcmp(a->v[k].id, id) == 0)
            return NULL; /* a duplicate */
    if (a->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        void *nv = realloc(a->v, ncap * sizeof *a->v);
        if (!nv)
            return NULL;
        a->v = nv;
        s->cap = ncap;
    }
    struct ctl_answer *e = &a->v[a->n++];
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->cmd_id, sizeof e->cmd_id, "%s", cmd_id);
    e->reply = NULL;
    return e;
}

/* scanners/<id>/command/reply: copy <id> into id; false for any other topic. */
static bool ctl__reply_topic(const char *topic, char *id)
{
    static const char pre[] = "scanners/", post[] = "/command/reply";
    size_t tl = strlen(topic), pl = sizeof pre - 1, sl = sizeof post - 1;
    if (tl <= pl + sl || memcmp(topic, pre, pl) != 0 || strcmp(topic + tl - sl, post) != 0 ||
        tl - pl - sl >= CTL_ID_MAX)
        return false;
    memcpy(id, topic + pl, tl - pl - sl);
    id[tl - pl - sl] = '\0';
    return strchr(id, '/') == NULL;
}

static void ctl__on_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct ctl_session *s = ctx;
    char id[CTL_ID_MAX];
    if (!ctl__reply_topic(m->topic, id))
        return;
    cJSON *reply = cJSON_ParseWithLength(m->payload, m->len);
    const cJSON *cmd_id = cJSON_GetObjectItemCaseSensitive(reply, "cmd_id");
    if (!cJSON_IsObject(reply) || !cJSON_IsString(cmd_id)) {
        cJSON_Delete(reply);
        return; /* not a reply to anything we sent */
    }
    pthread_mutex_lock(&s->lock);
    struct ctl_answer *e = ctl__entry_for(s, id, cmd_id->valuestring);
    if (e) {
        e->reply = reply;
        reply = NULL;
        s->answered++;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    cJSON_Delete(reply);
}

static const struct sim_mqtt_handlers ctl_handlers = {
    .connected = ctl__on_connected,
    .connect_failed = ctl__on_connect_failed,
    .connection_lost = ctl__on_lost,
    .message = ctl__on_message,
    .published = ctl__on_published,
    .subscribed = ctl__on_subscribed,
};

/* ---- waiting ------------------------------------------------------------------------- */

/* Wait until done(s) holds, the link fails or is lost, SIGINT, or deadline_ms. Under
   s->lock. True when done(s) holds. */
static bool ctl__wait(struct ctl_session *s, bool (*done)(const struct ctl_session *),
                      int64_t deadline_ms)
{
    while (!done(s) && s->link != CTL_FAILED && s->link != CTL_LOST && !sim_cli_stop_requested) {
        int64_t now = ctl__now_ms(), left = deadline_ms - now;
        if (left <= 0)
            break;
        if (left > 100)
            left = 100; /* look at sim_cli_stop_requested now and then */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    return done(s);
}

static bool ctl__connected(const struct ctl_session *s)
{
    return s->link == CTL_CONNECTED || s->link == CTL_SUBSCRIBED;
}
static bool ctl__subscribed(const struct ctl_session *s) { return s->link == CTL_SUBSCRIBED; }
static bool ctl__all_answered(const struct ctl_session *s)
{
    return !s->req->all && s->answered == s->out->n;
}

/* ---- the run ------------------------------------------------------------------------- */

static int ctl__create(const struct sim_cli_common *c, const char *uri, struct ctl_session *s,
                       struct sim_mqtt **mq)
{
    char cid[64];
    snprintf(cid, sizeof cid, "scansim-%s", s->req->cmd_id_base);
    struct sim_mqtt_opts o;
    sim_mqtt_opts_defaults(&o);
    o.uri = uri;
    o.client_id = cid;
    o.username = c->username;
    o.password = c->password;
    o.cafile = c->cafile;
    o.certfile = c->cert;
    o.keyfile = c->key;
    o.insecure = c->insecure;
    o.mqtt_version = c->protocol_version == 5 ? 5 : 3;
    o.connect_timeout_s = CTL_CONNECT_TIMEOUT_S;
    /* mosquitto drops QoS 2 publishes beyond max_inflight_messages (20) awaiting PUBREL,
       which MQTT 3.1.1 cannot say: the library queues the rest. */
    o.max_inflight = 20;
    int rc = sim_mqtt_create(&o, &ctl_handlers, s, mq);
    if (rc != SIM_OK) {
        sim_cli_error(CMD, "cannot make an MQTT client for %s: %s", uri, sim_strerror(rc));
        return rc == SIM_ERR_NOMEM ? SIM_EXIT_INTERNAL : SIM_EXIT_USAGE;
    }
    return SIM_EXIT_OK;
}

/* Connected and subscribed (SUBACK seen), or SIM_EXIT_BROKER after saying why. */
static int ctl__connect_and_subscribe(const struct sim_cli_common *c, const char *uri,
                                      struct ctl_session *s, struct sim_mqtt *mq)
{
    struct sim_mqtt_connect_params cp = {.keepalive_s = c->keepalive_s, .clean_session = true};
    const char *filter = CTL_REPLY_FILTER;
    int qos = 1, rc = SIM_EXIT_OK;
    sim_mqtt_connect(mq, &cp); /* a failure to start comes to connect_failed as well */
    pthread_mutex_lock(&s->lock);
    if (!ctl__wait(s, ctl__connected, ctl__now_ms() + (CTL_CONNECT_TIMEOUT_S + 2) * 1000)) {
        sim_cli_error(CMD, "%s", s->link == CTL_CONNECTING
                      ? "no answer from the broker within the connect time-out" : s->words);
        if (!strstr(s->words, uri))
            sim_cli_error(CMD, "(broker %s)", uri);
        rc = SIM_EXIT_BROKER;
        goto out;
    }
    pthread_mutex_unlock(&s->lock);
    int sr = sim_mqtt_subscribe(mq, 1, &filter, &qos, NULL);
    pthread_mutex_lock(&s->lock);
    if (sr != SIM_OK || !ctl__wait(s, ctl__subscribed, ctl__now_ms() + 10000)) {
        if (s->link == CTL_LOST)
            sim_cli_error(CMD, "%s", s->words);
        else
            sim_cli_error(CMD, "the broker %s did not grant the subscription to %s (%s %d): "
                          "check that this user may read it (ACL)", uri, CTL_REPLY_FILTER,
                          sr != SIM_OK ? sim_strerror(sr) : "SUBACK code", s->sub_code);
        rc = SIM_EXIT_BROKER;
    }
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Publish the command to every device (or once on command/all). */
static int ctl__publish(const struct sim_cli_common *c, const char *uri, struct ctl_session *s,
                        struct sim_mqtt *mq)
{
    const struct ctl_request *r = s->req;
    size_t n = r->all ? 1 : s->out->n;
    for (size_t i = 0; i < n; i++) {
        char topic[CTL_ID_MAX + 32], cmd_id[CTL_CMD_ID_MAX], payload[CTL_PAYLOAD_MAX];
        ctl_request_cmd_id(r, i, cmd_id);
        if (r->all)
            snprintf(topic, sizeof topic, "command/all");
        else
            snprintf(topic, sizeof topic, "scanners/%s/command", s->out->v[i].id);
        size_t len = ctl_request_payload(r, cmd_id, payload, sizeof payload);
        if (len == 0) {
            sim_cli_error(CMD, "the command does not fit in %d bytes: shorten its args",
                          CTL_PAYLOAD_MAX);
            return SIM_EXIT_USAGE;
        }
        int rc = sim_mqtt_publish(mq, topic, payload, len, c->qos, false, NULL);
        if (rc != SIM_OK) {
            sim_cli_error(CMD, "could not publish to %s on %s: %s", topic, uri, sim_strerror(rc));
            return rc == SIM_ERR_OFFLINE ? SIM_EXIT_BROKER : SIM_EXIT_INTERNAL;
        }
    }
    return SIM_EXIT_OK;
}

static int ctl__answers_init(const struct ctl_request *r, struct ctl_answers *out)
{
    memset(out, 0, sizeof *out);
    if (r->all)
        return 0;
    out->v = calloc(r->n_ids ? r->n_ids : 1, sizeof *out->v);
    if (!out->v)
        return -1;
    out->n = r->n_ids;
    for (size_t i = 0; i < r->n_ids; i++) {
        memcpy(out->v[i].id, r->ids[i], CTL_ID_MAX);
        ctl_request_cmd_id(r, i, out->v[i].cmd_id);
    }
    return 0;
}

int ctl_session_run(const struct sim_cli_common *c, const char *uri, const struct ctl_request *r,
                    long timeout_ms, struct ctl_answers *out)
{
    struct ctl_session s = {.req = r, .out = out, .link = CTL_CONNECTING, .sub_code = -1};
    struct sim_mqtt *mq = NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s.cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s.lock, NULL);
    int rc = ctl__answers_init(r, out) != 0 ? SIM_EXIT_INTERNAL : SIM_EXIT_OK;
    s.cap = out->n;
    if (rc == SIM_EXIT_OK)
        rc = ctl__create(c, uri, &s, &mq);
    if (rc == SIM_EXIT_OK)
        rc = ctl__connect_and_subscribe(c, uri, &s, mq);
    if (rc == SIM_EXIT_OK)
        rc = ctl__publish(c, uri, &s, mq);
    if (rc == SIM_EXIT_OK) {
        out->sent = true;
        pthread_mutex_lock(&s.lock);
        ctl__wait(&s, ctl__all_answered, ctl__now_ms() + timeout_ms);
        out->interrupted = sim_cli_stop_requested != 0;
        if (s.link == CTL_LOST) {
            sim_cli_error(CMD, "%s", s.words);
            rc = SIM_EXIT_BROKER;
        }
        pthread_mutex_unlock(&s.lock);
    }
    if (mq && sim_mqtt_is_connected(mq)) {
        sim_mqtt_disconnect(mq);
        for (int64_t end = ctl__now_ms() + 1000; sim_mqtt_is_disconnecting(mq) && ctl__now_ms() < end;)
            usleep(5000);
    }
    sim_mqtt_destroy(mq); /* no handler runs after this: out is ours alone */
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.lock);
    return rc;
}

void ctl_answers_free(struct ctl_answers *a)
{
    for (size_t i = 0; i < a->n; i++)
        cJSON_Delete(a->v[i].reply);
    free(a->v);
    memset(a, 0, sizeof *a);
}
