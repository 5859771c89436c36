//! Differential tests with dynamically linked programs from the host's
//! Debian root (ld.so and libc come from the sandbox's rootfs, which by
//! default is the host's `/` served by the gofer).

use std::time::Duration;

use rvisor_tests::{assert_outputs_equal, deterministic_bytes, require_file, Invocation, TempDir};

#[test]
fn ls_la_root() {
    // `/` is the host's root in both runs, but /proc, /dev and /sys inside
    // the sandbox are the sandbox's own filesystems, so their lines (link
    // count, size, mtime) legitimately differ, and so does the "total"
    // line, which sums block counts. Compare everything else; the
    // unfiltered listings of /usr and /etc below cover the rest.
    require_file("/bin/ls", "coreutils");
    let inv = Invocation::new(&["/bin/ls", "-la", "/"]);
    let mut native = inv.run_native();
    let mut sandboxed = inv.run_rvisor();
    sandboxed.assert_clean_exit();
    for out in [&mut native, &mut sandboxed] {
        let text = out.stdout_str();
        let kept: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with("total "))
            .filter(|l| !matches!(l.split_whitespace().last(), Some("dev" | "proc" | "sys")))
            // Column widths follow the widest field, /proc's link count
            // (the host's process count) included: compare fields only.
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>();
        out.stdout = (kept.join("\n") + "\n").into_bytes();
    }
    assert_outputs_equal(&native, &sandboxed);
}

#[test]
fn ls_la_usr() {
    Invocation::new(&["/bin/ls", "-la", "/usr"]).assert_same();
}

#[test]
fn ls_la_etc() {
    Invocation::new(&["/bin/ls", "-la", "/etc"]).assert_same();
}

#[test]
fn cat_os_release() {
    Invocation::new(&["/usr/bin/cat", "/etc/os-release"]).assert_same();
}

#[test]
fn sha256sum_50_mib_file() {
    let dir = TempDir::new("sha256");
    let file = dir.write_file("data.bin", &deterministic_bytes(50 << 20, 0x5eed), 0o644);
    let file = file.to_str().expect("utf-8 path");
    let (_, sandboxed) = Invocation::new(&["/usr/bin/sha256sum", file])
        .timeout(Duration::from_secs(120))
        .assert_same();
    assert!(sandboxed.stdout_str().ends_with(&format!("  {file}\n")));
}

#[test]
fn env_explicit() {
    // Sorted keys, PATH included: see busybox.rs.
    Invocation::new(&["/usr/bin/env"])
        .env("HOME", "/nonexistent")
        .env("LC_ALL", "C")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TERM", "dumb")
        .assert_same();
}

#[test]
fn python3_sum_range() {
    require_file("/usr/bin/python3", "python3");
    let (_, sandboxed) =
        Invocation::new(&["/usr/bin/python3", "-c", "print(sum(range(10**6)))"]).assert_same();
    assert_eq!(sandboxed.stdout_str(), "499999500000\n");
}
