"""Two modules in one, for code written against either library:

- prometheus-fastapi-instrumentator's ``metrics`` module (``from fastprom
  import metrics``; ``metrics.latency()``, ``metrics.default()``, ...): every
  name of :mod:`fastprom.asgi.instrumentations`;
- prometheus_client's ``prometheus_client.metrics`` (``from
  fastprom.metrics import Counter, MetricWrapperBase``): the metric types
  and their helpers.

One name is in both: ``Info``.  Here it is the instrumentator's request
info class (what instrumentation functions receive); prometheus_client's
``Info`` metric is ``fastprom.Info`` (and ``fastprom.core.Info``).
"""
import sys
import types
from typing import Any

from .asgi import instrumentations as _instrumentations
from .asgi.instrumentations import (HIGHR_BUCKETS, LOWR_BUCKETS, DefaultInstrumentation, Info, combined_size,
                                    default, latency, request_size, requests, response_size)
from .exposition import floatToGoString
from .instruments import (Counter, Enum, ExceptionCounter, Gauge, Histogram, InprogressTracker, MetricWrapperBase,
                          Summary, Timer, disable_created_metrics, enable_created_metrics)
from .instruments import _base
from .metrics_core import Metric
from .registry import REGISTRY, Collector, CollectorRegistry
from .samples import Exemplar, Sample

INF = float("inf")

_get_use_created = _base._created_from_environment


def __getattr__(name: str) -> Any:
    # Names the instrumentator module gains later are found there too.
    try:
        return getattr(_instrumentations, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


class _Module(types.ModuleType):
    """``metrics._use_created`` reads and sets whether ``_created`` samples
    are shown, as assigning prometheus_client's module flag does."""

    @property
    def _use_created(self) -> bool:
        return _base.created_enabled()

    @_use_created.setter
    def _use_created(self, on: bool) -> None:
        (enable_created_metrics if on else disable_created_metrics)()


sys.modules[__name__].__class__ = _Module

__all__ = [
    # prometheus-fastapi-instrumentator's
    "Info", "latency", "request_size", "response_size", "combined_size", "requests", "default",
    "DefaultInstrumentation", "HIGHR_BUCKETS", "LOWR_BUCKETS",
    # prometheus_client's
    "Counter", "Gauge", "Histogram", "Summary", "Enum", "MetricWrapperBase", "Timer", "ExceptionCounter",
    "InprogressTracker", "disable_created_metrics", "enable_created_metrics", "CollectorRegistry", "REGISTRY",
    "Collector", "Metric", "Sample", "Exemplar", "INF", "floatToGoString",
]
