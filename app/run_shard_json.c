/*
 * run_shard_json.c - the shard's identity in its JSON report (run_shard_json.h).
 */
#include "run_shard_json.h"

void run_shard_json(const struct run_opts *o, cJSON *j)
{
    cJSON *sh;

    if (!o->shard.count) {
        cJSON_AddNullToObject(j, "shard");
        return;
    }
    sh = cJSON_AddObjectToObject(j, "shard");
    if (!sh)
        return;
    cJSON_AddNumberToObject(sh, "index", (double)o->shard.index);
    cJSON_AddNumberToObject(sh, "count", (double)o->shard.count);
    cJSON_AddStringToObject(sh, "id_prefix", o->id_prefix);
    cJSON_AddNumberToObject(sh, "id_first", (double)o->id_start);
    cJSON_AddNumberToObject(sh, "id_last", (double)(o->id_start + o->devices - 1));
    cJSON_AddNumberToObject(sh, "devices", (double)o->devices);
}
