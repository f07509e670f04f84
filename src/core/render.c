/* render.c: the text exposition writers (see render.h).
 *
 * The rules are prometheus_client's (exposition.generate_latest and
 * openmetrics.exposition.generate_latest), including its name escaping:
 * metadata lines name a family as escape_metric_name does, text sample
 * lines likewise, OpenMetrics sample lines escape the sample name with the
 * label-name character set unless it is written quoted (allow-utf-8). */
#include "render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fp_type_name(uint32_t type)
{
    static const char *const names[] = {"unknown", "counter", "gauge", "histogram", "summary"};
    return type <= FP_SUMMARY ? names[type] : "unknown";
}

/* 1 if the bytes are all legacy metric-name characters (a suffix). */
static int legacy_tail(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(p[i] == '_' || p[i] == ':' || ((p[i] | 32) >= 'a' && (p[i] | 32) <= 'z') || (p[i] >= '0' && p[i] <= '9')))
            return 0;
    return 1;
}

/* 1 if name + suffix is a legacy metric name. */
static int legacy2(const char *p1, size_t n1, const char *p2, size_t n2)
{
    return n1 ? fp_valid_metric_name(p1, n1) && legacy_tail(p2, n2) : fp_valid_metric_name(p2, n2);
}

void fp_writer_init(fp_writer *w, fp_buf *b, int view, int esc, const char *name, size_t nlen)
{
    w->b = b;
    w->view = view;
    w->esc = esc;
    w->name = name;
    w->nlen = nlen;
    int legacy = fp_valid_metric_name(name, nlen);
    if (view == FP_VIEW_OPENMETRICS)
        /* _escape(name, scheme, label-name runes) unless allow-utf-8: only
         * a legacy name without a colon comes out unchanged. */
        w->plain_name = esc == FP_ESC_ALLOWUTF8 ? legacy : esc == FP_ESC_UNDERSCORES && fp_valid_label_name(name, nlen);
    else
        w->plain_name = legacy && esc != FP_ESC_DOTS;
    w->plain_labels = esc != FP_ESC_DOTS;
}

/* escape_metric_name(p1 + p2): as it is when legacy, escaped otherwise
 * (in quotes for allow-utf-8); the dots scheme escapes every name. */
static void put_metric_name(fp_buf *b, int esc, const char *p1, size_t n1, const char *p2, size_t n2)
{
    int legacy = legacy2(p1, n1, p2, n2);
    if (legacy && esc != FP_ESC_DOTS) {
        fp_buf_put(b, p1, n1);
        fp_buf_put(b, p2, n2);
        return;
    }
    int quoted = esc == FP_ESC_ALLOWUTF8;
    if (quoted)
        fp_buf_putc(b, '"');
    fp_escape_name(b, p1, n1, esc, 1, 1);
    fp_escape_name(b, p2, n2, esc, 1, n1 == 0);
    if (quoted)
        fp_buf_putc(b, '"');
}

void fp_write_meta(const fp_writer *w, const char *suffix, const char *type, const char *help, size_t hlen,
                   const char *unit, size_t ulen)
{
    fp_buf *b = w->b;
    int om = w->view == FP_VIEW_OPENMETRICS;
    const char *ttype = type, *tsuffix = "";
    if (!om) {
        if (!strcmp(type, "counter"))
            tsuffix = "_total";
        else if (!strcmp(type, "info"))
            ttype = "gauge", tsuffix = "_info";
        else if (!strcmp(type, "stateset"))
            ttype = "gauge";
        else if (!strcmp(type, "gaugehistogram"))
            ttype = "histogram";
        else if (!strcmp(type, "unknown"))
            ttype = "untyped";
    }
    /* The name: the family's, its suffix, the text format's type suffix. */
    char stack[256], *full = stack;
    size_t sl = strlen(suffix), tl = strlen(tsuffix), fl = w->nlen + sl + tl;
    if (fl > sizeof stack && !(full = malloc(fl))) {
        b->oom = 1;
        return;
    }
    memcpy(full, w->name, w->nlen);
    memcpy(full + w->nlen, suffix, sl);
    memcpy(full + w->nlen + sl, tsuffix, tl);
    fp_buf_puts(b, "# HELP ");
    put_metric_name(b, w->esc, full, fl, "", 0);
    fp_buf_putc(b, ' ');
    fp_buf_escaped(b, help, hlen, om);
    fp_buf_puts(b, "\n# TYPE ");
    put_metric_name(b, w->esc, full, fl, "", 0);
    fp_buf_putc(b, ' ');
    fp_buf_puts(b, ttype);
    fp_buf_putc(b, '\n');
    if (om && ulen) {
        fp_buf_puts(b, "# UNIT ");
        put_metric_name(b, w->esc, full, fl, "", 0);
        fp_buf_putc(b, ' ');
        fp_buf_put(b, unit, ulen);
        fp_buf_putc(b, '\n');
    }
    if (full != stack)
        free(full);
}

