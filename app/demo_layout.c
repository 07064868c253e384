/*
 * demo_layout.c - the demo's layout for a terminal size (demo_layout.h).
 *
 * 80x24, one scanner (braille; the narrow ledger beside it; two log lines):
 *   title
 *   +-- OLED 66x18 ----------+-ledger-+
 *   state line of the scanner
 *   log, log
 *   notice / keys
 *
 * 160x50, one scanner (half blocks; state beside; log and ledger below):
 *   title
 *   +-- OLED 130x34 ---------------------------+-- state --+
 *   state line
 *   +-- MQTT log (5/8) ---------------+-- backend ledger --+
 *   notice / keys
 *
 * 200x55, three scanners (three braille OLEDs side by side; log, state, ledger below).
 */
#include <string.h>

#include "demo_layout.h"

#define DEMO_LAYOUT_STATE_MIN_W 30  /* state panel, border included */
#define DEMO_LAYOUT_SIDE_MIN_W 14   /* the narrow ledger panel */
#define DEMO_LAYOUT_LOG_MIN_W 30    /* below this the log gives way to nothing else */
#define DEMO_LAYOUT_BACKEND_MIN_W 32 /* "1    Pallet jack    registered" */
#define DEMO_LAYOUT_BELOW_MIN_W 100 /* log and ledger side by side */
#define DEMO_LAYOUT_BOTTOM_MIN_H 6  /* boxed panels below the strip, border included */
#define DEMO_LAYOUT_CHROME_H 3      /* title, notice, keys */

/* The OLED style and how many scanners get a column; false when none fits. */
static bool demo_layout__strip(int cols, int lines, int ndev, bool utf8, struct demo_layout *L)
{
    enum sim_oled_style tries[2] = { utf8 ? SIM_OLED_HALFBLOCK : SIM_OLED_ASCII,
                                     utf8 ? SIM_OLED_BRAILLE : SIM_OLED_ASCII_SMALL };
    int room_h = lines - DEMO_LAYOUT_CHROME_H;

    for (int i = 0; i < 2; i++) {
        int cw, ch;
        sim_oled_style_cells(tries[i], &cw, &ch);
        int col_w = cw + 2, strip_h = ch + 3; /* box, plus the state line */
        int fit = cols / col_w < ndev ? cols / col_w : ndev;
        if (i == 0) {
            L->min_cols = 0;
        } else {
            L->min_cols = col_w;
            L->min_lines = strip_h + DEMO_LAYOUT_CHROME_H;
        }
        if (fit < 1 || strip_h > room_h)
            continue;
        /* The big OLED only when it costs nothing else: every scanner, the state beside
           them, and boxed panels below. */
        if (i == 0 && (fit < ndev || cols - fit * col_w < DEMO_LAYOUT_STATE_MIN_W ||
                       room_h - strip_h < DEMO_LAYOUT_BOTTOM_MIN_H))
            continue;
        L->style = tries[i];
        L->big_style = tries[0];
        L->col_w = col_w;
        L->oled_h = ch + 2;
        L->shown = fit;
        return true;
    }
    return false;
}

/* The boxed panels in the region r: log | state (unless beside) | backend. */
static void demo_layout__bottom(struct demo_layout *L, struct demo_rect r, bool state_here,
                                bool backend_on)
{
    int backend_w = backend_on ? r.w * 3 / 8 : r.w / 4;
    int state_w = state_here ? DEMO_LAYOUT_STATE_MIN_W + 2 : 0;

    if (backend_w < DEMO_LAYOUT_BACKEND_MIN_W)
        backend_w = DEMO_LAYOUT_BACKEND_MIN_W;
    if (r.w - backend_w - state_w < DEMO_LAYOUT_LOG_MIN_W)
        state_w = 0;
    if (r.w - backend_w - state_w < DEMO_LAYOUT_LOG_MIN_W)
        backend_w = 0;
    L->log = (struct demo_rect){ r.y, r.x, r.h, r.w - backend_w - state_w };
    if (state_w)
        L->state = (struct demo_rect){ r.y, r.x + L->log.w, r.h, state_w };
    if (backend_w)
        L->backend = (struct demo_rect){ r.y, r.x + r.w - backend_w, r.h, backend_w };
}

void demo_layout_compute(int cols, int lines, int ndev, int chosen, bool utf8,
                         bool backend_on, struct demo_layout *L)
{
    memset(L, 0, sizeof(*L));
    if (ndev < 1)
        ndev = 1;
    if (!demo_layout__strip(cols, lines, ndev, utf8, L)) {
        L->too_small = true;
        return;
    }
    /* Pages of `shown` scanners; the last page is full, so no column stays empty. */
    L->first = chosen / L->shown * L->shown;
    if (L->first + L->shown > ndev)
        L->first = ndev - L->shown;

    int strip_w = L->shown * L->col_w, side_w = cols - strip_w;
    struct demo_rect below = { 1 + L->oled_h + 1, 0, 0, cols };
    below.h = lines - 2 - below.y;
    if (side_w >= DEMO_LAYOUT_STATE_MIN_W) {
        L->side_kind = DEMO_SIDE_STATE;
        /* The state has ~30 rows: it takes the whole right side when the panels below the
           strip still get a useful width beside it, else the panels below get the width. */
        bool tall = L->style != L->big_style && strip_w >= DEMO_LAYOUT_BELOW_MIN_W;
        L->side = (struct demo_rect){ 1, strip_w, tall ? lines - 3 : L->oled_h + 1, side_w };
        if (tall)
            below.w = strip_w;
    }
    if (L->shown < ndev && below.h > 0) {
        L->roster = (struct demo_rect){ below.y, 0, 1, below.w };
        below.y++;
        below.h--;
    }
    if (below.h >= DEMO_LAYOUT_BOTTOM_MIN_H)
        demo_layout__bottom(L, below, L->side_kind != DEMO_SIDE_STATE, backend_on);
    else if (below.h > 0) {
        L->log = below;
        L->log_bare = true;
    }
    if (L->side_kind == DEMO_SIDE_NONE && !L->backend.h && backend_on &&
        side_w >= DEMO_LAYOUT_SIDE_MIN_W) {
        L->side_kind = DEMO_SIDE_LEDGER;
        L->side = (struct demo_rect){ 1, strip_w, L->oled_h + 1, side_w };
    }
}

struct demo_rect demo_layout_oled(const struct demo_layout *L, int k)
{
    return (struct demo_rect){ 1, (k - L->first) * L->col_w, L->oled_h, L->col_w };
}
