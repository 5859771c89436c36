#!/usr/bin/env bash
# Installs what rvisor needs on a Debian machine, builds rvisor and installs
# it as /usr/local/bin/rvisor. Run as root:
#
#   ./scripts/install.sh              # (as root) dependencies, build, install
#   ./scripts/install.sh --deps-only  # (as root) dependencies only (scripts/test.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deps_only=0
for arg in "$@"; do
    case "$arg" in
        --deps-only) deps_only=1 ;;
        -h | --help)
            sed -n '2,7p' "$0"
            exit 0
            ;;
        *)
            echo "install.sh: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

warn() { echo "install.sh: warning: $*" >&2; }
log() { echo "install.sh: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    echo "install.sh: must run as root" >&2
    exit 1
fi

# Required: compiler and static libc (tests and bench build small static C
# programs), static busybox and python3 (differential tests), the DejaVu
# font (bench draws its charts with it).
required=(build-essential busybox-static python3 ca-certificates runc fonts-dejavu-core)
# runc: tests/oci and bench compare rvisor with it. Optional: runsc
# (benchmarks), mmdebstrap (bench's Debian rootfs for the macro rows).
optional=(runsc mmdebstrap)

missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

export DEBIAN_FRONTEND=noninteractive
todo=$(missing "${required[@]}" "${optional[@]}")
if [ "$deps_only" = 0 ] || [ -n "$todo" ]; then
    log "apt-get update"
    apt-get update
    apt-get install -y --no-install-recommends "${required[@]}"
    for p in "${optional[@]}"; do
        if [ -n "$(missing "$p")" ]; then
            apt-get install -y --no-install-recommends "$p" ||
                warn "could not install $p; benchmarks will show it as failed"
        fi
    done
else
    log "Debian packages already installed: ${required[*]} ${optional[*]}"
fi

# Rust: only if cargo is absent.
if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: installing the stable Rust toolchain with rustup"
    if apt-get install -y --no-install-recommends rustup 2>/dev/null; then
        rustup default stable
    else
        apt-get install -y --no-install-recommends curl
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    fi
    export PATH="$HOME/.cargo/bin:$PATH"
fi

if [ "$deps_only" = 1 ]; then
    exit 0
fi

log "building rvisor (release)"
cargo build --release -p rvisor
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
install -m 0755 "$target_dir/release/rvisor" /usr/local/bin/rvisor
log "installed /usr/local/bin/rvisor"
