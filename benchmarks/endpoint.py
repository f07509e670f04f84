#!/usr/bin/env python3
"""Endpoint benchmark: GET /metrics of an instrumented FastAPI app, fastprom against
prometheus-fastapi-instrumentator, in-process.

Run from anywhere with an interpreter that has fastprom, fastapi,
prometheus_client and prometheus-fastapi-instrumentator installed::

    python benchmarks/endpoint.py            # full run: 7 rounds of 100 calls per variant
    python benchmarks/endpoint.py --quick    # smoke run: 3 rounds of 20 calls (rough numbers)
    python benchmarks/endpoint.py --json out.json --chart out.png

Two FastAPI apps with the same 20 routes (``/api/v1/<resource>/{rid}``, each
answering GET and one of PUT, POST, PATCH, DELETE) are instrumented, one with
``fastprom.Instrumentator(registry=fastprom.CollectorRegistry())``, the other
with prometheus-fastapi-instrumentator's ``Instrumentator(registry=<fresh
prometheus_client CollectorRegistry>)``, both ``.instrument(app)`` with the
defaults and ``.expose(app, should_gzip=True)``.  Each app then receives the
same fixed mix of requests (every route and method with statuses 200, 404, 422
and 503, a request body for PUT, POST and PATCH, and a few requests to an
unknown path), which gives ``/metrics`` a realistic content: about 500 lines
from fastprom and 700 from prometheus-fastapi-instrumentator (which also writes
a ``_created`` sample per counter and summary series).

Then ``GET /metrics`` is timed through the ASGI interface, with no server and
no sockets: the app is awaited with an ``http`` scope, once with the header
``accept-encoding: gzip`` and once without; the time runs from the call until
``send()`` receives the last ``http.response.body`` message.  Every round makes
``--calls`` calls for each of the four variants (two apps, plain and gzip),
the order rotated per round; the figure is the median over all calls.
Garbage collection stays on, with a ``gc.collect()`` before each series of
calls.  A fifth variant in the same rotation, an uninstrumented FastAPI app
whose sync ``/metrics`` route returns fastprom's plain body prebuilt, gives the
floor: what FastAPI itself costs for such a request.  Timings are printed,
never asserted.

Before timing, both apps must have answered every request of the mix with the
expected status, and each ``/metrics`` (plain and gzip) must parse with
``prometheus_client.parser``, report exactly the requests sent, and hold the
same samples as the other app's (``_created`` aside; values compared except
for the latency histograms).  After timing, each app must have counted every
``/metrics`` request.  A failure is printed and makes the exit status 1.
"""
from __future__ import annotations

import asyncio
import gc
import gzip
import statistics
import sys
import textwrap
import time
import traceback
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

# Before the third-party imports: importing prometheus_client from this directory runs http.py as the
# module `http` (its name shadows the standard library's), which takes this directory off sys.path.
from _common import (add_output_options, environment, fmt_ratio, header_line, log, make_parser, print_intro,
                     print_problem_list, pyplot, rotated, save_chart, spread, version_of, write_json)

import fastapi
import fastprom
import prometheus_client
import prometheus_fastapi_instrumentator as pfi
import starlette
from fastapi import FastAPI, HTTPException
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import Response

RESOURCES = ("users", "orders", "items", "products", "carts", "invoices", "payments", "shipments", "reviews",
             "categories", "coupons", "sessions", "tokens", "files", "reports", "alerts", "teams", "projects",
             "tasks", "comments")
SECOND_METHODS = ("PUT", "POST", "PATCH", "DELETE")
#: path parameter -> expected status: 200, HTTPException(404), HTTPException(503), validation error 422
MIX = (("1", 200), ("2", 200), ("3", 200), ("10", 404), ("13", 503), ("abc", 422))
UNKNOWN_PATHS = ("/nope", "/api/v2/users/1", "/favicon.ico")
BODY = b'{"name":"widget","qty":3}'
REQUEST_MESSAGE = {"type": "http.request", "body": b"", "more_body": False}
SKIP_VALUE_CHECK = ("http_request_duration_seconds", "http_request_duration_highr_seconds")


