/* sample_view.c: the Python sample view of a store family (collect(),
 * get_sample_value), built from the core's family walker, the same walk
 * the exposition uses, so the two cannot disagree. */
#include "state.h"

#include <string.h>

#include "labels.h"
#include "walk.h"

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