/* One escaped pair, its name rewritten by the scheme. */
static void put_pair(fp_buf *b, int esc, const char *name, size_t nlen, const char *value, size_t vlen)
{
    fp_put_name(b, name, nlen, esc, 0);
    fp_buf_put(b, "=\"", 2);
    fp_buf_put(b, value, vlen);
    fp_buf_putc(b, '"');
}

/* Escaped pairs (text) with their names rewritten; 1 if any was written. */
static int put_pairs(fp_buf *b, int esc, const char *text, size_t len, int comma)
{
    size_t pos = 0, nl, vl;
    const char *n, *v;
    while (fp_label_span(text, len, &pos, &n, &nl, &v, &vl) == 1) {
        if (comma)
            fp_buf_putc(b, ',');
        put_pair(b, esc, n, nl, v, vl);
        comma = 1;
    }
    return comma;
}

/* The label pairs, with the extra pair at its place among them. */
static void put_labels(const fp_writer *w, const fp_sample *smp)
{
    fp_buf *b = w->b;
    const char *l = smp->labels;
    size_t len = smp->labels_len, split = smp->extra_len ? smp->split : len;
    /* before: l[0, split); after: l[split (+1 for the comma), len) */
    size_t after = split < len ? split + (split > 0) : len;
    if (w->plain_labels) {
        fp_buf_put(b, l, split);
        if (smp->extra_len) {
            if (split)
                fp_buf_putc(b, ',');
            fp_buf_put(b, smp->extra, smp->extra_len);
        }
        if (after < len) {
            if (split || smp->extra_len)
                fp_buf_putc(b, ',');
            fp_buf_put(b, l + after, len - after);
        }
        return;
    }
    int any = put_pairs(b, w->esc, l, split, 0);
    if (smp->extra_len)
        any = put_pairs(b, w->esc, smp->extra, smp->extra_len, any);
    put_pairs(b, w->esc, l + after, len - after, any);
}

/* int(float(ts) * 1000): milliseconds, truncated toward zero, every digit. */
static void put_millis(fp_buf *b, double ts)
{
    char tmp[400];
    double ms = trunc(ts * 1000.0);
    int n = snprintf(tmp, sizeof tmp, "%.0f", ms == 0 ? 0.0 : ms);
    if (n > 0)
        fp_buf_put(b, tmp, (size_t)n);
}

void fp_write_sample(const fp_writer *w, const char *sname, size_t snlen, const fp_sample *smp)
{
    fp_buf *b = w->b;
    int om = w->view == FP_VIEW_OPENMETRICS, esc = w->esc;
    /* The sample's name: the family's name and suffix, or its own. */
    const char *p1 = sname ? sname : w->name, *p2 = sname ? "" : smp->suffix;
    size_t n1 = sname ? snlen : w->nlen, n2 = strlen(p2);
    int has_labels = smp->labels_len || smp->extra_len;
    int plain = sname ? -1 : w->plain_name; /* -1: work it out */
    int legacy = plain == 1 ? 1 : legacy2(p1, n1, p2, n2);
    if (esc == FP_ESC_ALLOWUTF8 && !legacy) {
        /* {"name",labels} */
        fp_buf_puts(b, "{\"");
        fp_escape_name(b, p1, n1, esc, 1, 1);
        fp_escape_name(b, p2, n2, esc, 1, 0);
        fp_buf_putc(b, '"');
        if (has_labels) {
            fp_buf_putc(b, ',');
            put_labels(w, smp);
        }
        fp_buf_putc(b, '}');
    } else {
        if (plain == 1) {
            fp_buf_put(b, p1, n1);
            fp_buf_put(b, p2, n2);
        } else if (om) {
            fp_escape_name(b, p1, n1, esc, 0, 1);
            fp_escape_name(b, p2, n2, esc, 0, n1 == 0);
        } else {
            put_metric_name(b, esc, p1, n1, p2, n2);
        }
        if (has_labels) {
            fp_buf_putc(b, '{');
            put_labels(w, smp);
            fp_buf_putc(b, '}');
        }
    }
    fp_buf_putc(b, ' ');
    fp_buf_value(b, smp->value);
    if (smp->has_ts) {
        fp_buf_putc(b, ' ');
        if (!om)
            put_millis(b, smp->ts);
        else if (smp->ts_text)
            fp_buf_put(b, smp->ts_text, smp->ts_len);
        else
            fp_buf_repr(b, smp->ts);
    }
    if (om && smp->exemplar) {
        const fp_exemplar_data *e = smp->exemplar;
        fp_buf_puts(b, " # ");
        fp_buf_put(b, e->text, e->len);
        fp_buf_putc(b, ' ');
        fp_buf_value(b, e->value);
        if (e->has_ts) {
            fp_buf_putc(b, ' ');
            if (e->ts_text)
                fp_buf_put(b, e->ts_text, e->ts_len);
            else
                fp_buf_repr(b, e->ts);
        }
    }
    fp_buf_putc(b, '\n');
}

