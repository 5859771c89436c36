//! `--overlay self`: the rootfs's upper layer is kept in a host file beside
//! the rootfs (unnamed, freed at exit) instead of the sandbox's memory;
//! the rootfs itself is not written.

use rvisor_tests::{require_file, rvisor_bin, TempDir, BUSYBOX};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Bytes of host memory (not disk) a sandbox's memory file holds: the
/// sentry's memfd's allocated blocks.
fn sentry_fds(sentry: i32) -> Vec<(String, std::fs::Metadata)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{sentry}/fd")).expect("fd dir") {
        let e = e.expect("entry");
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if let Ok(m) = std::fs::metadata(e.path()) {
            out.push((target.to_string_lossy().into_owned(), m));
        }
    }
    out
}

#[test]
fn upper_layer_lives_in_a_host_file_beside_the_rootfs() {
    require_file(BUSYBOX, "busybox-static");
    let dir = TempDir::new("overlay-self");
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::create_dir_all(root.join("tmp")).expect("mkdir");
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    let before_dir = listing(dir.path());
    let before_root = listing(&root.join("tmp"));
    let argv: Vec<String> = [
        rvisor_bin().display().to_string(),
        "--overlay".into(),
        "self".into(),
        "do".into(),
        "--rootfs".into(),
        root.display().to_string(),
        "--".into(),
        "/bin/busybox".into(),
        "sh".into(),
        "-c".into(),
        "/bin/busybox dd if=/dev/urandom of=/tmp/big bs=1M count=64 2>/dev/null; \
         /bin/busybox md5sum /tmp/big > /tmp/sum; echo ready; read x; \
         /bin/busybox md5sum -c /tmp/sum"
            .into(),
    ]
    .into();
    let run = rvisor_tests::Running::start(&argv);
    let child = &run.child;
    let sentries = rvisor_tests::live_processes(|p| p.cmdline.starts_with("rvisor-sentry "));
    let mine: Vec<_> = sentries
        .iter()
        .filter(|s| {
            rvisor_tests::live_processes(|p| p.pid == s.ppid)
                .iter()
                .any(|p| p.ppid == child.id() as i32 || p.pid == child.id() as i32)
        })
        .collect();
    let fds = match mine.as_slice() {
        [s] => sentry_fds(s.pid),
        _ => Vec::new(),
    };
    let (rest, status) = run.finish(b"");
    assert!(status.success(), "rvisor: {status}");
    assert_eq!(rest, "/tmp/big: OK\n", "the data read back");
    assert!(
        !fds.is_empty(),
        "no sentry of this sandbox found: {sentries:?}"
    );
    // The filestore: an unlinked file in the rootfs's directory holding
    // the 64 MiB; the memory file holds far less.
    let prefix = format!("{}/", dir.path().display());
    let store = fds
        .iter()
        .find(|(t, _)| t.starts_with(&prefix) && t.ends_with(" (deleted)"))
        .unwrap_or_else(|| {
            panic!(
                "no filestore beside the rootfs among {:?}",
                fds.iter().map(|f| &f.0).collect::<Vec<_>>()
            )
        });
    assert!(
        store.1.blocks() * 512 >= 64 << 20,
        "filestore holds {} bytes",
        store.1.blocks() * 512
    );
    let memfd = fds
        .iter()
        .find(|(t, _)| t.contains("memfd:rvisor-memory"))
        .expect("memory file");
    assert!(
        memfd.1.blocks() * 512 < 32 << 20,
        "the memory file holds {} bytes",
        memfd.1.blocks() * 512
    );
    // Nothing left on the host: the rootfs untouched, no file beside it.
    assert_eq!(listing(dir.path()), before_dir);
    assert_eq!(listing(&root.join("tmp")), before_root);
}

#[test]
fn bad_overlay_value_is_refused() {
    let out = Command::new(rvisor_bin())
        .args(["--overlay", "disk", "do", "--", "/bin/true"])
        .output()
        .expect("run");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--overlay"), "{err}");
}
