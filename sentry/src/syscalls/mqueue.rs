//! POSIX message queue syscalls: mq_open, mq_unlink, mq_timedsend,
//! mq_timedreceive, mq_notify, mq_getsetattr (queues: `fs::mqueue`).
//! Argument checks come in Linux's order (ipc/mqueue.c).

use super::Args;
use crate::abi::*;
use crate::fs::mqueue::{self, Notification, Queue, MQ_PRIO_MAX};
use crate::kernel::task::Task;
use crate::signals::{self, SigInfo};
use crate::syscalls::file::{get_file, install};
use crate::vfs::file::{File, FileKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// struct mq_attr: mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs, 4 reserved.
type MqAttr = [i64; 8];

fn read_attr(t: &Task, addr: u64) -> KResult<MqAttr> {
    let mut raw = [0u8; 64];
    t.copy_in(addr, &mut raw)?;
    let mut out = [0i64; 8];
    for (o, c) in out.iter_mut().zip(raw.chunks_exact(8)) {
        *o = i64::from_le_bytes(c.try_into().map_err(|_| Errno::EFAULT)?);
    }
    Ok(out)
}

fn write_attr(t: &Task, addr: u64, a: &MqAttr) -> KResult<()> {
    let raw: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.copy_out(addr, &raw)
}

fn queue_file(t: &Task, fd: i32) -> KResult<(Arc<File>, Arc<Queue>)> {
    let f = get_file(t, fd)?;
    match &f.kind {
        FileKind::Mqueue(q) => {
            let q = q.clone();
            Ok((f, q))
        }
        _ => Err(Errno::EBADF),
    }
}

/// An absolute CLOCK_REALTIME timeout (EINVAL if malformed, whether or
/// not the call would block, as Linux checks it first) as a deadline.
fn deadline(t: &Task, addr: u64) -> KResult<Option<Instant>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let now = crate::syscalls::time::host_clock(t, 0)?;
    let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
    let left = ns(ts.tv_sec, ts.tv_nsec) - ns(now.tv_sec, now.tv_nsec);
    let start = Instant::now();
    if left <= 0 {
        return Ok(Some(start));
    }
    let left = Duration::from_nanos(left.min(u64::MAX as i128) as u64);
    Ok(Some(
        start
            .checked_add(left)
            .unwrap_or(start + Duration::from_secs(1 << 32)),
    ))
}

pub fn sys_mq_open(t: &mut Task, a: &Args) -> KResult<u64> {
    let attr = if a.u(3) != 0 {
        Some(read_attr(t, a.u(3))?)
    } else {
        None
    };
    let name = t.read_path(a.u(0))?;
    let (oflag, mode) = (a.int(1), a.u(2) as u16 as u32);
    let f = mqueue::open(t, &name, oflag, mode, attr.map(|x| (x[1], x[2])))?;
    install(t, f, true)
}

pub fn sys_mq_unlink(t: &mut Task, a: &Args) -> KResult<u64> {
    let name = t.read_path(a.u(0))?;
    mqueue::unlink(t, &name).map(|_| 0)
}

fn fire(t: &Task, n: Notification) {
    if n.how != mqueue::SIGEV_SIGNAL || n.signo == 0 {
        return;
    }
    if let Some(p) = t.k.process(n.owner) {
        let info = SigInfo {
            signo: n.signo,
            code: mqueue::SI_MESGQ,
            pid: t.tgid,
            uid: t.creds.uid,
            status: n.value as i32,
            addr: n.value,
        };
        signals::send_process(&t.k, &p, info);
    }
}

