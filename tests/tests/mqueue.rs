//! POSIX message queues and the mqueue filesystem: differential (native vs
//! rvisor). Queue names carry the pid, so native runs never collide in the
//! host's IPC namespace, and every test removes its queues.

use rvisor_tests::{assert_outputs_equal, compile_static_c, Invocation, TempDir};
use std::process::Command;

const COMMON: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#define T(label, x) do { errno = 0; long r_ = (long)(x); \
    printf("%s: %s\n", label, r_ < 0 ? strerror(errno) : "ok"); } while (0)
static void qname(char *buf, const char *tag) { snprintf(buf, 96, "/rvt-mq-%d-%s", getpid(), tag); }
static void reap(pid_t p) { while (waitpid(p, 0, 0) < 0 && errno == EINTR) {} }
static long ms_since(struct timespec *a) {
    struct timespec b; clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}
"#;

const BASICS: &str = r#"
int main(void) {
    char a[96], b[96], longname[300];
    qname(a, "a"); qname(b, "b");
    struct mq_attr at = { .mq_maxmsg = 4, .mq_msgsize = 64 };
    mqd_t q = mq_open(a, O_CREAT | O_EXCL | O_RDWR, 0640, &at);
    printf("open: %s\n", q < 0 ? strerror(errno) : "ok");
    printf("cloexec %d getfl %o\n", fcntl(q, F_GETFD), fcntl(q, F_GETFL));
    char path[64], link[128];
    snprintf(path, sizeof path, "/proc/self/fd/%d", q);
    ssize_t ln = readlink(path, link, sizeof link - 1);
    link[ln > 0 ? ln : 0] = 0;
    printf("fd link is the name: %d\n", strcmp(link, a) == 0);
    struct stat st; fstat(q, &st);
    printf("mode %o size %ld nlink %ld own %d\n", st.st_mode, (long)st.st_size, (long)st.st_nlink, st.st_uid == geteuid());
    T("O_EXCL again", mq_open(a, O_CREAT | O_EXCL | O_RDWR, 0640, &at));
    struct mq_attr bad = { .mq_maxmsg = -1, .mq_msgsize = 64 };
    mqd_t x = mq_open(a, O_CREAT | O_RDWR, 0640, &bad);
    printf("existing, bad attr ignored: %s\n", x < 0 ? strerror(errno) : "ok");
    close(x);
    T("new, maxmsg -1", mq_open(b, O_CREAT | O_RDWR, 0640, &bad));
    bad.mq_maxmsg = 4; bad.mq_msgsize = 0;
    T("new, msgsize 0", mq_open(b, O_CREAT | O_RDWR, 0640, &bad));
    T("O_RDWR|O_WRONLY", mq_open(a, O_RDWR | O_WRONLY));
    T("no leading slash", mq_open("rvt", O_RDONLY));
    T("just a slash", mq_open("/", O_CREAT | O_RDWR, 0600, NULL));
    T("inner slash", mq_open("/a/b", O_CREAT | O_RDWR, 0600, NULL));
    T("dot", mq_open("/.", O_RDWR));
    T("dotdot", mq_open("/..", O_RDWR));
    T("missing", mq_open(b, O_RDWR));
    T("raw empty name", syscall(SYS_mq_open, "", O_RDWR, 0, NULL));
    memset(longname, 'n', sizeof longname); longname[0] = '/';
    longname[257] = 0;
    T("256-byte name", mq_open(longname, O_CREAT | O_RDWR, 0600, NULL));
    longname[256] = 0;
    x = mq_open(longname, O_CREAT | O_RDWR, 0600, NULL);
    printf("255-byte name: %s\n", x < 0 ? strerror(errno) : "ok");
    close(x);
    T("unlink it", mq_unlink(longname));

    struct mq_attr g;
    mq_getattr(q, &g);
    printf("attr flags %lx max %ld size %ld cur %ld\n", g.mq_flags, g.mq_maxmsg, g.mq_msgsize, g.mq_curmsgs);
    mq_send(q, "low", 3, 1);
    mq_send(q, "high-1", 6, 10);
    mq_send(q, "mid", 3, 5);
    mq_send(q, "high-2", 6, 10);
    struct mq_attr nb = { .mq_flags = O_NONBLOCK }, old;
    T("setattr nonblock", mq_setattr(q, &nb, &old));
    printf("old flags %lx cur %ld\n", old.mq_flags, old.mq_curmsgs);
    mq_getattr(q, &g);
    printf("attr flags %lx max %ld size %ld cur %ld getfl %o\n", g.mq_flags, g.mq_maxmsg, g.mq_msgsize, g.mq_curmsgs, fcntl(q, F_GETFL));
    struct mq_attr badflags = { .mq_flags = O_NONBLOCK | O_APPEND };
    T("setattr other flags", syscall(SYS_mq_getsetattr, q, &badflags, NULL));
    T("send to a full queue", mq_send(q, "x", 1, 0));
    struct pollfd p = { q, POLLIN | POLLOUT, 0 };
    poll(&p, 1, 0);
    printf("poll full: %x\n", p.revents);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = 7 }, out[2];
    T("epoll add", epoll_ctl(ep, EPOLL_CTL_ADD, q, &ev));
    int ne = epoll_wait(ep, out, 2, 0);
    printf("epoll: %d %x\n", ne, ne > 0 ? out[0].events : 0);
    char s[128] = {0};
    ssize_t sn = read(q, s, sizeof s - 1);
    printf("read %zd: %s", sn, s);
    printf("read again: %zd\n", read(q, s, sizeof s));

    char buf[128]; unsigned pr;
    T("buffer below msgsize", mq_receive(q, buf, 63, &pr));
    for (int i = 0; i < 4; i++) {
        ssize_t n = mq_receive(q, buf, 64, &pr);
        printf("got %.*s prio %u\n", (int)n, buf, pr);
    }
    T("receive from an empty queue", mq_receive(q, buf, 64, &pr));
    p.revents = 0; poll(&p, 1, 0);
    printf("poll empty: %x\n", p.revents);
    printf("epoll empty: %d\n", epoll_wait(ep, out, 2, 0));
    T("message above msgsize", mq_send(q, buf, 65, 0));
    T("priority 32768", mq_send(q, "x", 1, 32768));
    T("priority 32767", mq_send(q, "x", 1, 32767));
    T("zero-length message", mq_send(q, "", 0, 0));
    ssize_t n0 = mq_receive(q, buf, 64, &pr);
    printf("got %zd bytes prio %u\n", n0, pr);
    n0 = mq_receive(q, buf, 64, NULL);
    printf("got %zd bytes\n", n0);

    struct mq_attr blk = { .mq_flags = 0 };
    mq_setattr(q, &blk, NULL);
    struct timespec t0, ts, past = { 1, 0 }, badts = { 0, 2000000000 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 80 * 1000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    T("timed receive", mq_timedreceive(q, buf, 64, &pr, &ts));
    printf("waited 80ms: %d\n", ms_since(&t0) >= 70);
    T("timed receive, past deadline", mq_timedreceive(q, buf, 64, &pr, &past));
    T("timed receive, bad timespec", mq_timedreceive(q, buf, 64, &pr, &badts));
    struct timespec negts = { -1, 0 };
    T("timed receive, negative", mq_timedreceive(q, buf, 64, &pr, &negts));
    mq_send(q, "m", 1, 0);
    T("timed receive, bad timespec, not empty", mq_timedreceive(q, buf, 64, &pr, &badts));
    T("timed send, bad timespec, not full", mq_timedsend(q, "m", 1, 0, &badts));
    T("timed send", mq_timedsend(q, "m", 1, 0, &past));
    mq_send(q, "m", 1, 0); mq_send(q, "m", 1, 0);
    T("timed send on full, past deadline", mq_timedsend(q, "m", 1, 0, &past));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    T("timed send on full", mq_timedsend(q, "m", 1, 0, &ts));
    printf("waited 50ms: %d\n", ms_since(&t0) >= 40);
    for (int i = 0; i < 4; i++) mq_receive(q, buf, 64, &pr);

    mqd_t ro = mq_open(a, O_RDONLY), wo = mq_open(a, O_WRONLY);
    T("send on O_RDONLY", mq_send(ro, "x", 1, 0));
    T("receive on O_WRONLY", mq_receive(wo, buf, 64, &pr));
    T("read(2) on O_WRONLY", read(wo, s, sizeof s));
    T("write(2) on O_RDWR", write(q, "x", 1));
    T("send on O_WRONLY", mq_send(wo, "via wo", 6, 2));
    ssize_t n = mq_receive(ro, buf, 64, &pr);
    printf("via ro: %.*s %u\n", (int)n, buf, pr);
    int pfd[2]; pipe(pfd);
    T("send on a pipe", mq_send(pfd[1], "x", 1, 0));
    T("getattr on a pipe", mq_getattr(pfd[0], &g));
    T("getattr on a closed fd", mq_getattr(99, &g));

    mqd_t d = dup(q);
    mq_send(d, "dup", 3, 0);
    n = mq_receive(q, buf, 64, &pr);
    printf("through dup: %.*s\n", (int)n, buf);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        mq_send(q, "from child", 10, 4);
        _exit(0);
    }
    reap(c);
    n = mq_receive(q, buf, 64, &pr);
    printf("inherited: %.*s %u\n", (int)n, buf, pr);
    c = fork();
    if (c == 0) {
        // mq_open descriptors are close-on-exec.
        char fdarg[16]; snprintf(fdarg, sizeof fdarg, "%d", q);
        execl("/bin/sh", "sh", "-c", "test -e /proc/self/fd/$0 && echo open after exec || echo closed on exec", fdarg, (char *)0);
        _exit(1);
    }
    reap(c);

    T("mq_unlink", mq_unlink(a));
    fstat(q, &st);
    printf("nlink after unlink %ld\n", (long)st.st_nlink);
    T("mq_unlink again", mq_unlink(a));
    T("open after unlink", mq_open(a, O_RDWR));
    mq_send(q, "still", 5, 0);
    n = mq_receive(q, buf, 64, &pr);
    printf("unlinked but open: %.*s\n", (int)n, buf);
    T("unlink no slash", mq_unlink("rvt"));
    T("unlink just a slash", mq_unlink("/"));
    T("unlink inner slash", mq_unlink("/a/b"));
    return 0;
}
"#;

