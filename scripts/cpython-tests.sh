#!/bin/sh
# CPython's own regression tests, natively (chroot) and under rvisor, in a
# Debian bookworm rootfs with python3 and libpython3.11-testsuite.
#
#   scripts/cpython-tests.sh [MODULE...]
#
# Without arguments it runs the process/thread/signal modules of issue 4.
# A MODULE may carry regrtest options after a colon, e.g.
# 'test_multiprocessing_fork:-m WithProcessesTestPool'.
#
# Environment:
#   RVISOR_BIN      rvisor binary (default target/release/rvisor)
#   RVISOR_PYROOT   the rootfs (default /var/tmp/rvisor-pyroot); built with
#                   mmdebstrap if missing, from RVISOR_MIRROR
#                   (default http://deb.debian.org/debian)
#   RVISOR_CPY_OUT  logs, one per module and runtime (default target/cpython-tests)
#   RVISOR_CPY_TIMEOUT  seconds per module and runtime (default 1200)
#
# Needs root (chroot, mounts, rvisor). Long: not part of scripts/test.sh.
# Prints one table row per module: tests run, failures, errors, skipped,
# for native and rvisor; "crash" when unittest printed no summary (killed,
# timed out), with the log to look at.
set -eu

cd "$(dirname "$0")/.."
RVISOR_BIN=${RVISOR_BIN:-target/release/rvisor}
ROOT=${RVISOR_PYROOT:-/var/tmp/rvisor-pyroot}
MIRROR=${RVISOR_MIRROR:-http://deb.debian.org/debian}
OUT=${RVISOR_CPY_OUT:-target/cpython-tests}
TIMEOUT=${RVISOR_CPY_TIMEOUT:-1200}

if [ "$#" -eq 0 ]; then
    set -- test_signal test_threading test_subprocess test_wait4 test_fork1 \
        test_posix test_thread test_threadsignals \
        'test_multiprocessing_fork:-m WithProcessesTestProcess -m WithProcessesTestQueue -m WithProcessesTestPool -m WithProcessesTestLock -m WithProcessesTestSemaphore -m WithProcessesTestCondition -m WithProcessesTestEvent -m WithProcessesTestConnection'
fi

if [ ! -x "$RVISOR_BIN" ]; then
    echo "no $RVISOR_BIN (cargo build --release -p rvisor, or RVISOR_BIN=...)" >&2
    exit 1
fi
if [ ! -e "$ROOT/usr/lib/python3.11/test/regrtest.py" ]; then
    command -v mmdebstrap >/dev/null || apt-get install -y mmdebstrap
    echo "building $ROOT with mmdebstrap from $MIRROR" >&2
    mmdebstrap --variant=minbase --include=python3,libpython3.11-testsuite \
        bookworm "$ROOT" "deb $MIRROR bookworm main"
fi
mkdir -p "$OUT/native" "$OUT/rvisor"

. scripts/rootfs-run.sh

# Reads a log and prints "ran failures errors skipped" from unittest's
# summary, or "crash".
counts() {
    awk '
        /^Ran [0-9]+ tests? in / { ran = $2; seen = 1 }
        /^(OK|FAILED)( \(|$)/ && seen {
            f = 0; e = 0; s = 0
            n = split($0, parts, /[(), ]+/)
            for (i = 1; i <= n; i++) {
                if (parts[i] ~ /^failures=/) f = substr(parts[i], 10)
                if (parts[i] ~ /^errors=/) e = substr(parts[i], 8)
                if (parts[i] ~ /^skipped=/) s = substr(parts[i], 9)
            }
            done = 1
        }
        END {
            if (done) printf "%s %s %s %s\n", ran, f, e, s
            else print "crash"
        }' "$1"
}

printf '| module | native: ran / fail / error / skip | rvisor: ran / fail / error / skip |\n'
printf '|---|---|---|\n'
for spec in "$@"; do
    module=${spec%%:*}
    opts=
    [ "$module" != "$spec" ] && opts=${spec#*:}
    for rt in native rvisor; do
        log="$OUT/$rt/$module.log"
        # shellcheck disable=SC2086 # opts is a list of regrtest options
        status=0
        "run_$rt" python3 -m test -v $opts "$module" </dev/null >"$log" 2>&1 || status=$?
        echo "[cpython-tests] $rt exit status $status" >>"$log"
    done
    row="| $module"
    for rt in native rvisor; do
        read -r ran fail err skip <<EOF
$(counts "$OUT/$rt/$module.log")
EOF
        if [ "$ran" = crash ]; then
            row="$row | crash (see $OUT/$rt/$module.log)"
        else
            row="$row | $ran / $fail / $err / $skip"
        fi
    done
    echo "$row |"
done
