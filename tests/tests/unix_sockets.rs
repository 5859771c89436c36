//! AF_UNIX sockets (stream, datagram, seqpacket; path, abstract and
//! autobound names; credentials; shutdown, peeking, truncation, errors):
//! each program runs natively and under rvisor with identical output.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const COMMON: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
static const char *E(int r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static socklen_t mkaddr(struct sockaddr_un *a, const char *dir, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
    return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}
static socklen_t mkabstract(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path + 1, name);
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}
static void show_poll(const char *what, int fd) {
    struct pollfd p = {fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&p, 1, 0);
    printf("%s: in %d out %d hup %d rdhup %d err %d\n", what, !!(p.revents & POLLIN),
           !!(p.revents & POLLOUT), !!(p.revents & POLLHUP), !!(p.revents & POLLRDHUP),
           !!(p.revents & POLLERR));
}
"#;

const STREAM: &str = r#"
int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_un a, b;
    socklen_t al = mkaddr(&a, argv[1], "stream.sock");
    unlink(a.sun_path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("listen unbound: %s\n", E(listen(l, 5)));
    printf("accept unlistened: %s\n", E(accept(l, 0, 0)));
    printf("bind: %s\n", E(bind(l, (void *)&a, al)));
    printf("bind again: %s\n", E(bind(l, (void *)&a, al)));
    int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("bind used path: %s\n", E(bind(l2, (void *)&a, al)));
    close(l2);
    struct stat st;
    stat(a.sun_path, &st);
    printf("is socket: %d mode %o\n", S_ISSOCK(st.st_mode), st.st_mode & 0777);
    printf("open socket file: %s\n", E(open(a.sun_path, O_RDONLY)));
    int c0 = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect before listen: %s\n", E(connect(c0, (void *)&a, al)));
    close(c0);
    printf("listen: %s\n", E(listen(l, 5)));
    show_poll("listener idle", l);
    int nb = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    printf("nonblocking accept: %s\n", E(accept(nb, 0, 0)));
    close(nb);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("send unconnected: %s\n", E(send(c, "x", 1, 0)));
    printf("recv unconnected: %s\n", E(recv(c, &st, 1, 0)));
    printf("getpeername unconnected: %s\n", E(getpeername(c, (void *)&b, &(socklen_t){sizeof b})));
    show_poll("unconnected", c);
    printf("connect: %s\n", E(connect(c, (void *)&a, al)));
    printf("connect again: %s\n", E(connect(c, (void *)&a, al)));
    show_poll("listener pending", l);
    socklen_t bl = sizeof b;
    int s = accept(l, (void *)&b, &bl);
    printf("accept: %s peer len %d family %d\n", E(s), bl, b.sun_family);
    bl = sizeof b;
    getsockname(s, (void *)&b, &bl);
    printf("server name len %d matches %d\n", bl, bl == al && !strcmp(b.sun_path, a.sun_path));
    bl = sizeof b;
    getpeername(c, (void *)&b, &bl);
    printf("client peer len %d matches %d\n", bl, !strcmp(b.sun_path, a.sun_path));
    bl = sizeof b;
    getsockname(c, (void *)&b, &bl);
    printf("client name len %d\n", bl);
    struct ucred cr;
    socklen_t crl = sizeof cr;
    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &crl);
    printf("peercred: len %d pid ok %d uid %d gid %d\n", crl, cr.pid == getpid(), cr.uid, cr.gid);
    int v; socklen_t vl = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SO_TYPE %d\n", v);
    getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
    printf("SO_ACCEPTCONN %d\n", v);
    show_poll("connected idle", s);
    printf("send: %zd\n", send(c, "hello ", 6, 0));
    printf("write: %zd\n", write(c, "world", 5));
    char buf[64] = {0};
    printf("peek: %zd\n", recv(s, buf, sizeof buf, MSG_PEEK));
    printf("peeked '%s'\n", buf);
    show_poll("server with data", s);
    memset(buf, 0, sizeof buf);
    printf("recv 3: %zd '%s'\n", recv(s, buf, 3, 0), buf);
    memset(buf, 0, sizeof buf);
    printf("read rest: %zd '%s'\n", read(s, buf, sizeof buf), buf);
    printf("dontwait: %s\n", E(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    int n = 0; ioctl(s, FIONREAD, &n);
    printf("FIONREAD empty %d\n", n);
    send(c, "abcdef", 6, 0);
    ioctl(s, FIONREAD, &n);
    printf("FIONREAD %d\n", n);
    printf("sendto with address: %s\n", E(sendto(c, "x", 1, 0, (void *)&a, al)));
    if (fork() == 0) {
        usleep(50000);
        send(c, "late", 4, 0);
        _exit(0);
    }
    memset(buf, 0, sizeof buf);
    printf("waitall: %zd\n", recv(s, buf, 10, MSG_WAITALL));
    printf("got '%s'\n", buf);
    wait(0);
    printf("shutdown wr: %s\n", E(shutdown(c, SHUT_WR)));
    printf("send after shut: %s\n", E(send(c, "x", 1, MSG_NOSIGNAL)));
    show_poll("server after peer shut wr", s);
    printf("eof: %zd\n", recv(s, buf, sizeof buf, 0));
    printf("server can still send: %zd\n", send(s, "back", 4, 0));
    memset(buf, 0, sizeof buf);
    printf("client reads: %zd '%s'\n", recv(c, buf, sizeof buf, 0), buf);
    printf("shutdown bad: %s\n", E(shutdown(c, 7)));
    close(s);
    show_poll("client after server close", c);
    printf("client eof: %zd\n", recv(c, buf, sizeof buf, 0));
    close(c);
    /* a peer that closes with unread data: ECONNRESET */
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c, (void *)&a, al);
    s = accept(l, 0, 0);
    send(c, "unread", 6, 0);
    send(s, "x", 1, 0);
    close(s);
    printf("first recv: %zd\n", recv(c, buf, 1, 0));
    printf("after reset: %s\n", E(recv(c, buf, sizeof buf, 0)));
    printf("then: %zd\n", recv(c, buf, sizeof buf, 0));
    printf("send to closed: %s\n", E(send(c, "x", 1, 0)));
    close(c);
    /* SIGPIPE */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[1]);
    signal(SIGPIPE, SIG_DFL);
    pid_t p = fork();
    if (p == 0) { write(sv[0], "x", 1); _exit(0); }
    int ws; waitpid(p, &ws, 0);
    printf("writer killed by signal %d\n", WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    close(sv[0]);
    /* the listener closes: connect is refused, the name stays */
    close(l);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect to closed: %s\n", E(connect(c, (void *)&a, al)));
    printf("name still there: %s\n", E(access(a.sun_path, F_OK)));
    unlink(a.sun_path);
    printf("connect to missing: %s\n", E(connect(c, (void *)&a, al)));
    socklen_t fl = mkaddr(&b, argv[1], "stream.c");
    printf("connect to non-socket: %s\n", E(connect(c, (void *)&b, fl)));
    struct sockaddr_un bad = {0};
    bad.sun_family = AF_INET;
    printf("connect bad family: %s\n", E(connect(c, (void *)&bad, sizeof bad)));
    printf("connect short: %s\n", E(connect(c, (void *)&bad, 1)));
    printf("socket bad type: %s\n", E(socket(AF_UNIX, 9, 0)));
    printf("socket bad proto: %s\n", E(socket(AF_UNIX, SOCK_STREAM, 7)));
    printf("socket bad flags: %s\n", E(socket(AF_UNIX, SOCK_STREAM | 0x100000, 0)));
    printf("bind on not-a-socket: %s\n", E(bind(0 + 1000, (void *)&a, al)));
    int f = open(argv[0], O_RDONLY);
    printf("listen on a file: %s\n", E(listen(f, 1)));
    return 0;
}
"#;

