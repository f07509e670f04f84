#!/usr/bin/env python3
"""Memory benchmark: bytes per series, fastprom against prometheus_client, each in a fresh process.

Cases: a Counter (2 labels) at 10,000 and 100,000 series, a Histogram (1 label) at 10,000 (--quick: a tenth).
Each measurement is this script started again with --child: it imports one library, creates the metric and a
warm-up series, reads its baseline after gc.collect(), creates the N series and reads again.  RSS: VmRSS
growth / N (median of --runs processes); Python heap: tracemalloc, in one more process; fastprom's store:
the growth of registry._store.stats()["used"].  Each child checks every series afterwards (else exit 1).
"""
from __future__ import annotations

import _common as c  # first: it keeps this directory from shadowing the standard library's http

import gc
import json
import os
import sys
import traceback
from typing import Any, Dict, List, Optional

LIBS = ("fastprom", "prometheus_client")
COUNTER, HISTOGRAM = "bench_http_requests", "bench_latency_seconds"
OBSERVED = (0.003, 0.02, 0.3, 2.0, 7.5)
CASES = (("counter_10k", "Counter, 2 labels", "counter", 10_000),
         ("counter_100k", "Counter, 2 labels", "counter", 100_000),
         ("histogram_10k", "Histogram, default buckets, 1 label", "histogram", 10_000))
CHILD_TIMEOUT = 600.0


def vmrss() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmRSS:"))


def mapping_rss(size: int) -> Optional[int]:
    """Resident bytes of the one mapping of exactly ``size`` bytes (fastprom's store), from smaps."""
    found, current = [], None
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("Size:"):
                current = int(line.split()[1]) * 1024
            elif line.startswith("Rss:") and current == size:
                found.append(int(line.split()[1]) * 1024)
    return found[0] if len(found) == 1 else None


