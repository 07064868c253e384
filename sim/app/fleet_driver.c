/*
 * fleet_driver.c - publishes items for `scansim run` through hx_backend, round-robin over
 * the devices, paced by a rate and held back by a per-device window (fleet_driver.h).
 */
#include "fleet_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fleet_driver {
    struct fleet_driver_opts o;
    char *prefix;
    uint64_t next;        /* next item index to publish */
    uint64_t cursor;      /* items before this are finished (or given up for gating) */
    uint64_t span;        /* window * N (per-device) or window (seed) */
    uint64_t *pub_ms;     /* publish time of item k at pub_ms[k % span] */
    uint64_t failed, skips;
    uint64_t rate_t0;     /* rate pacing origin */
    uint64_t rate_base;   /* items published at rate_t0 */
    bool closed, blocked;
};

int fleet_driver_create(const struct fleet_driver_opts *o, struct fleet_driver **out)
{
    struct fleet_driver *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (!d)
        return -1;
    d->o = *o;
    if (d->o.window < 1)
        d->o.window = 1;
    d->span = (uint64_t)d->o.window * (o->per_device ? (uint64_t)(o->devices > 0 ? o->devices : 1) : 1u);
    d->prefix = strdup(o->id_prefix ? o->id_prefix : "scanner-");
    d->pub_ms = calloc(d->span, sizeof(*d->pub_ms));
    if (!d->prefix || !d->pub_ms) {
        fleet_driver_free(d);
        return -1;
    }
    d->o.id_prefix = d->prefix;
    *out = d;
    return 0;
}

void fleet_driver_free(struct fleet_driver *d)
{
    if (!d)
        return;
    free(d->prefix);
    free(d->pub_ms);
    free(d);
}

/* Move the cursor over finished items; bounded work per call. */
static void advance_cursor(struct fleet_driver *d, uint64_t now_ms)
{
    for (int n = 0; n < 200000 && d->cursor < d->next; n++) {
        int32_t id = (int32_t)(d->cursor + 1);
        if (hx_backend_item_registrations(d->o.backend, id) > 0) {
            d->cursor++;
        } else if (now_ms - d->pub_ms[d->cursor % d->span] >= d->o.gate_timeout_ms) {
            d->cursor++; /* cancelled, lost or very late: stop holding the window */
            d->skips++;
        } else {
            break;
        }
    }
}

int fleet_driver_pump(struct fleet_driver *d, uint64_t now_ms, int max_batch)
{
    uint64_t limit;
    int n = 0;
    char dev[96], name[40];

    if (d->closed)
        return 0;
    advance_cursor(d, now_ms);
    limit = d->cursor + d->span; /* the window */
    if (d->o.items && limit > d->o.items)
        limit = d->o.items;
    if (d->o.rate > 0) {
        if (d->rate_t0 == 0) {
            d->rate_t0 = now_ms;
            d->rate_base = d->next;
        }
        uint64_t due = d->rate_base + (uint64_t)(d->o.rate * (double)(now_ms - d->rate_t0) / 1000.0);
        /* held back by the window for a while: do not burst more than a second's worth */
        if (due > d->next + (uint64_t)d->o.rate + 1) {
            d->rate_t0 = now_ms;
            d->rate_base = d->next;
            due = d->next;
        }
        if (due < limit)
            limit = due;
    }
    d->blocked = d->next >= d->cursor + d->span;
    while (d->next < limit && n < max_batch) {
        uint64_t k = d->next;
        int32_t id = (int32_t)(k + 1);
        const char *target = NULL;
        if (k + 1 > INT32_MAX) {
            d->closed = true; /* item ids are positive int32 */
            break;
        }
        if (d->o.per_device) {
            snprintf(dev, sizeof(dev), "%s%ld", d->prefix,
                     d->o.id_start + (long)(k % (uint64_t)d->o.devices));
            target = dev;
        }
        snprintf(name, sizeof(name), "Item %ld", (long)id);
        d->pub_ms[k % d->span] = now_ms;
        if (hx_backend_publish_item(d->o.backend, target, id, name, 1) != HX_OK)
            d->failed++;
        d->next++;
        n++;
    }
    return n;
}

void fleet_driver_close(struct fleet_driver *d)
{
    d->closed = true;
}

uint64_t fleet_driver_published(const struct fleet_driver *d) { return d->next; }
uint64_t fleet_driver_failed(const struct fleet_driver *d) { return d->failed; }
uint64_t fleet_driver_gate_skips(const struct fleet_driver *d) { return d->skips; }
bool fleet_driver_blocked(const struct fleet_driver *d) { return d->blocked; }

bool fleet_driver_done_publishing(const struct fleet_driver *d)
{
    return d->closed || (d->o.items && d->next >= d->o.items);
}
