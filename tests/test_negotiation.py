"""Content negotiation: the Accept headers real scrapers and clients send
-> the format served and its exact Content-Type."""
import pytest

import fastprom as fp
from fastprom.exposition import negotiate_format

PROTO = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
OM1 = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OM0 = "application/openmetrics-text; version=0.0.1; charset=utf-8"
TEXT1 = "text/plain; version=1.0.0; charset=utf-8"
TEXT0 = "text/plain; version=0.0.4; charset=utf-8"

# Prometheus 2.x (2.42, Debian 12): its fixed header, and the one with
# native histograms on.
PROM2 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
         "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
PROM2_NATIVE = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
                "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
                "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
# Prometheus 3.x: scrape_protocols with weights, escaping on the formats
# that carry it; default protocols, then PrometheusProto first (native
# histograms on), then a text-only job.
PROM3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
         "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
         "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
PROM3_NATIVE = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,"
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                "application/openmetrics-text;version=0.0.1;q=0.4,"
                "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
PROM3_TEXT1 = "text/plain;version=1.0.0;escaping=underscores;q=0.6,*/*;q=0.5"
# Browsers.
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CHROME = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
          "application/signed-exchange;v=b3;q=0.7")

TABLE = [
    # (who, Accept, protocol, Content-Type)
    ("no header", None, "PrometheusText0.0.4", TEXT0),
    ("curl", "*/*", "PrometheusText0.0.4", TEXT0),
    ("firefox", FIREFOX, "PrometheusText0.0.4", TEXT0),
    ("chrome", CHROME, "PrometheusText0.0.4", TEXT0),
    ("prometheus 2", PROM2, "OpenMetricsText1.0.0", f"{OM1}; escaping=underscores"),
    ("prometheus 2 native", PROM2_NATIVE, "PrometheusProto", f"{PROTO}; escaping=underscores"),
    ("prometheus 3", PROM3, "OpenMetricsText1.0.0", f"{OM1}; escaping=allow-utf-8"),
    ("prometheus 3 native", PROM3_NATIVE, "PrometheusProto", f"{PROTO}; escaping=underscores"),
    ("prometheus 3 text 1.0.0", PROM3_TEXT1, "PrometheusText1.0.0", f"{TEXT1}; escaping=underscores"),
    # prometheus_client's own tests' headers.
    ("pc openmetrics", "application/openmetrics-text", "OpenMetricsText1.0.0", OM1),
    ("pc openmetrics 1.0.0", "application/openmetrics-text; version=1.0.0", "OpenMetricsText1.0.0",
     f"{OM1}; escaping=underscores"),
    ("pc openmetrics utf-8", "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
     "OpenMetricsText1.0.0", f"{OM1}; escaping=allow-utf-8"),
    ("pc text", "text/plain", "PrometheusText0.0.4", TEXT0),
    ("pc text 1.0.0 dots", "text/plain; version=1.0.0; escaping=dots", "PrometheusText1.0.0",
     f"{TEXT1}; escaping=dots"),
    ("pc text 1.0.0 values", "text/plain; version=1.0.0; escaping=values", "PrometheusText1.0.0",
     f"{TEXT1}; escaping=values"),
    ("pc gzip accept", "text/plain; version=0.0.4", "PrometheusText0.0.4", TEXT0),
    # Spellings and weights.
    ("allow-utf8 spelling", "text/plain;version=1.0.0;escaping=allow-utf8", "PrometheusText1.0.0",
     f"{TEXT1}; escaping=allow-utf-8"),
    ("unknown escaping", "text/plain;version=1.0.0;escaping=bogus", "PrometheusText1.0.0",
     f"{TEXT1}; escaping=underscores"),
    ("proto with escaping", PROTO.replace(" ", "") + ";escaping=allow-utf-8", "PrometheusProto",
     f"{PROTO}; escaping=allow-utf-8"),
    ("proto text encoding", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
     "PrometheusText0.0.4", TEXT0),
    ("proto other message", "application/vnd.google.protobuf;proto=other.Message;encoding=delimited",
     "PrometheusText0.0.4", TEXT0),
    ("openmetrics 0.0.1", "application/openmetrics-text;version=0.0.1", "OpenMetricsText0.0.1", OM0),
    ("openmetrics 2.0.0", "application/openmetrics-text;version=2.0.0", "PrometheusText0.0.4", TEXT0),
    ("q prefers text", "application/openmetrics-text;q=0.3,text/plain;version=1.0.0;q=0.9", "PrometheusText1.0.0",
     f"{TEXT1}; escaping=underscores"),
    ("q=0 refuses", PROTO.replace(" ", "") + ";q=0,text/plain", "PrometheusText0.0.4", TEXT0),
    ("tie: first wins", "text/plain;version=1.0.0;q=0.5," + PROTO.replace(" ", "") + ";q=0.5",
     "PrometheusText1.0.0", f"{TEXT1}; escaping=underscores"),
    ("case and spaces", "Application/OpenMetrics-Text ; Version=1.0.0 ; q=0.9", "OpenMetricsText1.0.0",
     f"{OM1}; escaping=underscores"),
]


