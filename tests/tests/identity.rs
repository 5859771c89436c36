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

/// Starts `rvisor [global] do -- busybox sh -c 'echo ready; read x'`, waits
/// for "ready" (the workload was exec'd from files the gofer served, so the
/// gofer is confined and filtered by then), runs `check` on the gofer's
/// pid, lets the workload finish and returns `check`'s result.
fn with_running_gofer<T>(global: &[&str], check: impl FnOnce(i32) -> T) -> T {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    require_file(BUSYBOX, "busybox-static");
    let mut child = Command::new(rvisor_tests::rvisor_bin())
        .args(global)
        .args([
            "do",
            "--",
            BUSYBOX,
            "sh",
            "-c",
            "echo ready; read x; echo bye",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn rvisor");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "ready\n", "the sandbox did not start");
    let gofers = rvisor_tests::gofers_of(child.id() as i32);
    let result = match gofers.as_slice() {
        [g] => Some(check(g.pid)),
        _ => None,
    };
    drop(child.stdin.take());
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let status = child.wait().expect("wait");
    assert!(status.success(), "rvisor do: {status}");
    assert_eq!(rest, "bye\n");
    result.unwrap_or_else(|| panic!("expected one gofer child, found {gofers:?}"))
}

#[test]
fn gofer_has_its_own_user_and_pid_namespaces() {
    // Default: every host id mapped to itself, in a user namespace of its own.
    with_running_gofer(&[], |pid| {
        rvisor_tests::check_gofer_confinement(pid, Some("0 0 4294967295"))
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
    with_running_gofer(&["--gofer-idmap", "100000:65536"], |pid| {
        rvisor_tests::check_gofer_confinement(pid, Some("0 100000 65536"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // Host root's files are not mapped there: the sandbox sees them owned by
    // the overflow id and the gofer reads them as "other" only.
    let out = Invocation::new(&[BUSYBOX, "stat", "-c", "%u %g", BUSYBOX])
        .rvisor_arg("--gofer-idmap=100000:65536")
        .run_rvisor();
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(out.stdout_str(), "65534 65534\n", "{}", out.describe());
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
