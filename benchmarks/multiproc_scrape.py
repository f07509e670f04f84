#!/usr/bin/env python3
"""Multiprocess scrape: fastprom's multiprocess mode against prometheus_client's MultiProcessCollector.

Per library and size (1,000 and 10,000 series) a fresh PROMETHEUS_MULTIPROC_DIR, set in --workers "spawn"
workers before the library is imported; each increments the same N series of a Counter (2 labels) and
observes once into the same N/10 series of a Histogram, then stays alive.  A scraper process times
fastprom.generate_latest(), or CollectorRegistry() + MultiProcessCollector() + generate_latest() as
prometheus_client documents it; again after --restarts short-lived workers recorded once and exited.  Each
scrape is checked against the expected totals before it is timed; a failure makes the exit status 1.
"""
from __future__ import annotations

# Neither library is imported at module level: spawned children import this module first.
import _common as c  # first: it keeps this directory from shadowing the standard library's http

import gc
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

LIBS = ("fastprom", "prometheus_client")
COUNTER, HISTOGRAM = "bench_requests", "bench_latency_seconds"
OBSERVATIONS = (0.003, 0.02, 0.3, 2.0, 7.5)  # each lands in a different default bucket
TIMEOUT = 600.0  # s for any child to answer a command (start-up, recording, a series of scrapes)
LIFETIME = 3600.0  # a child left behind exits on its own after this
JOIN_TIMEOUT = 10.0


def route(i: int) -> str:
    return f"/api/v1/items/{i}"


def hseries(series: int) -> int:
    return max(1, series // 10)


def agent_main(lib: str, directory: str, series: int, scraper: bool, conn: Any) -> None:
    """A worker or the scraper, in a fresh spawned process: points the library at ``directory`` before it is
    imported, creates the two metrics (the fastprom scraper maps the shared store so; it records nothing),
    then answers commands: ("record", restart) records into every series (a restart once each), ("render",
    _) returns one scrape, ("time", n) the ns of n scrapes in a row, ("stop", _) ends the process."""
    try:
        if lib in sys.modules:
            raise RuntimeError(f"{lib} was imported before PROMETHEUS_MULTIPROC_DIR was set in this process")
        for key in c.MULTIPROC_VARS:
            os.environ.pop(key, None)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        import importlib
        mod = importlib.import_module(lib)
        if not scraper or lib == "fastprom":
            counter = mod.Counter(COUNTER, "Requests handled.", ("method", "route"))
            histogram = mod.Histogram(HISTOGRAM, "Request latency.", ("route",))
        if lib == "fastprom":
            render = mod.generate_latest
        else:
            from prometheus_client.multiprocess import MultiProcessCollector

            def render() -> bytes:  # as prometheus_client's documentation shows; all of it is timed
                registry = mod.CollectorRegistry()
                MultiProcessCollector(registry)
                return mod.generate_latest(registry)
        conn.send(("ok", os.getpid()))
    except BaseException:
        return conn.send(("error", traceback.format_exc()))
    while conn.poll(LIFETIME):
        try:
            cmd, arg = conn.recv()
            value = None
            if cmd == "record":
                for i in range(series):
                    counter.labels("GET", route(i)).inc(1 if arg else i % 5 + 1)
                for j in range(hseries(series)):
                    histogram.labels(route(j)).observe(OBSERVATIONS[j % len(OBSERVATIONS)])
            elif cmd == "render":
                value = render()
            elif cmd == "time":
                gc.collect()
                t0 = time.perf_counter_ns()
                for _ in range(arg):
                    render()
                value = time.perf_counter_ns() - t0
            conn.send(("ok", value))
            if cmd == "stop":
                return
        except EOFError:
            return
        except BaseException:
            conn.send(("error", traceback.format_exc()))


class BenchError(Exception):
    pass


class Agent:
    """The parent's end of one agent_main process."""

    def __init__(self, ctx: Any, lib: str, directory: str, series: int, scraper: bool = False) -> None:
        self.what = f"{lib} {'scraper' if scraper else 'worker'}"
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=agent_main, args=(lib, directory, series, scraper, child), daemon=True)
        self.proc.start()
        child.close()  # so that the child's death reads as EOF here

    def send(self, cmd: str, arg: Any = None) -> None:
        try:
            self.conn.send((cmd, arg))
        except OSError as e:
            raise BenchError(f"{self.what} {self.proc.pid} is gone (exit status {self.proc.exitcode}): {e}") from None

    def recv(self, what: str) -> Any:
        try:
            if not self.conn.poll(TIMEOUT):
                raise BenchError(f"{self.what} {self.proc.pid}: no answer to {what} within {TIMEOUT:g} s")
            status, value = self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(JOIN_TIMEOUT)
            raise BenchError(f"{self.what} {self.proc.pid} died during {what} (exit status {self.proc.exitcode})") \
                from None
        if status == "error":
            raise BenchError(f"{self.what} {self.proc.pid} raised during {what}:\n{value}")
        return value

    def call(self, cmd: str, arg: Any = None) -> Any:
        self.send(cmd, arg)
        return self.recv(cmd)

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.send("stop")
            except BenchError:
                pass
        for step in (lambda: None, self.proc.terminate, self.proc.kill):
            if self.proc.is_alive():
                step()
                self.proc.join(JOIN_TIMEOUT)
        self.conn.close()


