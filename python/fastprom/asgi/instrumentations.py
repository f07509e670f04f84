"""Instrumentation functions for :class:`fastprom.Instrumentator`, with the
names, arguments and output of prometheus-fastapi-instrumentator's
``metrics`` module, so ``from fastprom import metrics`` is a drop-in.

Each function creates its metrics and returns a callable taking an
:class:`Info`.  As in prometheus-fastapi-instrumentator, a function whose
metrics are in the registry already (the same names) returns None instead,
and ``Instrumentator.add(None)`` adds nothing: a metric added twice is
recorded once.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

from .. import _core
from ..bridge import registry_for
from ..errors import DuplicateTimeseries
from ..instruments import DEFAULT_BUCKETS, Counter, Histogram, Summary
from ..registry import REGISTRY, CollectorRegistry

HIGHR_BUCKETS: Tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60,
)
LOWR_BUCKETS: Tuple[float, ...] = (0.1, 0.5, 1)

#: The series limit of every metric these functions make (``max_series=``
#: of each, ``None`` for none): label sets past it are counted under the
#: series whose labels are all ``fastprom_overflow``, with a warning and
#: ``fastprom_series_limited_total{metric=...}``.  With the default label
#: values (routes, grouped statuses, standard methods) an app needs
#: ``routes x methods x statuses`` series; 10,000 is far above that, and far
#: below what an unbounded label (raw paths with
#: ``should_group_untemplated=False``) would make.
DEFAULT_MAX_SERIES: int = 10_000


class Info:
    """What an instrumentation function learns about one request.

    ``request`` and ``response`` are Starlette objects (the response carries
    the status and headers, and the body only for ``body_handlers``).
    """

    def __init__(self, request: Any, response: Any, method: str, modified_handler: str,
                 modified_status: str, modified_duration: float,
                 modified_duration_without_streaming: float = 0.0) -> None:
        self.request = request
        self.response = response
        self.method = method
        self.modified_handler = modified_handler
        self.modified_status = modified_status
        self.modified_duration = modified_duration
        self.modified_duration_without_streaming = modified_duration_without_streaming


def _registry(registry: Any) -> Any:
    """Our registry for ``registry``, which may be a prometheus_client one."""
    if registry is None or isinstance(registry, CollectorRegistry):
        return registry if registry is not None else REGISTRY
    return registry_for(registry)


def _is_duplicated_time_series(error: ValueError) -> bool:
    """True when ``error`` is a registry's refusal of names already taken
    (fastprom's and prometheus_client's ``DuplicateTimeseries`` both say so;
    the spelling "time series" is matched too).  The name is
    prometheus-fastapi-instrumentator's, whose test suite calls it."""
    text = str(error.args[0]) if error.args else ""
    return any(m in text for m in ("Duplicated timeseries in CollectorRegistry:",
                                   "Duplicated time series in CollectorRegistry:"))


def _build_label_attribute_names(should_include_handler: bool, should_include_method: bool,
                                 should_include_status: bool) -> Tuple[List[str], List[str]]:
    """The label names a metric function uses, in order (handler, method,
    status), and the :class:`Info` attributes their values come from.  The
    name is prometheus-fastapi-instrumentator's, whose test suite calls it."""
    names = [n for n, on in (("handler", should_include_handler), ("method", should_include_method),
                             ("status", should_include_status)) if on]
    return names, [_ATTRS[n] for n in names]


def _new(cls: Type[Any], name: str, doc: str, labelnames: Sequence[str], namespace: str, subsystem: str,
         registry: Any, **kw: Any) -> Any:
    """Creates a metric; raises DuplicateTimeseries when its names are taken."""
    return cls(name, doc, labelnames, namespace=namespace, subsystem=subsystem, registry=_registry(registry), **kw)


