/* asgi.c: the per-request helpers of the ASGI middleware.
 *
 * - SendTap wraps an ASGI send callable and notes the response's status,
 *   headers and start time as it passes each message on.
 * - HttpRecorder records the default HTTP metrics of one request in one
 *   call.  It owns its cache: (handler, method, status) -> the four series
 *   of that request kind, created through the store on first use and
 *   re-checked with one load of the store's removal count, so a remove()
 *   or clear() anywhere is seen at the next request. */
#include "state.h"

#include <math.h>
#include <string.h>
#include <strings.h>
#include <structmember.h>

/* ---- Content-Length ---------------------------------------------------- */

double fp_content_length(const char *p, Py_ssize_t n)
{
    const char *end = p + n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end == p || end - p > 18)
        return 0;
    uint64_t acc = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        acc = acc * 10 + (uint64_t)(*p - '0');
    }
    return (double)acc;
}

double fp_header_length(PyObject *headers)
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
        n = fp_content_length(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
        break;
    }
    Py_DECREF(seq);
    return n;
}

/* ---- HttpRecorder -------------------------------------------------------- */

enum { ROLE_HANDLER = 0, ROLE_METHOD = 1, ROLE_STATUS = 2, ROLE_EXTRA = 3 };
enum { M_TOTAL, M_IN, M_OUT, M_LATENCY, NLABELLED };
#define CACHE_LIMIT 4096

_Static_assert((int)NLABELLED == (int)FP_HTTP_SERIES, "fp_http_kind holds one series per labelled metric");
typedef fp_http_kind bundle;

typedef struct {
    PyObject_HEAD
    MetricObject *m[NLABELLED]; /* total, request size, response size, latency */
    MetricObject *highr;    /* unlabelled histogram */
    PyObject *extra;        /* tuple of str: the custom label values */
    uint32_t *roles[NLABELLED]; /* per label of each metric: ROLE_* (+ extra index) */
    PyObject *cache;        /* dict: (handler, method, status) -> capsule(bundle) */
    int only_2xx_highr;
} RecorderObject;

static int Recorder_traverse(RecorderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    for (int i = 0; i < NLABELLED; i++)
        Py_VISIT(self->m[i]);
    Py_VISIT(self->highr);
    Py_VISIT(self->extra);
    Py_VISIT(self->cache);
    return 0;
}

static int Recorder_clear(RecorderObject *self)
{
    for (int i = 0; i < NLABELLED; i++)
        Py_CLEAR(self->m[i]);
    Py_CLEAR(self->highr);
    Py_CLEAR(self->extra);
    Py_CLEAR(self->cache);
    return 0;
}

static void Recorder_dealloc(RecorderObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Recorder_clear(self);
    for (int i = 0; i < NLABELLED; i++)
        PyMem_Free(self->roles[i]);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* Works out where each label value of metric m comes from.  0 or -1. */
static int assign_roles(RecorderObject *self, int which, PyObject *extra_names)
{
    MetricObject *m = self->m[which];
    Py_ssize_t n = PyTuple_GET_SIZE(m->labelnames);
    if (!(self->roles[which] = PyMem_Calloc((size_t)n + 1, sizeof(uint32_t)))) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(m->labelnames, i);
        uint32_t role;
        if (PyUnicode_CompareWithASCIIString(name, "handler") == 0)
            role = ROLE_HANDLER;
        else if (PyUnicode_CompareWithASCIIString(name, "method") == 0)
            role = ROLE_METHOD;
        else if (PyUnicode_CompareWithASCIIString(name, "status") == 0)
            role = ROLE_STATUS;
        else {
            Py_ssize_t j = PySequence_Index(extra_names, name);
            if (j < 0) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "HttpRecorder: %s has label %R, which is neither handler, method, "
                             "status nor one of the custom labels", fp_metric_name(m), name);
                return -1;
            }
            role = ROLE_EXTRA + (uint32_t)j;
        }
        self->roles[which][i] = role;
    }
    return 0;
}

