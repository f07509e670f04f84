"""Info: key-value information about the target."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

from ..errors import InvalidMetricError
from ..metrics_core import LABEL_NAME_RE, Metric
from ..registry import REGISTRY, CollectorRegistry
from ._base import _PyParent


class Info(_PyParent):
    """Key-value information about the target, e.g. a version: ``i.info({"version": "1.2"})``."""

    _type = "info"
    _suffix = "_info"

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None) -> None:
        if unit:
            raise InvalidMetricError(f"{name}: an info metric has no unit")
        self._value: Dict[str, str] = {}
        super().__init__(name, documentation, labelnames, namespace, subsystem, unit, registry)

    def _init_value(self) -> None:
        self._value = {}

    def info(self, val: Dict[str, str]) -> None:
        """Sets the info labels."""
        self._check_unlabelled()
        if not isinstance(val, dict):
            raise TypeError(f"{self._name}: info() needs a dict of str to str")
        clash = set(val) & set(self._labelnames)
        if clash:
            raise ValueError(f"{self._name}: info keys overlap the label names: {sorted(clash)}")
        for k, v in val.items():
            if not isinstance(k, str) or not LABEL_NAME_RE.match(k) or k.startswith("__"):
                raise ValueError(f"{self._name}: invalid info label name {k!r}")
            if not isinstance(v, str):
                raise ValueError(f"{self._name}: info label values must be str, got {v!r} for {k!r}")
        with self._lock:
            self._value = dict(val)

    def collect(self) -> List[Metric]:
        m = Metric(self._name, self._documentation, "info")
        for t in self._targets():
            labels = dict(zip(self._labelnames, t._labelvalues))
            labels.update(t._value)
            m.add_sample(self._name + "_info", labels, 1.0)
        return [m]
