/* check.c: the store's full consistency check (declared in arena.h).
 *
 * A store file is checked before anything is read through its offsets, by
 * every process that opens it, while others may be creating series: every
 * offset must lie in the allocated part of the arena, no two records may
 * overlap, the records that never change must match their checksums, label
 * text must be well-formed, and every list and stack must end.  What a
 * checksum cannot cover is the cells (values change all the time): a value
 * damaged at rest is reported as it is.  Debug builds also run the check
 * with `quiescent` set, when the counts must agree too. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "labels.h"
#include "native.h"

/* The allocated part of the arena, read afresh: records published since
 * the last read are within the new top. */
static uint64_t top_of(const fp_store *s)
{
    uint64_t top = fp_load(&fp_hdr(s)->top);
    return top > s->size ? s->size : top;
}

/* 1 if [off, off + len) lies within the arena's allocated part, aligned. */
static int in_arena(const fp_store *s, uint64_t off, uint64_t len)
{
    uint64_t top = top_of(s);
    return off >= sizeof(fp_header) && off <= top && len <= top - off && (off & (FP_ALIGN - 1)) == 0;
}

/* 1 if `len` bytes and a NUL start at off inside the arena (NULs inside
 * are allowed: label values and help text may hold them). */
static int bytes_ok(const fp_store *s, uint64_t off, uint64_t len)
{
    uint64_t top = top_of(s);
    return off >= sizeof(fp_header) && off < top && len < top - off && ((const char *)fp_at(s, off))[len] == '\0';
}

/* The same, and no NUL before the end. */
static int string_ok(const fp_store *s, uint64_t off, uint64_t len)
{
    return bytes_ok(s, off, len) && !memchr(fp_at(s, off), '\0', (size_t)len);
}

/* The length of the NUL-terminated string at off, or -1 if it runs out of the arena. */
static int64_t string_len(const fp_store *s, uint64_t off)
{
    uint64_t top = top_of(s);
    if (off < sizeof(fp_header) || off >= top)
        return -1;
    const char *p = fp_at(s, off), *z = memchr(p, '\0', (size_t)(top - off));
    return z ? z - p : -1;
}

uint64_t fp_family_checksum(const fp_store *s, const fp_family *f)
{
    uint32_t fixed[10] = {f->type, f->index, f->nlabels, f->nbuckets, f->ncells, f->name_len, f->help_len, f->unit_len,
                          f->mpmode, f->nquantiles};
    uint64_t h = fp_checksum(0, fixed, sizeof fixed);
    h = fp_checksum(h, &f->max_age, sizeof f->max_age);
    h = fp_checksum(h, &f->age_buckets, sizeof f->age_buckets);
    int32_t nh[3] = {f->nh_schema, (int32_t)f->nh_slots, (int32_t)f->nh_max_buckets};
    double nhd[3] = {f->nh_zero_threshold, f->nh_max_zero_threshold, f->nh_min_reset};
    h = fp_checksum(h, nh, sizeof nh);
    h = fp_checksum(h, nhd, sizeof nhd);
    h = fp_checksum(h, fp_at(s, f->name), f->name_len);
    h = fp_checksum(h, fp_at(s, f->help), f->help_len);
    h = fp_checksum(h, fp_at(s, f->unit), f->unit_len);
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    for (uint32_t i = 0; i < f->nlabels; i++) {
        const char *n = fp_at(s, ln[i]);
        h = fp_checksum(h, n, strlen(n) + 1);
    }
    if (f->nbuckets)
        h = fp_checksum(h, fp_at(s, f->buckets), 8ull * f->nbuckets);
    if (f->nquantiles)
        h = fp_checksum(h, fp_at(s, f->quantiles), 8ull * f->nquantiles);
    return h;
}

/* Checksums n bytes of label text, read a word at a time (see arena.h). */
static uint64_t text_checksum(const fp_store *s, uint64_t h, fp_off off, size_t n)
{
    char buf[256];
    for (size_t i = 0; i < n; i += sizeof buf) {
        size_t k = n - i < sizeof buf ? n - i : sizeof buf;
        fp_text_read(s, off + i, k, buf);
        h = fp_checksum(h, buf, k);
    }
    return h;
}

