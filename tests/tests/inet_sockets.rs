//! AF_INET and AF_INET6 sockets on loopback (TCP and UDP; bind rules,
//! ephemeral ports, dual-stack and V6ONLY, non-blocking connect, shutdown,
//! SIGPIPE, peeking, truncation, large transfers, sendfile, epoll,
//! options, the loopback interface's ioctls): each program runs natively
//! and under rvisor with identical output. The native run is in a fresh
//! network namespace with only `lo` up (the host may have IPv6 off and
//! other interfaces); the programs print no port numbers, only comparisons.

use rvisor_tests::{assert_outputs_equal, compile_static_c, require_program, Invocation, TempDir};

const COMMON: &str = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <unistd.h>
static const char *E(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
typedef struct sockaddr_storage SA;
static socklen_t mk(int fam, const char *ip, int port, SA *a) {
    memset(a, 0, sizeof *a);
    if (fam == AF_INET) {
        struct sockaddr_in *s = (void *)a;
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        inet_pton(AF_INET, ip, &s->sin_addr);
        return sizeof *s;
    }
    struct sockaddr_in6 *s = (void *)a;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &s->sin6_addr);
    return sizeof *s;
}
static int port_in(SA *a) {
    return ntohs(a->ss_family == AF_INET ? ((struct sockaddr_in *)a)->sin_port
                                         : ((struct sockaddr_in6 *)a)->sin6_port);
}
/* An address without its port: family, length and IP. */
static const char *show(SA *a, socklen_t len) {
    static char buf[4][128];
    static int k;
    char ip[64] = "?";
    char *b = buf[k++ % 4];
    if (a->ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)a)->sin_addr, ip, sizeof ip);
    else if (a->ss_family == AF_INET6) {
        struct sockaddr_in6 *s = (void *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        snprintf(ip + strlen(ip), 20, " flow %u scope %u", s->sin6_flowinfo, s->sin6_scope_id);
    }
    snprintf(b, 128, "%s/%d %s", a->ss_family == AF_INET ? "inet" : a->ss_family == AF_INET6 ? "inet6" : "other", (int)len, ip);
    return b;
}
static SA name_of(int fd, socklen_t *len) {
    SA a; socklen_t l = sizeof a; memset(&a, 0, sizeof a);
    getsockname(fd, (void *)&a, &l);
    if (len) *len = l;
    return a;
}
static SA peer_of(int fd) {
    SA a; socklen_t l = sizeof a; memset(&a, 0, sizeof a);
    getpeername(fd, (void *)&a, &l);
    return a;
}
static int same(SA a, SA b) { return memcmp(&a, &b, sizeof a) == 0; }
static int port_of(int fd) { SA a = name_of(fd, 0); return port_in(&a); }
static int ephemeral(int p) { return p >= 32768 && p <= 60999; }
static void show_poll(const char *what, int fd) {
    struct pollfd p = {fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&p, 1, 0);
    printf("%s: in %d out %d hup %d rdhup %d err %d\n", what, !!(p.revents & POLLIN),
           !!(p.revents & POLLOUT), !!(p.revents & POLLHUP), !!(p.revents & POLLRDHUP),
           !!(p.revents & POLLERR));
}
static int geti(int fd, int level, int name) {
    int v = -12345; socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) < 0) return -errno * 1000;
    return v;
}
"#;

