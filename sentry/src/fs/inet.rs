//! AF_INET and AF_INET6 on the sandbox's only interface, loopback, all
//! inside the sentry (no host socket). The sockets are fs/unix.rs's: a TCP
//! connection is a pair of stream sockets joined by connect/accept, a UDP
//! socket a datagram socket. This module adds what IP changes: addresses
//! and ports (Linux's bind rules, ephemeral ports, finding the listener or
//! receiver of an address, IPv4-mapped addresses and IPV6_V6ONLY), UDP
//! delivery (a datagram nobody can take is dropped, a sender never
//! blocks), and the loopback interface as ioctls show it.

use super::unix::{Addr, Msg, Socket, SOCK_DGRAM, SOCK_STREAM};
use crate::abi::*;
use crate::vfs::lock;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;
pub const IPV6_V6ONLY: i32 = 26;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_RAW: u32 = 13;
/// net.ipv4.ip_local_port_range.
pub const EPHEMERAL: (u16, u16) = (32768, 60999);
/// net.ipv4.tcp_wmem and tcp_rmem defaults: TCP's SO_SNDBUF/SO_RCVBUF.
pub const TCP_WMEM: usize = 16384;
pub const TCP_RMEM: usize = 131_072;
/// What a TCP connection may have in flight on loopback, as Linux's
/// autotuning lets it grow (tcp_wmem max).
pub const TCP_AUTOTUNED: usize = 4 << 20;
/// net.ipv4.ip_unprivileged_port_start.
pub const PRIVILEGED_BELOW: u16 = 1024;
const SOL_SOCKET: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_REUSEPORT: i32 = 15;

/// An IP address and port. IPv4 addresses are kept v4-mapped
/// (::ffff:a.b.c.d), so one type serves both families and a v4 peer of a
/// dual-stack socket needs no conversion.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct InetAddr {
    pub ip: Ipv6Addr,
    pub port: u16,
}

impl InetAddr {
    fn v4(&self) -> Option<Ipv4Addr> {
        self.ip.to_ipv4_mapped()
    }

    fn is_any(&self) -> bool {
        self.ip.is_unspecified() || self.v4() == Some(Ipv4Addr::UNSPECIFIED)
    }

    fn is_loopback(&self) -> bool {
        match self.v4() {
            Some(a) => a.is_loopback(),
            None => self.ip.is_loopback(),
        }
    }

    /// The loopback address of this address's family.
    fn loopback(&self) -> Ipv6Addr {
        if self.v4().is_some() {
            Ipv4Addr::LOCALHOST.to_ipv6_mapped()
        } else {
            Ipv6Addr::LOCALHOST
        }
    }

    /// The wildcard address of a socket family.
    fn any(family: i32) -> InetAddr {
        let ip = if family == AF_INET {
            Ipv4Addr::UNSPECIFIED.to_ipv6_mapped()
        } else {
            Ipv6Addr::UNSPECIFIED
        };
        InetAddr { ip, port: 0 }
    }

    /// sockaddr_in (16 bytes) or sockaddr_in6 (28, flowinfo and scope 0).
    pub fn encode(&self, family: i32) -> Vec<u8> {
        let mut v = (family as u16).to_le_bytes().to_vec();
        v.extend_from_slice(&self.port.to_be_bytes());
        if family == AF_INET {
            v.extend_from_slice(&self.v4().unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
            v.extend_from_slice(&[0; 8]);
        } else {
            v.extend_from_slice(&[0; 4]);
            v.extend_from_slice(&self.ip.octets());
            v.extend_from_slice(&[0; 4]);
        }
        v
    }

    /// What getsockname shows for an unbound socket.
    pub fn unbound(family: i32) -> Vec<u8> {
        InetAddr::any(family).encode(family)
    }

    /// A sockaddr from the workload for a socket of `family`; None for
    /// AF_UNSPEC. Short: EINVAL; another family: EAFNOSUPPORT.
    pub fn decode(family: i32, raw: &[u8]) -> KResult<Option<InetAddr>> {
        if raw.len() < 2 {
            return Err(Errno::EINVAL);
        }
        let fam = u16::from_le_bytes([raw[0], raw[1]]) as i32;
        if fam == 0 {
            return Ok(None);
        }
        let (min, octets) = if family == AF_INET {
            (16, 4..8)
        } else {
            (24, 8..24)
        };
        if raw.len() < min {
            return Err(Errno::EINVAL);
        }
        if fam != family {
            return Err(Errno::EAFNOSUPPORT);
        }
        let port = u16::from_be_bytes([raw[2], raw[3]]);
        let ip = match <[u8; 4]>::try_from(&raw[octets.clone()]) {
            Ok(a) => Ipv4Addr::from(a).to_ipv6_mapped(),
            Err(_) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&raw[octets]);
                Ipv6Addr::from(a)
            }
        };
        Ok(Some(InetAddr { ip, port }))
    }
}

