/* native.c: native histogram buckets: index arithmetic, the observer's
 * table insert, the walker's read with the bucket limit, the check. */
#include "native.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"

/* 2^(j/256) / 2 for j in [0, 256): schema s uses every 2^(8-s)th entry. */
static double bounds[256];
static fp_word bounds_ready;

void fp_nh_init(void)
{
    if (fp_load_acq(&bounds_ready))
        return;
    for (int j = 0; j < 256; j++)
        bounds[j] = (double)(exp2l((long double)j / 256.0L) / 2.0L);
    fp_store_rel(&bounds_ready, 1);
}

/* floor(a / 2^sh) for any sign. */
static inline int32_t shr_floor(int64_t a, int sh) { return (int32_t)(a >= 0 ? a >> sh : -((-a + (1ll << sh) - 1) >> sh)); }
/* ceil(a / 2^sh) for any sign. */
static inline int32_t shr_ceil(int64_t a, int sh) { return shr_floor(a + (1ll << sh) - 1, sh); }

int32_t fp_nh_index(double a, int32_t schema)
{
    if (isinf(a))
        return fp_nh_index(DBL_MAX, schema) + 1;
    int e;
    double fr = frexp(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
    if (schema > 0) {
        /* The first j whose bound is >= fr: exact at every bound, so a
         * power of two is the upper bound of its bucket. */
        uint32_t n = 1u << schema, step = 1u << (8 - schema), lo = 0, hi = n;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (bounds[mid * step] < fr)
                lo = mid + 1;
            else
                hi = mid;
        }
        return (int32_t)lo + (int32_t)(e - 1) * (int32_t)n;
    }
    /* Schema <= 0: the schema-0 index (e, or e - 1 at an exact power of
     * two), then 2^-schema of those per bucket. */
    int32_t k = fr == 0.5 ? e - 1 : e;
    return shr_ceil(k, -schema);
}

double fp_nh_upper(int32_t index, int32_t schema)
{
    if (schema > 0) {
        int32_t e = shr_floor(index, schema), j = index - e * (int32_t)(1 << schema);
        return ldexp(2.0 * bounds[(uint32_t)j << (8 - schema)], e);
    }
    int64_t e = (int64_t)index * ((int64_t)1 << -schema);
    if (e > 2000)
        return INFINITY;
    if (e < -2000)
        return 0.0;
    return ldexp(1.0, (int)e);
}

void fp_nh_put(const fp_family *f, fp_word *b, int negative, double a)
{
    uint32_t slots = f->nh_slots, limit = fp_nh_fill_limit(slots);
    /* A zero bucket that may widen can take buckets instead of a coarser
     * schema: then only the fill limit coarsens. */
    int widens = f->nh_max_zero_threshold > f->nh_zero_threshold;
    fp_word *table = &b[FP_NH_TABLE];
    for (;;) {
        uint64_t r = fp_load(&b[FP_NH_REDUCTION]);
        int32_t schema = f->nh_schema - (int32_t)r;
        if (schema < FP_NH_SCHEMA_MIN)
            schema = FP_NH_SCHEMA_MIN;
        uint64_t key = fp_nh_key(negative, schema, fp_nh_index(a, schema));
        uint32_t i = fp_nh_home(key, slots);
        int again = 0;
        for (uint32_t n = 0; n < slots && !again; n++, i = (i + 1) & (slots - 1)) {
            fp_word *kw = &table[2 * i];
            uint64_t k = fp_load_acq(kw);
            if (k == 0) {
                /* A new bucket.  Past the limit at this schema, or the
                 * table's fill limit, coarsen first (one step per CAS, so
                 * racing observers coarsen once; the mark after it is a
                 * hint, and a crash before it only coarsens sooner). */
                if (schema > FP_NH_SCHEMA_MIN) {
                    uint64_t used = fp_load(&b[FP_NH_USED]), mark = fp_load(&b[FP_NH_MARK]);
                    if (used >= limit || (used > mark && used - mark > f->nh_max_buckets && !widens)) {
                        uint64_t want = r;
                        if (fp_cas_rel(&b[FP_NH_REDUCTION], &want, r + 1))
                            fp_put(&b[FP_NH_MARK], used);
                        again = 1;
                        break;
                    }
                }
                /* Claim the slot, then count the claim, then the
                 * observation: a crash between leaves an empty bucket
                 * (skipped when read) or `used` one short (the reserve). */
                if (fp_cas_rel(kw, &k, key)) {
                    fp_crash("native-key");
                    fp_add(&b[FP_NH_USED], 1);
                    fp_add(&kw[1], 1);
                    return;
                }
                /* Lost the slot: k is the key that won it. */
            }
            if (k == key) {
                fp_add(&kw[1], 1);
                return;
            }
        }
        if (!again) {
            /* No free slot: the reserve makes this unreachable (it holds
             * every key schema -4 can make).  Counted in the zero bucket
             * rather than lost, so the count stays the buckets' sum. */
            fp_add(&b[FP_NH_ZERO], 1);
            return;
        }
    }
}

