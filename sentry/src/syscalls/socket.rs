//! Socket system calls: AF_UNIX, and AF_INET/AF_INET6 on loopback (the
//! sandbox has no other network). The sockets themselves live in
//! fs/unix.rs, IP addressing in fs/inet.rs; no host socket is made.

use super::file::{get_file, install, install_pair, read_iovecs};
use super::Args;
use crate::abi::*;
use crate::fs::inet::{
    InetAddr, AF_INET, AF_INET6, CAP_NET_BIND_SERVICE, CAP_NET_RAW, IPPROTO_IP, IPPROTO_IPV6,
    IPPROTO_TCP, IPPROTO_UDP, IPV6_V6ONLY,
};
use crate::fs::unix::{
    Addr, Received, Rights, Socket, Ucred, AF_UNIX, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM,
};
use crate::kernel::creds::{CAP_SETGID, CAP_SETUID};
use crate::kernel::task::Task;
use crate::vfs::file::{File, FileKind};
use crate::vfs::path::Walker;
use std::sync::Arc;
use std::time::Duration;

const AF_UNSPEC: u16 = 0;
const SOCK_RAW: i32 = 3;
const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o2000000;
const SOCK_TYPE_MASK: i32 = 0xf;
/// sizeof(struct sockaddr_un).
const SUN_LEN_MAX: usize = 110;

const MSG_OOB: i32 = 1;
const MSG_PEEK: i32 = 2;
const MSG_CTRUNC: u32 = 8;
const MSG_TRUNC: i32 = 0x20;
const MSG_DONTWAIT: i32 = 0x40;
const MSG_EOR: i32 = 0x80;
const MSG_WAITALL: i32 = 0x100;
const MSG_NOSIGNAL: i32 = 0x4000;
const MSG_CMSG_CLOEXEC: i32 = 0x4000_0000;

const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// SCM_MAX_FD: most fds in one SCM_RIGHTS message.
const SCM_MAX_FD: usize = 253;
const CAP_SYS_ADMIN: u32 = 21;

const SO_DEBUG: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_DONTROUTE: i32 = 5;
const SO_BROADCAST: i32 = 6;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_KEEPALIVE: i32 = 9;
const SO_OOBINLINE: i32 = 10;
const SO_LINGER: i32 = 13;
const SO_REUSEPORT: i32 = 15;
const SO_PASSCRED: i32 = 16;
const SO_PEERCRED: i32 = 17;
const SO_RCVLOWAT: i32 = 18;
const SO_SNDLOWAT: i32 = 19;
const SO_RCVTIMEO: i32 = 20;
const SO_SNDTIMEO: i32 = 21;
const SO_ACCEPTCONN: i32 = 30;
const SO_SNDBUFFORCE: i32 = 32;
const SO_RCVBUFFORCE: i32 = 33;
const SO_PRIORITY: i32 = 12;
const SO_TIMESTAMP: i32 = 29;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;

const TCP_NODELAY: i32 = 1;
const TCP_MAXSEG: i32 = 2;
const TCP_CORK: i32 = 3;
const TCP_KEEPIDLE: i32 = 4;
const TCP_KEEPINTVL: i32 = 5;
const TCP_KEEPCNT: i32 = 6;
const TCP_SYNCNT: i32 = 7;
const TCP_LINGER2: i32 = 8;
const TCP_DEFER_ACCEPT: i32 = 9;
const TCP_WINDOW_CLAMP: i32 = 10;
const TCP_INFO: i32 = 11;
const TCP_QUICKACK: i32 = 12;
const TCP_CONGESTION: i32 = 13;
const TCP_USER_TIMEOUT: i32 = 18;
const TCP_FASTOPEN: i32 = 23;
const TCP_NOTSENT_LOWAT: i32 = 25;
/// sizeof(struct tcp_info) today.
const TCP_INFO_LEN: usize = 248;
const UDP_CORK: i32 = 1;

const IP_TOS: i32 = 1;
const IP_TTL: i32 = 2;
const IP_PKTINFO: i32 = 8;
const IP_MTU_DISCOVER: i32 = 10;
const IP_RECVERR: i32 = 11;
const IP_RECVTTL: i32 = 12;
const IP_RECVTOS: i32 = 13;
const IP_FREEBIND: i32 = 15;
const IP_BIND_ADDRESS_NO_PORT: i32 = 24;
const IP_MULTICAST_TTL: i32 = 33;
const IP_MULTICAST_LOOP: i32 = 34;
const IPV6_UNICAST_HOPS: i32 = 16;
const IPV6_MULTICAST_HOPS: i32 = 18;
const IPV6_MULTICAST_LOOP: i32 = 19;
const IPV6_RECVERR: i32 = 25;
const IPV6_RECVPKTINFO: i32 = 49;
const IPV6_TCLASS: i32 = 67;

fn socket_of(t: &Task, fd: i32) -> KResult<(Arc<File>, Arc<Socket>)> {
    let f = get_file(t, fd)?;
    let FileKind::Socket(s) = &f.kind else {
        return Err(Errno::ENOTSOCK);
    };
    let s = s.clone();
    Ok((f, s))
}

fn new_file(sock: Arc<Socket>, flags: i32) -> Arc<File> {
    File::new(None, FileKind::Socket(sock), O_RDWR | (flags & O_NONBLOCK))
}

/// The calling task's credentials as a message carries them by default.
fn task_cred(t: &Task) -> Ucred {
    let c = t.creds();
    Ucred {
        pid: t.tgid,
        uid: c.uid,
        gid: c.gid,
    }
}

