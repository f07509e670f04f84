/* families.c: where store families meet Python's family objects.
 *
 * - Families built in Python (custom collectors, prometheus_client's
 *   Metric shape) are written through the core's writers (render.h), so
 *   they follow the same rules as store families.
 * - Their protobuf form, built from their samples.
 * The Python sample view of store families is in sample_view.c. */
#include "state.h"

#include <math.h>
#include <string.h>

#include "labels.h"
#include "proto.h"
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

/* ---- Python families in protobuf ------------------------------------
 *
 * A Python family's samples are flat (name, labels, value); a protobuf
 * Metric holds one series with all its parts.  Samples of one series
 * follow each other in a family (prometheus_client's collect() and the
 * *MetricFamily classes write them so), so a Metric is the run of
 * consecutive samples whose labels, le and quantile aside, are the same. */

enum { ROLE_VALUE, ROLE_CREATED, ROLE_BUCKET, ROLE_COUNT, ROLE_SUM, ROLE_QUANTILE };

typedef struct {
    int pbtype;
    int grouped;            /* histogram, gauge histogram, summary, counter */
    int open;
    fp_buf text, key, cur, sub, ex, tmp;
    double value, count, sum, created, ts;
    int has_created, has_ts;
} pb_metric;

/* The numbers of a count: uint64 when it is a whole number, else the
 * _float field (`ffield`). */
static void pb_count(fp_buf *b, uint32_t field, uint32_t ffield, double v)
{
    if (v >= 0 && v < 18446744073709551616.0 && v == floor(v))
        fp_pb_uint(b, field, (uint64_t)v);
    else
        fp_pb_double(b, ffield, v);
}

/* Writes the open Metric, if any. */
static void pb_flush(fp_buf *b, pb_metric *m, int esc)
{
    if (!m->open)
        return;
    m->open = 0;
    size_t mm = fp_pb_open(b, FP_PB_MF_METRIC);
    fp_pb_labels(b, FP_PB_M_LABEL, m->cur.p ? m->cur.p : "", m->cur.len, esc);
    size_t sm;
    switch (m->pbtype) {
    case FP_PB_COUNTER:
        sm = fp_pb_open(b, FP_PB_M_COUNTER);
        fp_pb_double(b, FP_PB_VALUE, m->value);
        fp_buf_put(b, m->ex.p, m->ex.len);
        if (m->has_created)
            fp_pb_timestamp(b, FP_PB_C_CREATED, m->created);
        break;
    case FP_PB_HISTOGRAM:
    case FP_PB_GAUGE_HISTOGRAM:
        sm = fp_pb_open(b, FP_PB_M_HISTOGRAM);
        pb_count(b, FP_PB_H_COUNT, 4, m->count);
        fp_pb_double(b, FP_PB_H_SUM, m->sum);
        fp_buf_put(b, m->sub.p, m->sub.len);
        if (m->has_created)
            fp_pb_timestamp(b, FP_PB_H_CREATED, m->created);
        break;
    case FP_PB_SUMMARY:
        sm = fp_pb_open(b, FP_PB_M_SUMMARY);
        pb_count(b, FP_PB_S_COUNT, FP_PB_S_COUNT, m->count);
        fp_pb_double(b, FP_PB_S_SUM, m->sum);
        fp_buf_put(b, m->sub.p, m->sub.len);
        if (m->has_created)
            fp_pb_timestamp(b, FP_PB_S_CREATED, m->created);
        break;
    default:
        sm = fp_pb_open(b, m->pbtype == FP_PB_GAUGE ? FP_PB_M_GAUGE : FP_PB_M_UNTYPED);
        fp_pb_double(b, FP_PB_VALUE, m->value);
        break;
    }
    fp_pb_close(b, sm);
    if (m->has_ts)
        fp_pb_uint(b, FP_PB_M_TIMESTAMP_MS, (uint64_t)(int64_t)trunc(m->ts * 1000.0));
    fp_pb_close(b, mm);
    m->sub.len = m->ex.len = 0;
    m->value = m->count = m->sum = m->created = m->ts = 0.0;
    m->has_created = m->has_ts = 0;
}

/* The role of a sample in its family's type, from its name's suffix;
 * -1 (and a ValueError) for a sample protobuf has no place for. */
