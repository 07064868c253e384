/*
 * storage_internal.h - what storage_file.c and storage_memory.c share: the handle.
 * One handle type for the three kinds, so a device holds one pointer whatever it uses.
 */
#ifndef SIM_STORAGE_INTERNAL_H
#define SIM_STORAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

enum storage__kind { STORAGE__NONE, STORAGE__MEMORY, STORAGE__FILE };

/* One key of the memory kind. */
struct storage__entry {
    struct storage__entry *next;
    size_t len;
    char key[64];
    unsigned char value[];
};

struct sim_storage {
    enum storage__kind kind;
    bool fsync;                     /* FILE */
    int dirfd;                      /* FILE: the directory, for *at() calls */
    char *dir;                      /* FILE */
    struct storage__entry *entries; /* MEMORY */
};

/* Is key acceptable (1..63 of [A-Za-z0-9_-])? Keeps keys from escaping the folder. */
bool storage__key_ok(const char *key);

int storage__memory_read(struct sim_storage *s, const char *key, void *buf, size_t cap,
                         size_t *len);
int storage__memory_write(struct sim_storage *s, const char *key, const void *buf,
                          size_t len);
void storage__memory_clear(struct sim_storage *s);


#endif /* SIM_STORAGE_INTERNAL_H */