const BLOCKING: &str = r#"
static volatile sig_atomic_t got;
static siginfo_t si;
static void h(int s, siginfo_t *i, void *u) { (void)u; got = s; si = *i; }
static void wait_sig(void) {
    for (int i = 0; i < 200 && !got; i++) usleep(10000);
}
int main(void) {
    char a[96]; qname(a, "blk");
    struct sigaction sa = { 0 };
    sa.sa_sigaction = h; sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    struct mq_attr at = { .mq_maxmsg = 2, .mq_msgsize = 32 };
    mqd_t q = mq_open(a, O_CREAT | O_EXCL | O_RDWR, 0600, &at);
    char buf[32]; unsigned pr;
    fflush(stdout);

    pid_t c = fork();
    if (c == 0) {
        usleep(100000);
        mqd_t w = mq_open(a, O_WRONLY);
        mq_send(w, "wake up", 7, 3);
        _exit(0);
    }
    ssize_t n = mq_receive(q, buf, 32, &pr);
    printf("blocked receive: %.*s prio %u\n", (int)n, buf, pr);
    reap(c);

    mq_send(q, "one", 3, 1); mq_send(q, "two", 3, 2);
    c = fork();
    if (c == 0) {
        usleep(100000);
        ssize_t k = mq_receive(q, buf, 32, &pr);
        printf("child took %.*s\n", (int)k, buf);
        fflush(stdout);
        _exit(0);
    }
    T("blocked send", mq_send(q, "three", 5, 3));
    reap(c);
    for (int i = 0; i < 2; i++) {
        n = mq_receive(q, buf, 32, &pr);
        printf("then %.*s prio %u\n", (int)n, buf, pr);
    }

    fflush(stdout);
    c = fork();
    if (c == 0) { usleep(100000); kill(getppid(), SIGUSR1); _exit(0); }
    T("receive interrupted", mq_receive(q, buf, 32, &pr));
    printf("signal %d\n", got);
    reap(c);
    got = 0;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, 0);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        usleep(100000); kill(getppid(), SIGUSR1);
        usleep(100000); mq_send(q, "after restart", 13, 0);
        _exit(0);
    }
    n = mq_receive(q, buf, 32, &pr);
    printf("SA_RESTART receive: %.*s (signal %d)\n", (int)n, buf, got);
    reap(c);
    got = 0;

    struct sigevent sev = { 0 };
    sev.sigev_notify = SIGEV_SIGNAL; sev.sigev_signo = SIGUSR1; sev.sigev_value.sival_int = 42;
    T("notify", mq_notify(q, &sev));
    T("notify again", mq_notify(q, &sev));
    fflush(stdout);
    c = fork();
    if (c == 0) {
        T("notify from another process", mq_notify(q, &sev));
        T("remove from another process", mq_notify(q, NULL));
        fflush(stdout);
        mq_send(q, "n", 1, 0);
        _exit(0);
    }
    reap(c);
    wait_sig();
    printf("notified: sig %d code %d SI_MESGQ %d value %d pid is sender %d uid %d\n", got, si.si_code,
           si.si_code == SI_MESGQ, si.si_value.sival_int, si.si_pid == c, si.si_uid == getuid());
    got = 0;
    T("notify after firing", mq_notify(q, &sev));
    mq_send(q, "m", 1, 0);
    usleep(50000);
    printf("non-empty queue, no signal: %d\n", got == 0);
    n = mq_receive(q, buf, 32, &pr); n = mq_receive(q, buf, 32, &pr);
    T("unregister", mq_notify(q, NULL));
    mq_send(q, "m", 1, 0);
    usleep(50000);
    printf("unregistered, no signal: %d\n", got == 0);
    mq_receive(q, buf, 32, &pr);

    T("notify", mq_notify(q, &sev));
    fflush(stdout);
    c = fork();
    if (c == 0) {
        ssize_t k = mq_receive(q, buf, 32, &pr);
        printf("blocked child got %.*s\n", (int)k, buf);
        fflush(stdout);
        _exit(0);
    }
    usleep(200000);
    mq_send(q, "handed", 6, 0);
    reap(c);
    usleep(50000);
    printf("receiver was waiting, no signal: %d\n", got == 0);
    T("still registered", mq_notify(q, &sev));
    mqd_t d = dup(q);
    close(d);
    T("after close of a dup", mq_notify(q, &sev));
    T("unregister", mq_notify(q, NULL));

    sev.sigev_notify = SIGEV_NONE;
    T("SIGEV_NONE", mq_notify(q, &sev));
    mq_send(q, "m", 1, 0);
    T("SIGEV_NONE fired and gone", mq_notify(q, &sev));
    mq_notify(q, NULL);
    mq_receive(q, buf, 32, &pr);
    sev.sigev_notify = SIGEV_SIGNAL; sev.sigev_signo = 0;
    T("signal 0", mq_notify(q, &sev));
    mq_send(q, "m", 1, 0);
    T("signal 0 fired", mq_notify(q, &sev));
    mq_notify(q, NULL);
    sev.sigev_signo = 65;
    T("signal 65", mq_notify(q, &sev));
    sev.sigev_signo = SIGUSR1; sev.sigev_notify = 99;
    T("bad sigev_notify", mq_notify(q, &sev));
    T("notify on a pipe", mq_notify(0, NULL));
    mq_unlink(a);
    return 0;
}
"#;

