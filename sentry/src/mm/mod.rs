//! Address spaces: VMAs over the memory file, mmap/munmap/mprotect/brk/
//! mremap/madvise, and checked copies between the sentry and workload memory.
//!
//! Each VMA maps a contiguous range of the memory file. File-backed private
//! mappings are populated by copying the file's bytes in (the workload sees
//! the same content; writes stay private, as MAP_PRIVATE requires).
//!
//! Lock order: Task -> MemoryManager -> MemoryFile allocator.

pub mod memfile;

use crate::abi::*;
use crate::platform::{AddressSpace, Prot};
use memfile::MemoryFile;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Highest address (exclusive) the workload may map.
pub const USER_END: u64 = crate::platform::ptrace::STUB_ADDR;
/// Lowest address mmap may hand out (vm.mmap_min_addr).
pub const MMAP_MIN: u64 = 0x10000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmaKind {
    Anon,
    File {
        path: String,
        dev: u64,
        ino: u64,
        file_off: u64,
    },
    Heap,
    Stack,
}

impl VmaKind {
    /// The same kind for a mapping starting `delta` bytes further in (a
    /// file mapping's file offset moves with it).
    fn advanced(&self, delta: u64) -> VmaKind {
        match self {
            VmaKind::File {
                path,
                dev,
                ino,
                file_off,
            } => VmaKind::File {
                path: path.clone(),
                dev: *dev,
                ino: *ino,
                file_off: file_off + delta,
            },
            k => k.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub shared: bool,
    /// Offset in the memory file of `start`.
    pub off: u64,
    pub kind: VmaKind,
    /// Shared memory is owned by this handle (freed when the last VMA that
    /// maps it, in any process, goes away); private memory by the VMA.
    pub owner: Option<Arc<SharedRange>>,
    /// Pages from this address on lie wholly past the end of the file a
    /// private file mapping copies: they are not accessible and an access
    /// is SIGBUS, as on Linux. `NO_BUS` when there are none.
    pub bus_from: u64,
}

/// mremap(2) flags.
const MREMAP_MAYMOVE: u32 = 1;
const MREMAP_FIXED: u32 = 2;
const MREMAP_DONTUNMAP: u32 = 4;

/// `Vma::bus_from` of a mapping without pages past the end of a file.
pub const NO_BUS: u64 = u64::MAX;

/// A memory-file range shared between mappings: MAP_SHARED memory, or
/// private memory shared copy-on-write after fork (a private VMA with an
/// owner is mapped read-only until its first write).
#[derive(Debug)]
pub struct SharedRange {
    mf: Arc<MemoryFile>,
    off: u64,
    len: u64,
    /// Set when the last user took the range over instead of copying it.
    forget: std::sync::atomic::AtomicBool,
}

impl SharedRange {
    pub fn new(mf: Arc<MemoryFile>, off: u64, len: u64) -> Arc<SharedRange> {
        Arc::new(SharedRange {
            mf,
            off,
            len,
            forget: Default::default(),
        })
    }
}

impl Drop for SharedRange {
    fn drop(&mut self) {
        if !self.forget.load(std::sync::atomic::Ordering::Relaxed) {
            self.mf.free(self.off, self.len);
        }
    }
}

impl Vma {
    /// Copy-on-write: private memory still shared with another address space.
    pub fn is_cow(&self) -> bool {
        !self.shared && self.owner.is_some()
    }

    /// The protection the hardware mapping gets (no write while COW).
    pub fn hw_prot(&self) -> Prot {
        if self.is_cow() {
            self.prot & !PROT_WRITE
        } else {
            self.prot
        }
    }

    /// What the stubs map for this VMA: (addr, len, memory-file offset,
    /// protection); the pages past the end of a file inaccessible.
    pub fn hw_maps(&self) -> Vec<(u64, u64, u64, Prot)> {
        let mid = self.bus_from.clamp(self.start, self.end);
        let mut out = Vec::with_capacity(2);
        if mid > self.start {
            out.push((self.start, mid - self.start, self.off, self.hw_prot()));
        }
        if mid < self.end {
            out.push((mid, self.end - mid, self.off + (mid - self.start), 0));
        }
        out
    }
}

impl std::fmt::Debug for MemoryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryFile")
    }
}

