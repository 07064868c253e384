/*
 * display_ncurses.c - the terminal and the OLED panel of the demo (display_ncurses.h).
 *
 * The OLED is drawn row by row into curses' virtual screen; the caller refreshes once per
 * frame, so curses sends only the cells that changed (no flicker). The terminal is
 * restored on every way out: sim_ncurses_close(), atexit, and the crash signals, whose
 * handler calls endwin() and then hands the signal to whoever handled it before (so
 * AddressSanitizer still prints its report and the exit status still says "crashed").
 */
#define _GNU_SOURCE
#include <curses.h>
#include <langinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sim/display_ncurses.h"
#include "fw/fw_device.h"

static volatile sig_atomic_t ncurses__active; /* in curses mode: endwin() needed */
static bool ncurses__colors;
static bool ncurses__utf8;
static bool ncurses__handlers_installed;

static const int ncurses__crash_signals[] = { SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL };
#define NCURSES__NCRASH (sizeof(ncurses__crash_signals) / sizeof(ncurses__crash_signals[0]))
static struct sigaction ncurses__old_actions[NCURSES__NCRASH];

/* ------------------------------------------------------------------ terminal life */

/* A crash of the firmware under test (or of anything else in the process): give the
   person their terminal back first, then let the previous handler (ASan's, or the
   default action) do what it would have done. endwin() is not async-signal-safe in
   theory; in practice it only writes escape sequences and calls tcsetattr, and a
   terminal left in raw mode with no echo is the worse outcome. */
static void ncurses__on_crash(int sig)
{
    static const char msg[] = "\nscansim demo: crashed; the terminal was restored\n";

    if (ncurses__active) {
        ncurses__active = 0;
        endwin();
        ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)n;
    }
    for (size_t i = 0; i < NCURSES__NCRASH; i++) {
        if (ncurses__crash_signals[i] == sig)
            sigaction(sig, &ncurses__old_actions[i], NULL);
    }
    /* Blocked until we return; a fault re-executes and reaches the old handler anyway. */
    raise(sig);
}

static void ncurses__at_exit(void)
{
    sim_ncurses_close();
}

static void ncurses__install_handlers(void)
{
    struct sigaction sa;

    if (ncurses__handlers_installed)
        return;
    ncurses__handlers_installed = true;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ncurses__on_crash;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NCURSES__NCRASH; i++)
        sigaction(ncurses__crash_signals[i], &sa, &ncurses__old_actions[i]);
    atexit(ncurses__at_exit);
}

bool sim_ncurses_locale_utf8(void)
{
    const char *cs = nl_langinfo(CODESET);

    return cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
}

int sim_ncurses_open(void)
{
    ncurses__utf8 = sim_ncurses_locale_utf8();
    ncurses__install_handlers();
    /* newterm instead of initscr: initscr exits the process on an unknown TERM, and we
       want to say what to do instead. */
    if (!newterm(NULL, stdout, stdin))
        return -1;
    ncurses__active = 1;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25); /* Esc cancels the tag prompt at once, not after a second */
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(SIM_COLOR_GOOD, COLOR_GREEN, -1);
        init_pair(SIM_COLOR_BAD, COLOR_RED, -1);
        init_pair(SIM_COLOR_IN, COLOR_CYAN, -1);
        init_pair(SIM_COLOR_OUT, COLOR_YELLOW, -1);
        init_pair(SIM_COLOR_TITLE, COLOR_WHITE, -1);
        ncurses__colors = true;
    }
    return 0;
}

void sim_ncurses_close(void)
{
    if (!ncurses__active)
        return;
    ncurses__active = 0;
    curs_set(1);
    endwin();
    /* newterm's SCREEN stays allocated (delscreen would free it); it is one per process. */
}

int sim_ncurses_attr(enum sim_ncurses_color c)
{
    if (!ncurses__colors || c == SIM_COLOR_NONE)
        return 0;
    return (int)COLOR_PAIR(c) | (c == SIM_COLOR_TITLE ? A_BOLD : 0);
}

/* ------------------------------------------------------------------ text and boxes */

void sim_ncurses_text(int y, int x, int w, int attr, const char *text)
{
    char buf[1024];
    size_t o = 0;
    int cols = 0;

    if (y < 0 || y >= LINES || x < 0 || x >= COLS || w <= 0 || !text)
        return;
    if (w > COLS - x)
        w = COLS - x;
    for (const unsigned char *p = (const unsigned char *)text; *p && o + 5 < sizeof(buf);) {
        if (*p < 0x80) {
            if (cols >= w)
                break;
            buf[o++] = (*p < 0x20 || *p == 0x7f) ? '.' : (char)*p;
            cols++;
            p++;
        } else if (!ncurses__utf8) {
            if (cols >= w)
                break;
            buf[o++] = '?'; /* a UTF-8 byte on a terminal that cannot show it */
            cols++;
            p++;
        } else {
            /* One UTF-8 sequence = one column (what our panels hold: names, blocks). */
            size_t len = (*p >= 0xF0) ? 4 : (*p >= 0xE0) ? 3 : (*p >= 0xC0) ? 2 : 1;
            size_t have = 1;
            if (cols >= w)
                break;
            while (have < len && (p[have] & 0xC0) == 0x80)
                have++;
            /* A cut or stray sequence, or a C1 control (U+0080..U+009F, which some
               terminals obey): show '?' rather than pass it on. */
            if (have < len || len == 1 || (p[0] == 0xC2 && p[1] < 0xA0)) {
                buf[o++] = '?';
            } else {
                for (size_t i = 0; i < len; i++)
                    buf[o++] = (char)p[i];
            }
            cols++;
            p += have;
            while (*p >= 0x80 && *p < 0xC0)
                p++; /* stray continuation bytes */
        }
    }
    buf[o] = '\0';
    if (attr)
        attron(attr);
    mvaddstr(y, x, buf);
    if (attr)
        attroff(attr);
}

