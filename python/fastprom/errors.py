"""Exceptions raised by fastprom.

Every error about bad input is a :class:`ValueError` subclass, as in
prometheus_client, so ``except ValueError`` keeps working after switching.
"""
from typing import Set

from ._core import StoreFileError, StoreFullError


class InvalidMetricError(ValueError):
    """A metric definition is invalid: its name, label names, buckets or states."""


class DuplicateTimeseries(ValueError):
    """A collector's time series are already registered in the registry;
    ``duplicates`` holds their names (prometheus_client's message and field)."""

    def __init__(self, duplicates: Set[str]) -> None:
        super().__init__(f"Duplicated timeseries in CollectorRegistry: {duplicates}")
        self.duplicates: Set[str] = duplicates


__all__ = ["InvalidMetricError", "DuplicateTimeseries", "StoreFullError", "StoreFileError"]
