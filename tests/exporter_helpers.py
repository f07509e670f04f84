"""What the exporter tests share: a self-signed certificate, a web
configuration file, the exporter process, and finding which process
listens on a port."""
import contextlib
import datetime
import ipaddress
import os
import subprocess
import sys
import time

import bcrypt
import httpx

from servers import stop

USER, PASSWORD = "prometheus", "s3cret-for-tests"


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fastprom test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "server.crt"), os.path.join(directory, "server.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def web_config(directory, cert=None, key=None):
    """A Prometheus web configuration file with USER's bcrypt hash (and TLS with cert and key)."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    text = f"basic_auth_users:\n  {USER}: '{hashed}'\n"
    if cert:
        text += f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    path = os.path.join(directory, "web.yml")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_exporter(directory, port, *args):
    """``python -m fastprom exporter`` on 127.0.0.1:port; returns the process (output piped)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("FASTPROM_MULTIPROC_DIR", None)
    return subprocess.Popen([sys.executable, "-m", "fastprom", "exporter", "--dir", str(directory), "--port",
                             str(port), "--host", "127.0.0.1", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def exporter(directory, port, *args):
    """The exporter, listening, for the block; stopped after it."""
    proc = start_exporter(directory, port, *args)
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        stop(proc)


def wait_listening(port, proc=None, timeout=30.0):
    """Waits until something listens on 127.0.0.1:port (no request is sent)."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {proc.stdout.read().decode(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


def listener_pid(port, pids):
    """Which of pids has the socket listening on port (Linux /proc), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                        inodes.add(fields[9])
        except OSError:
            continue
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None


def get(url, **kw):
    """A GET that does not read proxies from the environment."""
    import ssl

    kw.setdefault("timeout", 30)
    if isinstance(kw.get("verify"), str):
        kw["verify"] = ssl.create_default_context(cafile=kw["verify"])
    return httpx.get(url, trust_env=False, **kw)


def poll(fn, want, timeout=30.0, every=0.25):
    """Calls fn until it returns want (bounded in count and time); returns the last value."""
    deadline = time.monotonic() + timeout
    got = None
    for _ in range(int(timeout / every) + 1):
        try:
            got = fn()
        except (httpx.TransportError, OSError) as e:
            got = e
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(every)
    return got
