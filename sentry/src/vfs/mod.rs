//! The virtual filesystem: inodes, the dentry cache with the overlay root's
//! upper layer folded in, mounts, and path resolution.
//!
//! The root is an overlay: the lower layer is served read-only by the gofer;
//! the upper layer lives in the sentry (children maps of dentries, with
//! `None` as a whiteout). Writing a lower file copies it up first.
//!
//! Lock order: Dentry.children -> Dentry.inode -> Inode.meta.

pub mod file;
pub mod path;

use crate::abi::*;
use crate::fs::dev::DevKind;
use crate::fs::proc::ProcNode;
use gofer::proto::{NodeId, Stat};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Device number reported for the sentry's in-memory files.
pub const MEM_DEV: u64 = 0x2d;
pub const PROC_DEV: u64 = 0x16;
pub const DEV_DEV: u64 = 0x5;
/// Device number of an OCI /dev/shm mount (its own filesystem, so tools
/// that find a path's mount by st_dev, like df, find it).
pub const SHM_DEV: u64 = 0x2e;

static NEXT_INO: AtomicU64 = AtomicU64::new(1_000_000);

pub fn new_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone, Debug)]
pub struct Meta {
    pub ino: u64,
    pub dev: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blocks: u64,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

pub fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

impl Meta {
    pub fn new(mode: u32, dev: u64, uid: u32, gid: u32) -> Meta {
        let t = now();
        Meta {
            ino: new_ino(),
            dev,
            mode,
            nlink: if mode & S_IFMT == S_IFDIR { 2 } else { 1 },
            uid,
            gid,
            rdev: 0,
            size: 0,
            blocks: 0,
            atime: t,
            mtime: t,
            ctime: t,
        }
    }
    pub fn from_gofer(s: &Stat) -> Meta {
        Meta {
            ino: s.ino,
            dev: s.dev,
            mode: s.mode,
            nlink: s.nlink,
            uid: s.uid,
            gid: s.gid,
            rdev: s.rdev,
            size: s.size,
            blocks: s.blocks,
            atime: s.atime,
            mtime: s.mtime,
            ctime: s.ctime,
        }
    }
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    pub fn is_lnk(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
    pub fn to_kstat(&self) -> KStat {
        KStat {
            st_dev: self.dev,
            st_ino: self.ino,
            st_nlink: self.nlink,
            st_mode: self.mode,
            st_uid: self.uid,
            st_gid: self.gid,
            pad0: 0,
            st_rdev: self.rdev,
            st_size: self.size as i64,
            st_blksize: 4096,
            st_blocks: self.blocks as i64,
            st_atime: self.atime.0,
            st_atime_nsec: self.atime.1 as i64,
            st_mtime: self.mtime.0,
            st_mtime_nsec: self.mtime.1 as i64,
            st_ctime: self.ctime.0,
            st_ctime_nsec: self.ctime.1 as i64,
            unused: [0; 3],
        }
    }
}

/// A file served by the gofer (the overlay's read-only lower layer).
pub struct LowerNode {
    pub node: NodeId,
    pub gofer: Arc<gofer::client::Client>,
    /// One host fd shared by every open of this file (reads use pread).
    pub host_fd: OnceLock<Arc<OwnedFd>>,
}

impl LowerNode {
    pub fn fd(&self) -> KResult<Arc<OwnedFd>> {
        if let Some(fd) = self.host_fd.get() {
            return Ok(fd.clone());
        }
        let (fd, _) = self.gofer.open(self.node, O_RDONLY).map_err(Errno)?;
        let fd = Arc::new(fd);
        let _ = self.host_fd.set(fd.clone());
        Ok(self.host_fd.get().cloned().unwrap_or(fd))
    }
}

impl Drop for LowerNode {
    fn drop(&mut self) {
        let _ = self.gofer.close(self.node);
    }
}

pub enum Node {
    /// Lower-layer file, directory or symlink.
    Lower(LowerNode),
    /// In-memory regular file (upper layer or tmpfs).
    Mem(Mutex<Vec<u8>>),
    /// A file whose data lives in the memory file (memfd, /dev/shm).
    Shm(crate::fs::shm::ShmFile),
    /// In-memory directory (its entries are the dentry's children).
    MemDir,
    /// In-memory symlink.
    Symlink(Vec<u8>),
    /// A character device of devfs.
    Dev(DevKind),
    /// A FIFO (mknod S_IFIFO, mkfifo): its pipe lives with the inode.
    Fifo(Arc<crate::fs::pipe::Pipe>),
    /// Synthetic procfs/sysfs node.
    Proc(ProcNode),
    /// A socket inode: bind(2) of an AF_UNIX socket to a path made it
    /// (mknod S_IFSOCK makes one nobody listens on).
    Socket(std::sync::Weak<crate::fs::unix::Socket>),
    /// A POSIX message queue (a file of the mqueue filesystem).
    Mqueue(Arc<crate::fs::mqueue::Queue>),
    /// The mqueue filesystem's directory: its entries are the sandbox's
    /// queues (`fs::mqueue`).
    MqDir,
}

/// The most bytes one in-memory file may hold: the sandbox's memory (set
/// at boot), so a file cannot take the host's memory or abort the sentry.
static MEM_FILE_CAP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);

/// Host files with shared mappings (their pages live in the memory file).
fn host_shared() -> &'static Mutex<Vec<std::sync::Weak<Inode>>> {
    static H: OnceLock<Mutex<Vec<std::sync::Weak<Inode>>>> = OnceLock::new();
    H.get_or_init(Default::default)
}