static int pb_role(const char *type, const char *fam, size_t fl, const char *sn, size_t sl)
{
    static const struct {
        const char *type, *suffix;
        int role;
    } roles[] = {
        {"counter", "_total", ROLE_VALUE}, {"counter", "_created", ROLE_CREATED},
        {"gauge", "", ROLE_VALUE}, {"unknown", "", ROLE_VALUE}, {"untyped", "", ROLE_VALUE},
        {"stateset", "", ROLE_VALUE}, {"info", "_info", ROLE_VALUE},
        {"histogram", "_bucket", ROLE_BUCKET}, {"histogram", "_count", ROLE_COUNT},
        {"histogram", "_sum", ROLE_SUM}, {"histogram", "_created", ROLE_CREATED},
        {"gaugehistogram", "_bucket", ROLE_BUCKET}, {"gaugehistogram", "_gcount", ROLE_COUNT},
        {"gaugehistogram", "_gsum", ROLE_SUM}, {"gaugehistogram", "_created", ROLE_CREATED},
        {"summary", "", ROLE_QUANTILE}, {"summary", "_count", ROLE_COUNT}, {"summary", "_sum", ROLE_SUM},
        {"summary", "_created", ROLE_CREATED},
    };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        size_t k = strlen(roles[i].suffix);
        if (!strcmp(type, roles[i].type) && sl == fl + k && memcmp(sn, fam, fl) == 0 &&
            memcmp(sn + fl, roles[i].suffix, k) == 0)
            return roles[i].role;
    }
    PyErr_Format(PyExc_ValueError, "sample %s of %s family %s has no place in the protobuf format", sn, type, fam);
    return -1;
}

/* A bound label's value (le, quantile) as a number.  0 or -1. */
static int pb_bound(const char *p, size_t n, const char *what, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) {
        PyErr_Format(PyExc_ValueError, "%s label %.*s is not a number", what, (int)(n < 60 ? n : 60), p);
        return -1;
    }
    memcpy(tmp, p, n);
    tmp[n] = 0;
    char *end;
    *out = PyOS_string_to_double(tmp, &end, NULL);
    if (*out == -1.0 && PyErr_Occurred())
        PyErr_Clear();
    else if (*end == 0)
        return 0;
    PyErr_Format(PyExc_ValueError, "%s label %s is not a number", what, tmp);
    return -1;
}

