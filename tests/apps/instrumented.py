"""The app the HTTP tests serve with uvicorn.

Environment: FASTPROM_TEST_LIB selects the instrumentation ("fastprom",
"pfi" for prometheus-fastapi-instrumentator, or "none"); FASTPROM_TEST_OPTS
holds JSON keyword arguments for the Instrumentator; FASTPROM_TEST_EXPOSE
holds JSON keyword arguments for expose(); FASTPROM_TEST_NO_EXPOSE=1 leaves
/metrics out; FASTPROM_TEST_EXPOSE_TOKEN protects it with a dependency
checking the X-Token header; FASTPROM_TEST_METRICS_PORT calls
start_http_server on that port; FASTPROM_TEST_REGISTRY=pc passes
a prometheus_client CollectorRegistry; FASTPROM_TEST_OTEL=1 opens an
OpenTelemetry span around every request.
"""
import asyncio
import json
import os
import threading

import prometheus_client
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.applications import Starlette
from starlette.routing import Mount, Route

CUSTOM = prometheus_client.Counter("custom_events", "Counted with prometheus_client by the app.")


def create_app():
    lib = os.environ.get("FASTPROM_TEST_LIB", "fastprom")
    opts = json.loads(os.environ.get("FASTPROM_TEST_OPTS", "{}"))
    expose = json.loads(os.environ.get("FASTPROM_TEST_EXPOSE", "{}"))
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int):
        return {"item_id": item_id}

    @app.get("/status/{code}")
    def status(code: int):
        return Response(status_code=code)

    @app.get("/error")
    def error():
        raise RuntimeError("boom")

    @app.post("/echo")
    async def echo(body: dict):
        return body

    @app.get("/stream")
    def stream(delay: float = 0.25, chunks: int = 3):
        async def gen():
            for i in range(chunks):
                await asyncio.sleep(delay)
                yield b"x" * 100
        return StreamingResponse(gen(), media_type="text/plain")

    @app.get("/excluded/health")
    def health():
        return {"ok": True}

    @app.get("/pid")
    async def pid():
        # async: the thread is the event loop's, i.e. the worker's, which
        # tells apart workers that are threads of one process.
        return {"pid": os.getpid(), "thread": threading.get_ident()}

    @app.get("/custom")
    def custom():
        CUSTOM.inc()
        return {"ok": True}

    @app.get("/pc-view")
    def pc_view():
        return PlainTextResponse(prometheus_client.generate_latest(prometheus_client.REGISTRY).decode())

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        await websocket.accept()
        msg = await websocket.receive_text()
        await websocket.send_text(msg)
        await websocket.close()

    inner = APIRouter(prefix="/inner")

    @inner.get("/things/{thing_id}")
    def thing(thing_id: str):
        return {"thing": thing_id}

    outer = APIRouter(prefix="/api/v1")
    outer.include_router(inner)
    app.include_router(outer)

    sub = FastAPI()

    @sub.get("/deep/{d}")
    def deep(d: str):
        return {"d": d}

    app.mount("/sub", sub)
    app.mount("/st/{tenant}", Starlette(routes=[Route("/p/{q}", lambda r: PlainTextResponse("p"))]))

    registry = None
    if os.environ.get("FASTPROM_TEST_REGISTRY") == "pc":
        registry = prometheus_client.CollectorRegistry()
    if lib == "fastprom":
        from fastprom import Instrumentator
    elif lib == "pfi":
        from prometheus_fastapi_instrumentator import Instrumentator
    else:
        return app
    if registry is not None:
        opts["registry"] = registry
        app.state.pc_registry = registry

        @app.get("/pc-registry")
        def pc_registry():
            return PlainTextResponse(prometheus_client.generate_latest(registry).decode())

    instrumentator = Instrumentator(**opts).instrument(
        app, **json.loads(os.environ.get("FASTPROM_TEST_INSTRUMENT", "{}")))
    token = os.environ.get("FASTPROM_TEST_EXPOSE_TOKEN")
    if token:
        from fastapi import Depends, Header, HTTPException

        def check(x_token: str = Header(default="")):
            if x_token != token:
                raise HTTPException(status_code=401, detail="bad token")

        expose = dict(expose, dependencies=[Depends(check)])
    if os.environ.get("FASTPROM_TEST_NO_EXPOSE") != "1":
        instrumentator.expose(app, **expose)
    metrics_port = os.environ.get("FASTPROM_TEST_METRICS_PORT")
    if metrics_port:
        # Every worker asks; one serves the port at a time.
        from fastprom import start_http_server

        start_http_server(int(metrics_port), "127.0.0.1")

    if os.environ.get("FASTPROM_TEST_OTEL") == "1":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())
        tracer = trace.get_tracer("fastprom-test")
        inner_app = app

        async def traced(scope, receive, send):
            if scope["type"] != "http":
                return await inner_app(scope, receive, send)
            with tracer.start_as_current_span("request"):
                return await inner_app(scope, receive, send)

        return traced
    return app
