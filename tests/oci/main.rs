//! OCI conformance: bundles run by rvisor and by runc in the same test, the
//! container's own view of each config.json field compared (and checked
//! against what the runtime spec says), plus lifecycle rules and errors.
//! runc comes from Debian's `runc` package.

use rvisor_tests::{require_program, rvisor_bin, TempDir};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Runtime {
    name: &'static str,
    bin: PathBuf,
    root: PathBuf,
}

impl Runtime {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        c
    }
}

/// Both runtimes, each with its own state root under `dir`.
fn runtimes(dir: &TempDir) -> Vec<Runtime> {
    let runc = require_program("runc", "runc");
    vec![
        Runtime {
            name: "runc",
            bin: runc,
            root: dir.join("runc-root"),
        },
        Runtime {
            name: "rvisor",
            bin: rvisor_bin(),
            root: dir.join("rvisor-root"),
        },
    ]
}

/// A bundle: a busybox rootfs and a config with `process.args = argv`.
fn bundle(dir: &TempDir, name: &str, argv: &[&str]) -> (PathBuf, Value) {
    let b = dir.join(name);
    let bin = b.join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("mkdir rootfs");
    std::fs::create_dir_all(b.join("rootfs/etc")).expect("mkdir etc");
    std::fs::create_dir_all(b.join("rootfs/tmp")).expect("mkdir tmp");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox (busybox-static)");
    for c in [
        "sh", "cat", "echo", "id", "ls", "pwd", "hostname", "touch", "grep", "stat", "sleep",
        "mkdir", "umask", "true", "cut", "chmod", "chown", "truncate",
    ] {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(c));
    }
    std::fs::write(
        b.join("rootfs/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .expect("passwd");
    let cfg = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": argv,
            "env": [PATH_ENV],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE"],
                "effective": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE"],
                "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE"]
            },
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "oci-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}]
        }
    });
    (b, cfg)
}

fn write_config(b: &Path, cfg: &Value) {
    std::fs::write(
        b.join("config.json"),
        serde_json::to_vec_pretty(cfg).expect("json"),
    )
    .expect("write config.json");
}

/// `run` the bundle: (stdout, stderr, exit code).
fn run(rt: &Runtime, b: &Path, id: &str) -> (String, String, i32) {
    let out = rt
        .cmd()
        .arg("run")
        .arg("--bundle")
        .arg(b)
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .expect("spawn runtime");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Run `cfg` under runc and rvisor; both outputs must be equal and equal
/// to `want` (when given). Returns rvisor's stdout.
fn same(name: &str, argv: &[&str], edit: impl Fn(&mut Value, &Path), want: Option<&str>) -> String {
    let dir = TempDir::new(name);
    let mut outs = Vec::new();
    for rt in runtimes(&dir) {
        let (b, mut cfg) = bundle(&dir, &format!("b-{}", rt.name), argv);
        edit(&mut cfg, &b);
        write_config(&b, &cfg);
        let (out, err, code) = run(&rt, &b, &format!("{name}-{}", std::process::id()));
        outs.push((rt.name, out, err, code));
    }
    let (_, ro, re, rc) = &outs[0];
    let (_, vo, ve, vc) = &outs[1];
    assert_eq!(
        (ro, rc),
        (vo, vc),
        "{name}: runc and rvisor differ\nrunc stderr: {re}\nrvisor stderr: {ve}"
    );
    if let Some(w) = want {
        assert_eq!(vo, w, "{name}: not what the spec says");
    }
    vo.clone()
}

#[test]
fn process_user_cwd_env_umask() {
    same(
        "process",
        &["sh", "-c", "id -u; id -g; id -G; pwd; echo $FOO; umask"],
        |c, b| {
            std::fs::create_dir_all(b.join("rootfs/work")).expect("mkdir");
            c["process"]["user"] =
                json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 63});
            c["process"]["cwd"] = json!("/work");
            c["process"]["env"] = json!([PATH_ENV, "FOO=bar baz"]);
        },
        Some("1000\n1001\n1001 5 7\n/work\nbar baz\n0077\n"),
    );
}

#[test]
fn hostname() {
    same(
        "hostname",
        &["hostname"],
        |c, _| c["hostname"] = json!("box-7"),
        Some("box-7\n"),
    );
}

#[test]
fn rlimits() {
    same(
        "rlimits",
        &["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -s"],
        |c, _| {
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608}
            ])
        },
        Some("123\n456\n4096\n"),
    );
}

#[test]
fn capabilities_and_no_new_privileges() {
    // KILL(5) CHOWN(0) SETUID(7) SETGID(6) DAC_OVERRIDE(1) = 0xe3.
    same(
        "caps",
        &["sh", "-c", "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"],
        |_, _| {},
        Some("CapInh:\t0000000000000000\nCapPrm:\t00000000000000e3\nCapEff:\t00000000000000e3\nCapBnd:\t00000000000000e3\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n"),
    );
}

#[test]
fn non_root_user_loses_capabilities() {
    same(
        "caps-user",
        &["sh", "-c", "grep -E '^Cap(Prm|Eff)' /proc/self/status"],
        |c, _| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}),
        Some("CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"),
    );
}

#[test]
fn readonly_root() {
    same(
        "roroot",
        &[
            "sh",
            "-c",
            "touch /x 2>&1; echo $?; touch /dev/ok && echo dev-writable",
        ],
        |c, _| c["root"]["readonly"] = json!(true),
        Some("touch: /x: Read-only file system\n1\ndev-writable\n"),
    );
}

