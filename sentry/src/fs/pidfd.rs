//! pidfd: a file descriptor that refers to a process (pidfd_open(2),
//! clone's CLONE_PIDFD). It keeps naming the same process even after its
//! pid is reaped and reused; it polls readable once the process has exited.

use crate::abi::*;
use crate::kernel::process::Process;
use crate::syscalls::poll::{POLLIN, POLLRDNORM};
use std::sync::{Arc, OnceLock};

pub struct PidFd {
    /// Set at creation, or by clone right after it made the process (the
    /// descriptor is installed first, so that a full table fails the clone
    /// before any child exists).
    proc_: OnceLock<Arc<Process>>,
    pub ino: u64,
}

impl PidFd {
    pub fn new(p: Option<Arc<Process>>) -> Arc<PidFd> {
        let cell = OnceLock::new();
        if let Some(p) = p {
            let _ = cell.set(p);
        }
        Arc::new(PidFd {
            proc_: cell,
            ino: crate::vfs::new_ino(),
        })
    }

    /// Names `p` (once; later calls change nothing).
    pub fn set(&self, p: Arc<Process>) {
        let _ = self.proc_.set(p);
    }

    pub fn process(&self) -> KResult<&Arc<Process>> {
        self.proc_.get().ok_or(Errno::ESRCH)
    }

    /// Whether every thread of the process is gone (a zombie, or reaped).
    pub fn exited(&self) -> bool {
        self.proc_.get().is_some_and(|p| {
            let ps = p.lock();
            ps.exit.is_some() && ps.threads.is_empty()
        })
    }

    pub fn poll(&self) -> i16 {
        if self.exited() {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }
}
