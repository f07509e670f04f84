/* store_type.c: the Store type: one arena, private or shared. */
#include "state.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "render.h"

/* Every open store, so that debug runs can check them all after each test.
 * Linked and unlinked with the GIL held, or (free-threaded build) holding
 * open_lock, which nothing holds while running Python code: a store freed
 * by a collection would wait for it. */
static StoreObject *open_stores;
#ifdef Py_GIL_DISABLED
static PyMutex open_lock;
#define OPEN_LOCK() PyMutex_Lock(&open_lock)
#define OPEN_UNLOCK() PyMutex_Unlock(&open_lock)
#else
#define OPEN_LOCK() ((void)0)
#define OPEN_UNLOCK() ((void)0)
#endif

PyObject *fp_check_open_stores(void)
{
    enum { MAX_BAD = 16 };
    struct { char what[200]; const char *why; } bad[MAX_BAD];
    int nbad = 0;
    OPEN_LOCK();
    for (StoreObject *s = open_stores; s && nbad < MAX_BAD; s = s->next) {
        const char *why = fp_store_check(&s->st, 1);
        if (!why)
            continue;
        if (s->st.path)
            snprintf(bad[nbad].what, sizeof bad[nbad].what, "store file %s", s->st.path);
        else
            snprintf(bad[nbad].what, sizeof bad[nbad].what, "in-memory store at %p", (void *)s);
        bad[nbad++].why = why;
    }
    OPEN_UNLOCK();
    PyObject *out = PyList_New(0);
    for (int i = 0; out && i < nbad; i++) {
        PyObject *row = Py_BuildValue("(ss)", bad[i].what, bad[i].why);
        if (!row || PyList_Append(out, row) < 0)
            Py_CLEAR(out);
        Py_XDECREF(row);
    }
    return out;
}

PyObject *fp_raise_status(PyTypeObject *tp, int rc, const char *what)
{
    module_state *ms = fp_state_of_type(tp);
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
    case FP_ENOHEAP:
        PyErr_NoMemory();
        break;
    default:
        PyErr_Format(PyExc_ValueError, "%s: invalid argument", what);
    }
    return NULL;
}

/* Says once that this process is not in the process table (so its "live"
 * gauges will outlive it).  0 or -1. */
static int warn_untracked(void)
{
    return PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                            "the shared metrics store's process table is full (%u worker starts since the "
                            "store file was made): this process's live gauges will not disappear when it "
                            "exits; empty PROMETHEUS_MULTIPROC_DIR at the next deploy",
                            FP_MAX_PROCS);
}

