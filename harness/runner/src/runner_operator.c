/*
 * runner_operator.c - the scripted operator of `operator auto` groups.
 *
 * It is a sim_loop_target attached to each event loop, so it runs on the thread that owns
 * the loop's devices and reads their screens directly (fw_device_status), as a person looks
 * at the display. Per device: when an item shows, wait a think time drawn from the group's
 * range, then scan a tag (a wrong one with wrong_tags probability, after which it scans
 * again) or press cancel (cancels probability), then press confirm once the confirm screen
 * shows. Tags and buttons go through sim_device_post_tag / post_button (the loop's queue),
 * exactly as a keyboard would deliver them.
 *
 * Buttons over a transient notice (registered, cancelled, error) only acknowledge it, so the
 * operator presses only when the screen it means is showing, and presses again if a notice
 * swallowed the press (docs/protocol.md, "The operator's side"). A tag acts on the screen
 * underneath a notice, so scanning the next item need not wait 1.5 s.
 *
 * Remote commands bring two more screens. A `message` is read, then dismissed: after a
 * think time the operator presses confirm (any button dismisses it; tags are ignored while
 * it shows), then goes on where it was. A `locked` device is left alone: a person does
 * not use a scanner that says it is locked, and a scripted tag or press would only be
 * counted as a locked_refusal. Either way the operator's own state is kept, so after the
 * message or the unlock it carries on with the item (a tag scanned before stays scanned).
 */
#include "runner_internal.h"

#include <stddef.h>
#include <string.h>

/* Re-press when the screen still shows what the press was meant for after this long. */
#define OP_RETRY_MS 300

static uint64_t op_think(struct runner_dev *d)
{
    const struct scn_operator *op = &d->group->op;
    int64_t lo = op->think_min_ms, hi = op->think_max_ms;
    if (hi <= lo)
        return (uint64_t)(lo > 0 ? lo : 0);
    return (uint64_t)lo + scn_rng_next(&d->op_rng) % (uint64_t)(hi - lo + 1);
}

/* True with probability bp / 10000. */
static bool op_roll(struct runner_dev *d, uint32_t bp)
{
    if (bp == 0)
        return false;
    return scn_rng_next(&d->op_rng) % 10000u < bp;
}

size_t runner_operator_uid(struct runner_dev *d, uint8_t *uid)
{
    /* 7-byte UID: unique per device and scan, so never "already registered". */
    uint32_t n = ++d->op_tags;
    uid[0] = 0x04;
    uid[1] = (uint8_t)(d->num >> 16);
    uid[2] = (uint8_t)(d->num >> 8);
    uid[3] = (uint8_t)d->num;
    uid[4] = (uint8_t)(n >> 16);
    uid[5] = (uint8_t)(n >> 8);
    uid[6] = (uint8_t)n;
    return 7;
}

/* The `message` and `locked` screens: true when the operator acts on nothing else now. */
static bool op_command_screen(struct runner_dev *d, const struct fw_status *st, uint64_t now)
{
    if (st->screen == FW_SCREEN_LOCKED) {
        d->op_read_until = 0;
        return true;
    }
    if (st->screen != FW_SCREEN_MESSAGE) {
        d->op_read_until = 0;
        return false;
    }
    if (d->op_read_until == 0) {
        d->op_read_until = now + op_think(d); /* reading it */
    } else if (now >= d->op_read_until) {
        sim_device_post_button(d->dev, FW_BUTTON_CONFIRM);
        d->op_read_until = now + OP_RETRY_MS; /* again, if the press did not take */
    }
    if (d->op_deadline < now + OP_RETRY_MS)
        d->op_deadline = now + OP_RETRY_MS; /* a press for the item: not while it shows */
    return true;
}

