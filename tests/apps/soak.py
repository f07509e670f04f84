"""The app tools/soak.py serves with gunicorn: each route makes one update
of a metric in the shared store before it answers, so an answered request is
a counted one.

- GET /hit/{key}: soak_hits_total{key} += 1
- GET /observe/{key}/{value}: soak_observed{key}.observe(value) (sync, so
  it runs in the thread pool)
- GET /level/{client}/{value}: soak_level{client} = value (multiprocess
  mode max)
- GET /churn/{series}/add, /churn/{series}/remove: soak_churn_total{series}
  += 1, or the label set removed
- the Instrumentator's metrics, with the in-progress gauge (livesum)
"""
import os

from fastapi import FastAPI

from fastprom import Counter, Gauge, Histogram, Instrumentator

HITS = Counter("soak_hits", "Hits per key.", ["key"])
OBSERVED = Histogram("soak_observed", "Values observed per key.", ["key"], buckets=(1, 2.5, 5))
LEVEL = Gauge("soak_level", "The latest value each client set.", ["client"], multiprocess_mode="max")
CHURN = Counter("soak_churn", "Short-lived series, removed again.", ["series"])


def create_app():
    app = FastAPI()

    @app.get("/hit/{key}")
    async def hit(key: str):
        HITS.labels(key).inc()
        return {"pid": os.getpid()}

    @app.get("/observe/{key}/{value}")
    def observe(key: str, value: int):
        OBSERVED.labels(key).observe(value)
        return {"pid": os.getpid()}

    @app.get("/level/{client}/{value}")
    async def level(client: str, value: int):
        LEVEL.labels(client).set(value)
        return {"pid": os.getpid()}

    @app.get("/churn/{series}/add")
    async def churn_add(series: str):
        CHURN.labels(series).inc()
        return {"pid": os.getpid()}

    @app.get("/churn/{series}/remove")
    async def churn_remove(series: str):
        CHURN.remove(series)
        return {"pid": os.getpid()}

    Instrumentator(should_instrument_requests_inprogress=True).instrument(app).expose(app)
    return app
