//! Futexes: wait queues keyed by memory location, private (address space +
//! address) or shared (memory-file offset).

use crate::abi::*;
use crate::vfs::lock;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Private { mm: usize, addr: u64 },
    Shared { offset: u64 },
}

struct Waiter {
    woken: Mutex<bool>,
    cv: Condvar,
    bitset: u32,
}

impl crate::signals::Wakeable for Waiter {
    fn wake_all(&self) {
        let _g = lock(&self.woken);
        self.cv.notify_all();
    }
}

#[derive(Default)]
pub struct FutexTable {
    queues: Mutex<HashMap<Key, Vec<Arc<Waiter>>>>,
}

impl FutexTable {
    /// Sleep on `key` if `matches()` (evaluated under the table lock, so no
    /// wake-up is lost) says the futex word still holds the expected value.
    pub fn wait(
        &self,
        key: Key,
        bitset: u32,
        deadline: Option<Instant>,
        matches: impl FnOnce() -> KResult<bool>,
    ) -> KResult<()> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let w = Arc::new(Waiter {
            woken: Mutex::new(false),
            cv: Condvar::new(),
            bitset,
        });
        {
            let mut q = lock(&self.queues);
            if !matches()? {
                return Err(Errno::EAGAIN);
            }
            q.entry(key).or_default().push(w.clone());
        }
        let mut woken = lock(&w.woken);
        let mut result = Errno::ETIMEDOUT;
        while !*woken {
            if matches!(deadline, Some(d) if Instant::now() >= d) {
                break;
            }
            let (g, out) = crate::signals::wait(w.clone(), &w.cv, woken, deadline);
            woken = g;
            if let crate::signals::WaitOutcome::Interrupted = out {
                if !*woken {
                    result = Errno::ERESTARTSYS;
                }
                break;
            }
        }
        if *woken {
            return Ok(());
        }
        drop(woken);
        // Timed out: leave the queue unless a waker got us meanwhile.
        let mut q = lock(&self.queues);
        if *lock(&w.woken) {
            return Ok(());
        }
        if let Some(v) = q.get_mut(&key) {
            v.retain(|x| !Arc::ptr_eq(x, &w));
            if v.is_empty() {
                q.remove(&key);
            }
        }
        Err(result)
    }

    /// Wake up to `n` waiters whose bitset intersects `bitset`.
    pub fn wake(&self, key: Key, n: u32, bitset: u32) -> KResult<u64> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let mut q = lock(&self.queues);
        Ok(Self::wake_locked(&mut q, key, n, bitset))
    }

    fn wake_locked(q: &mut HashMap<Key, Vec<Arc<Waiter>>>, key: Key, n: u32, bitset: u32) -> u64 {
        let Some(v) = q.get_mut(&key) else { return 0 };
        let mut woken = 0u64;
        let mut i = 0;
        while i < v.len() && woken < n as u64 {
            if v[i].bitset & bitset != 0 {
                let w = v.remove(i);
                *lock(&w.woken) = true;
                w.cv.notify_one();
                woken += 1;
            } else {
                i += 1;
            }
        }
        if v.is_empty() {
            q.remove(&key);
        }
        woken
    }

    /// Wake `n` waiters of `from`, move up to `n2` others to `to`, if
    /// `check()` passes (FUTEX_CMP_REQUEUE).
    pub fn requeue(
        &self,
        from: Key,
        to: Key,
        n: u32,
        n2: u32,
        check: impl FnOnce() -> KResult<bool>,
    ) -> KResult<u64> {
        let mut q = lock(&self.queues);
        if !check()? {
            return Err(Errno::EAGAIN);
        }
        let woken = Self::wake_locked(&mut q, from, n, u32::MAX);
        let mut moved = 0u64;
        if from != to {
            if let Some(mut v) = q.remove(&from) {
                let take = (n2 as usize).min(v.len());
                let rest = v.split_off(take);
                moved = v.len() as u64;
                q.entry(to).or_default().extend(v);
                if !rest.is_empty() {
                    q.insert(from, rest);
                }
            }
        }
        Ok(woken + moved)
    }

    /// FUTEX_WAKE_OP: `op()` updates the second word under the lock and
    /// says whether its waiters should be woken too.
    pub fn wake_op(
        &self,
        k1: Key,
        k2: Key,
        n1: u32,
        n2: u32,
        op: impl FnOnce() -> KResult<bool>,
    ) -> KResult<u64> {
        let mut q = lock(&self.queues);
        let cond = op()?;
        let mut n = Self::wake_locked(&mut q, k1, n1, u32::MAX);
        if cond {
            n += Self::wake_locked(&mut q, k2, n2, u32::MAX);
        }
        Ok(n)
    }
}
