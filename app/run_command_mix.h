/*
 * run_command_mix.h - what `scansim run --command-rate` sends, worked out without a
 * network: a seeded random stream, the device a command goes to, the command (a mix that
 * leaves registrations alone: status, identify for 1 s, a short message that the scripted
 * operator dismisses at once, config with a random contrast), and the pace (a credit that
 * never holds more than one second of commands, so a stall is not followed by a burst).
 *
 * Plain values: nothing here allocates or owns anything.
 */
#ifndef SCANSIM_RUN_COMMAND_MIX_H
#define SCANSIM_RUN_COMMAND_MIX_H

#include <stddef.h>
#include <stdint.h>

#define RUN_COMMAND_KINDS 4 /* status, identify, message, config */

struct run_command_rng {
    uint64_t state;
};

/** Seed the stream (the run's --seed): the same seed gives the same commands. */
void run_command_rng_seed(struct run_command_rng *r, uint64_t seed);
uint64_t run_command_rng_next(struct run_command_rng *r);

/** A device number k in 0 .. devices-1 (devices > 0), uniform. */
long run_command_pick_device(struct run_command_rng *r, long devices);

/* The mix's commands, by kind. */
extern const char *const run_command_kinds[RUN_COMMAND_KINDS];

/** The next command of the mix for cmd_id as its JSON payload into buf: its length, or 0
 *  when it does not fit. *kind (if given) gets its index in run_command_kinds. */
size_t run_command_payload(struct run_command_rng *r, const char *cmd_id, char *buf, size_t cap,
                           int *kind);

/** The credit (commands that may go now) after dt_ms more at rate per second, capped at
 *  one second of commands (at least 1). */
double run_command_credit(double credit, double rate, uint64_t dt_ms);

#endif
