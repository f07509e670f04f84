"""Exceptions raised by fastprom.

Every error about bad input is a :class:`ValueError` subclass, as in
prometheus_client, so ``except ValueError`` keeps working after switching.
"""
from ._core import StoreFileError, StoreFullError


class InvalidMetricError(ValueError):
    """A metric definition is invalid: its name, label names, buckets or states."""


class DuplicateTimeseries(ValueError):
    """A collector's time series are already registered in the registry."""


__all__ = ["InvalidMetricError", "DuplicateTimeseries", "StoreFullError", "StoreFileError"]
