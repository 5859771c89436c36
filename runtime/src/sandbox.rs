//! Starting a sandbox: the gofer process, and the sentry in fresh
//! user/pid/mount/ipc/uts/net namespaces mapped to an unprivileged host uid.

use crate::DoArgs;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
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

fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
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

pub fn run_do(args: DoArgs, debug: bool) -> Result<i32> {
    let exe = std::fs::File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    let rootfs = std::fs::canonicalize(&args.rootfs)
        .with_context(|| format!("rootfs {}", args.rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("rootfs {} is not a directory", rootfs.display());
    }
    if !args.cwd.starts_with('/') {
        bail!("--cwd must be an absolute path: {}", args.cwd);
    }

    // The gofer.
    let (sentry_end, gofer_end) = seqpacket_pair()?;
    let gofer_fd = gofer_end.as_raw_fd();
    let mut gofer = Command::new("/proc/self/exe");
    gofer
        .arg0("rvisor-gofer")
        .args(if debug { vec!["--debug"] } else { vec![] })
        .arg("gofer")
        .arg("--sock-fd")
        .arg(gofer_fd.to_string())
        .arg("--mount")
        .arg(format!("{}:ro", rootfs.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // SAFETY: pre_exec runs in the forked child; fcntl is async-signal-safe.
    unsafe {
        gofer.pre_exec(move || clear_cloexec(gofer_fd));
    }
    let mut gofer_child = gofer.spawn().context("starting the gofer")?;
    drop(gofer_end);

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

    let mut argv: Vec<Vec<u8>> = vec![b"rvisor-sentry".to_vec()];
    if debug {
        argv.push(b"--debug".to_vec());
    }
    argv.push(b"boot".to_vec());
    argv.push(b"--gofer-fd".to_vec());
    argv.push(sentry_end.as_raw_fd().to_string().into_bytes());
    let mut keep = vec![sentry_end.as_raw_fd()];
    let log_dup;
    if let Some(f) = &log_file {
        // The same file serves as the debug log and the syscall report.
        log_dup = f.try_clone().context("dup of the debug log")?;
        argv.push(b"--report-fd".to_vec());
        argv.push(f.as_raw_fd().to_string().into_bytes());
        argv.push(b"--log-fd".to_vec());
        argv.push(log_dup.as_raw_fd().to_string().into_bytes());
        keep.push(f.as_raw_fd());
        keep.push(log_dup.as_raw_fd());
    }
    argv.push(b"--cwd".to_vec());
    argv.push(args.cwd.clone().into_bytes());
    argv.push(b"--pids-limit".to_vec());
    argv.push(args.pids_limit.to_string().into_bytes());
    argv.push(b"--hostname".to_vec());
    argv.push(args.hostname.clone().into_bytes());
    let mut has_path = false;
    for e in &args.env {
        if !e.contains('=') {
            bail!("--env {e}: expected K=V");
        }
        has_path |= e.starts_with("PATH=");
        argv.push(format!("--env={e}").into_bytes());
    }
    if !has_path {
        argv.push(
            b"--env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec(),
        );
    }
    argv.push(b"--".to_vec());
    for a in &args.command {
        argv.push(a.as_bytes().to_vec());
    }

    let pid = spawn_sentry(&exe, &argv, &keep)?;
    drop(sentry_end);
    drop(log_file);

    let status = wait_exit(pid);
    // The gofer exits when the sentry's end of the socket closes.
    let _ = gofer_child.wait();
    status
}

fn wait_exit(pid: nix::unistd::Pid) -> Result<i32> {
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
