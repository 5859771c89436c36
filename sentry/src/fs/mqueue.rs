//! POSIX message queues and the mqueue filesystem (mq_overview(7)).
//!
//! The sandbox is one IPC namespace: its queues live in one registry,
//! name -> queue inode. Every mount of type mqueue (an OCI mount, devfs's
//! /dev/mqueue) is a root dentry over the same directory inode, whose
//! lookups and listings read the registry, so all of them show the same
//! queues. `mq_open` descriptors hang off an internal root that is mounted
//! nowhere, so /proc/self/fd shows "/name" as on Linux.
//!
//! A queue keeps its messages by priority (highest first, FIFO within one
//! priority). As Linux does, a sender finding a receiver blocked hands the
//! message to it directly, and a receiver emptying a slot of a full queue
//! moves the first blocked sender's message in; an mq_notify registration
//! fires only when a message lands in an empty queue nobody waits on.

use crate::abi::*;
use crate::kernel::task::Task;
use crate::signals::{self, WaitOutcome};
use crate::vfs::file::DirEntry;
use crate::vfs::{lock, Dentry, FsType, Inode, Meta, Node};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// Priorities are below this.
pub const MQ_PRIO_MAX: u32 = 32768;
/// /proc/sys/fs/mqueue defaults (Linux's).
pub const MSG_MAX: i64 = 10;
pub const MSGSIZE_MAX: i64 = 8192;
pub const MSG_DEFAULT: i64 = 10;
pub const MSGSIZE_DEFAULT: i64 = 8192;
pub const QUEUES_MAX: usize = 256;
/// Limits with CAP_SYS_RESOURCE.
const HARD_MSGMAX: i64 = 65536;
const HARD_MSGSIZEMAX: i64 = 16 << 20;
/// What Linux charges per message slot against RLIMIT_MSGQUEUE besides
/// the message text (struct msg_msg, struct posix_msg_tree_node).
const SLOT_COST: u64 = 48;
const RLIMIT_MSGQUEUE: usize = 12;
/// st_size of a queue file, and of each directory entry.
const FILENT_SIZE: u64 = 80;
const DIRENT_SIZE: u64 = 20;
/// Device number of the mqueue filesystem; statfs magic.
pub const MQUEUE_DEV: u64 = 0x14;
pub const MQUEUE_MAGIC: u64 = 0x1980_0202;

pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;
/// si_code of a message-arrival signal.
pub const SI_MESGQ: i32 = -3;

/// An mq_notify registration.
#[derive(Clone, Copy, Debug)]
pub struct Notification {
    /// The registering thread group.
    pub owner: i32,
    /// SIGEV_NONE or SIGEV_SIGNAL.
    pub how: i32,
    pub signo: i32,
    pub value: u64,
}

type Msg = (u32, Vec<u8>);

#[derive(Default)]
struct State {
    /// Messages by priority, each FIFO.
    msgs: BTreeMap<u32, VecDeque<Vec<u8>>>,
    curmsgs: i64,
    /// Bytes of message text queued.
    qsize: u64,
    notify: Option<Notification>,
    next_id: u64,
    /// Blocked receivers, first come first served.
    receivers: VecDeque<u64>,
    /// Messages handed to blocked receivers.
    handed: HashMap<u64, Msg>,
    /// Blocked senders with their message.
    senders: VecDeque<(u64, Msg)>,
    /// Blocked senders whose message went into the queue.
    delivered: HashSet<u64>,
}

impl State {
    fn insert(&mut self, (prio, data): Msg) {
        self.curmsgs += 1;
        self.qsize += data.len() as u64;
        self.msgs.entry(prio).or_default().push_back(data);
    }

    fn take(&mut self) -> Option<Msg> {
        let mut e = self.msgs.last_entry()?;
        let prio = *e.key();
        let data = e.get_mut().pop_front()?;
        if e.get().is_empty() {
            e.remove();
        }
        self.curmsgs -= 1;
        self.qsize -= data.len() as u64;
        Some((prio, data))
    }
}

pub struct Queue {
    st: Mutex<State>,
    cv: Condvar,
    pub maxmsg: i64,
    pub msgsize: i64,
    /// (real uid, bytes) charged against RLIMIT_MSGQUEUE until the queue
    /// is gone (unlinked and closed).
    charge: (u32, u64),
}

impl signals::Wakeable for Queue {
    fn wake_all(&self) {
        let _g = lock(&self.st);
        self.cv.notify_all();
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let mut c = lock(&reg().charged);
        if let Some(v) = c.get_mut(&self.charge.0) {
            *v = v.saturating_sub(self.charge.1);
        }
    }
}

