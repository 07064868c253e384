/*
 * fw_display.h - drawing text into the 128x64 1-bit SSD1306 framebuffer (internal).
 *
 * Text mode only: 21 columns x 8 lines of the built-in 5x7 font, each glyph 5 pixels wide
 * plus a blank column, each line one SSD1306 page (8 pixel rows). Writing whole page bytes
 * keeps drawing a line to a few dozen byte stores, cheap enough for 10,000 devices.
 */
#ifndef FW_DISPLAY_H
#define FW_DISPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "fw/fw_config.h"

#define FW_TEXT_COLS 21
#define FW_TEXT_ROWS 8
#define FW_GLYPH_W 5
#define FW_CELL_W 6

/* The classic 5x7 ASCII font, 0x20..0x7E, 5 column bytes each, bit 0 = top row. */
extern const uint8_t fw_font5x7[95][FW_GLYPH_W];

void fw_display__clear(uint8_t *fb);
/* Draws s from text column col on text row row, clipped at the right edge; characters
   outside 0x20..0x7E are drawn as '?'. inverted: lit background, dark glyphs. */
void fw_display__text(uint8_t *fb, int col, int row, const char *s, bool inverted);
/* Lights (or clears) a whole text row: the background of an inverted title bar. */
void fw_display__fill_row(uint8_t *fb, int row, bool lit);

#endif /* FW_DISPLAY_H */