/// The caller as SO_PEERCRED reports it (effective ids).
fn peer_cred(t: &Task) -> Ucred {
    let c = t.creds();
    Ucred {
        pid: t.tgid,
        uid: c.euid,
        gid: c.egid,
    }
}

/// Split a socket type argument: (type, flags).
fn sock_type(ty: i32) -> KResult<(i32, i32)> {
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((ty & SOCK_TYPE_MASK, flags))
}

/// The socket type an AF_UNIX socket gets (SOCK_RAW is a datagram one).
fn unix_type(ty: i32, proto: i32) -> KResult<i32> {
    let kind = match ty {
        SOCK_STREAM => SOCK_STREAM,
        SOCK_DGRAM | SOCK_RAW => SOCK_DGRAM,
        SOCK_SEQPACKET => SOCK_SEQPACKET,
        _ => return Err(Errno(libc::ESOCKTNOSUPPORT)),
    };
    if proto != 0 && proto != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(kind)
}

/// The socket type an AF_INET/AF_INET6 socket gets: TCP and UDP only.
/// Raw sockets need CAP_NET_RAW, as in Linux, and are then refused as an
/// unsupported type: the loopback has no IP layer to give them.
fn inet_type(t: &Task, ty: i32, proto: i32) -> KResult<i32> {
    match (ty, proto) {
        (SOCK_STREAM, 0 | IPPROTO_TCP) => Ok(SOCK_STREAM),
        (SOCK_DGRAM, 0 | IPPROTO_UDP) => Ok(SOCK_DGRAM),
        (SOCK_STREAM | SOCK_DGRAM, _) => Err(Errno::EPROTONOSUPPORT),
        (SOCK_RAW, _) if !t.creds().has_cap(CAP_NET_RAW) => Err(Errno::EPERM),
        _ => Err(Errno(libc::ESOCKTNOSUPPORT)),
    }
}

/// Families not provided (netlink, packet, ...). Counted like a missing
/// system call.
fn unsupported_family(t: &Task) -> Errno {
    t.k.count_unimplemented(libc::SYS_socket as u64);
    Errno::EAFNOSUPPORT
}

pub fn sys_socket(t: &mut Task, a: &Args) -> KResult<u64> {
    let (domain, ty, proto) = (a.int(0), a.int(1), a.int(2));
    if !(0..46).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT);
    }
    let (ty, flags) = sock_type(ty)?;
    let kind = match domain {
        AF_UNIX => unix_type(ty, proto)?,
        AF_INET | AF_INET6 => inet_type(t, ty, proto)?,
        _ => return Err(unsupported_family(t)),
    };
    let sock = Socket::new(domain, kind, peer_cred(t));
    install(t, new_file(sock, flags), flags & SOCK_CLOEXEC != 0)
}

pub fn sys_socketpair(t: &mut Task, a: &Args) -> KResult<u64> {
    let (domain, ty, proto) = (a.int(0), a.int(1), a.int(2));
    let (ty, flags) = sock_type(ty)?;
    let kind = match domain {
        AF_UNIX => unix_type(ty, proto)?,
        AF_INET | AF_INET6 => {
            inet_type(t, ty, proto)?;
            return Err(Errno::EOPNOTSUPP);
        }
        _ => return Err(unsupported_family(t)),
    };
    let (x, y) = Socket::pair(kind, peer_cred(t));
    install_pair(
        t,
        new_file(x, flags),
        new_file(y, flags),
        flags & SOCK_CLOEXEC != 0,
        a.u(3),
    )
}

/// A sockaddr from the workload.
enum SockAddr {
    /// AF_UNSPEC (a datagram socket's disconnect).
    Unspec,
    /// AF_UNIX with no name: bind autobinds.
    Unnamed,
    Unix(Addr),
    Inet(InetAddr),
}

/// sizeof(struct sockaddr_storage): the longest address a call takes.
const SOCKADDR_MAX: usize = 128;

fn read_addr(t: &Task, sock: &Socket, ptr: u64, len: usize) -> KResult<SockAddr> {
    if sock.is_inet() {
        if len > SOCKADDR_MAX {
            return Err(Errno::EINVAL);
        }
        let mut raw = vec![0u8; len];
        t.copy_in(ptr, &mut raw)?;
        return Ok(match InetAddr::decode(sock.family, &raw)? {
            Some(a) => SockAddr::Inet(a),
            None => SockAddr::Unspec,
        });
    }
    if !(2..=SUN_LEN_MAX).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len];
    t.copy_in(ptr, &mut raw)?;
    let family = u16::from_le_bytes([raw[0], raw[1]]);
    if family == AF_UNSPEC {
        return Ok(SockAddr::Unspec);
    }
    if family != AF_UNIX as u16 {
        return Err(Errno::EINVAL);
    }
    let body = &raw[2..];
    if body.is_empty() {
        return Ok(SockAddr::Unnamed);
    }
    if body[0] == 0 {
        return Ok(SockAddr::Unix(Addr::Abstract(body[1..].to_vec())));
    }
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    Ok(SockAddr::Unix(Addr::Path(body[..end].to_vec())))
}

