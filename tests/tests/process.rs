//! Processes, threads and signals (issue 4), differential: each program runs
//! natively and under rvisor with identical stdout and exit status.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

fn sh(script: &str) -> Invocation {
    Invocation::new(&["/bin/busybox", "sh", "-c", script])
}

#[test]
fn pipeline_sort() {
    sh("/bin/busybox seq 100000 | /bin/busybox sort -n | /bin/busybox tail -1").assert_same();
}

#[test]
fn subshell_status() {
    sh("(echo sub; exit 3); echo $?").assert_same();
}

#[test]
fn background_job_and_wait() {
    sh("/bin/busybox sleep 0.1 & echo started; wait; echo waited $?").assert_same();
}

#[test]
fn trap_usr1() {
    sh("trap 'echo got' USR1; kill -USR1 $$; echo after").assert_same();
}

#[test]
fn timeout_kills_with_sigterm() {
    let (_, sandboxed) =
        sh("/bin/busybox timeout 1 /bin/busybox sleep 5; echo status=$?").assert_same();
    assert!(sandboxed.stdout_str().contains("status=143"));
}

#[test]
fn xargs_parallel() {
    sh("/bin/busybox seq 1 40 | /bin/busybox xargs -P4 -n5 echo | /bin/busybox wc -l")
        .assert_same();
}

const THREADS: &str = r#"
#include <pthread.h>
#include <stdio.h>
static long total;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void *work(void *arg) {
    pthread_mutex_lock(&mu);
    total += (long)arg;
    pthread_mutex_unlock(&mu);
    return arg;
}
int main(void) {
    long joined = 0;
    for (long i = 0; i < 1000; i += 10) {
        pthread_t t[10];
        for (int j = 0; j < 10; j++)
            if (pthread_create(&t[j], 0, work, (void *)(i + j)) != 0) return 2;
        for (int j = 0; j < 10; j++) {
            void *r;
            pthread_join(t[j], &r);
            joined += (long)r;
        }
    }
    printf("total=%ld joined=%ld\n", total, joined);
    return 0;
}
"#;

#[test]
fn thread_create_join_1000() {
    let dir = TempDir::new("threads");
    let exe = compile_static_c(&dir, "threads", THREADS);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const SIGNALS: &str = r#"
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
static sigjmp_buf env;
static volatile int hits;
static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    hits++;
    printf("caught %d code=%d addr_ok=%d\n", sig, si->si_code, si->si_addr == (void *)16);
    siglongjmp(env, 1);
}
static void on_fpe(int sig) { printf("fpe %d\n", sig); siglongjmp(env, 2); }
static void on_alarm(int sig) { (void)sig; }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    if (sigsetjmp(env, 1) == 0) {
        *(volatile int *)16 = 1;
    }
    signal(SIGFPE, on_fpe);
    volatile int zero = 0;
    if (sigsetjmp(env, 1) == 0) {
        printf("%d\n", 10 / zero);
    }
    /* A signal interrupting a blocking read: EINTR without SA_RESTART. */
    int p[2];
    pipe(p);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    pid_t child = fork();
    if (child == 0) {
        usleep(100000);
        kill(getppid(), SIGALRM);
        usleep(100000);
        write(p[1], "x", 1);
        _exit(0);
    }
    char c;
    ssize_t n = read(p[0], &c, 1);
    printf("read1 n=%zd errno=%s\n", n, n < 0 ? strerror(errno) : "-");
    n = read(p[0], &c, 1);
    printf("read2 n=%zd c=%c\n", n, c);
    printf("hits=%d\n", hits);
    return 0;
}
"#;

#[test]
fn segv_fpe_handlers_and_eintr() {
    let dir = TempDir::new("signals");
    let exe = compile_static_c(&dir, "signals", SIGNALS);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

#[test]
fn python_subprocess_and_threads() {
    Invocation::new(&[
        "/usr/bin/python3",
        "-c",
        "import subprocess, threading; \
         print(subprocess.run(['/bin/busybox', 'echo', 'hi'], capture_output=True).stdout); \
         t = threading.Thread(target=lambda: print('thread')); t.start(); t.join()",
    ])
    .assert_same();
}

const TIMERS: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static volatile int alarms, ticks;
static void on_alarm(int s) { (void)s; alarms++; }
static void on_tick(int s) { (void)s; ticks++; }
int main(void) {
    signal(SIGALRM, on_alarm);
    alarm(1);
    pause();
    printf("alarm fired %d, alarm(0) left %u\n", alarms, alarm(0));
    signal(SIGALRM, on_tick);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, 0);
    while (ticks < 5) pause();
    struct itimerval off = {{0, 0}, {0, 0}}, old;
    setitimer(ITIMER_REAL, &off, &old);
    printf("ticks>=5 %d interval %ld\n", ticks >= 5, (long)old.it_interval.tv_usec);
    /* POSIX timer overruns: block the signal while the timer fires often. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, 0);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 42;
    timer_t tid;
    if (timer_create(CLOCK_MONOTONIC, &ev, &tid) != 0) { perror("timer_create"); return 1; }
    struct itimerspec ts = {{0, 5000000}, {0, 5000000}};
    timer_settime(tid, 0, &ts, 0);
    usleep(200000);
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    int over = timer_getoverrun(tid);
    printf("sig=%d code_is_timer=%d value=%d overrun_positive=%d\n", sig, si.si_code == SI_TIMER, si.si_value.sival_int, over > 0);
    timer_delete(tid);
    printf("delete again: %d\n", timer_delete(tid));
    return 0;
}
"#;

#[test]
fn alarm_itimer_and_posix_timer_overruns() {
    let dir = TempDir::new("timers");
    let exe = compile_static_c(&dir, "timers", TIMERS);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const CREDS: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <grp.h>
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
int main(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    printf("root eff_nonzero=%d eff_eq_perm=%d\n", d[0].effective != 0, d[0].effective == d[0].permitted);
    printf("setresuid(1000,1000,0)=%d\n", setresuid(1000, 1000, 0));
    syscall(SYS_capget, &h, d);
    printf("after eff=%x perm_nonzero=%d euid=%d\n", d[0].effective, d[0].permitted != 0, geteuid());
    printf("open shadow: %s\n", open("/etc/shadow", O_RDONLY) < 0 ? strerror(errno) : "ok");
    printf("seteuid(0)=%d euid=%d\n", seteuid(0), geteuid());
    syscall(SYS_capget, &h, d);
    printf("back eff_nonzero=%d\n", d[0].effective != 0);
    printf("setuid(1000)=%d\n", setuid(1000));
    syscall(SYS_capget, &h, d);
    printf("dropped eff=%x perm=%x\n", d[0].effective, d[0].permitted);
    printf("setuid(0)=%d errno=%s\n", setuid(0), strerror(errno));
    printf("setgroups=%d errno=%s\n", setgroups(0, 0), strerror(errno));
    return 0;
}
"#;

#[test]
fn setuid_family_and_capability_transitions() {
    let dir = TempDir::new("creds");
    let exe = compile_static_c(&dir, "creds", CREDS);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const JOBCTL: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t c = fork();
    if (c == 0) { for (;;) pause(); }
    kill(c, SIGSTOP);
    siginfo_t si;
    waitid(P_PID, c, &si, WSTOPPED);
    printf("stopped: code=%d status=%d\n", si.si_code, si.si_status);
    int st;
    kill(c, SIGCONT);
    pid_t r = waitpid(c, &st, WCONTINUED);
    printf("continued: %d %d\n", r == c, WIFCONTINUED(st));
    kill(c, SIGTSTP);
    r = waitpid(c, &st, WUNTRACED);
    printf("tstp: %d stopped=%d sig=%d\n", r == c, WIFSTOPPED(st), WSTOPSIG(st));
    kill(c, SIGKILL);
    r = waitpid(c, &st, 0);
    printf("killed: %d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
    /* Core-dumping default action reports WCOREDUMP. */
    c = fork();
    if (c == 0) { abort(); }
    waitpid(c, &st, 0);
    printf("abort: sig=%d core=%d\n", WTERMSIG(st), WCOREDUMP(st) ? 1 : 0);
    return 0;
}
"#;

