"""prometheus-fastapi-instrumentator's semantics, checked against PFI itself
where it is installed (the same app served by uvicorn with either library)
and against what PFI 8.1.0 does where the behaviour is fastprom's alone:
duplicate metrics skipped, PROMETHEUS_MULTIPROC_DIR checked, 8.1.0's route
resolution and root paths, expose() arguments, and the interface itself."""
import importlib.metadata
import inspect
import json
import os

import httpx
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.requests import Request
from starlette.testclient import TestClient

import fastprom
from fastprom import Instrumentator, metrics
from fastprom import routing as fp_routing
from fastprom.middleware import PrometheusInstrumentatorMiddleware
from servers import uvicorn_server


def pfi_version():
    try:
        return tuple(int(p) for p in importlib.metadata.version("prometheus-fastapi-instrumentator").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return None


# FastAPI deprecates FastAPI(root_path=...), which PFI 8.1's root path setting reads.
pytestmark = pytest.mark.filterwarnings("ignore:The .root_path. parameter is deprecated")

needs_pfi = pytest.mark.skipif(pfi_version() is None or pfi_version() < (8, 1),
                               reason="prometheus-fastapi-instrumentator >= 8.1 is not installed")


def scrape(base, path="/metrics", **kw):
    r = httpx.get(base + path, **kw)
    assert r.status_code == 200, r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in parse_text(r.text) for s in fam.samples}


def handlers(samples):
    """{handler: count} of http_requests_total (all methods and statuses)."""
    out = {}
    for (name, labels), v in samples.items():
        if name == "http_requests_total":
            h = dict(labels)["handler"]
            out[h] = out.get(h, 0) + v
    return out


# ---- a metric added twice is skipped ------------------------------------------------


@pytest.mark.parametrize("fn", [metrics.latency, metrics.request_size, metrics.response_size,
                                metrics.combined_size, metrics.requests])
def test_a_metric_function_returns_none_when_its_metric_exists(fn):
    reg = fastprom.CollectorRegistry()
    assert callable(fn(registry=reg))
    assert fn(registry=reg) is None
    # The same name in a prometheus_client registry, made by prometheus_client.
    pc = prometheus_client.CollectorRegistry()
    prometheus_client.Summary(inspect.signature(fn).parameters["metric_name"].default.removesuffix("_total"),
                              "taken", registry=pc)
    assert fn(registry=pc) is None


def test_default_returns_none_when_its_metrics_exist():
    reg = fastprom.CollectorRegistry()
    assert metrics.default(registry=reg) is not None
    assert metrics.default(registry=reg) is None
    assert metrics.default(registry=reg, metric_namespace="other") is not None


def test_errors_other_than_a_duplicate_are_not_swallowed():
    with pytest.raises(ValueError, match="order"):
        metrics.latency(buckets=(2, 1), registry=fastprom.CollectorRegistry())
    with pytest.raises(ValueError, match="label"):
        metrics.requests(custom_labels={"__reserved": "x"}, registry=fastprom.CollectorRegistry())


def test_private_helpers_of_pfi_metrics_module():
    assert metrics._is_duplicated_time_series(ValueError("Duplicated timeseries in CollectorRegistry: {'a'}"))
    assert metrics._is_duplicated_time_series(ValueError("x Duplicated time series in CollectorRegistry: y"))
    assert not metrics._is_duplicated_time_series(ValueError("Invalid metric name"))
    assert metrics._build_label_attribute_names(True, False, True) == (
        ["handler", "status"], ["modified_handler", "modified_status"])


def test_add_none_adds_nothing():
    from fastapi import FastAPI

    reg = fastprom.CollectorRegistry()
    fn = metrics.requests(registry=reg)
    inst = Instrumentator(registry=reg).add(None, fn, metrics.requests(registry=reg))
    assert inst.instrumentations == [fn] and inst.async_instrumentations == []
    # add(None) alone leaves the default metrics in place.
    reg = fastprom.CollectorRegistry()
    app = FastAPI()
    app.get("/x")(lambda: "x")
    Instrumentator(registry=reg).add(None).instrument(app)
    TestClient(app).get("/x")
    assert reg.get_sample_value("http_request_duration_highr_seconds_count") == 1


