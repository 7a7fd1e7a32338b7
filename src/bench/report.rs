//! `girder bench report`: reads the JSON results of a directory, writes a
//! Markdown table per metric with the subject/best-peer ratio, and draws a
//! PNG chart with one panel per metric (bars normalised per scenario and
//! labelled with their values).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::summary::Summary;
use super::BenchError;

/// One figure of merit and how to read it.
#[derive(Debug, Clone, Copy)]
struct Metric {
    name: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    value: fn(&Summary) -> Option<f64>,
}

const METRICS: &[Metric] = &[
    Metric {
        name: "deliveries/s",
        unit: "msg/s",
        higher_is_better: true,
        value: |s| (s.mode != "conn" && s.received > 0).then_some(s.recv_rate),
    },
    Metric {
        name: "p99 latency",
        unit: "ms",
        higher_is_better: false,
        value: |s| (s.latency.count > 0).then_some(s.latency.p99_ms),
    },
    Metric {
        name: "lost",
        unit: "%",
        higher_is_better: false,
        value: |s| s.expected.map(|_| s.loss_percent()),
    },
    Metric {
        name: "connect rate",
        unit: "conn/s",
        higher_is_better: true,
        value: |s| (s.mode == "conn").then_some(s.connect_rate),
    },
    Metric {
        name: "RSS per idle connection",
        unit: "KB",
        higher_is_better: false,
        value: |s| s.rss_per_connection.map(|b| b / 1000.0),
    },
    Metric {
        name: "broker CPU",
        unit: "% of a core",
        higher_is_better: false,
        value: |s| s.broker_usage.map(|u| u.cpu_percent),
    },
];

/// The results of a directory, arranged by scenario and broker.
#[derive(Debug)]
struct Table {
    scenarios: Vec<String>,
    brokers: Vec<String>,
    runs: Vec<Summary>,
}

impl Table {
    fn get(&self, scenario: &str, broker: &str) -> Option<&Summary> {
        self.runs
            .iter()
            .find(|s| s.label == scenario && s.broker == broker)
    }

    /// Values of `metric` for a scenario, one per broker column.
    fn row(&self, metric: &Metric, scenario: &str) -> Vec<Option<f64>> {
        self.brokers
            .iter()
            .map(|b| self.get(scenario, b).and_then(metric.value))
            .collect()
    }
}

/// Runs the report step.
pub(super) fn run(
    dir: &Path,
    markdown: Option<&Path>,
    png: Option<&Path>,
    subject: &str,
    brokers: &[String],
    font: &Path,
) -> Result<(), BenchError> {
    let table = load(dir, subject, brokers)?;
    let md = to_markdown(&table, subject);
    let md_path = markdown.map_or_else(|| dir.join("report.md"), Path::to_path_buf);
    write(&md_path, &md)?;
    print!("{md}");
    let png_path = png.map_or_else(|| dir.join("chart.png"), Path::to_path_buf);
    draw(&table, &png_path, font)?;
    eprintln!("wrote {} and {}", md_path.display(), png_path.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|source| BenchError::File {
        path: path.to_path_buf(),
        source,
    })
}

fn load(dir: &Path, subject: &str, brokers: &[String]) -> Result<Table, BenchError> {
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BenchError::File { path, source }
    };
    let mut runs = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(file_error(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(file_error(&path))?;
        let summary: Summary =
            serde_json::from_str(&text).map_err(|source| BenchError::Json { path, source })?;
        runs.push(summary);
    }
    runs.sort_by_key(|s| s.started_unix);
    Ok(arrange(runs, subject, brokers))
}

/// Orders scenarios by first appearance and brokers with the subject first,
/// then `listed` (shown even without results), then any others found. With
/// brokers listed, the runs of other brokers (and scenarios only they ran)
/// are left out.
fn arrange(mut runs: Vec<Summary>, subject: &str, listed: &[String]) -> Table {
    if !listed.is_empty() {
        runs.retain(|run| run.broker == subject || listed.contains(&run.broker));
    }
    let mut scenarios: Vec<String> = Vec::new();
    for run in &runs {
        if !scenarios.contains(&run.label) {
            scenarios.push(run.label.clone());
        }
    }
    let mut brokers = vec![subject.to_owned()];
    for broker in listed {
        if !brokers.contains(broker) {
            brokers.push(broker.clone());
        }
    }
    let others: BTreeSet<String> = runs.iter().map(|s| s.broker.clone()).collect();
    for broker in others {
        if !brokers.contains(&broker) {
            brokers.push(broker);
        }
    }
    Table {
        scenarios,
        brokers,
        runs,
    }
}