def child(lib: str, kind: str, n: int, mode: str) -> Dict[str, Any]:
    import importlib
    import tracemalloc
    mod: Any = importlib.import_module(lib)
    reg = mod.CollectorRegistry()
    if kind == "counter":
        m = mod.Counter(COUNTER, "HTTP requests.", ("method", "route"), registry=reg)
        m.labels("GET", "/warm-up").inc()

        def create(count: int) -> None:
            labels = m.labels
            for i in range(count):
                labels("GET", f"/api/v1/items/{i}").inc()
    else:
        m = mod.Histogram(HISTOGRAM, "Latency.", ("route",), registry=reg)
        m.labels("/warm-up").observe(OBSERVED[0])

        def create(count: int) -> None:
            labels = m.labels
            for i in range(count):
                labels(f"/api/v1/items/{i}").observe(OBSERVED[i % len(OBSERVED)])
    store = getattr(reg, "_store", None) if lib == "fastprom" else None
    out: Dict[str, Any] = {}
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
    s0 = store.stats() if store is not None else None
    map0 = mapping_rss(s0["size"]) if s0 else None
    rss0 = vmrss()
    create(n)
    gc.collect()
    rss1 = vmrss()
    map1 = mapping_rss(s0["size"]) if s0 else None
    if mode == "tracemalloc":
        out["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    out["rss_growth"] = rss1 - rss0
    if s0:
        s1 = store.stats()
        out.update(store_used_growth=s1["used"] - s0["used"], store_series_growth=s1["series"] - s0["series"],
                   store_used_after=s1["used"], store_size=s1["size"], store_overflowed=s1["overflowed"])
        if map0 is not None and map1 is not None:
            out["store_resident_growth"] = map1 - map0
    # after the readings: every series is there with its value
    problems = []
    prefix = COUNTER + "_total{" if kind == "counter" else HISTOGRAM + "_count{"
    lines = [ln for ln in mod.generate_latest(reg).decode().splitlines() if ln.startswith(prefix)]
    total = sum(float(ln.rsplit(" ", 1)[1]) for ln in lines)
    if len(lines) != n + 1 or total != n + 1:
        problems.append(f"rendered {len(lines):,} {prefix}...}} lines summing to {total:g}, expected {n + 1:,}")
    last = f"/api/v1/items/{n - 1}"
    if kind == "counter":
        got = [reg.get_sample_value(COUNTER + "_total", {"method": "GET", "route": last})]
        want = [1.0]
    else:
        got = [reg.get_sample_value(HISTOGRAM + "_sum", {"route": last}),
               reg.get_sample_value(HISTOGRAM + "_bucket", {"route": last, "le": "+Inf"})]
        want = [OBSERVED[(n - 1) % len(OBSERVED)], 1.0]
    if got != want:
        problems.append(f"the last series holds {got}, expected {want}")
    if out.get("store_overflowed"):
        problems.append(f"the store overflowed ({out['store_overflowed']} lookups)")
    out["problems"] = [f"{lib} {kind} {n:,}: {p}" for p in problems]
    return out


def run_child(lib: str, kind: str, n: int, mode: str) -> Dict[str, Any]:
    what = f"{lib} {kind} {n:,} ({mode})"
    try:
        code, out, err = c.run([sys.executable, os.path.abspath(__file__), "--child", lib, kind, str(n), mode],
                               CHILD_TIMEOUT, env=c.clean_env())
        if code != 0:
            return {"problems": [f"{what}: the child exited with status {code}:\n{err.strip() or out.strip()}"]}
        return json.loads(out.strip().splitlines()[-1])
    except (TimeoutError, ValueError, IndexError) as e:
        return {"problems": [f"{what}: {e!r}"]}


def run_case(b: c.Bench, title: str, kind: str, n: int, runs: int) -> Dict[str, Any]:
    res: Dict[str, Any] = {"case": title, "series": n, "libs": {lib: {"rss_runs": []} for lib in LIBS}}
    ok = True
    for r in range(runs + 1):  # the last one: tracemalloc
        for lib in c.rotated(LIBS, r):
            mode = "rss" if r < runs else "tracemalloc"
            c.log(f"  {title}, {n:,} series: {lib}, {mode} run" + (f" {r + 1}/{runs}" if r < runs else ""))
            out = run_child(lib, kind, n, mode)
            for p in out.get("problems", []):
                b.problem(p)
                ok = False
            if mode == "rss":
                res["libs"][lib]["rss_runs"].append(out)
            else:
                res["libs"][lib]["tracemalloc_run"] = out
    if not ok:
        return res
    for lib, e in res["libs"].items():
        e["rss_per_series"] = c.med([o["rss_growth"] / n for o in e["rss_runs"]])
        e["heap_per_series"] = e["tracemalloc_run"]["traced_bytes"] / n
        if lib == "fastprom":
            e["store_per_series"] = c.med([o["store_used_growth"] / n for o in e["rss_runs"]
                                           if "store_used_growth" in o])
            e["store_resident_per_series"] = c.med([o["store_resident_growth"] / n for o in e["rss_runs"]
                                                    if "store_resident_growth" in o])
    fp, pc = res["libs"]["fastprom"], res["libs"]["prometheus_client"]
    res["rss_ratio"] = c.ratio(pc["rss_per_series"], fp["rss_per_series"])
    res["heap_ratio"] = c.ratio(pc["heap_per_series"], fp["heap_per_series"])
    return res


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        try:
            print(json.dumps(child(argv[1], argv[2], int(argv[3]), argv[4])))
            return 0
        except Exception:
            traceback.print_exc()
            return 1
    b = c.Bench(__doc__)
    b.option("--runs", 3, 1, "RSS processes per library and case; the median is reported", minimum=1)
    args = b.parse(argv)
    if not os.path.exists("/proc/self/smaps"):
        print("ERROR: this benchmark needs Linux (/proc/self/status and smaps)")
        return 1
    scale = 10 if args.quick else 1
    b.intro(list(LIBS), f"growth per series in a fresh process per library and case; RSS: median of {args.runs} "
            f"process(es), Python heap: tracemalloc in one more process" + (", series / 10" if args.quick else ""))
    results = []
    for key, title, kind, n in CASES:
        try:
            results.append({"key": key, **run_case(b, title, kind, n // scale, args.runs)})
        except Exception:
            b.problem(f"{key}: exception:\n{traceback.format_exc()}")
            results.append({"key": key, "case": title, "series": n // scale, "libs": {lib: {} for lib in LIBS}})
    ok = [r for r in results if "rss_ratio" in r]
    rows = []
    for r in results:
        fp, pc = r["libs"]["fastprom"], r["libs"]["prometheus_client"]
        rows.append([r["case"], f"{r['series']:,}", c.num(fp["rss_per_series"]), c.num(pc["rss_per_series"]),
                     c.fmt_ratio(r["rss_ratio"]), c.num(fp["heap_per_series"]), c.num(pc["heap_per_series"]),
                     c.fmt_ratio(r["heap_ratio"]), c.num(fp["store_per_series"])] if r in ok
                    else [f"{r['case']} (**check failed**)", f"{r['series']:,}"] + ["—"] * 7)
    c.table(["case", "series", "fastprom RSS B/series", "prometheus_client RSS B/series", "ratio",
             "fastprom Python heap B/series", "prometheus_client Python heap B/series", "ratio",
             "fastprom store B/series"], rows)
    print("ratio: prometheus_client / fastprom (above 1: fastprom uses less). RSS: everything the process holds "
          "(fastprom's store pages included); Python heap: tracemalloc (fastprom's store is not on it).")
    for r in ok:
        fp = r["libs"]["fastprom"]
        first, res = fp["rss_runs"][0], fp["store_resident_per_series"]
        kib = {lib: ", ".join(f"{o['rss_growth'] / 1024:,.0f}" for o in r["libs"][lib]["rss_runs"]) for lib in LIBS}
        store = "" if fp["store_per_series"] is None else (
            f" fastprom: heap + store = {c.num(fp['heap_per_series'] + fp['store_per_series'])} B/series; store "
            f"series +{first['store_series_growth']:,}, used {first['store_used_after'] / 2**20:,.1f} of "
            f"{first['store_size'] / 2**20:,.0f} MiB" + ("" if res is None else f"; its mapping's resident pages grew "
            f"by {c.num(res)} B/series, the rest of the RSS growth is {c.num(fp['rss_per_series'] - res)} B/series."))
        print(f"note: {r['case']}, {r['series']:,} series: RSS growth per run, KiB: fastprom {kib['fastprom']}; "
              f"prometheus_client {kib['prometheus_client']}." + store)
    print("note: the store's preallocated tables (its series slot table among them) become resident as series are "
          "added: a cost per store, not per series, in the RSS column but not in the store column.")

    def chart() -> List[c.Panel]:
        return [c.Panel("RSS growth, bytes per series (median; lower is better)",
                        [f"{r['case']}, {r['series']:,} series" for r in ok],
                        {lib: [r["libs"][lib]["rss_per_series"] for r in ok] for lib in LIBS},
                        [c.fmt_ratio(r["rss_ratio"]) for r in ok])]
    return b.finish({"results": results}, chart)


if __name__ == "__main__":
    sys.exit(main())
