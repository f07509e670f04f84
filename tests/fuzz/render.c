/* render.c: libFuzzer target for the store's update paths and the
 * exposition writers.
 *
 * The input is a program for a fresh store (private, or a store file in a
 * memfd when the first byte says so): its first byte holds the flags, then
 * each operation is a byte and its operands.
 *
 *   flags  bit 0: a shared store (a file: per-process gauges are kept per
 *          process); bit 1: _created samples off; bit 2: a 16 MiB store
 *          instead of 1 MiB
 *   0 family   type, name, help, unit, label names, buckets / quantiles /
 *              window / multiprocess mode (any bytes: the store refuses what
 *              it does not allow, FP_EINVAL, and that is fine)
 *   1 series   family, one value per label (create, maybe as overflow)
 *   2 update   series, a double: inc / set / add / observe by type
 *   3 exemplar series, slot, up to 4 label pairs, value, timestamp
 *   4 remove   family, label values
 *   5 clear    family
 *   6 clock    seconds to move the (frozen) clock on
 *   7 render   every family now (in the middle of the program)
 *   8 custom   a family as the binding writes one built in Python (any
 *              type name of OpenMetrics, samples with their own names,
 *              labels, timestamps and exemplars), rendered and checked
 *
 * Strings are a length byte and that many bytes; length 255 is a long
 * string: a pattern of up to 16 bytes repeated to a length given in two
 * bytes (up to 64 KiB).  Doubles come from a small table of edge
 * values (NaN, infinities, denormals, -0, huge and tiny) or from 8 raw
 * bytes.  Every string can hold anything: invalid UTF-8, NUL, newlines,
 * quotes, backslashes.
 *
 * After the program every family is rendered in every view and escaping
 * scheme, each output is checked (fuzz.h), and the store passes its
 * consistency check with `quiescent` set.  Update values obey the binding's
 * contract (fp_q_observe takes finite values; NaN observations are refused
 * before they reach the store). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_OPS 400
#define MAX_FAMS 32
#define MAX_SERIES 128
#define MAX_LABELS 24
#define LONG_MAX_BYTES 65535u

static int memfd = -1;
static char path[64];
static int tracing; /* FASTPROM_FUZZ_TRACE=1: each operation and its outcome on stderr */

#define TRACE(...)                                                                                              \
    do {                                                                                                       \
        if (tracing)                                                                                           \
            fprintf(stderr, __VA_ARGS__);                                                                      \
    } while (0)

/* Bytes for a trace line, shown safely and cut short. */
static const char *shown(const char *p, size_t n)
{
    static char out[4][200];
    static int k;
    char *o = out[k++ % 4];
    size_t j = 0;
    for (size_t i = 0; i < n && j < sizeof out[0] - 12; i++) {
        unsigned char c = (unsigned char)p[i];
        j += (size_t)(c >= 0x20 && c < 0x7f && c != '\\' ? snprintf(o + j, 2, "%c", c) : snprintf(o + j, 5, "\\x%02x", c));
    }
    if (n > 40)
        snprintf(o + j, 12, "..(%zu)", n);
    return o;
}

/* ---- input helpers -------------------------------------------------- */

/* Strings live until the end of the input: the store copies what it keeps,
 * but the lookups below reuse them. */
typedef struct {
    char *bufs[1024];
    int n;
} pool;

static const char *pool_keep(pool *pl, char *p)
{
    if (pl->n == (int)(sizeof pl->bufs / sizeof pl->bufs[0])) {
        free(p);
        return "";
    }
    pl->bufs[pl->n++] = p;
    return p;
}

static void pool_free(pool *pl)
{
    for (int i = 0; i < pl->n; i++)
        free(pl->bufs[i]);
    pl->n = 0;
}

static const char *str(fz_in *in, pool *pl, size_t *len)
{
    uint8_t l = fz_u8(in);
    if (l != 255) {
        size_t got;
        const char *p = fz_bytes(in, l, &got);
        *len = got;
        return got ? p : "";
    }
    size_t plen = (fz_u8(in) & 15) + 1, got;
    const char *pat = fz_bytes(in, plen, &got);
    size_t total = (size_t)fz_uint(in, 2);
    if (total > LONG_MAX_BYTES)
        total = LONG_MAX_BYTES;
    if (!got || !total) {
        *len = 0;
        return "";
    }
    char *p = malloc(total);
    if (!p) {
        *len = 0;
        return "";
    }
    for (size_t i = 0; i < total; i++)
        p[i] = pat[i % got];
    *len = total;
    return pool_keep(pl, p);
}

