/* proto.c: the protobuf exposition writer (see proto.h). */
#include "proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2 };

void fp_pb_varint(fp_buf *b, uint64_t v)
{
    if (!fp_buf_reserve(b, 10))
        return;
    unsigned char *o = (unsigned char *)b->p + b->len;
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (unsigned char)v;
    b->len += n;
}

static inline void key(fp_buf *b, uint32_t field, int wire) { fp_pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire); }

void fp_pb_uint(fp_buf *b, uint32_t field, uint64_t v)
{
    key(b, field, WIRE_VARINT);
    fp_pb_varint(b, v);
}

void fp_pb_sint(fp_buf *b, uint32_t field, int64_t v)
{
    key(b, field, WIRE_VARINT);
    /* Zigzag: 0, -1, 1, -2 ... as 0, 1, 2, 3 ... */
    fp_pb_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v < 0 ? -1 : 0));
}

void fp_pb_double(fp_buf *b, uint32_t field, double v)
{
    key(b, field, WIRE_I64);
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    if (!fp_buf_reserve(b, 8))
        return;
    for (int i = 0; i < 8; i++) /* little-endian, whatever the machine's order */
        b->p[b->len++] = (char)(unsigned char)(u >> (8 * i));
}

void fp_pb_string(fp_buf *b, uint32_t field, const char *p, size_t n)
{
    key(b, field, WIRE_LEN);
    fp_pb_varint(b, n);
    fp_buf_put(b, p, n);
}

size_t fp_pb_open(fp_buf *b, uint32_t field)
{
    if (field)
        key(b, field, WIRE_LEN);
    return b->len;
}

void fp_pb_close(fp_buf *b, size_t mark)
{
    if (b->oom || mark > b->len)
        return;
    size_t body = b->len - mark, k = 1;
    for (uint64_t v = body; v >= 0x80; v >>= 7)
        k++;
    if (!fp_buf_reserve(b, k))
        return;
    /* Moves the body up to make room for its length in front of it. */
    memmove(b->p + mark + k, b->p + mark, body);
    size_t end = b->len + k;
    b->len = mark;
    fp_pb_varint(b, body);
    b->len = end;
}

void fp_pb_timestamp(fp_buf *b, uint32_t field, double t)
{
    if (!isfinite(t) || fabs(t) > 9e15)
        return;
    /* Microseconds: a double near today's time in seconds holds no finer
     * digits, and the text formats show no more. */
    double sec = floor(t);
    double ns = round((t - sec) * 1e6) * 1e3;
    if (ns >= 1e9) {
        sec += 1;
        ns = 0;
    }
    size_t m = fp_pb_open(b, field);
    if (sec != 0)
        fp_pb_uint(b, FP_PB_TS_SECONDS, (uint64_t)(int64_t)sec);
    if (ns > 0)
        fp_pb_uint(b, FP_PB_TS_NANOS, (uint64_t)ns);
    fp_pb_close(b, m);
}

void fp_pb_name(fp_buf *b, uint32_t field, const char *p1, size_t n1, const char *p2, size_t n2, int esc, int metric)
{
    char stack[256], *full = stack;
    size_t n = n1 + n2;
    if (n > sizeof stack && !(full = malloc(n))) {
        b->oom = 1;
        return;
    }
    if (n1)
        memcpy(full, p1, n1);
    if (n2)
        memcpy(full + n1, p2, n2);
    int legacy = metric ? fp_valid_metric_name(full, n) : fp_valid_label_name(full, n);
    size_t m = fp_pb_open(b, field);
    if (esc == FP_ESC_ALLOWUTF8 || (legacy && esc != FP_ESC_DOTS))
        fp_buf_put(b, full, n);
    else
        fp_escape_name(b, full, n, esc, metric, 1);
    fp_pb_close(b, m);
    if (full != stack)
        free(full);
}

/* A label value as escaped in label text (\\, \", \n), unescaped. */
static void put_unescaped(fp_buf *b, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        if (ch == '\\' && i + 1 < n) {
            ch = v[++i];
            if (ch == 'n')
                ch = '\n';
        }
        fp_buf_putc(b, ch);
    }
}

int fp_pb_labels(fp_buf *b, uint32_t field, const char *text, size_t len, int esc)
{
    size_t pos = 0, nlen, vlen;
    const char *name, *value;
    int rc;
    while ((rc = fp_label_span(text, len, &pos, &name, &nlen, &value, &vlen)) == 1) {
        size_t m = fp_pb_open(b, field);
        /* Legacy names (the store keeps no other) are written as they are
         * by every scheme but dots. */
        if (esc < 0 || esc == FP_ESC_ALLOWUTF8 || (esc != FP_ESC_DOTS && fp_valid_label_name(name, nlen)))
            fp_pb_string(b, FP_PB_LABEL_NAME, name, nlen);
        else
            fp_pb_name(b, FP_PB_LABEL_NAME, name, nlen, "", 0, esc, 0);
        if (!memchr(value, '\\', vlen)) {
            fp_pb_string(b, FP_PB_LABEL_VALUE, value, vlen);
        } else {
            size_t vm = fp_pb_open(b, FP_PB_LABEL_VALUE);
            put_unescaped(b, value, vlen);
            fp_pb_close(b, vm);
        }
        fp_pb_close(b, m);
    }
    return rc < 0 ? -1 : 0;
}

