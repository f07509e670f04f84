/* store.c: families, series lookup and creation, removal, exemplars. */
#define _DEFAULT_SOURCE
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "labels.h"

uint32_t fp_family_count(const fp_store *s) { return fp_load32_acq(&fp_hdr(s)->nfamilies); }

fp_family *fp_family_get(const fp_store *s, uint32_t index)
{
    fp_header *h = fp_hdr(s);
    if (index >= fp_family_count(s))
        return NULL;
    fp_off off = fp_load_acq(&((fp_word *)fp_at(s, h->families))[index]);
    return off ? fp_at(s, off) : NULL;
}

/* 1 if family f has exactly the shape spec asks for. */
static int same_family(const fp_store *s, const fp_family *f, const fp_family_spec *sp)
{
    if (f->type != sp->type || f->nlabels != sp->nlabels || f->mpmode != sp->mpmode ||
        f->unit_len != sp->unit_len || memcmp(fp_at(s, f->unit), sp->unit, sp->unit_len) != 0)
        return 0;
    if (sp->type == FP_HISTOGRAM &&
        (f->nbuckets != sp->nbuckets ||
         memcmp(fp_at(s, f->buckets), sp->buckets, sizeof(double) * sp->nbuckets) != 0))
        return 0;
    if (sp->type == FP_SUMMARY &&
        (f->nquantiles != sp->nquantiles ||
         (sp->nquantiles && (f->max_age != sp->max_age || f->age_buckets != sp->age_buckets ||
                             memcmp(fp_at(s, f->quantiles), sp->quantiles, sizeof(double) * sp->nquantiles) != 0))))
        return 0;
    const fp_off *ln = sp->nlabels ? fp_at(s, f->labelnames) : NULL;
    for (uint32_t i = 0; i < sp->nlabels; i++) {
        const char *n = fp_at(s, ln[i]);
        if (strlen(n) != sp->labelname_lens[i] || memcmp(n, sp->labelnames[i], sp->labelname_lens[i]) != 0)
            return 0;
    }
    return 1;
}

/* 1 if the spec is a shape the consistency check accepts: what creation
 * writes, every later opener must be able to read. */
static int spec_ok(const fp_family_spec *sp)
{
    if (sp->name_len == 0 || sp->name_len > UINT32_MAX || sp->help_len > UINT32_MAX || sp->unit_len > UINT32_MAX ||
        memchr(sp->name, '\0', sp->name_len) || memchr(sp->unit, '\0', sp->unit_len) || sp->nlabels > FP_MAX_LABELS || sp->mpmode >= FP_MP_COUNT ||
        (sp->mpmode != FP_MP_NONE && sp->type != FP_GAUGE))
        return 0;
    uint32_t nb = sp->type == FP_HISTOGRAM ? sp->nbuckets : 0, nq = sp->type == FP_SUMMARY ? sp->nquantiles : 0;
    if (fp_cells_for(sp->type, nb, nq, sp->age_buckets) == 0)
        return 0;
    for (uint32_t i = 0; i < sp->nlabels; i++)
        if (!fp_valid_label_name(sp->labelnames[i], sp->labelname_lens[i]))
            return 0;
    if (sp->type == FP_HISTOGRAM) {
        if (!sp->buckets || !isinf(sp->buckets[nb - 1]) || sp->buckets[nb - 1] < 0)
            return 0;
        for (uint32_t i = 0; i < nb; i++)
            if (isnan(sp->buckets[i]) || (i && !(sp->buckets[i] > sp->buckets[i - 1])))
                return 0;
    }
    if (nq) {
        if (!sp->quantiles || !(sp->max_age / sp->age_buckets >= FP_Q_MIN_PERIOD) || !(sp->max_age <= FP_Q_MAX_AGE))
            return 0;
        for (uint32_t i = 0; i < nq; i++)
            if (!(sp->quantiles[i] >= 0 && sp->quantiles[i] <= 1) || (i && !(sp->quantiles[i] > sp->quantiles[i - 1])))
                return 0;
    }
    return 1;
}