/// How a blocking operation ended without a message.
fn wait_error(out: WaitOutcome) -> Option<Errno> {
    match out {
        WaitOutcome::Interrupted => Some(Errno::ERESTARTSYS),
        WaitOutcome::TimedOut => Some(Errno::ETIMEDOUT),
        WaitOutcome::Woken => None,
    }
}

impl Queue {
    /// Queue a message; returns the registration to fire, if any.
    pub fn send(
        self: &Arc<Self>,
        msg: Msg,
        nonblock: bool,
        deadline: Option<Instant>,
    ) -> KResult<Option<Notification>> {
        let mut st = lock(&self.st);
        let mut fire = None;
        if st.curmsgs >= self.maxmsg {
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let id = st.next_id;
            st.next_id += 1;
            st.senders.push_back((id, msg));
            loop {
                let (g, out) = signals::wait(self.clone(), &self.cv, st, deadline);
                st = g;
                if st.delivered.remove(&id) {
                    break;
                }
                if let Some(e) = wait_error(out) {
                    st.senders.retain(|(i, _)| *i != id);
                    return Err(e);
                }
            }
        } else if let Some(rid) = st.receivers.pop_front() {
            st.handed.insert(rid, msg);
            self.cv.notify_all();
        } else {
            st.insert(msg);
            if st.curmsgs == 1 {
                fire = st.notify.take();
            }
        }
        drop(st);
        crate::syscalls::poll::hub().notify();
        Ok(fire)
    }

    /// Take the highest-priority message.
    pub fn receive(self: &Arc<Self>, nonblock: bool, deadline: Option<Instant>) -> KResult<Msg> {
        let mut st = lock(&self.st);
        let msg = match st.take() {
            Some(m) => {
                if let Some((sid, smsg)) = st.senders.pop_front() {
                    st.insert(smsg);
                    st.delivered.insert(sid);
                    self.cv.notify_all();
                }
                m
            }
            None => {
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
                let id = st.next_id;
                st.next_id += 1;
                st.receivers.push_back(id);
                loop {
                    let (g, out) = signals::wait(self.clone(), &self.cv, st, deadline);
                    st = g;
                    if let Some(m) = st.handed.remove(&id) {
                        break m;
                    }
                    if let Some(e) = wait_error(out) {
                        st.receivers.retain(|i| *i != id);
                        return Err(e);
                    }
                }
            }
        };
        drop(st);
        crate::syscalls::poll::hub().notify();
        Ok(msg)
    }

    pub fn curmsgs(&self) -> i64 {
        lock(&self.st).curmsgs
    }

    /// poll(2) readiness.
    pub fn poll(&self) -> i16 {
        use crate::syscalls::poll::*;
        let st = lock(&self.st);
        let mut r = 0;
        if st.curmsgs > 0 {
            r |= POLLIN | POLLRDNORM;
        }
        if st.curmsgs < self.maxmsg {
            r |= POLLOUT | POLLWRNORM;
        }
        r
    }

    /// mq_notify: register (`Some`) or remove (`None`) `owner`'s
    /// notification. A registration whose owner has exited is gone.
    pub fn set_notify(&self, t: &Task, n: Option<Notification>) -> KResult<()> {
        let mut st = lock(&self.st);
        if let Some(cur) = st.notify {
            if t.k.process(cur.owner).is_none() {
                st.notify = None;
            }
        }
        match n {
            None => {
                if st.notify.map(|c| c.owner) == Some(t.tgid) {
                    st.notify = None;
                }
            }
            Some(_) if st.notify.is_some() => return Err(Errno::EBUSY),
            Some(n) => st.notify = Some(n),
        }
        Ok(())
    }

    /// A process closed a descriptor of this queue: its registration goes.
    pub fn flush(&self, tgid: i32) {
        let mut st = lock(&self.st);
        if st.notify.map(|c| c.owner) == Some(tgid) {
            st.notify = None;
        }
    }

    /// What reading the queue's file gives.
    pub fn status(&self) -> Vec<u8> {
        let st = lock(&self.st);
        let (how, signo, pid) = match st.notify {
            Some(n) => (
                n.how,
                if n.how == SIGEV_SIGNAL { n.signo } else { 0 },
                n.owner,
            ),
            None => (0, 0, 0),
        };
        format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            st.qsize, how, signo, pid
        )
        .into_bytes()
    }

    pub fn read_status(&self, buf: &mut [u8], off: u64) -> KResult<usize> {
        let s = self.status();
        let start = (off as usize).min(s.len());
        let n = buf.len().min(s.len() - start);
        buf[..n].copy_from_slice(&s[start..start + n]);
        Ok(n)
    }
}

