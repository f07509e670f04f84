"""The app of the alerting tests: its error rate is the client's choice
(``/work?fail=1`` answers 503), with the in-progress and uptime gauges and
the ui page.  FASTPROM_TEST_METRIC_NAMES sets the Instrumentator's metric_names."""
import os

from fastapi import FastAPI
from fastapi.responses import Response

from fastprom import Instrumentator


def create_app():
    app = FastAPI()

    @app.get("/work")
    def work(fail: int = 0):
        return Response(status_code=503 if fail else 200)

    @app.get("/items/{item_id}")
    def item(item_id: int):
        return {"item_id": item_id}

    names = os.environ.get("FASTPROM_TEST_METRIC_NAMES", "prometheus-fastapi-instrumentator")
    Instrumentator(should_instrument_requests_inprogress=True, inprogress_labels=True, should_instrument_uptime=True,
                   metric_names=names).instrument(app).expose(app, ui=True)
    return app
