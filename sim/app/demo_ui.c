/*
 * demo_ui.c - the screen of `scansim demo` (demo_ui.h): layout, panels, log ring.
 *
 * Layout (160x50, the size the tmux test uses):
 *
 *   title: device, broker URI (for mosquitto_sub), proxy, protocol
 *   +-- OLED (130x34, half blocks) ------------+-- device state (rest) --+
 *   |                                          |                         |
 *   +-- MQTT log (5/8 of the width) ----+-- backend ledger (rest) -------+
 *   notice or tag prompt
 *   keys
 *
 * On a smaller terminal the OLED falls back to braille (64x16 cells, still pixel-true) and
 * the state panel takes the full height on the right; without UTF-8 it is ASCII. Each
 * frame is drawn with erase() + the panels and one refresh(): curses sends only what
 * changed, so nothing flickers.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "demo_ui.h"
#include "display_ncurses.h"

#define DEMO_UI_STATE_MIN_W 30  /* state panel, border included */
#define DEMO_UI_BOTTOM_MIN_H 6  /* log and backend panels, border included */

/* ------------------------------------------------------------------ log */

static void demo_ui__stamp(char *out, size_t cap)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    snprintf(out, cap, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));
}

static char *demo_ui__next_line(struct demo_view *v, enum demo_log_kind kind)
{
    unsigned slot = v->log_head;

    v->log_head = (v->log_head + 1) % DEMO_LOG_LINES;
    if (v->log_count < DEMO_LOG_LINES)
        v->log_count++;
    v->log[slot].kind = kind;
    return v->log[slot].text;
}

void demo_log(struct demo_view *v, enum demo_log_kind kind, const char *fmt, ...)
{
    char *line = demo_ui__next_line(v, kind);
    char stamp[16];
    va_list ap;
    int n;

    demo_ui__stamp(stamp, sizeof(stamp));
    n = snprintf(line, DEMO_LOG_WIDTH, "%s ", stamp);
    va_start(ap, fmt);
    vsnprintf(line + n, DEMO_LOG_WIDTH - (size_t)n, fmt, ap);
    va_end(ap);
}

void demo_log_drop_last_if(struct demo_view *v, enum demo_log_kind kind, const char *words)
{
    unsigned last = (v->log_head + DEMO_LOG_LINES - 1) % DEMO_LOG_LINES;

    char head[41];

    /* The firmware's copy may be cut at FW_LOG_MAX: compare the start of the words. */
    snprintf(head, sizeof(head), "%s", words ? words : "");
    if (!v->log_count || !head[0] || v->log[last].kind != kind || !strstr(v->log[last].text, head))
        return;
    v->log_head = last;
    v->log_count--;
}

void demo_log_traffic(struct demo_view *v, const struct sim_traffic *t)
{
    char payload[DEMO_LOG_WIDTH];
    const unsigned char *p = t->payload;
    size_t o = 0;

    /* Payloads come from the network: show printable ASCII, escape the rest, so a
       hostile payload cannot move the cursor or break the layout. UTF-8 is escaped too:
       the log is for checking bytes. */
    for (size_t i = 0; i < t->len && o + 5 < sizeof(payload); i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f) {
            payload[o++] = (char)p[i];
        } else {
            o += (size_t)snprintf(payload + o, sizeof(payload) - o, "\\x%02X", p[i]);
        }
    }
    payload[o] = '\0';
    if (t->dir == SIM_TRAFFIC_IN)
        demo_log(v, DEMO_LOG_IN, "IN  %s q%d%s%s %s", t->topic, t->qos, t->dup ? " DUP" : "",
                 t->retain ? " RETAIN" : "", payload);
    else
        demo_log(v, t->result ? DEMO_LOG_ERROR : DEMO_LOG_OUT, "OUT %s q%d%s %s%s%s", t->topic,
                 t->qos, t->retain ? " RETAIN" : "", payload, t->result ? "  -> refused: " : "",
                 t->result ? fw_strerror(t->result) : "");
}

void demo_notice(struct demo_view *v, bool error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(v->notice, sizeof(v->notice), fmt, ap);
    va_end(ap);
    v->notice_error = error;
}

/* ------------------------------------------------------------------ layout */

struct demo_ui_rect {
    int y, x, h, w;
};

struct demo_ui_layout {
    bool too_small;
    enum sim_oled_style style;
    struct demo_ui_rect oled, state, log, backend;
};

