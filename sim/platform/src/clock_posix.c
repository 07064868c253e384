/*
 * clock_posix.c - the clock port: CLOCK_MONOTONIC in milliseconds (sim/clock.h).
 * Monotonic rather than realtime so that back-off and time-outs survive date changes.
 */
#include <time.h>

#include "sim/clock.h"

uint64_t sim_clock_ms(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sim_clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
