#!/usr/bin/env python3
"""Micro-benchmarks: fastprom against prometheus_client, side by side.

Run from anywhere with an interpreter that has both libraries installed::

    python benchmarks/micro.py            # full run (7 repeats, ~0.2 s per measurement)
    python benchmarks/micro.py --quick    # CI smoke: 3 short repeats
    python benchmarks/micro.py --json out.json --chart out.png

Every number is the raw wall time of one operation, Python loop overhead
included (nothing is subtracted); the "Python floor" table shows what an empty
loop iteration and a call to a no-op Python function cost on the same
interpreter, so the part of each number that is the interpreter can be read
off.  Each measurement is a ``timeit`` loop timed with ``time.perf_counter_ns``
(garbage collection off during the loop, as ``timeit`` does) whose iteration
count is calibrated per library so the loop runs about ``--target-seconds``;
the reported figure is the median over ``--repeats`` repeats, and the two
libraries are measured alternately (order swapped on every repeat) to spread
drift evenly.  Timings are printed, never asserted.

Before timing, every case is checked for correctness (both libraries must
report the same values), and after timing the counters and histograms are
checked to hold exactly the number of operations that were timed.  A failure
is printed with its traceback and makes the exit status 1.
"""
from __future__ import annotations

import gc
import math
import statistics
import sys
import time
import timeit
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

# Before the third-party imports: importing prometheus_client from this directory runs http.py as the
# module `http` (its name shadows the standard library's), which takes this directory off sys.path.
from _common import (CreatedSeries, add_output_options, environment, fmt_ratio, header_line, log, make_parser,
                     print_intro, pyplot, save_chart, spread, version_of, write_json)

import fastprom
import prometheus_client
import prometheus_client.metrics
from prometheus_client.parser import text_string_to_metric_families

LIBS: Tuple[Tuple[str, Any], ...] = (("fastprom", fastprom), ("prometheus_client", prometheus_client))
LABEL_NAMES = ("method", "route")
GAUGE_VALUE = 42.5
OBSERVED = 0.3


# --------------------------------------------------------------------------- cases

@dataclass
class Case:
    key: str
    title: str
    stmt: str
    #: builds the timeit namespace for one library, in a fresh registry
    setup: Callable[[Any], Dict[str, Any]]
    #: checks a namespace after ``ops`` timed operations; returns problems found
    check: Optional[Callable[[str, Any, Dict[str, Any], int], List[str]]] = None
    per_call_ms: bool = False
    #: measure prometheus_client with its ``_created`` series switched off
    pc_no_created: bool = False
    ns: Dict[str, Dict[str, Any]] = field(default_factory=dict)


def _sample(ns: Dict[str, Any], name: str, labels: Optional[Dict[str, str]] = None) -> Optional[float]:
    return ns["registry"].get_sample_value(name, labels or {})


def _expect(lib: str, what: str, got: Optional[float], want: float) -> List[str]:
    if got is None or not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9):
        return [f"{lib}: {what} is {got!r}, expected {want!r}"]
    return []


def setup_counter(mod: Any) -> Dict[str, Any]:
    reg = mod.CollectorRegistry()
    return {"registry": reg, "c": mod.Counter("bench_requests", "Requests.", registry=reg)}


def check_counter(lib: str, mod: Any, ns: Dict[str, Any], ops: int) -> List[str]:
    return _expect(lib, "bench_requests_total", _sample(ns, "bench_requests_total"), ops)


def setup_labelled(mod: Any) -> Dict[str, Any]:
    reg = mod.CollectorRegistry()
    c = mod.Counter("bench_requests", "Requests.", LABEL_NAMES, registry=reg)
    child = c.labels("a", "b")  # the child exists before timing starts
    return {"registry": reg, "c": c, "child": child}


def check_labelled(lib: str, mod: Any, ns: Dict[str, Any], ops: int) -> List[str]:
    problems = _expect(lib, 'bench_requests_total{method="a",route="b"}',
                       _sample(ns, "bench_requests_total", dict(zip(LABEL_NAMES, ("a", "b")))), ops)
    if ns["c"].labels("a", "b") is not ns["child"]:
        problems.append(f"{lib}: labels('a', 'b') returned a new child instead of the cached one")
    return problems


