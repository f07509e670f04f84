"""``python -m fastprom rules``: a Prometheus rule file (recording rules and
alerts) for the HTTP metrics fastprom records.

Every rule aggregates with ``sum by (job, ...)`` (or ``by (job, instance)``
for per-process alerts), so instances and worker processes of one app are
added up and one Prometheus watching many replicas needs no change.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence

from .names import Names

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")

#: The windows of the multi-window burn-rate alerts, as the SRE workbook sets
#: them: (long window, short window, burn rate factor, severity, for).
BURN_WINDOWS = (("1h", "5m", 14.4, "critical", "2m"), ("6h", "30m", 6.0, "warning", "15m"))


@dataclass
class Thresholds:
    """What the alerts compare with; the defaults suit a typical web API."""

    error_ratio: float = 0.05          #: 5xx share of requests that alerts (high error rate)
    #: seconds; the p99 per handler that alerts (high latency).  Below the
    #: largest finite bucket bound: prometheus-fastapi-instrumentator's
    #: per-handler histogram ends at 1 s, so its p99 never exceeds 1.
    latency_p99: float = 0.5
    availability_slo: float = 0.999    #: share of requests that must not be 5xx
    latency_slo: float = 0.99          #: share of requests that must be faster than latency_threshold
    latency_threshold: float = 0.5     #: seconds; must be a bucket bound of the latency histogram
    inprogress_max: float = 100.0      #: requests in progress per instance that alerts
    restarts: int = 3                  #: process restarts in an hour that alert
    rate_window: str = "5m"            #: window of the rate, ratio and quantile rules
    alert_for: str = "5m"              #: how long a threshold alert's condition must hold
    quantiles: Sequence[float] = field(default=(0.5, 0.9, 0.99))

    def check(self) -> None:
        """Raises ValueError naming the first bad setting."""
        for name in ("error_ratio", "availability_slo", "latency_slo"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1 (exclusive), got {v!r}")
        for name in ("latency_p99", "latency_threshold", "inprogress_max"):
            v = getattr(self, name)
            if not v > 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive, got {v!r}")
        if self.restarts < 0:
            raise ValueError(f"restarts must not be negative, got {self.restarts!r}")
        for name in ("rate_window", "alert_for"):
            v = getattr(self, name)
            if not _DURATION.match(v):
                raise ValueError(f"{name.replace('_', '-')} must be a Prometheus duration such as 5m or 30s, "
                                 f"got {v!r}")
        if 0.99 not in self.quantiles:
            raise ValueError("quantiles must include 0.99 (the high-latency alert reads it)")


def _q(q: float) -> str:
    return "p" + format(q * 100, "g").replace(".", "_")


def _pct(x: float) -> str:
    return format(x * 100, ".10g") + "%"


def rule_groups(names: Names, t: Thresholds) -> List[Dict[str, Any]]:
    """The rule file's groups, as the data structure Prometheus reads."""
    t.check()
    n = names
    w = t.rate_window
    h = n.handler
    jh = f"job, {h}"
    rec: List[Dict[str, Any]] = []

    rate_jh = n.rule_name(f"job_{h}", "http_requests", f"rate{w}")
    err_jh = n.rule_name(f"job_{h}", "http_requests", f"error_ratio_rate{w}")
    rec.append({"record": rate_jh, "expr": f"sum by ({jh}) ({n.requests_rate(w)})"})
    rec.append({"record": n.rule_name("job", "http_requests", f"rate{w}"),
                "expr": f"sum by (job) ({n.requests_rate(w)})"})
    rec.append({"record": err_jh,
                "expr": f"sum by ({jh}) ({n.requests_rate(w, n.errors())}) / sum by ({jh}) ({n.requests_rate(w)})"})
    for q in t.quantiles:
        rec.append({"record": n.rule_name(f"job_{h}", "http_request_duration_seconds", f"{_q(q)}_rate{w}"),
                    "expr": f"histogram_quantile({q!r}, {n.bucket_rate(w, jh)})"})
    rec.append({"record": n.rule_name("job_instance", "process", "uptime_seconds"),
                "expr": f"time() - min by (job, instance) (process_start_time_seconds{n.sel()})"})

    # The burn-rate windows: error ratio and slow ratio per job.
    windows = sorted({x for long, short, *_ in BURN_WINDOWS for x in (long, short)}, key=_seconds)
    slo_rec: List[Dict[str, Any]] = []
    for win in windows:
        slo_rec.append({"record": n.rule_name("job", "http_requests", f"error_ratio_rate{win}"),
                        "expr": f"sum by (job) ({n.requests_rate(win, n.errors())})"
                                f" / sum by (job) ({n.requests_rate(win)})"})
        slo_rec.append({"record": n.rule_name("job", "http_requests", f"slow_ratio_rate{win}"),
                        "expr": f"1 - ({n.fast_fraction(win, t.latency_threshold, 'job')})"})

    budget = 1.0 - t.availability_slo
    slow_budget = 1.0 - t.latency_slo
    alerts: List[Dict[str, Any]] = [
        _alert("FastpromHighErrorRate", f"{err_jh} > {t.error_ratio!r}", t.alert_for, "warning",
               f"High HTTP error rate on {{{{ $labels.job }}}} {{{{ $labels.{h} }}}}",
               f"{{{{ $value | humanizePercentage }}}} of requests to {{{{ $labels.{h} }}}} answered 5xx over "
               f"{w} (threshold {_pct(t.error_ratio)})."),
        _alert("FastpromHighLatency",
               f"{n.rule_name(f'job_{h}', 'http_request_duration_seconds', f'p99_rate{w}')} > {t.latency_p99!r}",
               t.alert_for, "warning",
               f"High p99 latency on {{{{ $labels.job }}}} {{{{ $labels.{h} }}}}",
               f"p99 latency of {{{{ $labels.{h} }}}} is {{{{ $value | humanizeDuration }}}} over {w} "
               f"(threshold {t.latency_p99!r} s)."),
    ]
    for long, short, factor, severity, hold in BURN_WINDOWS:
        speed = "Fast" if long == "1h" else "Slow"
        er = n.rule_name("job", "http_requests", "error_ratio_rate")
        sr = n.rule_name("job", "http_requests", "slow_ratio_rate")
        alerts.append(_alert(
            f"FastpromAvailabilityBudgetBurn{speed}",
            f"{er}{long} > ({factor!r} * {budget:.10g}) and {er}{short} > ({factor!r} * {budget:.10g})",
            hold, severity, f"{{{{ $labels.job }}}} burns its availability error budget {factor:g}x too fast",
            f"5xx ratio over {long} and {short} exceeds {factor:g} times the budget of a "
            f"{_pct(t.availability_slo)} availability objective."))
        alerts.append(_alert(
            f"FastpromLatencyBudgetBurn{speed}",
            f"{sr}{long} > ({factor!r} * {slow_budget:.10g}) and {sr}{short} > ({factor!r} * {slow_budget:.10g})",
            hold, severity, f"{{{{ $labels.job }}}} burns its latency error budget {factor:g}x too fast",
            f"The share of requests slower than {t.latency_threshold!r} s over {long} and {short} exceeds "
            f"{factor:g} times the budget of a {_pct(t.latency_slo)} latency objective."))
    alerts += [
        _alert("FastpromTargetDown", f"up{n.sel()} == 0", "1m", "critical",
               "{{ $labels.job }} target {{ $labels.instance }} is down",
               "Prometheus could not scrape {{ $labels.instance }} for a minute."),
        _alert("FastpromFrequentRestarts",
               f"sum by (job, instance) (changes(process_start_time_seconds{n.sel()}[1h])) > {t.restarts}",
               "0s", "warning", "{{ $labels.job }} {{ $labels.instance }} restarts often",
               "{{ $value }} process restarts in the last hour."),
        _alert("FastpromRequestsInProgressSaturated",
               f"sum by (job, instance) ({n.inprogress}{n.sel()}) > {t.inprogress_max!r}", t.alert_for, "warning",
               "{{ $labels.job }} {{ $labels.instance }} has many requests in progress",
               f"{{{{ $value }}}} requests in progress (threshold {t.inprogress_max!r})."),
        _alert("FastpromStoreOverflow",
               f"sum by (job, instance) (increase(fastprom_store_overflow_total{n.sel()}[10m])) > 0", "0s",
               "warning", "fastprom's metric store is full on {{ $labels.job }} {{ $labels.instance }}",
               "New label sets are counted under the fastprom_overflow series; raise FASTPROM_STORE_SIZE "
               "or store_size=, or bound the labels."),
    ]
    group = n.prefix + "fastprom"
    return [
        {"name": f"{group}.recording", "rules": rec},
        {"name": f"{group}.slo", "rules": slo_rec},
        {"name": f"{group}.alerts", "rules": alerts},
    ]


