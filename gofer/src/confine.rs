//! Confinement of the gofer process to the served roots.
//!
//! [`confine`] leaves the process in private mount, network, IPC and UTS
//! namespaces whose root is a small read-only tmpfs holding one bind mount
//! per served root (`/m0`, `/m1`, ...), each without submounts, so a host
//! `/` served as a rootfs brings neither host /proc, /sys nor /dev. It also
//! sets no_new_privs and RLIMIT_CORE 0.
//!
//! [`enter_user_namespace`] then moves it into a user namespace of its own
//! (when the runtime asked for one), and [`crate::run`] drops capabilities
//! and installs the seccomp filter (`filter.rs`) before serving.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::server::{fd_stat, openat2, ServedRoot};
use crate::Error;

/// One host path to serve. Its index in the list given to [`confine`] is
/// the mount number the sentry passes to `Attach` (0 = rootfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub host_path: PathBuf,
    pub readonly: bool,
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Opens `path` as an `O_PATH` fd (following symlinks: host paths come from
/// the runtime, which trusts them).
fn open_path(path: &Path, extra: i32) -> Result<OwnedFd, Error> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | extra)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::sys(format!("open {}", path.display()), io_errno(&e)))
}

fn is_dir(fd: &OwnedFd) -> Result<bool, Error> {
    let st = fd_stat(fd.as_fd()).map_err(|e| Error::sys("fstat", e))?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Serves the host paths where they are, without any namespace or mount
/// work (no privileges needed). For tests and for development only: the
/// process keeps its full view of the host.
pub fn confine_in_place(mounts: &[MountSpec]) -> Result<Vec<ServedRoot>, Error> {
    let mut roots = Vec::with_capacity(mounts.len());
    for m in mounts {
        let fd = open_path(&m.host_path, 0)?;
        if is_dir(&fd)? {
            roots.push(ServedRoot::dir(fd, m.readonly));
            continue;
        }
        let (Some(parent), Some(name)) = (m.host_path.parent(), m.host_path.file_name()) else {
            return Err(Error::sys(
                format!("{}: no parent directory", m.host_path.display()),
                Errno::EINVAL,
            ));
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let pfd = open_path(parent, libc::O_DIRECTORY)?;
        roots.push(ServedRoot {
            dir: fd,
            readonly: m.readonly,
            parent: Some((pfd, name.as_bytes().to_vec())),
        });
    }
    Ok(roots)
}

/// Directory on which the private tmpfs is mounted before pivoting into it.
fn staging_dir() -> Result<&'static str, Error> {
    ["/tmp", "/mnt", "/run", "/var/tmp"]
        .into_iter()
        .find(|d| Path::new(d).is_dir())
        .ok_or_else(|| Error::sys("no directory to stage the gofer root", Errno::ENOENT))
}

fn do_mount(
    what: &str,
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), Error> {
    mount(source, target, fstype, flags, data).map_err(|e| Error::sys(what, e))
}

/// Decodes the octal escapes (`\040` etc.) of a mountinfo path field.
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Mount points strictly below `dir` according to /proc/thread-self/mountinfo (this
/// thread may be the only one in the new namespace).
fn mounts_below(dir: &str) -> Result<Vec<Vec<u8>>, Error> {
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo")
        .map_err(|e| Error::sys("read /proc/thread-self/mountinfo", io_errno(&e)))?;
    let mut prefix = dir.as_bytes().to_vec();
    prefix.push(b'/');
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p.starts_with(&prefix))
        .collect())
}

/// Detaches every mount below `dir`, deepest first, until none is left.
fn strip_submounts(dir: &str) -> Result<(), Error> {
    for _ in 0..64 {
        let mut below = mounts_below(dir)?;
        if below.is_empty() {
            return Ok(());
        }
        below.sort_by_key(|p| std::cmp::Reverse(p.iter().filter(|&&c| c == b'/').count()));
        for p in below {
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(&p));
            match umount2(&path, MntFlags::MNT_DETACH) {
                // Already gone with a parent detached before it.
                Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(Error::sys(format!("umount {}", path.display()), e)),
            }
        }
    }
    Err(Error::sys(
        format!("submounts of {dir} keep coming back"),
        Errno::EBUSY,
    ))
}

