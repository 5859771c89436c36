//! Host cgroups: the sandbox's host processes (supervisor, gofer, sentry,
//! stubs) go into config.json's cgroupsPath, so a shim's `docker stats`
//! and OOM accounting see them. Limits on guest tasks and guest memory are
//! enforced by the sentry itself; the host memory limit set here is only a
//! backstop (guest limit plus the sentry's own overhead).

use anyhow::{Context, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// Room for the sentry, gofer and page tables above the guest's limit.
const HOST_OVERHEAD: u64 = 128 << 20;

/// `slice:prefix:name` (systemd driver) as a cgroupfs path.
fn relative(path: &str) -> String {
    let parts: Vec<&str> = path.split(':').collect();
    if parts.len() == 3 && !path.starts_with('/') {
        let slice = if parts[0].is_empty() {
            "system.slice"
        } else {
            parts[0]
        };
        return format!("{slice}/{}-{}.scope", parts[1], parts[2]);
    }
    path.trim_start_matches('/').to_string()
}

fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// cpuset children start empty; give every new level its parent's sets.
fn fill_cpuset(dir: &Path) {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if cur.trim().is_empty() {
            if let Some(parent) = dir.parent() {
                fill_cpuset(parent);
                if let Ok(v) = std::fs::read_to_string(parent.join(f)) {
                    let _ = std::fs::write(dir.join(f), v.trim());
                }
            }
        }
    }
}

/// Put `pid` (and so everything it starts) into the config's cgroup.
/// Returns the directories created, for delete.
pub fn place(spec: &Spec, pid: i32) -> Result<Vec<PathBuf>> {
    let Some(linux) = spec.linux() else {
        return Ok(Vec::new());
    };
    let Some(cg) = linux.cgroups_path() else {
        return Ok(Vec::new());
    };
    let rel = relative(&cg.to_string_lossy());
    if rel.is_empty() {
        return Ok(Vec::new());
    }
    let mem_limit = linux
        .resources()
        .as_ref()
        .and_then(|r| r.memory().as_ref().and_then(|m| m.limit()))
        .filter(|&l| l > 0)
        .map(|l| l as u64 + HOST_OVERHEAD);
    let mut dirs = Vec::new();
    let hierarchies: Vec<PathBuf> = if is_v2() {
        vec![PathBuf::from(ROOT)]
    } else {
        std::fs::read_dir(ROOT)
            .context("listing /sys/fs/cgroup")?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("cgroup.procs").exists())
            .collect()
    };
    for h in hierarchies {
        let dir = h.join(&rel);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating cgroup {}", dir.display()))?;
        if h.ends_with("cpuset") {
            fill_cpuset(&dir);
        }
        if let Some(l) = mem_limit {
            let (file, v) = if is_v2() {
                ("memory.max", l.to_string())
            } else {
                ("memory.limit_in_bytes", l.to_string())
            };
            if dir.join(file).exists() {
                std::fs::write(dir.join(file), v)
                    .with_context(|| format!("setting {}", dir.join(file).display()))?;
            }
        }
        if let Some(r) = linux.resources() {
            apply_resources(&h, &dir, r, is_v2())?;
        }
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("joining cgroup {}", dir.display()))?;
        dirs.push(dir);
    }
    Ok(dirs)
}

fn set(dir: &Path, file: &str, value: String) -> Result<()> {
    let p = dir.join(file);
    if !p.exists() {
        return Ok(());
    }
    std::fs::write(&p, &value).with_context(|| format!("setting {} to {value}", p.display()))
}

/// The host-side limits that bound the whole sandbox: CPU time and
/// placement, memory reservation and swappiness. (The memory limit is set
/// above with the sentry's overhead; pids are limited inside the sentry,
/// where guest tasks are counted, not host threads.)
fn apply_resources(
    hierarchy: &Path,
    dir: &Path,
    r: &oci_spec::runtime::LinuxResources,
    v2: bool,
) -> Result<()> {
    let name = hierarchy.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(cpu) = r.cpu() {
        if v2 {
            if let Some(shares) = cpu.shares() {
                // The cgroup v2 conversion runc uses.
                let w = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                set(dir, "cpu.weight", w.to_string())?;
            }
            if cpu.quota().is_some() || cpu.period().is_some() {
                let quota = cpu
                    .quota()
                    .filter(|&q| q > 0)
                    .map(|q| q.to_string())
                    .unwrap_or_else(|| "max".into());
                set(
                    dir,
                    "cpu.max",
                    format!("{quota} {}", cpu.period().unwrap_or(100_000)),
                )?;
            }
            if let Some(c) = cpu.cpus() {
                set(dir, "cpuset.cpus", c.clone())?;
            }
            if let Some(m) = cpu.mems() {
                set(dir, "cpuset.mems", m.clone())?;
            }
        } else {
            if name == "cpu" {
                if let Some(s) = cpu.shares() {
                    set(dir, "cpu.shares", s.to_string())?;
                }
                if let Some(p) = cpu.period() {
                    set(dir, "cpu.cfs_period_us", p.to_string())?;
                }
                if let Some(q) = cpu.quota() {
                    set(dir, "cpu.cfs_quota_us", q.to_string())?;
                }
            }
            if name == "cpuset" {
                if let Some(c) = cpu.cpus() {
                    set(dir, "cpuset.cpus", c.clone())?;
                }
                if let Some(m) = cpu.mems() {
                    set(dir, "cpuset.mems", m.clone())?;
                }
            }
        }
    }
    if let Some(mem) = r.memory() {
        if v2 {
            if let Some(res) = mem.reservation().filter(|&x| x > 0) {
                set(dir, "memory.low", res.to_string())?;
            }
        } else if name == "memory" {
            if let Some(res) = mem.reservation().filter(|&x| x > 0) {
                set(dir, "memory.soft_limit_in_bytes", res.to_string())?;
            }
            if let Some(sw) = mem.swappiness() {
                set(dir, "memory.swappiness", sw.to_string())?;
            }
        }
    }
    Ok(())
}

/// Remove the cgroups created by `place` (they are empty once the sandbox
/// is gone).
pub fn remove(dirs: &[PathBuf]) {
    for d in dirs {
        // Exiting processes leave their cgroup a moment after they are
        // gone from /proc's view of the container.
        for _ in 0..200 {
            match std::fs::remove_dir(d) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                _ => break,
            }
        }
    }
}
