//! Framing of gofer protocol messages on a `SOCK_SEQPACKET` unix socket.
//!
//! A frame is a `u32` little-endian body length followed by the bincode body
//! (varint integers, little endian, trailing bytes rejected, at most
//! [`MAX_FRAME`] bytes). On the socket a frame travels as one or more
//! packets: the first carries the length prefix and the start of the body,
//! the following ones carry the rest of the body, each packet at most
//! [`PACKET_MAX`] bytes. Splitting is needed because a unix seqpacket socket
//! refuses a single packet larger than its send buffer (about 200 KiB by
//! default), far below [`MAX_FRAME`]. File descriptors (SCM_RIGHTS) may only
//! ride on the first packet of a frame.
//!
//! A frame must be sent and received as a whole by one thread at a time; the
//! callers serialise access to the socket (the client holds a mutex, the
//! server is single threaded).
//!
//! Everything received is treated as hostile: oversize lengths, truncated
//! packets, unexpected control messages and undecodable bodies all yield a
//! [`WireError`], never a panic. Descriptors that arrive with a bad packet
//! are closed.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use bincode::Options;
use nix::errno::Errno;
use nix::sys::socket::{
    getsockopt, recvmsg, sendmsg, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockType,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::proto::{Frame, MAX_FRAME};

/// Largest packet either side sends or accepts (length prefix included).
pub const PACKET_MAX: usize = 64 * 1024;

/// Most descriptors a single frame may carry.
pub const MAX_FDS: usize = 8;

/// The kernel never passes more than this many fds in one SCM_RIGHTS
/// message (SCM_MAX_FD); sizing the control buffer for it means a
/// descriptor flood never truncates the control data, so every fd the peer
/// sent reaches us as an `OwnedFd` and is closed again when refused.
const SCM_MAX_FD: usize = 253;

const HEADER: usize = 4;

/// Why a frame could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer closed the connection (possibly in the middle of a frame).
    #[error("connection closed by peer")]
    Eof,
    /// A socket system call failed.
    #[error("socket error: {0}")]
    Io(Errno),
    /// A frame body longer than [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(u64),
    /// A packet or its control data did not fit the receive buffers.
    #[error("truncated packet")]
    Truncated,
    /// More descriptors than [`MAX_FDS`], descriptors on a continuation
    /// packet, or unexpected control messages.
    #[error("bad ancillary data: {0}")]
    BadAncillary(&'static str),
    /// The body does not decode as the expected type.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The socket is not a SOCK_SEQPACKET socket.
    #[error("socket is not SOCK_SEQPACKET")]
    NotSeqpacket,
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(u64::from(MAX_FRAME))
        .with_little_endian()
        .with_varint_encoding()
        .reject_trailing_bytes()
}

/// Encodes a frame: length prefix followed by the body.
pub fn encode<T: Serialize>(frame: &Frame<T>) -> Result<Vec<u8>, WireError> {
    let body = codec().serialize(frame).map_err(|e| match *e {
        bincode::ErrorKind::SizeLimit => WireError::TooLarge(u64::from(MAX_FRAME) + 1),
        other => WireError::Malformed(other.to_string()),
    })?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or(WireError::TooLarge(body.len() as u64))?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a whole frame (length prefix included), as produced by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<Frame<T>, WireError> {
    let (head, body) = bytes
        .split_first_chunk::<HEADER>()
        .ok_or_else(|| WireError::Malformed("short header".into()))?;
    let len = u32::from_le_bytes(*head);
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(u64::from(len)));
    }
    if body.len() != len as usize {
        return Err(WireError::Malformed(format!(
            "length prefix {len} but {} body bytes",
            body.len()
        )));
    }
    decode_body(body)
}

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<Frame<T>, WireError> {
    codec()
        .deserialize(body)
        .map_err(|e| WireError::Malformed(e.to_string()))
}

/// Checks that `fd` is a `SOCK_SEQPACKET` socket.
pub fn check_seqpacket(fd: BorrowedFd<'_>) -> Result<(), WireError> {
    match getsockopt(&fd, sockopt::SockType) {
        Ok(SockType::SeqPacket) => Ok(()),
        Ok(_) => Err(WireError::NotSeqpacket),
        Err(e) => Err(WireError::Io(e)),
    }
}

/// Sends one frame with `fds` attached (at most [`MAX_FDS`]).
pub fn send_frame<T: Serialize>(
    fd: BorrowedFd<'_>,
    frame: &Frame<T>,
    fds: &[RawFd],
) -> Result<(), WireError> {
    if fds.len() > MAX_FDS {
        return Err(WireError::BadAncillary("too many descriptors"));
    }
    let bytes = encode(frame)?;
    let mut first = true;
    for chunk in bytes.chunks(PACKET_MAX) {
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if first && !fds.is_empty() {
            &rights
        } else {
            &[]
        };
        send_packet(fd, chunk, cmsgs)?;
        first = false;
    }
    Ok(())
}

