#!/usr/bin/env python3
"""HTTP benchmark: FastAPI metrics over real HTTP, with uvicorn and wrk on 127.0.0.1.

Run from anywhere with an interpreter that has fastprom, fastapi, uvicorn
(with uvloop and httptools), httpx, prometheus_client and
prometheus-fastapi-instrumentator installed, on a Linux machine with at least
two CPUs, ``taskset`` and ``wrk`` (``apt-get install wrk``)::

    python benchmarks/http.py            # full run: 5 rounds of 10 s per variant (~7 min)
    python benchmarks/http.py --quick    # smoke run: 2 rounds of 3 s (~1 min, rough numbers)
    python benchmarks/http.py --json out.json --chart out.png

Every variant is its own uvicorn process (1 worker, ``--loop uvloop --http
httptools``, log level warning, no access log) pinned to CPU 0 with ``taskset
-c 0``; wrk (``-t1 -c32 --latency``) is pinned to CPU 1 with ``taskset -c 1``.
Each app is generated into a temporary directory and serves ``GET /`` (an
``async def`` returning a small dict).

Part A, throughput and latency of ``GET /``: bare FastAPI, FastAPI +
prometheus-fastapi-instrumentator (``Instrumentator().instrument(app)
.expose(app)``) and FastAPI + fastprom (the same line with fastprom's
``Instrumentator``).  Every round runs wrk once against each variant (order
rotated each round); the figures are the medians over the rounds of wrk's
requests/s and of the 99% line of its latency distribution, and the ratios of
those medians to the bare app's.

Part B, scrape under load: the fastprom and the prometheus-fastapi-instrumentator
variants again, each with a counter of 100,000 label sets created at start-up in
the default registry (a fastprom ``Counter`` / a prometheus_client ``Counter``).
Every round runs wrk on ``GET /`` twice per variant: once alone and once while
a scraper (a Python loop with httpx, in a subprocess pinned to CPU 1) GETs
``/metrics`` every second; the figures are the medians of the p99 latency of
``GET /`` with and without the scraping, their ratio, and the median
``/metrics`` response time.

Before timing, each instrumented server must have counted the requests sent to
it: ``http_requests_total{handler="/"}`` in its ``/metrics`` (summed over
method and status) must equal them.  After timing it must lie between the
requests wrk reported and that plus the connections wrk may have left in
flight.  A failed check or an error exits with status 1.  Timings are printed,
never asserted.

(This file is called ``http.py``, which would shadow the standard library's
``http`` package for anything imported from this directory; it removes its own
directory from ``sys.path`` before importing anything else, and loads the shared
helpers of ``_common.py`` by their path.)
"""
import os
import sys

