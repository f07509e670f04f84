#!/usr/bin/env python3
"""Memory benchmark: bytes per series, fastprom against prometheus_client.

Run from anywhere with an interpreter that has both libraries installed::

    python benchmarks/memory.py            # full run: 3 RSS runs per library per case (~30 s)
    python benchmarks/memory.py --quick    # smoke run: 1 RSS run per library per case
    python benchmarks/memory.py --json out.json --chart out.png

Cases (each library in its own fresh ``CollectorRegistry``):

- a ``Counter`` with the labels ``method`` and ``route``, 10,000 and 100,000
  series (series *i* is ``("GET", "/api/v1/items/<i>")``, incremented once);
- a ``Histogram`` with the default buckets and the label ``route``, 10,000
  series (series *i* is ``("/api/v1/items/<i>",)``, one observation each).

Every measurement runs in a fresh interpreter (this script, started again with
``--child``) that imports only the library measured, creates the registry,
the metric and one warm-up series, runs ``gc.collect()``, takes its baseline,
creates the N series, runs ``gc.collect()`` again and takes the second
reading.  The label strings are made inside the measured loop, so whatever the
library keeps of them counts.  Three readings:

- RSS: ``VmRSS`` from ``/proc/self/status``, after minus before, divided by N;
  the median over ``--runs`` processes.  This is everything the process holds:
  Python objects, malloc'ed memory and, for fastprom, the pages of its store
  (an anonymous memory mapping) that were touched.
- Python heap: ``tracemalloc`` started at the baseline (in a separate process,
  since tracing costs memory of its own), traced bytes after, divided by N.
- fastprom's store: growth of ``registry._store.stats()["used"]`` divided by N
  (the bytes the series and their label text take in the store).

After the second reading the registry is rendered and every series must be
present with its value; a failure (or a crashed child) is printed and makes
the exit status 1.  Nothing about the memory figures is asserted.
"""
from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from _common import (add_output_options, environment, fmt_ratio, header_line, log, make_parser, median_or_none,
                     print_intro, print_problem_list, pyplot, save_chart, version_of, write_json)

LIBS = ("fastprom", "prometheus_client")
COUNTER = "bench_http_requests"
HISTOGRAM = "bench_latency_seconds"
OBSERVED = (0.003, 0.02, 0.3, 2.0, 7.5)
CHILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    kind: str  # "counter" or "histogram"
    series: int


CASES: Tuple[Case, ...] = (
    Case("counter_10k", "Counter, 2 labels", "counter", 10_000),
    Case("counter_100k", "Counter, 2 labels", "counter", 100_000),
    Case("histogram_10k", "Histogram, default buckets, 1 label", "histogram", 10_000),
)


# --------------------------------------------------------------------------- child

def vmrss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")


