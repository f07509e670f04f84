/* asgi_record.c: how the C middleware records a request that is over.
 *
 * A request of a top-level route whose kind (route, method, status) is in
 * the middleware's table goes straight to the recorder's series; one whose
 * route template and status label the Python middleware's caches hold goes
 * through the recorder (and its kind into the table) or the record
 * callable; anything else goes to the Python slow path, which fills those
 * caches. */
#include "asgi_call.h"

#include "clock.h"

/* The request's method (borrowed from the scope), or NULL with an
 * exception set. */
static PyObject *request_method(CallObject *c)
{
    PyObject *method = PyDict_GetItemWithError(c->scope, c->mw->ms->s_method);
    if (!method && !PyErr_Occurred())
        PyErr_SetString(PyExc_KeyError, "method");
    return method;
}

/* What the kinds table is looked up by, without an attribute lookup:
 * FastAPI's endpoint context when the scope has one, else the route
 * (*route: the scope's route).  Borrowed, or NULL (no route, or an error:
 * -1 in *err).  A kind is only kept under the key route_key gives for the
 * same route, so a hit is that key. */
static PyObject *quick_key(MiddlewareObject *mw, PyObject *scope, PyObject **route, int *err)
{
    module_state *ms = mw->ms;
    PyObject *r = PyDict_GetItemWithError(scope, ms->s_route);
    PyObject *key = r;
    if (r && r != Py_None) {
        PyObject *fa = PyDict_GetItemWithError(scope, ms->s_fastapi);
        PyObject *ctx = fa && PyDict_Check(fa) ? PyDict_GetItemWithError(fa, ms->s_erc) : NULL;
        if (ctx && ctx != Py_None)
            key = ctx;
    }
    if (PyErr_Occurred()) {
        *err = -1;
        return NULL;
    }
    *route = r;
    return r && r != Py_None ? key : NULL;
}

/* The key of the route the router left in the scope: the route, or
 * FastAPI's endpoint context when it belongs to that route.  Borrowed, or
 * NULL (none, or an error: -1 in *err). */
static PyObject *route_key(MiddlewareObject *mw, PyObject *scope, int *err)
{
    PyObject *route = NULL;
    PyObject *key = quick_key(mw, scope, &route, err);
    if (!key || key == route)
        return key;
    PyObject *orig = PyObject_GetAttr(key, mw->ms->s_original);
    if (!orig) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            *err = -1;
            return NULL;
        }
        PyErr_Clear();
        return route;
    }
    Py_DECREF(orig);
    return orig == route ? key : route;
}

/* The template of a route key if the middleware has seen it at the top
 * level: a strong reference, or NULL (a miss, or an error: -1 in *err). */
static PyObject *known_template(MiddlewareObject *mw, PyObject *key, int *err)
{
    PyObject *id = PyLong_FromVoidPtr(key);
    if (!id) {
        *err = -1;
        return NULL;
    }
    /* A strong reference: the slow path may replace the entry meanwhile
     * (in another thread, without the GIL). */
    PyObject *hit = NULL;
    int got = PyDict_GetItemRef(mw->known, id, &hit);
    Py_DECREF(id);
    if (got < 0) {
        *err = -1;
        return NULL;
    }
    PyObject *tmpl = NULL;
    if (hit && PyTuple_Check(hit) && PyTuple_GET_SIZE(hit) == 2 && PyTuple_GET_ITEM(hit, 0) == key)
        tmpl = Py_NewRef(PyTuple_GET_ITEM(hit, 1));
    Py_XDECREF(hit);
    return tmpl;
}

/* The label of a status, a strong reference, or NULL (with an exception
 * set when the lookup failed). */
static PyObject *status_label(MiddlewareObject *mw, PyObject *status)
{
    PyObject *label = NULL;
    (void)PyDict_GetItemRef(mw->status_labels, status, &label);
    return label;
}

/* Whether the request's root path is what it was when it came in (an
 * app that mounts sub-apps changes it: then the route is not a top-level
 * one).  1, 0 or -1. */
static int same_root(CallObject *c)
{
    PyObject *root = PyDict_GetItemWithError(c->scope, c->mw->ms->s_root_path);
    if (!root && PyErr_Occurred())
        return -1;
    int now_empty = !root || root == Py_None || (PyUnicode_Check(root) && PyUnicode_GET_LENGTH(root) == 0);
    int then_empty = c->root0 == Py_None || (PyUnicode_Check(c->root0) && PyUnicode_GET_LENGTH(c->root0) == 0);
    if (now_empty || then_empty)
        return now_empty && then_empty;
    return PyObject_RichCompareBool(root, c->root0, Py_EQ);
}

