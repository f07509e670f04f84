"""``python -m fastprom rules``: the rule file passes ``promtool check rules``,
and ``promtool test rules`` makes each alert fire on synthetic series, and
stay silent on healthy ones, for both naming schemes."""
import json
import subprocess
import sys

import pytest

from conftest import need_tool
from fastprom.monitoring.names import Names
from fastprom.monitoring.rules import Thresholds, render

JOB = {"job": "api"}


def write_rules(tmp_path, *args):
    path = tmp_path / "rules.yml"
    r = subprocess.run([sys.executable, "-m", "fastprom", "rules", "-o", str(path), *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return path


def promtool(*args):
    r = subprocess.run([need_tool("promtool"), *args], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("args", [
    [],
    ["--metric-names", "otel"],
    ["--namespace", "shop", "--subsystem", "api", "--selector", 'job="api", env!="dev"'],
    ["--native-histograms"],
    ["--metric-names", "otel", "--native-histograms", "--rate-window", "1m", "--for", "30s"],
])
def test_promtool_check_rules_passes(tmp_path, args):
    path = write_rules(tmp_path, *args)
    code, out = promtool("check", "rules", str(path))
    assert code == 0, out
    assert "SUCCESS: 25 rules found" in out, out


def sel(labels):
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


class Scheme:
    """Metric and label names of one naming scheme, for the synthetic series."""

    def __init__(self, otel, prefix=""):
        self.otel = otel
        self.p = prefix
        self.route = "http_route" if otel else "handler"

    def requests(self, instance, route, status, values):
        if self.otel:
            name = self.p + "http_server_request_duration_seconds_count"
            labels = {**JOB, "instance": instance, "http_route": route, "http_request_method": "GET",
                      "http_response_status_code": {"2xx": "200", "5xx": "503"}[status], "url_scheme": "http"}
        else:
            name = self.p + "http_requests_total"
            labels = {**JOB, "instance": instance, "handler": route, "method": "GET", "status": status}
        return {"series": name + sel(labels), "values": values}

    def latency(self, instance, route, counts, steps=120):
        """A latency histogram growing by `counts` (bucket bound -> requests) a
        minute.  Under OTel names its _count is the 2xx series of requests()."""
        name = self.p + ("http_server_request_duration_seconds" if self.otel else "http_request_duration_seconds")
        base = {**JOB, "instance": instance, self.route: route}
        if self.otel:
            base.update(http_request_method="GET", http_response_status_code="200", url_scheme="http")
        out = []
        for le, per_minute in counts.items():
            out.append({"series": name + "_bucket" + sel({**base, "le": le}), "values": f"0+{per_minute}x{steps}"})
        if not self.otel:
            out.append({"series": name + "_count" + sel(base), "values": f"0+{counts['+Inf']}x{steps}"})
        return out

    def inprogress(self, instance, values):
        name = self.p + "http_server_active_requests" if self.otel else "http_requests_inprogress"
        labels = {**JOB, "instance": instance}
        if self.otel:
            labels.update(http_request_method="GET", url_scheme="http")
        return {"series": name + sel(labels), "values": values}

    def buckets(self, fast, slow):
        """Bucket increases with `fast` requests under 0.1 s and `slow` over 1 s."""
        total = fast + slow
        if self.otel:
            bounds = ["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0",
                      "7.5", "10.0"]
            out = {b: (0 if float(b) < 0.1 else fast) for b in bounds}
            out.update({b: fast for b in ("0.1", "0.25", "0.5", "0.75", "1.0")})
            out.update({b: total for b in ("2.5", "5.0", "7.5", "10.0")})
        else:
            out = {"0.1": fast, "0.5": fast, "1.0": fast}
        out["+Inf"] = total
        return out


ALERTS = ["FastpromHighErrorRate", "FastpromHighLatency", "FastpromAvailabilityBudgetBurnFast",
          "FastpromAvailabilityBudgetBurnSlow", "FastpromLatencyBudgetBurnFast", "FastpromLatencyBudgetBurnSlow",
          "FastpromTargetDown", "FastpromFrequentRestarts", "FastpromRequestsInProgressSaturated",
          "FastpromStoreOverflow"]


def healthy(s):
    """Two instances, no errors, fast requests, nothing wrong."""
    series = []
    for inst in ("a:1", "b:1"):
        series.append(s.requests(inst, "/items/{id}", "2xx", "0+600x120"))
        series.append(s.requests(inst, "/items/{id}", "5xx", "0+0x120"))
        series += s.latency(inst, "/items/{id}", s.buckets(600, 0))
        series.append({"series": "up" + sel({**JOB, "instance": inst}), "values": "1x120"})
        series.append({"series": "process_start_time_seconds" + sel({**JOB, "instance": inst}),
                       "values": "1000x120"})
        series.append(s.inprogress(inst, "3x120"))
        series.append({"series": "fastprom_store_overflow_total" + sel({**JOB, "instance": inst}),
                       "values": "0x120"})
    return series


def alert(name, at, labels, severity, annotations):
    return {"eval_time": at, "alertname": name,
            "exp_alerts": [{"exp_labels": {**labels, "severity": severity}, "exp_annotations": annotations}]}


def silent(name, at):
    return {"eval_time": at, "alertname": name, "exp_alerts": []}


def unit_tests(s):
    """promtool unit tests for the default thresholds (Thresholds())."""
    r = s.route
    route = "/items/{id}"
    tests = []
    # 1. Healthy: every alert silent, and the recording rules add up instances.
    tests.append({"interval": "1m", "input_series": healthy(s),
                  "alert_rule_test": [silent(a, "90m") for a in ALERTS],
                  "promql_expr_test": [
                      {"expr": s.p_rule("job_" + r, "http_requests", "rate5m"), "eval_time": "10m",
                       "exp_samples": [{"labels": s.p_rule("job_" + r, "http_requests", "rate5m") +
                                        sel({**JOB, r: route}), "value": 20}]},
                      {"expr": s.p_rule("job", "http_requests", "error_ratio_rate5m"), "eval_time": "10m",
                       "exp_samples": [{"labels": s.p_rule("job", "http_requests", "error_ratio_rate5m") + sel(JOB),
                                        "value": 0}]},
                      {"expr": "job_instance:process:uptime_seconds", "eval_time": "10m",
                       "exp_samples": [{"labels": "job_instance:process:uptime_seconds" +
                                        sel({**JOB, "instance": i}), "value": 600 - 1000} for i in ("a:1", "b:1")]},
                  ]})
    # 2. 10% errors on one of two instances (5% of the job): the per-handler
    # ratio is 5.x%: the error-rate alert and both availability burns fire.
    series = healthy(s)
    series = [x for x in series if not (x["series"].startswith(s.requests("a:1", route, "5xx", "")["series"]))]
    series.append(s.requests("a:1", route, "5xx", "0+70x120"))
    desc = "5xx ratio over {} and {} exceeds {} times the budget of a 99.9% availability objective."
    tests.append({"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("FastpromHighErrorRate", "20m", {**JOB, r: route}, "warning", {
            "summary": f"High HTTP error rate on api {route}",
            "description": f"5.512% of requests to {route} answered 5xx over 5m (threshold 5%)."}),
        alert("FastpromAvailabilityBudgetBurnFast", "20m", JOB, "critical", {
            "summary": "api burns its availability error budget 14.4x too fast",
            "description": desc.format("1h", "5m", "14.4")}),
        alert("FastpromAvailabilityBudgetBurnSlow", "40m", JOB, "warning", {
            "summary": "api burns its availability error budget 6x too fast",
            "description": desc.format("6h", "30m", "6")}),
        silent("FastpromHighLatency", "20m"),
        silent("FastpromLatencyBudgetBurnFast", "20m"),
    ]})
    # 3. 1% errors: above the slow burn's 0.6%, below the fast burn's 1.44%
    # and the error-rate threshold.
    series = [x for x in healthy(s) if "5xx" not in x["series"] and "503" not in x["series"]]
    for inst in ("a:1", "b:1"):
        series.append(s.requests(inst, route, "5xx", "0+6x120"))
    tests.append({"interval": "1m", "input_series": series, "alert_rule_test": [
        silent("FastpromHighErrorRate", "60m"),
        silent("FastpromAvailabilityBudgetBurnFast", "60m"),
        alert("FastpromAvailabilityBudgetBurnSlow", "60m", JOB, "warning", {
            "summary": "api burns its availability error budget 6x too fast",
            "description": desc.format("6h", "30m", "6")}),
    ]})
    # 4. Slow requests: 20% over 1 s on both instances.
    series = [x for x in healthy(s) if "_bucket" not in x["series"]
              and not ("_count" in x["series"] and not s.otel)]
    for inst in ("a:1", "b:1"):
        series += s.latency(inst, route, s.buckets(480, 120))
    ldesc = ("The share of requests slower than 0.5 s over {} and {} exceeds {} times the budget of a 99% "
             "latency objective.")
    tests.append({"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("FastpromHighLatency", "20m", {**JOB, r: route}, "warning", {
            "summary": f"High p99 latency on api {route}",
            "description": f"p99 latency of {route} is {'2.425s' if s.otel else '1s'} over 5m (threshold 0.5 s)."}),
        alert("FastpromLatencyBudgetBurnFast", "20m", JOB, "critical", {
            "summary": "api burns its latency error budget 14.4x too fast",
            "description": ldesc.format("1h", "5m", "14.4")}),
        alert("FastpromLatencyBudgetBurnSlow", "40m", JOB, "warning", {
            "summary": "api burns its latency error budget 6x too fast",
            "description": ldesc.format("6h", "30m", "6")}),
        silent("FastpromHighErrorRate", "20m"),
    ]})
    # 5. Target down, restarts, saturation, store overflow on instance b.
    b = {**JOB, "instance": "b:1"}
    series = [x for x in healthy(s) if 'instance="b:1"' not in x["series"] or "_bucket" in x["series"]
              or "_count" in x["series"] or "http_requests_total" in x["series"]]
    series += [
        {"series": "up" + sel(b), "values": "1x10 0x20"},
        {"series": "process_start_time_seconds" + sel(b), "values": "1000x2 1300x2 1600x2 1900x2 2200x20"},
        s.inprogress("b:1", "3x5 150x20"),
        {"series": "fastprom_store_overflow_total" + sel(b), "values": "0x5 0+7x5 35x20"},
    ]
    tests.append({"interval": "1m", "input_series": series, "alert_rule_test": [
        silent("FastpromTargetDown", "11m"),
        alert("FastpromTargetDown", "12m", b, "critical", {
            "summary": "api target b:1 is down",
            "description": "Prometheus could not scrape b:1 for a minute."}),
        silent("FastpromFrequentRestarts", "10m"),
        alert("FastpromFrequentRestarts", "14m", b, "warning", {
            "summary": "api b:1 restarts often", "description": "4 process restarts in the last hour."}),
        silent("FastpromRequestsInProgressSaturated", "8m"),
        alert("FastpromRequestsInProgressSaturated", "12m", b, "warning", {
            "summary": "api b:1 has many requests in progress",
            "description": "150 requests in progress (threshold 100.0)."}),
        silent("FastpromStoreOverflow", "5m"),
        alert("FastpromStoreOverflow", "8m", b, "warning", {
            "summary": "fastprom's metric store is full on api b:1",
            "description": "New label sets are counted under the fastprom_overflow series; raise "
                           "FASTPROM_STORE_SIZE or store_size=, or bound the labels."}),
        silent("FastpromStoreOverflow", "30m"),
    ]})
    return tests


