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

def test_empty_and_non_utf8_metric_names_are_refused(registry):
    with pytest.raises(InvalidMetricError, match="Metric name should not be empty"):
        Counter("", "doc", registry=registry)
    with pytest.raises(InvalidMetricError, match="invalid metric name"):
        Counter("lone\ud800surrogate", "doc", registry=registry)
    assert generate_latest(registry) == b""


@pytest.mark.parametrize("name", ["1abc", "a-b", "a b", "é", "dotted.name"])
def test_utf8_metric_names_as_prometheus_client_takes_them(name):
    """Any UTF-8 name is a metric name (prometheus_client 0.22 and later),
    written escaped or quoted as the escaping scheme says, byte for byte as
    prometheus_client writes it; legacy validation refuses it."""
    import prometheus_client
    from prometheus_client.openmetrics import exposition as pc_om

    from fastprom import validation
    from fastprom.openmetrics import exposition as om

    ours, theirs = CollectorRegistry(), prometheus_client.CollectorRegistry()
    for mod, reg in ((fastprom, ours), (prometheus_client, theirs)):
        mod.Gauge(name, "doc", ["k"], registry=reg).labels("v").set(2)
    for escaping in ("underscores", "allow-utf-8", "dots", "values"):
        assert generate_latest(ours, escaping) == prometheus_client.generate_latest(theirs, escaping)
        assert om.generate_latest(ours, escaping) == pc_om.generate_latest(theirs, escaping)
    validation.enable_legacy_validation()
    try:
        with pytest.raises(InvalidMetricError, match="invalid metric name " + name):
            Gauge(name, "doc", registry=CollectorRegistry())
    finally:
        validation.disable_legacy_validation()


@pytest.mark.parametrize("cls,labels,match", [
    (Counter, ["a-b"], "^Invalid label metric name: a-b"),
    (Counter, ["__x"], "^Reserved label metric name: __x"),
    (Counter, ["a", "a"], "duplicate label names"),
    (Histogram, ["le"], "^Reserved label metric name: le"),
    (Summary, ["quantile"], "^Reserved label metric name: quantile"),
    (Counter, "ab", "not a str"),
])
def test_invalid_label_names(registry, cls, labels, match):
    with pytest.raises(InvalidMetricError, match=match):
        cls("m", "doc", labels, registry=registry)
    assert issubclass(InvalidMetricError, ValueError)
    assert generate_latest(registry) == b""


def test_enum_name_is_reserved_label(registry):
    with pytest.raises(InvalidMetricError, match="^Overlapping labels for Enum metric: state$"):
        Enum("state", "doc", ["state"], states=["a"], registry=registry)
    with pytest.raises(InvalidMetricError, match="^No states provided for Enum metric: state$"):
        Enum("state", "doc", registry=registry)


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


@pytest.mark.parametrize("cls", [Counter, Gauge, Histogram, Summary, Info, Enum])
def test_label_errors_are_worded_as_prometheus_client_words_them(registry, cls):
    """prometheus_client's message first (code matches on it), then which metric."""
    kw = {"states": ["a"]} if cls is Enum else {}
    m = cls("m", "M", ["a", "b"], registry=registry, **kw)
    kind = m._type
    with pytest.raises(ValueError, match=r"^Incorrect label count \(m: expected 2 label values"):
        m.labels("x")
    with pytest.raises(ValueError, match=r"^Incorrect label names \(m: expected"):
        m.labels(a="x", z="y")
    with pytest.raises(ValueError, match=r"^Can't pass both \*args and \*\*kwargs$"):
        m.labels("x", b="y")
    with pytest.raises(ValueError, match=rf"^{kind}:m already has labels set \({{'a': 'x', 'b': 'y'}}\); "
                                         r"can not chain calls to \.labels\(\)$"):
        m.labels("x", "y").labels("x", "y")
    with pytest.raises(ValueError, match=r"^Incorrect label count \(expected 2, got \('x',\)\)$"):
        m.remove("x")
    update = {"counter": "inc", "gauge": "set", "histogram": "observe", "summary": "observe", "info": "info",
              "stateset": "state"}[kind]
    arg = {"info": {}, "stateset": "a"}.get(kind, 1)
    with pytest.raises(ValueError, match=rf"^{kind} metric is missing label values \(m has labels"):
        getattr(m, update)(arg)
    one = cls("one", "O", registry=registry, **kw)
    for call in (lambda: one.labels("x"), lambda: one.remove("x"), lambda: one.remove_by_labels({"a": "x"})):
        with pytest.raises(ValueError, match=rf"^No label names were set when constructing {kind}:one$"):
            call()
    one.clear()  # an unlabelled metric: nothing to clear, as in prometheus_client
    assert str(one) == f"{kind}:one"
    # The refused calls made no series: only the child made on purpose is there.
    series = {(s.labels["a"], s.labels["b"]) for f in registry.collect() if f.name == "m" for s in f.samples}
    assert series == {("x", "y")}


