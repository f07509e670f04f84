"""Default collectors: process, platform and garbage-collector metrics,
named and shaped as prometheus_client's."""
from __future__ import annotations

import gc
import os
import platform as _platform
from typing import Any, Callable, Dict, Iterable, List, Optional

from .metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from .errors import DuplicateTimeseries
from .registry import REGISTRY, CollectorRegistry


class ProcessCollector:
    """``process_*`` metrics of a process, read from /proc (Linux).

    In multiprocess mode (the default registry's store shared by workers)
    it reports every live worker, each with a ``pid`` label.
    """

    def __init__(self, namespace: str = "", pid: Callable[[], object] = lambda: "self",
                 proc: str = "/proc", registry: Optional[CollectorRegistry] = REGISTRY) -> None:
        self._namespace = namespace
        self._pid = pid
        self._proc = proc
        self._registry = registry
        self._prefix = namespace + "_process_" if namespace else "process_"
        try:
            self._ticks = float(os.sysconf("SC_CLK_TCK"))
            self._pagesize = os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            self._ticks, self._pagesize = 100.0, 4096
        self._btime = self._boot_time()
        if registry is not None:
            registry.register(self)

    def _boot_time(self) -> Optional[float]:
        try:
            with open(os.path.join(self._proc, "stat"), "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        return float(line.split()[1])
        except OSError:
            pass
        return None

    def describe(self) -> List[Metric]:
        p = self._prefix
        return [GaugeMetricFamily(p + n, "") for n in (
            "virtual_memory_bytes", "resident_memory_bytes", "start_time_seconds", "open_fds", "max_fds",
        )] + [CounterMetricFamily(p + "cpu_seconds", "")]

    def _read(self, pid: str) -> Dict[str, float]:
        """The values for one process (fewer when /proc does not say)."""
        assert self._btime is not None
        out: Dict[str, float] = {}
        base = os.path.join(self._proc, pid)
        try:
            with open(os.path.join(base, "stat"), "rb") as f:
                parts = f.read().split(b")")[-1].split()
            out["virtual_memory_bytes"] = float(parts[20])
            out["resident_memory_bytes"] = float(parts[21]) * self._pagesize
            out["start_time_seconds"] = float(parts[19]) / self._ticks + self._btime
            out["cpu_seconds"] = (float(parts[11]) + float(parts[12])) / self._ticks
        except (OSError, IndexError, ValueError):
            return out
        try:
            out["open_fds"] = float(len(os.listdir(os.path.join(base, "fd"))))
            with open(os.path.join(base, "limits"), "rb") as f:
                for line in f:
                    if line.startswith(b"Max open files"):
                        out["max_fds"] = float(line.split()[3])
                        break
        except (OSError, IndexError, ValueError):
            pass
        return out

    _DOCS = (
        ("virtual_memory_bytes", "Virtual memory size in bytes."),
        ("resident_memory_bytes", "Resident memory size in bytes."),
        ("start_time_seconds", "Start time of the process since unix epoch in seconds."),
        ("cpu_seconds", "Total user and system CPU time spent in seconds."),
        ("open_fds", "Number of open file descriptors."),
        ("max_fds", "Maximum number of open file descriptors."),
    )

    def collect(self) -> Iterable[Metric]:
        if self._btime is None:
            return []
        shared = self._registry.shared_store() if self._registry is not None else None
        if shared is not None:
            from ._multiproc import live_pids

            rows = [([str(pid)], self._read(str(pid))) for pid in live_pids(shared)]
            labels: Optional[List[str]] = ["pid"]
        else:
            rows = [([], self._read(str(self._pid()).strip()))]
            labels = None
        out: List[Metric] = []
        for key, doc in self._DOCS:
            cls = CounterMetricFamily if key == "cpu_seconds" else GaugeMetricFamily
            fam = cls(self._prefix + key, doc, labels=labels)
            for label_values, values in rows:
                if key in values:
                    fam.add_metric(label_values, values[key])
            if fam.samples:
                out.append(fam)
        return out


class PlatformCollector:
    """``python_info``: the interpreter's version and implementation."""

    def __init__(self, registry: Optional[CollectorRegistry] = REGISTRY, platform: Optional[Any] = None) -> None:
        # ``platform``: an object with the platform module's functions (tests pass a fake one).
        pf = _platform if platform is None else platform
        major, minor, patchlevel = pf.python_version_tuple()
        self._labels: Dict[str, str] = {
            "version": pf.python_version(), "implementation": pf.python_implementation(),
            "major": major, "minor": minor, "patchlevel": patchlevel,
        }
        if pf.system() == "Java":
            version, _, (vm_name, vm_release, vm_vendor), _ = pf.java_ver()
            self._labels.update(jvm_version=version, jvm_release=vm_release, jvm_vendor=vm_vendor, jvm_name=vm_name)
        if registry is not None:
            registry.register(self)

    def describe(self) -> List[Metric]:
        return [GaugeMetricFamily("python_info", "")]

    def collect(self) -> Iterable[Metric]:
        # A gauge of value 1, as prometheus_client writes it (# TYPE python_info gauge in OpenMetrics too).
        g = GaugeMetricFamily("python_info", "Python platform information", labels=list(self._labels))
        g.add_metric(list(self._labels.values()), 1)
        return [g]


class GCCollector:
    """``python_gc_*``: objects collected, uncollectable objects and collections per generation."""

    def __init__(self, registry: Optional[CollectorRegistry] = REGISTRY) -> None:
        if registry is not None:
            registry.register(self)

    def describe(self) -> List[Metric]:
        return [CounterMetricFamily("python_gc_" + n, "") for n in (
            "objects_collected", "objects_uncollectable", "collections")]

    def collect(self) -> Iterable[Metric]:
        collected = CounterMetricFamily("python_gc_objects_collected", "Objects collected during gc",
                                        labels=["generation"])
        uncollectable = CounterMetricFamily("python_gc_objects_uncollectable",
                                            "Uncollectable objects found during GC", labels=["generation"])
        collections = CounterMetricFamily("python_gc_collections",
                                          "Number of times this generation was collected", labels=["generation"])
        for gen, stat in enumerate(gc.get_stats()):
            g = str(gen)
            collected.add_metric([g], stat["collected"])
            uncollectable.add_metric([g], stat["uncollectable"])
            collections.add_metric([g], stat["collections"])
        return [collected, uncollectable, collections]


def _default(collector: object) -> None:
    """Registers a default collector in REGISTRY unless its names are taken:
    when REGISTRY is prometheus_client's, its own default collectors (the
    same metrics) are there already and stay."""
    try:
        REGISTRY.register(collector)
    except DuplicateTimeseries:
        pass


PROCESS_COLLECTOR = ProcessCollector(registry=None)
PLATFORM_COLLECTOR = PlatformCollector(registry=None)
GC_COLLECTOR = GCCollector(registry=None)
for _c in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    _default(_c)
del _c
# With a shared store, process metrics come from every worker: this one.
PROCESS_COLLECTOR._registry = REGISTRY
REGISTRY._shared_process_collector = PROCESS_COLLECTOR
