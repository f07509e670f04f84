"""Native histograms: bucket arithmetic against an independent computation of
the schema math, the zero bucket, negative values, the bucket limit, and
exact counts across threads, forks and processes sharing a store."""
import math
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

import fastprom
from fastprom import Histogram, _core
from fastprom.errors import InvalidMetricError


def go_schema(factor):
    """client_golang's pickSchema, written from its definition."""
    f = math.floor(math.log2(math.log2(factor)))
    return 8 if f <= -8 else -4 if f >= 4 else -f


def expected_index(v, schema):
    """ceil(log2|v| * 2^schema): bucket i holds (2^((i-1)/2^s), 2^(i/2^s)].
    None when |v| is too near a bound for floating point to tell."""
    x = math.log2(abs(v)) * 2.0 ** schema
    if abs(x - round(x)) < 1e-6:
        # Only an exact power of two is known to sit on its bound.
        return round(x) if math.frexp(abs(v))[0] == 0.5 and schema >= 0 else None
    return math.ceil(x)


def buckets_of(side):
    """{index: count} from (spans, deltas), empty buckets left out."""
    spans, deltas = side
    out, i, k, count = {}, 0, 0, 0
    for n, (offset, length) in enumerate(spans):
        i = offset if n == 0 else i + offset
        for _ in range(length):
            count += deltas[k]
            k += 1
            if count:
                out[i] = count
            i += 1
        # i is now one past the span's last bucket
    assert k == len(deltas)
    return out


def expected_buckets(values, schema, zero_threshold):
    pos, neg, zero = {}, {}, 0
    for v in values:
        if abs(v) <= zero_threshold:
            zero += 1
            continue
        i = expected_index(v, schema)
        assert i is not None
        side = neg if v < 0 else pos
        side[i] = side.get(i, 0) + 1
    return pos, neg, zero


def clear_of_bounds(rnd, lo, hi, schema, n):
    out = []
    while len(out) < n:
        v = math.exp(rnd.uniform(math.log(lo), math.log(hi)))
        if expected_index(v, schema) is not None:
            out.append(v)
    return out


@pytest.mark.parametrize("factor", [1.0001, 1.001, 1.002, 1.005, 1.01, 1.02, 1.05, 1.1, 1.2, 1.5, 2, 3, 4, 10,
                                    100, 1e4, 1e6, 1e20, 1e300])
def test_schema_follows_the_bucket_factor(factor):
    assert _core.native_schema(factor) == go_schema(factor)


def test_index_matches_the_schema_math():
    rnd = random.Random(12)
    for schema in range(_core.NATIVE_SCHEMA_MIN, _core.NATIVE_SCHEMA_MAX + 1):
        checked = 0
        for _ in range(3000):
            v = math.exp(rnd.uniform(-700, 700)) * rnd.choice((1, -1))
            want = expected_index(v, schema)
            if want is None:
                continue
            assert _core.native_index(v, schema) == want, (v, schema)
            checked += 1
        assert checked > 2900
        # Exact at powers of two: 2^k is the upper bound of its bucket.
        for k in range(-1074, 1024, 7):
            assert _core.native_index(2.0 ** k, schema) == math.ceil(k * 2.0 ** schema), (k, schema)
        # Just above a power of two is the next bucket.
        assert _core.native_index(math.nextafter(1.0, 2.0), schema) == 1
        assert _core.native_index(1.0, schema) == 0
    # ±Inf: one bucket past the largest double's.
    assert _core.native_index(math.inf, 3) == _core.native_index(sys.float_info.max, 3) + 1
    with pytest.raises(ValueError, match="schema"):
        _core.native_index(1.0, 9)


