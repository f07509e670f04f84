/* module.c: the CPython binding of the store and renderer.
 *
 * Multi-phase init (PEP 489) with heap types and per-module state.  The
 * metric types here are bases: the Python layer subclasses them to add
 * registration, validation and the convenience API.  Every update method is
 * a single call into C that touches only atomic cells. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <structmember.h>

#include "quantile.h"
#include "render.h"
#include "store.h"

#if PY_VERSION_HEX < 0x030B0000
/* Public from 3.11; the same function was private in 3.10. */
#define PyType_GetModuleByDef _PyType_GetModuleByDef
#endif

typedef struct {
    PyTypeObject *Store;
    PyTypeObject *Metric;   /* shared base, not exported for direct use */
    PyTypeObject *Counter, *Gauge, *Histogram, *Summary;
    PyTypeObject *HttpRecorder, *SendTap;
    PyObject *s_type, *s_status, *s_headers, *s_start; /* interned message keys */
    PyObject *StoreFullError;
    PyObject *StoreFileError;
} module_state;

static struct PyModuleDef core_module;

static module_state *state_of_type(PyTypeObject *tp)
{
    PyObject *m = PyType_GetModuleByDef(tp, &core_module);
    return m ? PyModule_GetState(m) : NULL;
}

/* ---- Store ---------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    fp_store st;
} StoreObject;

/* Sets an exception for a negative fp_status and returns NULL. */
static PyObject *raise_status(PyTypeObject *tp, int rc, const char *what)
{
    module_state *ms = state_of_type(tp);
    if (!ms)
        return NULL;
    switch (rc) {
    case FP_EFULL:
        PyErr_Format(ms->StoreFullError,
                     "%s: the metrics store is full; create the registry with a larger size", what);
        break;
    case FP_ENOMEM:
        PyErr_Format(ms->StoreFullError,
                     "%s: the metrics store's arena is exhausted; create the registry with a larger size", what);
        break;
    case FP_EMISMATCH:
        PyErr_Format(PyExc_ValueError,
                     "%s: the shared metrics store already has a metric of this name with another type, "
                     "labels, buckets or multiprocess mode (from an earlier deploy, or another version of "
                     "the app still running): empty PROMETHEUS_MULTIPROC_DIR when no worker is running",
                     what);
        break;
    case FP_EFILE:
        PyErr_Format(ms->StoreFileError, "%s: the shared metrics store file could not be locked", what);
        break;
    default:
        PyErr_Format(PyExc_ValueError, "%s: invalid argument", what);
    }
    return NULL;
}

/* Says once that this process is not in the process table (so its "live"
 * gauges will outlive it).  0 or -1 with an exception set. */
static int warn_untracked(void)
{
    return PyErr_WarnEx(PyExc_RuntimeWarning,
                        "the shared metrics store's process table is full (4096 worker starts since the "
                        "store file was made): this process's live gauges will not disappear when it exits; "
                        "empty PROMETHEUS_MULTIPROC_DIR at the next deploy",
                        1);
}

static PyObject *Store_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"size", "path", NULL};
    unsigned long long size = 256ull << 20;
    PyObject *path = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|KO:Store", kwlist, &size, &path))
        return NULL;
    if (size < (1ull << 20) || size > (1ull << 40)) {
        PyErr_SetString(PyExc_ValueError, "Store size must be between 1 MiB and 1 TiB");
        return NULL;
    }
    PyObject *fspath = NULL;
    if (path != Py_None && !PyUnicode_FSConverter(path, &fspath))
        return NULL;
    StoreObject *self = (StoreObject *)tp->tp_alloc(tp, 0);
    if (!self) {
        Py_XDECREF(fspath);
        return NULL;
    }
    self->st.fd = -1;
    if (fspath) {
        char err[1024];
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = fp_store_open_file(&self->st, PyBytes_AS_STRING(fspath), size, err, sizeof err);
        Py_END_ALLOW_THREADS
        Py_DECREF(fspath);
        if (rc != FP_OK) {
            module_state *ms = state_of_type(tp);
            if (ms)
                PyErr_SetString(ms->StoreFileError, err);
            Py_DECREF(self);
            return NULL;
        }
        if (self->st.proc == 0 && warn_untracked() < 0) {
            Py_DECREF(self);
            return NULL;
        }
    } else if (fp_store_open(&self->st, size) != FP_OK) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void Store_dealloc(StoreObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    fp_store_close(&self->st);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* UTF-8 of a str argument, or NULL with TypeError naming `what`. */
static const char *utf8_of(PyObject *o, Py_ssize_t *len, const char *what)
{
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(o, len);
}

/* Reads a tuple of floats (or None) into a new PyMem array; strictly
 * ascending and not NaN.  0 or -1 with an exception set. */
static int float_tuple(PyObject *t, const char *what, double **out, Py_ssize_t *n)
{
    *out = NULL;
    *n = 0;
    if (t == Py_None)
        return 0;
    if (!PyTuple_Check(t)) {
        PyErr_Format(PyExc_TypeError, "%s must be a tuple of floats or None", what);
        return -1;
    }
    *n = PyTuple_GET_SIZE(t);
    if (!(*out = PyMem_Calloc((size_t)*n + 1, sizeof **out))) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        double v = PyFloat_AsDouble(PyTuple_GET_ITEM(t, i));
        if (v == -1.0 && PyErr_Occurred())
            return -1;
        if (isnan(v) || (i && v <= (*out)[i - 1])) {
            PyErr_Format(PyExc_ValueError, "%s must be sorted, distinct and not NaN", what);
            return -1;
        }
        (*out)[i] = v;
    }
    return 0;
}

static PyObject *Store_add_family(StoreObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"type", "name", "help", "unit", "labelnames", "buckets", "mpmode",
                             "quantiles", "max_age", "age_buckets", NULL};
    int type, mpmode = FP_MP_NONE, age_buckets = 5;
    double max_age = 600.0;
    PyObject *name, *help, *unit, *labelnames, *buckets = Py_None, *quantiles = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iUUUO!|OiOdi:add_family", kwlist, &type, &name, &help, &unit,
                                     &PyTuple_Type, &labelnames, &buckets, &mpmode, &quantiles, &max_age,
                                     &age_buckets))
        return NULL;
    if (type < FP_COUNTER || type > FP_SUMMARY) {
        PyErr_Format(PyExc_ValueError, "add_family: unknown metric type %d", type);
        return NULL;
    }
    if (mpmode < FP_MP_NONE || mpmode > FP_MP_LIVEMOSTRECENT || (mpmode != FP_MP_NONE && type != FP_GAUGE)) {
        PyErr_Format(PyExc_ValueError, "add_family: invalid multiprocess mode %d", mpmode);
        return NULL;
    }
    fp_family_spec sp = {.type = (uint32_t)type, .mpmode = (uint32_t)mpmode, .max_age = max_age};
    Py_ssize_t nl, hl, ul, n = PyTuple_GET_SIZE(labelnames), nb = 0, nq = 0;
    sp.name = PyUnicode_AsUTF8AndSize(name, &nl);
    sp.help = PyUnicode_AsUTF8AndSize(help, &hl);
    sp.unit = PyUnicode_AsUTF8AndSize(unit, &ul);
    if (!sp.name || !sp.help || !sp.unit)
        return NULL;
    sp.name_len = (size_t)nl;
    sp.help_len = (size_t)hl;
    sp.unit_len = (size_t)ul;
    PyObject *result = NULL;
    const char **lp = PyMem_Calloc((size_t)n + 1, sizeof *lp);
    size_t *ll = PyMem_Calloc((size_t)n + 1, sizeof *ll);
    double *bv = NULL, *qv = NULL;
    if (!lp || !ll) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        if (!(lp[i] = utf8_of(PyTuple_GET_ITEM(labelnames, i), &len, "label name")))
            goto done;
        ll[i] = (size_t)len;
    }
    if (float_tuple(buckets, "buckets", &bv, &nb) < 0 || float_tuple(quantiles, "quantiles", &qv, &nq) < 0)
        goto done;
    if (type == FP_HISTOGRAM && (nb == 0 || !isinf(bv[nb - 1]) || bv[nb - 1] < 0)) {
        PyErr_SetString(PyExc_ValueError, "histogram buckets must end with +Inf");
        goto done;
    }
    if (nq && (type != FP_SUMMARY || nq > FP_Q_MAX_QUANTILES || qv[0] < 0 || qv[nq - 1] > 1 || age_buckets < 1 ||
               age_buckets > (int)FP_Q_MAX_AGE_BUCKETS || !(max_age / age_buckets >= FP_Q_MIN_PERIOD) ||
               !(max_age <= FP_Q_MAX_AGE))) {
        PyErr_SetString(PyExc_ValueError, "add_family: invalid quantiles, max_age or age_buckets");
        goto done;
    }
    sp.labelnames = lp;
    sp.labelname_lens = ll;
    sp.nlabels = (uint32_t)n;
    sp.buckets = bv;
    sp.nbuckets = (uint32_t)nb;
    sp.quantiles = qv;
    sp.nquantiles = (uint32_t)nq;
    sp.age_buckets = (uint32_t)age_buckets;
    uint32_t idx;
    int rc = fp_family_add(&self->st, &sp, &idx);
    if (rc != FP_OK)
        raise_status(Py_TYPE(self), rc, sp.name);
    else
        result = PyLong_FromUnsignedLong(idx);
