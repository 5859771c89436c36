//! The OCI lifecycle (create, start, kill, delete, ...) and the supervisor:
//! the container's host process, which owns the sandbox (gofer + sentry),
//! relays the runtime's requests to the sentry over the control channel,
//! and exits with the init's status.

use crate::console;
use crate::hooks;
use crate::sandbox;
use crate::translate;
use anyhow::{anyhow, bail, Context, Result};
use oci::state::{Record, Status, Store};
use sentry::control::{Reply, Request};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Global settings of one runtime invocation.
pub struct Ctx {
    pub store: Store,
    pub debug: bool,
    /// Where root filesystem writes go: "memory" or "none" (the host).
    pub overlay: String,
    /// The gofer's user namespace (`--gofer-idmap`).
    pub gofer_ids: sandbox::GoferIds,
    /// Whether the sandbox may connect to host sockets in bind mounts
    /// (`--host-uds open`).
    pub host_uds: bool,
}

fn ctl_path(store: &Store, id: &str) -> PathBuf {
    store.dir(id).join("ctl.sock")
}

/// A socket address for `path` that fits sockaddr_un however deep the
/// state directory is (shims use long roots): the path relative to an
/// O_PATH fd of its directory, through /proc/self/fd. Keep the fd alive
/// while using the address.
fn short_addr(path: &Path) -> Result<(OwnedFd, nix::sys::socket::UnixAddr)> {
    let dir = path.parent().context("socket path has no directory")?;
    let name = path.file_name().context("socket path has no name")?;
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("opening {}", dir.display()))?;
    // SAFETY: open returned a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let short = Path::new("/proc/self/fd")
        .join(fd.as_raw_fd().to_string())
        .join(name);
    let addr = nix::sys::socket::UnixAddr::new(&short).context("socket path")?;
    Ok((fd, addr))
}

/// Connect to the container's supervisor and make one request.
fn request(store: &Store, id: &str, req: &Request, fds: &[RawFd]) -> Result<Reply> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket")?;
    let p = ctl_path(store, id);
    let (_dir, addr) = short_addr(&p).map_err(|_| anyhow!("container {id} is not running"))?;
    connect(sock.as_raw_fd(), &addr).map_err(|_| anyhow!("container {id} is not running"))?;
    sentry::control::send_request(sock.as_fd(), req, fds)
        .map_err(|e| anyhow!("sending to container {id}: {e}"))?;
    sentry::control::recv_reply(sock.as_fd()).map_err(|e| anyhow!("container {id}: {e}"))
}

fn expect_ok(r: Reply) -> Result<()> {
    match r {
        Reply::Ok => Ok(()),
        Reply::Error { message } => bail!("{message}"),
        other => bail!("unexpected reply {other:?}"),
    }
}

fn load(ctx: &Ctx, id: &str) -> Result<Record> {
    ctx.store.load(id).map_err(|e| anyhow!("{e}"))
}