/// Copy a socket address out to (addr, *addrlen), truncated to the room
/// the caller gave, and store its full length.
fn write_addr(t: &Task, ptr: u64, lenp: u64, family: i32, addr: Option<&Addr>) -> KResult<()> {
    if lenp == 0 {
        return Ok(());
    }
    let room: i32 = t.read_obj(lenp)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = match addr {
        Some(a) => a.encode(family),
        None if family == AF_UNIX => (AF_UNIX as u16).to_le_bytes().to_vec(),
        None => InetAddr::unbound(family),
    };
    let n = bytes.len().min(room as usize);
    if n > 0 {
        t.copy_out(ptr, &bytes[..n])?;
    }
    t.write_obj(lenp, &(bytes.len() as u32))
}

/// A sender's address for recvfrom: an unnamed sender has length 0.
fn write_sender(t: &Task, ptr: u64, lenp: u64, family: i32, addr: Option<&Addr>) -> KResult<()> {
    match addr {
        Some(_) => write_addr(t, ptr, lenp, family, addr),
        None if lenp != 0 => t.write_obj(lenp, &0u32),
        None => Ok(()),
    }
}

/// The socket a name refers to.
fn resolve(t: &Task, ty: i32, addr: &Addr) -> KResult<Arc<Socket>> {
    match addr {
        Addr::Abstract(n) => Socket::find_abstract(ty, n),
        Addr::Path(p) => super::file::find_socket_node(t, p),
        Addr::Inet(_) => Err(Errno::EINVAL),
    }
}

pub fn sys_bind(t: &mut Task, a: &Args) -> KResult<u64> {
    let (_, sock) = socket_of(t, a.int(0))?;
    let addr = read_addr(t, &sock, a.u(1), a.usize(2))?;
    if sock.is_inet() {
        let SockAddr::Inet(addr) = addr else {
            return Err(Errno::EAFNOSUPPORT);
        };
        let privileged = t.creds().has_cap(CAP_NET_BIND_SERVICE);
        return sock.bind_inet(addr, privileged).map(|_| 0);
    }
    match addr {
        SockAddr::Unspec | SockAddr::Inet(_) | SockAddr::Unix(Addr::Inet(_)) => Err(Errno::EINVAL),
        // Autobind leaves a bound socket as it is.
        SockAddr::Unnamed => sock.autobind().map(|_| 0),
        SockAddr::Unix(Addr::Abstract(n)) => sock.bind_abstract(n).map(|_| 0),
        SockAddr::Unix(Addr::Path(p)) => {
            if sock.is_bound() {
                // Linux makes the inode first: a taken name wins.
                return Err(match Walker::new(t).walk(&t.cwd(), &p, false) {
                    Ok(_) => Errno::EADDRINUSE,
                    Err(_) => Errno::EINVAL,
                });
            }
            super::file::bind_socket_node(t, &p, Arc::downgrade(&sock))?;
            sock.set_name(Addr::Path(p))?;
            Ok(0)
        }
    }
}

pub fn sys_listen(t: &mut Task, a: &Args) -> KResult<u64> {
    let (_, sock) = socket_of(t, a.int(0))?;
    if sock.is_inet() {
        return sock.listen_inet(a.int(1)).map(|_| 0);
    }
    sock.listen(a.int(1)).map(|_| 0)
}

pub fn sys_connect(t: &mut Task, a: &Args) -> KResult<u64> {
    let (f, sock) = socket_of(t, a.int(0))?;
    let addr = read_addr(t, &sock, a.u(1), a.usize(2))?;
    if sock.is_inet() {
        return connect_inet(&f, &sock, addr);
    }
    if let SockAddr::Unix(Addr::Path(p)) = &addr {
        if let Some(conn) = super::file::connect_host_socket(t, p, sock.ty)? {
            return sock.attach_host(conn).map(|_| 0);
        }
    }
    if sock.ty == SOCK_DGRAM {
        let target = match addr {
            SockAddr::Unspec => None,
            SockAddr::Unnamed | SockAddr::Inet(_) => return Err(Errno::EINVAL),
            SockAddr::Unix(x) => Some(resolve(t, sock.ty, &x)?),
        };
        if target.is_some() && sock.passcred() {
            sock.autobind()?;
        }
        return sock.connect_dgram(target).map(|_| 0);
    }
    let SockAddr::Unix(x) = addr else {
        return Err(Errno::EINVAL);
    };
    let listener = resolve(t, sock.ty, &x)?;
    if sock.passcred() {
        sock.autobind()?;
    }
    let nonblock = f.flags() & O_NONBLOCK != 0;
    sock.connect_stream(&listener, peer_cred(t), nonblock, None)
        .map(|_| 0)
}

fn connect_inet(f: &File, sock: &Arc<Socket>, addr: SockAddr) -> KResult<u64> {
    let dest = match addr {
        SockAddr::Inet(a) => Some(a),
        SockAddr::Unspec => None,
        _ => return Err(Errno::EINVAL),
    };
    if sock.ty == SOCK_DGRAM {
        return sock.connect_udp(dest).map(|_| 0);
    }
    let Some(dest) = dest else {
        // AF_UNSPEC disconnects a TCP socket.
        if sock.connected() {
            sock.shutdown(2)?;
        }
        return Ok(0);
    };
    // Loopback connects at once; a non-blocking connect still reports
    // EINPROGRESS, as Linux does, and the socket polls writable.
    if sock.connect_tcp(dest, f.flags() & O_NONBLOCK != 0)? {
        return Err(Errno(libc::EINPROGRESS));
    }
    Ok(0)
}

