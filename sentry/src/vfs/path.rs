//! Path resolution: components, `..` across mount roots, symlinks (ELOOP
//! after 40), trailing slashes.

use super::{Dentry, Node};
use crate::abi::*;
use crate::fs::proc;
use crate::kernel::task::Task;
use std::sync::Arc;

pub const MAX_SYMLINKS: u32 = 40;
pub const PATH_MAX: usize = 4096;

/// `..` of `d`, staying inside `root`.
pub fn parent_of(d: &Arc<Dentry>, root: &Arc<Dentry>) -> Arc<Dentry> {
    let mut cur = d.clone();
    loop {
        if Arc::ptr_eq(&cur, root) {
            return cur;
        }
        if let Some(p) = &cur.parent {
            return p.clone();
        }
        match &cur.mountpoint {
            Some(mp) => cur = mp.clone(),
            None => return cur,
        }
    }
}

pub fn readlink(t: &Task, d: &Arc<Dentry>) -> KResult<Vec<u8>> {
    let inode = d.inode();
    match &inode.node {
        Node::Lower(l) if inode.meta().is_lnk() => l.gofer.readlink(l.node).map_err(Errno),
        Node::Symlink(s) => Ok(s.clone()),
        Node::Proc(p) => proc::readlink(p, t),
        _ => Err(Errno::EINVAL),
    }
}

/// openat2(2) RESOLVE_* flags.
pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;
pub const RESOLVE_CACHED: u64 = 0x20;

/// The root of the mount `d` is in (mount identity for RESOLVE_NO_XDEV).
fn mount_of(d: &Arc<Dentry>) -> *const Dentry {
    let mut cur = d;
    while let Some(p) = &cur.parent {
        cur = p;
    }
    Arc::as_ptr(cur)
}

pub struct Walker<'a> {
    pub t: &'a Task,
    pub root: Arc<Dentry>,
    links: u32,
    resolve: u64,
    /// RESOLVE_BENEATH: the directory the walk may not leave.
    anchor: Option<Arc<Dentry>>,
}

impl<'a> Walker<'a> {
    pub fn new(t: &'a Task) -> Self {
        let root = t.fs_root();
        Walker {
            t,
            root,
            links: 0,
            resolve: 0,
            anchor: None,
        }
    }

    /// A walk restricted by openat2's RESOLVE_* flags, from `base`.
    pub fn scoped(t: &'a Task, base: &Arc<Dentry>, resolve: u64) -> Self {
        let mut w = Walker::new(t);
        w.resolve = resolve;
        if resolve & RESOLVE_IN_ROOT != 0 {
            w.root = base.clone();
        }
        if resolve & RESOLVE_BENEATH != 0 {
            w.anchor = Some(base.clone());
        }
        w
    }

    fn no_xdev(&self, from: &Arc<Dentry>, to: &Arc<Dentry>) -> KResult<()> {
        if self.resolve & RESOLVE_NO_XDEV != 0 && mount_of(from) != mount_of(to) {
            return Err(Errno::EXDEV);
        }
        Ok(())
    }

    /// Resolve `path` from `start`. `follow` applies to the last component.
    pub fn walk(&mut self, start: &Arc<Dentry>, path: &[u8], follow: bool) -> KResult<Arc<Dentry>> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut cur = if path[0] == b'/' {
            if self.anchor.is_some() {
                return Err(Errno::EXDEV);
            }
            self.no_xdev(start, &self.root)?;
            self.root.clone()
        } else {
            start.clone()
        };
        let trailing_slash = path.ends_with(b"/");
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let n = comps.len();
        for (i, c) in comps.into_iter().enumerate() {
            let last = i + 1 == n;
            if !cur.meta().is_dir() {
                return Err(Errno::ENOTDIR);
            }
            self.t.may_access(&cur.meta(), 1)?;
            if c == b"." {
                continue;
            }
            if c == b".." {
                if self.anchor.as_ref().is_some_and(|a| Arc::ptr_eq(a, &cur)) {
                    return Err(Errno::EXDEV);
                }
                let up = parent_of(&cur, &self.root);
                self.no_xdev(&cur, &up)?;
                cur = up;
                continue;
            }
            let next = cur.lookup(c, self.t)?.follow_mounts();
            self.no_xdev(&cur, &next)?;
            let is_link = {
                let inode = next.inode();
                matches!(
                    inode.node,
                    Node::Symlink(_) | Node::Proc(proc::ProcNode::Link(_))
                ) || (matches!(inode.node, Node::Lower(_)) && inode.meta().is_lnk())
            };
            if is_link && (!last || follow || trailing_slash) {
                if self.resolve & RESOLVE_NO_SYMLINKS != 0 {
                    return Err(Errno::ELOOP);
                }
                // Scoped walks never take procfs's magic links.
                let magic = matches!(
                    next.inode().node,
                    Node::Proc(proc::ProcNode::Link(
                        proc::ProcLink::Exe(_)
                            | proc::ProcLink::Cwd(_)
                            | proc::ProcLink::Root(_)
                            | proc::ProcLink::Fd(..)
                    ))
                );
                let no_magic = RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT;
                if magic && self.resolve & no_magic != 0 {
                    return Err(Errno::ELOOP);
                }
                self.links += 1;
                if self.links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                // Magic links of procfs name a dentry directly.
                if let Node::Proc(p) = &next.inode().node {
                    if let Some(d) = proc::link_target(p, self.t)? {
                        cur = d;
                        continue;
                    }
                }
                let target = readlink(self.t, &next)?;
                cur = self.walk(&cur, &target, true)?;
            } else {
                cur = next;
            }
        }
        if trailing_slash && !cur.meta().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    /// Resolve all but the last component; returns (dir, last name).
    /// The name is "." or ".." when the path ends that way; callers reject it.
    pub fn walk_parent(
        &mut self,
        start: &Arc<Dentry>,
        path: &[u8],
    ) -> KResult<(Arc<Dentry>, Vec<u8>)> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let trimmed: &[u8] = {
            let mut p = path;
            while p.len() > 1 && p.ends_with(b"/") {
                p = &p[..p.len() - 1];
            }
            p
        };
        if trimmed == b"/" {
            return Ok((self.root.clone(), b".".to_vec()));
        }
        let (dir_part, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(0) => (&b"/"[..], &trimmed[1..]),
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&b"."[..], trimmed),
        };
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let dir = self.walk(start, dir_part, true)?;
        if !dir.meta().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok((dir, name.to_vec()))
    }
}
