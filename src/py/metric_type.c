/* metric_type.c: the metric base types.
 *
 * CounterBase, GaugeBase, HistogramBase and SummaryBase are subclassed in
 * Python, which adds registration, validation and the convenience API.
 * Every update method is one call into C that touches only atomic cells.
 *
 * The children cache: a parent owns `children` (label-value tuple -> child);
 * labels() creates entries, remove() and clear() drop them; with a GIL,
 * the entry labels() found last is also kept aside and matched by its
 * values, without a tuple or a dict lookup.  A child holds
 * its series pointer, checked against the store's removal count on each
 * update: after a remove() or clear() anywhere (another process too), a
 * child whose series was removed looks it up again, so its counts land in
 * a live series instead of a removed one. */
#include "state.h"

#include <math.h>
#include <string.h>

#include "labels.h"
#include "render.h"

static int Metric_traverse(MetricObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->store);
    Py_VISIT(self->labelnames);
    Py_VISIT(self->children);
    Py_VISIT(self->labelvalues);
    Py_VISIT(self->last_child);
    return 0;
}

static int Metric_clear(MetricObject *self)
{
    self->series = NULL;
    self->fam = NULL;
    self->removals_at = NULL;
    Py_CLEAR(self->store);
    Py_CLEAR(self->labelnames);
    Py_CLEAR(self->children);
    Py_CLEAR(self->labelvalues);
    Py_CLEAR(self->last_child);
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

const char *fp_metric_name(MetricObject *m)
{
    return m->fam ? fp_family_name(&m->store->st, m->fam) : "metric";
}

/* prometheus_client's str(metric), "counter:name", for a "%s:%s". */
#define TYPE_AND_NAME(m) (m)->fam ? fp_type_name((m)->fam->type) : "metric", fp_metric_name(m)

/* The series of a tuple of str label values; as fp_metric_series. */
static int series_for(MetricObject *m, PyObject *values, fp_series **out)
{
    values_buf vb = {0};
    int rc = fp_values_of(values, &vb) < 0 ? -1 : fp_metric_series(m, vb.vp, vb.vl, out);
    fp_values_free(&vb);
    return rc;
}

/* Notes what a cached series pointer was checked against; the caller
 * holds the object's critical section (or has not published it yet). */
static void checked(MetricObject *self, fp_series *se, uint64_t removals, int overflowed)
{
    FP_STORE(self->series, se);
    FP_STORE(self->in_overflow, overflowed);
    FP_STORE(self->gen, fp_series_gen(se));
    if (self->per_process)
        FP_STORE(self->forks, fp_fork_generation());
    __atomic_store_n(&self->removals, removals, __ATOMIC_RELEASE); /* last: publishes the rest */
}

/* A cached series whose store has seen a removal since it was checked, or
 * (per-process gauges) whose process has forked since: keeps it if it is
 * still the same live series, else looks up (or recreates) the series of
 * the same labels -- after a fork, this process's own.  Returns the
 * series, or NULL with an exception set. */
static fp_series *recheck_locked(MetricObject *self, uint64_t removals)
{
    /* Another thread may have re-checked while this one waited. */
    if (__atomic_load_n(&self->removals, __ATOMIC_ACQUIRE) == removals &&
        (!self->per_process || self->forks == fp_fork_generation()))
        return self->series;
    int forked = self->per_process && self->forks != fp_fork_generation();
    /* A child counted under the overflow series looks again: a removal
     * may have made room for its own. */
    if (!forked && !self->in_overflow && fp_series_still(self->series, self->gen)) {
        __atomic_store_n(&self->removals, removals, __ATOMIC_RELEASE);
        return self->series;
    }
    PyObject *values = self->labelvalues ? Py_NewRef(self->labelvalues) : PyTuple_New(0);
    fp_series *se = NULL;
    int rc = values ? series_for(self, values, &se) : -1;
    Py_XDECREF(values);
    if (rc < 0)
        return NULL;
    checked(self, se, removals, rc);
    return se;
}

/* recheck_locked in the object's critical section: threads updating one
 * child after a removal re-check it one at a time. */
static fp_series *recheck(MetricObject *self, uint64_t removals)
{
    fp_series *se;
    Py_BEGIN_CRITICAL_SECTION(self);
    se = recheck_locked(self, removals);
    Py_END_CRITICAL_SECTION();
    return se;
}

/* Returns the series to update, or NULL with an exception set.  The fast
 * path is one load and a compare (two for a per-process gauge). */
static inline fp_series *series_of(MetricObject *self)
{
    if (FP_LOAD(self->series)) {
        uint64_t r = fp_load_acq(self->removals_at);
        if (r == __atomic_load_n(&self->removals, __ATOMIC_ACQUIRE) &&
            (!self->per_process || FP_LOAD(self->forks) == fp_fork_generation()))
            return FP_LOAD(self->series);
        return recheck(self, r);
    }
    if (!self->store)
        PyErr_SetString(PyExc_ValueError, "metric is not initialised");
    else /* prometheus_client's words, then ours */
        PyErr_Format(PyExc_ValueError, "%s metric is missing label values (%s has labels %R: call .labels(...) to "
                     "pick a series first)", TYPE_AND_NAME(self), self->labelnames);
    return NULL;
}

/* Takes the series of an unlabelled metric (or, after a fork, this
 * process's own series of a per-process gauge).  0 or -1. */
static int take_own_series(MetricObject *self)
{
    PyObject *empty = PyTuple_New(0);
    uint64_t removals = fp_removals(&self->store->st);
    fp_series *se = NULL;
    int rc = empty ? series_for(self, empty, &se) : -1;
    Py_XDECREF(empty);
    if (rc >= 0)
        checked(self, se, removals, rc);
    return rc < 0 ? -1 : 0;
}

/* _bind(store, family, labelnames[, max_series]): attaches a new metric to
 * its family; an unlabelled one gets its single series now. */
static PyObject *Metric_bind(MetricObject *self, PyObject *args)
{
    PyObject *store, *labelnames;
    unsigned int family;
    unsigned long long max_series = 0;
    module_state *ms = fp_state_of_type(Py_TYPE(self));
    if (!ms || !PyArg_ParseTuple(args, "O!IO!|K:_bind", ms->Store, &store, &family, &PyTuple_Type, &labelnames,
                                 &max_series))
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
    self->removals_at = &fp_hdr(&self->store->st)->removals;
    self->per_process = fp_family_per_process(&self->store->st, fam);
    self->max_series = max_series;
    self->labelnames = Py_NewRef(labelnames);
    self->children = children;
    if (fam->nlabels == 0 && take_own_series(self) < 0)
        return NULL;
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
 * Returns a new reference, or NULL. */
static PyObject *label_values(MetricObject *self, PyObject *args, PyObject *kw)
{
    if (!self->store) {
        PyErr_SetString(PyExc_ValueError, "metric is not initialised");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(self->labelnames);
    if (n == 0) {
        PyErr_Format(PyExc_ValueError, "No label names were set when constructing %s:%s", TYPE_AND_NAME(self));
        return NULL;
    }
    if (kw && PyDict_GET_SIZE(kw)) {
        if (PyTuple_GET_SIZE(args)) {
            PyErr_SetString(PyExc_ValueError, "Can't pass both *args and **kwargs");
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
        PyErr_Format(PyExc_ValueError, "Incorrect label count (%s: expected %zd label values for %R, got %zd)",
                     fp_metric_name(self), n, self->labelnames, PyTuple_GET_SIZE(args));
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
    PyErr_Format(PyExc_ValueError, "Incorrect label names (%s: expected %R, got %R)", fp_metric_name(self),
                 self->labelnames, kw);
    return NULL;
}

/* labels() of a label set not in the cache: creates the child and caches
 * it (steals `key`).  Runs in the parent's critical section, so that it
 * and remove() do not interleave; two threads asking for the same new
 * label set get the same child, the first one cached.  Returns a new
 * reference, or NULL. */
static PyObject *new_child(MetricObject *self, PyObject *key)
{
    fp_series *se;
    /* The removal count is read before the lookup: a removal after it is
     * seen at the child's first update. */
    uint64_t removals = fp_removals(&self->store->st);
    int found = series_for(self, key, &se);
    if (found < 0) {
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
    c->removals_at = self->removals_at;
    c->per_process = self->per_process;
    c->max_series = self->max_series;
    checked(c, se, removals, found);
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
    /* A child of the overflow series is not kept: past a limit, label
     * values are the unbounded ones, and each would stay in memory. */
    if (found)
        return (PyObject *)c;
    PyObject *kept;
    int rc = PyDict_SetDefaultRef(self->children, key, (PyObject *)c, &kept);
    Py_DECREF(c);
    return rc < 0 ? NULL : kept;
}

#ifndef Py_GIL_DISABLED
/* The label values of a call are the exact str of `key`, item by item. */
static int same_values(PyObject *const *args, PyObject *key)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(key); i++) {
        PyObject *a = args[i], *b = PyTuple_GET_ITEM(key, i);
        if (a == b)
            continue;
        if (!PyUnicode_CheckExact(a))
            return 0;
        Py_ssize_t len = PyUnicode_GET_LENGTH(a);
        int kind = PyUnicode_KIND(a);
        if (len != PyUnicode_GET_LENGTH(b) || kind != (int)PyUnicode_KIND(b) ||
            memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)len * (size_t)kind) != 0)
            return 0;
    }
    return 1;
}
#endif

/* Forgets the label set labels() found last (its entry is going). */
static void forget_last(MetricObject *self)
{
    Py_CLEAR(self->last_child);
}

static PyObject *Metric_labels(MetricObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!self->children) { /* a child: prometheus_client's message, naming its labels */
        PyObject *z = PyObject_CallFunction((PyObject *)&PyZip_Type, "OO", self->labelnames, self->labelvalues);
        PyObject *d = z ? PyObject_CallOneArg((PyObject *)&PyDict_Type, z) : NULL;
        if (d)
            PyErr_Format(PyExc_ValueError, "%s:%s already has labels set (%R); can not chain calls to .labels()",
                         TYPE_AND_NAME(self), d);
        Py_XDECREF(z);
        Py_XDECREF(d);
        return NULL;
    }
#ifndef Py_GIL_DISABLED
    /* The label set asked for last time, asked again: no tuple, hash or
     * dict lookup.  (With a GIL only: elsewhere another thread may drop
     * the pair between reading and using it.) */
    if (!kwnames && self->last_child) {
        PyObject *last = ((MetricObject *)self->last_child)->labelvalues;
        if (nargs == PyTuple_GET_SIZE(last) && same_values(args, last))
            return Py_NewRef(self->last_child);
    }
#endif
    PyObject *targs = PyTuple_New(nargs), *kw = NULL;
    if (!targs)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++)
        PyTuple_SET_ITEM(targs, i, Py_NewRef(args[i]));
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nkw && !(kw = PyDict_New())) {
        Py_DECREF(targs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nkw; i++)
        if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
            Py_DECREF(targs);
            Py_DECREF(kw);
            return NULL;
        }
    PyObject *key = label_values(self, targs, kw);
    Py_DECREF(targs);
    Py_XDECREF(kw);
    if (!key)
        return NULL;
    /* A strong reference: on a free-threaded build another thread may
     * remove the entry at any moment. */
    PyObject *child;
    int r = PyDict_GetItemRef(self->children, key, &child);
    if (r != 0) {
#ifndef Py_GIL_DISABLED
        if (r > 0) /* matched next time by its own values, the entry's key */
            Py_XSETREF(self->last_child, Py_NewRef(child));
#endif
        Py_DECREF(key);
        return child;
    }
    Py_BEGIN_CRITICAL_SECTION(self);
    child = new_child(self, key);
    Py_END_CRITICAL_SECTION();
    return child;
}


