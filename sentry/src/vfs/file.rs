//! Open file descriptions and file descriptor tables.

use super::{lock, Dentry, Inode, Node};
use crate::abi::*;
use crate::fs::dev::DevKind;
use crate::kernel::task::Task;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// A directory entry as getdents reports it: name, inode, DT_* type.
pub type DirEntry = (Vec<u8>, u64, u8);

/// What an open directory lists, taken at its first getdents: the inode
/// numbers of "." and "..", then the entries (shared with the rootfs's
/// listing cache when nothing in the upper layer changes them).
pub struct Listing {
    dots: [u64; 2],
    rest: Arc<Vec<DirEntry>>,
}

pub enum FileKind {
    /// A host file opened for writing in a writable bind mount: reads and
    /// writes go to the gofer-donated fd.
    Passthrough {
        fd: Arc<OwnedFd>,
    },
    /// Lower-layer regular file: reads go to the gofer-donated host fd.
    Lower {
        fd: Arc<OwnedFd>,
    },
    /// In-memory regular file.
    Mem(Arc<Inode>),
    /// A directory; the listing is taken at the first getdents.
    Dir {
        entries: Mutex<Option<Listing>>,
    },
    Dev(DevKind),
    /// One of the sandbox's stdio streams, a host fd owned by the kernel.
    Host {
        fd: Arc<OwnedFd>,
        tty: bool,
        /// A regular file (writes never wait; decided once at boot).
        regular: bool,
    },
    /// Content generated at open (procfs, sysfs).
    Synthetic(Vec<u8>),
    /// O_PATH: no I/O.
    Path,
    /// eventfd(2) counter.
    EventFd(Arc<crate::fs::eventfd::EventFd>),
    /// A process, named by pidfd_open(2) or CLONE_PIDFD.
    PidFd(Arc<crate::fs::pidfd::PidFd>),
    /// An epoll instance.
    Epoll(Arc<crate::fs::epoll::Epoll>),
    /// An AF_UNIX socket.
    Socket(Arc<crate::fs::unix::Socket>),
    /// timerfd_create(2).
    TimerFd(Arc<crate::fs::timerfd::TimerFd>),
    /// signalfd(2).
    SignalFd(Arc<crate::fs::signalfd::SignalFd>),
    /// inotify_init(2).
    Inotify(Arc<crate::fs::inotify::Inotify>),
    /// A POSIX message queue (mq_open, or open(2) in an mqueue mount).
    Mqueue(Arc<crate::fs::mqueue::Queue>),
    /// One end of a pipe.
    Pipe {
        pipe: Arc<crate::fs::pipe::Pipe>,
        write: bool,
    },
    /// A FIFO opened by name: a read end, a write end, or both (O_RDWR).
    Fifo {
        pipe: Arc<crate::fs::pipe::Pipe>,
        read: bool,
        write: bool,
    },
    /// A pty master or replica (/dev/ptmx, /dev/pts/N, /dev/tty).
    Tty(crate::fs::pty::TtyFile),
}

pub struct File {
    pub dentry: Option<Arc<Dentry>>,
    pub kind: FileKind,
    pub flags: AtomicI32,
    pub pos: Mutex<u64>,
}

impl Drop for File {
    fn drop(&mut self) {
        // Stores through shared mappings of a host file reach it at close.
        if matches!(self.kind, FileKind::Passthrough { .. }) {
            if let Some(inode) = self.host_shared() {
                let _ = inode.write_back();
            }
        }
        crate::fs::dnotify::closed(self);
        // OFD and flock locks live as long as the open file description.
        let me = self as *const File as usize;
        if let Some(d) = &self.dentry {
            crate::fs::lock::table().release_file(me);
            if !matches!(self.kind, FileKind::Path) {
                crate::fs::inotify::closed(d, self.writable());
            }
        }
        if let FileKind::Pipe { pipe, write } = &self.kind {
            pipe.close_end(*write);
        }
        if let FileKind::Fifo { pipe, read, write } = &self.kind {
            if *read {
                pipe.close_end(false);
            }
            if *write {
                pipe.close_end(true);
            }
        }
        if let FileKind::Socket(sock) = &self.kind {
            sock.release();
        }
    }
}