static PyObject *Recorder_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"total", "request_size", "response_size", "latency", "highr", "extra_labels",
                             "only_2xx_highr", NULL};
    PyObject *m[NLABELLED], *highr, *extra = NULL;
    int only2xx = 0;
    module_state *ms = fp_state_of_type(tp);
    if (!ms || !PyArg_ParseTupleAndKeywords(args, kw, "O!O!O!O!O!|O!p:HttpRecorder", kwlist, ms->Counter, &m[M_TOTAL],
                                            ms->Summary, &m[M_IN], ms->Summary, &m[M_OUT], ms->Histogram,
                                            &m[M_LATENCY], ms->Histogram, &highr, &PyDict_Type, &extra, &only2xx))
        return NULL;
    MetricObject *h = (MetricObject *)highr;
    if (!h->store || !h->series) {
        PyErr_SetString(PyExc_ValueError, "HttpRecorder needs an unlabelled high-resolution histogram");
        return NULL;
    }
    for (int i = 0; i < NLABELLED; i++) {
        MetricObject *mo = (MetricObject *)m[i];
        if (!mo->store || !mo->children || mo->store != h->store) {
            PyErr_SetString(PyExc_ValueError,
                            "HttpRecorder needs parent metrics, bound to the same store as the histogram");
            return NULL;
        }
    }
    RecorderObject *self = (RecorderObject *)tp->tp_alloc(tp, 0);
    if (!self)
        return NULL;
    for (int i = 0; i < NLABELLED; i++)
        self->m[i] = (MetricObject *)Py_NewRef(m[i]);
    self->highr = (MetricObject *)Py_NewRef(highr);
    self->only_2xx_highr = only2xx;
    PyObject *names = extra ? PyDict_Keys(extra) : PyList_New(0);
    PyObject *values = extra ? PyDict_Values(extra) : PyList_New(0);
    self->extra = values ? PySequence_Tuple(values) : NULL;
    self->cache = PyDict_New();
    int ok = names && self->extra && self->cache;
    for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(self->extra); i++)
        if (!PyUnicode_Check(PyTuple_GET_ITEM(self->extra, i))) {
            PyErr_SetString(PyExc_TypeError, "HttpRecorder: custom label values must be str");
            ok = 0;
        }
    for (int i = 0; ok && i < NLABELLED; i++)
        ok = assign_roles(self, i, names) == 0;
    Py_XDECREF(names);
    Py_XDECREF(values);
    if (!ok) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* Finds or creates the four series of one request kind.  0, 1 when one
 * of them is an overflow series (store full, or a series limit), or -1. */
static int resolve(RecorderObject *self, PyObject *const *hms, bundle *b)
{
    const char *v[ROLE_EXTRA + 16];
    size_t l[ROLE_EXTRA + 16];
    Py_ssize_t nextra = PyTuple_GET_SIZE(self->extra);
    const char **vp = nextra <= 16 ? v : PyMem_Calloc((size_t)(ROLE_EXTRA + nextra), sizeof *vp);
    size_t *lp = nextra <= 16 ? l : PyMem_Calloc((size_t)(ROLE_EXTRA + nextra), sizeof *lp);
    const char *sv[64], **mv = NULL;
    size_t sl[64], *ml = NULL;
    PyObject *strs[ROLE_EXTRA] = {NULL, NULL, NULL};
    int rc = -1, overflowed = 0;
    if (!vp || !lp) {
        PyErr_NoMemory();
        goto done;
    }
    /* Label values are str() of what is passed, as labels() takes them. */
    for (int i = 0; i < ROLE_EXTRA; i++)
        if (!(strs[i] = PyUnicode_Check(hms[i]) ? Py_NewRef(hms[i]) : PyObject_Str(hms[i])))
            goto done;
    for (int i = 0; i < ROLE_EXTRA + nextra; i++) {
        PyObject *o = i < ROLE_EXTRA ? strs[i] : PyTuple_GET_ITEM(self->extra, i - ROLE_EXTRA);
        Py_ssize_t len;
        if (!(vp[i] = fp_utf8(o, &len, "label value")))
            goto done;
        lp[i] = (size_t)len;
    }
    for (int k = 0; k < NLABELLED; k++) {
        MetricObject *m = self->m[k];
        uint32_t n = m->fam->nlabels;
        mv = n <= 64 ? sv : PyMem_Calloc(n, sizeof *mv);
        ml = n <= 64 ? sl : PyMem_Calloc(n, sizeof *ml);
        if (!mv || !ml) {
            PyErr_NoMemory();
            goto done;
        }
        for (uint32_t i = 0; i < n; i++) {
            mv[i] = vp[self->roles[k][i]];
            ml[i] = lp[self->roles[k][i]];
        }
        int r = fp_metric_series(m, mv, ml, &b->series[k]);
        if (r >= 0)
            b->gen[k] = fp_series_gen(b->series[k]);
        overflowed |= r == 1;
        if (mv != sv)
            PyMem_Free(mv);
        if (ml != sl)
            PyMem_Free(ml);
        mv = NULL;
        ml = NULL;
        if (r < 0)
            goto done;
    }
    b->overflowed = overflowed;
    rc = overflowed;
done:
    for (int i = 0; i < ROLE_EXTRA; i++)
        Py_XDECREF(strs[i]);
    if (vp && vp != v)
        PyMem_Free(vp);
    if (lp && lp != l)
        PyMem_Free(lp);
    return rc;
}

