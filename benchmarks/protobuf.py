#!/usr/bin/env python3
"""Protobuf render benchmark: fastprom's protobuf exposition per series against its text format 0.0.4 and
OpenMetrics, for a counter and for a histogram (12 buckets), in the same run.

Per shape and size, one fresh fastprom registry; the three renders of it are timed alternately, order rotated
every repeat.  Before timing, the protobuf body is decoded (with the protobuf package, when installed) and its
series counted.  Ratios only: per-series time of protobuf over text.
"""
from __future__ import annotations

import _common as c  # first: it keeps this directory from shadowing the standard library's http

import gc
import os
import sys
from typing import Any, Dict, List, Optional

import fastprom

FORMATS = (("text", "text 0.0.4", dict()), ("openmetrics", "OpenMetrics", dict(openmetrics=True)),
           ("protobuf", "protobuf", dict(protobuf=True)))


def build(shape: str, series: int) -> Any:
    reg = fastprom.CollectorRegistry()
    if shape == "counter":
        m = fastprom.Counter("http_requests", "Requests.", ["method", "path"], registry=reg)
        for i in range(series):
            m.labels("GET", f"/items/{i}").inc(i + 1)
    else:
        m = fastprom.Histogram("latency_seconds", "Latency.", ["path"], registry=reg)
        for i in range(series):
            m.labels(f"/items/{i}").observe(i % 10 / 10)
    return reg


def count_series(body: bytes) -> Optional[int]:
    """The Metric messages of a delimited protobuf body, or None without the protobuf package."""
    try:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
        from pb_schema import parse_delimited
    except ImportError:
        return None
    finally:
        sys.path.pop(0)
    return sum(len(f.metric) for f in parse_delimited(body))


def run(b: c.Bench, shape: str, series: int, repeats: int, target_ns: float) -> Dict[str, Any]:
    reg = build(shape, series)
    res: Dict[str, Any] = {"shape": shape, "series": series, "formats": {}}
    body = reg.render(protobuf=True)
    got = count_series(body)
    if got is not None and got != series:
        b.problem(f"{shape}, {series:,} series: the protobuf body holds {got:,} series")
        return res
    runs = {key: c.timer("reg.render(**kw)", {"reg": reg, "kw": kw}) for key, _, kw in FORMATS}
    numbers = {key: c.calibrate(runs[key], target_ns, 1 << 20)[0] for key, _, _ in FORMATS}
    samples: Dict[str, List[float]] = {key: [] for key, _, _ in FORMATS}
    for r in range(repeats):
        for key, _, _ in c.rotated(FORMATS, r):
            gc.collect()
            samples[key].append(runs[key](numbers[key]) / numbers[key])
    for key, title, kw in FORMATS:
        ns = c.spread(samples[key])
        res["formats"][key] = {"title": title, "ns": ns, "ns_per_series": ns["median"] / series,
                               "bytes": len(reg.render(**kw))}
    return res


def main(argv: Optional[List[str]] = None) -> int:
    b = c.Bench(__doc__, chart=False)
    b.option("--sizes", "1000,10000", "1000", "comma-separated series counts", metavar="N,N,...")
    b.option("--repeats", 7, 3, "repeats", minimum=1)
    b.option("--target-seconds", 0.2, 0.02, "length of one measurement", minimum=1e-6)
    args = b.parse(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    b.intro(["fastprom"], f"registry.render() in three formats; median of {args.repeats} repeats, each "
            f"~{args.target_seconds:g} s, the formats rotating")
    results, rows = [], []
    for shape in ("counter", "histogram"):
        for series in sizes:
            r = run(b, shape, series, args.repeats, args.target_seconds * 1e9)
            results.append(r)
            f = r["formats"]
            if not f:
                continue
            rows.append([shape, f"{series:,}", c.fmt_ratio(c.ratio(f["text"]["ns_per_series"],
                                                                   f["protobuf"]["ns_per_series"])),
                         c.fmt_ratio(c.ratio(f["openmetrics"]["ns_per_series"], f["protobuf"]["ns_per_series"])),
                         f"{f['protobuf']['bytes'] / f['text']['bytes']:.2f}"])
    c.table(["type", "series", "text / protobuf time", "OpenMetrics / protobuf time", "protobuf / text bytes"], rows)
    print("time ratios: per-series render time of the text format (or OpenMetrics) over protobuf's (above 1: "
          "protobuf is faster).")
    return b.finish({"sizes": sizes, "results": results})


if __name__ == "__main__":
    sys.exit(main())
