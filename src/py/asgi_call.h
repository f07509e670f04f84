/* asgi_call.h: what the middleware's per-request path (asgi_call.c) and
 * its recording (asgi_record.c) share: the middleware, its table of request
 * kinds, and the awaitable of one request. */
#ifndef FASTPROM_ASGI_CALL_H
#define FASTPROM_ASGI_CALL_H

#include "state.h"

typedef struct {
    PyObject_HEAD
    PyObject *app;          /* the wrapped ASGI app; NULL until _configure */
    PyObject *known;        /* dict: id(route key) -> (route key, template) */
    PyObject *status_labels; /* dict: status -> label */
    PyObject *methods;      /* frozenset of the methods recorded as they are */
    PyObject *record;       /* HttpRecorder.record */
    PyObject *exemplar;     /* () -> dict or None, or None */
    PyObject *quiet_until;  /* () -> the time before which exemplar() returns None without looking */
    fp_word quiet;          /* its last answer, a double (atomic: requests in several threads) */
    PyObject *slow;         /* (scope, root0, app0, start, end, started, status, headers, exemplar) */
    PyObject *failed;       /* (exception) -> None: logs a recording failure */
    PyObject *recorder;     /* the HttpRecorder whose record is `record`, or NULL */
    struct kind_slot *kinds; /* KINDS slots, with a recorder */
    TapObject *spare;       /* an emptied tap for the next request, or NULL (builds with a GIL only:
                             * only there does a reference count of 1 mean no one else holds it) */
    int exclude_streaming;
    vectorcallfunc vectorcall;
    module_state *ms;
} MiddlewareObject;

/* The middleware's own table of the request kinds it has seen: (route key,
 * method, status) -> the labels and series, so a request of a known kind
 * makes no dict lookup of its own and builds no key.  Open addressing,
 * never evicted; a kind that finds no slot takes the recorder's path. */
#define KINDS 256
#define KIND_PROBES 8
typedef struct kind_slot {
    PyObject *route;        /* the route key (a strong reference: identity is the key); NULL: empty */
    PyObject *via;          /* the scope's route it was found for (the key itself, or the route of
                             * FastAPI's endpoint context that is the key) */
    PyObject *method;       /* the request method as first seen */
    long status;
    PyObject *labels[3];    /* handler template, method label, status label */
    int highr;              /* observed by the unlabelled histogram */
    fp_http_kind kind;
} kind_slot;

typedef struct {
    PyObject_HEAD
    MiddlewareObject *mw;
    PyObject *scope, *iter, *root0, *app0, *exemplar;
    TapObject *tap;
    double start;
    int done;               /* recorded (or nothing to record) */
} CallObject;

/* Records the request once it is over: through the kinds table, the
 * recorder, the record callable or the Python slow path.  0, or -1 with an
 * exception set. */
int fp_call_record(CallObject *c);
/* Drops every kind in the table (its references); the table stays. */
void fp_clear_kinds(MiddlewareObject *mw);

#endif
