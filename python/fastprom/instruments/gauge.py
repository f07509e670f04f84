"""Gauge: a value that goes up and down."""
from __future__ import annotations

import time
from typing import Callable, Dict, Iterable, List, Literal, Optional, Sequence, Tuple

from .. import _core
from ..errors import InvalidMetricError
from ..metrics_core import Metric
from .._multiproc import track_per_process
from ..registry import REGISTRY, CollectorRegistry
from ._base import StoreMetric, _fastprom_registry
from .context_managers import InprogressTracker, Timer

MultiprocessMode = Literal["all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent",
                           "livemostrecent"]


class Gauge(StoreMetric, _core.GaugeBase):
    """A value that can go up and down.

    ``inc``/``dec``/``set`` run in C.  ``multiprocess_mode`` is accepted for
    compatibility with prometheus_client and recorded for multi-process use.
    """

    _type = "gauge"
    _core_type = _core.GAUGE
    _MODES = tuple(_core.MULTIPROCESS_MODES)

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None, multiprocess_mode: MultiprocessMode = "all", *,
                 max_series: Optional[int] = None) -> None:
        if multiprocess_mode not in self._MODES:
            raise InvalidMetricError(f"Invalid multiprocess mode: {multiprocess_mode} ({name}: one of "
                                     f"{self._MODES})")
        self._multiprocess_mode = multiprocess_mode
        registry = _fastprom_registry(registry)
        self._registry = registry
        # Shared with the children (they share this object's attributes):
        # the functions of set_function, by label values, and their parent.
        self._functions: Dict[Tuple[str, ...], Callable[[], float]] = {}
        self._parent = self
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry, max_series=max_series)
        if registry is not None and registry.shared_store() is not None:
            track_per_process(self)

    def _mpmode(self) -> int:
        return _core.MULTIPROCESS_MODES[self._multiprocess_mode]

    def set_to_current_time(self) -> None:
        """Sets the gauge to the current Unix time in seconds."""
        self.set(time.time())

    def track_inprogress(self) -> InprogressTracker:
        """Adds 1 while a block or function runs (a context manager and a decorator)."""
        self._raise_if_not_observable()
        return InprogressTracker(self)

    def time(self) -> Timer:
        """Sets the gauge to the duration of a block or function, in seconds
        (a context manager and a decorator)."""
        return Timer(self, "set")

    def set_function(self, f: Callable[[], float]) -> None:
        """Makes the gauge report ``f()`` at every scrape."""
        self._raise_if_not_observable()
        if not callable(f):
            raise TypeError(f"set_function needs a callable, got {f!r}")
        self.set(f())  # fails early
        self._functions[self._labelvalues or ()] = f
        if self._registry is not None:
            self._registry._add_pre_collect_hook(self._parent, self._parent._refresh_functions)

    def _refresh_functions(self) -> None:
        """Sets this gauge and its children that have a function to its value (on the parent)."""
        for key, f in list(self._functions.items()):
            (self.labels(*key) if key else self).set(f())

    def remove(self, *labelvalues: object) -> None:
        """Drops one child, and its function if it has one."""
        super().remove(*labelvalues)
        self._functions.pop(tuple(str(v) for v in labelvalues), None)

    def clear(self) -> None:
        """Drops every child, and their functions."""
        super().clear()
        for key in [k for k in self._functions if k]:
            del self._functions[key]

    def collect(self) -> List[Metric]:
        """The family, with the values of set_function read first."""
        if self._functions:
            self._parent._refresh_functions()
        return self._collect_now()
