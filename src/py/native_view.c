/* native_view.c: the Python view of a series' native histogram buckets (tests
 * and debugging; the protobuf encoder reads the same fp_native). */
#include "state.h"

/* A list of (offset, length) spans and one of deltas, as a tuple pair. */
static PyObject *native_side(const fp_nh_span *spans, uint32_t ns, const int64_t *deltas, uint32_t nd)
{
    PyObject *sl = PyList_New(ns), *dl = PyList_New(nd);
    if (!sl || !dl)
        goto fail;
    for (uint32_t i = 0; i < ns; i++) {
        PyObject *t = Py_BuildValue("(iI)", spans[i].offset, spans[i].length);
        if (!t)
            goto fail;
        PyList_SET_ITEM(sl, i, t);
    }
    for (uint32_t i = 0; i < nd; i++) {
        PyObject *d = PyLong_FromLongLong(deltas[i]);
        if (!d)
            goto fail;
        PyList_SET_ITEM(dl, i, d);
    }
    return Py_BuildValue("(NN)", sl, dl);
fail:
    Py_XDECREF(sl);
    Py_XDECREF(dl);
    return NULL;
}

/* A dict of the series' native buckets, read as the walker reads them.
 * Returns a new reference, or NULL with an exception set. */
PyObject *fp_native_dict(const fp_family *f, fp_series *se)
{
    /* As the walker reads: classic cells (with acquire), then the block. */
    uint64_t classic = 0;
    for (uint32_t i = 0; i < f->nbuckets; i++)
        classic += fp_load_acq(&se->cells[i]);
    fp_nh_scratch sc = {NULL, NULL, NULL, 0};
    fp_native nh;
    if (fp_nh_read(f, se, fp_loadd(&se->cells[f->nbuckets]), &sc, &nh) != FP_OK) {
        fp_nh_scratch_free(&sc);
        return PyErr_NoMemory();
    }
    PyObject *pos = native_side(nh.pos_spans, nh.npos_spans, nh.pos_deltas, nh.npos);
    PyObject *neg = pos ? native_side(nh.neg_spans, nh.nneg_spans, nh.neg_deltas, nh.nneg) : NULL;
    fp_nh_scratch_free(&sc);
    if (!neg) {
        Py_XDECREF(pos);
        return NULL;
    }
    return Py_BuildValue("{sisdsKsKsKsdsNsN}", "schema", (int)nh.schema, "zero_threshold", nh.zero_threshold,
                         "zero_count", (unsigned long long)nh.zero_count, "count", (unsigned long long)nh.count,
                         "classic_count", (unsigned long long)classic, "sum", nh.sum, "positive", pos,
                         "negative", neg);
}