done:
    PyMem_Free(lp);
    PyMem_Free(ll);
    PyMem_Free(bv);
    PyMem_Free(qv);
    return result;
}

/* Renders the labels of a custom sample: {a="x",b="y"[,extra]}. */
static int put_custom_labels(fp_buf *b, PyObject *labels)
{
    if (labels == Py_None || (PyDict_Check(labels) && PyDict_GET_SIZE(labels) == 0))
        return 0;
    if (!PyDict_Check(labels)) {
        PyErr_SetString(PyExc_TypeError, "sample labels must be a dict");
        return -1;
    }
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    int first = 1;
    fp_buf_putc(b, '{');
    while (PyDict_Next(labels, &pos, &k, &v)) {
        Py_ssize_t kl, vl;
        const char *kp = utf8_of(k, &kl, "label name");
        const char *vp = kp ? utf8_of(v, &vl, "label value") : NULL;
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
    fp_buf_putc(b, '}');
    return 0;
}

static int has_suffix(const char *s, Py_ssize_t n, const char *suf)
{
    size_t k = strlen(suf);
    return (size_t)n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* 0, or -1 with an exception set. */
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

/* Renders a metric family yielded by a custom collector: an object with
 * name, documentation, type, unit and samples (each with name, labels,
 * value, timestamp, exemplar), as prometheus_client's Metric.  0 or -1. */
static int render_custom(fp_buf *b, PyObject *metric, int om)
{
    int rc = -1;
    PyObject *name = PyObject_GetAttrString(metric, "name");
    PyObject *doc = name ? PyObject_GetAttrString(metric, "documentation") : NULL;
    PyObject *type = doc ? PyObject_GetAttrString(metric, "type") : NULL;
    PyObject *unit = type ? PyObject_GetAttrString(metric, "unit") : NULL;
    PyObject *samples = unit ? PyObject_GetAttrString(metric, "samples") : NULL;
    PyObject *iter = samples ? PyObject_GetIter(samples) : NULL, *s = NULL;
    if (!iter)
        goto done;
    Py_ssize_t nl, dl, tl, ul = 0;
    const char *np = utf8_of(name, &nl, "metric name");
    const char *dp = np ? utf8_of(doc, &dl, "metric documentation") : NULL;
    const char *tp = dp ? utf8_of(type, &tl, "metric type") : NULL;
    if (!tp)
        goto done;
    const char *up = unit == Py_None ? "" : utf8_of(unit, &ul, "metric unit");
    if (!up)
        goto done;

    const char *ttype = tp, *tsuffix = "";
    if (!om) {
        if (!strcmp(tp, "counter"))
            tsuffix = "_total";
        else if (!strcmp(tp, "info"))
            ttype = "gauge", tsuffix = "_info";
        else if (!strcmp(tp, "stateset"))
            ttype = "gauge";
        else if (!strcmp(tp, "gaugehistogram"))
            ttype = "histogram";
        else if (!strcmp(tp, "unknown"))
            ttype = "untyped";
    }
    fp_buf_puts(b, "# HELP ");
    fp_buf_put(b, np, (size_t)nl);
    fp_buf_puts(b, tsuffix);
    fp_buf_putc(b, ' ');
    fp_buf_escaped(b, dp, (size_t)dl, om);
    fp_buf_puts(b, "\n# TYPE ");
    fp_buf_put(b, np, (size_t)nl);
    fp_buf_puts(b, tsuffix);
    fp_buf_putc(b, ' ');
    fp_buf_puts(b, ttype);
    fp_buf_putc(b, '\n');
    if (om && ul) {
        fp_buf_puts(b, "# UNIT ");
        fp_buf_put(b, np, (size_t)nl);
        fp_buf_putc(b, ' ');
        fp_buf_put(b, up, (size_t)ul);
        fp_buf_putc(b, '\n');
    }
    while ((s = PyIter_Next(iter))) {
        PyObject *sname = PyObject_GetAttrString(s, "name");
        PyObject *labels = sname ? PyObject_GetAttrString(s, "labels") : NULL;
        PyObject *ex = labels ? PyObject_GetAttrString(s, "exemplar") : NULL;
        double value = 0, ts = 0;
        int has_value, has_ts;
        Py_ssize_t snl;
        const char *snp = ex ? utf8_of(sname, &snl, "sample name") : NULL;
        int ok = snp && float_attr(s, "value", &value, &has_value) == 0 &&
                 float_attr(s, "timestamp", &ts, &has_ts) == 0;
        if (ok && !has_value) {
            PyErr_Format(PyExc_TypeError, "sample %R has no value", sname);
            ok = 0;
        }
        if (ok && has_ts && !isfinite(ts)) {
            PyErr_Format(PyExc_ValueError, "sample %R has a non-finite timestamp", sname);
            ok = 0;
        }
        if (ok && !om && has_suffix(snp, snl, "_created")) {
            /* text 0.0.4 has no created timestamps */
        } else if (ok) {
            fp_buf_put(b, snp, (size_t)snl);
            if (!om && !b->oom && !strcmp(tp, "gaugehistogram") &&
                (has_suffix(snp, snl, "_gsum") || has_suffix(snp, snl, "_gcount"))) {
                /* text 0.0.4 knows only _sum and _count */
                int gsum = has_suffix(snp, snl, "_gsum");
                b->len -= gsum ? 5 : 7;
                fp_buf_puts(b, gsum ? "_sum" : "_count");
            }
            ok = put_custom_labels(b, labels) == 0;
            fp_buf_putc(b, ' ');
            fp_buf_float(b, value, om);
            if (ok && has_ts) {
                fp_buf_putc(b, ' ');
                if (om)
                    fp_buf_float(b, ts, 1);
                else
                    fp_buf_float(b, floor(ts * 1000.0), 0);
            }
            if (ok && om && ex != Py_None) {
                PyObject *elabels = PyObject_GetAttrString(ex, "labels");
                double ev = 0, ets = 0;
                int has_ev, has_ets;
                ok = elabels && float_attr(ex, "value", &ev, &has_ev) == 0 &&
                     float_attr(ex, "timestamp", &ets, &has_ets) == 0;
                if (ok) {
                    fp_buf_puts(b, " # ");
                    if (elabels == Py_None || (PyDict_Check(elabels) && PyDict_GET_SIZE(elabels) == 0))
                        fp_buf_puts(b, "{}");
                    else
                        ok = put_custom_labels(b, elabels) == 0;
                    fp_buf_putc(b, ' ');
                    fp_buf_float(b, ev, 1);
                    if (has_ets) {
                        fp_buf_putc(b, ' ');
                        fp_buf_float(b, ets, 1);
                    }
                }
                Py_XDECREF(elabels);
            }
            fp_buf_putc(b, '\n');
        }
        Py_XDECREF(sname);
        Py_XDECREF(labels);
        Py_XDECREF(ex);
        Py_DECREF(s);
        if (!ok)
            goto done;
    }
    if (!PyErr_Occurred())
        rc = 0;
done:
    Py_XDECREF(name);
    Py_XDECREF(doc);
    Py_XDECREF(type);
    Py_XDECREF(unit);
    Py_XDECREF(samples);
    Py_XDECREF(iter);
    return rc;
}

/* render(items, openmetrics) -> bytes.  items: store family indices (int)
 * and custom metric families, rendered in order.  The store walk never
 * calls into Python. */
static PyObject *Store_render(StoreObject *self, PyObject *args)
{
    PyObject *items;
    int om;
    if (!PyArg_ParseTuple(args, "Op:render", &items, &om))
        return NULL;
    /* A tuple of our own: custom collectors run Python code that could
     * change a list we were handed while we hold borrowed items. */
    PyObject *seq = PySequence_Tuple(items);
    if (!seq)
        return NULL;
    PyObject *result = NULL;
    fp_buf b;
    fp_buf_init(&b);
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(seq, i);
        if (PyLong_Check(it)) {
            unsigned long idx = PyLong_AsUnsignedLong(it);
            if (idx == (unsigned long)-1 && PyErr_Occurred())
                goto done;
            if (idx >= fp_family_count(&self->st)) {
                PyErr_Format(PyExc_ValueError, "no metric family %lu in this store", idx);
                goto done;
            }
            /* The walk touches only the store and our buffer: other
             * threads (the event loop serving requests) run meanwhile. */
            Py_BEGIN_ALLOW_THREADS
            fp_render_family(&b, &self->st, (uint32_t)idx, om);
            Py_END_ALLOW_THREADS
        } else if (render_custom(&b, it, om) < 0) {
            goto done;
        }
        if (b.oom) {
            PyErr_NoMemory();
            goto done;
        }
    }
    if (om)
        fp_buf_puts(&b, "# EOF\n");
    if (b.oom)
        PyErr_NoMemory();
    else
        result = PyBytes_FromStringAndSize(b.p ? b.p : "", (Py_ssize_t)b.len);
done:
    fp_buf_free(&b);
    Py_DECREF(seq);
    return result;
}

static PyObject *Store_stats(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    fp_header *h = fp_hdr(&self->st);
    uint64_t top = fp_load(&h->top);
    return Py_BuildValue("{sKsKsKsKsIsKsi}", "size", (unsigned long long)h->size, "used",
                         (unsigned long long)(top < h->size ? top : h->size), "series",
                         (unsigned long long)fp_load(&h->nseries), "max_series",
                         (unsigned long long)h->max_series, "families", fp_family_count(&self->st),
                         "overflowed", (unsigned long long)fp_load(&h->overflowed), "shared",
                         self->st.fd >= 0);
}

/* processes() -> list of (pid, alive) for every process attached to a shared store. */
static PyObject *Store_processes(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    fp_header *h = fp_hdr(&self->st);
    PyObject *list = PyList_New(0);
    if (!list || self->st.fd < 0)
        return list;
    uint64_t n = fp_load(&h->nprocs);
    if (n > h->max_procs)
        n = h->max_procs;
    const fp_proc *procs = fp_at(&self->st, h->procs);
    for (uint64_t i = 0; i < n; i++) {
        long pid = (long)fp_load_acq(&procs[i].pid);
        if (pid <= 0)
            continue;
        PyObject *row = Py_BuildValue("(lO)", pid, fp_proc_alive(&self->st, (uint32_t)i + 1) ? Py_True : Py_False);
        if (!row || PyList_Append(list, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(row);
    }
    return list;
}

/* attach_process(): registers the calling process, e.g. in a forked child. */
static PyObject *Store_attach_process(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->st.fd < 0)
        Py_RETURN_NONE;
    int rc = fp_store_attach_process(&self->st, 1);
    if (rc == FP_EFILE) {
        module_state *ms = state_of_type(Py_TYPE(self));
        if (ms)
            PyErr_Format(ms->StoreFileError, "cannot reopen the metrics store file %s after a fork: %s",
                         self->st.path, strerror(errno));
        return NULL;
    }
    if (rc == FP_EFULL && warn_untracked() < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Store_family_count(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLong(fp_family_count(&self->st));
}

static PyMethodDef Store_methods[] = {
    {"add_family", (PyCFunction)(void (*)(void))Store_add_family, METH_VARARGS | METH_KEYWORDS,
     "add_family(type, name, help, unit, labelnames, buckets=None, mpmode=0, quantiles=None, max_age=600.0, "
     "age_buckets=5) -> int\n\nAdds a metric family (in a shared store, finds the existing one)."},
    {"render", (PyCFunction)Store_render, METH_VARARGS,
     "render(items, openmetrics) -> bytes\n\nRenders store families (int) and custom families in order."},
    {"stats", (PyCFunction)Store_stats, METH_NOARGS, "stats() -> dict\n\nArena and series usage."},
    {"processes", (PyCFunction)Store_processes, METH_NOARGS,
     "processes() -> list\n\n(pid, alive) of every process attached to a shared store."},
    {"attach_process", (PyCFunction)Store_attach_process, METH_NOARGS,
     "attach_process()\n\nRegisters the calling process (after a fork)."},
    {"family_count", (PyCFunction)Store_family_count, METH_NOARGS, "family_count() -> int"},
    {NULL}};

static PyType_Slot Store_slots[] = {
    {Py_tp_new, Store_new},
    {Py_tp_dealloc, Store_dealloc},
    {Py_tp_methods, Store_methods},
    {Py_tp_doc, "Store(size=268435456, path=None)\n\nA lock-free metrics store in one arena of `size` bytes; "
                "with `path`, in that file, shared by every process that opens it."},
    {0, NULL}};

static PyType_Spec Store_spec = {"fastprom._core.Store", sizeof(StoreObject), 0,
                                 Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, Store_slots};

/* ---- metric bases --------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    StoreObject *store;     /* NULL until _bind */
    fp_family *fam;
    fp_series *series;      /* NULL on a parent that has labels */
    uint32_t family;
    PyObject *labelnames;   /* tuple of str */
    PyObject *children;     /* parent: dict of label-value tuple -> child */
    PyObject *labelvalues;  /* child: tuple of str */
    int overflow_warned;
} MetricObject;

static int Metric_traverse(MetricObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->store);
    Py_VISIT(self->labelnames);
    Py_VISIT(self->children);
    Py_VISIT(self->labelvalues);
    return 0;
}

static int Metric_clear(MetricObject *self)
{
    self->series = NULL;
    self->fam = NULL;
    Py_CLEAR(self->store);
    Py_CLEAR(self->labelnames);
    Py_CLEAR(self->children);
    Py_CLEAR(self->labelvalues);
    self->series = NULL;
    self->fam = NULL;
    return 0;
}

static void Metric_dealloc(MetricObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Metric_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static const char *metric_name(MetricObject *self)
{
    return self->fam ? (const char *)fp_at(&self->store->st, self->fam->name) : "metric";
}

/* Returns the series to update, or NULL with an exception set. */
static inline fp_series *series_of(MetricObject *self)
{
    if (self->series)
        return self->series;
    if (!self->store)
        PyErr_SetString(PyExc_ValueError, "metric is not initialised");
    else
        PyErr_Format(PyExc_ValueError,
                     "%s: metric has labels %R; call .labels(...) to pick a series first",
                     metric_name(self), self->labelnames);
    return NULL;
}

/* Finds or creates the series for a tuple of str label values. */
/* Finds or creates a series.  Returns 0, FP_ENOTFOUND (create unset), or
 * -1 with an exception set.  With `quiet_full`, a full store returns
 * FP_EFULL without an exception. */
static int lookup_series_ex(MetricObject *self, PyObject *values, int create, int overflow, int quiet_full,
                            fp_series **out)
{
    Py_ssize_t n = PyTuple_GET_SIZE(values);
    const char *stackp[8];
    size_t stackl[8];
    const char **vp = n <= 8 ? stackp : PyMem_Calloc((size_t)n, sizeof *vp);
    size_t *vl = n <= 8 ? stackl : PyMem_Calloc((size_t)n, sizeof *vl);
    int rc = -1;
    if (!vp || !vl) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        if (!(vp[i] = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(values, i), &len)))
            goto done;
        vl[i] = (size_t)len;
    }
    rc = fp_series_get(&self->store->st, self->family, vp, vl, create, overflow, out);
    if (quiet_full && (rc == FP_EFULL || rc == FP_ENOMEM)) {
        rc = FP_EFULL;
    } else if (rc != FP_OK && !(rc == FP_ENOTFOUND && !create)) {
        raise_status(Py_TYPE(self), rc, metric_name(self));
        rc = -1;
    }
done:
    if (vp != stackp)
        PyMem_Free(vp);
    if (vl != stackl)
        PyMem_Free(vl);
    return rc;
}

static int lookup_series(MetricObject *self, PyObject *values, int create, fp_series **out)
{
    return lookup_series_ex(self, values, create, 0, 0, out);
}

#define OVERFLOW_VALUE "fastprom_overflow"

/* The store is full: the series every further new label set of this family
 * is counted under, created from the arena's reserve.  Warns once per
 * metric.  0 or -1 with an exception set. */
static int overflow_series(MetricObject *self, fp_series **out)
{
    Py_ssize_t n = PyTuple_GET_SIZE(self->labelnames);
    PyObject *values = PyTuple_New(n);
    if (!values)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyUnicode_FromString(OVERFLOW_VALUE);
        if (!v) {
            Py_DECREF(values);
            return -1;
        }
        PyTuple_SET_ITEM(values, i, v);
    }
    int rc = lookup_series_ex(self, values, 1, 1, 0, out);
    Py_DECREF(values);
    if (rc < 0)
        return -1;
    fp_add(&fp_hdr(&self->store->st)->overflowed, 1);
    if (!self->overflow_warned) {
        self->overflow_warned = 1;
        if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                             "%s: the metrics store is full; new label sets are counted under the series "
                             "with every label = \"" OVERFLOW_VALUE "\" (raise the store size)",
                             metric_name(self)) < 0)
            return -1;
    }
    return 0;
}

