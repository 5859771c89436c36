//! Starting a sandbox: the gofer, in its own pid namespace and (by default)
//! a user namespace of its own, and the sentry in fresh
//! user/pid/mount/ipc/uts/net namespaces mapped to an unprivileged host uid.

use crate::DoArgs;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Host uid/gid the sentry runs as (outside its user namespace).
const SANDBOX_HOST_ID: u32 = 65534;

/// The gofer's user namespace (`--gofer-idmap`): which host uids and gids
/// its ids 0.. stand for. Its capabilities act only on files whose owner
/// and group are mapped; the served roots are idmapped mounts through the
/// same map where the file system allows it, so that owners on disk are
/// mapped whatever the host ids (see docs/SECURITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoferIds {
    /// No user namespace: the gofer stays host root in the host's user
    /// namespace (still in its own pid, mount, net, IPC, UTS namespaces).
    Host,
    /// The default: ids from 0 are host ids from 65534 (nobody), through
    /// idmapped mounts; if a served root cannot be idmapped, every host id
    /// mapped to itself instead.
    Nobody,
    /// A user namespace whose ids `0..count` are host ids `host..host+count`
    /// (uids and gids alike); the gofer is its uid/gid 0.
    Map { host: u32, count: u32 },
}

/// Host uid/gid that the gofer's root is by default.
const NOBODY: u32 = 65534;

impl GoferIds {
    /// Every host id mapped to itself (what `/proc/1/uid_map` shows for the
    /// host), so any owner of a served file is mapped.
    pub const IDENTITY: GoferIds = GoferIds::Map {
        host: 0,
        count: u32::MAX,
    };

    /// `nobody`, `identity`, `host` or `HOSTID:COUNT`.
    pub fn parse(s: &str) -> Result<GoferIds> {
        match s {
            "nobody" => return Ok(GoferIds::Nobody),
            "identity" => return Ok(Self::IDENTITY),
            "host" => return Ok(GoferIds::Host),
            _ => {}
        }
        let bad =
            || format!("--gofer-idmap {s:?}: expected nobody, identity, host or HOSTID:COUNT");
        let (h, c) = s.split_once(':').with_context(bad)?;
        let host: u32 = h.parse().with_context(bad)?;
        let count: u32 = c.parse().with_context(bad)?;
        // Ids run up to u32::MAX - 1 (u32::MAX is the invalid id -1).
        if count == 0 || host.checked_add(count).is_none() {
            bail!("--gofer-idmap {s:?}: the range must be non-empty and end below 2^32 - 1");
        }
        Ok(GoferIds::Map { host, count })
    }

    /// The text [`GoferIds::parse`] reads back (for the supervisor).
    pub fn to_arg(self) -> String {
        match self {
            GoferIds::Host => "host".into(),
            GoferIds::Nobody => "nobody".into(),
            g if g == Self::IDENTITY => "identity".into(),
            GoferIds::Map { host, count } => format!("{host}:{count}"),
        }
    }

    /// The (host, count) map to idmap the served roots with, if any (an
    /// identity map needs no idmapped mount).
    fn idmap(self) -> Option<(u32, u32)> {
        match self {
            GoferIds::Host => None,
            GoferIds::Nobody => Some((NOBODY, u32::MAX - NOBODY)),
            g if g == Self::IDENTITY => None,
            GoferIds::Map { host, count } => Some((host, count)),
        }
    }

    /// The (host, count) map of a user namespace without idmapped mounts.
    fn plain(self) -> Option<(u32, u32)> {
        match self {
            GoferIds::Host => None,
            GoferIds::Nobody => Some((0, u32::MAX)),
            GoferIds::Map { host, count } => Some((host, count)),
        }
    }
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
    /// The gofer's user namespace.
    pub gofer_ids: GoferIds,
    /// Let the gofer connect to host sockets (`--host-uds open`).
    pub host_uds: bool,
    /// `--overlay self`: the filestore ([`open_filestore`]).
    pub filestore: Option<OwnedFd>,
}

