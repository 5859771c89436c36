# Shared helpers for the client tests (docker, containerd, podman driving
# rvisor). Sourced by the per-client scripts.
set -u

RVISOR_BIN=${RVISOR_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/rvisor}
WORK=${CLIENT_TEST_DIR:-/var/tmp/rvisor-clients}
PASS=0
FAIL=0
FAILED=""

say() { echo "[$CLIENT] $*" >&2; }

# check NAME EXPECTED ACTUAL
check() {
  if [ "$2" = "$3" ]; then
    PASS=$((PASS + 1)); echo "ok   $CLIENT: $1"
  else
    FAIL=$((FAIL + 1)); FAILED="$FAILED $1"
    echo "FAIL $CLIENT: $1"; echo "     expected: $(printf %s "$2" | head -c 400)"; echo "     actual:   $(printf %s "$3" | head -c 400)"
  fi
}

# check_match NAME REGEX ACTUAL
check_match() {
  if printf '%s' "$3" | grep -Eq -- "$2"; then
    PASS=$((PASS + 1)); echo "ok   $CLIENT: $1"
  else
    FAIL=$((FAIL + 1)); FAILED="$FAILED $1"
    echo "FAIL $CLIENT: $1"; echo "     wanted /$2/ in: $(printf %s "$3" | head -c 400)"
  fi
}

# The uid_map (first line) of the gofer serving the container whose host
# pid (the one the runtime wrote to --pid-file) is $1: a child of that
# process or of its parent.
gofer_map_of() {
  g=""
  for c in $(cat /proc/"$1"/task/*/children /proc/"$(ps -o ppid= -p "$1" | tr -d ' ')"/task/*/children 2>/dev/null); do
    case "$(tr '\0' ' ' < /proc/"$c"/cmdline 2>/dev/null)" in rvisor-gofer*) g=$c ;; esac
  done
  awk 'NR==1{print $1, $2, $3}' /proc/"$g"/uid_map 2>&1
}

# The gofer's default map: host uid 65534 (nobody) for ids from 0.
NOBODY_MAP="0 65534 4294901761"

summary() {
  echo "$CLIENT: $PASS passed, $FAIL failed${FAILED:+ ($FAILED )}"
  [ "$FAIL" = 0 ]
}

# A busybox rootfs tarball (for docker import / ctr import).
make_busybox_tar() {
  tar_out=$1
  [ -s "$tar_out" ] && return 0
  d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/root" "$d/home/user"
  cp /bin/busybox "$d/bin/busybox"
  for c in $("$d/bin/busybox" --list); do [ "$c" = busybox ] || ln -s busybox "$d/bin/$c"; done
  echo "root:x:0:0:root:/root:/bin/sh" > "$d/etc/passwd"
  echo "user:x:1000:1000:user:/home/user:/bin/sh" >> "$d/etc/passwd"
  printf 'root:x:0:\nuser:x:1000:\n' > "$d/etc/group"
  chmod 1777 "$d/tmp"
  tar -C "$d" -cf "$tar_out" .
  rm -rf "$d"
}

# A docker-save format tarball of the busybox rootfs (for ctr and podman).
make_busybox_image_tar() {
  img_out=$1
  [ -s "$img_out" ] && return 0
  make_busybox_tar "$WORK/busybox.tar"
  d=$(mktemp -d)
  mkdir -p "$d/l"
  cp "$WORK/busybox.tar" "$d/l/layer.tar"
  diff=$(sha256sum "$d/l/layer.tar" | cut -d' ' -f1)
  cfg='{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$diff'"]}}'
  printf '%s' "$cfg" > "$d/cfg.json"
  c=$(sha256sum "$d/cfg.json" | cut -d' ' -f1)
  mv "$d/cfg.json" "$d/$c.json"
  printf '[{"Config":"%s.json","RepoTags":["rvbusybox:latest"],"Layers":["l/layer.tar"]}]' "$c" > "$d/manifest.json"
  tar -C "$d" -cf "$img_out" manifest.json "$c.json" l
  rm -rf "$d"
}
