//! The bundles every runtime runs: a small busybox rootfs with the bench's
//! own static program (micro, fs, cold start, density), and a Debian minbase
//! rootfs with python3, sqlite3 and gcc (macro). One `config.json` per
//! workload (its `process.args` differ), shared by all runtimes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::runtime::last_line;

const RVBENCH_C: &str = include_str!("rvbench.c");

/// Where the Debian rootfs for macro workloads is cached by default.
pub const DEBIAN_ROOTFS: &str = "/var/tmp/rvisor-bench-rootfs";

/// Files the fs workloads expect in a directory: a 1 MiB `file` and `dir`
/// with 10 000 empty files.
const DIR_ENTRIES: usize = 10_000;

pub struct Bundles {
    /// `<out>/bundles`: one directory per workload.
    dir: PathBuf,
    /// The small rootfs.
    pub small: PathBuf,
    /// Host directory bind-mounted at /bind in the small bundle.
    pub bind_src: PathBuf,
    /// The Debian rootfs, or why it is missing.
    pub debian: std::result::Result<PathBuf, String>,
}

/// Which rootfs a workload runs in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Root {
    Small,
    Debian,
}

impl Bundles {
    /// Builds (or reuses) everything under `out`.
    pub fn prepare(out: &Path, debian: &Path, build_debian: bool) -> Result<Bundles> {
        let dir = out.join("bundles");
        std::fs::create_dir_all(&dir)?;
        let small = out.join("rootfs");
        let bind_src = out.join("bind");
        let rvbench = build_rvbench(out)?;
        make_small_rootfs(&small, &rvbench)?;
        make_fs_dir(&bind_src)?;
        let debian = prepare_debian(debian, build_debian).map_err(|e| format!("{e:#}"));
        if let Ok(d) = &debian {
            write_macro_inputs(d)?;
        }
        Ok(Bundles {
            dir,
            small,
            bind_src,
            debian,
        })
    }

    pub fn rootfs(&self, root: Root) -> std::result::Result<&Path, String> {
        match root {
            Root::Small => Ok(&self.small),
            Root::Debian => self.debian.as_deref().map_err(Clone::clone),
        }
    }

    /// Writes `<out>/bundles/<id>/config.json` and returns the bundle path.
    pub fn bundle(&self, id: &str, root: Root, args: &[String]) -> Result<PathBuf> {
        let rootfs = self.rootfs(root).map_err(anyhow::Error::msg)?;
        let b = self.dir.join(id);
        std::fs::create_dir_all(&b)?;
        let binds = match root {
            Root::Small => vec![(self.bind_src.as_path(), "/bind")],
            Root::Debian => Vec::new(),
        };
        let config = config_json(rootfs, args, &binds);
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
        Ok(b)
    }
}

/// A runc-style default config (as `runc spec` writes it), not a terminal,
/// writable root, plus the bind mounts.
fn config_json(rootfs: &Path, args: &[String], binds: &[(&Path, &str)]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    for (src, dst) in binds {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src,
                           "options": ["rbind", "rw"]}));
    }
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME=/root", "LANG=C.UTF-8"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": rootfs, "readonly": false},
        "hostname": "rvbench",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                            "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"]
        }
    })
}

