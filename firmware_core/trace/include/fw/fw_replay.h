/*
 * fw_replay.h - replay a recorded trace against this build of firmware_core and compare.
 *
 * The replayer reads a trace (fw/fw_trace.h) one event at a time: the event record and the
 * port records it caused on the recording platform. It makes the same call into its own
 * device, answers the firmware's port calls with the recorded replies (the next recorded
 * call of the same kind: the clock's time, the publish token, the stored value), records
 * the calls this build makes with the same recorder code, and compares the two runs of
 * bytes. The first event whose bytes differ is printed with both sides, row by row.
 *
 * Portable C11 (it runs on the ARM test image); the input comes through a read callback
 * (a file on Linux, semihosting on the board) in windows of FW_REPLAY_WINDOW bytes.
 * struct fw_replay is large (about 110 KB): allocate it statically.
 */
#ifndef FW_REPLAY_H
#define FW_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_device.h"
#include "fw/fw_trace.h"
#include "fw/fw_trace_recorder.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest event with its port records; a larger one is refused as a bad trace. */
#define FW_REPLAY_GROUP_MAX (32u * 1024u)
#define FW_REPLAY_WINDOW (2u * FW_REPLAY_GROUP_MAX)
#define FW_REPLAY_STR_MAX 256u

enum fw_replay_outcome {
    FW_REPLAY_MATCH = 0,     /* every event made the same calls */
    FW_REPLAY_DIFFER = 1,    /* an event's calls differ: printed */
    FW_REPLAY_BAD_TRACE = 2, /* the trace could not be read: err says where */
};

struct fw_replay_source {
    /* Up to cap bytes into buf: how many, 0 at the end, negative on a read error. */
    long (*read)(void *ctx, void *buf, size_t cap);
    void *ctx;
};

/* A source over bytes in memory (tests, fuzzing, a trace linked into an image):
   {fw_replay_mem_read, &mem} with mem = {bytes, len, 0}. */
struct fw_replay_mem {
    const uint8_t *p;
    size_t len, pos;
};
long fw_replay_mem_read(void *ctx, void *buf, size_t cap);

struct fw_replay_hooks {
    void *ctx;
    /* Around each event call into the device (measurements); may be NULL. */
    void (*before)(void *ctx, unsigned type);
    void (*after)(void *ctx, unsigned type);
    /* Around each port call the firmware makes, so a probe can leave the platform's cost
       (here: recording and comparing) out of the firmware's; may be NULL. */
    void (*port)(void *ctx, bool enter);
    /* One line of the report (no newline); may be NULL. */
    void (*print)(void *ctx, const char *line);
};

struct fw_replay_result {
    enum fw_replay_outcome outcome;
    uint32_t events;         /* events replayed (the differing one included) */
    uint32_t records;        /* port records compared */
    uint64_t event_offset;   /* DIFFER: offset of the differing event in the file */
    struct fw_trace_error err; /* BAD_TRACE */
};

struct fw_replay {
    uint8_t in[FW_REPLAY_WINDOW];
    size_t in_len;            /* bytes in the window */
    uint64_t in_base;         /* file offset of in[0] */
    bool eof;
    size_t ports_start, group_end; /* the current event's port records, in in[] */
    size_t cursor[0x40];      /* next recorded port record of each kind, in in[] */
    uint8_t out[FW_REPLAY_GROUP_MAX]; /* the calls this build made for the event */
    struct fw_trace_buf outb;
    struct fw_trace_rec taken; /* the recorded call that answers the current one */
    uint64_t last_clock;
    struct fw_ports answers;  /* ports that answer from the trace */
    struct fw_trace_recorder rec; /* records this build's calls into out */
    struct fw_ports timed;    /* rec.ports between hooks->port calls (with a port hook) */
    const struct fw_replay_hooks *hooks;
    struct fw_device dev;
    bool ready;               /* the last init succeeded: the device may be called */
    const char *why;          /* why the current event cannot be replayed */
    char strs[6][FW_REPLAY_STR_MAX]; /* device id and topic overrides of the last init */
    char topic[FW_TRACE_PAYLOAD_MAX + 1];
    uint32_t payload[FW_TRACE_PAYLOAD_MAX / 4]; /* word-aligned, as a network buffer */
};

/* Replay the trace from src against a fresh device; res tells what happened. Returns
   res->outcome. */
int fw_replay_run(struct fw_replay *rp, const struct fw_replay_source *src,
                  const struct fw_replay_hooks *hooks, struct fw_replay_result *res);

#ifdef __cplusplus
}
#endif

#endif /* FW_REPLAY_H */
