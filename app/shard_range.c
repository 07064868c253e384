/*
 * shard_range.c - shard arithmetic and the --shard / JOB_COMPLETION_INDEX parsers
 * (shard_range.h).
 */
#include "shard_range.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void shard_part(long total, long index, long count, long *offset, long *n)
{
    long base = total / count, extra = total % count;

    *n = base + (index < extra ? 1 : 0);
    *offset = index * base + (index < extra ? index : extra);
}

/* A whole number in min..max that fills all of text. */
static int shard_number(const char *text, const char *end_ok, long min, long max, long *out,
                        const char **end)
{
    char *e;
    long v;

    if (!text || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    v = strtol(text, &e, 10);
    if (errno || v < min || v > max || (end_ok ? *e != *end_ok : *e != '\0'))
        return -1;
    *out = v;
    if (end)
        *end = e;
    return 0;
}

int shard_parse(const char *text, struct shard_spec *out, char *why, unsigned long n)
{
    const char *slash;

    if (shard_number(text, "/", 0, SHARD_MAX - 1, &out->index, &slash) != 0 ||
        shard_number(slash + 1, NULL, 1, SHARD_MAX, &out->count, NULL) != 0) {
        snprintf(why, n, "expected I/N with 0 <= I < N <= %d (shard I of N, counted from 0), "
                 "got '%s'", SHARD_MAX, text ? text : "");
        return -1;
    }
    if (out->index >= out->count) {
        snprintf(why, n, "shard %ld of %ld does not exist: shards are counted from 0, so the "
                 "last one of %ld is %ld", out->index, out->count, out->count, out->count - 1);
        return -1;
    }
    return 0;
}

int shard_from_env(const char *value, long count, struct shard_spec *out, char *why,
                   unsigned long n)
{
    if (!value)
        return 1;
    if (shard_number(value, NULL, 0, SHARD_MAX - 1, &out->index, NULL) != 0 ||
        out->index >= count) {
        snprintf(why, n, "JOB_COMPLETION_INDEX is '%s': expected a whole number from 0 to %ld "
                 "for --shards %ld", value, count - 1, count);
        return -1;
    }
    out->count = count;
    return 0;
}