const TCP: &str = r#"
static volatile int pipes;
static void on_pipe(int s) { (void)s; pipes++; }
static void tcp(int fam, const char *ip) {
    printf("== tcp %s\n", ip);
    char buf[64] = {0};
    SA a, pa;
    socklen_t al = mk(fam, ip, 0, &a), pl;
    int l = socket(fam, SOCK_STREAM, 0);
    printf("bind: %s\n", E(bind(l, (void *)&a, al)));
    int p = port_of(l);
    printf("ephemeral: %d\n", ephemeral(p));
    printf("bind again: %s\n", E(bind(l, (void *)&a, al)));
    socklen_t nl;
    SA n = name_of(l, &nl);
    printf("name: %s\n", show(&n, nl));
    int l2 = socket(fam, SOCK_STREAM, 0);
    al = mk(fam, ip, p, &a);
    printf("bind used port: %s\n", E(bind(l2, (void *)&a, al)));
    close(l2);
    printf("listen: %s\n", E(listen(l, 8)));
    show_poll("listener idle", l);
    int c = socket(fam, SOCK_STREAM, 0);
    show_poll("fresh", c);
    n = name_of(c, &nl);
    printf("unbound name: %s port %d\n", show(&n, nl), port_in(&n));
    printf("send unconnected: %s\n", E(send(c, "x", 1, MSG_NOSIGNAL)));
    printf("recv unconnected: %s\n", E(recv(c, buf, 1, MSG_DONTWAIT)));
    printf("recv listener: %s\n", E(recv(l, buf, 1, MSG_DONTWAIT)));
    printf("getpeername unconnected: %s\n", E(getpeername(c, (void *)&pa, &(socklen_t){sizeof pa})));
    printf("connect: %s\n", E(connect(c, (void *)&a, al)));
    printf("connect again: %s\n", E(connect(c, (void *)&a, al)));
    show_poll("listener pending", l);
    pl = sizeof pa;
    int s = accept(l, (void *)&pa, &pl);
    printf("accept: %s peer %s\n", E(s), show(&pa, pl));
    printf("accepted peer is client's name: %d\n", same(pa, name_of(c, 0)));
    printf("client's peer is server's name: %d\n", same(peer_of(c), name_of(s, 0)));
    printf("server port is listener's: %d, client port ephemeral: %d\n", port_of(s) == p, ephemeral(port_of(c)));
    write(c, "hello", 5);
    printf("server read %zd\n", read(s, buf, sizeof buf));
    send(s, "peekaboo", 8, 0);
    int q = -1;
    ioctl(c, FIONREAD, &q);
    printf("FIONREAD %d\n", q);
    ioctl(s, SIOCOUTQ, &q);
    printf("SIOCOUTQ %d\n", q);
    memset(buf, 0, sizeof buf);
    printf("peek %zd '%s'\n", recv(c, buf, 4, MSG_PEEK), buf);
    memset(buf, 0, sizeof buf);
    printf("read %zd '%s'\n", recv(c, buf, sizeof buf, 0), buf);
    printf("nonblocking read empty: %s\n", E(recv(c, buf, 1, MSG_DONTWAIT)));
    show_poll("connected", c);
    printf("shutdown wr: %s\n", E(shutdown(c, SHUT_WR)));
    printf("server eof: %zd\n", read(s, buf, sizeof buf));
    show_poll("server after peer shutdown", s);
    printf("send after shutdown: %s\n", E(send(c, "x", 1, MSG_NOSIGNAL)));
    const char *r = E(write(c, "x", 1));
    printf("write after shutdown: %s sigpipes %d\n", r, pipes);
    printf("server still writes: %zd\n", write(s, "bye", 3));
    printf("client reads: %zd\n", read(c, buf, sizeof buf));
    close(s);
    printf("client eof: %zd\n", read(c, buf, sizeof buf));
    show_poll("client after close", c);
    close(c);

    /* Non-blocking connect: EINPROGRESS, then writable with SO_ERROR 0. */
    int nb = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
    printf("nonblocking connect: %s\n", E(connect(nb, (void *)&a, al)));
    struct pollfd pf = {nb, POLLOUT, 0};
    int ready = poll(&pf, 1, 5000);
    printf("poll: %d out %d\n", ready, !!(pf.revents & POLLOUT));
    printf("SO_ERROR %d\n", geti(nb, SOL_SOCKET, SO_ERROR));
    printf("connect after: %s\n", E(connect(nb, (void *)&a, al)));
    printf("connect third: %s\n", E(connect(nb, (void *)&a, al)));
    s = accept(l, 0, 0);
    printf("accepted: %s\n", E(s));
    close(s);
    close(nb);

    /* Writing to a closed peer: the first write goes out, the reset it
     * draws fails the next. */
    c = socket(fam, SOCK_STREAM, 0);
    connect(c, (void *)&a, al);
    s = accept(l, 0, 0);
    close(s);
    printf("eof: %zd\n", read(c, buf, 1));
    show_poll("peer closed", c);
    printf("zero-length send: %zd\n", send(c, "", 0, MSG_NOSIGNAL));
    printf("first write: %zd\n", send(c, "x", 1, MSG_NOSIGNAL));
    printf("second write: %s\n", E(send(c, "x", 1, MSG_NOSIGNAL)));
    show_poll("reset", c);
    close(c);

    /* A peer that shut its reading side still gets the data (TCP sends
     * nothing for SHUT_RD). */
    c = socket(fam, SOCK_STREAM, 0);
    connect(c, (void *)&a, al);
    s = accept(l, 0, 0);
    printf("shutdown rd: %s\n", E(shutdown(s, SHUT_RD)));
    printf("write to it: %zd\n", send(c, "y", 1, MSG_NOSIGNAL));
    show_poll("writer", c);
    close(s);
    close(c);

    /* A listener closing with a connection nobody accepted. */
    c = socket(fam, SOCK_STREAM, 0);
    printf("connect: %s\n", E(connect(c, (void *)&a, al)));
    close(l);
    printf("after listener close: %s\n", E(recv(c, buf, 1, 0)));
    close(c);
    c = socket(fam, SOCK_STREAM, 0);
    printf("connect closed port: %s\n", E(connect(c, (void *)&a, al)));
    close(c);
}