/* _bind(store, family, labelnames): attaches a new metric to its family;
 * an unlabelled one gets its single series now. */
static PyObject *Metric_bind(MetricObject *self, PyObject *args)
{
    PyObject *store, *labelnames;
    unsigned int family;
    module_state *ms = state_of_type(Py_TYPE(self));
    if (!ms || !PyArg_ParseTuple(args, "O!IO!:_bind", ms->Store, &store, &family, &PyTuple_Type, &labelnames))
        return NULL;
    if (self->store) {
        PyErr_SetString(PyExc_RuntimeError, "metric is already bound");
        return NULL;
    }
    fp_family *fam = fp_family_get(&((StoreObject *)store)->st, family);
    if (!fam || fam->nlabels != PyTuple_GET_SIZE(labelnames)) {
        PyErr_SetString(PyExc_ValueError, "_bind: family does not match the label names");
        return NULL;
    }
    /* The update methods index cells by the family's type: the object's C
     * type must be exactly one of the four, and the family's. */
    PyTypeObject *tp = Py_TYPE(self);
    int kinds = PyType_IsSubtype(tp, ms->Counter) + PyType_IsSubtype(tp, ms->Gauge) +
                PyType_IsSubtype(tp, ms->Histogram) + PyType_IsSubtype(tp, ms->Summary);
    PyTypeObject *want = fam->type == FP_COUNTER ? ms->Counter : fam->type == FP_GAUGE ? ms->Gauge
                       : fam->type == FP_HISTOGRAM ? ms->Histogram : ms->Summary;
    if (kinds != 1 || !PyType_IsSubtype(tp, want)) {
        PyErr_Format(PyExc_TypeError, "_bind: a %.100s cannot record into a family of %.100s",
                     tp->tp_name, want->tp_name);
        return NULL;
    }
    PyObject *children = PyDict_New();
    if (!children)
        return NULL;
    self->store = (StoreObject *)Py_NewRef(store);
    self->family = family;
    self->fam = fam;
    self->labelnames = Py_NewRef(labelnames);
    self->children = children;
    if (fam->nlabels == 0) {
        PyObject *empty = PyTuple_New(0);
        int rc = empty ? lookup_series(self, empty, 1, &self->series) : -1;
        Py_XDECREF(empty);
        if (rc < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* str(o) as an exact str, so that no user __hash__, __eq__ or __del__ runs
 * inside our dict lookups.  Returns a new reference or NULL. */
static PyObject *exact_str(PyObject *o)
{
    PyObject *s = PyObject_Str(o);
    if (s && !PyUnicode_CheckExact(s)) {
        PyObject *t = PyUnicode_FromObject(s);
        Py_DECREF(s);
        s = t;
    }
    return s;
}

/* Normalises *args / **kwargs to a tuple of str in label-name order.
 * Returns a new reference, or NULL with an exception set. */
static PyObject *label_values(MetricObject *self, PyObject *args, PyObject *kw)
{
    if (!self->store) {
        PyErr_SetString(PyExc_ValueError, "metric is not initialised");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(self->labelnames);
    if (n == 0) {
        PyErr_Format(PyExc_ValueError, "%s: metric has no labels", metric_name(self));
        return NULL;
    }
    if (kw && PyDict_GET_SIZE(kw)) {
        if (PyTuple_GET_SIZE(args)) {
            PyErr_Format(PyExc_ValueError, "%s: pass label values by position or by name, not both",
                         metric_name(self));
            return NULL;
        }
        if (PyDict_GET_SIZE(kw) != n)
            goto badnames;
        PyObject *t = PyTuple_New(n);
        if (!t)
            return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *v = PyDict_GetItemWithError(kw, PyTuple_GET_ITEM(self->labelnames, i));
            if (!v) {
                Py_DECREF(t);
                if (PyErr_Occurred())
                    return NULL;
                goto badnames;
            }
            PyObject *s = exact_str(v);
            if (!s) {
                Py_DECREF(t);
                return NULL;
            }
            PyTuple_SET_ITEM(t, i, s);
        }
        return t;
    }
    if (PyTuple_GET_SIZE(args) != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd label values for %R, got %zd",
                     metric_name(self), n, self->labelnames, PyTuple_GET_SIZE(args));
        return NULL;
    }
    int all_str = 1;
    for (Py_ssize_t i = 0; i < n && all_str; i++)
        all_str = PyUnicode_CheckExact(PyTuple_GET_ITEM(args, i));
    if (all_str)
        return Py_NewRef(args);
    PyObject *t = PyTuple_New(n);
    if (!t)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = exact_str(PyTuple_GET_ITEM(args, i));
        if (!s) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
badnames:
    PyErr_Format(PyExc_ValueError, "%s: label names must be exactly %R, got %R", metric_name(self),
                 self->labelnames, kw);
    return NULL;
}

static PyObject *Metric_labels(MetricObject *self, PyObject *args, PyObject *kw)
{
    if (!self->children) {
        PyErr_Format(PyExc_ValueError, "%s: labels() was called on a child; call it on the parent metric",
                     metric_name(self));
        return NULL;
    }
    PyObject *key = label_values(self, args, kw);
    if (!key)
        return NULL;
    PyObject *child = PyDict_GetItemWithError(self->children, key);
    if (child) {
        Py_INCREF(child);
        Py_DECREF(key);
        return child;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    fp_series *se;
    int rc = lookup_series_ex(self, key, 1, 0, 1, &se);
    if (rc == FP_EFULL)
        rc = overflow_series(self, &se);
    if (rc < 0) {
        Py_DECREF(key);
        return NULL;
    }
    PyTypeObject *tp = Py_TYPE(self);
    MetricObject *c = (MetricObject *)tp->tp_alloc(tp, 0);
    if (!c) {
        Py_DECREF(key);
        return NULL;
    }
    c->store = (StoreObject *)Py_NewRef(self->store);
    c->family = self->family;
    c->fam = self->fam;
    c->series = se;
    c->labelnames = Py_NewRef(self->labelnames);
    c->labelvalues = key; /* takes the reference */
    if (tp->tp_dictoffset) {
        /* Children share the parent's attribute dict (name, help, ...):
         * they read it, nothing writes it after construction. */
        PyObject *d = PyObject_GenericGetDict((PyObject *)self, NULL);
        int rc = d ? PyObject_GenericSetDict((PyObject *)c, d, NULL) : -1;
        Py_XDECREF(d);
        if (rc < 0) {
            Py_DECREF(c);
            return NULL;
        }
    }
    if (PyDict_SetItem(self->children, key, (PyObject *)c) < 0) {
        Py_DECREF(c);
        return NULL;
    }
    return (PyObject *)c;
}

static PyObject *Metric_remove(MetricObject *self, PyObject *args)
{
    if (!self->children) {
        PyErr_Format(PyExc_ValueError, "%s: remove() was called on a child; call it on the parent metric",
                     metric_name(self));
        return NULL;
    }
    PyObject *key = label_values(self, args, NULL);
    if (!key)
        return NULL;
    fp_series *se;
    int rc = lookup_series(self, key, 0, &se);
    if (rc == FP_OK)
        fp_store32_rel(&se->state, FP_REMOVED);
    if (rc >= 0 || rc == FP_ENOTFOUND) {
        if (PyDict_DelItem(self->children, key) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                Py_DECREF(key);
                return NULL;
            }
            PyErr_Clear();
        }
    }
    Py_DECREF(key);
    if (rc == -1)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Metric_clear_series(MetricObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->children || !self->store) {
        PyErr_Format(PyExc_ValueError, "%s: clear() was called on a child; call it on the parent metric",
                     metric_name(self));
        return NULL;
    }
    if (PyTuple_GET_SIZE(self->labelnames) == 0) {
        PyErr_Format(PyExc_ValueError, "%s: clear() needs a metric with labels", metric_name(self));
        return NULL;
    }
    PyDict_Clear(self->children);
    fp_family_clear(&self->store->st, self->family);
    Py_RETURN_NONE;
}

/* _after_fork(): in a forked child, a per-process gauge must not keep
 * writing the parent's series: drop cached children and, unlabelled, take
 * this process's own series. */
static PyObject *Metric_after_fork(MetricObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->store || !self->fam || self->fam->mpmode == FP_MP_NONE || !self->children)
        Py_RETURN_NONE;
    PyDict_Clear(self->children);
    if (self->fam->nlabels == 0) {
        PyObject *empty = PyTuple_New(0);
        int rc = empty ? lookup_series(self, empty, 1, &self->series) : -1;
        Py_XDECREF(empty);
        if (rc < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* Parses escaped a="x",b="y" back into a tuple of values. */
static PyObject *unescape_labels(const char *p, size_t len, Py_ssize_t n)
{
    PyObject *t = PyTuple_New(n);
    char *tmp = PyMem_Malloc(len + 1);
    if (!t || !tmp) {
        Py_XDECREF(t);
        PyMem_Free(tmp);
        return PyErr_NoMemory();
    }
    const char *end = p + len;
    for (Py_ssize_t i = 0; i < n; i++) {
        while (p < end && *p != '"')
            p++;
        p++;
        size_t k = 0;
        while (p < end && *p != '"') {
            if (*p == '\\' && p + 1 < end) {
                p++;
                tmp[k++] = *p == 'n' ? '\n' : *p;
            } else {
                tmp[k++] = *p;
            }
            p++;
        }
        p++;
        PyObject *s = PyUnicode_DecodeUTF8(tmp, (Py_ssize_t)k, "strict");
        if (!s) {
            Py_DECREF(t);
            PyMem_Free(tmp);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    PyMem_Free(tmp);
    return t;
}

/* _series() -> list of (labelvalues, created, data) for the live series of
 * this metric's family.  data: float (counter, gauge), (count, sum[,
 * quantile values]) (summary), or (tuple of per-bucket counts, sum)
 * (histogram); for a
 * per-process gauge (value, last written, alive), with the pid as a last
 * label value. */
static PyObject *Metric_series(MetricObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->store) {
        PyErr_SetString(PyExc_ValueError, "metric is not initialised");
        return NULL;
    }
    const fp_store *s = &self->store->st;
    const fp_family *f = self->fam;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    for (fp_off off = fp_load_acq(&f->head); off; off = fp_load_acq(&((fp_series *)fp_at(s, off))->next)) {
        const fp_series *se = fp_at(s, off);
        if (fp_load32_acq(&se->state) != FP_LIVE)
            continue;
        PyObject *data = NULL;
        switch (f->type) {
        case FP_COUNTER: data = PyFloat_FromDouble(fp_counter_value(se)); break;
        case FP_GAUGE:
            if (se->proc || (f->mpmode != FP_MP_NONE && s->fd >= 0))
                /* per-process: (value, last written, process alive) */
                data = Py_BuildValue("(ddO)", fp_gauge_value(se), fp_loadd(&se->cells[1]),
                                     fp_proc_alive(s, se->proc) ? Py_True : Py_False);
            else
                data = PyFloat_FromDouble(fp_gauge_value(se));
            break;
        case FP_SUMMARY:
            if (f->nquantiles) {
                double q[FP_Q_MAX_QUANTILES];
                uint64_t *scratch = PyMem_Malloc(sizeof *scratch * fp_q_buckets());
                if (!scratch) {
                    Py_DECREF(list);
                    return PyErr_NoMemory();
                }
                fp_q_values(s, f, (fp_series *)se, fp_now(), scratch, q);
                PyMem_Free(scratch);
                PyObject *qt = PyTuple_New(f->nquantiles);
                for (uint32_t j = 0; qt && j < f->nquantiles; j++) {
                    PyObject *v = PyFloat_FromDouble(q[j]);
                    if (!v)
                        Py_CLEAR(qt);
                    else
                        PyTuple_SET_ITEM(qt, j, v);
                }
                if (qt)
                    data = Py_BuildValue("(KdN)", (unsigned long long)fp_load(&se->cells[0]),
                                         fp_loadd(&se->cells[1]), qt);
            } else {
                data = Py_BuildValue("(Kd)", (unsigned long long)fp_load(&se->cells[0]), fp_loadd(&se->cells[1]));
            }
            break;
        case FP_HISTOGRAM: {
            PyObject *counts = PyTuple_New(f->nbuckets);
            for (uint32_t i = 0; counts && i < f->nbuckets; i++) {
                PyObject *c = PyLong_FromUnsignedLongLong(fp_load(&se->cells[i]));
                if (!c)
                    Py_CLEAR(counts);
                else
                    PyTuple_SET_ITEM(counts, i, c);
            }
            if (counts)
                data = Py_BuildValue("(Nd)", counts, fp_loadd(&se->cells[f->nbuckets]));
            break;
        }
        }
        /* Per-process series carry the pid as one more label. */
        Py_ssize_t nvalues = f->nlabels + (se->text_len != se->base_len);
        PyObject *lv = data ? unescape_labels(fp_at(s, se->text), se->text_len, nvalues) : NULL;
        PyObject *row = lv ? Py_BuildValue("(NdN)", lv, fp_loadd(&se->created), data) : NULL;
        if (!row) {
            if (!lv)
                Py_XDECREF(data);
            Py_DECREF(list);
            return NULL;
        }
        int rc = PyList_Append(list, row);
        Py_DECREF(row);
        if (rc < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return list;
}

/* Reads a finite (when `finite`) double argument; -1 with an exception. */
static int amount_arg(MetricObject *self, PyObject *o, double *out, int finite, const char *what)
{
    *out = PyFloat_AsDouble(o);
    if (*out == -1.0 && PyErr_Occurred())
        return -1;
    if (finite && !isfinite(*out)) {
        PyErr_Format(PyExc_ValueError, "%s: %s must be a finite number, got %R", metric_name(self), what, o);
        return -1;
    }
    return 0;
}

static int valid_label_name(const char *p, Py_ssize_t n)
{
    if (n == 0 || !(p[0] == '_' || ((p[0] | 32) >= 'a' && (p[0] | 32) <= 'z')))
        return 0;
    for (Py_ssize_t i = 1; i < n; i++)
        if (!(p[i] == '_' || ((p[i] | 32) >= 'a' && (p[i] | 32) <= 'z') || (p[i] >= '0' && p[i] <= '9')))
            return 0;
    return 1;
}

/* Renders and stores an exemplar (a dict of str -> str).  0 or -1. */
static int put_exemplar(MetricObject *self, fp_series *se, uint32_t nslots, uint32_t slot,
                        PyObject *exemplar, double value)
{
    if (!PyDict_Check(exemplar)) {
        PyErr_Format(PyExc_TypeError, "%s: exemplar must be a dict of str to str", metric_name(self));
        return -1;
    }
    char text[FP_EXEMPLAR_TEXT + 1];
    char *p = text, *end = text + sizeof text;
    Py_ssize_t chars = 0, pos = 0;
    PyObject *k, *v;
    *p++ = '{';
    while (PyDict_Next(exemplar, &pos, &k, &v)) {
        Py_ssize_t kl, vl;
        const char *kp = utf8_of(k, &kl, "exemplar label name");
        const char *vp = kp ? utf8_of(v, &vl, "exemplar label value") : NULL;
        if (!vp)
            return -1;
        if (!valid_label_name(kp, kl)) {
            PyErr_Format(PyExc_ValueError, "%s: invalid exemplar label name %R", metric_name(self), k);
            return -1;
        }
        chars += PyUnicode_GET_LENGTH(k) + PyUnicode_GET_LENGTH(v);
        if (chars > 128 || end - p < kl + 2 * vl + 5)
            goto toolong;
        if (p - text > 1)
            *p++ = ',';
        memcpy(p, kp, (size_t)kl);
        p += kl;
        *p++ = '=';
        *p++ = '"';
        p += fp_escape_value(p, vp, (size_t)vl);
        *p++ = '"';
    }
    *p++ = '}';
    if (p - text > FP_EXEMPLAR_TEXT)
        goto toolong;
    int rc = fp_exemplar_put(&self->store->st, se, nslots, slot, text, (size_t)(p - text), value, fp_now());
    if (rc != FP_OK) {
        raise_status(Py_TYPE(self), rc, metric_name(self));
        return -1;
    }
    return 0;
toolong:
    PyErr_Format(PyExc_ValueError,
                 "%s: exemplar labels exceed 128 characters (OpenMetrics limit): %R", metric_name(self), exemplar);
    return -1;
}

static PyObject *Counter_inc(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    fp_series *se = series_of(self);
    if (!se)
        return NULL;
    PyObject *amount = nargs > 0 ? args[0] : NULL, *exemplar = nargs > 1 ? args[1] : NULL;
    if (nargs > 2 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        if (nargs > 2) {
            PyErr_SetString(PyExc_TypeError, "inc() takes at most 2 arguments (amount, exemplar)");
            return NULL;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *k = PyTuple_GET_ITEM(kwnames, i);
            if (PyUnicode_CompareWithASCIIString(k, "amount") == 0 && !amount)
                amount = args[nargs + i];
            else if (PyUnicode_CompareWithASCIIString(k, "exemplar") == 0 && !exemplar)
                exemplar = args[nargs + i];
            else {
                PyErr_Format(PyExc_TypeError, "inc() got an unexpected keyword argument %R", k);
                return NULL;
            }
        }
    }
    double v = 1.0;
    if (!amount) {
        if (exemplar && exemplar != Py_None && put_exemplar(self, se, 1, 0, exemplar, v) < 0)
            return NULL;
        fp_counter_inc_int(se, 1);
        Py_RETURN_NONE;
    } else if (PyLong_CheckExact(amount)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(amount, &overflow);
        if (n == -1 && PyErr_Occurred())
            return NULL;
        if (overflow > 0 || n < 0)
            goto slow;
        v = (double)n;
        if (exemplar && exemplar != Py_None && put_exemplar(self, se, 1, 0, exemplar, v) < 0)
            return NULL;
        fp_counter_inc_int(se, (uint64_t)n);
        Py_RETURN_NONE;
    } else {
    slow:
        if (amount_arg(self, amount, &v, 1, "increment") < 0)
            return NULL;
        if (v < 0) {
            PyErr_Format(PyExc_ValueError,
                         "%s: counters can only be incremented by non-negative amounts, got %R",
                         metric_name(self), amount);
            return NULL;
        }
        if (exemplar && exemplar != Py_None && put_exemplar(self, se, 1, 0, exemplar, v) < 0)
            return NULL;
        if (v == floor(v) && v < 9007199254740992.0)
            fp_counter_inc_int(se, (uint64_t)v);
        else
            fp_counter_inc(se, v);
        Py_RETURN_NONE;
    }
}

static PyObject *gauge_update(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, double sign,
                              const char *fname)
{
    fp_series *se = series_of(self);
    if (!se)
        return NULL;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument", fname);
        return NULL;
    }
    double v = 1.0;
    if (nargs && amount_arg(self, args[0], &v, 0, "amount") < 0)
        return NULL;
    fp_gauge_add(se, sign * v);
    if (self->fam->mpmode != FP_MP_NONE)
        fp_gauge_touch(se, fp_now());
    Py_RETURN_NONE;
}

static PyObject *Gauge_inc(MetricObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return gauge_update(self, args, nargs, 1.0, "inc");
}

static PyObject *Gauge_dec(MetricObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return gauge_update(self, args, nargs, -1.0, "dec");
}

static PyObject *Gauge_set(MetricObject *self, PyObject *value)
{
    fp_series *se = series_of(self);
    double v;
    if (!se || amount_arg(self, value, &v, 0, "value") < 0)
        return NULL;
    fp_gauge_set(se, v);
    if (self->fam->mpmode != FP_MP_NONE)
        fp_gauge_touch(se, fp_now());
    Py_RETURN_NONE;
}

static PyObject *observe_args(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                              double *v, PyObject **exemplar)
{
    PyObject *amount = nargs > 0 ? args[0] : NULL;
    *exemplar = nargs > 1 ? args[1] : NULL;
    if (nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "observe() takes at most 2 arguments (amount, exemplar)");
        return NULL;
    }
    for (Py_ssize_t i = 0; kwnames && i < PyTuple_GET_SIZE(kwnames); i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(k, "amount") == 0 && !amount)
            amount = args[nargs + i];
        else if (PyUnicode_CompareWithASCIIString(k, "exemplar") == 0 && !*exemplar)
            *exemplar = args[nargs + i];
        else {
            PyErr_Format(PyExc_TypeError, "observe() got an unexpected keyword argument %R", k);
            return NULL;
        }
    }
    if (!amount) {
        PyErr_SetString(PyExc_TypeError, "observe() missing required argument 'amount'");
        return NULL;
    }
    if (amount_arg(self, amount, v, 1, "observed value") < 0)
        return NULL;
    return Py_None;
}

static PyObject *Histogram_observe(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    fp_series *se = series_of(self);
    double v;
    PyObject *exemplar;
    if (!se || !observe_args(self, args, nargs, kwnames, &v, &exemplar))
        return NULL;
    const fp_family *f = self->fam;
    uint32_t i = fp_bucket_index(fp_at(&self->store->st, f->buckets), f->nbuckets, v);
    if (exemplar && exemplar != Py_None && put_exemplar(self, se, f->nbuckets, i, exemplar, v) < 0)
        return NULL;
    fp_histogram_observe(se, i, f->nbuckets, v);
    Py_RETURN_NONE;
}

static PyObject *Summary_observe(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    fp_series *se = series_of(self);
    double v;
    PyObject *exemplar;
    if (!se || !observe_args(self, args, nargs, kwnames, &v, &exemplar))
        return NULL;
    if (exemplar && exemplar != Py_None) {
        PyErr_Format(PyExc_ValueError, "%s: summaries do not carry exemplars", metric_name(self));
        return NULL;
    }
    fp_summary_observe(se, v);
    if (self->fam->nquantiles)
        fp_q_observe(self->fam, se, v, fp_now_coarse());
    Py_RETURN_NONE;
}

static PyObject *Metric_get_labelvalues(MetricObject *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->labelvalues ? self->labelvalues : Py_None);
}

static PyObject *Metric_get_family(MetricObject *self, void *Py_UNUSED(c))
{
    if (!self->store)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->family);
}

static PyGetSetDef Metric_getset[] = {
    {"_labelvalues", (getter)Metric_get_labelvalues, NULL, "Label values of a child, None on a parent.", NULL},
    {"_family", (getter)Metric_get_family, NULL, "Index of the family in its store.", NULL},
    {NULL}};

#define COMMON_METHODS                                                                                   \
    {"_bind", (PyCFunction)Metric_bind, METH_VARARGS, "Attach to a store family (internal)."},          \
        {"labels", (PyCFunction)(void (*)(void))Metric_labels, METH_VARARGS | METH_KEYWORDS,            \
         "labels(*values, **labels) -> child\n\nReturns the cached child for these label values."},     \
        {"remove", (PyCFunction)Metric_remove, METH_VARARGS, "remove(*values)\n\nDrops one series."}, \
        {"clear", (PyCFunction)Metric_clear_series, METH_NOARGS, "clear()\n\nDrops every series."},   \
        {"_series", (PyCFunction)Metric_series, METH_NOARGS, "Snapshot of the live series (internal)."}, \
        {"_after_fork", (PyCFunction)Metric_after_fork, METH_NOARGS, "Re-keys per-process series (internal)."}

static PyMethodDef Metric_methods[] = {COMMON_METHODS, {NULL}};

static PyMethodDef Counter_methods[] = {
    {"inc", (PyCFunction)(void (*)(void))Counter_inc, METH_FASTCALL | METH_KEYWORDS,
     "inc(amount=1, exemplar=None)\n\nIncrements by a non-negative finite amount."},
    {NULL}};

static PyMethodDef Gauge_methods[] = {
    {"inc", (PyCFunction)(void (*)(void))Gauge_inc, METH_FASTCALL, "inc(amount=1)\n\nAdds amount."},
    {"dec", (PyCFunction)(void (*)(void))Gauge_dec, METH_FASTCALL, "dec(amount=1)\n\nSubtracts amount."},
    {"set", (PyCFunction)Gauge_set, METH_O, "set(value)\n\nSets the value."},
    {NULL}};

static PyMethodDef Histogram_methods[] = {
    {"observe", (PyCFunction)(void (*)(void))Histogram_observe, METH_FASTCALL | METH_KEYWORDS,
     "observe(amount, exemplar=None)\n\nRecords a finite value."},
    {NULL}};

static PyMethodDef Summary_methods[] = {
    {"observe", (PyCFunction)(void (*)(void))Summary_observe, METH_FASTCALL | METH_KEYWORDS,
     "observe(amount)\n\nRecords a finite value."},
    {NULL}};

static PyType_Slot Metric_slots[] = {
    {Py_tp_dealloc, Metric_dealloc},
    {Py_tp_traverse, Metric_traverse},
    {Py_tp_clear, Metric_clear},
    {Py_tp_methods, Metric_methods},
    {Py_tp_getset, Metric_getset},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_doc, "Base of the store-backed metric types."},
    {0, NULL}};

#define METRIC_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC)
static PyType_Spec Metric_spec = {"fastprom._core.MetricBase", sizeof(MetricObject), 0, METRIC_FLAGS, Metric_slots};

#define TYPE_SPEC(var, pyname, methods)                                                       \
    static PyType_Slot var##_slots[] = {{Py_tp_methods, methods},                         \
                                        {Py_tp_traverse, Metric_traverse},                \
                                        {Py_tp_clear, Metric_clear},                      \
                                        {Py_tp_dealloc, Metric_dealloc},                  \
                                        {0, NULL}};                                       \
    static PyType_Spec var##_spec = {"fastprom._core." pyname, sizeof(MetricObject), 0, METRIC_FLAGS, \
                                     var##_slots}

