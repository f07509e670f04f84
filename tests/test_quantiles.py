"""Summary quantiles over a sliding window: accuracy, window, workers, bad input."""
import math
import multiprocessing
import os
import random
import subprocess
import sys

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

import fastprom
from fastprom import CollectorRegistry, InvalidMetricError, Summary

QS = (0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999)
BOUND = 0.01  # the stated relative error


def exact(sorted_values, q):
    return sorted_values[math.floor(q * (len(sorted_values) - 1))]


def reported(registry, name="s", labels=None):
    out = {}
    for fam in registry.collect():
        for s in fam.samples:
            if s.name == name and "quantile" in s.labels:
                rest = {k: v for k, v in s.labels.items() if k != "quantile"}
                if rest == (labels or {}):
                    out[float(s.labels["quantile"])] = s.value
    return out


def assert_within(estimates, values):
    values = sorted(values)
    for q in QS:
        want, got = exact(values, q), estimates[q]
        assert abs(got - want) <= BOUND * abs(want), (q, want, got)


DISTRIBUTIONS = {
    "uniform": lambda r: r.uniform(0, 1000),
    "normal": lambda r: r.gauss(50, 10),
    "lognormal": lambda r: r.lognormvariate(0, 2),
    "pareto": lambda r: r.paretovariate(1.2),  # heavy-tailed
}


@pytest.mark.parametrize("dist", sorted(DISTRIBUTIONS))
def test_quantiles_within_the_bound_for_a_million_values(dist):
    rnd = random.Random(dist)
    draw = DISTRIBUTIONS[dist]
    values = [draw(rnd) for _ in range(1_000_000)]
    reg = CollectorRegistry()
    s = Summary("s", "S", quantiles=QS, registry=reg)
    for v in values:
        s.observe(v)
    assert_within(reported(reg), values)
    assert reg.get_sample_value("s_count") == len(values)


def test_signs_zero_and_extremes_are_handled():
    reg = CollectorRegistry()
    s = Summary("s", "S", quantiles=(0.0, 0.25, 0.5, 0.75, 1.0), registry=reg)
    for v in (-250.0, -1e-12, 0.0, 3e-10, 1e15):
        s.observe(v)
    q = reported(reg)
    assert q[0.0] == pytest.approx(-250.0, rel=BOUND)
    assert q[0.25] == 0.0 and q[0.5] == 0.0 and q[0.75] == 0.0  # |v| < 1e-9 counts as zero
    assert q[1.0] == pytest.approx(1e12, rel=BOUND)  # magnitudes past 1e12 are reported as 1e12
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match="finite"):
            s.observe(bad)
    assert reg.get_sample_value("s_count") == 5


def test_window_slides_at_the_documented_time(registry):
    t0 = 1_000_000.0  # epochs of 120 s start at multiples of 120: t0 is 40 s into one
    fastprom.freeze_clock(t0)
    try:
        s = Summary("s", "S", quantiles=(0.5,), max_age_seconds=600, age_buckets=5, registry=registry)
        assert math.isnan(reported(registry)[0.5])  # empty window: NaN, as the Go client
        for _ in range(10):
            s.observe(100.0)
        epoch_start = t0 - t0 % 120
        fastprom.freeze_clock(t0 + 200)
        for _ in range(3):
            s.observe(1.0)
        assert reported(registry)[0.5] == pytest.approx(100.0, rel=BOUND)
        # The first observations expire when their epoch leaves the window:
        # at the start of the 5th epoch after theirs, 600 - 40 s after them.
        fastprom.freeze_clock(epoch_start + 600 - 0.001)
        assert reported(registry)[0.5] == pytest.approx(100.0, rel=BOUND)
        fastprom.freeze_clock(epoch_start + 600)
        assert reported(registry)[0.5] == pytest.approx(1.0, rel=BOUND)
        fastprom.freeze_clock(t0 + 200 + 600)
        assert math.isnan(reported(registry)[0.5])
        assert registry.get_sample_value("s_count") == 13  # count and sum are not windowed
    finally:
        fastprom.freeze_clock(None)


