"""OpenMetrics 1.0.0 output, with prometheus_client's names: ``generate_latest``
here writes OpenMetrics (``fastprom.exposition.generate_latest`` writes the
Prometheus text format)."""
from __future__ import annotations

from typing import Any

from .. import _core
from ..exposition import floatToGoString, parse_version
from ..registry import REGISTRY

CONTENT_TYPE_LATEST = "application/openmetrics-text; version=1.0.0; charset=utf-8"
"""Content type of the OpenMetrics 1.0 text format."""
CONTENT_TYPE_LATEST_2_0 = "application/openmetrics-text; version=2.0.0; charset=utf-8"
"""Content type of the OpenMetrics 2.0 text format."""
ESCAPING_HEADER_TAG = "escaping"

ALLOWUTF8 = "allow-utf-8"
UNDERSCORES = "underscores"
DOTS = "dots"
VALUES = "values"

_SCHEMES = {ALLOWUTF8: _core.ESCAPING_ALLOWUTF8, UNDERSCORES: _core.ESCAPING_UNDERSCORES,
            DOTS: _core.ESCAPING_DOTS, VALUES: _core.ESCAPING_VALUES}


def generate_latest(registry: Any = REGISTRY, escaping: str = UNDERSCORES, version: str = "1.0.0") -> bytes:
    """The registry in OpenMetrics, ending with ``# EOF``; names outside the
    legacy character set written by the ``escaping`` scheme.  Native
    histogram samples (OpenMetrics 2.0) are left out of version 1.0.0.
    ``registry`` may be a fastprom or a prometheus_client registry, or any
    object with ``collect()``."""
    from ..bridge import as_fastprom_registry

    return as_fastprom_registry(registry).render(True, escaping=escaping)


def escape_metric_name(s: str, escaping: str = UNDERSCORES) -> str:
    """A metric name as the output writes it: as it is when it is a legacy
    name, else escaped by the scheme (quoted for allow-utf-8)."""
    return _core.escape_name(s, _SCHEMES.get(escaping, _core.ESCAPING_UNDERSCORES), True)


def escape_label_name(s: str, escaping: str = UNDERSCORES) -> str:
    """A label name as the output writes it (see escape_metric_name)."""
    return _core.escape_name(s, _SCHEMES.get(escaping, _core.ESCAPING_UNDERSCORES), False)


__all__ = ["CONTENT_TYPE_LATEST", "CONTENT_TYPE_LATEST_2_0", "ESCAPING_HEADER_TAG", "ALLOWUTF8", "UNDERSCORES",
           "DOTS", "VALUES", "generate_latest", "escape_metric_name", "escape_label_name", "floatToGoString",
           "parse_version"]
