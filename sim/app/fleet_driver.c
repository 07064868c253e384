/*
 * fleet_driver.c - publishes items for `scansim run` through hx_backend, round-robin over
 * the devices, paced by a rate and held back by a per-device window (fleet_driver.h).
 *
 * Bookkeeping, all O(1) per item:
 *   - a ring of the items published and not yet known finished, in publish order
 *     (`ring`, between `cursor` and `next`), each with its device and publish time;
 *   - the cursor walks the ring and pops finished items (the ledger's in-memory table says
 *     registered, or refused by the broker); an item still unfinished after SLOW_MS moves to the `late` list so one
 *     cancelled or slow item never holds up the others;
 *   - the late list is re-checked every LATE_CHECK_MS; an item leaves it when registered
 *     or after gate_timeout_ms (cancelled, lost or very late: it still counts as lost in
 *     the ledger, the driver just stops reserving room for it);
 *   - open[d] counts device d's unfinished items; a device with open[d] >= window is
 *     skipped by the round-robin.
 */
#include "fleet_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOW_MS 200        /* unfinished this long: off the ring, onto the late list */
#define LATE_CHECK_MS 100  /* how often the late list is looked at */

struct pending {
    int32_t item_id;
    uint32_t device;       /* index; 0 in the seed layout */
    uint64_t pub_ms;
};

struct fleet_driver {
    struct fleet_driver_opts o;
    char *prefix;
    uint32_t n_dev;        /* devices that hold windows (1 in the seed layout) */
    uint16_t *open;        /* unfinished items per device */
    struct pending *ring;  /* capacity ring_cap, items [cursor, next) */
    uint64_t ring_cap, cursor, next;
    struct pending *late;  /* unordered */
    size_t n_late, cap_late;
    uint64_t next_late_check;
    uint32_t rr;           /* round-robin position */
    uint64_t open_total;   /* sum of open[] */
    uint64_t failed, skips;
    uint64_t rate_t0, rate_base;
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
    if (d->o.window > 65535)
        d->o.window = 65535;
    d->n_dev = o->per_device ? (uint32_t)(o->devices > 0 ? o->devices : 1) : 1u;
    d->ring_cap = 2ull * (uint64_t)d->o.window * d->n_dev + 1024;
    d->prefix = strdup(o->id_prefix ? o->id_prefix : "scanner-");
    d->open = calloc(d->n_dev, sizeof(*d->open));
    d->ring = calloc(d->ring_cap, sizeof(*d->ring));
    if (!d->prefix || !d->open || !d->ring) {
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
    free(d->open);
    free(d->ring);
    free(d->late);
    free(d);
}

static bool finished(struct fleet_driver *d, int32_t item_id)
{
    return hx_backend_item_finished(d->o.backend, item_id);
}

static void release(struct fleet_driver *d, const struct pending *p)
{
    if (d->open[p->device] > 0) {
        d->open[p->device]--;
        d->open_total--;
    }
}

/* Move the ring's head to the late list (grows it; on no memory, give the item up). */
static void to_late(struct fleet_driver *d, const struct pending *p)
{
    if (d->n_late == d->cap_late) {
        size_t cap = d->cap_late ? d->cap_late * 2 : 256;
        struct pending *n = realloc(d->late, cap * sizeof(*n));
        if (!n) {
            release(d, p);
            d->skips++;
            return;
        }
        d->late = n;
        d->cap_late = cap;
    }
    d->late[d->n_late++] = *p;
}

static void advance(struct fleet_driver *d, uint64_t now_ms)
{
    /* the ring: finished items leave, slow ones go to the late list */
    while (d->cursor < d->next) {
        const struct pending *p = &d->ring[d->cursor % d->ring_cap];
        if (finished(d, p->item_id))
            release(d, p);
        else if (now_ms - p->pub_ms >= SLOW_MS || d->next - d->cursor >= d->ring_cap)
            to_late(d, p);
        else
            break;
        d->cursor++;
    }
    /* the late list, a few times a second */
    if (now_ms < d->next_late_check)
        return;
    d->next_late_check = now_ms + LATE_CHECK_MS;
    for (size_t i = 0; i < d->n_late;) {
        const struct pending *p = &d->late[i];
        bool done = finished(d, p->item_id);
        if (done || now_ms - p->pub_ms >= d->o.gate_timeout_ms) {
            if (!done)
                d->skips++;
            release(d, p);
            d->late[i] = d->late[--d->n_late];
        } else {
            i++;
        }
    }
}

/* The next device with room, from the round-robin position; false if none has. */
static bool pick_device(struct fleet_driver *d, uint32_t *out)
{
    for (uint32_t n = 0; n < d->n_dev; n++) {
        uint32_t k = d->rr;
        d->rr = d->rr + 1 == d->n_dev ? 0 : d->rr + 1;
        if (d->open[k] < d->o.window) {
            *out = k;
            return true;
        }
    }
    return false;
}

int fleet_driver_pump(struct fleet_driver *d, uint64_t now_ms, int max_batch)
{
    uint64_t limit = UINT64_MAX;
    int n = 0;
    char dev[96], name[40];

    if (d->closed)
        return 0;
    advance(d, now_ms);
    if (d->o.items)
        limit = d->o.items;
    if (d->o.rate > 0) {
        if (d->rate_t0 == 0) {
            d->rate_t0 = now_ms;
            d->rate_base = d->next;
        }
        uint64_t due = d->rate_base + (uint64_t)(d->o.rate * (double)(now_ms - d->rate_t0) / 1000.0);
        /* held back by the windows for a while: do not burst more than a second's worth */
        if (due > d->next + (uint64_t)d->o.rate + 1) {
            d->rate_t0 = now_ms;
            d->rate_base = d->next;
            due = d->next;
        }
        if (due < limit)
            limit = due;
    }
    d->blocked = false;
    while (d->next < limit && n < max_batch) {
        uint32_t dv;
        int32_t id;
        const char *target = NULL;
        if (d->next + 1 > INT32_MAX) {
            d->closed = true; /* item ids are positive int32 */
            break;
        }
        if ((d->o.max_open && d->open_total >= d->o.max_open) || !pick_device(d, &dv)) {
            d->blocked = true;
            break;
        }
        if (d->next - d->cursor >= d->ring_cap)
            advance(d, now_ms); /* makes room: the head goes to the late list */
        id = (int32_t)(d->next + 1);
        if (d->o.per_device) {
            snprintf(dev, sizeof(dev), "%s%ld", d->prefix, d->o.id_start + (long)dv);
            target = dev;
        }
        snprintf(name, sizeof(name), "Item %ld", (long)id);
        d->ring[d->next % d->ring_cap] = (struct pending){ id, dv, now_ms };
        d->open[dv]++;
        d->open_total++;
        if (hx_backend_publish_item(d->o.backend, target, id, name, 1) != HX_OK) {
            if (d->failed++ == 0) /* the first one in words; the count is in the report */
                fprintf(stderr, "scansim run: publishing item %ld failed: %s\n", (long)id,
                        hx_backend_last_error());
        }
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
