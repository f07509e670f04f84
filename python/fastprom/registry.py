"""The collector registry: which metrics a scrape renders."""
from __future__ import annotations

import threading
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Protocol, Union

from . import _core, multiprocess
from .errors import DuplicateTimeseries
from .metrics_core import CounterMetricFamily, InfoMetricFamily, Metric
from .samples import Exemplar, Sample

#: Default arena size of a registry's store: 256 MiB of address space, of
#: which only the pages holding metrics are ever touched.
DEFAULT_STORE_SIZE: int = _core.STORE_DEFAULT_SIZE

#: What a scrape renders: a store metric (its family), a whole store (a
#: shared store: every family in it), or a family built in Python.
_Item = Union[_core.MetricBase, _core.Store, Metric]


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
        # Called before every scrape and collect() while their owner (a
        # collector) is registered: set_function gauges read their functions
        # here.  Kept across unregister(), so registering again resumes them.
        self._hooks: Dict[object, Callable[[], None]] = {}
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
                    directory = multiprocess.directory() if self._multiprocess else None
                    self._open_store(directory)
        assert self._store is not None
        return self._store

    def _open_store(self, directory: Optional[str]) -> None:
        """Creates the store: shared through the store file in ``directory``,
        or private.  Lock held (or the registry not yet in use)."""
        if directory:
            self._store = multiprocess.open_store(directory)
            self._shared = True
        else:
            self._store = _core.Store(self._store_size)

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

    def _add_pre_collect_hook(self, owner: object, hook: Callable[[], None]) -> None:
        """Runs ``hook`` before every scrape and collect() while ``owner`` is registered."""
        with self._lock:
            self._hooks[owner] = hook

    def _items(self, extra: Iterable[object] = ()) -> List[_Item]:
        """Everything one scrape shows, in order (pre-collect hooks run first)."""
        with self._lock:
            collectors = list(self._collectors)
            hooks = [h for owner, h in self._hooks.items() if owner in self._collectors]
        for hook in hooks:
            hook()
        items: List[_Item] = []
        if self._target_info is not None:
            items.append(InfoMetricFamily("target", "Target metadata", value=self._target_info))
        store = self._store
        shared = self._shared and store is not None
        if shared:
            # Every family in the shared store, whichever worker declared it.
            items.append(store)  # type: ignore[arg-type]
        for c in collectors:
            if isinstance(c, _core.MetricBase) and c._store is store and store is not None:
                if not shared:
                    items.append(c)
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
        return [CounterMetricFamily(
            "fastprom_store_overflow", "Label lookups counted under an overflow series because the metrics "
            "store was full.", value=overflowed)]

    def render(self, openmetrics: bool = False, extra: Iterable[object] = ()) -> bytes:
        """The exposition of everything registered (then of ``extra``
        collectors), in one C call."""
        view = _core.VIEW_OPENMETRICS if openmetrics else _core.VIEW_TEXT
        return _core.render(self._items(extra), view)

    def collect(self) -> Iterator[Metric]:
        """Yields the metric families of every registered collector: the same
        items, read by the same walk, as a scrape."""
        for item in self._items():
            if isinstance(item, _core.Store):
                yield from store_families(item)
            elif isinstance(item, _core.MetricBase):
                yield from item._collect_now()  # type: ignore[attr-defined]
            else:
                yield item

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
        view = _core.VIEW_OPENMETRICS if openmetrics else _core.VIEW_TEXT
        return _core.render(list(self.collect()), view)


def store_families(store: _core.Store) -> Iterator[Metric]:
    """Every family of a store, with its samples, as collect() yields them."""
    for i in range(store.family_count()):
        name, typ, doc, unit = store.family(i)
        m = Metric(name, doc, typ, unit)
        m.samples = store.samples(i, Sample, Exemplar)
        yield m

#: The default registry, as prometheus_client's ``REGISTRY``; in
#: multiprocess mode its store is shared by every worker.
REGISTRY = CollectorRegistry(auto_describe=True)
REGISTRY._multiprocess = True