static double dbl(fz_in *in)
{
    static const double table[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.5, 1e6, 1234567.0, 1e-5, 1e16, 1e22, 0.1,
                                   5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1e300,
                                   INFINITY, -INFINITY, NAN, 3.0, 100.0, 1e-9, 1e12, 123456789.125};
    uint8_t b = fz_u8(in);
    if (b < 0xc0)
        return table[b % (sizeof table / sizeof table[0])];
    double d;
    uint64_t u = fz_uint(in, 8);
    memcpy(&d, &u, sizeof d);
    return d;
}

/* A label name: one of a few that matter (le, quantile, pid are the
 * writers' and the store's own), or any bytes. */
static const char *label_name(fz_in *in, size_t *len)
{
    static const char *const names[] = {"a", "b", "le", "quantile", "pid", "_", "z9", "method", "path",
                                        "__name__", "A_b_C", "quantil", "lf"};
    uint8_t b = fz_u8(in);
    if (b < 0xe0) {
        const char *n = names[b % (sizeof names / sizeof names[0])];
        *len = strlen(n);
        return n;
    }
    size_t got;
    const char *p = fz_bytes(in, (b & 15) + 1u, &got);
    *len = got;
    return got ? p : "x";
}

/* ---- the program's state -------------------------------------------- */

typedef struct {
    uint32_t index;
    uint32_t nlabels;
    int nul;                /* NUL bytes may show in its output */
} fam_info;

typedef struct {
    fp_series *se;
    uint32_t gen;
    int fam;                /* into state.fams */
} series_ref;

typedef struct {
    fp_store s;
    fam_info fams[MAX_FAMS];
    int nfams;
    series_ref series[MAX_SERIES];
    int nseries;
    pool pl;
} state;

static int fam_nul(uint32_t family, void *arg)
{
    state *st = arg;
    for (int i = 0; i < st->nfams; i++)
        if (st->fams[i].index == family)
            return st->fams[i].nul;
    return 1;
}

/* ---- operations ----------------------------------------------------- */

static void op_family(state *st, fz_in *in)
{
    fp_family_spec sp;
    memset(&sp, 0, sizeof sp);
    uint8_t t = fz_u8(in);
    sp.type = t >= 0xf8 ? t - 0xf8u : 1u + t % 4u; /* now and then a type that does not exist */
    sp.name = str(in, &st->pl, &sp.name_len);
    sp.help = str(in, &st->pl, &sp.help_len);
    sp.unit = str(in, &st->pl, &sp.unit_len);
    uint8_t nl = fz_u8(in);
    sp.nlabels = nl < 0xf0 ? nl % 4u : nl % MAX_LABELS;
    const char *names[MAX_LABELS];
    size_t lens[MAX_LABELS];
    for (uint32_t i = 0; i < sp.nlabels; i++)
        names[i] = label_name(in, &lens[i]);
    sp.labelnames = names;
    sp.labelname_lens = lens;
    double bounds[10], qs[6];
    if (sp.type == FP_HISTOGRAM) {
        uint8_t b = fz_u8(in);
        sp.nbuckets = b % 9u;
        for (uint32_t i = 0; i < sp.nbuckets; i++)
            bounds[i] = dbl(in);
        if (!(b & 0x80))
            bounds[sp.nbuckets++] = INFINITY; /* as the binding appends it */
        sp.buckets = bounds;
    } else if (sp.type == FP_SUMMARY) {
        uint8_t b = fz_u8(in);
        sp.nquantiles = b % 6u;
        for (uint32_t i = 0; i < sp.nquantiles; i++) {
            uint8_t q = fz_u8(in);
            static const double qt[] = {0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0};
            qs[i] = q < 0xf0 ? qt[q % 8] : dbl(in);
        }
        sp.quantiles = qs;
        static const double ages[] = {600.0, 1.0, 0.005, 60.0, 366.0 * 86400.0};
        uint8_t a = fz_u8(in);
        sp.max_age = a < 0xf0 ? ages[a % 5] : dbl(in);
        sp.age_buckets = fz_u8(in) % 8u;
    } else if (sp.type == FP_GAUGE) {
        sp.mpmode = fz_u8(in) % (FP_MP_COUNT + 1u);
    }
    uint32_t idx;
    int rc = fp_family_add(&st->s, &sp, &idx);
    TRACE("family type=%u name=\"%s\" nlabels=%u", sp.type, shown(sp.name, sp.name_len), sp.nlabels);
    for (uint32_t i = 0; i < sp.nlabels; i++)
        TRACE(" \"%s\"", shown(names[i], lens[i]));
    TRACE(" nbuckets=%u nquantiles=%u mpmode=%u -> %d (family %d)\n", sp.nbuckets, sp.nquantiles, sp.mpmode, rc,
          rc == FP_OK ? st->nfams : -1);
    if (rc != FP_OK)
        return;
    /* The same spec again finds the family it made: one entry per family,
     * so what marks it (a NUL fed in) is seen by every later use. */
    for (int i = 0; i < st->nfams; i++)
        if (st->fams[i].index == idx) {
            st->fams[i].nul |= memchr(sp.help, '\0', sp.help_len) != NULL;
            return;
        }
    if (st->nfams == MAX_FAMS)
        return;
    fam_info *fi = &st->fams[st->nfams++];
    fi->index = idx;
    fi->nlabels = sp.nlabels;
    fi->nul = memchr(sp.help, '\0', sp.help_len) != NULL;
}

