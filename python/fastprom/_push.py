"""The Pushgateway client: the grouping-key URL, the request handlers and
the request itself.  Bodies come from :mod:`fastprom.exposition`, which
renders them."""
from __future__ import annotations

import base64
import gzip
import importlib
import socket
import ssl
import sys
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Union
from urllib.error import HTTPError
from urllib.parse import quote_plus, urlparse
from urllib.request import BaseHandler, HTTPHandler, HTTPRedirectHandler, HTTPSHandler, Request, build_opener

#: Payload compressions a push accepts.
CompressionType = Optional[Literal["gzip", "snappy"]]
#: A handler: called with ``url``, ``method``, ``timeout``, ``headers`` and
#: ``data`` (as keywords), returns a function that sends the request and
#: raises on failure.
Handler = Callable[..., Callable[[], None]]
Headers = List[Tuple[str, str]]


def _sender(url: str, method: str, timeout: Optional[float], headers: Sequence[Tuple[str, str]], data: bytes,
            base_handler: Union[BaseHandler, type]) -> Callable[[], None]:
    """A function sending one request through an opener with ``base_handler``."""

    def send() -> None:
        request = Request(url, data=data, method=method)
        for name, value in headers:
            request.add_header(name, value)
        with build_opener(base_handler).open(request, timeout=timeout) as response:
            if response.code >= 400:
                raise OSError(f"error talking to pushgateway: {response.code} {response.msg}")

    return send


def default_handler(url: str, method: str, timeout: Optional[float], headers: Headers,
                    data: bytes) -> Callable[[], None]:
    """The handler pushes use unless told otherwise: a plain HTTP(S) request
    with urllib.  Custom handlers may call it to do the sending."""
    return _sender(url, method, timeout, headers, data, HTTPHandler)


class _RepeatOnRedirect(HTTPRedirectHandler):
    """Follows a redirect with the same method, headers and body."""

    def redirect_request(self, req: Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Optional[Request]:
        if code not in (301, 302, 303, 307, 308):
            raise HTTPError(req.full_url, code, msg, headers, fp)
        return Request(newurl.replace(" ", "%20"), data=req.data, headers=dict(req.headers),
                       origin_req_host=req.origin_req_host, unverifiable=True, method=req.get_method())


def passthrough_redirect_handler(url: str, method: str, timeout: Optional[float], headers: Headers,
                                 data: bytes) -> Callable[[], None]:
    """A handler that follows redirects for every method, repeating the
    request (method, headers and body) at the new location.  urllib's own
    redirect handling drops the body and refuses PUT; use this one only when
    you trust where the redirects lead."""
    return _sender(url, method, timeout, headers, data, _RepeatOnRedirect)


def basic_auth_handler(url: str, method: str, timeout: Optional[float], headers: Headers, data: bytes,
                       username: Optional[str] = None, password: Optional[str] = None) -> Callable[[], None]:
    """A handler sending HTTP Basic credentials (when both ``username`` and
    ``password`` are given); wrap it to pass them::

        def handler(url, method, timeout, headers, data):
            return basic_auth_handler(url, method, timeout, headers, data, "user", "secret")
    """

    def send() -> None:
        sent = list(headers)
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            sent.append(("Authorization", f"Basic {token}"))
        default_handler(url, method, timeout, sent, data)()

    return send


def tls_auth_handler(url: str, method: str, timeout: Optional[float], headers: Headers, data: bytes,
                     certfile: str, keyfile: str, cafile: Optional[str] = None,
                     protocol: int = ssl.PROTOCOL_TLS_CLIENT,
                     insecure_skip_verify: bool = False) -> Callable[[], None]:
    """A handler pushing over HTTPS with a client certificate.  The server's
    certificate is checked against ``cafile`` (the system's CAs without it),
    host name included, unless ``insecure_skip_verify``."""
    context = ssl.SSLContext(protocol)
    if cafile is not None:
        context.load_verify_locations(cafile)
    else:
        context.load_default_certs()
    if insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(certfile=certfile, keyfile=keyfile)
    return _sender(url, method, timeout, headers, data, HTTPSHandler(context=context))


def _path_pair(name: str, value: str) -> str:
    """One ``/name/value`` step of a grouping-key path.  A value the path
    cannot carry (empty, or with ``/`` or a space) is sent base64url-encoded
    with ``@base64`` after the name, as the Pushgateway expects."""
    if value == "":
        return f"/{name}@base64/="
    if "/" in value or " " in value:
        return f"/{name}@base64/{base64.urlsafe_b64encode(value.encode()).decode('ascii')}"
    return f"/{name}/{quote_plus(value)}"


def gateway_url(gateway: str, job: str, grouping_key: Optional[Dict[str, Any]]) -> str:
    """The URL of a job's group: ``http://`` is assumed without a scheme,
    grouping-key labels follow the job sorted by name."""
    if urlparse(gateway).scheme not in ("http", "https"):
        gateway = f"http://{gateway}"
    labels = sorted((str(k), str(v)) for k, v in (grouping_key or {}).items())
    return gateway.rstrip("/") + "/metrics" + _path_pair("job", job) + "".join(_path_pair(k, v) for k, v in labels)


_ENCODINGS = ("gzip", "snappy")


def _compress(data: bytes, compression: CompressionType) -> Tuple[bytes, Headers]:
    """The body as sent, and its Content-Encoding header (if any)."""
    if compression is None:
        return data, []
    if compression.lower() == "gzip":
        return gzip.compress(data), [("Content-Encoding", "gzip")]
    try:
        snappy = importlib.import_module("snappy")
    except ImportError:
        raise RuntimeError("snappy compression needs the python-snappy package") from None
    compressor = snappy.StreamCompressor()
    out = compressor.compress(data)
    flush = getattr(compressor, "flush", None)
    return (out + flush() if callable(flush) else out), [("Content-Encoding", "snappy")]


def send(method: str, gateway: str, job: str, grouping_key: Optional[Dict[str, Any]], timeout: Optional[float],
         handler: Handler, compression: CompressionType, render: Optional[Callable[[], Tuple[bytes, str]]],
         content_type: str) -> None:
    """Sends one Pushgateway request.  ``render`` gives the body and its
    content type; without it (DELETE) the body is empty and the
    Content-Type is ``content_type``.  An unknown compression fails before
    anything is rendered or sent."""
    if compression is not None and compression.lower() not in _ENCODINGS:
        raise ValueError(f"Unsupported compression type: {compression} (use 'gzip' or 'snappy')")
    url = gateway_url(gateway, job, grouping_key)
    if render is None:
        data, headers = b"", [("Content-Type", content_type)]
    else:
        body, rendered_type = render()
        data, encoding = _compress(body, compression)
        headers = [("Content-Type", rendered_type)] + encoding
    handler(url=url, method=method, timeout=timeout, headers=headers, data=data)()


def instance_ip_grouping_key() -> Dict[str, Any]:
    """A grouping key with ``instance`` set to this host's IP address (the
    address a socket to ``localhost`` is bound to, as prometheus_client does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        # macOS will not connect a datagram socket to localhost port 0.
        s.connect(("10.255.255.255", 1) if sys.platform == "darwin" else ("localhost", 0))
        return {"instance": s.getsockname()[0]}
