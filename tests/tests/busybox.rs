//! Differential tests with static busybox (Debian `busybox-static`): the same
//! command natively and under `rvisor do` must give identical stdout and
//! exit status.

use rvisor_tests::{assert_same, require_file, Invocation, BUSYBOX};

fn bb(args: &[&str]) -> Invocation {
    require_file(BUSYBOX, "busybox-static");
    let mut argv = vec![BUSYBOX];
    argv.extend_from_slice(args);
    Invocation::new(&argv)
}

#[test]
fn echo() {
    bb(&["echo", "hello", "world"]).assert_same();
}

#[test]
fn cat_os_release() {
    // /etc/os-release is a relative symlink into /usr/lib.
    bb(&["cat", "/etc/os-release"]).assert_same();
}

#[test]
fn ls_la_usr_bin() {
    // Full listing: names, modes, owners (via /etc/passwd), sizes, mtimes
    // and link targets must all match what the host sees.
    bb(&["ls", "-la", "/usr/bin"]).assert_same();
}

#[test]
fn ls_la_usr_bin_piped_into_head() {
    // The pipeline of issue 2, run *inside* the sandbox: needs fork, pipe,
    // dup2, wait and SIGPIPE for the writer when head exits early.
    bb(&[
        "sh",
        "-c",
        "/bin/busybox ls -la /usr/bin | /bin/busybox head",
    ])
    .assert_same();
}

#[test]
fn wc_l_services() {
    bb(&["wc", "-l", "/etc/services"]).assert_same();
}

#[test]
fn sha256sum_os_release() {
    bb(&["sha256sum", "/etc/os-release"]).assert_same();
}

#[test]
fn uname_s() {
    bb(&["uname", "-s"]).assert_same();
}

#[test]
fn env_explicit() {
    // Keys in sorted order, PATH included: the native side's environment is
    // built by std (sorted), so this keeps the order defined on both sides.
    bb(&["env"])
        .env("A_VAR", "1")
        .env("HOME", "/root")
        .env("LANG", "C")
        .env("PATH", "/usr/bin:/bin")
        .env("WITH_SPACES", "a b  c")
        .assert_same();
}

#[test]
fn env_default_path_only() {
    // No --env at all: the workload sees exactly PATH=<default>.
    let (_, sandboxed) = bb(&["env"]).assert_same();
    assert_eq!(
        sandboxed.stdout_str(),
        format!("PATH={}\n", rvisor_tests::DEFAULT_PATH)
    );
}

#[test]
fn pwd_with_cwd() {
    bb(&["pwd"]).cwd("/usr/lib").assert_same();
}

#[test]
fn pwd_default_is_root() {
    let (_, sandboxed) = bb(&["pwd"]).assert_same();
    assert_eq!(sandboxed.stdout_str(), "/\n");
}

#[test]
fn true_exits_0() {
    let (_, sandboxed) = bb(&["true"]).assert_same();
    assert_eq!(sandboxed.status, 0);
}

#[test]
fn false_exits_1() {
    let (_, sandboxed) = bb(&["false"]).assert_same();
    assert_eq!(sandboxed.status, 1);
}

#[test]
fn sh_exit_7() {
    let (_, sandboxed) = bb(&["sh", "-c", "exit 7"]).assert_same();
    assert_eq!(sandboxed.status, 7);
}

#[test]
fn killed_by_signal_is_128_plus_n() {
    // The command is the sandbox's pid 1, which (as in any container) is
    // immune to signals it has no handler for; so the victim is a child
    // shell, whose death the outer shell reports as 128 + 9.
    let (_, sandboxed) =
        bb(&["sh", "-c", "/bin/busybox sh -c 'kill -9 $$'; exit $?"]).assert_same();
    assert_eq!(sandboxed.status, 128 + 9);
}

#[test]
fn cat_stdin_passthrough() {
    // Larger than a pipe buffer, with every byte value, so that partial
    // reads/writes and blocking on both sides are exercised.
    let data = rvisor_tests::deterministic_bytes(300_000, 7);
    let (_, sandboxed) = bb(&["cat"]).stdin(data.clone()).assert_same();
    assert_eq!(sandboxed.stdout.len(), data.len());
}

#[test]
fn function_api_echo() {
    // The plain-function form of the harness.
    require_file(BUSYBOX, "busybox-static");
    assert_same(&[BUSYBOX, "echo", "-n", "no newline"], &[], None, None);
}
