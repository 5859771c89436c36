//! Process identity, limits, exit and exec.

use super::Args;
use crate::abi::*;
use crate::kernel::process::Process;
use crate::kernel::task::{ExitStatus, Task, RLIMIT_COUNT, RLIMIT_NOFILE};
use crate::vfs::lock;
use std::sync::Arc;

pub fn sys_getpid(t: &mut Task, _: &Args) -> KResult<u64> {
    Ok(t.tgid as u64)
}

pub fn sys_gettid(t: &mut Task, _: &Args) -> KResult<u64> {
    Ok(t.tid as u64)
}

pub fn sys_getppid(t: &mut Task, _: &Args) -> KResult<u64> {
    Ok(t.info.ppid() as u64)
}

pub fn sys_getpgrp(t: &mut Task, _: &Args) -> KResult<u64> {
    Ok(t.proc_().pgid.load(std::sync::atomic::Ordering::Relaxed) as u64)
}

fn target_process(t: &Task, pid: i32) -> KResult<std::sync::Arc<crate::kernel::process::Process>> {
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    let pid = if pid == 0 { t.tgid } else { pid };
    t.k.process(pid).ok_or(Errno::ESRCH)
}

pub fn sys_getpgid(t: &mut Task, a: &Args) -> KResult<u64> {
    Ok(target_process(t, a.int(0))?
        .pgid
        .load(std::sync::atomic::Ordering::Relaxed) as u64)
}

pub fn sys_getsid(t: &mut Task, a: &Args) -> KResult<u64> {
    Ok(target_process(t, a.int(0))?
        .sid
        .load(std::sync::atomic::Ordering::Relaxed) as u64)
}

pub fn sys_getuid(t: &mut Task, _: &Args) -> KResult<u64> {
    Ok(t.creds.uid as u64)
}

pub fn sys_geteuid(t: &mut Task, _: &Args) -> KResult<u64> {
    Ok(t.creds.euid as u64)
}

pub fn sys_getgid(t: &mut Task, _: &Args) -> KResult<u64> {
    Ok(t.creds.gid as u64)
}

pub fn sys_getegid(t: &mut Task, _: &Args) -> KResult<u64> {
    Ok(t.creds.egid as u64)
}

pub fn sys_getresuid(t: &mut Task, a: &Args) -> KResult<u64> {
    let c = t.creds();
    t.write_obj(a.u(0), &c.uid)?;
    t.write_obj(a.u(1), &c.euid)?;
    t.write_obj(a.u(2), &c.suid).map(|_| 0)
}

pub fn sys_getresgid(t: &mut Task, a: &Args) -> KResult<u64> {
    let c = t.creds();
    t.write_obj(a.u(0), &c.gid)?;
    t.write_obj(a.u(1), &c.egid)?;
    t.write_obj(a.u(2), &c.sgid).map(|_| 0)
}

pub fn sys_getgroups(t: &mut Task, a: &Args) -> KResult<u64> {
    let size = a.int(0);
    let groups = t.creds().groups;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    t.copy_out(a.u(1), &bytes)?;
    Ok(groups.len() as u64)
}

pub fn sys_exit(t: &mut Task, a: &Args) -> KResult<u64> {
    t.exit = Some(ExitStatus::Exited(a.int(0) & 0xff));
    Ok(0)
}

pub fn sys_exit_group(t: &mut Task, a: &Args) -> KResult<u64> {
    t.exit = Some(ExitStatus::Exited(a.int(0) & 0xff));
    t.group_exit = true;
    Ok(0)
}

const WNOHANG: i32 = 1;
const WUNTRACED: i32 = 2;
const WEXITED: i32 = 4;
const WCONTINUED: i32 = 8;
const WNOWAIT: i32 = 0x0100_0000;
const WNOTHREAD: i32 = 0x2000_0000;
const WALL: i32 = 0x4000_0000;
const WCLONE: i32 = 0x8000_0000u32 as i32;

/// Which children a wait call is after.
#[derive(Clone, Copy)]
enum Which {
    Any,
    Pid(i32),
    Pgid(i32),
}

