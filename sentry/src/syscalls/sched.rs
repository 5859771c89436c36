//! Scheduling parameters and priorities. The sentry's host threads are
//! scheduled by the host; these calls keep the workload-visible state with
//! Linux's rules (only SCHED_OTHER/BATCH/IDLE with priority 0 are accepted
//! without CAP_SYS_NICE, nice values -20..19).

use super::Args;
use crate::abi::*;
use crate::kernel::task::Task;
use std::sync::atomic::Ordering;

const SCHED_OTHER: i32 = 0;
const SCHED_FIFO: i32 = 1;
const SCHED_RR: i32 = 2;
const SCHED_BATCH: i32 = 3;
const SCHED_IDLE: i32 = 5;
const CAP_SYS_NICE: u32 = 23;

/// The thread a sched_* call names: 0 is the caller.
fn target_thread(t: &Task, pid: i32) -> KResult<std::sync::Arc<crate::kernel::ThreadInfo>> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 {
        return Ok(t.info.clone());
    }
    t.k.thread(pid).ok_or(Errno::ESRCH)
}

/// Bytes of a CPU mask for the sandbox's CPUs, in whole longs (Linux's
/// cpumask_size()).
pub fn cpumask_bytes(ncpus: usize) -> usize {
    ncpus.div_ceil(64).max(1) * 8
}

/// The affinity mask of a thread, `cpumask_bytes` long.
pub fn affinity_of(th: &crate::kernel::ThreadInfo, ncpus: usize) -> Vec<u8> {
    let mut mask = vec![0u8; cpumask_bytes(ncpus)];
    let set = crate::vfs::lock(&th.affinity);
    for c in 0..ncpus {
        if set.is_empty() || set.get(c / 8).is_some_and(|b| b & (1 << (c % 8)) != 0) {
            mask[c / 8] |= 1 << (c % 8);
        }
    }
    mask
}

/// The thread sched_{get,set}affinity name: unlike the policy calls, a
/// negative pid is just a missing thread (ESRCH).
pub fn affinity_target(t: &Task, pid: i32) -> KResult<std::sync::Arc<crate::kernel::ThreadInfo>> {
    target_thread(t, pid).map_err(|_| Errno::ESRCH)
}

pub fn sys_sched_setaffinity(t: &mut Task, a: &Args) -> KResult<u64> {
    let th = affinity_target(t, a.int(0))?;
    // Like Linux: bytes past the kernel's mask size are ignored, a shorter
    // mask clears the CPUs it does not cover, and CPUs the sandbox does not
    // have are dropped; an empty result is EINVAL.
    let n = t.k.ncpus;
    let len = a.usize(1).min(cpumask_bytes(n));
    let mut user = vec![0u8; len];
    t.copy_in(a.u(2), &mut user)?;
    let mut mask = vec![0u8; cpumask_bytes(n)];
    for c in 0..n {
        if user.get(c / 8).is_some_and(|b| b & (1 << (c % 8)) != 0) {
            mask[c / 8] |= 1 << (c % 8);
        }
    }
    if mask.iter().all(|&b| b == 0) {
        return Err(Errno::EINVAL);
    }
    *crate::vfs::lock(&th.affinity) = mask;
    Ok(0)
}

pub fn sys_sched_getscheduler(t: &mut Task, a: &Args) -> KResult<u64> {
    let th = target_thread(t, a.int(0))?;
    Ok(th.proc_.sched_policy.load(Ordering::Relaxed) as u64)
}

pub fn sys_sched_getparam(t: &mut Task, a: &Args) -> KResult<u64> {
    let th = target_thread(t, a.int(0))?;
    let prio = th.proc_.sched_priority.load(Ordering::Relaxed);
    t.write_obj(a.u(1), &prio).map(|_| 0)
}

