/*
 * demo_log.c - the log ring and the notice line of `scansim demo` (demo_ui.h).
 *
 * Lines are formatted once, when they happen, with a time stamp; the log panel shows the
 * newest that fit. Payloads from the network are escaped here, before they reach the
 * screen.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "demo_ui.h"

/* ------------------------------------------------------------------ log */

static void demo_log__stamp(char *out, size_t cap)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    snprintf(out, cap, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));
}

static char *demo_log__next_line(struct demo_view *v, enum demo_log_kind kind)
{
    unsigned slot = v->log_head;

    v->log_head = (v->log_head + 1) % DEMO_LOG_LINES;
    if (v->log_count < DEMO_LOG_LINES)
        v->log_count++;
    v->log[slot].kind = kind;
    return v->log[slot].text;
}

void demo_log(struct demo_view *v, enum demo_log_kind kind, const char *fmt, ...)
{
    char *line = demo_log__next_line(v, kind);
    char stamp[16];
    va_list ap;
    int n;

    demo_log__stamp(stamp, sizeof(stamp));
    n = snprintf(line, DEMO_LOG_WIDTH, "%s ", stamp);
    va_start(ap, fmt);
    vsnprintf(line + n, DEMO_LOG_WIDTH - (size_t)n, fmt, ap);
    va_end(ap);
}

void demo_log_drop_last_if(struct demo_view *v, enum demo_log_kind kind, const char *words)
{
    unsigned last = (v->log_head + DEMO_LOG_LINES - 1) % DEMO_LOG_LINES;

    char head[41];

    /* The firmware's copy may be cut at FW_LOG_MAX: compare the start of the words. */
    snprintf(head, sizeof(head), "%s", words ? words : "");
    if (!v->log_count || !head[0] || v->log[last].kind != kind || !strstr(v->log[last].text, head))
        return;
    v->log_head = last;
    v->log_count--;
}

void demo_log_traffic(struct demo_view *v, const char *who, const struct sim_traffic *t)
{
    char payload[DEMO_LOG_WIDTH];
    const unsigned char *p = t->payload;
    size_t o = 0;

    /* Payloads come from the network: show printable ASCII, escape the rest, so a
       hostile payload cannot move the cursor or break the layout. UTF-8 is escaped too:
       the log is for checking bytes. */
    for (size_t i = 0; i < t->len && o + 5 < sizeof(payload); i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f) {
            payload[o++] = (char)p[i];
        } else {
            o += (size_t)snprintf(payload + o, sizeof(payload) - o, "\\x%02X", p[i]);
        }
    }
    payload[o] = '\0';
    if (t->dir == SIM_TRAFFIC_IN)
        demo_log(v, DEMO_LOG_IN, "%sIN  %s q%d%s%s %s", who, t->topic, t->qos, t->dup ? " DUP" : "",
                 t->retain ? " RETAIN" : "", payload);
    else
        demo_log(v, t->result ? DEMO_LOG_ERROR : DEMO_LOG_OUT, "%sOUT %s q%d%s %s%s%s", who, t->topic,
                 t->qos, t->retain ? " RETAIN" : "", payload, t->result ? "  -> refused: " : "",
                 t->result ? fw_strerror(t->result) : "");
}

void demo_notice(struct demo_view *v, bool error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(v->notice, sizeof(v->notice), fmt, ap);
    va_end(ap);
    v->notice_error = error;
}
