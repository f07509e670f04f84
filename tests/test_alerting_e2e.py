"""End to end on real servers: an app whose error rate the test sets, the
Prometheus server (Debian's 2.42) evaluating ``python -m fastprom rules``
every second, and Alertmanager (Debian's prometheus-alertmanager) sending to
a webhook served by this test.  The error-rate alert reaches the webhook
with the right labels and is resolved after the errors stop; every query of
the dashboard parses and returns samples; the ui page in headless Chromium
shows the routes with their counts."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from conftest import need_tool
from fastprom.monitoring.dashboard import dashboard
from fastprom.monitoring.names import Names
from servers import free_port, stop, uvicorn_server
from test_prometheus_server import _log

JOB = "alerting"
HERE = os.path.dirname(os.path.abspath(__file__))


class Webhook:
    """An HTTP server on 127.0.0.1 keeping every JSON body posted to it."""

    def __init__(self):
        self.bodies = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def notified(self, status, alertname):
        """The alerts of that name and status received so far."""
        return [a for b in list(self.bodies) for a in b["alerts"]
                if a["status"] == status and a["labels"].get("alertname") == alertname]


def _plain_env():
    """The environment without the sanitizer runtime the ASan run preloads:
    it is for the extension, not for the servers and the browser."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def _start(cmd, log, ready_url, what):
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_plain_env())
    deadline = time.monotonic() + 30
    for _ in range(300):
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{_log(log)}")
        try:
            if httpx.get(ready_url, timeout=2, trust_env=False).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    stop(proc)
    pytest.fail(f"{what} was not ready within 30 s:\n{_log(log)}")


@pytest.fixture(params=[("prometheus-fastapi-instrumentator", 2), ("otel", 2), ("prometheus-fastapi-instrumentator", 3)],
                ids=["pfi-prometheus2", "otel-prometheus2", "pfi-prometheus3"])
def stack(tmp_path, request):
    """The app (with either naming scheme), Alertmanager with the webhook,
    and Prometheus (Debian's 2.42, or 3.x) with the rules for that scheme."""
    metric_names, major = request.param
    if major == 3:
        from test_scrape_protocols import prometheus3_binary

        prometheus = prometheus3_binary()
    else:
        prometheus = need_tool("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or need_tool("alertmanager")
    hook = Webhook()
    procs = []
    try:
        with uvicorn_server(app="alerting:create_app", env={"FASTPROM_TEST_METRIC_NAMES": metric_names}) as app:
            am_port = free_port()
            (tmp_path / "alertmanager.yml").write_text(
                "route:\n  receiver: hook\n  group_by: [alertname, job, handler, http_route]\n"
                "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
                f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: {hook.url}\n"
                "        send_resolved: true\n")
            procs.append(_start(
                [alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}",
                 f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                 "--cluster.listen-address=", "--log.level=warn"],
                tmp_path / "alertmanager.log", f"http://127.0.0.1:{am_port}/-/ready", "alertmanager"))
            rules = tmp_path / "rules.yml"
            subprocess.run([sys.executable, "-m", "fastprom", "rules", "--selector", f'job="{JOB}"',
                            "--metric-names", metric_names,
                            "--rate-window", "10s", "--for", "2s", "-o", str(rules)], check=True, timeout=60)
            (tmp_path / "prometheus.yml").write_text(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                f"rule_files: ['{rules}']\n"
                f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"
                f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
                f"      - targets: ['{app.removeprefix('http://')}']\n")
            prom_port = free_port()
            procs.append(_start(
                [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'prom-data'}", f"--web.listen-address=127.0.0.1:{prom_port}",
                 "--log.level=warn", "--storage.tsdb.retention.time=1h"],
                tmp_path / "prometheus.log", f"http://127.0.0.1:{prom_port}/-/ready", "prometheus"))
            yield app, f"http://127.0.0.1:{prom_port}", hook, tmp_path, Names(metric_names=metric_names,
                                                                              selector=f'job="{JOB}"')
    finally:
        for p in reversed(procs):
            stop(p)
        hook.close()


def query(prom, promql):
    r = httpx.get(f"{prom}/api/v1/query", params={"query": promql}, timeout=10, trust_env=False)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (promql, body)
    return body["data"]["result"]


def drive(client, fail_every, until, timeout):
    """Sends batches of 10 requests (every fail_every-th one failing, 0: none)
    until until() is true; bounded in time and count.  Returns the count sent."""
    sent = 0
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.2) + 1):
        for i in range(10):
            fail = 1 if fail_every and i % fail_every == 0 else 0
            client.get("/work", params={"fail": fail})
            sent += 1
        if until() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return sent