def _metric(cls: Type[Any], name: str, doc: str, labelnames: Sequence[str], namespace: str, subsystem: str,
            registry: Any, **kw: Any) -> Any:
    """Creates a metric, or returns the one already registered under the same
    name with the same type and labels.  Only for the middleware's in-progress
    gauge (two apps in one process share it; PFI fails there); the metric
    functions skip a duplicate instead."""
    registry = _registry(registry)
    try:
        return cls(name, doc, labelnames, namespace=namespace, subsystem=subsystem, registry=registry, **kw)
    except DuplicateTimeseries:
        full = "_".join(p for p in (namespace, subsystem, name) if p)
        if cls is Counter and full.endswith("_total"):
            full = full[:-6]
        existing = registry._names.get(full)
        if (isinstance(existing, cls) and existing._labelnames == tuple(labelnames)
                and ("buckets" not in kw or existing._upper_bounds == _with_inf(kw["buckets"]))):
            return existing
        raise


def _with_inf(buckets: Sequence[Union[float, str]]) -> Tuple[float, ...]:
    bs = [float(b) for b in buckets]
    if not bs or bs[-1] != float("inf"):
        bs.append(float("inf"))
    return tuple(bs)


_ATTRS = {"handler": "modified_handler", "method": "method", "status": "modified_status"}


def _labels(handler: bool, method: bool, status: bool, custom_labels: Dict[str, str]) -> List[str]:
    return _build_label_attribute_names(handler, method, status)[0] + list(custom_labels)


def _values(names: Sequence[str], info: Info, custom_labels: Dict[str, str]) -> List[str]:
    return [getattr(info, _ATTRS[n]) if n in _ATTRS else str(custom_labels[n]) for n in names]


def _content_length(headers: Any) -> int:
    """Content-Length from a header mapping, 0 when absent or malformed: the
    same parser (in C) as the one-call path reads ASGI headers with."""
    if headers is None:
        return 0
    return _core.content_length(headers.get("Content-Length"))


def _closure(cls: Type[Any], metric_name: str, metric_doc: str, namespace: str, subsystem: str,
             handler: bool, method: bool, status: bool, registry: Any, custom_labels: Optional[Dict[str, str]],
             value: Callable[[Info], float], max_series: Optional[int] = DEFAULT_MAX_SERIES,
             **kw: Any) -> Optional[Callable[[Info], None]]:
    """Creates the metric and returns the function that records
    ``value(info)`` into the child for the request's labels; None when the
    registry has the metric's names already."""
    custom = dict(custom_labels or {})
    names = _labels(handler, method, status, custom)
    try:
        metric = _new(cls, metric_name, metric_doc, names, namespace, subsystem, registry, max_series=max_series,
                      **kw)
    except ValueError as e:
        if not _is_duplicated_time_series(e):
            raise
        return None
    counts = isinstance(metric, Counter)

    def instrumentation(info: Info) -> None:
        target = metric.labels(*_values(names, info, custom)) if names else metric
        if counts:
            target.inc(value(info))
        else:
            target.observe(value(info))
    return instrumentation


def _request_length(info: Info) -> int:
    return _content_length(info.request.headers)


def _response_length(info: Info) -> int:
    return _content_length(getattr(info.response, "headers", None))


def latency(metric_name: str = "http_request_duration_seconds",
            metric_doc: str = "Duration of HTTP requests in seconds",
            metric_namespace: str = "", metric_subsystem: str = "",
            should_include_handler: bool = True, should_include_method: bool = True,
            should_include_status: bool = True, should_exclude_streaming_duration: bool = False,
            buckets: Sequence[Union[float, str]] = DEFAULT_BUCKETS, registry: Any = REGISTRY,
            custom_labels: Optional[Dict[str, str]] = None, *,
            max_series: Optional[int] = DEFAULT_MAX_SERIES) -> Optional[Callable[[Info], None]]:
    """A histogram of request durations in seconds."""
    def duration(i: Info) -> float:
        return i.modified_duration_without_streaming if should_exclude_streaming_duration else i.modified_duration
    return _closure(Histogram, metric_name, metric_doc, metric_namespace, metric_subsystem, should_include_handler,
                    should_include_method, should_include_status, registry, custom_labels, duration,
                    max_series, buckets=[float(b) for b in buckets])


