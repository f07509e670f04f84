/* module.c: the fastprom._core module: multi-phase init (PEP 489), heap
 * types, per-module state, the constants the Python layer reads, and the
 * renderer entry point. */
#include "state.h"

#include <math.h>

#include "labels.h"
#include "proto.h"
#include "quantile.h"
#include "render.h"

/* render(items, view, escaping=0) -> bytes.  items, rendered in order: a
 * store metric (its family), a Store (every family in it: a shared store),
 * or a family built in Python.  The view is the text format, OpenMetrics
 * or delimited protobuf.  The store walk never calls into Python and runs
 * with the GIL released. */
/* The size of the last body rendered in each view, and of the largest
 * text-format _created block in it: the next render starts in storage of
 * about that size, so a body is written in place in its bytes object,
 * neither regrown on the way nor copied at the end.  Only a guess: when
 * that storage cannot be had, a render starts without it, and a render
 * that runs out of memory leaves no guess behind. */
static fp_word render_hint[FP_VIEW_PROTOBUF + 1], side_hint;

/* The storage a body of about n bytes starts in: n rounded up to a
 * sixteenth of its power of two, so that scrapes of a store that grows
 * slowly ask for one size again and again.  (glibc's malloc maps a large
 * block afresh, page by page zero-filled, unless a block that large was
 * freed before: a size that changed every scrape cost a 100,000-series
 * render half its time in page faults.) */
#define BODY_ROUNDED 65536 /* from this size on; below, malloc reuses freed blocks anyway */
static size_t body_size(size_t n)
{
    if (n < BODY_ROUNDED)
        return n;
    size_t step = ((size_t)1 << (63 - __builtin_clzll((unsigned long long)n))) / 16;
    return n > SIZE_MAX - step ? n : (n + step - 1) / step * step;
}

static PyObject *core_render(PyObject *m, PyObject *args)
{
    PyObject *items;
    int view, esc = FP_ESC_UNDERSCORES;
    if (!PyArg_ParseTuple(args, "Oi|i:render", &items, &view, &esc))
        return NULL;
    if (view != FP_VIEW_TEXT && view != FP_VIEW_OPENMETRICS && view != FP_VIEW_PROTOBUF) {
        PyErr_Format(PyExc_ValueError, "render: unknown view %d", view);
        return NULL;
    }
    if (esc < FP_ESC_UNDERSCORES || esc > FP_ESC_VALUES) {
        PyErr_Format(PyExc_ValueError, "render: unknown escaping scheme %d", esc);
        return NULL;
    }
    module_state *ms = PyModule_GetState(m);
    int pb = view == FP_VIEW_PROTOBUF;
    /* A tuple of our own: custom collectors run Python code that could
     * change a list we were handed while we hold borrowed items. */
    PyObject *seq = PySequence_Tuple(items);
    if (!seq)
        return NULL;
    PyObject *result = NULL, *out = NULL;
    fp_buf b, side;
    fp_buf_init(&b);
    fp_buf_init(&side);
    size_t hint = (size_t)fp_load(&render_hint[view]);
    if (hint) {
        /* An eighth more than last time: a store grows between scrapes. */
        hint = body_size(hint + hint / 8 + 256);
        if ((out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)hint)))
            fp_buf_lend(&b, PyBytes_AS_STRING(out), hint);
        else
            PyErr_Clear(); /* only a guess (a large body once): the body grows as it needs */
    }
    if (view == FP_VIEW_TEXT && !fp_buf_reserve(&side, (size_t)fp_load(&side_hint))) {
        fp_buf_free(&side);
        fp_buf_init(&side);
    }
    size_t side_max = 0; /* the largest _created block of a family */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        PyObject *it = PyTuple_GET_ITEM(seq, i);
        if (PyObject_TypeCheck(it, ms->Metric) && ((MetricObject *)it)->store) {
            MetricObject *mo = (MetricObject *)it;
            Py_BEGIN_ALLOW_THREADS
            if (pb)
                fp_render_family_pb(&b, &mo->store->st, mo->family, esc);
            else
                fp_render_family(&b, &side, &mo->store->st, mo->family, view, esc);
            side_max = side.len > side_max ? side.len : side_max;
            Py_END_ALLOW_THREADS
        } else if (PyObject_TypeCheck(it, ms->Store)) {
            const fp_store *s = &((StoreObject *)it)->st;
            Py_BEGIN_ALLOW_THREADS
            uint32_t n = fp_family_count(s);
            for (uint32_t k = 0; k < n && !b.oom; k++) {
                if (pb)
                    fp_render_family_pb(&b, s, k, esc);
                else
                    fp_render_family(&b, &side, s, k, view, esc);
                side_max = side.len > side_max ? side.len : side_max;
            }
            Py_END_ALLOW_THREADS
        } else if ((pb ? fp_render_pyfamily_pb(&b, it, esc) : fp_render_pyfamily(&b, it, view, esc)) < 0) {
            goto done;
        }
        if (b.oom) {
            PyErr_NoMemory();
            goto done;
        }
    }
    if (view == FP_VIEW_OPENMETRICS)
        fp_buf_puts(&b, "# EOF\n");
    if (b.oom) {
        PyErr_NoMemory();
        goto done;
    }
    fp_put(&render_hint[view], b.len);
    if (view == FP_VIEW_TEXT)
        fp_put(&side_hint, side_max);
    if (b.lent && hint >= BODY_ROUNDED && hint - b.len <= b.len / 3 + 4096) {
        /* Written in place in rounded storage, about as long as expected:
         * the object is cut to the body but keeps its storage (at most a
         * third more), so that the allocator sees the same size come back
         * every scrape and serves it from memory already mapped (see
         * body_size).  Smaller bodies gain nothing by it. */
        Py_SET_SIZE(out, (Py_ssize_t)b.len);
        PyBytes_AS_STRING(out)[b.len] = '\0';
        result = out;
        out = NULL;
    } else if (b.lent) {
        /* Small, or much shorter than expected: given back. */
        if (_PyBytes_Resize(&out, (Py_ssize_t)b.len) == 0)
            result = out;
        out = NULL; /* freed by a failed resize */
    } else {
        result = PyBytes_FromStringAndSize(b.p ? b.p : "", (Py_ssize_t)b.len);
    }
