"""The ASGI middleware that records HTTP metrics.

Per request it reads the matched route from the scope once the app has run,
and with the default metrics makes one call into C that updates all of them.
Starlette ``Request``/``Response`` objects are built only when a
user-supplied instrumentation function needs them.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
from time import perf_counter
from typing import Any, Awaitable, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Union

from .._core import HttpMiddleware, SendTap
from ..instruments import Gauge
from ..registry import REGISTRY
from . import instrumentations as _metrics
from .instrumentations import DefaultInstrumentation, Info
from .otel import OtelInstrumentation, check_metric_names, otel
from .routing import RouteResolver, match_template, redirect_target, root_prefix, route_key

log = logging.getLogger("fastprom")

Scope = Any
Message = Any
ASGIApp = Callable[..., Awaitable[None]]

#: The request methods recorded as they are: those of RFC 9110 and PATCH.
KNOWN_METHODS: FrozenSet[str] = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
#: The method label of every other request method (as OpenTelemetry's
#: ``http.request.method`` has it): servers pass any token a client sends,
#: and each would otherwise make series of its own.
OTHER_METHOD = "_OTHER"


class MetricsOnce:
    """The metrics of one ``Instrumentator.instrument()`` call, made once
    however many middleware objects are built from it: Starlette builds an
    app's middleware stack on its first request, and the first requests of
    two threads (a free-threaded server's workers) may each build one.
    Without it the second build would find the metric names taken and
    record nothing, and either build may be the one the app keeps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: Dict[str, Any] = {}

    def get(self, key: str, make: Callable[[], Any]) -> Any:
        """The object made for ``key``, made by ``make()`` on first use (a
        failure is raised and not remembered)."""
        with self._lock:
            if key not in self._made:
                self._made[key] = make()
            return self._made[key]


def _trace_exemplar() -> Optional[Any]:
    """A function returning {"trace_id": ...} for the active OpenTelemetry span, if installed."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None

    proxy = getattr(trace, "ProxyTracerProvider", None)
    get_provider, get_span = trace.get_tracer_provider, trace.get_current_span
    configured = proxy is None
    next_check = 0.0

    def current() -> Optional[dict]:
        # Until an SDK tracer provider is set no span is recording, so the
        # span lookup is skipped.  Asking for the provider is itself costly
        # (it reads the environment), so it is asked at most once a second
        # until one is set; once set it stays set.
        nonlocal configured, next_check
        if not configured:
            now = perf_counter()
            if now < next_check:
                return None
            next_check = now + 1.0
            if proxy is not None and isinstance(get_provider(), proxy):
                return None
            configured = True
        ctx = get_span().get_span_context()
        if not ctx.is_valid:
            return None
        return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}

    def quiet_until() -> float:
        """The perf_counter() time before which current() returns None
        without looking (0.0 once a provider is set): the C path skips the
        call until then."""
        return 0.0 if configured else next_check
    current.quiet_until = quiet_until  # type: ignore[attr-defined]
    return current


def _url_path(scope: Scope) -> str:
    """The handler of a request that matched no route: its path, as
    Starlette's ``request.url.path`` gives it (what PFI reports)."""
    return str(scope.get("path", "")).replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _redirect_label(app: Any, scope: Scope) -> Optional[str]:
    """The handler of a request that matched no route and that the router
    answers with a trailing-slash redirect, or None (no route: untemplated).

    prometheus-fastapi-instrumentator labels such a request by its path.
    So does fastprom when the route it is redirected to has no path
    parameters: then there is one such label per route.  When it has some,
    the path would make one series per URL (``/items/1/``, ``/items/2/``...,
    without bound), so the request counts as untemplated (``none``).
    ``scope`` must be as it was before the app ran.
    """
    target = redirect_target(app, scope)
    if target is None or "{" in target:
        return None
    return str(scope.get("path", ""))


class PrometheusInstrumentatorMiddleware(HttpMiddleware):
    """Records HTTP metrics for an ASGI app (FastAPI, Starlette or any other).

    Takes the arguments of prometheus-fastapi-instrumentator's middleware of
    the same name, and ``metrics_once``: a :class:`MetricsOnce` shared by
    every middleware built from one ``add_middleware`` (``instrument()``
    passes one), so that each build records into the same metrics.
    Websocket and lifespan scopes pass through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        should_group_status_codes: bool = True,
        should_ignore_untemplated: bool = False,
        should_group_untemplated: bool = True,
        should_include_root_path: bool = False,
        should_round_latency_decimals: bool = False,
        should_respect_env_var: bool = False,
        should_instrument_requests_inprogress: bool = False,
        should_exclude_streaming_duration: bool = False,
        excluded_handlers: Sequence[Union[str, "re.Pattern[str]"]] = (),
        body_handlers: Sequence[Union[str, "re.Pattern[str]"]] = (),
        round_latency_decimals: int = 4,
        env_var_name: str = "ENABLE_METRICS",
        inprogress_name: str = "http_requests_inprogress",
        inprogress_labels: bool = False,
        instrumentations: Sequence[Callable[[Info], None]] = (),
        async_instrumentations: Sequence[Callable[[Info], Awaitable[None]]] = (),
        metric_namespace: str = "",
        metric_subsystem: str = "",
        should_only_respect_2xx_for_highr: bool = False,
        latency_highr_buckets: Sequence[Union[float, str]] = _metrics.HIGHR_BUCKETS,
        latency_lowr_buckets: Sequence[Union[float, str]] = _metrics.LOWR_BUCKETS,
        registry: Any = REGISTRY,
        custom_labels: Optional[dict] = None,
        known_methods: Iterable[str] = KNOWN_METHODS,
        max_series: Optional[int] = _metrics.DEFAULT_MAX_SERIES,
        metric_names: str = "prometheus-fastapi-instrumentator",
        latency_native_histograms: bool = False,
        metrics_once: Optional[MetricsOnce] = None,
    ) -> None:
        self.app = app
        check_metric_names(metric_names)
        if isinstance(known_methods, str):
            raise TypeError("known_methods must be a collection of method names, not a str")
        self.known_methods: FrozenSet[str] = frozenset(known_methods)
        self.should_group_status_codes = should_group_status_codes
        self.should_ignore_untemplated = should_ignore_untemplated
        self.should_group_untemplated = should_group_untemplated
        self.should_include_root_path = should_include_root_path
        self.should_round_latency_decimals = should_round_latency_decimals
        self.should_exclude_streaming_duration = should_exclude_streaming_duration
        self.round_latency_decimals = round_latency_decimals
        self.inprogress_labels = inprogress_labels
        self.excluded_handlers = [re.compile(p) if isinstance(p, str) else p for p in excluded_handlers]
        self.body_handlers = [re.compile(p) if isinstance(p, str) else p for p in body_handlers]
        self._resolver = RouteResolver()

        self.instrumentations: List[Callable[[Info], None]] = list(instrumentations)

        def once(key: str, make: Callable[[], Any]) -> Any:
            return metrics_once.get(key, make) if metrics_once is not None else make()
        # metric_names="otel": OpenTelemetry's names instead of the default
        # metrics (functions given with add() replace both, as they replace
        # the default ones in prometheus-fastapi-instrumentator).
        self._otel: Optional[OtelInstrumentation] = None
        if metric_names == "otel" and not self.instrumentations and not async_instrumentations:
            self._otel = once("otel", lambda: otel(metric_namespace, metric_subsystem, registry, max_series,
                                                   latency_native_histograms))
        elif not self.instrumentations:
            # As in prometheus-fastapi-instrumentator: when the default
            # metrics exist in the registry already (another app, or another
            # Instrumentator, made them), default() returns None and this
            # middleware records no request metrics.
            default = once("default", lambda: _metrics.default(
                metric_namespace=metric_namespace, metric_subsystem=metric_subsystem,
                should_only_respect_2xx_for_highr=should_only_respect_2xx_for_highr,
                should_exclude_streaming_duration=should_exclude_streaming_duration,
                latency_highr_buckets=latency_highr_buckets, latency_lowr_buckets=latency_lowr_buckets,
                registry=registry, custom_labels=custom_labels, max_series=max_series,
                latency_native_histograms=latency_native_histograms))
            if default is not None:
                self.instrumentations.append(default)
        self.async_instrumentations = list(async_instrumentations)
        self._recording = bool(self.instrumentations or self.async_instrumentations)
        # The fast path: only the default metrics, recorded by one C call.
        self._fast: Optional[DefaultInstrumentation] = None
        if (len(self.instrumentations) == 1 and isinstance(self.instrumentations[0], DefaultInstrumentation)
                and not self.async_instrumentations):
            self._fast = self.instrumentations[0]
        self._exemplar = _trace_exemplar()

        self.inprogress: Optional[Gauge] = None
        if should_instrument_requests_inprogress:
            self.inprogress = _metrics._metric(
                Gauge, inprogress_name, "Number of HTTP requests in progress.",
                ("method", "handler") if inprogress_labels else (), "", "", registry,
                multiprocess_mode="livesum", max_series=max_series)
        # The in-progress gauge needs the handler before the app runs.
        self._match_up_front = self.inprogress is not None and (
            inprogress_labels or bool(self.excluded_handlers) or should_ignore_untemplated)
        self._warned = False
        self._filtering = bool(self.excluded_handlers) or should_ignore_untemplated
        self._status_labels: dict = {}
        # The inline path in __call__ reads the resolver's map of known
        # routes: only when nothing else (filters, rounding, user functions,
        # body capture, the root path in the handler) has to see the request.
        self._known = self._resolver.known
        self._hot_ok = (self._fast is not None and not self._filtering and not should_round_latency_decimals
                        and not self.body_handlers and not should_include_root_path)
        self._exclude_streaming = self._fast is not None and self._fast.exclude_streaming
        self._exclude_streaming_otel = should_exclude_streaming_duration
        # Calls go to _call, unless configured here: then the common
        # configuration's HTTP requests are handled by the C base class
        # (start time, status capture, the lookups _call makes inline, one
        # record call); what its caches miss goes to _record_slow.
        # Servers that tell ASGI 3 apps by a coroutine function __call__
        # (uvicorn) look it up on the instance: this one.  Calls go through
        # the type's slot, the C base's.
        self.__call__ = self._call  # type: ignore[method-assign]
        if self._hot_ok and self.inprogress is None and self._fast is not None:
            self._configure(app, self._known, self._status_labels, self.known_methods, self._fast.record,
                            self._exemplar, self._record_slow, self._record_failed, self._exclude_streaming)

    def _excluded(self, handler: str, templated: bool) -> bool:
        if not templated and self.should_ignore_untemplated:
            return True
        return any(p.search(handler) for p in self.excluded_handlers)

    def _status_label(self, status_code: Any) -> str:
        label = self._status_labels.get(status_code)
        if label is None:
            label = str(int(status_code))
            if self.should_group_status_codes:
                label = label[0] + "xx"
            if len(self._status_labels) < 1000:
                self._status_labels[status_code] = label
        return label

    def _record_slow(self, scope: Scope, root0: str, app0: Any, start: float, end: float, resp_start: float,
                     status_code: Any, resp_headers: Any, exemplar: Optional[dict]) -> None:
        """HttpMiddleware's path for a request its caches do not cover."""
        rest = self._record(scope, root0, app0, "", start, end, resp_start, status_code, resp_headers, None, exemplar)
        assert rest is None  # only the default metrics, no body handlers: nothing to await

    def _record_failed(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.error("fastprom: recording HTTP metrics failed (logged once)", exc_info=exc)

    async def _call(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._otel is not None:
            await self._call_otel(scope, receive, send)
            return
        start = perf_counter()
        root0 = scope.get("root_path") or ""
        app0 = scope.get("app")
        prefix0 = root_prefix(app0, scope) if self.should_include_root_path else ""
        exemplar = self._exemplar() if self._exemplar is not None else None
        inprogress = self._start_inprogress(scope, app0, prefix0) if self.inprogress is not None else None
        if not self._recording:  # nothing to record but the in-progress gauge
            try:
                await self.app(scope, receive, send)
            finally:
                if inprogress is not None:
                    inprogress.dec()
            return

        # The tap (C) notes the response's status, headers and start time as
        # it passes each message on, without a Python frame per message.
        body: Optional[bytearray] = None
        if self.body_handlers:
            body = bytearray()
            collected = body

            async def send_collecting(message: Message) -> None:
                if message["type"] == "http.response.body":
                    collected.extend(message.get("body", b""))
                await send(message)

            tap = SendTap(send_collecting)
        else:
            tap = SendTap(send)

        try:
            await self.app(scope, receive, tap)
        finally:
            end = perf_counter()
            if inprogress is not None:
                inprogress.dec()
            try:
                status = tap.status
                if status is None:
                    status = 500
                # The common case inline: default metrics, a route matched at
                # the top level and seen before, no filters.  One C call.
                key = route_key(scope) if self._hot_ok else None
                hit = self._known.get(id(key)) if key is not None else None
                label = self._status_labels.get(status)
                if (hit is not None and hit[0] is key and label is not None
                        and (scope.get("root_path") or "") == root0):
                    if self._exclude_streaming:
                        duration = tap.started - start if tap.started else 0.0
                    else:
                        duration = end - start
                    method = scope["method"]
                    if method not in self.known_methods:
                        method = OTHER_METHOD
                    self._fast.record(hit[1], method, label, duration,  # type: ignore[union-attr]
                                      scope.get("headers"), tap.headers, exemplar)
                else:
                    rest = self._record(scope, root0, app0, prefix0, start, end, tap.started, status, tap.headers,
                                        body, exemplar)
                    if rest is not None:
                        await rest
            except Exception:  # recording must never break a request
                if not self._warned:
                    self._warned = True
                    log.exception("fastprom: recording HTTP metrics failed (logged once)")

    async def _call_otel(self, scope: Scope, receive: Any, send: Any) -> None:
        """One request recorded under OpenTelemetry's names."""
        otel_metrics = self._otel
        assert otel_metrics is not None
        start = perf_counter()
        root0 = scope.get("root_path") or ""
        app0 = scope.get("app")
        prefix0 = root_prefix(app0, scope) if self.should_include_root_path else ""
        exemplar = self._exemplar() if self._exemplar is not None else None
        method = scope["method"]
        if method not in self.known_methods:
            method = OTHER_METHOD
        active = otel_metrics.start(scope, method)
        inprogress = self._start_inprogress(scope, app0, prefix0) if self.inprogress is not None else None
        tap = SendTap(send)
        # The class only: holding the exception would make a reference cycle
        # through its traceback and this frame.
        error: Optional[type] = None
        try:
            await self.app(scope, receive, tap)
        except BaseException as e:
            error = type(e)
            raise
        finally:
            end = perf_counter()
            active.dec()
            if inprogress is not None:
                inprogress.dec()
            try:
                status = tap.status if tap.status is not None else 500
                tmpl = self._resolver.template(scope, root0, app0, prefix0)
                if tmpl is None and 300 <= int(status) < 400:
                    tmpl = _redirect_label(app0, {**scope, "root_path": root0})
                handler = tmpl if tmpl is not None else _url_path(scope)
                if not (self._filtering and self._excluded(handler, tmpl is not None)):
                    if tmpl is None and self.should_group_untemplated:
                        handler = "none"
                    if self._exclude_streaming_otel:
                        duration = tap.started - start if tap.started else 0.0
                    else:
                        duration = end - start
                    if self.should_round_latency_decimals:
                        duration = round(duration, self.round_latency_decimals)
                    otel_metrics.record(scope, handler, method, int(status), duration, tap.headers,
                                        error if tap.status is None else None, exemplar)
            except Exception:  # recording must never break a request
                if not self._warned:
                    self._warned = True
                    log.exception("fastprom: recording HTTP metrics failed (logged once)")

    def _record(self, scope: Scope, root0: str, app0: Any, prefix0: str, start: float, end: float,
                resp_start: float, status_code: Any, resp_headers: Any, body: Optional[bytearray],
                exemplar: Optional[dict]) -> Optional[Awaitable[None]]:
        """Records one request; returns the awaitable of the slow path, if any."""
        tmpl = self._resolver.template(scope, root0, app0, prefix0)
        if tmpl is None and 300 <= int(status_code) < 400:
            tmpl = _redirect_label(app0, {**scope, "root_path": root0})
        handler = tmpl if tmpl is not None else _url_path(scope)
        if self._filtering and self._excluded(handler, tmpl is not None):
            return None
        if tmpl is None and self.should_group_untemplated:
            handler = "none"
        status = self._status_label(status_code)
        duration = end - start
        without_streaming = resp_start - start if resp_start else 0.0
        if self.should_round_latency_decimals:
            duration = round(duration, self.round_latency_decimals)
            without_streaming = round(without_streaming, self.round_latency_decimals)
        method = scope["method"]
        if method not in self.known_methods:
            method = OTHER_METHOD
        fast = self._fast
        if fast is not None and (body is None or not any(p.search(handler) for p in self.body_handlers)):
            fast.record(handler, method, status, without_streaming if fast.exclude_streaming else duration,
                        scope.get("headers"), resp_headers, exemplar)
            return None
        return self._finish(scope, handler, method, status, status_code, duration, without_streaming, resp_headers,
                            body, exemplar)

    async def _finish(self, scope: Scope, handler: str, method: str, status: str, status_code: Any, duration: float,
                      without_streaming: float, resp_headers: Any, body: Optional[bytearray],
                      exemplar: Optional[dict]) -> None:
        """The general path: Request and Response objects for user functions."""
        from starlette.datastructures import Headers
        from starlette.requests import Request
        from starlette.responses import Response

        collected = bytes(body) if body is not None and any(p.search(handler) for p in self.body_handlers) else b""
        response = Response(content=collected, headers=Headers(raw=resp_headers or []), status_code=int(status_code))
        info = Info(Request(scope), response, method, handler, status, duration, without_streaming)
        info.exemplar = exemplar  # type: ignore[attr-defined]
        for fn in self.instrumentations:
            fn(info)
        if self.async_instrumentations:
            await asyncio.gather(*(fn(info) for fn in self.async_instrumentations))

    def _start_inprogress(self, scope: Scope, app0: Any, prefix0: str) -> Any:
        assert self.inprogress is not None
        if not self._match_up_front:
            self.inprogress.inc()
            return self.inprogress
        tmpl = match_template(app0, scope)
        if tmpl is not None:
            tmpl = prefix0 + tmpl
        else:
            tmpl = _redirect_label(app0, scope)
        handler = tmpl if tmpl is not None else _url_path(scope)
        if self._excluded(handler, tmpl is not None):
            return None
        if tmpl is None and self.should_group_untemplated:
            handler = "none"
        method = scope["method"]
        if method not in self.known_methods:
            method = OTHER_METHOD
        gauge = self.inprogress.labels(method, handler) if self.inprogress_labels else self.inprogress
        gauge.inc()
        return gauge