/// Per-socket IP state (in fs/unix.rs's State).
#[derive(Default)]
pub struct InetState {
    /// UDP: the connected peer.
    pub peer: Option<InetAddr>,
    /// TCP: a non-blocking connect returned EINPROGRESS; the next connect
    /// returns 0 (the connection is made at once on loopback).
    pub in_progress: bool,
    /// bind chose the address / the port (Linux's SOCK_BINDADDR_LOCK and
    /// SOCK_BINDPORT_LOCK): a UDP disconnect keeps them.
    pub addr_locked: bool,
    pub port_locked: bool,
    /// SO_SNDBUF or SO_RCVBUF was set: no autotuning.
    pub bufs_set: bool,
}

/// Bound sockets by (type, port).
type Ports = HashMap<(i32, u16), Vec<Weak<Socket>>>;

fn ports() -> &'static Mutex<Ports> {
    static PORTS: OnceLock<Mutex<Ports>> = OnceLock::new();
    PORTS.get_or_init(Default::default)
}

/// What decides whether a socket shares a port or receives for an address.
struct Binding {
    addr: InetAddr,
    v6only: bool,
    reuseaddr: bool,
    reuseport: bool,
    listening: bool,
    peer: Option<InetAddr>,
}

impl Binding {
    /// Would this socket take traffic to `ip`?
    fn covers(&self, ip: &InetAddr) -> bool {
        if self.addr.ip == ip.ip {
            return true;
        }
        if self.addr.ip.is_unspecified() {
            return ip.v4().is_none() || !self.v6only;
        }
        self.addr.is_any() && ip.v4().is_some()
    }

    fn overlaps(&self, other: &Binding) -> bool {
        self.covers(&other.addr) || other.covers(&self.addr)
    }

    /// May `self` take a port `other` holds (inet_csk_bind_conflict)?
    fn may_share(&self, other: &Binding) -> bool {
        (self.reuseport && other.reuseport)
            || (self.reuseaddr && other.reuseaddr && !other.listening)
            || !self.overlaps(other)
    }
}

impl Socket {
    pub fn is_inet(&self) -> bool {
        self.family == AF_INET || self.family == AF_INET6
    }

    pub fn is_udp(&self) -> bool {
        self.is_inet() && self.ty == SOCK_DGRAM
    }

    fn v6only(&self) -> bool {
        self.family == AF_INET6 && self.opt(IPPROTO_IPV6, IPV6_V6ONLY).unwrap_or(0) != 0
    }

    fn binding(&self, addr: InetAddr) -> Binding {
        let s = self.state();
        let on = |name| s.opts.get(&(SOL_SOCKET, name)).is_some_and(|v| *v != 0);
        Binding {
            addr,
            v6only: self.family == AF_INET6
                && s.opts
                    .get(&(IPPROTO_IPV6, IPV6_V6ONLY))
                    .is_some_and(|v| *v != 0),
            reuseaddr: on(SO_REUSEADDR),
            reuseport: on(SO_REUSEPORT),
            listening: s.listening,
            peer: s.inet.peer,
        }
    }

