"""``python -m fastprom demo``: run the demo app under uvicorn."""
import sys


def _main() -> None:
    args = sys.argv[1:]
    if not args or args[0] != "demo":
        print("usage: python -m fastprom demo [--host HOST] [--port PORT]", file=sys.stderr)
        raise SystemExit(2)
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"fastprom demo needs {' and '.join(missing)}: pip install 'fastprom[demo]'", file=sys.stderr)
        raise SystemExit(2)
    from .asgi.demo import main

    main(args[1:])


if __name__ == "__main__":
    _main()
