"""``python -m fastprom COMMAND``: ``demo`` runs the demo app under uvicorn,
``exporter`` serves a shared store read-only, ``rules`` writes a Prometheus
rule file, ``dashboard`` a Grafana dashboard."""
import importlib
import importlib.util
import sys

USAGE = ("usage: python -m fastprom demo [--host HOST] [--port PORT]\n"
         "       python -m fastprom exporter [--dir DIR] --port PORT [--host ADDR] [--web-config FILE] "
         "[--certfile FILE --keyfile FILE]\n"
         "       python -m fastprom rules [options]      (Prometheus recording rules and alerts)\n"
         "       python -m fastprom dashboard [options]  (Grafana dashboard JSON)\n"
         "each command takes --help")

_COMMANDS = {"demo": ".asgi.demo", "exporter": ".exporter", "rules": ".monitoring.rules",
             "dashboard": ".monitoring.dashboard"}


def _main() -> None:
    args = sys.argv[1:]
    module = _COMMANDS.get(args[0]) if args else None
    if module is None:
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)
    if args[0] == "demo":
        missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
        if missing:
            print(f"fastprom demo needs {' and '.join(missing)}: pip install 'fastprom[demo]'", file=sys.stderr)
            raise SystemExit(2)
    importlib.import_module(module, __package__).main(args[1:])


if __name__ == "__main__":
    _main()
