"""The collector registry: which metrics a scrape renders.

It keeps prometheus_client's bookkeeping (``_collector_to_names``,
``_names_to_collectors``, ``_lock``, ``target_info``) with its rules, so
that code which inspects or resets a registry the way prometheus_client's
users and test suites do sees what it expects.

A registry may be *backed* by a prometheus_client ``CollectorRegistry``:
then that registry's bookkeeping is the only one, shared by both libraries.
Registering a fastprom metric registers it there, unregistering (also by
prometheus_client's own ``unregister``) removes it from both, and a scrape of
either shows everything registered in it.  When prometheus_client is
installed, fastprom's default ``REGISTRY`` is backed by
``prometheus_client.REGISTRY``: the two are one registry.
"""
from __future__ import annotations

import copy
import os
import threading
import weakref
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Protocol, Set, Union

from . import _core
from . import _multiproc as multiprocess
from .errors import DuplicateTimeseries
from .metrics_core import CounterMetricFamily, Metric
from .samples import Exemplar, Sample

#: Default arena size of a registry's store: 256 MiB of address space, of
#: which only the pages holding metrics are ever touched.
DEFAULT_STORE_SIZE: int = _core.STORE_DEFAULT_SIZE

#: What a scrape renders: a store metric (its family), a whole store (a
#: shared store: every family in it), or a family built in Python.
_Item = Union[_core.MetricBase, _core.Store, Metric]

_TYPE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}


class Collector(Protocol):
    """Anything with ``collect()`` yielding metric families."""

    def collect(self) -> Iterable[Metric]: ...


class _EmptyCollector:
    """Holds the name ``target_info`` while the registry has target info."""

    def collect(self) -> Iterable[Metric]:
        return []


# Registries whose store lock a thread may hold when the process forks: the
# child gets fresh locks (the thread holding one is not in the child, so it
# would never be released).  The hook is installed with the first store.
_opening: "weakref.WeakSet[CollectorRegistry]" = weakref.WeakSet()
_fork_hook = False


def _fresh_locks_in_child() -> None:
    for registry in list(_opening):
        registry._store_lock = threading.Lock()
        registry._own_lock = threading.Lock()


def _watch_forks(registry: "CollectorRegistry") -> None:
    global _fork_hook
    _opening.add(registry)
    if not _fork_hook and hasattr(os, "register_at_fork"):
        _fork_hook = True
        os.register_at_fork(after_in_child=_fresh_locks_in_child)


