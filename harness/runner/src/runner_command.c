/*
 * runner_command.c - remote commands in a scenario: the harness, as the backend, sends
 * them; the watcher hands it the devices' replies; expectations count them.
 *
 * Sections: sending (`command ...`: one cmd_id per step, published by the backend role on
 * scanners/<id>/command of each selected device, or once on command/all for `to all
 * devices`), forging (`device N publishes command ...`: a short-lived client logged in with
 * device N's credentials, to show what the broker's ACL does), replies (recorded by the
 * watcher's thread from scanners/+/command/reply, only for cmd_ids this run sent), and
 * expectations (`command replies ...`, `forged commands ...`).
 *
 * Threads: sending and expectations run on the runner's thread; replies arrive on the
 * watcher's MQTT thread. The sent ids and the replies are shared under r->wlock.
 * Protocol: docs/protocol.md, "Commands (backend -> device) and replies".
 */
#include "runner_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"
#include "sim/mqtt.h"

#define FORGE_WAIT_MS 5000 /* connect + PUBACK of a forged command, at most */

/* ================================================================ sending */

/* JSON text built in a fixed buffer; n counts what was wanted, so overflow shows. */
struct json_out {
    char *buf;
    size_t cap, n;
};

static void json_raw(struct json_out *o, const char *s)
{
    for (; *s; s++, o->n++)
        if (o->n + 1 < o->cap)
            o->buf[o->n] = *s;
}

/* s as a JSON string: quoted, with '"', '\\' and control bytes escaped. */
static void json_str(struct json_out *o, const char *s)
{
    json_raw(o, "\"");
    for (; *s; s++) {
        char esc[8] = {*s, '\0'};
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c < 0x20)
            snprintf(esc, sizeof esc, "\\u%04x", c);
        json_raw(o, esc);
    }
    json_raw(o, "\"");
}

/* {"cmd_id":..,"cmd":..,"args":{..}} into buf; its length, or 0 when it does not fit. */
static size_t command_json(const struct scn_command_step *c, const char *cmd_id, char *buf,
                           size_t cap)
{
    struct json_out o = {buf, cap, 0};
    json_raw(&o, "{\"cmd_id\":");
    json_str(&o, cmd_id);
    json_raw(&o, ",\"cmd\":");
    json_str(&o, scn_command_name(c->cmd));
    json_raw(&o, ",\"args\":{");
    for (uint32_t k = 0; k < c->n_args; k++) {
        const struct scn_cmd_arg *a = &c->args[k];
        if (k > 0)
            json_raw(&o, ",");
        json_str(&o, a->key);
        json_raw(&o, ":");
        if (a->type == SCN_ARG_STRING)
            json_str(&o, a->value);
        else
            json_raw(&o, a->value); /* a number, true or false, as written */
    }
    json_raw(&o, "}}");
    if (o.n + 1 > cap)
        return 0;
    buf[o.n] = '\0';
    return o.n;
}

/* Remember a cmd_id as this run's (replies to others are not counted). */
static int remember_id(struct runner *r, const char *id, enum scn_command cmd)
{
    pthread_mutex_lock(&r->wlock);
    int rc = 0;
    bool known = false;
    for (size_t i = 0; i < r->n_cmd_ids && !known; i++)
        known = strcmp(r->cmd_ids[i].id, id) == 0;
    if (!known && r->n_cmd_ids == r->cap_cmd_ids) {
        size_t ncap = r->cap_cmd_ids ? r->cap_cmd_ids * 2 : 16;
        struct runner_cmd_sent *n = realloc(r->cmd_ids, ncap * sizeof *n);
        if (n) {
            r->cmd_ids = n;
            r->cap_cmd_ids = ncap;
        } else {
            rc = HX_ERR_NOMEM;
        }
    }
    if (!known && rc == 0) {
        struct runner_cmd_sent *c = &r->cmd_ids[r->n_cmd_ids++];
        snprintf(c->id, sizeof c->id, "%s", id);
        c->cmd = cmd;
    }
    pthread_mutex_unlock(&r->wlock);
    return rc;
}

/* The QoS to send at: the highest of the selected devices' groups (every group for all). */
static int command_qos(const struct runner *r, const uint32_t *num, size_t n, bool all)
{
    int qos = 0;
    for (size_t i = 0; i < (all ? r->n_devs : n); i++) {
        const struct runner_dev *d = &r->devs[all ? i : num[i] - 1];
        if (d->group->qos > qos)
            qos = d->group->qos;
    }
    return qos;
}

