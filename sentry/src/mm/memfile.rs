//! The memory file: one memfd holding every page of workload memory, and
//! optionally a second store, the filestore (`--overlay self`): a host file
//! beside the rootfs holding the data of the rootfs's upper-layer files.
//!
//! The sentry maps each store whole once; stubs map ranges of them at
//! workload addresses. Copies in and out of workload memory are plain
//! memcpy through the sentry's mappings. Ranges are handed out by a
//! first-fit allocator and given back with FALLOC_FL_PUNCH_HOLE, so freed
//! memory returns to the host. An offset with [`FILESTORE_BIT`] set lies in
//! the filestore: every method takes either kind, so mappings and shared
//! files need not know which store holds them.

use crate::abi::{Errno, KResult, PAGE_SIZE};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

/// Size of the (sparse) memory file; bounds total workload memory.
const FILE_SIZE: u64 = 1 << 40;
/// Size of the (sparse) filestore.
const FILESTORE_SIZE: u64 = 1 << 40;
/// Marks an offset in the filestore.
pub const FILESTORE_BIT: u64 = 1 << 62;

pub struct MemoryFile {
    main: Store,
    filestore: OnceLock<Store>,
}

/// One file mapped whole into the sentry, with its allocator.
struct Store {
    fd: OwnedFd,
    base: *mut u8,
    size: u64,
    alloc: Mutex<Allocator>,
}

// SAFETY: `base` points to a shared mapping that lives as long as the
// Store; all access goes through bounds-checked methods.
unsafe impl Send for Store {}
// SAFETY: as above; concurrent workload-visible races on the same bytes are
// the workload's own (as on real hardware).
unsafe impl Sync for Store {}

struct Allocator {
    /// Free ranges: start -> len.
    free: BTreeMap<u64, u64>,
    used: u64,
}

impl Store {
    /// Size `fd` to `size` (sparse) and map it whole.
    fn new(fd: OwnedFd, size: u64) -> std::io::Result<Store> {
        // SAFETY: valid fd, size within off_t.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as i64) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: mapping a file we own; the kernel picks the address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut free = BTreeMap::new();
        free.insert(0, size);
        Ok(Store {
            fd,
            base: p as *mut u8,
            size,
            alloc: Mutex::new(Allocator { free, used: 0 }),
        })
    }

