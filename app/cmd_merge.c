/*
 * cmd_merge.c - `scansim merge shard-*.json`: one answer for a fleet run as shards
 * (`scansim run --shard I/N --json FILE`), on one machine or many.
 *
 * Adds the shards' counts, merges their latency histograms (fixed log-scale buckets,
 * latency_hist.h) and takes the percentiles from the sum, prints a row per shard and the
 * totals, names shards that are missing or failed, and exits with the code of the whole:
 * 4 or 3 if a shard had it (internal error, broker gone), else 1 if a shard is missing or
 * failed or an item was lost or registered twice, else 0. Bad input (a file that is not a
 * shard's report, shards of different fleets, one shard twice) is exit 2.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "latency_hist.h"
#include "merge_input.h"

#define CMD "merge"

const char scansim_cmd_merge_summary[] =
    "add up the JSON reports of a run's shards (--shard I/N) into one result";

static const char merge_help[] =
    "usage: scansim merge [--json FILE] SHARD.json...\n"
    "\n"
    "Add up the --json reports of a fleet run as shards (scansim run --shard I/N, on one\n"
    "machine or many): totals, latency percentiles from the shards' merged histograms (each\n"
    "within 6 % of the exact value), a row per shard, and the shards that are missing or\n"
    "failed, by number.\n"
    "\n"
    "  --json FILE             also write the merged result as JSON to FILE\n"
    "\n"
    "Exit codes: 0 every shard there and successful, nothing lost or registered twice;\n"
    "1 a shard missing or failed, or items lost or registered twice; 2 usage or a file that\n"
    "is not a shard's report (or shards of different fleets, or a shard given twice);\n"
    "3 a shard lost its broker; 4 a shard had an internal error.\n";

struct merge_total {
    uint64_t devices, connected, online_at_end, published, registered, lost, twice;
    uint64_t reassigned, lost_with_workers, workers_dead;
    double rate, duration_s;
    struct latency_hist hist;
    long count;                 /* shards expected */
    long missing[32];           /* the first missing indexes */
    long n_missing;
    long failed;                /* shards with exit code != 0 */
    int worst;                  /* the highest shard exit code */
    int exit_code;
};

/* Read and check every file: one fleet, each shard once. 0, or the exit code. */
static int merge_read_all(char **paths, int n, struct merge_shard *shards, char *why, size_t wn)
{
    for (int i = 0; i < n; i++) {
        if (merge_input_read(paths[i], &shards[i], why, wn) != 0) {
            scansim_cli_error(CMD, "%s: %s", paths[i], why);
            return SCANSIM_EXIT_USAGE;
        }
        if (shards[i].count != shards[0].count ||
            strcmp(shards[i].id_prefix, shards[0].id_prefix) != 0) {
            scansim_cli_error(CMD, "%s is shard %ld of %ld (%s...), %s is shard %ld of %ld (%s...): "
                          "not the same fleet", paths[0], shards[0].index, shards[0].count,
                          shards[0].id_prefix, paths[i], shards[i].index, shards[i].count,
                          shards[i].id_prefix);
            return SCANSIM_EXIT_USAGE;
        }
        for (int k = 0; k < i; k++)
            if (shards[k].index == shards[i].index) {
                scansim_cli_error(CMD, "shard %ld is given twice: %s and %s", shards[i].index,
                              paths[k], paths[i]);
                return SCANSIM_EXIT_USAGE;
            }
    }
    return 0;
}

static void merge_add(struct merge_total *t, const struct merge_shard *s)
{
    t->devices += s->devices;
    t->connected += s->connected;
    t->online_at_end += s->online_at_end;
    t->published += s->published;
    t->registered += s->registered;
    t->lost += s->lost;
    t->twice += s->twice;
    t->reassigned += s->reassigned;
    t->lost_with_workers += s->lost_with_workers;
    t->workers_dead += s->workers_dead;
    t->rate += s->rate; /* the shards ran side by side: their rates add */
    if (s->duration_s > t->duration_s)
        t->duration_s = s->duration_s;
    latency_hist_merge(&t->hist, &s->hist);
    if (s->exit_code != 0)
        t->failed++;
    if (s->exit_code > t->worst)
        t->worst = s->exit_code;
}