#[test]
fn mounts_in_order_with_options() {
    let host = TempDir::new("oci-host");
    std::fs::write(host.join("f"), "host file\n").expect("write");
    let hp = host.path().to_path_buf();
    let out = same(
        "mounts",
        &["sh", "-c", "ls /a; cat /a/b/f; echo x > /a/b/g 2>/dev/null || echo ro-bind; stat -c %a /c; echo y > /c/z && cat /c/z; cat /w/f; echo w > /w/new"],
        move |c, _| {
            let m = c["mounts"].as_array_mut().expect("mounts");
            m.push(json!({"destination": "/a", "type": "tmpfs", "source": "tmpfs"}));
            m.push(json!({"destination": "/a/b", "type": "bind", "source": hp, "options": ["rbind", "ro"]}));
            m.push(json!({"destination": "/c", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]}));
            m.push(json!({"destination": "/w", "type": "bind", "source": hp, "options": ["rbind", "rw"]}));
        },
        Some("b\nhost file\nro-bind\n700\ny\nhost file\n"),
    );
    assert!(out.contains("ro-bind"));
    // Both runtimes wrote through the rw bind.
    assert_eq!(
        std::fs::read_to_string(host.join("new")).expect("new"),
        "w\n"
    );
}

#[test]
fn tmpfs_size_option() {
    // size= of an OCI tmpfs mount: df reports it and writes past it fail.
    same(
        "tmpfs-size",
        &["sh", "-c", "df -k /s | tail -n 1 | awk '{print $2}'; head -c 100000 /dev/zero > /s/f 2>/dev/null || echo full; wc -c < /s/f"],
        |c, _| {
            let m = c["mounts"].as_array_mut().expect("mounts");
            m.push(json!({"destination": "/s", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k", "nr_inodes=100"]}));
        },
        Some("64\nfull\n65536\n"),
    );
}

#[test]
fn exit_status_and_signals() {
    same("exit", &["sh", "-c", "exit 42"], |_, _| {}, Some(""));
    let dir = TempDir::new("oci-kill");
    for rt in runtimes(&dir) {
        let (b, cfg) = bundle(&dir, rt.name, &["sh", "-c", "kill -9 $$"]);
        write_config(&b, &cfg);
        let (_, _, code) = run(&rt, &b, &format!("sig-{}", std::process::id()));
        // pid 1 ignores a SIGKILL from inside its own namespace.
        assert_eq!(code, 0, "{}", rt.name);
    }
}

fn state(rt: &Runtime, id: &str) -> Option<Value> {
    let out = rt.cmd().arg("state").arg(id).output().expect("state");
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn ok(rt: &Runtime, args: &[&str]) -> bool {
    // stderr goes to a file, not a pipe: a created container's init keeps
    // the runtime's stdio open, and reading a pipe to EOF would wait for it.
    let log = rt
        .root
        .with_extension(format!("{}.err", std::process::id()));
    let err = std::fs::File::create(&log).expect("stderr log");
    let st = rt
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .status()
        .expect("spawn");
    if !st.success() {
        // Shown when the test fails (expected failures print here too).
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        eprintln!("{} {:?}: {}", rt.name, args, text.trim_end());
    }
    st.success()
}

fn wait_stopped(rt: &Runtime, id: &str) {
    for _ in 0..500 {
        if state(rt, id).is_some_and(|s| s["status"] == "stopped") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{}: {id} did not stop", rt.name);
}

#[test]
fn lifecycle_transitions_and_errors() {
    let dir = TempDir::new("oci-life");
    for rt in runtimes(&dir) {
        let (b, cfg) = bundle(&dir, rt.name, &["sleep", "30"]);
        write_config(&b, &cfg);
        let id = format!("life-{}", std::process::id());
        let bs = b.to_str().expect("utf8");
        let n = rt.name;
        let pid_file = dir.join(&format!("{n}.pid"));
        assert!(
            !ok(&rt, &["start", &id]),
            "{n}: start of a missing container"
        );
        assert!(
            state(&rt, &id).is_none(),
            "{n}: state of a missing container"
        );
        assert!(
            ok(
                &rt,
                &[
                    "create",
                    "--bundle",
                    bs,
                    "--pid-file",
                    pid_file.to_str().expect("utf8"),
                    &id
                ]
            ),
            "{n}: create"
        );
        let s = state(&rt, &id).expect("state");
        assert_eq!(s["status"], "created", "{n}");
        assert_eq!(s["id"], id.as_str(), "{n}");
        let pid: i64 = std::fs::read_to_string(&pid_file)
            .expect("pid file")
            .parse()
            .expect("pid");
        assert_eq!(
            s["pid"].as_i64(),
            Some(pid),
            "{n}: state pid is the pid file's"
        );
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "{n}: init alive"
        );
        assert!(
            !ok(&rt, &["create", "--bundle", bs, &id]),
            "{n}: duplicate id"
        );
        // runc deletes a created (never started) container without --force.
        assert!(
            ok(&rt, &["delete", &id]),
            "{n}: delete of a created container"
        );
        assert!(state(&rt, &id).is_none(), "{n}: deleted");
        assert!(
            !Path::new(&format!("/proc/{pid}/stat")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "{n}: init gone after delete"
        );
        assert!(
            ok(&rt, &["create", "--bundle", bs, &id]),
            "{n}: create again"
        );
        assert!(ok(&rt, &["start", &id]), "{n}: start");
        assert_eq!(state(&rt, &id).expect("state")["status"], "running", "{n}");
        assert!(
            !ok(&rt, &["start", &id]),
            "{n}: start of a running container"
        );
        assert!(
            !ok(&rt, &["delete", &id]),
            "{n}: delete of a running container"
        );
        assert!(ok(&rt, &["pause", &id]), "{n}: pause");
        assert_eq!(state(&rt, &id).expect("state")["status"], "paused", "{n}");
        assert!(ok(&rt, &["resume", &id]), "{n}: resume");
        assert_eq!(state(&rt, &id).expect("state")["status"], "running", "{n}");
        assert!(!ok(&rt, &["kill", &id, "NOSUCHSIG"]), "{n}: unknown signal");
        assert!(ok(&rt, &["kill", &id, "KILL"]), "{n}: kill");
        wait_stopped(&rt, &id);
        assert!(
            !ok(&rt, &["kill", &id, "9"]),
            "{n}: kill of a stopped container"
        );
        assert!(ok(&rt, &["delete", &id]), "{n}: delete");
        assert!(
            !ok(&rt, &["delete", &id]),
            "{n}: delete of a missing container"
        );
        assert!(
            ok(&rt, &["delete", "--force", &id]),
            "{n}: delete --force of a missing container"
        );
    }
}

#[test]
fn exec_in_running_container() {
    let dir = TempDir::new("oci-exec");
    for rt in runtimes(&dir) {
        let (b, cfg) = bundle(&dir, rt.name, &["sleep", "30"]);
        write_config(&b, &cfg);
        let id = format!("exec-{}", std::process::id());
        assert!(ok(
            &rt,
            &[
                "run",
                "--detach",
                "--bundle",
                b.to_str().expect("utf8"),
                &id
            ]
        ));
        let out = rt
            .cmd()
            .args([
                "exec",
                "--cwd",
                "/tmp",
                "--env",
                "X=1",
                &id,
                "sh",
                "-c",
                "echo $X $(pwd); exit 3",
            ])
            .output()
            .expect("exec");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "1 /tmp\n",
            "{}",
            rt.name
        );
        assert_eq!(out.status.code(), Some(3), "{}", rt.name);
        let ps = rt
            .cmd()
            .args(["ps", "--format", "json", &id])
            .output()
            .expect("ps");
        let pids: Value = serde_json::from_slice(&ps.stdout).expect("ps json");
        assert!(
            pids.as_array().is_some_and(|a| !a.is_empty()),
            "{}: ps",
            rt.name
        );
        assert!(
            ok(&rt, &["delete", "--force", &id]),
            "{}: delete --force",
            rt.name
        );
        assert!(state(&rt, &id).is_none(), "{}", rt.name);
    }
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    let dir = TempDir::new("oci-hooks");
    let mut orders = Vec::new();
    for rt in runtimes(&dir) {
        let log = dir.join(&format!("{}-hooks.log", rt.name));
        let hook = |kind: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("s=$(cat); echo \"{kind} $s\" >> {}", log.display())]});
        let (b, mut cfg) = bundle(&dir, rt.name, &["true"]);
        cfg["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")]
        });
        write_config(&b, &cfg);
        let id = format!("hooks-{}", std::process::id());
        let (_, err, code) = run(&rt, &b, &id);
        assert_eq!(code, 0, "{}: {err}", rt.name);
        let text = std::fs::read_to_string(&log).expect("hook log");
        let mut kinds = Vec::new();
        for line in text.lines() {
            let (kind, st) = line.split_once(' ').expect("kind state");
            let st: Value = serde_json::from_str(st).expect("state JSON on stdin");
            assert_eq!(st["id"], id.as_str(), "{}", rt.name);
            assert!(
                st["bundle"].as_str().is_some_and(|s| s.ends_with(rt.name)),
                "{}",
                rt.name
            );
            kinds.push(format!("{kind}:{}", st["status"].as_str().unwrap_or("")));
        }
        orders.push(kinds);
    }
    assert_eq!(
        orders[0], orders[1],
        "hook order and states: runc vs rvisor"
    );
    assert_eq!(
        orders[1].first().map(String::as_str),
        Some("prestart:creating")
    );
}