class Side:
    """One library at one size: its directory, long-lived workers, scraper and restarted workers."""

    def __init__(self, ctx: Any, lib: str, series: int, workers: int) -> None:
        self.ctx, self.lib, self.series = ctx, lib, series
        self.tmp = tempfile.TemporaryDirectory(prefix=f"multiproc_scrape_{lib}_{series}_")
        self.agents = [self.agent() for _ in range(workers)]
        self.restart_wall_s: List[float] = []

    def agent(self, scraper: bool = False) -> Agent:
        return Agent(self.ctx, self.lib, self.tmp.name, self.series, scraper)

    def start(self) -> None:
        """The workers record (all at once), then the scraper starts."""
        workers = list(self.agents)
        for w in workers:
            w.recv("start-up")
            w.send("record", False)
        for w in workers:
            w.recv("record")
        self.scraper = self.agent(scraper=True)
        self.agents.append(self.scraper)
        self.scraper.recv("start-up")

    def call(self, cmd: str, arg: Any = None) -> Any:
        return self.scraper.call(cmd, arg)

    def restart(self) -> None:
        """One short-lived worker: starts, records once into every series, exits."""
        t0 = time.perf_counter()
        a = self.agent()
        try:
            a.recv("start-up")
            a.call("record", True)
            a.call("stop")
            a.proc.join(TIMEOUT)
        finally:
            a.close()
        if a.proc.exitcode != 0:
            raise BenchError(f"{a.what} {a.proc.pid} exited with status {a.proc.exitcode}")
        self.restart_wall_s.append(time.perf_counter() - t0)

    def disk(self) -> Dict[str, int]:
        """Files in the directory, their allocated size (what du counts) and apparent size."""
        st = [os.lstat(os.path.join(root, n)) for root, _, names in os.walk(self.tmp.name) for n in names]
        return {"files": len(st), "du_bytes": sum(s.st_blocks * 512 for s in st),
                "apparent_bytes": sum(s.st_size for s in st)}

    def close(self) -> None:
        for a in self.agents:
            a.close()
        self.tmp.cleanup()


def parse(out: bytes) -> Tuple[Dict[str, Dict[Any, float]], int]:
    """The benchmark's samples by kind (le as a float); also the number of samples of any kind."""
    found, created = c.samples(out.decode())
    p: Dict[str, Dict[Any, float]] = {"counter": {}, "bucket": {}, "count": {}, "sum": {}}
    for (name, labels), v in found.items():
        d = dict(labels)
        if name == COUNTER + "_total":
            p["counter"][(d.get("method"), d.get("route"))] = v
        elif name == HISTOGRAM + "_bucket":
            p["bucket"][(d.get("route"), float(d.get("le", "nan")))] = v
        elif name in (HISTOGRAM + "_count", HISTOGRAM + "_sum"):
            p[name.rsplit("_", 1)[1]][d.get("route")] = v
    return p, len(found) + created


