//! Pseudo-terminals: /dev/ptmx and devpts (unlockpt, ptsname, TIOCGPTPEER),
//! the line discipline (echo, canonical editing, raw mode, VMIN/VTIME,
//! output processing), non-blocking I/O, hang-ups, and job control
//! (forkpty, ^C to the foreground group, SIGWINCH, SIGTTIN), plus an
//! interactive bash whose `sleep 100` ^C interrupts: differential, native
//! vs. rvisor.

use rvisor_tests::{compile_static_c, require_program, Invocation, TempDir};
use std::time::Duration;

/// openpty by hand, termios defaults, editing, echo, raw mode, EAGAIN,
/// EIO after the replica closes, hang-up after the master closes.
const BASICS: &str = r##"
#define _GNU_SOURCE
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <poll.h>
static void show(const char *what, const char *b, int n) {
    printf("%s %d:", what, n);
    for (int i = 0; i < n; i++) { unsigned char c = b[i]; if (c >= 32 && c < 127) putchar(c); else printf("\\x%02x", c); }
    putchar('\n');
}
int main() {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    printf("posix_openpt %s\n", m >= 0 ? "ok" : strerror(errno));
    printf("grantpt %d\n", grantpt(m));
    char *name = ptsname(m);
    printf("ptsname %s\n", name ? "ok" : strerror(errno));
    int s = open(name, O_RDWR | O_NOCTTY);
    printf("open locked: %s\n", s >= 0 ? "opened" : strerror(errno));
    printf("unlockpt %d\n", unlockpt(m));
    s = open(name, O_RDWR | O_NOCTTY);
    printf("open unlocked: %s\n", s >= 0 ? "opened" : strerror(errno));
    struct stat st; fstat(s, &st);
    printf("chr %d major %d\n", S_ISCHR(st.st_mode), major(st.st_rdev));
    printf("isatty %d %d\n", isatty(m), isatty(s));
    char tn[64]; printf("ttyname_r %d same %d\n", ttyname_r(s, tn, sizeof tn), strcmp(tn, name) == 0);
    struct termios tio; tcgetattr(s, &tio);
    printf("iflag %o oflag %o cflag %o lflag %o cc %d %d %d %d %d %d %d\n", tio.c_iflag, tio.c_oflag, tio.c_cflag, tio.c_lflag,
           tio.c_cc[VINTR], tio.c_cc[VQUIT], tio.c_cc[VERASE], tio.c_cc[VKILL], tio.c_cc[VEOF], tio.c_cc[VMIN], tio.c_cc[VTIME]);
    char b[256]; int n;
    write(m, "hel\x7flo wrd\x17world\r", 17);
    usleep(10000);
    n = read(m, b, sizeof b); show("echo", b, n);
    n = read(s, b, sizeof b); show("line", b, n);
    write(s, "out\tput\n", 8);
    n = read(m, b, sizeof b); show("output", b, n);
    write(m, "abc\x15xyz\x04", 8); usleep(100000);
    n = read(s, b, sizeof b); show("kill+eof", b, n);
    write(m, "\x04", 1);
    n = read(s, b, sizeof b); show("eof", b, n);
    int fl = fcntl(m, F_GETFL); fcntl(m, F_SETFL, fl | O_NONBLOCK);
    n = read(m, b, sizeof b); show("drain", b, n > 0 ? n : 0);
    n = read(m, b, sizeof b); printf("master nonblock: %s\n", n < 0 ? strerror(errno) : "data");
    fcntl(s, F_SETFL, O_RDWR | O_NONBLOCK);
    n = read(s, b, sizeof b); printf("replica nonblock: %s\n", n < 0 ? strerror(errno) : "data");
    int q; write(m, "one\ntwo", 7); usleep(100000); ioctl(s, FIONREAD, &q); printf("FIONREAD canon %d\n", q);
    struct pollfd pf = {s, POLLIN, 0}; int pr = poll(&pf, 1, 0); printf("poll replica %d %x\n", pr, pf.revents);
    usleep(100000); n = read(m, b, sizeof b); show("echo", b, n);
    cfmakeraw(&tio); tio.c_cc[VMIN] = 1; tio.c_cc[VTIME] = 0; tcsetattr(s, TCSANOW, &tio);
    ioctl(s, FIONREAD, &q); printf("FIONREAD raw %d\n", q);
    n = read(s, b, sizeof b); show("raw", b, n);
    tio.c_cc[VMIN] = 0; tcsetattr(s, TCSANOW, &tio);
    n = read(s, b, sizeof b); printf("vmin0: %d\n", n);
    write(s, "a\nb", 3); usleep(100000); n = read(m, b, sizeof b); show("raw out", b, n);
    struct winsize ws = {24, 80, 0, 0}; printf("setwinsz %d\n", ioctl(m, TIOCSWINSZ, &ws));
    struct winsize w2; ioctl(s, TIOCGWINSZ, &w2); printf("winsz %d %d\n", w2.ws_row, w2.ws_col);
    int ptn; printf("TIOCGPTN replica: %s\n", ioctl(s, TIOCGPTN, &ptn) ? strerror(errno) : "ok");
    int pgrp; printf("TIOCGPGRP replica (not ctty): %s\n", ioctl(s, TIOCGPGRP, &pgrp) ? strerror(errno) : "ok");
    printf("tcgetsid: %s\n", tcgetsid(s) < 0 ? strerror(errno) : "ok");
    int fd = open("/dev/tty", O_RDWR); printf("/dev/tty: %s\n", fd < 0 ? strerror(errno) : "opened");
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY); printf("TIOCGPTPEER %s\n", peer >= 0 ? "ok" : strerror(errno));
    write(peer, "via peer\n", 9); usleep(100000); n = read(m, b, sizeof b); show("peer", b, n);
    /* Non-blocking writes fill up: replica -> master, then master -> raw replica. */
    fcntl(peer, F_SETFL, O_RDWR | O_NONBLOCK);
    static char big[4096]; memset(big, 'x', sizeof big);
    while ((n = write(peer, big, sizeof big)) > 0) ;
    printf("replica write full: %s\n", strerror(errno));
    fcntl(m, F_SETFL, fl | O_NONBLOCK);
    while (read(m, b, sizeof b) > 0) ;
    while ((n = write(m, big, sizeof big)) > 0) ;
    printf("master write full: %s\n", strerror(errno));
    tcflush(peer, TCIFLUSH); usleep(100000);
    ioctl(peer, FIONREAD, &q); printf("FIONREAD after tcflush %d\n", q > 0 ? 1 : 0);
    close(peer);
    close(s);
    fcntl(m, F_SETFL, fl);
    n = read(m, b, sizeof b); printf("master after replica close: %s\n", n < 0 ? strerror(errno) : "data");
    pf.fd = m; pf.events = POLLIN; pr = poll(&pf, 1, 0); printf("poll master %d %x\n", pr, pf.revents);
    s = open(name, O_RDWR|O_NOCTTY); printf("reopen %s\n", s >= 0 ? "ok" : strerror(errno));
    close(m);
    n = read(s, b, sizeof b); printf("replica after master close: %d %s\n", n, n < 0 ? strerror(errno) : "");
    n = write(s, "x", 1); printf("replica write after hangup: %d %s\n", n, n < 0 ? strerror(errno) : "");
    printf("stat after close: %s\n", stat(name, &st) ? strerror(errno) : "exists");
    return 0;
}
"##;

