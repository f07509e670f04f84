#!/usr/bin/env python3
"""Multiprocess scrape: fastprom against prometheus_client's multiprocess mode.

Run from anywhere with an interpreter that has both libraries installed::

    python benchmarks/multiproc_scrape.py            # 1,000 and 10,000 series, 50 restarts
    python benchmarks/multiproc_scrape.py --quick    # 1,000 series only, 10 restarts
    python benchmarks/multiproc_scrape.py --json out.json --chart out.png

For each library and each size, a fresh temporary directory is named by
``PROMETHEUS_MULTIPROC_DIR`` in 4 worker processes (``multiprocessing``
"spawn" context; the variable is set in the child before the library is
imported).  Every worker creates the same Counter (2 labels) and Histogram
(1 label, default buckets, a tenth as many series), increments and observes
the same label sets as the others, says it is ready and stays alive.  A
separate scraper process with the same environment renders the scrape:
``fastprom.generate_latest()`` (after creating the same metrics, which maps
the shared store), or for prometheus_client, as its documentation says,
``registry = CollectorRegistry(); MultiProcessCollector(registry);
generate_latest(registry)``.  Both outputs are parsed and checked against the
expected totals before anything is timed.  Then 50 short-lived workers are
started one after another, each creating the metrics, incrementing every
series once and exiting, as restarted workers would; the scrape is checked and
timed again.  Timings are printed, never asserted; a failed check or an error
makes the exit status 1.
"""
from __future__ import annotations

# Neither fastprom nor prometheus_client is imported at module level: spawned
# children import this module first, and both libraries must see
# PROMETHEUS_MULTIPROC_DIR before they are imported.
import gc
import importlib.util
import math
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

# _common.py is loaded by its path, not from sys.path: importing prometheus_client from this directory
# runs http.py as the module `http` (its name shadows the standard library's), which takes this directory
# off sys.path, and the workers spawned after that (the restarts) inherit that sys.path.
_spec = importlib.util.spec_from_file_location(
    "_common", os.path.join(os.path.dirname(os.path.realpath(os.path.abspath(__file__))), "_common.py"))
assert _spec is not None and _spec.loader is not None
sys.modules["_common"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sys.modules["_common"])

from _common import (add_output_options, environment, fmt_ratio, header_line, log, make_parser,  # noqa: E402
                     print_intro, pyplot, save_chart, spread, version_of, write_json)

LIBS: Tuple[str, ...] = ("fastprom", "prometheus_client")
COUNTER = "bench_requests"
COUNTER_LABELS = ("method", "route")
HISTOGRAM = "bench_latency_seconds"
HISTOGRAM_LABELS = ("route",)
#: cycled over the histogram series; each lands in a different default bucket
OBSERVATIONS = (0.003, 0.02, 0.3, 2.0, 7.5)

READY_TIMEOUT = 300.0        # s for the long-lived workers to set up their series
RESTART_TIMEOUT = 300.0      # s for one short-lived worker to run and exit
SCRAPER_TIMEOUT = 600.0      # s for one scraper command
SCRAPER_IDLE_TIMEOUT = 3600.0
WORKER_MAX_LIFETIME = 3600.0  # a worker left behind exits on its own after this
JOIN_TIMEOUT = 10.0


def route(i: int) -> str:
    return f"/api/v1/items/{i}"


def counter_increment(i: int) -> int:
    """What each long-lived worker adds to counter series ``i``."""
    return i % 5 + 1