def check(parsed: Dict[str, Dict[str, Dict[Any, float]]], series: int, workers: int, restarts: int) -> List[str]:
    per = workers + restarts
    want = {"counter": {("GET", route(i)): float(workers * (i % 5 + 1) + restarts) for i in range(series)},
            "count": {route(j): float(per) for j in range(hseries(series))},
            "sum": {route(j): per * OBSERVATIONS[j % len(OBSERVATIONS)] for j in range(hseries(series))}}
    problems = []
    for lib, p in parsed.items():
        inf = {k[0]: v for k, v in p["bucket"].items() if k[1] == float("inf")}
        for what, got, exp, rel in (("counter", p["counter"], want["counter"], 0), ('le="+Inf"', inf, want["count"], 0),
                                    ("_count", p["count"], want["count"], 0), ("_sum", p["sum"], want["sum"], 1e-9)):
            if (problem := c.diff(got, exp, rel)) is not None:
                problems.append(f"{lib}: {what}: {problem}")
    fp, pc = parsed["fastprom"], parsed["prometheus_client"]
    if sum(fp["counter"].values()) != sum(pc["counter"].values()) or fp["bucket"] != pc["bucket"]:
        problems.append(f"the two libraries disagree: counter totals {sum(fp['counter'].values()):,.0f} and "
                        f"{sum(pc['counter'].values()):,.0f}, buckets {c.diff(fp['bucket'], pc['bucket'])}")
    return problems


def measure(b: c.Bench, sides: Dict[str, Side], case: Dict[str, Any], repeats: int, target_ns: float) -> None:
    """Checks both scrapes against what the workers recorded, then times them."""
    parsed = {}
    for lib, side in sides.items():
        out = side.call("render")
        parsed[lib], total = parse(out)
        case["libs"][lib].update(output_bytes=len(out), output_samples=total, **side.disk(),
                                 counter_total=sum(parsed[lib]["counter"].values()))
    problems = check(parsed, case["series"], case["workers"], case["restarts"])
    for p in problems:
        b.problem(f"{case['case']}: {p}")
    if problems:
        return
    for lib, side in sides.items():
        case["libs"][lib]["loops"] = c.calibrate(lambda n, s=side: s.call("time", n), target_ns, 1000)[0]
    samples: Dict[str, List[float]] = {lib: [] for lib in sides}
    for r in range(repeats):
        for lib in c.rotated(list(sides), r):
            n = case["libs"][lib]["loops"]
            samples[lib].append(sides[lib].call("time", n) / n / 1e6)
    for lib in sides:
        case["libs"][lib]["ms"] = c.spread(samples[lib])
    case["ratio"] = c.ratio(case["libs"]["prometheus_client"]["ms"]["median"], case["libs"]["fastprom"]["ms"]["median"])


