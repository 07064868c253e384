/*
 * display_ncurses.h - the ncurses side of the demo: the terminal and the OLED panel.
 *
 * The firmware draws a 128x64 1-bit framebuffer (SSD1306 page order); this module shows
 * those pixels in a terminal, pixel-true when it can:
 *   - half blocks (U+2580 ▀, U+2584 ▄, U+2588 █): two pixel rows per character cell,
 *     128x32 cells, on a UTF-8 terminal with room for them;
 *   - braille (U+2800..U+28FF): 2x4 pixels per cell, 64x16 cells, still pixel-true, on a
 *     UTF-8 terminal too small for half blocks;
 *   - ASCII ('#', '"', '.', ' '): approximated, when the terminal is not UTF-8 (128x32
 *     cells, or 64x16 cells with 2x4 pixels each when it is small).
 * The panel's title says which one is in use.
 *
 * It also owns the terminal's life: sim_ncurses_open() enters curses mode and makes sure
 * the terminal is restored whatever happens next - a normal exit (atexit), or a crash of
 * the firmware under test (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL: endwin(), then the
 * signal goes on to the handler that was there before, e.g. AddressSanitizer's, or the
 * default action). SIGINT/SIGTERM are the caller's (scansim_cli_install_signals) so that they
 * power the device off cleanly.
 *
 * Threading: curses is single-threaded; everything here runs on the demo's main thread.
 */
#ifndef SIM_DISPLAY_NCURSES_H
#define SIM_DISPLAY_NCURSES_H

#include <stdbool.h>
#include <stdint.h>

/* How the OLED is drawn. */
enum sim_oled_style {
    SIM_OLED_HALFBLOCK = 0, /* 128x32 cells, pixel-true (UTF-8) */
    SIM_OLED_BRAILLE,       /* 64x16 cells, pixel-true (UTF-8) */
    SIM_OLED_ASCII,         /* 128x32 cells, approximated */
    SIM_OLED_ASCII_SMALL,   /* 64x16 cells, approximated */
};

/** Cells (columns, rows) an OLED style needs, without the border. */
void sim_oled_style_cells(enum sim_oled_style style, int *cols, int *rows);

/** Short words for the panel title ("pixel-true, half blocks"). */
const char *sim_oled_style_name(enum sim_oled_style style);

/**
 * Enter curses mode on the controlling terminal (setlocale(LC_ALL, "") must have run):
 * cbreak, no echo, keypad, hidden cursor, short Esc delay, colours when there are any.
 * Installs the atexit and crash handlers that restore the terminal. Returns 0, or -1 when
 * the terminal cannot be initialised (TERM unknown).
 */
int sim_ncurses_open(void);

/** Leave curses mode and restore the terminal (idempotent; safe before open). */
void sim_ncurses_close(void);

/** Does the locale's character set say UTF-8? */
bool sim_ncurses_locale_utf8(void);

/** Colour pairs set up by sim_ncurses_open (0 when the terminal has no colours). */
enum sim_ncurses_color {
    SIM_COLOR_NONE = 0,
    SIM_COLOR_GOOD,  /* online, acknowledged */
    SIM_COLOR_BAD,   /* offline, errors */
    SIM_COLOR_IN,    /* inbound MQTT */
    SIM_COLOR_OUT,   /* outbound MQTT */
    SIM_COLOR_TITLE, /* panel titles */
};
/** The attribute for a colour pair, or A_NORMAL-equivalent 0 without colours. */
int sim_ncurses_attr(enum sim_ncurses_color c);

/**
 * Draw a box with a title at (y, x), h rows by w columns, clipped to the screen. The title
 * is cut to fit. Lines are ACS line-drawing characters (ASCII fallback by curses itself).
 */
void sim_ncurses_box(int y, int x, int h, int w, const char *title);

/** Write text at (y, x), at most w columns (text is UTF-8; cut by bytes for ASCII, by
 *  characters for UTF-8), clipped to the screen, with attr. */
void sim_ncurses_text(int y, int x, int w, int attr, const char *text);

/**
 * Draw the framebuffer fb (FW_FB_BYTES, NULL = blank) inside the box whose top-left corner
 * is (y, x) in the given style: the cells go at (y + 1, x + 1). The caller drew the box.
 */
void sim_oled_draw(int y, int x, enum sim_oled_style style, const uint8_t *fb);

#endif /* SIM_DISPLAY_NCURSES_H */
