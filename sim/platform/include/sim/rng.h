/*
 * sim/rng.h - the host's small pseudo-random generators (Marsaglia's xorshift, 64 and 32
 * bits): reproducible from a seed, cheap, not for anything secret. The 32-bit one keeps a
 * fleet's per-device state small. The firmware has its own (fw_device.c): it cannot share
 * code with the host.
 */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>

/** The next value of state (never 0: a zero state is replaced by a fixed one). */
static inline uint64_t sim_rng_next(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/** xorshift32: the next value of state (a zero state is replaced by a fixed one). */
static inline uint32_t sim_rng32_next(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}


#endif /* SIM_RNG_H */
