"""The shared store under faults: opening while others create series, a
filesystem too small for it, processes that die at any step, reused pids,
forks (from Python and from C), removals in another process, and removed
series whose space is reused.  Each test starts real processes and stops
every one it starts."""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import fastprom as fp
from fastprom import _core

SIZE = 8 << 20


def run(code, directory, timeout=60, env=None, check=True):
    """Runs Python code in a process whose default registry shares the store in directory."""
    e = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory), FASTPROM_STORE_SIZE=str(SIZE))
    e.update(env or {})
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e, capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def shared(directory):
    """A registry of our own on the store in directory (as a worker's default registry is)."""
    reg = fp.CollectorRegistry()
    reg._open_store(str(directory))
    return reg


def test_opening_while_another_process_creates_series_is_never_refused(tmp_path):
    path = str(tmp_path / "fastprom.store")
    creator = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time, fastprom
        c = fastprom.Counter("made", "M", ["k"])
        print("ready", flush=True)
        deadline = time.monotonic() + 90
        i = 0
        # New series all the time, and removals (whose records are reused
        # seconds later), at a pace that keeps the store from filling.
        while time.monotonic() < deadline and i < 2000000:
            for _ in range(50):
                c.labels(str(i)).inc()
                if i >= 500:
                    c.remove(str(i - 500))
                i += 1
            time.sleep(0.01)
        """)], env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE=str(64 << 20)),
        stdout=subprocess.PIPE, text=True)
    try:
        assert creator.stdout.readline().strip() == "ready"
        refused = []
        for _ in range(500):
            try:
                _core.Store(64 << 20, path)
            except fp.StoreFileError as e:
                refused.append(str(e))
        assert creator.poll() is None, "the creator finished before the opens: the test proves nothing"
        assert refused == [], refused[:3]
    finally:
        creator.kill()
        creator.wait()
    # And a worker started afterwards finds the file whole.
    assert _core.Store(64 << 20, path).check() is None


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "shm"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs here: {r.stderr.decode()}")
        pytest.skip("cannot mount a tmpfs (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_store_larger_than_its_tmpfs_warns_then_overflows_instead_of_crashing(small_tmpfs):
    r = run("""
        import warnings, fastprom
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            c = fastprom.Counter("c", "C", ["k"])
            for i in range(60000):
                c.labels(str(i) * 10).inc()
        msgs = [str(x.message) for x in w]
        assert any("MiB free" in m and "FASTPROM_STORE_SIZE" in m for m in msgs), msgs
        assert any("store is full" in m for m in msgs), msgs
        text = fastprom.generate_latest().decode()
        assert 'c_total{k="fastprom_overflow"}' in text
        print("ok")
        """, small_tmpfs, env={"FASTPROM_STORE_SIZE": str(32 << 20)})
    assert "ok" in r.stdout


def test_a_store_whose_tables_do_not_fit_its_tmpfs_is_refused_with_the_fix(small_tmpfs):
    r = run("import fastprom; fastprom.Counter('c', 'C').inc()", small_tmpfs,
            env={"FASTPROM_STORE_SIZE": "8G"}, check=False)
    assert r.returncode != 0 and "too little room" in r.stderr and "FASTPROM_STORE_SIZE" in r.stderr
    assert "Traceback" in r.stderr  # a StoreFileError at start-up, not a SIGBUS
    assert r.returncode == 1


def test_counters_do_not_wrap(registry):
    c = fp.Counter("big", "B", registry=registry)
    for _ in range(3):
        c.inc(2**63 - 1)
    assert registry.get_sample_value("big_total") == 3 * float(2**63 - 1)


def test_a_removal_in_another_process_is_seen_by_children_cached_here(tmp_path):
    reg = shared(tmp_path)
    c = fp.Counter("held", "H", ["k"], registry=reg)
    child = c.labels("a")
    child.inc()
    run("""
        import fastprom
        fastprom.Counter("held", "H", ["k"]).remove("a")
        assert fastprom.REGISTRY.get_sample_value("held_total", {"k": "a"}) is None
        """, tmp_path)
    assert reg.get_sample_value("held_total", {"k": "a"}) is None
    child.inc(5)  # counted in a live series, not in the removed record
    assert reg.get_sample_value("held_total", {"k": "a"}) == 5


def test_removed_series_space_is_reused_across_processes(tmp_path, frozen):
    reg = fp.CollectorRegistry(store_size=1 << 20)
    c = fp.Counter("churn", "C", ["k"], registry=reg)
    t = frozen
    for i in range(20000):  # 768 series fill a 1 MiB store without reuse
        c.labels(str(i)).inc()
        c.remove(str(i))
        if i % 100 == 99:
            t += 3 * 2.0  # past the grace period of a removed record
            fp.freeze_clock(t)
    assert reg._get_store().stats()["overflowed"] == 0
    c.labels("last").inc(7)
    assert reg.get_sample_value("churn_total", {"k": "last"}) == 7
    assert reg._get_store().check() is None
    lines = [ln for ln in fp.generate_latest(reg).decode().splitlines() if ln.startswith("churn_total")]
    assert lines == ['churn_total{k="last"} 7.0']


def test_a_reused_record_is_never_written_through_an_old_child(registry, frozen):
    c = fp.Counter("r", "R", ["k"], registry=registry)
    old = c.labels("old")
    old.inc()
    c.remove("old")
    fp.freeze_clock(frozen + 10)
    c.labels("new").inc(2)  # may reuse the old record
    old.inc(3)              # the old child's counts go to "old", made again
    assert registry.get_sample_value("r_total", {"k": "new"}) == 2
    assert registry.get_sample_value("r_total", {"k": "old"}) == 3


def test_a_process_reusing_a_dead_workers_pid_gets_its_own_series(tmp_path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-fp", "--mount-proc", "true"]).returncode:
        pytest.skip("needs unshare with pid namespaces")
    code = textwrap.dedent("""
        import os, fastprom
        assert os.getpid() == 1
        g = fastprom.Gauge("level", "L", multiprocess_mode="{mode}")
        assert fastprom.REGISTRY.get_sample_value("level", {labels}) in (None, 0.0), "inherited a dead pid's value"
        g.set({value})
        """)
    e = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for value in (5, 7):  # both processes are pid 1, each in a pid namespace of its own
        for mode, labels in (("all", '{"pid": "1"}'), ("liveall", '{"pid": "1"}'), ("livesum", "{}")):
            src = code.replace("{mode}", mode).replace("{labels}", labels).replace("{value}", str(value))
            src = src.replace('"level"', f'"level_{mode}"')
            r = subprocess.run(["unshare", "-fp", "--mount-proc", sys.executable, "-c", src], env=e,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
    reg = shared(tmp_path)
    for mode in ("all", "liveall", "livesum"):
        fp.Gauge(f"level_{mode}", "L", multiprocess_mode=mode, registry=reg)
    # Both pid-1 processes are dead here: mode all shows the later one's value, once.
    assert reg.get_sample_value("level_all", {"pid": "1"}) == 7
    text = fp.generate_latest(reg).decode()
    assert text.count('level_all{pid="1"}') == 1
    # The live modes: only this process's own series (made by the Gauge above) remains.
    assert 'level_liveall{pid="1"}' not in text and reg.get_sample_value("level_livesum") == 0


def test_zombies_count_as_dead(tmp_path):
    reg = shared(tmp_path)
    g = fp.Gauge("busy", "B", multiprocess_mode="livesum", registry=reg)
    g.set(1)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import fastprom
        fastprom.Gauge("busy", "B", multiprocess_mode="livesum").set(10)
        print("set", flush=True)
        """)], env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path), FASTPROM_STORE_SIZE=str(SIZE)),
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "set"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # exited but not reaped: a zombie
            with open(f"/proc/{proc.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the child did not become a zombie")
        assert reg.get_sample_value("busy") == 1
    finally:
        proc.wait()


