#!/usr/bin/env python3
"""HTTP benchmark: FastAPI metrics over real HTTP, uvicorn and wrk on 127.0.0.1.

Needs Linux with 2 CPUs, taskset and wrk; with --quick, when one is missing, it says so and exits 0.  Every
variant is a uvicorn process (1 worker, uvloop, httptools, no access log) on CPU 0 serving GET /; wrk -t1
-c32 --latency runs on CPU 1.  A: req/s and latency of GET / for bare FastAPI, + prometheus-fastapi-
instrumentator and + fastprom (Instrumentator().instrument(app).expose(app)), one wrk run per variant per
round, order rotated.  B: the instrumented apps with --series label sets preloaded, wrk alone and while a
scraper GETs /metrics every --scrape-interval s.  http_requests_total{handler="/"} must match the requests
sent, before and after timing; a failure makes the exit status 1.
"""
from __future__ import annotations

import _common as c  # first: it puts this directory last on sys.path, so `http` is the standard library's

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

SERVER_CPU, WRK_CPU = 0, 1
ROOT_BODY = b'{"message":"hello"}'
CHECK_REQUESTS = 200  # sent with httpx before the first count check
TIMEOUT = 60.0  # s for a server to answer after its start, for one request of ours (a large /metrics too)
PRELOADED, PFI = "bench_preloaded", "prometheus_fastapi_instrumentator"
ACCEPT = {  # Prometheus 2.x's (fastprom then answers OpenMetrics; PFI always the text format), or text only
    "prometheus": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "text": "text/plain;version=0.0.4"}
APP = 'import os\nfrom fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get("/")\nasync def root():\n' \
      '    return {"message": "hello"}\n'
INSTRUMENT = "\nfrom {} import Instrumentator\n\nInstrumentator().instrument(app).expose(app)\n"
PRELOAD = '\nimport {0}\n\nPRELOADED = {0}.Counter("%s", "Preloaded label sets.", ["key"])\n' \
          'for _i in range(int(os.environ["BENCH_SERIES"])):\n    PRELOADED.labels("k%%06d" %% _i).inc()\n' % PRELOADED


class BenchError(Exception):
    pass


class Variant:
    def __init__(self, key: str, title: str, source: str, instrumented: bool = True, preloaded: bool = False) -> None:
        self.key, self.title, self.source = key, title, source
        self.instrumented, self.preloaded = instrumented, preloaded
        self.port, self.proc, self.log_path, self.startup_s = 0, None, "", None
        self.sent = 0  # GET / requests that completed: ours plus wrk's
        self.wrk_runs = 0  # each may leave up to --connections requests in flight
        self.runs: List[Dict[str, Any]] = []  # one per wrk run: phase "alone" (A and B) or "scraped" (B)
        self.scrapes: List[Dict[str, Any]] = []
        self.checks: List[Dict[str, Any]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:]).rstrip() or "(empty)"
        except OSError as e:
            return f"(no server log: {e})"

    def alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"{self.title}: uvicorn is gone (exit status {self.proc and self.proc.returncode}); "
                             f"its output:\n{self.tail()}")