class CollectorRegistry:
    """Metrics and collectors to expose together.

    Metrics created with ``registry=`` this registry live in its store (a
    lock-free C arena created on first use, ``store_size`` bytes of address
    space).  Custom collectors registered here are called at every scrape.
    """

    def __init__(self, auto_describe: bool = False, target_info: Optional[Dict[str, str]] = None,
                 support_collectors_without_names: bool = False, *, store_size: int = DEFAULT_STORE_SIZE) -> None:
        self._backing: Any = None
        self._own_lock = threading.Lock()
        self._own_collector_to_names: Dict[Any, List[str]] = {}
        self._own_names_to_collectors: Dict[str, Any] = {}
        self._own_without_names: List[Any] = []
        self._own_target_info: Optional[Dict[str, str]] = {}
        self._auto_describe = auto_describe
        self._support_collectors_without_names = support_collectors_without_names
        # Called before every scrape and collect() while their owner (a
        # collector) is registered: set_function gauges read their functions
        # here.  Kept across unregister(), so registering again resumes them.
        self._hooks: Dict[object, Callable[[], None]] = {}
        self._store_lock = threading.Lock()
        self._store_size = store_size
        self._store: Optional[_core.Store] = None
        self._shared = False
        # Only the default registry goes into the multiprocess store.
        self._multiprocess = False
        # The default registry's process collector, which reports every
        # worker of a shared store (set by fastprom.collectors).
        self._shared_process_collector: Any = None
        self.set_target_info(target_info)

    # ---- the bookkeeping: our own, or the backing registry's ------------

    def _back_with(self, pc_registry: Any) -> None:
        """Makes ``pc_registry`` (a prometheus_client CollectorRegistry) hold
        this registry's bookkeeping.  Only before anything is registered."""
        self._backing = pc_registry

    @property
    def _lock(self) -> Any:
        return self._backing._lock if self._backing is not None else self._own_lock

    @property
    def _collector_to_names(self) -> Dict[Any, List[str]]:
        return self._backing._collector_to_names if self._backing is not None else self._own_collector_to_names

    @property
    def _names_to_collectors(self) -> Dict[str, Any]:
        return self._backing._names_to_collectors if self._backing is not None else self._own_names_to_collectors

    @property
    def _collectors_without_names(self) -> List[Any]:
        if self._backing is not None:
            return getattr(self._backing, "_collectors_without_names", [])
        return self._own_without_names

    @property
    def _target_info(self) -> Optional[Dict[str, str]]:
        return self._backing._target_info if self._backing is not None else self._own_target_info

    #: The collector of each time series name (what fastprom's own code reads).
    _names = _names_to_collectors

    # ---- the store ----------------------------------------------------------

    def _get_store(self) -> _core.Store:
        """The registry's store, created on first use: for the default
        registry in multiprocess mode, the shared store file."""
        if self._store is None:
            _watch_forks(self)
            with self._store_lock:
                if self._store is None:
                    directory = multiprocess.directory() if self._multiprocess else None
                    self._open_store(directory)
        assert self._store is not None
        return self._store

    def _open_store(self, directory: Optional[str]) -> None:
        """Creates the store: shared through the store file in ``directory``,
        or private.  The store lock held (or the registry not yet in use)."""
        if directory:
            self._store = multiprocess.open_store(directory)
            self._shared = True
            self._use_shared_process_collector()
        else:
            self._store = _core.Store(self._store_size)

    def _use_shared_process_collector(self) -> None:
        """With a shared store, process metrics come from every worker: our
        process collector takes the place of prometheus_client's."""
        ours = self._shared_process_collector
        if ours is None or ours in self._collector_to_names:
            return
        current = self._names_to_collectors.get("process_cpu_seconds_total")
        if current is not None and type(current).__module__.startswith("prometheus_client"):
            self.unregister(current)
        try:
            self.register(ours)
        except DuplicateTimeseries:
            pass

    def shared_store(self) -> Optional[_core.Store]:
        """The store shared with other processes, or None (not in multiprocess mode)."""
        return self._store if self._shared else None

    # ---- registration, as prometheus_client does it -----------------------

    def _get_names(self, collector: Any) -> List[str]:
        """The time series names a collector produces and clashes with."""
        desc_func = getattr(collector, "describe", None)
        if desc_func is None and self._auto_describe:
            desc_func = collector.collect
        if desc_func is None:
            return []
        result: List[str] = []
        for metric in desc_func():
            result.append(metric.name)
            result.extend(metric.name + suffix for suffix in _TYPE_SUFFIXES.get(metric.type, ()))
        return result

    def register(self, collector: Any) -> None:
        """Adds a collector; raises :class:`DuplicateTimeseries` if its names are taken."""
        if self._backing is not None:
            try:
                self._backing.register(collector)
            except ValueError as e:
                dup = getattr(e, "duplicates", None)
                if dup is not None and not isinstance(e, DuplicateTimeseries):
                    raise DuplicateTimeseries(set(dup)) from None
                raise
            return
        with self._own_lock:
            names = self._get_names(collector)
            duplicates = set(self._own_names_to_collectors).intersection(names)
            if duplicates:
                raise DuplicateTimeseries(duplicates)
            for name in names:
                self._own_names_to_collectors[name] = collector
            self._own_collector_to_names[collector] = names
            if self._support_collectors_without_names and not names:
                self._own_without_names.append(collector)

    def unregister(self, collector: Any) -> None:
        """Removes a collector; its metrics stop appearing in scrapes."""
        if self._backing is not None:
            self._backing.unregister(collector)
            return
        with self._own_lock:
            for name in self._own_collector_to_names[collector]:
                del self._own_names_to_collectors[name]
            del self._own_collector_to_names[collector]
            if collector in self._own_without_names:
                self._own_without_names.remove(collector)

    def _check_free(self, names: List[str]) -> None:
        """Raises :class:`DuplicateTimeseries` if any of these names is taken."""
        with self._lock:
            duplicates = set(self._names_to_collectors).intersection(names)
        if duplicates:
            raise DuplicateTimeseries(duplicates)

    def _add_pre_collect_hook(self, owner: object, hook: Callable[[], None]) -> None:
        """Runs ``hook`` before every scrape and collect() while ``owner`` is registered."""
        with self._own_lock:
            self._hooks[owner] = hook

    def set_target_info(self, labels: Optional[Dict[str, str]]) -> None:
        """Sets (or with None or {}, removes) the ``target_info`` family."""
        if self._backing is not None:
            self._backing.set_target_info(labels)
            return
        with self._own_lock:
            if labels:
                if not self._own_target_info and "target_info" in self._own_names_to_collectors:
                    raise ValueError("CollectorRegistry already contains a target_info metric")
                self._own_names_to_collectors["target_info"] = _EmptyCollector()
            elif self._own_target_info:
                self._own_names_to_collectors.pop("target_info", None)
            self._own_target_info = labels

    def get_target_info(self) -> Optional[Dict[str, str]]:
        """The ``target_info`` labels, or None."""
        with self._lock:
            return self._target_info

    def _target_info_metric(self) -> Metric:
        m = Metric("target", "Target metadata", "info")
        m.add_sample("target_info", self._target_info or {}, 1)
        return m

    # ---- what a scrape shows --------------------------------------------------

    def _items(self, extra: Iterable[object] = ()) -> List[_Item]:
        """Everything one scrape shows, in order (pre-collect hooks run first)."""
        with self._lock:
            collectors = copy.copy(self._collector_to_names)
            ti = self._target_info_metric() if self._target_info else None
        with self._own_lock:
            hooks = [h for owner, h in self._hooks.items() if owner in collectors]
        for hook in hooks:
            hook()
        items: List[_Item] = [ti] if ti is not None else []
        if self._store is None and self._multiprocess and multiprocess.directory():
            # A process that only serves the metrics (it declares none)
            # shows every worker's.
            self._get_store()
        store = self._store
        shared = self._shared and store is not None
        if shared:
            # Every family in the shared store, whichever worker declared it.
            items.append(store)  # type: ignore[arg-type]
        for c in collectors:
            if isinstance(c, _core.MetricBase) and store is not None and c._store is store:
                if not shared:
                    items.append(c)
            elif hasattr(c, "_render_items"):  # MultiProcessCollector: a whole shared store, shown once
                items.extend(it for it in c._render_items()
                             if not (shared and it is store) and all(it is not x for x in items))
            else:
                items.extend(c.collect())
        items.extend(self._store_families())
        for c in extra:
            items.extend(c.collect())  # type: ignore[attr-defined]
        return items

    def _store_families(self) -> List[Metric]:
        """``fastprom_store_overflow_total`` once the store has overflowed,
        ``fastprom_series_limited_total`` once a metric reached its
        ``max_series``."""
        with self._lock:
            collectors = list(self._collector_to_names)
        # Info and Enum keep their series in Python.
        limited = [(c._name, c._limited) for c in collectors if getattr(c, "_limited", 0)]
        out: List[Metric] = []
        if self._store is None and not limited:
            return out
        overflowed = self._store.stats()["overflowed"] if self._store is not None else 0
        if overflowed:
            out.append(CounterMetricFamily(
                "fastprom_store_overflow", "Label lookups counted under an overflow series because the metrics "
                "store was full.", value=overflowed))
        if self._store is not None:
            limited += [(name, count) for name, count, _live in self._store.limited()]
        if limited:
            family = CounterMetricFamily(
                "fastprom_series_limited", "Label lookups counted under a metric's overflow series because it "
                "had reached its max_series.", labels=["metric"])
            for name, count in limited:
                family.add_metric([name], count)
            out.append(family)
        return out

    def render(self, openmetrics: bool = False, extra: Iterable[object] = (), escaping: str = "underscores",
               protobuf: bool = False) -> bytes:
        """The exposition of everything registered (then of ``extra``
        collectors), in one C call: the text format, OpenMetrics, or (with
        ``protobuf``) delimited protobuf ``MetricFamily`` messages; names
        outside the legacy character set written by the ``escaping`` scheme
        (``underscores``, ``allow-utf-8``, ``dots``, ``values``)."""
        return _core.render(self._items(extra), render_view(openmetrics, protobuf), escaping_scheme(escaping))

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
        """A view that collects only the samples with these names, from the
        collectors that produce them."""
        return RestrictedRegistry(set(names), self)

    def get_sample_value(self, name: str, labels: Optional[Dict[str, str]] = None) -> Optional[float]:
        """The value of one sample, or None.  Meant for tests, as in prometheus_client."""
        if labels is None:
            labels = {}
        for metric in self.collect():
            for s in metric.samples:
                if s.name == name and s.labels == labels:
                    return s.value
        return None