const DGRAM: &str = r#"
int main(int argc, char **argv) {
    struct sockaddr_un a, b, from;
    socklen_t al = mkaddr(&a, argv[1], "dg.a"), bl = mkaddr(&b, argv[1], "dg.b");
    unlink(a.sun_path); unlink(b.sun_path);
    int x = socket(AF_UNIX, SOCK_DGRAM, 0), y = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    printf("bind x: %s\n", E(bind(x, (void *)&a, al)));
    printf("bind y: %s\n", E(bind(y, (void *)&b, bl)));
    printf("send unconnected: %s\n", E(send(y, "x", 1, 0)));
    printf("listen dgram: %s\n", E(listen(x, 1)));
    printf("sendto: %zd\n", sendto(y, "datagram one", 12, 0, (void *)&a, al));
    printf("sendto: %zd\n", sendto(y, "two", 3, 0, (void *)&a, al));
    printf("sendto empty: %zd\n", sendto(y, "", 0, 0, (void *)&a, al));
    int n; ioctl(x, FIONREAD, &n);
    printf("FIONREAD next %d\n", n);
    char buf[64] = {0};
    socklen_t fl = sizeof from;
    ssize_t r = recvfrom(x, buf, 8, 0, (void *)&from, &fl);
    printf("recvfrom 8: %zd '%.*s' from len %d match %d\n", r, (int)r, buf, fl, !strcmp(from.sun_path, b.sun_path));
    fl = sizeof from;
    r = recvfrom(x, buf, 2, MSG_TRUNC, (void *)&from, &fl);
    printf("MSG_TRUNC: %zd\n", r);
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {0};
    m.msg_iov = &iov; m.msg_iovlen = 1;
    printf("empty datagram: %zd\n", recvmsg(x, &m, 0));
    printf("dontwait: %s\n", E(recv(x, buf, sizeof buf, MSG_DONTWAIT)));
    struct sockaddr_un z = {0};
    printf("sendto missing: %s\n", E(sendto(y, "x", 1, 0, (void *)mkaddr(&z, argv[1], "nothing") ? (void *)&z : 0, sizeof z)));
    /* truncation flag in recvmsg */
    sendto(y, "0123456789", 10, 0, (void *)&a, al);
    iov.iov_len = 4;
    m.msg_flags = 0;
    r = recvmsg(x, &m, 0);
    printf("recvmsg 4: %zd trunc %d\n", r, !!(m.msg_flags & MSG_TRUNC));
    /* connect: default destination, and only the peer may send */
    printf("connect x->y: %s\n", E(connect(x, (void *)&b, bl)));
    int w = socket(AF_UNIX, SOCK_DGRAM, 0);
    printf("third party to x: %s\n", E(sendto(w, "x", 1, 0, (void *)&a, al)));
    printf("connect w->x: %s\n", E(connect(w, (void *)&a, al)));
    printf("send x->y: %zd\n", send(x, "reply", 5, 0));
    memset(buf, 0, sizeof buf);
    printf("y got %zd '%s'\n", recv(y, buf, sizeof buf, 0), buf);
    socklen_t pl = sizeof from;
    printf("getpeername: %s len %d\n", E(getpeername(x, (void *)&from, &pl)), pl);
    struct sockaddr_un un = {0};
    un.sun_family = AF_UNSPEC;
    printf("disconnect: %s\n", E(connect(x, (void *)&un, sizeof un)));
    printf("getpeername after: %s\n", E(getpeername(x, (void *)&from, &pl)));
    /* peer closed */
    connect(w, (void *)&b, bl);
    close(y);
    printf("send to closed peer: %s\n", E(send(w, "x", 1, 0)));
    printf("send again: %s\n", E(send(w, "x", 1, 0)));
    /* abstract and autobound names */
    int ab = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un an;
    char name[64];
    snprintf(name, sizeof name, "rvisor-test-%d", getpid() % 2);
    socklen_t anl = mkabstract(&an, name);
    printf("bind abstract: %s\n", E(bind(ab, (void *)&an, anl)));
    int ab2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    printf("bind abstract again: %s\n", E(bind(ab2, (void *)&an, anl)));
    pl = sizeof from;
    getsockname(ab, (void *)&from, &pl);
    printf("abstract name len %d same %d\n", pl, pl == anl && !memcmp(&from, &an, anl));
    printf("autobind: %s\n", E(bind(ab2, (void *)&un, sizeof(sa_family_t))));
    pl = sizeof from;
    getsockname(ab2, (void *)&from, &pl);
    printf("autobound len %d first byte %d\n", pl, from.sun_path[0]);
    printf("to abstract: %zd\n", sendto(ab2, "abs", 3, 0, (void *)&an, anl));
    fl = sizeof from;
    memset(buf, 0, sizeof buf);
    r = recvfrom(ab, buf, sizeof buf, 0, (void *)&from, &fl);
    printf("abstract got %zd '%s' from len %d\n", r, buf, fl);
    close(ab);
    printf("abstract after close: %s\n", E(sendto(ab2, "x", 1, 0, (void *)&an, anl)));
    ab = socket(AF_UNIX, SOCK_DGRAM, 0);
    printf("rebind abstract: %s\n", E(bind(ab, (void *)&an, anl)));
    int st = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("stream to dgram: %s\n", E(connect(st, (void *)&an, anl)));
    /* dgram socketpair keeps boundaries */
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    send(sv[0], "aa", 2, 0); send(sv[0], "bbb", 3, 0);
    printf("pair: %zd %zd\n", recv(sv[1], buf, sizeof buf, 0), recv(sv[1], buf, sizeof buf, 0));
    shutdown(sv[1], SHUT_RD);
    printf("send after peer shut rd: %s\n", E(send(sv[0], "x", 1, MSG_NOSIGNAL)));
    show_poll("dgram shut rd", sv[1]);
    printf("recv after shut rd: %zd\n", recv(sv[1], buf, sizeof buf, 0));
    unlink(a.sun_path); unlink(b.sun_path);
    return 0;
}
"#;

