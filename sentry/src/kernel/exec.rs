//! execve: replace a task's image, keeping what POSIX says survives.

use super::task::{SigAction, Task, SIG_IGN};
use crate::abi::*;
use crate::kernel::ThreadInfo;
use crate::loader;
use crate::vfs::lock;
use std::sync::{Arc, Mutex};

/// Replaces the task's image with the resolved executable (see
/// `loader::resolve`, done before other threads are killed).
pub fn execve(t: &mut Task, exe: loader::Resolved, envp: Vec<Vec<u8>>) -> KResult<()> {
    // The old image's robust futexes and clear_child_tid are settled in the
    // old image (a vfork parent sees the word cleared and woken).
    t.mm_release();
    let loaded = loader::load(t, exe, envp.clone())?;
    // Capabilities across exec (no file capabilities or set-id bits).
    t.creds.on_exec();
    let mut regs = t.ctx.initial_regs();
    regs.rip = loaded.entry;
    regs.rsp = loaded.sp;
    t.regs = regs;
    lock(&t.fds()).close_on_exec();
    // Handled signals go back to SIG_DFL; ignored ones stay ignored, but
    // every action loses its flags, mask and restorer (Linux's
    // flush_signal_handlers). The alternate signal stack is gone with the
    // old image.
    if let Ok(mut acts) = t.sigactions.lock() {
        for a in acts.iter_mut() {
            let handler = if a.handler == SIG_IGN { SIG_IGN } else { 0 };
            *a = SigAction {
                handler,
                ..SigAction::default()
            };
        }
    }
    t.altstack = (0, 0, SS_DISABLE);
    // The FPU/SSE/AVX registers start in their initial state.
    if let Ok(mut fp) = t.ctx.fp_state() {
        init_fp_state(&mut fp);
        let _ = t.ctx.set_fp_state(&fp);
    }
    // POSIX timers do not survive execve (interval timers do).
    let timers = std::mem::take(&mut *lock(&t.proc_().posix_timers));
    for tm in timers.into_values() {
        tm.delete();
    }
    let name = loaded.exe.name.clone();
    *lock(&t.info.comm) = name[..name.len().min(15)].to_vec();
    *lock(&t.info.argv) = loaded.argv;
    *lock(&t.info.envv) = envp;
    *lock(&t.info.exe) = Some(loaded.exe);
    t.release_vfork();
    Ok(())
}

/// execve in a multithreaded process: every other thread dies first, and a
/// non-leader caller takes over the thread group id (as Linux's de_thread).
pub fn de_thread(t: &mut Task) -> KResult<()> {
    let p = t.proc_().clone();
    // Marked and killed under the process lock: a thread leaving the group
    // after this knows its stub was killed (and does not reuse it).
    let others: Vec<Arc<ThreadInfo>> = {
        let ps = p.lock();
        let mut others = Vec::new();
        for (&tid, &host) in ps.threads.iter().filter(|(tid, _)| **tid != t.tid) {
            if let Some(th) = t.k.thread(tid) {
                th.exec_kill
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                others.push(th);
            }
            if host > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(host),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        others
    };
    if others.is_empty() {
        return Ok(());
    }
    for th in &others {
        crate::signals::kick(th);
    }
    // Wait (bounded) for them to leave the thread group.
    for _ in 0..2000 {
        if p.lock().threads.keys().all(|tid| *tid == t.tid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if !p.lock().threads.keys().all(|tid| *tid == t.tid) {
        return Err(Errno::EAGAIN);
    }
    if t.tid != t.tgid {
        // Become the leader: the pid stays the process's.
        let old = t.tid;
        let host = p.lock().threads.remove(&old).unwrap_or(0);
        p.lock().threads.insert(t.tgid, host);
        t.k.unregister(old);
        let info = Arc::new(ThreadInfo {
            tid: t.tgid,
            tgid: t.tgid,
            proc_: p.clone(),
            mm: Mutex::new(t.mm()),
            fds: Mutex::new(t.fds()),
            fs: t.info.fs.clone(),
            comm: Mutex::new(lock(&t.info.comm).clone()),
            argv: Mutex::new(lock(&t.info.argv).clone()),
            envv: Mutex::new(lock(&t.info.envv).clone()),
            exe: Mutex::new(t.info.exe()),
            sigactions: t.sigactions.clone(),
            sigmask: std::sync::atomic::AtomicU64::new(t.sigmask),
            signals: Mutex::new(std::mem::take(&mut *lock(&t.info.signals))),
            blocker: Mutex::new(None),
            sleeper: Default::default(),
            exec_kill: Default::default(),
            pdeathsig: std::sync::atomic::AtomicI32::new(
                t.info.pdeathsig.load(std::sync::atomic::Ordering::Relaxed),
            ),
            affinity: Mutex::new(lock(&t.info.affinity).clone()),
        });
        t.k.register(info.clone());
        crate::signals::set_current(info.clone());
        t.info = info;
        t.tid = t.tgid;
    }
    Ok(())
}

/// Turns an FXSAVE/XSAVE image into the processor's initial FP state:
/// x87 control word 0x37f, MXCSR 0x1f80, every register zero; of the XSAVE
/// components only x87 and SSE marked present (with those values), the
/// others initial. MXCSR_MASK and the software-reserved bytes, which
/// describe the format, are kept.
pub fn init_fp_state(fp: &mut [u8]) {
    if fp.len() < 512 {
        return;
    }
    let mxcsr_mask: [u8; 4] = [fp[28], fp[29], fp[30], fp[31]];
    fp[..464].fill(0);
    fp[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
    fp[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    fp[28..32].copy_from_slice(&mxcsr_mask);
    if fp.len() >= 520 {
        fp[512..520].copy_from_slice(&3u64.to_le_bytes()); // XSTATE_BV
    }
}
