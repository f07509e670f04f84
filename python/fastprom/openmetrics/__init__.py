"""OpenMetrics output, at prometheus_client's import path."""
