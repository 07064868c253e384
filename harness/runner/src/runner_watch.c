/*
 * runner_watch.c - the status watcher: one MQTT client (sim/mqtt.h) subscribed to
 * scanners/+/status that records every status message with its arrival time and retain
 * flag, for `will published`, `no will` and `retained status` expectations, and to
 * scanners/+/command/reply, whose replies it hands to runner_command.c. Both filters are
 * granted (SUBACK) before set-up goes on, so no reply of the run can be missed.
 *
 * How a Will is told apart from a device's own "offline" (both are the retained text
 * "offline" on the same topic): a device publishes "offline" itself only in a clean
 * power-off (fw_device_stop) or before a reboot by command, and only the runner powers
 * devices off or sends commands. So the runner sets
 * the device's clean_off flag *before* it powers the device off (runner_command.c: when the
 * ok reply to a reboot arrives, ahead of that offline), and the watcher clears it
 * when the device's next live "online" arrives (it reconnected). A live "offline" that
 * arrives while clean_off is clear can only come from the broker publishing the Will: the
 * connection ended without DISCONNECT (link cut, black-hole + keep-alive, broker-side
 * protocol error). The flag's window covers a late delivery of the device's own "offline"
 * too, because it stays set until the device is heard online again.
 *
 * Live vs stored: mosquitto delivers a message to an existing MQTT 3.1.1 subscription with
 * RETAIN 0, and a stored retained message (sent when the watcher (re)subscribes, e.g. after
 * a broker restart) with RETAIN 1. Only live messages are events; stored ones only refresh
 * what the watcher knows the retained value to be.
 *
 * The retained status of a device is the last status message seen for it: every message on
 * a status topic is published retained (the device's online/offline and the Will,
 * docs/protocol.md), so the last one is the one the broker holds.
 *
 * Threads: the MQTT edge (sim/mqtt.h) calls back on its own thread; everything shared is
 * under r->wlock, the flags are atomics. The edge does not reconnect by itself and a handler
 * may not connect its own client, so a thread of the watcher's own tries again once a
 * second after a loss; the client subscribes again in the connected handler (clean
 * session: a broker restart forgets it).
 */
#include "runner_internal.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/mqtt.h"

#define WATCH_RETRY_MS 1000 /* a reconnect attempt at most this often */

/* The watcher's client and the thread that reconnects it (r->watch). */
struct watch {
    struct sim_mqtt *c;
    struct sim_mqtt_connect_params cp;
    pthread_t thread;
    bool thread_running;
    atomic_bool stop;
};

static int ids_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int runner_ids_index(struct runner *r)
{
    r->sorted_ids = calloc(r->n_devs ? r->n_devs : 1, sizeof *r->sorted_ids);
    if (!r->sorted_ids)
        return HX_ERR_NOMEM;
    for (uint32_t i = 0; i < r->n_devs; i++)
        r->sorted_ids[i] = r->devs[i].id; /* points into the device: see runner_dev_by_id */
    qsort(r->sorted_ids, r->n_devs, sizeof *r->sorted_ids, ids_cmp);
    return 0;
}

void runner_ids_free(struct runner *r)
{
    free(r->sorted_ids);
    r->sorted_ids = NULL;
}

uint32_t runner_dev_by_id(const struct runner *r, const char *id, size_t len)
{
    char key[SCN_NAME_MAX + 12];
    if (len == 0 || len >= sizeof key || !r->sorted_ids)
        return 0;
    memcpy(key, id, len);
    key[len] = '\0';
    const char *k = key;
    char **hit = bsearch(&k, r->sorted_ids, r->n_devs, sizeof *r->sorted_ids, ids_cmp);
    if (!hit)
        return 0;
    /* The id is inside its struct runner_dev: recover the device from the pointer. */
    const struct runner_dev *d =
        (const struct runner_dev *)(*hit - offsetof(struct runner_dev, id));
    return d->num;
}

static void watch_record(struct runner *r, uint32_t num, bool online, bool retain)
{
    struct runner_dev *d = &r->devs[num - 1];
    bool will = false;
    if (!retain) {
        if (online)
            atomic_store(&d->clean_off, false);
        else
            will = !atomic_load(&d->clean_off);
    }
    pthread_mutex_lock(&r->wlock);
    r->status_last[num - 1] = online ? 1 : 0;
    if (r->n_ev == r->cap_ev) {
        size_t ncap = r->cap_ev ? r->cap_ev * 2 : 1024;
        struct runner_status_event *n = realloc(r->ev, ncap * sizeof *n);
        if (n) {
            r->ev = n;
            r->cap_ev = ncap;
        }
    }
    if (r->n_ev < r->cap_ev) {
        struct runner_status_event *e = &r->ev[r->n_ev++];
        e->t_ms = runner_now_ms() - r->t_start;
        e->dev = num;
        e->online = online;
        e->retain = retain;
        e->will = will;
    }
    pthread_mutex_unlock(&r->wlock);
}

static void watch_on_message(void *ctx, const struct sim_mqtt_message *m)
{
    struct runner *r = ctx;
    const char *topic = m->topic;
    size_t tl = strlen(topic);
    static const char pre[] = "scanners/", post[] = "/status";
    if (tl > sizeof pre - 1 + sizeof post - 1 && memcmp(topic, pre, sizeof pre - 1) == 0 &&
        memcmp(topic + tl - (sizeof post - 1), post, sizeof post - 1) == 0) {
        const char *id = topic + sizeof pre - 1;
        size_t idlen = tl - (sizeof pre - 1) - (sizeof post - 1);
        uint32_t num = runner_dev_by_id(r, id, idlen);
        bool online = m->len == 6 && memcmp(m->payload, "online", 6) == 0;
        bool offline = m->len == 7 && memcmp(m->payload, "offline", 7) == 0;
        if (num && (online || offline))
            watch_record(r, num, online, m->retain);
        return;
    }
    static const char rpost[] = "/command/reply";
    if (tl > sizeof pre - 1 + sizeof rpost - 1 && memcmp(topic, pre, sizeof pre - 1) == 0 &&
        memcmp(topic + tl - (sizeof rpost - 1), rpost, sizeof rpost - 1) == 0) {
        uint32_t num = runner_dev_by_id(r, topic + sizeof pre - 1,
                                        tl - (sizeof pre - 1) - (sizeof rpost - 1));
        if (num)
            runner_command_reply(r, num, m->payload, m->len);
    }
}

