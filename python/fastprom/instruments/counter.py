"""Counter: a value that only goes up."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple, Type, Union

from .. import _core
from ..registry import REGISTRY, CollectorRegistry
from ._base import StoreMetric
from .context_managers import ExceptionCounter


class Counter(StoreMetric, _core.CounterBase):
    """A monotonically increasing value.

    >>> c = Counter("requests", "Requests handled", ["method"])
    >>> c.labels("GET").inc()

    ``inc(amount=1, exemplar=None)`` takes a non-negative amount (``+Inf``
    too, not NaN); an exemplar (dict of labels, at most 128 characters)
    appears in OpenMetrics output.  Rendered as ``<name>_total`` (a trailing
    ``_total`` in the name is dropped, as prometheus_client does).
    """

    _type = "counter"
    _core_type = _core.COUNTER
    _suffixes = ("_total", "_created")

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None, *, max_series: Optional[int] = None) -> None:
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry, max_series=max_series)

    def reset(self) -> None:
        """Sets the counter back to zero, with a new ``_created`` time: for a
        logical process that restarts inside a running one."""
        self._raise_if_not_observable()
        # The series is removed and made again (value 0, created now): any
        # child object of it finds the new series at its next update.
        _core.MetricBase.remove(self._parent, *(self._labelvalues or ()))
        self.inc(0)

    def count_exceptions(self, exception: Union[Type[BaseException], Tuple[Type[BaseException], ...]]
                         = Exception) -> ExceptionCounter:
        """Counts exceptions of the given type raised in a block or function
        (a context manager and a decorator)."""
        self._raise_if_not_observable()
        return ExceptionCounter(self, exception)
