"""The page ``expose(app, ui=True)`` serves: per route, request rate, error
ratio, p50 and p99 latency and requests in progress, refreshed every few
seconds.  One self-contained HTML document (inline style and script, no
external resource) and the JSON it polls, both read from the registry in
the serving process.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

_TOTALS = ("http_requests", "http_server_request_duration_seconds")


def _quantile(q: float, buckets: Sequence[Tuple[float, float]]) -> float:
    """The q-quantile of cumulative (bound, count) buckets, interpolated as
    Prometheus' histogram_quantile does; NaN when empty."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def snapshot(registry: Any, prefix: str = "") -> Dict[str, Any]:
    """Per-route counts, 5xx counts, p50/p99 latency (seconds) and requests
    in progress, from the registry's samples now."""
    routes: Dict[str, Dict[str, Any]] = {}
    buckets: Dict[str, Dict[float, float]] = {}
    inprogress_total = 0.0

    def row(route: str) -> Dict[str, Any]:
        return routes.setdefault(route, {"route": route, "count": 0.0, "errors": 0.0, "inprogress": None})

    for family in registry.collect():
        name = family.name
        for s in family.samples:
            labels = s.labels
            if name == prefix + "http_requests" and s.name.endswith("_total"):
                r = row(labels.get("handler", ""))
                r["count"] += s.value
                if labels.get("status", "").startswith("5"):
                    r["errors"] += s.value
            elif name == prefix + "http_server_request_duration_seconds":
                route = labels.get("http_route", "")
                if s.name.endswith("_count"):
                    r = row(route)
                    r["count"] += s.value
                    if labels.get("http_response_status_code", "").startswith("5"):
                        r["errors"] += s.value
                elif s.name.endswith("_bucket"):
                    b = buckets.setdefault(route, {})
                    b[float(labels["le"])] = b.get(float(labels["le"]), 0.0) + s.value
            elif name == prefix + "http_request_duration_seconds" and s.name.endswith("_bucket"):
                b = buckets.setdefault(labels.get("handler", ""), {})
                b[float(labels["le"])] = b.get(float(labels["le"]), 0.0) + s.value
            elif family.type == "gauge" and name.endswith(("_inprogress", "http_server_active_requests")):
                inprogress_total += s.value
                if "handler" in labels:
                    r = row(labels["handler"])
                    r["inprogress"] = (r["inprogress"] or 0.0) + s.value
    out: List[Dict[str, Any]] = []
    for route, r in sorted(routes.items()):
        bs = sorted(buckets.get(route, {}).items())
        p50, p99 = _quantile(0.5, bs), _quantile(0.99, bs)
        r["p50"] = None if math.isnan(p50) else p50
        r["p99"] = None if math.isnan(p99) else p99
        out.append(r)
    return {"routes": out, "inprogress": inprogress_total}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastprom: requests by route</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1d2430; background: #fafbfc; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
p.note { color: #5b6575; margin: 0 0 1em; }
table { border-collapse: collapse; min-width: 60em; background: #fff; box-shadow: 0 1px 2px #0002; }
th, td { padding: .45em .9em; border-bottom: 1px solid #e4e8ee; text-align: right; }
th { background: #eef1f5; font-weight: 600; }
td:first-child, th:first-child { text-align: left; font-family: ui-monospace, monospace; }
tr.bad td { background: #fdecec; }
</style></head>
<body>
<h1>Requests by route</h1>
<p class="note">Refreshed every <span id="every">2</span> s from this process's metrics
(<a href="__METRICS__">raw</a>). Rate and error ratio are over the last refresh; <span id="status">loading</span></p>
<table><thead><tr><th>route</th><th>requests</th><th>rate /s</th><th>error ratio</th>
<th>p50</th><th>p99</th><th>in progress</th></tr></thead><tbody id="rows"></tbody></table>
<script>
"use strict";
let last = null;
function fmtS(v) { return v === null ? "\\u2013" : v < 1 ? (v * 1000).toFixed(1) + " ms" : v.toFixed(3) + " s"; }
function pct(v) { return isFinite(v) ? (v * 100).toFixed(2) + "%" : "\\u2013"; }
function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
async function refresh() {
  try {
    const r = await fetch("__DATA__", {cache: "no-store"});
    const data = await r.json();
    const now = performance.now() / 1000;
    const before = {};
    if (last) for (const row of last.data.routes) before[row.route] = row;
    const body = document.getElementById("rows");
    body.textContent = "";
    for (const row of data.routes) {
      const tr = document.createElement("tr");
      const prev = before[row.route];
      const dt = last ? now - last.t : 0;
      const dn = prev ? row.count - prev.count : row.count;
      const de = prev ? row.errors - prev.errors : row.errors;
      const ratio = dn > 0 ? de / dn : (row.count > 0 ? row.errors / row.count : NaN);
      if (ratio > 0.05) tr.className = "bad";
      cell(tr, row.route);
      cell(tr, String(row.count));
      cell(tr, dt > 0 ? (dn / dt).toFixed(2) : "\\u2013");
      cell(tr, pct(ratio));
      cell(tr, fmtS(row.p50));
      cell(tr, fmtS(row.p99));
      cell(tr, row.inprogress === null ? "\\u2013" : String(row.inprogress));
      body.appendChild(tr);
    }
    document.getElementById("status").textContent = "in progress, all routes: " + data.inprogress;
    last = {t: now, data: data};
  } catch (e) {
    document.getElementById("status").textContent = "refresh failed: " + e;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body></html>
"""


def page(metrics_path: str, data_path: str) -> str:
    """The HTML page, polling ``data_path``."""
    return PAGE.replace("__METRICS__", metrics_path).replace("__DATA__", data_path)