_HERE = os.path.dirname(os.path.realpath(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.realpath(os.path.abspath(p or os.getcwd())) != _HERE]
for _name in [n for n in sys.modules if n == "http" or n.startswith("http.")]:
    _mod = sys.modules[_name]
    if os.path.dirname(os.path.realpath(getattr(_mod, "__file__", None) or "/")) == _HERE:  # pragma: no cover
        del sys.modules[_name]

import importlib.util  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Tuple  # noqa: E402

import httpx  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

# The helpers shared with the other benchmarks, loaded by their path: this directory is off sys.path (see above).
if "_common" not in sys.modules:  # it is when another benchmark imported prometheus_client, and so this file
    _spec = importlib.util.spec_from_file_location("_common", os.path.join(_HERE, "_common.py"))
    assert _spec is not None and _spec.loader is not None
    sys.modules["_common"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["_common"])

from _common import (add_output_options, environment, header_line, log, make_parser, print_intro,  # noqa: E402
                     print_problem_list, pyplot, rotated, save_chart, version_of, write_json)
from _common import median_or_none as med  # noqa: E402

SERVER_CPU = "0"
WRK_CPU = "1"
ROOT_BODY = b'{"message":"hello"}'
CHECK_REQUESTS = 200  # requests sent with httpx before the first count check
STARTUP_TIMEOUT = 60.0  # seconds for a server to answer GET / (100,000 prometheus_client series take ~1 s)
HTTP_TIMEOUT = 60.0  # seconds for one request of ours (a /metrics of 100,000 series included)
WRK_TIMEOUT = "10s"  # wrk's per-request timeout (its default, 2 s, would drop slow requests from the latency)
PRELOADED = "bench_preloaded"
# What Prometheus 2.x sends: fastprom answers OpenMetrics, prometheus-fastapi-instrumentator
# always answers the text format.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
TEXT_ACCEPT = "text/plain;version=0.0.4"


# --------------------------------------------------------------------------- environment

def wrk_version(wrk: str) -> str:
    try:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        first = (out.stdout or out.stderr).strip().splitlines()
        return first[0].replace("Copyright (C) 2012 Will Glozer", "").strip() if first else "unknown"
    except Exception as e:
        return f"unknown ({e!r})"


def http_environment(wrk: str) -> Dict[str, Any]:
    def version(dist: str) -> str:
        return version_of(dist, default="not installed")

    return environment({
        "fastapi": version("fastapi"),
        "starlette": version("starlette"),
        "uvicorn": version("uvicorn"),
        "uvloop": version("uvloop"),
        "httptools": version("httptools"),
        "httpx": version("httpx"),
        "prometheus_client": version("prometheus_client"),
        "prometheus_fastapi_instrumentator": version("prometheus-fastapi-instrumentator"),
        "fastprom": version("fastprom"),
        "opentelemetry_api": version("opentelemetry-api"),
        "wrk": wrk_version(wrk),
    })


# --------------------------------------------------------------------------- the apps

APP_COMMON = '''\
import os
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root():
    return {"message": "hello"}
'''

APP_PFI = '''
from prometheus_fastapi_instrumentator import Instrumentator

Instrumentator().instrument(app).expose(app)
'''

APP_FASTPROM = '''
from fastprom import Instrumentator

Instrumentator().instrument(app).expose(app)
'''

PRELOAD_FASTPROM = '''
import fastprom

PRELOADED = fastprom.Counter("%(name)s", "A counter preloaded with many label sets.", ["key"])
for _i in range(int(os.environ["BENCH_SERIES"])):
    PRELOADED.labels("k%%06d" %% _i).inc()
''' % {"name": PRELOADED}

PRELOAD_PROMETHEUS_CLIENT = '''
import prometheus_client

PRELOADED = prometheus_client.Counter("%(name)s", "A counter preloaded with many label sets.", ["key"])
for _i in range(int(os.environ["BENCH_SERIES"])):
    PRELOADED.labels("k%%06d" %% _i).inc()
''' % {"name": PRELOADED}


@dataclass
class Variant:
    key: str
    title: str
    source: str
    instrumented: bool
    preloaded: bool = False
    port: int = 0
    proc: Optional[subprocess.Popen] = None
    log_path: str = ""
    sent: int = 0  # GET / requests that completed (ours, plus wrk's "requests")
    wrk_runs: int = 0  # wrk runs against it (each may leave up to --connections requests in flight)
    samples: List[Dict[str, Any]] = field(default_factory=list)  # part A: one wrk result per round
    alone: List[Dict[str, Any]] = field(default_factory=list)  # part B: wrk without scraping
    scraped: List[Dict[str, Any]] = field(default_factory=list)  # part B: wrk with scraping
    scrapes: List[Dict[str, Any]] = field(default_factory=list)  # part B: every /metrics scrape
    checks: List[Dict[str, Any]] = field(default_factory=list)
    startup_seconds: Optional[float] = None
    metrics_bytes_text: Optional[int] = None


def part_a_variants() -> List[Variant]:
    return [
        Variant("bare", "bare FastAPI", APP_COMMON, False),
        Variant("pfi", "FastAPI + prometheus-fastapi-instrumentator", APP_COMMON + APP_PFI, True),
        Variant("fastprom", "FastAPI + fastprom", APP_COMMON + APP_FASTPROM, True),
    ]


def part_b_variants(series: int) -> List[Variant]:
    n = f"{series:,}"
    return [
        Variant("fastprom_preloaded", f"FastAPI + fastprom, {n} series preloaded",
                APP_COMMON + PRELOAD_FASTPROM + APP_FASTPROM, True, True),
        Variant("pfi_preloaded", f"FastAPI + prometheus-fastapi-instrumentator, {n} series preloaded",
                APP_COMMON + PRELOAD_PROMETHEUS_CLIENT + APP_PFI, True, True),
    ]


# --------------------------------------------------------------------------- processes

class BenchError(Exception):
    """A problem that stops the benchmark; the message says what went wrong."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip() or "(empty)"
    except OSError as e:
        return f"(cannot read {path}: {e})"


def start_server(v: Variant, workdir: str, series: int) -> None:
    module = f"bench_app_{v.key}"
    with open(os.path.join(workdir, module + ".py"), "w", encoding="utf-8") as f:
        f.write(v.source)
    v.port = free_port()
    v.log_path = os.path.join(workdir, module + ".log")
    env = dict(os.environ, BENCH_SERIES=str(series), PYTHONUNBUFFERED="1")
    for var in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "FASTPROM_MULTIPROC_DIR", "ENABLE_METRICS"):
        env.pop(var, None)
    cmd = ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "uvicorn", f"{module}:app",
           "--app-dir", workdir, "--host", "127.0.0.1", "--port", str(v.port), "--workers", "1",
           "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"]
    with open(v.log_path, "wb") as log:
        v.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.monotonic()
    deadline = t0 + STARTUP_TIMEOUT
    last: Optional[str] = None
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if v.proc.poll() is not None:
                raise BenchError(f"{v.title}: uvicorn exited with status {v.proc.returncode} while starting; "
                                 f"its output:\n{tail(v.log_path)}")
            try:
                r = client.get(url(v, "/"))
                v.sent += 1
                if r.status_code != 200 or r.content != ROOT_BODY:
                    raise BenchError(f"{v.title}: GET / answered {r.status_code} {r.content[:200]!r}, "
                                     f"expected 200 {ROOT_BODY!r}")
                v.startup_seconds = time.monotonic() - t0
                return
            except httpx.TransportError as e:
                last = repr(e)
                time.sleep(0.1)
    raise BenchError(f"{v.title}: no answer on port {v.port} within {STARTUP_TIMEOUT:g} s (last error: {last}); "
                     f"uvicorn's output:\n{tail(v.log_path)}")


def stop_process(proc: Optional[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, to the process group of a child we started in its own session."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def ensure_alive(v: Variant) -> None:
    if v.proc is None or v.proc.poll() is not None:
        code = None if v.proc is None else v.proc.returncode
        raise BenchError(f"{v.title}: the uvicorn process is gone (exit status {code}); its output:\n"
                         f"{tail(v.log_path)}")


def url(v: Variant, path: str) -> str:
    return f"http://127.0.0.1:{v.port}{path}"


# --------------------------------------------------------------------------- wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"


def _ms(number: str, unit: str) -> float:
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> Dict[str, Any]:
    """wrk's --latency report: requests/s, the latency percentiles (ms), counts and errors."""
    res: Dict[str, Any] = {"percentiles_ms": {}}
    for line in out.splitlines():
        m = re.match(r"^\s*(50|75|90|99)%\s+" + _DURATION + r"\s*$", line)
        if m:
            res["percentiles_ms"][m.group(1)] = _ms(m.group(2), m.group(3))
            continue
        m = re.match(r"^\s*Latency\s+" + _DURATION + r"\s+" + _DURATION + r"\s+" + _DURATION, line)
        if m:
            res["mean_ms"] = _ms(m.group(1), m.group(2))
            res["stdev_ms"] = _ms(m.group(3), m.group(4))
            res["max_ms"] = _ms(m.group(5), m.group(6))
            continue
        m = re.match(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", line)
        if m:
            res["requests"] = int(m.group(1))
            res["seconds"] = _ms(m.group(2), m.group(3)) / 1e3
            continue
        m = re.match(r"^\s*Requests/sec:\s*([\d.]+)", line)
        if m:
            res["rps"] = float(m.group(1))
            continue
        m = re.match(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", line)
        if m:
            res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
            continue
        m = re.match(r"^\s*Non-2xx or 3xx responses: (\d+)", line)
        if m:
            res["non_2xx_3xx"] = int(m.group(1))
    res["p99_ms"] = res["percentiles_ms"].get("99")
    res["p50_ms"] = res["percentiles_ms"].get("50")
    return res


def wrk_cmd(wrk: str, target: str, seconds: float, connections: int) -> List[str]:
    return ["taskset", "-c", WRK_CPU, wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
            "--timeout", WRK_TIMEOUT, target]


def run_wrk(v: Variant, wrk: str, seconds: float, connections: int, problems: List[str],
            during: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """One wrk run on GET /; ``during`` is called right after wrk started."""
    ensure_alive(v)
    cmd = wrk_cmd(wrk, url(v, "/"), seconds, connections)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        if during is not None:
            during()
        out, err = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        stop_process(proc, 2.0)
        raise BenchError(f"{v.title}: wrk did not finish within {seconds + 60:g} s: {' '.join(cmd)}")
    finally:
        stop_process(proc, 2.0)
    v.wrk_runs += 1
    res = parse_wrk(out)
    res["command"] = " ".join(cmd)
    if proc.returncode != 0 or res.get("rps") is None or res.get("p99_ms") is None or "requests" not in res:
        raise BenchError(f"{v.title}: wrk failed (exit status {proc.returncode}): {' '.join(cmd)}\n"
                         f"stdout:\n{out.strip()}\nstderr:\n{err.strip()}")
    v.sent += res["requests"]
    if res.get("non_2xx_3xx"):
        problems.append(f"{v.title}: wrk got {res['non_2xx_3xx']} non-2xx/3xx responses to GET / "
                        f"({' '.join(cmd)}); uvicorn's output:\n{tail(v.log_path, 20)}")
    ensure_alive(v)
    return res


# --------------------------------------------------------------------------- checks

def requests_recorded(v: Variant) -> Tuple[Optional[float], Dict[str, Any]]:
    """``http_requests_total{handler="/"}`` summed over method and status, from the
    server's /metrics in the text format; also what else the scrape showed."""
    info: Dict[str, Any] = {}
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        r = client.get(url(v, "/metrics"), headers={"accept": TEXT_ACCEPT})
    text = r.content.decode("utf-8", errors="replace")
    info["bytes"] = len(r.content)
    if r.status_code != 200:
        raise BenchError(f"{v.title}: GET /metrics answered {r.status_code}: {text[:300]!r}")
    if v.preloaded:
        # 100,000 series take seconds to parse: parse the lines that matter, count the others.
        lines = text.splitlines()
        info["preloaded_series"] = sum(1 for ln in lines if ln.startswith(PRELOADED + "_total{"))
        text = "\n".join(ln for ln in lines if ln.startswith("http_requests_total")) + "\n"
    total: Optional[float] = None
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "http_requests_total" and s.labels.get("handler") == "/":
                    total = (total or 0.0) + s.value
    except Exception as e:
        raise BenchError(f"{v.title}: /metrics does not parse ({e!r}); it begins {text[:300]!r}")
    if total is None:
        info["http_requests_total_lines"] = [ln for ln in text.splitlines()
                                             if ln.startswith("http_requests_total")][:10]
    return total, info


def check_before(v: Variant, series: int) -> None:
    """Sends CHECK_REQUESTS requests to GET /, then the count must match exactly."""
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        for _ in range(CHECK_REQUESTS):
            r = client.get(url(v, "/"))
            if r.status_code != 200 or r.content != ROOT_BODY:
                raise BenchError(f"{v.title}: GET / answered {r.status_code} {r.content[:200]!r}")
            v.sent += 1
    if not v.instrumented:
        return
    total, info = requests_recorded(v)
    v.metrics_bytes_text = info["bytes"]
    v.checks.append({"when": "before timing", "sent": v.sent, "recorded": total, **info})
    if total is None:
        raise BenchError(f"{v.title}: /metrics has no http_requests_total sample with handler=\"/\" after "
                         f"{v.sent} requests to GET /; its http_requests_total lines: "
                         f"{info.get('http_requests_total_lines')}")
    if total != v.sent:
        raise BenchError(f"{v.title}: http_requests_total{{handler=\"/\"}} is {total:g} but {v.sent} requests "
                         f"were sent to GET / (before timing)")
    if v.preloaded and info["preloaded_series"] != series:
        raise BenchError(f"{v.title}: /metrics shows {info['preloaded_series']:,} {PRELOADED}_total series, "
                         f"expected {series:,}")


def check_after(v: Variant, connections: int) -> List[str]:
    """After wrk runs the count lies in [completed, completed + requests possibly left in flight]."""
    if not v.instrumented:
        return []
    try:
        total, info = requests_recorded(v)
    except Exception as e:
        return [f"{v.title} (after timing): {e}"]
    slack = connections * v.wrk_runs
    v.checks.append({"when": "after timing", "sent": v.sent, "in_flight_allowance": slack, "recorded": total,
                     **info})
    if total is None:
        return [f"{v.title} (after timing): no http_requests_total sample with handler=\"/\""]
    if not v.sent <= total <= v.sent + slack:
        return [f"{v.title} (after timing): http_requests_total{{handler=\"/\"}} is {total:,.0f}, but "
                f"{v.sent:,} requests to GET / completed (wrk's counts and ours), and at most {slack:,} more "
                f"could have been left in flight by {v.wrk_runs} wrk runs of {connections} connections"]
    return []


# --------------------------------------------------------------------------- the scraper

SCRAPER = r'''
import json, sys, time
import httpx

url, interval, duration, accept = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
headers = {"accept": accept} if accept else {}
out = []
with httpx.Client(timeout=httpx.Timeout(%(timeout)r)) as client:
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit(3)
    t0 = time.perf_counter()
    k = 0
    while k * interval < duration:  # scrapes start on ticks 0, interval, 2 * interval, ... before duration
        delay = t0 + k * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        rec = {"tick": k, "at": start - t0}
        try:
            r = client.get(url, headers=headers)
            rec.update(seconds=time.perf_counter() - start, status=r.status_code, bytes=len(r.content),
                       content_type=r.headers.get("content-type", ""))
        except Exception as e:
            rec.update(seconds=time.perf_counter() - start, error=repr(e))
        out.append(rec)
        # A scrape that overran skips the ticks it missed, as a ticker would; scrapes never overlap.
        k = max(k + 1, int((time.perf_counter() - t0) // interval) + 1)
print(json.dumps(out), flush=True)
''' % {"timeout": HTTP_TIMEOUT}


class Scraper:
    """The scraper subprocess, pinned to the wrk CPU, started before wrk and released with ``go``."""

    def __init__(self, workdir: str, v: Variant, interval: float, seconds: float, accept: str) -> None:
        path = os.path.join(workdir, "scraper.py")
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(SCRAPER)
        self.v = v
        self.seconds = seconds
        self.proc = subprocess.Popen(
            ["taskset", "-c", WRK_CPU, sys.executable, path, url(v, "/metrics"), str(interval), str(seconds), accept],
            cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import selectors
        sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout=30)
        sel.close()
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            stop_process(self.proc, 2.0)
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise BenchError(f"{self.v.title}: the scraper did not start (got {line!r}); stderr:\n{err.strip()}")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self) -> List[Dict[str, Any]]:
        try:
            out, err = self.proc.communicate(timeout=self.seconds + HTTP_TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{self.v.title}: the scraper did not finish in time")
        finally:
            stop_process(self.proc, 2.0)
        if self.proc.returncode != 0:
            raise BenchError(f"{self.v.title}: the scraper exited with status {self.proc.returncode}; "
                             f"stderr:\n{err.strip()}")
        try:
            return json.loads(out.strip().splitlines()[-1])
        except Exception:
            raise BenchError(f"{self.v.title}: the scraper's output is not JSON: {out[-500:]!r}\n{err.strip()}")

    def abandon(self) -> None:
        stop_process(self.proc, 2.0)


# --------------------------------------------------------------------------- the runs

def run_part_a(variants: List[Variant], wrk: str, rounds: int, seconds: float, connections: int,
               log: Callable[[str], None], problems: List[str]) -> None:
    for r in range(rounds):
        order = rotated(variants, r)
        log(f"  A round {r + 1}/{rounds}: " + ", ".join(v.key for v in order))
        for v in order:
            res = run_wrk(v, wrk, seconds, connections, problems)
            res["round"] = r
            v.samples.append(res)
            log(f"    {v.key}: {res['rps']:,.0f} req/s, p99 {res['p99_ms']:.2f} ms")


def run_part_b(variants: List[Variant], wrk: str, rounds: int, seconds: float, connections: int,
               interval: float, accept: str, workdir: str, log: Callable[[str], None],
               problems: List[str]) -> None:
    for r in range(rounds):
        order = rotated(variants, r)
        phases = (False, True) if r % 2 == 0 else (True, False)
        log(f"  B round {r + 1}/{rounds}: " + ", ".join(v.key for v in order)
            + (" (alone, then scraped)" if not phases[0] else " (scraped, then alone)"))
        for v in order:
            for scraped in phases:
                if not scraped:
                    res = run_wrk(v, wrk, seconds, connections, problems)
                    res["round"] = r
                    v.alone.append(res)
                    log(f"    {v.key} alone:   {res['rps']:,.0f} req/s, p99 {res['p99_ms']:.2f} ms")
                    continue
                scraper = Scraper(workdir, v, interval, seconds, accept)
                try:
                    res = run_wrk(v, wrk, seconds, connections, problems, during=scraper.go)
                    scrapes = scraper.result()
                finally:
                    scraper.abandon()
                res["round"] = r
                for s in scrapes:
                    s["round"] = r
                    if "error" in s or s.get("status") != 200:
                        problems.append(f"{v.title}: a /metrics scrape failed under load: "
                                        f"{s.get('error') or s.get('status')}")
                ok = [s["seconds"] for s in scrapes if s.get("status") == 200]
                res["scrapes"] = len(scrapes)
                scrape_median = med(ok)  # None when no scrape succeeded
                res["scrape_median_ms"] = scrape_median * 1e3 if scrape_median is not None else None
                v.scraped.append(res)
                v.scrapes.extend(scrapes)
                log(f"    {v.key} scraped: {res['rps']:,.0f} req/s, p99 {res['p99_ms']:.2f} ms; "
                    f"{len(scrapes)} scrapes, median {res['scrape_median_ms'] or float('nan'):.1f} ms")


# --------------------------------------------------------------------------- output

def fmt_rps(x: float) -> str:
    return f"{x:,.0f}"


def fmt_ms(x: Optional[float]) -> str:
    return "—" if x is None else (f"{x:,.2f}" if x < 100 else f"{x:,.0f}")


def fmt_ratio(x: Optional[float]) -> str:
    return "—" if x is None else f"{x:.2f}×"


def summary_a(v: Variant) -> Dict[str, Any]:
    rps = [s["rps"] for s in v.samples]
    p99 = [s["p99_ms"] for s in v.samples]
    p50 = [s["p50_ms"] for s in v.samples if s.get("p50_ms") is not None]
    return {"rps_median": med(rps), "rps_min": min(rps), "rps_max": max(rps), "p99_median_ms": med(p99),
            "p99_min_ms": min(p99), "p99_max_ms": max(p99), "p50_median_ms": med(p50)}


def summary_b(v: Variant) -> Dict[str, Any]:
    ok = [s["seconds"] * 1e3 for s in v.scrapes if s.get("status") == 200]
    alone99 = med([s["p99_ms"] for s in v.alone])
    scraped99 = med([s["p99_ms"] for s in v.scraped])
    sizes = sorted({s["bytes"] for s in v.scrapes if s.get("status") == 200})
    types = sorted({s.get("content_type", "") for s in v.scrapes if s.get("status") == 200})
    return {
        "p99_alone_median_ms": alone99, "p99_scraped_median_ms": scraped99,
        "p99_ratio": (scraped99 / alone99) if alone99 and scraped99 is not None else None,
        "p99_alone_all_ms": [s["p99_ms"] for s in v.alone], "p99_scraped_all_ms": [s["p99_ms"] for s in v.scraped],
        "max_alone_median_ms": med([s["max_ms"] for s in v.alone if s.get("max_ms") is not None]),
        "max_scraped_median_ms": med([s["max_ms"] for s in v.scraped if s.get("max_ms") is not None]),
        "rps_alone_median": med([s["rps"] for s in v.alone]), "rps_scraped_median": med([s["rps"] for s in v.scraped]),
        "scrape_median_ms": med(ok), "scrape_min_ms": min(ok) if ok else None, "scrape_max_ms": max(ok) if ok else None,
        "scrapes_ok": len(ok), "scrapes": len(v.scrapes),
        "scrapes_per_run": [s["scrapes"] for s in v.scraped],
        "scrape_bytes": sizes, "scrape_content_types": types,
    }


def markdown_a(variants: List[Variant]) -> str:
    sums = [summary_a(v) for v in variants]
    bare = sums[0]
    lines = ["| variant | req/s (median) | min – max | throughput vs bare | p99 ms (median) | min – max | "
             "p99 vs bare | p50 ms (median) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i, (v, s) in enumerate(zip(variants, sums)):
        vs_rps = "—" if i == 0 else fmt_ratio(s["rps_median"] / bare["rps_median"])
        vs_p99 = "—" if i == 0 else fmt_ratio(s["p99_median_ms"] / bare["p99_median_ms"])
        lines.append(f"| {v.title} | {fmt_rps(s['rps_median'])} | {fmt_rps(s['rps_min'])} – {fmt_rps(s['rps_max'])} | "
                     f"{vs_rps} | {fmt_ms(s['p99_median_ms'])} | {fmt_ms(s['p99_min_ms'])} – "
                     f"{fmt_ms(s['p99_max_ms'])} | {vs_p99} | {fmt_ms(s['p50_median_ms'])} |")
    return "\n".join(lines)


def markdown_b(variants: List[Variant]) -> str:
    lines = ["| variant | p99 ms, no scraping (median) | p99 ms, scraped every 1 s (median) | "
             "p99 ratio scraped / not | max ms, no scraping / scraped (median) | req/s no scraping | req/s scraped | "
             "/metrics ms (median) | /metrics min – max ms | scrapes | /metrics size |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for v in variants:
        s = summary_b(v)
        sizes = s["scrape_bytes"]
        size = "—" if not sizes else (f"{sizes[0] / 1e6:.1f} MB" if len(sizes) == 1
                                      else f"{sizes[0] / 1e6:.1f} – {sizes[-1] / 1e6:.1f} MB")
        lines.append(f"| {v.title} | {fmt_ms(s['p99_alone_median_ms'])} | {fmt_ms(s['p99_scraped_median_ms'])} | "
                     f"{fmt_ratio(s['p99_ratio'])} | {fmt_ms(s['max_alone_median_ms'])} / {fmt_ms(s['max_scraped_median_ms'])} | "
                     f"{fmt_rps(s['rps_alone_median'])} | "
                     f"{fmt_rps(s['rps_scraped_median'])} | {fmt_ms(s['scrape_median_ms'])} | "
                     f"{fmt_ms(s['scrape_min_ms'])} – {fmt_ms(s['scrape_max_ms'])} | {s['scrapes_ok']} | {size} |")
    return "\n".join(lines)


def write_chart(path: str, a: List[Variant], b: List[Variant], header: str) -> None:
    plt = pyplot(path)
    if plt is None:
        return
    panels = (1 if a else 0) * 2 + (1 if b else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.8), squeeze=False)
    axes = list(axes[0])
    colors = {"bare": "#999999", "pfi": "#ff7f0e", "fastprom": "#1f77b4"}
    if a:
        sums = [summary_a(v) for v in a]
        labels = [v.title.replace("FastAPI + ", "+ ").replace("prometheus-fastapi-instrumentator", "PFI")
                  for v in a]
        for ax, key, lo_key, hi_key, unit in ((axes.pop(0), "rps_median", "rps_min", "rps_max",
                                               "requests/s (higher is better)"),
                                              (axes.pop(0), "p99_median_ms", "p99_min_ms", "p99_max_ms",
                                               "p99 latency, ms (lower is better)")):
            m = [s[key] for s in sums]
            err = [[x - s[lo_key] for x, s in zip(m, sums)], [s[hi_key] - x for x, s in zip(m, sums)]]
            ax.bar(range(len(a)), m, yerr=err, capsize=3, color=[colors.get(v.key, "#2ca02c") for v in a])
            ax.set_xticks(range(len(a)))
            ax.set_xticklabels(labels, fontsize=8)
            ax.set_ylabel(unit)
            ax.set_title(f"GET /: {unit.split(' (')[0]} (median, bars min–max)", fontsize=9)
            for i, x in enumerate(m):
                if i:
                    ax.text(i, x, f"{x / m[0]:.2f}× bare", ha="center", va="bottom", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
    if b:
        ax = axes.pop(0)
        sums = [summary_b(v) for v in b]
        labels = ["fastprom" if v.key.startswith("fastprom") else "PFI" for v in b]
        w = 0.38
        xs = range(len(b))
        ax.bar([x - w / 2 for x in xs], [s["p99_alone_median_ms"] for s in sums], w, label="no scraping",
               color="#bbbbbb")
        ax.bar([x + w / 2 for x in xs], [s["p99_scraped_median_ms"] for s in sums], w,
               label="/metrics scraped every 1 s", color="#d62728")
        for x, s in zip(xs, sums):
            ax.text(x + w / 2, s["p99_scraped_median_ms"], f"{fmt_ratio(s['p99_ratio'])}\n/metrics "
                    f"{fmt_ms(s['scrape_median_ms'])} ms", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel("p99 latency of GET /, ms (median over rounds)")
        ax.set_title(f"scrape under load ({b[0].title.split(', ')[-1]})", fontsize=9)
        top = max(s["p99_scraped_median_ms"] or 0 for s in sums)
        ax.set_ylim(0, top * 1.3 if top else 1)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(textwrap.fill(header, 170), fontsize=7)
    save_chart(plt, fig, path)


# --------------------------------------------------------------------------- main

def loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def preflight(wrk: Optional[str]) -> Optional[str]:
    if not sys.platform.startswith("linux"):
        return "this benchmark needs Linux (taskset)"
    if shutil.which("taskset") is None:
        return "taskset is not installed (util-linux)"
    if wrk is None:
        return "wrk is not installed (apt-get install wrk, or pass --wrk PATH)"
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        cpus = set(range(os.cpu_count() or 1))
    if not {int(SERVER_CPU), int(WRK_CPU)} <= cpus:
        return f"CPUs {SERVER_CPU} and {WRK_CPU} must both be available to pin the server and wrk (have {sorted(cpus)})"
    for mod in ("uvicorn", "uvloop", "httptools", "fastapi", "fastprom", "prometheus_fastapi_instrumentator"):
        try:
            __import__(mod)
        except Exception as e:
            return f"cannot import {mod}: {e!r}"
    return None


def main(argv: Optional[List[str]] = None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 3 s (numbers are rough)")
    ap.add_argument("--rounds", type=int, help="rounds, in each part (default 5, 2 with --quick)")
    ap.add_argument("--duration", type=float, help="seconds per wrk run (default 10, 3 with --quick)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument("--series", type=int, default=100_000,
                    help="label sets preloaded for the scrape-under-load part (default 100,000)")
    ap.add_argument("--scrape-interval", type=float, default=1.0, help="seconds between scrapes (default 1)")
    ap.add_argument("--scrape-accept", choices=("prometheus", "text"), default="prometheus",
                    help="the scraper's Accept header: Prometheus's (OpenMetrics preferred; default) or the "
                         "text format only")
    ap.add_argument("--part", choices=("both", "throughput", "scrape"), default="both",
                    help="run only part A (throughput) or part B (scrape under load)")
    ap.add_argument("--wrk", default=None, help="path of wrk (default: wrk on PATH)")
    add_output_options(ap, chart_help="write a PNG chart (needs matplotlib)")
    args = ap.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    seconds = args.duration or (3.0 if args.quick else 10.0)
    if rounds < 1 or seconds < 1 or args.connections < 1 or args.series < 1 or args.scrape_interval <= 0:
        ap.error("--rounds, --connections and --series must be >= 1, --duration >= 1, --scrape-interval > 0")
    accept = PROMETHEUS_ACCEPT if args.scrape_accept == "prometheus" else TEXT_ACCEPT
    wrk = args.wrk or shutil.which("wrk")

    problem = preflight(wrk)
    if problem:
        print(f"ERROR: {problem}")
        return 1
    assert wrk is not None
    # This process (and the scraper it starts) stays off the server's CPU.
    os.sched_setaffinity(0, {int(WRK_CPU)})
    load_start = loadavg()

    env = http_environment(wrk)
    header = header_line(env, f"fastapi {env['fastapi']}", f"starlette {env['starlette']}",
                         f"uvicorn {env['uvicorn']}", f"uvloop {env['uvloop']}", f"httptools {env['httptools']}",
                         f"prometheus_client {env['prometheus_client']}",
                         f"prometheus-fastapi-instrumentator {env['prometheus_fastapi_instrumentator']}",
                         f"fastprom {env['fastprom']}", env["wrk"])
    print_intro(header, f"uvicorn (1 worker, uvloop, httptools, log level warning, no access log) on CPU "
                f"{SERVER_CPU}; wrk -t1 -c{args.connections} -d{seconds:g}s --latency on CPU {WRK_CPU}; GET / on 127.0.0.1; "
                f"median of {rounds} rounds, order rotated each round"
                + (" [--quick: rough numbers]" if args.quick else ""))

    # A SIGTERM/SIGHUP/SIGINT (also when started in the background, where SIGINT is ignored) ends the run
    # through the finally blocks below, so the servers, wrk and the scraper are stopped.
    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, interrupted)

    a = part_a_variants() if args.part in ("both", "throughput") else []
    b = part_b_variants(args.series) if args.part in ("both", "scrape") else []
    problems: List[str] = []
    timed = {"A": False, "B": False}
    workdir = tempfile.mkdtemp(prefix="fastprom-http-bench-")
    try:
        for part, variants in (("A", a), ("B", b)):
            if not variants:
                continue
            try:
                for v in variants:
                    log(f"part {part}: starting {v.title} ...")
                    start_server(v, workdir, args.series)
                    check_before(v, args.series)
                    log(f"  up in {v.startup_seconds:.1f} s; warming up with wrk for {min(seconds, 2):g} s")
                    run_wrk(v, wrk, min(seconds, 2.0), args.connections, problems)
                if problems:
                    raise BenchError("a warm-up failed:\n" + "\n".join(problems))
                if part == "A":
                    run_part_a(variants, wrk, rounds, seconds, args.connections, log, problems)
                else:
                    run_part_b(variants, wrk, rounds, seconds, args.connections, args.scrape_interval, accept,
                               workdir, log, problems)
                timed[part] = True
                for v in variants:
                    problems += check_after(v, args.connections)
            finally:
                for v in variants:
                    stop_process(v.proc)
    except BenchError as e:
        problems.append(str(e))
    except KeyboardInterrupt as e:
        problems.append(f"interrupted ({e}); the servers were stopped")
    except Exception:
        problems.append(f"the benchmark failed:\n{traceback.format_exc()}")
    finally:
        for v in a + b:
            stop_process(v.proc)
        logs = {v.key: tail(v.log_path, 200) for v in a + b if v.log_path}
        shutil.rmtree(workdir, ignore_errors=True)

    if problems:
        print("ERROR: " + ("a check failed or something went wrong; these are the problems:"))
        print_problem_list(problems)
        print()

    if a and timed["A"]:
        print("A. GET / throughput and latency")
        print()
        print(markdown_a(a))
        print()
    if b and timed["B"]:
        print(f"B. GET / p99 latency while /metrics ({args.series:,} preloaded series) is scraped every "
              f"{args.scrape_interval:g} s, Accept: {args.scrape_accept}")
        print()
        print(markdown_b(b))
        print()
    if timed["A"] or timed["B"]:
        checked = [v for v in a + b if v.instrumented and v.checks and v.checks[-1]["when"] == "after timing"]
        if checked and not problems:
            print("note: http_requests_total{handler=\"/\"} matched the requests sent before timing, and after it "
                  "lay within the requests wrk completed plus those it may have left in flight: "
                  + ", ".join(f"{v.key} {v.checks[-1]['recorded']:,.0f} (completed {v.checks[-1]['sent']:,})"
                              for v in checked) + ".")
        errs: Dict[Tuple[str, str], int] = {}
        for v in a + b:
            for s in v.samples + v.alone + v.scraped:
                for kind, n in (s.get("socket_errors") or {}).items():
                    if n:
                        errs[(v.key, kind)] = errs.get((v.key, kind), 0) + n
        if errs:
            print("note: wrk socket errors (requests not in the latency figures): "
                  + ", ".join(f"{k} {kind} {n}" for (k, kind), n in errs.items()) + ".")
        if b and timed["B"]:
            for v in b:
                s = summary_b(v)
                print(f"note: {v.key}: /metrics answered {', '.join(s['scrape_content_types']) or '—'}; "
                      f"scrapes per {seconds:g} s run {s['scrapes_per_run']} (at most "
                      f"{int(-(-seconds // args.scrape_interval))}, fewer when a scrape outlasted the interval); "
                      f"p99 per run alone {[round(x, 2) for x in s['p99_alone_all_ms']]}, scraped "
                      f"{[round(x, 2) for x in s['p99_scraped_all_ms']]} ms.")
        started = [v for v in a + b if v.startup_seconds is not None]
        print("note: seconds from starting uvicorn to the first answer: "
              + ", ".join(f"{v.key} {v.startup_seconds:.1f}" for v in started) + ".")
        print(f"note: load average (1, 5, 15 min) at the start {load_start}, at the end {loadavg()}; the server "
              f"and wrk together keep about 2 CPUs busy, so more than that means other work was running.")
        if env["opentelemetry_api"] != "not installed":
            print(f"note: opentelemetry-api {env['opentelemetry_api']} is installed, so fastprom looks up the "
                  f"current span for an exemplar on each request.")

    if args.json:
        write_json(args.json, {
            "environment": env, "quick": args.quick, "rounds": rounds, "duration_seconds": seconds,
            "connections": args.connections, "series": args.series, "scrape_interval": args.scrape_interval,
            "scrape_accept": accept,
            "throughput": [{"key": v.key, "title": v.title, **(summary_a(v) if v.samples else {}),
                            "runs": v.samples, "checks": v.checks, "requests_completed": v.sent}
                           for v in a],
            "scrape_under_load": [{"key": v.key, "title": v.title, **(summary_b(v) if v.alone else {}),
                                   "runs_alone": v.alone, "runs_scraped": v.scraped, "scrapes_all": v.scrapes,
                                   "checks": v.checks, "requests_completed": v.sent} for v in b],
            "load_average_start": load_start, "load_average_end": loadavg(),
            "server_logs": logs, "problems": problems,
        })
    if args.chart and (timed["A"] or timed["B"]):
        write_chart(args.chart, a if timed["A"] else [], b if timed["B"] else [], header)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
