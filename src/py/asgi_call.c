/* asgi_call.c: the middleware's per-request path in C.
 *
 * - HttpMiddleware is the base class of the Python middleware.  Once
 *   configured (the default metrics, no filters, no in-progress gauge),
 *   calling it with an HTTP scope notes the start time, wraps send in a
 *   SendTap (the last request's, when no one kept it), calls the app and
 *   returns an HttpCall; everything else goes
 *   to the Python method self._call.
 * - HttpCall is the awaitable: it drives the app's coroutine (send, throw,
 *   close, and am_send for the awaiting coroutine) and, when the app
 *   returns or raises, records the request once, as the Python
 *   middleware's finally block does.  The route-template map and the
 *   status labels are the Python middleware's dicts, read here; a request
 *   they do not cover (a route not seen yet, a mount, a status not seen
 *   yet) goes to the Python slow path, which fills them. */
#include "asgi_call.h"

#include <structmember.h>

#include "clock.h"

/* Records once, keeping whatever exception is set (the app's): recording
 * never breaks a request; its own failure goes to mw->failed. */
static void finish(CallObject *c)
{
    if (c->done)
        return;
    c->done = 1;
    PyObject *et = NULL, *ev = NULL, *tb = NULL;
    int raised = PyErr_Occurred() != NULL;
    if (raised)
        PyErr_Fetch(&et, &ev, &tb);
    if (fp_call_record(c) < 0) {
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        if (v2 && tb2)
            PyException_SetTraceback(v2, tb2);
        PyObject *r = v2 ? PyObject_CallOneArg(c->mw->failed, v2) : NULL;
        if (!r)
            PyErr_Clear();
        Py_XDECREF(r);
        Py_XDECREF(t2);
        Py_XDECREF(v2);
        Py_XDECREF(tb2);
    }
    if (raised)
        PyErr_Restore(et, ev, tb);
}

/* ---- HttpCall --------------------------------------------------------- */

static PySendResult Call_am_send(PyObject *op, PyObject *arg, PyObject **result)
{
    CallObject *c = (CallObject *)op;
    if (!c->iter) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited HttpCall");
        *result = NULL;
        return PYGEN_ERROR;
    }
    PySendResult r = PyIter_Send(c->iter, arg, result);
    if (r != PYGEN_NEXT) {
        finish(c);
        Py_CLEAR(c->iter);
    }
    return r;
}

/* A PySendResult as a generator method returns it: the value, or NULL
 * with StopIteration(value) or the error set. */
static PyObject *as_method_result(PySendResult r, PyObject *res, int iternext)
{
    if (r == PYGEN_NEXT)
        return res;
    if (r == PYGEN_ERROR)
        return NULL;
    if (res == Py_None) {
        Py_DECREF(res);
        if (!iternext)
            PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, res);
    Py_DECREF(res);
    if (e) {
        PyErr_SetObject(PyExc_StopIteration, e);
        Py_DECREF(e);
    }
    return NULL;
}

static PyObject *Call_iternext(PyObject *op)
{
    PyObject *res;
    PySendResult r = Call_am_send(op, Py_None, &res);
    return as_method_result(r, res, 1);
}

static PyObject *Call_send(PyObject *op, PyObject *arg)
{
    PyObject *res;
    PySendResult r = Call_am_send(op, arg, &res);
    return as_method_result(r, res, 0);
}

static PyObject *Call_throw(PyObject *op, PyObject *args)
{
    CallObject *c = (CallObject *)op;
    PyObject *res = NULL;
    if (c->iter) {
        PyObject *throw = PyObject_GetAttr(c->iter, c->mw->ms->s_throw);
        if (throw) {
            res = PyObject_Call(throw, args, NULL);
            Py_DECREF(throw);
        }
    } else {
        PyObject *typ, *val = NULL, *tb = NULL;
        if (PyArg_UnpackTuple(args, "throw", 1, 3, &typ, &val, &tb)) {
            if (PyExceptionInstance_Check(typ))
                PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
            else if (PyExceptionClass_Check(typ))
                PyErr_SetObject(typ, val ? val : Py_None);
            else
                PyErr_SetString(PyExc_TypeError, "throw() needs an exception class or instance");
        }
    }
    if (!res) {
        finish(c);
        Py_CLEAR(c->iter);
    }
    return res;
}

static PyObject *Call_close(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    CallObject *c = (CallObject *)op;
    PyObject *res = Py_NewRef(Py_None);
    if (c->iter) {
        PyObject *close = PyObject_GetAttr(c->iter, c->mw->ms->s_close);
        if (!close) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError))
                PyErr_Clear();
            else
                Py_CLEAR(res);
        } else {
            PyObject *r = PyObject_CallNoArgs(close);
            Py_DECREF(close);
            if (!r)
                Py_CLEAR(res);
            Py_XDECREF(r);
        }
    }
    finish(c);
    Py_CLEAR(c->iter);
    return res;
}