    /// The bound address, if any.
    pub fn inet_name(&self) -> Option<InetAddr> {
        match self.state().addr {
            Some(Addr::Inet(a)) => Some(a),
            _ => None,
        }
    }

    /// Check an address bind(2) may use: the wildcard or loopback.
    fn check_local(&self, addr: &InetAddr) -> KResult<()> {
        if self.family == AF_INET6 && addr.v4().is_some() && self.v6only() {
            return Err(Errno::EINVAL);
        }
        if !(addr.is_any() || addr.is_loopback()) {
            return Err(Errno(libc::EADDRNOTAVAIL));
        }
        Ok(())
    }

    /// bind(2); `privileged`: the caller may bind ports below 1024.
    pub fn bind_inet(self: &Arc<Self>, addr: InetAddr, privileged: bool) -> KResult<()> {
        self.check_local(&addr)?;
        if addr.port != 0 && addr.port < PRIVILEGED_BELOW && !privileged {
            return Err(Errno::EACCES);
        }
        self.take_port(addr)?;
        let mut s = self.state();
        s.inet.addr_locked = !addr.is_any();
        s.inet.port_locked = addr.port != 0;
        Ok(())
    }

    /// Enter the port table at `addr` (port 0: a free ephemeral port).
    fn take_port(self: &Arc<Self>, mut addr: InetAddr) -> KResult<()> {
        if self.is_bound() {
            return Err(Errno::EINVAL);
        }
        let mut table = lock(ports());
        if addr.port == 0 {
            addr.port = free_port(&table, self.ty)?;
        } else {
            let me = self.binding(addr);
            for other in live(&table, self.ty, addr.port) {
                if let Some(a) = other.inet_name() {
                    if !me.may_share(&other.binding(a)) {
                        return Err(Errno::EADDRINUSE);
                    }
                }
            }
        }
        self.set_name(Addr::Inet(addr))?;
        table
            .entry((self.ty, addr.port))
            .or_default()
            .push(Arc::downgrade(self));
        Ok(())
    }

