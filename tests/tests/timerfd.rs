//! timerfd, differential: create flags and clocks, relative and absolute
//! one-shot and interval timers, expiration counts, gettime, EAGAIN,
//! EINVAL for short reads and bad arguments, poll and epoll readiness,
//! TFD_IOC_SET_TICKS.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const TIMERFD: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define E(x) ((x) < 0 ? strerror(errno) : "ok")
#define MS 1000000L
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW(0x54, 0, uint64_t)
#endif

static struct itimerspec its(long v_ns, long i_ns) {
    struct itimerspec s = {{i_ns / 1000000000L, i_ns % 1000000000L}, {v_ns / 1000000000L, v_ns % 1000000000L}};
    return s;
}

int main(void) {
    printf("bad clock: %s\n", E(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0)));
    printf("bad flags: %s\n", E(timerfd_create(CLOCK_MONOTONIC, 0x10)));
    int alarm = timerfd_create(CLOCK_BOOTTIME_ALARM, 0);
    printf("boottime alarm (root): %s\n", E(alarm));
    if (alarm >= 0) close(alarm);
    int rt = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
    printf("realtime cloexec: %s fd_cloexec %d\n", E(rt), fcntl(rt, F_GETFD) & FD_CLOEXEC);
    int bt = timerfd_create(CLOCK_BOOTTIME, 0);
    printf("boottime: %s\n", E(bt));
    struct stat st;
    fstat(rt, &st);
    printf("fstat mode %o\n", st.st_mode);

    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    uint64_t n = 0;
    printf("fl nonblock %d\n", !!(fcntl(fd, F_GETFL) & O_NONBLOCK));
    printf("unarmed read: %s\n", E(read(fd, &n, 8)));
    printf("short read: %s\n", E(read(fd, &n, 4)));
    struct itimerspec cur;
    timerfd_gettime(fd, &cur);
    printf("unarmed gettime %ld %ld %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec, (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);

    struct itimerspec s = its(50 * MS, 0), old;
    printf("settime: %s\n", E(timerfd_settime(fd, 0, &s, &old)));
    timerfd_gettime(fd, &cur);
    printf("armed: remaining <= 50ms %d > 0 %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec <= 50 * MS, cur.it_value.tv_nsec > 0);
    struct pollfd p = {fd, POLLIN, 0};
    printf("poll before: %d\n", poll(&p, 1, 0));
    int pr = poll(&p, 1, 2000);
    printf("poll wait: %d revents %#x\n", pr, p.revents);
    ssize_t rr = read(fd, &n, 8);
    printf("read: %zd n=%llu\n", rr, (unsigned long long)n);
    printf("read again: %s\n", E(read(fd, &n, 8)));
    timerfd_gettime(fd, &cur);
    printf("expired gettime %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

    // Interval: several expirations counted in one read.
    s = its(10 * MS, 10 * MS);
    timerfd_settime(fd, 0, &s, NULL);
    usleep(75 * 1000);
    read(fd, &n, 8);
    printf("interval ticks >= 5: %d\n", n >= 5 && n <= 9);
    timerfd_gettime(fd, &cur);
    printf("interval gettime: %ld %ld\n", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
    struct itimerspec z = its(0, 0);
    timerfd_settime(fd, 0, &z, &old);
    printf("disarm old interval %ld\n", old.it_interval.tv_nsec);
    usleep(30 * 1000);
    printf("after disarm: %s\n", E(read(fd, &n, 8)));

    // Absolute time in the past: expires at once; with an interval the
    // missed periods count.
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec a = {{0, 0}, {now.tv_sec - 1, now.tv_nsec}};
    printf("abstime past: %s\n", E(timerfd_settime(fd, TFD_TIMER_ABSTIME, &a, NULL)));
    p.revents = 0;
    poll(&p, 1, 1000);
    read(fd, &n, 8);
    printf("abstime past ticks %llu\n", (unsigned long long)n);
    clock_gettime(CLOCK_REALTIME, &now);
    a.it_value.tv_sec = now.tv_sec;
    a.it_value.tv_nsec = now.tv_nsec;
    a.it_value.tv_nsec += 30 * MS;
    if (a.it_value.tv_nsec >= 1000000000L) { a.it_value.tv_sec++; a.it_value.tv_nsec -= 1000000000L; }
    printf("realtime abs cancel-on-set: %s\n", E(timerfd_settime(rt, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &a, NULL)));
    rr = read(rt, &n, 8);
    printf("blocking read: %zd n=%llu\n", rr, (unsigned long long)n);

    // epoll
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42}, out;
    printf("epoll add: %s\n", E(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)));
    printf("epoll idle: %d\n", epoll_wait(ep, &out, 1, 0));
    s = its(20 * MS, 0);
    timerfd_settime(fd, 0, &s, NULL);
    int r = epoll_wait(ep, &out, 1, 2000);
    printf("epoll: %d events %#x data %llu\n", r, out.events, (unsigned long long)out.data.u64);
    read(fd, &n, 8);

    // Errors.
    printf("bad flags settime: %s\n", E(timerfd_settime(fd, 4, &s, NULL)));
    struct itimerspec bad = its(0, 0);
    bad.it_value.tv_nsec = 1000000000L;
    printf("bad nsec: %s\n", E(timerfd_settime(fd, 0, &bad, NULL)));
    printf("not a timerfd: %s\n", E(timerfd_settime(0, 0, &s, NULL)));
    printf("bad fd: %s\n", E(timerfd_gettime(99, &cur)));
    printf("efault: %s\n", E(timerfd_settime(fd, 0, (void *)8, NULL)));
    printf("write: %s\n", E(write(fd, &n, 8)));
    uint64_t ticks = 3;
    printf("set ticks: %s\n", E(ioctl(fd, TFD_IOC_SET_TICKS, &ticks)));
    rr = read(fd, &n, 8);
    printf("read set ticks: %zd n=%llu\n", rr, (unsigned long long)n);
    // Settime forgets unread expirations.
    s = its(1 * MS, 0);
    timerfd_settime(fd, 0, &s, NULL);
    usleep(20 * 1000);
    s = its(10000 * MS, 0);
    timerfd_settime(fd, 0, &s, NULL);
    printf("after re-arm: %s\n", E(read(fd, &n, 8)));
    return 0;
}
"#;

#[test]
fn timerfd_semantics() {
    let dir = TempDir::new("timerfd");
    let exe = compile_static_c(&dir, "timerfd", TIMERFD);
    let inv = Invocation::new(&[exe.to_str().unwrap()]);
    rvisor_tests::assert_outputs_equal(&inv.run_native(), &inv.run_rvisor());
}
