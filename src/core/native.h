/* native.h: native (sparse, exponential) histogram buckets in the store,
 * and the walker's view of them, as the protobuf format carries them.
 *
 * Buckets.  At schema s a bucket's upper bound is 2^(i / 2^s) for index i:
 * bucket i holds the magnitudes in (2^((i-1)/2^s), 2^(i/2^s)].  Values
 * whose magnitude is at most the zero threshold go to the zero bucket;
 * others to bucket i of the positive or the negative side.  ±Inf go one
 * bucket past the largest finite double's.  The finest schema comes from
 * the bucket factor, as client_golang picks it: the largest s in [-4, 8]
 * with 2^(2^-s) <= factor.
 *
 * Storage.  Each series of a native family carries, after its classic
 * cells (buckets, then sum), a fixed block:
 *   [0] zero bucket count
 *   [1] reduction r: new observations are keyed at schema (finest - r)
 *   [2] used: keys claimed in the table below (may lag by a crash)
 *   [3] mark: `used` when r was last bumped
 *   [4...] nh_slots (key, count) pairs: an open-addressing table, linear
 *          probing from the key's hash.  A key word is 0 (free) or
 *          1 | side << 1 | (schema + 4) << 2 | (index + 2^31) << 32.
 * Keys are claimed by CAS from 0 and never change or move after, so a key
 * is found by probing from its home slot to the first free slot, and two
 * processes observing the same bucket always meet in the same pair.  An
 * observation is one relaxed add to a pair's count (and, the first time
 * a bucket is seen, one CAS): no lock, no allocation, and workers sharing
 * a store add into the same counts, so their histograms merge exactly.
 *
 * The bucket limit.  The table holds far more keys than the bucket limit,
 * and the limit is applied when the histogram is read: the walker folds
 * the table to the finest schema whose bucket count fits (after widening
 * the zero bucket up to the maximum zero threshold first, as client_golang
 * does), so every reader reduces the same counts the same way, whichever
 * worker observed them.  Once more keys than the limit were made at the
 * current schema (used - mark), the walker must show a coarser one
 * anyway (unless the zero bucket may widen instead), so an observer bumps
 * r with a CAS and later keys are made one schema coarser; the walker
 * folds older, finer keys into it.  The same happens whatever the count
 * when the table reaches its fill limit.  The
 * table keeps FP_NH_RESERVE free slots beyond that: enough for every key
 * schema -4 can make, plus racing writers, so an observation never finds
 * the table full.
 *
 * Consistency.  There is no separate count cell: the native count is the
 * zero bucket plus every pair's count, read once, so it always equals the
 * sum of the buckets a scrape shows (as Prometheus requires of a native
 * histogram whose sum is not NaN); only the sum may miss an observation
 * in flight, as with classic buckets.  A native observation is made before
 * the classic one, whose add is a release; the walker reads the classic
 * cells with acquire before the native block, so a scrape never sees more
 * classic observations than native ones.  A writer dying between claiming
 * a key and adding to it leaves a key with count 0: an empty bucket, left
 * out by the walker; dying before bumping `used` leaves it one short,
 * which the reserve absorbs.  No Python headers. */
#ifndef FASTPROM_NATIVE_H
#define FASTPROM_NATIVE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "records.h"

#define FP_NH_SCHEMA_MIN (-4)
#define FP_NH_SCHEMA_MAX 8
#define FP_NH_MAX_BUCKETS 16384u
/* Keys schema -4 can make: indexes -67..65 on each side (2^-1074 to Inf). */
#define FP_NH_COARSE_KEYS 266u
#define FP_NH_RESERVE (FP_NH_COARSE_KEYS + 256u)
#define FP_NH_DEFAULT_ZERO_THRESHOLD 2.938735877055719e-39 /* 2^-128 */

/* The native block's cells. */
enum { FP_NH_ZERO = 0, FP_NH_REDUCTION = 1, FP_NH_USED = 2, FP_NH_MARK = 3, FP_NH_TABLE = 4 };

static inline uint32_t fp_nh_cells(uint32_t slots) { return slots ? FP_NH_TABLE + 2 * slots : 0; }

/* Table slots for a bucket limit: a power of two with room for twice the
 * limit and the reserve. */
static inline uint32_t fp_nh_slots_for(uint32_t max_buckets)
{
    uint32_t want = 2 * max_buckets + FP_NH_RESERVE, n = 512;
    while (n < want)
        n <<= 1;
    return n;
}

