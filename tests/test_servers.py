"""The ASGI servers our users run, each a real server on 127.0.0.1 serving
the instrumented app: uvicorn (also --reload, as the users' guide runs it),
gunicorn with the uvicorn-worker package, granian's ASGI interface and
hypercorn.  Where the server has workers, two of them share one store and
every scrape must report the exact number of requests made.  Every server
started here is stopped; every load loop is bounded in count and in time."""
import importlib.util
import sysconfig
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from servers import uvicorn_server

REQUESTS = 60


def scrape(base):
    r = httpx.get(base + "/metrics", headers={"connection": "close"}, timeout=30)
    assert r.status_code == 200
    return [s for fam in parse_text(r.text) for s in fam.samples]


def pid_requests(samples):
    return sum(s.value for s in samples if s.name == "http_requests_total" and s.labels["handler"] == "/pid")


def pid_latency_count(samples):
    return sum(s.value for s in samples
               if s.name == "http_request_duration_seconds_count" and s.labels["handler"] == "/pid")


def traffic(base, workers, threads=False):
    """Sends requests to /pid, on fresh connections so that any worker may
    take each, until there are REQUESTS and every worker has answered (or
    60 s have passed); returns (requests made, workers seen): pids, or with
    ``threads`` (workers that are threads of one process) (pid, thread)."""
    n, pids = 0, set()
    deadline = time.monotonic() + 60
    with httpx.Client(headers={"connection": "close"}, timeout=30) as client:
        while (n < REQUESTS or len(pids) < workers) and n < 10 * REQUESTS and time.monotonic() < deadline:
            r = client.get(base + "/pid")
            assert r.status_code == 200
            answer = r.json()
            pids.add((answer["pid"], answer["thread"]) if threads else answer["pid"])
            n += 1
    return n, pids


def check_exact(base, workers, threads=False):
    n, pids = traffic(base, workers, threads)
    assert len(pids) == workers, f"requests were not spread over {workers} workers: {pids}"
    for _ in range(5):
        s = scrape(base)
        assert pid_requests(s) == n
        assert pid_latency_count(s) == n


SERVERS = [
    ("uvicorn", 1, []),
    ("uvicorn", 1, ["--reload"]),
    ("uvicorn", 2, []),
    ("gunicorn", 2, []),
    ("granian", 1, []),
    ("granian", 2, []),
    ("hypercorn", 1, []),
    ("hypercorn", 2, []),
]


@pytest.mark.parametrize("server,workers,args", SERVERS,
                         ids=[f"{s}-{w}w{''.join(a)}" for s, w, a in SERVERS])
def test_exact_counts_under_each_server(tmp_path, server, workers, args):
    module = {"gunicorn": "uvicorn_worker"}.get(server, server)
    if sysconfig.get_config_var("Py_GIL_DISABLED") and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} has no free-threaded build to install")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)} if workers > 1 else {}
    if "--reload" in args:
        # The reloader watches the app's folder; a file changed under it
        # while the test runs would restart the app and its counts.
        args = [*args, "--reload-dir", str(tmp_path)]
    # On free-threaded CPython granian's workers are threads of one process
    # (its log says "Spawning worker-1 with TID"), all on one store.
    threads = server == "granian" and bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    with uvicorn_server(server=server, workers=workers, env=env, extra_args=args) as base:
        check_exact(base, workers, threads)
