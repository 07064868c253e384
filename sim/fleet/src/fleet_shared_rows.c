/*
 * fleet_shared_rows.c - the workers' device rows in shared memory (fleet_shared_rows.h).
 *
 * Layout: a header, one robust process-shared mutex per shard (each on its own cache line),
 * then the rows, all in one memfd mapped MAP_SHARED by the parent and every worker.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include "sim/fleet_shared_rows.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARED_ROWS_MAGIC 0x73636e52u /* "scnR" */
#define SHARED_ROWS_VERSION 1u

struct shared_header {
    uint32_t magic, version;
    uint32_t row_size;             /* sizeof(struct fleet_row) of the maker */
    uint32_t n_shards;
    uint64_t n_devices;
    uint64_t size;                 /* of the whole region */
};

struct shared_lock {
    pthread_mutex_t mu;
    char pad[64 - sizeof(pthread_mutex_t) % 64];
};

struct fleet_shared_rows {
    int fd;
    void *base;
    size_t size;
    struct shared_header *h;
    struct shared_lock *locks;
    struct fleet_row *rows;
};

static size_t region_size(uint64_t n_devices, uint32_t n_shards)
{
    return sizeof(struct shared_header) + (size_t)n_shards * sizeof(struct shared_lock) +
           (size_t)n_devices * sizeof(struct fleet_row);
}

static void place(struct fleet_shared_rows *s)
{
    s->h = s->base;
    s->locks = (struct shared_lock *)((char *)s->base + sizeof(struct shared_header));
    s->rows = (struct fleet_row *)(s->locks + s->h->n_shards);
}

/* A worker that died holding the lock leaves EOWNERDEAD: take it over. */
static void lock(struct shared_lock *l)
{
    if (pthread_mutex_lock(&l->mu) == EOWNERDEAD)
        pthread_mutex_consistent(&l->mu);
}

int fleet_shared_rows_create(int n_devices, int n_shards, struct fleet_shared_rows **out)
{
    struct fleet_shared_rows *s = calloc(1, sizeof(*s));
    pthread_mutexattr_t a;

    *out = NULL;
    if (!s)
        return -1;
    s->size = region_size((uint64_t)n_devices, (uint32_t)n_shards);
    s->fd = memfd_create("scansim-rows", MFD_CLOEXEC);
    if (s->fd < 0 || ftruncate(s->fd, (off_t)s->size) != 0) {
        fprintf(stderr, "scansim run: cannot make the shared memory for the dashboard's "
                "device rows (%zu bytes): %s\n", s->size, strerror(errno));
        goto fail;
    }
    s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (s->base == MAP_FAILED) {
        s->base = NULL;
        fprintf(stderr, "scansim run: cannot map the dashboard's device rows: %s\n",
                strerror(errno));
        goto fail;
    }
    struct shared_header *h = s->base; /* a fresh memfd reads as zeros: rows with id "" */
    *h = (struct shared_header){ SHARED_ROWS_MAGIC, SHARED_ROWS_VERSION,
                                 (uint32_t)sizeof(struct fleet_row), (uint32_t)n_shards,
                                 (uint64_t)n_devices, (uint64_t)s->size };
    place(s);
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    for (int i = 0; i < n_shards; i++)
        pthread_mutex_init(&s->locks[i].mu, &a);
    pthread_mutexattr_destroy(&a);
    *out = s;
    return 0;
fail:
    fleet_shared_rows_free(s);
    return -1;
}

int fleet_shared_rows_fd(const struct fleet_shared_rows *s)
{
    return s ? s->fd : -1;
}

int fleet_shared_rows_attach(int fd, struct fleet_shared_rows **out)
{
    struct fleet_shared_rows *s = calloc(1, sizeof(*s));
    struct stat st;

    *out = NULL;
    if (!s)
        return -1;
    s->fd = fd;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct shared_header)) {
        fprintf(stderr, "scansim run: --rows-fd %d: not the dashboard's shared rows\n", fd);
        goto fail;
    }
    s->size = (size_t)st.st_size;
    s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s->base == MAP_FAILED) {
        s->base = NULL;
        fprintf(stderr, "scansim run: --rows-fd %d: cannot map it: %s\n", fd, strerror(errno));
        goto fail;
    }
    const struct shared_header *h = s->base;
    if (h->magic != SHARED_ROWS_MAGIC || h->version != SHARED_ROWS_VERSION ||
        h->row_size != sizeof(struct fleet_row) || h->size != s->size ||
        region_size(h->n_devices, h->n_shards) != s->size) {
        fprintf(stderr, "scansim run: --rows-fd %d: not the shared rows of this scansim "
                "(another version?)\n", fd);
        goto fail;
    }
    place(s);
    *out = s;
    return 0;
fail:
    fleet_shared_rows_free(s);
    return -1;
}

void fleet_shared_rows_put(struct fleet_shared_rows *s, int shard, long first, struct fleet *f,
                           int n)
{
    if (!s || shard < 0 || (uint32_t)shard >= s->h->n_shards || first < 0 ||
        (uint64_t)first + (uint64_t)n > s->h->n_devices)
        return;
    lock(&s->locks[shard]);
    fleet_rows(f, s->rows + first, n);
    pthread_mutex_unlock(&s->locks[shard].mu);
}

void fleet_shared_rows_get(struct fleet_shared_rows *s, struct fleet_row *out, int n)
{
    /* Each shard's lock covers its slice; the slices are not known here, so every lock is
       held in turn over the copy of all rows: K short waits, no torn row. */
    if (!s)
        return;
    uint64_t count = (uint64_t)n < s->h->n_devices ? (uint64_t)n : s->h->n_devices;
    for (uint32_t i = 0; i < s->h->n_shards; i++)
        lock(&s->locks[i]);
    memcpy(out, s->rows, (size_t)count * sizeof(*out));
    for (uint32_t i = s->h->n_shards; i-- > 0;)
        pthread_mutex_unlock(&s->locks[i].mu);
}

void fleet_shared_rows_free(struct fleet_shared_rows *s)
{
    if (!s)
        return;
    if (s->base)
        munmap(s->base, s->size);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}