def test_window_is_right_after_a_quiet_spell(registry):
    """No observation and no scrape for several epochs: nothing is lost or double-counted."""
    fastprom.freeze_clock(2_000_000.0)
    try:
        s = Summary("s", "S", quantiles=(0.5,), max_age_seconds=60, age_buckets=3, registry=registry)
        s.observe(7.0)
        fastprom.freeze_clock(2_000_000.0 + 25)
        s.observe(7.0)
        fastprom.freeze_clock(2_000_000.0 + 35)  # no events for a while, then a scrape
        assert reported(registry)[0.5] == pytest.approx(7.0, rel=BOUND)
        fastprom.freeze_clock(2_000_000.0 + 1000)
        assert math.isnan(reported(registry)[0.5])
    finally:
        fastprom.freeze_clock(None)


def test_labelled_quantiles_render_in_both_formats(registry):
    s = Summary("latency_seconds", "Latency.", ["route"], quantiles=(0.5, 0.99), registry=registry)
    for i in range(1, 101):
        s.labels("/a").observe(i / 100)
    text = fastprom.generate_latest(registry).decode()
    assert 'latency_seconds{quantile="0.5",route="/a"} 0.' in text
    assert 'latency_seconds{quantile="0.99",route="/a"} 0.99' in text or 'latency_seconds{quantile="0.99",route="/a"} 1' in text
    for parse, body in ((parse_text, text), (parse_om, fastprom.generate_openmetrics(registry).decode())):
        (fam,) = [f for f in parse(body) if f.name == "latency_seconds"]
        qs = {s.labels["quantile"]: s.value for s in fam.samples if "quantile" in s.labels}
        assert qs["0.5"] == pytest.approx(0.5, rel=BOUND) and qs["0.99"] == pytest.approx(0.99, rel=BOUND)


@pytest.mark.parametrize("kwargs,match", [
    ({"quantiles": (0.5, 1.5)}, "between 0 and 1"),
    ({"quantiles": (-0.1,)}, "between 0 and 1"),
    ({"quantiles": (0.5, 0.5)}, "duplicate"),
    ({"quantiles": (float("nan"),)}, "between 0 and 1"),
    ({"quantiles": ("x",)}, "numbers"),
    ({"quantiles": tuple(i / 100 for i in range(40))}, "at most 32"),
    ({"quantiles": (0.5,), "max_age_seconds": 0}, "max_age_seconds"),
    ({"quantiles": (0.5,), "max_age_seconds": float("inf")}, "max_age_seconds"),
    ({"quantiles": (0.5,), "age_buckets": 0}, "age_buckets"),
    ({"quantiles": (0.5,), "age_buckets": 1.5}, "age_buckets"),
])
def test_invalid_quantile_configuration(registry, kwargs, match):
    with pytest.raises(InvalidMetricError, match=match):
        Summary("bad", "B", registry=registry, **kwargs)
    assert fastprom.generate_latest(registry) == b""


def test_default_is_count_and_sum_only(registry):
    s = Summary("plain", "P", registry=registry)
    s.observe(3)
    assert b"quantile" not in fastprom.generate_latest(registry)


def _observe_half(directory, values, barrier):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    import fastprom as fp

    s = fp.Summary("shared", "S", quantiles=QS)
    barrier.wait()
    for v in values:
        s.observe(v)
    barrier.wait()


def test_two_workers_report_the_quantiles_of_the_whole_set(tmp_path):
    rnd = random.Random(6)
    values = [rnd.lognormvariate(3, 1) for _ in range(200_000)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_observe_half, args=(str(tmp_path), half, barrier))
             for half in (values[::2], values[1::2])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    code = ("import fastprom; fastprom.Summary('shared', 'S', quantiles=%r)\n"
            "print(fastprom.generate_latest().decode())" % (QS,))
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (fam,) = [f for f in parse_text(r.stdout) if f.name == "shared"]
    est = {float(s.labels["quantile"]): s.value for s in fam.samples if "quantile" in s.labels}
    assert_within(est, values)
    assert [s.value for s in fam.samples if s.name == "shared_count"] == [len(values)]
