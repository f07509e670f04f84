"""Plain data types shared by collectors: samples, exemplars, timestamps,
with prometheus_client's names, fields and behaviour."""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Sequence, Union


class Timestamp:
    """A timestamp with nanosecond resolution: whole seconds and nanoseconds.

    ``str()`` gives ``sec.nnnnnnnnn`` (how OpenMetrics output writes it),
    ``float()`` the seconds; timestamps compare and order by time."""

    __slots__ = ("sec", "nsec")

    def __init__(self, sec: float, nsec: float) -> None:
        if nsec < 0 or nsec >= 1e9:
            raise ValueError(f"Invalid value for nanoseconds in Timestamp: {nsec}")
        if sec < 0:
            nsec = -nsec
        self.sec: int = int(sec)
        self.nsec: int = int(nsec)

    def __str__(self) -> str:
        return f"{self.sec}.{self.nsec:09d}"

    def __repr__(self) -> str:
        return f"Timestamp({self.sec}, {self.nsec})"

    def __float__(self) -> float:
        return float(self.sec) + float(self.nsec) / 1e9

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timestamp) and (self.sec, self.nsec) == (other.sec, other.nsec)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __gt__(self, other: "Timestamp") -> bool:
        return (self.sec, self.nsec) > (other.sec, other.nsec)

    def __lt__(self, other: "Timestamp") -> bool:
        return (self.sec, self.nsec) < (other.sec, other.nsec)

    def __hash__(self) -> int:
        return hash((self.sec, self.nsec))


class BucketSpan(NamedTuple):
    """A run of native histogram buckets: where it starts and how long it is."""

    offset: int
    length: int


class Exemplar(NamedTuple):
    """An exemplar: a label set (trace id, ...), the value and when it was seen."""

    labels: Dict[str, str]
    value: float
    timestamp: Optional[Union[float, Timestamp]] = None


class NativeHistogram(NamedTuple):
    """A native histogram's value: count, sum, schema, zero bucket and sparse buckets."""

    count_value: float
    sum_value: float
    schema: int
    zero_threshold: float
    zero_count: float
    pos_spans: Optional[Sequence[BucketSpan]] = None
    neg_spans: Optional[Sequence[BucketSpan]] = None
    pos_deltas: Optional[Sequence[int]] = None
    neg_deltas: Optional[Sequence[int]] = None
    nh_exemplars: Optional[Sequence[Exemplar]] = None


class Sample(NamedTuple):
    """One sample line: its full name, labels, value, timestamp and exemplar."""

    name: str
    labels: Dict[str, str]
    value: float
    timestamp: Optional[Union[float, Timestamp]] = None
    exemplar: Optional[Exemplar] = None
    native_histogram: Optional[NativeHistogram] = None


__all__ = ["Timestamp", "BucketSpan", "Exemplar", "NativeHistogram", "Sample"]