/// A change to a bundle's config.json.
type ConfigEdit = Box<dyn Fn(&Path)>;

/// Bad input: one clear error line, exit != 0, nothing left under --root.
#[test]
fn bad_configs_are_refused_cleanly() {
    let dir = TempDir::new("oci-bad");
    let rv = &runtimes(&dir)[1];
    let cases: Vec<(&str, ConfigEdit)> = vec![
        (
            "malformed",
            Box::new(|b: &Path| std::fs::write(b.join("config.json"), "{ nope").expect("w")),
        ),
        (
            "no-root",
            Box::new(|b: &Path| {
                let (_, mut c) = (
                    0,
                    serde_json::from_slice::<Value>(
                        &std::fs::read(b.join("config.json")).expect("r"),
                    )
                    .expect("j"),
                );
                c.as_object_mut().expect("obj").remove("root");
                write_config(b, &c);
            }),
        ),
        (
            "relative-cwd",
            Box::new(|b: &Path| {
                let mut c: Value =
                    serde_json::from_slice(&std::fs::read(b.join("config.json")).expect("r"))
                        .expect("j");
                c["process"]["cwd"] = json!("relative");
                write_config(b, &c);
            }),
        ),
        (
            "oci-version",
            Box::new(|b: &Path| {
                let mut c: Value =
                    serde_json::from_slice(&std::fs::read(b.join("config.json")).expect("r"))
                        .expect("j");
                c["ociVersion"] = json!("9.0.0");
                write_config(b, &c);
            }),
        ),
        (
            "missing-binary",
            Box::new(|b: &Path| {
                let mut c: Value =
                    serde_json::from_slice(&std::fs::read(b.join("config.json")).expect("r"))
                        .expect("j");
                c["process"]["args"] = json!(["/nonexistent"]);
                write_config(b, &c);
            }),
        ),
    ];
    for (name, edit) in cases {
        let (b, cfg) = bundle(&dir, name, &["true"]);
        write_config(&b, &cfg);
        edit(&b);
        let id = format!("bad-{name}");
        let out = rv
            .cmd()
            .args(["create", "--bundle", b.to_str().expect("utf8"), &id])
            .output()
            .expect("create");
        assert!(!out.status.success(), "{name}: create succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: one error line, got {err:?}"
        );
        assert!(
            !rv.root.join(&id).exists(),
            "{name}: state left under --root"
        );
        let left = rvisor_tests::live_processes(|p| p.cmdline.contains(&id));
        assert!(left.is_empty(), "{name}: processes left: {left:?}");
    }
    for bad_id in ["a/b", "..", ""] {
        let (b, cfg) = bundle(&dir, "ids", &["true"]);
        write_config(&b, &cfg);
        assert!(
            !ok(
                rv,
                &["create", "--bundle", b.to_str().expect("utf8"), bad_id]
            ),
            "id {bad_id:?}"
        );
    }
}