/// The ratio of the subject to the best peer for one row.
fn ratio(metric: &Metric, row: &[Option<f64>]) -> Option<f64> {
    let subject = row.first().copied().flatten()?;
    let peers = row.iter().skip(1).copied().flatten();
    let best = if metric.higher_is_better {
        peers.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    } else {
        peers.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
    }?;
    (best > 0.0).then(|| subject / best)
}

fn format_value(v: f64) -> String {
    if v >= 100_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn to_markdown(table: &Table, subject: &str) -> String {
    let mut out = String::new();
    for metric in METRICS {
        let rows: Rows<'_> = table
            .scenarios
            .iter()
            .map(|s| (s, table.row(metric, s)))
            .filter(|(_, row)| row.iter().any(Option::is_some))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let better = if metric.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        let _ = writeln!(
            out,
            "\n#### {} ({}, {better} is better)\n",
            metric.name, metric.unit
        );
        let _ = writeln!(
            out,
            "| scenario | {} | {subject} / best peer |",
            table.brokers.join(" | ")
        );
        let _ = writeln!(out, "|---|{}---|", "---:|".repeat(table.brokers.len()));
        for (scenario, row) in rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&table.brokers)
                .map(|(v, broker)| match (v, table.get(scenario, broker)) {
                    (Some(v), _) => format_value(*v),
                    (None, None) => "missing".to_owned(),
                    (None, Some(_)) => "-".to_owned(),
                })
                .collect();
            let r = ratio(metric, &row).map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
            let _ = writeln!(out, "| {scenario} | {} | {r} |", cells.join(" | "));
        }
    }
    out
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

