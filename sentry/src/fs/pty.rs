//! Pseudo-terminals: the sandbox's devpts instance, pty pairs, their line
//! discipline (termios, canonical editing, echo, signal characters) and
//! the controlling-terminal and job-control rules of sessions.
//!
//! One devpts instance serves the whole sandbox (every `/dev/pts`
//! directory shows the same replicas, as runc's single devpts mount does).
//! Opening `/dev/ptmx` (or `/dev/pts/ptmx`) allocates the lowest free
//! index N and a master; `/dev/pts/N` (char 136+N/256, N%256, mode 0620,
//! gid 5) appears in every registered pts directory until the master is
//! closed. Data written to the master goes through the replica's line
//! discipline (input processing, editing, echo, signals) into the
//! replica's read queue; data written to the replica goes through output
//! processing (OPOST) into the master's read queue. As on Linux there is
//! one termios per pair: termios ioctls on the master act on the
//! replica's settings.
//!
//! Controlling terminals are kept per session (`sid -> pty`): a session
//! leader without one gets the pty it opens without O_NOCTTY (or asks for
//! it with TIOCSCTTY); every process of the session shares it.

use crate::abi::*;
use crate::fs::dev::DevKind;
use crate::kernel::process::Process;
use crate::kernel::task::{Task, SIG_IGN};
use crate::kernel::Kernel;
use crate::signals::{self, SigInfo, WaitOutcome};
use crate::vfs::file::{File, FileKind};
use crate::vfs::{lock, Dentry, FsType, Inode, Meta, Node, DEV_DEV};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

// termios flags (Linux x86-64 values).
const ISTRIP: u32 = 0o40;
const INLCR: u32 = 0o100;
const IGNCR: u32 = 0o200;
const ICRNL: u32 = 0o400;
const IUCLC: u32 = 0o1000;
const IXON: u32 = 0o2000;
const IXANY: u32 = 0o4000;
const IUTF8: u32 = 0o40000;

const OPOST: u32 = 0o1;
const OLCUC: u32 = 0o2;
const ONLCR: u32 = 0o4;
const OCRNL: u32 = 0o10;
const ONOCR: u32 = 0o20;
const ONLRET: u32 = 0o40;
const TABDLY: u32 = 0o14000;
const XTABS: u32 = 0o14000;

const B38400: u32 = 0o17;
const CS8: u32 = 0o60;
const CREAD: u32 = 0o200;
const CBAUD: u32 = 0o10017;

const ISIG: u32 = 0o1;
const ICANON: u32 = 0o2;
const ECHO: u32 = 0o10;
const ECHOE: u32 = 0o20;
const ECHOK: u32 = 0o40;
const ECHONL: u32 = 0o100;
const NOFLSH: u32 = 0o200;
const TOSTOP: u32 = 0o400;
const ECHOCTL: u32 = 0o1000;
const ECHOKE: u32 = 0o4000;
const IEXTEN: u32 = 0o100000;

// c_cc indices.
const VINTR: usize = 0;
const VQUIT: usize = 1;
const VERASE: usize = 2;
const VKILL: usize = 3;
const VEOF: usize = 4;
const VTIME: usize = 5;
const VMIN: usize = 6;
const VSTART: usize = 8;
const VSTOP: usize = 9;
const VSUSP: usize = 10;
const VEOL: usize = 11;
const VREPRINT: usize = 12;
const VWERASE: usize = 14;
const VLNEXT: usize = 15;
const VEOL2: usize = 16;
const NCCS: usize = 19;

// ioctls (tty_ioctl(4)).
const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCEXCL: u64 = 0x540c;
const TIOCNXCL: u64 = 0x540d;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const TIOCINQ: u64 = 0x541b;
const TIOCPKT: u64 = 0x5420;
const TIOCNOTTY: u64 = 0x5422;
const TIOCSETD: u64 = 0x5423;
const TIOCGETD: u64 = 0x5424;
const TCSBRKP: u64 = 0x5425;
const TIOCSBRK: u64 = 0x5427;
const TIOCCBRK: u64 = 0x5428;
const TIOCGSID: u64 = 0x5429;
const TCGETS2: u64 = 0x802c_542a;
const TCSETS2: u64 = 0x402c_542b;
const TCSETSW2: u64 = 0x402c_542c;
const TCSETSF2: u64 = 0x402c_542d;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGDEV: u64 = 0x8004_5432;
const TIOCSIG: u64 = 0x4004_5436;
const TIOCGPKT: u64 = 0x8004_5438;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGEXCL: u64 = 0x8004_5440;
const TIOCGPTPEER: u64 = 0x5441;

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGQUIT: i32 = 3;
const SIGTSTP: i32 = 20;
const SIGTTIN: i32 = 21;
const SIGTTOU: i32 = 22;
const SIGWINCH: i32 = 28;
/// si_code of signals the terminal generates.
const SI_KERNEL: i32 = 0x80;

/// The line discipline's read buffer (Linux's N_TTY_BUF_SIZE).
const LDISC_BUF: usize = 4096;
/// Bytes a master may write ahead of the line discipline (the flip
/// buffers' limit).
const PENDING_CAP: usize = 65536;
/// Output the master has not read yet before a replica writer waits.
const OUT_CAP: usize = 65536;
/// Echo beyond this much unread output is dropped (as Linux drops echoes
/// when there is no room).
const ECHO_CAP: usize = 1 << 20;
/// Most ptys at once (Linux's kernel.pty.max default).
const MAX_PTYS: u32 = 4096;
/// devpts options as runc mounts it: gid=5,mode=620,ptmxmode=666.
const PTS_GID: u32 = 5;
const PTS_MODE: u32 = 0o620;

/// struct termios2 (TCGETS returns its first 36 bytes, struct termios).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
    pub ispeed: u32,
    pub ospeed: u32,
}

