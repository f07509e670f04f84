"""Kept so that `import fastprom.middleware` goes on working: it is
:mod:`fastprom.asgi.middleware`, under this name too (the same module object)."""
import sys

from .asgi import middleware as _module
from .asgi.middleware import PrometheusInstrumentatorMiddleware  # noqa: F401  (for type checkers)

sys.modules[__name__] = _module
