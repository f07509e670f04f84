/* store.h: metric families, their series and exemplars, in an arena.
 *
 * Updates (the inline functions below) take no lock and allocate nothing.
 * Creating a series allocates from the arena with an atomic bump and
 * publishes it with a CAS: it never blocks an update of another series,
 * and concurrent creators of one series agree on a single record.
 * No Python headers. */
#ifndef FASTPROM_STORE_H
#define FASTPROM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "clock.h"
#include "native.h"
#include "quantile.h"

/* What fp_family_add is asked to create.  Strings are UTF-8 with lengths. */
typedef struct {
    uint32_t type;
    const char *name, *help, *unit;
    size_t name_len, help_len, unit_len;
    const char *const *labelnames;
    const size_t *labelname_lens;
    uint32_t nlabels;
    const double *buckets;      /* histogram: sorted, ending with +Inf */
    uint32_t nbuckets;
    uint32_t mpmode;            /* gauge: enum fp_mpmode */
    const double *quantiles;    /* summary: ascending, in [0, 1] */
    uint32_t nquantiles;
    double max_age;
    uint32_t age_buckets;
    /* histogram: native buckets (see native.h) when nh_factor > 1 */
    double nh_factor;
    double nh_zero_threshold, nh_max_zero_threshold, nh_min_reset;
    uint32_t nh_max_buckets;
} fp_family_spec;

/* Adds a family (in a shared store: finds the one every process declares).
 * FP_OK, or FP_EINVAL (a shape the store does not allow), FP_EMISMATCH,
 * FP_ENOMEM, FP_EFULL, FP_EFILE. */
int fp_family_add(fp_store *s, const fp_family_spec *spec, uint32_t *out_index);

fp_family *fp_family_get(const fp_store *s, uint32_t index);
uint32_t fp_family_count(const fp_store *s);
static inline const char *fp_family_name(const fp_store *s, const fp_family *f) { return fp_at(s, f->name); }

/* 1 if the family keeps one series per process (a gauge with a
 * multiprocess mode, in a shared store). */
static inline int fp_family_per_process(const fp_store *s, const fp_family *f)
{
    return f->mpmode != FP_MP_NONE && fp_shared(s);
}

static inline fp_q_window fp_family_window(const fp_store *s, const fp_family *f)
{
    fp_q_window w = {f->max_age, f->age_buckets, f->nquantiles,
                     f->nquantiles ? (const double *)fp_at(s, f->quantiles) : NULL};
    return w;
}

/* Finds the live series of `family` with these label values (raw UTF-8),
 * creating it when `create` is set; with `overflow` the arena's reserve may
 * be used.  In a shared store a per-process gauge gets this process's own
 * series.  FP_OK, FP_ENOTFOUND (not created), FP_EFULL, FP_ENOMEM. */
int fp_series_get(fp_store *s, uint32_t family, const char *const *values, const size_t *lens,
                  int create, int overflow, fp_series **out);

/* Marks one series (or every series of the family) removed: it is no
 * longer rendered or found, and a later lookup creates a fresh one.  The
 * store's removal count is bumped after, so that cached series pointers
 * are re-checked (fp_removals). */
int fp_series_remove(fp_store *s, uint32_t family, const char *const *values, const size_t *lens);
void fp_family_clear(fp_store *s, uint32_t family);

/* The removal count: a cache holding series pointers taken at count c
 * re-checks them (fp_series_live) once this differs from c. */
static inline uint64_t fp_removals(const fp_store *s) { return fp_load_acq(&fp_hdr(s)->removals); }
static inline int fp_series_live(const fp_series *se) { return fp_load32_acq(&se->state) == FP_LIVE; }
/* A record's generation: a reused record is another series.  A cache
 * keeps (pointer, generation) and re-checks both after a removal. */
static inline uint64_t fp_series_gen(const fp_series *se) { return fp_load_acq(&se->gen); }
/* The births count: series records given a key so far (see fp_header). */
static inline uint64_t fp_births(const fp_store *s) { return fp_load_acq(&fp_hdr(s)->births); }
/* 1 if a cached series is still the one it was: live (or just published,
 * BORN) and not reused. */
static inline int fp_series_still(const fp_series *se, uint64_t gen)
{
    uint32_t st = fp_load32_acq(&se->state);
    return (st == FP_LIVE || st == FP_BORN) && fp_series_gen(se) == gen;
}

static inline fp_series *fp_series_at(const fp_store *s, fp_off off) { return off ? (fp_series *)fp_at(s, off) : NULL; }