done:
    if (!result && PyErr_ExceptionMatches(PyExc_MemoryError)) {
        /* The next render starts small rather than asking for this much again. */
        fp_put(&render_hint[view], 0);
        fp_put(&side_hint, 0);
    }
    Py_XDECREF(out);
    fp_buf_free(&b);
    fp_buf_free(&side);
    Py_DECREF(seq);
    return result;
}

/* escape_name(name, escaping, metric) -> str: a name as the output writes
 * it (prometheus_client's escape_metric_name / escape_label_name). */
static PyObject *core_escape_name(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *p;
    Py_ssize_t n;
    int esc, metric;
    if (!PyArg_ParseTuple(args, "s#ip:escape_name", &p, &n, &esc, &metric))
        return NULL;
    if (esc < FP_ESC_UNDERSCORES || esc > FP_ESC_VALUES) {
        PyErr_Format(PyExc_ValueError, "escape_name: unknown escaping scheme %d", esc);
        return NULL;
    }
    fp_buf b;
    fp_buf_init(&b);
    fp_put_name(&b, p, (size_t)n, esc, metric);
    PyObject *r = b.oom ? PyErr_NoMemory() : PyUnicode_DecodeUTF8(b.p ? b.p : "", (Py_ssize_t)b.len, "strict");
    fp_buf_free(&b);
    return r;
}

/* set_created(on): whether store families show _created samples. */
static PyObject *core_set_created(PyObject *Py_UNUSED(m), PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    fp_set_created(on);
    Py_RETURN_NONE;
}

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

static PyObject *core_format_value(PyObject *Py_UNUSED(m), PyObject *arg)
{
    double v = PyFloat_AsDouble(arg);
    if (v == -1.0 && PyErr_Occurred())
        return NULL;
    char out[32];
    size_t n = fp_format_value(out, v);
    return PyUnicode_FromStringAndSize(out, (Py_ssize_t)n);
}

/* content_length(value) -> int: a Content-Length header value (str, bytes,
 * int or None) as the request path reads it; malformed values are 0. */
