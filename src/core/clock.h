/* clock.h: the store's clocks.  Created and exemplar timestamps and summary
 * windows read the wall clock; tests pin it with fp_clock_freeze. */
#ifndef FASTPROM_CLOCK_H
#define FASTPROM_CLOCK_H

/* Wall clock in seconds since the epoch; fp_clock_freeze(t) pins it (0 thaws). */
double fp_now(void);
/* The same, cheaper, to a few milliseconds. */
double fp_now_coarse(void);
void fp_clock_freeze(double t);
/* A monotonic clock in seconds (time.perf_counter's on Linux). */
double fp_monotonic(void);

#endif
