//! The sentry: rvisor's user-space Linux kernel.
//!
//! `boot` takes the gofer connection and the workload description, builds
//! the sandbox's kernel (memory file, platform, VFS), starts the init task
//! and runs it to completion. After boot the sentry opens no host path:
//! every file comes from the gofer.

pub mod abi;
pub mod fs;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod platform;
pub mod seccomp;
pub mod signals;
pub mod syscalls;
pub mod vfs;

use abi::*;
use kernel::creds::Creds;
use kernel::task::Task;
use kernel::Kernel;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};
use vfs::file::{FdTable, File, FileKind};
use vfs::{Dentry, FsType, Inode, LowerNode, Meta, Node};

/// What the runtime hands to `rvisor boot`.
#[derive(Debug, Clone)]
pub struct BootConfig {
    /// Inherited SOCK_SEQPACKET connection to the gofer.
    pub gofer_fd: RawFd,
    pub argv: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub hostname: String,
    pub uid: u32,
    pub gid: u32,
    pub debug: bool,
    /// Where to write the unimplemented-syscall report (an inherited fd).
    pub report_fd: Option<RawFd>,
    /// Most tasks (threads) the sandbox may run at once.
    pub pids_limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("memory file: {0}")]
    MemoryFile(std::io::Error),
    #[error("platform: {0}")]
    Platform(#[from] platform::PlatformError),
    #[error("gofer: errno {0}")]
    Gofer(i32),
    #[error("init task: {0}")]
    Task(Errno),
    #[error("{0}")]
    Seccomp(seccomp::SeccompError),
}

fn ensure_dir(root: &Arc<Dentry>, name: &[u8], t: &Task) -> Arc<Dentry> {
    match root.lookup(name, t) {
        Ok(d) if d.meta().is_dir() => d,
        _ => root.add_child(
            name,
            Inode::new(Node::MemDir, Meta::new(S_IFDIR | 0o755, vfs::MEM_DEV, 0, 0)),
        ),
    }
}

fn mount(at: &Arc<Dentry>, fs_root: Arc<Dentry>) {
    *vfs::lock(&at.mounted) = Some(fs_root);
}

fn stdio_table() -> FdTable {
    let mut fds = FdTable::default();
    for fd in 0..3 {
        // SAFETY: duplicating an inherited stdio fd; the dup is ours.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            continue;
        }
        // SAFETY: dup is a fresh fd we own.
        let owned = unsafe { OwnedFd::from_raw_fd(dup) };
        // SAFETY: isatty only inspects the fd.
        let tty = unsafe { libc::isatty(dup) } == 1;
        // SAFETY: F_GETFL only reads flags.
        let fl = unsafe { libc::fcntl(dup, libc::F_GETFL) };
        let acc = if fl < 0 { O_RDWR } else { fl & O_ACCMODE };
        let file = File::new(
            None,
            FileKind::Host {
                fd: Arc::new(owned),
                tty,
            },
            acc,
        );
        fds.put(fd, file, false);
    }
    fds
}

