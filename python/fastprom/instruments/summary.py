"""Summary: count and sum of observations, optionally quantiles over a
sliding window."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

from .. import _core
from ..errors import InvalidMetricError
from ..registry import REGISTRY, CollectorRegistry
from ._base import StoreMetric, _full_name
from .context_managers import Timer


def _check_quantiles(name: str, quantiles: Iterable[float], max_age_seconds: float,
                     age_buckets: int) -> Tuple[float, ...]:
    try:
        qs = [float(q) for q in quantiles]
    except (TypeError, ValueError):
        raise InvalidMetricError(f"{name}: quantiles must be numbers, got {quantiles!r}") from None
    bad = [q for q in qs if not 0.0 <= q <= 1.0]
    if bad:
        raise InvalidMetricError(f"{name}: quantiles must be between 0 and 1, got {bad}")
    dup = sorted({q for q in qs if qs.count(q) > 1})
    if dup:
        raise InvalidMetricError(f"{name}: duplicate quantiles {dup}")
    if len(qs) > _core.QUANTILE_MAX_COUNT:
        raise InvalidMetricError(f"{name}: at most {_core.QUANTILE_MAX_COUNT} quantiles, got {len(qs)}")
    if qs:
        most = _core.QUANTILE_MAX_AGE_BUCKETS
        if not (isinstance(age_buckets, int) and 1 <= age_buckets <= most):
            raise InvalidMetricError(f"{name}: age_buckets must be an integer from 1 to {most}, got {age_buckets!r}")
        if not (isinstance(max_age_seconds, (int, float))
                and _core.QUANTILE_MIN_PERIOD * age_buckets <= max_age_seconds <= _core.QUANTILE_MAX_AGE):
            raise InvalidMetricError(
                f"{name}: max_age_seconds must be at least 1 ms per age bucket and at most a year, "
                f"got {max_age_seconds!r}")
    return tuple(sorted(qs))



class Summary(StoreMetric, _core.SummaryBase):
    """Count and sum of observations, and optionally quantiles over a
    sliding time window.

    ``observe(amount)`` takes a number (not NaN; ``±Inf`` only without
    quantiles).  With ``quantiles=(0.5, 0.9, 0.99)`` each series also
    reports ``{quantile="0.5"}`` and so on, over the last
    ``max_age_seconds`` (in ``age_buckets`` steps: an observation stops
    counting between ``max_age_seconds * (1 - 1/age_buckets)`` and
    ``max_age_seconds`` after it was made).  Every reported quantile is
    within 1% (relative) of the true one for values whose magnitude is
    between 1e-9 and 1e12; smaller magnitudes count as 0, larger ones as
    1e12.  An empty window reports NaN.  The estimate is a log-bucketed
    sketch, so workers sharing a store report the quantiles of all their
    observations together.  ``quantiles=()`` (the default) keeps count and sum
    only, as prometheus_client does.
    """

    _type = "summary"
    _core_type = _core.SUMMARY
    _reserved_labelnames = ("quantile",)
    _suffixes = ("_count", "_sum", "_created")

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None, quantiles: Iterable[float] = (),
                 max_age_seconds: float = 600.0, age_buckets: int = 5, *, max_series: Optional[int] = None) -> None:
        full = _full_name(name, namespace, subsystem, unit, "summary")
        self._quantiles = _check_quantiles(full, quantiles, max_age_seconds, age_buckets)
        extra: Dict[str, Any] = {}
        if self._quantiles:
            extra = {"quantiles": self._quantiles, "max_age": float(max_age_seconds), "age_buckets": age_buckets}
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry, max_series=max_series,
                    **extra)

    def time(self) -> Timer:
        """Observes the duration of a block or function, in seconds (a
        context manager and a decorator)."""
        return Timer(self, "observe")