/* Keys past which observers coarsen the schema (the table's fill limit). */
static inline uint32_t fp_nh_fill_limit(uint32_t slots) { return slots - FP_NH_RESERVE; }

/* client_golang's choice of schema for a bucket factor (> 1). */
static inline int32_t fp_nh_schema_for(double factor)
{
    double fl = floor(log2(log2(factor)));
    if (fl <= -8)
        return FP_NH_SCHEMA_MAX;
    if (fl >= 4)
        return FP_NH_SCHEMA_MIN;
    return (int32_t)-fl;
}

/* The bucket index of a magnitude a > 0 (Inf included) at a schema. */
int32_t fp_nh_index(double a, int32_t schema);
/* A bucket's upper bound 2^(index / 2^schema). */
double fp_nh_upper(int32_t index, int32_t schema);
/* The bounds table; called once before any native family is used
 * (module start-up, or a test program's main). */
void fp_nh_init(void);

static inline uint64_t fp_nh_key(int negative, int32_t schema, int32_t index)
{
    return 1u | (uint64_t)(negative ? 2u : 0u) | (uint64_t)(uint32_t)(schema + 4) << 2 |
           (uint64_t)((uint32_t)index ^ 0x80000000u) << 32;
}
static inline int fp_nh_key_negative(uint64_t k) { return (int)((k >> 1) & 1u); }
static inline int32_t fp_nh_key_schema(uint64_t k) { return (int32_t)((k >> 2) & 0x3fu) - 4; }
static inline int32_t fp_nh_key_index(uint64_t k) { return (int32_t)((uint32_t)(k >> 32) ^ 0x80000000u); }
static inline uint32_t fp_nh_home(uint64_t k, uint32_t slots)
{
    uint64_t h = k * 0x9e3779b97f4a7c15ULL;
    return (uint32_t)(h >> 32) & (slots - 1);
}

/* A series' native block, or NULL when the family has none. */
static inline fp_word *fp_nh_block(const fp_family *f, fp_series *se)
{
    return f->nh_slots ? &se->cells[f->nbuckets + 1] : NULL;
}

/* Counts a non-zero magnitude in its bucket (the slow part of observe). */
void fp_nh_put(const fp_family *f, fp_word *block, int negative, double a);

/* One native observation (v not NaN): no lock, no allocation. */
static inline void fp_nh_observe(const fp_family *f, fp_word *block, double v)
{
    double a = fabs(v);
    if (a <= f->nh_zero_threshold)
        fp_add(&block[FP_NH_ZERO], 1);
    else
        fp_nh_put(f, block, v < 0, a);
}

/* ---- the walker's view ------------------------------------------------ */

/* A run of consecutive buckets: `offset` from the end of the previous span
 * (from index 0 for the first), `length` buckets. */
typedef struct {
    int32_t offset;
    uint32_t length;
} fp_nh_span;

/* One native histogram as the protobuf format carries it: bucket counts
 * as deltas from the previous bucket's (the first from 0), in spans; gaps
 * of one or two empty buckets are kept inside a span, as client_golang
 * writes them. */
typedef struct {
    int32_t schema;
    double zero_threshold;
    uint64_t zero_count;
    uint64_t count;             /* zero_count + every bucket */
    double sum;
    uint32_t npos_spans, nneg_spans, npos, nneg;
    const fp_nh_span *pos_spans, *neg_spans;
    const int64_t *pos_deltas, *neg_deltas;
} fp_native;

/* Scratch for reading native blocks, reused across the series of a walk. */
typedef struct {
    void *entries;              /* read from the table */
    fp_nh_span *spans;
    int64_t *deltas;
    size_t cap;                 /* entries (and spans, deltas) it holds */
} fp_nh_scratch;

void fp_nh_scratch_free(fp_nh_scratch *sc);

/* Reads a series' native buckets into `out` (pointing into `sc`), with the
 * family's bucket limit applied.  `sum` is the series' sum.  FP_OK or
 * FP_ENOHEAP. */
int fp_nh_read(const fp_family *f, const fp_series *se, double sum, fp_nh_scratch *sc, fp_native *out);

/* The check of a series' native block: NULL, or what is wrong. */
const char *fp_nh_check(const fp_family *f, const fp_series *se, int quiescent);

#endif