TYPE_SPEC(Counter, "CounterBase", Counter_methods);
TYPE_SPEC(Gauge, "GaugeBase", Gauge_methods);
TYPE_SPEC(Histogram, "HistogramBase", Histogram_methods);
TYPE_SPEC(Summary, "SummaryBase", Summary_methods);

/* ---- HTTP recorder ---------------------------------------------------- */

/* The default HTTP metrics of one request in one call: request counter,
 * request and response size summaries, the labelled latency histogram and
 * the unlabelled high-resolution one.  Children for each (handler, method,
 * status) are made once by a Python factory and cached here. */
typedef struct {
    PyObject_HEAD
    PyObject *factory;      /* (handler, method, status) -> (total, in_size, out_size, latency) */
    PyObject *cache;        /* dict: (handler, method, status) -> that tuple */
    MetricObject *highr;    /* unlabelled histogram */
    int only_2xx_highr;
} RecorderObject;

static int Recorder_traverse(RecorderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->factory);
    Py_VISIT(self->cache);
    Py_VISIT(self->highr);
    return 0;
}

static int Recorder_clear(RecorderObject *self)
{
    Py_CLEAR(self->factory);
    Py_CLEAR(self->cache);
    Py_CLEAR(self->highr);
    return 0;
}

static void Recorder_dealloc(RecorderObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Recorder_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* The series of a child of `want`'s C type; NULL with an exception set. */
static fp_series *child_series(PyObject *o, PyTypeObject *want, const char *what)
{
    if (!PyObject_TypeCheck(o, want) || !((MetricObject *)o)->series) {
        PyErr_Format(PyExc_TypeError, "HttpRecorder factory must return a %s child, got %R", what, o);
        return NULL;
    }
    return ((MetricObject *)o)->series;
}

static PyObject *Recorder_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"factory", "highr", "only_2xx_highr", NULL};
    PyObject *factory, *highr;
    int only2xx = 0;
    module_state *ms = state_of_type(tp);
    if (!ms || !PyArg_ParseTupleAndKeywords(args, kw, "OO!|p:HttpRecorder", kwlist, &factory, ms->Histogram,
                                            &highr, &only2xx))
        return NULL;
    if (!PyCallable_Check(factory)) {
        PyErr_SetString(PyExc_TypeError, "HttpRecorder factory must be callable");
        return NULL;
    }
    if (!((MetricObject *)highr)->series) {
        PyErr_SetString(PyExc_ValueError, "HttpRecorder needs an unlabelled high-resolution histogram");
        return NULL;
    }
    RecorderObject *self = (RecorderObject *)tp->tp_alloc(tp, 0);
    if (!self)
        return NULL;
    self->cache = PyDict_New();
    if (!self->cache) {
        Py_DECREF(self);
        return NULL;
    }
    self->factory = Py_NewRef(factory);
    self->highr = (MetricObject *)Py_NewRef(highr);
    self->only_2xx_highr = only2xx;
    return (PyObject *)self;
}