int main(void) {
    signal(SIGPIPE, on_pipe);
    tcp(AF_INET, "127.0.0.1");
    tcp(AF_INET6, "::1");
    tcp(AF_INET, "127.0.0.2");
    return 0;
}
"#;

const BIND: &str = r#"
static int bound(int fam, int type, const char *ip, int port, int reuse, int v6only) {
    int s = socket(fam, type, 0);
    if (reuse & 1) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
    if (reuse & 2) setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &(int){1}, sizeof(int));
    if (v6only) setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &(int){1}, sizeof(int));
    SA a;
    socklen_t al = mk(fam, ip, port, &a);
    if (bind(s, (void *)&a, al) < 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}
static int connect_to(int fam, const char *ip, int port) {
    SA a;
    socklen_t al = mk(fam, ip, port, &a);
    int c = socket(fam, SOCK_STREAM, 0);
    int r = connect(c, (void *)&a, al);
    if (r < 0) { int e = errno; close(c); errno = e; return -1; }
    return c;
}
int main(void) {
    int s, t;
    printf("bind 10.1.2.3: %s\n", E(bound(AF_INET, SOCK_STREAM, "10.1.2.3", 0, 0, 0)));
    printf("bind ::2: %s\n", E(bound(AF_INET6, SOCK_STREAM, "::2", 0, 0, 0)));
    printf("bind 127.9.9.9: %s\n", E(bound(AF_INET, SOCK_STREAM, "127.9.9.9", 0, 0, 0)));
    printf("bind 0.0.0.0: %s\n", E(bound(AF_INET, SOCK_STREAM, "0.0.0.0", 0, 0, 0)));
    printf("bind :: : %s\n", E(bound(AF_INET6, SOCK_STREAM, "::", 0, 0, 0)));
    printf("bind ::ffff:127.0.0.1: %s\n", E(bound(AF_INET6, SOCK_STREAM, "::ffff:127.0.0.1", 0, 0, 0)));
    printf("bind v4-mapped on V6ONLY: %s\n", E(bound(AF_INET6, SOCK_STREAM, "::ffff:127.0.0.1", 0, 0, 1)));
    SA a;
    s = socket(AF_INET, SOCK_STREAM, 0);
    mk(AF_INET6, "::1", 0, &a);
    printf("bind v6 address on v4 socket: %s\n", E(bind(s, (void *)&a, sizeof(struct sockaddr_in6))));
    printf("bind short: %s\n", E(bind(s, (void *)&a, 8)));
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    mk(AF_INET, "127.0.0.1", 0, &a);
    printf("bind v4 address on v6 socket: %s\n", E(bind(s, (void *)&a, sizeof(struct sockaddr_in))));
    close(s);
    printf("bind port 80 as root: %s\n", E(bound(AF_INET, SOCK_STREAM, "127.0.0.1", 80, 0, 0)));
    pid_t k = fork();
    if (k == 0) {
        setuid(65534);
        printf("bind port 80 as nobody: %s\n", E(bound(AF_INET, SOCK_STREAM, "127.0.0.1", 80, 0, 0)));
        printf("bind port 1024 as nobody: %s\n", E(bound(AF_INET, SOCK_STREAM, "127.0.0.1", 1024, 0, 0)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(k, 0, 0);

    /* Port sharing. */
    s = bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 0, 0);
    int p = port_of(s);
    printf("same port other address: %s\n", E(t = bound(AF_INET, SOCK_STREAM, "127.0.0.2", p, 0, 0)));
    close(t);
    printf("same port wildcard: %s\n", E(bound(AF_INET, SOCK_STREAM, "0.0.0.0", p, 0, 0)));
    printf("same port v6 wildcard: %s\n", E(bound(AF_INET6, SOCK_STREAM, "::", p, 0, 0)));
    printf("same port v6 wildcard V6ONLY: %s\n", E(t = bound(AF_INET6, SOCK_STREAM, "::", p, 0, 1)));
    close(t);
    printf("same port udp: %s\n", E(t = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", p, 0, 0)));
    close(t);
    close(s);
    s = bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 1, 0);
    p = port_of(s);
    printf("reuseaddr both, unlistened: %s\n", E(t = bound(AF_INET, SOCK_STREAM, "127.0.0.1", p, 1, 0)));
    printf("listen second: %s\n", E(listen(t, 1)));
    printf("listen first: %s\n", E(listen(s, 1)));
    close(t);
    printf("listen first after close: %s\n", E(listen(s, 1)));
    printf("reuseaddr over listener: %s\n", E(bound(AF_INET, SOCK_STREAM, "127.0.0.1", p, 1, 0)));
    close(s);
    s = bound(AF_INET, SOCK_STREAM, "127.0.0.1", 0, 2, 0);
    p = port_of(s);
    printf("reuseport both: %s\n", E(t = bound(AF_INET, SOCK_STREAM, "127.0.0.1", p, 2, 0)));
    printf("listen both: %s %s\n", E(listen(s, 1)), E(listen(t, 1)));
    printf("reuseport without on new: %s\n", E(bound(AF_INET, SOCK_STREAM, "127.0.0.1", p, 0, 0)));
    close(s);
    close(t);

    /* Dual stack. */
    s = bound(AF_INET6, SOCK_STREAM, "::", 0, 0, 0);
    p = port_of(s);
    listen(s, 4);
    printf("v4 connect to dual-stack: %s\n", E(t = connect_to(AF_INET, "127.0.0.1", p)));
    SA pa;
    socklen_t pl = sizeof pa;
    int c = accept(s, (void *)&pa, &pl);
    printf("accepted v4 peer: %s\n", show(&pa, pl));
    socklen_t nl;
    SA n = name_of(c, &nl);
    printf("accepted local: %s\n", show(&n, nl));
    n = name_of(t, &nl);
    printf("v4 client local: %s\n", show(&n, nl));
    close(c);
    close(t);
    printf("v6 connect to mapped: %s\n", E(t = connect_to(AF_INET6, "::ffff:127.0.0.1", p)));
    c = accept(s, 0, 0);
    n = name_of(t, &nl);
    printf("mapped client local: %s\n", show(&n, nl));
    close(c);
    close(t);
    printf("v6 connect to ::1: %s\n", E(t = connect_to(AF_INET6, "::1", p)));
    close(accept(s, 0, 0));
    close(t);
    printf("connect to 0.0.0.0: %s\n", E(t = connect_to(AF_INET, "0.0.0.0", p)));
    close(accept(s, 0, 0));
    close(t);
    close(s);
    s = bound(AF_INET6, SOCK_STREAM, "::", 0, 0, 1);
    p = port_of(s);
    listen(s, 4);
    printf("V6ONLY: %d\n", geti(s, IPPROTO_IPV6, IPV6_V6ONLY));
    printf("set V6ONLY after bind: %s\n", E(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &(int){0}, sizeof(int))));
    printf("v4 connect to V6ONLY: %s\n", E(connect_to(AF_INET, "127.0.0.1", p)));
    printf("v4 bind beside V6ONLY: %s\n", E(t = bound(AF_INET, SOCK_STREAM, "0.0.0.0", p, 0, 0)));
    close(t);
    close(s);
    printf("connect 10.0.0.1: %s\n", E(connect_to(AF_INET, "10.0.0.1", 80)));
    printf("connect ::2: %s\n", E(connect_to(AF_INET6, "::2", 80)));

    /* listen and connect autobind. */
    s = socket(AF_INET, SOCK_STREAM, 0);
    printf("listen unbound: %s ephemeral %d\n", E(listen(s, 4)), ephemeral(port_of(s)));
    n = name_of(s, &nl);
    printf("listen name: %s\n", show(&n, nl));
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    listen(s, 4);
    n = name_of(s, &nl);
    printf("listen name v6: %s\n", show(&n, nl));
    close(s);

    /* socket() arguments. */
    printf("tcp/udp protocol: %s\n", E(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)));
    printf("udp/tcp protocol: %s\n", E(socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP)));
    printf("explicit tcp: %s\n", E(socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP)));
    printf("explicit udp: %s\n", E(socket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP)));
    printf("seqpacket: %s\n", E(socket(AF_INET, SOCK_SEQPACKET, 0)));
    int sv[2];
    printf("socketpair: %s\n", E(socketpair(AF_INET, SOCK_STREAM, 0, sv)));
    return 0;
}
"#;