/// Wait for a child to exit; returns (pid, status), or None with WNOHANG.
/// What wait reports about a child.
#[derive(Clone, Copy)]
enum WaitEvent {
    Exited(ExitStatus),
    Stopped(i32),
    Continued,
}

fn wait_child(
    t: &Task,
    which: Which,
    options: i32,
    reap: bool,
) -> KResult<Option<(i32, WaitEvent)>> {
    let p = t.proc_().clone();
    let k = t.k.clone();
    let matches = |pid: i32| match which {
        Which::Any => true,
        Which::Pid(x) => pid == x,
        Which::Pgid(g) => k
            .process(pid)
            .map(|c| c.pgid.load(std::sync::atomic::Ordering::Relaxed) == g)
            .unwrap_or(false),
    };
    let mut st = p.lock();
    loop {
        let candidates: Vec<i32> = st
            .children
            .iter()
            .copied()
            .filter(|&c| matches(c))
            .collect();
        if candidates.is_empty() {
            return Err(Errno::ECHILD);
        }
        if let Some(&pid) = candidates.iter().find(|c| st.zombies.contains_key(c)) {
            let status = st.zombies[&pid];
            if reap {
                st.zombies.remove(&pid);
                if let Some(c) = k.process(pid) {
                    use std::sync::atomic::Ordering::Relaxed;
                    let spent = c.cpu_dead_ns.load(Relaxed) + c.children_cpu_ns.load(Relaxed);
                    p.children_cpu_ns.fetch_add(spent, Relaxed);
                }
                st.children.remove(&pid);
                drop(st);
                k.remove_process(pid);
            }
            return Ok(Some((pid, WaitEvent::Exited(status))));
        }
        // Job-control events (parent lock, then child lock).
        for &pid in &candidates {
            let Some(c) = k.process(pid) else { continue };
            let mut cs = c.lock();
            if options & WUNTRACED != 0 {
                if let Some(sig) = cs.stop_report {
                    if reap {
                        cs.stop_report = None;
                    }
                    return Ok(Some((pid, WaitEvent::Stopped(sig))));
                }
            }
            if options & WCONTINUED != 0 && cs.cont_report {
                if reap {
                    cs.cont_report = false;
                }
                return Ok(Some((pid, WaitEvent::Continued)));
            }
        }
        if options & WNOHANG != 0 {
            return Ok(None);
        }
        let (g, out) = crate::signals::wait(p.clone(), &p.child_event, st, None);
        st = g;
        if let crate::signals::WaitOutcome::Interrupted = out {
            return Err(Errno::ERESTARTSYS);
        }
    }
}

pub fn sys_wait4(t: &mut Task, a: &Args) -> KResult<u64> {
    let (pid, wstatus, options) = (a.int(0), a.u(1), a.int(2));
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WALL | WCLONE | WNOTHREAD) != 0 {
        return Err(Errno::EINVAL);
    }
    let which = match pid {
        -1 => Which::Any,
        0 => Which::Pgid(t.proc_().pgid.load(std::sync::atomic::Ordering::Relaxed)),
        i32::MIN => return Err(Errno::ESRCH),
        p if p < 0 => Which::Pgid(-p),
        p => Which::Pid(p),
    };
    match wait_child(t, which, options, true)? {
        None => Ok(0),
        Some((child, ev)) => {
            if wstatus != 0 {
                let w = match ev {
                    WaitEvent::Exited(status) => crate::kernel::process::wait_status(status),
                    WaitEvent::Stopped(sig) => (sig << 8) | 0x7f,
                    WaitEvent::Continued => 0xffff,
                };
                t.write_obj(wstatus, &w)?;
            }
            if a.u(3) != 0 {
                t.copy_out(a.u(3), &[0u8; 144])?;
            }
            Ok(child as u64)
        }
    }
}