/* Two request methods the same: the same object, or two str of the same
 * characters (servers make one per request). */
static int same_method(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (!PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b))
        return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b) &&
           memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * PyUnicode_KIND(a)) == 0;
}

/* The slot of a kind in the table: the one holding it (*hit set), or the
 * empty one it would go in, or NULL when its probes are all taken. */
static kind_slot *find_kind(MiddlewareObject *mw, PyObject *key, PyObject *via, PyObject *method, long status,
                            int *hit)
{
    size_t h = ((size_t)key >> 4) * 0x9E3779B97F4A7C15u;
    h ^= (size_t)status * 31u;
    if (PyUnicode_CheckExact(method) && PyUnicode_GET_LENGTH(method) > 0)
        h ^= (size_t)PyUnicode_READ_CHAR(method, 0) * 7u + (size_t)PyUnicode_GET_LENGTH(method);
    h ^= h >> 29;
    *hit = 0;
    for (size_t i = 0; i < KIND_PROBES; i++) {
        kind_slot *k = &mw->kinds[(h + i) & (KINDS - 1)];
        if (!k->route)
            return k;
        if (k->route == key && k->via == via && k->status == status && same_method(k->method, method)) {
            *hit = 1;
            return k;
        }
    }
    return NULL;
}

void fp_clear_kinds(MiddlewareObject *mw)
{
    if (!mw->kinds)
        return;
    for (size_t i = 0; i < KINDS; i++) {
        kind_slot *k = &mw->kinds[i];
        Py_CLEAR(k->route);
        Py_CLEAR(k->via);
        Py_CLEAR(k->method);
        for (int j = 0; j < 3; j++)
            Py_CLEAR(k->labels[j]);
    }
}

/* Records a request of a top-level route through the recorder, from the
 * kinds table when the kind is in it.  1 when recorded, 0 when the caches
 * do not cover it (the slow path's), or -1.
 *
 * The table is only read and written inside the middleware's critical
 * section, and nothing in there can release it: a slot is copied out
 * (strong references to its labels), refreshed or resolved outside (which
 * takes the recorder's lock, and may run Python code), and written back
 * after probing again, into the slot that holds the kind by then or into
 * an empty one. */
static int record_kind(CallObject *c, PyObject *cand, PyObject *via, PyObject *status, double duration)
{
    MiddlewareObject *mw = c->mw;
    module_state *ms = mw->ms;
    PyObject *method = request_method(c);
    if (!method)
        return -1;
    long sv = PyLong_AsLong(status);
    if (sv == -1 && PyErr_Occurred()) { /* past a C long: the slow path's */
        PyErr_Clear();
        return 0;
    }
    fp_http_kind kind;
    int highr = 0, rc = -1, hit = 0, current = 0, keep = 0;
    PyObject *labels[3] = {NULL, NULL, NULL};
    Py_BEGIN_CRITICAL_SECTION(mw);
    kind_slot *k = find_kind(mw, cand, via, method, sv, &hit);
    if (hit) {
        /* The common case ends here: a known kind whose series are all
         * still there, recorded with what the slot holds. */
        current = fp_recorder_current(mw->recorder, &k->kind);
        kind = k->kind;
        highr = k->highr;
        if (!current)
            for (int j = 0; j < 3; j++)
                labels[j] = Py_NewRef(k->labels[j]);
    }
    Py_END_CRITICAL_SECTION();
    if (current)
        goto observe;
    Py_INCREF(method); /* the scope is the app's: Python code run below may change it */
    if (hit) {
        keep = fp_recorder_refresh(mw->recorder, labels, &kind);
        if (keep < 0)
            goto done;
    } else {
        int err = 0;
        PyObject *key = route_key(mw, c->scope, &err);
        if (!key) {
            rc = err ? -1 : 0;
            goto done;
        }
        PyObject *tmpl = known_template(mw, key, &err);
        PyObject *label = tmpl ? status_label(mw, status) : NULL;
        int known = label ? PySet_Contains(mw->methods, method) : 0;
        if (err || (!label && PyErr_Occurred()) || known < 0) {
            Py_XDECREF(tmpl);
            Py_XDECREF(label);
            goto done;
        }
        if (!label) {
            Py_XDECREF(tmpl);
            rc = 0;
            goto done;
        }
        labels[0] = tmpl;
        labels[1] = Py_NewRef(known ? method : ms->s_other);
        labels[2] = label;
        if (fp_recorder_kind(mw->recorder, labels, &kind) < 0)
            goto done;
        highr = fp_recorder_counts_highr(mw->recorder, label);
        /* Not kept: a kind under an overflow series (the kinds past a
         * limit are the unbounded ones), and a method outside the known
         * ones (clients choose those: they would fill the table). */
        keep = known && !kind.overflowed && key == cand;
    }
    if (keep) {
        Py_BEGIN_CRITICAL_SECTION(mw);
        int again = 0;
        kind_slot *w = find_kind(mw, cand, via, method, sv, &again);
        if (w && !again) {
            w->route = Py_NewRef(cand);
            w->via = Py_NewRef(via);
            w->method = Py_NewRef(method);
            w->status = sv;
            for (int j = 0; j < 3; j++)
                w->labels[j] = Py_NewRef(labels[j]);
        }
        if (w) {
            w->highr = highr;
            w->kind = kind;
        }
        Py_END_CRITICAL_SECTION();
    }
    rc = 1;
done:
    for (int j = 0; j < 3; j++)
        Py_XDECREF(labels[j]);
    Py_DECREF(method);
    if (rc != 1)
        return rc;
observe:;
    PyObject *headers = PyDict_GetItemWithError(c->scope, ms->s_headers);
    if (!headers && PyErr_Occurred())
        return -1;
    PyObject *resp = c->tap->headers;
    double d[3] = {duration, headers && headers != Py_None ? fp_header_length(headers) : 0,
                   resp != Py_None ? fp_header_length(resp) : 0};
    fp_recorder_observe(mw->recorder, &kind, highr, d, c->exemplar);
    return 1;
}

