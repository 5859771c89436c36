//! Harness for rvisor's integration tests.
//!
//! The central idea is the *differential* test: run the same command line
//! natively (with a clean environment, like `env -i PATH=... CMD`) and under
//! `rvisor do`, then compare stdout and exit status. stderr is returned but not
//! compared by default, since error messages legitimately differ.
//!
//! Every run has a deadline ([`DEFAULT_TIMEOUT`], overridable with the
//! `RVISOR_TEST_TIMEOUT` environment variable, in seconds). A child that is
//! still running at the deadline is killed together with its process group,
//! so a hung sentry fails its test instead of hanging CI.
//!
//! Children are started in a process group of their own. After the main
//! process exits, the harness checks that nothing in that group is still
//! alive ([`Output::leftovers`]); `rvisor do` must not leave its gofer, sentry
//! or stub processes behind. For processes that escape the group (setsid),
//! [`Subreaper`] offers a stricter check for a dedicated test binary.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// PATH that `rvisor do` supplies when `--env PATH=...` is not given; the
/// harness gives native runs the same one so both sides agree.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Deadline for one run unless `RVISOR_TEST_TIMEOUT` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long processes of a run's group may outlive its main process (a gofer
/// shutting down, say) before they count as left behind.
const LEFTOVER_GRACE: Duration = Duration::from_secs(3);

/// How long to wait for stdout/stderr to reach EOF once the run is over.
const PIPE_GRACE: Duration = Duration::from_secs(5);

/// Static busybox from Debian's `busybox-static`.
pub const BUSYBOX: &str = "/bin/busybox";

/// Result of one run.
#[derive(Debug, Clone)]
pub struct Output {
    /// Human-readable description of what was run (for failure messages).
    pub what: String,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Exit status; 128+N when killed by signal N (like a shell's `$?`).
    pub status: i32,
    /// The run hit its deadline and was killed.
    pub timed_out: bool,
    /// Processes of the run's process group still alive (not zombies) after
    /// the main process exited and a grace period passed; they were killed.
    pub leftovers: Vec<String>,
    pub elapsed: Duration,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr_str()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Panics (with context) if the run timed out or left processes behind.
    pub fn assert_clean_exit(&self) {
        assert!(
            !self.timed_out,
            "{} timed out after {:?} and was killed\n{}",
            self.what,
            self.elapsed,
            self.describe()
        );
        assert!(
            self.leftovers.is_empty(),
            "{} left processes behind after exiting: {:?}\n{}",
            self.what,
            self.leftovers,
            self.describe()
        );
    }

    /// Multi-line summary: status, and heads of stdout and stderr.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "--- {} => status {}{} in {:?}",
            self.what,
            self.status,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.elapsed
        );
        let _ = writeln!(
            s,
            "--- stdout ({} bytes):\n{}",
            self.stdout.len(),
            head(&self.stdout, 2000)
        );
        let _ = writeln!(
            s,
            "--- stderr ({} bytes):\n{}",
            self.stderr.len(),
            head(&self.stderr, 4000)
        );
        s
    }
}

fn head(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    if bytes.len() > max {
        format!("{text}\n[... {} more bytes]", bytes.len() - max)
    } else {
        text
    }
}

/// One command line, with everything needed to run it natively or sandboxed.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv: Vec<String>,
    /// Environment, in order. PATH=[`DEFAULT_PATH`] is appended if absent.
    pub env: Vec<(String, String)>,
    /// Working directory; `/` by default (the default of `rvisor do`).
    pub cwd: PathBuf,
    /// Data fed to stdin (then closed); `None` means stdin is /dev/null.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Extra flags for `rvisor do`, placed before `--`.
    pub rvisor_args: Vec<String>,
}

