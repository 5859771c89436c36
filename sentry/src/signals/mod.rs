//! Signals: queues per thread and per process, sending, interruptible
//! blocking, delivery with rt_sigframe, and rt_sigreturn.
//!
//! Every blocking wait in the sentry goes through [`wait`], which also
//! returns when a signal the thread does not block becomes pending.

use crate::abi::*;
use crate::kernel::process::Process;
use crate::kernel::task::{ExitStatus, Task, SIG_DFL, SIG_IGN};
use crate::kernel::{Kernel, ThreadInfo};
use crate::vfs::lock;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

pub const SIGKILL: i32 = 9;
pub const SIGSTOP: i32 = 19;
pub const SIGCHLD: i32 = 17;
pub const SA_SIGINFO: u64 = 4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_NOCLDWAIT: u64 = 2;

pub const SI_USER: i32 = 0;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;

pub fn bit(sig: i32) -> u64 {
    1u64 << ((sig - 1) & 63)
}

pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

#[derive(Clone, Copy, Debug, Default)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    pub pid: i32,
    pub uid: u32,
    pub status: i32,
    pub addr: u64,
}

impl SigInfo {
    pub fn user(signo: i32, pid: i32) -> SigInfo {
        SigInfo {
            signo,
            code: SI_USER,
            pid,
            ..Default::default()
        }
    }

    /// The 128-byte siginfo_t as the workload sees it.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        match self.signo {
            4 | 5 | 7 | 8 | 11 if self.code > 0 => {
                b[16..24].copy_from_slice(&self.addr.to_le_bytes())
            }
            // SI_QUEUE and SI_MESGQ (pid, uid, sigval) and SI_TIMER (timer
            // id, overrun, sigval) carry a full 64-bit value.
            _ if matches!(self.code, -3..=-1) => {
                b[16..20].copy_from_slice(&self.pid.to_le_bytes());
                b[20..24].copy_from_slice(&self.uid.to_le_bytes());
                b[24..32].copy_from_slice(&self.addr.to_le_bytes());
            }
            _ => {
                b[16..20].copy_from_slice(&self.pid.to_le_bytes());
                b[20..24].copy_from_slice(&self.uid.to_le_bytes());
                b[24..28].copy_from_slice(&self.status.to_le_bytes());
            }
        }
        b
    }
}

/// Pending signals (standard signals coalesce: one entry per number).
#[derive(Default)]
pub struct SigQueue {
    pub pending: BTreeMap<i32, SigInfo>,
}

impl SigQueue {
    pub fn bits(&self) -> u64 {
        self.pending.keys().fold(0, |m, &s| m | bit(s))
    }
}

/// Something a blocked thread sleeps on; a signal sender wakes it.
pub trait Wakeable: Send + Sync {
    /// Take the waiter's lock and notify its condition variable.
    fn wake_all(&self);
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<ThreadInfo>>> = const { RefCell::new(None) };
}

/// Mark the calling host thread as driving `th` (for [`wait`]).
pub fn set_current(th: Arc<ThreadInfo>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(th));
}

/// The calling host thread drives no task any more (a parked worker must
/// not keep the old task's memory alive).
pub fn clear_current() {
    CURRENT.with(|c| *c.borrow_mut() = None);
}

pub fn current() -> Option<Arc<ThreadInfo>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The thread the calling host thread drives, if any (signalfd reads and
/// polls the caller's own queues).
pub fn current_thread() -> Option<Arc<ThreadInfo>> {
    current()
}

/// Whether the calling host thread drives `th`.
fn is_current(th: &ThreadInfo) -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_deref()
            .is_some_and(|cur| std::ptr::eq(cur, th))
    })
}

/// Whether the calling task should leave a blocking host call now.
pub fn current_interrupted() -> bool {
    match current() {
        Some(th) => {
            has_unblocked(&th)
                || th.proc_.lock_exit_pending()
                || th.exec_kill.load(Ordering::Relaxed)
        }
        None => false,
    }
}

/// Whether `th` has a pending signal it does not block.
pub fn has_unblocked(th: &ThreadInfo) -> bool {
    let mask = th.sigmask.load(Ordering::Relaxed) & !UNBLOCKABLE;
    let pending = lock(&th.signals).bits() | lock(&th.proc_.signals).bits();
    pending & !mask != 0
}