impl Termios {
    /// A unix98 pty replica's initial settings (tty_std_termios with
    /// c_cflag B38400|CS8|CREAD).
    fn replica_default() -> Termios {
        let mut cc = [0u8; NCCS];
        cc[VINTR] = 3;
        cc[VQUIT] = 28;
        cc[VERASE] = 127;
        cc[VKILL] = 21;
        cc[VEOF] = 4;
        cc[VTIME] = 0;
        cc[VMIN] = 1;
        cc[VSTART] = 17;
        cc[VSTOP] = 19;
        cc[VSUSP] = 26;
        cc[VREPRINT] = 18;
        cc[13] = 15; // VDISCARD
        cc[VWERASE] = 23;
        cc[VLNEXT] = 22;
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
            ispeed: 38400,
            ospeed: 38400,
        }
    }

    fn to_bytes(self) -> [u8; 44] {
        let mut b = [0u8; 44];
        b[0..4].copy_from_slice(&self.iflag.to_le_bytes());
        b[4..8].copy_from_slice(&self.oflag.to_le_bytes());
        b[8..12].copy_from_slice(&self.cflag.to_le_bytes());
        b[12..16].copy_from_slice(&self.lflag.to_le_bytes());
        b[16] = self.line;
        b[17..36].copy_from_slice(&self.cc);
        b[36..40].copy_from_slice(&self.ispeed.to_le_bytes());
        b[40..44].copy_from_slice(&self.ospeed.to_le_bytes());
        b
    }

    /// From struct termios (36 bytes) or termios2 (44 bytes); the speeds
    /// of a plain termios follow its CBAUD bits.
    fn from_bytes(b: &[u8]) -> Termios {
        let word = |o: usize| {
            let mut w = [0u8; 4];
            if let Some(s) = b.get(o..o + 4) {
                w.copy_from_slice(s);
            }
            u32::from_le_bytes(w)
        };
        let mut cc = [0u8; NCCS];
        if let Some(s) = b.get(17..36) {
            cc.copy_from_slice(s);
        }
        let cflag = word(8);
        let (ispeed, ospeed) = if b.len() >= 44 {
            (word(36), word(40))
        } else {
            let s = baud(cflag & CBAUD);
            (s, s)
        };
        Termios {
            iflag: word(0),
            oflag: word(4),
            cflag,
            lflag: word(12),
            line: b.get(16).copied().unwrap_or(0),
            cc,
            ispeed,
            ospeed,
        }
    }

    fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }
    fn i(&self, f: u32) -> bool {
        self.iflag & f != 0
    }
    fn o(&self, f: u32) -> bool {
        self.oflag & f != 0
    }
    /// Whether `c` is the (enabled) control character at `idx`.
    fn is(&self, idx: usize, c: u8) -> bool {
        let v = self.cc[idx];
        v != 0 && v == c
    }
}

/// The speed a CBAUD code stands for.
fn baud(code: u32) -> u32 {
    const TABLE: [u32; 16] = [
        0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
    ];
    const HIGH: [u32; 15] = [
        57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000,
        2500000, 3000000, 3500000, 4000000,
    ];
    if code & 0o10000 != 0 {
        let i = (code & 0o17) as usize;
        if i >= 1 {
            return HIGH.get(i - 1).copied().unwrap_or(0);
        }
        return 0;
    }
    TABLE[(code & 0o17) as usize]
}

fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

fn is_continuation(c: u8, tio: &Termios) -> bool {
    tio.i(IUTF8) && (c & 0xc0) == 0x80
}

struct State {
    /// A new master is locked until TIOCSPTLCK(0) (unlockpt).
    locked: bool,
    tio: Termios,
    /// struct winsize: rows, cols, xpixel, ypixel.
    ws: [u16; 4],
    /// Master -> replica: bytes written by the master, not yet through
    /// the line discipline.
    pending: VecDeque<u8>,
    /// Canonical mode: complete lines (an empty one is an end of file).
    lines: VecDeque<VecDeque<u8>>,
    /// Canonical mode: the line being edited.
    edit: Vec<u8>,
    /// Non-canonical mode: the input.
    raw: VecDeque<u8>,
    /// The previous character was VLNEXT: take the next literally.
    lnext: bool,
    /// Replica -> master: output after output processing, and echoes.
    out: VecDeque<u8>,
    /// Output column (for tabs and erasing) and where the line began.
    column: usize,
    canon_column: usize,
    /// Output stopped (VSTOP, TCOOFF).
    stopped: bool,
    masters: usize,
    replicas: usize,
    /// Every replica that was opened has been closed: master reads end
    /// in EIO once the output is drained.
    replica_closed: bool,
    /// The master is gone: replicas are hung up.
    hungup: bool,
    /// The session this is the controlling terminal of, and its
    /// foreground process group.
    session: Option<i32>,
    pgrp: Option<i32>,
    /// TIOCPKT on the master.
    packet: bool,
    excl: bool,
}

pub struct Pty {
    pub index: u32,
    st: Mutex<State>,
    cv: Condvar,
    k: Weak<Kernel>,
    /// /dev/pts/N: one inode in every pts directory (so a stat through
    /// any of them matches fstat of an open replica).
    inode: Arc<Inode>,
}

impl State {
    /// A new pty: locked master, Linux's default termios, no replica yet.
    fn new() -> State {
        State {
            locked: true,
            tio: Termios::replica_default(),
            ws: [0; 4],
            pending: VecDeque::new(),
            lines: VecDeque::new(),
            edit: Vec::new(),
            raw: VecDeque::new(),
            lnext: false,
            out: VecDeque::new(),
            column: 0,
            canon_column: 0,
            stopped: false,
            masters: 1,
            replicas: 0,
            replica_closed: false,
            hungup: false,
            session: None,
            pgrp: None,
            packet: false,
            excl: false,
        }
    }
}

impl signals::Wakeable for Pty {
    fn wake_all(&self) {
        let _g = lock(&self.st);
        self.cv.notify_all();
    }
}

/// Signals to send once the pty's lock is dropped: (pgrp, signal).
type Kills = Vec<(i32, i32)>;

/// The sandbox's devpts instance.
#[derive(Default)]
struct Devpts {
    ptys: Mutex<BTreeMap<u32, Weak<Pty>>>,
    /// Every /dev/pts directory (devfs's and devpts mounts).
    dirs: Mutex<Vec<Weak<Dentry>>>,
    /// Controlling terminals by session id.
    ctty: Mutex<HashMap<i32, Arc<Pty>>>,
}

fn devpts() -> &'static Devpts {
    static D: OnceLock<Devpts> = OnceLock::new();
    D.get_or_init(Devpts::default)
}

/// Device number of replica `n` (Linux's unix98 majors 136..).
pub fn replica_rdev(n: u32) -> u64 {
    let major = 136 + (n / 256) as u64;
    let minor = (n % 256) as u64;
    (major << 8) | minor
}

fn ptmx_inode() -> Arc<Inode> {
    let mut m = Meta::new(S_IFCHR | 0o666, DEV_DEV, 0, 0);
    m.rdev = DevKind::Ptmx.rdev();
    Inode::new(Node::Dev(DevKind::Ptmx), m)
}

fn replica_inode(index: u32, uid: u32) -> Arc<Inode> {
    let mut m = Meta::new(S_IFCHR | PTS_MODE, DEV_DEV, uid, PTS_GID);
    m.rdev = replica_rdev(index);
    Inode::new(Node::Dev(DevKind::Pts(index)), m)
}

/// Fill `dir` as a devpts root: its ptmx node and the live replicas; it
/// follows new and closed ptys from now on.
pub fn register_dir(dir: &Arc<Dentry>) {
    dir.add_child(b"ptmx", ptmx_inode());
    let live: Vec<Arc<Pty>> = lock(&devpts().ptys)
        .values()
        .filter_map(|w| w.upgrade())
        .collect();
    for p in live {
        if lock(&p.st).masters > 0 {
            dir.add_child(p.index.to_string().as_bytes(), p.inode.clone());
        }
    }
    let mut dirs = lock(&devpts().dirs);
    dirs.retain(|w| w.strong_count() > 0);
    dirs.push(Arc::downgrade(dir));
}

