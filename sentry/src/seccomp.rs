//! The sentry's host syscall allow-list, installed once boot is done.
//!
//! Every entry says why the sentry needs it. Stubs are forked from the
//! sentry and inherit this filter, so the few calls a stub makes (between
//! fork and its first stop, and the mmap/munmap the sentry injects) are
//! here too. Workload syscalls never reach it: PTRACE_SYSEMU skips them
//! before seccomp runs.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("building the seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("installing the seccomp filter: {0}")]
    Install(#[from] seccompiler::Error),
    #[error("dropping capabilities: {0}")]
    Caps(#[from] caps::errors::CapsError),
}

fn eq(arg: u8, v: u64) -> Cond {
    // Only fails for an argument index above 5.
    Cond::new(arg, Len::Qword, Op::Eq, v).unwrap_or_else(|_| unreachable_cond())
}

fn masked(arg: u8, mask: u64, v: u64) -> Cond {
    Cond::new(arg, Len::Qword, Op::MaskedEq(mask), v).unwrap_or_else(|_| unreachable_cond())
}

fn unreachable_cond() -> Cond {
    // Argument indices above are literals in 0..=5; keep a safe fallback.
    Cond::new(0, Len::Qword, Op::Eq, u64::MAX).unwrap_or_else(|_| std::process::abort())
}

fn rule(c: Vec<Cond>) -> SeccompRule {
    SeccompRule::new(c).unwrap_or_else(|_| std::process::abort())
}

/// (syscall, argument rules (empty = any arguments), reason).
pub fn allow_list() -> Vec<(i64, Vec<SeccompRule>, &'static str)> {
    use libc::*;
    const THREAD_FLAGS: u64 = (CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID) as u64;
    const FORK_FLAGS: u64 = (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD) as u64;
    let ioctls: Vec<SeccompRule> = [
        TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSWINSZ, FIONREAD, FIOCLEX,
    ]
    .iter()
    .map(|&r| rule(vec![eq(1, r)]))
    .collect();
    vec![
        (SYS_read, vec![], "stdio reads for the workload"),
        (SYS_write, vec![], "stdio writes, logs, the syscall report"),
        (SYS_pread64, vec![], "reads of gofer-donated files and populating file mappings"),
        (SYS_pwrite64, vec![], "writes to files of writable bind mounts (fds the gofer opened for writing)"),
        (SYS_fdatasync, vec![], "fsync/fdatasync of files of writable bind mounts (donated fds): durability for the workload's databases"),
        (SYS_close, vec![], "dropping donated fds"),
        (SYS_fstat, vec![], "fstat of stdio fds"),
        (SYS_newfstatat, vec![rule(vec![eq(3, AT_EMPTY_PATH as u64)])], "glibc's fstat (fd-relative, empty path only)"),
        (SYS_fcntl, vec![], "fd flags (std library)"),
        (SYS_ioctl, ioctls, "terminal requests forwarded to a host tty on stdio"),
        (SYS_poll, vec![], "readiness of stdio fds for the workload's poll/select"),
        (SYS_lseek, vec![], "SEEK_DATA/SEEK_HOLE on the memory file for sparse fork copies"),
        (SYS_fallocate, vec![], "punching holes in the memory file to free workload memory"),
        (
            SYS_mmap,
            vec![
                rule(vec![masked(2, PROT_EXEC as u64, 0)]),
                rule(vec![eq(3, (MAP_SHARED | MAP_FIXED) as u64)]),
            ],
            "sentry heap and stacks (never executable); stubs map the memory file (injected)",
        ),
        (SYS_munmap, vec![], "sentry heap; stubs unmap workload ranges (injected)"),
        (SYS_mprotect, vec![rule(vec![masked(2, PROT_EXEC as u64, 0)])], "thread stack guard pages (never executable)"),
        (SYS_madvise, vec![], "allocator returns memory; MADV_POPULATE_WRITE before large copies into the memory file"),
        (SYS_mremap, vec![], "allocator growth"),
        (SYS_brk, vec![], "allocator"),
        (SYS_futex, vec![], "sentry locks and condition variables"),
        (SYS_sched_yield, vec![], "workload sched_yield"),
        (SYS_sched_getaffinity, vec![], "CPU placement of stubs"),
        (SYS_sched_setaffinity, vec![], "co-locating each stub with its tracer thread"),
        (SYS_clone, vec![rule(vec![eq(0, THREAD_FLAGS)]), rule(vec![eq(0, FORK_FLAGS)])], "task threads (thread flags) and stubs (fork flags) only"),
        (SYS_clone3, vec![], "answered ENOSYS by a companion filter so glibc falls back to clone"),
        (SYS_openat, vec![], "answered EACCES by a companion filter: glibc's malloc opens /proc/sys/vm/overcommit_memory when a thread heap shrinks, and copes with the failure"),
        (SYS_exit, vec![], "task threads end"),
        (SYS_exit_group, vec![], "sandbox end"),
        (SYS_wait4, vec![], "ptrace stops of stubs"),
        (SYS_ptrace, vec![], "driving stubs (the ptrace platform); stubs: PTRACE_TRACEME"),
        (SYS_kill, vec![rule(vec![eq(1, SIGKILL as u64)]), rule(vec![eq(1, SIGURG as u64)])], "killing stubs, kicking a running stub to deliver a signal"),
        (SYS_tgkill, vec![rule(vec![eq(2, SIGABRT as u64)])], "abort() on a sentry bug"),
        (SYS_rt_sigprocmask, vec![], "std library; stubs clear their mask"),
        (SYS_rt_sigaction, vec![], "std library signal setup for new threads"),
        (SYS_sigaltstack, vec![], "std library per-thread alternate stacks; stubs disable theirs"),
        (SYS_rt_sigreturn, vec![], "return from the sentry's own signal handlers"),
        (SYS_clock_gettime, vec![], "time for the workload, CPU clocks of stubs"),
        (SYS_clock_nanosleep, vec![], "std sleeps"),
        (SYS_nanosleep, vec![], "std sleeps"),
        (SYS_getrandom, vec![], "/dev/urandom, getrandom, AT_RANDOM"),
        (SYS_sendmsg, vec![], "gofer requests"),
        (SYS_recvmsg, vec![], "gofer replies with donated fds"),
        (SYS_shutdown, vec![], "shutdown(2) of a host socket the gofer connected for the workload (--host-uds open)"),
        (SYS_getpid, vec![], "std library and logging"),
        (SYS_gettid, vec![], "std library and logging"),
        (SYS_prctl, vec![rule(vec![eq(0, PR_SET_NAME as u64)]), rule(vec![eq(0, PR_SET_PDEATHSIG as u64)])], "thread names; stubs die with their tracer"),
        (SYS_set_robust_list, vec![], "glibc thread start"),
        (SYS_rseq, vec![], "glibc thread start; stubs unregister it"),
        (SYS_setsid, vec![], "stubs leave the sentry's session"),
        (SYS_close_range, vec![], "stubs close every fd but the memory file"),
        (SYS_sysinfo, vec![], "sysinfo for the workload"),
        (SYS_getrlimit, vec![], "std library thread stacks"),
        (SYS_prlimit64, vec![], "std library thread stacks"),
    ]
}

/// Build the two filters: the allow-list (violations kill the sandbox, or
/// trap with `debug` so the syscall is named) and the clone3 -> ENOSYS one.
pub fn build(debug: bool) -> Result<[BpfProgram; 3], SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, r, _) in allow_list() {
        rules.insert(nr, r);
    }
    let mismatch = if debug {
        SeccompAction::Trap
    } else {
        SeccompAction::KillProcess
    };
    let allow: BpfProgram =
        SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)?
            .try_into()?;
    let mut c3 = BTreeMap::new();
    c3.insert(libc::SYS_clone3, vec![]);
    let clone3: BpfProgram = SeccompFilter::new(
        c3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )?
    .try_into()?;
    let mut op = BTreeMap::new();
    op.insert(libc::SYS_openat, vec![]);
    let open: BpfProgram = SeccompFilter::new(
        op,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES as u32),
        TargetArch::x86_64,
    )?
    .try_into()?;
    Ok([allow, clone3, open])
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSYS; si_syscall sits
    // at byte offset 24 of siginfo_t on x86-64.
    let nr = unsafe { *((info as *const u8).add(24) as *const i32) };
    let mut msg = *b"rvisor: sentry seccomp violation: syscall 0000\n";
    let mut n = nr.max(0) as u32;
    for i in (42..46).rev() {
        msg[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // SAFETY: async-signal-safe write and _exit.
    unsafe {
        libc::write(2, msg.as_ptr() as *const libc::c_void, msg.len());
        libc::_exit(159);
    }
}

/// Drop every capability (the sentry is root only inside its own user
/// namespace, and needs none of it after boot).
pub fn drop_capabilities() -> Result<(), caps::errors::CapsError> {
    for cap in caps::all() {
        caps::drop(None, caps::CapSet::Bounding, cap)?;
    }
    caps::clear(None, caps::CapSet::Ambient)?;
    caps::clear(None, caps::CapSet::Inheritable)?;
    caps::clear(None, caps::CapSet::Effective)?;
    caps::clear(None, caps::CapSet::Permitted)?;
    Ok(())
}

/// Install the filters on every sentry thread.
pub fn install(debug: bool) -> Result<(), SeccompError> {
    let [allow, clone3, open] = build(debug)?;
    if debug {
        // SAFETY: installing a plain SA_SIGINFO handler for SIGSYS.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigsys;
            sa.sa_sigaction = handler as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
        }
    }
    seccompiler::apply_filter_all_threads(&clone3)?;
    seccompiler::apply_filter_all_threads(&open)?;
    seccompiler::apply_filter_all_threads(&allow)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_has_reasons_and_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for (nr, _, why) in allow_list() {
            assert!(
                seen.insert(nr),
                "duplicate entry {}",
                crate::syscalls::names::syscall_name(nr as u64)
            );
            assert!(!why.is_empty());
        }
        // The calls that would let a compromised sentry reach host files,
        // programs or the network are absent.
        for nr in [
            libc::SYS_open,
            libc::SYS_openat2,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_socket,
            libc::SYS_connect,
        ] {
            assert!(
                !seen.contains(&nr),
                "{} must not be allowed",
                crate::syscalls::names::syscall_name(nr as u64)
            );
        }
        assert!(build(false).is_ok());
    }

    #[test]
    fn filter_refuses_open_in_a_child() {
        // SAFETY: the child only installs the filter, tries openat, and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if install(false).is_err() {
                    libc::_exit(2);
                }
                // openat is answered EACCES, open kills.
                let r = libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c"/etc/passwd".as_ptr(), 0);
                if r >= 0 || *libc::__errno_location() != libc::EACCES {
                    libc::_exit(3);
                }
                libc::syscall(libc::SYS_open, c"/etc/passwd".as_ptr(), 0);
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
            "status {status:#x}"
        );
    }
}
