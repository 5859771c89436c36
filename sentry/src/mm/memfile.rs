//! The memory file: one memfd holding every page of workload memory.
//!
//! The sentry maps the whole file once; stubs map ranges of it at workload
//! addresses. Copies in and out of workload memory are plain memcpy through
//! the sentry's mapping. Ranges are handed out by a first-fit allocator and
//! given back with FALLOC_FL_PUNCH_HOLE, so freed memory returns to the host.

use crate::abi::{Errno, KResult, PAGE_SIZE};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// Size of the (sparse) memory file; bounds total workload memory.
const FILE_SIZE: u64 = 1 << 40;

pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    alloc: Mutex<Allocator>,
}

// SAFETY: `base` points to a shared mapping that lives as long as the
// MemoryFile; all access goes through bounds-checked methods.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; concurrent workload-visible races on the same bytes are
// the workload's own (as on real hardware).
unsafe impl Sync for MemoryFile {}

struct Allocator {
    /// Free ranges: start -> len.
    free: BTreeMap<u64, u64>,
    used: u64,
}

impl MemoryFile {
    pub fn new() -> std::io::Result<MemoryFile> {
        let name = c"rvisor-memory";
        // SAFETY: plain syscall with a valid C string.
        let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: valid fd, size within off_t.
        if unsafe { libc::ftruncate(raw, FILE_SIZE as i64) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: mapping a file we own; the kernel picks the address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                raw,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut free = BTreeMap::new();
        free.insert(0, FILE_SIZE);
        Ok(MemoryFile {
            fd,
            base: p as *mut u8,
            alloc: Mutex::new(Allocator { free, used: 0 }),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Bytes of the file backed by host memory (touched and not freed).
    pub fn resident(&self) -> u64 {
        nix::sys::stat::fstat(self.fd.as_raw_fd())
            .map(|st| st.st_blocks as u64 * 512)
            .unwrap_or(0)
    }

    /// Bytes currently handed out.
    pub fn used(&self) -> u64 {
        self.alloc.lock().map(|a| a.used).unwrap_or(0)
    }

    /// Allocate `len` bytes (page multiple); the range reads as zeroes.
    pub fn allocate(&self, len: u64) -> KResult<u64> {
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let mut a = self.alloc.lock().map_err(|_| Errno::ENOMEM)?;
        let found = a
            .free
            .iter()
            .find(|(_, &l)| l >= len)
            .map(|(&s, &l)| (s, l));
        let (start, flen) = found.ok_or(Errno::ENOMEM)?;
        a.free.remove(&start);
        if flen > len {
            a.free.insert(start + len, flen - len);
        }
        a.used += len;
        Ok(start)
    }

    /// Return a range to the allocator and its pages to the host.
    pub fn free(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        // SAFETY: punching a hole in our own file; failure only leaks pages.
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                len as i64,
            );
        }
        let Ok(mut a) = self.alloc.lock() else { return };
        a.used = a.used.saturating_sub(len);
        let mut start = off;
        let mut l = len;
        // Merge with the following and preceding free ranges.
        if let Some(&nl) = a.free.get(&(off + len)) {
            a.free.remove(&(off + len));
            l += nl;
        }
        if let Some((&ps, &pl)) = a.free.range(..off).next_back() {
            if ps + pl == off {
                a.free.remove(&ps);
                start = ps;
                l += pl;
            }
        }
        a.free.insert(start, l);
    }

    /// Zero a range without freeing it (MADV_DONTNEED on private memory).
    pub fn zero(&self, off: u64, len: u64) {
        // SAFETY: as in free().
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                len as i64,
            );
        }
    }

    fn check(&self, off: u64, len: usize) -> KResult<()> {
        match off.checked_add(len as u64) {
            Some(end) if end <= FILE_SIZE => Ok(()),
            _ => Err(Errno::EFAULT),
        }
    }

    pub fn read(&self, off: u64, dst: &mut [u8]) -> KResult<()> {
        self.check(off, dst.len())?;
        // SAFETY: range checked against the mapping's size above.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off as usize), dst.as_mut_ptr(), dst.len())
        };
        Ok(())
    }

    pub fn write(&self, off: u64, src: &[u8]) -> KResult<()> {
        self.check(off, src.len())?;
        // SAFETY: range checked against the mapping's size above.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(off as usize), src.len())
        };
        Ok(())
    }

    /// Copy between two ranges of the file.
    pub fn copy(&self, from: u64, to: u64, len: u64) -> KResult<()> {
        self.check(from, len as usize)?;
        self.check(to, len as usize)?;
        // SAFETY: both ranges checked; ptr::copy handles overlap.
        unsafe {
            std::ptr::copy(
                self.base.add(from as usize),
                self.base.add(to as usize),
                len as usize,
            )
        };
        Ok(())
    }

    /// Copy only the allocated extents of [from, from+len) to `to` (the
    /// destination range must read as zeroes), so sparse memory stays sparse.
    pub fn copy_sparse(&self, from: u64, to: u64, len: u64) -> KResult<()> {
        self.check(from, len as usize)?;
        self.check(to, len as usize)?;
        let end = from + len;
        let mut cur = from;
        while cur < end {
            // SAFETY: lseek on our own fd.
            let data = unsafe { libc::lseek(self.fd.as_raw_fd(), cur as i64, libc::SEEK_DATA) };
            if data < 0 || data as u64 >= end {
                break;
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(self.fd.as_raw_fd(), data, libc::SEEK_HOLE) };
            let stop = if hole < 0 {
                end
            } else {
                (hole as u64).min(end)
            };
            let s = data as u64;
            self.copy(s, to + (s - from), stop - s)?;
            cur = stop;
        }
        Ok(())
    }

    /// Read from a host fd straight into the file (used to populate private
    /// file mappings). Returns bytes read (short at EOF).
    pub fn fill_from_fd(&self, off: u64, len: usize, fd: RawFd, file_off: u64) -> KResult<usize> {
        self.check(off, len)?;
        let mut done = 0usize;
        while done < len {
            // SAFETY: destination range checked above.
            let n = unsafe {
                libc::pread(
                    fd,
                    self.base.add(off as usize + done) as *mut libc::c_void,
                    len - done,
                    (file_off + done as u64) as i64,
                )
            };
            if n < 0 {
                let e = Errno::last_host();
                if e == Errno::EINTR {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
            done += n as usize;
        }
        Ok(done)
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping at teardown.
        unsafe { libc::munmap(self.base as *mut libc::c_void, FILE_SIZE as usize) };
    }
}
