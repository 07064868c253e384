/*
 * fw_screens.c - what each screen shows, drawn into the 128x64 frame (21 x 8 text cells).
 *
 * Layout: row 0 is an inverted title bar with the screen's name on the left and the
 * connection state on the right; rows 2..6 carry the content; row 7 says which buttons do
 * what. A frame is built whole and flushed in one call (no flicker on the real OLED).
 */
#include <string.h>

#include "fw/fw_codec.h"
#include "fw_device_internal.h"
#include "fw_display.h"
#include "fw_outbox.h"
#include "fw_util.h"

#define LINE_CAP (FW_TEXT_COLS + 1)

static void screens__title(uint8_t *fb, const char *title, bool online)
{
    const char *state = online ? "ONLINE" : "OFFLINE";
    fw_display__fill_row(fb, 0, true);
    fw_display__text(fb, 0, 0, title, true);
    fw_display__text(fb, FW_TEXT_COLS - (int)strlen(state), 0, state, true);
}

static void screens__label_u32(uint8_t *fb, int row, const char *label, uint32_t v)
{
    char line[LINE_CAP];
    struct fw_text t;
    fw_text__init(&t, line, sizeof line);
    fw_text__str(&t, label);
    fw_text__u32(&t, v);
    fw_display__text(fb, 0, row, line, false);
}

/* An item name over two rows when it needs them (names are at most 32 bytes). */
static void screens__name(uint8_t *fb, int row, const char *name)
{
    fw_display__text(fb, 0, row, name, false);
    if (strlen(name) > FW_TEXT_COLS)
        fw_display__text(fb, 0, row + 1, name + FW_TEXT_COLS, false);
}

static void screens__hex(uint8_t *fb, int row, const struct fw_tag_uid *tag)
{
    char hex[FW_TAG_HEX_MAX];
    if (fw_tag_to_hex(tag->bytes, tag->len, hex, sizeof hex) > 0)
        fw_display__text(fb, 0, row, hex, false);
}

static void screens__item(const struct fw_device *d, uint8_t *fb, bool confirm)
{
    const struct fw_pending_item *item = &d->pending[d->pending_head];
    char line[LINE_CAP];
    struct fw_text t;
    fw_text__init(&t, line, sizeof line);
    fw_text__str(&t, confirm ? "CONFIRM " : "ITEM ");
    fw_text__u32(&t, 1);
    fw_text__char(&t, '/');
    fw_text__u32(&t, d->pending_count);
    screens__title(fb, line, d->conn == FW_CONN_ONLINE);

    fw_text__init(&t, line, sizeof line);
    fw_text__str(&t, "#");
    fw_text__i32(&t, item->item_id);
    fw_text__str(&t, " x");
    fw_text__i32(&t, item->tag_quantity);
    fw_display__text(fb, 0, 1, line, false);
    screens__name(fb, 2, item->name);
    if (confirm) {
        fw_display__text(fb, 0, 4, "tag:", false);
        screens__hex(fb, 5, &d->scanned);
        fw_display__text(fb, 0, 7, "OK=register X=skip", false);
    } else {
        fw_display__text(fb, 0, 5, "scan a tag", false);
        fw_display__text(fb, 0, 7, "X=skip MODE=lookup", false);
    }
}

static void screens__idle(const struct fw_device *d, uint8_t *fb)
{
    screens__title(fb, "SCANNER", d->conn == FW_CONN_ONLINE);
    fw_display__text(fb, 0, 2, d->device_id, false);
    screens__label_u32(fb, 3, "pending ", d->pending_count);
    screens__label_u32(fb, 4, "outbox  ", d->outbox.count);
    fw_display__text(fb, 0, 5, "waiting for items", false);
    fw_display__text(fb, 0, 7, "MODE=lookup", false);
}

static const char *screens__notice_text(enum fw_notice n)
{
    switch (n) {
    case FW_NOTICE_REGISTERED_SENT: return "sent";
    case FW_NOTICE_REGISTERED_QUEUED: return "saved, offline";
    case FW_NOTICE_CANCELLED: return "item skipped";
    case FW_NOTICE_QUEUE_FULL: return "item queue full";
    case FW_NOTICE_OUTBOX_FULL: return "outbox full";
    case FW_NOTICE_BAD_TAG: return "wrong tag: bad UID";
    case FW_NOTICE_TAG_USED: return "tag already used";
    case FW_NOTICE_OFFLINE: return "offline, try later";
    case FW_NOTICE_FLASH_ERROR: return "flash error";
    case FW_NOTICE_REFUSED: return "refused by broker";
    case FW_NOTICE_SUB_REFUSED: return "subscribe refused";
    case FW_NOTICE_NONE: break;
    }
    return "";
}