def setup_histogram(mod: Any) -> Dict[str, Any]:
    reg = mod.CollectorRegistry()
    return {"registry": reg, "h": mod.Histogram("bench_latency_seconds", "Latency.", registry=reg)}


def check_histogram(lib: str, mod: Any, ns: Dict[str, Any], ops: int) -> List[str]:
    n = "bench_latency_seconds"
    problems = _expect(lib, n + "_count", _sample(ns, n + "_count"), ops)
    problems += _expect(lib, n + '_bucket{le="0.25"}', _sample(ns, n + "_bucket", {"le": "0.25"}), 0)
    problems += _expect(lib, n + '_bucket{le="0.5"}', _sample(ns, n + "_bucket", {"le": "0.5"}), ops)
    problems += _expect(lib, n + '_bucket{le="+Inf"}', _sample(ns, n + "_bucket", {"le": "+Inf"}), ops)
    got = _sample(ns, n + "_sum")
    # a float sum of many 0.3s drifts; allow the rounding error of naive summation
    if got is None or not math.isclose(got, OBSERVED * ops, rel_tol=1e-6, abs_tol=1e-9):
        problems.append(f"{lib}: {n}_sum is {got!r}, expected about {OBSERVED * ops!r}")
    return problems


def setup_gauge(mod: Any) -> Dict[str, Any]:
    reg = mod.CollectorRegistry()
    return {"registry": reg, "g": mod.Gauge("bench_in_flight", "In flight.", registry=reg)}


def check_gauge(lib: str, mod: Any, ns: Dict[str, Any], ops: int) -> List[str]:
    return _expect(lib, "bench_in_flight", _sample(ns, "bench_in_flight"), GAUGE_VALUE if ops else 0.0)


def make_setup_summary(quantiles: Tuple[float, ...]) -> Callable[[Any], Dict[str, Any]]:
    def setup(mod: Any) -> Dict[str, Any]:
        reg = mod.CollectorRegistry()
        # prometheus_client's Summary has no quantiles: it records count and sum only.
        kw = {"quantiles": quantiles} if quantiles and mod is fastprom else {}
        return {"registry": reg, "s": mod.Summary("bench_size_bytes", "Sizes.", registry=reg, **kw)}
    return setup


def check_summary(lib: str, mod: Any, ns: Dict[str, Any], ops: int) -> List[str]:
    return _expect(lib, "bench_size_bytes_count", _sample(ns, "bench_size_bytes_count"), ops)


def make_setup_exposition(series: int) -> Callable[[Any], Dict[str, Any]]:
    def setup(mod: Any) -> Dict[str, Any]:
        reg = mod.CollectorRegistry()
        c = mod.Counter("bench_http_requests", "HTTP requests.", LABEL_NAMES, registry=reg)
        for i in range(series):
            c.labels("GET", f"/api/v1/items/{i}").inc(i % 7 + 1)
        return {"registry": reg, "c": c, "gen": mod.generate_latest}
    return setup


def make_check_exposition(series: int) -> Callable[[str, Any, Dict[str, Any], int], List[str]]:
    def check(lib: str, mod: Any, ns: Dict[str, Any], ops: int) -> List[str]:
        text = ns["gen"](ns["registry"]).decode("utf-8")
        got: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if not s.name.endswith("_created"):
                    got[(s.name, tuple(sorted(s.labels.items())))] = s.value
        want = {("bench_http_requests_total", tuple(sorted({"method": "GET", "route": f"/api/v1/items/{i}"}.items()))):
                float(i % 7 + 1) for i in range(series)}
        if got != want:
            missing = len(set(want) - set(got))
            extra = len(set(got) - set(want))
            wrong = sum(1 for k in set(want) & set(got) if got[k] != want[k])
            return [f"{lib}: generate_latest output differs from what was recorded "
                    f"({len(got)} samples; {missing} missing, {extra} unexpected, {wrong} with wrong values)"]
        return []
    return check


