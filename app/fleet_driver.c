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
#include "sim/fleet_devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOW_MS 200        /* unfinished this long: off the ring, onto the late list */
#define LATE_CHECK_MS 100  /* how often the late list is looked at */
#define LOST_SETTLE_MS 1000 /* after devices are lost, wait this long before re-sending their
                               items: registrations already sent reach the ledger first */
#define MOVED UINT32_MAX   /* a ring entry whose item went to another device */

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
    uint8_t *lost;         /* per device: 1 = gone for good */
    uint32_t n_lost;
    uint64_t lost_settle_at; /* re-send lost devices' items at this time; 0 = nothing due */
    struct pending *orphans; /* items taken from lost devices, waiting for a live one */
    size_t n_orphans, cap_orphans;
    uint64_t reassigned;
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
    d->lost = calloc(d->n_dev, sizeof(*d->lost));
    d->ring = calloc(d->ring_cap, sizeof(*d->ring));
    if (d->o.n_backends < 1) {
        d->o.backends[0] = d->o.backend;
        d->o.n_backends = 1;
    }
    if (!d->prefix || !d->open || !d->lost || !d->ring) {
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
    free(d->lost);
    free(d->ring);
    free(d->late);
    free(d->orphans);
    free(d);
}

/* The backend on device index dv's broker. */
static struct hx_backend *backend_of(const struct fleet_driver *d, uint32_t dv)
{
    return d->o.backends[fleet_broker_of(d->o.id_start + (long)dv, d->o.n_backends)];
}

static bool finished(struct fleet_driver *d, const struct pending *p)
{
    return hx_backend_item_finished(backend_of(d, p->device == MOVED ? 0 : p->device),
                                    p->item_id);
}

static void release(struct fleet_driver *d, const struct pending *p)
{
    if (p->device != MOVED && d->open[p->device] > 0) {
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
        if (p->device == MOVED || finished(d, p))
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
        bool done = finished(d, p);
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
        if (d->open[k] < d->o.window && !d->lost[k]) {
            *out = k;
            return true;
        }
    }
    return false;
}

/* Put item id on the ring for device dv and publish it (again, for a reassigned item). */
static void publish_to(struct fleet_driver *d, uint32_t dv, int32_t id, uint64_t now_ms)
{
    char dev[96], name[40];
    const char *target = NULL;

    if (d->next - d->cursor >= d->ring_cap)
        advance(d, now_ms); /* makes room: the head goes to the late list */
    if (d->o.per_device) {
        snprintf(dev, sizeof(dev), "%s%ld", d->prefix, d->o.id_start + (long)dv);
        target = dev;
    }
    snprintf(name, sizeof(name), "Item %ld", (long)id);
    d->ring[d->next % d->ring_cap] = (struct pending){ id, dv, now_ms };
    d->open[dv]++;
    d->open_total++;
    if (hx_backend_publish_item(backend_of(d, dv), target, id, name, 1) != HX_OK) {
        if (d->failed++ == 0) /* the first one in words; the count is in the report */
            fprintf(stderr, "scansim run: publishing item %ld failed: %s\n", (long)id,
                    hx_backend_last_error());
    }
}

void fleet_driver_devices_lost(struct fleet_driver *d, long first, long n, uint64_t now_ms)
{
    if (!d->o.per_device)
        return; /* seed layout: every device has every item; nothing to move */
    for (long i = first; i < first + n && i >= 0 && i < (long)d->n_dev; i++)
        if (!d->lost[i]) {
            d->lost[i] = 1;
            d->n_lost++;
        }
    d->lost_settle_at = now_ms + LOST_SETTLE_MS;
}

/* Take an unfinished item of a lost device off it, into the orphans. */
static void orphan(struct fleet_driver *d, struct pending *p)
{
    if (d->n_orphans == d->cap_orphans) {
        size_t cap = d->cap_orphans ? d->cap_orphans * 2 : 256;
        struct pending *o = realloc(d->orphans, cap * sizeof(*o));
        if (!o)
            return; /* it stays on its lost device and counts as lost */
        d->orphans = o;
        d->cap_orphans = cap;
    }
    release(d, p);
    d->orphans[d->n_orphans++] = *p;
    p->device = MOVED;
}

