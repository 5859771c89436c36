//! The gofer's confinement after its mounts are set up: only the
//! capabilities file service needs, and a seccomp allow-list of the host
//! syscalls the serve loop makes. Applied by [`crate::run`] between
//! `confine` and `serve`.

use caps::{CapSet, Capability};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("dropping capabilities: {0}")]
    Caps(#[from] caps::errors::CapsError),
    #[error("building the seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("installing the seccomp filter: {0}")]
    Install(#[from] seccompiler::Error),
}

/// Capabilities the gofer keeps: read files whatever their mode (the
/// rootfs is served with its owners' permissions enforced by the sentry),
/// and change owners and modes in writable bind mounts as the sandbox's
/// root may (the sentry checks the workload's own rights first).
pub const KEPT: [Capability; 5] = [
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_CHOWN,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
];

pub fn drop_capabilities() -> Result<(), FilterError> {
    let keep: HashSet<Capability> = KEPT.into_iter().collect();
    for cap in caps::all() {
        if !keep.contains(&cap) {
            // The bounding set first, while CAP_SETPCAP is still held.
            caps::drop(None, CapSet::Bounding, cap)?;
        }
    }
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)?;
    Ok(())
}

use crate::server::{SYS_GETXATTRAT, SYS_LISTXATTRAT};

/// (syscall, reason): any arguments.
pub fn allow_list() -> Vec<(i64, &'static str)> {
    use libc::*;
    vec![
        (SYS_recvmsg, "requests from the sentry"),
        (SYS_sendmsg, "replies, with donated fds"),
        (SYS_getsockopt, "checking the socket type"),
        (SYS_openat2, "resolving one component beneath a served root"),
        (SYS_newfstatat, "stat of nodes (fd-relative, empty path)"),
        (SYS_fstat, "stat of nodes"),
        (SYS_fstatfs, "statfs of nodes"),
        (SYS_getdents64, "directory listings"),
        (SYS_fcntl, "fdopendir checks the fd's flags"),
        (SYS_lseek, "rewinding directories"),
        (SYS_readlinkat, "symlink targets"),
        (
            SYS_mkdirat,
            "mkdir in writable bind mounts (beneath a served root)",
        ),
        (SYS_unlinkat, "unlink/rmdir in writable bind mounts"),
        (
            SYS_renameat2,
            "rename (NOREPLACE/EXCHANGE) within one writable bind mount",
        ),
        (
            SYS_symlinkat,
            "symlinks made in writable bind mounts (never followed here)",
        ),
        (
            SYS_linkat,
            "hard links within one writable bind mount (AT_EMPTY_PATH on a node fd)",
        ),
        (
            SYS_mknodat,
            "FIFOs and empty files in writable bind mounts (type checked first)",
        ),
        (
            SYS_fchmod,
            "chmod in writable bind mounts (on a reopened fd)",
        ),
        (
            SYS_fchown,
            "chown in writable bind mounts (on a reopened fd)",
        ),
        (SYS_ftruncate, "truncate in writable bind mounts"),
        (
            SYS_utimensat,
            "utimes in writable bind mounts (futimens on a reopened fd)",
        ),
        (
            SYS_fgetxattr,
            "xattr values of files and directories (on a reopened O_RDONLY fd)",
        ),
        (
            SYS_flistxattr,
            "xattr names of files and directories (on a reopened O_RDONLY fd)",
        ),
        (
            SYS_fsetxattr,
            "user.* xattrs in writable bind mounts (on a reopened fd)",
        ),
        (
            SYS_fremovexattr,
            "user.* xattrs in writable bind mounts (on a reopened fd)",
        ),
        (
            SYS_GETXATTRAT,
            "xattr values of symlinks and special files (one component, no follow)",
        ),
        (
            SYS_LISTXATTRAT,
            "xattr names of symlinks and special files (one component, no follow)",
        ),
        (SYS_close, "dropping nodes"),
        (SYS_read, "std library"),
        (SYS_write, "logs on stderr"),
        (SYS_mmap, "allocator"),
        (SYS_munmap, "allocator"),
        (SYS_mremap, "allocator"),
        (SYS_madvise, "allocator"),
        (SYS_brk, "allocator"),
        (SYS_futex, "std locks"),
        (SYS_clock_gettime, "log timestamps"),
        (SYS_getrandom, "hash map seeds"),
        (SYS_getpid, "logs"),
        (SYS_gettid, "logs"),
        (SYS_rt_sigprocmask, "std library"),
        (SYS_rt_sigaction, "std library"),
        (SYS_sigaltstack, "std library"),
        (SYS_rt_sigreturn, "std library"),
        (SYS_exit, "exit"),
        (SYS_exit_group, "exit when the sentry hangs up"),
    ]
}

/// Calls added with `--host-uds open`, each with why.
pub fn host_uds_list() -> Vec<(i64, &'static str)> {
    use libc::{SYS_connect, SYS_socket};
    vec![
        (
            SYS_socket,
            "AF_UNIX sockets only (argument filter) to connect to host sockets",
        ),
        (
            SYS_connect,
            "connect to a host socket file through /proc/self/fd/N",
        ),
    ]
}

pub fn build(host_uds: bool) -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, _) in allow_list() {
        rules.insert(nr, vec![]);
    }
    if host_uds {
        for (nr, _) in host_uds_list() {
            rules.insert(nr, vec![]);
        }
        let unix_only = SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            libc::AF_UNIX as u64,
        )?])?;
        rules.insert(libc::SYS_socket, vec![unix_only]);
    }
    Ok(SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?
    .try_into()?)
}

pub fn install(host_uds: bool) -> Result<(), FilterError> {
    let prog = build(host_uds)?;
    seccompiler::apply_filter(&prog)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_path_or_network_calls_outside_openat2() {
        let allowed: Vec<i64> = allow_list().iter().map(|(n, _)| *n).collect();
        for nr in [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_mount,
            libc::SYS_ptrace,
        ] {
            assert!(!allowed.contains(&nr), "syscall {nr} must not be allowed");
        }
        assert!(build(false).is_ok());
        assert!(build(true).is_ok());
    }
}