pub fn sys_mq_timedsend(t: &mut Task, a: &Args) -> KResult<u64> {
    let (fd, ptr, len, prio) = (a.int(0), a.u(1), a.usize(2), a.uint(3));
    let dl = deadline(t, a.u(4))?;
    if prio >= MQ_PRIO_MAX {
        return Err(Errno::EINVAL);
    }
    let (f, q) = queue_file(t, fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if len as u64 > q.msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let mut data = vec![0u8; len];
    t.copy_in(ptr, &mut data)?;
    let nonblock = f.flags() & O_NONBLOCK != 0;
    if let Some(n) = q.send((prio, data), nonblock, dl)? {
        fire(t, n);
    }
    Ok(0)
}

pub fn sys_mq_timedreceive(t: &mut Task, a: &Args) -> KResult<u64> {
    let (fd, ptr, len, prio_ptr) = (a.int(0), a.u(1), a.usize(2), a.u(3));
    let dl = deadline(t, a.u(4))?;
    let (f, q) = queue_file(t, fd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    if (len as u64) < q.msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let (prio, data) = q.receive(f.flags() & O_NONBLOCK != 0, dl)?;
    // As on Linux, a message is consumed even if it cannot be stored.
    if prio_ptr != 0 {
        t.write_obj(prio_ptr, &prio)?;
    }
    t.copy_out(ptr, &data)?;
    Ok(data.len() as u64)
}

pub fn sys_mq_notify(t: &mut Task, a: &Args) -> KResult<u64> {
    const SIGEV_THREAD: i32 = mqueue::SIGEV_THREAD;
    let (fd, sev) = (a.int(0), a.u(1));
    let n = if sev != 0 {
        let mut raw = [0u8; 64];
        t.copy_in(sev, &mut raw)?;
        let word = |i: usize| i32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let value = u64::from_le_bytes(raw[0..8].try_into().map_err(|_| Errno::EINVAL)?);
        let (signo, how) = (word(8), word(12));
        match how {
            mqueue::SIGEV_NONE => {}
            mqueue::SIGEV_SIGNAL if (0..=64).contains(&signo) => {}
            SIGEV_THREAD => {
                // Delivery through a netlink socket: the sandbox has none.
                // glibc's SIGEV_THREAD fails earlier, when it cannot create
                // its netlink socket (ENOSYS).
                let mut cookie = [0u8; 32];
                t.copy_in(value, &mut cookie)?;
                let s = get_file(t, signo)?;
                return Err(match s.kind {
                    FileKind::Socket(_) => Errno::EINVAL,
                    _ => Errno::ENOTSOCK,
                });
            }
            _ => return Err(Errno::EINVAL),
        }
        Some(Notification {
            owner: t.tgid,
            how,
            signo,
            value,
        })
    } else {
        None
    };
    let (_, q) = queue_file(t, fd)?;
    q.set_notify(t, n).map(|_| 0)
}

pub fn sys_mq_getsetattr(t: &mut Task, a: &Args) -> KResult<u64> {
    let (fd, new, old) = (a.int(0), a.u(1), a.u(2));
    let new = if new != 0 {
        Some(read_attr(t, new)?)
    } else {
        None
    };
    if let Some(n) = new {
        if n[0] & !(O_NONBLOCK as i64) != 0 {
            return Err(Errno::EINVAL);
        }
    }
    let (f, q) = queue_file(t, fd)?;
    let cur: MqAttr = [
        (f.flags() & O_NONBLOCK) as i64,
        q.maxmsg,
        q.msgsize,
        q.curmsgs(),
        0,
        0,
        0,
        0,
    ];
    if let Some(n) = new {
        let fl = f.flags();
        let fl = if n[0] & O_NONBLOCK as i64 != 0 {
            fl | O_NONBLOCK
        } else {
            fl & !O_NONBLOCK
        };
        f.flags.store(fl, std::sync::atomic::Ordering::Relaxed);
    }
    if old != 0 {
        write_attr(t, old, &cur)?;
    }
    Ok(0)
}

/// close(2) of a queue descriptor drops the caller's registration.
pub fn closed(t: &Task, f: &File) {
    if let FileKind::Mqueue(q) = &f.kind {
        q.flush(t.tgid);
    }
}
