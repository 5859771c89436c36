//! Host processes the runtimes leave behind. While the density group runs,
//! bench is their subreaper, so a sandbox's processes (runsc's sandbox and
//! gofer, rvisor's supervisor, runc's container init) become bench's
//! descendants once the runtime's command exits; their memory is summed
//! from `smaps_rollup`. A reaper thread collects them when they exit (the
//! runtimes' `delete` waits for that), never touching a child bench waits
//! for itself: every command is spawned through [`spawn`], which records it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// Children bench waits for itself (by `Child::wait`).
static DIRECT: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn direct() -> MutexGuard<'static, Option<HashSet<i32>>> {
    DIRECT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Spawns `cmd` and records the child as bench's own (the reaper leaves it
/// alone). Call [`done`] once it has been waited for.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    let mut g = direct();
    let child = cmd.spawn()?;
    g.get_or_insert_with(HashSet::new).insert(child.id() as i32);
    Ok(child)
}

pub fn done(child: &Child) {
    if let Some(set) = direct().as_mut() {
        set.remove(&(child.id() as i32));
    }
}

/// `Command::status` through [`spawn`].
pub fn status(cmd: &mut Command) -> io::Result<ExitStatus> {
    let mut child = spawn(cmd)?;
    let st = child.wait();
    done(&child);
    st
}

/// `Command::output` through [`spawn`].
pub fn output(cmd: &mut Command) -> io::Result<Output> {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = spawn(cmd)?;
    let pid = child.id() as i32;
    let out = child.wait_with_output();
    if let Some(set) = direct().as_mut() {
        set.remove(&pid);
    }
    out
}

/// Bench is the subreaper of the runtimes' orphans while this lives.
pub struct Subreaper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subreaper {
    pub fn start() -> Result<Subreaper> {
        nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                reap_orphans();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Ok(Subreaper {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = nix::sys::prctl::set_child_subreaper(false);
        reap_orphans();
    }
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

/// Reaps every exited child that bench does not wait for itself.
pub fn reap_orphans() {
    let me = std::process::id() as i32;
    let g = direct();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if g.as_ref().is_some_and(|set| set.contains(&pid)) {
            continue;
        }
        if let Some((ppid, 'Z')) = stat_of(pid) {
            if ppid == me {
                let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            }
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