#[test]
fn waitid_on_stopped_and_continued_children() {
    let dir = TempDir::new("jobctl");
    let exe = compile_static_c(&dir, "jobctl", JOBCTL);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const THREADS2: &str = r#"
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static atomic_int word;
static long fut(atomic_int *a, int op, int v) { return syscall(SYS_futex, a, op, v, 0, 0, 0); }
static void *pong(void *x) {
    (void)x;
    for (int i = 0; i < 1000; i++) {
        while (atomic_load(&word) != 1) fut(&word, FUTEX_WAIT_PRIVATE, 0);
        atomic_store(&word, 0);
        fut(&word, FUTEX_WAKE_PRIVATE, 1);
    }
    return 0;
}
static pthread_mutex_t robust;
static void *die_holding(void *x) { (void)x; pthread_mutex_lock(&robust); return 0; }
static char **gargv;
static void *execer(void *x) {
    (void)x;
    char *args[] = {gargv[0], "exec-child", 0};
    execv(gargv[0], args);
    return 0;
}
int main(int argc, char **argv) {
    if (argc > 1) { printf("exec from thread: pid=%d equal=%d\n", argc, getpid() == syscall(SYS_gettid)); return 0; }
    gargv = argv;
    pthread_t t;
    pthread_create(&t, 0, pong, 0);
    for (int i = 0; i < 1000; i++) {
        atomic_store(&word, 1);
        fut(&word, FUTEX_WAKE_PRIVATE, 1);
        while (atomic_load(&word) != 0) fut(&word, FUTEX_WAIT_PRIVATE, 1);
    }
    pthread_join(t, 0);
    printf("ping-pong done\n");
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    pthread_create(&t, 0, die_holding, 0);
    pthread_join(t, 0);
    int r = pthread_mutex_lock(&robust);
    printf("robust lock: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : strerror(r));
    fflush(stdout);
    pthread_create(&t, 0, execer, 0);
    for (;;) pause();
}
"#;

#[test]
fn futex_ping_pong_robust_mutex_and_exec_from_thread() {
    let dir = TempDir::new("threads2");
    let exe = compile_static_c(&dir, "threads2", THREADS2);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const BOMB: &str = r#"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    int made = 0, err = 0;
    for (int i = 0; i < 5000; i++) {
        pid_t p = fork();
        if (p == 0) { pause(); _exit(0); }
        if (p < 0) { err = errno; break; }
        made++;
    }
    printf("made %d, stopped by limit: %d (%s)\n", made, made < 5000, strerror(err));
    kill(0, SIGKILL); /* pid 1 survives its own group kill */
    return 0;
}
"#;

/// Not differential: natively nothing limits the bomb. The sandbox's pids
/// limit stops it with EAGAIN, the host keeps running, nothing is left.
#[test]
fn fork_bomb_stopped_by_pids_limit() {
    let dir = TempDir::new("bomb");
    let exe = compile_static_c(&dir, "bomb", BOMB);
    let out = Invocation::new(&[exe.to_str().unwrap()])
        .rvisor_arg("--pids-limit")
        .rvisor_arg("100")
        .run_rvisor();
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(
        out.stdout_str(),
        "made 99, stopped by limit: 1 (Resource temporarily unavailable)\n"
    );
}

const PRCTL: &str = r#"
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int r;
    prctl(PR_GET_CHILD_SUBREAPER, &r);
    printf("subreaper=%d\n", r);
    pid_t mid = fork();
    if (mid == 0) {
        pid_t gc = fork();
        if (gc == 0) {
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            sleep(1);
            /* The middle process has exited: we now belong to the subreaper. */
            printf("orphan reparented to subreaper: %d\n", getppid() != 1);
            fflush(stdout);
            _exit(3);
        }
        usleep(100000);
        _exit(0);
    }
    int st;
    waitpid(mid, &st, 0);
    pid_t got = wait(&st);
    printf("reaped grandchild: %d killed_by_pdeathsig=%d\n", got > 0, WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1);
    printf("nnp before=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    printf("nnp after=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    struct sched_param sp = {0};
    printf("sched other=%d fifo_max=%d getsched=%d\n", sched_setscheduler(0, SCHED_OTHER, &sp), sched_get_priority_max(SCHED_FIFO), sched_getscheduler(0));
    printf("setprio=%d getprio=%d\n", setpriority(PRIO_PROCESS, 0, 5), getpriority(PRIO_PROCESS, 0));
    return 0;
}
"#;

#[test]
fn prctl_subreaper_pdeathsig_and_scheduling() {
    let dir = TempDir::new("prctl");
    let exe = compile_static_c(&dir, "prctl", PRCTL);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const SIGQUEUE: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
static void on_usr1(int s, siginfo_t *si, void *c) {
    (void)c;
    printf("sig %d code_is_queue=%d value=%d from_self=%d\n", s, si->si_code == SI_QUEUE, si->si_value.sival_int, si->si_pid == getpid());
}
int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    union sigval v = {.sival_int = 7};
    sigqueue(getpid(), SIGUSR1, v);
    /* RLIMIT_AS: a mapping past the limit fails with ENOMEM. */
    struct rlimit rl = {256 << 20, 256 << 20};
    setrlimit(RLIMIT_AS, &rl);
    void *big = mmap(0, 512 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *small = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("big failed=%d small ok=%d\n", big == MAP_FAILED, small != MAP_FAILED);
    return 0;
}
"#;

#[test]
fn sigqueue_value_and_rlimit_as() {
    let dir = TempDir::new("sigqueue");
    let exe = compile_static_c(&dir, "sigqueue", SIGQUEUE);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const CPULIMIT: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
static volatile int xcpu;
static void on_xcpu(int s) { (void)s; xcpu++; }
int main(void) {
    signal(SIGXCPU, on_xcpu);
    struct rlimit rl = {1, 2};
    setrlimit(RLIMIT_CPU, &rl);
    volatile unsigned long n = 0;
    while (!xcpu) n++;
    printf("SIGXCPU after the soft limit\n");
    fflush(stdout);
    for (;;) n++; /* the hard limit kills us */
}
"#;

#[test]
fn rlimit_cpu_sends_sigxcpu_then_kills() {
    let dir = TempDir::new("cpulimit");
    let exe = compile_static_c(&dir, "cpulimit", CPULIMIT);
    // Run by a shell so that the program is not the sandbox's pid 1.
    let (_, out) = Invocation::new(&[
        "/bin/busybox",
        "sh",
        "-c",
        &format!("{}; echo status=$?", exe.display()),
    ])
    .assert_same();
    assert!(
        out.stdout_str().contains("status=137"),
        "{}",
        out.describe()
    );
}

const COW: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    size_t n = 8 << 20;
    char *priv = malloc(n);
    memset(priv, 'p', n);
    int *shared = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *shared = 1;
    int fds[2];
    pipe(fds);
    pid_t c = fork();
    if (c == 0) {
        memset(priv, 'c', n / 2);          /* the workload writes */
        read(fds[0], priv + n - 16, 8);    /* the sentry writes for it */
        *shared = 2;
        _exit(priv[0] == 'c' && priv[n - 16] == 'X' ? 0 : 1);
    }
    write(fds[1], "XXXXXXXX", 8);
    int st;
    waitpid(c, &st, 0);
    printf("child ok=%d parent private intact=%d %d shared seen=%d\n",
           WEXITSTATUS(st) == 0, priv[0] == 'p', priv[n - 16] == 'p', *shared);
    return 0;
}
"#;

#[test]
fn fork_is_copy_on_write_and_shared_memory_is_shared() {
    let dir = TempDir::new("cow");
    let exe = compile_static_c(&dir, "cow", COW);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const MEMFD: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ftruncate(fd, 8192);
    char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pid_t c = fork();
    if (c == 0) { strcpy(p + 4096, "from child"); _exit(0); }
    waitpid(c, 0, 0);
    char buf[32] = {0};
    pread(fd, buf, 10, 4096);
    printf("mapping=%s read=%s\n", p + 4096, buf);
    pwrite(fd, "via write", 9, 0);
    printf("mapping sees write: %.9s\n", p);
    struct stat st;
    fstat(fd, &st);
    printf("size=%lld\n", (long long)st.st_size);
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    printf("seals=%d shrink=%d grow=%d\n", fcntl(fd, F_GET_SEALS), ftruncate(fd, 4096) == -1 && errno == EPERM, ftruncate(fd, 1 << 20) == -1 && errno == EPERM);
    int nos = memfd_create("noseal", 0);
    printf("noseal add=%d errno=%d\n", fcntl(nos, F_ADD_SEALS, F_SEAL_WRITE), errno);
    return 0;
}
"#;

#[test]
fn memfd_shared_between_processes_with_seals() {
    let dir = TempDir::new("memfd");
    let exe = compile_static_c(&dir, "memfd", MEMFD);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const AVX: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
static void clobber(int s) {
    (void)s;
    __asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0" ::: "xmm0");
}
int main(void) {
    signal(SIGUSR1, clobber);
    unsigned int in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
    __asm__ volatile("vmovdqu %0, %%ymm0" :: "m"(in) : "xmm0");
    raise(SIGUSR1);
    __asm__ volatile("vmovdqu %%ymm0, %0" : "=m"(out) :: "memory");
    printf("ymm0 kept across the handler: %d\n", memcmp(in, out, sizeof in) == 0);
    return 0;
}
"#;

#[test]
fn avx_state_survives_a_signal_handler() {
    let dir = TempDir::new("avx");
    let exe = compile_static_c(&dir, "avx", AVX);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const RUSAGE: &str = r#"
#include <stdio.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double cpu(struct rusage *r) {
    return r->ru_utime.tv_sec + r->ru_stime.tv_sec + (r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}
int main(void) {
    pid_t c = fork();
    if (c == 0) {
        volatile unsigned long n = 0;
        clock_t end = clock() + CLOCKS_PER_SEC * 3 / 10;
        while (clock() < end) n++;
        _exit(0);
    }
    struct rusage before, after;
    getrusage(RUSAGE_CHILDREN, &before);
    waitpid(c, 0, 0);
    getrusage(RUSAGE_CHILDREN, &after);
    struct tms t;
    times(&t);
    printf("children before=%d after>=0.2s=%d times_cutime>0=%d\n", cpu(&before) < 0.05, cpu(&after) >= 0.2, t.tms_cutime + t.tms_cstime > 0);
    return 0;
}
"#;

#[test]
fn getrusage_and_times_count_reaped_children() {
    let dir = TempDir::new("rusage");
    let exe = compile_static_c(&dir, "rusage", RUSAGE);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const RESTART: &str = r#"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static void on_alarm(int s) { (void)s; }
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec / 1e9; }
int main(void) {
    /* SA_RESTART: a read interrupted by a handled signal continues. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        usleep(100000);
        kill(getppid(), SIGALRM);
        usleep(100000);
        write(p[1], "y", 1);
        _exit(0);
    }
    char ch = 0;
    ssize_t n = read(p[0], &ch, 1);
    printf("SA_RESTART read n=%zd c=%c\n", n, ch);
    waitpid(c, 0, 0);
    /* A sleep stopped and continued resumes toward its original deadline. */
    c = fork();
    if (c == 0) {
        double t0 = now();
        struct timespec req = {1, 0}, rem;
        int r = nanosleep(&req, &rem);
        double el = now() - t0;
        printf("nanosleep ret=%d elapsed_ok=%d\n", r, el > 0.9 && el < 1.3);
        _exit(0);
    }
    usleep(200000);
    kill(c, SIGSTOP);
    usleep(200000);
    kill(c, SIGCONT);
    waitpid(c, 0, 0);
    return 0;
}
"#;

#[test]
fn sa_restart_and_sleep_resumed_after_stop() {
    let dir = TempDir::new("restart");
    let exe = compile_static_c(&dir, "restart", RESTART);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const EXECVEAT: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) { printf("exec'd via %s\n", argv[1]); return 0; }
    char *a1[] = {"busybox", "echo", "execveat with a dirfd", 0};
    char *env[] = {0};
    int dir = open("/bin", O_RDONLY | O_DIRECTORY);
    pid_t c = fork();
    if (c == 0) { syscall(SYS_execveat, dir, "busybox", a1, env, 0); _exit(9); }
    int st; waitpid(c, &st, 0);
    int fd = open(argv[0], O_RDONLY);
    char *a2[] = {argv[0], "AT_EMPTY_PATH", 0};
    syscall(SYS_execveat, fd, "", a2, env, AT_EMPTY_PATH);
    return 9;
}
"#;

#[test]
fn execveat_with_dirfd_and_empty_path() {
    let dir = TempDir::new("execveat");
    let exe = compile_static_c(
        &dir,
        "execveat",
        &EXECVEAT.replace(
            "#include <unistd.h>",
            "#include <unistd.h>\n#include <sys/wait.h>",
        ),
    );
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const SHOOTDOWN: &str = r#"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
static volatile int *page;
static void on_segv(int s) { (void)s; write(1, "sibling faulted after munmap\n", 29); _exit(0); }
static void *reader(void *x) {
    (void)x;
    volatile long sum = 0;
    for (;;) sum += *page; /* no syscalls: only a shootdown stops it */
    return 0;
}
int main(void) {
    signal(SIGSEGV, on_segv);
    page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *page = 1;
    pthread_t t;
    pthread_create(&t, 0, reader, 0);
    usleep(100000);
    munmap((void *)page, 4096);
    sleep(2);
    printf("sibling still reads the unmapped page\n");
    return 1;
}
"#;

/// munmap must take effect in a sibling thread that is running without
/// making syscalls (its stub is stopped and resynced before the memory
/// can be reused).
#[test]
fn munmap_reaches_a_running_sibling_thread() {
    let dir = TempDir::new("shootdown");
    let exe = compile_static_c(&dir, "shootdown", SHOOTDOWN);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const EPOLL: &str = r#"
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int efd = eventfd(0, EFD_NONBLOCK);
    uint64_t v = 0;
    printf("empty read: %zd\n", read(efd, &v, 8));
    v = 3; write(efd, &v, 8); v = 4; write(efd, &v, 8);
    read(efd, &v, 8);
    printf("counter: %llu\n", (unsigned long long)v);
    int sem = eventfd(2, EFD_SEMAPHORE);
    read(sem, &v, 8);
    printf("semaphore read: %llu\n", (unsigned long long)v);

    int p[2];
    pipe(p);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct epoll_event e2 = {.events = EPOLLIN | EPOLLET, .data.u64 = 9};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e2);
    printf("add twice: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    struct epoll_event out[4];
    printf("nothing ready: %d\n", epoll_wait(ep, out, 4, 0));
    pid_t c = fork();
    if (c == 0) { usleep(50000); write(p[1], "x", 1); _exit(0); }
    int n = epoll_wait(ep, out, 4, 2000);
    printf("woken: n=%d data=%llu in=%d\n", n, (unsigned long long)out[0].data.u64, !!(out[0].events & EPOLLIN));
    printf("level-triggered again: %d\n", epoll_wait(ep, out, 4, 0));
    char ch; read(p[0], &ch, 1);
    v = 1; write(efd, &v, 8);
    n = epoll_wait(ep, out, 4, 0);
    printf("edge: n=%d data=%llu\n", n, (unsigned long long)out[0].data.u64);
    /* Nested: an epoll of epolls is readable when the inner one is. */
    int outer = epoll_create1(0);
    struct epoll_event e3 = {.events = EPOLLIN, .data.u64 = 11};
    epoll_ctl(outer, EPOLL_CTL_ADD, ep, &e3);
    write(p[1], "y", 1);
    n = epoll_wait(outer, out, 4, 1000);
    printf("nested: n=%d data=%llu\n", n, (unsigned long long)out[0].data.u64);
    waitpid(c, 0, 0);
    return 0;
}
"#;

#[test]
fn eventfd_and_epoll() {
    let dir = TempDir::new("epoll");
    let exe = compile_static_c(&dir, "epoll", EPOLL);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const SOCKETPAIR: &str = r#"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int sv[2];
    printf("socketpair=%d\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    pid_t c = fork();
    if (c == 0) {
        char buf[16] = {0};
        recv(sv[1], buf, sizeof buf, 0);
        send(sv[1], "pong", 4, 0);
        shutdown(sv[1], SHUT_WR);
        _exit(strcmp(buf, "ping") == 0 ? 0 : 1);
    }
    close(sv[1]);
    send(sv[0], "ping", 4, 0);
    char buf[16] = {0};
    ssize_t n = recv(sv[0], buf, sizeof buf, MSG_WAITALL);
    printf("got %zd '%s'\n", n, buf);
    int st;
    waitpid(c, &st, 0);
    printf("child ok=%d eof=%zd\n", WEXITSTATUS(st) == 0, recv(sv[0], buf, sizeof buf, 0));
    struct pollfd p = {sv[0], POLLIN, 0};
    poll(&p, 1, 0);
    printf("hup=%d\n", !!(p.revents & POLLHUP));
    errno = 0;
    ssize_t sent = send(sv[0], "x", 1, MSG_NOSIGNAL);
    printf("send to closed peer=%zd epipe=%d\n", sent, errno == EPIPE);
    printf("inet pair: %d %s\n", socketpair(AF_INET, SOCK_STREAM, 0, sv), strerror(errno));
    return 0;
}
"#;

#[test]
fn unix_socketpair_stream() {
    let dir = TempDir::new("socketpair");
    let exe = compile_static_c(&dir, "socketpair", SOCKETPAIR);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const SHARED_FUTEX: &str = r#"
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    /* A futex shared across processes through MAP_SHARED memory. */
    atomic_int *w = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t c = fork();
    if (c == 0) {
        while (atomic_load(w) == 0) syscall(SYS_futex, w, FUTEX_WAIT, 0, 0, 0, 0);
        _exit(atomic_load(w));
    }
    usleep(50000);
    atomic_store(w, 5);
    syscall(SYS_futex, w, FUTEX_WAKE, 1, 0, 0, 0);
    int st;
    waitpid(c, &st, 0);
    printf("woken child exit=%d\n", WEXITSTATUS(st));
    /* RLIMIT_NOFILE: the next fd past the limit is EMFILE. */
    struct rlimit rl = {8, 8};
    setrlimit(RLIMIT_NOFILE, &rl);
    int last = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) last = fd;
    printf("last fd=%d\n", last);
    return 0;
}
"#;

#[test]
fn futex_across_processes_and_rlimit_nofile() {
    let dir = TempDir::new("sharedfutex");
    let exe = compile_static_c(&dir, "sharedfutex", SHARED_FUTEX);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

const STACKLIMIT: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
static int deep(int n) { volatile char pad[1024]; memset((char *)pad, n, sizeof pad); return n ? deep(n - 1) + pad[5] : 0; }
int main(int argc, char **argv) {
    if (argc > 1) { printf("%d\n", deep(2000)); return 0; } /* ~2-4 MiB of stack */
    struct rlimit rl = {1 << 20, 1 << 20};
    setrlimit(RLIMIT_STACK, &rl);
    pid_t c = fork();
    if (c == 0) { execl(argv[0], argv[0], "child", (char *)0); _exit(9); }
    int st;
    waitpid(c, &st, 0);
    printf("1 MiB stack: killed by SIGSEGV=%d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    return 0;
}
"#;

#[test]
fn rlimit_stack_bounds_the_stack() {
    let dir = TempDir::new("stacklimit");
    let exe = compile_static_c(&dir, "stacklimit", STACKLIMIT);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

#[test]
fn python_pool_alarm_fork_and_hard_links() {
    let script = [
        "import multiprocessing, signal, os",
        "def sq(x): return x * x",
        "if __name__ == '__main__':",
        "    with multiprocessing.Pool(4) as p: print(p.map(sq, range(8)))",
        "    signal.signal(signal.SIGALRM, lambda *a: print('alarm'))",
        "    signal.alarm(1); signal.pause()",
        "    pid = os.fork()",
        "    if pid == 0: os._exit(7)",
        "    print(os.waitpid(pid, 0)[1] >> 8)",
        "    open('/tmp/rvisor-link-a', 'w').write('x')",
        "    os.link('/tmp/rvisor-link-a', '/tmp/rvisor-link-b')",
        "    print(os.stat('/tmp/rvisor-link-b').st_nlink, open('/tmp/rvisor-link-b').read())",
        "    os.unlink('/tmp/rvisor-link-a'); os.unlink('/tmp/rvisor-link-b')",
    ]
    .join("\n");
    let (_, out) = Invocation::new(&["/usr/bin/python3", "-c", &script]).assert_same();
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(
        out.stdout_str().contains("alarm\n7\n2 x"),
        "{}",
        out.describe()
    );
}

const EXEC_RESETS: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static void on_usr1(int s) { (void)s; }
static void show(int sig) {
    struct sigaction sa;
    sigaction(sig, 0, &sa);
    const char *h = sa.sa_handler == SIG_IGN ? "ign" : sa.sa_handler == SIG_DFL ? "dfl" : "handler";
    printf("sig %d: %s flags=%#x mask_usr2=%d\n", sig, h,
           sa.sa_flags & (SA_RESTART | SA_ONSTACK | SA_SIGINFO | SA_NODEFER),
           sigismember(&sa.sa_mask, SIGUSR2));
}
int main(int argc, char **argv) {
    if (argc > 1) {
        /* After execve: the alternate stack is disabled, caught signals
         * are SIG_DFL, ignored ones stay ignored without flags or mask,
         * POSIX timers are gone. */
        stack_t ss;
        sigaltstack(0, &ss);
        printf("altstack flags=%d size=%zu\n", ss.ss_flags, ss.ss_size);
        show(SIGUSR1);
        show(SIGPIPE);
        timer_t id = (timer_t)(long)atol(argv[1]);
        struct itimerspec its;
        int r = timer_gettime(id, &its);
        printf("timer_gettime=%d\n", r);
        return 0;
    }
    static char stack[1 << 16];
    stack_t ss = { .ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0 };
    sigaltstack(&ss, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, 0);
    show(SIGUSR1);
    show(SIGPIPE);
    timer_t id;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_NONE;
    if (timer_create(CLOCK_MONOTONIC, &ev, &id) != 0) return 2;
    struct itimerspec its = { .it_value = { 100, 0 } };
    timer_settime(id, 0, &its, 0);
    char arg[32];
    snprintf(arg, sizeof arg, "%ld", (long)id);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], arg, (char *)0);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child status %d\n", WEXITSTATUS(st));
    /* And in-place: this process itself. */
    fflush(stdout);
    execl("/proc/self/exe", argv[0], arg, (char *)0);
    return 9;
}
"#;

/// execve resets what Linux resets: the alternate signal stack (a child of
/// a faulthandler-enabled Python otherwise crashed on its first SA_ONSTACK
/// signal), caught signals, the flags and masks of ignored ones, and POSIX
/// timers.
#[test]
fn execve_resets_altstack_handlers_and_posix_timers() {
    let dir = TempDir::new("exec-resets");
    let exe = compile_static_c(&dir, "exec-resets", EXEC_RESETS);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native.stdout_str().contains("altstack flags=2 size=0"));
}

const PROC_STATUS_SIGNALS: &str = r#"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static void on_usr1(int s) { (void)s; }
static void *idle(void *x) { (void)x; for (;;) pause(); return 0; }
static void dump(const char *path) {
    char line[256];
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return; }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Sig", 3) || !strncmp(line, "ShdPnd", 6) || !strncmp(line, "Threads", 7))
            if (strncmp(line, "SigQ", 4)) fputs(line, stdout);
    fclose(f);
}
int main(void) {
    /* Start from default dispositions: the native run inherits whatever
     * its launcher ignores (glibc's sigaction refuses 32 and 33). */
    struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } dfl = {0};
    for (int s = 1; s <= 64; s++)
        if (s != SIGKILL && s != SIGSTOP)
            syscall(SYS_rt_sigaction, s, &dfl, 0, 8);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, on_usr1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, 0);
    pthread_t t;
    pthread_create(&t, 0, idle, 0);
    raise(SIGUSR2);          /* thread-directed: SigPnd */
    kill(getpid(), SIGINT);  /* process-directed: ShdPnd */
    dump("/proc/self/status");
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", getpid());
    dump(path);
    return 0;
}
"#;

/// /proc/PID/status reports the thread count and the pending, blocked,
/// ignored and caught signal sets (Python's subprocess tests read SigIgn).
#[test]
fn proc_status_signal_sets() {
    let dir = TempDir::new("proc-status");
    let exe = compile_static_c(&dir, "proc-status", PROC_STATUS_SIGNALS);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native.stdout_str().contains("SigIgn:\t0000000000001000"));
}

const SCHED: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static void show(const char *who) {
    cpu_set_t s;
    CPU_ZERO(&s);
    int r = sched_getaffinity(0, sizeof s, &s);
    printf("%s: getaffinity=%d count=%d cpu0=%d\n", who, r, CPU_COUNT(&s), CPU_ISSET(0, &s));
    fflush(stdout);
}
static void report(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "-");
}
static void *thread(void *x) { show((const char *)x); return 0; }
int main(void) {
    cpu_set_t s;
    CPU_ZERO(&s);
    sched_getaffinity(0, sizeof s, &s);
    printf("initial count>=1: %d\n", CPU_COUNT(&s) >= 1);
    CPU_ZERO(&s);
    CPU_SET(0, &s);
    printf("setaffinity cpu0: %d\n", sched_setaffinity(0, sizeof s, &s));
    show("main");
    pthread_t t;
    pthread_create(&t, 0, thread, "thread");
    pthread_join(t, 0);
    pid_t pid = fork();
    if (pid == 0) { show("child"); _exit(0); }
    waitpid(pid, 0, 0);
    CPU_ZERO(&s);
    report("empty mask", sched_setaffinity(0, sizeof s, &s));
    CPU_SET(1000, &s);
    report("only cpu 1000", sched_setaffinity(0, sizeof s, &s));
    report("getaffinity pid -1", sched_getaffinity(-1, sizeof s, &s));
    report("getaffinity no such pid", sched_getaffinity(999999, sizeof s, &s));
    struct timespec ts = { 5, 5 };
    int r = sched_rr_get_interval(0, &ts);
    printf("rr_get_interval: %d below 1s: %d\n", r, ts.tv_sec == 0 && ts.tv_nsec < 1000000000);
    report("rr_get_interval pid -1", sched_rr_get_interval(-1, &ts));
    report("rr_get_interval no such pid", sched_rr_get_interval(999999, &ts));
    report("rr_get_interval bad pointer", syscall(SYS_sched_rr_get_interval, 0, (void *)8));
    /* The policy of another process, not the caller's. */
    int p[2];
    pipe(p);
    pid = fork();
    if (pid == 0) {
        struct sched_param sp = { 0 };
        sched_setscheduler(0, SCHED_BATCH, &sp);
        write(p[1], "x", 1);
        pause();
        _exit(0);
    }
    char c;
    read(p[0], &c, 1);
    printf("child policy batch: %d, mine other: %d\n", sched_getscheduler(pid) == SCHED_BATCH,
           sched_getscheduler(0) == SCHED_OTHER);
    kill(pid, SIGKILL);
    waitpid(pid, 0, 0);
    return 0;
}
"#;

