/*
 * demo_watch.c - what `scansim demo` watches: the scanners' observer (frames, log lines,
 * MQTT traffic, connection changes) and the figures read before each frame (device
 * snapshots, the backend's ledger), all into the view (demo_ui.h).
 *
 * The observer runs on the main thread, which owns the devices' loop: no lock is needed
 * between it and curses. Every scanner shares the observer; sim_device_user() says which
 * one called.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "demo_app.h"
#include "sim/clock.h"
#include "sim/display.h"

/* ------------------------------------------------------------------ helpers */

static struct demo_unit *demo_watch__unit(struct sim_device *dev)
{
    return sim_device_user(dev);
}

const char *demo_who(const struct demo *d, int k)
{
    static char who[FW_DEVICE_ID_MAX + 2];

    if (d->ndev < 2)
        return "";
    snprintf(who, sizeof(who), "%s ", d->units[k].id);
    return who;
}

/* --oled-dump: the frame as sim_display_ascii() writes it, into FILE.tmp, renamed over FILE
   so a reader never sees half a frame. */
static void demo_watch__dump_frame(struct demo *d, const uint8_t *fb)
{
    char text[(FW_FB_HEIGHT / 2) * (FW_FB_WIDTH * 3 + 1) + 1];
    char tmp[4096];
    FILE *f;
    int n = sim_display_ascii(fb, SIM_ASCII_HALFBLOCK, text, sizeof(text));
    bool ok;

    if (d->oled_dump_failed || n < 0)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", d->oled_dump);
    f = fopen(tmp, "w");
    ok = f && fwrite(text, 1, (size_t)n, f) == (size_t)n;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, d->oled_dump) != 0) {
        demo_notice(&d->view, true, "--oled-dump: cannot write %s: %s (no more dumps)",
                    d->oled_dump, strerror(errno));
        d->oled_dump_failed = true;
    }
}

/* ------------------------------------------------------------------ observer (main thread) */

static void demo_watch__on_frame(void *ctx, struct sim_device *dev, const uint8_t *fb)
{
    struct demo *d = ctx;
    struct demo_unit *u = demo_watch__unit(dev);
    struct demo_view_dev *dv = &d->view.devs[u->index];

    memcpy(dv->fb, fb, FW_FB_BYTES);
    dv->have_frame = true;
    d->dirty = true;
    if (d->oled_dump && u->index == 0)
        demo_watch__dump_frame(d, fb);
}

static void demo_watch__on_log(void *ctx, struct sim_device *dev, enum fw_log_level level,
                               const char *line)
{
    struct demo *d = ctx;
    static const char *const names[] = { "debug", "info", "warn", "error" };

    demo_log(&d->view, level >= FW_LOG_WARN ? DEMO_LOG_ERROR : DEMO_LOG_FW, "%sfw %s: %s",
             demo_who(d, demo_watch__unit(dev)->index),
             (unsigned)level < 4 ? names[level] : "?", line);
    d->dirty = true;
}

static void demo_watch__on_traffic(void *ctx, struct sim_device *dev, const struct sim_traffic *t)
{
    struct demo *d = ctx;

    demo_log_traffic(&d->view, demo_who(d, demo_watch__unit(dev)->index), t);
    d->dirty = true;
}

/* Why the link went: kept until the next connection, so the screen can say it while the
   device retries. */
static void demo_watch__note_why(struct demo_view_dev *dv, const struct sim_state_change *s)
{
    if (s->state == SIM_CONN_CONNECTED) {
        dv->why = DEMO_WHY_NONE;
    } else if (s->state == SIM_CONN_FAILED && s->code > 0) {
        dv->why = DEMO_WHY_REFUSED;
        dv->refused_code = s->code;
    } else if (s->state == SIM_CONN_FAILED || s->state == SIM_CONN_LOST) {
        dv->why = DEMO_WHY_GONE;
    }
}