/* After the settle time: every unfinished item of a lost device becomes an orphan. */
static void collect_orphans(struct fleet_driver *d, uint64_t now_ms)
{
    if (!d->lost_settle_at || now_ms < d->lost_settle_at)
        return;
    d->lost_settle_at = 0;
    for (uint64_t i = d->cursor; i < d->next; i++) {
        struct pending *p = &d->ring[i % d->ring_cap];
        if (p->device != MOVED && d->lost[p->device] && !finished(d, p))
            orphan(d, p);
    }
    for (size_t i = 0; i < d->n_late;) {
        struct pending *p = &d->late[i];
        if (d->lost[p->device] && !finished(d, p)) {
            orphan(d, p);
            d->late[i] = d->late[--d->n_late];
        } else {
            i++;
        }
    }
}

/* A live device with room on the same broker as lost device `from` (a backend's ledger
   knows only its own items); false if none has room now. */
static bool pick_heir(struct fleet_driver *d, uint32_t from, uint32_t *out)
{
    struct hx_backend *b = backend_of(d, from);

    for (uint32_t n = 0; n < d->n_dev; n++) {
        uint32_t k = d->rr;
        d->rr = d->rr + 1 == d->n_dev ? 0 : d->rr + 1;
        if (!d->lost[k] && d->open[k] < d->o.window && backend_of(d, k) == b) {
            *out = k;
            return true;
        }
    }
    return false;
}

/* Orphans go to live devices first, before any new item. */
static int place_orphans(struct fleet_driver *d, uint64_t now_ms, int max_batch)
{
    int n = 0;

    for (size_t i = 0; i < d->n_orphans && n < max_batch;) {
        uint32_t dv;
        if (!pick_heir(d, d->orphans[i].device, &dv)) {
            i++;
            continue;
        }
        publish_to(d, dv, d->orphans[i].item_id, now_ms);
        d->next++;
        d->reassigned++;
        n++;
        d->orphans[i] = d->orphans[--d->n_orphans];
    }
    return n;
}

int fleet_driver_pump(struct fleet_driver *d, uint64_t now_ms, int max_batch)
{
    uint64_t limit = UINT64_MAX;
    int n = 0;

    advance(d, now_ms);
    collect_orphans(d, now_ms);
    n = place_orphans(d, now_ms, max_batch); /* even when closed: they were published */
    if (d->closed)
        return n;
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
    while (d->next - d->reassigned < limit && n < max_batch) {
        uint32_t dv;
        int32_t id;
        if (d->next + 1 > INT32_MAX) {
            d->closed = true; /* item ids are positive int32 */
            break;
        }
        if ((d->o.max_open && d->open_total >= d->o.max_open) || !pick_device(d, &dv)) {
            d->blocked = true;
            break;
        }
        id = (int32_t)(d->next - d->reassigned + 1);
        publish_to(d, dv, id, now_ms);
        d->next++;
        n++;
    }
    return n;
}

void fleet_driver_close(struct fleet_driver *d)
{
    d->closed = true;
}

/* ring positions count re-sends too; items are the distinct ids */
uint64_t fleet_driver_published(const struct fleet_driver *d) { return d->next - d->reassigned; }
uint64_t fleet_driver_reassigned(const struct fleet_driver *d) { return d->reassigned; }
uint64_t fleet_driver_orphaned(const struct fleet_driver *d) { return d->n_orphans; }
uint64_t fleet_driver_failed(const struct fleet_driver *d) { return d->failed; }
uint64_t fleet_driver_gate_skips(const struct fleet_driver *d) { return d->skips; }
bool fleet_driver_blocked(const struct fleet_driver *d) { return d->blocked; }

bool fleet_driver_done_publishing(const struct fleet_driver *d)
{
    return d->closed || (d->o.items && d->next - d->reassigned >= d->o.items);
}
