/* exemplar.c: exemplar arguments of the update methods and of
 * HttpRecorder.record, as the text the store keeps: {a="x",b="y"}, labels
 * sorted by name, at most 128 characters (the OpenMetrics limit). */
#include "state.h"

#include "labels.h"

/* A dict of str to str as exemplar text; 0, or -1 with an exception set. */
int fp_exemplar_text(MetricObject *m, PyObject *exemplar, char *text, size_t *len)
{
    if (!PyDict_Check(exemplar)) {
        PyErr_Format(PyExc_TypeError, "%s: exemplar must be a dict of str to str", fp_metric_name(m));
        return -1;
    }
    /* At most 128 characters, so at most 128 pairs (a name has one at least). */
    const char *kp[FP_EXEMPLAR_MAX_CHARS], *vp[FP_EXEMPLAR_MAX_CHARS];
    size_t kl[FP_EXEMPLAR_MAX_CHARS], vl[FP_EXEMPLAR_MAX_CHARS];
    uint32_t order[FP_EXEMPLAR_MAX_CHARS];
    Py_ssize_t chars = 0, pos = 0, n = 0, bytes = 2;
    PyObject *k, *v;
    while (PyDict_Next(exemplar, &pos, &k, &v)) {
        Py_ssize_t a, c;
        if (n == (Py_ssize_t)FP_EXEMPLAR_MAX_CHARS)
            goto toolong; /* a 129th pair: more than 128 characters */
        if (!(kp[n] = fp_utf8(k, &a, "exemplar label name")) || !(vp[n] = fp_utf8(v, &c, "exemplar label value")))
            return -1;
        /* Other names (UTF-8, reserved __...) are for the Python layer to judge. */
        if (!fp_valid_label_name(kp[n], (size_t)a) || (a > 1 && kp[n][0] == '_' && kp[n][1] == '_')) {
            PyObject *r = PyObject_CallMethod((PyObject *)m, "_check_exemplar_label_name", "O", k);
            if (!r)
                return -1;
            Py_DECREF(r);
        }
        chars += PyUnicode_GET_LENGTH(k) + PyUnicode_GET_LENGTH(v);
        if (chars > (Py_ssize_t)FP_EXEMPLAR_MAX_CHARS)
            goto toolong;
        /* The rendered pair: one more byte per \\, " and newline in the value. */
        bytes += a + c + 4;
        for (Py_ssize_t i = 0; i < c; i++)
            bytes += vp[n][i] == '\\' || vp[n][i] == '"' || vp[n][i] == '\n';
        kl[n] = (size_t)a;
        vl[n] = (size_t)c;
        n++;
    }
    if (bytes > (Py_ssize_t)FP_EXEMPLAR_TEXT)
        goto toolong;
    /* Sorted by name, as prometheus_client writes exemplar labels. */
    fp_sort_names(kp, kl, (size_t)n, order);
    char *p = text;
    *p++ = '{';
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        p += fp_label_pair(p, kp[order[i]], kl[order[i]], vp[order[i]], vl[order[i]]);
    }
    *p++ = '}';
    *len = (size_t)(p - text);
    return 0;
toolong:
    PyErr_Format(PyExc_ValueError, "%s: exemplar labels exceed %u characters (OpenMetrics limit): %R",
                 fp_metric_name(m), FP_EXEMPLAR_MAX_CHARS, exemplar);
    return -1;
}

/* Parses an exemplar argument into text; 1 when there is one, 0 for
 * none, -1 for a bad one (checked before anything is counted). */
int fp_exemplar_arg(MetricObject *m, PyObject *exemplar, char *text, size_t *len)
{
    if (!exemplar || exemplar == Py_None)
        return 0;
    return fp_exemplar_text(m, exemplar, text, len) < 0 ? -1 : 1;
}

/* Stores an exemplar after its count was recorded.  An exemplar is a
 * sample of the data, never the data: when the store has no room for it,
 * it is dropped and the count stands. */
void fp_keep_exemplar(MetricObject *m, fp_series *se, uint32_t nslots, uint32_t slot, const char *text,
                      size_t len, double value)
{
    (void)fp_exemplar_put(&m->store->st, se, nslots, slot, text, len, value, fp_now());
}
