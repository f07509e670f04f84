"""What the metric types share: name and label checks, the common base
class, the store-backed mixin, and the parent/child logic of the
pure-Python Info and Enum."""
from __future__ import annotations

import os
import threading
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .. import _core, validation
from ..bridge import is_prometheus_client_registry, registry_for
from ..errors import InvalidMetricError
from ..metrics_core import Metric
from ..registry import REGISTRY, CollectorRegistry
from ..samples import Exemplar, Sample

INF = float("inf")


def _fastprom_registry(registry: Any) -> Optional[CollectorRegistry]:
    """The fastprom registry for a ``registry=`` argument: itself, or the
    one standing for a prometheus_client registry."""
    if registry is not None and not isinstance(registry, CollectorRegistry) and is_prometheus_client_registry(registry):
        return registry_for(registry)
    return registry


def _created_from_environment() -> bool:
    """False when PROMETHEUS_DISABLE_CREATED_SERIES says so, as prometheus_client reads it."""
    return os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in ("true", "1", "t")


_created_on = True  # what the C renderer was last told


def _set_created(on: bool) -> None:
    global _created_on
    _created_on = on
    _core.set_created(on)


def disable_created_metrics() -> None:
    """Leaves the ``_created`` samples out of every metric's output (all views)."""
    _set_created(False)


def enable_created_metrics() -> None:
    """Shows the ``_created`` samples of counters, histograms and summaries (the default)."""
    _set_created(True)


def created_enabled() -> bool:
    """True when ``_created`` samples are shown."""
    return _created_on


# Read once, when the metric types are first imported, as prometheus_client does.
_set_created(_created_from_environment())

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
    """The metric's name as prometheus_client builds it: namespace, subsystem
    and name joined by ``_``; a counter's ``_total`` dropped first, then the
    unit added (so ``unit="total"`` gives ``requests_total_total``)."""
    if not isinstance(name, str):
        raise InvalidMetricError(f"{what} name must be a str, got {name!r}")
    if not name:
        raise InvalidMetricError("Metric name should not be empty")
    full = "_".join(p for p in (namespace, subsystem, name) if p)
    if what == "counter" and full.endswith("_total"):
        full = full[:-6]
    if unit:
        if what in ("info", "stateset"):
            raise InvalidMetricError(f"Metric name is of a type that cannot have a unit: {full}")
        if not isinstance(unit, str) or not validation.METRIC_LABEL_NAME_RE.fullmatch(unit):
            raise InvalidMetricError(f"{full}: invalid unit {unit!r} (letters, digits and '_')")
        if not full.endswith("_" + unit):
            full += "_" + unit
    try:
        validation._validate_metric_name(full)
    except ValueError as e:
        raise InvalidMetricError(str(e)) from None
    return full


def _check_labelnames(name: str, labelnames: Iterable[str], reserved: Sequence[str]) -> Tuple[str, ...]:
    """The label names as a tuple, checked: fastprom's metrics keep legacy
    label names only (letters, digits and ``_``, not starting with a digit)."""
    if isinstance(labelnames, str):
        raise InvalidMetricError(f"{name}: labelnames must be a sequence of str, not a str")
    names = tuple(labelnames)
    for ln in names:
        try:
            validation._validate_labelname(ln)
        except ValueError as e:
            raise InvalidMetricError(str(e)) from None
        if ln in reserved:
            raise InvalidMetricError(f"Reserved label metric name: {ln} (reserved for this metric type)")
        if not validation.METRIC_LABEL_NAME_RE.fullmatch(ln):
            shown = ln if ln.isprintable() else repr(ln)
            raise InvalidMetricError(f"Invalid label metric name: {shown} ({name}: fastprom's metrics take label "
                                     f"names of letters, digits and '_', not starting with a digit)")
    dup = sorted({ln for ln in names if names.count(ln) > 1})
    if dup:
        raise InvalidMetricError(f"{name}: duplicate label names {dup}")
    return names


OVERFLOW_VALUE = "fastprom_overflow"
"""The label value of every label of a metric's overflow series."""


def _check_max_series(name: str, max_series: Optional[int]) -> int:
    """``max_series`` as the store takes it (0: no limit)."""
    if max_series is None:
        return 0
    if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 1:
        raise InvalidMetricError(f"{name}: max_series must be a positive int or None, got {max_series!r}")
    return max_series


def _check_doc(name: str, documentation: str) -> str:
    if not isinstance(documentation, str):
        raise InvalidMetricError(f"{name}: documentation must be a str, got {type(documentation).__name__}")
    return documentation


