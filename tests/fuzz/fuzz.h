/* fuzz.h: what the two libFuzzer targets share.
 *
 *   - a reader that turns fuzz input into numbers and strings, never
 *     reading past the end (a short input reads as zeros);
 *   - the cheap well-formedness checks an exposition must pass: every line
 *     ends with a newline, no NUL unless one was fed in, metadata lines
 *     name a known type, sample lines are a name, a label set whose
 *     values are properly escaped (so no raw newline inside one), a
 *     number, an optional timestamp and (OpenMetrics) exemplar;
 *   - rendering every family of a store in every view and escaping scheme,
 *     with those checks, and the Python sample view's walk.
 *
 * A failed check prints the line and aborts, which libFuzzer reports as a
 * crash with the input that caused it. */
#ifndef FASTPROM_FUZZ_H
#define FASTPROM_FUZZ_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "labels.h"
#include "render.h"
#include "store.h"
#include "walk.h"

#define NVIEWS 2
#define NSCHEMES 4

/* ---- input --------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, at;
} fz_in;

static inline int fz_more(const fz_in *in) { return in->at < in->n; }

static inline uint8_t fz_u8(fz_in *in) { return in->at < in->n ? in->p[in->at++] : 0; }

static inline uint64_t fz_uint(fz_in *in, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)fz_u8(in) << (8 * i);
    return v;
}

/* Up to n bytes of input in place; *got says how many there were. */
static inline const char *fz_bytes(fz_in *in, size_t n, size_t *got)
{
    size_t left = in->n - in->at;
    *got = n < left ? n : left;
    const char *p = (const char *)in->p + in->at;
    in->at += *got;
    return p;
}

/* ---- failing ------------------------------------------------------- */

static const char *fz_context = "", *fz_scheme = "";

static inline void fz_fail(const char *what, const char *p, size_t n, size_t line_at)
{
    fprintf(stderr, "fuzz check failed: %s", what);
    if (p)
        fprintf(stderr, " (%s, escaping %s)", fz_context, fz_scheme);
    fprintf(stderr, "\n");
    if (p) {
        /* The offending line, bytes shown safely. */
        size_t end = line_at;
        while (end < n && p[end] != '\n' && end - line_at < 400)
            end++;
        fprintf(stderr, "at byte %zu of %zu: \"", line_at, n);
        for (size_t i = line_at; i < end; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c >= 0x20 && c < 0x7f && c != '\\')
                fputc(c, stderr);
            else
                fprintf(stderr, "\\x%02x", c);
        }
        fprintf(stderr, "\"\n");
    }
    abort();
}

/* ---- exposition checks --------------------------------------------- */

typedef struct {
    const char *p;
    size_t n, at;
} fz_line;

static inline int fz_legacy_start(char c, int colon)
{
    return c == '_' || (colon && c == ':') || ((c | 32) >= 'a' && (c | 32) <= 'z');
}

static inline int fz_legacy_char(char c, int colon)
{
    return fz_legacy_start(c, colon) || (c >= '0' && c <= '9');
}

/* A quoted string: "..." whose escapes are \\, \" and \n (the writers'
 * only ones).  1 and past it, or 0. */
static inline int fz_quoted(fz_line *l)
{
    if (l->at >= l->n || l->p[l->at] != '"')
        return 0;
    for (l->at++; l->at < l->n; l->at++) {
        char c = l->p[l->at];
        if (c == '"') {
            l->at++;
            return 1;
        }
        if (c == '\\') {
            if (++l->at >= l->n)
                return 0;
            c = l->p[l->at];
            if (c != '\\' && c != '"' && c != 'n')
                return 0;
        }
    }
    return 0;
}

/* A name: legacy characters (with `colon`: a metric name) or, with
 * `quoted_ok`, a quoted string. */
static inline int fz_name(fz_line *l, int colon, int quoted_ok)
{
    if (l->at < l->n && l->p[l->at] == '"')
        return quoted_ok && fz_quoted(l);
    if (l->at >= l->n || !fz_legacy_start(l->p[l->at], colon))
        return 0;
    while (l->at < l->n && fz_legacy_char(l->p[l->at], colon))
        l->at++;
    return 1;
}

/* name="value" pairs up to '}' (consumed).  With `first_done` a pair has
 * already been read (the quoted metric name of {"name",...}). */
static inline int fz_pairs(fz_line *l, int utf8, int first_done)
{
    int any = first_done;
    for (;;) {
        if (l->at >= l->n)
            return 0;
        if (l->p[l->at] == '}') {
            l->at++;
            return 1;
        }
        if (any) {
            if (l->p[l->at] != ',')
                return 0;
            l->at++;
        }
        if (!fz_name(l, 0, utf8) || l->at >= l->n || l->p[l->at] != '=')
            return 0;
        l->at++;
        if (!fz_quoted(l))
            return 0;
        any = 1;
    }
}