static PyObject *Store_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"size", "path", "readonly", NULL};
    unsigned long long size = FP_STORE_DEFAULT;
    PyObject *path = Py_None;
    int readonly = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|KOp:Store", kwlist, &size, &path, &readonly))
        return NULL;
    if (readonly && path == Py_None) {
        PyErr_SetString(PyExc_ValueError, "Store(readonly=True) needs the path of a store file");
        return NULL;
    }
    if (size < FP_STORE_MIN || size > FP_STORE_MAX) {
        PyErr_Format(PyExc_ValueError, "Store size must be between %llu and %llu bytes (1 MiB and 1 TiB), got %llu",
                     (unsigned long long)FP_STORE_MIN, (unsigned long long)FP_STORE_MAX, size);
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
        if (readonly)
            rc = fp_store_open_readonly(&self->st, PyBytes_AS_STRING(fspath), err, sizeof err);
        else
            rc = fp_store_open_file(&self->st, PyBytes_AS_STRING(fspath), size, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc == FP_ENOTFOUND) {
            PyErr_Format(PyExc_FileNotFoundError,
                         "the metrics store file %s does not exist yet (no worker has started, or one is "
                         "laying it out)",
                         PyBytes_AS_STRING(fspath));
            Py_DECREF(fspath);
            Py_DECREF(self);
            return NULL;
        }
        Py_DECREF(fspath);
        if (rc != FP_OK) {
            module_state *ms = fp_state_of_type(tp);
            if (ms)
                PyErr_SetString(ms->StoreFileError, err);
            Py_DECREF(self);
            return NULL;
        }
    } else if (fp_store_open(&self->st, size) != FP_OK) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    OPEN_LOCK();
    self->next = open_stores;
    if (open_stores)
        open_stores->prev = self;
    open_stores = self;
    OPEN_UNLOCK();
    if (fp_shared(&self->st) && !self->st.readonly) {
        /* What a process that died creating a series left, put right. */
        Py_BEGIN_ALLOW_THREADS
        fp_store_repair(&self->st);
        Py_END_ALLOW_THREADS
        if (self->st.room && self->st.room < size &&
            PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                             "the filesystem of the metrics store file %s has %llu MiB free, less than the store's "
                             "%llu MiB: when it fills, new label sets are counted under the overflow series; give "
                             "it more room (a larger tmpfs, e.g. /dev/shm) or set FASTPROM_STORE_SIZE smaller",
                             self->st.path, (unsigned long long)(self->st.room >> 20),
                             (unsigned long long)(size >> 20)) < 0) {
            Py_DECREF(self);
            return NULL;
        }
    }
    if (fp_shared(&self->st) && !self->st.readonly && self->st.proc == 0 && warn_untracked() < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void Store_dealloc(StoreObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->st.base) {
        OPEN_LOCK();
        if (self->prev)
            self->prev->next = self->next;
        else if (open_stores == self)
            open_stores = self->next;
        if (self->next)
            self->next->prev = self->prev;
        OPEN_UNLOCK();
    }
    fp_store_close(&self->st);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* Reads a tuple of floats (or None) into a new PyMem array; strictly
 * ascending and not NaN.  0 or -1. */
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
                             "quantiles", "max_age", "age_buckets", "native_factor", "native_zero_threshold",
                             "native_max_zero_threshold", "native_max_buckets", "native_min_reset", NULL};
    int type, mpmode = FP_MP_NONE, age_buckets = 5;
    unsigned int nh_max = 160;
    double max_age = 600.0, nh_factor = 0.0, nh_zt = FP_NH_DEFAULT_ZERO_THRESHOLD, nh_mzt = 0.0, nh_reset = 0.0;
    PyObject *name, *help, *unit, *labelnames, *buckets = Py_None, *quantiles = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iUUUO!|OiOdidddId:add_family", kwlist, &type, &name, &help, &unit,
                                     &PyTuple_Type, &labelnames, &buckets, &mpmode, &quantiles, &max_age,
                                     &age_buckets, &nh_factor, &nh_zt, &nh_mzt, &nh_max, &nh_reset))
        return NULL;
    if (self->st.readonly) {
        module_state *ms = fp_state_of_type(Py_TYPE(self));
        if (ms)
            PyErr_Format(ms->StoreFileError,
                         "add_family: the metrics store file %s is mapped read-only here; metrics are declared "
                         "by the workers that write it", self->st.path);
        return NULL;
    }
    if (nh_factor != 0 && (type != FP_HISTOGRAM || !(nh_factor > 1) || !(nh_factor < INFINITY))) {
        PyErr_Format(PyExc_ValueError, "add_family: native buckets need a histogram and a finite bucket factor above 1");
        return NULL;
    }
    if (nh_factor != 0 && (nh_max < 1 || nh_max > FP_NH_MAX_BUCKETS || !(nh_zt >= 0 && nh_zt < INFINITY) ||
                           !(nh_mzt >= 0 && nh_mzt < INFINITY) || !(nh_reset >= 0 && nh_reset < INFINITY))) {
        PyErr_Format(PyExc_ValueError,
                     "add_family: native settings out of range (a bucket limit from 1 to %u, finite thresholds "
                     "and reset duration of at least 0)", FP_NH_MAX_BUCKETS);
        return NULL;
    }
    if (type < FP_COUNTER || type > FP_SUMMARY) {
        PyErr_Format(PyExc_ValueError, "add_family: unknown metric type %d", type);
        return NULL;
    }
    if (mpmode < FP_MP_NONE || mpmode >= FP_MP_COUNT || (mpmode != FP_MP_NONE && type != FP_GAUGE)) {
        PyErr_Format(PyExc_ValueError, "add_family: invalid multiprocess mode %d", mpmode);
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(labelnames), nb = 0, nq = 0;
    if (n > (Py_ssize_t)FP_MAX_LABELS) {
        PyErr_Format(PyExc_ValueError, "add_family: at most %u label names, got %zd", FP_MAX_LABELS, n);
        return NULL;
    }
    fp_family_spec sp = {.type = (uint32_t)type, .mpmode = (uint32_t)mpmode, .max_age = max_age,
                         .nh_factor = nh_factor, .nh_zero_threshold = nh_factor != 0 ? nh_zt : 0.0,
                         .nh_max_zero_threshold = nh_factor != 0 ? nh_mzt : 0.0,
                         .nh_min_reset = nh_factor != 0 ? nh_reset : 0.0,
                         .nh_max_buckets = nh_factor != 0 ? nh_max : 0u};
    Py_ssize_t nl, hl, ul;
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
        if (!(lp[i] = fp_utf8(PyTuple_GET_ITEM(labelnames, i), &len, "label name")))
            goto done;
        ll[i] = (size_t)len;
    }
    if (float_tuple(buckets, "buckets", &bv, &nb) < 0 || float_tuple(quantiles, "quantiles", &qv, &nq) < 0)
        goto done;
    if (type == FP_HISTOGRAM && (nb == 0 || !isinf(bv[nb - 1]) || bv[nb - 1] < 0)) {
        PyErr_SetString(PyExc_ValueError, "histogram buckets must end with +Inf");
        goto done;
    }
    sp.labelnames = lp;
    sp.labelname_lens = ll;
    sp.nlabels = (uint32_t)n;
    sp.buckets = bv;
    sp.nbuckets = (uint32_t)nb;
    sp.quantiles = qv;
    sp.nquantiles = (uint32_t)nq;
    sp.age_buckets = age_buckets > 0 ? (uint32_t)age_buckets : 0;
    uint32_t idx;
    int rc;
    /* The store file's lock may be held by another process: wait for it
     * without holding the interpreter. */
    Py_BEGIN_ALLOW_THREADS
    rc = fp_family_add(&self->st, &sp, &idx);
    Py_END_ALLOW_THREADS
    if (rc == FP_EINVAL) {
        char msg[768];
        PyOS_snprintf(msg, sizeof msg,
                      "add_family: %.200s is not a shape the store takes (a name and unit without NUL bytes, at "
                      "most %u labels, valid label names, each once and no pid on a per-process gauge, sorted buckets "
                      "ending with +Inf, at most %u quantiles in "
                      "[0, 1], 1 to %u age buckets of at least %g s, a window of at most %g s)",
                      sp.name, FP_MAX_LABELS, FP_Q_MAX_QUANTILES, FP_Q_MAX_AGE_BUCKETS, FP_Q_MIN_PERIOD, FP_Q_MAX_AGE);
        PyErr_SetString(PyExc_ValueError, msg);
    }
    else if (rc != FP_OK)
        fp_raise_status(Py_TYPE(self), rc, sp.name);
    else
        result = PyLong_FromUnsignedLong(idx);
