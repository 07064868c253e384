/*
 * latency_hist.c - fixed log-scale latency histograms that merge (latency_hist.h).
 */
#include "latency_hist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char latency_hist_scheme[] = "log10/40 from 0.01 ms";

void latency_hist_init(struct latency_hist *h)
{
    memset(h, 0, sizeof *h);
}

int latency_hist_bucket(double ms)
{
    if (!(ms >= LATENCY_HIST_MIN_MS)) /* also NaN */
        return 0;
    /* a small epsilon: a value exactly on an edge stays in the bucket below it, whatever
       the rounding of log10 */
    double k = floor(log10(ms / LATENCY_HIST_MIN_MS) * LATENCY_HIST_PER_DECADE - 1e-9);
    if (k < 0)
        k = 0;
    if (k >= LATENCY_HIST_BUCKETS - 2)
        return LATENCY_HIST_BUCKETS - 1;
    return (int)k + 1;
}

double latency_hist_upper_ms(int i)
{
    if (i <= 0)
        return LATENCY_HIST_MIN_MS;
    if (i >= LATENCY_HIST_BUCKETS - 1)
        return INFINITY;
    return LATENCY_HIST_MIN_MS * pow(10.0, (double)i / LATENCY_HIST_PER_DECADE);
}

void latency_hist_add(struct latency_hist *h, double ms)
{
    h->count[latency_hist_bucket(ms)]++;
    h->total++;
    if (ms > h->max_ms)
        h->max_ms = ms;
}

void latency_hist_merge(struct latency_hist *a, const struct latency_hist *b)
{
    for (int i = 0; i < LATENCY_HIST_BUCKETS; i++)
        a->count[i] += b->count[i];
    a->total += b->total;
    if (b->max_ms > a->max_ms)
        a->max_ms = b->max_ms;
}

double latency_hist_quantile(const struct latency_hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->total == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    /* nearest rank, 1-based: the same rule as the ledger's exact percentiles */
    rank = (uint64_t)((double)(h->total - 1) * q + 0.5) + 1;
    for (int i = 0; i < LATENCY_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            double up = latency_hist_upper_ms(i);
            return up < h->max_ms ? up : h->max_ms;
        }
    }
    return h->max_ms;
}

cJSON *latency_hist_to_json(const struct latency_hist *h)
{
    cJSON *j = cJSON_CreateObject(), *b;

    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "scheme", latency_hist_scheme);
    cJSON_AddNumberToObject(j, "count", (double)h->total);
    cJSON_AddNumberToObject(j, "max_ms", h->max_ms);
    b = cJSON_AddArrayToObject(j, "buckets");
    if (!b) {
        cJSON_Delete(j);
        return NULL;
    }
    for (int i = 0; i < LATENCY_HIST_BUCKETS; i++) {
        cJSON *pair;
        if (!h->count[i])
            continue;
        pair = cJSON_CreateArray();
        if (!pair) {
            cJSON_Delete(j);
            return NULL;
        }
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(i));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)h->count[i]));
        cJSON_AddItemToArray(b, pair);
    }
    return j;
}

/* A whole number in 0..max, from JSON. */
static int hist_whole(const cJSON *v, double max, double *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = v->valuedouble;
    return 0;
}

int latency_hist_from_json(const cJSON *j, struct latency_hist *h, char *why, size_t n)
{
    const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(j, "scheme");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(j, "count");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(j, "max_ms");
    const cJSON *buckets = cJSON_GetObjectItemCaseSensitive(j, "buckets"), *pair;
    double total;

    latency_hist_init(h);
    if (!cJSON_IsObject(j)) {
        snprintf(why, n, "the latency histogram is not an object");
        return -1;
    }
    if (!cJSON_IsString(scheme) || strcmp(scheme->valuestring, latency_hist_scheme) != 0) {
        snprintf(why, n, "the latency histogram's scheme is not '%s'", latency_hist_scheme);
        return -1;
    }
    if (hist_whole(count, 9e15, &total) || !cJSON_IsNumber(max) || !(max->valuedouble >= 0) ||
        !cJSON_IsArray(buckets)) {
        snprintf(why, n, "the latency histogram needs a whole count, max_ms >= 0 and buckets");
        return -1;
    }
    h->max_ms = max->valuedouble;
    cJSON_ArrayForEach(pair, buckets) {
        double i, c;
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 ||
            hist_whole(cJSON_GetArrayItem(pair, 0), LATENCY_HIST_BUCKETS - 1, &i) ||
            hist_whole(cJSON_GetArrayItem(pair, 1), 9e15, &c)) {
            snprintf(why, n, "a latency bucket is not [index 0..%d, count]",
                     LATENCY_HIST_BUCKETS - 1);
            return -1;
        }
        h->count[(int)i] += (uint64_t)c;
        h->total += (uint64_t)c;
    }
    if ((double)h->total != total) {
        snprintf(why, n, "the latency buckets add up to %llu, the histogram says %.0f",
                 (unsigned long long)h->total, total);
        return -1;
    }
    return 0;
}
