//! rvisor: a gVisor-style sandbox runtime. One binary: the CLI (`do`, and
//! the OCI commands), the sentry (`boot`) and the gofer (`gofer`).

mod cgroups;
mod console;
mod container;
mod hooks;
mod sandbox;
mod translate;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rvisor",
    version,
    about = "A user-space kernel sandbox runtime (runc-compatible OCI runtime)"
)]
struct Cli {
    /// Print debug logs (to --log when given, else stderr).
    #[arg(long, global = true)]
    debug: bool,
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/rvisor")]
    root: PathBuf,
    /// Log file (errors are also written here).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, default_value = "text")]
    log_format: String,
    /// Accepted for runc compatibility (rvisor uses cgroupfs paths).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Interception platform (only ptrace is built).
    #[arg(long, global = true, default_value = "ptrace")]
    platform: String,
    /// Where the root filesystem's writes go: memory (an in-sandbox layer,
    /// discarded at exit) or none (written through to the host rootfs).
    #[arg(long, global = true, default_value = "memory")]
    overlay: String,
    /// The gofer's user namespace: nobody (the default: the gofer is host
    /// uid/gid 65534 and sees the served files through idmapped mounts;
    /// where a file system cannot be idmapped, identity instead),
    /// HOSTID:COUNT (likewise host ids HOSTID..HOSTID+COUNT for file owners
    /// 0..COUNT), identity (every host id mapped to itself) or host (no
    /// user namespace: host root).
    #[arg(long, global = true, default_value = "nobody")]
    gofer_idmap: String,
    /// Host unix sockets in bind mounts: none (connect(2) to one is
    /// refused, the default) or open (the gofer connects the sandbox's
    /// socket to it).
    #[arg(long, global = true, default_value = "none")]
    host_uds: String,
    /// Network: none (the sandbox has no network stack yet).
    #[arg(long, global = true, default_value = "none")]
    network: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command in a fresh sandbox and exit with its status.
    Do(DoArgs),
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start(IdArg),
    /// Create and start a container, wait for it, and delete it.
    Run(RunArgs),
    /// Print a container's state as JSON.
    State(IdArg),
    /// Send a signal to a container's init (or all its processes).
    Kill(KillArgs),
    /// Delete a container's state (and kill it with --force).
    Delete(DeleteArgs),
    /// List containers.
    List(ListArgs),
    /// List the processes of a container.
    Ps(PsArgs),
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// Suspend every process of a container.
    Pause(IdArg),
    /// Resume a paused container.
    Resume(IdArg),
    /// Print container statistics.
    Events(EventsArgs),
    /// Print what this runtime supports, as JSON.
    Features,
    /// Write a default config.json.
    Spec(SpecArgs),
    /// Change a container's resource limits.
    Update(UpdateArgs),
    /// (internal) The sentry: run a sandbox's kernel.
    #[command(hide = true)]
    Boot(BootArgs),
    /// (internal) The gofer: serve a sandbox's files.
    #[command(hide = true)]
    Gofer(GoferArgs),
    /// (internal) A container's host process.
    #[command(hide = true)]
    Supervise(SuperviseArgs),
    /// (internal) Wait for an exec'd process and exit like it.
    #[command(hide = true)]
    ExecWait(ExecWaitArgs),
}

#[derive(Args, Debug)]
struct IdArg {
    id: String,
}

#[derive(Args, Debug)]
struct CreateArgs {
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    no_pivot: bool,
    #[arg(long)]
    no_new_keyring: bool,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    #[arg(long, short = 'd')]
    detach: bool,
}