/// With `--log F --log-format json` a failed create leaves one JSON line
/// with level "error" (what containerd's shim reads back), as runc does.
#[test]
fn errors_are_logged_as_json() {
    let dir = TempDir::new("oci-log");
    for rt in runtimes(&dir) {
        let (b, mut cfg) = bundle(&dir, rt.name, &["/nonexistent"]);
        cfg["process"]["args"] = json!(["/nonexistent"]);
        write_config(&b, &cfg);
        let log = dir.join(&format!("{}.log", rt.name));
        let out = Command::new(&rt.bin)
            .arg("--root")
            .arg(&rt.root)
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "create", "--bundle"])
            .arg(&b)
            .arg("log-test")
            .output()
            .expect("create");
        assert!(!out.status.success(), "{}", rt.name);
        let text = std::fs::read_to_string(&log).expect("log file");
        let last: Value = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .rfind(|v| v["level"] == "error")
            .unwrap_or_else(|| panic!("{}: no error line in {text:?}", rt.name));
        let msg = last["msg"].as_str().expect("msg");
        // Clients map this wording to exit status 127.
        assert!(
            msg.contains("no such file or directory"),
            "{}: {msg}",
            rt.name
        );
        let _ = Command::new(&rt.bin)
            .arg("--root")
            .arg(&rt.root)
            .args(["delete", "--force", "log-test"])
            .status();
    }
}

/// SIGKILL to a created (never started) container stops it, as with runc
/// (containerd's `task delete -f` relies on it).
#[test]
fn kill_of_a_created_container() {
    let dir = TempDir::new("oci-killcreated");
    for rt in runtimes(&dir) {
        let (b, cfg) = bundle(&dir, rt.name, &["sleep", "30"]);
        write_config(&b, &cfg);
        let id = format!("kc-{}", std::process::id());
        assert!(
            ok(&rt, &["create", "--bundle", b.to_str().expect("utf8"), &id]),
            "{}",
            rt.name
        );
        assert!(ok(&rt, &["kill", &id, "9"]), "{}: kill", rt.name);
        wait_stopped(&rt, &id);
        assert!(ok(&rt, &["delete", &id]), "{}: delete", rt.name);
    }
}

/// /proc/self/mountinfo and /proc/mounts list the container's mounts in
/// order, with their read-only flag.
#[test]
fn mountinfo_lists_mounts_in_order() {
    let host = TempDir::new("oci-mi-host");
    let hp = host.path().to_path_buf();
    same(
        "mountinfo",
        &[
            "sh",
            "-c",
            "cut -d' ' -f5,6 /proc/self/mountinfo | cut -d, -f1; cut -d' ' -f2 /proc/mounts",
        ],
        move |c, _| {
            c["root"]["readonly"] = json!(true);
            let m = c["mounts"].as_array_mut().expect("mounts");
            m.push(json!({"destination": "/a", "type": "tmpfs", "source": "tmpfs"}));
            m.push(json!({"destination": "/a/b", "type": "bind", "source": hp, "options": ["rbind", "ro"]}));
        },
        Some("/ ro\n/proc rw\n/dev rw\n/a rw\n/a/b ro\n/\n/proc\n/dev\n/a\n/a/b\n"),
    );
}

/// linux.maskedPaths hide what exists (directories empty, files read as
/// /dev/null) and skip what does not; linux.readonlyPaths refuse writes.
#[test]
fn masked_and_readonly_paths() {
    same(
        "masked",
        &["sh", "-c", "ls /md; cat /mf; echo x > /mf && echo mf-writable; ls /nonexist 2>&1; touch /md/x 2>&1; touch /rd/y 2>&1; cat /rd/f; touch /other && echo other-writable"],
        |c, b| {
            std::fs::create_dir_all(b.join("rootfs/md")).expect("mkdir");
            std::fs::write(b.join("rootfs/md/secret"), "s\n").expect("w");
            std::fs::write(b.join("rootfs/mf"), "hidden\n").expect("w");
            std::fs::create_dir_all(b.join("rootfs/rd")).expect("mkdir");
            std::fs::write(b.join("rootfs/rd/f"), "visible\n").expect("w");
            c["linux"]["maskedPaths"] = json!(["/md", "/mf", "/nonexist"]);
            c["linux"]["readonlyPaths"] = json!(["/rd"]);
        },
        Some("mf-writable\nls: /nonexist: No such file or directory\ntouch: /md/x: Read-only file system\ntouch: /rd/y: Read-only file system\nvisible\nother-writable\n"),
    );
}

