/*
 * fw_trace_replay.c - replay trace files against this build of firmware_core.
 *
 *   fw_trace_replay FILE... | @LIST
 *   fw_trace_replay --dump FILE        every record, one line each, with its offset
 *
 * @LIST names a file with one trace path a line: semihosting passes a command line of at
 * most 255 bytes to the board, too short for many paths.
 * The same program runs on Linux and, cross-compiled, on the emulated Cortex-M (arm/),
 * where stdio reaches the host through semihosting. What a target measures around each
 * event (stack, instructions, heap) comes through the probe of fw_probe.h: none on Linux,
 * arm/probe_mps2.c on the board. Exit: 0 every trace matched, 1 one differed, 2 a trace
 * could not be read or a wrong argument.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_replay.h"
#include "fw_probe.h"

static long file_read(void *ctx, void *buf, size_t cap)
{
    size_t n = fread(buf, 1, cap, ctx);
    return n == 0 && ferror((FILE *)ctx) ? -1 : (long)n;
}

static void print_line(void *ctx, const char *line)
{
    fprintf(ctx, "%s\n", line);
}

static void before(void *ctx, unsigned type)
{
    (void)ctx;
    fw_probe_before(type);
}

static void after(void *ctx, unsigned type)
{
    (void)ctx;
    fw_probe_after(type);
}

static void port(void *ctx, bool enter)
{
    (void)ctx;
    fw_probe_port(enter);
}

/* 0 match, 1 differ, 2 unreadable. */
static int replay_file(const char *path)
{
    static struct fw_replay rp;
    struct fw_replay_result res;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fw_trace_replay: %s: cannot open\n", path);
        return 2;
    }
    struct fw_replay_source src = {file_read, f};
    struct fw_replay_hooks hooks = {stdout, before, after, port, print_line};
    printf("== %s\n", path);
    fw_replay_run(&rp, &src, &hooks, &res);
    fclose(f);
    switch (res.outcome) {
    case FW_REPLAY_MATCH:
        printf("%s: %u events, %u port records: identical\n", path, (unsigned)res.events,
               (unsigned)res.records);
        return 0;
    case FW_REPLAY_DIFFER:
        printf("%s: DIFFERS at event %u (offset %llu)\n", path, (unsigned)res.events,
               (unsigned long long)res.event_offset);
        return 1;
    default:
        fprintf(stderr, "fw_trace_replay: %s: offset %llu: %s\n", path,
                (unsigned long long)res.err.offset, res.err.what);
        return 2;
    }
}

/* Prints every record of the trace at path: 0, or 2 with the offset of what is wrong. */
static int dump_file(const char *path)
{
    static uint8_t buf[FW_REPLAY_WINDOW];
    struct fw_trace_error err;
    struct fw_trace_rec r;
    char line[1024];
    size_t len = 0, pos = FW_TRACE_HEADER_LEN;
    uint64_t base = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fw_trace_replay: %s: cannot open\n", path);
        return 2;
    }
    len = fread(buf, 1, sizeof buf, f);
    int rc = fw_trace_check_header(buf, len, &err);
    while (rc == 0) {
        long n = fw_trace_read(buf + pos, len - pos, base + pos, &r, &err);
        if (n == 0 && len - pos < sizeof buf && !feof(f)) {
            /* Slide the window: keep the partial record, read more behind it. */
            memmove(buf, buf + pos, len - pos);
            base += pos;
            len -= pos;
            pos = 0;
            len += fread(buf + len, 1, sizeof buf - len, f);
            continue;
        }
        if (n == 0 && pos == len)
            break;
        if (n <= 0) {
            if (n == 0) {
                err.offset = base + pos;
                snprintf(err.what, sizeof err.what, "truncated record at the end of the trace");
            }
            rc = -1;
            break;
        }
        printf("%8llu %s%s\n", (unsigned long long)(base + pos),
               fw_trace_is_event(r.type) ? "" : "  ", fw_trace_format(&r, line, sizeof line));
        pos += (size_t)n;
    }
    fclose(f);
    if (rc == 0)
        return 0;
    fprintf(stderr, "fw_trace_replay: %s: offset %llu: %s\n", path,
            (unsigned long long)err.offset, err.what);
    return 2;
}

/* Every path listed in the file at list, one a line; the worst outcome. */
static int replay_list(const char *list)
{
    char path[1024];
    int worst = 0, line = 0;
    FILE *f = fopen(list, "r");
    if (f == NULL) {
        fprintf(stderr, "fw_trace_replay: %s: cannot open the list\n", list);
        return 2;
    }
    while (fgets(path, sizeof path, f) != NULL) {
        line++;
        size_t n = strcspn(path, "\r\n");
        if (path[n] == '\0' && !feof(f)) {
            fprintf(stderr, "fw_trace_replay: %s:%d: path longer than %u bytes\n", list, line,
                    (unsigned)sizeof path - 2);
            worst = 2;
            break;
        }
        path[n] = '\0';
        if (n == 0)
            continue;
        int rc = replay_file(path);
        worst = rc > worst ? rc : worst;
    }
    fclose(f);
    return worst;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        (argv[1][0] == '-' && (strcmp(argv[1], "--dump") != 0 || argc != 3))) {
        fprintf(stderr, "usage: fw_trace_replay FILE... | @LIST   replay traces against this build\n"
                        "       fw_trace_replay --dump FILE       print every record "
                        "(docs/trace.md)\n");
        return 2;
    }
    if (strcmp(argv[1], "--dump") == 0)
        return dump_file(argv[2]);
    fw_probe_init();
    int worst = 0;
    for (int i = 1; i < argc; i++) {
        int rc = argv[i][0] == '@' ? replay_list(argv[i] + 1) : replay_file(argv[i]);
        worst = rc > worst ? rc : worst;
    }
    fw_probe_report();
    return worst;
}