    /// Leave the port table (close, or a UDP disconnect of an autobound
    /// socket).
    pub(super) fn unbind_port(&self) {
        let Some(addr) = self.inet_name() else {
            return;
        };
        let mut table = lock(ports());
        let key = (self.ty, addr.port);
        if let Some(v) = table.get_mut(&key) {
            v.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), self));
            if v.is_empty() {
                table.remove(&key);
            }
        }
    }

    /// listen(2): autobind, and the port must not have another listener
    /// (unless both set SO_REUSEPORT).
    pub fn listen_inet(self: &Arc<Self>, backlog: i32) -> KResult<()> {
        if self.ty != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        if !self.is_bound() {
            self.take_port(InetAddr::any(self.family))?;
        }
        let addr = self.inet_name().ok_or(Errno::EINVAL)?;
        {
            let table = lock(ports());
            let me = self.binding(addr);
            for other in live(&table, self.ty, addr.port) {
                if Arc::ptr_eq(&other, self) {
                    continue;
                }
                if let Some(a) = other.inet_name() {
                    if !me.may_share(&other.binding(a)) {
                        return Err(Errno::EADDRINUSE);
                    }
                }
            }
        }
        self.listen(backlog)
    }

    /// Where traffic to `dest` goes: the wildcard means this host;
    /// anything but loopback is unreachable.
    fn route(&self, mut dest: InetAddr) -> KResult<InetAddr> {
        if self.family == AF_INET6 && dest.v4().is_some() && self.v6only() {
            return Err(Errno(libc::ENETUNREACH));
        }
        if dest.is_any() {
            dest.ip = dest.loopback();
        }
        if !dest.is_loopback() {
            return Err(Errno(libc::ENETUNREACH));
        }
        Ok(dest)
    }

    /// Bind for sending to `dest` (an ephemeral port if unbound) and
    /// return the source address: a wildcard address becomes the loopback
    /// address `dest` is reached from, kept as the socket's name if `fix`
    /// (connect; an unconnected UDP socket stays on the wildcard).
    fn bind_for(self: &Arc<Self>, dest: &InetAddr, fix: bool) -> KResult<InetAddr> {
        if !self.is_bound() {
            self.take_port(InetAddr::any(self.family))?;
        }
        let mut s = self.state();
        let Some(Addr::Inet(mut a)) = s.addr else {
            return Err(Errno::EINVAL);
        };
        if a.is_any() {
            a.ip = dest.loopback();
            if fix {
                s.addr = Some(Addr::Inet(a));
            }
        }
        Ok(a)
    }

    /// connect(2) of a TCP socket. Returns whether it was a non-blocking
    /// connect, which reports EINPROGRESS although the connection is made.
    pub fn connect_tcp(self: &Arc<Self>, dest: InetAddr, nonblock: bool) -> KResult<bool> {
        {
            let mut s = self.state();
            if s.inet.in_progress {
                s.inet.in_progress = false;
                return Ok(false);
            }
            if s.listening {
                return Err(Errno::EINVAL);
            }
            if s.connected {
                return Err(Errno::EISCONN);
            }
        }
        let dest = self.route(dest)?;
        self.bind_for(&dest, true)?;
        let listener = find(SOCK_STREAM, &dest, None).ok_or(Errno::ECONNREFUSED)?;
        let server = self.connect_stream(
            &listener,
            super::unix::NO_CRED,
            nonblock,
            Some(Addr::Inet(dest)),
        )?;
        // The accepted end holds the port too, as in Linux.
        lock(ports())
            .entry((SOCK_STREAM, dest.port))
            .or_default()
            .push(Arc::downgrade(&server));
        if nonblock {
            self.state().inet.in_progress = true;
        }
        Ok(nonblock)
    }

    /// connect(2) of a UDP socket: its default destination and the only
    /// source it receives from; None (AF_UNSPEC) disconnects.
    pub fn connect_udp(self: &Arc<Self>, dest: Option<InetAddr>) -> KResult<()> {
        let Some(dest) = dest else {
            let (unbind, reset) = {
                let mut s = self.state();
                s.inet.peer = None;
                (!s.inet.port_locked, !s.inet.addr_locked)
            };
            if unbind {
                self.unbind_port();
                self.state().addr = None;
            } else if reset {
                let mut s = self.state();
                if let Some(Addr::Inet(a)) = &mut s.addr {
                    a.ip = InetAddr::any(self.family).ip;
                }
            }
            return Ok(());
        };
        let dest = self.route(dest)?;
        self.bind_for(&dest, true)?;
        let mut s = self.state();
        s.inet.peer = Some(dest);
        s.err = 0;
        Ok(())
    }

    /// A UDP send: to `to` or the connected peer. The datagram is dropped
    /// if no socket takes it (a connected sender then gets ECONNREFUSED,
    /// as from an ICMP port unreachable) or the receiver's buffer is full.
    pub fn send_udp(self: &Arc<Self>, to: Option<InetAddr>, data: &[u8]) -> KResult<usize> {
        let (dest, connected) = {
            let mut s = self.state();
            if s.shutdown & super::unix::SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            if s.err != 0 {
                return Err(Errno(std::mem::take(&mut s.err)));
            }
            let dest = to.or(s.inet.peer).ok_or(Errno(libc::EDESTADDRREQ))?;
            (dest, s.inet.peer.is_some())
        };
        if dest.port == 0 {
            return Err(Errno::EINVAL);
        }
        let dest = self.route(dest)?;
        let max = if dest.v4().is_some() { 65507 } else { 65527 };
        if data.len() > max {
            return Err(Errno::EMSGSIZE);
        }
        let src = self.bind_for(&dest, false)?;
        match find(SOCK_DGRAM, &dest, Some(&src)) {
            Some(target) => {
                let mut ts = target.state();
                if ts.rx_bytes + data.len() <= ts.rcvbuf && !ts.closed {
                    ts.rx.push_back(Msg {
                        data: data.to_vec(),
                        off: 0,
                        rights: None,
                        cred: super::unix::NO_CRED,
                        from: Some(Addr::Inet(src)),
                    });
                    ts.rx_bytes += data.len();
                    target.cv.notify_all();
                }
            }
            None if connected => {
                self.state().err = libc::ECONNREFUSED;
                self.cv.notify_all();
            }
            None => {}
        }
        crate::syscalls::poll::hub().notify();
        Ok(data.len())
    }

    /// TCP_INFO's tcpi_state (include/net/tcp_states.h).
    pub fn tcp_state(&self) -> u8 {
        const ESTABLISHED: u8 = 1;
        const CLOSE: u8 = 7;
        const CLOSE_WAIT: u8 = 8;
        const LISTEN: u8 = 10;
        let s = self.state();
        if s.listening {
            LISTEN
        } else if !s.connected || s.closed {
            CLOSE
        } else if s.shutdown & super::unix::RCV_SHUTDOWN != 0 {
            CLOSE_WAIT
        } else {
            ESTABLISHED
        }
    }
}