/* The step's cmd_id (written with `as`, or made: unique per run and step) and payload. */
static size_t step_payload(struct runner *r, const struct scn_step *st, char *id, char *buf,
                           size_t cap)
{
    const struct scn_command_step *c = &st->u.command;
    if (c->cmd_id[0])
        snprintf(id, SCN_CMD_ID_MAX, "%s", c->cmd_id);
    else /* the run's own prefix: a flash kept from another run (--keep) knows no such id */
        snprintf(id, SCN_CMD_ID_MAX, "scn-%06llx-%u", (unsigned long long)(r->run_tag & 0xffffffu),
                 ++r->cmd_steps);
    return command_json(c, id, buf, cap);
}

/* Publishes the step's command on each topic with publish(); 0 or a negative error. */
static int for_each_topic(struct runner *r, const struct scn_step *st, const uint32_t *num,
                          size_t n, int (*publish)(void *, const char *, const char *, size_t),
                          void *ctx, char *info, char *err, size_t cap)
{
    char id[SCN_CMD_ID_MAX], payload[1024], topic[SCN_NAME_MAX + 40];
    size_t len = step_payload(r, st, id, payload, sizeof payload);
    if (len == 0) {
        snprintf(err, cap, "the command does not fit %zu bytes", sizeof payload);
        return HX_ERR_INVAL;
    }
    int rc = remember_id(r, id, st->u.command.cmd);
    bool all = st->sel.kind == SCN_SEL_ALL;
    for (size_t i = 0; i < (all ? 1 : n) && rc == 0; i++) {
        if (all)
            snprintf(topic, sizeof topic, "command/all");
        else
            snprintf(topic, sizeof topic, "scanners/%s/command", r->devs[num[i] - 1].id);
        rc = publish(ctx, topic, payload, len);
    }
    if (all || n == 1)
        snprintf(info, cap, "cmd_id %s on %s", id, topic);
    else
        snprintf(info, cap, "cmd_id %s on the command topics of %zu devices", id, n);
    return rc;
}

struct backend_pub {
    struct runner *r;
    int qos;
};

static int backend_publish(void *ctx, const char *topic, const char *payload, size_t len)
{
    struct backend_pub *b = ctx;
    return hx_backend_publish_raw(b->r->backend, topic, payload, len, b->qos);
}

/* ================================================================ forging */

/* A short-lived client with a device's credentials (owner: runner thread; handlers on the
   MQTT edge's thread). */
struct forger {
    struct sim_mqtt *c;
    atomic_int connected;  /* 0 waiting, 1 connected, -1 failed */
    atomic_int published;  /* INT_MIN waiting, else the code of published() */
    int mid;
};

static void forger_connected(void *ctx, bool sp)
{
    (void)sp;
    atomic_store(&((struct forger *)ctx)->connected, 1);
}

static void forger_failed(void *ctx, int code, const char *words)
{
    (void)code;
    (void)words;
    atomic_store(&((struct forger *)ctx)->connected, -1);
}

static void forger_published(void *ctx, int mid, int code)
{
    /* One publish is outstanding at a time; its outcome may come before
       sim_mqtt_publish has handed back its mid. */
    (void)mid;
    atomic_store(&((struct forger *)ctx)->published, code);
}

static const struct sim_mqtt_handlers forger_handlers = {
    .connected = forger_connected,
    .connect_failed = forger_failed,
    .published = forger_published,
};

static int forger_publish(void *ctx, const char *topic, const char *payload, size_t len)
{
    struct forger *f = ctx;
    atomic_store(&f->published, INT_MIN);
    int rc = sim_mqtt_publish(f->c, topic, payload, len, 1, false, &f->mid);
    int64_t end = runner_now_ms() + FORGE_WAIT_MS;
    while (rc == 0 && atomic_load(&f->published) == INT_MIN && runner_now_ms() < end)
        runner_sleep_ms(5);
    return rc;
}

