"""The collector registry: which metrics a scrape renders."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Protocol, Union

from . import _core
from .errors import DuplicateTimeseries
from .metrics_core import Metric

if TYPE_CHECKING:
    from ._metric_types import StoreMetric

#: Default arena size of a registry's store: 256 MiB of address space, of
#: which only the pages holding metrics are ever touched.
DEFAULT_STORE_SIZE = 256 << 20


class Collector(Protocol):
    """Anything with ``collect()`` yielding metric families."""

    def collect(self) -> Iterable[Metric]: ...


class CollectorRegistry:
    """Metrics and collectors to expose together.

    Metrics created with ``registry=`` this registry live in its store (a
    lock-free C arena created on first use, ``store_size`` bytes of address
    space).  Custom collectors registered here are called at every scrape.
    """

    def __init__(self, auto_describe: bool = False, target_info: Optional[Dict[str, str]] = None,
                 *, store_size: int = DEFAULT_STORE_SIZE) -> None:
        self._lock = threading.Lock()
        self._collectors: Dict[object, List[str]] = {}
        self._names: Dict[str, object] = {}
        self._auto_describe = auto_describe
        self._store_size = store_size
        self._store: Optional[_core.Store] = None
        self._target_info: Optional[Dict[str, str]] = None
        # Only the default registry goes into the multiprocess store.
        self._multiprocess = False
        if target_info is not None:
            self.set_target_info(target_info)

    def _get_store(self) -> _core.Store:
        """The registry's store, created on first use: for the default
        registry in multiprocess mode, the shared store file."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from . import multiprocess

                    directory = multiprocess.directory() if self._multiprocess else None
                    if directory:
                        self._store = multiprocess.open_store(directory)
                        self._shared = True
                    else:
                        self._store = _core.Store(self._store_size)
        return self._store

    _shared = False

    def shared_store(self) -> Optional[_core.Store]:
        """The store shared with other processes, or None (not in multiprocess mode)."""
        return self._store if self._shared else None

    def _collector_names(self, collector: object) -> List[str]:
        names_of = getattr(collector, "_names", None)
        if callable(names_of):
            return list(names_of())
        desc = getattr(collector, "describe", None)
        if callable(desc):
            families = desc()
        elif self._auto_describe:
            families = collector.collect()  # type: ignore[attr-defined]
        else:
            return []
        names = []
        for m in families:
            names.append(m.name)
            names.extend(s.name for s in m.samples)
            suffixes = {"counter": ("_total", "_created"), "summary": ("_sum", "_count", "_created"),
                        "histogram": ("_bucket", "_sum", "_count", "_created"),
                        "gaugehistogram": ("_bucket", "_gsum", "_gcount"), "info": ("_info",)}
            names.extend(m.name + s for s in suffixes.get(m.type, ()))
        return names

    def _raise_if_taken(self, names: List[str]) -> None:
        """Raises :class:`DuplicateTimeseries` if any name is taken.  Lock held."""
        taken = sorted({n for n in names if n in self._names})
        if taken:
            raise DuplicateTimeseries(f"Duplicated timeseries in CollectorRegistry: {taken}")

    def register(self, collector: object) -> None:
        """Adds a collector; raises :class:`DuplicateTimeseries` if its names are taken."""
        with self._lock:
            if collector in self._collectors:
                raise DuplicateTimeseries(f"Collector {collector!r} is already registered")
            names = self._collector_names(collector)
            self._raise_if_taken(names)
            self._collectors[collector] = names
            for n in names:
                self._names[n] = collector

    def _check_free(self, names: List[str]) -> None:
        """Raises :class:`DuplicateTimeseries` if any of these names is taken."""
        with self._lock:
            self._raise_if_taken(names)

    def unregister(self, collector: object) -> None:
        """Removes a collector; its metrics stop appearing in scrapes."""
        with self._lock:
            names = self._collectors.pop(collector)
            for n in names:
                self._names.pop(n, None)

    def _items(self, extra: Iterable[object] = ()) -> List[Union[int, Metric]]:
        from ._metric_types import StoreMetric, refresh_function_gauges

        refresh_function_gauges()
        with self._lock:
            collectors = list(self._collectors)
        items: List[Union[int, Metric]] = []
        if self._target_info is not None:
            from .metrics_core import InfoMetricFamily

            items.append(InfoMetricFamily("target", "Target metadata", value=self._target_info))
        if self._shared and self._store is not None:
            # Every family in the shared store, whichever worker declared it.
            items.extend(range(self._store.family_count()))
        for c in collectors:
            if isinstance(c, StoreMetric) and c._store is self._store:
                if not self._shared:
                    items.append(c._family)  # type: ignore[attr-defined]
            else:
                items.extend(c.collect())  # type: ignore[attr-defined]
        items.extend(self._store_families())
        for c in extra:
            items.extend(c.collect())  # type: ignore[attr-defined]
        return items

    def _store_families(self) -> List[Metric]:
        """``fastprom_store_overflow_total`` once the store has overflowed."""
        if self._store is None:
            return []
        overflowed = self._store.stats()["overflowed"]
        if not overflowed:
            return []
        from .metrics_core import CounterMetricFamily

        return [CounterMetricFamily(
            "fastprom_store_overflow", "Label lookups counted under an overflow series because the metrics "
            "store was full.", value=overflowed)]

    def render(self, openmetrics: bool = False, extra: Iterable[object] = ()) -> bytes:
        """The exposition of everything registered (then of ``extra``
        collectors), in one C call for store metrics."""
        items = self._items(extra)
        store = self._store if self._store is not None else _EMPTY.store()
        return store.render(items, openmetrics)

    def collect(self) -> Iterator[Metric]:
        """Yields the metric families of every registered collector."""
        from ._metric_types import refresh_function_gauges

        refresh_function_gauges()
        with self._lock:
            collectors = list(self._collectors)
        if self._target_info is not None:
            from .metrics_core import InfoMetricFamily

            yield InfoMetricFamily("target", "Target metadata", value=self._target_info)
        for c in collectors:
            yield from c.collect()  # type: ignore[attr-defined]
        yield from self._store_families()

    def restricted_registry(self, names: Iterable[str]) -> "RestrictedRegistry":
        """A view that renders only the families with these sample names."""
        return RestrictedRegistry(self, names)

    def get_sample_value(self, name: str, labels: Optional[Dict[str, str]] = None) -> Optional[float]:
        """The value of one sample, or None.  Meant for tests, as in prometheus_client."""
        labels = labels or {}
        for metric in self.collect():
            for s in metric.samples:
                if s.name == name and s.labels == labels:
                    return s.value
        return None

    def set_target_info(self, labels: Optional[Dict[str, str]]) -> None:
        """Sets (or with None, removes) the ``target_info`` family."""
        with self._lock:
            if labels is not None and "target_info" in self._names:
                raise DuplicateTimeseries("target_info is already registered by a collector")
            self._target_info = dict(labels) if labels is not None else None

    def get_target_info(self) -> Optional[Dict[str, str]]:
        """The ``target_info`` labels, or None."""
        return self._target_info


class RestrictedRegistry:
    """Read-only view of a registry limited to some sample names."""

    def __init__(self, registry: CollectorRegistry, names: Iterable[str]) -> None:
        self._registry = registry
        self._wanted = set(names)

    def collect(self) -> Iterator[Metric]:
        for m in self._registry.collect():
            samples = [s for s in m.samples if s.name in self._wanted]
            if samples:
                r = Metric(m.name, m.documentation, m.type)
                r.unit = m.unit
                r.samples = samples
                yield r

    def render(self, openmetrics: bool = False) -> bytes:
        return _EMPTY.store().render(list(self.collect()), openmetrics)


class _EmptyStore:
    """A small store used only to render custom families."""

    def __init__(self) -> None:
        self._store: Optional[_core.Store] = None

    def store(self) -> _core.Store:
        if self._store is None:
            self._store = _core.Store(1 << 20)
        return self._store


_EMPTY = _EmptyStore()

#: The default registry, as prometheus_client's ``REGISTRY``; in
#: multiprocess mode its store is shared by every worker.
REGISTRY = CollectorRegistry(auto_describe=True)
REGISTRY._multiprocess = True