/// The live sockets bound to (type, port).
fn live(table: &Ports, ty: i32, port: u16) -> Vec<Arc<Socket>> {
    table
        .get(&(ty, port))
        .map(|v| v.iter().filter_map(Weak::upgrade).collect())
        .unwrap_or_default()
}

/// A port of the ephemeral range nobody holds, starting from a rotating
/// offset as Linux's search does.
fn free_port(table: &Ports, ty: i32) -> KResult<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (lo, hi) = EPHEMERAL;
    let span = (hi - lo) as u32 + 1;
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() | 1);
        NEXT.store(seed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = lo + n as u16;
        if live(table, ty, port).is_empty() {
            return Ok(port);
        }
    }
    Err(Errno(libc::EADDRNOTAVAIL))
}

/// The socket that takes traffic to `dest`: a TCP listener, or a UDP
/// socket (one connected to `src` first, then an exact address before a
/// wildcard, as Linux scores them).
fn find(ty: i32, dest: &InetAddr, src: Option<&InetAddr>) -> Option<Arc<Socket>> {
    let table = lock(ports());
    let mut best: Option<(u8, Arc<Socket>)> = None;
    for sock in live(&table, ty, dest.port) {
        let Some(a) = sock.inet_name() else {
            continue;
        };
        let b = sock.binding(a);
        if !b.covers(dest) || (ty == SOCK_STREAM && !b.listening) {
            continue;
        }
        if b.peer.is_some() && b.peer.as_ref() != src {
            continue;
        }
        let score = 2 * u8::from(b.peer.is_some()) + u8::from(a.ip == dest.ip);
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, sock));
        }
    }
    best.map(|(_, s)| s)
}

/// /proc/net's socket tables.
pub fn is_socket_table(name: &str) -> bool {
    matches!(name, "tcp" | "tcp6" | "udp" | "udp6")
}

