/*
 * sim_test_util.c - helpers for the broker tests (see sim_test_util.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim/clock.h"
#include "sim/err.h"
#include "sim/test_mqtt.h"
#include "sim_test_util.h"

uint64_t now_ms(void)
{
    return sim_clock_ms();
}

void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* The watcher uses the process's default client library, as the code under test does. */
struct tmq *watcher_start(const char *uri, const char *client_id, const char *filter)
{
    struct tmq_opts o;
    struct tmq *w = NULL;

    tmq_opts_defaults(&o);
    o.uri = uri;
    o.client_id = client_id;
    o.wait_ms = WAIT_MS;
    if (tmq_open(&o, &w) != SIM_OK)
        return NULL;
    if (tmq_subscribe(w, filter, 1, NULL) != SIM_OK ||
        tmq_subscribe(w, "sim-test/marker/#", 1, NULL) != SIM_OK) {
        tmq_free(w);
        return NULL;
    }
    return w;
}

bool watcher_sync(struct tmq *w, const char *marker_topic)
{
    char topic[160];
    int before;

    snprintf(topic, sizeof(topic), "sim-test/marker/%s", marker_topic);
    before = tmq_count_on(w, topic, NULL);
    if (tmq_publish_start(w, topic, "sync", 4, 1, false, NULL) != SIM_OK)
        return false;
    return tmq_wait_count_on(w, topic, NULL, before + 1, WAIT_MS);
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
