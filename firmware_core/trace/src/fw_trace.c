/*
 * fw_trace.c - the trace codec (fw/fw_trace.h): the layout table, the writer, the
 * bounds-checked reader and the one-line formatter.
 *
 * Sections: layouts, writing, reading, formatting.
 */
#include "fw/fw_trace.h"

#include <string.h>

/* ================================================================ layouts */

/* The one table of the format: docs/trace.md describes the same rows. */
static const struct fw_trace_layout layouts[] = {
    {FW_TR_INIT, "init", "sbbhbwbooooo",
     "device_id layout clean_session keepalive_s qos seed ports topic_item_registration "
     "topic_item_registered topic_inventory_query topic_inventory_reply topic_status"},
    {FW_TR_START, "start", "", ""},
    {FW_TR_STOP, "stop", "", ""},
    {FW_TR_TICK, "tick", "q", "now_ms"},
    {FW_TR_CONNECTED, "connected", "b", "session_present"},
    {FW_TR_CONNECT_FAILED, "connect_failed", "io", "reason_code why"},
    {FW_TR_CONNECTION_LOST, "connection_lost", "o", "why"},
    {FW_TR_MESSAGE, "message", "owsbb", "topic wire_len payload qos dup"},
    {FW_TR_PUBLISHED, "published", "w", "token"},
    {FW_TR_PUBLISH_REFUSED, "publish_refused", "wi", "token reason_code"},
    {FW_TR_TAG, "tag", "s", "uid"},
    {FW_TR_BUTTON, "button", "b", "button"},
    {FW_TR_SUBSCRIBED, "subscribed", "wi", "token granted_qos"},
    {FW_TR_CONNECT, "connect", "sbhosbb|i",
     "client_id clean_session keepalive_s will_topic will_payload will_qos will_retain rc"},
    {FW_TR_PUBLISH, "publish", "ssbb|iw", "topic payload qos retain rc token"},
    {FW_TR_SUBSCRIBE, "subscribe", "sb|iw", "topic_filter qos rc token"},
    {FW_TR_DISCONNECT, "disconnect", "", ""},
    {FW_TR_FLUSH, "flush", "w", "fb_crc32"},
    {FW_TR_CLOCK, "clock", "|q", "ms"},
    {FW_TR_STORAGE_READ, "storage_read", "sw|is", "key cap rc value"},
    {FW_TR_STORAGE_WRITE, "storage_write", "ss|i", "key value rc"},
    {FW_TR_LOG, "log", "bs", "level line"},
    {FW_TR_RESULT, "result", "i", "rc"},
};

const struct fw_trace_layout *fw_trace_layout(unsigned type)
{
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        if (layouts[i].type == type)
            return &layouts[i];
    return NULL;
}

int fw_trace_request_fields(const struct fw_trace_layout *l)
{
    const char *bar = strchr(l->fields, '|');
    return bar ? (int)(bar - l->fields) : (int)strlen(l->fields);
}

int fw_trace_field_count(const struct fw_trace_layout *l)
{
    int n = 0;
    for (const char *p = l->fields; *p; p++)
        n += *p != '|';
    return n;
}

/* ================================================================ writing */