/// Root filesystem writes: `--overlay none` writes through to the host
/// rootfs as runc does; the default keeps them in the sandbox's memory.
#[test]
fn overlay_none_writes_through_like_runc() {
    let dir = TempDir::new("oci-overlay");
    let script = "echo out > /output; mkdir /newdir; echo f > /newdir/f; rm /bin/true";
    for (name, extra) in [
        ("runc", None),
        ("rvisor", Some("none")),
        ("rvisor-mem", Some("memory")),
    ] {
        let rt = &runtimes(&dir)[usize::from(name != "runc")];
        let (b, cfg) = bundle(&dir, name, &["sh", "-c", script]);
        write_config(&b, &cfg);
        let mut c = rt.cmd();
        if let Some(o) = extra {
            c.args(["--overlay", o]);
        }
        let st = c
            .args(["run", "--bundle"])
            .arg(&b)
            .arg(format!("ov-{name}-{}", std::process::id()))
            .stdin(Stdio::null())
            .status()
            .expect("run");
        assert!(st.success(), "{name}");
        let r = b.join("rootfs");
        let written = r.join("output").exists()
            && r.join("newdir/f").exists()
            && !r.join("bin/true").exists();
        let untouched =
            !r.join("output").exists() && !r.join("newdir").exists() && r.join("bin/true").exists();
        if name == "rvisor-mem" {
            assert!(untouched, "{name}: the host rootfs changed");
        } else {
            assert!(written, "{name}: writes did not reach the host rootfs");
            assert_eq!(
                std::fs::read_to_string(r.join("output")).expect("output"),
                "out\n"
            );
        }
    }
}

/// linux.devices: the nodes exist with their type, numbers and mode.
#[test]
fn linux_devices_are_created() {
    same(
        "devices",
        &["sh", "-c", "stat -c '%F %t:%T %a %u:%g' /dev/test1 /dev/sub/test2 /dev/null"],
        |c, _| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/test1", "type": "c", "major": 10, "minor": 229, "fileMode": 432, "uid": 0, "gid": 0},
                {"path": "/dev/sub/test2", "type": "b", "major": 8, "minor": 3, "fileMode": 384, "uid": 1, "gid": 2}
            ]);
        },
        Some("character special file a:e5 660 0:0\nblock special file 8:3 600 1:2\ncharacter special file 1:3 666 0:0\n"),
    );
}

/// chmod, chown, truncate and utimes in a writable bind mount change the
/// host file (and nothing is left behind in a sandbox-only copy).
#[test]
fn metadata_changes_reach_the_host_through_a_bind_mount() {
    let host = TempDir::new("oci-attr-host");
    let hp = host.path().to_path_buf();
    let out = same(
        "attrs",
        &["sh", "-c", "echo abc > /w/x-$$ && chmod 640 /w/x-$$ && chown 7:8 /w/x-$$ && truncate -s 2 /w/x-$$ && touch -d '2001-02-03 04:05:06' /w/x-$$ && echo more >> /w/x-$$ && stat -c '%a %u %g %s' /w/x-$$"],
        move |c, _| {
            c["mounts"].as_array_mut().expect("mounts").push(
                json!({"destination": "/w", "type": "bind", "source": hp, "options": ["rbind", "rw"]}),
            );
            // Setting times on a file one no longer owns needs CAP_FOWNER.
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .expect("caps")
                    .push(json!("CAP_FOWNER"));
            }
        },
        Some("640 7 8 7\n"),
    );
    assert_eq!(out, "640 7 8 7\n");
    // Both runtimes wrote x-1 (the shell is pid 1 in each); rvisor ran
    // second, so the host file is its work.
    let mut seen = 0;
    for e in std::fs::read_dir(host.path()).expect("read_dir").flatten() {
        use std::os::unix::fs::MetadataExt;
        let m = e.metadata().expect("metadata");
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid(), m.len()),
            (0o640, 7, 8, 7)
        );
        assert_eq!(std::fs::read(e.path()).expect("read"), b"abmore\n");
        seen += 1;
    }
    assert_eq!(seen, 1);
}

/// The cgroup mount shows the limits the sandbox enforces, in the cgroup
/// v2 layout (rvisor only: runc shows the host's own hierarchy).
#[test]
fn cgroup_filesystem_shows_the_limits() {
    let dir = TempDir::new("oci-cgroupfs");
    let rt = &runtimes(&dir)[1];
    let (b, mut cfg) = bundle(
        &dir,
        "cg",
        &[
            "sh",
            "-c",
            "cd /sys/fs/cgroup && cat memory.max pids.max cpu.max cgroup.controllers && ls",
        ],
    );
    cfg["mounts"].as_array_mut().expect("mounts").extend([
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}),
    ]);
    cfg["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"quota": 50000, "period": 100000}
    });
    write_config(&b, &cfg);
    let (out, err, code) = run(rt, &b, &format!("cg-{}", std::process::id()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "67108864\n50\n50000 100000\ncpu memory pids\ncgroup.controllers\ncgroup.procs\ncgroup.type\ncpu.max\nmemory.current\nmemory.max\nmemory.peak\npids.current\npids.max\n"
    );
}

/// A devpts mount: openpty gives /dev/pts/0 (mode 0620, gid 5) and ttyname
/// finds it through the mount.
#[test]
fn devpts_openpty() {
    let src = TempDir::new("devpts-src");
    let exe = rvisor_tests::compile_static_c(
        &src,
        "openpty",
        r#"
#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    int m, s; char n[64], t[64];
    if (openpty(&m, &s, n, 0, 0)) { perror("openpty"); return 1; }
    if (ttyname_r(s, t, sizeof t)) { perror("ttyname_r"); return 1; }
    struct stat st; stat(n, &st);
    printf("%s %s %o %d\n", n, strcmp(n, t) ? t : "same", st.st_mode & 07777, (int)st.st_gid);
    return 0;
}
"#,
    );
    same(
        "devpts",
        &["/bin/openpty"],
        |c, b| {
            std::fs::copy(&exe, b.join("rootfs/bin/openpty")).expect("copy openpty");
            c["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            }));
        },
        Some("/dev/pts/0 same 620 5\n"),
    );
}

