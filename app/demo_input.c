/*
 * demo_input.c - what each key of `scansim demo` does (described in demo_keys.c): tags and
 * buttons go to the chosen scanner as loop events (sim_device_post_tag /
 * sim_device_post_button), `a` asks the backend for an item, `n` cuts or restores the
 * chosen scanner's own link, Tab and the digits choose the scanner, `?` shows the help.
 *
 * Every key says what it did on the notice line; a key that can do nothing says why.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "demo_app.h"
#include "sim/err.h"
#include "sim/rng.h"

/* Names the backend gives the items it creates (cycled). */
static const char *const demo_item_names[] = {
    "Pallet jack", "Cordless drill", "Safety helmet", "Label printer", "Hand truck",
    "Torque wrench", "Laser level", "Ladder 3m", "Tool case", "Fire extinguisher",
};

static uint64_t demo_input__rand(struct demo *d)
{
    return sim_rng_next(&d->rng);
}

static struct demo_unit *demo_input__chosen(struct demo *d)
{
    return &d->units[d->view.chosen];
}

/* ------------------------------------------------------------------ tags */

static void demo_input__present_tag(struct demo *d, const uint8_t *uid, size_t len, const char *how)
{
    struct demo_unit *u = demo_input__chosen(d);
    char hex[DEMO_TAG_HEX_MAX + 1];
    int rc;

    fw_tag_to_hex(uid, len, hex, sizeof(hex));
    rc = sim_device_post_tag(u->dev, uid, len);
    if (rc) {
        demo_notice(&d->view, true, "could not present tag %s: %s", hex, sim_strerror(rc));
        return;
    }
    snprintf(d->view.devs[u->index].last_tag, sizeof(d->view.devs[u->index].last_tag), "%s", hex);
    demo_log(&d->view, DEMO_LOG_UI, "%stag %s presented (%s, %zu bytes)", demo_who(d, u->index),
             hex, how, len);
    demo_notice(&d->view, false, "tag %s presented to %s", hex, u->id);
}

static void demo_input__random_tag(struct demo *d)
{
    static const size_t lens[] = { 4, 7, 10 };
    uint8_t uid[FW_TAG_UID_MAX];
    size_t len = lens[demo_input__rand(d) % 3];

    for (size_t i = 0; i < len; i++)
        uid[i] = (uint8_t)demo_input__rand(d);
    if (len == 7)
        uid[0] = 0x04; /* NXP's manufacturer code, as on most 7-byte NTAG/Ultralight UIDs */
    demo_input__present_tag(d, uid, len, "random");
}

/* The typed tag: hex digits, an even number of them, 1 to 10 bytes. Other lengths than 4,
   7 and 10 are sent on purpose: they exercise the firmware's wrong-tag screen. */
static void demo_input__prompt_submit(struct demo *d)
{
    uint8_t uid[FW_TAG_UID_MAX];
    size_t n = strlen(d->view.prompt);

    d->view.prompt_active = false;
    if (n == 0) {
        demo_notice(&d->view, false, "no tag typed");
        return;
    }
    if (n % 2) {
        demo_notice(&d->view, true, "tag '%s' has an odd number of hex digits: two per byte "
                    "(e.g. 04A1B2C3), press T to try again", d->view.prompt);
        return;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        sscanf(d->view.prompt + 2 * i, "%2x", &v);
        uid[i] = (uint8_t)v;
    }
    demo_input__present_tag(d, uid, n / 2, "typed");
}

static void demo_input__prompt_key(struct demo *d, int ch)
{
    size_t n = strlen(d->view.prompt);

    if (ch == 27) { /* Esc */
        d->view.prompt_active = false;
        demo_notice(&d->view, false, "tag entry cancelled");
    } else if (ch == '\r' || ch == '\n' || ch == KEY_ENTER) {
        demo_input__prompt_submit(d);
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
        if (n)
            d->view.prompt[n - 1] = '\0';
    } else if (ch > 0 && ch < 256 && strchr("0123456789abcdefABCDEF", ch)) {
        if (n < DEMO_TAG_HEX_MAX) {
            d->view.prompt[n] = (char)(ch >= 'a' ? ch - 32 : ch);
            d->view.prompt[n + 1] = '\0';
            d->view.notice[0] = '\0';
        } else {
            demo_notice(&d->view, true, "a UID has at most 10 bytes (20 hex digits)");
        }
    } else if (ch != KEY_RESIZE) {
        demo_notice(&d->view, true, "only hex digits 0-9 A-F in a tag UID (Esc cancels)");
    }
}

/* ------------------------------------------------------------------ backend and network */

/* The ledger panel lists the items this run published, newest first. */
static void demo_input__remember_item(struct demo *d, int32_t id, const char *name)
{
    struct demo_view *v = &d->view;
    int keep = v->nitems < DEMO_ITEMS_SHOWN ? v->nitems : DEMO_ITEMS_SHOWN - 1;

    memmove(&v->items[1], &v->items[0], (size_t)keep * sizeof(v->items[0]));
    memset(&v->items[0], 0, sizeof(v->items[0]));
    v->items[0].id = id;
    snprintf(v->items[0].name, sizeof(v->items[0].name), "%s", name);
    v->nitems = keep + 1;
}

