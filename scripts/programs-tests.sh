#!/bin/sh
# Real programs in a Debian rootfs, natively (chroot) and under rvisor,
# with identical output required (issue 5's "must work" list):
# tar czf/xzf of /usr/share, git init/add/commit/log, sqlite3 in WAL mode
# with 10,000 inserts in transactions, make building a small C project
# with gcc, find / -xdev | wc -l, sed -i, python3 -m venv then pip install
# of a local wheel. (The interactive bash over a pty is tests/tests/pty.rs.)
#
#   scripts/programs-tests.sh [SCENARIO...]
#
# Environment:
#   RVISOR_BIN        rvisor binary (default target/release/rvisor)
#   RVISOR_PROGROOT   the rootfs (default /var/tmp/rvisor-progs-rootfs); built
#                     with mmdebstrap if missing, from RVISOR_MIRROR
#                     (default http://deb.debian.org/debian)
#   RVISOR_PROG_OUT   outputs, one per scenario and side (default
#                     target/programs-tests)
#
# Needs root (chroot, mounts). Exit status 0 when every scenario matched.
set -eu

cd "$(dirname "$0")/.."
RVISOR_BIN=${RVISOR_BIN:-${CARGO_TARGET_DIR:-target}/release/rvisor}
ROOT=${RVISOR_PROGROOT:-/var/tmp/rvisor-progs-rootfs}
MIRROR=${RVISOR_MIRROR:-http://deb.debian.org/debian}
OUT=${RVISOR_PROG_OUT:-${CARGO_TARGET_DIR:-target}/programs-tests}
TIMEOUT=${RVISOR_PROG_TIMEOUT:-600}

if [ ! -x "$RVISOR_BIN" ]; then
    echo "no $RVISOR_BIN (cargo build --release -p rvisor, or RVISOR_BIN=...)" >&2
    exit 1
fi
if [ ! -x "$ROOT/usr/bin/git" ] || [ ! -x "$ROOT/usr/bin/sqlite3" ]; then
    command -v mmdebstrap >/dev/null || apt-get install -y mmdebstrap
    echo "building $ROOT with mmdebstrap from $MIRROR" >&2
    rm -rf "$ROOT.tmp"
    mmdebstrap --variant=minbase \
        --include=git,sqlite3,gcc,make,libc6-dev,python3,python3-venv,python3-pip,xz-utils,procps \
        bookworm "$ROOT.tmp" "deb $MIRROR bookworm main"
    mv "$ROOT.tmp" "$ROOT"
fi

# Inputs the scenarios use, inside the rootfs (read-only for them).
DATA=$ROOT/opt/rvisor-programs
rm -rf "$DATA"
mkdir -p "$DATA/proj" "$DATA/wheel/rvisor_demo" "$DATA/wheel/rvisor_demo-1.0.dist-info"
cat >"$DATA/proj/Makefile" <<'EOF'
CFLAGS = -O2 -Wall
OBJS = main.o util.o
demo: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: %.c util.h
	$(CC) $(CFLAGS) -c $<
clean:
	rm -f demo $(OBJS)
EOF
cat >"$DATA/proj/util.h" <<'EOF'
int fib(int n);
EOF
cat >"$DATA/proj/util.c" <<'EOF'
#include "util.h"
int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
EOF
cat >"$DATA/proj/main.c" <<'EOF'
#include <stdio.h>
#include "util.h"
int main(void) { printf("fib(25) = %d\n", fib(25)); return 0; }
EOF
echo 'GREETING = "hello from a local wheel"' >"$DATA/wheel/rvisor_demo/__init__.py"
printf 'Metadata-Version: 2.1\nName: rvisor-demo\nVersion: 1.0\n' \
    >"$DATA/wheel/rvisor_demo-1.0.dist-info/METADATA"
printf 'Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n' \
    >"$DATA/wheel/rvisor_demo-1.0.dist-info/WHEEL"
(
    cd "$DATA/wheel"
    {
        for f in rvisor_demo/__init__.py rvisor_demo-1.0.dist-info/METADATA \
            rvisor_demo-1.0.dist-info/WHEEL; do
            h=$(python3 -c "import hashlib,base64,sys;d=open(sys.argv[1],'rb').read();print(base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()+','+str(len(d)))" "$f")
            echo "$f,sha256=$h"
        done
        echo "rvisor_demo-1.0.dist-info/RECORD,,"
    } >rvisor_demo-1.0.dist-info/RECORD
    python3 -c "import zipfile,sys
z = zipfile.ZipFile('../rvisor_demo-1.0-py3-none-any.whl', 'w')
for f in sys.argv[1:]:
    z.write(f)
z.close()" rvisor_demo/__init__.py rvisor_demo-1.0.dist-info/METADATA \
        rvisor_demo-1.0.dist-info/WHEEL rvisor_demo-1.0.dist-info/RECORD
)
# 10,000 inserts in 100 transactions, WAL mode.
python3 - "$DATA/inserts.sql" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("PRAGMA journal_mode=WAL;\nCREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n")
    for tx in range(100):
        f.write("BEGIN;\n")
        for i in range(100):
            n = tx * 100 + i
            f.write(f"INSERT INTO t(v) VALUES('row {n}');\n")
        f.write("COMMIT;\n")
    f.write("SELECT count(*), sum(id), max(v) FROM t;\n")
EOF

scenario() {
    case $1 in
    tar)
        echo 'cd /tmp && tar czf share.tgz -C /usr share && mkdir x && tar xzf share.tgz -C x &&
              echo files: $(find x | wc -l) && diff -r /usr/share x/share && echo identical' ;;
    git)
        echo 'cd /tmp && git init -q r && cd r && git config user.email t@example.org &&
              git config user.name tester && echo one > a && mkdir d && echo two > d/b &&
              git add a d && GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z git commit -qm first &&
              echo three >> a && git commit -qam second --date=2026-01-02T00:00:00Z &&
              GIT_COMMITTER_DATE=2026-01-02T00:00:00Z git log --format="%s %an %ad" --date=iso &&
              git status --short && git gc -q && git fsck --no-progress && echo fsck ok' ;;
    sqlite)
        echo 'cd /tmp && sqlite3 db < /opt/rvisor-programs/inserts.sql &&
              sqlite3 db "PRAGMA journal_mode; PRAGMA integrity_check; SELECT count(*) FROM t WHERE v LIKE \"row 9%\";"' ;;
    make)
        echo 'cp -r /opt/rvisor-programs/proj /tmp/proj && cd /tmp/proj && make -s && ./demo &&
              make -s clean && ls' ;;
    find)
        echo 'find / -xdev -path /tmp -prune -o -print | wc -l' ;;
    sed)
        echo 'printf "alpha\nbeta\ngamma\n" > /tmp/f && sed -i -e s/beta/BETA/ -e 3d /tmp/f &&
              cat /tmp/f && ls /tmp' ;;
    venv)
        echo 'cd /tmp && python3 -m venv v && v/bin/pip install -q --no-index --no-cache-dir \
              --disable-pip-version-check /opt/rvisor-programs/rvisor_demo-1.0-py3-none-any.whl &&
              v/bin/python -c "import rvisor_demo; print(rvisor_demo.GREETING)" &&
              v/bin/pip list --disable-pip-version-check 2>/dev/null | grep rvisor' ;;
    *) echo "unknown scenario $1" >&2; return 1 ;;
    esac
}

. scripts/rootfs-run.sh

[ "$#" -eq 0 ] && set -- tar git sqlite make find sed venv
mkdir -p "$OUT"
fail=0
printf '| program | native | rvisor | same output |\n|---|---|---|---|\n'
for s in "$@"; do
    cmd=$(scenario "$s")
    row="| $s"
    for rt in native rvisor; do
        start=$(date +%s.%N)
        st=0
        "run_$rt" sh -c "$cmd" </dev/null >"$OUT/$s.$rt.out" 2>"$OUT/$s.$rt.err" || st=$?
        end=$(date +%s.%N)
        row="$row | exit $st, $(awk "BEGIN { printf \"%.1f\", $end - $start }") s"
        eval "st_$rt=$st"
    done
    if [ "$st_native" = 0 ] && [ "$st_rvisor" = 0 ] && cmp -s "$OUT/$s.native.out" "$OUT/$s.rvisor.out"; then
        row="$row | yes |"
    else
        row="$row | **no** (see $OUT/$s.*) |"
        fail=1
    fi
    echo "$row"
done
rm -rf "$DATA"
exit $fail
