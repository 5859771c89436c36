//! Client and server over a socketpair, against a temporary directory.

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::thread::JoinHandle;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::*;
use crate::client::Client;
use crate::confine::{confine_in_place, MountSpec};

fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap()
}

/// tree:
///   a/b/c.txt  "hello"
///   file.txt   "content"
///   link       -> /etc/passwd
///   fifo
fn make_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let p = t.path();
    fs::create_dir_all(p.join("a/b")).unwrap();
    fs::write(p.join("a/b/c.txt"), b"hello").unwrap();
    fs::write(p.join("file.txt"), b"content").unwrap();
    symlink("/etc/passwd", p.join("link")).unwrap();
    nix::unistd::mkfifo(
        &p.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    t
}

struct Fixture {
    client: Client,
    server: JoinHandle<Result<(), Error>>,
    _dir: tempfile::TempDir,
}

/// Mount 0: the tree read-write; 1: the tree read-only; 2: file.txt alone.
fn start() -> Fixture {
    let dir = make_tree();
    let specs = [
        MountSpec {
            host_path: dir.path().to_path_buf(),
            readonly: false,
        },
        MountSpec {
            host_path: dir.path().to_path_buf(),
            readonly: true,
        },
        MountSpec {
            host_path: dir.path().join("file.txt"),
            readonly: true,
        },
    ];
    let roots = confine_in_place(&specs).unwrap();
    let (c, s) = seqpacket_pair();
    let server = std::thread::spawn(move || serve(s, roots, false));
    let client = Client::new(c).unwrap();
    Fixture {
        client,
        server,
        _dir: dir,
    }
}

impl Fixture {
    fn finish(self) {
        drop(self.client);
        self.server.join().unwrap().unwrap();
    }
}

