"""fastprom: Prometheus metrics with a lock-free C core.

The metric API follows prometheus_client's, so switching is a change of
import::

    from fastprom import Counter, Histogram, generate_latest
"""
from ._core import StoreFileError, StoreFullError, freeze_clock
from .instruments import (DEFAULT_BUCKETS, Counter, Enum, Gauge, Histogram, Info, Summary, disable_created_metrics,
                          enable_created_metrics)
from .collectors import (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, GCCollector, PlatformCollector,
                         ProcessCollector)
from .errors import DuplicateTimeseries, InvalidMetricError
from .exposition import (CONTENT_TYPE_LATEST, CONTENT_TYPE_PLAIN_0_0_4, CONTENT_TYPE_PLAIN_1_0_0,
                         OPENMETRICS_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, Exposition, Format, MetricsHandler,
                         basic_auth_handler, choose_encoder, default_handler, delete_from_gateway, generate_latest,
                         generate_openmetrics, generate_protobuf, instance_ip_grouping_key, make_asgi_app, make_wsgi_app, negotiate, negotiate_format,
                         passthrough_redirect_handler, push_to_gateway, pushadd_to_gateway, start_http_server,
                         start_wsgi_server, tls_auth_handler, write_to_textfile)
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
    "disable_created_metrics", "enable_created_metrics",
    "CollectorRegistry", "REGISTRY",
    "generate_latest", "generate_openmetrics", "generate_protobuf", "negotiate", "negotiate_format", "Format",
    "choose_encoder", "Exposition", "PROTOBUF_CONTENT_TYPE",
    "write_to_textfile", "CONTENT_TYPE_LATEST", "OPENMETRICS_CONTENT_TYPE",
    "CONTENT_TYPE_PLAIN_0_0_4", "CONTENT_TYPE_PLAIN_1_0_0",
    "make_wsgi_app", "make_asgi_app", "MetricsHandler", "start_http_server", "start_wsgi_server",
    "push_to_gateway", "pushadd_to_gateway", "delete_from_gateway", "instance_ip_grouping_key",
    "default_handler", "basic_auth_handler", "tls_auth_handler", "passthrough_redirect_handler",
    "Metric", "CounterMetricFamily", "GaugeMetricFamily", "SummaryMetricFamily", "HistogramMetricFamily",
    "GaugeHistogramMetricFamily", "InfoMetricFamily", "StateSetMetricFamily", "UnknownMetricFamily",
    "UntypedMetricFamily", "Sample", "Exemplar", "Timestamp",
    "ProcessCollector", "PlatformCollector", "GCCollector",
    "PROCESS_COLLECTOR", "PLATFORM_COLLECTOR", "GC_COLLECTOR",
    "InvalidMetricError", "DuplicateTimeseries", "StoreFullError", "StoreFileError", "freeze_clock",
    "Instrumentator", "PrometheusFastApiInstrumentator", "PrometheusInstrumentatorMiddleware", "metrics",
]
