/*
 * display_headless.c - the headless display port and ASCII rendering (sim/display.h).
 * Keeps a ring of the last frames so checks can look at what the OLED showed, from any
 * thread (a small mutex: flushes happen only when the picture changes).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_device.h"
#include "sim/display.h"
#include "sim/err.h"

#define MAX_KEEP 64

struct sim_display {
    pthread_mutex_t mu;
    unsigned keep;     /* ring size */
    uint64_t count;    /* frames flushed */
    uint8_t frames[];  /* keep * FW_FB_BYTES; frame i at (i % keep) */
};

int sim_display_headless_create(unsigned keep_frames, struct sim_display **out)
{
    struct sim_display *d;

    *out = NULL;
    if (keep_frames > MAX_KEEP)
        return SIM_ERR_INVAL;
    d = calloc(1, sizeof(*d) + (size_t)keep_frames * FW_FB_BYTES);
    if (!d)
        return SIM_ERR_NOMEM;
    pthread_mutex_init(&d->mu, NULL);
    d->keep = keep_frames;
    *out = d;
    return SIM_OK;
}

void sim_display_free(struct sim_display *d)
{
    if (!d)
        return;
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void sim_display_flush(struct sim_display *d, const uint8_t *fb)
{
    pthread_mutex_lock(&d->mu);
    if (d->keep)
        memcpy(d->frames + (d->count % d->keep) * FW_FB_BYTES, fb, FW_FB_BYTES);
    d->count++;
    pthread_mutex_unlock(&d->mu);
}

uint64_t sim_display_frame_count(struct sim_display *d)
{
    uint64_t n;

    pthread_mutex_lock(&d->mu);
    n = d->count;
    pthread_mutex_unlock(&d->mu);
    return n;
}

int sim_display_frame(struct sim_display *d, unsigned age, uint8_t *out)
{
    int rc = SIM_ERR_NOT_FOUND;

    pthread_mutex_lock(&d->mu);
    if (age < d->keep && age < d->count) {
        uint64_t idx = (d->count - 1 - age) % d->keep;
        memcpy(out, d->frames + idx * FW_FB_BYTES, FW_FB_BYTES);
        rc = SIM_OK;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

size_t sim_display_ascii_size(enum sim_ascii_style style)
{
    if (style == SIM_ASCII_HALFBLOCK)
        return (size_t)(FW_FB_HEIGHT / 2) * (FW_FB_WIDTH * 3 + 1) + 1;
    return (size_t)FW_FB_HEIGHT * (FW_FB_WIDTH + 1) + 1;
}

int sim_display_ascii(const uint8_t *fb, enum sim_ascii_style style, char *out, size_t cap)
{
    /* U+2580 upper half, U+2584 lower half, U+2588 full block. */
    static const char *const half[4] = { " ", "\xe2\x96\x80", "\xe2\x96\x84",
                                         "\xe2\x96\x88" };
    char *p = out;

    if (cap < sim_display_ascii_size(style))
        return SIM_ERR_TOO_BIG;
    if (style == SIM_ASCII_HALFBLOCK) {
        for (int y = 0; y < FW_FB_HEIGHT; y += 2) {
            for (int x = 0; x < FW_FB_WIDTH; x++) {
                int v = (fw_fb_pixel(fb, x, y) ? 1 : 0) | (fw_fb_pixel(fb, x, y + 1) ? 2 : 0);
                size_t n = strlen(half[v]);
                memcpy(p, half[v], n);
                p += n;
            }
            *p++ = '\n';
        }
    } else {
        for (int y = 0; y < FW_FB_HEIGHT; y++) {
            for (int x = 0; x < FW_FB_WIDTH; x++)
                *p++ = fw_fb_pixel(fb, x, y) ? '#' : '.';
            *p++ = '\n';
        }
    }
    *p = '\0';
    return (int)(p - out);
}
