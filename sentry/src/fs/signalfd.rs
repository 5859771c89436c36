//! signalfd: reading pending signals as `struct signalfd_siginfo`
//! (signalfd(2), signalfd4). A read dequeues the caller's signals that are
//! in the fd's mask, thread-directed first, then process-directed; poll
//! reports readable while one is pending for the polling thread.

use crate::abi::*;
use crate::kernel::task::Task;
use crate::kernel::ThreadInfo;
use crate::signals::{self, SigInfo, WaitOutcome};
use crate::syscalls::Args;
use crate::vfs::file::{File, FileKind};
use crate::vfs::lock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const SIGINFO_SIZE: usize = 128;
const SI_TIMER: i32 = -2;
const SI_SIGIO: i32 = -5;
const SI_KERNEL: i32 = 0x80;

pub struct SignalFd {
    mask: AtomicU64,
    pub ino: u64,
}

impl SignalFd {
    fn mask(&self) -> u64 {
        self.mask.load(Ordering::Relaxed)
    }

    /// Take one pending signal in the mask: the thread's queue first.
    fn take(&self, th: &ThreadInfo) -> Option<SigInfo> {
        let mask = self.mask();
        for q in [&th.signals, &th.proc_.signals] {
            let mut q = lock(q);
            let sig = q
                .pending
                .keys()
                .copied()
                .find(|&s| signals::bit(s) & mask != 0);
            if let Some(s) = sig {
                return q.pending.remove(&s);
            }
        }
        None
    }

    /// Read as many signals as fit (at least one, waiting unless
    /// non-blocking), 128 bytes each.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        let max = buf.len() / SIGINFO_SIZE;
        if max == 0 {
            return Err(Errno::EINVAL);
        }
        let th = signals::current_thread().ok_or(Errno::EINVAL)?;
        let first = match self.take(&th) {
            Some(i) => i,
            None if nonblock => return Err(Errno::EAGAIN),
            None => self.wait(&th)?,
        };
        buf[..SIGINFO_SIZE].copy_from_slice(&encode(&first));
        let mut n = 1;
        while n < max {
            let Some(i) = self.take(&th) else { break };
            buf[n * SIGINFO_SIZE..(n + 1) * SIGINFO_SIZE].copy_from_slice(&encode(&i));
            n += 1;
        }
        Ok(n * SIGINFO_SIZE)
    }

    /// Sleep until a signal of the mask is pending. The sleeper is
    /// registered as the thread's blocker before the queues are checked,
    /// so a sender that queues after the check finds it and wakes it; any
    /// signal the thread does not block interrupts the read.
    fn wait(&self, th: &ThreadInfo) -> KResult<SigInfo> {
        let s = th.sleeper.clone();
        loop {
            let g = lock(&s.m);
            *lock(&th.blocker) = Some(s.clone());
            if let Some(i) = self.take(th) {
                *lock(&th.blocker) = None;
                return Ok(i);
            }
            let (g, out) = signals::wait(s.clone(), &s.cv, g, None);
            drop(g);
            if let WaitOutcome::Interrupted = out {
                return self.take(th).ok_or(Errno::ERESTARTSYS);
            }
        }
    }

    pub fn poll(&self) -> i16 {
        use crate::syscalls::poll::{POLLIN, POLLRDNORM};
        let Some(th) = signals::current_thread() else {
            return 0;
        };
        let pending = lock(&th.signals).bits() | lock(&th.proc_.signals).bits();
        if pending & self.mask() != 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }
}

/// struct signalfd_siginfo, filled per siginfo layout as Linux does.
fn encode(i: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut b = [0u8; SIGINFO_SIZE];
    let put32 = |b: &mut [u8; SIGINFO_SIZE], off: usize, v: u32| {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes())
    };
    put32(&mut b, 0, i.signo as u32);
    put32(&mut b, 8, i.code as u32);
    let fault = matches!(i.signo, 4 | 5 | 7 | 8 | 11) && i.code > 0 && i.code < SI_KERNEL;
    let chld = i.signo == signals::SIGCHLD && i.code > 0 && i.code < SI_KERNEL;
    if fault {
        b[72..80].copy_from_slice(&i.addr.to_le_bytes());
    } else if chld {
        put32(&mut b, 12, i.pid as u32);
        put32(&mut b, 16, i.uid);
        put32(&mut b, 40, i.status as u32);
    } else if i.code == SI_TIMER {
        // Timer id, overrun (not tracked per signal), the sigval.
        put32(&mut b, 24, i.pid as u32);
        put32(&mut b, 44, i.addr as u32);
        b[48..56].copy_from_slice(&i.addr.to_le_bytes());
    } else if i.code == SI_SIGIO || (i.code > 0 && i.code < SI_KERNEL) {
        // SIL_POLL: band and fd, which the sentry does not generate.
    } else if i.code < 0 {
        // SIL_RT: sigqueue, tkill.
        put32(&mut b, 12, i.pid as u32);
        put32(&mut b, 16, i.uid);
        let v = if i.code == -1 { i.addr } else { 0 };
        put32(&mut b, 44, v as u32);
        b[48..56].copy_from_slice(&v.to_le_bytes());
    } else {
        // SIL_KILL: SI_USER, SI_KERNEL.
        put32(&mut b, 12, i.pid as u32);
        put32(&mut b, 16, i.uid);
    }
    b
}

pub fn sys_signalfd4(t: &mut Task, a: &Args) -> KResult<u64> {
    let (fd, flags) = (a.int(0), a.int(3));
    if a.u(2) != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.read_obj(a.u(1))?;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask = mask & !signals::UNBLOCKABLE;
    if fd != -1 {
        let f = crate::syscalls::file::get_file(t, fd)?;
        let FileKind::SignalFd(s) = &f.kind else {
            return Err(Errno::EINVAL);
        };
        s.mask.store(mask, Ordering::Relaxed);
        crate::syscalls::poll::hub().notify();
        return Ok(fd as u64);
    }
    let s = Arc::new(SignalFd {
        mask: AtomicU64::new(mask),
        ino: crate::vfs::new_ino(),
    });
    let f = File::new(None, FileKind::SignalFd(s), O_RDWR | (flags & O_NONBLOCK));
    crate::syscalls::file::install(t, f, flags & O_CLOEXEC != 0)
}

pub fn sys_signalfd(t: &mut Task, a: &Args) -> KResult<u64> {
    sys_signalfd4(t, &Args([a.u(0), a.u(1), a.u(2), 0, 0, 0]))
}
