/*
 * fw_codec.c - strict JSON payload codec of the scanner (public API: fw/fw_codec.h).
 *
 * Order of checks, cheapest and most dangerous first: size (before touching the bytes),
 * UTF-8 (our own validator, so cJSON never sees malformed text), NUL bytes, then the
 * parse, trailing bytes, the object, and each field. The cJSON tree is deleted on every
 * path through one exit in each decoder, and only the root is ever deleted: children
 * belong to it (the seed deleted children too, a double free).
 */
#include "fw/fw_codec.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "fw_util.h"

#define REJECT(r) FW_DECODE_REJECTED(FW_REJECT_##r)

/* ------------------------------------------------------------------ UTF-8 */

bool fw_utf8_valid(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        size_t more;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {        /* 0xC0, 0xC1 could only start overlongs */
            more = 1, cp = c & 0x1Fu, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0Fu, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) { /* 0xF5.. would exceed U+10FFFF */
            more = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return false; /* stray continuation byte or invalid lead */
        }
        if (len - i - 1 < more)
            return false; /* truncated sequence */
        for (size_t k = 1; k <= more; k++) {
            uint8_t b = p[i + k];
            if ((b & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (b & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false; /* overlong, beyond Unicode, or a UTF-16 surrogate */
        i += more + 1;
    }
    return true;
}

/* --------------------------------------------------------------- parsing */

static bool codec__is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Nesting of arrays and objects at most FW_JSON_DEPTH_MAX, brackets inside strings aside.
   A scan of the bytes, before cJSON recurses into them (fw_config.h). */
static bool codec__depth_ok(const char *text, size_t len)
{
    unsigned depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character, a quote included */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > FW_JSON_DEPTH_MAX)
                return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* Checks and parses a payload into an object; on success the caller deletes *root. */
static int codec__parse_object(const void *payload, size_t len, cJSON **root)
{
    *root = NULL;
    if (len > FW_INBOUND_MAX)
        return REJECT(OVERSIZE);
    if (!fw_utf8_valid(payload, len))
        return REJECT(NOT_UTF8);
    /* JSON text never contains a raw NUL, and cJSON's C strings would cut at one. */
    if (len == 0 || memchr(payload, 0, len) != NULL)
        return REJECT(INVALID_JSON);

    const char *text = payload;
    if (!codec__depth_ok(text, len))
        return REJECT(TOO_DEEP);
    const char *end = NULL;
    cJSON *parsed = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (parsed == NULL)
        return REJECT(INVALID_JSON);
    const char *p = end ? end : text + len;
    while (p < text + len && codec__is_ws(*p))
        p++;
    if (p != text + len) {
        cJSON_Delete(parsed);
        return REJECT(TRAILING_GARBAGE);
    }
    if (!cJSON_IsObject(parsed)) {
        cJSON_Delete(parsed);
        return REJECT(NOT_OBJECT);
    }
    *root = parsed;
    return FW_DECODE_OK;
}

/* An integral JSON number within [min, max]. JSON has one number type, so 17.0 counts as
   17; 1.5, and anything cJSON turned into inf or NaN, is the wrong type. */
static int codec__int_field(const cJSON *obj, const char *name, int32_t min, int32_t max,
                            int32_t *out)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (f == NULL)
        return REJECT(MISSING_FIELD);
    if (!cJSON_IsNumber(f))
        return REJECT(WRONG_TYPE);
    double v = f->valuedouble;
    if (v != v || v - v != 0)
        return REJECT(WRONG_TYPE); /* NaN or infinite (e.g. 1e999) */
    /* Beyond 2^53 every double is integral, so only smaller values can have a fraction;
       the cast is in range there. */
    if (v > -1e15 && v < 1e15 && (double)(int64_t)v != v)
        return REJECT(WRONG_TYPE);
    if (v < (double)min || v > (double)max)
        return REJECT(OUT_OF_RANGE);
    *out = (int32_t)v;
    return FW_DECODE_OK;
}

/* A non-empty string that fits out (cap bytes with the NUL), copied: the tree dies soon. */
static int codec__name_field(const cJSON *obj, const char *name, char *out, size_t cap)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (f == NULL)
        return REJECT(MISSING_FIELD);
    if (!cJSON_IsString(f) || f->valuestring == NULL)
        return REJECT(WRONG_TYPE);
    size_t n = strlen(f->valuestring);
    if (n == 0 || n >= cap)
        return REJECT(NAME_TOO_LONG);
    memcpy(out, f->valuestring, n + 1);
    return FW_DECODE_OK;
}

/* The upper-case hex of a 4, 7 or 10 byte UID, as the device itself writes it. */
static bool codec__tag_hex_valid(const char *s)
{
    size_t n = strlen(s);
    if (n != 8 && n != 14 && n != 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- decoders */

int fw_decode_item(const void *payload, size_t len, struct fw_item *out)
{
    if (out == NULL || (payload == NULL && len > 0))
        return FW_ERR_INVAL;
    cJSON *root;
    int rc = codec__parse_object(payload, len, &root);
    if (rc != FW_DECODE_OK)
        return rc;

    struct fw_item item;
    memset(&item, 0, sizeof item);
    rc = codec__int_field(root, "item_id", FW_ITEM_ID_MIN, FW_ITEM_ID_MAX, &item.item_id);
    if (rc == FW_DECODE_OK)
        rc = codec__name_field(root, "item_name", item.item_name, sizeof item.item_name);
    if (rc == FW_DECODE_OK)
        rc = codec__int_field(root, "tag_quantity", FW_TAG_QUANTITY_MIN, FW_TAG_QUANTITY_MAX,
                              &item.tag_quantity);
    cJSON_Delete(root);
    if (rc == FW_DECODE_OK)
        *out = item;
    return rc;
}

int fw_decode_inventory_reply(const void *payload, size_t len, struct fw_inventory_reply *out)
{
    if (out == NULL || (payload == NULL && len > 0))
        return FW_ERR_INVAL;
    cJSON *root;
    int rc = codec__parse_object(payload, len, &root);
    if (rc != FW_DECODE_OK)
        return rc;

    struct fw_inventory_reply reply;
    memset(&reply, 0, sizeof reply);
    const cJSON *tag = cJSON_GetObjectItemCaseSensitive(root, "tag");
    const cJSON *found = cJSON_GetObjectItemCaseSensitive(root, "found");
    if (tag == NULL || found == NULL) {
        rc = REJECT(MISSING_FIELD);
    } else if (!cJSON_IsString(tag) || tag->valuestring == NULL || !cJSON_IsBool(found)) {
        rc = REJECT(WRONG_TYPE);
    } else if (!codec__tag_hex_valid(tag->valuestring)) {
        rc = REJECT(OUT_OF_RANGE);
    } else {
        memcpy(reply.tag, tag->valuestring, strlen(tag->valuestring) + 1);
        reply.found = cJSON_IsTrue(found);
        if (reply.found) {
            rc = codec__int_field(root, "item_id", FW_ITEM_ID_MIN, FW_ITEM_ID_MAX,
                                  &reply.item_id);
            if (rc == FW_DECODE_OK)
                rc = codec__name_field(root, "item_name", reply.item_name,
                                       sizeof reply.item_name);
        }
    }
    cJSON_Delete(root);
    if (rc == FW_DECODE_OK)
        *out = reply;
    return rc;
}

/* ---------------------------------------------------------------- commands */

static const char *const codec__cmd_names[FW_CMD_KIND_COUNT] = {
    "identify", "message", "status", "config", "reboot", "lock", "unlock", "clear_queue",
};

const char *fw_cmd_kind_name(enum fw_cmd_kind kind)
{
    return (unsigned)kind < FW_CMD_KIND_COUNT ? codec__cmd_names[kind] : "unknown";
}

/* The arguments each command takes (NULL-terminated). */
static const char *const *codec__cmd_args(enum fw_cmd_kind kind)
{
    static const char *const none[] = {NULL};
    static const char *const identify[] = {"seconds", NULL};
    static const char *const message[] = {"text", NULL};
    static const char *const config[] = {"keepalive", "inventory_timeout", "contrast", NULL};
    static const char *const force[] = {"force", NULL};
    switch (kind) {
    case FW_CMD_IDENTIFY: return identify;
    case FW_CMD_MESSAGE: return message;
    case FW_CMD_CONFIG: return config;
    case FW_CMD_REBOOT:
    case FW_CMD_CLEAR_QUEUE: return force;
    default: return none;
    }
}

static int codec__cmd_refuse(struct fw_command *c, enum fw_cmd_reason reason, const char *field)
{
    c->reason = (uint8_t)reason;
    struct fw_text t;
    fw_text__init(&t, c->field, sizeof c->field);
    fw_text__str(&t, field ? field : "");
    return 1;
}

/* An integer argument: an item-field refusal becomes the argument's. */
static int codec__cmd_int(struct fw_command *c, const cJSON *args, const char *name,
                          int32_t min, int32_t max, int32_t *out)
{
    int rc = codec__int_field(args, name, min, max, out);
    if (rc == REJECT(MISSING_FIELD))
        return codec__cmd_refuse(c, FW_CMD_MISSING_ARG, name);
    if (rc == REJECT(WRONG_TYPE))
        return codec__cmd_refuse(c, FW_CMD_WRONG_ARG_TYPE, name);
    if (rc != FW_DECODE_OK)
        return codec__cmd_refuse(c, FW_CMD_OUT_OF_RANGE, name);
    return FW_DECODE_OK;
}

static int codec__cmd_args_decode(struct fw_command *c, const cJSON *args)
{
    const char *const *allowed = codec__cmd_args(c->kind);
    for (const cJSON *a = args ? args->child : NULL; a != NULL; a = a->next) {
        bool known = false;
        for (const char *const *n = allowed; *n && !known; n++)
            known = a->string != NULL && strcmp(a->string, *n) == 0;
        if (!known)
            return codec__cmd_refuse(c, FW_CMD_UNKNOWN_ARG, a->string);
    }
    const cJSON *f;
    int32_t v;
    switch (c->kind) {
    case FW_CMD_IDENTIFY:
        c->seconds = FW_IDENTIFY_S_DEFAULT;
        if (cJSON_GetObjectItemCaseSensitive(args, "seconds") != NULL) {
            if (codec__cmd_int(c, args, "seconds", FW_IDENTIFY_S_MIN, FW_IDENTIFY_S_MAX, &v))
                return 1;
            c->seconds = (uint8_t)v;
        }
        break;
    case FW_CMD_MESSAGE:
        f = cJSON_GetObjectItemCaseSensitive(args, "text");
        if (f == NULL)
            return codec__cmd_refuse(c, FW_CMD_MISSING_ARG, "text");
        if (!cJSON_IsString(f) || f->valuestring == NULL)
            return codec__cmd_refuse(c, FW_CMD_WRONG_ARG_TYPE, "text");
        if (f->valuestring[0] == '\0' || strlen(f->valuestring) >= sizeof c->text)
            return codec__cmd_refuse(c, FW_CMD_OUT_OF_RANGE, "text");
        memcpy(c->text, f->valuestring, strlen(f->valuestring) + 1);
        break;
    case FW_CMD_CONFIG:
        if (args == NULL || args->child == NULL)
            return codec__cmd_refuse(c, FW_CMD_MISSING_ARG, "keepalive");
        if (cJSON_GetObjectItemCaseSensitive(args, "keepalive") != NULL) {
            if (codec__cmd_int(c, args, "keepalive", FW_CFG_KEEPALIVE_MIN, FW_CFG_KEEPALIVE_MAX,
                               &v))
                return 1;
            c->set_keepalive = true;
            c->keepalive_s = (uint16_t)v;
        }
        if (cJSON_GetObjectItemCaseSensitive(args, "inventory_timeout") != NULL) {
            if (codec__cmd_int(c, args, "inventory_timeout", FW_CFG_INV_TIMEOUT_MIN,
                               FW_CFG_INV_TIMEOUT_MAX, &v))
                return 1;
            c->set_inventory_timeout = true;
            c->inventory_timeout_s = (uint8_t)v;
        }
        if (cJSON_GetObjectItemCaseSensitive(args, "contrast") != NULL) {
            if (codec__cmd_int(c, args, "contrast", 0, 255, &v))
                return 1;
            c->set_contrast = true;
            c->contrast = (uint8_t)v;
        }
        break;
    case FW_CMD_REBOOT:
    case FW_CMD_CLEAR_QUEUE:
        f = cJSON_GetObjectItemCaseSensitive(args, "force");
        if (f != NULL && !cJSON_IsBool(f))
            return codec__cmd_refuse(c, FW_CMD_WRONG_ARG_TYPE, "force");
        c->force = cJSON_IsTrue(f);
        break;
    default: break;
    }
    return FW_DECODE_OK;
}

static bool codec__cmd_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= FW_CMD_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7E)
            return false;
    return true;
}

static int codec__cmd_decode(struct fw_command *c, const cJSON *root)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "cmd_id");
    if (id == NULL) {
        c->reject = FW_REJECT_MISSING_FIELD;
        return codec__cmd_refuse(c, FW_CMD_BAD_PAYLOAD, "cmd_id");
    }
    if (!cJSON_IsString(id) || id->valuestring == NULL) {
        c->reject = FW_REJECT_WRONG_TYPE;
        return codec__cmd_refuse(c, FW_CMD_BAD_PAYLOAD, "cmd_id");
    }
    if (!codec__cmd_id_valid(id->valuestring))
        return codec__cmd_refuse(c, FW_CMD_BAD_CMD_ID, "cmd_id");
    memcpy(c->cmd_id, id->valuestring, strlen(id->valuestring) + 1);
    c->has_cmd_id = true;

    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(root, "cmd");
    if (cmd == NULL || !cJSON_IsString(cmd) || cmd->valuestring == NULL) {
        c->reject = cmd == NULL ? FW_REJECT_MISSING_FIELD : FW_REJECT_WRONG_TYPE;
        return codec__cmd_refuse(c, FW_CMD_BAD_PAYLOAD, "cmd");
    }
    int kind = 0;
    while (kind < FW_CMD_KIND_COUNT && strcmp(cmd->valuestring, codec__cmd_names[kind]) != 0)
        kind++;
    if (kind == FW_CMD_KIND_COUNT)
        return codec__cmd_refuse(c, FW_CMD_UNKNOWN_COMMAND, "cmd");
    c->kind = (enum fw_cmd_kind)kind;

    const cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "args");
    if (args != NULL && !cJSON_IsObject(args)) {
        c->reject = FW_REJECT_WRONG_TYPE;
        return codec__cmd_refuse(c, FW_CMD_BAD_PAYLOAD, "args");
    }
    return codec__cmd_args_decode(c, args);
}

