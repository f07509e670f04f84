#!/usr/bin/env python3
"""Render benchmark: generate_latest() of 1,000 to 100,000 series, fastprom against prometheus_client.

Per size, each library's fresh registry holds one counter of that many label sets (as in micro.py).  Timed
in the same run, order rotated every repeat: both libraries as they come (a _created sample per series in
each), and both after disable_created_metrics() (no _created samples).  Every output is parsed and checked
before timing (the same samples in both libraries) and must be unchanged after it (else exit status 1).
"""
from __future__ import annotations

import _common as c  # first: it keeps this directory from shadowing the standard library's http

import gc
import sys
import traceback
from typing import Any, Dict, List, Optional

import fastprom
import prometheus_client

BIG = 100_000  # from this size on, --big-repeats
VARIANTS = (("fastprom", "fastprom", False), ("prometheus_client", "prometheus_client", False),
            ("fastprom_created_off", "fastprom [_created off]", True),
            ("prometheus_client_created_off", "prometheus_client [_created off]", True))


def run_size(b: c.Bench, series: int, repeats: int, target_ns: float) -> Dict[str, Any]:
    c.log(f"  {series:,} label sets: building and checking ...")
    fp_reg, pc_reg = c.http_counter(fastprom, series), c.http_counter(prometheus_client, series)
    ns = {"fastprom": {"gen": fastprom.generate_latest, "reg": fp_reg},
          "prometheus_client": {"gen": prometheus_client.generate_latest, "reg": pc_reg},
          "fastprom_created_off": {"gen": fastprom.generate_latest, "reg": fp_reg},
          "prometheus_client_created_off": {"gen": prometheus_client.generate_latest, "reg": pc_reg}}
    res: Dict[str, Any] = {"series": series, "repeats": repeats, "variants": {}}
    outputs, ok = {}, True
    for key, title, off in VARIANTS:
        with c.created_off(off):
            out = outputs[key] = ns[key]["gen"](ns[key]["reg"])
        problem, created = c.check_http_counter(out.decode(), series)
        if problem is None and created != (0 if off else series):
            problem = f"{created:,} _created samples in the text format, expected {0 if off else series:,}"
        if problem:
            b.problem(f"{series:,} label sets, {title}: generate_latest output: {problem}")
            ok = False
        res["variants"][key] = {"title": title, "output_bytes": len(out), "output_lines": out.count(b"\n"),
                                "sample_lines": sum(1 for ln in out.splitlines() if ln and ln[:1] != b"#")}
    if not ok:
        return res
    runs = {key: c.timer("gen(reg)", ns[key]) for key in ns}
    for key, title, off in VARIANTS:
        c.log(f"  {series:,} label sets: calibrating {title} ...")
        with c.created_off(off):
            res["variants"][key]["number"] = c.calibrate(runs[key], target_ns, 1 << 20)[0]
    samples: Dict[str, List[float]] = {key: [] for key in ns}
    for r in range(repeats):
        c.log(f"  {series:,} label sets: repeat {r + 1}/{repeats}")
        for key, _, off in c.rotated(VARIANTS, r):
            n = res["variants"][key]["number"]
            gc.collect()
            with c.created_off(off):
                samples[key].append(runs[key](n) / n / 1e6)
    for key, title, off in VARIANTS:
        v = res["variants"][key]
        v["ms"] = c.spread(samples[key])
        v["ns_per_sample_line"] = v["ms"]["median"] * 1e6 / max(v["sample_lines"], 1)
        with c.created_off(off):  # nothing was recorded while timing: the same bytes again
            after = ns[key]["gen"](ns[key]["reg"])
        if after != outputs[key]:
            b.problem(f"{series:,} label sets, {title}: the output changed during timing "
                      f"({len(outputs[key]):,} bytes before, {len(after):,} after)")
    ms = {key: v["ms"]["median"] for key, v in res["variants"].items()}
    res["ratio"] = c.ratio(ms["prometheus_client"], ms["fastprom"])
    res["ratio_created_off"] = c.ratio(ms["prometheus_client_created_off"], ms["fastprom_created_off"])
    return res


def main(argv: Optional[List[str]] = None) -> int:
    b = c.Bench(__doc__)
    b.option("--sizes", "1000,10000,100000", "1000,10000", "comma-separated label-set counts", metavar="N,N,...")
    b.option("--repeats", 7, 3, "repeats below 100,000 label sets", minimum=1)
    b.option("--big-repeats", 3, help="repeats at 100,000 label sets and above", minimum=1)
    b.option("--target-seconds", 0.2, 0.02, "length of one measurement", minimum=1e-6)
    args = b.parse(argv)
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
        assert all(s >= 1 for s in sizes)
    except (ValueError, AssertionError):
        b.ap.error("--sizes takes comma-separated positive integers")
    big = f" ({args.big_repeats} at {BIG:,}+ label sets)" if max(sizes) >= BIG else ""
    b.intro(["fastprom", "prometheus_client"], f"generate_latest(registry), one counter with 2 labels; median of "
            f"{args.repeats} repeats{big}, each ~{args.target_seconds:g} s, the three variants rotating")

    results = []
    for series in sizes:
        gc.collect()
        try:
            results.append(run_size(b, series, args.big_repeats if series >= BIG else args.repeats,
                                    args.target_seconds * 1e9))
        except Exception:
            b.problem(f"{series:,} label sets: exception:\n{traceback.format_exc()}")
            results.append({"series": series, "variants": {}})
    done = [r for r in results if "ratio" in r]
    rows = []
    for r in results:
        if r not in done:
            rows.append([f"{r['series']:,} (**check failed or error**)"] + ["—"] * 6)
            continue
        for fkey, key, suffix, rt in (("fastprom", "prometheus_client", "", r["ratio"]),
                                      ("fastprom_created_off", "prometheus_client_created_off", " [_created off]",
                                       r["ratio_created_off"])):
            fp, pc = r["variants"][fkey], r["variants"][key]
            rows.append([f"{r['series']:,}{suffix}", c.num(fp["ms"]["median"]), c.num(pc["ms"]["median"]),
                         c.fmt_ratio(rt), c.num(fp["ns_per_sample_line"]), c.num(pc["ns_per_sample_line"]),
                         f"{fp['sample_lines']:,} / {pc['sample_lines']:,}"])
    c.table(["label sets", "fastprom ms", "prometheus_client ms", "ratio", "fastprom ns / sample line",
             "prometheus_client ns / sample line", "sample lines: fastprom / prometheus_client"], rows)
    print("ratio: prometheus_client median / fastprom median (above 1: fastprom is faster); ns / sample line: the "
          "median divided by that library's own number of sample lines. [_created off]: both libraries after "
          "disable_created_metrics().")
    for r in done:
        print(f"note: {r['series']:,} label sets: " + "; ".join(
            f"{v['title']} {v['output_bytes']:,} bytes / {v['output_lines']:,} lines, {c.span(v['ms'])} ms, "
            f"{v['number']} render(s) per measurement" for v in r["variants"].values()))

    def chart() -> List[c.Panel]:
        return [c.Panel("ms per generate_latest() (median, log scale; lower is better)",
                        [f"{r['series']:,} label sets" for r in done],
                        {title: [r["variants"][key]["ms"]["median"] for r in done] for key, title, _ in VARIANTS},
                        [f"{c.fmt_ratio(r['ratio'])} / {c.fmt_ratio(r['ratio_created_off'])}" for r in done], log=True)]
    return b.finish({"sizes": sizes, "results": results}, chart)


if __name__ == "__main__":
    sys.exit(main())