/// A devpts mount's root (config.json's devpts mount on /dev/pts).
pub fn build_devpts(mountpoint: &Arc<Dentry>) -> Arc<Dentry> {
    let root = Dentry::new_root(
        Inode::new(Node::MemDir, Meta::new(S_IFDIR | 0o755, DEV_DEV, 0, 0)),
        FsType::Dev,
        Some(mountpoint.clone()),
    );
    register_dir(&root);
    root
}

fn pts_dirs() -> Vec<Arc<Dentry>> {
    lock(&devpts().dirs)
        .iter()
        .filter_map(|w| w.upgrade())
        .collect()
}

/// The dentry of /dev/pts/N in the first pts directory, if any.
fn replica_dentry(n: u32) -> Option<Arc<Dentry>> {
    let name = n.to_string().into_bytes();
    pts_dirs()
        .into_iter()
        .find_map(|d| lock(&d.children).get(&name).cloned().flatten())
}

/// One open end of a pty (the File's kind). Dropping the last reference
/// to the file description closes that end.
pub struct TtyFile {
    pub pty: Arc<Pty>,
    pub master: bool,
}

impl Drop for TtyFile {
    fn drop(&mut self) {
        self.pty.close_end(self.master);
    }
}

fn nonblock(f: &File) -> bool {
    f.flags() & O_NONBLOCK != 0
}

/// open(2) of a pty device node: /dev/ptmx (a new master), /dev/pts/N
/// (its replica) or /dev/tty (the controlling terminal).
pub fn open(t: &Task, kind: DevKind, flags: i32) -> KResult<FileKind> {
    match kind {
        DevKind::Ptmx => {
            let p = new_pty(t)?;
            Ok(FileKind::Tty(TtyFile {
                pty: p,
                master: true,
            }))
        }
        DevKind::Pts(n) => {
            let p = lock(&devpts().ptys)
                .get(&n)
                .and_then(|w| w.upgrade())
                .ok_or(Errno::EIO)?;
            p.open_replica(t, flags)?;
            Ok(FileKind::Tty(TtyFile {
                pty: p,
                master: false,
            }))
        }
        DevKind::Tty => {
            let p = ctty_of(t).ok_or(Errno::ENXIO)?;
            {
                let mut g = lock(&p.st);
                if g.hungup {
                    return Err(Errno::EIO);
                }
                g.replicas += 1;
                g.replica_closed = false;
            }
            Ok(FileKind::Tty(TtyFile {
                pty: p,
                master: false,
            }))
        }
        _ => Err(Errno::ENXIO),
    }
}

fn new_pty(t: &Task) -> KResult<Arc<Pty>> {
    let d = devpts();
    let p = {
        let mut ptys = lock(&d.ptys);
        ptys.retain(|_, w| w.strong_count() > 0);
        let mut index = 0u32;
        while ptys.contains_key(&index) {
            index += 1;
        }
        if index >= MAX_PTYS {
            return Err(Errno::ENOSPC);
        }
        let p = Arc::new(Pty {
            index,
            st: Mutex::new(State::new()),
            cv: Condvar::new(),
            k: Arc::downgrade(&t.k),
            inode: replica_inode(index, t.creds.fsuid),
        });
        ptys.insert(index, Arc::downgrade(&p));
        p
    };
    let name = p.index.to_string().into_bytes();
    for dir in pts_dirs() {
        dir.add_child(&name, p.inode.clone());
    }
    Ok(p)
}

/// The controlling terminal of the calling task's session.
fn ctty_of(t: &Task) -> Option<Arc<Pty>> {
    let sid = t.proc_().sid.load(Ordering::Relaxed);
    lock(&devpts().ctty).get(&sid).cloned()
}

fn is_ctty_of(t: &Task, p: &Arc<Pty>) -> bool {
    ctty_of(t).is_some_and(|c| Arc::ptr_eq(&c, p))
}

fn is_session_leader(t: &Task) -> bool {
    t.proc_().sid.load(Ordering::Relaxed) == t.tgid
}

/// Make `p` the controlling terminal of the caller's session (the caller
/// is a session leader without one; the pty belongs to no session).
fn set_ctty(t: &Task, p: &Arc<Pty>) {
    let proc_ = t.proc_();
    let sid = proc_.sid.load(Ordering::Relaxed);
    let pgid = proc_.pgid.load(Ordering::Relaxed);
    {
        let mut g = lock(&p.st);
        g.session = Some(sid);
        g.pgrp = Some(pgid);
    }
    lock(&devpts().ctty).insert(sid, p.clone());
}

impl Pty {
    fn open_replica(self: &Arc<Self>, t: &Task, flags: i32) -> KResult<()> {
        {
            let mut g = lock(&self.st);
            if g.locked || g.masters == 0 || g.hungup {
                return Err(Errno::EIO);
            }
            if g.excl && t.creds.cap_effective & (1 << 21) == 0 {
                return Err(Errno::EBUSY);
            }
            g.replicas += 1;
            g.replica_closed = false;
        }
        crate::syscalls::poll::hub().notify();
        // A session leader without a controlling terminal acquires this
        // one, unless O_NOCTTY or it belongs to a session already.
        if flags & O_NOCTTY == 0
            && is_session_leader(t)
            && ctty_of(t).is_none()
            && lock(&self.st).session.is_none()
            && flags & O_ACCMODE != O_WRONLY
        {
            set_ctty(t, self);
        }
        Ok(())
    }

    fn close_end(&self, master: bool) {
        let mut hangup_session = None;
        let free;
        {
            let mut g = lock(&self.st);
            if master {
                g.masters = g.masters.saturating_sub(1);
                if g.masters == 0 {
                    // The replica side hangs up: its files read 0 and fail
                    // writes with EIO; the session loses its terminal.
                    g.hungup = true;
                    hangup_session = g.session.take();
                    g.pgrp = None;
                }
            } else {
                g.replicas = g.replicas.saturating_sub(1);
                if g.replicas == 0 {
                    g.replica_closed = true;
                }
            }
            free = g.masters == 0 && g.replicas == 0;
            self.cv.notify_all();
        }
        if master {
            let name = self.index.to_string().into_bytes();
            for dir in pts_dirs() {
                let mut ch = lock(&dir.children);
                let mine = ch
                    .get(&name)
                    .cloned()
                    .flatten()
                    .is_some_and(|d| Arc::ptr_eq(&d.inode(), &self.inode));
                if mine {
                    ch.remove(&name);
                }
            }
        }
        if let Some(sid) = hangup_session {
            let mut map = lock(&devpts().ctty);
            if map
                .get(&sid)
                .is_some_and(|c| std::ptr::eq(Arc::as_ptr(c), self))
            {
                map.remove(&sid);
            }
            drop(map);
            // SIGHUP and SIGCONT to the session leader.
            if let Some(k) = self.k.upgrade() {
                if let Some(leader) = k.process(sid) {
                    if leader.lock().exit.is_none() {
                        send_kernel(&k, &leader, SIGHUP);
                        send_kernel(&k, &leader, signals::SIGCONT);
                    }
                }
            }
        }
        if free {
            let mut ptys = lock(&devpts().ptys);
            if ptys
                .get(&self.index)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
            {
                ptys.remove(&self.index);
            }
        }
        crate::syscalls::poll::hub().notify();
    }

