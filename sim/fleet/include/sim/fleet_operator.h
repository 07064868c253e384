/*
 * fleet_operator.h - the scripted operator: a warehouse person in front of one simulated
 * scanner. It looks at the screen (fw_device_status) and acts as a careful person would:
 * think about the head item, scan its tag (now and then a wrong tag first, or cancel the
 * item instead), confirm; read a `message` for a think time and dismiss it; leave a
 * `locked` scanner alone; acknowledge a notice only when there is more to do; now and then
 * look the last registered tag up in inventory mode.
 *
 * The operator owns no timer and no thread. fleet_operator_step() is called on the
 * device's owner thread (sim/loop.h) with the device, its fleet-wide number and now; it acts
 * with sim_device_scan / sim_device_press (so it sees each result at once), and returns
 * when it wants to look again. The caller decides how it is woken: sim_fleet keeps a timer
 * heap and also steps a device when a message reached it; a caller that polls may step
 * every device each tick. A step before the time it asked for does nothing it should not:
 * every wait (thinking, reading, a refused confirm) is kept in the state, not the caller.
 *
 * Randomness: one xorshift32 (sim/rng.h) per device, in the state. Tags: one scheme for
 * every caller (fleet_operator_tag).
 *
 * Ownership: the caller owns the state and the params (plain structs, nothing allocated);
 * the device is borrowed for the call.
 */
#ifndef SIM_FLEET_OPERATOR_H
#define SIM_FLEET_OPERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/device.h"

/** fleet_operator_step's "no time of its own": look again when something changes (a
 *  message reached the device, it was powered on, a step of a script). */
#define FLEET_OPERATOR_IDLE UINT64_MAX

/** Length of the operator's tags (an ISO 15693-sized UID, 10 bytes). */
#define FLEET_OPERATOR_TAG_LEN 10

/* How the operators of a fleet or a scenario group behave (shared, read-only in a step). */
struct fleet_operator_params {
    uint64_t think_min_ms, think_max_ms; /* time to look at an item or read a message */
    double wrong_tag_rate;   /* probability of a wrong scan before an item's right tag */
    double cancel_rate;      /* probability of cancelling an item instead of registering */
    double inventory_rate;   /* probability of an inventory look-up after a registration */
    uint64_t retry_ms;       /* a refused confirm (outbox full) is tried again this much later */
};

/* One operator's state (owner thread only; ~48 bytes, a fleet has one per device). */
struct fleet_operator {
    uint32_t rng;            /* xorshift32 state */
    uint32_t flags;          /* decisions and what the operator is in the middle of */
    int32_t think_item;      /* head item the decisions below are about (0: none yet) */
    int32_t last_item;       /* last item registered under this operator's tag (look-ups) */
    uint64_t think_until;    /* end of the think time for think_item */
    uint64_t read_until;     /* end of reading the `message` shown (0: none is being read) */
    uint64_t retry_at;       /* no confirm before this (the last one was refused) */
    uint8_t tag_gen;         /* bumped when the device refuses a tag as already registered */
    uint8_t last_gen;        /* tag_gen of last_item's tag */
};

/** Fill p with the defaults: think 0 ms, no wrong tags, cancels or look-ups, retry 50 ms. */
void fleet_operator_params_defaults(struct fleet_operator_params *p);

/** Start an operator with a seed (0 is replaced by a fixed non-zero one). */
void fleet_operator_init(struct fleet_operator *op, uint32_t seed);

/** The tag the operator finds on item item_id at device number num, generation gen: one per
 *  device and item (an inventory look-up of it finds the registered item), distinct across
 *  devices and worker processes (the fleet-wide number), and a fresh one per generation for
 *  a tag the device already knows. Writes FLEET_OPERATOR_TAG_LEN bytes, returns that. */
size_t fleet_operator_tag(uint32_t num, int32_t item_id, uint8_t gen,
                          uint8_t uid[FLEET_OPERATOR_TAG_LEN]);

/**
 * Look at dev's screen and act until there is nothing to do now (owner thread only).
 * num is the device's fleet-wide number (its id's number), which goes into its tags.
 * Returns the time (now's clock, ms) at which the operator wants to look again, or
 * FLEET_OPERATOR_IDLE. Bounded: a device that keeps refusing is retried later, never in a
 * tight loop.
 */
uint64_t fleet_operator_step(struct fleet_operator *op, const struct fleet_operator_params *p,
                             struct sim_device *dev, uint32_t num, uint64_t now);

#endif /* SIM_FLEET_OPERATOR_H */
