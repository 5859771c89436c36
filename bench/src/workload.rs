//! What is measured. A job is one thing run under each runtime per
//! iteration; it yields one sample for each of its metrics (the rows of the
//! report). Micro and fs jobs run the in-sandbox program `rvbench`, which
//! times its operations itself; macro jobs are timed from the outside.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::bundle::{Bundles, Root, C_LINES, SQLITE_ROWS};
use crate::procs;
use crate::runtime::{last_line, run_timed, Runtime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Micro,
    Fs,
    Macro,
    Density,
}

impl Group {
    pub const ALL: [Group; 4] = [Group::Micro, Group::Fs, Group::Macro, Group::Density];

    pub fn name(self) -> &'static str {
        match self {
            Group::Micro => "micro",
            Group::Fs => "fs",
            Group::Macro => "macro",
            Group::Density => "density",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Group::Micro => "Micro: one operation, timed inside the sandbox",
            Group::Fs => "File system: root (overlay) and bind mount",
            Group::Macro => "Macro: whole programs, timed from the host",
            Group::Density => "Density: memory and many sandboxes",
        }
    }
}

/// One row of the report.
#[derive(Clone, Debug)]
pub struct Metric {
    pub id: String,
    pub title: String,
    pub unit: &'static str,
}

/// One `MODE:OPS:DIR` argument of rvbench.
#[derive(Clone, Debug)]
pub struct Spec {
    pub mode: &'static str,
    pub ops: u64,
    /// Directory inside the sandbox for the file modes.
    pub dir: &'static str,
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// rvbench with these specs; one metric per spec, in µs per operation.
    Prog(Vec<Spec>),
    /// A command in a rootfs, timed from spawn to exit (ms).
    Wall { root: Root, args: Vec<String> },
    /// `run` of `true`, then `create`, `start`, `delete` timed separately.
    ColdStart,
    /// PSS of one sandbox running `sleep`.
    Idle,
    /// N sandboxes running `sleep`, started concurrently.
    Many(usize),
}

#[derive(Clone, Debug)]
pub struct Job {
    pub id: String,
    pub group: Group,
    pub kind: Kind,
    pub metrics: Vec<Metric>,
    pub iters: usize,
    pub warmup: bool,
}

/// Iteration counts and sizes: the full run, or `--quick` (CI smoke test).
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub quick: bool,
}

impl Scale {
    fn ops(self, full: u64) -> u64 {
        if self.quick {
            (full / 5).max(2)
        } else {
            full
        }
    }
}

const MICRO: &[(&str, &str, u64, &str)] = &[
    ("getppid", "getppid", 20_000, ""),
    (
        "clock_gettime",
        "clock_gettime(CLOCK_MONOTONIC)",
        20_000,
        "",
    ),
    ("open_close", "open + close", 5_000, "/bench/fs"),
    ("stat", "stat", 5_000, "/bench/fs"),
    ("pread", "4 KiB pread", 5_000, "/bench/fs"),
    ("write_null", "64 B write to /dev/null", 10_000, ""),
    ("pipe", "pipe ping-pong (round trip)", 2_000, ""),
    ("unix", "unix-socket ping-pong (round trip)", 2_000, ""),
    ("tcp", "TCP ping-pong over loopback (round trip)", 2_000, ""),
    ("tcp_stream", "1 MiB through TCP over loopback", 50, ""),
    ("fork", "fork + wait", 200, ""),
    ("fork_exec", "fork + exec (static) + wait", 100, ""),
    ("thread", "thread create + join", 500, ""),
    ("mmap", "mmap + touch 16 pages + munmap", 1_000, ""),
    ("fault", "page fault (per page, 256 MiB region)", 65_536, ""),
    ("futex", "futex ping-pong (round trip)", 2_000, ""),
];