uint64_t fp_series_checksum(const fp_store *s, const fp_series *se)
{
    uint64_t fixed[8] = {se->family, se->text_len, se->base_len, se->proc, se->split, se->creator, se->text_cap,
                         se->hash};
    uint64_t h = fp_checksum(0, fixed, sizeof fixed);
    fp_off text = se->text, base = se->base;
    h = text_checksum(s, h, text, se->text_len);
    if (base != text)
        h = text_checksum(s, h, base, se->base_len);
    return h;
}

/* ---- the records --------------------------------------------------- */

static const char *check_family(const fp_store *s, const fp_family *f, uint32_t i)
{
    uint32_t cells = fp_cells_for(f->type, f->nbuckets, f->nquantiles, f->age_buckets);
    if (f->nh_slots) {
        if (f->type != FP_HISTOGRAM || f->nh_max_buckets < 1 || f->nh_max_buckets > FP_NH_MAX_BUCKETS ||
            f->nh_slots != fp_nh_slots_for(f->nh_max_buckets) || f->nh_schema < FP_NH_SCHEMA_MIN ||
            f->nh_schema > FP_NH_SCHEMA_MAX || !(f->nh_zero_threshold >= 0 && f->nh_zero_threshold < INFINITY) ||
            !(f->nh_max_zero_threshold >= 0 && f->nh_max_zero_threshold < INFINITY) ||
            !(f->nh_min_reset >= 0 && f->nh_min_reset < INFINITY))
            return "corrupt (a native histogram's settings are damaged)";
        cells += fp_nh_cells(f->nh_slots);
    } else if (f->nh_schema || f->nh_max_buckets || f->nh_zero_threshold != 0 || f->nh_max_zero_threshold != 0 ||
               f->nh_min_reset != 0) {
        return "corrupt (a metric family is damaged)";
    }
    if (f->index != i || cells == 0 || f->ncells != cells || f->mpmode >= FP_MP_COUNT ||
        (f->mpmode != FP_MP_NONE && f->type != FP_GAUGE) || f->nlabels > FP_MAX_LABELS)
        return "corrupt (a metric family is damaged)";
    if (!string_ok(s, f->name, f->name_len) || !bytes_ok(s, f->help, f->help_len) ||
        !string_ok(s, f->unit, f->unit_len) || memchr(fp_at(s, f->name), '\n', f->name_len) ||
        memchr(fp_at(s, f->unit), '\n', f->unit_len)) /* a unit is written as it is */
        return "corrupt (a metric family's name, help or unit is damaged)";
    uint64_t spare = fp_load(&f->spare);
    if (spare && !in_arena(s, spare, sizeof(fp_series) + 8ull * cells))
        return "corrupt (a metric family is damaged)";
    if (f->type == FP_HISTOGRAM) {
        if (!in_arena(s, f->buckets, 8ull * f->nbuckets))
            return "corrupt (a histogram's buckets are damaged)";
        const double *b = fp_at(s, f->buckets);
        for (uint32_t j = 0; j < f->nbuckets; j++)
            if (isnan(b[j]) || (j && !(b[j] > b[j - 1])))
                return "corrupt (a histogram's buckets are damaged)";
        if (!isinf(b[f->nbuckets - 1]) || b[f->nbuckets - 1] < 0)
            return "corrupt (a histogram's buckets are damaged)";
    } else if (f->nbuckets) {
        return "corrupt (a metric family is damaged)";
    }
    if (f->type == FP_SUMMARY && f->nquantiles) {
        if (!in_arena(s, f->quantiles, 8ull * f->nquantiles) || !(f->max_age <= FP_Q_MAX_AGE) ||
            !(f->max_age / f->age_buckets >= FP_Q_MIN_PERIOD))
            return "corrupt (a summary's quantiles are damaged)";
        const double *q = fp_at(s, f->quantiles);
        for (uint32_t j = 0; j < f->nquantiles; j++)
            if (!(q[j] >= 0 && q[j] <= 1) || (j && !(q[j] > q[j - 1])))
                return "corrupt (a summary's quantiles are damaged)";
    } else if (f->nquantiles) {
        return "corrupt (a metric family is damaged)";
    }
    if (f->nlabels && !in_arena(s, f->labelnames, 8ull * f->nlabels))
        return "corrupt (a label name is damaged)";
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    int per_process = f->mpmode != FP_MP_NONE && fp_shared(s);
    for (uint32_t j = 0; j < f->nlabels; j++) {
        int64_t n = string_len(s, ln[j]);
        if (n < 0 || !fp_valid_label_name(fp_at(s, ln[j]), (size_t)n))
            return "corrupt (a label name is damaged)";
        /* Each once, and no pid where the store adds its own: creation
         * refuses both, and no series of such a family passes check_labels. */
        if (per_process && !strcmp(fp_at(s, ln[j]), "pid"))
            return "corrupt (a label name is damaged)";
        for (uint32_t k = 0; k < j; k++)
            if (!strcmp(fp_at(s, ln[k]), fp_at(s, ln[j])))
                return "corrupt (a label name is damaged)";
    }
    if (f->sum != fp_family_checksum(s, f))
        return "corrupt (a metric family does not match its checksum)";
    return NULL;
}

