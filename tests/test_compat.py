"""prometheus_client's behaviours, each checked against prometheus_client
itself: the same calls on both libraries, the same results."""
import asyncio
import inspect
import itertools
import random
import time

import pytest

import fastprom
import fastprom.core
from fastprom import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from fastprom.openmetrics import exposition as om

pc = pytest.importorskip("prometheus_client")
import prometheus_client.core  # noqa: E402
from prometheus_client.openmetrics import exposition as pc_om  # noqa: E402

LIBS = (fastprom, pc)


@pytest.fixture
def no_created():
    """Without _created samples, whose values differ between the two libraries' clocks."""
    fastprom.disable_created_metrics()
    pc.disable_created_metrics()
    yield
    fastprom.enable_created_metrics()
    pc.enable_created_metrics()


def both():
    return CollectorRegistry(), pc.CollectorRegistry()


def samples(reg, skip_created=True):
    return sorted((s.name, sorted(s.labels.items()), s.value) for m in reg.collect() for s in m.samples
                  if not (skip_created and s.name.endswith("_created")))


# ---- Counter.reset ---------------------------------------------------------

def test_counter_reset_unlabelled_and_child(registry):
    c = Counter("c", "C", registry=registry)
    c.inc(5)
    created = registry.get_sample_value("c_created")
    time.sleep(0.01)
    c.reset()
    assert registry.get_sample_value("c_total") == 0
    assert registry.get_sample_value("c_created") > created
    c.inc(2)
    assert registry.get_sample_value("c_total") == 2

    lc = Counter("lc", "C", ["k"], registry=registry)
    child, other = lc.labels("a"), lc.labels("b")
    child.inc(3)
    other.inc(4)
    child.reset()
    assert registry.get_sample_value("lc_total", {"k": "a"}) == 0  # still shown, at zero
    assert registry.get_sample_value("lc_total", {"k": "b"}) == 4
    child.inc()  # the child object held before the reset goes on counting
    lc.labels("a").inc()
    assert registry.get_sample_value("lc_total", {"k": "a"}) == 2
    with pytest.raises(ValueError, match="^counter metric is missing label values"):
        lc.reset()


# ---- remove_by_labels --------------------------------------------------------

@pytest.mark.parametrize("kind", ["Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"])
def test_remove_by_labels_as_prometheus_client(kind):
    regs = both()
    for lib, reg in zip(LIBS, regs):
        kw = {"states": ["on", "off"]} if kind == "Enum" else {}
        m = getattr(lib, kind)("m", "M", ["tenant", "path"], registry=reg, **kw)
        for tenant, path in itertools.product(["acme", "globex"], ["/", "/x"]):
            m.labels(tenant, path)
        m.remove_by_labels({"tenant": "acme"})
        m.remove_by_labels({})  # nothing
        m.remove_by_labels({"tenant": "globex", "path": "/x"})
        m.remove_by_labels({"tenant": "nobody"})
        with pytest.raises(ValueError, match=r"^Unknown label names: \['bad'\]; expected \('tenant', 'path'\)"):
            m.remove_by_labels({"bad": "x"})
        with pytest.raises(TypeError, match="labels must be a dict"):
            m.remove_by_labels([("tenant", "x")])
    assert samples(regs[0]) == samples(regs[1])
    assert {tuple(dict(s[1]).get(n) for n in ("tenant", "path")) for s in samples(regs[0])} == {("globex", "/")}


# ---- Timer: labels(), duration, decorators ----------------------------------

@pytest.mark.parametrize("kind", ["Gauge", "Histogram", "Summary"])
def test_timer_labels_picks_the_child(kind, registry):
    m = getattr(fastprom, kind)("t", "T", ["route"], registry=registry)
    with m.time() as t:
        t.labels("/a")
        time.sleep(0.002)
    assert t.duration >= 0.002
    name = "t" if kind == "Gauge" else "t_sum"
    assert registry.get_sample_value(name, {"route": "/a"}) == t.duration
    with pytest.raises(ValueError, match=f"^{kind.lower()} metric is missing label values"):
        with m.time():  # no labels() picked: the parent cannot record
            pass


def _sample_function(a, b: int = 2, /, c=3, *args, d, e=5, **kw) -> int:
    """Doc."""
    return a + b + c + d + e + sum(args) + sum(kw.values())


async def _sample_coroutine(x, y=1, *, z=2):
    await asyncio.sleep(0.005)
    return x + y + z


