//! Randomized syscall testing from inside the sandbox (fixed seed here; set
//! RVISOR_FUZZ_ITERS and RVISOR_FUZZ_SEED for a long run). The sentry must
//! neither crash nor hang, and never trip its own seccomp filter (that
//! would kill the sandbox with status 159).

use rvisor_tests::{compile_static_c, Invocation, TempDir};
use std::time::Duration;

#[test]
fn random_syscalls_do_not_crash_the_sentry() {
    let dir = TempDir::new("fuzz");
    let src =
        std::fs::read_to_string(rvisor_tests::workspace_root().join("tests/fuzz/syscall_fuzz.c"))
            .expect("tests/fuzz/syscall_fuzz.c");
    let exe = compile_static_c(&dir, "fuzz", &src);
    let iters = std::env::var("RVISOR_FUZZ_ITERS").unwrap_or_else(|_| "200000".into());
    let seed = std::env::var("RVISOR_FUZZ_SEED").unwrap_or_else(|_| "0x9e3779b97f4a7c15".into());
    let out = Invocation::new(&[exe.to_str().unwrap(), &iters, &seed])
        .timeout(Duration::from_secs(600))
        .run_rvisor();
    let text = out.stdout_str();
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(
        text.contains(&format!("done {iters}")),
        "fuzzer did not finish:\n{}",
        out.describe()
    );
}