static void demo_input__add_item(struct demo *d)
{
    if (!d->backend) {
        demo_notice(&d->view, true, "no backend (--no-backend): publish an item yourself, e.g. "
                    "mosquitto_pub -t %s -q 1 -m '{\"item_id\":1,\"item_name\":\"Drill\",\"tag_quantity\":1}'",
                    d->item_topic);
        return;
    }
    int32_t id = hx_backend_next_item_id(d->backend);
    const char *name = demo_item_names[(size_t)(id - 1) % (sizeof(demo_item_names) /
                                                              sizeof(demo_item_names[0]))];
    int32_t qty = 1 + (int32_t)(demo_input__rand(d) % 3);
    bool per_device = d->common.layout == SCANSIM_LAYOUT_PER_DEVICE;
    const char *to = per_device ? demo_input__chosen(d)->id : NULL;
    int rc = hx_backend_publish_item(d->backend, to, id, name, qty);

    if (rc) {
        demo_notice(&d->view, true, "the backend could not publish item %d: %s", (int)id,
                    hx_backend_last_error());
        return;
    }
    demo_input__remember_item(d, id, name);
    demo_log(&d->view, DEMO_LOG_UI, "backend publishes item %d \"%s\" (tag_quantity %d)%s%s",
             (int)id, name, (int)qty, to ? " to " : "", to ? to : "");
    demo_notice(&d->view, false, "item %d \"%s\" published%s%s", (int)id, name,
                to ? " to " : (d->ndev > 1 ? " to every scanner (seed layout)" : ""),
                to ? to : "");
}

static void demo_input__toggle_net(struct demo *d)
{
    struct demo_unit *u = demo_input__chosen(d);
    const char *who = demo_who(d, u->index);
    char err[256];

    if (!u->net) {
        demo_notice(&d->view, true, "no network cut: the device connects directly (%s)",
                    d->direct ? "--direct" : "the broker URI cannot be proxied");
        return;
    }
    if (!demo_net_is_cut(u->net)) {
        int n = demo_net_cut(u->net, err, sizeof(err));
        if (n < 0) {
            demo_notice(&d->view, true, "%s", err);
            return;
        }
        demo_log(&d->view, DEMO_LOG_UI, "%snetwork cut: proxy refuses connections, %d link(s) reset",
                 who, n);
        demo_notice(&d->view, false, "network of %s cut (press n to restore)", u->id);
    } else {
        if (demo_net_restore(u->net, err, sizeof(err)) < 0) {
            demo_notice(&d->view, true, "%s", err);
            return;
        }
        demo_log(&d->view, DEMO_LOG_UI, "%snetwork restored: the device reconnects at its next "
                 "attempt", who);
        demo_notice(&d->view, false, "network of %s restored", u->id);
    }
    d->view.devs[u->index].net_cut = demo_net_is_cut(u->net);
}

/* ------------------------------------------------------------------ buttons and choosing */

static void demo_input__button(struct demo *d, enum fw_button b, const char *name)
{
    struct demo_unit *u = demo_input__chosen(d);
    int rc = sim_device_post_button(u->dev, b);

    if (rc) {
        demo_notice(&d->view, true, "could not press %s: %s", name, sim_strerror(rc));
        return;
    }
    demo_log(&d->view, DEMO_LOG_UI, "%sbutton %s", demo_who(d, u->index), name);
    demo_notice(&d->view, false, "%s pressed on %s", name, u->id);
}

static void demo_input__choose(struct demo *d, int k)
{
    if (d->ndev < 2) {
        demo_notice(&d->view, true, "one scanner only: start with --devices N to choose among N");
        return;
    }
    if (k < 0 || k >= d->ndev) {
        demo_notice(&d->view, true, "no scanner %d: there are %d (keys 1-%d)", k + 1, d->ndev,
                    d->ndev);
        return;
    }
    d->view.chosen = k;
    demo_notice(&d->view, false, "the keys drive %d %s", k + 1, d->units[k].id);
}

/* ------------------------------------------------------------------ the key */

void demo_key(struct demo *d, int ch)
{
    d->dirty = true;
    if (ch == KEY_RESIZE)
        return; /* curses updated LINES/COLS; the next draw lays out again */
    if (d->view.prompt_active) {
        demo_input__prompt_key(d, ch);
        return;
    }
    if (d->view.show_help) {
        d->view.show_help = false; /* any key closes the help, and only closes it */
        return;
    }
    switch (ch) {
    case 'a': demo_input__add_item(d); break;
    case 't': demo_input__random_tag(d); break;
    case 'T':
        d->view.prompt_active = true;
        d->view.prompt[0] = '\0';
        d->view.notice[0] = '\0';
        break;
    case '\r':
    case '\n':
    case KEY_ENTER: demo_input__button(d, FW_BUTTON_CONFIRM, "CONFIRM"); break;
    case 'c': demo_input__button(d, FW_BUTTON_CANCEL, "CANCEL"); break;
    case 'i': demo_input__button(d, FW_BUTTON_MODE, "MODE"); break;
    case 'n': demo_input__toggle_net(d); break;
    case '\t': demo_input__choose(d, d->ndev > 1 ? (d->view.chosen + 1) % d->ndev : 0); break;
    case KEY_BTAB:
        demo_input__choose(d, d->ndev > 1 ? (d->view.chosen + d->ndev - 1) % d->ndev : 0);
        break;
    case '?': d->view.show_help = true; break;
    case 'q':
    case 'Q': d->quit = true; break;
    case 12: /* Ctrl-L: repaint everything */
        clearok(stdscr, TRUE);
        break;
    default:
        if (demo_command_key(d, ch))
            break;
        if (ch >= '1' && ch <= '9')
            demo_input__choose(d, ch - '1');
        else if (ch >= 0x20 && ch < 0x7f)
            demo_notice(&d->view, true, "key '%c' does nothing: ? shows every key", ch);
        break;
    }
}