def _decorators(lib, reg):
    g = lib.Gauge("g", "G", registry=reg)
    c = lib.Counter("c", "C", registry=reg)
    h = lib.Histogram("h", "H", registry=reg)
    return {"gauge.time": g.time(), "track_inprogress": g.track_inprogress(),
            "count_exceptions": c.count_exceptions(), "histogram.time": h.time()}


def test_decorated_functions_keep_their_signature():
    ours, theirs = _decorators(fastprom, CollectorRegistry()), _decorators(pc, pc.CollectorRegistry())
    for name, deco in ours.items():
        wrapped = deco(_sample_function)
        assert inspect.signature(wrapped) == inspect.signature(_sample_function), name
        assert inspect.getfullargspec(wrapped) == inspect.getfullargspec(_sample_function), name
        assert inspect.getfullargspec(wrapped) == inspect.getfullargspec(theirs[name](_sample_function)), name
        assert (wrapped.__name__, wrapped.__doc__, wrapped.__wrapped__) == ("_sample_function", "Doc.",
                                                                          _sample_function)
        assert wrapped(1, d=4) == _sample_function(1, d=4) == 15
        assert wrapped(1, 1, 1, 1, d=1, e=1, f=1) == 7
        with pytest.raises(TypeError):
            wrapped(1)  # d is required, as in the original
        lam = deco(lambda q, r=1: q + r)
        assert inspect.getfullargspec(lam).args == ["q", "r"] and lam(1) == 2


def test_decorated_coroutines_stay_coroutines_and_are_timed(registry):
    g = Gauge("g", "G", registry=registry)
    h = Histogram("h", "H", registry=registry)
    c = Counter("c", "C", registry=registry)
    seen = []

    async def failing():
        seen.append(registry.get_sample_value("g"))
        raise KeyError

    timed = h.time()(_sample_coroutine)
    tracked = g.track_inprogress()(failing)
    counted = c.count_exceptions(KeyError)(failing)
    for f, orig in ((timed, _sample_coroutine), (tracked, failing), (counted, failing)):
        assert inspect.iscoroutinefunction(f)
        assert inspect.signature(f) == inspect.signature(orig)
        assert inspect.getfullargspec(f) == inspect.getfullargspec(orig)
    assert asyncio.run(timed(1, z=3)) == 5
    assert registry.get_sample_value("h_sum") >= 0.005  # the awaited call, not the coroutine's creation
    for f in (tracked, counted):
        with pytest.raises(KeyError):
            asyncio.run(f())
    assert seen == [1, 0] and registry.get_sample_value("g") == 0
    assert registry.get_sample_value("c_total") == 1


def test_helpers_on_a_labelled_parent_raise_as_prometheus_client(registry):
    theirs = pc.CollectorRegistry()
    for lib, reg in zip(LIBS, (registry, theirs)):
        c = lib.Counter("c", "C", ["l"], registry=reg)
        g = lib.Gauge("g", "G", ["l"], registry=reg)
        calls = [c.count_exceptions, g.track_inprogress, lambda: g.set_function(lambda: 1)]
        msgs = []
        for call in calls:
            with pytest.raises(ValueError) as e:
                call()
            msgs.append(str(e.value))
        if lib is pc:
            assert msgs == ["counter metric is missing label values", "gauge metric is missing label values",
                            "gauge metric is missing label values"]
        else:
            ours = msgs
    for want, got in zip(msgs, ours):
        assert got.startswith(want + " ("), got


# ---- families, names, registry ---------------------------------------------

def test_untyped_metric_is_unknown():
    for lib in LIBS:
        m = lib.Metric("u", "U", "untyped")
        assert m.type == "unknown"

    class Untyped:
        def __init__(self, lib):
            self.lib = lib

        def collect(self):
            m = self.lib.Metric("u", "U", "untyped")
            m.add_sample("u", {"a": "b"}, 3)
            yield m

    ours, theirs = both()
    ours.register(Untyped(fastprom))
    theirs.register(Untyped(pc))
    assert generate_latest(ours) == pc.generate_latest(theirs)
    assert om.generate_latest(ours) == pc_om.generate_latest(theirs)