def test_second_app_on_the_default_registry_records_nothing_as_in_pfi():
    """Two apps instrumented on one registry: the app whose middleware is
    built first (A: its stack is built at lifespan startup) gets the
    metrics, the other's default() is a duplicate and it records nothing.
    Checked against PFI when it is installed."""
    results = {}
    for lib in ["fastprom"] + (["pfi"] if pfi_version() else []):
        with uvicorn_server(lib=lib, app="pfi_semantics:two_apps") as base:
            for path in ("/b/1", "/a/1", "/a/2", "/b/2"):
                assert httpx.get(base + path).status_code == 200
            results[lib] = handlers(scrape(base))
    assert results["fastprom"] == {"/a/{x}": 2.0}
    assert len({json.dumps(r, sort_keys=True) for r in results.values()}) == 1, results


def test_inprogress_gauge_of_two_apps_is_shared_not_an_error():
    """Where fastprom keeps its own behaviour: PFI creates the in-progress
    gauge in the default registry whatever ``registry`` says, so a second
    app raises "Duplicated timeseries" on its first request."""
    from fastapi import FastAPI

    reg = fastprom.CollectorRegistry()
    apps = [FastAPI(), FastAPI()]
    for app in apps:
        app.get("/x")(lambda: "x")
        Instrumentator(registry=reg, should_instrument_requests_inprogress=True).instrument(app)
        assert TestClient(app).get("/x").status_code == 200
    assert reg.get_sample_value("http_requests_inprogress") == 0


# ---- PROMETHEUS_MULTIPROC_DIR -----------------------------------------------------------


def test_multiproc_dir_that_is_not_a_directory_fails_the_constructor(monkeypatch, tmp_path):
    missing = str(tmp_path / "missing")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", missing)
    with pytest.raises(ValueError) as e:
        Instrumentator()
    assert str(e.value) == f"Env var PROMETHEUS_MULTIPROC_DIR='{missing}' not a directory."
    (tmp_path / "file").write_text("")
    for bad in ("", str(tmp_path / "file")):
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", bad)
        with pytest.raises(ValueError, match="not a directory"):
            Instrumentator(registry=fastprom.CollectorRegistry())
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    Instrumentator(registry=fastprom.CollectorRegistry())


def test_lower_case_multiproc_variable_is_taken_with_a_warning(monkeypatch, tmp_path):
    # Set, then deleted: so monkeypatch removes what the constructor sets.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.setenv("prometheus_multiproc_dir", str(tmp_path / "missing"))
    with pytest.warns(DeprecationWarning, match="PROMETHEUS_MULTIPROC_DIR"):
        with pytest.raises(ValueError, match="not a directory"):
            Instrumentator(registry=fastprom.CollectorRegistry())
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "missing")


def test_scrape_fails_while_multiproc_dir_names_no_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    from fastapi import FastAPI

    app = FastAPI()
    Instrumentator(registry=fastprom.CollectorRegistry()).instrument(app).expose(app)
    client = TestClient(app)
    assert client.get("/metrics").status_code == 200
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="env PROMETHEUS_MULTIPROC_DIR"):
        client.get("/metrics")


# ---- routes, root paths and mounts (8.1.0) -------------------------------------------


def _scope(app, path, root_path="", method="GET", kind="http"):
    return {"type": kind, "http_version": "1.1", "method": method, "scheme": "http", "path": path,
            "root_path": root_path, "raw_path": path.encode(), "query_string": b"", "headers": [],
            "server": ("t", 80), "app": app}


def _routing_app():
    from fastapi import APIRouter, FastAPI, WebSocket
    from starlette.routing import Mount

    app = FastAPI(root_path="/proxy/")
    api, v1 = APIRouter(prefix="/api"), APIRouter(prefix="/v1")
    v1.get("/users/{uid}")(lambda uid: uid)
    v1.get("/slash/")(lambda: 0)

    async def ws(websocket: WebSocket):
        await websocket.close()

    v1.websocket("/ws")(ws)
    api.include_router(v1)
    app.include_router(api)
    sub = FastAPI()
    sub.get("/w/{w}")(lambda w: w)
    mounted = APIRouter()
    mounted.routes.append(Mount("/sub", app=sub))
    app.include_router(mounted, prefix="/m")

    async def opaque(scope, receive, send):
        pass

    app.mount("/opaque", opaque)
    return app


