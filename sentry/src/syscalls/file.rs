//! File syscalls: open/close/read/write and friends, stat, directories,
//! links, permissions.

use super::Args;
use crate::abi::*;
use crate::fs::proc::{self, ProcNode};
use crate::kernel::task::Task;
use crate::vfs::file::{File, FileKind};
use crate::vfs::path::{self, Walker};
use crate::vfs::{lock, Dentry, FsType, Inode, Meta, Node, MEM_DEV};
use std::sync::{Arc, Mutex};

/// Linux caps one read/write at this many bytes.
const MAX_RW: usize = 0x7fff_f000;
/// We move at most this much per call (a short count, as Linux allows).
const CHUNK: usize = 16 << 20;
const IOV_MAX: usize = 1024;

pub fn get_file(t: &Task, fd: i32) -> KResult<Arc<File>> {
    lock(&t.fds()).get(fd)
}

pub(crate) fn install(t: &Task, f: Arc<File>, cloexec: bool) -> KResult<u64> {
    let limit = t.nofile_limit();
    lock(&t.fds())
        .alloc(f, cloexec, 0, limit)
        .map(|fd| fd as u64)
}

/// The directory a *at() call starts from.
fn base_dir(t: &Task, dirfd: i32, path: &[u8]) -> KResult<Arc<Dentry>> {
    if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
        return Ok(t.cwd());
    }
    let f = get_file(t, dirfd)?;
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    if !path.is_empty() && !d.meta().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(d)
}

fn writable_fs(d: &Arc<Dentry>) -> KResult<()> {
    if d.readonly() {
        return Err(Errno::EROFS);
    }
    match d.fs {
        FsType::Overlay | FsType::Bind | FsType::Tmpfs | FsType::Dev | FsType::Mqueue => Ok(()),
        FsType::Proc | FsType::Sys => Err(Errno::EACCES),
    }
}

/// Open an existing dentry with `flags` (permission checks already done).
pub fn open_dentry(t: &Task, d: &Arc<Dentry>, flags: i32) -> KResult<Arc<File>> {
    let inode = d.inode();
    let meta = inode.meta();
    if flags & O_PATH != 0 {
        return Ok(File::new(
            Some(d.clone()),
            FileKind::Path,
            flags & (O_PATH | O_NOFOLLOW | O_DIRECTORY),
        ));
    }
    if meta.is_dir() {
        return Ok(File::new(
            Some(d.clone()),
            FileKind::Dir {
                entries: Mutex::new(None),
            },
            flags,
        ));
    }
    if meta.is_lnk() {
        return Err(Errno::ELOOP);
    }
    if matches!(inode.node, Node::Dev(_)) && d.nodev() {
        return Err(Errno::EACCES);
    }
    let kind = match &inode.node {
        Node::Lower(l) => FileKind::Lower { fd: l.fd()? },
        Node::Mem(_) | Node::Shm(_) => FileKind::Mem(inode.clone()),
        Node::Dev(
            k @ (crate::fs::dev::DevKind::Tty
            | crate::fs::dev::DevKind::Ptmx
            | crate::fs::dev::DevKind::Pts(_)),
        ) => crate::fs::pty::open(t, *k, flags)?,
        Node::Dev(crate::fs::dev::DevKind::Other { .. }) => return Err(Errno::ENXIO),
        Node::Dev(k) => FileKind::Dev(*k),
        Node::Mqueue(q) => FileKind::Mqueue(q.clone()),
        Node::Proc(ProcNode::File(f)) => FileKind::Synthetic(proc::generate(f, t)?),
        Node::Fifo(pipe) => {
            let acc = flags & O_ACCMODE;
            let (read, write) = (acc != O_WRONLY, acc != O_RDONLY);
            pipe.open_fifo(read, write, flags & O_NONBLOCK != 0)?;
            FileKind::Fifo {
                pipe: pipe.clone(),
                read,
                write,
            }
        }
        _ => return Err(Errno::ENXIO),
    };
    Ok(File::new(
        Some(d.clone()),
        kind,
        flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
    ))
}

fn access_mask(flags: i32) -> u32 {
    match flags & O_ACCMODE {
        O_RDONLY => 4,
        O_WRONLY => 2,
        _ => 6,
    }
}

/// The metadata of a new file in `dir`: the caller's fs ids, the
/// directory's group when it is setgid.
fn new_meta(t: &Task, dir: &Arc<Dentry>, node: &Node, mode: u32) -> KResult<Meta> {
    writable_fs(dir)?;
    if dir.fs == FsType::Mqueue {
        // Only queues live there (open O_CREAT makes one).
        return Err(Errno::EPERM);
    }
    t.may_access(&dir.meta(), 2 | 1)?;
    let c = t.creds();
    let dmeta = dir.meta();
    // Files made in /dev (or an OCI /dev/shm mount) share its device.
    let dev = if dir.fs == FsType::Dev {
        dmeta.dev
    } else {
        MEM_DEV
    };
    let mut m = Meta::new(mode, dev, c.fsuid, c.fsgid);
    if dmeta.mode & 0o2000 != 0 {
        m.gid = dmeta.gid;
        if m.mode & S_IFMT == S_IFDIR {
            m.mode |= 0o2000;
        }
    }
    if let Node::Symlink(s) = node {
        m.size = s.len() as u64;
    }
    Ok(m)
}

/// Files made by O_TMPFILE without O_EXCL: linkat(2) may give them a
/// name once (Linux's I_LINKABLE).
fn linkable() -> &'static Mutex<Vec<std::sync::Weak<Inode>>> {
    static L: std::sync::OnceLock<Mutex<Vec<std::sync::Weak<Inode>>>> = std::sync::OnceLock::new();
    L.get_or_init(Default::default)
}

/// open(O_TMPFILE): an unnamed regular file in the directory `path`.
fn open_tmpfile(t: &Task, dirfd: i32, path: &[u8], flags: i32, mode: u32) -> KResult<u64> {
    let acc = flags & O_ACCMODE;
    if acc != O_WRONLY && acc != O_RDWR {
        return Err(Errno::EINVAL);
    }
    let base = base_dir(t, dirfd, path)?;
    let dir = Walker::new(t).walk(&base, path, true)?;
    if !dir.meta().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    // Host directories (bind mounts) would need the gofer's O_TMPFILE.
    if dir.fs == FsType::Bind {
        writable_fs(&dir)?;
        return Err(Errno::EOPNOTSUPP);
    }
    let node = if dir.fs == FsType::Dev {
        Node::Shm(crate::fs::shm::ShmFile::new(&t.k.mf, true)?)
    } else {
        Node::Mem(Mutex::new(Vec::new()))
    };
    let mut m = new_meta(t, &dir, &node, S_IFREG | (mode & 0o7777 & !t.umask()))?;
    m.nlink = 0;
    let inode = Inode::new(node, m);
    if flags & O_EXCL == 0 {
        let mut l = lock(linkable());
        l.retain(|w| w.strong_count() > 0);
        l.push(Arc::downgrade(&inode));
    }
    let name = format!("#{}", inode.meta().ino).into_bytes();
    let d = Dentry::new_child(&dir, &name, inode);
    let f = open_dentry(t, &d, flags & !O_TMPFILE)?;
    install(t, f, flags & O_CLOEXEC != 0)
}

fn create_child(
    t: &Task,
    dir: &Arc<Dentry>,
    name: &[u8],
    node: Node,
    mode: u32,
) -> KResult<Arc<Dentry>> {
    let m = new_meta(t, dir, &node, mode)?;
    let charge = crate::fs::tmpfs::new_inode(dir)?;
    let inode = Inode::new(node, m);
    if let Some(c) = charge {
        let _ = inode.charge.set(c);
    }
    let d = Dentry::new_child(dir, name, inode.clone());
    lock(&dir.children).insert(name.to_vec(), Some(d.clone()));
    crate::fs::inotify::created(dir, name, &inode);
    let mut dm = lock(&dir.inode().meta).clone();
    dm.mtime = crate::vfs::now();
    dm.ctime = dm.mtime;
    *lock(&dir.inode().meta) = dm;
    Ok(d)
}

/// The gofer node of a directory in a writable bind mount.
fn bind_dir(
    t: &Task,
    dir: &Arc<Dentry>,
) -> KResult<(gofer::proto::NodeId, Arc<gofer::client::Client>)> {
    writable_fs(dir)?;
    t.may_access(&dir.meta(), 2 | 1)?;
    match &dir.inode().node {
        Node::Lower(l) => Ok((l.node, l.gofer.clone())),
        _ => Err(Errno::EIO),
    }
}

/// A dentry for a host entry just made in a writable bind mount.
fn bind_child(
    dir: &Arc<Dentry>,
    name: &[u8],
    g: &Arc<gofer::client::Client>,
    node: gofer::proto::NodeId,
    st: &gofer::proto::Stat,
) -> Arc<Dentry> {
    let inode = Inode::new(
        Node::Lower(crate::vfs::LowerNode {
            node,
            gofer: g.clone(),
            host_fd: std::sync::OnceLock::new(),
        }),
        Meta::from_gofer(st),
    );
    let d = Dentry::new_child(dir, name, inode.clone());
    lock(&dir.children).insert(name.to_vec(), Some(d.clone()));
    crate::fs::inotify::created(dir, name, &inode);
    d
}

/// open(O_CREAT) of a new file in a writable bind mount.
fn bind_create(
    t: &Task,
    dir: &Arc<Dentry>,
    name: &[u8],
    flags: i32,
    mode: u32,
) -> KResult<Arc<File>> {
    let (node, g) = bind_dir(t, dir)?;
    let acc = if flags & O_ACCMODE == O_RDONLY {
        O_RDWR
    } else {
        flags & O_ACCMODE
    };
    let host_flags = acc | (flags & O_APPEND);
    let (child, st, fd) = g.create(node, name, host_flags, mode).map_err(Errno)?;
    let d = bind_child(dir, name, &g, child, &st);
    Ok(File::new(
        Some(d),
        FileKind::Passthrough { fd: Arc::new(fd) },
        flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
    ))
}

pub fn do_open(t: &Task, dirfd: i32, path: &[u8], flags: i32, mode: u32) -> KResult<u64> {
    do_open_resolve(t, dirfd, path, flags, mode, 0)
}