static PyObject *Metric_remove(MetricObject *self, PyObject *args)
{
    if (!self->children) {
        PyErr_Format(PyExc_ValueError, "%s: remove() was called on a child; call it on the parent metric",
                     fp_metric_name(self));
        return NULL;
    }
    /* No values on an unlabelled metric: its one series (Counter.reset). */
    PyObject *key = self->store && !PyTuple_GET_SIZE(self->labelnames) && !PyTuple_GET_SIZE(args)
                        ? Py_NewRef(args) : label_values(self, args, NULL);
    if (!key)
        return NULL;
    values_buf vb = {0};
    int rc;
    /* The series and its cached child go together, not between the steps
     * of a labels() creating the same child. */
    Py_BEGIN_CRITICAL_SECTION(self);
    rc = fp_values_of(key, &vb) < 0 ? -1 : fp_series_remove(&self->store->st, self->family, vb.vp, vb.vl);
    fp_values_free(&vb);
    if (rc == FP_ENOTFOUND)
        rc = FP_OK; /* nothing to remove, as in prometheus_client */
    else if (rc != FP_OK) {
        if (!PyErr_Occurred())
            fp_raise_status(Py_TYPE(self), rc, fp_metric_name(self));
        rc = -1;
    }
    if (rc == FP_OK)
        forget_last(self);
    if (rc == FP_OK && PyDict_DelItem(self->children, key) < 0) {
        if (PyErr_ExceptionMatches(PyExc_KeyError))
            PyErr_Clear();
        else
            rc = -1;
    }
    Py_END_CRITICAL_SECTION();
    Py_DECREF(key);
    if (rc == -1)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Metric_clear_series(MetricObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->children || !self->store) {
        PyErr_Format(PyExc_ValueError, "%s: clear() was called on a child; call it on the parent metric",
                     fp_metric_name(self));
        return NULL;
    }
    if (PyTuple_GET_SIZE(self->labelnames) == 0) {
        PyErr_Format(PyExc_ValueError, "%s: clear() needs a metric with labels", fp_metric_name(self));
        return NULL;
    }
    Py_BEGIN_CRITICAL_SECTION(self);
    forget_last(self);
    PyDict_Clear(self->children);
    fp_family_clear(&self->store->st, self->family);
    Py_END_CRITICAL_SECTION();
    Py_RETURN_NONE;
}

