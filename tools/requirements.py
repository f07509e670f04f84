"""Prints pyproject's `test` extra, one requirement per line, for pip.

    python3 tools/requirements.py                  the extra as it is
    python3 tools/requirements.py --free-threaded  for free-threaded CPython

Free-threaded CPython has no wheels yet for uvicorn[standard]'s uvloop and
httptools, so there uvicorn comes with the rest of [standard] only (the
pure-Python HTTP parser and asyncio's loop are what uvicorn then uses);
hypothesis is held below the releases whose dependencies would be compiled.
Everything printed installs from wheels (--only-binary=:all:) but PyYAML,
which run-tests builds from source (it has no free-threaded wheel; 20 s).
"""
import argparse
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_threaded(req: str) -> list[str]:
    """What installs in place of one requirement on free-threaded CPython."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)\s*([^;]*)(;.*)?", req)
    if m is None:
        raise SystemExit(f"requirements.py: cannot read the requirement {req!r}")
    name, spec = m.group(1).lower(), m.group(2).strip()
    if name == "uvicorn[standard]":
        return ["uvicorn" + spec, "watchfiles", "websockets", "python-dotenv"]
    if name == "hypothesis":
        return ["hypothesis" + spec + ",<6.140"]
    if name == "pyyaml":
        return []
    return [req]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--free-threaded", action="store_true", help="what installs on free-threaded CPython")
    args = ap.parse_args()
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    for req in extra:
        for line in free_threaded(req) if args.free_threaded else [req]:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