def request_size(metric_name: str = "http_request_size_bytes", metric_doc: str = "Content bytes of requests.",
                 metric_namespace: str = "", metric_subsystem: str = "",
                 should_include_handler: bool = True, should_include_method: bool = True,
                 should_include_status: bool = True, registry: Any = REGISTRY,
                 custom_labels: Optional[Dict[str, str]] = None, *,
                 max_series: Optional[int] = DEFAULT_MAX_SERIES) -> Optional[Callable[[Info], None]]:
    """A summary of request Content-Length headers (0 when absent)."""
    return _closure(Summary, metric_name, metric_doc, metric_namespace, metric_subsystem, should_include_handler,
                    should_include_method, should_include_status, registry, custom_labels, _request_length,
                    max_series)


def response_size(metric_name: str = "http_response_size_bytes", metric_doc: str = "Content bytes of responses.",
                  metric_namespace: str = "", metric_subsystem: str = "",
                  should_include_handler: bool = True, should_include_method: bool = True,
                  should_include_status: bool = True, registry: Any = REGISTRY,
                  custom_labels: Optional[Dict[str, str]] = None, *,
                  max_series: Optional[int] = DEFAULT_MAX_SERIES) -> Optional[Callable[[Info], None]]:
    """A summary of response Content-Length headers (0 when absent, e.g. streaming)."""
    return _closure(Summary, metric_name, metric_doc, metric_namespace, metric_subsystem, should_include_handler,
                    should_include_method, should_include_status, registry, custom_labels, _response_length,
                    max_series)


def combined_size(metric_name: str = "http_combined_size_bytes",
                  metric_doc: str = "Content bytes of requests and responses.",
                  metric_namespace: str = "", metric_subsystem: str = "",
                  should_include_handler: bool = True, should_include_method: bool = True,
                  should_include_status: bool = True, registry: Any = REGISTRY,
                  custom_labels: Optional[Dict[str, str]] = None, *,
                  max_series: Optional[int] = DEFAULT_MAX_SERIES) -> Optional[Callable[[Info], None]]:
    """A summary of request plus response Content-Length."""
    return _closure(Summary, metric_name, metric_doc, metric_namespace, metric_subsystem, should_include_handler,
                    should_include_method, should_include_status, registry, custom_labels,
                    lambda i: _request_length(i) + _response_length(i), max_series)


def requests(metric_name: str = "http_requests_total",
             metric_doc: str = "Total number of requests by method, status and handler.",
             metric_namespace: str = "", metric_subsystem: str = "",
             should_include_handler: bool = True, should_include_method: bool = True,
             should_include_status: bool = True, registry: Any = REGISTRY,
             custom_labels: Optional[Dict[str, str]] = None, *,
             max_series: Optional[int] = DEFAULT_MAX_SERIES) -> Optional[Callable[[Info], None]]:
    """A counter of requests."""
    return _closure(Counter, metric_name, metric_doc, metric_namespace, metric_subsystem, should_include_handler,
                    should_include_method, should_include_status, registry, custom_labels, lambda i: 1, max_series)


#: The bucket factor of the latency histograms' native buckets, when asked for.
NATIVE_BUCKET_FACTOR = 1.1