    fn wait<'a>(
        self: &Arc<Self>,
        g: std::sync::MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> (std::sync::MutexGuard<'a, State>, WaitOutcome) {
        signals::wait(self.clone(), &self.cv, g, deadline)
    }

    fn changed(&self) {
        self.cv.notify_all();
        crate::syscalls::poll::hub().notify();
    }

    /// poll(2) readiness of one end.
    pub fn poll(&self, master: bool) -> i16 {
        use crate::syscalls::poll::*;
        let g = lock(&self.st);
        if master {
            let mut r = 0;
            if !g.out.is_empty() {
                r |= POLLIN | POLLRDNORM;
            }
            if g.replica_closed {
                r |= POLLHUP;
            }
            if g.pending.len() < PENDING_CAP {
                r |= POLLOUT | POLLWRNORM;
            }
            r
        } else {
            if g.hungup {
                return POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM;
            }
            let mut r = 0;
            if input_available(&g) {
                r |= POLLIN | POLLRDNORM;
            }
            if g.out.len() < OUT_CAP && !g.stopped {
                r |= POLLOUT | POLLWRNORM;
            }
            r
        }
    }
}

fn input_available(g: &State) -> bool {
    if g.tio.l(ICANON) {
        !g.lines.is_empty()
    } else {
        let vmin = g.tio.cc[VMIN] as usize;
        let amt = if g.tio.cc[VTIME] == 0 && vmin > 0 {
            vmin
        } else {
            1
        };
        g.raw.len() >= amt
    }
}

fn inq(g: &State) -> usize {
    if g.tio.l(ICANON) {
        g.lines.iter().map(|l| l.len().max(1)).sum()
    } else {
        g.raw.len()
    }
}

// Output processing and echo.

/// Output processing of one byte into the master's queue (OPOST).
fn output_char(g: &mut State, c: u8) {
    if !g.tio.o(OPOST) {
        g.out.push_back(c);
        return;
    }
    let mut c = c;
    match c {
        b'\n' => {
            if g.tio.o(ONLRET) {
                g.column = 0;
            }
            if g.tio.o(ONLCR) {
                g.column = 0;
                g.canon_column = 0;
                g.out.push_back(b'\r');
                g.out.push_back(b'\n');
                return;
            }
            g.canon_column = g.column;
        }
        b'\r' => {
            if g.tio.o(ONOCR) && g.column == 0 {
                return;
            }
            if g.tio.o(OCRNL) {
                c = b'\n';
                if g.tio.o(ONLRET) {
                    g.column = 0;
                    g.canon_column = 0;
                }
            } else {
                g.column = 0;
                g.canon_column = 0;
            }
        }
        b'\t' => {
            let spaces = 8 - (g.column & 7);
            g.column += spaces;
            if g.tio.oflag & TABDLY == XTABS {
                g.out.extend(std::iter::repeat_n(b' ', spaces));
                return;
            }
        }
        8 => {
            g.column = g.column.saturating_sub(1);
        }
        _ => {
            if !is_cntrl(c) {
                if g.tio.o(OLCUC) {
                    c = c.to_ascii_uppercase();
                }
                if !is_continuation(c, &g.tio) {
                    g.column += 1;
                }
            }
        }
    }
    g.out.push_back(c);
}

fn echo_raw(g: &mut State, c: u8) {
    if g.out.len() < ECHO_CAP {
        output_char(g, c);
    }
}

/// Echo a character, control characters as ^X under ECHOCTL.
fn echo_char(g: &mut State, c: u8) {
    if g.tio.l(ECHOCTL) && is_cntrl(c) && c != b'\t' {
        echo_raw(g, b'^');
        echo_raw(g, c ^ 0o100);
    } else {
        echo_raw(g, c);
    }
}

/// Erase characters of the line being edited (VERASE, VWERASE, VKILL).
fn erase(g: &mut State, kind: usize) {
    if g.edit.is_empty() {
        return;
    }
    let echo = g.tio.l(ECHO);
    if kind == VKILL {
        if !echo {
            g.edit.clear();
            return;
        }
        if !g.tio.l(ECHOK) || !g.tio.l(ECHOKE) || !g.tio.l(ECHOE) {
            g.edit.clear();
            let k = g.tio.cc[VKILL];
            echo_char(g, k);
            if g.tio.l(ECHOK) {
                echo_raw(g, b'\n');
            }
            return;
        }
    }
    let mut seen_alnum = false;
    while !g.edit.is_empty() {
        // One character: a UTF-8 sequence counts as one under IUTF8.
        let mut start = g.edit.len() - 1;
        while start > 0 && is_continuation(g.edit[start], &g.tio) {
            start -= 1;
        }
        let c = g.edit[start];
        if kind == VWERASE {
            if c.is_ascii_alphanumeric() || c == b'_' {
                seen_alnum = true;
            } else if seen_alnum {
                break;
            }
        }
        g.edit.truncate(start);
        if echo {
            if kind == VERASE && !g.tio.l(ECHOE) {
                let e = g.tio.cc[VERASE];
                echo_char(g, e);
            } else if c == b'\t' {
                // Back to where the tab started: recompute the columns
                // of what is left of the line.
                let mut col = g.canon_column;
                let mut i = 0;
                while i < g.edit.len() {
                    let x = g.edit[i];
                    if x == b'\t' {
                        col = (col | 7) + 1;
                    } else if is_cntrl(x) {
                        if g.tio.l(ECHOCTL) {
                            col += 2;
                        }
                    } else if !is_continuation(x, &g.tio) {
                        col += 1;
                    }
                    i += 1;
                }
                let back = g.column.saturating_sub(col);
                for _ in 0..back {
                    echo_raw(g, 8);
                }
            } else {
                let n = if is_cntrl(c) {
                    if g.tio.l(ECHOCTL) {
                        2
                    } else {
                        0
                    }
                } else {
                    1
                };
                for _ in 0..n {
                    echo_raw(g, 8);
                    echo_raw(g, b' ');
                    echo_raw(g, 8);
                }
            }
        }
        if kind == VERASE {
            break;
        }
    }
}

/// Move the master's pending bytes through the line discipline while it
/// has room; signals to send are added to `kills`.
fn process_input(g: &mut State, kills: &mut Kills) {
    while let Some(&c) = g.pending.front() {
        if g.tio.l(ICANON) {
            let queued: usize = g.lines.iter().map(|l| l.len() + 1).sum();
            if !g.lines.is_empty() && queued + g.edit.len() >= LDISC_BUF - 1 {
                break;
            }
        } else if g.raw.len() >= LDISC_BUF - 1 {
            break;
        }
        g.pending.pop_front();
        receive_char(g, c, kills);
    }
}

fn push_input(g: &mut State, c: u8) {
    if g.tio.l(ICANON) {
        if g.edit.len() < LDISC_BUF - 1 {
            g.edit.push(c);
        }
    } else {
        g.raw.push_back(c);
    }
}

fn commit_line(g: &mut State) {
    let line: VecDeque<u8> = std::mem::take(&mut g.edit).into();
    g.lines.push_back(line);
}

