/* rvbench: the in-sandbox program of rvisor's bench (built by bench with
 * gcc -O2 -static and copied into the bundle's rootfs).
 *
 *   rvbench SPEC...      SPEC = MODE:OPS[:DIR], run one after the other
 *   rvbench nop          exit 0 at once (the target of fork+exec)
 *
 * For each SPEC it runs OPS/10 + 1 untimed operations, then OPS timed ones
 * (CLOCK_MONOTONIC), and prints one line:
 *   ok MODE NS_PER_OP
 *   fail MODE REASON
 * A failing mode does not stop the others. DIR is where the file modes work
 * (it must hold `file`, 1 MiB, and `dir`, 10 000 empty files). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char fail_reason[256];
static const char *self_path;
static const char *dir;
static char path_file[4096], path_dir[4096], path_new[4096], path_out[4096];

/* Records the first failure of the current mode; ops return -1 after it. */
static int fail(const char *what) {
    if (!fail_reason[0])
        snprintf(fail_reason, sizeof fail_reason, "%s: %s", what, strerror(errno));
    return -1;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* ---- single syscalls ---- */

static int op_getppid(void) {
    syscall(SYS_getppid);
    return 0;
}

static int op_clock_gettime(void) {
    struct timespec t;
    return clock_gettime(CLOCK_MONOTONIC, &t) == 0 ? 0 : fail("clock_gettime");
}

static int op_open_close(void) {
    int fd = open(path_file, O_RDONLY);
    if (fd < 0)
        return fail("open");
    return close(fd) == 0 ? 0 : fail("close");
}

static int op_stat(void) {
    struct stat st;
    return stat(path_file, &st) == 0 ? 0 : fail("stat");
}

static int read_fd = -1;
static long op_count;
static char buf[1 << 16];

static int op_pread(void) {
    off_t off = (off_t)(op_count++ % 256) * 4096;
    return pread(read_fd, buf, 4096, off) == 4096 ? 0 : fail("pread");
}

static int null_fd = -1;

static int op_write_null(void) {
    return write(null_fd, buf, 64) == 64 ? 0 : fail("write");
}

/* ---- ping-pong between two processes over pipes or a socket pair ---- */

static int ping_w = -1, ping_r = -1;

static int op_ping(void) {
    char c = 'x';
    if (write(ping_w, &c, 1) != 1)
        return fail("write");
    if (read(ping_r, &c, 1) != 1)
        return fail("read");
    return 0;
}

/* The peer echoes every byte until end of file. */
static void echo_loop(int r, int w) {
    char c;
    while (read(r, &c, 1) == 1)
        if (write(w, &c, 1) != 1)
            _exit(1);
    _exit(0);
}

static pid_t peer_pid = -1;

static int setup_pipe(void) {
    int a[2], b[2];
    if (pipe(a) != 0 || pipe(b) != 0)
        return fail("pipe");
    peer_pid = fork();
    if (peer_pid < 0)
        return fail("fork");
    if (peer_pid == 0) {
        close(a[1]);
        close(b[0]);
        echo_loop(a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    ping_w = a[1];
    ping_r = b[0];
    return 0;
}

static int setup_unix(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return fail("socketpair");
    peer_pid = fork();
    if (peer_pid < 0)
        return fail("fork");
    if (peer_pid == 0) {
        close(sv[0]);
        echo_loop(sv[1], sv[1]);
    }
    close(sv[1]);
    ping_w = ping_r = sv[0];
    return 0;
}

/* A TCP connection over loopback: (client, server) ends, Nagle off. */
static int tcp_pair(int *client, int *server) {
    struct sockaddr_in a = {0};
    socklen_t al = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0)
        return fail("socket(AF_INET)");
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) != 0)
        return fail("bind/listen on 127.0.0.1");
    *client = socket(AF_INET, SOCK_STREAM, 0);
    if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof a) != 0)
        return fail("connect to 127.0.0.1");
    *server = accept(l, 0, 0);
    if (*server < 0)
        return fail("accept");
    close(l);
    int one = 1;
    setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

/* The client end stays here; a forked peer runs `serve` on the server end. */
static int tcp_with_peer(void (*serve)(int)) {
    int c, s;
    if (tcp_pair(&c, &s) != 0)
        return -1;
    peer_pid = fork();
    if (peer_pid < 0)
        return fail("fork");
    if (peer_pid == 0) {
        close(c);
        serve(s);
    }
    close(s);
    ping_w = ping_r = c;
    return 0;
}

static void serve_echo(int s) { echo_loop(s, s); }

static int setup_tcp(void) { return tcp_with_peer(serve_echo); }

/* 1 MiB through loopback TCP: the peer reads it all and answers a byte. */
#define STREAM_CHUNK (64 << 10)
#define STREAM_TOTAL (1 << 20)

