#!/bin/sh
# containerd + ctr with the runc v2 shim, rvisor as its runc binary.
# Usage: tests/clients/containerd.sh (root; own containerd, stopped at exit)
CLIENT=containerd
. "$(dirname "$0")/lib.sh"

D=$WORK/containerd
SOCK=$D/containerd.sock
NS=rvisor-test
c() { ctr -a "$SOCK" -n "$NS" "$@"; }

mkdir -p "$D/root" "$D/state"
cat > "$D/config.toml" <<EOT
version = 2
root = "$D/root"
state = "$D/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
EOT
containerd --config "$D/config.toml" > "$D/containerd.log" 2>&1 &
CPID=$!
stop() {
  for t in $(c task ls -q 2>/dev/null); do c task delete -f "$t" >/dev/null 2>&1; done
  for t in $(c container ls -q 2>/dev/null); do c container delete "$t" >/dev/null 2>&1; done
  kill "$CPID" 2>/dev/null; sleep 1; kill -9 "$CPID" 2>/dev/null
}
trap stop EXIT
i=0
until ctr -a "$SOCK" version >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -gt 60 ] && { tail "$D/containerd.log"; exit 1; }; sleep 0.5
done
make_busybox_image_tar "$WORK/busybox-image.tar"
c images import "$WORK/busybox-image.tar" >/dev/null 2>&1
IMG=docker.io/library/rvbusybox:latest

N=0
crun() {
  rt=$1; shift; N=$((N + 1))
  out=$(c run --rm --runtime io.containerd.runc.v2 --runc-binary "$rt" "$@" 2>&1); rc=$?
  printf '%s\nrc=%s' "$out" "$rc"
}
same() {
  name=$1; shift
  a=$(crun /usr/sbin/runc "$@" | sed "s/runc$N/X/g")
  b=$(crun "$RVISOR_BIN" "$@" | sed "s/rvisor$N/X/g")
  check "$name" "$a" "$b"
}
check "ctr run echo" "$(printf "hi\nrc=0")" "$(crun "$RVISOR_BIN" $IMG t-echo-$$ echo hi)"
same "ctr run exit code" $IMG t-exit-$$ sh -c 'exit 3'
same "ctr run env" --env A=b $IMG t-env-$$ sh -c 'echo $A'
# detach, exec, kill
c run -d --runtime io.containerd.runc.v2 --runc-binary "$RVISOR_BIN" $IMG t-d-$$ sleep 100 >/dev/null 2>&1
check "ctr task exec" "$(printf 'in\nrc=0')" "$(c task exec --exec-id e1 t-d-$$ echo in 2>&1; echo rc=$?)"
check "ctr: gofer is nobody on the image's overlay rootfs" "$NOBODY_MAP" \
  "$(gofer_map_of "$(c task ls | awk '$1=="t-d-'$$'"{print $2}')")"
c task pause t-d-$$; check "ctr task pause" PAUSED "$(c task ls | awk '$1=="t-d-'$$'"{print $3}')"
c task resume t-d-$$; check "ctr task resume" RUNNING "$(c task ls | awk '$1=="t-d-'$$'"{print $3}')"
c task kill -s SIGKILL t-d-$$; sleep 1
check "ctr task kill" STOPPED "$(c task ls | awk '$1=="t-d-'$$'"{print $3}')"
c task delete t-d-$$ >/dev/null 2>&1; c container delete t-d-$$ >/dev/null 2>&1
summary
