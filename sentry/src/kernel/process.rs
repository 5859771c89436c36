//! Thread groups (processes): parent/child links, zombies, wait, exit.

use super::task::ExitStatus;
use crate::vfs::lock;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Condvar, Mutex};

#[derive(Default)]
pub struct ProcState {
    pub children: BTreeSet<i32>,
    /// Exited children not yet reaped: pid -> status.
    pub zombies: BTreeMap<i32, ExitStatus>,
    /// Live threads: tid -> host pid of its stub.
    pub threads: BTreeMap<i32, i32>,
    /// Set once the process has exited (exit_group or last thread).
    pub exit: Option<ExitStatus>,
    /// Job control: the signal that stopped the process, while stopped.
    pub stopped: Option<i32>,
    /// A stop not yet reported to wait(WUNTRACED).
    pub stop_report: Option<i32>,
    /// A continue not yet reported to wait(WCONTINUED).
    pub cont_report: bool,
}

pub struct Process {
    pub tgid: i32,
    /// Real uid (for RLIMIT_NPROC, which counts a user's tasks).
    pub ruid: std::sync::atomic::AtomicU32,
    pub ppid: AtomicI32,
    pub pgid: AtomicI32,
    pub sid: AtomicI32,
    pub state: Mutex<ProcState>,
    /// Signalled when a child exits (wait4 sleeps here).
    pub child_event: Condvar,
    /// Signalled when a stopped process continues (or is killed).
    pub stop_cv: Condvar,
    /// Process-directed pending signals.
    pub signals: Mutex<crate::signals::SigQueue>,
    /// Mirrors `state.exit.is_some()` for lock-free checks while blocked.
    pub exiting: std::sync::atomic::AtomicBool,
    /// Resource limits (per process, as Linux keeps them in signal_struct).
    pub rlimits: Mutex<[crate::abi::Rlimit; super::task::RLIMIT_COUNT]>,
    pub nice: AtomicI32,
    /// CPU time (ns) of this process's threads that have exited.
    pub cpu_dead_ns: std::sync::atomic::AtomicU64,
    /// CPU time (ns) of reaped children (and theirs), for RUSAGE_CHILDREN.
    pub children_cpu_ns: std::sync::atomic::AtomicU64,
    pub sched_policy: AtomicI32,
    pub sched_priority: AtomicI32,
    /// prctl(PR_SET_CHILD_SUBREAPER).
    pub subreaper: std::sync::atomic::AtomicBool,
    /// ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF.
    pub itimers: Mutex<[Option<std::sync::Arc<super::timers::Timer>>; 3]>,
    /// RLIMIT_CPU: SIGXCPU at the soft limit (then every second), SIGKILL
    /// at the hard limit.
    pub cpu_limit: Mutex<Option<[std::sync::Arc<super::timers::Timer>; 2]>>,
    /// POSIX timers by id.
    pub posix_timers: Mutex<BTreeMap<i32, std::sync::Arc<super::timers::Timer>>>,
    /// /proc/PID/oom_score_adj (inherited on fork).
    pub oom: Mutex<OomScoreAdj>,
}

/// A process's oom_score_adj and the lowest value it may set without
/// CAP_SYS_RESOURCE (Linux's signal_struct oom_score_adj_min).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomScoreAdj {
    pub value: i32,
    pub min: i32,
}

impl OomScoreAdj {
    pub const MIN: i32 = -1000;
    pub const MAX: i32 = 1000;

    /// A write of `v`: EINVAL out of range, EACCES below `min` without
    /// CAP_SYS_RESOURCE; a privileged writer also moves `min` to `v`.
    pub fn set(&mut self, v: i32, cap_sys_resource: bool) -> crate::abi::KResult<()> {
        if !(Self::MIN..=Self::MAX).contains(&v) {
            return Err(crate::abi::Errno::EINVAL);
        }
        if v < self.min && !cap_sys_resource {
            return Err(crate::abi::Errno::EACCES);
        }
        self.value = v;
        if cap_sys_resource {
            self.min = v;
        }
        Ok(())
    }
}

impl Process {
    pub fn new(tgid: i32, ppid: i32, pgid: i32, sid: i32) -> Process {
        Process {
            tgid,
            ruid: std::sync::atomic::AtomicU32::new(0),
            ppid: AtomicI32::new(ppid),
            pgid: AtomicI32::new(pgid),
            sid: AtomicI32::new(sid),
            state: Mutex::new(ProcState::default()),
            child_event: Condvar::new(),
            stop_cv: Condvar::new(),
            signals: Mutex::new(Default::default()),
            exiting: std::sync::atomic::AtomicBool::new(false),
            rlimits: Mutex::new(super::task::default_rlimits()),
            nice: AtomicI32::new(0),
            cpu_dead_ns: Default::default(),
            children_cpu_ns: Default::default(),
            sched_policy: AtomicI32::new(0),
            sched_priority: AtomicI32::new(0),
            subreaper: std::sync::atomic::AtomicBool::new(false),
            itimers: Mutex::new([None, None, None]),
            posix_timers: Mutex::new(BTreeMap::new()),
            cpu_limit: Mutex::new(None),
            oom: Mutex::new(OomScoreAdj::default()),
        }
    }

    /// Whether the process is exiting (exit_group): blocked threads leave.
    pub fn lock_exit_pending(&self) -> bool {
        self.exiting.load(Ordering::Relaxed)
    }

    pub fn ppid(&self) -> i32 {
        self.ppid.load(Ordering::Relaxed)
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, ProcState> {
        lock(&self.state)
    }
}

/// wait(2) status word.
pub fn wait_status(st: ExitStatus) -> i32 {
    match st {
        ExitStatus::Exited(c) => (c & 0xff) << 8,
        // The 0x80 (core dumped) bit rides in the status when RLIMIT_CORE
        // allowed a dump (see Task::core_status).
        ExitStatus::Signaled(s) => s & 0xff,
    }
}

#[cfg(test)]
mod oom_tests {
    use super::OomScoreAdj;
    use crate::abi::Errno;

    #[test]
    fn floor_and_range() {
        let mut o = OomScoreAdj { value: 500, min: 0 };
        assert_eq!(o.set(100, false), Ok(()));
        assert_eq!(o.set(-1, false), Err(Errno::EACCES));
        assert_eq!(o.set(1001, true), Err(Errno::EINVAL));
        assert_eq!(o.set(-1001, true), Err(Errno::EINVAL));
        assert_eq!(o, OomScoreAdj { value: 100, min: 0 });
        assert_eq!(o.set(-300, true), Ok(()));
        assert_eq!(
            o,
            OomScoreAdj {
                value: -300,
                min: -300
            }
        );
        assert_eq!(o.set(-200, false), Ok(()));
        assert_eq!(o.set(-300, false), Ok(()));
        assert_eq!(o.set(-301, false), Err(Errno::EACCES));
    }
}
