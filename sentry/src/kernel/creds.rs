//! Credentials, capabilities and the DAC permission check, with Linux's
//! rules for how set*id calls change capabilities (capabilities(7)).

use crate::abi::*;
use crate::vfs::Meta;

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_LAST: u32 = 40;
/// Every capability Linux 6.x knows.
pub const ALL_CAPS: u64 = (1u64 << (CAP_LAST + 1)) - 1;

#[derive(Clone, Debug, Default)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    pub cap_effective: u64,
    pub cap_permitted: u64,
    pub cap_inheritable: u64,
    pub cap_bounding: u64,
    pub cap_ambient: u64,
    /// prctl(PR_SET_KEEPCAPS).
    pub keep_caps: bool,
    /// prctl(PR_SET_NO_NEW_PRIVS): sticky once set.
    pub no_new_privs: bool,
}

impl Creds {
    pub fn root() -> Creds {
        Creds::new(0, 0)
    }

    pub fn new(uid: u32, gid: u32) -> Creds {
        let caps = if uid == 0 { ALL_CAPS } else { 0 };
        Creds {
            uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            gid,
            egid: gid,
            sgid: gid,
            fsgid: gid,
            groups: vec![],
            cap_effective: caps,
            cap_permitted: caps,
            cap_inheritable: 0,
            cap_bounding: ALL_CAPS,
            cap_ambient: 0,
            keep_caps: false,
            no_new_privs: false,
        }
    }

    /// Linux's execve transition (capabilities(7), security/commoncap.c) for
    /// a file without capabilities or set-id bits: for root the file counts
    /// as having all of them.
    pub fn on_exec(&mut self) {
        // Ambient capabilities survive an exec of a file without file
        // capabilities or set-id bits, bounded by permitted and inheritable.
        self.cap_ambient &= self.cap_permitted & self.cap_inheritable;
        if self.euid == 0 || self.uid == 0 {
            // fP = fI = all: pP' = bounding | pI; pE' = pP' for euid 0.
            self.cap_permitted = self.cap_inheritable | self.cap_bounding | self.cap_ambient;
            self.cap_effective = if self.euid == 0 {
                self.cap_permitted
            } else {
                self.cap_ambient
            };
        } else {
            self.cap_permitted = self.cap_ambient;
            self.cap_effective = self.cap_ambient;
        }
        self.keep_caps = false;
    }

    pub fn has_cap(&self, cap: u32) -> bool {
        self.cap_effective & (1 << cap) != 0
    }

    /// Apply Linux's capability transitions after a uid change
    /// (old real/effective/saved uids given).
    pub fn fix_caps_after_setuid(&mut self, old: (u32, u32, u32)) {
        let (or, oe, os) = old;
        let was_root = or == 0 || oe == 0 || os == 0;
        let now_root = self.uid == 0 || self.euid == 0 || self.suid == 0;
        if was_root && !now_root && !self.keep_caps {
            self.cap_permitted = 0;
            self.cap_effective = 0;
        }
        if oe == 0 && self.euid != 0 {
            self.cap_effective = 0;
        }
        if oe != 0 && self.euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
        // The filesystem uid follows the effective uid.
        const FS_CAPS: u64 = (1 << CAP_CHOWN)
            | (1 << CAP_DAC_OVERRIDE)
            | (1 << CAP_DAC_READ_SEARCH)
            | (1 << CAP_FOWNER)
            | (1 << 4)
            | (1 << 9)
            | (1 << 27);
        if self.fsuid != 0 && oe == 0 {
            self.cap_effective &= !FS_CAPS;
        }
    }

    /// May these credentials access an inode with `mask` (4 read, 2 write,
    /// 1 exec/search)?
    pub fn may_access(&self, m: &Meta, mask: u32) -> KResult<()> {
        let bits = if m.uid == self.fsuid {
            (m.mode >> 6) & 7
        } else if m.gid == self.fsgid || self.groups.contains(&m.gid) {
            (m.mode >> 3) & 7
        } else {
            m.mode & 7
        };
        if bits & mask == mask {
            return Ok(());
        }
        if self.has_cap(CAP_DAC_OVERRIDE) {
            // Execute needs some x bit on non-directories even for root.
            if mask & 1 != 0 && !m.is_dir() && m.mode & 0o111 == 0 {
                return Err(Errno::EACCES);
            }
            return Ok(());
        }
        if self.has_cap(CAP_DAC_READ_SEARCH) && mask & 2 == 0 && (mask & 1 == 0 || m.is_dir()) {
            return Ok(());
        }
        Err(Errno::EACCES)
    }
}
