"""The metric types, families, registry and sample types in one place, at
prometheus_client's ``prometheus_client.core`` path: code that does
``from prometheus_client.core import GaugeMetricFamily, REGISTRY`` works
with ``fastprom.core``."""
from .errors import DuplicateTimeseries
from .instruments import Counter, Enum, Gauge, Histogram, Info, Summary
from .metrics_core import (CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily,
                           HistogramMetricFamily, InfoMetricFamily, Metric, StateSetMetricFamily,
                           SummaryMetricFamily, UnknownMetricFamily, UntypedMetricFamily)
from .registry import REGISTRY, CollectorRegistry
from .samples import BucketSpan, Exemplar, NativeHistogram, Sample, Timestamp

__all__ = (
    "BucketSpan", "CollectorRegistry", "Counter", "CounterMetricFamily", "DuplicateTimeseries", "Enum",
    "Exemplar", "Gauge", "GaugeHistogramMetricFamily", "GaugeMetricFamily", "Histogram",
    "HistogramMetricFamily", "Info", "InfoMetricFamily", "Metric", "NativeHistogram", "REGISTRY", "Sample",
    "StateSetMetricFamily", "Summary", "SummaryMetricFamily", "Timestamp", "UnknownMetricFamily",
    "UntypedMetricFamily",
)