impl Invocation {
    pub fn new<S: AsRef<str>>(argv: &[S]) -> Self {
        assert!(!argv.is_empty(), "empty argv");
        Invocation {
            argv: argv.iter().map(|s| s.as_ref().to_owned()).collect(),
            env: Vec::new(),
            cwd: PathBuf::from("/"),
            stdin: None,
            timeout: default_timeout(),
            rvisor_args: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = dir.as_ref().to_path_buf();
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn rvisor_arg(mut self, arg: impl Into<String>) -> Self {
        self.rvisor_args.push(arg.into());
        self
    }

    /// The environment the program sees: `env`, plus the default PATH when
    /// `env` has none.
    pub fn effective_env(&self) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".to_owned(), DEFAULT_PATH.to_owned()));
        }
        env
    }

    /// The native command: `env -i <effective env> CMD` in `cwd`.
    pub fn native_command(&self) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]).env_clear().current_dir(&self.cwd);
        for (k, v) in self.effective_env() {
            cmd.env(k, v);
        }
        cmd
    }

    /// The sandboxed command: `rvisor do --cwd DIR --env K=V... [extra] -- CMD`.
    ///
    /// Only `env` is passed (not the PATH default) so that rvisor's own
    /// default is exercised. The rvisor process itself keeps the host
    /// environment (as when a user runs it); not leaking that into the
    /// sandbox is rvisor's job.
    pub fn rvisor_command(&self) -> Command {
        let mut cmd = Command::new(rvisor_bin());
        cmd.arg("do").arg("--cwd").arg(&self.cwd);
        for (k, v) in &self.env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.args(&self.rvisor_args).arg("--").args(&self.argv);
        cmd
    }

    fn describe(&self, side: &str) -> String {
        format!("[{side}] {}", shell_words(&self.argv))
    }

    pub fn run_native(&self) -> Output {
        let what = self.describe("native");
        match execute(
            self.native_command(),
            self.stdin.as_deref(),
            self.timeout,
            what.clone(),
        ) {
            Ok(out) => out,
            // What a shell reports when exec fails: 127 for "not found",
            // 126 for "found but cannot execute".
            Err(e) => {
                let status = if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                Output {
                    what,
                    stdout: Vec::new(),
                    stderr: format!("{}: {e}\n", self.argv[0]).into_bytes(),
                    status,
                    timed_out: false,
                    leftovers: Vec::new(),
                    elapsed: Duration::ZERO,
                }
            }
        }
    }

    pub fn run_rvisor(&self) -> Output {
        let what = self.describe("rvisor");
        let bin = rvisor_bin();
        execute(
            self.rvisor_command(),
            self.stdin.as_deref(),
            self.timeout,
            what,
        )
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
    }

    /// Runs natively and under rvisor; asserts equal stdout and status, no
    /// timeout and nothing left behind. Returns (native, rvisor).
    pub fn assert_same(&self) -> (Output, Output) {
        let native = self.run_native();
        native.assert_clean_exit();
        let sandboxed = self.run_rvisor();
        assert!(
            !sandboxed.timed_out,
            "rvisor run timed out after {:?} and was killed\n{}",
            self.timeout,
            sandboxed.describe()
        );
        assert_outputs_equal(&native, &sandboxed);
        sandboxed.assert_clean_exit();
        (native, sandboxed)
    }
}

/// Asserts `a` and `b` have the same stdout and exit status; on failure the
/// message shows the first differing line and both runs.
pub fn assert_outputs_equal(a: &Output, b: &Output) {
    if a.stdout != b.stdout {
        let la: Vec<&[u8]> = a.stdout.split(|&c| c == b'\n').collect();
        let lb: Vec<&[u8]> = b.stdout.split(|&c| c == b'\n').collect();
        let i = la
            .iter()
            .zip(lb.iter())
            .position(|(x, y)| x != y)
            .unwrap_or(la.len().min(lb.len()));
        let line = |v: &Vec<&[u8]>| {
            v.get(i)
                .map(|l| format!("{:?}", String::from_utf8_lossy(l)))
                .unwrap_or_else(|| "<end of output>".to_owned())
        };
        panic!(
            "stdout differs at line {}:\n  {}: {}\n  {}: {}\n{}{}",
            i + 1,
            a.what,
            line(&la),
            b.what,
            line(&lb),
            a.describe(),
            b.describe()
        );
    }
    assert!(
        a.status == b.status,
        "exit status differs: {} -> {}, {} -> {}\n{}{}",
        a.what,
        a.status,
        b.what,
        b.status,
        a.describe(),
        b.describe()
    );
}

