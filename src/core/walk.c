/* walk.c: the family walker (see walk.h). */
#include "walk.h"

#include <stdlib.h>
#include <string.h>

#include "format.h"

static fp_word created_off; /* 1 when created samples are off */

void fp_set_created(int on) { fp_put(&created_off, on ? 0 : 1); }
int fp_created(void) { return fp_load(&created_off) == 0; }

int fp_point_native(const fp_walk *w, const fp_point *p, const fp_native **out)
{
    *out = NULL;
    if (!w->f->nh_slots || !p->se || !w->nsc)
        return FP_OK;
    int rc = fp_nh_read(w->f, p->se, p->sum, w->nsc, w->native);
    if (rc == FP_OK)
        *out = w->native;
    return rc;
}

int fp_point_exemplar(const fp_walk *w, const fp_point *p, uint32_t slot, char *buf, fp_exemplar_data *out)
{
    if (!p->se || !fp_load_acq(&p->se->exemplars))
        return 0;
    size_t len;
    double value, ts;
    if (!fp_exemplar_get(w->s, p->se, slot, buf, &len, &value, &ts))
        return 0;
    out->text = buf;
    out->len = len;
    out->value = value;
    out->has_ts = 1;
    out->ts = ts;
    out->ts_text = NULL;
    out->ts_len = 0;
    return 1;
}

/* ---- per-process gauges in a shared store ------------------------- */

typedef struct {
    size_t text;            /* label text without the pid label (with it: modes all, liveall): at texts.p + text */
    uint32_t len;
    int used;
    double value, ts;
    uint32_t proc;          /* all, liveall: the process whose value it is */
    const fp_series *se;
} mp_group;

/* Walks a gauge whose series are kept per process: each with its pid label
 * (all, liveall), or combined over processes (sum, max, min, mostrecent and
 * their live variants: dead processes' series left out). */