/// forkpty: the child is a session leader with the pty as controlling
/// terminal; ^C, SIGWINCH, SIGTTIN for a background reader, ^C to a
/// foreground child.
const JOBS: &str = r##"
#define _GNU_SOURCE
#include <pty.h>
#include <utmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
static volatile sig_atomic_t got;
static void h(int s) { got = s; }
static void drain(int m, const char *until) {
    char b[4096]; int n, len = 0; char acc[8192];
    while ((n = read(m, b, sizeof b)) > 0) {
        memcpy(acc + len, b, n); len += n; acc[len] = 0;
        if (strstr(acc, until)) break;
    }
    for (int i = 0; i < len; i++) { unsigned char c = acc[i]; if (c == '\r') continue; if (c >= 32 || c == '\n') putchar(c); else printf("^%c", c ^ 64); }
    fflush(stdout);
}
int main() {
    int m; struct winsize ws = {25, 81, 0, 0};
    fflush(stdout);
    pid_t c = forkpty(&m, NULL, NULL, &ws);
    if (c < 0) { perror("forkpty"); return 1; }
    if (c == 0) {
        signal(SIGINT, h); signal(SIGWINCH, h);
        printf("child: leader %d fg %d tty %d\n", getsid(0) == getpid(), tcgetpgrp(0) == getpgrp(), isatty(0));
        pid_t sid = tcgetsid(0); printf("child: tcgetsid ok %d\n", sid == getpid());
        int t = open("/dev/tty", O_RDWR); printf("child: /dev/tty %s\n", t >= 0 ? "opened" : strerror(errno));
        struct winsize w; ioctl(0, TIOCGWINSZ, &w); printf("child: winsize %d %d\n", w.ws_row, w.ws_col);
        printf("child: setsid %s\n", setsid() < 0 ? strerror(errno) : "ok");
        printf("ready1\n"); fflush(stdout);
        while (got != SIGINT) pause();
        printf("child: got SIGINT\n");
        got = 0;
        printf("ready2\n"); fflush(stdout);
        while (got != SIGWINCH) pause();
        ioctl(0, TIOCGWINSZ, &w); printf("child: got SIGWINCH %d %d\n", w.ws_row, w.ws_col);
        // A background child: reading the terminal stops it with SIGTTIN.
        pid_t bg = fork();
        if (bg == 0) { setpgid(0, 0); char x; read(0, &x, 1); _exit(3); }
        int st; waitpid(bg, &st, WUNTRACED);
        printf("child: bg %s %d\n", WIFSTOPPED(st) ? "stopped" : "not stopped", WIFSTOPPED(st) ? WSTOPSIG(st) : st);
        kill(bg, SIGKILL); waitpid(bg, &st, 0);
        // A foreground child gets ^C's SIGINT
        signal(SIGTTOU, SIG_IGN);
        bg = fork();
        if (bg == 0) { signal(SIGINT, SIG_DFL); setpgid(0, 0); tcsetpgrp(0, getpid()); printf("ready3\n"); fflush(stdout); pause(); _exit(0); }
        waitpid(bg, &st, 0);
        tcsetpgrp(0, getpgrp());
        printf("child: fg child %s %d\n", WIFSIGNALED(st) ? "killed by" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        printf("bye\n");
        return 0;
    }
    drain(m, "ready1\r\n");
    write(m, "\x03", 1);
    drain(m, "ready2\r\n");
    ws.ws_row = 30; ws.ws_col = 100; ioctl(m, TIOCSWINSZ, &ws);
    drain(m, "ready3\r\n");
    usleep(100000);
    write(m, "\x03", 1);
    drain(m, "bye\r\n");
    char b[64]; int n;
    int st; waitpid(c, &st, 0);
    while ((n = read(m, b, sizeof b)) > 0) ;
    printf("parent: final read %d %s, child status %d\n", n, n < 0 ? strerror(errno) : "", WEXITSTATUS(st));
    return 0;
}
"##;

/// Hang-ups: closing the master sends the session leader SIGHUP and
/// SIGCONT (reads then give 0, writes EIO, /dev/tty ENXIO); a session
/// leader's exit sends its foreground group SIGHUP.
const HANGUP: &str = r##"
#define _GNU_SOURCE
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>
static int out;
static volatile sig_atomic_t hup, cont;
static void h(int s) { if (s == SIGHUP) hup = 1; else cont = 1; }
static void say(const char *s) { write(out, s, strlen(s)); }
int main() {
    int p[2]; pipe(p); out = p[1];
    int m;
    pid_t c = forkpty(&m, NULL, NULL, NULL);
    if (c == 0) {
        close(p[0]);
        signal(SIGHUP, h); signal(SIGCONT, h);
        /* A grandchild in the foreground group, to see session-leader exit. */
        printf("ready\n"); fflush(stdout);
        while (!hup) pause();
        char b[8]; char msg[128];
        int n = read(0, b, sizeof b);
        int rerr = n < 0 ? errno : 0;
        int w = write(1, "x", 1);
        int werr = errno;
        int t = open("/dev/tty", O_RDWR);
        snprintf(msg, sizeof msg, "child: SIGHUP %d SIGCONT %d read %d %s write %d %s /dev/tty %s\n", hup, cont, n, strerror(rerr),
                 w, w < 0 ? strerror(werr) : "", t < 0 ? strerror(errno) : "opened");
        say(msg);
        _exit(0);
    }
    close(p[1]);
    char b[64]; int n = read(m, b, sizeof b);
    printf("parent read %d\n", n > 0);
    close(m);
    char r[256] = {0}; n = read(p[0], r, sizeof r - 1);
    printf("%s", r);
    int st; waitpid(c, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));

    /* Session leader exit: the foreground group gets SIGHUP. */
    int p2[2]; pipe(p2);
    c = forkpty(&m, NULL, NULL, NULL);
    if (c == 0) {
        close(p2[0]);
        pid_t g = fork();
        if (g == 0) {
            /* Same (foreground) group as the leader. */
            signal(SIGHUP, h);
            printf("ready\n"); fflush(stdout);
            while (!hup) pause();
            write(p2[1], "grandchild: SIGHUP\n", 19);
            _exit(0);
        }
        usleep(200000);
        _exit(0);
    }
    close(p2[1]);
    n = read(m, b, sizeof b);
    memset(r, 0, sizeof r);
    n = read(p2[0], r, sizeof r - 1);
    printf("%s", n > 0 ? r : "grandchild: no SIGHUP\n");
    waitpid(c, &st, 0);
    return 0;
}
"##;