/* _after_fork(): in a forked child, a per-process gauge must not keep
 * writing the parent's series: drop cached children and, unlabelled, take
 * this process's own series. */
static PyObject *Metric_after_fork(MetricObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->store || !self->fam || !fp_family_per_process(&self->store->st, self->fam) || !self->children)
        Py_RETURN_NONE;
    int rc = 0;
    Py_BEGIN_CRITICAL_SECTION(self);
    forget_last(self);
    PyDict_Clear(self->children);
    if (self->fam->nlabels == 0)
        rc = take_own_series(self);
    Py_END_CRITICAL_SECTION();
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* _samples(Sample, Exemplar) -> the family's samples, as collect() shows them. */
static PyObject *Metric_samples(MetricObject *self, PyObject *args)
{
    PyObject *sample_type, *exemplar_type;
    if (!PyArg_ParseTuple(args, "OO:_samples", &sample_type, &exemplar_type))
        return NULL;
    if (!self->store) {
        PyErr_SetString(PyExc_ValueError, "metric is not initialised");
        return NULL;
    }
    return fp_family_samples(&self->store->st, self->family, sample_type, exemplar_type);
}

/* Reads a double argument: any (check 0), not NaN (1), finite (2).  0 or -1. */
static int amount_arg(MetricObject *self, PyObject *o, double *out, int check, const char *what)
{
    *out = PyFloat_AsDouble(o);
    if (*out == -1.0 && PyErr_Occurred())
        return -1;
    if ((check == 1 && isnan(*out)) || (check == 2 && !isfinite(*out))) {
        PyErr_Format(PyExc_ValueError, "%s: %s must be a %s, got %R", fp_metric_name(self), what,
                     check == 1 ? "number (not NaN)" : "finite number", o);
        return -1;
    }
    return 0;
}