const FILESYSTEM: &str = r#"
int main(int argc, char **argv) {
    const char *dir = argv[1];
    char a[96], an[96], path[256], path2[256], s[128];
    qname(a, "fs"); qname(an, "fs-new");
    snprintf(path, sizeof path, "%s/%s", dir, a + 1);
    snprintf(path2, sizeof path2, "%s/%s", dir, an + 1);
    struct mq_attr at = { .mq_maxmsg = 3, .mq_msgsize = 16 };
    umask(027);
    mqd_t q = mq_open(a, O_CREAT | O_EXCL | O_RDWR, 0666, &at);
    struct stat st;
    T("stat queue file", stat(path, &st));
    printf("reg %d mode %o size %ld nlink %ld own %d\n", S_ISREG(st.st_mode), st.st_mode & 07777,
           (long)st.st_size, (long)st.st_nlink, st.st_uid == geteuid() && st.st_gid == getegid());
    stat(dir, &st);
    printf("dir %d mode %o\n", S_ISDIR(st.st_mode), st.st_mode & 07777);
    struct statfs sf; statfs(dir, &sf);
    printf("statfs magic %lx\n", (long)sf.f_type);
    mq_send(q, "hello", 5, 1); mq_send(q, "abc", 3, 0);
    int fd = open(path, O_RDONLY);
    ssize_t n = read(fd, s, sizeof s - 1); s[n > 0 ? n : 0] = 0;
    printf("file: %s", s);
    sigset_t m; sigemptyset(&m); sigaddset(&m, SIGUSR2); sigprocmask(SIG_BLOCK, &m, 0);
    struct sigevent sev = { 0 };
    sev.sigev_notify = SIGEV_SIGNAL; sev.sigev_signo = SIGUSR2;
    mq_notify(q, &sev);
    n = pread(fd, s, sizeof s - 1, 0); s[n > 0 ? n : 0] = 0;
    char *pid = strstr(s, "NOTIFY_PID:");
    if (pid) { printf("notify pid is mine: %d\n", atoi(pid + 11) == getpid()); *pid = 0; }
    printf("file: %s\n", s);
    mq_notify(q, NULL);
    sev.sigev_notify = SIGEV_NONE;
    mq_notify(q, &sev);
    n = pread(fd, s, sizeof s - 1, 0); s[n > 0 ? n : 0] = 0;
    pid = strstr(s, "NOTIFY_PID:"); if (pid) *pid = 0;
    printf("file: %s\n", s);
    mq_notify(q, NULL);
    T("write to the file", write(fd, "x", 1));
    T("receive on open(2)'s fd", mq_receive(fd, s, 16, 0));
    close(fd);
    fd = open(path, O_RDWR);
    printf("getfl of open(2)'s fd %o\n", fcntl(fd, F_GETFL));
    n = mq_receive(fd, s, 16, 0);
    printf("received through open(2)'s fd: %.*s\n", (int)n, s);
    char link[300], fdp[64];
    snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", fd);
    n = readlink(fdp, link, sizeof link - 1); link[n > 0 ? n : 0] = 0;
    printf("fd link is the path: %d\n", strcmp(link, path) == 0);
    close(fd);

    int nf = open(path2, O_CREAT | O_EXCL | O_RDWR, 0600);
    printf("open O_CREAT: %s\n", nf < 0 ? strerror(errno) : "ok");
    struct mq_attr g;
    T("getattr", mq_getattr(nf, &g));
    printf("default attr max %ld size %ld\n", g.mq_maxmsg, g.mq_msgsize);
    mqd_t q2 = mq_open(an, O_RDONLY);
    printf("mq_open of it: %s\n", q2 < 0 ? strerror(errno) : "ok");
    T("open O_CREAT|O_EXCL again", open(path2, O_CREAT | O_EXCL | O_RDWR, 0600));

    DIR *dd = opendir(dir);
    struct dirent *e;
    char prefix[64]; snprintf(prefix, sizeof prefix, "rvt-mq-%d-", getpid());
    int mine = 0, dots = 0;
    while ((e = readdir(dd))) {
        if (!strncmp(e->d_name, prefix, strlen(prefix))) { mine++; printf("entry %s type %d\n", e->d_name + strlen(prefix), e->d_type); }
        if (e->d_name[0] == '.') dots++;
    }
    closedir(dd);
    printf("mine %d dots %d\n", mine, dots);

    char other[300];
    snprintf(other, sizeof other, "%s/sub", dir);
    T("mkdir", mkdir(other, 0755));
    T("mkfifo", mkfifo(other, 0600));
    T("symlink", symlink("x", other));
    T("rename", rename(path2, other));
    T("unlink(2)", unlink(path2));
    T("mq_open after unlink(2)", mq_open(an, O_RDONLY));
    T("stat after unlink(2)", stat(path2, &st));
    T("mq_unlink", mq_unlink(a));
    T("stat after mq_unlink", stat(path, &st));
    mq_send(q, "last", 4, 0);
    n = mq_receive(q, s, 16, 0);
    printf("still open: %.*s\n", (int)n, s);

    const char *files[] = { "msg_default", "msg_max", "msgsize_default", "msgsize_max", "queues_max" };
    for (int i = 0; i < 5; i++) {
        char p[128], v[32] = { 0 };
        snprintf(p, sizeof p, "/proc/sys/fs/mqueue/%s", files[i]);
        int f = open(p, O_RDONLY);
        read(f, v, sizeof v - 1);
        close(f);
        printf("%s: %s", files[i], v);
    }

    // Limits of an unprivileged user.
    char r[96]; qname(r, "root");
    umask(0);
    mqd_t rq = mq_open(r, O_CREAT | O_RDWR, 0600, NULL);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        if (setgid(65534) || setuid(65534)) { printf("setuid failed\n"); _exit(1); }
        T("open root's 0600 queue", mq_open(r, O_RDONLY));
        T("unlink root's queue", mq_unlink(r));
        char u[96]; qname(u, "nobody");
        struct mq_attr big = { .mq_maxmsg = 11, .mq_msgsize = 16 };
        T("maxmsg 11", mq_open(u, O_CREAT | O_RDWR, 0600, &big));
        big.mq_maxmsg = 10; big.mq_msgsize = 8193;
        T("msgsize 8193", mq_open(u, O_CREAT | O_RDWR, 0600, &big));
        big.mq_msgsize = 8192;
        T("10 x 8192", mq_open(u, O_CREAT | O_RDWR, 0644, &big));
        char up[256]; snprintf(up, sizeof up, "%s/%s", dir, u + 1);
        struct stat us; stat(up, &us);
        printf("nobody's queue mode %o own %d\n", us.st_mode & 07777, us.st_uid == 65534);
        mq_unlink(u);
        // RLIMIT_MSGQUEUE (819200 bytes) holds 9 queues of 10 x 8192.
        int made = 0;
        for (int i = 0; i < 12; i++) {
            char v[96]; snprintf(v, sizeof v, "/rvt-mq-%d-lim%d", getpid(), i);
            mqd_t x = mq_open(v, O_CREAT | O_RDWR, 0600, NULL);
            if (x < 0) { printf("queue %d: %s\n", i, strerror(errno)); break; }
            made++;
        }
        for (int i = 0; i < made; i++) {
            char v[96]; snprintf(v, sizeof v, "/rvt-mq-%d-lim%d", getpid(), i);
            mq_unlink(v);
        }
        printf("made %d\n", made);
        fflush(stdout);
        _exit(0);
    }
    reap(c);
    close(rq);
    mq_unlink(r);
    return 0;
}
"#;