/// sched_setaffinity is kept per thread (inherited by threads and forks,
/// empty or absent CPUs refused), sched_rr_get_interval answers, and the
/// policy calls act on the named process.
#[test]
fn sched_affinity_rr_interval_and_policy_of_another_process() {
    let dir = TempDir::new("sched");
    let exe = compile_static_c(
        &dir,
        "sched",
        &SCHED.replace(
            "#include <sched.h>",
            "#include <sched.h>\n#include <signal.h>",
        ),
    );
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native
        .stdout_str()
        .contains("child: getaffinity=0 count=1 cpu0=1"));
}

const FORK_WHILE_SIBLING_WRITES: &str = r#"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile long counter;
static volatile int stop;
static volatile long *page;
static volatile int faulted;
static void *spin(void *x) {
    (void)x;
    while (!stop) counter++; /* no syscalls: only a shootdown stops it */
    return 0;
}
static void on_segv(int s) { (void)s; faulted = 1; for (;;) pause(); }
static void *scribble(void *x) {
    (void)x;
    for (long i = 0;; i++) *page = i;
    return 0;
}
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, spin, 0);
    while (counter < 1000) ;
    int changed = 0;
    for (int i = 0; i < 10; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* The child's copy is a snapshot: the parent's running thread
             * must not write into it. */
            long a = counter;
            usleep(20000);
            _exit(counter == a ? 0 : 1);
        }
        int st;
        waitpid(pid, &st, 0);
        changed += WEXITSTATUS(st) != 0;
    }
    stop = 1;
    pthread_join(t, 0);
    printf("children whose memory changed: %d\n", changed);
    /* mprotect takes write access from a sibling that is running. */
    signal(SIGSEGV, on_segv);
    page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_create(&t, 0, scribble, 0);
    while (*page < 1000) ;
    mprotect((void *)page, 4096, PROT_READ);
    long a = *page;
    usleep(20000);
    printf("page stable after mprotect: %d\n", *page == a);
    while (!faulted) usleep(1000);
    printf("sibling faulted: %d\n", faulted);
    return 0;
}
"#;

