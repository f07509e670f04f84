/* records.h: the layout of a store's arena, shared by every process that
 * maps it.  Types and constants only; no functions but layout arithmetic.
 *
 * One arena holds a header, the family table, the series hash table, the
 * process table and every family, series and exemplar record.  Records
 * refer to each other by offsets from the arena's base, never by pointers,
 * so the same arena can be mapped at different addresses by several
 * processes.
 *
 * Who writes what:
 *   - a record is filled by its creator before it is published (a release
 *     store or CAS of its offset); after that only its atomic cells change;
 *   - cells are updated with relaxed atomics (no lock, no allocation);
 *   - the arena only grows, by an atomic bump of header->top. */
#ifndef FASTPROM_RECORDS_H
#define FASTPROM_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "quantile.h"

#define FP_MAGIC 0x314d5250545346ULL /* "FSTPRM1" */
/* Bumped whenever the arena layout changes: a store file written by
 * another layout is refused at start-up. */
#define FP_LAYOUT_VERSION 8u

/* ---- limits (exported to Python by the binding) ---------------------- */
#define FP_ALIGN 8u
#define FP_STORE_MIN (1ull << 20)
#define FP_STORE_MAX (1ull << 40)
#define FP_STORE_DEFAULT (256ull << 20)
#define FP_MAX_FAMILIES 16384u
#define FP_MAX_PROCS 4096u
#define FP_MAX_LABELS 4096u
#define FP_MAX_BUCKETS (1u << 20)
/* Exemplar label sets: at most 128 characters (OpenMetrics).  Rendered,
 * each character costs at most 5 bytes (a one-letter name with its ="" and
 * comma, or a 4-byte UTF-8 value character), plus the braces. */
#define FP_EXEMPLAR_MAX_CHARS 128u
#define FP_EXEMPLAR_TEXT 648u

enum fp_type { FP_COUNTER = 1, FP_GAUGE = 2, FP_HISTOGRAM = 3, FP_SUMMARY = 4 };

enum fp_status {
    FP_OK = 0,
    FP_ENOMEM = -1,    /* the arena is exhausted */
    FP_EFULL = -2,     /* the series table or family table is full */
    FP_EINVAL = -3,    /* bad argument (the binding validates first) */
    FP_ENOTFOUND = -4,
    FP_EMISMATCH = -5, /* a family of that name exists with another shape */
    FP_EFILE = -6,     /* a store file could not be opened or is unusable */
    FP_ENOHEAP = -7,   /* the process heap is exhausted (a scratch buffer) */
};

/* How a gauge combines across processes sharing a store (prometheus_client's
 * multiprocess_mode).  Gauges with a mode keep one series per process, with
 * a pid label; the modes differ only in how they are rendered. */
enum fp_mpmode {
    FP_MP_NONE = 0,
    FP_MP_ALL, FP_MP_LIVEALL, FP_MP_SUM, FP_MP_LIVESUM, FP_MP_MAX, FP_MP_LIVEMAX,
    FP_MP_MIN, FP_MP_LIVEMIN, FP_MP_MOSTRECENT, FP_MP_LIVEMOSTRECENT,
    FP_MP_COUNT
};

/* prometheus_client's names of the modes, indexed by enum fp_mpmode. */
#define FP_MP_NAMES {"", "all", "liveall", "sum", "livesum", "max", "livemax", "min", "livemin", \
                     "mostrecent", "livemostrecent"}

static inline int fp_mp_live_only(uint32_t m)
{
    return m == FP_MP_LIVEALL || m == FP_MP_LIVESUM || m == FP_MP_LIVEMAX || m == FP_MP_LIVEMIN ||
           m == FP_MP_LIVEMOSTRECENT;
}

/* Series states.  BORN: a reused record published under its new key but
 * not yet shown (lookups find it, renders skip it); it turns LIVE next. */
enum { FP_LIVE = 1, FP_REMOVED = 2, FP_BORN = 3 };

/* A series' linked word: FP_LINKED once it is in its family's list; before
 * that, the process table entry of whoever claimed to link it (the
 * creator, or a repairer when the creator died) with FP_LINKING set, or 0. */
#define FP_LINKED 2u
#define FP_LINKING 1u
#define FP_LINK_CLAIM(proc) (((uint32_t)(proc) << 2) | FP_LINKING)
#define FP_LINK_OWNER(word) ((word) >> 2)
/* A series' creator word: 1 + the creating process's table entry, with
 * this bit set for an overflow series. */
#define FP_CREATOR_OVERFLOW 0x80000000u
/* The slot of a series record that is in no table slot (being reused). */
#define FP_NO_SLOT UINT32_MAX

/* A series table slot whose record moved elsewhere (it was reused for
 * another key): probes go past it, a new key may take it. */