def start_server(v: Variant, workdir: str, series: int) -> None:
    import httpx
    module = f"bench_app_{v.key}"
    with open(os.path.join(workdir, module + ".py"), "w", encoding="utf-8") as f:
        f.write(v.source)
    v.port, v.log_path = c.free_port(), os.path.join(workdir, module + ".log")
    env = c.clean_env(BENCH_SERIES=str(series), PYTHONUNBUFFERED="1")
    env.pop("ENABLE_METRICS", None)
    with open(v.log_path, "wb") as log:
        v.proc = c.start(["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "uvicorn", f"{module}:app",
                          "--app-dir", workdir, "--host", "127.0.0.1", "--port", str(v.port), "--workers", "1",
                          "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"],
                         cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    t0, last = time.monotonic(), None
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < t0 + TIMEOUT:
            v.alive()
            try:
                r = client.get(v.url("/"))
            except httpx.TransportError as e:
                last = repr(e)
                time.sleep(0.1)
                continue
            v.sent += 1
            if r.status_code != 200 or r.content != ROOT_BODY:
                raise BenchError(f"{v.title}: GET / answered {r.status_code} {r.content[:200]!r}")
            v.startup_s = time.monotonic() - t0
            return
    raise BenchError(f"{v.title}: no answer on port {v.port} within {TIMEOUT:g} s ({last}); its output:\n{v.tail()}")


def parse_wrk(out: str) -> Dict[str, Any]:
    """wrk's --latency report: requests/s, latency percentiles and maximum (ms), counts and errors."""
    units, dur = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}, r"([\d.]+)(us|ms|s|m|h)"
    res: Dict[str, Any] = {}
    for line in out.splitlines():
        if m := re.match(r"^\s*(50|75|90|99)%\s+" + dur + r"\s*$", line):
            res[f"p{m[1]}_ms"] = float(m[2]) * units[m[3]]
        elif m := re.match(r"^\s*Latency\s+" + dur + r"\s+" + dur + r"\s+" + dur, line):
            res.update(mean_ms=float(m[1]) * units[m[2]], max_ms=float(m[5]) * units[m[6]])
        elif m := re.match(r"^\s*(\d+) requests in " + dur, line):
            res.update(requests=int(m[1]), seconds=float(m[2]) * units[m[3]] / 1e3)
        elif m := re.match(r"^\s*Requests/sec:\s*([\d.]+)", line):
            res["rps"] = float(m[1])
        elif m := re.match(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", line):
            res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
        elif m := re.match(r"^\s*Non-2xx or 3xx responses: (\d+)", line):
            res["non_2xx_3xx"] = int(m[1])
    return res


def run_wrk(b: c.Bench, v: Variant, seconds: float, during: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """One wrk run on GET /; ``during`` is called once wrk started."""
    v.alive()
    cmd = ["taskset", "-c", str(WRK_CPU), b.args.wrk, "-t1", f"-c{b.args.connections}", f"-d{seconds:g}s",
           "--latency", "--timeout", "10s", v.url("/")]  # 10 s: slow requests stay in the latency figures
    try:
        code, out, err = c.run(cmd, seconds + 60, during)
    except TimeoutError as e:
        raise BenchError(f"{v.title}: {e}") from None
    v.wrk_runs += 1
    res = {**parse_wrk(out), "command": " ".join(cmd)}
    if code != 0 or not {"rps", "p99_ms", "requests"} <= set(res):
        raise BenchError(f"{v.title}: wrk failed (exit status {code}): {res['command']}\n{out.strip()}\n{err.strip()}")
    v.sent += res["requests"]
    if res.get("non_2xx_3xx"):
        b.problem(f"{v.title}: wrk got {res['non_2xx_3xx']} non-2xx/3xx responses; the server's output:\n{v.tail(20)}")
    v.alive()
    return res


def recorded(v: Variant, when: str) -> Dict[str, Any]:
    """http_requests_total{handler="/"} summed over method and status, from /metrics in the text format."""
    import httpx
    with httpx.Client(timeout=TIMEOUT) as client:
        r = client.get(v.url("/metrics"), headers={"accept": ACCEPT["text"]})
    if r.status_code != 200:
        raise BenchError(f"{v.title}: GET /metrics answered {r.status_code}: {r.content[:300]!r}")
    lines = r.content.decode("utf-8", errors="replace").splitlines()
    try:  # the preloaded series would take seconds to parse: count them, parse the lines that matter
        found, _ = c.samples("\n".join(ln for ln in lines if ln.startswith("http_requests_total")) + "\n")
    except Exception as e:
        raise BenchError(f"{v.title}: /metrics does not parse ({e!r})") from None
    got = [x for (name, labels), x in found.items() if name == "http_requests_total" and ("handler", "/") in labels]
    v.checks.append({"when": when, "sent": v.sent, "recorded": sum(got) if got else None, "bytes": len(r.content),
                     "preloaded_series": sum(1 for ln in lines if ln.startswith(PRELOADED + "_total{"))})
    return v.checks[-1]


def check_before(v: Variant, series: int) -> None:
    import httpx
    with httpx.Client(timeout=TIMEOUT) as client:
        for _ in range(CHECK_REQUESTS):
            r = client.get(v.url("/"))
            if r.status_code != 200 or r.content != ROOT_BODY:
                raise BenchError(f"{v.title}: GET / answered {r.status_code} {r.content[:200]!r}")
            v.sent += 1
    if v.instrumented:
        info = recorded(v, "before timing")
        if info["recorded"] != v.sent:
            raise BenchError(f"{v.title}: http_requests_total{{handler=\"/\"}} is {info['recorded']} but {v.sent} "
                             f"requests were sent to GET / (before timing)")
        if v.preloaded and info["preloaded_series"] != series:
            raise BenchError(f"{v.title}: {info['preloaded_series']:,} {PRELOADED}_total series, expected {series:,}")


def check_after(b: c.Bench, v: Variant) -> None:
    """The count lies between the requests completed and that plus those wrk may have left in flight."""
    if not v.instrumented:
        return
    try:
        got, slack = recorded(v, "after timing")["recorded"], b.args.connections * v.wrk_runs
    except Exception as e:
        return b.problem(f"{v.title} (after timing): {e}")
    if got is None or not v.sent <= got <= v.sent + slack:
        b.problem(f"{v.title} (after timing): http_requests_total{{handler=\"/\"}} is {got}, but {v.sent:,} requests "
                  f"completed and at most {slack:,} more could have been in flight")


def scrape_loop(client: Any, url: str, interval: float, seconds: float, accept: str, out: List[Dict]) -> None:
    """GETs ``url`` on ticks 0, interval, 2 * interval, ... before ``seconds``; a scrape that overruns skips the
    ticks it missed (as a ticker would), so scrapes never overlap.  Runs in a thread while wrk runs."""
    t0, k = time.perf_counter(), 0
    while k * interval < seconds:
        time.sleep(max(0.0, t0 + k * interval - time.perf_counter()))
        start = time.perf_counter()
        rec: Dict[str, Any] = {"tick": k, "at": start - t0}
        try:
            r = client.get(url, headers={"accept": accept})
            rec.update(status=r.status_code, bytes=len(r.content), content_type=r.headers.get("content-type", ""))
        except Exception as e:
            rec["error"] = repr(e)
        rec["seconds"] = time.perf_counter() - start
        out.append(rec)
        k = max(k + 1, int((time.perf_counter() - t0) // interval) + 1)


def run_part(b: c.Bench, part: str, variants: List[Variant]) -> None:
    """Part A: a wrk run per variant per round.  B: two, alone and scraped (alone first in even rounds)."""
    import httpx
    args = b.args
    for r in range(args.rounds):
        for v in c.rotated(variants, r):
            for phase in ("alone",) if part == "A" else ("alone", "scraped")[::1 if r % 2 == 0 else -1]:
                scrapes: List[Dict[str, Any]] = []
                client = httpx.Client(timeout=TIMEOUT) if phase == "scraped" else None
                scraper = threading.Thread(target=scrape_loop, daemon=True, args=(client, v.url("/metrics"),
                                           args.scrape_interval, args.duration, ACCEPT[args.scrape_accept], scrapes))
                try:
                    res = run_wrk(b, v, args.duration, scraper.start if client else None)
                finally:
                    if scraper.ident is not None:
                        scraper.join(args.duration + TIMEOUT + 30)
                    if client:
                        client.close()
                if scraper.is_alive():
                    raise BenchError(f"{v.title}: the scraper did not finish in time")
                for s in scrapes:
                    if s.get("status") != 200:
                        b.problem(f"{v.title}: a /metrics scrape under load failed: {s.get('error') or s['status']}")
                ok = [s["seconds"] * 1e3 for s in scrapes if s.get("status") == 200]
                res.update(round=r, phase=phase, scrapes=len(scrapes), scrape_median_ms=c.med(ok))
                v.runs.append(res)
                v.scrapes += [{**s, "round": r} for s in scrapes]
                c.log(f"  {part} round {r + 1}/{args.rounds} {v.key} {phase}: {res['rps']:,.0f} req/s, p99 "
                      f"{res['p99_ms']:.2f} ms" + (f"; {len(ok)} scrapes, median {c.num(c.med(ok))} ms" if client
                                                   else ""))


def summary(v: Variant) -> Dict[str, Any]:
    ok = [x for x in v.scrapes if x.get("status") == 200]
    s: Dict[str, Any] = {f"{phase}_{key}": c.spread([x[key] for x in v.runs if x["phase"] == phase and key in x])
                         for phase in ("alone", "scraped") for key in ("rps", "p99_ms", "p50_ms", "max_ms")}
    return {**s, "scrape_ms": c.spread([x["seconds"] * 1e3 for x in ok]), "scrapes_ok": len(ok),
            "p99_ratio": c.ratio(s["scraped_p99_ms"]["median"], s["alone_p99_ms"]["median"]),
            "scrapes_per_run": [x["scrapes"] for x in v.runs if x["phase"] == "scraped"],
            "scrape_mb": sorted({round(x["bytes"] / 1e6, 1) for x in ok}),
            "content_types": sorted({x.get("content_type", "") for x in ok})}


def preflight(wrk: Optional[str]) -> Optional[str]:
    if not sys.platform.startswith("linux") or shutil.which("taskset") is None:
        return "this benchmark needs Linux with taskset (util-linux)"
    if wrk is None or shutil.which(wrk) is None:
        return "wrk is not installed (apt-get install wrk, or pass --wrk PATH)"
    if not {SERVER_CPU, WRK_CPU} <= os.sched_getaffinity(0):
        return f"CPUs {SERVER_CPU} and {WRK_CPU} must both be available (have {sorted(os.sched_getaffinity(0))})"
    return None


def loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def main(argv: Optional[List[str]] = None) -> int:
    b = c.Bench(__doc__)
    b.option("--rounds", 5, 1, "rounds in each part", minimum=1)
    b.option("--duration", 10.0, 1.0, "seconds per wrk run", minimum=1)
    b.option("--connections", 32, help="wrk connections (wrk runs one thread)", minimum=1)
    b.option("--series", 100_000, 10_000, "label sets preloaded for part B", minimum=1)
    b.option("--scrape-interval", 1.0, help="seconds between scrapes in part B", minimum=0.001)
    b.option("--scrape-accept", "prometheus", choices=tuple(ACCEPT), help="the scraper's Accept header")
    b.option("--part", "both", choices=("both", "throughput", "scrape"), help="run both parts, or only A or B")
    b.option("--wrk", "", help="the wrk binary (default: wrk on PATH)", metavar="PATH")
    args = b.parse(argv)
    args.wrk = args.wrk or shutil.which("wrk")
    problem = preflight(args.wrk)
    if problem:
        print(f"http.py: {'skipped' if args.quick else 'ERROR'}: {problem}")
        return 0 if args.quick else 1
    for mod in ("uvicorn", "uvloop", "httptools", "httpx", "fastapi", "fastprom", PFI):
        __import__(mod)  # a missing package fails here, before anything is started
    os.sched_setaffinity(0, {WRK_CPU})  # this process (and so the scraper thread) stays off the server's CPU
    load_start, wrk_v = loadavg(), c.run([args.wrk, "-v"], 10)
    b.intro(["fastapi", "starlette", "uvicorn", "uvloop", "httptools", "prometheus_client",
             "prometheus-fastapi-instrumentator", "fastprom"], f"uvicorn (1 worker, uvloop, httptools) on CPU "
            f"{SERVER_CPU}; wrk -t1 -c{args.connections} -d{args.duration:g}s --latency on CPU {WRK_CPU}; GET / on "
            f"127.0.0.1; median of {args.rounds} round(s), order rotated each round",
            wrk=" ".join((wrk_v[1] + wrk_v[2]).split()[:2]))
    a = [Variant("bare", "bare FastAPI", APP, False),
         Variant("pfi", "FastAPI + prometheus-fastapi-instrumentator", APP + INSTRUMENT.format(PFI)),
         Variant("fastprom", "FastAPI + fastprom", APP + INSTRUMENT.format("fastprom"))]
    n = f"{args.series:,} series preloaded"
    bb = [Variant("fastprom_preloaded", f"FastAPI + fastprom, {n}",
                  APP + PRELOAD.format("fastprom") + INSTRUMENT.format("fastprom"), preloaded=True),
          Variant("pfi_preloaded", f"FastAPI + prometheus-fastapi-instrumentator, {n}",
                  APP + PRELOAD.format("prometheus_client") + INSTRUMENT.format(PFI), preloaded=True)]
    timed, workdir = [], tempfile.mkdtemp(prefix="fastprom-http-bench-")
    try:
        for part, variants, name in (("A", a, "throughput"), ("B", bb, "scrape")):
            if args.part not in ("both", name):
                continue
            try:
                for v in variants:
                    c.log(f"part {part}: starting {v.title} ...")
                    start_server(v, workdir, args.series)
                    check_before(v, args.series)
                    c.log(f"  up in {v.startup_s:.1f} s; warming up with wrk for {min(args.duration, 2):g} s")
                    run_wrk(b, v, min(args.duration, 2.0))
                if b.problems:
                    raise BenchError("a warm-up failed")
                run_part(b, part, variants)
                timed.append(part)
                for v in variants:
                    check_after(b, v)
            finally:
                for v in variants:
                    c.stop(v.proc)
    except BenchError as e:
        b.problem(str(e))
    except KeyboardInterrupt as e:
        b.problem(f"interrupted ({e}); the servers were stopped")
    except Exception:
        b.problem(f"the benchmark failed:\n{traceback.format_exc()}")
    finally:
        for v in a + bb:
            c.stop(v.proc)
        logs = {v.key: v.tail(200) for v in a + bb if v.log_path}
        shutil.rmtree(workdir, ignore_errors=True)

    sa, sb = {v.key: summary(v) for v in a if "A" in timed}, {v.key: summary(v) for v in bb if "B" in timed}

    def m(s: Dict[str, Any], key: str) -> Optional[float]:
        return s[key]["median"]
    if sa:
        print("A. GET / throughput and latency\n")
        c.table(["variant", "req/s (median)", "min – max", "throughput vs bare", "p99 ms (median)", "min – max",
                 "p99 vs bare", "p50 ms (median)"],
                [[v.title, c.num(m(s, "alone_rps")), c.span(s["alone_rps"]),
                  c.fmt_ratio(c.ratio(m(s, "alone_rps"), m(sa["bare"], "alone_rps"))), c.num(m(s, "alone_p99_ms")),
                  c.span(s["alone_p99_ms"]), c.fmt_ratio(c.ratio(m(s, "alone_p99_ms"), m(sa["bare"], "alone_p99_ms"))),
                  c.num(m(s, "alone_p50_ms"))] for v, s in zip(a, sa.values())])
    if sb:
        print(f"B. GET / p99 latency while /metrics ({args.series:,} preloaded series) is scraped every "
              f"{args.scrape_interval:g} s, Accept: {args.scrape_accept}\n")
        c.table(["variant", "p99 ms, no scraping (median)", "p99 ms, scraped (median)", "p99 ratio scraped / not",
                 "max ms, no scraping / scraped (median)", "req/s no scraping / scraped", "/metrics ms (median)",
                 "/metrics min – max ms", "scrapes", "/metrics MB", "/metrics content type"],
                [[v.title, c.num(m(s, "alone_p99_ms")), c.num(m(s, "scraped_p99_ms")), c.fmt_ratio(s["p99_ratio"]),
                  f"{c.num(m(s, 'alone_max_ms'))} / {c.num(m(s, 'scraped_max_ms'))}",
                  f"{c.num(m(s, 'alone_rps'))} / {c.num(m(s, 'scraped_rps'))}", c.num(m(s, "scrape_ms")),
                  c.span(s["scrape_ms"]), s["scrapes_ok"], " – ".join(map(str, s["scrape_mb"])) or "—",
                  ", ".join(s["content_types"]) or "—"] for v, s in zip(bb, sb.values())])
    checked = [v for v in a + bb if v.checks and v.checks[-1]["when"] == "after timing"]
    if checked:
        print("note: http_requests_total{handler=\"/\"} after timing (requests completed): " + ", ".join(
            f"{v.key} {v.checks[-1]['recorded']:,.0f} ({v.checks[-1]['sent']:,})" for v in checked) + ".")
    errs = {f"{v.key} {k}": n for v in a + bb for x in v.runs for k, n in x.get("socket_errors", {}).items() if n}
    if errs:
        print(f"note: wrk socket errors (requests not in the latency figures): {errs}.")
    for v, s in zip(bb, sb.values()):
        print(f"note: {v.key}: scrapes per run {s['scrapes_per_run']}; p99 per run alone "
              f"{[round(x, 2) for x in s['alone_p99_ms']['samples']]}, scraped "
              f"{[round(x, 2) for x in s['scraped_p99_ms']['samples']]} ms.")
    if timed:
        print("note: seconds from starting uvicorn to the first answer: " + ", ".join(
            f"{v.key} {v.startup_s:.1f}" for v in a + bb if v.startup_s is not None) + f"; load average at the start "
            f"{load_start}, at the end {loadavg()} (above about 2: other work was running).")
    if c.version_of("opentelemetry-api") != "not installed":
        print("note: opentelemetry-api is installed: fastprom looks up the current span for an exemplar per request.")

    def chart() -> List[c.Panel]:
        panels = []
        for key, label in (("alone_rps", "GET / requests/s (higher is better)"),
                           ("alone_p99_ms", "GET / p99 latency, ms (lower is better)")) if sa else ():
            ms = [m(s, key) for s in sa.values()]
            panels.append(c.Panel(label, [v.title.replace(PFI.replace("_", "-"), "PFI") for v in a], {label: ms},
                                  [""] + [f"{x / ms[0]:.2f}x bare" for x in ms[1:]]))
        if sb:
            panels.append(c.Panel("GET / p99 latency, ms (median over rounds)", ["fastprom", "PFI"], {
                "no scraping": [m(s, "alone_p99_ms") for s in sb.values()],
                f"/metrics scraped every {args.scrape_interval:g} s": [m(s, "scraped_p99_ms") for s in sb.values()]},
                [f"{c.fmt_ratio(s['p99_ratio'])}, /metrics {c.num(m(s, 'scrape_ms'))} ms" for s in sb.values()]))
        return panels
    return b.finish({part: [{"key": v.key, "title": v.title, **s.get(v.key, {}), "runs": v.runs, "scrapes": v.scrapes,
                             "checks": v.checks, "requests_completed": v.sent} for v in vs]
                     for part, vs, s in (("throughput", a, sa), ("scrape_under_load", bb, sb))}
                    | {"load_average_start": load_start, "server_logs": logs}, chart if timed else None)


if __name__ == "__main__":
    sys.exit(main())
