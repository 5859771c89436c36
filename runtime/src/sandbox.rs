//! Starting a sandbox: the gofer process, and the sentry in fresh
//! user/pid/mount/ipc/uts/net namespaces mapped to an unprivileged host uid.

use crate::DoArgs;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// Host uid/gid the sentry runs as (outside its user namespace).
const SANDBOX_HOST_ID: u32 = 65534;

fn clear_cloexec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for the gofer")
}

/// Called first thing in `rvisor boot`: no new privileges, no core dumps.
pub fn harden_sentry() -> Result<()> {
    // SAFETY: plain prctl/setrlimit calls.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            bail!("PR_SET_NO_NEW_PRIVS: {}", std::io::Error::last_os_error());
        }
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
    Ok(())
}

fn write_file(path: &str, data: &str) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {path}"))
}

/// What to start: the gofer's served paths, the sandbox description, and
/// the optional control connection and debug log.
pub struct Launch {
    /// (host path, read-only); the first is the root filesystem.
    pub gofer_mounts: Vec<(PathBuf, bool)>,
    pub spec: sentry::spec::SandboxSpec,
    /// The sentry's end of the control connection.
    pub control: Option<OwnedFd>,
    pub log_file: Option<std::fs::File>,
    pub debug: bool,
}

pub struct Launched {
    pub sentry: nix::unistd::Pid,
    pub gofer: std::process::Child,
}

/// A sealed-size memfd holding `data`, readable from offset 0.
fn data_fd(name: &std::ffi::CStr, data: &[u8]) -> Result<OwnedFd> {
    use std::io::{Seek, Write};
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .context("memfd_create")?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data).context("writing the sandbox spec")?;
    f.rewind().context("rewinding the sandbox spec")?;
    Ok(OwnedFd::from(f))
}

/// Start the gofer and the sentry for `l`.
pub fn launch(l: Launch) -> Result<Launched> {
    let exe = std::fs::File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    let (sentry_end, gofer_end) = seqpacket_pair()?;
    let gofer_fd = gofer_end.as_raw_fd();
    let mut gofer = Command::new("/proc/self/exe");
    gofer
        .arg0("rvisor-gofer")
        .args(if l.debug { vec!["--debug"] } else { vec![] })
        .arg("gofer")
        .arg("--sock-fd")
        .arg(gofer_fd.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    for (path, ro) in &l.gofer_mounts {
        gofer.arg("--mount").arg(format!(
            "{}:{}",
            path.display(),
            if *ro { "ro" } else { "rw" }
        ));
    }
    // SAFETY: pre_exec runs in the forked child; fcntl and prctl are
    // async-signal-safe.
    unsafe {
        gofer.pre_exec(move || {
            // The gofer dies with whoever started the sandbox.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            clear_cloexec(gofer_fd)
        });
    }
    let gofer_child = gofer.spawn().context("starting the gofer")?;
    drop(gofer_end);

    let spec_json = serde_json::to_vec(&l.spec).context("encoding the sandbox spec")?;
    let spec_fd = data_fd(c"rvisor-spec", &spec_json)?;

    let mut argv: Vec<Vec<u8>> = vec![b"rvisor-sentry".to_vec()];
    if l.debug {
        argv.push(b"--debug".to_vec());
    }
    argv.push(b"boot".to_vec());
    argv.push(b"--gofer-fd".to_vec());
    argv.push(sentry_end.as_raw_fd().to_string().into_bytes());
    argv.push(b"--spec-fd".to_vec());
    argv.push(spec_fd.as_raw_fd().to_string().into_bytes());
    let mut keep = vec![sentry_end.as_raw_fd(), spec_fd.as_raw_fd()];
    if let Some(c) = &l.control {
        argv.push(b"--control-fd".to_vec());
        argv.push(c.as_raw_fd().to_string().into_bytes());
        keep.push(c.as_raw_fd());
    }
    let log_dup;
    if let Some(f) = &l.log_file {
        // The same file serves as the debug log and the syscall report.
        log_dup = f.try_clone().context("dup of the debug log")?;
        argv.push(b"--report-fd".to_vec());
        argv.push(f.as_raw_fd().to_string().into_bytes());
        argv.push(b"--log-fd".to_vec());
        argv.push(log_dup.as_raw_fd().to_string().into_bytes());
        keep.push(f.as_raw_fd());
        keep.push(log_dup.as_raw_fd());
    }
    let pid = spawn_sentry(&exe, &argv, &keep)?;
    Ok(Launched {
        sentry: pid,
        gofer: gofer_child,
    })
}

/// The mounts every sandbox gets when nothing else is asked for.
pub fn default_mounts() -> Vec<sentry::spec::MountSpec> {
    use sentry::spec::{MountKind, MountSpec};
    vec![
        MountSpec {
            dest: b"/dev".to_vec(),
            kind: MountKind::Devfs,
            readonly: false,
            fstype: String::new(),
            source: String::new(),
        },
        // devfs's /dev/mqueue, listed in the mount table as on a host.
        MountSpec {
            dest: b"/dev/mqueue".to_vec(),
            kind: MountKind::Empty {
                fstype: "mqueue".into(),
            },
            readonly: false,
            fstype: String::new(),
            source: String::new(),
        },
        MountSpec {
            dest: b"/proc".to_vec(),
            kind: MountKind::Proc,
            readonly: false,
            fstype: String::new(),
            source: String::new(),
        },
        MountSpec {
            dest: b"/sys".to_vec(),
            kind: MountKind::Sysfs,
            readonly: true,
            fstype: String::new(),
            source: String::new(),
        },
    ]
}

pub fn run_do(args: DoArgs, debug: bool) -> Result<i32> {
    let rootfs = std::fs::canonicalize(&args.rootfs)
        .with_context(|| format!("rootfs {}", args.rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("rootfs {} is not a directory", rootfs.display());
    }
    if !args.cwd.starts_with('/') {
        bail!("--cwd must be an absolute path: {}", args.cwd);
    }
    // Optional report/log file, opened by us (the sentry opens no host path).
    let log_file = match &args.debug_log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    let mut env: Vec<Vec<u8>> = Vec::new();
    let mut has_path = false;
    for e in &args.env {
        if !e.contains('=') {
            bail!("--env {e}: expected K=V");
        }
        has_path |= e.starts_with("PATH=");
        env.push(e.clone().into_bytes());
    }
    if !has_path {
        env.push(b"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec());
    }
    let spec = sentry::spec::SandboxSpec {
        process: sentry::spec::ProcessSpec {
            argv: args.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
            env,
            cwd: args.cwd.clone().into_bytes(),
            ..Default::default()
        },
        hostname: args.hostname.clone(),
        mounts: default_mounts(),
        pids_limit: args.pids_limit,
        ..Default::default()
    };
    let l = launch(Launch {
        gofer_mounts: vec![(rootfs, true)],
        spec,
        control: None,
        log_file,
        debug,
    })?;
    let mut gofer = l.gofer;
    let status = wait_exit(l.sentry);
    // The gofer exits when the sentry's end of the socket closes.
    let _ = gofer.wait();
    status
}

pub fn wait_exit(pid: nix::unistd::Pid) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => bail!("waiting for the sentry: {e}"),
        }
    }
}

