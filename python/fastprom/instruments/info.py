"""Info: key-value information about the target."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

from ..metrics_core import Metric
from ..registry import REGISTRY, CollectorRegistry
from ._base import _PyParent


class Info(_PyParent):
    """Key-value information about the target, e.g. a version: ``i.info({"version": "1.2"})``."""

    _type = "info"
    _suffix = "_info"

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None, *, max_series: Optional[int] = None) -> None:
        self._value: Dict[str, str] = {}
        super().__init__(name, documentation, labelnames, namespace, subsystem, unit, registry,
                         max_series=max_series)

    def _init_value(self) -> None:
        self._value = {}

    def info(self, val: Dict[str, str]) -> None:
        """Sets the info labels: a dict of str to str."""
        self._raise_if_not_observable()
        if not isinstance(val, dict):
            raise TypeError(f"{self._name}: info() needs a dict of str to str")
        if set(val) & set(self._labelnames):
            raise ValueError(f"Overlapping labels for Info metric, metric: {self._labelnames} child: {val}")
        if any(v is None for v in val.values()):
            raise ValueError("Label value cannot be None")
        for k, v in val.items():
            if not isinstance(k, str) or not k:
                raise ValueError(f"{self._name}: info label names must be non-empty str, got {k!r}")
            if not isinstance(v, str):
                raise ValueError(f"{self._name}: info label values must be str, got {v!r} for {k!r}")
        with self._lock:
            self._value = dict(val)

    def collect(self) -> List[Metric]:
        """The family and its samples."""
        m = Metric(self._name, self._documentation, "info")
        for t in self._targets():
            labels = dict(zip(self._labelnames, t._labelvalues))
            with t._lock:
                labels.update(t._value)
            m.add_sample(self._name + "_info", labels, 1.0)
        return [m]