ROUTING_CASES = [  # path, method, kind, (without root path, with it)
    ("/proxy/api/v1/users/9", "GET", "http", ("/api/v1/users/{uid}", "/proxy/api/v1/users/{uid}")),
    ("/proxy/api/v1/users/9", "POST", "http", ("/api/v1/users/{uid}", "/proxy/api/v1/users/{uid}")),  # 405
    ("/proxy/api/v1/ws", "GET", "websocket", ("/api/v1/ws", "/proxy/api/v1/ws")),
    ("/proxy/m/sub/w/1", "GET", "http", ("/m/sub/w/{w}", "/proxy/m/sub/w/{w}")),
    ("/proxy/opaque/x", "GET", "http", ("/opaque", "/proxy/opaque")),
    ("/proxy/api/v1/slash", "GET", "http", ("/proxy/api/v1/slash", "/proxy/api/v1/slash")),  # a redirect
    ("/proxy/m/sub/w/1/", "GET", "http", ("/proxy/m/sub/w/1/", "/proxy/m/sub/w/1/")),  # a redirect
    ("/proxy/nope", "GET", "http", (None, None)),
]


@pytest.mark.parametrize("path,method,kind,want", ROUTING_CASES)
def test_get_route_name_as_pfi_8_1(path, method, kind, want):
    app = _routing_app()
    request = Request(_scope(app, path, "/proxy", method, kind)) if kind == "http" else None
    if request is not None:
        got = (fp_routing.get_route_name(request, should_include_root_path=False),
               fp_routing.get_route_name(request, should_include_root_path=True))
        assert got == want
    assert fp_routing._get_route_name(_scope(app, path, "/proxy", method, kind), app.routes) == (
        want[0] if want[0] != path else None)
    if pfi_version() and pfi_version() >= (8, 1):
        from prometheus_fastapi_instrumentator import routing as pfi_routing

        if request is not None:
            assert pfi_routing.get_route_name(request, should_include_root_path=True) == want[1]
        assert pfi_routing._get_route_name(_scope(app, path, "/proxy", method, kind), app.routes) == (
            fp_routing._get_route_name(_scope(app, path, "/proxy", method, kind), app.routes))


def _root_path_handlers(lib, include, app_root_path=True, server_root_path=None):
    env = {"FASTPROM_TEST_APP_ROOT_PATH": "1" if app_root_path else "0"}
    args = ["--root-path", server_root_path] if server_root_path else []
    # A server given --root-path gets paths without it (a proxy strips it)
    # and puts it in front of the scope's path.
    prefix = "/proxy" if app_root_path else ""
    with uvicorn_server(lib=lib, app="pfi_semantics:root_path_app", opts={"should_include_root_path": include},
                        env=env, extra_args=args) as base:
        for path in ("/items/1", "/api/items/2", "/static", "/api/static"):
            httpx.get(base + prefix + path)
        return handlers(scrape(base, prefix + "/metrics")), handlers(scrape(base, prefix + "/api/metrics"))


@pytest.mark.parametrize("include", [False, True])
def test_root_path_and_mounted_sub_app_handlers(include):
    """The app's own root path is prepended only with
    should_include_root_path; a mounted sub-app instrumented itself labels
    relative to itself either way; a redirect to a static route is
    labelled by its path, as PFI does."""
    top, sub = _root_path_handlers("fastprom", include)
    p = "/proxy" if include else ""
    assert top == {p + "/items/{item_id}": 1, p + "/api/items/{item_id}": 1, "/proxy/static": 1,
                   "/proxy/api/static": 1}
    assert sub == {"/items/{item_id}": 1, "/proxy/api/static": 1}
    if pfi_version() and pfi_version() >= (8, 1):
        assert _root_path_handlers("pfi", include) == (top, sub)


