//! set*id, groups and capabilities, with Linux's permission rules.

use super::Args;
use crate::abi::*;
use crate::kernel::creds::*;
use crate::kernel::task::Task;

const NOCHANGE: u32 = u32::MAX;

fn set_ids(t: &mut Task, r: u32, e: u32, s: u32, is_uid: bool, res_call: bool) -> KResult<u64> {
    let c = &t.creds;
    let (cr, ce, cs) = if is_uid {
        (c.uid, c.euid, c.suid)
    } else {
        (c.gid, c.egid, c.sgid)
    };
    let privileged = c.has_cap(if is_uid { CAP_SETUID } else { CAP_SETGID });
    let ok = |v: u32, allowed: &[u32]| v == NOCHANGE || privileged || allowed.contains(&v);
    let allowed: Vec<u32> = if res_call {
        vec![cr, ce, cs]
    } else {
        vec![cr, ce]
    };
    if !ok(r, &allowed) || !ok(e, &[cr, ce, cs]) || !ok(s, &[cr, ce, cs]) {
        return Err(Errno::EPERM);
    }
    let old = (t.creds.uid, t.creds.euid, t.creds.suid);
    let c = &mut t.creds;
    let (rr, ee, ss) = if is_uid {
        (&mut c.uid, &mut c.euid, &mut c.suid)
    } else {
        (&mut c.gid, &mut c.egid, &mut c.sgid)
    };
    let old_r = *rr;
    if r != NOCHANGE {
        *rr = r;
    }
    if e != NOCHANGE {
        *ee = e;
    }
    if s != NOCHANGE {
        *ss = s;
    } else if !res_call && (r != NOCHANGE || (e != NOCHANGE && e != old_r)) {
        // setreuid: the saved id follows the new effective id.
        *ss = *ee;
    }
    if is_uid {
        c.fsuid = c.euid;
        c.fix_caps_after_setuid(old);
        let ruid = c.uid;
        t.proc_()
            .ruid
            .store(ruid, std::sync::atomic::Ordering::Relaxed);
    } else {
        c.fsgid = c.egid;
    }
    Ok(0)
}

pub fn sys_setuid(t: &mut Task, a: &Args) -> KResult<u64> {
    let uid = a.uint(0);
    if uid == NOCHANGE {
        return Err(Errno::EINVAL);
    }
    if t.creds.has_cap(CAP_SETUID) {
        set_ids(t, uid, uid, uid, true, true)
    } else if uid == t.creds.uid || uid == t.creds.suid {
        set_ids(t, NOCHANGE, uid, NOCHANGE, true, true)
    } else {
        Err(Errno::EPERM)
    }
}

pub fn sys_setgid(t: &mut Task, a: &Args) -> KResult<u64> {
    let gid = a.uint(0);
    if gid == NOCHANGE {
        return Err(Errno::EINVAL);
    }
    if t.creds.has_cap(CAP_SETGID) {
        set_ids(t, gid, gid, gid, false, true)
    } else if gid == t.creds.gid || gid == t.creds.sgid {
        set_ids(t, NOCHANGE, gid, NOCHANGE, false, true)
    } else {
        Err(Errno::EPERM)
    }
}

pub fn sys_setreuid(t: &mut Task, a: &Args) -> KResult<u64> {
    set_ids(t, a.uint(0), a.uint(1), NOCHANGE, true, false)
}

pub fn sys_setregid(t: &mut Task, a: &Args) -> KResult<u64> {
    set_ids(t, a.uint(0), a.uint(1), NOCHANGE, false, false)
}

pub fn sys_setresuid(t: &mut Task, a: &Args) -> KResult<u64> {
    set_ids(t, a.uint(0), a.uint(1), a.uint(2), true, true)
}

pub fn sys_setresgid(t: &mut Task, a: &Args) -> KResult<u64> {
    set_ids(t, a.uint(0), a.uint(1), a.uint(2), false, true)
}

pub fn sys_setfsuid(t: &mut Task, a: &Args) -> KResult<u64> {
    let old = t.creds.fsuid;
    let u = a.uint(0);
    let c = &t.creds;
    if u != NOCHANGE && (c.has_cap(CAP_SETUID) || [c.uid, c.euid, c.suid, c.fsuid].contains(&u)) {
        t.creds.fsuid = u;
    }
    Ok(old as u64)
}