/* A number as the writers print it: what strtod reads whole, with the
 * spellings +Inf, -Inf and NaN. */
static inline int fz_number(fz_line *l, int integer)
{
    size_t s = l->at;
    while (l->at < l->n && l->p[l->at] != ' ')
        l->at++;
    size_t len = l->at - s;
    if (len == 0 || len > 400)
        return 0;
    char tmp[401];
    memcpy(tmp, l->p + s, len);
    tmp[len] = '\0';
    if (integer) {
        size_t i = tmp[0] == '-';
        if (i == len)
            return 0;
        for (; i < len; i++)
            if (tmp[i] < '0' || tmp[i] > '9')
                return 0;
        return 1;
    }
    if (!strcmp(tmp, "+Inf") || !strcmp(tmp, "-Inf") || !strcmp(tmp, "NaN"))
        return 1;
    /* Spelled as Python's repr: no inf or nan words of other cases. */
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789.e+-", tmp[i]))
            return 0;
    char *end;
    (void)strtod(tmp, &end);
    return *end == '\0';
}

static inline const char *fz_meta_line(fz_line *l, int om, int utf8)
{
    const char *rest = l->p + l->at;
    size_t left = l->n - l->at;
    int help = left >= 7 && !memcmp(rest, "# HELP ", 7), type = left >= 7 && !memcmp(rest, "# TYPE ", 7);
    int unit = om && left >= 7 && !memcmp(rest, "# UNIT ", 7);
    if (!help && !type && !unit)
        return "a comment line that is not HELP, TYPE or UNIT";
    l->at += 7;
    if (!fz_name(l, 1, utf8))
        return "a metadata line with a bad metric name";
    if (l->at >= l->n || l->p[l->at] != ' ')
        return "no space after a metadata line's name";
    l->at++;
    size_t s = l->at;
    if (type) {
        static const char *const text_types[] = {"counter", "gauge", "histogram", "summary", "untyped", NULL};
        static const char *const om_types[] = {"counter", "gauge", "histogram", "summary", "unknown",
                                               "info", "stateset", "gaugehistogram", NULL};
        const char *const *t = om ? om_types : text_types;
        for (; *t; t++)
            if (strlen(*t) == l->n - s && !memcmp(*t, l->p + s, l->n - s))
                return NULL;
        return "an unknown type";
    }
    if (unit)
        return NULL; /* written as it is */
    /* HELP text: escapes are the writer's (\\ and \n, and \" in OpenMetrics). */
    for (size_t i = s; i < l->n; i++)
        if (l->p[i] == '\\') {
            char c = i + 1 < l->n ? l->p[i + 1] : 0;
            if (c != '\\' && c != 'n' && !(om && c == '"'))
                return "a bad escape in HELP text";
            i++;
        } else if (om && l->p[i] == '"') {
            return "an unescaped quote in OpenMetrics HELP text";
        }
    return NULL;
}

static inline const char *fz_sample_line(fz_line *l, int om, int utf8)
{
    if (l->at < l->n && l->p[l->at] == '{') {
        /* {"name"} or {"name",labels}: allow-utf-8 only. */
        l->at++;
        if (!utf8 || !fz_quoted(l))
            return "a quoted metric name outside allow-utf-8";
        if (!fz_pairs(l, utf8, 1))
            return "a bad label set";
    } else {
        if (!fz_name(l, 1, 0))
            return "a bad sample name";
        if (l->at < l->n && l->p[l->at] == '{') {
            l->at++;
            if (!fz_pairs(l, utf8, 0))
                return "a bad label set";
        }
    }
    if (l->at >= l->n || l->p[l->at] != ' ')
        return "no space before a sample's value";
    l->at++;
    if (!fz_number(l, 0))
        return "a bad sample value";
    if (l->at < l->n && l->n - l->at >= 3 && !memcmp(l->p + l->at, " # ", 3))
        goto exemplar;
    if (l->at < l->n) {
        l->at++; /* the space */
        if (!fz_number(l, !om))
            return "a bad timestamp";
    }
    if (l->at == l->n)
        return NULL;
    if (l->n - l->at < 3 || memcmp(l->p + l->at, " # ", 3))
        return "junk after a sample";
exemplar:
    if (!om)
        return "an exemplar in the text format";
    l->at += 3;
    if (l->at >= l->n || l->p[l->at] != '{')
        return "an exemplar without labels";
    l->at++;
    if (!fz_pairs(l, 0, 0))
        return "a bad exemplar label set";
    if (l->at >= l->n || l->p[l->at] != ' ')
        return "no space before an exemplar's value";
    l->at++;
    if (!fz_number(l, 0))
        return "a bad exemplar value";
    if (l->at < l->n) {
        l->at++;
        if (!fz_number(l, 0))
            return "a bad exemplar timestamp";
    }
    return l->at == l->n ? NULL : "junk after an exemplar";
}

