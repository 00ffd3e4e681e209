/* util/time.h - wall-clock and monotonic time in ms (the only clock reads). */
#ifndef RG_UTIL_TIME_H
#define RG_UTIL_TIME_H

#include <stdint.h>

/** Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t rg_now_ms(void);
/** Monotonic milliseconds (CLOCK_MONOTONIC), for durations and deadlines. */
int64_t rg_mono_ms(void);
/** Monotonic nanoseconds, for latency histograms. */
uint64_t rg_mono_ns(void);

#endif
