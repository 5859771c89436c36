//! The unsafe host calls of the ptrace platform: mapping the stub page and
//! forking a stub.

use super::PlatformError;
use std::os::fd::RawFd;

/// Map the stub region at `addr` in the sentry, so every forked stub has it:
/// one RW stack page, then one RX page holding `code`.
pub fn map_stub_page(addr: u64, code: &[u8]) -> Result<(), PlatformError> {
    let len: u64 = 0x2000;
    if code.len() as u64 > 0x1000 {
        return Err(PlatformError::StubAddressBusy);
    }
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; we
    // check that the kernel honoured the address.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p as u64 != addr {
        return Err(PlatformError::StubAddressBusy);
    }
    let code_page = (p as u64 + 0x1000) as *mut libc::c_void;
    // SAFETY: the second page of the fresh mapping holds >= code.len() bytes.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), code_page as *mut u8, code.len()) };
    // SAFETY: code_page is the second page of the mapping created above.
    if unsafe { libc::mprotect(code_page, 0x1000, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(PlatformError::Host {
            op: "mprotect",
            err: nix::Error::last(),
        });
    }
    Ok(())
}

extern "C" {
    /// glibc (2.35+): offset of the rseq area from the thread pointer.
    static __rseq_offset: isize;
    /// glibc (2.35+): size of the registered rseq area, 0 if none.
    static __rseq_size: u32;
}

/// Fork a stub: the child asks to be traced by the calling thread, keeps only
/// `memfd` (and the filestore's fd, if any) open, and jumps to the stub
/// page's init code, which empties its address space and stops. Returns the
/// child's pid.
pub fn fork_stub(memfd: RawFd, filestore: Option<RawFd>, entry: u64) -> Result<i32, PlatformError> {
    // The fds to keep, in order (close_range around them).
    let (lo, hi) = match filestore {
        Some(f) if f != memfd => (memfd.min(f), memfd.max(f)),
        _ => (memfd, memfd),
    };
    // SAFETY: after fork the child runs only raw syscalls and then jumps into
    // the stub page; it never returns into Rust code or touches locks.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(PlatformError::Host {
            op: "fork",
            err: nix::Error::last(),
        });
    }
    if pid == 0 {
        // SAFETY: child side; raw syscalls only, then a jump to stub code.
        unsafe {
            // glibc registered an rseq area in this thread's TLS; the kernel
            // writes to it on every return to user mode and raises SIGSEGV
            // once the stub unmaps it. Unregister it (glibc registers 32
            // bytes; try the advertised size too).
            let tp: u64;
            std::arch::asm!("mov {}, fs:0", out(reg) tp);
            let area = tp.wrapping_add(__rseq_offset as u64);
            if __rseq_size != 0 {
                const RSEQ_SIG: u32 = 0x5305_3053;
                for len in [32u32, __rseq_size] {
                    if libc::syscall(libc::SYS_rseq, area, len, 1, RSEQ_SIG) == 0 {
                        break;
                    }
                }
            }
            let disable = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            libc::syscall(
                libc::SYS_sigaltstack,
                &disable as *const libc::stack_t,
                0usize,
            );
            libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL,
                0,
                0,
                0,
            );
            libc::syscall(libc::SYS_setsid);
            if lo > 0 {
                libc::syscall(libc::SYS_close_range, 0, lo - 1, 0);
            }
            if hi > lo + 1 {
                libc::syscall(libc::SYS_close_range, lo + 1, hi - 1, 0);
            }
            libc::syscall(libc::SYS_close_range, hi + 1, u32::MAX, 0);
            let empty: u64 = 0;
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &empty as *const u64,
                0usize,
                8usize,
            );
            std::arch::asm!("jmp {0}", in(reg) entry, options(noreturn));
        }
    }
    Ok(pid)
}

/// The legacy FXSAVE area (512 bytes) of a stopped tracee.
pub fn get_fpregs(pid: i32) -> Result<Vec<u8>, PlatformError> {
    let mut buf = vec![0u8; 512];
    // SAFETY: PTRACE_GETFPREGS writes a 512-byte user_fpregs_struct into buf.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETFPREGS, pid, 0, buf.as_mut_ptr()) };
    if r < 0 {
        return Err(PlatformError::Host {
            op: "PTRACE_GETFPREGS",
            err: nix::Error::last(),
        });
    }
    Ok(buf)
}

/// Load an FXSAVE area into a stopped tracee.
pub fn set_fpregs(pid: i32, fx: &[u8]) -> Result<(), PlatformError> {
    let mut buf = [0u8; 512];
    let n = fx.len().min(512);
    buf[..n].copy_from_slice(&fx[..n]);
    // MXCSR reserved bits must be clear or the kernel refuses the state.
    let mxcsr = u32::from_le_bytes([buf[24], buf[25], buf[26], buf[27]]) & 0xffff;
    buf[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    // SAFETY: PTRACE_SETFPREGS reads a 512-byte user_fpregs_struct from buf.
    let r = unsafe { libc::ptrace(libc::PTRACE_SETFPREGS, pid, 0, buf.as_ptr()) };
    if r < 0 {
        return Err(PlatformError::Host {
            op: "PTRACE_SETFPREGS",
            err: nix::Error::last(),
        });
    }
    Ok(())
}

/// Pin the calling thread and `stub` to one CPU chosen by `slot`: a stub
/// and its tracer on the same CPU pay no cross-CPU wake-up per syscall
/// (5-7 us instead of 16-17 us on this class of machine).
pub fn colocate(stub: i32, slot: usize) {
    // SAFETY: cpu_set_t is plain data; sched_[gs]etaffinity read/write it.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &allowed))
            .collect();
        if cpus.len() < 2 {
            return;
        }
        let cpu = cpus[slot % cpus.len()];
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
        libc::sched_setaffinity(stub, std::mem::size_of::<libc::cpu_set_t>(), &one);
    }
}

const NT_X86_XSTATE: libc::c_int = 0x202;

/// Size of the XSAVE area for the features enabled in XCR0 (CPUID 0xD),
/// asked once: CPUID traps to the hypervisor in a VM (tens of microseconds
/// under nested virtualization), too slow for every signal delivery.
pub fn xsave_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        let r = std::arch::x86_64::__cpuid_count(0xd, 0);
        (r.ebx as usize).clamp(512 + 64, 1 << 16)
    })
}

/// The full XSAVE area of a stopped tracee (PTRACE_GETREGSET
/// NT_X86_XSTATE); its software-reserved bytes describe the layout.
pub fn get_xstate(pid: i32) -> Result<Vec<u8>, PlatformError> {
    let mut buf = vec![0u8; xsave_size()];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the kernel writes at most iov_len bytes into buf.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            pid,
            NT_X86_XSTATE,
            &mut iov as *mut libc::iovec,
        )
    };
    if r < 0 {
        return Err(PlatformError::Host {
            op: "PTRACE_GETREGSET",
            err: nix::Error::last(),
        });
    }
    buf.truncate(iov.iov_len);
    Ok(buf)
}

/// Load an XSAVE area into a stopped tracee; the kernel validates it.
pub fn set_xstate(pid: i32, xs: &[u8]) -> Result<(), PlatformError> {
    let mut buf = xs.to_vec();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the kernel reads at most iov_len bytes from buf.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGSET,
            pid,
            NT_X86_XSTATE,
            &mut iov as *mut libc::iovec,
        )
    };
    if r < 0 {
        return Err(PlatformError::Host {
            op: "PTRACE_SETREGSET",
            err: nix::Error::last(),
        });
    }
    Ok(())
}