fn kind(st: &Stat) -> u32 {
    st.mode & libc::S_IFMT
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut f = fs::File::from(fd);
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn attach_and_walk_nested() {
    let f = start();
    let (root, st) = f.client.attach(0).unwrap();
    assert_eq!(kind(&st), libc::S_IFDIR);
    let (nodes, err) = f.client.walk(root, &[b"a", b"b", b"c.txt"]).unwrap();
    assert_eq!(err, None);
    assert_eq!(nodes.len(), 3);
    assert_eq!(kind(&nodes[0].1), libc::S_IFDIR);
    assert_eq!(kind(&nodes[1].1), libc::S_IFDIR);
    assert_eq!(kind(&nodes[2].1), libc::S_IFREG);
    assert_eq!(nodes[2].1.size, 5);
    assert_eq!(f.client.stat(nodes[2].0).unwrap(), nodes[2].1);
    let (fd, _) = f.client.open(nodes[2].0, libc::O_RDONLY).unwrap();
    assert_eq!(read_all(fd), b"hello");
    // Ids are distinct and never reused.
    let ids: Vec<_> = nodes.iter().map(|n| n.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > root);
    f.client.close(ids[2]).unwrap();
    let (again, _) = f.client.walk(ids[1], &[b"c.txt"]).unwrap();
    assert!(again[0].0 > ids[2]);
    // Children outlive their closed parents.
    f.client.close(ids[1]).unwrap();
    assert_eq!(kind(&f.client.stat(again[0].0).unwrap()), libc::S_IFREG);
    let (fd, _) = f.client.open(again[0].0, libc::O_RDONLY).unwrap();
    assert_eq!(read_all(fd), b"hello");
    f.finish();
}

#[test]
fn walk_rejects_bad_names() {
    let f = start();
    let (root, _) = f.client.attach(0).unwrap();
    for bad in [&b".."[..], b".", b"a/b", b"", b"a\0b", b"/a"] {
        let (nodes, err) = f.client.walk(root, &[bad]).unwrap();
        assert!(nodes.is_empty(), "{bad:?}");
        assert_eq!(err, Some(libc::EINVAL), "{bad:?}");
    }
    let (nodes, err) = f.client.walk(root, &[b"a", b"..", b"a"]).unwrap();
    assert_eq!((nodes.len(), err), (1, Some(libc::EINVAL)));
    let (nodes, err) = f.client.walk(root, &[b"nope"]).unwrap();
    assert_eq!((nodes.len(), err), (0, Some(libc::ENOENT)));
    let (nodes, err) = f.client.walk(root, &[b"file.txt", b"x"]).unwrap();
    assert_eq!((nodes.len(), err), (1, Some(libc::ENOTDIR)));
    let (nodes, err) = f.client.walk(root, &[]).unwrap();
    assert_eq!((nodes.len(), err), (0, None));
    f.finish();
}

#[test]
fn symlink_is_not_followed() {
    let f = start();
    let (root, _) = f.client.attach(0).unwrap();
    let (nodes, err) = f.client.walk(root, &[b"link"]).unwrap();
    assert_eq!(err, None);
    let (link, st) = nodes[0];
    assert_eq!(kind(&st), libc::S_IFLNK);
    assert_eq!(f.client.open(link, libc::O_RDONLY).err(), Some(libc::ELOOP));
    assert_eq!(f.client.readlink(link).unwrap(), b"/etc/passwd");
    let (nodes, err) = f.client.walk(link, &[b"x"]).unwrap();
    assert_eq!((nodes.len(), err), (0, Some(libc::ENOTDIR)));
    // readlink of a non-symlink.
    assert_eq!(f.client.readlink(root).err(), Some(libc::EINVAL));
    f.finish();
}

#[test]
fn open_checks() {
    let f = start();
    let (root, _) = f.client.attach(0).unwrap();
    let (nodes, _) = f.client.walk(root, &[b"file.txt"]).unwrap();
    let file = nodes[0].0;
    let (fd, st) = f.client.open(file, libc::O_RDONLY).unwrap();
    assert_eq!(kind(&st), libc::S_IFREG);
    let fl = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert_ne!(fl & libc::FD_CLOEXEC, 0);
    assert_eq!(read_all(fd), b"content");
    let (fd, _) = f
        .client
        .open(file, libc::O_RDONLY | KERNEL_O_LARGEFILE)
        .unwrap();
    drop(fd);
    // Write access on the read-write root works.
    let (fd, _) = f.client.open(file, libc::O_RDWR | libc::O_APPEND).unwrap();
    drop(fd);
    // Truncation needs write access.
    let (fd, _) = f.client.open(file, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    drop(fd);
    for bad in [
        libc::O_CREAT,
        libc::O_EXCL,
        libc::O_TRUNC,
        libc::O_PATH,
        libc::O_NOFOLLOW,
        libc::O_TMPFILE,
        libc::O_ACCMODE,
        libc::O_ASYNC,
    ] {
        assert_eq!(
            f.client.open(file, bad).err(),
            Some(libc::EINVAL),
            "{bad:#x}"
        );
    }
    assert_eq!(
        f.client
            .open(file, libc::O_RDONLY | libc::O_DIRECTORY)
            .err(),
        Some(libc::ENOTDIR)
    );
    assert_eq!(
        f.client.open(root, libc::O_WRONLY).err(),
        Some(libc::EISDIR)
    );
    let (fd, st) = f
        .client
        .open(root, libc::O_RDONLY | libc::O_DIRECTORY)
        .unwrap();
    assert_eq!(kind(&st), libc::S_IFDIR);
    drop(fd);
    // A FIFO is refused (and does not block the gofer).
    let (nodes, _) = f.client.walk(root, &[b"fifo"]).unwrap();
    assert_eq!(kind(&nodes[0].1), libc::S_IFIFO);
    assert_eq!(
        f.client.open(nodes[0].0, libc::O_RDONLY).err(),
        Some(libc::ENXIO)
    );
    assert_eq!(
        f.client.open(nodes[0].0, libc::O_WRONLY).err(),
        Some(libc::ENXIO)
    );
    f.finish();
}

#[test]
fn replaced_file_is_stale() {
    let f = start();
    let (root, _) = f.client.attach(0).unwrap();
    let (nodes, _) = f.client.walk(root, &[b"a", b"b", b"c.txt"]).unwrap();
    let dir = f._dir.path().join("a/b");
    fs::write(dir.join("new"), b"other").unwrap();
    fs::rename(dir.join("new"), dir.join("c.txt")).unwrap();
    assert_eq!(
        f.client.open(nodes[2].0, libc::O_RDONLY).err(),
        Some(libc::ESTALE)
    );
    f.finish();
}

#[test]
fn readonly_root_refuses_writes() {
    let f = start();
    let (root, _) = f.client.attach(1).unwrap();
    let (nodes, _) = f.client.walk(root, &[b"file.txt"]).unwrap();
    let file = nodes[0].0;
    assert_eq!(f.client.open(file, libc::O_WRONLY).err(), Some(libc::EROFS));
    assert_eq!(f.client.open(file, libc::O_RDWR).err(), Some(libc::EROFS));
    let (fd, _) = f.client.open(file, libc::O_RDONLY).unwrap();
    assert_eq!(read_all(fd), b"content");
    f.finish();
}

#[test]
fn file_root() {
    let f = start();
    let (root, st) = f.client.attach(2).unwrap();
    assert_eq!(kind(&st), libc::S_IFREG);
    let (fd, _) = f.client.open(root, libc::O_RDONLY).unwrap();
    assert_eq!(read_all(fd), b"content");
    assert_eq!(f.client.open(root, libc::O_RDWR).err(), Some(libc::EROFS));
    let (nodes, err) = f.client.walk(root, &[b"x"]).unwrap();
    assert_eq!((nodes.len(), err), (0, Some(libc::ENOTDIR)));
    f.finish();
}

#[test]
fn getdents_lists_names_and_types() {
    let f = start();
    let (root, _) = f.client.attach(0).unwrap();
    let mut ents = f.client.getdents(root).unwrap();
    ents.sort_by(|a, b| a.name.cmp(&b.name));
    let got: Vec<(&[u8], u8)> = ents.iter().map(|d| (&d.name[..], d.kind)).collect();
    assert_eq!(
        got,
        vec![
            (&b"a"[..], libc::DT_DIR),
            (b"fifo", libc::DT_FIFO),
            (b"file.txt", libc::DT_REG),
            (b"link", libc::DT_LNK),
        ]
    );
    let (nodes, _) = f.client.walk(root, &[b"file.txt"]).unwrap();
    assert_eq!(ents[2].ino, nodes[0].1.ino);
    assert_eq!(f.client.getdents(nodes[0].0).err(), Some(libc::ENOTDIR));
    f.finish();
}

#[test]
fn getdents_large_directory() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3000 {
        fs::write(
            dir.path().join(format!("some-longish-file-name-{i:05}")),
            b"",
        )
        .unwrap();
    }
    let roots = confine_in_place(&[MountSpec {
        host_path: dir.path().to_path_buf(),
        readonly: true,
    }])
    .unwrap();
    let (c, s) = seqpacket_pair();
    let server = std::thread::spawn(move || serve(s, roots, false));
    let client = Client::new(c).unwrap();
    let (root, _) = client.attach(0).unwrap();
    assert_eq!(client.getdents(root).unwrap().len(), 3000);
    drop(client);
    server.join().unwrap().unwrap();
}

#[test]
fn statfs_works() {
    let f = start();
    let (root, _) = f.client.attach(0).unwrap();
    let sf = f.client.statfs(root).unwrap();
    assert!(sf.bsize > 0 && sf.namelen > 0);
    let want = nix::sys::statfs::statfs(f._dir.path()).unwrap();
    assert_eq!(sf.blocks, want.blocks());
    f.finish();
}

#[test]
fn unknown_nodes_and_mounts() {
    let f = start();
    assert_eq!(f.client.attach(3).err(), Some(libc::ENOENT));
    assert_eq!(f.client.attach(u32::MAX).err(), Some(libc::ENOENT));
    assert_eq!(f.client.stat(999).err(), Some(libc::EBADF));
    assert_eq!(f.client.open(999, 0).err(), Some(libc::EBADF));
    assert_eq!(f.client.walk(999, &[b"a"]).err(), Some(libc::EBADF));
    assert_eq!(f.client.getdents(0).err(), Some(libc::EBADF));
    assert_eq!(f.client.readlink(999).err(), Some(libc::EBADF));
    assert_eq!(f.client.statfs(999).err(), Some(libc::EBADF));
    let (root, _) = f.client.attach(0).unwrap();
    f.client.close(root).unwrap();
    assert_eq!(f.client.close(root).err(), Some(libc::EBADF));
    assert_eq!(f.client.stat(root).err(), Some(libc::EBADF));
    assert!(!f.client.is_failed());
    f.finish();
}

/// A fake gofer that answers the handshake, then runs `then` on its socket.
fn fake_gofer(then: impl FnOnce(OwnedFd) + Send + 'static) -> (Client, JoinHandle<()>) {
    let (c, s) = seqpacket_pair();
    let h = std::thread::spawn(move || {
        let (req, _) = wire::recv_frame::<Request>(s.as_fd()).unwrap();
        let reply = Frame {
            tag: req.tag,
            body: Reply::Version { version: VERSION },
        };
        wire::send_frame(s.as_fd(), &reply, &[]).unwrap();
        then(s);
    });
    (Client::new(c).unwrap(), h)
}

#[test]
fn client_fails_with_eio_after_gofer_dies() {
    let (client, h) = fake_gofer(drop);
    h.join().unwrap();
    assert_eq!(client.attach(0).err(), Some(libc::EIO));
    assert!(client.is_failed());
    assert_eq!(client.stat(1).err(), Some(libc::EIO));
    assert_eq!(client.close(1).err(), Some(libc::EIO));
}

#[test]
fn client_fails_on_garbage_and_mismatches() {
    // Raw garbage packet.
    let (client, h) = fake_gofer(|s| {
        let _ = wire::recv_frame::<Request>(s.as_fd()).unwrap();
        nix::sys::socket::send(
            s.as_raw_fd(),
            b"\x03\0\0\0xyz",
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        // Keep the socket open: the client must not wait for more.
        std::thread::sleep(std::time::Duration::from_millis(200));
    });
    assert_eq!(client.attach(0).err(), Some(libc::EIO));
    assert_eq!(client.attach(0).err(), Some(libc::EIO));
    h.join().unwrap();

    // Wrong tag, wrong reply kind, unsolicited fd, bogus errno, bad dirent.
    let replies: Vec<(Reply, bool)> = vec![
        (Reply::Ok, false),
        (Reply::Error { errno: -5 }, false),
        (
            Reply::Node {
                node: 1,
                stat: Stat {
                    dev: 0,
                    ino: 0,
                    mode: 0,
                    nlink: 0,
                    uid: 0,
                    gid: 0,
                    rdev: 0,
                    size: 0,
                    blksize: 0,
                    blocks: 0,
                    atime: (0, 0),
                    mtime: (0, 0),
                    ctime: (0, 0),
                },
            },
            true,
        ),
    ];
    for (i, (reply, with_fd)) in replies.into_iter().enumerate() {
        let (client, h) = fake_gofer(move |s| {
            let (req, _) = wire::recv_frame::<Request>(s.as_fd()).unwrap();
            let devnull = fs::File::open("/dev/null").unwrap();
            let fds = if with_fd {
                vec![devnull.as_raw_fd()]
            } else {
                vec![]
            };
            let tag = if i == 0 { req.tag + 1 } else { req.tag };
            let _ = wire::send_frame(s.as_fd(), &Frame { tag, body: reply }, &fds);
        });
        assert_eq!(client.attach(0).err(), Some(libc::EIO), "case {i}");
        assert!(client.is_failed());
        h.join().unwrap();
    }

    // Open donating a device (described as one, or as a regular file).
    for claim in [libc::S_IFCHR, libc::S_IFREG] {
        let (client, h) = fake_gofer(move |s| {
            let (req, _) = wire::recv_frame::<Request>(s.as_fd()).unwrap();
            let devnull = fs::File::open("/dev/null").unwrap();
            let mut stat = convert_stat(&fd_stat(devnull.as_fd()).unwrap());
            stat.mode = (stat.mode & !libc::S_IFMT) | claim;
            let body = Reply::Opened { stat };
            let fds = [devnull.as_raw_fd()];
            let _ = wire::send_frame(s.as_fd(), &Frame { tag: req.tag, body }, &fds);
        });
        assert_eq!(client.open(1, 0).err(), Some(libc::EIO));
        h.join().unwrap();
    }

    let (client, h) = fake_gofer(|s| {
        let (req, _) = wire::recv_frame::<Request>(s.as_fd()).unwrap();
        let body = Reply::Dirents {
            entries: vec![Dirent {
                name: b"../x".to_vec(),
                ino: 1,
                kind: 0,
            }],
        };
        let _ = wire::send_frame(s.as_fd(), &Frame { tag: req.tag, body }, &[]);
    });
    assert_eq!(client.getdents(1).err(), Some(libc::EIO));
    h.join().unwrap();
}

#[test]
fn client_rejects_stream_socket_and_bad_handshake() {
    let (a, _b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    assert_eq!(Client::new(a).err(), Some(libc::EINVAL));

    let (c, s) = seqpacket_pair();
    drop(s);
    assert_eq!(Client::new(c).err(), Some(libc::EIO));
}

#[test]
fn server_refuses_hostile_peers() {
    let roots = || {
        confine_in_place(&[MountSpec {
            host_path: Path::new("/").to_path_buf(),
            readonly: true,
        }])
        .unwrap()
    };

    // First request is not Version.
    let (c, s) = seqpacket_pair();
    let r = roots();
    let h = std::thread::spawn(move || serve(s, r, false));
    wire::send_frame(
        c.as_fd(),
        &Frame {
            tag: 9,
            body: Request::Attach { mount: 0 },
        },
        &[],
    )
    .unwrap();
    let (reply, _) = wire::recv_frame::<Reply>(c.as_fd()).unwrap();
    assert_eq!(reply.tag, 9);
    assert_eq!(
        reply.body,
        Reply::Error {
            errno: libc::EPROTO
        }
    );
    assert!(matches!(h.join().unwrap(), Err(Error::Protocol(_))));

    // Wrong version.
    let (c, s) = seqpacket_pair();
    let r = roots();
    let h = std::thread::spawn(move || serve(s, r, false));
    wire::send_frame(
        c.as_fd(),
        &Frame {
            tag: 1,
            body: Request::Version { version: 99 },
        },
        &[],
    )
    .unwrap();
    let (reply, _) = wire::recv_frame::<Reply>(c.as_fd()).unwrap();
    assert_eq!(
        reply.body,
        Reply::Error {
            errno: libc::EPROTONOSUPPORT
        }
    );
    assert!(h.join().unwrap().is_err());

    // Garbage frame.
    let (c, s) = seqpacket_pair();
    let r = roots();
    let h = std::thread::spawn(move || serve(s, r, false));
    nix::sys::socket::send(
        c.as_raw_fd(),
        b"\x02\0\0\0\xff\xff",
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    assert!(matches!(h.join().unwrap(), Err(Error::Wire(_))));

    // A request carrying an fd.
    let (c, s) = seqpacket_pair();
    let r = roots();
    let h = std::thread::spawn(move || serve(s, r, false));
    let devnull = fs::File::open("/dev/null").unwrap();
    wire::send_frame(
        c.as_fd(),
        &Frame {
            tag: 1,
            body: Request::Version { version: VERSION },
        },
        &[devnull.as_raw_fd()],
    )
    .unwrap();
    assert!(matches!(h.join().unwrap(), Err(Error::Protocol(_))));
}

#[test]
fn client_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Client>();
}

#[test]
fn create_mkdir_unlink_rename_on_writable_root() {
    let f = start();
    let root = f.client.attach(0).unwrap().0;
    let base = f._dir.path().to_path_buf();
    let (node, st, fd) = f
        .client
        .create(root, b"new.txt", libc::O_RDWR, 0o640)
        .unwrap();
    assert_eq!(kind(&st), libc::S_IFREG);
    // The mode asked for, less the gofer's umask.
    assert_eq!(st.mode & 0o777 & !0o640, 0);
    assert_eq!(st.mode & 0o600, 0o600);
    nix::sys::uio::pwrite(&fd, b"written", 0).unwrap();
    assert_eq!(fs::read(base.join("new.txt")).unwrap(), b"written");
    assert_eq!(f.client.stat(node).unwrap().size, 7);
    // O_EXCL: an existing name is EEXIST, a bad name EINVAL.
    assert_eq!(
        f.client.create(root, b"new.txt", libc::O_RDWR, 0o644).err(),
        Some(libc::EEXIST)
    );
    assert_eq!(
        f.client.create(root, b"../x", libc::O_RDWR, 0o644).err(),
        Some(libc::EINVAL)
    );
    // Creating through a symlinked name does not follow it.
    assert_eq!(
        f.client.create(root, b"link", libc::O_RDWR, 0o644).err(),
        Some(libc::EEXIST)
    );
    let (dnode, dst) = f.client.mkdir(root, b"d", 0o755).unwrap();
    assert_eq!(kind(&dst), libc::S_IFDIR);
    assert!(base.join("d").is_dir());
    f.client
        .rename(root, b"new.txt", dnode, b"moved.txt", 0)
        .unwrap();
    assert_eq!(fs::read(base.join("d/moved.txt")).unwrap(), b"written");
    assert_eq!(f.client.unlink(dnode, b"d", true).err(), Some(libc::ENOENT));
    assert_eq!(
        f.client.unlink(root, b"d", true).err(),
        Some(libc::ENOTEMPTY)
    );
    f.client.unlink(dnode, b"moved.txt", false).unwrap();
    f.client.unlink(root, b"d", true).unwrap();
    assert!(!base.join("d").exists());
    // The read-only root refuses every change; renames across roots are EXDEV.
    let ro = f.client.attach(1).unwrap().0;
    assert_eq!(
        f.client.create(ro, b"x", libc::O_RDWR, 0o644).err(),
        Some(libc::EROFS)
    );
    assert_eq!(f.client.mkdir(ro, b"x", 0o755).err(), Some(libc::EROFS));
    assert_eq!(
        f.client.unlink(ro, b"file.txt", false).err(),
        Some(libc::EROFS)
    );
    assert_eq!(
        f.client.rename(ro, b"file.txt", root, b"y", 0).err(),
        Some(libc::EROFS)
    );
    assert!(base.join("file.txt").exists());
    // Symlinks, hard links and FIFOs in the writable root only; a link
    // never leaves its root, mknod makes no devices.
    let (_, st) = f.client.symlink(root, b"sl", b"/etc/passwd").unwrap();
    assert_eq!(kind(&st), libc::S_IFLNK);
    assert_eq!(
        fs::read_link(base.join("sl")).unwrap().to_str(),
        Some("/etc/passwd")
    );
    assert_eq!(f.client.symlink(ro, b"sl", b"x").err(), Some(libc::EROFS));
    let (fnode, _) = f.client.walk(root, &[b"file.txt"]).unwrap().0[0];
    let (_, st) = f.client.link(fnode, root, b"hard").unwrap();
    assert_eq!(st.nlink, 2);
    let (ronode, _) = f.client.walk(ro, &[b"file.txt"]).unwrap().0[0];
    assert_eq!(
        f.client.link(ronode, root, b"cross").err(),
        Some(libc::EXDEV)
    );
    let (_, st) = f
        .client
        .mknod(root, b"newfifo", libc::S_IFIFO | 0o600)
        .unwrap();
    assert_eq!(kind(&st), libc::S_IFIFO);
    assert_eq!(
        f.client.mknod(root, b"dev", libc::S_IFCHR | 0o600).err(),
        Some(libc::EPERM)
    );
    assert!(!base.join("dev").exists());
    f.finish();
}

/// Host xattr of `path` (not following symlinks), or None.
fn host_getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid C strings and a buffer writable for its length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let r = usize::try_from(r).ok()?;
    buf.truncate(r);
    Some(buf)
}

fn host_setxattr(path: &Path, name: &str, value: &[u8]) {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings and a readable value buffer.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {name}: {}", std::io::Error::last_os_error());
}

#[test]
fn xattrs_read_on_every_root_written_on_writable_ones() {
    let f = start();
    let base = f._dir.path().to_path_buf();
    host_setxattr(&base.join("file.txt"), "user.color", b"blue");
    host_setxattr(&base.join("a"), "user.dir", b"d");
    let root = f.client.attach(0).unwrap().0;
    let ro = f.client.attach(1).unwrap().0;
    let (file, _) = f.client.walk(root, &[b"file.txt"]).unwrap().0[0];
    let (rofile, _) = f.client.walk(ro, &[b"file.txt"]).unwrap().0[0];
    let (rodir, _) = f.client.walk(ro, &[b"a"]).unwrap().0[0];
    // Reads work on both roots, directories included.
    assert_eq!(f.client.getxattr(rofile, b"user.color").unwrap(), b"blue");
    assert_eq!(f.client.getxattr(rodir, b"user.dir").unwrap(), b"d");
    assert_eq!(
        f.client.getxattr(rofile, b"user.none").err(),
        Some(libc::ENODATA)
    );
    let list = f.client.listxattr(rofile).unwrap();
    assert!(list.windows(11).any(|w| w == b"user.color\0"), "{list:?}");
    // The file root (mount 2) reads too.
    let froot = f.client.attach(2).unwrap().0;
    assert_eq!(f.client.getxattr(froot, b"user.color").unwrap(), b"blue");
    // Writes: read-only roots are EROFS, whatever the name.
    assert_eq!(
        f.client.setxattr(rofile, b"user.x", b"1", 0).err(),
        Some(libc::EROFS)
    );
    assert_eq!(
        f.client.removexattr(rofile, b"user.color").err(),
        Some(libc::EROFS)
    );
    assert_eq!(
        f.client.setxattr(froot, b"user.x", b"1", 0).err(),
        Some(libc::EROFS)
    );
    // On the writable root they reach the host file.
    f.client.setxattr(file, b"user.new", b"value", 0).unwrap();
    assert_eq!(
        host_getxattr(&base.join("file.txt"), "user.new").as_deref(),
        Some(&b"value"[..])
    );
    assert_eq!(
        f.client
            .setxattr(file, b"user.new", b"v2", libc::XATTR_CREATE)
            .err(),
        Some(libc::EEXIST)
    );
    assert_eq!(
        f.client
            .setxattr(file, b"user.other", b"v", libc::XATTR_REPLACE)
            .err(),
        Some(libc::ENODATA)
    );
    f.client.removexattr(file, b"user.new").unwrap();
    assert_eq!(host_getxattr(&base.join("file.txt"), "user.new"), None);
    assert_eq!(
        f.client.removexattr(file, b"user.new").err(),
        Some(libc::ENODATA)
    );
    // Limits: names of 1..=255 bytes, values up to 64 KiB, known flags.
    assert_eq!(f.client.getxattr(file, b"").err(), Some(libc::ERANGE));
    let long = [b'u'; 256];
    assert_eq!(
        f.client.setxattr(file, &long, b"", 0).err(),
        Some(libc::ERANGE)
    );
    assert_eq!(
        f.client
            .setxattr(file, b"user.big", &vec![0u8; 65537], 0)
            .err(),
        Some(libc::E2BIG)
    );
    assert_eq!(
        f.client.setxattr(file, b"user.x", b"", 4).err(),
        Some(libc::EINVAL)
    );
    f.finish();
}

#[test]
fn xattr_writes_are_user_namespace_only() {
    let f = start();
    let base = f._dir.path().to_path_buf();
    let root = f.client.attach(0).unwrap().0;
    let (file, _) = f.client.walk(root, &[b"file.txt"]).unwrap().0[0];
    for name in [&b"trusted.x"[..], b"security.x", b"security.capability"] {
        assert_eq!(
            f.client.setxattr(file, name, b"1", 0).err(),
            Some(libc::EPERM),
            "{name:?}"
        );
        assert_eq!(
            f.client.removexattr(file, name).err(),
            Some(libc::EPERM),
            "{name:?}"
        );
    }
    for name in [&b"system.posix_acl_access"[..], b"other.x", b"user"] {
        assert_eq!(
            f.client.setxattr(file, name, b"1", 0).err(),
            Some(libc::EOPNOTSUPP),
            "{name:?}"
        );
    }
    assert_eq!(
        f.client.setxattr(file, b"user.", b"1", 0).err(),
        Some(libc::EINVAL)
    );
    assert_eq!(host_getxattr(&base.join("file.txt"), "trusted.x"), None);
    f.finish();
}

#[test]
fn xattrs_of_symlinks_and_fifos() {
    let f = start();
    let base = f._dir.path().to_path_buf();
    host_setxattr(&base.join("a/b/c.txt"), "user.t", b"target");
    symlink("a/b/c.txt", base.join("rel")).unwrap();
    let root = f.client.attach(0).unwrap().0;
    let (link, st) = f.client.walk(root, &[b"rel"]).unwrap().0[0];
    assert_eq!(kind(&st), libc::S_IFLNK);
    // The link's own attributes, never its target's.
    assert_eq!(
        f.client.getxattr(link, b"user.t").err(),
        Some(libc::ENODATA)
    );
    assert_eq!(f.client.listxattr(link).unwrap(), b"");
    // user.* on a symlink or FIFO is EPERM, as Linux.
    assert_eq!(
        f.client.setxattr(link, b"user.t", b"x", 0).err(),
        Some(libc::EPERM)
    );
    assert_eq!(
        f.client.removexattr(link, b"user.t").err(),
        Some(libc::EPERM)
    );
    let (fifo, _) = f.client.walk(root, &[b"fifo"]).unwrap().0[0];
    assert_eq!(
        f.client.setxattr(fifo, b"user.t", b"x", 0).err(),
        Some(libc::EPERM)
    );
    assert_eq!(
        f.client.getxattr(fifo, b"user.t").err(),
        Some(libc::ENODATA)
    );
    assert_eq!(
        host_getxattr(&base.join("a/b/c.txt"), "user.t").as_deref(),
        Some(&b"target"[..])
    );
    f.finish();
}