static void screens__notice(const struct fw_device *d, uint8_t *fb, enum fw_screen screen)
{
    const char *title = screen == FW_SCREEN_REGISTERED  ? "REGISTERED"
                        : screen == FW_SCREEN_CANCELLED ? "CANCELLED"
                                                        : "ERROR";
    screens__title(fb, title, d->conn == FW_CONN_ONLINE);
    fw_display__text(fb, 0, 3, screens__notice_text((enum fw_notice)d->notice), false);
    if (screen == FW_SCREEN_REGISTERED)
        screens__label_u32(fb, 4, "seq ", d->seq);
    if (d->notice == FW_NOTICE_REFUSED || d->notice == FW_NOTICE_SUB_REFUSED)
        fw_display__text(fb, 0, 4,
                         d->refused_reason < 0 ? fw_strerror(d->refused_reason)
                                               : fw_reason_code_name(d->refused_reason),
                         false);
    fw_display__text(fb, 0, 7, "OK=continue", false);
}

static void screens__inventory(const struct fw_device *d, uint8_t *fb, enum fw_screen screen)
{
    screens__title(fb, "LOOKUP", d->conn == FW_CONN_ONLINE);
    if (screen == FW_SCREEN_INVENTORY_SCAN) {
        fw_display__text(fb, 0, 3, "scan a tag", false);
        fw_display__text(fb, 0, 7, "MODE=back", false);
        return;
    }
    screens__hex(fb, 2, &d->inv_tag);
    if (screen == FW_SCREEN_INVENTORY_WAIT) {
        fw_display__text(fb, 0, 4, "asking backend...", false);
    } else if (d->inv_state == FW_INV_TIMED_OUT) {
        fw_display__text(fb, 0, 4, "no answer (timeout)", false);
    } else if (!d->inv_found) {
        fw_display__text(fb, 0, 4, "not found", false);
    } else {
        char line[LINE_CAP];
        struct fw_text t;
        fw_text__init(&t, line, sizeof line);
        fw_text__str(&t, "found #");
        fw_text__i32(&t, d->inv_item_id);
        fw_display__text(fb, 0, 3, line, false);
        screens__name(fb, 4, d->inv_item_name);
    }
    fw_display__text(fb, 0, 7, "OK=next MODE=back", false);
}

/* The backend's text over rows 2..5, 21 characters a row (at most 64 bytes). */
static void screens__message(const struct fw_device *d, uint8_t *fb)
{
    screens__title(fb, "MESSAGE", d->conn == FW_CONN_ONLINE);
    size_t n = strlen(d->message);
    for (int row = 0; row < 4 && (size_t)row * FW_TEXT_COLS < n; row++) {
        char line[LINE_CAP];
        size_t from = (size_t)row * FW_TEXT_COLS;
        size_t len = n - from < FW_TEXT_COLS ? n - from : FW_TEXT_COLS;
        memcpy(line, d->message + from, len);
        line[len] = '\0';
        fw_display__text(fb, 0, 2 + row, line, false);
    }
    fw_display__text(fb, 0, 7, "any key=dismiss", false);
}

static void screens__locked(const struct fw_device *d, uint8_t *fb)
{
    screens__title(fb, "LOCKED", d->conn == FW_CONN_ONLINE);
    fw_display__text(fb, 0, 2, "locked by the", false);
    fw_display__text(fb, 0, 3, "backend: hand in", false);
    fw_display__text(fb, 0, 4, "to the supervisor", false);
    fw_display__text(fb, 0, 6, d->device_id, false);
}

void fw_screens__render(const struct fw_device *d, uint8_t *fb)
{
    fw_display__clear(fb);
    enum fw_screen screen = fw_device__screen(d);
    switch (screen) {
    case FW_SCREEN_IDLE: screens__idle(d, fb); break;
    case FW_SCREEN_ITEM: screens__item(d, fb, false); break;
    case FW_SCREEN_CONFIRM: screens__item(d, fb, true); break;
    case FW_SCREEN_REGISTERED:
    case FW_SCREEN_CANCELLED:
    case FW_SCREEN_ERROR: screens__notice(d, fb, screen); break;
    case FW_SCREEN_INVENTORY_SCAN:
    case FW_SCREEN_INVENTORY_WAIT:
    case FW_SCREEN_INVENTORY_RESULT: screens__inventory(d, fb, screen); break;
    case FW_SCREEN_MESSAGE: screens__message(d, fb); break;
    case FW_SCREEN_LOCKED: screens__locked(d, fb); break;
    }
    /* The identify command: the whole panel inverted, every other half second. */
    if (d->identify_inverted)
        for (int i = 0; i < FW_FB_BYTES; i++)
            fb[i] = (uint8_t)~fb[i];
}
