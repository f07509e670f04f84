"""Counter, Gauge, Histogram, Summary, Info and Enum.

The first four are Python subclasses of C types from ``_core``: their
``inc``/``set``/``observe`` methods and ``labels()`` run entirely in C.
This module adds what prometheus_client users expect on top: validation,
registration, timers and decorators, and ``collect()``.
"""
from __future__ import annotations

import functools
import inspect
import math
import threading
import time
import weakref
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type, TypeVar,
                    Union)

from . import _core
from .errors import InvalidMetricError
from .metrics_core import LABEL_NAME_RE, METRIC_NAME_RE, Metric
from .registry import REGISTRY, CollectorRegistry

INF = float("inf")
DEFAULT_BUCKETS: Tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INF,
)

F = TypeVar("F", bound=Callable[..., Any])

#: The store used by metrics created with ``registry=None``.
_unregistered: Optional[CollectorRegistry] = None


def _le(bound: float) -> str:
    """Formats a bucket bound as prometheus_client's samples carry it ("1.0", "+Inf")."""
    return _core.format_float(bound, True)


def _full_name(name: str, namespace: str, subsystem: str, unit: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidMetricError(f"{what} name must be a non-empty str, got {name!r}")
    full = "_".join(p for p in (namespace, subsystem, name) if p)
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
    _store: _core.Store

    def _setup(self, name: str, documentation: str, labelnames: Iterable[str], namespace: str,
               subsystem: str, unit: str, registry: Optional[CollectorRegistry],
               buckets: Optional[Tuple[float, ...]] = None, **spec: Any) -> None:
        full = _full_name(name, namespace, subsystem, unit, self._type)
        if self._type == "counter" and full.endswith("_total"):
            full = full[:-6]
        self._name = full
        self._documentation = _check_doc(full, documentation)
        self._labelnames = _check_labelnames(full, labelnames, self._reserved_labels)
        self._unit = unit
        target = registry
        if target is None:
            global _unregistered
            if _unregistered is None:
                _unregistered = CollectorRegistry(store_size=64 << 20)
            target = _unregistered
        else:
            target._check_free(self._names())
        store = target._get_store()
        mpmode = self._mpmode() if target.shared_store() is not None else 0
        family = store.add_family(self._core_type, full, documentation, unit, self._labelnames, buckets, mpmode,
                                  **spec)
        self._store = store
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

    def _sample_rows(self, m: Metric, labels: Dict[str, str], created: float, data: Any) -> None:
        raise NotImplementedError

    def collect(self) -> List[Metric]:
        """The family with a sample per live series (values read from the store)."""
        m = Metric(self._name, self._documentation, self._type, self._unit)
        for values, created, data in self._series():  # type: ignore[attr-defined]
            self._sample_rows(m, dict(zip(self._labelnames, values)), created, data)
        return [m]

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({self._name})"


class Counter(_core.CounterBase, StoreMetric):
    """A monotonically increasing value.

    >>> c = Counter("requests", "Requests handled", ["method"])
    >>> c.labels("GET").inc()

    ``inc(amount=1, exemplar=None)`` takes a non-negative finite amount; an
    exemplar (dict of labels, at most 128 characters) appears in OpenMetrics
    output.  Rendered as ``<name>_total`` (a trailing ``_total`` in the name
    is dropped, as prometheus_client does).
    """

    _type = "counter"
    _core_type = _core.COUNTER
    _suffixes = ("_total", "_created")

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None) -> None:
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry)

    def count_exceptions(self, exception: Union[Type[BaseException], Tuple[Type[BaseException], ...]]
                         = Exception) -> _Around:
        """Counts exceptions of the given type raised in a block or function."""
        def on_exit(exc: Optional[BaseException]) -> None:
            if isinstance(exc, exception):
                self.inc()
        return _Around(lambda: None, on_exit)

    def _sample_rows(self, m: Metric, labels: Dict[str, str], created: float, data: Any) -> None:
        m.add_sample(self._name + "_total", labels, data)
        m.add_sample(self._name + "_created", labels, created)