def test_info_target_collides_with_target_info_as_in_prometheus_client():
    for lib in LIBS:
        reg = lib.CollectorRegistry(target_info={"env": "prod"})
        with pytest.raises(ValueError):
            lib.Info("target", "T", registry=reg)
        reg.set_target_info(None)
        info = lib.Info("target", "T", registry=reg)
        with pytest.raises(ValueError, match="^CollectorRegistry already contains a target_info metric$"):
            reg.set_target_info({"env": "prod"})
        reg.unregister(info)
        reg.set_target_info({"env": "prod"})
        assert reg.get_sample_value("target_info", {"env": "prod"}) == 1


def test_unit_total_on_a_counter_as_prometheus_client_writes_it(no_created):
    ours, theirs = both()
    for lib, reg in zip(LIBS, (ours, theirs)):
        lib.Counter("requests", "R", unit="total", registry=reg).inc()
        lib.Counter("b_total", "B", unit="total", registry=reg).inc(2)
    out = generate_latest(ours)
    assert b"requests_total_total 1.0\n" in out and b"b_total_total 2.0\n" in out
    assert out == pc.generate_latest(theirs)
    assert om.generate_latest(ours) == pc_om.generate_latest(theirs)


def test_timestamps_order_as_prometheus_client_orders_them():
    rnd = random.Random(7)
    pairs = [((rnd.randint(-3, 3), rnd.randint(0, 3)), (rnd.randint(-3, 3), rnd.randint(0, 3))) for _ in range(300)]
    for a, b in pairs:
        ours = (fastprom.Timestamp(*a), fastprom.Timestamp(*b))
        theirs = (pc.samples.Timestamp(*a), pc.samples.Timestamp(*b))
        for op in ("__lt__", "__gt__", "__eq__", "__ne__"):
            assert getattr(ours[0], op)(ours[1]) == getattr(theirs[0], op)(theirs[1]), (a, b, op)
        assert (str(ours[0]), float(ours[0])) == (str(theirs[0]), float(theirs[0]))
    assert fastprom.Timestamp(1, 5) < fastprom.Timestamp(2, 0) and fastprom.Timestamp(1, 6) > fastprom.Timestamp(1, 5)


def test_an_exemplar_on_a_count_sample_is_refused_in_openmetrics():
    def collector(lib, sample_name):
        class Custom:
            def collect(self):
                h = lib.core.HistogramMetricFamily("h", "H", buckets=[("1.0", 1), ("+Inf", 2)], sum_value=3)
                h.samples = [s._replace(exemplar=lib.core.Exemplar({"trace_id": "t"}, 1.0))
                             if s.name == sample_name else s for s in h.samples]
                yield h
        return Custom()

    for lib, gen in ((fastprom, om.generate_latest), (pc, pc_om.generate_latest)):
        reg = lib.CollectorRegistry()
        reg.register(collector(lib, "h_count"))
        with pytest.raises(ValueError) as e:
            gen(reg)
        assert e.value.args[0] == "Metric h has exemplars, but is not a histogram bucket or counter"
        assert isinstance(e.value.args[-1], lib.Metric)  # the family, as prometheus_client appends it
    ours, theirs = both()
    ours.register(collector(fastprom, "h_bucket"))
    theirs.register(collector(pc, "h_bucket"))
    assert om.generate_latest(ours) == pc_om.generate_latest(theirs)
    assert b'# {trace_id="t"} 1.0' in om.generate_latest(ours)


def test_generate_latest_of_a_prometheus_client_registry():
    theirs = pc.CollectorRegistry()
    pc.Counter("pc_c", "C", ["k"], registry=theirs).labels("v").inc(3)
    pc.Histogram("pc_h", "H", buckets=(1,), registry=theirs).observe(0.5)
    assert generate_latest(theirs) == pc.generate_latest(theirs)
    assert om.generate_latest(theirs) == pc_om.generate_latest(theirs)
    assert fastprom.exposition.generate_latest(theirs, "allow-utf-8") == pc.generate_latest(theirs, "allow-utf-8")


