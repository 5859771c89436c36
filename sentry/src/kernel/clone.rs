//! clone: new tasks (threads or processes), each driven by its own sentry
//! thread, which creates the task's stub (the ptrace tracer must be the
//! thread that drives it). A sentry thread whose task has exited parks with
//! its stub (up to `MAX_IDLE` of them) and drives the next new task: that
//! saves a host thread and a stub fork, most of what creating a thread
//! costs.

use super::process::Process;
use super::task::{ExitStatus, Task};
use super::{FsContext, ThreadInfo};
use crate::abi::*;
use crate::vfs::lock;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
const CLONE_CHILD_SETTID: u64 = 0x0100_0000;

/// `pidfd`: the CLONE_PIDFD descriptor to name the new process.
pub fn spawn(
    t: &mut Task,
    flags: u64,
    stack: u64,
    ptid: u64,
    ctid: u64,
    tls: u64,
    pidfd: Option<Arc<crate::fs::pidfd::PidFd>>,
) -> KResult<u64> {
    let k = t.k.clone();
    // The sandbox's pids limit (every task is a host thread and a stub
    // process, so this also protects the host), and RLIMIT_NPROC.
    if k.task_count() >= k.pids_limit.load(Ordering::Relaxed) {
        return Err(Errno::EAGAIN);
    }
    // RLIMIT_NPROC counts the tasks (threads included) of the caller's
    // real user; CAP_SYS_RESOURCE or CAP_SYS_ADMIN lifts it.
    let nproc = t.rlimit(6).cur;
    if nproc != RLIM_INFINITY
        && !t.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE)
        && !t.creds.has_cap(21 /* CAP_SYS_ADMIN */)
    {
        let uid = t.creds.uid;
        let tasks: usize = k
            .processes()
            .iter()
            .filter(|p| p.ruid.load(Ordering::Relaxed) == uid && p.lock().exit.is_none())
            .map(|p| p.lock().threads.len())
            .sum();
        if tasks as u64 >= nproc {
            return Err(Errno::EAGAIN);
        }
    }
    let tid = k.alloc_pid();
    let mm = if flags & CLONE_VM != 0 {
        t.mm()
    } else {
        let copy = lock(&t.mm()).fork_copy(k.platform.new_address_space())?;
        Arc::new(Mutex::new(copy))
    };
    let fds = if flags & CLONE_FILES != 0 {
        t.fds()
    } else {
        Arc::new(Mutex::new(lock(&t.fds()).clone()))
    };
    let fs = if flags & CLONE_FS != 0 {
        t.info.fs.clone()
    } else {
        let f = lock(&t.info.fs);
        Arc::new(Mutex::new(FsContext {
            root: f.root.clone(),
            cwd: f.cwd.clone(),
            umask: f.umask,
        }))
    };
    let sigactions = if flags & CLONE_SIGHAND != 0 {
        t.sigactions.clone()
    } else {
        Arc::new(Mutex::new(*lock(&t.sigactions)))
    };
    let (proc_, tgid) = if flags & CLONE_THREAD != 0 {
        (t.proc_().clone(), t.tgid)
    } else {
        let parent = if flags & CLONE_PARENT != 0 {
            t.proc_().ppid()
        } else {
            t.tgid
        };
        let me = t.proc_();
        let p = Arc::new(Process::new(
            tid,
            parent,
            me.pgid.load(std::sync::atomic::Ordering::Relaxed),
            me.sid.load(std::sync::atomic::Ordering::Relaxed),
        ));
        *lock(&p.rlimits) = *lock(&me.rlimits);
        *lock(&p.oom) = *lock(&me.oom);
        p.ruid.store(t.creds.uid, Ordering::Relaxed);
        if let Some(fd) = &pidfd {
            fd.set(p.clone());
        }
        k.add_process(p.clone());
        if let Some(pp) = k.process(parent) {
            pp.lock().children.insert(tid);
        }
        (p, tid)
    };
    proc_.lock().threads.insert(tid, 0);
    let info = Arc::new(ThreadInfo {
        tid,
        tgid,
        proc_: proc_.clone(),
        mm: Mutex::new(mm.clone()),
        fds: Mutex::new(fds),
        fs,
        comm: Mutex::new(lock(&t.info.comm).clone()),
        argv: Mutex::new(lock(&t.info.argv).clone()),
        envv: Mutex::new(lock(&t.info.envv).clone()),
        exe: Mutex::new(t.info.exe()),
        sigactions: sigactions.clone(),
        sigmask: std::sync::atomic::AtomicU64::new(t.sigmask),
        signals: Mutex::new(Default::default()),
        blocker: Mutex::new(None),
        sleeper: Default::default(),
        exec_kill: Default::default(),
        pdeathsig: Default::default(),
        affinity: Mutex::new(lock(&t.info.affinity).clone()),
    });
    k.register(info.clone());

    let mut regs = t.regs;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    if flags & CLONE_SETTLS != 0 {
        regs.fs_base = tls;
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        t.write_obj(ptid, &(tid as u32))?;
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        lock(&mm).copy_out(ctid, &(tid as u32).to_le_bytes())?;
    }
    let vfork = (flags & CLONE_VFORK != 0).then(|| Arc::new((Mutex::new(false), Condvar::new())));
    let spec = ChildSpec {
        k: k.clone(),
        tid,
        tgid,
        info,
        regs,
        creds: t.creds(),
        sigactions,
        sigmask: t.sigmask,
        clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
            ctid
        } else {
            0
        },
        vfork: vfork.clone(),
        // The child starts with the parent's FP registers, as on Linux.
        fp: t.ctx.fp_state().ok(),
        altstack: if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
            (0, 0, 2)
        } else {
            t.altstack
        },
        debug: t.debug,
    };
    if let Err(spec) = k.workers.hand_over(Box::new(spec)) {
        let builder = std::thread::Builder::new()
            .name(format!("task-{tid}"))
            .stack_size(256 * 1024);
        if builder.spawn(move || worker(spec)).is_err() {
            proc_.lock().threads.remove(&tid);
            k.unregister(tid);
            return Err(Errno::EAGAIN);
        }
    }
    if let Some(v) = vfork {
        let mut done = lock(&v.0);
        while !*done {
            done = v.1.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
    Ok(tid as u64)
}

pub struct ChildSpec {
    k: Arc<super::Kernel>,
    tid: i32,
    tgid: i32,
    info: Arc<ThreadInfo>,
    regs: crate::platform::Regs,
    creds: super::creds::Creds,
    sigactions: Arc<Mutex<[super::task::SigAction; 64]>>,
    sigmask: u64,
    clear_child_tid: u64,
    vfork: Option<Arc<(Mutex<bool>, Condvar)>>,
    /// The parent's FP state (FXSAVE/XSAVE image), if it could be read.
    fp: Option<Vec<u8>>,
    altstack: (u64, u64, i32),
    debug: bool,
}

/// Most sentry threads kept parked with their stubs.
const MAX_IDLE: usize = 16;

/// Parked sentry threads, each waiting for a task to drive.
#[derive(Default)]
pub struct Workers {
    idle: Mutex<Vec<std::sync::mpsc::Sender<Box<ChildSpec>>>>,
}

impl Workers {
    /// Gives `spec` to a parked worker; back when there is none.
    fn hand_over(&self, mut spec: Box<ChildSpec>) -> Result<(), Box<ChildSpec>> {
        loop {
            let Some(tx) = lock(&self.idle).pop() else {
                return Err(spec);
            };
            match tx.send(spec) {
                Ok(()) => return Ok(()),
                Err(std::sync::mpsc::SendError(back)) => spec = back,
            }
        }
    }

    /// Parks a worker (false when enough are parked already).
    fn park(&self, tx: std::sync::mpsc::Sender<Box<ChildSpec>>) -> bool {
        let mut idle = lock(&self.idle);
        if idle.len() >= MAX_IDLE {
            return false;
        }
        idle.push(tx);
        true
    }
}

/// A sentry thread: drives `first`, then, parked with its stub, the tasks
/// clone hands it, until the pool is full.
fn worker(first: Box<ChildSpec>) {
    let mut spec = first;
    let mut ctx: Option<Box<dyn crate::platform::Context>> = None;
    loop {
        let k = spec.k.clone();
        let c = match ctx.take() {
            Some(c) => c,
            None => match k.platform.new_context() {
                Ok(c) => c,
                Err(e) => {
                    start_failed(&spec, &e.to_string());
                    return;
                }
            },
        };
        let Some(mut c) = run_child(*spec, c) else {
            return;
        };
        crate::signals::clear_current();
        let host = c.host_pid();
        let (tx, rx) = std::sync::mpsc::channel();
        if !c.reusable() || !k.workers.park(tx) {
            crate::kernel::timers::forget_stub(host);
            return;
        }
        ctx = Some(c);
        match rx.recv() {
            Ok(next) => spec = next,
            Err(_) => return,
        }
    }
}

/// No stub for the new task: it never runs.
fn start_failed(s: &ChildSpec, why: &str) {
    tracing::error!("task {}: cannot start stub: {why}", s.tid);
    let p = s.info.proc_.clone();
    p.lock().threads.remove(&s.tid);
    s.k.unregister(s.tid);
    if let Some(v) = &s.vfork {
        *lock(&v.0) = true;
        v.1.notify_all();
    }
    if p.lock().threads.is_empty() {
        super::process_exit(&s.k, &p, ExitStatus::Signaled(libc::SIGKILL));
    }
}

/// Runs the task of `s` on `ctx`; gives the stub back when the task ended
/// in a way that leaves it fit to drive another (see `Task::reusable`).
fn run_child(
    s: ChildSpec,
    mut ctx: Box<dyn crate::platform::Context>,
) -> Option<Box<dyn crate::platform::Context>> {
    if let Some(fp) = &s.fp {
        let _ = ctx.set_fp_state(fp);
    }
    crate::kernel::timers::rebase_stub(ctx.host_pid());
    s.info.proc_.lock().threads.insert(s.tid, ctx.host_pid());
    ctx.colocate(s.tid as usize);
    crate::signals::set_current(s.info.clone());
    let mut task = Task {
        k: s.k,
        tid: s.tid,
        tgid: s.tgid,
        info: s.info,
        regs: s.regs,
        ctx,
        creds: s.creds,
        sigactions: s.sigactions,
        sigmask: s.sigmask,
        clear_child_tid: s.clear_child_tid,
        robust_list: (0, 0),
        exit: None,
        group_exit: false,
        vfork_done: s.vfork,
        altstack: s.altstack,
        restart_deadline: None,
        debug: s.debug,
        reusable: false,
    };
    task.run();
    let Task { ctx, reusable, .. } = task;
    reusable.then_some(ctx)
}
