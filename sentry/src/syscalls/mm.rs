//! Memory syscalls: mmap, munmap, mprotect, brk, mremap, madvise, msync,
//! mincore.

use super::file::get_file;
use super::Args;
use crate::abi::*;
use crate::kernel::task::Task;
use crate::mm::{Backing, USER_END};
use crate::platform::Prot;
use crate::vfs::file::FileKind;
use crate::vfs::{lock, Node};
use std::os::fd::AsRawFd;

pub fn sys_mmap(t: &mut Task, a: &Args) -> KResult<u64> {
    let (addr, len, prot, flags, fd, off) =
        (a.u(0), a.u(1), a.uint(2), a.uint(3), a.int(4), a.u(5));
    if len == 0 || !off.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    let prot = prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
    let shared = match flags & MAP_TYPE {
        MAP_SHARED | MAP_SHARED_VALIDATE => true,
        MAP_PRIVATE => false,
        _ => return Err(Errno::EINVAL),
    };
    if len > USER_END {
        return Err(Errno::ENOMEM);
    }
    if flags & MAP_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    // RLIMIT_AS bounds the address space.
    let limit = t.rlimit(9).cur;
    if limit != RLIM_INFINITY && lock(&t.mm()).mapped_bytes().saturating_add(len) > limit {
        return Err(Errno::ENOMEM);
    }
    let fixed = flags & MAP_FIXED != 0;
    let noreplace = flags & MAP_FIXED_NOREPLACE != 0;
    let mm = t.mm();
    if flags & MAP_ANONYMOUS != 0 {
        return lock(&mm).mmap(addr, len, prot, shared, fixed, noreplace, Backing::Anon);
    }
    let f = get_file(t, fd)?;
    if matches!(f.kind, FileKind::Path) {
        return Err(Errno::EBADF);
    }
    if !f.readable() {
        return Err(Errno::EACCES);
    }
    if shared && prot & PROT_WRITE != 0 && !f.writable() {
        return Err(Errno::EACCES);
    }
    if prot & PROT_EXEC != 0 && f.dentry.as_ref().is_some_and(|d| d.noexec()) {
        return Err(Errno::EPERM);
    }
    let (path, dev, ino, file_size) = match &f.dentry {
        Some(d) => {
            let m = d.meta();
            (
                String::from_utf8_lossy(&d.path()).to_string(),
                m.dev,
                m.ino,
                m.size,
            )
        }
        None => (String::new(), 0, 0, u64::MAX),
    };
    match &f.kind {
        // A host file of a writable bind mount mapped shared (or one that
        // is): its pages move into the memory file as for in-memory files;
        // writes also reach the host file, mapping stores on msync, fsync,
        // close and exit.
        FileKind::Lower { .. } | FileKind::Passthrough { .. }
            if f.dentry
                .as_ref()
                .is_some_and(|d| d.inode().writeback.get().is_some())
                || (shared && matches!(f.kind, FileKind::Passthrough { .. })) =>
        {
            let inode = f.dentry.as_ref().ok_or(Errno::ENODEV)?.inode();
            let shm = match (&f.kind, inode.shared.get()) {
                (_, Some(s)) => s,
                (FileKind::Passthrough { fd }, None) => inode.make_shared_host(&t.k.mf, fd)?,
                _ => return Err(Errno::ENODEV),
            };
            map_shm(
                t, shm, addr, len, prot, shared, fixed, noreplace, off, path, dev, ino,
            )
        }
        // The lower layer is read-only, so a copy is coherent even when shared.
        FileKind::Lower { fd: host } => lock(&mm).mmap(
            addr,
            len,
            prot,
            shared,
            fixed,
            noreplace,
            Backing::FileCopy {
                fd: host.as_raw_fd(),
                file_off: off,
                file_size,
                path,
                dev,
                ino,
            },
        ),
        // memfd and /dev/shm files, and any in-memory file mapped shared
        // (its data moves into the memory file first): one set of pages
        // for every mapping, read and write.
        // memfd and /dev/shm files, and any in-memory file mapped shared
        // (its data moves into the memory file first): one set of pages
        // for every mapping, read and write.
        FileKind::Mem(inode) if shared || inode.shm().is_some() => {
            let (_, filestore) = crate::vfs::file_store(f.dentry.as_ref());
            let shm = inode.make_shared(&t.k.mf, filestore)?;
            map_shm(
                t, shm, addr, len, prot, shared, fixed, noreplace, off, path, dev, ino,
            )
        }
        FileKind::Mem(inode) if !shared => {
            let Node::Mem(data) = &inode.node else {
                return Err(Errno::ENODEV);
            };
            let data = lock(data);
            let start = (off as usize).min(data.len());
            let place = Place {
                addr,
                len,
                prot,
                fixed,
                noreplace,
            };
            map_private_copy(
                t,
                place,
                &data[start..],
                data.len() as u64,
                off,
                path,
                dev,
                ino,
            )
        }
        FileKind::Dev(crate::fs::dev::DevKind::Zero) => {
            lock(&mm).mmap(addr, len, prot, shared, fixed, noreplace, Backing::Anon)
        }
        _ => Err(Errno::ENODEV),
    }
}