const FS: &[(&str, &str, u64)] = &[
    ("stat", "stat", 5_000),
    ("open_close", "open + close", 5_000),
    ("pread", "4 KiB pread", 5_000),
    ("seqread", "1 MiB sequential read", 200),
    ("seqwrite", "1 MiB sequential write", 50),
    ("readdir", "readdir of 10 000 entries", 20),
    ("create_unlink", "create + unlink", 1_000),
];

const FS_DIRS: &[(&str, &str)] = &[("root", "/bench/fs"), ("bind", "/bind")];

/// Every job of the selected groups, in report order. Quick mode runs all
/// rvbench modes of a group in one sandbox per iteration.
pub fn jobs(groups: &[Group], scale: Scale) -> Vec<Job> {
    let mut out = Vec::new();
    let prog_iters = if scale.quick { 3 } else { 5 };
    let prog = |group: Group, specs: Vec<(Spec, Metric)>, out: &mut Vec<Job>| {
        if scale.quick {
            out.push(Job {
                id: group.name().to_owned(),
                group,
                metrics: specs.iter().map(|(_, m)| m.clone()).collect(),
                kind: Kind::Prog(specs.into_iter().map(|(s, _)| s).collect()),
                iters: prog_iters,
                warmup: false,
            });
        } else {
            for (s, m) in specs {
                out.push(Job {
                    id: m.id.clone(),
                    group,
                    metrics: vec![m],
                    kind: Kind::Prog(vec![s]),
                    iters: prog_iters,
                    warmup: true,
                });
            }
        }
    };
    for &g in groups {
        match g {
            Group::Micro => {
                let specs = MICRO
                    .iter()
                    .map(|&(mode, title, ops, dir)| {
                        let spec = Spec {
                            mode,
                            ops: scale.ops(ops),
                            dir,
                        };
                        let id = format!("micro/{mode}");
                        (spec, metric(&id, title, "µs"))
                    })
                    .collect();
                prog(g, specs, &mut out);
            }
            Group::Fs => {
                let mut specs = Vec::new();
                for &(mode, title, ops) in FS {
                    for &(where_, dir) in FS_DIRS {
                        let spec = Spec {
                            mode,
                            ops: scale.ops(ops),
                            dir,
                        };
                        let id = format!("fs/{mode}/{where_}");
                        let title = format!("{title} ({where_})");
                        specs.push((spec, metric(&id, &title, "µs")));
                    }
                }
                prog(g, specs, &mut out);
            }
            Group::Macro => out.extend(macro_jobs(scale)),
            Group::Density => out.extend(density_jobs(scale)),
        }
    }
    out
}

fn metric(id: &str, title: &str, unit: &'static str) -> Metric {
    Metric {
        id: id.to_owned(),
        title: title.to_owned(),
        unit,
    }
}

fn sh(script: String) -> Vec<String> {
    vec!["/bin/sh".to_owned(), "-c".to_owned(), script]
}

