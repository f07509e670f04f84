"""The middleware's per-request path in C (HttpMiddleware and the HttpCall
awaitable): it drives the app's coroutine through send, throw, close and
cancellation, and records each request once, as the Python path does."""
import asyncio
import gc

import pytest
from fastapi import FastAPI

import fastprom
from fastprom._core import HttpCall, HttpMiddleware
from fastprom.asgi import PrometheusInstrumentatorMiddleware


def build():
    app = FastAPI()
    gate = {}

    @app.get("/ok")
    async def ok():
        return {"ok": True}

    @app.get("/wait")
    async def wait():
        await gate["event"].wait()
        return {"waited": True}

    @app.get("/boom")
    async def boom():
        raise RuntimeError("boom")

    registry = fastprom.CollectorRegistry()
    fastprom.Instrumentator(registry=registry).instrument(app)
    return app, registry, gate


def scope(path):
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [],
            "client": ("127.0.0.1", 1), "server": ("x", 80)}


async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}


def total(registry, handler, status):
    return registry.get_sample_value("http_requests_total", {"handler": handler, "method": "GET", "status": status})


def middleware_of(app):
    app.middleware_stack = app.build_middleware_stack()
    mw = app.middleware_stack
    while not isinstance(mw, PrometheusInstrumentatorMiddleware):
        mw = mw.app
    return mw


def test_the_common_configuration_is_handled_in_c():
    app, registry, _ = build()
    mw = middleware_of(app)
    assert isinstance(mw, HttpMiddleware)
    sent = []

    async def send(m):
        sent.append(m)

    async def main():
        for _ in range(3):  # the first goes through the slow path, which fills the caches
            call = mw(scope("/ok"), receive, send)
            assert type(call) is HttpCall
            await call
    asyncio.run(main())
    assert total(registry, "/ok", "2xx") == 3
    assert [m["type"] for m in sent].count("http.response.start") == 3


def test_exceptions_cancellation_and_close_are_recorded_once():
    app, registry, gate = build()
    mw = middleware_of(app)

    async def send(m):
        pass

    async def main():
        gate["event"] = asyncio.Event()
        for _ in range(2):
            with pytest.raises(RuntimeError, match="boom"):
                await mw(scope("/boom"), receive, send)
        # Cancelled while the app is suspended: the app sees the cancellation.
        for _ in range(2):
            task = asyncio.ensure_future(mw(scope("/wait"), receive, send))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        # Driven by hand: send, then close while suspended.
        call = mw(scope("/wait"), receive, send).__await__()
        assert call.send(None) is not None  # suspended on the event's future
        call.close()
        call.close()  # a second close does nothing
        # throw() reaches the app's coroutine.
        call = mw(scope("/wait"), receive, send).__await__()
        call.send(None)
        with pytest.raises(KeyError, match="thrown"):
            call.throw(KeyError("thrown"))
        with pytest.raises(RuntimeError, match="already awaited"):
            call.send(None)
        # Resumed normally.
        task = asyncio.ensure_future(mw(scope("/wait"), receive, send))
        await asyncio.sleep(0)
        gate["event"].set()
        await task
    asyncio.run(main())
    assert total(registry, "/boom", "5xx") == 2
    assert total(registry, "/wait", "5xx") == 4  # two cancelled, one closed, one thrown into: no response
    assert total(registry, "/wait", "2xx") == 1


def test_other_scope_types_and_a_failing_app():
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["type"])

    registry = fastprom.CollectorRegistry()
    mw = PrometheusInstrumentatorMiddleware(app, registry=registry)

    async def main():
        await mw({"type": "lifespan"}, receive, None)
        await mw(scope("/x"), receive, None)
    asyncio.run(main())
    assert calls == ["lifespan", "http"]
    assert registry.get_sample_value("http_requests_total",
                                     {"handler": "none", "method": "GET", "status": "5xx"}) == 1

    def not_async(scope, receive, send):
        raise ValueError("at once")
    mw = PrometheusInstrumentatorMiddleware(not_async, registry=fastprom.CollectorRegistry())
    with pytest.raises(ValueError, match="at once"):
        mw(scope("/x"), receive, None)
    mw = PrometheusInstrumentatorMiddleware(lambda s, r, se: 42, registry=fastprom.CollectorRegistry())
    with pytest.raises(TypeError, match="not awaitable"):
        mw(scope("/x"), receive, None)
    with pytest.raises(TypeError, match="HttpCall objects are made"):
        HttpCall()