def _alert(name: str, expr: str, hold: str, severity: str, summary: str, description: str) -> Dict[str, Any]:
    a: Dict[str, Any] = {"alert": name, "expr": expr}
    if hold != "0s":
        a["for"] = hold
    a["labels"] = {"severity": severity}
    a["annotations"] = {"summary": summary, "description": description}
    return a


def _seconds(d: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return int(sum(float(v) * units[u] for v, u in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", d)))


def to_yaml(value: Any, indent: int = 0) -> str:
    """YAML for nested dicts, lists and scalars (strings written as JSON
    strings, which YAML reads as they are)."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            body = to_yaml(item, indent + 1) if isinstance(item, (dict, list)) else pad + "  " + _scalar(item)
            lines.append(f"{pad}- {body.lstrip()}")
        return "\n".join(lines)
    return pad + _scalar(value)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (dict, list)):
        return "{}" if isinstance(v, dict) else "[]"
    return json.dumps(str(v), ensure_ascii=False)


def render(names: Names, thresholds: Thresholds) -> str:
    """The rule file's text."""
    head = ("# Prometheus rules for fastprom's HTTP metrics"
            f" (metric names: {names.metric_names}, selector: {names.selector or 'all jobs'}).\n"
            "# Written by `python -m fastprom rules`; check with `promtool check rules`.\n")
    return head + to_yaml({"groups": rule_groups(names, thresholds)}) + "\n"


def main(argv: Any = None) -> None:
    """The ``rules`` command."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m fastprom rules",
                                description="Writes a Prometheus rule file for fastprom's HTTP metrics.")
    add_name_options(p)
    d = Thresholds()
    p.add_argument("--error-ratio", type=float, default=d.error_ratio, help="5xx share that alerts (0.05)")
    p.add_argument("--latency-p99", type=float, default=d.latency_p99, help="p99 seconds that alert (0.5)")
    p.add_argument("--availability-slo", type=float, default=d.availability_slo, help="(0.999)")
    p.add_argument("--latency-slo", type=float, default=d.latency_slo, help="(0.99)")
    p.add_argument("--latency-threshold", type=float, default=d.latency_threshold,
                   help="seconds a request must beat for the latency objective; a bucket bound (0.5)")
    p.add_argument("--inprogress-max", type=float, default=d.inprogress_max, help="(100)")
    p.add_argument("--restarts", type=int, default=d.restarts, help="restarts per hour that alert (3)")
    p.add_argument("--rate-window", default=d.rate_window, help="window of rates and ratios (5m)")
    p.add_argument("--for", dest="alert_for", default=d.alert_for, help="hold time of threshold alerts (5m)")
    p.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    args = p.parse_args(argv)
    try:
        names = names_from_args(args)
        text = render(names, Thresholds(
            error_ratio=args.error_ratio, latency_p99=args.latency_p99, availability_slo=args.availability_slo,
            latency_slo=args.latency_slo, latency_threshold=args.latency_threshold,
            inprogress_max=args.inprogress_max, restarts=args.restarts, rate_window=args.rate_window,
            alert_for=args.alert_for))
    except ValueError as e:
        p.error(str(e))
    write_output(args.output, text, sys.stdout)


def add_name_options(p: Any) -> None:
    """The options that say which metric names the app records."""
    p.add_argument("--namespace", default="", help="metric_namespace given to instrument()")
    p.add_argument("--subsystem", default="", help="metric_subsystem given to instrument()")
    p.add_argument("--metric-names", default="prometheus-fastapi-instrumentator",
                   choices=["prometheus-fastapi-instrumentator", "otel"], help="the Instrumentator's metric_names")
    p.add_argument("--native-histograms", action="store_true",
                   help="query the latency histogram as a native histogram")
    p.add_argument("--inprogress-name", default="http_requests_inprogress", help="the Instrumentator's inprogress_name")
    p.add_argument("--selector", default="", help='label matchers added to every selector, e.g. job="api"')


def names_from_args(args: Any) -> Names:
    return Names(metric_names=args.metric_names, namespace=args.namespace, subsystem=args.subsystem,
                 selector=args.selector, native_histograms=args.native_histograms,
                 inprogress_name=args.inprogress_name)


def write_output(path: str, text: str, stdout: Any) -> None:
    if path == "-":
        stdout.write(text)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