/* Matches fastcall arguments to the parameters p0 and p1 (NULL: none), by
 * position or keyword, as prometheus_client's methods take them; 0 or -1. */
static int match_args(const char *fname, const char *p0, const char *p1, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames, PyObject **a0, PyObject **a1)
{
    *a0 = nargs > 0 ? args[0] : NULL;
    *a1 = nargs > 1 ? args[1] : NULL;
    if (nargs > 1 + !!p1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d argument%s", fname, 1 + !!p1, p1 ? "s" : "");
        return -1;
    }
    for (Py_ssize_t i = 0; kwnames && i < PyTuple_GET_SIZE(kwnames); i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(k, p0) == 0 && !*a0)
            *a0 = args[nargs + i];
        else if (p1 && PyUnicode_CompareWithASCIIString(k, p1) == 0 && !*a1)
            *a1 = args[nargs + i];
        else {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, k);
            return -1;
        }
    }
    return 0;
}

static PyObject *Counter_inc(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    fp_series *se = series_of(self);
    if (!se)
        return NULL;
    if (nargs == 0 && !kwnames) {
        fp_counter_inc(se, 1.0);
        Py_RETURN_NONE;
    }
    PyObject *amount, *exemplar;
    if (match_args("inc", "amount", "exemplar", args, nargs, kwnames, &amount, &exemplar) < 0)
        return NULL;
    double v = 1.0;
    if (amount && amount_arg(self, amount, &v, 1, "increment") < 0)
        return NULL;
    if (v < 0) {
        PyErr_SetString(PyExc_ValueError, "Counters can only be incremented by non-negative amounts.");
        return NULL;
    }
    fp_counter_inc(se, v);
    /* As prometheus_client does: counted first, then the exemplar checked. */
    char text[FP_EXEMPLAR_TEXT];
    size_t tlen = 0;
    int ex = fp_exemplar_arg(self, exemplar, text, &tlen);
    if (ex < 0)
        return NULL;
    if (ex)
        fp_keep_exemplar(self, se, 1, 0, text, tlen, v);
    Py_RETURN_NONE;
}