/// fork and mprotect stop sibling threads that are running workload code
/// (a shootdown, as munmap does): a forked child's memory is not written by
/// the parent's other threads, and a revoked write permission holds at
/// once. (Python's multiprocessing children crashed with "malloc():
/// unsorted double linked list corrupted" before.)
#[test]
fn fork_and_mprotect_stop_running_sibling_threads() {
    let dir = TempDir::new("fork-sibling");
    let exe = compile_static_c(&dir, "fork-sibling", FORK_WHILE_SIBLING_WRITES);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native
        .stdout_str()
        .contains("children whose memory changed: 0"));
}

const SHM_STATFS: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    struct statfs fs;
    struct statvfs vfs;
    if (statfs("/dev/shm", &fs) != 0 || statvfs("/dev/shm", &vfs) != 0) return 2;
    printf("tmpfs=%d room for 1 MiB=%d free<=size=%d\n", fs.f_type == 0x01021994,
           (unsigned long long)vfs.f_bavail * vfs.f_frsize >= (1 << 20),
           vfs.f_bavail <= vfs.f_blocks);
    /* What Python's multiprocessing heap does with it: an unlinked file
     * there, mapped shared, written by a child. */
    char name[] = "/dev/shm/rvisor-test-XXXXXX";
    int fd = mkstemp(name);
    unlink(name);
    ftruncate(fd, 4096);
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 3; }
    if (fork() == 0) { strcpy(p, "written by the child"); _exit(0); }
    wait(0);
    printf("%s\n", p);
    return 0;
}
"#;

