//! The syscall table: number -> handler. Unknown numbers return ENOSYS and
//! are counted per number (reported with `--debug`).

pub mod creds;
pub mod file;
pub mod futex;
pub mod info;
pub mod mm;
pub mod mount;
pub mod mqueue;
pub mod names;
pub mod poll;
pub mod process;
pub mod sched;
pub mod signal;
pub mod socket;
pub mod splice;
pub mod time;
pub mod timer;

use crate::abi::*;
use crate::kernel::task::Task;
use std::sync::OnceLock;

/// Decoded syscall arguments.
pub struct Args(pub [u64; 6]);

impl Args {
    pub fn u(&self, i: usize) -> u64 {
        self.0[i]
    }
    pub fn int(&self, i: usize) -> i32 {
        self.0[i] as u32 as i32
    }
    pub fn uint(&self, i: usize) -> u32 {
        self.0[i] as u32
    }
    pub fn i64(&self, i: usize) -> i64 {
        self.0[i] as i64
    }
    pub fn usize(&self, i: usize) -> usize {
        self.0[i] as usize
    }
}

pub type Handler = fn(&mut Task, &Args) -> KResult<u64>;

pub struct Syscall {
    pub nr: i64,
    pub name: &'static str,
    pub handler: Handler,
}

macro_rules! table {
    ($($nr:ident => $h:path),* $(,)?) => {
        &[$(Syscall { nr: libc::$nr, name: stringify!($nr), handler: $h }),*]
    };
}

