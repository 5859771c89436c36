//! Extended attributes (setxattr(2), getxattr, listxattr, removexattr and
//! their l*/f* forms) on the sentry's own inodes: the overlay (upper layer,
//! and lower directories, whose upper part lives in the sentry), tmpfs and
//! devfs. Namespaces `user.*` (regular files and directories only),
//! `trusted.*` (CAP_SYS_ADMIN) and `security.*`, with Linux's errnos.
//! Lower-layer files show no attributes until written, which copies them
//! up. Writable bind mounts, procfs and sysfs have none (EOPNOTSUPP; an
//! empty list).

use crate::abi::*;
use crate::kernel::task::Task;
use crate::syscalls::Args;
use crate::vfs::file::FileKind;
use crate::vfs::path::Walker;
use crate::vfs::{lock, Dentry, FsType, Meta};
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
    if tg.store().is_none() || matches!(ns, Ns::Unknown | Ns::System) {
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
    let d = tg.store().ok_or(Errno::EOPNOTSUPP)?;
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
    let d = tg.store().ok_or(Errno::EOPNOTSUPP)?;
    let v = lock(&d.inode().xattrs)
        .get(&name)
        .cloned()
        .ok_or(Errno::ENODATA)?;
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
    let Some(d) = tg.store() else {
        return Ok(0);
    };
    let admin = t.creds().has_cap(CAP_SYS_ADMIN);
    let mut out = Vec::new();
    for name in lock(&d.inode().xattrs).keys() {
        if namespace(name) == Ns::Trusted && !admin {
            continue;
        }
        out.extend_from_slice(name);
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
    let d = tg.store().ok_or(Errno::EOPNOTSUPP)?;
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