/// Find `name` in the sandbox's PATH (as execvp would).
fn find_program(t: &Task, name: &[u8], env: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
    if name.contains(&b'/') {
        return Ok(name.to_vec());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .unwrap_or(b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = false;
    for dir in path.split(|&b| b == b':') {
        let mut cand = if dir.is_empty() {
            b".".to_vec()
        } else {
            dir.to_vec()
        };
        cand.push(b'/');
        cand.extend_from_slice(name);
        match vfs::path::Walker::new(t).walk(&t.cwd(), &cand, true) {
            Ok(d) => {
                let m = d.meta();
                if m.is_reg() && t.may_access(&m, 1).is_ok() {
                    return Ok(cand);
                }
                denied = true;
            }
            Err(_) => continue,
        }
    }
    Err(if denied { Errno::EACCES } else { Errno::ENOENT })
}

static REPORTED: OnceLock<()> = OnceLock::new();

/// Boot the sandbox and run its init to completion; returns the exit code
/// a shell would report.
pub fn boot(cfg: BootConfig) -> Result<i32, BootError> {
    let mf = Arc::new(mm::memfile::MemoryFile::new().map_err(BootError::MemoryFile)?);
    let plat = platform::ptrace::PtracePlatform::new(mf.clone())?;
    // SAFETY: the runtime passed us this fd to own.
    let sock = unsafe { OwnedFd::from_raw_fd(cfg.gofer_fd) };
    let gofer = Arc::new(gofer::client::Client::new(sock).map_err(BootError::Gofer)?);
    let (root_node, root_stat) = gofer.attach(0).map_err(BootError::Gofer)?;
    let root = Dentry::new_root(
        Inode::new(
            Node::Lower(LowerNode {
                node: root_node,
                gofer: gofer.clone(),
                host_fd: OnceLock::new(),
            }),
            Meta::from_gofer(&root_stat),
        ),
        FsType::Overlay,
        None,
    );
    let mut kern = Kernel::new(mf, Box::new(plat), gofer, root.clone(), &cfg.hostname);
    kern.pids_limit = cfg.pids_limit.max(1);
    let k = Arc::new(kern);
    // From here on the sentry can reach the host only through its
    // allow-list: no open, no exec, no sockets. Every stub (the init's
    // included) is forked after this and inherits filter and empty caps.
    seccomp::drop_capabilities().map_err(|e| BootError::Seccomp(e.into()))?;
    seccomp::install(cfg.debug).map_err(BootError::Seccomp)?;
    let creds = Creds::new(cfg.uid, cfg.gid);
    let mut init =
        Task::new_init(k.clone(), stdio_table(), root.clone(), creds).map_err(BootError::Task)?;
    init.debug = cfg.debug;

    // The sandbox's own /dev, /proc and /sys shadow the rootfs's.
    let dev = ensure_dir(&root, b"dev", &init);
    mount(&dev, fs::dev::build(&dev));
    let proc_ = ensure_dir(&root, b"proc", &init);
    mount(&proc_, fs::proc::build_proc(&proc_));
    let sys = ensure_dir(&root, b"sys", &init);
    mount(&sys, fs::proc::build_sys(&sys));
    let tmp = ensure_dir(&root, b"tmp", &init);
    let _ = tmp;

    let report = |k: &Kernel| {
        if REPORTED.set(()).is_err() {
            return;
        }
        let lines = k.unimplemented_report();
        if let Some(fd) = cfg.report_fd {
            // SAFETY: an inherited fd the runtime opened for this report.
            let f = unsafe { std::fs::File::from_raw_fd(fd) };
            use std::io::Write;
            let mut f = std::io::BufWriter::new(f);
            for l in &lines {
                let _ = writeln!(f, "{l}");
            }
        } else if cfg.debug {
            for l in &lines {
                eprintln!("rvisor: {l}");
            }
        }
    };

    // Working directory.
    match vfs::path::Walker::new(&init).walk(&root, &cfg.cwd, true) {
        Ok(d) if d.meta().is_dir() => vfs::lock(&init.info.fs).cwd = d,
        _ => {
            eprintln!(
                "rvisor: cannot change directory to {}: No such file or directory",
                String::from_utf8_lossy(&cfg.cwd)
            );
            return Ok(127);
        }
    }

    let name = cfg.argv.first().cloned().unwrap_or_default();
    let shown = String::from_utf8_lossy(&name).to_string();
    let path = match find_program(&init, &name, &cfg.env) {
        Ok(p) => p,
        Err(e) => {
            if e == Errno::ENOENT {
                eprintln!("rvisor: {shown}: command not found");
                report(&k);
                return Ok(127);
            }
            eprintln!("rvisor: {shown}: Permission denied");
            report(&k);
            return Ok(126);
        }
    };
    let started = loader::resolve(&init, &path, None, cfg.argv.clone())
        .and_then(|exe| kernel::exec::execve(&mut init, exe, cfg.env.clone()));
    if let Err(e) = started {
        let (msg, code) = match e {
            Errno::ENOENT => ("No such file or directory", 127),
            Errno::EACCES => {
                let is_dir = vfs::path::Walker::new(&init)
                    .walk(&init.cwd(), &path, true)
                    .map(|d| d.meta().is_dir())
                    .unwrap_or(false);
                (
                    if is_dir {
                        "Is a directory"
                    } else {
                        "Permission denied"
                    },
                    126,
                )
            }
            Errno::ENOEXEC => ("cannot execute binary file: Exec format error", 126),
            Errno::ELOOP => ("Too many levels of symbolic links", 126),
            Errno::ENOMEM => ("Cannot allocate memory", 126),
            _ => ("cannot execute", 126),
        };
        eprintln!("rvisor: {shown}: {msg}");
        report(&k);
        return Ok(code);
    }
    // The init thread may end before its process does (execve from another
    // thread takes over the leader): wait for the process.
    let _ = init.run();
    drop(init);
    let status = {
        let mut g = vfs::lock(&k.init_exit);
        while g.is_none() {
            g = k.init_exit_cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g.unwrap_or(kernel::task::ExitStatus::Signaled(9))
    };
    tracing::debug!(?status, "init exited");
    report(&k);
    let _ = Mutex::new(());
    Ok(status.shell_code())
}
