//! Statistics, ratios, the Markdown tables and results.json.

use serde_json::{json, Value};

use crate::workload::{Group, Metric};

/// Samples (or the failure) of one metric under one runtime.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub samples: Vec<f64>,
    pub error: Option<String>,
    /// Extra facts per sample (process counts), for results.json.
    pub notes: Vec<Value>,
}

impl Cell {
    pub fn stats(&self) -> Option<Stats> {
        if self.error.is_some() {
            None
        } else {
            Stats::of(&self.samples)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
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

/// One metric with a cell per runtime (in the order of `Report::runtimes`).
pub struct Row {
    pub group: Group,
    pub metric: Metric,
    pub cells: Vec<Cell>,
}

pub struct Report {
    pub runtimes: Vec<String>,
    pub rows: Vec<Row>,
    pub meta: Value,
}

impl Report {
    fn index(&self, name: &str) -> Option<usize> {
        self.runtimes.iter().position(|r| r == name)
    }

    /// median(runtime) / median(base) for a row, when both have numbers.
    pub fn ratio(&self, row: &Row, runtime: usize, base: &str) -> Option<f64> {
        let b = row.cells[self.index(base)?].stats()?.median;
        let v = row.cells[runtime].stats()?.median;
        (b > 0.0).then(|| v / b)
    }

    /// The ratio columns: every sandbox to runc, then rvisor (and any other
    /// runtime that is neither runsc nor runc) to runsc.
    fn ratio_columns(&self) -> Vec<(usize, &'static str)> {
        let mut cols = Vec::new();
        if self.index("runc").is_some() {
            for (i, r) in self.runtimes.iter().enumerate() {
                if r != "runc" && r != "native" {
                    cols.push((i, "runc"));
                }
            }
        }
        if self.index("runsc").is_some() {
            for (i, r) in self.runtimes.iter().enumerate() {
                if r != "runc" && r != "runsc" && r != "native" {
                    cols.push((i, "runsc"));
                }
            }
        }
        cols
    }

    /// One table per group: a column per runtime (median and min–max), then
    /// the ratios of medians.
    pub fn markdown(&self) -> String {
        let cols = self.ratio_columns();
        let mut s = String::new();
        for g in Group::ALL {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.group == g).collect();
            if rows.is_empty() {
                continue;
            }
            s.push_str(&format!("\n#### {}\n\n| workload | unit |", g.title()));
            for r in &self.runtimes {
                s.push_str(&format!(" {r} |"));
            }
            for (i, base) in &cols {
                s.push_str(&format!(" {} ÷ {base} |", self.runtimes[*i]));
            }
            s.push_str("\n|---|---|");
            for _ in 0..self.runtimes.len() + cols.len() {
                s.push_str("---:|");
            }
            s.push('\n');
            for row in rows {
                s.push_str(&format!("| {} | {} |", row.metric.title, row.metric.unit));
                for c in &row.cells {
                    s.push_str(&format!(" {} |", cell_text(c)));
                }
                for (i, base) in &cols {
                    let r = self.ratio(row, *i, base);
                    s.push_str(&format!(" {} |", r.map(fmt_ratio).unwrap_or("–".into())));
                }
                s.push('\n');
            }
        }
        s
    }

    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let cells: Vec<Value> = self
                    .runtimes
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let c = &row.cells[i];
                        let st = c.stats();
                        json!({
                            "runtime": name,
                            "samples": c.samples,
                            "median": st.map(|s| s.median),
                            "min": st.map(|s| s.min),
                            "max": st.map(|s| s.max),
                            "ratio_to_runc": self.ratio(row, i, "runc"),
                            "ratio_to_runsc": self.ratio(row, i, "runsc"),
                            "error": c.error,
                            "notes": c.notes,
                        })
                    })
                    .collect();
                json!({
                    "group": row.group.name(),
                    "id": row.metric.id,
                    "title": row.metric.title,
                    "unit": row.metric.unit,
                    "cells": cells,
                })
            })
            .collect();
        json!({ "meta": self.meta, "rows": rows })
    }
}

fn cell_text(c: &Cell) -> String {
    match (&c.error, c.stats()) {
        (Some(e), _) if e.starts_with("n/a") => "n/a".to_owned(),
        (Some(e), _) => format!("failed: {}", one_line(e)),
        (None, None) => "failed: no samples".to_owned(),
        (None, Some(st)) if c.samples.len() == 1 => fmt_num(st.median),
        (None, Some(st)) => format!(
            "{} ({}–{})",
            fmt_num(st.median),
            fmt_num(st.min),
            fmt_num(st.max)
        ),
    }
}

pub fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn fmt_ratio(r: f64) -> String {
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
    if line.chars().count() > 100 {
        line.chars().take(97).collect::<String>() + "..."
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(samples: &[f64]) -> Cell {
        Cell {
            samples: samples.to_vec(),
            ..Cell::default()
        }
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(Stats::of(&[3.0, 1.0, 2.0]).unwrap().median, 2.0);
        let s = Stats::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn table_shows_failures_and_ratios() {
        let report = Report {
            runtimes: vec!["rvisor".into(), "runsc".into(), "runc".into()],
            rows: vec![Row {
                group: Group::Micro,
                metric: Metric {
                    id: "micro/x".into(),
                    title: "x".into(),
                    unit: "µs",
                },
                cells: vec![
                    cell(&[2.0, 4.0, 3.0]),
                    Cell {
                        error: Some("boom | bang".into()),
                        ..Cell::default()
                    },
                    cell(&[1.5]),
                ],
            }],
            meta: Value::Null,
        };
        let md = report.markdown();
        assert!(
            md.contains("| rvisor ÷ runc | runsc ÷ runc | rvisor ÷ runsc |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| x | µs | 3.00 (2.00–4.00) | failed: boom \\| bang | 1.50 | 2.00× | – | – |"
            ),
            "{md}"
        );
        let j = report.json();
        assert_eq!(j["rows"][0]["cells"][0]["ratio_to_runc"], 2.0);
    }
}
