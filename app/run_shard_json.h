/*
 * run_shard_json.h - what a shard of `scansim run --shard I/N` writes into its --json
 * report so that `scansim merge` can check and add up the shards: which shard it is of how
 * many, and its device range. (The latency histogram is in every report.)
 */
#ifndef SCANSIM_RUN_SHARD_JSON_H
#define SCANSIM_RUN_SHARD_JSON_H

#include <cjson/cJSON.h>

#include "run_opts.h"

/* "shard": {"index", "count", "id_prefix", "id_first", "id_last", "devices"}, or
   "shard": null for a run that is not a shard. */
void run_shard_json(const struct run_opts *o, cJSON *j);

#endif