const UDP: &str = r#"
static void udp(int fam, const char *ip) {
    printf("== udp %s\n", ip);
    char buf[70000];
    SA a, from;
    socklen_t al = mk(fam, ip, 0, &a), fl;
    int u = socket(fam, SOCK_DGRAM, 0);
    printf("bind: %s\n", E(bind(u, (void *)&a, al)));
    int p = port_of(u);
    al = mk(fam, ip, p, &a);
    int v = socket(fam, SOCK_DGRAM, 0);
    printf("unbound port: %d\n", port_of(v));
    printf("send no address: %s\n", E(send(v, "x", 1, 0)));
    printf("sendto: %zd\n", sendto(v, "hello", 5, 0, (void *)&a, al));
    printf("autobound ephemeral: %d\n", ephemeral(port_of(v)));
    int q = -1;
    ioctl(u, FIONREAD, &q);
    printf("FIONREAD %d\n", q);
    fl = sizeof from;
    memset(buf, 0, 16);
    ssize_t got = recvfrom(u, buf, sizeof buf, 0, (void *)&from, &fl);
    printf("recvfrom: %zd '%s' from %s\n", got, buf, show(&from, fl));
    printf("from is sender's name: %d\n", port_in(&from) == port_of(v));
    sendto(v, "0123456789", 10, 0, (void *)&a, al);
    sendto(v, "0123456789", 10, 0, (void *)&a, al);
    printf("short recv: %zd\n", recv(u, buf, 4, 0));
    printf("MSG_TRUNC recv: %zd\n", recv(u, buf, 4, MSG_TRUNC));
    sendto(v, "abcdef", 6, 0, (void *)&a, al);
    struct iovec io = {buf, 3};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &io, .msg_iovlen = 1};
    got = recvmsg(u, &m, 0);
    printf("recvmsg: %zd flags trunc %d namelen ok %d\n", got, !!(m.msg_flags & MSG_TRUNC), m.msg_namelen == al);
    sendto(v, "", 0, 0, (void *)&a, al);
    printf("empty datagram: %zd\n", recv(u, buf, sizeof buf, 0));
    printf("peek: %zd\n", (sendto(v, "peek", 4, 0, (void *)&a, al), recv(u, buf, sizeof buf, MSG_PEEK)));
    printf("then: %zd\n", recv(u, buf, sizeof buf, 0));
    printf("nothing: %s\n", E(recv(u, buf, sizeof buf, MSG_DONTWAIT)));
    int max = fam == AF_INET ? 65507 : 65527;
    printf("max size: %zd\n", sendto(v, buf, max, 0, (void *)&a, al));
    printf("got: %zd\n", recv(u, buf, sizeof buf, 0));
    printf("too big: %s\n", E(sendto(v, buf, max + 1, 0, (void *)&a, al)));

    /* Connected sockets. */
    SA va = name_of(v, 0);
    printf("connect: %s\n", E(connect(u, (void *)&va, al)));
    printf("getpeername is v: %d\n", same(peer_of(u), va));
    printf("send connected: %zd\n", send(u, "back", 4, 0));
    printf("v got: %zd\n", recv(v, buf, sizeof buf, 0));
    int z = socket(fam, SOCK_DGRAM, 0);
    sendto(z, "stranger", 8, 0, (void *)&a, al);
    printf("stranger filtered: %s\n", E(recv(u, buf, sizeof buf, MSG_DONTWAIT)));
    sendto(v, "friend", 6, 0, (void *)&a, al);
    printf("friend: %zd\n", recv(u, buf, sizeof buf, MSG_DONTWAIT));
    SA un;
    memset(&un, 0, sizeof un);
    un.ss_family = AF_UNSPEC;
    printf("disconnect: %s\n", E(connect(u, (void *)&un, sizeof un)));
    printf("getpeername: %s\n", E(getpeername(u, (void *)&from, &(socklen_t){sizeof from})));
    printf("bound port kept: %d\n", port_of(u) == p);

    /* Refused: the port has nobody. */
    int w = socket(fam, SOCK_DGRAM, 0);
    bind(w, (void *)&a, mk(fam, ip, 0, &from));
    SA wa = name_of(w, 0);
    close(w);
    printf("sendto nobody: %zd\n", sendto(z, "x", 1, 0, (void *)&wa, al));
    printf("unconnected no error: %s\n", E(recv(z, buf, 1, MSG_DONTWAIT)));
    printf("connect: %s\n", E(connect(z, (void *)&wa, al)));
    printf("send: %zd\n", send(z, "x", 1, 0));
    show_poll("refused", z);
    printf("send again: %s\n", E(send(z, "x", 1, 0)));
    printf("send third: %zd\n", send(z, "x", 1, 0));
    printf("recv: %s\n", E(recv(z, buf, 1, MSG_DONTWAIT)));
    printf("SO_ERROR after: %d\n", geti(z, SOL_SOCKET, SO_ERROR));
    printf("shutdown unconnected: %s\n", E(shutdown(v, SHUT_RDWR)));
    close(u); close(v); close(z);
}
int main(void) {
    udp(AF_INET, "127.0.0.1");
    udp(AF_INET6, "::1");
    return 0;
}
"#;

