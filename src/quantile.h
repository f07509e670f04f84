/* quantile.h: summary quantiles over a sliding time window.
 *
 * Each series keeps a log-bucketed sketch: a value v > 0 falls in bucket
 * k = ceil(log(v) / log(g)), g = (1 + a) / (1 - a), whose representative
 * 2 g^k / (g + 1) is within a relative error a of every value in it;
 * negative values mirror that, and |v| below FP_Q_MIN counts as zero.  The
 * sketch is a set of counters, so the same series updated by several
 * processes stays one sketch and quantiles keep the bound.
 *
 * The window: counts are cumulative and never reset.  The first event of
 * each epoch (max_age / age_buckets seconds) copies them into a ring of
 * snapshots; the window's counts are the current ones minus the snapshot at
 * the start of its oldest epoch.  So an observation stops counting between
 * max_age * (1 - 1/age_buckets) and max_age seconds after it was made, as in
 * Prometheus' Go client.  Observers only add; no one resets a counter that
 * someone else may be adding to.  No Python headers. */
#ifndef FASTPROM_QUANTILE_H
#define FASTPROM_QUANTILE_H

#include "store.h"

/* Relative error bound on every reported quantile, for |v| in [FP_Q_MIN, FP_Q_MAX]. */
#define FP_Q_ERROR 0.01
#define FP_Q_MIN 1e-9
#define FP_Q_MAX 1e12
#define FP_Q_MAX_QUANTILES 32u
#define FP_Q_MAX_AGE_BUCKETS 60u
/* Window steps of at least a millisecond, windows of at most a year: epoch
 * numbers then stay far below 2^62. */
#define FP_Q_MIN_PERIOD 1e-3
#define FP_Q_MAX_AGE (366.0 * 86400.0)

/* Cells a summary series with quantiles needs after its count and sum. */
uint32_t fp_q_cells(uint32_t age_buckets);

/* Buckets in a sketch: the size of the scratch fp_q_values needs. */
uint32_t fp_q_buckets(void);

/* Records v (finite) in the series' sketch.  Lock-free, no allocation. */
void fp_q_observe(const fp_family *f, fp_series *se, double v, double now);

/* Writes the family's quantiles over the window ending at `now` into out
 * (NaN when the window is empty).  scratch holds fp_q_buckets() counts. */
void fp_q_values(const fp_store *s, const fp_family *f, fp_series *se, double now, uint64_t *scratch,
                 double *out);

#endif
