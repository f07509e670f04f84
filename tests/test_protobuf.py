"""The protobuf exposition, decoded with the io.prometheus.client schema
(tests/pb_schema.py), against the text format's samples for every type."""
import math

import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client.parser import text_string_to_metric_families

import fastprom as fp
from fastprom import CollectorRegistry
from fastprom.metrics_core import (CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily,
                                   HistogramMetricFamily, InfoMetricFamily, StateSetMetricFamily,
                                   SummaryMetricFamily, UnknownMetricFamily)

from pb_schema import METRIC_TYPES, parse_delimited, samples as pb_samples


def text_samples(body: bytes):
    out = set()
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.add((s.name, tuple(sorted(s.labels.items())), s.value))
    return out


def normal(samples):
    # Created timestamps: protobuf carries microseconds.
    return {(n, l, round(v, 6) if n.endswith("_created") else v) for n, l, v in samples}


def same_samples(registry):
    text = registry.render(False)
    fams = parse_delimited(registry.render(protobuf=True))
    assert normal(pb_samples(fams)) == normal(text_samples(text))
    return {f.name: f for f in fams}


class Custom:
    def collect(self):
        c = CounterMetricFamily("jobs", "Jobs.", labels=["q"], created=1700000000.5)
        c.add_metric(["a"], 4, created=1700000000.25)
        c.add_metric(["b"], 1.5)
        yield c
        g = GaugeMetricFamily("depth", "Depth.", labels=["q"])
        g.add_metric(["a"], -3)
        g.add_metric(["b"], float("inf"))
        yield g
        h = HistogramMetricFamily("wait", "Wait.", labels=["q"])
        h.add_metric(["a"], [("0.5", 1), ("1.0", 3), ("+Inf", 4)], sum_value=2.5)
        h.add_metric(["b"], [("+Inf", 2)], sum_value=7)
        yield h
        s = SummaryMetricFamily("size", "Size.", labels=["q"])
        s.add_metric(["a"], count_value=3, sum_value=9.5)
        yield s
        yield InfoMetricFamily("build", "Build.", value={"version": "1.2", "commit": "abc"})
        yield StateSetMetricFamily("mode", "Mode.", value={"on": True, "off": False})
        yield UnknownMetricFamily("mystery", "Mystery.", value=42)
        gh = GaugeHistogramMetricFamily("queue", "Queue.", buckets=[("1.0", 2), ("+Inf", 5)], gsum_value=11)
        yield gh


def test_store_families_every_type(registry):
    c = fp.Counter("reqs", "Requests.", ["method"], registry=registry)
    c.labels("GET").inc(3)
    c.labels('we"ird\\\n').inc(0.5)
    fp.Gauge("temp", "Temperature.", unit="celsius", registry=registry).set(-2.5)
    h = fp.Histogram("lat", "Latency.", ["path"], buckets=(0.1, 1, 10), registry=registry)
    for v in (0.05, 0.5, 5, 50):
        h.labels("/a").observe(v)
    h.labels("/b")
    s = fp.Summary("sz", "Sizes.", registry=registry)
    s.observe(4)
    q = fp.Summary("qs", "Quantiles.", quantiles=(0.5, 0.99), registry=registry)
    for v in range(1, 101):
        q.observe(v)
    fp.Info("build", "Build.", registry=registry).info({"version": "1"})
    fp.Enum("state", "State.", states=["a", "b"], registry=registry).state("b")
    fams = same_samples(registry)
    assert {n: METRIC_TYPES[f.type] for n, f in fams.items()} == {
        "reqs_total": "COUNTER", "temp_celsius": "GAUGE", "lat": "HISTOGRAM", "sz": "SUMMARY", "qs": "SUMMARY",
        "build_info": "GAUGE", "state": "GAUGE"}
    assert fams["temp_celsius"].unit == "celsius"
    assert fams["reqs_total"].help == "Requests."
    values = {lp.value for m in fams["reqs_total"].metric for lp in m.label}
    assert values == {"GET", 'we"ird\\\n'}
    hist = fams["lat"].metric[0].histogram
    assert [b.upper_bound for b in hist.bucket] == [0.1, 1, 10, math.inf]
    assert [b.cumulative_count for b in hist.bucket] == [1, 2, 3, 4]
    assert hist.sample_count == 4 and hist.sample_sum == 55.55
    # The native part stays empty for classic histograms.
    assert not hist.positive_span and not hist.HasField("schema")


