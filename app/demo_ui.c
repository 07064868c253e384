/*
 * demo_ui.c - the screen of `scansim demo` (demo_ui.h): the scanners' columns, the help
 * overlay, the notice and key lines, and which panel goes where (demo_layout.h; the panels
 * themselves are in demo_panels.c).
 *
 * Each frame is drawn with erase() + the panels and one refresh(): curses sends only what
 * changed, so nothing flickers, and a resize lays everything out again at the next frame.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "demo_keys.h"
#include "demo_layout.h"
#include "demo_panels.h"
#include "demo_ui.h"
#include "sim/display_ncurses.h"

/* ------------------------------------------------------------------ words */

const char *demo_offline_reason(const struct demo_view_dev *dv, char *out, size_t cap)
{
    const struct sim_device_snapshot *s = &dv->snap;

    out[0] = '\0';
    if (!dv->have_snap || s->status.online)
        return out;
    if (!s->powered)
        snprintf(out, cap, "powered off");
    else if (dv->net_cut)
        snprintf(out, cap, "cut by the demo (n restores)");
    else if (s->connected)
        snprintf(out, cap, "connected, subscribing");
    else if (dv->why == DEMO_WHY_REFUSED)
        snprintf(out, cap, "refused by the broker (code %d)", dv->refused_code);
    else if (dv->why == DEMO_WHY_GONE)
        snprintf(out, cap, "broker gone");
    else
        snprintf(out, cap, "connecting");
    return out;
}

/* ------------------------------------------------------------------ scanners */

/* The row under a scanner's OLED: what a person needs without the state panel. */
static void demo_ui__state_line(const struct demo_view_dev *dv, int y, int x, int w)
{
    const struct sim_device_snapshot *s = &dv->snap;
    char line[256], why[96], item[64] = "-", name[48];

    if (!dv->have_snap)
        return;
    if (s->status.head_item_id)
        snprintf(item, sizeof(item), "#%d %s", (int)s->status.head_item_id,
                 demo_panel_fit(name, sizeof(name), s->head_item_name, 14, false));
    if (s->status.online)
        snprintf(line, sizeof(line), "link ONLINE  screen %s  item %s  outbox %u  acked %u",
                 fw_screen_name(s->status.screen), item, (unsigned)s->status.outbox,
                 (unsigned)s->stats.registrations_acked);
    else
        snprintf(line, sizeof(line), "link OFFLINE: %s  screen %s  outbox %u",
                 demo_offline_reason(dv, why, sizeof(why)), fw_screen_name(s->status.screen),
                 (unsigned)s->status.outbox);
    sim_ncurses_text(y, x, w, sim_ncurses_attr(s->status.online ? SIM_COLOR_GOOD : SIM_COLOR_BAD),
                     line);
}

/* Scanner k's column: its OLED in a box (the chosen one highlighted) and its state line. */
static void demo_ui__scanner(const struct demo_view *v, const struct demo_layout *L, int k)
{
    const struct demo_view_dev *dv = &v->devs[k];
    struct demo_rect r = demo_layout_oled(L, k);
    bool chosen = k == v->chosen && v->ndev > 1;
    int frame = chosen ? (sim_ncurses_attr(SIM_COLOR_GOOD) | (int)A_BOLD) : 0;
    char title[160];

    if (v->ndev == 1)
        snprintf(title, sizeof(title), " OLED 128x64 - %s ", sim_oled_style_name(L->style));
    else
        snprintf(title, sizeof(title), " %s%d %s%s - %s ", chosen ? ">> " : "", k + 1, dv->id,
                 chosen ? " << keys" : "", sim_oled_style_name(L->style));
    if (frame)
        attron(frame);
    sim_ncurses_box(r.y, r.x, r.h, r.w, NULL);
    if (frame)
        attroff(frame);
    sim_ncurses_text(r.y, r.x + 2, r.w - 4, chosen ? (int)A_REVERSE : sim_ncurses_attr(SIM_COLOR_TITLE),
                     title);
    sim_oled_draw(r.y, r.x, L->style, dv->have_frame ? dv->fb : NULL);
    demo_ui__state_line(dv, r.y + r.h, r.x, r.w);
}

/* The scanners without a column, one word each, so Tab and the digits lead somewhere. */
static void demo_ui__roster(const struct demo_view *v, const struct demo_layout *L)
{
    char line[512];
    size_t o = 0;

    o += (size_t)snprintf(line, sizeof(line), "not shown (Tab or 1-%d):", v->ndev);
    for (int k = 0; k < v->ndev && o < sizeof(line); k++) {
        const struct demo_view_dev *dv = &v->devs[k];
        if (k >= L->first && k < L->first + L->shown)
            continue;
        o += (size_t)snprintf(line + o, sizeof(line) - o, "  %d %s %s", k + 1, dv->id,
                              dv->snap.status.online ? "ONLINE" : "OFFLINE");
    }
    sim_ncurses_text(L->roster.y, L->roster.x, L->roster.w, 0, line);
}

/* ------------------------------------------------------------------ help, notice, keys */