#[test]
fn mqueue_mount() {
    // An OCI mqueue mount: a queue made with mq_open shows as a file there,
    // reading it gives the status line, rm removes the queue.
    let src = TempDir::new("mqueue-src");
    let exe = rvisor_tests::compile_static_c(
        &src,
        "mq",
        r#"
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
int main(void) {
    struct mq_attr a = {0, 4, 64, 0};
    mqd_t q = mq_open("/oci-queue", O_CREAT | O_RDWR, 0640, &a);
    if (q == (mqd_t)-1) { perror("mq_open"); return 1; }
    if (mq_send(q, "hello", 5, 3)) { perror("mq_send"); return 1; }
    return 0;
}
"#,
    );
    same(
        "mqueue",
        &[
            "sh",
            "-c",
            "/bin/mq && ls -l /dev/mqueue | tail -n 1 | awk '{print $1, $NF}'; cat /dev/mqueue/oci-queue; rm /dev/mqueue/oci-queue; ls /dev/mqueue | wc -l",
        ],
        |c, b| {
            std::fs::copy(&exe, b.join("rootfs/bin/mq")).expect("copy mq");
            c["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            }));
        },
        Some("-rw-r----- oci-queue\nQSIZE:5          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n0\n"),
    );
}

#[test]
fn annotations_in_state() {
    // config.json's annotations are part of the state JSON, as created and
    // after the container stopped.
    let dir = TempDir::new("oci-annot");
    let mut seen = Vec::new();
    for rt in runtimes(&dir) {
        let (b, mut cfg) = bundle(&dir, rt.name, &["true"]);
        cfg["annotations"] = json!({
            "org.example.key": "value",
            "io.kubernetes.cri.container-type": "container",
            "empty": ""
        });
        write_config(&b, &cfg);
        let id = format!("annot-{}", std::process::id());
        let n = rt.name;
        assert!(
            ok(&rt, &["create", "--bundle", b.to_str().expect("utf8"), &id]),
            "{n}: create"
        );
        let created = state(&rt, &id).expect("state");
        assert!(ok(&rt, &["start", &id]), "{n}: start");
        wait_stopped(&rt, &id);
        let stopped = state(&rt, &id).expect("state");
        assert!(ok(&rt, &["delete", &id]), "{n}: delete");
        assert_eq!(
            created["annotations"], stopped["annotations"],
            "{n}: annotations change with the status"
        );
        seen.push(created["annotations"].clone());
    }
    assert_eq!(seen[0], seen[1], "annotations: runc vs rvisor");
    assert_eq!(
        seen[1],
        json!({"org.example.key": "value", "io.kubernetes.cri.container-type": "container", "empty": ""})
    );

    // Without annotations neither runtime shows the field.
    let mut absent = Vec::new();
    for rt in runtimes(&dir) {
        let (b, cfg) = bundle(&dir, &format!("{}-none", rt.name), &["true"]);
        write_config(&b, &cfg);
        let id = format!("annot0-{}", std::process::id());
        assert!(ok(
            &rt,
            &["create", "--bundle", b.to_str().expect("utf8"), &id]
        ));
        let s = state(&rt, &id).expect("state");
        assert!(ok(&rt, &["delete", "--force", &id]));
        absent.push(s.get("annotations").cloned());
    }
    assert_eq!(absent[0], absent[1], "no annotations: runc vs rvisor");
}

#[test]
fn domainname() {
    // uname(2), getdomainname(2) and /proc/sys/kernel show the UTS names;
    // changing them needs CAP_SYS_ADMIN (not granted here): EPERM.
    let src = TempDir::new("domainname-src");
    let exe = rvisor_tests::compile_static_c(
        &src,
        "uts",
        r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(void) {
    struct utsname u;
    if (uname(&u)) { perror("uname"); return 1; }
    printf("%s %s\n", u.nodename, u.domainname);
    char d[65];
    if (getdomainname(d, sizeof d)) { perror("getdomainname"); return 1; }
    printf("%s\n", d);
    printf("%d %d\n", setdomainname("x", 1) ? errno : 0, sethostname("x", 1) ? errno : 0);
    return 0;
}
"#,
    );
    let argv = [
        "sh",
        "-c",
        "/bin/uts; cat /proc/sys/kernel/domainname /proc/sys/kernel/hostname",
    ];
    // No domainname in config.json: the kernel's default.
    same(
        "domainname-unset",
        &argv,
        |c, b| {
            std::fs::copy(&exe, b.join("rootfs/bin/uts")).expect("copy uts");
            c["hostname"] = json!("box-8");
        },
        Some("box-8 (none)\n(none)\n1 1\n(none)\nbox-8\n"),
    );
    // With one: the spec's value. runc applies it from 1.2 on; older runc
    // (Debian 12's 1.1.5) ignores the field and leaves "(none)", which is
    // the only difference accepted.
    let dir = TempDir::new("oci-domainname");
    let mut outs = Vec::new();
    for rt in runtimes(&dir) {
        let (b, mut cfg) = bundle(&dir, rt.name, &argv);
        std::fs::copy(&exe, b.join("rootfs/bin/uts")).expect("copy uts");
        cfg["hostname"] = json!("box-8");
        cfg["domainname"] = json!("example.org");
        write_config(&b, &cfg);
        let (out, err, code) = run(&rt, &b, &format!("dom-{}", std::process::id()));
        assert_eq!(code, 0, "{}: {err}", rt.name);
        outs.push(out);
    }
    let want = "box-8 example.org\nexample.org\n1 1\nexample.org\nbox-8\n";
    assert_eq!(outs[1], want, "rvisor: not what the spec says");
    assert!(
        outs[0] == want || outs[0] == want.replace("example.org", "(none)"),
        "runc and rvisor differ beyond runc 1.1's missing domainname support:\n{}",
        outs[0]
    );
}

#[test]
fn dev_shm_mount_as_docker_writes_it() {
    // Docker's /dev/shm: listed in /proc/mounts and mountinfo with its
    // flags and size, mode 1777, 64 MiB (df finds the mount, statfs says
    // so), writable by anyone; noexec refuses execve (EACCES) and
    // PROT_EXEC mappings (EPERM).
    let src = TempDir::new("devshm-src");
    let exe = rvisor_tests::compile_static_c(
        &src,
        "mapx",
        r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    void *r = mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    void *x = mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    printf("map r %s, rx %d\n", r == MAP_FAILED ? "failed" : "ok", x == MAP_FAILED ? errno : 0);
    return 0;
}
"#,
    );
    same(
        "devshm",
        &[
            "sh",
            "-c",
            "grep -E ' /dev(/shm)? ' /proc/mounts; grep ' /dev/shm ' /proc/self/mountinfo | cut -d' ' -f5,6,8-; stat -c '%a %U' /dev/shm; df -k /dev/shm | tail -n 1 | awk '{print $2}'; stat -f -c '%T %b %S' /dev/shm; su -s /bin/sh nobody -c 'echo data > /dev/shm/f' && cat /dev/shm/f && stat -c %U /dev/shm/f; cp /bin/busybox /dev/shm/true && (/dev/shm/true 2>/dev/null && echo exec || echo noexec); /bin/mapx /dev/shm/true; /bin/mapx /bin/busybox",
        ],
        |c, b| {
            std::fs::copy(&exe, b.join("rootfs/bin/mapx")).expect("copy mapx");
            std::fs::write(
                b.join("rootfs/etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
            )
            .expect("passwd");
            c["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            }));
        },
        Some("tmpfs /dev tmpfs rw,nosuid,relatime,size=65536k,mode=755 0 0\nshm /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k 0 0\n/dev/shm rw,nosuid,nodev,noexec,relatime tmpfs shm rw,size=65536k\n1777 root\n65536\ntmpfs 16384 4096\ndata\nnobody\nnoexec\nmap r ok, rx 1\nmap r ok, rx 0\n"),
    );
    // A small /dev/shm: writes stop at its size, rm gives the room back.
    same(
        "devshm-size",
        &[
            "sh",
            "-c",
            "head -c 100000 /dev/zero > /dev/shm/f 2>/dev/null || echo full; wc -c < /dev/shm/f; df -k /dev/shm | tail -n 1 | awk '{print $2, $3}'; rm /dev/shm/f; head -c 60000 /dev/zero > /dev/shm/g && wc -c < /dev/shm/g; : > /dev/shm/g; df -k /dev/shm | tail -n 1 | awk '{print $3}'",
        ],
        |c, _| {
            c["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=64k"]
            }));
        },
        Some("full\n65536\n64 64\n60000\n0\n"),
    );
}

