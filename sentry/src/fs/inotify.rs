//! inotify: watches on the sentry's inodes and the events its VFS
//! operations generate (inotify(7)). A watch is keyed by inode identity
//! (the `Arc<Inode>` a dentry holds; copy-up moves watches to the new
//! inode). Changes made on the host side of a bind mount are not seen.
//!
//! Lock order: the global watch registry, then an instance's watches,
//! then its event queue.

use crate::abi::*;
use crate::kernel::task::Task;
use crate::signals::{self, WaitOutcome};
use crate::syscalls::Args;
use crate::vfs::file::{File, FileKind};
use crate::vfs::{lock, Dentry, Inode};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
const IN_ALL_EVENTS: u32 = 0xfff;
const IN_UNMOUNT: u32 = 0x2000;
const IN_Q_OVERFLOW: u32 = 0x4000;
const IN_IGNORED: u32 = 0x8000;
const IN_ONLYDIR: u32 = 0x0100_0000;
const IN_DONT_FOLLOW: u32 = 0x0200_0000;
const IN_EXCL_UNLINK: u32 = 0x0400_0000;
const IN_MASK_CREATE: u32 = 0x1000_0000;
const IN_MASK_ADD: u32 = 0x2000_0000;
const IN_ISDIR: u32 = 0x4000_0000;
const IN_ONESHOT: u32 = 0x8000_0000;
const ALL_BITS: u32 = IN_ALL_EVENTS
    | IN_UNMOUNT
    | IN_Q_OVERFLOW
    | IN_IGNORED
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_ADD
    | IN_MASK_CREATE
    | IN_ISDIR
    | IN_ONESHOT;
/// /proc/sys/fs/inotify/max_queued_events.
const MAX_QUEUED: usize = 16384;
/// /proc/sys/fs/inotify/max_user_watches (per instance here).
const MAX_WATCHES: usize = 65536;
const EVENT_HDR: usize = 16;

struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name is NUL-padded to a multiple of the header size.
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(EVENT_HDR) * EVENT_HDR
        }
    }
    fn size(&self) -> usize {
        EVENT_HDR + self.name_len()
    }
}

struct Watch {
    inode: Arc<Inode>,
    mask: u32,
}

#[derive(Default)]
struct Watches {
    by_wd: BTreeMap<i32, Watch>,
    last_wd: i32,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    bytes: usize,
}

pub struct Inotify {
    watches: Mutex<Watches>,
    q: Mutex<Queue>,
    cv: Condvar,
    pub ino: u64,
}

impl signals::Wakeable for Inotify {
    fn wake_all(&self) {
        let _g = lock(&self.q);
        self.cv.notify_all();
    }
}

/// inode address -> (instance, wd) of every watch on it.
type Registry = HashMap<usize, Vec<(Weak<Inotify>, i32)>>;

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Watched inodes (a fast path for the common case of none).
static WATCHED: AtomicUsize = AtomicUsize::new(0);
static COOKIE: AtomicU32 = AtomicU32::new(0);

fn key(i: &Arc<Inode>) -> usize {
    Arc::as_ptr(i) as usize
}

impl Inotify {
    fn queue(&self, wd: i32, mask: u32, cookie: u32, name: &[u8]) {
        let mut q = lock(&self.q);
        // Identical to the last queued event: coalesced.
        if let Some(last) = q.events.back() {
            if last.wd == wd && last.mask == mask && last.cookie == cookie && last.name == name {
                return;
            }
        }
        let e = if q.events.len() >= MAX_QUEUED {
            if q.events.back().is_some_and(|l| l.mask == IN_Q_OVERFLOW) {
                return;
            }
            Event {
                wd: -1,
                mask: IN_Q_OVERFLOW,
                cookie: 0,
                name: Vec::new(),
            }
        } else {
            Event {
                wd,
                mask,
                cookie,
                name: name.to_vec(),
            }
        };
        q.bytes += e.size();
        q.events.push_back(e);
        self.cv.notify_all();
        drop(q);
        crate::syscalls::poll::hub().notify();
    }

    pub fn pending_bytes(&self) -> usize {
        lock(&self.q).bytes
    }

    pub fn poll(&self) -> i16 {
        use crate::syscalls::poll::{POLLIN, POLLRDNORM};
        if lock(&self.q).events.is_empty() {
            0
        } else {
            POLLIN | POLLRDNORM
        }
    }

    /// Whole events that fit in `buf`; EINVAL when not even the first does.
    pub fn read(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        let mut q = lock(&self.q);
        while q.events.is_empty() {
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let (g, out) = signals::wait(self.clone(), &self.cv, q, None);
            q = g;
            if matches!(out, WaitOutcome::Interrupted) && q.events.is_empty() {
                return Err(Errno::ERESTARTSYS);
            }
        }
        let mut off = 0;
        while let Some(e) = q.events.front() {
            let size = e.size();
            if off + size > buf.len() {
                break;
            }
            let out = &mut buf[off..off + size];
            out.fill(0);
            out[0..4].copy_from_slice(&e.wd.to_le_bytes());
            out[4..8].copy_from_slice(&e.mask.to_le_bytes());
            out[8..12].copy_from_slice(&e.cookie.to_le_bytes());
            out[12..16].copy_from_slice(&(e.name_len() as u32).to_le_bytes());
            out[16..16 + e.name.len()].copy_from_slice(&e.name);
            off += size;
            q.bytes -= size;
            q.events.pop_front();
        }
        if off == 0 {
            return Err(Errno::EINVAL);
        }
        Ok(off)
    }
}

