//! Files whose data lives in the memory file: memfd_create and /dev/shm.
//! They can be mapped MAP_SHARED by several processes, coherent with
//! read/write, because every view is the same memory-file range.

use crate::abi::*;
use crate::mm::memfile::MemoryFile;
use crate::mm::SharedRange;
use crate::vfs::lock;
use std::sync::{Arc, Mutex};

/// Room a file's memory-file range has when it is made (grown by
/// doubling while nothing maps it).
const INITIAL_CAP: u64 = 1 << 20;
/// Room a file has once mapped: a mapped range cannot move, so the file
/// may then grow only within it (the larger of this and twice its size).
pub const MAPPED_CAP: u64 = 256 << 20;

pub const F_SEAL_SEAL: u32 = 1;
pub const F_SEAL_SHRINK: u32 = 2;
pub const F_SEAL_GROW: u32 = 4;
pub const F_SEAL_WRITE: u32 = 8;
pub const F_SEAL_FUTURE_WRITE: u32 = 16;

/// What a write copies from.
#[derive(Clone, Copy)]
pub enum Src<'a> {
    Bytes(&'a [u8]),
    /// Memory-file ranges (offset, length), in order.
    Pieces(&'a [(u64, usize)]),
}

impl Src<'_> {
    pub fn len(&self) -> usize {
        match self {
            Src::Bytes(b) => b.len(),
            Src::Pieces(p) => p.iter().map(|&(_, n)| n).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The first `n` bytes of memory-file ranges.
pub fn take_pieces(pieces: &[(u64, usize)], mut n: usize) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    for &(p, len) in pieces {
        if n == 0 {
            break;
        }
        let k = len.min(n);
        out.push((p, k));
        n -= k;
    }
    out
}

/// A regular file whose data is a range of the memory file, reserved
/// sparsely: holes cost nothing, and every mapping of the file maps that
/// same range.
pub struct ShmFile {
    pub mf: Arc<MemoryFile>,
    pub state: Mutex<ShmState>,
}

pub struct ShmState {
    pub size: u64,
    pub seals: u32,
    /// The data's range: `cap` bytes at `off`, owned by `range` (whose
    /// other holders are the mappings of the file).
    off: u64,
    cap: u64,
    range: Arc<SharedRange>,
}

impl ShmState {
    /// Whether a mapping holds the range (it then cannot move).
    fn mapped(&self) -> bool {
        Arc::strong_count(&self.range) > 1
    }
}

impl ShmFile {
    pub fn new(mf: &Arc<MemoryFile>, sealable: bool) -> KResult<ShmFile> {
        Self::new_in(mf, sealable, false)
    }

    /// A new file in the memory file, or in the filestore (`--overlay
    /// self`) when `filestore`.
    pub fn new_in(mf: &Arc<MemoryFile>, sealable: bool, filestore: bool) -> KResult<ShmFile> {
        let off = if filestore {
            mf.allocate_filestore(INITIAL_CAP)?
        } else {
            mf.allocate(INITIAL_CAP)?
        };
        Ok(ShmFile {
            mf: mf.clone(),
            state: Mutex::new(ShmState {
                size: 0,
                seals: if sealable { 0 } else { F_SEAL_SEAL },
                off,
                cap: INITIAL_CAP,
                range: SharedRange::new(mf.clone(), off, INITIAL_CAP),
            }),
        })
    }

    /// Make room for `need` bytes, moving the data to a larger range while
    /// nothing maps it. Past the sandbox's memory, or past a mapped
    /// range's room: `err`.
    fn reserve(&self, st: &mut ShmState, need: u64, err: Errno) -> KResult<()> {
        if need <= st.cap {
            return Ok(());
        }
        if st.mapped() || need > crate::vfs::mem_file_cap() {
            return Err(err);
        }
        // Room to grow (a relocation copies the data, and the copy costs
        // new pages): sixteen times the old room or twice what is needed,
        // within the sandbox's memory. Only address space is reserved.
        let room = st
            .cap
            .saturating_mul(16)
            .max(need.saturating_mul(2))
            .min(crate::vfs::mem_file_cap());
        let cap = page_round_up(need.max(room)).ok_or(err)?;
        self.relocate(st, cap).map_err(|_| err)
    }

    fn relocate(&self, st: &mut ShmState, cap: u64) -> KResult<()> {
        let off = self.mf.allocate_like(st.off, cap)?;
        let used = page_round_up(st.size).unwrap_or(st.cap).min(st.cap);
        if let Err(e) = self.mf.copy_sparse(st.off, off, used) {
            self.mf.free(off, cap);
            return Err(e);
        }
        // The old range is freed as its last holder (this file) drops it.
        st.range = SharedRange::new(self.mf.clone(), off, cap);
        st.off = off;
        st.cap = cap;
        Ok(())
    }

    /// The range to map for `[file_off, end)` of the file: first given the
    /// room a mapped file keeps (while nothing maps it yet), then bounded
    /// by that room (ENOMEM past it, as a failed mapping).
    pub fn mapping(&self, end: u64) -> KResult<(Arc<SharedRange>, u64)> {
        let mut st = lock(&self.state);
        if !st.mapped() {
            let want = MAPPED_CAP.max(st.size.saturating_mul(2)).max(end);
            if want > st.cap {
                let want = page_round_up(want).ok_or(Errno::ENOMEM)?;
                self.relocate(&mut st, want).map_err(|_| Errno::ENOMEM)?;
            }
        }
        if end > st.cap {
            return Err(Errno::ENOMEM);
        }
        Ok((st.range.clone(), st.off))
    }

    pub fn size(&self) -> u64 {
        lock(&self.state).size
    }

    pub fn seals(&self) -> u32 {
        lock(&self.state).seals
    }

    pub fn add_seals(&self, s: u32) -> KResult<()> {
        if s & !(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)
            != 0
        {
            return Err(Errno::EINVAL);
        }
        let mut st = lock(&self.state);
        if st.seals & F_SEAL_SEAL != 0 {
            return Err(Errno::EPERM);
        }
        st.seals |= s;
        Ok(())
    }

    pub fn pread(&self, buf: &mut [u8], off: u64) -> KResult<usize> {
        let st = lock(&self.state);
        if off >= st.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(st.size - off) as usize;
        self.mf.read(st.off + off, &mut buf[..n])?;
        Ok(n)
    }

    pub fn pwrite(&self, buf: &[u8], off: u64, append: bool) -> KResult<(usize, u64)> {
        self.pwrite_src(Src::Bytes(buf), off, append)
    }

    /// pwrite from `src`: bytes, or memory-file ranges (workload pages,
    /// copied within the sentry's mappings, no copy through the heap).
    /// Returns the count written and the end offset.
    pub fn pwrite_src(&self, src: Src<'_>, off: u64, append: bool) -> KResult<(usize, u64)> {
        let len = src.len();
        let mut st = lock(&self.state);
        if st.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        let off = if append { st.size } else { off };
        let end = off.checked_add(len as u64).ok_or(Errno::EFBIG)?;
        if end > st.size && st.seals & F_SEAL_GROW != 0 {
            return Err(Errno::EPERM);
        }
        self.reserve(&mut st, end, Errno::ENOSPC)?;
        if len >= 1 << 16 {
            self.mf.populate(st.off + off, len as u64);
        }
        match src {
            Src::Bytes(b) => self.mf.write(st.off + off, b)?,
            Src::Pieces(pieces) => {
                let mut at = st.off + off;
                for &(p, n) in pieces {
                    self.mf.copy(p, at, n as u64)?;
                    at += n as u64;
                }
            }
        }
        st.size = st.size.max(end);
        Ok((len, end))
    }

    /// Fill a new file with the first `size` bytes of the host file `fd`
    /// (copy-up of a large lower file).
    pub fn fill_from_fd(&self, fd: std::os::fd::RawFd, size: u64) -> KResult<()> {
        let mut st = lock(&self.state);
        self.reserve(&mut st, size, Errno::ENOSPC)?;
        let len = usize::try_from(size).map_err(|_| Errno::EFBIG)?;
        let n = self.mf.fill_from_fd(st.off, len, fd, 0)?;
        st.size = n as u64;
        Ok(())
    }

    pub fn truncate(&self, len: u64) -> KResult<()> {
        let mut st = lock(&self.state);
        if len < st.size && st.seals & F_SEAL_SHRINK != 0
            || len > st.size && st.seals & F_SEAL_GROW != 0
        {
            return Err(Errno::EPERM);
        }
        self.reserve(&mut st, len, Errno::EFBIG)?;
        if len < st.size {
            // Bytes past the new end read as zero if the file grows again.
            let start = page_round_up(len).unwrap_or(len);
            if start > len {
                let n = (start - len).min(st.size - len) as usize;
                self.mf.write(st.off + len, &vec![0u8; n])?;
            }
            if st.size > start {
                self.mf.zero(
                    st.off + start,
                    page_round_up(st.size).unwrap_or(st.size) - start,
                );
            }
        }
        st.size = len;
        Ok(())
    }
}
