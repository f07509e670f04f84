#!/usr/bin/env bash
# The framework range pyproject declares, both ends: the oldest FastAPI and
# Starlette it allows (fastapi 0.133.0 with starlette 1.7.0) and the newest
# on PyPI, each in a virtual environment of its own, running the tests that
# serve FastAPI and Starlette apps through real uvicorn servers.
#   tools/frameworks.sh [oldest] [newest]   (both when none is named)
#   PYTHON        the interpreter (default: python3)
#   FASTPROM_VENV_CACHE   where the environments live between runs
#                         (default: /var/cache/fastprom-ci/venvs)
# Extra pytest arguments go in FASTPROM_PYTEST_ARGS.  Exits non-zero when a run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
cache=${FASTPROM_VENV_CACHE:-/var/cache/fastprom-ci/venvs}
ends=("$@")
[ ${#ends[@]} -gt 0 ] || ends=(oldest newest)
# The oldest pyproject allows: Starlette 1.7 is the first to leave the
# matched route in the scope, which route templates of plain Starlette apps
# and mounts are read from; FastAPI 0.133 is the first that allows it.
oldest=("fastapi==0.133.0" "starlette==1.7.0")
newest=("fastapi" "starlette")
# prometheus-fastapi-instrumentator needs a newer Starlette than the oldest
# end, so the comparison tests against it are left out here.
tests=(tests/test_instrumentator.py tests/test_limits.py tests/test_views.py tests/test_servers.py)
status=0
for end in "${ends[@]}"; do
    case "$end" in
        oldest) pins=("${oldest[@]}") ;;
        newest) pins=("${newest[@]}") ;;
        *) echo "frameworks.sh: unknown end '$end' (oldest, newest)" >&2; exit 2 ;;
    esac
    v="$cache/frameworks-$end-$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [ -x "$v/bin/python" ] || "$py" -m venv "$v"
    "$v/bin/python" -m pip install -q --upgrade pip
    "$v/bin/python" -m pip install -q --upgrade "${pins[@]}" "pytest>=7" "hypothesis>=6" "prometheus_client>=0.20" \
        "uvicorn[standard]>=0.23" "httpx>=0.24" "websockets>=11" "gunicorn>=21" "uvicorn-worker>=0.2" \
        "granian>=2.0" "hypercorn>=0.16" "opentelemetry-api>=1.20" "opentelemetry-sdk>=1.20"
    "$v/bin/python" -m pip install -q --force-reinstall --no-deps .
    "$v/bin/python" -m pip install -q --no-deps --upgrade "${pins[@]}"
    got=$("$v/bin/python" -c 'import fastapi, starlette; print(f"fastapi {fastapi.__version__}, starlette {starlette.__version__}")')
    echo "== $end: $got"
    # shellcheck disable=SC2086
    if ! "$v/bin/python" -m pytest -q -p no:cacheprovider -k "not pfi" "${tests[@]}" ${FASTPROM_PYTEST_ARGS:-}; then
        echo "== $end ($got): FAILED"
        status=1
    fi
done
exit $status