# --------------------------------------------------------------------------- the apps

def route_table() -> List[Tuple[str, str, Tuple[str, str]]]:
    """(resource, path template, (method, method)) for the 20 routes."""
    return [(res, f"/api/v1/{res}/{{rid}}", ("GET", SECOND_METHODS[k % len(SECOND_METHODS)]))
            for k, res in enumerate(RESOURCES)]


def make_app() -> FastAPI:
    app = FastAPI()
    for res, path, methods in route_table():
        def handler(rid: int, _res: str = res) -> Dict[str, Any]:
            if rid % 10 == 0:
                raise HTTPException(status_code=404, detail="not found")
            if rid == 13:
                raise HTTPException(status_code=503, detail="unavailable")
            return {"id": rid, "resource": _res, "name": "widget"}

        async def endpoint(rid: int) -> Dict[str, Any]:
            return handler(rid)

        app.add_api_route(path, endpoint, methods=list(methods), name=f"{res}_item")
    return app


def build_fastprom() -> FastAPI:
    app = make_app()
    fastprom.Instrumentator(registry=fastprom.CollectorRegistry()).instrument(app).expose(app, should_gzip=True)
    return app


def build_pfi() -> FastAPI:
    app = make_app()
    pfi.Instrumentator(registry=prometheus_client.CollectorRegistry()).instrument(app).expose(
        app, should_gzip=True)
    return app


# --------------------------------------------------------------------------- driving

def make_scope(app: Any, method: str, path: str, headers: List[Tuple[bytes, bytes]]) -> Dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("ascii"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"x")] + headers,
        "client": ("127.0.0.1", 50000),
        "server": ("x", 80),
        "app": app,
    }


class Captured:
    """A ``send()`` that keeps the response and the time of its last body message."""

    def __init__(self, keep_body: bool = True) -> None:
        self.keep_body = keep_body
        self.status: Optional[int] = None
        self.headers: Dict[bytes, bytes] = {}
        self.body = bytearray()
        self.done_ns = 0

    async def __call__(self, message: Dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if self.keep_body:
                self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.done_ns = time.perf_counter_ns()
        elif kind == "http.response.start":
            self.status = message["status"]
            if self.keep_body:
                self.headers = {k.lower(): v for k, v in message.get("headers", [])}


async def request(app: Any, method: str, path: str, body: bytes = b"",
                  headers: Optional[List[Tuple[bytes, bytes]]] = None) -> Captured:
    hdrs = list(headers or [])
    if body:
        hdrs += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    msg = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> Dict[str, Any]:
        return msg

    out = Captured()
    await app(make_scope(app, method, path, hdrs), receive, out)
    return out


async def receive_empty() -> Dict[str, Any]:
    return REQUEST_MESSAGE


def status_group(status: int) -> str:
    return f"{status // 100}xx"


@dataclass
class App:
    key: str
    title: str
    build: Callable[[], FastAPI]
    app: Any = None
    scrapes: int = 0  # GET /metrics made so far
    statuses: List[Tuple[str, str, int]] = field(default_factory=list)


@dataclass
class Variant:
    key: str
    title: str
    owner: App
    gzip: bool
    scope: Dict[str, Any] = field(default_factory=dict)
    samples_ms: List[float] = field(default_factory=list)
    round_medians_ms: List[float] = field(default_factory=list)
    body_bytes: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)