fn macro_jobs(scale: Scale) -> Vec<Job> {
    let iters = if scale.quick { 2 } else { 5 };
    let rows = if scale.quick { 1_000 } else { SQLITE_ROWS };
    let big_mib = if scale.quick { 64 } else { 1024 };
    let tar_dir = if scale.quick {
        "/usr/share/doc"
    } else {
        "/usr/share"
    };
    let wall = |id: &str, title: String, args: Vec<String>| Job {
        id: format!("macro/{id}"),
        group: Group::Macro,
        metrics: vec![metric(&format!("macro/{id}"), &title, "ms")],
        kind: Kind::Wall {
            root: Root::Debian,
            args,
        },
        iters,
        warmup: !scale.quick,
    };
    vec![
        Job {
            id: "macro/cold-start".to_owned(),
            group: Group::Macro,
            metrics: vec![
                metric("macro/cold-start/run", "cold start: `run` of `true`", "ms"),
                metric("macro/cold-start/create", "cold start: `create`", "ms"),
                metric("macro/cold-start/start", "cold start: `start`", "ms"),
                metric("macro/cold-start/delete", "cold start: `delete`", "ms"),
            ],
            kind: Kind::ColdStart,
            iters: if scale.quick { 3 } else { 10 },
            warmup: true,
        },
        wall(
            "python",
            "`python3 -c 'import json, sqlite3'`".to_owned(),
            vec![
                "python3".to_owned(),
                "-c".to_owned(),
                "import json, sqlite3".to_owned(),
            ],
        ),
        wall(
            "sqlite",
            format!("sqlite3: {rows} inserts, one transaction each"),
            sh(format!(
                "rm -f /tmp/rvbench.db && head -n {} /bench/inserts.sql | sqlite3 /tmp/rvbench.db && rm -f /tmp/rvbench.db",
                rows + 2
            )),
        ),
        wall(
            "tar",
            format!("tar of {tar_dir}"),
            sh(format!("tar cf - {tar_dir} | wc -c")),
        ),
        wall(
            "gcc",
            format!("gcc -O2 -c of a {C_LINES}-line C file"),
            vec![
                "gcc".to_owned(),
                "-O2".to_owned(),
                "-c".to_owned(),
                "/bench/big.c".to_owned(),
                "-o".to_owned(),
                "/tmp/rvbench-big.o".to_owned(),
            ],
        ),
        wall(
            "bigfile",
            format!("{} write then read", size_name(big_mib)),
            sh(format!(
                "dd if=/dev/zero of=/tmp/rvbench.big bs=1M count={big_mib} 2>/dev/null && dd if=/tmp/rvbench.big of=/dev/null bs=1M 2>/dev/null; s=$?; rm -f /tmp/rvbench.big; exit $s"
            )),
        ),
    ]
}

fn size_name(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{} GiB file", mib / 1024)
    } else {
        format!("{mib} MiB file")
    }
}

fn density_jobs(scale: Scale) -> Vec<Job> {
    let n = if scale.quick { 10 } else { 50 };
    vec![
        Job {
            id: "density/idle".to_owned(),
            group: Group::Density,
            metrics: vec![metric(
                "density/idle",
                "idle memory of one sandbox running `sleep` (PSS)",
                "MiB",
            )],
            kind: Kind::Idle,
            iters: 3,
            warmup: false,
        },
        Job {
            id: "density/many".to_owned(),
            group: Group::Density,
            metrics: vec![
                metric(
                    "density/many/time",
                    &format!("start {n} sleeping sandboxes concurrently"),
                    "ms",
                ),
                metric(
                    "density/many/memory",
                    &format!("total memory of {n} sleeping sandboxes (PSS)"),
                    "MiB",
                ),
            ],
            kind: Kind::Many(n),
            iters: if scale.quick { 1 } else { 3 },
            warmup: false,
        },
    ]
}

/// What a measurement needs besides the job and the runtime.
pub struct Ctx<'a> {
    pub bundles: &'a Bundles,
    pub scratch: &'a Path,
    pub timeout: Duration,
    pub settle: Duration,
}

/// One sample per metric, or the reason the metric failed.
pub type Samples = Vec<std::result::Result<f64, String>>;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

