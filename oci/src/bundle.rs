//! A bundle: a directory holding config.json and (usually) the rootfs.

use crate::{io_err, OciError, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// Runtime-spec versions this runtime implements.
pub const OCI_VERSION: &str = "1.0.2";

pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute path of the root filesystem on the host.
    pub rootfs: PathBuf,
}

/// Container ids: what runc accepts (letters, digits, `_+-.`), never `.`
/// or `..`, at most 1024 bytes.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OciError::Invalid(format!("invalid container id: {id:?}")))
    }
}

/// Load `dir/config.json` and check what a runtime must check before
/// creating anything.
pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    let cfg = dir.join("config.json");
    let text = std::fs::read(&cfg).map_err(|e| io_err(&cfg, e))?;
    let spec: Spec = serde_json::from_slice(&text)
        .map_err(|e| OciError::Invalid(format!("config.json: {e}")))?;
    check(&dir, spec)
}

fn check(dir: &Path, spec: Spec) -> Result<Bundle> {
    let v = spec.version();
    if !v.starts_with("1.") {
        return Err(OciError::Invalid(format!(
            "config.json: unsupported ociVersion {v:?} (this runtime implements {OCI_VERSION})"
        )));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| OciError::Invalid("config.json: root is missing".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| OciError::Invalid(format!("root.path {}: {e}", root.path().display())))?;
    if !rootfs.is_dir() {
        return Err(OciError::Invalid(format!(
            "root.path {}: not a directory",
            rootfs.display()
        )));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| OciError::Invalid("config.json: process is missing".into()))?;
    if !process.cwd().is_absolute() {
        return Err(OciError::Invalid(format!(
            "config.json: process.cwd {:?} is not an absolute path",
            process.cwd()
        )));
    }
    match process.args() {
        Some(a) if !a.is_empty() => {}
        _ => {
            return Err(OciError::Invalid(
                "config.json: process.args must not be empty".into(),
            ))
        }
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(OciError::Invalid(format!(
                "config.json: mount destination {} is not absolute",
                m.destination().display()
            )));
        }
    }
    Ok(Bundle {
        dir: dir.to_path_buf(),
        spec,
        rootfs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(cfg: &str) -> (PathBuf, Result<Bundle>) {
        let d = std::env::temp_dir().join(format!(
            "rvisor-oci-test-{}-{}",
            std::process::id(),
            cfg.len()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("rootfs")).unwrap();
        std::fs::write(d.join("config.json"), cfg).unwrap();
        let r = load(&d);
        (d, r)
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bad_configs() {
        let cases = [
            ("{", "config.json"),
            (
                r#"{"ociVersion":"2.0.0","root":{"path":"rootfs"},"process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"]}}"#,
                "ociVersion",
            ),
            (
                r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"]}}"#,
                "root",
            ),
            (
                r#"{"ociVersion":"1.0.2","root":{"path":"nope"},"process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"]}}"#,
                "root.path",
            ),
            (
                r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"user":{"uid":0,"gid":0},"cwd":"rel","args":["sh"]}}"#,
                "cwd",
            ),
            (
                r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"user":{"uid":0,"gid":0},"cwd":"/","args":[]}}"#,
                "args",
            ),
        ];
        for (cfg, want) in cases {
            let (d, r) = bundle(cfg);
            let e = r.err().unwrap().to_string();
            assert!(e.contains(want), "{cfg}: {e}");
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn accepts_unknown_fields() {
        let (d, r) = bundle(
            r#"{"ociVersion":"1.0.2-dev","root":{"path":"rootfs"},"process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"],"futureField":1},"zzz":{}}"#,
        );
        let b = r.unwrap();
        assert!(b.rootfs.ends_with("rootfs"));
        std::fs::remove_dir_all(d).unwrap();
    }
}
