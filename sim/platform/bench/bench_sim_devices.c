/*
 * bench_sim_devices.c - figures for many simulated devices in one process: memory per
 * device (RSS), time to connect them all, and the CPU that ticking them costs.
 *
 *   sim_bench_devices [-n DEVICES] [-l LOOPS] [-t IDLE_SECONDS] [-u URI] [-c CONNECT_LIMIT]
 *
 * Starts a private mosquitto (hx_broker) unless -u names a broker, creates the devices on
 * LOOPS loop threads (default: one per core), powers them on, waits until all are online,
 * lets them idle (50 ms ticks), and prints the figures. Not a test: nothing is asserted.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "hx/broker.h"
#include "sim/clock.h"
#include "sim/device.h"
#include "sim/err.h"
#include "sim/loop.h"

static atomic_int online_count, failed_count;

static void on_state(void *ctx, struct sim_device *dev, const struct sim_state_change *s)
{
    (void)ctx;
    (void)dev;
    if (s->state == SIM_CONN_CONNECTED)
        atomic_fetch_add(&online_count, 1);
    else if (s->state == SIM_CONN_FAILED)
        atomic_fetch_add(&failed_count, 1);
}

static long rss_kib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* CPU seconds of each thread of this process (to tell the loops from Paho's threads). */
static void thread_cpu(double *out, char names[][16], int *count, int cap)
{
    char path[300], buf[512];
    long tck = sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    while (d && n < cap && (e = readdir(d))) {
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(buf, sizeof(buf), f)) {
            char *l = strchr(buf, '('), *r = strrchr(buf, ')');
            unsigned long ut = 0, st = 0;
            if (l && r) {
                size_t len = (size_t)(r - l - 1) < 15 ? (size_t)(r - l - 1) : 15;
                memcpy(names[n], l + 1, len);
                names[n][len] = '\0';
                /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt
                   cmajflt utime stime */
                if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                           &st) == 2)
                    out[n++] = (double)(ut + st) / (double)tck;
            }
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    *count = n;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* The run: its options, broker, loops and devices. */
struct bench {
    int n, loops, idle_s;
    const char *uri;           /* -u, else the private broker's */
    struct hx_broker *broker;  /* NULL with -u */
    struct sim_loop **lp;
    struct sim_device **dev;
    long rss0;                 /* KiB before the devices were created */
};

/* The options; 0, or the exit code (2) after a usage error. */
static int bench_parse(int argc, char **argv, struct bench *b)
{
    int opt;

    b->n = 1000;
    b->loops = (int)sysconf(_SC_NPROCESSORS_ONLN);
    b->idle_s = 5;
    while ((opt = getopt(argc, argv, "n:l:t:u:c:")) != -1) {
        switch (opt) {
        case 'n': b->n = atoi(optarg); break;
        case 'l': b->loops = atoi(optarg); break;
        case 't': b->idle_s = atoi(optarg); break;
        case 'u': b->uri = optarg; break;
        case 'c': sim_transport_set_connect_limit(atoi(optarg)); break;
        default:
            fprintf(stderr, "usage: %s [-n devices] [-l loops] [-t idle_s] [-u uri]\n", argv[0]);
            return 2;
        }
    }
    if (b->n < 1 || b->loops < 1)
        return 2;
    return 0;
}

/* A private mosquitto without a connection limit, unless -u named a broker. */
static int bench_start_broker(struct bench *b)
{
    struct hx_broker_opts bo = { 0 };

    if (b->uri)
        return 0;
    bo.persistence = false;
    bo.extra_config = "max_connections -1\n";
    if (hx_broker_start(&bo, &b->broker) != 0) {
        fprintf(stderr, "broker: %s\n", hx_broker_last_error());
        return -1;
    }
    b->uri = hx_broker_uri(b->broker);
    return 0;
}

static int bench_start_loops(struct bench *b)
{
    for (int i = 0; i < b->loops; i++) {
        char name[16];
        struct sim_loop_opts lo;
        sim_loop_opts_defaults(&lo);
        snprintf(name, sizeof(name), "loop-%d", i);
        lo.name = name;
        if (sim_loop_create(&lo, &b->lp[i]) || sim_loop_start_thread(b->lp[i]))
            return -1;
    }
    return 0;
}

/* The devices, round-robin over the loops, in memory and headless. */
static int bench_create_devices(struct bench *b, const struct sim_device_observer *obs)
{
    for (int i = 0; i < b->n; i++) {
        struct sim_device_opts o;
        char id[32];
        snprintf(id, sizeof(id), "bench-%05d", i);
        sim_device_opts_defaults(&o, id, b->uri);
        o.storage = SIM_STORAGE_MEMORY;
        o.display_frames = 0;
        o.observer = obs;
        o.fw.keepalive_s = 60;
        if (sim_device_create(b->lp[i % b->loops], &o, &b->dev[i]) != SIM_OK) {
            fprintf(stderr, "create %s failed\n", id);
            return -1;
        }
    }
    return 0;
}

