"""Rendering a registry, and choosing the format and encoding for a scraper."""
from __future__ import annotations

import gzip
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple
from wsgiref.simple_server import WSGIServer

from . import _core, _push, _serve
from ._push import (CompressionType, basic_auth_handler, default_handler, instance_ip_grouping_key,
                    passthrough_redirect_handler, tls_auth_handler)
from ._serve import SupportsCollect, ThreadingWSGIServer
from .registry import REGISTRY, Collector, CollectorRegistry

CONTENT_TYPE_PLAIN_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of the Prometheus text format 0.0.4 (the one served when the scraper asks for no other)."""
CONTENT_TYPE_PLAIN_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
"""Content type of the Prometheus text format 1.0.0."""
CONTENT_TYPE_LATEST = CONTENT_TYPE_PLAIN_1_0_0
"""The latest text format's content type, as prometheus_client defines it."""
CONTENT_TYPE_PLAIN = CONTENT_TYPE_PLAIN_0_0_4
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
"""Content type of OpenMetrics 1.0.0."""


def generate_latest(registry: Any = REGISTRY, escaping: str = "underscores") -> bytes:
    """The registry in the Prometheus text format, byte for byte as
    prometheus_client writes it; names outside the legacy character set
    written by the ``escaping`` scheme.  ``registry`` may be a fastprom or a
    prometheus_client registry, or any object with ``collect()``."""
    from .bridge import as_fastprom_registry

    return as_fastprom_registry(registry).render(False, escaping=escaping)


def generate_openmetrics(registry: Any = REGISTRY, escaping: str = "underscores") -> bytes:
    """The registry in OpenMetrics 1.0.0, ending with ``# EOF``."""
    from .bridge import as_fastprom_registry

    return as_fastprom_registry(registry).render(True, escaping=escaping)


def generate_protobuf(registry: Any = REGISTRY, escaping: str = "underscores") -> bytes:
    """The registry in the Prometheus protobuf format: one
    ``io.prometheus.client.MetricFamily`` message per family with series,
    each preceded by its length as a varint (``encoding=delimited``), as
    Prometheus scrapes it; names outside the legacy character set written by
    the ``escaping`` scheme (``allow-utf-8``: as they are)."""
    from .bridge import as_fastprom_registry

    return as_fastprom_registry(registry).render(False, escaping=escaping, protobuf=True)


#: How much of an Accept or Accept-Encoding header is read: a client can
#: send megabytes, and the work per scrape must stay bounded.  Real headers
#: are far shorter (Prometheus sends five media ranges).
MAX_HEADER_CHARS = 4096
MAX_MEDIA_RANGES = 32
MAX_RANGE_PARAMS = 8


def _split_header(header: str) -> List[List[str]]:
    """The first MAX_MEDIA_RANGES media ranges of the first MAX_HEADER_CHARS
    characters, each as its first MAX_RANGE_PARAMS + 1 ``;`` fields."""
    parts = header[:MAX_HEADER_CHARS].split(",", MAX_MEDIA_RANGES)[:MAX_MEDIA_RANGES]
    return [p.split(";", MAX_RANGE_PARAMS + 1)[:MAX_RANGE_PARAMS + 1] for p in parts]


def _media_ranges(header: str) -> List[Tuple[str, Dict[str, str], float, int]]:
    """Parses an Accept or Accept-Encoding header: (type, params, q, position)."""
    out = []
    for pos, part in enumerate(_split_header(header)):
        fields = [f.strip() for f in part]
        kind = fields[0].lower()
        if not kind:
            continue
        params: Dict[str, str] = {}
        q = 1.0
        for f in fields[1:]:
            key, _, value = f.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
            else:
                params[key] = value
        out.append((kind, params, q, pos))
    return out


_SCHEMES = ("allow-utf-8", "underscores", "dots", "values")

PROTOBUF_CONTENT_TYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
"""Content type of the Prometheus protobuf format (delimited ``MetricFamily`` messages), without its escaping."""
OPENMETRICS_0_0_1_CONTENT_TYPE = "application/openmetrics-text; version=0.0.1; charset=utf-8"
"""Content type of OpenMetrics 0.0.1 (the same text as 1.0.0, legacy names)."""


