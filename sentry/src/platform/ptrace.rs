//! The ptrace platform: each workload thread runs in a stub process forked
//! by the sentry thread that drives it and traced with PTRACE_SYSEMU, so
//! every `syscall` instruction stops the stub before the kernel runs it.
//!
//! A stub's address space holds only the stub page (at [`STUB_ADDR`]) and
//! mappings of the memory file that the sentry injects. Threads of one
//! workload process get one stub process each; they share the memory file
//! pages, and each stub replays the address space's change log before it
//! runs (see [`PtraceAddressSpace`]).

use super::{AddressSpace, Context, Event, Platform, PlatformError, Prot, Regs};
use crate::abi::TASK_SIZE;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The stub page: one page just below the top of the user address space.
/// Start of the stub region: a stack page (RW) then the code page (RX).
pub const STUB_ADDR: u64 = TASK_SIZE - 0x2000;
const STUB_CODE: u64 = STUB_ADDR + 0x1000;
/// Stack pointer for injected syscalls (never used by them, but kept valid).
const STUB_SP: u64 = STUB_CODE - 64;
/// Offset of `syscall; int3` used for injected syscalls.
const STUB_SYSCALL: u64 = 0;
/// Offset of the entry the forked child jumps to.
const STUB_INIT: u64 = 16;
/// Offset of the batch loop: runs `r12` syscalls described at `r13`.
const STUB_BATCH: u64 = 256;
/// One batched syscall: nr and six arguments (the result replaces nr).
const OP_SIZE: u64 = 56;
/// Ops fit in the page below the code page, shared with the sentry.
const OPS_PER_BATCH: usize = (0x1000 / OP_SIZE) as usize;

/// Machine code of the stub page. `keep` is a range that stays mapped in
/// stubs besides the stub region (none today).
fn stub_code(keep: (u64, u64)) -> Vec<u8> {
    let mut c = vec![0xcc_u8; 16];
    c[0] = 0x0f; // syscall
    c[1] = 0x05;
    c[2] = 0xcc; // int3: tells the tracer an injected syscall finished
                 // init: unmap everything below the stub page except `keep`; int3 (the
                 // tracer takes over at the SIGTRAP stop).
    for (start, end) in unmap_ranges(keep) {
        c.extend_from_slice(&[0xb8, 11, 0, 0, 0]); // mov eax, SYS_munmap
        c.extend_from_slice(&[0x48, 0xbf]); // mov rdi, imm64
        c.extend_from_slice(&start.to_le_bytes());
        c.extend_from_slice(&[0x48, 0xbe]); // mov rsi, imm64
        c.extend_from_slice(&(end - start).to_le_bytes());
        c.extend_from_slice(&[0x0f, 0x05]); // syscall
    }
    c.push(0xcc); // int3
                  // batch: while r12 { load nr+args from [r13]; syscall; [r13] = rax;
                  // r13 += 56; r12 -= 1 }; int3
    c.resize(STUB_BATCH as usize, 0xcc);
    c.extend_from_slice(&[0x4d, 0x85, 0xe4]); // test r12, r12
    c.extend_from_slice(&[0x74, 0x2b]); // jz done
    c.extend_from_slice(&[0x49, 0x8b, 0x45, 0x00]); // mov rax, [r13]
    c.extend_from_slice(&[0x49, 0x8b, 0x7d, 0x08]); // mov rdi, [r13+8]
    c.extend_from_slice(&[0x49, 0x8b, 0x75, 0x10]); // mov rsi, [r13+16]
    c.extend_from_slice(&[0x49, 0x8b, 0x55, 0x18]); // mov rdx, [r13+24]
    c.extend_from_slice(&[0x4d, 0x8b, 0x55, 0x20]); // mov r10, [r13+32]
    c.extend_from_slice(&[0x4d, 0x8b, 0x45, 0x28]); // mov r8, [r13+40]
    c.extend_from_slice(&[0x4d, 0x8b, 0x4d, 0x30]); // mov r9, [r13+48]
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c.extend_from_slice(&[0x49, 0x89, 0x45, 0x00]); // mov [r13], rax
    c.extend_from_slice(&[0x49, 0x83, 0xc5, 0x38]); // add r13, 56
    c.extend_from_slice(&[0x49, 0xff, 0xcc]); // dec r12
    c.extend_from_slice(&[0xeb, 0xd0]); // jmp batch
    c.push(0xcc); // done: int3
    c
}