def p_rule(self, level, metric, op):
    return f"{level}:{self.p}{metric}:{op}"


Scheme.p_rule = p_rule


@pytest.mark.parametrize("otel", [False, True], ids=["pfi", "otel"])
def test_promtool_unit_tests_fire_and_stay_silent(tmp_path, otel):
    args = ["--metric-names", "otel"] if otel else []
    rules = write_rules(tmp_path, *args)
    s = Scheme(otel)
    test_file = tmp_path / "tests.yml"
    # JSON is YAML: promtool reads it as it is.
    test_file.write_text(json.dumps({"rule_files": [str(rules)], "evaluation_interval": "1m",
                                     "tests": unit_tests(s)}, indent=1))
    code, out = promtool("test", "rules", str(test_file))
    assert code == 0, out
    assert "SUCCESS" in out, out


def test_the_unit_tests_can_fail(tmp_path):
    """A stricter threshold than the test expects makes promtool fail: the
    tests above do check the alerts."""
    rules = write_rules(tmp_path, "--error-ratio", "0.5")
    test_file = tmp_path / "tests.yml"
    test_file.write_text(json.dumps({"rule_files": [str(rules)], "evaluation_interval": "1m",
                                     "tests": unit_tests(Scheme(False))[1:2]}))
    code, out = promtool("test", "rules", str(test_file))
    assert code != 0 and "FastpromHighErrorRate" in out, out


