"""Serving metrics over HTTP: the WSGI and ASGI apps, the request handler's
GET, and a threaded WSGI server (optionally with TLS).

Nothing here renders.  An endpoint is given a *scrape* function, which turns
a request's ``Accept`` and ``Accept-Encoding`` headers and its query
parameters into (body, content type, content encoding);
:mod:`fastprom.exposition` builds it from ``negotiate``.  :func:`renderable`
turns a ``registry=`` argument into what ``negotiate`` renders, for the
endpoints and for pushes alike.
"""
from __future__ import annotations

import errno
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingMixIn
from typing import Any, Awaitable, Callable, Dict, Iterable, Iterator, List, MutableMapping, Optional, Protocol, Tuple
from urllib.parse import parse_qs, urlparse
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .bridge import as_fastprom_registry
from .registry import CollectorRegistry

#: A rendered response: body, Content-Type, Content-Encoding (or None).
Rendered = Tuple[bytes, str, Optional[str]]
#: (Accept, Accept-Encoding, query parameters) -> the response to send.
Scrape = Callable[[Optional[str], Optional[str], Dict[str, List[str]]], Rendered]
WSGIApp = Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]

_ALLOW = ("Allow", "OPTIONS,GET")


class SupportsCollect(Protocol):
    """What ``registry=`` accepts: a fastprom or prometheus_client
    ``CollectorRegistry``, or any collector."""

    def collect(self) -> Iterable[Any]: ...


class _Only:
    """The samples with some names of a collector that is not a registry
    (a registry restricts itself, with ``restricted_registry``)."""

    def __init__(self, collector: Any, names: Iterable[str]) -> None:
        self._collector = collector
        self._names = set(names)

    def collect(self) -> Iterator[Any]:
        for metric in self._collector.collect():
            restricted = metric._restricted_metric(self._names)
            if restricted:
                yield restricted


def renderable(registry: Any, names: Optional[Iterable[str]] = None) -> Any:
    """What ``negotiate`` renders for a ``registry=`` argument: a fastprom
    or prometheus_client ``CollectorRegistry``, or any object with
    ``collect()``.  With ``names`` (the ``name[]`` query parameters), only
    the samples with those names."""
    target = as_fastprom_registry(registry)
    if names is None:
        return target
    if isinstance(target, CollectorRegistry):
        return target.restricted_registry(names)
    return as_fastprom_registry(_Only(target, names))


def _headers(rendered: Rendered) -> List[Tuple[str, str]]:
    _, content_type, encoding = rendered
    headers = [("Content-Type", content_type)]
    if encoding:
        headers.append(("Content-Encoding", encoding))
    return headers


def wsgi_app(scrape: Scrape) -> WSGIApp:
    """A WSGI app answering GET on any path with the scrape, OPTIONS with
    the allowed methods, other methods with 405, and ``/favicon.ico`` with
    an empty page."""

    def metrics_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            status, headers, body = "200 OK", [_ALLOW], b""
        elif method != "GET":
            status, headers = "405 Method Not Allowed", [_ALLOW]
            body = f"# HTTP {status}: {method}; use OPTIONS or GET\n".encode()
        elif environ.get("PATH_INFO") == "/favicon.ico":
            # Browsers ask for it; an empty page keeps them from retrying.
            status, headers, body = "200 OK", [], b""
        else:
            rendered = scrape(environ.get("HTTP_ACCEPT"), environ.get("HTTP_ACCEPT_ENCODING"),
                              parse_qs(environ.get("QUERY_STRING", "")))
            status, headers, body = "200 OK", _headers(rendered), rendered[0]
        start_response(status, headers)
        return [body]

    return metrics_app


def _header(scope: MutableMapping[str, Any], name: bytes) -> Optional[str]:
    """Every value of one request header, comma-joined, or None."""
    values = [v.decode("latin-1") for k, v in scope.get("headers") or () if k.lower() == name]
    return ",".join(values) if values else None


