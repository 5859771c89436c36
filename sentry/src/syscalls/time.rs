//! Clocks and sleeps.

use super::Args;
use crate::abi::*;
use crate::kernel::task::Task;

pub(crate) fn host_clock(t: &Task, clock: i32) -> KResult<Timespec> {
    let cpu = |ns: u64| Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    };
    let host = match clock {
        0..=1 | 4..=7 | 9 | 11 => clock,
        // CPU clocks of the caller: its thread group's (the threads gone
        // included) and its own thread's.
        2 => {
            let p = t.proc_();
            return Ok(cpu(crate::kernel::timers::process_cpu_ns(&t.k, p)
                + p.cpu_dead_ns.load(std::sync::atomic::Ordering::Relaxed)));
        }
        3 => return Ok(cpu(crate::kernel::timers::stub_cpu_ns(t.ctx.host_pid()))),
        _ => return Err(Errno::EINVAL),
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter.
    if unsafe { libc::clock_gettime(host, &mut ts) } != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Timespec {
        tv_sec: ts.tv_sec,
        tv_nsec: ts.tv_nsec,
    })
}

pub fn sys_clock_gettime(t: &mut Task, a: &Args) -> KResult<u64> {
    let ts = host_clock(t, a.int(0))?;
    t.write_obj(a.u(1), &ts).map(|_| 0)
}

pub fn sys_clock_getres(t: &mut Task, a: &Args) -> KResult<u64> {
    let clock = a.int(0);
    host_clock(t, clock)?;
    let res = match clock {
        5 | 6 => Timespec {
            tv_sec: 0,
            tv_nsec: 4_000_000,
        },
        _ => Timespec {
            tv_sec: 0,
            tv_nsec: 1,
        },
    };
    if a.u(1) != 0 {
        t.write_obj(a.u(1), &res)?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.u(0) != 0 {
        let ts = host_clock(t, 0)?;
        t.write_obj(
            a.u(0),
            &Timeval {
                tv_sec: ts.tv_sec,
                tv_usec: ts.tv_nsec / 1000,
            },
        )?;
    }
    if a.u(1) != 0 {
        t.write_obj(a.u(1), &[0i32; 2])?;
    }
    Ok(0)
}

pub fn sys_time(t: &mut Task, a: &Args) -> KResult<u64> {
    let ts = host_clock(t, 0)?;
    if a.u(0) != 0 {
        t.write_obj(a.u(0), &ts.tv_sec)?;
    }
    Ok(ts.tv_sec as u64)
}

/// Sleep until `deadline` on `clock`; a signal interrupts with `restart`.
fn sleep_until(t: &Task, clock: i32, deadline: Timespec, restart: Errno) -> KResult<()> {
    let s = t.info.sleeper.clone();
    loop {
        let now = host_clock(t, clock)?;
        let left = (deadline.tv_sec - now.tv_sec) as i128 * 1_000_000_000
            + (deadline.tv_nsec - now.tv_nsec) as i128;
        if left <= 0 {
            return Ok(());
        }
        let d = std::time::Instant::now()
            + std::time::Duration::from_nanos(left.min(u64::MAX as i128 / 2) as u64);
        let g = crate::vfs::lock(&s.m);
        let (_g, out) = crate::signals::wait(s.clone(), &s.cv, g, Some(d));
        if let crate::signals::WaitOutcome::Interrupted = out {
            return Err(restart);
        }
    }
}

fn check_ts(ts: &Timespec) -> KResult<()> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn add(a: Timespec, b: Timespec) -> Timespec {
    let mut s = a.tv_sec.saturating_add(b.tv_sec);
    let mut ns = a.tv_nsec + b.tv_nsec;
    if ns >= 1_000_000_000 {
        ns -= 1_000_000_000;
        s = s.saturating_add(1);
    }
    Timespec {
        tv_sec: s,
        tv_nsec: ns,
    }
}

/// A relative sleep. Interrupted by a signal that runs a handler it fails
/// with EINTR (remaining time in `rem`); interrupted otherwise (a stop and
/// continue) it resumes toward the same deadline, as Linux's
/// restart_syscall does.
fn relative_sleep(t: &mut Task, clock: i32, req: Timespec, rem: u64) -> KResult<u64> {
    let deadline = match t.restart_deadline.take() {
        Some((c, d)) if c == clock => d,
        _ => add(host_clock(t, clock)?, req),
    };
    match sleep_until(t, clock, deadline, Errno::ERESTART_RESTARTBLOCK) {
        Err(Errno::ERESTART_RESTARTBLOCK) => {
            if rem != 0 {
                let now = host_clock(t, clock)?;
                let left = ((deadline.tv_sec - now.tv_sec) * 1_000_000_000
                    + (deadline.tv_nsec - now.tv_nsec))
                    .max(0);
                t.write_obj(
                    rem,
                    &Timespec {
                        tv_sec: left / 1_000_000_000,
                        tv_nsec: left % 1_000_000_000,
                    },
                )?;
            }
            t.restart_deadline = Some((clock, deadline));
            Err(Errno::ERESTART_RESTARTBLOCK)
        }
        r => r.map(|_| 0),
    }
}

pub fn sys_nanosleep(t: &mut Task, a: &Args) -> KResult<u64> {
    let req: Timespec = t.read_obj(a.u(0))?;
    check_ts(&req)?;
    relative_sleep(t, 1, req, a.u(1))
}

pub fn sys_clock_nanosleep(t: &mut Task, a: &Args) -> KResult<u64> {
    const TIMER_ABSTIME: i32 = 1;
    let (clock, flags) = (a.int(0), a.int(1));
    if !matches!(clock, 0 | 1 | 7 | 8 | 9 | 11) {
        return Err(Errno::EINVAL);
    }
    let clock = if clock == 8 {
        0
    } else if clock == 9 {
        7
    } else {
        clock
    };
    let req: Timespec = t.read_obj(a.u(2))?;
    check_ts(&req)?;
    if flags & TIMER_ABSTIME == 0 {
        return relative_sleep(t, clock, req, a.u(3));
    }
    sleep_until(t, clock, req, Errno::ERESTARTNOHAND).map(|_| 0)
}
