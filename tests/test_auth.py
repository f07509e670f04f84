"""Web configuration files and basic authentication (fastprom._auth), as the
exporter and start_http_server use them."""
import base64

import bcrypt
import pytest

from fastprom import _auth


def header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("tls, message", [
    ("{cert_file: a.crt, key_file: a.key, client_auth_type: [RequireAndVerifyClientCert]}",
     "client_auth_type ['RequireAndVerifyClientCert'] is not one of"),
    ("{cert_file: [a.crt], key_file: a.key}", "cert_file must be a file name"),
    ("{cert_file: a.crt, key_file: {k: v}}", "key_file must be a file name"),
    ("{cert_file: a.crt, key_file: a.key, client_ca_file: 3}", "client_ca_file must be a file name"),
])
def test_a_malformed_tls_section_is_a_clear_error(tmp_path, tls, message):
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config: {tls}\n")
    with pytest.raises(_auth.WebConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _auth.load_web_config(str(path))


def test_an_unknown_user_costs_a_bcrypt_check_as_a_wrong_password_does(monkeypatch):
    """The answer for an unknown user must not come faster than for a known
    one with a wrong password, or its timing tells which user names exist:
    both go through one bcrypt check (counted, not timed)."""
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(4))
    auth = _auth.BasicAuth({"known": hashed})
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, h: calls.append(h) or real(pw, h))
    assert auth.check(header("known", "wrong")) is False
    assert auth.check(header("nobody", "wrong")) is False
    assert len(calls) == 2
    # The stand-in hash costs what the configured ones do.
    assert calls[1] != hashed and calls[1].split(b"$")[2] == hashed.split(b"$")[2]
    assert auth.check(header("known", "right")) is True
