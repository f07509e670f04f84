"""One set of metrics across worker processes: the store in shared memory."""
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from servers import children, uvicorn_server


def scrape(base):
    # A fresh connection each time, so the kernel may hand it to any worker.
    r = httpx.get(base + "/metrics", headers={"connection": "close"})
    assert r.status_code == 200
    out = {}
    for fam in parse_text(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def app_requests(samples):
    """sum(http_requests_total) without the scrapes themselves."""
    return sum(v for (name, labels), v in samples.items()
               if name == "http_requests_total" and dict(labels)["handler"] != "/metrics")


def latency_count(samples):
    return sum(v for (name, labels), v in samples.items()
               if name == "http_request_duration_seconds_count" and dict(labels)["handler"] != "/metrics")


def send(base, n, path="/items/1"):
    pids = set()
    for _ in range(n):
        r = httpx.get(base + (path if path != "/pid" else "/pid"), headers={"connection": "close"})
        assert r.status_code == 200
        if path == "/pid":
            pids.add(r.json()["pid"])
    return pids


@pytest.mark.parametrize("server,args", [("uvicorn", []), ("gunicorn", []), ("gunicorn", ["--preload"])],
                         ids=["uvicorn-spawn", "gunicorn-fork", "gunicorn-preload-fork"])
def test_every_scrape_reports_the_true_totals(tmp_path, server, args):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with uvicorn_server(server=server, workers=2, env=env, extra_args=args) as base:
        n = 0
        pids = set()
        deadline = time.monotonic() + 60
        while (len(pids) < 2 or n < 60) and time.monotonic() < deadline:
            pids |= send(base, 10, "/pid")
            n += 10
        assert len(pids) == 2, f"requests were not spread over both workers: {pids}"
        for _ in range(20):
            s = scrape(base)
            assert app_requests(s) == n
            assert latency_count(s) == n
            assert s[("http_request_duration_seconds_bucket",
                      (("handler", "/pid"), ("le", "+Inf"), ("method", "GET")))] == n
        # Process metrics come per worker, with a pid label (with --preload
        # the master imported the app too, and is reported as well).
        cpu = {dict(k[1])["pid"] for k in s if k[0] == "process_cpu_seconds_total"}
        assert {str(p) for p in pids} <= cpu and len(cpu) <= 3
        # No per-process files from fastprom (the *.db files are those of
        # prometheus_client, which the test app also uses).
        assert [f for f in os.listdir(tmp_path) if not f.endswith(".db")] == ["fastprom.store"]


def test_in_progress_gauge_is_right_across_workers(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    opts = {"should_instrument_requests_inprogress": True}
    with uvicorn_server(workers=2, env=env, opts=opts) as base:
        threads = [threading.Thread(target=httpx.get, args=(base + "/stream",),
                                    kwargs={"params": {"delay": 0.6, "chunks": 2}, "timeout": 30}) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        during = scrape(base)[("http_requests_inprogress", ())]
        for t in threads:
            t.join(30)
        after = scrape(base)[("http_requests_inprogress", ())]
        # The scrape itself is in progress while it renders.
        assert (during, after) == (5, 1)


def test_a_killed_worker_loses_nothing(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with uvicorn_server(workers=2, env=env) as base:
        completed = 0
        stop = threading.Event()
        # The kill comes between requests: a worker killed after sending a
        # response but before recording it would make the client's count
        # and the store's differ by one whatever the store does.
        hold, idle = threading.Event(), threading.Event()

        def load():
            nonlocal completed
            deadline = time.monotonic() + 30
            with httpx.Client(timeout=5) as c:
                while not stop.is_set() and time.monotonic() < deadline and completed < 5000:
                    if hold.is_set():
                        idle.set()
                        time.sleep(0.01)
                        continue
                    try:
                        r = c.get(base + "/items/1", headers={"connection": "close"})
                    except httpx.TransportError:
                        continue  # the killed worker's connection
                    if r.status_code == 200:
                        completed += 1

        t = threading.Thread(target=load)
        t.start()
        time.sleep(1.0)
        workers = children(base.proc.pid)
        victims = [p for p in workers if _is_worker(p)]
        assert len(victims) >= 2, workers
        hold.set()
        assert idle.wait(30), "the load did not pause"
        os.kill(victims[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = [p for p in children(base.proc.pid) if _is_worker(p)]
            if victims[0] not in now and len(now) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the server did not replace the killed worker")
        hold.clear()
        time.sleep(1.0)
        stop.set()
        t.join(30)
        assert completed > 50
        for _ in range(5):
            assert app_requests(scrape(base)) == completed


def _is_worker(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return b"resource_tracker" not in cmd


def _create_same_series(directory, barrier, n):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    import fastprom

    c = fastprom.Counter("raced", "Created by every process at once", ["k"])
    g = fastprom.Gauge("level", "Per process", ["k"], multiprocess_mode="livesum")
    gmax = fastprom.Gauge("peak", "Per process", multiprocess_mode="max")
    gall = fastprom.Gauge("each", "Per process")
    barrier.wait()
    for i in range(n):
        c.labels(f"s{i % 50}").inc()  # every process creates the same 50 series at once
    g.labels("a").set(1)
    gmax.set(os.getpid() % 1000)
    gall.set(1)
    barrier.wait()  # all written
    barrier.wait()  # the parent has looked


def test_processes_creating_the_same_series_end_with_one_series(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    nproc, n = 4, 5000
    barrier = ctx.Barrier(nproc + 1)
    procs = [ctx.Process(target=_create_same_series, args=(str(tmp_path), barrier, n)) for _ in range(nproc)]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=60)
        barrier.wait(timeout=60)
        out = subprocess.run([sys.executable, "-c", "import fastprom; fastprom.Counter('raced', "
                              "'Created by every process at once', ['k']); print(fastprom.generate_latest().decode())"],
                             env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)), capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        s = {(x.name, tuple(sorted(x.labels.items()))): x.value for f in parse_text(out.stdout) for x in f.samples}
        raced = {k: v for k, v in s.items() if k[0] == "raced_total"}
        assert len(raced) == 50 and set(raced.values()) == {nproc * n / 50}
        assert s[("level", (("k", "a"),))] == nproc
        assert s[("peak", ())] == max(p.pid % 1000 for p in procs)
        assert sorted(dict(k[1])["pid"] for k in s if k[0] == "each") == sorted(str(p.pid) for p in procs)
    finally:
        barrier.wait(timeout=60)
        for p in procs:
            p.join(30)
    # Once the workers are gone, live gauges drop their series; "all" keeps them.
    out = subprocess.run([sys.executable, "-c", "import fastprom; fastprom.Counter('raced', "
                          "'Created by every process at once', ['k']); print(fastprom.generate_latest().decode())"],
                         env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)), capture_output=True,
                         text=True, timeout=60)
    assert 'level{k="a"}' not in out.stdout
    assert out.stdout.count("each{pid=") == nproc


def _start_with(directory, env_extra=None):
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory), **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", "import fastprom; fastprom.Counter('x', 'X').inc()"],
                          env=env, capture_output=True, text=True, timeout=60)


def test_unusable_store_files_fail_at_start_up_with_a_clear_error(tmp_path):
    store = tmp_path / "fastprom.store"
    assert _start_with(tmp_path).returncode == 0 and store.exists()
    good = store.read_bytes()[:4096]

    cases = {
        "another version": lambda: store.write_bytes(good[:8] + b"\x63\x00\x00\x00" + good[12:]),
        "truncated": lambda: store.write_bytes(good[:1000]),
        "not a fastprom store": lambda: store.write_bytes(b"garbage!" * 4096),
        # nslots (at byte 24) doubled: the header no longer fits the file's size.
        "does not match its size": lambda: store.write_bytes(
            good[:24] + (int.from_bytes(good[24:32], "little") * 2).to_bytes(8, "little") + good[32:]),
    }
    for why, damage in cases.items():
        if why == "does not match its size":
            assert _start_with(tmp_path).returncode == 0
            good = store.read_bytes()
        damage()
        r = _start_with(tmp_path)
        assert r.returncode != 0
        assert "StoreFileError" in r.stderr and str(store) in r.stderr and why in r.stderr, r.stderr
        assert "delete it" in r.stderr
        store.unlink()
        assert _start_with(tmp_path).returncode == 0

    r = _start_with(tmp_path / "missing")
    assert r.returncode != 0 and "does not exist" in r.stderr
    r = _start_with("/proc")  # a directory nobody can create files in, even root
    assert r.returncode != 0 and "/proc/fastprom.store" in r.stderr and "every worker can write to" in r.stderr


def test_shared_store_overflows_instead_of_failing(tmp_path):
    code = ("import warnings, fastprom\n"
            "c = fastprom.Counter('wide', 'W', ['i'])\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    for i in range(8000): c.labels(str(i)).inc()\n"
            "print(len(w), w[0].message if w else '')\n"
            "print(fastprom.generate_latest().decode())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE="1M"))
    assert r.returncode == 0, r.stderr
    first, _, body = r.stdout.partition("\n")
    assert first.startswith("1 ") and "store is full" in first
    s = {(x.name, tuple(sorted(x.labels.items()))): x.value for f in parse_text(body) for x in f.samples}
    wide = {dict(k[1])["i"]: v for k, v in s.items() if k[0] == "wide_total"}
    assert sum(wide.values()) == 8000 and wide["fastprom_overflow"] == s[("fastprom_store_overflow_total", ())]


def test_a_changed_metric_is_refused_with_advice(tmp_path):
    assert _start_with(tmp_path).returncode == 0
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", "import fastprom; fastprom.Counter('x', 'X', ['new_label'])"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "x: the shared metrics store already has a metric of this name" in r.stderr
    assert "empty PROMETHEUS_MULTIPROC_DIR" in r.stderr


def test_a_gauge_label_named_pid_is_refused_in_a_shared_store(tmp_path):
    """The store labels each process's gauge series with its pid: a label of
    that name of the user's own would be written twice, which Prometheus refuses."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE="8M")
    code = ("import fastprom\n"
            "try:\n"
            "    fastprom.Gauge('g', 'G.', ['pid'], multiprocess_mode='sum')\n"
            "except fastprom.InvalidMetricError as e:\n"
            "    print('refused:', e)\n"
            "fastprom.Gauge('g2', 'G.', ['worker']).labels('1').set(1)\n"
            "print(fastprom.generate_latest().decode())\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "refused: g: a gauge in a multi-process store cannot have a label named 'pid'" in r.stdout
    assert 'g2{pid="' in r.stdout and 'worker="1"' in r.stdout
    # Outside a shared store the label is the user's to use.
    reg = __import__("fastprom").CollectorRegistry()
    __import__("fastprom").Gauge("g", "G.", ["pid"], registry=reg).labels("7").set(1)
    assert reg.get_sample_value("g", {"pid": "7"}) == 1


def test_prometheus_clients_multiprocess_setup_works_with_the_import_changed(tmp_path):
    """The pattern prometheus_client documents for gunicorn: a registry of
    your own with MultiProcessCollector, mark_process_dead in child_exit."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE="8M")
    writer = ("import sys, fastprom; c = fastprom.Counter('jobs', 'Jobs.', ['w']); c.labels(sys.argv[1]).inc(3); "
              "fastprom.Gauge('busy', 'Busy.', multiprocess_mode='livesum').set(1)")
    for w in ("a", "b"):
        r = subprocess.run([sys.executable, "-c", writer, w], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    reader = """
import os
from fastprom import CollectorRegistry, generate_latest, multiprocess
multiprocess.mark_process_dead(os.getpid())  # harmless
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
print(generate_latest(registry).decode())
print("families", sorted(m.name for m in registry.collect()))
"""
    r = subprocess.run([sys.executable, "-c", reader], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text, _, fams = r.stdout.rpartition("families ")
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in parse_text(text) for s in f.samples}
    assert got[("jobs_total", (("w", "a"),))] == 3 and got[("jobs_total", (("w", "b"),))] == 3
    assert ("busy", ()) not in got  # both writers have exited: a live gauge drops their series
    assert "'jobs'" in fams
    assert text.count("# TYPE jobs_total counter") == 1
    bad = subprocess.run([sys.executable, "-c", "from fastprom import CollectorRegistry, multiprocess; "
                          "multiprocess.MultiProcessCollector(CollectorRegistry())"],
                         env={k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
                         capture_output=True, text=True, timeout=60)
    assert "PROMETHEUS_MULTIPROC_DIR is not set or not a directory" in bad.stderr
