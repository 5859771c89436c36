//! Interval timers (alarm, setitimer) and POSIX timers: each armed timer
//! has a host thread sleeping until its next expiry (no CPU while waiting),
//! which then queues the timer's signal.

use super::process::Process;
use super::Kernel;
use crate::signals::{self, SigInfo};
use crate::vfs::lock;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// What a timer measures.
#[derive(Clone)]
pub enum TimerClock {
    /// Wall/monotonic time.
    Real,
    /// CPU time of the thread group (ITIMER_VIRTUAL/PROF, CPU clocks):
    /// sampled from the stubs' host CPU clocks.
    ProcessCpu,
}

/// What an expiry does.
#[derive(Clone)]
pub enum Notify {
    /// Queue `signo` to the process (si_code SI_TIMER for POSIX timers).
    Process {
        signo: i32,
        code: i32,
        value: u64,
        timer_id: i32,
    },
    /// Queue to one thread (SIGEV_THREAD_ID).
    Thread {
        tid: i32,
        signo: i32,
        code: i32,
        value: u64,
        timer_id: i32,
    },
    /// SIGEV_NONE: only the overrun/remaining time are observable.
    None,
    /// Call back with the number of expirations (1 + missed intervals):
    /// timerfd counts them. Not tied to a process.
    Call(Arc<dyn Fn(u64) + Send + Sync>),
}

#[derive(Default)]
struct State {
    /// Next expiry in the timer's clock (nanoseconds since `base`).
    next: Option<u64>,
    interval: u64,
    overrun: u64,
    /// Overruns since the last delivered signal (POSIX timers).
    pending_overrun: u64,
    generation: u64,
    deleted: bool,
}

pub struct Timer {
    k: Weak<Kernel>,
    proc_: Weak<Process>,
    clock: TimerClock,
    notify: Notify,
    base: Instant,
    state: Mutex<State>,
    cv: Condvar,
}

const SI_TIMER: i32 = -2;

impl Timer {
    pub fn new(k: &Arc<Kernel>, p: &Arc<Process>, clock: TimerClock, notify: Notify) -> Arc<Timer> {
        let t = Arc::new(Timer {
            k: Arc::downgrade(k),
            proc_: Arc::downgrade(p),
            clock,
            notify,
            base: Instant::now(),
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
        });
        let w = Arc::downgrade(&t);
        let _ = std::thread::Builder::new()
            .name("timer".into())
            .stack_size(64 * 1024)
            .spawn(move || run(w));
        t
    }

    /// Current value of the timer's clock, ns since `base` (CPU: total CPU).
    fn now(&self) -> u64 {
        match self.clock {
            TimerClock::Real => self.base.elapsed().as_nanos() as u64,
            TimerClock::ProcessCpu => match (self.k.upgrade(), self.proc_.upgrade()) {
                (Some(k), Some(p)) => {
                    process_cpu_ns(&k, &p) + p.cpu_dead_ns.load(Ordering::Relaxed)
                }
                _ => 0,
            },
        }
    }

    /// Arm (value > 0) or disarm (value == 0); returns the old (remaining, interval).
    pub fn set(&self, value: Duration, interval: Duration) -> (Duration, Duration) {
        let delay = (!value.is_zero()).then_some(value.as_nanos() as i128);
        self.arm(delay, interval)
    }

    /// Arm to expire `delay` ns from now (zero or negative: already due,
    /// so missed intervals since then count too), or disarm with `None`;
    /// returns the old (remaining, interval).
    pub fn arm(&self, delay: Option<i128>, interval: Duration) -> (Duration, Duration) {
        let now = self.now();
        let mut s = lock(&self.state);
        let old = (
            Duration::from_nanos(s.next.map(|n| n.saturating_sub(now)).unwrap_or(0)),
            Duration::from_nanos(s.interval),
        );
        s.next = delay.map(|d| (now as i128 + d).clamp(0, u64::MAX as i128) as u64);
        s.interval = interval.as_nanos() as u64;
        s.overrun = 0;
        s.pending_overrun = 0;
        s.generation += 1;
        self.cv.notify_all();
        old
    }

    pub fn get(&self) -> (Duration, Duration) {
        let now = self.now();
        let s = lock(&self.state);
        (
            Duration::from_nanos(s.next.map(|n| n.saturating_sub(now).max(1)).unwrap_or(0)),
            Duration::from_nanos(s.interval),
        )
    }

    /// Overruns as of the last delivery of this timer's signal (a signal
    /// dequeued since it was last counted settles the count now).
    pub fn overrun(&self) -> u64 {
        let still_pending = self.signal_pending();
        let mut s = lock(&self.state);
        if !still_pending && s.pending_overrun > 0 {
            s.overrun = s.pending_overrun;
            s.pending_overrun = 0;
        }
        s.overrun
    }