/* Observes v, with an exemplar when one is given.  0 or -1. */
static int observe_hist(MetricObject *m, fp_series *se, double v, PyObject *exemplar)
{
    const fp_family *f = m->fam;
    uint32_t i = fp_bucket_index(fp_at(&m->store->st, f->buckets), f->nbuckets, v);
    if (exemplar && put_exemplar(m, se, f->nbuckets, i, exemplar, v) < 0)
        return -1;
    fp_histogram_observe(se, i, f->nbuckets, v);
    return 0;
}

/* Content-Length from ASGI headers (a list of (name, value) byte pairs):
 * 0 when absent or malformed. */
static double header_length(PyObject *headers)
{
    PyObject *seq = PySequence_Fast(headers, "headers");
    if (!seq) {
        PyErr_Clear();
        return 0;
    }
    double n = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2)
            continue;
        PyObject *k = PyTuple_GET_ITEM(pair, 0), *v = PyTuple_GET_ITEM(pair, 1);
        if (!PyBytes_Check(k) || !PyBytes_Check(v) || PyBytes_GET_SIZE(k) != 14 ||
            strncasecmp(PyBytes_AS_STRING(k), "content-length", 14) != 0)
            continue;
        /* Digits, with blanks only around them, and at most 18 of them:
         * anything else (it comes from the client) counts as 0. */
        const char *p = PyBytes_AS_STRING(v), *end = p + PyBytes_GET_SIZE(v);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        uint64_t acc = 0;
        if (end > p && end - p <= 18) {
            for (; p < end && *p >= '0' && *p <= '9'; p++)
                acc = acc * 10 + (uint64_t)(*p - '0');
            n = p == end ? (double)acc : 0;
        }
        break;
    }
    Py_DECREF(seq);
    return n;
}

