//! The runtimes under comparison and how each one runs a command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};
use serde::Serialize;

/// A way of running a program: natively or inside a sandbox.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Runtime {
    /// The program run directly on the host.
    Native,
    /// `rvisor do -- CMD`.
    Rvisor { bin: PathBuf },
    /// `runsc --platform=P --network=none do CMD` (gVisor; needs root).
    Runsc { bin: PathBuf, platform: String },
}

impl Runtime {
    /// Parses a name given on the command line (`native`, `rvisor`, `runsc`).
    pub fn from_name(name: &str, rvisor_bin: &Path, runsc_platform: &str) -> Result<Runtime> {
        Ok(match name {
            "native" => Runtime::Native,
            "rvisor" => Runtime::Rvisor {
                bin: rvisor_bin.to_path_buf(),
            },
            "runsc" => Runtime::Runsc {
                bin: find_on_path("runsc").unwrap_or_else(|| PathBuf::from("runsc")),
                platform: runsc_platform.to_owned(),
            },
            other => bail!("unknown runtime {other:?} (known: rvisor, runsc, native)"),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Native => "native",
            Runtime::Rvisor { .. } => "rvisor",
            Runtime::Runsc { .. } => "runsc",
        }
    }

    /// A label with the settings that matter for reading the numbers.
    pub fn label(&self) -> String {
        match self {
            Runtime::Native => "native".to_owned(),
            Runtime::Rvisor { .. } => "rvisor (ptrace)".to_owned(),
            Runtime::Runsc { platform, .. } => format!("runsc ({platform})"),
        }
    }

    /// Checks that the runtime can be used at all; the error becomes the
    /// "failed: ..." text of every cell of this runtime.
    pub fn check(&self) -> Result<()> {
        match self {
            Runtime::Native => Ok(()),
            Runtime::Rvisor { bin } => {
                if !bin.is_file() {
                    bail!(
                        "{} not found (cargo build --release -p rvisor, or --rvisor-bin)",
                        bin.display()
                    );
                }
                Ok(())
            }
            Runtime::Runsc { bin, .. } => {
                if !bin.is_file() {
                    bail!("runsc not installed (apt-get install runsc)");
                }
                // SAFETY: geteuid has no preconditions.
                if unsafe { libc::geteuid() } != 0 {
                    bail!("runsc do needs root");
                }
                Ok(())
            }
        }
    }

    /// The command that runs `argv` under this runtime.
    pub fn command(&self, argv: &[String]) -> Command {
        match self {
            Runtime::Native => {
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                cmd
            }
            Runtime::Rvisor { bin } => {
                let mut cmd = Command::new(bin);
                cmd.arg("do").arg("--").args(argv);
                cmd
            }
            Runtime::Runsc { bin, platform } => {
                let mut cmd = Command::new(bin);
                cmd.arg(format!("--platform={platform}"))
                    .arg("--network=none")
                    .arg("do")
                    .args(argv);
                cmd
            }
        }
    }

    /// The command line as text, for the report.
    pub fn command_line(&self, argv: &[String]) -> String {
        let cmd = self.command(argv);
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Version string of the runtime, if it has one.
    pub fn version(&self) -> Option<String> {
        let bin = match self {
            Runtime::Native => return None,
            Runtime::Rvisor { bin } | Runtime::Runsc { bin, .. } => bin,
        };
        let out = Command::new(bin).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().next().map(str::to_owned)
    }
}

pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin", "/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}