def test_exact_buckets_for_known_values(registry):
    rnd = random.Random(3)
    values = clear_of_bounds(rnd, 1e-3, 1e3, 3, 2000)
    values += [-v for v in clear_of_bounds(rnd, 1e-2, 10, 3, 500)]
    values += [0.0, 0.0, 1e-40, -1e-40, 2.0, 0.25, -4.0]
    h = Histogram("known", "K", registry=registry, native_histogram_bucket_factor=1.1,
                  native_histogram_max_bucket_number=1000)
    for v in values:
        h.observe(v)
    nb = h._native_buckets()
    assert nb["schema"] == 3 and nb["zero_threshold"] == 2.0 ** -128
    pos, neg, zero = expected_buckets(values, 3, 2.0 ** -128)
    assert buckets_of(nb["positive"]) == pos
    assert buckets_of(nb["negative"]) == neg
    assert nb["zero_count"] == zero == 4
    assert nb["count"] == nb["classic_count"] == len(values)
    assert nb["sum"] == pytest.approx(math.fsum(values))


def test_zero_threshold_and_gaps_inside_spans(registry):
    h = Histogram("zt", "Z", registry=registry, native_histogram_bucket_factor=2, native_histogram_zero_threshold=0.5)
    for v in (0.5, -0.5, 0.1, 0, 1, 2, 16, 2 ** 10):
        h.observe(v)
    nb = h._native_buckets()
    assert nb["schema"] == 0 and nb["zero_threshold"] == 0.5 and nb["zero_count"] == 4
    # Buckets 0 (1), 1 (2), 4 (16), 10 (1024): a gap of two stays in the span, one of five starts a new one.
    assert nb["positive"] == ([(0, 5), (5, 1)], [1, 0, -1, 0, 1, 0])
    assert nb["negative"] == ([], [])


def test_infinities_go_past_the_largest_bucket(registry):
    h = Histogram("inf", "I", registry=registry, native_histogram_bucket_factor=1.1)
    h.observe(math.inf)
    h.observe(-math.inf)
    nb = h._native_buckets()
    top = _core.native_index(sys.float_info.max, 3) + 1
    assert buckets_of(nb["positive"]) == {top: 1} and buckets_of(nb["negative"]) == {top: 1}


def finest_fitting(values, schema, limit):
    while True:
        keys = {(v < 0, math.ceil(math.log2(abs(v)) * 2.0 ** schema)) for v in values}
        if len(keys) <= limit or schema == _core.NATIVE_SCHEMA_MIN:
            return schema, len(keys)
        schema -= 1


def test_bucket_limit_halves_the_resolution(registry):
    rnd = random.Random(5)
    values = clear_of_bounds(rnd, 1e-3, 1e4, 7, 3000)
    h = Histogram("lim", "L", registry=registry, native_histogram_bucket_factor=1.005,
                  native_histogram_max_bucket_number=20)
    for v in values:
        h.observe(v)
    nb = h._native_buckets()
    want_schema, nbuckets = finest_fitting(values, 7, 20)
    assert nb["schema"] == want_schema < 7
    got = buckets_of(nb["positive"])
    assert len(got) == nbuckets <= 20
    assert sum(got.values()) == nb["count"] == len(values)


def test_bucket_limit_widens_the_zero_bucket_first(registry):
    h = Histogram("wide", "W", registry=registry, native_histogram_bucket_factor=2,
                  native_histogram_max_bucket_number=3, native_histogram_max_zero_threshold=0.3)
    for v in (0.05, 0.1, 0.2, 1.5, 3):
        h.observe(v)
    nb = h._native_buckets()
    # Buckets (schema 0): 0.05 -> -4, 0.1 -> -3, 0.2 -> -2, 1.5 -> 1, 3 -> 2.  Five > 3: the zero
    # bucket takes -4 (le 0.0625), then -3 (le 0.125), and three fit.
    assert nb["schema"] == 0
    assert nb["zero_threshold"] == 0.125 and nb["zero_count"] == 2
    assert buckets_of(nb["positive"]) == {-2: 1, 1: 1, 2: 1}
    # Then -2 (0.25) is still within the maximum; 0.5 would not be: the resolution halves.
    for v in (6, 12):
        h.observe(v)
    nb = h._native_buckets()
    assert nb["zero_threshold"] == 0.25 and nb["zero_count"] == 3
    # Left 1, 2, 3 (6), 4 (12): four > 3, so schema -1: 1 -> 1, 2 -> 1, 3 -> 2, 4 -> 2.
    assert nb["schema"] == -1 and buckets_of(nb["positive"]) == {1: 2, 2: 2}