/// Whether any inotify watch or dnotify registration exists.
fn hooks_active() -> bool {
    WATCHED.load(Ordering::Relaxed) != 0 || crate::fs::dnotify::active()
}

/// Queue `mask` (with `name` for a directory's child) to every watch on
/// `inode` that wants it; one-shot watches then go away (IN_IGNORED).
fn deliver(inode: &Arc<Inode>, mask: u32, cookie: u32, name: &[u8]) {
    // An event about an entry of a directory is dnotify's too.
    if !name.is_empty() {
        crate::fs::dnotify::event(inode, mask);
    }
    if WATCHED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let k = key(inode);
    let mut reg = lock(registry());
    let Some(list) = reg.get_mut(&k) else {
        return;
    };
    list.retain(|(w, wd)| {
        let Some(g) = w.upgrade() else {
            return false;
        };
        let mut ws = lock(&g.watches);
        let Some(watch) = ws.by_wd.get(wd) else {
            return false;
        };
        if mask & watch.mask & IN_ALL_EVENTS == 0 {
            return true;
        }
        g.queue(*wd, mask, cookie, name);
        if watch.mask & IN_ONESHOT != 0 {
            ws.by_wd.remove(wd);
            g.queue(*wd, IN_IGNORED, 0, b"");
            return false;
        }
        true
    });
    if list.is_empty() {
        reg.remove(&k);
        WATCHED.store(reg.len(), Ordering::Relaxed);
    }
}

/// The inode is gone (last link removed): IN_DELETE_SELF, then every
/// watch on it ends with IN_IGNORED.
fn deleted(inode: &Arc<Inode>) {
    if !hooks_active() {
        return;
    }
    deliver(inode, IN_DELETE_SELF | isdir(inode), 0, b"");
    let mut reg = lock(registry());
    for (w, wd) in reg.remove(&key(inode)).unwrap_or_default() {
        if let Some(g) = w.upgrade() {
            if lock(&g.watches).by_wd.remove(&wd).is_some() {
                g.queue(wd, IN_IGNORED, 0, b"");
            }
        }
    }
    WATCHED.store(reg.len(), Ordering::Relaxed);
}

fn isdir(i: &Inode) -> u32 {
    if i.meta().is_dir() {
        IN_ISDIR
    } else {
        0
    }
}

/// An event on the file of `d`: to its parent's watches (with its name),
/// then to its own.
fn file_event(d: &Arc<Dentry>, mask: u32) {
    if !hooks_active() {
        return;
    }
    let inode = d.inode();
    let mask = mask | isdir(&inode);
    if let Some(p) = &d.parent {
        deliver(&p.inode(), mask, 0, &d.name);
    }
    deliver(&inode, mask, 0, b"");
}

pub fn opened(d: &Arc<Dentry>) {
    file_event(d, IN_OPEN);
}

pub fn accessed(d: &Arc<Dentry>) {
    file_event(d, IN_ACCESS);
}

pub fn modified(d: &Arc<Dentry>) {
    file_event(d, IN_MODIFY);
}

pub fn attrib(d: &Arc<Dentry>) {
    file_event(d, IN_ATTRIB);
}

pub fn closed(d: &Arc<Dentry>, wrote: bool) {
    file_event(
        d,
        if wrote {
            IN_CLOSE_WRITE
        } else {
            IN_CLOSE_NOWRITE
        },
    );
}

/// `name` was created in `dir`.
pub fn created(dir: &Arc<Dentry>, name: &[u8], child: &Arc<Inode>) {
    if !hooks_active() {
        return;
    }
    deliver(&dir.inode(), IN_CREATE | isdir(child), 0, name);
}

/// A hard link to `inode` was made as `name` in `dir`.
pub fn linked(dir: &Arc<Dentry>, name: &[u8], inode: &Arc<Inode>) {
    if !hooks_active() {
        return;
    }
    deliver(inode, IN_ATTRIB, 0, b"");
    created(dir, name, inode);
}

/// `name` (the inode `victim`) was unlinked or removed from `dir`.
pub fn removed(dir: &Arc<Dentry>, name: &[u8], victim: &Arc<Inode>) {
    if !hooks_active() {
        return;
    }
    let m = victim.meta();
    let d = isdir(victim);
    if !m.is_dir() {
        // The link count changed.
        deliver(victim, IN_ATTRIB, 0, b"");
    }
    if m.is_dir() || m.nlink == 0 {
        deleted(victim);
    }
    deliver(&dir.inode(), IN_DELETE | d, 0, name);
}

