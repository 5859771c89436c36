//! Unsupported syscalls return ENOSYS and are reported by `--debug-log FILE`:
//! one line per distinct syscall with its name, number and count.
//! Not differential: the host kernel may well implement io_uring.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

const PROGRAM: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

int main(void) {
    for (int i = 0; i < 3; i++) {
        unsigned char params[120];
        memset(params, 0, sizeof params);
        errno = 0;
        long r = syscall(SYS_io_uring_setup, 1, params);
        int e = errno;
        if (r >= 0)
            close((int)r);
        printf("io_uring_setup ret=%ld errno=%d\n", r, r < 0 ? e : 0);
    }
    return 0;
}
"#;

#[test]
fn unsupported_syscall_is_enosys_and_logged() {
    let dir = TempDir::new("debuglog");
    let exe = compile_static_c(&dir, "uring", PROGRAM);
    let log = dir.join("debug.log");
    let out = Invocation::new(&[exe.to_str().unwrap()])
        .rvisor_arg("--debug-log")
        .rvisor_arg(log.to_str().unwrap())
        .run_rvisor();
    out.assert_clean_exit();
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(
        out.stdout_str(),
        "io_uring_setup ret=-1 errno=38\n".repeat(3),
        "want ENOSYS (38) from io_uring_setup\n{}",
        out.describe()
    );

    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| {
        panic!(
            "--debug-log {} not written: {e}\n{}",
            log.display(),
            out.describe()
        )
    });
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("io_uring_setup"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "want one line for io_uring_setup in the debug log, got:\n{text}"
    );
    let tokens: Vec<&str> = lines[0]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .collect();
    assert!(
        tokens.contains(&"425"),
        "the line should give the syscall number 425: {:?}",
        lines[0]
    );
    assert!(
        tokens.contains(&"3"),
        "the line should give the count 3: {:?}",
        lines[0]
    );
}
