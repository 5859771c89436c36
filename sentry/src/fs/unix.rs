//! Sockets, all inside the sentry. AF_UNIX: stream, datagram and seqpacket
//! sockets, named by a path (a socket inode in the VFS) or in the abstract
//! namespace, with SCM_RIGHTS and SCM_CREDENTIALS; follows Linux's
//! net/unix/af_unix.c in its states, shutdown bits and errors.
//!
//! The same machinery (message queues, connect/accept, shutdown, poll)
//! carries AF_INET/AF_INET6 on loopback: a TCP connection is a pair of
//! stream sockets, a UDP socket a datagram socket; fs/inet.rs adds
//! addresses, ports and UDP delivery.

use super::inet::{InetAddr, InetState};
use crate::abi::*;
use crate::signals::{self, WaitOutcome};
use crate::vfs::file::File;
use crate::vfs::lock;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub const AF_UNIX: i32 = 1;
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_SEQPACKET: i32 = 5;

/// net.core.wmem_default / rmem_default.
pub const DEFAULT_BUF: usize = 212_992;
/// net.core.wmem_max: the most SO_SNDBUF/SO_RCVBUF may ask for.
pub const MAX_BUF: usize = 212_992;
/// net.unix.max_dgram_qlen.
const MAX_DGRAM_QLEN: usize = 512;
/// net.core.somaxconn.
pub const SOMAXCONN: usize = 4096;
/// sk_shutdown bits.
pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
const SHUTDOWN_MASK: u8 = 3;

/// Files passed with SCM_RIGHTS.
pub type Rights = Vec<Arc<File>>;

/// A socket's name.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Addr {
    /// Bound to a path (as given to bind).
    Path(Vec<u8>),
    /// In the abstract namespace (the name without its leading NUL).
    Abstract(Vec<u8>),
    /// An IP address and port (AF_INET/AF_INET6).
    Inet(InetAddr),
}

impl Addr {
    /// The sockaddr that getsockname/getpeername/recvfrom return to a
    /// socket of `family` (an IPv4 address is a v4-mapped one to AF_INET6).
    pub fn encode(&self, family: i32) -> Vec<u8> {
        let mut v = (AF_UNIX as u16).to_le_bytes().to_vec();
        match self {
            Addr::Path(p) => {
                v.extend_from_slice(p);
                v.push(0);
            }
            Addr::Abstract(n) => {
                v.push(0);
                v.extend_from_slice(n);
            }
            Addr::Inet(a) => return a.encode(family),
        }
        v
    }
}

/// struct ucred.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// What Linux reports for a socket with no peer credentials.
pub const NO_CRED: Ucred = Ucred {
    pid: 0,
    uid: 65534,
    gid: 65534,
};

pub(super) struct Msg {
    pub(super) data: Vec<u8>,
    /// Bytes already read (stream sockets read messages piecewise).
    pub(super) off: usize,
    pub(super) rights: Option<Rights>,
    pub(super) cred: Ucred,
    pub(super) from: Option<Addr>,
}

impl Msg {
    fn left(&self) -> usize {
        self.data.len() - self.off
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) addr: Option<Addr>,
    pub(super) listening: bool,
    pub(super) backlog: usize,
    /// Server ends of connections not yet accepted.
    pub(super) pending: VecDeque<Arc<Socket>>,
    /// Stream/seqpacket: the other end; datagram: the default destination.
    pub(super) peer: Option<Arc<Socket>>,
    /// Stream/seqpacket: a connection was established.
    pub(super) connected: bool,
    pub(super) rx: VecDeque<Msg>,
    pub(super) rx_bytes: usize,
    pub(super) shutdown: u8,
    /// Pending SO_ERROR.
    pub(super) err: i32,
    pub(super) passcred: bool,
    pub(super) peercred: Option<Ucred>,
    pub(super) closed: bool,
    pub(super) sndbuf: usize,
    pub(super) rcvbuf: usize,
    pub(super) rcvtimeo: Option<Duration>,
    pub(super) sndtimeo: Option<Duration>,
    /// Options set by setsockopt and read back by getsockopt.
    pub(super) opts: HashMap<(i32, i32), i32>,
    /// SO_LINGER: l_onoff, l_linger.
    pub(super) linger: [i32; 2],
    /// AF_INET/AF_INET6 only.
    pub(super) inet: InetState,
}

