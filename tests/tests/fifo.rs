//! FIFOs (mkfifo, blocking and non-blocking opens, data, EOF, ESPIPE),
//! mknod of regular files and device nodes, fallocate: differential.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const FIFO: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char p[256], q[256], r[256];
    snprintf(p, sizeof p, "%s/fifo", argv[1]);
    snprintf(q, sizeof q, "%s/node", argv[1]);
    snprintf(r, sizeof r, "%s/falloc", argv[1]);
    printf("mkfifo: %d\n", mkfifo(p, 0640));
    printf("mkfifo again: %s\n", mkfifo(p, 0640) ? strerror(errno) : "ok");
    struct stat st; stat(p, &st);
    printf("is fifo: %d mode %o\n", S_ISFIFO(st.st_mode), st.st_mode & 0777);
    printf("nonblock writer, no reader: %s\n", open(p, O_WRONLY | O_NONBLOCK) < 0 ? strerror(errno) : "opened");
    int nr = open(p, O_RDONLY | O_NONBLOCK);
    printf("nonblock reader: %s\n", nr < 0 ? strerror(errno) : "opened");
    close(nr);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int w = open(p, O_WRONLY);
        write(w, "through the fifo\n", 17);
        close(w);
        _exit(0);
    }
    int rd = open(p, O_RDONLY);
    char buf[64] = {0};
    int n = read(rd, buf, sizeof buf - 1);
    printf("read %d: %s", n, buf);
    printf("eof: %zd\n", read(rd, buf, 10));
    waitpid(c, 0, 0);
    printf("lseek: %s\n", lseek(rd, 0, SEEK_SET) < 0 ? strerror(errno) : "ok");
    printf("mknod reg: %d\n", mknod(q, S_IFREG | 0600, 0));
    printf("mknod chr: %s\n", mknod(argv[2], S_IFCHR | 0600, makedev(1, 3)) ? strerror(errno) : "ok");
    int f = open(r, O_RDWR | O_CREAT, 0600);
    printf("fallocate: %d\n", posix_fallocate(f, 100, 50));
    fstat(f, &st);
    printf("size %ld\n", (long)st.st_size);
    printf("fallocate keep: %d\n", fallocate(f, FALLOC_FL_KEEP_SIZE, 0, 4096));
    fstat(f, &st);
    printf("size %ld\n", (long)st.st_size);
    printf("bad len: %d\n", posix_fallocate(f, 0, 0));
    return 0;
}
"#;

#[test]
fn fifo_mknod_fallocate() {
    let dir = TempDir::new("fifo");
    let exe = compile_static_c(&dir, "fifo", FIFO);
    // Separate directories: the native run leaves its nodes behind.
    let native = TempDir::new("fifo-native");
    let inv = |d: &TempDir| {
        Invocation::new(&[
            exe.to_str().unwrap(),
            d.path().to_str().unwrap(),
            d.join("chr").to_str().unwrap(),
        ])
    };
    let n = inv(&native).run_native();
    let sandboxed = TempDir::new("fifo-rvisor");
    let r = inv(&sandboxed).run_rvisor();
    rvisor_tests::assert_outputs_equal(&n, &r);
}
