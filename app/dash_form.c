/*
 * dash_form.c - the dashboard's input rules (dash_form.h): urlencoded fields, the item
 * form as the firmware would accept it, the devices page's paging, the token and the
 * listen address.
 *
 * Sections: errors, urlencoded fields, the item form, paging, token and address.
 */
#include "dash_form.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fw/fw_codec.h"

/* ------------------------------------------------------------------ errors */

const char *dash_strerror(int err)
{
    switch (err) {
    case DASH_OK: return "success";
    case DASH_ERR_INVAL: return "invalid request or option";
    case DASH_ERR_NOMEM: return "out of memory";
    case DASH_ERR_IO: return "input/output error";
    case DASH_ERR_MISSING: return "a needed file is not installed";
    case DASH_ERR_HTTP: return "the HTTP server could not start";
    default: return "unknown error";
    }
}

static void dash__why(char *why, size_t cap, const char *words)
{
    if (why && cap)
        snprintf(why, cap, "%s", words);
}

/* ------------------------------------------------------------------ urlencoded fields */

static int dash__hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode one value (s[0..n)) into out; the length, or DASH_ERR_INVAL. */
static int dash__decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? dash__hex(s[i + 1]) : -1;
            int lo = i + 2 < n ? dash__hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return DASH_ERR_INVAL;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return DASH_ERR_INVAL;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

int dash_form_field(const char *body, size_t len, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = body, *end = body + len;

    if (!body || cap == 0)
        return DASH_FIELD_ABSENT;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == kl && memcmp(p, key, kl) == 0) {
            const char *v = eq ? eq + 1 : stop;
            return dash__decode(v, (size_t)(stop - v), out, cap);
        }
        p = stop + 1;
    }
    return DASH_FIELD_ABSENT;
}

/* ------------------------------------------------------------------ the item form */

/* The firmware's name rule, and the backend's: printable UTF-8. */
static int dash__check_name(const char *name, size_t n, char *why, size_t cap)
{
    if (n == 0 || n > FW_ITEM_NAME_MAX - 1) {
        snprintf(why, cap, "name: 1 to %d bytes (the firmware's limit), got %zu",
                 FW_ITEM_NAME_MAX - 1, n);
        return DASH_ERR_INVAL;
    }
    if (!fw_utf8_valid(name, n)) {
        dash__why(why, cap, "name: not valid UTF-8");
        return DASH_ERR_INVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) {
            dash__why(why, cap, "name: control characters are not allowed");
            return DASH_ERR_INVAL;
        }
    }
    return DASH_OK;
}

/* A device id as the firmware takes it: printable ASCII without MQTT wildcards or '/'. */
static bool dash__valid_device(const char *id)
{
    for (const char *p = id; *p; p++)
        if (*p < 0x21 || *p > 0x7e || *p == '+' || *p == '#' || *p == '/')
            return false;
    return true;
}

int dash_item_form_parse(const char *body, size_t len, struct dash_item_form *out, char *why,
                         size_t why_cap)
{
    char qty[16];
    long q;
    int n;

    memset(out, 0, sizeof(*out));
    /* one byte more than allowed, so a long name is told as too long, not as malformed */
    char name[FW_ITEM_NAME_MAX * 4];
    n = dash_form_field(body, len, "name", name, sizeof(name));
    if (n == DASH_FIELD_ABSENT) {
        dash__why(why, why_cap, "name: missing");
        return DASH_ERR_INVAL;
    }
    if (n < 0) {
        snprintf(why, why_cap, "name: 1 to %d bytes (the firmware's limit), or a bad %%-escape",
                 FW_ITEM_NAME_MAX - 1);
        return DASH_ERR_INVAL;
    }
    if (dash__check_name(name, (size_t)n, why, why_cap) != DASH_OK)
        return DASH_ERR_INVAL;
    memcpy(out->name, name, (size_t)n + 1);
    n = dash_form_field(body, len, "quantity", qty, sizeof(qty));
    if (n < 0 || !dash_parse_long(qty, FW_TAG_QUANTITY_MIN, FW_TAG_QUANTITY_MAX, &q)) {
        snprintf(why, why_cap, "quantity: a whole number from %d to %d", FW_TAG_QUANTITY_MIN,
                 FW_TAG_QUANTITY_MAX);
        return DASH_ERR_INVAL;
    }
    out->tag_quantity = (int32_t)q;
    n = dash_form_field(body, len, "device", out->device, sizeof(out->device));
    if (n == DASH_FIELD_ABSENT || (n >= 0 && strcmp(out->device, "all") == 0)) {
        out->device[0] = '\0';
    } else if (n < 0 || !dash__valid_device(out->device)) {
        snprintf(why, why_cap, "device: a device id (1 to %d printable characters without "
                 "'+', '#', '/') or 'all'", FW_DEVICE_ID_MAX - 1);
        return DASH_ERR_INVAL;
    }
    return DASH_OK;
}

