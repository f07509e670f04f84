"""The standalone exporter (``python -m fastprom exporter``): a read-only
mapping of the shared store served over HTTP(S) with basic auth, scraped by
the real Prometheus server while uvicorn workers take traffic; and
``start_http_server`` elected among gunicorn workers.  Every process started
here is stopped; every load loop is bounded in count and time."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from conftest import need_tool
from exporter_helpers import (PASSWORD, USER, exporter, get, listener_pid, make_cert, poll, start_exporter,
                              wait_listening, web_config)
from servers import children, free_port, stop, uvicorn_server

ITEMS = 'http_requests_total{handler="/items/{item_id}"}'


def write_counts(directory, n, name="jobs"):
    """A worker process that counts n jobs in the directory's store and exits."""
    code = f"from fastprom import Counter; Counter({name!r}, 'Jobs.').inc({n})"
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def samples(text, name):
    return [s for fam in parse_text(text) for s in fam.samples if s.name == name]


def total(text, name, **labels):
    return sum(s.value for s in samples(text, name) if all(s.labels.get(k) == v for k, v in labels.items()))


# --- the mapping cannot write ----------------------------------------------------


ATTEMPT = textwrap.dedent("""
    import ctypes, ctypes.util, errno, sys
    from fastprom import _core
    store = _core.Store(path=sys.argv[1], readonly=True)
    start = None
    for line in open("/proc/self/maps"):
        fields = line.split()
        if len(fields) >= 6 and fields[5] == sys.argv[1]:
            assert fields[1] == "r--s", line
            start = int(fields[0].split("-")[0], 16)
    assert start is not None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    rc = libc.mprotect(start, 4096, 3)  # PROT_READ | PROT_WRITE
    print("mprotect", rc, errno.errorcode.get(ctypes.get_errno()), flush=True)
    try:
        store.add_family(0, "new_family", "", "", ())
    except _core.StoreFileError as e:
        print("add_family refused:", e, flush=True)
    ctypes.memset(start + 64, 0xff, 8)  # a write through the mapping: the kernel stops it
    print("wrote", flush=True)
""")


def test_the_exporter_maps_the_store_read_only_and_a_write_through_it_fails(tmp_path):
    write_counts(tmp_path, 5)
    path = str(tmp_path / "fastprom.store")
    before = open(path, "rb").read()
    port = free_port()
    with exporter(tmp_path, port) as proc:
        r = get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200 and total(r.text, "jobs_total") == 5
        maps = [ln.split() for ln in open(f"/proc/{proc.pid}/maps") if ln.rstrip().endswith(path)]
        assert maps and all("w" not in m[1] for m in maps), maps
        fds = [fd for fd in os.listdir(f"/proc/{proc.pid}/fd") if os.readlink(f"/proc/{proc.pid}/fd/{fd}") == path]
        assert fds
        for fd in fds:
            flags = next(ln for ln in open(f"/proc/{proc.pid}/fdinfo/{fd}") if ln.startswith("flags:"))
            assert int(flags.split()[1], 8) & os.O_ACCMODE == os.O_RDONLY

    r = subprocess.run([sys.executable, "-c", ATTEMPT, path], capture_output=True, text=True, timeout=60)
    assert "mprotect -1 EACCES" in r.stdout, r.stdout + r.stderr
    assert "add_family refused:" in r.stdout and "read-only" in r.stdout
    assert "wrote" not in r.stdout, r.stdout
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        # AddressSanitizer catches the fault, reports it and exits.
        assert r.returncode != 0 and "SEGV" in r.stderr, (r.returncode, r.stderr)
    else:
        assert r.returncode == -signal.SIGSEGV, (r.returncode, r.stdout, r.stderr)
    assert open(path, "rb").read() == before


DAMAGE_AFTER_OPEN = textwrap.dedent("""
    import mmap, os, struct, sys
    from fastprom import _core
    path, marker = sys.argv[1], sys.argv[2].encode()
    store = _core.Store(path=path, readonly=True)
    assert marker in _core.render([store], 0)
    # Another process damages the file after the open checked it: the
    # series' label text length (records.h: the u32 32 bytes before the
    # record's text offset) becomes huge.
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        text_at = m.find(b'k="' + marker)
        assert text_at > 0
        field = m.find(struct.pack("<Q", text_at))
        assert field > 32 and field % 8 == 0, field
        m[field - 32:field - 28] = struct.pack("<I", 0xFFFFFFFF)
        m.flush()
    out = _core.render([store], 0)
    assert marker not in out, out
    print("damaged series left out", flush=True)
    # Cut shorter than the mapping: taken as replaced, so the exporter reopens.
    os.truncate(path, 1 << 20)
    print("replaced after truncation:", store.replaced(), flush=True)
""")


