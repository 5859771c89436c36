//! futex(2).

use super::Args;
use crate::abi::*;
use crate::kernel::futex::Key;
use crate::kernel::task::Task;
use crate::vfs::lock;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;

fn key(t: &Task, addr: u64, private: bool) -> KResult<Key> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let g = lock(&mm);
    let off = g.translate(addr)?;
    if private || !g.is_shared(addr) {
        Ok(Key::Private {
            mm: Arc::as_ptr(&mm) as usize,
            addr,
        })
    } else {
        Ok(Key::Shared { offset: off })
    }
}

fn read_word(t: &Task, addr: u64) -> KResult<u32> {
    t.read_obj::<u32>(addr)
}

/// Deadline from a timeout argument: relative (FUTEX_WAIT) or absolute.
fn deadline(t: &Task, ts_addr: u64, absolute: bool, realtime: bool) -> KResult<Option<Instant>> {
    if ts_addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.read_obj(ts_addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let d = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    if !absolute {
        return Ok(Some(Instant::now() + d));
    }
    let clock = if realtime {
        libc::CLOCK_REALTIME
    } else {
        libc::CLOCK_MONOTONIC
    };
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-parameter.
    unsafe { libc::clock_gettime(clock, &mut now) };
    let now = Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec as u32);
    Ok(Some(Instant::now() + d.saturating_sub(now)))
}

pub fn sys_futex(t: &mut Task, a: &Args) -> KResult<u64> {
    let (addr, op, val, ts, addr2, val3) = (a.u(0), a.int(1), a.uint(2), a.u(3), a.u(4), a.uint(5));
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && !matches!(cmd, FUTEX_WAIT_BITSET | 11 | FUTEX_WAIT) {
        return Err(Errno::ENOSYS);
    }
    let k = t.k.clone();
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT { u32::MAX } else { val3 };
            let key = key(t, addr, private)?;
            let dl = deadline(t, ts, cmd == FUTEX_WAIT_BITSET, realtime)?;
            let tt: &Task = t;
            k.futexes
                .wait(key, bitset, dl, || Ok(read_word(tt, addr)? == val))
                .map(|_| 0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            let key = key(t, addr, private)?;
            k.futexes.wake(key, val, bitset)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let n2 = ts as u32;
            if (val as i32) < 0 || (n2 as i32) < 0 {
                return Err(Errno::EINVAL);
            }
            let k1 = key(t, addr, private)?;
            let k2 = key(t, addr2, private)?;
            let tt: &Task = t;
            k.futexes.requeue(k1, k2, val, n2, || {
                Ok(cmd == FUTEX_REQUEUE || read_word(tt, addr)? == val3)
            })
        }
        FUTEX_WAKE_OP => {
            let n2 = ts as u32;
            let k1 = key(t, addr, private)?;
            let k2 = key(t, addr2, private)?;
            let tt: &Task = t;
            k.futexes.wake_op(k1, k2, val, n2, || {
                let oparg_shift = (val3 >> 31) & 1 == 1;
                let op = (val3 >> 28) & 7;
                let cmp = (val3 >> 24) & 15;
                let mut oparg = (val3 >> 12) & 0xfff;
                let cmparg = val3 & 0xfff;
                if oparg_shift {
                    if oparg > 31 {
                        oparg = 31;
                    }
                    oparg = 1 << oparg;
                }
                let old = read_word(tt, addr2)?;
                let new = match op {
                    0 => oparg,
                    1 => old.wrapping_add(oparg),
                    2 => old | oparg,
                    3 => old & !oparg,
                    4 => old ^ oparg,
                    _ => return Err(Errno::ENOSYS),
                };
                tt.write_obj(addr2, &new)?;
                Ok(match cmp {
                    0 => old == cmparg,
                    1 => old != cmparg,
                    2 => (old as i32) < cmparg as i32,
                    3 => (old as i32) <= cmparg as i32,
                    4 => (old as i32) > cmparg as i32,
                    5 => (old as i32) >= cmparg as i32,
                    _ => return Err(Errno::ENOSYS),
                })
            })
        }
        _ => Err(Errno::ENOSYS),
    }
}