fn flush_input(g: &mut State) {
    g.lines.clear();
    g.edit.clear();
    g.raw.clear();
    g.lnext = false;
}

/// The line discipline's handling of one input character.
fn receive_char(g: &mut State, c: u8, kills: &mut Kills) {
    let mut c = c;
    if g.tio.i(ISTRIP) {
        c &= 0x7f;
    }
    if g.tio.i(IUCLC) && g.tio.l(IEXTEN) {
        c = c.to_ascii_lowercase();
    }
    if g.lnext {
        g.lnext = false;
        if g.tio.l(ECHO) {
            echo_char(g, c);
        }
        push_input(g, c);
        return;
    }
    let tio = g.tio;
    if tio.i(IXON) {
        if tio.is(VSTART, c) && tio.is(VSTOP, c) {
            g.stopped = !g.stopped;
            return;
        }
        if tio.is(VSTART, c) {
            g.stopped = false;
            return;
        }
        if tio.is(VSTOP, c) {
            g.stopped = true;
            return;
        }
    }
    if tio.l(ISIG) {
        let sig = if tio.is(VINTR, c) {
            Some(SIGINT)
        } else if tio.is(VQUIT, c) {
            Some(SIGQUIT)
        } else if tio.is(VSUSP, c) {
            Some(SIGTSTP)
        } else {
            None
        };
        if let Some(sig) = sig {
            if let Some(pg) = g.pgrp {
                kills.push((pg, sig));
            }
            if !tio.l(NOFLSH) {
                flush_input(g);
            }
            if tio.i(IXON) {
                g.stopped = false;
            }
            if tio.l(ECHO) {
                echo_char(g, c);
            }
            return;
        }
    }
    if g.stopped && tio.i(IXON) && tio.i(IXANY) {
        g.stopped = false;
    }
    if c == b'\r' {
        if tio.i(IGNCR) {
            return;
        }
        if tio.i(ICRNL) {
            c = b'\n';
        }
    } else if c == b'\n' && tio.i(INLCR) {
        c = b'\r';
    }
    if tio.l(ICANON) {
        if tio.is(VERASE, c) || tio.is(VKILL, c) || (tio.is(VWERASE, c) && tio.l(IEXTEN)) {
            let kind = if tio.is(VERASE, c) {
                VERASE
            } else if tio.is(VKILL, c) {
                VKILL
            } else {
                VWERASE
            };
            erase(g, kind);
            return;
        }
        if tio.is(VLNEXT, c) && tio.l(IEXTEN) {
            g.lnext = true;
            if tio.l(ECHO) && tio.l(ECHOCTL) {
                echo_raw(g, b'^');
                echo_raw(g, 8);
            }
            return;
        }
        if tio.is(VREPRINT, c) && tio.l(ECHO) && tio.l(IEXTEN) {
            echo_char(g, c);
            echo_raw(g, b'\n');
            let line = g.edit.clone();
            for x in line {
                echo_char(g, x);
            }
            return;
        }
        if c == b'\n' {
            if tio.l(ECHO) || tio.l(ECHONL) {
                echo_raw(g, b'\n');
            }
            g.edit.push(c);
            commit_line(g);
            return;
        }
        if tio.is(VEOF, c) {
            commit_line(g);
            return;
        }
        if tio.is(VEOL, c) || tio.is(VEOL2, c) {
            if tio.l(ECHO) {
                echo_char(g, c);
            }
            g.edit.push(c);
            commit_line(g);
            return;
        }
        if tio.l(ECHO) {
            if g.edit.is_empty() {
                g.canon_column = g.column;
            }
            echo_char(g, c);
        }
        push_input(g, c);
        return;
    }
    if tio.l(ECHO) {
        if c == b'\n' {
            echo_raw(g, b'\n');
        } else {
            echo_char(g, c);
        }
    }
    push_input(g, c);
}

/// A new termios: canonical mode switched on or off moves the input.
fn set_termios(g: &mut State, new: Termios, kills: &mut Kills) {
    let was_canon = g.tio.l(ICANON);
    g.tio = new;
    let canon = new.l(ICANON);
    if was_canon && !canon {
        let mut raw = VecDeque::new();
        for l in g.lines.drain(..) {
            raw.extend(l);
        }
        raw.extend(g.edit.drain(..));
        raw.extend(g.raw.drain(..));
        g.raw = raw;
    } else if !was_canon && canon {
        let raw: Vec<u8> = g.raw.drain(..).collect();
        g.edit.extend(raw);
    }
    if !new.i(IXON) {
        g.stopped = false;
    }
    process_input(g, kills);
}

// Signals.

fn send_kernel(k: &Kernel, p: &Process, sig: i32) {
    // A sandbox's init ignores signals it has no handler for, as a pid
    // namespace's init does.
    if p.tgid == 1 {
        if let Some(t) = k.thread(1) {
            let a = lock(&t.sigactions)[(sig - 1) as usize & 63];
            let blocked = t.sigmask.load(Ordering::Relaxed) & signals::bit(sig) != 0;
            if a.handler == crate::kernel::task::SIG_DFL && !blocked {
                return;
            }
        }
    }
    signals::send_process(
        k,
        p,
        SigInfo {
            signo: sig,
            code: SI_KERNEL,
            ..Default::default()
        },
    );
}

fn kill_pgrp(k: &Kernel, pgrp: i32, sig: i32) {
    for p in k.processes() {
        if p.pgid.load(Ordering::Relaxed) == pgrp && p.lock().exit.is_none() {
            send_kernel(k, &p, sig);
        }
    }
}

fn send_kills(p: &Pty, kills: Kills) {
    if kills.is_empty() {
        return;
    }
    if let Some(k) = p.k.upgrade() {
        for (pg, sig) in kills {
            kill_pgrp(&k, pg, sig);
        }
    }
}

/// A process group is orphaned when no member has a parent in another
/// group of the same session.
fn pgrp_orphaned(k: &Kernel, pgrp: i32) -> bool {
    for p in k.processes() {
        if p.pgid.load(Ordering::Relaxed) != pgrp || p.lock().exit.is_some() {
            continue;
        }
        if let Some(parent) = k.process(p.ppid()) {
            if parent.pgid.load(Ordering::Relaxed) != pgrp
                && parent.sid.load(Ordering::Relaxed) == p.sid.load(Ordering::Relaxed)
            {
                return false;
            }
        }
    }
    true
}

fn sig_ignored(t: &Task, sig: i32) -> bool {
    t.sigmask & signals::bit(sig) != 0
        || lock(&t.sigactions)[(sig - 1) as usize & 63].handler == SIG_IGN
}