def histogram_series(series: int) -> int:
    return max(1, series // 10)


def observation(j: int) -> float:
    return OBSERVATIONS[j % len(OBSERVATIONS)]


# --------------------------------------------------------------------------- child processes

def _attach_env(lib: str, directory: str) -> None:
    """Points this (fresh, spawned) process at ``directory``; the library must not be imported yet."""
    if lib in sys.modules:
        raise RuntimeError(f"{lib} was imported before PROMETHEUS_MULTIPROC_DIR was set in this process")
    for key in ("FASTPROM_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        os.environ.pop(key, None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def _make_metrics(mod: Any) -> Tuple[Any, Any]:
    counter = mod.Counter(COUNTER, "Requests handled.", COUNTER_LABELS)
    histogram = mod.Histogram(HISTOGRAM, "Request latency.", HISTOGRAM_LABELS)
    return counter, histogram


def worker_main(lib: str, directory: str, series: int, restart: bool, ready: Any, stop: Any) -> None:
    """A worker: records into every series, says so on ``ready``, then stays
    alive until ``stop`` is set (or, for a restarted worker, exits at once)."""
    try:
        _attach_env(lib, directory)
        import importlib
        mod = importlib.import_module(lib)
        counter, histogram = _make_metrics(mod)
        for i in range(series):
            child = counter.labels("GET", route(i))
            child.inc(1 if restart else counter_increment(i))
        for j in range(histogram_series(series)):
            histogram.labels(route(j)).observe(observation(j))
    except BaseException:
        ready.put(("error", os.getpid(), traceback.format_exc()))
        raise
    ready.put(("done" if restart else "ready", os.getpid(), None))
    if not restart:
        stop.wait(WORKER_MAX_LIFETIME)


def scraper_main(lib: str, directory: str, conn: Any) -> None:
    """Renders scrapes on request: ("render", _) returns the output,
    ("time", loops) the nanoseconds taken by ``loops`` scrapes in a row."""
    try:
        _attach_env(lib, directory)
        if lib == "fastprom":
            import fastprom
            # Creating the metrics maps the shared store; nothing is recorded here.
            _metrics = _make_metrics(fastprom)  # noqa: F841 (kept alive)
            render: Callable[[], bytes] = fastprom.generate_latest
        else:
            from prometheus_client import CollectorRegistry, generate_latest
            from prometheus_client.multiprocess import MultiProcessCollector

            def render() -> bytes:
                registry = CollectorRegistry()
                MultiProcessCollector(registry)
                return generate_latest(registry)
        conn.send(("ready", os.getpid()))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    while conn.poll(SCRAPER_IDLE_TIMEOUT):
        try:
            cmd, arg = conn.recv()
        except EOFError:
            return
        try:
            if cmd == "render":
                conn.send(("ok", render()))
            elif cmd == "time":
                gc.collect()
                t0 = time.perf_counter_ns()
                for _ in range(arg):
                    render()
                conn.send(("ok", time.perf_counter_ns() - t0))
            elif cmd == "stop":
                conn.send(("ok", None))
                return
            else:
                conn.send(("error", f"unknown command {cmd!r}"))
        except BaseException:
            conn.send(("error", traceback.format_exc()))


# --------------------------------------------------------------------------- parent side

class BenchError(Exception):
    """A child failed: the message carries its traceback or exit status."""


class Scraper:
    def __init__(self, ctx: Any, lib: str, directory: str) -> None:
        self.lib = lib
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=scraper_main, args=(lib, directory, child), daemon=True,
                                name=f"scraper-{lib}")
        self.proc.start()
        child.close()  # so that a crash of the scraper reads as EOF here

    def _recv(self, timeout: float, what: str) -> Any:
        if not self.conn.poll(timeout):
            raise BenchError(f"{self.lib} scraper: no answer to {what} within {timeout:g} s")
        try:
            status, value = self.conn.recv()
        except EOFError:
            self.proc.join(JOIN_TIMEOUT)
            raise BenchError(f"{self.lib} scraper died during {what} (exit status {self.proc.exitcode})") from None
        if status == "error":
            raise BenchError(f"{self.lib} scraper raised during {what}:\n{value}")
        return value

    def wait_ready(self) -> None:
        self._recv(READY_TIMEOUT, "start-up")

    def call(self, cmd: str, arg: Any = None) -> Any:
        try:
            self.conn.send((cmd, arg))
        except (BrokenPipeError, OSError) as e:
            raise BenchError(f"{self.lib} scraper is gone (exit status {self.proc.exitcode}): {e}") from None
        return self._recv(SCRAPER_TIMEOUT, repr(cmd))

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.call("stop")
            except BenchError:
                pass
        _stop_process(self.proc)
        self.conn.close()


def _stop_process(proc: Any) -> None:
    proc.join(JOIN_TIMEOUT)
    if proc.is_alive():
        proc.terminate()
        proc.join(JOIN_TIMEOUT)
    if proc.is_alive():
        proc.kill()
        proc.join(JOIN_TIMEOUT)


class Side:
    """One library at one size: its directory, workers and scraper."""

    def __init__(self, ctx: Any, lib: str, series: int) -> None:
        self.ctx, self.lib, self.series = ctx, lib, series
        self.tmp = tempfile.TemporaryDirectory(prefix=f"multiproc_scrape_{lib}_{series}_")
        self.directory = self.tmp.name
        self.ready = ctx.Queue()
        self.stop = ctx.Event()
        self.workers: List[Any] = []
        self.scraper: Optional[Scraper] = None
        self.restarts = 0
        self.restart_wall_s: List[float] = []

    def _message(self, timeout: float) -> Optional[Tuple[str, int, Optional[str]]]:
        try:
            return self.ready.get(timeout=timeout)
        except queue.Empty:
            return None

    def start_workers(self, n: int) -> None:
        for k in range(n):
            p = self.ctx.Process(target=worker_main, name=f"worker-{self.lib}-{k}", daemon=True,
                                 args=(self.lib, self.directory, self.series, False, self.ready, self.stop))
            p.start()
            self.workers.append(p)

    def wait_workers(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = {p.pid for p in self.workers}
        while pending:
            msg = self._message(0.5)
            if msg is not None:
                status, pid, tb = msg
                if status == "error":
                    raise BenchError(f"{self.lib} worker {pid} raised while recording:\n{tb}")
                pending.discard(pid)
                continue
            dead = [p for p in self.workers if p.pid in pending and p.exitcode is not None]
            if dead:
                msg = self._message(1.0)  # a message may still be in flight
                if msg is not None and msg[0] == "error":
                    raise BenchError(f"{self.lib} worker {msg[1]} raised while recording:\n{msg[2]}")
                if msg is not None:
                    pending.discard(msg[1])
                    continue
                raise BenchError(f"{self.lib} worker {dead[0].pid} exited with status {dead[0].exitcode} "
                                 f"before it was ready")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.lib}: {len(pending)} worker(s) not ready after {READY_TIMEOUT:g} s")

    def start_scraper(self) -> None:
        self.scraper = Scraper(self.ctx, self.lib, self.directory)

    def restart_worker(self) -> None:
        """One short-lived worker: records once into every series, then exits."""
        t0 = time.perf_counter()
        p = self.ctx.Process(target=worker_main, name=f"restart-{self.lib}", daemon=True,
                             args=(self.lib, self.directory, self.series, True, self.ready, self.stop))
        p.start()
        p.join(RESTART_TIMEOUT)
        if p.is_alive():
            _stop_process(p)
            raise BenchError(f"{self.lib} restarted worker {p.pid} did not exit within {RESTART_TIMEOUT:g} s")
        msg = self._message(5.0)
        if msg is not None and msg[0] == "error":
            raise BenchError(f"{self.lib} restarted worker {msg[1]} raised while recording:\n{msg[2]}")
        if p.exitcode != 0:
            raise BenchError(f"{self.lib} restarted worker {p.pid} exited with status {p.exitcode}")
        if msg is None or msg[:2] != ("done", p.pid):
            raise BenchError(f"{self.lib} restarted worker {p.pid} exited without reporting ({msg!r})")
        self.restarts += 1
        self.restart_wall_s.append(time.perf_counter() - t0)

    def disk(self) -> Dict[str, int]:
        """Files in the directory, their allocated size (what ``du`` counts) and apparent size."""
        files = du = apparent = 0
        for root, _dirs, names in os.walk(self.directory):
            for name in names:
                st = os.lstat(os.path.join(root, name))
                files += 1
                du += st.st_blocks * 512
                apparent += st.st_size
        return {"files": files, "du_bytes": du, "apparent_bytes": apparent}

    def close(self) -> None:
        self.stop.set()
        if self.scraper is not None:
            self.scraper.close()
        for p in self.workers:
            _stop_process(p)
        self.ready.close()
        self.ready.join_thread()
        self.tmp.cleanup()


# --------------------------------------------------------------------------- checks

Parsed = Dict[str, Dict[Tuple[str, ...], float]]


def parse(text: bytes) -> Tuple[Parsed, int]:
    """The benchmark's samples keyed by kind and labels; also the sample count of everything."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Parsed = {"counter": {}, "bucket": {}, "count": {}, "sum": {}}
    total = 0
    for fam in text_string_to_metric_families(text.decode("utf-8")):
        for s in fam.samples:
            total += 1
            if s.name == COUNTER + "_total":
                out["counter"][(s.labels.get("method", ""), s.labels.get("route", ""))] = s.value
            elif s.name == HISTOGRAM + "_bucket":
                out["bucket"][(s.labels.get("route", ""), repr(float(s.labels.get("le", "nan"))))] = s.value
            elif s.name == HISTOGRAM + "_count":
                out["count"][(s.labels.get("route", ""),)] = s.value
            elif s.name == HISTOGRAM + "_sum":
                out["sum"][(s.labels.get("route", ""),)] = s.value
    return out, total


def expected(series: int, workers: int, restarts: int) -> Dict[str, Any]:
    counter = {("GET", route(i)): float(workers * counter_increment(i) + restarts) for i in range(series)}
    per_series = workers + restarts
    count = {(route(j),): float(per_series) for j in range(histogram_series(series))}
    sums = {(route(j),): per_series * observation(j) for j in range(histogram_series(series))}
    return {"counter": counter, "count": count, "sum": sums, "counter_total": sum(counter.values()),
            "histogram_count_total": sum(count.values())}


def _diff(lib: str, what: str, got: Dict[Any, float], want: Dict[Any, float], close: bool = False) -> List[str]:
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    if close:
        wrong = [k for k in want if k in got and not math.isclose(got[k], want[k], rel_tol=1e-9, abs_tol=1e-9)]
    else:
        wrong = [k for k in want if k in got and got[k] != want[k]]
    if not (missing or extra or wrong):
        return []
    first = wrong[0] if wrong else None
    example = f"; e.g. {first} is {got[first]!r}, expected {want[first]!r}" if first is not None else ""
    return [f"{lib}: {what}: {len(got)} series ({len(missing)} missing, {len(extra)} unexpected, "
            f"{len(wrong)} with wrong values){example}"]


def check(parsed: Dict[str, Parsed], want: Dict[str, Any]) -> List[str]:
    problems: List[str] = []
    for lib, p in parsed.items():
        total = sum(p["counter"].values())
        if total != want["counter_total"]:
            problems.append(f"{lib}: sum of {COUNTER}_total over all label sets is {total:,.0f}, "
                            f"expected {want['counter_total']:,.0f}")
        problems += _diff(lib, f"{COUNTER}_total", p["counter"], want["counter"])
        problems += _diff(lib, f"{HISTOGRAM}_count", p["count"], want["count"])
        problems += _diff(lib, f"{HISTOGRAM}_sum", p["sum"], want["sum"], close=True)
        inf = {(k[0],): v for k, v in p["bucket"].items() if k[1] == "inf"}
        problems += _diff(lib, f'{HISTOGRAM}_bucket{{le="+Inf"}}', inf, want["count"])
    if len(parsed) == 2:
        a, b = (parsed[lib] for lib in LIBS)
        ta, tb = sum(a["counter"].values()), sum(b["counter"].values())
        if ta != tb:
            problems.append(f"the two libraries disagree on the total of {COUNTER}_total: "
                            f"fastprom {ta:,.0f}, prometheus_client {tb:,.0f}")
        if a["bucket"] != b["bucket"]:
            problems += _diff("fastprom vs prometheus_client", f"{HISTOGRAM}_bucket", a["bucket"], b["bucket"])
    return problems


# --------------------------------------------------------------------------- one case

def measure(sides: Dict[str, Side], case: Dict[str, Any], repeats: int, target_ns: float,
            log: Callable[[str], None]) -> None:
    """Checks both scrapes against what the workers recorded, then times them."""
    any_side = next(iter(sides.values()))
    want = expected(any_side.series, len(any_side.workers), any_side.restarts)
    case["expected_counter_total"] = want["counter_total"]
    case["expected_histogram_count_total"] = want["histogram_count_total"]
    parsed: Dict[str, Parsed] = {}
    for lib, side in sides.items():
        assert side.scraper is not None
        out = side.scraper.call("render")
        p, total = parse(out)
        parsed[lib] = p
        entry = case["libs"].setdefault(lib, {})
        entry.update(output_bytes=len(out), output_lines=out.count(b"\n"), output_samples=total,
                     counter_total=sum(p["counter"].values()), **side.disk())
    problems = check(parsed, want)
    case["problems"] += problems
    if problems:
        for problem in problems:
            log(f"CHECK FAILED in {case['case']}: {problem}")
        return
    for lib, side in sides.items():
        assert side.scraper is not None
        one = min(side.scraper.call("time", 1) for _ in range(2))
        case["libs"][lib]["loops"] = max(1, min(1000, math.ceil(target_ns / max(one, 1))))
        case["libs"][lib]["samples_ms"] = []
    libs = list(sides)
    for r in range(repeats):
        for lib in (libs if r % 2 == 0 else libs[::-1]):
            e = case["libs"][lib]
            ns = sides[lib].scraper.call("time", e["loops"])  # type: ignore[union-attr]
            e["samples_ms"].append(ns / e["loops"] / 1e6)
    for lib in libs:
        e = case["libs"][lib]
        e.update(spread(e["samples_ms"], "ms"))
    fp, pc = case["libs"]["fastprom"]["median_ms"], case["libs"]["prometheus_client"]["median_ms"]
    case["ratio"] = pc / fp if fp > 0 else float("nan")


def run_size(ctx: Any, series: int, workers: int, restarts: int, repeats: int, target_ns: float,
             log: Callable[[str], None]) -> List[Dict[str, Any]]:
    hseries = histogram_series(series)
    base = f"{series:,} series, {workers} workers"
    cases: List[Dict[str, Any]] = [
        {"key": f"{series}_workers", "case": base, "series": series, "histogram_series": hseries,
         "workers": workers, "restarts": 0, "libs": {}, "problems": []},
        {"key": f"{series}_restarts", "case": f"{base} + {restarts} restarts", "series": series,
         "histogram_series": hseries, "workers": workers, "restarts": restarts, "libs": {}, "problems": []},
    ]
    sides: Dict[str, Side] = {}
    current = cases[0]
    try:
        for lib in LIBS:
            sides[lib] = Side(ctx, lib, series)
        log(f"[{series:,}] starting {workers} workers per library ...")
        for side in sides.values():
            side.start_workers(workers)
        for side in sides.values():
            side.wait_workers()
            side.start_scraper()
        for side in sides.values():
            side.scraper.wait_ready()  # type: ignore[union-attr]
        log(f"[{series:,}] checking and timing the scrape ...")
        measure(sides, current, repeats, target_ns, log)
        current = cases[1]
        for lib, side in sides.items():
            log(f"[{series:,}] {restarts} short-lived workers for {lib} ...")
            for _ in range(restarts):
                side.restart_worker()
            current["libs"].setdefault(lib, {})["restart_wall_s"] = side.restart_wall_s
        log(f"[{series:,}] checking and timing the scrape after the restarts ...")
        measure(sides, current, repeats, target_ns, log)
    except Exception as e:
        tb = traceback.format_exc()
        log(f"ERROR in {current['case']}:\n{tb}")
        current["error"] = str(e) if isinstance(e, BenchError) else tb
        current["problems"].append(current["error"])
        for c in cases[cases.index(current) + 1:]:
            c["error"] = "not run (an earlier step failed)"
            c["problems"].append(c["error"])
    finally:
        for side in sides.values():
            try:
                side.close()
            except Exception:
                log(f"while cleaning up {side.lib}:\n{traceback.format_exc()}")
    return cases


# --------------------------------------------------------------------------- output

def fmt_ms(ms: float) -> str:
    return f"{ms:,.2f}" if ms >= 1 else f"{ms:,.3f}"


def fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def markdown(cases: List[Dict[str, Any]]) -> str:
    lines = ["| case | fastprom ms | prometheus_client ms | ratio | files: fastprom / prometheus_client "
             "| du: fastprom / prometheus_client |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in cases:
        fp, pc = c["libs"].get("fastprom", {}), c["libs"].get("prometheus_client", {})
        files = f"{fp['files']:,} / {pc['files']:,}" if "files" in fp and "files" in pc else "-"
        du = f"{fmt_bytes(fp['du_bytes'])} / {fmt_bytes(pc['du_bytes'])}" if "du_bytes" in fp and "du_bytes" in pc \
            else "-"
        if "error" in c:
            lines.append(f"| {c['case']} (**error**) | error | error | error | {files} | {du} |")
        elif c["problems"]:
            lines.append(f"| {c['case']} (**check failed**) | - | - | - | {files} | {du} |")
        else:
            lines.append(f"| {c['case']} | {fmt_ms(fp['median_ms'])} | {fmt_ms(pc['median_ms'])} | "
                         f"{fmt_ratio(c['ratio'])} | {files} | {du} |")
    return "\n".join(lines)


def notes(cases: List[Dict[str, Any]]) -> List[str]:
    out = []
    for c in cases:
        if "error" in c or c["problems"]:
            continue
        fp, pc = c["libs"]["fastprom"], c["libs"]["prometheus_client"]
        out.append(f"{c['case']}: min-max ms fastprom {fmt_ms(fp['min_ms'])}-{fmt_ms(fp['max_ms'])} "
                   f"({fp['loops']} scrapes per repeat), prometheus_client {fmt_ms(pc['min_ms'])}-"
                   f"{fmt_ms(pc['max_ms'])} ({pc['loops']} per repeat); output {fp['output_bytes']:,} bytes / "
                   f"{fp['output_samples']:,} samples (fastprom) vs {pc['output_bytes']:,} bytes / "
                   f"{pc['output_samples']:,} samples (prometheus_client); "
                   f"sum of {COUNTER}_total {c['expected_counter_total']:,.0f} in both; "
                   f"fastprom store apparent size {fmt_bytes(fp['apparent_bytes'])} (sparse)")
        walls = {lib: c["libs"][lib].get("restart_wall_s") for lib in LIBS}
        if all(walls.values()):
            out.append(f"{c['case']}: one short-lived worker (spawn, import, record, exit) took "
                       f"{statistics.median(walls['fastprom']) * 1e3:,.0f} ms (fastprom) and "
                       f"{statistics.median(walls['prometheus_client']) * 1e3:,.0f} ms (prometheus_client), median")
    return out


def write_chart(path: str, cases: List[Dict[str, Any]], header: str) -> None:
    plt = pyplot(path)
    if plt is None:
        return
    rows = [c for c in cases if "error" not in c and not c["problems"]]
    if not rows:
        print(f"nothing was timed: no chart written to {path}")
        return
    labels = [c["case"] for c in rows]
    fp = [c["libs"]["fastprom"]["median_ms"] for c in rows]
    pc = [c["libs"]["prometheus_client"]["median_ms"] for c in rows]
    fig, ax = plt.subplots(figsize=(10, 0.8 * len(rows) + 2.2))
    y = list(range(len(rows)))
    h = 0.38
    ax.barh([i - h / 2 for i in y], fp, height=h, label="fastprom", color="#1f77b4")
    ax.barh([i + h / 2 for i in y], pc, height=h, label="prometheus_client (MultiProcessCollector)",
            color="#ff7f0e")
    ax.set_xscale("log")
    ax.set_xlim(left=min(fp + pc) / 4, right=max(fp + pc) * 8)  # room for the ratio labels
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms per scrape (median, log scale; lower is better)")
    ax.set_title(header, fontsize=8)
    for c, i in zip(rows, y):
        x = max(c["libs"]["fastprom"]["median_ms"], c["libs"]["prometheus_client"]["median_ms"])
        ax.text(x * 1.15, i, fmt_ratio(c["ratio"]), va="center", fontsize=8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    save_chart(plt, fig, path)


# --------------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="1,000 series only and 10 restarts")
    ap.add_argument("--restarts", type=int, help="short-lived workers per library (default 50, 10 with --quick)")
    ap.add_argument("--workers", type=int, default=4, help="long-lived workers per library (default 4)")
    ap.add_argument("--repeats", type=int, help="repeats per case (default 7 at 1,000 series, 5 at 10,000)")
    ap.add_argument("--target-seconds", type=float, default=0.05,
                    help="minimum length of one repeat: fast scrapes are run several times in a row and "
                         "averaged (default 0.05)")
    add_output_options(ap, chart_help="write a PNG bar chart (log scale; needs matplotlib)")
    args = ap.parse_args(argv)
    restarts = args.restarts if args.restarts is not None else (10 if args.quick else 50)
    if restarts < 0 or args.workers < 1 or (args.repeats is not None and args.repeats < 1) \
            or args.target_seconds <= 0:
        ap.error("--restarts must be >= 0, --workers and --repeats >= 1, --target-seconds > 0")
    sizes = [(1_000, 7)] if args.quick else [(1_000, 7), (10_000, 5)]
    sizes = [(n, args.repeats or r) for n, r in sizes]

    env = environment({"fastprom": version_of("fastprom"), "prometheus_client": version_of("prometheus_client"),
                       "tmpdir": tempfile.gettempdir()})
    header = header_line(env, f"fastprom {env['fastprom']}", f"prometheus_client {env['prometheus_client']}")
    print_intro(header, f"{args.workers} long-lived workers per library (spawn), each recording into a Counter "
                f"with 2 labels (N series) and a Histogram with 1 label (N/10 series, default buckets); then "
                f"{restarts} short-lived workers each recording once and exiting. ms per scrape, median of "
                + ", ".join(f"{r} repeats at {n:,}" for n, r in sizes)
                + "; ratio = prometheus_client / fastprom" + (" [--quick]" if args.quick else ""))

    ctx = multiprocessing.get_context("spawn")
    cases: List[Dict[str, Any]] = []
    for series, repeats in sizes:
        cases += run_size(ctx, series, args.workers, restarts, repeats, args.target_seconds * 1e9, log)
        gc.collect()

    print(markdown(cases))
    print()
    for n in notes(cases):
        print("note: " + n)
    print("note: fastprom's scrape is its default REGISTRY, which also renders process_* metrics for every live "
          "process attached to the store (read from /proc), python_info and python_gc_*; prometheus_client's "
          "registry holds only the MultiProcessCollector, as its documentation shows.")
    print("note: files and du are those of each library's directory at the time of the scrape "
          "(du = allocated blocks; the fastprom store is one sparse file).")
    problems = [p for c in cases for p in c["problems"]]
    if problems:
        print(f"\n{len(problems)} problem(s): wrong totals or errors (tracebacks are on stderr):")
        for p in problems:
            lines = p.strip().splitlines()
            print("  - " + (lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"))

    if args.json:
        write_json(args.json, {"environment": env, "workers": args.workers, "restarts": restarts,
                               "quick": args.quick, "target_seconds": args.target_seconds, "cases": cases})
    if args.chart:
        write_chart(args.chart, cases, header)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
