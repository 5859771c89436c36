//! mount(2) and umount2(2) inside the sandbox: tmpfs, proc, sysfs and
//! bind mounts in the sandbox's single mount namespace (the host never
//! sees them). Propagation changes are accepted and change nothing: there
//! is no other namespace to propagate to.

use super::Args;
use crate::abi::*;
use crate::kernel::task::Task;
use crate::vfs::path::Walker;
use crate::vfs::{lock, Dentry, FsType, Inode, Meta, Node, MEM_DEV};
use std::sync::{Arc, Mutex, OnceLock, Weak};

const CAP_SYS_ADMIN: u32 = 21;

const MS_RDONLY: u64 = 1;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_REC: u64 = 16384;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
const PROPAGATION: u64 = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED;

const MNT_FORCE: u32 = 1;
const MNT_DETACH: u32 = 2;
const MNT_EXPIRE: u32 = 4;
const UMOUNT_NOFOLLOW: u32 = 8;

/// Mounts made here: (mount point, mounted root). A bind mount's root is
/// the source dentry itself (it keeps the source's in-memory children),
/// so its mount point is found here rather than in the dentry.
type Mounted = Vec<(Weak<Dentry>, Weak<Dentry>)>;

fn mounted() -> &'static Mutex<Mounted> {
    static M: OnceLock<Mutex<Mounted>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// A NUL-terminated string argument that may be NULL.
fn opt_str(t: &Task, addr: u64) -> KResult<Option<Vec<u8>>> {
    if addr == 0 {
        return Ok(None);
    }
    t.read_cstr(addr, PAGE_SIZE as usize - 1).map(Some)
}