/* record(handler, method, status, duration, request_size, response_size[, exemplar])
 * The sizes are numbers, or the ASGI header lists to read Content-Length from. */
static PyObject *Recorder_record(RecorderObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "record(handler, method, status, duration, request_size, "
                                         "response_size[, exemplar]) takes 6 or 7 arguments");
        return NULL;
    }
    PyObject *exemplar = nargs == 7 && args[6] != Py_None ? args[6] : NULL;
    double d[3];
    for (int i = 0; i < 3; i++) {
        PyObject *a = args[3 + i];
        if (i && (a == Py_None || PyList_Check(a) || PyTuple_Check(a))) {
            d[i] = a == Py_None ? 0 : header_length(a);
            continue;
        }
        d[i] = PyFloat_AsDouble(a);
        if (d[i] == -1.0 && PyErr_Occurred())
            return NULL;
        if (!isfinite(d[i]) || d[i] < 0) {
            PyErr_Format(PyExc_ValueError, "record(): durations and sizes must be finite and >= 0, got %R",
                         args[3 + i]);
            return NULL;
        }
    }
    PyObject *key = PyTuple_Pack(3, args[0], args[1], args[2]);
    if (!key)
        return NULL;
    PyObject *bundle = PyDict_GetItemWithError(self->cache, key);
    if (bundle) {
        Py_INCREF(bundle);
    } else {
        if (PyErr_Occurred() || !(bundle = PyObject_Call(self->factory, key, NULL))) {
            Py_DECREF(key);
            return NULL;
        }
        if (!PyTuple_Check(bundle) || PyTuple_GET_SIZE(bundle) != 4) {
            PyErr_SetString(PyExc_TypeError, "HttpRecorder factory must return a 4-tuple of children");
            goto fail;
        }
        if (PyDict_SetItem(self->cache, key, bundle) < 0)
            goto fail;
    }
    module_state *ms = state_of_type(Py_TYPE(self));
    if (!ms)
        goto fail;
    fp_series *total = child_series(PyTuple_GET_ITEM(bundle, 0), ms->Counter, "Counter");
    fp_series *in = total ? child_series(PyTuple_GET_ITEM(bundle, 1), ms->Summary, "Summary") : NULL;
    fp_series *out = in ? child_series(PyTuple_GET_ITEM(bundle, 2), ms->Summary, "Summary") : NULL;
    fp_series *lat = out ? child_series(PyTuple_GET_ITEM(bundle, 3), ms->Histogram, "Histogram") : NULL;
    if (!lat)
        goto fail;
    if (observe_hist((MetricObject *)PyTuple_GET_ITEM(bundle, 3), lat, d[0], exemplar) < 0)
        goto fail;
    if (!self->only_2xx_highr ||
        (PyUnicode_Check(args[2]) && PyUnicode_GET_LENGTH(args[2]) > 0 && PyUnicode_READ_CHAR(args[2], 0) == '2')) {
        if (observe_hist(self->highr, self->highr->series, d[0], exemplar) < 0)
            goto fail;
    }
    fp_counter_inc_int(total, 1);
    fp_summary_observe(in, d[1]);
    fp_summary_observe(out, d[2]);
    MetricObject *insum = (MetricObject *)PyTuple_GET_ITEM(bundle, 1), *outsum = (MetricObject *)PyTuple_GET_ITEM(bundle, 2);
    if (insum->fam->nquantiles)
        fp_q_observe(insum->fam, in, d[1], fp_now_coarse());
    if (outsum->fam->nquantiles)
        fp_q_observe(outsum->fam, out, d[2], fp_now_coarse());
    Py_DECREF(key);
    Py_DECREF(bundle);
    Py_RETURN_NONE;
