"""The Instrumentator served by a real uvicorn on 127.0.0.1: exact counts,
labels and buckets read back from /metrics."""
import gzip
import socket
import threading
import time

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from servers import uvicorn_server

# A versioned OpenMetrics request is answered with its version and escaping scheme.
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


def scrape(base, accept=None):
    r = httpx.get(base + "/metrics", headers={"accept": accept} if accept else {})
    assert r.status_code == 200
    parse = parse_om if "openmetrics" in r.headers["content-type"] else parse_text
    out = {}
    for fam in parse(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples, handler, status, method="GET"):
    return get(samples, "http_requests_total", handler=handler, method=method, status=status)


@pytest.fixture(scope="module")
def server():
    with uvicorn_server(opts={"excluded_handlers": ["^/excluded"]}) as base:
        yield base


def test_templates_statuses_and_sizes(server):
    c = httpx.Client(base_url=server)
    for i in range(3):
        c.get(f"/items/{i}")
    c.get("/items/not-an-int")                 # 422 from validation
    c.get("/status/404")
    c.get("/status/503")
    c.get("/no/such/route")
    c.get("/items/5/")                         # slash redirect: no route matched
    c.get("/api/v1/inner/things/abc")          # router included in a router
    c.get("/sub/deep/x")                       # mounted FastAPI app
    c.get("/st/acme/p/1")                      # mounted Starlette app with a parameter
    c.get("/excluded/health")
    c.post("/echo", content=b'{"a": "0123456789"}', headers={"content-type": "application/json"})
    s = scrape(server)
    assert total(s, "/items/{item_id}", "2xx") == 3
    assert total(s, "/items/{item_id}", "4xx") == 1
    assert total(s, "/status/{code}", "4xx") == 1
    assert total(s, "/status/{code}", "5xx") == 1
    assert total(s, "none", "4xx") >= 1 and total(s, "none", "3xx") == 1
    assert total(s, "/api/v1/inner/things/{thing_id}", "2xx") == 1
    assert total(s, "/sub/deep/{d}", "2xx") == 1
    assert total(s, "/st/{tenant}/p/{q}", "2xx") == 1
    assert total(s, "/echo", "2xx", method="POST") == 1
    assert not any("excluded" in str(k) for k in s)
    assert not any(dict(k[1]).get("handler", "").startswith("/items/5") for k in s)
    # Summaries of Content-Length, by handler.
    assert get(s, "http_request_size_bytes_count", handler="/echo") == 1
    assert get(s, "http_request_size_bytes_sum", handler="/echo") == 19
    assert get(s, "http_response_size_bytes_sum", handler="/echo") == len(b'{"a":"0123456789"}')
    # Histograms: the low-resolution one by handler and method, the other unlabelled.
    assert get(s, "http_request_duration_seconds_count", handler="/items/{item_id}", method="GET") == 4
    assert get(s, "http_request_duration_seconds_bucket", handler="/items/{item_id}", method="GET",
               le="+Inf") == 4
    highr = {dict(k[1])["le"]: v for k, v in s.items() if k[0] == "http_request_duration_highr_seconds_bucket"}
    assert len(highr) == 22 and highr["+Inf"] == get(s, "http_request_duration_highr_seconds_count")
    lowr = sorted(dict(k[1])["le"] for k, v in s.items() if k[0] == "http_request_duration_seconds_bucket"
                  and dict(k[1])["handler"] == "/echo")
    assert lowr == ["+Inf", "0.1", "0.5", "1.0"]


def test_exception_in_handler_is_a_5xx_and_propagates(server):
    before = total(scrape(server), "/error", "5xx") or 0
    r = httpx.get(server + "/error")
    assert r.status_code == 500
    assert total(scrape(server), "/error", "5xx") == before + 1


