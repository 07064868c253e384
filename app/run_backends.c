/*
 * run_backends.c - one backend per broker for `scansim run` (run_backends.h).
 */
#include "run_backends.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CMD "run"

/* The ids of the devices on broker j of n (all of them for n == 1), or NULL for a run
   whose one backend may subscribe to every device (no shard, one broker). */
static char **backend_device_ids(const struct run_opts *o, int j, int n, int *count)
{
    char **ids;
    int k = 0;

    *count = 0;
    if (n == 1 && !o->shard.count)
        return NULL;
    ids = calloc((size_t)o->devices, sizeof *ids);
    if (!ids)
        return NULL;
    for (long i = 0; i < o->devices; i++) {
        long num = o->id_start + i;
        char id[96];
        if (fleet_broker_of(num, n) != j)
            continue;
        snprintf(id, sizeof id, "%s%ld", o->id_prefix, num);
        if (!(ids[k] = strdup(id)))
            break;
        k++;
    }
    *count = k;
    return ids;
}

static void free_ids(char **ids, int n)
{
    for (int i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

/* The backend's client id: unique per shard and broker, also where every pid is 1 (a pod):
   a shard's first device id is its own. */
static void backend_client_id(const struct run_opts *o, int j, char *out, size_t cap)
{
    if (o->shard.count)
        snprintf(out, cap, "scansim-backend-%s%ld-b%d-%ld", o->id_prefix, o->id_start, j,
                 (long)getpid());
    else if (j)
        snprintf(out, cap, "scansim-backend-%ld-b%d", (long)getpid(), j);
    else
        snprintf(out, cap, "scansim-backend-%ld", (long)getpid());
}

static int backend_start_one(struct run_backends *rb, const struct run_opts *o,
                             const char *uri, int j, int n)
{
    struct hx_backend_opts bo;
    char cid[160];
    int n_ids = 0, rc = SCANSIM_EXIT_OK;
    char **ids = backend_device_ids(o, j, n, &n_ids);

    if ((n > 1 || o->shard.count) && !ids) {
        scansim_cli_error(CMD, "out of memory");
        return SCANSIM_EXIT_INTERNAL;
    }
    memset(&bo, 0, sizeof(bo));
    backend_client_id(o, j, cid, sizeof cid);
    bo.uri = uri;
    bo.client_id = cid;
    bo.username = o->c.username;
    bo.password = o->c.password;
    bo.cafile = o->c.cafile;
    bo.certfile = o->c.cert;
    bo.keyfile = o->c.key;
    bo.insecure = o->c.insecure;
    bo.mqtt_version = o->c.protocol_version == 5 ? 5 : 4;
    bo.layout = o->c.layout == SCANSIM_LAYOUT_SEED ? HX_BACKEND_LAYOUT_SEED : HX_BACKEND_LAYOUT_PER_DEVICE;
    bo.clean_session = true; /* a run's ledger starts empty: so does its session */
    bo.keepalive_s = o->c.keepalive_s ? o->c.keepalive_s : 30;
    bo.qos = o->c.qos;
    bo.db_path = n == 1 ? o->db_path : NULL; /* several: one ledger each, in memory */
    bo.connect_timeout_ms = (int)(o->connect_timeout_ms < 10000 ? o->connect_timeout_ms : 10000);
    bo.devices = (const char *const *)ids;
    bo.n_devices = n_ids;
    if (hx_backend_create(&bo, &rb->b[j]) != HX_OK) {
        scansim_cli_error(CMD, "backend: %s", hx_backend_last_error());
        rc = o->db_path ? SCANSIM_EXIT_USAGE : SCANSIM_EXIT_INTERNAL;
    } else if (hx_backend_start(rb->b[j]) != HX_OK) {
        scansim_cli_error(CMD, "backend could not connect to %s: %s", uri, hx_backend_last_error());
        rc = SCANSIM_EXIT_BROKER;
    }
    free_ids(ids, n_ids);
    return rc;
}

int run_backends_start(struct run_backends *rb, const struct run_opts *o,
                       const char *const *uris, int n_uris)
{
    memset(rb, 0, sizeof *rb);
    if (n_uris > 1 && o->db_path) {
        scansim_cli_error(CMD, "--db keeps one ledger; with several brokers each backend keeps its "
                           "own in memory: drop --db");
        return SCANSIM_EXIT_USAGE;
    }
    if (n_uris > 1 && o->c.layout == SCANSIM_LAYOUT_SEED) {
        scansim_cli_error(CMD, "several brokers need the per-device layout: in the seed layout "
                           "every item goes to every device, on one broker");
        return SCANSIM_EXIT_USAGE;
    }
    rb->n = n_uris;
    for (int j = 0; j < n_uris; j++) {
        int rc = backend_start_one(rb, o, uris[j], j, n_uris);
        if (rc != SCANSIM_EXIT_OK)
            return rc;
    }
    return SCANSIM_EXIT_OK;
}

void run_backends_report(struct run_backends *rb, struct hx_ledger_report *r)
{
    struct latency_hist h;

    if (rb->n <= 1) {
        hx_backend_report(rb->b[0], r);
        return;
    }
    memset(r, 0, sizeof *r);
    for (int j = 0; j < rb->n; j++) {
        struct hx_ledger_report one;
        hx_backend_report(rb->b[j], &one);
        r->published += one.published;
        r->acknowledged += one.acknowledged;
        r->registered += one.registered;
        r->registered_once += one.registered_once;
        r->registered_twice += one.registered_twice;
        r->lost += one.lost;
        r->duplicate_deliveries += one.duplicate_deliveries;
        r->malformed += one.malformed;
        r->unknown_items += one.unknown_items;
        r->publish_failed += one.publish_failed;
        r->publish_refused += one.publish_refused;
        if (one.refused_reason)
            r->refused_reason = one.refused_reason;
        r->republished += one.republished;
        r->unacked += one.unacked;
        r->reconnects += one.reconnects;
    }
    run_backends_histogram(rb, &h);
    r->latency_p50_ms = latency_hist_quantile(&h, 0.50);
    r->latency_p90_ms = latency_hist_quantile(&h, 0.90);
    r->latency_p99_ms = latency_hist_quantile(&h, 0.99);
    r->latency_max_ms = h.max_ms;
}

void run_backends_histogram(struct run_backends *rb, struct latency_hist *h)
{
    latency_hist_init(h);
    for (int j = 0; j < rb->n; j++) {
        double *lat = NULL;
        size_t n = hx_backend_latencies(rb->b[j], &lat);
        for (size_t i = 0; i < n; i++)
            latency_hist_add(h, lat[i]);
        free(lat);
    }
}

bool run_backends_all_registered(struct run_backends *rb, uint64_t count, int timeout_ms)
{
    /* several: the once-a-second report decides (a report sorts every latency) */
    return rb->n == 1 && hx_backend_wait_registered(rb->b[0], count, timeout_ms) == HX_OK;
}

void run_backends_stop(struct run_backends *rb, int sync_ms)
{
    for (int j = 0; j < rb->n; j++)
        if (rb->b[j]) {
            (void)hx_backend_sync(rb->b[j], sync_ms);
            (void)hx_backend_stop(rb->b[j]);
        }
}

bool run_backends_connected(struct run_backends *rb)
{
    for (int j = 0; j < rb->n; j++)
        if (rb->b[j] && hx_backend_connected(rb->b[j]))
            return true;
    return false;
}

void run_backends_free(struct run_backends *rb)
{
    for (int j = 0; j < rb->n; j++)
        hx_backend_free(rb->b[j]);
    memset(rb, 0, sizeof *rb);
}