pub enum WaitOutcome {
    Woken,
    TimedOut,
    Interrupted,
}

/// Sleep on `cv` (with `g` held) until notified, `deadline`, or a signal.
/// Callers loop re-checking their own condition.
pub fn wait<'a, T>(
    w: Arc<dyn Wakeable>,
    cv: &Condvar,
    g: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> (MutexGuard<'a, T>, WaitOutcome) {
    let th = current();
    if let Some(th) = &th {
        *lock(&th.blocker) = Some(w);
        if has_unblocked(th) || th.proc_.lock_exit_pending() || th.exec_kill.load(Ordering::Relaxed)
        {
            *lock(&th.blocker) = None;
            return (g, WaitOutcome::Interrupted);
        }
    }
    let (g, timed_out) = match deadline {
        None => (cv.wait(g).unwrap_or_else(|e| e.into_inner()), false),
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                (g, true)
            } else {
                let (g, r) = cv
                    .wait_timeout(g, d - now)
                    .unwrap_or_else(|e| e.into_inner());
                (g, r.timed_out())
            }
        }
    };
    if let Some(th) = &th {
        *lock(&th.blocker) = None;
        if has_unblocked(th) || th.proc_.lock_exit_pending() || th.exec_kill.load(Ordering::Relaxed)
        {
            return (g, WaitOutcome::Interrupted);
        }
    }
    (
        g,
        if timed_out {
            WaitOutcome::TimedOut
        } else {
            WaitOutcome::Woken
        },
    )
}

/// Make `th` notice a new signal: wake it if blocked, else stop its stub.
pub fn kick(th: &ThreadInfo) {
    let b = lock(&th.blocker).clone();
    match b {
        Some(w) => w.wake_all(),
        // The calling host thread drives `th`: it is in the sentry now and
        // looks at its signals before the stub runs again. (A SIGURG would
        // only cost the stub an extra stop.)
        None if is_current(th) => {}
        None => {
            let host = th.proc_.lock().threads.get(&th.tid).copied().unwrap_or(0);
            if host > 0 {
                // Any signal makes a traced stub stop; the sentry discards it.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(host),
                    nix::sys::signal::Signal::SIGURG,
                );
            }
        }
    }
}

/// Whether `th` would discard `sig` on arrival: ignored (explicitly or by
/// default) and not blocked — Linux drops such signals when they are sent,
/// so they never interrupt a blocking call.
fn discarded(th: &ThreadInfo, sig: i32) -> bool {
    if sig == SIGKILL || sig == SIGSTOP {
        return false;
    }
    let a = lock(&th.sigactions)[(sig - 1) as usize & 63];
    let ignored = a.handler == SIG_IGN || (a.handler == SIG_DFL && default_ignored(sig));
    ignored && th.sigmask.load(Ordering::Relaxed) & bit(sig) == 0
}

pub fn send_thread(k: &Kernel, th: &ThreadInfo, info: SigInfo) {
    if info.signo == 0 {
        return;
    }
    if info.signo == SIGCONT || default_stops(info.signo) {
        jobctl_on_send(k, &th.proc_, info.signo);
    }
    if discarded(th, info.signo) {
        return;
    }
    lock(&th.signals).pending.entry(info.signo).or_insert(info);
    kick(th);
}

pub fn send_process(k: &Kernel, p: &Process, info: SigInfo) {
    if info.signo == 0 {
        return;
    }
    // The sandbox's init ignores signals from inside the sandbox that it
    // has no handler for (even SIGKILL), unless it blocks them (it may be
    // waiting for them) or the kernel generated them (timers, SIGCHLD).
    if p.tgid == 1 && from_user(info.code) {
        if let Some(t) = k.thread(1) {
            let a = lock(&t.sigactions)[(info.signo - 1) as usize & 63];
            let blocked = t.sigmask.load(Ordering::Relaxed) & bit(info.signo) != 0;
            if (a.handler == SIG_DFL || a.handler == SIG_IGN) && !blocked {
                return;
            }
        }
    }
    queue_process(k, p, info);
}

