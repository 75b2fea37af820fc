//! Bar charts over named categories (keys held per slave), with optional error bars.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{color, from_zero, tick, Chart, FAMILY};

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// `(low, high)` ends of the error bar.
    pub error: Option<(f64, f64)>,
}

/// A bar chart; the y axis starts at zero.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub bars: Vec<Bar>,
}

impl Chart for BarChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let top = self.bars.iter().map(|b| b.error.map_or(b.value, |(_, hi)| hi.max(b.value)));
        // A segmented range is inclusive: 0..last has one segment per bar.
        let last = self.bars.len().saturating_sub(1) as u32;
        let mut ctx = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 24))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((0u32..last).into_segmented(), from_zero(top.fold(0.0, f64::max)))
            .map_err(err)?;
        let labels = |v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                self.bars.get(*i as usize).map(|b| b.label.clone()).unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        ctx.configure_mesh()
            .disable_x_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(self.bars.len())
            .x_label_formatter(&labels)
            .y_label_formatter(&tick)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        let fill = color(0).mix(0.8).filled();
        ctx.draw_series(self.bars.iter().enumerate().map(|(i, b)| {
            let i = i as u32;
            let mut bar = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), b.value)], fill);
            bar.set_margin(0, 0, 12, 12);
            bar
        }))
        .map_err(err)?;
        for (i, b) in self.bars.iter().enumerate() {
            let Some((lo, hi)) = b.error.filter(|(lo, hi)| hi > lo) else {
                continue;
            };
            let x = SegmentValue::CenterOf(i as u32);
            let style = BLACK.stroke_width(1);
            let cap = |y: f64| EmptyElement::at((x.clone(), y)) + PathElement::new(vec![(-6, 0), (6, 0)], style);
            ctx.draw_series([PathElement::new(vec![(x.clone(), lo), (x.clone(), hi)], style)]).map_err(err)?;
            ctx.draw_series([cap(lo), cap(hi)]).map_err(err)?;
        }
        Ok(())
    }
}
