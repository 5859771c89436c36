//! preadv2/pwritev2 with their flags, natively and under rvisor.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const RW2: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
static const char *E(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
int main(int argc, char **argv) {
    char p[512], buf[64];
    snprintf(p, sizeof p, "%s/rw2.dat", argv[1]);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct iovec w[2] = {{"hello ", 6}, {"world", 5}};
    printf("pwritev2 at 0: %zd\n", pwritev2(fd, w, 2, 0, 0));
    printf("position: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    printf("pwritev2 at -1 (position): %zd\n", pwritev2(fd, w, 1, -1, 0));
    printf("position: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    lseek(fd, 2, SEEK_SET);
    struct iovec a = {"[appended]", 10};
    printf("RWF_APPEND: %zd\n", pwritev2(fd, &a, 1, 0, RWF_APPEND));
    printf("position after append: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    struct iovec r = {buf, sizeof buf - 1};
    printf("preadv2 HIPRI at 0: %zd %s\n", preadv2(fd, &r, 1, 0, RWF_HIPRI), buf);
    lseek(fd, 6, SEEK_SET);
    memset(buf, 0, sizeof buf);
    r.iov_len = 5;
    printf("preadv2 at -1: %zd %s\n", preadv2(fd, &r, 1, -1, 0), buf);
    printf("position: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    r.iov_len = 4;
    printf("preadv2 NOWAIT: %zd\n", preadv2(fd, &r, 1, 0, RWF_NOWAIT));
    printf("pwritev2 DSYNC: %zd\n", pwritev2(fd, w, 1, 0, RWF_DSYNC));
    printf("pwritev2 SYNC: %zd\n", pwritev2(fd, w, 1, 0, RWF_SYNC));
    printf("unknown flag: %s\n", E(preadv2(fd, &r, 1, 0, 0x40000000)));
    printf("offset -2: %s\n", E(preadv2(fd, &r, 1, -2, 0)));
    close(fd);
    unlink(p);
    return 0;
}
"#;

#[test]
fn preadv2_pwritev2_flags() {
    let dir = TempDir::new("rw2");
    let exe = compile_static_c(&dir, "rw2", RW2);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir");
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()]).assert_same();
    assert!(
        native.stdout_str().contains("RWF_APPEND: 10"),
        "{}",
        native.stdout_str()
    );
    // The same on a host file (written through the gofer).
    Invocation::new(&[exe.to_str().unwrap(), work.to_str().unwrap()])
        .rvisor_arg("--overlay=none")
        .assert_same();
}
