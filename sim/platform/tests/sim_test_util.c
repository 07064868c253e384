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

#include <MQTTAsync.h>

#include "sim/paho.h"
#include "sim_test_util.h"

#define MAX_SEEN 256

struct watcher {
    MQTTAsync c;
    pthread_mutex_t mu;
    struct watched seen[MAX_SEEN];
    int n;
    atomic_int connected, subscribed, failed; /* set on Paho's thread */
};

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int w_arrived(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    struct watcher *w = ctx;
    (void)tlen;
    pthread_mutex_lock(&w->mu);
    if (w->n < MAX_SEEN) {
        struct watched *s = &w->seen[w->n++];
        snprintf(s->topic, sizeof(s->topic), "%s", topic);
        s->len = (size_t)m->payloadlen < sizeof(s->payload) - 1 ? (size_t)m->payloadlen
                                                                 : sizeof(s->payload) - 1;
        memcpy(s->payload, m->payload, s->len);
        s->payload[s->len] = '\0';
        s->retained = m->retained;
        s->qos = m->qos;
    }
    pthread_mutex_unlock(&w->mu);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void w_conn_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    atomic_store(&((struct watcher *)ctx)->connected, 1);
}

static void w_fail(void *ctx, MQTTAsync_failureData *r)
{
    (void)r;
    atomic_store(&((struct watcher *)ctx)->failed, 1);
}

static void w_sub_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    atomic_store(&((struct watcher *)ctx)->subscribed, 1);
}

static bool wait_flag(atomic_int *flag, atomic_int *failed, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (!atomic_load(flag) && !atomic_load(failed) && now_ms() < end)
        nap_ms(5);
    return atomic_load(flag);
}

struct watcher *watcher_start(const char *uri, const char *client_id, const char *filter)
{
    struct watcher *w = calloc(1, sizeof(*w));
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

    if (!w)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    if (sim_paho_create(&w->c, uri, client_id, NULL) != MQTTASYNC_SUCCESS)
        goto fail;
    MQTTAsync_setCallbacks(w->c, w, NULL, w_arrived, NULL);
    co.cleansession = 1;
    co.keepAliveInterval = 30;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.onSuccess = w_conn_ok;
    co.onFailure = w_fail;
    co.context = w;
    if (MQTTAsync_connect(w->c, &co) != 0 || !wait_flag(&w->connected, &w->failed, WAIT_MS))
        goto fail;
    ro.onSuccess = w_sub_ok;
    ro.onFailure = w_fail;
    ro.context = w;
    if (MQTTAsync_subscribe(w->c, filter, 1, &ro) != 0 ||
        !wait_flag(&w->subscribed, &w->failed, WAIT_MS))
        goto fail;
    if (MQTTAsync_subscribe(w->c, "sim-test/marker/#", 1, NULL) != 0)
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
    if (w->c)
        MQTTAsync_destroy(&w->c);
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
    MQTTAsync_message m = MQTTAsync_message_initializer;
    int before;

    snprintf(topic, sizeof(topic), "sim-test/marker/%s", marker_topic);
    before = watcher_count(w, topic, NULL);
    m.payload = "sync";
    m.payloadlen = 4;
    m.qos = 1;
    if (MQTTAsync_sendMessage(w->c, topic, &m, NULL) != 0)
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
