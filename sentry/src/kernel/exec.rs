//! execve: replace a task's image, keeping what POSIX says survives.

use super::task::{SigAction, Task, SIG_IGN};
use crate::abi::*;
use crate::loader;
use crate::vfs::lock;

pub fn execve(t: &mut Task, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> KResult<()> {
    let loaded = loader::exec(t, path, argv, envp.clone())?;
    let mut regs = t.ctx.initial_regs();
    regs.rip = loaded.entry;
    regs.rsp = loaded.sp;
    t.regs = regs;
    lock(&t.fds()).close_on_exec();
    if let Ok(mut acts) = t.sigactions.lock() {
        for a in acts.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
    }
    let name = loaded.exe.name.clone();
    *lock(&t.info.comm) = name[..name.len().min(15)].to_vec();
    *lock(&t.info.argv) = loaded.argv;
    *lock(&t.info.envv) = envp;
    *lock(&t.info.exe) = Some(loaded.exe);
    t.release_vfork();
    Ok(())
}
