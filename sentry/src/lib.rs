//! The sentry: rvisor's user-space Linux kernel.
//!
//! `boot` takes the gofer connection and the workload description, builds
//! the sandbox's kernel (memory file, platform, VFS), starts the init task
//! and runs it to completion. After boot the sentry opens no host path:
//! every file comes from the gofer.

pub mod abi;
pub mod control;
pub mod fs;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod platform;
pub mod seccomp;
pub mod signals;
pub mod spec;
pub mod syscalls;
pub mod vfs;

use abi::*;
use kernel::creds::Creds;
use kernel::process::OomScoreAdj;
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
    /// Inherited SOCK_SEQPACKET connection to the runtime (OCI containers).
    pub control_fd: Option<RawFd>,
    pub spec: spec::SandboxSpec,
    pub debug: bool,
    /// Where to write the unimplemented-syscall report (an inherited fd).
    pub report_fd: Option<RawFd>,
    /// `--overlay self`: an empty host file beside the rootfs (inherited)
    /// to keep the rootfs's upper-layer file data in.
    pub filestore_fd: Option<RawFd>,
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

fn host_file(owned: OwnedFd) -> Arc<File> {
    use std::os::fd::AsRawFd;
    let raw = owned.as_raw_fd();
    // SAFETY: isatty only inspects the fd.
    let tty = unsafe { libc::isatty(raw) } == 1;
    // SAFETY: F_GETFL only reads flags.
    let fl = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    let acc = if fl < 0 { O_RDWR } else { fl & O_ACCMODE };
    let regular = nix::sys::stat::fstat(raw)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
        .unwrap_or(false);
    File::new(
        None,
        FileKind::Host {
            fd: Arc::new(owned),
            tty,
            regular,
        },
        acc,
    )
}

/// The sentry's own stdio (and `extra` preserved fds after it),
/// duplicated, as the init's fds 0-2 (3..).
fn stdio_table(extra: u32) -> FdTable {
    let mut fds = FdTable::default();
    for fd in 0..3 + extra.min(1024) as i32 {
        // SAFETY: duplicating an inherited stdio fd; the dup is ours.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            continue;
        }
        // SAFETY: dup is a fresh fd we own.
        let owned = unsafe { OwnedFd::from_raw_fd(dup) };
        fds.put(fd, host_file(owned), false);
    }
    fds
}

