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
