//! The gofer's side of the protocol: serves confined roots to one sentry.
//!
//! Every request is treated as hostile. Nodes are per-connection ids (never
//! reused) that hold an `O_PATH|O_NOFOLLOW` fd; paths never appear. Walks
//! resolve one component at a time with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`, so a walk
//! can neither follow a symlink (the sentry resolves those itself) nor leave
//! the mount it started in.
//!
//! Choices worth knowing on the sentry side:
//! - Only regular files and directories can be opened. A symlink gives
//!   `ELOOP`; a device node, FIFO or socket gives `ENXIO` (the gofer must
//!   never block in open(2) on a FIFO, and devices are the sentry's own
//!   business). Opened fds always carry `O_NONBLOCK|O_CLOEXEC|O_NOCTTY`.
//!   If the name of a node now refers to a different file than the one walked
//!   (it was replaced behind our back), open gives `ESTALE`.
//! - Open refuses flags outside open(2)'s plain set, and `O_CREAT`, `O_EXCL`,
//!   `O_TRUNC`, `O_NOFOLLOW`, `O_PATH`, `O_TMPFILE`, `O_ASYNC` with `EINVAL`;
//!   on a read-only root any write access mode gives `EROFS`.
//! - Getdents answers in one reply; a directory whose listing does not fit in
//!   a frame gives `EOVERFLOW` (no pagination in v1).
//! - Invalid walk components (empty, ".", "..", containing '/' or NUL) stop
//!   the walk with `EINVAL`. Unknown node ids give `EBADF`, unknown mount
//!   numbers `ENOENT`. A connection holding [`MAX_NODES`] nodes gets
//!   `ENFILE` for new ones until it closes some.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstatat, FileStat};

use crate::client::valid_name;
use crate::proto::{
    Dirent, Frame, NodeId, Reply, Request, SetAttr, Stat, StatFs, MAX_FRAME, VERSION,
};
use crate::wire::{self, WireError};
use crate::Error;

/// One served mount, as produced by [`crate::confine`].
pub struct ServedRoot {
    /// `O_PATH` fd of the served directory (or, for a file mount, file).
    pub dir: OwnedFd,
    /// Refuse every write access.
    pub readonly: bool,
    /// For a root that is not a directory: the directory and name through
    /// which it is reopened for I/O (an `O_PATH` fd cannot be reopened
    /// without /proc). `None` for directory roots, which reopen as ".".
    pub parent: Option<(OwnedFd, Vec<u8>)>,
}

impl ServedRoot {
    /// A directory root.
    pub fn dir(dir: OwnedFd, readonly: bool) -> ServedRoot {
        ServedRoot {
            dir,
            readonly,
            parent: None,
        }
    }
}

/// Resolve flags for walking one component.
const WALK_RESOLVE: u64 = libc::RESOLVE_BENEATH
    | libc::RESOLVE_NO_MAGICLINKS
    | libc::RESOLVE_NO_SYMLINKS
    | libc::RESOLVE_NO_XDEV;
/// Resolve flags for reopening a walked node for I/O.
const OPEN_RESOLVE: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_SYMLINKS;

/// The kernel's O_LARGEFILE bit (the libc crate defines O_LARGEFILE as 0 on
/// 64-bit targets, but a workload may still pass the real bit).
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
const KERNEL_O_LARGEFILE: i32 = 0o400000;
#[cfg(not(any(target_arch = "aarch64", target_arch = "arm")))]
const KERNEL_O_LARGEFILE: i32 = 0o100000;

/// Open flags the sentry may pass (anything else is refused).
const OPEN_ALLOWED: i32 = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DIRECTORY
    | libc::O_NOATIME
    | libc::O_DIRECT
    | libc::O_DSYNC
    | libc::O_SYNC
    | KERNEL_O_LARGEFILE
    | libc::O_CLOEXEC
    | libc::O_NOCTTY
    | libc::O_TRUNC;
/// Open flags always added.
const OPEN_FORCED: i32 = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;

/// Most nodes one connection may hold open (attach nodes share their
/// root's fd, so RLIMIT_NOFILE alone would not bound the table).
pub const MAX_NODES: usize = 1 << 20;

