/* store.c: families, series lookup and creation, removal and reuse, repair. */
#define _DEFAULT_SOURCE
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"
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
    if (sp->type == FP_HISTOGRAM &&
        (f->nh_slots != (sp->nh_factor > 1 ? fp_nh_slots_for(sp->nh_max_buckets) : 0u) ||
         (f->nh_slots && (f->nh_schema != fp_nh_schema_for(sp->nh_factor) || f->nh_max_buckets != sp->nh_max_buckets ||
                          f->nh_zero_threshold != sp->nh_zero_threshold ||
                          f->nh_max_zero_threshold != sp->nh_max_zero_threshold ||
                          f->nh_min_reset != sp->nh_min_reset))))
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
 * writes, every later opener must be able to read.  `per_process`: the
 * store adds a pid label to the family's series. */
static int spec_ok(const fp_family_spec *sp, int per_process)
{
    if (sp->name_len == 0 || sp->name_len > UINT32_MAX || sp->help_len > UINT32_MAX || sp->unit_len > UINT32_MAX ||
        memchr(sp->name, '\0', sp->name_len) || memchr(sp->name, '\n', sp->name_len) ||
        memchr(sp->unit, '\0', sp->unit_len) || memchr(sp->unit, '\n', sp->unit_len) ||
        sp->nlabels > FP_MAX_LABELS || sp->mpmode >= FP_MP_COUNT ||
        (sp->mpmode != FP_MP_NONE && sp->type != FP_GAUGE))
        return 0;
    uint32_t nb = sp->type == FP_HISTOGRAM ? sp->nbuckets : 0, nq = sp->type == FP_SUMMARY ? sp->nquantiles : 0;
    if (fp_cells_for(sp->type, nb, nq, sp->age_buckets) == 0)
        return 0;
    /* Each name once, and no pid where the store adds its own: a series'
     * label text names each label once. */
    for (uint32_t i = 0; i < sp->nlabels; i++) {
        const char *n = sp->labelnames[i];
        size_t l = sp->labelname_lens[i];
        if (!fp_valid_label_name(n, l) || (per_process && l == 3 && !memcmp(n, "pid", 3)))
            return 0;
        for (uint32_t j = 0; j < i; j++)
            if (sp->labelname_lens[j] == l && !memcmp(sp->labelnames[j], n, l))
                return 0;
    }
    if (sp->type == FP_HISTOGRAM) {
        if (!sp->buckets || !isinf(sp->buckets[nb - 1]) || sp->buckets[nb - 1] < 0)
            return 0;
        for (uint32_t i = 0; i < nb; i++)
            if (isnan(sp->buckets[i]) || (i && !(sp->buckets[i] > sp->buckets[i - 1])))
                return 0;
    }
    if (sp->nh_factor > 1) {
        if (sp->type != FP_HISTOGRAM || !(sp->nh_factor < INFINITY) || sp->nh_max_buckets < 1 ||
            sp->nh_max_buckets > FP_NH_MAX_BUCKETS || !(sp->nh_zero_threshold >= 0 && sp->nh_zero_threshold < INFINITY) ||
            !(sp->nh_max_zero_threshold >= 0 && sp->nh_max_zero_threshold < INFINITY) ||
            !(sp->nh_min_reset >= 0 && sp->nh_min_reset < INFINITY))
            return 0;
    } else if (sp->nh_factor != 0) {
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
    if (!spec_ok(sp, fp_shared(s) && sp->mpmode != FP_MP_NONE))
        return FP_EINVAL;
    uint32_t nb = sp->type == FP_HISTOGRAM ? sp->nbuckets : 0, nq = sp->type == FP_SUMMARY ? sp->nquantiles : 0;
    uint32_t ncells = fp_cells_for(sp->type, nb, nq, sp->age_buckets);
    uint32_t nh_slots = sp->nh_factor > 1 ? fp_nh_slots_for(sp->nh_max_buckets) : 0;
    ncells += fp_nh_cells(nh_slots);
    if (nh_slots)
        fp_nh_init();

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
    if (nh_slots) {
        f->nh_slots = nh_slots;
        f->nh_schema = fp_nh_schema_for(sp->nh_factor);
        f->nh_max_buckets = sp->nh_max_buckets;
        f->nh_zero_threshold = sp->nh_zero_threshold;
        f->nh_max_zero_threshold = sp->nh_max_zero_threshold;
        f->nh_min_reset = sp->nh_min_reset;
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
    f->sum = fp_family_checksum(s, f);
    fp_crash("family");
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

/* A series' key as a lookup builds it: its label text, sorted by name. */
typedef struct {
    const char *text;       /* with the pid pair for a per-process series */
    size_t len;
    const char *base;       /* without it */
    size_t base_len;
    size_t split;           /* see fp_series.split */
    uint32_t proc;          /* per-process series: this process's entry, part of the key */
    uint64_t hash;
} series_key;

/* 1 if the record is the key's: LIVE, or BORN (published under its new
 * key, about to be LIVE).  A per-process series belongs to one process
 * table entry: a later process with the same pid gets its own. */
static int is_key(const fp_store *s, const fp_series *se, uint32_t family, const series_key *k)
{
    uint32_t st = fp_load32_acq(&se->state);
    return (st == FP_LIVE || st == FP_BORN) && se->hash == k->hash && se->family == family &&
           se->text_len == k->len && se->proc == k->proc && fp_text_equal(s, se->text, k->text, k->len);
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

/* Links a series into its family's list once: `linked` goes from 0 to our
 * claim, then FP_LINKED.  A creator that dies before that leaves it for
 * fp_store_repair. */
static void link_series(fp_store *s, fp_family *f, fp_series *se, fp_off off)
{
    uint32_t zero = 0;
    if (!fp_cas32(&se->linked, &zero, FP_LINK_CLAIM(s->proc)))
        return;
    fp_crash("series-claimed");
    family_append(s, f, off);
    fp_crash("series-linked");
    fp_store32_rel(&se->linked, FP_LINKED);
}

/* ---- removed series and their reuse ---------------------------------- */

static uint64_t reuse_epoch(void) { return (uint64_t)(fp_now() / FP_REUSE_EPOCH); }

static void stack_push(fp_store *s, fp_word *head, fp_off off)
{
    fp_series *se = fp_at(s, off);
    uint64_t old = fp_load_acq(head), want;
    do {
        fp_put(&se->free_next, FP_STACK(FP_STACK_OFF(old), 0));
        want = FP_STACK(off, FP_STACK_TAG(old) + 1);
    } while (!fp_cas_rel(head, &old, want));
}

static fp_off stack_pop(fp_store *s, fp_word *head)
{
    uint64_t old = fp_load_acq(head);
    for (;;) {
        fp_off off = FP_STACK_OFF(old);
        if (!off)
            return 0;
        /* The tag makes a head that was popped and pushed back meanwhile
         * fail the CAS, so `next` is never stale. */
        uint64_t next = FP_STACK_OFF(fp_load_acq(&((fp_series *)fp_at(s, off))->free_next));
        if (fp_cas_rel(head, &old, FP_STACK(next, FP_STACK_TAG(old) + 1)))
            return off;
    }
}

/* Moves every limbo that holds only removals two or more epochs old to
 * the ready stack; looked at once per epoch. */
static void drain_limbo(fp_store *s, fp_family *f, uint64_t epoch)
{
    uint64_t done = fp_load_acq(&f->drained);
    if (done >= epoch || !fp_cas_rel(&f->drained, &done, epoch))
        return;
    for (int j = 0; j < 3; j++) {
        fp_word *limbo = &f->limbo[j];
        uint64_t old = fp_load_acq(limbo);
        if (!FP_STACK_OFF(old) || fp_load_acq(&f->limbo_ep[j]) + 2 > epoch ||
            !fp_cas_rel(limbo, &old, FP_STACK(0, FP_STACK_TAG(old) + 1)))
            continue;
        /* The chain is ours.  A removal that joined it after we looked at
         * the epoch word set the word first: then it goes back, whole. */
        fp_off off = FP_STACK_OFF(old);
        if (fp_load_acq(&f->limbo_ep[j]) + 2 > epoch) {
            while (off) {
                fp_off next = FP_STACK_OFF(fp_load_acq(&((fp_series *)fp_at(s, off))->free_next));
                stack_push(s, limbo, off);
                off = next;
            }
            continue;
        }
        /* A crash from here to the pushes leaves records unused, never
         * reachable twice. */
        while (off) {
            fp_off next = FP_STACK_OFF(fp_load_acq(&((fp_series *)fp_at(s, off))->free_next));
            stack_push(s, &f->ready, off);
            off = next;
        }
    }
}

/* Writes a key into a record whose text blocks (text, base) are in place. */
static void write_key(fp_store *s, fp_series *se, const series_key *k, int overflow)
{
    fp_text_write(s, se->text, k->text, k->len);
    if (se->base != se->text)
        fp_text_write(s, se->base, k->base, k->base_len);
    se->hash = k->hash;
    se->text_len = (uint32_t)k->len;
    se->base_len = (uint32_t)k->base_len;
    se->split = (uint32_t)k->split;
    se->proc = k->proc;
    se->creator = s->proc | (overflow ? FP_CREATOR_OVERFLOW : 0);
    /* Its generation: after the key, before the record is shown. */
    fp_store_rel(&se->gen, fp_add_acqrel(&fp_hdr(s)->births, 1) + 1);
}

/* Rewrites a removed record (ours alone: popped from the ready stack and
 * moved out of the table) for key k.  0, or FP_ENOMEM (a longer text found
 * no room). */
static int rewrite(fp_store *s, fp_family *f, fp_series *se, const series_key *k, int overflow)
{
    if (k->len > se->text_cap) {
        fp_off t = fp_arena_alloc(s, k->len + 1, overflow);
        fp_off b = !t || k->base == k->text ? t : fp_arena_alloc(s, k->len + 1, overflow);
        if (!b)
            return FP_ENOMEM;
        se->text = t;
        se->base = b;
        se->text_cap = (uint32_t)k->len;
    }
    if (k->base == k->text)
        se->base = se->text;
    write_key(s, se, k, overflow);
    for (uint32_t i = 0; i < f->ncells; i++)
        fp_put(&se->cells[i], 0);
    uint64_t ex = fp_load_acq(&se->exemplars);
    for (uint32_t i = 0; ex && i < fp_exemplar_slots(f); i++)
        fp_store_rel(&((fp_exemplar *)fp_at(s, ex))[i].seq, 0);
    fp_stored(&se->created, floor(fp_now() * 1000.0) / 1000.0);
    se->sum = fp_series_checksum(s, se);
    return FP_OK;
}

/* Empties tombstones that end a probe chain: a tombstone followed by an
 * empty slot is passed by no probe that could find anything beyond it (an
 * empty slot has been empty since the table was made, so no record lies
 * past it whose path runs through here).  A creator that placed a record
 * meanwhile checks its placement afterwards (`placed`). */
static void tomb_cleanup(fp_store *s, uint64_t i)
{
    fp_header *h = fp_hdr(s);
    fp_word *slots = fp_at(s, h->slots);
    uint64_t mask = h->nslots - 1;
    for (int n = 0; n < 64; n++, i = (i - 1) & mask) {
        uint64_t tomb = FP_TOMB;
        if (fp_load_acq(&slots[i]) != FP_TOMB || fp_load_acq(&slots[(i + 1) & mask]) != 0 ||
            !fp_cas_rel(&slots[i], &tomb, 0))
            return;
        fp_add(&h->tombstones, (uint64_t)-1);
    }
}

/* Whether the record just published at slot `at` for key k is the one a
 * lookup finds: 1 yes; 0 another record of the key comes first (*other);
 * -1 an empty slot comes first (a tombstone cleanup raced our placement). */
static int placed(fp_store *s, uint32_t family, const series_key *k, fp_off mine, fp_series **other)
{
    fp_header *h = fp_hdr(s);
    fp_word *slots = fp_at(s, h->slots);
    uint64_t mask = h->nslots - 1;
    for (uint64_t i = k->hash & mask, probes = 0; probes < h->nslots; i = (i + 1) & mask, probes++) {
        uint64_t cur = fp_load_acq(&slots[i]);
        if (cur == mine)
            return 1;
        if (!cur)
            return -1;
        if (cur != FP_TOMB && is_key(s, fp_at(s, cur), family, k)) {
            *other = fp_at(s, cur);
            return 0;
        }
    }
    return -1;
}

/* A removed record of the family that may be reused, moved out of the
 * series table (its slot becomes a tombstone), or 0. */
static fp_off take_removed(fp_store *s, fp_family *f)
{
    drain_limbo(s, f, reuse_epoch());
    fp_off off = stack_pop(s, &f->ready);
    if (!off)
        return 0;
    fp_crash("reuse-popped");
    fp_series *se = fp_at(s, off);
    if (se->slot == FP_NO_SLOT)
        return off; /* out of the table already (a reuse that did not happen) */
    fp_word *slots = fp_at(s, fp_hdr(s)->slots);
    uint64_t cur = off;
    if (se->slot >= fp_hdr(s)->nslots || !fp_cas_rel(&slots[se->slot], &cur, FP_TOMB))
        return 0; /* not where it says it is: leave it unused */
    uint64_t was = se->slot;
    se->slot = FP_NO_SLOT;
    fp_add(&fp_hdr(s)->tombstones, 1);
    fp_crash("reuse-tombstoned");
    tomb_cleanup(s, was);
    return off;
}

/* ---- lookup and creation ----------------------------------------------- */

/* Probes the table for the key; creates the record when `create` is set,
 * in the first slot on the key's path that is empty or a tombstone. */
static int series_probe(fp_store *s, fp_family *f, uint32_t family, const series_key *k, int create, int overflow,
                        fp_series **out)
{
    fp_header *h = fp_hdr(s);
    fp_word *slots = fp_at(s, h->slots);
    uint64_t mask = h->nslots - 1;
    fp_off mine = 0;  /* our candidate record, built at most once */
    int reused = 0;   /* it is a removed record rewritten (BORN until published) */
    for (int round = 0; round < 64; round++) {
        /* The key's path up to the first empty slot: the key, or the
         * first slot we may take (every creator of the key finds the same
         * one, so they meet there). */
        uint64_t i = k->hash & mask, claim = UINT64_MAX, cur = 0;
        uint64_t probes = 0;
        for (; probes < h->nslots; i = (i + 1) & mask, probes++) {
            cur = fp_load_acq(&slots[i]);
            if (cur == FP_TOMB) {
                if (claim == UINT64_MAX)
                    claim = i;
                continue;
            }
            if (!cur) {
                if (claim == UINT64_MAX)
                    claim = i;
                break;
            }
            fp_series *se = fp_at(s, cur);
            if (is_key(s, se, family, k)) {
                if (mine && reused) {
                    /* Someone made it first: our record goes back. */
                    fp_series *ours = fp_at(s, mine);
                    ours->slot = FP_NO_SLOT;
                    fp_store32_rel(&ours->state, FP_REMOVED);
                    stack_push(s, &f->ready, mine);
                }
                *out = se;
                return FP_OK;
            }
        }
        if (!create)
            return FP_ENOTFOUND;
        if (claim == UINT64_MAX)
            return FP_EFULL;
        if (!mine) {
            int taking_empty = fp_load_acq(&slots[claim]) == 0;
            if (taking_empty && fp_load(&h->nseries) + fp_load(&h->tombstones) >=
                                    (overflow ? h->max_series_overflow : h->max_series))
                return FP_EFULL;
            if ((mine = take_removed(s, f))) {
                reused = 1;
                if (rewrite(s, f, fp_at(s, mine), k, overflow) != FP_OK) {
                    stack_push(s, &f->ready, mine);
                    return FP_ENOMEM;
                }
                fp_store32_rel(&((fp_series *)fp_at(s, mine))->state, FP_BORN);
            } else {
                if (fp_load(&h->nseries) >= (overflow ? h->max_series_overflow : h->max_series))
                    return FP_EFULL;
                mine = fp_arena_alloc(s, sizeof(fp_series) + sizeof(fp_word) * f->ncells, overflow);
                if (!mine && overflow) {
                    /* Take the family's spare block, if no one has. */
                    uint64_t spare = fp_load(&f->spare);
                    if (spare && fp_cas_rel(&f->spare, &spare, 0))
                        mine = spare;
                }
                fp_off t = mine ? fp_arena_alloc(s, k->len + 1, overflow) : 0;
                fp_off b = !t || k->base == k->text ? t : fp_arena_alloc(s, k->len + 1, overflow);
                if (!b)
                    return FP_ENOMEM;
                fp_series *se = fp_at(s, mine);
                se->family = family;
                se->text = t;
                se->base = b;
                se->text_cap = (uint32_t)k->len;
                write_key(s, se, k, overflow);
                se->sum = fp_series_checksum(s, se);
                /* To the millisecond: enough for a created timestamp. */
                fp_stored(&se->created, floor(fp_now() * 1000.0) / 1000.0);
                /* A fresh record is in no list yet: it may be LIVE before
                 * it is published. */
                atomic_init(&se->state, FP_LIVE);
            }
        }
        fp_series *se = fp_at(s, mine);
        se->slot = (uint32_t)claim;
        /* Publish.  The order matters across a crash: table, then list.  A
         * record in the table but not in its list is linked by
         * fp_store_repair (the linked flag says which). */
        uint64_t expect = fp_load_acq(&slots[claim]);
        /* A fresh record is counted before it is published (a crash
         * between leaves the count one high: less room, nothing lost). */
        if (!reused)
            fp_add(&h->nseries, 1);
        if (!overflow)
            fp_add(&f->nlive, 1);
        if ((expect == 0 || expect == FP_TOMB) && fp_cas_rel(&slots[claim], &expect, mine)) {
            fp_crash("series-published");
            if (expect == FP_TOMB)
                fp_add(&h->tombstones, (uint64_t)-1);
            fp_series *other = NULL;
            int where = placed(s, family, k, mine, &other);
            if (where != 1) {
                /* Withdrawn: a tombstone where we were (whoever found us
                 * meanwhile re-checks: the removal count moves). */
                uint64_t ours = mine;
                fp_add(&h->tombstones, 1);
                if (!fp_cas_rel(&slots[claim], &ours, FP_TOMB))
                    fp_add(&h->tombstones, (uint64_t)-1);
                se->slot = FP_NO_SLOT;
                if (!overflow)
                    fp_add(&f->nlive, (uint64_t)-1);
                if (!reused) {
                    fp_store32_rel(&se->state, FP_REMOVED); /* in no list: left unused */
                    fp_add(&h->nseries, (uint64_t)-1);
                }
                fp_add_acqrel(&h->removals, 1);
                if (where == 0) {
                    if (reused) {
                        fp_store32_rel(&se->state, FP_REMOVED);
                        stack_push(s, &f->ready, mine);
                    }
                    *out = other;
                    return FP_OK;
                }
                if (!reused)
                    mine = 0; /* a fresh one next time */
                continue;
            }
            if (reused)
                fp_store32_rel(&se->state, FP_LIVE); /* already in its list */
            else
                link_series(s, f, se, mine);
            *out = se;
            return FP_OK;
        }
        if (!reused)
            fp_add(&h->nseries, (uint64_t)-1);
        if (!overflow)
            fp_add(&f->nlive, (uint64_t)-1);
        /* Someone took the slot: look again from the start (it may be the
         * key we want). */
    }
    return FP_EFULL;
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
    /* A child of a fork (from C too, where no Python hook runs) registers
     * itself before it makes its own per-process series. */
    if (per_process && s->attached_gen != fp_fork_generation())
        fp_store_attach_process(s, 1);
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
                      per_process ? s->proc : 0, fp_series_hash(family, text, len)};
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

/* Marks a live series removed, once (a CAS: two removers cannot both
 * queue it), bumps the removal count, and queues the record for reuse. */
static void remove_one(fp_store *s, fp_family *f, fp_series *se, fp_off off)
{
    uint32_t live = FP_LIVE;
    if (!fp_cas32(&se->state, &live, FP_REMOVED))
        return;
    fp_crash("removed");
    if (!fp_series_overflow(se))
        fp_add(&f->nlive, (uint64_t)-1);
    fp_add_acqrel(&fp_hdr(s)->removals, 1);
    /* The limbo's epoch word first, then the push (drain_limbo relies on it). */
    uint64_t epoch = reuse_epoch(), seen = fp_load_acq(&f->limbo_ep[epoch % 3]);
    while (seen < epoch && !fp_cas_rel(&f->limbo_ep[epoch % 3], &seen, epoch))
        ;
    stack_push(s, &f->limbo[epoch % 3], off);
    fp_crash("removed-queued");
}

int fp_series_remove(fp_store *s, uint32_t family, const char *const *values, const size_t *lens)
{
    fp_series *se;
    int rc = fp_series_get(s, family, values, lens, 0, 0, &se);
    if (rc == FP_OK)
        remove_one(s, fp_family_get(s, family), se, (fp_off)((char *)se - s->base));
    return rc;
}

void fp_family_clear(fp_store *s, uint32_t family)
{
    fp_family *f = fp_family_get(s, family);
    if (!f)
        return;
    for (fp_off off = fp_load_acq(&f->head); off;) {
        fp_series *se = fp_at(s, off);
        fp_off next = fp_load_acq(&se->next);
        if (fp_family_per_process(s, f) ? se->proc == s->proc || !s->proc : 1)
            remove_one(s, f, se, off);
        off = next;
    }
    fp_add_acqrel(&fp_hdr(s)->removals, 1);
}

int fp_store_repair(fp_store *s)
{
    fp_header *h = fp_hdr(s);
    fp_word *slots = fp_at(s, h->slots);
    int fixed = 0;
    /* Series in the table whose creator died before linking them: linked. */
    for (uint64_t i = 0; i < h->nslots; i++) {
        uint64_t off = fp_load_acq(&slots[i]);
        if (!off || off == FP_TOMB)
            continue;
        fp_series *se = fp_at(s, off);
        fp_family *f = fp_family_get(s, se->family);
        uint32_t st = fp_load32_acq(&se->state), linked = fp_load32_acq(&se->linked);
        if (!f)
            continue;
        if (st == FP_BORN) { /* published; its reuser died before showing it */
            uint32_t born = FP_BORN;
            fixed += fp_cas32(&se->state, &born, FP_LIVE);
        }
        if (linked == FP_LINKED)
            continue;
        /* Unlinked by a dead creator, or claimed by a dead linker: claim
         * it (one repairer wins), look, and link it if it is not there. */
        uint32_t owner = linked & FP_LINKING ? FP_LINK_OWNER(linked) : se->creator & ~FP_CREATOR_OVERFLOW;
        if (fp_proc_alive(s, owner) || !fp_cas32(&se->linked, &linked, FP_LINK_CLAIM(s->proc)))
            continue;
        int found = 0;
        fp_off last = 0;
        for (fp_off o = fp_load_acq(&f->head); o && !found; o = fp_load_acq(&((fp_series *)fp_at(s, o))->next)) {
            found = o == off;
            last = o;
        }
        if (!found) {
            /* Never in a list (only the claim holder links it), so its next
             * is 0 and no tail names it, unless the file is damaged: made
             * so, or appending it would close a loop. */
            fp_put(&se->next, 0);
            uint64_t self = off;
            fp_cas_rel(&f->tail, &self, last);
            family_append(s, f, off);
            fixed++;
        }
        fp_store32_rel(&se->linked, FP_LINKED);
    }
    return fixed;
}