/// `src` moved from `oname` in `od` to `nname` in `nd`, replacing
/// `replaced` if given.
pub fn moved(
    od: &Arc<Dentry>,
    oname: &[u8],
    nd: &Arc<Dentry>,
    nname: &[u8],
    src: &Arc<Inode>,
    replaced: Option<&Arc<Inode>>,
) {
    if !hooks_active() {
        return;
    }
    let cookie = COOKIE.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let d = isdir(src);
    deliver(&od.inode(), IN_MOVED_FROM | d, cookie, oname);
    deliver(&nd.inode(), IN_MOVED_TO | d, cookie, nname);
    if let Some(r) = replaced {
        deliver(r, IN_ATTRIB | isdir(r), 0, b"");
    }
    deliver(src, IN_MOVE_SELF | d, 0, b"");
    if let Some(r) = replaced {
        if r.meta().is_dir() || r.meta().nlink == 0 {
            deleted(r);
        }
    }
}

/// Copy-up replaced `old` by `new` in a dentry: the watches follow.
pub fn inode_replaced(old: &Arc<Inode>, new: &Arc<Inode>) {
    if !hooks_active() {
        return;
    }
    let mut reg = lock(registry());
    let Some(list) = reg.remove(&key(old)) else {
        return;
    };
    for (w, wd) in &list {
        if let Some(g) = w.upgrade() {
            if let Some(watch) = lock(&g.watches).by_wd.get_mut(wd) {
                watch.inode = new.clone();
            }
        }
    }
    reg.entry(key(new)).or_default().extend(list);
}

fn inotify_of(t: &Task, fd: i32) -> KResult<Arc<Inotify>> {
    match &crate::syscalls::file::get_file(t, fd)?.kind {
        FileKind::Inotify(x) => Ok(x.clone()),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_inotify_init1(t: &mut Task, a: &Args) -> KResult<u64> {
    let flags = a.int(0);
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let n = Arc::new(Inotify {
        watches: Mutex::new(Watches::default()),
        q: Mutex::new(Queue::default()),
        cv: Condvar::new(),
        ino: crate::vfs::new_ino(),
    });
    let f = File::new(None, FileKind::Inotify(n), O_RDONLY | (flags & O_NONBLOCK));
    crate::syscalls::file::install(t, f, flags & O_CLOEXEC != 0)
}

pub fn sys_inotify_init(t: &mut Task, _a: &Args) -> KResult<u64> {
    sys_inotify_init1(t, &Args([0; 6]))
}

pub fn sys_inotify_add_watch(t: &mut Task, a: &Args) -> KResult<u64> {
    let (fd, mask) = (a.int(0), a.uint(2));
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    if mask & ALL_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    let g = inotify_of(t, fd)?;
    let path = t.read_path(a.u(1))?;
    let d = crate::vfs::path::Walker::new(t).walk(&t.cwd(), &path, mask & IN_DONT_FOLLOW == 0)?;
    let inode = d.inode();
    let meta = inode.meta();
    if mask & IN_ONLYDIR != 0 && !meta.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    t.may_access(&meta, 4)?;
    let user = mask & (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK);
    let mut reg = lock(registry());
    let mut ws = lock(&g.watches);
    let existing = ws
        .by_wd
        .iter_mut()
        .find(|(_, w)| Arc::ptr_eq(&w.inode, &inode));
    if let Some((wd, w)) = existing {
        if mask & IN_MASK_CREATE != 0 {
            return Err(Errno::EEXIST);
        }
        w.mask = if mask & IN_MASK_ADD != 0 {
            w.mask | user
        } else {
            user
        };
        return Ok(*wd as u64);
    }
    if ws.by_wd.len() >= MAX_WATCHES {
        return Err(Errno::ENOSPC);
    }
    // Watch descriptors are handed out cyclically from 1, not reused soon.
    let mut wd = ws.last_wd;
    loop {
        wd = if wd == i32::MAX { 1 } else { wd + 1 };
        if !ws.by_wd.contains_key(&wd) {
            break;
        }
    }
    ws.last_wd = wd;
    ws.by_wd.insert(
        wd,
        Watch {
            inode: inode.clone(),
            mask: user,
        },
    );
    reg.entry(key(&inode))
        .or_default()
        .push((Arc::downgrade(&g), wd));
    WATCHED.store(reg.len(), Ordering::Relaxed);
    Ok(wd as u64)
}

pub fn sys_inotify_rm_watch(t: &mut Task, a: &Args) -> KResult<u64> {
    let (fd, wd) = (a.int(0), a.int(1));
    let g = inotify_of(t, fd)?;
    let mut reg = lock(registry());
    let w = lock(&g.watches).by_wd.remove(&wd).ok_or(Errno::EINVAL)?;
    let k = key(&w.inode);
    if let Some(list) = reg.get_mut(&k) {
        list.retain(|(x, d)| !(*d == wd && Weak::ptr_eq(x, &Arc::downgrade(&g))));
        if list.is_empty() {
            reg.remove(&k);
        }
    }
    WATCHED.store(reg.len(), Ordering::Relaxed);
    drop(reg);
    g.queue(wd, IN_IGNORED, 0, b"");
    Ok(0)
}
