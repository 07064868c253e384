/*
 * bench_hx_backend.c - how many registrations a second the backend's ledger takes, end to end
 * (publishers -> mosquitto -> Paho -> queue -> SQLite). Not a test: run by hand.
 *
 *   hx_backend_bench [registrations] [publishers] [db-file]
 *
 * Items are published first (not timed); then `publishers` Paho clients send one registration
 * per item (QoS 1, plus 1 % duplicates) as fast as the broker takes them, and we time until the
 * ledger has registered them all.
 */
#include "hx/backend.h"
#include "hx/broker.h"

#include <MQTTAsync.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile int connected_count;

static void on_conn(void *ctx, MQTTAsync_successData *d)
{
    (void)ctx;
    (void)d;
    __atomic_add_fetch(&connected_count, 1, __ATOMIC_SEQ_CST);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int pubs = argc > 2 ? atoi(argv[2]) : 4;
    const char *db = argc > 3 ? argv[3] : NULL;
    int rc = 1;
    struct hx_broker *broker = NULL;
    struct hx_backend *b = NULL;
    MQTTAsync *cl = calloc((size_t)pubs, sizeof *cl);
    if (n <= 0 || pubs <= 0 || !cl)
        return 2;
    if (hx_broker_start(NULL, &broker) != HX_OK) {
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
    for (int p = 0; p < pubs; p++) {
        char id[32];
        snprintf(id, sizeof id, "bench-%d", p);
        MQTTAsync_create(&cl[p], hx_broker_uri(broker), id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
        MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
        co.maxInflight = 4096;
        co.onSuccess = on_conn;
        MQTTAsync_connect(cl[p], &co);
    }
    while (__atomic_load_n(&connected_count, __ATOMIC_SEQ_CST) < pubs)
        usleep(1000);
    int dups = n / 100;
    double t1 = now_s();
    for (int i = 1; i <= n + dups; i++) {
        int item = i <= n ? i : i - n; /* the last 1 % are re-sends of the first items */
        int p = item % pubs;
        char payload[160], dev[32];
        snprintf(dev, sizeof dev, "bench-%d", p);
        int len = snprintf(payload, sizeof payload,
                           "{\"item_id\":%d,\"tag_quantity\":1,\"tag\":\"%08X\",\"device_id\":"
                           "\"%s\",\"seq\":%d}", item, (unsigned)item, dev, item);
        MQTTAsync_message m = MQTTAsync_message_initializer;
        m.payload = payload;
        m.payloadlen = len;
        m.qos = 1;
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        while (MQTTAsync_sendMessage(cl[p], "item_registered", &m, &ro) != MQTTASYNC_SUCCESS)
            usleep(100);
    }
    double t_sent = now_s() - t1;
    if (hx_backend_wait_registered(b, (uint64_t)n, 120000) != HX_OK) {
        fprintf(stderr, "%s\n", hx_backend_last_error());
        goto exit;
    }
    hx_backend_sync(b, 30000);
    double t_all = now_s() - t1;
    struct hx_ledger_report r;
    hx_backend_report(b, &r);
    printf("ledger: %s\nitems published: %d in %.2f s (%.0f/s)\n", db ? db : "in memory", n,
           t_items, n / t_items);
    printf("registrations: %d (+%d duplicates) from %d publishers: sent in %.2f s, all in the "
           "ledger after %.2f s -> %.0f registrations/s\n", n, dups, pubs, t_sent, t_all,
           (n + dups) / t_all);
    printf("registered_once %llu twice %llu duplicates %llu lost %llu malformed %llu\n",
           (unsigned long long)r.registered_once, (unsigned long long)r.registered_twice,
           (unsigned long long)r.duplicate_deliveries, (unsigned long long)r.lost,
           (unsigned long long)r.malformed);
    rc = 0;
exit:
    for (int p = 0; p < pubs; p++)
        if (cl[p]) {
            MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
            MQTTAsync_disconnect(cl[p], &d);
            usleep(10000);
            MQTTAsync_destroy(&cl[p]);
        }
    free(cl);
    hx_backend_free(b);
    hx_broker_free(broker);
    return rc;
}
