//! Statistics, the Markdown table and results.json.

use std::path::Path;

use serde_json::{json, Value};

use crate::runtime::Runtime;
use crate::workload::Workload;

/// Samples (or the failure) of one workload under one runtime.
pub struct Cell {
    pub runtime: String,
    pub label: String,
    pub command: String,
    pub samples: Vec<f64>,
    pub error: Option<String>,
}

impl Cell {
    pub fn new(rt: &Runtime, command: String) -> Cell {
        Cell {
            runtime: rt.name().to_owned(),
            label: rt.label(),
            command,
            samples: Vec::new(),
            error: None,
        }
    }

    fn stats(&self) -> Option<Stats> {
        if self.error.is_some() {
            None
        } else {
            Stats::of(&self.samples)
        }
    }
}

#[derive(Clone, Copy)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

struct Row {
    id: String,
    title: String,
    unit: String,
    cells: Vec<Cell>,
}

pub struct Report {
    meta: Value,
    rows: Vec<Row>,
}

impl Report {
    pub fn new(runtimes: &[Runtime], iters: usize, out_dir: &Path) -> Report {
        let uname = std::process::Command::new("uname")
            .arg("-srm")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let unix_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let runtimes: Vec<Value> = runtimes
            .iter()
            .map(|rt| json!({ "runtime": rt, "label": rt.label(), "version": rt.version() }))
            .collect();
        Report {
            meta: json!({
                "unix_time": unix_time,
                "host": uname,
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                "iters": iters,
                "out_dir": out_dir,
                "runtimes": runtimes,
            }),
            rows: Vec::new(),
        }
    }

    pub fn add(&mut self, w: &dyn Workload, cells: Vec<Cell>) {
        self.rows.push(Row {
            id: w.id().to_owned(),
            title: w.title(),
            unit: w.unit().to_owned(),
            cells,
        });
    }

    fn runsc_median(row: &Row) -> Option<f64> {
        row.cells
            .iter()
            .find(|c| c.runtime == "runsc")
            .and_then(Cell::stats)
            .map(|s| s.median)
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| workload | runtime | median | min–max | vs runsc |\n");
        s.push_str("|---|---|---:|---:|---:|\n");
        for row in &self.rows {
            let runsc = Self::runsc_median(row);
            for c in &row.cells {
                let (median, range, ratio) = match (&c.error, c.stats()) {
                    (Some(e), _) => (
                        format!("failed: {}", one_line(e)),
                        "–".to_owned(),
                        "–".to_owned(),
                    ),
                    (None, None) => (
                        "failed: no samples".to_owned(),
                        "–".to_owned(),
                        "–".to_owned(),
                    ),
                    (None, Some(st)) => (
                        format!("{} {}", fmt_num(st.median), row.unit),
                        format!("{}–{}", fmt_num(st.min), fmt_num(st.max)),
                        match runsc {
                            Some(r) if r > 0.0 => fmt_ratio(st.median / r),
                            _ => "–".to_owned(),
                        },
                    ),
                };
                s.push_str(&format!(
                    "| {} | {} | {median} | {range} | {ratio} |\n",
                    row.title, c.label
                ));
            }
        }
        s
    }

    pub fn json(&self) -> Value {
        let results: Vec<Value> = self
            .rows
            .iter()
            .flat_map(|row| {
                let runsc = Self::runsc_median(row);
                row.cells.iter().map(move |c| {
                    let st = c.stats();
                    json!({
                        "workload": row.id,
                        "title": row.title,
                        "unit": row.unit,
                        "runtime": c.runtime,
                        "label": c.label,
                        "command": c.command,
                        "samples": c.samples,
                        "median": st.map(|s| s.median),
                        "min": st.map(|s| s.min),
                        "max": st.map(|s| s.max),
                        "ratio_to_runsc": match (st, runsc) {
                            (Some(s), Some(r)) if r > 0.0 => Some(s.median / r),
                            _ => None,
                        },
                        "error": c.error,
                    })
                })
            })
            .collect();
        json!({ "meta": self.meta, "results": results })
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}

fn one_line(s: &str) -> String {
    let line = s.replace('\n', " ").replace('|', "\\|");
    if line.chars().count() > 120 {
        line.chars().take(117).collect::<String>() + "..."
    } else {
        line
    }
}
