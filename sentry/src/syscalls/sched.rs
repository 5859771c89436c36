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

fn target_exists(t: &Task, pid: i32) -> KResult<()> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid != 0 && t.k.thread(pid).is_none() {
        return Err(Errno::ESRCH);
    }
    Ok(())
}

pub fn sys_sched_setaffinity(t: &mut Task, a: &Args) -> KResult<u64> {
    target_exists(t, a.int(0))?;
    let len = a.usize(1).min(128);
    let mut mask = vec![0u8; len];
    t.copy_in(a.u(2), &mut mask)?;
    // At least one CPU of the sandbox must remain.
    let any = (0..t.k.ncpus).any(|c| c / 8 < mask.len() && mask[c / 8] & (1 << (c % 8)) != 0);
    if !any {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_sched_getscheduler(t: &mut Task, a: &Args) -> KResult<u64> {
    target_exists(t, a.int(0))?;
    Ok(t.proc_().sched_policy.load(Ordering::Relaxed) as u64)
}

pub fn sys_sched_getparam(t: &mut Task, a: &Args) -> KResult<u64> {
    target_exists(t, a.int(0))?;
    let prio = t.proc_().sched_priority.load(Ordering::Relaxed);
    t.write_obj(a.u(1), &prio).map(|_| 0)
}

fn set_sched(t: &mut Task, policy: i32, param: u64) -> KResult<u64> {
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
    t.proc_()
        .sched_policy
        .store(policy & !0x4000_0000, Ordering::Relaxed);
    t.proc_().sched_priority.store(prio, Ordering::Relaxed);
    Ok(0)
}

pub fn sys_sched_setscheduler(t: &mut Task, a: &Args) -> KResult<u64> {
    target_exists(t, a.int(0))?;
    set_sched(t, a.int(1), a.u(2))
}

pub fn sys_sched_setparam(t: &mut Task, a: &Args) -> KResult<u64> {
    target_exists(t, a.int(0))?;
    let policy = t.proc_().sched_policy.load(Ordering::Relaxed);
    set_sched(t, policy, a.u(1))
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
        // Every process of the sandbox runs as the sandbox's users; without
        // per-process credentials in the table, PRIO_USER covers them all.
        PRIO_USER => procs,
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