/// /dev/shm reports tmpfs with free space (Python's multiprocessing picks
/// it for its shared heap only then; the fallback, /tmp, cannot be mapped
/// shared in the sandbox).
#[test]
fn dev_shm_statfs_and_shared_mapping() {
    let dir = TempDir::new("shm-statfs");
    let exe = compile_static_c(&dir, "shm-statfs", SHM_STATFS);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native.stdout_str().contains("room for 1 MiB=1"));
}

const EXECVEAT_MEMFD: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv, char **envp) {
    if (argc > 1) { printf("running from a memfd: %s\n", argv[1]); return 0; }
    /* Copy our own executable into a memfd and execveat it. */
    int src = open("/proc/self/exe", O_RDONLY);
    int mfd = memfd_create("prog", MFD_CLOEXEC);
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0) write(mfd, buf, n);
    close(src);
    char *args[] = { argv[0], "yes", 0 };
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        syscall(SYS_execveat, mfd, "", args, envp, AT_EMPTY_PATH);
        printf("execveat: %s\n", strerror(errno));
        _exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child status %d\n", WEXITSTATUS(st));
    /* fexecve is execveat(fd, "", AT_EMPTY_PATH) too. */
    int ro = memfd_create("prog2", 0);
    lseek(mfd, 0, SEEK_SET);
    while ((n = read(mfd, buf, sizeof buf)) > 0) write(ro, buf, n);
    fflush(stdout);
    fexecve(ro, args, envp);
    printf("fexecve: %s\n", strerror(errno));
    return 1;
}
"#;

