//! timerfd: a timer whose expirations are counted and read as a u64
//! (timerfd_create(2), timerfd_settime, timerfd_gettime). Expiry runs on
//! the kernel's timer machinery (`kernel::timers`), with a callback that
//! adds to the count instead of queueing a signal.

use crate::abi::*;
use crate::kernel::task::Task;
use crate::kernel::timers::{Notify, Timer, TimerClock};
use crate::signals::{self, WaitOutcome};
use crate::syscalls::Args;
use crate::vfs::file::{File, FileKind};
use crate::vfs::lock;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_BOOTTIME: i32 = 7;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const CAP_WAKE_ALARM: u32 = 35;

const TFD_TIMER_ABSTIME: i32 = 1;
const TFD_TIMER_CANCEL_ON_SET: i32 = 2;
/// ioctl(TFD_IOC_SET_TICKS): `_IOW('T', 0, u64)`.
pub const TFD_IOC_SET_TICKS: u64 = 0x4008_5400;

/// The expiration count and its waiters.
#[derive(Default)]
pub struct Ticks {
    n: Mutex<u64>,
    cv: Condvar,
}

impl signals::Wakeable for Ticks {
    fn wake_all(&self) {
        let _g = lock(&self.n);
        self.cv.notify_all();
    }
}

impl Ticks {
    fn add(&self, n: u64) {
        let mut g = lock(&self.n);
        *g = g.saturating_add(n);
        self.cv.notify_all();
        drop(g);
        crate::syscalls::poll::hub().notify();
    }
}

pub struct TimerFd {
    clock: i32,
    timer: Arc<Timer>,
    ticks: Arc<Ticks>,
    pub ino: u64,
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        // Ends the timer's host thread.
        self.timer.delete();
    }
}

impl TimerFd {
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut g = lock(&self.ticks.n);
        while *g == 0 {
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let (ng, out) = signals::wait(self.ticks.clone(), &self.ticks.cv, g, None);
            g = ng;
            if matches!(out, WaitOutcome::Interrupted) && *g == 0 {
                return Err(Errno::ERESTARTSYS);
            }
        }
        buf[..8].copy_from_slice(&g.to_le_bytes());
        *g = 0;
        Ok(8)
    }

    pub fn poll(&self) -> i16 {
        use crate::syscalls::poll::{POLLIN, POLLRDNORM};
        if *lock(&self.ticks.n) > 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }

    /// TFD_IOC_SET_TICKS: set the count (non-zero) and wake readers.
    pub fn set_ticks(&self, n: u64) -> KResult<()> {
        if n == 0 {
            return Err(Errno::EINVAL);
        }
        *lock(&self.ticks.n) = 0;
        self.ticks.add(n);
        Ok(())
    }
}

fn clock_now(t: &Task, clock: i32) -> KResult<Duration> {
    let id = match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM => CLOCK_REALTIME,
        CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => CLOCK_BOOTTIME,
        _ => CLOCK_MONOTONIC,
    };
    let ts = crate::syscalls::time::host_clock(t, id)?;
    Ok(Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    ))
}

pub fn sys_timerfd_create(t: &mut Task, a: &Args) -> KResult<u64> {
    let (clock, flags) = (a.int(0), a.int(1));
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0
        || !matches!(
            clock,
            CLOCK_REALTIME
                | CLOCK_MONOTONIC
                | CLOCK_BOOTTIME
                | CLOCK_REALTIME_ALARM
                | CLOCK_BOOTTIME_ALARM
        )
    {
        return Err(Errno::EINVAL);
    }
    if matches!(clock, CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM)
        && !t.creds().has_cap(CAP_WAKE_ALARM)
    {
        return Err(Errno::EPERM);
    }
    let ticks = Arc::new(Ticks::default());
    let weak = Arc::downgrade(&ticks);
    let notify = Notify::Call(Arc::new(move |n| {
        if let Some(t) = weak.upgrade() {
            t.add(n);
        }
    }));
    let timer = Timer::new(&t.k, t.proc_(), TimerClock::Real, notify);
    let tfd = Arc::new(TimerFd {
        clock,
        timer,
        ticks,
        ino: crate::vfs::new_ino(),
    });
    let f = File::new(None, FileKind::TimerFd(tfd), O_RDWR | (flags & O_NONBLOCK));
    crate::syscalls::file::install(t, f, flags & O_CLOEXEC != 0)
}

fn timerfd_of(t: &Task, fd: i32) -> KResult<Arc<TimerFd>> {
    match &crate::syscalls::file::get_file(t, fd)?.kind {
        FileKind::TimerFd(x) => Ok(x.clone()),
        _ => Err(Errno::EINVAL),
    }
}

fn ts_dur(ts: &Timespec) -> KResult<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn write_itimerspec(t: &Task, addr: u64, (value, interval): (Duration, Duration)) -> KResult<()> {
    let ts = |d: Duration| Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    };
    t.write_obj(addr, &ts(interval))?;
    t.write_obj(addr + 16, &ts(value))
}

pub fn sys_timerfd_settime(t: &mut Task, a: &Args) -> KResult<u64> {
    let (fd, flags) = (a.int(0), a.int(1));
    let i: Timespec = t.read_obj(a.u(2))?;
    let v: Timespec = t.read_obj(a.u(2) + 16)?;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let (interval, value) = (ts_dur(&i)?, ts_dur(&v)?);
    let tfd = timerfd_of(t, fd)?;
    // TFD_TIMER_CANCEL_ON_SET is accepted: the sandbox cannot set the
    // realtime clock, so such a timer is never cancelled.
    let delay = if value.is_zero() {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        let now = clock_now(t, tfd.clock)?;
        Some(value.as_nanos() as i128 - now.as_nanos() as i128)
    } else {
        Some(value.as_nanos() as i128)
    };
    // A new setting forgets expirations not yet read.
    *lock(&tfd.ticks.n) = 0;
    let old = tfd.timer.arm(delay, interval);
    crate::syscalls::poll::hub().notify();
    if a.u(3) != 0 {
        write_itimerspec(t, a.u(3), old)?;
    }
    Ok(0)
}

pub fn sys_timerfd_gettime(t: &mut Task, a: &Args) -> KResult<u64> {
    let tfd = timerfd_of(t, a.int(0))?;
    write_itimerspec(t, a.u(1), tfd.timer.get()).map(|_| 0)
}