class Format(NamedTuple):
    """A negotiated scrape protocol: its name in Prometheus'
    ``scrape_protocols`` (``PrometheusProto``, ``OpenMetricsText1.0.0``,
    ``OpenMetricsText0.0.1``, ``PrometheusText1.0.0``,
    ``PrometheusText0.0.4``), the response's Content-Type and the escaping
    scheme of names outside the legacy character set."""

    protocol: str
    content_type: str
    escaping: str

    @property
    def openmetrics(self) -> bool:
        """True for the OpenMetrics text formats."""
        return self.protocol.startswith("OpenMetrics")

    @property
    def protobuf(self) -> bool:
        """True for the protobuf format."""
        return self.protocol == "PrometheusProto"


_TEXT_0_0_4 = Format("PrometheusText0.0.4", CONTENT_TYPE_PLAIN_0_0_4, "underscores")


def _escaping(params: Dict[str, str]) -> str:
    """The escaping scheme a media range asks for: underscores unless it
    names a known one (``allow-utf8``, a spelling found in the wild, is
    ``allow-utf-8``)."""
    e = params.get("escaping", "underscores")
    if e == "allow-utf8":
        return "allow-utf-8"
    return e if e in _SCHEMES else "underscores"


def _match(kind: str, params: Dict[str, str]) -> Optional[Format]:
    """The format a media range asks for, or None when it names none we serve."""
    version = params.get("version", "")
    if kind == "application/vnd.google.protobuf":
        if params.get("proto") != "io.prometheus.client.MetricFamily" or params.get("encoding") != "delimited":
            return None
        esc = _escaping(params)
        return Format("PrometheusProto", f"{PROTOBUF_CONTENT_TYPE}; escaping={esc}", esc)
    if kind == "application/openmetrics-text":
        if version == "1.0.0":
            esc = _escaping(params)
            return Format("OpenMetricsText1.0.0", f"{OPENMETRICS_CONTENT_TYPE}; escaping={esc}", esc)
        if version == "":
            # Unversioned, as prometheus_client answers it.
            return Format("OpenMetricsText1.0.0", OPENMETRICS_CONTENT_TYPE, "underscores")
        if version == "0.0.1":
            return Format("OpenMetricsText0.0.1", OPENMETRICS_0_0_1_CONTENT_TYPE, "underscores")
        return None
    if kind == "text/plain":
        if version == "1.0.0":
            esc = _escaping(params)
            return Format("PrometheusText1.0.0", f"{CONTENT_TYPE_PLAIN_1_0_0}; escaping={esc}", esc)
        return _TEXT_0_0_4 if version in ("", "0.0.4") else None
    if kind in ("text/*", "*/*"):
        return _TEXT_0_0_4
    return None


def negotiate_format(accept: Optional[str]) -> Format:
    """The format an Accept header asks for, as Prometheus' content
    negotiation specifies: media ranges weighed by their q-values (on a tie
    the earlier one wins), ranges with q=0 or naming no format served here
    skipped; no header, or nothing served here, gets the text format 0.0.4.
    Only the first ``MAX_HEADER_CHARS`` characters, ``MAX_MEDIA_RANGES``
    ranges and ``MAX_RANGE_PARAMS`` parameters of each are read."""
    best_q, best = 0.0, _TEXT_0_0_4
    for kind, params, q, _ in _media_ranges(accept or ""):
        if q <= best_q:
            continue
        choice = _match(kind, params)
        if choice is not None:
            best_q, best = q, choice
    return best


def choose_format(accept: Optional[str]) -> bool:
    """True when the Accept header prefers an OpenMetrics text format over
    the others (see ``negotiate``)."""
    return negotiate_format(accept).openmetrics


def accepts_gzip(accept_encoding: Optional[str]) -> bool:
    """True when Accept-Encoding allows gzip (``gzip`` or ``*`` with q > 0, unless gzip;q=0)."""
    if not accept_encoding:
        return False
    gz = star = None
    for kind, _, q, _ in _media_ranges(accept_encoding):
        if kind in ("gzip", "x-gzip"):
            gz = q
        elif kind == "*":
            star = q
    if gz is not None:
        return gz > 0
    return bool(star and star > 0)