fn container_id() -> String {
    format!(
        "rvbench-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// Extra facts about a sample for results.json (process counts).
pub type Notes = Value;

/// Runs the job once under the runtime.
pub fn measure(job: &Job, rt: &Runtime, ctx: &Ctx) -> (Samples, Notes) {
    let all_failed = |e: anyhow::Error| -> Samples {
        let why = format!("{e:#}");
        job.metrics.iter().map(|_| Err(why.clone())).collect()
    };
    // Only the density rows need the runtimes' orphans as descendants.
    let subreaper = match job.kind {
        Kind::Idle | Kind::Many(_) => match procs::Subreaper::start() {
            Ok(s) => Some(s),
            Err(e) => return (all_failed(e), Value::Null),
        },
        _ => None,
    };
    let result = match &job.kind {
        Kind::Prog(specs) => prog(job, specs, rt, ctx).map(|s| (s, Value::Null)),
        Kind::Wall { root, args } => {
            wall(job, *root, args, rt, ctx).map(|ms| (vec![Ok(ms)], Value::Null))
        }
        Kind::ColdStart => cold_start(job, rt, ctx).map(|s| (s, Value::Null)),
        Kind::Idle => idle(job, rt, ctx),
        Kind::Many(n) => many(job, *n, rt, ctx),
    };
    // Whatever a runtime left running (a failed delete, a timed-out run) is
    // killed here, so that it does not weigh on the next measurement.
    let left = procs::kill_leftovers();
    drop(subreaper);
    match result {
        Ok((samples, notes)) if left == 0 => (samples, notes),
        Ok((samples, notes)) => (
            samples,
            json!({"leftover_processes_killed": left, "notes": notes}),
        ),
        Err(e) => (all_failed(e), Value::Null),
    }
}

/// Runs `args` in the job's bundle under the runtime: `run --bundle` for
/// the sandboxes, the same program on the host for native.
fn run_in(
    job: &Job,
    root: Root,
    args: &[String],
    rt: &Runtime,
    ctx: &Ctx,
) -> Result<crate::runtime::Outcome> {
    let b = ctx.bundles;
    if !rt.is_oci() {
        return run_timed(native_command(b, root, args)?, ctx.scratch, ctx.timeout);
    }
    let bundle = b.bundle(&job.id.replace('/', "-"), root, args)?;
    let id = container_id();
    let bundle_s = bundle.to_string_lossy().into_owned();
    let res = run_timed(
        rt.oci(&["run", "--bundle", &bundle_s, &id]),
        ctx.scratch,
        ctx.timeout,
    );
    rt.force_delete(&id);
    res
}

/// The same program run directly on the host: static programs of the small
/// rootfs by their host path, Debian ones under `chroot`.
fn native_command(b: &Bundles, root: Root, args: &[String]) -> Result<Command> {
    let mut cmd = match root {
        Root::Small => {
            let mapped: Vec<String> = args.iter().map(|a| host_arg(b, a)).collect();
            let mut c = Command::new(&mapped[0]);
            c.args(&mapped[1..]);
            c
        }
        Root::Debian => {
            let rootfs = b.rootfs(Root::Debian).map_err(anyhow::Error::msg)?;
            let mut c = Command::new("chroot");
            c.arg(rootfs).args(args);
            c
        }
    };
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .current_dir("/");
    Ok(cmd)
}

/// Maps a path inside the small bundle (or a `MODE:OPS:DIR` spec) to the
/// host: /bind is the bind mount's source, anything else is in the rootfs.
fn host_arg(b: &Bundles, arg: &str) -> String {
    let map = |p: &str| -> String {
        if let Some(rest) = p.strip_prefix("/bind") {
            format!("{}{rest}", b.bind_src.display())
        } else {
            format!("{}{p}", b.small.display())
        }
    };
    if arg.starts_with('/') {
        return map(arg);
    }
    match arg.split_once(":/") {
        Some((head, dir)) => format!("{head}:{}", map(&format!("/{dir}"))),
        None => arg.to_owned(),
    }
}

fn prog(job: &Job, specs: &[Spec], rt: &Runtime, ctx: &Ctx) -> Result<Samples> {
    let mut args = vec!["/bench/rvbench".to_owned()];
    for s in specs {
        let dir = if s.dir.is_empty() { "/tmp" } else { s.dir };
        args.push(format!("{}:{}:{dir}", s.mode, s.ops));
    }
    let out = run_in(job, Root::Small, &args, rt, ctx)?;
    parse_prog_output(&out.stdout, specs)
}

/// `ok MODE NS` / `fail MODE REASON`, one line per spec, in order; µs.
pub fn parse_prog_output(stdout: &str, specs: &[Spec]) -> Result<Samples> {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("fail "))
        .collect();
    let mut samples = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let Some(line) = lines.get(i) else {
            samples.push(Err(format!(
                "no result (the program stopped after {} of {} modes)",
                lines.len(),
                specs.len()
            )));
            continue;
        };
        let mut f = line.splitn(3, ' ');
        let (status, mode, rest) = (
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
        );
        if mode != s.mode {
            bail!("output out of order: {line:?} for mode {}", s.mode);
        }
        samples.push(match status {
            "ok" => rest
                .trim()
                .parse::<f64>()
                .map(|ns| ns / 1e3)
                .map_err(|e| format!("bad number {rest:?}: {e}")),
            _ => Err(rest.trim().to_owned()),
        });
    }
    Ok(samples)
}

