/* metric_series.c: a metric's series by label values, for labels(),
 * remove() and the ASGI recorder: the store's lookup, with the overflow
 * series when the store is full or the metric's max_series is reached. */
#include "state.h"

#include <string.h>

/* The label value of every label of a family's overflow series. */
#define OVERFLOW_VALUE "fastprom_overflow"

int fp_values_of(PyObject *values, values_buf *vb)
{
    Py_ssize_t n = PyTuple_GET_SIZE(values);
    vb->vp = n <= 8 ? vb->stackp : PyMem_Calloc((size_t)n, sizeof *vb->vp);
    vb->vl = n <= 8 ? vb->stackl : PyMem_Calloc((size_t)n, sizeof *vb->vl);
    if (!vb->vp || !vb->vl) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        if (!(vb->vp[i] = fp_utf8(PyTuple_GET_ITEM(values, i), &len, "label value")))
            return -1;
        vb->vl[i] = (size_t)len;
    }
    return 0;
}

void fp_values_free(values_buf *vb)
{
    if (vb->vp && vb->vp != vb->stackp)
        PyMem_Free(vb->vp);
    if (vb->vl && vb->vl != vb->stackl)
        PyMem_Free(vb->vl);
}

/* The store is full, or the family has reached the metric's max_series
 * (limited): every further new label set of this family is counted under
 * the series whose label values are all OVERFLOW_VALUE, created from the
 * arena's reserve.  Warns once per metric and cause.  0 or -1. */
static int overflow_series(MetricObject *m, fp_series **out, int limited)
{
    uint32_t n = m->fam->nlabels;
    const char *stackp[8];
    size_t stackl[8];
    const char **vp = n <= 8 ? stackp : PyMem_Calloc(n, sizeof *vp);
    size_t *vl = n <= 8 ? stackl : PyMem_Calloc(n, sizeof *vl);
    int rc = -1;
    if (!vp || !vl) {
        PyErr_NoMemory();
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        vp[i] = OVERFLOW_VALUE;
        vl[i] = sizeof OVERFLOW_VALUE - 1;
    }
    int st = fp_series_get(&m->store->st, m->family, vp, vl, 1, 1, out);
    if (st != FP_OK) {
        fp_raise_status(Py_TYPE(m), st, fp_metric_name(m));
        goto done;
    }
    rc = 0;
    if (limited) {
        fp_add(&m->fam->limited, 1);
        if (!__atomic_exchange_n(&m->limit_warned, 1, __ATOMIC_RELAXED)) {
            if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                                 "%s: %llu series, its max_series; new label sets are counted under the series "
                                 "with every label = \"" OVERFLOW_VALUE "\" (fastprom_series_limited_total counts "
                                 "them; raise max_series, or keep unbounded values out of labels)",
                                 fp_metric_name(m), (unsigned long long)m->max_series) < 0)
                rc = -1;
        }
        goto done;
    }
    fp_add(&fp_hdr(&m->store->st)->overflowed, 1);
    if (!__atomic_exchange_n(&m->overflow_warned, 1, __ATOMIC_RELAXED)) {
        if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                             "%s: the metrics store is full; new label sets are counted under the series "
                             "with every label = \"" OVERFLOW_VALUE "\" (raise the store size)",
                             fp_metric_name(m)) < 0)
            rc = -1;
    }
done:
    if (vp != stackp)
        PyMem_Free(vp);
    if (vl != stackl)
        PyMem_Free(vl);
    return rc;
}

/* The series of these label values, created if need be: 0, or 1 when it is
 * the overflow series (the store is full, or the family at max_series), or
 * -1 with an exception set. */
int fp_metric_series(MetricObject *m, const char *const *values, const size_t *lens, fp_series **out)
{
    /* At the limit, only label sets that exist already are found; the
     * limit is checked before creating, so processes creating series at
     * the same instant may pass it by one each. */
    int create = !m->max_series || fp_load(&m->fam->nlive) < m->max_series;
    int rc = fp_series_get(&m->store->st, m->family, values, lens, create, 0, out);
    if (rc == FP_OK)
        return 0;
    if (rc == FP_ENOTFOUND && !create)
        return overflow_series(m, out, 1) < 0 ? -1 : 1;
    if (rc == FP_EFULL || rc == FP_ENOMEM) /* the store is full, not the heap */
        return overflow_series(m, out, 0) < 0 ? -1 : 1;
    fp_raise_status(Py_TYPE(m), rc, fp_metric_name(m));
    return -1;
}

