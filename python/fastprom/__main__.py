"""``python -m fastprom demo``: run the demo app under uvicorn.
``python -m fastprom exporter --dir DIR --port PORT``: serve a shared store, read-only."""
import sys

USAGE = ("usage: python -m fastprom demo [--host HOST] [--port PORT]\n"
         "       python -m fastprom exporter [--dir DIR] --port PORT [--host ADDR] [--web-config FILE] "
         "[--certfile FILE --keyfile FILE]")


def _main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "demo":
        from .asgi.demo import main

        main(args[1:])
    elif args and args[0] == "exporter":
        from .exporter import main as exporter_main

        exporter_main(args[1:])
    else:
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    _main()
