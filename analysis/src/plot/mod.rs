//! Charts drawn with plotters, each written as PNG and SVG. Text uses a font compiled into the
//! binary (a subset of DejaVu Sans, see `assets/`), so rendering needs no system font.

mod bars;
mod lines;

pub use bars::{Bar, BarChart};
pub use lines::{LineChart, Point, Series};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};

/// Font family name every chart asks for; bound to the embedded font.
const FAMILY: &str = "sans-serif";
const FONT: &[u8] = include_bytes!("../../assets/dejavu-sans-subset.ttf");
/// Pixel size of every chart.
const SIZE: (u32, u32) = (900, 560);

/// Something that draws itself on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String>;
}

/// Draws `chart` into `dir/stem.png` and `dir/stem.svg`; returns both paths.
pub fn render(chart: &impl Chart, dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    ensure_font(dir)?;
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        draw_on(chart, &root).map_err(|message| Error::Plot { path: png.clone(), message })?;
    }
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        draw_on(chart, &root).map_err(|message| Error::Plot { path: svg.clone(), message })?;
    }
    Ok(vec![png, svg])
}

fn draw_on<DB: DrawingBackend>(chart: &impl Chart, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    chart.draw(root)?;
    root.present().map_err(|e| e.to_string())
}

fn ensure_font(dir: &Path) -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Plot { path: dir.to_path_buf(), message: "the embedded font could not be loaded".to_string() })
    }
}

/// Colour of the `i`-th series.
fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    COLORS[i % COLORS.len()]
}

/// A value range that contains `lo..=hi` with a little room, and is never empty.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let span = hi - lo;
    if span > 0.0 {
        lo - span * 0.05..hi + span * 0.05
    } else {
        let pad = (lo.abs() * 0.1).max(1.0);
        lo - pad..hi + pad
    }
}

/// `0..max` with headroom; `0..1` when everything is zero.
fn from_zero(max: f64) -> std::ops::Range<f64> {
    if max > 0.0 {
        0.0..max * 1.12
    } else {
        0.0..1.0
    }
}

/// A tick label without trailing zeros: `1200`, `2.5`, `0.125`.
fn tick(v: &f64) -> String {
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}
