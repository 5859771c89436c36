//! Tasks: one per workload thread, each driven by its own sentry thread
//! through a platform Context.

use super::creds::Creds;
use super::process::Process;
use super::{FsContext, Kernel, ThreadInfo};
use crate::abi::*;
use crate::mm::MemoryManager;
use crate::platform::{Context, Event, Regs};
use crate::vfs::file::FdTable;
use crate::vfs::{lock, Dentry, Meta};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The status a shell reports: the code, or 128 + signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c & 0xff,
            ExitStatus::Signaled(s) => 128 + (s & 0x7f),
        }
    }
}

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

#[derive(Clone, Copy, Debug, Default)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

pub const RLIMIT_COUNT: usize = 16;
pub const RLIMIT_STACK: usize = 3;
pub const RLIMIT_NOFILE: usize = 7;

pub fn default_rlimits() -> [Rlimit; RLIMIT_COUNT] {
    let inf = Rlimit {
        cur: RLIM_INFINITY,
        max: RLIM_INFINITY,
    };
    let mut r = [inf; RLIMIT_COUNT];
    r[RLIMIT_STACK] = Rlimit {
        cur: 8 << 20,
        max: RLIM_INFINITY,
    };
    r[4] = Rlimit {
        cur: 0,
        max: RLIM_INFINITY,
    }; // RLIMIT_CORE
    r[RLIMIT_NOFILE] = Rlimit {
        cur: 1024,
        max: 1 << 20,
    };
    r[6] = Rlimit {
        cur: 63_000,
        max: 63_000,
    }; // RLIMIT_NPROC
    r[8] = Rlimit {
        cur: 8 << 20,
        max: 8 << 20,
    }; // RLIMIT_MEMLOCK
    r[11] = Rlimit {
        cur: 63_000,
        max: 63_000,
    }; // RLIMIT_SIGPENDING
    r[12] = Rlimit {
        cur: 819_200,
        max: 819_200,
    }; // RLIMIT_MSGQUEUE
    r
}

pub struct Task {
    pub k: Arc<Kernel>,
    pub tid: i32,
    pub tgid: i32,
    pub info: Arc<ThreadInfo>,
    pub regs: Regs,
    pub ctx: Box<dyn Context>,
    pub creds: Creds,
    pub sigactions: Arc<Mutex<[SigAction; 64]>>,
    pub sigmask: u64,
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    pub exit: Option<ExitStatus>,
    /// exit_group: the whole process exits with this status.
    pub group_exit: bool,
    /// Released when this (vfork) child execs or exits.
    pub vfork_done: Option<Arc<(Mutex<bool>, std::sync::Condvar)>>,
    /// Deadline of a relative sleep to resume after a transparent restart.
    pub restart_deadline: Option<(i32, Timespec)>,
    /// sigaltstack: (sp, size, flags).
    pub altstack: (u64, u64, i32),
    pub debug: bool,
    /// Set at exit when the stub may drive another task: no other thread's
    /// group exit or execve has killed it (decided under the process lock,
    /// under which they kill).
    pub reusable: bool,
}

impl Task {
    /// The first task of the sandbox (pid 1), with an empty address space.
    pub fn new_init(k: Arc<Kernel>, fds: FdTable, cwd: Arc<Dentry>, creds: Creds) -> KResult<Task> {
        let ctx = k.platform.new_context().map_err(|e| {
            tracing::error!("cannot start stub: {e}");
            Errno::EAGAIN
        })?;
        let tid = k.alloc_pid();
        ctx.colocate(tid as usize);
        crate::kernel::timers::rebase_stub(ctx.host_pid());
        let mm = MemoryManager::new(k.mf.clone(), k.platform.new_address_space());
        let proc_ = Arc::new(Process::new(tid, 0, tid, tid));
        proc_
            .ruid
            .store(creds.uid, std::sync::atomic::Ordering::Relaxed);
        proc_.lock().threads.insert(tid, ctx.host_pid());
        k.add_process(proc_.clone());
        let info = Arc::new(ThreadInfo {
            tid,
            tgid: tid,
            proc_,
            mm: Mutex::new(Arc::new(Mutex::new(mm))),
            fds: Mutex::new(Arc::new(Mutex::new(fds))),
            fs: Arc::new(Mutex::new(FsContext {
                root: k.root.clone(),
                cwd,
                umask: 0o022,
            })),
            comm: Mutex::new(Vec::new()),
            argv: Mutex::new(Vec::new()),
            envv: Mutex::new(Vec::new()),
            exe: Mutex::new(None),
            sigactions: Arc::new(Mutex::new([SigAction::default(); 64])),
            sigmask: std::sync::atomic::AtomicU64::new(0),
            signals: Mutex::new(Default::default()),
            blocker: Mutex::new(None),
            sleeper: Default::default(),
            exec_kill: Default::default(),
            pdeathsig: Default::default(),
            affinity: Mutex::new(Vec::new()),
        });
        k.register(info.clone());
        crate::signals::set_current(info.clone());
        let regs = ctx.initial_regs();
        let sigactions = info.sigactions.clone();
        Ok(Task {
            k,
            tid,
            tgid: tid,
            info,
            regs,
            ctx,
            creds,
            sigactions,
            sigmask: 0,
            clear_child_tid: 0,
            robust_list: (0, 0),
            exit: None,
            group_exit: false,
            vfork_done: None,
            altstack: (0, 0, SS_DISABLE),
            restart_deadline: None,
            debug: false,
            reusable: false,
        })
    }

