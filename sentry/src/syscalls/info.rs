//! System identity: uname, sysinfo.

use super::Args;
use crate::abi::*;
use crate::kernel::task::Task;
use crate::vfs::lock;

pub fn sys_uname(t: &mut Task, a: &Args) -> KResult<u64> {
    let mut buf = [0u8; 65 * 6];
    let fields: [Vec<u8>; 6] = [
        b"Linux".to_vec(),
        lock(&t.k.hostname).clone(),
        crate::kernel::RELEASE.as_bytes().to_vec(),
        b"#1 SMP PREEMPT_DYNAMIC rvisor".to_vec(),
        b"x86_64".to_vec(),
        lock(&t.k.domainname).clone(),
    ];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        buf[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
    }
    t.copy_out(a.u(0), &buf).map(|_| 0)
}

/// sethostname(2) and setdomainname(2): CAP_SYS_ADMIN in the sandbox's
/// UTS namespace, at most 64 bytes.
fn set_uts_name(t: &mut Task, a: &Args, domain: bool) -> KResult<u64> {
    const CAP_SYS_ADMIN: u32 = 21;
    if !t.creds().has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let len = a.u(1) as i64;
    if !(0..=64).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let mut name = vec![0u8; len as usize];
    t.copy_in(a.u(0), &mut name)?;
    *lock(if domain {
        &t.k.domainname
    } else {
        &t.k.hostname
    }) = name;
    Ok(0)
}

pub fn sys_sethostname(t: &mut Task, a: &Args) -> KResult<u64> {
    set_uts_name(t, a, false)
}

pub fn sys_setdomainname(t: &mut Task, a: &Args) -> KResult<u64> {
    set_uts_name(t, a, true)
}

pub fn sys_sysinfo(t: &mut Task, a: &Args) -> KResult<u64> {
    let mut b = [0u8; 112];
    let up = t.k.boot.elapsed().as_secs();
    let total = t.k.mem_limit;
    let used = t.k.mf.used();
    b[0..8].copy_from_slice(&up.to_le_bytes());
    b[32..40].copy_from_slice(&total.to_le_bytes());
    b[40..48].copy_from_slice(&total.saturating_sub(used).to_le_bytes());
    b[80..82].copy_from_slice(&(t.k.tgids().len() as u16).to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    t.copy_out(a.u(0), &b).map(|_| 0)
}
