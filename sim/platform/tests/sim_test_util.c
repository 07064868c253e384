/*
 * sim_test_util.c - helpers for the broker tests (see sim_test_util.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/mqtt.h"
#include "sim_test_util.h"
#include "sim/clock.h"

#define MAX_SEEN 256

struct watcher {
    struct sim_mqtt *c;
    pthread_mutex_t mu;
    struct watched seen[MAX_SEEN];
    int n;
    atomic_int connected, subscribed, failed; /* set on the edge's thread */
};

uint64_t now_ms(void)
{
    return sim_clock_ms();
}

void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void w_arrived(void *ctx, const struct sim_mqtt_message *m)
{
    struct watcher *w = ctx;

    pthread_mutex_lock(&w->mu);
    if (w->n < MAX_SEEN) {
        struct watched *s = &w->seen[w->n++];
        snprintf(s->topic, sizeof(s->topic), "%s", m->topic);
        s->len = m->len < sizeof(s->payload) - 1 ? m->len : sizeof(s->payload) - 1;
        memcpy(s->payload, m->payload, s->len);
        s->payload[s->len] = '\0';
        s->retained = m->retain;
        s->qos = m->qos;
    }
    pthread_mutex_unlock(&w->mu);
}

static void w_connected(void *ctx, bool session_present)
{
    (void)session_present;
    atomic_store(&((struct watcher *)ctx)->connected, 1);
}

static void w_failed(void *ctx, int code, const char *words)
{
    (void)code;
    (void)words;
    atomic_store(&((struct watcher *)ctx)->failed, 1);
}

static void w_subscribed(void *ctx, int mid, int n, const int *codes)
{
    (void)mid;
    if (n >= 1 && codes[0] >= 0 && codes[0] < 0x80)
        atomic_fetch_add(&((struct watcher *)ctx)->subscribed, 1);
    else
        atomic_store(&((struct watcher *)ctx)->failed, 1);
}

static const struct sim_mqtt_handlers watcher_handlers = {
    .connected = w_connected,
    .connect_failed = w_failed,
    .message = w_arrived,
    .subscribed = w_subscribed,
};

static bool wait_count(atomic_int *count, int want, atomic_int *failed, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (atomic_load(count) < want && !atomic_load(failed) && now_ms() < end)
        nap_ms(5);
    return atomic_load(count) >= want;
}

/* The watcher uses the process's default client library, as the code under test does. */
struct watcher *watcher_start(const char *uri, const char *client_id, const char *filter)
{
    struct watcher *w = calloc(1, sizeof(*w));
    struct sim_mqtt_opts o;
    struct sim_mqtt_connect_params cp = { 30, true, NULL };
    const char *filters[2] = { filter, "sim-test/marker/#" };
    int qos[2] = { 1, 1 };

    if (!w)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    sim_mqtt_opts_defaults(&o);
    o.uri = uri;
    o.client_id = client_id;
    if (sim_mqtt_create(&o, &watcher_handlers, w, &w->c) != SIM_OK)
        goto fail;
    if (sim_mqtt_connect(w->c, &cp) != SIM_OK ||
        !wait_count(&w->connected, 1, &w->failed, WAIT_MS))
        goto fail;
    if (sim_mqtt_subscribe(w->c, 1, &filters[0], &qos[0], NULL) != SIM_OK ||
        !wait_count(&w->subscribed, 1, &w->failed, WAIT_MS))
        goto fail;
    if (sim_mqtt_subscribe(w->c, 1, &filters[1], &qos[1], NULL) != SIM_OK ||
        !wait_count(&w->subscribed, 2, &w->failed, WAIT_MS))
        goto fail;
    return w;
fail:
    watcher_stop(w);
    return NULL;
}

void watcher_stop(struct watcher *w)
{
    if (!w)
        return;
    sim_mqtt_destroy(w->c);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int watcher_count(struct watcher *w, const char *topic, const char *payload)
{
    int n = 0;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->seen[i].topic, topic) == 0 &&
            (!payload || strcmp(w->seen[i].payload, payload) == 0))
            n++;
    pthread_mutex_unlock(&w->mu);
    return n;
}

bool watcher_wait(struct watcher *w, const char *topic, const char *payload, int n,
                  int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (watcher_count(w, topic, payload) < n) {
        if (now_ms() >= end)
            return false;
        nap_ms(5);
    }
    return true;
}

bool watcher_get(struct watcher *w, const char *topic, int i, struct watched *out)
{
    bool found = false;
    pthread_mutex_lock(&w->mu);
    for (int k = 0; k < w->n; k++) {
        if (strcmp(w->seen[k].topic, topic) != 0)
            continue;
        if (i-- == 0) {
            *out = w->seen[k];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

bool watcher_sync(struct watcher *w, const char *marker_topic)
{
    char topic[160];
    int before;

    snprintf(topic, sizeof(topic), "sim-test/marker/%s", marker_topic);
    before = watcher_count(w, topic, NULL);
    if (sim_mqtt_publish(w->c, topic, "sync", 4, 1, false, NULL) != SIM_OK)
        return false;
    return watcher_wait(w, topic, NULL, before + 1, WAIT_MS);
}

int run_mosquitto_pub(const char *uri, const char *topic, const char *payload, int qos,
                      bool retain)
{
    char url[300], q[4];
    const char *hostport = strstr(uri, "://");
    pid_t pid;
    int status;

    snprintf(url, sizeof(url), "mqtt://%s/%s", hostport ? hostport + 3 : uri, topic);
    snprintf(q, sizeof(q), "%d", qos);
    pid = fork();
    if (pid == 0) {
        if (retain)
            execl(MOSQUITTO_PUB, "mosquitto_pub", "-L", url, "-q", q, "-m", payload, "-r",
                  (char *)NULL);
        else
            execl(MOSQUITTO_PUB, "mosquitto_pub", "-L", url, "-q", q, "-m", payload,
                  (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;
    bool found = false;

    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        found = strstr(buf, needle) != NULL;
    }
    free(buf);
    fclose(f);
    return found;
}

bool wait_file_contains(const char *path, const char *needle, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (!file_contains(path, needle)) {
        if (now_ms() >= end)
            return false;
        nap_ms(10);
    }
    return true;
}
