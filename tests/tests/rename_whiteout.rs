//! renameat2(RENAME_WHITEOUT) in the sandbox's own tree: the old name
//! becomes a 0/0 character device; CAP_MKNOD needed; bad flag mixes.
//! Differential.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const WHITEOUT: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
static const char *E(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
int main(int argc, char **argv) {
    int d = open(argv[1], O_RDONLY | O_DIRECTORY);
    unlinkat(d, "a", 0); unlinkat(d, "b", 0); unlinkat(d, "c", 0);
    close(openat(d, "a", O_CREAT | O_WRONLY, 0644));
    printf("whiteout: %s\n", E(renameat2(d, "a", d, "b", RENAME_WHITEOUT)));
    struct stat st;
    printf("old name: %s\n", E(fstatat(d, "a", &st, AT_SYMLINK_NOFOLLOW)));
    printf("char %d rdev %u:%u mode %o\n", S_ISCHR(st.st_mode), major(st.st_rdev), minor(st.st_rdev), st.st_mode & 07777);
    printf("new name: %s\n", E(fstatat(d, "b", &st, 0)));
    printf("with exchange: %s\n", E(renameat2(d, "b", d, "a", RENAME_WHITEOUT | RENAME_EXCHANGE)));
    if (fork() == 0) {
        setuid(1000);
        printf("unprivileged: %s\n", E(renameat2(d, "b", d, "c", RENAME_WHITEOUT)));
        _exit(0);
    }
    wait(0);
    return 0;
}
"#;

#[test]
fn rename_whiteout_leaves_a_whiteout() {
    let dir = TempDir::new("whiteout");
    let exe = compile_static_c(&dir, "whiteout", WHITEOUT);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]).assert_same();
    assert!(
        native.stdout_str().contains("char 1 rdev 0:0"),
        "{}",
        native.stdout_str()
    );
}
