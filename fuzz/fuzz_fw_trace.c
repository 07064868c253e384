/*
 * fuzz_fw_trace.c - libFuzzer target: trace files (docs/trace.md) from anywhere.
 *
 * A trace is read by fw_trace_replay on Linux and on the ARM image, from files people pass
 * around: any bytes must end in a match, a reported difference or a bad-trace error with
 * an offset, never a crash, a hang or an out-of-bounds read. Each input is replayed (which
 * also drives firmware_core with whatever events the bytes say) and then read record by
 * record and formatted, as --dump does.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fw/fw_replay.h"
#include "fw/fw_trace.h"

static void swallow(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fw_replay rp;
    struct fw_replay_result res;
    struct fw_replay_mem m = {data, size, 0};
    struct fw_replay_source src = {fw_replay_mem_read, &m};
    struct fw_replay_hooks hooks = {NULL, NULL, NULL, NULL, swallow};
    fw_replay_run(&rp, &src, &hooks, &res);

    struct fw_trace_rec r;
    struct fw_trace_error err;
    char line[512];
    size_t pos = FW_TRACE_HEADER_LEN;
    if (fw_trace_check_header(data, size, &err) != 0)
        return 0;
    while (pos < size) {
        long n = fw_trace_read(data + pos, size - pos, pos, &r, &err);
        if (n <= 0)
            break;
        fw_trace_format(&r, line, sizeof line);
        pos += (size_t)n;
    }
    return 0;
}
