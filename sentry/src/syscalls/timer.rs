//! alarm, setitimer/getitimer, and POSIX timers.

use super::Args;
use crate::abi::*;
use crate::kernel::task::Task;
use crate::kernel::timers::{Notify, Timer, TimerClock};
use crate::vfs::lock;
use std::sync::Arc;
use std::time::Duration;

const ITIMER_REAL: i32 = 0;
const ITIMER_VIRTUAL: i32 = 1;
const ITIMER_PROF: i32 = 2;

fn itimer(t: &Task, which: i32) -> KResult<Arc<Timer>> {
    let (signo, clock) = match which {
        ITIMER_REAL => (libc::SIGALRM, TimerClock::Real),
        ITIMER_VIRTUAL => (libc::SIGVTALRM, TimerClock::ProcessCpu),
        ITIMER_PROF => (libc::SIGPROF, TimerClock::ProcessCpu),
        _ => return Err(Errno::EINVAL),
    };
    let p = t.proc_().clone();
    let mut slots = lock(&p.itimers);
    let slot = &mut slots[which as usize];
    if let Some(tm) = slot {
        return Ok(tm.clone());
    }
    let tm = Timer::new(
        &t.k,
        &p,
        clock,
        Notify::Process {
            signo,
            code: 0x80, /* SI_KERNEL */
            value: 0,
            timer_id: 0,
        },
    );
    *slot = Some(tm.clone());
    Ok(tm)
}

fn tv_to_dur(tv: &Timeval) -> KResult<Duration> {
    if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

fn dur_to_tv(d: Duration) -> Timeval {
    // Round up so that a live timer never reads as zero.
    let us = d.as_nanos().div_ceil(1000);
    Timeval {
        tv_sec: (us / 1_000_000) as i64,
        tv_usec: (us % 1_000_000) as i64,
    }
}

fn write_itimerval(t: &Task, addr: u64, v: (Duration, Duration)) -> KResult<()> {
    t.write_obj(addr, &dur_to_tv(v.1))?;
    t.write_obj(addr + 16, &dur_to_tv(v.0))
}

pub fn sys_getitimer(t: &mut Task, a: &Args) -> KResult<u64> {
    let tm = itimer(t, a.int(0))?;
    write_itimerval(t, a.u(1), tm.get()).map(|_| 0)
}

pub fn sys_setitimer(t: &mut Task, a: &Args) -> KResult<u64> {
    let which = a.int(0);
    let tm = itimer(t, which)?;
    let (interval, value) = if a.u(1) == 0 {
        (Duration::ZERO, Duration::ZERO)
    } else {
        let i: Timeval = t.read_obj(a.u(1))?;
        let v: Timeval = t.read_obj(a.u(1) + 16)?;
        (tv_to_dur(&i)?, tv_to_dur(&v)?)
    };
    let old = tm.set(value, interval);
    if a.u(2) != 0 {
        write_itimerval(t, a.u(2), old)?;
    }
    Ok(0)
}

pub fn sys_alarm(t: &mut Task, a: &Args) -> KResult<u64> {
    let tm = itimer(t, ITIMER_REAL)?;
    let (left, _) = tm.set(Duration::from_secs(a.uint(0) as u64), Duration::ZERO);
    // Remaining seconds, rounded to nearest, at least 1 if armed.
    let mut secs = left.as_secs() + u64::from(left.subsec_nanos() >= 500_000_000);
    if secs == 0 && !left.is_zero() {
        secs = 1;
    }
    Ok(secs)
}

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
const SI_TIMER: i32 = -2;

pub fn sys_timer_create(t: &mut Task, a: &Args) -> KResult<u64> {
    let clock = match a.int(0) {
        0 | 1 | 4 | 7 => TimerClock::Real, // REALTIME, MONOTONIC, MONOTONIC_RAW, BOOTTIME
        2 => TimerClock::ProcessCpu,       // PROCESS_CPUTIME_ID
        8 | 9 => return Err(Errno::EPERM), // *_ALARM need CAP_WAKE_ALARM
        _ => return Err(Errno::EINVAL),
    };
    let p = t.proc_().clone();
    let id = {
        let timers = lock(&p.posix_timers);
        if timers.len() >= 4096 {
            return Err(Errno::EAGAIN);
        }
        (0..).find(|i| !timers.contains_key(i)).unwrap_or(0)
    };
    let notify = if a.u(1) == 0 {
        Notify::Process {
            signo: libc::SIGALRM,
            code: SI_TIMER,
            value: id as u64,
            timer_id: id,
        }
    } else {
        // struct sigevent: sigev_value (8), sigev_signo (4), sigev_notify (4), tid (4).
        let value: u64 = t.read_obj(a.u(1))?;
        let signo: i32 = t.read_obj(a.u(1) + 8)?;
        let how: i32 = t.read_obj(a.u(1) + 12)?;
        let tid: i32 = t.read_obj(a.u(1) + 16)?;
        match how {
            SIGEV_NONE => Notify::None,
            SIGEV_SIGNAL | SIGEV_THREAD => {
                if !(1..=64).contains(&signo) {
                    return Err(Errno::EINVAL);
                }
                Notify::Process {
                    signo,
                    code: SI_TIMER,
                    value,
                    timer_id: id,
                }
            }
            SIGEV_THREAD_ID => {
                if !(1..=64).contains(&signo) {
                    return Err(Errno::EINVAL);
                }
                match t.k.thread(tid) {
                    Some(th) if th.tgid == t.tgid => {}
                    _ => return Err(Errno::EINVAL),
                }
                Notify::Thread {
                    tid,
                    signo,
                    code: SI_TIMER,
                    value,
                    timer_id: id,
                }
            }
            _ => return Err(Errno::EINVAL),
        }
    };
    let tm = Timer::new(&t.k, &p, clock, notify);
    lock(&p.posix_timers).insert(id, tm);
    t.write_obj(a.u(2), &id)?;
    Ok(0)
}

fn posix_timer(t: &Task, id: i32) -> KResult<Arc<Timer>> {
    lock(&t.proc_().posix_timers)
        .get(&id)
        .cloned()
        .ok_or(Errno::EINVAL)
}

fn ts_dur(ts: &Timespec) -> KResult<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn dur_ts(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    }
}

