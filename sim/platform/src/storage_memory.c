/*
 * storage_memory.c - the memory and "none" kinds of the storage port (sim/storage.h).
 * A short list of keys per device: the firmware keeps two or three keys ("outbox",
 * "seq"), so a list beats a hash table in size and speed.
 */
#include <stdlib.h>
#include <string.h>

#include "fw/fw_device.h"
#include "sim/err.h"
#include "sim/storage.h"
#include "storage_internal.h"

bool storage__key_ok(const char *key)
{
    size_t n = 0;

    if (!key)
        return false;
    for (; key[n]; n++) {
        char c = key[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
        if (n >= 63)
            return false;
    }
    return n > 0;
}

int sim_storage_memory_open(struct sim_storage **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return SIM_ERR_NOMEM;
    (*out)->kind = STORAGE__MEMORY;
    (*out)->dirfd = -1;
    return SIM_OK;
}

int sim_storage_none_open(struct sim_storage **out)
{
    int rc = sim_storage_memory_open(out);

    if (rc == SIM_OK)
        (*out)->kind = STORAGE__NONE;
    return rc;
}

int storage__memory_read(struct sim_storage *s, const char *key, void *buf, size_t cap,
                         size_t *len)
{
    for (struct storage__entry *e = s->entries; e; e = e->next) {
        if (strcmp(e->key, key) != 0)
            continue;
        *len = e->len;
        if (e->len > cap)
            return FW_ERR_TOO_BIG;
        if (e->len)
            memcpy(buf, e->value, e->len);
        return FW_OK;
    }
    return FW_ERR_NOT_FOUND;
}

int storage__memory_write(struct sim_storage *s, const char *key, const void *buf,
                          size_t len)
{
    struct storage__entry **pp, *e, *ne;

    for (pp = &s->entries; (e = *pp); pp = &e->next)
        if (strcmp(e->key, key) == 0)
            break;
    ne = malloc(sizeof(*ne) + len);
    if (!ne)
        return FW_ERR_IO;
    strcpy(ne->key, key); /* checked by storage__key_ok: < 64 bytes */
    ne->len = len;
    if (len)
        memcpy(ne->value, buf, len);
    /* Replace in place so the list keeps its order; the old value goes only now, so a
       failed allocation above leaves it intact. */
    ne->next = e ? e->next : NULL;
    *pp = ne;
    free(e);
    return FW_OK;
}

void storage__memory_clear(struct sim_storage *s)
{
    struct storage__entry *e, *next;

    for (e = s->entries; e; e = next) {
        next = e->next;
        free(e);
    }
    s->entries = NULL;
}