/* ---- reading ---------------------------------------------------------- */

typedef struct {
    int32_t negative;
    int32_t index;
    int32_t schema;
    uint64_t count;
} entry;

static int entry_cmp(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    if (a->negative != b->negative)
        return a->negative < b->negative ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Folds every entry to `schema`, sorts them, merges equal buckets. */
static size_t fold(entry *e, size_t n, int32_t schema)
{
    for (size_t i = 0; i < n; i++) {
        if (e[i].schema > schema) {
            e[i].index = shr_ceil(e[i].index, e[i].schema - schema);
            e[i].schema = schema;
        }
    }
    qsort(e, n, sizeof *e, entry_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && e[m - 1].negative == e[i].negative && e[m - 1].index == e[i].index) {
            uint64_t c = e[m - 1].count;
            e[m - 1].count = e[i].count > UINT64_MAX - c ? UINT64_MAX : c + e[i].count;
        } else {
            e[m++] = e[i];
        }
    }
    return m;
}

/* Spans and deltas of one side's sorted entries into sc at *ns, *nd. */
static void side(const entry *e, size_t n, fp_nh_span *spans, int64_t *deltas, uint32_t *ns, uint32_t *nd)
{
    uint32_t s = 0, d = 0;
    uint64_t prev = 0; /* deltas in wrapping arithmetic: a damaged count must not overflow */
    for (size_t i = 0; i < n; i++) {
        int64_t gap = i ? (int64_t)e[i].index - e[i - 1].index - 1 : 0;
        if (!i || gap > 2) {
            spans[s].offset = i ? (int32_t)gap : e[i].index;
            spans[s].length = 0;
            s++;
        } else {
            for (int64_t g = 0; g < gap; g++) {
                deltas[d++] = (int64_t)(0 - prev);
                prev = 0;
                spans[s - 1].length++;
            }
        }
        deltas[d++] = (int64_t)(e[i].count - prev);
        prev = e[i].count;
        spans[s - 1].length++;
    }
    *ns = s;
    *nd = d;
}

void fp_nh_scratch_free(fp_nh_scratch *sc)
{
    free(sc->entries);
    free(sc->spans);
    free(sc->deltas);
    memset(sc, 0, sizeof *sc);
}

