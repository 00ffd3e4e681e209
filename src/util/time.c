/* util/time.c - clock reads. */
#include "util/time.h"

#include <time.h>

int64_t rg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rg_mono_ms(void)
{
    return (int64_t)(rg_mono_ns() / 1000000u);
}

uint64_t rg_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
