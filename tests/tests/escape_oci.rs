//! Escape attempts that need an OCI container: bind mounts (symlinks and
//! rename races must not lead the gofer outside the bound directory or into
//! the rootfs on the host) and the memory and pids limits.

use rvisor_tests::{rvisor_bin, TempDir};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A busybox bundle in `dir` whose process runs `script`.
fn bundle(dir: &TempDir, script: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let b = dir.join("bundle");
    let bin = b.join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::fs::create_dir_all(b.join("rootfs/tmp")).expect("mkdir");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static");
    for c in [
        "sh", "cat", "echo", "ln", "mv", "rm", "mkdir", "ls", "seq", "sleep", "head", "tr", "true",
        "grep", "chown", "chmod", "stat", "touch",
    ] {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(c));
    }
    let mut cfg = json!({
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", script],
                    "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "hostname": "escape",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]
    });
    edit(&mut cfg);
    std::fs::write(b.join("config.json"), cfg.to_string()).expect("config");
    b
}

fn run(dir: &TempDir, b: &Path) -> (String, i32) {
    rvisor_tests::rvisor_run_bundle(dir, b, "esc", &[])
}

/// Every regular file under `root`, relative.
fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                out.push(p.strip_prefix(root).expect("prefix").display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn bind_mount_symlinks_and_rename_races_stay_inside() {
    let dir = TempDir::new("escape-bind");
    let shared = dir.join("shared");
    let secret = dir.join("secret");
    std::fs::create_dir_all(&shared).expect("mkdir");
    std::fs::create_dir_all(&secret).expect("mkdir");
    std::fs::write(secret.join("key"), "host secret\n").expect("write");
    // Planted by the host: a symlink out of the bound directory.
    std::os::unix::fs::symlink("../secret", shared.join("out")).expect("symlink");
    let script = r#"
        cat /data/out/key 2>/dev/null && echo ESCAPED-read-out
        echo pwn > /data/out/new 2>/dev/null && echo wrote-through-out
        ln -s / /data/root && cat /data/root/bin/busybox >/dev/null && echo root-is-sandbox-root
        ln -s .. /data/up; cat /data/up/secret/key 2>/dev/null && echo ESCAPED-dotdot
        mkdir -p /data/d
        ( for i in $(seq 300); do mv /data/d /data/d2; ln -s /bin /data/d; rm /data/d; mv /data/d2 /data/d; done ) &
        for i in $(seq 300); do echo x > /data/d/f$i 2>/dev/null; done
        wait
        echo done
    "#;
    let sp = shared.clone();
    let b = bundle(&dir, script, move |c| {
        c["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/data", "type": "bind", "source": sp, "options": ["rbind", "rw"]}),
        );
    });
    let rootfs_before = files(&b.join("rootfs"));
    let (out, code) = run(&dir, &b);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("done"), "{out}");
    assert!(!out.contains("ESCAPED"), "{out}");
    // The sandbox resolves symlinks in its own tree: /data/out -> /secret,
    // which does not exist there; /data/root is the container's root.
    assert!(!out.contains("wrote-through-out"), "{out}");
    assert!(out.contains("root-is-sandbox-root"), "{out}");
    assert_eq!(
        files(&secret),
        vec!["key".to_string()],
        "host secret dir changed"
    );
    assert_eq!(
        std::fs::read_to_string(secret.join("key")).expect("key"),
        "host secret\n"
    );
    // Writes through the racing path landed in the bound dir or in the
    // sandbox's memory, never in the rootfs on the host.
    assert_eq!(
        files(&b.join("rootfs")),
        rootfs_before,
        "the host rootfs changed"
    );
    assert!(!Path::new("/bin/f1").exists());
    for f in files(&shared) {
        assert!(
            f.starts_with("d/") || f.starts_with("d2/"),
            "unexpected file {f}"
        );
    }
}

const HOG: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    long mb = atol(argv[1]);
    for (long i = 0; i < mb; i++) {
        char *p = malloc(1 << 20);
        if (!p) { printf("ENOMEM after %ld MiB\n", i); return 1; }
        memset(p, 1, 1 << 20);
    }
    printf("survived %ld MiB\n", mb);
    return 0;
}
"#;

#[test]
fn memory_limit_kills_the_hog_not_the_host() {
    let dir = TempDir::new("escape-mem");
    let hog = rvisor_tests::compile_static_c(&dir, "hog", HOG);
    let b = bundle(&dir, "hog 1000; echo status $?; hog 16", |c| {
        c["linux"] = json!({"resources": {"memory": {"limit": 64 << 20}}});
    });
    std::fs::copy(&hog, b.join("rootfs/bin/hog")).expect("copy hog");
    let (out, code) = run(&dir, &b);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("survived 1000"), "{out}");
    // Killed like a cgroup's OOM victim; the container goes on.
    assert!(
        out.contains("status 137"),
        "the hog was not OOM-killed: {out}"
    );
    assert!(out.contains("survived 16 MiB"), "{out}");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let dir = TempDir::new("escape-pids");
    // ash gives up (status 2) at the first fork that fails; the subshell
    // keeps the outer shell alive to count what is running (without a fork:
    // the limit is reached).
    let script = "(for i in $(seq 100); do sleep 3 & done) 2>/dev/null; echo bomb $?; set -- /proc/[0-9]*; echo $#";
    let b = bundle(&dir, script, |c| {
        c["linux"] = json!({"resources": {"pids": {"limit": 20}}});
    });
    let (out, code) = run(&dir, &b);
    assert_eq!(code, 0, "{out}");
    let n: usize = out
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count: {out}"));
    assert!(out.contains("bomb 2"), "every fork succeeded: {out}");
    assert!(
        (10..=20).contains(&n),
        "{n} processes under a pids limit of 20: {out}"
    );
}

