//! poll, ppoll, select, pselect6: readiness over every fd type.
//!
//! Pipes notify the kernel's poll hub on every state change; host fds
//! (stdio) do not, so a blocked poll also re-checks them every 20 ms.

use super::file::get_file;
use super::Args;
use crate::abi::*;
use crate::kernel::task::Task;
use crate::signals::{self, WaitOutcome};
use crate::vfs::file::{File, FileKind};
use crate::vfs::lock;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const POLLIN: i16 = 0x1;
pub const POLLPRI: i16 = 0x2;
pub const POLLOUT: i16 = 0x4;
pub const POLLERR: i16 = 0x8;
pub const POLLHUP: i16 = 0x10;
pub const POLLNVAL: i16 = 0x20;
pub const POLLRDNORM: i16 = 0x40;
pub const POLLWRNORM: i16 = 0x100;
pub const POLLRDHUP: i16 = 0x2000;

/// Wakes pollers when any pollable object changes state.
#[derive(Default)]
pub struct PollHub {
    gen: Mutex<u64>,
    cv: Condvar,
}

impl PollHub {
    pub fn notify(&self) {
        *lock(&self.gen) += 1;
        self.cv.notify_all();
    }
}

impl signals::Wakeable for PollHub {
    fn wake_all(&self) {
        self.notify();
    }
}

/// The global hub (one sandbox per sentry process).
pub fn hub() -> &'static Arc<PollHub> {
    static HUB: std::sync::OnceLock<Arc<PollHub>> = std::sync::OnceLock::new();
    HUB.get_or_init(|| Arc::new(PollHub::default()))
}

/// Sleep until the hub changes from `gen`, 20 ms pass (host fds do not
/// notify), the deadline, or a signal (ERESTARTNOHAND).
fn hub_wait(hub: &Arc<PollHub>, gen: u64, deadline: Option<Instant>) -> KResult<()> {
    let g = lock(&hub.gen);
    if *g != gen {
        return Ok(());
    }
    let step = Instant::now() + Duration::from_millis(20);
    let until = match deadline {
        Some(d) if d < step => d,
        _ => step,
    };
    let (_g, o) = signals::wait(hub.clone(), &hub.cv, g, Some(until));
    if let WaitOutcome::Interrupted = o {
        return Err(Errno::ERESTARTNOHAND);
    }
    Ok(())
}

/// The hub's change counter (epoll's edge-triggered bookkeeping).
pub fn hub_generation() -> u64 {
    *lock(&hub().gen)
}

/// Current readiness of a file, as poll revents (before masking).
pub fn readiness(f: &File) -> i16 {
    readiness_depth(f, 0)
}

/// Readiness with a bound on epoll nesting (Linux allows 5 levels).
pub fn readiness_depth(f: &File, depth: u32) -> i16 {
    match &f.kind {
        FileKind::Epoll(ep) => {
            if depth >= 5 || ep.collect(1, depth + 1, false).is_empty() {
                0
            } else {
                POLLIN
            }
        }
        FileKind::Pipe { pipe, write } => pipe.poll(*write),
        FileKind::Fifo { pipe, read, write } => {
            let mut v = 0;
            if *read {
                v |= pipe.poll(false) & (POLLIN | POLLRDNORM | POLLHUP);
            }
            if *write {
                v |= pipe.poll(true) & (POLLOUT | POLLWRNORM | POLLERR);
            }
            v
        }
        FileKind::EventFd(e) => e.poll(),
        FileKind::PidFd(p) => p.poll(),
        k @ (FileKind::TimerFd(_)
        | FileKind::SignalFd(_)
        | FileKind::Inotify(_)
        | FileKind::Mqueue(_)) => crate::fs::anon_poll(k).unwrap_or(0),
        FileKind::Socket(sock) => sock.poll(),
        FileKind::Host { fd, .. } => {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: POLLIN | POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd, zero timeout.
            let n = unsafe { libc::poll(&mut p, 1, 0) };
            if n < 0 {
                POLLERR
            } else {
                p.revents
            }
        }
        FileKind::Tty(tf) => tf.poll(),
        FileKind::Path => POLLNVAL,
        FileKind::Dev(crate::fs::dev::DevKind::Tty) => POLLERR,
        _ => POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM,
    }
}

struct Req {
    fd: i32,
    events: i16,
}

/// Poll until something is ready, the deadline passes, or a signal comes.
fn do_poll(t: &Task, reqs: &[Req], deadline: Option<Instant>) -> KResult<Vec<i16>> {
    let files: Vec<Option<Arc<File>>> = reqs
        .iter()
        .map(|r| {
            if r.fd < 0 {
                None
            } else {
                get_file(t, r.fd).ok()
            }
        })
        .collect();
    let hub = hub().clone();
    loop {
        let gen = *lock(&hub.gen);
        let mut out = Vec::with_capacity(reqs.len());
        let mut ready = 0;
        for (r, f) in reqs.iter().zip(&files) {
            let rev = match (r.fd < 0, f) {
                (true, _) => 0,
                (false, None) => POLLNVAL,
                (false, Some(f)) => readiness(f) & (r.events | POLLERR | POLLHUP | POLLNVAL),
            };
            if rev != 0 {
                ready += 1;
            }
            out.push(rev);
        }
        if ready > 0 || matches!(deadline, Some(d) if Instant::now() >= d) {
            return Ok(out);
        }
        hub_wait(&hub, gen, deadline)?;
    }
}

