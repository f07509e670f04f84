"""What the metric types share: name and label checks, timers and
decorators, the store-backed mixin, and the parent/child logic of the
pure-Python Info and Enum."""
from __future__ import annotations

import functools
import inspect
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

from .. import _core
from ..bridge import is_prometheus_client_registry, registry_for
from ..errors import InvalidMetricError
from ..metrics_core import LABEL_NAME_RE, METRIC_NAME_RE, Metric
from ..registry import CollectorRegistry
from ..samples import Exemplar, Sample

INF = float("inf")

F = TypeVar("F", bound=Callable[..., Any])

def _fastprom_registry(registry: Any) -> Optional[CollectorRegistry]:
    """The fastprom registry for a ``registry=`` argument: itself, or the
    one standing for a prometheus_client registry."""
    if registry is not None and not isinstance(registry, CollectorRegistry) and is_prometheus_client_registry(registry):
        return registry_for(registry)
    return registry


def _created_from_environment() -> bool:
    """False when PROMETHEUS_DISABLE_CREATED_SERIES says so, as prometheus_client reads it."""
    return os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in ("true", "1", "t")


def disable_created_metrics() -> None:
    """Leaves the ``_created`` samples out of every metric's output (all views)."""
    _core.set_created(False)


def enable_created_metrics() -> None:
    """Shows the ``_created`` samples of counters, histograms and summaries (the default)."""
    _core.set_created(True)


# Read once, when the metric types are first imported, as prometheus_client does.
_core.set_created(_created_from_environment())

_unregistered: Optional[CollectorRegistry] = None
_unregistered_lock = threading.Lock()


def _unregistered_registry() -> CollectorRegistry:
    """The registry whose store holds metrics created with ``registry=None``:
    they record, but no scrape renders them."""
    global _unregistered
    with _unregistered_lock:
        if _unregistered is None:
            _unregistered = CollectorRegistry(store_size=64 << 20)
        return _unregistered


