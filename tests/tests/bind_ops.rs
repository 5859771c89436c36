//! Namespace operations that reach host files through the gofer (the root
//! written through with `--overlay none`): symlink, link, mknod of a FIFO,
//! renameat2 NOREPLACE/EXCHANGE, and the same calls on the sandbox's
//! in-memory layer. Differential, then the host's view is checked.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const OPS: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
static const char *E(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static void cat(int d, const char *name) {
    char buf[64] = {0};
    int fd = openat(d, name, O_RDONLY);
    if (fd < 0) { printf("%s: %s\n", name, strerror(errno)); return; }
    read(fd, buf, sizeof buf - 1);
    close(fd);
    printf("%s: %s", name, buf);
}
static void put(int d, const char *name, const char *text) {
    int fd = openat(d, name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    write(fd, text, strlen(text));
    close(fd);
}
int main(int argc, char **argv) {
    int d = open(argv[1], O_RDONLY | O_DIRECTORY);
    /* The native run leaves its results in the same directory. */
    const char *dirs[] = {"a", "b", "x", "y"};
    char p[64];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/inner", dirs[i]);
        unlinkat(d, p, 0);
        unlinkat(d, dirs[i], AT_REMOVEDIR);
    }
    const char *old[] = {"a", "b", "ln", "hard", "fifo", "dangling", "c", "x", "y"};
    for (unsigned i = 0; i < sizeof old / sizeof *old; i++) unlinkat(d, old[i], 0);
    put(d, "a", "file a\n");
    put(d, "b", "file b\n");
    printf("symlink: %s\n", E(symlinkat("a", d, "ln")));
    printf("symlink exists: %s\n", E(symlinkat("a", d, "ln")));
    char t[64] = {0};
    printf("readlink: %zd %s\n", readlinkat(d, "ln", t, sizeof t), t);
    cat(d, "ln");
    printf("dangling: %s\n", E(symlinkat("/nonexistent/target", d, "dangling")));
    printf("open dangling: %s\n", E(openat(d, "dangling", O_RDONLY)));
    struct stat s1, s2;
    printf("link: %s\n", E(linkat(d, "a", d, "hard", 0)));
    fstatat(d, "a", &s1, 0); fstatat(d, "hard", &s2, 0);
    printf("same inode %d nlink %ld\n", s1.st_ino == s2.st_ino, (long)s2.st_nlink);
    printf("link exists: %s\n", E(linkat(d, "a", d, "b", 0)));
    mkdirat(d, "x", 0755); mkdirat(d, "y", 0755);
    printf("link dir: %s\n", E(linkat(d, "x", d, "c", 0)));
    printf("mkfifo: %s\n", E(mkfifoat(d, "fifo", 0600)));
    fstatat(d, "fifo", &s1, AT_SYMLINK_NOFOLLOW);
    printf("fifo type %d mode %o\n", S_ISFIFO(s1.st_mode), s1.st_mode & 0777);
    int r = open(argv[1], O_RDONLY);
    (void)r;
    if (fork() == 0) {
        int w = openat(d, "fifo", O_WRONLY);
        write(w, "through the fifo\n", 17);
        _exit(0);
    }
    cat(d, "fifo");
    printf("noreplace: %s\n", E(renameat2(d, "a", d, "b", RENAME_NOREPLACE)));
    printf("exchange: %s\n", E(renameat2(d, "a", d, "b", RENAME_EXCHANGE)));
    cat(d, "a"); cat(d, "b");
    put(d, "x/inner", "in x\n");
    printf("exchange dirs: %s\n", E(renameat2(d, "x", d, "y", RENAME_EXCHANGE)));
    cat(d, "y/inner");
    printf("exchange file and dir: %s\n", E(renameat2(d, "a", d, "y", RENAME_EXCHANGE)));
    cat(d, "a/inner");
    printf("exchange missing: %s\n", E(renameat2(d, "b", d, "nothing", RENAME_EXCHANGE)));
    printf("both flags: %s\n", E(renameat2(d, "b", d, "y", RENAME_EXCHANGE | RENAME_NOREPLACE)));
    printf("into itself: %s\n", E(renameat2(d, "a", d, "a/inner", RENAME_EXCHANGE)));
    return 0;
}
"#;

fn run(overlay: Option<&str>) -> String {
    let dir = TempDir::new("bindops");
    let exe = compile_static_c(&dir, "bindops", OPS);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    let mut inv = Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]);
    if let Some(o) = overlay {
        inv = inv.rvisor_arg("--overlay").rvisor_arg(o);
    }
    let (native, _) = inv.assert_same();
    if overlay == Some("none") {
        // Once more under rvisor alone, on an empty directory: what is
        // there afterwards was made through the gofer.
        std::fs::remove_dir_all(&work).expect("clear work");
        std::fs::create_dir(&work).expect("mkdir work");
        let again = inv.run_rvisor();
        assert_eq!(again.stdout, native.stdout, "{}", again.describe());
        let link = std::fs::read_link(work.join("ln")).expect("host sees the symlink");
        assert_eq!(link.to_str(), Some("a"));
        let meta = std::fs::symlink_metadata(work.join("fifo")).expect("host sees the fifo");
        use std::os::unix::fs::FileTypeExt;
        assert!(meta.file_type().is_fifo());
        assert_eq!(
            std::fs::read_to_string(work.join("a/inner")).expect("exchanged dir on the host"),
            "in x\n"
        );
        use std::os::unix::fs::MetadataExt;
        let b = std::fs::metadata(work.join("b")).expect("b");
        let hard = std::fs::metadata(work.join("hard")).expect("hard");
        assert_eq!(b.ino(), hard.ino(), "hard link made on the host");
    }
    native.stdout_str()
}

#[test]
fn namespace_ops_through_the_gofer() {
    let out = run(Some("none"));
    assert!(out.contains("exchange: ok"), "{out}");
}

#[test]
fn namespace_ops_in_memory() {
    let out = run(None);
    assert!(out.contains("readlink: 1 a"), "{out}");
}

/// A name the host creates in a host-backed directory while the sandbox
/// runs shows up, even after the sandbox looked for it and missed.
#[test]
fn host_created_file_becomes_visible() {
    rvisor_tests::require_file(rvisor_tests::BUSYBOX, "busybox-static");
    let dir = TempDir::new("bind-host-create");
    let late = dir.join("late");
    let script = format!(
        "test -e {p} && echo early || echo missing; echo ready; read x; \
         test -e {p} && echo found || echo still-missing; ls {d} | grep -c late",
        p = late.display(),
        d = dir.path().display()
    );
    let argv: Vec<String> = [
        rvisor_tests::rvisor_bin().display().to_string(),
        "do".into(),
        "--overlay".into(),
        "none".into(),
        "--".into(),
        rvisor_tests::BUSYBOX.into(),
        "sh".into(),
        "-c".into(),
        script,
    ]
    .into();
    let run = rvisor_tests::Running::start_until_ready(&argv);
    assert_eq!(run.before, ["missing\n"]);
    std::fs::write(&late, b"made by the host\n").expect("host write");
    let (rest, status) = run.finish(b"go\n");
    assert_eq!(rest, "found\n1\n");
    assert!(status.success(), "{status}");
}
