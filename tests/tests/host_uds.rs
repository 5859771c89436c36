//! Host unix sockets in bind mounts (`--host-uds`): refused by default;
//! with `--host-uds open` a program connects to one exactly as it does
//! natively (same output from the same host server), and only data
//! crosses (files cannot be sent to the host peer).

use rvisor_tests::{compile_static_c, TempDir};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

const CLIENT: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static const char *E(int r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *path = argv[1];
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("connect: %s\n", E(r));
    if (r)
        return 1;
    if (argc > 2 && strcmp(argv[2], "recvfd") == 0) {
        /* The host peer sends a line with a file attached. */
        char data[64];
        struct iovec iov = {data, sizeof data};
        union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
        memset(&u, 0, sizeof u);
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = u.b, .msg_controllen = sizeof u.b};
        ssize_t n = recvmsg(s, &m, 0);
        printf("recvmsg: %zd, control bytes %zu\n", n, (size_t)m.msg_controllen);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        if (h && h->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(h), sizeof fd);
            char buf[64] = {0};
            printf("got fd %d reading: %zd\n", fd, read(fd, buf, sizeof buf - 1));
        } else {
            printf("no fd\n");
        }
        return 0;
    }
    if (argc > 2) {
        /* Try to hand a file to the host peer. */
        char c = 'x';
        struct iovec iov = {&c, 1};
        union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = u.b, .msg_controllen = sizeof u.b};
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        int fd = 1;
        memcpy(CMSG_DATA(h), &fd, sizeof fd);
        printf("send fd: %s\n", E(sendmsg(s, &m, 0)));
        return 0;
    }
    struct sockaddr_un p;
    socklen_t pl = sizeof p;
    r = getpeername(s, (struct sockaddr *)&p, &pl);
    printf("getpeername: %s, same path: %d\n", E(r), r == 0 && strcmp(p.sun_path, path) == 0);
    struct pollfd pf = {s, POLLIN | POLLOUT, 0};
    poll(&pf, 1, 1000);
    printf("poll before: in %d out %d\n", !!(pf.revents & POLLIN), !!(pf.revents & POLLOUT));
    printf("write: %zd\n", write(s, "hello from the client\n", 22));
    pf.events = POLLIN;
    poll(&pf, 1, 5000);
    printf("poll after: in %d\n", !!(pf.revents & POLLIN));
    char buf[256];
    ssize_t n = recv(s, buf, sizeof buf - 1, MSG_PEEK);
    printf("peeked: %zd\n", n);
    size_t got = 0;
    while (got == 0 || buf[got - 1] != '\n') {
        n = read(s, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += n;
    }
    buf[got] = 0;
    printf("reply: %s", buf);
    printf("shutdown: %s\n", E(shutdown(s, SHUT_WR)));
    printf("write after shutdown: %s\n", E(send(s, "x", 1, MSG_NOSIGNAL)));
    got = 0;
    while ((n = read(s, buf + got, sizeof buf - 1 - got)) > 0)
        got += n;
    buf[got] = 0;
    printf("then: %s", buf);
    printf("eof: %zd\n", n);
    printf("connect again: %s\n", E(connect(s, (struct sockaddr *)&a, sizeof a)));
    return 0;
}
"#;

/// A host server on `sock`: per connection, reads a line (or to EOF),
/// answers "host got: LINE", reads to EOF, says "bye" and closes.
fn serve(listener: UnixListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { return };
        std::thread::spawn(move || {
            let mut w = conn.try_clone().expect("clone");
            let mut r = BufReader::new(conn);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            if line.is_empty() {
                return;
            }
            let _ = w.write_all(format!("host got: {line}").as_bytes());
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut r, &mut rest);
            let _ = w.write_all(b"bye\n");
        });
    }
}

fn bundle(dir: &TempDir, client: &Path, shared: &Path, args: &[&str]) -> PathBuf {
    let b = dir.join("bundle");
    std::fs::create_dir_all(b.join("rootfs/data")).expect("mkdir");
    std::fs::copy(client, b.join("rootfs/client")).expect("copy client");
    let mut argv = vec!["/client".to_owned()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let cfg = json!({
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": argv, "env": [], "cwd": "/"},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/data", "type": "bind", "source": shared,
                    "options": ["rbind", "rw"]}]
    });
    std::fs::write(b.join("config.json"), cfg.to_string()).expect("config");
    b
}

fn run_rvisor(dir: &TempDir, b: &Path, global: &[&str]) -> (String, i32) {
    rvisor_tests::rvisor_run_bundle(dir, b, "uds", global)
}

struct Setup {
    dir: TempDir,
    client: PathBuf,
    shared: PathBuf,
}

