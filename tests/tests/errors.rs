//! Commands that cannot run: a shell-like one-line error on stderr, status
//! 127 (not found) or 126 (found, cannot execute), no panic, and no process
//! left behind.
//!
//! This binary makes itself a child subreaper (see `Subreaper`), so every
//! process that outlives an rvisor run is re-parented to it and found here,
//! even one that left rvisor's process group. All tests hold the lock.

use std::time::Duration;

use rvisor_tests::{require_file, Invocation, Output, Subreaper, TempDir, BUSYBOX};

const ORPHAN_GRACE: Duration = Duration::from_secs(3);

/// Runs under rvisor; asserts no timeout and nothing left behind. The caller
/// holds `Subreaper::lock()` for the whole test (native runs included, or
/// their children would look like orphans to a concurrent test).
fn run_checked(inv: &Invocation) -> Output {
    let out = inv.run_rvisor();
    let orphans = Subreaper::orphans(ORPHAN_GRACE);
    out.assert_clean_exit();
    assert!(
        orphans.is_empty(),
        "processes outlived `{}`: {orphans:?}\n{}",
        out.what,
        out.describe()
    );
    out
}

fn assert_exec_error(inv: Invocation, status: i32) {
    let _guard = Subreaper::lock();
    let native = inv.run_native();
    assert_eq!(native.status, status, "native side\n{}", native.describe());
    let out = run_checked(&inv);
    assert_eq!(out.status, status, "{}", out.describe());
    assert!(
        out.stdout.is_empty(),
        "unexpected stdout\n{}",
        out.describe()
    );
    let lines = out.stderr_lines();
    assert_eq!(
        lines.len(),
        1,
        "want exactly one stderr line\n{}",
        out.describe()
    );
    let name = &inv.argv[0];
    assert!(
        lines[0].contains(name.as_str()),
        "the error line should name the command {name:?}\n{}",
        out.describe()
    );
    assert!(
        !out.stderr_str().contains("panicked"),
        "rvisor panicked\n{}",
        out.describe()
    );
}

#[test]
fn missing_program_absolute_path_is_127() {
    assert_exec_error(
        Invocation::new(&["/nonexistent/rvisor-test-no-such-program"]),
        127,
    );
}

#[test]
fn missing_program_on_path_is_127() {
    assert_exec_error(Invocation::new(&["rvisor-test-no-such-program"]), 127);
}

#[test]
fn directory_as_cmd_is_126() {
    assert_exec_error(Invocation::new(&["/usr"]), 126);
}

#[test]
fn non_elf_non_script_is_126() {
    let dir = TempDir::new("notelf");
    // Binary junk: not ELF, no "#!", and (unlike a text file) not something
    // a shell would fall back to interpreting.
    let file = dir.write_file(
        "junk",
        b"\x00\x01\x02\x03not an executable\xff\xfe\n",
        0o755,
    );
    assert_exec_error(Invocation::new(&[file.to_str().unwrap()]), 126);
}

#[test]
fn not_executable_is_126() {
    let dir = TempDir::new("noexec");
    let file = dir.write_file("script", b"#!/bin/busybox sh\necho should not run\n", 0o644);
    assert_exec_error(Invocation::new(&[file.to_str().unwrap()]), 126);
}

#[test]
fn script_with_shebang_runs() {
    // The positive counterpart of the two tests above.
    require_file(BUSYBOX, "busybox-static");
    let dir = TempDir::new("script");
    let file = dir.write_file(
        "script",
        b"#!/bin/busybox sh\necho from script \"$1\"\nexit 3\n",
        0o755,
    );
    let inv = Invocation::new(&[file.to_str().unwrap(), "arg1"]);
    let _guard = Subreaper::lock();
    let native = inv.run_native();
    let out = run_checked(&inv);
    rvisor_tests::assert_outputs_equal(&native, &out);
}

#[test]
fn nothing_left_behind_after_success() {
    require_file(BUSYBOX, "busybox-static");
    let _guard = Subreaper::lock();
    let out = run_checked(&Invocation::new(&[BUSYBOX, "true"]));
    assert_eq!(out.status, 0, "{}", out.describe());
}

#[test]
fn background_child_dies_with_the_sandbox() {
    // The command's background child must not outlive the sandbox: when the
    // sandbox's init exits, the whole sandbox goes (pid-namespace
    // semantics), and `rvisor do` returns promptly with init's status.
    require_file(BUSYBOX, "busybox-static");
    let inv = Invocation::new(&[BUSYBOX, "sh", "-c", "/bin/busybox sleep 1000 & exit 5"])
        .timeout(Duration::from_secs(30));
    let _guard = Subreaper::lock();
    let out = run_checked(&inv);
    assert_eq!(out.status, 5, "{}", out.describe());
}