pub static SYSCALLS: &[Syscall] = table! {
    SYS_read => file::sys_read,
    SYS_write => file::sys_write,
    SYS_open => file::sys_open,
    SYS_close => file::sys_close,
    SYS_stat => file::sys_stat,
    SYS_fstat => file::sys_fstat,
    SYS_lstat => file::sys_lstat,
    SYS_poll => poll::sys_poll,
    SYS_lseek => file::sys_lseek,
    SYS_mmap => mm::sys_mmap,
    SYS_mprotect => mm::sys_mprotect,
    SYS_munmap => mm::sys_munmap,
    SYS_brk => mm::sys_brk,
    SYS_rt_sigaction => signal::sys_rt_sigaction,
    SYS_rt_sigprocmask => signal::sys_rt_sigprocmask,
    SYS_rt_sigreturn => signal::sys_rt_sigreturn,
    SYS_ioctl => file::sys_ioctl,
    SYS_pread64 => file::sys_pread64,
    SYS_pwrite64 => file::sys_pwrite64,
    SYS_readv => file::sys_readv,
    SYS_writev => file::sys_writev,
    SYS_access => file::sys_access,
    SYS_select => poll::sys_select,
    SYS_pipe => file::sys_pipe,
    SYS_sched_yield => process::sys_sched_yield,
    SYS_mremap => mm::sys_mremap,
    SYS_msync => mm::sys_msync,
    SYS_mincore => mm::sys_mincore,
    SYS_madvise => mm::sys_madvise,
    SYS_dup => file::sys_dup,
    SYS_dup2 => file::sys_dup2,
    SYS_pause => signal::sys_pause,
    SYS_nanosleep => time::sys_nanosleep,
    SYS_getitimer => timer::sys_getitimer,
    SYS_alarm => timer::sys_alarm,
    SYS_setitimer => timer::sys_setitimer,
    SYS_getpid => process::sys_getpid,
    SYS_clone => process::sys_clone,
    SYS_fork => process::sys_fork,
    SYS_vfork => process::sys_vfork,
    SYS_exit => process::sys_exit,
    SYS_wait4 => process::sys_wait4,
    SYS_kill => signal::sys_kill,
    SYS_uname => info::sys_uname,
    SYS_sethostname => info::sys_sethostname,
    SYS_setdomainname => info::sys_setdomainname,
    SYS_fcntl => file::sys_fcntl,
    SYS_flock => file::sys_flock,
    SYS_fsync => file::sys_fsync,
    SYS_fdatasync => file::sys_fsync,
    SYS_truncate => file::sys_truncate,
    SYS_ftruncate => file::sys_ftruncate,
    SYS_getdents64 => file::sys_getdents64,
    SYS_getcwd => file::sys_getcwd,
    SYS_chdir => file::sys_chdir,
    SYS_fchdir => file::sys_fchdir,
    SYS_rename => file::sys_rename,
    SYS_mkdir => file::sys_mkdir,
    SYS_mknod => file::sys_mknod,
    SYS_mknodat => file::sys_mknodat,
    SYS_fallocate => file::sys_fallocate,
    SYS_rmdir => file::sys_rmdir,
    SYS_creat => file::sys_creat,
    SYS_link => file::sys_link,
    SYS_unlink => file::sys_unlink,
    SYS_symlink => file::sys_symlink,
    SYS_readlink => file::sys_readlink,
    SYS_chmod => file::sys_chmod,
    SYS_fchmod => file::sys_fchmod,
    SYS_chown => file::sys_chown,
    SYS_fchown => file::sys_fchown,
    SYS_lchown => file::sys_lchown,
    SYS_umask => file::sys_umask,
    SYS_gettimeofday => time::sys_gettimeofday,
    SYS_getrlimit => process::sys_getrlimit,
    SYS_setrlimit => process::sys_setrlimit,
    SYS_getrusage => process::sys_getrusage,
    SYS_sysinfo => info::sys_sysinfo,
    SYS_times => process::sys_times,
    SYS_getuid => process::sys_getuid,
    SYS_getgid => process::sys_getgid,
    SYS_geteuid => process::sys_geteuid,
    SYS_getegid => process::sys_getegid,
    SYS_getppid => process::sys_getppid,
    SYS_getpgrp => process::sys_getpgrp,
    SYS_setpgid => process::sys_setpgid,
    SYS_setsid => process::sys_setsid,
    SYS_getpgid => process::sys_getpgid,
    SYS_getsid => process::sys_getsid,
    SYS_getgroups => process::sys_getgroups,
    SYS_setuid => creds::sys_setuid,
    SYS_setgid => creds::sys_setgid,
    SYS_setreuid => creds::sys_setreuid,
    SYS_setregid => creds::sys_setregid,
    SYS_setgroups => creds::sys_setgroups,
    SYS_setresuid => creds::sys_setresuid,
    SYS_setresgid => creds::sys_setresgid,
    SYS_setfsuid => creds::sys_setfsuid,
    SYS_setfsgid => creds::sys_setfsgid,
    SYS_capget => creds::sys_capget,
    SYS_capset => creds::sys_capset,
    SYS_getresuid => process::sys_getresuid,
    SYS_getresgid => process::sys_getresgid,
    SYS_rt_sigpending => signal::sys_rt_sigpending,
    SYS_rt_sigtimedwait => signal::sys_rt_sigtimedwait,
    SYS_rt_sigsuspend => signal::sys_rt_sigsuspend,
    SYS_rt_sigqueueinfo => signal::sys_rt_sigqueueinfo,
    SYS_rt_tgsigqueueinfo => signal::sys_rt_tgsigqueueinfo,
    SYS_sigaltstack => signal::sys_sigaltstack,
    SYS_statfs => file::sys_statfs,
    SYS_fstatfs => file::sys_fstatfs,
    SYS_prctl => process::sys_prctl,
    SYS_arch_prctl => process::sys_arch_prctl,
    SYS_gettid => process::sys_gettid,
    SYS_time => time::sys_time,
    SYS_tkill => signal::sys_tkill,
    SYS_tgkill => signal::sys_tgkill,
    SYS_futex => futex::sys_futex,
    SYS_sched_getaffinity => process::sys_sched_getaffinity,
    SYS_sched_setaffinity => sched::sys_sched_setaffinity,
    SYS_sched_getscheduler => sched::sys_sched_getscheduler,
    SYS_sched_setscheduler => sched::sys_sched_setscheduler,
    SYS_sched_getparam => sched::sys_sched_getparam,
    SYS_sched_setparam => sched::sys_sched_setparam,
    SYS_sched_get_priority_max => sched::sys_sched_get_priority_max,
    SYS_sched_get_priority_min => sched::sys_sched_get_priority_min,
    SYS_sched_rr_get_interval => sched::sys_sched_rr_get_interval,
    SYS_getpriority => sched::sys_getpriority,
    SYS_setpriority => sched::sys_setpriority,
    SYS_set_tid_address => process::sys_set_tid_address,
    SYS_fadvise64 => file::sys_fadvise64,
    SYS_timer_create => timer::sys_timer_create,
    SYS_timer_settime => timer::sys_timer_settime,
    SYS_timer_gettime => timer::sys_timer_gettime,
    SYS_timer_getoverrun => timer::sys_timer_getoverrun,
    SYS_timer_delete => timer::sys_timer_delete,
    SYS_clock_gettime => time::sys_clock_gettime,
    SYS_clock_getres => time::sys_clock_getres,
    SYS_clock_nanosleep => time::sys_clock_nanosleep,
    SYS_exit_group => process::sys_exit_group,
    SYS_openat => file::sys_openat,
    SYS_mkdirat => file::sys_mkdirat,
    SYS_fchownat => file::sys_fchownat,
    SYS_newfstatat => file::sys_newfstatat,
    SYS_unlinkat => file::sys_unlinkat,
    SYS_renameat => file::sys_renameat,
    SYS_linkat => file::sys_linkat,
    SYS_symlinkat => file::sys_symlinkat,
    SYS_readlinkat => file::sys_readlinkat,
    SYS_fchmodat => file::sys_fchmodat,
    SYS_faccessat => file::sys_faccessat,
    SYS_pselect6 => poll::sys_pselect6,
    SYS_epoll_create => poll::sys_epoll_create,
    SYS_epoll_create1 => poll::sys_epoll_create1,
    SYS_epoll_ctl => poll::sys_epoll_ctl,
    SYS_epoll_wait => poll::sys_epoll_wait,
    SYS_epoll_pwait => poll::sys_epoll_pwait,
    SYS_ppoll => poll::sys_ppoll,
    SYS_set_robust_list => process::sys_set_robust_list,
    SYS_get_robust_list => process::sys_get_robust_list,
    SYS_utimensat => file::sys_utimensat,
    SYS_dup3 => file::sys_dup3,
    SYS_pipe2 => file::sys_pipe2,
    SYS_socketpair => socket::sys_socketpair,
    SYS_socket => socket::sys_socket,
    SYS_mount => mount::sys_mount,
    SYS_umount2 => mount::sys_umount2,
    SYS_sendfile => splice::sys_sendfile,
    SYS_splice => splice::sys_splice,
    SYS_tee => splice::sys_tee,
    SYS_copy_file_range => splice::sys_copy_file_range,
    SYS_sync => splice::sys_sync,
    SYS_syncfs => splice::sys_syncfs,
    SYS_bind => socket::sys_bind,
    SYS_listen => socket::sys_listen,
    SYS_connect => socket::sys_connect,
    SYS_accept => socket::sys_accept,
    SYS_accept4 => socket::sys_accept4,
    SYS_getsockname => socket::sys_getsockname,
    SYS_getpeername => socket::sys_getpeername,
    SYS_getsockopt => socket::sys_getsockopt,
    SYS_setsockopt => socket::sys_setsockopt,
    SYS_sendmmsg => socket::sys_sendmmsg,
    SYS_recvmmsg => socket::sys_recvmmsg,
    SYS_sendto => socket::sys_sendto,
    SYS_sendmsg => socket::sys_sendmsg,
    SYS_recvmsg => socket::sys_recvmsg,
    SYS_recvfrom => socket::sys_recvfrom,
    SYS_shutdown => socket::sys_shutdown,
    SYS_eventfd => file::sys_eventfd,
    SYS_eventfd2 => file::sys_eventfd2,
    SYS_preadv => file::sys_preadv,
    SYS_pwritev => file::sys_pwritev,
    SYS_preadv2 => file::sys_preadv2,
    SYS_pwritev2 => file::sys_pwritev2,
    SYS_prlimit64 => process::sys_prlimit64,
    SYS_renameat2 => file::sys_renameat2,
    SYS_getrandom => process::sys_getrandom,
    SYS_memfd_create => file::sys_memfd_create,
    SYS_execve => process::sys_execve,
    SYS_execveat => process::sys_execveat,
    SYS_statx => file::sys_statx,
    SYS_close_range => file::sys_close_range,
    SYS_clone3 => process::sys_clone3,
    SYS_waitid => process::sys_waitid,
    SYS_pidfd_open => process::sys_pidfd_open,
    SYS_pidfd_send_signal => signal::sys_pidfd_send_signal,
    SYS_openat2 => file::sys_openat2,
    SYS_faccessat2 => file::sys_faccessat2,
    // POSIX message queues.
    SYS_mq_open => mqueue::sys_mq_open,
    SYS_mq_unlink => mqueue::sys_mq_unlink,
    SYS_mq_timedsend => mqueue::sys_mq_timedsend,
    SYS_mq_timedreceive => mqueue::sys_mq_timedreceive,
    SYS_mq_notify => mqueue::sys_mq_notify,
    SYS_mq_getsetattr => mqueue::sys_mq_getsetattr,
    // timerfd, signalfd, inotify, xattrs (fs/).
    SYS_timerfd_create => crate::fs::timerfd::sys_timerfd_create,
    SYS_timerfd_settime => crate::fs::timerfd::sys_timerfd_settime,
    SYS_timerfd_gettime => crate::fs::timerfd::sys_timerfd_gettime,
    SYS_signalfd => crate::fs::signalfd::sys_signalfd,
    SYS_signalfd4 => crate::fs::signalfd::sys_signalfd4,
    SYS_inotify_init => crate::fs::inotify::sys_inotify_init,
    SYS_inotify_init1 => crate::fs::inotify::sys_inotify_init1,
    SYS_inotify_add_watch => crate::fs::inotify::sys_inotify_add_watch,
    SYS_inotify_rm_watch => crate::fs::inotify::sys_inotify_rm_watch,
    SYS_setxattr => crate::fs::xattr::sys_setxattr,
    SYS_lsetxattr => crate::fs::xattr::sys_lsetxattr,
    SYS_fsetxattr => crate::fs::xattr::sys_fsetxattr,
    SYS_getxattr => crate::fs::xattr::sys_getxattr,
    SYS_lgetxattr => crate::fs::xattr::sys_lgetxattr,
    SYS_fgetxattr => crate::fs::xattr::sys_fgetxattr,
    SYS_listxattr => crate::fs::xattr::sys_listxattr,
    SYS_llistxattr => crate::fs::xattr::sys_llistxattr,
    SYS_flistxattr => crate::fs::xattr::sys_flistxattr,
    SYS_removexattr => crate::fs::xattr::sys_removexattr,
    SYS_lremovexattr => crate::fs::xattr::sys_lremovexattr,
    SYS_fremovexattr => crate::fs::xattr::sys_fremovexattr,
};