/* Totals, missing shards and the exit code of the whole. */
static void merge_totals(const struct merge_shard *shards, int n, struct merge_total *t)
{
    memset(t, 0, sizeof *t);
    latency_hist_init(&t->hist);
    t->count = shards[0].count;
    for (int i = 0; i < n; i++)
        merge_add(t, &shards[i]);
    for (long idx = 0; idx < t->count; idx++) {
        bool seen = false;
        for (int i = 0; i < n && !seen; i++)
            seen = shards[i].index == idx;
        if (!seen && t->n_missing++ < (long)(sizeof t->missing / sizeof t->missing[0]))
            t->missing[t->n_missing - 1] = idx;
    }
    if (t->worst == SCANSIM_EXIT_INTERNAL || t->worst == SCANSIM_EXIT_BROKER)
        t->exit_code = t->worst;
    else if (t->n_missing || t->failed || t->lost || t->twice)
        t->exit_code = SCANSIM_EXIT_FAILED;
    else
        t->exit_code = SCANSIM_EXIT_OK;
}

static void merge_print(const struct merge_shard *shards, int n, const struct merge_total *t)
{
    printf("scansim merge: %d of %ld shards\n\n", n, t->count);
    printf("  %5s  %-26s %8s %8s %10s %10s %7s %6s %9s %9s %9s %5s\n", "shard", "devices",
           "ever on", "online", "published", "registered", "lost", "twice", "p50 ms", "p99 ms",
           "reg/s", "exit");
    for (int i = 0; i < n; i++) {
        const struct merge_shard *s = &shards[i];
        char ids[64];
        snprintf(ids, sizeof ids, "%s%ld..%ld", s->id_prefix, s->id_first, s->id_last);
        printf("  %5ld  %-26s %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10" PRIu64 " %7" PRIu64
               " %6" PRIu64 " %9.1f %9.1f %9.0f %5d\n", s->index, ids, s->connected,
               s->online_at_end, s->published, s->registered, s->lost, s->twice,
               latency_hist_quantile(&s->hist, 0.5), latency_hist_quantile(&s->hist, 0.99),
               s->rate, s->exit_code);
    }
    printf("  %5s  %-26" PRIu64 " %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10" PRIu64 " %7" PRIu64
           " %6" PRIu64 " %9.1f %9.1f %9.0f %5d\n\n", "all", t->devices, t->connected,
           t->online_at_end, t->published, t->registered, t->lost, t->twice,
           latency_hist_quantile(&t->hist, 0.5), latency_hist_quantile(&t->hist, 0.99), t->rate,
           t->exit_code);
    printf("  %-34s p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms (from the merged histograms)\n",
           "latency publish->registration", latency_hist_quantile(&t->hist, 0.5),
           latency_hist_quantile(&t->hist, 0.9), latency_hist_quantile(&t->hist, 0.99),
           t->hist.max_ms);
    if (t->reassigned || t->lost_with_workers || t->workers_dead)
        printf("  %-34s %" PRIu64 " dead, %" PRIu64 " items moved to live devices, %" PRIu64
               " lost with them\n", "worker processes", t->workers_dead, t->reassigned,
               t->lost_with_workers);
    for (long i = 0; i < t->n_missing && i < (long)(sizeof t->missing / sizeof t->missing[0]); i++)
        printf("  %-34s shard %ld of %ld: no report given\n", i ? "" : "missing", t->missing[i],
               t->count);
    if (t->n_missing > (long)(sizeof t->missing / sizeof t->missing[0]))
        printf("  %-34s and %ld more\n", "", t->n_missing - (long)(sizeof t->missing /
                                                                  sizeof t->missing[0]));
    for (int i = 0, k = 0; i < n; i++)
        if (shards[i].exit_code)
            printf("  %-34s shard %ld (%s) exit code %d%s%s\n", k++ ? "" : "failed", shards[i].index,
                   shards[i].path, shards[i].exit_code, shards[i].broker_gone ? ", broker gone" : "",
                   shards[i].workers_dead ? ", a worker died" : "");
    printf("  %-34s %d\n", "exit code", t->exit_code);
}

static cJSON *merge_shard_json(const struct merge_shard *s)
{
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "file", s->path);
    cJSON_AddNumberToObject(o, "index", (double)s->index);
    cJSON_AddNumberToObject(o, "id_first", (double)s->id_first);
    cJSON_AddNumberToObject(o, "id_last", (double)s->id_last);
    cJSON_AddNumberToObject(o, "items_published", (double)s->published);
    cJSON_AddNumberToObject(o, "items_registered", (double)s->registered);
    cJSON_AddNumberToObject(o, "items_lost", (double)s->lost);
    cJSON_AddNumberToObject(o, "exit_code", s->exit_code);
    return o;
}