def _full_name(name: str, namespace: str, subsystem: str, unit: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidMetricError(f"{what} name must be a non-empty str, got {name!r}")
    full = "_".join(p for p in (namespace, subsystem, name) if p)
    # As prometheus_client builds it: a counter's _total goes first, then
    # the unit is added (so unit="total" gives requests_total_total).
    if what == "counter" and full.endswith("_total"):
        full = full[:-6]
    if unit:
        if not LABEL_NAME_RE.match(unit):
            raise InvalidMetricError(f"{full}: invalid unit {unit!r}")
        if not full.endswith("_" + unit):
            full += "_" + unit
    if not METRIC_NAME_RE.match(full):
        raise InvalidMetricError(
            f"Invalid metric name {full!r}: use letters, digits, '_' and ':' and do not start with a digit")
    return full


def _check_labelnames(name: str, labelnames: Iterable[str], reserved: Sequence[str]) -> Tuple[str, ...]:
    if isinstance(labelnames, str):
        raise InvalidMetricError(f"{name}: labelnames must be a sequence of str, not a str")
    names = tuple(labelnames)
    for ln in names:
        if not isinstance(ln, str) or not LABEL_NAME_RE.match(ln):
            raise InvalidMetricError(f"{name}: invalid label name {ln!r}")
        if ln.startswith("__"):
            raise InvalidMetricError(f"{name}: label names starting with '__' are reserved: {ln!r}")
        if ln in reserved:
            raise InvalidMetricError(f"{name}: label name {ln!r} is reserved for this metric type")
    dup = sorted({ln for ln in names if names.count(ln) > 1})
    if dup:
        raise InvalidMetricError(f"{name}: duplicate label names {dup}")
    return names


def _check_doc(name: str, documentation: str) -> str:
    if not isinstance(documentation, str):
        raise InvalidMetricError(f"{name}: documentation must be a str, got {type(documentation).__name__}")
    return documentation


class _Timer:
    """Times a block or a function (sync or async) and reports the seconds."""

    def __init__(self, report: Callable[[float], None]) -> None:
        self._report = report
        self._start = 0.0

    def __enter__(self) -> "_Timer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._report(max(time.perf_counter() - self._start, 0.0))

    def __call__(self, func: F) -> F:
        report = self._report
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def awrapped(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    report(max(time.perf_counter() - start, 0.0))
            return awrapped  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                report(max(time.perf_counter() - start, 0.0))
        return wrapped  # type: ignore[return-value]


class _Around:
    """A context manager and decorator running callbacks around a block."""

    def __init__(self, enter: Callable[[], None], exit: Callable[[Optional[BaseException]], None]) -> None:
        self._enter = enter
        self._exit = exit

    def __enter__(self) -> None:
        self._enter()

    def __exit__(self, typ: Any, value: Optional[BaseException], tb: Any) -> None:
        self._exit(value)

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def awrapped(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await func(*args, **kwargs)
            return awrapped  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)
        return wrapped  # type: ignore[return-value]



class StoreMetric:
    """Python side of the store-backed metrics (mixed into the C bases)."""

    _type: str = ""
    _core_type: int = 0
    _reserved_labels: Sequence[str] = ()
    _suffixes: Sequence[str] = ()

    def _setup(self, name: str, documentation: str, labelnames: Iterable[str], namespace: str,
               subsystem: str, unit: str, registry: Optional[CollectorRegistry],
               buckets: Optional[Tuple[float, ...]] = None, **spec: Any) -> None:
        full = _full_name(name, namespace, subsystem, unit, self._type)
        self._name = full
        self._documentation = _check_doc(full, documentation)
        self._labelnames = _check_labelnames(full, labelnames, self._reserved_labels)
        self._unit = unit
        registry = _fastprom_registry(registry)
        target = registry if registry is not None else _unregistered_registry()
        if registry is not None:
            registry._check_free(self._names())
        store = target._get_store()
        mpmode = self._mpmode() if target.shared_store() is not None else 0
        family = store.add_family(self._core_type, full, documentation, unit, self._labelnames, buckets, mpmode,
                                  **spec)
        self._bind(store, family, self._labelnames)  # type: ignore[attr-defined]
        if registry is not None:
            registry.register(self)

    def _names(self) -> List[str]:
        return [self._name] + [self._name + s for s in self._suffixes]

    def _mpmode(self) -> int:
        """How series combine across processes sharing a store (0: one shared cell)."""
        return 0

    def describe(self) -> List[Metric]:
        """The family without samples."""
        return [Metric(self._name, self._documentation, self._type, self._unit)]

    def collect(self) -> List[Metric]:
        """The family and its samples, read from the store by the same walk
        the exposition uses."""
        return self._collect_now()

    def _collect_now(self) -> List[Metric]:
        """collect() without running anything first (the registry has run its
        pre-collect hooks already)."""
        m = Metric(self._name, self._documentation, self._type, self._unit)
        m.samples = self._samples(Sample, Exemplar)  # type: ignore[attr-defined]
        return [m]

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({self._name})"


class _PyParent:
    """Shared parent/child logic of the pure-Python Info and Enum."""

    _type = ""
    _suffix = ""

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str], namespace: str,
                 subsystem: str, unit: str, registry: Optional[CollectorRegistry],
                 reserved: Sequence[str] = ()) -> None:
        full = _full_name(name, namespace, subsystem, unit, self._type)
        if self._suffix and full.endswith(self._suffix):
            full = full[: -len(self._suffix)]
        self._name = full
        self._documentation = _check_doc(full, documentation)
        self._labelnames = _check_labelnames(full, labelnames, reserved)
        self._lock = threading.Lock()
        self._children: Dict[Tuple[str, ...], Any] = {}
        self._labelvalues: Tuple[str, ...] = ()
        if registry is not None:
            registry.register(self)

    def _names(self) -> List[str]:
        return [self._name + self._suffix] if self._suffix else [self._name]

    def _new_child(self, values: Tuple[str, ...]) -> Any:
        child = object.__new__(type(self))
        child.__dict__.update(self.__dict__)
        child._labelvalues = values
        child._children = {}
        child._lock = threading.Lock()
        child._init_value()
        return child

    def _init_value(self) -> None:
        raise NotImplementedError

    def labels(self, *values: Any, **kw: Any) -> Any:
        """Returns the child for these label values, created on first use."""
        if not self._labelnames:
            raise ValueError(f"{self._name}: metric has no labels")
        if values and kw:
            raise ValueError(f"{self._name}: pass label values by position or by name, not both")
        if kw:
            if set(kw) != set(self._labelnames):
                raise ValueError(f"{self._name}: label names must be exactly {self._labelnames}, got {kw}")
            values = tuple(kw[n] for n in self._labelnames)
        if len(values) != len(self._labelnames):
            raise ValueError(f"{self._name}: expected {len(self._labelnames)} label values for "
                             f"{self._labelnames}, got {len(values)}")
        key = tuple(str(v) for v in values)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._new_child(key)
        return child

    def remove(self, *values: Any) -> None:
        """Drops one child."""
        with self._lock:
            self._children.pop(tuple(str(v) for v in values), None)

    def clear(self) -> None:
        """Drops every child."""
        with self._lock:
            self._children.clear()

    def _check_unlabelled(self) -> None:
        if self._labelnames and not self._labelvalues:
            raise ValueError(f"{self._name}: metric has labels {self._labelnames}; "
                             f"call .labels(...) to pick a series first")

    def _targets(self) -> List[Any]:
        if self._labelnames:
            with self._lock:
                return list(self._children.values())
        return [self]

    def describe(self) -> List[Metric]:
        return [Metric(self._name, self._documentation, self._type)]

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({self._name})"

