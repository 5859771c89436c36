//! OCI hooks: host programs run with the container's state JSON on stdin.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(serde::Deserialize, serde::Serialize, Clone, Debug)]
pub struct Hook {
    pub path: String,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// The hooks of one kind (`prestart`, `createRuntime`, ...) from the hooks
/// object of config.json.
pub fn of_kind(hooks: &Option<serde_json::Value>, kind: &str) -> Vec<Hook> {
    hooks
        .as_ref()
        .and_then(|h| h.get(kind))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Run hooks in order; the first failure stops the rest.
pub fn run(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json).with_context(|| format!("error running {kind} hook #{i}"))?;
    }
    Ok(())
}

/// Run every hook of a kind whose failures are only warnings (poststart,
/// poststop): a failing one does not stop the rest.
pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state_json) {
            eprintln!("rvisor: warning: error running {kind} hook #{i}: {e:#}");
        }
    }
}

fn run_one(h: &Hook, state_json: &[u8]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(&h.path);
    if let Some(args) = &h.args {
        if let Some(a0) = args.first() {
            c.arg0(a0);
        }
        c.args(args.iter().skip(1));
    }
    c.env_clear();
    for e in h.env.iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            c.env(k, v);
        }
    }
    c.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().with_context(|| h.path.clone())?;
    if let Some(mut i) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = i.write_all(state_json);
    }
    let deadline = h
        .timeout
        .filter(|&t| t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(st) = child.try_wait().context("waiting for the hook")? {
            if st.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            bail!(
                "{}: {st}{}",
                h.path,
                if err.is_empty() {
                    String::new()
                } else {
                    format!(": {}", err.trim())
                }
            );
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{}: timeout after {} seconds",
                h.path,
                h.timeout.unwrap_or(0)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
