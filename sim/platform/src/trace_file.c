/*
 * trace_file.c - a device's trace file (trace_file.h).
 */
#include "trace_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"
#include "storage_internal.h"
#include "sim/fs.h"

#define TRACE_FILE_BUF (64 * 1024)

struct sim_trace_file {
    char *path;
    bool failed;   /* a write failed: said once, nothing more is written */
    size_t len;
    unsigned char buf[TRACE_FILE_BUF];
};

static void trace_file_fail(struct sim_trace_file *t, const char *what)
{
    if (!t->failed)
        fprintf(stderr, "scansim: trace %s: %s: %s (tracing of this device stops)\n",
                t->path, what, strerror(errno));
    t->failed = true;
}

/* Appends the buffer to the file: open, write, close, so no descriptor stays open. */
static void trace_file_drain(struct sim_trace_file *t)
{
    if (t->failed || t->len == 0)
        return;
    FILE *f = fopen(t->path, "ab");
    if (!f) {
        trace_file_fail(t, "cannot open");
        return;
    }
    size_t n = fwrite(t->buf, 1, t->len, f);
    if (fclose(f) != 0 || n != t->len)
        trace_file_fail(t, "cannot write");
    t->len = 0;
}

int sim_trace_file_open(const char *dir, const char *id, struct sim_trace_file **out)
{
    struct sim_trace_file *t;
    FILE *f;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (!t || asprintf(&t->path, "%s/%s.fwtrace", dir, id) < 0) {
        free(t);
        return SIM_ERR_NOMEM;
    }
    if (sim_fs_mkdir_p(dir) != 0 || !(f = fopen(t->path, "wb"))) {
        fprintf(stderr, "scansim: --trace %s: cannot create %s: %s\n", dir, t->path,
                strerror(errno));
        free(t->path);
        free(t);
        return SIM_ERR_IO;
    }
    fclose(f);
    *out = t;
    return SIM_OK;
}

void sim_trace_file_write(void *ctx, const void *buf, size_t len)
{
    struct sim_trace_file *t = ctx;

    while (len > 0 && !t->failed) {
        size_t n = TRACE_FILE_BUF - t->len < len ? TRACE_FILE_BUF - t->len : len;
        memcpy(t->buf + t->len, buf, n);
        t->len += n;
        buf = (const unsigned char *)buf + n;
        len -= n;
        if (t->len == TRACE_FILE_BUF)
            trace_file_drain(t);
    }
}

void sim_trace_file_close(struct sim_trace_file *t)
{
    if (!t)
        return;
    trace_file_drain(t);
    free(t->path);
    free(t);
}