CASES: List[Case] = [
    Case("counter_inc", "Counter.inc() (unlabelled)", "c.inc()", setup_counter, check_counter),
    Case("counter_labels_inc", "Counter.labels('a', 'b').inc() (existing child)",
         "c.labels('a', 'b').inc()", setup_labelled, check_labelled),
    Case("child_inc", "bound child .inc() (child = c.labels('a', 'b'))", "child.inc()",
         setup_labelled, check_labelled),
    Case("histogram_observe", "Histogram.observe(0.3) (default buckets)", f"h.observe({OBSERVED})",
         setup_histogram, check_histogram),
    Case("gauge_set", "Gauge.set()", f"g.set({GAUGE_VALUE})", setup_gauge, check_gauge),
    Case("summary_observe", "Summary.observe(0.3) (count and sum)", f"s.observe({OBSERVED})",
         make_setup_summary(()), check_summary),
    Case("summary_quantiles_observe",
         "Summary.observe(0.3), fastprom with quantiles (0.5, 0.9, 0.99) [pc: count and sum only]",
         f"s.observe({OBSERVED})", make_setup_summary((0.5, 0.9, 0.99)), check_summary),
    Case("generate_latest_1k", "generate_latest(), 1,000 label sets", "gen(registry)",
         make_setup_exposition(1_000), make_check_exposition(1_000), per_call_ms=True),
    Case("generate_latest_10k", "generate_latest(), 10,000 label sets", "gen(registry)",
         make_setup_exposition(10_000), make_check_exposition(10_000), per_call_ms=True),
]

#: Supplementary rows: prometheus_client's text output carries a ``_created``
#: sample per series, fastprom's (like Prometheus 0.0.4 text without created
#: series) does not; these rows time prometheus_client with them switched off.
SUPPLEMENTARY: List[Case] = [
    Case("generate_latest_1k_pc_no_created", "generate_latest(), 1,000 label sets [pc: _created off]",
         "gen(registry)", make_setup_exposition(1_000), make_check_exposition(1_000),
         per_call_ms=True, pc_no_created=True),
    Case("generate_latest_10k_pc_no_created", "generate_latest(), 10,000 label sets [pc: _created off]",
         "gen(registry)", make_setup_exposition(10_000), make_check_exposition(10_000),
         per_call_ms=True, pc_no_created=True),
]


def _noop() -> None:
    pass


class _Obj:
    def noop(self) -> None:
        pass


FLOORS: List[Tuple[str, str, str, Dict[str, Any]]] = [
    ("empty_loop", "empty loop iteration (`pass`)", "pass", {}),
    ("noop_call", "call of a no-op Python function `f()`", "f()", {"f": _noop}),
    ("noop_method_call", "call of a no-op Python method `o.m()`", "o.noop()", {"o": _Obj()}),
]


# --------------------------------------------------------------------------- timing

def make_timer(stmt: str, ns: Dict[str, Any]) -> timeit.Timer:
    return timeit.Timer(stmt, globals=ns, timer=time.perf_counter_ns)


def calibrate(timer: timeit.Timer, target_ns: float) -> Tuple[int, int]:
    """A loop count that makes one measurement last about ``target_ns``; also the calls made."""
    number, calls = 1, 0
    while True:
        elapsed = timer.timeit(number)
        calls += number
        if elapsed >= target_ns / 5 or number >= 1 << 30:
            break
        number *= 10 if elapsed < target_ns / 50 else 2
    return max(1, round(number * target_ns / max(elapsed, 1))), calls


@dataclass
class Measured:
    number: int = 0
    samples_ns: List[float] = field(default_factory=list)
    calls: int = 0  # every timed call, calibration included

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ns)


