/* state.h: what the binding's files share: the module state, the object
 * layouts of Store and the metric bases, and the helpers that turn core
 * status codes into exceptions.
 *
 * Error convention: a function returning PyObject * returns NULL, and one
 * returning int returns -1, with an exception set. */
#ifndef FASTPROM_PY_STATE_H
#define FASTPROM_PY_STATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "format.h"
#include "store.h"
#include "walk.h"

/* Free-threaded CPython (3.13t): the C API's critical sections and the
 * dict functions that return strong references.  On builds with a GIL
 * the critical sections are plain blocks, and the dict functions are
 * written here for the versions that lack them. */
#if PY_VERSION_HEX < 0x030D0000
#define Py_BEGIN_CRITICAL_SECTION(op) {
#define Py_END_CRITICAL_SECTION() }
/* 1 with a new reference in *out, 0 (absent, *out NULL), or -1. */
static inline int PyDict_GetItemRef(PyObject *d, PyObject *k, PyObject **out)
{
    *out = Py_XNewRef(PyDict_GetItemWithError(d, k));
    return *out ? 1 : PyErr_Occurred() ? -1 : 0;
}
/* Inserts v unless k is there: 0 (inserted) or 1 (there), with a new
 * reference to the value now stored in *out; or -1. */
static inline int PyDict_SetDefaultRef(PyObject *d, PyObject *k, PyObject *v, PyObject **out)
{
    PyObject *was = PyDict_GetItemWithError(d, k);
    if (was) {
        *out = Py_NewRef(was);
        return 1;
    }
    *out = NULL;
    if (PyErr_Occurred() || PyDict_SetItem(d, k, v) < 0)
        return -1;
    *out = Py_NewRef(v);
    return 0;
}
#endif

/* A field of a binding object that threads read without a lock (without
 * the GIL on a free-threaded build): relaxed atomic access, so a racing
 * read sees an old or a new value, never a torn one. */
#define FP_LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define FP_STORE(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

typedef struct {
    PyTypeObject *Store;
    PyTypeObject *Metric;   /* shared base, not exported for direct use */
    PyTypeObject *Counter, *Gauge, *Histogram, *Summary;
    PyTypeObject *HttpRecorder, *SendTap, *HttpMiddleware, *HttpCall;
    PyObject *s_type, *s_status, *s_headers, *s_start; /* interned message keys */
    PyObject *s_http, *s_route, *s_fastapi, *s_erc, *s_original, *s_root_path, *s_app, *s_method, *s_other,
        *s_close, *s_throw, *s_call, *i_500; /* scope keys and constants of the middleware */
    PyObject *StoreFullError;
    PyObject *StoreFileError;
} module_state;

extern struct PyModuleDef fp_core_module;

/* The module state of one of our types (a borrowed pointer), or NULL with
 * an exception set. */
static inline module_state *fp_state_of_type(PyTypeObject *tp)
{
    PyObject *m = PyType_GetModuleByDef(tp, &fp_core_module);
    return m ? PyModule_GetState(m) : NULL;
}

typedef struct StoreObject {
    PyObject_HEAD
    fp_store st;
    struct StoreObject *prev, *next; /* every open store, for the debug check */
} StoreObject;

typedef struct {
    PyObject_HEAD
    StoreObject *store;     /* NULL until _bind */
    fp_family *fam;
    /* The cached series: `series`, `gen`, `in_overflow` and `forks` are
     * written (FP_STORE) only by checked(), under the object's critical
     * section, and `removals` last with release order; the update fast
     * path reads `removals` with acquire order, then `series`, so a thread
     * that sees the new count sees the series checked against it. */
    fp_series *series;      /* NULL on a parent that has labels */
    const fp_word *removals_at; /* the store's removal count (NULL until _bind) */
    uint64_t removals;      /* its value when `series` was last checked */
    uint64_t gen;           /* `series`' generation then (a reused record is another series) */
    uint64_t forks;         /* per-process: the fork generation `series` belongs to */
    uint32_t family;
    int per_process;        /* a per-process gauge of a shared store: its series is this process's */
    PyObject *labelnames;   /* tuple of str */
    PyObject *children;     /* parent: dict of label-value tuple -> child (owned here) */
    PyObject *labelvalues;  /* child: tuple of str */
    PyObject *last_child;   /* parent: the child labels() last found in `children`, matched by its
                             * labelvalues (builds with a GIL only; dropped with the entry) */
    int overflow_warned;
    int limit_warned;
    int in_overflow;        /* `series` is the overflow series (store full, or max_series) */
    uint64_t max_series;    /* new label sets past this many live series go to the overflow series (0: no limit) */
} MetricObject;

/* ---- store_type.c ---- */
extern PyType_Spec fp_Store_spec;
/* Sets an exception for a negative fp_status, naming `what`; returns NULL. */
PyObject *fp_raise_status(PyTypeObject *tp, int rc, const char *what);
/* _core._check_stores(): (store, problem) for every open store failing
 * the full consistency check, the store named by its file or address. */
PyObject *fp_check_open_stores(void);

/* ---- metric_type.c ---- */
extern PyType_Spec fp_Metric_spec, fp_Counter_spec, fp_Gauge_spec, fp_Histogram_spec, fp_Summary_spec;
/* The metric's name, for messages. */
const char *fp_metric_name(MetricObject *m);

/* ---- metric_series.c ---- */
/* UTF-8 pointers and lengths of a tuple of str, on the stack for up to 8. */
typedef struct {
    const char *stackp[8];
    size_t stackl[8];
    const char **vp;
    size_t *vl;
} values_buf;
/* Fills vb from a tuple of str: 0, or -1 with an exception set; free with
 * fp_values_free. */