/* Writes one sample of a Python family into the open Metric.  0 or -1. */
static int pb_sample(fp_buf *b, pb_metric *m, PyObject *s, const char *type, const char *fam, size_t fl, int esc)
{
    int rc = -1;
    PyObject *sname = PyObject_GetAttrString(s, "name");
    PyObject *labels = sname ? PyObject_GetAttrString(s, "labels") : NULL;
    PyObject *ex = labels ? PyObject_GetAttrString(s, "exemplar") : NULL;
    PyObject *elabels = NULL, *native = NULL;
    Py_ssize_t snl;
    const char *snp = ex ? fp_utf8(sname, &snl, "sample name") : NULL;
    double value, ts;
    int has_value, has_ts, role;
    if (!snp)
        goto done;
    /* Native histogram samples of prometheus_client: left for the native writer. */
    if (PyObject_HasAttrString(s, "native_histogram")) {
        if (!(native = PyObject_GetAttrString(s, "native_histogram")))
            goto done;
        if (native != Py_None) {
            rc = 0;
            goto done;
        }
    }
    if ((role = pb_role(type, fam, fl, snp, (size_t)snl)) < 0)
        goto done;
    if (float_attr(s, "value", &value, &has_value) < 0 || float_attr(s, "timestamp", &ts, &has_ts) < 0)
        goto done;
    if (!has_value) {
        PyErr_Format(PyExc_TypeError, "sample %R has no value", sname);
        goto done;
    }
    if (has_ts && !isfinite(ts)) {
        PyErr_Format(PyExc_ValueError, "sample %R has a non-finite timestamp", sname);
        goto done;
    }
    /* Milliseconds in an int64 (a double out of its range has no defined
     * conversion). */
    if (has_ts && !(fabs(ts) < 9e15)) {
        PyErr_Format(PyExc_ValueError, "sample %R has a timestamp out of range (at most 9e15 s either side of 1970)",
                     sname);
        goto done;
    }
    /* The labels, sorted; the key is them without the bound label. */
    m->text.len = m->key.len = 0;
    if (labels_text(&m->text, labels, -1) < 0)
        goto done;
    const char *bound_name = role == ROLE_BUCKET ? "le" : role == ROLE_QUANTILE ? "quantile" : NULL;
    const char *bv = NULL;
    size_t bvl = 0, pos = 0, nl, vl;
    const char *n, *v;
    while (fp_label_span(m->text.p ? m->text.p : "", m->text.len, &pos, &n, &nl, &v, &vl) == 1) {
        if (bound_name && nl == strlen(bound_name) && memcmp(n, bound_name, nl) == 0) {
            bv = v;
            bvl = vl;
            continue;
        }
        if (m->key.len)
            fp_buf_putc(&m->key, ',');
        fp_buf_put(&m->key, n, nl);
        fp_buf_put(&m->key, "=\"", 2);
        fp_buf_put(&m->key, v, vl);
        fp_buf_putc(&m->key, '"');
    }
    double bound = 0.0;
    if (bound_name && (!bv || pb_bound(bv, bvl, bound_name, &bound) < 0)) {
        if (!bv)
            PyErr_Format(PyExc_ValueError, "sample %R of family %s has no %s label", sname, fam, bound_name);
        goto done;
    }
    int same = m->key.len == m->cur.len && (!m->key.len || memcmp(m->key.p, m->cur.p, m->key.len) == 0);
    if (m->open && (!m->grouped || !same))
        pb_flush(b, m, esc);
    if (!m->open) {
        m->open = 1;
        m->cur.len = 0;
        fp_buf_put(&m->cur, m->key.p, m->key.len);
    }
    if (has_ts && !m->has_ts) {
        m->has_ts = 1;
        m->ts = ts;
    }
    fp_exemplar_data exd = {NULL, 0, 0.0, 0, 0.0, NULL, 0};
    int has_ex = 0;
    if (ex != Py_None) {
        if (role != ROLE_BUCKET && !(m->pbtype == FP_PB_COUNTER && role == ROLE_VALUE)) {
            PyErr_Format(PyExc_ValueError, "Metric %s has exemplars, but is not a histogram bucket or counter", fam);
            goto done;
        }
        int has_ev;
        m->tmp.len = 0;
        fp_buf_putc(&m->tmp, '{');
        if (!(elabels = PyObject_GetAttrString(ex, "labels")) || float_attr(ex, "value", &exd.value, &has_ev) < 0 ||
            float_attr(ex, "timestamp", &exd.ts, &exd.has_ts) < 0 || labels_text(&m->tmp, elabels, -1) < 0)
            goto done;
        fp_buf_putc(&m->tmp, '}');
        exd.text = m->tmp.p;
        exd.len = m->tmp.len;
        has_ex = 1;
    }
    switch (role) {
    case ROLE_VALUE:
        m->value = value;
        if (has_ex) {
            m->ex.len = 0;
            fp_pb_exemplar(&m->ex, FP_PB_C_EXEMPLAR, &exd);
        }
        break;
    case ROLE_CREATED: m->created = value; m->has_created = 1; break;
    case ROLE_COUNT:
        /* A summary's sample_count is an integer only (a histogram's has a
         * float twin). */
        if (m->pbtype == FP_PB_SUMMARY && !(value >= 0 && value < 18446744073709551616.0 && value == floor(value))) {
            PyErr_Format(PyExc_ValueError,
                         "sample %R of summary family %s: the protobuf format needs a count that is a whole number "
                         "of at least 0", sname, fam);
            goto done;
        }
        m->count = value;
        break;
    case ROLE_SUM: m->sum = value; break;
    case ROLE_BUCKET: {
        size_t bm = fp_pb_open(&m->sub, FP_PB_H_BUCKET);
        pb_count(&m->sub, FP_PB_B_COUNT, 4, value);
        fp_pb_double(&m->sub, FP_PB_B_UPPER, bound);
        if (has_ex)
            fp_pb_exemplar(&m->sub, FP_PB_B_EXEMPLAR, &exd);
        fp_pb_close(&m->sub, bm);
        break;
    }
    case ROLE_QUANTILE: {
        size_t qm = fp_pb_open(&m->sub, FP_PB_S_QUANTILE);
        fp_pb_double(&m->sub, FP_PB_Q_QUANTILE, bound);
        fp_pb_double(&m->sub, FP_PB_Q_VALUE, value);
        fp_pb_close(&m->sub, qm);
        break;
    }
    }
    if (!m->grouped)
        pb_flush(b, m, esc);
    rc = 0;
done:
    Py_XDECREF(sname);
    Py_XDECREF(labels);
    Py_XDECREF(ex);
    Py_XDECREF(elabels);
    Py_XDECREF(native);
    return rc;
}