    fn allocate(&self, len: u64) -> KResult<u64> {
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

    fn punch(&self, off: u64, len: u64) {
        // SAFETY: punching a hole in our own file; failure only leaks pages.
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                len as i64,
            );
        }
    }

    fn free(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.punch(off, len);
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

    /// The sentry's address of `[off, off + len)`, bounds-checked.
    fn at(&self, off: u64, len: usize) -> KResult<*mut u8> {
        match off.checked_add(len as u64) {
            // SAFETY: within the mapping (checked against its size).
            Some(end) if end <= self.size => Ok(unsafe { self.base.add(off as usize) }),
            _ => Err(Errno::EFAULT),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping at teardown.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size as usize) };
    }
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
        Ok(MemoryFile {
            main: Store::new(fd, FILE_SIZE)?,
            filestore: OnceLock::new(),
        })
    }

    /// Take `fd` (a host file the runtime made beside the rootfs, empty) as
    /// the filestore. At boot, before the first stub.
    pub fn set_filestore(&self, fd: OwnedFd) -> std::io::Result<()> {
        let s = Store::new(fd, FILESTORE_SIZE)?;
        self.filestore
            .set(s)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EEXIST))
    }

    pub fn has_filestore(&self) -> bool {
        self.filestore.get().is_some()
    }

    /// The store holding `off`, and the offset within it.
    fn store(&self, off: u64) -> KResult<(&Store, u64)> {
        if off & FILESTORE_BIT == 0 {
            return Ok((&self.main, off));
        }
        let s = self.filestore.get().ok_or(Errno::EFAULT)?;
        Ok((s, off & !FILESTORE_BIT))
    }

    pub fn fd(&self) -> RawFd {
        self.main.fd.as_raw_fd()
    }

    /// The filestore's fd, if there is one.
    pub fn filestore_fd(&self) -> Option<RawFd> {
        self.filestore.get().map(|s| s.fd.as_raw_fd())
    }

    /// The fd stubs map `off` from and the offset in it.
    pub fn fd_for(&self, off: u64) -> (RawFd, u64) {
        match self.store(off) {
            Ok((s, o)) => (s.fd.as_raw_fd(), o),
            Err(_) => (self.fd(), off),
        }
    }

    /// Bytes of the memory file backed by host memory (touched and not
    /// freed; the filestore is on disk and not counted).
    pub fn resident(&self) -> u64 {
        nix::sys::stat::fstat(self.main.fd.as_raw_fd())
            .map(|st| st.st_blocks as u64 * 512)
            .unwrap_or(0)
    }

    /// Bytes currently handed out.
    pub fn used(&self) -> u64 {
        self.main.alloc.lock().map(|a| a.used).unwrap_or(0)
    }

    /// Allocate `len` bytes (page multiple); the range reads as zeroes.
    pub fn allocate(&self, len: u64) -> KResult<u64> {
        self.main.allocate(len)
    }

    /// Allocate in the filestore (ENOMEM without one).
    pub fn allocate_filestore(&self, len: u64) -> KResult<u64> {
        let s = self.filestore.get().ok_or(Errno::ENOMEM)?;
        Ok(s.allocate(len)? | FILESTORE_BIT)
    }

    /// Allocate `len` bytes in the store holding `like`.
    pub fn allocate_like(&self, like: u64, len: u64) -> KResult<u64> {
        if like & FILESTORE_BIT != 0 {
            self.allocate_filestore(len)
        } else {
            self.allocate(len)
        }
    }

    /// Return a range to the allocator and its pages to the host.
    pub fn free(&self, off: u64, len: u64) {
        if let Ok((s, o)) = self.store(off) {
            s.free(o, len);
        }
    }

    /// Zero a range without freeing it (MADV_DONTNEED on private memory).
    pub fn zero(&self, off: u64, len: u64) {
        if let Ok((s, o)) = self.store(off) {
            s.punch(o, len);
        }
    }

    /// Back `[off, off + len)` with pages in one call (MADV_POPULATE_WRITE
    /// on the sentry's mapping) before a large copy into it, instead of a
    /// page fault per page. Best effort.
    pub fn populate(&self, off: u64, len: u64) {
        const MADV_POPULATE_WRITE: i32 = 23;
        let Ok((s, o)) = self.store(off) else { return };
        let start = o & !(PAGE_SIZE - 1);
        let end = o.saturating_add(len).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let Ok(p) = s.at(start, (end - start) as usize) else {
            return;
        };
        // SAFETY: advice on a range of our own mapping (checked by `at`).
        unsafe {
            libc::madvise(p.cast(), (end - start) as usize, MADV_POPULATE_WRITE);
        }
    }

    pub fn read(&self, off: u64, dst: &mut [u8]) -> KResult<()> {
        let (s, o) = self.store(off)?;
        let p = s.at(o, dst.len())?;
        // SAFETY: range checked against the mapping's size by `at`.
        unsafe { std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    pub fn write(&self, off: u64, src: &[u8]) -> KResult<()> {
        let (s, o) = self.store(off)?;
        let p = s.at(o, src.len())?;
        // SAFETY: range checked against the mapping's size by `at`.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) };
        Ok(())
    }

    /// Copy between two ranges (of either store).
    pub fn copy(&self, from: u64, to: u64, len: u64) -> KResult<()> {
        let (fs, fo) = self.store(from)?;
        let (ts, to_) = self.store(to)?;
        let src = fs.at(fo, len as usize)?;
        let dst = ts.at(to_, len as usize)?;
        // SAFETY: both ranges checked; ptr::copy handles overlap.
        unsafe { std::ptr::copy(src, dst, len as usize) };
        Ok(())
    }

    /// Copy only the allocated extents of [from, from+len) to `to` (the
    /// destination range must read as zeroes), so sparse memory stays sparse.
    pub fn copy_sparse(&self, from: u64, to: u64, len: u64) -> KResult<()> {
        let (fs, fo) = self.store(from)?;
        fs.at(fo, len as usize)?;
        let (ts, tol) = self.store(to)?;
        ts.at(tol, len as usize)?;
        let end = fo + len;
        let mut cur = fo;
        while cur < end {
            // SAFETY: lseek on our own fd.
            let data = unsafe { libc::lseek(fs.fd.as_raw_fd(), cur as i64, libc::SEEK_DATA) };
            if data < 0 || data as u64 >= end {
                break;
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(fs.fd.as_raw_fd(), data, libc::SEEK_HOLE) };
            let stop = if hole < 0 {
                end
            } else {
                (hole as u64).min(end)
            };
            let s = data as u64;
            self.copy(from + (s - fo), to + (s - fo), stop - s)?;
            cur = stop;
        }
        Ok(())
    }

    /// pwrite(2) of `[off, off + len)` of the file to the host fd `fd` at
    /// `file_off`, straight from the sentry's mapping (a workload buffer
    /// written to a host file without a copy through the heap). Returns
    /// bytes written.
    pub fn write_to_fd(&self, off: u64, len: usize, fd: RawFd, file_off: u64) -> KResult<usize> {
        let (s, o) = self.store(off)?;
        let src = s.at(o, len)?;
        loop {
            // SAFETY: the source range lies in our mapping (checked by `at`).
            let n = unsafe { libc::pwrite(fd, src as *const libc::c_void, len, file_off as i64) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = Errno::last_host();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    /// Read from a host fd straight into the file (used to populate private
    /// file mappings). Returns bytes read (short at EOF).
    pub fn fill_from_fd(&self, off: u64, len: usize, fd: RawFd, file_off: u64) -> KResult<usize> {
        let (s, o) = self.store(off)?;
        let base = s.at(o, len)?;
        let mut done = 0usize;
        while done < len {
            // SAFETY: destination range checked by `at` above.
            let n = unsafe {
                libc::pread(
                    fd,
                    base.add(done) as *mut libc::c_void,
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
