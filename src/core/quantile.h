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
 * someone else may be adding to.
 *
 * This file knows nothing of families or series: it works on the sketch's
 * cells, which the store places after a summary's count and sum. */
#ifndef FASTPROM_QUANTILE_H
#define FASTPROM_QUANTILE_H

#include <stdint.h>

#include "atomics.h"

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

/* Buckets in a sketch: 2 * side + 1, side = kmax - kmin + 1 for the
 * exponents of FP_Q_MIN and FP_Q_MAX at the internal accuracy.
 * fp_q_selftest() checks this against the computed parameters. */
#define FP_Q_BUCKETS 5093u

/* Cells of a sketch with its window: [0] last epoch snapshotted plus one,
 * [1 .. B] cumulative counts, then age_buckets + 1 snapshots of [tag][B]. */
#define FP_Q_CELLS(age_buckets) (1u + FP_Q_BUCKETS + ((age_buckets) + 1u) * (1u + FP_Q_BUCKETS))

typedef struct {
    double max_age;          /* window length, seconds */
    uint32_t age_buckets;    /* epochs in the window */
    uint32_t nquantiles;
    const double *quantiles; /* ascending, in [0, 1] */
} fp_q_window;

/* 1 if FP_Q_BUCKETS matches the sketch's parameters. */
int fp_q_selftest(void);

/* Records v (finite) in the sketch at `cells`.  Lock-free, no allocation. */
void fp_q_observe(const fp_q_window *w, fp_word *cells, double v, double now);

/* Writes the quantiles over the window ending at `now` into out (NaN when
 * the window is empty).  scratch holds FP_Q_BUCKETS counts.  With `may_write`
 * it may take this epoch's snapshot (the cells are written); without (a
 * read-only mapping) the result is the same: an epoch without a snapshot
 * is one without observations, so the window's base is found either way. */
void fp_q_values(const fp_q_window *w, fp_word *cells, double now, uint64_t *scratch, double *out, int may_write);

#endif
