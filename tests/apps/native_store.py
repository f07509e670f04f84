"""Serves the native histogram that worker processes observed into the
shared store in PROMETHEUS_MULTIPROC_DIR (tests/test_native_prometheus.py)."""
import fastprom

SETTINGS = {"native_histogram_bucket_factor": 1.1}
LATENCY = fastprom.Histogram("native_latency_seconds", "Latency.", **SETTINGS)


def create_app():
    return fastprom.make_asgi_app()
