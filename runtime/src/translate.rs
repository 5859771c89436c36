//! config.json → what the sandbox runs: the gofer's served paths and the
//! sentry's SandboxSpec.

use anyhow::{bail, Context, Result};
use oci::bundle::Bundle;
use oci_spec::runtime::{PosixRlimit, Process, Spec};
use sentry::spec::{CapSpec, MountFlags, MountKind, MountSpec, ProcessSpec, SandboxSpec};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

pub struct Plan {
    pub gofer_mounts: Vec<(PathBuf, bool)>,
    pub spec: SandboxSpec,
}

/// Default limit on tasks when config.json sets none.
const DEFAULT_PIDS: usize = 32768;

fn rlimit_number(name: &str) -> Option<u32> {
    const NAMES: [&str; 16] = [
        "RLIMIT_CPU",
        "RLIMIT_FSIZE",
        "RLIMIT_DATA",
        "RLIMIT_STACK",
        "RLIMIT_CORE",
        "RLIMIT_RSS",
        "RLIMIT_NPROC",
        "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK",
        "RLIMIT_AS",
        "RLIMIT_LOCKS",
        "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn rlimits(list: &[PosixRlimit]) -> Result<Vec<(u32, u64, u64)>> {
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    let mut out = Vec::new();
    for r in list {
        let name = json_name(&r.typ());
        let n = rlimit_number(&name).with_context(|| format!("unknown rlimit type {name:?}"))?;
        if r.soft() > r.hard() {
            bail!("error setting rlimit type {n}: invalid argument");
        }
        // What setrlimit(2) would refuse in a runc container.
        if n == 7 && r.hard() > nr_open {
            bail!("error setting rlimit type {n}: operation not permitted");
        }
        out.push((n, r.soft(), r.hard()));
    }
    Ok(out)
}

fn caps_of(p: &Process) -> Result<Option<CapSpec>> {
    let Some(c) = p.capabilities() else {
        return Ok(None);
    };
    let set = |s: &Option<oci_spec::runtime::Capabilities>| -> Result<u64> {
        let names: Vec<String> = s.iter().flatten().map(json_name).collect();
        oci::caps::mask(names.iter().map(String::as_str)).map_err(anyhow::Error::msg)
    };
    Ok(Some(CapSpec {
        bounding: set(c.bounding())?,
        effective: set(c.effective())?,
        permitted: set(c.permitted())?,
        inheritable: set(c.inheritable())?,
        ambient: set(c.ambient())?,
    }))
}

/// A process object (config.json's, or an exec's) as the sentry runs it.
pub fn process_spec(p: &Process) -> Result<ProcessSpec> {
    let u = p.user();
    Ok(ProcessSpec {
        argv: p
            .args()
            .iter()
            .flatten()
            .map(|a| a.as_bytes().to_vec())
            .collect(),
        env: p
            .env()
            .iter()
            .flatten()
            .map(|e| e.as_bytes().to_vec())
            .collect(),
        cwd: p.cwd().as_os_str().as_bytes().to_vec(),
        uid: u.uid(),
        gid: u.gid(),
        groups: u.additional_gids().clone().unwrap_or_default(),
        umask: u.umask(),
        rlimits: rlimits(p.rlimits().as_deref().unwrap_or(&[]))?,
        caps: caps_of(p)?,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        terminal: p.terminal().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        oom_score_adj_min: None,
        console_size: p.console_size().map(|b| {
            let clamp = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
            (clamp(b.height()), clamp(b.width()))
        }),
    })
}

/// linux.devices as device nodes for the sandbox's /dev.
fn devices(spec: &Spec) -> Vec<sentry::spec::DeviceSpec> {
    let mut out = Vec::new();
    for d in spec
        .linux()
        .iter()
        .flat_map(|l| l.devices().iter().flatten())
    {
        let t = json_name(&d.typ());
        out.push(sentry::spec::DeviceSpec {
            path: d.path().as_os_str().as_bytes().to_vec(),
            block: t == "b",
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    out
}

fn mode_option(opts: &[String]) -> Option<u32> {
    opts.iter()
        .find_map(|o| o.strip_prefix("mode="))
        .and_then(|m| u32::from_str_radix(m, 8).ok())
}

/// A tmpfs size option (`size=64k`, `nr_inodes=1k`: Linux's memparse
/// suffixes; `size=N%` is left to the default, a share of memory).
fn size_option(opts: &[String], key: &str) -> Result<Option<u64>> {
    match opts.iter().rev().find_map(|o| o.strip_prefix(key)) {
        None => Ok(None),
        Some(v) if v.ends_with('%') => Ok(None),
        Some(v) => sentry::fs::tmpfs::parse_size(v)
            .filter(|&n| n > 0)
            .map(Some)
            .with_context(|| format!("tmpfs option {key}{v}: not a size")),
    }
}

/// Translate a bundle.
pub fn plan(b: &Bundle) -> Result<Plan> {
    let spec: &Spec = &b.spec;
    let process = spec.process().as_ref().context("process is missing")?;
    let mut gofer_mounts = vec![(b.rootfs.clone(), true)];
    let mut mounts = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().as_os_str().as_bytes().to_vec();
        let typ = m.typ().clone().unwrap_or_default();
        let opts: Vec<String> = m.options().clone().unwrap_or_default();
        let readonly = opts.iter().any(|o| o == "ro");
        let is_bind = typ == "bind" || opts.iter().any(|o| o == "bind" || o == "rbind");
        let kind = if is_bind {
            let src = m.source().as_ref().with_context(|| {
                format!("bind mount {} has no source", m.destination().display())
            })?;
            let src = if src.is_absolute() {
                src.clone()
            } else {
                b.dir.join(src)
            };
            let src = std::fs::canonicalize(&src)
                .with_context(|| format!("bind mount source {}", src.display()))?;
            gofer_mounts.push((src, readonly));
            MountKind::Bind {
                index: (gofer_mounts.len() - 1) as u32,
            }
        } else {
            match typ.as_str() {
                "proc" => MountKind::Proc,
                "sysfs" => MountKind::Sysfs,
                // The sandbox's /dev is the sentry's devfs (with its own
                // /dev/shm), whatever a client asks to mount there.
                "tmpfs" | "devtmpfs" if dest == b"/dev" => MountKind::Devfs,
                "tmpfs" => MountKind::Tmpfs {
                    mode: mode_option(&opts).unwrap_or(0o1777),
                    size: size_option(&opts, "size=")?,
                    nr_inodes: size_option(&opts, "nr_inodes=")?,
                },
                "devpts" | "mqueue" | "cgroup" | "cgroup2" => MountKind::Empty {
                    fstype: typ.clone(),
                },
                other => bail!(
                    "mount {}: unsupported filesystem type {other:?}",
                    m.destination().display()
                ),
            }
        };
        // What /proc/mounts shows after the flags: a tmpfs's own options
        // (also for /dev, which is the sentry's devfs).
        let data = match &kind {
            MountKind::Tmpfs {
                mode,
                size,
                nr_inodes,
            } => sentry::fs::tmpfs::show_options(*mode, *size, *nr_inodes),
            MountKind::Devfs if typ == "tmpfs" => sentry::fs::tmpfs::show_options(
                mode_option(&opts).unwrap_or(0o1777),
                size_option(&opts, "size=")?,
                size_option(&opts, "nr_inodes=")?,
            ),
            _ => String::new(),
        };
        mounts.push(MountSpec {
            dest,
            kind,
            readonly,
            fstype: typ.clone(),
            source: m
                .source()
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            flags: MountFlags::from_options(&opts),
            data,
        });
    }
    if let Some(l) = spec.linux() {
        for p in l.masked_paths().iter().flatten() {
            mounts.push(MountSpec {
                dest: p.as_bytes().to_vec(),
                kind: MountKind::Mask,
                readonly: true,
                fstype: String::new(),
                source: String::new(),
                flags: MountFlags::default(),
                data: String::new(),
            });
        }
        for p in l.readonly_paths().iter().flatten() {
            mounts.push(MountSpec {
                dest: p.as_bytes().to_vec(),
                kind: MountKind::ReadonlyView,
                readonly: true,
                fstype: String::new(),
                source: String::new(),
                flags: MountFlags::default(),
                data: String::new(),
            });
        }
    }
    let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let pids_limit = resources
        .as_ref()
        .and_then(|r| r.pids().as_ref().map(|p| p.limit()))
        .filter(|&l| l > 0)
        .map(|l| l as usize)
        .unwrap_or(DEFAULT_PIDS);
    let memory_limit = resources
        .as_ref()
        .and_then(|r| r.memory().as_ref().and_then(|m| m.limit()))
        .filter(|&l| l > 0)
        .map(|l| l as u64);
    let root_readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    Ok(Plan {
        gofer_mounts,
        spec: SandboxSpec {
            process: process_spec(process)?,
            hostname: spec.hostname().clone().unwrap_or_else(|| {
                // Like a runc container without a UTS hostname: the host's.
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_else(|| "localhost".into())
            }),
            domainname: spec.domainname().clone(),
            mounts,
            root_readonly,
            pids_limit,
            memory_limit,
            wait_for_start: true,
            preserve_fds: 0,
            root_passthrough: false,
            devices: devices(spec),
            cpu_max: resources
                .as_ref()
                .and_then(|r| r.cpu().as_ref())
                .and_then(|c| {
                    c.quota()
                        .map(|q| (q, c.period().unwrap_or(100_000)))
                        .or(c.period().map(|p| (-1, p)))
                }),
        },
    })
}
