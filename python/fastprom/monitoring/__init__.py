"""What to run beside an instrumented app: Prometheus rules (``rules``) and a
Grafana dashboard (``dashboard``) for the metrics fastprom records."""