done:
    PyMem_Free(lp);
    PyMem_Free(ll);
    PyMem_Free(bv);
    PyMem_Free(qv);
    return result;
}

static PyObject *Store_stats(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    fp_header *h = fp_hdr(&self->st);
    uint64_t top = fp_load(&h->top);
    return Py_BuildValue("{sKsKsKsKsIsKsisKsK}", "size", (unsigned long long)h->size, "used",
                         (unsigned long long)(top < h->size ? top : h->size), "series",
                         (unsigned long long)fp_load(&h->nseries), "max_series",
                         (unsigned long long)h->max_series, "families", fp_family_count(&self->st),
                         "overflowed", (unsigned long long)fp_load(&h->overflowed), "shared",
                         fp_shared(&self->st), "backed", (unsigned long long)fp_load(&h->committed), "tombstones",
                         (unsigned long long)fp_load(&h->tombstones));
}

/* processes() -> list of (pid, alive) for every process attached to a shared store. */
static PyObject *Store_processes(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    fp_header *h = fp_hdr(&self->st);
    PyObject *list = PyList_New(0);
    if (!list || !fp_shared(&self->st))
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
    if (!fp_shared(&self->st) || self->st.readonly)
        Py_RETURN_NONE;
    int rc = fp_store_attach_process(&self->st, 1);
    if (rc == FP_EFILE) {
        module_state *ms = fp_state_of_type(Py_TYPE(self));
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

/* family(index) -> (name, type, help, unit) */
static PyObject *Store_family(StoreObject *self, PyObject *arg)
{
    unsigned long idx = PyLong_AsUnsignedLong(arg);
    if (idx == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    const fp_family *f = idx < UINT32_MAX ? fp_family_get(&self->st, (uint32_t)idx) : NULL;
    if (!f) {
        PyErr_Format(PyExc_IndexError, "no metric family %lu in this store", idx);
        return NULL;
    }
    const fp_store *s = &self->st;
    return Py_BuildValue("(s#ss#s#)", fp_at(s, f->name), (Py_ssize_t)f->name_len, fp_type_name(f->type),
                         fp_at(s, f->help), (Py_ssize_t)f->help_len, fp_at(s, f->unit), (Py_ssize_t)f->unit_len);
}

/* limited() -> list of (family name, lookups sent to its overflow series by
 * a max_series limit, its live series) for every family that has had one. */
static PyObject *Store_limited(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    const fp_store *s = &self->st;
    PyObject *list = PyList_New(0);
    uint32_t n = fp_family_count(s);
    for (uint32_t i = 0; list && i < n; i++) {
        const fp_family *f = fp_family_get(s, i);
        uint64_t limited = f ? fp_load(&f->limited) : 0;
        if (!limited)
            continue;
        PyObject *t = Py_BuildValue("(s#KK)", fp_at(s, f->name), (Py_ssize_t)f->name_len,
                                    (unsigned long long)limited, (unsigned long long)fp_load(&f->nlive));
        if (!t || PyList_Append(list, t) < 0)
            Py_CLEAR(list);
        Py_XDECREF(t);
    }
    return list;
}

/* samples(index, Sample, Exemplar) -> list of samples, as collect() shows them */
static PyObject *Store_samples(StoreObject *self, PyObject *args)
{
    unsigned int idx;
    PyObject *sample_type, *exemplar_type;
    if (!PyArg_ParseTuple(args, "IOO:samples", &idx, &sample_type, &exemplar_type))
        return NULL;
    if (idx >= fp_family_count(&self->st)) {
        PyErr_Format(PyExc_IndexError, "no metric family %u in this store", idx);
        return NULL;
    }
    return fp_family_samples(&self->st, idx, sample_type, exemplar_type);
}

/* repair() -> int: puts right what a process that died creating a series left. */
static PyObject *Store_repair(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    int n = 0;
    if (self->st.readonly)
        return PyLong_FromLong(0);
    Py_BEGIN_ALLOW_THREADS
    n = fp_store_repair(&self->st);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(n);
}

/* check() -> None, or what the consistency check found wrong. */
static PyObject *Store_check(StoreObject *self, PyObject *args)
{
    int quiescent = 1;
    if (!PyArg_ParseTuple(args, "|p:check", &quiescent))
        return NULL;
    const char *why;
    Py_BEGIN_ALLOW_THREADS
    why = fp_store_check(&self->st, quiescent);
    Py_END_ALLOW_THREADS
    if (!why)
        Py_RETURN_NONE;
    return PyUnicode_FromString(why);
}

/* replaced() -> bool: the store file's path names another file now, or none. */
static PyObject *Store_replaced(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(fp_store_replaced(&self->st));
}

static PyObject *Store_get_readonly(StoreObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->st.readonly);
}

static PyObject *Store_get_path(StoreObject *self, void *Py_UNUSED(closure))
{
    if (!self->st.path)
        Py_RETURN_NONE;
    return PyUnicode_DecodeFSDefault(self->st.path);
}

static PyGetSetDef Store_getset[] = {
    {"readonly", (getter)Store_get_readonly, NULL, "True when the store file is mapped read-only.", NULL},
    {"path", (getter)Store_get_path, NULL, "The store file's path, or None for a private store.", NULL},
    {NULL}};

static PyMethodDef Store_methods[] = {
    {"replaced", (PyCFunction)Store_replaced, METH_NOARGS,
     "replaced() -> bool\n\nTrue when the store file's path no longer names the mapped file (deleted or "
     "re-created)."},
    {"add_family", (PyCFunction)(void (*)(void))Store_add_family, METH_VARARGS | METH_KEYWORDS,
     "add_family(type, name, help, unit, labelnames, buckets=None, mpmode=0, quantiles=None, max_age=600.0, "
     "age_buckets=5) -> int\n\nAdds a metric family (in a shared store, finds the existing one)."},
    {"stats", (PyCFunction)Store_stats, METH_NOARGS, "stats() -> dict\n\nArena and series usage."},
    {"processes", (PyCFunction)Store_processes, METH_NOARGS,
     "processes() -> list\n\n(pid, alive) of every process attached to a shared store."},
    {"attach_process", (PyCFunction)Store_attach_process, METH_NOARGS,
     "attach_process()\n\nRegisters the calling process (after a fork)."},
    {"family_count", (PyCFunction)Store_family_count, METH_NOARGS, "family_count() -> int"},
    {"family", (PyCFunction)Store_family, METH_O, "family(index) -> (name, type, help, unit)"},
    {"limited", (PyCFunction)Store_limited, METH_NOARGS,
     "limited() -> [(name, lookups, live series)]\n\nFamilies whose max_series sent label sets to the overflow "
     "series: how many lookups it took there, and the series they have."},
    {"samples", (PyCFunction)Store_samples, METH_VARARGS,
     "samples(index, Sample, Exemplar) -> list\n\nA family's samples as collect() shows them."},
    {"repair", (PyCFunction)Store_repair, METH_NOARGS,
     "repair() -> int\n\nLinks series a dead process published but did not link; shows reused ones it did not."},
    {"check", (PyCFunction)Store_check, METH_VARARGS,
     "check(quiescent=True) -> str or None\n\nThe full consistency check; what is wrong, or None."},
    {NULL}};

static PyType_Slot Store_slots[] = {
    {Py_tp_new, Store_new},
    {Py_tp_dealloc, Store_dealloc},
    {Py_tp_methods, Store_methods},
    {Py_tp_getset, Store_getset},
    {Py_tp_doc, "Store(size=268435456, path=None, readonly=False)\n\nA lock-free metrics store in one arena of "
                "`size` bytes; with `path`, in that file, shared by every process that opens it; with `readonly`, "
                "that file mapped for reading only (nothing is written to it)."},
    {0, NULL}};

PyType_Spec fp_Store_spec = {"fastprom._core.Store", sizeof(StoreObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, Store_slots};
