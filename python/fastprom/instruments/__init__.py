"""The metric types, one module each, with prometheus_client's names and
behaviour.  Counter, Gauge, Histogram and Summary subclass C types from
``_core``: their updates and ``labels()`` run entirely in C."""
from ._base import MetricWrapperBase, disable_created_metrics, enable_created_metrics
from .context_managers import ExceptionCounter, InprogressTracker, Timer
from .counter import Counter
from .enum import Enum
from .gauge import Gauge
from .histogram import DEFAULT_BUCKETS, Histogram
from .info import Info
from .summary import Summary

__all__ = ["Counter", "Gauge", "Histogram", "Summary", "Info", "Enum", "DEFAULT_BUCKETS", "MetricWrapperBase",
           "Timer", "ExceptionCounter", "InprogressTracker", "disable_created_metrics", "enable_created_metrics"]