async def send_mix(a: App) -> Tally:
    """Sends the fixed mix; returns the expected http_requests_total per (handler, method, status group)."""
    expected: Tally = Tally()
    for res, path, methods in route_table():
        for method in methods:
            for rid, status in MIX:
                body = BODY if method in ("PUT", "POST", "PATCH") else b""
                got = await request(a.app, method, path.replace("{rid}", rid), body)
                a.statuses.append((method, path.replace("{rid}", rid), got.status or 0))
                if got.status != status:
                    raise AssertionError(f"{a.title}: {method} {path.replace('{rid}', rid)} answered "
                                         f"{got.status}, expected {status}: {bytes(got.body)[:200]!r}")
                expected[(path, method, status_group(status))] += 1
    for path in UNKNOWN_PATHS:
        got = await request(a.app, "GET", path)
        if got.status != 404:
            raise AssertionError(f"{a.title}: GET {path} answered {got.status}, expected 404")
        expected[("none", "GET", "4xx")] += 1
    return expected


def parse(text: str) -> Tuple[Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float], int]:
    """Samples other than ``_created`` by (name, labels); also the number of ``_created`` samples."""
    samples: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float] = {}
    created = 0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_created"):
                created += 1
                continue
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, created


async def scrape(a: App, use_gzip: bool) -> Tuple[Captured, str]:
    headers = [(b"accept-encoding", b"gzip")] if use_gzip else []
    got = await request(a.app, "GET", "/metrics", headers=headers)
    a.scrapes += 1
    if got.status != 200:
        raise AssertionError(f"{a.title}: GET /metrics ({'gzip' if use_gzip else 'plain'}) answered "
                             f"{got.status}: {bytes(got.body)[:300]!r}")
    encoding = got.headers.get(b"content-encoding", b"").decode()
    if use_gzip and encoding != "gzip":
        raise AssertionError(f"{a.title}: GET /metrics with accept-encoding: gzip answered with "
                             f"content-encoding {encoding!r}, expected 'gzip'")
    if not use_gzip and encoding:
        raise AssertionError(f"{a.title}: GET /metrics without accept-encoding answered with "
                             f"content-encoding {encoding!r}")
    ctype = got.headers.get(b"content-type", b"").decode()
    if not ctype.startswith("text/plain"):
        raise AssertionError(f"{a.title}: GET /metrics answered with content-type {ctype!r}, expected text/plain")
    body = gzip.decompress(bytes(got.body)) if use_gzip else bytes(got.body)
    return got, body.decode("utf-8")


def requests_total(samples: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]) -> Tally:
    out: Tally = Tally()
    for (name, labels), value in samples.items():
        if name == "http_requests_total":
            d = dict(labels)
            out[(d.get("handler"), d.get("method"), d.get("status"))] += int(value)
    return out


