#!/usr/bin/env bash
# Builds tests/c/stress.c with the C core three ways and runs each build:
#   plain    -O2
#   tsan     -fsanitize=thread
#   asan     -fsanitize=address,undefined -fno-sanitize-recover=undefined
# Outputs go to tests/c/build/ (git-ignored).  Exits non-zero if any build
# or run fails; the last line is "N passed, M failed".
#
# Iterations per writer thread (multiples of 80) can be overridden with
# STRESS_ITERS_PLAIN, STRESS_ITERS_TSAN, STRESS_ITERS_ASAN; the defaults
# keep each run to seconds on 2 cores.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$here/build"
mkdir -p "$build"

CC="${CC:-gcc}"
common=(-std=c11 -Wall -Wextra -Werror -I"$root/src/core")
srcs=("$here/stress.c" "$root"/src/core/*.c)
libs=(-pthread -lm)

export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

passed=0
failed=0

# run_one NAME ITERATIONS CFLAGS...
run_one() {
    local name=$1 iters=$2
    shift 2
    local exe="$build/stress-$name" log="$build/stress-$name.log"
    echo "== $name: $CC ${common[*]} $* (iterations $iters)"
    if ! "$CC" "${common[@]}" "$@" "${srcs[@]}" -o "$exe" "${libs[@]}"; then
        echo "FAILED $name: build"
        failed=$((failed + 1))
        return
    fi
    local rc=0
    timeout -k 10 360 "$exe" "$iters" >"$log" 2>&1 || rc=$?
    # ThreadSanitizer refuses some address-space layouts; retry without ASLR.
    if [ "$rc" -ne 0 ] && grep -q "unexpected memory mapping" "$log" && command -v setarch >/dev/null; then
        echo "($name: retrying with address randomisation off)"
        rc=0
        timeout -k 10 360 setarch "$(uname -m)" -R "$exe" "$iters" >"$log" 2>&1 || rc=$?
    fi
    # Sanitizer reports can be long: show the start of the log and its end.
    if [ "$(wc -l <"$log")" -gt 120 ]; then
        head -n 80 "$log"
        echo "... ($(wc -l <"$log") lines in $log)"
        tail -n 20 "$log"
    else
        cat "$log"
    fi
    if [ "$rc" -eq 0 ]; then
        echo "ok $name"
        passed=$((passed + 1))
    else
        echo "FAILED $name: exit status $rc"
        failed=$((failed + 1))
    fi
}

run_one plain "${STRESS_ITERS_PLAIN:-120000}" -O2
run_one tsan "${STRESS_ITERS_TSAN:-40000}" -O1 -g -fsanitize=thread
run_one asan "${STRESS_ITERS_ASAN:-80000}" -O1 -g -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=undefined

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