def test_no_objects_are_left_behind():
    app, registry, _ = build()
    mw = middleware_of(app)

    async def send(m):
        pass

    async def run(n):
        for _ in range(n):
            await mw(scope("/ok"), receive, send)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run(200))
        gc.collect()
        before = len(gc.get_objects())
        loop.run_until_complete(run(2000))
        gc.collect()
        assert len(gc.get_objects()) - before < 100
    finally:
        loop.close()
    assert total(registry, "/ok", "2xx") == 2200


def test_the_exemplar_probe_is_skipped_while_it_says_so():
    import time
    calls, records, slow = [], [], []
    quiet = {"until": time.perf_counter() + 3600}

    def exemplar():
        calls.append(1)
        return None
    exemplar.quiet_until = lambda: quiet["until"]

    async def app(scope, receive, send):
        pass

    class M(HttpMiddleware):
        async def _call(self, scope, receive, send):
            raise AssertionError("not the Python path")

    m = M()
    m._configure(app, {}, {}, frozenset({"GET"}), lambda *a: records.append(a), exemplar,
                 lambda *a: slow.append(a), lambda e: None, False)

    async def main(n):
        for _ in range(n):
            await m(scope("/x"), receive, None)
    asyncio.run(main(3))
    assert len(calls) == 1 and len(slow) == 3  # asked once, then quiet
    with pytest.raises(RuntimeError, match="configured already"):
        m._configure(app, {}, {}, frozenset({"GET"}), lambda *a: records.append(a), exemplar,
                     lambda *a: slow.append(a), lambda e: None, False)
    quiet["until"] = 0.0  # a provider is set: asked on every request
    m = M()
    m._configure(app, {}, {}, frozenset({"GET"}), lambda *a: records.append(a), exemplar,
                 lambda *a: slow.append(a), lambda e: None, False)
    asyncio.run(main(3))
    assert len(calls) == 4
    asyncio.run(main(2))
    assert len(calls) == 6 and len(slow) == 8 and not records


def test_many_request_kinds_are_each_counted_exactly():
    """More kinds (route x method x status) than the middleware's own table
    holds, each method a new str per request as servers make them: every
    request lands on its own series, also after remove() and clear()."""
    from fastapi import Response
    app = FastAPI()
    routes = 120
    for i in range(routes):
        async def handler(code: int = 200, i=i):
            return Response(b"x" * (i % 7), status_code=code)
        app.add_api_route(f"/r{i}/{{item}}", handler, methods=["GET", "POST", "PURGE"])
    registry = fastprom.CollectorRegistry()
    fastprom.Instrumentator(registry=registry, should_group_status_codes=False).instrument(app)
    mw = middleware_of(app)
    expected, r0 = {}, [0]

    async def send(m):
        pass

    def request(i, method, code):
        r0[0] += i == 0
        s = scope(f"/r{i}/{i * 3}")
        s["method"] = "".join(list(method))  # a new str each time
        s["query_string"] = f"code={code}".encode()
        s["headers"] = [(b"content-length", b"5")]
        label = method if method in ("GET", "POST") else "_OTHER"
        key = (f"/r{i}/{{item}}", label, str(code))
        expected[key] = expected.get(key, 0) + 1
        return mw(s, receive, send)

    async def main(rounds):
        for r in range(rounds):
            for i in range(routes):
                for method in ("GET", "POST", "PURGE"):
                    await request(i, method, (200, 201, 404)[(i + r) % 3])

    def check():
        for (handler, method, status), n in expected.items():
            got = registry.get_sample_value("http_requests_total",
                                            {"handler": handler, "method": method, "status": status})
            assert got == n, (handler, method, status, got, n)
        # The summaries are not cleared with the counter: every request.
        assert registry.get_sample_value("http_request_size_bytes_sum", {"handler": "/r0/{item}"}) == 5 * r0[0]

    asyncio.run(main(4))
    check()
    total_metric = registry._names_to_collectors["http_requests_total"]
    total_metric.remove("POST", "201", "/r1/{item}")
    expected.pop(("/r1/{item}", "POST", "201"), None)
    asyncio.run(main(3))
    check()
    total_metric.clear()
    expected.clear()
    asyncio.run(main(1))
    check()


