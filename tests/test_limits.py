"""Bounds on what clients and label values can make: request methods, series
per metric (max_series), the negotiation headers, and names that would break
the exposition."""
import http.client
import random
import string
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import pytest

import fastprom as fp
from fastprom import exposition
from fastprom.asgi.middleware import KNOWN_METHODS, OTHER_METHOD
from fastprom.exposition import negotiate
from prometheus_client.parser import text_string_to_metric_families as parse_text
from servers import uvicorn_server


def samples(reg, name):
    return {tuple(sorted(s.labels.items())): s.value
            for f in parse_text(fp.generate_latest(reg).decode()) for s in f.samples if s.name == name}


# ---- names ------------------------------------------------------------------


@pytest.mark.parametrize("kind,make", [
    ("metric name", lambda reg: fp.Counter("reqs\n", "R", registry=reg)),
    ("metric name", lambda reg: fp.Gauge("a\nb", "R", registry=reg)),
    ("label name", lambda reg: fp.Counter("reqs", "R", ["path\n"], registry=reg)),
    ("unit", lambda reg: fp.Histogram("latency", "R", unit="seconds\n", registry=reg)),
])
def test_names_with_a_newline_are_refused_with_the_reason(registry, kind, make):
    with pytest.raises(ValueError) as e:
        make(registry)
    text = str(e.value)
    assert "\\n" in text and "\n" not in text, text  # shown escaped, named
    assert fp.generate_latest(registry) == b""  # nothing half-made


def test_legacy_validation_refuses_a_trailing_newline(registry):
    from fastprom import validation
    validation.enable_legacy_validation()
    try:
        with pytest.raises(ValueError, match="invalid metric name"):
            fp.Counter("reqs\n", "R", registry=registry)
        assert not validation._is_valid_legacy_metric_name("reqs\n")
    finally:
        validation.disable_legacy_validation()


# ---- request methods --------------------------------------------------------


def test_request_methods_outside_the_standard_set_are_one_label_value_under_h11():
    """uvicorn's h11 protocol passes any token as the method; 200 requests
    with random 1 KB methods must not make a series each."""
    rnd = random.Random(7)
    with uvicorn_server(extra_args=["--http", "h11"]) as base:
        port = int(base.rsplit(":", 1)[1])
        for i in range(200):
            method = "".join(rnd.choice(string.ascii_uppercase) for _ in range(1024))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(method, f"/items/{i}")
            conn.getresponse().read()
            conn.close()
        for method in ("GET", "PATCH", "get"):  # lower case is another method
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(method, "/items/1")
            conn.getresponse().read()
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
        conn.close()
    totals = {tuple(sorted(s.labels.items())): s.value for f in parse_text(body) for s in f.samples
              if s.name == "http_requests_total"}
    methods = {dict(k)["method"] for k in totals}
    assert methods <= KNOWN_METHODS | {OTHER_METHOD}, methods
    other = sum(v for k, v in totals.items() if dict(k)["method"] == OTHER_METHOD)
    assert other == 201  # the random ones and "get"
    assert len(body) < 64 * 1024


def test_known_methods_can_be_extended(registry):
    from fastapi import FastAPI
    from starlette.testclient import TestClient
    app = FastAPI()
    app.api_route("/dav", methods=["PROPFIND", "GET"])(lambda: "ok")
    fp.Instrumentator(registry=registry, known_methods=KNOWN_METHODS | {"PROPFIND"}).instrument(app)
    with TestClient(app) as client:
        client.request("PROPFIND", "/dav")
        client.request("MKCOL", "/dav")
    got = samples(registry, "http_requests_total")
    assert {dict(k)["method"] for k in got} == {"PROPFIND", OTHER_METHOD}
    with pytest.raises(TypeError, match="not a str"):
        fp.Instrumentator(registry=registry, known_methods="GET")


# ---- max_series -------------------------------------------------------------


