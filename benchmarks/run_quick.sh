#!/usr/bin/env bash
# Runs every benchmark with --quick, one after another (the CI smoke run). Timings are printed, never
# checked: a script fails only if it exits non-zero (a crash, a failed correctness check, or more than
# QUICK_TIMEOUT seconds). http.py skips itself when wrk is missing; "instructions" is asgi.py --instructions
# (instruction counts under callgrind), which skips itself when valgrind is missing.
#   PYTHON      the interpreter with fastprom and the bench packages (default: python3)
#   BENCH_OUT   if set, a directory for each script's JSON (<script>.json)
#   arguments   names of the scripts to run (default: all of them)
set -u
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
limit=${QUICK_TIMEOUT:-300}
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(micro render protobuf asgi instructions endpoint memory multiproc_scrape http threads)
[ -z "${BENCH_OUT:-}" ] || mkdir -p "$BENCH_OUT"
passed=0 failed=0 failures=""
for s in "${scripts[@]}"; do
    s=${s%.py}
    script=$s mode=()
    [ "$s" != instructions ] || { script=asgi mode=(--instructions); }
    echo "=== $script.py --quick ${mode[*]}"
    json=(); [ -z "${BENCH_OUT:-}" ] || json=(--json "$BENCH_OUT/$s.json")
    start=$SECONDS
    timeout --kill-after=30 "$limit" "$py" "$here/$script.py" --quick "${mode[@]}" "${json[@]}"
    rc=$?
    echo "=== $script.py ${mode[*]}: exit status $rc after $((SECONDS - start)) s"
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=" $script.py${mode[*]:+ ${mode[*]}}"; fi
done
[ $failed -eq 0 ] || echo "failed:$failures"
echo "benchmarks: $passed passed, $failed failed"
[ $failed -eq 0 ]
