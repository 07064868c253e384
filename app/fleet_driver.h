/*
 * fleet_driver.h - the backend role at load: which item goes to which device, and when.
 *
 * Items get ids 1, 2, 3, ... and go round-robin to the devices in the per-device layout
 * (every device sees every item in the seed layout). A device queues at most
 * FW_PENDING_ITEMS items and refuses the rest (an item refused for a full queue is lost
 * unless re-sent), so the driver keeps at most `window` unfinished items per device and
 * skips a device whose window is full. An item is finished when the ledger has its
 * registration (hx_backend_item_registrations: an in-memory hash look-up), or, for the
 * window only, after gate_timeout_ms (cancelled by the operator, lost, very late: the
 * ledger still counts it). O(1) work per item; one slow item never holds up the others.
 *
 * One thread (the caller's) drives it. The backend is borrowed.
 *
 * Several brokers: one backend per broker; an item for device number k goes out through
 * backends[fleet_broker_of(k, n)], the one on that device's broker.
 *
 * Devices lost (their worker process died): they get no new items, and ~1 s later (time for
 * registrations already on their way to arrive) their unfinished items go to live devices,
 * the same item id again (the ledger counts the first publish time and any second
 * registration). Items with no live device left to take them are counted as orphaned.
 */
#ifndef SCANSIM_FLEET_DRIVER_H
#define SCANSIM_FLEET_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "hx/backend.h"

#define FLEET_DRIVER_BACKENDS_MAX 16

struct fleet_driver_opts {
    struct hx_backend *backend;  /* started; borrowed (one broker) */
    struct hx_backend *backends[FLEET_DRIVER_BACKENDS_MAX]; /* or one per broker (n > 1) */
    int n_backends;
    int devices;                 /* N, all workers together */
    const char *id_prefix;
    long id_start;
    bool per_device;             /* false: seed layout, no device id on publish */
    uint64_t items;              /* total to publish; 0 = no limit (rate/duration decide) */
    double rate;                 /* items per second; 0 = as fast as the window allows */
    int window;                  /* unfinished items per device (1..FW_PENDING_ITEMS) */
    uint64_t max_open;           /* unfinished items in all; 0 = no limit but the windows */
    uint64_t gate_timeout_ms;    /* an unfinished item stops holding the window after this */
};

struct fleet_driver;

/** 0 or -1 (out of memory). Copies the options' strings. */
int fleet_driver_create(const struct fleet_driver_opts *o, struct fleet_driver **out);
void fleet_driver_free(struct fleet_driver *d);

/** Publish what is due at now_ms (at most max_batch items). Returns how many. */
int fleet_driver_pump(struct fleet_driver *d, uint64_t now_ms, int max_batch);

/** Stop publishing for good (duration over, Ctrl-C). */
void fleet_driver_close(struct fleet_driver *d);

uint64_t fleet_driver_published(const struct fleet_driver *d);
uint64_t fleet_driver_failed(const struct fleet_driver *d); /* publish calls that failed */
uint64_t fleet_driver_gate_skips(const struct fleet_driver *d);
/** Every item that will be published has been (item count reached, or closed). */
bool fleet_driver_done_publishing(const struct fleet_driver *d);
/** Publishing is held back by the window right now. */
bool fleet_driver_blocked(const struct fleet_driver *d);

/** Devices [first, first + n) (indexes) are gone for good: see the header. */
void fleet_driver_devices_lost(struct fleet_driver *d, long first, long n, uint64_t now_ms);
/** Items of lost devices published again to live ones. */
uint64_t fleet_driver_reassigned(const struct fleet_driver *d);
/** Items of lost devices that no live device could take (every device lost). */
uint64_t fleet_driver_orphaned(const struct fleet_driver *d);

#endif /* SCANSIM_FLEET_DRIVER_H */