async def check_apps(apps: List[App], expected: Tally, info: Dict[str, Any]) -> List[str]:
    """Both /metrics bodies, plain and gzip, against the mix and against each other."""
    problems: List[str] = []
    plain: Dict[str, Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]] = {}
    for a in apps:
        # a first scrape, so that the /metrics handler's own series exist in both checked bodies
        await scrape(a, False)
        for use_gzip in (False, True):
            scrapes_before = a.scrapes
            got, text = await scrape(a, use_gzip)
            try:
                samples, created = parse(text)
            except Exception as e:
                problems.append(f"{a.title}: /metrics ({'gzip' if use_gzip else 'plain'}) does not parse: {e!r}; "
                                f"it begins {text[:300]!r}")
                continue
            totals = requests_total(samples)
            want = Tally(expected)
            if scrapes_before:
                want[("/metrics", "GET", "2xx")] = scrapes_before
            if totals != want:
                diff = sorted(set(totals.items()) ^ set(want.items()), key=str)[:8]
                problems.append(f"{a.title}: http_requests_total ({'gzip' if use_gzip else 'plain'}) does not "
                                f"match the requests sent; differing (handler, method, status) counts: {diff}")
            if use_gzip:
                if set(samples) != set(plain[a.key]):
                    problems.append(f"{a.title}: the gzip body holds other series than the plain one")
                info[a.key]["gzip_bytes"] = len(got.body)
            else:
                plain[a.key] = samples
                info[a.key].update(plain_bytes=len(got.body), plain_body=bytes(got.body), lines=text.count("\n"),
                                   sample_lines=sum(1 for ln in text.splitlines() if ln and not ln.startswith("#")),
                                   created_samples=created)
    if len(plain) == 2:
        fp, pc = plain["fastprom"], plain["pfi"]
        only_fp, only_pc = sorted(set(fp) - set(pc)), sorted(set(pc) - set(fp))
        if only_fp or only_pc:
            problems.append(f"the two apps expose different series (_created aside): {len(only_fp)} only in "
                            f"fastprom (first: {only_fp[:3]}), {len(only_pc)} only in "
                            f"prometheus-fastapi-instrumentator (first: {only_pc[:3]})")
        # Each app's plain body was scraped after the same requests (the mix and one scrape), so every
        # count and size must agree; latencies cannot, nor the response sizes of /metrics itself (the two
        # bodies differ).
        wrong = [(k, fp[k], pc[k]) for k in sorted(set(fp) & set(pc))
                 if not k[0].startswith(SKIP_VALUE_CHECK) and fp[k] != pc[k]
                 and not (k[0].startswith("http_response_size_bytes") and ("handler", "/metrics") in k[1])]
        if wrong:
            problems.append(f"the two apps disagree on {len(wrong)} sample value(s) (latency histograms and "
                            f"/metrics response sizes aside); first (sample, fastprom, "
                            f"prometheus-fastapi-instrumentator): {wrong[:4]}")
    return problems


async def check_after(a: App) -> List[str]:
    """Every /metrics request made so far must be counted."""
    before = a.scrapes
    _, text = await scrape(a, False)
    samples, _ = parse(text)
    got = requests_total(samples).get(("/metrics", "GET", "2xx"), 0)
    if got != before:
        return [f"{a.title} (after timing): http_requests_total{{handler=\"/metrics\"}} is {got:g}, "
                f"but {before} GET /metrics requests were made before this one"]
    return []


async def timed_call(app: Any, scope: Dict[str, Any]) -> Tuple[float, Optional[int]]:
    out = Captured(keep_body=False)
    t0 = time.perf_counter_ns()
    await app(scope.copy(), receive_empty, out)
    return (out.done_ns - t0) / 1e6, out.status


