//! Self-tests of the harness, native side only: they pass without an rvisor
//! binary and show that the native half of every differential test works.

use std::time::Duration;

use rvisor_tests::{
    assert_outputs_equal, deterministic_bytes, require_file, run_native, Invocation, TempDir,
    BUSYBOX, DEFAULT_PATH,
};

#[test]
fn native_echo_and_status() {
    require_file(BUSYBOX, "busybox-static");
    let out = run_native(&[BUSYBOX, "sh", "-c", "echo hi; exit 7"], &[], None, None);
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(out.status, 7);
    assert!(!out.timed_out && out.leftovers.is_empty());
}

#[test]
fn native_env_is_clean() {
    let out = Invocation::new(&["/usr/bin/env"])
        .env("X", "1")
        .run_native();
    assert_eq!(out.stdout_str(), format!("PATH={DEFAULT_PATH}\nX=1\n"));
}

#[test]
fn native_cwd_and_stdin() {
    require_file(BUSYBOX, "busybox-static");
    let out = Invocation::new(&[BUSYBOX, "pwd"])
        .cwd("/usr/lib")
        .run_native();
    assert_eq!(out.stdout_str(), "/usr/lib\n");
    let data = deterministic_bytes(200_000, 1);
    let out = Invocation::new(&[BUSYBOX, "cat"])
        .stdin(data.clone())
        .run_native();
    assert_eq!(out.stdout, data);
}

#[test]
fn native_signal_status() {
    require_file(BUSYBOX, "busybox-static");
    let out = run_native(&[BUSYBOX, "sh", "-c", "kill -TERM $$"], &[], None, None);
    assert_eq!(out.status, 128 + 15);
}

#[test]
fn native_exec_errors() {
    assert_eq!(run_native(&["/nonexistent/x"], &[], None, None).status, 127);
    assert_eq!(run_native(&["/usr"], &[], None, None).status, 126);
    let dir = TempDir::new("selftest");
    let f = dir.write_file("junk", b"\x00\x01junk", 0o755);
    assert_eq!(
        run_native(&[f.to_str().unwrap()], &[], None, None).status,
        126
    );
}

#[test]
fn timeout_kills_the_group() {
    require_file(BUSYBOX, "busybox-static");
    let out = Invocation::new(&[
        BUSYBOX,
        "sh",
        "-c",
        "/bin/busybox sleep 100 & /bin/busybox sleep 100",
    ])
    .timeout(Duration::from_millis(300))
    .run_native();
    assert!(out.timed_out);
    assert_eq!(out.status, 128 + 9);
    assert!(out.elapsed < Duration::from_secs(10));
}

#[test]
fn leftovers_are_detected() {
    require_file(BUSYBOX, "busybox-static");
    // The background sleep keeps the group alive (and stdout open) after sh
    // exits: natively that is exactly a left-behind process.
    let out =
        Invocation::new(&[BUSYBOX, "sh", "-c", "/bin/busybox sleep 100 & exit 0"]).run_native();
    assert_eq!(out.status, 0);
    assert!(!out.leftovers.is_empty(), "{}", out.describe());
}

#[test]
fn native_vs_native_is_equal() {
    let inv = Invocation::new(&["/usr/bin/cat", "/etc/os-release"]);
    assert_outputs_equal(&inv.run_native(), &inv.run_native());
}

#[test]
#[should_panic(expected = "stdout differs at line 2")]
fn mismatch_is_reported() {
    let a = Invocation::new(&["/usr/bin/printf", "a\\nb\\n"]).run_native();
    let b = Invocation::new(&["/usr/bin/printf", "a\\nc\\n"]).run_native();
    assert_outputs_equal(&a, &b);
}
