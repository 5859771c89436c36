#!/bin/sh
# podman --runtime rvisor (conmon), private storage.
# Usage: tests/clients/podman.sh (root)
CLIENT=podman
. "$(dirname "$0")/lib.sh"

D=$WORK/podman
p() { podman --root "$D/root" --runroot "$D/runroot" --cgroup-manager cgroupfs --events-backend file "$@"; }
mkdir -p "$D"
make_busybox_image_tar "$WORK/busybox-image.tar"
p load -i "$WORK/busybox-image.tar" >/dev/null 2>&1
U="--ulimit nofile=20000:20000 --ulimit nproc=20000:20000"
prun() {
  rt=$1; shift
  out=$(p --runtime "$rt" run --rm --network none $U "$@" 2>&1); rc=$?
  printf '%s\nrc=%s' "$out" "$rc"
}
same() {
  name=$1; shift
  check "$name" "$(prun /usr/sbin/runc "$@")" "$(prun "$RVISOR_BIN" "$@")"
}
check "podman run echo" "$(printf "hi\nrc=0")" "$(prun "$RVISOR_BIN" rvbusybox echo hi)"
same "podman exit code" rvbusybox sh -c 'exit 3'
same "podman -e -w" -e A=b -w /tmp rvbusybox sh -c 'echo $A $(pwd)'
C=$(p --runtime "$RVISOR_BIN" run -d --network none $U rvbusybox sleep 100 2>/dev/null)
check "podman exec" "$(printf 'in\nrc=0')" "$(p --runtime "$RVISOR_BIN" exec "$C" echo in 2>&1; echo rc=$?)"
check "podman: gofer is nobody on the image's overlay rootfs" "$NOBODY_MAP" \
  "$(gofer_map_of "$(p inspect -f '{{.State.Pid}}' "$C")")"
p --runtime "$RVISOR_BIN" rm -f "$C" >/dev/null 2>&1
summary
