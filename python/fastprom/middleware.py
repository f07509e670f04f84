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
from time import perf_counter
from typing import Any, Awaitable, Callable, List, Optional, Sequence, Union

from . import metrics as _metrics
from ._metric_types import Gauge
from .metrics import DefaultInstrumentation, Info
from .registry import REGISTRY
from .routing import RouteResolver, match_template

log = logging.getLogger("fastprom")

Scope = Any
Message = Any
ASGIApp = Callable[..., Awaitable[None]]

_CONTENT_LENGTH = b"content-length"


def _header_length(headers: Any) -> int:
    """Content-Length from raw ASGI headers; 0 when absent or malformed."""
    if headers:
        for name, value in headers:
            if name.lower() == _CONTENT_LENGTH:
                try:
                    n = int(value)
                except ValueError:
                    return 0
                return n if n >= 0 else 0
    return 0


def _trace_exemplar() -> Optional[Any]:
    """A function returning {"trace_id": ...} for the active OpenTelemetry span, if installed."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None

    def current() -> Optional[dict]:
        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid:
            return None
        return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
    return current


class PrometheusInstrumentatorMiddleware:
    """Records HTTP metrics for an ASGI app (FastAPI, Starlette or any other).

    Takes the arguments of prometheus-fastapi-instrumentator's middleware of
    the same name.  Websocket and lifespan scopes pass through untouched.
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
    ) -> None:
        self.app = app
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

        if instrumentations:
            self.instrumentations: List[Callable[[Info], None]] = list(instrumentations)
        else:
            self.instrumentations = [_metrics.default(
                metric_namespace=metric_namespace, metric_subsystem=metric_subsystem,
                should_only_respect_2xx_for_highr=should_only_respect_2xx_for_highr,
                should_exclude_streaming_duration=should_exclude_streaming_duration,
                latency_highr_buckets=latency_highr_buckets, latency_lowr_buckets=latency_lowr_buckets,
                registry=registry, custom_labels=custom_labels)]
        self.async_instrumentations = list(async_instrumentations)
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
                multiprocess_mode="livesum")
        # The in-progress gauge needs the handler before the app runs.
        self._match_up_front = self.inprogress is not None and (
            inprogress_labels or bool(self.excluded_handlers) or should_ignore_untemplated)
        self._warned = False

    def _excluded(self, handler: str, templated: bool) -> bool:
        if not templated and self.should_ignore_untemplated:
            return True
        return any(p.search(handler) for p in self.excluded_handlers)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        root0 = scope.get("root_path", "") or ""
        app0 = scope.get("app")
        exemplar = self._exemplar() if self._exemplar is not None else None

        inprogress = None
        if self.inprogress is not None:
            inprogress = self._start_inprogress(scope, app0)

        status = 500
        resp_headers: Any = None
        resp_start = 0.0
        body = bytearray()
        collect_body = bool(self.body_handlers)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, resp_headers, resp_start
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                resp_headers = message.get("headers")
                resp_start = perf_counter()
            elif collect_body and kind == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            end = perf_counter()
            if inprogress is not None:
                inprogress.dec()
            try:
                await self._finish(scope, root0, app0, start, end, resp_start, status, resp_headers, body, exemplar)
            except Exception:  # recording must never break a request
                if not self._warned:
                    self._warned = True
                    log.exception("fastprom: recording HTTP metrics failed (logged once)")

    def _start_inprogress(self, scope: Scope, app0: Any) -> Any:
        assert self.inprogress is not None
        if not self._match_up_front:
            self.inprogress.inc()
            return self.inprogress
        tmpl = match_template(app0, scope)
        handler = tmpl if tmpl is not None else scope.get("path", "")
        if self._excluded(handler, tmpl is not None):
            return None
        if tmpl is None and self.should_group_untemplated:
            handler = "none"
        gauge = self.inprogress.labels(scope["method"], handler) if self.inprogress_labels else self.inprogress
        gauge.inc()
        return gauge

    async def _finish(self, scope: Scope, root0: str, app0: Any, start: float, end: float, resp_start: float,
                      status_code: Any, resp_headers: Any, body: bytearray, exemplar: Optional[dict]) -> None:
        tmpl = self._resolver.template(scope, root0, app0, self.should_include_root_path)
        handler = tmpl if tmpl is not None else scope.get("path", "")
        if self._excluded(handler, tmpl is not None):
            return
        if tmpl is None and self.should_group_untemplated:
            handler = "none"
        status = str(int(status_code))
        if self.should_group_status_codes:
            status = status[0] + "xx"
        duration = max(end - start, 0.0)
        without_streaming = max(resp_start - start, 0.0) if resp_start else 0.0
        if self.should_round_latency_decimals:
            duration = round(duration, self.round_latency_decimals)
            without_streaming = round(without_streaming, self.round_latency_decimals)
        method = scope["method"]

        fast = self._fast
        if fast is not None and not (self.body_handlers and any(p.search(handler) for p in self.body_handlers)):
            fast.record(handler, method, status, without_streaming if fast.exclude_streaming else duration,
                        _header_length(scope.get("headers")), _header_length(resp_headers), exemplar)
            return

        from starlette.datastructures import Headers
        from starlette.requests import Request
        from starlette.responses import Response

        collected = bytes(body) if any(p.search(handler) for p in self.body_handlers) else b""
        response = Response(content=collected, headers=Headers(raw=resp_headers or []), status_code=int(status_code))
        info = Info(Request(scope), response, method, handler, status, duration, without_streaming)
        info.exemplar = exemplar  # type: ignore[attr-defined]
        for fn in self.instrumentations:
            fn(info)
        if self.async_instrumentations:
            await asyncio.gather(*(fn(info) for fn in self.async_instrumentations))