/// The host processes a container's state pid leads: itself and every
/// descendant (rvisor: supervisor, gofer, sentry, stubs).
fn process_tree(pid: i64) -> Vec<i64> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        for task in std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let kids = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(
                kids.split_whitespace()
                    .filter_map(|k| k.parse::<i64>().ok()),
            );
        }
        i += 1;
    }
    out
}

/// Whether this (test) process holds CAP_SYS_RESOURCE: then runc sets
/// oomScoreAdj as a floor the container cannot go under without it.
fn host_has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|c| c & (1 << 24) != 0)
}

#[test]
fn oom_score_adj() {
    // process.oomScoreAdj: what the container reads, and how writes behave
    // (raise freely; lower only down to the floor, which is the configured
    // value when the runtime held CAP_SYS_RESOURCE, else the inherited 0;
    // -1000..1000 only; inherited by children).
    let script = "cat /proc/self/oom_score_adj; \
        for v in 600 550 100 ' 0x226 ' -1 1001 -1001 abc; do echo \"$v\" > /proc/self/oom_score_adj 2>/dev/null; echo \"$v: $? $(cat /proc/$$/oom_score_adj)\"; done; \
        sh -c 'cat /proc/$$/oom_score_adj'";
    let want = if host_has_cap_sys_resource() {
        "500\n600: 0 600\n550: 0 550\n100: 1 550\n 0x226 : 0 550\n-1: 1 550\n1001: 1 550\n-1001: 1 550\nabc: 1 550\n550\n"
    } else {
        "500\n600: 0 600\n550: 0 550\n100: 0 100\n 0x226 : 0 550\n-1: 1 550\n1001: 1 550\n-1001: 1 550\nabc: 1 550\n550\n"
    };
    same(
        "oom",
        &["sh", "-c", script],
        |c, _| c["process"]["oomScoreAdj"] = json!(500),
        Some(want),
    );
    // With CAP_SYS_RESOURCE in the container any value goes and the floor
    // follows each write (runc can only grant it when it holds it).
    let cap_argv = [
        "sh",
        "-c",
        "for v in -500 -400 -600 -1000; do echo $v > /proc/self/oom_score_adj; echo \"$v: $? $(cat /proc/$$/oom_score_adj)\"; done; su -s /bin/sh nobody -c 'echo -999 > /proc/self/oom_score_adj 2>/dev/null; echo $?; echo -900 > /proc/self/oom_score_adj; echo $?; cat /proc/self/oom_score_adj'",
    ];
    let cap_edit = |c: &mut Value, b: &Path| {
        std::fs::write(
            b.join("rootfs/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .expect("passwd");
        c["process"]["oomScoreAdj"] = json!(100);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .expect("caps")
                .push(json!("CAP_SYS_RESOURCE"));
        }
    };
    // nobody (no capabilities, its own 0644 file) inherits the value and
    // the floor -1000, so any value above it is allowed.
    let cap_want = "-500: 0 -500\n-400: 0 -400\n-600: 0 -600\n-1000: 0 -1000\n0\n0\n-900\n";
    if host_has_cap_sys_resource() {
        same("oom-cap", &cap_argv, cap_edit, Some(cap_want));
    } else {
        // runc cannot grant a capability it lacks: rvisor alone.
        let dir = TempDir::new("oci-oom-cap");
        let rt = runtimes(&dir).pop().expect("rvisor");
        let (b, mut cfg) = bundle(&dir, "b", &cap_argv);
        cap_edit(&mut cfg, &b);
        write_config(&b, &cfg);
        let (out, err, code) = run(&rt, &b, &format!("oomcap-{}", std::process::id()));
        assert_eq!((out.as_str(), code), (cap_want, 0), "{err}");
    }
    // Without oomScoreAdj: 0.
    same(
        "oom-unset",
        &["cat", "/proc/self/oom_score_adj"],
        |_, _| {},
        Some("0\n"),
    );

    // The host side: the state pid (runc's init, rvisor's supervisor) and,
    // for rvisor, every host process of the sandbox run with the value.
    let dir = TempDir::new("oci-oom");
    for rt in runtimes(&dir) {
        let (b, mut cfg) = bundle(&dir, rt.name, &["sleep", "30"]);
        cfg["process"]["oomScoreAdj"] = json!(321);
        write_config(&b, &cfg);
        let id = format!("oom-{}", std::process::id());
        assert!(
            ok(&rt, &["create", "--bundle", b.to_str().expect("utf8"), &id]),
            "{}: create",
            rt.name
        );
        let pid = state(&rt, &id).expect("state")["pid"]
            .as_i64()
            .expect("pid");
        let tree = process_tree(pid);
        let adjs: Vec<String> = tree
            .iter()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/oom_score_adj")).ok())
            .map(|s| s.trim().to_string())
            .collect();
        // A process exec'd into the container starts with the value too.
        assert!(ok(&rt, &["start", &id]), "{}: start", rt.name);
        let exec = rt
            .cmd()
            .args(["exec", &id, "cat", "/proc/self/oom_score_adj"])
            .output()
            .expect("exec");
        assert_eq!(
            String::from_utf8_lossy(&exec.stdout),
            "321\n",
            "{}: exec",
            rt.name
        );
        assert!(ok(&rt, &["delete", "--force", &id]), "{}: delete", rt.name);
        assert!(!adjs.is_empty(), "{}", rt.name);
        assert!(
            adjs.iter().all(|a| a == "321"),
            "{}: host processes {tree:?}: {adjs:?}",
            rt.name
        );
        if rt.name == "rvisor" {
            assert!(
                tree.len() >= 3,
                "rvisor: supervisor, gofer and sentry: {tree:?}"
            );
        }
    }
}

/// A console socket: listens at `path`; the returned thread accepts one
/// connection and returns the fd that came with its message (SCM_RIGHTS)
/// and the message text.
fn console_receiver(path: &Path) -> std::thread::JoinHandle<(std::os::fd::OwnedFd, String)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind console socket");
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept console connection");
        let mut data = [0u8; 4096];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // Room for one control message holding one fd (u64 for alignment).
        let mut control = [0u64; 8];
        // SAFETY: a zeroed msghdr is valid; the pointers set below outlive
        // the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: recvmsg into the buffers described by msg.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
        // SAFETY: walking the control buffer recvmsg filled, within
        // msg_controllen.
        let fd = unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            assert!(!c.is_null(), "no control message");
            assert_eq!(
                ((*c).cmsg_level, (*c).cmsg_type),
                (libc::SOL_SOCKET, libc::SCM_RIGHTS)
            );
            std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>())
        };
        // SAFETY: the fd just received is ours alone.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        (
            fd,
            String::from_utf8_lossy(&data[..n as usize]).into_owned(),
        )
    })
}

