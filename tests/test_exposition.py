"""Byte-exact exposition output, float formatting, negotiation and gzip."""
import gzip
import os

import pytest

import fastprom

from fastprom import (CONTENT_TYPE_LATEST, OPENMETRICS_CONTENT_TYPE, Counter, Enum, Gauge, Histogram, Info,
                      Summary, generate_latest, generate_openmetrics, negotiate)
from fastprom._core import format_value
from fastprom.exposition import accepts_gzip, choose_format

import prometheus_client as pc
from prometheus_client.utils import floatToGoString
from hypothesis import given, settings, strategies as st

FLOATS = [0.0, -0.0, 1.0, 9.0, 10.0, 99.0, 100000.0, 999999.5, 1764789123.456, 1764789123.4567, 2.0**63,
          2.0**64, 1e12 - 0.001, 99999999.0, 100000000.0, -1.0, 100.0, 123456.0, 1e6, 1234567.0, 0.1, 0.0001, 1e-5, 2.5, 0.30000000000000004,
          1.5e300, 5e-324, 2.0**53, 1e21, -2.5e-7, 1.7000000005e9, 1e15, 1e16, 999999.0, 9999999.0, 12345678.9,
          -1234567.0, 1234567890123456.0, 2.0**-1017, 1e-323, float("inf"), float("-inf"), float("nan"),
          # seven to twelve integer digits kept to the millisecond (created timestamps)
          1e9, 1000000.001, 1000000.1, 1764789120.0, 1764789123.5, 1764789123.05, 999999999999.999,
          999999999999.0, 100000000000.0, -1764789123.456, 1e12, 1e12 + 0.001, 0.1 + 1764789123]


@pytest.mark.parametrize("v", FLOATS)
def test_values_are_formatted_as_prometheus_client_formats_them(v):
    assert format_value(v) == floatToGoString(v)


@settings(max_examples=3000, deadline=None)
@given(st.floats())
def test_every_float_is_formatted_as_prometheus_client_formats_it(v):
    assert format_value(v) == floatToGoString(v)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.integers(-10**7, 2**65).map(float),  # counts and counter values
                 st.integers(0, 10**15).map(lambda ms: ms / 1000)))  # timestamps kept to the millisecond
def test_whole_and_millisecond_values_are_formatted_as_prometheus_client_formats_them(v):
    assert format_value(v) == floatToGoString(v)


def test_float_formatting_ignores_locale():
    import locale

    old = locale.setlocale(locale.LC_NUMERIC)
    for name in ("de_DE.UTF-8", "fr_FR.UTF-8", "C.UTF-8"):
        try:
            locale.setlocale(locale.LC_NUMERIC, name)
        except locale.Error:
            continue
        try:
            assert format_value(0.123456789123) == "0.123456789123"
        finally:
            locale.setlocale(locale.LC_NUMERIC, old)


def build(lib, registry):
    c = lib.Counter("http_requests", "Requests, \"quoted\"\nand a \\ backslash.", ["path", "method"],
                    registry=registry)
    c.labels("/a", "GET").inc(3)
    c.labels('we"ird\\path\nü', "POST").inc(1.5, exemplar={"trace_id": "abc123", "a": "b"})
    g = lib.Gauge("queue_depth", "Items waiting.", unit="items", registry=registry)
    g.set(1e6)
    h = lib.Histogram("latency_seconds", "Latency.", ["z", "a"], buckets=[0.1, 1], registry=registry)
    h.labels("/", "x").observe(0.05)
    h.labels("/", "x").observe(0.5, exemplar={"trace_id": "t1"})
    h.labels("/", "x").observe(3)
    n = lib.Histogram("delta", "Deltas.", buckets=[-1, 0, 1], registry=registry)
    n.observe(-2)
    n.observe(0.5)
    s = lib.Summary("body_bytes", "Body size.", registry=registry)
    s.observe(512)
    lib.Counter("requests", "Unit total.", unit="total", registry=registry).inc()
    lib.Info("build", "Build.", registry=registry).info({"version": "1.0", "commit": "abc"})
    lib.Enum("state", "State.", states=["up", "down"], registry=registry).state("up")