/// A signal from outside the sandbox (the runtime's `kill`): SI_USER from
/// pid 0. As for a signal from an ancestor pid namespace, the init gets it
/// only when it handles it, blocks it, or it is SIGKILL or SIGSTOP.
pub fn send_from_host(k: &Kernel, p: &Process, sig: i32) {
    if p.tgid == 1 && sig != SIGKILL && sig != SIGSTOP {
        if let Some(t) = k.thread(1) {
            let a = lock(&t.sigactions)[(sig - 1) as usize & 63];
            let blocked = t.sigmask.load(Ordering::Relaxed) & bit(sig) != 0;
            if a.handler == SIG_DFL && !blocked {
                return;
            }
        }
    }
    queue_process(
        k,
        p,
        SigInfo {
            signo: sig,
            ..Default::default()
        },
    );
}

fn queue_process(k: &Kernel, p: &Process, info: SigInfo) {
    jobctl_on_send(k, p, info.signo);
    let threads = k.threads_of(p.tgid);
    if !threads.is_empty() && threads.iter().all(|th| discarded(th, info.signo)) {
        return;
    }
    lock(&p.signals).pending.entry(info.signo).or_insert(info);
    for th in k.threads_of(p.tgid) {
        kick(&th);
    }
}

/// Whether a signal was sent by a process (kill, tkill, sigqueue) rather
/// than generated by the kernel.
pub fn from_user(code: i32) -> bool {
    code <= 0 && code != -2 /* SI_TIMER */
}

fn default_ignored(sig: i32) -> bool {
    matches!(
        sig,
        SIGCHLD | 23 /* URG */ | 28 /* WINCH */ | 18 /* CONT */
    )
}

fn default_stops(sig: i32) -> bool {
    matches!(sig, SIGSTOP | 20 | 21 | 22)
}

const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

// rt_sigframe layout (x86-64).
const UC_OFF: u64 = 8;
const MCTX_OFF: u64 = UC_OFF + 40;
const UC_SIGMASK: u64 = 296;
const MASK_OFF: u64 = UC_OFF + UC_SIGMASK;
const INFO_OFF: u64 = UC_OFF + 304;
const FRAME_SIZE: u64 = INFO_OFF + 128;

impl Task {
    /// The termination status for `sig`: with the core bit when the signal
    /// dumps core by default and RLIMIT_CORE allows a dump.
    pub fn core_status(&self, sig: i32) -> i32 {
        let dumps = matches!(sig, 3 | 4 | 5 | 6 | 7 | 8 | 11 | 24 | 25 | 31);
        if dumps && self.rlimit(4).cur > 0 {
            sig | 0x80
        } else {
            sig
        }
    }

    /// End a call that ran under a temporary signal mask (sigsuspend,
    /// ppoll, pselect6) with EINTR: deliver now, under that mask; a frame
    /// built meanwhile restores `old` on sigreturn, otherwise `old` comes
    /// back at once.
    pub fn deliver_under_temporary_mask(&mut self, old: u64) -> Errno {
        self.regs.rax = (-(Errno::EINTR.0 as i64)) as u64;
        let rip = self.regs.rip;
        self.deliver_signals(None);
        if self.regs.rip != rip {
            // uc_sigmask of the frame just built (rdx points at the ucontext).
            let _ = self.write_obj(self.regs.rdx + UC_SIGMASK, &old);
        } else {
            self.set_sigmask(old);
        }
        Errno::EINTR
    }

    pub fn set_sigmask(&mut self, m: u64) {
        self.sigmask = m & !UNBLOCKABLE;
        self.info.sigmask.store(self.sigmask, Ordering::Relaxed);
    }

    fn dequeue(&mut self) -> Option<SigInfo> {
        let mask = self.sigmask & !UNBLOCKABLE;
        let pick = |q: &mut SigQueue| {
            let s = q.pending.keys().copied().find(|&s| bit(s) & mask == 0)?;
            q.pending.remove(&s)
        };
        if let Some(i) = pick(&mut lock(&self.info.signals)) {
            return Some(i);
        }
        pick(&mut lock(&self.info.proc_.signals))
    }

