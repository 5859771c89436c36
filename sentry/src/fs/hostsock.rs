//! A sandbox AF_UNIX socket connected to a host socket in a bind mount
//! (`--host-uds open`). The gofer makes and connects the host socket (the
//! sentry cannot open host paths) and donates it; the sentry then moves
//! bytes through it with sendmsg/recvmsg, never blocking in the host: the
//! fd is non-blocking and waits are poll(2) slices that a signal for the
//! task interrupts.
//!
//! Only data crosses. Sending files (SCM_RIGHTS) to a host peer is refused
//! with EOPNOTSUPP; files or credentials a host peer sends are dropped by
//! the host kernel (no control buffer: MSG_CTRUNC), so no host fd ever
//! reaches the sentry's fd table, let alone the workload.

use crate::abi::*;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

/// The host side of a connected sandbox socket.
pub struct HostConn {
    fd: OwnedFd,
    /// The path the workload connected to (getpeername).
    pub path: Vec<u8>,
}

/// How long one poll slice waits before checking for signals.
const SLICE_MS: i32 = 100;

impl HostConn {
    pub fn new(fd: OwnedFd, path: Vec<u8>) -> HostConn {
        HostConn { fd, path }
    }

    /// Waits until the host socket is ready for `events`: EAGAIN at the
    /// deadline, ERESTARTSYS when a signal for the task comes.
    fn wait(&self, events: i16, deadline: Option<Instant>) -> KResult<()> {
        loop {
            let ms = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Errno::EAGAIN);
                    }
                    (left.as_millis() as i32).clamp(1, SLICE_MS)
                }
                None => SLICE_MS,
            };
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut p, 1, ms) };
            if n > 0 {
                return Ok(());
            }
            if n < 0 && Errno::last_host() != Errno::EINTR {
                return Err(Errno::last_host());
            }
            if crate::signals::current_interrupted() {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    /// One sendmsg of `data` without waiting.
    fn send_once(&self, data: &[u8]) -> KResult<usize> {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: msghdr is plain data; zeroed is valid (no name, no control).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        loop {
            // SAFETY: `msg` points at one iovec over `data`, which outlives
            // the call; the kernel only reads it.
            let n = unsafe {
                libc::sendmsg(
                    self.fd.as_raw_fd(),
                    &msg,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            match Errno::last_host() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
    }

    /// send(2): a stream sends everything unless non-blocking (then what
    /// fits) or interrupted after some bytes; a record goes whole or not.
    pub fn send(
        &self,
        data: &[u8],
        stream: bool,
        nonblock: bool,
        deadline: Option<Instant>,
    ) -> KResult<usize> {
        let mut done = 0usize;
        loop {
            match self.send_once(&data[done..]) {
                Ok(n) => {
                    done += n;
                    if !stream || done == data.len() || nonblock {
                        return Ok(done);
                    }
                }
                Err(Errno::EAGAIN) if !nonblock => {
                    if let Err(e) = self.wait(libc::POLLOUT, deadline) {
                        return if done > 0 { Ok(done) } else { Err(e) };
                    }
                }
                Err(e) if done > 0 && e != Errno::EPIPE => return Ok(done),
                Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            }
        }
    }

    /// recv(2) of up to `want` bytes: the data, and for records their
    /// whole length (MSG_TRUNC).
    pub fn recv(
        &self,
        want: usize,
        peek: bool,
        record: bool,
        nonblock: bool,
        deadline: Option<Instant>,
    ) -> KResult<(Vec<u8>, usize)> {
        let mut buf = vec![0u8; want];
        let mut flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
        if peek {
            flags |= libc::MSG_PEEK;
        }
        if record {
            flags |= libc::MSG_TRUNC;
        }
        loop {
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: plain data; no name and no control buffer, so the
            // host kernel drops any files or credentials sent along.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            // SAFETY: `msg` points at one iovec over `buf`, writable for its
            // length.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, flags) };
            if n >= 0 {
                let full = n as usize;
                buf.truncate(full.min(want));
                return Ok((buf, full));
            }
            match Errno::last_host() {
                Errno::EINTR => continue,
                Errno::EAGAIN if !nonblock => self.wait(libc::POLLIN, deadline)?,
                e => return Err(e),
            }
        }
    }

    /// poll(2) readiness of the host socket.
    pub fn poll(&self) -> i16 {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n < 0 {
            libc::POLLERR
        } else {
            p.revents
        }
    }

    /// shutdown(2) of the host socket.
    pub fn shutdown(&self, how: i32) -> KResult<()> {
        // SAFETY: shutdown(2) on a socket we own.
        if unsafe { libc::shutdown(self.fd.as_raw_fd(), how) } != 0 {
            return Err(Errno::last_host());
        }
        Ok(())
    }
}
