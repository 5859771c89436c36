//! rvisor: a gVisor-style sandbox runtime. One binary: the CLI (`do`, and
//! the OCI commands), the sentry (`boot`) and the gofer (`gofer`).

mod sandbox;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rvisor",
    version,
    about = "A user-space kernel sandbox runtime"
)]
struct Cli {
    /// Print debug logs to stderr.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command in a fresh sandbox and exit with its status.
    Do(DoArgs),
    /// (internal) The sentry: run a sandbox's kernel.
    #[command(hide = true)]
    Boot(BootArgs),
    /// (internal) The gofer: serve a sandbox's files.
    #[command(hide = true)]
    Gofer(GoferArgs),
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
    #[arg(long)]
    report_fd: Option<i32>,
    #[arg(long)]
    log_fd: Option<i32>,
    #[arg(long, default_value = "/")]
    cwd: String,
    #[arg(long, default_value = "rvisor")]
    hostname: String,
    #[arg(long, default_value_t = 0)]
    uid: u32,
    #[arg(long, default_value_t = 0)]
    gid: u32,
    #[arg(long, default_value_t = 4096)]
    pids_limit: usize,
    #[arg(long = "env")]
    env: Vec<OsString>,
    #[arg(last = true, required = true, num_args = 1..)]
    argv: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct GoferArgs {
    #[arg(long)]
    sock_fd: i32,
    /// HOSTPATH[:ro|:rw] (repeatable; the first is the root).
    #[arg(long = "mount")]
    mounts: Vec<String>,
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

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rvisor: {e:#}");
            125
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Do(args) => {
            init_logging(cli.debug, None);
            sandbox::run_do(args, cli.debug)
        }
        Cmd::Boot(args) => {
            init_logging(cli.debug, args.log_fd);
            boot(args, cli.debug)
        }
        Cmd::Gofer(args) => {
            init_logging(cli.debug, None);
            gofer_main(args)
        }
    }
}

fn bytes(s: &OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

fn boot(args: BootArgs, debug: bool) -> Result<i32> {
    sandbox::harden_sentry()?;
    let cfg = sentry::BootConfig {
        gofer_fd: args.gofer_fd,
        argv: args.argv.iter().map(bytes).collect(),
        env: args.env.iter().map(bytes).collect(),
        cwd: args.cwd.into_bytes(),
        hostname: args.hostname,
        uid: args.uid,
        gid: args.gid,
        debug: debug || args.log_fd.is_some(),
        report_fd: args.report_fd,
        pids_limit: args.pids_limit,
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
    gofer::run(sock, mounts).context("gofer failed")?;
    Ok(0)
}
