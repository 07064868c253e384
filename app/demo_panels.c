/*
 * demo_panels.c - the state, log and ledger panels of `scansim demo` (demo_panels.h).
 *
 * Each panel draws into its rectangle and clips to it; text from the network (item names,
 * device ids) is cut by characters, never by bytes, so UTF-8 names stay whole.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "demo_panels.h"
#include "sim/display_ncurses.h"

/* ------------------------------------------------------------------ text */

/* Copy at most cols characters (UTF-8 sequences, never cut) of src into dst and pad with
   spaces to cols when pad: names from the network are UTF-8, printf counts bytes. */
const char *demo_panel_fit(char *dst, size_t cap, const char *src, int cols, bool pad)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t o = 0;
    int n = 0;

    while (*p && n < cols) {
        size_t len = (*p >= 0xF0) ? 4 : (*p >= 0xE0) ? 3 : (*p >= 0xC0) ? 2 : 1;
        if (o + len + 1 > cap)
            break;
        for (size_t i = 0; i < len && p[i]; i++)
            dst[o++] = (char)p[i];
        p += len;
        n++;
    }
    while (pad && n < cols && o + 2 <= cap) {
        dst[o++] = ' ';
        n++;
    }
    dst[o] = '\0';
    return dst;
}

/* Columns a log line takes (one per byte, but one per UTF-8 sequence). */
int demo_panel_cols(const char *s)
{
    int n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* Byte offset of column col in s. */
static size_t demo_panel__at_col(const char *s, int col)
{
    const unsigned char *p = (const unsigned char *)s;
    int n = 0;

    for (; *p; p++) {
        if ((*p & 0xC0) != 0x80 && n++ == col)
            break;
    }
    return (size_t)(p - (const unsigned char *)s);
}

int demo_panel_wrap(const char *text, int w, int y, int x, bool draw, int attr)
{
    char piece[256];
    int rows = 0;

    while (*text) {
        size_t n = strlen(text);
        if ((int)n > w) {
            /* Break at a double space (between "label value" pairs) if there is one, else
               at a space, else in the word. */
            size_t at = (size_t)w;
            while (at > 0 && !(text[at] == ' ' && text[at - 1] == ' '))
                at--;
            if (at == 0)
                for (at = (size_t)w; at > 0 && text[at] != ' ';)
                    at--;
            n = at ? at : (size_t)w;
        }
        if (n >= sizeof(piece))
            n = sizeof(piece) - 1;
        memcpy(piece, text, n);
        piece[n] = '\0';
        if (draw)
            sim_ncurses_text(y + rows, x, w, attr, piece);
        rows++;
        text += n;
        while (*text == ' ')
            text++;
    }
    return rows;
}

/* ------------------------------------------------------------------ state */

/* "label ....... value" in the state panel. */
static void demo_panel__kv(const struct demo_rect *r, int *row, int attr, const char *label,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void demo_panel__kv(const struct demo_rect *r, int *row, int attr, const char *label,
                        const char *fmt, ...)
{
    char value[128], line[256];
    va_list ap;
    int inner = r->w - 2;

    if (*row >= r->h - 1)
        return; /* no room left in the panel */
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    int avail = inner - 2;
    int pad = avail - demo_panel_cols(label) - demo_panel_cols(value);
    if (pad < 1) {
        /* Too long for one row (a broker URI): the label on its own row, the value
           right-aligned below it, cut from the left so that its end (the port) stays. */
        int vcols = demo_panel_cols(value);
        const char *tail = value;
        sim_ncurses_text(r->y + *row, r->x + 2, avail, 0, label);
        if (++*row >= r->h - 1)
            return;
        if (vcols > avail) {
            tail = value + demo_panel__at_col(value, vcols - avail + 1);
            snprintf(line, sizeof(line), "~%s", tail);
        } else {
            snprintf(line, sizeof(line), "%*s%s", avail - vcols, "", value);
        }
        sim_ncurses_text(r->y + *row, r->x + 2, avail, attr, line);
        (*row)++;
        return;
    }
    snprintf(line, sizeof(line), "%s%*s", label, pad, "");
    sim_ncurses_text(r->y + *row, r->x + 2, avail, 0, line);
    sim_ncurses_text(r->y + *row, r->x + 2 + (int)strlen(line), avail - (int)strlen(line),
                     attr, value);
    (*row)++;
}

/* Why the scanner is offline: beside the label when it fits, else under it, wrapped (never
   cut: the words are the point). */
static void demo_panel__why(const struct demo_rect *r, int *row, int attr, const char *why)
{
    int avail = r->w - 4;

    if (demo_panel_cols(why) + 4 <= avail) {
        demo_panel__kv(r, row, attr, "why", "%s", why);
        return;
    }
    if (*row >= r->h - 1)
        return;
    sim_ncurses_text(r->y + (*row)++, r->x + 2, avail, 0, "why");
    if (*row < r->h - 1)
        *row += demo_panel_wrap(why, avail - 2, r->y + *row, r->x + 4, true, attr);
}

void demo_panel_state(const struct demo_view *v, const struct demo_view_dev *dv,
                      const struct demo_rect *r)
{
    const struct sim_device_snapshot *s = &dv->snap;
    const struct fw_stats *st = &s->stats;
    int row = 1;
    int good = sim_ncurses_attr(SIM_COLOR_GOOD), bad = sim_ncurses_attr(SIM_COLOR_BAD);
    char title[96], why[96];

    if (v->ndev > 1)
        snprintf(title, sizeof(title), "state of %d %s", (int)(dv - v->devs) + 1, dv->id);
    sim_ncurses_box(r->y, r->x, r->h, r->w, v->ndev > 1 ? title : "device state");
    if (!dv->have_snap)
        return;
    demo_panel__kv(r, &row, s->status.online ? good : bad, "link",
                   "%s", s->status.online ? "ONLINE" : (s->powered ? "OFFLINE" : "POWERED OFF"));
    if (demo_offline_reason(dv, why, sizeof(why))[0])
        demo_panel__why(r, &row, bad, why);
    if (!s->status.online && s->powered && s->status.next_connect_ms > v->now_ms)
        demo_panel__kv(r, &row, 0, "next connect in", "%.1fs",
                       (double)(s->status.next_connect_ms - v->now_ms) / 1000.0);
    demo_panel__kv(r, &row, 0, "screen", "%s", fw_screen_name(s->status.screen));
    if (s->status.head_item_id) {
        char name[64];
        demo_panel__kv(r, &row, 0, "item", "#%d %s", (int)s->status.head_item_id,
                       demo_panel_fit(name, sizeof(name), s->head_item_name, 14, false));
    } else {
        demo_panel__kv(r, &row, 0, "item", "-");
    }
    demo_panel__kv(r, &row, 0, "tag", "%s", dv->last_tag[0] ? dv->last_tag : "-");
    demo_panel__kv(r, &row, 0, "pending queue", "%u", (unsigned)s->status.pending);
    demo_panel__kv(r, &row, s->status.outbox ? bad : 0, "outbox", "%u", (unsigned)s->status.outbox);
    demo_panel__kv(r, &row, 0, "  in flight", "%u", (unsigned)s->status.outbox_in_flight);
    /* What a short panel (100x30) must still show comes first; the rest is detail. */
    demo_panel__kv(r, &row, 0, "registrations sent", "%u", (unsigned)st->registrations_sent);
    demo_panel__kv(r, &row, st->registrations_acked ? good : 0, "registrations acked", "%u",
                   (unsigned)st->registrations_acked);
    if (dv->proxy_port)
        demo_panel__kv(r, &row, dv->net_cut ? bad : 0, "network",
                       dv->net_cut ? "CUT (n restores)" : "up (proxy :%d)", dv->proxy_port);
    else
        demo_panel__kv(r, &row, 0, "network", "direct");
    demo_panel__kv(r, &row, 0, "broker", "%s", v->broker_uri);
    demo_panel__kv(r, &row, 0, "session", "%s",
                   s->status.online ? (s->status.session_present ? "present" : "new") : "-");
    demo_panel__kv(r, &row, 0, "seq", "%u", (unsigned)s->status.seq);
    row++;
    demo_panel__kv(r, &row, 0, "items received", "%u", (unsigned)st->items_received);
    demo_panel__kv(r, &row, 0, "duplicates suppressed", "%u", (unsigned)st->duplicates_suppressed);
    demo_panel__kv(r, &row, 0, "registrations resent", "%u", (unsigned)st->registrations_resent);
    demo_panel__kv(r, &row, 0, "cancels", "%u", (unsigned)st->cancels);
    demo_panel__kv(r, &row, st->wrong_tags ? bad : 0, "wrong tags", "%u", (unsigned)st->wrong_tags);
    demo_panel__kv(r, &row, st->rejects_total ? bad : 0, "rejects", "%u",
                   (unsigned)st->rejects_total);
    demo_panel__kv(r, &row, 0, "connects", "%u", (unsigned)st->connects);
    demo_panel__kv(r, &row, 0, "reconnects", "%u",
                   (unsigned)(st->connects ? st->connects - 1 : 0));
    demo_panel__kv(r, &row, 0, "connection losses", "%u", (unsigned)st->connection_losses);
    demo_panel__kv(r, &row, 0, "connect failures", "%u", (unsigned)st->connect_failures);
    demo_panel__kv(r, &row, 0, "inventory q/answ/t-o", "%u/%u/%u",
                   (unsigned)st->inventory_queries, (unsigned)st->inventory_answers,
                   (unsigned)st->inventory_timeouts);
    demo_panel__kv(r, &row, 0, "frames", "%llu", (unsigned long long)s->frames);
}

/* ------------------------------------------------------------------ log */

/* Newest lines at the bottom; a long line (a payload) wraps onto up to
   DEMO_UI_WRAP_MAX rows, the continuation indented under the text. */
#define DEMO_UI_WRAP_MAX 3
#define DEMO_UI_WRAP_INDENT 13 /* "HH:MM:SS.mmm " */

static int demo_panel__rows_of(const char *text, int width)
{
    int cols = demo_panel_cols(text), rows = 1;

    if (width <= DEMO_UI_WRAP_INDENT + 8)
        return 1;
    for (cols -= width; cols > 0 && rows < DEMO_UI_WRAP_MAX; cols -= width - DEMO_UI_WRAP_INDENT)
        rows++;
    return rows;
}

static int demo_panel__log_attr(enum demo_log_kind kind)
{
    switch (kind) {
    case DEMO_LOG_IN: return sim_ncurses_attr(SIM_COLOR_IN);
    case DEMO_LOG_OUT: return sim_ncurses_attr(SIM_COLOR_OUT);
    case DEMO_LOG_ERROR: return sim_ncurses_attr(SIM_COLOR_BAD);
    case DEMO_LOG_STATE: return sim_ncurses_attr(SIM_COLOR_GOOD);
    default: return 0;
    }
}

void demo_panel_log(const struct demo_view *v, const struct demo_rect *r, bool bare)
{
    /* Bare (two or three rows at 80x24): no border, and no wrapping, so each row is news. */
    int width = bare ? r->w : r->w - 2;
    int left = bare ? r->x : r->x + 1;
    int top_limit = bare ? r->y - 1 : r->y;      /* the row above the first inner row */
    int bottom = bare ? r->y + r->h - 1 : r->y + r->h - 2; /* last inner row */

    if (!bare)
        sim_ncurses_box(r->y, r->x, r->h, r->w, "MQTT traffic and events (newest last)");
    for (unsigned i = 0; i < v->log_count && bottom > top_limit; i++) {
        unsigned idx = (v->log_head + DEMO_LOG_LINES - 1 - i) % DEMO_LOG_LINES;
        const char *text = v->log[idx].text;
        int rows = bare ? 1 : demo_panel__rows_of(text, width);
        int top = bottom - rows + 1;
        int attr = demo_panel__log_attr(v->log[idx].kind);

        for (int k = 0; k < rows; k++) {
            int y = top + k;
            if (y > top_limit) /* rows above the panel are cut off: the oldest part */
                sim_ncurses_text(y, left + (k ? DEMO_UI_WRAP_INDENT : 0),
                                 width - (k ? DEMO_UI_WRAP_INDENT : 0), attr, text);
            text += demo_panel__at_col(text, k ? width - DEMO_UI_WRAP_INDENT : width);
        }
        bottom = top - 1;
    }
}

/* ------------------------------------------------------------------ ledger */

/* Items published and not yet registered: waiting for an operator (or an offline scanner).
   Only an item the broker refused is given up on, so only that is "lost" while running;
   the run summary's "lost" (never registered after a grace) is a verdict, not a state. */
static uint64_t demo_panel__pending(const struct hx_ledger_report *rep)
{
    uint64_t done = rep->registered + rep->publish_refused;

    return rep->published > done ? rep->published - done : 0;
}

static void demo_panel__figures(const struct demo_view *v, char *out, size_t cap)
{
    const struct hx_ledger_report *rep = &v->report;

    snprintf(out, cap, "published %llu  pending %llu  registered %llu  twice %llu  lost %llu",
             (unsigned long long)rep->published, (unsigned long long)demo_panel__pending(rep),
             (unsigned long long)rep->registered, (unsigned long long)rep->registered_twice,
             (unsigned long long)rep->publish_refused);
}

/* Distinct scanners among the registrations of item id (newest rows). */
static int demo_panel__devices_of(const struct demo_view *v, int32_t id)
{
    int n = 0;

    for (int i = 0; i < v->nrows; i++) {
        bool seen = false;
        if (v->rows[i].item_id != id)
            continue;
        for (int j = 0; j < i && !seen; j++)
            seen = v->rows[j].item_id == id &&
                   strcmp(v->rows[j].device_id, v->rows[i].device_id) == 0;
        n += !seen;
    }
    return n;
}

/* An item's state in words, and the colour that goes with it. */
static int demo_panel__item_state(const struct demo_view *v, const struct demo_view_item *it,
                                  char *out, size_t cap)
{
    int devices = demo_panel__devices_of(v, it->id);

    if (it->registrations >= 2) {
        if (devices >= 2)
            snprintf(out, cap, "twice: registered by %d devices", devices);
        else
            snprintf(out, cap, "twice: registered %d times", it->registrations);
        return sim_ncurses_attr(SIM_COLOR_BAD);
    }
    if (it->registrations == 1) {
        snprintf(out, cap, "registered");
        return sim_ncurses_attr(SIM_COLOR_GOOD);
    }
    if (it->finished) {
        snprintf(out, cap, "lost: the broker refused it");
        return sim_ncurses_attr(SIM_COLOR_BAD);
    }
    snprintf(out, cap, "pending");
    return 0;
}

/* One item and, under it, each registration's tag and scanner. Returns the next row. */
static int demo_panel__item(const struct demo_view *v, const struct demo_rect *r, int row,
                            const struct demo_view_item *it)
{
    char name[64], state[64], line[256];
    int inner = r->w - 2;
    int attr = demo_panel__item_state(v, it, state, sizeof(state));

    snprintf(line, sizeof(line), "%-4d %s ", (int)it->id,
             demo_panel_fit(name, sizeof(name), it->name, 14, true));
    sim_ncurses_text(r->y + row, r->x + 1, inner, 0, line);
    int at = demo_panel_cols(line);
    if (at + demo_panel_cols(state) > inner && row + 1 < r->h - 1) {
        row++; /* a narrow panel: the state on its own row, under the name */
        at = 5;
    }
    sim_ncurses_text(r->y + row++, r->x + 1 + at, inner - at, attr, state);
    for (int i = 0; i < v->nrows && row < r->h - 1; i++) {
        const struct hx_backend_row *b = &v->rows[i];
        char dev[48];
        if (b->item_id != it->id)
            continue;
        snprintf(line, sizeof(line), "     %s by %s", b->tag,
                 demo_panel_fit(dev, sizeof(dev), b->device_id, 20, false));
        sim_ncurses_text(r->y + row++, r->x + 1, inner, 0, line);
    }
    return row;
}

/* Registrations of items this backend never published (someone else's publisher). */
static int demo_panel__strangers(const struct demo_view *v, const struct demo_rect *r, int row)
{
    char line[256], dev[48];

    for (int i = 0; i < v->nrows && row < r->h - 1; i++) {
        const struct hx_backend_row *b = &v->rows[i];
        bool ours = false;
        for (int j = 0; j < v->nitems && !ours; j++)
            ours = v->items[j].id == b->item_id;
        if (ours)
            continue;
        snprintf(line, sizeof(line), "%-4d %-14s %s by %s", (int)b->item_id, "(not ours)",
                 b->tag, demo_panel_fit(dev, sizeof(dev), b->device_id, 20, false));
        sim_ncurses_text(r->y + row++, r->x + 1, r->w - 2, 0, line);
    }
    return row;
}

void demo_panel_backend(const struct demo_view *v, const struct demo_rect *r)
{
    const struct hx_ledger_report *rep = &v->report;
    int inner = r->w - 2, row = 1;
    char line[512];

    if (!v->backend_on) {
        sim_ncurses_box(r->y, r->x, r->h, r->w, "backend: yours (--no-backend)");
        snprintf(line, sizeof(line), "items go to %s", v->item_topic);
        sim_ncurses_text(r->y + row++, r->x + 1, inner, 0, line);
        snprintf(line, sizeof(line), "registrations on %s", v->registered_topic);
        sim_ncurses_text(r->y + row++, r->x + 1, inner, 0, line);
        return;
    }
    sim_ncurses_box(r->y, r->x, r->h, r->w,
                    v->backend_connected ? "backend ledger" : "backend ledger (reconnecting)");
    demo_panel__figures(v, line, sizeof(line));
    row += demo_panel_wrap(line, inner, r->y + row, r->x + 1, true, 0);
    snprintf(line, sizeof(line), "duplicates %llu  malformed %llu  inventory answered %llu",
             (unsigned long long)rep->duplicate_deliveries, (unsigned long long)rep->malformed,
             (unsigned long long)rep->inventory_answered);
    if (demo_panel_cols(line) <= inner) /* detail: left out of a narrow panel, not cut */
        sim_ncurses_text(r->y + row++, r->x + 1, inner, 0, line);
    snprintf(line, sizeof(line), "%-4s %-14s %s", "item", "name", "state (tag by scanner)");
    sim_ncurses_text(r->y + row++, r->x + 1, inner, sim_ncurses_attr(SIM_COLOR_TITLE), line);
    for (int i = 0; i < v->nitems && row < r->h - 1; i++)
        row = demo_panel__item(v, r, row, &v->items[i]);
    row = demo_panel__strangers(v, r, row);
    if (v->nitems == 0 && v->nrows == 0 && row < r->h - 1)
        sim_ncurses_text(r->y + row, r->x + 1, inner, 0, "no items yet (a publishes one)");
}

void demo_panel_ledger_narrow(const struct demo_view *v, const struct demo_rect *r)
{
    const struct hx_ledger_report *rep = &v->report;
    const char *labels[] = { "published", "pending", "registered", "twice", "lost" };
    uint64_t values[] = { rep->published, demo_panel__pending(rep), rep->registered,
                          rep->registered_twice, rep->publish_refused };
    int inner = r->w - 2;
    char line[64];

    sim_ncurses_box(r->y, r->x, r->h, r->w, "ledger");
    for (int i = 0; i < 5 && 1 + i < r->h - 1; i++) {
        int attr = (i == 3 || i == 4) && values[i] ? sim_ncurses_attr(SIM_COLOR_BAD) : 0;
        char value[24];
        int n = snprintf(value, sizeof(value), "%llu", (unsigned long long)values[i]);
        int pad = inner - (int)strlen(labels[i]) - n;
        snprintf(line, sizeof(line), "%s%*s%s", labels[i], pad > 1 ? pad : 1, "", value);
        sim_ncurses_text(r->y + 1 + i, r->x + 1, inner, attr, line);
    }
}