static void demo_watch__on_state(void *ctx, struct sim_device *dev, const struct sim_state_change *s)
{
    struct demo *d = ctx;
    struct demo_unit *u = demo_watch__unit(dev);
    const char *who = demo_who(d, u->index);
    const char *uri = d->view.devs[u->index].device_uri;

    demo_watch__note_why(&d->view.devs[u->index], s);
    switch (s->state) {
    case SIM_CONN_CONNECTING:
        if (u->net)
            demo_log(&d->view, DEMO_LOG_STATE, "%sconnecting to %s (the proxy to %s)", who, uri,
                     d->broker_uri);
        else
            demo_log(&d->view, DEMO_LOG_STATE, "%sconnecting to %s", who, uri);
        break;
    case SIM_CONN_SUBSCRIBING:
        demo_log(&d->view, DEMO_LOG_STATE, "%sconnected (session %s), subscribing", who,
                 s->session_present ? "present" : "new");
        break;
    case SIM_CONN_CONNECTED:
        demo_log(&d->view, DEMO_LOG_STATE, "%ssubscriptions granted: online", who);
        break;
    case SIM_CONN_FAILED:
    case SIM_CONN_LOST:
        /* The firmware has just logged the same words: keep one line, the clearer one. */
        demo_log_drop_last_if(&d->view, DEMO_LOG_ERROR, s->words);
        demo_log(&d->view, DEMO_LOG_ERROR, "%s%s: %s", who,
                 s->state == SIM_CONN_LOST ? "connection lost" : "connect failed", s->words);
        break;
    default:
        demo_log(&d->view, DEMO_LOG_STATE, "%s%s", who, sim_conn_state_name(s->state));
        break;
    }
    d->dirty = true;
}

const struct sim_device_observer demo_observer_hooks = {
    NULL, demo_watch__on_frame, demo_watch__on_log, demo_watch__on_traffic, demo_watch__on_state,
};

/* ------------------------------------------------------------------ figures before a frame */

static void demo_watch__device(struct demo *d, int k)
{
    struct demo_view_dev *dv = &d->view.devs[k];
    uint32_t acked = dv->snap.stats.registrations_acked;

    if (sim_device_snapshot(d->units[k].dev, &dv->snap) == 0)
        dv->have_snap = true;
    /* PUBACKs do not pass the traffic hook; say in the log when the broker took one. */
    if (dv->have_snap && dv->snap.stats.registrations_acked > acked)
        demo_log(&d->view, DEMO_LOG_STATE, "%sbroker acknowledged %u registration(s): %u acked, "
                 "%u still in the outbox", demo_who(d, k),
                 (unsigned)(dv->snap.stats.registrations_acked - acked),
                 (unsigned)dv->snap.stats.registrations_acked, (unsigned)dv->snap.status.outbox);
    dv->snap.status.head_item_name = dv->snap.head_item_name;
    dv->net_cut = d->units[k].net && demo_net_is_cut(d->units[k].net);
}

static void demo_watch__backend(struct demo *d)
{
    struct demo_view *v = &d->view;

    hx_backend_report(d->backend, &v->report);
    v->nrows = hx_backend_recent(d->backend, v->rows, DEMO_BACKEND_ROWS);
    if (v->nrows < 0)
        v->nrows = 0;
    for (int i = 0; i < v->nitems; i++) {
        int n = hx_backend_item_registrations(d->backend, v->items[i].id);
        v->items[i].registrations = n > 0 ? n : 0;
        v->items[i].finished = hx_backend_item_finished(d->backend, v->items[i].id);
    }
    v->backend_connected = hx_backend_connected(d->backend);
}

void demo_refresh_model(struct demo *d)
{
    for (int k = 0; k < d->ndev; k++)
        if (d->units[k].dev)
            demo_watch__device(d, k);
    d->view.now_ms = sim_clock_ms();
    if (d->backend)
        demo_watch__backend(d);
}