fn send_packet(fd: BorrowedFd<'_>, data: &[u8], cmsgs: &[ControlMessage]) -> Result<(), WireError> {
    let iov = [IoSlice::new(data)];
    loop {
        match sendmsg::<()>(fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) if n == data.len() => return Ok(()),
            // A seqpacket send is all or nothing; anything else is broken.
            Ok(_) => return Err(WireError::Io(Errno::EIO)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => return Err(WireError::Eof),
            Err(e) => return Err(WireError::Io(e)),
        }
    }
}

/// One received packet: its length and the descriptors that came with it.
fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>), WireError> {
    let mut cmsg = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECONNRESET) => return Err(WireError::Eof),
            Err(e) => return Err(WireError::Io(e)),
        };
        let mut fds = Vec::new();
        let mut stray = false;
        // cmsgs() refuses (ENOBUFS) when the control data was truncated;
        // with room for SCM_MAX_FD descriptors that only happens for control
        // messages we never asked for.
        let cmsgs = msg.cmsgs().map_err(|_| WireError::Truncated)?;
        for c in cmsgs {
            match c {
                ControlMessageOwned::ScmRights(raw) => {
                    for r in raw {
                        // SAFETY: the kernel just installed `r` in our fd
                        // table for this message; nothing else owns it.
                        fds.push(unsafe { OwnedFd::from_raw_fd(r) });
                    }
                }
                _ => stray = true,
            }
        }
        if msg.flags.contains(MsgFlags::MSG_TRUNC) || msg.flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(WireError::Truncated);
        }
        if stray {
            return Err(WireError::BadAncillary("unexpected control message"));
        }
        if msg.bytes == 0 {
            // EOF (a zero-length packet is never sent by this module).
            return Err(WireError::Eof);
        }
        return Ok((msg.bytes, fds));
    }
}