/// Compiles rvbench.c with `gcc -O2 -static`.
fn build_rvbench(out: &Path) -> Result<PathBuf> {
    let src = out.join("rvbench.c");
    let exe = out.join("rvbench");
    std::fs::write(&src, RVBENCH_C)?;
    let res = Command::new("gcc")
        .args(["-O2", "-static", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .context("gcc not found (apt-get install gcc libc6-dev)")?;
    if !res.status.success() {
        bail!(
            "gcc -static rvbench.c failed: {}",
            last_line(&String::from_utf8_lossy(&res.stderr))
        );
    }
    Ok(exe)
}

/// busybox (sh, true, sleep), rvbench and the fs files under /bench/fs.
fn make_small_rootfs(root: &Path, rvbench: &Path) -> Result<()> {
    for d in [
        "bin", "bench", "dev", "proc", "sys", "tmp", "bind", "etc", "root",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .context("busybox not found (apt-get install busybox-static)")?;
    copy_if_changed(busybox, &root.join("bin/busybox"))?;
    for applet in ["sh", "true", "sleep", "cat"] {
        let link = root.join("bin").join(applet);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink("busybox", &link)?;
        }
    }
    std::fs::copy(rvbench, root.join("bench/rvbench"))?;
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n")?;
    make_fs_dir(&root.join("bench/fs"))
}

fn copy_if_changed(from: &Path, to: &Path) -> Result<()> {
    let same = match (std::fs::metadata(from), std::fs::metadata(to)) {
        (Ok(a), Ok(b)) => a.len() == b.len(),
        _ => false,
    };
    if !same {
        std::fs::copy(from, to).with_context(|| format!("copy {}", from.display()))?;
    }
    Ok(())
}

/// `file` (1 MiB) and `dir` with 10 000 empty files, made once.
fn make_fs_dir(d: &Path) -> Result<()> {
    let dir = d.join("dir");
    std::fs::create_dir_all(&dir)?;
    let file = d.join("file");
    if std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) != 1 << 20 {
        std::fs::write(&file, vec![b'f'; 1 << 20])?;
    }
    let done = dir.join(format!("f{}", DIR_ENTRIES - 1));
    if !done.exists() {
        for i in 0..DIR_ENTRIES {
            std::fs::File::create(dir.join(format!("f{i}")))?;
        }
    }
    Ok(())
}

/// The Debian rootfs, built with mmdebstrap when asked and missing.
fn prepare_debian(root: &Path, build: bool) -> Result<PathBuf> {
    let needed = [
        "usr/bin/python3",
        "usr/bin/sqlite3",
        "usr/bin/gcc",
        "usr/bin/tar",
    ];
    let complete = |r: &Path| needed.iter().all(|n| r.join(n).exists());
    if complete(root) {
        return Ok(root.to_path_buf());
    }
    if !build {
        bail!(
            "no Debian rootfs with python3, sqlite3, gcc at {} (a run without --quick builds it)",
            root.display()
        );
    }
    eprintln!(
        "[bench] building {} with mmdebstrap (once; a few minutes)",
        root.display()
    );
    let tmp = root.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let status = Command::new("mmdebstrap")
        .args([
            "--quiet",
            "--variant=minbase",
            "--include=python3,sqlite3,gcc,libc6-dev",
            "bookworm",
        ])
        .arg(&tmp)
        .status()
        .context("mmdebstrap not found (apt-get install mmdebstrap)")?;
    if !status.success() || !complete(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        bail!("mmdebstrap failed ({status})");
    }
    std::fs::rename(&tmp, root)?;
    Ok(root.to_path_buf())
}

/// Number of rows the sqlite workload inserts.
pub const SQLITE_ROWS: usize = 10_000;
/// Lines of the C file gcc compiles.
pub const C_LINES: usize = 2_000;

/// /bench/inserts.sql (10 000 single-row INSERTs, each its own transaction)
/// and /bench/big.c (2 000 lines) in the Debian rootfs.
fn write_macro_inputs(root: &Path) -> Result<()> {
    let d = root.join("bench");
    std::fs::create_dir_all(&d)?;
    let mut sql = String::from(
        "PRAGMA synchronous=OFF;\nCREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, value REAL);\n",
    );
    for i in 0..SQLITE_ROWS {
        sql.push_str(&format!(
            "INSERT INTO t (name, value) VALUES ('row {i}', {}.5);\n",
            i * 7
        ));
    }
    std::fs::write(d.join("inserts.sql"), sql)?;
    std::fs::write(d.join("big.c"), big_c_source())?;
    Ok(())
}

/// A C file of exactly C_LINES lines: many small functions with loops and
/// branches, and a main that calls them.
fn big_c_source() -> String {
    let mut s = String::from("/* generated by rvisor's bench */\n#include <stdio.h>\n\n");
    let mut funcs = 0;
    // Each function is 9 lines; leave room for main (6 + one line per call).
    while s.lines().count() + 9 + 6 + funcs < C_LINES {
        s.push_str(&format!(
            "static long f{funcs}(long x) {{\n    long acc = {funcs};\n    for (int i = 0; i < 8; i++) {{\n        if ((x + i) % 3 == 0)\n            acc += x * i;\n        else\n            acc ^= x << (i % 5);\n    }}\n    return acc;\n}}\n"
        ));
        funcs += 1;
    }
    s.push_str("int main(void) {\n    long v = 1;\n");
    for i in 0..funcs {
        s.push_str(&format!("    v = f{i}(v);\n"));
    }
    while s.lines().count() + 3 < C_LINES {
        s.push_str("    v += 1;\n");
    }
    s.push_str("    printf(\"%ld\\n\", v);\n    return 0;\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_c_has_the_stated_length() {
        assert_eq!(big_c_source().lines().count(), C_LINES);
    }

    #[test]
    fn config_has_args_root_and_binds() {
        let c = config_json(
            Path::new("/r"),
            &["/bin/true".to_owned()],
            &[(Path::new("/h"), "/bind")],
        );
        assert_eq!(c["process"]["args"][0], "/bin/true");
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["root"]["path"], "/r");
        let last = c["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["destination"], "/bind");
        assert_eq!(last["source"], "/h");
    }
}