    /// Deliver pending signals before returning to user code. `restart` is
    /// the ERESTART* code of an interrupted syscall, if any.
    pub fn deliver_signals(&mut self, mut restart: Option<Errno>) {
        while let Some(info) = self.dequeue() {
            let sig = info.signo;
            let act = lock(&self.sigactions)[(sig - 1) as usize & 63];
            if sig == SIGKILL {
                self.exit = Some(ExitStatus::Signaled(SIGKILL));
                self.group_exit = true;
                return;
            }
            if act.handler == SIG_IGN || (act.handler == SIG_DFL && default_ignored(sig)) {
                continue;
            }
            if act.handler == SIG_DFL && default_stops(sig) {
                self.group_stop(sig);
                continue;
            }
            if act.handler == SIG_DFL {
                self.exit = Some(ExitStatus::Signaled(self.core_status(sig)));
                self.group_exit = true;
                return;
            }
            // A handler runs: settle the interrupted syscall first.
            if restart == Some(Errno::ERESTART_RESTARTBLOCK) {
                self.restart_deadline = None;
            }
            if let Some(r) = restart.take() {
                let again = r == Errno::ERESTARTNOINTR
                    || (r == Errno::ERESTARTSYS && act.flags & SA_RESTART != 0);
                if again {
                    self.regs.rax = self.regs.orig_rax;
                    self.regs.rip -= 2;
                } else {
                    self.regs.rax = (-(Errno::EINTR.0 as i64)) as u64;
                }
            }
            if let Err(e) = self.setup_frame(&info, &act) {
                tracing::debug!(sig, ?e, "cannot build signal frame; killing");
                self.exit = Some(ExitStatus::Signaled(11));
                self.group_exit = true;
                return;
            }
            if act.flags & SA_RESETHAND != 0 {
                lock(&self.sigactions)[(sig - 1) as usize & 63] = Default::default();
            }
            return;
        }
        // Nothing handled the interruption: restart transparently.
        if let Some(r) = restart {
            if r == Errno::ERESTART_RESTARTBLOCK
                || r == Errno::ERESTARTSYS
                || r == Errno::ERESTARTNOINTR
                || r == Errno::ERESTARTNOHAND
            {
                self.regs.rax = self.regs.orig_rax;
                self.regs.rip -= 2;
            }
        }
    }

