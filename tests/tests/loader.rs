//! Program loading: static-PIE executables and `#!` chains, differential.

use rvisor_tests::{Invocation, TempDir};

#[test]
fn static_pie_runs_with_argv_and_status() {
    let dir = TempDir::new("spie");
    let src = dir.write_file(
        "spie.c",
        b"#include <stdio.h>\nint main(int c, char **v) { for (int i = 0; i < c; i++) printf(\"%s\\n\", v[i]); return 3; }\n",
        0o644,
    );
    let exe = dir.join("spie");
    let gcc = rvisor_tests::require_program("gcc", "build-essential");
    let st = std::process::Command::new(gcc)
        .args(["-static-pie", "-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("gcc runs");
    assert!(st.success(), "gcc -static-pie failed");
    let (_, out) = Invocation::new(&[exe.to_str().unwrap(), "a b", "c"]).assert_same();
    assert_eq!(out.status, 3);
}

#[test]
fn shebang_chain_with_argument() {
    let dir = TempDir::new("shebang");
    let inner = dir.write_file("inner.sh", b"#!/bin/busybox sh\necho inner \"$@\"\n", 0o755);
    let outer_text = format!("#!{} -x\n", inner.display());
    // `-x` is passed to the inner script as its first argument.
    let outer = dir.write_file("outer", outer_text.as_bytes(), 0o755);
    Invocation::new(&[outer.to_str().unwrap(), "arg"]).assert_same();
}
