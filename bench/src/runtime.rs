//! The runtimes under comparison. The three sandboxes are driven through
//! their OCI command line (`RUNTIME --root DIR run --bundle B ID`, or
//! `create`, `start`, `delete`), all with the same bundle; `native` runs the
//! same program directly on the host.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::procs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rvisor,
    Runsc,
    Runc,
    Native,
}

impl Kind {
    pub fn parse(name: &str) -> Result<Kind> {
        Ok(match name {
            "rvisor" => Kind::Rvisor,
            "runsc" => Kind::Runsc,
            "runc" => Kind::Runc,
            "native" => Kind::Native,
            other => bail!("unknown runtime {other:?} (known: rvisor, runsc, runc, native)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Rvisor => "rvisor",
            Kind::Runsc => "runsc",
            Kind::Runc => "runc",
            Kind::Native => "native",
        }
    }
}

/// The global flags runsc gets: its KVM platform hangs and its networking
/// fails on this project's machines, so ptrace and no network.
pub const RUNSC_PLATFORM: &str = "ptrace";

pub struct Runtime {
    pub kind: Kind,
    /// The binary (None for native).
    pub bin: Option<PathBuf>,
    /// `--root` state directory, private to this bench run.
    pub state_root: PathBuf,
    /// Why it cannot be used (not installed, ...): every cell says so.
    pub missing: Option<String>,
    pub version: Option<String>,
}

/// Output files and wall time of one command.
pub struct Outcome {
    pub wall: Duration,
    pub stdout: String,
}

impl Runtime {
    pub fn new(kind: Kind, rvisor_bin: &Path, state_dir: &Path) -> Runtime {
        let bin = match kind {
            Kind::Native => None,
            Kind::Rvisor => Some(rvisor_bin.to_path_buf()),
            Kind::Runsc => find_on_path("runsc"),
            Kind::Runc => find_on_path("runc"),
        };
        let missing = match (kind, &bin) {
            (Kind::Native, _) => None,
            (Kind::Rvisor, Some(b)) if !b.is_file() => Some(format!(
                "{} not found (cargo build --release -p rvisor, or --rvisor-bin)",
                b.display()
            )),
            (_, None) => Some(format!("{} is not installed", kind.name())),
            _ => None,
        };
        let version = match (&bin, &missing) {
            (Some(b), None) => version_of(b),
            _ => None,
        };
        Runtime {
            kind,
            bin,
            state_root: state_dir.join(kind.name()),
            missing,
            version,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The platform a sandbox runs its workload on, for the report.
    pub fn platform(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Rvisor => Some("ptrace"),
            Kind::Runsc => Some(RUNSC_PLATFORM),
            Kind::Runc | Kind::Native => None,
        }
    }

    pub fn is_oci(&self) -> bool {
        self.kind != Kind::Native
    }

    /// `RUNTIME [global flags] ARGS...`.
    pub fn oci(&self, args: &[&str]) -> Command {
        let bin = self.bin.as_deref().unwrap_or(Path::new("/bin/false"));
        let mut cmd = Command::new(bin);
        cmd.arg("--root").arg(&self.state_root);
        if self.kind == Kind::Runsc {
            cmd.arg(format!("--platform={RUNSC_PLATFORM}"))
                .arg("--network=none");
        }
        cmd.args(args);
        cmd
    }

    /// The command line of `oci(args)` as text, for results.json.
    pub fn oci_line(&self, args: &[&str]) -> String {
        command_line(&self.oci(args))
    }

    pub fn json(&self) -> Value {
        json!({
            "name": self.name(),
            "binary": self.bin,
            "version": self.version,
            "platform": self.platform(),
            "global_flags": match self.kind {
                Kind::Runsc => vec![format!("--platform={RUNSC_PLATFORM}"), "--network=none".to_owned()],
                _ => Vec::new(),
            },
            "missing": self.missing,
            "run_command": match self.kind {
                Kind::Native => "PROGRAM (the same program, by its host path; Debian ones under chroot)".to_owned(),
                _ => self.oci_line(&["run", "--bundle", "BUNDLE", "ID"]),
            },
        })
    }

    /// `delete --force ID`, ignoring the outcome (cleanup).
    pub fn force_delete(&self, id: &str) {
        let _ = procs::status(
            self.oci(&["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
    }

    /// The container's status from `state ID` ("created", "running", "stopped").
    pub fn status(&self, id: &str) -> Result<String> {
        let out = procs::output(self.oci(&["state", id]).stdin(Stdio::null())).context("state")?;
        if !out.status.success() {
            bail!(
                "state: {}",
                last_line(&String::from_utf8_lossy(&out.stderr))
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("state: not JSON")?;
        Ok(v["status"].as_str().unwrap_or("").to_owned())
    }

    /// Polls `state` until the container has stopped.
    pub fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.status(id)? == "stopped" {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("container still running after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Runs `cmd` with stdin from /dev/null and stdout, stderr into files in
/// `scratch` (files, not pipes: a sandbox process that outlives the command
/// cannot hold the measurement up). Fails on a timeout or a non-zero
/// status, with the last line of stderr as the reason.
pub fn run_timed(mut cmd: Command, scratch: &Path, timeout: Duration) -> Result<Outcome> {
    let out_path = scratch.join("stdout");
    let err_path = scratch.join("stderr");
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).context("create stdout file")?)
        .stderr(File::create(&err_path).context("create stderr file")?);
    let start = Instant::now();
    let mut child =
        procs::spawn(&mut cmd).with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    // Block in wait (no polling on this 2-core machine); a watchdog thread
    // kills the command if it outlives the timeout.
    let pid = Pid::from_raw(child.id() as i32);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
            let _ = kill(pid, Signal::SIGKILL);
            true
        } else {
            false
        }
    });
    let status = child.wait();
    procs::done(&child);
    let status: ExitStatus = status.context("wait")?;
    let wall = start.elapsed();
    let _ = done_tx.send(());
    if watchdog.join().unwrap_or(false) {
        bail!("timed out after {}s", timeout.as_secs());
    }
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let why = last_line(&stderr);
        let why = if why.is_empty() {
            last_line(&stdout)
        } else {
            why
        };
        bail!("{status}{}{why}", if why.is_empty() { "" } else { ": " });
    }
    Ok(Outcome { wall, stdout })
}

fn version_of(bin: &Path) -> Option<String> {
    let out = procs::output(Command::new(bin).arg("--version")).ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin", "/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

pub fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}
