//! Markdown tables and number formatting for `report.md`.

use crate::stats::Described;

/// A markdown table built row by row.
pub struct Table {
    text: String,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        let mut text = format!("| {} |\n|", headers.join(" | "));
        text.push_str(&"---|".repeat(headers.len()));
        text.push('\n');
        Table { text }
    }

    pub fn row(&mut self, cells: &[String]) {
        self.text.push_str(&format!("| {} |\n", cells.join(" | ")));
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A number with as many decimals as its size deserves.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `mean`, `std dev` and `95% CI` cells for a described sample (`n/a` where undefined).
pub fn described_cells(d: &Described) -> [String; 3] {
    let std_dev = d.std_dev.map_or("n/a".to_string(), num);
    let ci = match d.ci95 {
        Some(half) => format!("{} .. {} (±{})", num(d.mean - half), num(d.mean + half), num(half)),
        None => "n/a".to_string(),
    };
    [num(d.mean), std_dev, ci]
}

/// Sorts slave names so that `slave-2` comes before `slave-10`.
pub fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem.to_string(), number.parse().unwrap_or(0))
}