static int family_add_locked(fp_store *s, const fp_family_spec *sp, uint32_t *out_index)
{
    fp_header *h = fp_hdr(s);
    if (!spec_ok(sp))
        return FP_EINVAL;
    uint32_t nb = sp->type == FP_HISTOGRAM ? sp->nbuckets : 0, nq = sp->type == FP_SUMMARY ? sp->nquantiles : 0;
    uint32_t ncells = fp_cells_for(sp->type, nb, nq, sp->age_buckets);

    /* In a shared store every process declares the same families: the
     * first one adds it, the others find it. */
    if (fp_shared(s)) {
        uint32_t n = fp_family_count(s);
        for (uint32_t i = 0; i < n; i++) {
            fp_family *f = fp_family_get(s, i);
            if (f && f->name_len == sp->name_len && memcmp(fp_at(s, f->name), sp->name, sp->name_len) == 0) {
                if (!same_family(s, f, sp))
                    return FP_EMISMATCH;
                *out_index = i;
                return FP_OK;
            }
        }
    }

    fp_off off = fp_arena_alloc(s, sizeof(fp_family), 0);
    if (!off)
        return FP_ENOMEM;
    fp_family *f = fp_at(s, off);
    f->type = sp->type;
    f->nlabels = sp->nlabels;
    f->nbuckets = nb;
    f->ncells = ncells;
    f->mpmode = fp_shared(s) ? sp->mpmode : FP_MP_NONE;
    f->name_len = (uint32_t)sp->name_len;
    f->help_len = (uint32_t)sp->help_len;
    f->unit_len = (uint32_t)sp->unit_len;
    f->name = fp_arena_strdup(s, sp->name, sp->name_len, 0);
    f->help = fp_arena_strdup(s, sp->help, sp->help_len, 0);
    f->unit = fp_arena_strdup(s, sp->unit, sp->unit_len, 0);
    if (!f->name || !f->help || !f->unit)
        return FP_ENOMEM;
    if (sp->nlabels) {
        f->labelnames = fp_arena_alloc(s, sizeof(fp_off) * sp->nlabels, 0);
        if (!f->labelnames)
            return FP_ENOMEM;
        fp_off *ln = fp_at(s, f->labelnames);
        for (uint32_t i = 0; i < sp->nlabels; i++)
            if (!(ln[i] = fp_arena_strdup(s, sp->labelnames[i], sp->labelname_lens[i], 0)))
                return FP_ENOMEM;
    }
    if (nb) {
        f->buckets = fp_arena_alloc(s, sizeof(double) * nb, 0);
        if (!f->buckets)
            return FP_ENOMEM;
        memcpy(fp_at(s, f->buckets), sp->buckets, sizeof(double) * nb);
    }
    if (nq) {
        f->quantiles = fp_arena_alloc(s, sizeof(double) * nq, 0);
        if (!f->quantiles)
            return FP_ENOMEM;
        memcpy(fp_at(s, f->quantiles), sp->quantiles, sizeof(double) * nq);
        f->nquantiles = nq;
        f->max_age = sp->max_age;
        f->age_buckets = sp->age_buckets;
        /* The arena's reserve holds few series this large: keep one block
         * aside so that the overflow series can always be made. */
        if (sp->nlabels) {
            fp_off spare = fp_arena_alloc(s, sizeof(fp_series) + sizeof(fp_word) * ncells, 0);
            if (!spare)
                return FP_ENOMEM;
            fp_put(&f->spare, spare);
        }
    }

    /* Claim an index, fill its slot, then publish the count.  Family
     * creation is serialised (by the caller in a process, by the file lock
     * across processes); the release on the count makes the record visible
     * to renderers. */
    uint32_t idx = fp_load32_acq(&h->nfamilies);
    if (idx >= h->max_families)
        return FP_EFULL;
    f->index = idx;
    fp_store_rel(&((fp_word *)fp_at(s, h->families))[idx], off);
    fp_store32_rel(&h->nfamilies, idx + 1);
    *out_index = idx;
    return FP_OK;
}