/// Per-mount flags of `target` that a bind remount must keep.
fn kept_flags(target: &str) -> Result<MsFlags, Error> {
    let st = statvfs(target).map_err(|e| Error::sys(format!("statvfs {target}"), e))?;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    Ok(out)
}

/// Confines the calling process (root on the host, single threaded) to
/// `mounts` and returns their roots for [`crate::server::serve`].
///
/// Steps: no_new_privs and RLIMIT_CORE 0; unshare mount/net/IPC/UTS
/// namespaces; make `/` recursively private; open every host path; mount a
/// tmpfs on a staging directory; bind each host path (non-recursively) to
/// `mN` inside it and detach anything still mounted below; remount the
/// binds nosuid,nodev (and read-only where asked, keeping flags such as
/// noexec of the original mount); make the tmpfs read-only; pivot_root into
/// it and detach the old root.
pub fn confine(
    mounts: &[MountSpec],
    idmap: Option<BorrowedFd<'_>>,
    host_uds: bool,
) -> Result<(Vec<ServedRoot>, bool), Error> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| Error::sys("set no_new_privs", e))?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| Error::sys("setrlimit(RLIMIT_CORE)", e))?;

    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS,
    )
    .map_err(|e| Error::sys("unshare", e))?;
    do_mount(
        "make / private",
        None,
        "/",
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;

    // Open the sources before mounting the staging tmpfs, which may hide
    // them (a rootfs under /tmp); binding from the fds pins exactly what was
    // opened. They must be opened in the new namespace: bind mounts only
    // take sources from the caller's own namespace.
    let mut sources = Vec::with_capacity(mounts.len());
    for m in mounts {
        let fd = open_path(&m.host_path, 0)?;
        let dir = is_dir(&fd)?;
        sources.push((fd, dir));
    }

    // Idmapped copies of every source, or of none: a gofer that enters the
    // idmap's namespace must see every root through it.
    let mut trees = Vec::new();
    if let Some(ns) = idmap {
        for (m, (fd, _)) in mounts.iter().zip(&sources) {
            let tree = match idmapped_tree(fd.as_fd(), ns) {
                Ok(t) => Ok(Idmapped::Tree(t)),
                // An overlayfs root cannot be idmapped, but served read-only
                // its layers can, under an overlay of our own.
                Err(Errno::EINVAL) if m.readonly => idmapped_layers(fd.as_fd(), ns),
                Err(e) => Err(e),
            };
            match tree {
                Ok(t) => trees.push(t),
                Err(e) => {
                    tracing::info!(
                        "no idmapped mount of {}: {e}; serving without one",
                        m.host_path.display()
                    );
                    trees.clear();
                    break;
                }
            }
        }
    }
    let idmapped = idmap.is_some() && trees.len() == mounts.len();

    let base = staging_dir()?;
    do_mount(
        "mount staging tmpfs",
        Some("tmpfs"),
        base,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=1m"),
    )?;

    for (i, (m, (fd, dir))) in mounts.iter().zip(&sources).enumerate() {
        let target = format!("{base}/m{i}");
        if *dir {
            nix::unistd::mkdir(target.as_str(), Mode::from_bits_truncate(0o755))
                .map_err(|e| Error::sys(format!("mkdir {target}"), e))?;
        } else {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&target)
                .map_err(|e| Error::sys(format!("create {target}"), io_errno(&e)))?;
        }
        if idmapped {
            match &trees[i] {
                Idmapped::Tree(t) => move_mount(t, &target).map_err(|e| {
                    Error::sys(format!("attach {} to {target}", m.host_path.display()), e)
                })?,
                Idmapped::Layers(layers) => mount_layers(base, i, layers, &target)?,
            }
        } else {
            let source = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
            do_mount(
                &format!("bind {} to {target}", m.host_path.display()),
                Some(&source),
                &target,
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
        strip_submounts(&target)?;
        let mut flags = MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | kept_flags(&target)?;
        if m.readonly {
            flags |= MsFlags::MS_RDONLY;
        }
        do_mount(
            &format!("remount {target}"),
            None,
            &target,
            None,
            flags,
            None,
        )?;
    }
    // The host fds must not survive into the confined process.
    drop(sources);
    drop(trees);
    if host_uds {
        // Connecting to a host socket goes through /proc/self/fd/N (see
        // `Server::connect`): a procfs of the gofer's own pid namespace
        // (itself alone), only its pid directories.
        let target = format!("{base}/proc");
        nix::unistd::mkdir(target.as_str(), Mode::from_bits_truncate(0o555))
            .map_err(|e| Error::sys(format!("mkdir {target}"), e))?;
        do_mount(
            "mount proc",
            Some("proc"),
            &target,
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("subset=pid"),
        )?;
    }

    do_mount(
        "remount staging tmpfs read-only",
        None,
        base,
        None,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None,
    )?;
    nix::unistd::chdir(base).map_err(|e| Error::sys(format!("chdir {base}"), e))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; the
    // detach below then removes it (see pivot_root(2)).
    nix::unistd::pivot_root(".", ".").map_err(|e| Error::sys("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("detach old root", e))?;
    nix::unistd::chdir("/").map_err(|e| Error::sys("chdir /", e))?;

    let mut roots = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        let name = format!("m{i}");
        let top = open_path(Path::new("/"), libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
        let cname = std::ffi::CString::new(name.clone())
            .map_err(|_| Error::sys("mount name", Errno::EINVAL))?;
        let fd = openat2(
            top.as_fd(),
            &cname,
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(|e| Error::sys(format!("open /{name}"), e))?;
        if is_dir(&fd)? {
            roots.push(ServedRoot::dir(fd, m.readonly));
        } else {
            roots.push(ServedRoot {
                dir: fd,
                readonly: m.readonly,
                parent: Some((top, name.into_bytes())),
            });
        }
    }
    Ok((roots, idmapped))
}

/// A detached copy of the mount at `fd` (that mount alone, no submounts)
/// through which file owners are seen shifted by the user namespace `ns`'s
/// id map: an owner id `u` on disk is host id `map(u)` through it, so a
/// gofer whose ids are those of `ns` owns, through it, the files their
/// owners own on disk. Fails (EINVAL) on file systems that cannot be
/// idmapped.
fn idmapped_tree(fd: BorrowedFd<'_>, ns: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let empty = c"";
    // SAFETY: open_tree(2) with a valid fd and a NUL-terminated empty path;
    // the result is a new fd we own.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(Errno::last());
    }
    // SAFETY: open_tree returned a fresh fd (checked non-negative above).
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr(2) on our detached tree with a properly sized
    // mount_attr that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(tree)
}

/// A served root seen through the idmap: a detached idmapped copy of its
/// mount, or (an overlayfs root) idmapped copies of its layers, top first.
enum Idmapped {
    Tree(OwnedFd),
    Layers(Vec<OwnedFd>),
}

/// The layer directories of the overlayfs mount whose root `fd` is, top
/// (upperdir) first, from /proc/thread-self/mountinfo. `None` for anything
/// else: another file system, a subdirectory of the mount, relative layer
/// paths, data-only layers.
fn overlay_layers(fd: BorrowedFd<'_>) -> Option<Vec<PathBuf>> {
    let fdinfo =
        std::fs::read_to_string(format!("/proc/thread-self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let mnt_id = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .to_owned();
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo").ok()?;
    let line = info
        .lines()
        .find(|l| l.split(' ').next() == Some(mnt_id.as_str()))?;
    let fields: Vec<&str> = line.split(' ').collect();
    // The fd must be the mount's root directory.
    let root = fields.get(3)?;
    let mount_point = unescape_mountinfo(fields.get(4)?);
    let st = fd_stat(fd).ok()?;
    let mp = nix::sys::stat::stat(std::ffi::OsStr::from_bytes(&mount_point)).ok()?;
    if *root != "/" || (mp.st_dev, mp.st_ino) != (st.st_dev, st.st_ino) {
        return None;
    }
    let sep = fields.iter().position(|f| *f == "-")?;
    if fields.get(sep + 1) != Some(&"overlay") {
        return None;
    }
    let opts = fields.get(sep + 3)?;
    let mut upper = None;
    let mut lower = Vec::new();
    for opt in split_unescaped(opts.as_bytes(), b',') {
        if let Some(v) = opt.strip_prefix(b"upperdir=") {
            upper = Some(v.to_vec());
        } else if let Some(v) = opt.strip_prefix(b"lowerdir=") {
            lower.extend(split_unescaped(v, b':').into_iter().map(|p| p.to_vec()));
        } else if let Some(v) = opt.strip_prefix(b"lowerdir+=") {
            lower.push(v.to_vec());
        } else if opt.starts_with(b"datadir+=") || opt.starts_with(b"metacopy=on") {
            return None;
        }
    }
    let mut layers: Vec<PathBuf> = upper
        .into_iter()
        .chain(lower)
        .map(|p| {
            PathBuf::from(std::ffi::OsStr::from_bytes(&unescape_mountinfo(
                &String::from_utf8_lossy(&p),
            )))
        })
        .collect();
    layers.retain(|p| !p.as_os_str().is_empty());
    if layers.is_empty() || layers.iter().any(|p| !p.is_absolute()) {
        return None;
    }
    Some(layers)
}

/// Splits `s` at `sep` bytes not escaped by a backslash (overlayfs escapes
/// ',' and ':' in layer paths so), unescaping only `sep`.
fn split_unescaped(s: &[u8], sep: u8) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            // An escaped separator is part of the field; other escapes stay
            // for the next split.
            b'\\' if i + 1 < s.len() => {
                if let Some(last) = out.last_mut() {
                    if s[i + 1] != sep {
                        last.push(b'\\');
                    }
                    last.push(s[i + 1]);
                }
                i += 2;
                continue;
            }
            c if c == sep => out.push(Vec::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
        i += 1;
    }
    out
}

/// Idmapped copies of the layers of the overlayfs root `fd` (see
/// [`overlay_layers`]), top first; EINVAL when it is not one.
fn idmapped_layers(fd: BorrowedFd<'_>, ns: BorrowedFd<'_>) -> Result<Idmapped, Errno> {
    let layers = overlay_layers(fd).ok_or(Errno::EINVAL)?;
    let mut trees = Vec::with_capacity(layers.len());
    for l in &layers {
        let lfd = open_path(l, libc::O_DIRECTORY).map_err(|_| Errno::EINVAL)?;
        trees.push(idmapped_tree(lfd.as_fd(), ns)?);
    }
    Ok(Idmapped::Layers(trees))
}

/// A read-only overlay at `target` of the idmapped `layers` (top first):
/// each is attached under the staging directory, the overlay mounted with
/// them as its lower layers, then they are detached again (the overlay
/// keeps them), so nothing but the served roots stays in view.
fn mount_layers(base: &str, i: usize, layers: &[OwnedFd], target: &str) -> Result<(), Error> {
    let mut dirs = Vec::with_capacity(layers.len());
    for (k, t) in layers.iter().enumerate() {
        let dir = format!("{base}/l{i}.{k}");
        nix::unistd::mkdir(dir.as_str(), Mode::from_bits_truncate(0o700))
            .map_err(|e| Error::sys(format!("mkdir {dir}"), e))?;
        move_mount(t, &dir).map_err(|e| Error::sys(format!("attach a layer to {dir}"), e))?;
        dirs.push(dir);
    }
    let opts = format!("lowerdir={}", dirs.join(":"));
    let r = do_mount(
        "mount an overlay of idmapped layers",
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&opts),
    );
    for dir in &dirs {
        let _ = umount2(dir.as_str(), MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(dir);
    }
    r
}

/// Attaches the detached mount `tree` at `target`.
fn move_mount(tree: &OwnedFd, target: &str) -> Result<(), Errno> {
    let target = std::ffi::CString::new(target).map_err(|_| Errno::EINVAL)?;
    // SAFETY: move_mount(2) with a valid fd, an empty source path and a
    // NUL-terminated target path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Moves the confined gofer into the user namespace `ns` that its mounts
/// were idmapped with (see [`idmapped_tree`]), whose maps the runtime has
/// written, and becomes its uid/gid 0 with no supplementary groups. Like
/// [`enter_user_namespace`], the mount, network, IPC and UTS namespaces stay
/// owned by the host's user namespace. Tells the runtime on `sync` that it
/// needs no maps.
pub fn enter_idmapped_namespace(ns: OwnedFd, sync: OwnedFd) -> Result<(), Error> {
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWUSER)
        .map_err(|e| Error::sys("setns(CLONE_NEWUSER)", e))?;
    drop(ns);
    nix::unistd::write(&sync, b"i").map_err(|e| Error::sys("telling the runtime", e))?;
    drop(sync);
    become_namespace_root()
}

/// setgroups([]), then uid/gid 0 of the current user namespace.
fn become_namespace_root() -> Result<(), Error> {
    nix::unistd::setgroups(&[]).map_err(|e| Error::sys("setgroups", e))?;
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid).map_err(|e| Error::sys("setresgid", e))?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid).map_err(|e| Error::sys("setresuid", e))?;
    // A credential change clears the parent-death signal: set it again (the
    // gofer also exits when the sentry's end of its socket closes).
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| Error::sys("PR_SET_PDEATHSIG", e))?;
    Ok(())
}

/// Moves the confined gofer into a user namespace of its own, created
/// last so that the mount, network, IPC and UTS namespaces made by
/// [`confine`] (and the pid namespace the runtime cloned it into) stay
/// owned by the host's user namespace: nothing the gofer holds afterwards
/// counts over them, so it cannot mount, unmount or remount anything (not
/// even turn a read-only bind writable) nor configure its network.
///
/// Only a process holding CAP_SETUID in the parent namespace may write a
/// map of more than one id, so the runtime writes them: this sends one
/// byte on `sync` once the namespace exists and waits for one byte back
/// (the maps are written), then becomes uid/gid 0 of the namespace with no
/// supplementary groups. The capabilities left are all the namespace's own,
/// which the caller narrows with [`crate::filter::drop_capabilities`].
/// They act on a file only if its owner and group are mapped.
pub fn enter_user_namespace(sync: OwnedFd) -> Result<(), Error> {
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| Error::sys("unshare(CLONE_NEWUSER)", e))?;
    nix::unistd::write(&sync, b"u").map_err(|e| Error::sys("asking for the id maps", e))?;
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(sync.as_raw_fd(), &mut b) {
            Ok(1) if b[0] == b'm' => break,
            Ok(_) => {
                return Err(Error::sys(
                    "the runtime did not write the id maps",
                    Errno::EPIPE,
                ))
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("waiting for the id maps", e)),
        }
    }
    drop(sync);
    become_namespace_root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use std::io::Read;

    #[test]
    fn overlay_options_split_at_unescaped_separators() {
        assert_eq!(
            split_unescaped(b"lowerdir=/a:/b\\:c,upperdir=/u\\,v,workdir=/w", b','),
            vec![
                b"lowerdir=/a:/b\\:c".to_vec(),
                b"upperdir=/u,v".to_vec(),
                b"workdir=/w".to_vec()
            ]
        );
        assert_eq!(
            split_unescaped(b"/a:/b\\:c", b':'),
            vec![b"/a".to_vec(), b"/b:c".to_vec()]
        );
    }

    const CHILD_ENV: &str = "RVISOR_GOFER_CONFINE_CHILD";
    const SKIP: i32 = 77;

    /// Runs `confine_child` in a fresh process of this test binary, as
    /// confine() changes the whole mount view of its caller.
    #[test]
    fn confine_in_child_process() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hello.txt"), b"hi there").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/under"), b"").unwrap();
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "confine::tests::confine_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(SKIP) => eprintln!("confine test skipped: {log}"),
            other => panic!("confine child failed ({other:?}):\n{log}"),
        }
    }

    /// Helper run by `confine_in_child_process`; does nothing on its own.
    #[test]
    #[ignore = "helper process of confine_in_child_process"]
    fn confine_child() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let dir = PathBuf::from(dir);
        // A submount inside the served tree (in a namespace of our own, so
        // the host never sees it): confine must not carry it over.
        let pre = unshare(CloneFlags::CLONE_NEWNS).and_then(|()| {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
        });
        if let Err(e) = pre {
            eprintln!("cannot unshare here: {e}");
            std::process::exit(SKIP);
        }
        let sub = dir.join("sub");
        if let Err(e) = mount(
            Some("tmpfs"),
            &sub,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        ) {
            eprintln!("mount tmpfs on sub: {e}");
            std::process::exit(1);
        }
        if std::fs::write(sub.join("onsub"), b"").is_err() {
            std::process::exit(1);
        }
        let specs = [MountSpec {
            host_path: dir,
            readonly: true,
        }];
        let roots = match confine(&specs, None, false) {
            Ok((r, _)) => r,
            Err(Error::Sys { what, errno }) if what == "unshare" || what == "make / private" => {
                eprintln!("cannot confine here: {what}: {errno}");
                std::process::exit(SKIP);
            }
            Err(e) => {
                eprintln!("confine: {e}");
                std::process::exit(1);
            }
        };
        let code = match check_confined(roots) {
            Ok(()) => 0,
            Err(why) => {
                eprintln!("{why}");
                1
            }
        };
        std::process::exit(code);
    }

    fn check_confined(roots: Vec<ServedRoot>) -> Result<(), String> {
        let mut names: Vec<_> = std::fs::read_dir("/")
            .map_err(|e| format!("read_dir /: {e}"))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("read_dir /: {e}"))?;
        names.sort();
        if names != ["m0"] {
            return Err(format!("/ holds {names:?}"));
        }
        let hello = std::fs::read("/m0/hello.txt").map_err(|e| format!("read: {e}"))?;
        if hello != b"hi there" {
            return Err("wrong content".into());
        }
        if std::fs::write("/m0/new", b"x").is_ok() {
            return Err("read-only bind is writable".into());
        }
        if std::fs::create_dir("/evil").is_ok() {
            return Err("staging root is writable".into());
        }
        let sub: Vec<_> = std::fs::read_dir("/m0/sub")
            .map_err(|e| format!("read_dir /m0/sub: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        if sub != ["under"] {
            return Err(format!("submount leaked: /m0/sub holds {sub:?}"));
        }
        if Path::new("/proc/self").exists() {
            return Err("/proc is visible".into());
        }
        // Serve the confined root and read through the protocol.
        let (c, s) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| e.to_string())?;
        let server = std::thread::spawn(move || crate::server::serve(s, roots, false));
        let client = Client::new(c).map_err(|e| format!("handshake: {e}"))?;
        let (root, _) = client.attach(0).map_err(|e| format!("attach: {e}"))?;
        let (nodes, err) = client
            .walk(root, &[b"hello.txt"])
            .map_err(|e| format!("walk: {e}"))?;
        if err.is_some() || nodes.len() != 1 {
            return Err(format!("walk stopped: {err:?}"));
        }
        if client.open(nodes[0].0, libc::O_RDWR).err() != Some(libc::EROFS) {
            return Err("O_RDWR not refused".into());
        }
        let (fd, _) = client
            .open(nodes[0].0, libc::O_RDONLY)
            .map_err(|e| format!("open: {e}"))?;
        let mut got = Vec::new();
        std::fs::File::from(fd)
            .read_to_end(&mut got)
            .map_err(|e| e.to_string())?;
        if got != b"hi there" {
            return Err("wrong content through the gofer".into());
        }
        let mut ents: Vec<_> = client
            .getdents(root)
            .map_err(|e| format!("getdents: {e}"))?
            .into_iter()
            .map(|d| d.name)
            .collect();
        ents.sort();
        if ents != [b"hello.txt".to_vec(), b"sub".to_vec()] {
            return Err(format!("getdents: {ents:?}"));
        }
        drop(client);
        match server.join() {
            Ok(Ok(())) => Ok(()),
            other => Err(format!("server: {other:?}")),
        }
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), b"/a b");
        assert_eq!(unescape_mountinfo(r"/a\134b"), b"/a\\b");
        assert_eq!(unescape_mountinfo(r"/a\04"), b"/a\\04");
        assert_eq!(unescape_mountinfo(r"/x\"), b"/x\\");
    }
}
