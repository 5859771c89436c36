//! dnotify (`fcntl(F_NOTIFY)`): the process that asked gets SIGIO when an
//! entry of the directory is accessed, modified, created, deleted, renamed
//! or has its attributes changed (fcntl(2)). Events come from the same VFS
//! hooks as inotify's.

use crate::abi::*;
use crate::kernel::task::Task;
use crate::kernel::Kernel;
use crate::vfs::file::File;
use crate::vfs::{lock, Inode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

const DN_ACCESS: u32 = 0x1;
const DN_MODIFY: u32 = 0x2;
const DN_CREATE: u32 = 0x4;
const DN_DELETE: u32 = 0x8;
const DN_RENAME: u32 = 0x10;
const DN_ATTRIB: u32 = 0x20;
const DN_MULTISHOT: u32 = 0x8000_0000;
const SIGIO: i32 = 29;

struct Reg {
    dir: Weak<Inode>,
    /// The open file description that asked (its registration ends with it).
    file: usize,
    tgid: i32,
    mask: u32,
    k: Weak<Kernel>,
}

fn regs() -> &'static Mutex<Vec<Reg>> {
    static R: OnceLock<Mutex<Vec<Reg>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// How many registrations exist (a quick test on every VFS event).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

fn file_id(f: &File) -> usize {
    f as *const File as usize
}

/// fcntl(fd, F_NOTIFY, mask): add `mask` to this file's registration; a
/// mask without events removes it.
pub fn set(t: &Task, f: &Arc<File>, mask: u32) -> KResult<u64> {
    let d = f.dentry.as_ref().ok_or(Errno::ENOTDIR)?;
    if !d.meta().is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let events = DN_ACCESS | DN_MODIFY | DN_CREATE | DN_DELETE | DN_RENAME | DN_ATTRIB;
    let mut r = lock(regs());
    let id = file_id(f);
    r.retain(|x| x.dir.strong_count() > 0);
    // Successive calls add to the events watched; 0 ends the watch.
    if mask & events == 0 {
        r.retain(|x| x.file != id);
    } else if let Some(x) = r.iter_mut().find(|x| x.file == id) {
        x.mask |= mask;
    } else {
        r.push(Reg {
            dir: Arc::downgrade(&d.inode()),
            file: id,
            tgid: t.tgid,
            mask,
            k: Arc::downgrade(&t.k),
        });
    }
    ACTIVE.store(r.len(), Ordering::Relaxed);
    Ok(0)
}

/// The open file description went away: so does its registration.
pub fn closed(f: &File) {
    if ACTIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut r = lock(regs());
    let id = file_id(f);
    r.retain(|x| x.file != id);
    ACTIVE.store(r.len(), Ordering::Relaxed);
}

/// An inotify event `in_mask` about an entry of directory `dir`.
pub fn event(dir: &Arc<Inode>, in_mask: u32) {
    if ACTIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let dn = [
        (crate::fs::inotify::IN_ACCESS, DN_ACCESS),
        (crate::fs::inotify::IN_MODIFY, DN_MODIFY),
        (crate::fs::inotify::IN_CREATE, DN_CREATE),
        (crate::fs::inotify::IN_DELETE, DN_DELETE),
        (
            crate::fs::inotify::IN_MOVED_FROM | crate::fs::inotify::IN_MOVED_TO,
            DN_RENAME,
        ),
        (crate::fs::inotify::IN_ATTRIB, DN_ATTRIB),
    ]
    .iter()
    .filter(|(i, _)| in_mask & i != 0)
    .fold(0, |m, (_, d)| m | d);
    if dn == 0 {
        return;
    }
    let mut fire = Vec::new();
    {
        let mut r = lock(regs());
        r.retain(|x| {
            if !std::ptr::eq(x.dir.as_ptr(), Arc::as_ptr(dir)) || x.mask & dn == 0 {
                return x.dir.strong_count() > 0;
            }
            fire.push((x.k.clone(), x.tgid));
            x.mask & DN_MULTISHOT != 0
        });
        ACTIVE.store(r.len(), Ordering::Relaxed);
    }
    for (k, tgid) in fire {
        let Some(k) = k.upgrade() else { continue };
        if let Some(p) = k.process(tgid) {
            crate::signals::send_process(
                &k,
                &p,
                crate::signals::SigInfo {
                    signo: SIGIO,
                    code: 0x80, // SI_KERNEL
                    ..Default::default()
                },
            );
        }
    }
}