fn table() -> &'static [Option<&'static Syscall>] {
    static T: OnceLock<Vec<Option<&'static Syscall>>> = OnceLock::new();
    T.get_or_init(|| {
        let max = SYSCALLS.iter().map(|s| s.nr).max().unwrap_or(0) as usize;
        let mut v = vec![None; max + 1];
        for s in SYSCALLS {
            v[s.nr as usize] = Some(s);
        }
        v
    })
}

/// Handle the syscall the task just stopped at; result goes in rax.
pub fn dispatch(t: &mut Task) {
    let nr = t.regs.orig_rax;
    let args = Args([
        t.regs.rdi, t.regs.rsi, t.regs.rdx, t.regs.r10, t.regs.r8, t.regs.r9,
    ]);
    // `int 0x80` and `sysenter` enter the 32-bit ABI, whose numbers mean
    // other calls: refuse them rather than misinterpret them.
    let mut insn = [0u8; 2];
    let compat = t.copy_in(t.regs.rip.wrapping_sub(2), &mut insn).is_ok()
        && (insn == [0xcd, 0x80] || insn == [0x0f, 0x34]);
    let entry = if compat {
        None
    } else {
        table().get(nr as usize).copied().flatten()
    };
    if t.debug {
        tracing::trace!(
            tid = t.tid,
            "enter {}({:#x}, {:#x}, {:#x}, {:#x})",
            names::syscall_name(nr),
            args.0[0],
            args.0[1],
            args.0[2],
            args.0[3]
        );
    }
    let result = match entry {
        Some(s) => (s.handler)(t, &args),
        None => {
            t.k.count_unimplemented(nr);
            Err(Errno::ENOSYS)
        }
    };
    if t.debug {
        let name = entry
            .map(|s| s.name)
            .unwrap_or_else(|| names::syscall_name(nr));
        tracing::debug!(
            tid = t.tid,
            "{name}({:#x}, {:#x}, {:#x}) = {:?}",
            args.0[0],
            args.0[1],
            args.0[2],
            result
        );
    }
    let mut restart = None;
    t.regs.rax = match result {
        Ok(v) => v,
        Err(e) if e.0 >= 512 => {
            // ERESTART*: settled at signal delivery (restart or EINTR).
            restart = Some(e);
            (-(Errno::EINTR.0 as i64)) as u64
        }
        Err(e) => (-(e.0 as i64)) as u64,
    };
    if restart.is_some() || crate::signals::has_unblocked(&t.info) {
        t.deliver_signals(restart);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_no_duplicates_and_names_agree() {
        let mut seen = std::collections::HashSet::new();
        for s in SYSCALLS {
            assert!(seen.insert(s.nr), "duplicate syscall {}", s.name);
            assert_eq!(
                format!("SYS_{}", names::syscall_name(s.nr as u64)),
                s.name,
                "name mismatch for {}",
                s.nr
            );
        }
    }
}
