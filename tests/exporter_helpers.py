"""What the exporter tests share: a self-signed certificate, a web
configuration file, the exporter process, and finding which process
listens on a port."""
import contextlib
import os
import subprocess
import sys
import time

import bcrypt
import httpx

from servers import stop

USER, PASSWORD = "prometheus", "s3cret-for-tests"


def issue(directory, stem, issuer=None, usage=None):
    """An EC P-256 key and a certificate for 127.0.0.1 and localhost, made with
    the ``openssl`` command and written to directory/stem.pem and stem.key.
    Without ``usage`` it is a CA; with ``usage`` ("serverAuth", "clientAuth")
    a leaf for that use.  Self-signed unless ``issuer`` is a (cert, key) pair
    of paths.  Returns (cert, key) paths; valid from now for a day."""
    directory = str(directory)
    cert, key = os.path.join(directory, stem + ".pem"), os.path.join(directory, stem + ".key")
    config = os.path.join(directory, stem + ".cnf")
    ext = ["subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid",
           "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    if usage is None:
        ext += ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign"]
    else:
        ext += ["basicConstraints=critical,CA:FALSE", f"extendedKeyUsage={usage}"]
    with open(config, "w") as f:
        f.write("[req]\ndistinguished_name=dn\n[dn]\n[ext]\n" + "\n".join(ext) + "\n")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    subject = ["-subj", f"/CN=fastprom test {stem}", "-config", config]
    if issuer is None:
        openssl("req", "-new", "-x509", "-key", key, *subject, "-extensions", "ext", "-days", "1", "-out", cert)
    else:
        csr = os.path.join(directory, stem + ".csr")
        openssl("req", "-new", "-key", key, *subject, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1],
                "-set_serial", "0x" + os.urandom(8).hex(), "-extfile", config, "-extensions", "ext",
                "-days", "1", "-out", cert)
    return cert, key


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert, key) paths."""
    return issue(directory, "server")


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