class Exposition(NamedTuple):
    """A rendered response: its body and the headers to send with it."""

    body: bytes
    content_type: str
    content_encoding: Optional[str]

    @property
    def headers(self) -> Dict[str, str]:
        h = {"Content-Type": self.content_type}
        if self.content_encoding:
            h["Content-Encoding"] = self.content_encoding
        return h


def negotiate(registry: CollectorRegistry = REGISTRY, accept: Optional[str] = None,
              accept_encoding: Optional[str] = None, allow_gzip: bool = True,
              extra: Sequence[object] = ()) -> Exposition:
    """Renders the registry in the format the ``Accept`` header asks for
    (:func:`negotiate_format`: protobuf, OpenMetrics 1.0.0 or 0.0.1, text
    1.0.0 or 0.0.4), gzip-compressed when ``Accept-Encoding`` allows it (and
    ``allow_gzip``).  ``extra`` collectors are rendered after the
    registry's own."""
    fmt = negotiate_format(accept)
    body = registry.render(fmt.openmetrics, extra, escaping=fmt.escaping, protobuf=fmt.protobuf)
    if allow_gzip and accepts_gzip(accept_encoding):
        return Exposition(gzip.compress(body, compresslevel=6, mtime=0), fmt.content_type, "gzip")
    return Exposition(body, fmt.content_type, None)


def _accept_param(tokens: List[str], key: str) -> str:
    for tok in tokens:
        k, sep, v = tok.strip().partition("=")
        if sep and k == key:
            return v
    return ""


def _version_tuple(version: str) -> Tuple[int, ...]:
    """The numbers of a dotted version such as ``1.0.0``; () for anything
    else, so that a version never brings other characters (a newline that
    would split the response header) into the Content-Type echoed back."""
    parts = version.split(".")
    if not all(p and p.isascii() and p.isdigit() for p in parts):
        return ()
    return tuple(int(p) for p in parts)


def choose_encoder(accept_header: Optional[str]) -> Tuple[Callable[..., bytes], str]:
    """prometheus_client's choice of (render function, content type) for an
    Accept header: the first OpenMetrics or versioned text/plain media range
    it knows, else the text format 0.0.4.  (``negotiate`` weighs q-values.)"""
    import functools

    schemes = ("allow-utf-8", "underscores", "dots", "values")
    for toks in _split_header(accept_header or ""):
        kind = toks[0].strip()
        if kind not in ("application/openmetrics-text", "text/plain"):
            continue
        version = _accept_param(toks, "version")
        escaping = _accept_param(toks, "escaping")
        escaping = escaping if escaping in schemes else "underscores"
        if kind == "application/openmetrics-text":
            if not version:
                return functools.partial(generate_openmetrics, escaping="underscores"), OPENMETRICS_CONTENT_TYPE
            if _version_tuple(version) >= (1, 0, 0):
                return (functools.partial(generate_openmetrics, escaping=escaping),
                        f"application/openmetrics-text; version={version}; charset=utf-8; escaping={escaping}")
        elif version and _version_tuple(version) >= (1, 0, 0):
            return functools.partial(generate_latest, escaping=escaping), CONTENT_TYPE_LATEST + "; escaping=" + escaping
    return generate_latest, CONTENT_TYPE_PLAIN_0_0_4