pub fn sys_waitid(t: &mut Task, a: &Args) -> KResult<u64> {
    const P_ALL: i32 = 0;
    const P_PID: i32 = 1;
    const P_PGID: i32 = 2;
    const P_PIDFD: i32 = 3;
    let (idtype, id, infop, mut options) = (a.int(0), a.int(1), a.u(2), a.int(3));
    if options & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WALL | WCLONE | WNOTHREAD)
        != 0
        || options & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    let mut pidfd_eagain = false;
    let which = match idtype {
        P_ALL => Which::Any,
        P_PID if id > 0 => Which::Pid(id),
        P_PIDFD => {
            let (pidfd, nonblock) = pidfd_of(t, id)?;
            // A non-blocking pidfd makes the wait non-blocking: EAGAIN
            // instead of 0 when the child has not changed state.
            if nonblock && options & WNOHANG == 0 {
                options |= WNOHANG;
                pidfd_eagain = true;
            }
            Which::Pid(pidfd.process()?.tgid)
        }
        P_PGID if id >= 0 => Which::Pgid(if id == 0 {
            t.proc_().pgid.load(std::sync::atomic::Ordering::Relaxed)
        } else {
            id
        }),
        _ => return Err(Errno::EINVAL),
    };
    // waitid spells WUNTRACED as WSTOPPED (same bit); exits only with WEXITED.
    let got = loop {
        let g = wait_child(t, which, options | WNOHANG, options & WNOWAIT == 0)?;
        match g {
            Some((_, WaitEvent::Exited(_))) if options & WEXITED == 0 => {}
            Some(x) => break Some(x),
            None if options & WNOHANG != 0 => break None,
            None => {}
        }
        if options & WNOHANG != 0 {
            break None;
        }
        // Block until a child changes state (bounded: a change between the
        // check above and this wait is picked up on the next round).
        let p = t.proc_().clone();
        let st = p.lock();
        let until = std::time::Instant::now() + std::time::Duration::from_millis(50);
        let (_g, out) = crate::signals::wait(p.clone(), &p.child_event, st, Some(until));
        if let crate::signals::WaitOutcome::Interrupted = out {
            return Err(Errno::ERESTARTSYS);
        }
    };
    if infop != 0 {
        let mut b = [0u8; 128];
        if let Some((pid, ev)) = got {
            let (code, st): (i32, i32) = match ev {
                WaitEvent::Exited(ExitStatus::Exited(c)) => (1, c),
                WaitEvent::Exited(status @ ExitStatus::Signaled(sig)) => (
                    if crate::kernel::process::wait_status(status) & 0x80 != 0 {
                        3
                    } else {
                        2
                    },
                    sig & 0x7f,
                ),
                WaitEvent::Stopped(sig) => (5, sig),
                WaitEvent::Continued => (6, 18),
            };
            b[0..4].copy_from_slice(&17i32.to_le_bytes()); // SIGCHLD
            b[8..12].copy_from_slice(&code.to_le_bytes());
            b[16..20].copy_from_slice(&pid.to_le_bytes());
            b[24..28].copy_from_slice(&st.to_le_bytes());
        }
        t.copy_out(infop, &b)?;
    }
    if got.is_none() && pidfd_eagain {
        return Err(Errno::EAGAIN);
    }
    Ok(0)
}

/// The pidfd behind `fd` (EBADF for any other descriptor) and whether it
/// is non-blocking.
pub fn pidfd_of(t: &Task, fd: i32) -> KResult<(Arc<crate::fs::pidfd::PidFd>, bool)> {
    let f = super::file::get_file(t, fd)?;
    match &f.kind {
        crate::vfs::file::FileKind::PidFd(p) => Ok((p.clone(), f.flags() & O_NONBLOCK != 0)),
        _ => Err(Errno::EBADF),
    }
}

/// A new pidfd file for `p` (or for the process clone is about to make).
fn pidfd_file(
    p: Option<Arc<Process>>,
    nonblock: bool,
) -> (Arc<crate::fs::pidfd::PidFd>, Arc<crate::vfs::file::File>) {
    let pidfd = crate::fs::pidfd::PidFd::new(p);
    let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
    let f = crate::vfs::file::File::new(
        None,
        crate::vfs::file::FileKind::PidFd(pidfd.clone()),
        flags,
    );
    (pidfd, f)
}

