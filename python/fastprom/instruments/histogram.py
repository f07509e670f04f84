"""Histogram: observations counted in buckets, with their sum and count."""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Tuple

from .. import _core
from ..errors import InvalidMetricError
from ..registry import REGISTRY, CollectorRegistry
from ._base import INF, StoreMetric, _full_name, _Timer

DEFAULT_BUCKETS: Tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INF,
)


def _check_buckets(name: str, buckets: Iterable[float]) -> Tuple[float, ...]:
    try:
        bs = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise InvalidMetricError(f"{name}: buckets must be numbers, got {buckets!r}") from None
    if bs and bs[-1] != INF:
        bs.append(INF)
    if len(bs) < 2:
        raise InvalidMetricError(f"{name}: a histogram needs at least one bucket besides +Inf")
    for a, b in zip(bs, bs[1:]):
        if not a < b:
            raise InvalidMetricError(f"{name}: buckets must be sorted and distinct, got {a} before {b}")
    if any(math.isnan(b) or b == -INF for b in bs):
        raise InvalidMetricError(f"{name}: buckets must not be NaN or -Inf")
    return tuple(bs)


class Histogram(_core.HistogramBase, StoreMetric):
    """Counts observations in configurable buckets, with their sum and count.

    ``observe(amount, exemplar=None)`` takes a finite value; the rendered
    ``+Inf`` bucket always equals ``_count``.
    """

    _type = "histogram"
    _core_type = _core.HISTOGRAM
    _reserved_labels = ("le",)
    _suffixes = ("_bucket", "_count", "_sum", "_created")
    DEFAULT_BUCKETS = DEFAULT_BUCKETS

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None,
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        full = _full_name(name, namespace, subsystem, unit, "histogram")
        self._upper_bounds = _check_buckets(full, buckets)
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry,
                    self._upper_bounds)

    def time(self) -> _Timer:
        """Observes the duration of a block or function, in seconds."""
        return _Timer(self.observe)
