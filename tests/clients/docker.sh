#!/bin/sh
# Docker (Debian docker.io) driving rvisor: a private dockerd with rvisor
# registered as a runtime, an image made by `docker import`, and the
# scenarios of issue 3, each compared with runc where the output should be
# identical. Usage: tests/clients/docker.sh   (root; starts and stops its
# own dockerd under $CLIENT_TEST_DIR/docker).
CLIENT=docker
. "$(dirname "$0")/lib.sh"

D=$WORK/docker
SOCK=$D/docker.sock
DOCKER=/usr/bin/docker
dk() { "$DOCKER" -H "unix://$SOCK" "$@"; }

start_dockerd() {
  mkdir -p "$D"
  printf '{"runtimes":{"rvisor":{"path":"%s"}}}\n' "$RVISOR_BIN" > "$D/daemon.json"
  /usr/sbin/dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$SOCK" \
    --pidfile "$D/dockerd.pid" --config-file "$D/daemon.json" \
    --exec-opt native.cgroupdriver=cgroupfs --iptables=false --ip-masq=false \
    --bridge=none > "$D/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  i=0
  until dk version >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 120 ] || ! kill -0 $DOCKERD_PID 2>/dev/null; then
      tail -20 "$D/dockerd.log"; echo "dockerd did not start"; exit 1
    fi
    sleep 0.5
  done
}

stop_dockerd() {
  dk ps -aq 2>/dev/null | xargs -r "$DOCKER" -H "unix://$SOCK" rm -f >/dev/null 2>&1
  kill "$DOCKERD_PID" 2>/dev/null
  i=0
  while kill -0 "$DOCKERD_PID" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
  kill -9 "$DOCKERD_PID" 2>/dev/null
}

start_dockerd
trap stop_dockerd EXIT
make_busybox_tar "$WORK/busybox.tar"
dk image inspect rvbusybox >/dev/null 2>&1 || \
  dk import -c 'CMD ["sh"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$WORK/busybox.tar" rvbusybox >/dev/null
if [ -n "${DEBIAN_ROOTFS:-}" ] && [ -d "$DEBIAN_ROOTFS" ]; then
  dk image inspect rvdebian >/dev/null 2>&1 || tar -C "$DEBIAN_ROOTFS" -c . | dk import - rvdebian >/dev/null
fi

# run RUNTIME ARGS... : stdout+stderr and "rc=N"
run() {
  rt=$1; shift
  out=$(dk run --rm --runtime="$rt" --network none "$@" 2>&1); rc=$?
  # docker 20.10's client sometimes adds this line after a failed create,
  # whatever the runtime
  out=$(printf '%s\n' "$out" | grep -v 'error waiting for container: context canceled')
  printf '%s\nrc=%s' "$out" "$rc"
}
# same NAME ARGS... : identical output under runc and rvisor (the runtime's
# own name in error messages aside)
same() {
  name=$1; shift
  want=$(run runc "$@" | sed 's/runc create failed: //'); got=$(run rvisor "$@" | sed 's/rvisor create failed: //')
  check "$name" "$want" "$got"
}
# tty COMMAND: run COMMAND under a pseudo-terminal (script), output with \r removed
# (docker's client echoes a NUL it sends as "^@" at a random place)
tty_run() { script -qec "$1" /dev/null | tr -d '\r\000' | sed 's/\^@//g'; }

same "echo hi" rvbusybox echo hi
same "exit code" rvbusybox sh -c 'exit 3'
same "-e" -e FOO=bar rvbusybox sh -c 'echo $FOO'
same "-w" -w /tmp rvbusybox pwd
same "-u 1000:1000" -u 1000:1000 rvbusybox id
same "hostname" --hostname box1 rvbusybox hostname
same "missing binary" rvbusybox /nonexistent
same "--read-only" --read-only rvbusybox sh -c 'touch /x 2>&1; echo $?'
same "--tmpfs" --read-only --tmpfs /run rvbusybox sh -c 'touch /run/x && ls /run'

HOSTDIR=$(mktemp -d)
echo from-host > "$HOSTDIR/in"
check "-v read" "$(printf 'from-host\nrc=0')" "$(run rvisor -v "$HOSTDIR:/data" rvbusybox cat /data/in)"
run rvisor -v "$HOSTDIR:/data" rvbusybox sh -c 'echo from-container > /data/out' >/dev/null
check "-v write reaches the host" "from-container" "$(cat "$HOSTDIR/out" 2>&1)"
check "-v :ro" "$(run runc -v "$HOSTDIR:/data:ro" rvbusybox sh -c 'echo x > /data/y')" \
  "$(run rvisor -v "$HOSTDIR:/data:ro" rvbusybox sh -c 'echo x > /data/y')"
rm -rf "$HOSTDIR"