int fw_decode_command(const void *payload, size_t len, struct fw_command *out)
{
    if (out == NULL || (payload == NULL && len > 0))
        return FW_ERR_INVAL;
    memset(out, 0, sizeof *out);
    cJSON *root;
    int rc = codec__parse_object(payload, len, &root);
    if (rc != FW_DECODE_OK) {
        out->reject = (uint8_t)fw_decode_reason(rc);
        return codec__cmd_refuse(out, FW_CMD_BAD_PAYLOAD, NULL);
    }
    rc = codec__cmd_decode(out, root);
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- encoders */

static int codec__finish(const struct fw_text *t)
{
    return t->overflow ? FW_ERR_TOO_BIG : (int)t->len;
}

int fw_encode_registration(char *buf, size_t cap, const struct fw_registration *reg)
{
    if (buf == NULL || reg == NULL || reg->tag_hex == NULL || reg->device_id == NULL)
        return FW_ERR_INVAL;
    struct fw_text t;
    fw_text__init(&t, buf, cap);
    fw_text__str(&t, "{\"item_id\":");
    fw_text__i32(&t, reg->item_id);
    fw_text__str(&t, ",\"tag_quantity\":");
    fw_text__i32(&t, reg->tag_quantity);
    fw_text__str(&t, ",\"tag\":");
    fw_text__json_str(&t, reg->tag_hex);
    fw_text__str(&t, ",\"device_id\":");
    fw_text__json_str(&t, reg->device_id);
    fw_text__str(&t, ",\"seq\":");
    fw_text__u32(&t, reg->seq);
    fw_text__char(&t, '}');
    return codec__finish(&t);
}

int fw_encode_inventory_query(char *buf, size_t cap, const char *tag_hex,
                              const char *device_id, uint32_t seq)
{
    if (buf == NULL || tag_hex == NULL || device_id == NULL)
        return FW_ERR_INVAL;
    struct fw_text t;
    fw_text__init(&t, buf, cap);
    fw_text__str(&t, "{\"tag\":");
    fw_text__json_str(&t, tag_hex);
    fw_text__str(&t, ",\"device_id\":");
    fw_text__json_str(&t, device_id);
    fw_text__str(&t, ",\"seq\":");
    fw_text__u32(&t, seq);
    fw_text__char(&t, '}');
    return codec__finish(&t);
}

static void codec__reply_head(struct fw_text *t, const struct fw_command_reply *r)
{
    fw_text__str(t, "{\"cmd_id\":");
    if (r->cmd_id != NULL)
        fw_text__json_str(t, r->cmd_id);
    else
        fw_text__str(t, "null");
    fw_text__str(t, ",\"device_id\":");
    fw_text__json_str(t, r->device_id);
    fw_text__str(t, r->reason[0] ? ",\"result\":\"error\",\"reason\":"
                                 : ",\"result\":\"ok\",\"reason\":");
    fw_text__json_str(t, r->reason);
    fw_text__str(t, ",\"data\":");
}

int fw_encode_command_reply_head(char *buf, size_t cap, const struct fw_command_reply *r)
{
    if (buf == NULL || r == NULL || r->device_id == NULL || r->reason == NULL)
        return FW_ERR_INVAL;
    struct fw_text t;
    fw_text__init(&t, buf, cap);
    codec__reply_head(&t, r);
    return codec__finish(&t);
}

int fw_encode_command_reply(char *buf, size_t cap, const struct fw_command_reply *r)
{
    if (buf == NULL || r == NULL || r->device_id == NULL || r->reason == NULL)
        return FW_ERR_INVAL;
    struct fw_text t;
    fw_text__init(&t, buf, cap);
    codec__reply_head(&t, r);
    fw_text__str(&t, r->data ? r->data : "{}");
    fw_text__char(&t, '}');
    return codec__finish(&t);
}

/* ------------------------------------------------------------------- tags */

int fw_tag_to_hex(const uint8_t *uid, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    if (uid == NULL || out == NULL || len == 0)
        return FW_ERR_INVAL;
    /* 2 * len + 1 must neither overflow nor exceed what an int return can say. */
    if (len > 0x3FFFFFFF || cap < 2 * len + 1)
        return FW_ERR_TOO_BIG;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[uid[i] >> 4];
        out[2 * i + 1] = hex[uid[i] & 15];
    }
    out[2 * len] = '\0';
    return (int)(2 * len);
}
