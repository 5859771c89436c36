//! The gofer: rvisor's file server.
//!
//! The gofer is the only rvisor process that opens host files once a sandbox
//! runs. It confines itself to a mount namespace holding nothing but the
//! served roots ([`confine`]), then answers the sentry's requests on a unix
//! `SOCK_SEQPACKET` socket ([`server`]), donating host fds by SCM_RIGHTS.
//! The sentry side of the protocol is [`client::Client`]; the wire types are
//! in [`proto`] and their framing in [`wire`].

use std::os::fd::OwnedFd;

pub mod client;
pub mod confine;
pub mod filter;
pub mod proto;
pub mod server;
pub mod wire;

/// Internal errors of the gofer process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection to the sentry failed or carried garbage.
    #[error("gofer transport: {0}")]
    Wire(#[from] wire::WireError),
    /// The peer broke the protocol (e.g. did not start with `Version`).
    #[error("gofer protocol: {0}")]
    Protocol(String),
    /// A system call made while setting up failed.
    #[error("gofer: {what}: {errno}")]
    Sys {
        what: String,
        errno: nix::errno::Errno,
    },
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>, errno: nix::errno::Errno) -> Error {
        Error::Sys {
            what: what.into(),
            errno,
        }
    }
}

/// Entry point of `rvisor gofer`: confine this process to `mounts` (index =
/// mount number used by `Attach`, 0 = rootfs), then serve `sock` until the
/// sentry closes it.
///
/// Must start as root on the host (it creates namespaces and mounts), in a
/// process that holds no other host fds (the runtime spawns it with only
/// stdio, `sock`, `userns` and `idmap` open) and has no other threads.
/// With `userns`, it leaves the host's user namespace once its mounts are
/// set up: into `idmap` if given and every served root could be idmapped
/// with it ([`confine::enter_idmapped_namespace`]), else into a new one
/// whose id maps the runtime writes ([`confine::enter_user_namespace`]).
pub fn run(
    sock: OwnedFd,
    mounts: Vec<confine::MountSpec>,
    userns: Option<OwnedFd>,
    idmap: Option<OwnedFd>,
    host_uds: bool,
) -> Result<(), Error> {
    use std::os::fd::AsFd;
    let (roots, idmapped) = confine::confine(&mounts, idmap.as_ref().map(|f| f.as_fd()), host_uds)?;
    match (userns, idmap) {
        (Some(sync), Some(ns)) if idmapped => confine::enter_idmapped_namespace(ns, sync)?,
        (Some(sync), _) => confine::enter_user_namespace(sync)?,
        (None, _) => {}
    }
    filter::drop_capabilities().map_err(|e| Error::Protocol(e.to_string()))?;
    filter::install(host_uds).map_err(|e| Error::Protocol(e.to_string()))?;
    server::serve(sock, roots, host_uds)
}