int fp_pb_exemplar(fp_buf *b, uint32_t field, const fp_exemplar_data *e)
{
    if (e->len < 2)
        return -1;
    size_t m = fp_pb_open(b, field);
    /* The stored text is {pairs}: the pairs without the braces. */
    int rc = fp_pb_labels(b, FP_PB_E_LABEL, e->text + 1, e->len - 2, -1);
    fp_pb_double(b, FP_PB_E_VALUE, e->value);
    if (e->has_ts)
        fp_pb_timestamp(b, FP_PB_E_TIMESTAMP, e->ts);
    fp_pb_close(b, m);
    return rc;
}

static void spans(fp_buf *b, uint32_t field, const fp_pb_span *sp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t m = fp_pb_open(b, field);
        fp_pb_sint(b, FP_PB_SPAN_OFFSET, sp[i].offset);
        fp_pb_uint(b, FP_PB_SPAN_LENGTH, sp[i].length);
        fp_pb_close(b, m);
    }
}

static void deltas(fp_buf *b, uint32_t field, const int64_t *d, size_t n)
{
    if (!n)
        return;
    /* Packed: one length-delimited field of zigzag varints. */
    size_t m = fp_pb_open(b, field);
    for (size_t i = 0; i < n; i++)
        fp_pb_varint(b, ((uint64_t)d[i] << 1) ^ (uint64_t)(d[i] < 0 ? -1 : 0));
    fp_pb_close(b, m);
}

void fp_pb_native_fields(fp_buf *b, const fp_pb_native *nh)
{
    if (!nh->has)
        return;
    fp_pb_sint(b, FP_PB_H_SCHEMA, nh->schema);
    fp_pb_double(b, FP_PB_H_ZERO_THRESHOLD, nh->zero_threshold);
    fp_pb_uint(b, FP_PB_H_ZERO_COUNT, nh->zero_count);
    spans(b, FP_PB_H_NEG_SPAN, nh->neg_spans, nh->n_neg_spans);
    deltas(b, FP_PB_H_NEG_DELTA, nh->neg_deltas, nh->n_neg_deltas);
    spans(b, FP_PB_H_POS_SPAN, nh->pos_spans, nh->n_pos_spans);
    deltas(b, FP_PB_H_POS_DELTA, nh->pos_deltas, nh->n_pos_deltas);
}

/* ---- store families ------------------------------------------------ */

typedef struct {
    fp_buf *b;
    int esc;
    size_t metrics;         /* Metric messages written */
} pb_ctx;

/* The native part of a histogram point: nothing for a classic one, else
 * the walker's reading of its native buckets (pointing into the walk's
 * scratch).  A native histogram without buckets gets one empty span, as
 * client_golang writes it, so that it is still taken for a native one. */
static void point_native(const fp_native *n, fp_pb_native *out)
{
    static const fp_pb_span empty = {0, 0};
    memset(out, 0, sizeof *out);
    if (!n)
        return;
    out->has = 1;
    out->schema = n->schema;
    out->zero_threshold = n->zero_threshold;
    out->zero_count = n->zero_count;
    out->neg_spans = n->neg_spans;
    out->n_neg_spans = n->nneg_spans;
    out->neg_deltas = n->neg_deltas;
    out->n_neg_deltas = n->nneg;
    out->pos_spans = n->pos_spans;
    out->n_pos_spans = n->npos_spans;
    out->pos_deltas = n->pos_deltas;
    out->n_pos_deltas = n->npos;
    if (!n->npos_spans && !n->nneg_spans) {
        out->pos_spans = &empty;
        out->n_pos_spans = 1;
    }
}

static void created(fp_buf *b, uint32_t field, double t)
{
    if (fp_created() && t > 0)
        fp_pb_timestamp(b, field, t);
}

