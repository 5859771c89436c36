#!/usr/bin/env bash
# Docker, containerd and podman driving rvisor as their OCI runtime, each
# scenario compared with runc. Starts private daemons and stops them.
#   scripts/client-tests.sh [docker] [containerd] [podman]   (default: all)
# Needs root; installs docker.io, containerd, podman, busybox-static and
# util-linux (script) when missing. Builds rvisor first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v containerd >/dev/null || need+=(containerd)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v script >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# A small Debian rootfs for `docker import` (mmdebstrap, from the configured
# apt sources' suite); kept between runs.
export DEBIAN_ROOTFS=${DEBIAN_ROOTFS:-/var/tmp/rvisor-debian-minbase}
if [ ! -x "$DEBIAN_ROOTFS/bin/bash" ]; then
    command -v mmdebstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
    suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
    rm -rf "$DEBIAN_ROOTFS"
    mmdebstrap --quiet --variant=minbase "$suite" "$DEBIAN_ROOTFS" ||
        { echo "client-tests: mmdebstrap failed; the Debian image tests will be skipped" >&2; rm -rf "$DEBIAN_ROOTFS"; }
fi
cargo build --release -p rvisor
export RVISOR_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/rvisor"

clients=("$@")
[ ${#clients[@]} -eq 0 ] && clients=(docker containerd podman)
status=0
for c in "${clients[@]}"; do
    sh "tests/clients/$c.sh" || status=1
done
exit $status