/// msync and sandbox exit: every shared-mapped host file to the host.
pub fn write_back_all() {
    let live: Vec<Arc<Inode>> = {
        let mut h = lock(host_shared());
        h.retain(|w| w.strong_count() > 0);
        h.iter().filter_map(|w| w.upgrade()).collect()
    };
    for i in live {
        if let Err(e) = i.write_back() {
            tracing::warn!("writing a shared mapping back to its host file: {e:?}");
        }
    }
}

/// Bytes held by all in-memory files together (the sentry's heap): they
/// count against the sandbox's memory limit like tmpfs pages in a memory
/// cgroup.
static MEM_FILE_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// The sandbox's memory limit (0: none) for those bytes.
static MEM_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// At boot: the sandbox's memory (one file's cap) and its memory limit, if
/// any (the cap on all of them together).
pub fn set_mem_file_cap(bytes: u64, limit: Option<u64>) {
    MEM_FILE_CAP.store(bytes, std::sync::atomic::Ordering::Relaxed);
    MEM_LIMIT.store(limit.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
}

/// An in-memory file larger than this keeps its data in the memory file
/// (sparse, mappable in place) rather than the sentry's heap.
pub const MEM_FILE_HEAP_MAX: u64 = 1 << 20;

static MEMORY_FILE: OnceLock<Arc<crate::mm::memfile::MemoryFile>> = OnceLock::new();

/// At boot: the memory file that large in-memory files move into.
pub fn set_memory_file(mf: &Arc<crate::mm::memfile::MemoryFile>) {
    let _ = MEMORY_FILE.set(mf.clone());
}

/// The memory file (ENOMEM before boot set it).
pub fn memory_file() -> KResult<&'static Arc<crate::mm::memfile::MemoryFile>> {
    MEMORY_FILE.get().ok_or(Errno::ENOMEM)
}

/// Where a regular in-memory file under `d` keeps its data once it has
/// any: (the size past which it leaves the sentry's heap, whether in the
/// filestore). With `--overlay self` the rootfs's upper-layer files go to
/// the filestore (a host file beside the rootfs) whatever their size.
pub fn file_store(d: Option<&Arc<Dentry>>) -> (u64, bool) {
    let selfish = MEMORY_FILE.get().is_some_and(|m| m.has_filestore());
    if selfish && d.is_some_and(|d| d.in_rootfs()) {
        (0, true)
    } else {
        (MEM_FILE_HEAP_MAX, false)
    }
}