static int walk_per_process(const fp_walk *w, fp_point_fn fn, void *ctx)
{
    const fp_store *s = w->s;
    const fp_family *f = w->f;
    const fp_header *h = fp_hdr(s);
    uint32_t mode = f->mpmode;
    int live_only = fp_mp_live_only(mode), per_pid = mode == FP_MP_ALL || mode == FP_MP_LIVEALL;
    uint64_t nprocs = fp_load(&h->nprocs);
    if (nprocs > h->max_procs)
        nprocs = h->max_procs;
    /* Liveness per process table entry, looked up once per walk:
     * 0 unknown, 1 alive, 2 dead. */
    unsigned char *alive = calloc(nprocs + 2, 1);
    /* Series given their key after this are left for the next walk. */
    uint64_t births = fp_births(s);
    size_t nseries = 0;
    for (fp_off off = fp_load_acq(&f->head); off; off = fp_load_acq(&((fp_series *)fp_at(s, off))->next))
        nseries++;
    size_t cap = 16;
    while (cap < 2 * nseries)
        cap <<= 1;
    mp_group *groups = calloc(cap, sizeof *groups);
    uint32_t *order = calloc(nseries + 1, sizeof *order);
    size_t ngroups = 0;
    int rc = 0;
    fp_buf texts; /* the groups' label texts, copied out of the store */
    fp_buf_init(&texts);
    if (!alive || !groups || !order) {
        rc = FP_ENOHEAP;
        goto done;
    }
    /* Series added since the count above (other workers, other threads)
     * wait for the next walk: the tables are sized for `nseries`. */
    size_t walked = 0;
    for (fp_off off = fp_load_acq(&f->head); off && walked < nseries;
         off = fp_load_acq(&((fp_series *)fp_at(s, off))->next), walked++) {
        const fp_series *se = fp_at(s, off);
        uint64_t gen = fp_series_gen(se);
        if (gen > births || !fp_series_live(se))
            continue;
        if (live_only && se->proc && se->proc <= nprocs) {
            if (!alive[se->proc])
                alive[se->proc] = fp_proc_alive(s, se->proc) ? 1 : 2;
            if (alive[se->proc] == 2)
                continue;
        }
        double v = fp_gauge_value(se);
        /* Group by the label text without the pid, or (all, liveall) with
         * it: a process that reused a dead one's pid has its own series
         * with the same labels, and the later process's value is shown. */
        uint32_t ll = per_pid ? se->text_len : se->base_len;
        if (!fp_text_fits(s, per_pid ? se->text : se->base, ll, se->text_cap))
            continue;
        size_t at = texts.len;
        if (!fp_buf_reserve(&texts, ll ? ll : 1)) {
            rc = FP_ENOHEAP;
            goto done;
        }
        fp_text_read(s, per_pid ? se->text : se->base, ll, texts.p + at);
        double ts = fp_gauge_written(se);
        /* Reused for another key while we read it: left for the next walk. */
        if (fp_series_gen(se) != gen)
            continue;
        const char *lt = texts.p + at;
        uint64_t hsh = 1469598103934665603ULL;
        for (uint32_t i = 0; i < ll; i++)
            hsh = (hsh ^ (unsigned char)lt[i]) * 1099511628211ULL;
        size_t i = hsh & (cap - 1);
        while (groups[i].used && !(groups[i].len == ll && memcmp(texts.p + groups[i].text, lt, ll) == 0))
            i = (i + 1) & (cap - 1);
        mp_group *g = &groups[i];
        if (!g->used) {
            texts.len += ll; /* kept: the group's text */
            g->used = 1;
            g->text = at;
            g->len = ll;
            g->value = v;
            g->ts = ts;
            g->proc = se->proc;
            g->se = se;
            order[ngroups++] = (uint32_t)i;
        } else if (per_pid) {
            if (se->proc > g->proc) {
                g->value = v;
                g->proc = se->proc;
                g->se = se;
            }
        } else if (mode == FP_MP_SUM || mode == FP_MP_LIVESUM) {
            g->value += v;
        } else if (mode == FP_MP_MAX || mode == FP_MP_LIVEMAX) {
            if (v > g->value)
                g->value = v;
        } else if (mode == FP_MP_MIN || mode == FP_MP_LIVEMIN) {
            if (v < g->value)
                g->value = v;
        } else if (ts > g->ts) { /* mostrecent */
            g->value = v;
            g->ts = ts;
        }
    }
    for (size_t k = 0; k < ngroups; k++) {
        const mp_group *g = &groups[order[k]];
        fp_point p = {per_pid ? g->se : NULL, texts.p + g->text, g->len, 0, 0.0, g->value, 0, 0.0, NULL, NULL};
        if ((rc = fn(ctx, w, &p)))
            break;
    }
done:
    fp_buf_free(&texts);
    free(alive);
    free(groups);
    free(order);
    return rc;
}