/* inc(amount=1), dec(amount=1) (sign -1) and set(value) (sign 0). */
static PyObject *gauge_update(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                              double sign, const char *fname)
{
    fp_series *se = series_of(self);
    PyObject *a, *none;
    double v = 1.0;
    if (!se || match_args(fname, sign ? "amount" : "value", NULL, args, nargs, kwnames, &a, &none) < 0)
        return NULL;
    if (!sign) { /* set(value) takes float(value), as prometheus_client's does: a numeric str too */
        PyObject *f = a ? PyNumber_Float(a) : PyErr_Format(PyExc_TypeError, "set() missing required argument 'value'");
        if (!f)
            return NULL;
        fp_gauge_set(se, PyFloat_AS_DOUBLE(f));
        Py_DECREF(f);
    } else if (a && amount_arg(self, a, &v, 0, "amount") < 0) {
        return NULL;
    } else {
        fp_gauge_add(se, sign * v);
    }
    if (self->fam->mpmode != FP_MP_NONE)
        fp_gauge_touch(se, fp_now());
    Py_RETURN_NONE;
}

#define GAUGE_METHOD(fn, sign, name)                                                                \
    static PyObject *fn(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) \
    {                                                                                               \
        return gauge_update(self, args, nargs, kw, sign, name);                                     \
    }
GAUGE_METHOD(Gauge_inc, 1.0, "inc")
GAUGE_METHOD(Gauge_dec, -1.0, "dec")
GAUGE_METHOD(Gauge_set, 0.0, "set")

/* The value of observe(amount, exemplar=None); 0 or -1. */
static int observe_args(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, double *v,
                        PyObject **exemplar)
{
    PyObject *amount;
    if (match_args("observe", "amount", "exemplar", args, nargs, kwnames, &amount, exemplar) < 0)
        return -1;
    if (!amount) {
        PyErr_SetString(PyExc_TypeError, "observe() missing required argument 'amount'");
        return -1;
    }
    /* NaN would land in no bucket (or the first); a quantile sketch takes finite values only. */
    return amount_arg(self, amount, v, self->fam->nquantiles ? 2 : 1, "observed value");
}

static PyObject *Histogram_observe(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    fp_series *se = series_of(self);
    double v;
    PyObject *exemplar;
    if (!se || observe_args(self, args, nargs, kwnames, &v, &exemplar) < 0)
        return NULL;
    const fp_family *f = self->fam;
    uint32_t i = fp_bucket_index(fp_at(&self->store->st, f->buckets), f->nbuckets, v);
    fp_histogram_observe_all(f, se, i, v);
    /* As prometheus_client does: counted first, then the exemplar checked. */
    char text[FP_EXEMPLAR_TEXT];
    size_t tlen = 0;
    int ex = fp_exemplar_arg(self, exemplar, text, &tlen);
    if (ex < 0)
        return NULL;
    if (ex)
        fp_keep_exemplar(self, se, f->nbuckets, i, text, tlen, v);
    Py_RETURN_NONE;
}

/* _native() -> dict or None: this series' native buckets as the walker
 * reads them (schema, thresholds, counts, spans and deltas per side). */
static PyObject *Histogram_native(MetricObject *self, PyObject *Py_UNUSED(ignored))
{
    fp_series *se = series_of(self);
    if (!se)
        return NULL;
    const fp_family *f = self->fam;
    if (!f->nh_slots)
        Py_RETURN_NONE;
    return fp_native_dict(f, se);
}

static PyObject *Summary_observe(MetricObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    fp_series *se = series_of(self);
    double v;
    PyObject *exemplar;
    if (!se || observe_args(self, args, nargs, kwnames, &v, &exemplar) < 0)
        return NULL;
    if (exemplar && exemplar != Py_None) {
        PyErr_Format(PyExc_ValueError, "%s: summaries do not carry exemplars", fp_metric_name(self));
        return NULL;
    }
    fp_summary_observe_all(&self->store->st, self->fam, se, v);
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

static PyObject *Metric_get_store(MetricObject *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->store ? (PyObject *)self->store : Py_None);
}