def test_a_full_table_coarsens_new_keys_and_keeps_every_count(registry):
    """Past twice the limit, observers key new buckets one schema coarser;
    the walker folds the older keys into it.  Nothing is lost."""
    h = Histogram("full", "F", registry=registry, native_histogram_bucket_factor=1.0001,
                  native_histogram_max_bucket_number=5)
    values = [2.0 ** (i / 256 + 0.5 / 256) for i in range(-1500, 1500)]
    for v in values:
        h.observe(v)
        h.observe(-v)
    nb = h._native_buckets()
    assert nb["count"] == nb["classic_count"] == 2 * len(values)
    assert sum(buckets_of(nb["positive"]).values()) == len(values)
    assert sum(buckets_of(nb["negative"]).values()) == len(values)
    assert len(buckets_of(nb["positive"])) + len(buckets_of(nb["negative"])) <= 5 or nb["schema"] == -4
    assert registry._get_store().check() is None


def test_text_output_shows_only_the_classic_buckets(registry):
    plain = fastprom.CollectorRegistry()
    fastprom.freeze_clock(1.0)
    for reg, kw in ((registry, {"native_histogram_bucket_factor": 1.1}), (plain, {})):
        h = Histogram("same", "S", ["a"], registry=reg, buckets=(0.1, 1, 10), **kw)
        for v in (0.05, 0.5, 5, 50, -1):
            h.labels("x").observe(v)
    try:
        assert fastprom.generate_latest(registry) == fastprom.generate_latest(plain)
        assert fastprom.generate_openmetrics(registry) == fastprom.generate_openmetrics(plain)
    finally:
        fastprom.freeze_clock(None)


def test_native_only_shows_inf_count_and_sum(registry):
    h = Histogram("only", "O", registry=registry, buckets=(), native_histogram_bucket_factor=1.1)
    h.observe(2)
    h.observe(3)
    text = fastprom.generate_latest(registry).decode()
    samples = {(s.name, tuple(s.labels.items())): s.value for f in parse_text(text) for s in f.samples}
    assert samples[("only_bucket", (("le", "+Inf"),))] == 2
    assert samples[("only_count", ())] == 2 and samples[("only_sum", ())] == 5
    assert not [k for k in samples if k[0] == "only_bucket" and k[1] != (("le", "+Inf"),)]
    assert h._native_buckets()["count"] == 2
    with pytest.raises(InvalidMetricError, match="at least two buckets"):
        Histogram("classic_empty", "C", registry=registry, buckets=())


@pytest.mark.parametrize("kw,match", [
    ({"native_histogram_bucket_factor": 1.0}, "bucket_factor must be a finite number above 1"),
    ({"native_histogram_bucket_factor": 0.5}, "bucket_factor must be a finite number above 1"),
    ({"native_histogram_bucket_factor": math.inf}, "bucket_factor"),
    ({"native_histogram_bucket_factor": "1.1"}, "bucket_factor must be a number"),
    ({"native_histogram_bucket_factor": 1.1, "native_histogram_zero_threshold": -1}, "zero_threshold"),
    ({"native_histogram_bucket_factor": 1.1, "native_histogram_zero_threshold": math.nan}, "zero_threshold"),
    ({"native_histogram_bucket_factor": 1.1, "native_histogram_max_bucket_number": 0}, "max_bucket_number"),
    ({"native_histogram_bucket_factor": 1.1, "native_histogram_max_bucket_number": 1.5}, "max_bucket_number"),
    ({"native_histogram_bucket_factor": 1.1, "native_histogram_max_bucket_number": 10 ** 6}, "max_bucket_number"),
    ({"native_histogram_bucket_factor": 1.1, "native_histogram_min_reset_duration": -1}, "min_reset_duration"),
    ({"native_histogram_bucket_factor": 1.1, "native_histogram_max_zero_threshold": -0.1}, "max_zero_threshold"),
])
def test_bad_settings_are_refused_by_name(registry, kw, match):
    with pytest.raises(InvalidMetricError, match=match):
        Histogram("bad", "B", registry=registry, **kw)