/// The rows of /proc/net/`name` (tcp, tcp6, udp, udp6): one per bound
/// socket of that protocol and family, as Linux prints them (addresses
/// in hex of their memory order; queues, timers and the owner's uid).
pub fn socket_table(name: &str) -> String {
    let (ty, family) = match name {
        "tcp" => (SOCK_STREAM, AF_INET),
        "tcp6" => (SOCK_STREAM, AF_INET6),
        "udp" => (SOCK_DGRAM, AF_INET),
        _ => (SOCK_DGRAM, AF_INET6),
    };
    let hex = |a: &InetAddr| -> String {
        let words: Vec<u32> = match (family, a.v4()) {
            (AF_INET, v4) => vec![u32::from_ne_bytes(
                v4.unwrap_or(Ipv4Addr::UNSPECIFIED).octets(),
            )],
            _ => {
                a.ip.octets()
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            }
        };
        let ip: String = words.iter().map(|w| format!("{w:08X}")).collect();
        format!("{ip}:{:04X}", a.port)
    };
    let mut socks: Vec<Arc<Socket>> = {
        let table = lock(ports());
        let mut keys: Vec<_> = table.keys().filter(|k| k.0 == ty).copied().collect();
        keys.sort();
        keys.iter().flat_map(|k| live(&table, k.0, k.1)).collect()
    };
    socks.retain(|s| s.family == family);
    let mut out = String::new();
    for (i, sock) in socks.iter().enumerate() {
        let Some(local) = sock.inet_name() else {
            continue;
        };
        let (udp_peer, tcp_peer) = {
            let s = sock.state();
            (s.inet.peer, s.peer.clone())
        };
        let remote = udp_peer.or_else(|| tcp_peer.and_then(|p| p.inet_name()));
        let state = match (ty, remote) {
            (SOCK_STREAM, _) => sock.tcp_state(),
            (_, Some(_)) => 1,
            _ => 7,
        };
        let rx = sock.inq().unwrap_or(0);
        let remote = remote.unwrap_or(InetAddr::any(family));
        out.push_str(&format!(
            "{i:4}: {} {} {state:02X} 00000000:{rx:08X} 00:00000000 00000000 {:5}        0 {} 2 0000000000000000\n",
            hex(&local),
            hex(&remote),
            sock.cred.uid,
            sock.ino,
        ));
    }
    out
}

/// The loopback interface, for the SIOCGIF* ioctls (any socket).
pub mod netdev {
    use super::*;

    pub const SIOCGIFNAME: u64 = 0x8910;
    pub const SIOCGIFCONF: u64 = 0x8912;
    pub const SIOCGIFFLAGS: u64 = 0x8913;
    pub const SIOCGIFADDR: u64 = 0x8915;
    pub const SIOCGIFNETMASK: u64 = 0x891b;
    pub const SIOCGIFMTU: u64 = 0x8921;
    pub const SIOCGIFHWADDR: u64 = 0x8927;
    pub const SIOCGIFINDEX: u64 = 0x8933;
    /// sizeof(struct ifreq).
    const IFREQ: usize = 40;
    /// IFF_UP | IFF_LOOPBACK | IFF_RUNNING.
    const FLAGS: u16 = 0x49;
    const ARPHRD_LOOPBACK: u16 = 772;

    pub fn handles(req: u64) -> bool {
        matches!(
            req,
            SIOCGIFNAME
                | SIOCGIFCONF
                | SIOCGIFFLAGS
                | SIOCGIFADDR
                | SIOCGIFNETMASK
                | SIOCGIFMTU
                | SIOCGIFHWADDR
                | SIOCGIFINDEX
        )
    }

    fn sockaddr_in(ip: Ipv4Addr) -> Vec<u8> {
        InetAddr {
            ip: ip.to_ipv6_mapped(),
            port: 0,
        }
        .encode(AF_INET)
    }

