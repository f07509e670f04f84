#!/usr/bin/env python3
"""ASGI benchmark: what HTTP metrics cost per request in a FastAPI app, in-process.

Run from anywhere with an interpreter that has fastprom, fastapi,
prometheus_client and prometheus-fastapi-instrumentator installed::

    python benchmarks/asgi.py            # full run: 7 rounds, ~0.3 s per variant per round
    python benchmarks/asgi.py --quick    # smoke run: 3 rounds of ~0.05 s (rough numbers)
    python benchmarks/asgi.py --json out.json --chart out.png

Five FastAPI apps with identical routes (``/`` and ``/items/{item_id}``) are
driven without sockets: the ASGI app is awaited directly with a prebuilt
``GET /items/42`` scope (a fresh shallow copy per request), a ``receive()``
that returns an empty ``http.request`` and a ``send()`` that discards every
message.  The variants:

1. bare FastAPI;
2. FastAPI with a do-nothing pure ASGI middleware;
3. prometheus-fastapi-instrumentator: ``Instrumentator(registry=<fresh
   prometheus_client registry>).instrument(app).expose(app)``;
4. fastprom: ``fastprom.Instrumentator(registry=fastprom.CollectorRegistry())
   .instrument(app).expose(app)``;
5. a lean pure-Python middleware that, after the app ran, reads the matched
   route template from ``scope['route'].path`` and increments a cached
   prometheus_client ``Counter`` child (a reference point, not a product).

All of them run in one asyncio event loop, alternately: every round times each
variant for about ``--target-seconds`` (order rotated per round); the figure
reported is the median over the rounds of the wall time per request, taken with
``time.perf_counter_ns``.  Garbage collection stays on (as in a server), with a
``gc.collect()`` before each timed batch.  Timings are printed, never asserted.

Before timing, each instrumented variant (3, 4, 5) must have recorded every
request sent to it: its ``/metrics`` is scraped through the same ASGI call path
and ``http_requests_total{handler="/items/{item_id}"}`` (summed over the other
labels) must equal the number of ``/items/42`` requests made.  The check runs
again after timing.  A failed check or an exception exits with status 1.
"""
from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

# Before the third-party imports: importing prometheus_client from this directory runs http.py as the
# module `http` (its name shadows the standard library's), which takes this directory off sys.path.
from _common import (add_output_options, environment, header_line, log, make_parser, print_intro,
                     print_problem_list, pyplot, rotated, save_chart, spread, version_of, write_json)

import fastapi
import fastprom
import prometheus_client
import prometheus_fastapi_instrumentator as pfi
import starlette
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import Response

ITEM_PATH = "/items/42"
ITEM_TEMPLATE = "/items/{item_id}"
ITEM_BODY = b'{"item_id":42,"name":"widget"}'
ROOT_BODY = b'{"message":"hello"}'
REQUEST_MESSAGE = {"type": "http.request", "body": b"", "more_body": False}
WARMUP_REQUESTS = 200


# --------------------------------------------------------------------------- environment

def opentelemetry_api() -> Optional[str]:
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return None
    return version_of("opentelemetry-api")


def event_loop_name() -> str:
    loop = asyncio.new_event_loop()
    try:
        return type(loop).__name__
    finally:
        loop.close()


def asgi_environment() -> Dict[str, Any]:
    return environment({
        "fastapi": version_of("fastapi", fastapi),
        "starlette": version_of("starlette", starlette),
        "prometheus_client": version_of("prometheus_client", prometheus_client),
        "prometheus_fastapi_instrumentator": version_of("prometheus-fastapi-instrumentator", pfi),
        "fastprom": version_of("fastprom", fastprom),
        "opentelemetry_api": opentelemetry_api(),
        "event_loop": event_loop_name(),
    })


# --------------------------------------------------------------------------- the apps

def make_app() -> FastAPI:
    """The same routes for every variant."""
    app = FastAPI()

    @app.get("/")
    async def root() -> Dict[str, str]:
        return {"message": "hello"}

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> Dict[str, Any]:
        return {"item_id": item_id, "name": "widget"}

    return app


