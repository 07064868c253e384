/*
 * fleet_operator.c - the scripted operator (sim/fleet_operator.h): one look at a scanner's
 * screen and what a careful person does about it, stepped by `scansim run`'s fleet from
 * its timers, or by any caller from a tick.
 *
 * Sections: randomness, tags, one look (the screens' handlers), the step.
 *
 * It acts with sim_device_scan / sim_device_press on the owner thread, so every result is
 * on the screen before it looks again: it presses only over the screen it means (a notice
 * is acknowledged first, on purpose), and no press is ever swallowed by a notice that came
 * in between, so nothing is pressed again on a guess.
 */
#include "sim/fleet_operator.h"

#include <string.h>

#include "fw/fw_device.h"
#include "sim/rng.h"

/* Operator flags (struct fleet_operator.flags). */
#define OP_THOUGHT 0x01u     /* the think time for think_item is over */
#define OP_CANCEL 0x02u      /* decided: cancel think_item */
#define OP_WRONG 0x04u       /* decided: scan a wrong tag first */
#define OP_SCANNED 0x08u     /* its own tag for think_item is scanned */
#define OP_INVENTORY 0x10u   /* wants an inventory look-up */
#define OP_LOOKUP 0x20u      /* in a look-up it started itself */
#define OP_LOOKED 0x40u      /* that look-up's tag is scanned */

/* Actions in one step before it gives the device a rest (each action changes the screen;
   a registration takes four: acknowledge, scan, confirm, acknowledge). */
#define OP_ACTIONS_MAX 64

void fleet_operator_params_defaults(struct fleet_operator_params *p)
{
    memset(p, 0, sizeof(*p));
    p->retry_ms = 50;
}

void fleet_operator_init(struct fleet_operator *op, uint32_t seed)
{
    memset(op, 0, sizeof(*op));
    op->rng = seed ? seed : 0x5eed5eedu;
}

/* ------------------------------------------------------------------ randomness */

/* true with probability p */
static bool op_chance(struct fleet_operator *op, double p)
{
    if (p <= 0.0)
        return false;
    return (double)sim_rng32_next(&op->rng) / 4294967296.0 < p;
}

static uint64_t op_think_ms(struct fleet_operator *op, const struct fleet_operator_params *p)
{
    if (p->think_max_ms <= p->think_min_ms)
        return p->think_min_ms;
    return p->think_min_ms + sim_rng32_next(&op->rng) % (p->think_max_ms - p->think_min_ms + 1);
}

/* ------------------------------------------------------------------ tags */

/* 10 bytes: E0, the device number, the item id, the generation. Per device and item rather
   than per scan, so a look-up of the registered item's tag finds it; the generation gives
   a fresh tag when the device already knows one (a redelivered item it registered before,
   or a flash from an earlier run), so a re-scan is never refused for ever. */
size_t fleet_operator_tag(uint32_t num, int32_t item_id, uint8_t gen,
                          uint8_t uid[FLEET_OPERATOR_TAG_LEN])
{
    uint32_t item = (uint32_t)item_id;

    uid[0] = 0xE0;
    uid[1] = (uint8_t)(num >> 24);
    uid[2] = (uint8_t)(num >> 16);
    uid[3] = (uint8_t)(num >> 8);
    uid[4] = (uint8_t)num;
    uid[5] = (uint8_t)(item >> 24);
    uid[6] = (uint8_t)(item >> 16);
    uid[7] = (uint8_t)(item >> 8);
    uid[8] = (uint8_t)item;
    uid[9] = gen;
    return FLEET_OPERATOR_TAG_LEN;
}

/* ------------------------------------------------------------------ one look */

/* What one step knows while it looks and acts. */
struct look {
    struct fleet_operator *op;
    const struct fleet_operator_params *p;
    struct sim_device *dev;
    struct fw_device *fw;
    struct fw_status st;     /* the screen, read before each action */
    uint32_t num;            /* fleet-wide device number */
    uint64_t now;
    uint64_t due;            /* when to look again, once a handler says OP_STOP */
};

enum op_next {
    OP_LOOK_AGAIN, /* pressed or scanned: look at the screen again */
    OP_STOP,       /* nothing to do before l->due */
};

static enum op_next op_stop(struct look *l, uint64_t due)
{
    l->due = due;
    return OP_STOP;
}

/* Registered, cancelled or an error: acknowledge only when there is more to do. */
static enum op_next op_on_notice(struct look *l)
{
    if (l->st.pending == 0 && !(l->op->flags & (OP_INVENTORY | OP_LOOKUP)))
        return op_stop(l, FLEET_OPERATOR_IDLE); /* the notice goes away by itself */
    sim_device_press(l->dev, FW_BUTTON_CONFIRM);
    return OP_LOOK_AGAIN;
}

