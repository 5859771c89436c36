//! tmpfs sizes: the `size=` and `nr_inodes=` options of a tmpfs mount
//! (an OCI `tmpfs` mount or mount(2) in the sandbox), enforced as Linux's
//! shmem does. A regular file is charged the pages it holds data in (4 KiB
//! each; a hole left by a seek or a growing truncate costs nothing, as in
//! shmem), every inode counts against `nr_inodes=`. A write past the size
//! writes the pages that fit and returns that count, or fails with ENOSPC
//! when none fits; fallocate is all or nothing. The charge lives with the
//! inode: unlinking the last name *and* closing the last fd frees it.
//! statfs reports the size (f_bsize 4096).
//!
//! Without `size=` the size is Linux's default, half of memory: half of the
//! sandbox's memory limit when it has one (enforced), else only reported
//! (the sandbox's memory bounds it). Data of files shared-mapped
//! (MAP_SHARED) moves to the memory file, whose pages are not re-counted.

use crate::abi::*;
use crate::vfs::{lock, Dentry, FsType, Inode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

const PAGE: u64 = 4096;

/// One tmpfs mount's limits and use.
pub struct Quota {
    /// Page limit (None: not enforced).
    pages: Option<u64>,
    /// Whether `size=` gave the limit (statfs reports it).
    explicit: bool,
    inodes: Option<u64>,
    used_pages: AtomicU64,
    used_inodes: AtomicU64,
}

impl Quota {
    fn take(used: &AtomicU64, limit: Option<u64>, n: u64) -> bool {
        let Some(limit) = limit else {
            used.fetch_add(n, Ordering::Relaxed);
            return true;
        };
        used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
            u.checked_add(n).filter(|&v| v <= limit)
        })
        .is_ok()
    }
    fn give(used: &AtomicU64, n: u64) {
        let _ = used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
            Some(u.saturating_sub(n))
        });
    }
}

/// What one inode of a tmpfs holds: its inode slot and its data pages.
pub struct Charge {
    quota: Arc<Quota>,
    inode: bool,
    /// One bit per page of the file that holds data.
    pages: Mutex<Vec<u64>>,
    count: AtomicU64,
}

impl Charge {
    fn new(quota: Arc<Quota>, inode: bool) -> Charge {
        Charge {
            quota,
            inode,
            pages: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        Quota::give(&self.quota.used_pages, self.count.load(Ordering::Relaxed));
        if self.inode {
            Quota::give(&self.quota.used_inodes, 1);
        }
    }
}

type Registry = Vec<(Weak<Dentry>, Arc<Quota>)>;

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Linux's memparse(): a number with an optional k/m/g/t/p/e suffix.
pub fn parse_size(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, suffix) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// A tmpfs's options as Linux's shmem_show_options lists them: size= (in
/// KiB of whole pages) and nr_inodes= when given, mode= unless 1777.
pub fn show_options(mode: u32, size: Option<u64>, nr_inodes: Option<u64>) -> String {
    let mut opts = Vec::new();
    if let Some(s) = size {
        opts.push(format!("size={}k", s.div_ceil(PAGE) * (PAGE / 1024)));
    }
    if let Some(n) = nr_inodes {
        opts.push(format!("nr_inodes={n}"));
    }
    if mode & 0o7777 != 0o1777 {
        opts.push(format!("mode={:03o}", mode & 0o7777));
    }
    opts.join(",")
}

/// Records the limits of the tmpfs whose root is `root`: `size` in bytes
/// (rounded up to pages), `nr_inodes`; `mem_limit` is the sandbox's memory
/// limit (0: none) for the default size.
pub fn register(root: &Arc<Dentry>, size: Option<u64>, nr_inodes: Option<u64>, mem_limit: u64) {
    let pages = match size {
        Some(s) => Some(s.div_ceil(PAGE)),
        None if mem_limit > 0 => Some(mem_limit / 2 / PAGE),
        None => None,
    };
    let q = Arc::new(Quota {
        pages,
        explicit: size.is_some(),
        // The root directory is an inode of the mount too.
        inodes: nr_inodes.filter(|&n| n > 0),
        used_pages: AtomicU64::new(0),
        used_inodes: AtomicU64::new(1),
    });
    let mut r = lock(registry());
    r.retain(|(d, _)| d.strong_count() > 0);
    r.push((Arc::downgrade(root), q));
}

/// The quota of the tmpfs holding `d`, if it has one.
fn quota_of(d: &Arc<Dentry>) -> Option<Arc<Quota>> {
    // A tmpfs, or /dev/shm (a devfs tree mounted with tmpfs options).
    if d.fs != FsType::Tmpfs && d.fs != FsType::Dev {
        return None;
    }
    let mut top = d;
    while let Some(p) = &top.parent {
        top = p;
    }
    lock(registry())
        .iter()
        .find(|(r, _)| r.as_ptr() == Arc::as_ptr(top))
        .map(|(_, q)| q.clone())
}

/// A new inode in directory `dir`: its charge, reserving an inode of a
/// tmpfs with `nr_inodes=` (ENOSPC when none is left).
pub fn new_inode(dir: &Arc<Dentry>) -> KResult<Option<Charge>> {
    let Some(q) = quota_of(dir) else {
        return Ok(None);
    };
    if !Quota::take(&q.used_inodes, q.inodes, 1) {
        return Err(Errno::ENOSPC);
    }
    Ok(Some(Charge::new(q, true)))
}

/// The charge of `inode` (a file of `d`), made on first use for files
/// created without one.
fn charge_of<'a>(d: Option<&Arc<Dentry>>, inode: &'a Inode) -> Option<&'a Charge> {
    if let Some(c) = inode.charge.get() {
        return Some(c);
    }
    let q = quota_of(d?)?;
    let _ = inode.charge.set(Charge::new(q, false));
    inode.charge.get()
}

