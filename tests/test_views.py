"""Every view of the store comes from one walk: the samples in the text and
OpenMetrics output are exactly what collect() and get_sample_value() report,
for random operation sequences over every metric type, private and shared
stores.  Also the defects that two copies of a rule had caused."""
import asyncio
import math
import os
import signal
import threading
import warnings

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

import fastprom as fp
from fastprom import _core
from fastprom.asgi.instrumentations import _content_length

LABELS = ["a", "b"]
hostile = st.one_of(
    st.sampled_from(["", '"', "\\", "\n", '\\n', "a,b=c", "}{", "# EOF", "ü", "🙂", " "]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
positive = st.floats(min_value=0, max_value=1e9)
trace = st.dictionaries(st.sampled_from(["trace_id", "span_id"]), st.text("abc0123", max_size=8), max_size=2)


def ops(n):
    i = st.integers(0, n - 1)
    return st.lists(st.one_of(
        st.tuples(st.just("inc"), i, st.one_of(st.integers(0, 10**6), positive), st.one_of(st.none(), trace)),
        st.tuples(st.just("set"), i, st.floats()),
        st.tuples(st.just("gauge_add"), i, finite),
        st.tuples(st.just("observe"), i, finite, st.one_of(st.none(), trace)),
        st.tuples(st.just("summary"), i, positive),
        st.tuples(st.just("quantiles"), i, positive),
        st.tuples(st.just("info"), i, st.dictionaries(st.sampled_from(["version", "x_1"]), hostile)),
        st.tuples(st.just("enum"), i, st.sampled_from(["x", "y"])),
        st.tuples(st.just("remove"), i, st.sampled_from(["c", "g", "h", "s", "q"])),
        st.tuples(st.just("clear"), i, st.sampled_from(["c", "h"])),
    ), max_size=40)


@st.composite
def scenario(draw):
    sets = draw(st.lists(st.tuples(hostile, hostile), min_size=1, max_size=3))
    return sets, draw(ops(len(sets)))


def build(reg):
    return {
        "c": fp.Counter("c", "C", LABELS, registry=reg),
        "g": fp.Gauge("g", "G", LABELS, registry=reg, multiprocess_mode="livesum"),
        "ga": fp.Gauge("ga", "G", LABELS, registry=reg),
        "h": fp.Histogram("h", "H", LABELS, buckets=[0.0, 0.5, 1.0, 100.0], registry=reg),
        "s": fp.Summary("s", "S", LABELS, registry=reg),
        "q": fp.Summary("q", "Q", LABELS, quantiles=(0.5, 0.99), registry=reg),
        "u": fp.Counter("u", "U", unit="bytes", registry=reg),
        "i": fp.Info("i", "I", LABELS, registry=reg),
        "e": fp.Enum("e", "E", LABELS, states=["x", "y"], registry=reg),
    }


def apply(m, sets, ops):
    for op, i, arg, *rest in ops:
        lv = sets[i]
        if op == "inc":
            m["c"].labels(*lv).inc(arg, exemplar=rest[0])
            m["u"].inc(arg)
        elif op == "set":
            m["g"].labels(*lv).set(arg)
            m["ga"].labels(*lv).set(arg)
        elif op == "gauge_add":
            m["g"].labels(*lv).inc(arg)
        elif op == "observe":
            m["h"].labels(*lv).observe(abs(arg), exemplar=rest[0])
        elif op == "summary":
            m["s"].labels(*lv).observe(arg)
        elif op == "quantiles":
            m["q"].labels(*lv).observe(arg)
        elif op == "info":
            m["i"].labels(*lv).info(arg)
        elif op == "enum":
            m["e"].labels(*lv).state(arg)
        elif op == "remove":
            m[arg].remove(*lv)
        elif op == "clear":
            m[arg].clear()


def key(value):
    return "nan" if isinstance(value, float) and math.isnan(value) else float(value)


def samples_of(families):
    return {(s.name, tuple(sorted(s.labels.items())), key(s.value)) for f in families for s in f.samples}


def check_views(reg):
    collected = list(reg.collect())
    view = samples_of(collected)
    text = samples_of(parse_text(fp.generate_latest(reg).decode()))
    om_families = list(parse_om(fp.generate_openmetrics(reg).decode()))
    om = samples_of(om_families)
    # Both formats show every sample collect() reports, and no other (the
    # text format's _created samples as gauge families of their own).
    assert text == view
    assert om == view
    for name, labels, value in text:
        got = reg.get_sample_value(name, dict(labels))
        assert key(got) == value, (name, labels)
    # Exemplars: the OpenMetrics output carries exactly those collect() reports.
    want = {(s.name, tuple(sorted(s.labels.items()))): (s.exemplar.labels, s.exemplar.value)
            for f in collected for s in f.samples if s.exemplar}
    got = {(s.name, tuple(sorted(s.labels.items()))): (s.exemplar.labels, s.exemplar.value)
           for f in om_families for s in f.samples if s.exemplar}
    assert got == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_every_view_shows_the_same_samples(case):
    sets, operations = case
    reg = fp.CollectorRegistry()
    apply(build(reg), sets, operations)
    check_views(reg)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=scenario())
def test_every_view_shows_the_same_samples_in_a_shared_store(tmp_path_factory, case):
    sets, operations = case
    reg = fp.CollectorRegistry()
    reg._open_store(str(tmp_path_factory.mktemp("store")))
    apply(build(reg), sets, operations)
    check_views(reg)
    # Per-process gauges carry a pid label (mode all) or are summed (livesum).
    for f in reg.collect():
        if f.name in ("g", "ga"):
            assert all(("pid" in s.labels) == (f.name == "ga") for s in f.samples)


# ---- the defects two copies of a rule had caused ------------------------

def test_negative_bucket_histogram_count_is_in_every_view(registry):
    h = fp.Histogram("neg", "N", buckets=(-1, 0, 1), registry=registry)
    h.observe(-2)
    h.observe(0.5)
    text = fp.generate_latest(registry).decode()
    assert "neg_count 2.0\n" in text and "neg_sum" not in text
    assert registry.get_sample_value("neg_count") == 2
    assert registry.get_sample_value("neg_sum") is None
    assert "neg_count 2.0\n" in fp.generate_openmetrics(registry).decode()


@pytest.mark.parametrize("value, counted", [
    ("5", 5), (" 42 ", 42), ("+5", 0), ("-5", 0), ("0x10", 0), ("1 2", 0), ("", 0), ("9" * 19, 0), (None, 0),
])
def test_content_length_is_read_by_one_rule_on_both_paths(registry, value, counted):
    assert _core.content_length(value) == counted
    # The Python path (instrumentation functions added with add()) ...
    assert _content_length({} if value is None else {"Content-Length": value}) == counted
    # ... and the one-call path of the default metrics.
    total = fp.Counter("t", "T", ["method", "status", "handler"], registry=registry)
    rin = fp.Summary("rin", "I", ["handler"], registry=registry)
    rout = fp.Summary("rout", "O", ["handler"], registry=registry)
    lat = fp.Histogram("lat", "L", ["method", "handler"], registry=registry)
    rec = _core.HttpRecorder(total, rin, rout, lat, fp.Histogram("high", "H", registry=registry))
    headers = [] if value is None else [(b"content-length", value.encode())]
    rec.record("/", "GET", "2xx", 0.01, headers, headers)
    assert registry.get_sample_value("rin_sum", {"handler": "/"}) == counted
    assert registry.get_sample_value("rout_sum", {"handler": "/"}) == counted


def request(app, path, n=1):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(n):
                assert (await client.get(path)).status_code == 200
    asyncio.run(go())


def test_requests_after_remove_are_counted_again(registry):
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/a")
    def a():
        return {}

    fp.Instrumentator(registry=registry).instrument(app)
    request(app, "/a")
    labels = {"method": "GET", "status": "2xx", "handler": "/a"}
    assert registry.get_sample_value("http_requests_total", labels) == 1
    total = registry._names["http_requests"]
    total.remove("GET", "2xx", "/a")
    assert registry.get_sample_value("http_requests_total", labels) is None
    request(app, "/a", 2)
    assert registry.get_sample_value("http_requests_total", labels) == 2
    lat = registry._names["http_request_duration_seconds"]
    lat.clear()
    request(app, "/a")
    assert registry.get_sample_value("http_request_duration_seconds_count", {"method": "GET", "handler": "/a"}) == 1
    assert registry.get_sample_value("http_requests_total", labels) == 3


def test_a_child_held_across_remove_records_into_a_live_series(registry):
    c = fp.Counter("held", "H", ["k"], registry=registry)
    child = c.labels("x")
    child.inc()
    c.remove("x")
    assert registry.get_sample_value("held_total", {"k": "x"}) is None
    child.inc(2)
    assert registry.get_sample_value("held_total", {"k": "x"}) == 2
    assert c.labels("x") is not child  # remove() dropped the cached child
    c.labels("x").inc()
    assert registry.get_sample_value("held_total", {"k": "x"}) == 3


def test_exemplar_that_finds_no_room_never_drops_the_count():
    reg = fp.CollectorRegistry(store_size=1 << 20)
    c = fp.Counter("c", "C", ["k"], registry=reg)
    with pytest.warns(RuntimeWarning, match="store is full"):
        for i in range(1000):  # long label values fill the arena
            c.labels(str(i) * 500).inc()
    store = reg._get_store()
    assert store.stats()["size"] - store.stats()["used"] < 64 << 10
    child = c.labels("fastprom_overflow")
    before = reg.get_sample_value("c_total", {"k": "fastprom_overflow"})
    for _ in range(100):
        child.inc(exemplar={"trace_id": "x" * 100})
    assert reg.get_sample_value("c_total", {"k": "fastprom_overflow"}) == before + 100
    assert b'trace_id="' not in fp.generate_openmetrics(reg)


# ---- defects found in review of the redesign ----------------------------

def fill(reg, metric):
    store = reg._get_store()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        i = 0
        while store.stats()["series"] < store.stats()["max_series"]:
            metric.labels(str(i))
            i += 1


def test_recorder_survives_its_cache_emptied_while_it_resolves(monkeypatch):
    """The overflow warning runs Python code in the middle of record():
    emptying the recorder's cache there must not free what it is using."""
    reg = fp.CollectorRegistry(store_size=1 << 20)
    d = fp.metrics.default(registry=reg)
    d.record("/a", "GET", "2xx", 0.1, None, None)
    fill(reg, fp.Counter("f", "F", ["a"], registry=reg))
    d.total.remove("GET", "2xx", "/a")
    fired = []

    def hook(*args, **kwargs):
        if not fired:
            fired.append(1)
            d._recorder.forget()

    monkeypatch.setattr(warnings, "showwarning", hook)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        d.record("/a", "GET", "2xx", 0.1, None, None)
    assert fired
    labels = {"method": "fastprom_overflow", "status": "fastprom_overflow", "handler": "fastprom_overflow"}
    assert reg.get_sample_value("http_requests_total", labels) == 1


def test_a_child_made_while_its_series_is_removed_keeps_its_counts(monkeypatch):
    reg = fp.CollectorRegistry(store_size=1 << 20)
    c = fp.Counter("c", "C", ["a"], registry=reg)
    fill(reg, c)
    fired = []

    def hook(*args, **kwargs):  # stands in for another worker's remove()
        if not fired:
            fired.append(1)
            c.remove("fastprom_overflow")

    monkeypatch.setattr(warnings, "showwarning", hook)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        child = c.labels("new")
    child.inc(5)
    assert fired and reg.get_sample_value("c_total", {"a": "fastprom_overflow"}) == 5


def test_a_label_value_with_a_nul_byte_does_not_lock_out_later_workers(tmp_path):
    reg = fp.CollectorRegistry()
    reg._open_store(str(tmp_path))
    c = fp.Counter("c", "C\x00help", ["a"], registry=reg)
    c.labels("bad\x00value").inc()
    assert reg._get_store().check() is None
    other = fp.CollectorRegistry()
    other._open_store(str(tmp_path))  # a worker starting later
    assert fp.Counter("c", "C\x00help", ["a"], registry=other).labels("bad\x00value") is not None
    assert other.get_sample_value("c_total", {"a": "bad\x00value"}) == 1


def test_set_function_follows_remove_and_clear_and_runs_once_per_collect(registry):
    calls = []

    def f():
        calls.append(1)
        return 5.0

    g = fp.Gauge("g", "G", ["a"], registry=registry)
    g.labels("x").set_function(f)
    g.labels("y").set(1)
    calls.clear()
    assert registry.get_sample_value("g", {"a": "x"}) == 5
    assert len(calls) == 1
    g.remove("x")
    assert registry.get_sample_value("g", {"a": "x"}) is None
    g.labels("x").set_function(f)
    g.clear()
    assert b'a="x"' not in fp.generate_latest(registry)
    u = fp.Gauge("u", "U", registry=registry)
    u.set_function(lambda: 7.0)
    registry.unregister(u)
    registry.register(u)  # registered again: its function is read again
    assert registry.get_sample_value("u") == 7


def test_a_fork_while_another_thread_creates_families_leaves_the_child_usable():
    store = _core.Store(64 << 20)
    stop = threading.Event()

    def create():
        i = 0
        while not stop.is_set() and i < 10000:
            store.add_family(_core.COUNTER, f"t{i}", "h" * 2000, "", ("a", "b"))
            i += 1

    t = threading.Thread(target=create)
    t.start()
    hung = 0
    try:
        for k in range(60):
            pid = os.fork()
            if pid == 0:
                signal.alarm(5)
                store.add_family(_core.COUNTER, f"child{k}", "h", "", ())
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            hung += os.WIFSIGNALED(status)
    finally:
        stop.set()
        t.join()
    assert hung == 0


def test_old_module_paths_are_the_moved_modules():
    import fastprom.demo
    import fastprom.instrumentation
    import fastprom.instrumentator
    import fastprom.metrics
    import fastprom.middleware
    import fastprom.routing
    from fastprom import asgi

    assert fastprom.middleware is asgi.middleware and fastprom.routing is asgi.routing
    assert fastprom.instrumentator is asgi.instrumentator and fastprom.demo is asgi.demo
    # prometheus-fastapi-instrumentator's module name for the instrumentator
    assert fastprom.instrumentation is asgi.instrumentator
    # and its private helpers that tests import from its metrics module
    assert fastprom.metrics._is_duplicated_time_series is asgi.instrumentations._is_duplicated_time_series
    # fastprom.metrics is a module of its own (it holds prometheus_client's
    # metrics names too): every public name of the instrumentations module is
    # in it, the same object.
    public = [n for n in dir(asgi.instrumentations) if not n.startswith("_")]
    assert "latency" in public and "HIGHR_BUCKETS" in public
    for name in public:
        assert getattr(fastprom.metrics, name) is getattr(asgi.instrumentations, name), name
    assert fastprom.metrics.Info is asgi.instrumentations.Info  # the instrumentator's, not the metric type
    from fastprom.metrics import HIGHR_BUCKETS, LOWR_BUCKETS  # noqa: F401
    from fastprom.middleware import log, route_key  # noqa: F401