def test_children_cached_before_a_fork_write_the_childs_own_series(tmp_path):
    """As under gunicorn --preload: a child made at import in the master, a
    fork from Python and a fork from C (uWSGI: no Python at-fork hooks)."""
    reg = shared(tmp_path)
    g = fp.Gauge("root", "R", ["path"], multiprocess_mode="all", registry=reg)
    root = g.labels("/")
    root.set(1)
    libc = ctypes.CDLL(None, use_errno=True)
    for fork in (os.fork, libc.fork):
        r, w = os.pipe()
        pid = fork()
        if pid == 0:
            try:
                root.set(2)
                os.write(w, str(os.getpid()).encode())
            finally:
                os._exit(0)
        os.close(w)
        child = int(os.read(r, 32))
        os.close(r)
        os.waitpid(pid, 0)
        assert reg.get_sample_value("root", {"path": "/", "pid": str(child)}) == 2
        assert reg.get_sample_value("root", {"path": "/", "pid": str(os.getpid())}) == 1


def test_a_fork_while_another_thread_opens_the_store_does_not_hang_the_child(tmp_path):
    """A thread opening the store waits on its file lock (held here); the
    process forks meanwhile.  The child opens the store itself once the lock
    is free, and the interpreter kept running while the thread waited."""
    run("import fastprom; fastprom.Counter('boot', 'B').inc()", tmp_path)  # the file exists
    code = f"""
        import fcntl, os, sys, threading, time
        import fastprom
        f = open({str(tmp_path / "fastprom.store")!r}, "rb")
        fcntl.flock(f, fcntl.LOCK_EX)
        t = threading.Thread(target=fastprom.REGISTRY._get_store)
        t.start()
        deadline = time.monotonic() + 10
        while not fastprom.REGISTRY._store_lock.locked() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fastprom.REGISTRY._store_lock.locked()
        ticks = 0
        while ticks < 20:  # the waiting thread does not hold the interpreter
            time.sleep(0.005)
            ticks += 1
        pid = os.fork()
        if pid == 0:
            fastprom.Counter("child", "C").inc()
            os._exit(0)
        time.sleep(0.2)
        fcntl.flock(f, fcntl.LOCK_UN)
        t.join(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.exit("the child hung")
        assert os.waitstatus_to_exitcode(status) == 0, status
        print("ok")
    """
    r = run(code, tmp_path)
    assert r.stdout.strip() == "ok"
    out = run("import fastprom; print(fastprom.generate_latest().decode())", tmp_path)
    assert "child_total 1.0" in out.stdout