/// Queue inodes by name, with their creation order.
type Queues = BTreeMap<Vec<u8>, (u64, Arc<Inode>)>;

struct Registry {
    queues: Mutex<Queues>,
    created: std::sync::atomic::AtomicU64,
    /// The directory every mqueue mount shows.
    root: Arc<Inode>,
    /// Parent of mq_open's dentries: mounted nowhere.
    internal: Arc<Dentry>,
    /// RLIMIT_MSGQUEUE bytes in use per real uid.
    charged: Mutex<HashMap<u32, u64>>,
}

fn reg() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let mut m = Meta::new(S_IFDIR | 0o1777, MQUEUE_DEV, 0, 0);
        m.size = 2 * DIRENT_SIZE;
        let root = Inode::new(Node::MqDir, m);
        Registry {
            queues: Mutex::new(BTreeMap::new()),
            created: std::sync::atomic::AtomicU64::new(0),
            internal: Dentry::new_root(root.clone(), FsType::Mqueue, None),
            root,
            charged: Mutex::new(HashMap::new()),
        }
    })
}

/// A mount of the mqueue filesystem on `at`.
pub fn mount_root(at: &Arc<Dentry>, readonly: bool) -> Arc<Dentry> {
    Dentry::new_mount_root(
        reg().root.clone(),
        FsType::Mqueue,
        Some(at.clone()),
        readonly,
    )
}

/// Look a queue up in a mqueue directory.
pub fn lookup(dir: &Arc<Dentry>, name: &[u8]) -> KResult<Arc<Dentry>> {
    let inode = lock(&reg().queues).get(name).map(|(_, i)| i.clone());
    inode
        .map(|i| Dentry::new_child(dir, name, i))
        .ok_or(Errno::ENOENT)
}

/// The directory's entries, newest first as Linux lists them.
pub fn list() -> Vec<DirEntry> {
    let mut v: Vec<_> = lock(&reg().queues)
        .iter()
        .map(|(n, (seq, i))| (*seq, n.clone(), lock(&i.meta).ino))
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    v.into_iter().map(|(_, n, ino)| (n, ino, DT_REG)).collect()
}

fn queue_of(inode: &Inode) -> KResult<Arc<Queue>> {
    match &inode.node {
        Node::Mqueue(q) => Ok(q.clone()),
        _ => Err(Errno::EBADF),
    }
}

fn dir_changed(delta: i64) {
    let mut m = lock(&reg().root.meta);
    m.size = m.size.saturating_add_signed(delta);
    m.mtime = crate::vfs::now();
    m.ctime = m.mtime;
}

