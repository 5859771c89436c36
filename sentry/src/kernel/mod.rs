//! The kernel: shared sandbox state (tasks, pid allocation, identity,
//! counters) and the per-task run loop in [`task`].

pub mod clone;
pub mod creds;
pub mod exec;
pub mod futex;
pub mod process;
pub mod task;
pub mod timers;

use crate::mm::memfile::MemoryFile;
use crate::mm::MemoryManager;
use crate::platform::Platform;
use crate::vfs::file::FdTable;
use crate::vfs::{lock, Dentry};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// The kernel release the sandbox reports.
pub const RELEASE: &str = "6.1.0-rvisor";

pub struct FsContext {
    pub root: Arc<Dentry>,
    pub cwd: Arc<Dentry>,
    pub umask: u32,
}

/// What other tasks (and procfs) may see of a thread.
pub struct ThreadInfo {
    pub tid: i32,
    pub tgid: i32,
    pub proc_: Arc<process::Process>,
    pub mm: Mutex<Arc<Mutex<MemoryManager>>>,
    pub fds: Mutex<Arc<Mutex<FdTable>>>,
    pub fs: Arc<Mutex<FsContext>>,
    pub comm: Mutex<Vec<u8>>,
    pub argv: Mutex<Vec<Vec<u8>>>,
    pub envv: Mutex<Vec<Vec<u8>>>,
    pub exe: Mutex<Option<Arc<Dentry>>>,
    pub sigactions: Arc<Mutex<[task::SigAction; 64]>>,
    pub sigmask: std::sync::atomic::AtomicU64,
    pub signals: Mutex<crate::signals::SigQueue>,
    /// What this thread sleeps on while blocked (woken by signal senders).
    pub blocker: Mutex<Option<Arc<dyn crate::signals::Wakeable>>>,
    pub sleeper: Arc<crate::signals::Sleeper>,
    /// Set when another thread's execve ends this one.
    pub exec_kill: std::sync::atomic::AtomicBool,
    /// prctl(PR_SET_PDEATHSIG): signal sent when the parent exits.
    pub pdeathsig: AtomicI32,
    /// sched_setaffinity mask, one bit per CPU; empty means every CPU.
    pub affinity: Mutex<Vec<u8>>,
}

impl ThreadInfo {
    pub fn mm(&self) -> Arc<Mutex<MemoryManager>> {
        lock(&self.mm).clone()
    }
    pub fn fds(&self) -> Arc<Mutex<FdTable>> {
        lock(&self.fds).clone()
    }
    pub fn exe(&self) -> Option<Arc<Dentry>> {
        lock(&self.exe).clone()
    }
    pub fn ppid(&self) -> i32 {
        self.proc_.ppid()
    }
}

pub struct Kernel {
    pub mf: Arc<MemoryFile>,
    pub platform: Box<dyn Platform>,
    pub gofer: Arc<gofer::client::Client>,
    pub root: Arc<Dentry>,
    pub hostname: Mutex<Vec<u8>>,
    pub domainname: Mutex<Vec<u8>>,
    /// process.oomScoreAdj: the sandbox's host processes run with it, and
    /// a new session's process (init, exec) starts with it.
    pub oom_score_adj: AtomicI32,
    pub oom_score_adj_min: AtomicI32,
    pub ncpus: usize,
    /// Most tasks the sandbox may hold (its pids limit).
    pub pids_limit: AtomicUsize,
    /// Memory the sandbox may keep resident (0: no limit beyond the host).
    pub memory_limit: AtomicU64,
    /// Pause/resume of the whole sandbox.
    pub freezer: Arc<Freezer>,
    /// CPU bandwidth from the container's config: (quota µs, period µs).
    pub cpu_max: Mutex<Option<(i64, u64)>>,
    /// The mount table, in mount order (for /proc/*/mounts and mountinfo).
    pub mounts: Mutex<Vec<MountInfo>>,
    /// Status sockets of processes started by the runtime (exec), by tgid.
    pub exec_waiters: Mutex<HashMap<i32, Arc<std::os::fd::OwnedFd>>>,
    pub mem_limit: u64,
    pub boot: Instant,
    pub boot_wall: u64,
    next_pid: AtomicI32,
    threads: Mutex<HashMap<i32, Arc<ThreadInfo>>>,
    procs: Mutex<HashMap<i32, Arc<process::Process>>>,
    pub futexes: futex::FutexTable,
    /// Sentry threads parked with their stubs, for the next new tasks.
    pub workers: clone::Workers,
    /// The exit status of the sandbox's init process, once it has exited.
    pub init_exit: Mutex<Option<task::ExitStatus>>,
    pub init_exit_cv: std::sync::Condvar,
    /// Unimplemented syscalls: number -> count.
    pub unimplemented: Mutex<BTreeMap<u64, u64>>,
}

