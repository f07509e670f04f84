"""The app of the scrape tests: fastprom's Instrumentator on its own
registry, with a counter of FASTPROM_TEST_SERIES series.

With FASTPROM_TEST_HOLD=1 every render waits, in its worker thread, until
POST /release (at most 60 s), so a test can act while a render is in
flight.  GET /state tells the endpoint's renders, the scrapes awaiting one
and whether a render is held.
"""
import os
import threading

from fastapi import FastAPI

import fastprom


def create_app():
    app = FastAPI()
    registry = fastprom.CollectorRegistry()
    counter = fastprom.Counter("preloaded", "Series made at start-up.", ["i"], registry=registry)
    for i in range(int(os.environ.get("FASTPROM_TEST_SERIES", "0"))):
        counter.labels(str(i)).inc()
    inst = fastprom.Instrumentator(registry=registry).instrument(app).expose(app)
    shared = inst.scrapes
    released = threading.Event()
    held = {"now": 0}

    def hold():
        held["now"] += 1
        try:
            released.wait(60)
        finally:
            held["now"] -= 1

    if os.environ.get("FASTPROM_TEST_HOLD") == "1":
        shared.on_render = hold

    @app.get("/ping")
    async def ping():
        return {"ok": True}

    @app.get("/state")
    async def state():
        return {"renders": shared.renders, "waiting": shared.waiting, "held": held["now"]}

    @app.post("/release")
    async def release():
        released.set()
        return {"released": True}

    return app
