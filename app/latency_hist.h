/*
 * latency_hist.h - a latency histogram with fixed log-scale buckets, so that the histograms
 * of several runs (shards on other machines) add up bucket by bucket and their percentiles
 * can be taken from the sum. Percentiles themselves do not add up: the p99 of two shards
 * is not any mix of their two p99s.
 *
 * Buckets: LATENCY_HIST_PER_DECADE per factor of ten from LATENCY_HIST_MIN_MS up, so each
 * bucket is 10^(1/40) = 5.9 % wide: a percentile read from the histogram is within 5.9 % of
 * the exact one. Bucket 0 holds everything below the minimum, the last one everything
 * above the top (10^7 ms = 2.8 h). The layout is fixed and written into every JSON file
 * (latency_hist_scheme), so a merge refuses histograms made another way.
 *
 * Plain values: a struct latency_hist owns nothing, copy it freely.
 */
#ifndef SCANSIM_LATENCY_HIST_H
#define SCANSIM_LATENCY_HIST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define LATENCY_HIST_PER_DECADE 40
#define LATENCY_HIST_MIN_MS 0.01     /* 10 us */
#define LATENCY_HIST_DECADES 9       /* 0.01 ms .. 10^7 ms */
#define LATENCY_HIST_BUCKETS (LATENCY_HIST_PER_DECADE * LATENCY_HIST_DECADES + 2)

struct latency_hist {
    uint64_t count[LATENCY_HIST_BUCKETS];
    uint64_t total;
    double max_ms;  /* the largest value added (exact) */
};

/* The scheme's name, written into JSON and checked by a merge. */
extern const char latency_hist_scheme[];

void latency_hist_init(struct latency_hist *h);
/* The bucket a latency falls into (negative and NaN values into bucket 0). */
int latency_hist_bucket(double ms);
/* The upper edge of bucket i in ms (bucket 0: the minimum; the last: +infinity). */
double latency_hist_upper_ms(int i);
void latency_hist_add(struct latency_hist *h, double ms);
/* Add b's counts into a. */
void latency_hist_merge(struct latency_hist *a, const struct latency_hist *b);
/* The q-quantile (0..1) as the upper edge of the bucket holding the nearest-rank value,
   capped at max_ms; 0 for an empty histogram. */
double latency_hist_quantile(const struct latency_hist *h, double q);

/* {"scheme": ..., "count": N, "max_ms": M, "buckets": [[index, count], ...]} (non-empty
   buckets only). NULL when out of memory. */
cJSON *latency_hist_to_json(const struct latency_hist *h);
/* Read what latency_hist_to_json wrote. 0, or -1 with the reason in why (a person's words). */
int latency_hist_from_json(const cJSON *j, struct latency_hist *h, char *why, size_t n);

#endif
