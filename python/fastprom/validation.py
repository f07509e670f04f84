"""Name rules, at prometheus_client's ``prometheus_client.validation`` path.

Metric names may be any UTF-8 text, as in prometheus_client 0.22 and later
(names outside the legacy ``[a-zA-Z_:][a-zA-Z0-9_:]*`` set are written
escaped or quoted, as the scraper's ``escaping`` asks).  With *legacy
validation* on (``enable_legacy_validation()``, or the environment variable
``PROMETHEUS_LEGACY_NAME_VALIDATION=true`` read at import) only legacy names
are accepted.  Label names of fastprom's own metrics (Counter, Gauge, ...)
are always legacy names: the store keeps no other; label names starting
with ``__`` are reserved in either mode.
"""
from __future__ import annotations

import os
import re

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
"""A legacy metric name."""
METRIC_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
"""A legacy label name."""
RESERVED_METRIC_LABEL_NAME_RE = re.compile(r"^__.*$")
"""A reserved label name (``__`` prefix)."""
LABEL_NAME_RE = METRIC_LABEL_NAME_RE


def _legacy_from_environment() -> bool:
    return os.environ.get("PROMETHEUS_LEGACY_NAME_VALIDATION", "False").lower() in ("true", "1", "t")


_legacy_validation = _legacy_from_environment()


def get_legacy_validation() -> bool:
    """True when only legacy metric and label names are accepted."""
    return _legacy_validation


def disable_legacy_validation() -> None:
    """Accepts any UTF-8 metric name (the default)."""
    global _legacy_validation
    _legacy_validation = False


def enable_legacy_validation() -> None:
    """Accepts only legacy metric and label names."""
    global _legacy_validation
    _legacy_validation = True


def _is_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _validate_metric_name(name: str) -> None:
    """Raises ValueError unless ``name`` is a metric name under the current rules."""
    if not name:
        raise ValueError("metric name cannot be empty")
    if (_legacy_validation and not METRIC_NAME_RE.fullmatch(name)) or not _is_utf8(name):
        raise ValueError("invalid metric name " + name)
    if "\0" in name or "\n" in name:
        # The store keeps neither; a newline would also end the line of
        # every sample in the text formats.
        raise ValueError(f"invalid metric name {name!r}: it holds a {'NUL' if chr(0) in name else 'newline'}")


def _validate_labelname(name: str) -> None:
    """Raises ValueError unless ``name`` is a label name under the current rules."""
    if not isinstance(name, str):
        raise ValueError(f"Invalid label metric name: {name!r}")
    if (_legacy_validation and not METRIC_LABEL_NAME_RE.fullmatch(name)) or not _is_utf8(name) or "\0" in name:
        raise ValueError("Invalid label metric name: " + name)
    if RESERVED_METRIC_LABEL_NAME_RE.match(name):
        raise ValueError("Reserved label metric name: " + name)


def _is_valid_legacy_metric_name(name: str) -> bool:
    """True for a name in the legacy metric name set."""
    return bool(name) and METRIC_NAME_RE.fullmatch(name) is not None


__all__ = ["get_legacy_validation", "disable_legacy_validation", "enable_legacy_validation",
           "METRIC_NAME_RE", "METRIC_LABEL_NAME_RE", "RESERVED_METRIC_LABEL_NAME_RE"]
