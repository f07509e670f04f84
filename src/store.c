/* store.c: arena, families, series lookup and creation, exemplars. */
#define _DEFAULT_SOURCE
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define FP_ALIGN 8u
#define FP_MAX_FAMILIES 16384u

static fp_word frozen_clock; /* double bits; 0 = real clock */

double fp_now(void)
{
    uint64_t f = fp_load(&frozen_clock);
    if (f)
        return fp_bitsd(f);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fp_clock_freeze(double t) { fp_put(&frozen_clock, t == 0.0 ? 0 : fp_dbits(t)); }

/* Bumps the arena pointer.  Returns an offset to zeroed memory, or 0 when
 * the request does not fit (the pointer then stays put, so a refused large
 * request leaves room for smaller ones).  Lock-free: a CAS loop. */
static fp_off arena_alloc(fp_store *s, uint64_t size)
{
    fp_header *h = fp_hdr(s);
    if (size > h->size)
        return 0;
    size = (size + FP_ALIGN - 1) & ~(uint64_t)(FP_ALIGN - 1);
    uint64_t off = fp_load(&h->top);
    do {
        if (off > h->size || size > h->size - off)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&h->top, &off, off + size, memory_order_relaxed,
                                                    memory_order_relaxed));
    return off;
}

static fp_off arena_strdup(fp_store *s, const char *p, size_t len)
{
    fp_off off = arena_alloc(s, len + 1);
    if (off) {
        memcpy(fp_at(s, off), p, len);
        ((char *)fp_at(s, off))[len] = '\0';
    }
    return off;
}

int fp_store_open(fp_store *s, uint64_t size)
{
    if (size < (1u << 20))
        size = 1u << 20;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return FP_ENOMEM;
    s->base = base;
    s->size = size;
    fp_header *h = base;
    h->magic = FP_MAGIC;
    h->version = FP_LAYOUT_VERSION;
    h->size = size;
    h->max_families = FP_MAX_FAMILIES;
    /* One slot per 256 arena bytes, a power of two; at most 3/4 used. */
    uint64_t nslots = 1024;
    while (nslots * 256 < size)
        nslots <<= 1;
    h->nslots = nslots;
    h->max_series = nslots / 4 * 3;
    fp_put(&h->top, (sizeof(fp_header) + FP_ALIGN - 1) & ~(uint64_t)(FP_ALIGN - 1));
    h->families = arena_alloc(s, sizeof(fp_word) * FP_MAX_FAMILIES);
    h->slots = arena_alloc(s, sizeof(fp_word) * nslots);
    if (!h->families || !h->slots) {
        munmap(base, size);
        s->base = NULL;
        return FP_ENOMEM;
    }
    return FP_OK;
}

void fp_store_close(fp_store *s)
{
    if (s->base)
        munmap(s->base, s->size);
    s->base = NULL;
}

uint32_t fp_family_count(const fp_store *s) { return fp_load32_acq(&fp_hdr(s)->nfamilies); }

fp_family *fp_family_get(const fp_store *s, uint32_t index)
{
    fp_header *h = fp_hdr(s);
    if (index >= fp_family_count(s))
        return NULL;
    fp_off off = fp_load_acq(&((fp_word *)fp_at(s, h->families))[index]);
    return off ? fp_at(s, off) : NULL;
}

int fp_family_add(fp_store *s, uint32_t type, const char *name, size_t name_len,
                  const char *help, size_t help_len, const char *unit, size_t unit_len,
                  const char *const *labelnames, const size_t *labelname_lens, uint32_t nlabels,
                  const double *buckets, uint32_t nbuckets, uint32_t *out_index)
{
    fp_header *h = fp_hdr(s);
    uint32_t ncells;
    switch (type) {
    case FP_COUNTER: ncells = 2; break;
    case FP_GAUGE: ncells = 1; break;
    case FP_SUMMARY: ncells = 2; break;
    case FP_HISTOGRAM:
        if (nbuckets < 1 || !buckets)
            return FP_EINVAL;
        ncells = nbuckets + 1;
        break;
    default: return FP_EINVAL;
    }
    if (name_len > UINT32_MAX || help_len > UINT32_MAX || unit_len > UINT32_MAX)
        return FP_EINVAL;

    fp_off off = arena_alloc(s, sizeof(fp_family));
    if (!off)
        return FP_ENOMEM;
    fp_family *f = fp_at(s, off);
    f->type = type;
    f->nlabels = nlabels;
    f->nbuckets = type == FP_HISTOGRAM ? nbuckets : 0;
    f->ncells = ncells;
    f->name_len = (uint32_t)name_len;
    f->help_len = (uint32_t)help_len;
    f->unit_len = (uint32_t)unit_len;
    f->name = arena_strdup(s, name, name_len);
    f->help = arena_strdup(s, help, help_len);
    f->unit = arena_strdup(s, unit, unit_len);
    if (!f->name || !f->help || !f->unit)
        return FP_ENOMEM;
    if (nlabels) {
        f->labelnames = arena_alloc(s, sizeof(fp_off) * nlabels);
        if (!f->labelnames)
            return FP_ENOMEM;
        fp_off *ln = fp_at(s, f->labelnames);
        for (uint32_t i = 0; i < nlabels; i++)
            if (!(ln[i] = arena_strdup(s, labelnames[i], labelname_lens[i])))
                return FP_ENOMEM;
    }
    if (f->nbuckets) {
        f->buckets = arena_alloc(s, sizeof(double) * nbuckets);
        if (!f->buckets)
            return FP_ENOMEM;
        memcpy(fp_at(s, f->buckets), buckets, sizeof(double) * nbuckets);
    }

    /* Claim an index, fill its slot, then publish the count.  Family
     * creation is serialised by the caller (it is rare); the release on
     * the count makes the record visible to renderers. */
    uint32_t idx = fp_load32_acq(&h->nfamilies);
    if (idx >= h->max_families)
        return FP_EFULL;
    f->index = idx;
    fp_store_rel(&((fp_word *)fp_at(s, h->families))[idx], off);
    fp_store32_rel(&h->nfamilies, idx + 1);
    *out_index = idx;
    return FP_OK;
}

