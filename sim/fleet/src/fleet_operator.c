/*
 * fleet_operator.c - the scripted operator of every fleet device: it looks at the screen
 * and acts as a person would (think, scan the item's tag, confirm; a wrong tag, a cancel or
 * an inventory look-up now and then), on the device's owner thread. Its timers are a
 * min-heap per loop, so a tick pops only the devices that are due.
 */
#include "fleet_internal.h"

#include <string.h>

#include "sim/clock.h"
#include "sim/rng.h"

/* ------------------------------------------------------------------ randomness */

static uint32_t rng_next(struct fleet_dev *d)
{
    return sim_rng32_next(&d->rng);
}

/* true with probability p */
static bool rng_chance(struct fleet_dev *d, double p)
{
    if (p <= 0.0)
        return false;
    return (double)rng_next(d) / 4294967296.0 < p;
}

static uint64_t think_ms(struct fleet_dev *d)
{
    const struct fleet_opts *o = &d->fl->f->o;

    if (o->think_max_ms <= o->think_min_ms)
        return o->think_min_ms;
    return o->think_min_ms + rng_next(d) % (o->think_max_ms - o->think_min_ms + 1);
}

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

/* ------------------------------------------------------------------ the operator */

/* The tag a person finds on item item_id at device n: unique per device and item (the
   fleet-wide device number, so several runs or workers never share one). 10-byte UID. */
static void item_tag(const struct fleet_dev *d, int32_t item_id, uint8_t uid[10])
{
    uint32_t n = (uint32_t)(d->fl->f->o.id_start + d->index);

    uid[0] = 0xE0;
    uid[1] = (uint8_t)(n >> 24);
    uid[2] = (uint8_t)(n >> 16);
    uid[3] = (uint8_t)(n >> 8);
    uid[4] = (uint8_t)n;
    uid[5] = (uint8_t)((uint32_t)item_id >> 24);
    uid[6] = (uint8_t)((uint32_t)item_id >> 16);
    uid[7] = (uint8_t)((uint32_t)item_id >> 8);
    uid[8] = (uint8_t)item_id;
    uid[9] = 0x5C;
}

/* What the operator does after acting on a screen. */
enum op_next {
    OP_LOOK_AGAIN, /* pressed or scanned: look at the screen again */
    OP_STOP,       /* nothing to do now (a message or the timer wakes it) */
};

/* Registered, cancelled or an error: acknowledge only when there is more to do. */
static enum op_next op_on_notice(struct fleet_dev *d, const struct fw_status *st)
{
    if (st->pending == 0 && !(d->flags & FD_INVENTORY))
        return OP_STOP; /* the notice goes away by itself */
    sim_device_press(d->dev, FW_BUTTON_CONFIRM); /* acknowledge, look again */
    return OP_LOOK_AGAIN;
}

/* Has the operator thought long enough about the head item? Decides, once per item, the
   think time and whether to cancel it or scan a wrong tag first; false: a timer is set. */
static bool op_thought(struct fleet_dev *d, const struct fw_status *st, uint64_t now)
{
    const struct fleet_opts *o = &d->fl->f->o;

    if (st->head_item_id != d->think_item) {
        uint64_t t = think_ms(d);
        d->think_item = st->head_item_id;
        d->flags &= ~(FD_THOUGHT | FD_CANCEL | FD_WRONG);
        if (rng_chance(d, o->cancel_rate))
            d->flags |= FD_CANCEL;
        else if (rng_chance(d, o->wrong_tag_rate))
            d->flags |= FD_WRONG;
        d->think_until = now + t;
        if (t > 0) {
            timer_set(d, d->think_until);
            return false;
        }
        d->flags |= FD_THOUGHT;
    }
    if (!(d->flags & FD_THOUGHT)) {
        if (now < d->think_until) {
            if (d->heap_pos == 0)
                timer_set(d, d->think_until);
            return false;
        }
        d->flags |= FD_THOUGHT;
    }
    return true;
}

/* An item to register: leave for a look-up, or think, then cancel, scan a wrong tag or
   scan the item's tag. */
static enum op_next op_on_item(struct fleet_dev *d, const struct fw_status *st, uint64_t now)
{
    uint8_t uid[10];

