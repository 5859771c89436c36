//! epoll: an interest list over file descriptions, evaluated through the
//! same readiness function as poll(2). Level-triggered, EPOLLONESHOT and
//! (approximated) EPOLLET; epoll files nest.

use crate::abi::*;
use crate::vfs::file::File;
use crate::vfs::lock;
use std::collections::BTreeMap;
use std::sync::{Mutex, Weak};

pub const EPOLLIN: u32 = 0x1;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

struct Entry {
    /// Weak: an interest does not keep the file open (closing its last fd
    /// removes it, as on Linux).
    file: Weak<File>,
    events: u32,
    data: u64,
    /// EPOLLONESHOT fired: silent until EPOLL_CTL_MOD re-arms it.
    disarmed: bool,
    /// EPOLLET: what was reported last, and the poll-hub generation then.
    last: u32,
    last_gen: u64,
}

#[derive(Default)]
pub struct Epoll {
    entries: Mutex<BTreeMap<i32, Entry>>,
    pub ino: u64,
}

impl Epoll {
    pub fn new() -> Epoll {
        Epoll {
            entries: Mutex::new(BTreeMap::new()),
            ino: crate::vfs::new_ino(),
        }
    }

    pub fn add(&self, fd: i32, file: &std::sync::Arc<File>, events: u32, data: u64) -> KResult<()> {
        let mut e = lock(&self.entries);
        if e.get(&fd)
            .map(|x| x.file.strong_count() > 0)
            .unwrap_or(false)
        {
            return Err(Errno::EEXIST);
        }
        e.insert(
            fd,
            Entry {
                file: std::sync::Arc::downgrade(file),
                events,
                data,
                disarmed: false,
                last: 0,
                last_gen: 0,
            },
        );
        Ok(())
    }

    pub fn modify(&self, fd: i32, events: u32, data: u64) -> KResult<()> {
        let mut e = lock(&self.entries);
        let x = e
            .get_mut(&fd)
            .filter(|x| x.file.strong_count() > 0)
            .ok_or(Errno::ENOENT)?;
        if x.events & EPOLLEXCLUSIVE != 0 || events & EPOLLEXCLUSIVE != 0 {
            return Err(Errno::EINVAL);
        }
        x.events = events;
        x.data = data;
        x.disarmed = false;
        x.last = 0;
        Ok(())
    }

    pub fn remove(&self, fd: i32) -> KResult<()> {
        let mut e = lock(&self.entries);
        match e.remove(&fd) {
            Some(x) if x.file.strong_count() > 0 => Ok(()),
            _ => Err(Errno::ENOENT),
        }
    }

    /// Collect up to `max` ready events (events, data); `depth` bounds
    /// nesting of epoll files.
    pub fn collect(&self, max: usize, depth: u32, consume: bool) -> Vec<(u32, u64)> {
        let gen = crate::syscalls::poll::hub_generation();
        let mut out = Vec::new();
        let mut e = lock(&self.entries);
        e.retain(|_, x| x.file.strong_count() > 0);
        for x in e.values_mut() {
            if out.len() >= max {
                break;
            }
            if x.disarmed {
                continue;
            }
            let Some(f) = x.file.upgrade() else { continue };
            let rev = crate::syscalls::poll::readiness_depth(&f, depth) as u16 as u32;
            let mask = x.events | EPOLLERR | EPOLLHUP;
            let ready = rev & mask & !(EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE | EPOLLWAKEUP);
            if ready == 0 {
                if consume {
                    x.last = 0;
                }
                continue;
            }
            if x.events & EPOLLET != 0 && x.last == ready && x.last_gen == gen {
                continue;
            }
            if consume {
                if x.events & EPOLLONESHOT != 0 {
                    x.disarmed = true;
                }
                x.last = ready;
                x.last_gen = gen;
            }
            out.push((ready, x.data));
        }
        out
    }
}