fn build(tag: &str, body: &str) -> (TempDir, String) {
    let dir = TempDir::new(tag);
    let exe = compile_static_c(&dir, tag, &format!("{COMMON}{body}"));
    let exe = exe.to_str().expect("utf-8 path").to_string();
    (dir, exe)
}

#[test]
fn mq_open_send_receive_attrs_errors() {
    let (_dir, exe) = build("mqbasics", BASICS);
    Invocation::new(&[exe.as_str()]).assert_same();
}

#[test]
fn mq_blocking_signals_and_notify() {
    let (_dir, exe) = build("mqblocking", BLOCKING);
    Invocation::new(&[exe.as_str()]).assert_same();
}

/// The queue files of an mqueue mount: natively a fresh mount of the
/// host's namespace on a temporary directory, under rvisor devfs's
/// /dev/mqueue.
#[test]
fn mqueue_filesystem_and_limits() {
    let (_dir, exe) = build("mqfs", FILESYSTEM);
    let mnt = TempDir::new("mqueue-mnt");
    let mounted = Command::new("mount")
        .args(["-t", "mqueue", "mqueue"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipping: cannot mount an mqueue filesystem natively (needs root)");
        return;
    }
    let native =
        Invocation::new(&[exe.as_str(), mnt.path().to_str().expect("utf-8 path")]).run_native();
    let _ = Command::new("umount").arg(mnt.path()).status();
    let sandboxed = Invocation::new(&[exe.as_str(), "/dev/mqueue"]).run_rvisor();
    assert_outputs_equal(&native, &sandboxed);
}

/// glibc's SIGEV_THREAD needs a netlink socket, which the sandbox does not
/// have: mq_notify fails cleanly with ENOSYS (natively it works).
#[test]
fn mq_notify_sigev_thread_is_a_clean_error() {
    let (_dir, exe) = build(
        "mqthread",
        r#"
static void cb(union sigval v) { (void)v; }
int main(void) {
    char a[96]; qname(a, "thr");
    mqd_t q = mq_open(a, O_CREAT | O_RDWR, 0600, NULL);
    struct sigevent sev = { 0 };
    sev.sigev_notify = SIGEV_THREAD; sev.sigev_notify_function = cb;
    T("SIGEV_THREAD", mq_notify(q, &sev));
    mq_unlink(a);
    return 0;
}
"#,
    );
    let out = Invocation::new(&[exe.as_str()]).run_rvisor();
    assert_eq!(
        out.stdout_str(),
        "SIGEV_THREAD: Function not implemented\n",
        "{}",
        out.describe()
    );
}