static PyObject *Call_await(PyObject *op) { return Py_NewRef(op); }

/* A call dropped before the app finished: close the app's coroutine and
 * record, as the Python middleware's finally block would when its own
 * coroutine is closed. */
static void Call_finalize(PyObject *op)
{
    CallObject *c = (CallObject *)op;
    if (c->done || !c->iter || !c->mw)
        return;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *r = Call_close(op, NULL);
    if (!r)
        PyErr_WriteUnraisable(op);
    Py_XDECREF(r);
    PyErr_Restore(et, ev, tb);
}

static int Call_traverse(CallObject *c, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(c));
    Py_VISIT(c->mw);
    Py_VISIT(c->scope);
    Py_VISIT(c->iter);
    Py_VISIT(c->root0);
    Py_VISIT(c->app0);
    Py_VISIT(c->exemplar);
    Py_VISIT(c->tap);
    return 0;
}

static int Call_clear(CallObject *c)
{
    Py_CLEAR(c->mw);
    Py_CLEAR(c->scope);
    Py_CLEAR(c->iter);
    Py_CLEAR(c->root0);
    Py_CLEAR(c->app0);
    Py_CLEAR(c->exemplar);
    Py_CLEAR(c->tap);
    return 0;
}

/* The request's tap, kept by the middleware for its next request when no
 * one else holds it (the app and the server are done with it): one
 * object fewer to make and free per request. */
static void keep_tap(CallObject *c)
{
#ifndef Py_GIL_DISABLED
    MiddlewareObject *mw = c->mw;
    TapObject *tap = c->tap;
    if (!tap || !mw || mw->spare || !mw->app || Py_REFCNT(tap) != 1)
        return;
    c->tap = NULL;
    fp_tap_empty(tap); /* may run code (a send's __del__) that fills mw->spare itself */
    if (mw->spare)
        Py_DECREF(tap);
    else
        mw->spare = tap;
#else
    (void)c;
#endif
}

static void Call_dealloc(CallObject *c)
{
    PyTypeObject *tp = Py_TYPE(c);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)c) < 0)
        return; /* resurrected */
    PyObject_GC_UnTrack(c);
    keep_tap(c);
    Call_clear(c);
    tp->tp_free(c);
    Py_DECREF(tp);
}

static PyObject *Call_new_refused(PyTypeObject *Py_UNUSED(tp), PyObject *Py_UNUSED(a), PyObject *Py_UNUSED(k))
{
    PyErr_SetString(PyExc_TypeError, "HttpCall objects are made by calling an HttpMiddleware");
    return NULL;
}

static PyMethodDef Call_methods[] = {
    {"send", Call_send, METH_O, "send(value)\n\nSends a value into the app's coroutine."},
    {"throw", Call_throw, METH_VARARGS, "throw(exception)\n\nRaises an exception in the app's coroutine."},
    {"close", Call_close, METH_NOARGS, "close()\n\nCloses the app's coroutine; the request is recorded."},
    {NULL}};

static PyType_Slot Call_slots[] = {
    {Py_tp_new, Call_new_refused},
    {Py_tp_dealloc, Call_dealloc},
    {Py_tp_finalize, Call_finalize},
    {Py_tp_traverse, Call_traverse},
    {Py_tp_clear, Call_clear},
    {Py_tp_iter, Call_await},
    {Py_tp_iternext, Call_iternext},
    {Py_tp_methods, Call_methods},
    {Py_am_await, Call_await},
    {Py_am_send, Call_am_send},
    {Py_tp_doc, "The awaitable of one request through an HttpMiddleware."},
    {0, NULL}};

PyType_Spec fp_HttpCall_spec = {"fastprom._core.HttpCall", sizeof(CallObject), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE, Call_slots};

/* ---- HttpMiddleware --------------------------------------------------- */

