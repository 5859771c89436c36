//! Host processes the runtimes leave behind: bench is their subreaper, so a
//! sandbox's processes (runsc's sandbox and gofer, rvisor's supervisor,
//! runc's container init) become bench's descendants once the runtime's
//! command exits. Their memory is summed from `smaps_rollup`, and leftovers
//! are killed and reaped between measurements.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Makes bench the reaper of every orphan its runtimes leave.
pub fn become_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")
}

/// Every live descendant of bench (zombies excluded), by pid.
pub fn descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((ppid, state)) = stat_of(pid) {
            if state != 'Z' && state != 'X' {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![me];
    while let Some(p) = todo.pop() {
        if let Some(kids) = children.get(&p) {
            for &k in kids {
                out.push(k);
                todo.push(k);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Parent pid and state letter from /proc/PID/stat.
fn stat_of(pid: i32) -> Option<(i32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// PSS of one process in KiB (0 if it is gone).
pub fn pss_kib(pid: i32) -> u64 {
    let path = format!("/proc/{pid}/smaps_rollup");
    let Ok(text) = std::fs::read_to_string(Path::new(&path)) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Summed PSS (MiB) and count of the given processes.
pub fn pss_mib(pids: &[i32]) -> (f64, usize) {
    let kib: u64 = pids.iter().map(|&p| pss_kib(p)).sum();
    (kib as f64 / 1024.0, pids.len())
}

/// Reaps every exited orphan. Call only when bench has no `Child` of its
/// own still running, or its status could be taken from it.
pub fn reap_orphans() {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => continue,
        }
    }
}

/// Kills (SIGKILL) every process the runtimes left behind and reaps them.
/// Returns how many there were.
pub fn kill_leftovers() -> usize {
    let left = descendants();
    for &pid in &left {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if !left.is_empty() {
        for _ in 0..100 {
            reap_orphans();
            if descendants().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    reap_orphans();
    left.len()
}