/// `--overlay self`: an unnamed host file in the directory holding the
/// rootfs (O_TMPFILE; where the file system cannot, a file created and
/// unlinked at once), for the sentry to keep the rootfs's upper layer in.
/// Nothing of it is visible on the host, and its blocks are freed when the
/// sandbox ends, however it ends.
pub fn open_filestore(rootfs: &std::path::Path) -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = rootfs.parent().unwrap_or(rootfs);
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(f) => return Ok(OwnedFd::from(f)),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
        Err(e) => {
            return Err(e).with_context(|| format!("--overlay self: a file in {}", dir.display()))
        }
    }
    let name = dir.join(format!(".rvisor-filestore-{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&name)
        .with_context(|| format!("--overlay self: creating {}", name.display()))?;
    std::fs::remove_file(&name).with_context(|| format!("unlinking {}", name.display()))?;
    Ok(OwnedFd::from(f))
}

pub struct Launched {
    pub sentry: nix::unistd::Pid,
    pub gofer: GoferChild,
}

/// The gofer process (a child of the runtime, pid 1 of its own pid
/// namespace).
pub struct GoferChild(pub nix::unistd::Pid);

impl GoferChild {
    /// Waits for the gofer to exit and reaps it.
    pub fn wait(&mut self) -> Result<()> {
        use nix::sys::wait::{waitpid, WaitStatus};
        loop {
            match waitpid(self.0, None) {
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => return Ok(()),
                Ok(_) | Err(nix::Error::EINTR) => continue,
                Err(e) => bail!("waiting for the gofer: {e}"),
            }
        }
    }
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
    let gofer_child = spawn_gofer(&exe, &l, &gofer_end)?;
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
    if let Some(f) = &l.filestore {
        argv.push(b"--filestore-fd".to_vec());
        argv.push(f.as_raw_fd().to_string().into_bytes());
        keep.push(f.as_raw_fd());
    }
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
    let pid = match spawn_sentry(&exe, &argv, &keep) {
        Ok(pid) => pid,
        Err(e) => {
            let mut g = gofer_child;
            let _ = nix::sys::signal::kill(g.0, nix::sys::signal::Signal::SIGKILL);
            let _ = g.wait();
            return Err(e);
        }
    };
    Ok(Launched {
        sentry: pid,
        gofer: gofer_child,
    })
}

/// The mounts every sandbox gets when nothing else is asked for.
pub fn default_mounts() -> Vec<sentry::spec::MountSpec> {
    use sentry::spec::{MountFlags, MountKind, MountSpec};
    vec![
        MountSpec {
            dest: b"/dev".to_vec(),
            kind: MountKind::Devfs,
            readonly: false,
            fstype: String::new(),
            source: String::new(),
            flags: MountFlags::default(),
            data: String::new(),
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
            flags: MountFlags::default(),
            data: String::new(),
        },
        MountSpec {
            dest: b"/proc".to_vec(),
            kind: MountKind::Proc,
            readonly: false,
            fstype: String::new(),
            source: String::new(),
            flags: MountFlags::default(),
            data: String::new(),
        },
        MountSpec {
            dest: b"/sys".to_vec(),
            kind: MountKind::Sysfs,
            readonly: true,
            fstype: String::new(),
            source: String::new(),
            flags: MountFlags::default(),
            data: String::new(),
        },
    ]
}

/// `overlay`: the global `--overlay`: `none` serves the rootfs writable and
/// writes through (as for a container), `self` keeps the upper layer in a
/// host file beside the rootfs.
pub fn run_do(args: DoArgs, debug: bool, gofer_ids: GoferIds, overlay: &str) -> Result<i32> {
    let overlay_none = overlay == "none";
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
        root_passthrough: overlay_none,
        ..Default::default()
    };
    let filestore = match overlay {
        "self" => Some(open_filestore(&rootfs)?),
        _ => None,
    };
    let l = launch(Launch {
        gofer_mounts: vec![(rootfs, !overlay_none)],
        spec,
        control: None,
        log_file,
        debug,
        gofer_ids,
        host_uds: false,
        filestore,
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

/// RVISOR_LOG (a tracing filter) is the only variable passed to the gofer
/// and the sentry.
fn child_env() -> Vec<std::ffi::CString> {
    std::env::var("RVISOR_LOG")
        .ok()
        .and_then(|v| std::ffi::CString::new(format!("RVISOR_LOG={v}")).ok())
        .into_iter()
        .collect()
}

/// What the cloned child does before it execs the runtime binary.
struct ChildSetup {
    /// Wait for one byte on this fd (the parent has written the id maps),
    /// then become uid/gid 0 of the new user namespace.
    release: Option<RawFd>,
    /// Make this fd (/dev/null) the child's stdin and stdout.
    null_stdio: Option<RawFd>,
    /// Fds the child keeps across exec (close-on-exec cleared).
    keep: Vec<RawFd>,
}

/// Clones a child into the namespaces in `flags` and execs the runtime
/// binary (`exe`, an fd on /proc/self/exe) with `argv` and an environment
/// holding only RVISOR_LOG. The child dies with its parent (PDEATHSIG).
fn clone_exec(
    exe: &std::fs::File,
    argv: &[Vec<u8>],
    flags: nix::sched::CloneFlags,
    setup: ChildSetup,
) -> Result<nix::unistd::Pid> {
    let cargs: Vec<std::ffi::CString> = argv
        .iter()
        .map(|a| std::ffi::CString::new(a.clone()))
        .collect::<std::result::Result<_, _>>()
        .context("argument contains a NUL byte")?;
    let env = child_env();
    let exe_fd = exe.as_raw_fd();
    let mut stack = vec![0u8; 256 * 1024];
    let child = move || -> isize {
        // SAFETY: plain syscalls in the cloned child before exec.
        unsafe {
            if let Some(rd) = setup.release {
                // Wait for the uid/gid maps.
                let mut b = [0u8; 1];
                if libc::read(rd, b.as_mut_ptr() as *mut libc::c_void, 1) != 1 {
                    return 1;
                }
                if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                    return 1;
                }
            }
            // The child dies with the runtime that started it (set after
            // the credential change, which would clear it). In a new pid
            // namespace getppid() shows 0, so a parent already gone cannot
            // be told apart here; the gofer and sentry also stop when their
            // sockets close.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if let Some(n) = setup.null_stdio {
                if libc::dup2(n, 0) < 0 || libc::dup2(n, 1) < 0 {
                    return 1;
                }
            }
            for &fd in &setup.keep {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
        }
        let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|c| c.as_ptr()).collect();
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
        .context("clone into new namespaces")?;
    Ok(pid)
}

/// Writes the uid/gid maps of `pid`'s user namespace: `inside 0..count` =
/// `host..host+count`. `deny_setgroups` for a one-id map (the sentry);
/// a privileged writer may leave setgroups allowed (the gofer clears its
/// supplementary groups itself).
fn write_id_maps(pid: nix::unistd::Pid, host: u32, count: u32, deny_setgroups: bool) -> Result<()> {
    if deny_setgroups {
        write_file(&format!("/proc/{pid}/setgroups"), "deny")?;
    }
    write_file(
        &format!("/proc/{pid}/uid_map"),
        &format!("0 {host} {count}\n"),
    )?;
    write_file(
        &format!("/proc/{pid}/gid_map"),
        &format!("0 {host} {count}\n"),
    )?;
    Ok(())
}

/// Kills and reaps a child that failed to start.
fn abandon(pid: nix::unistd::Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// Starts the gofer serving `l.gofer_mounts` on `sock`: cloned into a new
/// pid namespace (pid 1 there, it can neither see nor signal host
/// processes), it makes its own mount/net/IPC/UTS namespaces as host root,
/// then (unless `GoferIds::Host`) unshares a user namespace and asks, on a
/// second socket, for the id maps this function writes.
fn spawn_gofer(exe: &std::fs::File, l: &Launch, sock: &OwnedFd) -> Result<GoferChild> {
    let mut argv: Vec<Vec<u8>> = vec![b"rvisor-gofer".to_vec()];
    if l.debug {
        argv.push(b"--debug".to_vec());
    }
    argv.push(b"gofer".to_vec());
    argv.push(b"--sock-fd".to_vec());
    argv.push(sock.as_raw_fd().to_string().into_bytes());
    for (path, ro) in &l.gofer_mounts {
        argv.push(b"--mount".to_vec());
        let mut m = path.as_os_str().as_bytes().to_vec();
        m.extend_from_slice(if *ro { b":ro" } else { b":rw" });
        argv.push(m);
    }
    if l.host_uds {
        argv.push(b"--connect-host-uds".to_vec());
    }
    let mut keep = vec![sock.as_raw_fd()];
    let sync = match l.gofer_ids.plain() {
        None => None,
        Some(_) => {
            use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
            let (ours, theirs) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .context("socketpair for the gofer's id maps")?;
            argv.push(b"--userns-fd".to_vec());
            argv.push(theirs.as_raw_fd().to_string().into_bytes());
            keep.push(theirs.as_raw_fd());
            Some((ours, theirs))
        }
    };
    let idmap_ns = match l.gofer_ids.idmap() {
        Some((host, count)) => {
            let ns = mapped_user_namespace(host, count)?;
            argv.push(b"--idmap-userns-fd".to_vec());
            argv.push(ns.as_raw_fd().to_string().into_bytes());
            keep.push(ns.as_raw_fd());
            Some(ns)
        }
        None => None,
    };
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    let pid = clone_exec(
        exe,
        &argv,
        nix::sched::CloneFlags::CLONE_NEWPID,
        ChildSetup {
            release: None,
            null_stdio: Some(devnull.as_raw_fd()),
            keep,
        },
    )
    .context("starting the gofer")?;
    drop(idmap_ns);
    let (Some((host, count)), Some((ours, theirs))) = (l.gofer_ids.plain(), sync) else {
        return Ok(GoferChild(pid));
    };
    drop(theirs);
    let maps = (|| -> Result<()> {
        // The gofer sends one byte once it has confined itself: 'i' when it
        // entered the idmapped namespace, 'u' when it unshared a user
        // namespace of its own and waits for its maps; EOF means it failed
        // (its error is on stderr).
        let mut b = [0u8; 1];
        loop {
            match nix::unistd::read(ours.as_raw_fd(), &mut b) {
                Ok(1) if b[0] == b'i' => return Ok(()),
                Ok(1) if b[0] == b'u' => break,
                Ok(_) => bail!("the gofer failed to start"),
                Err(nix::Error::EINTR) => continue,
                Err(e) => bail!("waiting for the gofer: {e}"),
            }
        }
        if l.gofer_ids.idmap().is_some() {
            tracing::info!("a served root cannot be idmapped: the gofer's ids map {host}:{count}");
        }
        write_id_maps(pid, host, count, false)?;
        nix::unistd::write(&ours, b"m").context("releasing the gofer")?;
        Ok(())
    })();
    if let Err(e) = maps {
        abandon(pid);
        return Err(e);
    }
    Ok(GoferChild(pid))
}

/// A user namespace whose ids `0..count` are host ids `host..host+count`,
/// as an fd (`/proc/PID/ns/user` of a short-lived child that made it), for
/// the gofer to idmap its mounts with and then enter.
fn mapped_user_namespace(host: u32, count: u32) -> Result<OwnedFd> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: the child makes only raw system calls (async-signal-safe)
    // and never returns.
    let child = match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: raw system calls on fds this process owns; _exit ends it.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                let ok: u8 = u8::from(libc::unshare(libc::CLONE_NEWUSER) == 0);
                libc::write(wr.as_raw_fd(), (&ok as *const u8).cast(), 1);
                if ok == 1 {
                    libc::pause();
                }
                libc::_exit(0);
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(wr);
    let made = (|| -> Result<OwnedFd> {
        let mut b = [0u8; 1];
        match nix::unistd::read(rd.as_raw_fd(), &mut b) {
            Ok(1) if b[0] == 1 => {}
            _ => bail!("unshare(CLONE_NEWUSER) failed for the gofer's id map"),
        }
        write_id_maps(child, host, count, false)?;
        let f = std::fs::File::open(format!("/proc/{child}/ns/user"))
            .context("opening the gofer's user namespace")?;
        Ok(OwnedFd::from(f))
    })();
    abandon(child);
    made
}

/// Clone the sentry into new namespaces; it execs `rvisor boot` once the
/// parent has written its uid/gid maps.
fn spawn_sentry(exe: &std::fs::File, argv: &[Vec<u8>], keep: &[RawFd]) -> Result<nix::unistd::Pid> {
    use nix::sched::CloneFlags;
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWNET;
    let pid = clone_exec(
        exe,
        argv,
        flags,
        ChildSetup {
            release: Some(rd.as_raw_fd()),
            null_stdio: None,
            keep: keep.to_vec(),
        },
    )
    .context("starting the sentry")?;
    drop(rd);
    if let Err(e) = write_id_maps(pid, SANDBOX_HOST_ID, 1, true) {
        abandon(pid);
        return Err(e);
    }
    nix::unistd::write(&wr, b"x").context("releasing the sentry")?;
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::GoferIds;

    #[test]
    fn gofer_idmap_parses_and_round_trips() {
        assert_eq!(GoferIds::parse("identity").ok(), Some(GoferIds::IDENTITY));
        assert_eq!(GoferIds::parse("host").ok(), Some(GoferIds::Host));
        assert_eq!(GoferIds::parse("nobody").ok(), Some(GoferIds::Nobody));
        assert_eq!(
            GoferIds::parse("100000:65536").ok(),
            Some(GoferIds::Map {
                host: 100000,
                count: 65536
            })
        );
        assert_eq!(
            GoferIds::parse("0:4294967295").ok(),
            Some(GoferIds::IDENTITY)
        );
        for bad in [
            "",
            "0:0",
            "4294967295:1",
            "1:4294967295",
            "x:1",
            "1",
            "1:2:3",
            "-1:2",
        ] {
            assert!(GoferIds::parse(bad).is_err(), "{bad:?} accepted");
        }
        for g in [
            GoferIds::IDENTITY,
            GoferIds::Host,
            GoferIds::Nobody,
            GoferIds::Map { host: 7, count: 9 },
        ] {
            assert_eq!(GoferIds::parse(&g.to_arg()).ok(), Some(g));
        }
        // The default map ends at the last valid id; identity needs no idmap.
        assert_eq!(GoferIds::Nobody.idmap(), Some((65534, u32::MAX - 65534)));
        assert_eq!(GoferIds::Nobody.plain(), Some((0, u32::MAX)));
        assert_eq!(GoferIds::IDENTITY.idmap(), None);
        assert_eq!(GoferIds::Host.plain(), None);
    }
}
