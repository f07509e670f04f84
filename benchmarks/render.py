#!/usr/bin/env python3
"""Render benchmark: generate_latest() of a large registry, fastprom against prometheus_client.

Run from anywhere with an interpreter that has both libraries installed::

    python benchmarks/render.py            # full run: 1,000 / 10,000 / 100,000 label sets
    python benchmarks/render.py --quick    # smoke run: 1,000 and 10,000 label sets, 3 short repeats
    python benchmarks/render.py --json out.json --chart out.png

For each size, each library gets a fresh ``CollectorRegistry`` holding one
counter, ``bench_http_requests`` with the labels ``method`` and ``route``,
and that many label sets (series *i* is ``("GET", "/api/v1/items/<i>")`` and
holds ``i % 7 + 1``).  ``generate_latest(registry)`` is then timed for:

- fastprom;
- prometheus_client as it comes (its text format has a ``<name>_created``
  sample for every counter series, so twice the sample lines);
- prometheus_client with ``prometheus_client.disable_created_metrics()``
  switched on around its renders (restored afterwards), so both libraries
  write the same samples: the like-for-like row.

The three are timed in the same run, alternately, the order rotated on every
repeat, each measurement a ``timeit`` loop (garbage collection off during the
loop, as ``timeit`` does) long enough to last about ``--target-seconds``
(a render that takes longer runs once).  The figure is the median over the
repeats (7, or 3 at 100,000 label sets).  Timings are printed, never asserted.

Before timing, every output is parsed with ``prometheus_client.parser`` and
must contain exactly the recorded samples (``_created`` aside); after timing
every output must be byte for byte what it was before.  A failure is printed
and makes the exit status 1.
"""
from __future__ import annotations

import gc
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
                     print_intro, pyplot, rotated, save_chart, spread, version_of, write_json)

import fastprom
import prometheus_client
import prometheus_client.metrics
from prometheus_client.parser import text_string_to_metric_families

METRIC = "bench_http_requests"
LABEL_NAMES = ("method", "route")
DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
BIG = 100_000  # from this size on, fewer repeats


# --------------------------------------------------------------------------- registries and checks

def build(mod: Any, series: int) -> Any:
    reg = mod.CollectorRegistry()
    c = mod.Counter(METRIC, "HTTP requests.", LABEL_NAMES, registry=reg)
    for i in range(series):
        c.labels("GET", f"/api/v1/items/{i}").inc(i % 7 + 1)
    return reg


@dataclass
class Variant:
    key: str
    title: str
    mod: Any
    created_off: bool = False
    registry: Any = None
    number: int = 0
    samples_ms: List[float] = field(default_factory=list)
    output: bytes = b""
    sample_lines: int = 0

    def render(self) -> bytes:
        with CreatedSeries(self.created_off):
            return self.mod.generate_latest(self.registry)

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)


