"""Kept so that `import fastprom.routing` goes on working: it is
:mod:`fastprom.asgi.routing`, under this name too (the same module object)."""
import sys

from .asgi import routing as _module
from .asgi.routing import RouteResolver, match_template, route_key  # noqa: F401  (for type checkers)

sys.modules[__name__] = _module
