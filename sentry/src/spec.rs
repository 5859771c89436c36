//! What a sandbox runs: the runtime's description of the init process, the
//! mounts and the limits, handed to `rvisor boot` as JSON on an fd. The
//! runtime translates an OCI config.json (or `rvisor do`'s flags) into it;
//! the sentry trusts no part of it to touch the host.

use serde::{Deserialize, Serialize};

/// One process to start inside the sandbox (the init, or an exec).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ProcessSpec {
    pub argv: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub umask: Option<u32>,
    /// (resource, soft, hard).
    pub rlimits: Vec<(u32, u64, u64)>,
    /// Capability sets; `None` keeps Linux's default for the uid.
    pub caps: Option<CapSpec>,
    pub no_new_privs: bool,
    /// stdio is a terminal: the process becomes its session's controller.
    pub terminal: bool,
    /// process.oomScoreAdj (None: the sandbox's, i.e. the init's).
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// The lowest value the process may set without CAP_SYS_RESOURCE
    /// (Linux's oom_score_adj_min: the value itself when the runtime
    /// that set it held CAP_SYS_RESOURCE). None: the sandbox's.
    #[serde(default)]
    pub oom_score_adj_min: Option<i32>,
    /// process.consoleSize (rows, columns): the terminal's first window
    /// size (the runtime sets it on the host pty).
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default)]
pub struct CapSpec {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// A filesystem mounted into the sandbox's tree before the init starts.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct MountSpec {
    /// Absolute path inside the sandbox.
    pub dest: Vec<u8>,
    pub kind: MountKind,
    pub readonly: bool,
    /// What /proc/*/mountinfo shows: the type and source config.json gave
    /// (for a bind mount, its source path is the mount's root).
    #[serde(default)]
    pub fstype: String,
    #[serde(default)]
    pub source: String,
    /// MS_NOSUID, MS_NODEV, MS_NOEXEC from the mount's options.
    #[serde(default)]
    pub flags: MountFlags,
    /// The filesystem's own options as /proc/mounts shows them after the
    /// mount flags (tmpfs: `size=65536k,mode=755`), empty for none.
    #[serde(default)]
    pub data: String,
}

/// Per-mount flags (mount(8)'s nosuid, nodev, noexec).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl MountFlags {
    /// From mount options: the last of `X` / `noX` wins, as with mount(8).
    pub fn from_options<S: AsRef<str>>(opts: &[S]) -> MountFlags {
        let mut f = MountFlags::default();
        for o in opts {
            match o.as_ref() {
                "nosuid" => f.nosuid = true,
                "suid" => f.nosuid = false,
                "nodev" => f.nodev = true,
                "dev" => f.nodev = false,
                "noexec" => f.noexec = true,
                "exec" => f.noexec = false,
                _ => {}
            }
        }
        f
    }

    /// As /proc/mounts lists them after rw/ro: `,nosuid,nodev,noexec`.
    pub fn show(&self) -> String {
        let mut s = String::new();
        for (on, name) in [
            (self.nosuid, ",nosuid"),
            (self.nodev, ",nodev"),
            (self.noexec, ",noexec"),
        ] {
            if on {
                s.push_str(name);
            }
        }
        s
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum MountKind {
    /// The gofer's served root number `index` (a host file or directory).
    Bind { index: u32 },
    /// An in-memory filesystem.
    Tmpfs {
        mode: u32,
        /// size= in bytes (None: Linux's default, half of memory).
        #[serde(default)]
        size: Option<u64>,
        /// nr_inodes= (None: no inode limit).
        #[serde(default)]
        nr_inodes: Option<u64>,
    },
    /// The sandbox's procfs.
    Proc,
    /// The sandbox's sysfs.
    Sysfs,
    /// The sandbox's devfs.
    Devfs,
    /// Filesystems mounted by type with no source: devpts (the sandbox's
    /// pty instance), mqueue (the sentry's mqueue filesystem) and cgroup (a
    /// read-only view of the limits), so paths exist as in a container.
    Empty { fstype: String },
    /// linux.maskedPaths: an existing directory is covered by an empty
    /// read-only one, a file by /dev/null; a missing path is left alone.
    Mask,
    /// linux.readonlyPaths: an existing path becomes read-only.
    ReadonlyView,
}

/// Everything `rvisor boot` needs besides its fds.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct SandboxSpec {
    pub process: ProcessSpec,
    pub hostname: String,
    pub domainname: Option<String>,
    pub mounts: Vec<MountSpec>,
    pub root_readonly: bool,
    /// Most tasks (threads) the sandbox may run at once.
    pub pids_limit: usize,
    /// Memory limit in bytes for the whole sandbox (None: host RAM).
    pub memory_limit: Option<u64>,
    /// Hold the init after loading it until the runtime says start.
    pub wait_for_start: bool,
    /// Inherited fds 3..3+N become the init's fds 3..3+N (--preserve-fds).
    #[serde(default)]
    pub preserve_fds: u32,
    /// Writes to the root filesystem go to the host (through the gofer)
    /// instead of an in-memory layer (`--overlay none`).
    #[serde(default)]
    pub root_passthrough: bool,
    /// CPU bandwidth (quota µs, period µs), shown in the cgroup filesystem.
    #[serde(default)]
    pub cpu_max: Option<(i64, u64)>,
    /// linux.devices: device nodes made in the sandbox's /dev.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
}

/// A device node (config.json's linux.devices).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct DeviceSpec {
    pub path: Vec<u8>,
    pub block: bool,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}