int fp_nh_read(const fp_family *f, const fp_series *se, double sum, fp_nh_scratch *sc, fp_native *out)
{
    uint32_t slots = f->nh_slots;
    if (sc->cap < slots) {
        fp_nh_scratch_free(sc);
        sc->entries = malloc(sizeof(entry) * slots);
        sc->spans = malloc(sizeof(fp_nh_span) * slots);
        sc->deltas = malloc(sizeof(int64_t) * 3 * slots);
        if (!sc->entries || !sc->spans || !sc->deltas) {
            fp_nh_scratch_free(sc);
            return FP_ENOHEAP;
        }
        sc->cap = slots;
    }
    const fp_word *b = &se->cells[f->nbuckets + 1];
    const fp_word *table = &b[FP_NH_TABLE];
    entry *e = sc->entries;
    uint64_t zero = fp_load(&b[FP_NH_ZERO]), count = zero;
    uint64_t r = fp_load(&b[FP_NH_REDUCTION]);
    int32_t schema = f->nh_schema - (int32_t)(r > 12 ? 12 : r);
    if (schema < FP_NH_SCHEMA_MIN)
        schema = FP_NH_SCHEMA_MIN;
    size_t n = 0;
    for (uint32_t i = 0; i < slots; i++) {
        uint64_t k = fp_load_acq(&table[2 * i]);
        if (!k)
            continue;
        uint64_t c = fp_load(&table[2 * i + 1]);
        if (!c)
            continue;
        int32_t ks = fp_nh_key_schema(k);
        if (ks < FP_NH_SCHEMA_MIN || ks > f->nh_schema)
            continue; /* damaged (the check reports it) */
        e[n].negative = fp_nh_key_negative(k);
        e[n].index = fp_nh_key_index(k);
        e[n].schema = ks;
        e[n].count = c;
        n++;
        count = c > UINT64_MAX - count ? UINT64_MAX : count + c;
        /* A key made after we read r may be coarser than r says. */
        if (ks < schema)
            schema = ks;
    }
    n = fold(e, n, schema);

    /* The bucket limit, applied as client_golang applies it when a bucket
     * is added: widen the zero bucket while the maximum zero threshold
     * allows, else halve the resolution. */
    double zt = f->nh_zero_threshold;
    while (n > f->nh_max_buckets) {
        if (zt < f->nh_max_zero_threshold && n) {
            /* The bucket nearest zero, on either side. */
            size_t first_neg = 0;
            while (first_neg < n && !e[first_neg].negative)
                first_neg++;
            int32_t cand = INT32_MAX;
            if (first_neg > 0)
                cand = e[0].index;
            if (first_neg < n && e[first_neg].index < cand)
                cand = e[first_neg].index;
            double le = fp_nh_upper(cand, schema);
            if (le <= f->nh_max_zero_threshold) {
                zt = le;
                size_t m = 0;
                for (size_t i = 0; i < n; i++) {
                    if (e[i].index <= cand)
                        zero = e[i].count > UINT64_MAX - zero ? UINT64_MAX : zero + e[i].count;
                    else
                        e[m++] = e[i];
                }
                n = m;
                continue;
            }
        }
        if (schema <= FP_NH_SCHEMA_MIN)
            break;
        schema--;
        n = fold(e, n, schema);
    }

    size_t npos = 0;
    while (npos < n && !e[npos].negative)
        npos++;
    uint32_t ps, pd, ns, nd;
    side(e, npos, sc->spans, sc->deltas, &ps, &pd);
    side(e + npos, n - npos, sc->spans + ps, sc->deltas + pd, &ns, &nd);
    out->schema = schema;
    out->zero_threshold = zt;
    out->zero_count = zero;
    out->count = count;
    out->sum = sum;
    out->npos_spans = ps;
    out->nneg_spans = ns;
    out->npos = pd;
    out->nneg = nd;
    out->pos_spans = sc->spans;
    out->neg_spans = sc->spans + ps;
    out->pos_deltas = sc->deltas;
    out->neg_deltas = sc->deltas + pd;
    return FP_OK;
}

/* ---- the check ---------------------------------------------------------- */

/* The largest index magnitude a key at this schema can have. */
static int64_t index_bound(int32_t schema)
{
    return schema >= 0 ? (1100ll << schema) : (1100ll >> -schema) + 1;
}

const char *fp_nh_check(const fp_family *f, const fp_series *se, int quiescent)
{
    (void)quiescent;
    uint32_t slots = f->nh_slots;
    const fp_word *b = &se->cells[f->nbuckets + 1];
    const fp_word *table = &b[FP_NH_TABLE];
    /* `used` first: it is bumped after its key is claimed, so the keys
     * read after it are at least as many. */
    uint64_t used = fp_load_acq(&b[FP_NH_USED]);
    uint64_t r = fp_load(&b[FP_NH_REDUCTION]);
    if (r > (uint64_t)(f->nh_schema - FP_NH_SCHEMA_MIN))
        return "corrupt (a native histogram's schema is damaged)";
    uint64_t occupied = 0;
    for (uint32_t i = 0; i < slots; i++) {
        uint64_t k = fp_load_acq(&table[2 * i]);
        if (!k)
            continue;
        occupied++;
        int32_t ks = fp_nh_key_schema(k), ki = fp_nh_key_index(k);
        if (!(k & 1u) || (k & 0xc0u) || ((k >> 8) & 0xffffffu) || ks < FP_NH_SCHEMA_MIN || ks > f->nh_schema ||
            ki > index_bound(ks) || ki < -index_bound(ks))
            return "corrupt (a native histogram's bucket key is damaged)";
        /* Reachable: no free slot between its home and it, and no copy of
         * it before. */
        for (uint32_t j = fp_nh_home(k, slots); j != i; j = (j + 1) & (slots - 1)) {
            uint64_t kj = fp_load_acq(&table[2 * j]);
            if (!kj || kj == k)
                return "corrupt (a native histogram's bucket table is damaged)";
        }
    }
    if (used > slots || occupied < used)
        return "corrupt (a native histogram's bucket table is damaged)";
    return NULL;
}