/* ------------------------------------------------------------------ paging */

bool dash_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int dash_page_query_parse(const char *q, const char *page, const char *per,
                          struct dash_page_query *out, char *why, size_t why_cap)
{
    memset(out, 0, sizeof(*out));
    out->per = DASH_PER_PAGE_DEFAULT;
    if (q) {
        size_t n = strlen(q);
        if (n >= sizeof(out->q)) {
            snprintf(why, why_cap, "q: at most %zu bytes (a device id)", sizeof(out->q) - 1);
            return DASH_ERR_INVAL;
        }
        memcpy(out->q, q, n + 1);
    }
    if (page && !dash_parse_long(page, 0, 1000000, &out->page)) {
        dash__why(why, why_cap, "page: a whole number from 0");
        return DASH_ERR_INVAL;
    }
    if (per && !dash_parse_long(per, 1, DASH_PER_PAGE_MAX, &out->per)) {
        snprintf(why, why_cap, "per: a whole number from 1 to %d", DASH_PER_PAGE_MAX);
        return DASH_ERR_INVAL;
    }
    return DASH_OK;
}

static const char *const dash__filters[HX_ITEMS_FILTERS] = {
    [HX_ITEMS_ALL] = "all", [HX_ITEMS_PENDING] = "pending", [HX_ITEMS_REGISTERED] = "registered",
    [HX_ITEMS_TWICE] = "twice", [HX_ITEMS_LOST] = "lost",
};

const char *dash_items_filter_name(enum hx_items_filter f)
{
    return (int)f >= 0 && f < HX_ITEMS_FILTERS ? dash__filters[f] : "all";
}

int dash_items_filter_parse(const char *s, enum hx_items_filter *out, char *why, size_t why_cap)
{
    *out = HX_ITEMS_ALL;
    if (!s)
        return DASH_OK;
    for (int f = 0; f < HX_ITEMS_FILTERS; f++)
        if (strcmp(s, dash__filters[f]) == 0) {
            *out = (enum hx_items_filter)f;
            return DASH_OK;
        }
    dash__why(why, why_cap, "items: all, pending, registered, twice or lost");
    return DASH_ERR_INVAL;
}

/* ------------------------------------------------------------------ token and address */

bool dash_token_equal(const char *presented, const char *expected)
{
    size_t a, b;
    unsigned diff;

    if (!presented || !expected)
        return false;
    a = strlen(presented);
    b = strlen(expected);
    diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)(i < a ? presented[i] : 0);
    return diff == 0;
}

bool dash_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

bool dash_host_header_is_loopback(const char *value)
{
    char host[256];
    const char *end, *port = NULL;

    if (!value)
        return false;
    if (value[0] == '[') {
        value++;
        end = strchr(value, ']');
        if (!end || (end[1] && end[1] != ':'))
            return false;
        if (end[1])
            port = end + 2;
    } else {
        end = strchr(value, ':');
        if (end)
            port = end + 1;
        else
            end = value + strlen(value);
    }
    if (port && (!*port || strspn(port, "0123456789") != strlen(port)))
        return false;
    if ((size_t)(end - value) >= sizeof(host))
        return false;
    memcpy(host, value, (size_t)(end - value));
    host[end - value] = '\0';
    return dash_host_is_loopback(host);
}

int dash_parse_listen(const char *spec, char *host, size_t cap, int *port, char *why,
                      size_t why_cap)
{
    const char *colon, *h = spec;
    size_t hl;
    long p;

    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':') {
            dash__why(why, why_cap, "expected ADDR:PORT or [IPv6]:PORT");
            return DASH_ERR_INVAL;
        }
        h = spec + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon) {
            dash__why(why, why_cap, "expected ADDR:PORT, e.g. 127.0.0.1:8080");
            return DASH_ERR_INVAL;
        }
        hl = (size_t)(colon - spec);
    }
    if (hl == 0 || hl >= cap) {
        dash__why(why, why_cap, "the address is empty or too long");
        return DASH_ERR_INVAL;
    }
    if (!dash_parse_long(colon + 1, 0, 65535, &p)) {
        dash__why(why, why_cap, "the port must be 0 (any free one) to 65535");
        return DASH_ERR_INVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return DASH_OK;
}