def test_a_read_only_reader_survives_damage_and_truncation_after_it_opened(tmp_path):
    code = "from fastprom import Counter; Counter('jobs', 'Jobs.', ['k']).labels('marker-7f3a').inc(3)"
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE="8M")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    path = str(tmp_path / "fastprom.store")
    r = subprocess.run([sys.executable, "-c", DAMAGE_AFTER_OPEN, path, "marker-7f3a"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "damaged series left out" in r.stdout
    assert "replaced after truncation: True" in r.stdout


def test_a_fifo_at_the_store_path_is_refused_not_waited_on(tmp_path):
    fifo = str(tmp_path / "fastprom.store")
    os.mkfifo(fifo)
    code = ("import sys\nfrom fastprom import _core\n"
            "try:\n    _core.Store(path=sys.argv[1], readonly=True)\n"
            "except (_core.StoreFileError, OSError) as e:\n    print('refused:', e)\n")
    r = subprocess.run([sys.executable, "-c", code, fifo], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "refused:" in r.stdout and "regular file" in r.stdout, (r.stdout, r.stderr)


def test_a_read_only_open_and_render_while_a_worker_creates_families_and_series_never_fails(tmp_path):
    from fastprom import _core, generate_latest
    from fastprom.exporter import StoreView, exporter_registry

    creator = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time, fastprom
        c = fastprom.Counter("made", "M", ["k"])
        s = fastprom.Summary("lat", "L", ["k"], quantiles=(0.5, 0.9))
        print("ready", flush=True)
        deadline = time.monotonic() + 90
        i = 0
        while time.monotonic() < deadline and i < 2000000:
            for _ in range(50):
                c.labels(str(i)).inc()
                s.labels(str(i % 7)).observe(i % 13)
                if i >= 500:
                    c.remove(str(i - 500))
                i += 1
            if i % 1000 == 0 and i < 100000:  # a new family now and then
                fastprom.Gauge(f"g{i}", "G", multiprocess_mode="livesum").set(i)
            time.sleep(0.01)
        """)], env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE=str(64 << 20)),
        stdout=subprocess.PIPE, text=True)
    try:
        assert creator.stdout.readline().strip() == "ready"
        path = str(tmp_path / "fastprom.store")
        for _ in range(200):
            _core.Store(path=path, readonly=True)  # checked under the lock as it opens: never refused
        view = StoreView(str(tmp_path))
        registry = exporter_registry(view)
        for _ in range(50):
            assert view.refresh() is not None, view.problem
            text = generate_latest(registry).decode()
            assert {f.name for f in parse_text(text)} >= {"made", "lat"}
        assert creator.poll() is None, "the creator finished first: the test proves nothing"
    finally:
        creator.kill()
        creator.wait()


# --- waiting, following, explaining ------------------------------------------------


def test_the_exporter_waits_for_the_store_follows_a_new_one_and_says_what_is_wrong(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    store = tmp_path / "fastprom.store"
    with exporter(tmp_path, port):
        r = get(url)
        assert r.status_code == 503 and "waiting for the metrics store file" in r.text, r.text

        store.write_bytes(os.urandom(1 << 16))  # another program's file
        r = get(url)
        assert r.status_code == 503 and "not a fastprom store" in r.text, r.text
        store.write_bytes(b"short")
        r = get(url)
        assert r.status_code == 503 and "too short to be a fastprom store" in r.text, r.text
        store.unlink()

        write_counts(tmp_path, 3)
        r = get(url)
        assert r.status_code == 200 and total(r.text, "jobs_total") == 3
        assert get(url, headers={"accept-encoding": "gzip"}).headers["content-encoding"] == "gzip"
        om = get(url, headers={"accept": "application/openmetrics-text; version=1.0.0"})
        assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.endswith("# EOF\n")
        assert get(f"http://127.0.0.1:{port}/other").status_code == 404

        # Emptied at a deploy, made anew by the next worker: the exporter follows.
        store.unlink()
        assert "waiting" in get(url).text
        write_counts(tmp_path, 7)
        assert total(get(url).text, "jobs_total") == 7

        if os.geteuid() != 0:  # root reads any file
            store.chmod(0)
            r = get(url)
            assert r.status_code == 503 and "Permission denied" in r.text, r.text
            store.chmod(0o600)
            assert total(get(url).text, "jobs_total") == 7


def test_the_exporter_refuses_a_port_in_use_a_bad_certificate_and_a_bad_web_config(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = start_exporter(tmp_path, taken.getsockname()[1])
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and b"the port is in use" in out, out

    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    proc = start_exporter(tmp_path, free_port(), "--certfile", str(bad), "--keyfile", str(bad))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and b"cannot load the server certificate" in out, out

    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n  prometheus: plaintext\n")
    proc = start_exporter(tmp_path, free_port(), "--web-config", str(config))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and b"must be a bcrypt hash" in out, out


def test_the_exporter_requires_a_client_certificate_when_asked(tmp_path):
    import ssl

    cert, key = make_cert(tmp_path)
    write_counts(tmp_path, 4)
    port = free_port()
    url = f"https://127.0.0.1:{port}/metrics"
    with exporter(tmp_path, port, "--certfile", cert, "--keyfile", key, "--client-cafile", cert,
                  "--client-auth-required"):
        with pytest.raises(httpx.TransportError):
            get(url, verify=cert)
        context = ssl.create_default_context(cafile=cert)
        context.load_cert_chain(cert, key)
        r = get(url, verify=context)
        assert r.status_code == 200 and total(r.text, "jobs_total") == 4


# --- Prometheus scraping the exporter over TLS with basic auth ----------------------


def _prometheus(tmp_path, target_port, cert):
    binary = need_tool("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(textwrap.dedent(f"""\
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: exporter
            scheme: https
            tls_config:
              ca_file: {cert}
            basic_auth:
              username: {USER}
              password: {PASSWORD}
            static_configs:
              - targets: ['127.0.0.1:{target_port}']
        """))
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    log.close()
    return proc, f"http://127.0.0.1:{port}"


def _raw_samples(prom, promql_range):
    """The raw samples (timestamp, value) of a range selector, across its series."""
    r = get(f"{prom}/api/v1/query", params={"query": promql_range})
    r.raise_for_status()
    return [(float(t), float(v)) for series in r.json()["data"]["result"] for t, v in series["values"]]


def _latest(prom):
    r = get(f"{prom}/api/v1/query", params={"query": f"sum({ITEMS})"})
    result = r.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


class Load:
    """Requests to the app from a thread, each on a new connection (so a
    killed worker fails no pooled one), at most `count`, for at most 60 s."""

    def __init__(self, base, count):
        self.base, self.count, self.ok = base, count, 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + 60
        for i in range(self.count):
            if time.monotonic() > deadline:
                break
            try:
                r = httpx.get(f"{self.base}/items/{i}", headers={"connection": "close"}, timeout=10, trust_env=False)
            except httpx.TransportError:
                continue
            self.ok += r.status_code == 200

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(90)
        time.sleep(0.3)  # the middleware counts a request just after its response is sent


def test_prometheus_scrapes_the_exporter_over_tls_with_basic_auth_while_workers_take_traffic(tmp_path):
    cert, key = make_cert(tmp_path)
    config = web_config(tmp_path, cert, key)
    exporter_port = free_port()
    url = f"https://127.0.0.1:{exporter_port}/metrics"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "FASTPROM_TEST_NO_EXPOSE": "1"}

    def scrape_total():
        r = get(url, verify=cert, auth=(USER, PASSWORD))
        return total(r.text, "http_requests_total", handler="/items/{item_id}") if r.status_code == 200 else None

    with uvicorn_server(workers=2, env=env) as app:
        exp = start_exporter(tmp_path, exporter_port, "--web-config", config)
        prom, prom_base = _prometheus(tmp_path, exporter_port, cert)
        try:
            wait_listening(exporter_port, exp)
            assert get(f"{app}/metrics").status_code == 404  # the app does not expose its metrics
            r = get(url, verify=cert)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
            assert get(url, verify=cert, auth=(USER, "wrong")).status_code == 401
            with pytest.raises(httpx.TransportError):  # TLS only
                get(url.replace("https", "http"))

            sent = 0
            # Round 1: plain traffic.  Round 2: the exporter is killed and
            # restarted while the workers take traffic.
            for rnd in range(2):
                with Load(app, 120) as load:
                    if rnd == 1:
                        time.sleep(0.5)
                        exp.kill()
                        exp.wait(10)
                        exp = start_exporter(tmp_path, exporter_port, "--web-config", config)
                        wait_listening(exporter_port, exp)
                sent += load.ok
                assert load.ok > 0
                quiet = time.time()
                assert poll(scrape_total, sent) == sent
                assert poll(lambda: _latest(prom_base), float(sent)) == float(sent), open(tmp_path / "prometheus.log").read()
                time.sleep(2.5)  # two more scrapes at least
                after = [v for t, v in _raw_samples(prom_base, f"{ITEMS}[30s]") if t > quiet]
                assert len(after) >= 2 and all(v == sent for v in after), (sent, after)

            # A worker killed: its counts are still in the next scrape.  The
            # workers are the server's children that the store knows as live.
            r = get(url, verify=cert, auth=(USER, PASSWORD))
            live = {int(s.labels["pid"]) for s in samples(r.text, "process_start_time_seconds")}
            workers = [p for p in children(app.proc.pid) if p in live]
            assert len(workers) == 2, (workers, live)
            os.kill(workers[0], signal.SIGKILL)
            killed = time.time()
            assert scrape_total() == sent
            time.sleep(2.5)
            after = [v for t, v in _raw_samples(prom_base, f"{ITEMS}[30s]") if t > killed]
            assert len(after) >= 2 and all(v == sent for v in after), (sent, after)
            # Prometheus saw the target up throughout the last rounds.
            up = get(f"{prom_base}/api/v1/query", params={"query": "up"}).json()["data"]["result"]
            assert up and up[0]["value"][1] == "1"
        finally:
            stop(exp)
            stop(prom)


# --- start_http_server ------------------------------------------------------------


def test_start_http_server_takes_tls_and_basic_auth_from_a_web_config(tmp_path):
    import fastprom

    cert, key = make_cert(tmp_path)
    registry = fastprom.CollectorRegistry()
    fastprom.Counter("served", "S.", registry=registry).inc(2)
    server, thread = fastprom.start_http_server(0, "127.0.0.1", registry,
                                                web_config_file=web_config(tmp_path, cert, key))
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/metrics"
        assert get(url, verify=cert).status_code == 401
        assert get(url, verify=cert, auth=(USER, "nope")).status_code == 401
        r = get(url, verify=cert, auth=(USER, PASSWORD))
        assert r.status_code == 200 and total(r.text, "served_total") == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    with pytest.raises(OSError, match="cannot load the server certificate"):
        fastprom.start_http_server(0, "127.0.0.1", registry, certfile=str(tmp_path / "none.crt"),
                                   keyfile=str(tmp_path / "none.key"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="the port is in use"):
            fastprom.start_http_server(taken.getsockname()[1], "127.0.0.1", registry)


def test_start_http_server_under_gunicorn_one_worker_serves_and_another_takes_over(tmp_path):
    metrics_port = free_port()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "FASTPROM_TEST_NO_EXPOSE": "1",
           "FASTPROM_TEST_METRICS_PORT": str(metrics_port)}
    url = f"http://127.0.0.1:{metrics_port}/metrics"

    def served():
        r = get(url)
        text = r.text
        pids = {s.labels["pid"] for s in samples(text, "process_start_time_seconds")}
        return total(text, "http_requests_total", handler="/items/{item_id}"), pids

    with uvicorn_server(server="gunicorn", workers=3, env=env) as app:
        wait_listening(metrics_port)
        assert get(f"{app}/metrics").status_code == 404
        with Load(app, 90) as load:
            pass
        sent = load.ok
        # One port, every worker's totals and every worker's process metrics.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (count, pids), kids = served(), set(map(str, children(app.proc.pid)))
            got = (count, pids, kids)
            if count == sent and len(kids) == 3 and pids == kids:
                break
            time.sleep(0.25)
        assert got[0] == sent and len(got[2]) == 3 and got[1] == got[2], got
        workers = sorted(int(p) for p in got[2])
        leader = listener_pid(metrics_port, workers)
        assert leader in workers
        assert [p for p in workers if listener_pid(metrics_port, [p])] == [leader]  # exactly one serves

        os.kill(leader, signal.SIGKILL)
        got = poll(lambda: served()[0], sent, timeout=30)
        assert got == sent  # answered again, the dead worker's counts included
        now = children(app.proc.pid)
        new_leader = listener_pid(metrics_port, now)
        assert new_leader is not None and new_leader != leader
        with Load(app, 30) as load:
            pass
        sent += load.ok
        assert poll(lambda: served()[0], sent) == sent


def test_expose_passes_fastapi_dependencies_through(tmp_path):
    with uvicorn_server(env={"FASTPROM_TEST_EXPOSE_TOKEN": "let-me-in"}) as app:
        assert get(f"{app}/items/1").status_code == 200
        assert get(f"{app}/metrics").status_code == 401
        assert get(f"{app}/metrics", headers={"x-token": "wrong"}).status_code == 401
        r = get(f"{app}/metrics", headers={"x-token": "let-me-in"})
        assert r.status_code == 200 and total(r.text, "http_requests_total", handler="/items/{item_id}") == 1