static int pick_family(state *st, fz_in *in)
{
    uint8_t b = fz_u8(in);
    return st->nfams ? b % st->nfams : -1;
}

/* Reads one value per label of family k; 0 when a value holds a NUL that
 * should mark the family (set there). */
static void read_values(state *st, fz_in *in, int k, const char **vp, size_t *vl)
{
    for (uint32_t i = 0; i < st->fams[k].nlabels; i++) {
        vp[i] = str(in, &st->pl, &vl[i]);
        if (memchr(vp[i], '\0', vl[i]))
            st->fams[k].nul = 1;
    }
}

static void op_series(state *st, fz_in *in)
{
    int k = pick_family(st, in);
    uint8_t mode = fz_u8(in);
    if (k < 0)
        return;
    const char *vp[MAX_LABELS];
    size_t vl[MAX_LABELS];
    read_values(st, in, k, vp, vl);
    fp_series *se;
    int rc = fp_series_get(&st->s, st->fams[k].index, vp, vl, !(mode & 1), (mode >> 1) & 1, &se);
    TRACE("series family %d", k);
    for (uint32_t i = 0; i < st->fams[k].nlabels; i++)
        TRACE(" \"%s\"", shown(vp[i], vl[i]));
    TRACE(" create=%d overflow=%d -> %d\n", !(mode & 1), (mode >> 1) & 1, rc);
    if (rc != FP_OK)
        return;
    series_ref *r = st->nseries < MAX_SERIES ? &st->series[st->nseries++] : &st->series[mode % MAX_SERIES];
    r->se = se;
    r->gen = fp_series_gen(se);
    r->fam = k;
}

/* A cached series as the binding keeps one: used while it is still the
 * series it was. */
static series_ref *pick_series(state *st, fz_in *in)
{
    uint8_t b = fz_u8(in);
    if (!st->nseries)
        return NULL;
    series_ref *r = &st->series[b % st->nseries];
    return fp_series_still(r->se, r->gen) ? r : NULL;
}

static void op_update(state *st, fz_in *in)
{
    series_ref *r = pick_series(st, in);
    uint8_t how = fz_u8(in);
    double v = dbl(in);
    TRACE("update series %d how=%u v=%.17g\n", r ? (int)(r - st->series) : -1, how, v);
    if (!r)
        return;
    fp_store *s = &st->s;
    const fp_family *f = fp_family_get(s, st->fams[r->fam].index);
    switch (f->type) {
    case FP_COUNTER:
        fp_counter_inc(r->se, v);
        break;
    case FP_GAUGE:
        if (how & 1)
            fp_gauge_set(r->se, v);
        else
            fp_gauge_add(r->se, v);
        fp_gauge_touch(r->se, fp_now());
        break;
    case FP_HISTOGRAM:
        if (!isnan(v)) {
            uint32_t i = fp_bucket_index(fp_at(s, f->buckets), f->nbuckets, v);
            fp_histogram_observe(r->se, i, f->nbuckets, v);
        }
        break;
    case FP_SUMMARY:
        if (f->nquantiles ? isfinite(v) : !isnan(v))
            fp_summary_observe_all(s, f, r->se, v);
        break;
    }
}

