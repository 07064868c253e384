/*
 * dash_buf.c - a growing text buffer for the dashboard's JSON, HTML and metrics (dash.h).
 * One allocation failure marks the buffer failed; the caller checks once at the end.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"

static bool dash_buf__room(struct dash_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void dash_buf_add(struct dash_buf *b, const void *data, size_t n)
{
    if (!dash_buf__room(b, n))
        return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void dash_buf_printf(struct dash_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        dash_buf_add(b, small, (size_t)n);
        return;
    }
    if (!dash_buf__room(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dash_buf_json_str(struct dash_buf *b, const char *s)
{
    dash_buf_lit(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = { '\\', (char)*p };
            dash_buf_add(b, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            dash_buf_printf(b, "\\u%04x", *p);
        } else if (*p == '<') {
            dash_buf_lit(b, "\\u003c"); /* never "</script>" inside the report's JSON */
        } else {
            dash_buf_add(b, p, 1);
        }
    }
    dash_buf_lit(b, "\"");
}

void dash_buf_base64(struct dash_buf *b, const uint8_t *d, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    if (!dash_buf__room(b, (n + 2) / 3 * 4))
        return;
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n)
            v |= d[i + 2];
        *o++ = al[(v >> 18) & 63];
        *o++ = al[(v >> 12) & 63];
        *o++ = i + 1 < n ? al[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? al[v & 63] : '=';
    }
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}
