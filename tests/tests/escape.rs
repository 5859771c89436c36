//! The escape suite: `tests/escape/escape.c` tries one known escape class
//! per check from inside the sandbox; every attempt must fail, and the host
//! file the workload tried to append to must be unchanged.

use rvisor_tests::{compile_static_c, Invocation, TempDir};

#[test]
fn every_escape_attempt_fails() {
    let dir = TempDir::new("escape");
    let src = std::fs::read_to_string(rvisor_tests::workspace_root().join("tests/escape/escape.c"))
        .expect("tests/escape/escape.c");
    let exe = compile_static_c(&dir, "escape", &src);
    let marker = dir.write_file("marker", b"host\n", 0o666);
    let sock_path = dir.join("host.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).expect("bind host socket");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind host TCP socket");
    tcp.set_nonblocking(true).expect("nonblocking TCP listener");
    let tcp_port = tcp.local_addr().expect("TCP port").port().to_string();
    let out = Invocation::new(&[
        exe.to_str().unwrap(),
        marker.to_str().unwrap(),
        sock_path.to_str().unwrap(),
        &tcp_port,
    ])
    .run_rvisor();
    let text = out.stdout_str();
    eprintln!("{text}");
    assert!(
        !text.contains("ESCAPED"),
        "an escape attempt succeeded:\n{text}"
    );
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(
        text.lines().count() >= 20,
        "the suite did not run to the end:\n{text}"
    );
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the sandbox reached a host unix socket"
    );
    assert!(
        text.contains("connect to a host unix socket: blocked"),
        "{text}"
    );
    assert!(
        matches!(tcp.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the sandbox reached a host TCP listener"
    );
    assert!(
        text.contains("connect to a host TCP listener on 127.0.0.1: blocked"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&marker).expect("marker"),
        b"host\n",
        "the host file changed"
    );
}
