"""One set of metrics across worker processes, at prometheus_client's
``prometheus_client.multiprocess`` path.

Turned on by ``PROMETHEUS_MULTIPROC_DIR`` (the variable prometheus_client
users already set) or ``FASTPROM_MULTIPROC_DIR``: the default registry's
store is the file ``fastprom.store`` in that directory, which every worker
maps (``FASTPROM_STORE_SIZE`` bytes, default 256 MiB).  Settings are read
when the default registry first needs its store, not at import.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional

from . import _core
from ._multiproc import (DEFAULT_SIZE, MODES, STORE_FILE, directory, live_pids, open_store,  # noqa: F401
                         store_size, track_per_process)
from .exposition import floatToGoString  # noqa: F401  (prometheus_client's module has these names)
from .instruments import Gauge  # noqa: F401
from .metrics_core import Metric
from .registry import REGISTRY
from .samples import Exemplar, Sample


class MultiProcessCollector:
    """prometheus_client's way to show every worker's metrics: registered in
    a registry of your own, it shows the whole shared store of ``path`` (by
    default the multiprocess directory) in that registry's output.

    fastprom's default registry already shows the shared store, so this is
    needed only by code written for prometheus_client
    (``registry = CollectorRegistry(); MultiProcessCollector(registry)``).
    """

    def __init__(self, registry: Any, path: Optional[str] = None) -> None:
        if path is None:
            path = directory()
        if not path or not os.path.isdir(path):
            raise ValueError("env PROMETHEUS_MULTIPROC_DIR is not set or not a directory")
        self._path = path
        self._store: Optional[_core.Store] = None
        if registry:
            registry.register(self)

    def _shared(self) -> _core.Store:
        """The store of the directory: the default registry's when it is
        that one, else a mapping of its own."""
        if self._store is None:
            if REGISTRY._multiprocess and os.path.realpath(directory() or "") == os.path.realpath(self._path):
                self._store = REGISTRY._get_store()
            else:
                self._store = open_store(self._path)
        return self._store

    def _render_items(self) -> List[Any]:
        """What the renderer shows for this collector: the whole store."""
        return [self._shared()]

    def collect(self) -> List[Any]:
        """Every family of the shared store, as metric families."""
        return store_families(self._shared())


def store_families(store: _core.Store) -> List[Metric]:
    """Every family of a store, as metric families."""
    out = []
    for i in range(store.family_count()):
        name, typ, help_text, unit = store.family(i)
        m = Metric(name, help_text, typ, unit)
        m.samples = store.samples(i, Sample, Exemplar)
        out.append(m)
    return out


def mark_process_dead(pid: int, path: Optional[str] = None) -> None:
    """Kept for gunicorn configurations written for prometheus_client
    (``child_exit``): it does nothing, since the store tells a dead worker
    by itself (by pid and start time), and ``live`` gauges drop its series
    as soon as it has exited."""
    del pid, path