/* 1 if the name is one of the family's label names. */
static int family_label(const fp_store *s, const fp_family *f, const char *name, size_t nlen)
{
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    for (uint32_t j = 0; j < f->nlabels; j++) {
        const char *want = fp_at(s, ln[j]);
        if (strlen(want) == nlen && memcmp(want, name, nlen) == 0)
            return 1;
    }
    return 0;
}

static int before(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c < 0 || (c == 0 && al < bl);
}

/* A series' label text must be its family's label names, sorted, each
 * once (and a pid for a per-process series, whose base text is the same
 * without it), with well-formed escaped values; its split must be where
 * the family's le or quantile pair goes. */
static const char *check_labels(const fp_store *s, const fp_family *f, const fp_series *se, int per_process,
                                const char *text, const char *base, fp_buf *scratch)
{
    static const char *const bad = "corrupt (a series' labels are damaged)";
    const char *extra = f->type == FP_HISTOGRAM ? "le" : f->type == FP_SUMMARY ? "quantile" : NULL;
    size_t pos = 0, nlen, prev_len = 0, split = se->text_len, last_end = 0;
    const char *name, *prev = NULL;
    uint32_t j = 0, pids = 0;
    int rc;
    while ((rc = fp_label_next(text, se->text_len, &pos, &name, &nlen, scratch)) == 1) {
        if (prev && !before(prev, prev_len, name, nlen))
            return bad;
        if (per_process && nlen == 3 && memcmp(name, "pid", 3) == 0) {
            if (scratch->len == 0 || scratch->len > 20)
                return bad;
            for (size_t k = 0; k < scratch->len; k++)
                if (scratch->p[k] < '0' || scratch->p[k] > '9')
                    return bad;
            pids++;
        } else if (!family_label(s, f, name, nlen)) {
            return bad;
        } else {
            j++;
        }
        if (extra && split == se->text_len && before(extra, strlen(extra), name, nlen))
            split = last_end;
        prev = name;
        prev_len = nlen;
        last_end = pos;
    }
    if (rc < 0 || j != f->nlabels || pids != (uint32_t)per_process || (extra && se->split != split) ||
        (!extra && se->split != 0))
        return bad;
    if (!per_process)
        return se->base == se->text && se->base_len == se->text_len ? NULL : bad;
    /* The base text: the same pairs without the pid. */
    size_t bpos = 0, tpos = 0, bn, tn, bvl, tvl;
    const char *bname, *tname, *bval, *tval;
    for (;;) {
        int br = fp_label_span(base, se->base_len, &bpos, &bname, &bn, &bval, &bvl);
        int tr = fp_label_span(text, se->text_len, &tpos, &tname, &tn, &tval, &tvl);
        if (tr == 1 && tn == 3 && memcmp(tname, "pid", 3) == 0)
            tr = fp_label_span(text, se->text_len, &tpos, &tname, &tn, &tval, &tvl);
        if (br != tr || br < 0)
            return bad;
        if (br == 0)
            return NULL;
        if (bn != tn || bvl != tvl || memcmp(bname, tname, bn) || memcmp(bval, tval, bvl))
            return bad;
    }
}