static void free_bundle(PyObject *capsule) { PyMem_Free(PyCapsule_GetPointer(capsule, "fastprom.bundle")); }

/* Whether the series of a kind found before are still its series, and
 * notes that they were checked at this removal count. */
static int still_live(bundle *b, uint64_t removals)
{
    if (b->removals == removals)
        return 1;
    int live = !b->overflowed; /* room may have been made */
    for (int i = 0; i < NLABELLED; i++)
        live &= fp_series_still(b->series[i], b->gen[i]);
    if (live)
        b->removals = removals;
    return live;
}

/* The series of one request kind, copied into *out: from the cache,
 * re-checked after removals, or found (and cached) now.  The copy matters:
 * resolving may run Python code (a warning), which may empty the cache.
 * 0 or -1. */
static int bundle_for_locked(RecorderObject *self, PyObject *const *hms, bundle *out)
{
    const fp_store *s = &self->highr->store->st;
    /* Read before any lookup: a removal after this is seen next time. */
    uint64_t removals = fp_removals(s);
    PyObject *key = PyTuple_Pack(3, hms[0], hms[1], hms[2]);
    if (!key)
        return -1;
    int rc = -1;
    PyObject *cap;
    int got = PyDict_GetItemRef(self->cache, key, &cap);
    if (got > 0) {
        bundle *b = PyCapsule_GetPointer(cap, "fastprom.bundle");
        if (!b) {
            Py_DECREF(cap);
            goto done;
        }
        if (still_live(b, removals)) {
            *out = *b;
            rc = 0;
            Py_DECREF(cap);
            goto done;
        }
        /* Our reference keeps b alive, whatever resolving does to the cache. */
        rc = resolve(self, hms, out);
        if (rc >= 0) {
            out->removals = removals;
            *b = *out;
            rc = 0;
        }
        Py_DECREF(cap);
    } else if (got == 0 && (rc = resolve(self, hms, out)) >= 0) {
        out->removals = removals;
        /* A kind counted under an overflow series is not cached: the
         * kinds past a limit are the unbounded ones. */
        int keep = rc == 0 && PyDict_GET_SIZE(self->cache) < CACHE_LIMIT;
        rc = 0;
        if (keep) {
            bundle *b = PyMem_Malloc(sizeof *b);
            PyObject *c = b ? PyCapsule_New(b, "fastprom.bundle", free_bundle) : NULL;
            if (!b)
                PyErr_NoMemory();
            else if (!c)
                PyMem_Free(b);
            else
                *b = *out;
            if (!c || PyDict_SetItem(self->cache, key, c) < 0)
                rc = -1;
            Py_XDECREF(c);
        }
    }
done:
    Py_DECREF(key);
    return rc;
}

/* bundle_for_locked in the recorder's critical section: the cache and the
 * bundles in it are shared by every request (every thread, without a GIL). */
static int bundle_for(RecorderObject *self, PyObject *const *hms, bundle *out)
{
    int rc;
    Py_BEGIN_CRITICAL_SECTION(self);
    rc = bundle_for_locked(self, hms, out);
    Py_END_CRITICAL_SECTION();
    return rc;
}

static void observe_hist(MetricObject *m, fp_series *se, double v, const char *ex, size_t exlen, double now)
{
    const fp_family *f = m->fam;
    uint32_t i = fp_bucket_index(fp_at(&m->store->st, f->buckets), f->nbuckets, v);
    fp_histogram_observe_all(f, se, i, v);
    /* After the count: an exemplar that finds no room is dropped, the
     * observation stands. */
    if (ex)
        (void)fp_exemplar_put(&m->store->st, se, f->nbuckets, i, ex, exlen, v, now);
}

