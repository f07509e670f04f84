#!/usr/bin/env bash
# The whole matrix: every Python version pyproject declares (3.11, 3.13, and
# 3.13t free-threaded) x every server (tests/test_servers.py), plus the
# threaded exact-totals test, each interpreter in a virtual environment of
# its own; prints a table of pass/fail.  Interpreters come from
# tools/interpreters.sh (built when missing).
#   tools/matrix.sh [3.11] [3.13] [3.13t]   (all when none is named)
#   FASTPROM_VENV_CACHE   where the environments live (default /var/cache/fastprom-ci/venvs)
# Exits non-zero when any cell fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${FASTPROM_VENV_CACHE:-/var/cache/fastprom-ci/venvs}
pycache=${FASTPROM_PY_CACHE:-/var/cache/fastprom-ci/python}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.11 3.13 3.13t)
out=$(mktemp -d)
for ver in "${versions[@]}"; do
    case "$ver" in
        3.11) py=python3.11 ;;
        3.13|3.13t) bash tools/interpreters.sh "$ver"; py="$pycache/$ver/bin/python$ver" ;;
        *) echo "matrix.sh: unknown version '$ver' (3.11, 3.13, 3.13t)" >&2; exit 2 ;;
    esac
    v="$cache/matrix-$ver"
    echo "== $ver: $v"
    [ -x "$v/bin/python" ] || "$py" -m venv "$v"
    "$v/bin/python" -m pip install -q --upgrade pip
    FASTPROM_WERROR=1 "$v/bin/python" -m pip install -q --force-reinstall --no-deps .
    if [ "$ver" = 3.13t ]; then
        # What has free-threaded wheels (see run-tests): no granian there yet.
        "$v/bin/python" -m pip install -q --only-binary=:all: "pytest>=7" "prometheus_client>=0.20" "fastapi>=0.133" \
            "starlette>=1.7" "uvicorn>=0.23" "httpx>=0.24" "gunicorn>=21" "uvicorn-worker>=0.2" "hypercorn>=0.16"
    else
        "$v/bin/python" -m pip install -q ".[test]"
    fi
    "$v/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$out/$ver.xml" tests/test_threads.py \
        tests/test_servers.py || true
done
python3 - "$out" "${versions[@]}" <<'PY'
import sys, xml.etree.ElementTree as ET
out, versions = sys.argv[1], sys.argv[2:]
cells, rows = {}, []
for v in versions:
    try:
        root = ET.parse(f"{out}/{v}.xml").getroot()
    except (OSError, ET.ParseError):
        continue
    for case in root.iter("testcase"):
        name = case.get("name")
        name = name[name.index("[") + 1:-1] if "[" in name else name.replace("test_", "")
        if name not in rows:
            rows.append(name)
        state = "pass"
        for child in case:
            if child.tag in ("failure", "error"):
                state = "FAIL"
            elif child.tag == "skipped":
                state = "skip"
        cells[(name, v)] = state
w = max(len(r) for r in rows) if rows else 10
print(f"{'':{w}} " + " ".join(f"{v:>6}" for v in versions))
for r in rows:
    print(f"{r:{w}} " + " ".join(f"{cells.get((r, v), '-'):>6}" for v in versions))
sys.exit(1 if any(s == "FAIL" for s in cells.values()) else 0)
PY