# exec into a running container
C=$(dk run -d --runtime=rvisor --network none rvbusybox sleep 300)
check "exec" "in-exec" "$(dk exec "$C" echo in-exec 2>&1)"
dk exec "$C" sh -c 'exit 4'; check "exec exit code" 4 $?
check_match "exec -u" "^uid=1000[^ ]* gid=1000" "$(dk exec -u 1000:1000 "$C" id 2>&1)"
check "exec -e -w" "v /tmp" "$(dk exec -e V=v -w /tmp "$C" sh -c 'echo $V $(pwd)' 2>&1)"
# The gofer serving docker's overlay rootfs is host uid 65534 (an overlay of
# idmapped copies of its layers).
check "gofer is nobody on the image's overlay rootfs" "$NOBODY_MAP" \
  "$(gofer_map_of "$(dk inspect -f '{{.State.Pid}}' "$C")")"
RC=$(dk run -d --runtime=runc --network none rvbusybox sleep 300)
check "exec -it" "$(tty_run "$DOCKER -H unix://$SOCK exec -it $RC sh -c '[ -t 0 ] && echo yes'")" \
  "$(tty_run "$DOCKER -H unix://$SOCK exec -it $C sh -c '[ -t 0 ] && echo yes'")"
dk rm -f "$RC" >/dev/null
check_match "top" "sleep|PID" "$(dk top "$C" 2>&1)"
# pause / unpause
dk pause "$C" >/dev/null
check "pause" "paused" "$(dk inspect -f '{{.State.Status}}' "$C")"
dk unpause "$C" >/dev/null
check "unpause" "running" "$(dk inspect -f '{{.State.Status}}' "$C")"
check "exec after unpause" "ok" "$(dk exec "$C" echo ok 2>&1)"
# stop: sleep as pid 1 ignores SIGTERM -> SIGKILL after the timeout
dk stop -t 1 "$C" >/dev/null
check "stop (SIGKILL after timeout)" 137 "$(dk inspect -f '{{.State.ExitCode}}' "$C")"
dk rm "$C" >/dev/null

# stop with a TERM handler, kill -s USR1, logs
C=$(dk run -d --runtime=rvisor --network none rvbusybox sh -c 'trap "echo got USR1" USR1; trap "echo got TERM; exit 9" TERM; echo started; while true; do sleep 0.1; done')
sleep 1
dk kill -s USR1 "$C" >/dev/null; sleep 1
dk stop -t 10 "$C" >/dev/null
check "kill -s USR1 + stop + logs" "$(printf 'started\ngot USR1\ngot TERM')" "$(dk logs "$C" 2>&1)"
check "stop exit code (handler)" 9 "$(dk inspect -f '{{.State.ExitCode}}' "$C")"
dk rm "$C" >/dev/null

# run -it with a pty
IT="rvbusybox sh -c '[ -t 0 ] && [ -t 1 ] && echo yes'"
check "run -it" "$(tty_run "$DOCKER -H unix://$SOCK run --rm -it --network none --runtime=runc $IT")" \
  "$(tty_run "$DOCKER -H unix://$SOCK run --rm -it --network none --runtime=rvisor $IT")"

# a Debian image (docker import of a mmdebstrap minbase rootfs)
if dk image inspect rvdebian >/dev/null 2>&1; then
  same "debian: bash, dpkg, coreutils" rvdebian bash -c 'cat /etc/debian_version; echo $BASH_VERSION; dpkg-query -W -f="\${Package}\n" | wc -l; ls -1 /usr/bin | wc -l; id; head -1 /etc/passwd'
  same "debian: apt-get check, tar round trip" rvdebian bash -c 'apt-get check -qq && echo apt-ok; cd /tmp && mkdir d && echo x > d/f && tar cf t.tar d && rm -r d && tar xf t.tar && cat d/f'
  same "debian: -u nobody + --read-only" -u 65534:65534 --read-only rvdebian bash -c 'id; touch /x 2>&1; echo $?'
else
  echo "skip docker: debian image (set DEBIAN_ROOTFS to a Debian rootfs directory)"
fi

# limits
check "--pids-limit" "$(run runc --pids-limit 10 rvbusybox sh -c 'for i in $(seq 20); do sleep 2 & done 2>/dev/null; wait; echo done' | tail -2)" \
  "$(run rvisor --pids-limit 10 rvbusybox sh -c 'for i in $(seq 20); do sleep 2 & done 2>/dev/null; wait; echo done' | tail -2)"
M=$(run rvisor -m 64m rvbusybox sh -c 'x=$(head -c 300000000 /dev/zero | tr "\0" a); echo survived ${#x}')
check_match "-m 64m holds" "rc=137|Cannot allocate|rc=1" "$M"

summary
