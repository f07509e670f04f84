#!/usr/bin/env python3
"""Endpoint benchmark: GET /metrics of a 20-route FastAPI app, fastprom.Instrumentator against
prometheus-fastapi-instrumentator (PFI), in-process, plain text and gzip.

Both apps (routes /api/v1/<resource>/{rid}, instrumented with the defaults, expose(app, should_gzip=True))
first get the same 243 requests.  Each GET /metrics is timed from the ASGI call to its last body message;
every round makes --calls calls per variant (both apps plain and gzip, and a floor: a bare FastAPI route
returning the same body prebuilt), order rotated.  Both /metrics must count every request and agree with
each other before timing, and count every /metrics request after it (else exit status 1).
"""
from __future__ import annotations

import _common as c  # first: it keeps this directory from shadowing the standard library's http

import asyncio
import gc
import gzip
import statistics
import sys
import time
import traceback
from collections import Counter as Tally
from typing import Any, Dict, List, Optional

import fastprom
import prometheus_client
import prometheus_fastapi_instrumentator as pfi
from fastapi import FastAPI, HTTPException
from starlette.responses import Response

RESOURCES = ("users", "orders", "items", "products", "carts", "invoices", "payments", "shipments", "reviews",
             "categories", "coupons", "sessions", "tokens", "files", "reports", "alerts", "teams", "projects",
             "tasks", "comments")
ROUTES = [(f"/api/v1/{res}/{{rid}}", ("GET", ("PUT", "POST", "PATCH", "DELETE")[k % 4]))
          for k, res in enumerate(RESOURCES)]
MIX = (("1", 200), ("2", 200), ("3", 200), ("10", 404), ("13", 503), ("abc", 422))  # path parameter, status
UNKNOWN_PATHS = ("/nope", "/api/v2/users/1", "/favicon.ico")
BODY = b'{"name":"widget","qty":3}'
NO_VALUE_CHECK = ("http_request_duration_seconds", "http_request_duration_highr_seconds")
HEADERS = {"plain": [], "gzip": [(b"accept-encoding", b"gzip")]}


def endpoint_for(res: str) -> Any:
    async def endpoint(rid: int) -> Dict[str, Any]:
        if rid % 10 == 0:
            raise HTTPException(status_code=404, detail="not found")
        if rid == 13:
            raise HTTPException(status_code=503, detail="unavailable")
        return {"id": rid, "resource": res, "name": "widget"}
    return endpoint


def make_app(instrumentator: Any) -> FastAPI:
    app = FastAPI()
    for path, methods in ROUTES:
        app.add_api_route(path, endpoint_for(path.split("/")[3]), methods=list(methods),
                          name=f"{path.split('/')[3]}_item")
    instrumentator.instrument(app).expose(app, should_gzip=True)
    return app


async def send_mix(title: str, app: Any) -> Tally:
    """The fixed mix; the expected http_requests_total per (handler, method, status group)."""
    expected: Tally = Tally()
    requests = [(p, m, p.replace("{rid}", rid), s) for p, ms in ROUTES for m in ms for rid, s in MIX]
    for handler, method, path, status in requests + [("none", "GET", p, 404) for p in UNKNOWN_PATHS]:
        got = await c.asgi_call(app, path, method, BODY if method in ("PUT", "POST", "PATCH") else b"")
        if got.status != status:
            raise AssertionError(f"{title}: {method} {path} answered {got.status}, expected {status}: "
                                 f"{bytes(got.body)[:200]!r}")
        expected[(handler, method, f"{status // 100}xx")] += 1
    return expected


async def scrape(a: Dict[str, Any], use_gzip: bool) -> Dict[str, Any]:
    """One GET /metrics, checked: its samples, plain text and sizes."""
    kind = "gzip" if use_gzip else "plain"
    got = await c.asgi_call(a["app"], "/metrics", headers=HEADERS[kind])
    a["scrapes"] += 1
    encoding = got.headers.get(b"content-encoding", b"").decode()
    ctype = got.headers.get(b"content-type", b"").decode()
    if got.status != 200 or encoding != ("gzip" if use_gzip else "") or not ctype.startswith("text/plain"):
        raise AssertionError(f"{a['title']}: GET /metrics ({kind}) answered {got.status}, content-encoding "
                             f"{encoding!r}, content-type {ctype!r}: {bytes(got.body)[:200]!r}")
    text = (gzip.decompress(bytes(got.body)) if use_gzip else bytes(got.body)).decode()
    found, created = c.samples(text)
    totals: Tally = Tally()
    for (name, labels), value in found.items():
        if name == "http_requests_total":
            d = dict(labels)
            totals[(d.get("handler"), d.get("method"), d.get("status"))] += int(value)
    return {"samples": found, "totals": totals, "created": created, "text": text, "bytes": len(got.body)}