/* Connects as device `from` (its user and password on a password / acl broker). */
static int forger_open(struct runner *r, uint32_t from, struct forger *f, char *err, size_t cap)
{
    const struct runner_dev *d = &r->devs[from - 1];
    char cid[SCN_NAME_MAX + 24];
    snprintf(cid, sizeof cid, "%s-forger", d->id);
    struct sim_mqtt_opts o;
    sim_mqtt_opts_defaults(&o);
    o.uri = r->broker_uri;
    o.client_id = cid;
    o.username = d->password[0] ? d->id : NULL;
    o.password = d->password[0] ? d->password : NULL;
    o.mqtt_version = d->group->mqtt == SCN_MQTT_5 ? 5 : 3;
    o.connect_timeout_s = 5;
    atomic_init(&f->connected, 0);
    atomic_init(&f->published, INT_MIN);
    struct sim_mqtt_connect_params cp = {.keepalive_s = 30, .clean_session = true};
    if (sim_mqtt_create(&o, &forger_handlers, f, &f->c) != SIM_OK ||
        sim_mqtt_connect(f->c, &cp) != SIM_OK) {
        snprintf(err, cap, "a client with the credentials of %s could not start", d->id);
        return HX_ERR_SYS;
    }
    int64_t end = runner_now_ms() + FORGE_WAIT_MS;
    while (atomic_load(&f->connected) == 0 && runner_now_ms() < end)
        runner_sleep_ms(5);
    if (atomic_load(&f->connected) != 1) {
        snprintf(err, cap, "a client with the credentials of %s could not connect", d->id);
        return HX_ERR_PROTO;
    }
    return 0;
}

static int forge_step(struct runner *r, const struct scn_step *st, const uint32_t *num, size_t n,
                      char *info, char *err, size_t cap)
{
    struct forger f = {0};
    int rc = forger_open(r, st->u.command.from, &f, err, cap);
    if (rc == 0)
        rc = for_each_topic(r, st, num, n, forger_publish, &f, info, err, cap);
    int code = atomic_load(&f.published);
    if (rc == 0) {
        /* Counted per step: the outcome of its (last) publish. */
        size_t l = strlen(info);
        if (code >= 0x80) {
            r->forged_refused++;
            snprintf(info + l, cap - l, "; the broker refused it: PUBACK 0x%02x %s", code,
                     fw_reason_code_name(code));
        } else if (code == 0) {
            r->forged_accepted++;
            snprintf(info + l, cap - l, "; the broker acknowledged it (PUBACK 0x00)");
        } else {
            snprintf(info + l, cap - l, "; no PUBACK within %d ms", FORGE_WAIT_MS);
        }
    }
    if (f.c) {
        sim_mqtt_disconnect(f.c);
        int64_t end = runner_now_ms() + 1000;
        while (sim_mqtt_is_disconnecting(f.c) && runner_now_ms() < end)
            runner_sleep_ms(5);
        sim_mqtt_destroy(f.c);
    }
    return rc;
}

int runner_command_step(struct runner *r, const struct scn_step *st, const uint32_t *num,
                        size_t n, char *info, char *err, size_t cap)
{
    if (st->action == SCN_ACT_FORGE_COMMAND)
        return forge_step(r, st, num, n, info, err, cap);
    struct backend_pub b = {r, command_qos(r, num, n, st->sel.kind == SCN_SEL_ALL)};
    int rc = for_each_topic(r, st, num, n, backend_publish, &b, info, err, cap);
    if (rc != 0 && !*err)
        snprintf(err, cap, "the backend could not publish the command: %s",
                 hx_backend_last_error());
    return rc;
}

/* ================================================================ replies */

static const struct runner_cmd_sent *sent_by_us(const struct runner *r, const char *id)
{
    for (size_t i = 0; i < r->n_cmd_ids; i++)
        if (strcmp(r->cmd_ids[i].id, id) == 0)
            return &r->cmd_ids[i];
    return NULL;
}

void runner_command_reply(struct runner *r, uint32_t num, const void *payload, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(payload, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "cmd_id");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "result");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(j, "reason");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    const cJSON *dup = cJSON_GetObjectItemCaseSensitive(data, "duplicate");
    if (!cJSON_IsString(id) || !cJSON_IsString(res)) {
        cJSON_Delete(j);
        return;
    }
    struct runner_reply rep = {.dev = num, .ok = strcmp(res->valuestring, "ok") == 0,
                               .duplicate = cJSON_IsTrue(dup)};
    if (cJSON_IsString(why))
        snprintf(rep.reason, sizeof rep.reason, "%s", why->valuestring);
    pthread_mutex_lock(&r->wlock);
    const struct runner_cmd_sent *sent = sent_by_us(r, id->valuestring);
    if (sent && sent->cmd == SCN_CMD_REBOOT && rep.ok && !rep.duplicate) {
        /* The device now publishes "offline" itself and disconnects cleanly: that offline,
           which comes after this reply on its connection, is not a Will (runner_watch.c). */
        atomic_store(&r->devs[num - 1].clean_off, true);
    }
    if (sent) {
        if (r->n_replies == r->cap_replies) {
            size_t ncap = r->cap_replies ? r->cap_replies * 2 : 1024;
            struct runner_reply *nr = realloc(r->replies, ncap * sizeof *nr);
            if (nr) {
                r->replies = nr;
                r->cap_replies = ncap;
            }
        }
        if (r->n_replies < r->cap_replies)
            r->replies[r->n_replies++] = rep;
    }
    pthread_mutex_unlock(&r->wlock);
    cJSON_Delete(j);
}