fn timeout_ms(ms: i32) -> Option<Instant> {
    if ms < 0 {
        None
    } else {
        Some(Instant::now() + Duration::from_millis(ms as u64))
    }
}

fn ts_deadline(t: &Task, addr: u64) -> KResult<Option<Instant>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Some(
        Instant::now() + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
    ))
}

fn poll_common(t: &mut Task, addr: u64, nfds: u64, deadline: Option<Instant>) -> KResult<u64> {
    if nfds > t.nofile_limit() {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; nfds as usize * 8];
    t.copy_in(addr, &mut raw)?;
    let reqs: Vec<Req> = raw
        .chunks(8)
        .map(|c| Req {
            fd: i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            events: i16::from_le_bytes([c[4], c[5]]),
        })
        .collect();
    let out = do_poll(t, &reqs, deadline)?;
    let mut n = 0;
    for (i, rev) in out.iter().enumerate() {
        raw[i * 8 + 6..i * 8 + 8].copy_from_slice(&rev.to_le_bytes());
        if *rev != 0 {
            n += 1;
        }
    }
    t.copy_out(addr, &raw)?;
    Ok(n)
}

pub fn sys_poll(t: &mut Task, a: &Args) -> KResult<u64> {
    let dl = timeout_ms(a.int(2));
    poll_common(t, a.u(0), a.u(1), dl)
}

/// Run `f` with a temporary signal mask (ppoll, pselect6).
fn with_mask(
    t: &mut Task,
    mask_addr: u64,
    f: impl FnOnce(&mut Task) -> KResult<u64>,
) -> KResult<u64> {
    if mask_addr == 0 {
        return f(t);
    }
    let mask: u64 = t.read_obj(mask_addr)?;
    let old = t.sigmask;
    t.set_sigmask(mask);
    let r = f(t);
    if r == Err(Errno::ERESTARTNOHAND) {
        return Err(t.deliver_under_temporary_mask(old));
    }
    t.set_sigmask(old);
    r
}

pub fn sys_ppoll(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.u(3) != 0 && a.u(4) != 8 {
        return Err(Errno::EINVAL);
    }
    let dl = ts_deadline(t, a.u(2))?;
    let (addr, n) = (a.u(0), a.u(1));
    with_mask(t, a.u(3), |t| poll_common(t, addr, n, dl))
}

fn select_common(
    t: &mut Task,
    nfds: i32,
    r: u64,
    w: u64,
    e: u64,
    deadline: Option<Instant>,
) -> KResult<u64> {
    if nfds < 0 || nfds as u64 > t.nofile_limit().max(1024) {
        return Err(Errno::EINVAL);
    }
    let bytes = (nfds as usize).div_ceil(64) * 8;
    let read_set = |addr: u64| -> KResult<Vec<u8>> {
        let mut b = vec![0u8; bytes];
        if addr != 0 {
            t.copy_in(addr, &mut b)?;
        }
        Ok(b)
    };
    let (rs, ws, es) = (read_set(r)?, read_set(w)?, read_set(e)?);
    let isset = |b: &[u8], fd: usize| b[fd / 8] & (1 << (fd % 8)) != 0;
    let mut reqs = Vec::new();
    for fd in 0..nfds as usize {
        let mut ev = 0;
        if isset(&rs, fd) {
            ev |= POLLIN;
        }
        if isset(&ws, fd) {
            ev |= POLLOUT;
        }
        if isset(&es, fd) {
            ev |= POLLPRI;
        }
        if ev != 0 {
            get_file(t, fd as i32)?; // EBADF for closed fds
            reqs.push(Req {
                fd: fd as i32,
                events: ev,
            });
        }
    }
    let out = do_poll(t, &reqs, deadline)?;
    let (mut ro, mut wo, mut eo) = (vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]);
    let mut n = 0;
    for (req, rev) in reqs.iter().zip(out) {
        let fd = req.fd as usize;
        let set = |b: &mut Vec<u8>| b[fd / 8] |= 1 << (fd % 8);
        if req.events & POLLIN != 0 && rev & (POLLIN | POLLHUP | POLLERR) != 0 {
            set(&mut ro);
            n += 1;
        }
        if req.events & POLLOUT != 0 && rev & (POLLOUT | POLLERR) != 0 {
            set(&mut wo);
            n += 1;
        }
        if req.events & POLLPRI != 0 && rev & POLLPRI != 0 {
            set(&mut eo);
            n += 1;
        }
    }
    for (addr, b) in [(r, &ro), (w, &wo), (e, &eo)] {
        if addr != 0 {
            t.copy_out(addr, b)?;
        }
    }
    Ok(n)
}