impl File {
    /// A new pipe end (counted as a reader or writer until dropped).
    pub fn new_pipe(pipe: Arc<crate::fs::pipe::Pipe>, write: bool, flags: i32) -> Arc<File> {
        pipe.open_end(write);
        let acc = if write { O_WRONLY } else { O_RDONLY };
        File::new(
            None,
            FileKind::Pipe { pipe, write },
            acc | (flags & O_NONBLOCK),
        )
    }

    pub fn new(dentry: Option<Arc<Dentry>>, kind: FileKind, flags: i32) -> Arc<File> {
        Arc::new(File {
            dentry,
            kind,
            flags: AtomicI32::new(flags),
            pos: Mutex::new(0),
        })
    }

    pub fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn readable(&self) -> bool {
        let f = self.flags();
        f & O_PATH == 0 && matches!(f & O_ACCMODE, O_RDONLY | O_RDWR)
    }

    pub fn writable(&self) -> bool {
        let f = self.flags();
        f & O_PATH == 0 && matches!(f & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    pub fn is_seekable(&self) -> bool {
        matches!(
            self.kind,
            FileKind::Lower { .. }
                | FileKind::Passthrough { .. }
                | FileKind::Mem(_)
                | FileKind::Dir { .. }
                | FileKind::Synthetic(_)
                | FileKind::Mqueue(_)
        ) || matches!(self.kind, FileKind::Dev(d) if d != DevKind::Tty)
    }

    pub fn stat(&self) -> KResult<KStat> {
        if let FileKind::Host { fd, .. } = &self.kind {
            let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
            let mut k = KStat {
                st_dev: st.st_dev,
                st_ino: st.st_ino,
                st_nlink: st.st_nlink,
                st_mode: st.st_mode,
                st_uid: 0,
                st_gid: 0,
                st_rdev: st.st_rdev,
                st_size: st.st_size,
                st_blksize: st.st_blksize,
                st_blocks: st.st_blocks,
                st_atime: st.st_atime,
                st_atime_nsec: st.st_atime_nsec,
                st_mtime: st.st_mtime,
                st_mtime_nsec: st.st_mtime_nsec,
                st_ctime: st.st_ctime,
                st_ctime_nsec: st.st_ctime_nsec,
                ..Default::default()
            };
            k.pad0 = 0;
            return Ok(k);
        }
        if let FileKind::Socket(sock) = &self.kind {
            return Ok(KStat {
                st_dev: 0x8,
                st_ino: sock.ino,
                st_nlink: 1,
                st_mode: S_IFSOCK | 0o777,
                st_blksize: 4096,
                ..Default::default()
            });
        }
        if let FileKind::PidFd(p) = &self.kind {
            return Ok(KStat {
                st_dev: 0xd,
                st_ino: p.ino,
                st_nlink: 1,
                st_mode: 0o600,
                st_blksize: 4096,
                ..Default::default()
            });
        }
        if let Some(ino) = crate::fs::anon_ino(&self.kind) {
            return Ok(KStat {
                st_dev: 0xd,
                st_ino: ino,
                st_nlink: 1,
                st_mode: 0o600,
                st_blksize: 4096,
                ..Default::default()
            });
        }
        if let FileKind::EventFd(e) = &self.kind {
            return Ok(KStat {
                st_dev: 0xd,
                st_ino: e.ino,
                st_nlink: 1,
                st_mode: 0o600,
                st_blksize: 4096,
                ..Default::default()
            });
        }
        if let FileKind::Pipe { pipe, .. } = &self.kind {
            return Ok(KStat {
                st_dev: 0xc,
                st_ino: pipe.ino,
                st_nlink: 1,
                st_mode: S_IFIFO | 0o600,
                st_blksize: 4096,
                ..Default::default()
            });
        }
        match &self.dentry {
            Some(d) => {
                let mut k = d.meta().to_kstat();
                if let FileKind::Synthetic(data) = &self.kind {
                    if k.st_mode & S_IFMT == S_IFREG && k.st_size == 0 {
                        k.st_size = 0;
                        let _ = data;
                    }
                }
                Ok(k)
            }
            None => Err(Errno::EBADF),
        }
    }

    /// The inode of a host file (bind mount) whose pages are shared-mapped.
    fn host_shared(&self) -> Option<Arc<Inode>> {
        let inode = self.dentry.as_ref()?.inode();
        (inode.writeback.get().is_some() && inode.shared.get().is_some()).then_some(inode)
    }

    /// Read at `off`; Ok(0) at end of file.
    pub fn pread(&self, buf: &mut [u8], off: u64) -> KResult<usize> {
        match &self.kind {
            FileKind::Lower { .. } | FileKind::Passthrough { .. }
                if self.host_shared().is_some() =>
            {
                let inode = self.host_shared().ok_or(Errno::EIO)?;
                inode.shared.get().ok_or(Errno::EIO)?.pread(buf, off)
            }
            FileKind::Lower { fd } | FileKind::Passthrough { fd } => loop {
                match nix::sys::uio::pread(&**fd, buf, off as i64) {
                    Err(nix::Error::EINTR) => continue,
                    r => return r.map_err(Errno::from),
                }
            },
            FileKind::Mem(inode) => {
                if let Node::Shm(f) = &inode.node {
                    return f.pread(buf, off);
                }
                let Node::Mem(data) = &inode.node else {
                    return Err(Errno::EINVAL);
                };
                let data = lock(data);
                if let Some(f) = inode.shared.get() {
                    drop(data);
                    return f.pread(buf, off);
                }
                let start = (off as usize).min(data.len());
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            FileKind::Synthetic(data) => {
                let start = (off as usize).min(data.len());
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            FileKind::Dev(d) => d.read(buf),
            FileKind::Dir { .. } => Err(Errno::EISDIR),
            FileKind::Host { fd, .. } => {
                host_read(fd.as_raw_fd(), buf, self.flags() & O_NONBLOCK != 0)
            }
            FileKind::Pipe { pipe, write: false } => pipe.read(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Fifo {
                pipe, read: true, ..
            } => pipe.read(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Fifo { .. } => Err(Errno::EBADF),
            FileKind::EventFd(e) => e.read(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::TimerFd(x) => x.read(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::SignalFd(x) => x.read(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Inotify(x) => x.read(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Mqueue(q) => q.read_status(buf, off),
            FileKind::Epoll(_) | FileKind::PidFd(_) => Err(Errno::EINVAL),
            FileKind::Socket(sock) => sock.read(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Tty(tf) => tf.read_plain(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Pipe { .. } | FileKind::Path => Err(Errno::EBADF),
        }
    }

    pub fn pwrite(&self, buf: &[u8], off: u64) -> KResult<usize> {
        match &self.kind {
            FileKind::Mem(inode) => {
                if let Node::Shm(f) = &inode.node {
                    // A /dev/shm mount's size= takes what fits, as tmpfs.
                    let append = self.flags() & O_APPEND != 0;
                    let start = if append { f.size() } else { off };
                    let end = start.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
                    let end =
                        crate::fs::tmpfs::charge_write(self.dentry.as_ref(), inode, start, end)?;
                    return f
                        .pwrite(&buf[..(end - start) as usize], off, append)
                        .map(|(n, _)| n);
                }
                let Node::Mem(data) = &inode.node else {
                    return Err(Errno::EINVAL);
                };
                let append = self.flags() & O_APPEND != 0;
                let (heap_max, filestore) = super::file_store(self.dentry.as_ref());
                let grows_big = {
                    let data = lock(data);
                    let start = if append { data.len() as u64 } else { off };
                    start.saturating_add(buf.len() as u64) > heap_max
                };
                if grows_big && inode.shared.get().is_none() {
                    inode.make_shared(super::memory_file()?, filestore)?;
                }
                let mut data = lock(data);
                if let Some(f) = inode.shared.get() {
                    drop(data);
                    let start = if append { f.size() } else { off };
                    let end = start.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
                    let end =
                        crate::fs::tmpfs::charge_write(self.dentry.as_ref(), inode, start, end)?;
                    let n = f.pwrite(&buf[..(end - start) as usize], off, append)?.0;
                    let mut m = lock(&inode.meta);
                    m.mtime = super::now();
                    m.ctime = m.mtime;
                    return Ok(n);
                }
                let off = if self.flags() & O_APPEND != 0 {
                    data.len() as u64
                } else {
                    off
                };
                let end = off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
                if end > (1 << 40) {
                    return Err(Errno::EFBIG);
                }
                // A sized tmpfs may take only part of it (ENOSPC: none).
                let end = crate::fs::tmpfs::charge_write(self.dentry.as_ref(), inode, off, end)?;
                let n = (end - off) as usize;
                if (data.len() as u64) < end {
                    super::resize_mem(&mut data, end, Errno::ENOSPC)?;
                }
                data[off as usize..end as usize].copy_from_slice(&buf[..n]);
                drop(data);
                let mut m = lock(&inode.meta);
                m.mtime = super::now();
                m.ctime = m.mtime;
                Ok(n)
            }
            FileKind::Passthrough { fd } => {
                let off = if self.flags() & O_APPEND != 0 {
                    nix::sys::stat::fstat(fd.as_raw_fd())?.st_size.max(0) as u64
                } else {
                    off
                };
                let n = loop {
                    match nix::sys::uio::pwrite(&**fd, buf, off as i64) {
                        Err(nix::Error::EINTR) => continue,
                        r => break r.map_err(Errno::from)?,
                    }
                };
                // A shared-mapped host file: the sandbox's view is its pages.
                if let Some(inode) = self.host_shared() {
                    if let Some(f) = inode.shared.get() {
                        f.pwrite(&buf[..n], off, false)?;
                    }
                }
                if let Some(d) = &self.dentry {
                    let inode = d.inode();
                    let mut m = lock(&inode.meta);
                    m.size = m.size.max(off + n as u64);
                    m.mtime = super::now();
                    m.ctime = m.mtime;
                }
                Ok(n)
            }
            FileKind::Dev(d) => d.write(buf),
            FileKind::Host { fd, regular, .. } => host_write(fd.as_raw_fd(), buf, *regular),
            FileKind::Pipe { pipe, write: true } => pipe.write(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Fifo {
                pipe, write: true, ..
            } => pipe.write(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Fifo { .. } => Err(Errno::EBADF),
            FileKind::EventFd(e) => e.write(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Epoll(_) | FileKind::PidFd(_) => Err(Errno::EINVAL),
            FileKind::TimerFd(_)
            | FileKind::SignalFd(_)
            | FileKind::Inotify(_)
            | FileKind::Mqueue(_) => Err(Errno::EINVAL),
            FileKind::Socket(sock) => sock.write(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Tty(tf) => tf.write_plain(buf, self.flags() & O_NONBLOCK != 0),
            FileKind::Pipe { .. } => Err(Errno::EBADF),
            FileKind::Lower { .. } | FileKind::Synthetic(_) => Err(Errno::EBADF),
            FileKind::Dir { .. } => Err(Errno::EISDIR),
            FileKind::Path => Err(Errno::EBADF),
        }
    }

    /// write/pwrite of a host file of a writable bind mount straight from
    /// the memory-file ranges `pieces` (workload memory), without a copy
    /// through the heap. `None` where that does not apply (another kind of
    /// file, O_APPEND, a shared-mapped host file, whose pages must follow).
    ///
    /// `pieces` gives the memory-file ranges of the `len` bytes to write;
    /// it is asked only when the write goes this way.
    pub fn write_direct(
        &self,
        mf: &crate::mm::memfile::MemoryFile,
        len: usize,
        pieces: impl FnOnce() -> KResult<Vec<(u64, usize)>>,
        off: Option<u64>,
    ) -> Option<KResult<usize>> {
        if let FileKind::Mem(inode) = &self.kind {
            return self.write_direct_mem(inode, len, pieces, off).transpose();
        }
        let FileKind::Passthrough { fd } = &self.kind else {
            return None;
        };
        if self.flags() & O_APPEND != 0 || self.host_shared().is_some() {
            return None;
        }
        let pieces = match pieces() {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let mut pos = lock(&self.pos);
        let start = off.unwrap_or(*pos);
        let mut done = 0usize;
        for &(p, len) in &pieces {
            match mf.write_to_fd(p, len, fd.as_raw_fd(), start + done as u64) {
                Ok(n) => {
                    done += n;
                    if n < len {
                        break;
                    }
                }
                Err(e) if done == 0 => return Some(Err(e)),
                Err(_) => break,
            }
        }
        if off.is_none() {
            *pos += done as u64;
        }
        drop(pos);
        if let Some(d) = &self.dentry {
            let inode = d.inode();
            let mut m = lock(&inode.meta);
            m.size = m.size.max(start + done as u64);
            m.mtime = super::now();
            m.ctime = m.mtime;
        }
        Some(Ok(done))
    }

    /// write/pwrite of an in-memory file whose data is (or, growing past
    /// the heap's share, now goes) in the memory file, straight from the
    /// workload's pages. `Ok(None)` for a file still in the heap.
    fn write_direct_mem(
        &self,
        inode: &Arc<Inode>,
        len: usize,
        pieces: impl FnOnce() -> KResult<Vec<(u64, usize)>>,
        off: Option<u64>,
    ) -> KResult<Option<usize>> {
        use crate::fs::shm::{take_pieces, Src};
        let append = self.flags() & O_APPEND != 0;
        let mut pos = lock(&self.pos);
        let at = off.unwrap_or(*pos);
        let f = match &inode.node {
            Node::Shm(f) => f,
            Node::Mem(data) => {
                if inode.shared.get().is_none() {
                    // Still in the heap: written there unless it now grows
                    // past the heap's share.
                    let (heap_max, filestore) = super::file_store(self.dentry.as_ref());
                    let start = if append { lock(data).len() as u64 } else { at };
                    if start.saturating_add(len as u64) <= heap_max {
                        return Ok(None);
                    }
                    inode.make_shared(super::memory_file()?, filestore)?;
                }
                inode.shared.get().ok_or(Errno::EIO)?
            }
            _ => return Ok(None),
        };
        let pieces = pieces()?;
        let start = if append { f.size() } else { at };
        let end = start.checked_add(len as u64).ok_or(Errno::EFBIG)?;
        // A sized tmpfs may take only part of it (ENOSPC: none).
        let end = crate::fs::tmpfs::charge_write(self.dentry.as_ref(), inode, start, end)?;
        let part = take_pieces(&pieces, (end - start) as usize);
        let (n, new_end) = f.pwrite_src(Src::Pieces(&part), at, append)?;
        if off.is_none() {
            *pos = if append { new_end } else { at + n as u64 };
        }
        drop(pos);
        if matches!(inode.node, Node::Mem(_)) {
            let mut m = lock(&inode.meta);
            m.mtime = super::now();
            m.ctime = m.mtime;
        }
        Ok(Some(n))
    }

    pub fn read(&self, buf: &mut [u8]) -> KResult<usize> {
        if !self.is_seekable() {
            return self.pread(buf, 0);
        }
        let mut pos = lock(&self.pos);
        let n = self.pread(buf, *pos)?;
        *pos += n as u64;
        Ok(n)
    }

    pub fn write(&self, buf: &[u8]) -> KResult<usize> {
        if !self.is_seekable() {
            return self.pwrite(buf, 0);
        }
        let mut pos = lock(&self.pos);
        let n = self.pwrite(buf, *pos)?;
        if self.flags() & O_APPEND != 0 {
            if let FileKind::Passthrough { fd } = &self.kind {
                *pos = nix::sys::stat::fstat(fd.as_raw_fd())?.st_size.max(0) as u64;
                return Ok(n);
            }
            if let FileKind::Mem(inode) = &self.kind {
                // An appending write leaves the position at the end.
                *pos = inode.meta().size;
                return Ok(n);
            }
        }
        *pos += n as u64;
        Ok(n)
    }

    pub fn size(&self) -> KResult<u64> {
        match &self.kind {
            FileKind::Synthetic(d) => Ok(d.len() as u64),
            _ => Ok(self.stat()?.st_size.max(0) as u64),
        }
    }

    pub fn lseek(&self, off: i64, whence: i32) -> KResult<u64> {
        const SEEK_SET: i32 = 0;
        const SEEK_CUR: i32 = 1;
        const SEEK_END: i32 = 2;
        const SEEK_DATA: i32 = 3;
        const SEEK_HOLE: i32 = 4;
        if !self.is_seekable() {
            return Err(Errno::ESPIPE);
        }
        if let FileKind::Dev(_) = self.kind {
            return Ok(0);
        }
        let mut pos = lock(&self.pos);
        let new = match whence {
            SEEK_SET => off,
            SEEK_CUR => (*pos as i64).checked_add(off).ok_or(Errno::EOVERFLOW)?,
            SEEK_END => (self.size()? as i64)
                .checked_add(off)
                .ok_or(Errno::EOVERFLOW)?,
            SEEK_DATA | SEEK_HOLE => {
                let size = self.size()? as i64;
                if off < 0 || off >= size {
                    return Err(Errno::ENXIO);
                }
                if whence == SEEK_DATA {
                    off
                } else {
                    size
                }
            }
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        if let FileKind::Dir { entries } = &self.kind {
            if new == 0 {
                *lock(entries) = None;
            }
        }
        *pos = new as u64;
        Ok(new as u64)
    }

    /// getdents64 into a buffer of `cap` bytes; pos counts entries.
    pub fn getdents(&self, t: &Task, cap: usize) -> KResult<Vec<u8>> {
        let FileKind::Dir { entries } = &self.kind else {
            return Err(Errno::ENOTDIR);
        };
        let Some(dentry) = &self.dentry else {
            return Err(Errno::ENOTDIR);
        };
        let mut entries = lock(entries);
        if entries.is_none() {
            let dotdot = super::path::parent_of(dentry, &t.fs_root()).meta().ino;
            *entries = Some(Listing {
                dots: [dentry.meta().ino, dotdot],
                rest: dentry.list(t)?,
            });
        }
        let Some(listing) = entries.as_ref() else {
            return Ok(Vec::new());
        };
        let len = listing.rest.len() + 2;
        let mut pos = lock(&self.pos);
        let mut out = Vec::with_capacity(cap.min(1 << 16));
        while (*pos as usize) < len {
            let i = *pos as usize;
            let (name, ino, kind) = match i {
                0 | 1 => (&b".."[..i + 1], listing.dots[i], DT_DIR),
                _ => {
                    let (n, ino, k) = &listing.rest[i - 2];
                    (n.as_slice(), *ino, *k)
                }
            };
            let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
            if out.len() + reclen > cap {
                if out.is_empty() {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            let next = *pos + 1;
            out.extend_from_slice(&ino.to_le_bytes());
            out.extend_from_slice(&(next as i64).to_le_bytes());
            out.extend_from_slice(&(reclen as u16).to_le_bytes());
            out.push(kind);
            out.extend_from_slice(name);
            out.resize(out.len() + (reclen - 19 - name.len()), 0);
            *pos = next;
        }
        Ok(out)
    }
}

/// Read a host fd (stdio). Waiting happens in poll, in slices of 100 ms,
/// so that a signal for the reading task interrupts the read.
fn host_read(fd: RawFd, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
    loop {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, if nonblock { 0 } else { 100 }) };
        if n == 0 {
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            if crate::signals::current_interrupted() {
                return Err(Errno::ERESTARTSYS);
            }
            continue;
        }
        if n < 0 && Errno::last_host() == Errno::EINTR {
            continue;
        }
        break;
    }
    loop {
        match nix::unistd::read(fd, buf) {
            Err(nix::Error::EINTR) => continue,
            r => return r.map_err(Errno::from),
        }
    }
}

/// A write to a host stdio fd that a signal can interrupt: wait in host
/// `poll` (100 ms slices, checking for signals), then write at most
/// PIPE_BUF at a time to pipes, ttys and sockets, so no host `write`
/// blocks for long. The whole buffer is written unless a signal comes
/// first (then the bytes written so far, or a restart if none).
fn host_write(fd: RawFd, buf: &[u8], regular: bool) -> KResult<usize> {
    // SAFETY: fd is a host fd owned by the kernel for the sandbox's lifetime.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    if regular {
        // A file never makes a writer wait: no poll, one write.
        loop {
            match nix::unistd::write(bfd, buf) {
                Err(nix::Error::EINTR) => continue,
                r => return r.map_err(Errno::from),
            }
        }
    }
    let chunk = crate::fs::pipe::PIPE_BUF;
    let mut done = 0usize;
    while done < buf.len() || buf.is_empty() {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 100) };
        if n == 0 || (n < 0 && Errno::last_host() == Errno::EINTR) {
            if crate::signals::current_interrupted() {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::ERESTARTSYS)
                };
            }
            continue;
        }
        let end = (done + chunk).min(buf.len());
        match nix::unistd::write(bfd, &buf[done..end]) {
            Err(nix::Error::EINTR) => continue,
            Err(e) if done == 0 => return Err(Errno::from(e)),
            Err(_) => return Ok(done),
            Ok(n) => done += n,
        }
        if buf.is_empty() {
            break;
        }
    }
    Ok(done)
}

#[derive(Clone)]
pub struct FdEntry {
    pub file: Arc<File>,
    pub cloexec: bool,
}

#[derive(Clone, Default)]
pub struct FdTable {
    fds: Vec<Option<FdEntry>>,
}

impl FdTable {
    pub fn get(&self, fd: i32) -> KResult<Arc<File>> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.fds
            .get(fd as usize)
            .and_then(|e| e.as_ref())
            .map(|e| e.file.clone())
            .ok_or(Errno::EBADF)
    }

    pub fn entry(&self, fd: i32) -> KResult<&FdEntry> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.fds
            .get(fd as usize)
            .and_then(|e| e.as_ref())
            .ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> KResult<()> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        match self.fds.get_mut(fd as usize).and_then(|e| e.as_mut()) {
            Some(e) => {
                e.cloexec = on;
                Ok(())
            }
            None => Err(Errno::EBADF),
        }
    }

    /// Install at the lowest free fd >= `min`, below `limit`.
    pub fn alloc(&mut self, file: Arc<File>, cloexec: bool, min: i32, limit: u64) -> KResult<i32> {
        let mut i = min.max(0) as usize;
        loop {
            if i as u64 >= limit {
                return Err(Errno::EMFILE);
            }
            if i >= self.fds.len() || self.fds[i].is_none() {
                break;
            }
            i += 1;
        }
        self.put(i as i32, file, cloexec);
        Ok(i as i32)
    }

    pub fn put(&mut self, fd: i32, file: Arc<File>, cloexec: bool) -> Option<FdEntry> {
        let i = fd as usize;
        if self.fds.len() <= i {
            self.fds.resize(i + 1, None);
        }
        self.fds[i].replace(FdEntry { file, cloexec })
    }

    pub fn remove(&mut self, fd: i32) -> KResult<FdEntry> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.fds
            .get_mut(fd as usize)
            .and_then(|e| e.take())
            .ok_or(Errno::EBADF)
    }

    pub fn close_on_exec(&mut self) {
        for e in self.fds.iter_mut() {
            if e.as_ref().map(|x| x.cloexec).unwrap_or(false) {
                *e = None;
            }
        }
    }

    pub fn close_range(&mut self, first: u32, last: u32, cloexec_only: bool) {
        let end = (last as usize).min(self.fds.len().saturating_sub(1));
        for i in first as usize..=end {
            if i >= self.fds.len() {
                break;
            }
            if cloexec_only {
                if let Some(e) = self.fds[i].as_mut() {
                    e.cloexec = true;
                }
            } else {
                self.fds[i] = None;
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (i32, &FdEntry)> {
        self.fds
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as i32, e)))
    }
}