def test_observe_with_reads_between_in_threads(registry):
    h = Histogram("threads", "T", ["w"], registry=registry, native_histogram_bucket_factor=1.1,
                  native_histogram_max_bucket_number=30)
    child = h.labels("a")
    n_threads, per = 4, 20000
    stop = threading.Event()
    problems = []

    def reader():
        last = 0
        while not stop.is_set():
            nb = child._native_buckets()
            total = nb["zero_count"] + sum(buckets_of(nb["positive"]).values()) + \
                sum(buckets_of(nb["negative"]).values())
            if total != nb["count"] or nb["classic_count"] > nb["count"] or nb["count"] < last:
                problems.append(nb)
            last = nb["count"]
            fastprom.generate_latest(registry)

    def writer(seed):
        rnd = random.Random(seed)
        for _ in range(per):
            child.observe(rnd.lognormvariate(0, 3) * rnd.choice((1, -1)))

    t = threading.Thread(target=reader)
    t.start()
    ws = [threading.Thread(target=writer, args=(i,)) for i in range(n_threads)]
    for w in ws:
        w.start()
    for w in ws:
        w.join(120)
    stop.set()
    t.join(60)
    assert not problems
    nb = child._native_buckets()
    assert nb["count"] == nb["classic_count"] == n_threads * per


def test_a_forked_child_observes_into_the_shared_store(tmp_path):
    reg = fastprom.CollectorRegistry()
    reg._open_store(str(tmp_path))
    h = Histogram("forked", "F", registry=reg, native_histogram_bucket_factor=1.1)
    h.observe(1.5)
    pid = os.fork()
    if pid == 0:
        try:
            for _ in range(1000):
                h.observe(1.5)
                h.observe(-3)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    nb = h._native_buckets()
    i = _core.native_index(1.5, 3)
    assert buckets_of(nb["positive"]) == {i: 1001}
    assert buckets_of(nb["negative"]) == {_core.native_index(3, 3): 1000}
    assert nb["count"] == 2001


def _observe_part(directory, values, barrier):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    import fastprom as fp

    h = fp.Histogram("mp_native", "M", native_histogram_bucket_factor=1.05, native_histogram_max_bucket_number=40)
    barrier.wait()
    for v in values:
        h.observe(v)


def test_two_processes_merge_exactly(tmp_path):
    rnd = random.Random(8)
    values = clear_of_bounds(rnd, 1e-3, 1e3, 4, 40000)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_observe_part, args=(str(tmp_path), part, barrier))
             for part in (values[::2], values[1::2])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    reg = fastprom.CollectorRegistry()
    reg._open_store(str(tmp_path))
    h = Histogram("mp_native", "M", registry=reg, native_histogram_bucket_factor=1.05,
                  native_histogram_max_bucket_number=40)
    nb = h._native_buckets()
    # The same histogram as one process observing everything.
    single = fastprom.CollectorRegistry()
    one = Histogram("mp_native", "M", registry=single, native_histogram_bucket_factor=1.05,
                    native_histogram_max_bucket_number=40)
    for v in values:
        one.observe(v)
    want = one._native_buckets()
    assert nb["count"] == len(values)
    for k in ("schema", "zero_threshold", "zero_count", "count", "positive", "negative"):
        assert nb[k] == want[k], k
    assert reg._get_store().check() is None
    # Other settings for the same name in the same store are refused.
    with pytest.raises(ValueError):
        Histogram("mp_native", "M", registry=reg, native_histogram_bucket_factor=1.1)


