/* render.c: the exposition formats, byte for byte as Prometheus' own Go
 * code writes them (prometheus/common expfmt). */
#define _GNU_SOURCE
#include "render.h"
#include "quantile.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp_buf_init(fp_buf *b) { memset(b, 0, sizeof *b); }
void fp_buf_free(fp_buf *b) { free(b->p); fp_buf_init(b); }

static int buf_reserve(fp_buf *b, size_t n)
{
    if (b->oom)
        return 0;
    if (b->cap - b->len >= n)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void fp_buf_put(fp_buf *b, const char *s, size_t n)
{
    if (n && buf_reserve(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

void fp_buf_puts(fp_buf *b, const char *s) { fp_buf_put(b, s, strlen(s)); }

void fp_buf_putc(fp_buf *b, char c)
{
    if (buf_reserve(b, 1))
        b->p[b->len++] = c;
}

void fp_buf_escaped(fp_buf *b, const char *s, size_t n, int quotes)
{
    if (!buf_reserve(b, 2 * n))
        return;
    char *d = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' || (quotes && c == '"')) {
            *d++ = '\\';
            *d++ = c;
        } else if (c == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else {
            *d++ = c;
        }
    }
    b->len = (size_t)(d - b->p);
}

/* Writes the decimal digits of v to dig (at least 20 bytes); returns how many. */
static int int_digits(uint64_t v, char *dig)
{
    char tmp[24];
    int k = 24;
    do {
        tmp[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(dig, tmp + k, (size_t)(24 - k));
    return 24 - k;
}

void fp_buf_uint(fp_buf *b, uint64_t v)
{
    char dig[24];
    fp_buf_put(b, dig, (size_t)int_digits(v, dig));
}

void fp_buf_float(fp_buf *b, double v, int openmetrics)
{
    char tmp[32];
    fp_buf_put(b, tmp, fp_format_float(tmp, v, openmetrics));
}

/* Lays out significant digits `dig` (no trailing zeros) with decimal
 * exponent `exp` as Go's strconv.FormatFloat(v, 'g', -1, 64) does. */
static size_t layout(char *out, int neg, const char *dig, int nd, int exp)
{
    char *p = out;
    if (neg)
        *p++ = '-';
    if (exp < -4 || exp >= 6) {
        *p++ = dig[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, dig + 1, (size_t)(nd - 1));
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = exp < 0 ? '-' : '+';
        int e = exp < 0 ? -exp : exp;
        if (e >= 100) {
            *p++ = (char)('0' + e / 100);
            e %= 100;
        }
        *p++ = (char)('0' + e / 10);
        *p++ = (char)('0' + e % 10);
    } else if (exp < 0) {
        *p++ = '0';
        *p++ = '.';
        for (int i = 0; i < -exp - 1; i++)
            *p++ = '0';
        memcpy(p, dig, (size_t)nd);
        p += nd;
    } else {
        for (int i = 0; i <= exp; i++)
            *p++ = i < nd ? dig[i] : '0';
        if (nd > exp + 1) {
            *p++ = '.';
            memcpy(p, dig + exp + 1, (size_t)(nd - exp - 1));
            p += nd - exp - 1;
        }
    }
    return (size_t)(p - out);
}

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;
static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

void *fp_locale_c(void)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale ? (void *)uselocale(c_locale) : NULL;
}

void fp_locale_restore(void *token)
{
    if (token)
        uselocale((locale_t)token);
}

/* A power of two has a gap below it half as wide as the gap above, so the
 * nearest 16-digit decimal (below v) may not read back while the next one
 * up does; Go prints that one rather than 17 digits.  tmp holds v's
 * nearest 16 digits as d.ddddddddddddddde+XX; on success it is replaced by
 * the next 16-digit decimal up and 1 is returned. */
static int next_up_16(char *tmp, size_t cap, double a)
{
    uint64_t m = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            m = m * 10 + (uint64_t)(*p - '0');
    if (*p != 'e')
        return 0;
    int exp = atoi(p + 1);
    if (++m == 10000000000000000ULL) {
        m /= 10;
        exp++;
    }
    char cand[40];
    snprintf(cand, sizeof cand, "%d.%015llue%+03d", (int)(m / 1000000000000000ULL),
             (unsigned long long)(m % 1000000000000000ULL), exp);
    if (strtod(cand, NULL) != a)
        return 0;
    snprintf(tmp, cap, "%s", cand);
    return 1;
}

/* Go's 'g' with shortest precision switches to exponent form when the
 * decimal exponent is < -4 or >= 6 (eprec is forced to 6).  The shortest
 * digit string that reads back as v is found by trying 15, 16, then 17
 * significant digits: a correctly rounded 15-digit form, stripped of
 * trailing zeros, is the shortest one whenever 15 digits suffice
 * (subnormals and powers of two aside: see below and next_up_16). */
size_t fp_format_float(char *out, double v, int openmetrics)
{
    size_t n;
    if (isnan(v)) {
        memcpy(out, "NaN", 3);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 4);
        return 4;
    }
    char dig[24];
    int nd, exp, neg = signbit(v) && v != 0;
    double a = fabs(v);
    if (a < 1e15 && a == (double)(int64_t)a) {
        /* Integers: digits straight from the integer. */
        nd = int_digits((uint64_t)a, dig);
        exp = nd - 1;
        while (nd > 1 && dig[nd - 1] == '0')
            nd--;
    } else if (a < 1e12 && a * 1000.0 == floor(a * 1000.0) && floor(a * 1000.0) / 1000.0 == a) {
        /* Up to three decimals (created timestamps, which are kept to the
         * millisecond, and most bucket bounds and sums): the digits of
         * a * 1000, which read back as a, and which no shorter decimal
         * does, as they number at most 15. */
        nd = int_digits((uint64_t)(a * 1000.0), dig);
        exp = nd - 1 - 3;
        while (nd > 1 && dig[nd - 1] == '0')
            nd--;
    } else {
        char tmp[40];
        /* snprintf and strtod follow LC_NUMERIC; pin the C locale for them. */
        void *loc = fp_locale_c();
        /* Subnormals carry fewer than 15 significant digits, so the
         * shortcut does not hold there: search from one digit up. */
        for (int prec = a < 2.2250738585072014e-308 ? 1 : 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*e", prec - 1, a);
            double r = strtod(tmp, NULL);
            if (prec == 17 || r == a)
                break;
            int e2;
            if (prec == 16 && r < a && frexp(a, &e2) == 0.5 && next_up_16(tmp, sizeof tmp, a))
                break;
        }
        fp_locale_restore(loc);
        /* tmp is d.ddddde[+-]XX in the C locale. */
        nd = 0;
        const char *p = tmp;
        for (; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9')
                dig[nd++] = *p;
        exp = atoi(p + 1);
        while (nd > 1 && dig[nd - 1] == '0')
            nd--;
    }
    n = layout(out, neg, dig, nd, exp);
    if (openmetrics && !memchr(out, '.', n) && !memchr(out, 'e', n)) {
        out[n++] = '.';
        out[n++] = '0';
    }
    return n;
}

/* ---- store families ------------------------------------------------ */

static void put_meta(fp_buf *b, const char *kind, const char *name, size_t nlen,
                     const char *suffix, const char *rest, size_t rlen, int escape, int quotes)
{
    fp_buf_puts(b, kind);
    fp_buf_put(b, name, nlen);
    fp_buf_puts(b, suffix);
    fp_buf_putc(b, ' ');
    if (escape)
        fp_buf_escaped(b, rest, rlen, quotes);
    else
        fp_buf_put(b, rest, rlen);
    fp_buf_putc(b, '\n');
}

/* name+suffix{labels[,extra]} followed by a space. */
static void put_series(fp_buf *b, const fp_family *f, const char *name, const char *suffix,
                       const char *labels, size_t llen, const char *extra, size_t elen)
{
    fp_buf_put(b, name, f->name_len);
    fp_buf_puts(b, suffix);
    if (llen || elen) {
        fp_buf_putc(b, '{');
        fp_buf_put(b, labels, llen);
        if (llen && elen)
            fp_buf_putc(b, ',');
        fp_buf_put(b, extra, elen);
        fp_buf_putc(b, '}');
    }
    fp_buf_putc(b, ' ');
}

static void put_exemplar(fp_buf *b, const fp_store *s, const fp_series *se, uint32_t slot)
{
    char text[FP_EXEMPLAR_TEXT];
    size_t len;
    double value, ts;
    if (!fp_exemplar_get(s, se, slot, text, &len, &value, &ts))
        return;
    fp_buf_puts(b, " # ");
    fp_buf_put(b, text, len);
    fp_buf_putc(b, ' ');
    fp_buf_float(b, value, 1);
    fp_buf_putc(b, ' ');
    fp_buf_float(b, ts, 1);
}

/* ---- per-process gauges in a shared store ------------------------- */

typedef struct {
    const char *text;       /* label text without the pid label */
    uint32_t len;
    double value, ts;
    int n;
} mp_group;

static int mode_live_only(uint32_t m)
{
    return m == FP_MP_LIVEALL || m == FP_MP_LIVESUM || m == FP_MP_LIVEMAX || m == FP_MP_LIVEMIN ||
           m == FP_MP_LIVEMOSTRECENT;
}

/* Renders a gauge whose series are kept per process: with its pid label
 * (all, liveall), or combined over processes (sum, max, min, mostrecent and
 * their live variants: dead processes' series left out).  0 or FP_ENOMEM. */
static int render_mp_gauge(fp_buf *b, const fp_store *s, const fp_family *f, const char *name, int om)
{
    const fp_header *h = fp_hdr(s);
    uint32_t mode = f->mpmode;
    int live_only = mode_live_only(mode), per_pid = mode == FP_MP_ALL || mode == FP_MP_LIVEALL;
    uint64_t nprocs = fp_load(&h->nprocs);
    if (nprocs > h->max_procs)
        nprocs = h->max_procs;
    /* Liveness per process table entry, looked up once per render:
     * 0 unknown, 1 alive, 2 dead. */
    unsigned char *alive = calloc(nprocs + 2, 1);
    size_t nseries = 0;
    for (fp_off off = fp_load_acq(&f->head); off; off = fp_load_acq(&((fp_series *)fp_at(s, off))->next))
        nseries++;
    size_t cap = 16;
    while (cap < 2 * nseries)
        cap <<= 1;
    mp_group *groups = per_pid ? NULL : calloc(cap, sizeof *groups);
    uint32_t *order = per_pid ? NULL : calloc(nseries + 1, sizeof *order);
    size_t ngroups = 0;
    if (!alive || (!per_pid && (!groups || !order))) {
        free(alive);
        free(groups);
        free(order);
        b->oom = 1;
        return FP_ENOMEM;
    }
    /* Series added since the count above (other workers, other threads)
     * wait for the next scrape: the tables are sized for `nseries`. */
    size_t walked = 0;
    for (fp_off off = fp_load_acq(&f->head); off && walked < nseries;
         off = fp_load_acq(&((fp_series *)fp_at(s, off))->next), walked++) {
        const fp_series *se = fp_at(s, off);
        if (fp_load32_acq(&se->state) != FP_LIVE)
            continue;
        if (live_only && se->proc && se->proc <= nprocs) {
            if (!alive[se->proc])
                alive[se->proc] = fp_proc_alive(s, se->proc) ? 1 : 2;
            if (alive[se->proc] == 2)
                continue;
        }
        const char *lt = fp_at(s, se->text);
        double v = fp_gauge_value(se);
        if (per_pid) {
            put_series(b, f, name, "", lt, se->text_len, NULL, 0);
            fp_buf_float(b, v, om);
            fp_buf_putc(b, '\n');
            continue;
        }
        /* Group by the label text without the pid. */
        uint64_t hsh = 1469598103934665603ULL;
        for (uint32_t i = 0; i < se->base_len; i++)
            hsh = (hsh ^ (unsigned char)lt[i]) * 1099511628211ULL;
        size_t i = hsh & (cap - 1);
        while (groups[i].text && !(groups[i].len == se->base_len && memcmp(groups[i].text, lt, se->base_len) == 0))
            i = (i + 1) & (cap - 1);
        mp_group *g = &groups[i];
        double ts = fp_loadd(&se->cells[1]);
        if (!g->text) {
            g->text = lt;
            g->len = se->base_len;
            g->value = v;
            g->ts = ts;
            order[ngroups++] = (uint32_t)i;
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
        put_series(b, f, name, "", g->text, g->len, NULL, 0);
        fp_buf_float(b, g->value, om);
        fp_buf_putc(b, '\n');
    }
    free(alive);
    free(groups);
    free(order);
    return b->oom ? FP_ENOMEM : FP_OK;
}

int fp_render_family(fp_buf *b, const fp_store *s, uint32_t family, int om)
{
    const fp_family *f = fp_family_get(s, family);
    if (!f)
        return FP_EINVAL;
    const char *name = fp_at(s, f->name);
    const char *help = fp_at(s, f->help);
    static const char *const types[] = {"", "counter", "gauge", "histogram", "summary"};
    const char *type = types[f->type];
    const char *msuffix = (!om && f->type == FP_COUNTER) ? "_total" : "";

    put_meta(b, "# HELP ", name, f->name_len, msuffix, help, f->help_len, 1, om);
    put_meta(b, "# TYPE ", name, f->name_len, msuffix, type, strlen(type), 0, 0);
    if (om && f->unit_len)
        put_meta(b, "# UNIT ", name, f->name_len, "", fp_at(s, f->unit), f->unit_len, 0, 0);

    if (f->type == FP_GAUGE && f->mpmode != FP_MP_NONE && s->fd >= 0)
        return render_mp_gauge(b, s, f, name, om);

    /* Histogram scratch: le="..." per bucket and a snapshot of the counts. */
    /* Scratch: the le="..." (histogram) or quantile="..." (summary) label
     * of each bucket or quantile, and a snapshot of the counts. */
    int hist = f->type == FP_HISTOGRAM;
    uint32_t nextra = hist ? f->nbuckets : f->type == FP_SUMMARY ? f->nquantiles : 0;
    size_t ncounts = hist ? f->nbuckets : nextra ? fp_q_buckets() : 0;
    char (*le)[48] = NULL;
    size_t *lelen = NULL;
    uint64_t *counts = NULL;
    double qvals[FP_Q_MAX_QUANTILES];
    if (nextra) {
        le = malloc(sizeof *le * nextra);
        lelen = malloc(sizeof *lelen * nextra);
        counts = malloc(sizeof *counts * ncounts);
        if (!le || !lelen || !counts) {
            free(le);
            free(lelen);
            free(counts);
            b->oom = 1;
            return FP_ENOMEM;
        }
        const double *at = fp_at(s, hist ? f->buckets : f->quantiles);
        const char *lname = hist ? "le=\"" : "quantile=\"";
        for (uint32_t i = 0; i < nextra; i++) {
            size_t n = strlen(lname);
            memcpy(le[i], lname, n);
            /* le="1.0" in both formats: the text format's Go writer would
             * say le="1", but prometheus_client (whose users' queries and
             * dashboards match on it) says "1.0", as OpenMetrics requires
             * and Prometheus 3 normalises to.  Quantiles likewise. */
            n += fp_format_float(le[i] + n, at[i], 1);
            le[i][n++] = '"';
            lelen[i] = n;
        }
    }
    double now = nextra && !hist ? fp_now() : 0.0;

    for (fp_off off = fp_load_acq(&f->head); off; off = fp_load_acq(&((fp_series *)fp_at(s, off))->next)) {
        const fp_series *se = fp_at(s, off);
        if (fp_load32_acq(&se->state) != FP_LIVE)
            continue;
        const char *lt = fp_at(s, se->text);
        size_t ll = se->text_len;
        switch (f->type) {
        case FP_COUNTER:
            put_series(b, f, name, "_total", lt, ll, NULL, 0);
            fp_buf_float(b, fp_counter_value(se), om);
            if (om)
                put_exemplar(b, s, se, 0);
            fp_buf_putc(b, '\n');
            break;
        case FP_GAUGE:
            put_series(b, f, name, "", lt, ll, NULL, 0);
            fp_buf_float(b, fp_gauge_value(se), om);
            fp_buf_putc(b, '\n');
            break;
        case FP_HISTOGRAM: {
            for (uint32_t i = 0; i < f->nbuckets; i++)
                counts[i] = fp_load(&se->cells[i]);
            double sum = fp_loadd(&se->cells[f->nbuckets]);
            uint64_t cum = 0;
            for (uint32_t i = 0; i < f->nbuckets; i++) {
                cum += counts[i];
                put_series(b, f, name, "_bucket", lt, ll, le[i], lelen[i]);
                if (om) {
                    fp_buf_uint(b, cum);
                    put_exemplar(b, s, se, i);
                } else {
                    fp_buf_float(b, (double)cum, 0);
                }
                fp_buf_putc(b, '\n');
            }
            /* OpenMetrics: with negative buckets the sum is no counter and
             * must be left out, and _count goes with it.  The text format
             * keeps both, as Prometheus' Go client writes them. */
            if (!om || !(((const double *)fp_at(s, f->buckets))[0] < 0)) {
                put_series(b, f, name, "_count", lt, ll, NULL, 0);
                if (om)
                    fp_buf_uint(b, cum);
                else
                    fp_buf_float(b, (double)cum, 0);
                fp_buf_putc(b, '\n');
                put_series(b, f, name, "_sum", lt, ll, NULL, 0);
                fp_buf_float(b, sum, om);
                fp_buf_putc(b, '\n');
            }
            break;
        }
        case FP_SUMMARY: {
            if (f->nquantiles) {
                /* Computing the window may take this epoch's snapshot. */
                fp_q_values(s, f, (fp_series *)se, now, counts, qvals);
                for (uint32_t j = 0; j < f->nquantiles; j++) {
                    put_series(b, f, name, "", lt, ll, le[j], lelen[j]);
                    fp_buf_float(b, qvals[j], om);
                    fp_buf_putc(b, '\n');
                }
            }
            uint64_t count = fp_load(&se->cells[0]);
            put_series(b, f, name, "_count", lt, ll, NULL, 0);
            if (om)
                fp_buf_uint(b, count);
            else
                fp_buf_float(b, (double)count, 0);
            fp_buf_putc(b, '\n');
            put_series(b, f, name, "_sum", lt, ll, NULL, 0);
            fp_buf_float(b, fp_loadd(&se->cells[1]), om);
            fp_buf_putc(b, '\n');
            break;
        }
        }
        if (om && f->type != FP_GAUGE) {
            put_series(b, f, name, "_created", lt, ll, NULL, 0);
            fp_buf_float(b, fp_loadd(&se->created), 1);
            fp_buf_putc(b, '\n');
        }
    }
    free(le);
    free(lelen);
    free(counts);
    return b->oom ? FP_ENOMEM : FP_OK;
}
