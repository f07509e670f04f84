/* families.c: where store families meet Python's family objects.
 *
 * - Families built in Python (custom collectors, prometheus_client's
 *   Metric shape) are written through the core's writers (render.h), so
 *   they follow the same rules as store families.
 * - The Python sample view of a store family (collect(), get_sample_value)
 *   is built from the core's family walker, the same walk the exposition
 *   uses, so the two cannot disagree. */
#include "state.h"

#include <math.h>
#include <string.h>

#include "labels.h"
#include "render.h"

/* ---- Python families through the core's writers -------------------- */

/* Appends the escaped label pairs of a dict to b.  0 or -1. */
static int labels_text(fp_buf *b, PyObject *labels)
{
    if (labels == Py_None)
        return 0;
    if (!PyDict_Check(labels)) {
        PyErr_SetString(PyExc_TypeError, "sample labels must be a dict");
        return -1;
    }
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    int first = 1;
    while (PyDict_Next(labels, &pos, &k, &v)) {
        Py_ssize_t kl, vl;
        const char *kp = fp_utf8(k, &kl, "label name");
        const char *vp = kp ? fp_utf8(v, &vl, "label value") : NULL;
        if (!vp)
            return -1;
        if (!first)
            fp_buf_putc(b, ',');
        first = 0;
        fp_buf_put(b, kp, (size_t)kl);
        fp_buf_put(b, "=\"", 2);
        fp_buf_escaped(b, vp, (size_t)vl, 1);
        fp_buf_putc(b, '"');
    }
    if (b->oom) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int has_suffix(const char *s, Py_ssize_t n, const char *suf)
{
    size_t k = strlen(suf);
    return (size_t)n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* A float attribute that may be None.  0 or -1. */
static int float_attr(PyObject *o, const char *attr, double *out, int *present)
{
    PyObject *v = PyObject_GetAttrString(o, attr);
    if (!v)
        return -1;
    *present = v != Py_None;
    if (*present)
        *out = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return (*present && *out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* Writes one sample of a Python family.  0 or -1. */
static int write_pysample(fp_buf *b, PyObject *s, const char *type, int view, fp_buf *lbuf, fp_buf *ebuf)
{
    int om = view == FP_VIEW_OPENMETRICS, rc = -1;
    PyObject *sname = PyObject_GetAttrString(s, "name");
    PyObject *labels = sname ? PyObject_GetAttrString(s, "labels") : NULL;
    PyObject *ex = labels ? PyObject_GetAttrString(s, "exemplar") : NULL;
    PyObject *elabels = NULL;
    Py_ssize_t snl;
    const char *snp = ex ? fp_utf8(sname, &snl, "sample name") : NULL;
    fp_sample smp = {"", NULL, 0, NULL, 0, 0.0, 0, 0, 0, 0.0, NULL};
    fp_exemplar_data exd = {NULL, 0, 0.0, 0, 0.0};
    int has_value;
    if (!snp || float_attr(s, "value", &smp.value, &has_value) < 0 ||
        float_attr(s, "timestamp", &smp.ts, &smp.has_ts) < 0)
        goto done;
    if (!has_value) {
        PyErr_Format(PyExc_TypeError, "sample %R has no value", sname);
        goto done;
    }
    if (smp.has_ts && !isfinite(smp.ts)) {
        PyErr_Format(PyExc_ValueError, "sample %R has a non-finite timestamp", sname);
        goto done;
    }
    if (!om && has_suffix(snp, snl, "_created")) {
        rc = 0; /* text 0.0.4 has no created timestamps */
        goto done;
    }
    lbuf->len = 0;
    if (labels_text(lbuf, labels) < 0)
        goto done;
    smp.labels = lbuf->p;
    smp.labels_len = lbuf->len;
    if (om && ex != Py_None) {
        int has_ev;
        ebuf->len = 0;
        fp_buf_putc(ebuf, '{');
        if (!(elabels = PyObject_GetAttrString(ex, "labels")) || float_attr(ex, "value", &exd.value, &has_ev) < 0 ||
            float_attr(ex, "timestamp", &exd.ts, &exd.has_ts) < 0 || labels_text(ebuf, elabels) < 0)
            goto done;
        fp_buf_putc(ebuf, '}');
        if (ebuf->oom) {
            PyErr_NoMemory();
            goto done;
        }
        exd.text = ebuf->p;
        exd.len = ebuf->len;
        smp.exemplar = &exd;
    }
    size_t nlen = (size_t)snl;
    if (!om && !strcmp(type, "gaugehistogram") && (has_suffix(snp, snl, "_gsum") || has_suffix(snp, snl, "_gcount"))) {
        /* text 0.0.4 knows only _sum and _count */
        int gsum = has_suffix(snp, snl, "_gsum");
        nlen -= gsum ? 5 : 7;
        smp.suffix = gsum ? "_sum" : "_count";
    }
    fp_write_sample(b, view, snp, nlen, &smp);
    rc = 0;
done:
    Py_XDECREF(sname);
    Py_XDECREF(labels);
    Py_XDECREF(ex);
    Py_XDECREF(elabels);
    return rc;
}

int fp_render_pyfamily(fp_buf *b, PyObject *metric, int view)
{
    int rc = -1;
    fp_buf lbuf, ebuf;
    fp_buf_init(&lbuf);
    fp_buf_init(&ebuf);
    PyObject *name = PyObject_GetAttrString(metric, "name");
    PyObject *doc = name ? PyObject_GetAttrString(metric, "documentation") : NULL;
    PyObject *type = doc ? PyObject_GetAttrString(metric, "type") : NULL;
    PyObject *unit = type ? PyObject_GetAttrString(metric, "unit") : NULL;
    PyObject *samples = unit ? PyObject_GetAttrString(metric, "samples") : NULL;
    PyObject *iter = samples ? PyObject_GetIter(samples) : NULL, *s = NULL;
    if (!iter)
        goto done;
    Py_ssize_t nl, dl, tl, ul = 0;
    const char *np = fp_utf8(name, &nl, "metric name");
    const char *dp = np ? fp_utf8(doc, &dl, "metric documentation") : NULL;
    const char *tp = dp ? fp_utf8(type, &tl, "metric type") : NULL;
    const char *up = !tp ? NULL : unit == Py_None ? "" : fp_utf8(unit, &ul, "metric unit");
    if (!up)
        goto done;
    fp_write_meta(b, view, np, (size_t)nl, tp, dp, (size_t)dl, up, (size_t)ul);
    while ((s = PyIter_Next(iter))) {
        int ok = write_pysample(b, s, tp, view, &lbuf, &ebuf) == 0;
        Py_DECREF(s);
        if (!ok)
            goto done;
    }
    if (!PyErr_Occurred())
        rc = 0;
done:
    fp_buf_free(&lbuf);
    fp_buf_free(&ebuf);
    Py_XDECREF(name);
    Py_XDECREF(doc);
    Py_XDECREF(type);
    Py_XDECREF(unit);
    Py_XDECREF(samples);
    Py_XDECREF(iter);
    return rc;
}

/* ---- the Python sample view of a store family --------------------- */

#define NSUFFIX 8

typedef struct {
    PyObject *list, *sample_type, *exemplar_type;
    const char *name;
    const char *suffixes[NSUFFIX]; /* sample names made so far, by suffix */
    PyObject *names[NSUFFIX];
    PyObject *base;                /* the current point's labels */
    fp_buf value;                  /* scratch for unescaped values */
} view_ctx;

/* Adds the escaped pairs in text to dict d.  0 or -1. */
static int add_pairs(PyObject *d, const char *text, size_t len, fp_buf *scratch)
{
    size_t pos = 0, nlen;
    const char *name;
    int rc;
    while ((rc = fp_label_next(text, len, &pos, &name, &nlen, scratch)) == 1) {
        PyObject *k = PyUnicode_DecodeUTF8(name, (Py_ssize_t)nlen, "strict");
        PyObject *v = k ? PyUnicode_DecodeUTF8(scratch->p ? scratch->p : "", (Py_ssize_t)scratch->len, "strict")
                        : NULL;
        int bad = !v || PyDict_SetItem(d, k, v) < 0;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (bad)
            return -1;
    }
    if (rc < 0) {
        PyErr_SetString(PyExc_RuntimeError, "a series' label text is damaged");
        return -1;
    }
    return 0;
}

static PyObject *sample_name(view_ctx *c, const char *suffix)
{
    int i = 0;
    for (; i < NSUFFIX && c->suffixes[i]; i++)
        if (!strcmp(c->suffixes[i], suffix))
            return c->names[i];
    if (i == NSUFFIX) {
        PyErr_SetString(PyExc_RuntimeError, "too many sample suffixes");
        return NULL;
    }
    if (!(c->names[i] = PyUnicode_FromFormat("%s%s", c->name, suffix)))
        return NULL;
    c->suffixes[i] = suffix;
    return c->names[i];
}

static int view_sample(void *ctx, const fp_sample *smp)
{
    view_ctx *c = ctx;
    PyObject *name = sample_name(c, smp->suffix);
    if (!name)
        return -1;
    PyObject *labels = PyDict_Copy(c->base), *ex = Py_None, *row = NULL;
    if (!labels || (smp->extra && add_pairs(labels, smp->extra, smp->extra_len, &c->value) < 0))
        goto fail;
    if (smp->exemplar) {
        const fp_exemplar_data *e = smp->exemplar;
        PyObject *el = PyDict_New();
        /* The stored text is {pairs}: the pairs without the braces. */
        if (!el || e->len < 2 || add_pairs(el, e->text + 1, e->len - 2, &c->value) < 0) {
            if (el && e->len < 2)
                PyErr_SetString(PyExc_RuntimeError, "a stored exemplar is damaged");
            Py_XDECREF(el);
            goto fail;
        }
        ex = PyObject_CallFunction(c->exemplar_type, "Odd", el, e->value, e->ts);
        Py_DECREF(el);
        if (!ex)
            goto fail;
    }
    row = PyObject_CallFunction(c->sample_type, "OOdOO", name, labels, smp->value, Py_None, ex);
    if (ex != Py_None)
        Py_DECREF(ex);
    Py_DECREF(labels);
    if (!row || PyList_Append(c->list, row) < 0) {
        Py_XDECREF(row);
        return -1;
    }
    Py_DECREF(row);
    return 0;
fail:
    Py_XDECREF(labels);
    return -1;
}

static int view_point(void *ctx, const fp_walk *w, const fp_point *p)
{
    view_ctx *c = ctx;
    Py_XSETREF(c->base, PyDict_New());
    if (!c->base || add_pairs(c->base, p->labels, p->labels_len, &c->value) < 0)
        return -1;
    return fp_point_samples(w, p, FP_VIEW_PYTHON, view_sample, ctx);
}

PyObject *fp_family_samples(const fp_store *s, uint32_t family, PyObject *sample_type, PyObject *exemplar_type)
{
    const fp_family *f = fp_family_get(s, family);
    if (!f) {
        PyErr_Format(PyExc_ValueError, "no metric family %u in this store", family);
        return NULL;
    }
    view_ctx c = {PyList_New(0), sample_type, exemplar_type, fp_family_name(s, f), {NULL}, {NULL}, NULL, {0}};
    if (!c.list)
        return NULL;
    int rc = fp_walk_family(s, family, view_point, &c);
    for (int i = 0; i < NSUFFIX; i++)
        Py_XDECREF(c.names[i]);
    Py_XDECREF(c.base);
    fp_buf_free(&c.value);
    if (rc != 0) {
        if (rc == FP_ENOHEAP && !PyErr_Occurred())
            PyErr_NoMemory();
        else if (!PyErr_Occurred())
            PyErr_Format(PyExc_RuntimeError, "walking metric family %u failed (%d)", family, rc);
        Py_CLEAR(c.list);
    }
    return c.list;
}
