//! The report of a sweep: every figure by slave count and by client count with 95% confidence
//! intervals over repetitions, the load per slave, and a table of every figure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::metric::Metric;
use crate::plot::{self, Bar, BarChart, LineChart, Point, Series};
use crate::run::{Cell, Sweep};
use crate::stats::{self, Described};

use super::table::{described_cells, natural_key, Table};

/// Writes the sweep's plots into `out`; returns the markdown of the report and the files written.
pub fn write(sweep: &Sweep, out: &Path) -> Result<(String, Vec<PathBuf>)> {
    let figures = figures(sweep);
    let mut files = Vec::new();
    let mut md = header(sweep);
    for metric in Metric::ALL {
        let by_cell = &figures[&metric];
        let by_slaves = stem(metric, "slaves");
        let by_clients = stem(metric, "clients");
        files.extend(plot::render(&chart(metric, by_cell, Axis::Slaves), out, &by_slaves)?);
        files.extend(plot::render(&chart(metric, by_cell, Axis::Clients), out, &by_clients)?);
        md.push_str(&format!(
            "## {} ({})\n\n![by slave count]({by_slaves}.png)\n![by client count]({by_clients}.png)\n\n",
            metric.title(),
            metric.unit()
        ));
        md.push_str(&figure_table(by_cell));
    }
    md.push_str("## Load distribution (keys held per slave)\n\n");
    md.push_str("Mean over every run with that slave count.\n\n");
    let mut table = Table::new(&["slaves", "slave", "runs", "mean keys held", "std dev", "95% CI"]);
    for (slaves, per_slave) in load(sweep) {
        let name = format!("load_{slaves}_slaves");
        files.extend(plot::render(&load_chart(slaves, &per_slave), out, &name)?);
        md.push_str(&format!("![keys held per slave, {slaves} slaves]({name}.png)\n"));
        for (slave, d) in &per_slave {
            let [mean, sd, ci] = described_cells(d);
            table.row(&[slaves.to_string(), slave.clone(), d.n.to_string(), mean, sd, ci]);
        }
    }
    md.push('\n');
    md.push_str(&table.finish());
    Ok((md, files))
}

/// Every metric described per cell over the cell's repetitions.
type Figures = BTreeMap<Metric, BTreeMap<Cell, Described>>;

fn figures(sweep: &Sweep) -> Figures {
    let cells = sweep.cells();
    Metric::ALL
        .into_iter()
        .map(|metric| {
            let by_cell = cells
                .iter()
                .filter_map(|(cell, runs)| {
                    let samples: Vec<f64> = runs.iter().filter_map(|r| metric.of_summary(&r.summary)).collect();
                    Some((*cell, stats::describe(&samples)?))
                })
                .collect();
            (metric, by_cell)
        })
        .collect()
}

fn stem(metric: Metric, axis: &str) -> String {
    format!("{}_by_{axis}", metric.name())
}

fn header(sweep: &Sweep) -> String {
    let repeats: Vec<usize> = sweep.cells().values().map(Vec::len).collect();
    let (fewest, most) = (repeats.iter().min().copied().unwrap_or(0), repeats.iter().max().copied().unwrap_or(0));
    let repetitions = if fewest == most {
        format!("{most} repetitions per cell")
    } else {
        format!("{fewest} to {most} repetitions per cell")
    };
    let list = |v: Vec<u64>| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let mut md = format!(
        "# Sweep report: {}\n\n{} runs: slave counts {}; client counts {}; {repetitions}.\n",
        sweep.dir.display(),
        sweep.runs.len(),
        list(sweep.slave_counts().into_iter().collect()),
        list(sweep.client_counts().into_iter().collect()),
    );
    if let Some((_, run)) = sweep.runs.first() {
        let c = &run.summary.config;
        md.push_str(&format!(
            "Workload of the first run: {}% writes over {} keys, values of {} bytes, connections per \
             client {}, think time {} ms, warmup {} s, measured {} s.\n",
            c.write_pct, c.keys, c.value_size, c.conns_per_client, c.think_ms, c.warmup_s, c.duration_s
        ));
    }
    md.push_str(
        "\nEvery figure is the mean over repetitions; error bars and intervals are 95% confidence \
         intervals (Student's t). Latencies are whole-run figures of each run.\n\n",
    );
    md
}

#[derive(Clone, Copy)]
enum Axis {
    Slaves,
    Clients,
}

/// One line per value of the other axis, each point the cell's mean with its interval.
fn chart(metric: Metric, by_cell: &BTreeMap<Cell, Described>, axis: Axis) -> LineChart {
    let mut lines: BTreeMap<u64, Vec<Point>> = BTreeMap::new();
    for (cell, d) in by_cell {
        let (x, line) = match axis {
            Axis::Slaves => (cell.slaves, cell.clients),
            Axis::Clients => (cell.clients, cell.slaves),
        };
        let error = d.ci95.map(|_| d.bounds());
        lines.entry(line).or_default().push(Point { x: x as f64, y: d.mean, error });
    }
    let (x_label, line_label) = match axis {
        Axis::Slaves => ("slave", "clients"),
        Axis::Clients => ("client", "slaves"),
    };
    let series = lines
        .into_iter()
        .map(|(value, mut points)| {
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            let label = if value == 1 { line_label.trim_end_matches('s') } else { line_label };
            Series { label: format!("{value} {label}"), points }
        })
        .collect();
    LineChart {
        title: format!("{} by {x_label} count", metric.title()),
        x_label: format!("{x_label} count"),
        y_label: format!("{} ({})", metric.title().to_lowercase(), metric.unit()),
        series,
        log_x: false,
        y_max: None,
        x_integer: true,
    }
}

fn figure_table(by_cell: &BTreeMap<Cell, Described>) -> String {
    let mut table = Table::new(&["slaves", "clients", "runs", "mean", "std dev", "95% CI"]);
    for (cell, d) in by_cell {
        let [mean, sd, ci] = described_cells(d);
        table.row(&[cell.slaves.to_string(), cell.clients.to_string(), d.n.to_string(), mean, sd, ci]);
    }
    let mut md = table.finish();
    md.push('\n');
    md
}

/// Per slave count, per slave (in natural order): its name and keys held in each run.
type HeldBySlave = BTreeMap<u64, BTreeMap<(String, u64), (String, Vec<f64>)>>;

/// Keys held by each slave name, described over the runs of each slave count.
fn load(sweep: &Sweep) -> BTreeMap<u64, Vec<(String, Described)>> {
    let mut held = HeldBySlave::new();
    for (entry, run) in &sweep.runs {
        for l in &run.summary.load {
            let (_, samples) = held
                .entry(entry.slaves)
                .or_default()
                .entry(natural_key(&l.slave))
                .or_insert_with(|| (l.slave.clone(), Vec::new()));
            samples.push(l.keys_held as f64);
        }
    }
    held.into_iter()
        .map(|(slaves, by_name)| {
            let described =
                by_name.into_values().filter_map(|(name, samples)| Some((name, stats::describe(&samples)?))).collect();
            (slaves, described)
        })
        .collect()
}

fn load_chart(slaves: u64, per_slave: &[(String, Described)]) -> BarChart {
    BarChart {
        title: format!("Keys held per slave, {slaves} slaves"),
        x_label: "slave".to_string(),
        y_label: "keys held (mean over runs)".to_string(),
        bars: per_slave
            .iter()
            .map(|(name, d)| Bar { label: name.clone(), value: d.mean, error: d.ci95.map(|_| d.bounds()) })
            .collect(),
    }
}