#define FP_TOMB ((fp_off)1)

/* Removed series are reused after a grace period: a removal in epoch k
 * (FP_REUSE_EPOCH seconds long) joins limbo[k % 3], whose epoch word says
 * the latest epoch it holds; a creation in epoch k + 2 or later moves that
 * limbo to the family's ready stack, so a record is reused at least
 * FP_REUSE_EPOCH seconds after its removal. */
#define FP_REUSE_EPOCH 2.0

/* Lock-free stacks of series records: an offset / 8 in the low 40 bits and
 * a tag, bumped by every change, in the high 24 (no ABA). */
#define FP_STACK_OFF(w) (((w) & ((1ull << 40) - 1)) << 3)
#define FP_STACK_TAG(w) ((w) >> 40)
#define FP_STACK(off, tag) (((off) >> 3) | ((uint64_t)(tag) << 40))

typedef uint64_t fp_off;

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t max_families;
    uint64_t size;          /* arena bytes */
    uint64_t nslots;        /* series hash slots, a power of two */
    uint64_t max_series;    /* refuse new series past this (load factor) */
    fp_off families;        /* fp_word[max_families]: family record offsets */
    fp_off slots;           /* fp_word[nslots]: series record offsets */
    fp_word top;            /* bump pointer */
    fp_word nseries;        /* series created (dedup losers excluded) */
    fp_word32 nfamilies;
    uint32_t max_procs;
    uint64_t reserve;       /* arena bytes kept for overflow series */
    uint64_t max_series_overflow;
    fp_off procs;           /* fp_proc[max_procs] */
    fp_word nprocs;
    fp_word overflowed;     /* label lookups sent to an overflow series */
    fp_word committed;      /* shared store: file bytes known to be backed by disk (or tmpfs) pages */
    fp_word tombstones;     /* series table slots holding FP_TOMB */
    /* Bumped by every series record given a key (made, or reused): the
     * new count is the record's generation.  A walk shows only records of
     * a generation up to the count at its start, so a label set removed
     * and made again meanwhile is not shown twice. */
    fp_word births;
    /* Bumped by every remove() and clear(), in any process: a cached
     * series pointer taken at an older count must be re-checked before
     * use.  On a cache line of its own, as every update path reads it. */
    uint64_t pad_[7];
    fp_word removals;
    uint64_t pad2_[7];
} fp_header;

/* A process attached to the store: its pid and start time (clock ticks
 * since boot, from /proc), so a reused pid is not taken for it. */
typedef struct {
    fp_word pid;
    fp_word start;
} fp_proc;

typedef struct {
    uint32_t type;
    uint32_t index;
    uint32_t nlabels;
    uint32_t nbuckets;      /* histogram: upper bounds including +Inf */
    uint32_t ncells;        /* 64-bit cells per series */
    uint32_t name_len, help_len, unit_len;
    fp_off name, help, unit; /* NUL-terminated strings */
    fp_off labelnames;      /* fp_off[nlabels] of NUL-terminated strings */
    fp_off buckets;         /* double[nbuckets] */
    fp_word head, tail;     /* series list in creation order */
    uint32_t mpmode;        /* enum fp_mpmode; used only in a shared store */
    uint32_t nquantiles;    /* summary: quantiles reported (0: count and sum only) */
    fp_off quantiles;       /* double[nquantiles], ascending */
    double max_age;         /* summary: window length, seconds */
    uint32_t age_buckets;   /* summary: epochs in the window */
    int32_t nh_schema;      /* native histogram: the finest schema (see native.h) */
    fp_word spare;          /* a series-sized block kept for the overflow
                               series when series are large (quantiles) */
    fp_word limbo[3];       /* removed series, by removal epoch (FP_STACK words) */
    fp_word limbo_ep[3];    /* the latest removal epoch each limbo may hold */
    fp_word ready;          /* removed series old enough to reuse (FP_STACK word) */
    fp_word drained;        /* the last epoch a creation looked at the limbos in */
    fp_word nlive;          /* live series but overflow series (a crash while creating one may leave it high) */
    fp_word limited;        /* label lookups sent to the overflow series by a series limit */
    uint32_t nh_slots;      /* native histogram: bucket table slots per series; 0: no native buckets */
    uint32_t nh_max_buckets;/* native histogram: the bucket limit */
    double nh_zero_threshold, nh_max_zero_threshold;
    double nh_min_reset;    /* native histogram: as declared (compared, never acted on: the store never resets) */
    uint64_t sum;           /* checksum of the fields above that never change */
} fp_family;