impl Kernel {
    pub fn new(
        mf: Arc<MemoryFile>,
        platform: Box<dyn Platform>,
        gofer: Arc<gofer::client::Client>,
        root: Arc<Dentry>,
        hostname: &str,
    ) -> Kernel {
        let ncpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // SAFETY: sysinfo fills a plain struct.
        let mem = unsafe {
            let mut si: libc::sysinfo = std::mem::zeroed();
            libc::sysinfo(&mut si);
            si.totalram * si.mem_unit as u64
        };
        Kernel {
            mf,
            platform,
            gofer,
            root,
            hostname: Mutex::new(hostname.as_bytes().to_vec()),
            domainname: Mutex::new(b"(none)".to_vec()),
            oom_score_adj: AtomicI32::new(0),
            oom_score_adj_min: AtomicI32::new(0),
            ncpus,
            pids_limit: AtomicUsize::new(4096),
            memory_limit: AtomicU64::new(0),
            freezer: Arc::new(Freezer::default()),
            exec_waiters: Mutex::new(HashMap::new()),
            cpu_max: Mutex::new(None),
            mounts: Mutex::new(vec![MountInfo {
                root: "/".into(),
                id: 20,
                parent: 1,
                dest: b"/".to_vec(),
                fstype: "overlay".into(),
                source: "none".into(),
                readonly: false,
                flags: String::new(),
                data: String::new(),
            }]),
            mem_limit: mem,
            boot: Instant::now(),
            boot_wall: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            next_pid: AtomicI32::new(1),
            threads: Mutex::new(HashMap::new()),
            procs: Mutex::new(HashMap::new()),
            futexes: futex::FutexTable::default(),
            workers: Default::default(),
            init_exit: Mutex::new(None),
            init_exit_cv: std::sync::Condvar::new(),
            unimplemented: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn alloc_pid(&self) -> i32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    pub fn last_pid(&self) -> i32 {
        self.next_pid.load(Ordering::Relaxed) - 1
    }

    pub fn register(&self, t: Arc<ThreadInfo>) {
        lock(&self.threads).insert(t.tid, t);
    }

    pub fn unregister(&self, tid: i32) {
        lock(&self.threads).remove(&tid);
    }

    pub fn threads_of(&self, tgid: i32) -> Vec<Arc<ThreadInfo>> {
        lock(&self.threads)
            .values()
            .filter(|t| t.tgid == tgid)
            .cloned()
            .collect()
    }

    pub fn task_count(&self) -> usize {
        lock(&self.threads).len()
    }

    pub fn thread(&self, tid: i32) -> Option<Arc<ThreadInfo>> {
        lock(&self.threads).get(&tid).cloned()
    }

    pub fn add_process(&self, p: Arc<process::Process>) {
        lock(&self.procs).insert(p.tgid, p);
    }

    pub fn process(&self, tgid: i32) -> Option<Arc<process::Process>> {
        lock(&self.procs).get(&tgid).cloned()
    }

    pub fn remove_process(&self, tgid: i32) {
        lock(&self.procs).remove(&tgid);
    }

    /// Live (not yet reaped) processes.
    pub fn processes(&self) -> Vec<Arc<process::Process>> {
        lock(&self.procs).values().cloned().collect()
    }

    pub fn tgids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = lock(&self.threads)
            .values()
            .filter(|t| t.tid == t.tgid)
            .map(|t| t.tid)
            .collect();
        v.sort();
        v
    }

    pub fn count_unimplemented(&self, nr: u64) {
        *lock(&self.unimplemented).entry(nr).or_insert(0) += 1;
    }

    /// One line per distinct unimplemented syscall.
    pub fn unimplemented_report(&self) -> Vec<String> {
        lock(&self.unimplemented)
            .iter()
            .map(|(nr, n)| {
                format!(
                    "unimplemented syscall {} (nr {nr}): {n} call(s)",
                    crate::syscalls::names::syscall_name(*nr)
                )
            })
            .collect()
    }
}

/// A process has exited: reparent its children to init, become a zombie of
/// the parent (or end the sandbox when it is init).
pub fn process_exit(k: &Kernel, p: &Arc<process::Process>, status: task::ExitStatus) {
    // Its pidfds poll readable now.
    crate::syscalls::poll::hub().notify();
    let (children, zombies) = {
        let mut ps = p.lock();
        (
            std::mem::take(&mut ps.children),
            std::mem::take(&mut ps.zombies),
        )
    };
    // Timers die with the process.
    for tm in lock(&p.itimers).iter_mut().filter_map(|t| t.take()) {
        tm.delete();
    }
    for (_, tm) in std::mem::take(&mut *lock(&p.posix_timers)) {
        tm.delete();
    }
    if let Some(ts) = lock(&p.cpu_limit).take() {
        for tm in ts {
            tm.delete();
        }
    }
    for z in zombies.keys() {
        k.remove_process(*z);
    }
    // A process's POSIX record locks die with it.
    crate::fs::lock::table().release(crate::fs::lock::Owner::Posix(p.tgid), None);
    // A session leader's controlling terminal is released.
    crate::fs::pty::process_exited(k, p);
    if p.tgid == 1 {
        *lock(&k.init_exit) = Some(status);
        k.init_exit_cv.notify_all();
        // The container's init is gone: every other process dies with it.
        for q in k.processes() {
            if q.tgid == 1 {
                continue;
            }
            let hosts: Vec<i32> = q.lock().threads.values().copied().collect();
            for h in hosts {
                if h > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(h),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        return;
    }
    // PR_SET_PDEATHSIG of the children.
    for c in &children {
        for th in k.threads_of(*c) {
            let sig = th.pdeathsig.load(Ordering::Relaxed);
            if sig > 0 {
                crate::signals::send_thread(
                    k,
                    &th,
                    crate::signals::SigInfo {
                        signo: sig,
                        code: 0x80,
                        ..Default::default()
                    },
                );
            }
        }
    }
    // Orphans go to the nearest child-subreaper ancestor, else to init.
    let mut reaper = p.ppid();
    while reaper > 1 {
        match k.process(reaper) {
            Some(r) if r.subreaper.load(Ordering::Relaxed) && r.lock().exit.is_none() => break,
            Some(r) => reaper = r.ppid(),
            None => reaper = 1,
        }
    }
    if let Some(init) = k.process(reaper.max(1)) {
        let new_parent = init.tgid;
        let mut is = init.lock();
        for c in &children {
            if let Some(cp) = k.process(*c) {
                cp.ppid.store(new_parent, Ordering::Relaxed);
                is.children.insert(*c);
                if let Some(st) = cp.lock().exit {
                    is.zombies.insert(*c, st);
                }
            }
        }
        drop(is);
        init.child_event.notify_all();
    }
    match k.process(p.ppid()) {
        Some(parent) => {
            // A parent that ignores SIGCHLD (or asked for SA_NOCLDWAIT) gets
            // no zombie; otherwise it gets SIGCHLD.
            let act = k
                .threads_of(parent.tgid)
                .first()
                .map(|t| lock(&t.sigactions)[16]);
            let autoreap = act
                .map(|a| a.handler == task::SIG_IGN || a.flags & crate::signals::SA_NOCLDWAIT != 0)
                .unwrap_or(false);
            let mut ps = parent.lock();
            if autoreap {
                ps.children.remove(&p.tgid);
                drop(ps);
                k.remove_process(p.tgid);
            } else {
                ps.zombies.insert(p.tgid, status);
                drop(ps);
            }
            parent.child_event.notify_all();
            let (code, st) = match status {
                task::ExitStatus::Exited(c) => (crate::signals::CLD_EXITED, c),
                task::ExitStatus::Signaled(sig) => (
                    if process::wait_status(status) & 0x80 != 0 {
                        crate::signals::CLD_DUMPED
                    } else {
                        crate::signals::CLD_KILLED
                    },
                    sig & 0x7f,
                ),
            };
            let info = crate::signals::SigInfo {
                signo: crate::signals::SIGCHLD,
                code,
                pid: p.tgid,
                uid: 0,
                status: st,
                addr: 0,
            };
            crate::signals::send_process(k, &parent, info);
        }
        None => {
            k.remove_process(p.tgid);
            if let Some(sock) = lock(&k.exec_waiters).remove(&p.tgid) {
                // Its terminal output reaches the host before its status.
                crate::fs::console::finish_for(p.tgid);
                crate::control::exec_exited(&sock, process::wait_status(status));
            }
        }
    }
}

/// Enforce the sandbox's memory limit like a memory cgroup's OOM killer:
/// when the memory file's resident size passes the limit, the process with
/// the largest address space other than the init is killed (SIGKILL, as the
/// OOM killer does); the init only when it is the last one. Per-process
/// resident sizes are not known to the sentry, hence address space size.
/// Workload page faults are served by the host without the sentry seeing
/// them, so the resident size is sampled: every 50 ms while far from the
/// limit, every 2 ms near it.
pub fn start_memory_monitor(k: Arc<Kernel>) {
    let spawned = std::thread::Builder::new()
        .name("oom".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            let limit = k.memory_limit.load(Ordering::Relaxed);
            // In-memory files (heap) count as a memory cgroup counts tmpfs.
            let used = k.mf.resident() + crate::vfs::mem_file_bytes();
            if limit == 0 || used < limit / 2 {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            if used <= limit {
                std::thread::sleep(std::time::Duration::from_millis(2));
                continue;
            }
            let victim = k
                .processes()
                .into_iter()
                .filter(|p| p.lock().exit.is_none())
                .filter_map(|p| {
                    let th = k.threads_of(p.tgid).into_iter().next()?;
                    let size = lock(&th.mm()).mapped_bytes();
                    Some((size, p))
                })
                // The init goes last (it takes the whole container with it).
                .max_by_key(|(size, p)| (p.tgid != 1, *size));
            if let Some((size, p)) = victim {
                tracing::info!(pid = p.tgid, size, used, limit, "memory limit: killing");
                crate::signals::send_from_host(&k, &p, libc::SIGKILL);
                // One victim at a time: wait until it is gone and its memory
                // returned before judging again (at most a second).
                for _ in 0..500 {
                    let gone = k.process(p.tgid).is_none_or(|q| q.lock().exit.is_some())
                        && k.threads_of(p.tgid).is_empty();
                    if gone {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                for _ in 0..500 {
                    if k.mf.resident() + crate::vfs::mem_file_bytes() <= limit {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        });
    if spawned.is_err() {
        tracing::warn!("cannot start the memory monitor");
    }
}

/// One line of the mount table.
#[derive(Clone, Debug)]
pub struct MountInfo {
    /// The path within its filesystem the mount shows (a bind's source).
    pub root: String,
    pub id: u32,
    pub parent: u32,
    pub dest: Vec<u8>,
    pub fstype: String,
    pub source: String,
    pub readonly: bool,
    /// The mount flags as listed after rw/ro (`,nosuid,nodev,noexec`).
    pub flags: String,
    /// The filesystem's options after rw/ro in its superblock column
    /// (`size=65536k,mode=755`), empty for none.
    pub data: String,
}

impl Kernel {
    /// Record a mount at `dest` (its parent is the longest mount prefix).
    pub fn record_mount(&self, dest: &[u8], fstype: &str, source: &str, readonly: bool) {
        self.record_mount_at(dest, fstype, source, "/", readonly)
    }

    pub fn record_mount_at(
        &self,
        dest: &[u8],
        fstype: &str,
        source: &str,
        root: &str,
        readonly: bool,
    ) {
        let mut m = lock(&self.mounts);
        let under = |p: &[u8], d: &[u8]| {
            p == b"/" || d == p || (d.starts_with(p) && d.get(p.len()) == Some(&b'/'))
        };
        let parent = m
            .iter()
            .filter(|x| under(&x.dest, dest) && x.dest != dest)
            .max_by_key(|x| x.dest.len())
            .map(|x| x.id)
            .unwrap_or(20);
        let id = m.iter().map(|x| x.id).max().unwrap_or(20) + 1;
        m.push(MountInfo {
            root: root.into(),
            id,
            parent,
            dest: dest.to_vec(),
            fstype: fstype.into(),
            source: source.into(),
            readonly,
            flags: String::new(),
            data: String::new(),
        });
    }

    /// Sets the flags and filesystem options the newest mount at `dest`
    /// lists (`flags` as `,nosuid,nodev`, `data` without a leading comma).
    pub fn set_mount_options(&self, dest: &[u8], flags: String, data: String) {
        if let Some(m) = lock(&self.mounts).iter_mut().rev().find(|m| m.dest == dest) {
            m.flags = flags;
            m.data = data;
        }
    }
}

/// Pause and resume: while frozen, no task returns to workload code. Tasks
/// blocked in the sentry stay blocked; running ones are kicked out of their
/// stubs and park here.
#[derive(Default)]
pub struct Freezer {
    frozen: Mutex<bool>,
    cv: Condvar,
    flag: AtomicBool,
}

impl Freezer {
    pub fn is_frozen(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub fn freeze(&self, k: &Kernel) {
        *lock(&self.frozen) = true;
        self.flag.store(true, Ordering::Release);
        let threads: Vec<Arc<ThreadInfo>> = lock(&k.threads).values().cloned().collect();
        for th in threads {
            if lock(&th.blocker).is_none() {
                crate::signals::kick(&th);
            }
        }
    }

    pub fn thaw(&self) {
        let mut g = lock(&self.frozen);
        *g = false;
        self.flag.store(false, Ordering::Release);
        self.cv.notify_all();
    }

    /// Park the calling task until the sandbox is resumed or the task is
    /// killed.
    pub fn wait(self: &Arc<Self>, th: &ThreadInfo) {
        *lock(&th.blocker) = Some(self.clone());
        let mut g = lock(&self.frozen);
        while *g {
            let killed = lock(&th.signals).pending.contains_key(&libc::SIGKILL)
                || lock(&th.proc_.signals).pending.contains_key(&libc::SIGKILL)
                || th.proc_.lock_exit_pending();
            if killed {
                break;
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        drop(g);
        *lock(&th.blocker) = None;
    }
}

impl crate::signals::Wakeable for Freezer {
    fn wake_all(&self) {
        let _g = lock(&self.frozen);
        self.cv.notify_all();
    }
}
