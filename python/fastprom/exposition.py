"""Rendering a registry, and choosing the format and encoding for a scraper."""
from __future__ import annotations

import gzip
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from .registry import REGISTRY, CollectorRegistry

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of the Prometheus text format 0.0.4."""
CONTENT_TYPE_PLAIN = CONTENT_TYPE_LATEST
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
"""Content type of OpenMetrics 1.0.0."""


def generate_latest(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The registry in the Prometheus text format 0.0.4."""
    return registry.render(False)


def generate_openmetrics(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The registry in OpenMetrics 1.0.0, ending with ``# EOF``."""
    return registry.render(True)


def _media_ranges(header: str) -> List[Tuple[str, Dict[str, str], float, int]]:
    """Parses an Accept or Accept-Encoding header: (type, params, q, position)."""
    out = []
    for pos, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        kind = fields[0].lower()
        if not kind:
            continue
        params: Dict[str, str] = {}
        q = 1.0
        for f in fields[1:]:
            key, _, value = f.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
            else:
                params[key] = value
        out.append((kind, params, q, pos))
    return out


def choose_format(accept: Optional[str]) -> bool:
    """True when the Accept header prefers OpenMetrics 1.0.0 over the text format.

    Media ranges are weighed by their q-values; on a tie the earlier one
    wins.  ``application/openmetrics-text`` counts only without a version or
    with version 1.0.0; anything that matches neither format (or no header)
    gets the text format.
    """
    if not accept:
        return False
    best_q, best_pos, best_om = 0.0, 1 << 30, False
    for kind, params, q, pos in _media_ranges(accept):
        if q <= 0:
            continue
        if kind == "application/openmetrics-text":
            if params.get("version", "1.0.0") != "1.0.0":
                continue
            om = True
        elif kind in ("text/plain", "text/*", "*/*"):
            if kind == "text/plain" and params.get("version", "0.0.4") != "0.0.4":
                continue
            om = False
        else:
            continue
        if q > best_q or (q == best_q and pos < best_pos):
            best_q, best_pos, best_om = q, pos, om
    return best_om


def accepts_gzip(accept_encoding: Optional[str]) -> bool:
    """True when Accept-Encoding allows gzip (``gzip`` or ``*`` with q > 0, unless gzip;q=0)."""
    if not accept_encoding:
        return False
    gz = star = None
    for kind, _, q, _ in _media_ranges(accept_encoding):
        if kind in ("gzip", "x-gzip"):
            gz = q
        elif kind == "*":
            star = q
    if gz is not None:
        return gz > 0
    return bool(star and star > 0)


class Exposition(NamedTuple):
    """A rendered response: its body and the headers to send with it."""

    body: bytes
    content_type: str
    content_encoding: Optional[str]

    @property
    def headers(self) -> Dict[str, str]:
        h = {"Content-Type": self.content_type}
        if self.content_encoding:
            h["Content-Encoding"] = self.content_encoding
        return h


def negotiate(registry: CollectorRegistry = REGISTRY, accept: Optional[str] = None,
              accept_encoding: Optional[str] = None, allow_gzip: bool = True,
              extra: Sequence[object] = ()) -> Exposition:
    """Renders the registry in the format the ``Accept`` header asks for,
    gzip-compressed when ``Accept-Encoding`` allows it (and ``allow_gzip``).
    ``extra`` collectors are rendered after the registry's own."""
    om = choose_format(accept)
    body = registry.render(om, extra)
    ctype = OPENMETRICS_CONTENT_TYPE if om else CONTENT_TYPE_LATEST
    if allow_gzip and accepts_gzip(accept_encoding):
        return Exposition(gzip.compress(body, compresslevel=6, mtime=0), ctype, "gzip")
    return Exposition(body, ctype, None)


def choose_encoder(accept_header: Optional[str]) -> Tuple[object, str]:
    """prometheus_client-compatible: (render function, content type) for an Accept header."""
    if choose_format(accept_header):
        return generate_openmetrics, OPENMETRICS_CONTENT_TYPE
    return generate_latest, CONTENT_TYPE_LATEST


def write_to_textfile(path: str, registry: CollectorRegistry = REGISTRY) -> None:
    """Writes the text format atomically to ``path`` (for the node exporter's textfile collector)."""
    import os

    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(generate_latest(registry))
    os.replace(tmp, path)
