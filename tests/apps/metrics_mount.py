"""Apps serving fastprom.make_asgi_app() under uvicorn (tests/test_serve_push.py).

``create_app``: a FastAPI app with the metrics app mounted at /metrics, as
FastAPI's documentation shows, serving the default REGISTRY.  ``bare_app``:
the metrics app alone, as the whole ASGI application (lifespan included).
"""
import prometheus_client
from fastapi import FastAPI

import fastprom

WORK = fastprom.Counter("work_done", "Work done, by kind.", ["kind"])
QUEUE = fastprom.Gauge("queue_length", "Items waiting.")
# A library instrumented with prometheus_client: shown by the default REGISTRY's endpoint.
PC_EVENTS = prometheus_client.Counter("pc_events", "Counted with prometheus_client.")


def create_app():
    app = FastAPI()

    @app.get("/work/{kind}")
    def work(kind: str):
        WORK.labels(kind).inc()
        QUEUE.set(7)
        PC_EVENTS.inc()
        return {"ok": True}

    app.mount("/metrics", fastprom.make_asgi_app())
    return app


def bare_app():
    WORK.labels("bare").inc(2)
    return fastprom.make_asgi_app(disable_compression=True)