def test_server_root_path_is_included_where_pfi_leaves_it_out():
    """fastprom's one difference in root paths: a root path given to the
    server (``uvicorn --root-path``, what FastAPI now recommends over
    ``FastAPI(root_path=...)``) is the app's root path too, so
    should_include_root_path prepends it; PFI 8.1 reads only the app's
    attribute, and the setting does nothing there."""
    top, sub = _root_path_handlers("fastprom", True, app_root_path=False, server_root_path="/srv")
    assert top["/srv/items/{item_id}"] == 1 and top["/srv/api/items/{item_id}"] == 1
    assert sub["/items/{item_id}"] == 1  # a mounted app stays relative to itself
    top, _ = _root_path_handlers("fastprom", False, app_root_path=False, server_root_path="/srv")
    assert top["/items/{item_id}"] == 1
    if pfi_version() and pfi_version() >= (8, 1):
        top, _ = _root_path_handlers("pfi", True, app_root_path=False, server_root_path="/srv")
        assert "/srv/items/{item_id}" not in top and top["/items/{item_id}"] == 1


def test_redirects_by_path_unless_the_route_has_parameters():
    """A trailing-slash redirect to a route without parameters is labelled
    by its path, as PFI labels every redirect; to a route with parameters
    (one path per URL, without bound) it is untemplated, "none"."""
    results = {}
    for lib in ["fastprom"] + (["pfi"] if pfi_version() else []):
        with uvicorn_server(lib=lib, opts={"should_group_status_codes": False}) as base:
            for path in ("/custom/", "/items/5/", "/items/6/", "/sub"):
                assert httpx.get(base + path).status_code == 307
            results[lib] = {h: v for h, v in handlers(scrape(base)).items() if h != "/metrics"}
    assert results["fastprom"] == {"/custom/": 1, "none": 3}
    if "pfi" in results:
        assert results["pfi"] == {"/custom/": 1, "/items/5/": 1, "/items/6/": 1, "none": 1}
    with uvicorn_server(opts={"should_ignore_untemplated": True}) as base:
        for path in ("/custom/", "/items/5/"):
            httpx.get(base + path)
        assert {h for h in handlers(scrape(base)) if h != "/metrics"} == {"/custom/"}


# ---- expose() ----------------------------------------------------------------------------


def test_expose_passes_fastapi_route_arguments_through():
    for lib in ["fastprom"] + (["pfi"] if pfi_version() else []):
        with uvicorn_server(lib=lib, app="pfi_semantics:guarded_metrics_app") as base:
            assert httpx.get(base + "/ping").status_code == 200
            assert httpx.get(base + "/internal/metrics").status_code == 401
            r = httpx.get(base + "/internal/metrics", headers={"x-token": "secret"})
            assert r.status_code == 200 and 'http_requests_total{handler="/ping"' in r.text, lib
            assert httpx.get(base + "/where").json() == {"url": "/internal/metrics"}
            op = httpx.get(base + "/openapi.json").json()["paths"]["/internal/metrics"]["get"]
            assert op["tags"] == ["ops"] and op["summary"] == "Prometheus metrics", lib


def test_exposed_route_is_named_metrics_as_in_pfi():
    from fastapi import FastAPI
    from starlette.applications import Starlette

    for app in (FastAPI(), Starlette()):
        Instrumentator(registry=fastprom.CollectorRegistry()).expose(app, include_in_schema=False)
        assert app.url_path_for("metrics") == "/metrics"


# ---- the interface: PFI 8.1.0's names, order and defaults -----------------------------

HIGHR = (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60)
FLAGS = [("should_group_status_codes", True), ("should_ignore_untemplated", False),
         ("should_group_untemplated", True), ("should_include_root_path", False),
         ("should_round_latency_decimals", False), ("should_respect_env_var", False),
         ("should_instrument_requests_inprogress", False), ("should_exclude_streaming_duration", False)]
REST = [("round_latency_decimals", 4), ("env_var_name", "ENABLE_METRICS"),
        ("inprogress_name", "http_requests_inprogress"), ("inprogress_labels", False)]
BUCKET_ARGS = [("metric_namespace", ""), ("metric_subsystem", ""), ("should_only_respect_2xx_for_highr", False),
               ("latency_highr_buckets", HIGHR), ("latency_lowr_buckets", (0.1, 0.5, 1))]