/// Runs `argv` natively with exactly `env` (plus the default PATH), in `cwd`
/// (default `/`), feeding `stdin`.
pub fn run_native(
    argv: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&Path>,
    stdin: Option<&[u8]>,
) -> Output {
    invocation(argv, env, cwd, stdin).run_native()
}

/// Like [`run_native`], under `rvisor do`.
pub fn run_rvisor(
    argv: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&Path>,
    stdin: Option<&[u8]>,
) -> Output {
    invocation(argv, env, cwd, stdin).run_rvisor()
}

/// Differential check: same stdout and exit status natively and under rvisor.
pub fn assert_same(
    argv: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&Path>,
    stdin: Option<&[u8]>,
) -> (Output, Output) {
    invocation(argv, env, cwd, stdin).assert_same()
}

fn invocation(
    argv: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&Path>,
    stdin: Option<&[u8]>,
) -> Invocation {
    let mut inv = Invocation::new(argv);
    for (k, v) in env {
        inv = inv.env(k, v);
    }
    if let Some(cwd) = cwd {
        inv = inv.cwd(cwd);
    }
    if let Some(data) = stdin {
        inv = inv.stdin(data);
    }
    inv
}

fn default_timeout() -> Duration {
    std::env::var("RVISOR_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Shell-style exit status: the exit code, or 128+N for signal N.
pub fn status_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    }
}

/// Spawns `cmd` in a new process group, feeds stdin, collects stdout and
/// stderr, enforces the deadline and checks for leftover group members.
/// `Err` only when the program could not be started.
pub fn execute(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
    what: String,
) -> std::io::Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pgid = child.id() as libc::pid_t;

    if let (Some(mut pipe), Some(data)) = (child.stdin.take(), stdin) {
        let data = data.to_vec();
        // EPIPE is fine: the program need not read all of its input.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let stdout_rx = read_in_background(child.stdout.take().expect("stdout piped"));
    let stderr_rx = read_in_background(child.stderr.take().expect("stderr piped"));

    let deadline = start + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            kill_group(pgid);
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();

    // Members of the group may linger briefly (a gofer shutting down);
    // whatever is still alive after the grace period is left behind.
    let mut leftovers = Vec::new();
    let grace_end = Instant::now() + LEFTOVER_GRACE;
    loop {
        let alive = live_processes(|p| p.pgrp == pgid);
        if alive.is_empty() {
            break;
        }
        if Instant::now() >= grace_end {
            leftovers = alive.iter().map(ProcInfo::to_string).collect();
            kill_group(pgid);
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }

    let mut collect = |rx: mpsc::Receiver<Vec<u8>>, name: &str| match rx.recv_timeout(PIPE_GRACE) {
        Ok(data) => data,
        Err(_) => {
            leftovers.push(format!(
                "{name} still held open by some process {PIPE_GRACE:?} after exit"
            ));
            Vec::new()
        }
    };
    let stdout = collect(stdout_rx, "stdout");
    let stderr = collect(stderr_rx, "stderr");

    Ok(Output {
        what,
        stdout,
        stderr,
        status: status_code(status),
        timed_out,
        leftovers,
        elapsed,
    })
}

fn read_in_background<R: Read + Send + 'static>(mut pipe: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: plain syscall; a stale group id just yields ESRCH.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// A process as seen in /proc/PID/stat.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub cmdline: String,
}

impl std::fmt::Display for ProcInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}) state {} ppid {} pgrp {}: {}",
            self.pid, self.comm, self.state, self.ppid, self.pgrp, self.cmdline
        )
    }
}

/// All processes in /proc (those that vanish while reading are skipped).
pub fn processes() -> Vec<ProcInfo> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_info)
        .collect()
}

fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some(ProcInfo {
        pid,
        comm,
        state,
        ppid,
        pgrp,
        cmdline,
    })
}

/// Processes matching `pred` that are not zombies (or dead).
/// `rvisor [global] --root DIR/state run --bundle BUNDLE ID-PID` with no
/// stdin: (stdout then stderr, exit code; -1 for a signal).
pub fn rvisor_run_bundle(dir: &TempDir, bundle: &Path, id: &str, global: &[&str]) -> (String, i32) {
    let out = Command::new(rvisor_bin())
        .args(global)
        .arg("--root")
        .arg(dir.join("state"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(format!("{id}-{}", std::process::id()))
        .stdin(Stdio::null())
        .output()
        .expect("rvisor run");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code().unwrap_or(-1))
}

/// A command (rvisor, or a launcher that ends by exec'ing it) started with
/// piped stdin and stdout, once it printed the line `ready`: the program
/// in the sandbox is up. Write to `stdin` (or drop it) to let it go on.
pub struct Running {
    pub child: std::process::Child,
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
    /// The lines printed before `ready`.
    pub before: Vec<String>,
}

impl Running {
    /// Starts `argv`; asserts that `ready` is its first line.
    pub fn start(argv: &[String]) -> Running {
        let run = Self::start_until_ready(argv);
        assert!(
            run.before.is_empty(),
            "the sandbox did not start: {argv:?} printed {:?}",
            run.before
        );
        run
    }

    /// Starts `argv` and reads lines up to `ready` (or EOF).
    pub fn start_until_ready(argv: &[String]) -> Running {
        use std::io::BufRead;
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut before = Vec::new();
        loop {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).expect("read");
            if line == "ready\n" {
                break;
            }
            assert!(n > 0, "no ready line from {argv:?}: {before:?}");
            before.push(line);
        }
        Running {
            child,
            stdout,
            before,
        }
    }

    /// Closes stdin (after writing `input`), reads the rest of stdout and
    /// waits: (the rest, exit status).
    pub fn finish(mut self, input: &[u8]) -> (String, ExitStatus) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait");
        (rest, status)
    }
}

pub fn live_processes(pred: impl Fn(&ProcInfo) -> bool) -> Vec<ProcInfo> {
    processes()
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X' && pred(p))
        .collect()
}

/// Makes this test process a child subreaper, so that processes orphaned by
/// an rvisor run (even ones that left its process group) become our children
/// and can be found. Use only in a test binary all of whose tests hold
/// [`Subreaper::lock`], so that orphans can be attributed to one run.
pub struct Subreaper;

static SUBREAPER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Subreaper {
    /// Serializes the caller against other subreaper users in this process
    /// and enables PR_SET_CHILD_SUBREAPER.
    pub fn lock() -> std::sync::MutexGuard<'static, ()> {
        let guard = SUBREAPER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
        assert_eq!(
            rc,
            0,
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
        guard
    }

    /// Waits up to `grace` for orphans adopted by this process to exit,
    /// reaping zombies; returns (and kills) those still alive then.
    pub fn orphans(grace: Duration) -> Vec<String> {
        let me = std::process::id() as i32;
        let end = Instant::now() + grace;
        loop {
            let mut alive = Vec::new();
            for p in processes().into_iter().filter(|p| p.ppid == me) {
                if p.state == 'Z' || p.state == 'X' {
                    // SAFETY: reaps this one pid. Every test of a binary that
                    // uses the subreaper holds the lock, and `execute` has
                    // reaped its own child before returning, so any zombie
                    // child of ours here is an orphan, not a pending Child.
                    unsafe {
                        libc::waitpid(p.pid, std::ptr::null_mut(), libc::WNOHANG);
                    }
                } else {
                    alive.push(p);
                }
            }
            if alive.is_empty() {
                return Vec::new();
            }
            if Instant::now() >= end {
                for p in &alive {
                    // SAFETY: kills and reaps a process that is our child.
                    unsafe {
                        libc::kill(p.pid, libc::SIGKILL);
                        libc::waitpid(p.pid, std::ptr::null_mut(), 0);
                    }
                }
                return alive.iter().map(ProcInfo::to_string).collect();
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Path of the `rvisor` binary under test: `$RVISOR_BIN`, else
/// `<target>/release/rvisor`, else `<target>/debug/rvisor`, where `<target>`
/// is `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn rvisor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RVISOR_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "RVISOR_BIN={} does not exist; build it with `cargo build --release -p rvisor`",
            p.display()
        );
        return p;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let candidates = [target.join("release/rvisor"), target.join("debug/rvisor")];
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "rvisor binary not found (looked at {} and {}); build it with \
         `cargo build --release -p rvisor` (scripts/test.sh does) or set RVISOR_BIN",
        candidates[0].display(),
        candidates[1].display()
    );
}

/// The workspace root (parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Panics with a message naming the Debian package if `path` is missing.
pub fn require_file(path: &str, debian_package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package `{debian_package}` \
         (apt-get install -y {debian_package}; scripts/install.sh does)"
    );
}