void fw_trace_buf_write(void *ctx, const void *data, size_t len)
{
    struct fw_trace_buf *b = ctx;
    if (b->overflow || len > b->cap - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->buf + b->len, data, len);
    b->len += len;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void fw_trace_write_header(fw_trace_write_fn write, void *ctx)
{
    uint8_t h[FW_TRACE_HEADER_LEN] = {'F', 'W', 'T', 'R', FW_TRACE_VERSION, 0, 0, 0};
    write(ctx, h, sizeof h);
}

static int num_width(char c)
{
    switch (c) {
    case 'b': return 1;
    case 'h': return 2;
    case 'w':
    case 'i': return 4;
    case 'q': return 8;
    default: return 0;
    }
}

/* Body size of fields under layout, or -1 when a byte field cannot be described. */
static long body_size(const char *layout, const struct fw_trace_field *f)
{
    uint64_t n = 0;
    for (const char *p = layout; *p; p++) {
        if (*p == '|')
            continue;
        if (num_width(*p) > 0) {
            n += (uint64_t)num_width(*p);
        } else {
            if (f->len > 0 && f->ptr == NULL)
                return -1;
            n += (*p == 'o' ? 1u : 0u) + (*p == 's' || f->present ? 4u + f->len : 0u);
        }
        f++;
    }
    return n > 0x7FFFFFFFu ? -1 : (long)n;
}

long fw_trace_write(fw_trace_write_fn write, void *ctx, unsigned type,
                    const struct fw_trace_field *fields)
{
    const struct fw_trace_layout *l = fw_trace_layout(type);
    long body = l ? body_size(l->fields, fields) : -1;
    if (body < 0)
        return -1;
    uint8_t head[FW_TRACE_REC_HEAD];
    head[0] = (uint8_t)type;
    put_le(head + 1, (uint64_t)body, 4);
    write(ctx, head, sizeof head);
    const struct fw_trace_field *f = fields;
    for (const char *p = l->fields; *p; p++) {
        uint8_t b[8];
        int w = num_width(*p);
        if (*p == '|')
            continue;
        if (w > 0) {
            put_le(b, (uint64_t)f->num, w);
            write(ctx, b, (size_t)w);
        } else {
            if (*p == 'o') {
                b[0] = f->present ? 1 : 0;
                write(ctx, b, 1);
            }
            if (*p == 's' || f->present) {
                put_le(b, f->len, 4);
                write(ctx, b, 4);
                if (f->len > 0)
                    write(ctx, f->ptr, f->len);
            }
        }
        f++;
    }
    return (long)FW_TRACE_REC_HEAD + body;
}

/* ================================================================ reading */

static int trace__fail(struct fw_trace_error *err, uint64_t offset, const char *what)
{
    if (err != NULL) {
        err->offset = offset;
        size_t n = strlen(what);
        if (n >= sizeof err->what)
            n = sizeof err->what - 1;
        memcpy(err->what, what, n);
        err->what[n] = '\0';
    }
    return -1;
}

int fw_trace_check_header(const uint8_t *buf, size_t len, struct fw_trace_error *err)
{
    if (len < FW_TRACE_HEADER_LEN)
        return trace__fail(err, len, "truncated header (a trace starts with 8 bytes)");
    if (memcmp(buf, FW_TRACE_MAGIC, 4) != 0)
        return trace__fail(err, 0, "not a trace (no FWTR magic)");
    if (buf[4] != FW_TRACE_VERSION)
        return trace__fail(err, 4, "unsupported trace version (this reader knows 1)");
    if (buf[5] != 0 || buf[6] != 0 || buf[7] != 0)
        return trace__fail(err, 5, "reserved header bytes are not zero");
    return 0;
}

/* Decodes the fields of body [p, end) under layout into out. */
static int trace__fields(const char *layout, const uint8_t *p, const uint8_t *end,
                         uint64_t base, struct fw_trace_field *out, struct fw_trace_error *err)
{
    const uint8_t *start = p;
    for (const char *c = layout; *c; c++) {
        if (*c == '|')
            continue;
        struct fw_trace_field f = {0, NULL, 0, true};
        int w = num_width(*c);
        uint64_t at = base + (uint64_t)(p - start);
        if (w > 0) {
            if (end - p < w)
                return trace__fail(err, at, "field runs past the end of its record");
            f.num = (int64_t)get_le(p, w);
            if (*c == 'i')
                f.num = (int32_t)(uint32_t)f.num;
            p += w;
        } else {
            if (*c == 'o') {
                if (p == end || *p > 1)
                    return trace__fail(err, at, "bad presence byte of an optional field");
                f.present = *p++ == 1;
            }
            if (f.present) {
                if (end - p < 4 || get_le(p, 4) > (uint64_t)(end - p - 4))
                    return trace__fail(err, at, "byte field runs past the end of its record");
                f.len = (uint32_t)get_le(p, 4);
                f.ptr = p + 4;
                p += 4 + f.len;
            }
        }
        *out++ = f;
    }
    if (p != end)
        return trace__fail(err, base + (uint64_t)(p - start),
                           "bytes left over at the end of a record");
    return 0;
}

long fw_trace_read(const uint8_t *buf, size_t avail, uint64_t base, struct fw_trace_rec *out,
                   struct fw_trace_error *err)
{
    if (avail < FW_TRACE_REC_HEAD)
        return 0;
    uint64_t body = get_le(buf + 1, 4);
    const struct fw_trace_layout *l = fw_trace_layout(buf[0]);
    if (l == NULL)
        return trace__fail(err, base, "unknown record type");
    if (body > 0x7FFFFFFFu - FW_TRACE_REC_HEAD)
        return trace__fail(err, base + 1, "record length out of range");
    if (avail - FW_TRACE_REC_HEAD < body)
        return 0;
    memset(out, 0, sizeof *out);
    out->type = buf[0];
    out->layout = l;
    out->raw = buf;
    out->size = (uint32_t)(FW_TRACE_REC_HEAD + body);
    if (trace__fields(l->fields, buf + FW_TRACE_REC_HEAD, buf + out->size,
                      base + FW_TRACE_REC_HEAD, out->f, err) != 0)
        return -1;
    return (long)out->size;
}

/* ================================================================ formatting */

struct line {
    char *out;
    size_t cap, len;
};

static void line_put(struct line *l, char c)
{
    if (l->len + 1 < l->cap) {
        l->out[l->len++] = c;
        l->out[l->len] = '\0';
    }
}

static void line_str(struct line *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++)
        line_put(l, s[i]);
}

static void line_num(struct line *l, int64_t v)
{
    char d[24];
    int n = 0;
    uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    if (v < 0)
        line_put(l, '-');
    do {
        d[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0);
    while (n > 0)
        line_put(l, d[--n]);
}

static void line_bytes(struct line *l, const struct fw_trace_field *f)
{
    static const char hex[] = "0123456789abcdef";
    if (!f->present) {
        line_str(l, "null", 4);
        return;
    }
    line_put(l, '"');
    for (uint32_t i = 0; i < f->len; i++) {
        uint8_t c = f->ptr[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            line_put(l, (char)c);
        } else if (c == '"' || c == '\\') {
            line_put(l, '\\');
            line_put(l, (char)c);
        } else {
            line_put(l, '\\');
            line_put(l, 'x');
            line_put(l, hex[c >> 4]);
            line_put(l, hex[c & 15]);
        }
    }
    line_put(l, '"');
}

char *fw_trace_format(const struct fw_trace_rec *r, char *out, size_t cap)
{
    struct line l = {out, cap, 0};
    if (cap == 0)
        return out;
    out[0] = '\0';
    line_str(&l, r->layout->name, strlen(r->layout->name));
    const char *name = r->layout->names;
    int i = 0;
    for (const char *c = r->layout->fields; *c; c++) {
        if (*c == '|') {
            line_str(&l, " |", 2);
            continue;
        }
        size_t n = strcspn(name, " ");
        line_put(&l, ' ');
        line_str(&l, name, n);
        line_put(&l, '=');
        name += n + (name[n] == ' ');
        if (num_width(*c) > 0)
            line_num(&l, r->f[i].num);
        else
            line_bytes(&l, &r->f[i]);
        i++;
    }
    return out;
}