static void demo_ui__layout(const struct demo_view *v, struct demo_ui_layout *L)
{
    bool utf8 = sim_ncurses_locale_utf8() && !v->force_ascii;
    enum sim_oled_style tries[2] = { utf8 ? SIM_OLED_HALFBLOCK : SIM_OLED_ASCII,
                                     utf8 ? SIM_OLED_BRAILLE : SIM_OLED_ASCII_SMALL };

    memset(L, 0, sizeof(*L));
    L->too_small = true;
    for (int i = 0; i < 2; i++) {
        int cw, ch;
        sim_oled_style_cells(tries[i], &cw, &ch);
        if (cw + 2 + DEMO_UI_STATE_MIN_W <= COLS && 1 + ch + 2 + DEMO_UI_BOTTOM_MIN_H + 2 <= LINES) {
            L->style = tries[i];
            L->oled = (struct demo_ui_rect){ 1, 0, ch + 2, cw + 2 };
            L->too_small = false;
            break;
        }
    }
    if (L->too_small)
        return;
    int bottom_y = L->oled.y + L->oled.h;
    int bottom_h = LINES - 2 - bottom_y;
    int bottom_w = COLS;
    if (L->style == SIM_OLED_HALFBLOCK || L->style == SIM_OLED_ASCII) {
        L->state = (struct demo_ui_rect){ 1, L->oled.w, L->oled.h, COLS - L->oled.w };
    } else {
        /* Small OLED: the state panel takes the whole right side, the others go under it. */
        L->state = (struct demo_ui_rect){ 1, L->oled.w, LINES - 3, COLS - L->oled.w };
        bottom_w = L->oled.w;
    }
    int backend_w = v->backend_on ? bottom_w * 3 / 8 : bottom_w / 4;
    if (backend_w < 24)
        backend_w = 24;
    L->log = (struct demo_ui_rect){ bottom_y, 0, bottom_h, bottom_w - backend_w };
    L->backend = (struct demo_ui_rect){ bottom_y, bottom_w - backend_w, bottom_h, backend_w };
}

/* ------------------------------------------------------------------ panels */

/* Copy at most cols characters (UTF-8 sequences, never cut) of src into dst and pad with
   spaces to cols when pad: names from the network are UTF-8, printf counts bytes. */
static const char *demo_ui__fit(char *dst, size_t cap, const char *src, int cols, bool pad)
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

static int demo_ui__cols(const char *s);
static size_t demo_ui__at_col(const char *s, int col);