int fp_values_of(PyObject *values, values_buf *vb);
void fp_values_free(values_buf *vb);
/* Finds or creates the series of these label values (UTF-8), counting a
 * new label set under the overflow series when the store is full or the
 * metric's max_series is reached: 0, 1 for the overflow series, or -1. */
int fp_metric_series(MetricObject *m, const char *const *values, const size_t *lens, fp_series **out);

/* ---- exemplar.c ---- */
/* Renders an exemplar label dict into text ({a="b"}), checking it as
 * OpenMetrics requires; 0 or -1. */
int fp_exemplar_text(MetricObject *m, PyObject *exemplar, char *text, size_t *len);
/* An update method's exemplar argument: 1 with its text, 0 for none, -1. */
int fp_exemplar_arg(MetricObject *m, PyObject *exemplar, char *text, size_t *len);
/* Stores an exemplar after its count; dropped when the store has no room. */
void fp_keep_exemplar(MetricObject *m, fp_series *se, uint32_t nslots, uint32_t slot, const char *text, size_t len,
                      double value);

/* ---- families.c ---- */
/* Writes a family built in Python (prometheus_client's Metric shape). */
int fp_render_pyfamily(fp_buf *b, PyObject *metric, int view, int esc);
/* The same family as a delimited protobuf MetricFamily (none without samples).  0 or -1. */
int fp_render_pyfamily_pb(fp_buf *b, PyObject *metric, int esc);
/* The samples of a store family as Python sees them: a list of
 * sample_type(name, labels, value, None, exemplar). */
PyObject *fp_family_samples(const fp_store *s, uint32_t family, PyObject *sample_type, PyObject *exemplar_type);

/* ---- asgi.c ---- */
extern PyType_Spec fp_Recorder_spec, fp_Tap_spec;

/* A SendTap: calling it returns whatever the wrapped send returns, so no
 * Python frame is added per message. */
typedef struct {
    PyObject_HEAD
    PyObject *send;
    PyObject *status;       /* None until the response starts */
    PyObject *headers;
    double started;         /* time.perf_counter() clock; 0 until the response starts */
    vectorcallfunc vectorcall;
    module_state *ms;       /* kept alive by our type, which holds the module */
} TapObject;

/* A new SendTap wrapping send, or NULL with an exception set. */
TapObject *fp_tap_new(module_state *ms, PyObject *send);
/* Empties a tap no one else holds, for its next request: it then wraps
 * nothing (set tap->send before handing it out again). */
void fp_tap_empty(TapObject *tap);

/* The series one request kind (handler, method, status) updates, as an
 * HttpRecorder resolved them: total, request size, response size, latency. */
enum { FP_HTTP_SERIES = 4 };
typedef struct {
    fp_series *series[FP_HTTP_SERIES];
    uint64_t gen[FP_HTTP_SERIES]; /* their generations then (a reused record is another series) */
    uint64_t removals;      /* the store's removal count when they were checked */
    int overflowed;         /* one is an overflow series: looked up again after a removal */
} fp_http_kind;

/* Content-Length from ASGI headers (a list of (name, value) byte pairs):
 * 0 when absent or malformed. */
double fp_header_length(PyObject *headers);
/* 1 with the recorder in *recorder (borrowed) when callable is the bound
 * record method of an HttpRecorder, else 0. */
int fp_recorder_of(module_state *ms, PyObject *callable, PyObject **recorder);
/* The series of kind hms (handler, method label, status label), as
 * record() finds them.  0 or -1. */
int fp_recorder_kind(PyObject *recorder, PyObject *const *hms, fp_http_kind *k);
/* Makes a kind found before current after removals (its series looked up
 * again when one of them went).  1 when it was looked up again, 0 when
 * it was current, or -1. */
int fp_recorder_refresh(PyObject *recorder, PyObject *const *hms, fp_http_kind *k);
/* Whether a kind's series are all still there (no Python, no lock; it
 * notes the removals it has seen in *k).  1 or 0. */
int fp_recorder_current(PyObject *recorder, fp_http_kind *k);
/* Whether a request with this status label is observed by the unlabelled histogram. */
int fp_recorder_counts_highr(PyObject *recorder, PyObject *status);
/* Updates every metric of one request of kind k: d holds the duration and
 * the two sizes; exemplar is a dict or None. */
void fp_recorder_observe(PyObject *recorder, const fp_http_kind *k, int highr, const double d[3],
                         PyObject *exemplar);

/* ---- asgi_call.c ---- */
extern PyType_Spec fp_HttpMiddleware_spec, fp_HttpCall_spec;
/* Content-Length from a header value: digits with blanks around them, at
 * most 18 of them; anything else (it comes from the client) is 0. */
double fp_content_length(const char *p, Py_ssize_t n);

/* Two exact str of the same characters, b compact ASCII (a literal of ours). */
static inline int fp_same_ascii(PyObject *a, PyObject *b)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(b);
    return PyUnicode_IS_COMPACT_ASCII(a) && PyUnicode_GET_LENGTH(a) == n &&
           memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n) == 0;
}

/* UTF-8 of a str, or NULL with TypeError naming `what`. */
static inline const char *fp_utf8(PyObject *o, Py_ssize_t *len, const char *what)
{
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(o, len);
}

/* native_view.c: a series' native buckets as a dict (HistogramBase._native). */
PyObject *fp_native_dict(const fp_family *f, fp_series *se);

#endif