class RestrictedRegistry:
    """Read-only view of a registry: the samples with some names, collected
    only from the collectors that produce them (prometheus_client's rules)."""

    def __init__(self, names: Iterable[str], registry: CollectorRegistry) -> None:
        self._name_set: Set[str] = set(names)
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        reg = self._registry
        collectors = set(reg._collectors_without_names)
        target_info_metric = None
        with reg._lock:
            if "target_info" in self._name_set and reg._target_info:
                target_info_metric = reg._target_info_metric()
            for name in self._name_set:
                if name != "target_info" and name in reg._names_to_collectors:
                    collectors.add(reg._names_to_collectors[name])
        if target_info_metric:
            yield target_info_metric
        for collector in collectors:
            metrics = (collector._collect_now() if isinstance(collector, _core.MetricBase)
                       and hasattr(collector, "_collect_now") else collector.collect())
            for metric in metrics:
                m = metric._restricted_metric(self._name_set)
                if m:
                    yield m

    def render(self, openmetrics: bool = False, extra: Iterable[object] = (), escaping: str = "underscores",
               protobuf: bool = False) -> bytes:
        """The exposition of the view's samples, as ``CollectorRegistry.render``."""
        view = render_view(openmetrics, protobuf)
        items: List[object] = list(self.collect())
        for c in extra:
            items.extend(c.collect())  # type: ignore[attr-defined]
        return _core.render(items, view, escaping_scheme(escaping))


