"""One metrics server for several workers: the workers sharing a store
elect, with an exclusive ``flock`` on a file beside the store, the one that
binds the port.  The others poll the lock and the first to get it after
the holder dies (the kernel drops a dead process's locks) binds the port
in its place.  A single process serves every scrape, and it renders the
shared store, so the answer has every worker's totals.
"""
from __future__ import annotations

import errno
import fcntl
import os
import sys
import threading
import weakref
from typing import Any, Callable, Optional, Tuple

#: How often a waiting worker tries the lock (seconds): the longest the port goes unanswered after the server dies.
POLL = 0.25

_elections: "weakref.WeakSet[ElectedServer]" = weakref.WeakSet()
_fork_hook = False


def _in_child() -> None:
    # A forked child shares its parent's lock (flock belongs to the open
    # file description) but not its threads: it lets go of the descriptor
    # so the lock lives exactly as long as the process that serves.
    for e in list(_elections):
        e._forget()


def lock_path(directory: str, port: int) -> str:
    """The election file of a port in a multiprocess directory."""
    return os.path.join(directory, f"fastprom.server.{port}.lock")


class ElectedServer:
    """Stands for the metrics server in every worker of an election:
    ``serving`` says whether this process holds the port now.  ``shutdown()``
    stops this process's part (its server, or its waiting); ``server_close()``
    also gives up the lock."""

    def __init__(self, path: str, address: Tuple[str, int], start: Callable[[], Any]) -> None:
        global _fork_hook
        try:
            self._fd: Optional[int] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise OSError(e.errno, f"cannot open the metrics server's election file {path}: {e.strerror}; the "
                                   f"multiprocess directory must be writable by every worker") from None
        self.path = path
        self.server_address = address
        self._start = start
        self._server: Any = None
        self._stop = threading.Event()
        self._warned = False
        self.thread = threading.Thread(target=self._run, name="fastprom-metrics-election", daemon=True)
        _elections.add(self)
        if not _fork_hook and hasattr(os, "register_at_fork"):
            _fork_hook = True
            os.register_at_fork(after_in_child=_in_child)
        # The first worker binds before this returns, so a port that
        # another program holds is an error here, as without an election.
        if self._try_lock():
            try:
                self._server = start()
            except BaseException:
                self._forget()
                raise
        self.thread.start()

    @property
    def serving(self) -> bool:
        """True while this process holds the port."""
        return self._server is not None

    def _try_lock(self) -> bool:
        fd = self._fd
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                self._warn(f"cannot lock {self.path}: {e.strerror}")
            return False

    def _run(self) -> None:
        # Runs as long as the election: waiting for the lock, then for
        # shutdown (so joining the thread waits for the server, as
        # prometheus_client's does).
        while self._server is None and not self._stop.is_set():
            if not self._try_lock():
                self._stop.wait(POLL)
                continue
            # Elected: bind, retrying while something else holds the port.
            while not self._stop.is_set():
                try:
                    self._server = self._start()
                    break
                except OSError as e:
                    self._warn(str(e))
                    self._stop.wait(1.0)
        self._stop.wait()

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            print(f"fastprom: metrics server on port {self.server_address[1]}: {message}", file=sys.stderr)

    def _forget(self) -> None:
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            server.socket.close()  # a forked child's copy: the parent keeps serving
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def shutdown(self) -> None:
        """Stops serving (or waiting to serve) in this process."""
        self._stop.set()
        server = self._server
        if server is not None:
            server.shutdown()
        self.thread.join(5.0)

    def server_close(self) -> None:
        """Closes the socket if this process served, and gives up the election."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None:
            server.server_close()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the lock: another worker takes over