#[derive(Args, Debug)]
struct KillArgs {
    #[arg(long, short = 'a')]
    all: bool,
    id: String,
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

#[derive(Args, Debug)]
struct DeleteArgs {
    #[arg(long, short = 'f')]
    force: bool,
    id: String,
}

#[derive(Args, Debug)]
struct ListArgs {
    #[arg(long, short = 'f', default_value = "table")]
    format: String,
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args, Debug)]
struct PsArgs {
    #[arg(long, short = 'f', default_value = "table")]
    format: String,
    id: String,
    /// ps options (ignored).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// An OCI process object (JSON file, `-` for stdin).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    #[arg(long, short = 't')]
    tty: bool,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long, short = 'd')]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    cwd: Option<String>,
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// UID[:GID]
    #[arg(long, short = 'u')]
    user: Option<String>,
    #[arg(long, short = 'c')]
    cap: Vec<String>,
    #[arg(long)]
    no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct EventsArgs {
    #[arg(long)]
    stats: bool,
    /// Seconds between stats (e.g. 5s or 5).
    #[arg(long, default_value = "5s")]
    interval: String,
    id: String,
}

#[derive(Args, Debug)]
struct SpecArgs {
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
}

#[derive(Args, Debug)]
struct UpdateArgs {
    /// LinuxResources JSON (`-` for stdin).
    #[arg(long, short = 'r')]
    resources: Option<PathBuf>,
    #[arg(long, short = 'm')]
    memory: Option<String>,
    #[arg(long)]
    pids_limit: Option<i64>,
    id: String,
}

#[derive(Args, Debug)]
struct SuperviseArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    ready_fd: i32,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
}

#[derive(Args, Debug)]
struct ExecWaitArgs {
    #[arg(long)]
    status_fd: i32,
}

#[derive(Args, Debug)]
pub struct DoArgs {
    /// Root filesystem served read-only (writes go to an in-memory layer).
    #[arg(long, default_value = "/")]
    rootfs: PathBuf,
    /// Environment variable for the command (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Working directory inside the sandbox.
    #[arg(long, default_value = "/")]
    cwd: String,
    /// Write debug logs and the unimplemented-syscall report to FILE.
    #[arg(long, value_name = "FILE")]
    debug_log: Option<PathBuf>,
    /// Hostname inside the sandbox.
    #[arg(long, default_value = "rvisor")]
    hostname: String,
    /// Most tasks (processes and threads) the sandbox may run at once.
    #[arg(long, default_value_t = 4096)]
    pids_limit: usize,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct BootArgs {
    #[arg(long)]
    gofer_fd: i32,
    /// A readable fd holding the sandbox spec (JSON).
    #[arg(long)]
    spec_fd: i32,
    #[arg(long)]
    control_fd: Option<i32>,
    #[arg(long)]
    report_fd: Option<i32>,
    #[arg(long)]
    log_fd: Option<i32>,
    /// `--overlay self`: the host file to keep the upper layer's data in.
    #[arg(long)]
    filestore_fd: Option<i32>,
}

#[derive(Args, Debug)]
pub struct GoferArgs {
    #[arg(long)]
    sock_fd: i32,
    /// HOSTPATH[:ro|:rw] (repeatable; the first is the root).
    #[arg(long = "mount")]
    mounts: Vec<String>,
    /// Enter a user namespace once confined; the runtime writes its id
    /// maps when asked on this socket.
    #[arg(long)]
    userns_fd: Option<i32>,
    /// A user namespace to idmap the served roots with and to enter
    /// (instead of asking for maps on --userns-fd) when all could be.
    #[arg(long)]
    idmap_userns_fd: Option<i32>,
    /// Allow connecting to host sockets in bind mounts.
    #[arg(long)]
    connect_host_uds: bool,
}

fn init_logging(debug: bool, log_fd: Option<i32>) {
    if !debug && log_fd.is_none() {
        return;
    }
    let level = std::env::var("RVISOR_LOG").unwrap_or_else(|_| {
        if debug {
            "debug".into()
        } else {
            "info".into()
        }
    });
    let filter = tracing_subscriber::EnvFilter::new(level);
    match log_fd {
        Some(fd) => {
            use std::os::fd::FromRawFd;
            // SAFETY: the runtime passed this fd for our log.
            let file = unsafe { std::fs::File::from_raw_fd(fd) };
            let file = std::sync::Mutex::new(file);
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(file)
                .with_ansi(false)
                .init();
        }
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
}

/// Long flags runc's Go parser also accepts with one dash (`-root`).
const LONG_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "debug",
    "systemd-cgroup",
    "rootless",
    "bundle",
    "pid-file",
    "console-socket",
    "no-pivot",
    "no-new-keyring",
    "preserve-fds",
    "detach",
    "force",
    "all",
    "format",
    "process",
    "tty",
    "cwd",
    "env",
    "user",
    "cap",
    "stats",
    "interval",
    "resources",
    "no-subreaper",
    "platform",
    "overlay",
    "gofer-idmap",
    "network",
    "memory",
    "pids-limit",
    "no-new-privs",
    "image-path",
    "work-path",
];

/// Normalize Go-style flags before clap sees them: `-flag` → `--flag`,
/// stopping at `--` and at the first argument after a container command's
/// positional id would be ambiguous, so only known flag names are touched.
fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut done = false;
    for a in args {
        if !done {
            if a == "--" {
                done = true;
            } else if let Some(s) = a.to_str() {
                if let Some(rest) = s.strip_prefix('-').filter(|r| !r.starts_with('-')) {
                    let name = rest.split('=').next().unwrap_or("");
                    if name.len() > 1 && LONG_FLAGS.contains(&name) {
                        out.push(OsString::from(format!("-{s}")));
                        continue;
                    }
                }
            }
        }
        out.push(a);
    }
    out
}

