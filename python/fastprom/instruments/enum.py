"""Enum: which of a set of states is current (a state set)."""
from __future__ import annotations

from typing import List, Optional, Sequence

from ..errors import InvalidMetricError
from ..metrics_core import Metric
from ..registry import REGISTRY, CollectorRegistry
from ._base import _full_name, _PyParent


class Enum(_PyParent):
    """Which of a set of states is current: ``e.state("running")``; the
    first state is current until another is set."""

    _type = "stateset"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None, states: Optional[Sequence[str]] = None, *,
                 max_series: Optional[int] = None) -> None:
        full = _full_name(name, namespace, subsystem, unit, "stateset")
        if name in labelnames or full in labelnames:
            raise InvalidMetricError(f"Overlapping labels for Enum metric: {name}")
        if not states:
            raise InvalidMetricError(f"No states provided for Enum metric: {name}")
        if len(set(states)) != len(states) or not all(isinstance(s, str) for s in states):
            raise InvalidMetricError(f"{full}: states must be distinct str, got {list(states)}")
        self._states = list(states)
        self._state = 0
        super().__init__(name, documentation, labelnames, namespace, subsystem, unit, registry,
                         max_series=max_series)

    def _init_value(self) -> None:
        self._state = 0

    def state(self, state: str) -> None:
        """Makes ``state`` the current one."""
        self._raise_if_not_observable()
        try:
            idx = self._states.index(state)
        except ValueError:
            raise ValueError(f"{state!r} is not in list ({self._name}: unknown state {state!r}; "
                             f"one of {self._states})") from None
        self._state = idx

    def collect(self) -> List[Metric]:
        """The family and its samples: one per state, 1 for the current one."""
        m = Metric(self._name, self._documentation, "stateset")
        for t in self._targets():
            labels = dict(zip(self._labelnames, t._labelvalues))
            for i, s in enumerate(self._states):
                m.add_sample(self._name, dict(labels, **{self._name: s}), 1.0 if i == t._state else 0.0)
        return [m]
