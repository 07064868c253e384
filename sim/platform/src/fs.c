/*
 * fs.c - sim/fs.h: mkdir -p and rm -rf on POSIX (nftw, depth first, no symlink followed).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sim/fs.h"

int sim_fs_mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int sim_fs_read_all(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0, r;

    *out = NULL;
    if (!f)
        return -1;
    do {
        if (n > max) /* more than max already: no need to read the rest */
            break;
        if (cap - n < 4096 + 1) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
    } while (r > 0);
    int failed = ferror(f);
    int e = errno;
    fclose(f);
    if (failed || n > max) {
        free(buf);
        errno = failed ? e : EFBIG;
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

static int fs__remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void sim_fs_remove_tree(const char *path)
{
    if (path && *path)
        nftw(path, fs__remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