static void op_exemplar(state *st, fz_in *in)
{
    series_ref *r = pick_series(st, in);
    uint8_t slot = fz_u8(in), npairs = fz_u8(in) % 5u;
    const char *names[4], *vals[4];
    size_t nl[4], vl[4];
    size_t need = 2;
    for (uint8_t i = 0; i < npairs; i++) {
        names[i] = label_name(in, &nl[i]);
        vals[i] = str(in, &st->pl, &vl[i]);
        need += nl[i] + 2 * vl[i] + 4;
    }
    double value = dbl(in), ts = dbl(in);
    if (!r)
        return;
    /* As the binding builds it (exemplar.c): legacy names, sorted, values
     * escaped, at most FP_EXEMPLAR_TEXT bytes; a finite timestamp (its
     * clock's). */
    for (uint8_t i = 0; i < npairs; i++)
        if (!fp_valid_label_name(names[i], nl[i]))
            return;
    if (need > FP_EXEMPLAR_TEXT || !isfinite(ts))
        return;
    uint32_t order[4];
    fp_sort_names(names, nl, npairs, order);
    char text[FP_EXEMPLAR_TEXT * 2 + 8];
    size_t len = 0;
    text[len++] = '{';
    for (uint8_t i = 0; i < npairs; i++) {
        if (i)
            text[len++] = ',';
        len += fp_label_pair(text + len, names[order[i]], nl[order[i]], vals[order[i]], vl[order[i]]);
    }
    text[len++] = '}';
    if (len > FP_EXEMPLAR_TEXT)
        return;
    for (uint8_t i = 0; i < npairs; i++)
        if (memchr(vals[i], '\0', vl[i]))
            st->fams[r->fam].nul = 1;
    fp_store *s = &st->s;
    const fp_family *f = fp_family_get(s, st->fams[r->fam].index);
    if (f->type != FP_COUNTER && f->type != FP_HISTOGRAM)
        return;
    uint32_t nslots = fp_exemplar_slots(f);
    int rc = fp_exemplar_put(s, r->se, nslots, slot % (nslots + 1u), text, len, value, ts);
    TRACE("exemplar series %d slot %u %s -> %d\n", (int)(r - st->series), slot % (nslots + 1u), shown(text, len), rc);
}

static void op_remove(state *st, fz_in *in)
{
    int k = pick_family(st, in);
    if (k < 0)
        return;
    const char *vp[MAX_LABELS];
    size_t vl[MAX_LABELS];
    read_values(st, in, k, vp, vl);
    int rc = fp_series_remove(&st->s, st->fams[k].index, vp, vl);
    TRACE("remove family %d", k);
    for (uint32_t i = 0; i < st->fams[k].nlabels; i++)
        TRACE(" \"%s\"", shown(vp[i], vl[i]));
    TRACE(" -> %d\n", rc);
}

static double clock_now = 1700000000.0;

/* ---- families built in Python --------------------------------------- */

/* Mirrors families.c (fp_render_pyfamily): metadata, then each sample
 * through fp_write_sample with its own name; in the text format samples
 * named <name>_created, _gcount and _gsum go to gauge families after it. */
