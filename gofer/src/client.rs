//! The sentry's side of the gofer protocol.
//!
//! Every method returns a positive Linux errno on failure. Errors the gofer
//! reports are passed through; any transport or protocol failure (gofer
//! dead, EOF, garbage, a reply that does not match the request) becomes
//! `EIO`, and from then on the client is failed: the socket is closed and
//! every later call returns `EIO` at once.
//!
//! v1 sends one request at a time (a mutex serialises callers).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use crate::proto::{Dirent, Errno, Frame, NodeId, Reply, Request, Stat, StatFs, VERSION};
use crate::wire;

const EIO: i32 = libc::EIO;
/// Largest attribute value or name list a reply may carry (Linux's
/// XATTR_SIZE_MAX and XATTR_LIST_MAX).
const XATTR_SIZE_MAX: usize = 65536;

/// Result of [`Client::walk`]: the nodes walked, in order, and the errno of
/// the component that stopped the walk (`None` if all were walked).
pub type Walked = (Vec<(NodeId, Stat)>, Option<i32>);

/// A connection to a gofer.
pub struct Client {
    inner: Mutex<Inner>,
}

struct Inner {
    /// `None` once the connection has failed.
    sock: Option<OwnedFd>,
    next_tag: u64,
}

impl Client {
    /// Takes over `sock` (a connected `SOCK_SEQPACKET` unix socket) and
    /// performs the `Version` handshake. `EINVAL` if `sock` is not a
    /// seqpacket socket, `EIO` if the handshake fails.
    pub fn new(sock: OwnedFd) -> Result<Client, i32> {
        if let Err(e) = wire::check_seqpacket(sock.as_fd()) {
            tracing::debug!("gofer client: {e}");
            return Err(libc::EINVAL);
        }
        let client = Client {
            inner: Mutex::new(Inner {
                sock: Some(sock),
                next_tag: 1,
            }),
        };
        match client.call(Request::Version { version: VERSION }) {
            Ok((Reply::Version { version }, fds)) if version == VERSION && fds.is_empty() => {
                Ok(client)
            }
            Ok(_) => Err(client.fail("bad version reply")),
            Err(e) => {
                // Even a gofer-reported errno on Version means we cannot talk.
                client.fail("version refused");
                tracing::debug!("gofer client: handshake failed: errno {e}");
                Err(EIO)
            }
        }
    }