    fn signal_pending(&self) -> bool {
        let (Some(k), Some(p)) = (self.k.upgrade(), self.proc_.upgrade()) else {
            return false;
        };
        match &self.notify {
            Notify::Thread { tid, signo, .. } => k
                .thread(*tid)
                .map(|t| lock(&t.signals).pending.contains_key(signo))
                .unwrap_or(false),
            Notify::Process { signo, .. } => lock(&p.signals).pending.contains_key(signo),
            Notify::None | Notify::Call(_) => false,
        }
    }

    pub fn delete(&self) {
        let mut s = lock(&self.state);
        s.deleted = true;
        s.next = None;
        self.cv.notify_all();
    }

    fn fire(&self, missed: u64) {
        if let Notify::Call(f) = &self.notify {
            f(1 + missed);
            return;
        }
        let (Some(k), Some(p)) = (self.k.upgrade(), self.proc_.upgrade()) else {
            return;
        };
        let mut s = lock(&self.state);
        match &self.notify {
            Notify::None | Notify::Call(_) => {
                s.overrun = missed;
            }
            Notify::Process {
                signo,
                code,
                value,
                timer_id,
            }
            | Notify::Thread {
                signo,
                code,
                value,
                timer_id,
                ..
            } => {
                // A still-pending signal of this timer counts as an overrun.
                let pending = {
                    let q = match &self.notify {
                        Notify::Thread { tid, .. } => k
                            .thread(*tid)
                            .map(|t| lock(&t.signals).pending.contains_key(signo)),
                        _ => Some(lock(&p.signals).pending.contains_key(signo)),
                    };
                    q.unwrap_or(false) && *code == SI_TIMER
                };
                if pending {
                    s.pending_overrun += 1 + missed;
                    return;
                }
                s.overrun = s.pending_overrun + missed;
                s.pending_overrun = 0;
                drop(s);
                let info = SigInfo {
                    signo: *signo,
                    code: *code,
                    pid: *timer_id,
                    uid: 0,
                    status: *value as i32,
                    addr: *value,
                };
                match &self.notify {
                    Notify::Thread { tid, .. } => {
                        if let Some(th) = k.thread(*tid) {
                            signals::send_thread(&k, &th, info);
                        }
                    }
                    _ => signals::send_process(&k, &p, info),
                }
            }
        }
    }
}

/// The host CPU clock of a stub process, in ns.
fn host_cpu_ns(host: i32) -> u64 {
    let clock = (!host << 3) | 2;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-parameter.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec.max(0) as u64 * 1_000_000_000 + ts.tv_nsec.max(0) as u64
}

/// What each stub's host CPU clock read when it began driving its current
/// task (a stub is reused for task after task).
fn cpu_bases() -> &'static Mutex<std::collections::HashMap<i32, u64>> {
    static BASES: OnceLock<Mutex<std::collections::HashMap<i32, u64>>> = OnceLock::new();
    BASES.get_or_init(Default::default)
}

/// The stub `host` starts a new task: its CPU time counts from now.
pub fn rebase_stub(host: i32) {
    if host > 0 {
        let now = host_cpu_ns(host);
        lock(cpu_bases()).insert(host, now);
    }
}

/// The stub `host` is gone.
pub fn forget_stub(host: i32) {
    lock(cpu_bases()).remove(&host);
}

/// CPU time of the task a stub (host process) drives, in ns.
pub fn stub_cpu_ns(host: i32) -> u64 {
    if host <= 0 {
        return 0;
    }
    let base = lock(cpu_bases()).get(&host).copied().unwrap_or(0);
    host_cpu_ns(host).saturating_sub(base)
}

/// Total CPU time of a thread group's live threads, in ns.
pub fn process_cpu_ns(k: &Kernel, p: &Process) -> u64 {
    let hosts: Vec<i32> = p.lock().threads.values().copied().collect();
    let _ = k;
    hosts.into_iter().map(stub_cpu_ns).sum()
}

fn run(w: Weak<Timer>) {
    loop {
        let Some(t) = w.upgrade() else { return };
        let mut s = lock(&t.state);
        if s.deleted {
            return;
        }
        let Some(next) = s.next else {
            // Disarmed: sleep until re-armed or deleted (dropping our
            // strong reference so a dropped timer ends this thread).
            let gen = s.generation;
            let r =
                t.cv.wait_timeout(s, Duration::from_secs(1))
                    .map(|(g, _)| g.generation != gen);
            drop(r);
            continue;
        };
        let now = t.now();
        if now >= next {
            let missed = (now - next).checked_div(s.interval).unwrap_or(0);
            s.next = if s.interval > 0 {
                Some(next + (missed + 1) * s.interval)
            } else {
                None
            };
            drop(s);
            t.fire(missed);
            continue;
        }
        let wait = match t.clock {
            TimerClock::Real => Duration::from_nanos(next - now),
            // CPU time advances only while the workload runs: sample.
            TimerClock::ProcessCpu => Duration::from_nanos((next - now).min(10_000_000)),
        };
        let _ = t.cv.wait_timeout(s, wait);
    }
}