def run_case(case: Case, repeats: int, target_ns: float, log: Callable[[str], None]) -> Dict[str, Any]:
    result: Dict[str, Any] = {"key": case.key, "case": case.title, "per_call_ms": case.per_call_ms,
                              "pc_created_off": case.pc_no_created, "libs": {}, "problems": []}
    namespaces: Dict[str, Dict[str, Any]] = {}
    timers: Dict[str, timeit.Timer] = {}
    measured: Dict[str, Measured] = {}
    for lib, mod in LIBS:
        try:
            with CreatedSeries(case.pc_no_created and lib == "prometheus_client"):
                # correctness first, on its own fresh registry
                if case.check is not None:
                    ns = case.setup(mod)
                    exec(case.stmt, ns)
                    result["problems"] += case.check(lib, mod, ns, 1)
                # the registry that is timed
                ns = case.setup(mod)
                namespaces[lib] = ns
                timers[lib] = make_timer(case.stmt, ns)
                number, calls = calibrate(timers[lib], target_ns)
                measured[lib] = Measured(number=number, calls=calls)
        except Exception as e:
            raise RuntimeError(f"{lib} failed in {case.title!r} ({case.stmt!r})") from e
    for r in range(repeats):
        order = LIBS if r % 2 == 0 else LIBS[::-1]
        for lib, mod in order:
            m = measured[lib]
            try:
                with CreatedSeries(case.pc_no_created and lib == "prometheus_client"):
                    elapsed = timers[lib].timeit(m.number)
            except Exception as e:
                raise RuntimeError(f"{lib} failed in {case.title!r} ({case.stmt!r}), repeat {r}") from e
            m.calls += m.number
            m.samples_ns.append(elapsed / m.number)
    for lib, mod in LIBS:
        m = measured[lib]
        entry: Dict[str, Any] = {**spread(m.samples_ns, "ns"), "number": m.number, "samples_ns": m.samples_ns}
        if case.per_call_ms:
            with CreatedSeries(case.pc_no_created and lib == "prometheus_client"):
                out = namespaces[lib]["gen"](namespaces[lib]["registry"])
            entry["output_bytes"] = len(out)
            entry["output_lines"] = out.count(b"\n")
        result["libs"][lib] = entry
        # the timed registry must hold exactly what was done to it
        if case.check is not None and not case.per_call_ms:
            with CreatedSeries(case.pc_no_created and lib == "prometheus_client"):
                result["problems"] += [p + f" (after {m.calls} timed calls)"
                                       for p in case.check(lib, mod, namespaces[lib], m.calls)]
    fp, pc = result["libs"]["fastprom"]["median_ns"], result["libs"]["prometheus_client"]["median_ns"]
    result["ratio"] = pc / fp if fp > 0 else float("nan")
    for p in result["problems"]:
        log(f"PROBLEM in {case.title}: {p}")
    return result


def run_floor(stmt: str, ns: Dict[str, Any], repeats: int, target_ns: float) -> Dict[str, Any]:
    timer = make_timer(stmt, dict(ns))
    number, _ = calibrate(timer, target_ns)
    samples = [timer.timeit(number) / number for _ in range(repeats)]
    return {**spread(samples, "ns"), "number": number, "samples_ns": samples}


# --------------------------------------------------------------------------- output

def fmt_ns(ns: float, per_call_ms: bool) -> str:
    if ns != ns:
        return "error"
    text = f"{ns:,.0f}" if ns >= 100 else f"{ns:,.1f}"
    if per_call_ms:
        text += f" ({ns / 1e6:,.3f} ms)"
    return text


def markdown(results: List[Dict[str, Any]], floors: List[Dict[str, Any]]) -> str:
    lines = ["| case | fastprom ns | prometheus_client ns | ratio |", "| --- | ---: | ---: | ---: |"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['case']} | error | error | error |")
            continue
        fp, pc = r["libs"]["fastprom"], r["libs"]["prometheus_client"]
        flag = " (**check failed**)" if r["problems"] else ""
        lines.append(f"| {r['case']}{flag} | {fmt_ns(fp['median_ns'], r['per_call_ms'])} | "
                     f"{fmt_ns(pc['median_ns'], r['per_call_ms'])} | {fmt_ratio(r['ratio'])} |")
    lines += ["", "| Python floor (same interpreter, no library) | ns |", "| --- | ---: |"]
    for f in floors:
        lines.append(f"| {f['case']} | {fmt_ns(f['median_ns'], False)} |")
    return "\n".join(lines)