fn draw(table: &Table, path: &Path, font: &Path) -> Result<(), BenchError> {
    let bytes = std::fs::read(font).map_err(|source| BenchError::File {
        path: font.to_path_buf(),
        source,
    })?;
    // The chart is drawn once per process: the font lives until exit.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| BenchError::Chart(format!("{} is not a usable font", font.display())))?;
    let panels: Vec<(&Metric, Rows<'_>)> = METRICS
        .iter()
        .filter(|m| m.name != "lost" && m.name != "broker CPU")
        .map(|m| {
            let rows = table
                .scenarios
                .iter()
                .map(|s| (s, table.row(m, s)))
                .filter(|(_, row)| row.iter().any(Option::is_some))
                .collect::<Vec<_>>();
            (m, rows)
        })
        .filter(|(_, rows)| !rows.is_empty())
        .collect();
    if panels.is_empty() {
        return Err(BenchError::Chart("no results to draw".into()));
    }
    let height = 330 * u32::try_from(panels.len()).unwrap_or(1) + 40;
    let root = BitMapBackend::new(path, (1200, height)).into_drawing_area();
    let chart_error = |e: DrawingAreaErrorKind<_>| BenchError::Chart(e.to_string());
    root.fill(&WHITE).map_err(chart_error)?;
    let (legend, body) = root.split_vertically(40);
    for (i, broker) in table.brokers.iter().enumerate() {
        let x = 20 + 180 * i32::try_from(i).unwrap_or(0);
        let color = COLORS[i % COLORS.len()];
        legend
            .draw(&Rectangle::new([(x, 12), (x + 18, 28)], color.filled()))
            .map_err(chart_error)?;
        legend
            .draw(&Text::new(broker.clone(), (x + 24, 12), ("sans-serif", 16)))
            .map_err(chart_error)?;
    }
    let areas = body.split_evenly((panels.len(), 1));
    for ((metric, rows), area) in panels.iter().zip(areas) {
        draw_panel(&area, metric, rows, &table.brokers).map_err(chart_error)?;
    }
    root.present().map_err(chart_error)?;
    Ok(())
}

/// The rows of one metric: a scenario and its value per broker.
type Rows<'a> = Vec<(&'a String, Vec<Option<f64>>)>;

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One panel: a group of bars per scenario, each bar scaled to the best
/// value of its group and labelled with its own value.
fn draw_panel(
    area: &Area<'_>,
    metric: &Metric,
    rows: &[(&String, Vec<Option<f64>>)],
    brokers: &[String],
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>> {
    let better = if metric.higher_is_better {
        "higher"
    } else {
        "lower"
    };
    let title = format!("{} ({}, {better} is better)", metric.name, metric.unit);
    let n = rows.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .build_cartesian_2d(0.0..n, 0.0..1.2)?;
    let labels: Vec<String> = rows.iter().map(|(s, _)| (*s).clone()).collect();
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_y_axis()
        .x_labels(rows.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (*x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_style(("sans-serif", 14))
        .draw()?;
    let width = 0.8 / brokers.len().max(1) as f64;
    for (g, (_, row)) in rows.iter().enumerate() {
        let top = row.iter().copied().flatten().fold(0.0, f64::max);
        for (b, value) in row.iter().enumerate() {
            let Some(v) = value else { continue };
            let h = if top > 0.0 { v / top } else { 0.0 };
            let x0 = g as f64 + 0.1 + b as f64 * width;
            let color = COLORS[b % COLORS.len()];
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x0 + width * 0.9, h)],
                color.filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                format_value(*v),
                (x0, h + 0.08),
                ("sans-serif", 13),
            )))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, broker: &str, rate: f64, at: u64) -> Summary {
        Summary {
            label: label.into(),
            broker: broker.into(),
            mode: "pubsub".into(),
            received: 1,
            recv_rate: rate,
            started_unix: at,
            ..Summary::default()
        }
    }

    #[test]
    fn markdown_has_ratios_and_missing_cells() {
        let runs = || {
            vec![
                run("fan-in", "mosquitto", 80_000.0, 1),
                run("fan-in", "girder", 120_000.0, 2),
                run("fan-in", "rumqttd", 100_000.0, 3),
                run("fan-out", "girder", 50_000.0, 4),
                run("fan-out", "mosquitto", 100_000.0, 5),
                run("xnode", "cluster", 10_000.0, 6),
            ]
        };
        // A broker not listed is left out, with the scenarios only it ran.
        let mosquitto_only = arrange(runs(), "girder", &["mosquitto".into()]);
        assert_eq!(mosquitto_only.brokers, ["girder", "mosquitto"]);
        assert_eq!(mosquitto_only.scenarios, ["fan-in", "fan-out"]);
        // None listed: every broker found.
        assert_eq!(arrange(runs(), "girder", &[]).brokers.len(), 4);
        let table = arrange(runs(), "girder", &["mosquitto".into(), "rumqttd".into()]);
        assert_eq!(table.scenarios, ["fan-in", "fan-out"]);
        assert_eq!(table.brokers, ["girder", "mosquitto", "rumqttd"]);
        let md = to_markdown(&table, "girder");
        assert!(
            md.contains("| fan-in | 120k | 80.0k | 100k | 1.20x |"),
            "{md}"
        );
        assert!(
            md.contains("| fan-out | 50.0k | 100k | missing | 0.50x |"),
            "{md}"
        );
    }

    #[test]
    fn lower_is_better_ratio_uses_the_smallest_peer() {
        let p99 = &METRICS[1];
        assert_eq!(p99.name, "p99 latency");
        assert_eq!(ratio(p99, &[Some(6.0), Some(3.0), Some(12.0)]), Some(2.0));
        assert_eq!(ratio(p99, &[Some(6.0), None, None]), None);
        assert_eq!(
            ratio(&METRICS[0], &[Some(6.0), Some(3.0), Some(12.0)]),
            Some(0.5)
        );
    }

    #[test]
    fn draws_a_png_when_a_font_is_there() {
        let font = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
        if !font.exists() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("girder-bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.png");
        let runs = vec![run("a", "girder", 1.0, 1), run("a", "peer", 2.0, 2)];
        let table = arrange(runs, "girder", &[]);
        draw(&table, &path, font).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