def test_custom_collector_families_every_type(registry):
    registry.register(Custom())
    fams = same_samples(registry)
    assert {n: METRIC_TYPES[f.type] for n, f in fams.items()} == {
        "jobs_total": "COUNTER", "depth": "GAUGE", "wait": "HISTOGRAM", "size": "SUMMARY", "build_info": "GAUGE",
        "mode": "GAUGE", "mystery": "UNTYPED", "queue": "GAUGE_HISTOGRAM"}
    jobs = fams["jobs_total"].metric
    assert jobs[0].counter.created_timestamp.seconds == 1700000000
    assert jobs[0].counter.created_timestamp.nanos == 250000000
    assert not jobs[1].counter.HasField("created_timestamp")


def test_exemplars_and_created_timestamps(registry):
    fp.freeze_clock(1700000000.125)
    try:
        c = fp.Counter("hits", "Hits.", registry=registry)
        c.inc(2, exemplar={"trace_id": "abc"})
        h = fp.Histogram("lat", "Latency.", buckets=(1, 2), registry=registry)
        h.observe(1.5, exemplar={"trace_id": "def"})
    finally:
        fp.freeze_clock(None)
    fams = {f.name: f for f in parse_delimited(registry.render(protobuf=True))}
    counter = fams["hits_total"].metric[0].counter
    assert counter.value == 2
    assert [(lp.name, lp.value) for lp in counter.exemplar.label] == [("trace_id", "abc")]
    assert counter.exemplar.value == 2
    assert counter.exemplar.timestamp.seconds == 1700000000
    assert counter.exemplar.timestamp.nanos == 125000000
    assert counter.created_timestamp.seconds == 1700000000
    buckets = fams["lat"].metric[0].histogram.bucket
    assert not buckets[0].HasField("exemplar")
    assert buckets[1].exemplar.value == 1.5
    assert [(lp.name, lp.value) for lp in buckets[1].exemplar.label] == [("trace_id", "def")]
    assert fams["lat"].metric[0].histogram.created_timestamp.nanos == 125000000


def test_custom_exemplars_and_timestamps(registry):
    class C:
        def collect(self):
            c = CounterMetricFamily("ev", "Events.", labels=["k"])
            c.add_metric(["x"], 3, timestamp=1700000000.5)
            c.samples[0] = c.samples[0]._replace(exemplar=fp.Exemplar({"id": "1"}, 1.0, 1700000000.0))
            yield c
            h = HistogramMetricFamily("h", "H.")
            h.add_metric([], [("1.0", 1, fp.Exemplar({"id": "2"}, 0.5)), ("+Inf", 1)], sum_value=0.5)
            yield h

    registry.register(C())
    fams = {f.name: f for f in parse_delimited(registry.render(protobuf=True))}
    m = fams["ev_total"].metric[0]
    assert m.timestamp_ms == 1700000000500
    assert m.counter.exemplar.value == 1.0 and m.counter.exemplar.label[0].value == "1"
    b = fams["h"].metric[0].histogram.bucket[0]
    assert b.exemplar.value == 0.5 and not b.exemplar.HasField("timestamp")


def test_created_samples_off(registry):
    fp.Counter("c", "C.", registry=registry).inc()
    fp.disable_created_metrics()
    try:
        fams = parse_delimited(registry.render(protobuf=True))
    finally:
        fp.enable_created_metrics()
    assert not fams[0].metric[0].counter.HasField("created_timestamp")


def test_families_without_series_are_left_out(registry):
    fp.Counter("none_yet", "Nothing yet.", ["a"], registry=registry)
    fp.Gauge("g", "G.", registry=registry).set(1)
    assert [f.name for f in parse_delimited(registry.render(protobuf=True))] == ["g"]
    assert CollectorRegistry(auto_describe=True).render(protobuf=True) == b""


@pytest.mark.parametrize("escaping,name,label", [
    ("underscores", "my_metric", "a_b"),
    ("allow-utf-8", "my.metric", "a.b"),
    ("dots", "my_dot_metric", "a_dot_b"),
])
def test_utf8_names_by_scheme(registry, escaping, name, label):
    class C:
        def collect(self):
            g = GaugeMetricFamily("my.metric", "UTF-8.", labels=["a.b"])
            g.add_metric(["x"], 1)
            yield g

    registry.register(C())
    (fam,) = parse_delimited(fp.generate_protobuf(registry, escaping=escaping))
    assert fam.name == name
    assert fam.metric[0].label[0].name == label