fn accept_common(t: &mut Task, a: &Args, flags: i32) -> KResult<u64> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, sock) = socket_of(t, a.int(0))?;
    let conn = sock.accept(f.flags() & O_NONBLOCK != 0)?;
    let peer = conn.peer_name().ok().flatten();
    let file = new_file(conn, flags);
    if a.u(1) != 0 {
        write_addr(t, a.u(1), a.u(2), sock.family, peer.as_ref())?;
    }
    install(t, file, flags & SOCK_CLOEXEC != 0)
}

pub fn sys_accept(t: &mut Task, a: &Args) -> KResult<u64> {
    accept_common(t, a, 0)
}

pub fn sys_accept4(t: &mut Task, a: &Args) -> KResult<u64> {
    accept_common(t, a, a.int(3))
}

pub fn sys_getsockname(t: &mut Task, a: &Args) -> KResult<u64> {
    let (_, sock) = socket_of(t, a.int(0))?;
    let name = sock.name();
    write_addr(t, a.u(1), a.u(2), sock.family, name.as_ref()).map(|_| 0)
}

pub fn sys_getpeername(t: &mut Task, a: &Args) -> KResult<u64> {
    let (_, sock) = socket_of(t, a.int(0))?;
    let name = sock.peer_name()?;
    write_addr(t, a.u(1), a.u(2), sock.family, name.as_ref()).map(|_| 0)
}

pub fn sys_shutdown(t: &mut Task, a: &Args) -> KResult<u64> {
    let (_, sock) = socket_of(t, a.int(0))?;
    sock.shutdown(a.int(1))?;
    if sock.is_inet() && !sock.connected() && !sock.listening() {
        // Linux sets the bits (waking pollers) but reports ENOTCONN.
        return Err(Errno::ENOTCONN);
    }
    Ok(0)
}

/// A send's result: EPIPE also raises SIGPIPE unless MSG_NOSIGNAL.
fn sent(t: &Task, r: KResult<usize>, flags: i32) -> KResult<u64> {
    if r == Err(Errno::EPIPE) && flags & MSG_NOSIGNAL == 0 {
        super::file::raise_sigpipe(t);
    }
    r.map(|n| n as u64)
}

/// What one send carries.
struct Outgoing {
    data: Vec<u8>,
    rights: Option<Rights>,
    cred: Ucred,
}

/// One send: destination (sendto/msg_name), data, files, credentials.
fn send_common(
    t: &Task,
    f: &File,
    sock: &Arc<Socket>,
    to: Option<SockAddr>,
    msg: Outgoing,
    flags: i32,
) -> KResult<u64> {
    let Outgoing { data, rights, cred } = msg;
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = flags & MSG_DONTWAIT != 0 || f.flags() & O_NONBLOCK != 0;
    let r = if sock.is_udp() {
        let to = match to {
            None | Some(SockAddr::Unspec) => None,
            Some(SockAddr::Inet(a)) => Some(a),
            Some(_) => return Err(Errno::EINVAL),
        };
        sock.send_udp(to, &data)
    } else if sock.ty == SOCK_DGRAM {
        let target = match to {
            None | Some(SockAddr::Unspec) => None,
            Some(SockAddr::Unnamed | SockAddr::Inet(_)) => return Err(Errno::EINVAL),
            Some(SockAddr::Unix(x)) => Some(resolve(t, sock.ty, &x)?),
        };
        if sock.passcred() {
            sock.autobind()?;
        }
        sock.send_dgram(target, &data, rights, cred, nonblock)
    } else {
        if to.is_some() && !sock.is_inet() {
            // A connection-oriented socket takes no destination (TCP
            // ignores one).
            return Err(if sock.peer_name().is_ok() {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            });
        }
        sock.send_conn(&data, rights, cred, nonblock)
    };
    sent(t, r, flags)
}

/// The most one send moves (a short count beyond, as for write).
const SEND_MAX: usize = 16 << 20;

pub fn sys_sendto(t: &mut Task, a: &Args) -> KResult<u64> {
    let (f, sock) = socket_of(t, a.int(0))?;
    let flags = a.int(3);
    let to = if a.u(4) != 0 {
        Some(read_addr(t, &sock, a.u(4), a.usize(5))?)
    } else {
        None
    };
    let mut data = vec![0u8; a.usize(2).min(SEND_MAX)];
    t.copy_in(a.u(1), &mut data)?;
    let msg = Outgoing {
        data,
        rights: None,
        cred: task_cred(t),
    };
    send_common(t, &f, &sock, to, msg, flags)
}