/* The parts of a series record that writers and renderers follow: in
 * bounds, whatever its state (a removed record's text and exemplars are
 * written when it is reused).  A removed record may be being rewritten for
 * reuse, so only a live one's contents are checked (check_live). */
static const char *check_record(const fp_store *s, uint64_t off, uint32_t nfam, const fp_family **fam)
{
    const fp_header *h = fp_hdr(s);
    if (!in_arena(s, off, sizeof(fp_series)))
        return "corrupt (a series is out of place)";
    const fp_series *se = fp_at(s, off);
    if (se->family >= nfam)
        return "corrupt (a series is out of place)";
    const fp_family *f = fp_at(s, fp_load_acq(&((fp_word *)fp_at(s, h->families))[se->family]));
    uint64_t size = sizeof(fp_series) + 8ull * f->ncells;
    uint32_t state = fp_load32_acq(&se->state);
    uint64_t next = fp_load(&se->next), fnext = fp_load(&se->free_next);
    /* The generation, then the count: a record given its key meanwhile has
     * a generation the count has reached (one above would hide it from
     * every walk). */
    uint64_t gen = fp_load_acq(&se->gen);
    if (!in_arena(s, off, size) || (state != FP_LIVE && state != FP_REMOVED && state != FP_BORN) ||
        gen > fp_load_acq(&h->births) ||
        (next && !in_arena(s, next, sizeof(fp_series))) ||
        (FP_STACK_OFF(fnext) && !in_arena(s, FP_STACK_OFF(fnext), sizeof(fp_series))) ||
        (se->slot >= h->nslots && se->slot != FP_NO_SLOT) ||
        (fp_load32_acq(&se->linked) != FP_LINKED && (fp_load32_acq(&se->linked) & 2)) ||
        FP_LINK_OWNER(fp_load32_acq(&se->linked)) > h->max_procs)
        return "corrupt (a series is damaged)";
    /* The capacity first: a reuse that moves the text stores the new
     * offsets before the larger capacity, so this order never pairs an old
     * text with a new capacity. */
    uint32_t cap = se->text_cap, tl = se->text_len, bl = se->base_len;
    fp_off text = se->text, base = se->base;
    uint64_t ex = fp_load(&se->exemplars);
    if (!in_arena(s, text, (uint64_t)cap + 1) || !in_arena(s, base, (uint64_t)cap + 1) ||
        (ex && !in_arena(s, ex, sizeof(fp_exemplar) * (uint64_t)fp_exemplar_slots(f))) ||
        se->proc > h->max_procs || (se->creator & ~FP_CREATOR_OVERFLOW) > h->max_procs ||
        (state == FP_LIVE && (bl > tl || tl > cap)))
        return "corrupt (a series is damaged)";
    *fam = f;
    return NULL;
}

/* A live record's contents (check_record has checked where they are). */
static const char *check_live(const fp_store *s, uint64_t off, const fp_family *f, fp_buf *scratch, fp_buf *copy)
{
    const fp_series *se = fp_at(s, off);
    uint32_t tl = se->text_len, bl = se->base_len;
    fp_off text = se->text, base = se->base;
    if (bl > tl || tl > se->text_cap || se->split > tl)
        return "corrupt (a series is damaged)";
    /* The texts, copied out a word at a time, each ending with its NUL. */
    copy->len = 0;
    if (!fp_buf_reserve(copy, 2 * (size_t)tl + 4))
        return "not checkable (out of memory)";
    char *t = copy->p, *b = copy->p + tl + 2;
    fp_text_read(s, text, (size_t)tl + 1, t);
    fp_text_read(s, base, (size_t)bl + 1, b);
    if (t[tl] != '\0' || b[bl] != '\0')
        return "corrupt (a series is damaged)";
    if (se->sum != fp_series_checksum(s, se))
        return "corrupt (a series does not match its checksum)";
    if (se->hash != fp_series_hash(se->family, t, tl))
        return "corrupt (a series' labels do not match its key)";
    const char *why;
    if (f->nh_slots && (why = fp_nh_check(f, se, 1)))
        return why;
    return check_labels(s, f, se, f->mpmode != FP_MP_NONE && fp_shared(s), t, b, scratch);
}

