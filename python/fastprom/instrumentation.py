"""Kept so that code written for prometheus-fastapi-instrumentator's module
layout (`from ....instrumentation import PrometheusFastApiInstrumentator`) works
with the package name changed: it is :mod:`fastprom.asgi.instrumentator`."""
import sys

from .asgi import instrumentator as _module
from .asgi.instrumentator import Instrumentator, PrometheusFastApiInstrumentator  # noqa: F401  (for type checkers)

sys.modules[__name__] = _module
