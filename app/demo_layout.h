/*
 * demo_layout.h - where the panels of `scansim demo` go, for a terminal size.
 *
 * The screen, top to bottom: a title line; a strip of scanner columns (each an OLED box with
 * a one-line state under it) with a side panel to its right when there is room; the panels
 * below (MQTT log, the chosen scanner's state, the backend ledger); a notice line; the key
 * line. The OLED is what the demo is for, so a small terminal drops panels, never the
 * OLED: half blocks (130 columns) when every scanner and the panels fit, else braille (66
 * columns), as many scanners side by side as fit (the chosen one always among them, the
 * others named on a roster line). From 80x24 on, every layout has the chosen scanner's
 * OLED, its state line and log lines.
 *
 * Pure arithmetic on sizes (no curses calls), so a layout is the same for the same size.
 */
#ifndef DEMO_LAYOUT_H
#define DEMO_LAYOUT_H

#include <stdbool.h>

#include "sim/display_ncurses.h"

struct demo_rect {
    int y, x, h, w; /* h == 0: not shown */
};

enum demo_side_kind {
    DEMO_SIDE_NONE = 0,
    DEMO_SIDE_STATE,  /* the chosen scanner's state panel */
    DEMO_SIDE_LEDGER, /* the ledger's figures, narrow */
};

struct demo_layout {
    bool too_small;           /* not even one braille OLED fits: only a note */
    int min_cols, min_lines;  /* the smallest terminal with a layout */
    enum sim_oled_style style;
    enum sim_oled_style big_style; /* what style would be with room (half blocks or ASCII) */
    int first, shown;         /* scanners first .. first + shown - 1 have a column */
    int col_w, oled_h;        /* one scanner column: OLED box width and height; its state
                                 line is the row under the box */
    enum demo_side_kind side_kind;
    struct demo_rect side;
    struct demo_rect roster;  /* one row naming the scanners without a column */
    struct demo_rect log, state, backend; /* boxed panels below the strip */
    bool log_bare;            /* too little height for boxes: log lines without a border */
};

/** Lay out a cols x lines terminal for ndev scanners (chosen: the one the keys drive).
 *  utf8: half blocks and braille can be drawn; else ASCII of the same sizes. */
void demo_layout_compute(int cols, int lines, int ndev, int chosen, bool utf8,
                         bool backend_on, struct demo_layout *L);

/** The column of scanner k (a shown one): its OLED box. */
struct demo_rect demo_layout_oled(const struct demo_layout *L, int k);

#endif /* DEMO_LAYOUT_H */