fn state_json(r: &Record) -> Vec<u8> {
    serde_json::to_vec(&r.state()).unwrap_or_default()
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension(format!("rvisor-tmp-{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// `create`: start the sandbox with its init held; returns once the pid
/// file is written. Returns the supervisor's pid.
pub fn create(ctx: &Ctx, o: &CreateOpts) -> Result<i32> {
    oci::bundle::check_id(&o.id).map_err(|e| anyhow!("{e}"))?;
    let bundle = oci::bundle::load(&o.bundle).map_err(|e| anyhow!("{e}"))?;
    // Check the whole config before anything exists.
    let plan = translate::plan(&bundle)?;
    drop(plan);
    if bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
        && o.console_socket.is_none()
    {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    ctx.store.reserve(&o.id).map_err(|e| anyhow!("{e}"))?;
    let result = create_reserved(ctx, o, &bundle);
    if result.is_err() {
        if let Ok(r) = ctx.store.load(&o.id) {
            kill_supervisor(&r);
        }
        let _ = ctx.store.remove(&o.id);
    }
    result
}

fn create_reserved(ctx: &Ctx, o: &CreateOpts, bundle: &oci::bundle::Bundle) -> Result<i32> {
    let annotations = bundle
        .spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let hooks = bundle
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| serde_json::to_value(h).ok());
    let mut rec = Record {
        id: o.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: oci::state::rfc3339_now(),
        owner: String::new(),
        annotations,
        status: Status::Creating,
        hooks,
        cgroups: Vec::new(),
    };
    ctx.store.save(&rec).map_err(|e| anyhow!("{e}"))?;

    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0("rvisor-supervisor");
    if ctx.debug {
        cmd.arg("--debug");
    }
    cmd.arg("--root")
        .arg(&ctx.store.root)
        .arg("--overlay")
        .arg(&ctx.overlay)
        .arg("--gofer-idmap")
        .arg(ctx.gofer_ids.to_arg())
        .arg("--host-uds")
        .arg(if ctx.host_uds { "open" } else { "none" })
        .arg("supervise")
        .arg("--id")
        .arg(&o.id)
        .arg("--ready-fd")
        .arg(wr.as_raw_fd().to_string());
    if let Some(c) = &o.console_socket {
        cmd.arg("--console-socket").arg(c);
    }
    if o.preserve_fds > 0 {
        cmd.arg("--preserve-fds").arg(o.preserve_fds.to_string());
    }
    detach_keeping(&mut cmd, wr.as_raw_fd());
    let child = cmd.spawn().context("starting the container's supervisor")?;
    drop(wr);
    let pid = child.id() as i32;
    rec.pid = pid;
    rec.pid_start = oci::state::process_start(pid).unwrap_or(0);
    ctx.store.save(&rec).map_err(|e| anyhow!("{e}"))?;
    let mut msg = String::new();
    let mut f = std::fs::File::from(rd);
    let _ = f.read_to_string(&mut msg);
    if msg != "OK" {
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        let m = msg.strip_prefix("ERR ").unwrap_or(&msg);
        if m.is_empty() {
            bail!("the sandbox exited during create");
        }
        bail!("{m}");
    }
    // The supervisor outlives us: the caller (a shim, as subreaper) reaps it.
    std::mem::forget(child);
    // The supervisor recorded its cgroups meanwhile.
    if let Ok(saved) = ctx.store.load(&o.id) {
        rec.cgroups = saved.cgroups;
    }
    rec.status = Status::Created;
    ctx.store.save(&rec).map_err(|e| anyhow!("{e}"))?;
    if let Some(p) = &o.pid_file {
        write_pid_file(p, pid)?;
    }
    // Create hooks see the state runc shows them: "creating".
    let mut hook_rec = rec.clone();
    hook_rec.status = Status::Creating;
    let st = state_json(&hook_rec);
    for kind in ["prestart", "createRuntime", "createContainer"] {
        hooks::run(kind, &hooks::of_kind(&rec.hooks, kind), &st)?;
    }
    Ok(pid)
}

/// A host helper process (supervisor, exec waiter) in a session of its
/// own, out of the caller's terminal and its signals, inheriting `fd`.
fn detach_keeping(cmd: &mut std::process::Command, fd: RawFd) {
    // SAFETY: pre_exec runs in the forked child; setsid and fcntl are
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn kill_supervisor(r: &Record) {
    if r.pid > 0 && oci::state::process_start(r.pid) == Some(r.pid_start) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(r.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        // The shim (or we, for `run`) reaps it; wait for it to be gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while oci::state::process_start(r.pid) == Some(r.pid_start) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

pub fn start(ctx: &Ctx, id: &str) -> Result<()> {
    let mut rec = load(ctx, id)?;
    match rec.current_status() {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running => bail!("cannot start an already running container"),
        s => bail!("cannot start a container in the {s} state"),
    }
    let st = state_json(&rec);
    if let Err(e) = hooks::run(
        "startContainer",
        &hooks::of_kind(&rec.hooks, "startContainer"),
        &st,
    ) {
        // A failed start leaves nothing running.
        kill_supervisor(&rec);
        return Err(e);
    }
    expect_ok(request(&ctx.store, id, &Request::Start, &[])?)?;
    rec.status = Status::Running;
    ctx.store.save(&rec).map_err(|e| anyhow!("{e}"))?;
    // runc hands poststart hooks the state from before the start.
    hooks::run_all("poststart", &hooks::of_kind(&rec.hooks, "poststart"), &st);
    Ok(())
}

/// Signal names and numbers as `kill` takes them.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| anyhow!("invalid signal: {s}"))
}

pub fn kill(ctx: &Ctx, id: &str, sig: i32, all: bool) -> Result<()> {
    let rec = load(ctx, id)?;
    match rec.current_status() {
        Status::Created | Status::Running | Status::Paused => {}
        _ => bail!("container not running"),
    }
    expect_ok(request(
        &ctx.store,
        id,
        &Request::Kill { signal: sig, all },
        &[],
    )?)
}

pub fn delete(ctx: &Ctx, id: &str, force: bool) -> Result<()> {
    let rec = match ctx.store.load(id) {
        Ok(r) => r,
        Err(oci::OciError::NotFound) if force => return Ok(()),
        Err(e) => bail!("{e}"),
    };
    let status = rec.current_status();
    if status != Status::Stopped {
        if !force && status != Status::Created {
            bail!("cannot delete container {id} that is not stopped: {status}");
        }
        kill_supervisor(&rec);
    }
    crate::cgroups::remove(&rec.cgroups);
    let st = state_json(&rec);
    hooks::run_all("poststop", &hooks::of_kind(&rec.hooks, "poststop"), &st);
    ctx.store.remove(id).map_err(|e| anyhow!("{e}"))
}

pub fn state(ctx: &Ctx, id: &str) -> Result<()> {
    let rec = load(ctx, id)?;
    let s = serde_json::to_string_pretty(&rec.state())?;
    println!("{s}");
    Ok(())
}

pub fn list(ctx: &Ctx, json: bool, quiet: bool) -> Result<()> {
    let recs: Vec<Record> = ctx
        .store
        .ids()
        .iter()
        .filter_map(|id| ctx.store.load(id).ok())
        .collect();
    if json {
        let states: Vec<_> = recs.iter().map(|r| r.state()).collect();
        println!("{}", serde_json::to_string(&states)?);
        return Ok(());
    }
    if quiet {
        for r in &recs {
            println!("{}", r.id);
        }
        return Ok(());
    }
    println!(
        "{:<12} {:<10} {:<10} {:<40} {:<31} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for r in &recs {
        let s = r.state();
        println!(
            "{:<12} {:<10} {:<10} {:<40} {:<31} {}",
            r.id,
            s.pid,
            s.status,
            r.bundle.display(),
            r.created,
            if r.owner.is_empty() { "root" } else { &r.owner }
        );
    }
    Ok(())
}

pub fn ps(ctx: &Ctx, id: &str, json: bool) -> Result<()> {
    let rec = load(ctx, id)?;
    if rec.current_status() == Status::Stopped {
        if json {
            println!("[]");
        }
        return Ok(());
    }
    match request(&ctx.store, id, &Request::Ps, &[])? {
        Reply::Pids(p) => {
            if json {
                println!("{}", serde_json::to_string(&p)?);
            } else {
                println!("PID");
                for x in p {
                    println!("{x}");
                }
            }
            Ok(())
        }
        other => expect_ok(other),
    }
}

pub fn pause(ctx: &Ctx, id: &str, resume: bool) -> Result<()> {
    let mut rec = load(ctx, id)?;
    let s = rec.current_status();
    let (want, req, next) = if resume {
        (Status::Paused, Request::Resume, Status::Running)
    } else {
        (Status::Running, Request::Pause, Status::Paused)
    };
    if s != want {
        bail!(
            "container not {}",
            if resume { "paused" } else { "running" }
        );
    }
    expect_ok(request(&ctx.store, id, &req, &[])?)?;
    rec.status = next;
    ctx.store.save(&rec).map_err(|e| anyhow!("{e}"))
}

fn stats_json(ctx: &Ctx, id: &str) -> Result<serde_json::Value> {
    match request(&ctx.store, id, &Request::Stats, &[])? {
        Reply::Stats { tasks, memory } => Ok(serde_json::json!({
            "type": "stats",
            "id": id,
            "data": {
                "pids": {"current": tasks},
                "memory": {"usage": {"usage": memory}},
            }
        })),
        other => {
            expect_ok(other)?;
            bail!("no stats")
        }
    }
}

pub fn events(ctx: &Ctx, id: &str, stats: bool, interval: Duration) -> Result<()> {
    load(ctx, id)?;
    loop {
        let rec = load(ctx, id)?;
        if rec.current_status() == Status::Stopped {
            return Ok(());
        }
        println!("{}", stats_json(ctx, id)?);
        if stats {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

pub fn update(ctx: &Ctx, id: &str, resources: serde_json::Value) -> Result<()> {
    let rec = load(ctx, id)?;
    if rec.current_status() == Status::Stopped {
        bail!("container not running");
    }
    let pids = resources
        .pointer("/pids/limit")
        .and_then(|v| v.as_i64())
        .filter(|&l| l > 0)
        .map(|l| l as usize);
    let mem = resources
        .pointer("/memory/limit")
        .and_then(|v| v.as_i64())
        .filter(|&l| l > 0)
        .map(|l| l as u64);
    if let Some(o) = resources.as_object() {
        for (k, v) in o {
            let used = match k.as_str() {
                "pids" => true,
                "memory" => v.as_object().is_none_or(|m| m.keys().all(|x| x == "limit")),
                _ => v.is_null(),
            };
            if !used {
                eprintln!("rvisor: update: {k} is not enforced by the sandbox; ignored");
            }
        }
    }
    expect_ok(request(
        &ctx.store,
        id,
        &Request::Update {
            pids_limit: pids,
            memory_limit: mem,
        },
        &[],
    )?)
}

pub struct ExecOpts {
    pub id: String,
    pub process: sentry::spec::ProcessSpec,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
}

/// `exec`: start a process inside the sandbox. Returns the exit code to
/// exit with (0 when detached).
pub fn exec(ctx: &Ctx, o: ExecOpts) -> Result<i32> {
    let rec = load(ctx, &o.id)?;
    match rec.current_status() {
        Status::Created | Status::Running => {}
        Status::Paused => bail!("cannot exec in a paused container"),
        _ => bail!("cannot exec in a stopped container"),
    }
    let pty = if o.process.terminal {
        let sock = o
            .console_socket
            .as_ref()
            .context("--tty needs --console-socket")?;
        let p = console::open_pty(o.process.console_size)?;
        console::send_master(sock, &p.master)?;
        Some(p)
    } else {
        None
    };
    let (mine, theirs) = sandbox::seqpacket_pair()?;
    let stdio: [RawFd; 3] = match &pty {
        Some(p) => [p.replica.as_raw_fd(); 3],
        None => [0, 1, 2],
    };
    let fds = [stdio[0], stdio[1], stdio[2], theirs.as_raw_fd()];
    let argv0 = o
        .process
        .argv
        .first()
        .map(|a| String::from_utf8_lossy(a).to_string())
        .unwrap_or_default();
    let reply = request(&ctx.store, &o.id, &Request::Exec(o.process), &fds)?;
    drop(theirs);
    drop(pty);
    match reply {
        Reply::Started { .. } => {}
        Reply::Failed { message, code } => {
            bail!("{}", start_error(&argv0, code, &message))
        }
        other => {
            expect_ok(other)?;
        }
    }
    if o.detach {
        // A host process that lives as long as the exec'd one and exits
        // with its status: what the caller waits on.
        let mut cmd = std::process::Command::new("/proc/self/exe");
        let fd = mine.as_raw_fd();
        cmd.arg0("rvisor-exec")
            .arg("exec-wait")
            .arg("--status-fd")
            .arg(fd.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        detach_keeping(&mut cmd, fd);
        let child = cmd.spawn().context("starting the exec waiter")?;
        if let Some(p) = &o.pid_file {
            write_pid_file(p, child.id() as i32)?;
        }
        std::mem::forget(child);
        return Ok(0);
    }
    let status = wait_status(&mine);
    Ok(exit_like(status))
}

/// The wait(2) status an exec'd process ended with (SIGKILL if the sandbox
/// went away first).
pub fn wait_status(sock: &OwnedFd) -> i32 {
    loop {
        match sentry::control::recv_reply(sock.as_fd()) {
            Ok(Reply::Exited { status }) => return status,
            Ok(_) => continue,
            Err(_) => return libc::SIGKILL,
        }
    }
}

/// Turn a wait status into our own exit: a code, or death by the signal.
pub fn exit_like(status: i32) -> i32 {
    let sig = status & 0x7f;
    if sig == 0 {
        return (status >> 8) & 0xff;
    }
    die_by_signal(sig)
}

fn die_by_signal(sig: i32) -> i32 {
    // SAFETY: resetting a handler and raising a signal on ourselves.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    128 + sig
}

/// `exec-wait` (internal): wait on a status socket, exit like the process.
pub fn exec_wait(fd: RawFd) -> i32 {
    // SAFETY: the runtime passed this socket to us.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    exit_like(wait_status(&sock))
}

/// `supervise` (internal): the container's host process.
pub fn supervise(
    ctx: &Ctx,
    id: &str,
    ready_fd: RawFd,
    console_socket: Option<PathBuf>,
    preserve_fds: u32,
) -> Result<i32> {
    // SAFETY: create passed this pipe's write end to us.
    let ready = unsafe { std::fs::File::from_raw_fd(ready_fd) };
    // Nothing the supervisor starts may hold the pipe: create waits for EOF.
    // SAFETY: fcntl on the fd we now own.
    unsafe { libc::fcntl(ready_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut ready = Some(ready);
    match supervise_inner(ctx, id, &mut ready, console_socket, preserve_fds) {
        Ok(code) => Ok(code),
        Err(e) => {
            if let Some(mut r) = ready {
                let _ = write!(r, "ERR {e:#}");
            }
            Err(e)
        }
    }
}

/// Whether this process holds CAP_SYS_RESOURCE (effective).
fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

fn supervise_inner(
    ctx: &Ctx,
    id: &str,
    ready_slot: &mut Option<std::fs::File>,
    console_socket: Option<PathBuf>,
    preserve_fds: u32,
) -> Result<i32> {
    let mut rec = load(ctx, id)?;
    let bundle = oci::bundle::load(&rec.bundle).map_err(|e| anyhow!("{e}"))?;
    let mut plan = translate::plan(&bundle)?;
    plan.spec.preserve_fds = preserve_fds;
    if ctx.overlay == "none" && !plan.spec.root_readonly {
        // The rootfs is served writable and written through, as runc does.
        plan.spec.root_passthrough = true;
        if let Some(root) = plan.gofer_mounts.first_mut() {
            root.1 = false;
        }
    }
    rec.cgroups = crate::cgroups::place(&bundle.spec, std::process::id() as i32)?;
    if let Some(adj) = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.oom_score_adj())
    {
        // The sandbox's host processes inherit it, as a runc container's do.
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .context("setting oom_score_adj")?;
        // Linux keeps a floor for unprivileged writes: the value when the
        // writer held CAP_SYS_RESOURCE; else the one inherited (0 unless
        // a privileged ancestor set one, which the value cannot be under).
        plan.spec.process.oom_score_adj_min = Some(if has_cap_sys_resource() {
            adj
        } else {
            adj.min(0)
        });
    } else if let Some(adj) = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        // Unset: the container sees what it inherits, as under runc.
        plan.spec.process.oom_score_adj = Some(adj);
        plan.spec.process.oom_score_adj_min = Some(adj.min(0));
    }
    ctx.store.save(&rec).map_err(|e| anyhow!("{e}"))?;

    // A terminal: the sandbox's stdio becomes a pty replica.
    if plan.spec.process.terminal {
        let sock = console_socket.context("a terminal needs --console-socket")?;
        let p = console::open_pty(plan.spec.process.console_size)?;
        console::send_master(&sock, &p.master)?;
        for fd in 0..3 {
            nix::unistd::dup2(p.replica.as_raw_fd(), fd).context("dup2 of the pty")?;
        }
    }

    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
    let listener = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("control socket")?;
    let path = ctl_path(&ctx.store, id);
    let _ = std::fs::remove_file(&path);
    let (_dir, addr) = short_addr(&path)?;
    bind(listener.as_raw_fd(), &addr).with_context(|| format!("binding {}", path.display()))?;
    // SAFETY: chmod of the socket we just created.
    unsafe {
        libc::chmod(
            std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?.as_ptr(),
            0o600,
        );
    }
    listen(&listener, Backlog::new(16).context("backlog")?).context("listen")?;

    let (ours, sentry_end) = sandbox::seqpacket_pair()?;
    let filestore = match (ctx.overlay.as_str(), plan.gofer_mounts.first()) {
        ("self", Some((rootfs, _))) => Some(sandbox::open_filestore(rootfs)?),
        _ => None,
    };
    let launched = sandbox::launch(sandbox::Launch {
        gofer_mounts: plan.gofer_mounts,
        spec: plan.spec,
        control: Some(sentry_end),
        log_file: None,
        debug: ctx.debug,
        gofer_ids: ctx.gofer_ids,
        host_uds: ctx.host_uds,
        filestore,
    })?;
    let mut gofer = launched.gofer;
    let sentry_pid = launched.sentry;
    let Some(mut ready) = ready_slot.take() else {
        bail!("readiness pipe already used");
    };
    match sentry::control::recv_reply(ours.as_fd()) {
        Ok(Reply::Ready) => {
            ready.write_all(b"OK").context("reporting readiness")?;
        }
        Ok(Reply::Failed { message, code }) => {
            let argv0 = rec_argv0(&bundle);
            let _ = write!(ready, "ERR {}", start_error(&argv0, code, &message));
            let _ = sandbox::wait_exit(sentry_pid);
            let _ = gofer.wait();
            return Ok(1);
        }
        other => {
            let _ = write!(ready, "ERR sandbox failed to start: {other:?}");
            let _ = sandbox::wait_exit(sentry_pid);
            let _ = gofer.wait();
            return Ok(1);
        }
    }
    // Closing the pipe lets create return.
    drop(ready);
    serve(&listener, &ours, sentry_pid);
    let code = sandbox::wait_exit(sentry_pid).unwrap_or(137);
    let _ = gofer.wait();
    let _ = std::fs::remove_file(&path);
    // Die the way the init died, so the shim reports the same status.
    if code > 128 && code < 128 + 65 {
        return Ok(die_by_signal(code - 128));
    }
    Ok(code)
}

fn rec_argv0(b: &oci::bundle::Bundle) -> String {
    b.spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref().and_then(|a| a.first().cloned()))
        .unwrap_or_default()
}

/// A failed start in runc's words: clients turn "no such file or
/// directory" and "executable file not found" into 127, "permission
/// denied" into 126.
fn start_error(argv0: &str, code: i32, message: &str) -> String {
    let what = match code {
        127 if message.contains("cannot change directory") => {
            return format!("unable to start container process: {message}")
        }
        127 if argv0.contains('/') => {
            format!("stat {argv0}: no such file or directory")
        }
        127 => "executable file not found in $PATH".to_string(),
        126 => "permission denied".to_string(),
        _ => message.to_string(),
    };
    format!("unable to start container process: exec: {argv0:?}: {what}")
}

/// Relay requests from runtime invocations to the sentry until the sentry
/// exits.
fn serve(listener: &OwnedFd, sentry: &OwnedFd, sentry_pid: nix::unistd::Pid) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{accept4, SockFlag};
    loop {
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(sentry.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => return,
        }
        let sentry_ev = fds[1].revents().unwrap_or(PollFlags::empty());
        let listen_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        if sentry_ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLIN) {
            // The sentry says nothing unasked: it is gone.
            return;
        }
        if !listen_ev.contains(PollFlags::POLLIN) {
            continue;
        }
        let Ok(conn) = accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) else {
            continue;
        };
        // SAFETY: accept4 returned a fresh fd we own.
        let conn = unsafe { OwnedFd::from_raw_fd(conn) };
        let Ok((frame, fds)) = gofer::wire::recv_frame::<Request>(conn.as_fd()) else {
            continue;
        };
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        if sentry::control::send_request(sentry.as_fd(), &frame.body, &raw).is_err() {
            return;
        }
        drop(fds);
        let reply = match sentry::control::recv_reply(sentry.as_fd()) {
            Ok(r) => r,
            Err(_) => return,
        };
        let _ = sentry::control::send(conn.as_fd(), &reply);
        let _ = sentry_pid;
    }
}

/// `spec`: write a default config.json.
pub fn write_spec(bundle: &Path) -> Result<()> {
    let p = bundle.join("config.json");
    if p.exists() {
        bail!("File {} exists. Remove it first", p.display());
    }
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let v = serde_json::json!({
        "ociVersion": oci::bundle::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "rvisor",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
        }
    });
    std::fs::write(&p, serde_json::to_string_pretty(&v)?)
        .with_context(|| format!("writing {}", p.display()))
}

pub fn features() -> Result<()> {
    let caps: Vec<&str> = oci::caps::NAMES.to_vec();
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci::bundle::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "private", "rprivate", "mode"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"io.github.rvisor.platform": "ptrace"}
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
