/* render.c: the text exposition writers (see render.h). */
#include "render.h"

#include <math.h>
#include <string.h>

#include "labels.h"

const char *fp_type_name(uint32_t type)
{
    static const char *const names[] = {"unknown", "counter", "gauge", "histogram", "summary"};
    return type <= FP_SUMMARY ? names[type] : "unknown";
}

static void meta_line(fp_buf *b, const char *kind, const char *name, size_t nlen, const char *suffix,
                      const char *rest, size_t rlen, int escape, int quotes)
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

void fp_write_meta(fp_buf *b, int view, const char *name, size_t nlen, const char *type, const char *help,
                   size_t hlen, const char *unit, size_t ulen)
{
    int om = view == FP_VIEW_OPENMETRICS;
    const char *ttype = type, *suffix = "";
    if (!om) {
        if (!strcmp(type, "counter"))
            suffix = "_total";
        else if (!strcmp(type, "info"))
            ttype = "gauge", suffix = "_info";
        else if (!strcmp(type, "stateset"))
            ttype = "gauge";
        else if (!strcmp(type, "gaugehistogram"))
            ttype = "histogram";
        else if (!strcmp(type, "unknown"))
            ttype = "untyped";
    }
    meta_line(b, "# HELP ", name, nlen, suffix, help, hlen, 1, om);
    meta_line(b, "# TYPE ", name, nlen, suffix, ttype, strlen(ttype), 0, 0);
    if (om && ulen)
        meta_line(b, "# UNIT ", name, nlen, "", unit, ulen, 0, 0);
}

void fp_write_sample(fp_buf *b, int view, const char *name, size_t nlen, const fp_sample *smp)
{
    int om = view == FP_VIEW_OPENMETRICS;
    fp_buf_put(b, name, nlen);
    fp_buf_puts(b, smp->suffix);
    if (smp->labels_len || smp->extra_len) {
        fp_buf_putc(b, '{');
        fp_buf_put(b, smp->labels, smp->labels_len);
        if (smp->labels_len && smp->extra_len)
            fp_buf_putc(b, ',');
        fp_buf_put(b, smp->extra, smp->extra_len);
        fp_buf_putc(b, '}');
    }
    fp_buf_putc(b, ' ');
    if (om && smp->integral)
        fp_buf_uint(b, smp->count);
    else
        fp_buf_float(b, smp->value, om);
    if (smp->has_ts) {
        fp_buf_putc(b, ' ');
        /* Text 0.0.4 timestamps are integral milliseconds. */
        if (om)
            fp_buf_float(b, smp->ts, 1);
        else
            fp_buf_float(b, floor(smp->ts * 1000.0), 0);
    }
    if (om && smp->exemplar) {
        const fp_exemplar_data *e = smp->exemplar;
        fp_buf_puts(b, " # ");
        fp_buf_put(b, e->text, e->len);
        fp_buf_putc(b, ' ');
        fp_buf_float(b, e->value, 1);
        if (e->has_ts) {
            fp_buf_putc(b, ' ');
            fp_buf_float(b, e->ts, 1);
        }
    }
    fp_buf_putc(b, '\n');
}

typedef struct {
    fp_buf *b;
    int view;
    const char *name;
    size_t nlen;
} render_ctx;

static int write_one(void *ctx, const fp_sample *smp)
{
    render_ctx *r = ctx;
    fp_write_sample(r->b, r->view, r->name, r->nlen, smp);
    return 0;
}

static int write_point(void *ctx, const fp_walk *w, const fp_point *p)
{
    render_ctx *r = ctx;
    return fp_point_samples(w, p, r->view, write_one, ctx);
}

int fp_render_family(fp_buf *b, const fp_store *s, uint32_t family, int view)
{
    const fp_family *f = fp_family_get(s, family);
    if (!f)
        return FP_EINVAL;
    const char *name = fp_family_name(s, f);
    fp_write_meta(b, view, name, f->name_len, fp_type_name(f->type), fp_at(s, f->help), f->help_len,
                  fp_at(s, f->unit), f->unit_len);
    render_ctx r = {b, view, name, f->name_len};
    int rc = fp_walk_family(s, family, write_point, &r);
    if (rc == FP_ENOHEAP)
        b->oom = 1;
    return b->oom ? FP_ENOHEAP : rc;
}
