//! Files whose data lives in the memory file: memfd_create and /dev/shm.
//! They can be mapped MAP_SHARED by several processes, coherent with
//! read/write, because every view is the same memory-file range.

use crate::abi::*;
use crate::mm::memfile::MemoryFile;
use crate::mm::SharedRange;
use crate::vfs::lock;
use std::sync::{Arc, Mutex};

/// Largest size of one such file (its memory-file range is reserved
/// sparsely up front so that mappings never move).
pub const SHM_CAP: u64 = 256 << 20;

pub const F_SEAL_SEAL: u32 = 1;
pub const F_SEAL_SHRINK: u32 = 2;
pub const F_SEAL_GROW: u32 = 4;
pub const F_SEAL_WRITE: u32 = 8;
pub const F_SEAL_FUTURE_WRITE: u32 = 16;

pub struct ShmFile {
    pub mf: Arc<MemoryFile>,
    pub range: Arc<SharedRange>,
    pub off: u64,
    pub state: Mutex<ShmState>,
}

pub struct ShmState {
    pub size: u64,
    pub seals: u32,
}

impl ShmFile {
    pub fn new(mf: &Arc<MemoryFile>, sealable: bool) -> KResult<ShmFile> {
        let off = mf.allocate(SHM_CAP)?;
        Ok(ShmFile {
            mf: mf.clone(),
            range: SharedRange::new(mf.clone(), off, SHM_CAP),
            off,
            state: Mutex::new(ShmState {
                size: 0,
                seals: if sealable { 0 } else { F_SEAL_SEAL },
            }),
        })
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
        let size = self.size();
        if off >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - off) as usize;
        self.mf.read(self.off + off, &mut buf[..n])?;
        Ok(n)
    }

    pub fn pwrite(&self, buf: &[u8], off: u64, append: bool) -> KResult<(usize, u64)> {
        let mut st = lock(&self.state);
        if st.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        let off = if append { st.size } else { off };
        let end = off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        if end > st.size && st.seals & F_SEAL_GROW != 0 {
            return Err(Errno::EPERM);
        }
        if end > SHM_CAP {
            return Err(Errno::EFBIG);
        }
        self.mf.write(self.off + off, buf)?;
        st.size = st.size.max(end);
        Ok((buf.len(), end))
    }

    pub fn truncate(&self, len: u64) -> KResult<()> {
        let mut st = lock(&self.state);
        if len > SHM_CAP {
            return Err(Errno::EFBIG);
        }
        if len < st.size && st.seals & F_SEAL_SHRINK != 0
            || len > st.size && st.seals & F_SEAL_GROW != 0
        {
            return Err(Errno::EPERM);
        }
        if len < st.size {
            // Bytes past the new end read as zero if the file grows again.
            let start = page_round_up(len).unwrap_or(len);
            if start > len {
                let n = (start - len).min(st.size - len) as usize;
                self.mf.write(self.off + len, &vec![0u8; n])?;
            }
            if st.size > start {
                self.mf.zero(
                    self.off + start,
                    page_round_up(st.size).unwrap_or(st.size) - start,
                );
            }
        }
        st.size = len;
        Ok(())
    }
}
