#!/usr/bin/env bash
# Coverage-guided fuzzing: the C core with libFuzzer (store_open.c: store
# files as a worker opens them; render.c: operation programs on a fresh
# store and every exposition writer), the content negotiation with atheris
# (negotiation.py).
#
#   tests/fuzz/run.sh             short form: FUZZ_TIME seconds per target (default 30)
#   tests/fuzz/run.sh --full      long form: FUZZ_FULL_TIME seconds per target (default 600)
#   tests/fuzz/run.sh --time N    N seconds per target
#   tests/fuzz/run.sh ... TARGET...   only these (store_open, render, negotiation)
#   FUZZ_SEED=N                   libFuzzer's random seed (default: a new one each run);
#                                 run-tests fixes it, so a CI run can be repeated
#
# Installs what is missing: Debian's clang-14 and libclang-rt-14-dev, and
# atheris into the project's .venv (made, with fastprom, when missing).
# Seeds are made at run time (make_seeds.py, store_seeds.c); corpora grow
# in build/fuzz/corpus/<target> across runs, findings land in
# build/fuzz/findings/<target>/.  Each target prints one summary line with
# the executions libFuzzer counted; the last line is "N passed, M failed".
# Exits non-zero if a build failed or any target found a crash, a leak, a
# timeout or an out-of-memory.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/build/fuzz"

seconds="${FUZZ_TIME:-30}"
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --full) seconds="${FUZZ_FULL_TIME:-600}" ;;
        --time) shift; seconds="$1" ;;
        store_open|render|negotiation) targets+=("$1") ;;
        *) echo "usage: $0 [--full | --time SECONDS] [store_open] [render] [negotiation]" >&2; exit 2 ;;
    esac
    shift
done
[ ${#targets[@]} -gt 0 ] || targets=(store_open render negotiation)
case "$seconds" in ''|*[!0-9]*) echo "$0: not a number of seconds: $seconds" >&2; exit 2 ;; esac

# ---- tools ------------------------------------------------------------------

CC=clang-14
if ! command -v "$CC" >/dev/null 2>&1 || ! dpkg -s libclang-rt-14-dev >/dev/null 2>&1; then
    echo "== installing Debian packages: clang-14 libclang-rt-14-dev"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq clang-14 libclang-rt-14-dev >/dev/null || exit 1
fi

PY="$root/.venv/bin/python"
if [ ! -x "$PY" ]; then
    echo "== creating .venv with fastprom"
    python3 -m venv "$root/.venv" || exit 1
    "$PY" -m pip install -q "$root" || exit 1
fi
if ! "$PY" -c "import fastprom" 2>/dev/null; then
    echo "== fastprom does not import: installing it into .venv"
    "$PY" -m pip install -q --no-deps "$root" || exit 1
fi
if ! "$PY" -c "import atheris" 2>/dev/null; then
    echo "== installing atheris into .venv"
    "$PY" -m pip install -q atheris || exit 1
fi

# ---- builds -------------------------------------------------------------------

mkdir -p "$work/bin" "$work/corpus" "$work/findings" "$work/logs"
common=(-std=c11 -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all -I"$root/src/core")
failed=0
passed=0
build() { # NAME SOURCE FLAGS...
    local name=$1 src=$2
    shift 2
    if ! "$CC" "${common[@]}" "$@" "$src" "$root"/src/core/*.c -o "$work/bin/$name" -lm -pthread; then
        echo "FAILED $name: build"
        return 1
    fi
}
echo "== building with $CC"
for t in "${targets[@]}"; do
    case "$t" in
        store_open|render) build "$t" "$here/$t.c" -fsanitize=fuzzer,address,undefined || failed=$((failed + 1)) ;;
    esac
done
# Stores left by a crash need the crash points of a debug build.
build store_seeds "$here/store_seeds.c" -DFASTPROM_DEBUG -fsanitize=address,undefined || failed=$((failed + 1))

# ---- seeds ----------------------------------------------------------------------

seeds="$work/seeds"
rm -rf "$seeds"
echo "== making seeds"
if ! "$PY" "$here/make_seeds.py" "$seeds" ||
   ! ASAN_OPTIONS=detect_leaks=1 "$work/bin/store_seeds" "$seeds/store_open" "$seeds"/raw/*; then
    echo "FAILED seeds"
    failed=$((failed + 1))
fi

# ---- runs -------------------------------------------------------------------------

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
summaries=()

run_target() { # NAME MAX_LEN COMMAND...
    local name=$1 max_len=$2
    shift 2
    local corpus="$work/corpus/$name" found="$work/findings/$name" log="$work/logs/$name.log"
    mkdir -p "$corpus" "$found"
    local before
    before=$(ls "$found" | grep -cv "^slow-unit-")
    echo "== fuzzing $name for $seconds s"
    local rc=0
    # A slow unit (written when one input took long, as on a loaded machine)
    # is not a finding; a hang past -timeout is.
    # The time limit is libFuzzer's; `timeout` only guards against a run
    # that cannot stop (a hang outside any input).
    timeout -k 10 $((seconds + 120)) "$@" -max_total_time="$seconds" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -timeout=30 -report_slow_units=30 -rss_limit_mb=2048 \
        -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$found/" "$corpus" "$seeds/$name" \
        >"$log" 2>&1 || rc=$?
    local execs runs_line after kind
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
    after=$(ls "$found" | grep -cv "^slow-unit-")
    if [ "$rc" -eq 0 ] && [ "$after" -eq "$before" ]; then
        passed=$((passed + 1))
        kind="no findings"
    else
        failed=$((failed + 1))
        kind=$(grep -m 1 -oE "ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer): [a-z-]+[^(]*|runtime error: .*|fuzz check failed: .*|fails its check: .*|Uncaught Python exception" "$log")
        [ -n "$kind" ] || kind="exit status $rc"
        # The report, for the log of whoever runs this.
        grep -v -E '^#[0-9]+|^\s*(NEW_FUNC|INFO)|^"' "$log" | tail -n 60
        kind="FOUND: $kind; input in $found/ ($((after - before)) new), log $log"
    fi
    summaries+=("fuzz $name: ${execs:-?} executions in $seconds s, $kind")
    echo "${summaries[-1]}"
}

for t in "${targets[@]}"; do
    case "$t" in
        store_open) [ -x "$work/bin/store_open" ] && run_target store_open 65536 "$work/bin/store_open" ;;
        render) [ -x "$work/bin/render" ] && run_target render 16384 "$work/bin/render" ;;
        negotiation) run_target negotiation 8192 "$PY" "$here/negotiation.py" ;;
    esac
done

echo "== summary"
for s in "${summaries[@]}"; do echo "$s"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