@pytest.mark.parametrize("who,accept,protocol,ctype", TABLE, ids=[t[0] for t in TABLE])
def test_negotiation_table(who, accept, protocol, ctype):
    fmt = negotiate_format(accept)
    assert (fmt.protocol, fmt.content_type) == (protocol, ctype)


@pytest.mark.parametrize("who,accept,protocol,ctype", TABLE, ids=[t[0] for t in TABLE])
def test_negotiated_body_is_the_format(registry, who, accept, protocol, ctype):
    fp.Counter("c", "C.", registry=registry).inc()
    e = fp.negotiate(registry, accept)
    assert e.content_type == ctype
    if protocol == "PrometheusProto":
        from pb_schema import parse_delimited

        assert [f.name for f in parse_delimited(e.body)] == ["c_total"]
    elif protocol.startswith("OpenMetrics"):
        assert e.body.endswith(b"# EOF\n")
    else:
        # (dots writes _ as __: c__total)
        assert e.body.startswith(b"# HELP c_") and b"# EOF" not in e.body


def test_choose_encoder_keeps_prometheus_client_behaviour():
    """choose_encoder answers as prometheus_client's: no protobuf, first match wins."""
    import prometheus_client.exposition as pce

    for _, accept, _, _ in TABLE:
        ours, theirs = fp.choose_encoder(accept), pce.choose_encoder(accept or "")
        assert ours[1] == theirs[1], accept


def test_instrumentator_endpoint_serves_protobuf_over_http():
    """The Instrumentator's /metrics under uvicorn: protobuf (gzip when asked)
    to Prometheus 3's native-histogram header, text to curl."""
    import httpx

    from pb_schema import METRIC_TYPES, parse_delimited
    from servers import uvicorn_server

    with uvicorn_server(expose={"should_gzip": True}) as base:
        with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
            assert client.get("/items/1").status_code == 200
            r = client.get("/metrics", headers={"Accept": PROM3_NATIVE, "Accept-Encoding": "gzip"})
            assert r.status_code == 200
            assert r.headers["content-type"] == f"{PROTO}; escaping=underscores"
            assert r.headers["content-encoding"] == "gzip"
            # httpx has already undone the gzip; the body is the delimited stream.
            fams = {f.name: f for f in parse_delimited(r.content)}
            reqs = fams["http_requests_total"]
            assert METRIC_TYPES[reqs.type] == "COUNTER"
            got = {tuple(sorted((lp.name, lp.value) for lp in m.label)): m.counter.value for m in reqs.metric}
            assert got[(("handler", "/items/{item_id}"), ("method", "GET"), ("status", "2xx"))] == 1
            assert METRIC_TYPES[fams["http_request_duration_seconds"].type] == "HISTOGRAM"
            plain = client.get("/metrics", headers={"Accept": "*/*", "Accept-Encoding": "identity"})
            assert plain.headers["content-type"] == TEXT0
            assert plain.text.startswith("# HELP")