/// execveat(fd, "", AT_EMPTY_PATH) and fexecve run a memfd, a file without
/// a path.
#[test]
fn execveat_empty_path_on_a_memfd() {
    let dir = TempDir::new("execveat-memfd");
    let exe = compile_static_c(&dir, "execveat-memfd", EXECVEAT_MEMFD);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native.stdout_str().contains("child status 0"));
}

const SYNC_FAULTS_AND_FUTEX_TIMEOUTS: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static sigjmp_buf env;
static char *base;
extern char ud2_at[], int3_after[];
static void on_sig(int sig, siginfo_t *si, void *uc) {
    ucontext_t *u = uc;
    long rel = (char *)si->si_addr - base;
    printf("signal %d code %d", sig, si->si_code);
    if (sig == SIGBUS || sig == SIGSEGV) printf(" addr=base+%ld", rel);
    if (sig == SIGILL) printf(" addr_is_ud2=%d", si->si_addr == (void *)ud2_at);
    if (sig == SIGTRAP) printf(" rip_after_int3=%d", (char *)u->uc_mcontext.gregs[REG_RIP] == int3_after);
    printf("\n");
    siglongjmp(env, 1);
}
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, 0);
    sigaction(SIGILL, &sa, 0);
    sigaction(SIGTRAP, &sa, 0);
    sigaction(SIGSEGV, &sa, 0);
    /* SIGBUS: a page of a mapped file wholly beyond its end. */
    char path[] = "/tmp/rvisor-sigbus-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    write(fd, "0123456789", 10);
    base = mmap(0, 3 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("in the last page: %c, past EOF in it: %d\n", base[5], base[100]);
    if (sigsetjmp(env, 1) == 0) { volatile char c = base[4096 + 8]; (void)c; printf("no SIGBUS\n"); }
    if (sigsetjmp(env, 1) == 0) { volatile char c = base[2 * 4096]; (void)c; printf("no SIGBUS\n"); }
    ssize_t n = write(1, base + 4096, 1);
    printf("write from beyond EOF: %zd %s\n", n, n < 0 ? strerror(errno) : "");
    /* SIGILL: ud2, si_addr is the instruction. */
    if (sigsetjmp(env, 1) == 0) { __asm__ volatile(".globl ud2_at\nud2_at: ud2"); }
    /* SIGTRAP: int3, rip after the instruction. */
    if (sigsetjmp(env, 1) == 0) { __asm__ volatile("int3\n.globl int3_after\nint3_after: nop"); }
    /* FUTEX_WAIT with a relative timeout, nobody wakes it. */
    int word = 0;
    struct timespec to = { 0, 50 * 1000 * 1000 }, a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &to, 0, 0);
    int e = errno;
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    printf("futex wait: %ld %s, waited at least 50 ms: %d\n", r, strerror(e), ms >= 50);
    r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 1, &to, 0, 0);
    printf("futex wait, value differs: %ld %s\n", r, strerror(errno));
    struct timespec bad = { 0, 1000000000 };
    r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &bad, 0, 0);
    printf("futex wait, bad timeout: %ld %s\n", r, strerror(errno));
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec dl = a;
    dl.tv_nsec += 30 * 1000 * 1000;
    if (dl.tv_nsec >= 1000000000) { dl.tv_sec++; dl.tv_nsec -= 1000000000; }
    r = syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &dl, 0, FUTEX_BITSET_MATCH_ANY);
    e = errno;
    clock_gettime(CLOCK_MONOTONIC, &b);
    int reached = b.tv_sec > dl.tv_sec || (b.tv_sec == dl.tv_sec && b.tv_nsec >= dl.tv_nsec);
    printf("futex wait bitset: %ld %s, deadline reached: %d\n", r, strerror(e), reached);
    return 0;
}
"#;

/// Synchronous signals with their si_code and si_addr: SIGBUS on a page of
/// a mapped file wholly past its end (and EFAULT when the kernel reads it),
/// SIGILL on ud2, SIGTRAP on int3; FUTEX_WAIT's relative and
/// FUTEX_WAIT_BITSET's absolute timeouts.
#[test]
fn sigbus_sigill_sigtrap_and_futex_timeouts() {
    let dir = TempDir::new("sync-faults");
    let exe = compile_static_c(&dir, "sync-faults", SYNC_FAULTS_AND_FUTEX_TIMEOUTS);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native
        .stdout_str()
        .contains("signal 7 code 2 addr=base+4104"));
}

const COW_AFTER_COMPACTION: &str = r#"
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile long *shared_looking;
int main(void) {
    int go[2];
    pipe(go);
    /* A page of its own, which nothing touches between fork and the
     * write below. */
    shared_looking = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *shared_looking = 1;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        read(go[0], &c, 1);
        printf("child sees %ld\n", *shared_looking);
        return 0;
    }
    /* Thousands of address-space changes (the sandbox compacts its log of
     * them), then a write to memory still shared copy-on-write. */
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 6000; i++)
        mprotect(p, 4096, i % 2 ? PROT_READ | PROT_WRITE : PROT_READ);
    *shared_looking = 2;
    write(go[1], "x", 1);
    waitpid(pid, 0, 0);
    printf("parent sees %ld\n", *shared_looking);
    return 0;
}
"#;

/// Copy-on-write memory stays read-only in the stubs when the address-space
/// change log is compacted (it was re-mapped writable, so a parent's write
/// reached its child).
#[test]
fn copy_on_write_survives_log_compaction() {
    let dir = TempDir::new("cow-compaction");
    let exe = compile_static_c(&dir, "cow-compaction", COW_AFTER_COMPACTION);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native.stdout_str().contains("child sees 1"));
}

