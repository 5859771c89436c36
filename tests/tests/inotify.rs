//! inotify, differential: events the workload's own file operations
//! generate (create, open, modify, access, close, attrib, moves with
//! cookies, delete, delete-self, IN_IGNORED), IN_ISDIR, coalescing,
//! IN_ONESHOT, IN_MASK_ADD, IN_MASK_CREATE, IN_ONLYDIR, rm_watch,
//! FIONREAD, EINVAL for short reads, poll and epoll readiness.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const INOTIFY: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define E(x) ((x) < 0 ? strerror(errno) : "ok")

static int wds[8];
static const char *wname(int wd) {
    static char b[16];
    for (int i = 0; i < 8; i++) if (wds[i] == wd && wd > 0) { snprintf(b, sizeof b, "w%d", i); return b; }
    snprintf(b, sizeof b, "wd%d", wd);
    return b;
}

static void mask_str(unsigned m, char *out) {
    static const struct { unsigned bit; const char *n; } names[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
        {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
        {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"}};
    out[0] = 0;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (m & names[i].bit) { strcat(out, names[i].n); strcat(out, "|"); }
}

static unsigned last_cookie;
/* Print every queued event; cookies as "same as previous" or not. */
static void drain(int fd, const char *what) {
    char buf[4096] __attribute__((aligned(8)));
    printf("-- %s\n", what);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            char m[256];
            mask_str(e->mask, m);
            const char *ck = e->cookie == 0 ? "0" : (e->cookie == last_cookie ? "same" : "new");
            if (e->cookie) last_cookie = e->cookie;
            printf("%s %s cookie=%s len=%u name=%s\n", wname(e->wd), m, ck, e->len, e->len ? e->name : "");
            p += sizeof *e + e->len;
        }
    }
}

int main(int argc, char **argv) {
    char d[256], f[256], g[256], sub[256], h[256];
    snprintf(d, sizeof d, "%s/w", argv[1]);
    snprintf(f, sizeof f, "%s/w/f", argv[1]);
    snprintf(g, sizeof g, "%s/w/g", argv[1]);
    snprintf(sub, sizeof sub, "%s/w/sub", argv[1]);
    snprintf(h, sizeof h, "%s/w/sub/h", argv[1]);
    mkdir(d, 0755);
    printf("bad flags: %s\n", E(inotify_init1(0x10)));
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    printf("init: %s cloexec %d\n", E(in), fcntl(in, F_GETFD) & FD_CLOEXEC);
    char buf[64];
    printf("empty read: %s\n", E(read(in, buf, sizeof buf)));
    printf("zero mask: %s\n", E(inotify_add_watch(in, d, 0)));
    printf("add+create: %s\n", E(inotify_add_watch(in, d, IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE)));
    printf("missing: %s\n", E(inotify_add_watch(in, "/nonexistent", IN_ALL_EVENTS)));
    printf("not inotify: %s\n", E(inotify_add_watch(0, d, IN_ALL_EVENTS)));
    wds[0] = inotify_add_watch(in, d, IN_ALL_EVENTS);
    printf("watch dir: %d\n", wds[0] > 0);
    printf("same inode again: %d\n", inotify_add_watch(in, d, IN_ALL_EVENTS) == wds[0]);
    printf("mask create existing: %s\n", E(inotify_add_watch(in, d, IN_ALL_EVENTS | IN_MASK_CREATE)));
    struct pollfd p = {in, POLLIN, 0};
    printf("poll idle: %d\n", poll(&p, 1, 0));

    int fd = open(f, O_CREAT | O_WRONLY, 0644);
    write(fd, "abc", 3);
    write(fd, "def", 3);
    printf("poll: %d\n", poll(&p, 1, 0));
    int avail = 0;
    ioctl(in, FIONREAD, &avail);
    printf("fionread: %d\n", avail);
    printf("short read: %s\n", E(read(in, buf, 16)));
    close(fd);
    drain(in, "create, write twice (coalesced), close");

    wds[1] = inotify_add_watch(in, f, IN_ALL_EVENTS);
    printf("onlydir on file: %s\n", E(inotify_add_watch(in, f, IN_ALL_EVENTS | IN_ONLYDIR)));
    fd = open(f, O_RDONLY);
    read(fd, buf, sizeof buf);
    close(fd);
    drain(in, "read through both watches");
    chmod(f, 0600);
    truncate(f, 1);
    drain(in, "chmod, truncate");
    rename(f, g);
    drain(in, "rename");
    mkdir(sub, 0755);
    rename(g, h);
    drain(in, "mkdir, move into subdir");
    wds[2] = inotify_add_watch(in, sub, IN_CREATE | IN_ONESHOT);
    int c1 = open(sub, O_RDONLY | O_DIRECTORY);
    close(c1);
    fd = creat(h, 0644); close(fd);
    char h2[300]; snprintf(h2, sizeof h2, "%s2", h);
    fd = creat(h2, 0644); close(fd);
    drain(in, "oneshot on subdir (existing name, then new)");
    unlink(h);
    unlink(h2);
    drain(in, "unlink watched file");
    rmdir(sub);
    drain(in, "rmdir");
    wds[3] = inotify_add_watch(in, d, IN_CREATE);
    printf("replaced mask same wd: %d\n", wds[3] == wds[0]);
    fd = creat(f, 0644); write(fd, "x", 1); close(fd);
    inotify_add_watch(in, d, IN_DELETE | IN_MASK_ADD);
    unlink(f);
    drain(in, "create only, then mask add delete");
    printf("rm_watch: %s\n", E(inotify_rm_watch(in, wds[0])));
    printf("rm_watch again: %s\n", E(inotify_rm_watch(in, wds[0])));
    drain(in, "rm_watch");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 5}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev);
    printf("epoll idle: %d\n", epoll_wait(ep, &out, 1, 0));
    wds[4] = inotify_add_watch(in, d, IN_CREATE);
    printf("new wd differs: %d\n", wds[4] != wds[0]);
    mkdir(sub, 0700);
    int er = epoll_wait(ep, &out, 1, 1000);
    printf("epoll: %d data %llu\n", er, (unsigned long long)out.data.u64);
    drain(in, "after epoll");
    rmdir(sub);
    return 0;
}
"#;

#[test]
fn inotify_events() {
    let dir = TempDir::new("inotify");
    let exe = compile_static_c(&dir, "inotify", INOTIFY);
    let native = TempDir::new("inotify-native");
    let n = Invocation::new(&[exe.to_str().unwrap(), native.path().to_str().unwrap()]).run_native();
    let sandboxed = TempDir::new("inotify-rvisor");
    let r =
        Invocation::new(&[exe.to_str().unwrap(), sandboxed.path().to_str().unwrap()]).run_rvisor();
    rvisor_tests::assert_outputs_equal(&n, &r);
}