    pub fn proc_(&self) -> &Arc<Process> {
        &self.info.proc_
    }

    pub fn rlimit(&self, r: usize) -> Rlimit {
        lock(&self.info.proc_.rlimits)[r % RLIMIT_COUNT]
    }

    pub fn mm(&self) -> Arc<Mutex<MemoryManager>> {
        self.info.mm()
    }

    pub fn fds(&self) -> Arc<Mutex<FdTable>> {
        self.info.fds()
    }

    pub fn fs_root(&self) -> Arc<Dentry> {
        lock(&self.info.fs).root.clone()
    }

    pub fn cwd(&self) -> Arc<Dentry> {
        lock(&self.info.fs).cwd.clone()
    }

    pub fn umask(&self) -> u32 {
        lock(&self.info.fs).umask
    }

    pub fn creds(&self) -> Creds {
        self.creds.clone()
    }

    pub fn may_access(&self, m: &Meta, mask: u32) -> KResult<()> {
        self.creds.may_access(m, mask)
    }

    pub fn install_mm(&mut self, mm: MemoryManager) {
        *lock(&self.info.mm) = Arc::new(Mutex::new(mm));
    }

    pub fn nofile_limit(&self) -> u64 {
        self.rlimit(RLIMIT_NOFILE).cur
    }

    // Workload memory access.

    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> KResult<()> {
        lock(&self.mm()).copy_in(addr, buf)
    }

    pub fn copy_out(&self, addr: u64, buf: &[u8]) -> KResult<()> {
        lock(&self.mm()).copy_out(addr, buf)
    }

    pub fn read_obj<T: Pod>(&self, addr: u64) -> KResult<T> {
        let mut b = vec![0u8; std::mem::size_of::<T>()];
        self.copy_in(addr, &mut b)?;
        Ok(pod_from_bytes(&b))
    }

    pub fn write_obj<T: Pod>(&self, addr: u64, v: &T) -> KResult<()> {
        self.copy_out(addr, pod_bytes(v))
    }

    pub fn read_cstr(&self, addr: u64, max: usize) -> KResult<Vec<u8>> {
        lock(&self.mm()).copy_in_cstr(addr, max)
    }

    /// A path argument: EFAULT on a bad pointer, ENAMETOOLONG past PATH_MAX.
    pub fn read_path(&self, addr: u64) -> KResult<Vec<u8>> {
        self.read_cstr(addr, crate::vfs::path::PATH_MAX - 1)
    }