    /// An ifreq for "lo" with `data` in its union.
    fn ifreq(data: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; IFREQ];
        r[..2].copy_from_slice(b"lo");
        r[16..16 + data.len()].copy_from_slice(data);
        r
    }

    /// One of the ioctls `handles`: `family` is the socket's.
    pub fn ioctl(t: &crate::kernel::task::Task, family: i32, req: u64, arg: u64) -> KResult<u64> {
        if req == SIOCGIFCONF {
            // struct ifconf { int ifc_len; char *ifc_buf; }: IPv4
            // interfaces with their addresses.
            let len: i32 = t.read_obj(arg)?;
            let buf: u64 = t.read_obj(arg + 8)?;
            let entry = ifreq(&sockaddr_in(Ipv4Addr::LOCALHOST));
            let n = if buf == 0 {
                IFREQ
            } else if len >= IFREQ as i32 {
                t.copy_out(buf, &entry)?;
                IFREQ
            } else {
                0
            };
            t.write_obj(arg, &(n as i32))?;
            return Ok(0);
        }
        let mut r = [0u8; IFREQ];
        t.copy_in(arg, &mut r)?;
        if req == SIOCGIFNAME {
            if i32::from_le_bytes([r[16], r[17], r[18], r[19]]) != 1 {
                return Err(Errno::ENODEV);
            }
            t.copy_out(arg, &ifreq(&1i32.to_le_bytes()))?;
            return Ok(0);
        }
        let name_end = r[..16].iter().position(|&b| b == 0).unwrap_or(16);
        if &r[..name_end] != b"lo" {
            return Err(Errno::ENODEV);
        }
        let data = match req {
            SIOCGIFINDEX => 1i32.to_le_bytes().to_vec(),
            SIOCGIFFLAGS => FLAGS.to_le_bytes().to_vec(),
            SIOCGIFMTU => 65536i32.to_le_bytes().to_vec(),
            SIOCGIFHWADDR => ARPHRD_LOOPBACK.to_le_bytes().to_vec(),
            SIOCGIFADDR | SIOCGIFNETMASK if family != AF_INET => return Err(Errno::EINVAL),
            SIOCGIFADDR => sockaddr_in(Ipv4Addr::LOCALHOST),
            SIOCGIFNETMASK => sockaddr_in(Ipv4Addr::new(255, 0, 0, 0)),
            _ => return Err(Errno::ENOTTY),
        };
        t.copy_out(arg, &ifreq(&data))?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str, port: u16) -> InetAddr {
        let ip = match s.parse::<Ipv4Addr>() {
            Ok(v4) => v4.to_ipv6_mapped(),
            Err(_) => s.parse().expect("test address"),
        };
        InetAddr { ip, port }
    }

    fn bound(s: &str, v6only: bool) -> Binding {
        Binding {
            addr: addr(s, 80),
            v6only,
            reuseaddr: false,
            reuseport: false,
            listening: false,
            peer: None,
        }
    }

    #[test]
    fn wildcards_cover_their_families() {
        assert!(bound("0.0.0.0", false).covers(&addr("127.0.0.1", 80)));
        assert!(!bound("0.0.0.0", false).covers(&addr("::1", 80)));
        assert!(bound("::", false).covers(&addr("127.0.0.1", 80)));
        assert!(bound("::", false).covers(&addr("::1", 80)));
        assert!(!bound("::", true).covers(&addr("127.0.0.1", 80)));
        assert!(bound("::", true).covers(&addr("::1", 80)));
        assert!(!bound("127.0.0.1", false).covers(&addr("127.0.0.2", 80)));
    }

    #[test]
    fn bind_conflicts_follow_linux() {
        let any4 = bound("0.0.0.0", false);
        assert!(!bound("127.0.0.1", false).may_share(&any4));
        assert!(!bound("::", false).may_share(&any4));
        assert!(bound("::", true).may_share(&any4));
        assert!(bound("127.0.0.2", false).may_share(&bound("127.0.0.1", false)));
        let mut a = bound("127.0.0.1", false);
        let mut b = bound("127.0.0.1", false);
        a.reuseaddr = true;
        b.reuseaddr = true;
        assert!(a.may_share(&b));
        b.listening = true;
        assert!(!a.may_share(&b));
        a.reuseport = true;
        b.reuseport = true;
        assert!(a.may_share(&b));
    }

    #[test]
    fn addresses_encode_per_family() {
        let a = addr("127.0.0.1", 0x1234);
        assert_eq!(
            a.encode(AF_INET),
            [2, 0, 0x12, 0x34, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let v6 = a.encode(AF_INET6);
        assert_eq!(v6.len(), 28);
        assert_eq!(&v6[8..24], &a.ip.octets());
        assert_eq!(InetAddr::decode(AF_INET6, &v6), Ok(Some(a)));
        assert_eq!(InetAddr::decode(AF_INET, &v6[..8]), Err(Errno::EINVAL));
        assert_eq!(InetAddr::decode(AF_INET, &v6), Err(Errno::EAFNOSUPPORT));
        assert_eq!(InetAddr::decode(AF_INET, &[0, 0]), Ok(None));
    }
}
