"""Kept so that `import fastprom.instrumentator` goes on working: it is
:mod:`fastprom.asgi.instrumentator`, under this name too (the same module object)."""
import sys

from .asgi import instrumentator as _module
from .asgi.instrumentator import Instrumentator, PrometheusFastApiInstrumentator  # noqa: F401  (for type checkers)

sys.modules[__name__] = _module