static PyGetSetDef Metric_getset[] = {
    {"_labelvalues", (getter)Metric_get_labelvalues, NULL, "Label values of a child, None on a parent.", NULL},
    {"_family", (getter)Metric_get_family, NULL, "Index of the family in its store.", NULL},
    {"_store", (getter)Metric_get_store, NULL, "The store the metric records into, None until bound.", NULL},
    {NULL}};

static PyMethodDef Metric_methods[] = {
    {"_bind", (PyCFunction)Metric_bind, METH_VARARGS, "Attach to a store family (internal)."},
    {"labels", (PyCFunction)(void (*)(void))Metric_labels, METH_FASTCALL | METH_KEYWORDS,
     "labels($self, /, *labelvalues, **labelkwargs)\n--\n\nReturns the cached child for these label values."},
    {"remove", (PyCFunction)Metric_remove, METH_VARARGS, "remove($self, /, *labelvalues)\n--\n\nDrops one series."},
    {"clear", (PyCFunction)Metric_clear_series, METH_NOARGS, "clear($self, /)\n--\n\nDrops every series."},
    {"_samples", (PyCFunction)Metric_samples, METH_VARARGS, "The family's samples (internal)."},
    {"_after_fork", (PyCFunction)Metric_after_fork, METH_NOARGS, "Re-keys per-process series (internal)."},
    {NULL}};

static PyMethodDef Counter_methods[] = {
    {"inc", (PyCFunction)(void (*)(void))Counter_inc, METH_FASTCALL | METH_KEYWORDS,
     "inc($self, /, amount=1, exemplar=None)\n--\n\nIncrements by a non-negative amount (not NaN)."},
    {NULL}};

static PyMethodDef Gauge_methods[] = {
    {"inc", (PyCFunction)(void (*)(void))Gauge_inc, METH_FASTCALL | METH_KEYWORDS,
     "inc($self, /, amount=1)\n--\n\nAdds amount."},
    {"dec", (PyCFunction)(void (*)(void))Gauge_dec, METH_FASTCALL | METH_KEYWORDS,
     "dec($self, /, amount=1)\n--\n\nSubtracts amount."},
    {"set", (PyCFunction)(void (*)(void))Gauge_set, METH_FASTCALL | METH_KEYWORDS,
     "set($self, /, value)\n--\n\nSets the value."},
    {NULL}};

static PyMethodDef Histogram_methods[] = {
    {"observe", (PyCFunction)(void (*)(void))Histogram_observe, METH_FASTCALL | METH_KEYWORDS,
     "observe($self, /, amount, exemplar=None)\n--\n\nRecords a value (not NaN)."},
    {"_native", (PyCFunction)Histogram_native, METH_NOARGS,
     "_native($self, /)\n--\n\nThe series' native buckets as the walker reads them, or None without them."},
    {NULL}};

static PyMethodDef Summary_methods[] = {
    {"observe", (PyCFunction)(void (*)(void))Summary_observe, METH_FASTCALL | METH_KEYWORDS,
     "observe($self, /, amount)\n--\n\nRecords a value (not NaN; finite with quantiles)."},
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
PyType_Spec fp_Metric_spec = {"fastprom._core.MetricBase", sizeof(MetricObject), 0, METRIC_FLAGS, Metric_slots};

#define TYPE_SPEC(var, pyname, methods)                                                         \
    static PyType_Slot var##_slots[] = {{Py_tp_methods, methods},                               \
                                        {Py_tp_traverse, Metric_traverse},                      \
                                        {Py_tp_clear, Metric_clear},                            \
                                        {Py_tp_dealloc, Metric_dealloc},                        \
                                        {0, NULL}};                                             \
    PyType_Spec fp_##var##_spec = {"fastprom._core." pyname, sizeof(MetricObject), 0, METRIC_FLAGS, \
                                   var##_slots}

TYPE_SPEC(Counter, "CounterBase", Counter_methods);
TYPE_SPEC(Gauge, "GaugeBase", Gauge_methods);
TYPE_SPEC(Histogram, "HistogramBase", Histogram_methods);
TYPE_SPEC(Summary, "SummaryBase", Summary_methods);