/// open with openat2's RESOLVE_* restrictions on the walk.
fn do_open_resolve(
    t: &Task,
    dirfd: i32,
    path: &[u8],
    flags: i32,
    mode: u32,
    resolve: u64,
) -> KResult<u64> {
    let install = |t: &Task, f: Arc<File>, cloexec: bool| {
        if let (Some(d), false) = (&f.dentry, matches!(f.kind, FileKind::Path)) {
            crate::fs::inotify::opened(d);
        }
        install(t, f, cloexec)
    };
    if flags & O_TMPFILE == O_TMPFILE {
        return open_tmpfile(t, dirfd, path, flags, mode);
    }
    let base = if resolve & (path::RESOLVE_BENEATH | path::RESOLVE_IN_ROOT) != 0 {
        // A scoped walk starts at dirfd even for an absolute path.
        let b = if dirfd == AT_FDCWD {
            t.cwd()
        } else {
            get_file(t, dirfd)?.dentry.clone().ok_or(Errno::ENOTDIR)?
        };
        if !b.meta().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        b
    } else {
        base_dir(t, dirfd, path)?
    };
    let follow = flags & O_NOFOLLOW == 0;
    let mut w = Walker::scoped(t, &base, resolve);
    let d = if flags & O_CREAT != 0 {
        let (dir, name) = w.walk_parent(&base, path)?;
        if name == b"." || name == b".." || path.ends_with(b"/") {
            return Err(Errno::EISDIR);
        }
        match dir.lookup(&name, t) {
            Ok(existing) => {
                if flags & O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                let existing = existing.follow_mounts();
                if existing.meta().is_lnk() {
                    if !follow {
                        return Err(Errno::ELOOP);
                    }
                    w.walk(&base, path, true)?
                } else {
                    existing
                }
            }
            Err(Errno::ENOENT) if dir.fs == FsType::Mqueue => {
                let d = crate::fs::mqueue::create_file(t, &dir, &name, mode)?;
                let f = open_dentry(t, &d, flags)?;
                return install(t, f, flags & O_CLOEXEC != 0);
            }
            Err(Errno::ENOENT) if dir.fs == FsType::Bind => {
                let mode = mode & 0o7777 & !t.umask();
                let f = bind_create(t, &dir, &name, flags, mode)?;
                return install(t, f, flags & O_CLOEXEC != 0);
            }
            Err(Errno::ENOENT) => {
                let mode = S_IFREG | (mode & 0o7777 & !t.umask());
                // /dev/shm files live in the memory file (shareable mappings).
                let node = if dir.fs == FsType::Dev {
                    Node::Shm(crate::fs::shm::ShmFile::new(&t.k.mf, true)?)
                } else {
                    Node::Mem(Mutex::new(Vec::new()))
                };
                let d = create_child(t, &dir, &name, node, mode)?;
                let f = open_dentry(t, &d, flags)?;
                return install(t, f, flags & O_CLOEXEC != 0);
            }
            Err(e) => return Err(e),
        }
    } else {
        w.walk(&base, path, follow)?
    };
    let meta = d.meta();
    // Linux reports IN_OPEN, then the truncation's IN_MODIFY.
    let mut truncated = false;
    if flags & O_PATH == 0 {
        if meta.is_lnk() {
            return Err(Errno::ELOOP);
        }
        if flags & O_DIRECTORY != 0 && !meta.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let wants_write = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
        if meta.is_dir() && (flags & O_ACCMODE != O_RDONLY || flags & O_CREAT != 0) {
            return Err(Errno::EISDIR);
        }
        t.may_access(
            &meta,
            access_mask(flags) | if flags & O_TRUNC != 0 { 2 } else { 0 },
        )?;
        // A writable procfs file (oom_score_adj): O_TRUNC is ignored.
        let proc_rw = wants_write && matches!(&d.inode().node, Node::Proc(p) if proc::writable(p));
        if wants_write && meta.is_reg() && d.fs == FsType::Bind {
            writable_fs(&d)?;
            if let Node::Lower(l) = &d.inode().node {
                let host_flags = flags & (O_ACCMODE | O_TRUNC | O_APPEND);
                let (fd, st) = l.gofer.open(l.node, host_flags).map_err(Errno)?;
                *lock(&d.inode().meta) = Meta::from_gofer(&st);
                let f = File::new(
                    Some(d.clone()),
                    FileKind::Passthrough { fd: Arc::new(fd) },
                    flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
                );
                return install(t, f, flags & O_CLOEXEC != 0);
            }
        }
        if wants_write && meta.is_reg() && !proc_rw {
            writable_fs(&d)?;
            let inode = d.copy_up()?;
            if flags & O_TRUNC != 0 && flags & O_ACCMODE != O_RDONLY {
                if let Node::Mem(data) = &inode.node {
                    crate::vfs::resize_mem(&mut lock(data), 0, Errno::EFBIG)?;
                    crate::fs::tmpfs::truncated(&inode, 0);
                }
                if let Some(f) = inode.shm() {
                    f.truncate(0)?;
                    crate::fs::tmpfs::truncated(&inode, 0);
                }
                truncated = true;
            }
        }
        if wants_write && !proc_rw && matches!(d.inode().node, Node::Proc(_)) {
            return Err(Errno::EACCES);
        }
    } else if flags & O_DIRECTORY != 0 && !meta.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let f = open_dentry(t, &d, flags)?;
    let fd = install(t, f, flags & O_CLOEXEC != 0)?;
    if truncated {
        crate::fs::inotify::modified(&d);
    }
    Ok(fd)
}

pub fn sys_open(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    do_open(t, AT_FDCWD, &path, a.int(1), a.uint(2))
}

pub fn sys_openat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    do_open(t, a.int(0), &path, a.int(2), a.uint(3))
}

pub fn sys_creat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    do_open(t, AT_FDCWD, &path, O_CREAT | O_WRONLY | O_TRUNC, a.uint(1))
}

