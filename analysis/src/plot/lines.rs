//! Line charts: one line per series, points marked, optional error bars, optional log x axis.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{color, from_zero, padded, tick, Chart, FAMILY};

/// One point of a series, with its error bar when there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// `(low, high)` ends of the error bar.
    pub error: Option<(f64, f64)>,
}

/// A labelled line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

/// A chart of lines over a numeric x axis; the y axis starts at zero.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Logarithmic x axis (latency CDFs); points with x <= 0 are left out.
    pub log_x: bool,
    /// Top of the y axis; `None` fits the data.
    pub y_max: Option<f64>,
    /// The x values are counts: label only whole numbers.
    pub x_integer: bool,
}

impl LineChart {
    fn points(&self) -> impl Iterator<Item = &Point> {
        self.series.iter().flat_map(|s| &s.points).filter(|p| !self.log_x || p.x > 0.0)
    }

    fn y_range(&self) -> std::ops::Range<f64> {
        if let Some(max) = self.y_max {
            return 0.0..max;
        }
        let top = self.points().map(|p| p.error.map_or(p.y, |(_, hi)| hi.max(p.y)));
        from_zero(top.fold(0.0, f64::max))
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let xs: Vec<f64> = self.points().map(|p| p.x).collect();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if xs.is_empty() { (1.0, 10.0) } else { (lo, hi) };
        if self.log_x {
            // Whole decades, so that the axis has labelled ticks at both ends.
            let lo = 10f64.powf(lo.log10().floor());
            let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
            draw_lines(self, root, (lo..hi).log_scale())
        } else {
            draw_lines(self, root, padded(lo, hi))
        }
    }
}

fn draw_lines<DB, X>(chart: &LineChart, root: &DrawingArea<DB, Shift>, x: X) -> Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, (FAMILY, 24))
        .margin(16)
        .margin_right(36)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, chart.y_range())
        .map_err(err)?;
    let log_tick = |v: &f64| {
        let mantissa = v / 10f64.powf(v.log10().floor());
        let round = [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-6);
        if round {
            tick(v)
        } else {
            String::new()
        }
    };
    let integer_tick = |v: &f64| if v.fract() == 0.0 { tick(v) } else { String::new() };
    let x_tick: &dyn Fn(&f64) -> String = match (chart.log_x, chart.x_integer) {
        (true, _) => &log_tick,
        (false, true) => &integer_tick,
        (false, false) => &tick,
    };
    ctx.configure_mesh()
        .x_label_formatter(x_tick)
        .y_label_formatter(&tick)
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for (i, series) in chart.series.iter().enumerate() {
        let c = color(i);
        let points: Vec<&Point> = series.points.iter().filter(|p| !chart.log_x || p.x > 0.0).collect();
        let line: Vec<(f64, f64)> = points.iter().map(|p| (p.x, p.y)).collect();
        ctx.draw_series(LineSeries::new(line, c.stroke_width(2)))
            .map_err(err)?
            .label(series.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        let marker = if points.len() > 60 { 0 } else { 4 };
        ctx.draw_series(points.iter().map(|p| Circle::new((p.x, p.y), marker, c.filled()))).map_err(err)?;
        let bars = points.iter().filter_map(|p| {
            let (lo, hi) = p.error.filter(|(lo, hi)| hi > lo)?;
            Some(ErrorBar::new_vertical(p.x, lo, p.y, hi, c.stroke_width(1), 10))
        });
        ctx.draw_series(bars).map_err(err)?;
    }
    if chart.series.len() > 1 || chart.series.iter().any(|s| !s.label.is_empty()) {
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FAMILY, 14))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}
