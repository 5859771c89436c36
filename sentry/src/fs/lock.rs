//! Advisory file locks (fs/locks.c): POSIX record locks (F_SETLK and
//! friends, owned by a process), open-file-description locks (F_OFD_*,
//! owned by the open file) and flock(2) locks (whole file, owned by the
//! open file, a separate namespace from the other two).
//!
//! Locks are keyed by inode. POSIX locks go when their process closes any
//! fd of the inode or exits; OFD and flock locks when their file is
//! released.

use crate::abi::*;
use crate::signals::{WaitOutcome, Wakeable};
use crate::vfs::lock;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

pub const F_RDLCK: i16 = 0;
pub const F_WRLCK: i16 = 1;
pub const F_UNLCK: i16 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A process (tgid): POSIX record locks.
    Posix(i32),
    /// An open file description: OFD locks.
    Ofd(usize),
    /// An open file description: flock(2).
    Flock(usize),
}

impl Owner {
    fn is_flock(self) -> bool {
        matches!(self, Owner::Flock(_))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Lock {
    pub owner: Owner,
    pub write: bool,
    pub start: u64,
    /// Inclusive; u64::MAX reaches end of file and beyond.
    pub end: u64,
}

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }
}

#[derive(Default)]
pub struct LockTable {
    locks: Mutex<HashMap<usize, Vec<Lock>>>,
    cv: Condvar,
}

impl Wakeable for LockTable {
    fn wake_all(&self) {
        let _g = lock(&self.locks);
        self.cv.notify_all();
    }
}

pub fn table() -> &'static Arc<LockTable> {
    static T: OnceLock<Arc<LockTable>> = OnceLock::new();
    T.get_or_init(Default::default)
}

fn conflicts(held: &[Lock], want: &Lock) -> Option<Lock> {
    held.iter()
        .find(|l| {
            l.owner != want.owner
                && l.owner.is_flock() == want.owner.is_flock()
                && (l.write || want.write)
                && l.overlaps(want.start, want.end)
        })
        .copied()
}

impl LockTable {
    /// The first lock that would block `want` (F_GETLK).
    pub fn test(&self, inode: usize, want: &Lock) -> Option<Lock> {
        let g = lock(&self.locks);
        g.get(&inode).and_then(|v| conflicts(v, want))
    }

    /// Take (or, with `write` = None, release) a lock; `wait` blocks until
    /// it can be taken (interruptible: EINTR).
    pub fn set(
        self: &Arc<Self>,
        inode: usize,
        owner: Owner,
        kind: Option<bool>,
        start: u64,
        end: u64,
        wait: bool,
    ) -> KResult<()> {
        let mut g = lock(&self.locks);
        if let Some(write) = kind {
            let want = Lock {
                owner,
                write,
                start,
                end,
            };
            loop {
                match g.get(&inode).and_then(|v| conflicts(v, &want)) {
                    None => break,
                    Some(_) if !wait => return Err(Errno::EAGAIN),
                    Some(_) => {
                        let (ng, out) = crate::signals::wait(self.clone(), &self.cv, g, None);
                        g = ng;
                        if matches!(out, WaitOutcome::Interrupted) {
                            return Err(Errno::EINTR);
                        }
                    }
                }
            }
        }
        let v = g.entry(inode).or_default();
        // Cut the owner's existing locks out of [start, end]...
        let mut kept = Vec::with_capacity(v.len() + 2);
        for l in v.drain(..) {
            if l.owner != owner || !l.overlaps(start, end) {
                kept.push(l);
                continue;
            }
            if l.start < start {
                kept.push(Lock {
                    end: start - 1,
                    ..l
                });
            }
            if l.end > end {
                kept.push(Lock {
                    start: end + 1,
                    ..l
                });
            }
        }
        // ...and put the new one in.
        if let Some(write) = kind {
            kept.push(Lock {
                owner,
                write,
                start,
                end,
            });
        }
        *v = kept;
        if v.is_empty() {
            g.remove(&inode);
        }
        self.cv.notify_all();
        Ok(())
    }

    /// Drop every lock of `owner` (on `inode` only, when given).
    pub fn release(&self, owner: Owner, inode: Option<usize>) {
        self.release_where(inode, |o| o == owner);
    }

    /// Drop the OFD and flock locks of an open file description.
    pub fn release_file(&self, file: usize) {
        self.release_where(None, |o| o == Owner::Ofd(file) || o == Owner::Flock(file));
    }

    /// Drop the locks whose owner matches, on `inode` only when given.
    /// Closes and file releases come here on every call: the common case,
    /// no locks at all, costs one uncontended mutex.
    fn release_where(&self, inode: Option<usize>, owned: impl Fn(Owner) -> bool) {
        let mut g = lock(&self.locks);
        if g.is_empty() {
            return;
        }
        let mut changed = false;
        let mut sweep = |v: &mut Vec<Lock>| {
            let before = v.len();
            v.retain(|l| !owned(l.owner));
            changed |= v.len() != before;
        };
        match inode {
            Some(key) => {
                if let Some(v) = g.get_mut(&key) {
                    sweep(v);
                    if v.is_empty() {
                        g.remove(&key);
                    }
                }
            }
            None => g.retain(|_, v| {
                sweep(v);
                !v.is_empty()
            }),
        }
        if changed {
            self.cv.notify_all();
        }
    }
}