/* ================================================================ expectations */

static bool reply_matches(const struct scn_expect *e, const struct runner_reply *rep)
{
    if (e->reply == SCN_REPLY_OK && !rep->ok)
        return false;
    if (e->reply == SCN_REPLY_ERROR && rep->ok)
        return false;
    if (e->reply_duplicate && !rep->duplicate)
        return false;
    return !e->reply_reason[0] || strcmp(e->reply_reason, rep->reason) == 0;
}

static bool replies_eval(struct runner *r, const struct scn_expect *e, const uint32_t *num,
                         size_t n, char *obs, size_t cap)
{
    bool *in = calloc(r->n_devs ? r->n_devs : 1, sizeof *in);
    if (!in) {
        snprintf(obs, cap, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        in[num[i] - 1] = true;
    int64_t count = 0, ok = 0, error = 0, dup = 0;
    pthread_mutex_lock(&r->wlock);
    for (size_t i = 0; i < r->n_replies; i++) {
        const struct runner_reply *rep = &r->replies[i];
        if (!in[rep->dev - 1])
            continue;
        count += reply_matches(e, rep);
        ok += rep->ok;
        error += !rep->ok;
        dup += rep->duplicate;
    }
    pthread_mutex_unlock(&r->wlock);
    free(in);
    bool holds = scn_cmp_holds(e->cmp, count, e->value);
    char what[96];
    snprintf(what, sizeof what, "command replies%s%s%s%s%s", e->reply ? " " : "",
             scn_reply_result_name(e->reply), e->reply_duplicate ? " duplicate" : "",
             e->reply_reason[0] ? " reason " : "", e->reply_reason);
    char expect[48] = "";
    if (!holds)
        snprintf(expect, sizeof expect, ", expected %s %lld", scn_cmp_name(e->cmp),
                 (long long)e->value);
    snprintf(obs, cap, "%s = %lld from %zu device%s%s (ok %lld, error %lld, duplicate %lld)",
             what, (long long)count, n, n == 1 ? "" : "s", expect, (long long)ok,
             (long long)error, (long long)dup);
    return holds;
}

bool runner_command_eval(struct runner *r, const struct scn_expect *e, const uint32_t *num,
                         size_t n, char *obs, size_t cap)
{
    if (e->kind == SCN_EXP_REPLIES)
        return replies_eval(r, e, num, n, obs, cap);
    int64_t v = e->forged_refused ? r->forged_refused : r->forged_accepted;
    snprintf(obs, cap, "forged commands %s = %lld (refused %u, accepted %u)",
             e->forged_refused ? "refused" : "accepted", (long long)v, r->forged_refused,
             r->forged_accepted);
    return scn_cmp_holds(e->cmp, v, e->value);
}

void runner_command_dump(struct runner *r, FILE *f)
{
    pthread_mutex_lock(&r->wlock);
    fprintf(f, "# every cmd_id this run sent, then every reply to one of them: device, result,\n"
               "# reason, and whether it was answered from memory (duplicate)\n");
    for (size_t i = 0; i < r->n_cmd_ids; i++)
        fprintf(f, "sent  %-32s %s\n", r->cmd_ids[i].id, scn_command_name(r->cmd_ids[i].cmd));
    for (size_t i = 0; i < r->n_replies; i++) {
        const struct runner_reply *rep = &r->replies[i];
        fprintf(f, "reply %-24s %-5s %-16s%s\n", r->devs[rep->dev - 1].id,
                rep->ok ? "ok" : "error", rep->reason, rep->duplicate ? " duplicate" : "");
    }
    pthread_mutex_unlock(&r->wlock);
}

void runner_command_free(struct runner *r)
{
    free(r->replies);
    free(r->cmd_ids);
    r->replies = NULL;
    r->cmd_ids = NULL;
}
