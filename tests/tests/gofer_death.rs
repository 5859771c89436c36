//! A gofer that dies: the sandbox goes on, file operations that need the
//! gofer fail with EIO (never hang), and rvisor says what happened.

use rvisor_tests::{require_file, BUSYBOX};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn gofer_death_gives_eio_and_a_report() {
    require_file(BUSYBOX, "busybox-static");
    let mut child = Command::new(rvisor_tests::rvisor_bin())
        .args(["do", "--", BUSYBOX, "sh", "-c"])
        .arg(
            "echo ready; read x; \
             cat /etc/hostname >/dev/null; echo cat $?; \
             ls /usr/lib >/dev/null; echo ls $?; echo alive",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rvisor");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "ready\n", "the sandbox did not start");
    let gofers = rvisor_tests::gofers_of(child.id() as i32);
    assert_eq!(gofers.len(), 1, "expected one gofer: {gofers:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &gofers[0].pid.to_string()])
        .status()
        .expect("kill the gofer");
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(200));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox hung after the gofer died"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("stdout");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(status.success(), "rvisor do: {status}\n{rest}\n{err}");
    assert!(rest.contains("cat 1"), "cat should fail: {rest}\n{err}");
    assert!(rest.contains("alive"), "the sandbox should go on: {rest}");
    assert!(err.contains("Input/output error"), "EIO expected: {err}");
    assert!(
        err.contains("connection to the gofer was lost"),
        "no report: {err}"
    );
}