def test_streaming_response_is_timed_to_its_last_chunk(server):
    r = httpx.get(server + "/stream", params={"delay": 0.25, "chunks": 3})
    assert len(r.content) == 300
    s = scrape(server)
    b = lambda le: get(s, "http_request_duration_seconds_bucket", handler="/stream", method="GET", le=le)
    assert (b("0.5"), b("1.0"), b("+Inf")) == (0, 1, 1)


def test_streaming_duration_can_be_excluded():
    # The body takes at least 3 s (three 1 s sleeps); the time to the response's
    # start is what is recorded, and it is far below that even on a loaded machine.
    with uvicorn_server(opts={"should_exclude_streaming_duration": True}) as base:
        r = httpx.get(base + "/stream", params={"delay": 1.0, "chunks": 3}, timeout=30)
        assert len(r.content) == 300
        s = scrape(base)
        assert get(s, "http_request_duration_seconds_count", handler="/stream", method="GET") == 1
        assert get(s, "http_request_duration_seconds_sum", handler="/stream", method="GET") < 3.0


def test_websocket_passes_through_untouched(server):
    from websockets.sync.client import connect

    with connect(server.replace("http", "ws") + "/ws") as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
    s = scrape(server)
    assert not any(dict(k[1]).get("handler") == "/ws" for k in s)


