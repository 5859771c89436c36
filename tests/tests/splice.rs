//! sendfile, copy_file_range, splice, tee, sync, syncfs: differential.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const SPLICE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
static const char *E(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static unsigned sum(int fd) {
    unsigned s = 0; unsigned char b[4096]; ssize_t n; off_t o = 0;
    while ((n = pread(fd, b, sizeof b, o)) > 0) { for (int i = 0; i < n; i++) s = s * 31 + b[i]; o += n; }
    return s;
}
int main(int argc, char **argv) {
    char p[512];
    snprintf(p, sizeof p, "%s/src", argv[1]);
    int src = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    char *data = malloc(100000);
    for (int i = 0; i < 100000; i++) data[i] = (char)(i * 7 + i / 251);
    write(src, data, 100000);
    snprintf(p, sizeof p, "%s/dst", argv[1]);
    int dst = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    off_t off = 1000;
    printf("sendfile off: %zd off now %ld\n", sendfile(dst, src, &off, 50000), (long)off);
    printf("src pos unchanged: %ld\n", (long)lseek(src, 0, SEEK_CUR));
    lseek(src, 99000, SEEK_SET);
    printf("sendfile pos: %zd\n", sendfile(dst, src, NULL, 5000));
    printf("src pos: %ld dst pos: %ld\n", (long)lseek(src, 0, SEEK_CUR), (long)lseek(dst, 0, SEEK_CUR));
    printf("sendfile at eof: %zd\n", sendfile(dst, src, NULL, 10));
    printf("dst sum %u size %ld\n", sum(dst), (long)lseek(dst, 0, SEEK_END));
    int pf[2]; pipe(pf);
    printf("sendfile from pipe: %s\n", E(sendfile(dst, pf[0], NULL, 10)));
    printf("sendfile from pipe with off: %s\n", E(sendfile(dst, pf[0], &off, 10)));
    off = 0;
    printf("sendfile to pipe: %zd\n", sendfile(pf[1], src, &off, 3000));
    int ap = open(p, O_WRONLY | O_APPEND);
    printf("sendfile to append: %s\n", E(sendfile(ap, src, &off, 10)));
    printf("sendfile bad fd: %s\n", E(sendfile(99, src, &off, 10)));
    int ro = open(p, O_RDONLY);
    printf("sendfile to read-only: %s\n", E(sendfile(ro, src, &off, 10)));
    off = -1;
    printf("sendfile negative off: %s\n", E(sendfile(dst, src, &off, 10)));
    /* splice pipe -> file, file -> pipe */
    snprintf(p, sizeof p, "%s/spl", argv[1]);
    int sp = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    loff_t lo = 10;
    printf("splice pipe->file: %zd\n", splice(pf[0], NULL, sp, &lo, 100000, 0));
    printf("lo %ld sp pos %ld sum %u\n", (long)lo, (long)lseek(sp, 0, SEEK_CUR), sum(sp));
    lo = 500;
    printf("splice file->pipe: %zd lo %ld\n", splice(src, &lo, pf[1], NULL, 2000, 0), (long)lo);
    char buf[4096];
    printf("pipe has: %zd\n", read(pf[0], buf, sizeof buf));
    printf("splice nonblock empty: %s\n", E(splice(pf[0], NULL, sp, NULL, 10, SPLICE_F_NONBLOCK)));
    printf("splice no pipe: %s\n", E(splice(src, NULL, sp, NULL, 10, 0)));
    printf("splice offset on pipe: %s\n", E(splice(pf[0], &lo, sp, NULL, 10, 0)));
    printf("splice same pipe: %s\n", E(splice(pf[0], NULL, pf[1], NULL, 10, 0)));
    printf("splice zero: %zd\n", splice(src, NULL, pf[1], NULL, 0, 0));
    /* tee */
    int q[2]; pipe(q);
    write(pf[1], "tee me", 6);
    printf("tee: %zd\n", tee(pf[0], q[1], 100, 0));
    memset(buf, 0, sizeof buf);
    read(q[0], buf, sizeof buf);
    printf("copy '%s'\n", buf);
    memset(buf, 0, sizeof buf);
    read(pf[0], buf, sizeof buf);
    printf("original '%s'\n", buf);
    printf("tee file: %s\n", E(tee(src, q[1], 10, 0)));
    printf("tee empty nonblock: %s\n", E(tee(pf[0], q[1], 10, SPLICE_F_NONBLOCK)));
    close(pf[1]);
    printf("tee no writers: %zd\n", tee(pf[0], q[1], 10, 0));
    printf("splice no writers: %zd\n", splice(pf[0], NULL, sp, NULL, 10, 0));
    /* copy_file_range */
    snprintf(p, sizeof p, "%s/cfr", argv[1]);
    int c = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    loff_t i0 = 100, o0 = 50;
    printf("cfr: %zd i0 %ld o0 %ld\n", copy_file_range(src, &i0, c, &o0, 70000, 0), (long)i0, (long)o0);
    printf("cfr sum %u\n", sum(c));
    lseek(src, 0, SEEK_SET);
    printf("cfr pos: %zd src pos %ld c pos %ld\n", copy_file_range(src, NULL, c, NULL, 1234, 0), (long)lseek(src, 0, SEEK_CUR), (long)lseek(c, 0, SEEK_CUR));
    i0 = 99990;
    printf("cfr near eof: %zd\n", copy_file_range(src, &i0, c, NULL, 100, 0));
    printf("cfr at eof: %zd\n", copy_file_range(src, &i0, c, NULL, 100, 0));
    printf("cfr flags: %s\n", E(copy_file_range(src, NULL, c, NULL, 10, 1)));
    i0 = 0; o0 = 10;
    printf("cfr overlap: %s\n", E(copy_file_range(src, &i0, src, &o0, 100, 0)));
    i0 = 0; o0 = 50000;
    printf("cfr same file apart: %zd\n", copy_file_range(src, &i0, src, &o0, 100, 0));
    int d = open(argv[1], O_RDONLY | O_DIRECTORY);
    printf("cfr dir: %s\n", E(copy_file_range(d, NULL, c, NULL, 10, 0)));
    printf("cfr pipe: %s\n", E(copy_file_range(q[0], NULL, c, NULL, 10, 0)));
    printf("cfr append: %s\n", E(copy_file_range(src, NULL, ap, NULL, 10, 0)));
    printf("cfr read-only out: %s\n", E(copy_file_range(src, NULL, ro, NULL, 10, 0)));
    sync();
    printf("syncfs: %s bad: %s\n", E(syncfs(c)), E(syncfs(99)));
    return 0;
}
"#;

#[test]
fn sendfile_splice_tee_copy_file_range() {
    let dir = TempDir::new("splice");
    let exe = compile_static_c(&dir, "splice", SPLICE);
    let d = dir.path().to_str().unwrap().to_string();
    let (native, _) = Invocation::new(&[exe.to_str().unwrap(), &d]).assert_same();
    assert!(
        native.stdout_str().contains("sendfile off: 50000"),
        "{}",
        native.stdout_str()
    );
}
