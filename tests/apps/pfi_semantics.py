"""Apps for tests/test_pfi_semantics.py, served by uvicorn with either
library: FASTPROM_TEST_LIB is "fastprom" (default) or "pfi"
(prometheus-fastapi-instrumentator), so that the same requests can be
checked against both; FASTPROM_TEST_OPTS holds JSON keyword arguments for
the Instrumentator."""
import json
import os

from fastapi import Depends, FastAPI, Header, HTTPException


def _lib():
    if os.environ.get("FASTPROM_TEST_LIB", "fastprom") == "pfi":
        from prometheus_fastapi_instrumentator import Instrumentator
    else:
        from fastprom import Instrumentator
    return Instrumentator, json.loads(os.environ.get("FASTPROM_TEST_OPTS", "{}"))


def two_apps():
    """Two FastAPI apps in one process, each instrumented on the default
    registry, behind a dispatcher (no Starlette mount, so neither app sees
    the other's requests): paths under /b go to app B, the rest to app A,
    which serves /metrics."""
    Instrumentator, opts = _lib()
    app_a, app_b = FastAPI(), FastAPI()

    @app_a.get("/a/{x}")
    def a(x: int):
        return {"a": x}

    @app_b.get("/b/{x}")
    def b(x: int):
        return {"b": x}

    Instrumentator(**opts).instrument(app_a).expose(app_a)
    Instrumentator(**opts).instrument(app_b)

    async def dispatch(scope, receive, send):
        target = app_b if scope["type"] == "http" and scope["path"].startswith("/b") else app_a
        await target(scope, receive, send)

    return dispatch


def _items(app):
    @app.get("/items/{item_id}")
    def item(item_id: int):
        return {"item_id": item_id}

    @app.get("/static/")
    def static():
        return {"ok": True}


def root_path_app():
    """Root paths three ways: this app was created with
    ``FastAPI(root_path="/proxy")`` and is instrumented itself; under /api
    it mounts a sub-app that is instrumented on its own (with a registry of
    its own, whose metrics it serves at /api/metrics); and the server may
    add a root path of its own (``--root-path``)."""
    Instrumentator, opts = _lib()
    import prometheus_client

    if os.environ.get("FASTPROM_TEST_APP_ROOT_PATH", "1") == "1":
        app = FastAPI(root_path="/proxy")
    else:
        app = FastAPI()
    _items(app)
    sub = FastAPI()
    _items(sub)
    Instrumentator(**opts).instrument(app).expose(app)
    sub_registry = prometheus_client.CollectorRegistry()
    Instrumentator(registry=sub_registry, **opts).instrument(sub).expose(sub)
    app.mount("/api", sub)
    return app


def guarded_metrics_app():
    """/internal/metrics exposed with FastAPI route arguments passed through
    expose(): a dependency that wants a token, a route name, a summary and tags."""
    Instrumentator, opts = _lib()
    app = FastAPI()

    def require_token(x_token: str = Header(default="")):
        if x_token != "secret":
            raise HTTPException(status_code=401, detail="token required")

    @app.get("/ping")
    def ping():
        return "pong"

    Instrumentator(**opts).instrument(app).expose(
        app, endpoint="/internal/metrics", include_in_schema=True, tags=["ops"],
        dependencies=[Depends(require_token)], name="prom_metrics", summary="Prometheus metrics")

    @app.get("/where")
    def where():
        return {"url": app.url_path_for("prom_metrics")}

    return app
