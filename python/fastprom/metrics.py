"""prometheus-fastapi-instrumentator's `metrics` module, for code that does
`from fastprom import metrics`: it is :mod:`fastprom.asgi.instrumentations`,
under this name too (the same module object)."""
import sys

from .asgi import instrumentations as _module
from .asgi.instrumentations import Info, combined_size, default, latency, request_size, requests, response_size  # noqa: F401  (for type checkers)

sys.modules[__name__] = _module