@pytest.mark.parametrize("make,record", [
    (lambda reg, n: fp.Counter("c", "C", ["k"], registry=reg, max_series=n), lambda child: child.inc()),
    (lambda reg, n: fp.Gauge("c", "C", ["k"], registry=reg, max_series=n), lambda child: child.inc()),
    (lambda reg, n: fp.Histogram("c", "C", ["k"], registry=reg, max_series=n), lambda child: child.observe(1)),
    (lambda reg, n: fp.Summary("c", "C", ["k"], registry=reg, max_series=n), lambda child: child.observe(1)),
    (lambda reg, n: fp.Info("c", "C", ["k"], registry=reg, max_series=n), lambda child: child.info({"v": "1"})),
    (lambda reg, n: fp.Enum("c", "C", ["k"], registry=reg, max_series=n, states=["a", "b"]),
     lambda child: child.state("b")),
])
def test_past_max_series_new_label_sets_go_to_the_overflow_series(registry, make, record):
    m = make(registry, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(10):
            record(m.labels(str(i)))
    limit_warnings = [w for w in caught if "max_series" in str(w.message)]
    assert len(limit_warnings) == 1 and issubclass(limit_warnings[0].category, RuntimeWarning)
    out = fp.generate_latest(registry).decode()
    keys = {s.labels.get("k") for f in parse_text(out) if f.name.startswith("c") for s in f.samples if "k" in s.labels}
    assert keys == {"0", "1", "2", "fastprom_overflow"}, keys
    limited = samples(registry, "fastprom_series_limited_total")
    assert limited == {(("metric", "c"),): 7.0}
    # Nothing recorded is lost: the first three kept their own series.
    assert all(f'k="{i}"' in out for i in range(3))


def test_the_overflow_series_holds_every_count_past_the_limit(registry):
    c = fp.Counter("c", "C", ["k"], registry=registry, max_series=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(100):
            c.labels(str(i % 10)).inc()
    got = samples(registry, "c_total")
    assert got[(("k", "0"),)] == 10 and got[(("k", "1"),)] == 10
    assert got[(("k", "fastprom_overflow"),)] == 80
    assert sum(got.values()) == 100
    # Children past the limit are not kept in memory (the label values past
    # a limit are the unbounded ones).
    assert len(c._label_pairs()) == 3


def test_a_removal_makes_room_for_a_new_label_set(registry):
    c = fp.Counter("c", "C", ["k"], registry=registry, max_series=2)
    c.labels("a").inc()
    c.labels("b").inc()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        held = c.labels("c")
        held.inc()
    c.remove("a")
    held.inc()  # the child held from before gets its own series now
    c.labels("d").inc()  # and the limit still holds: this one overflows
    got = samples(registry, "c_total")
    assert got[(("k", "c"),)] == 1 and got[(("k", "fastprom_overflow"),)] == 2
    assert (("k", "a"),) not in got and (("k", "d"),) not in got


def test_max_series_is_checked(registry):
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="max_series"):
            fp.Counter(f"c{abs(hash(str(bad)))}", "C", ["k"], registry=registry, max_series=bad)


def test_max_series_counts_every_process_of_a_shared_store(tmp_path):
    code = textwrap.dedent("""
        import sys, warnings
        import fastprom
        warnings.simplefilter("ignore")
        c = fastprom.Counter("shared", "S", ["k"], max_series=5)
        for i in range(5):
            c.labels(sys.argv[1] + str(i)).inc()
        print(fastprom.generate_latest().decode())
    """)
    env = dict(__import__("os").environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE="8M")
    first = subprocess.run([sys.executable, "-c", code, "a"], env=env, capture_output=True, text=True, timeout=60)
    second = subprocess.run([sys.executable, "-c", code, "b"], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    got = {tuple(sorted(s.labels.items())): s.value for f in parse_text(second.stdout) for s in f.samples
           if s.name == "shared_total"}
    assert len(got) == 6 and got[(("k", "fastprom_overflow"),)] == 5
    assert all((("k", f"a{i}"),) in got for i in range(5))
    limited = {s.labels["metric"]: s.value for f in parse_text(second.stdout) for s in f.samples
               if s.name == "fastprom_series_limited_total"}
    assert limited == {"shared": 5.0}


def test_the_instrumentators_families_have_a_series_limit(registry):
    from fastapi import FastAPI
    from starlette.testclient import TestClient
    from fastprom.asgi.instrumentations import DEFAULT_MAX_SERIES
    app = FastAPI()
    inst = fp.Instrumentator(registry=registry, should_group_untemplated=False, max_series=20).instrument(app)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(app) as client:
            for i in range(100):
                client.get(f"/unknown/{i}")  # raw paths: one label value each
    totals = samples(registry, "http_requests_total")
    assert len(totals) == 21 and sum(totals.values()) == 100
    assert samples(registry, "fastprom_series_limited_total")[(("metric", "http_requests"),)] == 80
    assert inst.max_series == 20
    assert fp.Instrumentator().max_series == DEFAULT_MAX_SERIES == 10_000


# ---- negotiation ------------------------------------------------------------


@pytest.mark.parametrize("header", [
    "a" * 1_000_000,
    ",".join(["text/plain;q=0.5"] * 60_000),
    "text/plain;" + ";".join(["x=1"] * 200_000),
    "gzip;q=" + "1" * 1_000_000,
])
def test_negotiation_reads_a_bounded_part_of_huge_headers(registry, header):
    """Work and memory stay bounded whatever a client sends (measured by
    allocation, never by time)."""
    fp.Counter("c", "C", registry=registry).inc()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        exposition.negotiate_format(header)
        exposition.accepts_gzip(header)
        exposition.choose_encoder(header)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak
    out = negotiate(registry, header, header)
    assert out.body.startswith(b"# HELP c_total")


def test_only_the_first_media_ranges_count():
    late_om = ",".join(["text/html"] * exposition.MAX_MEDIA_RANGES) + ",application/openmetrics-text"
    assert not exposition.choose_format(late_om)
    early_om = ",".join(["text/html"] * (exposition.MAX_MEDIA_RANGES - 1)) + ",application/openmetrics-text"
    assert exposition.choose_format(early_om)
    # What Prometheus sends is read in full.
    prom = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
            "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
            "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
    assert exposition.choose_format(prom)


def test_a_huge_accept_header_through_a_real_server_gets_a_normal_scrape():
    with uvicorn_server() as base:
        port = int(base.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics", headers={"Accept": ",".join(["text/plain;q=0.5"] * 3000),
                                                 "Accept-Encoding": "gzip;q=0," * 3000})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
    assert resp.status == 200 and resp.getheader("Content-Encoding") is None
    assert resp.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    assert b"# TYPE http_requests_total counter" in body or b"# HELP" in body


@pytest.mark.parametrize("version", ["1\n.0.0", "1.0.0\r\nX-Injected: 1", "1\t.0.0", "1..0", "١.0.0"])
def test_a_version_that_is_not_dotted_digits_never_reaches_the_content_type(version: str) -> None:
    """A version parameter is echoed in the response's Content-Type only when it
    is plain dotted digits: int() would read "1\\n" as 1, and the newline would
    split the response header."""
    for kind in ("application/openmetrics-text", "text/plain"):
        _, ctype = exposition.choose_encoder(f"{kind};version={version}")
        assert version not in ctype and not any(c in ctype for c in "\r\n")
        assert ctype == exposition.CONTENT_TYPE_PLAIN_0_0_4
