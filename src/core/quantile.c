/* quantile.c: the sliding-window quantile sketch (see quantile.h). */
#include "quantile.h"

#include <math.h>

#include "clock.h"
#include <pthread.h>

/* The internal accuracy is a little tighter than the stated bound, so
 * that rounding in log() at a bucket edge cannot push an error past it. */
#define ALPHA (FP_Q_ERROR * 0.95)

static struct {
    double lg;              /* log of the bucket growth factor */
    double g;               /* the factor */
    int32_t kmin, kmax;     /* bucket exponents for FP_Q_MIN and FP_Q_MAX */
    uint32_t side;          /* buckets on each side of zero */
    uint32_t n;             /* all buckets: negatives (largest first), zero, positives */
} P;
static pthread_once_t P_once = PTHREAD_ONCE_INIT;

static void init_params(void)
{
    P.g = (1.0 + ALPHA) / (1.0 - ALPHA);
    P.lg = log(P.g);
    P.kmin = (int32_t)ceil(log(FP_Q_MIN) / P.lg);
    P.kmax = (int32_t)ceil(log(FP_Q_MAX) / P.lg);
    P.side = (uint32_t)(P.kmax - P.kmin + 1);
    P.n = 2 * P.side + 1;
}

static void params(void) { pthread_once(&P_once, init_params); }

int fp_q_selftest(void)
{
    params();
    return P.n == FP_Q_BUCKETS;
}

/* Sketch cells: [0] last epoch snapshotted + 1, [1 .. B] cumulative counts,
 * then R = age_buckets + 1 snapshots, each [tag][B counts]; a tag is
 * epoch + 1 when complete, with BUSY set while being copied. */
#define BUSY (1ull << 63)
#define B FP_Q_BUCKETS

static fp_word *cum_of(fp_word *cells) { return &cells[1]; }
static fp_word *snap_of(fp_word *cells, uint32_t r) { return &cells[1 + B + r * (1 + B)]; }

static uint32_t bucket_of(double v)
{
    double a = fabs(v);
    if (a < FP_Q_MIN)
        return P.side;
    /* a <= FP_Q_MAX here unless clamped: log of a finite positive is finite. */
    double kf = ceil(log(a) / P.lg);
    int32_t k = kf < P.kmin ? P.kmin : kf > P.kmax ? P.kmax : (int32_t)kf;
    uint32_t off = (uint32_t)(k - P.kmin);
    return v > 0 ? P.side + 1 + off : P.side - 1 - off;
}

static double value_of(uint32_t i)
{
    if (i == P.side)
        return 0.0;
    int32_t k = P.kmin + (int32_t)(i > P.side ? i - P.side - 1 : P.side - 1 - i);
    double rep = 2.0 * exp(P.lg * k) / (P.g + 1.0);
    return i > P.side ? rep : -rep;
}

static uint64_t epoch_of(const fp_q_window *w, double now)
{
    double period = w->max_age / w->age_buckets;
    double e = floor(now / period);
    /* Clamped well below 2^63 (the BUSY bit) before the conversion. */
    return e > 0 ? (e < 0x1p61 ? (uint64_t)e : (1ull << 61)) : 0;
}

/* Takes the snapshot that starts epoch e, unless someone has.  Lock-free:
 * the slot is claimed by CAS; anyone else goes on without waiting. */
static void snapshot(const fp_q_window *w, fp_word *cells, uint64_t e)
{
    uint32_t r = (uint32_t)(e % (w->age_buckets + 1));
    fp_word *slot = snap_of(cells, r);
    uint64_t tag = fp_load_acq(&slot[0]);
    if ((tag & ~BUSY) >= e + 1 || !fp_cas_rel(&slot[0], &tag, (e + 1) | BUSY))
        return;
    /* The slot held epoch e - R or older: outside every window, so no
     * reader needs it.  Copy the cumulative counts, then publish. */
    fp_word *cum = cum_of(cells);
    for (uint32_t i = 0; i < B; i++)
        fp_put(&slot[1 + i], fp_load(&cum[i]));
    fp_store_rel(&slot[0], e + 1);
    uint64_t last = fp_load(&cells[0]);
    while (last < e + 1 && !fp_cas_rel(&cells[0], &last, e + 1))
        ;
}

void fp_q_observe(const fp_q_window *w, fp_word *cells, double v, double now)
{
    params();
    uint64_t e = epoch_of(w, now);
    if (fp_load_acq(&cells[0]) < e + 1)
        snapshot(w, cells, e);
    fp_add(&cum_of(cells)[bucket_of(v)], 1);
}

void fp_q_values(const fp_q_window *w, fp_word *cells, double now, uint64_t *scratch, double *out, int may_write)
{
    params();
    uint64_t e = epoch_of(w, now);
    uint32_t A = w->age_buckets;
    /* The base: the snapshot at the start of the window's oldest epoch, or
     * failing that the next later one (no snapshot for an epoch means no
     * observation was made in it, so the counts did not change). */
    const fp_word *base = NULL;
    uint64_t tag = 0, total = 0;
    fp_word *cum = cum_of(cells);
    /* Twice at most: if a writer an epoch or more ahead of us (our `now`
     * is from before a pause, or before a boundary) reclaims the base
     * snapshot while we copy it, our window is out of date: start again
     * at the time it is now, so no observation of the current window is
     * taken for expired. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt) {
            double later = fp_now();
            if (later > now)
                e = epoch_of(w, later);
        }
        /* A writer whose clock is ahead (or whose `now` is later than
         * ours) may have started a later epoch: the window follows it. */
        uint64_t last = fp_load_acq(&cells[0]);
        if (last > e + 1)
            e = last - 1;
        if (may_write)
            snapshot(w, cells, e);
        base = NULL;
        uint64_t first = e + 1 > A ? e + 1 - A : 0;
        for (uint64_t x = first; x <= e && !base; x++) {
            const fp_word *slot = snap_of(cells, (uint32_t)(x % (A + 1)));
            if (fp_load_acq(&slot[0]) == x + 1) {
                base = slot + 1;
                tag = x + 1;
            }
        }
        /* One read of the window's counts, so the walk below agrees with its total. */
        total = 0;
        for (uint32_t i = 0; base && i < B; i++) {
            uint64_t c = fp_load(&cum[i]), o = fp_load(&base[i]);
            scratch[i] = c > o ? c - o : 0;
            total += scratch[i];
        }
        if (!base || fp_load_acq(&base[-1]) == tag)
            break;
        base = NULL;
    }
    for (uint32_t j = 0; j < w->nquantiles; j++)
        out[j] = NAN;
    if (!base || total == 0)
        return;
    uint32_t i = 0;
    uint64_t seen = 0;
    for (uint32_t j = 0; j < w->nquantiles; j++) {
        /* The value at 0-based rank floor(q * (n - 1)); quantiles ascend. */
        uint64_t rank = (uint64_t)floor(w->quantiles[j] * (double)(total - 1));
        while (i < B && seen + scratch[i] <= rank)
            seen += scratch[i++];
        out[j] = value_of(i < B ? i : B - 1);
    }
}
