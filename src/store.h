/* store.h: the metrics store.
 *
 * One arena holds everything: a header, the family table, the series hash
 * table and every family and series record.  Records refer to each other by
 * offsets from the arena's base, never by pointers, so the same arena can be
 * mapped at different addresses by several processes.
 *
 * Who writes what:
 *   - records are filled by their creator before being published with a
 *     release store or CAS; after that only their atomic cells change;
 *   - cells are updated with relaxed atomics (no lock, no allocation);
 *   - the arena only grows, by an atomic bump of header->top.
 *
 * This file and store.c use no Python headers. */
#ifndef FASTPROM_STORE_H
#define FASTPROM_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "atomics.h"

#define FP_MAGIC 0x314d5250545346ULL /* "FSTPRM1" */
/* Bumped whenever the arena layout changes: a store file written by
 * another layout is refused at start-up. */
#define FP_LAYOUT_VERSION 3u

enum fp_type { FP_COUNTER = 1, FP_GAUGE = 2, FP_HISTOGRAM = 3, FP_SUMMARY = 4 };

enum fp_status {
    FP_OK = 0,
    FP_ENOMEM = -1,   /* the arena or the process heap is exhausted */
    FP_EFULL = -2,    /* the series table or family table is full */
    FP_EINVAL = -3,   /* bad argument (caller should have validated) */
    FP_ENOTFOUND = -4,
    FP_EMISMATCH = -5, /* a family of that name exists with another shape */
    FP_EFILE = -6,     /* a store file could not be opened or is unusable */
};

/* How a gauge combines across processes sharing a store (prometheus_client's
 * multiprocess_mode).  Gauges with a mode keep one series per process, with
 * a pid label; the modes differ only in how they are rendered. */
enum fp_mpmode {
    FP_MP_NONE = 0,
    FP_MP_ALL, FP_MP_LIVEALL, FP_MP_SUM, FP_MP_LIVESUM, FP_MP_MAX, FP_MP_LIVEMAX,
    FP_MP_MIN, FP_MP_LIVEMIN, FP_MP_MOSTRECENT, FP_MP_LIVEMOSTRECENT,
};

/* Series states. */
enum { FP_LIVE = 1, FP_REMOVED = 2 };

/* Longest rendered exemplar label set, in bytes ({...} included): 128
 * characters (the OpenMetrics limit) cost at most 5 bytes each once
 * rendered (a one-letter name with its ="" and comma, or a 4-byte UTF-8
 * value character), plus the braces. */
#define FP_EXEMPLAR_TEXT 648

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
    uint32_t pad;
    fp_word spare;          /* a series-sized block kept for the overflow
                               series when series are large (quantiles) */
} fp_family;

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
} fp_family_spec;

typedef struct {
    uint32_t family;
    fp_word32 state;
    uint64_t hash;
    uint32_t text_len;      /* escaped label pairs: a="x",b="y"[,pid="N"] */
    uint32_t base_len;      /* the same without the pid label */
    uint32_t proc;          /* 1 + process table index for per-process series, else 0 */
    uint32_t pad;
    fp_off text;
    fp_word next;           /* next series of the same family */
    fp_word created;        /* double bits, seconds since the epoch */
    fp_word exemplars;      /* fp_exemplar[] block, 0 until first exemplar */
    fp_word cells[];
} fp_series;

/* One exemplar, written under a sequence count.  A writer that finds the
 * slot busy drops its exemplar rather than wait. */
typedef struct {
    fp_word seq;            /* odd while being written; 0 = never written */
    fp_word value;          /* double bits */
    fp_word ts;             /* double bits */
    fp_word len;
    fp_word text[FP_EXEMPLAR_TEXT / 8];
} fp_exemplar;

typedef struct {
    char *base;
    uint64_t size;
    int fd;                 /* the store file, or -1 for a private store */
    uint32_t proc;          /* our process table entry (1-based), 0 if none */
    char *path;             /* the store file's path (malloc'd), or NULL */
} fp_store;

/* Cell layout per type:
 *   counter:   [0] integer part, [1] float part (bits)
 *   gauge:     [0] value (bits)
 *   histogram: [0..nbuckets-1] per-bucket counts (not cumulative), [nbuckets] sum (bits)
 *   summary:   [0] count, [1] sum (bits) */

static inline void *fp_at(const fp_store *s, fp_off off) { return s->base + off; }
static inline fp_header *fp_hdr(const fp_store *s) { return (fp_header *)s->base; }

/* ---- updates: no lock, no allocation -------------------------------- */