class DoNothingMiddleware:
    """A pure ASGI middleware that only passes the call on."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class LeanCounterMiddleware:
    """Counts requests by method and route template, read from ``scope['route']``
    once the app has run; one cached prometheus_client Counter child per pair."""

    def __init__(self, app: Any, counter: Any) -> None:
        self.app = app
        self.counter = counter
        self.children: Dict[Tuple[str, str], Any] = {}

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


def build_bare() -> FastAPI:
    return make_app()


def build_noop_middleware() -> FastAPI:
    app = make_app()
    app.add_middleware(DoNothingMiddleware)
    return app


def build_pfi() -> FastAPI:
    app = make_app()
    registry = prometheus_client.CollectorRegistry()
    pfi.Instrumentator(registry=registry).instrument(app).expose(app)
    return app


def build_fastprom() -> FastAPI:
    app = make_app()
    fastprom.Instrumentator(registry=fastprom.CollectorRegistry()).instrument(app).expose(app)
    return app


def build_lean() -> FastAPI:
    app = make_app()
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("http_requests", "Total number of requests by method and handler.",
                                        ("method", "handler"), registry=registry)
    app.add_middleware(LeanCounterMiddleware, counter=counter)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(prometheus_client.generate_latest(registry),
                        media_type=prometheus_client.CONTENT_TYPE_LATEST)

    return app


@dataclass
class Variant:
    key: str
    title: str
    build: Callable[[], FastAPI]
    instrumented: bool
    app: Any = None
    scope: Dict[str, Any] = field(default_factory=dict)
    sent: int = 0  # requests for ITEM_PATH made so far
    number: int = 0  # requests per timed batch
    samples_us: List[float] = field(default_factory=list)
    checks: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples_us)


VARIANTS: List[Variant] = [
    Variant("bare", "bare FastAPI", build_bare, False),
    Variant("noop_middleware", "FastAPI + do-nothing ASGI middleware", build_noop_middleware, False),
    Variant("pfi", "prometheus-fastapi-instrumentator", build_pfi, True),
    Variant("fastprom", "fastprom.Instrumentator", build_fastprom, True),
    Variant("lean_python", "lean pure-Python middleware (prometheus_client Counter child)", build_lean, True),
]


# --------------------------------------------------------------------------- driving

def make_scope(app: Any, path: str) -> Dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("ascii"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"x")],
        "client": ("127.0.0.1", 50000),
        "server": ("x", 80),
        "app": app,
    }


async def receive() -> Dict[str, Any]:
    return REQUEST_MESSAGE


async def discard(message: Dict[str, Any]) -> None:
    pass


class Captured:
    """A ``send()`` that keeps the response."""

    def __init__(self) -> None:
        self.status: Optional[int] = None
        self.headers: List[Tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def __call__(self, message: Dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def request(app: Any, path: str) -> Captured:
    out = Captured()
    await app(make_scope(app, path), receive, out)
    return out


async def run_batch(app: Any, scope: Dict[str, Any], n: int) -> int:
    """Awaits ``app`` ``n`` times, one request after the other; returns the ns taken."""
    copy = scope.copy
    rcv, snd = receive, discard
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await app(copy(), rcv, snd)
    return time.perf_counter_ns() - t0


async def noop_app(scope: Any, receive: Any, send: Any) -> None:
    pass


async def calibrate(app: Any, scope: Dict[str, Any], target_ns: float) -> Tuple[int, int]:
    """A batch size that makes one batch last about ``target_ns``; also the requests made."""
    number, made = 1, 0
    while True:
        elapsed = await run_batch(app, scope, number)
        made += number
        if elapsed >= target_ns / 5 or number >= 1 << 24:
            break
        number *= 10 if elapsed < target_ns / 50 else 2
    return max(1, round(number * target_ns / max(elapsed, 1))), made


# --------------------------------------------------------------------------- checks

async def check_responses(v: Variant) -> List[str]:
    problems = []
    for path, want in ((ITEM_PATH, ITEM_BODY), ("/", ROOT_BODY)):
        got = await request(v.app, path)
        if path == ITEM_PATH:
            v.sent += 1
        if got.status != 200 or bytes(got.body) != want:
            problems.append(f"{v.title}: GET {path} answered {got.status} {bytes(got.body)[:200]!r}, "
                            f"expected 200 {want!r}")
    return problems


async def scrape_count(v: Variant) -> Tuple[Optional[float], Optional[str], str]:
    """``http_requests_total{handler="/items/{item_id}"}`` from the app's own /metrics:
    (the sum, or None if there is no such sample; an error, if the scrape failed; the text)."""
    got = await request(v.app, "/metrics")
    text = bytes(got.body).decode("utf-8", errors="replace")
    if got.status != 200:
        return None, f"GET /metrics answered {got.status}: {text[:300]!r}", text
    total: Optional[float] = None
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "http_requests_total" and s.labels.get("handler") == ITEM_TEMPLATE:
                    total = (total or 0.0) + s.value
    except Exception as e:
        return None, f"/metrics output does not parse ({e!r}); it begins {text[:300]!r}", text
    return total, None, text


async def check_recorded(v: Variant, when: str) -> List[str]:
    total, error, text = await scrape_count(v)
    v.checks.append({"when": when, "sent": v.sent, "recorded": total, "error": error})
    if error is not None:
        return [f"{v.title} ({when}): could not read http_requests_total: {error}"]
    if total is None:
        lines = [ln for ln in text.splitlines() if ln.startswith("http_requests_total")][:10]
        return [f"{v.title} ({when}): no http_requests_total sample with handler=\"{ITEM_TEMPLATE}\" "
                f"after {v.sent} requests to {ITEM_PATH}; http_requests_total lines: {lines}"]
    if total != v.sent:
        return [f"{v.title} ({when}): http_requests_total{{handler=\"{ITEM_TEMPLATE}\"}} is {total:g}, "
                f"but {v.sent} requests were sent to {ITEM_PATH}"]
    return []


# --------------------------------------------------------------------------- output

def fmt_us(us: float) -> str:
    return f"{us:,.2f}"


def fmt_extra(us: float) -> str:
    return f"{us:+,.2f}"


def markdown(variants: List[Variant]) -> str:
    bare = variants[0].median
    noop = variants[1].median
    lines = ["| variant | µs / request (median) | min – max | extra vs bare, µs | "
             "extra vs do-nothing middleware, µs |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for i, v in enumerate(variants):
        m = v.median
        vs_bare = "—" if i == 0 else fmt_extra(m - bare)
        vs_noop = "—" if i == 1 else fmt_extra(m - noop)
        lines.append(f"| {v.title} | {fmt_us(m)} | {fmt_us(min(v.samples_us))} – {fmt_us(max(v.samples_us))} | "
                     f"{vs_bare} | {vs_noop} |")
    return "\n".join(lines)


def write_chart(path: str, variants: List[Variant], header: str) -> None:
    plt = pyplot(path)
    if plt is None:
        return
    labels = [v.title for v in variants]
    med = [v.median for v in variants]
    lo = [m - min(v.samples_us) for m, v in zip(med, variants)]
    hi = [max(v.samples_us) - m for m, v in zip(med, variants)]
    colors = ["#999999", "#bbbbbb", "#ff7f0e", "#1f77b4", "#2ca02c"]
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(variants) + 1.8))
    y = list(range(len(variants)))
    ax.barh(y, med, xerr=[lo, hi], color=colors[:len(variants)], capsize=3)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("µs per request (median over rounds, bars: min–max; lower is better)")
    ax.set_title(textwrap.fill(header, 140), fontsize=7)
    top = max(max(v.samples_us) for v in variants)
    ax.set_xlim(0, top * 1.3)
    for i, v in enumerate(variants):
        if i:
            ax.text(max(v.samples_us) + top * 0.01, i, f"{fmt_extra(v.median - variants[0].median)} µs vs bare",
                    va="center", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    save_chart(plt, fig, path)


# --------------------------------------------------------------------------- main

async def run(rounds: int, target_ns: float,
              log: Callable[[str], None]) -> Tuple[List[Variant], Dict[str, Any], List[str]]:
    variants = VARIANTS
    problems: List[str] = []
    # Build, warm up and check every variant before timing anything.
    for v in variants:
        try:
            v.app = v.build()
            v.scope = make_scope(v.app, ITEM_PATH)
            problems += await check_responses(v)
            for _ in range(WARMUP_REQUESTS):
                await v.app(v.scope.copy(), receive, discard)
            v.sent += WARMUP_REQUESTS
            if v.instrumented:
                problems += await check_recorded(v, "after warm-up")
        except Exception:
            problems.append(f"{v.title}: exception while building or warming up:\n{traceback.format_exc()}")
    if problems:
        return variants, {}, problems

    floor_scope = make_scope(noop_app, ITEM_PATH)
    for v in variants:
        log(f"  calibrating {v.title} ...")
        v.number, made = await calibrate(v.app, v.scope, target_ns)
        v.sent += made
    floor_number, _ = await calibrate(noop_app, floor_scope, target_ns)
    floor_samples: List[float] = []

    for r in range(rounds):
        order = rotated(variants, r)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(v.key for v in order))
        for v in order:
            gc.collect()
            elapsed = await run_batch(v.app, v.scope, v.number)
            v.sent += v.number
            v.samples_us.append(elapsed / v.number / 1e3)
        gc.collect()
        floor_samples.append(await run_batch(noop_app, floor_scope, floor_number) / floor_number / 1e3)

    for v in variants:
        if v.instrumented:
            problems += await check_recorded(v, "after timing")
    floor = {"median_us": statistics.median(floor_samples), "samples_us": floor_samples, "number": floor_number}
    return variants, floor, problems


def main(argv: Optional[List[str]] = None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds of ~0.05 s (numbers are rough)")
    ap.add_argument("--rounds", type=int, help="rounds (default 7, 3 with --quick)")
    ap.add_argument("--target-seconds", type=float,
                    help="time per variant per round (default 0.3, 0.05 with --quick)")
    add_output_options(ap, chart_help="write a PNG bar chart (needs matplotlib)")
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    target_s = args.target_seconds or (0.05 if args.quick else 0.3)
    if rounds < 1 or target_s <= 0:
        ap.error("--rounds must be >= 1 and --target-seconds > 0")

    env = asgi_environment()
    header = header_line(env, f"fastapi {env['fastapi']}", f"starlette {env['starlette']}",
                         f"prometheus_client {env['prometheus_client']}",
                         f"prometheus-fastapi-instrumentator {env['prometheus_fastapi_instrumentator']}",
                         f"fastprom {env['fastprom']}")
    print_intro(header, f"in-process ASGI, GET {ITEM_PATH} (route {ITEM_TEMPLATE}), {env['event_loop']}; "
                f"median of {rounds} rounds, ~{target_s:g} s per variant per round, order rotated each round"
                + (" [--quick: rough numbers]" if args.quick else ""))

    try:
        variants, floor, problems = asyncio.run(run(rounds, target_s * 1e9, log))
    except Exception:
        tb = traceback.format_exc()
        print(f"ERROR: the benchmark failed:\n{tb}", file=sys.stderr)
        print("ERROR: the benchmark failed (traceback on stderr): " + tb.strip().splitlines()[-1])
        return 1

    if problems:
        print("ERROR: a variant does not work as expected; nothing is reported as timed:" if not floor
              else "ERROR: a check failed after timing:")
        print_problem_list(problems)
        if not floor:
            return 1

    print(markdown(variants))
    print()
    print(f"note: driver floor (scope copy + await of a no-op ASGI callable, same loop): "
          f"{floor['median_us']:.3f} µs per request; it is included in every row, nothing is subtracted.")
    print("note: requests per timed batch: " + ", ".join(f"{v.key} {v.number:,}" for v in variants) + ".")
    print("note: http_requests_total{handler=\"" + ITEM_TEMPLATE + "\"} matched the requests sent for every "
          "instrumented variant, before and after timing: "
          + ", ".join(f"{v.key} {v.checks[-1]['recorded']:,.0f}" for v in variants if v.instrumented) + "."
          if not problems else "note: see the failed check above.")
    if env["opentelemetry_api"]:
        print(f"note: opentelemetry-api {env['opentelemetry_api']} is installed, so fastprom looks up the "
              f"current span for an exemplar on each request.")

    if args.json:
        write_json(args.json, {
            "environment": env, "rounds": rounds, "target_seconds": target_s, "quick": args.quick,
            "driver_floor": floor,
            "variants": [{
                "key": v.key, "title": v.title, **spread(v.samples_us, "us"),
                "extra_vs_bare_us": v.median - variants[0].median,
                "extra_vs_noop_middleware_us": v.median - variants[1].median,
                "requests_per_batch": v.number, "samples_us": v.samples_us,
                "requests_sent": v.sent, "checks": v.checks,
            } for v in variants],
            "problems": problems,
        })
    if args.chart:
        write_chart(args.chart, variants, header)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