/// Linux's tty_check_change: a background process touching its
/// controlling terminal gets `sig` (its group stops) unless it ignores
/// it; an orphaned group gets EIO.
fn check_change(t: &Task, p: &Arc<Pty>, sig: i32) -> KResult<()> {
    if !is_ctty_of(t, p) {
        return Ok(());
    }
    let fg = lock(&p.st).pgrp;
    let mine = t.proc_().pgid.load(Ordering::Relaxed);
    let Some(fg) = fg else { return Ok(()) };
    if fg == mine {
        return Ok(());
    }
    if sig_ignored(t, sig) {
        return if sig == SIGTTIN {
            Err(Errno::EIO)
        } else {
            Ok(())
        };
    }
    if pgrp_orphaned(&t.k, mine) {
        return Err(Errno::EIO);
    }
    kill_pgrp(&t.k, mine, sig);
    Err(Errno::ERESTARTSYS)
}

// Reading and writing.

impl TtyFile {
    /// read(2): the replica side first checks job control.
    pub fn read(&self, t: &Task, f: &File, buf: &mut [u8]) -> KResult<usize> {
        if !self.master {
            if lock(&self.pty.st).hungup {
                return Ok(0);
            }
            check_change(t, &self.pty, SIGTTIN)?;
        }
        self.read_plain(buf, nonblock(f))
    }

    /// write(2): with TOSTOP a background writer gets SIGTTOU.
    pub fn write(&self, t: &Task, f: &File, data: &[u8]) -> KResult<usize> {
        if !self.master {
            let tostop = {
                let g = lock(&self.pty.st);
                if g.hungup {
                    return Err(Errno::EIO);
                }
                g.tio.l(TOSTOP)
            };
            if tostop {
                check_change(t, &self.pty, SIGTTOU)?;
            }
        }
        self.write_plain(data, nonblock(f))
    }

    pub fn read_plain(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.master {
            self.pty.read_master(buf, nonblock)
        } else {
            self.pty.read_replica(buf, nonblock)
        }
    }

    pub fn write_plain(&self, data: &[u8], nonblock: bool) -> KResult<usize> {
        if self.master {
            self.pty.write_master(data, nonblock)
        } else {
            self.pty.write_replica(data, nonblock)
        }
    }

    pub fn poll(&self) -> i16 {
        self.pty.poll(self.master)
    }
}