/* Every key and what it does, wrapped to the width, over the panels. */
static void demo_ui__help(const struct demo_view *v)
{
    int w = COLS < 100 ? COLS : 100, text_w = w - 4 - 7;
    int h = 4 + (v->ndev < 2), y, x = (COLS - w) / 2, row;
    char line[256];

    for (size_t i = 0; i < demo_keys_count; i++)
        h += demo_panel_wrap(demo_keys[i].help, text_w, 0, 0, false, 0);
    y = LINES > h ? (LINES - h) / 2 : 0;
    for (int r = 0; r < h; r++) /* blank the panels under the overlay */
        sim_ncurses_text(y + r, x, w, 0, demo_panel_fit(line, sizeof(line), "", w, true));
    sim_ncurses_box(y, x, h, w, "keys - any key closes this help");
    row = y + 2;
    for (size_t i = 0; i < demo_keys_count; i++) {
        const struct demo_key_doc *k = &demo_keys[i];
        sim_ncurses_text(row, x + 2, 7, sim_ncurses_attr(SIM_COLOR_TITLE), k->key);
        row += demo_panel_wrap(k->help, text_w, row, x + 2 + 7, true, 0);
    }
    if (v->ndev < 2 && row < y + h - 1)
        sim_ncurses_text(row, x + 2, w - 4, 0, "(Tab and 1-9 choose a scanner with --devices N)");
}

static void demo_ui__bottom(const struct demo_view *v)
{
    char line[512], bar[1024];

    if (v->prompt_active) {
        /* A complaint about the last key stays visible beside what was typed. */
        snprintf(line, sizeof(line), "tag UID in hex (4, 7 or 10 bytes; Enter sends, Esc cancels): %s_%s%s",
                 v->prompt, v->notice_error && v->notice[0] ? "   " : "",
                 v->notice_error ? v->notice : "");
        sim_ncurses_text(LINES - 2, 0, COLS, sim_ncurses_attr(SIM_COLOR_TITLE), line);
    } else if (v->notice[0]) {
        sim_ncurses_text(LINES - 2, 0, COLS,
                         sim_ncurses_attr(v->notice_error ? SIM_COLOR_BAD : SIM_COLOR_NONE),
                         v->notice);
    }
    if (v->stopping)
        snprintf(line, sizeof(line), "powering off: retained offline, DISCONNECT ...");
    else
        demo_keys_line(line, sizeof(line), COLS, v->ndev, v->devs[v->chosen].net_cut);
    /* Padded to the width: the reverse-video bar runs across the whole screen. */
    sim_ncurses_text(LINES - 1, 0, COLS, A_REVERSE,
                     demo_panel_fit(bar, sizeof(bar), line, COLS, true));
}

/* ------------------------------------------------------------------ the frame */

static void demo_ui__title(const struct demo_view *v)
{
    const struct demo_view_dev *dv = &v->devs[v->chosen];
    char title[512];

    if (v->ndev == 1)
        snprintf(title, sizeof(title), "scansim demo  device %s  broker %s  MQTT %s QoS %d%s%s",
                 dv->id, v->broker_uri, v->protocol, v->qos,
                 dv->proxy_port ? "  device via proxy " : "", dv->proxy_port ? dv->device_uri : "");
    else
        snprintf(title, sizeof(title), "scansim demo  %d scanners (%s layout)  keys drive %d %s  "
                 "broker %s  MQTT %s QoS %d", v->ndev, v->seed_layout ? "seed" : "per-device",
                 v->chosen + 1, dv->id, v->broker_uri, v->protocol, v->qos);
    sim_ncurses_text(0, 0, COLS, sim_ncurses_attr(SIM_COLOR_TITLE), title);
}

static void demo_ui__too_small(const struct demo_view *v, const struct demo_layout *L)
{
    const struct demo_view_dev *dv = &v->devs[v->chosen];
    char line[256];

    snprintf(line, sizeof(line), "terminal too small (%dx%d): the OLED needs at least %dx%d - "
             "enlarge the window", COLS, LINES, L->min_cols, L->min_lines);
    sim_ncurses_text(2, 0, COLS, sim_ncurses_attr(SIM_COLOR_BAD), line);
    snprintf(line, sizeof(line), "device %s %s  screen %s", dv->id,
             dv->snap.status.online ? "ONLINE" : "OFFLINE", fw_screen_name(dv->snap.status.screen));
    sim_ncurses_text(3, 0, COLS, 0, line);
}

void demo_ui_draw(const struct demo_view *v)
{
    struct demo_layout L;
    bool utf8 = sim_ncurses_locale_utf8() && !v->force_ascii;

    erase();
    demo_layout_compute(COLS, LINES, v->ndev, v->chosen, utf8, v->backend_on, &L);
    demo_ui__title(v);
    if (L.too_small) {
        demo_ui__too_small(v, &L);
    } else {
        for (int k = L.first; k < L.first + L.shown; k++)
            demo_ui__scanner(v, &L, k);
        if (L.side_kind == DEMO_SIDE_STATE)
            demo_panel_state(v, &v->devs[v->chosen], &L.side);
        else if (L.side_kind == DEMO_SIDE_LEDGER)
            demo_panel_ledger_narrow(v, &L.side);
        if (L.roster.h)
            demo_ui__roster(v, &L);
        if (L.log.h)
            demo_panel_log(v, &L.log, L.log_bare);
        if (L.state.h)
            demo_panel_state(v, &v->devs[v->chosen], &L.state);
        if (L.backend.h)
            demo_panel_backend(v, &L.backend);
    }
    if (v->show_help)
        demo_ui__help(v);
    demo_ui__bottom(v);
    refresh();
}
