/*
 * fleet_figures.c - adding fleet figures together and carrying them as JSON lines.
 *
 * A worker process (`scansim run --workers K` forks K shards) writes its figures once a
 * second as one JSON object per line on a pipe; the parent decodes and adds them. The
 * field list is one table, so encoder, decoder and adder cannot drift apart.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sim/fleet_devices.h"

#define FIG(name) { #name, offsetof(struct fleet_figures, name) }

static const struct {
    const char *name;
    size_t off;
} fig_fields[] = {
    FIG(devices), FIG(created), FIG(started), FIG(connected), FIG(ever_connected),
    FIG(items_received), FIG(items_queued), FIG(duplicates_suppressed), FIG(queue_full),
    FIG(registrations_confirmed), FIG(registrations_acked), FIG(registrations_resent),
    FIG(outbox_full), FIG(cancels), FIG(wrong_tags), FIG(rejects), FIG(inventory_queries),
    FIG(inventory_answers), FIG(inventory_timeouts), FIG(connects), FIG(connect_failures),
    FIG(connection_losses), FIG(publish_errors), FIG(storage_errors), FIG(peak_rss_kib),
    FIG(peak_pss_kib),
};

#define N_FIELDS (sizeof(fig_fields) / sizeof(fig_fields[0]))

static uint64_t *field(struct fleet_figures *f, size_t i)
{
    return (uint64_t *)((char *)f + fig_fields[i].off);
}

void fleet_figures_add(struct fleet_figures *a, const struct fleet_figures *b)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        *field(a, i) += *field((struct fleet_figures *)b, i);
    /* connect time of the whole fleet is the slowest part's */
    if (b->connect_seconds > a->connect_seconds)
        a->connect_seconds = b->connect_seconds;
    if (b->last_failure[0])
        memcpy(a->last_failure, b->last_failure, sizeof(a->last_failure));
}

int fleet_figures_to_json(const struct fleet_figures *f, char *buf, size_t cap)
{
    cJSON *o = cJSON_CreateObject();
    int rc = -1;

    if (!o)
        return -1;
    for (size_t i = 0; i < N_FIELDS; i++)
        if (!cJSON_AddNumberToObject(o, fig_fields[i].name,
                                     (double)*field((struct fleet_figures *)f, i)))
            goto out;
    if (!cJSON_AddNumberToObject(o, "connect_seconds", f->connect_seconds) ||
        !cJSON_AddStringToObject(o, "last_failure", f->last_failure))
        goto out;
    if (cJSON_PrintPreallocated(o, buf, (int)cap, 0))
        rc = (int)strlen(buf);
out:
    cJSON_Delete(o);
    return rc;
}

int fleet_figures_from_json(const char *line, struct fleet_figures *out)
{
    cJSON *o = cJSON_Parse(line);
    const cJSON *v;

    memset(out, 0, sizeof(*out));
    out->connect_seconds = -1.0;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -1;
    }
    for (size_t i = 0; i < N_FIELDS; i++) {
        v = cJSON_GetObjectItemCaseSensitive(o, fig_fields[i].name);
        if (cJSON_IsNumber(v) && v->valuedouble >= 0)
            *field(out, i) = (uint64_t)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "connect_seconds");
    if (cJSON_IsNumber(v))
        out->connect_seconds = v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(o, "last_failure");
    if (cJSON_IsString(v))
        snprintf(out->last_failure, sizeof(out->last_failure), "%s", v->valuestring);
    cJSON_Delete(o);
    return 0;
}