pub fn sys_select(t: &mut Task, a: &Args) -> KResult<u64> {
    let dl = if a.u(4) == 0 {
        None
    } else {
        let tv: Timeval = t.read_obj(a.u(4))?;
        if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
            return Err(Errno::EINVAL);
        }
        Some(Instant::now() + Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
    };
    select_common(t, a.int(0), a.u(1), a.u(2), a.u(3), dl)
}

pub fn sys_pselect6(t: &mut Task, a: &Args) -> KResult<u64> {
    let dl = ts_deadline(t, a.u(4))?;
    let mask_addr = if a.u(5) != 0 {
        let ss: [u64; 2] = t.read_obj(a.u(5))?;
        if ss[0] != 0 && ss[1] != 8 {
            return Err(Errno::EINVAL);
        }
        ss[0]
    } else {
        0
    };
    let (n, r, w, e) = (a.int(0), a.u(1), a.u(2), a.u(3));
    with_mask(t, mask_addr, |t| select_common(t, n, r, w, e, dl))
}

pub fn sys_epoll_create1(t: &mut Task, a: &Args) -> KResult<u64> {
    let flags = a.int(0);
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let f = File::new(
        None,
        FileKind::Epoll(Arc::new(crate::fs::epoll::Epoll::new())),
        O_RDWR,
    );
    let limit = t.nofile_limit();
    lock(&t.fds())
        .alloc(f, flags & O_CLOEXEC != 0, 0, limit)
        .map(|fd| fd as u64)
}

pub fn sys_epoll_create(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.int(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    sys_epoll_create1(t, &Args([0; 6]))
}

fn epoll_of(t: &Task, epfd: i32) -> KResult<Arc<crate::fs::epoll::Epoll>> {
    match &get_file(t, epfd)?.kind {
        FileKind::Epoll(ep) => Ok(ep.clone()),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_epoll_ctl(t: &mut Task, a: &Args) -> KResult<u64> {
    use crate::fs::epoll::*;
    const ADD: i32 = 1;
    const DEL: i32 = 2;
    const MOD: i32 = 3;
    let (epfd, op, fd) = (a.int(0), a.int(1), a.int(2));
    let ep = epoll_of(t, epfd)?;
    let target = get_file(t, fd)?;
    if fd == epfd {
        return Err(Errno::EINVAL);
    }
    // Regular files and directories are always ready: Linux refuses them.
    if matches!(
        target.kind,
        FileKind::Lower { .. }
            | FileKind::Mem(_)
            | FileKind::Dir { .. }
            | FileKind::Synthetic(_)
            | FileKind::Path
    ) {
        return Err(Errno::EPERM);
    }
    let (events, data) = if op == DEL {
        (0, 0)
    } else {
        // struct epoll_event is packed on x86-64: u32 events, u64 data.
        let mut raw = [0u8; 12];
        t.copy_in(a.u(3), &mut raw)?;
        (
            u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
            u64::from_le_bytes(raw[4..12].try_into().unwrap_or([0; 8])),
        )
    };
    if events & EPOLLEXCLUSIVE != 0
        && (op != ADD || events & EPOLLONESHOT != 0 || matches!(target.kind, FileKind::Epoll(_)))
    {
        return Err(Errno::EINVAL);
    }
    match op {
        ADD => ep.add(fd, &target, events, data),
        MOD => ep.modify(fd, events, data),
        DEL => ep.remove(fd),
        _ => Err(Errno::EINVAL),
    }
    .map(|_| 0)
}

fn epoll_wait_common(
    t: &mut Task,
    epfd: i32,
    events: u64,
    max: i32,
    deadline: Option<Instant>,
) -> KResult<u64> {
    if max <= 0 || max as usize > (i32::MAX as usize) / 12 {
        return Err(Errno::EINVAL);
    }
    let ep = epoll_of(t, epfd)?;
    let hub = hub().clone();
    loop {
        let gen = *lock(&hub.gen);
        let ready = ep.collect(max as usize, 0, true);
        if !ready.is_empty() {
            let mut out = Vec::with_capacity(ready.len() * 12);
            for (ev, data) in &ready {
                out.extend_from_slice(&ev.to_le_bytes());
                out.extend_from_slice(&data.to_le_bytes());
            }
            t.copy_out(events, &out)?;
            return Ok(ready.len() as u64);
        }
        if matches!(deadline, Some(d) if Instant::now() >= d) {
            return Ok(0);
        }
        hub_wait(&hub, gen, deadline)?;
    }
}

pub fn sys_epoll_wait(t: &mut Task, a: &Args) -> KResult<u64> {
    let dl = timeout_ms(a.int(3));
    epoll_wait_common(t, a.int(0), a.u(1), a.int(2), dl)
}

pub fn sys_epoll_pwait(t: &mut Task, a: &Args) -> KResult<u64> {
    if a.u(4) != 0 && a.u(5) != 8 {
        return Err(Errno::EINVAL);
    }
    let dl = timeout_ms(a.int(3));
    let (epfd, ev, max) = (a.int(0), a.u(1), a.int(2));
    with_mask(t, a.u(4), |t| epoll_wait_common(t, epfd, ev, max, dl))
}