fn wall(job: &Job, root: Root, args: &[String], rt: &Runtime, ctx: &Ctx) -> Result<f64> {
    let out = run_in(job, root, args, rt, ctx)?;
    Ok(ms(out.wall))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn cold_start(job: &Job, rt: &Runtime, ctx: &Ctx) -> Result<Samples> {
    let args = vec!["/bin/true".to_owned()];
    let run = ms(run_in(job, Root::Small, &args, rt, ctx)?.wall);
    if !rt.is_oci() {
        let na = || Err("n/a (no create/start/delete)".to_owned());
        return Ok(vec![Ok(run), na(), na(), na()]);
    }
    let bundle = ctx.bundles.bundle("cold-start", Root::Small, &args)?;
    let bundle_s = bundle.to_string_lossy().into_owned();
    let id = container_id();
    let step = |a: &[&str]| run_timed(rt.oci(a), ctx.scratch, ctx.timeout).map(|o| ms(o.wall));
    let lifecycle = (|| -> Result<[f64; 3]> {
        let create = step(&["create", "--bundle", &bundle_s, &id]).context("create")?;
        let start = step(&["start", &id]).context("start")?;
        rt.wait_stopped(&id, ctx.timeout)?;
        let delete = step(&["delete", &id]).context("delete")?;
        Ok([create, start, delete])
    })();
    match lifecycle {
        Ok(t) => Ok(vec![Ok(run), Ok(t[0]), Ok(t[1]), Ok(t[2])]),
        Err(e) => {
            rt.force_delete(&id);
            let why = format!("{e:#}");
            Ok(vec![Ok(run), Err(why.clone()), Err(why.clone()), Err(why)])
        }
    }
}

/// Creates and starts a sandbox running `sleep`. Its stdio is /dev/null and
/// the runtime's stderr a file: a pipe would stay open in the sandbox.
fn start_sleeper(rt: &Runtime, bundle: &str, id: &str, ctx: &Ctx) -> Result<()> {
    let err_path = ctx.scratch.join(format!("{id}.stderr"));
    for args in [vec!["create", "--bundle", bundle, id], vec!["start", id]] {
        let mut cmd = rt.oci(&args);
        let err = std::fs::File::create(&err_path)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        let child =
            procs::spawn(&mut cmd).with_context(|| format!("cannot start {}", rt.name()))?;
        let status = wait_status(child, ctx.timeout)?;
        if !status.success() {
            let text = std::fs::read_to_string(&err_path).unwrap_or_default();
            let _ = std::fs::remove_file(&err_path);
            bail!("{}: {status}: {}", args[0], last_line(&text));
        }
    }
    let _ = std::fs::remove_file(&err_path);
    Ok(())
}

/// Waits for the child, killing it after `timeout`.
fn wait_status(mut child: std::process::Child, timeout: Duration) -> Result<ExitStatus> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let dog = std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            true
        } else {
            false
        }
    });
    let status = child.wait();
    procs::done(&child);
    let _ = tx.send(());
    if dog.join().unwrap_or(false) {
        bail!("timed out after {}s", timeout.as_secs());
    }
    Ok(status?)
}

fn sleep_args() -> Vec<String> {
    vec!["/bin/sleep".to_owned(), "100000".to_owned()]
}