async def _lifespan(receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
    """Acknowledges startup and shutdown: the app has nothing to set up."""
    for _ in range(2):
        message = await receive()
        kind = message.get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def asgi_app(scrape: Scrape) -> ASGIApp:
    """An ASGI app answering every HTTP request with the scrape."""

    async def metrics_app(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                          send: Callable[[Any], Awaitable[None]]) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})  # refused: answered with 403
            return
        if kind != "http":
            raise ValueError(f"the metrics app serves HTTP, not {kind!r}")
        message = await receive()
        if message.get("type") != "http.request":
            return  # the client went away
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        rendered = scrape(_header(scope, b"accept"), _header(scope, b"accept-encoding"), query)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in _headers(rendered)]})
        await send({"type": "http.response.body", "body": rendered[0]})

    return metrics_app


def answer_get(handler: BaseHTTPRequestHandler, scrape: Scrape) -> None:
    """Answers the handler's GET request with the scrape."""
    rendered = scrape(handler.headers.get("Accept"), handler.headers.get("Accept-Encoding"),
                      parse_qs(urlparse(handler.path).query))
    handler.send_response(200)
    for name, value in _headers(rendered):
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(rendered[0])))
    handler.end_headers()
    handler.wfile.write(rendered[0])


class _QuietHandler(WSGIRequestHandler):
    """A WSGI request handler that logs nothing."""

    def log_message(self, format: str, *args: Any) -> None:
        """Logs nothing."""


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A WSGI server answering each request in its own daemon thread."""

    # Daemon threads are not kept for joining at server_close(), so a
    # long-running server does not accumulate them.
    daemon_threads = True


class _TLSServer(ThreadingWSGIServer):
    """Completes each TLS handshake in the request's own thread, so a client
    that connects and sends nothing holds up only its own connection."""

    context: ssl.SSLContext
    handshake_timeout = 10.0

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.handshake_timeout)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except OSError:
            # A failed handshake (no or an untrusted client certificate, a
            # plain-HTTP client, a timeout): the socket is closed, nothing to answer.
            return
        with tls:
            tls.settimeout(None)
            super().finish_request(tls, client_address)


def tls_context(certfile: str, keyfile: str, protocol: int, cafile: Optional[str], capath: Optional[str],
                client_auth_required: bool, tls_min_version: Optional[ssl.TLSVersion],
                tls_max_version: Optional[ssl.TLSVersion]) -> ssl.SSLContext:
    """The server's TLS context: its certificate, the CAs that client
    certificates are checked against (the system's without ``cafile`` and
    ``capath``), and whether a client certificate is required."""
    context = ssl.SSLContext(protocol)
    try:
        if cafile is not None or capath is not None:
            context.load_verify_locations(cafile, capath)
        else:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except OSError as exc:
        raise type(exc)(f"cannot load the client CA certificates (cafile={cafile!r}, capath={capath!r}): "
                        f"{exc}") from exc
    if client_auth_required:
        context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(certfile=certfile, keyfile=keyfile)
    except OSError as exc:
        raise type(exc)(f"cannot load the server certificate {certfile!r} or its key {keyfile!r}: {exc}") from exc
    if tls_min_version is not None:
        context.minimum_version = tls_min_version
    if tls_max_version is not None:
        context.maximum_version = tls_max_version
    return context


def serve(app: WSGIApp, port: int, addr: str, context: Optional[ssl.SSLContext]) -> Tuple[WSGIServer, threading.Thread]:
    """Starts a threaded WSGI server for ``app`` on ``addr``:``port`` (IPv4
    or IPv6, as the address resolves) in a daemon thread; with ``context``,
    over TLS.  Returns the server and its thread."""
    try:
        info = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise OSError(e.errno, f"cannot serve metrics on {addr!r}: {e.strerror}") from None
    family, host = info[0][0], str(info[0][4][0])
    base = ThreadingWSGIServer if context is None else _TLSServer
    server_class = type(base.__name__, (base,), {"address_family": family, "context": context})
    try:
        httpd: WSGIServer = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise OSError(e.errno, f"cannot serve metrics on {addr}:{port}: the port is in use by another "
                                   f"process") from None
        raise OSError(e.errno, f"cannot serve metrics on {addr}:{port}: {e.strerror}") from None
    thread = threading.Thread(target=httpd.serve_forever, name="fastprom-metrics-server", daemon=True)
    thread.start()
    return httpd, thread
