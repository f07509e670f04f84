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

/* Appends the label pairs of a dict to b, sorted by name, as
 * prometheus_client writes them: names by the scheme (`esc`, or as they
 * are when esc < 0: exemplars), values escaped.  0 or -1. */
static int labels_text(fp_buf *b, PyObject *labels, int esc)
{
    if (labels == Py_None)
        return 0;
    if (!PyDict_Check(labels)) {
        PyErr_SetString(PyExc_TypeError, "sample labels must be a dict");
        return -1;
    }
    Py_ssize_t n = PyDict_GET_SIZE(labels), pos = 0, i = 0;
    const char *sk[16], *sv[16], **kp = n <= 16 ? sk : PyMem_Calloc((size_t)n, sizeof *kp);
    const char **vp = n <= 16 ? sv : PyMem_Calloc((size_t)n, sizeof *vp);
    size_t skl[16], svl[16], *kl = n <= 16 ? skl : PyMem_Calloc((size_t)n, sizeof *kl);
    size_t *vl = n <= 16 ? svl : PyMem_Calloc((size_t)n, sizeof *vl);
    uint32_t so[16], *order = n <= 16 ? so : PyMem_Calloc((size_t)n, sizeof *order);
    int rc = -1;
    PyObject *k, *v;
    if (!kp || !vp || !kl || !vl || !order) {
        PyErr_NoMemory();
        goto done;
    }
    /* Label dicts are plain data: PyDict_Next runs no Python code on str keys. */
    while (PyDict_Next(labels, &pos, &k, &v) && i < n) {
        Py_ssize_t a, c;
        if (!(kp[i] = fp_utf8(k, &a, "label name")) || !(vp[i] = fp_utf8(v, &c, "label value")))
            goto done;
        kl[i] = (size_t)a;
        vl[i] = (size_t)c;
        i++;
    }
    fp_sort_names(kp, kl, (size_t)i, order);
    for (Py_ssize_t j = 0; j < i; j++) {
        uint32_t o = order[j];
        if (j)
            fp_buf_putc(b, ',');
        if (esc < 0)
            fp_buf_put(b, kp[o], kl[o]);
        else
            fp_put_name(b, kp[o], kl[o], esc, 0);
        fp_buf_put(b, "=\"", 2);
        fp_buf_escaped(b, vp[o], vl[o], 1);
        fp_buf_putc(b, '"');
    }
    if (b->oom)
        PyErr_NoMemory();
    else
        rc = 0;
done:
    if (kp && kp != sk)
        PyMem_Free(kp);
    if (vp && vp != sv)
        PyMem_Free(vp);
    if (kl && kl != skl)
        PyMem_Free(kl);
    if (vl && vl != svl)
        PyMem_Free(vl);
    if (order && order != so)
        PyMem_Free(order);
    return rc;
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

/* A timestamp attribute: its float value and, for OpenMetrics, str() of
 * it (a Timestamp writes sec.nsec, a float its repr) into t.  0 or -1. */
static int ts_attr(PyObject *o, const char *attr, double *out, int *present, fp_buf *t)
{
    PyObject *v = PyObject_GetAttrString(o, attr);
    if (!v)
        return -1;
    int rc = 0;
    *present = v != Py_None;
    t->len = 0;
    if (*present) {
        *out = PyFloat_AsDouble(v);
        PyObject *str = *out == -1.0 && PyErr_Occurred() ? NULL : PyObject_Str(v);
        Py_ssize_t n;
        const char *p = str ? PyUnicode_AsUTF8AndSize(str, &n) : NULL;
        if (p)
            fp_buf_put(t, p, (size_t)n);
        rc = p ? 0 : -1;
        Py_XDECREF(str);
    }
    Py_DECREF(v);
    return rc;
}

/* prometheus_client's rule: exemplars only on a counter's _total, a
 * histogram's (or gauge histogram's) _bucket, or a histogram sample named
 * as its family. */
static int exemplar_allowed(const char *type, const char *name, size_t nlen, const char *sname, Py_ssize_t snl)
{
    if (!strcmp(type, "counter"))
        return has_suffix(sname, snl, "_total");
    if (!strcmp(type, "gaugehistogram"))
        return has_suffix(sname, snl, "_bucket");
    if (!strcmp(type, "histogram"))
        return has_suffix(sname, snl, "_bucket") || ((size_t)snl == nlen && memcmp(sname, name, nlen) == 0);
    return 0;
}

typedef struct {
    fp_buf lbuf, ebuf, tsbuf, etsbuf;
    fp_buf side[3];         /* text: the _created, _gcount and _gsum lines */
} py_scratch;

static const char *const side_suffix[3] = {"_created", "_gcount", "_gsum"};

/* Writes one sample of a Python family.  0 or -1. */
static int write_pysample(const fp_writer *fw, PyObject *s, const char *type, py_scratch *sc)
{
    int om = fw->view == FP_VIEW_OPENMETRICS, rc = -1;
    PyObject *sname = PyObject_GetAttrString(s, "name");
    PyObject *labels = sname ? PyObject_GetAttrString(s, "labels") : NULL;
    PyObject *ex = labels ? PyObject_GetAttrString(s, "exemplar") : NULL;
    PyObject *elabels = NULL, *native = NULL;
    Py_ssize_t snl;
    const char *snp = ex ? fp_utf8(sname, &snl, "sample name") : NULL;
    fp_sample smp = {"", NULL, 0, 0, NULL, 0, 0.0, 0, 0, 0.0, NULL, 0, NULL};
    fp_exemplar_data exd = {NULL, 0, 0.0, 0, 0.0, NULL, 0};
    int has_value;
    if (!snp)
        goto done;
    /* Native histogram samples are for OpenMetrics 2.0; 1.0 skips them. */
    if (PyObject_HasAttrString(s, "native_histogram")) {
        if (!(native = PyObject_GetAttrString(s, "native_histogram")))
            goto done;
        if (native != Py_None) {
            rc = 0;
            goto done;
        }
    }
    if (float_attr(s, "value", &smp.value, &has_value) < 0 || ts_attr(s, "timestamp", &smp.ts, &smp.has_ts, &sc->tsbuf) < 0)
        goto done;
    if (!has_value) {
        PyErr_Format(PyExc_TypeError, "sample %R has no value", sname);
        goto done;
    }
    if (smp.has_ts && !isfinite(smp.ts)) {
        PyErr_Format(PyExc_ValueError, "sample %R has a non-finite timestamp", sname);
        goto done;
    }
    smp.ts_text = sc->tsbuf.p;
    smp.ts_len = sc->tsbuf.len;
    sc->lbuf.len = 0;
    if (labels_text(&sc->lbuf, labels, fw->esc) < 0)
        goto done;
    smp.labels = sc->lbuf.p;
    smp.labels_len = sc->lbuf.len;
    if (om && ex != Py_None) {
        if (!exemplar_allowed(type, fw->name, fw->nlen, snp, snl)) {
            PyErr_Format(PyExc_ValueError, "Metric %s has exemplars, but is not a histogram bucket or counter",
                         fw->name);
            goto done;
        }
        int has_ev;
        sc->ebuf.len = 0;
        fp_buf_putc(&sc->ebuf, '{');
        if (!(elabels = PyObject_GetAttrString(ex, "labels")) || float_attr(ex, "value", &exd.value, &has_ev) < 0 ||
            ts_attr(ex, "timestamp", &exd.ts, &exd.has_ts, &sc->etsbuf) < 0 || labels_text(&sc->ebuf, elabels, -1) < 0)
            goto done;
        fp_buf_putc(&sc->ebuf, '}');
        if (sc->ebuf.oom) {
            PyErr_NoMemory();
            goto done;
        }
        exd.text = sc->ebuf.p;
        exd.len = sc->ebuf.len;
        exd.ts_text = sc->etsbuf.p;
        exd.ts_len = sc->etsbuf.len;
        smp.exemplar = &exd;
    }
    const fp_writer *w = fw;
    fp_writer side;
    if (!om) {
        /* Text: _created, _gcount and _gsum samples of the family are gauge
         * families of their own, after it. */
        for (int k = 0; k < 3; k++) {
            size_t sl = strlen(side_suffix[k]);
            if ((size_t)snl == fw->nlen + sl && memcmp(snp, fw->name, fw->nlen) == 0 &&
                memcmp(snp + fw->nlen, side_suffix[k], sl) == 0) {
                side = *fw;
                side.b = &sc->side[k];
                w = &side;
                break;
            }
        }
    }
    fp_write_sample(w, snp, (size_t)snl, &smp);
    rc = 0;
done:
    Py_XDECREF(sname);
    Py_XDECREF(labels);
    Py_XDECREF(ex);
    Py_XDECREF(elabels);
    Py_XDECREF(native);
    return rc;
}

/* Adds the family to the args of the exception being raised, as
 * prometheus_client does, so that the user sees which family failed. */
static void name_the_family(PyObject *metric)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *args = value ? PyObject_GetAttrString(value, "args") : NULL;
    if (args && PyTuple_Check(args)) {
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        PyObject *more = PyTuple_New((n ? n : 1) + 1);
        PyObject *first = n ? NULL : PyUnicode_FromString("");
        if (more && (n || first)) {
            for (Py_ssize_t i = 0; i < n; i++)
                PyTuple_SET_ITEM(more, i, Py_NewRef(PyTuple_GET_ITEM(args, i)));
            if (!n)
                PyTuple_SET_ITEM(more, 0, Py_NewRef(first));
            PyTuple_SET_ITEM(more, n ? n : 1, Py_NewRef(metric));
            PyObject_SetAttrString(value, "args", more);
        }
        Py_XDECREF(first);
        Py_XDECREF(more);
    }
    Py_XDECREF(args);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

int fp_render_pyfamily(fp_buf *b, PyObject *metric, int view, int esc)
{
    int rc = -1;
    py_scratch sc;
    memset(&sc, 0, sizeof sc);
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
    const char *up = !tp ? NULL : (unit == Py_None || !PyObject_IsTrue(unit)) ? "" : fp_utf8(unit, &ul, "metric unit");
    if (!up)
        goto done;
    fp_writer w;
    fp_writer_init(&w, b, view, esc, np, (size_t)nl);
    w.plain_labels = 1; /* labels_text writes the names as the scheme says */
    fp_write_meta(&w, "", tp, dp, (size_t)dl, up, (size_t)ul);
    while ((s = PyIter_Next(iter))) {
        int ok = write_pysample(&w, s, tp, &sc) == 0;
        Py_DECREF(s);
        if (!ok)
            goto done;
    }
    if (PyErr_Occurred())
        goto done;
    for (int k = 0; k < 3; k++)
        if (sc.side[k].len) {
            fp_write_meta(&w, side_suffix[k], "gauge", dp, (size_t)dl, "", 0);
            fp_buf_put(b, sc.side[k].p, sc.side[k].len);
        }
    rc = 0;
done:
    if (rc < 0 && PyErr_Occurred())
        name_the_family(metric);
    fp_buf_free(&sc.lbuf);
    fp_buf_free(&sc.ebuf);
    fp_buf_free(&sc.tsbuf);
    fp_buf_free(&sc.etsbuf);
    for (int k = 0; k < 3; k++)
        fp_buf_free(&sc.side[k]);
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
