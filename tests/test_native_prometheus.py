"""Prometheus 3 scrapes native histograms over protobuf: 100,000 known
log-normal values, observed by two processes into one shared store, answer
histogram_quantile within the bucket factor's bound of the exact quantile."""
import multiprocessing
import os
import random
import sys
import time

import httpx

from servers import uvicorn_server
from test_prometheus_server import _log, poll, query, run_prometheus, scalar
from test_scrape_protocols import JOB, PROTOCOLS_NATIVE, prometheus3_binary

N = 100_000
FACTOR = 1.1


def _observe(directory, values, barrier):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))
    import native_store

    barrier.wait()
    for v in values:
        native_store.LATENCY.observe(v)


def test_prometheus3_quantiles_of_a_native_histogram_from_two_processes(tmp_path):
    binary = prometheus3_binary()
    rnd = random.Random(2024)
    values = [rnd.lognormvariate(-3, 1) for _ in range(N)]
    store = tmp_path / "store"
    store.mkdir()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_observe, args=(str(store), part, barrier)) for part in (values[::2], values[1::2])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    exact = sorted(values)
    with uvicorn_server(app="native_store:create_app", env={"PROMETHEUS_MULTIPROC_DIR": str(store)}) as app:
        port = int(app.rsplit(":", 1)[1])
        job = f"    scrape_protocols: {PROTOCOLS_NATIVE}\n"
        with run_prometheus(binary, port, tmp_path, JOB, job, ("--enable-feature=native-histograms",)) as (prom, log):
            assert poll(lambda: scalar(prom, f'up{{job="{JOB}"}}'), 1.0) == 1.0, _log(log)
            count = poll(lambda: scalar(prom, "histogram_count(native_latency_seconds)"), float(N))
            assert count == N, _log(log)
            total = scalar(prom, "histogram_sum(native_latency_seconds)")
            assert abs(total - sum(values)) <= 1e-9 * sum(values)
            for q in (0.5, 0.9, 0.99):
                est = scalar(prom, f"histogram_quantile({q}, native_latency_seconds)")
                # The true quantile and the estimate share a bucket, whose bounds differ by at most the factor.
                want = exact[int(q * (N - 1))]
                print(f"histogram_quantile({q}): {est:.6g}, exact {want:.6g}, ratio {est / want:.4f}")
                assert want / FACTOR <= est <= want * FACTOR, (q, est, want)
            # Native, not classic: one native series, and no scrape errors.
            (series,) = query(prom, "native_latency_seconds")
            assert "histogram" in series, series
            targets = httpx.get(f"{prom}/api/v1/targets", timeout=10, trust_env=False).json()["data"]["activeTargets"]
            assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")], targets