def test_namespace_subsystem_and_selector_reach_every_series():
    text = render(Names(namespace="shop", subsystem="api", selector='job="api"'), Thresholds())
    assert "shop_api_http_requests_total{job=\"api\"" in text.replace('\\"', '"')
    assert "http_requests_total{" not in text.replace("shop_api_http_requests_total", "")
    otel = render(Names(metric_names="otel", namespace="shop"), Thresholds())
    assert "shop_http_server_request_duration_seconds_bucket" in otel and "http_route" in otel
    assert "http_requests_total" not in otel


@pytest.mark.parametrize("args, message", [
    (["--error-ratio", "5"], "error-ratio must be between 0 and 1"),
    (["--rate-window", "5 minutes"], "rate-window must be a Prometheus duration"),
    (["--selector", "job=api"], "the selector must be comma-separated label matchers"),
    (["--namespace", "my-app"], "the namespace must be made of letters"),
    (["--latency-p99", "-1"], "latency-p99 must be positive"),
])
def test_bad_options_are_refused_with_the_reason(args, message):
    r = subprocess.run([sys.executable, "-m", "fastprom", "rules", *args], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_dashboard_command_writes_a_json_model(tmp_path):
    out = tmp_path / "dashboard.json"
    r = subprocess.run([sys.executable, "-m", "fastprom", "dashboard", "--metric-names", "otel", "--namespace", "shop",
                        "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    model = json.loads(out.read_text())
    assert [v["name"] for v in model["templating"]["list"]] == ["datasource", "job", "instance", "route"]
    exprs = [t["expr"] for p in model["panels"] for t in p["targets"]]
    assert len(model["panels"]) == 10 and all(exprs)
    assert any("shop_http_server_request_duration_seconds_bucket" in e for e in exprs)
    assert {p["type"] for p in model["panels"]} == {"timeseries", "heatmap", "stat"}
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in model["panels"])


def test_cli_usage_and_bad_dashboard_options():
    r = subprocess.run([sys.executable, "-m", "fastprom"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "python -m fastprom rules" in r.stderr
    r = subprocess.run([sys.executable, "-m", "fastprom", "dashboard", "--selector", "job"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "the selector must be" in r.stderr, r.stderr