def write_chart(path: str, results: List[Dict[str, Any]], floors: List[Dict[str, Any]], header: str) -> None:
    plt = pyplot(path)
    if plt is None:
        return
    rows = [r for r in results if "error" not in r]
    labels = [r["case"] for r in rows] + [f"floor: {f['case']}" for f in floors]
    fp = [r["libs"]["fastprom"]["median_ns"] for r in rows]
    pc = [r["libs"]["prometheus_client"]["median_ns"] for r in rows]
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(labels) + 1.6))
    y = list(range(len(labels)))
    h = 0.38
    ax.barh([i - h / 2 for i in y[:len(rows)]], fp, height=h, label="fastprom", color="#1f77b4")
    ax.barh([i + h / 2 for i in y[:len(rows)]], pc, height=h, label="prometheus_client", color="#ff7f0e")
    ax.barh(y[len(rows):], [f["median_ns"] for f in floors], height=h, label="Python floor (no library)",
            color="#999999")
    ax.set_xscale("log")
    top = max(fp + pc + [f["median_ns"] for f in floors] + [1.0])
    ax.set_xlim(right=top * 8)  # room for the ratio labels
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ns per operation (median, log scale; lower is better)")
    ax.set_title(header, fontsize=8)
    for r, i in zip(rows, y):
        x = max(r["libs"]["fastprom"]["median_ns"], r["libs"]["prometheus_client"]["median_ns"])
        ax.text(x * 1.15, i, fmt_ratio(r["ratio"]), va="center", fontsize=8)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    save_chart(plt, fig, path)


# --------------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke run: 3 repeats of ~0.02 s (numbers are rough)")
    ap.add_argument("--repeats", type=int, help="repeats per measurement (default 7, 3 with --quick)")
    ap.add_argument("--target-seconds", type=float,
                    help="length of one measurement (default 0.2, 0.02 with --quick)")
    ap.add_argument("--no-supplementary", action="store_true",
                    help="skip the extra generate_latest rows with prometheus_client's _created series off")
    add_output_options(ap, chart_help="write a PNG bar chart (log scale; needs matplotlib)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    target_s = args.target_seconds or (0.02 if args.quick else 0.2)
    if repeats < 1 or target_s <= 0:
        ap.error("--repeats must be >= 1 and --target-seconds > 0")
    target_ns = target_s * 1e9

    env = environment({
        "fastprom": version_of("fastprom", fastprom),
        "prometheus_client": version_of("prometheus_client", prometheus_client),
        "prometheus_client_created_series": bool(getattr(prometheus_client.metrics, "_use_created", True)),
    })
    header = header_line(env, f"fastprom {env['fastprom']}", f"prometheus_client {env['prometheus_client']}")
    print_intro(header, f"median of {repeats} repeats, ~{target_s:g} s each, per library, alternating; "
                f"raw ns per operation including Python loop overhead (nothing subtracted)"
                + (" [--quick: rough numbers]" if args.quick else ""))

    floors = []
    for key, title, stmt, ns in FLOORS:
        f = run_floor(stmt, ns, repeats, target_ns)
        f.update(key=key, case=title, stmt=stmt)
        floors.append(f)

    cases = CASES + ([] if args.no_supplementary else SUPPLEMENTARY)
    results: List[Dict[str, Any]] = []
    failed = False
    for case in cases:
        log(f"  timing {case.title} ...")
        gc.collect()
        try:
            r = run_case(case, repeats, target_ns, log)
        except Exception:
            tb = traceback.format_exc()
            log(f"ERROR in {case.title}:\n{tb}")
            r = {"key": case.key, "case": case.title, "error": tb, "problems": [tb]}
        failed = failed or bool(r["problems"])
        results.append(r)

    print(markdown(results, floors))
    print()
    for r in results:
        if r.get("per_call_ms") and "error" not in r:
            fp, pc = r["libs"]["fastprom"], r["libs"]["prometheus_client"]
            print(f"note: {r['case']}: output is {fp['output_bytes']:,} bytes / {fp['output_lines']:,} lines "
                  f"(fastprom) vs {pc['output_bytes']:,} bytes / {pc['output_lines']:,} lines (prometheus_client)")
    if env["prometheus_client_created_series"]:
        print("note: prometheus_client writes a _created sample per series in the text format and fastprom "
              "does not; the [pc: _created off] rows time prometheus_client without them.")
    problems = [p for r in results for p in r["problems"]]
    if problems:
        print(f"\n{len(problems)} problem(s) (wrong results or errors); tracebacks are on stderr:")
        for p in problems:
            print("  - " + p.strip().splitlines()[-1])

    if args.json:
        write_json(args.json, {"environment": env, "repeats": repeats, "target_seconds": target_s,
                               "quick": args.quick, "floors": floors, "cases": results})
    if args.chart:
        write_chart(args.chart, results, floors, header)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