async def run(rounds: int, calls: int, log: Callable[[str], None]) -> Tuple[List[Variant], Dict[str, Any],
                                                                              List[str]]:
    apps = [App("fastprom", "fastprom.Instrumentator", build_fastprom),
            App("pfi", "prometheus-fastapi-instrumentator", build_pfi)]
    info: Dict[str, Any] = {a.key: {} for a in apps}
    problems: List[str] = []
    expected: Optional[Tally] = None
    try:
        for a in apps:
            log(f"  building {a.title} and sending the request mix ...")
            a.app = a.build()
            exp = await send_mix(a)
            if expected is not None and exp != expected:
                problems.append("the two apps answered the request mix differently")
            expected = exp
        assert expected is not None
        info["requests_in_mix"] = sum(expected.values())
        log("  checking /metrics ...")
        problems += await check_apps(apps, expected, info)
    except Exception:
        problems.append(f"exception while building, loading or checking the apps:\n{traceback.format_exc()}")
    if problems:
        return [], info, problems

    variants: List[Variant] = []
    for a in apps:
        for use_gzip in (False, True):
            v = Variant(f"{a.key}_{'gzip' if use_gzip else 'plain'}",
                        f"{a.title}, {'gzip' if use_gzip else 'plain text'}", a, use_gzip)
            v.scope = make_scope(a.app, "GET", "/metrics", [(b"accept-encoding", b"gzip")] if use_gzip else [])
            variants.append(v)
    # Floor: an uninstrumented FastAPI app whose sync /metrics route returns fastprom's plain body, prebuilt.
    floor_app = App("floor", "floor: bare FastAPI, sync route returning a prebuilt body", lambda: FastAPI())
    floor_app.app = FastAPI()
    prebuilt = info["fastprom"]["plain_body"]

    def static_metrics() -> Response:
        return Response(content=prebuilt, media_type="text/plain; version=0.0.4; charset=utf-8")

    floor_app.app.get("/metrics")(static_metrics)
    floor = Variant("floor", floor_app.title, floor_app, False)
    floor.scope = make_scope(floor_app.app, "GET", "/metrics", [])
    variants.append(floor)
    # warm-up: a few calls each, not timed
    for v in variants:
        for _ in range(3):
            _, status = await timed_call(v.owner.app, v.scope)
            v.owner.scrapes += 1
    for r in range(rounds):
        order = rotated(variants, r)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(v.key for v in order))
        for v in order:
            gc.collect()
            this_round: List[float] = []
            for _ in range(calls):
                ms, status = await timed_call(v.owner.app, v.scope)
                v.owner.scrapes += 1
                if status != 200:
                    problems.append(f"{v.title}: GET /metrics answered {status} during timing")
                    return variants, info, problems
                this_round.append(ms)
            v.samples_ms += this_round
            v.round_medians_ms.append(statistics.median(this_round))
    for a in apps:
        problems += await check_after(a)
    for v in variants:
        v.body_bytes = len(prebuilt) if v is floor else info[v.owner.key]["gzip_bytes" if v.gzip else "plain_bytes"]
    for a in apps:
        del info[a.key]["plain_body"]
    return variants, info, problems


# --------------------------------------------------------------------------- output

def fmt_ms(ms: float) -> str:
    return f"{ms:,.3f}" if ms < 10 else f"{ms:,.1f}"