def test_creation_refuses_what_a_later_worker_would_refuse(tmp_path):
    reg = shared(tmp_path)
    with pytest.raises(ValueError):
        reg._get_store().add_family(_core.COUNTER, "many", "M", "", tuple(f"l{i}" for i in range(5000)))
    with pytest.raises(ValueError, match="reqs"):
        fp.Counter("reqs\n", "R", registry=reg)
    fp.Counter("nul", "help\x00with a NUL", ["k"], registry=reg).labels("v\x00").inc()
    other = shared(tmp_path)  # a worker started later opens the file
    assert other._get_store().check() is None


@pytest.mark.parametrize("what", ["help", "label text"])
def test_damage_to_what_never_changes_is_found_at_open(tmp_path, what):
    reg = shared(tmp_path)
    c = fp.Counter("seen", "Help text", ["k"], registry=reg)
    c.labels("value").inc()
    reg._get_store()
    path = tmp_path / "fastprom.store"
    data = bytearray(path.read_bytes())
    needle = b"Help text" if what == "help" else b'k="value"'
    at = data.index(needle)
    data[at + 3] ^= 0x20
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "fastprom.store").write_bytes(bytes(data))
    with pytest.raises(fp.StoreFileError, match="checksum|labels"):
        shared(bad)


def _exemplar_quantile_crash_points():
    return ["layout", "layout-done", "family", "attach", "series-published", "series-claimed", "series-linked",
            "exemplar", "removed", "removed-queued", "reuse-popped", "reuse-tombstoned"]


@pytest.mark.skipif(not _core.DEBUG, reason="crash points exist in debug builds only (FASTPROM_DEBUG=1 or the "
                                            "sanitizer build, which run-tests tests too)")
@pytest.mark.parametrize("point", _exemplar_quantile_crash_points())
def test_a_process_killed_at_any_point_loses_nothing_and_breaks_nothing(tmp_path, point):
    # Some counts first, by a process that finishes normally.
    run("""
        import fastprom
        c = fastprom.Counter("kept", "K", ["k"])
        for i in range(50):
            c.labels(str(i % 5)).inc()
        c.labels("gone").inc()
        """, tmp_path)
    # A process that dies at the point: every step of creating, linking,
    # removing and reusing series, writing an exemplar, laying out a file.
    victim = run("""
        import fastprom
        fastprom.freeze_clock(2e9)
        c = fastprom.Counter("kept", "K", ["k"])
        c.labels("0").inc(exemplar={"trace_id": "a"})
        c.remove("gone")
        n = fastprom.Counter("fresh", "F", ["k"])
        for i in range(20):
            n.labels(str(i)).inc()
            n.remove(str(i))
        fastprom.freeze_clock(2e9 + 60)
        for i in range(20):
            n.labels("again" + str(i)).inc()
        """, tmp_path, env={"FASTPROM_CRASH_POINT": point}, check=False)
    fresh_file = point in ("layout", "layout-done")
    if not fresh_file:
        assert victim.returncode == 86, f"the crash point was not reached: {victim.stderr}"
    # Everything recorded before is there, for every later process, and
    # the file passes the full check once the next process opened it.
    r = run("""
        import fastprom
        c = fastprom.Counter("kept", "K", ["k"])
        n = fastprom.Counter("fresh", "F", ["k"])
        store = fastprom.REGISTRY._get_store()
        got = [fastprom.REGISTRY.get_sample_value("kept_total", {"k": str(i)}) for i in range(5)]
        c.labels("0").inc(exemplar={"trace_id": "b"})
        for i in range(5):
            n.labels("after" + str(i)).inc()
        print(got, store.check(), 'trace_id="b"' in fastprom.generate_openmetrics().decode())
        """, tmp_path)
    got, problem, exemplar = r.stdout.strip().rsplit(" ", 2)
    assert problem == "None", r.stdout
    assert exemplar == "True", "no exemplar can be written after the crash"
    if not fresh_file:
        values = [float(v) for v in got.strip("[]").split(",")]
        assert values[0] in (10.0, 11.0) and values[1:] == [10.0] * 4, got  # "0" may have one more


def test_fork_from_c_registers_the_child_before_its_own_series(tmp_path):
    reg = shared(tmp_path)
    g = fp.Gauge("lives", "L", multiprocess_mode="liveall", registry=reg)
    g.set(1)
    libc = ctypes.CDLL(None, use_errno=True)
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = libc.fork()
    if pid == 0:
        try:
            g.set(3)
            os.write(w, b"x")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    try:
        os.read(r, 1)
        assert reg.get_sample_value("lives", {"pid": str(pid)}) == 3  # alive: its own table entry
    finally:
        os.write(go_w, b"x")
        os.waitpid(pid, 0)
    assert reg.get_sample_value("lives", {"pid": str(pid)}) is None
    for fd in (r, w, go_r, go_w):
        os.close(fd)
