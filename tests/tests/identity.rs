//! The sandbox has its own identity: its uts nodename is not the host's.

use rvisor_tests::{host_hostname, require_file, Invocation, BUSYBOX};

#[test]
fn nodename_is_not_hosts_hostname() {
    require_file(BUSYBOX, "busybox-static");
    let host = host_hostname();
    assert!(!host.is_empty(), "cannot read the host's hostname");
    let out = Invocation::new(&[BUSYBOX, "uname", "-n"]).run_rvisor();
    out.assert_clean_exit();
    assert_eq!(out.status, 0, "{}", out.describe());
    let nodename = out.stdout_str().trim().to_owned();
    assert!(!nodename.is_empty(), "empty nodename\n{}", out.describe());
    assert_ne!(
        nodename,
        host,
        "the sandbox reports the host's hostname\n{}",
        out.describe()
    );
}

/// Starts `rvisor [global] do [do_args] -- busybox sh -c 'echo ready; read
/// x; SCRIPT'` through `launcher` (a command line that ends by exec'ing
/// its arguments, or none), waits for "ready" (the workload was exec'd from
/// files the gofer served, so the gofer is confined and filtered by then),
/// runs `check` on the gofer's pid, lets the workload finish and returns
/// `check`'s result with what the script printed.
fn with_running_gofer_in<T>(
    launcher: &[&str],
    global: &[&str],
    do_args: &[&str],
    busybox: &str,
    script: &str,
    check: impl FnOnce(i32) -> T,
) -> (T, String) {
    require_file(BUSYBOX, "busybox-static");
    let rvisor = rvisor_tests::rvisor_bin();
    let mut argv: Vec<String> = launcher.iter().map(|s| s.to_string()).collect();
    argv.push(rvisor.display().to_string());
    argv.extend(global.iter().map(|s| s.to_string()));
    argv.push("do".into());
    argv.extend(do_args.iter().map(|s| s.to_string()));
    let body = format!("echo ready; read x; {script}");
    argv.extend(["--", busybox, "sh", "-c", &body].map(String::from));
    let run = rvisor_tests::Running::start(&argv);
    let gofers = rvisor_tests::gofers_of(run.child.id() as i32);
    let result = match gofers.as_slice() {
        [g] => Some(check(g.pid)),
        _ => None,
    };
    let (rest, status) = run.finish(b"");
    assert!(status.success(), "rvisor do: {status}\n{rest}");
    let result = result.unwrap_or_else(|| panic!("expected one gofer child, found {gofers:?}"));
    (result, rest)
}

fn with_running_gofer<T>(global: &[&str], check: impl FnOnce(i32) -> T) -> T {
    let (r, rest) = with_running_gofer_in(&[], global, &[], BUSYBOX, "echo bye", check);
    assert_eq!(rest, "bye\n");
    r
}

