//! The report of a single run: throughput over time, latency CDFs, keys per slave, tables.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::metric::Metric;
use crate::plot::{self, Bar, BarChart, LineChart, Point, Series};
use crate::run::Run;
use crate::stats;
use crate::summary::{LatencyStats, RunSummary};

use super::table::{described_cells, natural_key, num, Table};

/// Writes the run's plots into `out`; returns the markdown of the report and the files written.
pub fn write(run: &Run, out: &Path) -> Result<(String, Vec<PathBuf>)> {
    let mut files = plot::render(&throughput_chart(run), out, "throughput_over_time")?;
    files.extend(plot::render(&cdf_chart(&run.summary), out, "latency_cdf")?);
    files.extend(plot::render(&load_chart(&run.summary), out, "keys_per_slave")?);
    Ok((markdown(run), files))
}

fn throughput_chart(run: &Run) -> LineChart {
    let points = run.rows.iter().map(|r| Point { x: r.second as f64, y: r.throughput_rps, error: None }).collect();
    LineChart {
        title: "Throughput over time".to_string(),
        x_label: "second of the measured run".to_string(),
        y_label: "throughput (req/s)".to_string(),
        series: vec![Series { label: String::new(), points }],
        log_x: false,
        y_max: None,
        x_integer: true,
    }
}

fn cdf_chart(summary: &RunSummary) -> LineChart {
    let series = |label: &str, cdf: &[(f64, f64)]| Series {
        label: label.to_string(),
        points: cdf.iter().map(|&(p, v)| Point { x: v, y: p, error: None }).collect(),
    };
    LineChart {
        title: "Latency CDF".to_string(),
        x_label: "latency (µs, log scale)".to_string(),
        y_label: "percentile".to_string(),
        series: vec![series("read", &summary.latency_cdf.read), series("write", &summary.latency_cdf.write)],
        log_x: true,
        y_max: Some(100.0),
        x_integer: false,
    }
}

fn load_chart(summary: &RunSummary) -> BarChart {
    let mut load = summary.load.clone();
    load.sort_by_key(|l| natural_key(&l.slave));
    BarChart {
        title: "Keys held per slave".to_string(),
        x_label: "slave".to_string(),
        y_label: "keys held".to_string(),
        bars: load.iter().map(|l| Bar { label: l.slave.clone(), value: l.keys_held as f64, error: None }).collect(),
    }
}

fn markdown(run: &Run) -> String {
    let s = &run.summary;
    let c = &s.config;
    let mut md = format!("# Run report: {}\n\n", run.dir.display());
    md.push_str(&format!(
        "{} clients x {} connections, {} slaves (replication factor {}), {}% writes over {} keys{}, \
         values of {} bytes, think time {} ms{}, warmup {} s, measured {} s, seed {}.\n\n",
        c.clients,
        c.conns_per_client,
        c.slaves,
        c.replicas,
        c.write_pct,
        c.keys,
        c.zipf.map_or(String::new(), |z| format!(" (zipf {z})")),
        c.value_size,
        c.think_ms,
        c.rate.map_or(" (closed loop)".to_string(), |r| format!(", open loop at {r} ops/s")),
        c.warmup_s,
        c.duration_s,
        c.seed,
    ));
    md.push_str("## Totals\n\n");
    let t = &s.totals;
    let mut totals =
        Table::new(&["requests", "success", "errors", "reads", "writes", "throughput (req/s)", "elapsed (s)"]);
    totals.row(&[
        t.requests.to_string(),
        t.success.to_string(),
        t.errors.to_string(),
        t.reads.to_string(),
        t.writes.to_string(),
        num(t.throughput_rps),
        num(t.elapsed_s),
    ]);
    md.push_str(&totals.finish());
    md.push_str("\n![Throughput over time](throughput_over_time.png)\n\n");
    md.push_str("## Latency (µs)\n\n");
    let mut latency = Table::new(&["operation", "count", "mean", "p50", "p90", "p99", "p99.9", "max"]);
    for (kind, l) in [("read", &s.latency_us.read), ("write", &s.latency_us.write)] {
        latency.row(&latency_cells(kind, l));
    }
    md.push_str(&latency.finish());
    md.push_str("\n![Latency CDF](latency_cdf.png)\n\n");
    md.push_str(&per_second_section(run));
    md.push_str(&errors_section(s));
    md.push_str(&load_section(s));
    md
}

fn latency_cells(kind: &str, l: &LatencyStats) -> [String; 8] {
    [kind.to_string(), l.count.to_string(), num(l.mean), num(l.p50), num(l.p90), num(l.p99), num(l.p999), num(l.max)]
}

fn per_second_section(run: &Run) -> String {
    let mut md = format!(
        "## Variation over the {} measured seconds\n\n\
         Each second is one sample; seconds without an operation of a kind are left out of that \
         kind's latency.\n\n",
        run.rows.len()
    );
    let mut table = Table::new(&["figure", "unit", "seconds", "mean", "std dev", "95% CI"]);
    for metric in Metric::ALL {
        let samples: Vec<f64> = run.rows.iter().filter_map(|r| metric.of_row(r)).collect();
        if let Some(d) = stats::describe(&samples) {
            let [mean, sd, ci] = described_cells(&d);
            table.row(&[metric.title().to_string(), metric.unit().to_string(), d.n.to_string(), mean, sd, ci]);
        }
    }
    md.push_str(&table.finish());
    md.push('\n');
    md
}

fn errors_section(s: &RunSummary) -> String {
    let mut md = "## Errors by kind\n\n".to_string();
    if s.errors.is_empty() {
        md.push_str("None.\n\n");
        return md;
    }
    let mut table = Table::new(&["kind", "count"]);
    for (kind, count) in &s.errors {
        table.row(&[kind.clone(), count.to_string()]);
    }
    md.push_str(&table.finish());
    md.push('\n');
    md
}

fn load_section(s: &RunSummary) -> String {
    let mut md = "## Load distribution\n\n![Keys held per slave](keys_per_slave.png)\n\n".to_string();
    let mut load = s.load.clone();
    load.sort_by_key(|l| natural_key(&l.slave));
    let mut table = Table::new(&["slave", "keys held", "keys placed"]);
    for l in &load {
        table.row(&[l.slave.clone(), l.keys_held.to_string(), l.keys_placed.to_string()]);
    }
    md.push_str(&table.finish());
    md
}
