"""Counter: a value that only goes up."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple, Type, Union

from .. import _core
from ..registry import REGISTRY, CollectorRegistry
from ._base import StoreMetric, _Around


class Counter(_core.CounterBase, StoreMetric):
    """A monotonically increasing value.

    >>> c = Counter("requests", "Requests handled", ["method"])
    >>> c.labels("GET").inc()

    ``inc(amount=1, exemplar=None)`` takes a non-negative finite amount; an
    exemplar (dict of labels, at most 128 characters) appears in OpenMetrics
    output.  Rendered as ``<name>_total`` (a trailing ``_total`` in the name
    is dropped, as prometheus_client does).
    """

    _type = "counter"
    _core_type = _core.COUNTER
    _suffixes = ("_total", "_created")

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None) -> None:
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry)

    def count_exceptions(self, exception: Union[Type[BaseException], Tuple[Type[BaseException], ...]]
                         = Exception) -> _Around:
        """Counts exceptions of the given type raised in a block or function."""
        def on_exit(exc: Optional[BaseException]) -> None:
            if isinstance(exc, exception):
                self.inc()
        return _Around(lambda: None, on_exit)
