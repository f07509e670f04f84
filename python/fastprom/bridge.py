"""Interoperation with prometheus_client (an optional dependency).

- :func:`expose_to_prometheus_client` makes a prometheus_client registry
  (its ``REGISTRY`` by default) see fastprom's metrics, so its
  ``generate_latest``, ``start_http_server`` and ``get_sample_value`` work.
- :class:`PrometheusClientCollector` adds a prometheus_client registry's
  metrics to a fastprom scrape.
- :func:`registry_for` gives the fastprom registry that stands for a
  prometheus_client registry passed as ``registry=``.

A family present in both is shown once, fastprom's copy winning (both
libraries register process, platform and GC collectors by default).
"""
from __future__ import annotations

import contextvars
import threading
import weakref
from typing import Any, Iterator, List, Set

from .metrics_core import Metric
from .registry import REGISTRY, CollectorRegistry

# Set while fastprom itself collects from a prometheus_client registry, so
# that the collector it registered there yields nothing (no sample twice,
# no wasted work).
_in_fastprom_scrape: contextvars.ContextVar[bool] = contextvars.ContextVar("fastprom_scrape", default=False)
_lock = threading.Lock()
_for_pc: "weakref.WeakKeyDictionary[Any, CollectorRegistry]" = weakref.WeakKeyDictionary()


def _family_names(metric: Any) -> Set[str]:
    names = {metric.name}
    names.update(s.name for s in metric.samples)
    return names


class FastpromCollector:
    """A prometheus_client collector yielding a fastprom registry's families."""

    def __init__(self, registry: CollectorRegistry, target: Any) -> None:
        self._registry = registry
        self._target = target

    def describe(self) -> List[Any]:
        # Names are not reserved in the target: families it has itself win.
        return []

    def collect(self) -> Iterator[Any]:
        if _in_fastprom_scrape.get():
            return
        taken = set(getattr(self._target, "_names_to_collectors", {}))
        for metric in self._registry.collect():
            if not (_family_names(metric) & taken):
                yield metric


def expose_to_prometheus_client(registry: CollectorRegistry = REGISTRY, target: Any = None) -> None:
    """Registers ``registry``'s metrics in a prometheus_client registry
    (default: ``prometheus_client.REGISTRY``).  Calling it again is a no-op."""
    if target is None:
        import prometheus_client

        target = prometheus_client.REGISTRY
    with _lock:
        mine = getattr(target, "_fastprom_bridges", None)
        if mine is None:
            mine = set()
            target._fastprom_bridges = mine
        if id(registry) in mine:
            return
        target.register(FastpromCollector(registry, target))
        mine.add(id(registry))


class PrometheusClientCollector:
    """A fastprom collector yielding a prometheus_client registry's families,
    leaving out the ones the fastprom registry has itself."""

    def __init__(self, source: Any, registry: CollectorRegistry) -> None:
        self._source = source
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        taken = set(self._registry._names)
        token = _in_fastprom_scrape.set(True)
        try:
            families = list(self._source.collect())
        finally:
            _in_fastprom_scrape.reset(token)
        for metric in families:
            if not (_family_names(metric) & taken):
                yield metric


def registry_for(pc_registry: Any) -> CollectorRegistry:
    """The fastprom registry holding metrics created with ``registry=pc_registry``;
    they show in ``pc_registry``'s output through a bridge collector."""
    with _lock:
        reg = _for_pc.get(pc_registry)
        if reg is None:
            reg = _for_pc[pc_registry] = CollectorRegistry()
    expose_to_prometheus_client(reg, pc_registry)
    return reg


def is_prometheus_client_registry(obj: Any) -> bool:
    """True for a prometheus_client CollectorRegistry (without importing it needlessly)."""
    return type(obj).__module__.startswith("prometheus_client") and hasattr(obj, "register")


def prometheus_client_default_registry() -> Any:
    """prometheus_client.REGISTRY if prometheus_client is installed, else None."""
    try:
        import prometheus_client
    except ImportError:
        return None
    return prometheus_client.REGISTRY
