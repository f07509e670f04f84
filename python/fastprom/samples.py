"""Plain data types shared by collectors: samples, exemplars, timestamps."""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Union


class Timestamp:
    """A timestamp with nanosecond precision (seconds and nanoseconds)."""

    __slots__ = ("sec", "nsec")

    def __init__(self, sec: int, nsec: int) -> None:
        if not 0 <= nsec < 10**9:
            raise ValueError(f"Timestamp nsec must be in [0, 1e9), got {nsec}")
        self.sec = int(sec)
        self.nsec = int(nsec)

    def __float__(self) -> float:
        return self.sec + self.nsec / 1e9

    def __repr__(self) -> str:
        return f"Timestamp({self.sec}, {self.nsec})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timestamp) and (self.sec, self.nsec) == (other.sec, other.nsec)

    def __hash__(self) -> int:
        return hash((self.sec, self.nsec))


class Exemplar(NamedTuple):
    """An exemplar: a label set (trace id, ...), the value and when it was seen."""

    labels: Dict[str, str]
    value: float
    timestamp: Optional[Union[float, Timestamp]] = None


class Sample(NamedTuple):
    """One sample line: its full name, labels, value, timestamp and exemplar."""

    name: str
    labels: Dict[str, str]
    value: float
    timestamp: Optional[Union[float, Timestamp]] = None
    exemplar: Optional[Exemplar] = None
