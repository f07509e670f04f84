"""HTTP server metrics under OpenTelemetry's semantic-convention names, as
OpenTelemetry's Prometheus exporter writes them: ``Instrumentator(metric_names="otel")``.

``http.server.request.duration`` becomes ``http_server_request_duration_seconds``
(a histogram with the convention's bucket bounds), ``http.server.active_requests``
``http_server_active_requests``, and the two body sizes
``http_server_request_body_size_bytes`` and ``http_server_response_body_size_bytes``.
Attributes become labels with dots replaced by ``_``: ``http_request_method``,
``http_route``, ``http_response_status_code``, ``url_scheme`` and ``error_type``.
``error_type`` is empty (which Prometheus stores as no label) unless the
request failed: the status code for a 5xx response, the exception's class
name when the app raised before responding.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

from .. import _core
from ..instruments import Gauge, Histogram
from . import instrumentations as _metrics

#: The bucket bounds the HTTP semantic conventions advise for ``http.server.request.duration``.
DURATION_BUCKETS: Tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: OpenTelemetry SDKs' default explicit bucket bounds, used for the body sizes.
SIZE_BUCKETS: Tuple[float, ...] = (
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0)

#: The metric naming schemes ``Instrumentator(metric_names=...)`` accepts.
METRIC_NAMES = ("prometheus-fastapi-instrumentator", "otel")

REQUEST_LABELS = ("http_request_method", "http_route", "http_response_status_code", "url_scheme", "error_type")
ACTIVE_LABELS = ("http_request_method", "url_scheme")


def check_metric_names(metric_names: str) -> str:
    """Returns ``metric_names`` if it is a known scheme; raises ValueError naming the choices."""
    if metric_names not in METRIC_NAMES:
        raise ValueError(f"metric_names must be one of {', '.join(map(repr, METRIC_NAMES))}, "
                         f"got {metric_names!r}")
    return metric_names


def _scheme(scope: Any) -> str:
    scheme = scope.get("scheme") or "http"
    return scheme if scheme in ("http", "https") else "http"


class OtelInstrumentation:
    """The four OpenTelemetry HTTP server metrics of one middleware.

    Created once per middleware; :meth:`record` is called once per request
    with what the middleware already knows (route, method, status, duration,
    raw ASGI headers), so no Starlette object is built.
    """

    def __init__(self, namespace: str, subsystem: str, registry: Any,
                 max_series: Optional[int] = _metrics.DEFAULT_MAX_SERIES,
                 duration_buckets: Sequence[float] = DURATION_BUCKETS, native: bool = False) -> None:
        new = _metrics._new
        nh: Dict[str, Any] = {"native_histogram_bucket_factor": _metrics.NATIVE_BUCKET_FACTOR} if native else {}
        self.duration = new(Histogram, "http_server_request_duration_seconds",
                            "Duration of HTTP server requests.", REQUEST_LABELS, namespace, subsystem, registry,
                            max_series=max_series, buckets=[float(b) for b in duration_buckets], **nh)
        self.request_size = new(Histogram, "http_server_request_body_size_bytes",
                                "Size of HTTP server request bodies (their Content-Length, 0 when absent).",
                                REQUEST_LABELS, namespace, subsystem, registry, max_series=max_series,
                                buckets=list(SIZE_BUCKETS))
        self.response_size = new(Histogram, "http_server_response_body_size_bytes",
                                 "Size of HTTP server response bodies (their Content-Length, 0 when absent).",
                                 REQUEST_LABELS, namespace, subsystem, registry, max_series=max_series,
                                 buckets=list(SIZE_BUCKETS))
        self.active = _metrics._metric(Gauge, "http_server_active_requests",
                                       "Number of active HTTP server requests.", ACTIVE_LABELS, namespace,
                                       subsystem, registry, multiprocess_mode="livesum", max_series=max_series)

    def start(self, scope: Any, method: str) -> Any:
        """Counts a request as active; returns the gauge child to decrement at its end."""
        child = self.active.labels(method, _scheme(scope))
        child.inc()
        return child

    def record(self, scope: Any, route: str, method: str, status_code: int, duration: float,
               response_headers: Any, error: Optional[type], exemplar: Optional[dict]) -> None:
        """Records one finished request; ``error`` is the class of the
        exception the app raised before responding, if it did."""
        if error is not None and status_code >= 500:
            error_type = error.__qualname__
        elif status_code >= 500:
            error_type = str(status_code)
        else:
            error_type = ""
        values = (method, route, str(status_code), _scheme(scope), error_type)
        self.duration.labels(*values).observe(duration, exemplar=exemplar)
        self.request_size.labels(*values).observe(_length(scope.get("headers")))
        self.response_size.labels(*values).observe(_length(response_headers))


def _length(headers: Any) -> int:
    """The Content-Length of raw ASGI headers, 0 when absent or malformed."""
    for name, value in headers or ():
        if name.lower() == b"content-length":
            return _core.content_length(value)
    return 0


def otel(metric_namespace: str = "", metric_subsystem: str = "", registry: Any = None,
         max_series: Optional[int] = _metrics.DEFAULT_MAX_SERIES,
         latency_native_histograms: bool = False) -> Optional[OtelInstrumentation]:
    """The OpenTelemetry-named metrics; None when the registry has them already."""
    try:
        return OtelInstrumentation(metric_namespace, metric_subsystem, registry, max_series,
                                   native=latency_native_histograms)
    except ValueError as e:
        if not _metrics._is_duplicated_time_series(e):
            raise
        return None
