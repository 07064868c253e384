/*
 * backend_codec.c - the backend role's strict checks of what devices send (ids, tags, text)
 * and its JSON helpers (cJSON).
 */
#include "backend_internal.h"

/* ---------------------------------------------------------------- validation, JSON */

bool backend__valid_device_id(const char *s, size_t len)
{
    if (len == 0 || len > BACKEND_DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '+' || c == '#')
            return false;
    }
    return true;
}

/* RFID UID: 4, 7 or 10 bytes as upper-case hex. */
bool backend__valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (n != 8 && n != 14 && n != 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* Well-formed UTF-8 without control characters. */
bool backend__valid_text(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        int more;
        uint32_t cp;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            more = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + (size_t)more >= n)
            return false;
        for (int k = 1; k <= more; k++) {
            unsigned char cc = (unsigned char)s[i + (size_t)k];
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += (size_t)more + 1;
    }
    return true;
}

/* Append s as a JSON string body (no quotes) into out; returns bytes written or -1. */
int backend__json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s; s++) {
        char c = *s;
        if (o + 3 >= cap)
            return -1;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = c;
        } else {
            out[o++] = c; /* control characters were refused before */
        }
    }
    out[o] = '\0';
    return (int)o;
}

/* A strict integer field: a JSON number without fraction, within [min, max]. */
bool backend__json_int(const cJSON *obj, const char *name, double min, double max,
                              int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= min && d <= max) || d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

const char *backend__json_str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* Parse a whole payload as one JSON object (nothing after it but whitespace). */
cJSON *backend__parse_object(const char *payload, size_t len)
{
    if (len == 0 || len > BACKEND_PAYLOAD_MAX || memchr(payload, '\0', len))
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(payload, len, &end, false);
    if (!root)
        return NULL;
    for (const char *p = end; p && p < payload + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