static int pb_point(void *ctx, const fp_walk *w, const fp_point *p)
{
    pb_ctx *c = ctx;
    fp_buf *b = c->b;
    const fp_family *f = w->f;
    char exbuf[FP_EXEMPLAR_TEXT];
    fp_exemplar_data ex;
    size_t metric = fp_pb_open(b, FP_PB_MF_METRIC);
    fp_pb_labels(b, FP_PB_M_LABEL, p->labels, p->labels_len, c->esc);
    switch (f->type) {
    case FP_COUNTER: {
        size_t m = fp_pb_open(b, FP_PB_M_COUNTER);
        fp_pb_double(b, FP_PB_VALUE, p->value);
        if (fp_point_exemplar(w, p, 0, exbuf, &ex))
            fp_pb_exemplar(b, FP_PB_C_EXEMPLAR, &ex);
        created(b, FP_PB_C_CREATED, p->created);
        fp_pb_close(b, m);
        break;
    }
    case FP_GAUGE: {
        size_t m = fp_pb_open(b, FP_PB_M_GAUGE);
        fp_pb_double(b, FP_PB_VALUE, p->value);
        fp_pb_close(b, m);
        break;
    }
    case FP_HISTOGRAM: {
        const double *bounds = fp_at(w->s, f->buckets);
        const fp_native *native;
        int rc = fp_point_native(w, p, &native);
        if (rc)
            return rc;
        size_t m = fp_pb_open(b, FP_PB_M_HISTOGRAM);
        /* With native buckets the count is theirs: it equals their sum, as
         * Prometheus checks, and is never below the classic counts (read
         * before them; see native.h). */
        fp_pb_uint(b, FP_PB_H_COUNT, native ? native->count : p->count);
        fp_pb_double(b, FP_PB_H_SUM, p->sum);
        /* A native-only histogram (classic +Inf alone) writes no classic
         * bucket, as client_golang's does. */
        uint32_t nclassic = native && f->nbuckets == 1 ? 0 : f->nbuckets;
        for (uint32_t i = 0; i < nclassic; i++) {
            size_t bm = fp_pb_open(b, FP_PB_H_BUCKET);
            fp_pb_uint(b, FP_PB_B_COUNT, p->cumulative[i]);
            fp_pb_double(b, FP_PB_B_UPPER, bounds[i]);
            if (fp_point_exemplar(w, p, i, exbuf, &ex))
                fp_pb_exemplar(b, FP_PB_B_EXEMPLAR, &ex);
            fp_pb_close(b, bm);
        }
        created(b, FP_PB_H_CREATED, p->created);
        fp_pb_native nh;
        point_native(native, &nh);
        fp_pb_native_fields(b, &nh);
        fp_pb_close(b, m);
        break;
    }
    case FP_SUMMARY: {
        const double *qs = fp_at(w->s, f->quantiles);
        size_t m = fp_pb_open(b, FP_PB_M_SUMMARY);
        fp_pb_uint(b, FP_PB_S_COUNT, p->count);
        fp_pb_double(b, FP_PB_S_SUM, p->sum);
        for (uint32_t j = 0; j < f->nquantiles; j++) {
            size_t qm = fp_pb_open(b, FP_PB_S_QUANTILE);
            fp_pb_double(b, FP_PB_Q_QUANTILE, qs[j]);
            fp_pb_double(b, FP_PB_Q_VALUE, p->qvalues[j]);
            fp_pb_close(b, qm);
        }
        created(b, FP_PB_S_CREATED, p->created);
        fp_pb_close(b, m);
        break;
    }
    default: {
        size_t m = fp_pb_open(b, FP_PB_M_UNTYPED);
        fp_pb_double(b, FP_PB_VALUE, p->value);
        fp_pb_close(b, m);
        break;
    }
    }
    fp_pb_close(b, metric);
    c->metrics++;
    return b->oom ? FP_ENOHEAP : 0;
}

int fp_render_family_pb(fp_buf *b, const fp_store *s, uint32_t family, int esc)
{
    const fp_family *f = fp_family_get(s, family);
    if (!f)
        return FP_EINVAL;
    static const int types[] = {FP_PB_UNTYPED, FP_PB_COUNTER, FP_PB_GAUGE, FP_PB_HISTOGRAM, FP_PB_SUMMARY};
    const char *name = fp_family_name(s, f);
    size_t start = b->len;
    size_t mf = fp_pb_open(b, 0);
    /* A counter's family is named as its samples are: name_total. */
    fp_pb_name(b, FP_PB_MF_NAME, name, f->name_len, f->type == FP_COUNTER ? "_total" : "", f->type == FP_COUNTER ? 6 : 0,
               esc, 1);
    fp_pb_string(b, FP_PB_MF_HELP, fp_at(s, f->help), f->help_len);
    fp_pb_uint(b, FP_PB_MF_TYPE, (uint64_t)types[f->type <= FP_SUMMARY ? f->type : 0]);
    if (f->unit_len)
        fp_pb_string(b, FP_PB_MF_UNIT, fp_at(s, f->unit), f->unit_len);
    pb_ctx c = {b, esc, 0};
    int rc = fp_walk_family(s, family, pb_point, &c);
    if (rc == FP_ENOHEAP || b->oom) {
        b->oom = 1;
        return FP_ENOHEAP;
    }
    if (c.metrics == 0) {
        b->len = start;
        return rc;
    }
    fp_pb_close(b, mf);
    return b->oom ? FP_ENOHEAP : rc;
}
