/* Randomized syscall tester: issues ITERS syscalls with random numbers and
 * arguments (random pointers included) from inside the sandbox. Calls that
 * would end, block or unmap the tester itself are skipped. Prints the seed,
 * per-errno counts summary and "done N" at the end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t state;
static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static int skipped(long nr) {
    static const long skip[] = {
        SYS_read, SYS_readv, SYS_pread64, SYS_preadv, SYS_write, SYS_writev, SYS_pwrite64, SYS_pwritev,
        SYS_close, SYS_close_range, SYS_dup2, SYS_dup3, SYS_pipe, SYS_pipe2,
        SYS_exit, SYS_exit_group, SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo,
        SYS_rt_sigreturn, SYS_rt_sigaction, SYS_rt_sigsuspend, SYS_rt_sigtimedwait, SYS_pause,
        SYS_clone, SYS_clone3, SYS_fork, SYS_vfork, SYS_execve, SYS_execveat,
        SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise, SYS_brk, SYS_mmap, SYS_arch_prctl,
        SYS_futex, SYS_wait4, SYS_waitid, SYS_nanosleep, SYS_clock_nanosleep, SYS_poll, SYS_ppoll,
        SYS_select, SYS_pselect6, SYS_epoll_wait, SYS_epoll_pwait, SYS_accept, SYS_accept4, SYS_recvfrom,
        SYS_recvmsg, SYS_msgrcv, SYS_semop, SYS_semtimedop, SYS_flock, SYS_fcntl, SYS_setrlimit, SYS_prlimit64,
        SYS_sendfile, SYS_splice, SYS_tee, SYS_vmsplice, SYS_io_getevents, SYS_mq_timedreceive,
        SYS_set_robust_list, SYS_set_tid_address, SYS_rseq, SYS_shmdt, SYS_setitimer, SYS_alarm, SYS_timer_settime,
        SYS_ptrace, SYS_reboot, SYS_sched_setaffinity, SYS_setpgid, SYS_setsid, SYS_ioctl, SYS_chroot,
        SYS_pivot_root, SYS_unshare, SYS_setns, SYS_seccomp, SYS_prctl, SYS_signalfd, SYS_signalfd4,
        SYS_sigaltstack, SYS_rt_sigprocmask, SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid,
        SYS_setresuid, SYS_setresgid, SYS_setfsuid, SYS_setfsgid, SYS_capset, SYS_umount2, SYS_mount,
    };
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (skip[i] == nr) return 1;
    return 0;
}

/* Valid pointers point into a region fenced by PROT_NONE pages, so a call
 * writing past it faults (EFAULT) instead of corrupting the tester. */
#define BUF_SIZE (1 << 16)
static char *buf;

static long arg(void) {
    switch (next() % 8) {
    case 0: return 0;
    case 1: return (long)(next() % 64);
    case 2: return -(long)(next() % 8);
    case 3: return (long)next();
    case 4: return (long)(buf + next() % BUF_SIZE); /* valid pointer */
    case 5: return (long)(0x1000 + next() % 0x10000); /* unmapped low */
    case 6: return (long)(0x7fffffffd000 + next() % 0x2000); /* stub region */
    default: return (long)(next() % 0x100000000ull);
    }
}

/* A watchdog: some calls block as Linux blocks them (opening a FIFO the
 * tester made with a random mknod, connecting to a full backlog, ...). A
 * timer interrupts them (EINTR); a sentry that did not let a signal in
 * would hang here, and the test's deadline would catch it. */
static void tick(int sig) { (void)sig; }

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 100000;
    state = argc > 2 ? strtoull(argv[2], 0, 0) : 0x9e3779b97f4a7c15ull;
    char *region = mmap(0, BUF_SIZE + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED || mprotect(region + 4096, BUF_SIZE, PROT_READ | PROT_WRITE) != 0) return 2;
    buf = region + 4096;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tick; /* no SA_RESTART: blocked calls end with EINTR */
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 200000}, {0, 200000}};
    setitimer(ITIMER_REAL, &it, 0);
    printf("seed %#llx iters %ld\n", (unsigned long long)state, iters);
    fflush(stdout);
    long ok = 0, err = 0;
    for (long i = 0; i < iters; i++) {
        long nr = (long)(next() % 460);
        if (skipped(nr)) continue;
        long r = syscall(nr, arg(), arg(), arg(), arg(), arg(), arg());
        if (r < 0) err++; else ok++;
        /* Keep the tester's own state sane: stay in a real directory. */
        if (nr == SYS_chdir || nr == SYS_fchdir) chdir("/");
    }
    printf("done %ld ok=%ld err=%ld\n", iters, ok, err);
    return 0;
}
