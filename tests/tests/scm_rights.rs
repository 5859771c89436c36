//! SCM_RIGHTS over an AF_UNIX stream socket pair: sendmsg/recvmsg with
//! files, message boundaries around them, MSG_CMSG_CLOEXEC: differential.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const SCM: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
static int send_fd(int s, int fd, const char *msg) {
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {(void *)msg, strlen(msg)};
    struct msghdr m = {0};
    m.msg_iov = &iov; m.msg_iovlen = 1;
    m.msg_control = cbuf; m.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(s, &m, 0);
}
static int recv_fd(int s, char *buf, size_t len, int *fd, int *flags) {
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {buf, len};
    struct msghdr m = {0};
    m.msg_iov = &iov; m.msg_iovlen = 1;
    m.msg_control = cbuf; m.msg_controllen = sizeof cbuf;
    int n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    *fd = -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof *fd);
    *flags = m.msg_flags;
    return n;
}
int main(int argc, char **argv) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int f = open(argv[1], O_RDONLY);
    pid_t c = fork();
    if (c == 0) {
        close(sv[0]);
        printf("child sent %d\n", send_fd(sv[1], f, "first"));
        fflush(stdout);
        write(sv[1], "plain", 5);
        printf("child sent %d\n", send_fd(sv[1], f, "second"));
        fflush(stdout);
        _exit(0);
    }
    close(sv[1]);
    close(f);
    waitpid(c, 0, 0);
    char buf[64] = {0};
    int fd, fl;
    int n = recv_fd(sv[0], buf, sizeof buf - 1, &fd, &fl);
    printf("got %d bytes '%.*s' fd %s flags %d\n", n, n, buf, fd >= 0 ? "yes" : "no", fl);
    char content[64] = {0};
    if (fd >= 0) {
        int r = pread(fd, content, sizeof content - 1, 0);
        printf("passed file reads %d: %s", r, content);
        printf("cloexec: %d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    }
    memset(buf, 0, sizeof buf);
    n = recv_fd(sv[0], buf, sizeof buf - 1, &fd, &fl);
    printf("got %d bytes '%.*s' fd %s\n", n, n, buf, fd >= 0 ? "yes" : "no");
    /* no room for the fd: MSG_CTRUNC */
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {0};
    m.msg_iov = &iov; m.msg_iovlen = 1;
    n = recvmsg(sv[0], &m, 0);
    printf("no control buffer: %d bytes, ctrunc %d\n", n, (m.msg_flags & MSG_CTRUNC) != 0);
    printf("bad fd: %s\n", send_fd(sv[0], 999, "x") < 0 ? strerror(errno) : "sent");
    return 0;
}
"#;

#[test]
fn scm_rights_over_a_socketpair() {
    let dir = TempDir::new("scm");
    let exe = compile_static_c(&dir, "scm", SCM);
    let file = dir.write_file("passed", b"file content\n", 0o644);
    let (native, _) =
        Invocation::new(&[exe.to_str().unwrap(), file.to_str().unwrap()]).assert_same();
    assert!(
        native.stdout_str().contains("passed file reads 13"),
        "{}",
        native.stdout_str()
    );
}
