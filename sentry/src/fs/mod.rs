//! Filesystem implementations: devfs, procfs/sysfs, and the tree setup of
//! the sandbox's mounts.

pub mod console;
pub mod dev;
pub mod dnotify;
pub mod epoll;
pub mod eventfd;
pub mod hostsock;
pub mod inet;
pub mod inotify;
pub mod lock;
pub mod mqueue;
pub mod pidfd;
pub mod pipe;
pub mod proc;
pub mod pty;
pub mod shm;
pub mod signalfd;
pub mod timerfd;
pub mod tmpfs;
pub mod unix;
pub mod xattr;

use crate::vfs::file::FileKind;

/// The inode number of an anonymous-inode file of this module's kinds
/// (timerfd, signalfd, inotify), for fstat.
pub fn anon_ino(k: &FileKind) -> Option<u64> {
    match k {
        FileKind::TimerFd(x) => Some(x.ino),
        FileKind::SignalFd(x) => Some(x.ino),
        FileKind::Inotify(x) => Some(x.ino),
        _ => None,
    }
}

/// poll(2) readiness of those kinds.
pub fn anon_poll(k: &FileKind) -> Option<i16> {
    match k {
        FileKind::TimerFd(x) => Some(x.poll()),
        FileKind::SignalFd(x) => Some(x.poll()),
        FileKind::Inotify(x) => Some(x.poll()),
        FileKind::Mqueue(q) => Some(q.poll()),
        _ => None,
    }
}

/// ioctl(2) on those kinds: TFD_IOC_SET_TICKS, FIONREAD of inotify.
pub fn anon_ioctl(
    t: &crate::kernel::task::Task,
    k: &FileKind,
    req: u64,
    arg: u64,
) -> Option<crate::abi::KResult<u64>> {
    const FIONREAD: u64 = 0x541b;
    match k {
        FileKind::TimerFd(x) if req == timerfd::TFD_IOC_SET_TICKS => Some(
            t.read_obj::<u64>(arg)
                .and_then(|n| x.set_ticks(n))
                .map(|_| 0),
        ),
        FileKind::Inotify(x) if req == FIONREAD => {
            Some(t.write_obj(arg, &(x.pending_bytes() as i32)).map(|_| 0))
        }
        FileKind::TimerFd(_)
        | FileKind::SignalFd(_)
        | FileKind::Inotify(_)
        | FileKind::Mqueue(_) => Some(Err(crate::abi::Errno::ENOTTY)),
        _ => None,
    }
}
