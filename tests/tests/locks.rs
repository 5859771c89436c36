//! Advisory file locks, differential: POSIX record locks across processes
//! (conflicts, F_GETLK, F_SETLKW waiting, release on close and exit), OFD
//! locks between two opens, flock(2).

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const LOCKS: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int lk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl) == 0 ? 0 : errno;
}

int main(int argc, char **argv) {
    const char *path = argv[1];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    printf("parent wrlck 10+10: %d\n", lk(fd, F_SETLK, F_WRLCK, 10, 10));
    printf("own relock rdlck 0+0: %d\n", lk(fd, F_SETLK, F_RDLCK, 0, 0));
    int pfd[2];
    pipe(pfd);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int f2 = open(path, O_RDWR);
        printf("child wrlck 15+1: %s\n", strerror(lk(f2, F_SETLK, F_WRLCK, 15, 1)));
        printf("child rdlck 15+1: %s\n", strerror(lk(f2, F_SETLK, F_RDLCK, 15, 1)));
        printf("child wrlck 100+1: %s\n", strerror(lk(f2, F_SETLK, F_WRLCK, 100, 1)));
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
        fcntl(f2, F_GETLK, &q);
        printf("getlk: type %d start %ld len %ld by parent %d\n", q.l_type, (long)q.l_start, (long)q.l_len, q.l_pid == getppid());
        fflush(stdout);
        write(pfd[1], "x", 1);
        int r = lk(f2, F_SETLKW, F_WRLCK, 0, 1);
        printf("child waited wrlck 0+1: %d\n", r);
        fflush(stdout);
        _exit(0);
    }
    char b;
    read(pfd[0], &b, 1);
    usleep(100000);
    printf("parent unlocks by closing a dup\n");
    fflush(stdout);
    int d = dup(fd);
    close(d);
    int st;
    waitpid(c, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));
    // bad arguments
    printf("rdlck on O_WRONLY: %s\n", strerror(lk(open(path, O_WRONLY), F_SETLK, F_RDLCK, 0, 1)));
    printf("bad type: %s\n", strerror(lk(fd, F_SETLK, 7, 0, 1)));
    printf("negative start: %s\n", strerror(lk(fd, F_SETLK, F_WRLCK, -5, 1)));
    // OFD locks: two opens of the same file in one process conflict.
    int a1 = open(path, O_RDWR), a2 = open(path, O_RDWR);
    printf("ofd a1: %d\n", lk(a1, F_OFD_SETLK, F_WRLCK, 0, 10));
    printf("ofd a2: %s\n", strerror(lk(a2, F_OFD_SETLK, F_WRLCK, 5, 1)));
    close(a1);
    printf("ofd a2 after close: %d\n", lk(a2, F_OFD_SETLK, F_WRLCK, 5, 1));
    // flock
    int b1 = open(path, O_RDONLY), b2 = open(path, O_RDONLY);
    printf("flock b1 ex: %d\n", flock(b1, LOCK_EX) ? errno : 0);
    printf("flock b2 sh nb: %s\n", flock(b2, LOCK_SH | LOCK_NB) ? strerror(errno) : "ok");
    printf("flock b1 un: %d\n", flock(b1, LOCK_UN) ? errno : 0);
    printf("flock b2 sh nb: %s\n", flock(b2, LOCK_SH | LOCK_NB) ? strerror(errno) : "ok");
    printf("flock bad op: %s\n", flock(b2, 0) ? strerror(errno) : "ok");
    return 0;
}
"#;

#[test]
fn posix_ofd_and_flock_locks() {
    let dir = TempDir::new("locks");
    let exe = compile_static_c(&dir, "locks", LOCKS);
    let file = dir.join("locked");
    Invocation::new(&[exe.to_str().unwrap(), file.to_str().unwrap()]).assert_same();
}