pub fn sys_setfsgid(t: &mut Task, a: &Args) -> KResult<u64> {
    let old = t.creds.fsgid;
    let g = a.uint(0);
    let c = &t.creds;
    if g != NOCHANGE && (c.has_cap(CAP_SETGID) || [c.gid, c.egid, c.sgid, c.fsgid].contains(&g)) {
        t.creds.fsgid = g;
    }
    Ok(old as u64)
}

pub fn sys_setgroups(t: &mut Task, a: &Args) -> KResult<u64> {
    let n = a.int(0);
    if !(0..=65536).contains(&n) {
        return Err(Errno::EINVAL);
    }
    if !t.creds.has_cap(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; n as usize * 4];
    t.copy_in(a.u(1), &mut raw)?;
    t.creds.groups = raw
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(0)
}

const LINUX_CAPABILITY_VERSION_1: u32 = 0x1998_0330;
const LINUX_CAPABILITY_VERSION_2: u32 = 0x2007_1026;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Check the header; returns the number of 32-bit words in the data.
fn cap_header(t: &Task, hdr: u64) -> KResult<(usize, i32)> {
    let version: u32 = t.read_obj(hdr)?;
    let pid: i32 = t.read_obj(hdr + 4)?;
    let words = match version {
        LINUX_CAPABILITY_VERSION_1 => 1,
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => 2,
        _ => {
            t.write_obj(hdr, &LINUX_CAPABILITY_VERSION_3)?;
            return Err(Errno::EINVAL);
        }
    };
    Ok((words, pid))
}

pub fn sys_capget(t: &mut Task, a: &Args) -> KResult<u64> {
    // Probing with a NULL data pointer: an unknown version is answered with
    // the preferred one written to the header and success (as Linux does).
    let (words, pid) = match cap_header(t, a.u(0)) {
        Err(Errno::EINVAL) if a.u(1) == 0 => return Ok(0),
        r => r?,
    };
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid != 0 && pid != t.tid && t.k.thread(pid).is_none() {
        return Err(Errno::ESRCH);
    }
    if a.u(1) == 0 {
        return Ok(0);
    }
    let c = &t.creds;
    let mut out = Vec::new();
    for w in 0..words {
        for v in [c.cap_effective, c.cap_permitted, c.cap_inheritable] {
            out.extend_from_slice(&((v >> (32 * w)) as u32).to_le_bytes());
        }
    }
    t.copy_out(a.u(1), &out).map(|_| 0)
}

pub fn sys_capset(t: &mut Task, a: &Args) -> KResult<u64> {
    let (words, pid) = cap_header(t, a.u(0))?;
    if pid != 0 && pid != t.tid {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; words * 12];
    t.copy_in(a.u(1), &mut raw)?;
    let word = |i: usize| {
        u32::from_le_bytes([raw[i * 4], raw[i * 4 + 1], raw[i * 4 + 2], raw[i * 4 + 3]]) as u64
    };
    let (mut e, mut p, mut i) = (0u64, 0u64, 0u64);
    for w in 0..words {
        e |= word(w * 3) << (32 * w);
        p |= word(w * 3 + 1) << (32 * w);
        i |= word(w * 3 + 2) << (32 * w);
    }
    let c = &t.creds;
    // Permitted may only shrink; effective must be within permitted;
    // inheritable within the old inheritable plus permitted (or bounding
    // with CAP_SETPCAP).
    if p & !c.cap_permitted != 0 || e & !p != 0 {
        return Err(Errno::EPERM);
    }
    let inh_limit = if c.has_cap(CAP_SETPCAP) {
        c.cap_inheritable | c.cap_bounding
    } else {
        c.cap_inheritable | c.cap_permitted
    };
    if i & !inh_limit != 0 {
        return Err(Errno::EPERM);
    }
    t.creds.cap_effective = e;
    t.creds.cap_permitted = p;
    t.creds.cap_inheritable = i;
    Ok(0)
}
