/*
 * fleet_timers.c - when each fleet device's scripted operator (sim/fleet_operator.h) looks
 * at its screen: when a message reached the device (the loop's ready list, served by one
 * posted closure per batch) and when the time the operator asked for is due (one timer per
 * device, a min-heap per loop, so a tick pops only the devices that are due). Owner thread.
 *
 * Sections: timer heap, stepping the operator.
 */
#include "fleet_internal.h"

#include "sim/clock.h"

/* ------------------------------------------------------------------ timer heap */

static void heap_swap(struct fleet_loop *fl, size_t a, size_t b)
{
    struct fleet_dev *t = fl->heap[a];

    fl->heap[a] = fl->heap[b];
    fl->heap[b] = t;
    fl->heap[a]->heap_pos = (uint32_t)a + 1;
    fl->heap[b]->heap_pos = (uint32_t)b + 1;
}

static void heap_up(struct fleet_loop *fl, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (fl->heap[p]->due_ms <= fl->heap[i]->due_ms)
            break;
        heap_swap(fl, p, i);
        i = p;
    }
}

static void heap_down(struct fleet_loop *fl, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < fl->heap_n && fl->heap[l]->due_ms < fl->heap[m]->due_ms)
            m = l;
        if (r < fl->heap_n && fl->heap[r]->due_ms < fl->heap[m]->due_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(fl, i, m);
        i = m;
    }
}

/* Set (or move) the device's one timer. The heap has room for every device of the loop. */
static void timer_set(struct fleet_dev *d, uint64_t due)
{
    struct fleet_loop *fl = d->fl;

    d->due_ms = due;
    if (d->heap_pos == 0) {
        fl->heap[fl->heap_n] = d;
        d->heap_pos = (uint32_t)++fl->heap_n;
        heap_up(fl, fl->heap_n - 1);
    } else {
        heap_up(fl, d->heap_pos - 1);
        heap_down(fl, d->heap_pos - 1);
    }
}

struct fleet_dev *fleet__heap_pop_due(struct fleet_loop *fl, uint64_t now)
{
    struct fleet_dev *d;

    if (fl->heap_n == 0 || fl->heap[0]->due_ms > now)
        return NULL;
    d = fl->heap[0];
    heap_swap(fl, 0, fl->heap_n - 1);
    fl->heap_n--;
    d->heap_pos = 0;
    if (fl->heap_n > 0)
        heap_down(fl, 0);
    return d;
}

/* ------------------------------------------------------------------ stepping the operator */

/* Let the operator look and act; it sets its own next look (a message also wakes it, and
   a timer left from an earlier look only makes it look once more, which does nothing). */
void fleet__op_step(struct fleet_dev *d, uint64_t now)
{
    struct fleet_loop *fl = d->fl;
    struct fleet *f = fl->f;
    uint64_t due;

    if (!(d->flags & FD_STARTED) || fl->closing)
        return;
    due = fleet_operator_step(&d->op, &f->op_params, d->dev,
                              (uint32_t)(f->o.id_start + d->index), now);
    if (due != FLEET_OPERATOR_IDLE)
        timer_set(d, due);
}

/* Serve the ready list (a closure posted by the observer; owner thread). */
void fleet__op_serve_ready(void *arg)
{
    struct fleet_loop *fl = arg;
    uint64_t now = sim_clock_ms();
    struct fleet_dev *d;

    fl->ready_posted = false;
    while ((d = fl->ready)) {
        fl->ready = d->ready_next;
        d->ready_next = NULL;
        d->flags &= ~FD_READY;
        fleet__op_step(d, now);
    }
}
