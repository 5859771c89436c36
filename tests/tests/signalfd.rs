//! signalfd, differential: flags, mask updates, SIGKILL/SIGSTOP dropped
//! from the mask, reads of thread- and process-directed signals with
//! their signalfd_siginfo fields (kill, sigqueue, tgkill, SIGCHLD),
//! several signals per read, EAGAIN, EINVAL, poll and epoll readiness, a
//! blocked reader woken by a signal from another process.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const SIGNALFD: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define E(x) ((x) < 0 ? strerror(errno) : "ok")

static void show(const char *what, struct signalfd_siginfo *s, int me) {
    printf("%s: signo %u errno %d code %d pid_ok %d uid %u status %d int %d ptr %llu\n", what,
           s->ssi_signo, s->ssi_errno, s->ssi_code, s->ssi_pid == (unsigned)me, s->ssi_uid,
           s->ssi_status, s->ssi_int, (unsigned long long)s->ssi_ptr);
}

int main(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigaddset(&m, SIGRTMIN);
    sigaddset(&m, SIGCHLD);
    sigprocmask(SIG_BLOCK, &m, NULL);
    printf("bad flags: %s\n", E(signalfd(-1, &m, 0x10)));
    printf("bad size: %s\n", E(syscall(SYS_signalfd4, -1, &m, 4, 0)));
    printf("not a signalfd: %s\n", E(signalfd(0, &m, 0)));
    printf("bad fd: %s\n", E(signalfd(77, &m, 0)));
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    sigaddset(&one, SIGKILL);
    sigaddset(&one, SIGSTOP);
    int fd = signalfd(-1, &one, SFD_NONBLOCK | SFD_CLOEXEC);
    printf("create: %s cloexec %d nonblock %d\n", E(fd), fcntl(fd, F_GETFD) & FD_CLOEXEC, !!(fcntl(fd, F_GETFL) & O_NONBLOCK));
    struct stat st;
    fstat(fd, &st);
    printf("fstat mode %o\n", st.st_mode);
    struct signalfd_siginfo si[4];
    printf("empty read: %s\n", E(read(fd, si, sizeof si)));
    printf("short read: %s\n", E(read(fd, si, 100)));
    struct pollfd p = {fd, POLLIN, 0};
    printf("poll empty: %d\n", poll(&p, 1, 0));

    pid_t me = getpid();
    kill(me, SIGUSR2); // not in the mask
    printf("poll usr2 only: %d\n", poll(&p, 1, 0));
    kill(me, SIGUSR1);
    int pr = poll(&p, 1, 0);
    printf("poll usr1: %d revents %#x\n", pr, p.revents);
    ssize_t n = read(fd, si, sizeof si);
    printf("read %zd\n", n);
    show("kill", &si[0], me);
    // Mask update: now USR2 and RTMIN too; USR2 was pending all along.
    sigaddset(&one, SIGUSR2);
    sigaddset(&one, SIGRTMIN);
    printf("update: %d\n", signalfd(fd, &one, 0) == fd);
    union sigval v = {.sival_int = 1234};
    sigqueue(me, SIGRTMIN, v);
    syscall(SYS_tgkill, me, syscall(SYS_gettid), SIGUSR1);
    n = read(fd, si, sizeof si);
    printf("read %zd (%zd signals)\n", n, n / (ssize_t)sizeof si[0]);
    for (int i = 0; i < n / (ssize_t)sizeof si[0]; i++) show("multi", &si[i], me);
    sigset_t pend;
    sigpending(&pend);
    printf("still pending usr1 %d usr2 %d\n", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2));

    // epoll readiness
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    printf("epoll idle: %d\n", epoll_wait(ep, &out, 1, 0));
    raise(SIGUSR2);
    int er = epoll_wait(ep, &out, 1, 1000);
    printf("epoll ready: %d data %llu\n", er, (unsigned long long)out.data.u64);
    read(fd, si, sizeof si);

    // SIGCHLD through a blocking signalfd.
    int cfd = signalfd(-1, &m, 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(3);
    struct signalfd_siginfo cs;
    for (;;) {
        n = read(cfd, &cs, sizeof cs);
        if (n == sizeof cs && cs.ssi_signo == SIGCHLD) break;
    }
    printf("sigchld: code %d pid_ok %d status %d\n", cs.ssi_code, cs.ssi_pid == (unsigned)c, cs.ssi_status);
    waitpid(c, NULL, 0);

    // A blocked reader woken by a signal another process sends.
    fflush(stdout);
    c = fork();
    if (c == 0) {
        usleep(100 * 1000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    n = read(cfd, &cs, sizeof cs);
    printf("woken: %zd signo %u from child %d code %d\n", n, cs.ssi_signo, cs.ssi_pid == (unsigned)c, cs.ssi_code);
    waitpid(c, NULL, 0);
    // The SIGCHLD of that child is there too.
    printf("poll chld: %d\n", poll(&(struct pollfd){cfd, POLLIN, 0}, 1, 1000));
    read(cfd, &cs, sizeof cs);
    printf("then: signo %u\n", cs.ssi_signo);
    printf("write: %s\n", E(write(fd, si, sizeof si[0])));
    return 0;
}
"#;

#[test]
fn signalfd_semantics() {
    let dir = TempDir::new("signalfd");
    let exe = compile_static_c(&dir, "signalfd", SIGNALFD);
    let inv = Invocation::new(&[exe.to_str().unwrap()]);
    rvisor_tests::assert_outputs_equal(&inv.run_native(), &inv.run_rvisor());
}