    if (d->flags & FD_INVENTORY) {
        d->flags &= ~FD_INVENTORY;
        sim_device_press(d->dev, FW_BUTTON_MODE);
        return OP_LOOK_AGAIN;
    }
    if (!op_thought(d, st, now))
        return OP_STOP;
    if (d->flags & FD_CANCEL) {
        d->flags &= ~FD_CANCEL;
        sim_device_press(d->dev, FW_BUTTON_CANCEL);
        return OP_LOOK_AGAIN;
    }
    if (d->flags & FD_WRONG) {
        static const uint8_t wrong[3] = { 0xBA, 0xD0, 0x01 }; /* no reader gives 3 bytes */
        d->flags &= ~FD_WRONG;
        (void)sim_device_scan(d->dev, wrong, sizeof(wrong));
        return OP_LOOK_AGAIN;
    }
    item_tag(d, st->head_item_id, uid);
    (void)sim_device_scan(d->dev, uid, sizeof(uid));
    return OP_LOOK_AGAIN;
}

/* Confirm the registration; a full outbox is retried a tick later. */
static enum op_next op_on_confirm(struct fleet_dev *d, struct fw_device *fw,
                                  const struct fw_status *st, uint64_t now)
{
    const struct fleet_opts *o = &d->fl->f->o;
    uint32_t full = fw_device_stats(fw)->outbox_full;
    uint32_t done = fw_device_stats(fw)->registrations_confirmed;
    int32_t item = st->head_item_id;

    sim_device_press(d->dev, FW_BUTTON_CONFIRM);
    if (fw_device_stats(fw)->outbox_full != full) {
        /* waiting for acknowledgements: try again a tick later */
        timer_set(d, now + o->tick_ms);
        return OP_STOP;
    }
    if (fw_device_stats(fw)->registrations_confirmed != done) {
        d->last_item = item;
        if (rng_chance(d, o->inventory_rate))
            d->flags |= FD_INVENTORY;
    }
    return OP_LOOK_AGAIN;
}

/* The look-up scans the last item registered, else any tag. */
static enum op_next op_on_inventory_scan(struct fleet_dev *d)
{
    uint8_t uid[10];

    if (d->last_item > 0)
        item_tag(d, d->last_item, uid);
    else
        item_tag(d, (int32_t)(rng_next(d) & 0x7fffffff), uid);
    (void)sim_device_scan(d->dev, uid, sizeof(uid));
    return OP_LOOK_AGAIN;
}

/* One look at the screen and what the operator does about it. */
static enum op_next op_on_screen(struct fleet_dev *d, struct fw_device *fw,
                                 const struct fw_status *st, uint64_t now)
{
    switch (st->screen) {
    case FW_SCREEN_REGISTERED:
    case FW_SCREEN_CANCELLED:
    case FW_SCREEN_ERROR:
        return op_on_notice(d, st);
    case FW_SCREEN_IDLE:
        if (!(d->flags & FD_INVENTORY))
            return OP_STOP;
        d->flags &= ~FD_INVENTORY;
        sim_device_press(d->dev, FW_BUTTON_MODE);
        return OP_LOOK_AGAIN;
    case FW_SCREEN_ITEM:
        return op_on_item(d, st, now);
    case FW_SCREEN_CONFIRM:
        return op_on_confirm(d, fw, st, now);
    case FW_SCREEN_INVENTORY_SCAN:
        return op_on_inventory_scan(d);
    case FW_SCREEN_INVENTORY_WAIT:
        /* the answer arrives as a message (ready again); the time-out needs a timer */
        timer_set(d, now + FW_INVENTORY_TIMEOUT_MS + d->fl->f->o.tick_ms);
        return OP_STOP;
    case FW_SCREEN_INVENTORY_RESULT:
        sim_device_press(d->dev, FW_BUTTON_MODE); /* leave the look-up mode */
        return OP_LOOK_AGAIN;
    case FW_SCREEN_MESSAGE:
        sim_device_press(d->dev, FW_BUTTON_CONFIRM); /* read at once, dismissed */
        return OP_LOOK_AGAIN;
    case FW_SCREEN_LOCKED:
        return OP_STOP; /* nothing to do until the backend unlocks it (a message wakes us) */
    default:
        return OP_STOP;
    }
}

/*
 * Look at the screen and act until there is nothing to do now: acknowledge notices,
 * think, scan, confirm, look up. Runs on the owner thread only. Bounded: a device that
 * keeps refusing (outbox full) is retried by timer, never in a tight loop.
 */
void fleet__op_step(struct fleet_dev *d, uint64_t now)
{
    struct fleet_loop *fl = d->fl;
    struct fw_device *fw = sim_device_fw(d->dev);
    struct fw_status st;

    if (!(d->flags & FD_STARTED) || fl->closing)
        return;
    for (int guard = 0; guard < 64; guard++) {
        fw_device_status(fw, &st);
        if (op_on_screen(d, fw, &st, now) == OP_STOP)
            return;
    }
    timer_set(d, now + fl->f->o.tick_ms); /* still busy: look again next tick */
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
