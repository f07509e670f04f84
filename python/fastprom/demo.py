"""Kept so that `import fastprom.demo` goes on working: it is
:mod:`fastprom.asgi.demo`, under this name too (the same module object)."""
import sys

from .asgi import demo as _module
from .asgi.demo import create_app, main  # noqa: F401  (for type checkers)

sys.modules[__name__] = _module