@pytest.fixture
def both(monkeypatch, frozen):
    """The same operations on both libraries, with prometheus_client's clock frozen too."""
    import time

    monkeypatch.setattr(time, "time", lambda: frozen)
    mine, theirs = fastprom.CollectorRegistry(), pc.CollectorRegistry()
    build(fastprom, mine)
    build(pc, theirs)
    return mine, theirs


def test_text_format_is_byte_identical_to_prometheus_client(both):
    mine, theirs = both
    assert generate_latest(mine) == pc.generate_latest(theirs)
    assert b'http_requests_total{method="GET",path="/a"} 3.0\n' in generate_latest(mine)


def test_openmetrics_is_byte_identical_to_prometheus_client(both):
    from prometheus_client.openmetrics.exposition import generate_latest as pc_om

    mine, theirs = both
    assert generate_openmetrics(mine) == pc_om(theirs)
    assert b'# {a="b",trace_id="abc123"} 1.5 1700000000.5\n' in generate_openmetrics(mine)


def test_created_series_follow_the_switch(both):
    mine, theirs = both
    from prometheus_client.openmetrics.exposition import generate_latest as pc_om

    try:
        fastprom.disable_created_metrics()
        pc.disable_created_metrics()
        assert b"_created" not in generate_latest(mine)
        assert generate_latest(mine) == pc.generate_latest(theirs)
        assert generate_openmetrics(mine) == pc_om(theirs)
    finally:
        fastprom.enable_created_metrics()
        pc.enable_created_metrics()
    assert generate_latest(mine) == pc.generate_latest(theirs)


def test_created_series_off_by_environment(tmp_path):
    import subprocess
    import sys

    code = ("import fastprom; r = fastprom.CollectorRegistry(); fastprom.Counter('c', 'C', registry=r).inc(); "
            "print(fastprom.generate_latest(r).decode())")
    for value, shown in (("True", False), ("1", False), ("t", False), ("False", True), ("", True)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**__import__("os").environ, "PROMETHEUS_DISABLE_CREATED_SERIES": value})
        assert out.returncode == 0, out.stderr
        assert ("c_created" in out.stdout) is shown, (value, out.stdout)


def test_empty_labelled_family_renders_metadata_only(registry):
    Counter("none_yet", "Nothing yet.", ["a"], registry=registry)
    assert generate_latest(registry) == b"# HELP none_yet_total Nothing yet.\n# TYPE none_yet_total counter\n"


@pytest.mark.parametrize("accept,om", [
    (None, False),
    ("", False),
    ("text/plain", False),
    ("*/*", False),
    ("application/openmetrics-text", True),
    ("application/openmetrics-text; version=1.0.0; charset=utf-8", True),
    ("application/openmetrics-text;version=0.0.1", True),  # OpenMetrics 0.0.1: the same text, legacy names
    ("application/openmetrics-text;version=2.0.0", False),
    # Prometheus 2.x's scrape header.
    ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", True),
    ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5", False),
    ("application/openmetrics-text;q=0,text/plain", False),
    ("application/openmetrics-text;q=0.5,text/plain;q=0.5", True),
    ("text/html", False),
    ("application/openmetrics-text;q=bogus", False),
])
def test_choose_format(accept, om):
    assert choose_format(accept) is om


@pytest.mark.parametrize("header,ok", [
    (None, False), ("", False), ("gzip", True), ("gzip, deflate, br", True), ("deflate", False),
    ("gzip;q=0", False), ("*", True), ("*;q=0", False), ("br;q=1, gzip;q=0.1", True), ("*, gzip;q=0", False),
])
def test_accepts_gzip(header, ok):
    assert accepts_gzip(header) is ok


