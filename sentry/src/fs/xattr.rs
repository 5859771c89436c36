//! Extended attributes (setxattr(2), getxattr, listxattr, removexattr and
//! their l*/f* forms) on the sentry's own inodes: the overlay (upper layer,
//! and lower directories, whose upper part lives in the sentry), tmpfs and
//! devfs. Namespaces `user.*` (regular files and directories only),
//! `trusted.*` (CAP_SYS_ADMIN) and `security.*`, with Linux's errnos.
//! Lower-layer files (the rootfs, read-only bind mounts) show their host
//! attributes, read through the gofer into the inode's map on first use
//! ([`seed`]); a change copies the file up, attributes included, and
//! stays in the sandbox. Writable bind mounts (and the root under
//! `--overlay none`) get, list, set and remove on the host file through
//! the gofer, which writes `user.*` only (trusted.* and security.* are
//! EPERM there even for the sandbox's root: the gofer is unprivileged on
//! the host). The gofer cannot see the host's trusted.* attributes. procfs
//! and sysfs have none (EOPNOTSUPP; an empty list).

use crate::abi::*;
use crate::kernel::task::Task;
use crate::syscalls::Args;
use crate::vfs::file::FileKind;
use crate::vfs::path::Walker;
use crate::vfs::{lock, Dentry, FsType, Meta, Node};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Name -> value.
pub type Xattrs = BTreeMap<Vec<u8>, Vec<u8>>;

const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
const XATTR_LIST_MAX: usize = 65536;
const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;
const CAP_SYS_ADMIN: u32 = 21;

/// What a call names: a dentry, or an open file without one (pipe,
/// socket, anonymous inode), which keeps no attributes.
enum Target {
    D(Arc<Dentry>),
    Anon(u32),
}

impl Target {
    fn mode(&self) -> u32 {
        match self {
            Target::D(d) => d.meta().mode,
            Target::Anon(m) => *m,
        }
    }
    fn meta(&self) -> Meta {
        match self {
            Target::D(d) => d.meta(),
            Target::Anon(m) => {
                let mut x = Meta::new(*m, 0, 0, 0);
                x.ino = 0;
                x
            }
        }
    }
    /// The dentry, if its filesystem keeps attributes.
    fn store(&self) -> Option<&Arc<Dentry>> {
        match self {
            Target::D(d) if matches!(d.fs, FsType::Overlay | FsType::Tmpfs | FsType::Dev) => {
                Some(d)
            }
            _ => None,
        }
    }
    /// The inode of a host file of a writable bind mount, whose attributes
    /// are the host's, reached through the gofer.
    fn host(&self) -> Option<Arc<crate::vfs::Inode>> {
        match self {
            Target::D(d) if d.fs == FsType::Bind => {
                let inode = d.inode();
                matches!(inode.node, Node::Lower(_)).then_some(inode)
            }
            _ => None,
        }
    }
}

/// Reads a lower inode's host attributes into its map, once (the lower
/// layer does not change under the sandbox). `system.*` (ACLs) stay out,
/// as the sentry keeps none. A host file whose attributes cannot be read
/// shows none; only a lost gofer (EIO) is an error.
pub fn seed(inode: &crate::vfs::Inode) -> KResult<()> {
    let Node::Lower(l) = &inode.node else {
        return Ok(());
    };
    if inode.xattrs_seeded.get().is_some() {
        return Ok(());
    }
    let mut got = Xattrs::new();
    match l.gofer.listxattr(l.node) {
        Ok(names) => {
            for name in names.split(|&b| b == 0) {
                if name.is_empty() || namespace(name) == Ns::System {
                    continue;
                }
                match l.gofer.getxattr(l.node, name) {
                    Ok(v) => {
                        got.insert(name.to_vec(), v);
                    }
                    Err(libc::EIO) => return Err(Errno::EIO),
                    Err(_) => {}
                }
            }
        }
        Err(libc::EIO) => return Err(Errno::EIO),
        Err(_) => {}
    }
    let mut x = lock(&inode.xattrs);
    if inode.xattrs_seeded.set(()).is_ok() {
        for (k, v) in got {
            x.entry(k).or_insert(v);
        }
    }
    Ok(())
}

/// A host file's gofer node (see [`Target::host`]).
fn lower(inode: &crate::vfs::Inode) -> KResult<&crate::vfs::LowerNode> {
    match &inode.node {
        Node::Lower(l) => Ok(l),
        _ => Err(Errno::EIO),
    }
}

/// After a change made on the host: the host's ctime, and inotify.
fn host_changed(d: &Arc<Dentry>, inode: &crate::vfs::Inode) -> KResult<u64> {
    let l = lower(inode)?;
    if let Ok(st) = l.gofer.stat(l.node) {
        *lock(&inode.meta) = Meta::from_gofer(&st);
    }
    crate::fs::inotify::attrib(d);
    Ok(0)
}

