#!/usr/bin/env bash
# The whole matrix: the whole test suite on every Python version pyproject
# declares (3.11, 3.13, 3.13t free-threaded, 3.14), each interpreter in a
# virtual environment of its own; then a table with one row per server of
# tests/test_servers.py (exact counts, one and several workers), the
# threaded exact-totals test, and the suite's totals.
#   tools/matrix.sh [3.11] [3.13] [3.13t] [3.14]   (all when none is named)
#   FASTPROM_VENV_CACHE   where the environments live (default /var/cache/fastprom-ci/venvs)
# 3.13 and 3.13t come from tools/interpreters.sh, 3.14 from Debian
# unstable's packages in tools/sid.sh's root (its environment lives there).
# Extra pytest arguments can be given in FASTPROM_MATRIX_PYTEST.
# Exits non-zero when any test fails on any version.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${FASTPROM_VENV_CACHE:-/var/cache/fastprom-ci/venvs}
pycache=${FASTPROM_PY_CACHE:-/var/cache/fastprom-ci/python}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.11 3.13 3.13t 3.14)
# Inside the checkout, so that tools/sid.sh's root sees it too.
out=$PWD/build/matrix
rm -rf "$out"
mkdir -p "$out"

# setup_and_test VENV PYTHON VERSION: creates VENV with PYTHON when missing,
# installs fastprom and the test extra, runs the whole suite.
setup_and_test() {
    local v=$1 py=$2 ver=$3
    [ -x "$v/bin/python" ] || "$py" -m venv "$v"
    "$v/bin/python" -m pip install -q --upgrade pip
    FASTPROM_WERROR=1 "$v/bin/python" -m pip install -q --force-reinstall --no-deps .
    if [ "$ver" = 3.13t ]; then
        python3 tools/requirements.py --free-threaded > "$out/requirements-$ver.txt"
        "$v/bin/python" -m pip install -q --only-binary=:all: -r "$out/requirements-$ver.txt"
        "$v/bin/python" -m pip install -q "pyyaml>=5"
    else
        "$v/bin/python" -m pip install -q ".[test]"
    fi
    # shellcheck disable=SC2086
    "$v/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$out/$ver.xml" ${FASTPROM_MATRIX_PYTEST:-} \
        >"$out/$ver.log" 2>&1 || true
    tail -1 "$out/$ver.log"
}

for ver in "${versions[@]}"; do
    echo "== $ver"
    case "$ver" in
        3.11) setup_and_test "$cache/matrix-3.11" python3.11 3.11 ;;
        3.13|3.13t) bash tools/interpreters.sh "$ver"
            setup_and_test "$cache/matrix-$ver" "$pycache/$ver/bin/python$ver" "$ver" ;;
        3.14) bash tools/sid.sh bash -c "$(declare -f setup_and_test); out='$out'; \
            setup_and_test /opt/matrix-3.14 python3.14 3.14" ;;
        *) echo "matrix.sh: unknown version '$ver' (3.11, 3.13, 3.13t, 3.14)" >&2; exit 2 ;;
    esac
done

python3 - "$out" "${versions[@]}" <<'PY'
import sys, xml.etree.ElementTree as ET
out, versions = sys.argv[1], sys.argv[2:]
cells, totals, rows = {}, {}, []
for v in versions:
    try:
        root = ET.parse(f"{out}/{v}.xml").getroot()
    except (OSError, ET.ParseError):
        totals[v] = "no result"
        continue
    n = {"pass": 0, "FAIL": 0, "skip": 0}
    for case in root.iter("testcase"):
        state = "pass"
        for child in case:
            if child.tag in ("failure", "error"):
                state = "FAIL"
            elif child.tag == "skipped" and state != "FAIL":
                state = "skip"
        n[state] += 1
        name, cls = case.get("name"), case.get("classname", "")
        if cls.endswith("test_servers") and "[" in name:
            row = name[name.index("[") + 1:-1]
        elif cls.endswith("test_threads"):
            row = name.replace("test_", "")
        else:
            if state == "FAIL":
                print(f"{v}: FAILED {cls}::{name}")
            continue
        if row not in rows:
            rows.append(row)
        cells[(row, v)] = state
    totals[v] = f"{n['pass']}/{n['FAIL']}/{n['skip']}"
rows.append("suite passed/failed/skipped")
for v in versions:
    cells[(rows[-1], v)] = totals[v]
w = max(len(r) for r in rows)
cw = max([len(v) for v in versions] + [len(t) for t in totals.values()])
print(f"| {'':{w}} | " + " | ".join(f"{v:>{cw}}" for v in versions) + " |")
print(f"|{'-' * (w + 2)}|" + "|".join("-" * (cw + 2) for _ in versions) + "|")
for r in rows:
    print(f"| {r:{w}} | " + " | ".join(f"{cells.get((r, v), '-'):>{cw}}" for v in versions) + " |")
sys.exit(1 if any(s == "FAIL" for s in cells.values()) or any("/0/" not in t for t in totals.values()) else 0)
PY
