//! What a run prints on stdout when it ends: a short table and a one-line summary.

use std::fmt::Write;

use crate::summary::{LatencyStats, Summary};

/// The table: per operation, count and latency percentiles in milliseconds; then errors.
pub fn table(summary: &Summary) -> String {
    let c = &summary.config;
    let t = &summary.totals;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} clients x {} conns, {} slaves, {}% writes, {} keys, {:.1} s measured{}",
        c.clients,
        c.conns_per_client,
        c.slaves,
        c.write_pct,
        c.keys,
        t.elapsed_s,
        if summary.interrupted { " (interrupted)" } else { "" }
    );
    let _ = writeln!(
        out,
        "{:<6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op", "ok", "mean ms", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for (name, l) in [("read", &summary.latency_us.read), ("write", &summary.latency_us.write)] {
        let _ = writeln!(out, "{name:<6} {}", row(l));
    }
    let errors: Vec<String> =
        summary.errors.iter().filter(|(_, n)| **n > 0).map(|(kind, n)| format!("{kind} {n}")).collect();
    let _ = writeln!(
        out,
        "errors {}{}",
        t.errors,
        if errors.is_empty() { String::new() } else { format!(" ({})", errors.join(", ")) }
    );
    if !summary.load.is_empty() {
        let held: Vec<String> = summary.load.iter().map(|l| format!("{} {}", l.slave, l.keys_held)).collect();
        let _ = writeln!(out, "keys held: {}", held.join(", "));
    }
    if !summary.cpu_us_per_op.is_empty() {
        let cpu: Vec<String> = summary.cpu_us_per_op.iter().map(|(name, us)| format!("{name} {us:.1}")).collect();
        let _ = writeln!(out, "CPU µs per operation: {}", cpu.join(", "));
    }
    let _ = writeln!(out, "{}", one_line(summary));
    out
}

fn row(l: &LatencyStats) -> String {
    let ms = |us: f64| us / 1000.0;
    format!(
        "{:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        l.count,
        ms(l.mean),
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )
}

/// `throughput N ok/s | read p50 X ms p99 Y ms | write p50 X ms p99 Y ms | errors N of M`.
pub fn one_line(summary: &Summary) -> String {
    let r = &summary.latency_us.read;
    let w = &summary.latency_us.write;
    format!(
        "throughput {:.0} ok/s | read p50 {:.3} ms p99 {:.3} ms | write p50 {:.3} ms p99 {:.3} ms | errors {} of {}",
        summary.totals.throughput_rps,
        r.p50 / 1000.0,
        r.p99 / 1000.0,
        w.p50 / 1000.0,
        w.p99 / 1000.0,
        summary.totals.errors,
        summary.totals.requests
    )
}
