"""The HTTP feature: the ASGI middleware, route templates, the
instrumentation functions and :class:`Instrumentator` (the interface of
prometheus-fastapi-instrumentator), and the demo app."""
from . import instrumentations
from .instrumentations import DefaultInstrumentation, Info
from .instrumentator import Instrumentator, PrometheusFastApiInstrumentator
from .middleware import PrometheusInstrumentatorMiddleware

__all__ = ["Instrumentator", "PrometheusFastApiInstrumentator", "PrometheusInstrumentatorMiddleware",
           "DefaultInstrumentation", "Info", "instrumentations"]