/* ---- updates: no lock, no allocation -------------------------------- */

/* A counter is one double, added to as prometheus_client adds to its
 * value, so the same increments give the same bits (and no integer part
 * can wrap). */
static inline void fp_counter_inc(fp_series *se, double v) { fp_addd(&se->cells[0], v); }
static inline double fp_counter_value(const fp_series *se) { return fp_loadd(&se->cells[0]); }

static inline void fp_gauge_set(fp_series *se, double v) { fp_stored(&se->cells[0], v); }
static inline void fp_gauge_add(fp_series *se, double v) { fp_addd(&se->cells[0], v); }
/* Per-process gauges also record when they were last written (mostrecent). */
static inline void fp_gauge_touch(fp_series *se, double now) { fp_stored(&se->cells[1], now); }
static inline double fp_gauge_value(const fp_series *se) { return fp_loadd(&se->cells[0]); }
static inline double fp_gauge_written(const fp_series *se) { return fp_loadd(&se->cells[1]); }

/* Index of the first bucket whose upper bound is >= v (the last is +Inf). */
static inline uint32_t fp_bucket_index(const double *bounds, uint32_t n, double v)
{
    uint32_t i = 0;
    while (i + 1 < n && v > bounds[i])
        i++;
    return i;
}

/* A histogram's _count is derived at render time as the sum of its bucket
 * counts, so +Inf always equals _count and cumulative counts never
 * decrease, whatever a scrape interleaves with; only _sum may miss an
 * observation that is in flight.  Nothing waits for writers, so a writer
 * that dies mid-update (another process) cannot stall a scrape. */
static inline void fp_histogram_observe(fp_series *se, uint32_t bucket, uint32_t nbuckets, double v)
{
    fp_add(&se->cells[bucket], 1);
    fp_addd(&se->cells[nbuckets], v);
}

/* An observation of a histogram that may have native buckets.  The native
 * bucket first, then the classic one with release: a walker that reads
 * the classic cells with acquire before the native block never sees more
 * classic than native observations (see native.h). */
static inline void fp_histogram_observe_all(const fp_family *f, fp_series *se, uint32_t bucket, double v)
{
    fp_word *nb = fp_nh_block(f, se);
    if (!nb) {
        fp_histogram_observe(se, bucket, f->nbuckets, v);
        return;
    }
    fp_nh_observe(f, nb, v);
    atomic_fetch_add_explicit(&se->cells[bucket], 1, memory_order_release);
    fp_addd(&se->cells[f->nbuckets], v);
}

static inline void fp_summary_observe(fp_series *se, double v)
{
    fp_add(&se->cells[0], 1);
    fp_addd(&se->cells[1], v);
}

/* The sketch of a summary with quantiles: after its count and sum. */
static inline fp_word *fp_summary_sketch(fp_series *se) { return &se->cells[2]; }

/* A summary observation, with its quantile sketch when the family has one. */
static inline void fp_summary_observe_all(const fp_store *s, const fp_family *f, fp_series *se, double v)
{
    fp_summary_observe(se, v);
    if (f->nquantiles) {
        fp_q_window w = fp_family_window(s, f);
        fp_q_observe(&w, fp_summary_sketch(se), v, fp_now_coarse());
    }
}

/* Repairs what a process that died while creating a series left: a series
 * published in the table but not linked into its family's list (it would
 * never be rendered) is linked, and a reused record published but not yet
 * shown is shown.  Lock-free, safe beside live writers; every process that
 * opens a shared store runs it.  Returns the number of repairs. */
int fp_store_repair(fp_store *s);

/* Records an exemplar for cell `slot` (0 for counters, the bucket for
 * histograms).  `text` is the rendered label set ({a="b"}).  Allocates the
 * series' exemplar block from the arena the first time (an atomic bump, no
 * lock).  FP_OK (also when a concurrent writer holds the slot and this one
 * is dropped), FP_ENOMEM or FP_EINVAL (nothing recorded). */
int fp_exemplar_put(fp_store *s, fp_series *se, uint32_t nslots, uint32_t slot,
                    const char *text, size_t len, double value, double ts);

/* Copies a consistent exemplar into the caller's buffer (FP_EXEMPLAR_TEXT
 * bytes).  Returns 1 if one was read, 0 if none (or it kept changing). */
int fp_exemplar_get(const fp_store *s, const fp_series *se, uint32_t slot,
                    char *text, size_t *len, double *value, double *ts);

#endif