/// Where errors go: stderr, and the --log file (JSON lines with
/// --log-format json, which is what shims read back).
struct ErrorSink {
    log: Option<PathBuf>,
    json: bool,
}

impl ErrorSink {
    fn error(&self, msg: &str) {
        eprintln!("rvisor: {msg}");
        if let Some(p) = &self.log {
            let line = if self.json {
                serde_json::json!({
                    "level": "error",
                    "msg": msg,
                    "time": oci::state::rfc3339_now(),
                })
                .to_string()
            } else {
                format!(
                    "time=\"{}\" level=error msg={:?}",
                    oci::state::rfc3339_now(),
                    msg
                )
            };
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                use std::io::Write;
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

fn main() {
    let cli = Cli::parse_from(normalize_args(std::env::args_os().collect()));
    let sink = ErrorSink {
        log: cli.log.clone(),
        json: cli.log_format == "json",
    };
    let is_do = matches!(cli.cmd, Cmd::Do(_));
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            sink.error(&format!("{e:#}"));
            if is_do {
                125
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn exec_process(ctx: &container::Ctx, a: &ExecArgs) -> Result<sentry::spec::ProcessSpec> {
    let mut p = if let Some(f) = &a.process {
        let text = if f.as_os_str() == "-" {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)?;
            s
        } else {
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
        };
        let proc_: oci_spec::runtime::Process =
            serde_json::from_slice(&text).context("parsing the process JSON")?;
        if !proc_.cwd().is_absolute() {
            bail!("process cwd {:?} is not an absolute path", proc_.cwd());
        }
        translate::process_spec(&proc_)?
    } else {
        if a.command.is_empty() {
            bail!("exec: no command given");
        }
        // Defaults from the container's own process, as runc does.
        let rec = ctx.store.load(&a.id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let base = oci::bundle::load(&rec.bundle)
            .ok()
            .and_then(|b| b.spec.process().clone())
            .map(|p| translate::process_spec(&p))
            .transpose()?
            .unwrap_or_default();
        sentry::spec::ProcessSpec {
            argv: a.command.iter().map(|s| s.as_bytes().to_vec()).collect(),
            terminal: false,
            ..base
        }
    };
    if a.tty {
        p.terminal = true;
    }
    if let Some(c) = &a.cwd {
        if !c.starts_with('/') {
            bail!("--cwd must be an absolute path");
        }
        p.cwd = c.as_bytes().to_vec();
    }
    for e in &a.env {
        if !e.contains('=') {
            bail!("--env {e}: expected K=V");
        }
        p.env.push(e.as_bytes().to_vec());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        p.uid = uid.parse().with_context(|| format!("bad --user {u}"))?;
        p.gid = gid.parse().with_context(|| format!("bad --user {u}"))?;
    }
    if !a.cap.is_empty() {
        let m = oci::caps::mask(a.cap.iter().map(String::as_str)).map_err(anyhow::Error::msg)?;
        let mut c = p.caps.unwrap_or_default();
        c.bounding |= m;
        c.effective |= m;
        c.permitted |= m;
        p.caps = Some(c);
    }
    if a.no_new_privs {
        p.no_new_privs = true;
    }
    if p.cwd.is_empty() {
        p.cwd = b"/".to_vec();
    }
    Ok(p)
}

fn parse_interval(s: &str) -> Result<std::time::Duration> {
    let t = s.trim_end_matches('s');
    let secs: f64 = t.parse().with_context(|| format!("bad interval {s}"))?;
    if !(secs > 0.0 && secs < 1e6) {
        bail!("bad interval {s}");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn parse_bytes(s: &str) -> Result<i64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let m = match s[i..].to_ascii_lowercase().trim_end_matches('b') {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                other => bail!("bad size unit {other:?}"),
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    let n: i64 = num.parse().with_context(|| format!("bad size {s}"))?;
    Ok(n * mult)
}

fn run(cli: Cli) -> Result<i32> {
    if cli.platform != "ptrace" {
        bail!("platform {:?} is not available (only ptrace)", cli.platform);
    }
    if cli.network != "none" {
        bail!(
            "--network {:?}: the sandbox has no network stack yet (only none)",
            cli.network
        );
    }
    if !["memory", "self", "none"].contains(&cli.overlay.as_str()) {
        bail!("--overlay {:?}: expected memory, self or none", cli.overlay);
    }
    if cli.host_uds != "none" && cli.host_uds != "open" {
        bail!("--host-uds {:?}: expected none or open", cli.host_uds);
    }
    let ctx = container::Ctx {
        store: oci::state::Store::new(&cli.root),
        debug: cli.debug,
        overlay: cli.overlay.clone(),
        gofer_ids: sandbox::GoferIds::parse(&cli.gofer_idmap)?,
        host_uds: cli.host_uds == "open",
    };
    match cli.cmd {
        Cmd::Do(args) => {
            init_logging(cli.debug, None);
            sandbox::run_do(args, cli.debug, ctx.gofer_ids, &ctx.overlay)
        }
        Cmd::Boot(args) => {
            init_logging(cli.debug, args.log_fd);
            boot(args, cli.debug)
        }
        Cmd::Gofer(args) => {
            init_logging(cli.debug, None);
            gofer_main(args)
        }
        Cmd::Create(a) => {
            init_logging(cli.debug, None);
            // runc's prefix for create errors (clients show it verbatim).
            container::create(
                &ctx,
                &container::CreateOpts {
                    id: a.id,
                    bundle: a.bundle,
                    pid_file: a.pid_file,
                    console_socket: a.console_socket,
                    preserve_fds: a.preserve_fds,
                },
            )
            .context("rvisor create failed")?;
            Ok(0)
        }
        Cmd::Run(a) => {
            init_logging(cli.debug, None);
            let id = a.create.id.clone();
            let pid = container::create(
                &ctx,
                &container::CreateOpts {
                    id: a.create.id,
                    bundle: a.create.bundle,
                    pid_file: a.create.pid_file,
                    console_socket: a.create.console_socket,
                    preserve_fds: a.create.preserve_fds,
                },
            )?;
            if let Err(e) = container::start(&ctx, &id) {
                let _ = container::delete(&ctx, &id, true);
                return Err(e);
            }
            if a.detach {
                return Ok(0);
            }
            let status = loop {
                match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => break c,
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
                    Ok(_) | Err(nix::Error::EINTR) => continue,
                    Err(e) => bail!("waiting for the container: {e}"),
                }
            };
            container::delete(&ctx, &id, true)?;
            Ok(status)
        }
        Cmd::Start(a) => container::start(&ctx, &a.id).map(|_| 0),
        Cmd::State(a) => container::state(&ctx, &a.id).map(|_| 0),
        Cmd::Kill(a) => {
            let sig = container::parse_signal(&a.signal)?;
            container::kill(&ctx, &a.id, sig, a.all).map(|_| 0)
        }
        Cmd::Delete(a) => container::delete(&ctx, &a.id, a.force).map(|_| 0),
        Cmd::List(a) => container::list(&ctx, a.format == "json", a.quiet).map(|_| 0),
        Cmd::Ps(a) => container::ps(&ctx, &a.id, a.format == "json").map(|_| 0),
        Cmd::Exec(a) => {
            init_logging(cli.debug, None);
            let process = exec_process(&ctx, &a)?;
            container::exec(
                &ctx,
                container::ExecOpts {
                    id: a.id,
                    process,
                    console_socket: a.console_socket,
                    detach: a.detach,
                    pid_file: a.pid_file,
                },
            )
        }
        Cmd::Pause(a) => container::pause(&ctx, &a.id, false).map(|_| 0),
        Cmd::Resume(a) => container::pause(&ctx, &a.id, true).map(|_| 0),
        Cmd::Events(a) => {
            container::events(&ctx, &a.id, a.stats, parse_interval(&a.interval)?).map(|_| 0)
        }
        Cmd::Features => container::features().map(|_| 0),
        Cmd::Spec(a) => container::write_spec(&a.bundle).map(|_| 0),
        Cmd::Update(a) => {
            let mut v = match &a.resources {
                Some(f) => {
                    let text = if f.as_os_str() == "-" {
                        let mut s = Vec::new();
                        std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)?;
                        s
                    } else {
                        std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
                    };
                    serde_json::from_slice(&text).context("parsing the resources JSON")?
                }
                None => serde_json::json!({}),
            };
            if let Some(m) = &a.memory {
                v["memory"] = serde_json::json!({"limit": parse_bytes(m)?});
            }
            if let Some(p) = a.pids_limit {
                v["pids"] = serde_json::json!({"limit": p});
            }
            container::update(&ctx, &a.id, v).map(|_| 0)
        }
        Cmd::Supervise(a) => {
            init_logging(cli.debug, None);
            container::supervise(&ctx, &a.id, a.ready_fd, a.console_socket, a.preserve_fds)
        }
        Cmd::ExecWait(a) => Ok(container::exec_wait(a.status_fd)),
    }
}

fn boot(args: BootArgs, debug: bool) -> Result<i32> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    sandbox::harden_sentry()?;
    // SAFETY: the runtime passed this fd for us to read the spec from.
    let mut f = unsafe { std::fs::File::from_raw_fd(args.spec_fd) };
    let mut text = Vec::new();
    f.read_to_end(&mut text)
        .context("reading the sandbox spec")?;
    drop(f);
    let spec: sentry::spec::SandboxSpec =
        serde_json::from_slice(&text).context("decoding the sandbox spec")?;
    let cfg = sentry::BootConfig {
        gofer_fd: args.gofer_fd,
        control_fd: args.control_fd,
        spec,
        debug: debug || args.log_fd.is_some(),
        report_fd: args.report_fd,
        filestore_fd: args.filestore_fd,
    };
    sentry::boot(cfg).context("sentry boot failed")
}

fn gofer_main(args: GoferArgs) -> Result<i32> {
    use std::os::fd::FromRawFd;
    let mut mounts = Vec::new();
    for m in &args.mounts {
        let (path, ro) = match m.rsplit_once(':') {
            Some((p, "ro")) => (p, true),
            Some((p, "rw")) => (p, false),
            _ => (m.as_str(), true),
        };
        mounts.push(gofer::confine::MountSpec {
            host_path: PathBuf::from(path),
            readonly: ro,
        });
    }
    if mounts.is_empty() {
        bail!("gofer: no mounts to serve");
    }
    // SAFETY: the runtime passed us this socket to own.
    let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(args.sock_fd) };
    // SAFETY: likewise the id-map socket, when given.
    let userns = args
        .userns_fd
        .map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    // SAFETY: likewise the idmap namespace, when given.
    let idmap = args
        .idmap_userns_fd
        .map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    gofer::run(sock, mounts, userns, idmap, args.connect_host_uds).context("gofer failed")?;
    Ok(0)
}
