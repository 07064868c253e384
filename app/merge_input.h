/*
 * merge_input.h - one shard's `scansim run --shard I/N --json` report, read and checked
 * for `scansim merge`.
 *
 * Every field the merge adds up is required with its type and range; anything else in the
 * file is ignored. A file that fails is named with the field and what was expected, never
 * half-counted.
 */
#ifndef SCANSIM_MERGE_INPUT_H
#define SCANSIM_MERGE_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "latency_hist.h"

struct merge_shard {
    const char *path;
    long index, count;             /* shard I of N */
    char id_prefix[40];
    long id_first, id_last;
    uint64_t devices, connected, online_at_end;
    uint64_t published, registered, lost, twice, reassigned, lost_with_workers;
    uint64_t workers_dead;
    bool broker_gone, interrupted;
    double rate, duration_s;
    int exit_code;
    struct latency_hist hist;
};

/* Read path into *out. 0, or -1 with the reason in why (n bytes). */
int merge_input_read(const char *path, struct merge_shard *out, char *why, size_t n);

#endif
