"""Interoperation with prometheus_client (an optional dependency).

When prometheus_client is installed, fastprom's ``REGISTRY`` is backed by
``prometheus_client.REGISTRY`` (see :mod:`fastprom.registry`): one registry,
seen the same way by both libraries.  This module covers the rest:

- :func:`registry_for` gives the fastprom registry that stands for a
  prometheus_client registry passed as ``registry=`` (backed by it, so both
  see the same collectors);
- :func:`as_fastprom_registry` turns whatever a ``generate_latest`` caller
  passes (a fastprom or prometheus_client registry, or any object with
  ``collect()``) into something fastprom renders;
- :func:`expose_to_prometheus_client` makes a prometheus_client registry see
  a stand-alone fastprom registry's metrics.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Iterable, Iterator, List

from . import _core
from .metrics_core import Metric
from .registry import REGISTRY, CollectorRegistry, RestrictedRegistry, escaping_scheme, render_view

_lock = threading.Lock()
_for_pc: "weakref.WeakKeyDictionary[Any, CollectorRegistry]" = weakref.WeakKeyDictionary()


def is_prometheus_client_registry(obj: Any) -> bool:
    """True for a prometheus_client CollectorRegistry (without importing it needlessly)."""
    return type(obj).__module__.startswith("prometheus_client") and hasattr(obj, "_collector_to_names")


def registry_for(pc_registry: Any) -> CollectorRegistry:
    """The fastprom registry whose bookkeeping is ``pc_registry``'s: metrics
    created with it are registered there, and it renders everything
    registered there."""
    if pc_registry is REGISTRY._backing:
        return REGISTRY
    with _lock:
        reg = _for_pc.get(pc_registry)
        if reg is None:
            reg = CollectorRegistry(auto_describe=getattr(pc_registry, "_auto_describe", False))
            reg._back_with(pc_registry)
            _for_pc[pc_registry] = reg
    return reg


class _CollectorView:
    """Renders any object with ``collect()`` through fastprom's writers."""

    def __init__(self, collector: Any) -> None:
        self._collector = collector

    def collect(self) -> Iterable[Any]:
        return self._collector.collect()

    def render(self, openmetrics: bool = False, extra: Iterable[object] = (), escaping: str = "underscores",
               protobuf: bool = False) -> bytes:
        view = render_view(openmetrics, protobuf)
        items: List[object] = list(self._collector.collect())
        for c in extra:
            items.extend(c.collect())  # type: ignore[attr-defined]
        return _core.render(items, view, escaping_scheme(escaping))


def as_fastprom_registry(registry: Any) -> Any:
    """Something with fastprom's ``render()`` for a registry argument."""
    if isinstance(registry, (CollectorRegistry, RestrictedRegistry)):
        return registry
    if is_prometheus_client_registry(registry):
        return registry_for(registry)
    return _CollectorView(registry)


class FastpromCollector:
    """A prometheus_client collector yielding a fastprom registry's families."""

    def __init__(self, registry: CollectorRegistry, target: Any) -> None:
        self._registry = registry
        self._target = target

    def describe(self) -> List[Any]:
        # Names are not reserved in the target: families it has itself win.
        return []

    def collect(self) -> Iterator[Metric]:
        taken = set(getattr(self._target, "_names_to_collectors", {}))
        for metric in self._registry.collect():
            names = {metric.name} | {s.name for s in metric.samples}
            if not names & taken:
                yield metric


def expose_to_prometheus_client(registry: CollectorRegistry = REGISTRY, target: Any = None) -> None:
    """Makes a prometheus_client registry (default: its ``REGISTRY``) show a
    fastprom registry's metrics.  A registry backed by ``target`` is in it
    already; calling it again is a no-op."""
    if target is None:
        import prometheus_client

        target = prometheus_client.REGISTRY
    if registry._backing is target:
        return
    with _lock:
        mine = getattr(target, "_fastprom_bridges", None)
        if mine is None:
            mine = set()
            target._fastprom_bridges = mine
        if id(registry) in mine:
            return
        target.register(FastpromCollector(registry, target))
        mine.add(id(registry))


def prometheus_client_default_registry() -> Any:
    """prometheus_client.REGISTRY if prometheus_client is installed, else None."""
    try:
        import prometheus_client
    except ImportError:
        return None
    return prometheus_client.REGISTRY


class PrometheusClientCollector:
    """A fastprom collector yielding a prometheus_client registry's families,
    leaving out those of the fastprom registry itself (nothing at all when
    the fastprom registry is backed by that registry: it has them already)."""

    def __init__(self, source: Any, registry: CollectorRegistry) -> None:
        self._source = source
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        if self._registry._backing is self._source:
            return
        taken = set(self._registry._names_to_collectors)
        for metric in self._source.collect():
            names = {metric.name} | {s.name for s in metric.samples}
            if not names & taken:
                yield metric
