//! Pipes: a bounded byte queue shared by a read end and a write end.

use crate::abi::*;
use crate::signals::{self, WaitOutcome};
use crate::vfs::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

pub const PIPE_BUF: usize = 4096;
pub const DEFAULT_CAPACITY: usize = 65536;
const MAX_CAPACITY: usize = 1 << 20;

struct Inner {
    buf: VecDeque<u8>,
    /// Opens of each side so far (a FIFO open waits for the other side's
    /// count to move, as Linux's r_counter/w_counter, so a peer that came
    /// and went already is not missed).
    r_opens: u64,
    w_opens: u64,
    cap: usize,
    readers: usize,
    writers: usize,
}

pub struct Pipe {
    inner: Mutex<Inner>,
    cv: Condvar,
    pub ino: u64,
}

impl Default for Pipe {
    fn default() -> Self {
        Pipe {
            inner: Mutex::new(Inner {
                buf: VecDeque::new(),
                r_opens: 0,
                w_opens: 0,
                cap: DEFAULT_CAPACITY,
                readers: 0,
                writers: 0,
            }),
            cv: Condvar::new(),
            ino: crate::vfs::new_ino(),
        }
    }
}

impl Pipe {
    pub fn open_end(&self, write: bool) {
        let mut g = lock(&self.inner);
        if write {
            g.writers += 1;
        } else {
            g.readers += 1;
        }
    }

    /// open(2) of a FIFO: count the new ends, then, unless non-blocking or
    /// opened for both, wait for the other side (a non-blocking writer
    /// without a reader gets ENXIO).
    pub fn open_fifo(self: &Arc<Self>, read: bool, write: bool, nonblock: bool) -> KResult<()> {
        let mut g = lock(&self.inner);
        if write && !read && nonblock && g.readers == 0 {
            return Err(Errno::ENXIO);
        }
        if read {
            g.readers += 1;
            g.r_opens += 1;
        }
        if write {
            g.writers += 1;
            g.w_opens += 1;
        }
        self.cv.notify_all();
        if (read && write) || nonblock {
            drop(g);
            crate::syscalls::poll::hub().notify();
            return Ok(());
        }
        let seen = if read { g.w_opens } else { g.r_opens };
        drop(g);
        crate::syscalls::poll::hub().notify();
        let mut g = lock(&self.inner);
        loop {
            let (peer, opens) = if read {
                (g.writers, g.w_opens)
            } else {
                (g.readers, g.r_opens)
            };
            if peer > 0 || opens != seen {
                return Ok(());
            }
            let (ng, out) = signals::wait(self.clone(), &self.cv, g, None);
            g = ng;
            if matches!(out, WaitOutcome::Interrupted) {
                drop(g);
                self.close_end(!read);
                return Err(Errno::EINTR);
            }
        }
    }

    pub fn close_end(&self, write: bool) {
        let mut g = lock(&self.inner);
        if write {
            g.writers = g.writers.saturating_sub(1);
        } else {
            g.readers = g.readers.saturating_sub(1);
        }
        self.cv.notify_all();
        drop(g);
        crate::syscalls::poll::hub().notify();
    }

    pub fn notify(&self) {
        let _g = lock(&self.inner);
        self.cv.notify_all();
    }

    /// poll(2) readiness of one end.
    pub fn poll(&self, write: bool) -> i16 {
        use crate::syscalls::poll::*;
        let g = lock(&self.inner);
        if write {
            if g.readers == 0 {
                POLLOUT | POLLERR
            } else if g.cap - g.buf.len() >= PIPE_BUF.min(g.cap) {
                POLLOUT | POLLWRNORM
            } else {
                0
            }
        } else {
            let mut r = 0;
            if !g.buf.is_empty() {
                r |= POLLIN | POLLRDNORM;
            }
            if g.writers == 0 {
                r |= POLLHUP;
            }
            r
        }
    }

    pub fn read(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        self.take(buf, nonblock, true)
    }

    /// tee(2)'s read: copy queued bytes without taking them, waiting for
    /// some as read would (0 once every writer is gone).
    pub fn peek(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        self.take(buf, nonblock, false)
    }

    /// Wait for bytes (0 at end of file), then copy them out, consuming
    /// them when `consume`.
    fn take(self: &Arc<Self>, buf: &mut [u8], nonblock: bool, consume: bool) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut g = lock(&self.inner);
        while g.buf.is_empty() {
            if g.writers == 0 {
                return Ok(0);
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let (ng, out) = signals::wait(self.clone(), &self.cv, g, None);
            g = ng;
            if let WaitOutcome::Interrupted = out {
                return Err(Errno::ERESTARTSYS);
            }
        }
        let n = buf.len().min(g.buf.len());
        for (dst, src) in buf.iter_mut().zip(g.buf.iter()) {
            *dst = *src;
        }
        if !consume {
            return Ok(n);
        }
        g.buf.drain(..n);
        self.cv.notify_all();
        drop(g);
        crate::syscalls::poll::hub().notify();
        Ok(n)
    }

    /// Free space now.
    pub fn room(&self) -> usize {
        let g = lock(&self.inner);
        g.cap.saturating_sub(g.buf.len())
    }

    /// Writes of at most PIPE_BUF bytes are atomic.
    pub fn write(self: &Arc<Self>, data: &[u8], nonblock: bool) -> KResult<usize> {
        let mut g = lock(&self.inner);
        let mut done = 0;
        while done < data.len() {
            if g.readers == 0 {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EPIPE)
                };
            }
            let space = g.cap.saturating_sub(g.buf.len());
            let need = if data.len() <= PIPE_BUF {
                data.len()
            } else {
                1
            };
            if space < need {
                if nonblock {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EAGAIN)
                    };
                }
                let (ng, out) = signals::wait(self.clone(), &self.cv, g, None);
                g = ng;
                if let WaitOutcome::Interrupted = out {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::ERESTARTSYS)
                    };
                }
                continue;
            }
            let n = space.min(data.len() - done);
            g.buf.extend(&data[done..done + n]);
            done += n;
            self.cv.notify_all();
            crate::syscalls::poll::hub().notify();
        }
        Ok(done)
    }

    pub fn available(&self) -> usize {
        lock(&self.inner).buf.len()
    }

    pub fn capacity(&self) -> usize {
        lock(&self.inner).cap
    }

    pub fn set_capacity(&self, size: usize) -> KResult<usize> {
        let cap = size.max(PAGE_SIZE as usize).next_power_of_two();
        if cap > MAX_CAPACITY {
            return Err(Errno::EPERM);
        }
        let mut g = lock(&self.inner);
        if g.buf.len() > cap {
            return Err(Errno::EBUSY);
        }
        g.cap = cap;
        Ok(cap)
    }
}
