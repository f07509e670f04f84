"""gunicorn with four uvicorn workers on one shared store, under traffic that
makes new series: workers booting while others create series, and workers
recycled by --max-requests while requests run.  Every server started here is
stopped; every load loop is bounded in count and in time."""
import contextlib
import re
import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families as parse_text

import fastprom as fp
from servers import children, uvicorn_server

WORKERS = 4
# Each distinct unmatched path is a handler series of its own.
OPTS = {"should_group_untemplated": False}
# Info level, so the log has each worker's boot; no control socket, whose
# default path is shared by every gunicorn on the machine.
ARGS = ["--log-level", "info", "--no-control-socket"]
BAD = ("StoreFileError", "is corrupt", "Worker failed to boot", "App failed to load", "Traceback")
STARTED = re.compile(r"\[(\d+)\] \[INFO\] Application startup complete")
BOOTING = re.compile(r"Booting worker with pid: (\d+)")


@contextlib.contextmanager
def gunicorn(directory, extra_args=()):
    """Serves the instrumented app on the store in directory; yields (base URL,
    output lines so far).  The output is read as it comes, so the pipe never
    fills; after the block the server is stopped and every line is in."""
    lines = []
    reader = None
    try:
        with uvicorn_server(server="gunicorn", workers=WORKERS, opts=OPTS, extra_args=[*ARGS, *extra_args],
                            env={"PROMETHEUS_MULTIPROC_DIR": str(directory)}) as base:
            reader = threading.Thread(target=lambda: lines.extend(ln.decode(errors="replace") for ln in base.proc.stdout),
                                      daemon=True)
            reader.start()
            yield base, lines
    finally:
        if reader is not None:
            reader.join(30)


def bad_lines(lines):
    return [ln for ln in lines if any(b in ln for b in BAD)]


def scrape(base):
    r = httpx.get(base + "/metrics", headers={"connection": "close"}, timeout=30)
    r.raise_for_status()
    return [s for fam in parse_text(r.text) for s in fam.samples]


def app_requests(samples, prefix=""):
    """sum(http_requests_total) over handlers other than /metrics (starting with prefix)."""
    return sum(s.value for s in samples if s.name == "http_requests_total" and s.labels["handler"] != "/metrics"
               and s.labels["handler"].startswith(prefix))


def store_check(directory):
    """The full consistency check of the store file, opened from this process."""
    reg = fp.CollectorRegistry()
    reg._open_store(str(directory))
    return reg._get_store().check()


class Load(threading.Thread):
    """Sends GETs of paths(i) on fresh connections until stopped, or n sent, or
    the deadline; counts answers and keeps each failure's reason."""

    def __init__(self, base, paths, n, seconds):
        super().__init__(daemon=True)
        self.base, self.paths, self.n, self.seconds = base, paths, n, seconds
        self.ok = 0
        self.failures = []
        self.stopping = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.seconds
        with httpx.Client(timeout=30) as c:
            for i in range(self.n):
                if self.stopping.is_set() or time.monotonic() > deadline:
                    break
                path, status = self.paths(i)
                try:
                    r = c.get(self.base + path, headers={"connection": "close"})
                except httpx.TransportError as e:
                    self.failures.append(f"{path}: {e!r}")
                    continue
                if r.status_code == status:
                    self.ok += 1
                else:
                    self.failures.append(f"{path}: status {r.status_code}: {r.text[:200]}")


