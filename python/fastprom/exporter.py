"""A standalone exporter for the shared store: ``python -m fastprom
exporter --dir DIR --port PORT``.

It maps the store file read-only (``O_RDONLY``, ``PROT_READ``: nothing it
does can change the store) and serves ``/metrics`` with every worker's
totals and the ``process_*`` metrics of every live worker, negotiated and
gzip-compressed as ``expose()`` does.  It waits for a store that does not
exist yet (answering 503 meanwhile), follows a store file that is deleted
and made anew, and keeps nothing of its own, so restarting it loses
nothing.
"""
from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys
import threading
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence

from . import _auth, _core, _serve
from ._multiproc import STORE_FILE, directory
from .collectors import ProcessCollector
from .exposition import negotiate
from .registry import CollectorRegistry


class StoreView:
    """The shared store of a directory, mapped read-only and reopened when
    the file is made anew.  A collector: registered in a registry, it shows
    the whole store."""

    def __init__(self, path_dir: str, log: Callable[[str], None] = lambda msg: None) -> None:
        self.path = os.path.join(path_dir, STORE_FILE)
        self._log = log
        self._lock = threading.Lock()
        self._store: Optional[_core.Store] = None
        self._state = ""  # the last problem logged, so each is logged once
        self.problem: Optional[str] = "not opened yet"

    def refresh(self) -> Optional[_core.Store]:
        """The store as the file is now: opened on first use, reopened when
        the file was replaced; None (and ``problem`` says why) while there
        is none or it cannot be used."""
        with self._lock:
            if self._store is not None and not self._store.replaced():
                return self._store
            try:
                store = _core.Store(path=self.path, readonly=True)
            except FileNotFoundError:
                # Deleted and not yet made anew: what was mapped is gone.
                self._store = None
                self._report(f"waiting for the metrics store file {self.path} (no worker has created it yet)")
                return None
            except (_core.StoreFileError, OSError) as e:
                self._store = None
                self._report(str(e))
                return None
            self._store = store
            self._report("")
            self._log(f"serving the metrics store file {self.path}")
            return store

    def _report(self, problem: str) -> None:
        self.problem = problem or None
        if problem and problem != self._state:
            self._log(problem)
        self._state = problem

    # What the registry and the process collector ask of it.
    def shared_store(self) -> Optional[_core.Store]:
        """The mapped store (for the process collector: whose workers to report)."""
        return self._store

    def _render_items(self) -> List[Any]:
        return [self._store] if self._store is not None else []

    def collect(self) -> List[Any]:
        """The store's families (for ``collect()``-based consumers)."""
        from .multiprocess import store_families

        return store_families(self._store) if self._store is not None else []


def exporter_registry(view: StoreView) -> CollectorRegistry:
    """A registry showing the view's store and its live workers' process metrics."""
    registry = CollectorRegistry()
    registry.register(view)
    processes = ProcessCollector(registry=None)
    processes._registry = view  # type: ignore[assignment]  # it asks for shared_store()
    registry.register(processes)
    return registry


def exporter_app(view: StoreView, registry: CollectorRegistry) -> _serve.WSGIApp:
    """The exporter's WSGI app: ``/metrics`` (and ``/``) negotiated as
    ``expose()`` does; 503 with the reason while the store is missing or unusable."""

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not Found: the metrics are at /metrics\n"]
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b""]
        if view.refresh() is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"{view.problem}\n".encode()]
        e = negotiate(registry, environ.get("HTTP_ACCEPT"), environ.get("HTTP_ACCEPT_ENCODING"))
        headers = [("Content-Type", e.content_type), ("Content-Length", str(len(e.body)))]
        if e.content_encoding:
            headers.append(("Content-Encoding", e.content_encoding))
        start_response("200 OK", headers)
        return [b"" if method == "HEAD" else e.body]

    return app


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fastprom exporter",
                                description="Serve the shared metrics store of a multiprocess directory, read-only.")
    p.add_argument("--dir", default=None,
                   help="the multiprocess directory (default: $PROMETHEUS_MULTIPROC_DIR or $FASTPROM_MULTIPROC_DIR)")
    p.add_argument("--port", type=int, required=True, help="the port to serve /metrics on")
    p.add_argument("--host", default="0.0.0.0", help="the address to listen on (default 0.0.0.0)")
    p.add_argument("--web-config", default=None, metavar="FILE",
                   help="a Prometheus web configuration file: basic_auth_users (bcrypt hashes), tls_server_config")
    p.add_argument("--certfile", default=None, help="serve TLS with this certificate (PEM)")
    p.add_argument("--keyfile", default=None, help="the certificate's private key (PEM)")
    p.add_argument("--client-cafile", default=None, help="CA certificates client certificates are checked against")
    p.add_argument("--client-auth-required", action="store_true", help="require a client certificate")
    return p


def _fail(message: str) -> NoReturn:
    print(f"fastprom exporter: {message}", file=sys.stderr)
    raise SystemExit(1)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Runs the exporter until it is stopped (SIGTERM or Ctrl-C)."""
    args = _parser().parse_args(argv)
    path_dir = args.dir or directory()
    if not path_dir:
        _fail("no multiprocess directory: pass --dir DIR (or set PROMETHEUS_MULTIPROC_DIR)")
    if not 0 < args.port < 65536:
        _fail(f"--port {args.port} is not a TCP port (1 to 65535)")
    if (args.certfile is None) != (args.keyfile is None):
        _fail("--certfile and --keyfile go together")
    if os.path.exists(path_dir) and not os.path.isdir(path_dir):
        _fail(f"{path_dir} is not a directory")

    def log(msg: str) -> None:
        print(f"fastprom exporter: {msg}", file=sys.stderr, flush=True)

    view = StoreView(path_dir, log)
    registry = exporter_registry(view)
    app = exporter_app(view, registry)
    certfile, keyfile, cafile, required = args.certfile, args.keyfile, args.client_cafile, args.client_auth_required
    try:
        if args.web_config:
            config = _auth.load_web_config(args.web_config)
            if config.users:
                app = _auth.BasicAuth(config.users).wrap(app)
            if config.tls is not None and certfile is None:
                certfile, keyfile = config.tls.cert_file, config.tls.key_file
                cafile = cafile or config.tls.client_ca_file
                required = required or config.tls.client_auth_required
        context = None
        if certfile:
            context = _serve.tls_context(certfile, keyfile, ssl.PROTOCOL_TLS_SERVER, cafile, None, required,
                                         None, None)
        server, thread = _serve.serve(app, args.port, args.host, context)
    except (OSError, ValueError, ssl.SSLError) as e:
        _fail(str(e))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    view.refresh()  # says at once whether there is a store yet
    log(f"listening on {args.host}:{args.port}{' (TLS)' if context else ''}")
    try:
        while thread.is_alive():
            thread.join(1.0)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
        server.server_close()


__all__ = ["StoreView", "exporter_registry", "exporter_app", "main"]
