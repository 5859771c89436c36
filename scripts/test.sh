#!/usr/bin/env bash
# The project's test command (what .ci/run calls): installs missing
# dependencies (when root), builds rvisor, checks formatting and lints, and
# runs every test of the workspace against the release binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" = 0 ]; then
    ./scripts/install.sh --deps-only
else
    echo "test.sh: not root, skipping dependency installation (scripts/install.sh --deps-only)" >&2
fi
if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

set -x
cargo build --release -p rvisor
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RVISOR_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/rvisor" \
    cargo test --workspace --release --no-fail-fast

# Benchmark smoke test (about a minute): every runtime, small sizes. No
# thresholds: numbers are for people; only a crash of bench fails here.
bench_out=$(mktemp -d)
cargo run -p bench --release -- --quick --out "$bench_out"
rm -rf "$bench_out"

# docker, containerd and podman driving rvisor (about 30 s; installs the
# clients when missing). Skip with RVISOR_SKIP_CLIENTS=1.
if [ "${RVISOR_SKIP_CLIENTS:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
    ./scripts/client-tests.sh
fi

# Real programs (tar, git, sqlite3 WAL, make+gcc, find, sed -i, venv+pip) in a
# Debian rootfs, natively and under rvisor (about 2 minutes; builds the
# rootfs with mmdebstrap the first time). Skip with RVISOR_SKIP_PROGRAMS=1.
if [ "${RVISOR_SKIP_PROGRAMS:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
    ./scripts/programs-tests.sh
fi