class DefaultInstrumentation:
    """The default metrics of prometheus-fastapi-instrumentator, recorded with
    one call into C per request (:meth:`record`).  Calling it with an
    :class:`Info` does the same from an Info object."""

    def __init__(self, namespace: str, subsystem: str, only_2xx_highr: bool, exclude_streaming: bool,
                 highr_buckets: Sequence[Union[float, str]], lowr_buckets: Sequence[Union[float, str]],
                 registry: Any, custom_labels: Dict[str, str],
                 max_series: Optional[int] = DEFAULT_MAX_SERIES, native: bool = False) -> None:
        extra = tuple(custom_labels)
        # Native buckets beside the classic ones (client_golang's usual factor).
        nh: Dict[str, Any] = {"native_histogram_bucket_factor": NATIVE_BUCKET_FACTOR} if native else {}
        extra_values = tuple(str(v) for v in custom_labels.values())
        ns, sub = namespace, subsystem
        self.total = _new(Counter, "http_requests_total",
                          "Total number of requests by method, status and handler.",
                          ("method", "status", "handler") + extra, ns, sub, registry,
                          max_series=max_series)
        self.in_size = _new(Summary, "http_request_size_bytes",
                            "Content length of incoming requests by handler. Only value of header is respected. "
                            "Otherwise ignored. No percentile calculated. ", ("handler",) + extra, ns, sub, registry,
                            max_series=max_series)
        self.out_size = _new(Summary, "http_response_size_bytes",
                             "Content length of outgoing responses by handler. Only value of header is "
                             "respected. Otherwise ignored. No percentile calculated. ",
                             ("handler",) + extra, ns, sub, registry, max_series=max_series)
        self.highr = _new(Histogram, "http_request_duration_highr_seconds",
                          "Latency with many buckets but no API specific labels. Made for more accurate "
                          "percentile calculations. ", (), ns, sub, registry, max_series=max_series,
                          buckets=[float(b) for b in highr_buckets], **nh)
        self.lowr = _new(Histogram, "http_request_duration_seconds",
                         "Latency with only few buckets by handler. Made to be only used if aggregation by "
                         "handler is important. ", ("method", "handler") + extra, ns, sub, registry,
                         max_series=max_series, buckets=[float(b) for b in lowr_buckets], **nh)
        self.exclude_streaming = exclude_streaming

        # The recorder owns its cache of children; it creates series through
        # the store and sees remove() and clear() at the next request.
        self._recorder = _core.HttpRecorder(self.total, self.in_size, self.out_size, self.lowr, self.highr,
                                            dict(zip(extra, extra_values)), only_2xx_highr)
        #: record(handler, method, status, duration, request_size, response_size[, exemplar])
        self.record = self._recorder.record

    def __call__(self, info: Info) -> None:
        duration = info.modified_duration_without_streaming if self.exclude_streaming else info.modified_duration
        self.record(info.modified_handler, info.method, info.modified_status, duration,
                    _request_length(info), _response_length(info), getattr(info, "exemplar", None))


def default(metric_namespace: str = "", metric_subsystem: str = "",
            should_only_respect_2xx_for_highr: bool = False, should_exclude_streaming_duration: bool = False,
            latency_highr_buckets: Sequence[Union[float, str]] = HIGHR_BUCKETS,
            latency_lowr_buckets: Sequence[Union[float, str]] = LOWR_BUCKETS,
            registry: Any = REGISTRY,
            custom_labels: Optional[Dict[str, str]] = None, *,
            max_series: Optional[int] = DEFAULT_MAX_SERIES,
            latency_native_histograms: bool = False) -> Optional[DefaultInstrumentation]:
    """``http_requests_total``, ``http_request_size_bytes``, ``http_response_size_bytes``,
    ``http_request_duration_highr_seconds`` and ``http_request_duration_seconds``;
    None when the registry has them already (as in prometheus-fastapi-instrumentator,
    the ones created before the first duplicate stay registered).  With
    ``latency_native_histograms`` both latency histograms have native buckets
    too (factor 1.1), which Prometheus scrapes over protobuf."""
    try:
        return DefaultInstrumentation(metric_namespace, metric_subsystem, should_only_respect_2xx_for_highr,
                                      should_exclude_streaming_duration, latency_highr_buckets,
                                      latency_lowr_buckets, registry, dict(custom_labels or {}), max_series,
                                      latency_native_histograms)
    except ValueError as e:
        if not _is_duplicated_time_series(e):
            raise
        return None


__all__ = ["Info", "DEFAULT_MAX_SERIES", "latency", "request_size", "response_size", "combined_size", "requests",
           "default", "DefaultInstrumentation"]
