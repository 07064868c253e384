/*
 * storage_file.c - the file kind of the storage port, and the dispatch of all kinds
 * (sim/storage.h).
 *
 * One file per key in the device's folder. A write is "<key>.tmp" + optional fsync +
 * rename(2) over "<key>": rename is atomic, so a reader, a crash or a kill -9 sees the
 * old value or the new one. fsync is optional: without it the data may sit in the page
 * cache when the whole machine loses power (not a case the simulator produces); with it
 * each write costs a disk flush, which a fleet of thousands cannot afford.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fw/fw_device.h"
#include "sim/err.h"
#include "sim/storage.h"
#include "storage_internal.h"
#include "sim/fs.h"

int sim_storage_file_open(const char *dir, bool fsync, struct sim_storage **out)
{
    struct sim_storage *s = NULL;
    int rc = SIM_OK;

    *out = NULL;
    if (!dir || !*dir)
        return SIM_ERR_INVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return SIM_ERR_NOMEM;
    s->kind = STORAGE__FILE;
    s->fsync = fsync;
    s->dirfd = -1;
    s->dir = strdup(dir);
    if (!s->dir) {
        rc = SIM_ERR_NOMEM;
        goto fail;
    }
    if (sim_fs_mkdir_p(dir) != 0) {
        rc = SIM_ERR_IO;
        goto fail;
    }
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        rc = SIM_ERR_IO;
        goto fail;
    }
    *out = s;
    return SIM_OK;
fail:
    sim_storage_free(s);
    return rc;
}

void sim_storage_free(struct sim_storage *s)
{
    if (!s)
        return;
    if (s->dirfd >= 0)
        close(s->dirfd);
    storage__memory_clear(s);
    free(s->dir);
    free(s);
}

const char *sim_storage_dir(const struct sim_storage *s)
{
    return s && s->kind == STORAGE__FILE ? s->dir : NULL;
}

static int file_read(struct sim_storage *s, const char *key, void *buf, size_t cap,
                     size_t *len)
{
    struct stat st;
    int fd, rc = FW_OK;
    size_t got = 0;

    fd = openat(s->dirfd, key, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? FW_ERR_NOT_FOUND : FW_ERR_IO;
    if (fstat(fd, &st) != 0) {
        rc = FW_ERR_IO;
        goto out;
    }
    *len = (size_t)st.st_size;
    if ((size_t)st.st_size > cap) {
        rc = FW_ERR_TOO_BIG;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, (char *)buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = FW_ERR_IO;
            goto out;
        }
        got += (size_t)r;
    }
out:
    close(fd);
    return rc;
}

static int file_write(struct sim_storage *s, const char *key, const void *buf, size_t len)
{
    char tmp[80];
    size_t done = 0;
    int fd, rc = FW_OK;

    snprintf(tmp, sizeof(tmp), "%s.tmp", key); /* key <= 63 bytes: fits */
    fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return FW_ERR_IO;
    while (done < len) {
        ssize_t w = write(fd, (const char *)buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = FW_ERR_IO;
            goto out;
        }
        done += (size_t)w;
    }
    if (s->fsync && fsync(fd) != 0)
        rc = FW_ERR_IO;
out:
    if (close(fd) != 0)
        rc = FW_ERR_IO;
    if (rc == FW_OK && renameat(s->dirfd, tmp, s->dirfd, key) != 0)
        rc = FW_ERR_IO;
    if (rc != FW_OK)
        (void)unlinkat(s->dirfd, tmp, 0); /* leave the old value, drop the half-written one */
    return rc;
}

int sim_storage_read(struct sim_storage *s, const char *key, void *buf, size_t cap,
                     size_t *len)
{
    if (!s || !len || (!buf && cap) || !storage__key_ok(key))
        return FW_ERR_INVAL;
    switch (s->kind) {
    case STORAGE__FILE: return file_read(s, key, buf, cap, len);
    case STORAGE__MEMORY: return storage__memory_read(s, key, buf, cap, len);
    default: return FW_ERR_NOT_FOUND;
    }
}

int sim_storage_write(struct sim_storage *s, const char *key, const void *buf, size_t len)
{
    if (!s || (!buf && len) || !storage__key_ok(key))
        return FW_ERR_INVAL;
    switch (s->kind) {
    case STORAGE__FILE: return file_write(s, key, buf, len);
    case STORAGE__MEMORY: return storage__memory_write(s, key, buf, len);
    default: return FW_OK;
    }
}
