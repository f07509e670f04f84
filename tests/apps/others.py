"""Apps for the HTTP tests beyond the main FastAPI one."""
import fastprom
from fastprom import Counter, Instrumentator, metrics
from fastprom.middleware import PrometheusInstrumentatorMiddleware


def starlette_app():
    """A plain Starlette app, instrumented in one line."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def user(request):
        return PlainTextResponse(request.path_params["uid"])

    app = Starlette(routes=[Route("/users/{uid}", user), Mount("/v2", routes=[Route("/users/{uid}", user)])])
    Instrumentator().instrument(app).expose(app)
    return app


def raw_app():
    """A bare ASGI app (no router) wrapped in the middleware directly, with
    /metrics served by the app itself through fastprom.negotiate."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics":
            headers = dict(scope["headers"])
            e = fastprom.negotiate(fastprom.REGISTRY, headers.get(b"accept", b"").decode() or None)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(k.lower().encode(), v.encode()) for k, v in e.headers.items()]})
            await send({"type": "http.response.body", "body": e.body})
            return
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    return PrometheusInstrumentatorMiddleware(app)


SEEN = Counter("seen_by_function", "Requests seen by a custom sync function", ["handler", "status"])
SEEN_ASYNC = Counter("seen_by_async_function", "Requests seen by a custom async function", ["method"])


def custom_functions_app():
    """add() with the closures of fastprom.metrics and user functions, sync and async."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/things/{tid}")
    def things(tid: str, body: dict):
        return body

    def sync_fn(info: metrics.Info) -> None:
        assert info.request.url.path.startswith("/")
        SEEN.labels(info.modified_handler, info.modified_status).inc()

    async def async_fn(info: metrics.Info) -> None:
        SEEN_ASYNC.labels(info.method).inc()

    (Instrumentator(body_handlers=[r"^/things"])
     .add(metrics.latency(buckets=(1, 2)), metrics.requests(should_include_status=False),
          metrics.request_size(), metrics.response_size(), metrics.combined_size(metric_name="both_bytes"),
          sync_fn, async_fn)
     .instrument(app).expose(app))
    return app