/// Receives one frame and the descriptors sent with it.
pub fn recv_frame<T: DeserializeOwned>(
    fd: BorrowedFd<'_>,
) -> Result<(Frame<T>, Vec<OwnedFd>), WireError> {
    let mut packet = vec![0u8; PACKET_MAX];
    let (n, fds) = recv_packet(fd, &mut packet)?;
    if fds.len() > MAX_FDS {
        return Err(WireError::BadAncillary("too many descriptors"));
    }
    let Some((head, rest)) = packet[..n].split_first_chunk::<HEADER>() else {
        return Err(WireError::Malformed("short header".into()));
    };
    let len = u32::from_le_bytes(*head);
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(u64::from(len)));
    }
    let len = len as usize;
    if rest.len() > len {
        return Err(WireError::Malformed("packet longer than its frame".into()));
    }
    if rest.len() == len {
        return Ok((decode_body(rest)?, fds));
    }
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(rest);
    while body.len() < len {
        let (n, more) = recv_packet(fd, &mut packet)?;
        if !more.is_empty() {
            return Err(WireError::BadAncillary(
                "descriptors on a continuation packet",
            ));
        }
        if n > len - body.len() {
            return Err(WireError::Malformed("packet longer than its frame".into()));
        }
        body.extend_from_slice(&packet[..n]);
    }
    Ok((decode_body(&body)?, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Reply, Request, Stat};
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag};
    use std::os::fd::AsFd;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    fn raw_send(fd: &OwnedFd, data: &[u8]) {
        send_packet(fd.as_fd(), data, &[]).unwrap();
    }

    #[test]
    fn codec_round_trip() {
        let f = Frame {
            tag: 7,
            body: Request::Walk {
                dir: 3,
                names: vec![b"usr".to_vec(), b"lib".to_vec()],
            },
        };
        let bytes = encode(&f).unwrap();
        assert_eq!(decode::<Request>(&bytes).unwrap(), f);
        // Trailing garbage is refused even with a consistent length prefix.
        let mut longer = bytes[HEADER..].to_vec();
        longer.push(0);
        let mut framed = (longer.len() as u32).to_le_bytes().to_vec();
        framed.extend_from_slice(&longer);
        assert!(matches!(
            decode::<Request>(&framed),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn socket_round_trip_with_fd_and_large_frame() {
        let (a, b) = pair();
        let st = Stat {
            dev: 1,
            ino: 2,
            mode: 0o100644,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            size: 5,
            blksize: 4096,
            blocks: 8,
            atime: (1, 2),
            mtime: (3, 4),
            ctime: (5, 6),
        };
        let f = Frame {
            tag: 1,
            body: Reply::Opened { stat: st },
        };
        let devnull = std::fs::File::open("/dev/null").unwrap();
        send_frame(a.as_fd(), &f, &[devnull.as_raw_fd()]).unwrap();
        let (got, fds) = recv_frame::<Reply>(b.as_fd()).unwrap();
        assert_eq!(got, f);
        assert_eq!(fds.len(), 1);

        // A frame spanning many packets (sent from a thread: it exceeds the
        // socket buffer).
        let big = Frame {
            tag: 2,
            body: Reply::Link {
                target: vec![0xab; 1 << 20],
            },
        };
        let big2 = big.clone();
        let t = std::thread::spawn(move || send_frame(a.as_fd(), &big2, &[]).map(|_| a));
        let (got, fds) = recv_frame::<Reply>(b.as_fd()).unwrap();
        assert_eq!(got, big);
        assert!(fds.is_empty());
        let a = t.join().unwrap().unwrap();
        drop(a);
        assert!(matches!(
            recv_frame::<Reply>(b.as_fd()),
            Err(WireError::Eof)
        ));
    }

    #[test]
    fn oversize_length_rejected() {
        let (a, b) = pair();
        let mut pkt = (MAX_FRAME + 1).to_le_bytes().to_vec();
        pkt.extend_from_slice(&[0; 16]);
        raw_send(&a, &pkt);
        assert!(matches!(
            recv_frame::<Request>(b.as_fd()),
            Err(WireError::TooLarge(_))
        ));
        // Sending something too large is refused before touching the socket.
        let huge = Frame {
            tag: 0,
            body: Reply::Link {
                target: vec![0; MAX_FRAME as usize],
            },
        };
        assert!(matches!(
            send_frame(a.as_fd(), &huge, &[]),
            Err(WireError::TooLarge(_))
        ));
        // An oversize packet is reported as truncated.
        raw_send(&a, &vec![0u8; PACKET_MAX + 1]);
        assert!(matches!(
            recv_frame::<Request>(b.as_fd()),
            Err(WireError::Truncated)
        ));
    }

    #[test]
    fn garbage_body_rejected() {
        let (a, b) = pair();
        // Unknown enum tag.
        let body = [0u8, 0xff, 0xff, 0xff];
        let mut pkt = (body.len() as u32).to_le_bytes().to_vec();
        pkt.extend_from_slice(&body);
        raw_send(&a, &pkt);
        assert!(matches!(
            recv_frame::<Request>(b.as_fd()),
            Err(WireError::Malformed(_))
        ));
        // Length prefix larger than the data, then EOF mid-frame.
        let mut pkt = 100u32.to_le_bytes().to_vec();
        pkt.extend_from_slice(&[1, 2, 3]);
        raw_send(&a, &pkt);
        drop(a);
        assert!(matches!(
            recv_frame::<Request>(b.as_fd()),
            Err(WireError::Eof)
        ));

        let (a, b) = pair();
        // Length prefix smaller than the data.
        raw_send(&a, &[1, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            recv_frame::<Request>(b.as_fd()),
            Err(WireError::Malformed(_))
        ));
        // Short header.
        raw_send(&a, &[1, 0]);
        assert!(matches!(
            recv_frame::<Request>(b.as_fd()),
            Err(WireError::Malformed(_))
        ));
        // A Vec length claiming far more elements than bytes present.
        let mut body = vec![0u8, 2]; // tag varint 0, Walk variant index 2
        body.push(1); // dir
        body.extend_from_slice(&[0xfc, 0xff, 0xff, 0xff, 0x7f]); // huge len
        let mut pkt = (body.len() as u32).to_le_bytes().to_vec();
        pkt.extend_from_slice(&body);
        raw_send(&a, &pkt);
        assert!(matches!(
            recv_frame::<Request>(b.as_fd()),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn too_many_fds_rejected_and_closed() {
        let (a, b) = pair();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let fds = vec![devnull.as_raw_fd(); MAX_FDS + 1];
        let mut pkt = 1u32.to_le_bytes().to_vec();
        pkt.push(0);
        send_packet(a.as_fd(), &pkt, &[ControlMessage::ScmRights(&fds)]).unwrap();
        assert!(matches!(
            recv_frame::<Request>(b.as_fd()),
            Err(WireError::BadAncillary(_))
        ));
    }

    #[test]
    fn stream_socket_refused() {
        let (a, _b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        assert!(matches!(
            check_seqpacket(a.as_fd()),
            Err(WireError::NotSeqpacket)
        ));
    }
}