def markdown(variants: List[Variant]) -> str:
    by = {v.key: v for v in variants}
    lines = ["| GET /metrics | fastprom ms | prometheus-fastapi-instrumentator ms | ratio | "
             "body bytes: fastprom / PFI |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for kind, title in (("plain", "plain text (no accept-encoding)"), ("gzip", "gzip (accept-encoding: gzip)")):
        fp, pc = by[f"fastprom_{kind}"], by[f"pfi_{kind}"]
        lines.append(f"| {title} | {fmt_ms(fp.median)} | {fmt_ms(pc.median)} | {fmt_ratio(pc.median / fp.median)} | "
                     f"{fp.body_bytes:,} / {pc.body_bytes:,} |")
    return "\n".join(lines)


def write_chart(path: str, variants: List[Variant], header: str) -> None:
    plt = pyplot(path)
    if plt is None:
        return
    by = {v.key: v for v in variants}
    fig, ax = plt.subplots(figsize=(8, 4.2))
    w = 0.38
    kinds = ("plain", "gzip")
    fp = [by[f"fastprom_{k}"].median for k in kinds]
    pc = [by[f"pfi_{k}"].median for k in kinds]
    xs = list(range(len(kinds)))
    ax.bar([x - w / 2 for x in xs], fp, width=w, label="fastprom.Instrumentator", color="#1f77b4")
    ax.bar([x + w / 2 for x in xs], pc, width=w, label="prometheus-fastapi-instrumentator", color="#ff7f0e")
    for x, a, b in zip(xs, fp, pc):
        ax.text(x, max(a, b) * 1.02, fmt_ratio(b / a), ha="center", fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels(["GET /metrics, plain text", "GET /metrics, gzip"])
    ax.set_ylabel("ms per request (median; lower is better)")
    ax.set_title(textwrap.fill(header, 120), fontsize=7)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save_chart(plt, fig, path)


# --------------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds of 20 calls (numbers are rough)")
    ap.add_argument("--rounds", type=int, help="rounds (default 7, 3 with --quick)")
    ap.add_argument("--calls", type=int, help="calls per variant per round (default 100, 20 with --quick)")
    add_output_options(ap, chart_help="write a PNG bar chart (needs matplotlib)",
                       json_help="write every call's time to this JSON file")
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    calls = args.calls or (20 if args.quick else 100)
    if rounds < 1 or calls < 1:
        ap.error("--rounds and --calls must be >= 1")

    env = environment({
        "fastapi": version_of("fastapi", fastapi),
        "starlette": version_of("starlette", starlette),
        "prometheus_client": version_of("prometheus_client", prometheus_client),
        "prometheus_fastapi_instrumentator": version_of("prometheus-fastapi-instrumentator", pfi),
        "fastprom": version_of("fastprom", fastprom),
    })
    header = header_line(env, f"fastapi {env['fastapi']}", f"starlette {env['starlette']}",
                         f"prometheus_client {env['prometheus_client']}",
                         f"prometheus-fastapi-instrumentator {env['prometheus_fastapi_instrumentator']}",
                         f"fastprom {env['fastprom']}")
    print_intro(header, f"in-process ASGI GET /metrics of a FastAPI app with {len(RESOURCES)} routes, "
                f"expose(should_gzip=True); median of {rounds} rounds x {calls} calls per variant, order rotated "
                f"each round" + (" [--quick: rough numbers]" if args.quick else ""))

    try:
        variants, info, problems = asyncio.run(run(rounds, calls, log))
    except Exception:
        tb = traceback.format_exc()
        print(f"ERROR: the benchmark failed:\n{tb}", file=sys.stderr)
        print("ERROR: the benchmark failed (traceback on stderr): " + tb.strip().splitlines()[-1])
        return 1
    if problems and not variants:
        print("ERROR: the apps do not work as expected; nothing was timed:")
        print_problem_list(problems)
        return 1

    print(markdown(variants))
    print()
    print("ratio: prometheus-fastapi-instrumentator median / fastprom median (above 1: fastprom is faster); "
          "time from the ASGI call to the last body message, middleware included (both apps also record the "
          "/metrics request itself).")
    fp, pc = info["fastprom"], info["pfi"]
    print(f"note: plain text body after the {info['requests_in_mix']} requests of the mix: fastprom "
          f"{fp['lines']:,} lines ({fp['sample_lines']:,} samples), prometheus-fastapi-instrumentator "
          f"{pc['lines']:,} lines ({pc['sample_lines']:,} samples, {pc['created_samples']:,} of them _created).")
    floor = next(v for v in variants if v.key == "floor")
    print(f"note: floor (in the same rotation): an uninstrumented FastAPI app whose sync `def` /metrics route "
          f"returns fastprom's plain body ({floor.body_bytes:,} bytes) prebuilt: {fmt_ms(floor.median)} ms per "
          f"request: FastAPI's own cost of such a request (routing, threadpool hop, response), which is part of "
          f"every row above; nothing is subtracted.")
    print("note: min – max of the round medians, ms: " + "; ".join(
        f"{v.title} {fmt_ms(min(v.round_medians_ms))} – {fmt_ms(max(v.round_medians_ms))}" for v in variants) + ".")
    if problems:
        print("ERROR: a check failed after timing:")
        print_problem_list(problems)
    else:
        print("note: both apps answered the mix as expected, their /metrics (plain and gzip) held the same series "
              "and counts, and every /metrics request was counted, before and after timing.")

    if args.json:
        write_json(args.json, {
            "environment": env, "rounds": rounds, "calls": calls, "quick": args.quick, "bodies": info,
            "variants": [{"key": v.key, "title": v.title, **spread(v.samples_ms, "ms"),
                          "round_medians_ms": v.round_medians_ms, "body_bytes": v.body_bytes,
                          "samples_ms": v.samples_ms} for v in variants],
            "problems": problems,
        })
    if args.chart:
        write_chart(args.chart, variants, header)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