pub struct Socket {
    /// AF_UNIX, AF_INET or AF_INET6.
    pub family: i32,
    pub ty: i32,
    pub ino: u64,
    /// Credentials of the creator (given to peers as SO_PEERCRED).
    pub(super) cred: Ucred,
    st: Mutex<State>,
    pub(super) cv: Condvar,
    /// Set when connected to a host socket (`fs/hostsock.rs`): every
    /// transfer then goes through it.
    host: OnceLock<super::hostsock::HostConn>,
}

impl signals::Wakeable for Socket {
    fn wake_all(&self) {
        let _g = lock(&self.st);
        self.cv.notify_all();
    }
}

type Names = HashMap<(i32, Vec<u8>), std::sync::Weak<Socket>>;

/// The abstract namespace (one per sandbox: one sentry serves one). As in
/// Linux, names are looked up per socket type.
fn abstract_names() -> &'static Mutex<Names> {
    static NAMES: OnceLock<Mutex<Names>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// What one receive returned.
pub struct Received {
    pub data: Vec<u8>,
    /// The whole message's length (datagram/seqpacket; MSG_TRUNC).
    pub full_len: usize,
    pub truncated: bool,
    pub rights: Option<Rights>,
    pub cred: Option<Ucred>,
    pub from: Option<Addr>,
}

fn notify_pollers() {
    crate::syscalls::poll::hub().notify();
}

fn deadline(t: Option<Duration>) -> Option<Instant> {
    t.map(|d| Instant::now() + d)
}

/// Block on `sock`'s condition variable with `g` held: EAGAIN when
/// non-blocking or at the timeout, ERESTARTSYS when a signal comes.
fn block<'a>(
    sock: &Arc<Socket>,
    g: MutexGuard<'a, State>,
    nonblock: bool,
    timeout: Option<Instant>,
) -> KResult<MutexGuard<'a, State>> {
    if nonblock {
        return Err(Errno::EAGAIN);
    }
    let (g, out) = signals::wait(sock.clone(), &sock.cv, g, timeout);
    match out {
        WaitOutcome::Interrupted => Err(Errno::ERESTARTSYS),
        WaitOutcome::TimedOut => Err(Errno::EAGAIN),
        WaitOutcome::Woken => Ok(g),
    }
}

impl Socket {
    pub fn new(family: i32, ty: i32, cred: Ucred) -> Arc<Socket> {
        let tcp = family != AF_UNIX && ty == SOCK_STREAM;
        let (sndbuf, rcvbuf) = if tcp {
            (super::inet::TCP_WMEM, super::inet::TCP_RMEM)
        } else {
            (DEFAULT_BUF, DEFAULT_BUF)
        };
        Arc::new(Socket {
            family,
            ty,
            ino: crate::vfs::new_ino(),
            cred,
            st: Mutex::new(State {
                sndbuf,
                rcvbuf,
                ..Default::default()
            }),
            cv: Condvar::new(),
            host: OnceLock::new(),
        })
    }

    /// connect(2) to a host socket: from now on this socket is `conn`'s
    /// sandbox end.
    pub fn attach_host(&self, conn: super::hostsock::HostConn) -> KResult<()> {
        let mut s = self.state();
        if s.listening {
            return Err(Errno::EINVAL);
        }
        if s.connected || self.host.get().is_some() {
            return Err(Errno::EISCONN);
        }
        self.host.set(conn).map_err(|_| Errno::EISCONN)?;
        s.connected = true;
        Ok(())
    }

