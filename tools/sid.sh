#!/usr/bin/env bash
# CPython 3.14 for the test matrix.  Debian 12 has no 3.14 and its source
# package cannot be fetched, but Debian unstable's binary packages run in a
# root made by debootstrap.  This builds that root when it is missing (a few
# minutes, once: python3.14, gcc, and the programs the tests start), then runs
# a command inside it with the checkout mounted at the same path, so that
# relative paths and .venv-style folders work as they do outside.
#   tools/sid.sh CMD [ARG...]        e.g. tools/sid.sh python3.14 -V
#   FASTPROM_SID_ROOT   where the root lives (default /var/cache/fastprom-ci/sid-root)
# Needs root (debootstrap, chroot, mount).  One command at a time uses the
# root (a lock); the mounts are undone when the command ends.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${FASTPROM_SID_ROOT:-/var/cache/fastprom-ci/sid-root}
[ $# -gt 0 ] || { echo "usage: tools/sid.sh CMD [ARG...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "sid.sh: needs root (debootstrap, chroot, mount)" >&2; exit 2; }
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9

mounts=(proc sys dev dev/pts dev/shm "${here#/}")
unmount_all() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        if mountpoint -q "$root/${mounts[$i]}"; then umount -l "$root/${mounts[$i]}"; fi
    done
}
mount_all() {
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
    mount -t tmpfs -o size=2g tmpfs "$root/dev/shm"
    mkdir -p "$root$here"
    mount --bind "$here" "$root$here"
}
trap unmount_all EXIT
unmount_all

# Host files the root needs: name resolution, pip's configuration and the CA
# bundle it names, and the Prometheus 2, Alertmanager and Pushgateway
# binaries (statically linked but for libc) that the tests start, with
# Alertmanager's templates.
copy_host_files() {
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    [ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
    if [ -d /etc/xdg/pip ]; then mkdir -p "$root/etc/xdg" && cp -r /etc/xdg/pip "$root/etc/xdg/"; fi
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    # Alertmanager's default notification templates.
    if [ -d /usr/share/prometheus/alertmanager ]; then
        mkdir -p "$root/usr/share/prometheus"
        rm -rf "$root/usr/share/prometheus/alertmanager"
        cp -r /usr/share/prometheus/alertmanager "$root/usr/share/prometheus/alertmanager"
    fi
    local b
    for b in prometheus promtool prometheus-pushgateway prometheus-alertmanager; do
        if command -v "$b" >/dev/null 2>&1; then
            cp "$(command -v "$b")" "$root/usr/local/bin/$b"
        else
            echo "sid.sh: $b is not installed here (run-tests installs it); the tests that need it will fail" >&2
        fi
    done
}

if [ ! -f "$root/.fastprom-ready" ]; then
    echo "== building a Debian unstable root for CPython 3.14 at $root (a few minutes, once)"
    missing=()
    for b in debootstrap:debootstrap prometheus:prometheus prometheus-pushgateway:prometheus-pushgateway \
        prometheus-alertmanager:prometheus-alertmanager; do
        command -v "${b%%:*}" >/dev/null 2>&1 || missing+=("${b#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
    fi
    # --one-file-system: a mount left inside an old root is never descended into.
    rm -rf --one-file-system "$root"
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    debootstrap --variant=minbase \
        --include=python3.14,python3.14-venv,python3.14-dev,gcc,libc6-dev,ca-certificates \
        sid "$root" "$uri" >/dev/null
    mount_all
    copy_host_files
    # Unstable's index is often past its Valid-Until date.  chromium cannot
    # be configured inside debootstrap itself, so it comes in a second step.
    chroot "$root" apt-get -o Acquire::Check-Valid-Until=false update -qq
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -o Acquire::Check-Valid-Until=false install -y -qq \
        --no-install-recommends chromium valgrind wrk patchelf util-linux procps >/dev/null
    touch "$root/.fastprom-ready"
    unmount_all
fi

mount_all
copy_host_files
cd "$here"
chroot "$root" /usr/bin/env -C "$here" HOME=/root PATH=/usr/local/bin:/usr/bin:/bin CI="${CI:-}" "$@"