impl Pty {
    fn read_master(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        let mut g = lock(&self.st);
        loop {
            if !g.out.is_empty() {
                let mut at = 0;
                if g.packet {
                    buf[0] = 0; // TIOCPKT_DATA
                    at = 1;
                }
                let n = (buf.len() - at).min(g.out.len());
                for (i, b) in g.out.drain(..n).enumerate() {
                    buf[at + i] = b;
                }
                self.changed();
                return Ok(at + n);
            }
            if g.replica_closed {
                return Err(Errno::EIO);
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let (ng, out) = self.wait(g, None);
            g = ng;
            if matches!(out, WaitOutcome::Interrupted) {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    fn write_master(self: &Arc<Self>, data: &[u8], nonblock: bool) -> KResult<usize> {
        let mut done = 0;
        let mut g = lock(&self.st);
        while done < data.len() {
            let room = PENDING_CAP.saturating_sub(g.pending.len());
            if room == 0 {
                if nonblock {
                    break;
                }
                let (ng, out) = self.wait(g, None);
                g = ng;
                if matches!(out, WaitOutcome::Interrupted) {
                    break;
                }
                continue;
            }
            let n = room.min(data.len() - done);
            g.pending.extend(&data[done..done + n]);
            done += n;
            let mut kills = Kills::new();
            process_input(&mut g, &mut kills);
            self.changed();
            if !kills.is_empty() {
                drop(g);
                send_kills(self, kills);
                g = lock(&self.st);
            }
        }
        if done == 0 && !data.is_empty() {
            return Err(if nonblock {
                Errno::EAGAIN
            } else {
                Errno::ERESTARTSYS
            });
        }
        Ok(done)
    }

    fn read_replica(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        let mut g = lock(&self.st);
        let mut got = 0usize;
        // Non-canonical VTIME with VMIN > 0 is an inter-byte timer.
        let mut deadline: Option<Instant> = None;
        let started = Instant::now();
        loop {
            if g.hungup {
                return Ok(got);
            }
            let canon = g.tio.l(ICANON);
            if canon {
                if let Some(len) = g.lines.front().map(|l| l.len()) {
                    // An empty line is an end of file: read returns 0.
                    let n = buf.len().min(len);
                    if let Some(line) = g.lines.front_mut() {
                        for (i, b) in line.drain(..n).enumerate() {
                            buf[i] = b;
                        }
                    }
                    if n == len {
                        g.lines.pop_front();
                    }
                    self.refill(g);
                    return Ok(n);
                }
            } else {
                let vmin = g.tio.cc[VMIN] as usize;
                let vtime = g.tio.cc[VTIME] as u64;
                let n = (buf.len() - got).min(g.raw.len());
                for (i, b) in g.raw.drain(..n).enumerate() {
                    buf[got + i] = b;
                }
                got += n;
                if n > 0 {
                    g = self.refill_locked(g);
                }
                let want = vmin.min(buf.len());
                if got >= buf.len() || (vmin > 0 && got >= want) {
                    return Ok(got);
                }
                if vmin == 0 {
                    if got > 0 || vtime == 0 {
                        return Ok(got);
                    }
                    let d = started + Duration::from_millis(vtime * 100);
                    if Instant::now() >= d {
                        return Ok(0);
                    }
                    deadline = Some(d);
                } else if vtime > 0 && got > 0 {
                    if n > 0 || deadline.is_none() {
                        deadline = Some(Instant::now() + Duration::from_millis(vtime * 100));
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(got);
                    }
                }
            }
            if nonblock {
                return if got > 0 { Ok(got) } else { Err(Errno::EAGAIN) };
            }
            let (ng, out) = self.wait(g, deadline);
            g = ng;
            if matches!(out, WaitOutcome::Interrupted) {
                return if got > 0 {
                    Ok(got)
                } else {
                    Err(Errno::ERESTARTSYS)
                };
            }
        }
    }

    /// After a replica read: more pending input may fit now.
    fn refill(&self, g: std::sync::MutexGuard<'_, State>) {
        let g = self.refill_locked(g);
        drop(g);
    }

    fn refill_locked<'a>(
        &'a self,
        mut g: std::sync::MutexGuard<'a, State>,
    ) -> std::sync::MutexGuard<'a, State> {
        let mut kills = Kills::new();
        process_input(&mut g, &mut kills);
        self.changed();
        if kills.is_empty() {
            return g;
        }
        drop(g);
        send_kills(self, kills);
        lock(&self.st)
    }

    fn write_replica(self: &Arc<Self>, data: &[u8], nonblock: bool) -> KResult<usize> {
        let mut done = 0;
        let mut g = lock(&self.st);
        while done < data.len() {
            if g.hungup {
                break;
            }
            if g.stopped || g.out.len() >= OUT_CAP {
                if nonblock {
                    break;
                }
                let (ng, out) = self.wait(g, None);
                g = ng;
                if matches!(out, WaitOutcome::Interrupted) {
                    break;
                }
                continue;
            }
            let end = (done + (OUT_CAP - g.out.len())).min(data.len());
            for &c in &data[done..end] {
                output_char(&mut g, c);
            }
            done = end;
            self.changed();
        }
        if done == 0 && !data.is_empty() {
            return Err(if g.hungup {
                Errno::EIO
            } else if nonblock {
                Errno::EAGAIN
            } else {
                Errno::ERESTARTSYS
            });
        }
        Ok(done)
    }
}

// ioctl.

fn read_i32(t: &Task, addr: u64) -> KResult<i32> {
    let mut b = [0u8; 4];
    t.copy_in(addr, &mut b)?;
    Ok(i32::from_le_bytes(b))
}

fn write_i32(t: &Task, addr: u64, v: i32) -> KResult<u64> {
    t.copy_out(addr, &v.to_le_bytes()).map(|_| 0)
}

/// ioctl(2) on either end of a pty.
pub fn ioctl(t: &Task, f: &File, tf: &TtyFile, req: u64, arg: u64) -> KResult<u64> {
    let p = &tf.pty;
    if !tf.master && lock(&p.st).hungup {
        return Err(if req == TIOCSPGRP {
            Errno::ENOTTY
        } else {
            Errno::EIO
        });
    }
    match req {
        TCGETS | TCGETS2 => {
            let b = lock(&p.st).tio.to_bytes();
            let n = if req == TCGETS { 36 } else { 44 };
            t.copy_out(arg, &b[..n]).map(|_| 0)
        }
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
            let n = if matches!(req, TCSETS | TCSETSW | TCSETSF) {
                36
            } else {
                44
            };
            let mut b = vec![0u8; n];
            t.copy_in(arg, &mut b)?;
            if !tf.master {
                check_change(t, p, SIGTTOU)?;
            }
            let new = Termios::from_bytes(&b);
            let mut kills = Kills::new();
            {
                let mut g = lock(&p.st);
                if matches!(req, TCSETSF | TCSETSF2) {
                    flush_input(&mut g);
                    g.pending.clear();
                }
                set_termios(&mut g, new, &mut kills);
                p.changed();
            }
            send_kills(p, kills);
            Ok(0)
        }
        TCSBRK | TCSBRKP | TIOCSBRK | TIOCCBRK => Ok(0),
        TCXONC => {
            if !tf.master {
                check_change(t, p, SIGTTOU)?;
            }
            let mut g = lock(&p.st);
            match arg {
                0 => g.stopped = true,  // TCOOFF
                1 => g.stopped = false, // TCOON
                2 | 3 => {}             // TCIOFF, TCION
                _ => return Err(Errno::EINVAL),
            }
            p.changed();
            Ok(0)
        }
        TCFLSH => {
            if !tf.master {
                check_change(t, p, SIGTTOU)?;
            }
            let mut g = lock(&p.st);
            let input = match arg {
                0 | 2 => true, // TCIFLUSH, TCIOFLUSH
                1 => false,    // TCOFLUSH: a pty keeps no output queue
                _ => return Err(Errno::EINVAL),
            };
            if input {
                if tf.master {
                    g.out.clear();
                } else {
                    flush_input(&mut g);
                    g.pending.clear();
                }
            }
            p.changed();
            Ok(0)
        }
        TIOCEXCL | TIOCNXCL => {
            lock(&p.st).excl = req == TIOCEXCL;
            Ok(0)
        }
        TIOCGEXCL => write_i32(t, arg, lock(&p.st).excl as i32),
        TIOCOUTQ => write_i32(t, arg, 0),
        TIOCINQ => {
            let n = {
                let g = lock(&p.st);
                if tf.master {
                    g.out.len()
                } else {
                    inq(&g)
                }
            };
            write_i32(t, arg, n.min(i32::MAX as usize) as i32)
        }
        TIOCGWINSZ => {
            let ws = lock(&p.st).ws;
            let mut b = [0u8; 8];
            for (i, v) in ws.iter().enumerate() {
                b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
            }
            t.copy_out(arg, &b).map(|_| 0)
        }
        TIOCSWINSZ => {
            let mut b = [0u8; 8];
            t.copy_in(arg, &mut b)?;
            let mut ws = [0u16; 4];
            for (i, v) in ws.iter_mut().enumerate() {
                *v = u16::from_le_bytes([b[i * 2], b[i * 2 + 1]]);
            }
            let pg = {
                let mut g = lock(&p.st);
                if g.ws == ws {
                    return Ok(0);
                }
                g.ws = ws;
                g.pgrp
            };
            if let Some(pg) = pg {
                kill_pgrp(&t.k, pg, SIGWINCH);
            }
            Ok(0)
        }
        TIOCGETD => write_i32(t, arg, 0),
        TIOCSETD => {
            if read_i32(t, arg)? != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        TIOCGDEV => write_i32(t, arg, replica_rdev(p.index) as i32),
        TIOCSCTTY => tiocsctty(t, f, p, arg),
        TIOCNOTTY => {
            if tf.master || !is_ctty_of(t, p) {
                return Err(Errno::ENOTTY);
            }
            if is_session_leader(t) {
                disassociate(&t.k, t.proc_().sid.load(Ordering::Relaxed), false);
            }
            Ok(0)
        }
        TIOCGPGRP => {
            if !tf.master && !is_ctty_of(t, p) {
                return Err(Errno::ENOTTY);
            }
            let pg = lock(&p.st).pgrp.unwrap_or(0);
            write_i32(t, arg, pg)
        }
        TIOCGSID => {
            if !tf.master && !is_ctty_of(t, p) {
                return Err(Errno::ENOTTY);
            }
            let sid = lock(&p.st).session.ok_or(Errno::ENOTTY)?;
            write_i32(t, arg, sid)
        }
        TIOCSPGRP => tiocspgrp(t, p, arg),
        // The master's own ioctls.
        TIOCGPTN if tf.master => write_i32(t, arg, p.index as i32),
        TIOCSPTLCK if tf.master => {
            let v = read_i32(t, arg)?;
            lock(&p.st).locked = v != 0;
            Ok(0)
        }
        TIOCGPTLCK if tf.master => write_i32(t, arg, lock(&p.st).locked as i32),
        TIOCPKT if tf.master => {
            let v = read_i32(t, arg)?;
            lock(&p.st).packet = v != 0;
            Ok(0)
        }
        TIOCGPKT if tf.master => write_i32(t, arg, lock(&p.st).packet as i32),
        TIOCSIG if tf.master => {
            let sig = arg as i32;
            if sig != SIGINT && sig != SIGQUIT && sig != SIGTSTP {
                return Err(Errno::EINVAL);
            }
            let pg = lock(&p.st).pgrp;
            if let Some(pg) = pg {
                kill_pgrp(&t.k, pg, sig);
            }
            Ok(0)
        }
        TIOCGPTPEER if tf.master => open_peer(t, p, arg as i32),
        _ => Err(Errno::ENOTTY),
    }
}

fn tiocsctty(t: &Task, f: &File, p: &Arc<Pty>, arg: u64) -> KResult<u64> {
    let sid = t.proc_().sid.load(Ordering::Relaxed);
    let leader = is_session_leader(t);
    let owner = lock(&p.st).session;
    if leader && owner == Some(sid) {
        return Ok(0);
    }
    if !leader || ctty_of(t).is_some() {
        return Err(Errno::EPERM);
    }
    const CAP_SYS_ADMIN: u32 = 21;
    let admin = t.creds.cap_effective & (1u64 << CAP_SYS_ADMIN) != 0;
    if let Some(other) = owner {
        if arg == 1 && admin {
            // Steal it from the other session.
            let mut map = lock(&devpts().ctty);
            if map.get(&other).is_some_and(|c| Arc::ptr_eq(c, p)) {
                map.remove(&other);
            }
        } else {
            return Err(Errno::EPERM);
        }
    }
    if !f.readable() && !admin {
        return Err(Errno::EPERM);
    }
    set_ctty(t, p);
    Ok(0)
}

fn tiocspgrp(t: &Task, p: &Arc<Pty>, arg: u64) -> KResult<u64> {
    match check_change(t, p, SIGTTOU) {
        Err(Errno::EIO) => return Err(Errno::ENOTTY),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    let pg = read_i32(t, arg)?;
    if pg < 0 {
        return Err(Errno::EINVAL);
    }
    let sid = t.proc_().sid.load(Ordering::Relaxed);
    if !is_ctty_of(t, p) || lock(&p.st).session != Some(sid) {
        return Err(Errno::ENOTTY);
    }
    let procs = t.k.processes();
    let member = procs
        .iter()
        .find(|q| q.pgid.load(Ordering::Relaxed) == pg && q.lock().exit.is_none())
        .or_else(|| procs.iter().find(|q| q.tgid == pg))
        .ok_or(Errno::ESRCH)?;
    if member.sid.load(Ordering::Relaxed) != sid {
        return Err(Errno::EPERM);
    }
    lock(&p.st).pgrp = Some(pg);
    Ok(0)
}

/// TIOCGPTPEER: open the replica of a master (O_RDWR, O_NOCTTY,
/// O_NONBLOCK and O_CLOEXEC allowed).
fn open_peer(t: &Task, p: &Arc<Pty>, flags: i32) -> KResult<u64> {
    if flags & !(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    p.open_replica(t, flags)?;
    let kind = FileKind::Tty(TtyFile {
        pty: p.clone(),
        master: false,
    });
    let dentry = replica_dentry(p.index)
        .unwrap_or_else(|| Dentry::new_root(p.inode.clone(), FsType::Dev, None));
    let file = File::new(
        Some(dentry),
        kind,
        flags & !(O_NOCTTY | O_CLOEXEC | O_CREAT | O_EXCL | O_TRUNC),
    );
    crate::syscalls::file::install(t, file, flags & O_CLOEXEC != 0)
}

/// The session `sid` loses its controlling terminal: the foreground
/// group gets SIGHUP (and SIGCONT unless the leader is exiting).
fn disassociate(k: &Kernel, sid: i32, on_exit: bool) {
    let Some(p) = lock(&devpts().ctty).remove(&sid) else {
        return;
    };
    let pg = {
        let mut g = lock(&p.st);
        g.session = None;
        g.pgrp.take()
    };
    if let Some(pg) = pg {
        kill_pgrp(k, pg, SIGHUP);
        if !on_exit {
            kill_pgrp(k, pg, signals::SIGCONT);
        }
    }
}

/// A process has exited: a session leader takes its session's terminal
/// with it.
pub fn process_exited(k: &Kernel, p: &Process) {
    if p.sid.load(Ordering::Relaxed) == p.tgid {
        disassociate(k, p.tgid, true);
    }
}

/// What the host-terminal bridge (`fs::console`) needs of a pty.
impl Pty {
    /// unlockpt(3) without a task.
    pub fn unlock(&self) {
        lock(&self.st).locked = false;
    }

    /// TIOCSWINSZ from the host side: a change reaches the foreground
    /// process group as SIGWINCH.
    pub fn set_winsize(&self, ws: [u16; 4]) {
        let pg = {
            let mut g = lock(&self.st);
            if g.ws == ws {
                return;
            }
            g.ws = ws;
            g.pgrp
        };
        if let (Some(pg), Some(k)) = (pg, self.k.upgrade()) {
            kill_pgrp(&k, pg, SIGWINCH);
        }
    }

    /// Whether everything the sandbox wrote has been read from the master.
    pub fn output_drained(&self) -> bool {
        lock(&self.st).out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            locked: false,
            replicas: 1,
            pgrp: Some(7),
            ..State::new()
        }
    }

    fn feed(g: &mut State, s: &[u8]) -> Kills {
        let mut k = Kills::new();
        g.pending.extend(s);
        process_input(g, &mut k);
        k
    }

    fn out(g: &mut State) -> Vec<u8> {
        g.out.drain(..).collect()
    }

    #[test]
    fn canonical_editing_and_echo() {
        let mut g = state();
        feed(&mut g, b"helo\x7flo wrld\x17world\r");
        assert_eq!(g.lines.len(), 1);
        assert_eq!(
            g.lines[0].iter().copied().collect::<Vec<_>>(),
            b"hello world\n"
        );
        let o = out(&mut g);
        assert!(
            o.ends_with(b"world\r\n"),
            "{:?}",
            String::from_utf8_lossy(&o)
        );
        feed(&mut g, b"abc\x15x\x04\x04");
        assert_eq!(g.lines.len(), 3);
        assert_eq!(g.lines[1].iter().copied().collect::<Vec<_>>(), b"x");
        assert!(g.lines[2].is_empty());
    }

    #[test]
    fn signal_chars_flush_and_echo() {
        let mut g = state();
        let k = feed(&mut g, b"partial\x03");
        assert_eq!(k, vec![(7, SIGINT)]);
        assert!(g.edit.is_empty());
        assert!(out(&mut g).ends_with(b"^C"));
        g.tio.lflag |= NOFLSH;
        let k = feed(&mut g, b"ab\x1c\x1a");
        assert_eq!(k, vec![(7, SIGQUIT), (7, SIGTSTP)]);
        assert_eq!(g.edit, b"ab");
    }

    #[test]
    fn raw_mode_and_output() {
        let mut g = state();
        let mut tio = g.tio;
        tio.lflag &= !(ICANON | ECHO);
        let mut k = Kills::new();
        feed(&mut g, b"ab");
        set_termios(&mut g, tio, &mut k);
        assert_eq!(g.raw.len(), 2);
        feed(&mut g, b"\r");
        assert_eq!(g.raw.back(), Some(&b'\n'));
        assert!(out(&mut g).starts_with(b"ab"));
        for &c in b"a\tb\n" {
            output_char(&mut g, c);
        }
        assert_eq!(out(&mut g), b"a\tb\r\n");
        assert_eq!(g.column, 0);
    }

    #[test]
    fn termios_bytes_round_trip() {
        let t = Termios::replica_default();
        assert_eq!(Termios::from_bytes(&t.to_bytes()), t);
        assert_eq!(Termios::from_bytes(&t.to_bytes()[..36]), t);
        assert_eq!(replica_rdev(3), (136 << 8) | 3);
        assert_eq!(replica_rdev(257), (137 << 8) | 1);
    }
}
