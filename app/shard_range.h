/*
 * shard_range.h - which devices and items are shard I's of N (scansim run --shard I/N).
 *
 * Shards share nothing but the broker, so each works out its part from the same options
 * alone, with no coordinator: --devices and --items are the whole fleet's, and shard I gets
 * a contiguous run of device ids; the first (total % N) shards get one more. The same
 * arithmetic splits a run's devices over its worker processes.
 */
#ifndef SCANSIM_SHARD_RANGE_H
#define SCANSIM_SHARD_RANGE_H

#include <stdbool.h>

/* Shard index of count, parsed from "I/N" (0 <= I < N <= SHARD_MAX). */
#define SHARD_MAX 100000

struct shard_spec {
    long index;  /* 0-based */
    long count;  /* shards in all */
};

/* The part of `total` things that shard `index` of `count` gets: its offset from the first
   and how many. */
void shard_part(long total, long index, long count, long *offset, long *n);

/* Parse "I/N". 0, or -1 with the reason in why. */
int shard_parse(const char *text, struct shard_spec *out, char *why, unsigned long n);

/* The index from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, env) for `count` shards.
   0, 1 when the variable is not set, or -1 with the reason in why. */
int shard_from_env(const char *value, long count, struct shard_spec *out, char *why,
                   unsigned long n);

#endif