/// The most one in-memory file may hold (the sandbox's memory).
pub fn mem_file_cap() -> u64 {
    MEM_FILE_CAP.load(std::sync::atomic::Ordering::Relaxed)
}

/// Bytes held by in-memory files now (for the memory-limit monitor).
pub fn mem_file_bytes() -> u64 {
    MEM_FILE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

fn account(old: usize, new: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    if new >= old {
        MEM_FILE_BYTES.fetch_add((new - old) as u64, Relaxed);
    } else {
        let _ = MEM_FILE_BYTES.fetch_update(Relaxed, Relaxed, |v| {
            Some(v.saturating_sub((old - new) as u64))
        });
    }
}

/// Resize an in-memory file's data to `len` bytes (new bytes zero). Past
/// the cap, past the sandbox's memory limit for all such files together,
/// or when the memory is not there: `err` (ENOSPC for a write, EFBIG for a
/// truncate), never an abort.
pub fn resize_mem(data: &mut Vec<u8>, len: u64, err: Errno) -> KResult<()> {
    use std::sync::atomic::Ordering::Relaxed;
    if len > MEM_FILE_CAP.load(Relaxed) {
        return Err(err);
    }
    let len = usize::try_from(len).map_err(|_| err)?;
    if len > data.len() {
        let grow = (len - data.len()) as u64;
        let limit = MEM_LIMIT.load(Relaxed);
        if limit != 0 && MEM_FILE_BYTES.load(Relaxed).saturating_add(grow) > limit {
            return Err(Errno::ENOSPC);
        }
        data.try_reserve_exact(len - data.len()).map_err(|_| err)?;
    }
    account(data.len(), len);
    data.resize(len, 0);
    if len < data.capacity() / 2 {
        data.shrink_to_fit();
    }
    Ok(())
}

impl Drop for Inode {
    fn drop(&mut self) {
        if let Node::Mem(d) = &mut self.node {
            let len = d
                .get_mut()
                .map(|v| v.len())
                .unwrap_or_else(|e| e.into_inner().len());
            account(len, 0);
        }
    }
}

pub struct Inode {
    pub node: Node,
    pub meta: Mutex<Meta>,
    /// Extended attributes kept by the sentry (`fs::xattr`).
    pub xattrs: Mutex<crate::fs::xattr::Xattrs>,
    /// Set once a lower inode's host attributes were read into `xattrs`
    /// (`fs::xattr::seed`).
    pub xattrs_seeded: OnceLock<()>,
    /// What this inode holds of a sized tmpfs (`fs::tmpfs`), freed with it.
    pub charge: OnceLock<crate::fs::tmpfs::Charge>,
    /// A read-only lower directory's gofer listing, fetched once: the
    /// overlay's lower layer does not change under a running sandbox (as
    /// runsc assumes of its rootfs), so later readdirs cost no round trip.
    pub lower_listing: OnceLock<Arc<Vec<crate::vfs::file::DirEntry>>>,
    /// A host file (writable bind mount) mapped MAP_SHARED: the fd its
    /// pages (kept in `shared`) are written back to.
    pub writeback: OnceLock<Arc<std::os::fd::OwnedFd>>,
    /// An in-memory file (`Node::Mem`) that was mapped MAP_SHARED: its
    /// data moved into the memory file, where every mapping and every
    /// read and write see the same pages. Set (under the data lock) once.
    pub shared: OnceLock<crate::fs::shm::ShmFile>,
}

impl Inode {
    pub fn new(node: Node, meta: Meta) -> Arc<Inode> {
        Arc::new(Inode {
            node,
            meta: Mutex::new(meta),
            xattrs: Mutex::default(),
            xattrs_seeded: OnceLock::new(),
            charge: OnceLock::new(),
            lower_listing: OnceLock::new(),
            writeback: OnceLock::new(),
            shared: OnceLock::new(),
        })
    }

    /// The memory-file storage of a regular in-memory file, moving its
    /// data there first (MAP_SHARED needs it, and files past
    /// [`MEM_FILE_HEAP_MAX`] live there).
    pub fn make_shared(
        &self,
        mf: &Arc<crate::mm::memfile::MemoryFile>,
        filestore: bool,
    ) -> KResult<&crate::fs::shm::ShmFile> {
        if let Node::Shm(f) = &self.node {
            return Ok(f);
        }
        let Node::Mem(d) = &self.node else {
            return Err(Errno::ENODEV);
        };
        let mut data = lock(d);
        if let Some(f) = self.shared.get() {
            return Ok(f);
        }
        let f = crate::fs::shm::ShmFile::new_in(mf, false, filestore)?;
        f.pwrite(&data, 0, false)?;
        let _ = self.shared.set(f);
        account(data.len(), 0);
        *data = Vec::new();
        self.shared.get().ok_or(Errno::EIO)
    }

    /// MAP_SHARED of a host file (through `fd`, open for writing, or read
    /// only when nothing may write): its content is read into the memory
    /// file, where every mapping, read and write of the sandbox meets;
    /// writes also go straight to the host file, and stores through
    /// mappings reach it on msync, fsync, close and at exit
    /// ([`write_back_all`]).
    pub fn make_shared_host(
        self: &Arc<Self>,
        mf: &Arc<crate::mm::memfile::MemoryFile>,
        fd: &Arc<std::os::fd::OwnedFd>,
    ) -> KResult<&crate::fs::shm::ShmFile> {
        let _g = lock(&self.meta);
        if let Some(f) = self.shared.get() {
            return Ok(f);
        }
        let size = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&**fd))?
            .st_size
            .max(0) as u64;
        let f = crate::fs::shm::ShmFile::new(mf, false)?;
        let mut buf = vec![0u8; (1 << 20).min(size as usize)];
        let mut at = 0u64;
        while at < size {
            let want = ((size - at) as usize).min(buf.len());
            let n =
                nix::sys::uio::pread(&**fd, &mut buf[..want], at as i64).map_err(Errno::from)?;
            if n == 0 {
                break;
            }
            f.pwrite(&buf[..n], at, false)?;
            at += n as u64;
        }
        f.truncate(size)?;
        let _ = self.writeback.set(fd.clone());
        let _ = self.shared.set(f);
        lock(host_shared()).push(Arc::downgrade(self));
        self.shared.get().ok_or(Errno::EIO)
    }

    /// Copy a shared-mapped host file's pages back to the host file.
    pub fn write_back(&self) -> KResult<()> {
        let (Some(f), Some(fd)) = (self.shared.get(), self.writeback.get()) else {
            return Ok(());
        };
        let size = f.size();
        let mut buf = vec![0u8; (1 << 20).min(size as usize)];
        let mut at = 0u64;
        while at < size {
            let n = f.pread(&mut buf, at)?;
            if n == 0 {
                break;
            }
            let mut done = 0;
            while done < n {
                match nix::sys::uio::pwrite(&**fd, &buf[done..n], (at + done as u64) as i64) {
                    Ok(w) => done += w,
                    Err(nix::Error::EINTR) => {}
                    Err(e) => return Err(Errno::from(e)),
                }
            }
            at += n as u64;
        }
        Ok(())
    }

    /// The memory-file storage of this file, if it has one (a memfd or
    /// /dev/shm file, or an in-memory file that was shared-mapped). Take
    /// the data lock first when it matters that no move is under way.
    pub fn shm(&self) -> Option<&crate::fs::shm::ShmFile> {
        match &self.node {
            Node::Shm(f) => Some(f),
            _ => self.shared.get(),
        }
    }

    pub fn meta(&self) -> Meta {
        let mut m = lock(&self.meta).clone();
        if let Node::Mem(d) = &self.node {
            let g = lock(d);
            m.size = match self.shared.get() {
                Some(f) => f.size(),
                None => g.len() as u64,
            };
            m.blocks = m.size.div_ceil(512);
        }
        if let Node::Shm(f) = &self.node {
            m.size = f.size();
            m.blocks = m.size.div_ceil(512);
        }
        m
    }
}