_function_gauges: "weakref.WeakKeyDictionary[Gauge, Callable[[], float]]" = weakref.WeakKeyDictionary()
_function_lock = threading.Lock()


def refresh_function_gauges() -> None:
    """Sets every gauge that has a function to that function's current value."""
    with _function_lock:
        pairs = list(_function_gauges.items())
    for gauge, f in pairs:
        gauge.set(f())


class Gauge(_core.GaugeBase, StoreMetric):
    """A value that can go up and down.

    ``inc``/``dec``/``set`` run in C.  ``multiprocess_mode`` is accepted for
    compatibility with prometheus_client and recorded for multi-process use.
    """

    _type = "gauge"
    _core_type = _core.GAUGE
    _MODES = ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent",
              "livemostrecent")

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None, multiprocess_mode: str = "all") -> None:
        if multiprocess_mode not in self._MODES:
            raise InvalidMetricError(f"{name}: invalid multiprocess_mode {multiprocess_mode!r}; "
                                     f"one of {self._MODES}")
        self._multiprocess_mode = multiprocess_mode
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry)
        if self._mpmode() and registry is not None and registry.shared_store() is not None:
            from .multiprocess import track_per_process

            track_per_process(self)

    def _mpmode(self) -> int:
        from .multiprocess import MODES

        return MODES[self._multiprocess_mode]

    def set_to_current_time(self) -> None:
        """Sets the gauge to the current Unix time in seconds."""
        self.set(time.time())

    def track_inprogress(self) -> _Around:
        """Adds 1 while a block or function runs."""
        return _Around(self.inc, lambda exc: self.dec())

    def time(self) -> _Timer:
        """Sets the gauge to the duration of a block or function, in seconds."""
        return _Timer(self.set)

    def set_function(self, f: Callable[[], float]) -> None:
        """Makes the gauge report ``f()`` at every scrape."""
        if not callable(f):
            raise TypeError(f"set_function needs a callable, got {f!r}")
        self.set(f())  # fails early, on the parent of a labelled gauge too
        with _function_lock:
            _function_gauges[self] = f

    def _sample_rows(self, m: Metric, labels: Dict[str, str], created: float, data: Any) -> None:
        m.add_sample(self._name, labels, data)

    def collect(self) -> List[Metric]:
        """The family; per-process series of a shared store are combined by
        ``multiprocess_mode`` as the exposition combines them."""
        rows = self._series()
        if not rows or not isinstance(rows[0][2], tuple):
            return super().collect()
        mode = self._multiprocess_mode
        m = Metric(self._name, self._documentation, self._type, self._unit)
        groups: Dict[Tuple[str, ...], Tuple[float, float]] = {}
        for values, _created, (value, ts, alive) in rows:
            if mode.startswith("live") and not alive:
                continue
            if mode in ("all", "liveall"):
                m.add_sample(self._name, dict(zip(self._labelnames + ("pid",), values)), value)
                continue
            key = values[:-1]
            if key not in groups:
                groups[key] = (value, ts)
                continue
            old, old_ts = groups[key]
            if mode.endswith("sum"):
                groups[key] = (old + value, old_ts)
            elif mode.endswith("max"):
                groups[key] = (max(old, value), old_ts)
            elif mode.endswith("min"):
                groups[key] = (min(old, value), old_ts)
            elif ts > old_ts:
                groups[key] = (value, ts)
        for key, (value, _ts) in groups.items():
            m.add_sample(self._name, dict(zip(self._labelnames, key)), value)
        return [m]


def _check_buckets(name: str, buckets: Iterable[float]) -> Tuple[float, ...]:
    try:
        bs = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise InvalidMetricError(f"{name}: buckets must be numbers, got {buckets!r}") from None
    if bs and bs[-1] != INF:
        bs.append(INF)
    if len(bs) < 2:
        raise InvalidMetricError(f"{name}: a histogram needs at least one bucket besides +Inf")
    for a, b in zip(bs, bs[1:]):
        if not a < b:
            raise InvalidMetricError(f"{name}: buckets must be sorted and distinct, got {a} before {b}")
    if any(math.isnan(b) or b == -INF for b in bs):
        raise InvalidMetricError(f"{name}: buckets must not be NaN or -Inf")
    return tuple(bs)


