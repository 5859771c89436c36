//! The control channel: how the runtime drives a running sandbox. The
//! supervisor (the container's host process) holds the other end of a
//! SOCK_SEQPACKET pair; requests are framed like the gofer's.
//!
//! One request, one reply, in order. An exec request carries four fds
//! (stdin, stdout, stderr, and a socket on which the sentry reports the new
//! process's pid and later its exit status).

use crate::kernel::Kernel;
use crate::spec::ProcessSpec;
use crate::vfs::lock;
use gofer::proto::Frame;
use gofer::wire::{recv_frame, send_frame, WireError};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

#[derive(Serialize, Deserialize, Debug)]
pub enum Request {
    /// Release the init held since boot.
    Start,
    /// Signal the init (`all`: every process) as the host would.
    Kill {
        signal: i32,
        all: bool,
    },
    /// Stop every task from running workload code.
    Pause,
    Resume,
    /// Start a process (fds: stdin, stdout, stderr, status socket).
    Exec(ProcessSpec),
    /// The sandbox's process ids.
    Ps,
    /// Task count and memory in use.
    Stats,
    /// Change the limits the sentry enforces.
    Update {
        pids_limit: Option<usize>,
        memory_limit: Option<u64>,
    },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum Reply {
    /// The init is loaded and held (or running when not asked to wait).
    Ready,
    /// The init could not be started: the message a shell would print and
    /// the status it would exit with.
    Failed {
        message: String,
        code: i32,
    },
    Ok,
    Error {
        message: String,
    },
    Pids(Vec<i32>),
    Stats {
        tasks: u64,
        memory: u64,
    },
    /// An exec'd process runs with this pid.
    Started {
        pid: i32,
    },
    /// An exec'd process ended with this wait(2) status.
    Exited {
        status: i32,
    },
}

pub fn send(fd: BorrowedFd<'_>, r: &Reply) -> Result<(), WireError> {
    send_frame(fd, &Frame { tag: 0, body: r }, &[])
}

pub fn send_request(fd: BorrowedFd<'_>, r: &Request, fds: &[i32]) -> Result<(), WireError> {
    send_frame(fd, &Frame { tag: 0, body: r }, fds)
}

pub fn recv_reply(fd: BorrowedFd<'_>) -> Result<Reply, WireError> {
    recv_frame::<Reply>(fd).map(|(f, _)| f.body)
}

/// Report an exec'd process's end on its status socket.
pub fn exec_exited(sock: &OwnedFd, wait_status: i32) {
    let _ = send(
        sock.as_fd(),
        &Reply::Exited {
            status: wait_status,
        },
    );
}

/// Serve the runtime's requests until it hangs up. `start` is signalled on
/// the first Start request.
pub fn serve(k: Arc<Kernel>, sock: Arc<OwnedFd>, start: mpsc::Sender<()>, debug: bool) {
    let mut start = Some(start);
    loop {
        let (frame, fds) = match recv_frame::<Request>(sock.as_fd()) {
            Ok(x) => x,
            Err(WireError::Eof) => return,
            Err(e) => {
                tracing::warn!("control: {e}");
                return;
            }
        };
        tracing::debug!(req = ?frame.body, "control request");
        let mut release_after_reply = None;
        let reply = match frame.body {
            Request::Start => match start.take() {
                Some(tx) => {
                    let _ = tx.send(());
                    Reply::Ok
                }
                None => Reply::Error {
                    message: "already started".into(),
                },
            },
            Request::Kill { signal, all } => {
                let r = kill(&k, signal, all);
                // A held init that is sent SIGKILL must die now, as runc's
                // does: once the reply is out, let it run into the signal.
                if signal == libc::SIGKILL && r == Reply::Ok {
                    release_after_reply = start.take();
                }
                r
            }
            Request::Pause => {
                k.freezer.freeze(&k);
                Reply::Ok
            }
            Request::Resume => {
                k.freezer.thaw();
                Reply::Ok
            }
            Request::Ps => Reply::Pids(k.tgids()),
            Request::Stats => Reply::Stats {
                tasks: k.task_count() as u64,
                memory: k.mf.resident(),
            },
            Request::Update {
                pids_limit,
                memory_limit,
            } => {
                if let Some(p) = pids_limit {
                    k.pids_limit.store(p.max(1), Ordering::Relaxed);
                }
                if let Some(m) = memory_limit {
                    if k.memory_limit.swap(m, Ordering::Relaxed) == 0 {
                        crate::kernel::start_memory_monitor(k.clone());
                    }
                }
                Reply::Ok
            }
            Request::Exec(spec) => exec(&k, spec, fds, debug),
        };
        if send(sock.as_fd(), &reply).is_err() {
            return;
        }
        if let Some(tx) = release_after_reply {
            let _ = tx.send(());
        }
    }
}

fn kill(k: &Kernel, signal: i32, all: bool) -> Reply {
    if !(1..=64).contains(&signal) {
        return Reply::Error {
            message: format!("invalid signal {signal}"),
        };
    }
    let targets: Vec<i32> = if all { k.tgids() } else { vec![1] };
    for tgid in targets {
        if let Some(p) = k.process(tgid) {
            crate::signals::send_from_host(k, &p, signal);
        }
    }
    Reply::Ok
}

fn exec(k: &Arc<Kernel>, spec: ProcessSpec, fds: Vec<OwnedFd>, debug: bool) -> Reply {
    let Ok::<[OwnedFd; 4], _>([stdin, stdout, stderr, status]) = fds.try_into() else {
        return Reply::Error {
            message: "exec needs stdin, stdout, stderr and a status socket".into(),
        };
    };
    let (tx, rx) = mpsc::channel::<Result<i32, (String, i32)>>();
    let k2 = k.clone();
    // The thread that starts the process forks its stub, so it must be the
    // one that runs it.
    let spawned = std::thread::Builder::new()
        .name("exec".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let table = crate::stdio_from([stdin, stdout, stderr]);
            let mut task = match crate::start_process(&k2, &spec, table, debug) {
                Ok(t) => t,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            lock(&k2.exec_waiters).insert(task.tgid, Arc::new(status));
            let _ = tx.send(Ok(task.tgid));
            let _ = task.run();
        });
    if spawned.is_err() {
        return Reply::Error {
            message: "cannot start a sentry thread".into(),
        };
    }
    match rx.recv() {
        Ok(Ok(pid)) => Reply::Started { pid },
        Ok(Err((message, code))) => Reply::Failed { message, code },
        Err(_) => Reply::Error {
            message: "exec failed".into(),
        },
    }
}