def test_a_message_type_of_a_str_subclass_is_still_seen():
    """An app (or a middleware under ours) may send a str subclass as the
    message type: the status it starts the response with is the one counted."""
    from fastprom.asgi import PrometheusInstrumentatorMiddleware

    class Kind(str):
        pass

    class Route:
        path = "/made"

    async def app(scope, receive, send):
        scope["route"] = Route()
        await send({"type": Kind("http.response.start"), "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    reg = fastprom.CollectorRegistry()
    mw = PrometheusInstrumentatorMiddleware(app, registry=reg, should_group_status_codes=False)
    s = {"type": "http", "method": "GET", "path": "/made", "root_path": "", "headers": [], "query_string": b""}
    for _ in range(3):
        asyncio.run(mw(dict(s), receive, send))
    assert reg.get_sample_value("http_requests_total", {"handler": "/made", "method": "GET", "status": "201"}) == 3


def test_a_send_the_app_keeps_is_never_handed_to_another_request():
    """The middleware reuses the send wrapper of a finished request only
    when nothing else holds it: a wrapper an app keeps past its request
    still answers for that request, and every request is counted with its
    own status."""
    from fastprom.asgi import PrometheusInstrumentatorMiddleware

    class Route:
        path = "/kept"

    kept = []

    async def app(scope, receive, send):
        scope["route"] = Route()
        status = int(scope["path"].rsplit("/", 1)[1])
        if status % 2:  # every other request keeps its send
            kept.append((status, send))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        pass

    reg = fastprom.CollectorRegistry()
    mw = PrometheusInstrumentatorMiddleware(app, registry=reg, should_group_status_codes=False)

    async def main():
        for status in range(200, 240):
            path = f"/kept/{status}"
            await mw({"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [],
                      "query_string": b""}, receive, send)
    asyncio.run(main())
    gc.collect()
    assert len({id(s) for _, s in kept}) == len(kept) == 20
    for status, s in kept:
        assert s.status == status  # not a later request's
    for status in range(200, 240):
        assert reg.get_sample_value("http_requests_total",
                                    {"handler": "/kept", "method": "GET", "status": str(status)}) == 1


def _cycle_app_and_middleware():
    from fastprom.asgi import PrometheusInstrumentatorMiddleware

    class Route:
        path = "/r"

    async def app(scope, receive, send):
        scope["route"] = Route()
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    reg = fastprom.CollectorRegistry()
    return PrometheusInstrumentatorMiddleware(app, registry=reg, should_group_status_codes=False), reg


class _CyclicSend:
    """A server's send that holds its request's awaitable: a reference cycle
    only the garbage collector frees."""

    def __call__(self, message):
        return _noop()


async def _noop():
    pass


def _drive(call):
    try:
        while True:
            call.send(None)
    except StopIteration:
        pass


def _scope(path="/r"):
    return {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [], "query_string": b""}


@pytest.mark.parametrize("order", ["call first", "tap first"])
def test_requests_freed_by_the_garbage_collector_leave_a_usable_middleware(order):
    """A send that holds its request's awaitable makes a cycle (send ->
    call -> send wrapper -> send); the collector may free the call and
    clear the wrapper in either order, and the middleware must go on."""
    mw, reg = _cycle_app_and_middleware()
    gc.collect()
    gc.disable()
    try:
        if order == "tap first":
            _drive(mw(_scope(), receive, _CyclicSend()))  # its wrapper becomes the one reused next
        s = _CyclicSend()
        call = mw(_scope(), receive, s)
        _drive(call)
        held = [call]
        held.append(held)
        s.held = held
        del s, held, call
        gc.collect()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError, match="boom"):  # fails before its response starts
        _drive(mw(_scope("/boom"), receive, _CyclicSend()))
    _drive(mw(_scope(), receive, _CyclicSend()))
    statuses = {s.labels["status"]: s.value for fam in reg.collect() if fam.name == "http_requests"
                for s in fam.samples if s.name == "http_requests_total"}
    assert statuses == {"200": 3.0 if order == "tap first" else 2.0, "500": 1.0}


def test_a_send_wrapper_found_through_the_collector_is_not_reused():
    mw, reg = _cycle_app_and_middleware()
    _drive(mw(_scope(), receive, _CyclicSend()))
    from fastprom._core import SendTap
    found = [o for o in gc.get_objects() if type(o) is SendTap]
    for tap in found:  # an emptied wrapper wraps nothing: calling it is an error, not a crash
        with pytest.raises(RuntimeError, match="wraps no send"):
            tap({"type": "http.response.start", "status": 201, "headers": []})
    _drive(mw(_scope(), receive, _CyclicSend()))
    assert all(tap.status is None for tap in found)
    assert reg.get_sample_value("http_requests_total", {"handler": "/r", "method": "GET", "status": "200"}) == 2
