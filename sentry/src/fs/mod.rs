//! Filesystem implementations: devfs, procfs/sysfs, and the tree setup of
//! the sandbox's mounts.

pub mod dev;
pub mod epoll;
pub mod eventfd;
pub mod lock;
pub mod pidfd;
pub mod pipe;
pub mod proc;
pub mod pty;
pub mod shm;
