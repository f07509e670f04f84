"""``Instrumentator().instrument(app).expose(app)``: a drop-in for
prometheus-fastapi-instrumentator's class of the same shape."""
from __future__ import annotations

import inspect
import os
import re
import time
import warnings
from enum import Enum
from typing import Any, Awaitable, Callable, Iterable, List, Optional, Sequence, Union

from ..bridge import is_prometheus_client_registry, registry_for
from ..exposition import negotiate
from ..registry import REGISTRY, CollectorRegistry
from . import instrumentations as metrics
from .instrumentations import DEFAULT_MAX_SERIES
from .middleware import KNOWN_METHODS, MetricsOnce, PrometheusInstrumentatorMiddleware
from .otel import check_metric_names


class Instrumentator:
    """Instruments a FastAPI or Starlette app and exposes ``/metrics``.

    The constructor takes prometheus-fastapi-instrumentator's arguments with
    the same defaults.  ``registry`` may be a fastprom or a prometheus_client
    ``CollectorRegistry``; by default fastprom's ``REGISTRY`` is used, and
    prometheus_client's default registry (when installed) both sees these
    metrics and has its own samples included in ``/metrics``.

    fastprom's own keyword arguments: ``known_methods`` (other methods are
    recorded as ``_OTHER``), ``max_series`` (per metric), ``metric_names``
    (``"otel"`` records OpenTelemetry's HTTP server metrics instead of the
    default ones) and ``should_instrument_uptime`` (``process_uptime_seconds``,
    computed at scrape).

    As in prometheus-fastapi-instrumentator, the constructor raises
    ValueError when ``PROMETHEUS_MULTIPROC_DIR`` is set but is not a
    directory, and takes the deprecated lower-case
    ``prometheus_multiproc_dir`` for it (with a DeprecationWarning).
    """

    def __init__(
        self,
        should_group_status_codes: bool = True,
        should_ignore_untemplated: bool = False,
        should_group_untemplated: bool = True,
        should_include_root_path: bool = False,
        should_round_latency_decimals: bool = False,
        should_respect_env_var: bool = False,
        should_instrument_requests_inprogress: bool = False,
        should_exclude_streaming_duration: bool = False,
        excluded_handlers: Sequence[str] = (),
        body_handlers: Sequence[str] = (),
        round_latency_decimals: int = 4,
        env_var_name: str = "ENABLE_METRICS",
        inprogress_name: str = "http_requests_inprogress",
        inprogress_labels: bool = False,
        registry: Any = None,
        *,
        known_methods: Iterable[str] = KNOWN_METHODS,
        max_series: Optional[int] = DEFAULT_MAX_SERIES,
        metric_names: str = "prometheus-fastapi-instrumentator",
        should_instrument_uptime: bool = False,
    ) -> None:
        #: ``"otel"``: OpenTelemetry's HTTP server metric names instead of the default metrics.
        self.metric_names = check_metric_names(metric_names)
        #: Whether ``instrument()`` adds the ``process_uptime_seconds`` gauge.
        self.should_instrument_uptime = should_instrument_uptime
        self.should_group_status_codes = should_group_status_codes
        self.should_ignore_untemplated = should_ignore_untemplated
        self.should_group_untemplated = should_group_untemplated
        self.should_include_root_path = should_include_root_path
        self.should_round_latency_decimals = should_round_latency_decimals
        self.should_respect_env_var = should_respect_env_var
        self.should_instrument_requests_inprogress = should_instrument_requests_inprogress
        self.should_exclude_streaming_duration = should_exclude_streaming_duration
        self.round_latency_decimals = round_latency_decimals
        self.env_var_name = env_var_name
        self.inprogress_name = inprogress_name
        self.inprogress_labels = inprogress_labels
        if isinstance(known_methods, str):
            raise TypeError("known_methods must be a collection of method names, not a str")
        #: Request methods recorded as they are; any other is recorded as ``_OTHER``.
        self.known_methods = frozenset(known_methods)
        #: The series limit of each metric the Instrumentator makes (None: none).
        self.max_series = max_series
        self._prefix = ""  # namespace and subsystem of instrument(), for the ui page
        self.excluded_handlers = [re.compile(p) for p in excluded_handlers]
        self.body_handlers = [re.compile(p) for p in body_handlers]
        self.instrumentations: List[Callable[[metrics.Info], None]] = []
        self.async_instrumentations: List[Callable[[metrics.Info], Awaitable[None]]] = []

        if "prometheus_multiproc_dir" in os.environ and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["prometheus_multiproc_dir"]
            warnings.warn("prometheus_multiproc_dir is deprecated: set PROMETHEUS_MULTIPROC_DIR instead",
                          DeprecationWarning, stacklevel=2)
        _check_multiproc_dir("Env var PROMETHEUS_MULTIPROC_DIR='{}' not a directory.")

        # Where our metrics live: a fastprom registry, or the one standing for
        # a prometheus_client registry (the default REGISTRY is both).
        if registry is None:
            self.registry: CollectorRegistry = REGISTRY
        elif isinstance(registry, CollectorRegistry):
            self.registry = registry
        elif is_prometheus_client_registry(registry):
            self.registry = registry_for(registry)
        else:
            raise TypeError(f"registry must be a fastprom or prometheus_client CollectorRegistry, got {registry!r}")

    def _enabled(self) -> bool:
        if not self.should_respect_env_var:
            return True
        return os.getenv(self.env_var_name, "False").lower() in ("true", "1")

    def instrument(
        self,
        app: Any,
        metric_namespace: str = "",
        metric_subsystem: str = "",
        should_only_respect_2xx_for_highr: bool = False,
        latency_highr_buckets: Sequence[Union[float, str]] = metrics.HIGHR_BUCKETS,
        latency_lowr_buckets: Sequence[Union[float, str]] = metrics.LOWR_BUCKETS,
        *,
        latency_native_histograms: bool = False,
    ) -> "Instrumentator":
        """Adds the metrics middleware to ``app``.  Returns self.

        ``latency_native_histograms``: the latency histograms get native
        buckets too (factor 1.1), beside their classic ones; Prometheus with
        native histograms on scrapes them over protobuf."""
        if not self._enabled():
            return self
        self._prefix = "".join(p + "_" for p in (metric_namespace, metric_subsystem) if p)
        app.add_middleware(
            PrometheusInstrumentatorMiddleware,
            should_group_status_codes=self.should_group_status_codes,
            should_ignore_untemplated=self.should_ignore_untemplated,
            should_group_untemplated=self.should_group_untemplated,
            should_include_root_path=self.should_include_root_path,
            should_round_latency_decimals=self.should_round_latency_decimals,
            should_respect_env_var=self.should_respect_env_var,
            should_instrument_requests_inprogress=self.should_instrument_requests_inprogress,
            should_exclude_streaming_duration=self.should_exclude_streaming_duration,
            round_latency_decimals=self.round_latency_decimals,
            env_var_name=self.env_var_name,
            inprogress_name=self.inprogress_name,
            inprogress_labels=self.inprogress_labels,
            instrumentations=self.instrumentations,
            async_instrumentations=self.async_instrumentations,
            excluded_handlers=self.excluded_handlers,
            body_handlers=self.body_handlers,
            metric_namespace=metric_namespace,
            metric_subsystem=metric_subsystem,
            should_only_respect_2xx_for_highr=should_only_respect_2xx_for_highr,
            latency_highr_buckets=latency_highr_buckets,
            latency_lowr_buckets=latency_lowr_buckets,
            registry=self.registry,
            known_methods=self.known_methods,
            max_series=self.max_series,
            metric_names=self.metric_names,
            latency_native_histograms=latency_native_histograms,
            metrics_once=MetricsOnce(),
        )
        if self.should_instrument_uptime:
            add_uptime_gauge(self.registry)
        return self

    def render(self, accept: Optional[str] = None, accept_encoding: Optional[str] = None,
               allow_gzip: bool = False) -> Any:
        """The ``/metrics`` response for these request headers (an :class:`~fastprom.Exposition`)."""
        return negotiate(self.registry, accept, accept_encoding, allow_gzip)

    def expose(
        self,
        app: Any,
        should_gzip: bool = False,
        endpoint: str = "/metrics",
        include_in_schema: bool = True,
        tags: Optional[List[Union[str, Enum]]] = None,
        *,
        ui: bool = False,
        **kwargs: Any,
    ) -> "Instrumentator":
        """Serves the metrics at ``endpoint`` in the format the scraper asks
        for (protobuf, OpenMetrics, the text format; see ``negotiate_format``); gzip when ``should_gzip`` and the
        client accepts it.  Returns self.

        On a FastAPI app the route is added with ``app.get(endpoint,
        include_in_schema=..., tags=..., **kwargs)``, so ``dependencies=``,
        ``name=``, ``summary=`` and FastAPI's other route arguments apply; on
        a Starlette app ``tags`` and ``kwargs`` are ignored.  As in
        prometheus-fastapi-instrumentator, a scrape while
        ``PROMETHEUS_MULTIPROC_DIR`` names no directory raises ValueError.

        ``ui=True`` also serves a self-contained HTML page at
        ``endpoint + "/ui"`` (per route: requests, rate, error ratio, p50,
        p99, in progress; refreshed every 2 s), fed by ``endpoint + "/ui.json"``.
        It is off by default: it shows the app's routes and traffic to anyone
        who can reach it, like ``/metrics``, but to browsers.
        """
        if not self._enabled():
            return self
        from starlette.requests import Request
        from starlette.responses import Response

        from .scrape import SharedRender, StreamedExposition, response_kind
        #: This endpoint's renders in flight (see scrape.py).
        self.scrapes = shared = SharedRender()

        async def metrics_endpoint(request: Request) -> Response:
            _check_multiproc_dir("env PROMETHEUS_MULTIPROC_DIR='{}' is not a directory; create it or unset it")
            accept, encoding = request.headers.get("accept"), request.headers.get("accept-encoding")
            e = await shared.get(response_kind(accept, encoding, should_gzip),
                                 lambda: self.render(accept, encoding, should_gzip))
            return StreamedExposition(e)

        # Real classes, not the strings this module's annotations are: FastAPI
        # reads them to inject the request.  The name is PFI's: FastAPI makes
        # it the route's name (url_path_for("metrics")) and operation id.
        metrics_endpoint.__annotations__ = {"request": Request, "return": Response}
        metrics_endpoint.__name__ = metrics_endpoint.__qualname__ = "metrics"
        metrics_endpoint.__doc__ = "Serves the Prometheus metrics."

        try:
            from fastapi import FastAPI
        except ImportError:  # pragma: no cover - Starlette only
            FastAPI = None  # type: ignore[assignment,misc]
        if FastAPI is not None and isinstance(app, FastAPI):
            app.get(endpoint, include_in_schema=include_in_schema, tags=tags, **kwargs)(metrics_endpoint)
        else:
            app.add_route(endpoint, metrics_endpoint, include_in_schema=include_in_schema)
        if ui:
            self._expose_ui(app, endpoint)
        return self

    def _expose_ui(self, app: Any, endpoint: str) -> None:
        """Adds ``endpoint/ui`` (the page) and ``endpoint/ui.json`` (its data)."""
        import json

        from starlette.requests import Request
        from starlette.responses import Response

        from .ui import page, snapshot

        base = endpoint.rstrip("/")
        html = page(endpoint, base + "/ui.json").encode()

        def ui_page(request: Request) -> Response:
            return Response(content=html, media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-store"})

        def ui_data(request: Request) -> Response:
            body = json.dumps(snapshot(self.registry, self._prefix))
            return Response(content=body, media_type="application/json", headers={"Cache-Control": "no-store"})

        try:
            from fastapi import FastAPI
        except ImportError:  # pragma: no cover - Starlette only
            FastAPI = None  # type: ignore[assignment,misc]
        for path, fn in ((base + "/ui", ui_page), (base + "/ui.json", ui_data)):
            fn.__annotations__ = {"request": Request, "return": Response}
            if FastAPI is not None and isinstance(app, FastAPI):
                app.get(path, include_in_schema=False)(fn)
            else:
                app.add_route(path, fn, include_in_schema=False)

    def add(self, *instrumentation_function: Optional[Callable[[metrics.Info], Any]]) -> "Instrumentator":
        """Adds instrumentation functions (sync or async) called for every
        request.  As in prometheus-fastapi-instrumentator, adding any replaces
        the default metrics (add ``metrics.default()`` to keep them)."""
        for fn in instrumentation_function:
            if fn is None:
                continue
            if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
                self.async_instrumentations.append(fn)
            else:
                self.instrumentations.append(fn)
        return self


def add_uptime_gauge(registry: CollectorRegistry) -> Any:
    """Registers ``process_uptime_seconds`` in ``registry`` (once): the seconds
    since this process started, computed when it is scraped.  Returns the gauge."""
    from ..instruments import Gauge
    from ..collectors import ProcessCollector

    existing = registry._names.get("process_uptime_seconds")
    if existing is not None:
        return existing
    try:
        started = ProcessCollector(registry=None)._read(str(os.getpid())).get("start_time_seconds", time.time())
    except AssertionError:  # no /proc
        started = time.time()
    gauge = Gauge("process_uptime_seconds", "Seconds since the process started, computed at scrape.",
                  registry=registry, multiprocess_mode="livemax")
    gauge.set_function(lambda: max(0.0, time.time() - started))
    return gauge


def _check_multiproc_dir(message: str) -> None:
    """Raises ValueError(message with the value) when ``PROMETHEUS_MULTIPROC_DIR``
    is set (even empty) but is not a directory: the check
    prometheus-fastapi-instrumentator makes."""
    pmd = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if pmd is not None and not os.path.isdir(pmd):
        raise ValueError(message.format(pmd))


#: prometheus-fastapi-instrumentator's name for the class.
PrometheusFastApiInstrumentator = Instrumentator
