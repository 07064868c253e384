/*
 * sim/clock.h - the clock port on Linux: CLOCK_MONOTONIC in milliseconds (and microseconds).
 *
 * The origin is arbitrary (boot), so only differences mean anything. Never goes back, does
 * not jump with NTP or date changes: the firmware's time-outs and back-off rely on that.
 */
#ifndef SIM_CLOCK_H
#define SIM_CLOCK_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Monotonic milliseconds (CLOCK_MONOTONIC). Thread-safe. */
uint64_t sim_clock_ms(void);

/** The same clock in microseconds. */
uint64_t sim_clock_us(void);

/** The same clock in nanoseconds (comparable between processes of one machine). */
uint64_t sim_clock_ns(void);

/** The time timeout_ms from now on CLOCK_MONOTONIC, as pthread_cond_timedwait wants it for
 *  a condition made with pthread_condattr_setclock(CLOCK_MONOTONIC). */
void sim_clock_deadline(struct timespec *ts, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* SIM_CLOCK_H */
