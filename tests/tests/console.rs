//! `rvisor do` from a terminal: the host terminal is bridged to a pty of
//! the sandbox's own, so an interactive bash gets a controlling terminal
//! with job control, ^C interrupts its foreground job, and the host
//! terminal's mode is given back at the end. Driven from a host pty by a
//! small Python program (python3 is a test dependency).

use std::process::Command;

const DRIVER: &str = r#"
import os, pty, select, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], ["rvisor", "do", "--", "/bin/bash", "--norc", "--noprofile", "-i"])
before = termios.tcgetattr(fd)
def drain(t):
    out = b""
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return out
out = drain(1.5)
os.write(fd, b"tty; sleep 100\n")
out += drain(1.0)
os.write(fd, b"\x03")
out += drain(0.5)
os.write(fd, b"echo after $?; exit 3\n")
out += drain(2.0)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print("status", os.waitstatus_to_exitcode(status))
"#;

#[test]
fn interactive_bash_on_the_host_terminal() {
    rvisor_tests::require_file("/bin/bash", "bash");
    let out = Command::new("python3")
        .arg("-c")
        .arg(DRIVER)
        .arg(rvisor_tests::rvisor_bin())
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "no sandbox pty:\n{text}");
    assert!(
        text.contains("after 130"),
        "^C did not interrupt sleep:\n{text}"
    );
    assert!(!text.contains("no job control"), "no job control:\n{text}");
    assert!(
        text.contains("status 3"),
        "exit status not passed on:\n{text}"
    );
}
