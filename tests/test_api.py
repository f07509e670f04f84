"""The metric API, as a prometheus_client user would exercise it."""
import asyncio
import math
import time

import pytest

import fastprom
from fastprom import (CollectorRegistry, Counter, CounterMetricFamily, DuplicateTimeseries, Enum, Gauge,
                      GaugeMetricFamily, Histogram, Info, InvalidMetricError, Summary, generate_latest)


def value(reg, name, labels=None):
    return reg.get_sample_value(name, labels or {})


def test_counter_inc_and_labels(registry):
    c = Counter("jobs", "Jobs done", ["queue", "kind"], registry=registry)
    c.labels("q1", "a").inc()
    c.labels("q1", "a").inc(2)
    c.labels(queue="q1", kind="b").inc(0.25)
    assert c.labels("q1", "a") is c.labels(kind="a", queue="q1")
    assert value(registry, "jobs_total", {"queue": "q1", "kind": "a"}) == 3
    assert value(registry, "jobs_total", {"queue": "q1", "kind": "b"}) == 0.25


def test_counter_name_total_suffix_and_namespace(registry):
    c = Counter("hits_total", "Hits", namespace="app", subsystem="web", registry=registry)
    c.inc()
    assert value(registry, "app_web_hits_total") == 1
    assert b"# TYPE app_web_hits_total counter" in generate_latest(registry)


def test_label_values_are_stringified(registry):
    c = Counter("c", "C", ["code"], registry=registry)
    c.labels(200).inc()
    assert c.labels("200") is c.labels(200)
    assert value(registry, "c_total", {"code": "200"}) == 1


def test_large_integer_and_float_increments_are_exact(registry):
    c = Counter("big", "Big", registry=registry)
    c.inc(2**40)
    c.inc(2**40)
    c.inc(0.5)
    assert value(registry, "big_total") == 2**41 + 0.5


def test_gauge_operations(registry):
    g = Gauge("temp", "Temperature", registry=registry)
    g.set(10)
    g.inc()
    g.dec(3.5)
    assert value(registry, "temp") == 7.5
    g.set(float("nan"))
    assert math.isnan(value(registry, "temp"))
    before = time.time()
    g.set_to_current_time()
    assert before <= value(registry, "temp") <= time.time()


def test_gauge_track_inprogress_and_time(registry):
    g = Gauge("inprog", "In progress", registry=registry)
    with g.track_inprogress():
        assert value(registry, "inprog") == 1
    assert value(registry, "inprog") == 0

    @g.track_inprogress()
    def f():
        return value(registry, "inprog")

    assert f() == 1
    with g.time():
        time.sleep(0.01)
    assert value(registry, "inprog") >= 0.009


def test_gauge_set_function(registry):
    g = Gauge("fn", "From a function", registry=registry)
    box = [3.0]
    g.set_function(lambda: box[0])
    assert value(registry, "fn") == 3.0
    box[0] = 7.0
    assert b"fn 7.0\n" in generate_latest(registry)


def test_histogram_buckets_count_sum(registry):
    h = Histogram("lat", "Latency", buckets=[0.1, 1, 10], registry=registry)
    for v in (0.05, 0.1, 0.5, 1, 5, 50):
        h.observe(v)
    get = lambda le: value(registry, "lat_bucket", {"le": le})
    assert [get("0.1"), get("1.0"), get("10.0"), get("+Inf")] == [2, 4, 5, 6]
    assert value(registry, "lat_count") == 6
    assert value(registry, "lat_sum") == pytest.approx(56.65)


def test_histogram_time_decorator_sync_and_async(registry):
    h = Histogram("t", "Timing", registry=registry)

    @h.time()
    def work():
        return 42

    @h.time()
    async def awork():
        await asyncio.sleep(0)
        return 43

    assert work() == 42
    assert asyncio.run(awork()) == 43
    with h.time():
        pass
    assert value(registry, "t_count") == 3


def test_summary_count_sum_and_time(registry):
    s = Summary("size", "Size", ["route"], registry=registry)
    s.labels("/").observe(10)
    s.labels("/").observe(5.5)
    with s.labels("/x").time():
        pass
    assert value(registry, "size_count", {"route": "/"}) == 2
    assert value(registry, "size_sum", {"route": "/"}) == 15.5
    assert value(registry, "size_count", {"route": "/x"}) == 1


def test_count_exceptions(registry):
    c = Counter("errors", "Errors", registry=registry)

    @c.count_exceptions(ValueError)
    def boom(exc):
        raise exc

    with pytest.raises(ValueError):
        boom(ValueError())
    with pytest.raises(KeyError):
        boom(KeyError())
    with c.count_exceptions():
        pass
    assert value(registry, "errors_total") == 1


