"""The shared store's set-up (the public module is :mod:`fastprom.multiprocess`):
one set of metrics across worker processes, the default registry's store
in a file that every worker maps.

Turned on by ``PROMETHEUS_MULTIPROC_DIR`` (the variable prometheus_client
users already set) or ``FASTPROM_MULTIPROC_DIR``: the store is the file
``fastprom.store`` in that directory, ``FASTPROM_STORE_SIZE`` bytes
(default 256 MiB; disk pages are reserved as the store grows).
Settings are read when the default registry first needs its store, not at
import.
"""
from __future__ import annotations

import os
import threading
import warnings
import weakref
from typing import Any, Dict, List, Optional

from . import _core

STORE_FILE = "fastprom.store"
DEFAULT_SIZE: int = _core.STORE_DEFAULT_SIZE

#: Gauge multiprocess modes, as prometheus_client names them, to the store's codes.
MODES: Dict[str, int] = dict(_core.MULTIPROCESS_MODES)

_lock = threading.Lock()
_fork_hook_installed = False
_shared_stores: List[_core.Store] = []  # the default registry's: they live as long as the process
_per_process: "weakref.WeakSet[Any]" = weakref.WeakSet()


def directory() -> Optional[str]:
    """The multiprocess directory, or None when multiprocess mode is off."""
    return os.environ.get("FASTPROM_MULTIPROC_DIR") or os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def store_size() -> int:
    """The store size from ``FASTPROM_STORE_SIZE`` (bytes; K, M, G suffixes allowed)."""
    raw = os.environ.get("FASTPROM_STORE_SIZE", "").strip()
    if not raw:
        return DEFAULT_SIZE
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    mult = units.get(raw[-1].lower(), 1)
    digits = raw[:-1] if raw[-1].lower() in units else raw
    try:
        size = int(digits) * mult
    except ValueError:
        raise ValueError(f"FASTPROM_STORE_SIZE={raw!r} is not a size in bytes (e.g. 268435456 or 256M)") from None
    if not _core.STORE_MIN_SIZE <= size <= _core.STORE_MAX_SIZE:
        raise ValueError(f"FASTPROM_STORE_SIZE={raw!r} must be between 1M and 1024G")
    return size


def open_store(path_dir: str) -> _core.Store:
    """Maps the shared store in ``path_dir``; raises StoreFileError with what to do."""
    if not os.path.isdir(path_dir):
        raise _core.StoreFileError(
            f"the multiprocess directory {path_dir!r} does not exist; create it (empty) before starting "
            f"the workers, or unset PROMETHEUS_MULTIPROC_DIR")
    store = _core.Store(store_size(), os.path.join(path_dir, STORE_FILE))
    _install_fork_hook()
    _shared_stores.append(store)
    return store


def track_per_process(metric: Any) -> None:
    """Remembers a per-process gauge, to re-key it in forked children."""
    _per_process.add(metric)


def _after_fork_in_child() -> None:
    # Each step on its own: one failing must not leave the others undone
    # (a gauge still keyed to the parent would write the parent's series).
    for store in list(_shared_stores):
        try:
            store.attach_process()
        except Exception as e:  # noqa: BLE001 - reported, the child goes on
            warnings.warn(f"fastprom: {e}", RuntimeWarning)
    for metric in list(_per_process):
        try:
            metric._after_fork()
        except Exception as e:  # noqa: BLE001
            warnings.warn(f"fastprom: {metric!r} could not be re-keyed after a fork: {e}", RuntimeWarning)


def _install_fork_hook() -> None:
    global _fork_hook_installed
    with _lock:
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True


def live_pids(store: _core.Store) -> List[int]:
    """Pids of the live processes attached to a shared store."""
    return [pid for pid, alive in store.processes() if alive]

