#!/usr/bin/env python3
"""Threaded throughput: operations per second with 1, 2, 4 and 8 threads on
one registry (a cached child's inc(), a histogram's observe(), labels() of a
cached child), on whatever interpreter runs it.  Run it under a GIL build and
a free-threaded one (3.13t) to compare; the header says which this is.  The
totals are checked after each run (exit status 1 when one is wrong); timings
are printed, never checked.

    python benchmarks/threads.py [--ops N] [--quick] [--json FILE]
"""
from __future__ import annotations

import _common  # noqa: F401  first: it keeps this directory from shadowing the standard library's http

import argparse
import json
import platform
import sys
import sysconfig
import threading
import time
from typing import Dict, List

import fastprom as fp


def run(threads: int, ops: int) -> float:
    """ops per thread, in total ops/s; checks the totals."""
    reg = fp.CollectorRegistry()
    c = fp.Counter("bench", "Bench.", ["k"], registry=reg)
    h = fp.Histogram("bench_lat", "Bench.", ["k"], registry=reg)
    child = c.labels("a")
    hist = h.labels("a")
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        inc, observe, labels = child.inc, hist.observe, c.labels
        barrier.wait()
        for _ in range(ops // 3):
            inc()
            observe(0.1)
            labels("a").inc()

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    want = threads * (ops // 3)
    got_c = reg.get_sample_value("bench_total", {"k": "a"})
    got_h = reg.get_sample_value("bench_lat_count", {"k": "a"})
    if got_c != 2 * want or got_h != want:
        print(f"wrong totals with {threads} threads: counter {got_c} (want {2 * want}), "
              f"histogram {got_h} (want {want})", file=sys.stderr)
        raise SystemExit(1)
    return threads * (ops // 3) * 3 / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=300_000, help="operations per thread (default 300,000)")
    ap.add_argument("--quick", action="store_true", help="30,000 operations per thread")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    ops = 30_000 if a.quick else a.ops
    ft = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    kind = f"free-threaded, GIL {'on' if gil else 'off'}" if ft else "GIL build"
    print(f"CPython {platform.python_version()} ({kind}), {ops:,} operations per thread")
    print(f"{'threads':>7} {'ops/s':>12} {'vs 1 thread':>12}")
    rows: List[Dict[str, float]] = []
    for n in (1, 2, 4, 8):
        rate = run(n, ops)
        rows.append({"threads": n, "ops_per_s": rate})
        print(f"{n:>7} {rate:>12,.0f} {rate / rows[0]['ops_per_s']:>11.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"python": platform.python_version(), "free_threaded": ft, "gil": gil, "ops": ops,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
