/* atomics.h: the only file that touches <stdatomic.h>.
 *
 * Every cell shared between threads (and, later, processes) is a 64-bit
 * atomic word.  Doubles are kept as their IEEE-754 bit pattern so that
 * they can live in the same words and be updated with compare-and-swap. */
#ifndef FASTPROM_ATOMICS_H
#define FASTPROM_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

typedef _Atomic uint64_t fp_word;
typedef _Atomic uint32_t fp_word32;

static inline uint64_t fp_dbits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
static inline double fp_bitsd(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

/* Relaxed loads and stores: cell values carry no ordering of their own. */
static inline uint64_t fp_load(const fp_word *w) { return atomic_load_explicit(w, memory_order_relaxed); }
static inline void fp_put(fp_word *w, uint64_t v) { atomic_store_explicit(w, v, memory_order_relaxed); }
static inline double fp_loadd(const fp_word *w) { return fp_bitsd(fp_load(w)); }
static inline void fp_stored(fp_word *w, double v) { fp_put(w, fp_dbits(v)); }

/* Publication: a writer fills an object, then stores its offset with
 * release; a reader that loads the offset with acquire sees it filled. */
static inline uint64_t fp_load_acq(const fp_word *w) { return atomic_load_explicit(w, memory_order_acquire); }
static inline void fp_store_rel(fp_word *w, uint64_t v) { atomic_store_explicit(w, v, memory_order_release); }
static inline int fp_cas_rel(fp_word *w, uint64_t *expected, uint64_t desired)
{
    return atomic_compare_exchange_strong_explicit(w, expected, desired,
                                                   memory_order_acq_rel, memory_order_acquire);
}
static inline uint32_t fp_load32_acq(const fp_word32 *w) { return atomic_load_explicit(w, memory_order_acquire); }
static inline void fp_store32_rel(fp_word32 *w, uint32_t v) { atomic_store_explicit(w, v, memory_order_release); }
static inline int fp_cas32(fp_word32 *w, uint32_t *expected, uint32_t desired)
{
    return atomic_compare_exchange_strong_explicit(w, expected, desired,
                                                   memory_order_acq_rel, memory_order_acquire);
}

static inline uint32_t fp_add32_rel(fp_word32 *w, uint32_t v) { return atomic_fetch_add_explicit(w, v, memory_order_release); }

/* Returns the value before the addition. */
static inline uint64_t fp_add(fp_word *w, uint64_t v) { return atomic_fetch_add_explicit(w, v, memory_order_relaxed); }
static inline uint64_t fp_add_acqrel(fp_word *w, uint64_t v) { return atomic_fetch_add_explicit(w, v, memory_order_acq_rel); }

/* Adds a double with a CAS loop on the bit pattern; lock-free, never blocks. */
static inline void fp_addd(fp_word *w, double v)
{
    uint64_t old = fp_load(w);
    while (!atomic_compare_exchange_weak_explicit(w, &old, fp_dbits(fp_bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

#endif
