/*
 * bench_hx_backend.c - how many registrations a second the backend takes. Not a test: run by
 * hand (build: cmake --build BUILD --target hx_backend_bench).
 *
 *   hx_backend_bench ledger [registrations] [db-file]
 *       the ledger alone: registrations are fed with hx_backend_inject (no network), timed
 *       until all are processed; also the rate from the backend thread's busy time.
 *   hx_backend_bench e2e [registrations] [publishers] [db-file]
 *       end to end: `publishers` mosquitto_pub -l processes (QoS 1, -M 1000) -> mosquitto ->
 *       the backend's MQTT client -> queue -> SQLite, timed until the ledger has them all.
 *
 * Both publish the items first (not timed) and add 1 % duplicate deliveries (same key).
 */
#include "hx/backend.h"
#include "hx/broker.h"
#include "sim/clock.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef MOSQUITTO_PUB
#define MOSQUITTO_PUB "mosquitto_pub"
#endif

static double now_s(void)
{
    return (double)sim_clock_us() / 1e6;
}

static int registration(char *out, size_t n, int item, int dev)
{
    return snprintf(out, n,
                    "{\"item_id\":%d,\"tag_quantity\":1,\"tag\":\"%08X\",\"device_id\":"
                    "\"bench-%d\",\"seq\":%d}", item, (unsigned)item, dev, item);
}

static void print_report(struct hx_backend *b, int n, int dups, double secs)
{
    struct hx_ledger_report r;
    hx_backend_report(b, &r);
    printf("  %d registrations + %d duplicates in %.2f s -> %.0f messages/s\n", n, dups, secs,
           (n + dups) / secs);
    printf("  backend thread busy %.0f ms in %llu batches -> %.0f messages/s of ledger "
           "capacity\n", r.ledger_busy_ms, (unsigned long long)r.ledger_batches,
           (double)(r.registrations_received) / (r.ledger_busy_ms / 1000.0));
    printf("  registered_once %llu twice %llu duplicates %llu lost %llu malformed %llu\n",
           (unsigned long long)r.registered_once, (unsigned long long)r.registered_twice,
           (unsigned long long)r.duplicate_deliveries, (unsigned long long)r.lost,
           (unsigned long long)r.malformed);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ledger";
    bool e2e = strcmp(mode, "e2e") == 0;
    int n = argc > 2 ? atoi(argv[2]) : 100000;
    int pubs = e2e && argc > 3 ? atoi(argv[3]) : 2;
    const char *db = argc > (e2e ? 4 : 3) ? argv[e2e ? 4 : 3] : NULL;
    int dups = n / 100, rc = 1;
    struct hx_broker *broker = NULL;
    struct hx_backend *b = NULL;
    if (n <= 0 || pubs <= 0 || (!e2e && strcmp(mode, "ledger") != 0)) {
        fprintf(stderr, "usage: %s ledger|e2e [registrations] [publishers (e2e)] [db-file]\n",
                argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct hx_broker_opts bo = {.persistence = false};
    if (hx_broker_start(&bo, &broker) != HX_OK) {
        fprintf(stderr, "broker: %s\n", hx_broker_last_error());
        goto exit;
    }
    struct hx_backend_opts o = {.uri = hx_broker_uri(broker), .db_path = db};
    if (hx_backend_create(&o, &b) != HX_OK || hx_backend_start(b) != HX_OK) {
        fprintf(stderr, "backend: %s\n", hx_backend_last_error());
        goto exit;
    }
    double t0 = now_s();
    for (int i = 1; i <= n; i++)
        if (hx_backend_publish_item(b, NULL, i, "Bench item", 1) != HX_OK) {
            fprintf(stderr, "publish: %s\n", hx_backend_last_error());
            goto exit;
        }
    double t_items = now_s() - t0;
    printf("%s, ledger %s\n  items published: %d in %.2f s (%.0f/s)\n", mode,
           db ? db : "in memory", n, t_items, n / t_items);
    hx_backend_sync(b, 60000);

    char line[200];
    double t1 = now_s();
    if (!e2e) {
        for (int i = 1; i <= n + dups; i++) {
            int item = i <= n ? i : i - n;
            int len = registration(line, sizeof line, item, item % 4);
            hx_backend_inject(b, "item_registered", line, (size_t)len);
        }
    } else {
        FILE **p = calloc((size_t)pubs, sizeof *p);
        if (!p)
            goto exit;
        for (int k = 0; k < pubs; k++) {
            char cmd[400];
            snprintf(cmd, sizeof cmd, "%s -h 127.0.0.1 -p %u -q 1 -M 1000 -i bench-pub-%d -t "
                     "item_registered -l", MOSQUITTO_PUB, (unsigned)hx_broker_port(broker), k);
            p[k] = popen(cmd, "w");
        }
        for (int i = 1; i <= n + dups; i++) {
            int item = i <= n ? i : i - n;
            registration(line, sizeof line, item, item % pubs);
            if (p[item % pubs])
                fprintf(p[item % pubs], "%s\n", line);
        }
        for (int k = 0; k < pubs; k++)
            if (p[k])
                pclose(p[k]);
        free(p);
    }
    if (hx_backend_wait_registered(b, (uint64_t)n, 300000) != HX_OK) {
        fprintf(stderr, "%s\n", hx_backend_last_error());
        goto exit;
    }
    /* the duplicates too */
    struct hx_ledger_report r;
    for (double end = now_s() + 60;;) {
        hx_backend_report(b, &r);
        if (r.registrations_received >= (uint64_t)(n + dups) || now_s() > end)
            break;
        usleep(1000);
    }
    print_report(b, n, dups, now_s() - t1);
    rc = 0;
exit:
    hx_backend_free(b);
    hx_broker_free(broker);
    return rc;
}