/// Everything read from a pty master until the replica side is gone
/// (EIO) or 20 s pass.
fn read_master(master: &std::os::fd::OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll of one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(1000) as i32) };
        if r == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: read into a local buffer of that length.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn terminal_with_console_socket() {
    // process.terminal: create --console-socket hands the pty master over
    // the socket; after start, the container's stdio is the replica (a tty
    // with a name under /dev/pts, its window size consoleSize), and its
    // output arrives on the master with ONLCR's CR LF.
    let dir = TempDir::new("oci-console");
    let script = "tty; stty size; for f in 0 1 2; do test -t $f && echo tty$f; done; \
        stty -a | grep -o -- '-\\?icanon' | head -n 1; echo done";
    let mut outs = Vec::new();
    for rt in runtimes(&dir) {
        let (b, mut cfg) = bundle(&dir, rt.name, &["sh", "-c", script]);
        cfg["process"]["terminal"] = json!(true);
        cfg["process"]["consoleSize"] = json!({"height": 25, "width": 100});
        cfg["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/dev/pts", "type": "devpts", "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        }));
        write_config(&b, &cfg);
        let sock = dir.join(&format!("{}-console.sock", rt.name));
        let rx = console_receiver(&sock);
        let id = format!("console-{}", std::process::id());
        let n = rt.name;
        assert!(
            ok(
                &rt,
                &[
                    "create",
                    "--bundle",
                    b.to_str().expect("utf8"),
                    "--console-socket",
                    sock.to_str().expect("utf8"),
                    &id
                ]
            ),
            "{n}: create"
        );
        let (master, _name) = rx.join().expect("console receiver");
        assert!(ok(&rt, &["start", &id]), "{n}: start");
        let out = read_master(&master);
        wait_stopped(&rt, &id);
        assert!(ok(&rt, &["delete", &id]), "{n}: delete");
        outs.push(out);
    }
    assert_eq!(outs[0], outs[1], "terminal: runc vs rvisor");
    assert!(
        outs[1].starts_with("/dev/pts/") && outs[1].contains("tty0\r\ntty1\r\ntty2\r\n"),
        "{}",
        outs[1]
    );
}