int fp_walk_family(const fp_store *s, uint32_t family, fp_point_fn fn, void *ctx)
{
    const fp_family *f = fp_family_get(s, family);
    if (!f)
        return FP_EINVAL;
    fp_walk w = {s, f, fp_family_name(s, f), NULL, NULL, NULL, NULL};
    if (fp_family_per_process(s, f))
        return walk_per_process(&w, fn, ctx);

    /* Scratch: the le="..." (histogram) or quantile="..." (summary) label
     * of each bucket or quantile, and a snapshot of the counts. */
    int hist = f->type == FP_HISTOGRAM;
    uint32_t nextra = hist ? f->nbuckets : f->type == FP_SUMMARY ? f->nquantiles : 0;
    size_t ncounts = hist ? f->nbuckets : nextra ? FP_Q_BUCKETS : 0;
    uint64_t *counts = NULL;
    double qvals[FP_Q_MAX_QUANTILES];
    if (nextra) {
        w.extra = malloc(sizeof *w.extra * nextra);
        w.extra_len = malloc(sizeof *w.extra_len * nextra);
        counts = malloc(sizeof *counts * ncounts);
        if (!w.extra || !w.extra_len || !counts) {
            free(w.extra);
            free(w.extra_len);
            free(counts);
            return FP_ENOHEAP;
        }
        const double *at = fp_at(s, hist ? f->buckets : f->quantiles);
        const char *lname = hist ? "le=\"" : "quantile=\"";
        for (uint32_t i = 0; i < nextra; i++) {
            size_t n = strlen(lname);
            memcpy(w.extra[i], lname, n);
            /* As prometheus_client writes bounds and quantiles: le="1.0". */
            n += fp_format_value(w.extra[i] + n, at[i]);
            w.extra[i][n++] = '"';
            w.extra_len[i] = n;
        }
    }
    fp_q_window win = fp_family_window(s, f);
    fp_nh_scratch nsc = {NULL, NULL, NULL, 0};
    fp_native native;
    w.nsc = &nsc;
    w.native = &native;

    int rc = 0;
    fp_buf text; /* the series' label text, copied out of the store */
    fp_buf_init(&text);
    /* The walk shows the series that had their keys when it began: one
     * given its key since (made, or a removed record reused) waits for the
     * next walk, so a label set removed and made again meanwhile, whose
     * old record was shown already, is not shown twice. */
    uint64_t births = fp_births(s);
    for (fp_off off = fp_load_acq(&f->head); off; off = fp_load_acq(&((fp_series *)fp_at(s, off))->next)) {
        fp_series *se = fp_at(s, off);
        uint64_t gen = fp_series_gen(se);
        if (gen > births || !fp_series_live(se))
            continue;
        uint32_t tl = se->text_len;
        if (!fp_text_fits(s, se->text, tl, se->text_cap))
            continue;
        if (!fp_buf_reserve(&text, (size_t)tl + 8)) {
            rc = FP_ENOHEAP;
            break;
        }
        fp_text_read_words(s, se->text, tl, text.p);
        uint32_t split = se->split;
        fp_point p = {se, text.p, tl, split <= tl ? split : tl, fp_loadd(&se->created), 0.0, 0, 0.0, NULL, NULL};
        switch (f->type) {
        case FP_COUNTER:
            /* Increments are checked (not negative, not NaN), so a counter
             * below 0 or NaN is a damaged cell: shown as 0, a reset. */
            p.value = fp_counter_value(se);
            if (!(p.value >= 0))
                p.value = 0;
            break;
        case FP_GAUGE: p.value = fp_gauge_value(se); break;
        case FP_HISTOGRAM: {
            /* One read of each bucket; _count is their sum, so +Inf equals it. */
            uint64_t cum = 0;
            for (uint32_t i = 0; i < f->nbuckets; i++) {
                /* Saturating: a damaged count must not wrap the sum and
                 * make the buckets decrease. */
                /* Acquire with native buckets: their observations are
                 * made before the classic ones (fp_histogram_observe_all). */
                uint64_t c = f->nh_slots ? fp_load_acq(&se->cells[i]) : fp_load(&se->cells[i]);
                cum = c > UINT64_MAX - cum ? UINT64_MAX : cum + c;
                counts[i] = cum;
            }
            p.count = cum;
            p.sum = fp_loadd(&se->cells[f->nbuckets]);
            p.cumulative = counts;
            break;
        }
        case FP_SUMMARY:
            if (f->nquantiles) {
                /* Computing the window may take this epoch's snapshot
                 * (not through a read-only mapping). */
                fp_q_values(&win, fp_summary_sketch(se), fp_now(), counts, qvals, !s->readonly);
                p.qvalues = qvals;
            }
            p.count = fp_load(&se->cells[0]);
            p.sum = fp_loadd(&se->cells[1]);
            break;
        }
        /* Reused for another key while we read it (only possible after a
         * removal seconds ago and a stall here): left for the next walk. */
        if (fp_series_gen(se) != gen)
            continue;
        if ((rc = fn(ctx, &w, &p)))
            break;
    }
    fp_nh_scratch_free(&nsc);
    fp_buf_free(&text);
    free(w.extra);
    free(w.extra_len);
    free(counts);
    return rc;
}
