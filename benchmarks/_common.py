"""What the benchmark scripts share: command line, header, timing, tables, JSON, charts, exposition checks,
in-process ASGI calls and child processes.

Only the standard library is imported at module level (prometheus_client and matplotlib where needed):
memory.py measures processes that import this module, and multiproc_scrape.py's children must set
PROMETHEUS_MULTIPROC_DIR before either metrics library is imported.  Every script imports it first.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import timeit
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

# This directory holds http.py, which would shadow the standard library's `http` (imported by
# prometheus_client, httpx and uvicorn): keep the directory importable, but last on sys.path.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != _HERE] + [_HERE]
MULTIPROC_VARS = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "FASTPROM_MULTIPROC_DIR")


def log(msg: str) -> None:  # progress and tracebacks: stderr; results: stdout
    print(msg, file=sys.stderr, flush=True)


def version_of(dist: str) -> str:
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f
                        if ln.split(":")[0].strip() in ("model name", "Processor", "cpu model", "Hardware"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "unknown"


# --------------------------------------------------------------------------- one run of a script

class Bench:
    """The shared command line (--quick, --json, --chart and the script's options, whose defaults may differ
    with --quick), the header, the problems found and the end of the run.  SIGTERM, SIGHUP and SIGINT raise
    KeyboardInterrupt, so the scripts' finally blocks stop what they started."""

    def __init__(self, doc: Optional[str], chart: bool = True) -> None:
        self.ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
        self.ap.add_argument("--quick", action="store_true",
                             help="smoke run: a few seconds, rough numbers (timings are never asserted)")
        self.ap.add_argument("--json", metavar="PATH", help="write every measurement to this JSON file")
        if chart:
            self.ap.add_argument("--chart", metavar="PATH", help="write a PNG bar chart (needs matplotlib)")
        self.defaults: Dict[str, Tuple[Any, Any, Optional[float]]] = {}
        self.problems: List[str] = []
        self.env: Dict[str, Any] = {}
        self.header = ""

        def interrupted(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, interrupted)

    def option(self, flag: str, full: Any, quick: Any = None, help: str = "", minimum: Optional[float] = None,
               **kw: Any) -> None:
        """An option whose default is ``full``, or ``quick`` with --quick (if given)."""
        quick = full if quick is None else quick
        self.defaults[flag.lstrip("-").replace("-", "_")] = (full, quick, minimum)
        if "choices" not in kw:
            kw.update(type=type(full), metavar=kw.get("metavar", {int: "N", float: "S"}.get(type(full), "VALUE")))
        q = f", {quick} with --quick" if quick != full else ""
        self.ap.add_argument(flag, default=None, help=help + (f" (default {full}{q})" if full != "" else ""), **kw)

    def parse(self, argv: Optional[List[str]] = None) -> argparse.Namespace:
        self.args = args = self.ap.parse_args(argv)
        for dest, (full, quick, minimum) in self.defaults.items():
            if getattr(args, dest) is None:
                setattr(args, dest, quick if args.quick else full)
            if minimum is not None and getattr(args, dest) < minimum:
                self.ap.error(f"--{dest.replace('_', '-')} must be at least {minimum:g}")
        return args

    def intro(self, dists: Sequence[str], details: str, **extra: str) -> None:
        """Prints the header (interpreter, CPU, the versions of ``dists``, ``extra``) and ``details``."""
        self.env = {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
                    "cpu": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    **{d: version_of(d) for d in dists}, **extra,
                    "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        self.header = " | ".join([f"Python {self.env['python']} ({self.env['implementation']})",
                                  f"CPU: {self.env['cpu']} ({self.env['cpus']} logical)",
                                  *(f"{d} {self.env[d]}" for d in dists), *extra.values()])
        print(self.header)
        print(details + (" [--quick: rough numbers]" if self.args.quick else ""), end="\n\n", flush=True)

    def problem(self, text: str) -> None:
        log(f"PROBLEM: {text}")
        self.problems.append(text)

    def finish(self, data: Dict[str, Any], chart: Optional[Callable[[], List["Panel"]]] = None) -> int:
        """Prints the problems, writes the JSON and the chart; returns the exit status (1 if any problem)."""
        if self.problems:
            print(f"\n{len(self.problems)} problem(s) (details and tracebacks on stderr):")
            for p in self.problems:
                lines = p.strip().splitlines() or [""]
                print("  - " + (lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"))
        if self.args.json:
            with open(self.args.json, "w", encoding="utf-8") as out:
                json.dump({"environment": self.env, "options": vars(self.args), "problems": self.problems, **data},
                          out, indent=2, default=str)
            print(f"results written to {self.args.json}")
        if getattr(self.args, "chart", None) and chart is not None:
            bar_chart(self.args.chart, self.header, chart())
        return 1 if self.problems else 0


# --------------------------------------------------------------------------- timing, statistics, output

def calibrate(run: Callable[[int], float], target_ns: float, cap: int = 1 << 30) -> Tuple[int, int]:
    """A count for which ``run(count)`` (the ns taken) lasts about ``target_ns``; also the loops run meanwhile."""
    number, calls = 1, 0
    while True:
        elapsed = run(number)
        calls += number
        if elapsed >= target_ns / 5 or number >= cap:
            return max(1, min(cap, round(number * target_ns / max(elapsed, 1)))), calls
        number *= 10 if elapsed < target_ns / 50 else 2


def timer(stmt: str, ns: Dict[str, Any]) -> Callable[[int], float]:
    """``timeit`` with ``time.perf_counter_ns`` (garbage collection off inside the loop)."""
    return timeit.Timer(stmt, globals=ns, timer=time.perf_counter_ns).timeit


def rotated(items: Sequence[Any], r: int) -> List[Any]:
    """The order of round ``r`` when every round shifts the order by one."""
    k = r % len(items)
    return list(items[k:]) + list(items[:k])


def med(xs: Sequence[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


def spread(samples: Sequence[float]) -> Dict[str, Any]:
    return {"median": med(samples), "min": min(samples, default=None), "max": max(samples, default=None),
            "samples": list(samples)}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def num(x: Optional[float]) -> str:
    """About three significant digits, with thousands separators."""
    if x is None or x != x:
        return "—" if x is None else "error"
    a = abs(x)
    return f"{x:,.0f}" if a >= 100 else f"{x:,.1f}" if a >= 10 else f"{x:,.2f}" if a >= 1 else f"{x:,.3f}"


def fmt_ratio(r: Optional[float]) -> str:
    return "—" if r is None else "error" if r != r else f"{r:,.1f}x" if round(r, 2) >= 10 else f"{r:,.2f}x"


def span(d: Dict[str, Any]) -> str:
    """``min – max`` of a spread()."""
    return f"{num(d['min'])} – {num(d['max'])}"


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    print("| " + " | ".join(head) + " |\n| --- |" + " ---: |" * (len(head) - 1))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")
    print()


class Panel(NamedTuple):
    """A chart panel: horizontal bars, for each group one bar per series (None: no bar), then its note."""
    xlabel: str
    groups: Sequence[str]
    series: Dict[str, Sequence[Optional[float]]]
    notes: Optional[Sequence[str]] = None
    log: bool = False


def bar_chart(path: str, title: str, panels: List[Panel]) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return print(f"matplotlib is not installed: no chart written to {path} (pip install matplotlib)")
    rows = max(len(p.groups) for p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(12, 6 * len(panels)), max(3.5, 0.45 * rows + 2)),
                             squeeze=False)
    for ax, p in zip(axes[0], panels):
        values = [v for vs in p.series.values() for v in vs if v is not None] or [1.0]
        present = [[j for j, vs in enumerate(p.series.values()) if vs[i] is not None] for i in range(len(p.groups))]
        h = 0.8 / max(len(x) for x in present)
        for j, (label, vs) in enumerate(p.series.items()):  # a group's bars are centred on its tick
            bars = [(i + h * (present[i].index(j) - (len(present[i]) - 1) / 2), v) for i, v in enumerate(vs)
                    if v is not None]
            ax.barh([y for y, _ in bars], [v for _, v in bars], height=h, label=label,
                    color=("#1f77b4", "#ff7f0e", "#999999")[j % 3])
        for i, note in enumerate(p.notes or ()):
            top = max([vs[i] for vs in p.series.values() if vs[i] is not None] or [0])
            ax.text(top * 1.15 if p.log else top + max(values) * 0.02, i, note, va="center", fontsize=8)
        if p.log:
            ax.set_xscale("log")
        ax.set_xlim(right=max(values) * (8 if p.log else 1.35))
        ax.set_yticks(range(len(p.groups)))
        ax.set_yticklabels(p.groups, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(p.xlabel)
        ax.grid(axis="x", which="both", alpha=0.3)
        if len(p.series) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(textwrap.fill(title, 150), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"chart written to {path}")


# --------------------------------------------------------------------------- exposition checks

Key = Tuple[str, Tuple[Tuple[str, str], ...]]


def samples(text: str) -> Tuple[Dict[Key, float], int]:
    """Every sample but ``_created`` by (name, sorted labels), parsed with prometheus_client.parser;
    also the number of ``_created`` samples."""
    from prometheus_client.parser import text_string_to_metric_families
    out: Dict[Key, float] = {}
    created = 0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_created"):
                created += 1
            else:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out, created


def diff(got: Dict[Any, float], want: Dict[Any, float], rel: float = 0.0) -> Optional[str]:
    """None if ``got`` holds exactly ``want`` (values within ``rel``), else what differs."""
    missing, extra = [k for k in want if k not in got], [k for k in got if k not in want]
    wrong = [k for k in want if k in got and abs(got[k] - want[k]) > rel * abs(want[k])]
    if not (missing or extra or wrong):
        return None
    eg = f"{wrong[0]} is {got[wrong[0]]!r}, expected {want[wrong[0]]!r}" if wrong else \
        f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
    return f"{len(got):,} samples: {len(missing):,} missing, {len(extra):,} unexpected, {len(wrong):,} wrong; e.g. {eg}"


def http_counter(mod: Any, series: int) -> Any:
    """A registry with one counter of ``series`` label sets: ("GET", "/api/v1/items/<i>") holds i % 7 + 1."""
    reg = mod.CollectorRegistry()
    counter = mod.Counter("bench_http_requests", "HTTP requests.", ("method", "route"), registry=reg)
    for i in range(series):
        counter.labels("GET", f"/api/v1/items/{i}").inc(i % 7 + 1)
    return reg


def check_http_counter(text: str, series: int) -> Tuple[Optional[str], int]:
    """What ``text`` has other than http_counter(series) (None: nothing), and its ``_created`` samples."""
    if not re.search(r"^# TYPE bench_http_requests(_total)? counter$", text, re.M):
        return "no counter bench_http_requests", 0
    got, created = samples(text)
    return diff(got, {("bench_http_requests_total", (("method", "GET"), ("route", f"/api/v1/items/{i}"))):
                      float(i % 7 + 1) for i in range(series)}), created


@contextlib.contextmanager
def created_off(off: bool) -> Iterator[None]:
    """Both libraries' ``_created`` samples switched off inside the block, if ``off`` (restored after)."""
    import fastprom
    import prometheus_client as pc
    mods = [m for m in (pc, fastprom) if hasattr(m, "disable_created_metrics")] if off else []
    was = [getattr(m.metrics, "_use_created", True) for m in mods]
    for m in mods:
        m.disable_created_metrics()
    try:
        yield
    finally:
        for m, on in zip(mods, was):
            if on:
                m.enable_created_metrics()


# --------------------------------------------------------------------------- in-process ASGI

REQUEST = {"type": "http.request", "body": b"", "more_body": False}


def asgi_scope(app: Any, path: str, method: str = "GET", headers: Sequence[Tuple[bytes, bytes]] = ()) -> Dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode("ascii"), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"x"), *headers], "client": ("127.0.0.1", 50000), "server": ("x", 80), "app": app}


async def receive_empty() -> Dict[str, Any]:
    return REQUEST


async def discard(message: Dict[str, Any]) -> None:
    pass


class Captured:
    """An ASGI send() that keeps the status, the headers and body (if ``keep``), and the perf_counter_ns
    of the last body message."""

    def __init__(self, keep: bool = True) -> None:
        self.keep, self.status, self.headers, self.body, self.done_ns = keep, 0, {}, bytearray(), 0

    async def __call__(self, message: Dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if self.keep:
                self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.done_ns = time.perf_counter_ns()
        elif message["type"] == "http.response.start":
            self.status = message["status"]
            if self.keep:
                self.headers = {k.lower(): v for k, v in message.get("headers", [])}


async def asgi_call(app: Any, path: str, method: str = "GET", body: bytes = b"",
                    headers: Sequence[Tuple[bytes, bytes]] = ()) -> Captured:
    hdrs = list(headers) + ([(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
                            if body else [])
    msg = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> Dict[str, Any]:
        return msg
    out = Captured()
    await app(asgi_scope(app, path, method, hdrs), receive, out)
    return out


# --------------------------------------------------------------------------- child processes

def clean_env(**extra: str) -> Dict[str, str]:
    """This environment without either library's multiprocess variables, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if k not in MULTIPROC_VARS}, **extra}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: List[str], **kw: Any) -> subprocess.Popen:
    """A child in its own session, so that stop() reaches everything it started."""
    return subprocess.Popen(cmd, start_new_session=True, **{"stdin": subprocess.DEVNULL, **kw})


def stop(proc: Optional[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, to the process group of a child from start()."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


def run(cmd: List[str], timeout: float, during: Optional[Callable[[], None]] = None,
        **kw: Any) -> Tuple[int, str, str]:
    """Runs ``cmd`` (calling ``during()`` once it started): exit status, stdout, stderr.  Raises TimeoutError
    after ``timeout`` s; the child is stopped in any case."""
    proc = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    try:
        if during is not None:
            during()
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{' '.join(cmd)} did not finish within {timeout:g} s") from None
    finally:
        stop(proc, 2.0)
    return proc.returncode, out, err
