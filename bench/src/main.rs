//! `bench`: how fast is rvisor, and at what cost, next to runc, gVisor's
//! runsc and native execution.
//!
//! ```text
//! cargo run -p bench --release -- [--runtimes rvisor,runsc,runc,native] [--quick] [--only GROUP] [--out DIR]
//! ```
//!
//! Every sandbox runtime is driven through its OCI command line with the
//! same bundle; native runs the same program on the host. For each job the
//! runtimes alternate within every iteration (A B C A B C ...), so that
//! drift in machine load hits all alike. Results: a Markdown table on
//! stdout and in `results.md`, `results.json` with every sample, and one PNG
//! chart per group. A runtime that is not installed is skipped with a note;
//! a benchmark that fails under one runtime shows `failed: reason` in its
//! cell and the run goes on.

mod bundle;
mod plot;
mod procs;
mod report;
mod runtime;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use report::{Cell, Report, Row};
use runtime::{Kind, Runtime};
use workload::{Ctx, Group, Scale};

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Benchmarks rvisor against runsc, runc and native execution"
)]
struct Args {
    /// Runtimes to compare, in column order: rvisor, runsc, runc, native.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rvisor,runsc,runc,native"
    )]
    runtimes: Vec<String>,
    /// Small sizes and few iterations (a smoke test; under 3 minutes).
    #[arg(long)]
    quick: bool,
    /// Only these groups: micro, fs, macro, density (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Output directory: results.json, results.md, GROUP.png, bundles.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Measured iterations per job (after a warm-up), instead of the default.
    #[arg(long)]
    iters: Option<usize>,
    /// The rvisor binary [default: $RVISOR_BIN, then target/release/rvisor
    /// next to bench or under $CARGO_TARGET_DIR, then PATH].
    #[arg(long)]
    rvisor_bin: Option<PathBuf>,
    /// Debian rootfs with python3, sqlite3 and gcc for the macro group
    /// (built with mmdebstrap when missing, except with --quick).
    #[arg(long, default_value = bundle::DEBIAN_ROOTFS)]
    debian_rootfs: PathBuf,
    /// Kill a single command that runs longer than this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let groups = parse_groups(&args.only)?;
    let scale = Scale { quick: args.quick };

    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out)?;
    let scratch = out.join("tmp");
    std::fs::create_dir_all(&scratch)?;
    // Short: the runtimes put unix sockets under their --root.
    let state = PathBuf::from(format!("/tmp/rvbench-{}", std::process::id()));
    std::fs::create_dir_all(&state)?;

    if !nix::unistd::geteuid().is_root() {
        eprintln!("[bench] not root: the sandboxes will most likely fail to start");
    }

    let rvisor_bin = args.rvisor_bin.clone().unwrap_or_else(default_rvisor_bin);
    let mut notes = Vec::new();
    let mut runtimes = Vec::new();
    for name in &args.runtimes {
        let rt = Runtime::new(Kind::parse(name.trim())?, &rvisor_bin, &state);
        match &rt.missing {
            Some(why) => {
                eprintln!("[bench] skipping {}: {why}", rt.name());
                notes.push(format!("{} skipped: {why}", rt.name()));
            }
            None => runtimes.push(rt),
        }
    }
    if runtimes.is_empty() {
        bail!("no runtime to measure");
    }

    let build_debian = !args.quick && groups.contains(&Group::Macro);
    let bundles = bundle::Bundles::prepare(&out, &args.debian_rootfs, build_debian)?;
    if let Err(why) = &bundles.debian {
        if groups.contains(&Group::Macro) {
            notes.push(format!("macro rows except cold start: {why}"));
        }
    }

    let mut jobs = workload::jobs(&groups, scale);
    if let Some(n) = args.iters {
        for j in &mut jobs {
            j.iters = n.max(1);
        }
    }
    let ctx = Ctx {
        bundles: &bundles,
        scratch: &scratch,
        timeout: Duration::from_secs(args.timeout),
        settle: Duration::from_millis(if args.quick { 300 } else { 1000 }),
    };

    let total: usize = jobs
        .iter()
        .map(|j| (j.iters + usize::from(j.warmup)) * runtimes.len())
        .sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );

    // Without a terminal (CI logs) the bar is hidden: one line per job instead.
    let log_jobs = bar.is_hidden();
    let mut rows = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        if log_jobs {
            eprintln!(
                "[bench] {}/{} {} ({:.0} s)",
                n + 1,
                jobs.len(),
                job.id,
                started.elapsed().as_secs_f64()
            );
        }
        // cells[metric][runtime]
        let mut cells: Vec<Vec<Cell>> = job
            .metrics
            .iter()
            .map(|_| runtimes.iter().map(|_| Cell::default()).collect())
            .collect();
        let rounds = job.iters + usize::from(job.warmup);
        for round in 0..rounds {
            let counted = !(job.warmup && round == 0);
            for (k, rt) in runtimes.iter().enumerate() {
                bar.set_message(format!(
                    "{} / {}{}",
                    job.id,
                    rt.name(),
                    if counted { "" } else { " (warm-up)" }
                ));
                let all_failed = cells.iter().all(|row| row[k].error.is_some());
                if !all_failed {
                    let (samples, notes) = workload::measure(job, rt, &ctx);
                    for (m, s) in samples.into_iter().enumerate() {
                        let cell = &mut cells[m][k];
                        if cell.error.is_some() {
                            continue;
                        }
                        match s {
                            Ok(v) if counted => {
                                cell.samples.push(v);
                                if !notes.is_null() {
                                    cell.notes.push(notes.clone());
                                }
                            }
                            Ok(_) => {}
                            Err(e) => cell.error = Some(e),
                        }
                    }
                }
                bar.inc(1);
            }
        }
        for (metric, cells) in job.metrics.iter().zip(cells) {
            for (rt, c) in runtimes.iter().zip(&cells) {
                if let Some(e) = &c.error {
                    if !e.starts_with("n/a") {
                        bar.println(format!(
                            "[bench] {} / {}: failed: {e}",
                            metric.id,
                            rt.name()
                        ));
                    }
                }
            }
            rows.push(Row {
                group: job.group,
                metric: metric.clone(),
                cells,
            });
        }
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&state);

    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let meta = json!({
        "date": date_utc(),
        "command": command,
        "quick": args.quick,
        "groups": groups.iter().map(|g| g.name()).collect::<Vec<_>>(),
        "machine": machine(),
        "runtimes": runtimes.iter().map(Runtime::json).collect::<Vec<_>>(),
        "notes": notes,
        "duration_s": started.elapsed().as_secs_f64(),
    });
    let report = Report {
        runtimes: runtimes.iter().map(|r| r.name().to_owned()).collect(),
        rows,
        meta,
    };

    let md = format!(
        "{}{}",
        header(&report, &runtimes, &notes),
        report.markdown()
    );
    print!("{md}");
    std::fs::write(out.join("results.md"), &md)?;
    let json_path = out.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report.json())?)?;
    eprintln!("[bench] wrote {}", json_path.display());
    match plot::load_font().and_then(|()| plot::charts(&report, &out)) {
        Ok(paths) => {
            for p in paths {
                eprintln!("[bench] wrote {}", p.display());
            }
        }
        Err(e) => eprintln!("[bench] no charts: {e:#}"),
    }
    eprintln!("[bench] done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn parse_groups(only: &[String]) -> Result<Vec<Group>> {
    if only.is_empty() {
        return Ok(Group::ALL.to_vec());
    }
    let mut groups = Vec::new();
    for name in only {
        let g = Group::ALL
            .into_iter()
            .find(|g| g.name() == name.trim())
            .with_context(|| {
                format!("unknown group {name:?} (known: micro, fs, macro, density)")
            })?;
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    Ok(groups)
}

/// The date, the machine, the runtimes and the command, above the tables.
fn header(report: &Report, runtimes: &[Runtime], notes: &[String]) -> String {
    let m = &report.meta;
    let mut s = format!(
        "Run {} on {} ({} cores, {}, kernel {}), {}.\n\nCommand: `{}`\n\n",
        m["date"].as_str().unwrap_or("?"),
        m["machine"]["cpu"].as_str().unwrap_or("?"),
        m["machine"]["cores"],
        m["machine"]["memory"].as_str().unwrap_or("?"),
        m["machine"]["kernel"].as_str().unwrap_or("?"),
        if m["quick"] == true { "quick" } else { "full" },
        m["command"].as_str().unwrap_or("?"),
    );
    for rt in runtimes {
        s.push_str(&format!(
            "- {}: {}{}\n",
            rt.name(),
            rt.version.as_deref().unwrap_or("(host)"),
            rt.platform()
                .map(|p| format!(", platform {p}"))
                .unwrap_or_default()
        ));
    }
    for n in notes {
        s.push_str(&format!("- note: {n}\n"));
    }
    s.push_str(
        "\nCells: median (min–max) over the iterations; ratios are of medians; \
         lower is better everywhere.\n",
    );
    s
}

fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory": format!("{:.0} GiB", mem_kib as f64 / 1024.0 / 1024.0),
        "kernel": kernel,
    })
}

fn date_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn default_rvisor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RVISOR_BIN") {
        return PathBuf::from(p);
    }
    let mut candidates = Vec::new();
    // bench itself is target/release/bench: rvisor sits next to it.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("rvisor"));
        }
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(Path::new(&t).join("release/rvisor"));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    candidates.push(workspace.join("target/release/rvisor"));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return found.clone();
    }
    runtime::find_on_path("rvisor").unwrap_or_else(|| candidates.remove(0))
}
