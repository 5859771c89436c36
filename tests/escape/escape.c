/* One attempt per known class of container escape; each prints
 * "<name>: blocked (<reason>)" or "<name>: ESCAPED (<detail>)". Run inside
 * rvisor; the test asserts that no line says ESCAPED. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int escaped;

static void report(const char *name, int ok, const char *detail) {
    printf("%s: %s (%s)\n", name, ok ? "blocked" : "ESCAPED", detail);
    if (!ok) escaped = 1;
}

/* A marker file the host test created: visible through the served rootfs
 * only read-only; it must not be writable from inside. */
static void host_file_write(const char *marker) {
    int fd = open(marker, O_WRONLY | O_APPEND);
    if (fd >= 0) {
        write(fd, "x", 1);
        close(fd);
    }
    /* The host's copy is checked by the test after the run. */
    report("write-through to host rootfs", 1, "checked by the host side");
}

static void proc_root(const char *path) {
    char buf[4096];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) { report(path, 1, strerror(errno)); return; }
    buf[n] = 0;
    report(path, strcmp(buf, "/") == 0, buf);
}

static void no_host_fds(void) {
    /* Only stdio may be open: nothing the sentry or gofer holds leaks in. */
    int leaked = 0;
    for (int fd = 3; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0) leaked++;
    char d[64];
    snprintf(d, sizeof d, "%d extra fds", leaked);
    report("leaked host fds", leaked == 0, d);
}

static void fd_cwd_trick(void) {
    /* CVE-2024-21626 class: /proc/self/fd/N as a way out of the root. */
    int ok = 1;
    for (int fd = 3; fd < 64; fd++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        if (chdir(p) == 0) { ok = 0; break; }
    }
    report("chdir via /proc/self/fd", ok, "no fd beyond stdio to enter");
}

/* A host process listens on a unix socket in a directory the sandbox
 * sees: connecting must not reach it (the sentry only knows its own
 * sockets; host sockets in bind mounts are refused). */
static void host_unix_socket(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {0};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    char d[64];
    snprintf(d, sizeof d, "connect: %s", r < 0 ? strerror(errno) : "connected");
    report("connect to a host unix socket", r < 0, d);
    close(s);
}

/* Memory exhaustion through one file: a 512 GiB in-memory file must be
 * refused (EFBIG/ENOSPC), not taken from the host or crash the sentry
 * (which would end this program before its last lines). */
static void huge_file(void) {
    int fd = open("/tmp/rvisor-escape-huge", O_CREAT | O_RDWR | O_TRUNC, 0600);
    int t = ftruncate(fd, 1LL << 39);
    int te = errno;
    long w = pwrite(fd, "x", 1, 1LL << 38);
    char d[96];
    snprintf(d, sizeof d, "truncate: %s, write: %s", t ? strerror(te) : "allowed",
             w < 0 ? strerror(errno) : "allowed");
    report("512 GiB in-memory file", t != 0 && w < 0, d);
    close(fd);
    unlink("/tmp/rvisor-escape-huge");
}

static void try_syscall(const char *name, long nr, long a, long b, long c, long d) {
    errno = 0;
    long r = syscall(nr, a, b, c, d, 0, 0);
    char buf[64];
    snprintf(buf, sizeof buf, "ret=%ld %s", r, r < 0 ? strerror(errno) : "");
    report(name, r < 0, buf);
}

static void write_proc_sys(void) {
    int fd = open("/proc/sys/kernel/hostname", O_WRONLY);
    report("write /proc/sys", fd < 0, fd < 0 ? strerror(errno) : "opened");
    fd = open("/sys/kernel/uevent_helper", O_WRONLY);
    report("write /sys", fd < 0, fd < 0 ? strerror(errno) : "opened");
}

static void mknod_block(void) {
    /* The escape is reading the host's disk through the node. The sandbox
     * may create the node (as a container with CAP_MKNOD may), but it has
     * no driver behind it: opening it must fail. */
    int r = mknod("/tmp/sda", S_IFBLK | 0600, makedev(8, 0));
    if (r < 0) {
        report("mknod block device", 1, strerror(errno));
        return;
    }
    int fd = open("/tmp/sda", O_RDONLY);
    char b[512];
    int got = fd >= 0 && read(fd, b, sizeof b) > 0;
    report("mknod block device, then read it", !got, fd < 0 ? strerror(errno) : "opened");
}

static void mount_host(void) {
    int r = syscall(SYS_mount, "/dev/vda", "/mnt", "ext4", 0, 0);
    report("mount host filesystem", r < 0, r < 0 ? strerror(errno) : "mounted");
}

static void ptrace_sentry(void) {
    /* pid 1 is the workload's own init; the sentry and gofer have no pid here. */
    try_syscall("ptrace attach", SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0);
    try_syscall("process_vm_readv", SYS_process_vm_readv, 1, 0, 0, 0);
}

static void exec_memory(void) {
    /* Memory of the workload is its own; the sentry's memory is not mapped
     * in the workload: probing the top of the address space faults. */
    void *p = mmap((void *)0x7fffffffd000, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    report("map over the stub region", p == MAP_FAILED, p == MAP_FAILED ? strerror(errno) : "mapped");
}

/* The sandbox's network is a loopback inside the sentry: a host process
 * listening on the host's 127.0.0.1 is not reached, other addresses are
 * unreachable, and the families that would reach host interfaces
 * (netlink, packet) do not exist. */
static void host_network(const char *port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    char d[64];
    snprintf(d, sizeof d, "connect: %s", r < 0 ? strerror(errno) : "connected");
    report("connect to a host TCP listener on 127.0.0.1", r < 0, d);
    close(s);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_addr.s_addr = htonl(0x08080808);
    a.sin_port = htons(53);
    r = sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a);
    snprintf(d, sizeof d, "sendto: %s", r < 0 ? strerror(errno) : "sent");
    report("send to an outside address", r < 0, d);
    close(s);
}

int main(int argc, char **argv) {
    if (argc > 1) host_file_write(argv[1]);
    if (argc > 2) host_unix_socket(argv[2]);
    if (argc > 3) host_network(argv[3]);
    proc_root("/proc/self/root");
    proc_root("/proc/1/root");
    no_host_fds();
    fd_cwd_trick();
    write_proc_sys();
    mknod_block();
    mount_host();
    ptrace_sentry();
    exec_memory();
    huge_file();
    try_syscall("io_uring_setup", 425, 1, 0, 0, 0);
    try_syscall("bpf", SYS_bpf, 0, 0, 0, 0);
    try_syscall("perf_event_open", SYS_perf_event_open, 0, 0, -1, -1);
    try_syscall("userfaultfd", SYS_userfaultfd, 0, 0, 0, 0);
    try_syscall("kexec_load", SYS_kexec_load, 0, 0, 0, 0);
    try_syscall("init_module", SYS_init_module, 0, 0, 0, 0);
    try_syscall("keyctl", SYS_keyctl, 0, 0, 0, 0);
    try_syscall("open_by_handle_at", SYS_open_by_handle_at, 0, 0, 0, 0);
    try_syscall("socket AF_NETLINK", SYS_socket, 16, 3, 0, 0);
    try_syscall("socket AF_PACKET", SYS_socket, 17, 3, 0, 0);
    try_syscall("setns", SYS_setns, 0, 0, 0, 0);
    {
        /* The 32-bit entry point: its numbers mean other calls (23 would be
         * setuid); it must be refused, not misread as a 64-bit call. */
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(23L), "b"(0L) : "memory");
        char d[32];
        snprintf(d, sizeof d, "ret=%ld", r);
        report("int 0x80", r == -38, d);
    }
    return escaped;
}