fn write_itimerspec(t: &Task, addr: u64, v: (Duration, Duration)) -> KResult<()> {
    t.write_obj(addr, &dur_ts(v.1))?;
    t.write_obj(addr + 16, &dur_ts(v.0))
}

pub fn sys_timer_settime(t: &mut Task, a: &Args) -> KResult<u64> {
    const TIMER_ABSTIME: i32 = 1;
    let tm = posix_timer(t, a.int(0))?;
    let flags = a.int(1);
    if flags & !TIMER_ABSTIME != 0 {
        return Err(Errno::EINVAL);
    }
    let i: Timespec = t.read_obj(a.u(2))?;
    let v: Timespec = t.read_obj(a.u(2) + 16)?;
    let (interval, mut value) = (ts_dur(&i)?, ts_dur(&v)?);
    if flags & TIMER_ABSTIME != 0 && !value.is_zero() {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid out-parameter.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
        let now = Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec as u32);
        value = value.saturating_sub(now).max(Duration::from_nanos(1));
    }
    let old = tm.set(value, interval);
    if a.u(3) != 0 {
        write_itimerspec(t, a.u(3), old)?;
    }
    Ok(0)
}

pub fn sys_timer_gettime(t: &mut Task, a: &Args) -> KResult<u64> {
    let tm = posix_timer(t, a.int(0))?;
    write_itimerspec(t, a.u(1), tm.get()).map(|_| 0)
}

pub fn sys_timer_getoverrun(t: &mut Task, a: &Args) -> KResult<u64> {
    let tm = posix_timer(t, a.int(0))?;
    Ok(tm.overrun().min(i32::MAX as u64))
}

pub fn sys_timer_delete(t: &mut Task, a: &Args) -> KResult<u64> {
    let tm = lock(&t.proc_().posix_timers)
        .remove(&a.int(0))
        .ok_or(Errno::EINVAL)?;
    tm.delete();
    Ok(0)
}
