//! A host terminal on the init's stdio (`rvisor do` run from a terminal, an
//! OCI `process.terminal`'s host pty) becomes a pty of the sentry's own:
//! the host side is put in raw mode and two threads copy bytes between it
//! and the sandbox pty's master. Line editing, echo, ^C/^Z/^\ and job
//! control are then the sandbox's line discipline (`fs::pty`), with
//! sessions and process groups of the sandbox, as for any pty inside it.
//! The host window size is polled and passed on (SIGWINCH).

use crate::abi::*;
use crate::fs::pty::Pty;
use crate::kernel::task::Task;
use crate::vfs::file::{File, FileKind};
use crate::vfs::path::Walker;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// The running bridge: `finish` waits for the sandbox's last output to
/// reach the host terminal and restores its mode.
pub struct Console {
    host: Arc<OwnedFd>,
    saved: Option<nix::sys::termios::Termios>,
    pty: Arc<Pty>,
    out_done: mpsc::Receiver<()>,
}

fn host_winsize(fd: &OwnedFd) -> Option<[u16; 4]> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize to a valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some([ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel])
}

fn open_path(t: &Task, path: &[u8], flags: i32) -> KResult<Arc<File>> {
    let d = Walker::new(t).walk(&t.fs_root(), path, true)?;
    crate::syscalls::file::open_dentry(t, &d, flags)
}

/// Bridge the init's host-terminal stdio (fds 0-2) to a new sandbox pty
/// whose replica becomes the init session's controlling terminal. None
/// when no stdio fd is a host terminal, or when the sandbox has no devpts.
pub fn bridge(t: &Task) -> Option<Console> {
    let fds = t.fds();
    let host = (0..3).find_map(|fd| {
        let f = crate::vfs::lock(&fds).get(fd).ok()?;
        match &f.kind {
            FileKind::Host { fd, tty: true, .. } => Some(fd.clone()),
            _ => None,
        }
    })?;
    let master = open_path(t, b"/dev/ptmx", O_RDWR | O_NOCTTY).ok()?;
    let FileKind::Tty(m) = &master.kind else {
        return None;
    };
    let pty = m.pty.clone();
    pty.unlock();
    if let Some(ws) = host_winsize(&host) {
        pty.set_winsize(ws);
    }
    // Opened without O_NOCTTY by the init, a session leader: it becomes
    // the session's controlling terminal.
    let path = format!("/dev/pts/{}", pty.index).into_bytes();
    let replica = open_path(t, &path, O_RDWR).ok()?;
    let rdev = |fd: &OwnedFd| {
        nix::sys::stat::fstat(fd.as_raw_fd())
            .ok()
            .map(|s| s.st_rdev)
    };
    let host_rdev = rdev(&host);
    {
        let mut table = crate::vfs::lock(&fds);
        for fd in 0..3 {
            let same = match table.get(fd).ok().as_deref().map(|f| &f.kind) {
                Some(FileKind::Host {
                    fd: h, tty: true, ..
                }) => rdev(h) == host_rdev,
                _ => false,
            };
            if same {
                table.put(fd, replica.clone(), false);
            }
        }
    }
    let saved = nix::sys::termios::tcgetattr(host.as_fd()).ok();
    if let Some(s) = &saved {
        let mut raw = s.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ =
            nix::sys::termios::tcsetattr(host.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
    }
    let (tx, out_done) = mpsc::channel();
    let (h_out, m_out) = (host.clone(), master.clone());
    let spawned_out = std::thread::Builder::new()
        .name("console-out".into())
        .spawn(move || {
            pump_out(&m_out, &h_out);
            let _ = tx.send(());
        });
    let (h_in, m_in, p_in) = (host.clone(), master, pty.clone());
    let spawned_in = std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || pump_in(&m_in, &h_in, &p_in));
    if spawned_out.is_err() || spawned_in.is_err() {
        tracing::warn!("cannot start the console threads");
    }
    Some(Console {
        host,
        saved,
        pty,
        out_done,
    })
}

/// Sandbox output to the host terminal, until the replica side is closed
/// for good (EIO) and everything was written.
fn pump_out(master: &Arc<File>, host: &OwnedFd) {
    let FileKind::Tty(m) = &master.kind else {
        return;
    };
    let mut buf = vec![0u8; 4096];
    loop {
        match m.read_plain(&mut buf, false) {
            Ok(0) => return,
            Ok(n) => {
                if write_all(host, &buf[..n]).is_err() {
                    return;
                }
            }
            Err(Errno::ERESTARTSYS) | Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn write_all(host: &OwnedFd, mut data: &[u8]) -> Result<(), ()> {
    while !data.is_empty() {
        match nix::unistd::write(host, data) {
            Ok(0) => return Err(()),
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                let mut p = [nix::poll::PollFd::new(
                    host.as_fd(),
                    nix::poll::PollFlags::POLLOUT,
                )];
                let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(100u16));
            }
            Err(_) => return Err(()),
        }
    }
    Ok(())
}

/// Host keyboard input to the sandbox pty; the window size is checked
/// every quarter second.
fn pump_in(master: &Arc<File>, host: &OwnedFd, pty: &Arc<Pty>) {
    let FileKind::Tty(m) = &master.kind else {
        return;
    };
    let mut buf = vec![0u8; 4096];
    loop {
        let mut p = [nix::poll::PollFd::new(
            host.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(250u16));
        if let Some(ws) = host_winsize(host) {
            pty.set_winsize(ws);
        }
        match ready {
            Ok(0) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let revents = p[0].revents().unwrap_or(nix::poll::PollFlags::empty());
        if !revents.contains(nix::poll::PollFlags::POLLIN) {
            // Hang-up or error on the host side: nothing more will come.
            return;
        }
        let n = match nix::unistd::read(host.as_raw_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            match m.write_plain(data, false) {
                Ok(w) => data = &data[w..],
                Err(Errno::ERESTARTSYS) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

impl Console {
    /// The sandbox ended: let its last output through (up to a second, in
    /// case a process still holds the terminal open), then give the host
    /// terminal its mode back.
    pub fn finish(self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while std::time::Instant::now() < deadline {
            match self.out_done.recv_timeout(Duration::from_millis(20)) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if self.pty.output_drained() => {
                    // Drained: give the writer a moment to finish its
                    // last write.
                    std::thread::sleep(Duration::from_millis(20));
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        if let Some(s) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                self.host.as_fd(),
                nix::sys::termios::SetArg::TCSADRAIN,
                s,
            );
        }
    }
}

/// Bridges of processes started by `exec` with a terminal, by tgid.
fn exec_consoles() -> &'static std::sync::Mutex<std::collections::HashMap<i32, Console>> {
    static C: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<i32, Console>>> =
        std::sync::OnceLock::new();
    C.get_or_init(Default::default)
}

/// Keep an exec'd process's bridge until it exits.
pub fn keep(tgid: i32, c: Console) {
    crate::vfs::lock(exec_consoles()).insert(tgid, c);
}

/// The exec'd process `tgid` exited: flush and release its terminal.
pub fn finish_for(tgid: i32) {
    let c = crate::vfs::lock(exec_consoles()).remove(&tgid);
    if let Some(c) = c {
        c.finish();
    }
}
