//! mount(2)/umount2(2) inside the sandbox: tmpfs (mode=), proc, bind,
//! remount read-only, stacking, errors. Natively the program first moves
//! into a private mount namespace, so nothing reaches the host's table.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const MOUNT: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
static const char *E(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static char P[8][512];
/* Create a file and close it (an open file keeps a mount busy). */
static long cr(const char *p) { long fd = open(p, O_CREAT | O_WRONLY, 0644); if (fd >= 0) { close(fd); } else { return fd; } return 0; }
static int listed(const char *path, const char *type) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[2048]; int found = 0;
    while (fgets(line, sizeof line, f)) {
        char a[1024], b[1024], mp[1024], rest[1024];
        if (sscanf(line, "%s %s %s %s %s", a, b, rest, rest, mp) == 5 && !strcmp(mp, path)) {
            char *dash = strstr(line, " - ");
            found = dash && !strncmp(dash + 3, type, strlen(type));
        }
    }
    fclose(f);
    return found;
}
/* Whether the mount at `path` lists options starting with `opts`. */
static int flagged(const char *path, const char *opts) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[2048]; int found = 0;
    while (fgets(line, sizeof line, f)) {
        char a[1024], mp[1024], o[1024];
        if (sscanf(line, "%s %s %s %s %s %s", a, a, a, a, mp, o) == 6 && !strcmp(mp, path))
            found = !strncmp(o, opts, strlen(opts));
    }
    fclose(f);
    return found;
}
int main(int argc, char **argv) {
    /* Natively: a private mount namespace (rvisor has one of its own). */
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    const char *names[] = {"m1", "m2", "src", "m3", "m4"};
    for (int i = 0; i < 5; i++) {
        snprintf(P[i], sizeof P[i], "%s/%s", argv[1], names[i]);
        mkdir(P[i], 0755);
    }
    char f[600];
    printf("tmpfs: %s\n", E(mount("tmpfs", P[0], "tmpfs", 0, "mode=0700,size=1m")));
    struct stat st;
    stat(P[0], &st);
    printf("mode %o listed %d\n", st.st_mode & 07777, listed(P[0], "tmpfs"));
    snprintf(f, sizeof f, "%s/file", P[0]);
    close(open(f, O_CREAT | O_WRONLY, 0600));
    printf("file in tmpfs: %s\n", E(access(f, F_OK)));
    printf("stacked tmpfs: %s\n", E(mount("none", P[0], "tmpfs", 0, NULL)));
    printf("file hidden: %s\n", E(access(f, F_OK)));
    printf("umount top: %s\n", E(umount2(P[0], 0)));
    printf("file back: %s\n", E(access(f, F_OK)));
    printf("umount: %s\n", E(umount(P[0])));
    printf("file gone: %s listed %d\n", E(access(f, F_OK)), listed(P[0], "tmpfs"));
    printf("umount not a mount: %s\n", E(umount(P[0])));
    printf("umount bad flags: %s\n", E(umount2(P[0], 0x100)));
    printf("bad tmpfs option: %s\n", E(mount("tmpfs", P[0], "tmpfs", 0, "bogus=1")));
    printf("unknown fs: %s\n", E(mount("x", P[0], "nosuchfs", 0, NULL)));
    printf("missing target: %s\n", E(mount("tmpfs", "/nonexistent/dir", "tmpfs", 0, NULL)));
    /* proc */
    printf("proc: %s\n", E(mount("proc", P[1], "proc", 0, NULL)));
    snprintf(f, sizeof f, "%s/self/status", P[1]);
    printf("proc status readable: %s\n", E(access(f, R_OK)));
    printf("umount proc: %s\n", E(umount2(P[1], MNT_DETACH)));
    /* bind */
    snprintf(f, sizeof f, "%s/hello", P[2]);
    int fd = open(f, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    write(fd, "bound\n", 6); close(fd);
    printf("bind: %s\n", E(mount(P[2], P[3], NULL, MS_BIND, NULL)));
    char buf[64] = {0};
    snprintf(f, sizeof f, "%s/hello", P[3]);
    fd = open(f, O_RDONLY); read(fd, buf, sizeof buf - 1); close(fd);
    printf("through bind: %s", buf);
    snprintf(f, sizeof f, "%s/new", P[3]);
    close(open(f, O_CREAT | O_WRONLY, 0644));
    snprintf(f, sizeof f, "%s/new", P[2]);
    printf("write through bind seen at source: %s\n", E(access(f, F_OK)));
    printf("remount ro: %s\n", E(mount(NULL, P[3], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)));
    snprintf(f, sizeof f, "%s/denied", P[3]);
    printf("create on ro: %s\n", E(cr(f)));
    printf("remount rw: %s\n", E(mount(NULL, P[3], NULL, MS_REMOUNT | MS_BIND, NULL)));
    printf("create on rw: %s\n", E(cr(f)));
    printf("umount bind: %s\n", E(umount(P[3])));
    snprintf(f, sizeof f, "%s/hello", P[3]);
    printf("bind gone: %s\n", E(access(f, F_OK)));
    /* a read-only tmpfs */
    printf("ro tmpfs: %s\n", E(mount("tmpfs", P[4], "tmpfs", MS_RDONLY, NULL)));
    snprintf(f, sizeof f, "%s/x", P[4]);
    printf("create on ro tmpfs: %s\n", E(cr(f)));
    printf("propagation: %s\n", E(mount(NULL, P[4], NULL, MS_PRIVATE, NULL)));
    printf("umount ro tmpfs: %s\n", E(umount(P[4])));
    /* noexec, nodev: listed; execve EACCES, PROT_EXEC mapping EPERM */
    printf("noexec tmpfs: %s\n", E(mount("tmpfs", P[4], "tmpfs", MS_NOEXEC | MS_NODEV | MS_NOSUID, NULL)));
    printf("listed noexec: %d\n", flagged(P[4], "rw,nosuid,nodev,noexec,"));
    snprintf(f, sizeof f, "%s/prog", P[4]);
    {
        int in = open(argv[0], O_RDONLY), out = open(f, O_CREAT | O_WRONLY, 0755);
        char b[65536]; long n;
        while ((n = read(in, b, sizeof b)) > 0) write(out, b, n);
        close(in); close(out);
        char *args[] = {f, NULL};
        printf("exec on noexec: %s\n", E(execve(f, args, args + 1)));
        int fd = open(f, O_RDONLY);
        void *x = mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        printf("PROT_EXEC on noexec: %s\n", x == MAP_FAILED ? strerrorname_np(errno) : "ok");
        close(fd);
    }
    printf("umount noexec tmpfs: %s\n", E(umount(P[4])));
    printf("bind file onto dir: %s\n", E(mount(argv[0], P[4], NULL, MS_BIND, NULL)));
    if (fork() == 0) {
        setuid(1000);
        printf("unprivileged mount: %s\n", E(mount("tmpfs", P[0], "tmpfs", 0, NULL)));
        printf("unprivileged umount: %s\n", E(umount("/proc")));
        exit(0);
    }
    wait(NULL);
    return 0;
}
"#;

#[test]
fn mount_and_umount_in_the_sandbox() {
    let dir = TempDir::new("mount");
    let exe = compile_static_c(&dir, "mount", MOUNT);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]).assert_same();
    let out = native.stdout_str();
    assert!(out.contains("through bind: bound"), "{out}");
    assert!(out.contains("create on ro: EROFS"), "{out}");
    assert!(out.contains("listed noexec: 1"), "{out}");
    assert!(out.contains("exec on noexec: EACCES"), "{out}");
    assert!(out.contains("PROT_EXEC on noexec: EPERM"), "{out}");
}
