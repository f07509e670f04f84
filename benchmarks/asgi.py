#!/usr/bin/env python3
"""ASGI benchmark: what HTTP metrics cost per request in a FastAPI app, in-process, no sockets.

Five FastAPI apps with the same routes: bare, a do-nothing ASGI middleware, prometheus-fastapi-
instrumentator, fastprom.Instrumentator, and a lean pure-Python middleware with a cached prometheus_client
Counter child.  Each request awaits the app with a copy of a prebuilt GET /items/42 scope; every round times
one calibrated batch per variant, order rotated; the figure is the median over the rounds.  Each
instrumented app's /metrics must count every request, before and after timing (else exit status 1).

With --instructions it counts instead of timing: the script runs itself again under valgrind's callgrind and
reports the instructions each variant executes per request (a mix of GET /items/42 and GET /), which do not
depend on the machine's load.  Each variant's batch is bracketed by two calls that callgrind watches for
(sys.getswitchinterval() zeroes the counters, sys.is_finalizing() writes them out), so start-up, imports and
warm-up are not counted.
"""
from __future__ import annotations

import _common as c  # first: it keeps this directory from shadowing the standard library's http

import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
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


# --------------------------------------------------------------------------- instruction counts (callgrind)

ZERO_MARK, DUMP_MARK = "sys_getswitchinterval", "sys_is_finalizing"  # CPython's C functions behind the markers
MIX = (ITEM_PATH, "/")


def counted_child(requests: int, out: str) -> int:
    """Under callgrind: builds and warms up every variant, then runs ``requests`` requests of each between the
    markers; writes the order of the counted parts to ``out``.  Exit status 1 if a variant misbehaves."""
    loop = asyncio.new_event_loop()
    zero, dump = sys.getswitchinterval, sys.is_finalizing
    apps = {key: build(key) for key, _, _ in VARIANTS}
    apps["floor"] = noop_app
    scopes = {key: [c.asgi_scope(app, path) for path in MIX] for key, app in apps.items()}

    async def mixed(app: Any, scopes: List[Dict[str, Any]], n: int) -> None:
        rcv, snd = c.receive_empty, c.discard
        for i in range(n):
            await app(scopes[i & 1].copy(), rcv, snd)
    order, problems = [], []
    for key, app in apps.items():
        if key != "floor":
            for path, want in BODIES.items():
                got = loop.run_until_complete(c.asgi_call(app, path))
                if got.status != 200 or bytes(got.body) != want:
                    problems.append(f"{key}: GET {path} answered {got.status} {bytes(got.body)[:200]!r}")
        loop.run_until_complete(mixed(app, scopes[key], WARMUP))
    gc.collect()
    for key, app in apps.items():  # gc stays on, as in a server; its passes fall where the counts put them
        coro = mixed(app, scopes[key], requests)
        zero()
        loop.run_until_complete(coro)
        dump()
        order.append(key)
    sent = {key: 1 + (WARMUP + requests + 1) // 2 for key, _, inst in VARIANTS if inst}
    for key, title, inst in VARIANTS:
        if inst:
            got = loop.run_until_complete(recorded(apps[key]))
            if got != sent[key]:
                problems.append(f"{title}: http_requests_total{{handler=\"{ITEM_TEMPLATE}\"}} is {got:g}, "
                                f"expected {sent[key]}")
    loop.close()
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"order": order, "problems": problems}, f)
    return 1 if problems else 0


