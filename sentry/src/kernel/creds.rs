//! Credentials and the DAC permission check.

use crate::abi::*;
use crate::vfs::Meta;

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
}

impl Creds {
    pub fn root() -> Creds {
        Creds::default()
    }

    pub fn new(uid: u32, gid: u32) -> Creds {
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
        }
    }

    /// May these credentials access an inode with `mask` (4 read, 2 write,
    /// 1 exec/search)? uid 0 has CAP_DAC_OVERRIDE inside the sandbox.
    pub fn may_access(&self, m: &Meta, mask: u32) -> KResult<()> {
        if self.fsuid == 0 {
            // Root may execute only if some x bit is set (or it is a directory).
            if mask & 1 != 0 && !m.is_dir() && m.mode & 0o111 == 0 {
                return Err(Errno::EACCES);
            }
            return Ok(());
        }
        let bits = if m.uid == self.fsuid {
            (m.mode >> 6) & 7
        } else if m.gid == self.fsgid || self.groups.contains(&m.gid) {
            (m.mode >> 3) & 7
        } else {
            m.mode & 7
        };
        if bits & mask == mask {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }
}
