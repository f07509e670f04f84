"""``Instrumentator(metric_names="otel")`` served by a real uvicorn: the
OpenTelemetry HTTP server metrics, their labels and buckets, and the uptime gauge."""
import time

import httpx
import pytest

import fastprom
from fastprom.asgi.otel import DURATION_BUCKETS
from servers import uvicorn_server
from test_instrumentator import get, scrape

DURATION = "http_server_request_duration_seconds"


@pytest.fixture(scope="module")
def server():
    with uvicorn_server(opts={"metric_names": "otel", "should_instrument_uptime": True}) as base:
        yield base


def labels(method, route, status, error_type="", scheme="http"):
    out = {"http_request_method": method, "http_route": route, "http_response_status_code": str(status),
           "url_scheme": scheme}
    if error_type:
        out["error_type"] = error_type
    return out


def test_otel_names_labels_and_buckets(server):
    with httpx.Client(base_url=server) as c:
        for i in range(3):
            assert c.get(f"/items/{i}").status_code == 200
        assert c.get("/status/503").status_code == 503
        assert c.get("/status/404").status_code == 404
        assert c.request("PROPFIND", "/items/1").status_code == 405
        assert c.get("/no/such/route").status_code == 404
        assert c.post("/echo", content=b'{"a": "0123456789"}',
                      headers={"content-type": "application/json"}).status_code == 200
    # The server closes the connection of a request whose handler raised.
    assert httpx.get(server + "/error").status_code == 500
    s = scrape(server)
    # Prometheus stores an empty label value as no label; the parser keeps it.
    def count(*a, **kw):
        lab = labels(*a, **kw)
        lab.setdefault("error_type", "")
        return get(s, DURATION + "_count", **lab)

    assert count("GET", "/items/{item_id}", 200) == 3
    assert count("GET", "/status/{code}", 503, error_type="503") == 1
    assert count("GET", "/status/{code}", 404) == 1
    assert count("GET", "/error", 500, error_type="RuntimeError") == 1
    assert count("_OTHER", "/items/{item_id}", 405) == 1
    assert count("GET", "none", 404) == 1
    assert count("POST", "/echo", 200) == 1
    # The semantic conventions' bucket bounds.
    bounds = sorted({float(dict(k[1])["le"]) for k in s if k[0] == DURATION + "_bucket"})
    assert bounds == sorted(DURATION_BUCKETS) + [float("inf")]
    # Body sizes: the request's Content-Length, the response's.
    lab = dict(labels("POST", "/echo", 200), error_type="")
    assert get(s, "http_server_request_body_size_bytes_sum", **lab) == 19
    assert get(s, "http_server_response_body_size_bytes_sum", **lab) == len(b'{"a":"0123456789"}')
    assert get(s, "http_server_request_body_size_bytes_count", **lab) == 1
    # Nothing in flight but the scrape itself, which is active while rendered.
    active = {k: v for k, v in s.items() if k[0] == "http_server_active_requests"}
    assert active.get(("http_server_active_requests", (("http_request_method", "GET"), ("url_scheme", "http")))) \
        == 1.0, active
    # No default-named metric is recorded.
    assert not any(k[0].startswith("http_requests_total") for k in s)
    assert not any(k[0].startswith("http_request_duration_seconds") for k in s)


def test_uptime_is_computed_at_scrape(server):
    first = get(scrape(server), "process_uptime_seconds")
    assert first is not None and first >= 0
    time.sleep(1.1)
    assert get(scrape(server), "process_uptime_seconds") > first


def test_bad_metric_names_is_refused():
    with pytest.raises(ValueError, match="metric_names must be one of"):
        fastprom.Instrumentator(metric_names="open-telemetry")


def test_otel_names_and_uptime_across_two_workers(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    opts = {"metric_names": "otel", "should_instrument_uptime": True}
    with uvicorn_server(workers=2, env=env, opts=opts) as base:
        pids = set()
        for _ in range(40):
            with httpx.Client(base_url=base) as c:  # a new connection each time, to reach both workers
                r = c.get("/pid")
                assert r.status_code == 200
                pids.add(r.json()["pid"])
        s = scrape(base)
        lab = dict(labels("GET", "/pid", 200), error_type="")
        assert get(s, DURATION + "_count", **lab) == 40
        assert get(s, "http_server_active_requests", http_request_method="GET", url_scheme="http") == 1.0
        uptime = [v for k, v in s.items() if k[0] == "process_uptime_seconds"]
        assert uptime and all(v >= 0 for v in uptime), uptime
    assert len(pids) >= 1