static void op_custom(state *st, fz_in *in)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "info",
                                        "stateset", "gaugehistogram", "unknown"};
    static const char *const suffixes[] = {"", "_total", "_bucket", "_count", "_sum", "_created",
                                           "_gcount", "_gsum", "_info"};
    static const char *const side_suffix[3] = {"_created", "_gcount", "_gsum"};
    const char *type = types[fz_u8(in) % 8];
    size_t nlen, hlen, ulen;
    const char *name = str(in, &st->pl, &nlen), *help = str(in, &st->pl, &hlen), *unit = str(in, &st->pl, &ulen);
    int nul = memchr(help, '\0', hlen) != NULL;
    int nsamples = fz_u8(in) % 6;
    struct {
        char *name;
        size_t nlen;
        const char *ln[3], *lv[3];
        size_t lnl[3], lvl[3];
        int nlab;
        double value, ts;
        int has_ts, ex;
        const char *exn, *exv;
        size_t exnl, exvl;
        double exval, exts;
    } smp[6];
    for (int i = 0; i < nsamples; i++) {
        uint8_t b = fz_u8(in);
        if (b < 0xc0) {
            /* The family's name and a suffix: how collectors name samples. */
            const char *suf = suffixes[b % 9];
            size_t sl = strlen(suf);
            smp[i].name = malloc(nlen + sl + 1);
            if (!smp[i].name)
                return;
            memcpy(smp[i].name, name, nlen);
            memcpy(smp[i].name + nlen, suf, sl);
            smp[i].nlen = nlen + sl;
        } else {
            size_t l;
            const char *p = str(in, &st->pl, &l);
            smp[i].name = malloc(l + 1);
            if (!smp[i].name)
                return;
            memcpy(smp[i].name, p, l);
            smp[i].nlen = l;
        }
        pool_keep(&st->pl, smp[i].name);
        smp[i].nlab = fz_u8(in) % 4;
        for (int j = 0; j < smp[i].nlab; j++) {
            smp[i].ln[j] = fz_u8(in) < 0x80 ? label_name(in, &smp[i].lnl[j]) : str(in, &st->pl, &smp[i].lnl[j]);
            smp[i].lv[j] = str(in, &st->pl, &smp[i].lvl[j]);
            nul |= memchr(smp[i].ln[j], '\0', smp[i].lnl[j]) || memchr(smp[i].lv[j], '\0', smp[i].lvl[j]);
        }
        smp[i].value = dbl(in);
        uint8_t extra = fz_u8(in);
        smp[i].has_ts = extra & 1;
        smp[i].ts = smp[i].has_ts ? dbl(in) : 0.0;
        smp[i].ex = (extra >> 1) & 1;
        if (smp[i].ex) {
            smp[i].exn = label_name(in, &smp[i].exnl);
            smp[i].exv = str(in, &st->pl, &smp[i].exvl);
            smp[i].exval = dbl(in);
            smp[i].exts = dbl(in);
            nul |= memchr(smp[i].exv, '\0', smp[i].exvl) != NULL;
        }
    }
    /* What a Python family can hold: a name without NUL or newline, sample
     * and label names non-empty (any bytes here, though a str is valid
     * UTF-8), a timestamp finite (the binding refuses others) and, in
     * milliseconds, an integer. */
    TRACE("custom %s \"%s\" samples=%d\n", type, shown(name, nlen), nsamples);
    if (!nlen || memchr(name, '\0', nlen) || memchr(name, '\n', nlen) || memchr(unit, '\n', ulen) ||
        memchr(unit, '\0', ulen))
        return; /* what Metric() refuses (its unit is part of its name) */
    for (int i = 0; i < nsamples; i++) {
        if (!smp[i].nlen)
            return;
        nul |= memchr(smp[i].name, '\0', smp[i].nlen) != NULL;
        if (smp[i].has_ts && !(fabs(smp[i].ts) < 1e300))
            return;
        for (int j = 0; j < smp[i].nlab; j++)
            if (!smp[i].lnl[j])
                return;
        if (smp[i].ex && (!isfinite(smp[i].exts) || !smp[i].exnl))
            return;
    }
    fp_buf b, lbuf, ebuf, side[3];
    fp_buf_init(&b);
    fp_buf_init(&lbuf);
    fp_buf_init(&ebuf);
    for (int k = 0; k < 3; k++)
        fp_buf_init(&side[k]);
    for (int view = 0; view < NVIEWS; view++)
        for (int esc = 0; esc < NSCHEMES; esc++) {
            int om = view == FP_VIEW_OPENMETRICS;
            b.len = 0;
            for (int k = 0; k < 3; k++)
                side[k].len = 0;
            fp_writer w;
            fp_writer_init(&w, &b, view, esc, name, nlen);
            w.plain_labels = 1;
            fp_write_meta(&w, "", type, help, hlen, unit, ulen);
            for (int i = 0; i < nsamples; i++) {
                /* labels_text: sorted by name, names by the scheme, values escaped. */
                uint32_t order[3];
                fp_sort_names(smp[i].ln, smp[i].lnl, (size_t)smp[i].nlab, order);
                lbuf.len = 0;
                for (int j = 0; j < smp[i].nlab; j++) {
                    uint32_t o = order[j];
                    if (j)
                        fp_buf_putc(&lbuf, ',');
                    fp_put_name(&lbuf, smp[i].ln[o], smp[i].lnl[o], esc, 0);
                    fp_buf_put(&lbuf, "=\"", 2);
                    fp_buf_escaped(&lbuf, smp[i].lv[o], smp[i].lvl[o], 1);
                    fp_buf_putc(&lbuf, '"');
                }
                fp_sample s = {"", lbuf.p, lbuf.len, 0, NULL, 0, smp[i].value, 0, smp[i].has_ts, smp[i].ts,
                               NULL, 0, NULL};
                fp_exemplar_data exd = {NULL, 0, 0.0, 0, 0.0, NULL, 0};
                if (om && smp[i].ex) {
                    ebuf.len = 0;
                    fp_buf_putc(&ebuf, '{');
                    if (fp_valid_label_name(smp[i].exn, smp[i].exnl)) {
                        fp_buf_put(&ebuf, smp[i].exn, smp[i].exnl);
                        fp_buf_put(&ebuf, "=\"", 2);
                        fp_buf_escaped(&ebuf, smp[i].exv, smp[i].exvl, 1);
                        fp_buf_putc(&ebuf, '"');
                    }
                    fp_buf_putc(&ebuf, '}');
                    exd.text = ebuf.p;
                    exd.len = ebuf.len;
                    exd.value = smp[i].exval;
                    exd.has_ts = 1;
                    exd.ts = smp[i].exts;
                    s.exemplar = &exd;
                }
                const fp_writer *wp = &w;
                fp_writer sw;
                if (!om)
                    for (int k = 0; k < 3; k++) {
                        size_t sl = strlen(side_suffix[k]);
                        if (smp[i].nlen == nlen + sl && !memcmp(smp[i].name, name, nlen) &&
                            !memcmp(smp[i].name + nlen, side_suffix[k], sl)) {
                            sw = w;
                            sw.b = &side[k];
                            wp = &sw;
                            break;
                        }
                    }
                fp_write_sample(wp, smp[i].name, smp[i].nlen, &s);
            }
            for (int k = 0; k < 3; k++)
                if (side[k].len) {
                    fp_write_meta(&w, side_suffix[k], "gauge", help, hlen, "", 0);
                    fp_buf_put(&b, side[k].p, side[k].len);
                }
            if (!b.oom && !lbuf.oom && !ebuf.oom)
                fz_check_exposition(b.p, b.len, view, esc, nul);
        }
    fp_buf_free(&b);
    fp_buf_free(&lbuf);
    fp_buf_free(&ebuf);
    for (int k = 0; k < 3; k++)
        fp_buf_free(&side[k]);
}

