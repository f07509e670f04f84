"""``python -m fastprom dashboard``: a Grafana dashboard (JSON model) for
the HTTP and process metrics fastprom records.

Variables: the Prometheus data source, then ``job``, ``instance`` and the
route (``handler``, or ``http_route`` under OpenTelemetry names), each
multi-valued with "All".  Queries aggregate over instances and workers.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from .names import Names
from .rules import add_name_options, names_from_args, write_output

#: Grafana's dashboard JSON schema version the model follows.
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def panel_queries(n: Names) -> List[Tuple[str, str, str, List[Tuple[str, str]]]]:
    """(title, panel type, unit, [(legend, PromQL)]) for every panel."""
    h = n.handler
    f = 'job=~"$job", instance=~"$instance"'
    fr = f'{f}, {h}=~"$route"'
    win = "$__rate_interval"
    duration = n.duration
    sel_r = n.sel(fr)
    if n.native_histograms:
        reqs = f"histogram_count(rate({duration}{sel_r}[{win}]))"
        errs = f"histogram_count(rate({duration}{n.sel(fr, n.errors())}[{win}]))"
        quant = [(f"p{int(q * 100)} {{{{{h}}}}}",
                  f"histogram_quantile({q}, sum by ({h}) (rate({duration}{sel_r}[{win}])))") for q in (0.5, 0.9, 0.99)]
        heat = [("", f"sum(rate({duration}{sel_r}[{win}]))")]
    else:
        if n.otel:
            reqs = f"rate({duration}_count{sel_r}[{win}])"
            errs = f"rate({duration}_count{n.sel(fr, n.errors())}[{win}])"
        else:
            reqs = f"rate({n.prefix}http_requests_total{sel_r}[{win}])"
            errs = f"rate({n.prefix}http_requests_total{n.sel(fr, n.errors())}[{win}])"
        quant = [(f"p{int(q * 100)} {{{{{h}}}}}",
                  f"histogram_quantile({q}, sum by ({h}, le) (rate({duration}_bucket{sel_r}[{win}])))")
                 for q in (0.5, 0.9, 0.99)]
        heat = [("{{le}}", f"sum by (le) (rate({duration}_bucket{sel_r}[{win}]))")]
    proc = n.sel(f)
    inprogress_by = "http_request_method" if n.otel else "job"
    return [
        ("Request rate", "timeseries", "reqps", [(f"{{{{{h}}}}}", f"sum by ({h}) ({reqs})")]),
        ("Error ratio (5xx)", "timeseries", "percentunit",
         [(f"{{{{{h}}}}}", f"sum by ({h}) ({errs}) / sum by ({h}) ({reqs})")]),
        ("Latency quantiles", "timeseries", "s", quant),
        ("Latency distribution", "heatmap", "s", heat),
        ("Requests in progress", "timeseries", "short",
         [(f"{{{{{inprogress_by}}}}}", f"sum by ({inprogress_by}) ({n.inprogress}{proc})")]),
        ("Uptime", "stat", "s", [("{{instance}}", f"time() - min by (instance) (process_start_time_seconds{proc})")]),
        ("Restarts (1 h)", "stat", "short",
         [("{{instance}}", f"sum by (instance) (changes(process_start_time_seconds{proc}[1h]))")]),
        ("Process CPU", "timeseries", "percentunit",
         [("{{instance}}", f"sum by (instance) (rate(process_cpu_seconds_total{proc}[{win}]))")]),
        ("Resident memory", "timeseries", "bytes",
         [("{{instance}}", f"sum by (instance) (process_resident_memory_bytes{proc})")]),
        ("Garbage collections", "timeseries", "short",
         [("gen {{generation}}", f"sum by (generation) (rate(python_gc_collections_total{proc}[{win}]))")]),
    ]


def dashboard(n: Names, title: str = "fastprom HTTP") -> Dict[str, Any]:
    """The dashboard's JSON model."""
    panels: List[Dict[str, Any]] = []
    for i, (name, kind, unit, targets) in enumerate(panel_queries(n)):
        width = 12 if kind != "stat" else 6
        x = (i % 2) * 12 if kind != "stat" else (0 if name == "Uptime" else 6)
        panel: Dict[str, Any] = {
            "id": i + 1, "type": kind, "title": name, "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": width, "x": x, "y": (i // 2) * 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
            "targets": [{"refId": chr(ord("A") + j), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                         **({"format": "heatmap"} if kind == "heatmap" and not n.native_histograms else {})}
                        for j, (legend, expr) in enumerate(targets)],
        }
        if kind == "heatmap":
            panel["options"] = {"calculate": False, "yAxis": {"unit": "s"}}
        panels.append(panel)
    base = n.duration + ("" if n.native_histograms else "_count")
    if not n.otel and not n.native_histograms:
        base = n.prefix + "http_requests_total"
    job_sel = n.sel()
    by_job = 'job=~"$job"'
    variables = [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
         "current": {}, "hide": 0},
        _query_var("job", f"label_values({base}{job_sel}, job)"),
        _query_var("instance", f"label_values({base}{n.sel(by_job)}, instance)"),
        _query_var("route", f"label_values({base}{n.sel(by_job)}, {n.handler})"),
    ]
    return {
        "title": title, "uid": "fastprom-" + (n.prefix or "http").strip("_"),
        "tags": ["fastprom", "http"], "timezone": "browser", "editable": True,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": panels,
    }


def _query_var(name: str, query: str) -> Dict[str, Any]:
    return {"name": name, "type": "query", "datasource": DATASOURCE, "label": name,
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0}


def main(argv: Any = None) -> None:
    """The ``dashboard`` command."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m fastprom dashboard",
                                description="Writes a Grafana dashboard (JSON model) for fastprom's metrics.")
    add_name_options(p)
    p.add_argument("--title", default="fastprom HTTP", help="the dashboard's title")
    p.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    args = p.parse_args(argv)
    try:
        model = dashboard(names_from_args(args), args.title)
    except ValueError as e:
        p.error(str(e))
    write_output(args.output, json.dumps(model, indent=2) + "\n", sys.stdout)