def test_remove_and_clear(registry):
    c = Counter("r", "R", ["a"], registry=registry)
    c.labels("x").inc()
    c.labels("y").inc()
    c.remove("x")
    assert value(registry, "r_total", {"a": "x"}) is None
    assert value(registry, "r_total", {"a": "y"}) == 1
    c.labels("x").inc(5)  # a removed series starts again from zero
    assert value(registry, "r_total", {"a": "x"}) == 5
    c.clear()
    assert b"r_total{" not in generate_latest(registry)
    c.remove("never-created")  # no error, as prometheus_client


def test_info_and_enum(registry):
    i = Info("build", "Build info", registry=registry)
    i.info({"version": "1.2.3", "commit": "abc"})
    e = Enum("state", "State", ["worker"], states=["idle", "busy"], registry=registry)
    e.labels("w1").state("busy")
    assert value(registry, "build_info", {"version": "1.2.3", "commit": "abc"}) == 1
    assert value(registry, "state", {"worker": "w1", "state": "busy"}) == 1
    assert value(registry, "state", {"worker": "w1", "state": "idle"}) == 0
    with pytest.raises(ValueError, match="unknown state 'gone'"):
        e.labels("w1").state("gone")


def test_custom_collector(registry):
    class Jobs:
        def collect(self):
            yield GaugeMetricFamily("queue_depth", "Depth", value=4)
            c = CounterMetricFamily("processed", "Processed", labels=["q"])
            c.add_metric(["a"], 10)
            yield c

    registry.register(Jobs())
    assert value(registry, "queue_depth") == 4
    assert value(registry, "processed_total", {"q": "a"}) == 10
    out = generate_latest(registry)
    assert b"# TYPE processed_total counter\nprocessed_total{q=\"a\"} 10.0\n" in out


def test_unregister_and_registry_none(registry):
    c = Counter("gone", "Gone", registry=registry)
    c.inc()
    registry.unregister(c)
    assert b"gone" not in generate_latest(registry)
    free = Counter("free", "Not registered", registry=None)
    free.inc()
    registry.register(free)
    assert value(registry, "free_total") == 1
    assert b"free_total 1.0\n" in generate_latest(registry)


def test_default_registry_has_process_and_platform_collectors():
    out = generate_latest().decode()
    assert "process_cpu_seconds_total" in out
    assert "process_resident_memory_bytes" in out
    assert "process_open_fds" in out
    assert 'python_info{' in out and 'version="' in out
    assert 'python_gc_collections_total{generation="0"}' in out


# ---- bad input: a clear error, and the store unchanged ---------------------

@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", "é"])
def test_invalid_metric_names(registry, name):
    with pytest.raises(InvalidMetricError, match="name"):
        Counter(name, "doc", registry=registry)
    assert generate_latest(registry) == b""


@pytest.mark.parametrize("cls,labels,match", [
    (Counter, ["a-b"], "invalid label name"),
    (Counter, ["__x"], "reserved"),
    (Counter, ["a", "a"], "duplicate label names"),
    (Histogram, ["le"], "reserved"),
    (Summary, ["quantile"], "reserved"),
    (Counter, "ab", "not a str"),
])
def test_invalid_label_names(registry, cls, labels, match):
    with pytest.raises(InvalidMetricError, match=match):
        cls("m", "doc", labels, registry=registry)
    assert issubclass(InvalidMetricError, ValueError)
    assert generate_latest(registry) == b""


def test_enum_name_is_reserved_label(registry):
    with pytest.raises(InvalidMetricError, match="reserved"):
        Enum("state", "doc", ["state"], states=["a"], registry=registry)


@pytest.mark.parametrize("buckets,match", [
    ([2, 1], "sorted"),
    ([1, 1], "sorted"),
    ([float("nan"), 1], "sorted|NaN"),
    ([], "at least one bucket"),
    (["x"], "numbers"),
])
def test_invalid_buckets(registry, buckets, match):
    with pytest.raises(InvalidMetricError, match=match):
        Histogram("h", "doc", buckets=buckets, registry=registry)
    assert generate_latest(registry) == b""


def test_wrong_label_count_and_names(registry):
    c = Counter("c", "C", ["a", "b"], registry=registry)
    with pytest.raises(ValueError, match="c: expected 2 label values"):
        c.labels("x")
    with pytest.raises(ValueError, match="label names must be exactly"):
        c.labels(a="x", z="y")
    with pytest.raises(ValueError, match="not both"):
        c.labels("x", b="y")
    with pytest.raises(ValueError, match="call .labels"):
        c.inc()
    with pytest.raises(ValueError, match="has no labels"):
        Counter("nolabels", "N", registry=registry).labels("x")
    assert b"c_total{" not in generate_latest(registry)


