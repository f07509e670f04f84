"""Serving metrics over HTTP and pushing them, against real servers: the
threaded server (plain, TLS, client certificates), MetricsHandler under
http.server, make_wsgi_app under wsgiref, make_asgi_app under uvicorn
(mounted in FastAPI), and Debian's prometheus-pushgateway.

Bodies are checked through prometheus_client's parsers, not byte for byte:
value formatting is the renderer's business (tests/test_exposition.py)."""
import contextlib
import gzip
import http.client
import inspect
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from wsgiref.simple_server import WSGIRequestHandler, make_server

import prometheus_client
import prometheus_client.exposition as pc_exposition
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

import fastprom
from fastprom import exposition
from fastprom.bridge import registry_for

from conftest import need_tool
from exporter_helpers import issue
from servers import free_port, stop, uvicorn_server, wait_for

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# What Prometheus 2.x/3.x sends when scraping.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


# --- helpers -----------------------------------------------------------------

def _get(url, headers=None, context=None, method="GET"):
    """(status, headers, body) of one request; an HTTP error status is an answer too."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def _samples(body, openmetrics=False):
    """{(sample name, sorted labels): value}; ``le`` and ``quantile`` read as floats."""
    parse = parse_om if openmetrics else parse_text
    out = {}
    for family in parse(body.decode()):
        for s in family.samples:
            labels = tuple(sorted((k, float(v) if k in ("le", "quantile") else v) for k, v in s.labels.items()))
            key = (s.name, labels)
            assert key not in out, f"sample {key} appears twice"
            out[key] = s.value
    return out


def _family_names(body):
    names = [f.name for f in parse_text(body.decode())]
    assert len(names) == len(set(names)), f"a family appears twice: {names}"
    return set(names)


@pytest.fixture
def populated(registry):
    """A fresh registry with a labelled counter, a gauge and a histogram."""
    jobs = fastprom.Counter("jobs", "Jobs run.", ["queue"], registry=registry)
    jobs.labels("fast").inc(3)
    jobs.labels("slow").inc()
    fastprom.Gauge("temperature_celsius", "Temperature.", registry=registry).set(21.5)
    latency = fastprom.Histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)
    for v in (0.05, 0.5, 2.0):
        latency.observe(v)
    return registry


EXPECTED = {
    ("jobs_total", (("queue", "fast"),)): 3.0,
    ("jobs_total", (("queue", "slow"),)): 1.0,
    ("temperature_celsius", ()): 21.5,
    ("latency_seconds_bucket", (("le", 0.1),)): 1.0,
    ("latency_seconds_bucket", (("le", 1.0),)): 2.0,
    ("latency_seconds_bucket", (("le", float("inf")),)): 3.0,
    ("latency_seconds_count", ()): 3.0,
    ("latency_seconds_sum", ()): 2.55,
}


def _assert_expected(got, expected=EXPECTED):
    for key, value in expected.items():
        assert key in got, f"{key} missing from {sorted(got)}"
        assert got[key] == pytest.approx(value), key


@contextlib.contextmanager
def _http_server(registry, **kwargs):
    """fastprom.start_http_server on 127.0.0.1 and a free port; yields the port."""
    port = free_port()
    server, thread = fastprom.start_http_server(port, "127.0.0.1", registry=registry, **kwargs)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def _in_thread(server):
    """Runs a socketserver in a thread; shuts it down and closes it afterwards."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# --- start_http_server -------------------------------------------------------

def test_start_http_server_serves_the_registry(populated):
    port = free_port()
    server, thread = fastprom.start_http_server(port, "127.0.0.1", registry=populated)
    try:
        assert thread.daemon and thread.is_alive()
        assert server.server_address[1] == port
        for path in ("/metrics", "/", "/anything"):
            status, headers, body = _get(f"http://127.0.0.1:{port}{path}")
            assert status == 200
            assert headers["Content-Type"] == exposition.choose_encoder(None)[1]
            assert headers.get("Content-Encoding") is None
            _assert_expected(_samples(body))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert not thread.is_alive()
    assert fastprom.start_http_server is fastprom.start_wsgi_server


