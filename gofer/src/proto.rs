//! Gofer protocol v1: the wire types spoken between the sentry and the gofer.
//!
//! Frames are `u32` little-endian length + bincode-encoded body, over a
//! SOCK_SEQPACKET unix socket (see [`crate::wire`] for how a frame is split
//! into packets). Host fds travel beside a frame as SCM_RIGHTS. Every request carries a tag echoed in its reply so several
//! may be in flight. Node ids are per-connection, never reused.
//!
//! Decoding is strict: frames above [`MAX_FRAME`] are rejected, unknown enum
//! tags are rejected by bincode, names are single path components.

use serde::{Deserialize, Serialize};

/// Largest frame either side accepts.
pub const MAX_FRAME: u32 = 4 << 20;
/// Protocol version; the first request on a connection is `Version`.
pub const VERSION: u32 = 1;

/// A gofer-side file: a confined O_PATH handle, never a path.
pub type NodeId = u64;

/// Linux errno as a plain number (positive).
pub type Errno = i32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dirent {
    pub name: Vec<u8>,
    pub ino: u64,
    /// DT_* type as getdents64 reports it.
    pub kind: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatFs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Must be first: agree on the protocol version.
    Version { version: u32 },
    /// The root of served mount `mount` (0 = the rootfs). Returns `Reply::Node`.
    Attach { mount: u32 },
    /// Walk single components from `dir`, never following symlinks. Stops at
    /// the first component that fails; returns `Reply::Walked`.
    Walk { dir: NodeId, names: Vec<Vec<u8>> },
    /// lstat of the node. Returns `Reply::Stat`.
    Stat { node: NodeId },
    /// Open the node for I/O with these open(2) flags (O_CREAT, O_EXCL, O_TRUNC,
    /// O_NOFOLLOW, O_PATH are refused; O_NOCTTY|O_CLOEXEC|O_NONBLOCK forced).
    /// Returns `Reply::Opened` with the host fd attached by SCM_RIGHTS.
    Open { node: NodeId, flags: i32 },
    /// All entries of a directory node ("." and ".." excluded). Returns `Reply::Dirents`.
    Getdents { node: NodeId },
    /// Target of a symlink node. Returns `Reply::Link`.
    Readlink { node: NodeId },
    /// statfs of the filesystem holding the node. Returns `Reply::StatFs`.
    Statfs { node: NodeId },
    /// Forget a node id. Returns `Reply::Ok`.
    Close { node: NodeId },
    /// Create and open a regular file `name` in directory `dir` (writable
    /// roots only); the reply carries the open fd.
    Create {
        dir: NodeId,
        name: Vec<u8>,
        flags: i32,
        mode: u32,
    },
    Mkdir {
        dir: NodeId,
        name: Vec<u8>,
        mode: u32,
    },
    /// unlink, or rmdir when `dir_entry`.
    Unlink {
        dir: NodeId,
        name: Vec<u8>,
        dir_entry: bool,
    },
    /// renameat2 with RENAME_NOREPLACE / RENAME_EXCHANGE `flags`.
    Rename {
        dir: NodeId,
        name: Vec<u8>,
        new_dir: NodeId,
        new_name: Vec<u8>,
        flags: u32,
    },
    /// A symlink `name` in `dir` holding `target` (never followed by the
    /// gofer). Returns `Reply::Node`.
    Symlink {
        dir: NodeId,
        name: Vec<u8>,
        target: Vec<u8>,
    },
    /// A hard link `new_name` in `new_dir` to the non-directory `node` (same
    /// served root). Returns `Reply::Node`.
    Link {
        node: NodeId,
        new_dir: NodeId,
        new_name: Vec<u8>,
    },
    /// mknod of a FIFO or an empty regular file (no devices, no sockets).
    /// Returns `Reply::Node`.
    Mknod {
        dir: NodeId,
        name: Vec<u8>,
        mode: u32,
    },
    /// Change a regular file's or directory's attributes (writable roots).
    SetAttr { node: NodeId, attr: SetAttr },
    /// Value of the extended attribute `name` of the node (any root; a
    /// symlink's own attributes, never its target's). Returns `Reply::Xattr`.
    GetXattr { node: NodeId, name: Vec<u8> },
    /// The node's attribute names, each NUL-terminated, as listxattr(2)
    /// returns them. Returns `Reply::Xattr`.
    ListXattr { node: NodeId },
    /// setxattr(2) with XATTR_CREATE / XATTR_REPLACE `flags`: writable
    /// roots, `user.*` names, regular files and directories only.
    SetXattr {
        node: NodeId,
        name: Vec<u8>,
        value: Vec<u8>,
        flags: i32,
    },
    /// removexattr(2), with SetXattr's rules. Returns `Reply::Ok`.
    RemoveXattr { node: NodeId, name: Vec<u8> },
    /// Connect a new AF_UNIX socket of type `ty` (SOCK_STREAM, SOCK_DGRAM
    /// or SOCK_SEQPACKET) to the host socket file `node` in a bind mount.
    /// Refused (ECONNREFUSED) unless the gofer was started with
    /// `--host-uds open`. Returns `Reply::Connected` with the connected,
    /// non-blocking socket attached by SCM_RIGHTS.
    Connect { node: NodeId, ty: i32 },
}

/// What SetAttr changes; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<(i64, u32)>,
    pub mtime: Option<(i64, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    Error {
        errno: Errno,
    },
    Version {
        version: u32,
    },
    Node {
        node: NodeId,
        stat: Stat,
    },
    /// One entry per component walked successfully, in order; `error` is the
    /// errno of the first component that failed (None when all succeeded).
    Walked {
        nodes: Vec<(NodeId, Stat)>,
        error: Option<Errno>,
    },
    Stat {
        stat: Stat,
    },
    /// A host fd accompanies this reply.
    Opened {
        stat: Stat,
    },
    Dirents {
        entries: Vec<Dirent>,
    },
    Link {
        target: Vec<u8>,
    },
    StatFs {
        statfs: StatFs,
    },
    /// An attribute value, or a NUL-separated list of names.
    Xattr {
        value: Vec<u8>,
    },
    /// A connected host socket accompanies this reply.
    Connected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame<T> {
    pub tag: u64,
    pub body: T,
}