/// A small root filesystem owned by host root: busybox, an /etc/shadow only
/// root may read, and a directory `u` only host uid 1000 may enter.
fn small_rootfs(dir: &rvisor_tests::TempDir) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let root = dir.join("root");
    for d in ["bin", "etc", "tmp", "u"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    std::fs::write(root.join("etc/shadow"), "root-only\n").expect("write");
    std::fs::set_permissions(root.join("etc/shadow"), PermissionsExt::from_mode(0o600))
        .expect("chmod");
    std::fs::set_permissions(root.join("u"), PermissionsExt::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::chown(root.join("u"), Some(1000), Some(1000)).expect("chown");
    root
}

/// What the sandbox does on `small_rootfs`, written through to it.
const OWNERS_SCRIPT: &str = "cat /etc/shadow; stat -c '%u %g' /u; \
    echo new > /tmp/f && chown 5:6 /tmp/f && touch /u/x && echo wrote";

fn check_owners_on_host(root: &std::path::Path, out: &str) {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(out, "root-only\n1000 1000\nwrote\n");
    let f = std::fs::metadata(root.join("tmp/f")).expect("tmp/f on the host");
    assert_eq!((f.uid(), f.gid()), (5, 6), "chown 5:6 landed as");
    let x = std::fs::metadata(root.join("u/x")).expect("u/x on the host");
    assert_eq!((x.uid(), x.gid()), (0, 0), "a file root made is owned by");
}

#[test]
fn gofer_is_nobody_by_default_and_sees_owners_through_idmapped_mounts() {
    let dir = rvisor_tests::TempDir::new("gofer-nobody");
    let root = small_rootfs(&dir);
    let root_s = root.display().to_string();
    let (checked, out) = with_running_gofer_in(
        &[],
        &[],
        &["--rootfs", &root_s, "--overlay", "none"],
        "/bin/busybox",
        OWNERS_SCRIPT,
        |pid| rvisor_tests::check_gofer_confinement(pid, Some(rvisor_tests::GOFER_NOBODY_MAP)),
    );
    checked.unwrap_or_else(|e| panic!("{e}"));
    check_owners_on_host(&root, &out);
}

/// An overlay mount of `lower` made in a private mount namespace by the
/// launcher command that then execs rvisor; `then` (with `{m}` for the
/// mount point) runs between the mount and the exec.
struct Overlay {
    upper: std::path::PathBuf,
    merged: std::path::PathBuf,
    script: String,
}

impl Overlay {
    fn new(dir: &rvisor_tests::TempDir, lower: &std::path::Path, then: &str) -> Overlay {
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let m = merged.display().to_string();
        let script = format!(
            "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {m} && {}exec \"$0\" \"$@\"",
            lower.display(),
            upper.display(),
            work.display(),
            then.replace("{m}", &m),
        );
        Overlay {
            upper,
            merged,
            script,
        }
    }

    fn launcher(&self) -> Vec<&str> {
        vec![
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &self.script,
        ]
    }
}

/// overlayfs cannot be idmapped: on an overlay rootfs (docker's, say) the
/// default falls back to the identity map, and the sandbox works the same.
#[test]
fn gofer_falls_back_to_identity_where_a_root_cannot_be_idmapped() {
    let dir = rvisor_tests::TempDir::new("gofer-ovl");
    let lower = small_rootfs(&dir);
    let ovl = Overlay::new(&dir, &lower, "");
    let merged_s = ovl.merged.display().to_string();
    let upper = ovl.upper.clone();
    let (checked, out) = with_running_gofer_in(
        &ovl.launcher(),
        &[],
        &["--rootfs", &merged_s, "--overlay", "none"],
        "/bin/busybox",
        OWNERS_SCRIPT,
        |pid| rvisor_tests::check_gofer_confinement(pid, Some(rvisor_tests::GOFER_IDENTITY_MAP)),
    );
    checked.unwrap_or_else(|e| panic!("{e}"));
    // The overlay's writes are in its upper layer.
    check_owners_on_host(&upper, &out);
}

#[test]
fn gofer_idmap_identity_maps_every_id_to_itself() {
    with_running_gofer(&["--gofer-idmap", "identity"], |pid| {
        rvisor_tests::check_gofer_confinement(pid, Some(rvisor_tests::GOFER_IDENTITY_MAP))
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn gofer_idmap_host_keeps_the_host_user_namespace() {
    with_running_gofer(&["--gofer-idmap", "host"], |pid| {
        rvisor_tests::check_gofer_confinement(pid, None)
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn gofer_idmap_range_makes_the_gofer_an_unprivileged_host_uid() {
    let dir = rvisor_tests::TempDir::new("gofer-range");
    let root = small_rootfs(&dir);
    let root_s = root.display().to_string();
    let (checked, out) = with_running_gofer_in(
        &[],
        &["--gofer-idmap", "100000:65536"],
        &["--rootfs", &root_s, "--overlay", "none"],
        "/bin/busybox",
        OWNERS_SCRIPT,
        |pid| rvisor_tests::check_gofer_confinement(pid, Some("0 100000 65536")),
    );
    checked.unwrap_or_else(|e| panic!("{e}"));
    check_owners_on_host(&root, &out);
}

#[test]
fn gofer_idmap_rejects_bad_ranges() {
    for bad in ["0:0", "4294967295:1", "x", "1:2:3", "-1:5"] {
        let out = Invocation::new(&[BUSYBOX, "true"])
            .rvisor_arg(format!("--gofer-idmap={bad}"))
            .run_rvisor();
        assert_ne!(out.status, 0, "--gofer-idmap={bad} accepted");
    }
}

/// An overlayfs rootfs served read-only (docker's, containerd's and
/// podman's, by default): the gofer stays nobody, seeing the rootfs through
/// an overlay of its own over idmapped copies of the layers, which shows
/// what the original does: owners as on disk, the upper layer's changes
/// and whiteouts.
#[test]
fn gofer_is_nobody_on_an_overlay_rootfs_through_its_layers() {
    let dir = rvisor_tests::TempDir::new("gofer-ovl-layers");
    let lower = small_rootfs(&dir);
    std::fs::write(lower.join("etc/motd"), "lower\n").expect("write");
    std::fs::write(lower.join("etc/gone"), "deleted above\n").expect("write");
    // The upper layer as a container's writes leave it: a changed file
    // and a whiteout (made through the overlay).
    let ovl = Overlay::new(
        &dir,
        &lower,
        "echo upper > {m}/etc/motd && rm {m}/etc/gone && ",
    );
    let merged_s = ovl.merged.display().to_string();
    let upper = ovl.upper.clone();
    let (checked, out) = with_running_gofer_in(
        &ovl.launcher(),
        &[],
        &["--rootfs", &merged_s],
        "/bin/busybox",
        "cat /etc/shadow /etc/motd; stat -c '%u %g' /u /etc/shadow; \
         cat /etc/gone 2>/dev/null || echo gone; echo x > /tmp/new && cat /tmp/new",
        |pid| rvisor_tests::check_gofer_confinement(pid, Some(rvisor_tests::GOFER_NOBODY_MAP)),
    );
    checked.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, "root-only\nupper\n1000 1000\n0 0\ngone\nx\n");
    // The sandbox's write stayed in its memory: neither layer changed.
    assert!(!upper.join("tmp/new").exists());
    assert!(!lower.join("tmp/new").exists());
}
