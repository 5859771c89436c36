//! devfs: the character devices every container has.

use crate::abi::*;
use crate::vfs::{Dentry, FsType, Inode, Meta, Node, DEV_DEV};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevKind {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
    /// /dev/tty: the controlling terminal (see `fs::pty`).
    Tty,
    /// /dev/pts/ptmx: opening it creates a pty (see `fs::pty`).
    Ptmx,
    /// /dev/pts/N: the replica of pty N.
    Pts(u32),
    /// A device node the sentry has no driver for (config.json's
    /// linux.devices): it exists, opening it gives ENXIO as a node
    /// without a driver does.
    Other {
        block: bool,
        rdev: u64,
    },
}

impl DevKind {
    pub fn rdev(self) -> u64 {
        let (major, minor) = match self {
            DevKind::Null => (1, 3),
            DevKind::Zero => (1, 5),
            DevKind::Full => (1, 7),
            DevKind::Random => (1, 8),
            DevKind::Urandom => (1, 9),
            DevKind::Tty => (5, 0),
            DevKind::Ptmx => (5, 2),
            DevKind::Pts(n) => return crate::fs::pty::replica_rdev(n),
            DevKind::Other { rdev, .. } => return rdev,
        };
        (major << 8) | minor
    }

    pub fn read(self, buf: &mut [u8]) -> KResult<usize> {
        match self {
            DevKind::Null => Ok(0),
            DevKind::Zero | DevKind::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            DevKind::Random | DevKind::Urandom => {
                fill_random(buf)?;
                Ok(buf.len())
            }
            DevKind::Tty | DevKind::Ptmx | DevKind::Pts(_) => Err(Errno::EIO),
            DevKind::Other { .. } => Err(Errno::ENXIO),
        }
    }

    /// The device for a (major, minor) pair, if the sentry implements it.
    pub fn known(major: u64, minor: u64) -> Option<DevKind> {
        Some(match (major, minor) {
            (1, 3) => DevKind::Null,
            (1, 5) => DevKind::Zero,
            (1, 7) => DevKind::Full,
            (1, 8) => DevKind::Random,
            (1, 9) => DevKind::Urandom,
            (5, 0) => DevKind::Tty,
            (5, 2) => DevKind::Ptmx,
            _ => return None,
        })
    }

    pub fn write(self, buf: &[u8]) -> KResult<usize> {
        match self {
            DevKind::Full => Err(Errno::ENOSPC),
            DevKind::Tty | DevKind::Ptmx | DevKind::Pts(_) => Err(Errno::EIO),
            DevKind::Other { .. } => Err(Errno::ENXIO),
            _ => Ok(buf.len()),
        }
    }
}

/// Random bytes from the host's getrandom (the sentry's own entropy).
pub fn fill_random(buf: &mut [u8]) -> KResult<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writing into our own buffer slice.
        let n = unsafe {
            libc::getrandom(
                buf[done..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - done,
                0,
            )
        };
        if n < 0 {
            let e = Errno::last_host();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

pub fn dev_inode(kind: DevKind) -> Arc<Inode> {
    let ty = if matches!(kind, DevKind::Other { block: true, .. }) {
        S_IFBLK
    } else {
        S_IFCHR
    };
    let mut m = Meta::new(ty | 0o666, DEV_DEV, 0, 0);
    m.rdev = kind.rdev();
    Inode::new(Node::Dev(kind), m)
}

fn symlink(target: &[u8]) -> Arc<Inode> {
    let mut m = Meta::new(S_IFLNK | 0o777, DEV_DEV, 0, 0);
    m.size = target.len() as u64;
    Inode::new(Node::Symlink(target.to_vec()), m)
}

/// Build a devfs tree mounted on `mountpoint`.
pub fn build(mountpoint: &Arc<Dentry>) -> Arc<Dentry> {
    let root = Dentry::new_root(
        Inode::new(Node::MemDir, Meta::new(S_IFDIR | 0o755, DEV_DEV, 0, 0)),
        FsType::Dev,
        Some(mountpoint.clone()),
    );
    for (name, kind) in [
        ("null", DevKind::Null),
        ("zero", DevKind::Zero),
        ("full", DevKind::Full),
        ("random", DevKind::Random),
        ("urandom", DevKind::Urandom),
        ("tty", DevKind::Tty),
    ] {
        root.add_child(name.as_bytes(), dev_inode(kind));
    }
    // As in a runc container: /dev/ptmx links to the devpts instance's.
    root.add_child(b"ptmx", symlink(b"pts/ptmx"));
    root.add_child(b"fd", symlink(b"/proc/self/fd"));
    root.add_child(b"stdin", symlink(b"/proc/self/fd/0"));
    root.add_child(b"stdout", symlink(b"/proc/self/fd/1"));
    root.add_child(b"stderr", symlink(b"/proc/self/fd/2"));
    let mq = root.add_child(
        b"mqueue",
        Inode::new(Node::MemDir, Meta::new(S_IFDIR | 0o755, DEV_DEV, 0, 0)),
    );
    *crate::vfs::lock(&mq.mounted) = Some(crate::fs::mqueue::mount_root(&mq, false));
    for d in ["shm", "pts"] {
        let mode = if d == "shm" {
            S_IFDIR | 0o1777
        } else {
            S_IFDIR | 0o755
        };
        let dir = root.add_child(
            d.as_bytes(),
            Inode::new(Node::MemDir, Meta::new(mode, DEV_DEV, 0, 0)),
        );
        if d == "pts" {
            // The sandbox's devpts instance: ptmx and the live replicas.
            crate::fs::pty::register_dir(&dir);
        }
    }
    root
}