class Histogram(_core.HistogramBase, StoreMetric):
    """Counts observations in configurable buckets, with their sum and count.

    ``observe(amount, exemplar=None)`` takes a finite value; the rendered
    ``+Inf`` bucket always equals ``_count``.
    """

    _type = "histogram"
    _core_type = _core.HISTOGRAM
    _reserved_labels = ("le",)
    _suffixes = ("_bucket", "_count", "_sum", "_created")
    DEFAULT_BUCKETS = DEFAULT_BUCKETS

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None,
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        full = _full_name(name, namespace, subsystem, unit, "histogram")
        self._upper_bounds = _check_buckets(full, buckets)
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry,
                    self._upper_bounds)

    def time(self) -> _Timer:
        """Observes the duration of a block or function, in seconds."""
        return _Timer(self.observe)

    def _sample_rows(self, m: Metric, labels: Dict[str, str], created: float, data: Any) -> None:
        counts, total = data
        cum = 0
        for bound, n in zip(self._upper_bounds, counts):
            cum += n
            m.add_sample(self._name + "_bucket", dict(labels, le=_le(bound)), float(cum))
        if self._upper_bounds[0] >= 0:  # OpenMetrics: no _count/_sum with negative buckets
            m.add_sample(self._name + "_count", labels, float(cum))
            m.add_sample(self._name + "_sum", labels, total)
        m.add_sample(self._name + "_created", labels, created)


def _check_quantiles(name: str, quantiles: Iterable[float], max_age_seconds: float,
                     age_buckets: int) -> Tuple[float, ...]:
    try:
        qs = [float(q) for q in quantiles]
    except (TypeError, ValueError):
        raise InvalidMetricError(f"{name}: quantiles must be numbers, got {quantiles!r}") from None
    bad = [q for q in qs if not 0.0 <= q <= 1.0]
    if bad:
        raise InvalidMetricError(f"{name}: quantiles must be between 0 and 1, got {bad}")
    dup = sorted({q for q in qs if qs.count(q) > 1})
    if dup:
        raise InvalidMetricError(f"{name}: duplicate quantiles {dup}")
    if len(qs) > _core_max_quantiles:
        raise InvalidMetricError(f"{name}: at most {_core_max_quantiles} quantiles, got {len(qs)}")
    if qs:
        if not (isinstance(age_buckets, int) and 1 <= age_buckets <= 60):
            raise InvalidMetricError(f"{name}: age_buckets must be an integer from 1 to 60, got {age_buckets!r}")
        if not (isinstance(max_age_seconds, (int, float)) and 0.001 * age_buckets <= max_age_seconds <= 366 * 86400):
            raise InvalidMetricError(
                f"{name}: max_age_seconds must be at least 1 ms per age bucket and at most a year, "
                f"got {max_age_seconds!r}")
    return tuple(sorted(qs))


_core_max_quantiles = 32


class Summary(_core.SummaryBase, StoreMetric):
    """Count and sum of observations, and optionally quantiles over a
    sliding time window.

    ``observe(amount)`` takes a finite value.  With ``quantiles=(0.5, 0.9,
    0.99)`` each series also reports ``{quantile="0.5"}`` and so on, over the
    last ``max_age_seconds`` (in ``age_buckets`` steps: an observation stops
    counting between ``max_age_seconds * (1 - 1/age_buckets)`` and
    ``max_age_seconds`` after it was made).  Every reported quantile is
    within 1% (relative) of the true one for values whose magnitude is
    between 1e-9 and 1e12; smaller magnitudes count as 0, larger ones as
    1e12.  An empty window reports NaN.  The estimate is a log-bucketed
    sketch, so workers sharing a store report the quantiles of all their
    observations together.  ``quantiles=()`` (the default) keeps count and sum
    only, as prometheus_client does.
    """

    _type = "summary"
    _core_type = _core.SUMMARY
    _reserved_labels = ("quantile",)
    _suffixes = ("_count", "_sum", "_created")

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None, quantiles: Iterable[float] = (),
                 max_age_seconds: float = 600.0, age_buckets: int = 5) -> None:
        full = _full_name(name, namespace, subsystem, unit, "summary")
        self._quantiles = _check_quantiles(full, quantiles, max_age_seconds, age_buckets)
        extra: Dict[str, Any] = {}
        if self._quantiles:
            extra = {"quantiles": self._quantiles, "max_age": float(max_age_seconds), "age_buckets": age_buckets}
        self._setup(name, documentation, labelnames, namespace, subsystem, unit, registry, **extra)

    def time(self) -> _Timer:
        """Observes the duration of a block or function, in seconds."""
        return _Timer(self.observe)

    def _sample_rows(self, m: Metric, labels: Dict[str, str], created: float, data: Any) -> None:
        for q, v in zip(self._quantiles, data[2] if len(data) > 2 else ()):
            m.add_sample(self._name, dict(labels, quantile=_le(q)), v)
        count, total = data[0], data[1]
        m.add_sample(self._name + "_count", labels, float(count))
        m.add_sample(self._name + "_sum", labels, total)
        m.add_sample(self._name + "_created", labels, created)


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


