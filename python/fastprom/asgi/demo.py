"""A small FastAPI app instrumented in one line, for ``python -m fastprom demo``."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator


def create_app() -> Any:
    """The demo app: a few routes, an included router, and ``/metrics``."""
    from fastapi import APIRouter, FastAPI, HTTPException
    from fastapi.responses import StreamingResponse

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

    app.include_router(items)
    Instrumentator().instrument(app).expose(app)
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
    print(f"fastprom demo: http://{args.host}:{args.port}/ and http://{args.host}:{args.port}/metrics", flush=True)
    uvicorn.run("fastprom.asgi.demo:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level="warning")
