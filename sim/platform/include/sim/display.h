/*
 * sim/display.h - the headless display port: keeps the last frames for checks.
 *
 * The firmware draws a 128x64 1-bit framebuffer (SSD1306 page order, fw_ports.h) and
 * flushes it when it changed. The headless display copies the last N frames into a ring
 * and counts all frames; tests and the harness read them from any thread (a mutex guards
 * the ring). sim_display_ascii() turns a frame into text for logs, reports and failing
 * test messages.
 *
 * Ownership: the caller frees a display with sim_display_free(); frames passed in are
 * copied; frames read out are copied into the caller's buffer.
 */
#ifndef SIM_DISPLAY_H
#define SIM_DISPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "fw/fw_config.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sim_display;

/** A headless display keeping the last keep_frames frames (1..64; 0 = only count them).
 *  0, SIM_ERR_INVAL, SIM_ERR_NOMEM. */
int sim_display_headless_create(unsigned keep_frames, struct sim_display **out);

/** Free. NULL is fine. */
void sim_display_free(struct sim_display *d);

/** The display_flush port: copy a frame (FW_FB_BYTES bytes) into the ring. Owner thread. */
void sim_display_flush(struct sim_display *d, const uint8_t *fb);

/** Frames flushed since creation. Any thread. */
uint64_t sim_display_frame_count(struct sim_display *d);

/** Copy a kept frame into out (FW_FB_BYTES): age 0 = the latest, 1 = the one before...
 *  0, SIM_ERR_NOT_FOUND (fewer frames kept). Any thread. */
int sim_display_frame(struct sim_display *d, unsigned age, uint8_t *out);

enum sim_ascii_style {
    SIM_ASCII_HASH = 0,   /* one character per pixel: '#' lit, '.' dark; 64 lines of 128 */
    SIM_ASCII_HALFBLOCK,  /* UTF-8 half blocks, two pixel rows per line; 32 lines of 128 */
};

/** Bytes needed (NUL included) for sim_display_ascii() in a style. */
size_t sim_display_ascii_size(enum sim_ascii_style style);

/** Render a frame as text, lines ending in '\n', NUL-terminated. Returns the length
 *  written (without the NUL) or SIM_ERR_TOO_BIG when cap < sim_display_ascii_size(). */
int sim_display_ascii(const uint8_t *fb, enum sim_ascii_style style, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* SIM_DISPLAY_H */
