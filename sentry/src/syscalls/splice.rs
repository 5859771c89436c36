//! Moving data between files without a user buffer: sendfile(2),
//! splice(2), tee(2), copy_file_range(2); and sync(2)/syncfs(2). The
//! sentry copies through its own buffer; what each call accepts, and its
//! errors, follow Linux.

use super::file::{get_file, write_file};
use super::Args;
use crate::abi::*;
use crate::fs::pipe::Pipe;
use crate::kernel::task::Task;
use crate::vfs::file::{File, FileKind};
use crate::vfs::lock;
use std::sync::Arc;

/// Linux caps one transfer at this many bytes.
const MAX_RW: usize = 0x7fff_f000;
/// Bytes moved per step.
const STEP: usize = 64 << 10;
const SPLICE_F_NONBLOCK: u32 = 2;

/// The pipe behind a pipe end or an opened FIFO.
fn pipe_of(f: &File) -> Option<Arc<Pipe>> {
    match &f.kind {
        FileKind::Pipe { pipe, .. } | FileKind::Fifo { pipe, .. } => Some(pipe.clone()),
        _ => None,
    }
}

/// A blocking write into a pipe; a pipe without readers raises SIGPIPE.
fn pipe_write(t: &Task, pipe: &Arc<Pipe>, data: &[u8]) -> KResult<usize> {
    let r = pipe.write(data, false);
    if r == Err(Errno::EPIPE) {
        super::file::raise_sigpipe(t);
    }
    r
}

/// An optional `loff_t *` argument.
fn read_off(t: &Task, ptr: u64) -> KResult<Option<u64>> {
    if ptr == 0 {
        return Ok(None);
    }
    let v: i64 = t.read_obj(ptr)?;
    if v < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(v as u64))
}

fn is_regular(f: &File) -> KResult<bool> {
    Ok(f.stat()?.st_mode & S_IFMT == S_IFREG)
}

/// Read at the caller's offset or the file's position (not advanced:
/// the caller moves it by what was written).
fn read_at(f: &File, buf: &mut [u8], pos: u64) -> KResult<usize> {
    if f.is_seekable() {
        f.pread(buf, pos)
    } else {
        f.read(buf)
    }
}

pub fn sys_sendfile(t: &mut Task, a: &Args) -> KResult<u64> {
    let (out_fd, in_fd, offp, count) = (a.int(0), a.int(1), a.u(2), a.usize(3));
    let inf = get_file(t, in_fd)?;
    let outf = get_file(t, out_fd)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    if outf.flags() & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    // The source must be a file one can read at an offset (not a pipe or
    // a socket, not a directory).
    if !inf.is_seekable() || matches!(inf.kind, FileKind::Dir { .. }) {
        return Err(if offp != 0 && pipe_of(&inf).is_some() {
            Errno::ESPIPE
        } else {
            Errno::EINVAL
        });
    }
    let off = read_off(t, offp)?;
    let mut pos = match off {
        Some(o) => o,
        None => *lock(&inf.pos),
    };
    let count = count.min(MAX_RW);
    let mut done = 0usize;
    let mut buf = vec![0u8; STEP.min(count)];
    while done < count {
        let want = STEP.min(count - done);
        let n = match inf.pread(&mut buf[..want], pos) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        let w = match write_file(t, &outf, &buf[..n], None) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w;
        pos += w as u64;
        if w < n {
            break;
        }
    }
    match off {
        Some(_) => t.write_obj(offp, &(pos as i64))?,
        None => *lock(&inf.pos) = pos,
    }
    Ok(done as u64)
}

pub fn sys_copy_file_range(t: &mut Task, a: &Args) -> KResult<u64> {
    let (in_fd, in_offp, out_fd, out_offp, len, flags) =
        (a.int(0), a.u(1), a.int(2), a.u(3), a.usize(4), a.uint(5));
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = get_file(t, in_fd)?;
    let outf = get_file(t, out_fd)?;
    if !inf.readable() || !outf.writable() || outf.flags() & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    for f in [&inf, &outf] {
        if matches!(f.kind, FileKind::Dir { .. }) {
            return Err(Errno::EISDIR);
        }
        if !is_regular(f)? {
            return Err(Errno::EINVAL);
        }
    }
    let in_off = read_off(t, in_offp)?;
    let out_off = read_off(t, out_offp)?;
    let mut rpos = in_off.unwrap_or_else(|| *lock(&inf.pos));
    let mut wpos = out_off.unwrap_or_else(|| *lock(&outf.pos));
    let len = len.min(MAX_RW);
    let (si, so) = (inf.stat()?, outf.stat()?);
    if si.st_dev == so.st_dev && si.st_ino == so.st_ino {
        let overlap =
            rpos < wpos.saturating_add(len as u64) && wpos < rpos.saturating_add(len as u64);
        if overlap {
            return Err(Errno::EINVAL);
        }
    }
    let mut done = 0usize;
    let mut buf = vec![0u8; STEP.min(len)];
    while done < len {
        let want = STEP.min(len - done);
        let n = match inf.pread(&mut buf[..want], rpos) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        let w = match write_file(t, &outf, &buf[..n], Some(wpos)) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w;
        rpos += w as u64;
        wpos += w as u64;
        if w < n {
            break;
        }
    }
    match in_off {
        Some(_) => t.write_obj(in_offp, &(rpos as i64))?,
        None => *lock(&inf.pos) = rpos,
    }
    match out_off {
        Some(_) => t.write_obj(out_offp, &(wpos as i64))?,
        None => *lock(&outf.pos) = wpos,
    }
    Ok(done as u64)
}