    fn setup_frame(&mut self, info: &SigInfo, act: &crate::kernel::task::SigAction) -> KResult<()> {
        let fx = self.ctx.fp_state().map_err(|_| Errno::EFAULT)?;
        let r = self.regs;
        let (ss_sp, ss_size, ss_flags) = self.altstack;
        let on_alt = ss_size > 0 && r.rsp.wrapping_sub(ss_sp) < ss_size;
        let mut sp = if act.flags & SA_ONSTACK != 0 && ss_size > 0 && !on_alt {
            ss_sp + ss_size
        } else {
            r.rsp.wrapping_sub(128) // red zone
        };
        // The FP area: XSAVE layout plus FP_XSTATE_MAGIC2 after it when the
        // full state was saved (its sw_reserved bytes carry FP_XSTATE_MAGIC1).
        let xsave = fx.len() > 512;
        let mut fpimg = fx.clone();
        if xsave {
            // The software-reserved bytes of the FXSAVE area describe it.
            let len = fx.len() as u32;
            let xfeatures = u64::from_le_bytes(fx[512..520].try_into().unwrap_or([0; 8])) | 3;
            fpimg[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
            fpimg[468..472].copy_from_slice(&(len + 4).to_le_bytes());
            if u64::from_le_bytes(fpimg[472..480].try_into().unwrap_or([0; 8])) == 0 {
                fpimg[472..480].copy_from_slice(&xfeatures.to_le_bytes());
            }
            fpimg[480..484].copy_from_slice(&len.to_le_bytes());
            fpimg.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
        }
        sp = (sp - fpimg.len() as u64) & !63;
        let fp_addr = sp;
        sp = ((sp - FRAME_SIZE) & !15) - 8;
        let frame = sp;
        let mut f = vec![0u8; FRAME_SIZE as usize];
        let put = |f: &mut Vec<u8>, off: u64, v: u64| {
            f[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut f, 0, act.restorer);
        // uc_flags: UC_FP_XSTATE when the XSAVE area follows.
        put(&mut f, UC_OFF, if xsave { 1 } else { 0 });
        // uc_stack
        put(&mut f, UC_OFF + 16, ss_sp);
        f[(UC_OFF + 24) as usize..(UC_OFF + 28) as usize]
            .copy_from_slice(&(if on_alt { 1i32 } else { ss_flags }).to_le_bytes());
        put(&mut f, UC_OFF + 32, ss_size);
        let gp = [
            r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx,
            r.rdx, r.rax, r.rcx, r.rsp, r.rip, r.eflags,
        ];
        for (i, v) in gp.iter().enumerate() {
            put(&mut f, MCTX_OFF + i as u64 * 8, *v);
        }
        let segs: u64 = (r.cs & 0xffff)
            | ((r.gs & 0xffff) << 16)
            | ((r.fs & 0xffff) << 32)
            | ((r.ss & 0xffff) << 48);
        put(&mut f, MCTX_OFF + 144, segs);
        put(&mut f, MCTX_OFF + 176, self.sigmask); // oldmask
        put(
            &mut f,
            MCTX_OFF + 184,
            if info.code > 0 { info.addr } else { 0 },
        ); // cr2
        put(&mut f, MCTX_OFF + 192, fp_addr);
        put(&mut f, MASK_OFF, self.sigmask);
        f[INFO_OFF as usize..].copy_from_slice(&info.to_bytes());
        {
            let mm = self.mm();
            let mut mm = lock(&mm);
            mm.copy_out(fp_addr, &fpimg)?;
            mm.copy_out(frame, &f)?;
        }
        let mut mask = self.sigmask | act.mask;
        if act.flags & SA_NODEFER == 0 {
            mask |= bit(info.signo);
        }
        self.set_sigmask(mask);
        self.regs.rsp = frame;
        self.regs.rip = act.handler;
        self.regs.rdi = info.signo as u64;
        self.regs.rsi = frame + INFO_OFF;
        self.regs.rdx = frame + UC_OFF;
        self.regs.rax = 0;
        self.regs.eflags &= !(0x100 | 0x400); // TF, DF
        Ok(())
    }

    /// rt_sigreturn: restore the context saved by `setup_frame`.
    pub fn sigreturn(&mut self) -> KResult<u64> {
        let uc = self.regs.rsp; // the restorer's `ret` popped pretcode
        let mut m = vec![0u8; 304];
        self.copy_in(uc, &mut m)?;
        let g = |off: u64| {
            let o = (off - UC_OFF + UC_OFF) as usize;
            let mut b = [0u8; 8];
            b.copy_from_slice(&m[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let mc = 40u64;
        let v: Vec<u64> = (0..18).map(|i| g(mc + i * 8)).collect();
        let mut r = self.regs;
        r.r8 = v[0];
        r.r9 = v[1];
        r.r10 = v[2];
        r.r11 = v[3];
        r.r12 = v[4];
        r.r13 = v[5];
        r.r14 = v[6];
        r.r15 = v[7];
        r.rdi = v[8];
        r.rsi = v[9];
        r.rbp = v[10];
        r.rbx = v[11];
        r.rdx = v[12];
        r.rax = v[13];
        r.rcx = v[14];
        r.rsp = v[15];
        r.rip = v[16];
        // Only the user-changeable flags come from the frame.
        const FLAG_MASK: u64 = 0x0000_0000_0025_0dd5;
        r.eflags = (self.regs.eflags & !FLAG_MASK) | (v[17] & FLAG_MASK);
        r.orig_rax = u64::MAX;
        let fp = g(mc + 192);
        let mask = g(256 + 40);
        if fp != 0 {
            let mut fx = vec![0u8; 512];
            self.copy_in(fp, &mut fx)?;
            let magic1 = u32::from_le_bytes([fx[464], fx[465], fx[466], fx[467]]);
            let xstate_size = u32::from_le_bytes([fx[480], fx[481], fx[482], fx[483]]) as usize;
            if magic1 == FP_XSTATE_MAGIC1 && (576..=1 << 16).contains(&xstate_size) {
                let mut xs = vec![0u8; xstate_size];
                self.copy_in(fp, &mut xs)?;
                self.ctx.set_fp_state(&xs).map_err(|_| Errno::EFAULT)?;
            } else {
                self.ctx.set_fp_state(&fx).map_err(|_| Errno::EFAULT)?;
            }
        }
        self.regs = r;
        self.set_sigmask(mask);
        Ok(r.rax)
    }
}

impl Wakeable for crate::fs::pipe::Pipe {
    fn wake_all(&self) {
        self.notify();
    }
}

impl Wakeable for Process {
    fn wake_all(&self) {
        let _g = self.lock();
        self.child_event.notify_all();
        self.stop_cv.notify_all();
    }
}

pub const SIGCONT: i32 = 18;
const SA_NOCLDSTOP: u64 = 1;
const CLD_STOPPED: i32 = 5;
const CLD_CONTINUED: i32 = 6;

/// Tell a process's parent about a stop or continue (wait and SIGCHLD).
fn notify_parent_jobctl(k: &Kernel, p: &Process, code: i32, status: i32) {
    let Some(parent) = k.process(p.ppid()) else {
        return;
    };
    {
        let _g = parent.lock();
        parent.child_event.notify_all();
    }
    let nocldstop = k
        .threads_of(parent.tgid)
        .first()
        .map(|t| lock(&t.sigactions)[(SIGCHLD - 1) as usize].flags & SA_NOCLDSTOP != 0)
        .unwrap_or(false);
    if !nocldstop {
        let info = SigInfo {
            signo: SIGCHLD,
            code,
            pid: p.tgid,
            uid: 0,
            status,
            addr: 0,
        };
        send_process(k, &parent, info);
    }
}

/// SIGCONT side effects at generation time: resume a stopped process and
/// drop pending stop signals; a stop signal drops a pending SIGCONT.
fn jobctl_on_send(k: &Kernel, p: &Process, sig: i32) {
    if sig == SIGCONT {
        let was_stopped = {
            let mut st = p.lock();
            let was = st.stopped.take().is_some();
            if was {
                st.cont_report = true;
                st.stop_report = None;
            }
            p.stop_cv.notify_all();
            was
        };
        {
            let mut q = lock(&p.signals);
            for s in [SIGSTOP, 20, 21, 22] {
                q.pending.remove(&s);
            }
        }
        if was_stopped {
            notify_parent_jobctl(k, p, CLD_CONTINUED, SIGCONT);
        }
    } else if default_stops(sig) {
        lock(&p.signals).pending.remove(&SIGCONT);
    }
}

impl Task {
    /// Default action of a stop signal: stop every thread of the process.
    fn group_stop(&mut self, sig: i32) {
        let p = self.proc_().clone();
        {
            let mut st = p.lock();
            if st.stopped.is_some() {
                return;
            }
            st.stopped = Some(sig);
            st.stop_report = Some(sig);
            st.cont_report = false;
        }
        for th in self.k.threads_of(self.tgid) {
            if th.tid != self.tid {
                kick(&th);
            }
        }
        notify_parent_jobctl(&self.k, &p, CLD_STOPPED, sig);
    }

    /// Sleep while the process is stopped; SIGKILL ends the stop.
    pub fn wait_while_stopped(&mut self) {
        let p = self.proc_().clone();
        // Register before checking, so a SIGKILL/SIGCONT sent in between
        // finds us and wakes us.
        *lock(&self.info.blocker) = Some(p.clone());
        let mut st = p.lock();
        while st.stopped.is_some() {
            let killed = lock(&self.info.signals).pending.contains_key(&SIGKILL)
                || lock(&p.signals).pending.contains_key(&SIGKILL);
            if killed || p.lock_exit_pending() {
                break;
            }
            st = p.stop_cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        drop(st);
        *lock(&self.info.blocker) = None;
    }
}

/// A per-task sleeping place for nanosleep, pause and sigsuspend.
#[derive(Default)]
pub struct Sleeper {
    pub m: Mutex<()>,
    pub cv: Condvar,
}

impl Wakeable for Sleeper {
    fn wake_all(&self) {
        let _g = lock(&self.m);
        self.cv.notify_all();
    }
}
