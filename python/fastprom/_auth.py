"""Access control for the metrics servers: Prometheus' web configuration
file (``basic_auth_users`` with bcrypt hashes, ``tls_server_config``) and
HTTP basic authentication in front of a WSGI app.

Reading the file needs PyYAML and checking passwords bcrypt
(``pip install 'fastprom[auth]'``).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional

WSGIApp = Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: client_auth_type values of Prometheus' web configuration that require a client certificate.
_REQUIRE_CERT = {"RequireAndVerifyClientCert", "RequireAnyClientCert"}
_CLIENT_AUTH_TYPES = {"NoClientCert", "RequestClientCert", "VerifyClientCertIfGiven"} | _REQUIRE_CERT


class WebConfigError(ValueError):
    """A web configuration file that cannot be used; the message names the
    file and the problem."""


@dataclass
class TLSServerConfig:
    """The ``tls_server_config`` of a web configuration file."""

    cert_file: str
    key_file: str
    client_ca_file: Optional[str] = None
    client_auth_required: bool = False


@dataclass
class WebConfig:
    """What a web configuration file says: users and their bcrypt hashes,
    and optionally TLS."""

    users: Dict[str, bytes] = field(default_factory=dict)
    tls: Optional[TLSServerConfig] = None


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise WebConfigError(f"basic authentication needs the {module!r} package: pip install 'fastprom[auth]'") \
            from None


def load_web_config(path: str) -> WebConfig:
    """Reads a web configuration file in Prometheus' format::

        basic_auth_users:
          prometheus: $2b$12$...   # a bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')
        tls_server_config:         # optional
          cert_file: server.crt
          key_file: server.key

    Relative paths are taken from the file's directory, as Prometheus does.
    Raises WebConfigError naming the file and what is wrong."""
    yaml = _need("yaml")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise WebConfigError(f"cannot read the web configuration file {path!r}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise WebConfigError(f"the web configuration file {path!r} is not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WebConfigError(f"the web configuration file {path!r} must be a YAML mapping")
    unknown = set(data) - {"basic_auth_users", "tls_server_config", "http_server_config"}
    if unknown:
        raise WebConfigError(f"the web configuration file {path!r} has unknown keys: {', '.join(sorted(unknown))}")
    config = WebConfig()
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise WebConfigError(f"{path!r}: basic_auth_users must map user names to bcrypt hashes")
    for user, hashed in users.items():
        if not isinstance(user, str) or not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"{path!r}: the password of user {user!r} must be a bcrypt hash ($2a$, $2b$ or $2y$)")
        config.users[user] = hashed.encode()
    if config.users:
        _need("bcrypt")
    tls = data.get("tls_server_config")
    if tls is not None:
        config.tls = _tls(path, tls)
    return config


def _tls(path: str, tls: Any) -> TLSServerConfig:
    if not isinstance(tls, dict) or not tls.get("cert_file") or not tls.get("key_file"):
        raise WebConfigError(f"{path!r}: tls_server_config needs cert_file and key_file")
    here = os.path.dirname(os.path.abspath(path))

    def rel(p: Optional[str]) -> Optional[str]:
        return None if p is None else os.path.join(here, str(p))

    for field in ("cert_file", "key_file", "client_ca_file"):
        if field in tls and tls[field] is not None and not isinstance(tls[field], str):
            raise WebConfigError(f"{path!r}: tls_server_config's {field} must be a file name, not {tls[field]!r}")
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if not isinstance(auth_type, str) or auth_type not in _CLIENT_AUTH_TYPES:
        raise WebConfigError(f"{path!r}: client_auth_type {auth_type!r} is not one of "
                             f"{', '.join(sorted(_CLIENT_AUTH_TYPES))}")
    cert, key = rel(tls["cert_file"]), rel(tls["key_file"])
    assert cert is not None and key is not None
    return TLSServerConfig(cert, key, rel(tls.get("client_ca_file")), auth_type in _REQUIRE_CERT)


class BasicAuth:
    """Checks ``Authorization: Basic`` credentials against bcrypt hashes.

    A bcrypt check takes tens of milliseconds on purpose, so credentials
    that passed are remembered (as a keyed digest, not in the clear) and
    the next scrape with them costs a hash lookup."""

    def __init__(self, users: Dict[str, bytes]) -> None:
        self._users = dict(users)
        self._key = os.urandom(32)
        self._good: Dict[bytes, bool] = {}
        self._lock = threading.Lock()
        self._dummy: Optional[bytes] = None

    def _dummy_hash(self) -> bytes:
        """A hash of a random password at the cost the configured hashes use."""
        if self._dummy is None:
            import bcrypt

            rounds = 12
            for hashed in self._users.values():
                try:
                    rounds = int(hashed.split(b"$")[2])
                except (IndexError, ValueError):
                    pass
                break
            self._dummy = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(max(4, min(rounds, 31))))
        return self._dummy

    def check(self, header: Optional[str]) -> bool:
        """True when the ``Authorization`` header holds a known user and its password."""
        if not header or not header[:6].lower() == "basic ":
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user_b, sep, password = decoded.partition(b":")
        if not sep:
            return False
        user = user_b.decode("utf-8", "replace")
        hashed = self._users.get(user)
        if hashed is None:
            # As slow as a wrong password, so the time of an answer does not
            # tell which user names exist.
            import bcrypt

            bcrypt.checkpw(password, self._dummy_hash())
            return False
        digest = hmac.new(self._key, hashed + b"\0" + decoded, hashlib.sha256).digest()
        with self._lock:
            if digest in self._good:
                return True
        import bcrypt

        try:
            ok = bool(bcrypt.checkpw(password, hashed))
        except ValueError:
            ok = False
        if ok:
            with self._lock:
                if len(self._good) > 1024:
                    self._good.clear()
                self._good[digest] = True
        return ok

    def wrap(self, app: WSGIApp) -> WSGIApp:
        """``app`` behind basic authentication: 401 with a challenge unless
        the request's credentials check."""

        def authenticated(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
            if not self.check(environ.get("HTTP_AUTHORIZATION")):
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="metrics"'),
                                                    ("Content-Type", "text/plain; charset=utf-8")])
                return [b"Unauthorized\n"]
            return list(app(environ, start_response))

        return authenticated