/// Clone the sentry into new namespaces; it execs `rvisor boot` once the
/// parent has written its uid/gid maps.
fn spawn_sentry(exe: &std::fs::File, argv: &[Vec<u8>], keep: &[RawFd]) -> Result<nix::unistd::Pid> {
    use nix::sched::CloneFlags;
    let (rd, wr) = nix::unistd::pipe().context("pipe")?;
    let cargs: Vec<std::ffi::CString> = argv
        .iter()
        .map(|a| std::ffi::CString::new(a.clone()))
        .collect::<std::result::Result<_, _>>()
        .context("argument contains a NUL byte")?;
    // RVISOR_LOG (a tracing filter) is the only variable passed through.
    let log_env: Vec<std::ffi::CString> = std::env::var("RVISOR_LOG")
        .ok()
        .and_then(|v| std::ffi::CString::new(format!("RVISOR_LOG={v}")).ok())
        .into_iter()
        .collect();
    let exe_fd = exe.as_raw_fd();
    let rd_fd = rd.as_raw_fd();
    let keep = keep.to_vec();
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWNET;
    let mut stack = vec![0u8; 256 * 1024];
    let child = move || -> isize {
        // Wait for the uid/gid maps.
        let mut b = [0u8; 1];
        // SAFETY: reading one byte from our pipe.
        if unsafe { libc::read(rd_fd, b.as_mut_ptr() as *mut libc::c_void, 1) } != 1 {
            return 1;
        }
        // SAFETY: plain syscalls in the cloned child before exec.
        unsafe {
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                return 1;
            }
            // The sandbox dies with the runtime that started it (set after
            // the credential change, which would clear it).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() == 0 {
                // The runtime is already gone (we are in a new pid namespace,
                // so the parent shows as 0): nothing to run for.
            }
            for &fd in &keep {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
        }
        let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = log_env.iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: argv/envp are NUL-terminated arrays of C strings that live
        // until exec; exe_fd is open.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                exe_fd,
                c"".as_ptr(),
                ptrs.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        127
    };
    // SAFETY: the runtime is single-threaded here; the child only runs the
    // closure above (no locks shared with other threads).
    let pid = unsafe { nix::sched::clone(Box::new(child), &mut stack, flags, Some(libc::SIGCHLD)) }
        .context("clone of the sentry into new namespaces")?;
    drop(rd);
    let id = SANDBOX_HOST_ID;
    let maps = (|| -> Result<()> {
        write_file(&format!("/proc/{pid}/setgroups"), "deny")?;
        write_file(&format!("/proc/{pid}/uid_map"), &format!("0 {id} 1\n"))?;
        write_file(&format!("/proc/{pid}/gid_map"), &format!("0 {id} 1\n"))?;
        Ok(())
    })();
    if let Err(e) = maps {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    nix::unistd::write(&wr, b"x").context("releasing the sentry")?;
    Ok(pid)
}