fn idle(job: &Job, rt: &Runtime, ctx: &Ctx) -> Result<(Samples, Notes)> {
    let args = sleep_args();
    if !rt.is_oci() {
        let mut child = procs::spawn(
            native_command(ctx.bundles, Root::Small, &args)?
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        std::thread::sleep(ctx.settle);
        let (mib, n) = procs::pss_mib(&procs::descendants());
        let _ = child.kill();
        let _ = child.wait();
        procs::done(&child);
        return Ok((vec![Ok(mib)], json!({"processes": n})));
    }
    let bundle = ctx
        .bundles
        .bundle(&job.id.replace('/', "-"), Root::Small, &args)?;
    let id = container_id();
    let res = start_sleeper(rt, &bundle.to_string_lossy(), &id, ctx).map(|()| {
        std::thread::sleep(ctx.settle);
        procs::pss_mib(&procs::descendants())
    });
    rt.force_delete(&id);
    let (mib, n) = res?;
    Ok((vec![Ok(mib)], json!({"processes": n})))
}

fn many(job: &Job, n: usize, rt: &Runtime, ctx: &Ctx) -> Result<(Samples, Notes)> {
    let args = sleep_args();
    if !rt.is_oci() {
        let start = Instant::now();
        let mut children = Vec::new();
        for _ in 0..n {
            children.push(procs::spawn(
                native_command(ctx.bundles, Root::Small, &args)?
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )?);
        }
        let took = ms(start.elapsed());
        std::thread::sleep(ctx.settle);
        let (mib, count) = procs::pss_mib(&procs::descendants());
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
            procs::done(&c);
        }
        return Ok((vec![Ok(took), Ok(mib)], json!({"processes": count})));
    }
    let bundle = ctx
        .bundles
        .bundle(&job.id.replace('/', "-"), Root::Small, &args)?;
    let bundle_s = bundle.to_string_lossy().into_owned();
    let ids: Vec<String> = (0..n).map(|_| container_id()).collect();
    let start = Instant::now();
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let bundle_s = &bundle_s;
                s.spawn(move || start_sleeper(rt, bundle_s, id, ctx))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("thread panicked"))))
            .collect()
    });
    let took = ms(start.elapsed());
    let failed = results.iter().filter(|r| r.is_err()).count();
    let first_err = results.into_iter().find_map(|r| r.err());
    let measured = if let Some(e) = first_err {
        Err(e.context(format!("{failed} of {n} sandboxes did not start")))
    } else {
        std::thread::sleep(ctx.settle);
        Ok(procs::pss_mib(&procs::descendants()))
    };
    std::thread::scope(|s| {
        for id in &ids {
            s.spawn(move || rt.force_delete(id));
        }
    });
    let (mib, count) = measured?;
    Ok((vec![Ok(took), Ok(mib)], json!({"processes": count})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: &'static str) -> Spec {
        Spec {
            mode,
            ops: 1,
            dir: "",
        }
    }

    #[test]
    fn prog_output_maps_lines_to_specs() {
        let specs = [spec("getppid"), spec("stat"), spec("fork")];
        let s =
            parse_prog_output("ok getppid 1500.0\nfail stat stat: No such file\n", &specs).unwrap();
        assert_eq!(s[0], Ok(1.5));
        assert_eq!(s[1], Err("stat: No such file".to_owned()));
        assert!(s[2].as_ref().unwrap_err().contains("stopped after 2 of 3"));
    }

    #[test]
    fn quick_batches_each_group_into_one_job() {
        let j = jobs(&[Group::Micro, Group::Fs], Scale { quick: true });
        assert_eq!(j.len(), 2);
        assert_eq!(j[0].metrics.len(), MICRO.len());
        assert_eq!(j[1].metrics.len(), FS.len() * FS_DIRS.len());
        let full = jobs(&[Group::Micro], Scale { quick: false });
        assert_eq!(full.len(), MICRO.len());
    }
}