/* A `message` is read for a think time, then dismissed (any button does). The work under
   it is kept: after it, the operator goes on with the item where it was. */
static enum op_next op_on_message(struct look *l)
{
    struct fleet_operator *op = l->op;

    if (op->read_until == 0)
        op->read_until = l->now + op_think_ms(op, l->p);
    if (l->now < op->read_until)
        return op_stop(l, op->read_until);
    op->read_until = 0;
    sim_device_press(l->dev, FW_BUTTON_CONFIRM);
    return OP_LOOK_AGAIN;
}

/* Has the operator thought long enough about the head item? Decides, once per item, the
   think time and whether to cancel it or scan a wrong tag first; false: l->due is set. */
static bool op_thought(struct look *l)
{
    struct fleet_operator *op = l->op;

    if (l->st.head_item_id != op->think_item) {
        uint64_t t = op_think_ms(op, l->p);
        op->think_item = l->st.head_item_id;
        op->flags &= ~(OP_THOUGHT | OP_CANCEL | OP_WRONG | OP_SCANNED);
        if (op_chance(op, l->p->cancel_rate))
            op->flags |= OP_CANCEL;
        else if (op_chance(op, l->p->wrong_tag_rate))
            op->flags |= OP_WRONG;
        op->think_until = l->now + t;
    }
    if (op->flags & OP_THOUGHT)
        return true;
    if (l->now < op->think_until) {
        l->due = op->think_until;
        return false;
    }
    op->flags |= OP_THOUGHT;
    return true;
}

/* Enter inventory mode for the look-up decided after a registration. */
static enum op_next op_start_lookup(struct look *l)
{
    l->op->flags = (l->op->flags & ~OP_INVENTORY) | OP_LOOKUP;
    sim_device_press(l->dev, FW_BUTTON_MODE);
    return OP_LOOK_AGAIN;
}

/* Scan the head item's tag; one the device refuses as already registered is replaced by
   the next generation on the next look. */
static enum op_next op_scan_item_tag(struct look *l)
{
    struct fleet_operator *op = l->op;
    uint32_t wrong = fw_device_stats(l->fw)->wrong_tags;
    uint8_t uid[FLEET_OPERATOR_TAG_LEN];
    size_t len = fleet_operator_tag(l->num, l->st.head_item_id, op->tag_gen, uid);

    (void)sim_device_scan(l->dev, uid, len);
    if (fw_device_stats(l->fw)->wrong_tags != wrong)
        op->tag_gen++;
    else
        op->flags |= OP_SCANNED;
    return OP_LOOK_AGAIN;
}

/* The decision drawn for this item was to cancel it: press cancel, once. */
static enum op_next op_cancel(struct look *l)
{
    l->op->flags &= ~OP_CANCEL;
    sim_device_press(l->dev, FW_BUTTON_CANCEL);
    return OP_LOOK_AGAIN;
}

/* An item to register: leave for a look-up, or think, then cancel, scan a wrong tag (and
   think again, looking at the error) or scan the item's tag. */
static enum op_next op_on_item(struct look *l)
{
    struct fleet_operator *op = l->op;

    if (op->flags & OP_INVENTORY)
        return op_start_lookup(l);
    if (!op_thought(l))
        return OP_STOP;
    if (op->flags & OP_CANCEL)
        return op_cancel(l);
    if (op->flags & OP_WRONG) {
        static const uint8_t wrong[3] = { 0xBA, 0xD0, 0x01 }; /* no reader gives 3 bytes */
        op->flags &= ~(OP_WRONG | OP_THOUGHT);
        op->think_until = l->now + op_think_ms(op, l->p);
        (void)sim_device_scan(l->dev, wrong, sizeof(wrong));
        return OP_LOOK_AGAIN;
    }
    return op_scan_item_tag(l);
}

/* Confirm the scanned tag (its own, or one scanned by someone else once it has thought
   about the item); a refused confirm (outbox full) is tried again p->retry_ms later. */
static enum op_next op_on_confirm(struct look *l, uint64_t retry_ms)
{
    struct fleet_operator *op = l->op;
    uint32_t done = fw_device_stats(l->fw)->registrations_confirmed;
    bool own_tag;

