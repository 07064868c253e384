/*
 * sim/clock.h - the clock port on Linux: CLOCK_MONOTONIC in milliseconds (and microseconds).
 *
 * The origin is arbitrary (boot), so only differences mean anything. Never goes back, does
 * not jump with NTP or date changes: the firmware's time-outs and back-off rely on that.
 */
#ifndef SIM_CLOCK_H
#define SIM_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Monotonic milliseconds (CLOCK_MONOTONIC). Thread-safe. */
uint64_t sim_clock_ms(void);

/** The same clock in microseconds. */
uint64_t sim_clock_us(void);

#ifdef __cplusplus
}
#endif

#endif /* SIM_CLOCK_H */