static PyObject *Mw_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MiddlewareObject *mw = (MiddlewareObject *)op;
    module_state *ms = mw->ms;
    if (PyVectorcall_NARGS(nargsf) != 3 || kwnames) {
        PyErr_SetString(PyExc_TypeError, "an ASGI app takes (scope, receive, send)");
        return NULL;
    }
    PyObject *scope = args[0];
    PyObject *type = PyDict_Check(scope) ? PyDict_GetItemWithError(scope, ms->s_type) : NULL;
    if (!type && PyErr_Occurred())
        return NULL;
    int http = type == ms->s_http;
    if (!http && type && PyUnicode_Check(type) && (http = PyUnicode_Compare(type, ms->s_http) == 0) == 0 &&
        PyErr_Occurred())
        return NULL;
    if (!http || !mw->app) {
        PyObject *margs[4] = {op, args[0], args[1], args[2]};
        return PyObject_VectorcallMethod(ms->s_call, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    double start = fp_monotonic();
    PyObject *root0 = PyDict_GetItemWithError(scope, ms->s_root_path);
    if (!root0 && PyErr_Occurred())
        return NULL;
    PyObject *app0 = PyDict_GetItemWithError(scope, ms->s_app);
    if (!app0 && PyErr_Occurred())
        return NULL;
    CallObject *c = PyObject_GC_New(CallObject, ms->HttpCall);
    if (!c)
        return NULL;
    c->mw = (MiddlewareObject *)Py_NewRef(op);
    c->scope = Py_NewRef(scope);
    c->iter = NULL;
    int rooted = root0 && root0 != Py_None &&
                 (PyUnicode_CheckExact(root0) ? PyUnicode_GET_LENGTH(root0) > 0 : PyObject_IsTrue(root0) == 1);
    c->root0 = Py_NewRef(rooted ? root0 : Py_None);
    c->app0 = Py_NewRef(app0 ? app0 : Py_None);
    c->exemplar = NULL;
    c->tap = NULL;
    c->start = start;
    c->done = 1; /* nothing to record until the app is running */
    PyObject_GC_Track(c);
    if (PyErr_Occurred()) /* PyObject_IsTrue of the root path */
        goto fail;
    if (mw->exemplar == Py_None || start < fp_loadd(&mw->quiet)) {
        c->exemplar = Py_NewRef(Py_None);
    } else if (!(c->exemplar = PyObject_CallNoArgs(mw->exemplar))) {
        goto fail;
    } else if (c->exemplar == Py_None && mw->quiet_until) { /* not looking again before this */
        PyObject *q = PyObject_CallNoArgs(mw->quiet_until);
        double until = q ? PyFloat_AsDouble(q) : -1.0;
        Py_XDECREF(q);
        if (until == -1.0 && PyErr_Occurred())
            goto fail;
        fp_stored(&mw->quiet, until);
    }
    if (mw->spare && Py_REFCNT(mw->spare) != 1) /* someone found it (gc.get_objects()): not ours to reuse */
        Py_CLEAR(mw->spare);
    if (mw->spare) {
        c->tap = mw->spare;
        mw->spare = NULL;
        c->tap->send = Py_NewRef(args[2]);
    } else if (!(c->tap = fp_tap_new(ms, args[2]))) {
        goto fail;
    }
    c->done = 0;
    PyObject *app_args[3] = {scope, args[1], (PyObject *)c->tap};
    PyObject *aw = PyObject_Vectorcall(mw->app, app_args, 3, NULL);
    if (aw) {
        if (PyCoro_CheckExact(aw)) {
            c->iter = aw;
        } else {
            unaryfunc am = Py_TYPE(aw)->tp_as_async ? Py_TYPE(aw)->tp_as_async->am_await : NULL;
            if (am) {
                c->iter = am(aw);
            } else {
                PyErr_Format(PyExc_TypeError, "the ASGI app returned %.100s, which is not awaitable",
                             Py_TYPE(aw)->tp_name);
            }
            Py_DECREF(aw);
        }
    }
    if (!c->iter) {
        finish(c); /* the app failed at once: recorded as the Python middleware does */
        goto fail;
    }
    return (PyObject *)c;
fail:
    Py_DECREF(c);
    return NULL;
}

/* An unconfigured middleware sends every request to self._call; the
 * Python subclass configures the common case with _configure(). */
static PyObject *Mw_new(PyTypeObject *tp, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    module_state *ms = fp_state_of_type(tp);
    if (!ms)
        return NULL;
    MiddlewareObject *self = (MiddlewareObject *)tp->tp_alloc(tp, 0);
    if (!self)
        return NULL;
    self->ms = ms;
    self->vectorcall = Mw_vectorcall;
    return (PyObject *)self;
}

static PyObject *Mw_configure(MiddlewareObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"app", "known", "status_labels", "methods", "record", "exemplar", "slow", "failed",
                             "exclude_streaming", NULL};
    PyObject *app, *known, *labels, *methods, *rec, *exemplar, *slow, *failed;
    int exclude;
    /* Once: requests in flight (other threads, without the GIL) read the
     * configuration without a lock. */
    if (self->app) {
        PyErr_SetString(PyExc_RuntimeError, "_configure: this middleware is configured already");
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO!O!O!OOOOp:_configure", kwlist, &app, &PyDict_Type, &known,
                                     &PyDict_Type, &labels, &PyFrozenSet_Type, &methods, &rec, &exemplar, &slow,
                                     &failed, &exclude))
        return NULL;
    PyObject *callables[] = {app, rec, slow, failed};
    const char *names[] = {"app", "record", "slow", "failed"};
    for (size_t i = 0; i < sizeof callables / sizeof callables[0]; i++)
        if (!PyCallable_Check(callables[i])) {
            PyErr_Format(PyExc_TypeError, "_configure: %s must be callable, not %.100s", names[i],
                         Py_TYPE(callables[i])->tp_name);
            return NULL;
        }
    if (exemplar != Py_None && !PyCallable_Check(exemplar)) {
        PyErr_SetString(PyExc_TypeError, "_configure: exemplar must be callable or None");
        return NULL;
    }
    PyObject *quiet = NULL;
    if (exemplar != Py_None) {
        quiet = PyObject_GetAttrString(exemplar, "quiet_until");
        if (!quiet) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return NULL;
            PyErr_Clear();
        } else if (!PyCallable_Check(quiet)) {
            Py_DECREF(quiet);
            PyErr_SetString(PyExc_TypeError, "_configure: exemplar.quiet_until must be callable");
            return NULL;
        }
    }
    PyObject *recorder = NULL;
    kind_slot *kinds = NULL;
    if (fp_recorder_of(self->ms, rec, &recorder) && !(kinds = PyMem_Calloc(KINDS, sizeof *kinds))) {
        Py_XDECREF(quiet);
        PyErr_NoMemory();
        return NULL;
    }
    self->kinds = kinds;
    Py_XSETREF(self->recorder, Py_XNewRef(recorder));
    Py_XSETREF(self->quiet_until, quiet);
    fp_stored(&self->quiet, 0.0);
    Py_XSETREF(self->known, Py_NewRef(known));
    Py_XSETREF(self->status_labels, Py_NewRef(labels));
    Py_XSETREF(self->methods, Py_NewRef(methods));
    Py_XSETREF(self->record, Py_NewRef(rec));
    Py_XSETREF(self->exemplar, Py_NewRef(exemplar));
    Py_XSETREF(self->slow, Py_NewRef(slow));
    Py_XSETREF(self->failed, Py_NewRef(failed));
    self->exclude_streaming = exclude;
    /* Last: a middleware with an app is a configured one. */
    Py_XSETREF(self->app, Py_NewRef(app));
    Py_RETURN_NONE;
}