/* Checks an exposition (one or more families, no # EOF); aborts with the
 * line that fails.  `nul_ok`: NUL bytes were fed in (help text, label
 * values), so they may be written as they are. */
static inline void fz_check_exposition(const char *p, size_t n, int view, int esc, int nul_ok)
{
    int om = view == FP_VIEW_OPENMETRICS, utf8 = esc == FP_ESC_ALLOWUTF8;
    static const char *const schemes[NSCHEMES] = {"underscores", "allow-utf-8", "dots", "values"};
    fz_context = om ? "OpenMetrics" : "text";
    fz_scheme = esc >= 0 && esc < NSCHEMES ? schemes[esc] : "?";
    if (n == 0)
        return;
    if (p[n - 1] != '\n')
        fz_fail("the output does not end with a newline", p, n, n - 1);
    if (!nul_ok && memchr(p, '\0', n))
        fz_fail("a NUL byte in the output", p, n, (size_t)((const char *)memchr(p, '\0', n) - p));
    for (size_t at = 0; at < n;) {
        const char *nl = memchr(p + at, '\n', n - at);
        size_t end = (size_t)(nl - p);
        fz_line l = {p, end, at};
        const char *why;
        if (end == at)
            why = "an empty line";
        else if (p[at] == '#')
            why = fz_meta_line(&l, om, utf8);
        else
            why = fz_sample_line(&l, om, utf8);
        if (why)
            fz_fail(why, p, n, at);
        at = end + 1;
    }
}

/* ---- rendering a store --------------------------------------------- */

/* The Python sample view: every sample of every point is read, and a
 * histogram's buckets are cumulative and end with its count. */
typedef struct {
    uint64_t sink;
} fz_walk_ctx;

static inline int fz_sample_cb(void *ctx, const fp_sample *smp)
{
    fz_walk_ctx *c = ctx;
    for (size_t i = 0; i < smp->labels_len; i++)
        c->sink += (unsigned char)smp->labels[i];
    for (size_t i = 0; i < smp->extra_len; i++)
        c->sink += (unsigned char)smp->extra[i];
    if (smp->exemplar)
        for (size_t i = 0; i < smp->exemplar->len; i++)
            c->sink += (unsigned char)smp->exemplar->text[i];
    c->sink += strlen(smp->suffix) + (uint64_t)smp->count;
    return 0;
}

static inline int fz_point_cb(void *ctx, const fp_walk *w, const fp_point *p)
{
    if (w->f->type == FP_HISTOGRAM) {
        for (uint32_t i = 1; i < w->f->nbuckets; i++)
            if (p->cumulative[i] < p->cumulative[i - 1])
                fz_fail("histogram buckets are not cumulative", NULL, 0, 0);
        if (p->cumulative[w->f->nbuckets - 1] != p->count)
            fz_fail("a histogram's +Inf bucket is not its count", NULL, 0, 0);
    }
    if (p->split > p->labels_len)
        fz_fail("a point's split is past its labels", NULL, 0, 0);
    return fp_point_samples(w, p, FP_VIEW_PYTHON, fz_sample_cb, ctx);
}

/* Renders every family in every view and scheme and checks the output;
 * `nul_ok(family)` says whether that family may show NUL bytes (NULL: any
 * family may, the store came from outside).  `check` off: render only
 * (a damaged store file may hold text that is not well-formed, which the
 * consistency check does not promise to catch). */
static inline void fz_render_store(const fp_store *s, int (*nul_ok)(uint32_t family, void *arg), void *arg, int check)
{
    fp_buf b, side;
    fp_buf_init(&b);
    fp_buf_init(&side);
    uint32_t n = fp_family_count(s);
    for (uint32_t i = 0; i < n; i++) {
        for (int view = 0; view < NVIEWS; view++)
            for (int esc = 0; esc < NSCHEMES; esc++) {
                b.len = 0;
                b.oom = 0;
                side.oom = 0;
                int rc = fp_render_family(&b, &side, s, i, view, esc);
                if (rc != FP_OK && rc != FP_ENOHEAP)
                    fz_fail("fp_render_family failed on a family the store lists", NULL, 0, 0);
                if (rc == FP_OK && check)
                    fz_check_exposition(b.p, b.len, view, esc, nul_ok ? nul_ok(i, arg) : 1);
            }
        fz_walk_ctx c = {0};
        int rc = fp_walk_family(s, i, fz_point_cb, &c);
        if (rc != FP_OK && rc != FP_ENOHEAP)
            fz_fail("fp_walk_family failed on a family the store lists", NULL, 0, 0);
    }
    fp_buf_free(&b);
    fp_buf_free(&side);
}

#endif