/// Which filesystem a dentry belongs to (for statfs and mount rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsType {
    Overlay,
    /// A writable bind mount: changes go through the gofer to the host.
    Bind,
    Tmpfs,
    Proc,
    Sys,
    Dev,
    Mqueue,
}

pub struct Dentry {
    pub name: Vec<u8>,
    pub parent: Option<Arc<Dentry>>,
    pub inode: Mutex<Arc<Inode>>,
    /// Cached lookups: `None` is a negative entry or a whiteout.
    pub children: Mutex<HashMap<Vec<u8>, Option<Arc<Dentry>>>>,
    /// Root of a filesystem mounted on this dentry.
    pub mounted: Mutex<Option<Arc<Dentry>>>,
    /// For a filesystem root: the dentry it is mounted on.
    pub mountpoint: Option<Arc<Dentry>>,
    pub fs: FsType,
    /// Set on a read-only mount's root (or a bind root remounted
    /// read-only): writes beneath fail with EROFS. See [`Dentry::readonly`].
    pub ro: std::sync::atomic::AtomicBool,
    /// Set on the root of a mount with MS_NOEXEC / MS_NODEV (see
    /// [`Dentry::noexec`], [`Dentry::nodev`]).
    pub noexec: std::sync::atomic::AtomicBool,
    pub nodev: std::sync::atomic::AtomicBool,
}