static int merge_write_json(const char *path, const struct merge_shard *shards, int n,
                            const struct merge_total *t)
{
    cJSON *j = cJSON_CreateObject(), *lat, *arr, *miss;
    char *text = NULL;
    FILE *fp;
    int rc = -1;

    if (!j)
        return -1;
#define NUM(k, v) cJSON_AddNumberToObject(j, k, (double)(v))
    NUM("shards", t->count);
    NUM("shards_given", n);
    NUM("devices_requested", t->devices);
    NUM("devices_connected", t->connected);
    NUM("devices_online_at_end", t->online_at_end);
    NUM("items_published", t->published);
    NUM("items_registered", t->registered);
    NUM("items_lost", t->lost);
    NUM("duplicate_registrations", t->twice);
    NUM("items_reassigned", t->reassigned);
    NUM("items_lost_with_dead_workers", t->lost_with_workers);
    NUM("workers_dead", t->workers_dead);
    NUM("registrations_per_second", t->rate);
    NUM("duration_seconds", t->duration_s);
#undef NUM
    if ((lat = cJSON_AddObjectToObject(j, "latency_ms"))) {
        cJSON_AddNumberToObject(lat, "p50", latency_hist_quantile(&t->hist, 0.5));
        cJSON_AddNumberToObject(lat, "p90", latency_hist_quantile(&t->hist, 0.9));
        cJSON_AddNumberToObject(lat, "p99", latency_hist_quantile(&t->hist, 0.99));
        cJSON_AddNumberToObject(lat, "max", t->hist.max_ms);
    }
    cJSON_AddItemToObject(j, "latency_histogram", latency_hist_to_json(&t->hist));
    miss = cJSON_AddArrayToObject(j, "missing_shards");
    for (long i = 0; miss && i < t->n_missing && i < (long)(sizeof t->missing / sizeof t->missing[0]); i++)
        cJSON_AddItemToArray(miss, cJSON_CreateNumber((double)t->missing[i]));
    cJSON_AddNumberToObject(j, "missing_shards_count", (double)t->n_missing);
    arr = cJSON_AddArrayToObject(j, "per_shard");
    for (int i = 0; arr && i < n; i++)
        cJSON_AddItemToArray(arr, merge_shard_json(&shards[i]));
    cJSON_AddNumberToObject(j, "exit_code", t->exit_code);
    text = cJSON_Print(j);
    if (!text)
        goto out;
    if (!(fp = fopen(path, "w"))) {
        scansim_cli_error(CMD, "--json: cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    fputs(text, fp);
    fputc('\n', fp);
    rc = fclose(fp) == 0 ? 0 : -1;
    if (rc)
        scansim_cli_error(CMD, "--json: cannot write %s: %s", path, strerror(errno));
out:
    free(text);
    cJSON_Delete(j);
    return rc;
}

int scansim_cmd_merge(int argc, char **argv)
{
    static const struct option longs[] = {
        {"json", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *json_path = NULL;
    struct merge_shard *shards;
    struct merge_total t;
    char why[256];
    int opt, n, rc;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (opt == 'h') {
            fputs(merge_help, stdout);
            return SCANSIM_EXIT_OK;
        }
        if (opt == 'j') {
            json_path = optarg;
            continue;
        }
        scansim_cli_error(CMD, "unknown option '%s' or it needs a value (see scansim merge --help)",
                      argv[optind - 1]);
        return SCANSIM_EXIT_USAGE;
    }
    n = argc - optind;
    if (n < 1) {
        scansim_cli_error(CMD, "give the shards' JSON reports: scansim merge shard-*.json");
        return SCANSIM_EXIT_USAGE;
    }
    if (!(shards = calloc((size_t)n, sizeof *shards))) {
        scansim_cli_error(CMD, "out of memory");
        return SCANSIM_EXIT_INTERNAL;
    }
    rc = merge_read_all(argv + optind, n, shards, why, sizeof why);
    if (rc == 0) {
        merge_totals(shards, n, &t);
        merge_print(shards, n, &t);
        rc = t.exit_code;
        if (json_path && merge_write_json(json_path, shards, n, &t) != 0 && rc == SCANSIM_EXIT_OK)
            rc = SCANSIM_EXIT_INTERNAL;
    }
    free(shards);
    return rc;
}