/// How a new mapping gets its initial content.
pub enum Backing<'a> {
    /// Zero-filled.
    Anon,
    /// Copy up to `len` bytes of a host fd from `file_off`; the rest is zero.
    FileCopy {
        fd: i32,
        file_off: u64,
        /// Size of the file: pages wholly past it are SIGBUS.
        file_size: u64,
        path: String,
        dev: u64,
        ino: u64,
    },
    /// Copy from a byte slice (files whose data lives in the sentry).
    Bytes {
        data: &'a [u8],
        path: String,
        dev: u64,
        ino: u64,
        file_off: u64,
        /// Size of the file (`u64::MAX` for the loader's segments, whose
        /// tails are bss): pages wholly past it are SIGBUS.
        file_size: u64,
    },
}

pub struct MemoryManager {
    pub mf: Arc<MemoryFile>,
    pub as_: Arc<dyn AddressSpace>,
    vmas: BTreeMap<u64, Vma>,
    pub brk_start: u64,
    pub brk: u64,
    pub mmap_base: u64,
    pub stack_top: u64,
    pub arg_range: (u64, u64),
    pub env_range: (u64, u64),
    pub exe_path: String,
    pub auxv: Vec<(u64, u64)>,
}

impl MemoryManager {
    pub fn new(mf: Arc<MemoryFile>, as_: Arc<dyn AddressSpace>) -> Self {
        MemoryManager {
            mf,
            as_,
            vmas: BTreeMap::new(),
            brk_start: 0,
            brk: 0,
            mmap_base: 0x7f00_0000_0000,
            stack_top: 0x7ffc_0000_0000,
            arg_range: (0, 0),
            env_range: (0, 0),
            exe_path: String::new(),
            auxv: Vec::new(),
        }
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// Memory in use by this address space (for statm/sysinfo-like reports).
    pub fn mapped_bytes(&self) -> u64 {
        self.vmas.values().map(|v| v.end - v.start).sum()
    }

    fn overlapping(&self, start: u64, end: u64) -> Vec<u64> {
        let mut keys = Vec::new();
        if let Some((&k, v)) = self.vmas.range(..start).next_back() {
            if v.end > start {
                keys.push(k);
            }
        }
        for (&k, _) in self.vmas.range(start..end) {
            keys.push(k);
        }
        keys
    }

    fn is_free(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).is_empty()
    }

    /// Find `len` free bytes, top-down below mmap_base.
    pub fn find_free(&self, len: u64) -> Option<u64> {
        let mut top = self.mmap_base;
        // Walk VMAs below `top` from the highest down.
        for v in self.vmas.range(..self.mmap_base).rev().map(|(_, v)| v) {
            if v.end <= top && top - v.end >= len {
                return Some(top - len);
            }
            top = top.min(v.start);
        }
        if top >= MMAP_MIN + len {
            return Some(top - len);
        }
        // Above mmap_base (between it and the stack).
        let mut lo = self.mmap_base;
        for v in self.vmas.range(self.mmap_base..).map(|(_, v)| v) {
            if v.start >= lo + len {
                return Some(lo);
            }
            lo = lo.max(v.end);
        }
        if USER_END >= lo + len {
            return Some(lo);
        }
        None
    }

    fn insert(&mut self, v: Vma) {
        self.map_vma(&v);
        self.vmas.insert(v.start, v);
    }

    /// Log the stub mappings of `v`.
    fn map_vma(&self, v: &Vma) {
        for (addr, len, off, prot) in v.hw_maps() {
            self.as_.map_file(addr, len, off, prot);
        }
    }