    /// A NULL-terminated array of string pointers (argv, envp).
    pub fn read_str_array(&self, addr: u64) -> KResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        if addr == 0 {
            return Ok(out);
        }
        let mut total = 0usize;
        for i in 0.. {
            let p: u64 = self.read_obj(addr.checked_add(i * 8).ok_or(Errno::EFAULT)?)?;
            if p == 0 {
                break;
            }
            let s = self.read_cstr(p, 128 * 1024)?;
            total += s.len() + 1 + 8;
            if total > 2 << 20 || out.len() >= 0x7fff_ffff {
                return Err(Errno::E2BIG);
            }
            out.push(s);
        }
        Ok(out)
    }

    /// Run the task until it exits.
    pub fn run(&mut self) -> ExitStatus {
        loop {
            if self
                .info
                .exec_kill
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                // Another thread is exec'ing: leave quietly (no group exit).
                self.exit = Some(ExitStatus::Signaled(libc::SIGKILL));
                self.group_exit = false;
                return self.exit_thread(ExitStatus::Signaled(libc::SIGKILL));
            }
            if crate::signals::has_unblocked(&self.info) {
                self.deliver_signals(None);
            }
            if self.exit.is_none() && self.proc_().lock_exit_pending() {
                self.exit = Some(ExitStatus::Signaled(libc::SIGKILL));
            }
            if let Some(st) = self.exit {
                return self.exit_thread(st);
            }
            if self.proc_().lock().stopped.is_some() {
                self.wait_while_stopped();
                continue;
            }
            if self.k.freezer.is_frozen() {
                let f = self.k.freezer.clone();
                f.wait(&self.info);
                continue;
            }
            let as_ = lock(&self.mm()).as_.clone();
            match self.ctx.switch(&*as_, &mut self.regs) {
                Ok(Event::Syscall) => crate::syscalls::dispatch(self),
                // A write to copy-on-write memory: copy, retry the access.
                Ok(Event::Fault {
                    signo: 11,
                    code: 2,
                    addr,
                }) if lock(&self.mm()).cow_fault(addr) => {}
                Ok(Event::Fault { signo, code, addr }) => {
                    // A page of a mapped file past its end: SIGBUS/BUS_ADRERR.
                    let (signo, code) = if signo == 11 && lock(&self.mm()).past_eof(addr) {
                        (7, 2)
                    } else {
                        (signo, code)
                    };
                    let info = crate::signals::SigInfo {
                        signo,
                        code,
                        addr,
                        ..Default::default()
                    };
                    tracing::debug!(
                        signo,
                        code,
                        addr = format_args!("{addr:#x}"),
                        rip = format_args!("{:#x}", self.regs.rip),
                        "fault"
                    );
                    self.force_fault(info);
                }
                Ok(Event::Interrupted) => {}
                Err(_)
                    if self
                        .info
                        .exec_kill
                        .load(std::sync::atomic::Ordering::Relaxed) =>
                {
                    continue
                }
                Err(e) => {
                    // A sibling's exit_group kills our stub; anything else is
                    // a platform failure.
                    if self.proc_().lock().exit.is_none() {
                        tracing::error!("task {}: platform failure: {e}", self.tid);
                    }
                    self.exit = Some(ExitStatus::Signaled(libc::SIGKILL));
                    self.group_exit = true;
                }
            }
            if let Some(st) = self.exit {
                return self.exit_thread(st);
            }
        }
    }

    /// A synchronous fault: delivered to the thread's handler, or fatal if
    /// it is blocked, ignored or defaulted (as Linux's force_sig).
    pub fn force_fault(&mut self, info: crate::signals::SigInfo) {
        let signo = info.signo;
        let act = lock(&self.sigactions)[(signo - 1) as usize & 63];
        let blocked = self.sigmask & crate::signals::bit(signo) != 0;
        if act.handler == SIG_DFL || act.handler == SIG_IGN || blocked {
            self.force_signal(signo);
            return;
        }
        lock(&self.info.signals).pending.insert(signo, info);
        self.deliver_signals(None);
    }

    /// Terminate the thread group with `signo`.
    pub fn force_signal(&mut self, signo: i32) {
        self.exit = Some(ExitStatus::Signaled(self.core_status(signo)));
        self.group_exit = true;
    }

    /// Release a parent blocked in vfork.
    pub fn release_vfork(&mut self) {
        if let Some(c) = self.vfork_done.take() {
            *lock(&c.0) = true;
            c.1.notify_all();
        }
    }

    /// Thread exit: clear_child_tid, then the process exit if this was the
    /// last thread (or an exit_group). Returns the process's status.
    /// Futexes this thread holds on its robust list get FUTEX_OWNER_DIED
    /// and a waiter is woken (set_robust_list(2)).
    fn release_robust_futexes(&mut self) {
        const FUTEX_WAITERS: u32 = 0x8000_0000;
        const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
        const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
        let head = self.robust_list.0;
        if head == 0 {
            return;
        }
        let (Ok(mut entry), Ok(offset), Ok(pending)) = (
            self.read_obj::<u64>(head),
            self.read_obj::<i64>(head + 8),
            self.read_obj::<u64>(head + 16),
        ) else {
            return;
        };
        let handle = |t: &mut Task, e: u64| {
            let addr = (e as i64).wrapping_add(offset) as u64;
            let Ok(v) = t.read_obj::<u32>(addr) else {
                return;
            };
            if v & FUTEX_TID_MASK != t.tid as u32 {
                return;
            }
            let nv = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
            if t.write_obj(addr, &nv).is_ok() && v & FUTEX_WAITERS != 0 {
                t.futex_wake_one(addr);
            }
        };
        // Bounded like Linux's ROBUST_LIST_LIMIT, so a cyclic list ends.
        for _ in 0..2048 {
            if entry == head || entry == 0 {
                break;
            }
            let next = match self.read_obj::<u64>(entry) {
                Ok(n) => n,
                Err(_) => break,
            };
            if entry != pending {
                handle(self, entry);
            }
            entry = next;
        }
        if pending != 0 {
            handle(self, pending);
        }
    }

    /// Wakes one waiter of the (non-private) futex at `addr`: keyed by the
    /// memory-file offset in a shared mapping, by address space otherwise.
    fn futex_wake_one(&self, addr: u64) {
        let mm = self.mm();
        let key = if lock(&mm).is_shared(addr) {
            match lock(&mm).translate(addr) {
                Ok(off) => crate::kernel::futex::Key::Shared { offset: off },
                Err(_) => return,
            }
        } else {
            crate::kernel::futex::Key::Private {
                mm: Arc::as_ptr(&mm) as usize,
                addr,
            }
        };
        let _ = self.k.futexes.wake(key, 1, u32::MAX);
    }

    /// What a thread lets go of when it leaves its address space (exit, or
    /// execve: Linux's mm_release): its robust futexes, then
    /// clear_child_tid, zeroed and woken. Both are forgotten.
    pub fn mm_release(&mut self) {
        self.release_robust_futexes();
        self.robust_list = (0, 0);
        if self.clear_child_tid != 0 {
            let addr = self.clear_child_tid;
            if self.write_obj(addr, &0u32).is_ok() {
                self.futex_wake_one(addr);
            }
            self.clear_child_tid = 0;
        }
    }

    fn exit_thread(&mut self, st: ExitStatus) -> ExitStatus {
        self.mm_release();
        self.release_vfork();
        self.k.unregister(self.tid);
        let proc_ = self.proc_().clone();
        let (last, status) = {
            let mut ps = proc_.lock();
            ps.threads.remove(&self.tid);
            proc_.cpu_dead_ns.fetch_add(
                crate::kernel::timers::stub_cpu_ns(self.ctx.host_pid()),
                std::sync::atomic::Ordering::Relaxed,
            );
            let already = ps.exit.is_some();
            // (A group exit of our own kills only the siblings' stubs.)
            self.reusable = !already
                && !self
                    .info
                    .exec_kill
                    .load(std::sync::atomic::Ordering::Relaxed);
            if self.group_exit && !already {
                ps.exit = Some(st);
                proc_
                    .exiting
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let last = ps.threads.is_empty() && !already;
            if last && ps.exit.is_none() {
                ps.exit = Some(st);
                proc_
                    .exiting
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if self.group_exit {
                // Kill the siblings' stubs under the lock: a sibling that
                // leaves the thread group after this sees the exit and
                // does not reuse its (killed) stub.
                for &host in ps.threads.values() {
                    if host > 0 {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(host),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
            (last || (self.group_exit && !already), ps.exit.unwrap_or(st))
        };
        if self.group_exit {
            // Wake siblings blocked in the sentry.
            for th in self.k.threads_of(self.tgid) {
                if th.tid != self.tid {
                    crate::signals::kick(&th);
                }
            }
        }
        // This thread's files close before anyone hears of the exit (as
        // Linux's exit_files precedes exit_notify): a peer then sees EOF or
        // EPIPE by the time wait returns.
        *lock(&self.info.fds) = Arc::new(Mutex::new(FdTable::default()));
        if last {
            super::process_exit(&self.k, &proc_, status);
        }
        status
    }
}