/// Check mq_open's attributes (mq_maxmsg, mq_msgsize) for a new queue.
fn attr_ok(t: &Task, maxmsg: i64, msgsize: i64) -> KResult<()> {
    if maxmsg <= 0 || msgsize <= 0 {
        return Err(Errno::EINVAL);
    }
    let (mm, ms) = if t.creds().has_cap(crate::kernel::creds::CAP_SYS_RESOURCE) {
        (HARD_MSGMAX, HARD_MSGSIZEMAX)
    } else {
        (MSG_MAX, MSGSIZE_MAX)
    };
    if maxmsg > mm || msgsize > ms {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Create queue `name` (the registry is locked by the caller) with
/// `mode` (umask applied here) and attributes (defaults if `None`).
fn create_locked(
    t: &Task,
    queues: &mut Queues,
    name: &[u8],
    mode: u32,
    attr: Option<(i64, i64)>,
) -> KResult<Arc<Inode>> {
    let c = t.creds();
    t.may_access(&reg().root.meta(), 2 | 1)?;
    if queues.len() >= QUEUES_MAX && !c.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE) {
        return Err(Errno::ENOSPC);
    }
    let (maxmsg, msgsize) = match attr {
        Some((m, s)) => {
            attr_ok(t, m, s)?;
            (m, s)
        }
        None => (MSG_MAX.min(MSG_DEFAULT), MSGSIZE_MAX.min(MSGSIZE_DEFAULT)),
    };
    let bytes = (maxmsg as u64)
        .saturating_mul(msgsize as u64)
        .saturating_add(maxmsg as u64 * SLOT_COST)
        .saturating_add((maxmsg as u64).min(MQ_PRIO_MAX as u64) * SLOT_COST);
    {
        let limit = t.rlimit(RLIMIT_MSGQUEUE).cur;
        let mut charged = lock(&reg().charged);
        let used = charged.entry(c.uid).or_insert(0);
        if used.saturating_add(bytes) > limit {
            return Err(Errno::EMFILE);
        }
        *used += bytes;
    }
    let q = Arc::new(Queue {
        st: Mutex::new(State::default()),
        cv: Condvar::new(),
        maxmsg,
        msgsize,
        charge: (c.uid, bytes),
    });
    let mut m = Meta::new(
        S_IFREG | (mode & 0o7777 & !t.umask()),
        MQUEUE_DEV,
        c.fsuid,
        c.fsgid,
    );
    m.size = FILENT_SIZE;
    let inode = Inode::new(Node::Mqueue(q), m);
    let seq = reg()
        .created
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    queues.insert(name.to_vec(), (seq, inode.clone()));
    dir_changed(DIRENT_SIZE as i64);
    Ok(inode)
}

/// open(O_CREAT) of a missing name in an mqueue directory: a new queue
/// with the default attributes.
pub fn create_file(t: &Task, dir: &Arc<Dentry>, name: &[u8], mode: u32) -> KResult<Arc<Dentry>> {
    if dir.readonly() {
        return Err(Errno::EROFS);
    }
    let mut queues = lock(&reg().queues);
    if queues.contains_key(name) {
        return Err(Errno::EEXIST);
    }
    let inode = create_locked(t, &mut queues, name, mode, None)?;
    Ok(Dentry::new_child(dir, name, inode))
}

/// Remove a queue's name (mq_unlink, unlink(2) in an mqueue directory;
/// permissions checked by the caller). The queue lives on while open.
pub fn remove(name: &[u8]) -> KResult<()> {
    let (_, inode) = lock(&reg().queues).remove(name).ok_or(Errno::ENOENT)?;
    {
        let mut m = lock(&inode.meta);
        m.nlink = 0;
        m.ctime = crate::vfs::now();
    }
    dir_changed(-(DIRENT_SIZE as i64));
    Ok(())
}

/// A queue name as the kernel sees it (glibc dropped the leading '/').
fn check_name(name: &[u8]) -> KResult<()> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EACCES);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// mq_open: the queue's new descriptor file (close-on-exec, always).
pub fn open(
    t: &Task,
    name: &[u8],
    oflag: i32,
    mode: u32,
    attr: Option<(i64, i64)>,
) -> KResult<Arc<crate::vfs::file::File>> {
    check_name(name)?;
    let mut queues = lock(&reg().queues);
    let inode = match queues.get(name) {
        Some((_, i)) => {
            if oflag & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
                return Err(Errno::EEXIST);
            }
            let acc = match oflag & O_ACCMODE {
                O_RDONLY => 4,
                O_WRONLY => 2,
                O_RDWR => 6,
                _ => return Err(Errno::EINVAL),
            };
            t.may_access(&i.meta(), acc)?;
            i.clone()
        }
        None if oflag & O_CREAT == 0 => return Err(Errno::ENOENT),
        None => create_locked(t, &mut queues, name, mode, attr)?,
    };
    drop(queues);
    let q = queue_of(&inode)?;
    let d = Dentry::new_child(&reg().internal, name, inode);
    Ok(crate::vfs::file::File::new(
        Some(d),
        crate::vfs::file::FileKind::Mqueue(q),
        oflag & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
    ))
}

/// mq_unlink.
pub fn unlink(t: &Task, name: &[u8]) -> KResult<()> {
    check_name(name)?;
    let inode = lock(&reg().queues)
        .get(name)
        .map(|(_, i)| i.clone())
        .ok_or(Errno::ENOENT)?;
    let dir = reg().root.meta();
    t.may_access(&dir, 2 | 1)?;
    let c = t.creds();
    let vm = inode.meta();
    if dir.mode & 0o1000 != 0
        && !c.has_cap(crate::kernel::creds::CAP_FOWNER)
        && c.fsuid != dir.uid
        && c.fsuid != vm.uid
    {
        return Err(Errno::EPERM);
    }
    remove(name)
}

/// The O_LARGEFILE F_GETFL shows: open(2) adds it, mq_open does not.
pub fn largefile(f: &crate::vfs::file::File) -> i32 {
    let by_mq_open = matches!(f.kind, crate::vfs::file::FileKind::Mqueue(_))
        && f.dentry
            .as_ref()
            .and_then(|d| d.parent.as_ref())
            .is_some_and(|p| Arc::ptr_eq(p, &reg().internal));
    if by_mq_open {
        0
    } else {
        0o100000
    }
}
