//! Signal actions, masks and sending.

use super::Args;
use crate::abi::*;
use crate::kernel::task::{SigAction, Task, SIG_DFL, SIG_IGN};
use crate::signals::{self, SigInfo};
use crate::vfs::lock;

const SIGKILL: usize = 9;
const SIGSTOP: usize = 19;
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

pub fn sys_rt_sigaction(t: &mut Task, a: &Args) -> KResult<u64> {
    let sig = a.int(0);
    if a.u(3) != 8 {
        return Err(Errno::EINVAL);
    }
    if !(1..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let new: Option<SigAction> = if a.u(1) != 0 {
        let w: [u64; 2] = t.read_obj(a.u(1))?;
        let w2: [u64; 2] = t.read_obj(a.u(1) + 16)?;
        Some(SigAction {
            handler: w[0],
            flags: w[1],
            restorer: w2[0],
            mask: w2[1] & !UNBLOCKABLE,
        })
    } else {
        None
    };
    if new.is_some() && (sig as usize == SIGKILL || sig as usize == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let old = {
        let mut acts = lock(&t.sigactions);
        let old = acts[(sig - 1) as usize];
        if let Some(n) = new {
            acts[(sig - 1) as usize] = n;
        }
        old
    };
    if a.u(2) != 0 {
        t.write_obj(a.u(2), &[old.handler, old.flags])?;
        t.write_obj(a.u(2) + 16, &[old.restorer, old.mask])?;
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(t: &mut Task, a: &Args) -> KResult<u64> {
    const SIG_BLOCK: i32 = 0;
    const SIG_UNBLOCK: i32 = 1;
    const SIG_SETMASK: i32 = 2;
    if a.u(3) != 8 {
        return Err(Errno::EINVAL);
    }
    let old = t.sigmask;
    if a.u(1) != 0 {
        let set: u64 = t.read_obj(a.u(1))?;
        let new = match a.int(0) {
            SIG_BLOCK => old | set,
            SIG_UNBLOCK => old & !set,
            SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        t.set_sigmask(new);
    }
    if a.u(2) != 0 {
        t.write_obj(a.u(2), &old)?;
    }
    Ok(0)
}

pub fn sys_sigaltstack(t: &mut Task, a: &Args) -> KResult<u64> {
    const SS_AUTODISARM: i32 = 1 << 31;
    const MINSIGSTKSZ: u64 = 2048;
    let (sp, size, flags) = t.altstack;
    let on = size > 0 && t.regs.rsp.wrapping_sub(sp) < size;
    if a.u(0) != 0 {
        let ss_sp: u64 = t.read_obj(a.u(0))?;
        let ss_flags: i32 = t.read_obj(a.u(0) + 8)?;
        let ss_size: u64 = t.read_obj(a.u(0) + 16)?;
        if on {
            return Err(Errno::EPERM);
        }
        let mode = ss_flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
            return Err(Errno::EINVAL);
        }
        if mode == SS_DISABLE {
            t.altstack = (0, 0, SS_DISABLE);
        } else {
            if ss_size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            t.altstack = (ss_sp, ss_size, 0);
        }
    }
    if a.u(1) != 0 {
        let f = if on {
            SS_ONSTACK
        } else if size == 0 {
            SS_DISABLE
        } else {
            flags
        };
        t.write_obj(a.u(1), &sp)?;
        t.write_obj(a.u(1) + 8, &(f as u64))?;
        t.write_obj(a.u(1) + 16, &size)?;
    }
    Ok(0)
}

fn check_sig(sig: i32) -> KResult<()> {
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

pub fn sys_kill(t: &mut Task, a: &Args) -> KResult<u64> {
    let (pid, sig) = (a.int(0), a.int(1));
    check_sig(sig)?;
    let info = SigInfo::user(sig, t.tgid);
    let k = t.k.clone();
    let targets: Vec<_> = match pid {
        p if p > 0 => vec![k.process(p).ok_or(Errno::ESRCH)?],
        0 | -1 | i32::MIN..=-2 => {
            if pid == i32::MIN {
                return Err(Errno::ESRCH);
            }
            let pg = match pid {
                0 => Some(t.proc_().pgid.load(std::sync::atomic::Ordering::Relaxed)),
                -1 => None,
                p => Some(-p),
            };
            let v: Vec<_> = k
                .processes()
                .into_iter()
                .filter(|p| p.lock().exit.is_none())
                .filter(|p| match pg {
                    Some(g) => p.pgid.load(std::sync::atomic::Ordering::Relaxed) == g,
                    None => p.tgid != 1 && p.tgid != t.tgid,
                })
                .collect();
            if v.is_empty() {
                return Err(Errno::ESRCH);
            }
            v
        }
        _ => return Err(Errno::ESRCH),
    };
    if sig == 0 {
        return Ok(0);
    }
    for p in targets {
        if p.lock().exit.is_some() {
            continue;
        }
        signals::send_process(&k, &p, info);
    }
    Ok(0)
}

fn send_tid(t: &Task, tgid: Option<i32>, tid: i32, sig: i32) -> KResult<u64> {
    let th = t.k.thread(tid).ok_or(Errno::ESRCH)?;
    if let Some(g) = tgid {
        if th.tgid != g {
            return Err(Errno::ESRCH);
        }
    }
    if sig != 0 {
        let info = SigInfo {
            signo: sig,
            code: signals::SI_TKILL,
            pid: t.tgid,
            ..Default::default()
        };
        if th.tgid == 1 {
            let a = lock(&th.sigactions)[(sig - 1) as usize & 63];
            let blocked =
                th.sigmask.load(std::sync::atomic::Ordering::Relaxed) & signals::bit(sig) != 0;
            if (a.handler == SIG_DFL || a.handler == SIG_IGN) && !blocked {
                return Ok(0);
            }
        }
        signals::send_thread(&t.k, &th, info);
    }
    Ok(0)
}

pub fn sys_tkill(t: &mut Task, a: &Args) -> KResult<u64> {
    let (tid, sig) = (a.int(0), a.int(1));
    check_sig(sig)?;
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    send_tid(t, None, tid, sig)
}

pub fn sys_tgkill(t: &mut Task, a: &Args) -> KResult<u64> {
    let (tgid, tid, sig) = (a.int(0), a.int(1), a.int(2));
    check_sig(sig)?;
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    send_tid(t, Some(tgid), tid, sig)
}

pub fn sys_rt_sigreturn(t: &mut Task, _: &Args) -> KResult<u64> {
    t.sigreturn()
}

/// Sleep until a signal is pending (sigsuspend, pause).
fn sleep_for_signal(t: &Task) -> Errno {
    let s = t.info.sleeper.clone();
    loop {
        let g = lock(&s.m);
        let (_g, out) = signals::wait(s.clone(), &s.cv, g, None);
        if let signals::WaitOutcome::Interrupted = out {
            return Errno::ERESTARTNOHAND;
        }
    }
}

pub fn sys_pause(t: &mut Task, _: &Args) -> KResult<u64> {
    Err(sleep_for_signal(t))
}

pub fn sys_rt_sigsuspend(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.u(1) != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.read_obj(a.u(0))?;
    let old = t.sigmask;
    t.set_sigmask(mask);
    let _ = sleep_for_signal(t);
    Err(t.deliver_under_temporary_mask(old))
}

pub fn sys_rt_sigpending(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.u(1) != 8 {
        return Err(Errno::EINVAL);
    }
    let bits = (lock(&t.info.signals).bits() | lock(&t.proc_().signals).bits()) & t.sigmask;
    t.write_obj(a.u(0), &bits).map(|_| 0)
}

pub fn sys_rt_sigtimedwait(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.u(3) != 8 {
        return Err(Errno::EINVAL);
    }
    let set: u64 = t.read_obj::<u64>(a.u(0))? & !signals::UNBLOCKABLE;
    let deadline = if a.u(2) != 0 {
        let ts: Timespec = t.read_obj(a.u(2))?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(
            std::time::Instant::now()
                + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
        )
    } else {
        None
    };
    let take = |t: &Task| -> Option<SigInfo> {
        for q in [&t.info.signals, &t.proc_().signals] {
            let mut q = lock(q);
            if let Some(s) = q
                .pending
                .keys()
                .copied()
                .find(|&s| signals::bit(s) & set != 0)
            {
                return q.pending.remove(&s);
            }
        }
        None
    };
    // Wait with the awaited signals unblocked so that they wake us.
    let old = t.sigmask;
    let s = t.info.sleeper.clone();
    loop {
        if let Some(info) = take(t) {
            t.set_sigmask(old);
            if a.u(1) != 0 {
                t.copy_out(a.u(1), &info.to_bytes())?;
            }
            return Ok(info.signo as u64);
        }
        t.set_sigmask(old & !set);
        let g = lock(&s.m);
        let (_g, out) = signals::wait(s.clone(), &s.cv, g, deadline);
        drop(_g);
        t.set_sigmask(old);
        match out {
            signals::WaitOutcome::TimedOut => return Err(Errno::EAGAIN),
            signals::WaitOutcome::Interrupted => {
                if let Some(info) = take(t) {
                    if a.u(1) != 0 {
                        t.copy_out(a.u(1), &info.to_bytes())?;
                    }
                    return Ok(info.signo as u64);
                }
                return Err(Errno::EINTR);
            }
            signals::WaitOutcome::Woken => {}
        }
    }
}

/// rt_sigqueueinfo / rt_tgsigqueueinfo: a process may not forge a
/// kernel-generated si_code for another process (EPERM), as on Linux.
fn queue_info(t: &Task, sig: i32, uinfo: u64) -> KResult<SigInfo> {
    let mut raw = [0u8; 128];
    t.copy_in(uinfo, &mut raw)?;
    let code = i32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
    let value = u64::from_le_bytes([
        raw[24], raw[25], raw[26], raw[27], raw[28], raw[29], raw[30], raw[31],
    ]);
    Ok(SigInfo {
        signo: sig,
        code,
        pid: t.tgid,
        uid: t.creds.uid,
        status: value as i32,
        addr: value,
    })
}

pub fn sys_rt_sigqueueinfo(t: &mut Task, a: &Args) -> KResult<u64> {
    let (pid, sig) = (a.int(0), a.int(1));
    check_sig(sig)?;
    let info = queue_info(t, sig, a.u(2))?;
    if (info.code >= 0 || info.code == signals::SI_TKILL) && pid != t.tgid {
        return Err(Errno::EPERM);
    }
    let p = t.k.process(pid).ok_or(Errno::ESRCH)?;
    if sig != 0 {
        signals::send_process(&t.k, &p, info);
    }
    Ok(0)
}

pub fn sys_rt_tgsigqueueinfo(t: &mut Task, a: &Args) -> KResult<u64> {
    let (tgid, tid, sig) = (a.int(0), a.int(1), a.int(2));
    check_sig(sig)?;
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let info = queue_info(t, sig, a.u(3))?;
    if (info.code >= 0 || info.code == signals::SI_TKILL) && tgid != t.tgid {
        return Err(Errno::EPERM);
    }
    let th = t.k.thread(tid).ok_or(Errno::ESRCH)?;
    if th.tgid != tgid {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        signals::send_thread(&t.k, &th, info);
    }
    Ok(0)
}

/// pidfd_send_signal(2): kill(2) through a pidfd, which keeps naming its
/// process even after the pid is reused; with `info`, like
/// rt_sigqueueinfo (si_signo must match). The flags pick the thread (the
/// leader), the thread group (the default) or the process group.
pub fn sys_pidfd_send_signal(t: &mut Task, a: &Args) -> KResult<u64> {
    const PIDFD_SIGNAL_THREAD: u32 = 1;
    const PIDFD_SIGNAL_THREAD_GROUP: u32 = 2;
    const PIDFD_SIGNAL_PROCESS_GROUP: u32 = 4;
    let (fd, sig, uinfo, flags) = (a.int(0), a.int(1), a.u(2), a.uint(3));
    if flags & !(PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP) != 0
        || flags.count_ones() > 1
    {
        return Err(Errno::EINVAL);
    }
    let p = pidfd_target(t, fd)?;
    check_sig(sig)?;
    let info = if uinfo != 0 {
        let signo: i32 = t.read_obj(uinfo)?;
        if signo != sig {
            return Err(Errno::EINVAL);
        }
        let info = queue_info(t, sig, uinfo)?;
        let other = p.tgid != t.tgid || flags == PIDFD_SIGNAL_PROCESS_GROUP;
        if other && (info.code >= 0 || info.code == signals::SI_TKILL) {
            return Err(Errno::EPERM);
        }
        info
    } else {
        SigInfo::user(sig, t.tgid)
    };
    // Reaped (its pid may name another process now): gone.
    match t.k.process(p.tgid) {
        Some(q) if std::sync::Arc::ptr_eq(&q, &p) => {}
        _ => return Err(Errno::ESRCH),
    }
    match flags {
        PIDFD_SIGNAL_THREAD => {
            let leader = t.k.thread(p.tgid).ok_or(Errno::ESRCH)?;
            if sig != 0 {
                signals::send_thread(&t.k, &leader, info);
            }
        }
        // As Linux does it: the process group whose id is the process's pid.
        PIDFD_SIGNAL_PROCESS_GROUP => {
            let members: Vec<_> =
                t.k.processes()
                    .into_iter()
                    .filter(|q| q.pgid.load(std::sync::atomic::Ordering::Relaxed) == p.tgid)
                    .collect();
            if members.is_empty() {
                return Err(Errno::ESRCH);
            }
            if sig != 0 {
                for q in members.iter().filter(|q| q.lock().exit.is_none()) {
                    signals::send_process(&t.k, q, info);
                }
            }
        }
        // A zombie takes the signal and does nothing with it, as on Linux.
        _ => {
            if sig != 0 && p.lock().exit.is_none() {
                signals::send_process(&t.k, &p, info);
            }
        }
    }
    Ok(0)
}

/// The process a pidfd names, or, as Linux also accepts there, an open
/// /proc/PID directory.
fn pidfd_target(t: &Task, fd: i32) -> KResult<std::sync::Arc<crate::kernel::process::Process>> {
    let f = super::file::get_file(t, fd)?;
    if let crate::vfs::file::FileKind::PidFd(p) = &f.kind {
        return p.process().cloned();
    }
    let pid = f
        .dentry
        .as_ref()
        .and_then(|d| match &d.inode().node {
            crate::vfs::Node::Proc(crate::fs::proc::ProcNode::PidDir(pid)) => Some(*pid),
            _ => None,
        })
        .ok_or(Errno::EBADF)?;
    match t.k.process(pid) {
        Some(p) => Ok(p),
        None => {
            t.k.thread(pid)
                .map(|th| th.proc_.clone())
                .ok_or(Errno::ESRCH)
        }
    }
}