def test_a_sample_protobuf_cannot_hold_is_refused(registry):
    class C:
        def collect(self):
            g = GaugeMetricFamily("g", "G.")
            g.add_sample("other_name", {}, 1)
            yield g

    registry.register(C())
    with pytest.raises(ValueError, match="other_name of gauge family g has no place in the protobuf format"):
        registry.render(protobuf=True)
    # The text formats have a place for it.
    assert b"other_name" in registry.render(False)


def test_bucket_without_le_is_refused(registry):
    class C:
        def collect(self):
            h = HistogramMetricFamily("h", "H.")
            h.add_sample("h_bucket", {}, 1)
            yield h

    registry.register(C())
    with pytest.raises(ValueError, match="has no le label"):
        registry.render(protobuf=True)


def test_prometheus_client_registry_in_protobuf():
    import prometheus_client

    reg = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("pc", "From prometheus_client.", registry=reg).inc(7)
    fams = {f.name: f for f in parse_delimited(fp.generate_protobuf(reg))}
    assert fams["pc_total"].metric[0].counter.value == 7


_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_values, st.floats(0, 1e9, allow_nan=False)), min_size=1, max_size=6),
       st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=8), st.floats(allow_nan=True))
def test_random_series_same_samples(series, observations, gauge):
    """Any label values and values: protobuf holds the text format's samples."""
    registry = CollectorRegistry()
    c = fp.Counter("c", "C.", ["k"], registry=registry)
    h = fp.Histogram("h", "H.", ["k"], buckets=(-1, 0, 2.5), registry=registry)
    g = fp.Gauge("g", "G.", ["k"], registry=registry)
    for k, v in series:
        c.labels(k).inc(v)
        g.labels(k).set(gauge)
        for o in observations:
            h.labels(k).observe(o)
    text = normal(text_samples(registry.render(False)))
    pb = normal(pb_samples(parse_delimited(registry.render(protobuf=True))))
    # The text format leaves out the _sum of a histogram with a negative
    # bucket; protobuf always has the field.  NaN never equals itself.
    pb = {s for s in pb if s[0] != "h_sum"}

    def key(samples):
        return {(n, lab, "nan" if isinstance(v, float) and math.isnan(v) else v) for n, lab, v in samples}

    assert key(pb) == key(text)


def test_shared_store_of_several_processes(tmp_path):
    """A store shared by worker processes: counters summed over workers and
    per-process gauges combined as their mode says, the same in protobuf as
    in text."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE="8M")
    writer = ("import sys, fastprom; fastprom.Counter('jobs', 'Jobs.', ['w']).labels(sys.argv[1]).inc(3); "
              "fastprom.Gauge('seen', 'Seen.', multiprocess_mode='max').set(len(sys.argv[1])); "
              "fastprom.Gauge('each', 'Each.', multiprocess_mode='all').set(1)")
    for w in ("a", "bb"):
        r = subprocess.run([sys.executable, "-c", writer, w], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    reader = ("import sys; from fastprom import CollectorRegistry, generate_latest, generate_protobuf, multiprocess\n"
              "registry = CollectorRegistry(); multiprocess.MultiProcessCollector(registry)\n"
              "sys.stdout.buffer.write(generate_protobuf(registry) + b'\\0SPLIT\\0' + generate_latest(registry))\n")
    r = subprocess.run([sys.executable, "-c", reader], env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pb, _, text = r.stdout.partition(b"\0SPLIT\0")
    fams = parse_delimited(pb)
    assert normal(pb_samples(fams)) == normal(text_samples(text))
    byname = {f.name: f for f in fams}
    assert byname["seen"].metric[0].gauge.value == 2
    assert len(byname["each"].metric) == 2  # one per process, with its pid label


@pytest.mark.parametrize("count", [1.5, -1.0])
def test_a_summary_count_protobuf_cannot_hold_is_refused(registry, count):
    """A summary's sample_count is an unsigned integer in the schema (there is
    no float twin, as histograms have): written as a double it would make
    Prometheus refuse the whole scrape."""
    class C:
        def collect(self):
            yield SummaryMetricFamily("s", "S.", count_value=count, sum_value=2.0)

    registry.register(C())
    with pytest.raises(ValueError, match="summary family s: the protobuf format needs a count that is a whole"):
        registry.render(protobuf=True)
    assert b"s_count " in registry.render(False)


def test_a_timestamp_past_what_milliseconds_hold_is_refused(registry):
    class C:
        def collect(self):
            g = GaugeMetricFamily("g", "G.", labels=["x"])
            g.add_metric(["x"], 1.0, timestamp=1e300)
            yield g

    registry.register(C())
    with pytest.raises(ValueError, match="has a timestamp out of range"):
        registry.render(protobuf=True)