/* A sample name (family name and suffix) made once per suffix, so that
 * a store family's lines, when nothing in them needs escaping, are each
 * written with one reservation and a few copies. */
#define HEADS 6
typedef struct {
    const char *suffix;     /* the suffix (a string of fp_point_samples'), or NULL: unused */
    size_t len;
    char text[FP_HEAD_MAX];
} line_head;

typedef struct {
    fp_writer main;         /* the family's lines */
    fp_writer side;         /* text format: its _created lines */
    int fast;               /* names and label names written as they are */
    line_head heads[HEADS];
} render_ctx;

/* The head for a suffix: found among those made, or made; NULL when the
 * name is too long for one (the line is then written the general way). */
static const line_head *head_for(render_ctx *r, const char *suffix)
{
    for (int i = 0; i < HEADS; i++) {
        line_head *h = &r->heads[i];
        if (h->suffix == suffix)
            return h;
        if (!h->suffix) {
            size_t sl = strlen(suffix);
            if (r->main.nlen + sl > sizeof h->text)
                return NULL;
            memcpy(h->text, r->main.name, r->main.nlen);
            memcpy(h->text + r->main.nlen, suffix, sl);
            h->len = r->main.nlen + sl;
            h->suffix = suffix;
            return h;
        }
    }
    return NULL;
}

/* name{labels} value\n, nothing escaped, no timestamp or exemplar. */
static void write_plain(fp_buf *b, const line_head *h, const fp_sample *smp)
{
    size_t ll = smp->labels_len, el = smp->extra_len;
    /* name, {, labels, two commas, extra, }, space, a value (32), newline */
    if (!fp_buf_reserve(b, h->len + ll + el + 40))
        return;
    char *p = b->p + b->len;
    fp_copy(p, h->text, h->len);
    p += h->len;
    if (ll || el) {
        *p++ = '{';
        const char *l = smp->labels;
        size_t split = el ? smp->split : ll;
        fp_copy(p, l, split);
        p += split;
        if (el) {
            if (split)
                *p++ = ',';
            fp_copy(p, smp->extra, el);
            p += el;
            /* after the split: l[split (+1 for its comma), ll) */
            size_t after = split < ll ? split + (split > 0) : ll;
            if (after < ll) {
                *p++ = ',';
                fp_copy(p, l + after, ll - after);
                p += ll - after;
            }
        }
        *p++ = '}';
    }
    *p++ = ' ';
    p += fp_format_value(p, smp->value);
    *p++ = '\n';
    b->len = (size_t)(p - b->p);
}

static int write_one(void *ctx, const fp_sample *smp)
{
    render_ctx *r = ctx;
    /* Text: the created timestamps are a gauge family of their own.  (The
     * suffixes are fp_point_samples' own: only _created starts _cr.) */
    const char *sfx = smp->suffix;
    const fp_writer *w =
        r->main.view == FP_VIEW_TEXT && sfx[0] == '_' && sfx[1] == 'c' && sfx[2] == 'r' ? &r->side : &r->main;
    const line_head *h;
    if (r->fast && !smp->has_ts && !(smp->exemplar && w->view == FP_VIEW_OPENMETRICS) && (h = head_for(r, sfx)))
        write_plain(w->b, h, smp);
    else
        fp_write_sample(w, NULL, 0, smp);
    return 0;
}

static int write_point(void *ctx, const fp_walk *w, const fp_point *p)
{
    render_ctx *r = ctx;
    return fp_point_samples(w, p, r->main.view, write_one, ctx);
}

int fp_render_family(fp_buf *b, fp_buf *side, const fp_store *s, uint32_t family, int view, int esc)
{
    const fp_family *f = fp_family_get(s, family);
    if (!f)
        return FP_EINVAL;
    const char *name = fp_family_name(s, f), *help = fp_at(s, f->help), *unit = fp_at(s, f->unit);
    render_ctx r;
    fp_writer_init(&r.main, b, view, esc, name, f->name_len);
    r.side = r.main;
    r.side.b = side;
    r.fast = r.main.plain_name == 1 && r.main.plain_labels;
    memset(r.heads, 0, sizeof r.heads);
    side->len = 0;
    fp_write_meta(&r.main, "", fp_type_name(f->type), help, f->help_len, unit, f->unit_len);
    int rc = fp_walk_family(s, family, write_point, &r);
    if (rc == 0 && side->len) {
        fp_write_meta(&r.main, "_created", "gauge", help, f->help_len, unit, 0);
        fp_buf_put(b, side->p, side->len);
    }
    if (rc == FP_ENOHEAP || side->oom)
        b->oom = 1;
    return b->oom ? FP_ENOHEAP : rc;
}