    /// Create a mapping. `addr` is exact when `fixed`, a hint otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn mmap(
        &mut self,
        addr: u64,
        len: u64,
        prot: Prot,
        shared: bool,
        fixed: bool,
        noreplace: bool,
        backing: Backing<'_>,
    ) -> KResult<u64> {
        let len = page_round_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let start = self.place(addr, len, fixed, noreplace)?;
        let off = self.mf.allocate(len)?;
        let kind = match &backing {
            Backing::Anon => VmaKind::Anon,
            Backing::FileCopy {
                path,
                dev,
                ino,
                file_off,
                ..
            }
            | Backing::Bytes {
                path,
                dev,
                ino,
                file_off,
                ..
            } => VmaKind::File {
                path: path.clone(),
                dev: *dev,
                ino: *ino,
                file_off: *file_off,
            },
        };
        let bus_from = match &backing {
            Backing::Anon => NO_BUS,
            Backing::FileCopy {
                file_off,
                file_size,
                ..
            }
            | Backing::Bytes {
                file_off,
                file_size,
                ..
            } => match page_round_up(*file_size) {
                Some(eof) if eof <= *file_off => start,
                Some(eof) if eof - file_off < len => start + (eof - file_off),
                _ => NO_BUS,
            },
        };
        let filled = match backing {
            Backing::Anon => Ok(()),
            Backing::FileCopy { fd, file_off, .. } => self
                .mf
                .fill_from_fd(off, len as usize, fd, file_off)
                .map(|_| ()),
            Backing::Bytes { data, .. } => {
                let n = data.len().min(len as usize);
                self.mf.write(off, &data[..n])
            }
        };
        if let Err(e) = filled {
            self.mf.free(off, len);
            return Err(e);
        }
        self.unmap_range(start, start + len);
        self.insert(Vma {
            start,
            end: start + len,
            prot,
            shared,
            off,
            kind,
            owner: shared.then(|| SharedRange::new(self.mf.clone(), off, len)),
            bus_from: if shared { NO_BUS } else { bus_from },
        });
        Ok(start)
    }

    /// Split the VMA containing `at` so that a VMA starts at `at`.
    fn split_at(&mut self, at: u64) {
        let key = match self.vmas.range(..at).next_back() {
            Some((&k, v)) if v.end > at => k,
            _ => return,
        };
        let Some(v) = self.vmas.get_mut(&key) else {
            return;
        };
        let mut hi = v.clone();
        v.end = at;
        hi.off += at - hi.start;
        hi.kind = hi.kind.advanced(at - hi.start);
        hi.start = at;
        self.vmas.insert(at, hi);
    }

    /// Remove every mapping in [start, end).
    pub fn unmap_range(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(&k, _)| k).collect();
        if keys.is_empty() {
            return;
        }
        // Unmap (and stop every stub still running with the old mapping)
        // before the memory can be handed to anyone else.
        self.as_.unmap(start, end - start);
        for k in keys {
            if let Some(v) = self.vmas.remove(&k) {
                self.release(&v);
            }
        }
        self.maybe_compact();
    }

    pub fn munmap(&mut self, addr: u64, len: u64) -> KResult<()> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(page_round_up(len).ok_or(Errno::EINVAL)?)
            .ok_or(Errno::EINVAL)?;
        if end > USER_END {
            return Err(Errno::EINVAL);
        }
        self.unmap_range(addr, end);
        Ok(())
    }

    pub fn mprotect(&mut self, addr: u64, len: u64, prot: Prot) -> KResult<()> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(page_round_up(len).ok_or(Errno::ENOMEM)?)
            .ok_or(Errno::ENOMEM)?;
        if end > USER_END {
            return Err(Errno::ENOMEM);
        }
        if addr == end {
            return Ok(());
        }
        // Every page must be mapped.
        let mut cur = addr;
        for k in self.overlapping(addr, end) {
            let v = &self.vmas[&k];
            if v.start > cur {
                return Err(Errno::ENOMEM);
            }
            cur = v.end;
        }
        if cur < end {
            return Err(Errno::ENOMEM);
        }
        self.split_at(addr);
        self.split_at(end);
        let keys: Vec<u64> = self.vmas.range(addr..end).map(|(&k, _)| k).collect();
        let mut revoked = false;
        for k in keys {
            if let Some(v) = self.vmas.get_mut(&k) {
                if v.prot != prot {
                    revoked |= v.prot & !prot != 0;
                    v.prot = prot;
                    let v = v.clone();
                    self.map_vma(&v);
                }
            }
        }
        // A permission taken away holds for every thread when mprotect
        // returns, also for siblings running right now.
        if revoked {
            self.as_.shootdown();
        }
        self.maybe_compact();
        Ok(())
    }

    pub fn brk(&mut self, new: u64) -> u64 {
        if new < self.brk_start {
            return self.brk;
        }
        let (Some(old_end), Some(new_end)) = (page_round_up(self.brk), page_round_up(new)) else {
            return self.brk;
        };
        if new_end > old_end {
            if new_end > USER_END || !self.is_free(old_end, new_end) {
                return self.brk;
            }
            let Ok(off) = self.mf.allocate(new_end - old_end) else {
                return self.brk;
            };
            self.insert(Vma {
                start: old_end,
                end: new_end,
                prot: PROT_READ | PROT_WRITE,
                shared: false,
                off,
                kind: VmaKind::Heap,
                owner: None,
                bus_from: NO_BUS,
            });
        } else if new_end < old_end {
            self.unmap_range(new_end, old_end);
        }
        self.brk = new;
        self.brk
    }

    pub fn mremap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> KResult<u64> {
        if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
            || !old.is_multiple_of(PAGE_SIZE)
        {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_DONTUNMAP != 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = page_round_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_round_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 || old_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        // The old range must lie within one VMA.
        let v = match self.vmas.range(..=old).next_back() {
            Some((_, v)) if v.end >= old_end => v.clone(),
            _ => return Err(Errno::EFAULT),
        };
        if v.shared {
            return self.mremap_shared(&v, old, old_len, new_len, flags, new_addr);
        }
        if flags & MREMAP_FIXED == 0 {
            if new_len <= old_len {
                self.unmap_range(old + new_len, old_end);
                return Ok(old);
            }
            // Grow in place when the pages after it are free.
            let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
            if old_end == v.end && grow_end <= USER_END && self.is_free(old_end, grow_end) {
                let off = self.mf.allocate(grow_end - old_end)?;
                self.insert(Vma {
                    start: old_end,
                    end: grow_end,
                    prot: v.prot,
                    shared: false,
                    off,
                    kind: if v.kind == VmaKind::Heap {
                        VmaKind::Heap
                    } else {
                        VmaKind::Anon
                    },
                    owner: None,
                    // Still past the end of the file, if the old end was.
                    bus_from: if v.bus_from <= old_end {
                        old_end
                    } else {
                        NO_BUS
                    },
                });
                return Ok(old);
            }
            if flags & MREMAP_MAYMOVE == 0 {
                return Err(Errno::ENOMEM);
            }
        }
        // Move: copy the content into a fresh range, then drop the old one.
        let dest = self.mremap_dest(flags & MREMAP_FIXED != 0, new_addr, new_len, old, old_end)?;
        let off = self.mf.allocate(new_len)?;
        let keep = old_len.min(new_len);
        if let Err(e) = self.mf.copy(v.off + (old - v.start), off, keep) {
            self.mf.free(off, new_len);
            return Err(e);
        }
        let kind = v.kind.clone();
        let bus_from = if v.bus_from == NO_BUS {
            NO_BUS
        } else {
            dest + v.bus_from.saturating_sub(old)
        };
        self.unmap_range(old, old_end);
        self.unmap_range(dest, dest + new_len);
        self.insert(Vma {
            start: dest,
            end: dest + new_len,
            prot: v.prot,
            shared: false,
            off,
            kind,
            owner: None,
            bus_from,
        });
        Ok(dest)
    }

    /// Where a moving mremap puts the range: `new_addr` with MREMAP_FIXED
    /// (aligned, in bounds, not overlapping the old range), else a free
    /// range.
    fn mremap_dest(
        &self,
        fixed: bool,
        new_addr: u64,
        new_len: u64,
        old: u64,
        old_end: u64,
    ) -> KResult<u64> {
        if !fixed {
            return self.find_free(new_len).ok_or(Errno::ENOMEM);
        }
        if !new_addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let e = new_addr.checked_add(new_len).ok_or(Errno::EINVAL)?;
        if e > USER_END || new_addr < MMAP_MIN || (new_addr < old_end && old < e) {
            return Err(Errno::EINVAL);
        }
        Ok(new_addr)
    }

    /// mremap of a shared mapping: the same pages of its shared range,
    /// shrunk, grown in place or moved; growth stops where the range ends
    /// (a memfd or shared file maps up to its cap, anonymous shared memory
    /// only what was mapped: ENOMEM past that).
    fn mremap_shared(
        &mut self,
        v: &Vma,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> KResult<u64> {
        let Some(owner) = v.owner.clone() else {
            return Err(Errno::EINVAL);
        };
        let old_end = old + old_len;
        if flags & MREMAP_FIXED == 0 && new_len <= old_len {
            self.unmap_range(old + new_len, old_end);
            return Ok(old);
        }
        let first = v.off + (old - v.start);
        if first + new_len > owner.off + owner.len {
            return Err(Errno::ENOMEM);
        }
        let kind_at = |delta: u64| v.kind.advanced(delta);
        let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if flags & MREMAP_FIXED == 0
            && old_end == v.end
            && grow_end <= USER_END
            && self.is_free(old_end, grow_end)
        {
            self.insert(Vma {
                start: old_end,
                end: grow_end,
                prot: v.prot,
                shared: true,
                off: first + old_len,
                kind: kind_at(old_end - v.start),
                owner: Some(owner),
                bus_from: NO_BUS,
            });
            return Ok(old);
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        let dest = self.mremap_dest(flags & MREMAP_FIXED != 0, new_addr, new_len, old, old_end)?;
        let kind = kind_at(old - v.start);
        self.unmap_range(old, old_end);
        self.unmap_range(dest, dest + new_len);
        self.insert(Vma {
            start: dest,
            end: dest + new_len,
            prot: v.prot,
            shared: true,
            off: first,
            kind,
            owner: Some(owner),
            bus_from: NO_BUS,
        });
        Ok(dest)
    }

    /// MADV_DONTNEED: private pages read back as zero.
    pub fn madvise_dontneed(&mut self, addr: u64, len: u64) -> KResult<()> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let end = addr
            .checked_add(page_round_up(len).ok_or(Errno::EINVAL)?)
            .ok_or(Errno::EINVAL)?;
        // Zeroing must not reach another process's view of COW memory.
        for k in self.overlapping(addr, end) {
            if self.vmas[&k].is_cow() {
                self.break_cow(k)?;
            }
        }
        let mut any = false;
        for k in self.overlapping(addr, end) {
            let v = &self.vmas[&k];
            any = true;
            let s = v.start.max(addr);
            let e = v.end.min(end);
            if !v.shared {
                if let VmaKind::File { .. } = v.kind {
                    // File pages revert to the file's content; keep ours (the
                    // copy is the file content unless written).
                    continue;
                }
                self.mf.zero(v.off + (s - v.start), e - s);
            }
        }
        if !any {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    fn maybe_compact(&mut self) {
        if self.as_.log_len() > 4096 {
            let maps: Vec<_> = self.vmas.values().flat_map(Vma::hw_maps).collect();
            self.as_.reset(&maps);
        }
    }

    /// Walk [addr, addr+len) as (memory-file offset, length) pieces, checking
    /// that each page is mapped with `need` protection.
    fn pieces(&self, addr: u64, len: usize, need: Prot) -> KResult<Vec<(u64, usize)>> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if end > USER_END {
            return Err(Errno::EFAULT);
        }
        let mut out = Vec::new();
        let mut cur = addr;
        while cur < end {
            let v = match self.vmas.range(..=cur).next_back() {
                Some((_, v)) if v.end > cur => v,
                _ => return Err(Errno::EFAULT),
            };
            if v.prot & need != need || v.prot == 0 || cur >= v.bus_from {
                return Err(Errno::EFAULT);
            }
            let n = (v.end.min(end).min(v.bus_from) - cur) as usize;
            out.push((v.off + (cur - v.start), n));
            cur += n as u64;
        }
        Ok(out)
    }

    /// The memory-file ranges holding `[addr, addr + len)`, which must be
    /// readable (EFAULT otherwise): for I/O straight from workload memory.
    pub fn read_pieces(&self, addr: u64, len: usize) -> KResult<Vec<(u64, usize)>> {
        self.pieces(addr, len, PROT_READ)
    }

    pub fn copy_in(&self, addr: u64, dst: &mut [u8]) -> KResult<()> {
        let mut done = 0;
        for (off, n) in self.pieces(addr, dst.len(), PROT_READ)? {
            self.mf.read(off, &mut dst[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    pub fn copy_out(&mut self, addr: u64, src: &[u8]) -> KResult<()> {
        // The sentry's writes break COW like the workload's own.
        if let Some(end) = addr.checked_add(src.len() as u64) {
            for k in self.overlapping(addr, end) {
                let v = &self.vmas[&k];
                if v.is_cow() && v.prot & PROT_WRITE != 0 {
                    self.break_cow(k)?;
                }
            }
        }
        let mut done = 0;
        for (off, n) in self.pieces(addr, src.len(), PROT_WRITE)? {
            self.mf.write(off, &src[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Write ignoring protections (the loader filling read-only segments,
    /// the initial stack).
    pub fn poke(&self, addr: u64, src: &[u8]) -> KResult<()> {
        let mut done = 0;
        for (off, n) in self.pieces(addr, src.len(), 0)? {
            self.mf.write(off, &src[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// A NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn copy_in_cstr(&self, addr: u64, max: usize) -> KResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut cur = addr;
        loop {
            // Read up to the end of the page so we never touch an unmapped one.
            let chunk = (PAGE_SIZE - (cur % PAGE_SIZE)) as usize;
            let mut buf = vec![0u8; chunk];
            self.copy_in(cur, &mut buf)?;
            if let Some(p) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..p]);
                if out.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            cur += chunk as u64;
        }
    }

    /// Drop every mapping (exec, exit).
    pub fn clear(&mut self) {
        let vmas: Vec<Vma> = std::mem::take(&mut self.vmas).into_values().collect();
        for v in vmas {
            self.release(&v);
        }
        self.as_.reset(&[]);
    }

    /// /proc/[pid]/maps text.
    pub fn maps_text(&self) -> String {
        let mut s = String::new();
        for v in self.vmas.values() {
            let perms = format!(
                "{}{}{}{}",
                if v.prot & PROT_READ != 0 { 'r' } else { '-' },
                if v.prot & PROT_WRITE != 0 { 'w' } else { '-' },
                if v.prot & PROT_EXEC != 0 { 'x' } else { '-' },
                if v.shared { 's' } else { 'p' }
            );
            let (off, dev, ino, name) = match &v.kind {
                VmaKind::File {
                    path,
                    dev,
                    ino,
                    file_off,
                } => (*file_off, *dev, *ino, path.clone()),
                VmaKind::Heap => (0, 0, 0, "[heap]".to_string()),
                VmaKind::Stack => (0, 0, 0, "[stack]".to_string()),
                VmaKind::Anon => (0, 0, 0, String::new()),
            };
            let line = format!(
                "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {}",
                v.start,
                v.end,
                perms,
                off,
                (dev >> 8) & 0xfff,
                dev & 0xff,
                ino
            );
            if name.is_empty() {
                s.push_str(&line);
            } else {
                s.push_str(&format!("{:<73}{}", line + " ", name));
            }
            s.push('\n');
        }
        s
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        let vmas: Vec<Vma> = std::mem::take(&mut self.vmas).into_values().collect();
        for v in vmas {
            self.release(&v);
        }
    }
}

impl MemoryManager {
    /// Rename the VMA starting at `start` (loader bookkeeping).
    pub fn set_kind(&mut self, start: u64, kind: VmaKind) {
        if let Some(v) = self.vmas.get_mut(&start) {
            v.kind = kind;
        }
    }
}

impl MemoryManager {
    /// Memory-file offset backing `addr`, if mapped readable (futex keys).
    pub fn translate(&self, addr: u64) -> KResult<u64> {
        let p = self.pieces(addr, 4, PROT_READ)?;
        p.first().map(|&(off, _)| off).ok_or(Errno::EFAULT)
    }

    /// Whether `addr` lies in a page of a private file mapping wholly past
    /// the end of the file (a fault there is SIGBUS/BUS_ADRERR).
    pub fn past_eof(&self, addr: u64) -> bool {
        matches!(self.vmas.range(..=addr).next_back(), Some((_, v)) if v.end > addr && addr >= v.bus_from && v.prot != 0)
    }

    /// Whether `[addr, addr + len)` overlaps a shared mapping of a file.
    pub fn maps_shared_file(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        self.overlapping(addr, end).iter().any(|k| {
            self.vmas
                .get(k)
                .is_some_and(|v| v.shared && matches!(v.kind, VmaKind::File { .. }))
        })
    }

    /// Whether the VMA holding `addr` is shared.
    pub fn is_shared(&self, addr: u64) -> bool {
        matches!(self.vmas.range(..=addr).next_back(), Some((_, v)) if v.end > addr && v.shared)
    }
}

impl MemoryManager {
    fn release(&self, v: &Vma) {
        if v.owner.is_none() {
            self.mf.free(v.off, v.end - v.start);
        }
    }

    /// Give the VMA at `key` its own copy of its memory (or take the shared
    /// range over when nobody else maps it), and map it writable.
    fn break_cow(&mut self, key: u64) -> KResult<()> {
        let Some(v) = self.vmas.get(&key) else {
            return Ok(());
        };
        let Some(owner) = v.owner.clone() else {
            return Ok(());
        };
        let len = v.end - v.start;
        let old_off = v.off;
        // Two references: the VMA's and ours.
        let sole = Arc::strong_count(&owner) == 2 && owner.off == old_off && owner.len == len;
        let new_off = if sole {
            owner
                .forget
                .store(true, std::sync::atomic::Ordering::Relaxed);
            old_off
        } else {
            let off = self.mf.allocate(len)?;
            if let Err(e) = self.mf.copy_sparse(old_off, off, len) {
                self.mf.free(off, len);
                return Err(e);
            }
            off
        };
        drop(owner);
        if let Some(v) = self.vmas.get_mut(&key) {
            v.owner = None;
            v.off = new_off;
            let v = v.clone();
            self.map_vma(&v);
        }
        // Sibling threads running right now still map the old copy: they
        // must see this thread's writes to the new one.
        if !sole {
            self.as_.shootdown();
        }
        Ok(())
    }

    /// A write fault at `addr`: true when it was copy-on-write, now resolved
    /// (the access is retried); false when the workload gets SIGSEGV.
    pub fn cow_fault(&mut self, addr: u64) -> bool {
        let key = match self.vmas.range(..=addr).next_back() {
            Some((&k, v))
                if v.end > addr && addr < v.bus_from && v.is_cow() && v.prot & PROT_WRITE != 0 =>
            {
                k
            }
            _ => return false,
        };
        self.break_cow(key).is_ok()
    }

    /// The address space a forked child gets: private memory copied (only
    /// the pages in use), shared memory shared.
    pub fn fork_copy(&mut self, as_: Arc<dyn AddressSpace>) -> KResult<MemoryManager> {
        let mut new = MemoryManager::new(self.mf.clone(), as_);
        new.brk_start = self.brk_start;
        new.brk = self.brk;
        new.mmap_base = self.mmap_base;
        new.stack_top = self.stack_top;
        new.arg_range = self.arg_range;
        new.env_range = self.env_range;
        new.exe_path = self.exe_path.clone();
        new.auxv = self.auxv.clone();
        // Private memory becomes copy-on-write in both address spaces:
        // nothing is copied until one side writes.
        let keys: Vec<u64> = self.vmas.keys().copied().collect();
        let mut protected = false;
        for k in keys {
            let Some(v) = self.vmas.get_mut(&k) else {
                continue;
            };
            if v.owner.is_none() {
                let len = v.end - v.start;
                v.owner = Some(SharedRange::new(self.mf.clone(), v.off, len));
                if v.prot & PROT_WRITE != 0 {
                    let v = v.clone();
                    self.map_vma(&v);
                    protected = true;
                }
            }
            let nv = self.vmas[&k].clone();
            new.insert(nv);
        }
        // The parent's other threads may be running with write access to
        // what is now the child's memory too: stop them before the child
        // exists, so that its snapshot is not written behind its back.
        if protected {
            self.as_.shootdown();
        }
        Ok(new)
    }
}

impl MemoryManager {
    /// Map part of an existing shared memory-file range (memfd, /dev/shm).
    #[allow(clippy::too_many_arguments)]
    pub fn mmap_shared_range(
        &mut self,
        addr: u64,
        len: u64,
        prot: Prot,
        fixed: bool,
        noreplace: bool,
        owner: Arc<SharedRange>,
        off: u64,
        path: String,
        dev: u64,
        ino: u64,
        file_off: u64,
    ) -> KResult<u64> {
        let len = page_round_up(len).ok_or(Errno::ENOMEM)?;
        let start = self.place(addr, len, fixed, noreplace)?;
        self.unmap_range(start, start + len);
        self.insert(Vma {
            start,
            end: start + len,
            prot,
            shared: true,
            off,
            kind: VmaKind::File {
                path,
                dev,
                ino,
                file_off,
            },
            owner: Some(owner),
            bus_from: NO_BUS,
        });
        Ok(start)
    }
}

impl MemoryManager {
    /// Where a new mapping of `len` bytes goes: exactly `addr` for
    /// MAP_FIXED(_NOREPLACE), else the hint if free, else a free range.
    fn place(&self, addr: u64, len: u64, fixed: bool, noreplace: bool) -> KResult<u64> {
        let start = if fixed || noreplace {
            if !addr.is_multiple_of(PAGE_SIZE) {
                return Err(Errno::EINVAL);
            }
            let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if end > USER_END || addr < MMAP_MIN {
                return Err(if noreplace {
                    Errno::EEXIST
                } else {
                    Errno::ENOMEM
                });
            }
            if noreplace && !self.is_free(addr, end) {
                return Err(Errno::EEXIST);
            }
            addr
        } else {
            let hint = page_round_down(addr);
            match hint.checked_add(len) {
                Some(end) if hint >= MMAP_MIN && end <= USER_END && self.is_free(hint, end) => hint,
                _ => self.find_free(len).ok_or(Errno::ENOMEM)?,
            }
        };
        Ok(start)
    }
}