def boot_once(directory, run):
    """One server start with series made from the first accepted connection;
    returns the list of what went wrong (empty when all is well)."""
    problems = []
    with gunicorn(directory) as (base, lines):
        master = base.proc.pid
        load = Load(base, lambda i: (f"/boot{run}/{i}", 404), n=3000, seconds=30)
        load.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and base.proc.poll() is None:
                if len({m.group(1) for m in map(STARTED.search, list(lines)) if m}) >= WORKERS:
                    break
                time.sleep(0.05)
            # A few more requests once every worker is up, then stop.
            after = load.ok + len(load.failures) + 50
            deadline = time.monotonic() + 10
            while load.is_alive() and load.ok + len(load.failures) < after and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            load.stopping.set()
            load.join(60)
        if base.proc.poll() is not None:
            problems.append(f"the master exited with {base.proc.returncode}")
        else:
            workers = set(children(master))
            booted = {int(m.group(1)) for m in map(BOOTING.search, list(lines)) if m}
            started = {int(m.group(1)) for m in map(STARTED.search, list(lines)) if m}
            if len(workers) != WORKERS or booted != workers or started != workers:
                problems.append(f"workers {sorted(workers)}, booted {sorted(booted)}, started {sorted(started)}")
            samples = scrape(base)
            attached = {int(s.labels["pid"]) for s in samples if s.name == "process_cpu_seconds_total"}
            if not workers <= attached:
                problems.append(f"workers {sorted(workers)} but the store knows {sorted(attached)}")
            counted = app_requests(samples, f"/boot{run}/")
            if counted != load.ok:
                problems.append(f"{load.ok} requests answered, {counted} counted")
        if load.failures:
            problems.append(f"{len(load.failures)} requests failed: {load.failures[:5]}")
        if load.ok == 0:
            problems.append("no request was answered: the run proves nothing")
    problems += [f"output: {ln.strip()}" for ln in bad_lines(lines)]
    check = store_check(directory)
    if check is not None:
        problems.append(f"Store.check(): {check}")
    return problems


def test_four_workers_boot_while_traffic_creates_series(tmp_path):
    runs = 20
    failed = {}
    for run in range(runs):
        directory = tmp_path / f"run{run}"
        directory.mkdir()
        problems = boot_once(directory, run)
        if problems:
            failed[run] = problems
    assert runs - len(failed) == runs, f"{runs - len(failed)} of {runs} runs succeeded; failures: {failed}"


def test_workers_recycled_under_traffic_lose_nothing(tmp_path):
    seen = set()
    with gunicorn(tmp_path, ["--max-requests", "40", "--max-requests-jitter", "10"]) as (base, lines):
        master = base.proc.pid
        watching = threading.Event()

        def watch():
            deadline = time.monotonic() + 120
            while not watching.is_set() and time.monotonic() < deadline:
                seen.update(children(master))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # Three clients, 200 requests each: half of them new series, half
        # the same templated route again.
        loads = [Load(base, lambda i, t=t: (f"/recycle/{t}/{i}", 404) if i % 2 else ("/items/1", 200),
                      n=200, seconds=90) for t in range(3)]
        try:
            for load in loads:
                load.start()
            for load in loads:
                load.join(120)
        finally:
            for load in loads:
                load.stopping.set()
            watching.set()
            watcher.join(10)
        sent = sum(load.ok + len(load.failures) for load in loads)
        ok = sum(load.ok for load in loads)
        failures = [f for load in loads for f in load.failures]
        assert base.proc.poll() is None, "the master exited"
        assert sent == 600, f"the load loops stopped early at {sent} requests"
        assert not [f for f in failures if "ConnectError" in f], failures  # no refusal: the master holds the socket
        counted = app_requests(scrape(base))
        booted = {int(m.group(1)) for m in map(BOOTING.search, list(lines)) if m}
    seen |= booted
    replacements = len(seen) - WORKERS
    print(f"{sent} requests, {ok} answered, {counted} counted, {replacements} worker replacements")
    assert counted == ok
    # 600 requests to workers that each retire after 40 to 50 (plus the few
    # a worker takes between its checks of the limit).
    assert replacements >= 3, f"only {replacements} workers were replaced: the test proves little"
    assert not bad_lines(lines), bad_lines(lines)
    unexpected = [ln for ln in lines if "exited with code" in ln or "SIGKILL" in ln]
    assert not unexpected, unexpected
    assert store_check(tmp_path) is None
    # A retiring uvicorn worker closes connections it has accepted but not
    # read a request from yet (a bare ASGI app without fastprom loses a few
    # per 600 the same way): such a request never reached the app, and the
    # exact count above shows fastprom counted none of them.  Anything else
    # (an error response, a timeout) would be a failure.
    dropped = ("Connection reset by peer", "Server disconnected without sending a response")
    assert all(any(d in f for d in dropped) for f in failures), failures
    assert len(failures) < sent // 20, f"{len(failures)} of {sent} requests failed: {failures[:10]}"