/* The hundreds of an int status (2 for 2xx), 0 when it is not a status. */
static long status_class(PyObject *status)
{
    int overflow;
    long v = PyLong_AsLongAndOverflow(status, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return overflow ? 0 : v / 100;
}

/* Whether a request of this status (its label, or the int) is observed by
 * the high-resolution histogram. */
static int counts_highr(RecorderObject *self, PyObject *status)
{
    return !self->only_2xx_highr ||
           (PyUnicode_Check(status) && PyUnicode_GET_LENGTH(status) > 0 && PyUnicode_READ_CHAR(status, 0) == '2') ||
           (PyLong_Check(status) && status_class(status) == 2);
}

/* Updates every metric of one request of kind b: d holds the duration and
 * the two sizes.  The exemplar's text is built once for both histograms;
 * one that is not a valid label set is dropped, never the request's counts. */
static void observe_kind(RecorderObject *self, const bundle *b, int highr, const double d[3], PyObject *exemplar)
{
    char text[FP_EXEMPLAR_TEXT];
    size_t tlen = 0;
    const char *ex = NULL;
    double now = 0;
    if (exemplar != Py_None) {
        if (fp_exemplar_text(self->m[M_LATENCY], exemplar, text, &tlen) == 0) {
            ex = text;
            now = fp_now();
        } else {
            PyErr_Clear();
        }
    }
    fp_counter_inc(b->series[M_TOTAL], 1.0);
    observe_hist(self->m[M_LATENCY], b->series[M_LATENCY], d[0], ex, tlen, now);
    /* Unlabelled, so never removed: its series stays the one it bound. */
    if (highr)
        observe_hist(self->highr, self->highr->series, d[0], ex, tlen, now);
    const fp_store *s = &self->highr->store->st;
    fp_summary_observe_all(s, self->m[M_IN]->fam, b->series[M_IN], d[1]);
    fp_summary_observe_all(s, self->m[M_OUT]->fam, b->series[M_OUT], d[2]);
}

/* ---- the middleware's entry points (asgi_call.c) ---- */

static PyObject *Recorder_record(RecorderObject *self, PyObject *const *args, Py_ssize_t nargs);

int fp_recorder_of(module_state *ms, PyObject *callable, PyObject **recorder)
{
    if (!PyCFunction_Check(callable) ||
        PyCFunction_GET_FUNCTION(callable) != (PyCFunction)(void (*)(void))Recorder_record)
        return 0;
    PyObject *self = PyCFunction_GET_SELF(callable);
    if (!self || !PyObject_TypeCheck(self, ms->HttpRecorder))
        return 0;
    *recorder = self;
    return 1;
}

int fp_recorder_kind(PyObject *recorder, PyObject *const *hms, fp_http_kind *k)
{
    return bundle_for((RecorderObject *)recorder, hms, k);
}

int fp_recorder_refresh(PyObject *recorder, PyObject *const *hms, fp_http_kind *k)
{
    RecorderObject *self = (RecorderObject *)recorder;
    if (still_live(k, fp_removals(&self->highr->store->st)))
        return 0;
    return bundle_for(self, hms, k) < 0 ? -1 : 1;
}

int fp_recorder_current(PyObject *recorder, fp_http_kind *k)
{
    RecorderObject *self = (RecorderObject *)recorder;
    return still_live(k, fp_removals(&self->highr->store->st));
}

int fp_recorder_counts_highr(PyObject *recorder, PyObject *status)
{
    return counts_highr((RecorderObject *)recorder, status);
}

void fp_recorder_observe(PyObject *recorder, const fp_http_kind *k, int highr, const double d[3],
                         PyObject *exemplar)
{
    observe_kind((RecorderObject *)recorder, k, highr, d, exemplar);
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
    double d[3];
    for (int i = 0; i < 3; i++) {
        PyObject *a = args[3 + i];
        if (i && (a == Py_None || PyList_Check(a) || PyTuple_Check(a))) {
            d[i] = a == Py_None ? 0 : fp_header_length(a);
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
    bundle kind;
    if (bundle_for(self, args, &kind) < 0)
        return NULL;
    observe_kind(self, &kind, counts_highr(self, args[2]), d, nargs == 7 ? args[6] : Py_None);
    Py_RETURN_NONE;
}

static PyObject *Recorder_forget(RecorderObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_BEGIN_CRITICAL_SECTION(self);
    PyDict_Clear(self->cache);
    Py_END_CRITICAL_SECTION();
    Py_RETURN_NONE;
}

static PyMethodDef Recorder_methods[] = {
    {"record", (PyCFunction)(void (*)(void))Recorder_record, METH_FASTCALL,
     "record(handler, method, status, duration, request_size, response_size[, exemplar])\n\n"
     "Updates every default HTTP metric for one request; the exemplar goes on both latency histograms."},
    {"forget", (PyCFunction)Recorder_forget, METH_NOARGS, "forget()\n\nEmpties the cache of request kinds."},
    {NULL}};

static PyType_Slot Recorder_slots[] = {
    {Py_tp_new, Recorder_new},
    {Py_tp_dealloc, Recorder_dealloc},
    {Py_tp_traverse, Recorder_traverse},
    {Py_tp_clear, Recorder_clear},
    {Py_tp_methods, Recorder_methods},
    {Py_tp_doc, "HttpRecorder(total, request_size, response_size, latency, highr, extra_labels=None, "
                "only_2xx_highr=False)\n\nRecords the default HTTP metrics of a request in one call."},
    {0, NULL}};

PyType_Spec fp_Recorder_spec = {"fastprom._core.HttpRecorder", sizeof(RecorderObject), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE, Recorder_slots};

/* ---- SendTap ----------------------------------------------------------- */

/* Calling it returns whatever the wrapped send returns, so no Python frame
 * is added per message. */

static PyObject *Tap_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TapObject *self = (TapObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!self->send) {
        PyErr_SetString(PyExc_RuntimeError, "SendTap: this tap wraps no send (its request is over)");
        return NULL;
    }
    if (nargs == 1 && !kwnames && PyDict_CheckExact(args[0]) && self->started == 0.0) {
        module_state *ms = self->ms;
        /* Lookups that fail leave the message to the wrapped send, which
         * reports what is wrong with it. */
        PyObject *type = PyDict_GetItemWithError(args[0], ms->s_type);
        if (type && PyUnicode_Check(type) &&
            (type == ms->s_start || (PyUnicode_CheckExact(type) ? fp_same_ascii(type, ms->s_start)
                                                                 : PyUnicode_Compare(type, ms->s_start) == 0))) {
            PyObject *status = PyDict_GetItemWithError(args[0], ms->s_status);
            PyErr_Clear();
            PyObject *headers = PyDict_GetItemWithError(args[0], ms->s_headers);
            PyErr_Clear();
            Py_XSETREF(self->status, Py_NewRef(status ? status : Py_None));
            Py_XSETREF(self->headers, Py_NewRef(headers ? headers : Py_None));
            self->started = fp_monotonic();
        }
        PyErr_Clear();
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
    module_state *ms = fp_state_of_type(tp);
    return ms ? (PyObject *)fp_tap_new(ms, send) : NULL;
}

TapObject *fp_tap_new(module_state *ms, PyObject *send)
{
    PyTypeObject *tp = ms->SendTap;
    TapObject *self = (TapObject *)tp->tp_alloc(tp, 0);
    if (!self)
        return NULL;
    self->ms = ms;
    self->send = Py_NewRef(send);
    self->status = Py_NewRef(Py_None);
    self->headers = Py_NewRef(Py_None);
    self->vectorcall = Tap_vectorcall;
    return self;
}

void fp_tap_empty(TapObject *tap)
{
    Py_CLEAR(tap->send);
    Py_XSETREF(tap->status, Py_NewRef(Py_None));
    Py_XSETREF(tap->headers, Py_NewRef(Py_None));
    tap->started = 0.0;
}

static int Tap_traverse(TapObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->send);
    Py_VISIT(self->status);
    Py_VISIT(self->headers);
    return 0;
}

/* Leaves an emptied tap (send NULL, status and headers None), not NULLs:
 * the GC may clear a tap that keep_tap moves into mw->spare while the GC
 * deletes the cycle it was in (or clear it before that HttpCall's dealloc). */
static int Tap_clear(TapObject *self)
{
    fp_tap_empty(self);
    return 0;
}

static void Tap_dealloc(TapObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->send);
    Py_CLEAR(self->status);
    Py_CLEAR(self->headers);
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

PyType_Spec fp_Tap_spec = {"fastprom._core.SendTap", sizeof(TapObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
                               Py_TPFLAGS_HAVE_VECTORCALL,
                           Tap_slots};
