"""Histogram: observations counted in buckets, with their sum and count."""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Tuple, Union

from .. import _core
from ..errors import InvalidMetricError
from ..registry import REGISTRY, CollectorRegistry
from ._base import INF, StoreMetric, _full_name
from .context_managers import Timer

DEFAULT_BUCKETS: Tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INF,
)


def _check_buckets(name: str, buckets: Iterable[Union[float, str]]) -> Tuple[float, ...]:
    try:
        bs = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise InvalidMetricError(f"{name}: buckets must be numbers, got {buckets!r}") from None
    if any(math.isnan(b) for b in bs):
        raise InvalidMetricError(f"{name}: buckets must not be NaN")
    for a, b in zip(bs, bs[1:]):
        if not a < b:
            raise InvalidMetricError(f"Buckets not in sorted order ({name}: buckets must be sorted and "
                                     f"distinct, got {a} before {b})")
    if bs and bs[-1] != INF:
        bs.append(INF)
    if len(bs) < 2:
        raise InvalidMetricError(f"Must have at least two buckets ({name}: a histogram needs at least one "
                                 f"bucket besides +Inf)")
    if bs[0] == -INF:
        raise InvalidMetricError(f"{name}: buckets must not include -Inf")
    return tuple(bs)


class Histogram(StoreMetric, _core.HistogramBase):
    """Counts observations in configurable buckets, with their sum and count.

    ``observe(amount, exemplar=None)`` takes a number (``±Inf`` too, not
    NaN); the rendered ``+Inf`` bucket always equals ``_count``.
    """

    _type = "histogram"
    _core_type = _core.HISTOGRAM
    _reserved_labelnames = ("le",)
    _suffixes = ("_bucket", "_count", "_sum", "_created")
    DEFAULT_BUCKETS = DEFAULT_BUCKETS

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None,
                 buckets: Sequence[Union[float, str]] = DEFAULT_BUCKETS, *, max_series: Optional[int] = None) -> None:
        full = _full_name(name, namespace, subsystem, unit, "histogram")
        #: The upper bounds, ending with +Inf (a tuple; prometheus_client keeps a list).
        self._upper_bounds = _check_buckets(full, buckets)
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry,
                    self._upper_bounds, max_series=max_series)

    def time(self) -> Timer:
        """Observes the duration of a block or function, in seconds (a
        context manager and a decorator)."""
        return Timer(self, "observe")
