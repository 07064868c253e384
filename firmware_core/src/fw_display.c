/*
 * fw_display.c - text rendering into the SSD1306 page layout (see fw_display.h).
 */
#include "fw_display.h"

#include <string.h>

void fw_display__clear(uint8_t *fb)
{
    memset(fb, 0, FW_FB_BYTES);
}

void fw_display__fill_row(uint8_t *fb, int row, bool lit)
{
    if (row < 0 || row >= FW_TEXT_ROWS)
        return;
    memset(fb + row * FW_FB_WIDTH, lit ? 0xFF : 0x00, FW_FB_WIDTH);
}

void fw_display__text(uint8_t *fb, int col, int row, const char *s, bool inverted)
{
    if (row < 0 || row >= FW_TEXT_ROWS || col < 0)
        return;
    uint8_t *page = fb + row * FW_FB_WIDTH;
    for (; *s && col < FW_TEXT_COLS; s++, col++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c > 0x7E)
            c = '?';
        const uint8_t *glyph = fw_font5x7[c - 0x20];
        uint8_t *dst = page + col * FW_CELL_W;
        for (int x = 0; x < FW_GLYPH_W; x++)
            dst[x] = inverted ? (uint8_t)~glyph[x] : glyph[x];
        /* The spacing column; the 21st cell's would be pixel 126, still on screen. */
        dst[FW_GLYPH_W] = inverted ? 0xFF : 0x00;
    }
}
