/*
 * fw_util.c - text builder, checksums and byte order helpers (see fw_util.h).
 */
#include "fw_util.h"

void fw_text__init(struct fw_text *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    t->overflow = (cap == 0);
    if (cap > 0)
        buf[0] = '\0';
}

void fw_text__char(struct fw_text *t, char c)
{
    /* Keep one byte for the NUL; once full, stay full (no partial second writes). */
    if (t->overflow || t->len + 1 >= t->cap) {
        t->overflow = true;
        return;
    }
    t->buf[t->len++] = c;
    t->buf[t->len] = '\0';
}

void fw_text__str(struct fw_text *t, const char *s)
{
    while (*s)
        fw_text__char(t, *s++);
}

void fw_text__u32(struct fw_text *t, uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0)
        fw_text__char(t, digits[--n]);
}

void fw_text__i32(struct fw_text *t, int32_t v)
{
    if (v < 0) {
        fw_text__char(t, '-');
        /* -(INT32_MIN) does not fit an int32_t: negate in unsigned arithmetic. */
        fw_text__u32(t, 0u - (uint32_t)v);
        return;
    }
    fw_text__u32(t, (uint32_t)v);
}

void fw_text__json_str(struct fw_text *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    fw_text__char(t, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fw_text__char(t, '\\');
            fw_text__char(t, (char)c);
        } else if (c < 0x20) {
            fw_text__str(t, "\\u00");
            fw_text__char(t, hex[c >> 4]);
            fw_text__char(t, hex[c & 15]);
        } else {
            fw_text__char(t, (char)c);
        }
    }
    fw_text__char(t, '"');
}

uint32_t fw_crc32(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t crc = 0xFFFFFFFFu;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

uint32_t fw_fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 16777619u;
    }
    return h;
}

void fw_put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

uint32_t fw_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
