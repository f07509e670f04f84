/* walk.h: the one walk over a family's series that every view is built
 * from: the text formats, OpenMetrics, and the Python sample view
 * (collect(), get_sample_value).
 *
 * fp_walk_family reads each live series once and hands a point (one
 * series' values at one instant) to a callback; per-process gauges of a
 * shared store are combined here, as their multiprocess mode says.
 * fp_point_samples turns a point into the samples a view shows; which
 * samples exist (suffixes, le and quantile labels, _created, exemplars) is
 * decided there and nowhere else.  How a sample is written (the text
 * format's separate _created family, name escaping) is the writers'.  No Python headers. */
#ifndef FASTPROM_WALK_H
#define FASTPROM_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The views a point can be shown in. */
enum fp_view { FP_VIEW_TEXT = 0, FP_VIEW_OPENMETRICS = 1, FP_VIEW_PYTHON = 2, FP_VIEW_PROTOBUF = 3 };

typedef struct {
    const char *text;       /* rendered label set, pairs sorted: {a="b"} */
    size_t len;
    double value;
    int has_ts;
    double ts;
    const char *ts_text;    /* the timestamp as written, or NULL: repr(ts) */
    size_t ts_len;
} fp_exemplar_data;

/* One sample line: name + suffix, labels (and an extra pair), value. */
typedef struct {
    const char *suffix;     /* "", "_total", "_bucket", "_count", "_sum", "_created" */
    const char *labels;     /* escaped pairs sorted by name: a="x",b="y" */
    size_t labels_len;
    size_t split;           /* where `extra` goes among them (see fp_series.split) */
    const char *extra;      /* one more escaped pair (le="1.0", quantile="0.5"), or NULL */
    size_t extra_len;
    double value;
    uint64_t count;         /* the same as an integer, for counts */
    int has_ts;             /* a sample timestamp (custom families only) */
    double ts;
    const char *ts_text;    /* OpenMetrics: the timestamp as written, or NULL: repr(ts) */
    size_t ts_len;
    const fp_exemplar_data *exemplar;
} fp_sample;

/* One series' values at one instant. */
typedef struct {
    const fp_series *se;    /* NULL for a combined per-process gauge group */
    const char *labels;
    size_t labels_len;
    size_t split;
    double created;
    double value;           /* counter, gauge */
    uint64_t count;         /* histogram (sum of its buckets), summary */
    double sum;
    const uint64_t *cumulative; /* histogram: cumulative bucket counts */
    const double *qvalues;  /* summary: quantile values, f->nquantiles of them */
} fp_point;

/* What a walk knows of its family, for the callbacks. */
typedef struct {
    const fp_store *s;
    const fp_family *f;
    const char *name;
    char (*extra)[48];      /* le="..." per bucket, quantile="..." per quantile */
    size_t *extra_len;
    fp_nh_scratch *nsc;     /* native histograms: scratch for fp_point_native */
    fp_native *native;
} fp_walk;

/* A histogram point's native buckets, read on demand (only protobuf shows
 * them, so the text views pay nothing): *out is NULL for a classic one.
 * Read after the point's classic counts, so native count >= classic count
 * (see native.h); valid until the next call.  FP_OK or FP_ENOHEAP. */
int fp_point_native(const fp_walk *w, const fp_point *p, const fp_native **out);

/* Returns 0 to go on; anything else stops the walk and is returned. */
typedef int (*fp_point_fn)(void *ctx, const fp_walk *w, const fp_point *p);
typedef int (*fp_sample_fn)(void *ctx, const fp_sample *smp);

/* Walks the live series of a family.  Returns 0, FP_EINVAL (no such
 * family), FP_ENOHEAP (scratch), or the callback's non-zero result (a
 * callback may return any value but these two). */
int fp_walk_family(const fp_store *s, uint32_t family, fp_point_fn fn, void *ctx);

/* Whether store families show _created samples (prometheus_client's
 * enable_created_metrics / disable_created_metrics); on by default. */
void fp_set_created(int on);
int fp_created(void);

/* The exemplar of a series' cell, if it has one (buf: FP_EXEMPLAR_TEXT bytes). */
int fp_point_exemplar(const fp_walk *w, const fp_point *p, uint32_t slot, char *buf, fp_exemplar_data *out);

/* _count and, unless `sum` is clear, _sum of a histogram or summary point. */
static inline int fp_count_and_sum(const fp_point *p, fp_sample *smp, int sum, fp_sample_fn fn, void *ctx)
{
    int rc;
    smp->extra = NULL;
    smp->extra_len = 0;
    smp->exemplar = NULL;
    smp->suffix = "_count";
    smp->count = p->count;
    smp->value = (double)p->count;
    if ((rc = fn(ctx, smp)) || !sum)
        return rc;
    smp->suffix = "_sum";
    smp->value = p->sum;
    return fn(ctx, smp);
}

/* The samples of a point in a view, in exposition order, as
 * prometheus_client's collect() yields them: a counter's _total, a gauge's
 * value, a histogram's buckets, _count and (when its first bucket is not
 * negative) _sum, a summary's quantiles, _count and _sum, then _created
 * (unless created samples are off).  Exemplars in every view but text.
 * Inline, so a writer's sample callback is inlined into its walk. */
static inline int fp_point_samples(const fp_walk *w, const fp_point *p, int view, fp_sample_fn fn, void *ctx)
{
    const fp_family *f = w->f;
    int exemplars = view != FP_VIEW_TEXT;
    char exbuf[FP_EXEMPLAR_TEXT];
    fp_exemplar_data ex;
    fp_sample smp = {"", p->labels, p->labels_len, p->split, NULL, 0, 0.0, 0, 0, 0.0, NULL, 0, NULL};
    int rc;
    switch (f->type) {
    case FP_COUNTER:
        smp.suffix = "_total";
        smp.value = p->value;
        smp.exemplar = exemplars && fp_point_exemplar(w, p, 0, exbuf, &ex) ? &ex : NULL;
        if ((rc = fn(ctx, &smp)))
            return rc;
        break;
    case FP_GAUGE:
        smp.value = p->value;
        return fn(ctx, &smp);
    case FP_HISTOGRAM:
        smp.suffix = "_bucket";
        for (uint32_t i = 0; i < f->nbuckets; i++) {
            smp.extra = w->extra[i];
            smp.extra_len = w->extra_len[i];
            smp.count = p->cumulative[i];
            smp.value = (double)smp.count;
            smp.exemplar = exemplars && fp_point_exemplar(w, p, i, exbuf, &ex) ? &ex : NULL;
            if ((rc = fn(ctx, &smp)))
                return rc;
        }
        /* A sum of observations that may be negative is no counter: left
         * out, as prometheus_client does (its _count stays). */
        if ((rc = fp_count_and_sum(p, &smp, !(((const double *)fp_at(w->s, f->buckets))[0] < 0), fn, ctx)))
            return rc;
        break;
    case FP_SUMMARY:
        for (uint32_t j = 0; j < f->nquantiles; j++) {
            smp.extra = w->extra[j];
            smp.extra_len = w->extra_len[j];
            smp.value = p->qvalues[j];
            if ((rc = fn(ctx, &smp)))
                return rc;
        }
        if ((rc = fp_count_and_sum(p, &smp, 1, fn, ctx)))
            return rc;
        break;
    default:
        return 0;
    }
    if (fp_created()) {
        smp.suffix = "_created";
        smp.extra = NULL;
        smp.extra_len = 0;
        smp.exemplar = NULL;
        smp.value = p->created;
        return fn(ctx, &smp);
    }
    return 0;
}

#endif