def test_negotiate_body_type_and_gzip(both):
    registry, _ = both
    e = negotiate(registry, "application/openmetrics-text; version=1.0.0", "gzip")
    # A versioned request is answered with the version and the escaping
    # scheme, as prometheus_client answers it.
    assert e.content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
    assert negotiate(registry, "application/openmetrics-text").content_type == OPENMETRICS_CONTENT_TYPE
    assert e.content_encoding == "gzip"
    assert gzip.decompress(e.body) == generate_openmetrics(registry)
    assert e.headers == {"Content-Type": e.content_type, "Content-Encoding": "gzip"}
    e = negotiate(registry, "text/plain", None)
    assert (e.body, e.content_type, e.content_encoding) == (generate_latest(registry),
                                                            "text/plain; version=0.0.4; charset=utf-8", None)
    assert negotiate(registry, None, "gzip", allow_gzip=False).content_encoding is None


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_bodies_larger_and_smaller_than_the_last_are_whole(openmetrics, monkeypatch, frozen):
    """Each body starts in storage sized by the one before: a store that grows past that, or shrinks,
    still renders exactly what prometheus_client renders."""
    import time

    from prometheus_client.openmetrics.exposition import generate_latest as pc_om

    monkeypatch.setattr(time, "time", lambda: frozen)
    mine, theirs = fastprom.CollectorRegistry(), pc.CollectorRegistry()
    ours = fastprom.Counter("grown", "Grows.", ["i"], registry=mine)
    peer = pc.Counter("grown", "Grows.", ["i"], registry=theirs)
    render, expect = (generate_openmetrics, pc_om) if openmetrics else (generate_latest, pc.generate_latest)
    for n in (1, 3000, 3001, 10, 0, 20000, 2):
        for c in (ours, peer):
            c.clear()
            for i in range(n):
                c.labels(str(i) * (1 + i % 5)).inc(i)
        assert render(mine) == expect(theirs), n


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_bodies_of_a_slowly_growing_store_are_whole_bytes(openmetrics):
    """A body a little shorter than its storage keeps that storage: it is still an ordinary bytes object of
    its own length, equal to a copy of itself, and renders what prometheus_client renders."""
    import sys

    from prometheus_client.openmetrics.exposition import generate_latest as pc_om

    mine, theirs = fastprom.CollectorRegistry(), pc.CollectorRegistry()
    ours = fastprom.Gauge("grown", "Grows.", ["i"], registry=mine)
    peer = pc.Gauge("grown", "Grows.", ["i"], registry=theirs)
    render, expect = (generate_openmetrics, pc_om) if openmetrics else (generate_latest, pc.generate_latest)
    n = 0
    for target in (5000, 5000, 5050, 5400, 6000, 4800, 4000, 6500):
        while n < target:
            ours.labels(str(n)).set(n / 7)
            peer.labels(str(n)).set(n / 7)
            n += 1
        while n > target:
            n -= 1
            ours.remove(str(n))
            peer.remove(str(n))
        body = render(mine)
        copy = bytes(bytearray(body))
        assert body == expect(theirs), target
        assert len(body) == len(copy) and hash(body) == hash(copy) and sys.getsizeof(body) == sys.getsizeof(copy)
        assert body.decode().count("\n") == copy.count(b"\n") and body.endswith(b"# EOF\n" if openmetrics else b"\n")


def test_an_empty_body_after_a_small_one_is_the_empty_bytes_object():
    """Only large bodies keep the storage they were written in: after a small render, an empty one is the
    interpreter's own empty bytes object."""
    registry = fastprom.CollectorRegistry()
    fastprom.Counter("small", "Small.", registry=registry).inc()
    generate_latest(registry)
    assert fastprom._core.render((), fastprom._core.VIEW_TEXT) is b""


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer maps its shadow memory in the limited address space and aborts "
                           "on a failed allocation")
@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_one_large_body_does_not_make_later_small_renders_fail_when_memory_is_short(openmetrics):
    """The storage a render starts in is sized by the body before; when that much cannot be had (a limited
    address space after one large body), a small render still succeeds, and so does every one after."""
    import subprocess
    import sys
    import textwrap

    gen = "generate_openmetrics" if openmetrics else "generate_latest"
    script = textwrap.dedent(f"""
        import re, resource, fastprom
        big, small = fastprom.CollectorRegistry(), fastprom.CollectorRegistry()
        g = fastprom.Gauge("g", "Big.", ["l"], registry=big)
        fastprom.Counter("c", "Small.", registry=small).inc()
        g.labels("x" * 60_000_000).set(1)
        body = fastprom.{gen}(big)
        assert len(body) > 60_000_000
        del body
        g.clear()
        vm = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 30_000_000, resource.RLIM_INFINITY))
        for reg in (small, big, small):
            for _ in range(3):
                out = fastprom.{gen}(reg)
                assert out.endswith(b"# EOF\\n" if {openmetrics} else b"\\n"), out
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
