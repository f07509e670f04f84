"""The text exposition passes Prometheus' own linter, promtool."""
import subprocess

import fastprom as fp
from conftest import need_tool


def rich(registry):
    c = fp.Counter("http_requests", "Requests handled.", ["method", "path"], registry=registry)
    for path in ("/", '/q"uote', "/back\\slash", "/new\nline", "/ünï🙂"):
        c.labels("GET", path).inc(3)
    c.labels("POST", "/").inc(0.5, exemplar={"trace_id": "a"})
    g = fp.Gauge("queue_depth_items", "Items waiting.", ["queue"], registry=registry)
    g.labels("a").set(-4.25)
    g.labels("b").set(float("nan"))
    g.labels("c").set(float("inf"))
    g.labels("d").set(1e300)
    h = fp.Histogram("request_duration_seconds", "Latency.", ["handler"], registry=registry)
    for v in (0.001, 0.2, 0.9, 3, 100):
        h.labels("/items/{id}").observe(v)
    fp.Histogram("payload_bytes", "Sizes.", buckets=[1e3, 1e6, 1e9], registry=registry).observe(5e5)
    fp.Summary("response_size_bytes", "Sizes.", ["handler"], registry=registry).labels("/").observe(123)
    fp.Info("app_build", "Build.", registry=registry).info({"version": "1.2", "commit": "abc"})
    fp.Enum("app_state", "State.", states=["starting", "ready"], registry=registry).state("ready")
    fp.ProcessCollector(registry=registry)
    fp.PlatformCollector(registry=registry)
    fp.GCCollector(registry=registry)


def test_promtool_check_metrics_is_clean(registry):
    promtool = need_tool("promtool")
    rich(registry)
    body = fp.generate_latest(registry)
    assert b"process_cpu_seconds_total" in body and b"app_state" in body
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == b"" and r.stderr == b"", (r.stdout, r.stderr)


def test_promtool_reports_a_broken_exposition():
    """The check above can fail: promtool rejects a malformed body."""
    promtool = need_tool("promtool")
    r = subprocess.run([promtool, "check", "metrics"], input=b"# TYPE x counter\nx{a=\"b} 1\n",
                       capture_output=True, timeout=60)
    assert r.returncode != 0
