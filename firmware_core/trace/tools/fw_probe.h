/*
 * fw_probe.h - what a target measures around each replayed event (fw_trace_replay.c).
 *
 * A port with one implementation per target: probe_none.c on Linux (nothing measured),
 * arm/probe_mps2.c on the emulated Cortex-M (painted stack, instructions, cJSON heap).
 */
#ifndef FW_PROBE_H
#define FW_PROBE_H

#include <stdbool.h>

/* Once, before the first trace: set up counters, print what is known up front. */
void fw_probe_init(void);
/* Just before and just after one event call into the device (enum fw_trace_type). */
void fw_probe_before(unsigned type);
void fw_probe_after(unsigned type);
/* Around each port call inside an event: the platform's share, left out of the event's. */
void fw_probe_port(bool enter);
/* Once, after the last trace: print the figures. */
void fw_probe_report(void);

#endif /* FW_PROBE_H */
