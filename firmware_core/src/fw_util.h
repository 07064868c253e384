/*
 * fw_util.h - small helpers shared inside firmware_core (internal).
 *
 * A bounded text builder (instead of snprintf, which drags newlib's large printf into
 * the RP2040 image), a CRC-32 for what we keep in flash, and FNV-1a for seeding.
 */
#ifndef FW_UTIL_H
#define FW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Appends into a fixed buffer; always NUL-terminated when cap > 0; remembers overflow. */
struct fw_text {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
};

void fw_text__init(struct fw_text *t, char *buf, size_t cap);
void fw_text__char(struct fw_text *t, char c);
void fw_text__str(struct fw_text *t, const char *s);
void fw_text__u32(struct fw_text *t, uint32_t v);
void fw_text__i32(struct fw_text *t, int32_t v);
/* A JSON string literal, quotes included, with ", \ and control characters escaped. */
void fw_text__json_str(struct fw_text *t, const char *s);

/* CRC-32 (IEEE 802.3, reflected), bitwise: small rather than fast; flash records are tiny. */
uint32_t fw_crc32(const void *buf, size_t len);
/* FNV-1a, 32 bits, of a NUL-terminated string. */
uint32_t fw_fnv1a(const char *s);

/* Little-endian load/store for the storage formats. */
void fw_put_u32le(uint8_t *p, uint32_t v);
uint32_t fw_get_u32le(const uint8_t *p);

#endif /* FW_UTIL_H */
