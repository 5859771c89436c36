# Sourced by scripts/cpython-tests.sh and scripts/programs-tests.sh: run a
# command in the Debian rootfs $ROOT natively or under rvisor ($RVISOR_BIN),
# each within $TIMEOUT seconds.

# The native run: a private mount namespace with /proc, /dev and a fresh
# /tmp in the rootfs, and the same clean environment rvisor gives.
run_native() {
    timeout -k 10 "$TIMEOUT" unshare -m --propagation private sh -c '
        root=$1; shift
        mount -t proc proc "$root/proc" &&
        mount --rbind /dev "$root/dev" &&
        mount -t tmpfs tmpfs "$root/tmp" &&
        exec chroot "$root" /usr/bin/env -i \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root "$@"' sh "$ROOT" "$@"
}

run_rvisor() {
    timeout -k 10 "$TIMEOUT" "$RVISOR_BIN" do --rootfs "$ROOT" --env HOME=/root -- "$@"
}