/* "label ....... value" in the state panel. */
static void demo_ui__kv(const struct demo_ui_rect *r, int *row, int attr, const char *label,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void demo_ui__kv(const struct demo_ui_rect *r, int *row, int attr, const char *label,
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
    int pad = avail - demo_ui__cols(label) - demo_ui__cols(value);
    if (pad < 1) {
        /* Too long for one row (a broker URI): the label on its own row, the value
           right-aligned below it, cut from the left so that its end (the port) stays. */
        int vcols = demo_ui__cols(value);
        const char *tail = value;
        sim_ncurses_text(r->y + *row, r->x + 2, avail, 0, label);
        if (++*row >= r->h - 1)
            return;
        if (vcols > avail) {
            tail = value + demo_ui__at_col(value, vcols - avail + 1);
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

static void demo_ui__state(const struct demo_view *v, const struct demo_ui_rect *r)
{
    const struct sim_device_snapshot *s = &v->snap;
    const struct fw_stats *st = &s->stats;
    int row = 1;
    int good = sim_ncurses_attr(SIM_COLOR_GOOD), bad = sim_ncurses_attr(SIM_COLOR_BAD);

    sim_ncurses_box(r->y, r->x, r->h, r->w, "device state");
    if (!v->have_snap)
        return;
    demo_ui__kv(r, &row, s->status.online ? good : bad, "link",
                "%s", s->status.online ? "ONLINE" : (s->powered ? "OFFLINE" : "POWERED OFF"));
    demo_ui__kv(r, &row, 0, "broker", "%s", v->broker_uri);
    if (v->proxy_port)
        demo_ui__kv(r, &row, v->net_cut ? bad : 0, "network",
                    v->net_cut ? "CUT (n restores)" : "up (proxy :%d)", v->proxy_port);
    else
        demo_ui__kv(r, &row, 0, "network", "direct");
    if (!s->status.online && s->powered && s->status.next_connect_ms > v->now_ms)
        demo_ui__kv(r, &row, 0, "next connect in", "%.1fs",
                    (double)(s->status.next_connect_ms - v->now_ms) / 1000.0);
    demo_ui__kv(r, &row, 0, "session", "%s",
                s->status.online ? (s->status.session_present ? "present" : "new") : "-");
    demo_ui__kv(r, &row, 0, "screen", "%s", fw_screen_name(s->status.screen));
    if (s->status.head_item_id) {
        char name[64];
        demo_ui__kv(r, &row, 0, "item", "#%d %s", (int)s->status.head_item_id,
                    demo_ui__fit(name, sizeof(name), s->head_item_name, 14, false));
    }
    else
        demo_ui__kv(r, &row, 0, "item", "-");
    demo_ui__kv(r, &row, 0, "tag", "%s", v->last_tag[0] ? v->last_tag : "-");
    demo_ui__kv(r, &row, 0, "pending queue", "%u", (unsigned)s->status.pending);
    demo_ui__kv(r, &row, s->status.outbox ? bad : 0, "outbox", "%u", (unsigned)s->status.outbox);
    demo_ui__kv(r, &row, 0, "  in flight", "%u", (unsigned)s->status.outbox_in_flight);
    demo_ui__kv(r, &row, 0, "seq", "%u", (unsigned)s->status.seq);
    row++;
    demo_ui__kv(r, &row, 0, "items received", "%u", (unsigned)st->items_received);
    demo_ui__kv(r, &row, 0, "duplicates suppressed", "%u", (unsigned)st->duplicates_suppressed);
    demo_ui__kv(r, &row, 0, "registrations sent", "%u", (unsigned)st->registrations_sent);
    demo_ui__kv(r, &row, st->registrations_acked ? good : 0, "registrations acked", "%u",
                (unsigned)st->registrations_acked);
    demo_ui__kv(r, &row, 0, "registrations resent", "%u", (unsigned)st->registrations_resent);
    demo_ui__kv(r, &row, 0, "cancels", "%u", (unsigned)st->cancels);
    demo_ui__kv(r, &row, st->wrong_tags ? bad : 0, "wrong tags", "%u", (unsigned)st->wrong_tags);
    demo_ui__kv(r, &row, st->rejects_total ? bad : 0, "rejects", "%u",
                (unsigned)st->rejects_total);
    demo_ui__kv(r, &row, 0, "connects", "%u", (unsigned)st->connects);
    demo_ui__kv(r, &row, 0, "reconnects", "%u",
                (unsigned)(st->connects ? st->connects - 1 : 0));
    demo_ui__kv(r, &row, 0, "connection losses", "%u", (unsigned)st->connection_losses);
    demo_ui__kv(r, &row, 0, "connect failures", "%u", (unsigned)st->connect_failures);
    demo_ui__kv(r, &row, 0, "inventory q/answ/t-o", "%u/%u/%u",
                (unsigned)st->inventory_queries, (unsigned)st->inventory_answers,
                (unsigned)st->inventory_timeouts);
    demo_ui__kv(r, &row, 0, "frames", "%llu", (unsigned long long)s->frames);
}

/* Columns a log line takes (one per byte, but one per UTF-8 sequence). */
static int demo_ui__cols(const char *s)
{
    int n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* Byte offset of column col in s. */
static size_t demo_ui__at_col(const char *s, int col)
{
    const unsigned char *p = (const unsigned char *)s;
    int n = 0;

    for (; *p; p++) {
        if ((*p & 0xC0) != 0x80 && n++ == col)
            break;
    }
    return (size_t)(p - (const unsigned char *)s);
}

/* Newest lines at the bottom; a long line (a payload) wraps onto up to
   DEMO_UI_WRAP_MAX rows, the continuation indented under the text. */
#define DEMO_UI_WRAP_MAX 3
#define DEMO_UI_WRAP_INDENT 13 /* "HH:MM:SS.mmm " */

static int demo_ui__rows_of(const char *text, int width)
{
    int cols = demo_ui__cols(text), rows = 1;

    if (width <= DEMO_UI_WRAP_INDENT + 8)
        return 1;
    for (cols -= width; cols > 0 && rows < DEMO_UI_WRAP_MAX; cols -= width - DEMO_UI_WRAP_INDENT)
        rows++;
    return rows;
}

static void demo_ui__log(const struct demo_view *v, const struct demo_ui_rect *r)
{
    int width = r->w - 2;
    int bottom = r->y + r->h - 2; /* last inner row */

    sim_ncurses_box(r->y, r->x, r->h, r->w, "MQTT traffic and events (newest last)");
    for (unsigned i = 0; i < v->log_count && bottom > r->y; i++) {
        unsigned idx = (v->log_head + DEMO_LOG_LINES - 1 - i) % DEMO_LOG_LINES;
        const char *text = v->log[idx].text;
        int rows = demo_ui__rows_of(text, width);
        int top = bottom - rows + 1;
        int attr = 0;

        switch (v->log[idx].kind) {
        case DEMO_LOG_IN: attr = sim_ncurses_attr(SIM_COLOR_IN); break;
        case DEMO_LOG_OUT: attr = sim_ncurses_attr(SIM_COLOR_OUT); break;
        case DEMO_LOG_ERROR: attr = sim_ncurses_attr(SIM_COLOR_BAD); break;
        case DEMO_LOG_STATE: attr = sim_ncurses_attr(SIM_COLOR_GOOD); break;
        default: break;
        }
        for (int k = 0; k < rows; k++) {
            int y = top + k;
            if (y > r->y) /* rows above the panel are cut off: the oldest part of the view */
                sim_ncurses_text(y, r->x + 1 + (k ? DEMO_UI_WRAP_INDENT : 0),
                                 width - (k ? DEMO_UI_WRAP_INDENT : 0), attr, text);
            text += demo_ui__at_col(text, k ? width - DEMO_UI_WRAP_INDENT : width);
        }
        bottom = top - 1;
    }
}

static void demo_ui__backend(const struct demo_view *v, const struct demo_ui_rect *r)
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
    snprintf(line, sizeof(line), "published %llu  registered %llu  twice %llu  lost %llu",
             (unsigned long long)rep->published, (unsigned long long)rep->registered,
             (unsigned long long)rep->registered_twice, (unsigned long long)rep->lost);
    sim_ncurses_text(r->y + row++, r->x + 1, inner, 0, line);
    snprintf(line, sizeof(line), "duplicates %llu  malformed %llu  inventory answered %llu",
             (unsigned long long)rep->duplicate_deliveries, (unsigned long long)rep->malformed,
             (unsigned long long)rep->inventory_answered);
    sim_ncurses_text(r->y + row++, r->x + 1, inner, 0, line);
    snprintf(line, sizeof(line), "%-5s %-14s %-20s %-10s %s", "item", "name", "tag", "device",
             "times");
    sim_ncurses_text(r->y + row++, r->x + 1, inner, sim_ncurses_attr(SIM_COLOR_TITLE), line);
    for (int i = 0; i < v->nrows && row < r->h - 1; i++) {
        const struct hx_backend_row *b = &v->rows[i];
        char name[64], dev[48];
        snprintf(line, sizeof(line), "%-5d %s %-20s %s %u", (int)b->item_id,
                 demo_ui__fit(name, sizeof(name), b->item_name, 14, true), b->tag,
                 demo_ui__fit(dev, sizeof(dev), b->device_id, 10, true), (unsigned)b->count);
        sim_ncurses_text(r->y + row++, r->x + 1, inner, b->count > 1 ? sim_ncurses_attr(SIM_COLOR_BAD) : 0,
                         line);
    }
    if (v->nrows == 0 && row < r->h - 1)
        sim_ncurses_text(r->y + row, r->x + 1, inner, 0, "no registrations yet");
}

static void demo_ui__bottom(const struct demo_view *v)
{
    char line[512];

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
        snprintf(line, sizeof(line),
                 "keys: a add item  t random tag  T type tag  Enter confirm  c cancel  "
                 "i inventory  n %s network  q quit",
                 v->net_cut ? "RESTORE" : "cut");
    sim_ncurses_text(LINES - 1, 0, COLS, A_REVERSE, line);
}

void demo_ui_draw(const struct demo_view *v)
{
    struct demo_ui_layout L;
    char title[512];

    erase();
    demo_ui__layout(v, &L);
    snprintf(title, sizeof(title), "scansim demo  device %s  broker %s%s%s  MQTT %s QoS %d",
             v->device_id, v->broker_uri, v->proxy_port ? "  device via proxy " : "",
             v->proxy_port ? v->device_uri : "", v->protocol, v->qos);
    sim_ncurses_text(0, 0, COLS, sim_ncurses_attr(SIM_COLOR_TITLE), title);
    if (L.too_small) {
        snprintf(title, sizeof(title),
                 "terminal too small (%dx%d): the OLED needs at least %dx%d - enlarge the window",
                 COLS, LINES, 64 + 2 + DEMO_UI_STATE_MIN_W, 1 + 16 + 2 + DEMO_UI_BOTTOM_MIN_H + 2);
        sim_ncurses_text(2, 0, COLS, sim_ncurses_attr(SIM_COLOR_BAD), title);
        snprintf(title, sizeof(title), "device %s  screen %s", v->snap.status.online ? "ONLINE" : "OFFLINE",
                 fw_screen_name(v->snap.status.screen));
        sim_ncurses_text(3, 0, COLS, 0, title);
        demo_ui__bottom(v);
        refresh();
        return;
    }
    snprintf(title, sizeof(title), "OLED 128x64 - %s", sim_oled_style_name(L.style));
    sim_ncurses_box(L.oled.y, L.oled.x, L.oled.h, L.oled.w, title);
    sim_oled_draw(L.oled.y, L.oled.x, L.style, v->have_frame ? v->fb : NULL);
    demo_ui__state(v, &L.state);
    demo_ui__log(v, &L.log);
    demo_ui__backend(v, &L.backend);
    demo_ui__bottom(v);
    refresh();
}
