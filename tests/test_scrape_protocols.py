"""Real Prometheus servers (Debian's 2.42 and Prometheus 3.5) scrape a
fastprom app in each protocol they negotiate, protobuf included; queries
through the HTTP API see the exact values, and the app saw the Accept
header of the negotiation table and answered with its Content-Type."""
import os

import httpx
import pytest

from conftest import need_tool
from servers import uvicorn_server
from test_negotiation import PROM2, PROM2_NATIVE, PROM3, PROM3_NATIVE
from test_prometheus_server import _log, poll, query, run_prometheus, scalar

from fastprom.exposition import negotiate_format

JOB = "protocols"
PROTOCOLS_NATIVE = "[PrometheusProto, OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText1.0.0, PrometheusText0.0.4]"


def prometheus3_binary():
    from prometheus3 import prometheus3

    try:
        return prometheus3()
    except RuntimeError as e:
        if os.environ.get("CI"):
            pytest.fail(f"Prometheus 3 could not be had: {e}")
        pytest.skip(f"Prometheus 3 could not be had: {e}")


CASES = [
    # (id, server, job config, flags, the Accept header it sends, protocol served)
    ("prometheus2", "2", "", (), PROM2, "OpenMetricsText1.0.0"),
    ("prometheus2-native", "2", "", ("--enable-feature=native-histograms",), PROM2_NATIVE, "PrometheusProto"),
    ("prometheus3", "3", "", (), PROM3, "OpenMetricsText1.0.0"),
    ("prometheus3-proto", "3", f"    scrape_protocols: {PROTOCOLS_NATIVE}\n", (), PROM3_NATIVE, "PrometheusProto"),
    # Created timestamps: Prometheus ingests a 0 at each series' creation.
    ("prometheus3-proto-created", "3", f"    scrape_protocols: {PROTOCOLS_NATIVE}\n",
     ("--enable-feature=created-timestamp-zero-ingestion",), PROM3_NATIVE, "PrometheusProto"),
]


@pytest.mark.parametrize("server,job_extra,flags,accept,protocol", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_prometheus_reads_every_type_in_the_protocol_it_negotiates(tmp_path, server, job_extra, flags, accept,
                                                                     protocol):
    binary = need_tool("prometheus") if server == "2" else prometheus3_binary()
    with uvicorn_server(app="protocols:create_app") as app:
        port = int(app.rsplit(":", 1)[1])
        with run_prometheus(binary, port, tmp_path, JOB, job_extra, flags) as (prom, log):
            assert poll(lambda: scalar(prom, f'up{{job="{JOB}"}}'), 1.0) == 1.0, _log(log)
            seen = httpx.get(f"{app}/seen", timeout=10, trust_env=False).json()
            # The real header is the table's, and was answered as the table says.
            assert seen["accept"] == accept
            fmt = negotiate_format(accept)
            assert fmt.protocol == protocol
            assert seen["content_type"] == fmt.content_type

            value = lambda promql: scalar(prom, promql)  # noqa: E731
            assert value('proto_events_total{kind="a"}') == 7
            assert value("proto_temperature") == -2.5
            assert value("proto_latency_seconds_count") == 3
            assert value("proto_latency_seconds_sum") == 5.55
            buckets = {float(r["metric"]["le"]): float(r["value"][1])
                       for r in query(prom, "proto_latency_seconds_bucket")}
            assert buckets == {0.1: 1, 1.0: 2, float("inf"): 3}
            assert value("proto_size_bytes_count") == 2
            assert value("proto_size_bytes_sum") == 30
            assert value('proto_build_info{version="1.2"}') == 1
            assert value('proto_custom{src="py"}') == 42
            # Every sample of the scrape was taken, none refused.
            assert value(f'scrape_samples_scraped{{job="{JOB}"}}') > 10
            targets = httpx.get(f"{prom}/api/v1/targets", timeout=10, trust_env=False).json()["data"]["activeTargets"]
            assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")], targets
            if "--enable-feature=created-timestamp-zero-ingestion" in flags:
                created = httpx.get(f"{app}/created", timeout=10, trust_env=False).json()
                for series, t in created.items():
                    r = httpx.get(f"{prom}/api/v1/query", params={"query": f"{series}[10m]"}, timeout=10,
                                  trust_env=False).json()
                    (result,) = r["data"]["result"]
                    first_t, first_v = result["values"][0]
                    # Milliseconds in the TSDB: the created time, to the millisecond.
                    assert (round(first_t * 1000), float(first_v)) == (int(t * 1000), 0.0), (series, result)