@pytest.mark.parametrize("accept, openmetrics", [
    (OPENMETRICS, True),
    ("application/openmetrics-text", True),
    (PROMETHEUS_ACCEPT, True),
    ("text/plain; version=0.0.4", False),
    ("text/html,*/*;q=0.8", False),
])
def test_accept_header_chooses_the_format(populated, accept, openmetrics):
    with _http_server(populated) as port:
        status, headers, body = _get(f"http://127.0.0.1:{port}/metrics", {"Accept": accept})
    assert status == 200
    assert headers["Content-Type"] == exposition.choose_encoder(accept)[1]
    assert headers["Content-Type"].startswith("application/openmetrics-text" if openmetrics else "text/plain")
    assert body.endswith(b"# EOF\n") == openmetrics
    _assert_expected(_samples(body, openmetrics))


def test_gzip_when_accepted(populated):
    with _http_server(populated) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        status, headers, body = _get(url, {"Accept-Encoding": "gzip, deflate"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        _assert_expected(_samples(gzip.decompress(body)))
        status, headers, body = _get(url, {"Accept-Encoding": "gzip", "Accept": OPENMETRICS})
        assert headers["Content-Encoding"] == "gzip"
        _assert_expected(_samples(gzip.decompress(body), openmetrics=True))
        status, headers, body = _get(url, {"Accept-Encoding": "identity"})
        assert headers.get("Content-Encoding") is None
        _assert_expected(_samples(body))


def test_name_parameters_restrict_the_output(populated):
    with _http_server(populated) as port:
        url = f"http://127.0.0.1:{port}/metrics?name[]=jobs_total&name[]=latency_seconds_count"
        _, _, text = _get(url)
        _, headers, zipped = _get(url, {"Accept-Encoding": "gzip"})
        # (A histogram cut down to some of its samples is not valid OpenMetrics.)
        _, _, om = _get(f"http://127.0.0.1:{port}/?name[]=jobs_total&name[]=temperature_celsius",
                        {"Accept": OPENMETRICS})
        _, _, nothing = _get(f"http://127.0.0.1:{port}/metrics?name[]=no_such_sample", {"Accept": OPENMETRICS})
    wanted = {k: v for k, v in EXPECTED.items() if k[0] in ("jobs_total", "latency_seconds_count")}
    assert _samples(text) == wanted
    assert headers["Content-Encoding"] == "gzip" and _samples(gzip.decompress(zipped)) == wanted
    assert _samples(om, openmetrics=True) == {k: v for k, v in EXPECTED.items()
                                              if k[0] in ("jobs_total", "temperature_celsius")}
    assert _samples(nothing, openmetrics=True) == {}


def test_options_head_other_methods_and_favicon(populated):
    with _http_server(populated) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        status, headers, body = _get(url, method="OPTIONS")
        assert (status, headers["Allow"], body) == (200, "OPTIONS,GET", b"")
        for method in ("HEAD", "POST", "DELETE"):
            status, headers, body = _get(url, method=method)
            assert (status, headers["Allow"]) == (405, "OPTIONS,GET")
            assert b"jobs_total" not in body
        status, headers, body = _get(f"http://127.0.0.1:{port}/favicon.ico")
        assert (status, body) == (200, b"")
        # Still serving after all that.
        _assert_expected(_samples(_get(url)[2]))


# --- TLS ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA; a server certificate for 127.0.0.1 and localhost and a client
    certificate, both signed by it; and a self-signed certificate nobody trusts."""
    directory = tmp_path_factory.mktemp("pki")
    paths = {}
    for stem, issuer, usage in (("ca", False, None), ("server", True, "serverAuth"),
                                ("client", True, "clientAuth"), ("rogue", False, None)):
        paths[stem], paths[stem + "_key"] = issue(directory, stem, (paths["ca"], paths["ca_key"]) if issuer else None,
                                                  usage)
    return types.SimpleNamespace(**paths)


def _client_context(pki, cert=None, maximum=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca)
    if cert:
        context.load_cert_chain(getattr(pki, cert), getattr(pki, cert + "_key"))
    if maximum:
        context.maximum_version = maximum
    return context


def test_tls(populated, pki):
    with _http_server(populated, certfile=pki.server, keyfile=pki.server_key) as port:
        status, headers, body = _get(f"https://127.0.0.1:{port}/metrics", {"Accept-Encoding": "gzip"},
                                     context=_client_context(pki))
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        _assert_expected(_samples(gzip.decompress(body)))
        # A client that connects and says nothing holds up only itself.
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            _, _, body = _get(f"https://localhost:{port}/metrics", context=_client_context(pki))
            _assert_expected(_samples(body))
        # A client that does not trust the certificate refuses it.
        with pytest.raises(urllib.error.URLError) as excinfo:
            _get(f"https://127.0.0.1:{port}/metrics", context=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        assert isinstance(excinfo.value.reason, ssl.SSLCertVerificationError)
        # Plain HTTP gets no metrics.
        with pytest.raises((OSError, http.client.HTTPException)):
            _get(f"http://127.0.0.1:{port}/metrics")
        _assert_expected(_samples(_get(f"https://127.0.0.1:{port}/", context=_client_context(pki))[2]))


def test_tls_client_certificate_required(populated, pki):
    with _http_server(populated, certfile=pki.server, keyfile=pki.server_key, client_cafile=pki.ca,
                      client_auth_required=True) as port:
        url = f"https://127.0.0.1:{port}/metrics"
        status, _, body = _get(url, context=_client_context(pki, "client"))
        assert status == 200
        _assert_expected(_samples(body))
        for cert in (None, "rogue"):
            with pytest.raises(OSError):
                _get(url, context=_client_context(pki, cert))
        assert _get(url, context=_client_context(pki, "client"))[0] == 200


def test_tls_minimum_version(populated, pki):
    with _http_server(populated, certfile=pki.server, keyfile=pki.server_key,
                      tls_min_version=ssl.TLSVersion.TLSv1_3) as port:
        url = f"https://127.0.0.1:{port}/metrics"
        with pytest.raises(OSError):
            _get(url, context=_client_context(pki, maximum=ssl.TLSVersion.TLSv1_2))
        assert _get(url, context=_client_context(pki))[0] == 200


def test_tls_bad_certificate_fails_before_binding(populated, pki, tmp_path):
    port = free_port()
    with pytest.raises(OSError, match="server certificate"):
        fastprom.start_http_server(port, "127.0.0.1", registry=populated, certfile=str(tmp_path / "none.pem"),
                                   keyfile=pki.server_key)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # still free


# --- MetricsHandler, make_wsgi_app, write_to_textfile --------------------------

def test_metrics_handler_under_http_server(populated):
    handler = fastprom.MetricsHandler.factory(populated)
    assert issubclass(handler, fastprom.MetricsHandler) and handler.registry is populated
    assert fastprom.MetricsHandler.registry is fastprom.REGISTRY
    subclass = type("Mine", (fastprom.MetricsHandler,), {})
    assert issubclass(subclass.factory(populated), subclass)
    with _in_thread(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        status, headers, body = _get(url)
        assert status == 200 and headers["Content-Type"] == exposition.choose_encoder(None)[1]
        assert int(headers["Content-Length"]) == len(body)
        _assert_expected(_samples(body))
        _, headers, body = _get(url + "?name[]=temperature_celsius", {"Accept": OPENMETRICS,
                                                                      "Accept-Encoding": "gzip"})
        assert headers["Content-Encoding"] == "gzip"
        assert _samples(gzip.decompress(body), openmetrics=True) == {("temperature_celsius", ()): 21.5}


class _QuietWSGIHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def test_wsgi_app_under_wsgiref(populated):
    app = fastprom.make_wsgi_app(populated, disable_compression=True)
    with _in_thread(make_server("127.0.0.1", free_port(), app, handler_class=_QuietWSGIHandler)) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        status, headers, body = _get(url, {"Accept-Encoding": "gzip"})
        assert status == 200 and headers.get("Content-Encoding") is None
        _assert_expected(_samples(body))
        _, headers, body = _get(url + "?name[]=jobs_total", {"Accept": PROMETHEUS_ACCEPT})
        assert headers["Content-Type"].startswith("application/openmetrics-text")
        assert set(_samples(body, openmetrics=True)) == {k for k in EXPECTED if k[0] == "jobs_total"}
        assert _get(url, method="OPTIONS")[:1] == (200,)
        assert _get(url, method="PUT")[0] == 405


def test_prometheus_client_registry_is_served_and_pushed(tmp_path):
    pc = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("pc_side", "Counted by prometheus_client.", registry=pc).inc(4)
    fastprom.Gauge("fp_side", "Set by fastprom.", registry=registry_for(pc)).set(9)
    expected = {("pc_side_total", ()): 4.0, ("fp_side", ()): 9.0}
    with _http_server(pc) as port:
        _, _, body = _get(f"http://127.0.0.1:{port}/metrics")
        _assert_expected(_samples(body), expected)
        _, _, body = _get(f"http://127.0.0.1:{port}/metrics?name[]=fp_side", {"Accept": OPENMETRICS})
        assert _samples(body, openmetrics=True) == {("fp_side", ()): 9.0}
    fastprom.write_to_textfile(str(tmp_path / "pc.prom"), pc)
    _assert_expected(_samples((tmp_path / "pc.prom").read_bytes()), expected)
    # prometheus_client itself still sees both, once.
    _assert_expected(_samples(prometheus_client.generate_latest(pc)), expected)


class _Custom:
    """A collector, passed where a registry is expected."""

    def collect(self):
        a = fastprom.GaugeMetricFamily("custom_a", "A.", labels=["x"])
        a.add_metric(["1"], 5)
        yield a
        yield fastprom.CounterMetricFamily("custom_b", "B.", value=2)


def test_any_collector_as_registry():
    with _http_server(_Custom()) as port:
        _, _, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert _samples(body) == {("custom_a", (("x", "1"),)): 5.0, ("custom_b_total", ()): 2.0}
        _, _, body = _get(f"http://127.0.0.1:{port}/metrics?name[]=custom_b_total", {"Accept": OPENMETRICS})
        assert _samples(body, openmetrics=True) == {("custom_b_total", ()): 2.0}


def test_write_to_textfile(populated, tmp_path):
    path = tmp_path / "out" / "metrics.prom"
    path.parent.mkdir()
    path.write_text("old contents")
    fastprom.write_to_textfile(str(path), populated)
    _assert_expected(_samples(path.read_bytes()))
    staging = tmp_path / "staging"
    staging.mkdir()
    fastprom.write_to_textfile(str(path), populated, escaping="allow-utf-8", tmpdir=str(staging))
    _assert_expected(_samples(path.read_bytes()))
    assert os.listdir(path.parent) == ["metrics.prom"] and os.listdir(staging) == []
    # A failed write leaves no temporary file behind.
    with pytest.raises(OSError):
        fastprom.write_to_textfile(str(tmp_path / "missing" / "m.prom"), populated, tmpdir=str(staging))
    assert os.listdir(staging) == []


# --- make_asgi_app under uvicorn ---------------------------------------------

def test_asgi_app_mounted_in_fastapi():
    with uvicorn_server(app="metrics_mount:create_app") as base:
        for kind in ("a", "a", "b"):
            assert _get(f"{base}/work/{kind}")[0] == 200
        expected = {("work_done_total", (("kind", "a"),)): 2.0, ("work_done_total", (("kind", "b"),)): 1.0,
                    ("queue_length", ()): 7.0, ("pc_events_total", ()): 3.0}
        for path in ("/metrics", "/metrics/"):  # Starlette redirects /metrics to /metrics/
            status, headers, body = _get(base + path)
            assert status == 200 and headers["Content-Type"] == exposition.choose_encoder(None)[1]
            _assert_expected(_samples(body), expected)
            assert "process_cpu_seconds" in _family_names(body)  # the default collectors, once
        _, headers, body = _get(f"{base}/metrics/", {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        assert headers["Content-Type"] == exposition.choose_encoder(PROMETHEUS_ACCEPT)[1]
        assert headers["Content-Encoding"] == "gzip"
        _assert_expected(_samples(gzip.decompress(body), openmetrics=True), expected)
        _, _, body = _get(f"{base}/metrics/?name[]=work_done_total&name[]=pc_events_total")
        assert _samples(body) == {k: v for k, v in expected.items() if k[0] != "queue_length"}
        assert base.proc.poll() is None


def test_asgi_app_alone_with_lifespan():
    with uvicorn_server(app="metrics_mount:bare_app", extra_args=("--lifespan", "on")) as base:
        status, headers, body = _get(f"{base}/", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers.get("Content-Encoding") is None  # disable_compression=True
        _assert_expected(_samples(body), {("work_done_total", (("kind", "bare"),)): 2.0})
        # A WebSocket is refused (403), and the server carries on.
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect
        with pytest.raises(InvalidStatus) as excinfo:
            connect(base.replace("http://", "ws://") + "/", open_timeout=10).close()
        assert excinfo.value.response.status_code == 403
        assert _get(f"{base}/")[0] == 200
        proc = base.proc
    assert proc.returncode is not None
    log = proc.stdout.read().decode(errors="replace")
    assert "Traceback" not in log and "error" not in log.lower(), log


# --- the Pushgateway ---------------------------------------------------------

@pytest.fixture(scope="module")
def pushgateway():
    """Debian's prometheus-pushgateway on 127.0.0.1 and a free port, keeping
    nothing on disk; yields its base URL."""
    binary = need_tool("prometheus-pushgateway")
    port = free_port()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=",
                             "--log.level=warn"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(port, proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        for _ in range(300):
            try:
                if _get(f"{base}/-/ready")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the pushgateway did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        stop(proc)


def _group(gateway, job, grouping_key=None):
    """The samples the gateway exposes for one group, without the group's
    labels (nor empty ones, such as the ``instance`` it adds) and without
    its own push_time_seconds/push_failure_time_seconds series."""
    _, _, body = _get(f"{gateway}/metrics")
    group = dict(grouping_key or {}, job=job)
    out = {}
    for family in parse_text(body.decode()):
        for s in family.samples:
            labels = dict(s.labels)
            if s.name.startswith(("push_time_seconds", "push_failure_time_seconds")):
                continue
            # An empty label is an absent one.
            if any(labels.pop(k, "") != v for k, v in group.items()):
                continue
            rest = tuple(sorted((k, float(v) if k == "le" else v) for k, v in labels.items() if v != ""))
            out[(s.name, rest)] = s.value
    return out


def test_push_pushadd_delete(pushgateway, registry):
    items = fastprom.Counter("batch_items", "Items processed.", ["stage"], registry=registry)
    items.labels("load").inc(5)
    items.labels("save").inc(2)
    fastprom.Gauge("batch_last_success", "When the batch last succeeded.", registry=registry).set(1700000000)
    key = {"instance": "host-1/worker 2", "shard": "3"}  # "/" and " " go base64-encoded
    fastprom.push_to_gateway(pushgateway, job="nightly", registry=registry, grouping_key=key)
    got = _group(pushgateway, "nightly", key)
    _assert_expected(got, {("batch_items_total", (("stage", "load"),)): 5.0,
                           ("batch_items_total", (("stage", "save"),)): 2.0,
                           ("batch_last_success", ()): 1700000000.0})

    # pushadd (POST) replaces only the metrics it sends.
    other = fastprom.CollectorRegistry()
    rows = fastprom.Gauge("batch_rows", "Rows written.", registry=other)
    rows.set(42)
    fastprom.pushadd_to_gateway(f"127.0.0.1:{pushgateway.rsplit(':', 1)[1]}/", "nightly", other, grouping_key=key)
    got = _group(pushgateway, "nightly", key)
    assert got[("batch_rows", ())] == 42.0 and got[("batch_items_total", (("stage", "load"),))] == 5.0
    items.labels("load").inc(10)
    fastprom.pushadd_to_gateway(pushgateway, "nightly", registry, grouping_key=key, compression="gzip")
    got = _group(pushgateway, "nightly", key)
    assert got[("batch_items_total", (("stage", "load"),))] == 15.0 and got[("batch_rows", ())] == 42.0

    # push (PUT) replaces the whole group.
    rows.set(43)
    fastprom.push_to_gateway(pushgateway, "nightly", other, grouping_key=key, timeout=5)
    got = _group(pushgateway, "nightly", key)
    assert got == {("batch_rows", ()): 43.0}

    fastprom.delete_from_gateway(pushgateway, "nightly", grouping_key=key)
    assert _group(pushgateway, "nightly", key) == {}


def test_push_job_and_values_needing_base64(pushgateway, registry):
    fastprom.Histogram("etl_seconds", "ETL duration.", buckets=(1.0,), registry=registry).observe(0.5)
    key = {"path": "/var/data", "empty": ""}
    fastprom.push_to_gateway(pushgateway, "etl/daily", registry, grouping_key=key)
    got = _group(pushgateway, "etl/daily", key)
    _assert_expected(got, {("etl_seconds_bucket", (("le", 1.0),)): 1.0, ("etl_seconds_count", ()): 1.0,
                           ("etl_seconds_sum", ()): 0.5})
    fastprom.delete_from_gateway(pushgateway, "etl/daily", grouping_key=key)
    assert _group(pushgateway, "etl/daily", key) == {}


def test_pushadd_none_pushes_the_default_registry(pushgateway):
    gauge = fastprom.Gauge("fastprom_test_default_push", "Pushed from the default registry.")
    try:
        gauge.set(5)
        fastprom.pushadd_to_gateway(pushgateway, "default-registry", None)
        assert _group(pushgateway, "default-registry")[("fastprom_test_default_push", ())] == 5.0
        fastprom.delete_from_gateway(pushgateway, "default-registry")
        assert _group(pushgateway, "default-registry") == {}
    finally:
        fastprom.REGISTRY.unregister(gauge)


# --- push handlers, against a recording server --------------------------------

@contextlib.contextmanager
def _recorder(redirect=None):
    """A real HTTP server recording (method, path, headers, body) of every
    request and answering 202, or ``redirect`` = (status, location)."""
    seen = []

    class Recording(BaseHTTPRequestHandler):
        def do_PUT(self):
            length = int(self.headers.get("Content-Length") or 0)
            seen.append((self.command, self.path, self.headers, self.rfile.read(length)))
            if redirect:
                self.send_response(redirect[0])
                self.send_header("Location", redirect[1])
            else:
                self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_DELETE = do_PUT

        def log_message(self, format, *args):
            pass

    with _in_thread(ThreadingHTTPServer(("127.0.0.1", 0), Recording)) as port:
        yield f"http://127.0.0.1:{port}", seen


def test_handlers(registry):
    fastprom.Gauge("g", "A gauge.", registry=registry).set(2)
    with _recorder() as (url, seen):
        calls = []

        def wrapping(url, method, timeout, headers, data):
            calls.append((url, method, timeout, list(headers), data))
            return fastprom.basic_auth_handler(url, method, timeout, headers, data, "foo", "bar")

        fastprom.push_to_gateway(url, "with_auth", registry, {"a": 9}, timeout=7, handler=wrapping)
        method, path, headers, body = seen[-1]
        assert (method, path) == ("PUT", "/metrics/job/with_auth/a/9")
        assert headers["Authorization"] == "Basic Zm9vOmJhcg=="
        assert headers["Content-Type"] == fastprom.CONTENT_TYPE_PLAIN_0_0_4
        assert _samples(body) == {("g", ()): 2.0}
        assert calls[0][:3] == (url + "/metrics/job/with_auth/a/9", "PUT", 7)
        assert calls[0][3] == [("Content-Type", fastprom.CONTENT_TYPE_PLAIN_0_0_4)] and calls[0][4] == body

        fastprom.delete_from_gateway(url, "gone", {"b": "x y"})
        method, path, headers, body = seen[-1]
        assert (method, path, body) == ("DELETE", "/metrics/job/gone/b@base64/eCB5", b"")
        assert headers["Content-Type"] == fastprom.CONTENT_TYPE_PLAIN_0_0_4

        fastprom.pushadd_to_gateway(url, "zipped", registry, compression="gzip")
        method, path, headers, body = seen[-1]
        assert (method, headers["Content-Encoding"]) == ("POST", "gzip")
        assert _samples(gzip.decompress(body)) == {("g", ()): 2.0}

        before = len(seen)
        with pytest.raises(ValueError, match="Unsupported compression type"):
            fastprom.push_to_gateway(url, "nope", registry, compression="brotli")
        assert len(seen) == before


@pytest.mark.parametrize("code", [301, 307, 308])
def test_passthrough_redirect_handler(registry, code):
    fastprom.Gauge("g", "A gauge.", registry=registry).set(3)
    with _recorder() as (target, landed), _recorder((code, target + "/moved")) as (origin, asked):
        fastprom.push_to_gateway(origin, "j", registry, handler=fastprom.passthrough_redirect_handler)
        assert [(m, p) for m, p, _, _ in asked] == [("PUT", "/metrics/job/j")]
        assert [(m, p) for m, p, _, _ in landed] == [("PUT", "/moved")]
        assert landed[0][3] == asked[0][3] and _samples(landed[0][3]) == {("g", ()): 3.0}
        assert landed[0][2]["Content-Type"] == fastprom.CONTENT_TYPE_PLAIN_0_0_4
        # Without it, urllib does not repeat a PUT elsewhere.
        with pytest.raises(urllib.error.HTTPError):
            fastprom.push_to_gateway(origin, "j", registry)
        assert len(landed) == 1


def test_instance_ip_grouping_key():
    key = fastprom.instance_ip_grouping_key()
    assert list(key) == ["instance"]
    ipaddress.ip_address(key["instance"])


# --- the API's shape -----------------------------------------------------------

NAMES = ["CONTENT_TYPE_PLAIN_0_0_4", "CONTENT_TYPE_PLAIN_1_0_0", "make_wsgi_app", "make_asgi_app", "MetricsHandler",
         "start_http_server", "start_wsgi_server", "push_to_gateway", "pushadd_to_gateway", "delete_from_gateway",
         "instance_ip_grouping_key", "default_handler", "basic_auth_handler", "tls_auth_handler",
         "passthrough_redirect_handler", "write_to_textfile"]


@pytest.mark.parametrize("name", NAMES)
def test_same_names_signatures_and_defaults_as_prometheus_client(name):
    ours, theirs = getattr(exposition, name), getattr(pc_exposition, name)
    assert getattr(fastprom, name) is ours and name in fastprom.__all__
    if isinstance(theirs, str):
        assert ours == theirs
        return
    if isinstance(theirs, type):
        assert issubclass(ours, BaseHTTPRequestHandler) and callable(ours.factory)
        return
    assert callable(ours) and ours.__doc__
    mine, pcs = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    if name in ("start_http_server", "start_wsgi_server"):
        # An extra keyword-only argument after prometheus_client's: basic auth and TLS from a web config file.
        assert mine["web_config_file"].kind is inspect.Parameter.KEYWORD_ONLY
        mine = {k: v for k, v in mine.items() if k != "web_config_file"}
    assert list(mine) == list(pcs)
    for p, q in zip(mine.values(), pcs.values()):
        if q.default is inspect.Parameter.empty:
            if p.default is not inspect.Parameter.empty:
                # Only write_to_textfile's registry keeps fastprom's old default.
                assert (name, p.name, p.default) == ("write_to_textfile", "registry", fastprom.REGISTRY)
        elif q.default is prometheus_client.REGISTRY:
            assert p.default is fastprom.REGISTRY
        elif callable(q.default):
            assert p.default.__name__ == q.default.__name__
        else:
            assert p.default == q.default, p.name


def test_import_paths():
    import fastprom.asgi
    import prometheus_client.asgi
    assert prometheus_client.asgi.make_asgi_app and fastprom.asgi.make_asgi_app is fastprom.make_asgi_app
    assert issubclass(exposition.ThreadingWSGIServer, pc_exposition.WSGIServer)


def test_import_starts_nothing():
    code = ("import threading, fastprom, fastprom.exposition\n"
            "assert threading.active_count() == 1, threading.enumerate()\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