    /// Whether a transport or protocol failure has made the client unusable.
    pub fn is_failed(&self) -> bool {
        self.lock().sock.is_none()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another caller panicked mid-call; the
        // state is still consistent enough to fail cleanly.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the client failed and returns EIO.
    fn fail(&self, why: &str) -> i32 {
        // Said once, when the connection is lost; every later call is EIO.
        if self.lock().sock.take().is_some() {
            tracing::error!("lost the gofer ({why}): file operations now fail with EIO");
        }
        EIO
    }

    /// One request/reply exchange. `Reply::Error` becomes `Err(errno)`;
    /// transport failures fail the client.
    fn call(&self, req: Request) -> Result<(Reply, Vec<OwnedFd>), i32> {
        let mut inner = self.lock();
        let tag = inner.next_tag;
        inner.next_tag = inner.next_tag.wrapping_add(1);
        let Some(sock) = inner.sock.as_ref() else {
            return Err(EIO);
        };
        let result = wire::send_frame(sock.as_fd(), &Frame { tag, body: req }, &[])
            .and_then(|()| wire::recv_frame::<Reply>(sock.as_fd()));
        let (frame, fds) = match result {
            Ok(r) => r,
            Err(e) => {
                inner.sock = None;
                tracing::error!("lost the gofer ({e}): file operations now fail with EIO");
                return Err(EIO);
            }
        };
        if frame.tag != tag {
            inner.sock = None;
            tracing::error!(
                "lost the gofer (reply tag {} for request {tag}): file operations now fail with EIO",
                frame.tag
            );
            return Err(EIO);
        }
        match frame.body {
            Reply::Error { errno } => {
                if valid_errno(errno) && fds.is_empty() {
                    Err(errno)
                } else {
                    inner.sock = None;
                    tracing::error!(
                        "lost the gofer (bad error reply {errno}): file operations now fail with EIO"
                    );
                    Err(EIO)
                }
            }
            body => Ok((body, fds)),
        }
    }

    /// Like `call` for replies that carry no fds; `check` maps the expected
    /// reply to the result or returns None for a protocol violation.
    fn call_plain<R>(
        &self,
        req: Request,
        check: impl FnOnce(Reply) -> Option<R>,
    ) -> Result<R, i32> {
        let (reply, fds) = self.call(req)?;
        if !fds.is_empty() {
            return Err(self.fail("unexpected fds"));
        }
        check(reply).ok_or_else(|| self.fail("unexpected reply"))
    }

    /// The root of served mount `mount` (0 = rootfs).
    pub fn attach(&self, mount: u32) -> Result<(NodeId, Stat), i32> {
        self.call_plain(Request::Attach { mount }, |r| match r {
            Reply::Node { node, stat } => Some((node, stat)),
            _ => None,
        })
    }

    /// Walks `names` (single components) from directory `dir`, never
    /// following symlinks. Returns the nodes walked and, if the walk stopped
    /// early, the errno of the component that failed.
    pub fn walk(&self, dir: NodeId, names: &[&[u8]]) -> Result<Walked, i32> {
        let req = Request::Walk {
            dir,
            names: names.iter().map(|n| n.to_vec()).collect(),
        };
        let want = names.len();
        self.call_plain(req, |r| match r {
            Reply::Walked { nodes, error } => {
                let ok = match error {
                    None => nodes.len() == want,
                    Some(e) => nodes.len() < want && valid_errno(e),
                };
                ok.then_some((nodes, error))
            }
            _ => None,
        })
    }

    /// lstat of a node.
    pub fn stat(&self, node: NodeId) -> Result<Stat, i32> {
        self.call_plain(Request::Stat { node }, |r| match r {
            Reply::Stat { stat } => Some(stat),
            _ => None,
        })
    }

    /// Opens a node (regular file or directory) with open(2) `flags`;
    /// returns the host fd and its stat. The client checks that the fd is a
    /// regular file or directory matching that stat (else `EIO`).
    pub fn open(&self, node: NodeId, flags: i32) -> Result<(OwnedFd, Stat), i32> {
        let (reply, mut fds) = self.call(Request::Open { node, flags })?;
        match reply {
            Reply::Opened { stat } if fds.len() == 1 => match fds.pop() {
                Some(fd) if donated_fd_matches(&fd, &stat) => Ok((fd, stat)),
                _ => Err(self.fail("bad fd donated by open")),
            },
            _ => Err(self.fail("unexpected reply to open")),
        }
    }

    /// A socket of type `ty` connected to the host socket file `node`
    /// (non-blocking; see `Request::Connect`).
    pub fn connect(&self, node: NodeId, ty: i32) -> Result<OwnedFd, i32> {
        let (reply, mut fds) = self.call(Request::Connect { node, ty })?;
        match reply {
            Reply::Connected if fds.len() == 1 => match fds.pop() {
                Some(fd) if is_socket(&fd) => Ok(fd),
                _ => Err(self.fail("bad fd donated by connect")),
            },
            _ => Err(self.fail("unexpected reply to connect")),
        }
    }

    /// Creates and opens `name` in `dir` (O_CREAT|O_EXCL semantics).
    pub fn create(
        &self,
        dir: NodeId,
        name: &[u8],
        flags: i32,
        mode: u32,
    ) -> Result<(NodeId, Stat, OwnedFd), i32> {
        let (reply, mut fds) = self.call(Request::Create {
            dir,
            name: name.to_vec(),
            flags,
            mode,
        })?;
        match reply {
            Reply::Node { node, stat } if fds.len() == 1 => match fds.pop() {
                Some(fd) if donated_fd_matches(&fd, &stat) => Ok((node, stat, fd)),
                _ => Err(self.fail("bad fd donated by create")),
            },
            _ => Err(self.fail("unexpected reply to create")),
        }
    }

    /// A request answered by a new node (mkdir, symlink, link, mknod).
    fn call_node(&self, req: Request) -> Result<(NodeId, Stat), i32> {
        self.call_plain(req, |r| match r {
            Reply::Node { node, stat } => Some((node, stat)),
            _ => None,
        })
    }

    pub fn mkdir(&self, dir: NodeId, name: &[u8], mode: u32) -> Result<(NodeId, Stat), i32> {
        let req = Request::Mkdir {
            dir,
            name: name.to_vec(),
            mode,
        };
        self.call_node(req)
    }

    pub fn symlink(&self, dir: NodeId, name: &[u8], target: &[u8]) -> Result<(NodeId, Stat), i32> {
        let req = Request::Symlink {
            dir,
            name: name.to_vec(),
            target: target.to_vec(),
        };
        self.call_node(req)
    }

    pub fn link(
        &self,
        node: NodeId,
        new_dir: NodeId,
        new_name: &[u8],
    ) -> Result<(NodeId, Stat), i32> {
        let req = Request::Link {
            node,
            new_dir,
            new_name: new_name.to_vec(),
        };
        self.call_node(req)
    }

    pub fn mknod(&self, dir: NodeId, name: &[u8], mode: u32) -> Result<(NodeId, Stat), i32> {
        let req = Request::Mknod {
            dir,
            name: name.to_vec(),
            mode,
        };
        self.call_node(req)
    }

    pub fn unlink(&self, dir: NodeId, name: &[u8], dir_entry: bool) -> Result<(), i32> {
        let req = Request::Unlink {
            dir,
            name: name.to_vec(),
            dir_entry,
        };
        self.call_plain(req, |r| matches!(r, Reply::Ok).then_some(()))
    }

    pub fn rename(
        &self,
        dir: NodeId,
        name: &[u8],
        new_dir: NodeId,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), i32> {
        let req = Request::Rename {
            dir,
            name: name.to_vec(),
            new_dir,
            new_name: new_name.to_vec(),
            flags,
        };
        self.call_plain(req, |r| matches!(r, Reply::Ok).then_some(()))
    }

    /// Changes attributes of a node of a writable root; returns its stat.
    pub fn setattr(&self, node: NodeId, attr: crate::proto::SetAttr) -> Result<Stat, i32> {
        self.call_plain(Request::SetAttr { node, attr }, |r| match r {
            Reply::Stat { stat } => Some(stat),
            _ => None,
        })
    }

    /// All entries of a directory node, without "." and "..".
    pub fn getdents(&self, node: NodeId) -> Result<Vec<Dirent>, i32> {
        self.call_plain(Request::Getdents { node }, |r| match r {
            Reply::Dirents { entries } => entries
                .iter()
                .all(|d| valid_name(&d.name))
                .then_some(entries),
            _ => None,
        })
    }

    /// Target of a symlink node.
    pub fn readlink(&self, node: NodeId) -> Result<Vec<u8>, i32> {
        self.call_plain(Request::Readlink { node }, |r| match r {
            Reply::Link { target } => (!target.contains(&0)).then_some(target),
            _ => None,
        })
    }

    /// statfs of the filesystem holding a node.
    pub fn statfs(&self, node: NodeId) -> Result<StatFs, i32> {
        self.call_plain(Request::Statfs { node }, |r| match r {
            Reply::StatFs { statfs } => Some(statfs),
            _ => None,
        })
    }

    /// Value of extended attribute `name` of a node.
    pub fn getxattr(&self, node: NodeId, name: &[u8]) -> Result<Vec<u8>, i32> {
        let req = Request::GetXattr {
            node,
            name: name.to_vec(),
        };
        self.call_plain(req, |r| match r {
            Reply::Xattr { value } if value.len() <= XATTR_SIZE_MAX => Some(value),
            _ => None,
        })
    }

    /// Attribute names of a node, each NUL-terminated.
    pub fn listxattr(&self, node: NodeId) -> Result<Vec<u8>, i32> {
        self.call_plain(Request::ListXattr { node }, |r| match r {
            Reply::Xattr { value }
                if value.len() <= XATTR_SIZE_MAX && value.last().is_none_or(|&b| b == 0) =>
            {
                Some(value)
            }
            _ => None,
        })
    }

    /// setxattr(2) on a node of a writable root (`user.*` only).
    pub fn setxattr(&self, node: NodeId, name: &[u8], value: &[u8], flags: i32) -> Result<(), i32> {
        let req = Request::SetXattr {
            node,
            name: name.to_vec(),
            value: value.to_vec(),
            flags,
        };
        self.call_plain(req, |r| matches!(r, Reply::Ok).then_some(()))
    }

    /// removexattr(2) on a node of a writable root (`user.*` only).
    pub fn removexattr(&self, node: NodeId, name: &[u8]) -> Result<(), i32> {
        let req = Request::RemoveXattr {
            node,
            name: name.to_vec(),
        };
        self.call_plain(req, |r| matches!(r, Reply::Ok).then_some(()))
    }

    /// Forgets a node id.
    pub fn close(&self, node: NodeId) -> Result<(), i32> {
        self.call_plain(Request::Close { node }, |r| match r {
            Reply::Ok => Some(()),
            _ => None,
        })
    }
}

/// The fd a gofer donates must be the regular file or directory its reply
/// describes, never something else the peer happens to hold.
fn donated_fd_matches(fd: &OwnedFd, stat: &Stat) -> bool {
    let Ok(st) = nix::sys::stat::fstat(fd.as_raw_fd()) else {
        return false;
    };
    let kind = st.st_mode & libc::S_IFMT;
    (kind == libc::S_IFREG || kind == libc::S_IFDIR)
        && kind == stat.mode & libc::S_IFMT
        && st.st_ino == stat.ino
        && st.st_dev == stat.dev
}

fn is_socket(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

fn valid_errno(e: Errno) -> bool {
    (1..4096).contains(&e)
}

/// A single path component: non-empty, no '/', no NUL, not "." or "..".
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == 0)
}