static PyMethodDef Mw_methods[] = {
    {"_configure", (PyCFunction)(void (*)(void))Mw_configure, METH_VARARGS | METH_KEYWORDS,
     "_configure(app, known, status_labels, methods, record, exemplar, slow, failed, exclude_streaming)\n\n"
     "Handles HTTP requests in C from now on."},
    {NULL}};

static int Mw_traverse(MiddlewareObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->app);
    Py_VISIT(self->known);
    Py_VISIT(self->status_labels);
    Py_VISIT(self->methods);
    Py_VISIT(self->record);
    Py_VISIT(self->exemplar);
    Py_VISIT(self->quiet_until);
    Py_VISIT(self->slow);
    Py_VISIT(self->failed);
    Py_VISIT(self->recorder);
    Py_VISIT(self->spare);
    for (size_t i = 0; self->kinds && i < KINDS; i++) {
        Py_VISIT(self->kinds[i].route);
        Py_VISIT(self->kinds[i].via);
        Py_VISIT(self->kinds[i].method);
        for (int j = 0; j < 3; j++)
            Py_VISIT(self->kinds[i].labels[j]);
    }
    return 0;
}

static int Mw_clear(MiddlewareObject *self)
{
    Py_CLEAR(self->app);
    Py_CLEAR(self->known);
    Py_CLEAR(self->status_labels);
    Py_CLEAR(self->methods);
    Py_CLEAR(self->record);
    Py_CLEAR(self->exemplar);
    Py_CLEAR(self->quiet_until);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->recorder);
    Py_CLEAR(self->spare);
    fp_clear_kinds(self);
    return 0;
}

static void Mw_dealloc(MiddlewareObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Mw_clear(self);
    PyMem_Free(self->kinds);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMemberDef Mw_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(MiddlewareObject, vectorcall), READONLY, NULL},
    {NULL}};

static PyType_Slot Mw_slots[] = {
    {Py_tp_new, Mw_new},
    {Py_tp_dealloc, Mw_dealloc},
    {Py_tp_traverse, Mw_traverse},
    {Py_tp_clear, Mw_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, Mw_members},
    {Py_tp_methods, Mw_methods},
    {Py_tp_doc, "HttpMiddleware()\n\nThe base of the ASGI middleware: calls go to self._call until _configure() "
                "sets up the common configuration, whose HTTP requests it then handles in C."},
    {0, NULL}};

PyType_Spec fp_HttpMiddleware_spec = {"fastprom._core.HttpMiddleware", sizeof(MiddlewareObject), 0,
                                      Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
                                          Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_BASETYPE,
                                      Mw_slots};