def run_size(b: c.Bench, ctx: Any, series: int, repeats: int) -> List[Dict[str, Any]]:
    args, base = b.args, f"{series:,} series, {b.args.workers} workers"
    cases = [{"case": base + (f" + {r} restarts" if r else ""), "series": series, "workers": args.workers,
              "restarts": r, "libs": {lib: {} for lib in LIBS}} for r in (0, args.restarts)]
    sides: Dict[str, Side] = {}
    current = cases[0]
    try:
        c.log(f"[{series:,}] starting {args.workers} workers per library ...")
        for lib in LIBS:
            sides[lib] = Side(ctx, lib, series, args.workers)
        for side in sides.values():
            side.start()
        c.log(f"[{series:,}] checking and timing the scrape ...")
        measure(b, sides, current, repeats, args.target_seconds * 1e9)
        current = cases[1]
        for lib, side in sides.items():
            c.log(f"[{series:,}] {args.restarts} short-lived workers for {lib} ...")
            for _ in range(args.restarts):
                side.restart()
            current["libs"][lib]["restart_wall_s"] = side.restart_wall_s
        c.log(f"[{series:,}] checking and timing the scrape after the restarts ...")
        measure(b, sides, current, repeats, args.target_seconds * 1e9)
    except Exception as e:
        b.problem(f"{current['case']}: " + (str(e) if isinstance(e, BenchError) else traceback.format_exc()))
    finally:
        for side in sides.values():
            try:
                side.close()
            except Exception:
                c.log(f"while cleaning up {side.lib}:\n{traceback.format_exc()}")
    return cases


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def main(argv: Optional[List[str]] = None) -> int:
    b = c.Bench(__doc__)
    b.option("--restarts", 50, 10, "short-lived workers per library and size", minimum=0)
    b.option("--workers", 4, help="long-lived workers per library", minimum=1)
    b.option("--repeats", 0, help="repeats per case (0: 7 at 1,000 series, 5 at 10,000)", minimum=0)
    b.option("--target-seconds", 0.05, help="minimum length of one repeat (fast scrapes run several times)",
             minimum=1e-6)
    args = b.parse(argv)
    sizes = [(n, args.repeats or r) for n, r in ((1_000, 7), (10_000, 5))][:1 if args.quick else 2]
    b.intro(list(LIBS), f"{args.workers} long-lived workers per library (spawn): a Counter with 2 labels (N series) "
            f"and a Histogram with 1 label (N/10 series); then {args.restarts} short-lived workers recording once "
            f"each. ms per scrape, median of " + ", ".join(f"{r} repeats at {n:,}" for n, r in sizes),
            tmpdir=f"tmp {tempfile.gettempdir()}")
    ctx = multiprocessing.get_context("spawn")
    cases = [case for n, r in sizes for case in run_size(b, ctx, n, r)]
    done = [k for k in cases if "ratio" in k]
    rows = []
    for k in cases:
        fp, pc = k["libs"]["fastprom"], k["libs"]["prometheus_client"]
        files = f"{fp['files']:,} / {pc['files']:,}" if "files" in fp and "files" in pc else "—"
        du = f"{mib(fp['du_bytes'])} / {mib(pc['du_bytes'])}" if "files" in fp and "files" in pc else "—"
        rows.append([k["case"], c.num(fp["ms"]["median"]), c.num(pc["ms"]["median"]), c.fmt_ratio(k["ratio"]), files,
                     du] if k in done else [f"{k['case']} (**check failed or error**)", "—", "—", "—", files, du])
    c.table(["case", "fastprom ms", "prometheus_client ms", "ratio", "files: fastprom / prometheus_client",
             "du: fastprom / prometheus_client"], rows)
    print("ratio: prometheus_client / fastprom (above 1: fastprom is faster); files and du: each library's directory "
          "at the scrape (du = allocated blocks; the fastprom store is one sparse file).")
    for k in done:
        fp, pc = k["libs"]["fastprom"], k["libs"]["prometheus_client"]
        print(f"note: {k['case']}: min – max ms fastprom {c.span(fp['ms'])} ({fp['loops']} scrapes per repeat), "
              f"prometheus_client {c.span(pc['ms'])} ({pc['loops']}); "
              f"output {fp['output_bytes']:,} bytes / {fp['output_samples']:,} samples (fastprom), "
              f"{pc['output_bytes']:,} / {pc['output_samples']:,} (prometheus_client); sum of {COUNTER}_total "
              f"{fp['counter_total']:,.0f} in both; fastprom store apparent size {mib(fp['apparent_bytes'])}")
        if fp.get("restart_wall_s") and pc.get("restart_wall_s"):
            print(f"note: {k['case']}: one short-lived worker (spawn, import, record, exit) took "
                  f"{statistics.median(fp['restart_wall_s']) * 1e3:,.0f} ms (fastprom), "
                  f"{statistics.median(pc['restart_wall_s']) * 1e3:,.0f} ms (prometheus_client), median")
    print("note: fastprom's scrape is its default REGISTRY, which also renders process_* for every live process "
          "attached to the store, python_info and python_gc_*; prometheus_client's holds only the collector.")

    def chart() -> List[c.Panel]:
        return [c.Panel("ms per scrape (median, log scale; lower is better)", [k["case"] for k in done],
                        {"fastprom": [k["libs"]["fastprom"]["ms"]["median"] for k in done],
                         "prometheus_client (MultiProcessCollector)":
                             [k["libs"]["prometheus_client"]["ms"]["median"] for k in done]},
                        [c.fmt_ratio(k["ratio"]) for k in done], log=True)]
    return b.finish({"cases": cases}, chart)


if __name__ == "__main__":
    sys.exit(main())