/* ---- overlaps ------------------------------------------------------ */

typedef struct {
    uint64_t start, end;
} span;

typedef struct {
    span *v;
    size_t n, cap;
    int oom;
} spans;

static void add_span(spans *sp, uint64_t start, uint64_t len)
{
    if (sp->oom || !len)
        return;
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? 2 * sp->cap : 1024;
        span *v = realloc(sp->v, cap * sizeof *v);
        if (!v) {
            sp->oom = 1;
            return;
        }
        sp->v = v;
        sp->cap = cap;
    }
    sp->v[sp->n].start = start;
    sp->v[sp->n++].end = start + len;
}

static int by_start(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

static void family_spans(spans *sp, const fp_store *s, uint64_t off, const fp_family *f)
{
    add_span(sp, off, sizeof(fp_family));
    add_span(sp, f->name, f->name_len + 1ull);
    add_span(sp, f->help, f->help_len + 1ull);
    add_span(sp, f->unit, f->unit_len + 1ull);
    if (f->nlabels) {
        add_span(sp, f->labelnames, 8ull * f->nlabels);
        const fp_off *ln = fp_at(s, f->labelnames);
        for (uint32_t j = 0; j < f->nlabels; j++)
            add_span(sp, ln[j], strlen(fp_at(s, ln[j])) + 1ull);
    }
    if (f->nbuckets)
        add_span(sp, f->buckets, 8ull * f->nbuckets);
    if (f->nquantiles)
        add_span(sp, f->quantiles, 8ull * f->nquantiles);
    uint64_t spare = fp_load(&f->spare);
    if (spare)
        add_span(sp, spare, sizeof(fp_series) + 8ull * f->ncells);
}

static void series_spans(spans *sp, uint64_t off, const fp_series *se, const fp_family *f)
{
    add_span(sp, off, sizeof(fp_series) + 8ull * f->ncells);
    /* A removed record's text keeps its place while it is rewritten for
     * reuse (a longer one goes to a new block; the old one is left). */
    uint32_t cap = se->text_cap;
    add_span(sp, se->text, (uint64_t)cap + 1);
    if (se->base != se->text)
        add_span(sp, se->base, (uint64_t)cap + 1);
    uint64_t ex = fp_load(&se->exemplars);
    if (ex)
        add_span(sp, ex, sizeof(fp_exemplar) * (uint64_t)fp_exemplar_slots(f));
}

/* No two records overlap, and none overlaps the header and tables: the
 * same record reached twice (table and list) gives the same span twice. */
static const char *check_spans(spans *sp, uint64_t first)
{
    if (sp->oom)
        return "not checkable (out of memory)";
    if (sp->n) /* an empty store has none, and qsort's base may not be NULL */
        qsort(sp->v, sp->n, sizeof *sp->v, by_start);
    uint64_t end = first;
    for (size_t i = 0; i < sp->n; i++) {
        if (i && sp->v[i].start == sp->v[i - 1].start && sp->v[i].end == sp->v[i - 1].end)
            continue;
        if (sp->v[i].start < end)
            return "corrupt (two records overlap)";
        end = sp->v[i].end;
    }
    return NULL;
}

/* ---- the check ------------------------------------------------------ */

/* 1 if off is a record of family f's list (members: the list as read,
 * sorted; a record appended since is found by walking the list again). */
static int in_list(const fp_store *s, const fp_family *f, const spans *members, uint64_t off, uint64_t bound)
{
    span key = {off, off + 1};
    if (members->n && bsearch(&key, members->v, members->n, sizeof *members->v, by_start))
        return 1;
    uint64_t steps = 0;
    for (uint64_t o = fp_load_acq(&f->head); o && steps <= bound; steps++) {
        if (o == off)
            return 1;
        if (!in_arena(s, o, sizeof(fp_series)))
            return 0;
        o = fp_load_acq(&((const fp_series *)fp_at(s, o))->next);
    }
    return 0;
}

/* A limbo or ready stack: it ends, and it holds only records of the
 * family's list (a reuse rewrites what it pops). */
static const char *check_stack(const fp_store *s, const fp_family *f, uint64_t word, const spans *members,
                               uint64_t bound)
{
    uint64_t steps = 0;
    for (uint64_t off = FP_STACK_OFF(word); off; steps++) {
        if (steps > bound || !in_list(s, f, members, off, bound))
            return "corrupt (a list of removed series is damaged)";
        off = FP_STACK_OFF(fp_load_acq(&((const fp_series *)fp_at(s, off))->free_next));
    }
    return NULL;
}

static const char *check_header(const fp_store *s, fp_header *want)
{
    const fp_header *h = fp_hdr(s);
    if (fp_load_acq((fp_word *)&h->magic) != FP_MAGIC)
        return "not a fastprom store (or was left half-made)";
    if (h->version != FP_LAYOUT_VERSION)
        return "written by another version of fastprom";
    if (h->size != s->size)
        return "truncated or resized";
    /* The layout a fresh store of this size gets, computed on a scratch header. */
    memset(want, 0, sizeof *want);
    fp_arena_layout(want, s->size);
    if (h->max_families != want->max_families || h->max_procs != want->max_procs || h->nslots != want->nslots ||
        h->max_series != want->max_series || h->max_series_overflow != want->max_series_overflow ||
        h->reserve != want->reserve || h->families != want->families || h->slots != want->slots ||
        h->procs != want->procs)
        return "corrupt (its header does not match its size)";
    if (fp_load(&h->top) < fp_load(&want->top) || fp_load(&h->top) > h->size ||
        fp_load32_acq(&h->nfamilies) > h->max_families)
        return "corrupt (its header is inconsistent)";
    return NULL;
}

const char *fp_store_check(const fp_store *s, int quiescent)
{
    const fp_header *h = fp_hdr(s);
    fp_header want;
    const char *why = check_header(s, &want);
    if (why)
        return why;
    uint32_t nfam = fp_load32_acq(&h->nfamilies);
    const fp_word *families = fp_at(s, h->families);
    spans sp = {NULL, 0, 0, 0};
    fp_buf scratch, copy;
    fp_buf_init(&scratch);
    fp_buf_init(&copy);
    for (uint32_t i = 0; i < nfam && !why; i++) {
        uint64_t off = fp_load_acq(&families[i]);
        if (!in_arena(s, off, sizeof(fp_family))) {
            why = "corrupt (a metric family is out of place)";
            break;
        }
        if (!(why = check_family(s, fp_at(s, off), i)))
            family_spans(&sp, s, off, fp_at(s, off));
    }

    /* Every series in the table: each reachable from its home slot
     * without crossing an empty one, and its own slot recorded. */
    const fp_word *slots = fp_at(s, h->slots);
    uint64_t mask = h->nslots - 1, in_table = 0, tombs = 0;
    spans table = {NULL, 0, 0, 0}; /* quiescent: the table's records, to find the lists' in */
    spans members = {NULL, 0, 0, 0}; /* one family's list, to find its stacks' records in */
    for (uint64_t i = 0; i < h->nslots && !why; i++) {
        uint64_t off = fp_load_acq(&slots[i]);
        if (!off)
            continue;
        if (off == FP_TOMB) {
            tombs++;
            continue;
        }
        in_table++;
        if (quiescent)
            add_span(&table, off, 1);
        const fp_family *f;
        if ((why = check_record(s, off, nfam, &f)))
            break;
        const fp_series *se = fp_at(s, off);
        uint32_t state = fp_load32_acq(&se->state);
        if (state != FP_REMOVED && (why = check_live(s, off, f, &scratch, &copy)))
            break;
        if (se->slot != i) {
            /* Unless it moved out meanwhile, to be reused. */
            if (fp_load_acq(&slots[i]) == off)
                why = "corrupt (the series table is damaged)";
            continue;
        }
        for (uint64_t k = se->hash & mask; k != i && state != FP_REMOVED; k = (k + 1) & mask)
            if (!fp_load_acq(&slots[k])) {
                /* Unless the record moved away meanwhile (reused: its slot
                 * became a tombstone, and tombstones before an empty slot
                 * are emptied). */
                if (fp_load_acq(&slots[i]) == off && fp_load32_acq(&se->state) != FP_REMOVED)
                    why = "corrupt (the series table is damaged)";
                break;
            }
        series_spans(&sp, off, se, f);
    }

    /* The family lists end, hold only their family's series, and their
     * tail is one of them; the stacks of removed series end too.
     * Quiescent, every series in the table is in its list, and every live
     * one in a list is in the table (a record that left both, by a crash
     * at the wrong moment, is only space not reused). */
    uint64_t listed = 0;
    if (quiescent && !why && table.n)
        qsort(table.v, table.n, sizeof *table.v, by_start);
    if (table.oom && !why)
        why = "not checkable (out of memory)";
    for (uint32_t i = 0; i < nfam && !why; i++) {
        const fp_family *f = fp_at(s, fp_load_acq(&families[i]));
        /* Quiescent, a list is no longer than the table; otherwise series
         * published since the table was read may have joined it. */
        uint64_t bound = quiescent ? in_table : h->max_series_overflow;
        uint64_t steps = 0, off = fp_load_acq(&f->head), last = 0, tail = fp_load_acq(&f->tail), live = 0;
        int tail_seen = tail == 0;
        members.n = 0;
        for (; off && steps <= bound && !why; steps++) {
            const fp_family *ff;
            if ((why = check_record(s, off, nfam, &ff)))
                break;
            const fp_series *se = fp_at(s, off);
            if (se->family != i) {
                why = "corrupt (a series list is damaged)";
                break;
            }
            if (fp_load32_acq(&se->state) != FP_REMOVED && (why = check_live(s, off, f, &scratch, &copy)))
                break;
            live += fp_load32_acq(&se->state) == FP_LIVE && !fp_series_overflow(se);
            series_spans(&sp, off, se, f);
            add_span(&members, off, 1);
            if (quiescent) {
                span key = {off, off + 1};
                int in = table.n && bsearch(&key, table.v, table.n, sizeof *table.v, by_start) != NULL;
                listed += in;
                if (!in && fp_load32_acq(&se->state) == FP_LIVE) {
                    why = "inconsistent (a live series is in its list but not in the table)";
                    break;
                }
            }
            tail_seen |= off == tail;
            last = off;
            off = fp_load_acq(&se->next);
        }
        if (why)
            break;
        /* A tail that lags is fine while series are being added; one that
         * points outside the list is not. */
        why = off ? "corrupt (a series list loops)"
            : !tail_seen && (quiescent || !in_arena(s, tail, sizeof(fp_series)) ||
                             ((const fp_series *)fp_at(s, tail))->family != i)
                ? "corrupt (a series list's tail is damaged)"
            : quiescent && tail != last ? "inconsistent (a series list's tail is not its last series)"
            /* Counted before what it counts: a crash leaves it high. */
            : quiescent && live > fp_load(&f->nlive) ? "inconsistent (a family's live series count is low)"
                                        : NULL;
        if (!why && members.oom)
            why = "not checkable (out of memory)";
        if (!why && members.n)
            qsort(members.v, members.n, sizeof *members.v, by_start);
        for (int k = 0; k < 3 && !why; k++)
            why = check_stack(s, f, fp_load_acq(&f->limbo[k]), &members, h->max_series_overflow);
        if (!why)
            why = check_stack(s, f, fp_load_acq(&f->ready), &members, h->max_series_overflow);
    }
    if (!why && scratch.oom)
        why = "not checkable (out of memory)";
    if (!why)
        why = check_spans(&sp, fp_load(&want.top));
    /* Counts are made before what they count, so a crash leaves them high. */
    if (!why && quiescent && (in_table > fp_load(&h->nseries) || listed != in_table || tombs > fp_load(&h->tombstones)))
        why = "inconsistent (the series table, the lists and the series count disagree)";
    free(sp.v);
    free(members.v);
    free(table.v);
    fp_buf_free(&scratch);
    fp_buf_free(&copy);
    return why;
}
