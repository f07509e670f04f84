"""End to end: the real Prometheus server scrapes ``python -m fastprom demo``
and its queries see exactly the requests the test sent."""
import contextlib
import os
import subprocess
import sys
import time

import httpx
import pytest

from conftest import need_tool
from servers import free_port, stop, wait_for

JOB = "fastprom-demo"
N = 57
# (path, expected status, handler label, status label); handler "none" is how
# the default Instrumentator groups untemplated paths.
REQUESTS = [
    ("/", 200, "/", "2xx"),
    ("/items/1", 200, "/items/{item_id}", "2xx"),
    ("/items/2", 200, "/items/{item_id}", "2xx"),
    ("/items/-1", 404, "/items/{item_id}", "4xx"),
    ("/nope", 404, "none", "4xx"),
]
# Prometheus' scrapes of /metrics are themselves counted, under this handler.
NOT_METRICS = 'handler!="/metrics"'


def _log(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-4000:]
    except OSError as e:
        return f"<no log: {e}>"


@pytest.fixture
def demo():
    """``python -m fastprom demo`` on a free port; yields (base URL, port)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastprom", "demo", "--host", "127.0.0.1", "--port", str(port)],
        env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(port, proc)
        yield f"http://127.0.0.1:{port}", port
    finally:
        stop(proc)


@contextlib.contextmanager
def run_prometheus(binary, target_port, tmp_path, job, job_extra="", flags=()):
    """A Prometheus server scraping the target every second; yields (base URL, log path)."""
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: {job}\n{job_extra}"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n")
    port = free_port()
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", "--storage.tsdb.retention.time=1h",
             *flags], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, ready = time.monotonic() + 30, False
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited with {proc.returncode}:\n{_log(log)}")
            try:
                ready = httpx.get(f"{base}/-/ready", timeout=2, trust_env=False).status_code == 200
            except httpx.TransportError:
                pass
            if ready or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if not ready:
            pytest.fail(f"prometheus was not ready within 30 s:\n{_log(log)}")
        yield base, log
    finally:
        stop(proc)



@pytest.fixture
def prometheus(demo, tmp_path):
    """The Prometheus server scraping the demo every second; yields (base URL, log path)."""
    _, target_port = demo
    with run_prometheus(need_tool("prometheus"), target_port, tmp_path, JOB) as served:
        yield served


def query(base, promql):
    """An instant query; returns its result vector."""
    r = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=10, trust_env=False)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    assert body["data"]["resultType"] == "vector", body
    return body["data"]["result"]


def scalar(base, promql):
    """The value of a query with at most one series (None when empty)."""
    result = query(base, promql)
    assert len(result) <= 1, (promql, result)
    return float(result[0]["value"][1]) if result else None


def poll(fn, want, timeout=30.0, every=0.5):
    """Calls fn until it returns want (bounded in count and time); returns the last value."""
    deadline = time.monotonic() + timeout
    got = None
    for _ in range(int(timeout / every) + 1):
        got = fn()
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(every)
    return got


def test_prometheus_scrapes_the_demo(demo, prometheus):
    app, _ = demo
    prom, log = prometheus

    # The target is up before any request is sent (the first scrapes see no
    # http_requests_total samples other than /metrics).
    assert poll(lambda: scalar(prom, f'up{{job="{JOB}"}}'), 1.0) == 1.0, _log(log)

    sent = 0
    expected = {}
    with httpx.Client(base_url=app, timeout=10, trust_env=False) as client:
        for i in range(N):
            path, status, handler, group = REQUESTS[i % len(REQUESTS)]
            r = client.get(path)
            assert r.status_code == status, (path, r.status_code, r.text)
            sent += 1
            expected[(handler, group)] = expected.get((handler, group), 0) + 1
    assert sent == N

    total = f"sum(http_requests_total{{job=\"{JOB}\",{NOT_METRICS}}})"
    got = poll(lambda: scalar(prom, total), float(N))
    assert got == float(N), (got, query(prom, f'http_requests_total{{job="{JOB}"}}'), _log(log))

    assert scalar(prom, f'up{{job="{JOB}"}}') == 1.0
    items_ok = sum(1 for i in range(N) if REQUESTS[i % len(REQUESTS)][0] in ("/items/1", "/items/2"))
    assert scalar(prom, 'sum(http_requests_total{handler="/items/{item_id}",status="2xx"})') == items_ok
    series = query(prom, f'http_requests_total{{job="{JOB}",{NOT_METRICS}}}')
    by_label = {(s["metric"]["handler"], s["metric"]["status"]): float(s["value"][1]) for s in series}
    assert by_label == {k: float(v) for k, v in expected.items()}
    assert {s["metric"]["method"] for s in series} == {"GET"}
    assert all(s["metric"]["instance"] == app.removeprefix("http://") for s in series)

    # The histogram agrees with the counter.
    assert scalar(prom, f'sum(http_request_duration_seconds_count{{job="{JOB}",{NOT_METRICS}}})') == N

    # Prometheus negotiated OpenMetrics: fastprom writes _created samples only
    # in OpenMetrics, and Prometheus 2.42 stores them as series; the metadata of
    # a counter is keyed by its OpenMetrics family name (no _total suffix).
    created = query(prom, f'http_request_duration_seconds_created{{job="{JOB}",{NOT_METRICS}}}')
    assert {s["metric"]["handler"] for s in created} == {h for h, _ in expected}
    meta = httpx.get(f"{prom}/api/v1/metadata", params={"metric": "http_requests"}, timeout=10,
                     trust_env=False).json()
    assert meta["status"] == "success", meta
    assert [m["type"] for m in meta["data"].get("http_requests", [])] == ["counter"], meta

    # The scrape itself is healthy: no error, no samples dropped.
    targets = httpx.get(f"{prom}/api/v1/targets", params={"state": "active"}, timeout=10,
                        trust_env=False).json()
    active = [t for t in targets["data"]["activeTargets"] if t["labels"]["job"] == JOB]
    assert len(active) == 1, targets
    assert active[0]["health"] == "up" and active[0]["lastError"] == "", active[0]
    own = httpx.get(f"{prom}/metrics", timeout=10, trust_env=False).text
    dropped = [line for line in own.splitlines()
               if line.startswith("prometheus_target_scrapes_") and not line.endswith(" 0")]
    assert dropped == [], dropped

    # A later scrape does not change the count (nothing is counted twice).
    last = scalar(prom, f'timestamp(up{{job="{JOB}"}})')
    poll(lambda: scalar(prom, f'timestamp(up{{job="{JOB}"}})') > last, True, timeout=10)
    assert scalar(prom, f'timestamp(up{{job="{JOB}"}})') > last
    assert scalar(prom, total) == float(N)