/// The ranges a fresh stub unmaps: [0, STUB_ADDR) minus `keep`.
fn unmap_ranges(keep: (u64, u64)) -> Vec<(u64, u64)> {
    if keep.0 >= keep.1 || keep.1 > STUB_ADDR {
        return vec![(0, STUB_ADDR)];
    }
    let mut v = Vec::new();
    if keep.0 > 0 {
        v.push((0, keep.0));
    }
    if keep.1 < STUB_ADDR {
        v.push((keep.1, STUB_ADDR));
    }
    v
}

pub struct PtracePlatform {
    memfd: RawFd,
    mf: Arc<crate::mm::memfile::MemoryFile>,
    keep: (u64, u64),
}

impl PtracePlatform {
    /// Map the stub page into the sentry (every stub inherits it by fork).
    pub fn new(mf: Arc<crate::mm::memfile::MemoryFile>) -> Result<Self, PlatformError> {
        let memfd = mf.fd();
        // Nothing of the sentry's address space stays in stubs.
        let keep = (0, 0);
        crate::platform::ptrace_sys::map_stub_page(STUB_ADDR, &stub_code(keep))?;
        Ok(PtracePlatform { memfd, mf, keep })
    }
}

impl Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }
    fn new_address_space(&self) -> Arc<dyn AddressSpace> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Arc::new(PtraceAddressSpace {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            log: Mutex::new(AsLog {
                epoch: 0,
                ops: Vec::new(),
                running: Default::default(),
                entries: 0,
                shootdowns: 0,
            }),
            left: std::sync::Condvar::new(),
        })
    }
    fn reserved(&self) -> Vec<(u64, u64)> {
        if self.keep.0 < self.keep.1 {
            vec![self.keep]
        } else {
            vec![]
        }
    }
    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        let pid = crate::platform::ptrace_sys::fork_stub(
            self.memfd,
            self.mf.filestore_fd(),
            STUB_CODE + STUB_INIT,
        )?;
        let pid = Pid::from_raw(pid);
        // The child traps (int3) once its address space is empty.
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => {}
            other => {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
                return Err(PlatformError::StubDied(format!("stub start: {other:?}")));
            }
        }
        ptrace::setoptions(
            pid,
            ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESYSGOOD,
        )
        .map_err(|err| PlatformError::Host {
            op: "PTRACE_SETOPTIONS",
            err,
        })?;
        let template = ptrace::getregs(pid).map_err(|err| PlatformError::Host {
            op: "PTRACE_GETREGS",
            err,
        })?;
        // The page below the code page becomes the batch buffer: a page of
        // the memory file the sentry writes and the stub reads.
        let ops_off = self
            .mf
            .allocate(0x1000)
            .map_err(|_| PlatformError::StubDied("no memory for the stub".into()))?;
        let mut ctx = PtraceContext {
            pid,
            template,
            keep: self.keep,
            mf: self.mf.clone(),
            ops_off,
            bound: None,
            dead: false,
        };
        let r = ctx.inject(
            libc::SYS_mmap,
            [
                STUB_ADDR,
                0x1000,
                (libc::PROT_READ | libc::PROT_WRITE) as u64,
                (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                self.memfd as u64,
                ops_off,
            ],
        )?;
        if r != STUB_ADDR as i64 {
            return Err(PlatformError::StubDied(format!(
                "mapping the batch page: {r}"
            )));
        }
        Ok(Box::new(ctx))
    }
}

#[derive(Debug, Clone, Copy)]
enum AsOp {
    Map {
        addr: u64,
        len: u64,
        off: u64,
        prot: Prot,
    },
    Unmap {
        addr: u64,
        len: u64,
    },
}

struct AsLog {
    epoch: u64,
    ops: Vec<AsOp>,
    /// Stubs running workload code in this address space: host pid ->
    /// how many times it has entered (to see that it left since).
    running: std::collections::HashMap<i32, u64>,
    entries: u64,
    /// Shootdowns waiting on `left` (stubs notify only when there are).
    shootdowns: u32,
}

/// An address space as a log of changes; each stub replays what it has not
/// yet applied before running workload code.
pub struct PtraceAddressSpace {
    id: u64,
    log: Mutex<AsLog>,
    /// Signalled when a stub leaves user mode.
    left: std::sync::Condvar,
}