def part_instructions(path: str) -> int:
    """The instructions a callgrind output file (one part) counted."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise ValueError(f"{path}: no 'summary:' line")


def count_main(b: c.Bench, args: Any) -> int:
    valgrind = shutil.which("valgrind")
    b.intro(["fastapi", "starlette", "prometheus_client", "prometheus-fastapi-instrumentator", "fastprom"],
            f"instructions per request (valgrind callgrind), in-process ASGI, warm, {args.requests} requests "
            f"alternating GET {ITEM_PATH} and GET /, same interpreter and loop for every variant",
            valgrind=subprocess.run([valgrind, "--version"], capture_output=True, text=True).stdout.strip()
            if valgrind else "valgrind not installed")
    if valgrind is None:
        print(f"asgi.py --instructions: {'skipped' if args.quick else 'ERROR'}: needs valgrind "
              "(apt-get install valgrind)")
        return 0 if args.quick else 1
    keep = args.callgrind_dir
    work = keep or tempfile.mkdtemp(prefix="fastprom-callgrind-")
    os.makedirs(work, exist_ok=True)
    for name in os.listdir(work):
        if name.startswith("callgrind.out"):
            os.unlink(os.path.join(work, name))
    order_file = os.path.join(work, "order.json")
    # Without address randomisation: id()-keyed dicts and pointer hashes
    # then collide the same way in every run.
    setarch = shutil.which("setarch")
    norandom = [setarch, os.uname().machine, "-R"] if setarch else []
    cmd = [*norandom, valgrind, "--tool=callgrind", f"--zero-before={ZERO_MARK}*", f"--dump-before={DUMP_MARK}*",
           f"--callgrind-out-file={os.path.join(work, 'callgrind.out')}",
           sys.executable, os.path.abspath(__file__), "--counted-child", str(args.requests), order_file]
    env = dict(os.environ, PYTHONHASHSEED="0")
    c.log("  running under callgrind: " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        b.problem(f"the counted run took more than {args.timeout:g} s")
        return b.finish({})
    if proc.returncode != 0 or not os.path.exists(order_file):
        b.problem(f"the counted run exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        return b.finish({})
    with open(order_file, encoding="utf-8") as f:
        meta = json.load(f)
    for p in meta["problems"]:
        b.problem(p)
    parts = sorted((n for n in os.listdir(work) if n.startswith("callgrind.out.") and n[14:].isdigit()),
                   key=lambda n: int(n[14:]))
    if len(parts) < len(meta["order"]):
        b.problem(f"callgrind wrote {len(parts)} parts for {len(meta['order'])} variants: are CPython's symbols "
                  f"{ZERO_MARK} and {DUMP_MARK} visible to valgrind (not stripped)?")
        return b.finish({})
    per = {key: part_instructions(os.path.join(work, parts[i])) / args.requests
           for i, key in enumerate(meta["order"])}
    titles = {key: title for key, title, _ in VARIANTS}
    titles["floor"] = "driver floor (scope copy + await of a no-op ASGI callable)"
    noop_extra = per["noop_middleware"] - per["bare"]
    rows = []
    for key in [k for k, _, _ in VARIANTS] + ["floor"]:
        extra = per[key] - per["bare"]
        rows.append([titles[key], f"{per[key]:,.0f}", "—" if key in ("bare", "floor") else f"{extra:+,.0f}",
                     "—" if key in ("bare", "floor", "noop_middleware") or noop_extra <= 0
                     else c.fmt_ratio(extra / noop_extra)])
    c.table(["variant", "instructions / request", "extra vs bare", "extra ÷ do-nothing middleware's extra"], rows)
    if keep:
        print(f"note: callgrind's profiles are in {keep} (callgrind.out.N, one per variant in the order "
              f"{', '.join(meta['order'])}); read one with callgrind_annotate.")
    else:
        shutil.rmtree(work, ignore_errors=True)

    def chart() -> List[c.Panel]:
        keys = [k for k, _, _ in VARIANTS if k != "bare"]
        return [c.Panel("extra instructions per request over bare FastAPI (lower is better)",
                        [titles[k] for k in keys], {"instructions": [per[k] - per["bare"] for k in keys]})]
    return b.finish({"instructions_per_request": per, "order": meta["order"], "requests": args.requests}, chart)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--counted-child"]:
        return counted_child(int(argv[1]), argv[2])
    b = c.Bench(__doc__)
    b.option("--rounds", 7, 3, "rounds", minimum=1)
    b.option("--target-seconds", 0.3, 0.05, "time per variant per round", minimum=1e-6)
    b.ap.add_argument("--instructions", action="store_true",
                      help="count instructions per request under valgrind's callgrind instead of timing")
    b.option("--requests", 1000, 100, "requests per variant counted with --instructions", minimum=2)
    b.option("--timeout", 900.0, 300.0, "limit of the run under callgrind, seconds", minimum=1)
    b.option("--callgrind-dir", "", "", "with --instructions, keep callgrind's profiles in this directory",
             metavar="DIR", type=str)
    args = b.parse(argv)
    if args.instructions:
        return count_main(b, args)
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