fail:
    Py_DECREF(key);
    Py_XDECREF(bundle);
    return NULL;
}

static PyObject *Recorder_forget(RecorderObject *self, PyObject *Py_UNUSED(ignored))
{
    PyDict_Clear(self->cache);
    Py_RETURN_NONE;
}

static PyMethodDef Recorder_methods[] = {
    {"record", (PyCFunction)(void (*)(void))Recorder_record, METH_FASTCALL,
     "record(handler, method, status, duration, request_size, response_size[, exemplar])\n\n"
     "Updates every default HTTP metric for one request; the exemplar goes on both latency histograms."},
    {"forget", (PyCFunction)Recorder_forget, METH_NOARGS,
     "forget()\n\nDrops the cached children (after remove() or clear() on the metrics)."},
    {NULL}};

static PyType_Slot Recorder_slots[] = {
    {Py_tp_new, Recorder_new},
    {Py_tp_dealloc, Recorder_dealloc},
    {Py_tp_traverse, Recorder_traverse},
    {Py_tp_clear, Recorder_clear},
    {Py_tp_methods, Recorder_methods},
    {Py_tp_doc, "HttpRecorder(factory, highr, only_2xx_highr=False)\n\n"
                "Records the default HTTP metrics of a request in one call."},
    {0, NULL}};

static PyType_Spec Recorder_spec = {"fastprom._core.HttpRecorder", sizeof(RecorderObject), 0,
                                    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                                    Recorder_slots};

/* ---- SendTap ----------------------------------------------------------- */

/* Wraps an ASGI send callable: notes the status, headers and time of
 * "http.response.start" and passes every message on.  Calling it returns
 * whatever the wrapped send returns, so no Python frame is added per
 * message. */
typedef struct {
    PyObject_HEAD
    PyObject *send;
    PyObject *status;       /* None until the response starts */
    PyObject *headers;
    double started;         /* time.perf_counter() clock; 0 until the response starts */
    vectorcallfunc vectorcall;
    module_state *ms;       /* kept alive by our type, which holds the module */
} TapObject;