static inline void fp_counter_inc_int(fp_series *se, uint64_t n) { fp_add(&se->cells[0], n); }
static inline void fp_counter_inc(fp_series *se, double v) { fp_addd(&se->cells[1], v); }
static inline double fp_counter_value(const fp_series *se)
{
    return (double)fp_load(&se->cells[0]) + fp_loadd(&se->cells[1]);
}

static inline void fp_gauge_set(fp_series *se, double v) { fp_stored(&se->cells[0], v); }
static inline void fp_gauge_add(fp_series *se, double v) { fp_addd(&se->cells[0], v); }
/* Per-process gauges also record when they were last written (mostrecent). */
static inline void fp_gauge_touch(fp_series *se, double now) { fp_stored(&se->cells[1], now); }
static inline double fp_gauge_value(const fp_series *se) { return fp_loadd(&se->cells[0]); }

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

static inline void fp_summary_observe(fp_series *se, double v)
{
    fp_add(&se->cells[0], 1);
    fp_addd(&se->cells[1], v);
}

/* ---- creation, lookup, reading (store.c) --------------------------- */

/* Maps an anonymous arena of `size` bytes (pages are used on demand).
 * Returns FP_OK or FP_ENOMEM. */
int fp_store_open(fp_store *s, uint64_t size);

/* Maps the store file at `path`, shared with every process that maps it,
 * creating it (sparse, `size` bytes) if it does not exist, and registers
 * this process in it.  On failure returns FP_EFILE with a message for the
 * user in err. */
int fp_store_open_file(fp_store *s, const char *path, uint64_t size, char *err, size_t errlen);
void fp_store_close(fp_store *s);

/* Registers the calling process.  After a fork (`forked` set) it also
 * reopens the file: a flock belongs to an open file description, which a
 * forked child would otherwise share with its parent and siblings.
 * 0, FP_EFULL (process table full) or FP_EFILE. */
int fp_store_attach_process(fp_store *s, int forked);

/* 1 if process table entry `proc` (1-based) is a live process, else 0. */
int fp_proc_alive(const fp_store *s, uint32_t proc);

/* Adds a family (in a shared store: finds the one every process declares).
 * 0 or a negative fp_status. */
int fp_family_add(fp_store *s, const fp_family_spec *spec, uint32_t *out_index);

fp_family *fp_family_get(const fp_store *s, uint32_t index);
uint32_t fp_family_count(const fp_store *s);

/* Finds the live series of `family` with these label values, creating it
 * when `create` is set.  Values are raw UTF-8.  Creating allocates from the
 * arena and a scratch buffer from the heap but takes no lock: concurrent
 * creators of one series agree on a single record.  In a shared store a
 * gauge with a multiprocess mode gets this process's own series.  With
 * `overflow` set the arena's reserve may be used.  0 or fp_status. */
int fp_series_get(fp_store *s, uint32_t family, const char *const *values, const size_t *lens,
                  int create, int overflow, fp_series **out);

/* Marks one series (or every series of the family) removed: it is no longer
 * rendered or found, and a later lookup creates a fresh one. */
int fp_series_remove(fp_store *s, uint32_t family, const char *const *values, const size_t *lens);
void fp_family_clear(fp_store *s, uint32_t family);

static inline fp_series *fp_series_at(const fp_store *s, fp_off off) { return off ? (fp_series *)fp_at(s, off) : NULL; }

/* Records an exemplar for cell `slot` (0 for counters, the bucket for
 * histograms).  `text` is the rendered label set ({a="b"}).  Allocates the
 * series' exemplar block from the arena the first time (an atomic bump, no
 * lock).  Returns 0, or FP_ENOMEM/FP_EINVAL (then nothing is recorded). */
int fp_exemplar_put(fp_store *s, fp_series *se, uint32_t nslots, uint32_t slot,
                    const char *text, size_t len, double value, double ts);

/* Copies a consistent exemplar into the caller's buffer (FP_EXEMPLAR_TEXT
 * bytes).  Returns 1 if one was read, 0 if none (or it kept changing). */
int fp_exemplar_get(const fp_store *s, const fp_series *se, uint32_t slot,
                    char *text, size_t *len, double *value, double *ts);

/* Escapes a label value (\\, \", \n) into dst; returns the length written.
 * dst must hold 2 * len bytes. */
size_t fp_escape_value(char *dst, const char *src, size_t len);

/* Wall clock in seconds; fp_clock_freeze(t) pins it for tests (0 thaws).
 * fp_now_coarse is cheaper, to a few milliseconds. */
double fp_now(void);
double fp_now_coarse(void);
void fp_clock_freeze(double t);

#endif