const PIDFD: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
static int pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }
static int send(int fd, int sig, siginfo_t *info) { return syscall(SYS_pidfd_send_signal, fd, sig, info, 0); }
static void report(const char *what, long r) { printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "-"); }
static volatile sig_atomic_t got;
static void on_usr1(int s, siginfo_t *si, void *uc) { (void)s; (void)uc; got = si->si_code == SI_QUEUE ? si->si_value.sival_int : -1; }
int main(void) {
    int self = pidfd_open(getpid(), 0);
    printf("self pidfd ok: %d cloexec: %d\n", self >= 0, fcntl(self, F_GETFD) == FD_CLOEXEC);
    report("pidfd_open bad flags", pidfd_open(getpid(), 1));
    report("pidfd_open pid 0", pidfd_open(0, 0));
    report("pidfd_open no such pid", pidfd_open(99999, 0));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    si.si_value.sival_int = 42;
    report("send to self with info", send(self, SIGUSR1, &si));
    printf("handler saw value %d\n", got);
    report("send mismatched si_signo", send(self, SIGUSR2, &si));
    report("send with two flags", syscall(SYS_pidfd_send_signal, self, 0, 0, 3));
    report("send with an unknown flag", syscall(SYS_pidfd_send_signal, self, 0, 0, 8));
    got = 0;
    report("send to the thread", syscall(SYS_pidfd_send_signal, self, SIGUSR1, &si, 1));
    printf("handler saw value %d\n", got);
    /* PIDFD_SIGNAL_PROCESS_GROUP: the group whose id is the process's pid. */
    pid_t member = fork();
    if (member == 0) { for (;;) pause(); }
    int mfd = pidfd_open(member, 0);
    report("send to the group named by a non-leader", syscall(SYS_pidfd_send_signal, mfd, SIGUSR1, &si, 4));
    setpgid(member, member);
    report("send to the group it leads", syscall(SYS_pidfd_send_signal, mfd, SIGKILL, 0, 4));
    int mst;
    waitpid(member, &mst, 0);
    printf("group member killed by %d\n", WTERMSIG(mst));
    report("send on a non-pidfd", send(1, 0, 0));
    char procdir[32];
    snprintf(procdir, sizeof procdir, "/proc/%d", getpid());
    int pd = open(procdir, O_DIRECTORY | O_RDONLY);
    got = 0;
    report("send through a /proc/PID directory", send(pd, SIGUSR1, &si));
    printf("handler saw value %d\n", got);
    int root = open("/proc", O_DIRECTORY | O_RDONLY);
    report("send through /proc itself", send(root, 0, 0));
    char buf[8];
    report("read a pidfd", read(self, buf, sizeof buf));
    /* A child: poll until it exits, then waitid(P_PIDFD). */
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) { char c; read(p[0], &c, 1); _exit(7); }
    int fd = pidfd_open(pid, 0);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    printf("poll before exit: %d\n", poll(&pfd, 1, 0));
    int nb = pidfd_open(pid, O_NONBLOCK);
    siginfo_t info;
    report("waitid on a nonblocking pidfd, still running", waitid(P_PIDFD, nb, &info, WEXITED));
    write(p[1], "x", 1);
    int n = poll(&pfd, 1, 5000);
    printf("poll after exit: %d revents=%#x\n", n, pfd.revents);
    report("send to a zombie", send(fd, SIGTERM, 0));
    memset(&info, 0, sizeof info);
    report("waitid P_PIDFD", waitid(P_PIDFD, fd, &info, WEXITED));
    printf("child pid matches: %d code=%d status=%d\n", info.si_pid == pid, info.si_code, info.si_status);
    report("send after reaping", send(fd, 0, 0));
    report("waitid P_PIDFD again", waitid(P_PIDFD, fd, &info, WEXITED));
    /* pidfd_send_signal kills a child. */
    pid = fork();
    if (pid == 0) { for (;;) pause(); }
    fd = pidfd_open(pid, 0);
    report("send SIGKILL", send(fd, SIGKILL, 0));
    int st;
    waitpid(pid, &st, 0);
    printf("killed by %d\n", WTERMSIG(st));
    /* CLONE_PIDFD through clone3 and clone. */
    struct { unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; } args;
    memset(&args, 0, sizeof args);
    int cfd = -5;
    args.flags = CLONE_PIDFD;
    args.pidfd = (unsigned long long)&cfd;
    args.exit_signal = SIGCHLD;
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r == 0) _exit(3);
    printf("clone3 pidfd set: %d cloexec: %d\n", cfd >= 0, fcntl(cfd, F_GETFD) == FD_CLOEXEC);
    memset(&info, 0, sizeof info);
    waitid(P_PIDFD, cfd, &info, WEXITED);
    printf("clone3 child status %d pid matches %d\n", info.si_status, info.si_pid == r);
    int cfd2 = -5;
    r = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &cfd2, 0, 0);
    if (r == 0) _exit(4);
    memset(&info, 0, sizeof info);
    waitid(P_PIDFD, cfd2, &info, WEXITED);
    printf("clone child status %d\n", info.si_status);
    report("clone PIDFD|PARENT_SETTID", syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &cfd2, 0, 0));
    return 0;
}
"#;

/// pidfd_open, pidfd_send_signal (siginfo, thread / process-group scope,
/// through a /proc/PID directory too), poll on a pidfd, waitid(P_PIDFD) (EAGAIN when non-blocking), and
/// CLONE_PIDFD through clone and clone3.
#[test]
fn pidfd_open_send_signal_poll_waitid_and_clone_pidfd() {
    let dir = TempDir::new("pidfd");
    let exe = compile_static_c(&dir, "pidfd", PIDFD);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native
        .stdout_str()
        .contains("child pid matches: 1 code=1 status=7"));
}

const FP_STATE_AND_CPU_CLOCKS: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* Rounding modes straight from MXCSR and the x87 control word (no libm). */
static const char *names[] = { "nearest", "downward", "upward", "toward zero" };
static void set_upward(void) {
    unsigned int csr;
    unsigned short cw;
    __asm__ volatile("stmxcsr %0" : "=m"(csr));
    csr = (csr & ~0x6000u) | (2u << 13);
    __asm__ volatile("ldmxcsr %0" : : "m"(csr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    cw = (cw & ~0xc00) | (2 << 10);
    __asm__ volatile("fldcw %0" : : "m"(cw));
}
static char buf[64];
static const char *mode(void) {
    unsigned int csr;
    unsigned short cw;
    __asm__ volatile("stmxcsr %0" : "=m"(csr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    snprintf(buf, sizeof buf, "sse %s, x87 %s", names[(csr >> 13) & 3], names[(cw >> 10) & 3]);
    return buf;
}
static long ms(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void *show(void *x) { printf("%s: rounding %s\n", (const char *)x, mode()); return 0; }
static void *burn(void *x) {
    (void)x;
    volatile unsigned long n = 0;
    while (ms(CLOCK_THREAD_CPUTIME_ID) < 150) n++;
    return 0;
}
static void *fresh(void *x) {
    (void)x;
    printf("a new thread's CPU clock starts near zero: %d\n", ms(CLOCK_THREAD_CPUTIME_ID) < 50);
    return 0;
}
int main(int argc, char **argv) {
    if (argc > 1) {
        printf("after execve: rounding %s\n", mode());
        return 0;
    }
    /* FP state: inherited by threads and forks, reset by execve. */
    set_upward();
    pthread_t t;
    pthread_create(&t, 0, show, "thread");
    pthread_join(t, 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        show("forked child");
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "exec", (char *)0);
        _exit(127);
    }
    waitpid(pid, 0, 0);
    /* CPU clocks: per thread; the process's keeps the time of threads gone. */
    for (int i = 0; i < 3; i++) {
        pthread_create(&t, 0, burn, 0);
        pthread_join(t, 0);
        pthread_create(&t, 0, fresh, 0);
        pthread_join(t, 0);
    }
    printf("the process clock counts the exited threads: %d\n", ms(CLOCK_PROCESS_CPUTIME_ID) >= 450);
    return 0;
}
"#;

/// Threads and forked children start with their parent's FP state (here
/// the rounding modes), execve resets it; CPU clocks are per thread (a
/// sentry thread and stub that drove an exited thread drive the next one)
/// and the process clock keeps the time of threads gone.
#[test]
fn fp_state_inherited_and_reset_cpu_clocks_per_thread() {
    let dir = TempDir::new("fp-cpu");
    let exe = compile_static_c(&dir, "fp-cpu", FP_STATE_AND_CPU_CLOCKS);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native
        .stdout_str()
        .contains("forked child: rounding sse upward"));
}

const FAILED_EXEC_KEEPS_THREADS: &str = r#"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static volatile int alive;
static void *spin(void *x) { (void)x; for (;;) { alive++; usleep(1000); } return 0; }
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, spin, 0);
    while (alive < 3) usleep(1000);
    char *argv[] = { "nope", 0 };
    int r = execv("/nonexistent/program", argv);
    printf("execv: %d %s\n", r, strerror(errno));
    r = execv("/etc/hostname", argv);
    printf("execv of a text file: %d %s\n", r, strerror(errno));
    r = execv("/tmp", argv);
    printf("execv of a directory: %d %s\n", r, strerror(errno));
    int before = alive;
    while (alive < before + 3) usleep(1000);
    printf("the other thread still runs\n");
    return 0;
}
"#;

/// An execve that fails on its file (missing, not executable, a directory)
/// returns the error with the other threads still running: they die only
/// past the point of no return.
#[test]
fn failed_execve_leaves_other_threads_alone() {
    let dir = TempDir::new("exec-fail");
    let exe = compile_static_c(&dir, "exec-fail", FAILED_EXEC_KEEPS_THREADS);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native.stdout_str().contains("the other thread still runs"));
}