static void op_device(struct runner_dev *d, uint64_t now)
{
    if (d->group->op.mode != SCN_OPERATOR_AUTO || atomic_load(&d->op_paused) ||
        !atomic_load(&d->powered))
        return;
    struct fw_device *fw = sim_device_fw(d->dev);
    struct fw_status st;
    fw_device_status(fw, &st);
    if (op_command_screen(d, &st, now))
        return;
    bool item_mode = st.screen != FW_SCREEN_INVENTORY_SCAN &&
                     st.screen != FW_SCREEN_INVENTORY_WAIT &&
                     st.screen != FW_SCREEN_INVENTORY_RESULT;
    int32_t head = st.pending > 0 && item_mode ? st.head_item_id : 0;

    switch (d->op_state) {
    case RUNNER_OP_IDLE:
        if (head != 0) {
            d->op_item = head;
            d->op_deadline = now + op_think(d);
            d->op_state = RUNNER_OP_THINK;
        }
        break;
    case RUNNER_OP_THINK:
        if (head != d->op_item) {
            d->op_state = RUNNER_OP_IDLE; /* someone else moved it on */
            break;
        }
        if (now < d->op_deadline)
            break;
        if (op_roll(d, d->group->op.wrong_tag_bp)) {
            static const uint8_t wrong[3] = {0x04, 0xBA, 0xD0}; /* not 4, 7 or 10 bytes */
            sim_device_post_tag(d->dev, wrong, sizeof wrong);
            d->op_deadline = now + op_think(d); /* look, then scan the right tag */
            break;
        }
        if (op_roll(d, d->group->op.cancel_bp)) {
            d->op_cancel = true;
            if (st.screen == FW_SCREEN_ITEM || st.screen == FW_SCREEN_CONFIRM) {
                sim_device_post_button(d->dev, FW_BUTTON_CANCEL);
                d->op_deadline = now + OP_RETRY_MS;
                d->op_state = RUNNER_OP_PRESSED;
            }
            break; /* over a notice: the next tick rolls again */
        }
        {
            uint8_t uid[FW_TAG_UID_MAX];
            size_t len = runner_operator_uid(d, uid);
            sim_device_post_tag(d->dev, uid, len);
        }
        d->op_cancel = false;
        d->op_deadline = now + OP_RETRY_MS;
        d->op_state = RUNNER_OP_TAGGED;
        break;
    case RUNNER_OP_TAGGED:
        if (head != d->op_item) {
            d->op_state = RUNNER_OP_IDLE;
        } else if (st.screen == FW_SCREEN_CONFIRM) {
            sim_device_post_button(d->dev, FW_BUTTON_CONFIRM);
            d->op_deadline = now + OP_RETRY_MS;
            d->op_state = RUNNER_OP_PRESSED;
        } else if (st.screen == FW_SCREEN_ITEM && now >= d->op_deadline) {
            d->op_state = RUNNER_OP_THINK; /* the tag did not take: scan again */
            d->op_deadline = now;
        }
        break;
    case RUNNER_OP_PRESSED:
        if (head != d->op_item) {
            d->op_state = RUNNER_OP_IDLE; /* registered (or skipped): next item */
        } else if (now >= d->op_deadline) {
            /* A notice swallowed the press, or the outbox was full: look again. */
            if (st.screen == FW_SCREEN_CONFIRM && !d->op_cancel) {
                sim_device_post_button(d->dev, FW_BUTTON_CONFIRM);
                d->op_deadline = now + OP_RETRY_MS;
            } else if (st.screen == FW_SCREEN_ITEM || st.screen == FW_SCREEN_CONFIRM) {
                d->op_state = RUNNER_OP_THINK;
                d->op_deadline = now;
            }
        }
        break;
    }
}

void runner_operator_tick(struct sim_loop_target *t, uint64_t now_ms)
{
    struct runner_loop *l = (struct runner_loop *)((char *)t - offsetof(struct runner_loop, op_target));
    for (size_t i = 0; i < l->n_devs; i++)
        op_device(l->devs[i], now_ms);
}

void runner_operator_event(struct sim_loop_target *t, const struct sim_event *ev)
{
    (void)t; /* nothing is ever addressed to the operator */
    (void)ev;
}
