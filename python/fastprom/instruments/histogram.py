"""Histogram: observations counted in buckets, with their sum and count."""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

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


def _number(name: str, what: str, v: Any, low: float, above: bool = False) -> float:
    """A finite number at least (or, with ``above``, more than) ``low``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidMetricError(f"{name}: {what} must be a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f) or f < low or (above and f == low):
        bound = f"above {low}" if above else f"at least {low}"
        raise InvalidMetricError(f"{name}: {what} must be a finite number {bound}, got {v!r}")
    return f


def _check_native(name: str, factor: Optional[float], zero_threshold: float, max_bucket_number: int,
                  min_reset_duration: float, max_zero_threshold: float) -> Dict[str, Any]:
    """The store's native settings, or nothing when native buckets are off."""
    if factor is None:
        return {}
    spec: Dict[str, Any] = {
        "native_factor": _number(name, "native_histogram_bucket_factor", factor, 1.0, above=True),
        "native_zero_threshold": _number(name, "native_histogram_zero_threshold", zero_threshold, 0.0),
        "native_min_reset": _number(name, "native_histogram_min_reset_duration", min_reset_duration, 0.0),
        "native_max_zero_threshold": _number(name, "native_histogram_max_zero_threshold", max_zero_threshold, 0.0),
    }
    most = _core.NATIVE_MAX_BUCKETS
    if (isinstance(max_bucket_number, bool) or not isinstance(max_bucket_number, int)
            or not 1 <= max_bucket_number <= most):
        raise InvalidMetricError(f"{name}: native_histogram_max_bucket_number must be an integer from 1 to {most} "
                                 f"(the store keeps a fixed block of buckets per series), got {max_bucket_number!r}")
    spec["native_max_buckets"] = max_bucket_number
    return spec


class Histogram(StoreMetric, _core.HistogramBase):
    """Counts observations in configurable buckets, with their sum and count.

    ``observe(amount, exemplar=None)`` takes a number (``±Inf`` too, not
    NaN); the rendered ``+Inf`` bucket always equals ``_count``.

    With ``native_histogram_bucket_factor`` (a number above 1) the histogram
    also keeps native (exponential) buckets, as client_golang's
    ``NativeHistogramBucketFactor`` and its companions: each bucket's upper
    bound is at most that factor times its lower bound.  Values within
    ``native_histogram_zero_threshold`` of 0 go to the zero bucket.  Past
    ``native_histogram_max_bucket_number`` buckets, the zero bucket is
    widened up to ``native_histogram_max_zero_threshold``, then the
    resolution is halved until the buckets fit.  The store is never reset:
    ``native_histogram_min_reset_duration`` is accepted (and checked) for
    client_golang compatibility only.  Native buckets are shown by the
    protobuf format; the text formats show the classic buckets, which are
    kept unless ``buckets=()`` is given (then only ``+Inf``, ``_count`` and
    ``_sum``).
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
                 buckets: Sequence[Union[float, str]] = DEFAULT_BUCKETS, *, max_series: Optional[int] = None,
                 native_histogram_bucket_factor: Optional[float] = None,
                 native_histogram_zero_threshold: float = _core.NATIVE_DEFAULT_ZERO_THRESHOLD,
                 native_histogram_max_bucket_number: int = 160,
                 native_histogram_min_reset_duration: float = 0.0,
                 native_histogram_max_zero_threshold: float = 0.0) -> None:
        full = _full_name(name, namespace, subsystem, unit, "histogram")
        native = _check_native(full, native_histogram_bucket_factor, native_histogram_zero_threshold,
                               native_histogram_max_bucket_number, native_histogram_min_reset_duration,
                               native_histogram_max_zero_threshold)
        #: The upper bounds, ending with +Inf (a tuple; prometheus_client keeps a list).
        if native and not isinstance(buckets, str) and len(tuple(buckets)) == 0:
            self._upper_bounds: Tuple[float, ...] = (INF,)  # native only, as client_golang's buckets=()
        else:
            self._upper_bounds = _check_buckets(full, buckets)
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry,
                    self._upper_bounds, max_series=max_series, **native)

    def _native_buckets(self) -> Optional[Dict[str, Any]]:
        """This series' native buckets as the store's walker reads them (what
        the protobuf format shows), or None without native buckets: a dict of
        ``schema``, ``zero_threshold``, ``zero_count``, ``count``, ``sum``,
        ``classic_count`` and, per side (``positive``, ``negative``), a pair of
        ``[(offset, length), ...]`` spans and bucket-count deltas."""
        return self._native()

    def time(self) -> Timer:
        """Observes the duration of a block or function, in seconds (a
        context manager and a decorator)."""
        return Timer(self, "observe")