/// pidfd_open(2): a descriptor (close-on-exec) naming process `pid`, a
/// zombie included.
pub fn sys_pidfd_open(t: &mut Task, a: &Args) -> KResult<u64> {
    let (pid, flags) = (a.int(0), a.uint(1));
    if flags & !(O_NONBLOCK as u32) != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = match t.k.process(pid) {
        Some(p) => p,
        // A thread that is not a thread-group leader.
        None if t.k.thread(pid).is_some() => return Err(Errno::EINVAL),
        None => return Err(Errno::ESRCH),
    };
    let (_, f) = pidfd_file(Some(p), flags != 0);
    super::file::install(t, f, true)
}

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_PTRACE: u64 = 0x2000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_NEWNS: u64 = 0x20000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
const CLONE_DETACHED: u64 = 0x0040_0000;
const CLONE_UNTRACED: u64 = 0x0080_0000;
const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
const CLONE_IO: u64 = 0x8000_0000;

/// `pidfd_out`: where CLONE_PIDFD stores the new descriptor.
pub fn do_clone(
    t: &mut Task,
    flags: u64,
    stack: u64,
    ptid: u64,
    ctid: u64,
    tls: u64,
    pidfd_out: u64,
) -> KResult<u64> {
    let supported = 0xff
        | CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_PTRACE
        | CLONE_VFORK
        | CLONE_PARENT
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_DETACHED
        | CLONE_UNTRACED
        | CLONE_CHILD_SETTID
        | CLONE_IO;
    if flags & CLONE_NEWNS != 0 && flags & CLONE_FS != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & !(supported | CLONE_PIDFD) != 0 {
        // Namespaces are not provided inside the sandbox yet.
        return Err(Errno::EPERM);
    }
    if (flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0)
        || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
    {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_PIDFD == 0 {
        return crate::kernel::clone::spawn(t, flags, stack, ptid, ctid, tls, None);
    }
    // CLONE_PIDFD: a close-on-exec pidfd for the child, installed and
    // stored before the child exists (a full table or a bad pointer fails
    // the clone); it names the child once it is made.
    if flags & (CLONE_THREAD | CLONE_DETACHED) != 0 {
        return Err(Errno::EINVAL);
    }
    t.write_obj(pidfd_out, &-1i32)?;
    let (pidfd, f) = pidfd_file(None, false);
    let fd = super::file::install(t, f, true)?;
    let stored = t.write_obj(pidfd_out, &(fd as i32));
    let r = stored.and_then(|_| {
        crate::kernel::clone::spawn(t, flags & !CLONE_PIDFD, stack, ptid, ctid, tls, Some(pidfd))
    });
    if r.is_err() {
        let _ = lock(&t.fds()).remove(fd as i32);
    }
    r
}

pub fn sys_clone(t: &mut Task, a: &Args) -> KResult<u64> {
    // x86-64 order: flags, stack, parent_tid, child_tid, tls. The pidfd
    // of CLONE_PIDFD goes where the parent's tid would.
    let flags = a.u(0);
    if flags & CLONE_PIDFD != 0 && flags & CLONE_PARENT_SETTID != 0 {
        return Err(Errno::EINVAL);
    }
    do_clone(t, flags, a.u(1), a.u(2), a.u(3), a.u(4), a.u(2))
}

pub fn sys_fork(t: &mut Task, _: &Args) -> KResult<u64> {
    do_clone(t, libc::SIGCHLD as u64, 0, 0, 0, 0, 0)
}

pub fn sys_vfork(t: &mut Task, _: &Args) -> KResult<u64> {
    do_clone(
        t,
        CLONE_VM | CLONE_VFORK | libc::SIGCHLD as u64,
        0,
        0,
        0,
        0,
        0,
    )
}

pub fn sys_clone3(t: &mut Task, a: &Args) -> KResult<u64> {
    let size = a.usize(1);
    if !(64..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut w = [0u64; 11];
    let mut buf = vec![0u8; size.min(88)];
    t.copy_in(a.u(0), &mut buf)?;
    for (i, c) in buf.chunks(8).enumerate() {
        let mut x = [0u8; 8];
        x[..c.len()].copy_from_slice(c);
        w[i] = u64::from_le_bytes(x);
    }
    // flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup
    let (flags, child_tid, parent_tid, exit_signal, stack, stack_size, tls) =
        (w[0], w[2], w[3], w[4], w[5], w[6], w[7]);
    if exit_signal > 64 || flags & 0xff != 0 || w[9] != 0 {
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    let sp = if stack != 0 { stack + stack_size } else { 0 };
    do_clone(t, flags | exit_signal, sp, parent_tid, child_tid, tls, w[1])
}

pub fn sys_setpgid(t: &mut Task, a: &Args) -> KResult<u64> {
    let (pid, pgid) = (a.int(0), a.int(1));
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = if pid == 0 { t.tgid } else { pid };
    let p = t.k.process(target).ok_or(Errno::ESRCH)?;
    if target != t.tgid && p.ppid() != t.tgid {
        return Err(Errno::ESRCH);
    }
    let pg = if pgid == 0 { target } else { pgid };
    p.pgid.store(pg, std::sync::atomic::Ordering::Relaxed);
    Ok(0)
}

pub fn sys_setsid(t: &mut Task, _: &Args) -> KResult<u64> {
    let p = t.proc_();
    if p.pgid.load(std::sync::atomic::Ordering::Relaxed) == t.tgid {
        return Err(Errno::EPERM);
    }
    p.pgid.store(t.tgid, std::sync::atomic::Ordering::Relaxed);
    p.sid.store(t.tgid, std::sync::atomic::Ordering::Relaxed);
    Ok(t.tgid as u64)
}

pub fn sys_sched_yield(_t: &mut Task, _: &Args) -> KResult<u64> {
    std::thread::yield_now();
    Ok(0)
}

pub fn sys_sched_getaffinity(t: &mut Task, a: &Args) -> KResult<u64> {
    let size = a.usize(1);
    let th = super::sched::affinity_target(t, a.int(0))?;
    let n = t.k.ncpus;
    let need = super::sched::cpumask_bytes(n);
    if size < need || !size.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mask = super::sched::affinity_of(&th, n);
    t.copy_out(a.u(2), &mask)?;
    Ok(need as u64)
}

pub fn sys_set_tid_address(t: &mut Task, a: &Args) -> KResult<u64> {
    t.clear_child_tid = a.u(0);
    Ok(t.tid as u64)
}

pub fn sys_set_robust_list(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.u(1) != 24 {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (a.u(0), a.u(1));
    Ok(0)
}

pub fn sys_get_robust_list(t: &mut Task, a: &Args) -> KResult<u64> {
    let pid = a.int(0);
    if pid != 0 && pid != t.tid {
        return Err(Errno::ESRCH);
    }
    t.write_obj(a.u(1), &t.robust_list.0)?;
    t.write_obj(a.u(2), &t.robust_list.1).map(|_| 0)
}

fn check_resource(r: u32) -> KResult<usize> {
    if r as usize >= RLIMIT_COUNT {
        return Err(Errno::EINVAL);
    }
    Ok(r as usize)
}

fn set_limit(t: &mut Task, p: &Arc<Process>, r: usize, new: Rlimit) -> KResult<()> {
    if new.cur > new.max {
        return Err(Errno::EINVAL);
    }
    let old = lock(&p.rlimits)[r];
    if new.max > old.max && !t.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE) {
        return Err(Errno::EPERM);
    }
    if r == RLIMIT_NOFILE && new.max > 1 << 20 {
        return Err(Errno::EPERM);
    }
    lock(&p.rlimits)[r] = new;
    if r == 0 {
        arm_cpu_limit(t, p, new);
    }
    Ok(())
}

/// RLIMIT_CPU is measured against the process's CPU time so far.
fn arm_cpu_limit(t: &Task, p: &Arc<Process>, lim: Rlimit) {
    use crate::kernel::timers::{Notify, Timer, TimerClock};
    use std::time::Duration;
    let p = p.clone();
    let mut slot = lock(&p.cpu_limit);
    let timers = slot.get_or_insert_with(|| {
        let mk = |signo| {
            Timer::new(
                &t.k,
                &p,
                TimerClock::ProcessCpu,
                Notify::Process {
                    signo,
                    code: 0x80,
                    value: 0,
                    timer_id: 0,
                },
            )
        };
        [mk(libc::SIGXCPU), mk(libc::SIGKILL)]
    });
    let used = Duration::from_nanos(
        crate::kernel::timers::process_cpu_ns(&t.k, &p)
            + p.cpu_dead_ns.load(std::sync::atomic::Ordering::Relaxed),
    );
    let until = |secs: u64| {
        if secs == RLIM_INFINITY {
            Duration::ZERO
        } else {
            Duration::from_secs(secs)
                .saturating_sub(used)
                .max(Duration::from_nanos(1))
        }
    };
    timers[0].set(
        until(lim.cur),
        if lim.cur == RLIM_INFINITY {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        },
    );
    timers[1].set(until(lim.max), Duration::ZERO);
}

pub fn sys_getrlimit(t: &mut Task, a: &Args) -> KResult<u64> {
    let r = check_resource(a.uint(0))?;
    t.write_obj(a.u(1), &t.rlimit(r)).map(|_| 0)
}

pub fn sys_setrlimit(t: &mut Task, a: &Args) -> KResult<u64> {
    let r = check_resource(a.uint(0))?;
    let new: Rlimit = t.read_obj(a.u(1))?;
    let p = t.proc_().clone();
    set_limit(t, &p, r, new).map(|_| 0)
}

pub fn sys_prlimit64(t: &mut Task, a: &Args) -> KResult<u64> {
    let pid = a.int(0);
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    // pid names a thread; limits belong to its process.
    let p = if pid == 0 {
        t.proc_().clone()
    } else {
        t.k.thread(pid).ok_or(Errno::ESRCH)?.proc_.clone()
    };
    let r = check_resource(a.uint(1))?;
    let new: Option<Rlimit> = if a.u(2) != 0 {
        Some(t.read_obj(a.u(2))?)
    } else {
        None
    };
    let old = lock(&p.rlimits)[r];
    if let Some(n) = new {
        set_limit(t, &p, r, n)?;
    }
    if a.u(3) != 0 {
        t.write_obj(a.u(3), &old)?;
    }
    Ok(0)
}

pub fn sys_getrusage(t: &mut Task, a: &Args) -> KResult<u64> {
    const RUSAGE_SELF: i32 = 0;
    const RUSAGE_CHILDREN: i32 = -1;
    const RUSAGE_THREAD: i32 = 1;
    let who = a.int(0);
    let mut b = [0u8; 144];
    match who {
        RUSAGE_SELF | RUSAGE_THREAD => {
            let total = if who == RUSAGE_SELF {
                let p = t.proc_();
                crate::kernel::timers::process_cpu_ns(&t.k, p)
                    + p.cpu_dead_ns.load(std::sync::atomic::Ordering::Relaxed)
            } else {
                crate::kernel::timers::stub_cpu_ns(t.ctx.host_pid())
            };
            let (s, ns) = (
                (total / 1_000_000_000) as i64,
                (total % 1_000_000_000) as i64,
            );
            b[0..8].copy_from_slice(&s.to_le_bytes());
            b[8..16].copy_from_slice(&(ns / 1000).to_le_bytes());
            let rss = lock(&t.mm()).mapped_bytes() / 1024;
            b[32..40].copy_from_slice(&rss.to_le_bytes());
        }
        RUSAGE_CHILDREN => {
            // Host CPU clocks do not split user and system time: all of it
            // is reported as user time.
            let total = t
                .proc_()
                .children_cpu_ns
                .load(std::sync::atomic::Ordering::Relaxed);
            b[0..8].copy_from_slice(&((total / 1_000_000_000) as i64).to_le_bytes());
            b[8..16].copy_from_slice(&((total % 1_000_000_000 / 1000) as i64).to_le_bytes());
        }
        _ => return Err(Errno::EINVAL),
    }
    t.copy_out(a.u(1), &b).map(|_| 0)
}

pub fn sys_times(t: &mut Task, a: &Args) -> KResult<u64> {
    let p = t.proc_();
    let own = crate::kernel::timers::process_cpu_ns(&t.k, p)
        + p.cpu_dead_ns.load(std::sync::atomic::Ordering::Relaxed);
    let children = p.children_cpu_ns.load(std::sync::atomic::Ordering::Relaxed);
    let ticks = |ns: u64| (ns / 10_000_000) as i64;
    if a.u(0) != 0 {
        let v: [i64; 4] = [ticks(own), 0, ticks(children), 0];
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        t.copy_out(a.u(0), &bytes)?;
    }
    Ok((t.k.boot.elapsed().as_millis() / 10) as u64 + 1)
}

pub fn sys_getrandom(t: &mut Task, a: &Args) -> KResult<u64> {
    const GRND_NONBLOCK: u32 = 1;
    const GRND_RANDOM: u32 = 2;
    const GRND_INSECURE: u32 = 4;
    let flags = a.uint(2);
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || (flags & GRND_RANDOM != 0 && flags & GRND_INSECURE != 0)
    {
        return Err(Errno::EINVAL);
    }
    let n = a.usize(1).min(33_554_431).min(1 << 20);
    let mut buf = vec![0u8; n];
    crate::fs::dev::fill_random(&mut buf)?;
    t.copy_out(a.u(0), &buf)?;
    Ok(n as u64)
}

pub fn sys_arch_prctl(t: &mut Task, a: &Args) -> KResult<u64> {
    const ARCH_SET_GS: i32 = 0x1001;
    const ARCH_SET_FS: i32 = 0x1002;
    const ARCH_GET_FS: i32 = 0x1003;
    const ARCH_GET_GS: i32 = 0x1004;
    match a.int(0) {
        ARCH_SET_FS | ARCH_SET_GS => {
            if a.u(1) >= crate::mm::USER_END {
                return Err(Errno::EPERM);
            }
            if a.int(0) == ARCH_SET_FS {
                t.regs.fs_base = a.u(1);
            } else {
                t.regs.gs_base = a.u(1);
            }
            Ok(0)
        }
        ARCH_GET_FS => t.write_obj(a.u(1), &t.regs.fs_base).map(|_| 0),
        ARCH_GET_GS => t.write_obj(a.u(1), &t.regs.gs_base).map(|_| 0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_prctl(t: &mut Task, a: &Args) -> KResult<u64> {
    const PR_SET_PDEATHSIG: i32 = 1;
    const PR_GET_PDEATHSIG: i32 = 2;
    const PR_GET_DUMPABLE: i32 = 3;
    const PR_SET_DUMPABLE: i32 = 4;
    const PR_SET_NAME: i32 = 15;
    const PR_GET_NAME: i32 = 16;
    const PR_GET_SECCOMP: i32 = 21;
    const PR_CAPBSET_READ: i32 = 23;
    const PR_SET_NO_NEW_PRIVS: i32 = 38;
    const PR_GET_KEEPCAPS: i32 = 7;
    const PR_SET_KEEPCAPS: i32 = 8;
    const PR_SET_CHILD_SUBREAPER: i32 = 36;
    const PR_GET_CHILD_SUBREAPER: i32 = 37;
    const PR_GET_NO_NEW_PRIVS: i32 = 39;
    match a.int(0) {
        PR_SET_NAME => {
            let mut buf = [0u8; 16];
            t.copy_in(a.u(1), &mut buf[..15]).or_else(|_| {
                // The name may end before a page boundary.
                t.read_cstr(a.u(1), 15)
                    .map(|s| buf[..s.len()].copy_from_slice(&s))
            })?;
            let end = buf.iter().position(|&b| b == 0).unwrap_or(15);
            *lock(&t.info.comm) = buf[..end].to_vec();
            Ok(0)
        }
        PR_GET_NAME => {
            let mut buf = [0u8; 16];
            let c = lock(&t.info.comm).clone();
            let n = c.len().min(15);
            buf[..n].copy_from_slice(&c[..n]);
            t.copy_out(a.u(1), &buf).map(|_| 0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE => {
            if a.u(1) > 1 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let sig = t.info.pdeathsig.load(std::sync::atomic::Ordering::Relaxed);
            t.write_obj(a.u(1), &sig).map(|_| 0)
        }
        PR_SET_PDEATHSIG => {
            if a.u(1) > 64 {
                return Err(Errno::EINVAL);
            }
            t.info
                .pdeathsig
                .store(a.u(1) as i32, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_KEEPCAPS => Ok(t.creds.keep_caps as u64),
        PR_SET_KEEPCAPS => {
            if a.u(1) > 1 {
                return Err(Errno::EINVAL);
            }
            t.creds.keep_caps = a.u(1) == 1;
            Ok(0)
        }
        PR_GET_SECCOMP => Ok(0),
        PR_CAPBSET_READ => {
            if a.u(1) > crate::kernel::creds::CAP_LAST as u64 {
                return Err(Errno::EINVAL);
            }
            Ok((t.creds.cap_bounding >> a.u(1)) & 1)
        }
        PR_SET_CHILD_SUBREAPER => {
            t.proc_()
                .subreaper
                .store(a.u(1) != 0, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let v = t
                .proc_()
                .subreaper
                .load(std::sync::atomic::Ordering::Relaxed) as i32;
            t.write_obj(a.u(1), &v).map(|_| 0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(t.creds.no_new_privs as u64),
        PR_SET_NO_NEW_PRIVS => {
            if a.u(1) != 1 || a.u(2) != 0 || a.u(3) != 0 || a.u(4) != 0 {
                return Err(Errno::EINVAL);
            }
            t.creds.no_new_privs = true;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_execve(t: &mut Task, a: &Args) -> KResult<u64> {
    let path = t.read_path(a.u(0))?;
    let argv = t.read_str_array(a.u(1))?;
    let envp = t.read_str_array(a.u(2))?;
    // Errors about the file come before the other threads die.
    let exe = crate::loader::resolve(t, &path, None, argv)?;
    crate::kernel::exec::de_thread(t)?;
    crate::kernel::exec::execve(t, exe, envp)?;
    Ok(0)
}

pub fn sys_execveat(t: &mut Task, a: &Args) -> KResult<u64> {
    let (dirfd, flags) = (a.int(0), a.int(4));
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.read_path(a.u(1)).or_else(|e| {
        if e == Errno::ENOENT {
            Ok(Vec::new())
        } else {
            Err(e)
        }
    })?;
    // Resolve to an absolute path the loader can walk again, or, for the
    // descriptor itself, to its file (named /dev/fd/N, as Linux does).
    let mut file = None;
    let target = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        let f = super::file::get_file(t, dirfd)?;
        file = Some(f.dentry.clone().ok_or(Errno::EACCES)?);
        format!("/dev/fd/{dirfd}").into_bytes()
    } else if path[0] == b'/' || dirfd == AT_FDCWD {
        path.clone()
    } else {
        let f = super::file::get_file(t, dirfd)?;
        let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
        if !d.meta().is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mut p = d.path();
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        p.extend_from_slice(&path);
        p
    };
    if flags & AT_SYMLINK_NOFOLLOW != 0 && !path.is_empty() {
        let d = crate::vfs::path::Walker::new(t).walk(&t.cwd(), &target, false)?;
        if d.meta().is_lnk() {
            return Err(Errno::ELOOP);
        }
    }
    let argv = t.read_str_array(a.u(2))?;
    let envp = t.read_str_array(a.u(3))?;
    let exe = crate::loader::resolve(t, &target, file, argv)?;
    crate::kernel::exec::de_thread(t)?;
    crate::kernel::exec::execve(t, exe, envp)?;
    Ok(0)
}
