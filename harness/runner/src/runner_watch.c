/*
 * runner_watch.c - the status watcher: one Paho MQTTAsync client subscribed to
 * scanners/+/status that records every status message with its arrival time and retain
 * flag, for `will published`, `no will` and `retained status` expectations.
 *
 * How a Will is told apart from a device's own "offline" (both are the retained text
 * "offline" on the same topic): a device publishes "offline" itself only in a clean
 * power-off (fw_device_stop), and only the runner powers devices off. So the runner sets
 * the device's clean_off flag *before* it powers the device off, and the watcher clears it
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
 * Threads: Paho calls back on its own thread; everything shared is under r->wlock, the
 * flags are atomics. The client reconnects by itself (automaticReconnect) and subscribes
 * again in the connected callback (clean session: a broker restart forgets it).
 */
#include "runner_internal.h"

#include <MQTTAsync.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/paho.h"

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

static int watch_on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct runner *r = ctx;
    size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    static const char pre[] = "scanners/", post[] = "/status";
    if (tl > sizeof pre - 1 + sizeof post - 1 && memcmp(topic, pre, sizeof pre - 1) == 0 &&
        memcmp(topic + tl - (sizeof post - 1), post, sizeof post - 1) == 0) {
        const char *id = topic + sizeof pre - 1;
        size_t idlen = tl - (sizeof pre - 1) - (sizeof post - 1);
        uint32_t num = runner_dev_by_id(r, id, idlen);
        bool online = m->payloadlen == 6 && memcmp(m->payload, "online", 6) == 0;
        bool offline = m->payloadlen == 7 && memcmp(m->payload, "offline", 7) == 0;
        if (num && (online || offline))
            watch_record(r, num, online, m->retained != 0);
    }
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void watch_on_subscribed(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    struct runner *r = ctx;
    atomic_store(&r->watch_subscribed, true);
}

static void watch_on_sub_failed(void *ctx, MQTTAsync_failureData *d)
{
    (void)d;
    struct runner *r = ctx;
    atomic_fetch_add(&r->watch_failures, 1);
}

static void watch_on_connected(void *ctx, char *cause)
{
    (void)cause;
    struct runner *r = ctx;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = watch_on_subscribed;
    ro.onFailure = watch_on_sub_failed;
    ro.context = r;
    /* Non-blocking: allowed inside a callback (REFERENCE.md). */
    if (MQTTAsync_subscribe((MQTTAsync)r->watch, "scanners/+/status", 1, &ro) !=
        MQTTASYNC_SUCCESS)
        atomic_fetch_add(&r->watch_failures, 1);
}

static void watch_on_connect_failed(void *ctx, MQTTAsync_failureData *d)
{
    (void)d;
    struct runner *r = ctx;
    atomic_fetch_add(&r->watch_failures, 1);
}

static void watch_on_lost(void *ctx, char *cause)
{
    (void)ctx;
    (void)cause; /* automaticReconnect takes over */
}

int runner_watch_start(struct runner *r, const char *uri, const char *user, const char *pw,
                       const char *cafile, const char *certfile, const char *keyfile)
{
    char cid[64];
    snprintf(cid, sizeof cid, "scansim-watcher-%ld-%llx", (long)getpid(),
             (unsigned long long)(r->seed & 0xffffff));
    MQTTAsync c = NULL;
    if (sim_paho_create(&c, uri, cid, NULL) != MQTTASYNC_SUCCESS)
        return HX_ERR_SYS;
    r->watch = c;
    if (MQTTAsync_setCallbacks(c, r, watch_on_lost, watch_on_message, NULL) != MQTTASYNC_SUCCESS ||
        MQTTAsync_setConnected(c, r, watch_on_connected) != MQTTASYNC_SUCCESS)
        return HX_ERR_SYS;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.keepAliveInterval = 30;
    co.cleansession = 1;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 1;
    co.connectTimeout = 5;
    co.username = user;
    co.password = pw;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    sim_paho_tls(&co, &ssl, uri, cafile, certfile, keyfile, true);
    co.onFailure = watch_on_connect_failed;
    co.context = r;
    if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS)
        return HX_ERR_SYS;
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
    if (!r->watch)
        return;
    MQTTAsync c = (MQTTAsync)r->watch;
    if (MQTTAsync_isConnected(c)) {
        MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
        dopt.timeout = 500;
        MQTTAsync_disconnect(c, &dopt);
        int64_t end = runner_now_ms() + 1000;
        while (MQTTAsync_isConnected(c) && runner_now_ms() < end)
            runner_sleep_ms(10);
    }
    MQTTAsync_destroy(&c);
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