/// Finds `program` on the host PATH (or the default PATH), panicking with a
/// message naming the Debian package if it is absent.
pub fn require_program(program: &str, debian_package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: BTreeSet<&str> = path.split(':').chain(DEFAULT_PATH.split(':')).collect();
    for d in dirs {
        let p = Path::new(d).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{program}` is not installed: install the Debian package `{debian_package}` \
         (apt-get install -y {debian_package}; scripts/install.sh does)"
    );
}

/// A directory under /tmp (visible inside the sandbox, whose root is the
/// host's `/`), removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = PathBuf::from(format!(
            "/tmp/rvisor-tests-{}-{n}-{tag}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `data` to `name` with permission bits `mode`.
    pub fn write_file(&self, name: &str, data: &[u8], mode: u32) -> PathBuf {
        let p = self.join(name);
        fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Compiles a C source with `gcc -O2 -static` into `dir/name`; panics naming
/// `build-essential` if gcc is missing, with gcc's output if it fails.
pub fn compile_static_c(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let gcc = require_program("gcc", "build-essential");
    let src = dir.write_file(&format!("{name}.c"), source.as_bytes(), 0o644);
    let exe = dir.join(name);
    let out = Command::new(gcc)
        .args(["-O2", "-static", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("run gcc");
    assert!(
        out.status.success(),
        "gcc -static failed (static glibc comes with `libc6-dev` from build-essential):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Deterministic pseudo-random bytes (xorshift64*), the same on every run.
pub fn deterministic_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The host's hostname (uts nodename).
pub fn host_hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+%@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The gofer processes (cmdline `rvisor-gofer ...`) whose parent is `parent`.
pub fn gofers_of(parent: i32) -> Vec<ProcInfo> {
    live_processes(|p| p.ppid == parent && p.cmdline.starts_with("rvisor-gofer "))
}

/// The gofer's default id map (`--gofer-idmap nobody`) where its served
/// roots can be idmapped: its ids from 0 are host ids from 65534.
pub const GOFER_NOBODY_MAP: &str = "0 65534 4294901761";

/// The id map it falls back to when a root cannot be idmapped (overlayfs):
/// every host id mapped to itself.
pub const GOFER_IDENTITY_MAP: &str = "0 0 4294967295";

/// The capability mask the gofer keeps (`gofer::filter::KEPT`): CAP_CHOWN,
/// CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID.
pub const GOFER_CAPS: u64 = 0x1f;

fn ns_inode(path: &str) -> Result<u64, String> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("stat {path}: {e}"))
}

/// Inode of the user namespace that owns the namespace file `path`
/// (ioctl NS_GET_USERNS).
fn ns_owner(path: &str) -> Result<u64, String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    const NS_GET_USERNS: libc::c_ulong = 0xb701;
    let f = fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    // SAFETY: the ioctl takes no argument and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_USERNS) };
    if fd < 0 {
        return Err(format!(
            "NS_GET_USERNS {path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a fresh fd the kernel just gave us.
    let owner = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    owner
        .metadata()
        .map(|m| m.ino())
        .map_err(|e| format!("fstat owner of {path}: {e}"))
}

fn status_field(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Checks, from the host, how a running gofer is confined (docs/SECURITY.md):
/// its own pid, mount, net, IPC and UTS namespaces, those owned by the host's
/// user namespace; with `uid_map` = `Some("0 H N")` a user namespace of its
/// own with that uid and gid map, uid/gid 0 in it (host `H`), no groups;
/// with `None` the host's user namespace. Either way CapEff/CapPrm/CapBnd
/// are exactly [`GOFER_CAPS`], no_new_privs and a seccomp filter are on.
pub fn check_gofer_confinement(pid: i32, uid_map: Option<&str>) -> Result<(), String> {
    let mut errs = Vec::new();
    let host_user = ns_inode("/proc/self/ns/user")?;
    let user = ns_inode(&format!("/proc/{pid}/ns/user"))?;
    match uid_map {
        Some(want) => {
            if user == host_user {
                errs.push("the gofer is in the host's user namespace".to_owned());
            }
            for file in ["uid_map", "gid_map"] {
                let got = fs::read_to_string(format!("/proc/{pid}/{file}"))
                    .map_err(|e| format!("read {file}: {e}"))?;
                let got = got.split_whitespace().collect::<Vec<_>>().join(" ");
                if got != want {
                    errs.push(format!("{file} is {got:?}, expected {want:?}"));
                }
            }
        }
        None if user != host_user => errs.push("the gofer has a user namespace".to_owned()),
        None => {}
    }
    for ns in ["pid", "mnt", "net", "ipc", "uts"] {
        let path = format!("/proc/{pid}/ns/{ns}");
        if ns_inode(&path)? == ns_inode(&format!("/proc/self/ns/{ns}"))? {
            errs.push(format!("the gofer shares the host's {ns} namespace"));
        }
        // Created before its user namespace: the gofer's capabilities do
        // not reach them (it cannot mount or configure its network).
        if ns_owner(&path)? != host_user {
            errs.push(format!(
                "the gofer's {ns} namespace is not owned by the host's user namespace"
            ));
        }
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    let want_id = uid_map
        .and_then(|m| m.split_whitespace().nth(1))
        .unwrap_or("0");
    let ids = [want_id; 4].join(" ");
    for key in ["Uid", "Gid"] {
        let got = status_field(&status, key).unwrap_or_default();
        if got != ids {
            errs.push(format!("{key}: {got:?}, expected {ids:?}"));
        }
    }
    if uid_map.is_some() && status_field(&status, "Groups").as_deref() != Some("") {
        errs.push(format!("Groups: {:?}", status_field(&status, "Groups")));
    }
    for key in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
        let want = if matches!(key, "CapInh" | "CapAmb") {
            0
        } else {
            GOFER_CAPS
        };
        let got = status_field(&status, key)
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
            .ok_or_else(|| format!("no {key} in status"))?;
        if got != want {
            errs.push(format!("{key}: {got:#x}, expected {want:#x}"));
        }
    }
    // Pid 1 of a pid namespace of its own, below the host's.
    let nspid = status_field(&status, "NSpid").unwrap_or_default();
    let levels: Vec<&str> = nspid.split(' ').collect();
    if levels.len() < 2 || levels.last() != Some(&"1") || levels[0] != pid.to_string() {
        errs.push(format!("NSpid: {nspid:?}, expected \"{pid} 1\""));
    }
    for (key, want) in [("NoNewPrivs", "1"), ("Seccomp", "2")] {
        let got = status_field(&status, key).unwrap_or_default();
        if got != want {
            errs.push(format!("{key}: {got:?}, expected {want}"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("gofer pid {pid}:\n{}\n{status}", errs.join("\n")))
    }
}