def test_restricted_registry_collects_only_the_collectors_of_those_names():
    class Exploding:
        def describe(self):
            return [fastprom.GaugeMetricFamily("other", "O")]

        def collect(self):
            raise AssertionError("collected, but none of its names was asked for")

    ours, theirs = both()
    for lib, reg in zip(LIBS, (ours, theirs)):
        lib.Summary("s", "S", registry=reg).observe(7)
        lib.Counter("c", "C", ["k"], registry=reg).labels("a").inc()
        reg.register(Exploding())
    for names in (["s_sum"], ["c_total", "s_count"], ["nothing"], ["s_sum", "c_created"]):
        # (in no particular order: prometheus_client keeps the collectors in a set)
        got = sorted((m.name, m.type, str([(s.name, s.labels) for s in m.samples]))
                     for m in ours.restricted_registry(names).collect())
        want = sorted((m.name, m.type, str([(s.name, s.labels) for s in m.samples]))
                      for m in theirs.restricted_registry(names).collect())
        assert got == want
    assert [(m.name, [s.value for s in m.samples]) for m in ours.restricted_registry(["s_sum"]).collect()] == \
           [("s", [7.0])]
    restricted = ours.restricted_registry(["s_sum"])
    assert generate_latest(restricted) == b"# HELP s S\n# TYPE s summary\ns_sum 7.0\n"


def test_duplicate_registration_message(registry):
    Counter("dup", "D", registry=registry)
    with pytest.raises(fastprom.DuplicateTimeseries,
                       match=r"^Duplicated timeseries in CollectorRegistry: \{'dup_total'\}$") as e:
        Gauge("dup_total", "G", registry=registry)
    assert e.value.duplicates == {"dup_total"}
    assert isinstance(e.value, ValueError)


def test_gauge_methods_take_keywords_as_prometheus_client(registry):
    g = Gauge("g", "G", registry=registry)
    g.set(value=3)
    g.inc(amount=2)
    g.dec(amount=0.5)
    assert registry.get_sample_value("g") == 4.5
    h = Histogram("h", "H", registry=registry)
    h.observe(amount=1)
    Summary("s", "S", registry=registry).observe(amount=1)
    Counter("c", "C", registry=registry).inc(amount=2)
    assert registry.get_sample_value("c_total") == 2 and registry.get_sample_value("h_count") == 1
    for lib, reg in zip(LIBS, both()):  # set() takes float(value): a numeric str too, as there
        lg = lib.Gauge("g", "G", registry=reg)
        lg.set("2.5")
        assert reg.get_sample_value("g") == 2.5
        with pytest.raises(ValueError):
            lg.set("x")
        with pytest.raises(TypeError):
            lg.set(None)
        with pytest.raises(TypeError):
            lg.inc("1")


def test_exemplar_label_names_follow_the_validation_mode(registry):
    from fastprom import validation

    c = Counter("c", "C", registry=registry)
    c.inc(exemplar={":o)": "smile", "1": "number"})  # UTF-8 names, as prometheus_client takes them
    assert b'# {1="number",:o)="smile"} 1.0' in om.generate_latest(registry)
    validation.enable_legacy_validation()
    try:
        with pytest.raises(ValueError, match=r"^Invalid label metric name: :o\)"):
            c.inc(exemplar={":o)": "smile"})
    finally:
        validation.disable_legacy_validation()
    theirs = pc.CollectorRegistry()
    pc.Counter("c", "C", registry=theirs).inc(exemplar={":o)": "smile", "1": "number"})
    assert pc_om.generate_latest(theirs).split(b"\n")[2].split(b" # ")[1].rsplit(b" ", 1)[0] == \
        b'{1="number",:o)="smile"} 1.0'


class _Jython:
    """A platform module as prometheus_client's tests fake one."""

    def python_version_tuple(self):
        return "2", "7", "12"

    def python_version(self):
        return "2.7.12"

    def python_implementation(self):
        return "Jython"

    def system(self):
        return "Java"

    def java_ver(self):
        return "1.8.0_151", "", ("OpenJDK 64-Bit Server VM", "25.151-b12", "Oracle Corporation"), ("", "", "")


@pytest.mark.parametrize("platform", [None, _Jython()])
def test_platform_collector_as_prometheus_client_writes_it(platform):
    ours, theirs = both()
    fastprom.PlatformCollector(registry=ours, platform=platform)
    pc.PlatformCollector(registry=theirs, platform=platform)
    assert generate_latest(ours) == pc.generate_latest(theirs)
    assert om.generate_latest(ours) == pc_om.generate_latest(theirs)
    if platform is not None:
        assert ours.get_sample_value("python_info", {
            "version": "2.7.12", "implementation": "Jython", "major": "2", "minor": "7", "patchlevel": "12",
            "jvm_version": "1.8.0_151", "jvm_release": "25.151-b12", "jvm_vendor": "Oracle Corporation",
            "jvm_name": "OpenJDK 64-Bit Server VM"}) == 1