impl PtraceAddressSpace {
    fn lock(&self) -> std::sync::MutexGuard<'_, AsLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stop each stub running workload code in this address space (SIGURG)
    /// and wait until it has left user mode; it applies the log before it
    /// runs again.
    fn shootdown_locked(&self, mut log: std::sync::MutexGuard<'_, AsLog>) {
        let running: Vec<(i32, u64)> = log.running.iter().map(|(p, e)| (*p, *e)).collect();
        if running.is_empty() {
            return;
        }
        for (pid, _) in &running {
            let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGURG);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        log.shootdowns += 1;
        while running.iter().any(|(p, e)| log.running.get(p) == Some(e)) {
            let now = std::time::Instant::now();
            if now >= deadline {
                tracing::warn!("shootdown: a stub did not stop in time");
                break;
            }
            log = self
                .left
                .wait_timeout(log, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        log.shootdowns -= 1;
    }
}

impl AddressSpace for PtraceAddressSpace {
    fn map_file(&self, addr: u64, len: u64, off: u64, prot: Prot) {
        self.lock().ops.push(AsOp::Map {
            addr,
            len,
            off,
            prot,
        });
    }
    fn unmap(&self, addr: u64, len: u64) {
        let mut log = self.lock();
        log.ops.push(AsOp::Unmap { addr, len });
        // A sibling thread's stub that is running right now still maps the
        // range: only after the shootdown may the caller free the memory.
        self.shootdown_locked(log);
    }
    fn shootdown(&self) {
        self.shootdown_locked(self.lock());
    }
    fn reset(&self, maps: &[(u64, u64, u64, Prot)]) {
        let mut log = self.lock();
        log.epoch += 1;
        log.ops = maps
            .iter()
            .map(|&(addr, len, off, prot)| AsOp::Map {
                addr,
                len,
                off,
                prot,
            })
            .collect();
    }
    fn log_len(&self) -> usize {
        self.lock().ops.len()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Which address space state a stub currently reflects.
#[derive(Clone, Copy)]
struct Bound {
    as_id: u64,
    epoch: u64,
    applied: usize,
}

pub struct PtraceContext {
    keep: (u64, u64),
    mf: Arc<crate::mm::memfile::MemoryFile>,
    /// Memory-file offset of the batch page (mapped at STUB_ADDR).
    ops_off: u64,
    pid: Pid,
    template: Regs,
    bound: Option<Bound>,
    dead: bool,
}

impl PtraceContext {
    fn host(op: &'static str) -> impl Fn(nix::Error) -> PlatformError {
        move |err| PlatformError::Host { op, err }
    }

    /// Run one real syscall inside the stub (address-space maintenance only).
    fn inject(&mut self, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
        let mut r = self.template;
        r.rip = STUB_CODE + STUB_SYSCALL;
        r.rsp = STUB_SP;
        r.rax = nr as u64;
        r.rcx = r.rip;
        r.r11 = r.eflags;
        r.orig_rax = u64::MAX;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        self.run_injected(r)?;
        let out = ptrace::getregs(self.pid).map_err(Self::host("PTRACE_GETREGS"))?;
        Ok(out.rax as i64)
    }

    /// Resume the stub with `r` (pointing into the stub page) until its int3.
    fn run_injected(&mut self, r: Regs) -> Result<(), PlatformError> {
        let nr = r.rax;
        ptrace::setregs(self.pid, r).map_err(Self::host("PTRACE_SETREGS"))?;
        ptrace::cont(self.pid, None).map_err(Self::host("PTRACE_CONT"))?;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => break,
                // A stray host signal (e.g. SIGSTOP from outside): suppress and go on.
                Ok(WaitStatus::Stopped(_, sig))
                    if !matches!(
                        sig,
                        Signal::SIGSEGV | Signal::SIGBUS | Signal::SIGILL | Signal::SIGFPE
                    ) =>
                {
                    ptrace::cont(self.pid, None).map_err(Self::host("PTRACE_CONT"))?;
                }
                Ok(WaitStatus::Stopped(_, sig)) => {
                    let regs = ptrace::getregs(self.pid).ok();
                    self.dead = true;
                    return Err(PlatformError::StubDied(format!(
                        "stub faulted with {sig:?} injecting syscall {nr} at rip {:#x?}",
                        regs.map(|r| r.rip)
                    )));
                }
                Ok(WaitStatus::PtraceSyscall(_)) => {
                    ptrace::cont(self.pid, None).map_err(Self::host("PTRACE_CONT"))?;
                }
                other => {
                    self.dead = true;
                    return Err(PlatformError::StubDied(format!("during inject: {other:?}")));
                }
            }
        }
        Ok(())
    }

    /// Run up to OPS_PER_BATCH address-space changes in one stop.
    fn apply_batch(&mut self, ops: &[AsOp]) -> Result<(), PlatformError> {
        if ops.len() == 1 {
            return self.apply(ops[0]);
        }
        let mut buf = Vec::with_capacity(ops.len() * OP_SIZE as usize);
        for op in ops {
            let (nr, args) = self.op_syscall(*op);
            for w in std::iter::once(nr as u64).chain(args) {
                buf.extend_from_slice(&w.to_le_bytes());
            }
        }
        self.mf
            .write(self.ops_off, &buf)
            .map_err(|_| PlatformError::StubDied("batch page".into()))?;
        let mut r = self.template;
        r.rip = STUB_CODE + STUB_BATCH;
        r.rsp = STUB_SP;
        r.r12 = ops.len() as u64;
        r.r13 = STUB_ADDR;
        r.orig_rax = u64::MAX;
        self.run_injected(r)?;
        let mut res = vec![0u8; buf.len()];
        if self.mf.read(self.ops_off, &mut res).is_ok() {
            for (i, op) in ops.iter().enumerate() {
                let o = i * OP_SIZE as usize;
                let v = i64::from_le_bytes(res[o..o + 8].try_into().unwrap_or([0; 8]));
                if (-4095..0).contains(&v) {
                    tracing::warn!(?op, errno = -v, "address space change failed in stub");
                }
            }
        }
        Ok(())
    }

    /// The stub syscall that carries out `op`: the number and arguments
    /// (maps come from the store, memfd or filestore, holding the range).
    fn op_syscall(&self, op: AsOp) -> (i64, [u64; 6]) {
        match op {
            AsOp::Map {
                addr,
                len,
                off,
                prot,
            } => {
                let (fd, off) = self.mf.fd_for(off);
                (
                    libc::SYS_mmap,
                    [
                        addr,
                        len,
                        prot as u64,
                        (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                        fd as u64,
                        off,
                    ],
                )
            }
            AsOp::Unmap { addr, len } => (libc::SYS_munmap, [addr, len, 0, 0, 0, 0]),
        }
    }

    fn apply(&mut self, op: AsOp) -> Result<(), PlatformError> {
        let (nr, args) = self.op_syscall(op);
        let ret = self.inject(nr, args)?;
        if (-4095..0).contains(&ret) {
            tracing::warn!(?op, errno = -ret, "address space change failed in stub");
        }
        Ok(())
    }

    /// Whether this stub has applied every change logged in `log`.
    fn synced_to(&self, mm: &PtraceAddressSpace, log: &AsLog) -> bool {
        matches!(self.bound, Some(b) if b.as_id == mm.id && b.epoch == log.epoch && b.applied == log.ops.len())
    }

    /// Bring the stub's mappings up to date with `mm`.
    fn sync(&mut self, mm: &PtraceAddressSpace) -> Result<(), PlatformError> {
        let (epoch, pending): (u64, Vec<AsOp>) = {
            let log = mm.lock();
            let start = match self.bound {
                Some(b) if b.as_id == mm.id && b.epoch == log.epoch => b.applied,
                _ => usize::MAX,
            };
            if start == log.ops.len() {
                return Ok(());
            }
            if start == usize::MAX {
                (log.epoch, log.ops.clone())
            } else {
                (log.epoch, log.ops[start.min(log.ops.len())..].to_vec())
            }
        };
        let full = !matches!(self.bound, Some(b) if b.as_id == mm.id && b.epoch == epoch);
        let mut ops: Vec<AsOp> = Vec::new();
        if full {
            // A different address space or a compacted log: start empty.
            for (start, end) in unmap_ranges(self.keep) {
                ops.push(AsOp::Unmap {
                    addr: start,
                    len: end - start,
                });
            }
            self.bound = Some(Bound {
                as_id: mm.id,
                epoch,
                applied: 0,
            });
        }
        let n = pending.len();
        ops.extend(pending);
        for chunk in ops.chunks(OPS_PER_BATCH) {
            self.apply_batch(chunk)?;
        }
        if let Some(b) = self.bound.as_mut() {
            b.applied += n;
        }
        Ok(())
    }
}

impl Context for PtraceContext {
    fn switch(&mut self, mm: &dyn AddressSpace, regs: &mut Regs) -> Result<Event, PlatformError> {
        if self.dead {
            return Err(PlatformError::StubDied("stub is gone".into()));
        }
        let Some(mm) = mm.as_any().downcast_ref::<PtraceAddressSpace>() else {
            return Err(PlatformError::StubDied("foreign address space".into()));
        };
        self.sync(mm)?;
        ptrace::setregs(self.pid, *regs).map_err(Self::host("PTRACE_SETREGS"))?;
        {
            // Marked running under the log lock, after the sync: an unmap
            // logged later finds us and waits for us to stop.
            let mut log = mm.lock();
            if !log.ops.is_empty() && !self.synced_to(mm, &log) {
                drop(log);
                return Ok(Event::Interrupted);
            }
            log.entries += 1;
            let e = log.entries;
            log.running.insert(self.pid.as_raw(), e);
        }
        let resumed = ptrace::sysemu(self.pid, None).map_err(Self::host("PTRACE_SYSEMU"));
        let status = if resumed.is_ok() {
            waitpid(self.pid, Some(WaitPidFlag::__WALL))
        } else {
            Err(nix::Error::ESRCH)
        };
        // Whether the address space changed while the stub ran (a sibling's
        // copy-on-write break, mprotect, fork): a fault may then come from
        // the stale mapping.
        let stale = {
            let mut log = mm.lock();
            log.running.remove(&self.pid.as_raw());
            if log.shootdowns > 0 {
                mm.left.notify_all();
            }
            !self.synced_to(mm, &log)
        };
        resumed?;
        let event = match status {
            Ok(WaitStatus::PtraceSyscall(_)) => Event::Syscall,
            Ok(WaitStatus::Stopped(_, sig)) => {
                let info = ptrace::getsiginfo(self.pid).map_err(Self::host("PTRACE_GETSIGINFO"))?;
                let signo = sig as i32;
                let synchronous = matches!(
                    sig,
                    Signal::SIGSEGV
                        | Signal::SIGBUS
                        | Signal::SIGFPE
                        | Signal::SIGILL
                        | Signal::SIGTRAP
                ) && info.si_code > 0;
                if synchronous && sig == Signal::SIGSEGV && stale {
                    // Retried after the sync: a real fault comes back, with
                    // the stub's mappings current.
                    Event::Interrupted
                } else if synchronous {
                    // SAFETY: si_addr is valid for the fault signals checked above.
                    let addr = unsafe { info.si_addr() } as u64;
                    Event::Fault {
                        signo,
                        code: info.si_code,
                        addr,
                    }
                } else {
                    Event::Interrupted
                }
            }
            other => {
                self.dead = true;
                return Err(PlatformError::StubDied(format!("{other:?}")));
            }
        };
        *regs = ptrace::getregs(self.pid).map_err(Self::host("PTRACE_GETREGS"))?;
        Ok(event)
    }

    fn initial_regs(&self) -> Regs {
        let mut r = self.template;
        r.rax = 0;
        r.orig_rax = u64::MAX;
        r.rdi = 0;
        r.rsi = 0;
        r.rdx = 0;
        r.r10 = 0;
        r.r8 = 0;
        r.r9 = 0;
        r.fs_base = 0;
        r.gs_base = 0;
        r.eflags = 0x202;
        r
    }

    fn host_pid(&self) -> i32 {
        self.pid.as_raw()
    }

    fn colocate(&self, slot: usize) {
        crate::platform::ptrace_sys::colocate(self.pid.as_raw(), slot);
    }

    fn fp_state(&mut self) -> Result<Vec<u8>, PlatformError> {
        // The full XSAVE area (AVX and beyond); the legacy FXSAVE area if
        // the kernel offers no XSTATE regset.
        crate::platform::ptrace_sys::get_xstate(self.pid.as_raw())
            .or_else(|_| crate::platform::ptrace_sys::get_fpregs(self.pid.as_raw()))
    }

    fn reusable(&mut self) -> bool {
        !self.dead
            && matches!(
                waitpid(self.pid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)),
                Ok(WaitStatus::StillAlive)
            )
    }

    fn set_fp_state(&mut self, fx: &[u8]) -> Result<(), PlatformError> {
        if fx.len() > 512 {
            crate::platform::ptrace_sys::set_xstate(self.pid.as_raw(), fx)
        } else {
            crate::platform::ptrace_sys::set_fpregs(self.pid.as_raw(), fx)
        }
    }
}

impl Drop for PtraceContext {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, Some(WaitPidFlag::__WALL));
        self.mf.free(self.ops_off, 0x1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_maps_memory_and_stops_at_syscalls() {
        let mf = Arc::new(crate::mm::memfile::MemoryFile::new().unwrap());
        let p = PtracePlatform::new(mf.clone()).unwrap();
        let as_ = p.new_address_space();
        let mut ctx = p.new_context().unwrap();
        let off = mf.allocate(4096).unwrap();
        // mov eax, 39 (getpid); syscall; jmp back
        mf.write(off, &[0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7])
            .unwrap();
        as_.map_file(0x40_0000, 4096, off, PROT_READ_EXEC);
        let mut regs = ctx.initial_regs();
        regs.rip = 0x40_0000;
        let ev = ctx.switch(&*as_, &mut regs).unwrap();
        assert_eq!(ev, Event::Syscall);
        assert_eq!(regs.orig_rax, 39);
    }
    const PROT_READ_EXEC: u32 = 5;
}
