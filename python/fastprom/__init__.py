"""fastprom: Prometheus metrics with a lock-free C core.

The metric API follows prometheus_client's, so switching is a change of
import::

    from fastprom import Counter, Histogram, generate_latest
"""
from ._core import StoreFileError, StoreFullError, freeze_clock
from .instruments import DEFAULT_BUCKETS, Counter, Enum, Gauge, Histogram, Info, Summary
from .collectors import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, GCCollector, PlatformCollector, ProcessCollector
from .errors import DuplicateTimeseries, InvalidMetricError
from .exposition import (CONTENT_TYPE_LATEST, OPENMETRICS_CONTENT_TYPE, Exposition, choose_encoder,
                         generate_latest, generate_openmetrics, negotiate, write_to_textfile)
from .metrics_core import (CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily,
                           HistogramMetricFamily, InfoMetricFamily, Metric, StateSetMetricFamily,
                           SummaryMetricFamily, UnknownMetricFamily, UntypedMetricFamily)
from .registry import REGISTRY, CollectorRegistry
from . import instrumentator, metrics, middleware, routing
from .asgi import Instrumentator, PrometheusFastApiInstrumentator, PrometheusInstrumentatorMiddleware
from .samples import Exemplar, Sample, Timestamp

__version__ = "0.1.0"

__all__ = [
    "Counter", "Gauge", "Histogram", "Summary", "Info", "Enum", "DEFAULT_BUCKETS",
    "CollectorRegistry", "REGISTRY",
    "generate_latest", "generate_openmetrics", "negotiate", "choose_encoder", "Exposition",
    "write_to_textfile", "CONTENT_TYPE_LATEST", "OPENMETRICS_CONTENT_TYPE",
    "Metric", "CounterMetricFamily", "GaugeMetricFamily", "SummaryMetricFamily", "HistogramMetricFamily",
    "GaugeHistogramMetricFamily", "InfoMetricFamily", "StateSetMetricFamily", "UnknownMetricFamily",
    "UntypedMetricFamily", "Sample", "Exemplar", "Timestamp",
    "ProcessCollector", "PlatformCollector", "GCCollector",
    "PROCESS_COLLECTOR", "PLATFORM_COLLECTOR", "GC_COLLECTOR",
    "InvalidMetricError", "DuplicateTimeseries", "StoreFullError", "StoreFileError", "freeze_clock",
    "Instrumentator", "PrometheusFastApiInstrumentator", "PrometheusInstrumentatorMiddleware", "metrics",
]