fn page_range(off: u64, end: u64) -> std::ops::Range<u64> {
    off / PAGE..end.div_ceil(PAGE)
}

fn bit(bits: &mut Vec<u64>, p: u64) -> (usize, u64) {
    let (w, b) = ((p / 64) as usize, 1u64 << (p % 64));
    if bits.len() <= w {
        bits.resize(w + 1, 0);
    }
    (w, b)
}

/// Charges the pages of a write of [off, end) to `inode`; returns the end
/// the write may reach (`end`, or the start of the first page that did not
/// fit). ENOSPC when not even the first byte fits.
pub fn charge_write(d: Option<&Arc<Dentry>>, inode: &Inode, off: u64, end: u64) -> KResult<u64> {
    let Some(c) = charge_of(d, inode) else {
        return Ok(end);
    };
    let mut bits = lock(&c.pages);
    for p in page_range(off, end) {
        let (w, b) = bit(&mut bits, p);
        if bits[w] & b != 0 {
            continue;
        }
        if !Quota::take(&c.quota.used_pages, c.quota.pages, 1) {
            let stop = (p * PAGE).max(off);
            return if stop == off {
                Err(Errno::ENOSPC)
            } else {
                Ok(stop)
            };
        }
        bits[w] |= b;
        c.count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(end)
}

/// fallocate(2) of [off, end): every page or ENOSPC (nothing kept).
pub fn charge_alloc(d: &Arc<Dentry>, inode: &Inode, off: u64, end: u64) -> KResult<()> {
    let Some(c) = charge_of(Some(d), inode) else {
        return Ok(());
    };
    let mut bits = lock(&c.pages);
    let mut new = Vec::new();
    for p in page_range(off, end) {
        let (w, b) = bit(&mut bits, p);
        if bits[w] & b == 0 {
            new.push(p);
        }
    }
    let n = new.len() as u64;
    if !Quota::take(&c.quota.used_pages, c.quota.pages, n) {
        return Err(Errno::ENOSPC);
    }
    for p in new {
        let (w, b) = bit(&mut bits, p);
        bits[w] |= b;
    }
    c.count.fetch_add(n, Ordering::Relaxed);
    Ok(())
}

/// The file was cut to `size` bytes: the pages past it are free again.
pub fn truncated(inode: &Inode, size: u64) {
    let Some(c) = inode.charge.get() else {
        return;
    };
    let mut bits = lock(&c.pages);
    let first = size.div_ceil(PAGE);
    let mut freed = 0u64;
    for (w, word) in bits.iter_mut().enumerate() {
        for i in 0..64 {
            let p = w as u64 * 64 + i;
            if p >= first && *word & (1 << i) != 0 {
                *word &= !(1 << i);
                freed += 1;
            }
        }
    }
    let keep = (first as usize).div_ceil(64);
    bits.truncate(keep);
    c.count.fetch_sub(
        freed.min(c.count.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    Quota::give(&c.quota.used_pages, freed);
}

/// statfs words of a tmpfs with `size=` (blocks, bfree, bavail, files,
/// ffree), None for a default-sized one.
pub fn statfs(d: &Arc<Dentry>) -> Option<[u64; 5]> {
    let q = quota_of(d)?;
    let pages = q.pages.filter(|_| q.explicit)?;
    let used = q.used_pages.load(Ordering::Relaxed);
    let free = pages.saturating_sub(used);
    let used_inodes = q.used_inodes.load(Ordering::Relaxed);
    // Without nr_inodes=, Linux's default: half of the memory's pages.
    let files = q.inodes.unwrap_or_else(|| pages.max(used_inodes));
    Some([pages, free, free, files, files.saturating_sub(used_inodes)])
}