/// Bytes kept free in a Dirents frame for the frame's own fields.
const DIRENTS_SLACK: usize = 256;
/// Upper bound of the encoded size of one dirent besides its name.
const DIRENT_OVERHEAD: usize = 16;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)`, retried on `EINTR`/`EAGAIN`.
pub(crate) fn openat2(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    openat2_mode(dir, name, flags, 0, resolve)
}

/// `openat2(2)` with a creation mode.
pub(crate) fn openat2_mode(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: u64::from(flags as u32),
        mode: u64::from(mode & 0o7777),
        resolve,
    };
    let mut tries = 0;
    loop {
        // SAFETY: `name` is a valid NUL-terminated string and `how` a valid
        // open_how whose size we pass; both outlive the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                name.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            let fd = i32::try_from(ret).map_err(|_| Errno::EBADF)?;
            // SAFETY: openat2 returned a new fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        match Errno::last() {
            Errno::EINTR => continue,
            // openat2 asks for a retry when a rename raced the lookup.
            Errno::EAGAIN if tries < 16 => tries += 1,
            e => return Err(e),
        }
    }
}

/// lstat of an fd (works on `O_PATH` fds, symlinks included).
pub(crate) fn fd_stat(fd: BorrowedFd<'_>) -> Result<FileStat, Errno> {
    fstatat(
        Some(fd.as_raw_fd()),
        "",
        AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

fn to_u64<T: TryInto<u64>>(v: T) -> u64 {
    v.try_into().unwrap_or(0)
}

fn to_time(sec: i64, nsec: i64) -> (i64, u32) {
    (sec, u32::try_from(nsec).unwrap_or(0))
}

fn convert_stat(st: &FileStat) -> Stat {
    Stat {
        dev: to_u64(st.st_dev),
        ino: to_u64(st.st_ino),
        mode: st.st_mode,
        nlink: to_u64(st.st_nlink),
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: to_u64(st.st_rdev),
        size: to_u64(st.st_size),
        blksize: to_u64(st.st_blksize),
        blocks: to_u64(st.st_blocks),
        atime: to_time(st.st_atime, st.st_atime_nsec),
        mtime: to_time(st.st_mtime, st.st_mtime_nsec),
        ctime: to_time(st.st_ctime, st.st_ctime_nsec),
    }
}

fn file_type(mode: u32) -> u32 {
    mode & libc::S_IFMT
}

/// How a node is reopened for I/O: through (directory, name), or as "."
/// of its own fd (roots that are directories).
type Via = Option<(Rc<OwnedFd>, CString)>;

struct Node {
    fd: Rc<OwnedFd>,
    via: Via,
    root: usize,
}

struct Root {
    fd: Rc<OwnedFd>,
    via: Via,
    readonly: bool,
}

struct Server {
    roots: Vec<Root>,
    nodes: HashMap<NodeId, Node>,
    next_id: NodeId,
    /// Whether `Connect` to host sockets is allowed (`--host-uds open`).
    host_uds: bool,
}

type Handled = Result<(Reply, Option<OwnedFd>), Errno>;

impl Server {
    fn new(roots: Vec<ServedRoot>, host_uds: bool) -> Server {
        let roots = roots
            .into_iter()
            .map(|r| Root {
                fd: Rc::new(r.dir),
                via: r.parent.and_then(|(dir, name)| {
                    // A root whose name cannot be a C string just cannot be
                    // reopened (open gives ENXIO below).
                    CString::new(name).ok().map(|n| (Rc::new(dir), n))
                }),
                readonly: r.readonly,
            })
            .collect();
        Server {
            roots,
            nodes: HashMap::new(),
            next_id: 1,
            host_uds,
        }
    }

    fn node(&self, id: NodeId) -> Result<&Node, Errno> {
        self.nodes.get(&id).ok_or(Errno::EBADF)
    }

    fn add(&mut self, node: Node) -> Result<NodeId, Errno> {
        if self.nodes.len() >= MAX_NODES {
            return Err(Errno::ENFILE);
        }
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).ok_or(Errno::ENFILE)?;
        self.nodes.insert(id, node);
        Ok(id)
    }

    fn handle(&mut self, req: Request) -> Handled {
        match req {
            Request::Version { .. } => Ok((Reply::Version { version: VERSION }, None)),
            Request::Attach { mount } => self.attach(mount),
            Request::Walk { dir, names } => self.walk(dir, names),
            Request::Stat { node } => {
                let st = fd_stat(self.node(node)?.fd.as_fd())?;
                Ok((
                    Reply::Stat {
                        stat: convert_stat(&st),
                    },
                    None,
                ))
            }
            Request::Open { node, flags } => self.open(node, flags),
            Request::Getdents { node } => self.getdents(node),
            Request::Readlink { node } => self.readlink(node),
            Request::Statfs { node } => self.statfs(node),
            Request::Create {
                dir,
                name,
                flags,
                mode,
            } => self.create(dir, name, flags, mode),
            Request::Mkdir { dir, name, mode } => self.mkdir(dir, name, mode),
            Request::Unlink {
                dir,
                name,
                dir_entry,
            } => self.unlink(dir, name, dir_entry),
            Request::Rename {
                dir,
                name,
                new_dir,
                new_name,
                flags,
            } => self.rename(dir, name, new_dir, new_name, flags),
            Request::Symlink { dir, name, target } => self.symlink(dir, name, target),
            Request::Link {
                node,
                new_dir,
                new_name,
            } => self.link(node, new_dir, new_name),
            Request::Mknod { dir, name, mode } => self.mknod(dir, name, mode),
            Request::SetAttr { node, attr } => self.setattr(node, attr),
            Request::GetXattr { node, name } => self.getxattr(node, name),
            Request::ListXattr { node } => self.listxattr(node),
            Request::SetXattr {
                node,
                name,
                value,
                flags,
            } => self.setxattr(node, name, value, flags),
            Request::RemoveXattr { node, name } => self.removexattr(node, name),
            Request::Connect { node, ty } => self.connect(node, ty),
            Request::Close { node } => {
                self.nodes.remove(&node).ok_or(Errno::EBADF)?;
                Ok((Reply::Ok, None))
            }
        }
    }

    fn attach(&mut self, mount: u32) -> Handled {
        let idx = usize::try_from(mount).map_err(|_| Errno::ENOENT)?;
        let root = self.roots.get(idx).ok_or(Errno::ENOENT)?;
        let st = fd_stat(root.fd.as_fd())?;
        let node = Node {
            fd: root.fd.clone(),
            via: root.via.clone(),
            root: idx,
        };
        let id = self.add(node)?;
        Ok((
            Reply::Node {
                node: id,
                stat: convert_stat(&st),
            },
            None,
        ))
    }

    fn walk(&mut self, dir: NodeId, names: Vec<Vec<u8>>) -> Handled {
        let start = self.node(dir)?;
        let root = start.root;
        let mut cur = start.fd.clone();
        let mut nodes = Vec::new();
        let mut error = None;
        for name in names {
            if !valid_name(&name) {
                error = Some(libc::EINVAL);
                break;
            }
            let Ok(cname) = CString::new(name) else {
                error = Some(libc::EINVAL);
                break;
            };
            let step = openat2(
                cur.as_fd(),
                &cname,
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                WALK_RESOLVE,
            )
            .and_then(|fd| fd_stat(fd.as_fd()).map(|st| (fd, st)));
            let (fd, st) = match step {
                Ok(x) => x,
                Err(e) => {
                    error = Some(e as i32);
                    break;
                }
            };
            let fd = Rc::new(fd);
            let id = match self.add(Node {
                fd: fd.clone(),
                via: Some((cur, cname)),
                root,
            }) {
                Ok(id) => id,
                Err(e) => {
                    error = Some(e as i32);
                    break;
                }
            };
            nodes.push((id, convert_stat(&st)));
            cur = fd;
        }
        Ok((Reply::Walked { nodes, error }, None))
    }

    /// Checks `flags` against the node and opens it for I/O.
    fn reopen(&self, node: &Node, flags: i32) -> Result<(OwnedFd, FileStat), Errno> {
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_ACCMODE || flags & !OPEN_ALLOWED != 0 {
            return Err(Errno::EINVAL);
        }
        // Truncation only with write access (Linux leaves O_RDONLY|O_TRUNC
        // unspecified; the sentry never asks for it).
        if flags & libc::O_TRUNC != 0 && acc == libc::O_RDONLY {
            return Err(Errno::EINVAL);
        }
        let st = fd_stat(node.fd.as_fd())?;
        match file_type(st.st_mode) {
            libc::S_IFLNK => return Err(Errno::ELOOP),
            libc::S_IFDIR if acc != libc::O_RDONLY => return Err(Errno::EISDIR),
            libc::S_IFDIR => {}
            libc::S_IFREG if flags & libc::O_DIRECTORY != 0 => return Err(Errno::ENOTDIR),
            libc::S_IFREG => {}
            _ => return Err(Errno::ENXIO),
        }
        let readonly = self.roots.get(node.root).is_none_or(|r| r.readonly);
        if readonly && acc != libc::O_RDONLY {
            return Err(Errno::EROFS);
        }
        let flags = flags | OPEN_FORCED;
        let fd = match &node.via {
            Some((dir, name)) => openat2(dir.as_fd(), name, flags, OPEN_RESOLVE)?,
            None if file_type(st.st_mode) == libc::S_IFDIR => {
                openat2(node.fd.as_fd(), c".", flags, OPEN_RESOLVE)?
            }
            None => return Err(Errno::ENXIO),
        };
        let now = fd_stat(fd.as_fd())?;
        if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
            return Err(Errno::ESTALE);
        }
        if !matches!(file_type(now.st_mode), libc::S_IFREG | libc::S_IFDIR) {
            return Err(Errno::ENXIO);
        }
        Ok((fd, now))
    }

    /// A directory node of a writable root and a valid child name in it.
    fn writable_dir(
        &self,
        dir: NodeId,
        name: Vec<u8>,
    ) -> Result<(Rc<OwnedFd>, usize, CString), Errno> {
        let node = self.node(dir)?;
        if self.roots.get(node.root).is_none_or(|r| r.readonly) {
            return Err(Errno::EROFS);
        }
        if !valid_name(&name) {
            return Err(Errno::EINVAL);
        }
        let st = fd_stat(node.fd.as_fd())?;
        if file_type(st.st_mode) != libc::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
        Ok((node.fd.clone(), node.root, cname))
    }

    /// A node for the entry just made at `dir`/`name`.
    fn new_child(
        &mut self,
        dir: Rc<OwnedFd>,
        root: usize,
        name: CString,
    ) -> Result<(NodeId, Stat), Errno> {
        let fd = openat2(
            dir.as_fd(),
            &name,
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            WALK_RESOLVE,
        )?;
        let st = fd_stat(fd.as_fd())?;
        let id = self.add(Node {
            fd: Rc::new(fd),
            via: Some((dir, name)),
            root,
        })?;
        Ok((id, convert_stat(&st)))
    }

    fn create(&mut self, dir: NodeId, name: Vec<u8>, flags: i32, mode: u32) -> Handled {
        let (dfd, root, cname) = self.writable_dir(dir, name)?;
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_ACCMODE || flags & !OPEN_ALLOWED != 0 || flags & libc::O_DIRECTORY != 0 {
            return Err(Errno::EINVAL);
        }
        let fd = openat2_mode(
            dfd.as_fd(),
            &cname,
            flags | OPEN_FORCED | libc::O_CREAT | libc::O_EXCL,
            mode,
            WALK_RESOLVE,
        )?;
        let (node, stat) = self.new_child(dfd, root, cname)?;
        Ok((Reply::Node { node, stat }, Some(fd)))
    }

    fn mkdir(&mut self, dir: NodeId, name: Vec<u8>, mode: u32) -> Handled {
        let (dfd, root, cname) = self.writable_dir(dir, name)?;
        // SAFETY: a valid dir fd and C string.
        if unsafe { libc::mkdirat(dfd.as_raw_fd(), cname.as_ptr(), mode & 0o7777) } != 0 {
            return Err(Errno::last());
        }
        let (node, stat) = self.new_child(dfd, root, cname)?;
        Ok((Reply::Node { node, stat }, None))
    }

    fn unlink(&mut self, dir: NodeId, name: Vec<u8>, dir_entry: bool) -> Handled {
        let (dfd, _, cname) = self.writable_dir(dir, name)?;
        let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: a valid dir fd and C string.
        if unsafe { libc::unlinkat(dfd.as_raw_fd(), cname.as_ptr(), flags) } != 0 {
            return Err(Errno::last());
        }
        Ok((Reply::Ok, None))
    }

    fn rename(
        &mut self,
        dir: NodeId,
        name: Vec<u8>,
        new_dir: NodeId,
        new_name: Vec<u8>,
        flags: u32,
    ) -> Handled {
        const RENAME_NOREPLACE: u32 = 1;
        const RENAME_EXCHANGE: u32 = 2;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
            return Err(Errno::EINVAL);
        }
        let (ofd, oroot, oname) = self.writable_dir(dir, name)?;
        let (nfd, nroot, nname) = self.writable_dir(new_dir, new_name)?;
        if oroot != nroot {
            return Err(Errno::EXDEV);
        }
        // SAFETY: valid dir fds and C strings.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                ofd.as_raw_fd(),
                oname.as_ptr(),
                nfd.as_raw_fd(),
                nname.as_ptr(),
                flags,
            )
        };
        if r != 0 {
            return Err(Errno::last());
        }
        Ok((Reply::Ok, None))
    }

    fn symlink(&mut self, dir: NodeId, name: Vec<u8>, target: Vec<u8>) -> Handled {
        let (dfd, root, cname) = self.writable_dir(dir, name)?;
        if target.is_empty() || target.len() >= 4096 {
            return Err(Errno::EINVAL);
        }
        let ctarget = CString::new(target).map_err(|_| Errno::EINVAL)?;
        // SAFETY: a valid dir fd and C strings.
        if unsafe { libc::symlinkat(ctarget.as_ptr(), dfd.as_raw_fd(), cname.as_ptr()) } != 0 {
            return Err(Errno::last());
        }
        let (node, stat) = self.new_child(dfd, root, cname)?;
        Ok((Reply::Node { node, stat }, None))
    }

    fn link(&mut self, id: NodeId, new_dir: NodeId, new_name: Vec<u8>) -> Handled {
        let node = self.node(id)?;
        let (src_fd, src_root) = (node.fd.clone(), node.root);
        let (dfd, root, cname) = self.writable_dir(new_dir, new_name)?;
        if src_root != root {
            return Err(Errno::EXDEV);
        }
        if file_type(fd_stat(src_fd.as_fd())?.st_mode) == libc::S_IFDIR {
            return Err(Errno::EPERM);
        }
        // The node's own O_PATH fd names the file: no path is resolved.
        // SAFETY: valid fds and C strings.
        let r = unsafe {
            libc::linkat(
                src_fd.as_raw_fd(),
                c"".as_ptr(),
                dfd.as_raw_fd(),
                cname.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if r != 0 {
            return Err(Errno::last());
        }
        let (node, stat) = self.new_child(dfd, root, cname)?;
        Ok((Reply::Node { node, stat }, None))
    }

    fn mknod(&mut self, dir: NodeId, name: Vec<u8>, mode: u32) -> Handled {
        let (dfd, root, cname) = self.writable_dir(dir, name)?;
        let ty = mode & libc::S_IFMT;
        if ty != libc::S_IFIFO && ty != libc::S_IFREG {
            return Err(Errno::EPERM);
        }
        // SAFETY: a valid dir fd and C string.
        if unsafe { libc::mknodat(dfd.as_raw_fd(), cname.as_ptr(), ty | (mode & 0o7777), 0) } != 0 {
            return Err(Errno::last());
        }
        let (node, stat) = self.new_child(dfd, root, cname)?;
        Ok((Reply::Node { node, stat }, None))
    }

    fn setattr(&mut self, id: NodeId, a: SetAttr) -> Handled {
        let node = self.node(id)?;
        if self.roots.get(node.root).is_none_or(|r| r.readonly) {
            return Err(Errno::EROFS);
        }
        // Reopened beneath its directory without following symlinks, so
        // the change lands on the walked file and nowhere else.
        let acc = if a.size.is_some() {
            libc::O_WRONLY
        } else {
            libc::O_RDONLY
        };
        let (fd, _) = self.reopen(node, acc)?;
        let raw = fd.as_raw_fd();
        // SAFETY (all calls below): plain syscalls on an fd we own.
        if let Some(size) = a.size {
            let size = i64::try_from(size).map_err(|_| Errno::EFBIG)?;
            if unsafe { libc::ftruncate(raw, size) } != 0 {
                return Err(Errno::last());
            }
        }
        if a.uid.is_some() || a.gid.is_some() {
            let (u, g) = (a.uid.unwrap_or(u32::MAX), a.gid.unwrap_or(u32::MAX));
            if unsafe { libc::fchown(raw, u, g) } != 0 {
                return Err(Errno::last());
            }
        }
        if let Some(mode) = a.mode {
            if unsafe { libc::fchmod(raw, mode & 0o7777) } != 0 {
                return Err(Errno::last());
            }
        }
        if a.atime.is_some() || a.mtime.is_some() {
            let ts = |t: Option<(i64, u32)>| match t {
                Some((s, ns)) => libc::timespec {
                    tv_sec: s,
                    tv_nsec: i64::from(ns),
                },
                None => libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_OMIT,
                },
            };
            let times = [ts(a.atime), ts(a.mtime)];
            if unsafe { libc::futimens(raw, times.as_ptr()) } != 0 {
                return Err(Errno::last());
            }
        }
        let st = fd_stat(fd.as_fd())?;
        Ok((
            Reply::Stat {
                stat: convert_stat(&st),
            },
            None,
        ))
    }

    /// Where a node's extended attributes are read: a regular file or
    /// directory is reopened `O_RDONLY` beneath its directory (an `O_PATH`
    /// fd takes no f*xattr call, not even `getxattrat(AT_EMPTY_PATH)` on
    /// Linux 6.18: EBADF); anything else (symlink, FIFO, device, socket)
    /// is named by its single component in its directory's `O_PATH` fd
    /// with `AT_SYMLINK_NOFOLLOW` (getxattrat/listxattrat, Linux 6.13+),
    /// after checking that the name still refers to the walked inode.
    fn xattr_target(&self, node: &Node) -> Result<XattrAt, Errno> {
        let st = fd_stat(node.fd.as_fd())?;
        if matches!(file_type(st.st_mode), libc::S_IFREG | libc::S_IFDIR) {
            let (fd, _) = self.reopen(node, libc::O_RDONLY)?;
            return Ok(XattrAt::Fd(fd));
        }
        let Some((dir, name)) = &node.via else {
            return Err(Errno::ENODATA);
        };
        let now = fstatat(
            Some(dir.as_raw_fd()),
            name.as_c_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
            return Err(Errno::ESTALE);
        }
        Ok(XattrAt::At(dir.clone(), name.clone()))
    }

    fn getxattr(&self, id: NodeId, name: Vec<u8>) -> Handled {
        let name = xattr_name(name)?;
        let target = self.xattr_target(self.node(id)?)?;
        let mut buf = vec![0u8; XATTR_SIZE_MAX];
        let n = match &target {
            // SAFETY: `buf` is writable for its length; `name` is a valid C
            // string; the fd is ours.
            XattrAt::Fd(fd) => unsafe {
                libc::fgetxattr(
                    fd.as_raw_fd(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            },
            XattrAt::At(dir, entry) => {
                let args = XattrArgs {
                    value: buf.as_mut_ptr() as u64,
                    size: XATTR_SIZE_MAX as u32,
                    flags: 0,
                };
                // SAFETY: `args` points into `buf`, writable for `size`
                // bytes; the strings are valid C strings; `args` outlives
                // the call and its size is passed.
                let r = unsafe {
                    libc::syscall(
                        SYS_GETXATTRAT,
                        dir.as_raw_fd(),
                        entry.as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                        name.as_ptr(),
                        &args as *const XattrArgs,
                        std::mem::size_of::<XattrArgs>(),
                    )
                };
                // Before Linux 6.13 a symlink's attributes cannot be read
                // without a path: it shows none.
                if r < 0 && Errno::last() == Errno::ENOSYS {
                    return Err(Errno::ENODATA);
                }
                r as isize
            }
        };
        let n = usize::try_from(n).map_err(|_| Errno::last())?;
        buf.truncate(n);
        Ok((Reply::Xattr { value: buf }, None))
    }

    fn listxattr(&self, id: NodeId) -> Handled {
        let target = self.xattr_target(self.node(id)?)?;
        let mut buf = vec![0u8; XATTR_SIZE_MAX];
        let n = match &target {
            // SAFETY: `buf` is writable for its length; the fd is ours.
            XattrAt::Fd(fd) => unsafe {
                libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
            },
            XattrAt::At(dir, entry) => {
                // SAFETY: `buf` is writable for its length; `entry` is a
                // valid C string.
                let r = unsafe {
                    libc::syscall(
                        SYS_LISTXATTRAT,
                        dir.as_raw_fd(),
                        entry.as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                        buf.as_mut_ptr(),
                        buf.len(),
                    )
                };
                if r < 0 && Errno::last() == Errno::ENOSYS {
                    return Ok((Reply::Xattr { value: Vec::new() }, None));
                }
                r as isize
            }
        };
        let n = usize::try_from(n).map_err(|_| Errno::last())?;
        buf.truncate(n);
        Ok((Reply::Xattr { value: buf }, None))
    }

    /// The checks a write makes before touching the host, in Linux's
    /// order: EROFS (mnt_want_write), then the namespace and file type
    /// (xattr_permission and the capability hooks, as for a caller without
    /// CAP_SYS_ADMIN: the gofer writes `user.*` only). Returns the fd.
    fn xattr_writable(&self, id: NodeId, name: &CStr) -> Result<OwnedFd, Errno> {
        let node = self.node(id)?;
        if self.roots.get(node.root).is_none_or(|r| r.readonly) {
            return Err(Errno::EROFS);
        }
        let name = name.to_bytes();
        if !name.starts_with(b"user.") {
            // trusted.* needs CAP_SYS_ADMIN and security.* CAP_SYS_ADMIN
            // (CAP_SETFCAP for security.capability): EPERM, as Linux tells
            // an unprivileged caller. system.* (ACLs) and unknown
            // namespaces have no handler here: EOPNOTSUPP.
            return Err(
                if name.starts_with(b"trusted.") || name.starts_with(b"security.") {
                    Errno::EPERM
                } else {
                    Errno::EOPNOTSUPP
                },
            );
        }
        if name == b"user." {
            return Err(Errno::EINVAL);
        }
        let st = fd_stat(node.fd.as_fd())?;
        if !matches!(file_type(st.st_mode), libc::S_IFREG | libc::S_IFDIR) {
            // user.* is for regular files and directories only.
            return Err(Errno::EPERM);
        }
        Ok(self.reopen(node, libc::O_RDONLY)?.0)
    }

    fn setxattr(&mut self, id: NodeId, name: Vec<u8>, value: Vec<u8>, flags: i32) -> Handled {
        if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
            return Err(Errno::EINVAL);
        }
        let name = xattr_name(name)?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        let fd = self.xattr_writable(id, &name)?;
        // SAFETY: `value` is readable for its length, `name` a valid C
        // string, the fd ours.
        let r = unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags,
            )
        };
        if r != 0 {
            return Err(Errno::last());
        }
        Ok((Reply::Ok, None))
    }

    fn removexattr(&mut self, id: NodeId, name: Vec<u8>) -> Handled {
        let name = xattr_name(name)?;
        let fd = self.xattr_writable(id, &name)?;
        // SAFETY: a valid C string and an fd we own.
        if unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) } != 0 {
            return Err(Errno::last());
        }
        Ok((Reply::Ok, None))
    }

    fn open(&self, id: NodeId, flags: i32) -> Handled {
        let (fd, st) = self.reopen(self.node(id)?, flags)?;
        Ok((
            Reply::Opened {
                stat: convert_stat(&st),
            },
            Some(fd),
        ))
    }

    fn getdents(&self, id: NodeId) -> Handled {
        let (fd, _) = self.reopen(self.node(id)?, libc::O_RDONLY | libc::O_DIRECTORY)?;
        let mut dir = nix::dir::Dir::from(fd)?;
        let budget = MAX_FRAME as usize - DIRENTS_SLACK;
        let mut used = 0usize;
        let mut entries = Vec::new();
        for ent in dir.iter() {
            let ent = ent?;
            let name = ent.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            used += name.len() + DIRENT_OVERHEAD;
            if used > budget {
                return Err(Errno::EOVERFLOW);
            }
            entries.push(Dirent {
                name: name.to_vec(),
                ino: ent.ino(),
                kind: dirent_kind(ent.file_type()),
            });
        }
        Ok((Reply::Dirents { entries }, None))
    }

    /// A socket connected to the host socket file `id`, through its own
    /// O_PATH fd: `/proc/self/fd/N` names exactly that inode (the kernel
    /// follows the magic link, nothing else), so a path swapped for a
    /// symlink meanwhile cannot redirect the connection. /proc is this
    /// gofer's own (mounted only with `--host-uds open`, see `confine`).
    fn connect(&self, id: NodeId, ty: i32) -> Handled {
        if !self.host_uds {
            return Err(Errno::ECONNREFUSED);
        }
        if ![libc::SOCK_STREAM, libc::SOCK_DGRAM, libc::SOCK_SEQPACKET].contains(&ty) {
            return Err(Errno::EPROTOTYPE);
        }
        let node = self.node(id)?;
        let st = fd_stat(node.fd.as_fd())?;
        if file_type(st.st_mode) != libc::S_IFSOCK {
            return Err(Errno::ECONNREFUSED);
        }
        // SAFETY: plain socket(2); the result is checked and owned below.
        let raw = unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: a fresh fd from socket(2).
        let sock = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = format!("/proc/self/fd/{}", node.fd.as_raw_fd());
        // SAFETY: sockaddr_un is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(path.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: connect(2) with a valid socket and a sockaddr_un of the
        // given size (NUL-terminated: the path is far shorter than sun_path).
        let r = unsafe {
            libc::connect(
                sock.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(Errno::last());
        }
        let fl = nix::fcntl::fcntl(sock.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        nix::fcntl::fcntl(
            sock.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(
                nix::fcntl::OFlag::from_bits_retain(fl) | nix::fcntl::OFlag::O_NONBLOCK,
            ),
        )?;
        Ok((Reply::Connected, Some(sock)))
    }

    fn readlink(&self, id: NodeId) -> Handled {
        let node = self.node(id)?;
        let st = fd_stat(node.fd.as_fd())?;
        if file_type(st.st_mode) != libc::S_IFLNK {
            return Err(Errno::EINVAL);
        }
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        // SAFETY: `buf` is writable for `buf.len()` bytes and the path is a
        // valid empty C string; readlinkat writes at most `buf.len()` bytes.
        let n = unsafe {
            libc::readlinkat(
                node.fd.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).map_err(|_| Errno::last())?;
        if n >= buf.len() {
            return Err(Errno::ENAMETOOLONG);
        }
        buf.truncate(n);
        Ok((Reply::Link { target: buf }, None))
    }

    fn statfs(&self, id: NodeId) -> Handled {
        let node = self.node(id)?;
        let mut sf = std::mem::MaybeUninit::<libc::statfs>::uninit();
        // SAFETY: `sf` is a valid out-pointer to a statfs buffer.
        let ret = unsafe { libc::fstatfs(node.fd.as_raw_fd(), sf.as_mut_ptr()) };
        if ret != 0 {
            return Err(Errno::last());
        }
        // SAFETY: fstatfs succeeded, so it filled the whole struct.
        let sf = unsafe { sf.assume_init() };
        // struct statfs of the libc crate hides f_flags; statvfs has them.
        let flags = nix::sys::statvfs::fstatvfs(node.fd.as_fd())?.flags().bits();
        let statfs = StatFs {
            fs_type: to_u64(sf.f_type),
            bsize: to_u64(sf.f_bsize),
            blocks: to_u64(sf.f_blocks),
            bfree: to_u64(sf.f_bfree),
            bavail: to_u64(sf.f_bavail),
            files: to_u64(sf.f_files),
            ffree: to_u64(sf.f_ffree),
            namelen: to_u64(sf.f_namelen),
            frsize: to_u64(sf.f_frsize),
            flags: to_u64(flags),
        };
        Ok((Reply::StatFs { statfs }, None))
    }
}

/// getxattrat(2) and listxattrat(2) (Linux 6.13; one number on every
/// architecture). The libc crate has no constants for them yet.
pub(crate) const SYS_GETXATTRAT: libc::c_long = 464;
pub(crate) const SYS_LISTXATTRAT: libc::c_long = 465;
/// Linux's XATTR_NAME_MAX and XATTR_SIZE_MAX (also XATTR_LIST_MAX).
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;

/// `struct xattr_args` of getxattrat(2).
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// See [`Server::xattr_target`].
enum XattrAt {
    Fd(OwnedFd),
    At(Rc<OwnedFd>, CString),
}

/// An attribute name: ERANGE when empty or longer than 255 bytes (as
/// Linux), EINVAL with a NUL inside.
fn xattr_name(name: Vec<u8>) -> Result<CString, Errno> {
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    CString::new(name).map_err(|_| Errno::EINVAL)
}

fn dirent_kind(t: Option<nix::dir::Type>) -> u8 {
    use nix::dir::Type;
    match t {
        Some(Type::Fifo) => libc::DT_FIFO,
        Some(Type::CharacterDevice) => libc::DT_CHR,
        Some(Type::Directory) => libc::DT_DIR,
        Some(Type::BlockDevice) => libc::DT_BLK,
        Some(Type::File) => libc::DT_REG,
        Some(Type::Symlink) => libc::DT_LNK,
        Some(Type::Socket) => libc::DT_SOCK,
        None => libc::DT_UNKNOWN,
    }
}

/// Serves `roots` (index = mount number) on `sock` until the peer closes it.
///
/// The first request must be `Version` with [`VERSION`]; anything else is
/// answered with an error and ends the connection. A frame that cannot be
/// decoded, or a request carrying fds, also ends it (with `Err`). EOF from
/// the peer is a clean `Ok(())`.
pub fn serve(sock: OwnedFd, roots: Vec<ServedRoot>, host_uds: bool) -> Result<(), Error> {
    wire::check_seqpacket(sock.as_fd())?;
    let mut server = Server::new(roots, host_uds);
    let mut greeted = false;
    loop {
        let (frame, fds) = match wire::recv_frame::<Request>(sock.as_fd()) {
            Ok(x) => x,
            Err(WireError::Eof) => {
                tracing::debug!("gofer: peer closed the connection");
                return Ok(());
            }
            Err(e) => {
                tracing::debug!("gofer: bad request: {e}");
                return Err(e.into());
            }
        };
        if !fds.is_empty() {
            return Err(Error::Protocol("request carried file descriptors".into()));
        }
        let tag = frame.tag;
        tracing::debug!(tag, request = ?frame.body, "gofer: request");
        let (reply, fd, fatal) = if greeted {
            match server.handle(frame.body) {
                Ok((reply, fd)) => (reply, fd, None),
                Err(e) => (Reply::Error { errno: e as i32 }, None, None),
            }
        } else {
            match frame.body {
                Request::Version { version } if version == VERSION => {
                    greeted = true;
                    (Reply::Version { version: VERSION }, None, None)
                }
                Request::Version { version } => (
                    Reply::Error {
                        errno: libc::EPROTONOSUPPORT,
                    },
                    None,
                    Some(format!("unsupported protocol version {version}")),
                ),
                _ => (
                    Reply::Error {
                        errno: libc::EPROTO,
                    },
                    None,
                    Some("first request is not Version".to_string()),
                ),
            }
        };
        tracing::debug!(tag, reply = ?reply, fd = fd.is_some(), "gofer: reply");
        let raw: Vec<_> = fd.iter().map(|f| f.as_raw_fd()).collect();
        match wire::send_frame(sock.as_fd(), &Frame { tag, body: reply }, &raw) {
            Ok(()) => {}
            Err(WireError::Eof) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        drop(fd);
        if let Some(why) = fatal {
            return Err(Error::Protocol(why));
        }
    }
}

#[cfg(test)]
mod tests;
