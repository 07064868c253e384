/*
 * runner_operator.c - the scripted operator of `operator auto` groups: the runner's glue
 * around the fleet's operator (sim/fleet_operator.h), which does the looking and acting.
 *
 * It is a sim_loop_target attached to each event loop, so it runs on the thread that owns
 * the loop's devices. Each tick it steps the operator of every device that is in an auto
 * group, not paused (`operator pause`) and powered; the operator's own state keeps its
 * waits (think, read a `message`, a refused confirm), so stepping it every tick rather than
 * at the time it asks for changes nothing but the resolution (the loop's tick).
 */
#include "runner_internal.h"

#include <stddef.h>

/* A confirm the device refused (outbox full) is tried again this much later. */
#define OP_RETRY_MS 300

/* The group's operator as the fleet's operator params (rates here are basis points). */
static void op_params(const struct scn_operator *so, struct fleet_operator_params *p)
{
    fleet_operator_params_defaults(p);
    p->think_min_ms = so->think_min_ms > 0 ? (uint64_t)so->think_min_ms : 0;
    p->think_max_ms = so->think_max_ms > 0 ? (uint64_t)so->think_max_ms : 0;
    p->wrong_tag_rate = so->wrong_tag_bp / 10000.0;
    p->cancel_rate = so->cancel_bp / 10000.0;
    p->retry_ms = OP_RETRY_MS;
}

void runner_operator_tick(struct sim_loop_target *t, uint64_t now_ms)
{
    struct runner_loop *l = (struct runner_loop *)((char *)t - offsetof(struct runner_loop, op_target));

    for (size_t i = 0; i < l->n_devs; i++) {
        struct runner_dev *d = l->devs[i];
        struct fleet_operator_params p;
        if (d->group->op.mode != SCN_OPERATOR_AUTO || atomic_load(&d->op_paused) ||
            !atomic_load(&d->powered))
            continue;
        op_params(&d->group->op, &p);
        (void)fleet_operator_step(&d->op, &p, d->dev, d->num, now_ms); /* polled: next tick */
    }
}

void runner_operator_event(struct sim_loop_target *t, const struct sim_event *ev)
{
    (void)t; /* nothing is ever addressed to the operator */
    (void)ev;
}