async def prepare(b: c.Bench, apps: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Sends the mix to both apps and checks both /metrics, plain and gzip; what the bodies hold."""
    info: Dict[str, Any] = {}
    expected = None
    for key, a in apps.items():
        c.log(f"  {a['title']}: sending the request mix ...")
        exp = await send_mix(a["title"], a["app"])
        if expected is not None and exp != expected:
            b.problem("the two apps answered the request mix differently")
        expected = exp
        await scrape(a, False)  # so that the /metrics handler's own series exist in both checked bodies
        for use_gzip in (False, True):
            want = Tally(expected)
            want[("/metrics", "GET", "2xx")] = a["scrapes"]
            s = await scrape(a, use_gzip)
            if s["totals"] != want:
                b.problem(f"{a['title']}: http_requests_total ({'gzip' if use_gzip else 'plain'}) does not match the "
                          f"requests sent: {sorted(set(s['totals'].items()) ^ set(want.items()), key=str)[:8]}")
            if use_gzip:
                info[key]["gzip_bytes"] = s["bytes"]
                if set(s["samples"]) != set(info[key]["samples"]):
                    b.problem(f"{a['title']}: the gzip body holds other series than the plain one")
            else:
                info[key] = {"samples": s["samples"], "plain_bytes": s["bytes"], "body": s["text"].encode(),
                             "lines": s["text"].count("\n"), "created_samples": s["created"],
                             "sample_lines": sum(1 for ln in s["text"].splitlines() if ln and ln[0] != "#")}
    fp, pc = info["fastprom"].pop("samples"), info["pfi"].pop("samples")
    if set(fp) != set(pc):
        b.problem(f"the two apps expose different series (_created aside): only in fastprom "
                  f"{sorted(set(fp) - set(pc))[:3]}, only in PFI {sorted(set(pc) - set(fp))[:3]}")
    # Both bodies were scraped after the same requests: every count and size must agree, except the latencies
    # and the response sizes of /metrics itself (the two bodies differ).
    wrong = [(k, fp[k], pc[k]) for k in sorted(set(fp) & set(pc)) if fp[k] != pc[k] and not k[0].startswith(
        NO_VALUE_CHECK) and not (k[0].startswith("http_response_size_bytes") and ("handler", "/metrics") in k[1])]
    if wrong:
        b.problem(f"the two apps disagree on {len(wrong)} sample value(s); first (sample, fastprom, PFI): {wrong[:4]}")
    info["requests_in_mix"] = sum(expected.values()) if expected else 0
    return info


async def timed_call(app: Any, scope: Dict[str, Any]) -> tuple:
    out = c.Captured(keep=False)
    t0 = time.perf_counter_ns()
    await app(scope.copy(), c.receive_empty, out)
    return (out.done_ns - t0) / 1e6, out.status


async def run(b: c.Bench, rounds: int, calls: int) -> Dict[str, Any]:
    apps = {"fastprom": {"title": "fastprom.Instrumentator", "scrapes": 0,
                         "app": make_app(fastprom.Instrumentator(registry=fastprom.CollectorRegistry()))},
            "pfi": {"title": "prometheus-fastapi-instrumentator", "scrapes": 0,
                    "app": make_app(pfi.Instrumentator(registry=prometheus_client.CollectorRegistry()))}}
    try:
        info = await prepare(b, apps)
    except Exception:
        b.problem(f"exception while loading or checking the apps:\n{traceback.format_exc()}")
    if b.problems:
        return {}
    body = info["fastprom"].pop("body")
    info["pfi"].pop("body")
    floor_app = FastAPI()

    @floor_app.get("/metrics")
    def static_metrics() -> Response:  # a sync route, as both instrumentators' /metrics
        return Response(content=body, media_type="text/plain; version=0.0.4; charset=utf-8")
    apps["floor"] = {"title": "floor: bare FastAPI, sync route returning a prebuilt body", "app": floor_app,
                     "scrapes": 0}
    variants = {f"{k}_{kind}": {"app": k, "title": f"{apps[k]['title']}, {kind}", "ms": [], "round_medians": [],
                                "scope": c.asgi_scope(apps[k]["app"], "/metrics", headers=HEADERS[kind])}
                for k in ("fastprom", "pfi") for kind in ("plain", "gzip")}
    variants["floor"] = {"app": "floor", "title": apps["floor"]["title"], "ms": [], "round_medians": [],
                         "scope": c.asgi_scope(floor_app, "/metrics")}
    for r in range(-1, rounds):  # round -1: 3 warm-up calls each, not timed
        order = c.rotated(list(variants), max(r, 0))
        c.log(f"  round {r + 1}/{rounds}: " + ", ".join(order))
        for key in order:
            v, a = variants[key], apps[variants[key]["app"]]
            gc.collect()
            this = []
            for _ in range(3 if r < 0 else calls):
                ms, status = await timed_call(a["app"], v["scope"])
                a["scrapes"] += 1
                if status != 200:
                    b.problem(f"{v['title']}: GET /metrics answered {status} during timing")
                    return {}
                this.append(ms)
            if r >= 0:
                v["ms"] += this
                v["round_medians"].append(statistics.median(this))
    for a in (apps["fastprom"], apps["pfi"]):
        before = a["scrapes"]
        got = (await scrape(a, False))["totals"].get(("/metrics", "GET", "2xx"), 0)
        if got != before:
            b.problem(f"{a['title']} (after timing): http_requests_total{{handler=\"/metrics\"}} is {got}, but "
                      f"{before} GET /metrics requests were made before this one")
    for key, v in variants.items():
        v["ms"] = c.spread(v["ms"])
        v["body_bytes"] = len(body) if key == "floor" else info[v["app"]][f"{key.split('_')[-1]}_bytes"]
        del v["scope"]
    return {"bodies": info, "variants": variants}


def main(argv: Optional[List[str]] = None) -> int:
    b = c.Bench(__doc__)
    b.option("--rounds", 7, 3, "rounds", minimum=1)
    b.option("--calls", 100, 20, "calls per variant per round", minimum=1)
    args = b.parse(argv)
    b.intro(["fastapi", "starlette", "prometheus_client", "prometheus-fastapi-instrumentator", "fastprom"],
            f"in-process ASGI GET /metrics of a FastAPI app with {len(ROUTES)} routes, expose(should_gzip=True); "
            f"median of {args.rounds} rounds x {args.calls} calls per variant, order rotated each round")
    res = asyncio.run(run(b, args.rounds, args.calls))
    if not res:
        print("ERROR: the apps do not work as expected; nothing was timed.")
        return b.finish({})
    v, info = res["variants"], res["bodies"]
    m = {key: x["ms"]["median"] for key, x in v.items()}
    c.table(["GET /metrics", "fastprom ms", "prometheus-fastapi-instrumentator ms", "ratio",
             "body bytes: fastprom / PFI"],
            [[title, c.num(m[f"fastprom_{k}"]), c.num(m[f"pfi_{k}"]),
              c.fmt_ratio(c.ratio(m[f"pfi_{k}"], m[f"fastprom_{k}"])),
              f"{v[f'fastprom_{k}']['body_bytes']:,} / {v[f'pfi_{k}']['body_bytes']:,}"]
             for k, title in (("plain", "plain text (no accept-encoding)"), ("gzip", "gzip (accept-encoding: gzip)"))])
    fp, pc = info["fastprom"], info["pfi"]
    print("ratio: PFI median / fastprom median (above 1: fastprom is faster); both apps also record the /metrics "
          "request itself.")
    print(f"note: plain text body after the {info['requests_in_mix']} requests of the mix: fastprom {fp['lines']:,} "
          f"lines ({fp['sample_lines']:,} samples), PFI {pc['lines']:,} lines ({pc['sample_lines']:,} samples, "
          f"{pc['created_samples']:,} of them _created).")
    print(f"note: floor (same rotation; an uninstrumented app's sync route returning fastprom's plain body, "
          f"{v['floor']['body_bytes']:,} bytes, prebuilt): {c.num(m['floor'])} ms per request, part of every row; "
          f"nothing is subtracted.")
    print("note: min – max of the round medians, ms: " + "; ".join(
        f"{x['title']} {c.span(c.spread(x['round_medians']))}" for x in v.values()) + ".")

    def chart() -> List[c.Panel]:
        return [c.Panel("ms per GET /metrics (median; lower is better)", ["plain text", "gzip"],
                        {"fastprom.Instrumentator": [m["fastprom_plain"], m["fastprom_gzip"]],
                         "prometheus-fastapi-instrumentator": [m["pfi_plain"], m["pfi_gzip"]]},
                        [c.fmt_ratio(c.ratio(m[f"pfi_{k}"], m[f"fastprom_{k}"])) for k in ("plain", "gzip")])]
    return b.finish(res, chart)


if __name__ == "__main__":
    sys.exit(main())
