//! Filesystem implementations: devfs, procfs/sysfs, and the tree setup of
//! the sandbox's mounts.

pub mod dev;
pub mod pipe;
pub mod proc;
pub mod shm;
