"""The names of the series fastprom's HTTP metrics make in Prometheus, for
each naming scheme, as the rule file and the dashboard query them."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .. import _core

_SELECTOR = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*'
                       r'(,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*)*)?$')
_NAME_PART = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Names:
    """Series names and labels of one instrumented app.

    ``metric_names`` is ``"prometheus-fastapi-instrumentator"`` (the default
    metrics) or ``"otel"``; ``namespace`` and ``subsystem`` are those given to
    ``Instrumentator.instrument()``; ``selector`` is label matchers added to
    every selector (``job="api"``), empty for all jobs.
    """

    metric_names: str = "prometheus-fastapi-instrumentator"
    namespace: str = ""
    subsystem: str = ""
    selector: str = ""
    native_histograms: bool = False
    inprogress_name: str = "http_requests_inprogress"

    def __post_init__(self) -> None:
        from ..asgi.otel import check_metric_names

        check_metric_names(self.metric_names)
        for what, part in (("namespace", self.namespace), ("subsystem", self.subsystem),
                           ("inprogress name", self.inprogress_name)):
            if part and not _NAME_PART.match(part):
                raise ValueError(f"the {what} must be made of letters, digits and _ (not starting with a "
                                 f"digit), got {part!r}")
        if not _SELECTOR.match(self.selector):
            raise ValueError(f"the selector must be comma-separated label matchers such as job=\"api\", "
                             f"got {self.selector!r}")

    @property
    def otel(self) -> bool:
        return self.metric_names == "otel"

    @property
    def prefix(self) -> str:
        """What namespace and subsystem put before every metric name."""
        return "".join(p + "_" for p in (self.namespace, self.subsystem) if p)

    @property
    def handler(self) -> str:
        """The route label."""
        return "http_route" if self.otel else "handler"

    @property
    def status(self) -> str:
        """The status label (``5xx`` or ``503``; ``5..`` matches both)."""
        return "http_response_status_code" if self.otel else "status"

    @property
    def method(self) -> str:
        return "http_request_method" if self.otel else "method"

    @property
    def duration(self) -> str:
        """The latency histogram with the route label."""
        base = "http_server_request_duration_seconds" if self.otel else "http_request_duration_seconds"
        return self.prefix + base

    @property
    def inprogress(self) -> str:
        """The in-progress gauge (PFI's takes no namespace, as there)."""
        return self.prefix + "http_server_active_requests" if self.otel else self.inprogress_name

    def sel(self, *matchers: str) -> str:
        """``{...}`` with the selector and these matchers."""
        parts = [m for m in (self.selector.strip(), *matchers) if m]
        return "{" + ", ".join(parts) + "}" if parts else ""

    def requests_rate(self, window: str, *matchers: str) -> str:
        """Per-second request rate over ``window``, per series."""
        if self.otel:
            if self.native_histograms:
                return f"histogram_count(rate({self.duration}{self.sel(*matchers)}[{window}]))"
            return f"rate({self.duration}_count{self.sel(*matchers)}[{window}])"
        return f"rate({self.prefix}http_requests_total{self.sel(*matchers)}[{window}])"

    def errors(self) -> str:
        """The matcher of 5xx responses."""
        return f'{self.status}=~"5.."'

    def bucket_rate(self, window: str, by: str) -> str:
        """``sum by (by, le)`` of the latency buckets' rate (classic), or the native histogram's."""
        if self.native_histograms:
            return f"sum by ({by}) (rate({self.duration}{self.sel()}[{window}]))"
        return f"sum by ({by}, le) (rate({self.duration}_bucket{self.sel()}[{window}]))"

    def latency_rate(self, window: str) -> str:
        """All requests in the latency histogram over ``window``, per series."""
        if self.native_histograms:
            return f"histogram_count(rate({self.duration}{self.sel()}[{window}]))"
        return f"rate({self.duration}_count{self.sel()}[{window}])"

    def fast_fraction(self, window: str, threshold: float, by: str) -> str:
        """The fraction of requests faster than ``threshold`` seconds over ``window``, by ``by``."""
        if self.native_histograms:
            return f"histogram_fraction(0, {threshold!r}, sum by ({by}) (rate({self.duration}{self.sel()}[{window}])))"
        le = _core.format_value(float(threshold))
        bucket = self.sel(f'le="{le}"')
        return (f"sum by ({by}) (rate({self.duration}_bucket{bucket}[{window}]))"
                f" / sum by ({by}) (rate({self.duration}_count{self.sel()}[{window}]))")

    def rule_name(self, level: str, metric: str, operation: str) -> str:
        """A recording rule's name, ``level:metric:operation``, with the prefix in the metric."""
        return f"{level}:{self.prefix}{metric}:{operation}"