/* The Python slow path, which fills the caches: 0 or -1. */
static int record_slow(CallObject *c, PyObject *status, double end)
{
    PyObject *root0 = c->root0 == Py_None ? PyUnicode_FromStringAndSize(NULL, 0) : Py_NewRef(c->root0);
    if (!root0)
        return -1;
    PyObject *r = PyObject_CallFunction(c->mw->slow, "OOOdddOOO", c->scope, root0, c->app0, c->start, end,
                                        c->tap->started, status, c->tap->headers, c->exemplar);
    Py_DECREF(root0);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Records through the record callable (a recorder the kinds table does not
 * cover, or any other): 0 or -1. */
static int record_known(CallObject *c, PyObject *tmpl, PyObject *label, double duration)
{
    MiddlewareObject *mw = c->mw;
    module_state *ms = mw->ms;
    PyObject *method = request_method(c);
    if (!method)
        return -1;
    int known = PySet_Contains(mw->methods, method);
    if (known < 0)
        return -1;
    PyObject *headers = PyDict_GetItemWithError(c->scope, ms->s_headers);
    if (!headers && PyErr_Occurred())
        return -1;
    PyObject *d = PyFloat_FromDouble(duration);
    if (!d)
        return -1;
    PyObject *args[7] = {tmpl, known ? method : ms->s_other, label, d, headers ? headers : Py_None,
                         c->tap->headers, c->exemplar};
    PyObject *r = PyObject_Vectorcall(mw->record, args, 7, NULL);
    Py_DECREF(d);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* The request recorded, as asgi_call.h says. */
int fp_call_record(CallObject *c)
{
    MiddlewareObject *mw = c->mw;
    module_state *ms = mw->ms;
    double end = fp_monotonic();
    PyObject *status = c->tap->status == Py_None ? ms->i_500 : c->tap->status;
    int err = 0;
    PyObject *via = NULL;
    PyObject *cand = quick_key(mw, c->scope, &via, &err);
    if (err)
        return -1;
    if (cand) {
        int same = same_root(c);
        if (same < 0)
            return -1;
        if (!same)
            cand = NULL;
    }
    double duration = mw->exclude_streaming ? (c->tap->started ? c->tap->started - c->start : 0.0) : end - c->start;
    if (cand && mw->recorder && PyLong_CheckExact(status)) {
        int r = record_kind(c, cand, via, status, duration);
        if (r)
            return r < 0 ? -1 : 0;
        return record_slow(c, status, end);
    }
    PyObject *key = cand ? route_key(mw, c->scope, &err) : NULL;
    if (err)
        return -1;
    PyObject *tmpl = key ? known_template(mw, key, &err) : NULL;
    if (err)
        return -1;
    PyObject *label = tmpl ? status_label(mw, status) : NULL;
    if (!label) {
        Py_XDECREF(tmpl);
        if (PyErr_Occurred())
            return -1;
        return record_slow(c, status, end);
    }
    int rc = record_known(c, tmpl, label, duration);
    Py_DECREF(tmpl);
    Py_DECREF(label);
    return rc;
}

