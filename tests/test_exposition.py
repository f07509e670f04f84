"""Byte-exact exposition output, float formatting, negotiation and gzip."""
import gzip

import pytest

from fastprom import (CONTENT_TYPE_LATEST, OPENMETRICS_CONTENT_TYPE, Counter, Enum, Gauge, Histogram, Info,
                      Summary, generate_latest, generate_openmetrics, negotiate)
from fastprom._core import format_float
from fastprom.exposition import accepts_gzip, choose_format

# Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints,
# which Prometheus' own expfmt writes; OpenMetrics adds ".0" to integers.
FLOATS = [
    (0.0, "0", "0.0"), (-0.0, "0", "0.0"), (1.0, "1", "1.0"), (-1.0, "-1", "-1.0"), (100.0, "100", "100.0"),
    (123456.0, "123456", "123456.0"), (1e6, "1e+06", "1e+06"), (1234567.0, "1.234567e+06", "1.234567e+06"),
    (0.1, "0.1", "0.1"), (0.0001, "0.0001", "0.0001"), (1e-5, "1e-05", "1e-05"), (2.5, "2.5", "2.5"),
    (0.30000000000000004, "0.30000000000000004", "0.30000000000000004"), (1.5e300, "1.5e+300", "1.5e+300"),
    (5e-324, "5e-324", "5e-324"), (2.0**53, "9.007199254740992e+15", "9.007199254740992e+15"),
    (1e21, "1e+21", "1e+21"), (-2.5e-7, "-2.5e-07", "-2.5e-07"), (1.7000000005e9, "1.7000000005e+09", "1.7000000005e+09"),
    (float("inf"), "+Inf", "+Inf"), (float("-inf"), "-Inf", "-Inf"), (float("nan"), "NaN", "NaN"),
]


@pytest.mark.parametrize("v,text,om", FLOATS)
def test_float_formatting_matches_go(v, text, om):
    assert format_float(v, False) == text
    assert format_float(v, True) == om


def test_float_formatting_round_trips():
    import random

    rnd = random.Random(7)
    for _ in range(20000):
        v = rnd.choice([rnd.uniform(-1e9, 1e9), rnd.random() * 10 ** rnd.randint(-300, 300),
                        float(rnd.randint(-10**16, 10**16))])
        assert float(format_float(v, False)) == v
        assert float(format_float(v, True)) == v


def test_float_formatting_ignores_locale():
    import locale

    old = locale.setlocale(locale.LC_NUMERIC)
    for name in ("de_DE.UTF-8", "fr_FR.UTF-8", "C.UTF-8"):
        try:
            locale.setlocale(locale.LC_NUMERIC, name)
        except locale.Error:
            continue
        try:
            assert format_float(0.5, False) == "0.5"
        finally:
            locale.setlocale(locale.LC_NUMERIC, old)


def build(registry):
    c = Counter("http_requests", "Requests, \"quoted\"\nand a \\ backslash.", ["method", "path"], registry=registry)
    c.labels("GET", "/a").inc(3)
    c.labels("POST", 'we"ird\\path\nü').inc(1.5, exemplar={"trace_id": "abc123"})
    g = Gauge("queue_depth", "Items waiting.", unit="items", registry=registry)
    g.set(1e6)
    h = Histogram("latency_seconds", "Latency.", ["h"], buckets=[0.1, 1], registry=registry)
    h.labels("/").observe(0.05)
    h.labels("/").observe(0.5, exemplar={"trace_id": "t1"})
    h.labels("/").observe(3)
    s = Summary("body_bytes", "Body size.", registry=registry)
    s.observe(512)
    Info("build", "Build.", registry=registry).info({"version": "1.0"})
    Enum("state", "State.", states=["up", "down"], registry=registry).state("up")


TEXT = b'''# HELP http_requests_total Requests, "quoted"\\nand a \\\\ backslash.
# TYPE http_requests_total counter
http_requests_total{method="GET",path="/a"} 3
http_requests_total{method="POST",path="we\\"ird\\\\path\\n\xc3\xbc"} 1.5
# HELP queue_depth_items Items waiting.
# TYPE queue_depth_items gauge
queue_depth_items 1e+06
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{h="/",le="0.1"} 1
latency_seconds_bucket{h="/",le="1.0"} 2
latency_seconds_bucket{h="/",le="+Inf"} 3
latency_seconds_count{h="/"} 3
latency_seconds_sum{h="/"} 3.55
# HELP body_bytes Body size.
# TYPE body_bytes summary
body_bytes_count 1
body_bytes_sum 512
# HELP build_info Build.
# TYPE build_info gauge
build_info{version="1.0"} 1
# HELP state State.
# TYPE state gauge
state{state="up"} 1
state{state="down"} 0
'''

OPENMETRICS = b'''# HELP http_requests Requests, \\"quoted\\"\\nand a \\\\ backslash.
# TYPE http_requests counter
http_requests_total{method="GET",path="/a"} 3.0
http_requests_created{method="GET",path="/a"} 1.7000000005e+09
http_requests_total{method="POST",path="we\\"ird\\\\path\\n\xc3\xbc"} 1.5 # {trace_id="abc123"} 1.5 1.7000000005e+09
http_requests_created{method="POST",path="we\\"ird\\\\path\\n\xc3\xbc"} 1.7000000005e+09
# HELP queue_depth_items Items waiting.
# TYPE queue_depth_items gauge
# UNIT queue_depth_items items
queue_depth_items 1e+06
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{h="/",le="0.1"} 1
latency_seconds_bucket{h="/",le="1.0"} 2 # {trace_id="t1"} 0.5 1.7000000005e+09
latency_seconds_bucket{h="/",le="+Inf"} 3
latency_seconds_count{h="/"} 3
latency_seconds_sum{h="/"} 3.55
latency_seconds_created{h="/"} 1.7000000005e+09
# HELP body_bytes Body size.
# TYPE body_bytes summary
body_bytes_count 1
body_bytes_sum 512.0
body_bytes_created 1.7000000005e+09
# HELP build Build.
# TYPE build info
build_info{version="1.0"} 1.0
# HELP state State.
# TYPE state stateset
state{state="up"} 1.0
state{state="down"} 0.0
# EOF
'''


def test_text_format_exact(registry, frozen):
    build(registry)
    assert generate_latest(registry) == TEXT


def test_openmetrics_exact(registry, frozen):
    build(registry)
    assert generate_openmetrics(registry) == OPENMETRICS


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
    ("application/openmetrics-text;version=0.0.1", False),
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


def test_negotiate_body_type_and_gzip(registry, frozen):
    build(registry)
    e = negotiate(registry, "application/openmetrics-text; version=1.0.0", "gzip")
    assert e.content_type == OPENMETRICS_CONTENT_TYPE == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert e.content_encoding == "gzip"
    assert gzip.decompress(e.body) == OPENMETRICS
    assert e.headers == {"Content-Type": OPENMETRICS_CONTENT_TYPE, "Content-Encoding": "gzip"}
    e = negotiate(registry, "text/plain", None)
    assert (e.body, e.content_type, e.content_encoding) == (TEXT, CONTENT_TYPE_LATEST, None)
    assert CONTENT_TYPE_LATEST == "text/plain; version=0.0.4; charset=utf-8"
    assert negotiate(registry, None, "gzip", allow_gzip=False).content_encoding is None