/// An interactive bash on a pty: `sleep 100`, ^C, `echo after $?`.
const BASH: &str = r##"
#define _GNU_SOURCE
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <poll.h>
#include <time.h>
#include <termios.h>
#include <sys/wait.h>
static char acc[65536]; static int len;
static double now() { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
/* Read from the master until `want` shows up (or EOF, or the deadline). */
static int wait_for(int m, const char *want, double secs) {
    double end = now() + secs;
    while (!strstr(acc, want)) {
        struct pollfd p = {m, POLLIN, 0};
        int left = (int)((end - now()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0) return 0;
        int n = read(m, acc + len, sizeof acc - 1 - len);
        if (n <= 0) return 0;
        len += n; acc[len] = 0;
    }
    return 1;
}
int main(int argc, char **argv) {
    int m;
    pid_t c = forkpty(&m, NULL, NULL, NULL);
    if (c == 0) {
        char *env[] = {"PS1=$ ", "TERM=dumb", "PATH=/usr/bin:/bin", "HOME=/", NULL};
        execle(argv[1], "bash", "--norc", "--noprofile", "-i", NULL, env);
        _exit(127);
    }
    printf("prompt: %d\n", wait_for(m, "$ ", 10));
    write(m, "sleep 100\n", 10);
    wait_for(m, "sleep 100\r\n", 5);
    /* Until bash has made sleep's group the foreground one (TIOCGPGRP on
       the master), then a little more for the exec. */
    for (int i = 0; i < 500; i++) {
        pid_t fg = tcgetpgrp(m);
        if (fg > 0 && fg != c) break;
        usleep(10000);
    }
    usleep(200000);
    double t0 = now();
    write(m, "\x03", 1);
    write(m, "echo after $?\n", 14);
    int ok = wait_for(m, "after 130", 10);
    printf("interrupted: %d within 5s: %d\n", ok, now() - t0 < 5);
    write(m, "exit\n", 5);
    int st; waitpid(c, &st, 0);
    printf("bash exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    if (!ok) fprintf(stderr, "output:\n%s\n", acc);
    return 0;
}
"##;

#[test]
fn pty_openpty_termios_echo_nonblock_hangup() {
    let dir = TempDir::new("pty-basics");
    let exe = compile_static_c(&dir, "basics", BASICS);
    Invocation::new(&[exe.to_str().unwrap()]).assert_same();
}

#[test]
fn pty_forkpty_job_control_sigint_sigwinch() {
    let dir = TempDir::new("pty-jobs");
    let exe = compile_static_c(&dir, "jobs", JOBS);
    Invocation::new(&[exe.to_str().unwrap()])
        .timeout(Duration::from_secs(30))
        .assert_same();
}

#[test]
fn pty_hangup_sighup() {
    let dir = TempDir::new("pty-hangup");
    let exe = compile_static_c(&dir, "hangup", HANGUP);
    Invocation::new(&[exe.to_str().unwrap()])
        .timeout(Duration::from_secs(30))
        .assert_same();
}

#[test]
fn pty_interactive_bash_ctrl_c_interrupts_sleep() {
    let bash = require_program("bash", "bash");
    let dir = TempDir::new("pty-bash");
    let exe = compile_static_c(&dir, "bash", BASH);
    let (_, r) = Invocation::new(&[exe.to_str().unwrap(), bash.to_str().unwrap()])
        .timeout(Duration::from_secs(30))
        .assert_same();
    assert_eq!(
        r.stdout_str(),
        "prompt: 1\ninterrupted: 1 within 5s: 1\nbash exit: 0\n",
        "{}",
        r.describe()
    );
}
