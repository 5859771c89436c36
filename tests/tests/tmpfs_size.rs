//! tmpfs size= and nr_inodes=, differential: a tmpfs mounted with
//! size=64k (natively in a private mount namespace) fills up with ENOSPC,
//! a partial write returns what fit, holes cost nothing, fallocate is all
//! or nothing, and statfs follows what files hold; unlink frees only
//! after the last close.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const TMPFS: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
static const char *E(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static char M[512];
static void df(const char *what) {
    struct statfs s;
    if (statfs(M, &s) < 0) { printf("%s: statfs %s\n", what, E(-1)); return; }
    printf("%s: type %lx bsize %ld blocks %ld bfree %ld bavail %ld\n", what,
           (long)s.f_type, (long)s.f_bsize, (long)s.f_blocks, (long)s.f_bfree, (long)s.f_bavail);
}
static char big[200000];
int main(int argc, char **argv) {
    if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    snprintf(M, sizeof M, "%s/t", argv[1]);
    mkdir(M, 0755);
    printf("mount: %s\n", E(mount("tmpfs", M, "tmpfs", 0, "size=64k,nr_inodes=8")));
    printf("bad size: %s\n", E(mount("tmpfs", M, "tmpfs", 0, "size=12q")));
    df("empty");
    char f[600], g[600], h[600];
    snprintf(f, sizeof f, "%s/a", M);
    snprintf(g, sizeof g, "%s/b", M);
    snprintf(h, sizeof h, "%s/c", M);
    memset(big, 'x', sizeof big);
    int fd = open(f, O_CREAT | O_RDWR, 0644);
    printf("write 10000: %zd\n", write(fd, big, 10000));
    df("after 10000");
    printf("write 100000: %zd\n", write(fd, big, 100000));
    long r = write(fd, big, 10);
    printf("write when full: %ld %s\n", r, E(r));
    df("full");
    struct stat st;
    fstat(fd, &st);
    printf("size %ld\n", (long)st.st_size);
    printf("truncate shrink: %s\n", E(ftruncate(fd, 4096)));
    df("after shrink");
    printf("truncate grow (sparse): %s\n", E(ftruncate(fd, 1 << 20)));
    df("after sparse grow");
    int fd2 = open(g, O_CREAT | O_RDWR, 0644);
    printf("hole write: %zd\n", pwrite(fd2, "y", 1, 500000));
    df("after hole write");
    printf("fallocate too much: %s\n", E(fallocate(fd2, 0, 0, 100000)));
    df("after failed fallocate");
    printf("fallocate 8k: %s\n", E(fallocate(fd2, 0, 0, 8192)));
    df("after fallocate");
    printf("fill: %zd\n", pwrite(fd2, big, 100000, 8192));
    df("filled");
    printf("unlink open file: %s\n", E(unlink(g)));
    df("unlinked, still open");
    close(fd2);
    df("closed");
    printf("O_TRUNC: %s\n", E(close(open(f, O_WRONLY | O_TRUNC))));
    df("truncated");
    close(fd);
    for (int i = 0; i < 10; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/n%d", M, i);
        int x = open(p, O_CREAT | O_WRONLY, 0644);
        if (x < 0) { printf("create %d: %s\n", i, E(-1)); break; }
        close(x);
    }
    printf("mkdir past nr_inodes: %s\n", E(mkdir(h, 0755)));
    printf("umount: %s\n", E(umount(M)));
    return 0;
}
"#;

#[test]
fn tmpfs_size_is_enforced() {
    let dir = TempDir::new("tmpfs-size");
    let exe = compile_static_c(&dir, "tmpfs_size", TMPFS);
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), dir.path().to_str().unwrap()]).assert_same();
    let out = native.stdout_str();
    assert!(out.contains("write 100000: 55536"), "{out}");
    assert!(out.contains("write when full: -1 ENOSPC"), "{out}");
}
