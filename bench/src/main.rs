//! `bench`: rvisor side by side with runsc and native execution.
//!
//! ```text
//! cargo run -p bench --release -- [--runtimes rvisor,runsc,native] [--iters N] [--out DIR]
//! ```
//!
//! For each workload, the runtimes are alternated within every iteration
//! (A B C A B C ...) so that drift in machine load affects all alike. The
//! report is a Markdown table on stdout (median, min–max, ratio to runsc)
//! and `results.json` in the output directory. A runtime that is missing or
//! fails shows `failed: reason` in its cells; the run goes on.

mod report;
mod runtime;
mod workload;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use report::{Cell, Report};
use runtime::Runtime;
use workload::{last_line, RunResult, Workload};

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Benchmarks rvisor against runsc and native execution"
)]
struct Args {
    /// Runtimes to compare, in order: rvisor, runsc, native.
    #[arg(long, value_delimiter = ',', default_value = "rvisor,runsc,native")]
    runtimes: Vec<String>,
    /// Workloads to run: cold-start, getppid, fork, fork-exec, thread, futex, signal.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "cold-start,getppid,fork,fork-exec,thread,futex,signal"
    )]
    workloads: Vec<String>,
    /// Measured iterations per workload and runtime (after one warm-up run).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Directory for results.json and the helper programs.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Number of getppid calls per run of the getppid loop.
    #[arg(long, default_value_t = 100_000)]
    getppid_calls: u64,
    /// The rvisor binary [default: $RVISOR_BIN, target/release/rvisor, rvisor on PATH].
    #[arg(long)]
    rvisor_bin: Option<PathBuf>,
    /// runsc platform (ptrace is the one comparable to rvisor's).
    #[arg(long, default_value = "ptrace")]
    runsc_platform: String,
    /// Kill a run that takes longer than this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.iters == 0 {
        bail!("--iters must be at least 1");
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let out_dir = std::fs::canonicalize(&args.out)?;

    let rvisor_bin = args.rvisor_bin.clone().unwrap_or_else(default_rvisor_bin);
    let runtimes: Vec<Runtime> = args
        .runtimes
        .iter()
        .map(|n| Runtime::from_name(n.trim(), &rvisor_bin, &args.runsc_platform))
        .collect::<Result<_>>()?;
    let mut workloads: Vec<Box<dyn Workload>> = workload::all(args.getppid_calls)
        .into_iter()
        .filter(|w| args.workloads.iter().any(|id| id.trim() == w.id()))
        .collect();
    for id in &args.workloads {
        if !workloads.iter().any(|w| w.id() == id.trim()) {
            bail!(
                "unknown workload {id:?} (known: {})",
                workload::ids().join(", ")
            );
        }
    }

    let timeout = Duration::from_secs(args.timeout);
    let mut report = Report::new(&runtimes, args.iters, &out_dir);
    let available: Vec<Option<String>> = runtimes
        .iter()
        .map(|rt| rt.check().err().map(|e| e.to_string()))
        .collect();

    for w in workloads.iter_mut() {
        let prepared = w.prepare(&out_dir).err().map(|e| format!("{e:#}"));
        let argv = if prepared.is_none() {
            w.argv()
        } else {
            Vec::new()
        };
        let mut cells: Vec<Cell> = runtimes
            .iter()
            .zip(&available)
            .map(|(rt, unavailable)| {
                let mut cell = Cell::new(
                    rt,
                    if argv.is_empty() {
                        String::new()
                    } else {
                        rt.command_line(&argv)
                    },
                );
                cell.error = prepared.clone().or_else(|| unavailable.clone());
                cell
            })
            .collect();

        // One warm-up run each (page cache, first-run setup), not counted.
        for (rt, cell) in runtimes.iter().zip(cells.iter_mut()) {
            if cell.error.is_none() {
                eprintln!("[bench] {} / {}: warm-up", w.id(), rt.name());
                if let Err(e) = measure(rt, w.as_ref(), &argv, timeout) {
                    cell.error = Some(format!("{e:#}"));
                }
            }
        }
        for i in 0..args.iters {
            eprintln!("[bench] {}: iteration {}/{}", w.id(), i + 1, args.iters);
            for (rt, cell) in runtimes.iter().zip(cells.iter_mut()) {
                if cell.error.is_some() {
                    continue;
                }
                match measure(rt, w.as_ref(), &argv, timeout) {
                    Ok(v) => cell.samples.push(v),
                    Err(e) => cell.error = Some(format!("{e:#}")),
                }
            }
        }
        report.add(w.as_ref(), cells);
    }

    print!("{}", report.markdown());
    let json_path = out_dir.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report.json())?)
        .with_context(|| format!("write {}", json_path.display()))?;
    eprintln!("[bench] wrote {}", json_path.display());
    Ok(())
}

fn default_rvisor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RVISOR_BIN") {
        return PathBuf::from(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let built = workspace.join("target/release/rvisor");
    if built.is_file() {
        return built;
    }
    runtime::find_on_path("rvisor").unwrap_or(built)
}

/// Runs the workload once under the runtime and returns one sample.
fn measure(rt: &Runtime, w: &dyn Workload, argv: &[String], timeout: Duration) -> Result<f64> {
    let run = run_once(rt.command(argv), timeout)?;
    w.sample(&run)
}

/// Runs `cmd` with stdin from /dev/null, capturing output; fails on a
/// timeout or a non-zero status. Wall time covers spawn to exit.
fn run_once(mut cmd: Command, timeout: Duration) -> Result<RunResult> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let mut stdout_pipe = child.stdout.take().expect("piped");
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let wall = start.elapsed();
    let stdout = String::from_utf8_lossy(&out_thread.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned();
    if !status.success() {
        let why = last_line(&stderr);
        bail!("{status}{}{why}", if why.is_empty() { "" } else { ": " });
    }
    Ok(RunResult { wall, stdout })
}
