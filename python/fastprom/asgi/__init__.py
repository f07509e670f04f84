"""The HTTP feature: the ASGI middleware, route templates, the
instrumentation functions and :class:`Instrumentator` (the interface of
prometheus-fastapi-instrumentator), and the demo app; also
:func:`make_asgi_app`, importable from here as from ``prometheus_client.asgi``."""
from ..exposition import make_asgi_app
from . import instrumentations
from .instrumentations import DefaultInstrumentation, Info
from .instrumentator import Instrumentator, PrometheusFastApiInstrumentator
from .middleware import PrometheusInstrumentatorMiddleware

__all__ = ["Instrumentator", "PrometheusFastApiInstrumentator", "PrometheusInstrumentatorMiddleware",
           "DefaultInstrumentation", "Info", "instrumentations", "make_asgi_app"]
