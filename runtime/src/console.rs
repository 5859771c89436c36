//! Terminals for containers: a host pty pair whose master goes to the
//! caller's --console-socket (as runc sends it) and whose replica becomes
//! the process's stdio inside the sandbox.

use anyhow::{Context, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

pub struct Pty {
    pub master: OwnedFd,
    pub replica: OwnedFd,
}

/// A new host pty pair, its window `size` (rows, columns) set if given.
pub fn open_pty(size: Option<(u16, u16)>) -> Result<Pty> {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("opening /dev/ptmx")?;
    grantpt(&master).context("grantpt")?;
    unlockpt(&master).context("unlockpt")?;
    let name = ptsname_r(&master).context("ptsname")?;
    let replica = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("opening {name}"))?;
    // SAFETY: open returned a fresh fd we own.
    let replica = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(replica) };
    // SAFETY: master is a valid fd; into_raw_fd hands over ownership.
    let master = unsafe {
        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(
            master,
        ))
    };
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one struct winsize from a valid pointer.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setting the console size");
        }
    }
    Ok(Pty { master, replica })
}

/// Send the master to the listening socket at `path`: one message, the
/// name `/dev/ptmx` as data, the fd as SCM_RIGHTS.
pub fn send_master(path: &Path, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{
        connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
        UnixAddr,
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("console socket")?;
    let addr = UnixAddr::new(path).with_context(|| format!("console socket {}", path.display()))?;
    connect(sock.as_raw_fd(), &addr)
        .with_context(|| format!("connecting to console socket {}", path.display()))?;
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("sending the console master")?;
    Ok(())
}
