"""A small FastAPI app instrumented in one line, for ``python -m fastprom demo``."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator


def create_app() -> Any:
    """The demo app: a few routes, an included router, ``/metrics`` and the
    page at ``/metrics/ui``; ``/fail`` answers 503 (to make the error-rate
    alert fire)."""
    from fastapi import APIRouter, FastAPI, HTTPException
    from fastapi.responses import Response, StreamingResponse

    from .instrumentator import Instrumentator

    app = FastAPI(title="fastprom demo")
    items = APIRouter(prefix="/items", tags=["items"])

    @app.get("/")
    def root() -> dict:
        return {"hello": "world", "metrics": "/metrics"}

    @items.get("/{item_id}")
    def get_item(item_id: int) -> dict:
        if item_id < 0:
            raise HTTPException(status_code=404, detail="no such item")
        return {"item_id": item_id}

    @items.post("/")
    def create_item(item: dict) -> dict:
        return item

    @app.get("/stream")
    def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0.01)
                yield f"chunk {i}\n".encode()
        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/fail")
    def fail() -> Response:
        return Response(status_code=503)

    app.include_router(items)
    Instrumentator(should_instrument_requests_inprogress=True, inprogress_labels=True,
                   should_instrument_uptime=True).instrument(app).expose(app, ui=True)
    return app


def main(argv: Any = None) -> None:
    """Runs the demo with uvicorn."""
    import argparse

    import uvicorn

    p = argparse.ArgumentParser(prog="python -m fastprom demo", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    base = f"http://{args.host}:{args.port}"
    print(f"fastprom demo: {base}/, {base}/metrics and {base}/metrics/ui", flush=True)
    uvicorn.run("fastprom.asgi.demo:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level="warning")
