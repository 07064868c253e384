/*
 * trace_file.h - a device's trace file (docs/trace.md), internal to sim_platform.
 *
 * DIR/<device id>.fwtrace, written through a 64 KiB buffer that is appended to the file
 * when full and at close: a fleet of thousands traced at once holds no file descriptor
 * per device. A failed write is reported once on stderr, naming the file; tracing of that
 * device then stops and the run goes on.
 */
#ifndef SIM_TRACE_FILE_H
#define SIM_TRACE_FILE_H

#include <stddef.h>

struct sim_trace_file;

/* Create DIR (mkdir -p) and DIR/<id>.fwtrace, empty. 0, SIM_ERR_IO (errno told on stderr,
   with the path) or SIM_ERR_NOMEM. */
int sim_trace_file_open(const char *dir, const char *id, struct sim_trace_file **out);

/* The fw_trace_write_fn of a trace file (ctx: struct sim_trace_file). */
void sim_trace_file_write(void *ctx, const void *buf, size_t len);

/* Write what is buffered, close, free. NULL is fine. */
void sim_trace_file_close(struct sim_trace_file *t);

#endif /* SIM_TRACE_FILE_H */