class MetricWrapperBase:
    """The base of every metric type (Counter, Gauge, Histogram, Summary,
    Info, Enum), at prometheus_client's name: for ``isinstance`` checks and
    annotations, and the label API they share.  It defines no metric
    type of its own: subclassing it to make one is not supported."""

    _type: Optional[str] = None
    _reserved_labelnames: Sequence[str] = ()
    _name: str
    _documentation: str
    _labelnames: Tuple[str, ...]

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = (), namespace: str = "",
                 subsystem: str = "", unit: str = "", registry: Optional[CollectorRegistry] = REGISTRY,
                 _labelvalues: Optional[Sequence[str]] = None) -> None:
        raise TypeError("MetricWrapperBase is the base of fastprom's metric types; "
                        "use Counter, Gauge, Histogram, Summary, Info or Enum")

    def _is_parent(self) -> bool:
        return bool(self._labelnames) and not self._labelvalues  # type: ignore[attr-defined]

    def _is_observable(self) -> bool:
        """True for an unlabelled metric or a child: it holds a value."""
        return not self._is_parent()

    def _raise_if_not_observable(self) -> None:
        """Raises prometheus_client's ValueError on the parent of a labelled metric."""
        if not self._is_observable():
            raise ValueError(f"{self._type} metric is missing label values ({self._name} has labels "
                             f"{self._labelnames}: call .labels(...) to pick a series first)")

    def _label_pairs(self) -> List[Tuple[str, ...]]:
        """The label values of every series of a labelled parent."""
        raise NotImplementedError

    def remove_by_labels(self, labels: Dict[str, str]) -> None:
        """Removes every series whose labels include all of ``labels``
        (``{"tenant": "acme"}`` removes each tenant=acme series, whatever
        its other labels); an empty dict removes nothing."""
        if not self._labelnames:
            raise ValueError(f"No label names were set when constructing {self}")
        if not isinstance(labels, dict):
            raise TypeError("labels must be a dict of {label_name: label_value}")
        if not labels:
            return
        unknown = [k for k in labels if k not in self._labelnames]
        if unknown:
            raise ValueError(f"Unknown label names: {unknown}; expected {self._labelnames}")
        want = {self._labelnames.index(k): str(v) for k, v in labels.items()}
        for values in self._label_pairs():
            if all(values[i] == v for i, v in want.items()):
                self.remove(*values)  # type: ignore[attr-defined]

    def describe(self) -> List[Metric]:
        """The family without samples."""
        return [Metric(self._name, self._documentation, self._type or "unknown", getattr(self, "_unit", ""))]

    def __str__(self) -> str:
        return f"{self._type}:{self._name}"

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({self._name})"


class StoreMetric(MetricWrapperBase):
    """Python side of the store-backed metrics, listed before their C base
    so that these methods come first."""

    _core_type: int = 0
    _suffixes: Sequence[str] = ()
    _unit: str = ""
    _parent: Any  # the labelled parent of a child; an unlabelled metric or a parent itself

    def _setup(self, name: str, documentation: str, labelnames: Iterable[str], namespace: str,
               subsystem: str, unit: str, registry: Optional[CollectorRegistry],
               buckets: Optional[Tuple[float, ...]] = None, max_series: Optional[int] = None,
               **spec: Any) -> None:
        full = _full_name(name, namespace, subsystem, unit, self._type or "")
        self._name = full
        self._documentation = _check_doc(full, documentation)
        self._labelnames = _check_labelnames(full, labelnames, self._reserved_labelnames)
        limit = _check_max_series(full, max_series)
        self._max_series = max_series
        self._unit = unit
        self._parent = self  # children share this object's attributes, so this names their parent
        registry = _fastprom_registry(registry)
        target = registry if registry is not None else _unregistered_registry()
        if registry is not None:
            registry._check_free(self._names())
        store = target._get_store()
        mpmode = self._mpmode() if target.shared_store() is not None else 0
        if mpmode and "pid" in self._labelnames:
            raise InvalidMetricError(f"{full}: a gauge in a multi-process store cannot have a label named 'pid': "
                                     "the store adds one of its own, for each process")
        family = store.add_family(self._core_type, full, documentation, unit, self._labelnames, buckets, mpmode,
                                  **spec)
        self._bind(store, family, self._labelnames, limit)  # type: ignore[attr-defined]
        if registry is not None:
            registry.register(self)

    def _names(self) -> List[str]:
        return [self._name] + [self._name + s for s in self._suffixes]

    def _mpmode(self) -> int:
        """How series combine across processes sharing a store (0: one shared cell)."""
        return 0

    def remove(self, *labelvalues: Any) -> None:
        """Drops the series of these label values (nothing if there is none)."""
        if not self._labelnames:
            raise ValueError(f"No label names were set when constructing {self}")
        if len(labelvalues) != len(self._labelnames):
            raise ValueError(f"Incorrect label count (expected {len(self._labelnames)}, got {labelvalues})")
        _core.MetricBase.remove(self, *labelvalues)  # type: ignore[arg-type]

    def clear(self) -> None:
        """Drops every series of a labelled metric (an unlabelled one keeps its value)."""
        if self._labelnames:
            _core.MetricBase.clear(self)  # type: ignore[arg-type]

    def _label_pairs(self) -> List[Tuple[str, ...]]:
        names = self._labelnames
        seen: Dict[Tuple[str, ...], None] = {}
        for s in self._samples(Sample, Exemplar):  # type: ignore[attr-defined]
            seen[tuple(s.labels[n] for n in names)] = None
        return list(seen)

    def _check_exemplar_label_name(self, name: str) -> None:
        """Called by the C update path for an exemplar label name that is
        not a legacy one: raises ValueError unless the name is accepted."""
        validation._validate_labelname(name)
        if not name or "=" in name or "\n" in name:
            raise ValueError(f"Invalid label metric name: {name!r} (an exemplar label name cannot hold '=' "
                             f"or a newline)")

    def collect(self) -> List[Metric]:
        """The family and its samples, read from the store by the same walk
        the exposition uses."""
        return self._collect_now()

    def _collect_now(self) -> List[Metric]:
        """collect() without running anything first (the registry has run its
        pre-collect hooks already)."""
        m = Metric(self._name, self._documentation, self._type or "unknown", self._unit)
        m.samples = self._samples(Sample, Exemplar)  # type: ignore[attr-defined]
        return [m]