size_t fp_escape_value(char *dst, const char *src, size_t len)
{
    char *d = dst;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '\\' || c == '"') {
            *d++ = '\\';
            *d++ = c;
        } else if (c == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else {
            *d++ = c;
        }
    }
    return (size_t)(d - dst);
}

/* Renders a="x",b="y" for the family's label names into a heap buffer. */
static char *label_text(const fp_store *s, const fp_family *f, const char *const *values,
                        const size_t *lens, size_t *out_len)
{
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    size_t cap = 1;
    for (uint32_t i = 0; i < f->nlabels; i++)
        cap += strlen(fp_at(s, ln[i])) + 2 * lens[i] + 4;
    char *buf = malloc(cap), *p = buf;
    if (!buf)
        return NULL;
    for (uint32_t i = 0; i < f->nlabels; i++) {
        const char *n = fp_at(s, ln[i]);
        size_t nl = strlen(n);
        if (i)
            *p++ = ',';
        memcpy(p, n, nl);
        p += nl;
        *p++ = '=';
        *p++ = '"';
        p += fp_escape_value(p, values[i], lens[i]);
        *p++ = '"';
    }
    *out_len = (size_t)(p - buf);
    return buf;
}

static uint64_t hash_key(uint32_t family, const char *p, size_t len)
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

static int same_key(const fp_store *s, const fp_series *se, uint32_t family, uint64_t hash,
                    const char *text, size_t len)
{
    return se->hash == hash && se->family == family && se->text_len == len &&
           memcmp(fp_at(s, se->text), text, len) == 0;
}

/* Appends a published series to its family's list (lock-free queue append:
 * link after the tail, then swing the tail; anyone may help swing it). */
static void family_append(fp_store *s, fp_family *f, fp_off off)
{
    for (;;) {
        uint64_t tail = fp_load_acq(&f->tail);
        if (!tail) {
            uint64_t zero = 0;
            if (fp_cas_rel(&f->head, &zero, off)) {
                zero = 0;
                fp_cas_rel(&f->tail, &zero, off);
                return;
            }
            /* Someone else set head; help it become the tail. */
            zero = 0;
            fp_cas_rel(&f->tail, &zero, fp_load_acq(&f->head));
            continue;
        }
        fp_series *t = fp_at(s, tail);
        uint64_t next = fp_load_acq(&t->next);
        if (next) {
            fp_cas_rel(&f->tail, &tail, next);
            continue;
        }
        if (fp_cas_rel(&t->next, &next, off)) {
            fp_cas_rel(&f->tail, &tail, off);
            return;
        }
    }
}