static void watch_on_subscribed(void *ctx, int mid, int n, const int *codes)
{
    struct runner *r = ctx;
    (void)mid;
    bool granted = n == 2;
    for (int i = 0; i < n; i++)
        granted &= codes[i] >= 0 && codes[i] < 0x80;
    if (granted)
        atomic_store(&r->watch_subscribed, true);
    else
        atomic_fetch_add(&r->watch_failures, 1);
}

static void watch_on_connected(void *ctx, bool session_present)
{
    struct runner *r = ctx;
    struct watch *w = r->watch;
    const char *filters[] = {"scanners/+/status", "scanners/+/command/reply"};
    int qos[] = {1, 1};
    (void)session_present;
    /* Non-blocking: allowed inside a handler (sim/mqtt.h). */
    if (sim_mqtt_subscribe(w->c, 2, filters, qos, NULL) != SIM_OK)
        atomic_fetch_add(&r->watch_failures, 1);
}

static void watch_on_connect_failed(void *ctx, int code, const char *words)
{
    struct runner *r = ctx;
    (void)code;
    (void)words;
    atomic_fetch_add(&r->watch_failures, 1);
}

static const struct sim_mqtt_handlers watch_handlers = {
    .connected = watch_on_connected,
    .connect_failed = watch_on_connect_failed,
    .message = watch_on_message,
    .subscribed = watch_on_subscribed,
};

/* The watcher's own thread: after a loss or a failed attempt, connect again (at most once
   a second), until runner_watch_stop. */
static void *watch_thread(void *arg)
{
    struct watch *w = arg;
    int64_t next_ms = runner_now_ms() + WATCH_RETRY_MS;
    while (!atomic_load(&w->stop)) {
        runner_sleep_ms(20);
        if (sim_mqtt_is_connected(w->c) || runner_now_ms() < next_ms)
            continue;
        next_ms = runner_now_ms() + WATCH_RETRY_MS;
        sim_mqtt_connect(w->c, &w->cp); /* SIM_ERR_STATE while an attempt runs: wait */
    }
    return NULL;
}

int runner_watch_start(struct runner *r, const char *uri, const char *user, const char *pw,
                       const char *cafile, const char *certfile, const char *keyfile)
{
    char cid[64];
    snprintf(cid, sizeof cid, "scansim-watcher-%ld-%llx", (long)getpid(),
             (unsigned long long)(r->seed & 0xffffff));
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
        return HX_ERR_NOMEM;
    r->watch = w;
    struct sim_mqtt_opts o;
    sim_mqtt_opts_defaults(&o);
    o.uri = uri;
    o.client_id = cid;
    o.username = user;
    o.password = pw;
    o.cafile = cafile;
    o.certfile = certfile;
    o.keyfile = keyfile;
    o.connect_timeout_s = 5;
    w->cp = (struct sim_mqtt_connect_params){.keepalive_s = 30, .clean_session = true};
    if (sim_mqtt_create(&o, &watch_handlers, r, &w->c) != SIM_OK)
        return HX_ERR_SYS;
    if (sim_mqtt_connect(w->c, &w->cp) != SIM_OK)
        return HX_ERR_SYS;
    if (pthread_create(&w->thread, NULL, watch_thread, w) != 0)
        return HX_ERR_SYS;
    w->thread_running = true;
    int64_t end = runner_now_ms() + 10000;
    while (!atomic_load(&r->watch_subscribed) && runner_now_ms() < end) {
        if (atomic_load(&r->watch_failures) > 0)
            return HX_ERR_PROTO;
        runner_sleep_ms(10);
    }
    return atomic_load(&r->watch_subscribed) ? 0 : HX_ERR_TIMEOUT;
}

void runner_watch_stop(struct runner *r)
{
    struct watch *w = r->watch;
    if (!w)
        return;
    if (w->thread_running) {
        atomic_store(&w->stop, true);
        pthread_join(w->thread, NULL); /* no reconnect from here on */
    }
    if (w->c && sim_mqtt_is_connected(w->c)) {
        sim_mqtt_disconnect(w->c);
        int64_t end = runner_now_ms() + 1000;
        while (sim_mqtt_is_disconnecting(w->c) && runner_now_ms() < end)
            runner_sleep_ms(10);
    }
    sim_mqtt_destroy(w->c);
    free(w);
    r->watch = NULL;
}

void runner_watch_dump(struct runner *r, FILE *f)
{
    pthread_mutex_lock(&r->wlock);
    fprintf(f, "# every status message the watcher saw: time since start, device, payload,\n"
               "# how it arrived (live / stored retained), and whether it counts as a Will\n");
    for (size_t i = 0; i < r->n_ev; i++) {
        const struct runner_status_event *e = &r->ev[i];
        fprintf(f, "%8.3fs %-24s %-7s %-8s%s\n", (double)e->t_ms / 1000.0, r->devs[e->dev - 1].id,
                e->online ? "online" : "offline", e->retain ? "retained" : "live",
                e->will ? " WILL" : "");
    }
    pthread_mutex_unlock(&r->wlock);
}