int fp_render_pyfamily_pb(fp_buf *b, PyObject *metric, int esc)
{
    int rc = -1;
    pb_metric m;
    memset(&m, 0, sizeof m);
    PyObject *name = PyObject_GetAttrString(metric, "name");
    PyObject *doc = name ? PyObject_GetAttrString(metric, "documentation") : NULL;
    PyObject *type = doc ? PyObject_GetAttrString(metric, "type") : NULL;
    PyObject *unit = type ? PyObject_GetAttrString(metric, "unit") : NULL;
    PyObject *samples = unit ? PyObject_GetAttrString(metric, "samples") : NULL;
    PyObject *iter = samples ? PyObject_GetIter(samples) : NULL, *s = NULL;
    size_t start = b->len;
    if (!iter)
        goto done;
    Py_ssize_t nl, dl, tl, ul = 0;
    const char *np = fp_utf8(name, &nl, "metric name");
    const char *dp = np ? fp_utf8(doc, &dl, "metric documentation") : NULL;
    const char *tp = dp ? fp_utf8(type, &tl, "metric type") : NULL;
    const char *up = !tp ? NULL : (unit == Py_None || !PyObject_IsTrue(unit)) ? "" : fp_utf8(unit, &ul, "metric unit");
    if (!up)
        goto done;
    static const struct {
        const char *type, *suffix;
        int pbtype, grouped;
    } kinds[] = {
        {"counter", "_total", FP_PB_COUNTER, 1}, {"gauge", "", FP_PB_GAUGE, 0},
        {"info", "_info", FP_PB_GAUGE, 0}, {"stateset", "", FP_PB_GAUGE, 0},
        {"histogram", "", FP_PB_HISTOGRAM, 1}, {"gaugehistogram", "", FP_PB_GAUGE_HISTOGRAM, 1},
        {"summary", "", FP_PB_SUMMARY, 1}, {"unknown", "", FP_PB_UNTYPED, 0}, {"untyped", "", FP_PB_UNTYPED, 0},
    };
    size_t k = 0, nk = sizeof kinds / sizeof kinds[0];
    while (k < nk && strcmp(kinds[k].type, tp))
        k++;
    if (k == nk) {
        PyErr_Format(PyExc_ValueError, "metric %s has the unknown type %s", np, tp);
        goto done;
    }
    m.pbtype = kinds[k].pbtype;
    m.grouped = kinds[k].grouped;
    size_t mf = fp_pb_open(b, 0);
    fp_pb_name(b, FP_PB_MF_NAME, np, (size_t)nl, kinds[k].suffix, strlen(kinds[k].suffix), esc, 1);
    fp_pb_string(b, FP_PB_MF_HELP, dp, (size_t)dl);
    fp_pb_uint(b, FP_PB_MF_TYPE, (uint64_t)m.pbtype);
    if (ul)
        fp_pb_string(b, FP_PB_MF_UNIT, up, (size_t)ul);
    size_t body = b->len;
    while ((s = PyIter_Next(iter))) {
        int ok = pb_sample(b, &m, s, tp, np, (size_t)nl, esc) == 0;
        Py_DECREF(s);
        if (!ok)
            goto done;
    }
    if (PyErr_Occurred())
        goto done;
    pb_flush(b, &m, esc);
    if (b->len == body)
        b->len = start; /* no series: no family, as for store families */
    else
        fp_pb_close(b, mf);
    if (b->oom || m.text.oom || m.key.oom || m.cur.oom || m.sub.oom || m.ex.oom || m.tmp.oom) {
        PyErr_NoMemory();
        goto done;
    }
    rc = 0;
done:
    if (rc < 0) {
        b->len = start;
        if (PyErr_Occurred())
            name_the_family(metric);
    }
    fp_buf_free(&m.text);
    fp_buf_free(&m.key);
    fp_buf_free(&m.cur);
    fp_buf_free(&m.sub);
    fp_buf_free(&m.ex);
    fp_buf_free(&m.tmp);
    Py_XDECREF(name);
    Py_XDECREF(doc);
    Py_XDECREF(type);
    Py_XDECREF(unit);
    Py_XDECREF(samples);
    Py_XDECREF(iter);
    return rc;
}