fn setup(tag: &str) -> Setup {
    let dir = TempDir::new(tag);
    let client = compile_static_c(&dir, "client", CLIENT);
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared).expect("mkdir");
    let listener = UnixListener::bind(shared.join("srv.sock")).expect("bind host socket");
    std::thread::spawn(move || serve(listener));
    Setup {
        dir,
        client,
        shared,
    }
}

#[test]
fn host_socket_in_a_bind_mount_is_refused_by_default() {
    let s = setup("uds-off");
    let b = bundle(&s.dir, &s.client, &s.shared, &["/data/srv.sock"]);
    let (out, code) = run_rvisor(&s.dir, &b, &[]);
    assert_eq!(out, "connect: ECONNREFUSED\n", "exit {code}");
    assert_eq!(code, 1);
    let (out, _) = run_rvisor(&s.dir, &b, &["--host-uds", "none"]);
    assert_eq!(out, "connect: ECONNREFUSED\n");
    let (out, code) = run_rvisor(&s.dir, &b, &["--host-uds", "all"]);
    assert_ne!(code, 0, "--host-uds all accepted: {out}");
}

#[test]
fn host_socket_with_host_uds_open_works_as_natively() {
    let s = setup("uds-open");
    let host_path = s.shared.join("srv.sock");
    let native = Command::new(&s.client)
        .arg(&host_path)
        .output()
        .expect("run the client natively");
    let native = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(native.contains("reply: host got: hello"), "{native}");
    let b = bundle(&s.dir, &s.client, &s.shared, &["/data/srv.sock"]);
    let (out, code) = run_rvisor(&s.dir, &b, &["--host-uds", "open"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, native, "rvisor vs native");
}

/// Only bind mounts: a host socket in the root filesystem, or reached
/// through a symlink to its host path, stays unreachable even when open.
#[test]
fn host_uds_open_reaches_only_sockets_in_bind_mounts() {
    let s = setup("uds-rootfs");
    let b = bundle(&s.dir, &s.client, &s.shared, &["/rsock"]);
    let l = UnixListener::bind(b.join("rootfs/rsock")).expect("bind in rootfs");
    std::thread::spawn(move || serve(l));
    let (out, _) = run_rvisor(&s.dir, &b, &["--host-uds", "open"]);
    assert_eq!(out, "connect: ECONNREFUSED\n");
    // A symlink in the bind mount naming the socket's host path resolves
    // inside the sandbox, where that path does not exist.
    std::os::unix::fs::symlink(s.shared.join("srv.sock"), s.shared.join("link")).expect("symlink");
    let b = bundle(&s.dir, &s.client, &s.shared, &["/data/link"]);
    let (out, _) = run_rvisor(&s.dir, &b, &["--host-uds", "open"]);
    assert_eq!(out, "connect: ENOENT\n");
}

/// A host peer that sends a file along with data: the sandbox gets the
/// data and no file (natively the client would get a readable fd).
#[test]
fn no_host_file_reaches_the_sandbox_through_scm_rights() {
    use std::os::fd::AsRawFd;
    let dir = TempDir::new("uds-recvfd");
    let client = compile_static_c(&dir, "client", CLIENT);
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared).expect("mkdir");
    let secret = dir.join("host-secret");
    std::fs::write(&secret, "host file content\n").expect("write");
    let listener = UnixListener::bind(shared.join("srv.sock")).expect("bind");
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        let file = std::fs::File::open(&secret).expect("open secret");
        let data = *b"with a file\n";
        let fd = file.as_raw_fd();
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let mut cbuf = [0u64; 8];
        // SAFETY: msghdr is plain data; the control buffer holds one int.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        // SAFETY: CMSG macros on our own buffer, large enough for one int.
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
            let h = libc::CMSG_FIRSTHDR(&msg);
            (*h).cmsg_level = libc::SOL_SOCKET;
            (*h).cmsg_type = libc::SCM_RIGHTS;
            (*h).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::copy_nonoverlapping(&fd as *const i32 as *const u8, libc::CMSG_DATA(h), 4);
            assert_eq!(
                libc::sendmsg(conn.as_raw_fd(), &msg, 0),
                data.len() as isize
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    });
    let b = bundle(&dir, &client, &shared, &["/data/srv.sock", "recvfd"]);
    let (out, code) = run_rvisor(&dir, &b, &["--host-uds", "open"]);
    server.join().expect("server");
    assert_eq!(
        out, "connect: ok\nrecvmsg: 12, control bytes 0\nno fd\n",
        "exit {code}"
    );
}

#[test]
fn no_files_cross_to_a_host_peer() {
    let s = setup("uds-fd");
    let b = bundle(&s.dir, &s.client, &s.shared, &["/data/srv.sock", "fd"]);
    let (out, code) = run_rvisor(&s.dir, &b, &["--host-uds", "open"]);
    assert_eq!(out, "connect: ok\nsend fd: EOPNOTSUPP\n", "exit {code}");
}