const BULK: &str = r#"
#define TOTAL (8 << 20)
static unsigned sum(const unsigned char *b, size_t n, unsigned h) {
    for (size_t i = 0; i < n; i++) h = h * 31 + b[i];
    return h;
}
int main(int argc, char **argv) {
    for (int round = 0; round < 2; round++) {
        int fam = round ? AF_INET6 : AF_INET;
        SA a;
        socklen_t al = mk(fam, round ? "::1" : "127.0.0.1", 0, &a);
        int l = socket(fam, SOCK_STREAM, 0);
        bind(l, (void *)&a, al);
        listen(l, 1);
        al = mk(fam, round ? "::1" : "127.0.0.1", port_of(l), &a);
        pid_t k = fork();
        if (k == 0) {
            int c = socket(fam, SOCK_STREAM, 0);
            connect(c, (void *)&a, al);
            static unsigned char b[65536];
            unsigned h = 0;
            size_t done = 0;
            while (done < TOTAL) {
                size_t n = TOTAL - done < sizeof b ? TOTAL - done : sizeof b;
                for (size_t i = 0; i < n; i++) b[i] = (unsigned char)((done + i) * 7 + (done + i) / 4096);
                h = sum(b, n, h);
                ssize_t w = write(c, b, n);
                if (w <= 0) { perror("write"); _exit(1); }
                done += w;
                if ((size_t)w < n) { fprintf(stderr, "short write\n"); }
            }
            printf("child sent %zu sum %08x\n", done, h);
            fflush(stdout);
            /* Then sendfile a file. */
            int f = open(argv[1], O_RDONLY);
            off_t off = 0;
            ssize_t sent = 0, r;
            while ((r = sendfile(c, f, &off, 1 << 20)) > 0) sent += r;
            printf("sendfile %zd %s\n", sent, E(r));
            fflush(stdout);
            close(c);
            _exit(0);
        }
        int s = accept(l, 0, 0);
        static unsigned char b[100000];
        unsigned h = 0;
        size_t got = 0;
        ssize_t n;
        while (got < TOTAL && (n = read(s, b, TOTAL - got < sizeof b ? TOTAL - got : sizeof b)) > 0) {
            h = sum(b, n, h);
            got += n;
        }
        waitpid(k, 0, 0);
        printf("parent got %zu sum %08x\n", got, h);
        h = 0; got = 0;
        while ((n = read(s, b, sizeof b)) > 0) { h = sum(b, n, h); got += n; }
        printf("file got %zu sum %08x\n", got, h);
        close(s);
        close(l);
    }
    return 0;
}
"#;

