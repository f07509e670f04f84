#!/usr/bin/env bash
# Builds the CPython interpreters the test matrix needs beyond the system's 3.11,
# from Debian 13's python3.13 source package, into a cache outside the clone:
#   $FASTPROM_PY_CACHE/3.13/bin/python3.13     (normal build)
#   $FASTPROM_PY_CACHE/3.13t/bin/python3.13t   (free-threaded, --disable-gil)
#   $FASTPROM_PY_CACHE/3.13t-tsan/bin/python3.13t
#                          (free-threaded and built with ThreadSanitizer; its
#                          suppressions for CPython's own known reports are in
#                          share/tsan-suppressions.txt beside it)
# An interpreter already in the cache is kept; delete its folder to rebuild.
# Usage: tools/interpreters.sh [3.13] [3.13t] [3.13t-tsan]   (3.13 and 3.13t when none is named)
# Prints nothing but progress; exits non-zero when a build fails.
set -euo pipefail
cache=${FASTPROM_PY_CACHE:-/var/cache/fastprom-ci/python}
flavours=("$@")
[ ${#flavours[@]} -gt 0 ] || flavours=(3.13 3.13t)

need=()
for f in "${flavours[@]}"; do
    case "$f" in
        3.13) exe="$cache/3.13/bin/python3.13" ;;
        3.13t|3.13t-tsan) exe="$cache/$f/bin/python3.13t" ;;
        *) echo "interpreters.sh: unknown flavour '$f' (known: 3.13, 3.13t, 3.13t-tsan)" >&2; exit 2 ;;
    esac
    if [ -x "$exe" ] && "$exe" -c 'import ssl, zlib, ctypes' 2>/dev/null; then
        echo "== $f: cached at $exe"
    else
        need+=("$f")
    fi
done
[ ${#need[@]} -gt 0 ] || exit 0

mkdir -p "$cache"
src="$cache/src"
if [ ! -x "$src/python3.13/configure" ]; then
    echo "== downloading Debian 13's python3.13 source package"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    # Build dependencies of the interpreter's optional modules we rely on.
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        build-essential dpkg-dev libssl-dev zlib1g-dev libffi-dev libsqlite3-dev libbz2-dev \
        liblzma-dev libreadline-dev libexpat1-dev uuid-dev >/dev/null
    d=$(mktemp -d)
    mkdir -p "$d/lists/partial" "$d/debs"
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" >"$d/sources.list"
    opts=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$d/lists" -o "Dir::Cache::archives=$d/debs")
    apt-get "${opts[@]}" update -qq
    (cd "$d" && apt-get "${opts[@]}" source --download-only -qq python3.13)
    rm -rf "$src"; mkdir -p "$src/python3.13"
    tar -xf "$(ls "$d"/python3.13_*.orig.tar.* | grep -v "\.asc$" | head -1)" -C "$src/python3.13" --strip-components=1
    rm -rf "$d"
fi

for f in "${need[@]}"; do
    echo "== building CPython $f (a few minutes)"
    b=$(mktemp -d)
    extra=()
    case "$f" in
        3.13t) extra=(--disable-gil) ;;
        3.13t-tsan) extra=(--disable-gil --with-thread-sanitizer) ;;
    esac
    rm -rf "${cache:?}/$f"
    (cd "$b" && "$src/python3.13/configure" -q --prefix="$cache/$f" --without-ensurepip "${extra[@]}" >/dev/null \
        && make -s -j"$(nproc)" >/dev/null 2>&1 && make -s install >/dev/null 2>&1)
    rm -rf "$b"
    if [ "$f" = 3.13t-tsan ]; then
        mkdir -p "$cache/$f/share"
        cp "$src/python3.13/Tools/tsan/suppressions_free_threading.txt" "$cache/$f/share/tsan-suppressions.txt"
        exe="$cache/$f/bin/python3.13t"
    else
        exe="$cache/$f/bin/python$f"
    fi
    "$exe" -c 'import ssl, zlib, ctypes, sys; print("==", sys.version)'
done
