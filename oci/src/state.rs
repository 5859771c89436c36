//! What the runtime remembers about a container between invocations, in
//! `<root>/<id>/state.json`, and the state JSON the OCI spec defines.

use crate::{io_err, OciError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.pad(s)
    }
}

/// The persisted record.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Record {
    pub id: String,
    /// The container's host process (the supervisor), 0 before it exists.
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat), against pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub annotations: BTreeMap<String, String>,
    /// Last status set by a runtime command; `stopped` is derived from the
    /// process being gone.
    pub status: Status,
    /// Hooks from config.json, kept for poststop (the bundle may be gone).
    #[serde(default)]
    pub hooks: Option<serde_json::Value>,
    /// Host cgroup directories the sandbox was placed in.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
}

/// The OCI state JSON (`runtime state`, hooks' stdin).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

/// Start time of a host process, None if it does not exist or is a zombie.
pub fn process_start(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends at the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    if f.first() == Some(&"Z") || f.first() == Some(&"X") {
        return None;
    }
    f.get(19)?.parse().ok()
}

impl Record {
    /// The current status: stopped once the container's process is gone.
    pub fn current_status(&self) -> Status {
        match self.status {
            Status::Creating if self.pid == 0 => Status::Creating,
            _ if process_start(self.pid) != Some(self.pid_start) => Status::Stopped,
            s => s,
        }
    }

    pub fn state(&self) -> State {
        let status = self.current_status();
        State {
            oci_version: crate::bundle::OCI_VERSION.into(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// The runtime's state directory (`--root`).
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Reserve `id`: its directory must not exist yet.
    pub fn reserve(&self, id: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.root).map_err(|e| io_err(&self.root, e))?;
        let d = self.dir(id);
        match std::fs::create_dir(&d) {
            Ok(()) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(OciError::Exists(id.to_string()))
            }
            Err(e) => Err(io_err(&d, e)),
        }
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        crate::bundle::check_id(id).map_err(|_| OciError::NotFound)?;
        let p = self.dir(id).join("state.json");
        let text = match std::fs::read(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(OciError::NotFound),
            Err(e) => return Err(io_err(&p, e)),
        };
        serde_json::from_slice(&text)
            .map_err(|e| OciError::Invalid(format!("{}: corrupt state: {e}", p.display())))
    }

    /// Write the record atomically (temp file + rename).
    pub fn save(&self, r: &Record) -> Result<()> {
        let d = self.dir(&r.id);
        // Per process: the supervisor and the command that started it may
        // save at the same time; each rename is atomic.
        let tmp = d.join(format!(".state.json.{}.tmp", std::process::id()));
        let data = serde_json::to_vec(r).map_err(|e| OciError::Invalid(e.to_string()))?;
        std::fs::write(&tmp, data).map_err(|e| io_err(&tmp, e))?;
        let p = d.join("state.json");
        std::fs::rename(&tmp, &p).map_err(|e| io_err(&p, e))
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let d = self.dir(id);
        match std::fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&d, e)),
        }
    }

    /// Ids of all containers under the root.
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    }
}

/// RFC 3339 UTC time with nanoseconds, as runc prints it.
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_795_797_114, 5), "2026-11-27T16:31:54.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        assert!(process_start(me).is_some());
        assert!(process_start(0).is_none());
    }
}