int fp_family_add(fp_store *s, const fp_family_spec *spec, uint32_t *out_index)
{
    if (fp_arena_lock(s) != FP_OK)
        return FP_EFILE;
    int rc = family_add_locked(s, spec, out_index);
    fp_arena_unlock(s);
    return rc;
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

/* A series' key as a lookup builds it: its label text, sorted by name. */
typedef struct {
    const char *text;       /* with the pid pair for a per-process series */
    size_t len;
    const char *base;       /* without it */
    size_t base_len;
    size_t split;           /* see fp_series.split */
    uint32_t proc;
} series_key;

/* Probes the table for the key; creates the record at the first empty slot
 * when `create` is set. */
static int series_probe(fp_store *s, fp_family *f, uint32_t family, const series_key *k, int create, int overflow,
                        fp_series **out)
{
    const char *text = k->text;
    size_t len = k->len;
    fp_header *h = fp_hdr(s);
    uint64_t hash = fp_series_hash(family, text, len);
    fp_word *slots = fp_at(s, h->slots);
    uint64_t mask = h->nslots - 1;
    fp_off mine = 0; /* our candidate record, built at most once */

    for (uint64_t i = hash & mask, probes = 0; probes < h->nslots; i = (i + 1) & mask, probes++) {
        uint64_t cur = fp_load_acq(&slots[i]);
        if (cur) {
            fp_series *se = fp_at(s, cur);
            if (fp_series_live(se) && same_key(s, se, family, hash, text, len)) {
                *out = se;
                return FP_OK;
            }
            continue;
        }
        if (!create)
            return FP_ENOTFOUND;
        if (!mine) {
            if (fp_load(&h->nseries) >= (overflow ? h->max_series_overflow : h->max_series))
                return FP_EFULL;
            mine = fp_arena_alloc(s, sizeof(fp_series) + sizeof(fp_word) * f->ncells, overflow);
            if (!mine && overflow) {
                /* Take the family's spare block, if no one has. */
                uint64_t spare = fp_load(&f->spare);
                if (spare && fp_cas_rel(&f->spare, &spare, 0))
                    mine = spare;
            }
            fp_off t = mine ? fp_arena_strdup(s, text, len, overflow) : 0;
            fp_off bt = !t || k->base == k->text ? t : fp_arena_strdup(s, k->base, k->base_len, overflow);
            if (!bt)
                return FP_ENOMEM;
            fp_series *se = fp_at(s, mine);
            se->family = family;
            se->hash = hash;
            se->text = t;
            se->text_len = (uint32_t)len;
            se->base = bt;
            se->base_len = (uint32_t)k->base_len;
            se->split = (uint32_t)k->split;
            se->proc = k->proc;
            /* To the millisecond: enough for a created timestamp, and it
             * renders without the slow path of float formatting. */
            fp_stored(&se->created, floor(fp_now() * 1000.0) / 1000.0);
            atomic_init(&se->state, FP_LIVE);
        }
        /* Publish; if another creator took this slot first, look at what
         * it put there (it may be the same key) and probe on. */
        if (fp_cas_rel(&slots[i], &cur, mine)) {
            fp_add(&h->nseries, 1);
            family_append(s, f, mine);
            *out = fp_at(s, mine);
            return FP_OK;
        }
        fp_series *se = fp_at(s, cur);
        if (fp_series_live(se) && same_key(s, se, family, hash, text, len)) {
            *out = se; /* our record stays unused in the arena */
            return FP_OK;
        }
    }
    return create ? FP_EFULL : FP_ENOTFOUND;
}

int fp_series_get(fp_store *s, uint32_t family, const char *const *values, const size_t *lens,
                  int create, int overflow, fp_series **out)
{
    fp_family *f = fp_family_get(s, family);
    if (!f)
        return FP_EINVAL;
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    uint32_t n = f->nlabels;
    const char *snames[16];
    size_t snl[16];
    uint32_t sorder[16];
    const char **names = n <= 16 ? snames : malloc(sizeof *names * n);
    size_t *nl = n <= 16 ? snl : malloc(sizeof *nl * n);
    uint32_t *order = n <= 16 ? sorder : malloc(sizeof *order * n);
    char stack[1024], *text = NULL;
    int rc = FP_ENOHEAP;
    if (!names || !nl || !order)
        goto done;
    size_t cap = 64; /* room for ,pid="N" */
    for (uint32_t i = 0; i < n; i++) {
        names[i] = fp_at(s, ln[i]);
        nl[i] = strlen(names[i]);
        cap += nl[i] + 2 * lens[i] + 4;
    }
    fp_sort_names(names, nl, n, order);
    /* Label text on the stack when it is short (the common case), else on
     * the heap: a lookup allocates nothing but what a new record needs.
     * Two texts: with the pid pair (per-process series) and without. */
    text = 2 * cap <= sizeof stack ? stack : malloc(2 * cap);
    if (!text)
        goto done;
    char *base = text + cap;
    int per_process = fp_family_per_process(s, f);
    const char *extra = f->type == FP_HISTOGRAM ? "le" : f->type == FP_SUMMARY ? "quantile" : NULL;
    char pidv[24];
    size_t pidl = per_process ? (size_t)snprintf(pidv, sizeof pidv, "%ld", (long)getpid()) : 0;
    size_t len = 0, blen = 0, split = 0;
    int pid_done = !per_process, split_done = !extra;
    for (uint32_t k = 0; k <= n; k++) {
        const char *nm = k < n ? names[order[k]] : NULL;
        if (!pid_done && (!nm || strcmp("pid", nm) < 0)) {
            if (len)
                text[len++] = ',';
            len += fp_label_pair(text + len, "pid", 3, pidv, pidl);
            pid_done = 1;
        }
        if (!split_done && (!nm || strcmp(extra, nm) < 0)) {
            split = len;
            split_done = 1;
        }
        if (!nm)
            break;
        size_t vi = order[k];
        if (len)
            text[len++] = ',';
        len += fp_label_pair(text + len, nm, nl[vi], values[vi], lens[vi]);
        if (blen)
            base[blen++] = ',';
        blen += fp_label_pair(base + blen, nm, nl[vi], values[vi], lens[vi]);
    }
    if (len > UINT32_MAX) {
        rc = FP_EINVAL;
        goto done;
    }
    series_key key = {text, len, per_process ? base : text, per_process ? blen : len, split,
                      per_process ? s->proc : 0};
    rc = series_probe(s, f, family, &key, create, overflow, out);
done:
    if (text != stack)
        free(text);
    if (names != snames)
        free(names);
    if (nl != snl)
        free(nl);
    if (order != sorder)
        free(order);
    return rc;
}

int fp_series_remove(fp_store *s, uint32_t family, const char *const *values, const size_t *lens)
{
    fp_series *se;
    int rc = fp_series_get(s, family, values, lens, 0, 0, &se);
    if (rc == FP_OK) {
        fp_store32_rel(&se->state, FP_REMOVED);
        fp_add_acqrel(&fp_hdr(s)->removals, 1);
    }
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
    fp_add_acqrel(&fp_hdr(s)->removals, 1);
}

int fp_exemplar_put(fp_store *s, fp_series *se, uint32_t nslots, uint32_t slot,
                    const char *text, size_t len, double value, double ts)
{
    if (len > FP_EXEMPLAR_TEXT || slot >= nslots)
        return FP_EINVAL;
    uint64_t block = fp_load_acq(&se->exemplars);
    if (!block) {
        fp_off fresh = fp_arena_alloc(s, sizeof(fp_exemplar) * nslots, 0);
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