pub fn sys_splice(t: &mut Task, a: &Args) -> KResult<u64> {
    let (in_fd, in_offp, out_fd, out_offp, len, flags) =
        (a.int(0), a.u(1), a.int(2), a.u(3), a.usize(4), a.uint(5));
    let inf = get_file(t, in_fd)?;
    let outf = get_file(t, out_fd)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    let (ip, op) = (pipe_of(&inf), pipe_of(&outf));
    if ip.is_none() && op.is_none() {
        return Err(Errno::EINVAL);
    }
    if let (Some(x), Some(y)) = (&ip, &op) {
        if Arc::ptr_eq(x, y) {
            return Err(Errno::EINVAL);
        }
    }
    if (ip.is_some() && in_offp != 0) || (op.is_some() && out_offp != 0) {
        return Err(Errno::ESPIPE);
    }
    if outf.flags() & O_APPEND != 0 && op.is_none() {
        return Err(Errno::EINVAL);
    }
    for (f, p) in [(&inf, in_offp), (&outf, out_offp)] {
        if p != 0 && !f.is_seekable() {
            return Err(Errno::ESPIPE);
        }
    }
    let in_off = read_off(t, in_offp)?;
    let out_off = read_off(t, out_offp)?;
    let len = len.min(MAX_RW);
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    if let Some(pipe) = &ip {
        // From a pipe: take what is queued (waiting as read would), then
        // hand all of it to the destination.
        let pipe_nonblock = nonblock || inf.flags() & O_NONBLOCK != 0;
        let mut buf = vec![0u8; len.min(pipe.capacity())];
        let n = pipe.read(&mut buf, pipe_nonblock)?;
        if n == 0 {
            return Ok(0);
        }
        let w = match (&op, out_off) {
            (Some(o), _) => pipe_write(t, o, &buf[..n])?,
            (None, Some(off)) => {
                let w = write_file(t, &outf, &buf[..n], Some(off))?;
                t.write_obj(out_offp, &((off + w as u64) as i64))?;
                w
            }
            (None, None) => write_file(t, &outf, &buf[..n], None)?,
        };
        return Ok(w as u64);
    }
    // Into a pipe: read no more than fits, so nothing read is lost.
    let Some(pipe) = &op else {
        return Err(Errno::EINVAL);
    };
    let pipe_nonblock = nonblock || outf.flags() & O_NONBLOCK != 0;
    let room = pipe.room();
    if room == 0 && pipe_nonblock {
        return Err(Errno::EAGAIN);
    }
    let want = len
        .min(if room == 0 { pipe.capacity() } else { room })
        .min(STEP);
    let mut buf = vec![0u8; want];
    let pos = match in_off {
        Some(o) => o,
        None => *lock(&inf.pos),
    };
    let n = read_at(&inf, &mut buf, pos)?;
    if n == 0 {
        return Ok(0);
    }
    let w = pipe_write(t, pipe, &buf[..n])?;
    if inf.is_seekable() {
        match in_off {
            Some(o) => t.write_obj(in_offp, &((o + w as u64) as i64))?,
            None => *lock(&inf.pos) = pos + w as u64,
        }
    }
    Ok(w as u64)
}

pub fn sys_tee(t: &mut Task, a: &Args) -> KResult<u64> {
    let (in_fd, out_fd, len, flags) = (a.int(0), a.int(1), a.usize(2), a.uint(3));
    let inf = get_file(t, in_fd)?;
    let outf = get_file(t, out_fd)?;
    if !inf.readable() || !outf.writable() {
        return Err(Errno::EBADF);
    }
    let (Some(ip), Some(op)) = (pipe_of(&inf), pipe_of(&outf)) else {
        return Err(Errno::EINVAL);
    };
    if Arc::ptr_eq(&ip, &op) {
        return Err(Errno::EINVAL);
    }
    let len = len.min(MAX_RW);
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let room = op.room();
    if room == 0 && (nonblock || outf.flags() & O_NONBLOCK != 0) {
        return Err(Errno::EAGAIN);
    }
    let mut buf = vec![0u8; len.min(room.max(1)).min(ip.capacity())];
    let n = ip.peek(&mut buf, nonblock || inf.flags() & O_NONBLOCK != 0)?;
    if n == 0 {
        return Ok(0);
    }
    pipe_write(t, &op, &buf[..n]).map(|w| w as u64)
}

/// sync(2): the sentry's files are in memory, and writes to bind mounts
/// go straight to the host's files; nothing waits to be flushed.
pub fn sys_sync(_t: &mut Task, _a: &Args) -> KResult<u64> {
    Ok(0)
}

pub fn sys_syncfs(t: &mut Task, a: &Args) -> KResult<u64> {
    get_file(t, a.int(0)).map(|_| 0)
}
