//! One PNG per group: for each row, a horizontal bar per runtime giving its
//! median relative to the baseline (runc when it ran), on a log scale, so
//! rows of different units share one chart. Text is drawn with DejaVu Sans
//! (Debian's fonts-dejavu-core), loaded at run time.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::report::Report;
use crate::workload::Group;

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

const COLORS: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28), // rvisor
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
];

/// Registers the font once; without it no chart can have text.
pub fn load_font() -> Result<()> {
    let path = FONTS
        .iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| anyhow!("no DejaVuSans.ttf (apt-get install fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{path}: not a usable font"))
}

/// Writes `<dir>/<group>.png` for every group with rows; returns the paths.
pub fn charts(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    let base = if report.runtimes.iter().any(|r| r == "runc") {
        "runc".to_owned()
    } else {
        report.runtimes.last().cloned().unwrap_or_default()
    };
    let mut out = Vec::new();
    for g in Group::ALL {
        let rows: Vec<usize> = (0..report.rows.len())
            .filter(|&i| report.rows[i].group == g)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let path = dir.join(format!("{}.png", g.name()));
        chart(report, g, &rows, &base, &path).with_context(|| format!("{}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

fn chart(report: &Report, g: Group, rows: &[usize], base: &str, path: &Path) -> Result<()> {
    let m = report.runtimes.len();
    let n = rows.len();
    // ratios[row][runtime]
    let ratios: Vec<Vec<Option<f64>>> = rows
        .iter()
        .map(|&r| {
            (0..m)
                .map(|k| report.ratio(&report.rows[r], k, base))
                .collect()
        })
        .collect();
    let all: Vec<f64> = ratios.iter().flatten().flatten().copied().collect();
    let lo = all.iter().copied().fold(0.5, f64::min) / 1.5;
    let hi = all.iter().copied().fold(2.0, f64::max) * 1.5;

    let height = 120 + n as u32 * (m as u32 * 9 + 12);
    let root = BitMapBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let label_width = 360;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: median ÷ {base}'s (log scale, lower is better)",
                g.name()
            ),
            ("sans-serif", 20),
        )
        .margin(10)
        .margin_left(label_width)
        .x_label_area_size(36)
        .y_label_area_size(0)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..n as f64)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(format!("× {base}"))
        .x_label_formatter(&|v| crate::report::fmt_ratio(*v))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;

    let slot = 0.8 / m as f64;
    for k in 0..m {
        let color = COLORS[k % COLORS.len()];
        let bars = ratios.iter().enumerate().filter_map(|(i, rs)| {
            let v = rs[k]?;
            let top = (n - i) as f64 - 0.1 - k as f64 * slot;
            Some(Rectangle::new([(lo, top - slot), (v, top)], color.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(|e| anyhow!("{e}"))?
            .label(report.runtimes[k].clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, 0.0), (1.0, n as f64)],
            BLACK,
        )))
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;

    // Row titles, right-aligned against the plotting area.
    let style = TextStyle::from(("sans-serif", 13).into_font())
        .pos(Pos::new(HPos::Right, VPos::Center))
        .color(&BLACK);
    for (i, &r) in rows.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(lo, (n - i) as f64 - 0.5));
        let title = &report.rows[r].metric.title;
        let text = if title.chars().count() > 52 {
            title.chars().take(50).collect::<String>() + "…"
        } else {
            title.clone()
        };
        root.draw(&Text::new(text, (x - 8, y), style.clone()))
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