/// tmpfs options: mode=, uid=, gid=, size= and nr_inodes= (enforced,
/// `fs::tmpfs`; size=N% is a share of the sandbox's memory limit).
fn tmpfs_root(t: &Task, at: &Arc<Dentry>, data: &[u8], readonly: bool) -> KResult<Arc<Dentry>> {
    let (mut mode, mut uid, mut gid) = (0o1777u32, 0u32, 0u32);
    let (mut size, mut inodes) = (None, None);
    let mem = t.k.memory_limit.load(std::sync::atomic::Ordering::Relaxed);
    let total = if mem > 0 { mem } else { t.k.mem_limit };
    for opt in data.split(|&b| b == b',').filter(|o| !o.is_empty()) {
        let text = std::str::from_utf8(opt).map_err(|_| Errno::EINVAL)?;
        let (k, v) = text.split_once('=').unwrap_or((text, ""));
        match k {
            "mode" => mode = u32::from_str_radix(v, 8).map_err(|_| Errno::EINVAL)? & 0o7777,
            "uid" => uid = v.parse().map_err(|_| Errno::EINVAL)?,
            "gid" => gid = v.parse().map_err(|_| Errno::EINVAL)?,
            "size" => {
                size = Some(match v.strip_suffix('%') {
                    Some(pct) => {
                        let pct: u64 = pct.parse().map_err(|_| Errno::EINVAL)?;
                        total / 100 * pct
                    }
                    None => crate::fs::tmpfs::parse_size(v).ok_or(Errno::EINVAL)?,
                })
            }
            "nr_blocks" => {
                let n = crate::fs::tmpfs::parse_size(v).ok_or(Errno::EINVAL)?;
                size = Some(n.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?);
            }
            "nr_inodes" => inodes = Some(crate::fs::tmpfs::parse_size(v).ok_or(Errno::EINVAL)?),
            "huge" | "mpol" | "inode64" | "noswap" => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    let root = Dentry::new_mount_root(
        Inode::new(Node::MemDir, Meta::new(S_IFDIR | mode, MEM_DEV, uid, gid)),
        FsType::Tmpfs,
        Some(at.clone()),
        readonly,
    );
    crate::fs::tmpfs::register(&root, size.filter(|&s| s > 0), inodes, mem);
    Ok(root)
}

fn attach(t: &Task, at: &Arc<Dentry>, root: Arc<Dentry>, fstype: &str, source: &[u8], ro: bool) {
    *lock(&at.mounted) = Some(root.clone());
    let mut m = lock(mounted());
    m.retain(|(a, b)| a.strong_count() > 0 && b.strong_count() > 0);
    m.push((Arc::downgrade(at), Arc::downgrade(&root)));
    drop(m);
    let source = String::from_utf8_lossy(source).to_string();
    t.k.record_mount(&at.path(), fstype, &source, ro);
}

pub fn sys_mount(t: &mut Task, a: &Args) -> KResult<u64> {
    let source = opt_str(t, a.u(0))?.unwrap_or_default();
    let target = t.read_path(a.u(1))?;
    let fstype = opt_str(t, a.u(2))?;
    let flags = a.u(3);
    let data = opt_str(t, a.u(4))?.unwrap_or_default();
    if !t.creds().has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let at = Walker::new(t).walk(&t.cwd(), &target, true)?;
    if flags & PROPAGATION != 0 {
        // One mount namespace, nothing shared with the host: propagation
        // types have no effect to give.
        return Ok(0);
    }
    let ro = flags & MS_RDONLY != 0;
    if flags & MS_REMOUNT != 0 {
        return remount(t, &at, ro);
    }
    if flags & MS_MOVE != 0 {
        // Moving a mount is not supported.
        return Err(Errno::EINVAL);
    }
    if flags & MS_BIND != 0 {
        let src = Walker::new(t).walk(&t.cwd(), &source, true)?;
        if src.meta().is_dir() != at.meta().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        // Submounts under the source come along (they hang off its
        // dentries): MS_REC is what this always does.
        let _ = flags & MS_REC;
        // A read-only bind is a new root over the same inode (entries
        // the sandbox made in an in-memory source directory do not show
        // through it); a writable one is the source dentry itself.
        let root = if ro {
            Dentry::new_mount_root(src.inode(), src.fs, Some(at.clone()), true)
        } else {
            src.clone()
        };
        attach(t, &at, root, "bind", &src.path(), ro || src.readonly());
        return Ok(0);
    }
    let fstype = fstype.ok_or(Errno::EINVAL)?;
    if !at.meta().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let (root, name) = match &fstype[..] {
        b"tmpfs" => (tmpfs_root(t, &at, &data, ro)?, "tmpfs"),
        b"proc" => (crate::fs::proc::build_proc(&at), "proc"),
        b"sysfs" => (crate::fs::proc::build_sys(&at), "sysfs"),
        _ => return Err(Errno::ENODEV),
    };
    let source = if source.is_empty() {
        name.as_bytes().to_vec()
    } else {
        source
    };
    let mf = crate::spec::MountFlags {
        nosuid: flags & MS_NOSUID != 0,
        nodev: flags & MS_NODEV != 0,
        noexec: flags & MS_NOEXEC != 0,
    };
    root.set_mount_flags(mf.noexec, mf.nodev);
    attach(t, &at, root, name, &source, ro);
    t.k.set_mount_options(&at.path(), mf.show(), String::new());
    Ok(0)
}

/// MS_REMOUNT: only the read-only flag changes, on the mount's root.
fn remount(t: &Task, at: &Arc<Dentry>, ro: bool) -> KResult<u64> {
    let point = mount_point(at).ok_or(Errno::EINVAL)?;
    at.ro.store(ro, std::sync::atomic::Ordering::Relaxed);
    let path = point.path();
    let mut table = lock(&t.k.mounts);
    if let Some(e) = table.iter_mut().rev().find(|e| e.dest == path) {
        e.readonly = ro;
    }
    Ok(0)
}

/// The dentry a mount root is mounted on, if `d` is the top of a mount.
fn mount_point(d: &Arc<Dentry>) -> Option<Arc<Dentry>> {
    let on_top = |mp: &Arc<Dentry>| {
        lock(&mp.mounted)
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, d))
    };
    if let Some(mp) = &d.mountpoint {
        if on_top(mp) {
            return Some(mp.clone());
        }
    }
    lock(mounted())
        .iter()
        .filter(|(_, r)| r.as_ptr() == Arc::as_ptr(d))
        .filter_map(|(mp, _)| mp.upgrade())
        .find(on_top)
}

pub fn sys_umount2(t: &mut Task, a: &Args) -> KResult<u64> {
    let target = t.read_path(a.u(0))?;
    let flags = a.uint(1);
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0
        || (flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0)
    {
        return Err(Errno::EINVAL);
    }
    if !t.creds().has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let d = Walker::new(t).walk(&t.cwd(), &target, flags & UMOUNT_NOFOLLOW == 0)?;
    if Arc::ptr_eq(&d, &t.fs_root()) {
        return Err(Errno::EBUSY);
    }
    let point = mount_point(&d).ok_or(Errno::EINVAL)?;
    // What was mounted below this one shows again.
    *lock(&point.mounted) = None;
    lock(mounted()).retain(|(_, r)| r.as_ptr() != Arc::as_ptr(&d));
    let path = point.path();
    let mut table = lock(&t.k.mounts);
    if let Some(i) = table.iter().rposition(|e| e.dest == path) {
        table.remove(i);
    }
    Ok(0)
}