static double perf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static PyObject *Tap_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TapObject *self = (TapObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs == 1 && !kwnames && PyDict_CheckExact(args[0]) && self->started == 0.0) {
        module_state *ms = self->ms;
        PyObject *type = PyDict_GetItem(args[0], ms->s_type);
        if (type && PyUnicode_Check(type) &&
            (type == ms->s_start || PyUnicode_Compare(type, ms->s_start) == 0)) {
            PyObject *status = PyDict_GetItem(args[0], ms->s_status);
            PyObject *headers = PyDict_GetItem(args[0], ms->s_headers);
            Py_XSETREF(self->status, Py_NewRef(status ? status : Py_None));
            Py_XSETREF(self->headers, Py_NewRef(headers ? headers : Py_None));
            self->started = perf_now();
        }
    }
    return PyObject_Vectorcall(self->send, args, nargsf, kwnames);
}

static PyObject *Tap_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    PyObject *send;
    if (kw && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "SendTap(send) takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:SendTap", &send))
        return NULL;
    module_state *ms = state_of_type(tp);
    if (!ms)
        return NULL;
    TapObject *self = (TapObject *)tp->tp_alloc(tp, 0);
    if (!self)
        return NULL;
    self->ms = ms;
    self->send = Py_NewRef(send);
    self->status = Py_NewRef(Py_None);
    self->headers = Py_NewRef(Py_None);
    self->vectorcall = Tap_vectorcall;
    return (PyObject *)self;
}

static int Tap_traverse(TapObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->send);
    Py_VISIT(self->status);
    Py_VISIT(self->headers);
    return 0;
}

static int Tap_clear(TapObject *self)
{
    Py_CLEAR(self->send);
    Py_CLEAR(self->status);
    Py_CLEAR(self->headers);
    return 0;
}

static void Tap_dealloc(TapObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Tap_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *Tap_get_status(TapObject *self, void *Py_UNUSED(c)) { return Py_NewRef(self->status); }
static PyObject *Tap_get_headers(TapObject *self, void *Py_UNUSED(c)) { return Py_NewRef(self->headers); }
static PyObject *Tap_get_started(TapObject *self, void *Py_UNUSED(c)) { return PyFloat_FromDouble(self->started); }

static PyGetSetDef Tap_getset[] = {
    {"status", (getter)Tap_get_status, NULL, "The response status, None until the response starts.", NULL},
    {"headers", (getter)Tap_get_headers, NULL, "The response headers (ASGI pairs), None until it starts.", NULL},
    {"started", (getter)Tap_get_started, NULL, "time.perf_counter() when the response started; 0.0 before.", NULL},
    {NULL}};

static PyMemberDef Tap_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(TapObject, vectorcall), READONLY, NULL},
    {NULL}};

static PyType_Slot Tap_slots[] = {
    {Py_tp_new, Tap_new},
    {Py_tp_dealloc, Tap_dealloc},
    {Py_tp_traverse, Tap_traverse},
    {Py_tp_clear, Tap_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_getset, Tap_getset},
    {Py_tp_members, Tap_members},
    {Py_tp_doc, "SendTap(send)\n\nAn ASGI send that notes the response's status, headers and start time."},
    {0, NULL}};

static PyType_Spec Tap_spec = {"fastprom._core.SendTap", sizeof(TapObject), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
                                   Py_TPFLAGS_HAVE_VECTORCALL,
                               Tap_slots};

/* ---- module --------------------------------------------------------- */

static PyObject *core_freeze_clock(PyObject *Py_UNUSED(m), PyObject *arg)
{
    double t = 0.0;
    if (arg != Py_None) {
        t = PyFloat_AsDouble(arg);
        if (t == -1.0 && PyErr_Occurred())
            return NULL;
        if (!isfinite(t) || t <= 0) {
            PyErr_SetString(PyExc_ValueError, "freeze_clock() needs a positive finite time or None");
            return NULL;
        }
    }
    fp_clock_freeze(t);
    Py_RETURN_NONE;
}

static PyObject *core_format_float(PyObject *Py_UNUSED(m), PyObject *args)
{
    double v;
    int om = 0;
    if (!PyArg_ParseTuple(args, "d|p:format_float", &v, &om))
        return NULL;
    char out[32];
    size_t n = fp_format_float(out, v, om);
    return PyUnicode_FromStringAndSize(out, (Py_ssize_t)n);
}

static PyMethodDef core_methods[] = {
    {"freeze_clock", core_freeze_clock, METH_O,
     "freeze_clock(t)\n\nPins the store's clock (created and exemplar timestamps) to t; None thaws it."},
    {"format_float", core_format_float, METH_VARARGS,
     "format_float(v, openmetrics=False) -> str\n\nFormats a value as the exposition formats do."},
    {NULL}};

static int add_type(PyObject *m, PyTypeObject **slot, PyType_Spec *spec, PyObject *base)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(m, spec, base);
    if (!*slot)
        return -1;
    return PyModule_AddType(m, *slot);
}

static int core_exec(PyObject *m)
{
    module_state *ms = PyModule_GetState(m);
    if (add_type(m, &ms->Store, &Store_spec, NULL) < 0 || add_type(m, &ms->Metric, &Metric_spec, NULL) < 0)
        return -1;
    PyObject *base = (PyObject *)ms->Metric;
    if (add_type(m, &ms->Counter, &Counter_spec, base) < 0 || add_type(m, &ms->Gauge, &Gauge_spec, base) < 0 ||
        add_type(m, &ms->Histogram, &Histogram_spec, base) < 0 ||
        add_type(m, &ms->Summary, &Summary_spec, base) < 0 ||
        add_type(m, &ms->HttpRecorder, &Recorder_spec, NULL) < 0 || add_type(m, &ms->SendTap, &Tap_spec, NULL) < 0)
        return -1;
    ms->StoreFullError = PyErr_NewExceptionWithDoc(
        "fastprom._core.StoreFullError", "The metrics store has no room for a new series or family.",
        PyExc_RuntimeError, NULL);
    if (!ms->StoreFullError || PyModule_AddObjectRef(m, "StoreFullError", ms->StoreFullError) < 0)
        return -1;
    ms->s_type = PyUnicode_InternFromString("type");
    ms->s_status = PyUnicode_InternFromString("status");
    ms->s_headers = PyUnicode_InternFromString("headers");
    ms->s_start = PyUnicode_InternFromString("http.response.start");
    if (!ms->s_type || !ms->s_status || !ms->s_headers || !ms->s_start)
        return -1;
    ms->StoreFileError = PyErr_NewExceptionWithDoc(
        "fastprom._core.StoreFileError",
        "The shared metrics store file cannot be used: not writable, from another version, truncated or corrupt.",
        PyExc_RuntimeError, NULL);
    if (!ms->StoreFileError || PyModule_AddObjectRef(m, "StoreFileError", ms->StoreFileError) < 0)
        return -1;
    if (PyModule_AddIntConstant(m, "COUNTER", FP_COUNTER) < 0 || PyModule_AddIntConstant(m, "GAUGE", FP_GAUGE) < 0 ||
        PyModule_AddIntConstant(m, "HISTOGRAM", FP_HISTOGRAM) < 0 ||
        PyModule_AddIntConstant(m, "SUMMARY", FP_SUMMARY) < 0 ||
        PyModule_AddIntConstant(m, "EXEMPLAR_MAX_CHARS", 128) < 0)
        return -1;
    return 0;
}

static int core_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state *ms = PyModule_GetState(m);
    Py_VISIT(ms->Store);
    Py_VISIT(ms->Metric);
    Py_VISIT(ms->Counter);
    Py_VISIT(ms->Gauge);
    Py_VISIT(ms->Histogram);
    Py_VISIT(ms->Summary);
    Py_VISIT(ms->HttpRecorder);
    Py_VISIT(ms->SendTap);
    Py_VISIT(ms->StoreFullError);
    Py_VISIT(ms->StoreFileError);
    return 0;
}

static int core_clear(PyObject *m)
{
    module_state *ms = PyModule_GetState(m);
    Py_CLEAR(ms->Store);
    Py_CLEAR(ms->Metric);
    Py_CLEAR(ms->Counter);
    Py_CLEAR(ms->Gauge);
    Py_CLEAR(ms->Histogram);
    Py_CLEAR(ms->Summary);
    Py_CLEAR(ms->HttpRecorder);
    Py_CLEAR(ms->SendTap);
    Py_CLEAR(ms->s_type);
    Py_CLEAR(ms->s_status);
    Py_CLEAR(ms->s_headers);
    Py_CLEAR(ms->s_start);
    Py_CLEAR(ms->StoreFullError);
    Py_CLEAR(ms->StoreFileError);
    return 0;
}

static void core_free(void *m) { core_clear((PyObject *)m); }

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL}};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "fastprom._core", "C core of fastprom: the metrics store and the renderer.",
    sizeof(module_state), core_methods, core_slots, core_traverse, core_clear, core_free};

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&core_module); }