fn set_sched(
    t: &mut Task,
    target: &crate::kernel::process::Process,
    policy: i32,
    param: u64,
) -> KResult<u64> {
    let prio: i32 = t.read_obj(param)?;
    let ok = match policy & !0x4000_0000 /* SCHED_RESET_ON_FORK */ {
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => prio == 0,
        SCHED_FIFO | SCHED_RR => (1..=99).contains(&prio),
        _ => return Err(Errno::EINVAL),
    };
    if !ok {
        return Err(Errno::EINVAL);
    }
    if matches!(policy & !0x4000_0000, SCHED_FIFO | SCHED_RR) && !t.creds.has_cap(CAP_SYS_NICE) {
        return Err(Errno::EPERM);
    }
    target
        .sched_policy
        .store(policy & !0x4000_0000, Ordering::Relaxed);
    target.sched_priority.store(prio, Ordering::Relaxed);
    Ok(0)
}

pub fn sys_sched_setscheduler(t: &mut Task, a: &Args) -> KResult<u64> {
    let th = target_thread(t, a.int(0))?;
    set_sched(t, &th.proc_, a.int(1), a.u(2))
}

pub fn sys_sched_setparam(t: &mut Task, a: &Args) -> KResult<u64> {
    let th = target_thread(t, a.int(0))?;
    let policy = th.proc_.sched_policy.load(Ordering::Relaxed);
    set_sched(t, &th.proc_, policy, a.u(1))
}

pub fn sys_sched_get_priority_max(_t: &mut Task, a: &Args) -> KResult<u64> {
    match a.int(0) {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_sched_get_priority_min(_t: &mut Task, a: &Args) -> KResult<u64> {
    match a.int(0) {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;

fn prio_targets(
    t: &Task,
    which: i32,
    who: i32,
) -> KResult<Vec<std::sync::Arc<crate::kernel::process::Process>>> {
    let procs = t.k.processes();
    let v: Vec<_> = match which {
        PRIO_PROCESS => {
            let pid = if who == 0 { t.tgid } else { who };
            procs.into_iter().filter(|p| p.tgid == pid).collect()
        }
        PRIO_PGRP => {
            let g = if who == 0 {
                t.proc_().pgid.load(Ordering::Relaxed)
            } else {
                who
            };
            procs
                .into_iter()
                .filter(|p| p.pgid.load(Ordering::Relaxed) == g)
                .collect()
        }
        // The processes whose real uid is `who` (the caller's when 0).
        PRIO_USER => {
            let uid = if who == 0 { t.creds.uid } else { who as u32 };
            procs
                .into_iter()
                .filter(|p| p.ruid.load(Ordering::Relaxed) == uid)
                .collect()
        }
        _ => return Err(Errno::EINVAL),
    };
    if v.is_empty() {
        return Err(Errno::ESRCH);
    }
    Ok(v)
}

pub fn sys_getpriority(t: &mut Task, a: &Args) -> KResult<u64> {
    let ps = prio_targets(t, a.int(0), a.int(1))?;
    // The kernel returns 20 - nice so that the value is never negative.
    let best = ps
        .iter()
        .map(|p| p.nice.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    Ok((20 - best) as u64)
}

pub fn sys_setpriority(t: &mut Task, a: &Args) -> KResult<u64> {
    let nice = a.int(2).clamp(-20, 19);
    let ps = prio_targets(t, a.int(0), a.int(1))?;
    for p in ps {
        if nice < p.nice.load(Ordering::Relaxed) && !t.creds.has_cap(CAP_SYS_NICE) {
            return Err(Errno::EACCES);
        }
        p.nice.store(nice, Ordering::Relaxed);
    }
    Ok(0)
}

/// sched_rr_get_interval: SCHED_RR's time slice (Linux's RR_TIMESLICE,
/// 100 ms); 0 for SCHED_FIFO and for the other policies, whose slices the
/// host decides.
pub fn sys_sched_rr_get_interval(t: &mut Task, a: &Args) -> KResult<u64> {
    let th = target_thread(t, a.int(0))?;
    let policy = th.proc_.sched_policy.load(Ordering::Relaxed);
    let ts = Timespec {
        tv_sec: 0,
        tv_nsec: if policy == SCHED_RR { 100_000_000 } else { 0 },
    };
    t.write_obj(a.u(1), &ts).map(|_| 0)
}