def test_label_errors_match_prometheus_client_messages(registry):
    """The same calls raise in prometheus_client with messages our wording keeps as a prefix."""
    import re

    import prometheus_client

    theirs = prometheus_client.CollectorRegistry()
    for mod, reg in ((prometheus_client, theirs), (fastprom, registry)):
        c = mod.Counter("c", "C", ["a", "b"], registry=reg)
        msgs = []
        for call in (lambda: c.labels("x"), lambda: c.labels(a="x", z="y"), lambda: c.labels("x", b="y"),
                     lambda: c.labels("x", "y").labels("x", "y"), lambda: c.inc(), lambda: c.inc(-1),
                     lambda: mod.Counter("u", "U", registry=reg).labels("x"), lambda: c.remove("x"),
                     lambda: c.remove_by_labels({"z": "x"})):
            with pytest.raises(ValueError) as e:
                call()
            msgs.append(str(e.value))
        if mod is prometheus_client:
            expected = msgs
        else:
            for want, got in zip(expected, msgs):
                assert re.match(re.escape(want), got), (want, got)


def test_negative_and_nan_updates_leave_value_unchanged(registry):
    c = Counter("c", "C", registry=registry)
    h = Histogram("h", "H", registry=registry)
    s = Summary("s", "S", registry=registry)
    q = Summary("q", "Q", quantiles=(0.5,), registry=registry)
    c.inc(3)
    for bad in (-1, float("-inf")):
        with pytest.raises(ValueError, match="^Counters can only be incremented by non-negative amounts.$"):
            c.inc(bad)
    nan = float("nan")
    with pytest.raises(ValueError, match="c: increment must be a number \\(not NaN\\)"):
        c.inc(nan)
    with pytest.raises(ValueError, match="h: observed value must be a number \\(not NaN\\)"):
        h.observe(nan)
    with pytest.raises(ValueError, match="not NaN"):
        s.observe(nan)
    for bad in (nan, float("inf"), float("-inf")):  # the quantile sketch takes finite values only
        with pytest.raises(ValueError, match="q: observed value must be a finite number"):
            q.observe(bad)
    with pytest.raises(TypeError):
        c.inc("1")
    assert value(registry, "c_total") == 3
    assert value(registry, "h_count") == 0
    assert value(registry, "s_count") == 0
    assert value(registry, "q_count") == 0


def test_infinite_updates_as_prometheus_client_records_them(registry):
    """+Inf increments and ±Inf observations are taken, as prometheus_client
    takes them: the +Inf bucket, an infinite sum, an infinite counter."""
    import prometheus_client

    theirs = prometheus_client.CollectorRegistry()
    inf = float("inf")
    for mod, reg in ((fastprom, registry), (prometheus_client, theirs)):
        mod.Counter("c", "C", registry=reg).inc(inf)
        h = mod.Histogram("h", "H", buckets=(1, 2), registry=reg)
        h.observe(inf)
        h.observe(-inf)
        mod.Summary("s", "S", registry=reg).observe(-inf)
    fastprom.disable_created_metrics()
    prometheus_client.disable_created_metrics()
    try:
        assert generate_latest(registry) == prometheus_client.generate_latest(theirs)
    finally:
        fastprom.enable_created_metrics()
        prometheus_client.enable_created_metrics()
    assert value(registry, "h_bucket", {"le": "+Inf"}) == 2 and value(registry, "h_bucket", {"le": "1.0"}) == 1
    assert value(registry, "h_sum") != value(registry, "h_sum")  # inf + -inf
    assert value(registry, "c_total") == inf and value(registry, "s_sum") == -inf


def test_bad_exemplars_are_rejected_after_counting(registry):
    """As in prometheus_client, the increment stands; the exemplar is refused."""
    c = Counter("c", "C", registry=registry)
    with pytest.raises(ValueError, match="128 characters"):
        c.inc(1, exemplar={"trace_id": "x" * 200})
    with pytest.raises(ValueError, match="^Reserved label metric name: __bad"):
        c.inc(1, exemplar={"__bad": "x"})
    with pytest.raises(ValueError, match="cannot hold '='"):
        c.inc(1, exemplar={"a=b": "x"})
    with pytest.raises(TypeError, match="exemplar must be a dict"):
        c.inc(1, exemplar=["trace_id"])
    assert value(registry, "c_total") == 4
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
    with pytest.raises(ValueError, match="counter:kids already has labels set"):
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
        c.inc(exemplar={"__bad": "x"})
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


def test_labels_returns_the_cached_child_until_its_series_goes():
    """labels() finds the child of a label set however the values are
    spelled (the same str objects, equal ones, non-str values), and a new
    one once remove() or clear() dropped it."""
    reg = fastprom.CollectorRegistry()
    c = fastprom.Counter("lab", "Label lookups.", ["a", "b"], registry=reg)
    first = c.labels("x", "200")
    first.inc()
    assert c.labels("x", "200") is first
    assert c.labels("".join(["x"]), "".join(["2", "00"])) is first  # equal, not identical
    assert c.labels("x", 200) is first
    assert c.labels(a="x", b="200") is first
    assert c.labels("x", "201") is not first
    assert c.labels("x", "200") is first
    c.remove("x", "200")
    again = c.labels("x", "200")
    assert again is not first
    again.inc(2)
    assert reg.get_sample_value("lab_total", {"a": "x", "b": "200"}) == 2
    c.clear()
    assert c.labels("x", "200") is not again
    assert reg.get_sample_value("lab_total", {"a": "x", "b": "200"}) == 0
    with pytest.raises(ValueError):
        c.labels("x")
    with pytest.raises(ValueError):
        c.labels("x", "200", "extra")
    with pytest.raises(ValueError):
        c.labels("x", b="200")