def test_client_disconnect_mid_response_is_recorded(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /stream?delay=0.3&chunks=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in sock.recv(4096)
    # The app notices the disconnect on its next send; then the request is recorded.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if get(scrape(server), "http_request_duration_seconds_count", handler="/stream", method="GET") == 2:
            break
        time.sleep(0.2)
    s = scrape(server)
    assert get(s, "http_request_duration_seconds_count", handler="/stream", method="GET") == 2
    assert httpx.get(server + "/items/1").status_code == 200


def test_content_negotiation_and_types(server):
    r = httpx.get(server + "/metrics")
    assert r.headers["content-type"] == TEXT and "# EOF" not in r.text
    r = httpx.get(server + "/metrics", headers={"accept": "application/openmetrics-text;version=1.0.0,"
                                                          "text/plain;version=0.0.4;q=0.5"})
    assert r.headers["content-type"] == OM and r.text.endswith("# EOF\n")
    assert "content-encoding" not in r.headers  # should_gzip is off here
    list(parse_om(r.text))


def raw_get(base, path, headers):
    """A GET over a plain socket, so nothing decodes the body for us."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode().lower(), body


def test_gzip_when_enabled_and_accepted():
    with uvicorn_server(expose={"should_gzip": True}) as base:
        head, body = raw_get(base, "/metrics", "Accept-Encoding: gzip\r\n")
        assert "content-encoding: gzip" in head and f"content-type: {TEXT}" in head
        assert b"http_requests_total" in gzip.decompress(body)
        head, body = raw_get(base, "/metrics", "Accept-Encoding: gzip;q=0, identity\r\n")
        assert "content-encoding" not in head and b"http_requests_total" in body
    with uvicorn_server() as base:  # should_gzip off: never compressed
        head, body = raw_get(base, "/metrics", "Accept-Encoding: gzip\r\n")
        assert "content-encoding" not in head and b"http_requests_total" in body


def test_root_path_is_not_part_of_the_handler():
    with uvicorn_server(extra_args=["--root-path", "/prefix"]) as base:
        httpx.get(base + "/items/1")
        assert total(scrape(base), "/items/{item_id}", "2xx") == 1
    with uvicorn_server(opts={"should_include_root_path": True}, extra_args=["--root-path", "/prefix"]) as base:
        httpx.get(base + "/items/1")
        assert total(scrape(base), "/prefix/items/{item_id}", "2xx") == 1


def test_untemplated_can_be_ignored_or_kept():
    with uvicorn_server(opts={"should_ignore_untemplated": True}) as base:
        httpx.get(base + "/nope")
        assert not any(dict(k[1]).get("handler") in ("none", "/nope") for k in scrape(base))
    with uvicorn_server(opts={"should_group_untemplated": False, "should_group_status_codes": False}) as base:
        httpx.get(base + "/nope")
        assert total(scrape(base), "/nope", "404") == 1


def test_env_var_gating():
    with uvicorn_server(opts={"should_respect_env_var": True}) as base:
        assert httpx.get(base + "/metrics").status_code == 404
    with uvicorn_server(opts={"should_respect_env_var": True}, env={"ENABLE_METRICS": "true"}) as base:
        httpx.get(base + "/items/1")
        assert total(scrape(base), "/items/{item_id}", "2xx") == 1


def test_inprogress_gauge_counts_requests_in_flight():
    with uvicorn_server(opts={"should_instrument_requests_inprogress": True, "inprogress_labels": True}) as base:
        t = threading.Thread(target=httpx.get, args=(base + "/stream",), kwargs={"params": {"delay": 0.5}})
        t.start()
        time.sleep(0.4)
        s = scrape(base)
        t.join()
        assert get(s, "http_requests_inprogress", handler="/stream", method="GET") == 1
        assert get(scrape(base), "http_requests_inprogress", handler="/stream", method="GET") == 0


def test_prometheus_client_metrics_are_merged_both_ways(server):
    httpx.get(server + "/custom")
    s = scrape(server)
    assert get(s, "custom_events_total") >= 1       # the app's prometheus_client counter
    assert get(s, "process_cpu_seconds_total") is not None
    text = httpx.get(server + "/metrics").text
    names = [line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")]
    samples = [line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    assert len(samples) == len(set(samples)), "a sample appears twice"
    assert "python_info" in names
    # And prometheus_client's own generate_latest sees fastprom's metrics, once.
    pc_view = httpx.get(server + "/pc-view").text
    assert 'http_requests_total{handler="/custom",method="GET",status="2xx"} 1.0' in pc_view
    pc_samples = [line.rsplit(" ", 1)[0] for line in pc_view.splitlines() if line and not line.startswith("#")]
    assert len(pc_samples) == len(set(pc_samples)), "a sample appears twice in prometheus_client's output"


def test_prometheus_client_registry_argument():
    with uvicorn_server(env={"FASTPROM_TEST_REGISTRY": "pc"}) as base:
        httpx.get(base + "/items/1")
        assert total(scrape(base), "/items/{item_id}", "2xx") == 1
        pc = httpx.get(base + "/pc-registry").text
        assert 'http_requests_total{handler="/items/{item_id}",method="GET",status="2xx"} 1.0' in pc


def test_opentelemetry_trace_id_is_an_exemplar():
    with uvicorn_server(env={"FASTPROM_TEST_OTEL": "1"}) as base:
        httpx.get(base + "/items/1")
        r = httpx.get(base + "/metrics", headers={"accept": OM})
        fams = {f.name: f for f in parse_om(r.text)}
        ex = [s.exemplar for s in fams["http_request_duration_seconds"].samples
              if s.exemplar and s.labels.get("handler") == "/items/{item_id}"]
        assert len(ex) == 1 and len(ex[0].labels["trace_id"]) == 32
        assert int(ex[0].labels["trace_id"], 16) != 0


def test_plain_starlette_app():
    with uvicorn_server(app="others:starlette_app") as base:
        httpx.get(base + "/users/7")
        httpx.get(base + "/v2/users/8")
        s = scrape(base, accept=OM)
        assert total(s, "/users/{uid}", "2xx") == 1
        assert total(s, "/v2/users/{uid}", "2xx") == 1


def test_any_asgi_app_wrapped_in_the_middleware():
    with uvicorn_server(app="others:raw_app") as base:
        for path in ("/a", "/b/c"):
            assert httpx.get(base + path).status_code == 201
        s = scrape(base)
        # No router: nothing is templated, so every request is "none".
        assert total(s, "none", "2xx") == 2
        assert get(s, "http_response_size_bytes_sum", handler="none") == 4


def test_added_functions_replace_the_defaults():
    with uvicorn_server(app="others:custom_functions_app") as base:
        body = b'{"x": 1}'
        for _ in range(2):
            r = httpx.post(base + "/things/a", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 200
        s = scrape(base)
        assert get(s, "seen_by_function_total", handler="/things/{tid}", status="2xx") == 2
        assert get(s, "seen_by_async_function_total", method="POST") == 2
        assert get(s, "http_requests_total", handler="/things/{tid}", method="POST") == 2
        assert get(s, "http_request_duration_seconds_bucket", handler="/things/{tid}", method="POST",
                   status="2xx", le="2.0") == 2
        assert get(s, "http_request_size_bytes_sum", handler="/things/{tid}", method="POST", status="2xx") == 16
        assert get(s, "http_response_size_bytes_sum", handler="/things/{tid}", method="POST", status="2xx") == 14
        assert get(s, "both_bytes_sum", handler="/things/{tid}", method="POST", status="2xx") == 30
        # The default metrics are not there: add() replaced them.
        assert not any(k[0].startswith("http_request_duration_highr") for k in s)


def test_a_router_included_twice_keeps_each_prefix():
    """The same route object under two prefixes is two handlers (in-process)."""
    import asyncio

    import fastprom
    from fastapi import APIRouter, FastAPI

    router = APIRouter()

    @router.get("/x/{i}")
    async def x(i: int):
        return {"i": i}

    app = FastAPI()
    app.include_router(router, prefix="/a")
    app.include_router(router, prefix="/b")
    reg = fastprom.CollectorRegistry()
    fastprom.Instrumentator(registry=reg).instrument(app).expose(app)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for path in ("/a/x/1", "/b/x/2", "/a/x/3", "/b/x/4", "/b/x/5"):
                assert (await c.get(path)).status_code == 200

    asyncio.run(go())
    get = lambda h: reg.get_sample_value("http_requests_total", {"handler": h, "method": "GET", "status": "2xx"})
    assert (get("/a/x/{i}"), get("/b/x/{i}")) == (2, 3)


@pytest.mark.parametrize("metric_names", ["prometheus-fastapi-instrumentator", "otel"])
def test_every_build_of_the_middleware_stack_records(metric_names):
    """Starlette builds an app's middleware stack on its first request; the
    first requests of two threads (a free-threaded server's worker threads)
    may build it twice at once, and the app keeps either build.  Both
    record into the metrics instrument() made, every request counted once."""
    import asyncio

    from fastapi import FastAPI

    import fastprom

    app = FastAPI()

    @app.get("/hello")
    async def hello():
        return {"hello": True}

    registry = fastprom.CollectorRegistry()
    fastprom.Instrumentator(registry=registry, metric_names=metric_names).instrument(app)
    barrier = threading.Barrier(2)
    stacks, errors = [], []

    def build_and_serve():
        try:
            barrier.wait(timeout=30)
            stack = app.build_middleware_stack()
            stacks.append(stack)

            async def serve():
                async def receive():
                    return {"type": "http.request", "body": b"", "more_body": False}

                async def send(message):
                    pass
                for _ in range(50):
                    await stack({"type": "http", "method": "GET", "path": "/hello", "root_path": "",
                                 "headers": [], "query_string": b"", "scheme": "http",
                                 "server": ("x", 80), "client": ("127.0.0.1", 1)}, receive, send)
            asyncio.run(serve())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=build_and_serve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(stacks) == 2 and stacks[0] is not stacks[1]
    if metric_names == "otel":
        got = registry.get_sample_value("http_server_request_duration_seconds_count",
                                        {"error_type": "", "http_request_method": "GET", "http_route": "/hello",
                                         "http_response_status_code": "200", "url_scheme": "http"})
    else:
        got = registry.get_sample_value("http_requests_total", {"handler": "/hello", "method": "GET",
                                                                "status": "2xx"})
    assert got == 100
