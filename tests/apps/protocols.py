"""An app whose /metrics Prometheus scrapes in whatever protocol it
negotiates (tests/test_scrape_protocols.py): known values of every type,
and /seen, the Accept header of the last scrape and the Content-Type it
was answered with."""
import json

import fastprom
from fastprom.metrics_core import GaugeMetricFamily

REGISTRY = fastprom.CollectorRegistry()
EVENTS = fastprom.Counter("proto_events", "Events.", ["kind"], registry=REGISTRY)
TEMP = fastprom.Gauge("proto_temperature", "Temperature.", registry=REGISTRY)
LATENCY = fastprom.Histogram("proto_latency_seconds", "Latency.", buckets=(0.1, 1), registry=REGISTRY)
SIZE = fastprom.Summary("proto_size_bytes", "Sizes.", registry=REGISTRY)
BUILD = fastprom.Info("proto_build", "Build.", registry=REGISTRY)


class Custom:
    def collect(self):
        g = GaugeMetricFamily("proto_custom", "From a custom collector.", labels=["src"])
        g.add_metric(["py"], 42)
        yield g


REGISTRY.register(Custom())
EVENTS.labels("a").inc(7, exemplar={"trace_id": "abc"})
TEMP.set(-2.5)
for v in (0.05, 0.5, 5):
    LATENCY.observe(v)
SIZE.observe(10)
SIZE.observe(20)
BUILD.info({"version": "1.2"})


def created():
    """The created timestamps of the counter, histogram and summary series."""
    out = {}
    for m in REGISTRY.collect():
        for smp in m.samples:
            if smp.name.endswith("_created"):
                base = smp.name[:-len("_created")]
                series = {"counter": base + "_total", "histogram": base + "_count", "summary": base + "_count"}
                out[series[m.type]] = smp.value
    return out


def create_app():
    metrics = fastprom.make_asgi_app(REGISTRY)
    seen = {}

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await metrics(scope, receive, send)
        if scope["path"] in ("/seen", "/created"):
            body = json.dumps(seen if scope["path"] == "/seen" else created()).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        headers = dict(scope["headers"])

        async def send_seen(message):
            if message["type"] == "http.response.start":
                out = {bytes(k).lower(): bytes(v) for k, v in message["headers"]}
                seen.update(accept=headers.get(b"accept", b"").decode(),
                            content_type=out.get(b"content-type", b"").decode())
            await send(message)

        await metrics(scope, receive, send_seen)

    return app