/* The peer reads everything and answers a byte per MiB. */
static void serve_sink(int s) {
    static char sink[STREAM_CHUNK];
    long got = 0;
    for (;;) {
        ssize_t n = read(s, sink, sizeof sink);
        if (n <= 0)
            _exit(n == 0 ? 0 : 1);
        got += n;
        while (got >= STREAM_TOTAL) {
            got -= STREAM_TOTAL;
            if (write(s, "k", 1) != 1)
                _exit(1);
        }
    }
}

static int setup_tcp_stream(void) { return tcp_with_peer(serve_sink); }

static int op_tcp_stream(void) {
    static char chunk[STREAM_CHUNK];
    for (int sent = 0; sent < STREAM_TOTAL;) {
        ssize_t n = write(ping_w, chunk, sizeof chunk);
        if (n <= 0)
            return fail("write");
        sent += n;
    }
    char c;
    if (read(ping_r, &c, 1) != 1)
        return fail("read");
    return 0;
}

static int teardown_ping(void) {
    int status;
    close(ping_w);
    if (ping_r != ping_w)
        close(ping_r);
    ping_w = ping_r = -1;
    if (peer_pid > 0 && waitpid(peer_pid, &status, 0) != peer_pid)
        return fail("waitpid");
    peer_pid = -1;
    return 0;
}

/* ---- processes, threads, memory ---- */

static int reap(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return fail("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = ECHILD;
        snprintf(fail_reason, sizeof fail_reason, "child status %#x", status);
        return -1;
    }
    return 0;
}

static int op_fork(void) {
    pid_t pid = fork();
    if (pid < 0)
        return fail("fork");
    if (pid == 0)
        _exit(0);
    return reap(pid);
}

static int op_fork_exec(void) {
    pid_t pid = fork();
    if (pid < 0)
        return fail("fork");
    if (pid == 0) {
        execl(self_path, "rvbench", "nop", (char *)0);
        _exit(127);
    }
    return reap(pid);
}

static int thread_token;

static void *thread_body(void *arg) { return arg; }

static int op_thread(void) {
    pthread_t t;
    void *ret;
    errno = pthread_create(&t, 0, thread_body, &thread_token);
    if (errno != 0)
        return fail("pthread_create");
    errno = pthread_join(t, &ret);
    if (errno != 0 || ret != &thread_token)
        return fail("pthread_join");
    return 0;
}

/* 16 pages mapped, each touched once, unmapped. */
static int op_mmap(void) {
    size_t len = 16 * 4096;
    char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return fail("mmap");
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
    return munmap(p, len) == 0 ? 0 : fail("munmap");
}

/* One page fault: OPS counts pages; the region is 256 MiB, remapped when
 * every page of it has been touched. */
#define FAULT_REGION (256UL << 20)
static char *fault_base;
static size_t fault_off;

static int op_fault(void) {
    if (!fault_base || fault_off == FAULT_REGION) {
        if (fault_base && munmap(fault_base, FAULT_REGION) != 0)
            return fail("munmap");
        fault_base = mmap(0, FAULT_REGION, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (fault_base == MAP_FAILED) {
            fault_base = 0;
            return fail("mmap");
        }
        fault_off = 0;
    }
    fault_base[fault_off] = 1;
    fault_off += 4096;
    return 0;
}

/* Futex ping-pong: the main thread sets the word to 1 and wakes the peer,
 * which sets it back to 0 and wakes the main thread: one round trip. */
static _Atomic int word;
static _Atomic int futex_stop;
static pthread_t futex_peer;

static void fwait(int val) {
    while (atomic_load(&word) == val && !atomic_load(&futex_stop))
        syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, val, 0, 0, 0);
}

static void fwake(void) { syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0); }

static void *ponger(void *arg) {
    (void)arg;
    while (!atomic_load(&futex_stop)) {
        fwait(0);
        if (atomic_load(&futex_stop))
            break;
        atomic_store(&word, 0);
        fwake();
    }
    return 0;
}

static int setup_futex(void) {
    atomic_store(&word, 0);
    atomic_store(&futex_stop, 0);
    errno = pthread_create(&futex_peer, 0, ponger, 0);
    return errno == 0 ? 0 : fail("pthread_create");
}

static int op_futex(void) {
    atomic_store(&word, 1);
    fwake();
    fwait(1);
    return 0;
}

static int teardown_futex(void) {
    atomic_store(&futex_stop, 1);
    atomic_store(&word, 1);
    fwake();
    errno = pthread_join(futex_peer, 0);
    return errno == 0 ? 0 : fail("pthread_join");
}

/* ---- file system ---- */

static int setup_read(void) {
    read_fd = open(path_file, O_RDONLY);
    op_count = 0;
    return read_fd >= 0 ? 0 : fail("open");
}

static int teardown_read(void) {
    close(read_fd);
    read_fd = -1;
    return 0;
}