pub fn sys_munmap(t: &mut Task, a: &Args) -> KResult<u64> {
    let mm = t.mm();
    let mut g = lock(&mm);
    let file = g.maps_shared_file(a.u(0), a.u(1));
    g.munmap(a.u(0), a.u(1))?;
    drop(g);
    if file {
        // Shared mappings of host files: their pages go back to the host,
        // as the page cache would show them.
        crate::vfs::write_back_all();
    }
    Ok(0)
}

pub fn sys_mprotect(t: &mut Task, a: &Args) -> KResult<u64> {
    let prot = a.uint(2) & !(0x0100_0000 | 0x0200_0000);
    lock(&t.mm()).mprotect(a.u(0), a.u(1), prot).map(|_| 0)
}

pub fn sys_brk(t: &mut Task, a: &Args) -> KResult<u64> {
    Ok(lock(&t.mm()).brk(a.u(0)))
}

pub fn sys_mremap(t: &mut Task, a: &Args) -> KResult<u64> {
    lock(&t.mm()).mremap(a.u(0), a.u(1), a.u(2), a.uint(3), a.u(4))
}

pub fn sys_madvise(t: &mut Task, a: &Args) -> KResult<u64> {
    const MADV_DONTNEED: i32 = 4;
    const MADV_FREE: i32 = 8;
    let (addr, len, advice) = (a.u(0), a.u(1), a.int(2));
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    match advice {
        MADV_DONTNEED | MADV_FREE => lock(&t.mm()).madvise_dontneed(addr, len).map(|_| 0),
        // Hints about access patterns and huge pages change nothing visible.
        0..=3 | 9..=19 | 100 | 101 | 20..=25 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

fn check_mapped(t: &Task, addr: u64, len: u64) -> KResult<()> {
    let end = addr
        .checked_add(page_round_up(len).ok_or(Errno::ENOMEM)?)
        .ok_or(Errno::ENOMEM)?;
    let mm = t.mm();
    let mm = lock(&mm);
    let mut cur = addr;
    for v in mm.vmas() {
        if v.end <= cur {
            continue;
        }
        if v.start > cur || cur >= end {
            break;
        }
        cur = v.end;
    }
    if cur < end {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

pub fn sys_msync(t: &mut Task, a: &Args) -> KResult<u64> {
    const MS_ASYNC: i32 = 1;
    const MS_INVALIDATE: i32 = 2;
    const MS_SYNC: i32 = 4;
    let flags = a.int(2);
    if !a.u(0).is_multiple_of(PAGE_SIZE)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
    {
        return Err(Errno::EINVAL);
    }
    check_mapped(t, a.u(0), a.u(1))?;
    // Shared mappings of host files: their pages go back to the host.
    crate::vfs::write_back_all();
    Ok(0)
}

pub fn sys_mincore(t: &mut Task, a: &Args) -> KResult<u64> {
    let (addr, len) = (a.u(0), a.u(1));
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    check_mapped(t, addr, len)?;
    let pages = page_round_up(len).ok_or(Errno::ENOMEM)? / PAGE_SIZE;
    // Pages of the memory file are never swapped out.
    t.copy_out(a.u(2), &vec![1u8; pages as usize]).map(|_| 0)
}

/// Map pages of a file kept in the memory file: shared, or a private copy.
#[allow(clippy::too_many_arguments)]
fn map_shm(
    t: &Task,
    shm: &crate::fs::shm::ShmFile,
    addr: u64,
    len: u64,
    prot: Prot,
    shared: bool,
    fixed: bool,
    noreplace: bool,
    off: u64,
    path: String,
    dev: u64,
    ino: u64,
) -> KResult<u64> {
    let mm = t.mm();
    let end = off
        .checked_add(page_round_up(len).ok_or(Errno::ENOMEM)?)
        .ok_or(Errno::EINVAL)?;
    if shared
        && prot & PROT_WRITE != 0
        && shm.seals() & (crate::fs::shm::F_SEAL_WRITE | crate::fs::shm::F_SEAL_FUTURE_WRITE) != 0
    {
        return Err(Errno::EPERM);
    }
    if shared {
        let (range, base) = shm.mapping(end)?;
        lock(&mm).mmap_shared_range(
            addr,
            len,
            prot,
            fixed,
            noreplace,
            range,
            base + off,
            path,
            dev,
            ino,
            off,
        )
    } else {
        let size = shm.size();
        let mut data = vec![0u8; size.saturating_sub(off).min(len) as usize];
        let n = shm.pread(&mut data, off)?;
        data.truncate(n);
        let place = Place {
            addr,
            len,
            prot,
            fixed,
            noreplace,
        };
        map_private_copy(t, place, &data, size, off, path, dev, ino)
    }
}

/// Where and how a mapping goes (mmap's own arguments).
struct Place {
    addr: u64,
    len: u64,
    prot: Prot,
    fixed: bool,
    noreplace: bool,
}

/// A private mapping holding a copy of `data`, the bytes of a file of
/// `file_size` bytes from `file_off` on.
#[allow(clippy::too_many_arguments)]
fn map_private_copy(
    t: &Task,
    p: Place,
    data: &[u8],
    file_size: u64,
    file_off: u64,
    path: String,
    dev: u64,
    ino: u64,
) -> KResult<u64> {
    lock(&t.mm()).mmap(
        p.addr,
        p.len,
        p.prot,
        false,
        p.fixed,
        p.noreplace,
        Backing::Bytes {
            data,
            path,
            dev,
            ino,
            file_off,
            file_size,
        },
    )
}