enum How {
    Path { follow: bool },
    Fd,
}

fn how(follow: bool, fd: bool) -> How {
    if fd {
        How::Fd
    } else {
        How::Path { follow }
    }
}

fn target(t: &Task, a0: u64, h: &How) -> KResult<Target> {
    match h {
        How::Path { follow } => {
            let path = t.read_path(a0)?;
            Ok(Target::D(Walker::new(t).walk(&t.cwd(), &path, *follow)?))
        }
        How::Fd => {
            let f = crate::syscalls::file::get_file(t, a0 as u32 as i32)?;
            if matches!(f.kind, FileKind::Path) {
                return Err(Errno::EBADF);
            }
            match &f.dentry {
                Some(d) => Ok(Target::D(d.clone())),
                None => Ok(Target::Anon(f.stat()?.st_mode)),
            }
        }
    }
}

/// An attribute name: ERANGE when empty or longer than 255 bytes.
fn read_name(t: &Task, addr: u64) -> KResult<Vec<u8>> {
    match t.read_cstr(addr, XATTR_NAME_MAX) {
        Ok(n) if n.is_empty() => Err(Errno::ERANGE),
        Ok(n) => Ok(n),
        Err(Errno::ENAMETOOLONG) => Err(Errno::ERANGE),
        Err(e) => Err(e),
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Ns {
    User,
    Trusted,
    Security,
    /// system.* (POSIX ACLs): not kept.
    System,
    Unknown,
}

fn namespace(name: &[u8]) -> Ns {
    for (p, ns) in [
        (&b"user."[..], Ns::User),
        (b"trusted.", Ns::Trusted),
        (b"security.", Ns::Security),
        (b"system.", Ns::System),
    ] {
        if name.starts_with(p) {
            return ns;
        }
    }
    Ns::Unknown
}

/// Linux's xattr_permission(), then the handler lookup (EOPNOTSUPP for
/// an unknown namespace or a filesystem without attributes; EINVAL for a
/// bare prefix).
fn check(t: &Task, tg: &Target, name: &[u8], write: bool) -> KResult<()> {
    let c = t.creds();
    let mode = tg.mode();
    let ns = namespace(name);
    match ns {
        Ns::Security | Ns::System => {}
        Ns::Trusted => {
            if !c.has_cap(CAP_SYS_ADMIN) {
                return Err(if write { Errno::EPERM } else { Errno::ENODATA });
            }
        }
        Ns::User | Ns::Unknown => {
            if ns == Ns::User {
                let (reg, dir) = (mode & S_IFMT == S_IFREG, mode & S_IFMT == S_IFDIR);
                if !reg && !dir {
                    return Err(if write { Errno::EPERM } else { Errno::ENODATA });
                }
                let m = tg.meta();
                if dir
                    && mode & 0o1000 != 0
                    && write
                    && c.fsuid != m.uid
                    && !c.has_cap(crate::kernel::creds::CAP_FOWNER)
                {
                    return Err(Errno::EPERM);
                }
            }
            t.may_access(&tg.meta(), if write { 2 } else { 4 })?;
        }
    }
    if (tg.store().is_none() && tg.host().is_none()) || matches!(ns, Ns::Unknown | Ns::System) {
        return Err(Errno::EOPNOTSUPP);
    }
    let prefix_only = matches!(name, b"user." | b"trusted." | b"security." | b"system.");
    if prefix_only {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// A write needs a writable mount (EROFS first, as mnt_want_write).
fn writable(tg: &Target) -> KResult<()> {
    if let Target::D(d) = tg {
        if d.readonly() {
            return Err(Errno::EROFS);
        }
    }
    Ok(())
}

/// The dentry's inode for a change: lower files are copied up first.
fn upper(d: &Arc<Dentry>) -> KResult<Arc<crate::vfs::Inode>> {
    let m = d.meta();
    if m.is_reg() || m.is_lnk() {
        d.copy_up()
    } else {
        Ok(d.inode())
    }
}

fn set_common(t: &mut Task, a: &Args, h: How) -> KResult<u64> {
    let (value, size, flags) = (a.u(2), a.usize(3), a.int(4));
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_name(t, a.u(1))?;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let mut v = vec![0u8; size];
    if size > 0 {
        t.copy_in(value, &mut v)?;
    }
    let tg = target(t, a.u(0), &h)?;
    writable(&tg)?;
    check(t, &tg, &name, true)?;
    if let (Some(inode), Target::D(d)) = (tg.host(), &tg) {
        let l = lower(&inode)?;
        l.gofer.setxattr(l.node, &name, &v, flags).map_err(Errno)?;
        return host_changed(d, &inode);
    }
    let d = tg.store().ok_or(Errno::EOPNOTSUPP)?;
    seed(&d.inode())?;
    let inode = upper(d)?;
    {
        let mut x = lock(&inode.xattrs);
        let exists = x.contains_key(&name);
        if flags & XATTR_CREATE != 0 && exists {
            return Err(Errno::EEXIST);
        }
        if flags & XATTR_REPLACE != 0 && !exists {
            return Err(Errno::ENODATA);
        }
        x.insert(name, v);
    }
    lock(&inode.meta).ctime = crate::vfs::now();
    crate::fs::inotify::attrib(d);
    Ok(0)
}

fn get_common(t: &mut Task, a: &Args, h: How) -> KResult<u64> {
    let (buf, size) = (a.u(2), a.usize(3));
    let name = read_name(t, a.u(1))?;
    let tg = target(t, a.u(0), &h)?;
    check(t, &tg, &name, false)?;
    let v = if let Some(inode) = tg.host() {
        let l = lower(&inode)?;
        l.gofer.getxattr(l.node, &name).map_err(Errno)?
    } else {
        let d = tg.store().ok_or(Errno::EOPNOTSUPP)?;
        let inode = d.inode();
        seed(&inode)?;
        let v = lock(&inode.xattrs).get(&name).cloned();
        v.ok_or(Errno::ENODATA)?
    };
    if size == 0 {
        return Ok(v.len() as u64);
    }
    if v.len() > size.min(XATTR_SIZE_MAX) {
        return Err(if size >= XATTR_SIZE_MAX {
            Errno::E2BIG
        } else {
            Errno::ERANGE
        });
    }
    t.copy_out(buf, &v)?;
    Ok(v.len() as u64)
}

fn list_common(t: &mut Task, a: &Args, h: How) -> KResult<u64> {
    let (buf, size) = (a.u(1), a.usize(2));
    let tg = target(t, a.u(0), &h)?;
    let names: Vec<Vec<u8>> = if let Some(inode) = tg.host() {
        let l = lower(&inode)?;
        let list = l.gofer.listxattr(l.node).map_err(Errno)?;
        list.split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    } else if let Some(d) = tg.store() {
        let inode = d.inode();
        seed(&inode)?;
        let names = lock(&inode.xattrs).keys().cloned().collect();
        names
    } else {
        return Ok(0);
    };
    let admin = t.creds().has_cap(CAP_SYS_ADMIN);
    let mut out = Vec::new();
    for name in names {
        if namespace(&name) == Ns::Trusted && !admin {
            continue;
        }
        out.extend_from_slice(&name);
        out.push(0);
    }
    if size == 0 {
        return Ok(out.len() as u64);
    }
    if out.len() > size.min(XATTR_LIST_MAX) {
        return Err(if size >= XATTR_LIST_MAX {
            Errno::E2BIG
        } else {
            Errno::ERANGE
        });
    }
    t.copy_out(buf, &out)?;
    Ok(out.len() as u64)
}

fn remove_common(t: &mut Task, a: &Args, h: How) -> KResult<u64> {
    let name = read_name(t, a.u(1))?;
    let tg = target(t, a.u(0), &h)?;
    writable(&tg)?;
    check(t, &tg, &name, true)?;
    if let (Some(inode), Target::D(d)) = (tg.host(), &tg) {
        let l = lower(&inode)?;
        l.gofer.removexattr(l.node, &name).map_err(Errno)?;
        return host_changed(d, &inode);
    }
    let d = tg.store().ok_or(Errno::EOPNOTSUPP)?;
    seed(&d.inode())?;
    if !lock(&d.inode().xattrs).contains_key(&name) {
        return Err(Errno::ENODATA);
    }
    let inode = upper(d)?;
    lock(&inode.xattrs).remove(&name);
    lock(&inode.meta).ctime = crate::vfs::now();
    crate::fs::inotify::attrib(d);
    Ok(0)
}

pub fn sys_setxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    set_common(t, a, how(true, false))
}
pub fn sys_lsetxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    set_common(t, a, how(false, false))
}
pub fn sys_fsetxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    set_common(t, a, how(false, true))
}
pub fn sys_getxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    get_common(t, a, how(true, false))
}
pub fn sys_lgetxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    get_common(t, a, how(false, false))
}
pub fn sys_fgetxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    get_common(t, a, how(false, true))
}
pub fn sys_listxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    list_common(t, a, how(true, false))
}
pub fn sys_llistxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    list_common(t, a, how(false, false))
}
pub fn sys_flistxattr(t: &mut Task, a: &Args) -> KResult<u64> {
    list_common(t, a, how(false, true))
}
pub fn sys_removexattr(t: &mut Task, a: &Args) -> KResult<u64> {
    remove_common(t, a, how(true, false))
}
pub fn sys_lremovexattr(t: &mut Task, a: &Args) -> KResult<u64> {
    remove_common(t, a, how(false, false))
}
pub fn sys_fremovexattr(t: &mut Task, a: &Args) -> KResult<u64> {
    remove_common(t, a, how(false, true))
}