def test_protobuf_carries_the_native_buckets(registry):
    pytest.importorskip("google.protobuf")
    from pb_schema import parse_delimited

    h = Histogram("pb_native", "P", ["a"], registry=registry, buckets=(1,), native_histogram_bucket_factor=1.1)
    for v in (0.0, 0.3, 0.31, 2.5, -7.0, 1e6):
        h.labels("x").observe(v)
    only = Histogram("pb_only", "O", registry=registry, buckets=(), native_histogram_bucket_factor=2)
    empty = Histogram("pb_empty", "E", registry=registry, buckets=(), native_histogram_bucket_factor=2)
    only.observe(3)
    fams = {f.name: f for f in parse_delimited(registry.render(protobuf=True))}
    (m,) = fams["pb_native"].metric
    hist, nb = m.histogram, h.labels("x")._native_buckets()
    assert (hist.schema, hist.zero_threshold, hist.zero_count, hist.sample_count) == \
        (nb["schema"], nb["zero_threshold"], nb["zero_count"], nb["count"]) == (3, 2.0 ** -128, 1, 6)
    assert [(s.offset, s.length) for s in hist.positive_span] == nb["positive"][0]
    assert list(hist.positive_delta) == nb["positive"][1]
    assert [(s.offset, s.length) for s in hist.negative_span] == nb["negative"][0]
    assert list(hist.negative_delta) == nb["negative"][1]
    assert [(b.upper_bound, b.cumulative_count) for b in hist.bucket][:1] == [(1.0, 4)]
    # Native only: no classic buckets, as client_golang writes it.
    (o,) = fams["pb_only"].metric
    assert not o.histogram.bucket and o.histogram.sample_count == 1 and o.histogram.schema == 0
    (e,) = fams["pb_empty"].metric
    # No observations: one empty span marks it native.
    assert [(s.offset, s.length) for s in e.histogram.positive_span] == [(0, 0)]


def test_the_instrumentator_s_latency_histograms_can_be_native():
    """instrument(app, latency_native_histograms=True): both latency histograms
    carry native buckets in protobuf (schema 3, factor 1.1) beside their
    classic ones, and the text format shows the classic buckets only."""
    import json

    import httpx
    from pb_schema import parse_delimited
    from servers import uvicorn_server

    from fastprom.exposition import PROTOBUF_CONTENT_TYPE

    env = {"FASTPROM_TEST_INSTRUMENT": json.dumps({"latency_native_histograms": True})}
    with uvicorn_server(env=env) as base:
        for i in range(7):
            assert httpx.get(f"{base}/items/{i}").status_code == 200
        body = httpx.get(f"{base}/metrics", headers={"Accept": PROTOBUF_CONTENT_TYPE}).content
        text = httpx.get(f"{base}/metrics").text
    fams = {f.name: f for f in parse_delimited(body)}
    lowr = [m.histogram for m in fams["http_request_duration_seconds"].metric
            if dict((lp.name, lp.value) for lp in m.label)["handler"] == "/items/{item_id}"]
    highr = [m.histogram for m in fams["http_request_duration_highr_seconds"].metric]
    assert len(lowr) == 1 and len(highr) == 1
    for h in lowr + highr:
        assert h.schema == 3 and len(h.positive_span) >= 1 and len(h.bucket) > 0
    assert lowr[0].sample_count == 7
    native_count = lowr[0].zero_count + sum(_running(lowr[0].positive_delta))
    assert native_count == 7
    assert 'http_request_duration_seconds_bucket{handler="/items/{item_id}",le="0.1",method="GET"}' in text


def _running(deltas):
    """Bucket counts from protobuf's deltas (each relative to the one before)."""
    out, at = [], 0
    for d in deltas:
        at += d
        out.append(at)
    return out
