"""Random operation sequences applied to fastprom and to prometheus_client
must expose the same samples, as read back by prometheus_client's text and
OpenMetrics parsers."""
import math

import prometheus_client as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

import fastprom as fp

HELP = 'Help with "quotes", a \\ backslash,\na newline and ünïcödé ✓'
LABELS = ["a", "b"]
BUCKETS = [0.0, 0.5, 1.0, 2.5, 100.0]
STATES = ["x", "y", "z"]

hostile = st.one_of(
    st.sampled_from(["", '"', "\\", "\n", '\\n', '"\\"', "a,b=c", "}{", "# EOF", "ü", "🙂", " ", "\t", "\r"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)
label_sets = st.lists(st.tuples(hostile, hostile), min_size=1, max_size=4)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
amount = st.one_of(st.integers(0, 10**9), st.floats(min_value=0, max_value=1e9))
# Non-negative: a negative observation makes _sum negative, which OpenMetrics forbids.
observed = st.one_of(st.sampled_from(BUCKETS + [3.0, 1e6]), st.floats(min_value=0, max_value=1e12))


def ops(n_sets):
    idx = st.integers(0, n_sets - 1)
    return st.lists(st.one_of(
        st.tuples(st.just("inc"), idx, amount),
        st.tuples(st.just("set"), idx, st.floats()),
        st.tuples(st.just("gauge_inc"), idx, finite),
        st.tuples(st.just("gauge_dec"), idx, finite),
        st.tuples(st.just("observe"), idx, observed),
        st.tuples(st.just("summary"), idx, observed),
        st.tuples(st.just("unlabelled"), idx, observed),
        st.tuples(st.just("info"), idx, st.dictionaries(st.sampled_from(["version", "commit", "x_1"]), hostile)),
        st.tuples(st.just("enum"), idx, st.sampled_from(STATES)),
        st.tuples(st.just("remove"), idx, st.sampled_from(["c", "g", "h", "s"])),
    ), max_size=60)


@st.composite
def scenario(draw):
    sets = draw(label_sets)
    return sets, draw(ops(len(sets)))


def build(lib, registry):
    kw = {"registry": registry}
    return {
        "c": lib.Counter("c", HELP, LABELS, **kw),
        "g": lib.Gauge("g", HELP, LABELS, **kw),
        "h": lib.Histogram("h", HELP, LABELS, buckets=BUCKETS, **kw),
        "s": lib.Summary("s", HELP, LABELS, **kw),
        "i": lib.Info("i", HELP, LABELS, **kw),
        "e": lib.Enum("e", HELP, LABELS, states=STATES, **kw),
        "uc": lib.Counter("uc", "unlabelled", **kw),
        "uh": lib.Histogram("uh", "unlabelled", **kw),
    }


def apply(m, sets, seq):
    for op, i, arg in seq:
        lv = sets[i]
        if op == "inc":
            m["c"].labels(*lv).inc(arg)
        elif op == "set":
            m["g"].labels(*lv).set(arg)
        elif op == "gauge_inc":
            m["g"].labels(*lv).inc(arg)
        elif op == "gauge_dec":
            m["g"].labels(*lv).dec(arg)
        elif op == "observe":
            m["h"].labels(*lv).observe(arg)
        elif op == "summary":
            m["s"].labels(*lv).observe(arg)
        elif op == "unlabelled":
            m["uh"].observe(arg)
            m["uc"].inc()
        elif op == "info":
            m["i"].labels(*lv).info(arg)
        elif op == "enum":
            m["e"].labels(*lv).state(arg)
        elif op == "remove":
            m[arg].remove(*lv)


def samples(families, with_created):
    out = {}
    for fam in families:
        for s in fam.samples:
            if s.name.endswith("_created") and not with_created:
                continue
            labels = dict(s.labels)
            for k in ("le", "quantile"):
                if k in labels:
                    labels[k] = repr(float(labels[k]))
            key = (s.name, tuple(sorted(labels.items())))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if k[0].endswith("_created"):
            continue  # creation times differ between the two runs
        assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (k, x, y)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_same_samples_as_prometheus_client(case):
    sets, seq = case
    fr, pr = fp.CollectorRegistry(), pc.CollectorRegistry()
    apply(build(fp, fr), sets, seq)
    apply(build(pc, pr), sets, seq)

    ours_text = fp.generate_latest(fr).decode()
    theirs_text = pc.generate_latest(pr).decode()
    same(samples(parse_text(ours_text), False), samples(parse_text(theirs_text), False))

    ours_om = fp.generate_openmetrics(fr).decode()
    theirs_om = pc.openmetrics.exposition.generate_latest(pr).decode()
    same(samples(parse_om(ours_om), True), samples(parse_om(theirs_om), True))


@pytest.mark.parametrize("value", ["", '"', "\\", "\n", "ü🙂", 'x"y\\z\nw'])
def test_hostile_label_value_round_trips(registry, value):
    c = fp.Counter("hostile", "H", ["v"], registry=registry)
    c.labels(value).inc()
    for parse, body in ((parse_text, fp.generate_latest(registry)), (parse_om, fp.generate_openmetrics(registry))):
        got = [s for f in parse(body.decode()) for s in f.samples if s.name == "hostile_total"]
        assert [(s.labels, s.value) for s in got] == [({"v": value}, 1.0)]


def test_exemplars_parse_in_openmetrics(registry, frozen):
    c = fp.Counter("ex", "E", registry=registry)
    h = fp.Histogram("exh", "E", buckets=[1, 2], registry=registry)
    # prometheus_client's exemplar parser mishandles an escaped quote, so
    # this value has a backslash only; quotes are checked byte-exactly below.
    c.inc(2, exemplar={"trace_id": "abc", "span_id": "q\\"})
    h.observe(1.5, exemplar={"trace_id": "def"})
    fams = {f.name: f for f in parse_om(fp.generate_openmetrics(registry).decode())}
    (total,) = [s for s in fams["ex"].samples if s.name == "ex_total"]
    assert total.exemplar.labels == {"trace_id": "abc", "span_id": "q\\"}
    assert total.exemplar.value == 2.0
    # Exemplar labels sorted, the timestamp as Python prints it, as
    # prometheus_client writes them.
    assert b'# {span_id="q\\\\",trace_id="abc"} 2.0 1700000000.5\n' in fp.generate_openmetrics(registry)
    bucket = [s for s in fams["exh"].samples if s.labels.get("le") == "2.0"][0]
    assert bucket.exemplar.labels == {"trace_id": "def"} and bucket.exemplar.value == 1.5


def test_negative_buckets_follow_prometheus_client(registry, frozen, monkeypatch):
    """With a negative bucket the sum is not a counter: it is left out, and
    _count stays, in every view, byte for byte as prometheus_client writes
    it (whose own OpenMetrics parser then rejects the family)."""
    import time

    from prometheus_client.openmetrics.exposition import generate_latest as pc_om

    monkeypatch.setattr(time, "time", lambda: frozen)
    theirs = pc.CollectorRegistry()
    for lib, reg in ((fp, registry), (pc, theirs)):
        h = lib.Histogram("neg", "N", buckets=[-1, 0, 1], registry=reg)
        h.observe(-2)
        h.observe(0.5)
    assert fp.generate_openmetrics(registry) == pc_om(theirs)
    assert fp.generate_latest(registry) == pc.generate_latest(theirs)
    text = {(s.name, s.value) for f in parse_text(fp.generate_latest(registry).decode()) for s in f.samples}
    assert ("neg_count", 2.0) in text and not any(n == "neg_sum" for n, _ in text)
    assert registry.get_sample_value("neg_count") == 2 and registry.get_sample_value("neg_sum") is None


def test_exemplar_label_values_are_escaped(registry, frozen):
    c = fp.Counter("esc", "E", registry=registry)
    c.inc(1, exemplar={"v": 'a"b\\c\nd'})
    assert b'esc_total 1.0 # {v="a\\"b\\\\c\\nd"} 1.0 1700000000.5\n' in fp.generate_openmetrics(registry)