def mapping_rss_bytes(size: int) -> Optional[int]:
    """Resident bytes of the one memory mapping of exactly ``size`` bytes (fastprom's
    store), from ``/proc/self/smaps``; None if there is not exactly one."""
    found: List[int] = []
    current: Optional[int] = None  # the Size of the mapping being read, in bytes
    try:
        with open("/proc/self/smaps", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Size:"):
                    current = int(line.split()[1]) * 1024
                elif line.startswith("Rss:") and current == size:
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


def child(lib: str, kind: str, n: int, mode: str) -> Dict[str, Any]:
    import importlib
    import tracemalloc

    mod: Any = importlib.import_module(lib)
    reg = mod.CollectorRegistry()
    metric: Any
    if kind == "counter":
        metric = mod.Counter(COUNTER, "HTTP requests.", ("method", "route"), registry=reg)
        metric.labels("GET", "/warm-up").inc()

        def create(count: int) -> None:
            labels = metric.labels
            for i in range(count):
                labels("GET", f"/api/v1/items/{i}").inc()
    else:
        metric = mod.Histogram(HISTOGRAM, "Latency.", ("route",), registry=reg)
        metric.labels("/warm-up").observe(OBSERVED[0])

        def create(count: int) -> None:
            labels = metric.labels
            for i in range(count):
                labels(f"/api/v1/items/{i}").observe(OBSERVED[i % len(OBSERVED)])

    store = getattr(reg, "_store", None) if lib == "fastprom" else None
    out: Dict[str, Any] = {"lib": lib, "kind": kind, "series": n, "mode": mode}

    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
    stats0 = store.stats() if store is not None else None
    map0 = mapping_rss_bytes(stats0["size"]) if stats0 is not None else None
    rss0 = vmrss_bytes()
    create(n)
    gc.collect()
    rss1 = vmrss_bytes()
    map1 = mapping_rss_bytes(stats0["size"]) if stats0 is not None else None
    if mode == "tracemalloc":
        out["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    stats1 = store.stats() if store is not None else None
    out.update(rss_before=rss0, rss_after=rss1, rss_growth=rss1 - rss0)
    if stats0 is not None and stats1 is not None:
        out.update(store_used_growth=stats1["used"] - stats0["used"],
                   store_series_growth=stats1["series"] - stats0["series"],
                   store_used_after=stats1["used"], store_size=stats1["size"],
                   store_overflowed=stats1["overflowed"])
        if map0 is not None and map1 is not None:
            out["store_resident_growth"] = map1 - map0

    # --- correctness, after the readings: every series is there with its value
    problems: List[str] = []
    text = mod.generate_latest(reg).decode("utf-8")
    if kind == "counter":
        prefix, per = COUNTER + "_total{", 1.0
    else:
        prefix, per = HISTOGRAM + "_count{", 1.0
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
    total = sum(float(ln.rsplit(" ", 1)[1]) for ln in lines)
    if len(lines) != n + 1 or total != per * (n + 1):
        problems.append(f"{lib} {kind} {n:,}: rendered {len(lines):,} {prefix}...}} lines summing to {total:g}, "
                        f"expected {n + 1:,} lines summing to {per * (n + 1):g}")
    if kind == "counter":
        got = reg.get_sample_value(COUNTER + "_total", {"method": "GET", "route": f"/api/v1/items/{n - 1}"})
        if got != 1.0:
            problems.append(f"{lib} counter {n:,}: the last series holds {got!r}, expected 1.0")
    else:
        i = n - 1
        v = OBSERVED[i % len(OBSERVED)]
        got = reg.get_sample_value(HISTOGRAM + "_sum", {"route": f"/api/v1/items/{i}"})
        inf = reg.get_sample_value(HISTOGRAM + "_bucket", {"route": f"/api/v1/items/{i}", "le": "+Inf"})
        if got != v or inf != 1.0:
            problems.append(f"{lib} histogram {n:,}: the last series has _sum {got!r} and +Inf bucket {inf!r}, "
                            f"expected {v!r} and 1.0")
    if store is not None and out.get("store_overflowed"):
        problems.append(f"{lib} {kind} {n:,}: the store overflowed ({out['store_overflowed']} lookups)")
    out["problems"] = problems
    return out


def run_child(lib: str, case: Case, mode: str) -> Dict[str, Any]:
    env = dict(os.environ)
    for var in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "FASTPROM_MULTIPROC_DIR"):
        env.pop(var, None)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", lib, case.kind, str(case.series), mode]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"problems": [f"{lib} {case.key} ({mode}): the child did not finish in {CHILD_TIMEOUT_S} s"]}
    if p.returncode != 0:
        return {"problems": [f"{lib} {case.key} ({mode}): the child exited with status {p.returncode}:\n"
                             + (p.stderr.strip() or p.stdout.strip())]}
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"problems": [f"{lib} {case.key} ({mode}): unreadable child output {p.stdout[-300:]!r} "
                             f"(stderr {p.stderr[-300:]!r})"]}


# --------------------------------------------------------------------------- parent

