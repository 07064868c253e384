/*
 * merge_input.c - reading a shard's JSON report (merge_input.h).
 */
#include "merge_input.h"
#include "sim/fs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MERGE_FILE_MAX (16u << 20) /* a report is a few KiB; larger is not one */

static char *merge_slurp(const char *path, char *why, size_t n)
{
    char *buf;
    if (sim_fs_read_all(path, MERGE_FILE_MAX, &buf, NULL) == 0)
        return buf;
    int e = errno;
    if (e == EFBIG)
        snprintf(why, n, "not a readable file of at most %u MiB", MERGE_FILE_MAX >> 20);
    else
        snprintf(why, n, "cannot read it: %s", strerror(e));
    return NULL;
}

/* A whole number >= 0 at key of obj. */
static int merge_count(const cJSON *obj, const char *key, uint64_t *out, char *why, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9e15 ||
        v->valuedouble != floor(v->valuedouble)) {
        snprintf(why, n, "'%s' is missing or not a whole number >= 0", key);
        return -1;
    }
    *out = (uint64_t)v->valuedouble;
    return 0;
}

static int merge_number(const cJSON *obj, const char *key, double *out, char *why, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || isinf(v->valuedouble)) {
        snprintf(why, n, "'%s' is missing or not a number >= 0", key);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static int merge_bool(const cJSON *obj, const char *key, bool *out, char *why, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!cJSON_IsBool(v)) {
        snprintf(why, n, "'%s' is missing or not true/false", key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* The "shard" object: which shard of how many, and its ids. */
static int merge_shard_id(const cJSON *j, struct merge_shard *s, char *why, size_t n)
{
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shard");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(sh, "id_prefix");
    uint64_t index, count, first, last;

    if (!cJSON_IsObject(sh)) {
        snprintf(why, n, "not a shard's report (no \"shard\" object): make it with 'scansim run "
                 "--shard I/N --json FILE'");
        return -1;
    }
    if (merge_count(sh, "index", &index, why, n) || merge_count(sh, "count", &count, why, n) ||
        merge_count(sh, "id_first", &first, why, n) || merge_count(sh, "id_last", &last, why, n))
        return -1;
    if (count < 1 || index >= count || last < first) {
        snprintf(why, n, "its shard is %llu of %llu with ids %llu..%llu: not a shard",
                 (unsigned long long)index, (unsigned long long)count,
                 (unsigned long long)first, (unsigned long long)last);
        return -1;
    }
    if (!cJSON_IsString(prefix) || strlen(prefix->valuestring) >= sizeof s->id_prefix) {
        snprintf(why, n, "'shard.id_prefix' is missing or longer than %zu bytes",
                 sizeof s->id_prefix - 1);
        return -1;
    }
    snprintf(s->id_prefix, sizeof s->id_prefix, "%s", prefix->valuestring);
    s->index = (long)index;
    s->count = (long)count;
    s->id_first = (long)first;
    s->id_last = (long)last;
    return 0;
}

/* The figures a merge adds up. */
static int merge_figures(const cJSON *j, struct merge_shard *s, char *why, size_t n)
{
    uint64_t code;

    if (merge_count(j, "devices_requested", &s->devices, why, n) ||
        merge_count(j, "devices_connected", &s->connected, why, n) ||
        merge_count(j, "devices_online_at_end", &s->online_at_end, why, n) ||
        merge_count(j, "items_published", &s->published, why, n) ||
        merge_count(j, "items_registered", &s->registered, why, n) ||
        merge_count(j, "items_lost", &s->lost, why, n) ||
        merge_count(j, "duplicate_registrations", &s->twice, why, n) ||
        merge_count(j, "items_reassigned", &s->reassigned, why, n) ||
        merge_count(j, "items_lost_with_dead_workers", &s->lost_with_workers, why, n) ||
        merge_count(j, "workers_dead", &s->workers_dead, why, n) ||
        merge_bool(j, "broker_gone", &s->broker_gone, why, n) ||
        merge_bool(j, "interrupted", &s->interrupted, why, n) ||
        merge_number(j, "registrations_per_second", &s->rate, why, n) ||
        merge_number(j, "duration_seconds", &s->duration_s, why, n) ||
        merge_count(j, "exit_code", &code, why, n))
        return -1;
    if (code > 4) {
        snprintf(why, n, "'exit_code' is %llu: scansim's are 0 to 4", (unsigned long long)code);
        return -1;
    }
    s->exit_code = (int)code;
    if (s->devices != (uint64_t)(s->id_last - s->id_first + 1)) {
        snprintf(why, n, "it ran %llu devices but its ids %ld..%ld are %ld",
                 (unsigned long long)s->devices, s->id_first, s->id_last,
                 s->id_last - s->id_first + 1);
        return -1;
    }
    return 0;
}

int merge_input_read(const char *path, struct merge_shard *out, char *why, size_t n)
{
    char *text = merge_slurp(path, why, n), hwhy[160];
    cJSON *j;
    int rc = -1;

    memset(out, 0, sizeof *out);
    out->path = path;
    if (!text)
        return -1;
    j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(j)) {
        snprintf(why, n, "not a JSON object (a 'scansim run --json' report)");
        goto out;
    }
    if (merge_shard_id(j, out, why, n) || merge_figures(j, out, why, n))
        goto out;
    if (latency_hist_from_json(cJSON_GetObjectItemCaseSensitive(j, "latency_histogram"),
                               &out->hist, hwhy, sizeof hwhy) != 0) {
        snprintf(why, n, "%s", hwhy);
        goto out;
    }
    if (out->hist.total > out->registered) {
        snprintf(why, n, "its latency histogram holds %llu items but it registered %llu",
                 (unsigned long long)out->hist.total, (unsigned long long)out->registered);
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}