const SEQPACKET: &str = r#"
int main(int argc, char **argv) {
    int sv[2];
    printf("socketpair: %s\n", E(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)));
    send(sv[0], "first record", 12, 0);
    send(sv[0], "second", 6, 0);
    send(sv[0], "", 0, 0);
    char buf[64] = {0};
    struct iovec iov = {buf, 5};
    struct msghdr m = {0};
    m.msg_iov = &iov; m.msg_iovlen = 1;
    ssize_t r = recvmsg(sv[1], &m, 0);
    printf("short read: %zd trunc %d '%.*s'\n", r, !!(m.msg_flags & MSG_TRUNC), (int)r, buf);
    r = recv(sv[1], buf, sizeof buf, MSG_PEEK);
    printf("peek: %zd\n", r);
    r = recv(sv[1], buf, 2, MSG_TRUNC);
    printf("trunc flag: %zd\n", r);
    printf("empty record: %zd\n", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    printf("then: %s\n", E(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)));
    close(sv[0]);
    printf("eof: %zd\n", recv(sv[1], buf, sizeof buf, 0));
    /* listen/accept over an abstract name, backlog, non-blocking connect */
    struct sockaddr_un an;
    socklen_t anl = mkabstract(&an, "rvisor-seq");
    int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    printf("bind: %s\n", E(bind(l, (void *)&an, anl)));
    printf("listen: %s\n", E(listen(l, 1)));
    int cs[4];
    for (int i = 0; i < 4; i++) {
        cs[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
        printf("connect %d: %s\n", i, E(connect(cs[i], (void *)&an, anl)));
    }
    int s = accept4(l, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);
    printf("accept4: %s flags nonblock %d cloexec %d\n", E(s), !!(fcntl(s, F_GETFL) & O_NONBLOCK), !!(fcntl(s, F_GETFD) & FD_CLOEXEC));
    send(cs[0], "over", 4, 0);
    printf("server got %zd\n", recv(s, buf, sizeof buf, 0));
    close(l);
    printf("pending client after listener close: %s\n", E(recv(cs[1], buf, sizeof buf, 0)));
    printf("big record: %s\n", E(send(s, malloc(1 << 20), 1 << 20, 0)));
    int sv2[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv2);
    int sb = 4096;
    setsockopt(sv2[0], SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    socklen_t sl = sizeof sb;
    getsockopt(sv2[0], SOL_SOCKET, SO_SNDBUF, &sb, &sl);
    printf("SO_SNDBUF doubled: %d\n", sb);
    struct timeval tv = {0, 20000};
    printf("SO_RCVTIMEO: %s\n", E(setsockopt(sv2[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)));
    printf("timed out: %s\n", E(recv(sv2[1], buf, sizeof buf, 0)));
    printf("bad option: %s\n", E(setsockopt(sv2[1], SOL_SOCKET, 9999, &sb, sizeof sb)));
    printf("bad level: %s\n", E(getsockopt(sv2[1], 6, 1, &sb, &sl)));
    return 0;
}
"#;

const CREDS: &str = r#"
int main(int argc, char **argv) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int on = 1;
    printf("SO_PASSCRED: %s\n", E(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on)));
    pid_t child = fork();
    if (child == 0) {
        send(sv[0], "from child", 10, 0);
        _exit(0);
    }
    waitpid(child, 0, 0);
    send(sv[0], "from parent", 11, 0);
    char buf[64] = {0}, ctl[256];
    for (int i = 0; i < 2; i++) {
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {0};
        m.msg_iov = &iov; m.msg_iovlen = 1;
        m.msg_control = ctl; m.msg_controllen = sizeof ctl;
        memset(buf, 0, sizeof buf);
        ssize_t r = recvmsg(sv[1], &m, 0);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        struct ucred *u = c ? (struct ucred *)CMSG_DATA(c) : 0;
        printf("recv %zd '%s': cmsg %d type %d pid %s uid %d\n", r, buf, c != 0, c ? c->cmsg_type : -1,
               !u ? "none" : u->pid == child ? "child" : u->pid == getpid() ? "parent" : "other", u ? (int)u->uid : -1);
    }
    /* explicit credentials: own ids pass, a forged pid does not (unless privileged) */
    struct { struct cmsghdr h; struct ucred u; } cm;
    memset(&cm, 0, sizeof cm);
    cm.h.cmsg_len = CMSG_LEN(sizeof(struct ucred));
    cm.h.cmsg_level = SOL_SOCKET;
    cm.h.cmsg_type = SCM_CREDENTIALS;
    cm.u.pid = getpid(); cm.u.uid = getuid(); cm.u.gid = getgid();
    struct iovec iov = {"c", 1};
    struct msghdr m = {0};
    m.msg_iov = &iov; m.msg_iovlen = 1;
    m.msg_control = &cm; m.msg_controllen = sizeof cm;
    printf("own creds: %s\n", E(sendmsg(sv[0], &m, 0)));
    if (fork() == 0) {
        setgid(1000); setuid(1000);
        printf("forged uid as non-root: %s\n", E(sendmsg(sv[0], &m, 0)));
        cm.u.uid = 1000; cm.u.gid = 1000; cm.u.pid = 1;
        printf("forged pid as non-root: %s\n", E(sendmsg(sv[0], &m, 0)));
        cm.u.pid = getpid();
        printf("own ids as non-root: %s\n", E(sendmsg(sv[0], &m, 0)));
        _exit(0);
    }
    wait(0);
    cm.h.cmsg_type = 99;
    printf("unknown cmsg: %s\n", E(sendmsg(sv[0], &m, 0)));
    /* peercred across a listener */
    struct sockaddr_un an;
    socklen_t anl = mkabstract(&an, "rvisor-cred");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (void *)&an, anl);
    listen(l, 4);
    pid_t k = fork();
    if (k == 0) {
        setgid(1234); setuid(4321);
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        connect(c, (void *)&an, anl);
        struct ucred u; socklen_t ul = sizeof u;
        getsockopt(c, SOL_SOCKET, SO_PEERCRED, &u, &ul);
        printf("client sees listener: uid %d gid %d\n", u.uid, u.gid);
        read(c, &u, 1);
        _exit(0);
    }
    int s = accept(l, 0, 0);
    struct ucred u; socklen_t ul = sizeof u;
    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &u, &ul);
    printf("server sees client: uid %d gid %d pid %s\n", u.uid, u.gid, u.pid == k ? "child" : "other");
    close(s);
    waitpid(k, 0, 0);
    return 0;
}
"#;

fn differential(name: &str, body: &str) -> String {
    let dir = TempDir::new(name);
    let src = format!("{COMMON}\n#include <sys/ioctl.h>\n{body}");
    let exe = compile_static_c(&dir, name, &src);
    let d = dir.path().to_str().unwrap().to_string();
    let (native, _) = Invocation::new(&[exe.to_str().unwrap(), &d]).assert_same();
    native.stdout_str()
}

#[test]
fn unix_stream_sockets() {
    let out = differential("stream", STREAM);
    assert!(out.contains("read rest: 8 'lo world'"), "{out}");
}

#[test]
fn unix_datagram_sockets() {
    let out = differential("dgram", DGRAM);
    assert!(out.contains("abstract got 3 'abs'"), "{out}");
}

#[test]
fn unix_seqpacket_sockets() {
    let out = differential("seqpacket", SEQPACKET);
    assert!(out.contains("short read: 5 trunc 1 'first'"), "{out}");
}

#[test]
fn unix_socket_credentials() {
    let out = differential("creds", CREDS);
    assert!(out.contains("pid child"), "{out}");
}
