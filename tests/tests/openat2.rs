//! openat2(2) RESOLVE_* flags and O_TMPFILE: differential.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const OPENAT2: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
static const char *E(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static long o2(int dfd, const char *p, unsigned long long flags, unsigned long long resolve) {
    struct open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
    long fd = syscall(SYS_openat2, dfd, p, &how, sizeof how);
    if (fd >= 0) close(fd);
    return fd;
}
static void t(const char *what, int dfd, const char *p, unsigned long long flags, unsigned long long resolve) {
    printf("%-28s %s\n", what, E(o2(dfd, p, flags, resolve)));
}
int main(int argc, char **argv) {
    char p[512];
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    /* The native run goes first on the same directory: start clean. */
    const char *old[] = {"named", "named2", "named3", "back", "gone", "sub/f", "sub/g",
                         "sub/link", "sub/abs", "sub/up", "sub/far"};
    for (unsigned i = 0; i < sizeof old / sizeof *old; i++) unlinkat(dir, old[i], 0);
    unlinkat(dir, "sub", AT_REMOVEDIR);
    mkdirat(dir, "sub", 0755);
    close(openat(dir, "sub/f", O_CREAT | O_WRONLY, 0644));
    symlinkat("f", dir, "sub/link");
    symlinkat("/sub/f", dir, "sub/abs");
    symlinkat("../sub/f", dir, "sub/up");
    symlinkat("../../../../../../../../..", dir, "sub/far");
    t("beneath f", dir, "sub/f", O_RDONLY, RESOLVE_BENEATH);
    t("beneath ..", dir, "../x", O_RDONLY, RESOLVE_BENEATH);
    t("beneath sub/../sub/f", dir, "sub/../sub/f", O_RDONLY, RESOLVE_BENEATH);
    t("beneath absolute", dir, "/etc/passwd", O_RDONLY, RESOLVE_BENEATH);
    t("beneath abs link", dir, "sub/abs", O_RDONLY, RESOLVE_BENEATH);
    t("beneath up link", dir, "sub/up", O_RDONLY, RESOLVE_BENEATH);
    t("beneath far link", dir, "sub/far/etc", O_RDONLY, RESOLVE_BENEATH);
    t("in_root abs", dir, "/sub/f", O_RDONLY, RESOLVE_IN_ROOT);
    t("in_root ../..", dir, "../../sub/f", O_RDONLY, RESOLVE_IN_ROOT);
    t("in_root abs link", dir, "sub/abs", O_RDONLY, RESOLVE_IN_ROOT);
    t("in_root far link", dir, "sub/far/sub/f", O_RDONLY, RESOLVE_IN_ROOT);
    t("in_root passwd", dir, "/etc/passwd", O_RDONLY, RESOLVE_IN_ROOT);
    t("no_symlinks f", dir, "sub/f", O_RDONLY, RESOLVE_NO_SYMLINKS);
    t("no_symlinks link", dir, "sub/link", O_RDONLY, RESOLVE_NO_SYMLINKS);
    t("no_symlinks nofollow path", dir, "sub/link", O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    t("no_magic self/status", AT_FDCWD, "/proc/self/status", O_RDONLY, RESOLVE_NO_MAGICLINKS);
    t("no_magic fd/0", AT_FDCWD, "/proc/self/fd/0", O_RDONLY, RESOLVE_NO_MAGICLINKS);
    t("no_magic exe", AT_FDCWD, "/proc/self/exe", O_RDONLY, RESOLVE_NO_MAGICLINKS);
    t("magic exe", AT_FDCWD, "/proc/self/exe", O_RDONLY, 0);
    int root = open("/", O_RDONLY | O_DIRECTORY);
    t("no_xdev proc", root, "proc/self/status", O_RDONLY, RESOLVE_NO_XDEV);
    t("no_xdev sub/f", dir, "sub/f", O_RDONLY, RESOLVE_NO_XDEV);
    t("no_xdev abs proc", dir, "/proc/self/status", O_RDONLY, RESOLVE_NO_XDEV);
    t("beneath|in_root", dir, "sub/f", O_RDONLY, RESOLVE_BENEATH | RESOLVE_IN_ROOT);
    t("unknown resolve bit", dir, "sub/f", O_RDONLY, 0x1000);
    t("cached", dir, "sub/f", O_RDONLY, RESOLVE_CACHED);
    t("cached creat", dir, "sub/g", O_RDONLY | O_CREAT, RESOLVE_CACHED);
    struct { struct open_how h; unsigned long long extra; } big = {{O_RDONLY, 0, 0}, 0};
    printf("bigger struct zero: %s\n", E(syscall(SYS_openat2, dir, "sub/f", &big, sizeof big)));
    big.extra = 1;
    printf("bigger struct nonzero: %s\n", E(syscall(SYS_openat2, dir, "sub/f", &big, sizeof big)));
    printf("small struct: %s\n", E(syscall(SYS_openat2, dir, "sub/f", &big, 16)));
    /* O_TMPFILE */
    int tf = open(argv[1], O_TMPFILE | O_RDWR, 0600);
    printf("tmpfile: %s\n", E(tf));
    write(tf, "anonymous", 9);
    struct stat st;
    fstat(tf, &st);
    printf("nlink %ld size %ld mode %o\n", (long)st.st_nlink, (long)st.st_size, st.st_mode & 07777);
    snprintf(p, sizeof p, "/proc/self/fd/%d", tf);
    printf("link via proc: %s\n", E(linkat(AT_FDCWD, p, dir, "named", AT_SYMLINK_FOLLOW)));
    printf("link via empty path: %s\n", E(linkat(tf, "", dir, "named2", AT_EMPTY_PATH)));
    fstat(tf, &st);
    printf("nlink after %ld\n", (long)st.st_nlink);
    char buf[32] = {0};
    int nf = openat(dir, "named", O_RDONLY);
    read(nf, buf, sizeof buf);
    printf("named has '%s'\n", buf);
    int ex = open(argv[1], O_TMPFILE | O_WRONLY | O_EXCL, 0600);
    printf("tmpfile excl: %s\n", E(ex));
    printf("link excl: %s\n", E(linkat(ex, "", dir, "named3", AT_EMPTY_PATH)));
    printf("tmpfile rdonly: %s\n", E(open(argv[1], O_TMPFILE | O_RDONLY, 0600)));
    snprintf(p, sizeof p, "%s/sub/f", argv[1]);
    printf("tmpfile on file: %s\n", E(open(p, O_TMPFILE | O_RDWR, 0600)));
    snprintf(p, sizeof p, "%s/nowhere", argv[1]);
    printf("tmpfile missing dir: %s\n", E(open(p, O_TMPFILE | O_RDWR, 0600)));
    int del = openat(dir, "gone", O_CREAT | O_RDWR, 0600);
    unlinkat(dir, "gone", 0);
    printf("link unlinked: %s\n", E(linkat(del, "", dir, "back", AT_EMPTY_PATH)));
    return 0;
}
"#;

#[test]
fn openat2_resolve_and_o_tmpfile() {
    let dir = TempDir::new("openat2");
    let exe = compile_static_c(&dir, "openat2", OPENAT2);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]).assert_same();
    assert!(
        native.stdout_str().contains("named has 'anonymous'"),
        "{}",
        native.stdout_str()
    );
}