def test_negative_and_non_finite_updates_leave_value_unchanged(registry):
    c = Counter("c", "C", registry=registry)
    h = Histogram("h", "H", registry=registry)
    s = Summary("s", "S", registry=registry)
    c.inc(3)
    with pytest.raises(ValueError, match="Counters can only be incremented by non-negative amounts."):
        c.inc(-1)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            c.inc(bad)
        with pytest.raises(ValueError, match="h: observed value must be a finite number"):
            h.observe(bad)
        with pytest.raises(ValueError, match="finite"):
            s.observe(bad)
    with pytest.raises(TypeError):
        c.inc("1")
    assert value(registry, "c_total") == 3
    assert value(registry, "h_count") == 0
    assert value(registry, "s_count") == 0


def test_bad_exemplars_are_rejected_after_counting(registry):
    """As in prometheus_client, the increment stands; the exemplar is refused."""
    c = Counter("c", "C", registry=registry)
    with pytest.raises(ValueError, match="128 characters"):
        c.inc(1, exemplar={"trace_id": "x" * 200})
    with pytest.raises(ValueError, match="invalid exemplar label name"):
        c.inc(1, exemplar={"bad-name": "x"})
    with pytest.raises(TypeError, match="exemplar must be a dict"):
        c.inc(1, exemplar=["trace_id"])
    assert value(registry, "c_total") == 3
    assert b"# {" not in fastprom.generate_openmetrics(registry)


def test_duplicate_registration(registry):
    Counter("dup", "first", registry=registry).inc()
    with pytest.raises(DuplicateTimeseries, match="dup"):
        Counter("dup", "second", registry=registry)
    with pytest.raises(DuplicateTimeseries):
        Gauge("dup_total", "clashes with the counter's sample", registry=registry)
    assert value(registry, "dup_total") == 1
    assert generate_latest(registry).count(b"# HELP dup_total first") == 1


def test_full_store_counts_new_series_under_an_overflow_series():
    reg = CollectorRegistry(store_size=1 << 20)
    c = Counter("many", "Many", ["i", "j"], registry=reg)
    n = 6000
    with pytest.warns(RuntimeWarning, match="many: the metrics store is full"):
        for i in range(n):
            c.labels(str(i), "x").inc()
    samples = {s.labels["i"]: s.value for m in reg.collect() for s in m.samples if s.name == "many_total"}
    assert "fastprom_overflow" in samples and len(samples) < n
    assert sum(samples.values()) == n  # nothing recorded is lost
    overflowed = reg.get_sample_value("fastprom_store_overflow_total")
    assert overflowed == samples["fastprom_overflow"]
    c.labels("0", "x").inc()  # existing series keep working
    assert reg.get_sample_value("many_total", {"i": "0", "j": "x"}) == 2
    assert b'many_total{i="fastprom_overflow",j="fastprom_overflow"}' in generate_latest(reg)


def test_no_reference_or_memory_leaks(registry):
    """Hot paths, error paths and exemplars neither leak references nor memory."""
    import gc
    import sys
    import tracemalloc

    c = Counter("leak", "L", ["k"], registry=registry)
    h = Histogram("leakh", "L", ["k"], registry=registry)
    # Built at run time, so not an interned string other code also holds.
    key, big, ex = "".join(["leak-", "check-", str(len(registry._names))]), 2**70, {"trace_id": "t"}

    def churn():
        for i in range(2000):
            c.labels(key).inc(big)
            c.labels(k=key).inc(1, exemplar=ex)
            h.labels(key).observe(0.5, ex)
            for bad in (lambda: c.labels(key).inc(-1), lambda: c.labels(), lambda: h.observe(1),
                        lambda: c.labels(key).inc(1, {"bad-name": "x"})):
                try:
                    bad()
                except (ValueError, TypeError):
                    pass
        generate_latest(registry)
        fastprom.generate_openmetrics(registry)

    churn()  # creates the two cached children, which hold `key`
    gc.collect()
    refs = (sys.getrefcount(key), sys.getrefcount(big), sys.getrefcount(ex))
    tracemalloc.start()
    snap = tracemalloc.take_snapshot()
    for _ in range(5):
        churn()
    gc.collect()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap, "filename"))
    tracemalloc.stop()
    assert (sys.getrefcount(key), sys.getrefcount(big), sys.getrefcount(ex)) == refs
    assert grown < 64 * 1024, grown


def test_children_know_their_metric(registry):
    c = Counter("kids", "K", ["a"], registry=registry)
    child = c.labels("x")
    assert child._labelvalues == ("x",)
    assert "kids" in repr(child)
    with pytest.raises(ValueError, match="kids: labels\\(\\) was called on a child"):
        child.labels("y")
    with pytest.raises(ValueError, match="kids: remove\\(\\) was called on a child"):
        child.remove("x")