pub fn sys_openat2(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    let size = a.usize(3);
    if !(24..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let how: [u64; 2] = t.read_obj(a.u(2))?;
    let resolve: u64 = t.read_obj(a.u(2) + 16)?;
    if size > 24 {
        // A larger struct from a newer libc: its extra fields must be 0.
        let mut rest = vec![0u8; size - 24];
        t.copy_in(a.u(2) + 24, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            return Err(Errno::E2BIG);
        }
    }
    if resolve & !0x3f != 0
        || (resolve & path::RESOLVE_BENEATH != 0 && resolve & path::RESOLVE_IN_ROOT != 0)
    {
        return Err(Errno::EINVAL);
    }
    let (flags, mode) = (how[0], how[1]);
    if resolve & path::RESOLVE_CACHED != 0 && flags & (O_CREAT | O_TRUNC | O_TMPFILE) as u64 != 0 {
        return Err(Errno::EAGAIN);
    }
    if flags > u32::MAX as u64
        || mode & !0o7777 != 0
        || (mode != 0 && flags & (O_CREAT as u64) == 0)
    {
        return Err(Errno::EINVAL);
    }
    do_open_resolve(t, a.int(0), &path, flags as i32, mode as u32, resolve)
}

pub fn sys_close(t: &mut Task, a: &Args) -> KResult<u64> {
    let e = lock(&t.fds()).remove(a.int(0))?;
    super::mqueue::closed(t, &e.file);
    // Closing any fd of a file drops the process's POSIX locks on it.
    if let Ok(key) = lock_key(&e.file) {
        crate::fs::lock::table().release(crate::fs::lock::Owner::Posix(t.tgid), Some(key));
    }
    Ok(0)
}

pub fn sys_close_range(t: &mut Task, a: &Args) -> KResult<u64> {
    const CLOSE_RANGE_UNSHARE: u32 = 2;
    const CLOSE_RANGE_CLOEXEC: u32 = 4;
    let (first, last, flags) = (a.uint(0), a.uint(1), a.uint(2));
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    lock(&t.fds()).close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
    Ok(0)
}

/// EPIPE from a write or send: SIGPIPE to the calling thread.
pub(crate) fn raise_sigpipe(t: &Task) {
    crate::signals::send_thread(
        &t.k,
        &t.info,
        crate::signals::SigInfo {
            signo: libc::SIGPIPE,
            code: crate::signals::SI_USER,
            pid: t.tgid,
            ..Default::default()
        },
    );
}

/// Write `data` to `f`; a broken pipe also raises SIGPIPE.
pub(crate) fn write_file(t: &mut Task, f: &File, data: &[u8], off: Option<u64>) -> KResult<usize> {
    if let (FileKind::Synthetic(_), Some(d)) = (&f.kind, &f.dentry) {
        if let Node::Proc(p) = &d.inode().node {
            return proc::write(p, t, data);
        }
    }
    let r = match (&f.kind, off) {
        (FileKind::Tty(tf), _) => tf.write(t, f, data),
        (_, Some(o)) => f.pwrite(data, o),
        (_, None) => f.write(data),
    };
    if let (Some(d), Ok(1..)) = (&f.dentry, &r) {
        crate::fs::inotify::modified(d);
    }
    if r == Err(Errno::EPIPE) {
        raise_sigpipe(t);
    }
    r
}

fn read_common(t: &mut Task, fd: i32, buf: u64, count: usize, off: Option<u64>) -> KResult<u64> {
    let f = get_file(t, fd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    if matches!(f.kind, FileKind::Dir { .. }) {
        return Err(Errno::EISDIR);
    }
    if off.is_some() && !f.is_seekable() {
        return Err(Errno::ESPIPE);
    }
    let n = count.min(MAX_RW).min(CHUNK);
    if n == 0 {
        return Ok(0);
    }
    // Probe the destination first so a bad pointer consumes no input.
    t.copy_out(buf, &[]).and_then(|_| {
        let mm = t.mm();
        let mm = lock(&mm);
        let mut probe = [0u8; 1];
        mm.copy_in(buf, &mut probe)?;
        mm.copy_in(
            buf.checked_add(n as u64 - 1).ok_or(Errno::EFAULT)?,
            &mut probe,
        )
    })?;
    let mut data = vec![0u8; n];
    let got = match (&f.kind, off) {
        (FileKind::Tty(tf), _) => tf.read(t, &f, &mut data)?,
        (_, Some(o)) => f.pread(&mut data, o)?,
        (_, None) => f.read(&mut data)?,
    };
    t.copy_out(buf, &data[..got])?;
    if let (Some(d), true) = (&f.dentry, got > 0) {
        crate::fs::inotify::accessed(d);
    }
    Ok(got as u64)
}

pub fn sys_read(t: &mut Task, a: &Args) -> KResult<u64> {
    read_common(t, a.int(0), a.u(1), a.usize(2), None)
}

pub fn sys_pread64(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.i64(3) < 0 {
        return Err(Errno::EINVAL);
    }
    read_common(t, a.int(0), a.u(1), a.usize(2), Some(a.u(3)))
}

fn write_common(t: &mut Task, fd: i32, buf: u64, count: usize, off: Option<u64>) -> KResult<u64> {
    let f = get_file(t, fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if off.is_some() && !f.is_seekable() {
        return Err(Errno::ESPIPE);
    }
    let n = count.min(MAX_RW).min(CHUNK);
    if n == 0 {
        return Ok(0);
    }
    if matches!(f.kind, FileKind::Passthrough { .. } | FileKind::Mem(_)) {
        // A host file, or a file in the memory file: written straight from
        // the workload's pages.
        let mm = t.mm();
        let pieces = || lock(&mm).read_pieces(buf, n);
        if let Some(r) = f.write_direct(&t.k.mf, n, pieces, off) {
            if let (Some(d), Ok(1..)) = (&f.dentry, &r) {
                crate::fs::inotify::modified(d);
            }
            return r.map(|n| n as u64);
        }
    }
    let mut data = vec![0u8; n];
    t.copy_in(buf, &mut data)?;
    write_file(t, &f, &data, off).map(|n| n as u64)
}

pub fn sys_write(t: &mut Task, a: &Args) -> KResult<u64> {
    write_common(t, a.int(0), a.u(1), a.usize(2), None)
}

pub fn sys_pwrite64(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.i64(3) < 0 {
        return Err(Errno::EINVAL);
    }
    write_common(t, a.int(0), a.u(1), a.usize(2), Some(a.u(3)))
}

pub(crate) fn read_iovecs(t: &Task, addr: u64, cnt: usize) -> KResult<Vec<IoVec>> {
    if cnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut v = Vec::with_capacity(cnt);
    let mut total: u64 = 0;
    for i in 0..cnt as u64 {
        let iov: IoVec = t.read_obj(addr + i * 16)?;
        if iov.len > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        total = total.checked_add(iov.len).ok_or(Errno::EINVAL)?;
        if total > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push(iov);
    }
    Ok(v)
}

fn readv_common(t: &mut Task, fd: i32, iov: u64, cnt: usize, off: Option<u64>) -> KResult<u64> {
    let iovs = read_iovecs(t, iov, cnt)?;
    let f = get_file(t, fd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    let mut total = 0u64;
    for v in iovs {
        if v.len == 0 {
            continue;
        }
        let r = read_common(t, fd, v.base, v.len as usize, off.map(|o| o + total));
        match r {
            Ok(n) => {
                total += n;
                if n < v.len {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

fn writev_common(t: &mut Task, fd: i32, iov: u64, cnt: usize, off: Option<u64>) -> KResult<u64> {
    let iovs = read_iovecs(t, iov, cnt)?;
    let f = get_file(t, fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    // Gather into one buffer so the write is a single operation (pipes and
    // terminals see one record, as with Linux's writev).
    let mut data = Vec::new();
    for v in &iovs {
        let n = (v.len as usize).min(CHUNK.saturating_sub(data.len()));
        if n == 0 {
            continue;
        }
        let start = data.len();
        data.resize(start + n, 0);
        if let Err(e) = t.copy_in(v.base, &mut data[start..]) {
            data.truncate(start);
            if data.is_empty() {
                return Err(e);
            }
            break;
        }
    }
    if data.is_empty() {
        return Ok(0);
    }
    if off.is_some() && !f.is_seekable() {
        return Err(Errno::ESPIPE);
    }
    write_file(t, &f, &data, off).map(|n| n as u64)
}

pub fn sys_readv(t: &mut Task, a: &Args) -> KResult<u64> {
    readv_common(t, a.int(0), a.u(1), a.usize(2), None)
}

pub fn sys_writev(t: &mut Task, a: &Args) -> KResult<u64> {
    writev_common(t, a.int(0), a.u(1), a.usize(2), None)
}

pub fn sys_preadv(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.i64(3) < 0 {
        return Err(Errno::EINVAL);
    }
    readv_common(t, a.int(0), a.u(1), a.usize(2), Some(a.u(3)))
}

pub fn sys_pwritev(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.i64(3) < 0 {
        return Err(Errno::EINVAL);
    }
    writev_common(t, a.int(0), a.u(1), a.usize(2), Some(a.u(3)))
}

/// preadv2/pwritev2 flags (include/uapi/linux/fs.h).
const RWF_HIPRI: i32 = 0x1;
const RWF_DSYNC: i32 = 0x2;
const RWF_SYNC: i32 = 0x4;
const RWF_NOWAIT: i32 = 0x8;
const RWF_APPEND: i32 = 0x10;

/// The offset argument of preadv2/pwritev2: -1 is the file position.
fn rw2_offset(a: &Args) -> KResult<Option<u64>> {
    match a.i64(3) {
        -1 => Ok(None),
        o if o < 0 => Err(Errno::EINVAL),
        o => Ok(Some(o as u64)),
    }
}

/// RWF_NOWAIT asks never to wait: regular files never make a reader or
/// writer wait here; other files do not support it (EOPNOTSUPP, as for
/// files without FMODE_NOWAIT).
fn check_nowait(t: &Task, fd: i32, flags: i32) -> KResult<()> {
    if flags & RWF_NOWAIT != 0 {
        let f = get_file(t, fd)?;
        if !matches!(
            f.kind,
            FileKind::Mem(_) | FileKind::Lower { .. } | FileKind::Passthrough { .. }
        ) {
            return Err(Errno::EOPNOTSUPP);
        }
    }
    Ok(())
}

/// preadv2(2): preadv with flags (RWF_HIPRI is a hint with nothing to
/// poll here; RWF_NOWAIT see `check_nowait`).
pub fn sys_preadv2(t: &mut Task, a: &Args) -> KResult<u64> {
    let flags = a.int(5);
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let off = rw2_offset(a)?;
    check_nowait(t, a.int(0), flags)?;
    readv_common(t, a.int(0), a.u(1), a.usize(2), off)
}

/// pwritev2(2): pwritev with flags: RWF_APPEND writes at the end whatever
/// the offset, RWF_DSYNC/RWF_SYNC make this write durable as fdatasync.
pub fn sys_pwritev2(t: &mut Task, a: &Args) -> KResult<u64> {
    let fd = a.int(0);
    let flags = a.int(5);
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let mut off = rw2_offset(a)?;
    check_nowait(t, fd, flags)?;
    if flags & RWF_APPEND != 0 {
        let f = get_file(t, fd)?;
        if !f.is_seekable() {
            off = None;
        } else {
            // The write goes at the end; the file position does not move.
            off = Some(f.size()?);
        }
    }
    let n = writev_common(t, fd, a.u(1), a.usize(2), off)?;
    if flags & (RWF_DSYNC | RWF_SYNC) != 0 && n > 0 {
        let f = get_file(t, fd)?;
        if let FileKind::Passthrough { fd } = &f.kind {
            nix::unistd::fdatasync(std::os::fd::AsRawFd::as_raw_fd(&**fd))?;
        }
    }
    Ok(n)
}

pub fn sys_lseek(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    if matches!(f.kind, FileKind::Path) {
        return Err(Errno::EBADF);
    }
    f.lseek(a.i64(1), a.int(2))
}

pub fn sys_dup(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    install(t, f, false)
}

fn dup_to(t: &Task, old: i32, new: i32, cloexec: bool) -> KResult<u64> {
    let f = get_file(t, old)?;
    if new < 0 || new as u64 >= t.nofile_limit() {
        return Err(Errno::EBADF);
    }
    lock(&t.fds()).put(new, f, cloexec);
    Ok(new as u64)
}

pub fn sys_dup2(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.int(0) == a.int(1) {
        get_file(t, a.int(0))?;
        return Ok(a.int(1) as u64);
    }
    dup_to(t, a.int(0), a.int(1), false)
}

pub fn sys_dup3(t: &mut Task, a: &Args) -> KResult<u64> {
    let flags = a.int(2);
    if flags & !O_CLOEXEC != 0 || a.int(0) == a.int(1) {
        return Err(Errno::EINVAL);
    }
    dup_to(t, a.int(0), a.int(1), flags & O_CLOEXEC != 0)
}

/// The key of a file's inode in the lock table.
fn lock_key(f: &File) -> KResult<usize> {
    match &f.dentry {
        Some(d) => Ok(Arc::as_ptr(&d.inode()) as usize),
        None => Err(Errno::EBADF),
    }
}

/// fcntl F_GETLK/F_SETLK/F_SETLKW and the F_OFD_* forms: `struct flock`
/// is { short l_type, l_whence; off_t l_start, l_len; pid_t l_pid }.
fn fcntl_lock(t: &Task, f: &Arc<File>, cmd: i32, addr: u64) -> KResult<u64> {
    use crate::fs::lock::{table, Lock, Owner, F_RDLCK, F_UNLCK, F_WRLCK};
    const F_GETLK: i32 = 5;
    const F_SETLKW: i32 = 7;
    const F_OFD_GETLK: i32 = 36;
    const F_OFD_SETLKW: i32 = 38;
    let mut raw = [0u8; 32];
    t.copy_in(addr, &mut raw)?;
    let l_type = i16::from_le_bytes([raw[0], raw[1]]);
    let whence = i16::from_le_bytes([raw[2], raw[3]]);
    let start = i64::from_le_bytes(raw[8..16].try_into().map_err(|_| Errno::EFAULT)?);
    let len = i64::from_le_bytes(raw[16..24].try_into().map_err(|_| Errno::EFAULT)?);
    let l_pid = i32::from_le_bytes(raw[24..28].try_into().map_err(|_| Errno::EFAULT)?);
    let ofd = cmd >= F_OFD_GETLK;
    if ofd && l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    if !matches!(l_type, F_RDLCK | F_WRLCK | F_UNLCK) {
        return Err(Errno::EINVAL);
    }
    let base: i64 = match whence {
        0 => 0,
        1 => *lock(&f.pos) as i64,
        2 => f.size()? as i64,
        _ => return Err(Errno::EINVAL),
    };
    let from = base.checked_add(start).ok_or(Errno::EOVERFLOW)?;
    let (s, e) = if len > 0 {
        (from, from.checked_add(len - 1).ok_or(Errno::EOVERFLOW)?)
    } else if len == 0 {
        (from, i64::MAX)
    } else {
        (from.checked_add(len).ok_or(Errno::EINVAL)?, from - 1)
    };
    if s < 0 {
        return Err(Errno::EINVAL);
    }
    let (s, e) = (s as u64, if e == i64::MAX { u64::MAX } else { e as u64 });
    let key = lock_key(f)?;
    let owner = if ofd {
        Owner::Ofd(Arc::as_ptr(f) as usize)
    } else {
        Owner::Posix(t.tgid)
    };
    if cmd == F_GETLK || cmd == F_OFD_GETLK {
        if l_type == F_UNLCK {
            return Err(Errno::EINVAL);
        }
        let want = Lock {
            owner,
            write: l_type == F_WRLCK,
            start: s,
            end: e,
        };
        let mut out = raw;
        match table().test(key, &want) {
            None => out[0..2].copy_from_slice(&F_UNLCK.to_le_bytes()),
            Some(c) => {
                let t16: i16 = if c.write { F_WRLCK } else { F_RDLCK };
                out[0..2].copy_from_slice(&t16.to_le_bytes());
                out[2..4].copy_from_slice(&0i16.to_le_bytes());
                out[8..16].copy_from_slice(&(c.start as i64).to_le_bytes());
                let l = if c.end == u64::MAX {
                    0
                } else {
                    (c.end - c.start + 1) as i64
                };
                out[16..24].copy_from_slice(&l.to_le_bytes());
                let pid = match c.owner {
                    Owner::Posix(p) => p,
                    _ => -1,
                };
                out[24..28].copy_from_slice(&pid.to_le_bytes());
            }
        }
        t.copy_out(addr, &out)?;
        return Ok(0);
    }
    let acc = f.flags() & O_ACCMODE;
    let kind = match l_type {
        F_RDLCK if acc == O_WRONLY => return Err(Errno::EBADF),
        F_WRLCK if acc == O_RDONLY => return Err(Errno::EBADF),
        F_RDLCK => Some(false),
        F_WRLCK => Some(true),
        _ => None,
    };
    let wait = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
    table().set(key, owner, kind, s, e, wait).map(|_| 0)
}

pub fn sys_flock(t: &mut Task, a: &Args) -> KResult<u64> {
    use crate::fs::lock::{table, Owner};
    const LOCK_SH: i32 = 1;
    const LOCK_EX: i32 = 2;
    const LOCK_NB: i32 = 4;
    const LOCK_UN: i32 = 8;
    let f = get_file(t, a.int(0))?;
    if matches!(f.kind, FileKind::Path) {
        return Err(Errno::EBADF);
    }
    let op = a.int(1);
    let kind = match op & !LOCK_NB {
        LOCK_SH => Some(false),
        LOCK_EX => Some(true),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let key = lock_key(&f)?;
    let owner = Owner::Flock(Arc::as_ptr(&f) as usize);
    // Converting a flock lock drops the old one first, as Linux does.
    // A conflict without LOCK_NB is EWOULDBLOCK (= EAGAIN).
    if kind.is_some() {
        table().set(key, owner, None, 0, u64::MAX, false)?;
    }
    table()
        .set(key, owner, kind, 0, u64::MAX, op & LOCK_NB == 0)
        .map(|_| 0)
}

pub fn sys_fcntl(t: &mut Task, a: &Args) -> KResult<u64> {
    const F_DUPFD: i32 = 0;
    const F_GETFD: i32 = 1;
    const F_SETFD: i32 = 2;
    const F_GETFL: i32 = 3;
    const F_SETFL: i32 = 4;
    const F_DUPFD_CLOEXEC: i32 = 1030;
    const F_SETPIPE_SZ: i32 = 1031;
    const F_GETPIPE_SZ: i32 = 1032;
    const F_ADD_SEALS: i32 = 1033;
    const F_GET_SEALS: i32 = 1034;
    const F_NOTIFY: i32 = 1026;
    let fd = a.int(0);
    let fds = t.fds();
    match a.int(1) {
        F_NOTIFY => {
            let f = lock(&fds).get(fd)?;
            if matches!(f.kind, FileKind::Path) {
                return Err(Errno::EBADF);
            }
            crate::fs::dnotify::set(t, &f, a.uint(2))
        }
        cmd @ (5 | 6 | 7 | 36 | 37 | 38) => {
            let f = lock(&fds).get(fd)?;
            if matches!(f.kind, FileKind::Path) {
                return Err(Errno::EBADF);
            }
            fcntl_lock(t, &f, cmd, a.u(2))
        }
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let f = lock(&fds).get(fd)?;
            let min = a.int(2);
            if min < 0 || min as u64 >= t.nofile_limit() {
                return Err(Errno::EINVAL);
            }
            let limit = t.nofile_limit();
            lock(&fds)
                .alloc(f, a.int(1) == F_DUPFD_CLOEXEC, min, limit)
                .map(|v| v as u64)
        }
        F_GETFD => Ok(lock(&fds).entry(fd)?.cloexec as u64),
        F_SETFD => lock(&fds).set_cloexec(fd, a.u(2) & 1 != 0).map(|_| 0),
        F_GETFL => {
            let f = lock(&fds).get(fd)?;
            // O_LARGEFILE, as Linux reports for open(2)'s files.
            Ok((f.flags() | crate::fs::mqueue::largefile(&f)) as u64)
        }
        F_SETFL => {
            let f = lock(&fds).get(fd)?;
            let settable = O_APPEND | O_NONBLOCK | 0o40000 /* O_DIRECT */ | 0o1000000 /* O_NOATIME */ | 0o20000 /* O_ASYNC */;
            let old = f.flags();
            if f.flags() & O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            let new = (old & !settable) | (a.int(2) & settable);
            f.flags.store(new, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        F_ADD_SEALS | F_GET_SEALS => {
            let f = lock(&fds).get(fd)?;
            let shm = match (&f.kind, f.dentry.as_ref().map(|d| d.inode())) {
                (FileKind::Mem(_), Some(i)) if matches!(i.node, Node::Shm(_)) => i,
                _ => return Err(Errno::EINVAL),
            };
            let Node::Shm(s) = &shm.node else {
                return Err(Errno::EINVAL);
            };
            if a.int(1) == F_GET_SEALS {
                return Ok(s.seals() as u64);
            }
            if !f.writable() {
                return Err(Errno::EPERM);
            }
            s.add_seals(a.uint(2)).map(|_| 0)
        }
        F_GETPIPE_SZ | F_SETPIPE_SZ => {
            let f = lock(&fds).get(fd)?;
            let FileKind::Pipe { pipe, .. } = &f.kind else {
                return Err(Errno::EBADF);
            };
            if a.int(1) == F_GETPIPE_SZ {
                Ok(pipe.capacity() as u64)
            } else {
                pipe.set_capacity(a.usize(2)).map(|c| c as u64)
            }
        }
        _ => {
            lock(&fds).get(fd)?;
            Err(Errno::EINVAL)
        }
    }
}

pub fn sys_pipe2(t: &mut Task, a: &Args) -> KResult<u64> {
    const O_DIRECT: i32 = 0o40000;
    let flags = a.int(1);
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let pipe = Arc::new(crate::fs::pipe::Pipe::default());
    let r = File::new_pipe(pipe.clone(), false, flags);
    let w = File::new_pipe(pipe, true, flags);
    let cloexec = flags & O_CLOEXEC != 0;
    install_pair(t, r, w, cloexec, a.u(0))
}

pub fn sys_pipe(t: &mut Task, a: &Args) -> KResult<u64> {
    sys_pipe2(t, &Args([a.u(0), 0, 0, 0, 0, 0]))
}

pub fn sys_ioctl(t: &mut Task, a: &Args) -> KResult<u64> {
    const TCGETS: u64 = 0x5401;
    const TCSETS: u64 = 0x5402;
    const TCSETSW: u64 = 0x5403;
    const TCSETSF: u64 = 0x5404;
    const TIOCGPGRP: u64 = 0x540f;
    const TIOCGWINSZ: u64 = 0x5413;
    const TIOCSWINSZ: u64 = 0x5414;
    const FIONREAD: u64 = 0x541b;
    const FIONBIO: u64 = 0x5421;
    const FIONCLEX: u64 = 0x5450;
    const FIOCLEX: u64 = 0x5451;
    let fd = a.int(0);
    let f = get_file(t, fd)?;
    if matches!(f.kind, FileKind::Path) {
        return Err(Errno::EBADF);
    }
    let req = a.u(1) & 0xffff_ffff;
    match req {
        FIOCLEX | FIONCLEX => return lock(&t.fds()).set_cloexec(fd, req == FIOCLEX).map(|_| 0),
        FIONBIO => {
            let on: i32 = t.read_obj(a.u(2))?;
            let fl = f.flags();
            f.flags.store(
                if on != 0 {
                    fl | O_NONBLOCK
                } else {
                    fl & !O_NONBLOCK
                },
                std::sync::atomic::Ordering::Relaxed,
            );
            return Ok(0);
        }
        _ => {}
    }
    if let Some(r) = crate::fs::anon_ioctl(t, &f.kind, req, a.u(2)) {
        return r;
    }
    match &f.kind {
        FileKind::Tty(tf) => crate::fs::pty::ioctl(t, &f, tf, req, a.u(2)),
        FileKind::Host {
            fd: hfd, tty: true, ..
        } => {
            use std::os::fd::AsRawFd;
            let size = match req {
                TCGETS | TCSETS | TCSETSW | TCSETSF => 36, // struct termios (kernel: 4 flags, c_line, 19 c_cc)
                TIOCGWINSZ | TIOCSWINSZ => 8,
                TIOCGPGRP => {
                    return t.write_obj(a.u(2), &(t.tgid)).map(|_| 0);
                }
                FIONREAD => 4,
                _ => return Err(Errno::ENOTTY),
            };
            let mut buf = vec![0u8; size];
            let is_set = matches!(req, TCSETS | TCSETSW | TCSETSF | TIOCSWINSZ);
            if is_set {
                t.copy_in(a.u(2), &mut buf)?;
            }
            // SAFETY: buf is large enough for the request's argument struct.
            let r = unsafe { libc::ioctl(hfd.as_raw_fd(), req as _, buf.as_mut_ptr()) };
            if r < 0 {
                return Err(Errno::last_host());
            }
            if !is_set {
                t.copy_out(a.u(2), &buf)?;
            }
            Ok(r as u64)
        }
        FileKind::Dir { .. } if req == FIONREAD => Err(Errno::ENOTTY),
        // SIOCINQ (= FIONREAD) and SIOCOUTQ (= TIOCOUTQ).
        FileKind::Socket(sock) if req == FIONREAD => t
            .write_obj(a.u(2), &(sock.inq()?.min(i32::MAX as usize) as i32))
            .map(|_| 0),
        FileKind::Socket(sock) if crate::fs::inet::netdev::handles(req) => {
            crate::fs::inet::netdev::ioctl(t, sock.family, req, a.u(2))
        }
        FileKind::Socket(sock) if req == 0x5411 => t
            .write_obj(a.u(2), &(sock.outq().min(i32::MAX as usize) as i32))
            .map(|_| 0),
        FileKind::Pipe { pipe, .. } if req == FIONREAD => {
            t.write_obj(a.u(2), &(pipe.available() as i32)).map(|_| 0)
        }
        FileKind::Lower { .. } | FileKind::Mem(_) | FileKind::Synthetic(_) if req == FIONREAD => {
            let size = f.size()?;
            let pos = *lock(&f.pos);
            let n = size.saturating_sub(pos).min(i32::MAX as u64) as i32;
            t.write_obj(a.u(2), &n).map(|_| 0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

// stat family.

fn stat_at(t: &Task, dirfd: i32, path: &[u8], flags: i32) -> KResult<KStat> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return Ok(t.cwd().meta().to_kstat());
        }
        return get_file(t, dirfd)?.stat();
    }
    let base = base_dir(t, dirfd, path)?;
    let d = Walker::new(t).walk(&base, path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    Ok(d.meta().to_kstat())
}

pub fn sys_stat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let st = stat_at(t, AT_FDCWD, &path, 0)?;
    t.write_obj(a.u(1), &st).map(|_| 0)
}

pub fn sys_lstat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let st = stat_at(t, AT_FDCWD, &path, AT_SYMLINK_NOFOLLOW)?;
    t.write_obj(a.u(1), &st).map(|_| 0)
}

pub fn sys_fstat(t: &mut Task, a: &Args) -> KResult<u64> {
    let st = get_file(t, a.int(0))?.stat()?;
    t.write_obj(a.u(1), &st).map(|_| 0)
}

pub fn sys_newfstatat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    let st = stat_at(t, a.int(0), &path, a.int(3))?;
    t.write_obj(a.u(2), &st).map(|_| 0)
}

fn dev_major(d: u64) -> u32 {
    (((d >> 8) & 0xfff) | ((d >> 32) & !0xfff)) as u32
}

fn dev_minor(d: u64) -> u32 {
    ((d & 0xff) | ((d >> 12) & !0xff)) as u32
}

pub fn sys_statx(t: &mut Task, a: &Args) -> KResult<u64> {
    const AT_STATX_SYNC_TYPE: i32 = 0x6000;
    let flags = a.int(2);
    let mask = a.uint(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & 0x8000_0000 != 0
    {
        return Err(Errno::EINVAL);
    }
    let path = t.read_path(a.u(1))?;
    let st = stat_at(t, a.int(0), &path, flags & !AT_STATX_SYNC_TYPE)?;
    let mut b = [0u8; 256];
    let put32 = |b: &mut [u8; 256], o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |b: &mut [u8; 256], o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
    put32(&mut b, 0, 0x7ff); // STATX_BASIC_STATS
    put32(&mut b, 4, st.st_blksize as u32);
    put32(&mut b, 16, st.st_nlink as u32);
    put32(&mut b, 20, st.st_uid);
    put32(&mut b, 24, st.st_gid);
    b[28..30].copy_from_slice(&(st.st_mode as u16).to_le_bytes());
    put64(&mut b, 32, st.st_ino);
    put64(&mut b, 40, st.st_size as u64);
    put64(&mut b, 48, st.st_blocks as u64);
    for (o, (s, ns)) in [
        (64, (st.st_atime, st.st_atime_nsec)),
        (96, (st.st_ctime, st.st_ctime_nsec)),
        (112, (st.st_mtime, st.st_mtime_nsec)),
    ] {
        put64(&mut b, o, s as u64);
        put32(&mut b, o + 8, ns as u32);
    }
    put32(&mut b, 128, dev_major(st.st_rdev));
    put32(&mut b, 132, dev_minor(st.st_rdev));
    put32(&mut b, 136, dev_major(st.st_dev));
    put32(&mut b, 140, dev_minor(st.st_dev));
    t.copy_out(a.u(4), &b).map(|_| 0)
}

pub fn sys_getdents64(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    if matches!(f.kind, FileKind::Path) {
        return Err(Errno::EBADF);
    }
    let cap = a.usize(2).min(CHUNK);
    let buf = f.getdents(t, cap)?;
    t.copy_out(a.u(1), &buf)?;
    if let Some(d) = &f.dentry {
        crate::fs::inotify::accessed(d);
    }
    Ok(buf.len() as u64)
}

// Links and names.

fn readlink_at(t: &Task, dirfd: i32, path: &[u8], buf: u64, size: i32) -> KResult<u64> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let d = if path.is_empty() {
        get_file(t, dirfd)?.dentry.clone().ok_or(Errno::ENOENT)?
    } else {
        let base = base_dir(t, dirfd, path)?;
        Walker::new(t).walk(&base, path, false)?
    };
    let target = path::readlink(t, &d)?;
    let n = target.len().min(size as usize);
    t.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn sys_readlink(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    readlink_at(t, AT_FDCWD, &path, a.u(1), a.int(2))
}

pub fn sys_readlinkat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    readlink_at(t, a.int(0), &path, a.u(2), a.int(3))
}

fn access_at(t: &Task, dirfd: i32, path: &[u8], mode: i32, flags: i32) -> KResult<u64> {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let d = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        get_file(t, dirfd)?.dentry.clone().ok_or(Errno::EBADF)?
    } else {
        let base = base_dir(t, dirfd, path)?;
        Walker::new(t).walk(&base, path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    let m = d.meta();
    if mode & 2 != 0 && matches!(d.fs, FsType::Proc | FsType::Sys) && !m.is_dir() {
        return Err(Errno::EACCES);
    }
    t.may_access(&m, mode as u32)?;
    Ok(0)
}

pub fn sys_access(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    access_at(t, AT_FDCWD, &path, a.int(1), 0)
}

pub fn sys_faccessat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    access_at(t, a.int(0), &path, a.int(2), 0)
}

pub fn sys_faccessat2(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    access_at(t, a.int(0), &path, a.int(2), a.int(3))
}

pub fn sys_getcwd(t: &mut Task, a: &Args) -> KResult<u64> {
    let mut p = t.cwd().path();
    p.push(0);
    if a.usize(1) < p.len() {
        return Err(Errno::ERANGE);
    }
    t.copy_out(a.u(0), &p)?;
    Ok(p.len() as u64)
}

fn set_cwd(t: &Task, d: Arc<Dentry>) -> KResult<u64> {
    if !d.meta().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    t.may_access(&d.meta(), 1)?;
    lock(&t.info.fs).cwd = d;
    Ok(0)
}

pub fn sys_chdir(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let d = Walker::new(t).walk(&t.cwd(), &path, true)?;
    set_cwd(t, d)
}

pub fn sys_fchdir(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    set_cwd(t, d)
}

pub fn sys_umask(t: &mut Task, a: &Args) -> KResult<u64> {
    let mut fs = lock(&t.info.fs);
    let old = fs.umask;
    fs.umask = a.uint(0) & 0o777;
    Ok(old as u64)
}

/// bind(2) of an AF_UNIX socket to a path: a new socket inode (an
/// existing name is EADDRINUSE), mode 0777 less the umask.
pub(crate) fn bind_socket_node(
    t: &Task,
    path: &[u8],
    sock: std::sync::Weak<crate::fs::unix::Socket>,
) -> KResult<()> {
    let (dir, name) = Walker::new(t).walk_parent(&t.cwd(), path)?;
    if name == b"." || name == b".." || path.ends_with(b"/") {
        return Err(Errno::EADDRINUSE);
    }
    match dir.lookup(&name, t) {
        Ok(_) => return Err(Errno::EADDRINUSE),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    create_child(
        t,
        &dir,
        &name,
        Node::Socket(sock),
        S_IFSOCK | (0o777 & !t.umask()),
    )?;
    Ok(())
}

/// connect(2)/sendto(2) by path: the socket bound there. Needs write
/// permission on the socket inode; anything else there, or a socket
/// nobody holds, refuses the connection.
pub(crate) fn find_socket_node(t: &Task, path: &[u8]) -> KResult<Arc<crate::fs::unix::Socket>> {
    let d = Walker::new(t).walk(&t.cwd(), path, true)?;
    let inode = d.inode();
    let Node::Socket(w) = &inode.node else {
        return Err(Errno::ECONNREFUSED);
    };
    t.may_access(&inode.meta(), 2)?;
    w.upgrade().ok_or(Errno::ECONNREFUSED)
}

/// connect(2) to `path` when it names a host socket file in a bind mount:
/// the gofer connects a host socket of type `ty` to it (only if the
/// sandbox was started with `--host-uds open`; else ECONNREFUSED, as for
/// any socket file nobody in the sandbox listens on). `None` for every
/// other path, which the sandbox's own sockets serve.
pub(crate) fn connect_host_socket(
    t: &Task,
    path: &[u8],
    ty: i32,
) -> KResult<Option<crate::fs::hostsock::HostConn>> {
    let d = Walker::new(t).walk(&t.cwd(), path, true)?;
    let inode = d.inode();
    let Node::Lower(l) = &inode.node else {
        return Ok(None);
    };
    let meta = inode.meta();
    if meta.mode & S_IFMT != S_IFSOCK || d.in_rootfs() {
        return Ok(None);
    }
    t.may_access(&meta, 2)?;
    let fd = l.gofer.connect(l.node, ty).map_err(Errno)?;
    Ok(Some(crate::fs::hostsock::HostConn::new(fd, path.to_vec())))
}

/// mknod(2): regular files, FIFOs, and (with CAP_MKNOD) device nodes,
/// which exist but have no driver in the sentry (ENXIO on open, as a
/// socket inode gives too).
fn mknod_at(t: &Task, dirfd: i32, path: &[u8], mode: u32, dev: u64) -> KResult<u64> {
    const CAP_MKNOD: u32 = 27;
    let base = base_dir(t, dirfd, path)?;
    let (dir, name) = Walker::new(t).walk_parent(&base, path)?;
    if name == b"." || name == b".." || path.ends_with(b"/") {
        return Err(Errno::EEXIST);
    }
    let ty = if mode & S_IFMT == 0 {
        S_IFREG
    } else {
        mode & S_IFMT
    };
    let node = match ty {
        S_IFREG => Node::Mem(Mutex::new(Vec::new())),
        S_IFIFO => Node::Fifo(Arc::new(crate::fs::pipe::Pipe::default())),
        S_IFCHR | S_IFBLK => {
            if !t.creds().has_cap(CAP_MKNOD) {
                return Err(Errno::EPERM);
            }
            let (major, minor) = (((dev >> 8) & 0xfff), (dev & 0xff) | ((dev >> 12) & 0xfff00));
            let known = (ty == S_IFCHR)
                .then(|| crate::fs::dev::DevKind::known(major, minor))
                .flatten();
            Node::Dev(known.unwrap_or(crate::fs::dev::DevKind::Other {
                block: ty == S_IFBLK,
                rdev: (major << 8) | minor,
            }))
        }
        S_IFSOCK => Node::Socket(std::sync::Weak::new()),
        _ => return Err(Errno::EINVAL),
    };
    match dir.lookup(&name, t) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if dir.fs == FsType::Bind && matches!(ty, S_IFIFO | S_IFREG) {
        // The host gets the node; a FIFO's pipe is the sentry's (host
        // processes opening it do not meet the sandbox's).
        let (dnode, g) = bind_dir(t, &dir)?;
        let (child, st) = g
            .mknod(dnode, &name, ty | (mode & 0o7777 & !t.umask()))
            .map_err(Errno)?;
        let d = bind_child(&dir, &name, &g, child, &st);
        if let Node::Fifo(_) = &node {
            let inode = Inode::new(node, Meta::from_gofer(&st));
            let fd = Dentry::new_child(&dir, &name, inode);
            lock(&dir.children).insert(name.to_vec(), Some(fd));
        }
        let _ = d;
        return Ok(0);
    }
    let d = create_child(t, &dir, &name, node, ty | (mode & 0o7777 & !t.umask()))?;
    if matches!(ty, S_IFCHR | S_IFBLK) {
        let inode = d.inode();
        let mut m = lock(&inode.meta);
        m.rdev = dev & 0xffff_ffff;
    }
    Ok(0)
}

pub fn sys_mknod(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    mknod_at(t, AT_FDCWD, &path, a.uint(1), a.u(2))
}

pub fn sys_mknodat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    mknod_at(t, a.int(0), &path, a.uint(2), a.u(3))
}

/// fallocate(2): mode 0 (allocate, growing the file) and KEEP_SIZE;
/// PUNCH_HOLE|KEEP_SIZE zeroes the range. Other modes: EOPNOTSUPP.
pub fn sys_fallocate(t: &mut Task, a: &Args) -> KResult<u64> {
    const KEEP_SIZE: i32 = 1;
    const PUNCH_HOLE: i32 = 2;
    let f = get_file(t, a.int(0))?;
    let (mode, off, len) = (a.int(1), a.i64(2), a.i64(3));
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let end = off.checked_add(len).ok_or(Errno::EFBIG)? as u64;
    if matches!(f.kind, FileKind::Pipe { .. } | FileKind::Fifo { .. }) {
        return Err(Errno::ESPIPE);
    }
    let d = f.dentry.clone().ok_or(Errno::ENODEV)?;
    if !d.meta().is_reg() {
        return Err(if d.meta().is_dir() {
            Errno::EISDIR
        } else {
            Errno::ENODEV
        });
    }
    match mode {
        0 | KEEP_SIZE => {
            // A sized tmpfs charges the range's pages first (ENOSPC).
            if d.fs == FsType::Tmpfs {
                let inode = d.inode();
                if matches!(inode.node, Node::Mem(_)) {
                    crate::fs::tmpfs::charge_alloc(&d, &inode, off as u64, end)?;
                }
            }
            if mode == 0 && end > d.meta().size {
                truncate_d(t, &d, end as i64)?;
            }
            Ok(0)
        }
        m if m == PUNCH_HOLE | KEEP_SIZE => {
            let size = d.meta().size;
            let end = end.min(size);
            // In 1 MiB steps: the range comes from the workload.
            let zeros = vec![0u8; 1 << 20];
            let mut at = off as u64;
            while at < end {
                let n = ((end - at) as usize).min(zeros.len());
                f.pwrite(&zeros[..n], at)?;
                at += n as u64;
            }
            Ok(0)
        }
        PUNCH_HOLE => Err(Errno::EINVAL),
        _ => Err(Errno::EOPNOTSUPP),
    }
}

fn mkdir_at(t: &Task, dirfd: i32, path: &[u8], mode: u32) -> KResult<u64> {
    let base = base_dir(t, dirfd, path)?;
    let (dir, name) = Walker::new(t).walk_parent(&base, path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    match dir.lookup(&name, t) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if dir.fs == FsType::Bind {
        let (node, g) = bind_dir(t, &dir)?;
        let (child, st) = g
            .mkdir(node, &name, mode & 0o7777 & !t.umask())
            .map_err(Errno)?;
        bind_child(&dir, &name, &g, child, &st);
        return Ok(0);
    }
    let mode = S_IFDIR | (mode & 0o7777 & !t.umask());
    create_child(t, &dir, &name, Node::MemDir, mode)?;
    Ok(0)
}

pub fn sys_mkdir(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    mkdir_at(t, AT_FDCWD, &path, a.uint(1))
}

pub fn sys_mkdirat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    mkdir_at(t, a.int(0), &path, a.uint(2))
}

fn check_sticky(t: &Task, dir: &Meta, victim: &Meta) -> KResult<()> {
    let c = t.creds();
    if dir.mode & 0o1000 != 0
        && !c.has_cap(crate::kernel::creds::CAP_FOWNER)
        && c.fsuid != dir.uid
        && c.fsuid != victim.uid
    {
        return Err(Errno::EPERM);
    }
    Ok(())
}

fn unlink_at(t: &Task, dirfd: i32, path: &[u8], rmdir: bool) -> KResult<u64> {
    let base = base_dir(t, dirfd, path)?;
    let (dir, name) = Walker::new(t).walk_parent(&base, path)?;
    if name == b"." {
        return Err(if rmdir { Errno::EINVAL } else { Errno::EISDIR });
    }
    if name == b".." {
        return Err(if rmdir {
            Errno::ENOTEMPTY
        } else {
            Errno::EISDIR
        });
    }
    let victim = dir.lookup(&name, t)?;
    writable_fs(&dir)?;
    t.may_access(&dir.meta(), 2 | 1)?;
    let vm = victim.meta();
    check_sticky(t, &dir.meta(), &vm)?;
    if rmdir {
        if !vm.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if lock(&victim.mounted).is_some() {
            return Err(Errno::EBUSY);
        }
        if !victim.is_empty_dir(t)? {
            return Err(Errno::ENOTEMPTY);
        }
    } else if vm.is_dir() {
        return Err(Errno::EISDIR);
    } else if path.ends_with(b"/") {
        return Err(Errno::ENOTDIR);
    }
    if dir.fs == FsType::Mqueue {
        return crate::fs::mqueue::remove(&name).map(|_| 0);
    }
    if dir.fs == FsType::Bind {
        let (node, g) = bind_dir(t, &dir)?;
        g.unlink(node, &name, rmdir).map_err(Errno)?;
        lock(&dir.children).remove(&name);
        crate::fs::inotify::removed(&dir, &name, &victim.inode());
        return Ok(0);
    }
    // A whiteout hides any lower entry of the same name.
    lock(&dir.children).insert(name.clone(), None);
    let vi = victim.inode();
    {
        let mut m = lock(&vi.meta);
        m.nlink = m.nlink.saturating_sub(1);
        if rmdir {
            m.nlink = 0;
        }
    }
    crate::fs::inotify::removed(&dir, &name, &vi);
    Ok(0)
}

pub fn sys_unlink(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    unlink_at(t, AT_FDCWD, &path, false)
}

pub fn sys_rmdir(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    unlink_at(t, AT_FDCWD, &path, true)
}

pub fn sys_unlinkat(t: &mut Task, a: &Args) -> KResult<u64> {
    let flags = a.int(2);
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.read_path(a.u(1))?;
    unlink_at(t, a.int(0), &path, flags & AT_REMOVEDIR != 0)
}

fn symlink_at(t: &Task, target: &[u8], dirfd: i32, path: &[u8]) -> KResult<u64> {
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let base = base_dir(t, dirfd, path)?;
    let (dir, name) = Walker::new(t).walk_parent(&base, path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    match dir.lookup(&name, t) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if dir.fs == FsType::Bind {
        let (dnode, g) = bind_dir(t, &dir)?;
        let (child, st) = g.symlink(dnode, &name, target).map_err(Errno)?;
        bind_child(&dir, &name, &g, child, &st);
        return Ok(0);
    }
    create_child(
        t,
        &dir,
        &name,
        Node::Symlink(target.to_vec()),
        S_IFLNK | 0o777,
    )?;
    Ok(0)
}

pub fn sys_symlink(t: &mut Task, a: &Args) -> KResult<u64> {
    let target = t.read_path(a.u(0))?;
    let path = t.read_path(a.u(1))?;
    symlink_at(t, &target, AT_FDCWD, &path)
}

pub fn sys_symlinkat(t: &mut Task, a: &Args) -> KResult<u64> {
    let target = t.read_path(a.u(0))?;
    let path = t.read_path(a.u(2))?;
    symlink_at(t, &target, a.int(1), &path)
}

fn rename_at(
    t: &Task,
    olddir: i32,
    old: &[u8],
    newdir: i32,
    new: &[u8],
    flags: u32,
) -> KResult<u64> {
    const RENAME_NOREPLACE: u32 = 1;
    const RENAME_EXCHANGE: u32 = 2;
    const RENAME_WHITEOUT: u32 = 4;
    const CAP_MKNOD: u32 = 27;
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(Errno::EINVAL);
    }
    if flags & RENAME_WHITEOUT != 0 && !t.creds().has_cap(CAP_MKNOD) {
        return Err(Errno::EPERM);
    }
    let ob = base_dir(t, olddir, old)?;
    let nb = base_dir(t, newdir, new)?;
    let (od, oname) = Walker::new(t).walk_parent(&ob, old)?;
    let (nd, nname) = Walker::new(t).walk_parent(&nb, new)?;
    if oname == b"." || oname == b".." || nname == b"." || nname == b".." {
        return Err(Errno::EBUSY);
    }
    let src = od.lookup(&oname, t)?;
    writable_fs(&od)?;
    writable_fs(&nd)?;
    if od.fs == FsType::Mqueue {
        return Err(Errno::EPERM);
    }
    if od.fs != nd.fs || !Arc::ptr_eq(&od.follow_mounts(), &od) && od.fs != FsType::Overlay {
        return Err(Errno::EXDEV);
    }
    t.may_access(&od.meta(), 3)?;
    t.may_access(&nd.meta(), 3)?;
    if od.fs == FsType::Bind {
        // A whiteout on the host would need CAP_MKNOD in the gofer.
        if flags & RENAME_WHITEOUT != 0 {
            return Err(Errno::EINVAL);
        }
        let (onode, g) = bind_dir(t, &od)?;
        let (nnode, _) = bind_dir(t, &nd)?;
        if flags & RENAME_NOREPLACE != 0 && nd.lookup(&nname, t).is_ok() {
            return Err(Errno::EEXIST);
        }
        g.rename(onode, &oname, nnode, &nname, flags)
            .map_err(Errno)?;
        lock(&od.children).remove(&oname);
        lock(&nd.children).remove(&nname);
        crate::fs::inotify::moved(&od, &oname, &nd, &nname, &src.inode(), None);
        return Ok(0);
    }
    if flags & RENAME_EXCHANGE != 0 {
        return exchange(t, &od, &oname, &src, &nd, &nname);
    }
    let sm = src.meta();
    if sm.is_dir() {
        // Moving directories would need a recursive copy-up of the lower
        // layer; refused with the errno overlayfs uses without redirect_dir.
        if matches!(src.inode().node, Node::Lower(_)) {
            return Err(Errno::EXDEV);
        }
        // A directory may not move below itself.
        let mut p = Some(nd.clone());
        while let Some(d) = p {
            if Arc::ptr_eq(&d, &src) {
                return Err(Errno::EINVAL);
            }
            p = d.parent.clone();
        }
    }
    let mut replaced = None;
    match nd.lookup(&nname, t) {
        Ok(dst) => {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if Arc::ptr_eq(&dst, &src) {
                return Ok(0);
            }
            let dm = dst.meta();
            if dm.is_dir() && !sm.is_dir() {
                return Err(Errno::EISDIR);
            }
            if !dm.is_dir() && sm.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if dm.is_dir() && !dst.is_empty_dir(t)? {
                return Err(Errno::ENOTEMPTY);
            }
            replaced = Some(dst.inode());
        }
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let inode = if sm.is_reg() || sm.is_lnk() {
        src.copy_up()?
    } else {
        src.inode()
    };
    let moved = Dentry::new_child(&nd, &nname, inode);
    // Keep an upper directory's children with it.
    let kids = std::mem::take(&mut *lock(&src.children));
    *lock(&moved.children) = kids;
    lock(&od.children).insert(oname.clone(), None);
    if flags & RENAME_WHITEOUT != 0 {
        // RENAME_WHITEOUT leaves a whiteout: a 0/0 character device.
        let node = Node::Dev(crate::fs::dev::DevKind::Other {
            block: false,
            rdev: 0,
        });
        create_child(t, &od, &oname, node, S_IFCHR)?;
    }
    lock(&nd.children).insert(nname.clone(), Some(moved));
    if let Some(r) = &replaced {
        let mut m = lock(&r.meta);
        m.nlink = if m.is_dir() {
            0
        } else {
            m.nlink.saturating_sub(1)
        };
    }
    let src_inode = lock(&nd.children)
        .get(&nname)
        .cloned()
        .flatten()
        .map(|d| d.inode());
    if let Some(i) = src_inode {
        crate::fs::inotify::moved(&od, &oname, &nd, &nname, &i, replaced.as_ref());
    }
    Ok(0)
}

/// RENAME_EXCHANGE in the sandbox's own tree: both names exist and swap
/// their files.
fn exchange(
    t: &Task,
    od: &Arc<Dentry>,
    oname: &[u8],
    a: &Arc<Dentry>,
    nd: &Arc<Dentry>,
    nname: &[u8],
) -> KResult<u64> {
    let b = nd.lookup(nname, t)?;
    if Arc::ptr_eq(a, &b) {
        return Ok(0);
    }
    for (x, other_dir) in [(a, nd), (&b, od)] {
        if x.meta().is_dir() {
            if matches!(x.inode().node, Node::Lower(_)) {
                return Err(Errno::EXDEV);
            }
            // Neither directory may end up below itself.
            let mut p = Some(other_dir.clone());
            while let Some(d) = p {
                if Arc::ptr_eq(&d, x) {
                    return Err(Errno::EINVAL);
                }
                p = d.parent.clone();
            }
        }
    }
    let up = |d: &Arc<Dentry>| -> KResult<Arc<Inode>> {
        let m = d.meta();
        if m.is_reg() || m.is_lnk() {
            d.copy_up()
        } else {
            Ok(d.inode())
        }
    };
    let (ia, ib) = (up(a)?, up(&b)?);
    let na = Dentry::new_child(nd, nname, ia);
    let nb = Dentry::new_child(od, oname, ib);
    *lock(&na.children) = std::mem::take(&mut *lock(&a.children));
    *lock(&nb.children) = std::mem::take(&mut *lock(&b.children));
    lock(&nd.children).insert(nname.to_vec(), Some(na));
    lock(&od.children).insert(oname.to_vec(), Some(nb));
    Ok(0)
}

pub fn sys_rename(t: &mut Task, a: &Args) -> KResult<u64> {
    let old = t.read_path(a.u(0))?;
    let new = t.read_path(a.u(1))?;
    rename_at(t, AT_FDCWD, &old, AT_FDCWD, &new, 0)
}

pub fn sys_renameat(t: &mut Task, a: &Args) -> KResult<u64> {
    let old = t.read_path(a.u(1))?;
    let new = t.read_path(a.u(3))?;
    rename_at(t, a.int(0), &old, a.int(2), &new, 0)
}

pub fn sys_renameat2(t: &mut Task, a: &Args) -> KResult<u64> {
    let old = t.read_path(a.u(1))?;
    let new = t.read_path(a.u(3))?;
    rename_at(t, a.int(0), &old, a.int(2), &new, a.uint(4))
}

// Attributes.

fn lookup_at(
    t: &Task,
    dirfd: i32,
    path: &[u8],
    follow: bool,
    empty_ok: bool,
) -> KResult<Arc<Dentry>> {
    if path.is_empty() {
        if !empty_ok {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return Ok(t.cwd());
        }
        return get_file(t, dirfd)?.dentry.clone().ok_or(Errno::EBADF);
    }
    let base = base_dir(t, dirfd, path)?;
    Walker::new(t).walk(&base, path, follow)
}

/// A metadata change in a writable bind mount, made on the host file; the
/// dentry then shows what the host reports.
fn bind_setattr(
    d: &Arc<Dentry>,
    l: &crate::vfs::LowerNode,
    attr: gofer::proto::SetAttr,
) -> KResult<u64> {
    let size = attr.size;
    let st = l.gofer.setattr(l.node, attr).map_err(Errno)?;
    let inode = d.inode();
    *lock(&inode.meta) = Meta::from_gofer(&st);
    // A shared-mapped host file: its pages follow the new size.
    if let (Some(size), Some(f)) = (size, inode.shared.get()) {
        f.truncate(size)?;
    }
    Ok(0)
}

/// Apply a metadata change to a dentry's (copied-up) inode.
fn set_meta(t: &Task, d: &Arc<Dentry>, f: impl FnOnce(&mut Meta) -> KResult<()>) -> KResult<u64> {
    writable_fs(d)?;
    if d.fs == FsType::Bind {
        if let Node::Lower(l) = &d.inode().node {
            // Writable bind mount: the change goes to the host file.
            let old = d.meta();
            let mut new = old.clone();
            f(&mut new)?;
            let changed = |a: u32, b: u32| (a != b).then_some(b);
            let attr = gofer::proto::SetAttr {
                mode: changed(old.mode & 0o7777, new.mode & 0o7777),
                uid: changed(old.uid, new.uid),
                gid: changed(old.gid, new.gid),
                size: None,
                atime: (old.atime != new.atime).then_some(new.atime),
                mtime: (old.mtime != new.mtime).then_some(new.mtime),
            };
            let r = bind_setattr(d, l, attr);
            if r.is_ok() {
                crate::fs::inotify::attrib(d);
            }
            return r;
        }
    }
    let inode = d.copy_up()?;
    {
        let mut m = lock(&inode.meta);
        f(&mut m)?;
        m.ctime = crate::vfs::now();
    }
    crate::fs::inotify::attrib(d);
    let _ = t;
    Ok(0)
}

fn chmod_d(t: &Task, d: &Arc<Dentry>, mode: u32) -> KResult<u64> {
    let c = t.creds();
    set_meta(t, d, |m| {
        if !c.has_cap(crate::kernel::creds::CAP_FOWNER) && c.fsuid != m.uid {
            return Err(Errno::EPERM);
        }
        m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
        Ok(())
    })
}

pub fn sys_chmod(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let d = lookup_at(t, AT_FDCWD, &path, true, false)?;
    chmod_d(t, &d, a.uint(1))
}

pub fn sys_fchmod(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    if matches!(f.kind, FileKind::Path) {
        return Err(Errno::EBADF);
    }
    let d = f.dentry.clone().ok_or(Errno::EBADF)?;
    chmod_d(t, &d, a.uint(1))
}

pub fn sys_fchmodat(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(1))?;
    let d = lookup_at(t, a.int(0), &path, true, false)?;
    chmod_d(t, &d, a.uint(2))
}

fn chown_d(t: &Task, d: &Arc<Dentry>, uid: u32, gid: u32) -> KResult<u64> {
    let c = t.creds();
    set_meta(t, d, |m| {
        if !c.has_cap(crate::kernel::creds::CAP_CHOWN) {
            if uid != u32::MAX && uid != m.uid {
                return Err(Errno::EPERM);
            }
            if gid != u32::MAX && c.fsuid != m.uid {
                return Err(Errno::EPERM);
            }
        }
        if uid != u32::MAX {
            m.uid = uid;
        }
        if gid != u32::MAX {
            m.gid = gid;
        }
        if m.mode & S_IFMT != S_IFDIR {
            m.mode &= !0o4000;
            if m.mode & 0o010 != 0 {
                m.mode &= !0o2000;
            }
        }
        Ok(())
    })
}

pub fn sys_chown(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let d = lookup_at(t, AT_FDCWD, &path, true, false)?;
    chown_d(t, &d, a.uint(1), a.uint(2))
}

pub fn sys_lchown(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let d = lookup_at(t, AT_FDCWD, &path, false, false)?;
    chown_d(t, &d, a.uint(1), a.uint(2))
}

pub fn sys_fchown(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    let d = f.dentry.clone().ok_or(Errno::EBADF)?;
    chown_d(t, &d, a.uint(1), a.uint(2))
}

pub fn sys_fchownat(t: &mut Task, a: &Args) -> KResult<u64> {
    let flags = a.int(4);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.read_path(a.u(1))?;
    let d = lookup_at(
        t,
        a.int(0),
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    chown_d(t, &d, a.uint(2), a.uint(3))
}

pub fn sys_utimensat(t: &mut Task, a: &Args) -> KResult<u64> {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let flags = a.int(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let times: Option<[Timespec; 2]> = if a.u(2) == 0 {
        None
    } else {
        let t0: Timespec = t.read_obj(a.u(2))?;
        let t1: Timespec = t.read_obj(a.u(2) + 16)?;
        for ts in [&t0, &t1] {
            if ts.tv_nsec != UTIME_NOW
                && ts.tv_nsec != UTIME_OMIT
                && !(0..1_000_000_000).contains(&ts.tv_nsec)
            {
                return Err(Errno::EINVAL);
            }
        }
        Some([t0, t1])
    };
    let d = if a.u(1) == 0 {
        get_file(t, a.int(0))?.dentry.clone().ok_or(Errno::EBADF)?
    } else {
        let path = t.read_path(a.u(1))?;
        lookup_at(
            t,
            a.int(0),
            &path,
            flags & AT_SYMLINK_NOFOLLOW == 0,
            flags & AT_EMPTY_PATH != 0,
        )?
    };
    let now = crate::vfs::now();
    set_meta(t, &d, |m| {
        let pick = |ts: &Timespec, old: (i64, u32)| match ts.tv_nsec {
            UTIME_NOW => now,
            UTIME_OMIT => old,
            n => (ts.tv_sec, n as u32),
        };
        match &times {
            None => {
                m.atime = now;
                m.mtime = now;
            }
            Some([at, mt]) => {
                m.atime = pick(at, m.atime);
                m.mtime = pick(mt, m.mtime);
            }
        }
        Ok(())
    })
}

fn truncate_d(t: &Task, d: &Arc<Dentry>, len: i64) -> KResult<u64> {
    let r = truncate_inner(t, d, len);
    if r.is_ok() {
        crate::fs::inotify::modified(d);
    }
    r
}

fn truncate_inner(t: &Task, d: &Arc<Dentry>, len: i64) -> KResult<u64> {
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let m = d.meta();
    if m.is_dir() {
        return Err(Errno::EISDIR);
    }
    if !m.is_reg() {
        return Err(Errno::EINVAL);
    }
    writable_fs(d)?;
    if d.fs == FsType::Bind {
        if let Node::Lower(l) = &d.inode().node {
            let attr = gofer::proto::SetAttr {
                size: Some(len as u64),
                ..Default::default()
            };
            return bind_setattr(d, l, attr);
        }
    }
    let inode = d.copy_up()?;
    match &inode.node {
        Node::Shm(f) => {
            f.truncate(len as u64)?;
            crate::fs::tmpfs::truncated(&inode, len as u64);
            Ok(0)
        }
        Node::Mem(data) => {
            if len > (1 << 40) {
                return Err(Errno::EFBIG);
            }
            let (heap_max, filestore) = crate::vfs::file_store(Some(d));
            if len as u64 > heap_max && inode.shared.get().is_none() {
                inode.make_shared(&t.k.mf, filestore)?;
            }
            let mut g = lock(data);
            if let Some(f) = inode.shared.get() {
                drop(g);
                f.truncate(len as u64)?;
            } else {
                crate::vfs::resize_mem(&mut g, len as u64, Errno::EFBIG)?;
                drop(g);
            }
            crate::fs::tmpfs::truncated(&inode, len as u64);
            let mut mm = lock(&inode.meta);
            mm.mtime = crate::vfs::now();
            mm.ctime = mm.mtime;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_truncate(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let d = lookup_at(t, AT_FDCWD, &path, true, false)?;
    t.may_access(&d.meta(), 2)?;
    truncate_d(t, &d, a.i64(1))
}

pub fn sys_ftruncate(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    if !f.writable() {
        return Err(if matches!(f.kind, FileKind::Path) {
            Errno::EBADF
        } else {
            Errno::EINVAL
        });
    }
    let d = f.dentry.clone().ok_or(Errno::EINVAL)?;
    truncate_d(t, &d, a.i64(1))
}

/// fsync(2)/fdatasync(2): a host file of a writable bind mount gets its
/// shared-mapping pages back and then the host's fdatasync. The upper
/// layer lives in memory and the lower is read-only: nothing to do there.
pub fn sys_fsync(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    match &f.kind {
        FileKind::Path => Err(Errno::EBADF),
        FileKind::Passthrough { fd } => {
            if let Some(d) = &f.dentry {
                d.inode().write_back()?;
            }
            nix::unistd::fdatasync(std::os::fd::AsRawFd::as_raw_fd(&**fd))?;
            Ok(0)
        }
        _ => Ok(0),
    }
}

pub fn sys_fadvise64(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    if !f.is_seekable() {
        return Err(Errno::ESPIPE);
    }
    if a.int(3) < 0 || a.int(3) > 5 || a.i64(2) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

fn statfs_d(t: &Task, d: &Arc<Dentry>, buf: u64) -> KResult<u64> {
    let mut words = [0u64; 15];
    match (&d.inode().node, d.fs) {
        (Node::Lower(l), FsType::Overlay | FsType::Bind) => {
            let s = l.gofer.statfs(l.node).map_err(Errno)?;
            words[0] = if d.fs == FsType::Bind {
                s.fs_type
            } else {
                0x794c_7630 // OVERLAYFS_SUPER_MAGIC
            };
            words[1] = s.bsize;
            words[2] = s.blocks;
            words[3] = s.bfree;
            words[4] = s.bavail;
            words[5] = s.files;
            words[6] = s.ffree;
            words[8] = 255;
            words[9] = s.frsize;
            words[10] = s.flags;
        }
        (_, fs) => {
            words[0] = match fs {
                FsType::Proc => 0x9fa0,
                FsType::Sys => 0x6265_6572,
                FsType::Dev | FsType::Tmpfs => 0x0102_1994,
                FsType::Overlay | FsType::Bind => 0x794c_7630,
                FsType::Mqueue => crate::fs::mqueue::MQUEUE_MAGIC,
            };
            words[1] = 4096;
            words[8] = 255;
            words[9] = 4096;
            if let Some(w) = crate::fs::tmpfs::statfs(d) {
                // A tmpfs with size=: its own numbers.
                words[2..7].copy_from_slice(&w);
            } else if matches!(fs, FsType::Dev | FsType::Tmpfs) {
                // Memory-backed, sized like a default tmpfs: half of the
                // sandbox's memory, less what the memory file holds. (Python's
                // multiprocessing puts its shared heap in /dev/shm only if
                // statvfs shows room there.)
                let blocks = t.k.mem_limit / 2 / 4096;
                let free = blocks.saturating_sub(t.k.mf.used() / 4096);
                words[2] = blocks;
                words[3] = free;
                words[4] = free;
                words[5] = blocks;
                words[6] = free;
            }
        }
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    t.copy_out(buf, &bytes[..120]).map(|_| 0)
}

pub fn sys_statfs(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let d = lookup_at(t, AT_FDCWD, &path, true, false)?;
    statfs_d(t, &d, a.u(1))
}

pub fn sys_fstatfs(t: &mut Task, a: &Args) -> KResult<u64> {
    let f = get_file(t, a.int(0))?;
    match &f.dentry {
        Some(d) => statfs_d(t, d, a.u(1)),
        None => {
            let words = [
                0x0102_1994u64,
                4096,
                0,
                0,
                0,
                0,
                0,
                0,
                255,
                4096,
                0,
                0,
                0,
                0,
                0,
            ];
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            t.copy_out(a.u(1), &bytes[..120]).map(|_| 0)
        }
    }
}

pub fn sys_memfd_create(t: &mut Task, a: &Args) -> KResult<u64> {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_ALLOW_SEALING: u32 = 2;
    const MFD_HUGETLB: u32 = 4;
    const MFD_NOEXEC_SEAL: u32 = 8;
    const MFD_EXEC: u32 = 0x10;
    let flags = a.uint(1);
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC) != 0
        || flags & MFD_HUGETLB != 0
        || (flags & MFD_NOEXEC_SEAL != 0 && flags & MFD_EXEC != 0)
    {
        return Err(Errno::EINVAL);
    }
    let name = t.read_cstr(a.u(0), 249).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            Errno::EINVAL
        } else {
            e
        }
    })?;
    let shm =
        crate::fs::shm::ShmFile::new(&t.k.mf, flags & (MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL) != 0)?;
    let mode = if flags & MFD_NOEXEC_SEAL != 0 {
        0o666
    } else {
        0o777
    };
    let c = t.creds();
    let inode = Inode::new(
        Node::Shm(shm),
        Meta::new(S_IFREG | mode, MEM_DEV, c.fsuid, c.fsgid),
    );
    // An unlinked dentry: /proc/self/fd shows "/memfd:NAME".
    let mut dname = b"memfd:".to_vec();
    dname.extend_from_slice(&name);
    let d = Dentry::new_child(&t.fs_root(), &dname, inode);
    let f = open_dentry(t, &d, O_RDWR)?;
    install(t, f, flags & MFD_CLOEXEC != 0)
}

pub fn sys_eventfd2(t: &mut Task, a: &Args) -> KResult<u64> {
    const EFD_SEMAPHORE: i32 = 1;
    let flags = a.int(1);
    if flags & !(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let e = crate::fs::eventfd::EventFd::new(a.uint(0) as u64, flags & EFD_SEMAPHORE != 0);
    let f = File::new(None, FileKind::EventFd(e), O_RDWR | (flags & O_NONBLOCK));
    install(t, f, flags & O_CLOEXEC != 0)
}

pub fn sys_eventfd(t: &mut Task, a: &Args) -> KResult<u64> {
    sys_eventfd2(t, &Args([a.u(0), 0, 0, 0, 0, 0]))
}

/// Install two new files (pipe2, socketpair) and write their fds to `out`;
/// on any failure neither fd stays open.
pub(crate) fn install_pair(
    t: &Task,
    a: Arc<File>,
    b: Arc<File>,
    cloexec: bool,
    out: u64,
) -> KResult<u64> {
    let limit = t.nofile_limit();
    let fds = t.fds();
    let mut g = lock(&fds);
    let x = g.alloc(a, cloexec, 0, limit)?;
    let y = match g.alloc(b, cloexec, 0, limit) {
        Ok(y) => y,
        Err(e) => {
            let _ = g.remove(x);
            return Err(e);
        }
    };
    drop(g);
    if let Err(e) = t.write_obj(out, &[x, y]) {
        let mut g = lock(&fds);
        let _ = g.remove(x);
        let _ = g.remove(y);
        return Err(e);
    }
    Ok(0)
}

fn link_at(t: &Task, olddir: i32, old: &[u8], newdir: i32, new: &[u8], flags: i32) -> KResult<u64> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let src = lookup_at(
        t,
        olddir,
        old,
        flags & AT_SYMLINK_FOLLOW != 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    if src.meta().is_dir() {
        return Err(Errno::EPERM);
    }
    let nb = base_dir(t, newdir, new)?;
    let (dir, name) = Walker::new(t).walk_parent(&nb, new)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    match dir.lookup(&name, t) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    writable_fs(&dir)?;
    writable_fs(&src)?;
    if src.fs != dir.fs {
        return Err(Errno::EXDEV);
    }
    t.may_access(&dir.meta(), 2 | 1)?;
    if dir.fs == FsType::Bind {
        let (dnode, g) = bind_dir(t, &dir)?;
        let Node::Lower(l) = &src.inode().node else {
            return Err(Errno::EXDEV);
        };
        let (child, st) = g.link(l.node, dnode, &name).map_err(Errno)?;
        bind_child(&dir, &name, &g, child, &st);
        // The source's link count changed on the host.
        if let Ok(st) = l.gofer.stat(l.node) {
            *lock(&src.inode().meta) = Meta::from_gofer(&st);
        }
        return Ok(0);
    }
    // A file with no name left can get one back only if O_TMPFILE made
    // it without O_EXCL, and only once.
    if src.meta().nlink == 0 {
        let inode = src.inode();
        let mut l = lock(linkable());
        let at = l
            .iter()
            .position(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&inode)));
        match at {
            Some(i) => {
                l.swap_remove(i);
            }
            None => return Err(Errno::ENOENT),
        }
    }
    // Both names share one (upper) inode.
    let inode = src.copy_up()?;
    lock(&inode.meta).nlink += 1;
    let d = Dentry::new_child(&dir, &name, inode.clone());
    lock(&dir.children).insert(name.clone(), Some(d));
    crate::fs::inotify::linked(&dir, &name, &inode);
    Ok(0)
}

pub fn sys_link(t: &mut Task, a: &Args) -> KResult<u64> {
    let old = t.read_path(a.u(0))?;
    let new = t.read_path(a.u(1))?;
    link_at(t, AT_FDCWD, &old, AT_FDCWD, &new, 0)
}

pub fn sys_linkat(t: &mut Task, a: &Args) -> KResult<u64> {
    let old = t.read_path(a.u(1)).or_else(|e| {
        if e == Errno::ENOENT {
            Ok(Vec::new())
        } else {
            Err(e)
        }
    })?;
    let new = t.read_path(a.u(3))?;
    link_at(t, a.int(0), &old, a.int(2), &new, a.int(4))
}