const EPOLL: &str = r#"
static void events(int ep, const char *what) {
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, 8, 1000);
    printf("%s:", what);
    for (int i = 0; i < n; i++)
        printf(" [%lu%s%s%s%s]", (unsigned long)ev[i].data.u64, ev[i].events & EPOLLIN ? " in" : "",
               ev[i].events & EPOLLOUT ? " out" : "", ev[i].events & EPOLLRDHUP ? " rdhup" : "",
               ev[i].events & EPOLLHUP ? " hup" : "");
    printf("\n");
}
static void add(int ep, int fd, unsigned evs, int tag) {
    struct epoll_event e = {.events = evs, .data.u64 = tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}
int main(void) {
    int ep = epoll_create1(0);
    SA a;
    socklen_t al = mk(AF_INET, "127.0.0.1", 0, &a);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    bind(l, (void *)&a, al);
    listen(l, 4);
    al = mk(AF_INET, "127.0.0.1", port_of(l), &a);
    add(ep, l, EPOLLIN, 1);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    printf("connect: %s\n", E(connect(c, (void *)&a, al)));
    add(ep, c, EPOLLOUT, 2);
    events(ep, "after connect");
    int s = accept4(l, 0, 0, SOCK_NONBLOCK);
    add(ep, s, EPOLLIN | EPOLLRDHUP, 3);
    events(ep, "accepted");
    write(c, "ping", 4);
    events(ep, "data");
    char buf[16];
    printf("read %zd\n", read(s, buf, sizeof buf));
    events(ep, "drained");
    shutdown(c, SHUT_WR);
    events(ep, "shutdown");
    close(c); close(s); close(l);
    int u = socket(AF_INET6, SOCK_DGRAM, 0);
    al = mk(AF_INET6, "::1", 0, &a);
    bind(u, (void *)&a, al);
    al = mk(AF_INET6, "::1", port_of(u), &a);
    add(ep, u, EPOLLIN, 4);
    int v = socket(AF_INET6, SOCK_DGRAM, 0);
    sendto(v, "d", 1, 0, (void *)&a, al);
    events(ep, "udp");
    return 0;
}
"#;

const OPTS: &str = r#"
static void opt(int fd, const char *what, int level, int name, int set) {
    int before = geti(fd, level, name);
    int r = setsockopt(fd, level, name, &set, sizeof set);
    printf("%s: %d set %d: %s -> %d\n", what, before, set, E(r), geti(fd, level, name));
}
int main(void) {
    int t = socket(AF_INET, SOCK_STREAM, 0);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    int t6 = socket(AF_INET6, SOCK_STREAM, 0);
    printf("type %d %d domain %d %d %d protocol %d %d\n", geti(t, SOL_SOCKET, SO_TYPE), geti(u, SOL_SOCKET, SO_TYPE),
           geti(t, SOL_SOCKET, SO_DOMAIN), geti(u, SOL_SOCKET, SO_DOMAIN), geti(t6, SOL_SOCKET, SO_DOMAIN),
           geti(t, SOL_SOCKET, SO_PROTOCOL), geti(u, SOL_SOCKET, SO_PROTOCOL));
    opt(t, "SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, 5);
    opt(t, "SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT, 1);
    opt(t, "SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, 1);
    opt(u, "SO_BROADCAST", SOL_SOCKET, SO_BROADCAST, 1);
    opt(t, "SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 10000);
    opt(t, "SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 10000);
    opt(t, "TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, 7);
    opt(t, "TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, 30);
    opt(t, "TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, 5);
    opt(t, "TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, 3);
    opt(t, "TCP_KEEPCNT 0", IPPROTO_TCP, TCP_KEEPCNT, 0);
    opt(t, "TCP_CORK", IPPROTO_TCP, TCP_CORK, 1);
    opt(t, "TCP_QUICKACK", IPPROTO_TCP, TCP_QUICKACK, 0);
    opt(t, "TCP_DEFER_ACCEPT", IPPROTO_TCP, TCP_DEFER_ACCEPT, 0);
    opt(t, "TCP_MAXSEG", IPPROTO_TCP, TCP_MAXSEG, 1000);
    opt(u, "TCP_NODELAY on udp", IPPROTO_TCP, TCP_NODELAY, 1);
    opt(t, "IP_TOS", IPPROTO_IP, IP_TOS, 0x10);
    opt(t, "IP_TTL", IPPROTO_IP, IP_TTL, 10);
    opt(t, "IP_TTL -1", IPPROTO_IP, IP_TTL, -1);
    opt(t, "IP_TTL 256", IPPROTO_IP, IP_TTL, 256);
    opt(u, "IP_RECVERR", IPPROTO_IP, IP_RECVERR, 1);
    opt(t, "IPV6_V6ONLY on v4", IPPROTO_IPV6, IPV6_V6ONLY, 1);
    opt(t6, "IPV6_V6ONLY", IPPROTO_IPV6, IPV6_V6ONLY, 1);
    opt(t6, "IPV6_UNICAST_HOPS", IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
    opt(t6, "IP_TOS on v6", IPPROTO_IP, IP_TOS, 0x20);
    opt(t, "unknown tcp option", IPPROTO_TCP, 99, 1);
    opt(t, "unknown level", 200, 1, 1);
    struct linger lg = {1, 5};
    printf("SO_LINGER set: %s\n", E(setsockopt(t, SOL_SOCKET, SO_LINGER, &lg, sizeof lg)));
    memset(&lg, 0, sizeof lg);
    socklen_t ll = sizeof lg;
    getsockopt(t, SOL_SOCKET, SO_LINGER, &lg, &ll);
    printf("SO_LINGER %d %d len %d\n", lg.l_onoff, lg.l_linger, ll);
    struct timeval tv = {2, 500000};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    memset(&tv, 0, sizeof tv);
    ll = sizeof tv;
    getsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, &ll);
    printf("SO_RCVTIMEO %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    struct tcp_info ti;
    ll = sizeof ti;
    getsockopt(t, IPPROTO_TCP, TCP_INFO, &ti, &ll);
    printf("TCP_INFO fresh state %d\n", ti.tcpi_state);
    char cc[16] = {0};
    ll = sizeof cc;
    printf("TCP_CONGESTION %s\n", E(getsockopt(t, IPPROTO_TCP, TCP_CONGESTION, cc, &ll)));

    int l = socket(AF_INET, SOCK_STREAM, 0);
    SA a;
    socklen_t al = mk(AF_INET, "127.0.0.1", 0, &a);
    bind(l, (void *)&a, al);
    listen(l, 1);
    printf("SO_ACCEPTCONN %d %d\n", geti(l, SOL_SOCKET, SO_ACCEPTCONN), geti(t, SOL_SOCKET, SO_ACCEPTCONN));
    ll = sizeof ti;
    getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &ll);
    printf("TCP_INFO listener state %d\n", ti.tcpi_state);
    al = mk(AF_INET, "127.0.0.1", port_of(l), &a);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    connect(c, (void *)&a, al);
    int s = accept(l, 0, 0);
    ll = sizeof ti;
    getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &ll);
    printf("TCP_INFO connected state %d\n", ti.tcpi_state);
    printf("accepted inherits TCP_NODELAY: %d\n", geti(s, IPPROTO_TCP, TCP_NODELAY));
    struct ucred uc;
    const char *r;
    ll = sizeof uc;
    r = E(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &uc, &ll));
    printf("SO_PEERCRED %s pid %d uid %d gid %d\n", r, uc.pid, uc.uid, uc.gid);
    printf("SO_ERROR %d\n", geti(c, SOL_SOCKET, SO_ERROR));
    close(s);
    close(c);

    /* The loopback interface. */
    printf("if_nametoindex lo %u eth0 %u\n", if_nametoindex("lo"), if_nametoindex("eth0"));
    char name[IF_NAMESIZE] = {0};
    printf("if_indextoname 1 %s\n", if_indextoname(1, name) ? name : "(null)");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    r = E(ioctl(u, SIOCGIFFLAGS, &ifr));
    printf("SIOCGIFFLAGS %s up %d loopback %d running %d\n", r, !!(ifr.ifr_flags & IFF_UP),
           !!(ifr.ifr_flags & IFF_LOOPBACK), !!(ifr.ifr_flags & IFF_RUNNING));
    r = E(ioctl(u, SIOCGIFADDR, &ifr));
    printf("SIOCGIFADDR %s %s\n", r, inet_ntoa(((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr));
    r = E(ioctl(u, SIOCGIFINDEX, &ifr));
    printf("SIOCGIFINDEX %s %d\n", r, ifr.ifr_ifindex);
    strcpy(ifr.ifr_name, "nosuch0");
    printf("SIOCGIFINDEX nosuch: %s\n", E(ioctl(u, SIOCGIFINDEX, &ifr)));
    struct ifreq reqs[4];
    struct ifconf ifc = {.ifc_len = sizeof reqs, .ifc_req = reqs};
    r = E(ioctl(u, SIOCGIFCONF, &ifc));
    printf("SIOCGIFCONF %s n %d first %s\n", r, ifc.ifc_len / (int)sizeof(struct ifreq), reqs[0].ifr_name);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int g = getaddrinfo("localhost", "80", &hints, &res);
    printf("getaddrinfo localhost: %d family %d\n", g, g == 0 ? res->ai_family : -1);
    g = getaddrinfo("127.0.0.1", "http", &hints, &res);
    printf("getaddrinfo numeric: %d port ok %d\n", g, g == 0 && ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port) == 80);
    return 0;
}
"#;

/// Runs `body` natively (in a new network namespace with lo up) and under
/// rvisor, compares, and returns the output.
fn differential(name: &str, body: &str) -> String {
    let unshare = require_program("unshare", "util-linux");
    require_program("ip", "iproute2");
    let dir = TempDir::new(name);
    let src = format!("{COMMON}\n{body}");
    let exe = compile_static_c(&dir, name, &src);
    let data = rvisor_tests::deterministic_bytes(3 << 20, 7);
    let file = dir.write_file("data", &data, 0o644);
    let exe = exe.to_str().unwrap().to_string();
    let file = file.to_str().unwrap().to_string();
    let native = Invocation::new(&[
        unshare.to_str().unwrap(),
        "-n",
        "sh",
        "-c",
        "ip link set lo up && exec \"$0\" \"$@\"",
        &exe,
        &file,
    ])
    .run_native();
    native.assert_clean_exit();
    let sandboxed = Invocation::new(&[&exe, &file]).run_rvisor();
    assert_outputs_equal(&native, &sandboxed);
    sandboxed.assert_clean_exit();
    native.stdout_str()
}

#[test]
fn inet_tcp_loopback() {
    let out = differential("tcp", TCP);
    assert!(out.contains("nonblocking connect: EINPROGRESS"), "{out}");
    assert!(out.contains("connect closed port: ECONNREFUSED"), "{out}");
}

#[test]
fn inet_bind_rules_and_dual_stack() {
    let out = differential("bind", BIND);
    assert!(out.contains("bind 10.1.2.3: EADDRNOTAVAIL"), "{out}");
    assert!(out.contains("v4 connect to V6ONLY: ECONNREFUSED"), "{out}");
}

#[test]
fn inet_udp_loopback() {
    let out = differential("udp", UDP);
    assert!(out.contains("MSG_TRUNC recv: 10"), "{out}");
}

#[test]
fn inet_large_transfer_and_sendfile() {
    let out = differential("bulk", BULK);
    assert!(out.contains("file got 3145728"), "{out}");
}

#[test]
fn inet_epoll() {
    let out = differential("epoll", EPOLL);
    assert!(out.contains("udp: [4 in]"), "{out}");
}

#[test]
fn inet_options_and_interface() {
    let out = differential("opts", OPTS);
    assert!(out.contains("if_nametoindex lo 1"), "{out}");
}
