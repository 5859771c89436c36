//! Platforms: how workload code is run and its syscalls and faults caught.
//!
//! A [`Context`] runs one workload thread's registers inside an
//! [`AddressSpace`] until the thread makes a syscall, faults or receives a
//! host signal. Nothing the workload does reaches the host kernel as a
//! syscall: the platform stops it first and hands control to the sentry.

pub mod ptrace;
pub(crate) mod ptrace_sys;

use std::sync::Arc;

pub type Regs = libc::user_regs_struct;

/// Why `Context::switch` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The workload executed `syscall`; number in `orig_rax`, args in regs.
    Syscall,
    /// A synchronous fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP).
    Fault { signo: i32, code: i32, addr: u64 },
    /// A host signal interrupted the workload (e.g. the sentry's own
    /// interrupt, or a signal sent to the stub from outside).
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("stub process died: {0}")]
    StubDied(String),
    #[error("host error in {op}: {err}")]
    Host { op: &'static str, err: nix::Error },
    #[error("stub address range is in use by the sentry")]
    StubAddressBusy,
}

/// Protection bits as mmap(2) takes them.
pub type Prot = u32;

/// One workload address space as the platform sees it: ranges of the memory
/// file mapped at workload addresses.
pub trait AddressSpace: Send + Sync {
    /// Map `len` bytes of the memory file at `offset` to `addr` (replacing
    /// whatever was there).
    fn map_file(&self, addr: u64, len: u64, offset: u64, prot: Prot);
    /// Remove any mapping in `[addr, addr+len)`.
    fn unmap(&self, addr: u64, len: u64);
    /// Shootdown: stop every stub running workload code in this address
    /// space and wait until each has left user mode, so that the changes
    /// logged so far (a write permission taken away, a page moved) hold for
    /// all threads before the caller goes on. `unmap` does this itself.
    fn shootdown(&self);
    /// Replace all mappings with `maps` (addr, len, offset, prot); used to
    /// compact the change log.
    fn reset(&self, maps: &[(u64, u64, u64, Prot)]);
    /// Number of pending changes since the last reset (for compaction).
    fn log_len(&self) -> usize;
    fn as_any(&self) -> &dyn std::any::Any;
}

/// One workload thread's execution vehicle. Must be driven by the host
/// thread that created it.
pub trait Context: Send {
    /// Run `regs` in `mm` until the next event; `regs` are updated in place.
    fn switch(&mut self, mm: &dyn AddressSpace, regs: &mut Regs) -> Result<Event, PlatformError>;
    /// Registers suitable as a starting point for a new thread (segment
    /// selectors and flags filled in).
    fn initial_regs(&self) -> Regs;
    /// Host pid of the stub (for logs and for cgroup placement).
    fn host_pid(&self) -> i32;
    /// The thread's floating-point state: the XSAVE area (whose first 512
    /// bytes are the FXSAVE layout); read only when needed (signal
    /// delivery), never on every stop.
    fn fp_state(&mut self) -> Result<Vec<u8>, PlatformError>;
    fn set_fp_state(&mut self, fx: &[u8]) -> Result<(), PlatformError>;
    /// Place the stub and the calling (driving) thread on the same CPU.
    fn colocate(&self, _slot: usize) {}
    /// Whether the vehicle is intact and may drive another task (the
    /// stub alive and stopped, not killed).
    fn reusable(&mut self) -> bool {
        false
    }
}

pub trait Platform: Send + Sync {
    fn name(&self) -> &'static str;
    fn new_address_space(&self) -> Arc<dyn AddressSpace>;
    /// Address ranges the workload may not map (the platform's own).
    fn reserved(&self) -> Vec<(u64, u64)>;
    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError>;
}