static PyObject *core_content_length(PyObject *Py_UNUSED(m), PyObject *arg)
{
    if (arg == Py_None)
        return PyLong_FromLong(0);
    const char *p;
    Py_ssize_t n;
    if (PyBytes_Check(arg)) {
        p = PyBytes_AS_STRING(arg);
        n = PyBytes_GET_SIZE(arg);
    } else if (PyUnicode_Check(arg)) {
        if (!(p = PyUnicode_AsUTF8AndSize(arg, &n)))
            return NULL;
    } else if (PyLong_Check(arg) && !PyBool_Check(arg)) {
        /* An int from a plain mapping: itself when it is a length. */
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(arg, &overflow);
        if (n == -1 && PyErr_Occurred())
            return NULL;
        return PyLong_FromLongLong(!overflow && n >= 0 && n < 1000000000000000000LL ? n : 0);
    } else {
        PyErr_Format(PyExc_TypeError, "content_length() takes str, bytes, int or None, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    return PyLong_FromDouble(fp_content_length(p, n));
}

/* _check_stores() -> list of (store, problem) for every open store that
 * fails the full consistency check (debug runs call it after each test). */
static PyObject *core_check_stores(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(ignored))
{
    return fp_check_open_stores();
}

/* native_schema(factor) -> int: the native schema a bucket factor gives. */
static PyObject *core_native_schema(PyObject *Py_UNUSED(m), PyObject *arg)
{
    double v = PyFloat_AsDouble(arg);
    if (v == -1.0 && PyErr_Occurred())
        return NULL;
    if (!(v > 1) || !(v < INFINITY)) {
        PyErr_Format(PyExc_ValueError, "native_schema: the bucket factor must be a finite number above 1, got %R", arg);
        return NULL;
    }
    return PyLong_FromLong(fp_nh_schema_for(v));
}

/* native_index(value, schema) -> int: the native bucket index of |value|. */
static PyObject *core_native_index(PyObject *Py_UNUSED(m), PyObject *args)
{
    double v;
    int schema;
    if (!PyArg_ParseTuple(args, "di:native_index", &v, &schema))
        return NULL;
    if (schema < FP_NH_SCHEMA_MIN || schema > FP_NH_SCHEMA_MAX || !(v != 0) || isnan(v)) {
        PyErr_Format(PyExc_ValueError, "native_index: needs a value other than 0 and NaN and a schema from %d to %d",
                     FP_NH_SCHEMA_MIN, FP_NH_SCHEMA_MAX);
        return NULL;
    }
    return PyLong_FromLong(fp_nh_index(fabs(v), schema));
}

static PyMethodDef core_methods[] = {
    {"native_schema", core_native_schema, METH_O,
     "native_schema(factor) -> int\n\nThe native histogram schema a bucket factor gives (client_golang's choice)."},
    {"native_index", core_native_index, METH_VARARGS,
     "native_index(value, schema) -> int\n\nThe native bucket index of abs(value) at a schema."},
    {"render", core_render, METH_VARARGS,
     "render(items, view, escaping=0) -> bytes\n\nRenders store metrics, whole stores and Python families, in order."},
    {"escape_name", core_escape_name, METH_VARARGS,
     "escape_name(name, escaping, metric) -> str\n\nA metric (or label) name as the output writes it."},
    {"set_created", core_set_created, METH_O,
     "set_created(on)\n\nWhether store families show _created samples (prometheus_client's switch)."},
    {"freeze_clock", core_freeze_clock, METH_O,
     "freeze_clock(t)\n\nPins the store's clock (created and exemplar timestamps) to t; None thaws it."},
    {"format_value", core_format_value, METH_O,
     "format_value(v) -> str\n\nFormats a value as the exposition formats do (prometheus_client's floatToGoString)."},
    {"content_length", core_content_length, METH_O,
     "content_length(value) -> int\n\nA Content-Length header value as recorded (malformed: 0)."},
    {"_check_stores", core_check_stores, METH_NOARGS,
     "_check_stores() -> list\n\n(store, problem) for every open store failing the consistency check; a store is named by its file or address."},
    {NULL}};

/* Adds a new reference (NULL: an error is set) as a module attribute and
 * drops it (PyModule_Add of 3.13).  0 or -1. */
static int add_new(PyObject *m, const char *name, PyObject *v)
{
    int rc = v ? PyModule_AddObjectRef(m, name, v) : -1;
    Py_XDECREF(v);
    return rc;
}

static int add_type(PyObject *m, PyTypeObject **slot, PyType_Spec *spec, PyObject *base)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(m, spec, base);
    if (!*slot)
        return -1;
    return PyModule_AddType(m, *slot);
}

/* The constants the Python layer validates and configures with: one copy. */
static int add_constants(PyObject *m)
{
    static const char *const mp_names[] = FP_MP_NAMES;
    PyObject *modes = PyDict_New();
    if (!modes)
        return -1;
    for (int i = 1; i < FP_MP_COUNT; i++) {
        PyObject *v = PyLong_FromLong(i);
        int rc = v ? PyDict_SetItemString(modes, mp_names[i], v) : -1;
        Py_XDECREF(v);
        if (rc < 0) {
            Py_DECREF(modes);
            return -1;
        }
    }
    if (add_new(m, "MULTIPROCESS_MODES", modes) < 0)
        return -1;
    struct { const char *name; long long value; } ints[] = {
        {"COUNTER", FP_COUNTER}, {"GAUGE", FP_GAUGE}, {"HISTOGRAM", FP_HISTOGRAM}, {"SUMMARY", FP_SUMMARY},
        {"VIEW_TEXT", FP_VIEW_TEXT}, {"VIEW_OPENMETRICS", FP_VIEW_OPENMETRICS},
        {"VIEW_PROTOBUF", FP_VIEW_PROTOBUF},
        {"ESCAPING_UNDERSCORES", FP_ESC_UNDERSCORES}, {"ESCAPING_ALLOWUTF8", FP_ESC_ALLOWUTF8},
        {"ESCAPING_DOTS", FP_ESC_DOTS}, {"ESCAPING_VALUES", FP_ESC_VALUES},
        {"EXEMPLAR_MAX_CHARS", FP_EXEMPLAR_MAX_CHARS}, {"MAX_LABELS", FP_MAX_LABELS},
        {"MAX_BUCKETS", FP_MAX_BUCKETS - 1}, {"MAX_FAMILIES", FP_MAX_FAMILIES}, {"MAX_PROCS", FP_MAX_PROCS},
        {"STORE_MIN_SIZE", (long long)FP_STORE_MIN}, {"STORE_MAX_SIZE", (long long)FP_STORE_MAX},
        {"STORE_DEFAULT_SIZE", (long long)FP_STORE_DEFAULT},
        {"QUANTILE_MAX_COUNT", FP_Q_MAX_QUANTILES}, {"QUANTILE_MAX_AGE_BUCKETS", FP_Q_MAX_AGE_BUCKETS},
        {"NATIVE_SCHEMA_MIN", FP_NH_SCHEMA_MIN}, {"NATIVE_SCHEMA_MAX", FP_NH_SCHEMA_MAX},
        {"NATIVE_MAX_BUCKETS", FP_NH_MAX_BUCKETS},
#ifdef FASTPROM_DEBUG
        {"DEBUG", 1},
#else
        {"DEBUG", 0},
#endif
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (add_new(m, ints[i].name, PyLong_FromLongLong(ints[i].value)) < 0)
            return -1;
    }
    struct { const char *name; double value; } floats[] = {
        {"QUANTILE_ERROR", FP_Q_ERROR}, {"QUANTILE_MIN_PERIOD", FP_Q_MIN_PERIOD}, {"QUANTILE_MAX_AGE", FP_Q_MAX_AGE},
        {"QUANTILE_MIN_VALUE", FP_Q_MIN}, {"QUANTILE_MAX_VALUE", FP_Q_MAX},
        {"NATIVE_DEFAULT_ZERO_THRESHOLD", FP_NH_DEFAULT_ZERO_THRESHOLD},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        if (add_new(m, floats[i].name, PyFloat_FromDouble(floats[i].value)) < 0)
            return -1;
    return 0;
}

static int core_exec(PyObject *m)
{
    fp_nh_init();
    module_state *ms = PyModule_GetState(m);
    if (!fp_q_selftest()) {
        PyErr_SetString(PyExc_ImportError, "fastprom._core: the quantile sketch's size does not match its build");
        return -1;
    }
    if (add_type(m, &ms->Store, &fp_Store_spec, NULL) < 0 || add_type(m, &ms->Metric, &fp_Metric_spec, NULL) < 0)
        return -1;
    PyObject *base = (PyObject *)ms->Metric;
    if (add_type(m, &ms->Counter, &fp_Counter_spec, base) < 0 || add_type(m, &ms->Gauge, &fp_Gauge_spec, base) < 0 ||
        add_type(m, &ms->Histogram, &fp_Histogram_spec, base) < 0 ||
        add_type(m, &ms->Summary, &fp_Summary_spec, base) < 0 ||
        add_type(m, &ms->HttpRecorder, &fp_Recorder_spec, NULL) < 0 || add_type(m, &ms->SendTap, &fp_Tap_spec, NULL) < 0 ||
        add_type(m, &ms->HttpMiddleware, &fp_HttpMiddleware_spec, NULL) < 0 ||
        add_type(m, &ms->HttpCall, &fp_HttpCall_spec, NULL) < 0)
        return -1;
    ms->StoreFullError = PyErr_NewExceptionWithDoc(
        "fastprom._core.StoreFullError", "The metrics store has no room for a new series or family.",
        PyExc_RuntimeError, NULL);
    if (!ms->StoreFullError || PyModule_AddObjectRef(m, "StoreFullError", ms->StoreFullError) < 0)
        return -1;
    ms->StoreFileError = PyErr_NewExceptionWithDoc(
        "fastprom._core.StoreFileError",
        "The shared metrics store file cannot be used: not writable, from another version, truncated or corrupt.",
        PyExc_RuntimeError, NULL);
    if (!ms->StoreFileError || PyModule_AddObjectRef(m, "StoreFileError", ms->StoreFileError) < 0)
        return -1;
    ms->s_type = PyUnicode_InternFromString("type");
    ms->s_status = PyUnicode_InternFromString("status");
    ms->s_headers = PyUnicode_InternFromString("headers");
    ms->s_start = PyUnicode_InternFromString("http.response.start");
    if (!ms->s_type || !ms->s_status || !ms->s_headers || !ms->s_start)
        return -1;
    struct { PyObject **slot; const char *s; } names[] = {
        {&ms->s_http, "http"}, {&ms->s_route, "route"}, {&ms->s_fastapi, "fastapi"},
        {&ms->s_erc, "effective_route_context"}, {&ms->s_original, "original_route"},
        {&ms->s_root_path, "root_path"}, {&ms->s_app, "app"}, {&ms->s_method, "method"},
        {&ms->s_other, "_OTHER"}, {&ms->s_close, "close"}, {&ms->s_throw, "throw"}, {&ms->s_call, "_call"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!(*names[i].slot = PyUnicode_InternFromString(names[i].s)))
            return -1;
    if (!(ms->i_500 = PyLong_FromLong(500)))
        return -1;
    return add_constants(m);
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
    Py_VISIT(ms->HttpMiddleware);
    Py_VISIT(ms->HttpCall);
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
    Py_CLEAR(ms->HttpMiddleware);
    Py_CLEAR(ms->HttpCall);
    Py_CLEAR(ms->s_http);
    Py_CLEAR(ms->s_route);
    Py_CLEAR(ms->s_fastapi);
    Py_CLEAR(ms->s_erc);
    Py_CLEAR(ms->s_original);
    Py_CLEAR(ms->s_root_path);
    Py_CLEAR(ms->s_app);
    Py_CLEAR(ms->s_method);
    Py_CLEAR(ms->s_other);
    Py_CLEAR(ms->s_close);
    Py_CLEAR(ms->s_throw);
    Py_CLEAR(ms->s_call);
    Py_CLEAR(ms->i_500);
    Py_CLEAR(ms->StoreFullError);
    Py_CLEAR(ms->StoreFileError);
    return 0;
}

static void core_free(void *m) { core_clear((PyObject *)m); }

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED}, /* see state.h: critical sections and atomics */
#endif
    {0, NULL}};

struct PyModuleDef fp_core_module = {
    PyModuleDef_HEAD_INIT, "fastprom._core", "C core of fastprom: the metrics store and the renderer.",
    sizeof(module_state), core_methods, core_slots, core_traverse, core_clear, core_free};

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&fp_core_module); }