_SCHEMES = {"underscores": _core.ESCAPING_UNDERSCORES, "allow-utf-8": _core.ESCAPING_ALLOWUTF8,
            "dots": _core.ESCAPING_DOTS, "values": _core.ESCAPING_VALUES}


def render_view(openmetrics: bool, protobuf: bool = False) -> int:
    """The renderer's code for an output format."""
    return _core.VIEW_PROTOBUF if protobuf else _core.VIEW_OPENMETRICS if openmetrics else _core.VIEW_TEXT


def escaping_scheme(escaping: str) -> int:
    """The renderer's code for an escaping scheme's name; an unknown name is
    underscores, as prometheus_client treats it."""
    return _SCHEMES.get(escaping, _core.ESCAPING_UNDERSCORES)


def store_families(store: _core.Store) -> Iterator[Metric]:
    """Every family of a store, with its samples, as collect() yields them."""
    for i in range(store.family_count()):
        name, typ, doc, unit = store.family(i)
        m = Metric(name, doc, typ, unit)
        m.samples = store.samples(i, Sample, Exemplar)
        yield m


def _prometheus_client_registry() -> Any:
    """prometheus_client.REGISTRY when prometheus_client is installed, else None."""
    try:
        from prometheus_client import registry as pc_registry
    except ImportError:
        return None
    return pc_registry.REGISTRY


#: The default registry, as prometheus_client's ``REGISTRY`` (the same one
#: when prometheus_client is installed); in multiprocess mode its store is
#: shared by every worker.
REGISTRY = CollectorRegistry(auto_describe=True)
REGISTRY._multiprocess = True
_pc_default = _prometheus_client_registry()
if _pc_default is not None:
    REGISTRY._back_with(_pc_default)
del _pc_default
