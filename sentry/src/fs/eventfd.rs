//! eventfd: a 64-bit counter with read/write/poll semantics of eventfd(2).

use crate::abi::*;
use crate::signals::{self, WaitOutcome};
use crate::vfs::lock;
use std::sync::{Arc, Condvar, Mutex};

const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    cv: Condvar,
    pub semaphore: bool,
    pub ino: u64,
}

impl signals::Wakeable for EventFd {
    fn wake_all(&self) {
        let _g = lock(&self.count);
        self.cv.notify_all();
    }
}

impl EventFd {
    pub fn new(init: u64, semaphore: bool) -> Arc<EventFd> {
        Arc::new(EventFd {
            count: Mutex::new(init),
            cv: Condvar::new(),
            semaphore,
            ino: crate::vfs::new_ino(),
        })
    }

    pub fn read(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut c = lock(&self.count);
        while *c == 0 {
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let (g, out) = signals::wait(self.clone(), &self.cv, c, None);
            c = g;
            if let WaitOutcome::Interrupted = out {
                return Err(Errno::ERESTARTSYS);
            }
        }
        let v = if self.semaphore { 1 } else { *c };
        *c -= v;
        buf[..8].copy_from_slice(&v.to_le_bytes());
        self.cv.notify_all();
        drop(c);
        crate::syscalls::poll::hub().notify();
        Ok(8)
    }

    pub fn write(self: &Arc<Self>, buf: &[u8], nonblock: bool) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = u64::from_le_bytes(buf[..8].try_into().map_err(|_| Errno::EINVAL)?);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        let mut c = lock(&self.count);
        while MAX - *c < v {
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let (g, out) = signals::wait(self.clone(), &self.cv, c, None);
            c = g;
            if let WaitOutcome::Interrupted = out {
                return Err(Errno::ERESTARTSYS);
            }
        }
        *c += v;
        self.cv.notify_all();
        drop(c);
        crate::syscalls::poll::hub().notify();
        Ok(8)
    }

    /// poll(2) readiness.
    pub fn poll(&self) -> i16 {
        use crate::syscalls::poll::*;
        let c = *lock(&self.count);
        let mut r = 0;
        if c > 0 {
            r |= POLLIN | POLLRDNORM;
        }
        if c < MAX {
            r |= POLLOUT | POLLWRNORM;
        }
        r
    }
}
