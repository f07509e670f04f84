"""Metric families, the objects custom collectors yield.

Shaped like prometheus_client's ``metrics_core`` so that a custom collector
written for it works unchanged.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import validation
from .errors import InvalidMetricError
from .samples import Exemplar, NativeHistogram, Sample, Timestamp

METRIC_NAME_RE = validation.METRIC_NAME_RE
LABEL_NAME_RE = validation.METRIC_LABEL_NAME_RE

METRIC_TYPES = (
    "counter", "gauge", "summary", "histogram", "gaugehistogram", "unknown", "info", "stateset",
)

_Ts = Optional[Union[float, Timestamp]]


class Metric:
    """A metric family and its samples, as yielded by ``collect()``."""

    def __init__(self, name: str, documentation: str, typ: str, unit: str = "") -> None:
        if unit and not name.endswith("_" + unit):
            name += "_" + unit
        try:
            validation._validate_metric_name(name)
        except ValueError as e:
            raise InvalidMetricError(str(e)) from None
        if typ == "untyped":  # the text format's name for it
            typ = "unknown"
        if typ not in METRIC_TYPES:
            raise InvalidMetricError(f"Invalid metric type: {typ} ({name}: one of {METRIC_TYPES})")
        self.name: str = name
        self.documentation: str = documentation
        self.unit: str = unit
        self.type: str = typ
        self.samples: List[Sample] = []

    def add_sample(self, name: str, labels: Dict[str, str], value: float, timestamp: _Ts = None,
                   exemplar: Optional[Exemplar] = None, native_histogram: Optional[NativeHistogram] = None) -> None:
        """Adds a sample; ``name`` is the full sample name (with any suffix)."""
        self.samples.append(Sample(name, labels, value, timestamp, exemplar, native_histogram))

    def _restricted_metric(self, names: Iterable[str]) -> Optional["Metric"]:
        """The family with only the samples of these names, or None (as
        prometheus_client builds it, without its unit)."""
        samples = [s for s in self.samples if s.name in names]
        if samples:
            m = Metric(self.name, self.documentation, self.type)
            m.samples = samples
            return m
        return None

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Metric) and self.name == other.name
                and self.documentation == other.documentation and self.type == other.type
                and self.unit == other.unit and self.samples == other.samples)

    def __repr__(self) -> str:
        return (f"Metric({self.name!r}, {self.documentation!r}, {self.type!r}, {self.unit!r}, "
                f"{self.samples!r})")


def _labelled(labels: Optional[Iterable[str]], value: object, what: str = "value") -> Tuple[str, ...]:
    """The label names of a family built with ``labels`` or with ``value`` (one series), not both."""
    if labels is not None and value is not None:
        raise ValueError(f"Can only specify at most one of {what} and labels.")
    return tuple(labels or ())


class UnknownMetricFamily(Metric):
    """A family of untyped samples."""

    def __init__(self, name: str, documentation: str, value: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None, unit: str = "") -> None:
        super().__init__(name, documentation, "unknown", unit)
        self._labelnames = _labelled(labels, value)
        if value is not None:
            self.add_metric([], value)

    def add_metric(self, labels: Sequence[str], value: float, timestamp: _Ts = None) -> None:
        self.samples.append(Sample(self.name, dict(zip(self._labelnames, labels)), value, timestamp))


UntypedMetricFamily = UnknownMetricFamily


class CounterMetricFamily(Metric):
    """A counter family; a trailing ``_total`` on the name is dropped."""

    def __init__(self, name: str, documentation: str, value: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None, created: Optional[float] = None,
                 unit: str = "", exemplar: Optional[Exemplar] = None) -> None:
        if name.endswith("_total"):
            name = name[:-6]
        super().__init__(name, documentation, "counter", unit)
        self._labelnames = _labelled(labels, value)
        if value is not None:
            self.add_metric([], value, created, exemplar=exemplar)

    def add_metric(self, labels: Sequence[str], value: float, created: Optional[float] = None,
                   timestamp: _Ts = None, exemplar: Optional[Exemplar] = None) -> None:
        lv = dict(zip(self._labelnames, labels))
        self.samples.append(Sample(self.name + "_total", lv, value, timestamp, exemplar))
        if created is not None:
            self.samples.append(Sample(self.name + "_created", lv, created, timestamp))


class GaugeMetricFamily(Metric):
    """A gauge family."""

    def __init__(self, name: str, documentation: str, value: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None, unit: str = "") -> None:
        super().__init__(name, documentation, "gauge", unit)
        self._labelnames = _labelled(labels, value)
        if value is not None:
            self.add_metric([], value)

    def add_metric(self, labels: Sequence[str], value: float, timestamp: _Ts = None) -> None:
        self.samples.append(Sample(self.name, dict(zip(self._labelnames, labels)), value, timestamp))


class SummaryMetricFamily(Metric):
    """A summary family (count and sum)."""

    def __init__(self, name: str, documentation: str, count_value: Optional[int] = None,
                 sum_value: Optional[float] = None, labels: Optional[Sequence[str]] = None,
                 unit: str = "") -> None:
        super().__init__(name, documentation, "summary", unit)
        if (sum_value is None) != (count_value is None):
            raise ValueError("count_value and sum_value must be provided together.")
        self._labelnames = _labelled(labels, count_value)
        if count_value is not None and sum_value is not None:
            self.add_metric([], count_value, sum_value)

    def add_metric(self, labels: Sequence[str], count_value: int, sum_value: float,
                   timestamp: _Ts = None) -> None:
        lv = dict(zip(self._labelnames, labels))
        self.samples.append(Sample(self.name + "_count", lv, count_value, timestamp))
        self.samples.append(Sample(self.name + "_sum", lv, sum_value, timestamp))


_Bucket = Union[Tuple[str, float], Tuple[str, float, Exemplar]]


class HistogramMetricFamily(Metric):
    """A histogram family; buckets are (upper bound, cumulative count) pairs,
    or (upper bound, cumulative count, exemplar) triples, sorted, the last
    one ``+Inf``."""

    def __init__(self, name: str, documentation: str, buckets: Optional[Sequence[_Bucket]] = None,
                 sum_value: Optional[float] = None, labels: Optional[Sequence[str]] = None,
                 unit: str = "") -> None:
        super().__init__(name, documentation, "histogram", unit)
        if sum_value is not None and buckets is None:
            raise ValueError("sum value cannot be provided without buckets.")
        self._labelnames = _labelled(labels, buckets, "buckets")
        if buckets is not None:
            self.add_metric([], buckets, sum_value)

    def add_metric(self, labels: Sequence[str], buckets: Sequence[_Bucket], sum_value: Optional[float],
                   timestamp: _Ts = None) -> None:
        """Adds one series: its buckets, then ``_count`` (the ``+Inf``
        bucket's count) and ``_sum`` when ``sum_value`` is given and no
        bucket bound is negative."""
        lv = dict(zip(self._labelnames, labels))
        for b in buckets:
            bound, count = b[0], b[1]
            exemplar = b[2] if len(b) == 3 else None  # type: ignore[misc]
            self.samples.append(Sample(self.name + "_bucket", dict(lv, le=bound), count, timestamp, exemplar))
        # A histogram with negative buckets has no sum, and so no count either.
        if float(buckets[0][0]) >= 0 and sum_value is not None:
            self.samples.append(Sample(self.name + "_count", lv, buckets[-1][1], timestamp))
            self.samples.append(Sample(self.name + "_sum", lv, sum_value, timestamp))


class GaugeHistogramMetricFamily(Metric):
    """A gauge histogram family; buckets are (upper bound, count) pairs,
    sorted, the last one ``+Inf``."""

    def __init__(self, name: str, documentation: str,
                 buckets: Optional[Sequence[Tuple[str, float]]] = None,
                 gsum_value: Optional[float] = None, labels: Optional[Sequence[str]] = None,
                 unit: str = "") -> None:
        super().__init__(name, documentation, "gaugehistogram", unit)
        self._labelnames = _labelled(labels, buckets, "buckets")
        if buckets is not None:
            self.add_metric([], buckets, gsum_value)

    def add_metric(self, labels: Sequence[str], buckets: Sequence[Tuple[str, float]],
                   gsum_value: Optional[float], timestamp: _Ts = None) -> None:
        """Adds one series: its buckets, ``_gcount`` (the ``+Inf`` bucket's
        count) and ``_gsum``.  A ``gsum_value`` of None fails at exposition,
        as in prometheus_client."""
        lv = dict(zip(self._labelnames, labels))
        for bound, count in buckets:
            self.samples.append(Sample(self.name + "_bucket", dict(lv, le=bound), count, timestamp))
        self.samples.append(Sample(self.name + "_gcount", lv, buckets[-1][1], timestamp))
        self.samples.append(Sample(self.name + "_gsum", lv, gsum_value, timestamp))  # type: ignore[arg-type]


class InfoMetricFamily(Metric):
    """An info family: a constant 1 with informational labels."""

    def __init__(self, name: str, documentation: str, value: Optional[Dict[str, str]] = None,
                 labels: Optional[Sequence[str]] = None) -> None:
        super().__init__(name, documentation, "info")
        self._labelnames = _labelled(labels, value)
        if value is not None:
            self.add_metric([], value)

    def add_metric(self, labels: Sequence[str], value: Dict[str, str], timestamp: _Ts = None) -> None:
        lv = dict(zip(self._labelnames, labels))
        lv.update(value)
        self.samples.append(Sample(self.name + "_info", lv, 1, timestamp))


class StateSetMetricFamily(Metric):
    """A state set family: one sample per state, 1 for the current ones."""

    def __init__(self, name: str, documentation: str, value: Optional[Dict[str, bool]] = None,
                 labels: Optional[Sequence[str]] = None) -> None:
        super().__init__(name, documentation, "stateset")
        self._labelnames = _labelled(labels, value)
        if value is not None:
            self.add_metric([], value)

    def add_metric(self, labels: Sequence[str], value: Dict[str, bool], timestamp: _Ts = None) -> None:
        lv = dict(zip(self._labelnames, labels))
        for state, enabled in sorted(value.items()):
            self.samples.append(Sample(self.name, dict(lv, **{self.name: state}), 1 if enabled else 0, timestamp))


def iter_samples(families: Iterable[Metric]) -> Iterable[Sample]:
    """Flattens families into their samples."""
    for f in families:
        yield from f.samples
