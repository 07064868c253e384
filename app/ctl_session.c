/*
 * ctl_session.c - connect, subscribe, publish, collect: the MQTT side of `scansim ctl`.
 *
 * Sections: state; replies (the edge's thread); the run.
 *
 * The connection, the subscription to the replies and the waiting are command_link.c's; the
 * replies it hands over are recorded under its lock. A reply counts when its topic is
 * scanners/<id>/command/reply, its cmd_id is one this invocation sent to that <id>, and it
 * is the first for that device: a duplicate, or a reply to someone else's command, is
 * dropped.
 */
#include "ctl_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command_link.h"
#include "sim/mqtt.h"
#include "sim/clock.h"

#define CMD "ctl"
#define CTL_PAYLOAD_MAX 1024

/* ---- state --------------------------------------------------------------------------- */

struct ctl_session {
    const struct ctl_request *req;
    struct ctl_answers *out;       /* the entries replies land in (under the link's lock) */
    size_t cap;                    /* room in out->v (`all` grows it) */
    size_t answered;               /* devices with a reply */
};

/* ---- replies (the edge's thread, under the link's lock) ------------------------------ */

/* The entry for a reply from device id with cmd_id, or NULL when it is not ours or not
   the first. */
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

static bool ctl__on_reply(void *ctx, const char *id, cJSON *reply)
{
    struct ctl_session *s = ctx;
    const cJSON *cmd_id = cJSON_GetObjectItemCaseSensitive(reply, "cmd_id");
    struct ctl_answer *e = ctl__entry_for(s, id, cmd_id->valuestring);
    if (!e)
        return false;
    e->reply = reply;
    s->answered++;
    return true;
}

static bool ctl__all_answered(void *ctx)
{
    const struct ctl_session *s = ctx;
    return !s->req->all && s->answered == s->out->n;
}

/* ---- the run ------------------------------------------------------------------------- */

/* Publish the command to every device (or once on command/all). */
static int ctl__publish(struct ctl_session *s, struct command_link *link)
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
            scansim_cli_error(CMD, "the command does not fit in %d bytes: shorten its args",
                          CTL_PAYLOAD_MAX);
            return SCANSIM_EXIT_USAGE;
        }
        int rc = command_link_publish(link, topic, payload, len);
        if (rc != SCANSIM_EXIT_OK)
            return rc;
    }
    return SCANSIM_EXIT_OK;
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

/* Wait for the replies; SCANSIM_EXIT_BROKER when the connection was lost meanwhile. */
static int ctl__collect(struct ctl_session *s, struct command_link *link, long timeout_ms)
{
    char why[SIM_MQTT_WORDS_MAX];
    int rc = SCANSIM_EXIT_OK;
    command_link_lock(link);
    command_link_wait(link, ctl__all_answered, s, (int64_t)sim_clock_ms() + timeout_ms);
    s->out->interrupted = scansim_cli_stop_requested != 0;
    if (command_link_lost(link, why, sizeof why)) {
        scansim_cli_error(CMD, "%s", why);
        rc = SCANSIM_EXIT_BROKER;
    }
    s->out->publish_refused = command_link_refused(link, &s->out->publish_code);
    command_link_unlock(link);
    return rc;
}

int ctl_session_run(const struct scansim_cli_common *c, const char *uri, const struct ctl_request *r,
                    long timeout_ms, struct ctl_answers *out)
{
    struct ctl_session s = {.req = r, .out = out};
    struct command_link *link = NULL;
    char cid[64];
    snprintf(cid, sizeof cid, "scansim-%s", r->cmd_id_base);
    int rc = ctl__answers_init(r, out) != 0 ? SCANSIM_EXIT_INTERNAL : SCANSIM_EXIT_OK;
    s.cap = out->n;
    if (rc == SCANSIM_EXIT_OK) {
        struct command_link_opts lo = {.cmd = CMD, .c = c, .uri = uri, .client_id = cid,
                                   .reply = ctl__on_reply, .ctx = &s};
        rc = command_link_open(&lo, &link);
    }
    if (rc == SCANSIM_EXIT_OK)
        rc = ctl__publish(&s, link);
    if (rc == SCANSIM_EXIT_OK) {
        out->sent = true;
        rc = ctl__collect(&s, link, timeout_ms);
    }
    command_link_close(link); /* no reply is handed over after this: out is ours alone */
    return rc;
}

void ctl_answers_free(struct ctl_answers *a)
{
    for (size_t i = 0; i < a->n; i++)
        cJSON_Delete(a->v[i].reply);
    free(a->v);
    memset(a, 0, sizeof *a);
}