PFI_8_1 = {
    "Instrumentator.__init__": [("self", None)] + FLAGS + [("excluded_handlers", []), ("body_handlers", [])]
    + REST + [("registry", None)],
    "Instrumentator.instrument": [("self", None), ("app", None)] + BUCKET_ARGS,
    "Instrumentator.expose": [("self", None), ("app", None), ("should_gzip", False), ("endpoint", "/metrics"),
                              ("include_in_schema", True), ("tags", None), ("kwargs", None)],
    "Instrumentator.add": [("self", None), ("instrumentation_function", None)],
    "Middleware.__init__": [("self", None), ("app", None)] + FLAGS + [("excluded_handlers", []),
                            ("body_handlers", [])] + REST + [("instrumentations", []),
                            ("async_instrumentations", [])] + BUCKET_ARGS + [("registry", "REGISTRY"),
                                                                            ("custom_labels", {})],
}


def _normal(value):
    """Defaults that mean the same compare equal: any empty sequence, None
    and {} for custom labels, either library's default registry."""
    if value is inspect.Parameter.empty:
        return None
    if value is fastprom.REGISTRY or value is prometheus_client.REGISTRY:
        return "REGISTRY"
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value) if value and not isinstance(value[0], str) else tuple(value)
    if value == {}:
        return None
    return value


def _params(fn):
    return [(p.name, _normal(p.default)) for p in inspect.signature(fn).parameters.values()]


def _ours():
    return {"Instrumentator.__init__": Instrumentator.__init__, "Instrumentator.instrument": Instrumentator.instrument,
            "Instrumentator.expose": Instrumentator.expose, "Instrumentator.add": Instrumentator.add,
            "Middleware.__init__": PrometheusInstrumentatorMiddleware.__init__}


#: fastprom's additions: keyword-only, after every parameter PFI has (but
#: before a ``**kwargs``, which must stay last).
EXTRAS = {"Instrumentator.__init__": ["known_methods", "max_series", "metric_names", "should_instrument_uptime"],
          "Middleware.__init__": ["known_methods", "max_series", "metric_names", "latency_native_histograms",
                                  "metrics_once"],
          "Instrumentator.instrument": ["latency_native_histograms"],
          "Instrumentator.expose": ["ui"],
          "latency": ["max_series"], "request_size": ["max_series"], "response_size": ["max_series"],
          "combined_size": ["max_series"], "requests": ["max_series"],
          "default": ["max_series", "latency_native_histograms"]}


def _pfi_params(name, fn):
    """fn's parameters without fastprom's additions, which must be keyword-only and last."""
    params = list(inspect.signature(fn).parameters.values())
    var_kw = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    params = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    extra = EXTRAS.get(name, [])
    tail = params[len(params) - len(extra):] if extra else []
    assert [p.name for p in tail] == extra, name
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in tail), name  # the middleware's are all
    return [(p.name, _normal(p.default)) for p in params[:len(params) - len(extra)] + var_kw]


def test_interface_is_pfi_8_1():
    for name, fn in _ours().items():
        assert _pfi_params(name, fn) == [(n, _normal(v)) for n, v in PFI_8_1[name]], name
    assert fastprom.PrometheusFastApiInstrumentator is Instrumentator


@needs_pfi
def test_interface_is_the_installed_pfis():
    import prometheus_fastapi_instrumentator as pfi
    from prometheus_fastapi_instrumentator import metrics as pfi_metrics
    from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware as PfiMiddleware

    theirs = {"Instrumentator.__init__": pfi.Instrumentator.__init__,
              "Instrumentator.instrument": pfi.Instrumentator.instrument,
              "Instrumentator.expose": pfi.Instrumentator.expose, "Instrumentator.add": pfi.Instrumentator.add,
              "Middleware.__init__": PfiMiddleware.__init__}
    for name, fn in _ours().items():
        assert _pfi_params(name, fn) == _params(theirs[name]), name
    for name in ("latency", "request_size", "response_size", "combined_size", "requests", "default"):
        assert _pfi_params(name, getattr(metrics, name)) == _params(getattr(pfi_metrics, name)), name
    assert _params(metrics.Info.__init__) == _params(pfi_metrics.Info.__init__)