/* ---- the target ------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memfd = memfd_create("fastprom-fuzz-render", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    const char *t = getenv("FASTPROM_FUZZ_TRACE");
    tracing = t && *t == '1';
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size, 0};
    static state st;
    memset(&st, 0, sizeof st);
    uint8_t flags = fz_u8(&in);
    TRACE("flags: %s store, %u MiB, created %s\n", flags & 1 ? "shared" : "private", flags & 4 ? 16 : 1,
          flags & 2 ? "off" : "on");
    uint64_t store_size = flags & 4 ? 16u << 20 : FP_STORE_MIN;
    clock_now = 1700000000.0;
    fp_clock_freeze(clock_now);
    fp_set_created(!(flags & 2));
    int rc;
    if (flags & 1) {
        char err[1024];
        if (ftruncate(memfd, 0) != 0)
            abort();
        rc = fp_store_open_file(&st.s, path, store_size, err, sizeof err);
        if (rc != FP_OK) {
            fprintf(stderr, "cannot open a fresh store file: %s\n", err);
            abort();
        }
    } else if ((rc = fp_store_open(&st.s, store_size)) != FP_OK) {
        fprintf(stderr, "cannot map a private store (%d)\n", rc);
        abort();
    }
    for (int n = 0; n < MAX_OPS && fz_more(&in); n++) {
        switch (fz_u8(&in) % 9) {
        case 0: op_family(&st, &in); break;
        case 1: op_series(&st, &in); break;
        case 2: op_update(&st, &in); break;
        case 3: op_exemplar(&st, &in); break;
        case 4: op_remove(&st, &in); break;
        case 5: {
            int k = pick_family(&st, &in);
            TRACE("clear family %d\n", k);
            if (k >= 0)
                fp_family_clear(&st.s, st.fams[k].index);
            break;
        }
        case 6:
            clock_now += (double)fz_uint(&in, 2) / 16.0;
            fp_clock_freeze(clock_now);
            TRACE("clock %.4f\n", clock_now);
            break;
        case 7:
            TRACE("render\n");
            fz_render_store(&st.s, fam_nul, &st, 1);
            break;
        case 8: op_custom(&st, &in); break;
        }
    }
    fz_render_store(&st.s, fam_nul, &st, 1);
    const char *why = fp_store_check(&st.s, 1);
    if (why) {
        fprintf(stderr, "the store fails its consistency check: %s\n", why);
        abort();
    }
    fp_store_close(&st.s);
    pool_free(&st.pl);
    fp_set_created(1);
    return 0;
}