static void ncurses__put(int y, int x, chtype ch)
{
    if (y >= 0 && y < LINES && x >= 0 && x < COLS)
        mvaddch(y, x, ch);
}

void sim_ncurses_box(int y, int x, int h, int w, const char *title)
{
    if (h < 2 || w < 2)
        return;
    for (int i = 1; i < w - 1; i++) {
        ncurses__put(y, x + i, ACS_HLINE);
        ncurses__put(y + h - 1, x + i, ACS_HLINE);
    }
    for (int j = 1; j < h - 1; j++) {
        ncurses__put(y + j, x, ACS_VLINE);
        ncurses__put(y + j, x + w - 1, ACS_VLINE);
    }
    ncurses__put(y, x, ACS_ULCORNER);
    ncurses__put(y, x + w - 1, ACS_URCORNER);
    ncurses__put(y + h - 1, x, ACS_LLCORNER);
    ncurses__put(y + h - 1, x + w - 1, ACS_LRCORNER);
    if (title && *title && w > 6) {
        char t[512];
        snprintf(t, sizeof(t), " %s ", title);
        sim_ncurses_text(y, x + 2, w - 4, sim_ncurses_attr(SIM_COLOR_TITLE), t);
    }
}

/* ------------------------------------------------------------------ the OLED */

void sim_oled_style_cells(enum sim_oled_style style, int *cols, int *rows)
{
    bool full = style == SIM_OLED_HALFBLOCK || style == SIM_OLED_ASCII;

    *cols = full ? FW_FB_WIDTH : FW_FB_WIDTH / 2;
    *rows = full ? FW_FB_HEIGHT / 2 : FW_FB_HEIGHT / 4;
}

const char *sim_oled_style_name(enum sim_oled_style style)
{
    switch (style) {
    case SIM_OLED_HALFBLOCK: return "pixel-true, half blocks";
    case SIM_OLED_BRAILLE: return "pixel-true, braille";
    case SIM_OLED_ASCII: return "ASCII, approximated (terminal is not UTF-8)";
    default: return "ASCII 2x4, approximated (not UTF-8 and small)";
    }
}

static void ncurses__utf8_put(char *out, size_t *o, unsigned cp)
{
    out[(*o)++] = (char)(0xE0 | (cp >> 12));
    out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (cp & 0x3F));
}

static bool ncurses__px(const uint8_t *fb, int x, int y)
{
    return fb && fw_fb_pixel(fb, x, y);
}

void sim_oled_draw(int y, int x, enum sim_oled_style style, const uint8_t *fb)
{
    int cols, rows;
    char line[FW_FB_WIDTH * 3 + 1];

    sim_oled_style_cells(style, &cols, &rows);
    for (int r = 0; r < rows; r++) {
        size_t o = 0;
        for (int c = 0; c < cols; c++) {
            switch (style) {
            case SIM_OLED_HALFBLOCK: {
                bool top = ncurses__px(fb, c, 2 * r), bot = ncurses__px(fb, c, 2 * r + 1);
                if (top && bot)
                    ncurses__utf8_put(line, &o, 0x2588); /* █ */
                else if (top)
                    ncurses__utf8_put(line, &o, 0x2580); /* ▀ */
                else if (bot)
                    ncurses__utf8_put(line, &o, 0x2584); /* ▄ */
                else
                    line[o++] = ' ';
                break;
            }
            case SIM_OLED_ASCII: {
                bool top = ncurses__px(fb, c, 2 * r), bot = ncurses__px(fb, c, 2 * r + 1);
                line[o++] = top && bot ? '#' : top ? '"' : bot ? '.' : ' ';
                break;
            }
            case SIM_OLED_BRAILLE: {
                /* Braille dots 1-8 cover a 2x4 block: bits by (dx, dy). */
                static const unsigned bit[4][2] = { { 0x01, 0x08 }, { 0x02, 0x10 },
                                                    { 0x04, 0x20 }, { 0x40, 0x80 } };
                unsigned dots = 0;
                for (int dy = 0; dy < 4; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        if (ncurses__px(fb, 2 * c + dx, 4 * r + dy))
                            dots |= bit[dy][dx];
                if (dots)
                    ncurses__utf8_put(line, &o, 0x2800 + dots);
                else
                    line[o++] = ' ';
                break;
            }
            default: {
                int lit = 0;
                for (int dy = 0; dy < 4; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        lit += ncurses__px(fb, 2 * c + dx, 4 * r + dy);
                line[o++] = lit >= 4 ? '#' : lit >= 2 ? '+' : lit ? '.' : ' ';
                break;
            }
            }
        }
        line[o] = '\0';
        /* Clip to the screen; a cut line still starts at the panel's left edge. */
        if (y + 1 + r < LINES && x + 1 < COLS)
            sim_ncurses_text(y + 1 + r, x + 1, cols, 0, line);
    }
}