/// struct msghdr (x86-64): name, namelen, iov, iovlen, control,
/// controllen, flags.
struct MsgHdr {
    name: u64,
    namelen: u64,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn read_msghdr(t: &Task, addr: u64) -> KResult<MsgHdr> {
    let mut raw = [0u8; 56];
    t.copy_in(addr, &mut raw)?;
    let w = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    Ok(MsgHdr {
        name: w(0),
        namelen: w(1) & 0xffff_ffff,
        iov: w(2),
        iovlen: w(3),
        control: w(4),
        controllen: w(5),
    })
}

/// Control messages of a sendmsg: SCM_RIGHTS files and SCM_CREDENTIALS
/// (checked as Linux checks them: only ids the sender holds, unless
/// privileged).
fn read_control(t: &Task, sock: &Socket, m: &MsgHdr) -> KResult<(Option<Rights>, Option<Ucred>)> {
    if m.control == 0 || m.controllen == 0 {
        return Ok((None, None));
    }
    if m.controllen > 1 << 16 {
        return Err(Errno(libc::ENOBUFS));
    }
    let mut ctl = vec![0u8; m.controllen as usize];
    t.copy_in(m.control, &mut ctl)?;
    let word = |b: &[u8]| i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut rights: Option<Rights> = None;
    let mut cred = None;
    let mut off = 0usize;
    while off + 16 <= ctl.len() {
        let mut lb = [0u8; 8];
        lb.copy_from_slice(&ctl[off..off + 8]);
        let len = u64::from_le_bytes(lb) as usize;
        let level = word(&ctl[off + 8..]);
        let ty = word(&ctl[off + 12..]);
        if len < 16 || len > ctl.len() - off {
            return Err(Errno::EINVAL);
        }
        // Files and credentials pass over AF_UNIX only.
        if level != SOL_SOCKET || sock.is_inet() {
            return Err(Errno::EINVAL);
        }
        let body = &ctl[off + 16..off + len];
        match ty {
            SCM_RIGHTS => {
                let v = rights.get_or_insert_with(Vec::new);
                for c in body.chunks_exact(4) {
                    v.push(get_file(t, word(c))?);
                }
                if v.len() > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
            }
            SCM_CREDENTIALS => {
                if body.len() != 12 {
                    return Err(Errno::EINVAL);
                }
                let u = Ucred {
                    pid: word(body),
                    uid: word(&body[4..]) as u32,
                    gid: word(&body[8..]) as u32,
                };
                let c = t.creds();
                let pid_ok = u.pid == t.tgid || c.has_cap(CAP_SYS_ADMIN);
                let uid_ok = [c.uid, c.euid, c.suid].contains(&u.uid) || c.has_cap(CAP_SETUID);
                let gid_ok = [c.gid, c.egid, c.sgid].contains(&u.gid) || c.has_cap(CAP_SETGID);
                if !(pid_ok && uid_ok && gid_ok) {
                    return Err(Errno::EPERM);
                }
                cred = Some(u);
            }
            _ => return Err(Errno::EINVAL),
        }
        off += (len + 7) & !7;
    }
    Ok((rights.filter(|r| !r.is_empty()), cred))
}

fn gather(t: &Task, m: &MsgHdr) -> KResult<Vec<u8>> {
    let iovs = read_iovecs(t, m.iov, m.iovlen as usize)?;
    let mut data = Vec::new();
    for v in &iovs {
        let take = (v.len as usize).min(SEND_MAX - data.len());
        let at = data.len();
        data.resize(at + take, 0);
        t.copy_in(v.base, &mut data[at..])?;
        if data.len() >= SEND_MAX {
            break;
        }
    }
    Ok(data)
}

fn sendmsg_one(t: &Task, f: &File, sock: &Arc<Socket>, hdr: u64, flags: i32) -> KResult<u64> {
    if flags & MSG_EOR != 0 && sock.ty == SOCK_STREAM && !sock.is_inet() {
        return Err(Errno::EOPNOTSUPP);
    }
    let m = read_msghdr(t, hdr)?;
    let to = if m.name != 0 && m.namelen != 0 {
        Some(read_addr(t, sock, m.name, m.namelen as usize)?)
    } else {
        None
    };
    let data = gather(t, &m)?;
    let (rights, cred) = read_control(t, sock, &m)?;
    let msg = Outgoing {
        data,
        rights,
        cred: cred.unwrap_or_else(|| task_cred(t)),
    };
    send_common(t, f, sock, to, msg, flags)
}

pub fn sys_sendmsg(t: &mut Task, a: &Args) -> KResult<u64> {
    let (f, sock) = socket_of(t, a.int(0))?;
    sendmsg_one(t, &f, &sock, a.u(1), a.int(2))
}

/// sendmmsg(2): struct mmsghdr is a msghdr and the count sent (64 bytes).
pub fn sys_sendmmsg(t: &mut Task, a: &Args) -> KResult<u64> {
    let (f, sock) = socket_of(t, a.int(0))?;
    let n = a.uint(2).min(1024) as u64;
    let mut done = 0;
    while done < n {
        let hdr = a.u(1) + done * 64;
        match sendmsg_one(t, &f, &sock, hdr, a.int(3)) {
            Ok(k) => t.write_obj(hdr + 56, &(k as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
    }
    Ok(done)
}

/// One receive with MSG_WAITALL's loop for streams.
fn recv_common(f: &File, sock: &Arc<Socket>, want: usize, flags: i32) -> KResult<Received> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EINVAL);
    }
    let peek = flags & MSG_PEEK != 0;
    let nonblock = flags & MSG_DONTWAIT != 0 || f.flags() & O_NONBLOCK != 0;
    let mut r = sock.recv(want, peek, nonblock)?;
    if sock.ty == SOCK_STREAM && flags & MSG_WAITALL != 0 && !peek {
        while r.data.len() < want && r.rights.is_none() && !r.data.is_empty() {
            match sock.recv(want - r.data.len(), false, nonblock) {
                Ok(more) if !more.data.is_empty() && more.rights.is_none() => {
                    r.data.extend_from_slice(&more.data);
                }
                Ok(more) => {
                    // Files end a read: keep their data with this one.
                    r.data.extend_from_slice(&more.data);
                    r.rights = more.rights;
                    break;
                }
                Err(_) => break,
            }
        }
        r.full_len = r.data.len();
    }
    Ok(r)
}

/// The count a receive returns: with MSG_TRUNC a record's full length.
fn received_len(sock: &Socket, r: &Received, flags: i32) -> u64 {
    if flags & MSG_TRUNC != 0 && sock.ty != SOCK_STREAM {
        r.full_len as u64
    } else {
        r.data.len() as u64
    }
}

pub fn sys_recvfrom(t: &mut Task, a: &Args) -> KResult<u64> {
    let (f, sock) = socket_of(t, a.int(0))?;
    let flags = a.int(3);
    let r = recv_common(&f, &sock, a.usize(2).min(SEND_MAX), flags)?;
    t.copy_out(a.u(1), &r.data)?;
    if a.u(4) != 0 {
        write_sender(t, a.u(4), a.u(5), sock.family, r.from.as_ref())?;
    }
    Ok(received_len(&sock, &r, flags))
}

fn cmsg(level: i32, ty: i32, body: &[u8]) -> Vec<u8> {
    let len = 16 + body.len();
    let mut c = Vec::with_capacity(len);
    c.extend_from_slice(&(len as u64).to_le_bytes());
    c.extend_from_slice(&level.to_le_bytes());
    c.extend_from_slice(&ty.to_le_bytes());
    c.extend_from_slice(body);
    c
}

fn recvmsg_one(t: &Task, f: &File, sock: &Arc<Socket>, hdr: u64, flags: i32) -> KResult<u64> {
    let m = read_msghdr(t, hdr)?;
    let iovs = read_iovecs(t, m.iov, m.iovlen as usize)?;
    let total = iovs.iter().map(|v| v.len).sum::<u64>().min(SEND_MAX as u64) as usize;
    let r = recv_common(f, sock, total, flags)?;
    let ret = received_len(sock, &r, flags);
    let mut off = 0usize;
    for v in &iovs {
        if off >= r.data.len() {
            break;
        }
        let n = (v.len as usize).min(r.data.len() - off);
        t.copy_out(v.base, &r.data[off..off + n])?;
        off += n;
    }
    // Linux reports MSG_CMSG_CLOEXEC back in msg_flags.
    let mut out_flags = (flags & MSG_CMSG_CLOEXEC) as u32;
    if r.truncated {
        out_flags |= MSG_TRUNC as u32;
    }
    let room = if m.control == 0 {
        0
    } else {
        m.controllen as usize
    };
    let mut ctl = Vec::new();
    if sock.passcred() && !sock.is_inet() {
        let c = r.cred.unwrap_or(crate::fs::unix::NO_CRED);
        let mut body = Vec::with_capacity(12);
        body.extend_from_slice(&c.pid.to_le_bytes());
        body.extend_from_slice(&c.uid.to_le_bytes());
        body.extend_from_slice(&c.gid.to_le_bytes());
        let c = cmsg(SOL_SOCKET, SCM_CREDENTIALS, &body);
        if ctl.len() + c.len() <= room {
            ctl.extend_from_slice(&c);
            ctl.resize((ctl.len() + 7) & !7, 0);
        } else {
            out_flags |= MSG_CTRUNC;
        }
    }
    if let Some(files) = r.rights {
        let fit = room.saturating_sub(ctl.len() + 16) / 4;
        let n = files.len().min(fit);
        if n < files.len() {
            out_flags |= MSG_CTRUNC;
        }
        if n > 0 {
            let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
            let mut body = Vec::with_capacity(4 * n);
            for file in files.into_iter().take(n) {
                body.extend_from_slice(&(install(t, file, cloexec)? as i32).to_le_bytes());
            }
            ctl.extend_from_slice(&cmsg(SOL_SOCKET, SCM_RIGHTS, &body));
        }
    }
    let used = ((ctl.len() + 7) & !7).min(room);
    if !ctl.is_empty() {
        t.copy_out(m.control, &ctl[..ctl.len().min(room)])?;
    }
    if m.name != 0 {
        let bytes = r
            .from
            .as_ref()
            .map(|a| a.encode(sock.family))
            .unwrap_or_default();
        let n = bytes.len().min(m.namelen as usize);
        t.copy_out(m.name, &bytes[..n])?;
        t.write_obj(hdr + 8, &(bytes.len() as u32))?;
    } else {
        t.write_obj(hdr + 8, &0u32)?;
    }
    t.write_obj(hdr + 40, &(used as u64))?; // msg_controllen
    t.write_obj(hdr + 48, &out_flags)?; // msg_flags
    Ok(ret)
}

pub fn sys_recvmsg(t: &mut Task, a: &Args) -> KResult<u64> {
    let (f, sock) = socket_of(t, a.int(0))?;
    recvmsg_one(t, &f, &sock, a.u(1), a.int(2))
}

/// recvmmsg(2): as many messages as are there after the first (which
/// may wait); the timeout is not applied between messages.
pub fn sys_recvmmsg(t: &mut Task, a: &Args) -> KResult<u64> {
    const MSG_WAITFORONE: i32 = 0x10000;
    let (f, sock) = socket_of(t, a.int(0))?;
    let n = a.uint(2).min(1024) as u64;
    let mut flags = a.int(3);
    let mut done = 0;
    while done < n {
        let hdr = a.u(1) + done * 64;
        match recvmsg_one(t, &f, &sock, hdr, flags & !MSG_WAITFORONE) {
            Ok(k) => t.write_obj(hdr + 56, &(k as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
        if flags & MSG_WAITFORONE != 0 {
            flags |= MSG_DONTWAIT;
        }
    }
    Ok(done)
}

/// An integer option stored per socket and read back: its default, whether
/// it is a flag (read back as 0 or 1), and the values setsockopt takes
/// (EINVAL outside; -1 resets the options whose range starts at -1).
struct IntOpt {
    default: i32,
    flag: bool,
    range: (i32, i32),
}

const fn flag(default: i32) -> Option<IntOpt> {
    Some(IntOpt {
        default,
        flag: true,
        range: (i32::MIN, i32::MAX),
    })
}

const fn int(default: i32, lo: i32, hi: i32) -> Option<IntOpt> {
    Some(IntOpt {
        default,
        flag: false,
        range: (lo, hi),
    })
}

/// The stored options a socket has (Linux's defaults).
fn int_opt(sock: &Socket, level: i32, name: i32) -> Option<IntOpt> {
    const MAX: i32 = i32::MAX;
    let tcp = sock.is_inet() && sock.ty == SOCK_STREAM;
    match (level, name) {
        (
            SOL_SOCKET,
            SO_DEBUG | SO_REUSEADDR | SO_DONTROUTE | SO_BROADCAST | SO_KEEPALIVE | SO_OOBINLINE
            | SO_REUSEPORT | SO_TIMESTAMP,
        ) => flag(0),
        (SOL_SOCKET, SO_PRIORITY) => int(0, 0, 6),
        (SOL_SOCKET, SO_RCVLOWAT) => int(1, 0, MAX),
        _ if !sock.is_inet() => None,
        (IPPROTO_TCP, _) if !tcp => None,
        (IPPROTO_TCP, TCP_NODELAY | TCP_CORK) => flag(0),
        (IPPROTO_TCP, TCP_QUICKACK) => flag(1),
        (IPPROTO_TCP, TCP_MAXSEG) => int(536, 88, 32767),
        (IPPROTO_TCP, TCP_KEEPIDLE) => int(7200, 1, 32767),
        (IPPROTO_TCP, TCP_KEEPINTVL) => int(75, 1, 32767),
        (IPPROTO_TCP, TCP_KEEPCNT | TCP_SYNCNT) => {
            int(if name == TCP_KEEPCNT { 9 } else { 6 }, 1, 127)
        }
        (IPPROTO_TCP, TCP_LINGER2) => int(60, i32::MIN, MAX),
        (IPPROTO_TCP, TCP_DEFER_ACCEPT | TCP_WINDOW_CLAMP | TCP_USER_TIMEOUT | TCP_FASTOPEN) => {
            int(0, 0, MAX)
        }
        (IPPROTO_TCP, TCP_NOTSENT_LOWAT) => int(-1, i32::MIN, MAX),
        (IPPROTO_UDP, UDP_CORK) if !tcp => flag(0),
        (IPPROTO_IP, IP_TOS) => int(0, 0, 255),
        (IPPROTO_IP, IP_TTL) => int(64, -1, 255),
        (
            IPPROTO_IP,
            IP_PKTINFO
            | IP_RECVERR
            | IP_RECVTTL
            | IP_RECVTOS
            | IP_FREEBIND
            | IP_BIND_ADDRESS_NO_PORT,
        ) => flag(0),
        (IPPROTO_IP, IP_MULTICAST_TTL) => int(1, -1, 255),
        (IPPROTO_IP, IP_MULTICAST_LOOP) => flag(1),
        (IPPROTO_IP, IP_MTU_DISCOVER) => int(1, 0, 5),
        (IPPROTO_IPV6, _) if sock.family != AF_INET6 => None,
        (IPPROTO_IPV6, IPV6_V6ONLY | IPV6_RECVERR | IPV6_RECVPKTINFO) => flag(0),
        (IPPROTO_IPV6, IPV6_MULTICAST_LOOP) => flag(1),
        (IPPROTO_IPV6, IPV6_UNICAST_HOPS) => int(64, -1, 255),
        (IPPROTO_IPV6, IPV6_MULTICAST_HOPS) => int(1, -1, 255),
        (IPPROTO_IPV6, IPV6_TCLASS) => int(0, -1, 255),
        _ => None,
    }
}

/// The levels a socket has options at (others: EOPNOTSUPP): AF_UNIX only
/// SOL_SOCKET, IP sockets IP's, IPv6's for AF_INET6, and their protocol's.
fn check_level(sock: &Socket, level: i32) -> KResult<()> {
    let ok = match level {
        SOL_SOCKET => true,
        _ if !sock.is_inet() => false,
        IPPROTO_IP => true,
        IPPROTO_IPV6 => sock.family == AF_INET6,
        IPPROTO_TCP => sock.ty == SOCK_STREAM,
        IPPROTO_UDP => sock.ty == SOCK_DGRAM,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Errno::EOPNOTSUPP)
    }
}

fn timeval_of(d: Option<Duration>) -> [i64; 2] {
    d.map_or([0, 0], |d| [d.as_secs() as i64, d.subsec_micros() as i64])
}

fn protocol(sock: &Socket) -> i32 {
    match (sock.is_inet(), sock.ty) {
        (false, _) => 0,
        (true, SOCK_STREAM) => IPPROTO_TCP,
        (true, _) => IPPROTO_UDP,
    }
}

pub fn sys_getsockopt(t: &mut Task, a: &Args) -> KResult<u64> {
    let (_, sock) = socket_of(t, a.int(0))?;
    let (level, name, val, lenp) = (a.int(1), a.int(2), a.u(3), a.u(4));
    check_level(&sock, level)?;
    let room: i32 = t.read_obj(lenp)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let int = |v: i32| v.to_le_bytes().to_vec();
    let (sndbuf, rcvbuf) = sock.bufsizes();
    let bytes = if let Some(o) = int_opt(&sock, level, name) {
        let v = sock.opt(level, name).unwrap_or(o.default);
        int(if o.flag { (v != 0) as i32 } else { v })
    } else {
        match (level, name) {
            (SOL_SOCKET, SO_TYPE) => int(sock.ty),
            (SOL_SOCKET, SO_DOMAIN) => int(sock.family),
            (SOL_SOCKET, SO_PROTOCOL) => int(protocol(&sock)),
            (SOL_SOCKET, SO_ERROR) => int(sock.take_error()),
            (SOL_SOCKET, SO_ACCEPTCONN) => int(sock.listening() as i32),
            (SOL_SOCKET, SO_PASSCRED) => int(sock.passcred() as i32),
            (SOL_SOCKET, SO_SNDBUF) => int(sndbuf as i32),
            (SOL_SOCKET, SO_RCVBUF) => int(rcvbuf as i32),
            (SOL_SOCKET, SO_SNDLOWAT) => int(1),
            (SOL_SOCKET, SO_LINGER) => {
                let [on, secs] = sock.linger();
                let mut v = int(on);
                v.extend_from_slice(&secs.to_le_bytes());
                v
            }
            // An IP socket has no peer credentials: pid 0, ids -1 (Linux's
            // INVALID_UID seen from a user namespace).
            (SOL_SOCKET, SO_PEERCRED) => {
                let c = if sock.is_inet() {
                    Ucred {
                        pid: 0,
                        uid: u32::MAX,
                        gid: u32::MAX,
                    }
                } else {
                    sock.peercred()
                };
                let mut v = int(c.pid);
                v.extend_from_slice(&c.uid.to_le_bytes());
                v.extend_from_slice(&c.gid.to_le_bytes());
                v
            }
            (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) => {
                let (r, s) = sock.timeouts();
                let tv = timeval_of(if name == SO_RCVTIMEO { r } else { s });
                let mut v = tv[0].to_le_bytes().to_vec();
                v.extend_from_slice(&tv[1].to_le_bytes());
                v
            }
            (IPPROTO_TCP, TCP_INFO) if sock.ty == SOCK_STREAM => {
                // struct tcp_info: the state; no counters are kept.
                let mut v = vec![0u8; TCP_INFO_LEN];
                v[0] = sock.tcp_state();
                v
            }
            (IPPROTO_TCP, TCP_CONGESTION) if sock.ty == SOCK_STREAM => {
                let mut v = b"cubic".to_vec();
                v.resize(16, 0);
                v
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
    };
    let n = bytes.len().min(room as usize);
    t.copy_out(val, &bytes[..n])?;
    t.write_obj(lenp, &(n as u32))?;
    Ok(0)
}

pub fn sys_setsockopt(t: &mut Task, a: &Args) -> KResult<u64> {
    let (_, sock) = socket_of(t, a.int(0))?;
    let (level, name, val, len) = (a.int(1), a.int(2), a.u(3), a.usize(4));
    check_level(&sock, level)?;
    let read_int = |t: &Task| -> KResult<i32> {
        if len < 4 {
            return Err(Errno::EINVAL);
        }
        t.read_obj::<i32>(val)
    };
    if let Some(o) = int_opt(&sock, level, name) {
        let v = read_int(t)?;
        if (level, name) == (IPPROTO_IPV6, IPV6_V6ONLY) && sock.is_bound() {
            return Err(Errno::EINVAL);
        }
        if v == -1 && o.range.0 == -1 {
            sock.set_opt(level, name, None);
        } else if v < o.range.0 || v > o.range.1 {
            return Err(Errno::EINVAL);
        } else {
            sock.set_opt(level, name, Some(if o.flag { (v != 0) as i32 } else { v }));
        }
        return Ok(0);
    }
    match (level, name) {
        (SOL_SOCKET, SO_PASSCRED) => sock.set_passcred(read_int(t)? != 0),
        (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => sock.set_bufsize(true, read_int(t)?),
        (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => sock.set_bufsize(false, read_int(t)?),
        (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) => {
            if len < 16 {
                return Err(Errno::EINVAL);
            }
            let mut raw = [0u8; 16];
            t.copy_in(val, &mut raw)?;
            let half = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&raw[i..i + 8]);
                i64::from_le_bytes(b)
            };
            let tv = [half(0), half(8)];
            if !(0..1_000_000).contains(&tv[1]) {
                return Err(Errno::EDOM);
            }
            let d = if tv[0] < 0 || (tv[0] == 0 && tv[1] == 0) {
                None
            } else {
                Some(Duration::new(tv[0] as u64, tv[1] as u32 * 1000))
            };
            sock.set_timeout(name == SO_RCVTIMEO, d);
        }
        (SOL_SOCKET, SO_SNDLOWAT) => {
            read_int(t)?;
        }
        (SOL_SOCKET, SO_LINGER) => {
            if len < 8 {
                return Err(Errno::EINVAL);
            }
            let v: [i32; 2] = t.read_obj(val)?;
            // Turning it off keeps the time, as Linux does.
            let secs = if v[0] != 0 {
                v[1].max(0)
            } else {
                sock.linger()[1]
            };
            sock.set_linger([(v[0] != 0) as i32, secs]);
        }
        (IPPROTO_TCP, TCP_CONGESTION) if sock.ty == SOCK_STREAM => {
            let mut raw = vec![0u8; len.min(16)];
            t.copy_in(val, &mut raw)?;
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            if !matches!(&raw[..end], b"cubic" | b"reno") {
                return Err(Errno::ENOENT);
            }
        }
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}