int fp_series_get(fp_store *s, uint32_t family, const char *const *values, const size_t *lens,
                  int create, fp_series **out)
{
    fp_header *h = fp_hdr(s);
    fp_family *f = fp_family_get(s, family);
    if (!f)
        return FP_EINVAL;
    size_t len;
    char *text = label_text(s, f, values, lens, &len);
    if (!text)
        return FP_ENOMEM;
    if (len > UINT32_MAX) {
        free(text);
        return FP_EINVAL;
    }
    uint64_t hash = hash_key(family, text, len);
    fp_word *slots = fp_at(s, h->slots);
    uint64_t mask = h->nslots - 1;
    fp_off mine = 0; /* our candidate record, built at most once */
    int rc = FP_ENOTFOUND;

    for (uint64_t i = hash & mask, probes = 0; probes < h->nslots; i = (i + 1) & mask, probes++) {
        uint64_t cur = fp_load_acq(&slots[i]);
        if (cur) {
            fp_series *se = fp_at(s, cur);
            if (fp_load32_acq(&se->state) == FP_LIVE && same_key(s, se, family, hash, text, len)) {
                *out = se;
                rc = FP_OK;
                break;
            }
            continue;
        }
        if (!create)
            break;
        if (!mine) {
            if (fp_load(&h->nseries) >= h->max_series) {
                rc = FP_EFULL;
                break;
            }
            mine = arena_alloc(s, sizeof(fp_series) + sizeof(fp_word) * f->ncells);
            fp_off t = mine ? arena_strdup(s, text, len) : 0;
            if (!t) {
                rc = FP_ENOMEM;
                break;
            }
            fp_series *se = fp_at(s, mine);
            se->family = family;
            se->hash = hash;
            se->text = t;
            se->text_len = (uint32_t)len;
            fp_stored(&se->created, fp_now());
            atomic_init(&se->state, FP_LIVE);
        }
        /* Publish; if another creator took this slot first, look at what
         * it put there (it may be the same key) and probe on. */
        if (fp_cas_rel(&slots[i], &cur, mine)) {
            fp_add(&h->nseries, 1);
            family_append(s, f, mine);
            *out = fp_at(s, mine);
            rc = FP_OK;
            break;
        }
        fp_series *se = fp_at(s, cur);
        if (fp_load32_acq(&se->state) == FP_LIVE && same_key(s, se, family, hash, text, len)) {
            *out = se; /* our record stays unused in the arena */
            rc = FP_OK;
            break;
        }
    }
    if (rc == FP_ENOTFOUND && create)
        rc = FP_EFULL;
    free(text);
    return rc;
}

int fp_series_remove(fp_store *s, uint32_t family, const char *const *values, const size_t *lens)
{
    fp_series *se;
    int rc = fp_series_get(s, family, values, lens, 0, &se);
    if (rc == FP_OK)
        fp_store32_rel(&se->state, FP_REMOVED);
    return rc;
}

void fp_family_clear(fp_store *s, uint32_t family)
{
    fp_family *f = fp_family_get(s, family);
    if (!f)
        return;
    for (fp_off off = fp_load_acq(&f->head); off;) {
        fp_series *se = fp_at(s, off);
        fp_store32_rel(&se->state, FP_REMOVED);
        off = fp_load_acq(&se->next);
    }
}

int fp_exemplar_put(fp_store *s, fp_series *se, uint32_t nslots, uint32_t slot,
                    const char *text, size_t len, double value, double ts)
{
    if (len > FP_EXEMPLAR_TEXT || slot >= nslots)
        return FP_EINVAL;
    uint64_t block = fp_load_acq(&se->exemplars);
    if (!block) {
        fp_off fresh = arena_alloc(s, sizeof(fp_exemplar) * nslots);
        if (!fresh)
            return FP_ENOMEM;
        uint64_t zero = 0;
        block = fp_cas_rel(&se->exemplars, &zero, fresh) ? fresh : zero;
    }
    fp_exemplar *e = (fp_exemplar *)fp_at(s, block) + slot;

    /* Claim the slot by making its count odd; if another writer holds it,
     * drop this exemplar (exemplars are samples; waiting is not worth it).
     * No standalone fences (ThreadSanitizer cannot follow them): the claim
     * is an acquire, so our words land after the previous writer's; each
     * word is a release store, so a reader that loads one (acquire) also
     * sees the odd count when it re-reads seq, and retries. */
    uint64_t seq = fp_load(&e->seq);
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(&e->seq, &seq, seq + 1,
                                                              memory_order_acquire, memory_order_relaxed))
        return FP_OK;
    fp_store_rel(&e->value, fp_dbits(value));
    fp_store_rel(&e->ts, fp_dbits(ts));
    fp_store_rel(&e->len, len);
    uint64_t word;
    for (size_t i = 0; i < len; i += 8) {
        word = 0;
        memcpy(&word, text + i, len - i < 8 ? len - i : 8);
        fp_store_rel(&e->text[i / 8], word);
    }
    fp_store_rel(&e->seq, seq + 2);
    return FP_OK;
}

int fp_exemplar_get(const fp_store *s, const fp_series *se, uint32_t slot,
                    char *text, size_t *len, double *value, double *ts)
{
    uint64_t block = fp_load_acq(&se->exemplars);
    if (!block)
        return 0;
    fp_exemplar *e = (fp_exemplar *)fp_at(s, block) + slot;
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t s1 = fp_load_acq(&e->seq);
        if (s1 == 0)
            return 0;
        if (s1 & 1)
            continue;
        /* Acquire loads pair with the writer's release stores (see
         * fp_exemplar_put): seeing any newer word implies seeing newer seq. */
        *value = fp_bitsd(fp_load_acq(&e->value));
        *ts = fp_bitsd(fp_load_acq(&e->ts));
        uint64_t n = fp_load_acq(&e->len);
        if (n > FP_EXEMPLAR_TEXT)
            continue;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t word = fp_load_acq(&e->text[i / 8]);
            memcpy(text + i, &word, n - i < 8 ? n - i : 8);
        }
        if (fp_load(&e->seq) == s1) {
            *len = n;
            return 1;
        }
    }
    return 0;
}