impl Dentry {
    pub fn new_root(inode: Arc<Inode>, fs: FsType, mountpoint: Option<Arc<Dentry>>) -> Arc<Dentry> {
        Dentry::new_mount_root(inode, fs, mountpoint, false)
    }

    /// The root of a mount, read-only or not.
    pub fn new_mount_root(
        inode: Arc<Inode>,
        fs: FsType,
        mountpoint: Option<Arc<Dentry>>,
        readonly: bool,
    ) -> Arc<Dentry> {
        Arc::new(Dentry {
            name: b"/".to_vec(),
            parent: None,
            inode: Mutex::new(inode),
            children: Mutex::new(HashMap::new()),
            mounted: Mutex::new(None),
            mountpoint,
            fs,
            ro: std::sync::atomic::AtomicBool::new(readonly),
            noexec: std::sync::atomic::AtomicBool::new(false),
            nodev: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn new_child(parent: &Arc<Dentry>, name: &[u8], inode: Arc<Inode>) -> Arc<Dentry> {
        Arc::new(Dentry {
            name: name.to_vec(),
            parent: Some(parent.clone()),
            inode: Mutex::new(inode),
            children: Mutex::new(HashMap::new()),
            mounted: Mutex::new(None),
            mountpoint: None,
            fs: parent.fs,
            ro: std::sync::atomic::AtomicBool::new(false),
            noexec: std::sync::atomic::AtomicBool::new(false),
            nodev: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether writes here fail with EROFS: this dentry or one above it
    /// in its filesystem is a read-only root.
    pub fn readonly(&self) -> bool {
        let mut d = self;
        loop {
            if d.ro.load(std::sync::atomic::Ordering::Relaxed) {
                return true;
            }
            match &d.parent {
                Some(p) => d = p,
                None => return false,
            }
        }
    }

    /// The root of the mount this dentry belongs to.
    fn mount_root(&self) -> &Dentry {
        let mut d = self;
        while let Some(p) = &d.parent {
            d = p;
        }
        d
    }

    /// Whether nothing beneath this mount may be executed (MS_NOEXEC).
    pub fn noexec(&self) -> bool {
        self.mount_root()
            .noexec
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether device nodes beneath this mount cannot be opened (MS_NODEV).
    pub fn nodev(&self) -> bool {
        self.mount_root()
            .nodev
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets a mount root's MS_NOEXEC and MS_NODEV.
    pub fn set_mount_flags(&self, noexec: bool, nodev: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.noexec.store(noexec, Relaxed);
        self.nodev.store(nodev, Relaxed);
    }

    pub fn inode(&self) -> Arc<Inode> {
        lock(&self.inode).clone()
    }

    pub fn meta(&self) -> Meta {
        self.inode().meta()
    }

    /// Follow mounts stacked on this dentry.
    pub fn follow_mounts(self: &Arc<Dentry>) -> Arc<Dentry> {
        let mut d = self.clone();
        loop {
            let m = lock(&d.mounted).clone();
            match m {
                Some(root) => d = root,
                None => return d,
            }
        }
    }

    /// Add an in-memory child (mount setup, devfs population).
    pub fn add_child(self: &Arc<Dentry>, name: &[u8], inode: Arc<Inode>) -> Arc<Dentry> {
        let d = Dentry::new_child(self, name, inode);
        lock(&self.children).insert(name.to_vec(), Some(d.clone()));
        d
    }

    /// Absolute path within the sandbox.
    pub fn path(self: &Arc<Dentry>) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut d = self.clone();
        loop {
            if let Some(p) = d.parent.clone() {
                parts.push(d.name.clone());
                d = p;
            } else if let Some(mp) = d.mountpoint.clone() {
                d = mp;
            } else {
                break;
            }
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }

    /// Look up one name in this directory (no mount following, no `..`).
    pub fn lookup(
        self: &Arc<Dentry>,
        name: &[u8],
        t: &crate::kernel::task::Task,
    ) -> KResult<Arc<Dentry>> {
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let inode = self.inode();
        if !inode.meta().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if let Node::Proc(p) = &inode.node {
            // Mount points inside synthetic directories are kept here.
            if let Some(Some(d)) = lock(&self.children).get(name) {
                return Ok(d.clone());
            }
            // Synthetic directories are generated on every lookup.
            let child = crate::fs::proc::lookup(p, name, t)?;
            return Ok(Dentry::new_child(self, name, child));
        }
        if let Node::MqDir = &inode.node {
            if let Some(Some(d)) = lock(&self.children).get(name) {
                return Ok(d.clone());
            }
            return crate::fs::mqueue::lookup(self, name);
        }
        let mut children = lock(&self.children);
        if let Some(c) = children.get(name) {
            return c.clone().ok_or(Errno::ENOENT);
        }
        match &inode.node {
            Node::Lower(l) => {
                let (nodes, err) = l.gofer.walk(l.node, &[name]).map_err(Errno)?;
                if let Some((node, stat)) = nodes.into_iter().next() {
                    let child = Inode::new(
                        Node::Lower(LowerNode {
                            node,
                            gofer: l.gofer.clone(),
                            host_fd: OnceLock::new(),
                        }),
                        Meta::from_gofer(&stat),
                    );
                    let d = Dentry::new_child(self, name, child);
                    children.insert(name.to_vec(), Some(d.clone()));
                    Ok(d)
                } else {
                    let e = Errno(err.unwrap_or(Errno::ENOENT.0));
                    // A miss is remembered only in the rootfs, whose lower
                    // layer does not change; a bind mount's host directory
                    // may gain the name later.
                    if e == Errno::ENOENT && self.in_rootfs() {
                        children.insert(name.to_vec(), None);
                    }
                    Err(e)
                }
            }
            _ => Err(Errno::ENOENT),
        }
    }

    /// Whether this dentry belongs to the overlay rootfs (whose lower layer
    /// is taken not to change while the sandbox runs), not to a bind mount.
    pub fn in_rootfs(&self) -> bool {
        let mut top = self;
        while let Some(p) = &top.parent {
            top = p;
        }
        self.fs == FsType::Overlay && top.mountpoint.is_none()
    }

    /// Merged directory listing: (name, ino, DT_*).
    pub fn list(
        self: &Arc<Dentry>,
        t: &crate::kernel::task::Task,
    ) -> KResult<Arc<Vec<crate::vfs::file::DirEntry>>> {
        let inode = self.inode();
        if let Node::Proc(p) = &inode.node {
            return crate::fs::proc::list(p, t).map(Arc::new);
        }
        if let Node::MqDir = &inode.node {
            return Ok(Arc::new(crate::fs::mqueue::list()));
        }
        let mut out: Vec<(Vec<u8>, u64, u8)> = Vec::new();
        let children = lock(&self.children);
        if let Node::Lower(l) = &inode.node {
            let fetch = || -> KResult<Vec<(Vec<u8>, u64, u8)>> {
                Ok(l.gofer
                    .getdents(l.node)
                    .map_err(Errno)?
                    .into_iter()
                    .map(|e| (e.name, e.ino, e.kind))
                    .collect())
            };
            let fresh;
            // Only the rootfs: a bind mount's host directory (read-only to
            // the sandbox or not) may change under it.
            let lower: &[(Vec<u8>, u64, u8)] = if self.in_rootfs() {
                if inode.lower_listing.get().is_none() {
                    let _ = inode.lower_listing.set(Arc::new(fetch()?));
                }
                match inode.lower_listing.get() {
                    // Nothing of the upper layer to merge: share the cache.
                    Some(l) if children.is_empty() => return Ok(l.clone()),
                    Some(l) => l.as_slice(),
                    None => &[],
                }
            } else {
                fresh = fetch()?;
                &fresh
            };
            for (name, ino, kind) in lower {
                // Names in the cache (entries made, replaced or deleted in
                // the upper layer) are listed from it below.
                if !children.contains_key(name) {
                    out.push((name.clone(), *ino, *kind));
                }
            }
        }
        let mut cached: Vec<_> = children
            .iter()
            .filter_map(|(n, c)| c.as_ref().map(|c| (n.clone(), c.meta())))
            .map(|(n, m)| (n, m.ino, mode_to_dt(m.mode)))
            .collect();
        cached.sort();
        out.extend(cached);
        Ok(Arc::new(out))
    }

    /// Whether the directory has no entries (for rmdir/rename).
    pub fn is_empty_dir(self: &Arc<Dentry>, t: &crate::kernel::task::Task) -> KResult<bool> {
        Ok(self.list(t)?.is_empty())
    }

    /// Make sure this dentry's inode is an upper (writable) one: copy a lower
    /// regular file's content into memory. Directories stay as they are
    /// (their upper part is the children map).
    pub fn copy_up(self: &Arc<Dentry>) -> KResult<Arc<Inode>> {
        let mut slot = lock(&self.inode);
        let inode = slot.clone();
        let Node::Lower(l) = &inode.node else {
            return Ok(inode);
        };
        let meta = inode.meta();
        let mut big = None;
        let (heap_max, filestore) = file_store(Some(self));
        let new_node = if meta.is_reg() && meta.size > heap_max {
            // Straight into the memory file (or the filestore).
            let f = crate::fs::shm::ShmFile::new_in(memory_file()?, false, filestore)?;
            let fd = l.fd()?;
            f.fill_from_fd(std::os::fd::AsRawFd::as_raw_fd(&*fd), meta.size)?;
            big = Some(f);
            Node::Mem(Mutex::new(Vec::new()))
        } else if meta.is_reg() {
            let fd = l.fd()?;
            let mut data = Vec::new();
            resize_mem(&mut data, meta.size, Errno::ENOSPC)?;
            let mut done = 0usize;
            while done < data.len() {
                let n = match nix::sys::uio::pread(&*fd, &mut data[done..], done as i64) {
                    Ok(n) => n,
                    Err(e) => {
                        account(data.len(), 0);
                        return Err(Errno::from(e));
                    }
                };
                if n == 0 {
                    break;
                }
                done += n;
            }
            resize_mem(&mut data, done as u64, Errno::ENOSPC)?;
            Node::Mem(Mutex::new(data))
        } else if meta.is_lnk() {
            Node::Symlink(l.gofer.readlink(l.node).map_err(Errno)?)
        } else {
            return Ok(inode);
        };
        let mut m = meta;
        m.dev = MEM_DEV;
        let up = Inode::new(new_node, m);
        if let Some(f) = big {
            let _ = up.shared.set(f);
        }
        // The host file's attributes come along.
        crate::fs::xattr::seed(&inode)?;
        *lock(&up.xattrs) = lock(&inode.xattrs).clone();
        *slot = up.clone();
        crate::fs::inotify::inode_replaced(&inode, &up);
        Ok(up)
    }
}