class Info(_PyParent):
    """Key-value information about the target, e.g. a version: ``i.info({"version": "1.2"})``."""

    _type = "info"
    _suffix = "_info"

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None) -> None:
        if unit:
            raise InvalidMetricError(f"{name}: an info metric has no unit")
        self._value: Dict[str, str] = {}
        super().__init__(name, documentation, labelnames, namespace, subsystem, unit, registry)

    def _init_value(self) -> None:
        self._value = {}

    def info(self, val: Dict[str, str]) -> None:
        """Sets the info labels."""
        self._check_unlabelled()
        if not isinstance(val, dict):
            raise TypeError(f"{self._name}: info() needs a dict of str to str")
        clash = set(val) & set(self._labelnames)
        if clash:
            raise ValueError(f"{self._name}: info keys overlap the label names: {sorted(clash)}")
        for k, v in val.items():
            if not isinstance(k, str) or not LABEL_NAME_RE.match(k) or k.startswith("__"):
                raise ValueError(f"{self._name}: invalid info label name {k!r}")
            if not isinstance(v, str):
                raise ValueError(f"{self._name}: info label values must be str, got {v!r} for {k!r}")
        with self._lock:
            self._value = dict(val)

    def collect(self) -> List[Metric]:
        m = Metric(self._name, self._documentation, "info")
        for t in self._targets():
            labels = dict(zip(self._labelnames, t._labelvalues))
            labels.update(t._value)
            m.add_sample(self._name + "_info", labels, 1.0)
        return [m]


class Enum(_PyParent):
    """Which of a set of states is current: ``e.state("running")``."""

    _type = "stateset"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 namespace: str = "", subsystem: str = "", unit: str = "",
                 registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None, states: Optional[Sequence[str]] = None) -> None:
        full = _full_name(name, namespace, subsystem, unit, "enum")
        if unit:
            raise InvalidMetricError(f"{full}: an enum metric has no unit")
        if not states:
            raise InvalidMetricError(f"{full}: an enum needs a non-empty list of states")
        if len(set(states)) != len(states) or not all(isinstance(s, str) for s in states):
            raise InvalidMetricError(f"{full}: states must be distinct str, got {list(states)}")
        self._states = list(states)
        self._state = 0
        super().__init__(name, documentation, labelnames, namespace, subsystem, unit, registry,
                         reserved=(full,))

    def _init_value(self) -> None:
        self._state = 0

    def state(self, state: str) -> None:
        """Makes ``state`` the current one."""
        self._check_unlabelled()
        try:
            idx = self._states.index(state)
        except ValueError:
            raise ValueError(f"{self._name}: unknown state {state!r}; one of {self._states}") from None
        self._state = idx

    def collect(self) -> List[Metric]:
        m = Metric(self._name, self._documentation, "stateset")
        for t in self._targets():
            labels = dict(zip(self._labelnames, t._labelvalues))
            for i, s in enumerate(self._states):
                m.add_sample(self._name, dict(labels, **{self._name: s}), 1.0 if i == t._state else 0.0)
        return [m]