def write_to_textfile(path: str, registry: SupportsCollect = REGISTRY, escaping: str = "allow-utf-8",
                      tmpdir: Optional[str] = None) -> None:
    """Writes the text format atomically to ``path`` (for the node
    exporter's textfile collector, which reads files ending in ``.prom``).

    The text goes to a temporary file first, in ``tmpdir`` if given (it
    must be on the same filesystem as ``path``), else beside ``path``; then
    replaces ``path`` in one rename, so a reader sees the old file or the
    new one, never a part.  ``escaping`` is accepted for prometheus_client
    compatibility; names are written as they are."""
    body = _push_body(registry)()[0]
    directory, name = os.path.split(path)
    tmp = os.path.join(directory if tmpdir is None else tmpdir,
                       f"{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


# Serving and pushing: prometheus_client's endpoints, servers and
# Pushgateway client, rendering with negotiate() above.

def _scraper(registry: SupportsCollect, disable_compression: bool) -> _serve.Scrape:
    """The scrape function of an endpoint serving ``registry``."""

    def scrape(accept: Optional[str], accept_encoding: Optional[str], params: Dict[str, List[str]]) -> Exposition:
        target = _serve.renderable(registry, params.get("name[]"))
        return negotiate(target, accept, accept_encoding, not disable_compression)

    return scrape


def make_wsgi_app(registry: SupportsCollect = REGISTRY, disable_compression: bool = False) -> _serve.WSGIApp:
    """A WSGI app serving ``registry``'s metrics on every path.

    The format is the one the ``Accept`` header asks for, gzip-compressed
    when ``Accept-Encoding`` allows it (unless ``disable_compression``);
    ``?name[]=a&name[]=b`` limits the output to the samples with those
    names.  OPTIONS is answered with the allowed methods, other methods but
    GET with 405, and ``/favicon.ico`` with an empty page."""
    return _serve.wsgi_app(_scraper(registry, disable_compression))


def make_asgi_app(registry: SupportsCollect = REGISTRY, disable_compression: bool = False) -> _serve.ASGIApp:
    """An ASGI app serving ``registry``'s metrics on every path, negotiated
    as by :func:`make_wsgi_app`.  With FastAPI or Starlette:
    ``app.mount("/metrics", make_asgi_app())``."""
    return _serve.asgi_app(_scraper(registry, disable_compression))


class MetricsHandler(BaseHTTPRequestHandler):
    """An ``http.server`` request handler whose GET serves the metrics of
    its ``registry`` (``REGISTRY``; :meth:`factory` makes one for another),
    negotiated as by :func:`make_wsgi_app`."""

    registry: SupportsCollect = REGISTRY

    def do_GET(self) -> None:
        """Answers with the registry's metrics."""
        _serve.answer_get(self, _scraper(self.registry, False))

    def log_message(self, format: str, *args: Any) -> None:
        """Logs nothing."""

    @classmethod
    def factory(cls, registry: SupportsCollect) -> type:
        """A subclass of this handler serving ``registry``."""
        return type(cls.__name__, (cls,), {"registry": registry})


def start_wsgi_server(port: int, addr: str = "0.0.0.0", registry: SupportsCollect = REGISTRY,
                      certfile: Optional[str] = None, keyfile: Optional[str] = None,
                      client_cafile: Optional[str] = None, client_capath: Optional[str] = None,
                      protocol: int = ssl.PROTOCOL_TLS_SERVER, client_auth_required: bool = False,
                      tls_min_version: Optional[ssl.TLSVersion] = None,
                      tls_max_version: Optional[ssl.TLSVersion] = None, *,
                      web_config_file: Optional[str] = None) -> Tuple[Any, threading.Thread]:
    """Serves ``registry``'s metrics (:func:`make_wsgi_app`) on
    ``addr``:``port`` from a daemon thread; returns the server and the
    thread.  Stop it with ``server.shutdown()`` and ``server.server_close()``.

    With both ``certfile`` and ``keyfile`` it speaks TLS only; client
    certificates are checked against ``client_cafile``/``client_capath``
    (the system's CAs without them) and required with
    ``client_auth_required``.  Port 0 picks a free port
    (``server.server_address[1]``).  ``web_config_file`` names a file in
    Prometheus' web configuration format: its ``basic_auth_users`` (bcrypt
    hashes) are required of every request, and its ``tls_server_config``
    gives the certificate when ``certfile`` does not.

    In multiprocess mode, for the default registry and a fixed port, every
    worker may call it: the workers elect one (an exclusive lock on
    ``fastprom.server.PORT.lock`` in the multiprocess directory) to bind
    the port, and another takes over within a second when it dies; the
    server returned says whether this process is the one (``serving``)."""
    from . import _auth
    from ._multiproc import directory

    app = make_wsgi_app(registry)
    if web_config_file is not None:
        config = _auth.load_web_config(web_config_file)
        if config.users:
            app = _auth.BasicAuth(config.users).wrap(app)
        if config.tls is not None and not certfile:
            certfile, keyfile = config.tls.cert_file, config.tls.key_file
            client_cafile = client_cafile or config.tls.client_ca_file
            client_auth_required = client_auth_required or config.tls.client_auth_required
    context = None
    if certfile and keyfile:
        context = _serve.tls_context(certfile, keyfile, protocol, client_cafile, client_capath,
                                     client_auth_required, tls_min_version, tls_max_version)
    shared_dir = directory() if registry is REGISTRY and REGISTRY._multiprocess else None
    if shared_dir and port and os.path.isdir(shared_dir):
        from ._election import ElectedServer, lock_path

        def start() -> WSGIServer:
            return _serve.serve(app, port, addr, context)[0]

        elected = ElectedServer(lock_path(shared_dir, port), (addr, port), start)
        return elected, elected.thread
    return _serve.serve(app, port, addr, context)


start_http_server = start_wsgi_server
"""The same as :func:`start_wsgi_server`, as in prometheus_client."""


def _push_body(registry: Optional[SupportsCollect]) -> Callable[[], Tuple[bytes, str]]:
    """Renders a push: the text format 0.0.4 and its content type."""

    def render() -> Tuple[bytes, str]:
        target = _serve.renderable(REGISTRY if registry is None else registry)
        out = negotiate(target, CONTENT_TYPE_PLAIN_0_0_4, None, False)
        return out.body, out.content_type

    return render


def push_to_gateway(gateway: str, job: str, registry: SupportsCollect, grouping_key: Optional[Dict[str, Any]] = None,
                    timeout: Optional[float] = 30, handler: _push.Handler = default_handler,
                    compression: CompressionType = None) -> None:
    """Pushes ``registry``'s metrics to the Pushgateway, replacing every
    metric of the group (HTTP PUT).

    ``gateway`` is its URL (``http://`` is assumed without a scheme); the
    group is ``job`` and the ``grouping_key`` labels (values that a URL path
    cannot carry are sent base64-encoded).  ``timeout`` is in seconds (None:
    none).  ``handler(url=, method=, timeout=, headers=, data=)`` returns the
    function that sends the request (see :func:`basic_auth_handler`,
    :func:`tls_auth_handler`, :func:`passthrough_redirect_handler`).
    ``compression`` is None, ``"gzip"`` or ``"snappy"`` (python-snappy)."""
    _push.send("PUT", gateway, job, grouping_key, timeout, handler, compression, _push_body(registry),
               CONTENT_TYPE_PLAIN_0_0_4)


def pushadd_to_gateway(gateway: str, job: str, registry: Optional[SupportsCollect],
                       grouping_key: Optional[Dict[str, Any]] = None, timeout: Optional[float] = 30,
                       handler: _push.Handler = default_handler, compression: CompressionType = None) -> None:
    """Pushes ``registry``'s metrics (``REGISTRY`` for None) to the
    Pushgateway, replacing only the group's metrics of the same names (HTTP
    POST).  Arguments as for :func:`push_to_gateway`."""
    _push.send("POST", gateway, job, grouping_key, timeout, handler, compression, _push_body(registry),
               CONTENT_TYPE_PLAIN_0_0_4)


def delete_from_gateway(gateway: str, job: str, grouping_key: Optional[Dict[str, Any]] = None,
                        timeout: Optional[float] = 30, handler: _push.Handler = default_handler) -> None:
    """Deletes the group's metrics from the Pushgateway (HTTP DELETE).
    Arguments as for :func:`push_to_gateway`."""
    _push.send("DELETE", gateway, job, grouping_key, timeout, handler, None, None, CONTENT_TYPE_PLAIN_0_0_4)


# prometheus_client's helpers at this path.

def floatToGoString(d: Any) -> str:
    """A number as the exposition writes it (``1.0``, ``+Inf``, ``NaN``,
    ``1.5e+07``), as prometheus_client's helper of this name writes it."""
    return _core.format_value(float(d))


def parse_version(version_str: str) -> Tuple[Any, ...]:
    """``"1.0.0"`` as ``(1, 0, 0)``; parts that are not numbers stay str."""
    out: List[Any] = []
    for part in version_str.split("."):
        try:
            out.append(int(part))
        except ValueError:
            out.append(part)
    return tuple(out)


def gzip_accepted(accept_encoding_header: str) -> bool:
    """True when an ``Accept-Encoding`` header allows gzip (q-values are
    honoured: ``gzip;q=0`` refuses it, ``*`` allows it)."""
    return accepts_gzip(accept_encoding_header)


def __getattr__(name: str) -> Any:
    # SNAPPY_AVAILABLE: looked up on first use, not at import.
    if name == "SNAPPY_AVAILABLE":
        import importlib.util

        return importlib.util.find_spec("snappy") is not None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