def test_error_rate_alert_fires_and_resolves(stack):
    app, prom, hook, tmp, n = stack
    name = "FastpromHighErrorRate"
    route = n.handler
    with httpx.Client(base_url=app, timeout=10, trust_env=False) as c:
        # Healthy traffic first: nothing is sent to the webhook.
        drive(c, 0, lambda: bool(query(prom, f'job_{route}:http_requests:rate10s{{{route}="/work"}}')), 30)
        assert hook.notified("firing", name) == []
        # Half the requests fail: the alert reaches the webhook.
        drive(c, 2, lambda: bool(hook.notified("firing", name)), 60)
        firing = hook.notified("firing", name)
        assert firing, (hook.bodies, _log(tmp / "prometheus.log"), _log(tmp / "alertmanager.log"))
        labels = firing[0]["labels"]
        assert labels == {"alertname": name, "job": JOB, route: "/work", "severity": "warning"}, labels
        assert "answered 5xx" in firing[0]["annotations"]["description"]
        # The errors stop: the alert is resolved.
        drive(c, 0, lambda: bool(hook.notified("resolved", name)), 60)
        resolved = hook.notified("resolved", name)
        assert resolved and resolved[0]["labels"] == labels, hook.bodies

        # Every dashboard query parses and has samples (the request count grew
        # beyond one scrape's worth, so every rate has two points).
        c.get("/items/1")
        model = dashboard(n)
        empty = []
        for panel in model["panels"]:
            for target in panel["targets"]:
                expr = (target["expr"].replace("$__rate_interval", "15s").replace("$job", JOB)
                        .replace("$instance", ".*").replace("$route", ".*"))
                if not query(prom, expr):
                    empty.append((panel["title"], expr))
        assert empty == [], empty
        # The page's quantiles are Prometheus' histogram_quantile of the same buckets.
        ui = c.get("/metrics/ui.json").json()
        work = next(r for r in ui["routes"] if r["route"] == "/work")
        count = f'sum({n.duration}_count{{job="{JOB}", {route}="/work"}})'
        for _ in range(100):
            got = query(prom, count)
            if got and float(got[0]["value"][1]) == work["count"]:
                break
            time.sleep(0.2)
        assert float(query(prom, count)[0]["value"][1]) == work["count"]
        for q, key in ((0.5, "p50"), (0.99, "p99")):
            expr = f'histogram_quantile({q}, sum by (le) ({n.duration}_bucket{{job="{JOB}", {route}="/work"}}))'
            assert float(query(prom, expr)[0]["value"][1]) == pytest.approx(work[key], rel=1e-9), (q, work)
        for var in model["templating"]["list"][1:]:
            m = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"]["query"])
            assert m, var
            series = query(prom, m.group(1).replace("$job", JOB))
            assert series and all(m.group(2) in s["metric"] for s in series), var


def test_ui_page_in_chromium_shows_routes_and_counts(tmp_path):
    chromium = shutil.which("chromium") or need_tool("chromium")
    with uvicorn_server(app="alerting:create_app") as app:
        with httpx.Client(base_url=app, timeout=10, trust_env=False) as c:
            for i in range(7):
                assert c.get(f"/items/{i}").status_code == 200
            for i in range(4):
                c.get("/work", params={"fail": i % 2})
            html = c.get("/metrics/ui")
            assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
            # Self-contained: nothing is loaded from elsewhere.
            assert not re.search(r"(src|href)=\"(https?:)?//|@import|url\(", html.text), html.text
        base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
        r = subprocess.run(base + ["--dump-dom", f"{app}/metrics/ui"], capture_output=True, text=True, timeout=120,
                           env=_plain_env())
        assert r.returncode == 0, r.stderr[-2000:]
        rows = {}
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", r.stdout):
            cells = re.findall(r"<td>(.*?)</td>", tr)
            if cells:
                rows[cells[0]] = cells
        assert rows["/items/{item_id}"][1] == "7", rows
        assert rows["/work"][1] == "4" and rows["/work"][3] == "50.00%", rows
        shot = os.environ.get("FASTPROM_UI_SCREENSHOT") or str(tmp_path / "ui.png")
        r = subprocess.run(base + ["--window-size=900,380", f"--screenshot={shot}", f"{app}/metrics/ui"],
                           capture_output=True, text=True, timeout=120, env=_plain_env())
        assert r.returncode == 0 and os.path.getsize(shot) > 1000, r.stderr[-2000:]