const EXEC_RELEASES_ROBUST_AND_CLEARTID: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
static char *self;
static int child_main(void *arg) {
    char *argv[] = { self, "exit", 0 };
    (void)arg;
    execv("/proc/self/exe", argv);
    _exit(127);
}
int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "exit"))
        return 0;
    if (argc > 1 && !strcmp(argv[1], "wait")) {
        char c;
        read(0, &c, 1); /* until the parent closes the pipe */
        return 0;
    }
    self = argv[0];
    /* A robust mutex held by a child that then execs: execve releases it
     * (EOWNERDEAD for the next locker), as exit would. */
    pthread_mutex_t *mu = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(mu, &at);
    int locked[2], hold[2];
    pipe(locked);
    pipe(hold);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(mu);
        write(locked[1], "x", 1);
        dup2(hold[0], 0);
        close(hold[1]);
        execl("/proc/self/exe", argv[0], "wait", (char *)0);
        _exit(127);
    }
    char c;
    read(locked[0], &c, 1);
    int r = pthread_mutex_lock(mu);
    printf("lock after the holder's execve: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : strerror(r));
    close(hold[1]);
    waitpid(pid, 0, 0);
    /* CLONE_CHILD_CLEARTID in a vfork child: execve clears and wakes it. */
    static char stack[64 * 1024];
    volatile pid_t tidword = 77;
    pid = clone(child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | CLONE_CHILD_CLEARTID | SIGCHLD,
                0, 0, 0, (pid_t *)&tidword);
    printf("child_tid after the vfork child's execve: %d\n", (int)tidword);
    waitpid(pid, 0, 0);
    return 0;
}
"#;

/// execve settles the old image's robust futexes (the next locker gets
/// EOWNERDEAD) and its clear_child_tid (zeroed and woken), as Linux's
/// mm_release; they are not carried into the new image.
#[test]
fn execve_releases_robust_futexes_and_clear_child_tid() {
    let dir = TempDir::new("exec-mm-release");
    let exe = compile_static_c(&dir, "exec-mm-release", EXEC_RELEASES_ROBUST_AND_CLEARTID);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(native.stdout_str().contains("EOWNERDEAD"));
}

const WRITE_EINTR: &str = r#"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void on_alarm(int s) { (void)s; }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, 0);
    static char big[1 << 20];
    memset(big, 'x', sizeof big);
    alarm(1);
    ssize_t n = write(1, big, sizeof big);
    if (n < 0) fprintf(stderr, "write: %s\n", strerror(errno));
    else fprintf(stderr, "write: partial %s\n", n > 0 && n < (ssize_t)sizeof big ? "yes" : "no");
    return 0;
}
"#;

/// A write to the sandbox's stdout, a host pipe nobody reads, blocks in
/// the host; a signal ends it with the bytes written so far, as on Linux.
#[test]
fn signal_interrupts_a_write_to_a_full_host_pipe() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new("write-eintr");
    let exe = compile_static_c(&dir, "write_eintr", WRITE_EINTR);
    let run = |mut c: Command, tag: &str| {
        let err = dir.join(tag);
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped()) // never read while it runs
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn");
        let st = child.wait().expect("wait");
        (st.code(), std::fs::read_to_string(&err).expect("stderr"))
    };
    let native = run(Command::new(&exe), "native.err");
    let mut c = Command::new(rvisor_tests::rvisor_bin());
    c.arg("do").arg("--").arg(&exe);
    let sandboxed = run(c, "rvisor.err");
    assert_eq!(native, (Some(0), "write: partial yes\n".to_string()));
    assert_eq!(sandboxed, native);
}

const NPROC_PER_USER: &str = r#"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    /* Root forks freely: the limit counts uid 54321's tasks only. */
    struct rlimit rl = {3, 3};
    setrlimit(RLIMIT_NPROC, &rl);
    pid_t extra = fork();
    if (extra == 0) { pause(); _exit(0); }
    printf("root fork past the limit: %s\n", extra > 0 ? "ok" : strerror(errno));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        if (setuid(54321) != 0) { perror("setuid"); _exit(1); }
        pid_t kids[8];
        int n = 0, err = 0;
        for (int i = 0; i < 8; i++) {
            pid_t k = fork();
            if (k == 0) { pause(); _exit(0); }
            if (k < 0) { err = errno; break; }
            kids[n++] = k;
        }
        printf("uid 54321 forked %d, then %s\n", n, strerror(err));
        fflush(stdout);
        for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
        while (wait(0) > 0) {}
        _exit(0);
    }
    waitpid(c, 0, 0);
    kill(extra, SIGKILL);
    waitpid(extra, 0, 0);
    return 0;
}
"#;

/// RLIMIT_NPROC counts the tasks of the caller's real user, not all.
#[test]
fn rlimit_nproc_is_per_user() {
    let dir = TempDir::new("nproc");
    let exe = compile_static_c(&dir, "nproc", NPROC_PER_USER);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(
        native
            .stdout_str()
            .contains("uid 54321 forked 2, then Resource temporarily unavailable"),
        "{}",
        native.stdout_str()
    );
}

const PRIO_USER: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int p[2]; pipe(p);
    pid_t c = fork();
    if (c == 0) { setuid(54322); setpriority(PRIO_PROCESS, 0, 7); write(p[1], "x", 1); pause(); _exit(0); }
    char b; read(p[0], &b, 1);
    errno = 0;
    int n = getpriority(PRIO_USER, 54322);
    printf("user 54322: %d %s\n", n, strerror(errno));
    errno = 0;
    n = getpriority(PRIO_USER, 54399);
    printf("user 54399: %d %s\n", n, strerror(errno));
    printf("set user 54322: %d\n", setpriority(PRIO_USER, 54322, 9));
    printf("child now: %d\n", getpriority(PRIO_PROCESS, c));
    kill(c, 9); waitpid(c, 0, 0);
    return 0;
}
"#;

/// getpriority/setpriority(PRIO_USER) act on the processes of that real
/// uid only.
#[test]
fn priority_by_user() {
    let dir = TempDir::new("prio-user");
    let exe = compile_static_c(&dir, "prio", PRIO_USER);
    let (native, _) = Invocation::new(&[exe.to_str().unwrap()]).assert_same();
    assert!(
        native
            .stdout_str()
            .contains("user 54399: -1 No such process"),
        "{}",
        native.stdout_str()
    );
}