class _PyParent(MetricWrapperBase):
    """Shared parent/child logic of the pure-Python Info and Enum."""

    _suffix = ""

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str], namespace: str,
                 subsystem: str, unit: str, registry: Optional[CollectorRegistry],
                 reserved: Sequence[str] = (), max_series: Optional[int] = None) -> None:
        full = _full_name(name, namespace, subsystem, unit, self._type or "")
        if self._suffix and full.endswith(self._suffix):
            full = full[: -len(self._suffix)]
        self._name = full
        self._documentation = _check_doc(full, documentation)
        self._labelnames = _check_labelnames(full, labelnames, reserved)
        self._max_series = max_series
        self._limit = _check_max_series(full, max_series)
        self._limited = 0  # label lookups sent to the overflow child by the limit
        self._lock = threading.Lock()
        self._children: Dict[Tuple[str, ...], Any] = {}
        self._labelvalues: Tuple[str, ...] = ()
        registry = _fastprom_registry(registry)
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
            raise ValueError(f"No label names were set when constructing {self}")
        if self._labelvalues:
            raise ValueError(f"{self} already has labels set ({dict(zip(self._labelnames, self._labelvalues))}); "
                             f"can not chain calls to .labels()")
        if values and kw:
            raise ValueError("Can't pass both *args and **kwargs")
        if kw:
            if sorted(kw) != sorted(self._labelnames):
                raise ValueError(f"Incorrect label names ({self._name}: expected {self._labelnames}, "
                                 f"got {tuple(kw)})")
            values = tuple(kw[n] for n in self._labelnames)
        if len(values) != len(self._labelnames):
            raise ValueError(f"Incorrect label count ({self._name}: expected {len(self._labelnames)} label "
                             f"values for {self._labelnames}, got {len(values)})")
        key = tuple(str(v) for v in values)
        warn = False
        with self._lock:
            child = self._children.get(key)
            if child is None:
                if self._limit and len(self._children) >= self._limit:
                    # Past max_series: the overflow child (which may take
                    # the limit's last place, as in the store).
                    self._limited += 1
                    warn = self._limited == 1
                    key = (OVERFLOW_VALUE,) * len(self._labelnames)
                    child = self._children.get(key)
                if child is None:
                    child = self._children[key] = self._new_child(key)
        if warn:
            warnings.warn(f"{self._name}: {self._limit} series, its max_series; new label sets are counted under "
                          f"the series with every label = \"{OVERFLOW_VALUE}\" (fastprom_series_limited_total "
                          f"counts them; raise max_series, or keep unbounded values out of labels)",
                          RuntimeWarning, stacklevel=2)
        return child

    def remove(self, *values: Any) -> None:
        """Drops one child (nothing if there is none)."""
        if not self._labelnames:
            raise ValueError(f"No label names were set when constructing {self}")
        if len(values) != len(self._labelnames):
            raise ValueError(f"Incorrect label count (expected {len(self._labelnames)}, got {values})")
        with self._lock:
            self._children.pop(tuple(str(v) for v in values), None)

    def clear(self) -> None:
        """Drops every child."""
        with self._lock:
            self._children.clear()

    def _label_pairs(self) -> List[Tuple[str, ...]]:
        with self._lock:
            return list(self._children)

    def _targets(self) -> List[Any]:
        if self._labelnames:
            with self._lock:
                return list(self._children.values())
        return [self]