/// Host fds received from the runtime as a process's fds 0-2.
pub fn stdio_from(stdio: [OwnedFd; 3]) -> FdTable {
    let mut fds = FdTable::default();
    for (i, fd) in stdio.into_iter().enumerate() {
        fds.put(i as i32, host_file(fd), false);
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

/// Make every directory of `path` (mkdir -p in the sandbox's tree, in
/// memory), following mounts; the last component is a directory when
/// `dir`, else an empty file.
fn ensure_path(root: &Arc<Dentry>, path: &[u8], dir: bool, t: &Task) -> Arc<Dentry> {
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    let mut cur = root.follow_mounts();
    for (i, name) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let want_dir = !last || dir;
        if *name == b".." {
            cur = cur.parent.clone().unwrap_or(cur).follow_mounts();
            continue;
        }
        let next = match cur.lookup(name, t) {
            Ok(d) if d.meta().is_dir() == want_dir => {
                // Synthetic (procfs, sysfs) dentries are made per lookup:
                // pin the one a mount goes on.
                if matches!(cur.fs, FsType::Proc | FsType::Sys) {
                    vfs::lock(&cur.children).insert(name.to_vec(), Some(d.clone()));
                }
                d
            }
            _ => {
                let (mode, node) = if want_dir {
                    (S_IFDIR | 0o755, Node::MemDir)
                } else {
                    (S_IFREG | 0o644, Node::Mem(Mutex::new(Vec::new())))
                };
                cur.add_child(name, Inode::new(node, Meta::new(mode, vfs::MEM_DEV, 0, 0)))
            }
        };
        cur = next.follow_mounts();
    }
    // The mount goes on top of whatever is already mounted there.
    cur
}

/// List a mount in the mount table with config.json's type and source,
/// or the defaults of its kind.
fn record(k: &Kernel, m: &spec::MountSpec, ty: &str, source: &str) {
    let ty = if m.fstype.is_empty() { ty } else { &m.fstype };
    let src = if m.source.is_empty() {
        source
    } else {
        &m.source
    };
    k.record_mount(&m.dest, ty, src, m.readonly);
    k.set_mount_options(&m.dest, m.flags.show(), m.data.clone());
}

/// A gofer root (host file or directory) at `m.dest`. Writable binds write
/// through to the host; read-only ones refuse writes (EROFS).
fn mount_bind(
    k: &Kernel,
    root: &Arc<Dentry>,
    m: &spec::MountSpec,
    index: u32,
    t: &Task,
) -> Result<(), BootError> {
    let (node, st) = k.gofer.attach(index).map_err(BootError::Gofer)?;
    let meta = Meta::from_gofer(&st);
    let at = ensure_path(root, &m.dest, meta.is_dir(), t);
    let inode = Inode::new(
        Node::Lower(LowerNode {
            node,
            gofer: k.gofer.clone(),
            host_fd: OnceLock::new(),
        }),
        meta,
    );
    let fs = if m.readonly {
        FsType::Overlay
    } else {
        FsType::Bind
    };
    let r = Dentry::new_mount_root(inode, fs, Some(at.clone()), m.readonly);
    r.set_mount_flags(m.flags.noexec, m.flags.nodev);
    mount(&at, r);
    let ty = if m.fstype.is_empty() {
        "none"
    } else {
        &m.fstype
    };
    // The bind's source shows as the mount's root in mountinfo.
    k.record_mount_at(&m.dest, ty, &m.source, &m.source, m.readonly);
    k.set_mount_options(&m.dest, m.flags.show(), m.data.clone());
    Ok(())
}

/// linux.maskedPaths / readonlyPaths: only paths that exist are covered.
/// A masked directory becomes an empty read-only one, a masked file
/// /dev/null; a read-only path is the same inode seen read-only.
fn mount_over_existing(k: &Kernel, root: &Arc<Dentry>, m: &spec::MountSpec, t: &Task) {
    let Ok(existing) = vfs::path::Walker::new(t).walk(root, &m.dest, false) else {
        return;
    };
    let is_dir = existing.meta().is_dir();
    let at = ensure_path(root, &m.dest, is_dir, t);
    let masked = matches!(m.kind, spec::MountKind::Mask);
    let (inode, fs, ro, ty) = match (masked, is_dir) {
        (true, true) => (
            Inode::new(Node::MemDir, Meta::new(S_IFDIR | 0o755, vfs::MEM_DEV, 0, 0)),
            FsType::Tmpfs,
            true,
            "tmpfs",
        ),
        (true, false) => (
            Inode::new(
                Node::Dev(fs::dev::DevKind::Null),
                Meta::new(S_IFCHR | 0o666, vfs::DEV_DEV, 0, 0),
            ),
            FsType::Dev,
            false,
            "bind",
        ),
        (false, _) => (at.inode(), at.fs, true, "bind"),
    };
    mount(&at, Dentry::new_mount_root(inode, fs, Some(at.clone()), ro));
    k.record_mount(&m.dest, ty, ty, ro);
}

/// An empty read-only directory for a filesystem the sentry does not
/// implement yet; devpts is the sandbox's devpts instance.
fn empty_fs(at: &Arc<Dentry>, fstype: &str) -> Arc<Dentry> {
    if fstype == "devpts" {
        return fs::pty::build_devpts(at);
    }
    Dentry::new_mount_root(
        Inode::new(Node::MemDir, Meta::new(S_IFDIR | 0o755, vfs::MEM_DEV, 0, 0)),
        FsType::Tmpfs,
        Some(at.clone()),
        true,
    )
}

/// Build the sandbox's mount table on top of the root.
fn setup_mounts(
    k: &Kernel,
    root: &Arc<Dentry>,
    mounts: &[spec::MountSpec],
    t: &Task,
) -> Result<(), BootError> {
    use spec::MountKind;
    let has_dev = mounts
        .iter()
        .any(|m| matches!(m.kind, MountKind::Devfs) && m.dest == b"/dev");
    if !has_dev {
        let dev = ensure_dir(root, b"dev", t);
        mount(&dev, fs::dev::build(&dev));
        k.record_mount(b"/dev", "tmpfs", "tmpfs", false);
    }
    for m in mounts {
        match &m.kind {
            // /dev/shm stays a devfs directory (its files live in the memory
            // file, so they can be shared-mapped), now the root of its own
            // mount with the tmpfs's mode, size and flags.
            MountKind::Tmpfs {
                mode,
                size,
                nr_inodes,
            } if m.dest == b"/dev/shm" => {
                let at = ensure_path(root, &m.dest, true, t);
                let r = Dentry::new_mount_root(
                    Inode::new(
                        Node::MemDir,
                        Meta::new(S_IFDIR | (mode & 0o7777), vfs::SHM_DEV, 0, 0),
                    ),
                    FsType::Dev,
                    Some(at.clone()),
                    m.readonly,
                );
                let mem = k.memory_limit.load(std::sync::atomic::Ordering::Relaxed);
                fs::tmpfs::register(&r, *size, *nr_inodes, mem);
                r.set_mount_flags(m.flags.noexec, m.flags.nodev);
                mount(&at, r);
                record(k, m, "tmpfs", "tmpfs");
            }
            MountKind::Bind { index } => mount_bind(k, root, m, *index, t)?,
            MountKind::Mask | MountKind::ReadonlyView => mount_over_existing(k, root, m, t),
            kind => {
                let at = ensure_path(root, &m.dest, true, t);
                let (r, ty) = match kind {
                    MountKind::Tmpfs {
                        mode,
                        size,
                        nr_inodes,
                    } => {
                        let root = Dentry::new_mount_root(
                            Inode::new(
                                Node::MemDir,
                                Meta::new(S_IFDIR | (mode & 0o7777), vfs::MEM_DEV, 0, 0),
                            ),
                            FsType::Tmpfs,
                            Some(at.clone()),
                            m.readonly,
                        );
                        let mem = k.memory_limit.load(std::sync::atomic::Ordering::Relaxed);
                        fs::tmpfs::register(&root, *size, *nr_inodes, mem);
                        (root, "tmpfs")
                    }
                    MountKind::Proc => (fs::proc::build_proc(&at), "proc"),
                    MountKind::Sysfs => (fs::proc::build_sys(&at), "sysfs"),
                    MountKind::Empty { fstype } if fstype == "cgroup" || fstype == "cgroup2" => {
                        (fs::proc::build_cgroup(&at), fstype.as_str())
                    }
                    MountKind::Empty { fstype } if fstype == "mqueue" => {
                        (fs::mqueue::mount_root(&at, m.readonly), "mqueue")
                    }
                    MountKind::Empty { fstype } => (empty_fs(&at, fstype), fstype.as_str()),
                    // Devfs (the remaining kind).
                    _ => (fs::dev::build(&at), "tmpfs"),
                };
                r.set_mount_flags(m.flags.noexec, m.flags.nodev);
                mount(&at, r);
                record(k, m, ty, ty);
            }
        }
    }
    Ok(())
}

/// Set up a new session-leading process for `p` and load its program.
/// On failure: the message a shell would print and its exit status.
pub fn start_process(
    k: &Arc<Kernel>,
    p: &spec::ProcessSpec,
    fds: FdTable,
    debug: bool,
) -> Result<Task, (String, i32)> {
    let mut t = new_process(k, p, fds, debug)?;
    // `exec --tty`: the host terminal becomes a sandbox pty for it too.
    let console = fs::console::bridge(&t);
    if let Err(e) = load_program(k, &mut t, p) {
        if let Some(c) = console {
            c.finish();
        }
        return Err(e);
    }
    if let Some(c) = console {
        fs::console::keep(t.tgid, c);
    }
    Ok(t)
}

/// A new session-leading process with `p`'s credentials and limits.
fn new_process(
    k: &Arc<Kernel>,
    p: &spec::ProcessSpec,
    fds: FdTable,
    debug: bool,
) -> Result<Task, (String, i32)> {
    let mut creds = Creds::new(p.uid, p.gid);
    creds.groups = p.groups.clone();
    if let Some(c) = p.caps {
        creds.cap_bounding = c.bounding;
        creds.cap_effective = c.effective;
        creds.cap_permitted = c.permitted;
        creds.cap_inheritable = c.inheritable;
        creds.cap_ambient = c.ambient;
    }
    creds.no_new_privs = p.no_new_privs;
    let mut t = Task::new_init(k.clone(), fds, k.root.clone(), creds)
        .map_err(|e| (format!("cannot start a task: errno {}", e.0), 126))?;
    t.debug = debug;
    {
        let mut rl = vfs::lock(&t.proc_().rlimits);
        for &(res, cur, max) in &p.rlimits {
            if let Some(r) = rl.get_mut(res as usize) {
                *r = Rlimit { cur, max };
            }
        }
    }
    if let Some(m) = p.umask {
        vfs::lock(&t.info.fs).umask = m & 0o777;
    }
    // As the runtime set it on the sandbox's host processes.
    use std::sync::atomic::Ordering::Relaxed;
    let value = p
        .oom_score_adj
        .unwrap_or_else(|| k.oom_score_adj.load(Relaxed))
        .clamp(OomScoreAdj::MIN, OomScoreAdj::MAX);
    let min = p
        .oom_score_adj_min
        .unwrap_or_else(|| k.oom_score_adj_min.load(Relaxed))
        .min(value);
    *vfs::lock(&t.proc_().oom) = OomScoreAdj { value, min };
    Ok(t)
}

/// Enter `p`'s working directory and exec its program.
fn load_program(k: &Kernel, t: &mut Task, p: &spec::ProcessSpec) -> Result<(), (String, i32)> {
    let t = &mut *t;
    match vfs::path::Walker::new(t).walk(&k.root, &p.cwd, true) {
        Ok(d) if d.meta().is_dir() => vfs::lock(&t.info.fs).cwd = d,
        _ => {
            return Err((
                format!(
                    "cannot change directory to {}: No such file or directory",
                    String::from_utf8_lossy(&p.cwd)
                ),
                127,
            ))
        }
    }
    let name = p.argv.first().cloned().unwrap_or_default();
    let shown = String::from_utf8_lossy(&name).to_string();
    let path = match find_program(t, &name, &p.env) {
        Ok(path) => path,
        Err(Errno::ENOENT) => return Err((format!("{shown}: command not found"), 127)),
        Err(_) => return Err((format!("{shown}: Permission denied"), 126)),
    };
    if let Err(e) = loader::resolve(t, &path, None, p.argv.clone())
        .and_then(|exe| kernel::exec::execve(t, exe, p.env.clone()))
    {
        let (msg, code) = match e {
            Errno::ENOENT => ("No such file or directory", 127),
            Errno::EACCES => {
                let is_dir = vfs::path::Walker::new(t)
                    .walk(&t.cwd(), &path, true)
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
        return Err((format!("{shown}: {msg}"), code));
    }
    Ok(())
}

/// Boot the sandbox and run its init to completion; returns the exit code
/// a shell would report.
pub fn boot(cfg: BootConfig) -> Result<i32, BootError> {
    let spec = &cfg.spec;
    let mf = Arc::new(mm::memfile::MemoryFile::new().map_err(BootError::MemoryFile)?);
    if let Some(fd) = cfg.filestore_fd {
        // SAFETY: the runtime passed us this fd to own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        mf.set_filestore(fd).map_err(BootError::MemoryFile)?;
    }
    let plat = platform::ptrace::PtracePlatform::new(mf.clone())?;
    // SAFETY: the runtime passed us this fd to own.
    let sock = unsafe { OwnedFd::from_raw_fd(cfg.gofer_fd) };
    let control = cfg.control_fd.map(|fd| {
        // SAFETY: the runtime passed us this fd to own.
        Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })
    });
    let gofer = Arc::new(gofer::client::Client::new(sock).map_err(BootError::Gofer)?);
    let (root_node, root_stat) = gofer.attach(0).map_err(BootError::Gofer)?;
    let root = Dentry::new_mount_root(
        Inode::new(
            Node::Lower(LowerNode {
                node: root_node,
                gofer: gofer.clone(),
                host_fd: OnceLock::new(),
            }),
            Meta::from_gofer(&root_stat),
        ),
        if spec.root_passthrough && !spec.root_readonly {
            FsType::Bind
        } else {
            FsType::Overlay
        },
        None,
        spec.root_readonly,
    );
    let mut kern = Kernel::new(mf, Box::new(plat), gofer, root.clone(), &spec.hostname);
    if let Some(m) = spec.memory_limit {
        // sysinfo and /proc/meminfo show the limit as the machine's memory.
        kern.mem_limit = kern.mem_limit.min(m);
    }
    vfs::set_mem_file_cap(kern.mem_limit, spec.memory_limit);
    vfs::set_memory_file(&kern.mf);
    kern.pids_limit
        .store(spec.pids_limit.max(1), std::sync::atomic::Ordering::Relaxed);
    if let Some(m) = spec.memory_limit {
        kern.memory_limit
            .store(m, std::sync::atomic::Ordering::Relaxed);
    }
    *vfs::lock(&kern.cpu_max) = spec.cpu_max;
    if let Some(adj) = spec.process.oom_score_adj {
        kern.oom_score_adj
            .store(adj, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(min) = spec.process.oom_score_adj_min {
        kern.oom_score_adj_min
            .store(min, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(root_mount) = vfs::lock(&kern.mounts).first_mut() {
        root_mount.readonly = spec.root_readonly;
    }
    if let Some(d) = &spec.domainname {
        *vfs::lock(&kern.domainname) = d.as_bytes().to_vec();
    }
    let k = Arc::new(kern);
    // From here on the sentry can reach the host only through its
    // allow-list: no open, no exec, no sockets. Every stub (the init's
    // included) is forked after this and inherits filter and empty caps.
    seccomp::drop_capabilities().map_err(|e| BootError::Seccomp(e.into()))?;
    seccomp::install(cfg.debug).map_err(BootError::Seccomp)?;

    let report = |k: &Kernel| {
        if REPORTED.set(()).is_err() {
            return;
        }
        if k.gofer.is_failed() {
            // The sandbox ran on without its files: say so, whatever the
            // log settings.
            eprintln!(
                "rvisor: the connection to the gofer was lost; file operations failed with EIO"
            );
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
    let fail = |k: &Kernel, message: String, code: i32| -> Result<i32, BootError> {
        match &control {
            Some(c) => {
                use std::os::fd::AsFd;
                let _ = control::send(c.as_fd(), &control::Reply::Failed { message, code });
            }
            None => eprintln!("rvisor: {message}"),
        }
        report(k);
        Ok(code)
    };

    if spec.memory_limit.is_some() {
        kernel::start_memory_monitor(k.clone());
    }
    let (mut init, console) = match start_init(&k, &root, spec, cfg.debug) {
        Ok(t) => t,
        Err((m, c)) => return fail(&k, m, c),
    };

    if let Some(c) = &control {
        use std::os::fd::AsFd;
        let _ = control::send(c.as_fd(), &control::Reply::Ready);
        let (tx, rx) = std::sync::mpsc::channel();
        let (k2, c2, debug) = (k.clone(), c.clone(), cfg.debug);
        let served = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || control::serve(k2, c2, tx, debug));
        if served.is_err() {
            return fail(&k, "cannot start the control thread".into(), 125);
        }
        if spec.wait_for_start && rx.recv().is_err() {
            // The runtime went away before starting the container.
            tracing::debug!("control channel closed before start");
            return Ok(137);
        }
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
    // Stores through shared mappings of host files reach them.
    vfs::write_back_all();
    if let Some(c) = console {
        c.finish();
    }
    report(&k);
    Ok(status.shell_code())
}

/// The init: a task (pid 1), the mount table built with it, then its
/// program loaded.
fn start_init(
    k: &Arc<Kernel>,
    root: &Arc<Dentry>,
    spec: &spec::SandboxSpec,
    debug: bool,
) -> Result<(Task, Option<fs::console::Console>), (String, i32)> {
    let mut t = new_process(k, &spec.process, stdio_table(spec.preserve_fds), debug)?;
    setup_mounts(k, root, &spec.mounts, &t).map_err(|e| (format!("mounts: {e}"), 125))?;
    for d in &spec.devices {
        let (parent, name) = match d.path.iter().rposition(|&c| c == b'/') {
            Some(i) => (&d.path[..i], &d.path[i + 1..]),
            None => continue,
        };
        if name.is_empty() {
            continue;
        }
        let dir = ensure_path(root, parent, true, &t);
        let kind = fs::dev::DevKind::known(d.major, d.minor)
            .filter(|_| !d.block)
            .unwrap_or(fs::dev::DevKind::Other {
                block: d.block,
                rdev: (d.major << 8) | d.minor,
            });
        let inode = fs::dev::dev_inode(kind);
        {
            let mut m = vfs::lock(&inode.meta);
            m.mode = (m.mode & S_IFMT) | (d.mode & 0o7777);
            m.uid = d.uid;
            m.gid = d.gid;
        }
        dir.add_child(name, inode);
    }
    // A host terminal on stdio becomes a pty of the sandbox's own.
    let console = fs::console::bridge(&t);
    load_program(k, &mut t, &spec.process)?;
    Ok((t, console))
}
