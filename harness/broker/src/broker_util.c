/*
 * broker_util.c - the error words, clock and file helpers every broker driver uses
 * (broker_internal.h), and hx_broker_last_error() (hx/broker.h).
 *
 * Sections: errors, time, files.
 */
#include "broker_internal.h"
#include "sim/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- errors */

static _Thread_local char broker__err[1024];

void broker__set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(broker__err, sizeof broker__err, fmt, ap);
    va_end(ap);
}

void broker__clear_error(void)
{
    broker__err[0] = '\0';
}

const char *hx_broker_last_error(void)
{
    return broker__err[0] ? broker__err : "no error";
}

/* ---------------------------------------------------------------- time */

void broker__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------- files */

char *broker__join(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

int broker__write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        broker__set_error("cannot create %s: %s; check that the temporary folder is writable",
                          path, strerror(errno));
        return HX_ERR_SYS;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            broker__set_error("cannot write %s: %s; check free disk space", path,
                              strerror(errno));
            close(fd);
            return HX_ERR_SYS;
        }
        off += (size_t)n;
    }
    close(fd);
    return HX_OK;
}

off_t broker__file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

void broker__read_tail(const char *path, off_t from, char *out, size_t max)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size > from + (off_t)(max - 1))
        from = size - (off_t)(max - 1);
    if (from < 0 || from > size)
        from = 0;
    ssize_t n = pread(fd, out, max - 1, from);
    close(fd);
    if (n <= 0)
        return;
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (out[i] == '\n')
            out[i] = ';';
}

bool broker__file_has(const char *path, off_t from, const char *needle)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool found = false;
    char *line = NULL;
    size_t cap = 0;
    if (fseeko(f, from, SEEK_SET) == 0) {
        while (!found && getline(&line, &cap, f) >= 0)
            found = strstr(line, needle) != NULL;
    }
    free(line);
    fclose(f);
    return found;
}

bool broker__bad_text(const char *s)
{
    return !s || strpbrk(s, "\r\n") != NULL;
}

