/*
 * demo_panels.h - the panels of `scansim demo`, each drawn into the rectangle the layout
 * gives it (demo_layout.h); demo_ui.c decides which are shown. Internal to the demo.
 */
#ifndef DEMO_PANELS_H
#define DEMO_PANELS_H

#include <stdbool.h>
#include <stddef.h>

#include "demo_layout.h"
#include "demo_ui.h"

/** Columns a UTF-8 string takes (one per sequence). */
int demo_panel_cols(const char *s);

/** At most cols characters of src (UTF-8 sequences never cut) into dst, padded with spaces
 *  to cols when pad. Returns dst. */
const char *demo_panel_fit(char *dst, size_t cap, const char *src, int cols, bool pad);

/** Cut text (ASCII) into rows of at most w columns, at a double space if it can (between
 *  "label value" pairs), else at a space; drawn from (y, x) with attr when draw. Returns
 *  the rows it takes. */
int demo_panel_wrap(const char *text, int w, int y, int x, bool draw, int attr);

/** The chosen scanner's state panel: link, why offline, screen, queues, counters. */
void demo_panel_state(const struct demo_view *v, const struct demo_view_dev *dv,
                      const struct demo_rect *r);

/** The log, newest last; bare: no border (a few rows under the strip at 80x24). */
void demo_panel_log(const struct demo_view *v, const struct demo_rect *r, bool bare);

/** The backend ledger: live figures and each item's state (pending, registered, twice,
 *  lost), with the tag and scanner of each registration. */
void demo_panel_backend(const struct demo_view *v, const struct demo_rect *r);

/** The ledger's figures, one a row, for a narrow column beside the OLED. */
void demo_panel_ledger_narrow(const struct demo_view *v, const struct demo_rect *r);

#endif /* DEMO_PANELS_H */