/// While a container with a writable bind mount runs, its gofer (seen from
/// the host) is host uid 65534 in user and pid namespaces of its own, the
/// served roots idmapped, with only its five capabilities; through it the container's root still
/// reads a host file of another owner with mode 0600, and chown, chmod
/// (setgid kept), mkdir and rename land on the host with the sandbox's ids.
#[test]
fn gofer_in_its_own_namespaces_serves_a_writable_bind() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = TempDir::new("escape-gofer-ns");
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared).expect("mkdir");
    let planted = shared.join("hostfile");
    std::fs::write(&planted, "owned by 4321\n").expect("write");
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::chown(&planted, Some(4321), Some(4321)).expect("chown");
    let script = r#"
        echo hi > /data/f && chown 1234:5678 /data/f && chmod 2750 /data/f || echo FAILED-f
        mkdir /data/d && chown 7:8 /data/d || echo FAILED-d
        touch /data/ready
        read go
        cat /data/hostfile
        mv /data/f /data/d/g && stat -c 'g %u %g %a' /data/d/g
        echo end
    "#;
    let sp = shared.clone();
    let b = bundle(&dir, script, move |c| {
        c["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/data", "type": "bind", "source": sp, "options": ["rbind", "rw"]}),
        );
    });
    let state = dir.join("state");
    let mut child = Command::new(rvisor_bin())
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&b)
        .arg(format!("gns-{}", std::process::id()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rvisor run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !shared.join("ready").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let state_s = state.display().to_string();
    let sups = rvisor_tests::live_processes(|p| {
        p.cmdline.starts_with("rvisor-supervisor ") && p.cmdline.contains(&state_s)
    });
    let gofers: Vec<_> = sups
        .iter()
        .flat_map(|s| rvisor_tests::gofers_of(s.pid))
        .collect();
    let checked = match gofers.as_slice() {
        [g] => rvisor_tests::check_gofer_confinement(g.pid, Some(rvisor_tests::GOFER_NOBODY_MAP)),
        _ => Err(format!(
            "expected one gofer, found {gofers:?} under {sups:?}"
        )),
    };
    // The sentry caches what it looked up, so a file made by the host is
    // not a reliable signal: the container's stdin is.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = std::io::Write::write_all(&mut stdin, b"go\n");
    }
    let out = child.wait_with_output().expect("wait");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    checked.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("FAILED"), "{text}");
    assert!(text.contains("owned by 4321\n"), "{text}");
    assert!(text.contains("g 1234 5678 2750\n"), "{text}");
    assert!(text.contains("end"), "{text}");
    let g = std::fs::metadata(shared.join("d/g")).expect("d/g on the host");
    assert_eq!((g.uid(), g.gid(), g.mode() & 0o7777), (1234, 5678, 0o2750));
    let d = std::fs::metadata(shared.join("d")).expect("d on the host");
    assert_eq!((d.uid(), d.gid()), (7, 8));
    assert_eq!(
        std::fs::metadata(&planted)
            .map(|m| (m.uid(), m.mode() & 0o7777))
            .ok(),
        Some((4321, 0o600))
    );
}

const FILL: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char *b = malloc(1 << 20);
    memset(b, 'x', 1 << 20);
    int fd = open("/tmp/fill", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    long total = 0;
    for (;;) {
        ssize_t n = write(fd, b, 1 << 20);
        if (n <= 0) {
            printf("stopped: %s\n", n < 0 ? strerror(errno) : "0");
            break;
        }
        total += n;
        if (total >= 1000L << 20) {
            printf("wrote 1000 MiB\n");
            break;
        }
    }
    printf("more than 64 MiB: %d\n", total > (64L << 20));
    close(fd);
    unlink("/tmp/fill");
    fd = open("/tmp/again", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    printf("after unlink: %zd\n", write(fd, b, 1 << 20));
    return 0;
}
"#;

/// Files in the sandbox's memory count against its memory limit (as tmpfs
/// pages do in a memory cgroup): a process filling /tmp is OOM-killed (or,
/// when the files alone reach the limit, gets ENOSPC) instead of taking
/// the host's memory; removing the file gives the room back.
#[test]
fn memory_limit_covers_in_memory_files() {
    let dir = TempDir::new("escape-fill");
    let fill = rvisor_tests::compile_static_c(&dir, "fill", FILL);
    let b = bundle(
        &dir,
        "fill; echo status $?; rm -f /tmp/fill; head -c 1048576 /dev/zero > /tmp/small && echo small ok",
        |c| {
            c["linux"] = json!({"resources": {"memory": {"limit": 64 << 20}}});
        },
    );
    std::fs::copy(&fill, b.join("rootfs/bin/fill")).expect("copy fill");
    let (out, code) = run(&dir, &b);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("wrote 1000 MiB"), "{out}");
    assert!(
        out.contains("status 137") || out.contains("stopped: No space left on device"),
        "{out}"
    );
    assert!(out.contains("small ok"), "{out}");
}