    if (!op_thought(l))
        return OP_STOP;
    if (op->flags & OP_CANCEL)
        return op_cancel(l);
    if (l->now < op->retry_at)
        return op_stop(l, op->retry_at);
    own_tag = (op->flags & OP_SCANNED) != 0;
    sim_device_press(l->dev, FW_BUTTON_CONFIRM);
    if (fw_device_stats(l->fw)->registrations_confirmed == done) {
        op->retry_at = l->now + retry_ms; /* waiting for acknowledgements to make room */
        return op_stop(l, op->retry_at);
    }
    if (own_tag) {
        op->last_item = op->think_item;
        op->last_gen = op->tag_gen;
    }
    if (op_chance(op, l->p->inventory_rate))
        op->flags |= OP_INVENTORY;
    return OP_LOOK_AGAIN;
}

/* The look-up scans the last item registered under its tag, else any tag; a second
   inventory_scan screen in the same look-up (the query could not be sent) ends it. */
static enum op_next op_on_inventory_scan(struct look *l)
{
    struct fleet_operator *op = l->op;
    uint8_t uid[FLEET_OPERATOR_TAG_LEN];
    size_t len;

    if (!(op->flags & OP_LOOKUP))
        return op_stop(l, FLEET_OPERATOR_IDLE); /* someone else's look-up */
    if (op->flags & OP_LOOKED) {
        op->flags &= ~(OP_LOOKUP | OP_LOOKED);
        sim_device_press(l->dev, FW_BUTTON_MODE);
        return OP_LOOK_AGAIN;
    }
    if (op->last_item > 0)
        len = fleet_operator_tag(l->num, op->last_item, op->last_gen, uid);
    else
        len = fleet_operator_tag(l->num, (int32_t)(sim_rng32_next(&op->rng) & 0x7fffffff), 0, uid);
    op->flags |= OP_LOOKED;
    (void)sim_device_scan(l->dev, uid, len);
    return OP_LOOK_AGAIN;
}

/* The answer (or the time-out) shown: leave the look-up mode. */
static enum op_next op_on_inventory_result(struct look *l)
{
    if (!(l->op->flags & OP_LOOKUP))
        return op_stop(l, FLEET_OPERATOR_IDLE);
    l->op->flags &= ~(OP_LOOKUP | OP_LOOKED);
    sim_device_press(l->dev, FW_BUTTON_MODE);
    return OP_LOOK_AGAIN;
}

/* One look at the screen and what the operator does about it. */
static enum op_next op_on_screen(struct look *l, uint64_t retry_ms)
{
    struct fleet_operator *op = l->op;

    if (l->st.screen != FW_SCREEN_MESSAGE)
        op->read_until = 0;
    switch (l->st.screen) {
    case FW_SCREEN_REGISTERED:
    case FW_SCREEN_CANCELLED:
    case FW_SCREEN_ERROR:
        return op_on_notice(l);
    case FW_SCREEN_MESSAGE:
        return op_on_message(l);
    case FW_SCREEN_LOCKED:
        /* a person does not use a scanner that says it is locked (the unlock wakes it) */
        return op_stop(l, FLEET_OPERATOR_IDLE);
    case FW_SCREEN_INVENTORY_SCAN:
        return op_on_inventory_scan(l);
    case FW_SCREEN_INVENTORY_WAIT:
        if (!(op->flags & OP_LOOKUP))
            return op_stop(l, FLEET_OPERATOR_IDLE);
        /* the answer arrives as a message; the time-out needs a look of its own */
        return op_stop(l, l->now + FW_INVENTORY_TIMEOUT_MS + retry_ms);
    case FW_SCREEN_INVENTORY_RESULT:
        return op_on_inventory_result(l);
    default:
        break;
    }
    op->flags &= ~(OP_LOOKUP | OP_LOOKED); /* out of inventory mode, whoever left it */
    if (l->st.screen == FW_SCREEN_ITEM)
        return op_on_item(l);
    if (l->st.screen == FW_SCREEN_CONFIRM)
        return op_on_confirm(l, retry_ms);
    if (op->flags & OP_INVENTORY)
        return op_start_lookup(l); /* idle: nothing waits, look the last tag up */
    return op_stop(l, FLEET_OPERATOR_IDLE);
}

/* ------------------------------------------------------------------ the step */

uint64_t fleet_operator_step(struct fleet_operator *op, const struct fleet_operator_params *p,
                             struct sim_device *dev, uint32_t num, uint64_t now)
{
    uint64_t retry_ms = p->retry_ms ? p->retry_ms : 1; /* never due again at once */
    struct look l = { .op = op, .p = p, .dev = dev, .fw = sim_device_fw(dev), .num = num,
                      .now = now, .due = FLEET_OPERATOR_IDLE };

    for (int i = 0; i < OP_ACTIONS_MAX; i++) {
        fw_device_status(l.fw, &l.st);
        if (op_on_screen(&l, retry_ms) == OP_STOP)
            return l.due;
    }
    return now + retry_ms; /* still busy: look again a little later */
}