def run_case(case: Case, runs: int, log: Any) -> Dict[str, Any]:
    result: Dict[str, Any] = {"key": case.key, "case": case.title, "series": case.series, "problems": [],
                              "libs": {lib: {"rss_runs": [], "tracemalloc_run": None} for lib in LIBS}}
    for r in range(runs):
        order = LIBS if r % 2 == 0 else LIBS[::-1]
        for lib in order:
            log(f"  {case.title}, {case.series:,} series: {lib}, RSS run {r + 1}/{runs} ...")
            out = run_child(lib, case, "rss")
            result["problems"] += out.get("problems", [])
            if "rss_growth" in out:
                result["libs"][lib]["rss_runs"].append(out)
    for lib in LIBS:
        log(f"  {case.title}, {case.series:,} series: {lib}, tracemalloc run ...")
        out = run_child(lib, case, "tracemalloc")
        result["problems"] += out.get("problems", [])
        if "traced_bytes" in out:
            result["libs"][lib]["tracemalloc_run"] = out
    if result["problems"]:
        return result
    n = case.series
    for lib in LIBS:
        e = result["libs"][lib]
        rss = [o["rss_growth"] / n for o in e["rss_runs"]]
        e["rss_per_series"] = statistics.median(rss)
        e["rss_per_series_min"], e["rss_per_series_max"] = min(rss), max(rss)
        e["heap_per_series"] = e["tracemalloc_run"]["traced_bytes"] / n
        if lib == "fastprom":
            used = [o["store_used_growth"] / n for o in e["rss_runs"]]
            e["store_per_series"] = statistics.median(used)
            resident = [o["store_resident_growth"] / n for o in e["rss_runs"] if "store_resident_growth" in o]
            e["store_resident_per_series"] = median_or_none(resident)
    fp, pc = result["libs"]["fastprom"], result["libs"]["prometheus_client"]
    result["rss_ratio"] = pc["rss_per_series"] / fp["rss_per_series"] if fp["rss_per_series"] > 0 else None
    result["heap_ratio"] = pc["heap_per_series"] / fp["heap_per_series"] if fp["heap_per_series"] > 0 else None
    return result


def fmt_b(b: float) -> str:
    return f"{b:,.0f}" if abs(b) >= 10 else f"{b:,.1f}"


