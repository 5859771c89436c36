//! Signal actions, masks and sending.

use super::Args;
use crate::abi::*;
use crate::kernel::task::{SigAction, Task};

const SIGKILL: usize = 9;
const SIGSTOP: usize = 19;
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

pub fn sys_rt_sigaction(t: &mut Task, a: &Args) -> KResult<u64> {
    let sig = a.int(0);
    if a.u(3) != 8 {
        return Err(Errno::EINVAL);
    }
    if !(1..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let new: Option<SigAction> = if a.u(1) != 0 {
        let w: [u64; 2] = t.read_obj(a.u(1))?;
        let w2: [u64; 2] = t.read_obj(a.u(1) + 16)?;
        Some(SigAction {
            handler: w[0],
            flags: w[1],
            restorer: w2[0],
            mask: w2[1] & !UNBLOCKABLE,
        })
    } else {
        None
    };
    if new.is_some() && (sig as usize == SIGKILL || sig as usize == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let old = {
        let mut acts = t.sigactions.lock().map_err(|_| Errno::EINVAL)?;
        let old = acts[(sig - 1) as usize];
        if let Some(n) = new {
            acts[(sig - 1) as usize] = n;
        }
        old
    };
    if a.u(2) != 0 {
        t.write_obj(a.u(2), &[old.handler, old.flags])?;
        t.write_obj(a.u(2) + 16, &[old.restorer, old.mask])?;
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(t: &mut Task, a: &Args) -> KResult<u64> {
    const SIG_BLOCK: i32 = 0;
    const SIG_UNBLOCK: i32 = 1;
    const SIG_SETMASK: i32 = 2;
    if a.u(3) != 8 {
        return Err(Errno::EINVAL);
    }
    let old = t.sigmask;
    if a.u(1) != 0 {
        let set: u64 = t.read_obj(a.u(1))?;
        t.sigmask = match a.int(0) {
            SIG_BLOCK => old | set,
            SIG_UNBLOCK => old & !set,
            SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        } & !UNBLOCKABLE;
    }
    if a.u(2) != 0 {
        t.write_obj(a.u(2), &old)?;
    }
    Ok(0)
}

pub fn sys_sigaltstack(t: &mut Task, a: &Args) -> KResult<u64> {
    // Kept for the signals subsystem; report "disabled" until then.
    if a.u(1) != 0 {
        t.write_obj(a.u(1), &[0u64, 2 /* SS_DISABLE */])?;
        t.write_obj(a.u(1) + 16, &0u64)?;
    }
    if a.u(0) != 0 {
        let ss: [u64; 3] = [
            t.read_obj(a.u(0))?,
            t.read_obj(a.u(0) + 8)?,
            t.read_obj(a.u(0) + 16)?,
        ];
        let flags = ss[1] as u32 as i32;
        if flags & !(2 | (1 << 31)) != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & 2 == 0 && ss[2] < 2048 {
            return Err(Errno::ENOMEM);
        }
    }
    Ok(0)
}

fn check_sig(sig: i32) -> KResult<()> {
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

pub fn sys_kill(t: &mut Task, a: &Args) -> KResult<u64> {
    let (pid, sig) = (a.int(0), a.int(1));
    check_sig(sig)?;
    if pid == t.tgid || pid == 0 || pid == -1 {
        t.send_signal_self(sig);
        return Ok(0);
    }
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    Err(Errno::ESRCH)
}

pub fn sys_tkill(t: &mut Task, a: &Args) -> KResult<u64> {
    let (tid, sig) = (a.int(0), a.int(1));
    check_sig(sig)?;
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if tid != t.tid {
        return Err(Errno::ESRCH);
    }
    t.send_signal_self(sig);
    Ok(0)
}

pub fn sys_tgkill(t: &mut Task, a: &Args) -> KResult<u64> {
    let (tgid, tid, sig) = (a.int(0), a.int(1), a.int(2));
    check_sig(sig)?;
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if tgid != t.tgid || tid != t.tid {
        return Err(Errno::ESRCH);
    }
    t.send_signal_self(sig);
    Ok(0)
}