def check_output(v: Variant, series: int) -> List[str]:
    """The output must hold exactly the recorded samples (``_created`` aside)."""
    text = v.output.decode("utf-8")
    got: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float] = {}
    created = 0
    try:
        for fam in text_string_to_metric_families(text):
            if fam.name == METRIC and fam.type != "counter":
                return [f"{v.title}: {METRIC} has type {fam.type!r}, expected 'counter'"]
            for s in fam.samples:
                if s.name.endswith("_created"):
                    created += 1
                    continue
                got[(s.name, tuple(sorted(s.labels.items())))] = s.value
    except Exception as e:
        return [f"{v.title}: output does not parse ({e!r}); it begins {text[:200]!r}"]
    want = {(METRIC + "_total", tuple(sorted({"method": "GET", "route": f"/api/v1/items/{i}"}.items()))):
            float(i % 7 + 1) for i in range(series)}
    problems = []
    if got != want:
        missing = len(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        wrong = sum(1 for k in set(want) & set(got) if got[k] != want[k])
        problems.append(f"{v.title}: generate_latest output differs from what was recorded ({len(got):,} samples "
                        f"for {series:,} series; {missing:,} missing, {len(extra):,} unexpected, {wrong:,} with "
                        f"wrong values; first unexpected: {extra[:3]})")
    if v.created_off and created:
        problems.append(f"{v.title}: {created:,} _created samples although they were switched off")
    if v.mod is fastprom and created:
        problems.append(f"{v.title}: {created:,} _created samples in the text format")
    v.sample_lines = sum(1 for ln in text.splitlines() if ln and not ln.startswith("#"))
    return problems


# --------------------------------------------------------------------------- timing

def calibrate(timer: timeit.Timer, target_ns: float) -> int:
    """A loop count that makes one measurement last about ``target_ns`` (at least 1)."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target_ns / 5 or number >= 1 << 20:
            break
        number *= 10 if elapsed < target_ns / 50 else 2
    return max(1, round(number * target_ns / max(elapsed, 1)))


def run_size(series: int, repeats: int, target_ns: float, log: Callable[[str], None]) -> Dict[str, Any]:
    variants = [
        Variant("fastprom", "fastprom", fastprom),
        Variant("prometheus_client", "prometheus_client", prometheus_client),
        Variant("prometheus_client_created_off", "prometheus_client [_created off]", prometheus_client,
                created_off=True),
    ]
    result: Dict[str, Any] = {"series": series, "repeats": repeats, "problems": [], "variants": {}}
    log(f"  {series:,} label sets: building registries ...")
    fp_reg = build(fastprom, series)
    pc_reg = build(prometheus_client, series)
    variants[0].registry = fp_reg
    variants[1].registry = variants[2].registry = pc_reg

    log(f"  {series:,} label sets: checking outputs ...")
    for v in variants:
        v.output = v.render()
        result["problems"] += check_output(v, series)
    if result["problems"]:
        return result

    timers: Dict[str, timeit.Timer] = {}
    for v in variants:
        timers[v.key] = timeit.Timer("render()", globals={"render": v.render}, timer=time.perf_counter_ns)
        log(f"  {series:,} label sets: calibrating {v.title} ...")
        v.number = calibrate(timers[v.key], target_ns)
    for r in range(repeats):
        order = rotated(variants, r)
        log(f"  {series:,} label sets: repeat {r + 1}/{repeats}: " + ", ".join(v.key for v in order))
        for v in order:
            gc.collect()
            elapsed = timers[v.key].timeit(v.number)
            v.samples_ms.append(elapsed / v.number / 1e6)

    for v in variants:
        # nothing was recorded while timing (prometheus_client's _created values are fixed at
        # creation), so every output must be byte for byte the one that was checked
        after = v.render()
        if after != v.output:
            result["problems"].append(f"{v.title}: the output changed during timing "
                                      f"({len(v.output):,} bytes before, {len(after):,} after)")
        result["variants"][v.key] = {
            "title": v.title, **spread(v.samples_ms, "ms"), "number": v.number, "samples_ms": v.samples_ms, "output_bytes": len(v.output),
            "output_lines": v.output.count(b"\n"), "sample_lines": v.sample_lines,
            "ns_per_sample_line": v.median * 1e6 / max(v.sample_lines, 1),
            "ns_per_series": v.median * 1e6 / series,
        }
    fp = result["variants"]["fastprom"]["median_ms"]
    result["ratio"] = result["variants"]["prometheus_client"]["median_ms"] / fp
    result["ratio_created_off"] = result["variants"]["prometheus_client_created_off"]["median_ms"] / fp
    return result


# --------------------------------------------------------------------------- output

def fmt_ms(ms: float) -> str:
    return f"{ms:,.3f}" if ms < 10 else f"{ms:,.1f}"


def markdown(results: List[Dict[str, Any]]) -> str:
    lines = ["| label sets | fastprom ms | prometheus_client ms | ratio | fastprom ns / sample line | "
             "prometheus_client ns / sample line | sample lines: fastprom / prometheus_client |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        n = f"{r['series']:,}"
        if "error" in r or r["problems"]:
            lines.append(f"| {n} (**{'error' if 'error' in r else 'check failed'}**) | — | — | — | — | — | — |")
            continue
        fp = r["variants"]["fastprom"]
        for key, title, ratio in (("prometheus_client", n, r["ratio"]),
                                  ("prometheus_client_created_off", f"{n} [pc: _created off]",
                                   r["ratio_created_off"])):
            pc = r["variants"][key]
            lines.append(f"| {title} | {fmt_ms(fp['median_ms'])} | {fmt_ms(pc['median_ms'])} | {fmt_ratio(ratio)} | "
                         f"{fp['ns_per_sample_line']:,.0f} | {pc['ns_per_sample_line']:,.0f} | "
                         f"{fp['sample_lines']:,} / {pc['sample_lines']:,} |")
    return "\n".join(lines)


def write_chart(path: str, results: List[Dict[str, Any]], header: str) -> None:
    plt = pyplot(path)
    if plt is None:
        return
    rows = [r for r in results if "error" not in r and not r["problems"]]
    keys = (("fastprom", "fastprom", "#1f77b4"), ("prometheus_client", "prometheus_client", "#ff7f0e"),
            ("prometheus_client_created_off", "prometheus_client, _created off", "#ffbb78"))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    w = 0.27
    for j, (key, label, color) in enumerate(keys):
        xs = [i + (j - 1) * w for i in range(len(rows))]
        ys = [r["variants"][key]["median_ms"] for r in rows]
        ax.bar(xs, ys, width=w, label=label, color=color)
    for i, r in enumerate(rows):
        top = max(v["median_ms"] for v in r["variants"].values())
        ax.text(i, top * 1.3, f"{fmt_ratio(r['ratio'])} / {fmt_ratio(r['ratio_created_off'])}", ha="center",
                fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r['series']:,} label sets" for r in rows])
    ax.set_ylabel("ms per generate_latest() (median, log scale; lower is better)")
    ax.set_title(header, fontsize=7)
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    save_chart(plt, fig, path)


# --------------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1,000 and 10,000 label sets, 3 repeats of ~0.02 s (numbers are rough)")
    ap.add_argument("--sizes", help="comma-separated label-set counts (default 1000,10000,100000; "
                                    "1000,10000 with --quick)")
    ap.add_argument("--repeats", type=int, help="repeats per size below 100,000 (default 7, 3 with --quick)")
    ap.add_argument("--big-repeats", type=int, help="repeats at 100,000 label sets and above (default 3)")
    ap.add_argument("--target-seconds", type=float,
                    help="minimum length of one measurement (default 0.2, 0.02 with --quick)")
    add_output_options(ap, chart_help="write a PNG bar chart (log scale; needs matplotlib)")
    args = ap.parse_args(argv)
    try:
        sizes = tuple(int(s.replace("_", "")) for s in args.sizes.split(",")) if args.sizes else (
            QUICK_SIZES if args.quick else DEFAULT_SIZES)
    except ValueError:
        ap.error("--sizes takes comma-separated integers")
    repeats = args.repeats or (3 if args.quick else 7)
    big_repeats = args.big_repeats or min(3, repeats)
    target_s = args.target_seconds or (0.02 if args.quick else 0.2)
    if repeats < 1 or big_repeats < 1 or target_s <= 0 or any(s < 1 for s in sizes):
        ap.error("--repeats, --big-repeats and --sizes must be >= 1 and --target-seconds > 0")
    target_ns = target_s * 1e9

    env = environment({
        "fastprom": version_of("fastprom", fastprom),
        "prometheus_client": version_of("prometheus_client", prometheus_client),
        "prometheus_client_created_series": bool(getattr(prometheus_client.metrics, "_use_created", True)),
    })
    header = header_line(env, f"fastprom {env['fastprom']}", f"prometheus_client {env['prometheus_client']}")
    big = f" ({big_repeats} at {BIG:,}+ label sets)" if any(s >= BIG for s in sizes) else ""
    print_intro(header, f"generate_latest(registry), one counter with 2 labels; median of {repeats} repeats{big}, "
                f"each >= ~{target_s:g} s, the three variants alternating"
                + (" [--quick: rough numbers]" if args.quick else ""))

    results: List[Dict[str, Any]] = []
    for series in sizes:
        gc.collect()
        try:
            r = run_size(series, big_repeats if series >= BIG else repeats, target_ns, log)
        except Exception:
            tb = traceback.format_exc()
            log(f"ERROR at {series:,} label sets:\n{tb}")
            r = {"series": series, "error": tb, "problems": [f"{series:,} label sets: exception: "
                                                            + tb.strip().splitlines()[-1]]}
        finally:
            # never leave prometheus_client's _created switch changed
            if env["prometheus_client_created_series"] and hasattr(prometheus_client, "enable_created_metrics"):
                prometheus_client.enable_created_metrics()
        for p in r["problems"]:
            log(f"PROBLEM: {p}")
        results.append(r)
        gc.collect()

    print(markdown(results))
    print()
    print("ratio: prometheus_client median / fastprom median (above 1: fastprom is faster); ns / sample line: "
          "the median render time divided by that library's own number of sample lines.")
    for r in results:
        if "error" in r or r["problems"]:
            continue
        parts = []
        for v in r["variants"].values():
            parts.append(f"{v['title']} {v['output_bytes']:,} bytes / {v['output_lines']:,} lines, "
                         f"{fmt_ms(v['min_ms'])}–{fmt_ms(v['max_ms'])} ms, {v['number']} render(s) per measurement")
        print(f"note: {r['series']:,} label sets: " + "; ".join(parts) + ".")
    if env["prometheus_client_created_series"]:
        print("note: prometheus_client writes a _created sample per series in the text format and fastprom does "
              "not; the [pc: _created off] rows time prometheus_client with disable_created_metrics().")
    print("note: every output was parsed with prometheus_client.parser before timing and held exactly the "
          "recorded samples; after timing it was unchanged." if not any(r["problems"] for r in results)
          else "note: see the problems below.")
    problems = [p for r in results for p in r["problems"]]
    if problems:
        print(f"\n{len(problems)} problem(s) (wrong results or errors); tracebacks are on stderr:")
        for p in problems:
            print("  - " + p.strip())

    if args.json:
        write_json(args.json, {"environment": env, "sizes": list(sizes), "repeats": repeats,
                               "big_repeats": big_repeats, "target_seconds": target_s, "quick": args.quick,
                               "results": results})
    if args.chart:
        write_chart(args.chart, results, header)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