def test_bad_custom_collectors_raise_cleanly(registry):
    class Broken:
        def __init__(self, metric):
            self.metric = metric

        def collect(self):
            return [self.metric]

    nonstr = fastprom.Metric("ok", "doc", "gauge")
    nonstr.documentation = None
    novalue = GaugeMetricFamily("nv", "doc")
    novalue.add_sample("nv", {}, None)
    nants = GaugeMetricFamily("nt", "doc")
    nants.add_sample("nt", {}, 1.0, timestamp=float("nan"))
    for metric, exc, match in ((nonstr, TypeError, "documentation must be str"),
                               (novalue, TypeError, "has no value"),
                               (nants, ValueError, "non-finite timestamp")):
        reg = CollectorRegistry()
        reg.register(Broken(metric))
        with pytest.raises(exc, match=match):
            generate_latest(reg)


def test_gauge_histogram_text_names(registry):
    class G:
        def collect(self):
            yield fastprom.GaugeHistogramMetricFamily("q", "Queue", buckets=[("1.0", 2), ("+Inf", 3)], gsum_value=7)

    registry.register(G())
    out = generate_latest(registry)
    # As prometheus_client writes a gauge histogram in the text format: its
    # _gcount and _gsum as gauge families of their own.
    assert b"# TYPE q_gcount gauge\nq_gcount 3.0\n# HELP q_gsum Queue\n# TYPE q_gsum gauge\nq_gsum 7.0\n" in out
    assert b"q_gcount 3.0\nq_gsum 7.0\n" in fastprom.generate_openmetrics(registry)


def test_render_survives_collector_mutating_the_registry(registry):
    class Meddler:
        def collect(self):
            registry.unregister(self)
            yield GaugeMetricFamily("m", "d", value=1)

    registry.register(Meddler())
    assert b"m 1.0\n" in generate_latest(registry)


def test_a_bad_exemplar_raises_after_counting_as_prometheus_client_does(registry):
    c = Counter("exc", "E", registry=registry)
    with pytest.raises(ValueError):
        c.inc(exemplar={"bad-name": "x"})
    assert value(registry, "exc_total") == 1
    c.inc(exemplar={"trace_id": "é" * 100})  # 108 characters, multi-byte: within the limit
    assert value(registry, "exc_total") == 2
    assert "é" * 100 in fastprom.generate_openmetrics(registry).decode()


def test_c_base_refuses_a_family_of_another_type(registry):
    from fastprom import _core

    store = _core.Store(1 << 20)
    fam = store.add_family(_core.GAUGE, "g", "doc", "", (), None)
    with pytest.raises(TypeError, match="cannot record into a family"):
        _core.SummaryBase()._bind(store, fam, ())
    with pytest.raises(ValueError, match="unknown metric type"):
        store.add_family(7, "x", "doc", "", (), None)


def test_a_refused_huge_series_leaves_room_for_others():
    reg = CollectorRegistry(store_size=1 << 20)
    c = Counter("c", "C", ["v"], registry=reg)
    with pytest.warns(RuntimeWarning, match="store is full"):
        c.labels("x" * (2 << 20)).inc()
    c.labels("small").inc()
    assert reg.get_sample_value("c_total", {"v": "small"}) == 1
    assert reg.get_sample_value("c_total", {"v": "fastprom_overflow"}) == 1


def test_http_recorder_reads_content_length_defensively(registry):
    """Content-Length comes from the client: overlong or malformed values count as 0."""
    from fastprom import _core

    total = Counter("t", "T", ["handler", "method", "status"], registry=registry)
    rin = Summary("rin", "I", ["handler"], registry=registry)
    rout = Summary("rout", "O", ["handler"], registry=registry)
    lat = Histogram("lat", "L", ["method", "handler"], registry=registry)
    high = Histogram("high", "H", registry=registry)
    rec = _core.HttpRecorder(total, rin, rout, lat, high)
    for value in (b"9" * 400, b"1 2 3", b"-5", b"+5", b"0x10", b"", b" 42 "):
        rec.record("/", "GET", "2xx", 0.01, [(b"content-length", value)], [(b"Content-Length", value)])
    assert value_of(registry, "rin_sum", {"handler": "/"}) == 42
    assert value_of(registry, "rout_sum", {"handler": "/"}) == 42
    assert value_of(registry, "t_total", {"handler": "/", "method": "GET", "status": "2xx"}) == 7


def value_of(reg, name, labels):
    return reg.get_sample_value(name, labels)