/* Power all on, wait (up to 2 minutes) until all are online, print the figures. */
static void bench_connect_all(const struct bench *b, long rss1)
{
    uint64_t t0 = sim_clock_ms(), t1;
    long rss2;
    int n = b->n;

    for (int i = 0; i < n; i++)
        sim_device_start(b->dev[i]);
    printf("start calls done after %.2f s, %d online so far\n",
           (double)(sim_clock_ms() - t0) / 1000.0, atomic_load(&online_count));
    while (atomic_load(&online_count) < n && sim_clock_ms() - t0 < 120000)
        usleep(20000);
    t1 = sim_clock_ms();
    rss2 = rss_kib();
    printf("devices %d, loops %d, online %d, connect failures %d\n", n, b->loops,
           atomic_load(&online_count), atomic_load(&failed_count));
    printf("connect all: %.2f s (%.0f devices/s)\n", (double)(t1 - t0) / 1000.0,
           (double)n * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1));
    printf("RSS created (not connected): %.1f KiB/device\n", (double)(rss1 - b->rss0) / n);
    printf("RSS online: %.1f KiB/device (process %ld KiB)\n", (double)(rss2 - b->rss0) / n, rss2);
}

/* One loop's ticks between two readings of its stats. */
static void bench_print_loop(int i, const struct sim_loop_stats *before,
                             const struct sim_loop_stats *after)
{
    uint64_t ticks = after->ticks - before->ticks;

    printf("loop %d: %zu devices, %llu ticks, %.2f ms per tick (%.1f us per device)\n", i,
           after->targets, (unsigned long long)ticks,
           ticks ? (double)(after->tick_ns_total - before->tick_ns_total) / ticks / 1e6
                 : 0.0,
           ticks && after->targets
               ? (double)(after->tick_ns_total - before->tick_ns_total) / ticks / 1e3 /
                     (double)after->targets
               : 0.0);
}

/* Let the online devices idle for idle_s and print what it cost: CPU per thread, per
   loop tick and in all, and memory. */
static void bench_idle(const struct bench *b)
{
    struct sim_loop_stats before[64], after[64];
    double tc0[64], tc1[64], c0, c1;
    char tn0[64][16], tn1[64][16];
    int nt0 = 0, nt1 = 0;
    uint64_t t0, t1;

    for (int i = 0; i < b->loops && i < 64; i++)
        sim_loop_stats(b->lp[i], &before[i]);
    thread_cpu(tc0, tn0, &nt0, 64);
    c0 = cpu_s();
    t0 = sim_clock_ms();
    sleep((unsigned)b->idle_s);
    t1 = sim_clock_ms();
    c1 = cpu_s();
    thread_cpu(tc1, tn1, &nt1, 64);
    for (int i = 0; i < nt1 && i < nt0; i++)
        if (tc1[i] - tc0[i] > 0.005)
            printf("  thread %-15s %.1f %% of a core\n", tn1[i],
                   100.0 * (tc1[i] - tc0[i]) / ((double)(t1 - t0) / 1000.0));
    long rss3 = rss_kib();
    for (int i = 0; i < b->loops && i < 64; i++) {
        sim_loop_stats(b->lp[i], &after[i]);
        bench_print_loop(i, &before[i], &after[i]);
    }
    printf("idle CPU (ticks + Paho keep-alive): %.1f %% of one core over %.1f s\n",
           100.0 * (c1 - c0) / ((double)(t1 - t0) / 1000.0), (double)(t1 - t0) / 1000.0);
    printf("RSS after idle: %.1f KiB/device\n", (double)(rss3 - b->rss0) / b->n);
}

/* Stop and destroy the devices (timed), then the loops and the broker. */
static void bench_teardown(struct bench *b)
{
    uint64_t t0 = sim_clock_ms();

    for (int i = 0; i < b->n; i++)
        if (b->dev[i])
            sim_device_stop(b->dev[i]);
    printf("stop all: %.2f s\n", (double)(sim_clock_ms() - t0) / 1000.0);
    t0 = sim_clock_ms();
    for (int i = 0; i < b->n; i++)
        sim_device_destroy(b->dev[i]);
    printf("destroy all: %.2f s\n", (double)(sim_clock_ms() - t0) / 1000.0);
    for (int i = 0; i < b->loops; i++)
        sim_loop_free(b->lp[i]);
    free(b->dev);
    free(b->lp);
    hx_broker_free(b->broker);
}

int main(int argc, char **argv)
{
    struct bench b = { 0 };
    struct sim_device_observer obs = { .on_state = on_state };
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((rc = bench_parse(argc, argv, &b)) != 0)
        return rc;
    if (bench_start_broker(&b) != 0)
        return 1;
    rc = 1;
    b.lp = calloc((size_t)b.loops, sizeof(*b.lp));
    b.dev = calloc((size_t)b.n, sizeof(*b.dev));
    if (bench_start_loops(&b) != 0)
        goto out;
    b.rss0 = rss_kib();
    if (bench_create_devices(&b, &obs) != 0)
        goto out;
    bench_connect_all(&b, rss_kib());
    bench_idle(&b);
    rc = 0;
out:
    bench_teardown(&b);
    return rc;
}
