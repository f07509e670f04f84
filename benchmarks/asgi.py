#!/usr/bin/env python3
"""ASGI benchmark: what HTTP metrics cost per request in a FastAPI app, in-process, no sockets.

Five FastAPI apps with the same routes: bare, a do-nothing ASGI middleware, prometheus-fastapi-
instrumentator, fastprom.Instrumentator, and a lean pure-Python middleware with a cached prometheus_client
Counter child.  Each request awaits the app with a copy of a prebuilt GET /items/42 scope; every round times
one calibrated batch per variant, order rotated; the figure is the median over the rounds.  Each
instrumented app's /metrics must count every request, before and after timing (else exit status 1).
"""
from __future__ import annotations

import _common as c  # first: it keeps this directory from shadowing the standard library's http

import asyncio
import gc
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

import fastprom
import prometheus_client
import prometheus_fastapi_instrumentator as pfi
from fastapi import FastAPI
from starlette.responses import Response

ITEM_PATH, ITEM_TEMPLATE = "/items/42", "/items/{item_id}"
BODIES = {ITEM_PATH: b'{"item_id":42,"name":"widget"}', "/": b'{"message":"hello"}'}
WARMUP = 200


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def root() -> Dict[str, str]:
        return {"message": "hello"}

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> Dict[str, Any]:
        return {"item_id": item_id, "name": "widget"}
    return app


class DoNothingMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class LeanCounterMiddleware:
    """Counts requests by method and route template (scope['route'] once the app ran), one cached child each."""

    def __init__(self, app: Any, counter: Any) -> None:
        self.app, self.counter, self.children = app, counter, {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        route = scope.get("route")
        key = (scope["method"], route.path if route is not None else "none")
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = self.counter.labels(*key)
        child.inc()


def build(kind: str) -> FastAPI:
    app = make_app()
    if kind == "noop_middleware":
        app.add_middleware(DoNothingMiddleware)
    elif kind == "pfi":
        pfi.Instrumentator(registry=prometheus_client.CollectorRegistry()).instrument(app).expose(app)
    elif kind == "fastprom":
        fastprom.Instrumentator(registry=fastprom.CollectorRegistry()).instrument(app).expose(app)
    elif kind == "lean_python":
        reg = prometheus_client.CollectorRegistry()
        app.add_middleware(LeanCounterMiddleware, counter=prometheus_client.Counter(
            "http_requests", "Requests by method and handler.", ("method", "handler"), registry=reg))

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(prometheus_client.generate_latest(reg), media_type=prometheus_client.CONTENT_TYPE_LATEST)
    return app


VARIANTS = [("bare", "bare FastAPI", False), ("noop_middleware", "FastAPI + do-nothing ASGI middleware", False),
            ("pfi", "prometheus-fastapi-instrumentator", True), ("fastprom", "fastprom.Instrumentator", True),
            ("lean_python", "lean pure-Python middleware (prometheus_client Counter child)", True)]


async def batch(app: Any, scope: Dict[str, Any], n: int) -> int:
    """``n`` requests one after the other; the ns taken."""
    copy, rcv, snd = scope.copy, c.receive_empty, c.discard
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await app(copy(), rcv, snd)
    return time.perf_counter_ns() - t0


async def noop_app(scope: Any, receive: Any, send: Any) -> None:
    pass


async def recorded(app: Any) -> float:
    """http_requests_total{handler="/items/{item_id}"} (summed over the other labels) from the app's /metrics."""
    got = await c.asgi_call(app, "/metrics")
    if got.status != 200:
        raise AssertionError(f"GET /metrics answered {got.status}: {bytes(got.body)[:300]!r}")
    found, _ = c.samples(bytes(got.body).decode())
    return sum(v for (name, labels), v in found.items()
               if name == "http_requests_total" and ("handler", ITEM_TEMPLATE) in labels)


def main(argv: Optional[List[str]] = None) -> int:
    b = c.Bench(__doc__)
    b.option("--rounds", 7, 3, "rounds", minimum=1)
    b.option("--target-seconds", 0.3, 0.05, "time per variant per round", minimum=1e-6)
    args = b.parse(argv)
    loop = asyncio.new_event_loop()
    otel = c.version_of("opentelemetry-api")
    b.intro(["fastapi", "starlette", "prometheus_client", "prometheus-fastapi-instrumentator", "fastprom"],
            f"in-process ASGI, GET {ITEM_PATH} (route {ITEM_TEMPLATE}), {type(loop).__name__}; median of "
            f"{args.rounds} rounds, ~{args.target_seconds:g} s per variant per round, order rotated each round")
    target_ns = args.target_seconds * 1e9
    apps: Dict[str, Any] = {}
    sent = {key: 0 for key, _, _ in VARIANTS}  # requests to ITEM_PATH

    def check_recorded(key: str, title: str, when: str) -> Optional[float]:
        try:
            total = loop.run_until_complete(recorded(apps[key]))
        except Exception as e:
            b.problem(f"{title} ({when}): could not read http_requests_total: {e!r}")
            return None
        if total != sent[key]:
            b.problem(f"{title} ({when}): http_requests_total{{handler=\"{ITEM_TEMPLATE}\"}} is {total:g}, "
                      f"but {sent[key]} requests were sent to {ITEM_PATH}")
        return total

    try:
        for key, title, instrumented in VARIANTS:  # build, check and warm up everything first
            app = apps[key] = build(key)
            for path, want in BODIES.items():
                got = loop.run_until_complete(c.asgi_call(app, path))
                if got.status != 200 or bytes(got.body) != want:
                    b.problem(f"{title}: GET {path} answered {got.status} {bytes(got.body)[:200]!r}")
            loop.run_until_complete(batch(app, c.asgi_scope(app, ITEM_PATH), WARMUP))
            sent[key] += 1 + WARMUP
            if instrumented:
                check_recorded(key, title, "after warm-up")
    except Exception:
        b.problem(f"exception while building or warming up:\n{traceback.format_exc()}")
    if b.problems:
        print("ERROR: a variant does not work as expected; nothing was timed.")
        return b.finish({})

    scopes = {key: c.asgi_scope(apps[key], ITEM_PATH) for key in apps}
    runs = {key: (lambda n, a=apps[key], s=scopes[key]: loop.run_until_complete(batch(a, s, n))) for key in apps}
    runs["floor"] = lambda n: loop.run_until_complete(batch(noop_app, c.asgi_scope(noop_app, ITEM_PATH), n))
    number, samples = {}, {key: [] for key in runs}
    for key in runs:
        c.log(f"  calibrating {key} ...")
        number[key], made = c.calibrate(runs[key], target_ns, 1 << 24)
        sent[key] = sent.get(key, 0) + made
    for r in range(args.rounds):
        order = c.rotated(list(apps), r)
        c.log(f"  round {r + 1}/{args.rounds}: " + ", ".join(order))
        for key in order + ["floor"]:
            gc.collect()
            samples[key].append(runs[key](number[key]) / number[key] / 1e3)
            sent[key] += number[key]
    totals = {key: check_recorded(key, title, "after timing") for key, title, inst in VARIANTS if inst}
    loop.close()

    res = {key: {"title": title, "us": c.spread(samples[key]), "requests_per_batch": number[key],
                 "requests_sent": sent[key]} for key, title, _ in VARIANTS}
    med = {key: v["us"]["median"] for key, v in res.items()}
    c.table(["variant", "µs / request (median)", "min – max", "extra vs bare, µs",
             "extra vs do-nothing middleware, µs"],
            [[v["title"], f"{med[key]:,.2f}", f"{v['us']['min']:,.2f} – {v['us']['max']:,.2f}",
              "—" if key == "bare" else f"{med[key] - med['bare']:+,.2f}",
              "—" if key == "noop_middleware" else f"{med[key] - med['noop_middleware']:+,.2f}"]
             for key, v in res.items()])
    floor = c.med(samples["floor"])
    print(f"note: driver floor (scope copy + await of a no-op ASGI callable, same loop): {floor:.3f} µs per "
          f"request; it is in every row, nothing is subtracted.")
    print("note: requests per timed batch: " + ", ".join(f"{k} {number[k]:,}" for k in res) + ".")
    print(f"note: http_requests_total{{handler=\"{ITEM_TEMPLATE}\"}} after timing: "
          + ", ".join(f"{k} {t:,.0f} (sent {sent[k]:,})" for k, t in totals.items() if t is not None) + ".")
    if otel != "not installed":
        print(f"note: opentelemetry-api {otel} is installed, so fastprom looks up the current span for an "
              f"exemplar on each request.")

    def chart() -> List[c.Panel]:
        return [c.Panel("µs per request (median over rounds; lower is better)", [v["title"] for v in res.values()],
                        {"µs / request": list(med.values())},
                        ["" if k == "bare" else f"{m - med['bare']:+,.2f} µs vs bare" for k, m in med.items()])]
    return b.finish({"variants": res, "driver_floor_us": {"median": floor, "samples": samples["floor"],
                                                          "number": number["floor"]}}, chart)


if __name__ == "__main__":
    sys.exit(main())