/* 1 MiB read from the start of `file`, in 64 KiB reads. */
static int op_seqread(void) {
    if (lseek(read_fd, 0, SEEK_SET) != 0)
        return fail("lseek");
    for (int i = 0; i < 16; i++)
        if (read(read_fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            return fail("read");
    return 0;
}

/* 1 MiB written to a truncated file, in 64 KiB writes. */
static int op_seqwrite(void) {
    int fd = open(path_out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fail("open");
    for (int i = 0; i < 16; i++)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
            close(fd);
            return fail("write");
        }
    return close(fd) == 0 ? 0 : fail("close");
}

static int op_readdir(void) {
    DIR *d = opendir(path_dir);
    if (!d)
        return fail("opendir");
    long n = 0;
    errno = 0;
    while (readdir(d))
        n++;
    if (errno != 0) {
        closedir(d);
        return fail("readdir");
    }
    closedir(d);
    if (n < 10002) {
        errno = ENOENT;
        snprintf(fail_reason, sizeof fail_reason, "readdir saw %ld entries, want 10002", n);
        return -1;
    }
    return 0;
}

static int op_create_unlink(void) {
    int fd = open(path_new, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return fail("open O_CREAT");
    if (close(fd) != 0)
        return fail("close");
    return unlink(path_new) == 0 ? 0 : fail("unlink");
}

static int setup_null(void) {
    null_fd = open("/dev/null", O_WRONLY);
    return null_fd >= 0 ? 0 : fail("open /dev/null");
}

static int teardown_null(void) {
    close(null_fd);
    return 0;
}

static int teardown_fault(void) {
    if (fault_base)
        munmap(fault_base, FAULT_REGION);
    fault_base = 0;
    return 0;
}

struct mode {
    const char *name;
    int (*setup)(void);
    int (*op)(void);
    int (*teardown)(void);
};

static const struct mode modes[] = {
    {"getppid", 0, op_getppid, 0},
    {"clock_gettime", 0, op_clock_gettime, 0},
    {"open_close", 0, op_open_close, 0},
    {"stat", 0, op_stat, 0},
    {"pread", setup_read, op_pread, teardown_read},
    {"write_null", setup_null, op_write_null, teardown_null},
    {"pipe", setup_pipe, op_ping, teardown_ping},
    {"unix", setup_unix, op_ping, teardown_ping},
    {"tcp", setup_tcp, op_ping, teardown_ping},
    {"tcp_stream", setup_tcp_stream, op_tcp_stream, teardown_ping},
    {"fork", 0, op_fork, 0},
    {"fork_exec", 0, op_fork_exec, 0},
    {"thread", 0, op_thread, 0},
    {"mmap", 0, op_mmap, 0},
    {"fault", 0, op_fault, teardown_fault},
    {"futex", setup_futex, op_futex, teardown_futex},
    {"seqread", setup_read, op_seqread, teardown_read},
    {"seqwrite", 0, op_seqwrite, 0},
    {"readdir", 0, op_readdir, 0},
    {"create_unlink", 0, op_create_unlink, 0},
};

static void run_spec(char *spec) {
    char *name = strtok(spec, ":");
    char *ops_s = strtok(0, ":");
    char *d = strtok(0, "");
    long ops = ops_s ? atol(ops_s) : 0;
    const struct mode *m = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (name && strcmp(modes[i].name, name) == 0)
            m = &modes[i];
    if (!m || ops <= 0) {
        printf("fail %s bad spec (want MODE:OPS[:DIR])\n", name ? name : "?");
        return;
    }
    dir = d ? d : "/bench/fs";
    snprintf(path_file, sizeof path_file, "%s/file", dir);
    snprintf(path_dir, sizeof path_dir, "%s/dir", dir);
    snprintf(path_new, sizeof path_new, "%s/new.%d", dir, (int)getpid());
    snprintf(path_out, sizeof path_out, "%s/out.%d", dir, (int)getpid());
    fail_reason[0] = 0;
    int err = m->setup ? m->setup() : 0;
    double ns = 0;
    if (err == 0) {
        long warm = ops / 10 + 1;
        for (long i = 0; i < warm && err == 0; i++)
            err = m->op();
        double start = now_ns();
        for (long i = 0; i < ops && err == 0; i++)
            err = m->op();
        ns = now_ns() - start;
    }
    if (m->teardown && m->teardown() != 0 && err == 0)
        err = -1;
    if (strcmp(m->name, "seqwrite") == 0)
        unlink(path_out);
    if (err == 0)
        printf("ok %s %.1f\n", m->name, ns / (double)ops);
    else
        printf("fail %s %s\n", m->name, fail_reason[0] ? fail_reason : "error");
    fflush(stdout);
}

int main(int argc, char **argv) {
    self_path = argv[0];
    if (argc == 2 && strcmp(argv[1], "nop") == 0)
        return 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODE:OPS[:DIR]... | nop\n", argv[0]);
        return 2;
    }
    memset(buf, 'b', sizeof buf);
    for (int i = 1; i < argc; i++)
        run_spec(argv[i]);
    return 0;
}