typedef struct {
    /* Reusing a removed record rewrites its key fields while others may
     * still read them (then they see the state or the generation change
     * and drop what they read), so those fields are atomic words: every
     * access is an atomic one, a plain load or store on x86. */
    uint32_t family;
    fp_word32 state;        /* FP_LIVE, FP_REMOVED or FP_BORN */
    fp_word hash;           /* of the family index and the label text */
    /* The label pairs, escaped and sorted by name as every exposition
     * writes them: a="x",b="y".  A per-process series has its pid="N" pair
     * among them, and `base` is the same text without it. */
    fp_word32 text_len;
    fp_word32 base_len;
    fp_word32 proc;         /* per-process series: 1 + process table index, else 0 */
    /* Where a histogram's le or a summary's quantile pair goes among the
     * sorted pairs: 0, text_len, or the offset of the comma after the last
     * pair whose name sorts before it. */
    fp_word32 split;
    fp_word32 creator;      /* 1 + process table index of the process that made it;
                               FP_CREATOR_OVERFLOW set: an overflow series (not counted
                               in its family's nlive) */
    fp_word32 slot;         /* its series table slot, or FP_NO_SLOT */
    fp_word32 linked;       /* FP_LINKED, or who is linking it into its family's list */
    fp_word32 text_cap;     /* bytes at `text` (and at `base`) that a reuse may rewrite */
    fp_word text;
    fp_word base;           /* = text, but for per-process series */
    fp_word sum;            /* checksum of the key fields */
    fp_word next;           /* next series of the same family */
    fp_word free_next;      /* next in a limbo or ready stack */
    fp_word created;        /* double bits, seconds since the epoch */
    fp_word exemplars;      /* fp_exemplar[] block, 0 until first exemplar */
    fp_word gen;            /* the header's births count when it was given its key */
    fp_word cells[];
} fp_series;

static inline int fp_series_overflow(const fp_series *se)
{
    return (fp_load32_acq(&se->creator) & FP_CREATOR_OVERFLOW) != 0;
}

/* An exemplar's sequence word: the busy bit, the writer's process table
 * entry (1-based, 0 for a private store), and a count. */
#define FP_EX_BUSY 1ull
#define FP_EX_OWNER(seq) ((uint32_t)(((seq) >> 1) & 0x1fffu))
#define FP_EX_COUNT 0x4000ull

/* One exemplar, written under a sequence count.  A writer that finds the
 * slot busy drops its exemplar rather than wait, unless the writer holding
 * it has died (its process table entry is in the count): then it takes it. */
typedef struct {
    fp_word seq;            /* bit 0: being written; bits 1-13: the writer's process
                               table entry; above: a count; 0 = never written */
    fp_word value;          /* double bits */
    fp_word ts;             /* double bits */
    fp_word len;
    fp_word sum;            /* checksum of value, ts, len and text: a damaged exemplar is dropped */
    fp_word text[FP_EXEMPLAR_TEXT / 8];
} fp_exemplar;

/* Cell layout per type:
 *   counter:   [0] value (bits)
 *   gauge:     [0] value (bits), [1] when last written (bits; per-process gauges)
 *   histogram: [0..nbuckets-1] per-bucket counts (not cumulative), [nbuckets] sum (bits),
 *              then with native buckets their block (fp_nh_cells(nh_slots), see native.h)
 *   summary:   [0] count, [1] sum (bits), then with quantiles the sketch
 *              (FP_Q_CELLS(age_buckets) cells, see quantile.h)
 * Returns the cell count, or 0 for a shape that is not allowed. */
static inline uint32_t fp_cells_for(uint32_t type, uint32_t nbuckets, uint32_t nquantiles, uint32_t age_buckets)
{
    switch (type) {
    case FP_COUNTER: return 1;
    case FP_GAUGE: return 2;
    case FP_HISTOGRAM: return nbuckets >= 1 && nbuckets <= FP_MAX_BUCKETS ? nbuckets + 1 : 0;
    case FP_SUMMARY:
        if (!nquantiles)
            return 2;
        if (nquantiles > FP_Q_MAX_QUANTILES || age_buckets < 1 || age_buckets > FP_Q_MAX_AGE_BUCKETS)
            return 0;
        return 2 + FP_Q_CELLS(age_buckets);
    default: return 0;
    }
}

/* The hash of a series key (family index and label text): its home slot
 * in the series table is hash & (nslots - 1). */
static inline uint64_t fp_series_hash(uint32_t family, const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ ((uint64_t)family * 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

/* A checksum over n bytes, continuing from h (start with 0). */
static inline uint64_t fp_checksum(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    h ^= 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 29);
}

/* Exemplar slots per series: one per bucket for histograms, else one. */
static inline uint32_t fp_exemplar_slots(const fp_family *f)
{
    return f->type == FP_HISTOGRAM ? f->nbuckets : 1;
}

#endif