def markdown(results: List[Dict[str, Any]]) -> str:
    lines = ["| case | series | fastprom RSS B/series | prometheus_client RSS B/series | ratio | "
             "fastprom Python heap B/series | prometheus_client Python heap B/series | ratio | "
             "fastprom store B/series |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        if r["problems"]:
            lines.append(f"| {r['case']} (**check failed**) | {r['series']:,} | — | — | — | — | — | — | — |")
            continue
        fp, pc = r["libs"]["fastprom"], r["libs"]["prometheus_client"]
        lines.append(f"| {r['case']} | {r['series']:,} | {fmt_b(fp['rss_per_series'])} | "
                     f"{fmt_b(pc['rss_per_series'])} | {fmt_ratio(r['rss_ratio'])} | "
                     f"{fmt_b(fp['heap_per_series'])} | {fmt_b(pc['heap_per_series'])} | "
                     f"{fmt_ratio(r['heap_ratio'])} | {fmt_b(fp['store_per_series'])} |")
    return "\n".join(lines)


def write_chart(path: str, results: List[Dict[str, Any]], header: str) -> None:
    plt = pyplot(path)
    if plt is None:
        return
    rows = [r for r in results if not r["problems"]]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    w = 0.38
    xs = list(range(len(rows)))
    fp = [r["libs"]["fastprom"]["rss_per_series"] for r in rows]
    pc = [r["libs"]["prometheus_client"]["rss_per_series"] for r in rows]
    ax.bar([x - w / 2 for x in xs], fp, width=w, label="fastprom", color="#1f77b4")
    ax.bar([x + w / 2 for x in xs], pc, width=w, label="prometheus_client", color="#ff7f0e")
    for x, r, a, b in zip(xs, rows, fp, pc):
        ax.text(x, max(a, b) * 1.03, fmt_ratio(r["rss_ratio"]), ha="center", fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{r['case']}\n{r['series']:,} series" for r in rows], fontsize=8)
    ax.set_ylabel("RSS growth, bytes per series (median; lower is better)")
    ax.set_title(header, fontsize=7)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save_chart(plt, fig, path)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        try:
            lib, kind, n, mode = argv[1], argv[2], int(argv[3]), argv[4]
            out = child(lib, kind, n, mode)
        except Exception:
            traceback.print_exc()
            return 1
        print(json.dumps(out))
        return 0

    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 RSS run per library per case")
    ap.add_argument("--runs", type=int, help="RSS processes per library per case (default 3, 1 with --quick)")
    add_output_options(ap, chart_help="write a PNG bar chart of the RSS figures (needs matplotlib)",
                       json_help="write every reading to this JSON file")
    args = ap.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    if runs < 1:
        ap.error("--runs must be >= 1")
    if not os.path.exists("/proc/self/status"):
        print("ERROR: /proc/self/status is not available (this benchmark needs Linux)")
        return 1

    env = environment({"fastprom": version_of("fastprom"), "prometheus_client": version_of("prometheus_client")})
    header = header_line(env, f"fastprom {env['fastprom']}", f"prometheus_client {env['prometheus_client']}")
    print_intro(header, f"growth per series in a fresh process per library and case; RSS: median of {runs} "
                f"process(es), Python heap: tracemalloc in one more process" + (" [--quick]" if args.quick else ""))

    results: List[Dict[str, Any]] = []
    for case in CASES:
        try:
            r = run_case(case, runs, log)
        except Exception:
            tb = traceback.format_exc()
            log(f"ERROR in {case.key}:\n{tb}")
            r = {"key": case.key, "case": case.title, "series": case.series, "problems": [tb], "libs": {}}
        for p in r["problems"]:
            log(f"PROBLEM: {p}")
        results.append(r)

    print(markdown(results))
    print()
    print("ratio: prometheus_client / fastprom (above 1: fastprom uses less). RSS: VmRSS growth / series, "
          "everything the process holds (fastprom's store pages included); Python heap: tracemalloc growth / "
          "series (fastprom's store is not on it); store: growth of fastprom's registry._store.stats()['used'] "
          "/ series.")
    for r in results:
        if r["problems"]:
            continue
        fp, pc = r["libs"]["fastprom"], r["libs"]["prometheus_client"]
        fp_runs = ", ".join(f"{o['rss_growth'] / 1024:,.0f}" for o in fp["rss_runs"])
        pc_runs = ", ".join(f"{o['rss_growth'] / 1024:,.0f}" for o in pc["rss_runs"])
        first = fp["rss_runs"][0]
        resident = fp.get("store_resident_per_series")
        resident_text = ("" if resident is None else
                         f"; resident pages of the store mapping grew by {fmt_b(resident)} B/series "
                         f"({resident * r['series'] / 2**20:,.1f} MiB), the rest of fastprom's RSS growth is "
                         f"{fmt_b(fp['rss_per_series'] - resident)} B/series")
        print(f"note: {r['case']}, {r['series']:,} series: RSS growth per run, KiB: fastprom {fp_runs}; "
              f"prometheus_client {pc_runs}. fastprom: Python heap + store used = "
              f"{fmt_b(fp['heap_per_series'] + fp['store_per_series'])} B/series{resident_text}; store series +"
              f"{first['store_series_growth']:,}, store used {first['store_used_after'] / 2**20:,.1f} MiB of "
              f"{first['store_size'] / 2**20:,.0f} MiB.")
    extra = [(r, r["libs"]["fastprom"]["store_resident_per_series"] - r["libs"]["fastprom"]["store_per_series"])
             for r in results if not r["problems"] and r["libs"]["fastprom"].get("store_resident_per_series")]
    extra = [(r, e * r["series"]) for r, e in extra if e * r["series"] > 2**20]
    if extra:
        print("note: fastprom's store mapping became resident beyond the growth of its 'used' counter by "
              + ", ".join(f"{b / 2**20:,.1f} MiB ({r['case']}, {r['series']:,})" for r, b in extra)
              + ": pages of the store's preallocated tables (its series slot table among them) touched as series "
                "are added; a cost per store rather than per series, so it weighs less per series as the "
                "count grows.")
    problems = [p for r in results for p in r["problems"]]
    if problems:
        print(f"\n{len(problems)} problem(s):")
        print_problem_list(problems)
    else:
        print("note: after each reading every series was rendered with its value (checked in every process).")

    if args.json:
        write_json(args.json, {"environment": env, "runs": runs, "quick": args.quick, "results": results})
    if args.chart:
        write_chart(args.chart, results, header)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
