/* clock.c: see clock.h. */
#define _DEFAULT_SOURCE
#include "clock.h"

#include <time.h>

#include "atomics.h"

static fp_word frozen_clock; /* double bits; 0 = real clock */

static double read_clock(clockid_t id)
{
    uint64_t f = fp_load(&frozen_clock);
    if (f)
        return fp_bitsd(f);
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double fp_now(void) { return read_clock(CLOCK_REALTIME); }

double fp_now_coarse(void)
{
#ifdef CLOCK_REALTIME_COARSE
    return read_clock(CLOCK_REALTIME_COARSE);
#else
    return read_clock(CLOCK_REALTIME);
#endif
}

void fp_clock_freeze(double t) { fp_put(&frozen_clock, t == 0.0 ? 0 : fp_dbits(t)); }

double fp_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