    /// The wait limit of a send (`true`) or receive on this socket.
    fn timeout_of(&self, send: bool) -> Option<Instant> {
        let (r, w) = self.timeouts();
        deadline(if send { w } else { r })
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.st)
    }

    fn connection_oriented(&self) -> bool {
        self.ty != SOCK_DGRAM
    }

    /// How much a connection may have queued at its peer: SO_SNDBUF, or
    /// for TCP (unless SO_SNDBUF/SO_RCVBUF were set) what Linux's buffer
    /// autotuning reaches on loopback.
    fn send_capacity(&self, s: &State) -> usize {
        if self.family != AF_UNIX && !s.inet.bufs_set {
            super::inet::TCP_AUTOTUNED
        } else {
            s.sndbuf
        }
    }

    /// socketpair(2): two connected sockets.
    pub fn pair(ty: i32, cred: Ucred) -> (Arc<Socket>, Arc<Socket>) {
        let a = Socket::new(AF_UNIX, ty, cred);
        let b = Socket::new(AF_UNIX, ty, cred);
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut s = x.state();
            s.peer = Some(y.clone());
            s.connected = x.ty != SOCK_DGRAM;
            s.peercred = Some(cred);
        }
        (a, b)
    }

    pub fn name(&self) -> Option<Addr> {
        self.state().addr.clone()
    }

    pub fn peer_name(&self) -> KResult<Option<Addr>> {
        if let Some(h) = self.host.get() {
            return Ok(Some(Addr::Path(h.path.clone())));
        }
        if self.is_udp() {
            let s = self.state();
            return s
                .inet
                .peer
                .map(|a| Some(Addr::Inet(a)))
                .ok_or(Errno::ENOTCONN);
        }
        let p = self.state().peer.clone().ok_or(Errno::ENOTCONN)?;
        let a = p.name();
        Ok(a)
    }

    pub fn is_bound(&self) -> bool {
        self.state().addr.is_some()
    }

    /// Record the name after the caller made it (path inode or abstract
    /// entry). EINVAL if already bound.
    pub fn set_name(&self, addr: Addr) -> KResult<()> {
        let mut s = self.state();
        if s.addr.is_some() {
            return Err(Errno::EINVAL);
        }
        s.addr = Some(addr);
        Ok(())
    }

    /// bind(2) into the abstract namespace.
    pub fn bind_abstract(self: &Arc<Self>, name: Vec<u8>) -> KResult<()> {
        if self.is_bound() {
            return Err(Errno::EINVAL);
        }
        let mut names = lock(abstract_names());
        let key = (self.ty, name);
        if names.get(&key).and_then(|w| w.upgrade()).is_some() {
            return Err(Errno::EADDRINUSE);
        }
        self.set_name(Addr::Abstract(key.1.clone()))?;
        names.insert(key, Arc::downgrade(self));
        Ok(())
    }

    /// Autobind: a free abstract name of five hex digits.
    pub fn autobind(self: &Arc<Self>) -> KResult<()> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        if self.is_bound() {
            return Ok(());
        }
        for _ in 0..0x100000 {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xfffff;
            match self.bind_abstract(format!("{n:05x}").into_bytes()) {
                Err(Errno::EADDRINUSE) => continue,
                r => return r,
            }
        }
        Err(Errno::ENOSPC)
    }

    /// The live socket of a type bound to an abstract name.
    pub fn find_abstract(ty: i32, name: &[u8]) -> KResult<Arc<Socket>> {
        lock(abstract_names())
            .get(&(ty, name.to_vec()))
            .and_then(|w| w.upgrade())
            .ok_or(Errno::ECONNREFUSED)
    }

    /// listen(2).
    pub fn listen(&self, backlog: i32) -> KResult<()> {
        if !self.connection_oriented() {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.state();
        if s.connected || s.addr.is_none() {
            return Err(Errno::EINVAL);
        }
        s.listening = true;
        s.backlog = (backlog.max(0) as usize).min(SOMAXCONN);
        if backlog < 0 {
            s.backlog = SOMAXCONN;
        }
        if self.family == AF_UNIX {
            s.peercred = Some(self.cred);
        }
        self.cv.notify_all();
        Ok(())
    }

    /// connect(2) of a stream or seqpacket socket to a listener; returns
    /// the server end, named `local` (the address connected to) or else
    /// by the listener's name.
    pub fn connect_stream(
        self: &Arc<Self>,
        listener: &Arc<Socket>,
        cred: Ucred,
        nonblock: bool,
        local: Option<Addr>,
    ) -> KResult<Arc<Socket>> {
        {
            let s = self.state();
            if s.listening {
                return Err(Errno::EINVAL);
            }
            if s.connected {
                return Err(Errno::EISCONN);
            }
        }
        if listener.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        if Arc::ptr_eq(self, listener) {
            return Err(Errno::ECONNREFUSED);
        }
        let server = Socket::new(listener.family, self.ty, listener.cred);
        let unix = self.family == AF_UNIX;
        let timeout = deadline(self.state().sndtimeo);
        let mut l = listener.state();
        loop {
            if !l.listening || l.closed {
                return Err(Errno::ECONNREFUSED);
            }
            if l.pending.len() <= l.backlog {
                break;
            }
            l = block(listener, l, nonblock, timeout)?;
        }
        {
            let mut s = server.state();
            s.addr = local.or_else(|| l.addr.clone());
            s.peer = Some(self.clone());
            s.connected = true;
            s.peercred = unix.then_some(cred);
            s.passcred = l.passcred;
            if !unix {
                // A TCP child inherits the listener's options.
                s.opts = l.opts.clone();
                s.linger = l.linger;
            }
        }
        let listener_cred = l.peercred.unwrap_or(listener.cred);
        l.pending.push_back(server.clone());
        listener.cv.notify_all();
        drop(l);
        let mut s = self.state();
        s.peer = Some(server.clone());
        s.connected = true;
        s.peercred = unix.then_some(listener_cred);
        drop(s);
        notify_pollers();
        Ok(server)
    }

    /// connect(2) of a datagram socket: its default destination
    /// (None: AF_UNSPEC, disconnect).
    pub fn connect_dgram(self: &Arc<Self>, target: Option<Arc<Socket>>) -> KResult<()> {
        if let Some(tg) = &target {
            if tg.ty != self.ty {
                return Err(Errno::EPROTOTYPE);
            }
            let ts = tg.state();
            if ts.closed {
                return Err(Errno::ECONNREFUSED);
            }
            if let Some(p) = &ts.peer {
                if !Arc::ptr_eq(p, self) {
                    return Err(Errno::EPERM);
                }
            }
        }
        self.state().peer = target;
        notify_pollers();
        Ok(())
    }

    /// accept(2): the next connection's server end.
    pub fn accept(self: &Arc<Self>, nonblock: bool) -> KResult<Arc<Socket>> {
        if !self.connection_oriented() {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.state();
        let timeout = deadline(s.rcvtimeo);
        loop {
            if !s.listening {
                return Err(Errno::EINVAL);
            }
            if let Some(c) = s.pending.pop_front() {
                self.cv.notify_all();
                drop(s);
                notify_pollers();
                return Ok(c);
            }
            s = block(self, s, nonblock, timeout)?;
        }
    }

    /// shutdown(2); on a connection the peer sees the mirror image.
    pub fn shutdown(&self, how: i32) -> KResult<()> {
        let mode = match how {
            0 => RCV_SHUTDOWN,
            1 => SEND_SHUTDOWN,
            2 => SHUTDOWN_MASK,
            _ => return Err(Errno::EINVAL),
        };
        if let Some(h) = self.host.get() {
            h.shutdown(how)?;
            self.state().shutdown |= mode;
            notify_pollers();
            return Ok(());
        }
        let peer = {
            let mut s = self.state();
            s.shutdown |= mode;
            self.cv.notify_all();
            if self.connection_oriented() {
                s.peer.clone()
            } else {
                None
            }
        };
        if let Some(p) = peer {
            let mut mirror = 0;
            // TCP sends nothing for SHUT_RD.
            if mode & RCV_SHUTDOWN != 0 && self.family == AF_UNIX {
                mirror |= SEND_SHUTDOWN;
            }
            if mode & SEND_SHUTDOWN != 0 {
                mirror |= RCV_SHUTDOWN;
            }
            let mut ps = p.state();
            ps.shutdown |= mirror;
            p.cv.notify_all();
        }
        notify_pollers();
        Ok(())
    }

    /// The last file of this socket was closed.
    pub fn release(&self) {
        self.release_as(false);
    }

    /// Close; an `embryo` is a connection nobody accepted, whose client
    /// sees a reset.
    fn release_as(&self, embryo: bool) {
        let (peer, pending, rx, addr, unread) = {
            let mut s = self.state();
            s.closed = true;
            s.listening = false;
            let rx = std::mem::take(&mut s.rx);
            s.rx_bytes = 0;
            let unread = !rx.is_empty();
            self.cv.notify_all();
            (
                s.peer.take(),
                std::mem::take(&mut s.pending),
                rx,
                s.addr.clone(),
                unread,
            )
        };
        if let (Some(p), true) = (&peer, self.connection_oriented()) {
            let mut ps = p.state();
            let reset = unread || embryo;
            // A TCP peer sees a FIN (end of its input) unless reset.
            if self.family == AF_UNIX || reset {
                ps.shutdown = SHUTDOWN_MASK;
            } else {
                ps.shutdown |= RCV_SHUTDOWN;
            }
            if reset {
                ps.err = libc::ECONNRESET;
            }
            p.cv.notify_all();
        }
        // Connections nobody accepted: their clients see a reset.
        for c in pending {
            c.release_as(true);
        }
        match addr {
            Some(Addr::Abstract(n)) => {
                let mut names = lock(abstract_names());
                let key = (self.ty, n);
                if names
                    .get(&key)
                    .is_some_and(|w| std::ptr::eq(w.as_ptr(), self as *const Socket))
                {
                    names.remove(&key);
                }
            }
            Some(Addr::Inet(_)) => self.unbind_port(),
            _ => {}
        }
        // Files in flight close here, outside every socket lock.
        drop(rx);
        drop(peer);
        notify_pollers();
    }

    /// The socket a datagram goes to, or the connection's peer.
    fn peer(&self) -> Option<Arc<Socket>> {
        self.state().peer.clone()
    }

    /// send on a connection (stream or seqpacket). Stream data larger than
    /// the buffer goes in pieces as room appears; a seqpacket record is
    /// atomic.
    pub fn send_conn(
        self: &Arc<Self>,
        data: &[u8],
        mut rights: Option<Rights>,
        cred: Ucred,
        nonblock: bool,
    ) -> KResult<usize> {
        if let Some(h) = self.host.get() {
            if rights.is_some() {
                return Err(Errno::EOPNOTSUPP);
            }
            let stream = self.ty == SOCK_STREAM;
            return h.send(data, stream, nonblock, self.timeout_of(true));
        }
        let (peer, sndbuf, timeout) = {
            let s = self.state();
            if s.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            if !s.connected {
                // TCP: sk_stream_wait_connect's EPIPE.
                return Err(if self.family == AF_UNIX {
                    Errno::ENOTCONN
                } else {
                    Errno::EPIPE
                });
            }
            let p = s.peer.clone().ok_or(Errno::EPIPE)?;
            if data.is_empty() && self.family != AF_UNIX {
                return Ok(0);
            }
            (p, self.send_capacity(&s), deadline(s.sndtimeo))
        };
        let record = self.ty == SOCK_SEQPACKET;
        if record && data.len() > sndbuf.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        let mut done = 0;
        let mut ps = peer.state();
        loop {
            if ps.closed && done == 0 && self.family != AF_UNIX {
                // TCP: the peer is gone, but this end only saw its FIN. The
                // data goes out and draws a reset: this write succeeds,
                // the next fails with EPIPE.
                drop(ps);
                self.state().shutdown = SHUTDOWN_MASK;
                notify_pollers();
                return Ok(data.len());
            }
            let peer_stopped_reading = self.family == AF_UNIX && ps.shutdown & RCV_SHUTDOWN != 0;
            if ps.closed || peer_stopped_reading {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EPIPE)
                };
            }
            let room = sndbuf.saturating_sub(ps.rx_bytes);
            let need = if record { data.len().max(1) } else { 1 };
            if room < need {
                if nonblock {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EAGAIN)
                    };
                }
                let (g, out) = signals::wait(peer.clone(), &peer.cv, ps, timeout);
                ps = g;
                match out {
                    WaitOutcome::Interrupted if done == 0 => return Err(Errno::ERESTARTSYS),
                    WaitOutcome::TimedOut if done == 0 => return Err(Errno::EAGAIN),
                    WaitOutcome::Interrupted | WaitOutcome::TimedOut => return Ok(done),
                    _ => {}
                }
                continue;
            }
            let n = room.min(data.len() - done);
            ps.rx.push_back(Msg {
                data: data[done..done + n].to_vec(),
                off: 0,
                rights: rights.take(),
                cred,
                from: None,
            });
            ps.rx_bytes += n;
            done += n;
            peer.cv.notify_all();
            if done >= data.len() {
                break;
            }
        }
        drop(ps);
        notify_pollers();
        Ok(done)
    }

    /// sendto/sendmsg of a datagram, to `to` or the connected peer.
    pub fn send_dgram(
        self: &Arc<Self>,
        to: Option<Arc<Socket>>,
        data: &[u8],
        rights: Option<Rights>,
        cred: Ucred,
        nonblock: bool,
    ) -> KResult<usize> {
        if let Some(h) = self.host.get() {
            if to.is_some() {
                return Err(Errno::EISCONN);
            }
            if rights.is_some() {
                return Err(Errno::EOPNOTSUPP);
            }
            return h.send(data, false, nonblock, self.timeout_of(true));
        }
        let (target, from, sndbuf, timeout) = {
            let mut s = self.state();
            if s.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            let target = match to {
                Some(t) => t,
                None => s.peer.clone().ok_or(Errno::ENOTCONN)?,
            };
            // A connected peer that died: refuse once and disconnect.
            if lock(&target.st).closed {
                if s.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, &target)) {
                    s.peer = None;
                }
                return Err(Errno::ECONNREFUSED);
            }
            (target, s.addr.clone(), s.sndbuf, deadline(s.sndtimeo))
        };
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        if data.len() > sndbuf.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        let mut ts = target.state();
        loop {
            if ts.closed {
                return Err(Errno::ECONNREFUSED);
            }
            let back_to_us = ts.peer.as_ref().map(|p| Arc::ptr_eq(p, self));
            if back_to_us == Some(false) {
                return Err(Errno::EPERM);
            }
            if ts.shutdown & RCV_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            let full = (back_to_us.is_none() && ts.rx.len() >= MAX_DGRAM_QLEN)
                || (ts.rx_bytes > 0 && ts.rx_bytes + data.len() > ts.rcvbuf.max(sndbuf));
            if !full {
                break;
            }
            ts = block(&target, ts, nonblock, timeout)?;
        }
        ts.rx.push_back(Msg {
            data: data.to_vec(),
            off: 0,
            rights,
            cred,
            from,
        });
        ts.rx_bytes += data.len();
        target.cv.notify_all();
        drop(ts);
        notify_pollers();
        Ok(data.len())
    }

    /// A receive on an unconnected or listening connection socket.
    fn not_connected_error(&self) -> Errno {
        if self.ty == SOCK_STREAM && self.family == AF_UNIX {
            Errno::EINVAL
        } else {
            Errno::ENOTCONN
        }
    }

    /// Wait until a message is queued; Ok(false) at end of stream.
    fn wait_readable<'a>(
        self: &'a Arc<Self>,
        mut s: MutexGuard<'a, State>,
        nonblock: bool,
    ) -> KResult<(MutexGuard<'a, State>, bool)> {
        let timeout = deadline(s.rcvtimeo);
        loop {
            if s.listening {
                return Err(self.not_connected_error());
            }
            if s.err != 0 && s.rx.is_empty() {
                let e = std::mem::take(&mut s.err);
                return Err(Errno(e));
            }
            if !s.rx.is_empty() {
                return Ok((s, true));
            }
            if self.connection_oriented() && !s.connected {
                return Err(self.not_connected_error());
            }
            if s.shutdown & RCV_SHUTDOWN != 0 {
                return Ok((s, false));
            }
            s = block(self, s, nonblock, timeout)?;
        }
    }

    /// recv on any socket type: up to `want` bytes. A stream read joins
    /// messages but ends with the first one carrying files (and, with
    /// SO_PASSCRED, where the sender changes); a datagram or record is
    /// read whole or truncated.
    pub fn recv(self: &Arc<Self>, want: usize, peek: bool, nonblock: bool) -> KResult<Received> {
        if let Some(h) = self.host.get() {
            let record = self.ty != SOCK_STREAM;
            let (data, full_len) = h.recv(want, peek, record, nonblock, self.timeout_of(false))?;
            return Ok(Received {
                truncated: full_len > data.len(),
                data,
                full_len,
                rights: None,
                cred: None,
                from: None,
            });
        }
        let s = self.state();
        let (mut s, any) = self.wait_readable(s, nonblock)?;
        let mut r = Received {
            data: Vec::new(),
            full_len: 0,
            truncated: false,
            rights: None,
            cred: None,
            from: None,
        };
        if !any {
            return Ok(r);
        }
        let passcred = s.passcred;
        if self.ty != SOCK_STREAM {
            let Some(m) = s.rx.front_mut() else {
                return Ok(r);
            };
            let n = want.min(m.data.len());
            r.data = m.data[..n].to_vec();
            r.full_len = m.data.len();
            r.truncated = n < m.data.len();
            r.cred = Some(m.cred);
            r.from = m.from.clone();
            r.rights = if peek {
                m.rights.clone()
            } else {
                m.rights.take()
            };
            if !peek {
                let len = m.data.len();
                s.rx.pop_front();
                s.rx_bytes -= len;
            }
        } else {
            let mut consumed = 0;
            let mut used_msgs = 0;
            for m in s.rx.iter_mut() {
                if r.data.len() >= want {
                    break;
                }
                // Writers are never glued together under SO_PASSCRED.
                if !r.data.is_empty() && passcred && r.cred != Some(m.cred) {
                    break;
                }
                r.cred = Some(m.cred);
                let take = (want - r.data.len()).min(m.left());
                r.data.extend_from_slice(&m.data[m.off..m.off + take]);
                let got_rights = m.rights.is_some();
                if got_rights {
                    r.rights = if peek {
                        m.rights.clone()
                    } else {
                        m.rights.take()
                    };
                }
                if !peek {
                    m.off += take;
                    consumed += take;
                    if m.left() == 0 {
                        used_msgs += 1;
                    }
                }
                if got_rights {
                    break;
                }
            }
            s.rx.drain(..used_msgs);
            s.rx_bytes -= consumed;
            r.full_len = r.data.len();
        }
        if !peek {
            self.cv.notify_all();
            drop(s);
            notify_pollers();
        }
        Ok(r)
    }

    /// Bytes readable now: all of a stream's, the next record's length.
    pub fn inq(&self) -> KResult<usize> {
        if self.host.get().is_some() {
            // The host's queue length would take an ioctl the sentry may
            // not make.
            return Err(Errno::EOPNOTSUPP);
        }
        let s = self.state();
        if s.listening {
            return Err(Errno::EINVAL);
        }
        Ok(if self.ty == SOCK_STREAM {
            s.rx_bytes
        } else {
            s.rx.front().map_or(0, |m| m.data.len())
        })
    }

    /// Bytes sent and not yet read by the peer (TCP: not yet acknowledged,
    /// which on loopback is none once queued at the peer).
    pub fn outq(&self) -> usize {
        if self.family != AF_UNIX {
            return 0;
        }
        self.peer().map_or(0, |p| p.state().rx_bytes)
    }

    /// poll(2) readiness, as unix_poll/unix_dgram_poll compute it.
    pub fn poll(&self) -> i16 {
        use crate::syscalls::poll::*;
        if let Some(h) = self.host.get() {
            return h.poll();
        }
        let (mut v, peer, sndbuf) = {
            let s = self.state();
            let mut v = 0;
            if s.err != 0 {
                v |= POLLERR;
            }
            if s.shutdown == SHUTDOWN_MASK {
                v |= POLLHUP;
            }
            if s.shutdown & RCV_SHUTDOWN != 0 {
                v |= POLLRDHUP | POLLIN | POLLRDNORM;
            }
            if !s.rx.is_empty() || !s.pending.is_empty() {
                v |= POLLIN | POLLRDNORM;
            }
            if self.connection_oriented() && !s.connected && !s.listening {
                v |= POLLHUP;
            }
            if s.listening {
                return v;
            }
            (v, s.peer.clone(), self.send_capacity(&s))
        };
        let writable = match &peer {
            None => true,
            Some(p) => {
                let ps = p.state();
                if self.connection_oriented() {
                    ps.rx_bytes.saturating_mul(4) <= sndbuf || ps.closed
                } else {
                    let back = ps.peer.as_ref().is_some_and(|x| std::ptr::eq(&**x, self));
                    ps.closed || back || ps.rx.len() < MAX_DGRAM_QLEN
                }
            }
        };
        if writable {
            v |= POLLOUT | POLLWRNORM;
        }
        v
    }

    /// An option setsockopt stored (None: never set).
    pub fn opt(&self, level: i32, name: i32) -> Option<i32> {
        self.state().opts.get(&(level, name)).copied()
    }

    pub fn set_opt(&self, level: i32, name: i32, value: Option<i32>) {
        let mut s = self.state();
        match value {
            Some(v) => s.opts.insert((level, name), v),
            None => s.opts.remove(&(level, name)),
        };
    }

    pub fn linger(&self) -> [i32; 2] {
        self.state().linger
    }

    pub fn set_linger(&self, v: [i32; 2]) {
        self.state().linger = v;
    }

    /// A connection is established (or a UDP socket has a peer).
    pub fn connected(&self) -> bool {
        let s = self.state();
        s.connected || s.inet.peer.is_some()
    }

    pub fn set_passcred(&self, on: bool) {
        self.state().passcred = on;
    }

    pub fn passcred(&self) -> bool {
        self.state().passcred
    }

    pub fn peercred(&self) -> Ucred {
        self.state().peercred.unwrap_or(NO_CRED)
    }

    /// SO_ERROR: read and clear.
    pub fn take_error(&self) -> i32 {
        std::mem::take(&mut self.state().err)
    }

    pub fn listening(&self) -> bool {
        self.state().listening
    }

    pub fn bufsizes(&self) -> (usize, usize) {
        let s = self.state();
        (s.sndbuf, s.rcvbuf)
    }

    /// SO_SNDBUF/SO_RCVBUF: Linux doubles the value and clamps it.
    pub fn set_bufsize(&self, send: bool, v: i32) {
        let (min, val) = if send { (4608, v) } else { (2304, v) };
        let size = ((val.max(0) as usize).min(MAX_BUF) * 2).max(min);
        let mut s = self.state();
        s.inet.bufs_set = true;
        if send {
            s.sndbuf = size;
        } else {
            s.rcvbuf = size;
        }
        drop(s);
        notify_pollers();
    }

    pub fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        let s = self.state();
        (s.rcvtimeo, s.sndtimeo)
    }

    pub fn set_timeout(&self, recv: bool, d: Option<Duration>) {
        let mut s = self.state();
        if recv {
            s.rcvtimeo = d;
        } else {
            s.sndtimeo = d;
        }
    }
}

impl Socket {
    /// The sender's credentials for a plain write(2): the writing thread's
    /// process, the ids the socket was made with.
    fn writer_cred(&self) -> Ucred {
        Ucred {
            pid: signals::current().map_or(self.cred.pid, |th| th.tgid),
            ..self.cred
        }
    }

    /// write(2) on a socket: a send without flags, to the peer.
    pub fn write(self: &Arc<Self>, data: &[u8], nonblock: bool) -> KResult<usize> {
        let cred = self.writer_cred();
        if self.connection_oriented() {
            self.send_conn(data, None, cred, nonblock)
        } else if self.is_udp() {
            self.send_udp(None, data)
        } else {
            self.send_dgram(None, data, None, cred, nonblock)
        }
    }

    /// read(2) on a socket: a recv without flags (files sent along close).
    pub fn read(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.is_empty() && self.ty == SOCK_STREAM {
            return Ok(0);
        }
        let r = self.recv(buf.len(), false, nonblock)?;
        buf[..r.data.len()].copy_from_slice(&r.data);
        Ok(r.data.len())
    }
}
